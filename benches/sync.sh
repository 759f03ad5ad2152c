#!/usr/bin/env bash
# cairn sync against `aws s3 sync` and `rclone sync` of the same repository
# directory, to a loopback S3 server (moto), in one run: first sync and
# no-change rerun (median of five; wall time, CPU time, peak RSS, ratios).
#
#   benches/sync.sh [--gib 2.0] [--work /tmp/cairn-sync-bench] [--tools cairn,aws,rclone]
#
# Installs what is missing (moto[server] and awscli with pip, rclone from
# Debian), builds cairn in release mode. Results also go to
# bench-results/sync-<time>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
command -v rclone >/dev/null || need+=(rclone)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    $sudo apt-get install -y "${need[@]}" >/dev/null
fi
command -v moto_server >/dev/null || python3 -m pip install --quiet 'moto[server]'
command -v aws >/dev/null || python3 -m pip install --quiet awscli
hash -r

cargo build --release -q -p cairn-cli -p cairn-e2e --bin cairn --bin gen-tree
mkdir -p bench-results
exec python3 benches/sync.py \
    --cairn "$CARGO_TARGET_DIR/release/cairn" \
    --gen-tree "$CARGO_TARGET_DIR/release/gen-tree" \
    --json "bench-results/sync-$(date -u +%Y%m%dT%H%M%SZ).json" \
    "$@"
