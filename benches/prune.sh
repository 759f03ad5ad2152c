#!/usr/bin/env bash
# forget + prune on a repository of 100 snapshots and 200,000 blobs: cairn
# against restic in the same run (wall time, CPU time, peak RSS, ratios).
#   benches/prune.sh [--snapshots 100] [--files 2000] [--keep 20]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
need=()
command -v restic >/dev/null || need+=(restic)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y "${need[@]}" >/dev/null
fi
cargo build --release -q -p cairn-cli --bin cairn
exec python3 benches/prune.py --cairn "$CARGO_TARGET_DIR/release/cairn" "$@"
