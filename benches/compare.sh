#!/usr/bin/env bash
# cairn against restic and borg (zstd,3) on a reproducible ~1 GiB data set,
# in one run: first backup (cold cache), no-change backup, backup after a
# mutation, full restore, check with a full data read. Prints wall time, CPU
# time, peak RSS, the ratios and repository sizes.
#
#   benches/compare.sh [--gib 1.0] [--work /tmp/cairn-bench] [--tools cairn,restic,borg]
#   benches/compare.sh --real [benches/real.sh's options]
#
# --real runs benches/real.sh instead: a copy of this machine's /usr, cold
# caches before every step, and the machine's limits in the same round.
#
# Installs restic and borgbackup from Debian when missing (needs root or
# sudo), builds cairn in release mode. Results also go to
# bench-results/compare-<time>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--real" ]; then shift; exec benches/real.sh "$@"; fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"

need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y "${need[@]}" >/dev/null
fi

cargo build --release -q -p cairn-cli -p cairn-e2e --bin cairn --bin gen-tree
mkdir -p bench-results
exec python3 benches/compare.py \
    --cairn "$CARGO_TARGET_DIR/release/cairn" \
    --gen-tree "$CARGO_TARGET_DIR/release/gen-tree" \
    --json "bench-results/compare-$(date -u +%Y%m%dT%H%M%SZ).json" \
    "$@"
