#!/usr/bin/env bash
# End-to-end latency of `cairn log push` for 16 MiB segments (process start,
# key derivation, chunking, compression, encryption, fsync'd packs, index
# and manifest included), in a fresh local repository with the default
# key-derivation cost: what a database's archive_command waits for.
#   benches/logpush.sh [segments=10]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
cargo build --release -q -p cairn-cli --bin cairn
cairn="$CARGO_TARGET_DIR/release/cairn"
n="${1:-10}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "benchmark password" > "$work/password"
export CAIRN_REPOSITORY="$work/repo" CAIRN_PASSWORD_FILE="$work/password" CAIRN_CACHE_DIR="$work/cache"
"$cairn" init -q
python3 - "$work" "$n" <<'PY'
import os, random, sys
work, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(16)
words = [b"INSERT", b"UPDATE", b"tuple", b"xid", b"COMMIT", b"heap", b"btree", b"page"]
for i in range(n):
    # Half random (row images), half repetitive (records), like busy WAL.
    text = b" ".join(rng.choice(words) for _ in range(1_400_000))[: 8 << 20]
    with open(os.path.join(work, f"seg{i:02d}"), "wb") as f:
        f.write(rng.randbytes(8 << 20) + text)
PY
times=()
for i in $(seq 0 $((n - 1))); do
    start=$(date +%s%N)
    "$cairn" log push -q --account db --stream wal "$work/seg$(printf %02d "$i")"
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
done
start=$(date +%s%N); "$cairn" snapshots -q > /dev/null; end=$(date +%s%N)
open_ms=$(( (end - start) / 1000000 ))
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "16 MiB log push, end to end, $n segments: min ${sorted[0]} ms, median ${sorted[$((n / 2))]} ms, max ${sorted[$((n - 1))]} ms"
echo "of which opening the repository (process start, argon2id key derivation, config): ${open_ms} ms (cairn snapshots)"
