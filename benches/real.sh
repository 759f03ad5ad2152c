#!/usr/bin/env bash
# cairn against restic and borg (zstd,3) on a real tree with cold caches: a copy of this
# machine's /usr/lib and /usr/share plus a 512 MiB database-like file (benches/real/make.sh,
# ~2.8 GB), a deterministic mutation, and the page cache dropped before every step after
# waiting for the machine to be idle. Each round also measures the machine's limits on the
# same data (benches/real/run.sh limit): cold reads of the tree, a cold metadata walk, a tar
# unpack onto the same disk, a cold read of the repository.
#
#   benches/real.sh [--rounds "1 2"] [--tools "limit cairn restic borg-zstd3"] [--warm]
#
# Needs root (drop_caches). Results: /tmp/bench/results/results.tsv, one row per step;
# the same-round ratios and limits are printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
rounds="1 2"; tools="limit cairn restic borg-zstd3"; cold=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --tools) tools="$2"; shift 2 ;;
        --warm) cold=0; shift ;;
        *) echo "benches/real.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "benches/real.sh: needs root to drop the page cache" >&2; exit 2; }
need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
[ -x /usr/bin/time ] || need+=(time)
command -v bc >/dev/null || need+=(bc)
[ ${#need[@]} -eq 0 ] || apt-get install -y "${need[@]}" >/dev/null
cargo build --release -q -p cairn-cli --bin cairn
mkdir -p /tmp/benchdata /tmp/bench/results /tmp/bench/logs
cp benches/real/make.sh benches/real/mutate.sh benches/real/manifest.py benches/real/compare.py /tmp/benchdata/
cp benches/real/run.sh /tmp/bench/; chmod +x /tmp/benchdata/*.sh /tmp/bench/run.sh
[ -f /tmp/bench/cairn.pass ] || { echo benchpass > /tmp/bench/cairn.pass; chmod 600 /tmp/bench/cairn.pass; }
[ -d /tmp/benchdata/src ] || /tmp/benchdata/make.sh
export CAIRN="$CARGO_TARGET_DIR/release/cairn"
for run in $rounds; do
    # limit last: its repo-read row reads this round's cairn repository.
    for tool in $tools; do [ "$tool" = limit ] || (cd /tmp/bench && COLD=$cold ./run.sh "$tool" "$run"); done
    case " $tools " in *" limit "*) (cd /tmp/bench && COLD=$cold ./run.sh limit "$run") ;; esac
done
python3 benches/real/summary.py /tmp/bench/results/results.tsv
