#!/usr/bin/env bash
# How cost grows with the repository: synthetic repositories of many tiny
# snapshots over many accounts (and, with --blobs, millions of tiny blobs),
# built through the library in seconds, then the cost of each everyday
# operation at each size (wall time, peak RSS), printed as a table.
#   benches/scale.sh [--sizes 1000,10000,100000] [--blobs 1000000,10000000]
#                    [--work DIR] [--json FILE]
# The correctness half (cached listings agree with the store after other
# processes add and forget snapshots) is a test: tests/e2e_concurrency.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
if [ ! -x /usr/bin/time ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y time >/dev/null
fi
cargo build --release -q -p cairn-cli --bin cairn
cargo build --release -q -p cairn-repository --example scale_repo
exec python3 benches/scale.py \
    --cairn "$CARGO_TARGET_DIR/release/cairn" \
    --generator "$CARGO_TARGET_DIR/release/examples/scale_repo" "$@"
