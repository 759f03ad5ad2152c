#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, property and end-to-end
# tests, a short run of every fuzz target, and a build of the benchmarks.
# This is what CI runs (.ci/run calls exactly this script).
#
# Environment:
#   CARGO_TARGET_DIR   build cache (default ~/.cache/cairn-target, outside the clone)
#   FUZZ_SECONDS       seconds per fuzz target (default 20; 0 builds them only)
#   CAIRN_TOOLS_DIR    where s3rver is installed (default ~/.cache/cairn-tools)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn-target}"
FUZZ_TARGET_DIR="${CARGO_TARGET_DIR}-fuzz"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "what the tests need"
# The unreadable-file test runs cairn as an unprivileged user when the
# suite runs as root: it needs setpriv (util-linux).
if ! command -v setpriv >/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y util-linux >/dev/null || {
        echo "cannot install util-linux (setpriv), which the tests need" >&2; exit 1; }
fi
# The transaction-log tests run a real PostgreSQL (as the postgres user when
# the suite runs as root).
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get install -y postgresql-15 >/dev/null || {
        echo "cannot install postgresql-15, which the transaction-log tests need" >&2; exit 1; }
fi
# The S3 and sync tests run against a real S3-compatible server: moto.
if ! command -v moto_server >/dev/null; then
    python3 -m pip install --quiet 'moto[server]' || pip install --quiet 'moto[server]' || {
        echo "cannot install moto[server] (pip), which the S3 tests need" >&2; exit 1; }
    hash -r
    command -v moto_server >/dev/null || {
        echo "moto[server] installed but moto_server is not on PATH; the S3 tests need it" >&2; exit 1; }
fi
# ...and a second, independent one: s3rver (Node) from the npm registry,
# kept outside the clone.
S3RVER_DIR="${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn-tools}"
S3RVER="$S3RVER_DIR/node_modules/.bin/s3rver"
if [ ! -x "$S3RVER" ]; then
    if ! command -v npm >/dev/null; then
        sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get install -y nodejs npm >/dev/null || {
            echo "cannot install Node.js and npm, which the s3rver tests need" >&2; exit 1; }
    fi
    mkdir -p "$S3RVER_DIR"
    (cd "$S3RVER_DIR" && npm install --no-audit --no-fund --silent s3rver@3.7.1) || {
        echo "cannot install s3rver 3.7 from the npm registry, which the S3 tests need" >&2; exit 1; }
    [ -x "$S3RVER" ] || { echo "s3rver installed but $S3RVER is missing" >&2; exit 1; }
fi
if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --locked --quiet || {
        echo "cannot install cargo-fuzz, which the fuzz step needs" >&2; exit 1; }
fi

step "format"
cargo fmt --all --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "layering"
# The crate graph is the architecture (docs/ARCHITECTURE.md): check the
# edges that must not exist, and import cycles inside each crate.
deps() { cargo tree --locked -e normal --prefix none -p "$1" | awk '{print $1}' | sort -u; }
forbid() { # crate, then names it must not depend on
    local crate=$1; shift
    local found; found=$(deps "$crate" | grep -xF "$(printf '%s\n' "$@")" || true)
    if [ -n "$found" ]; then
        echo "$crate depends on $(echo $found) (docs/ARCHITECTURE.md forbids it)" >&2; exit 1
    fi
}
forbid cairn-format object_store tokio redb cairn-store cairn-repository
forbid cairn-store redb cairn-repository
forbid cairn-protocol cairn-chunker cairn-format cairn-store cairn-repository cairn-retention cairn-remote-sync cairn-service
forbid cairn-service cairn-format cairn-store cairn-repository cairn-remote-sync
forbid cairn-retention cairn-format cairn-store cairn-repository
forbid cairn-testkit cairn-repository
if cargo tree --locked -e normal -i cairn-repository --prefix none | grep -q '^cairn-service '; then
    echo "cairn-service depends on cairn-repository" >&2; exit 1
fi
python3 scripts/module-cycles.py
# Operations are functions over a &Repository, not methods added to it from
# other modules (that is how the old import cycle formed).
if grep -rln --include='*.rs' '^impl Repository' crates/repository/src | grep -vx 'crates/repository/src/repo.rs'; then
    echo "impl Repository outside crates/repository/src/repo.rs (docs/ARCHITECTURE.md)" >&2; exit 1
fi

step "build"
cargo build --workspace --bins --locked

step "S3 servers (moto, s3rver) on loopback"
# One server of each for the whole run; each test uses its own bucket.
# They stop when the script exits, whichever way.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3_port=$(free_port)
moto_log=$(mktemp)
moto_server -H 127.0.0.1 -p "$s3_port" >"$moto_log" 2>&1 &
moto_pid=$!
s3rver_port=$(free_port)
s3rver_dir=$(mktemp -d)
s3rver_log=$(mktemp)
# s3rver 3.7's continuation tokens need OpenSSL's legacy provider on Node 18+.
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$s3rver_dir" -a 127.0.0.1 -p "$s3rver_port" --silent >"$s3rver_log" 2>&1 &
s3rver_pid=$!
# Stop the servers, keeping the suite's own exit status (under `set -e` a
# `wait` for a server killed by SIGTERM would otherwise exit 143).
trap 'rc=$?; kill "$moto_pid" "$s3rver_pid" 2>/dev/null || true; wait "$moto_pid" "$s3rver_pid" 2>/dev/null || true; rm -rf "$moto_log" "$s3rver_log" "$s3rver_dir"; exit "$rc"' EXIT
for _ in $(seq 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$s3_port/')" 2>/dev/null; then
        break
    fi
    kill -0 "$moto_pid" 2>/dev/null || { cat "$moto_log"; echo "moto_server exited at start" >&2; exit 1; }
    sleep 0.2
done
export CAIRN_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
echo "moto_server on $CAIRN_TEST_S3_ENDPOINT"
for _ in $(seq 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $s3rver_port), 1)" 2>/dev/null; then
        break
    fi
    kill -0 "$s3rver_pid" 2>/dev/null || { cat "$s3rver_log"; echo "s3rver exited at start" >&2; exit 1; }
    sleep 0.2
done
export CAIRN_TEST_S3RVER_ENDPOINT="http://127.0.0.1:$s3rver_port"
echo "s3rver on $CAIRN_TEST_S3RVER_ENDPOINT"

step "unit, property and end-to-end tests"
cargo test --workspace --locked --no-fail-fast

step "benchmarks build"
cargo bench --workspace --no-run --locked --quiet

step "fuzz targets (${FUZZ_SECONDS}s each)"
(
    cd fuzz
    export CARGO_TARGET_DIR="$FUZZ_TARGET_DIR"
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz build >"$log" 2>&1; then
        cat "$log"; echo "the fuzz targets do not build" >&2; exit 1
    fi
    if [ "$FUZZ_SECONDS" -gt 0 ]; then
        for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
            if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- \
                -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 >"$log" 2>&1; then
                tail -40 "$log"
                echo "fuzz target $target failed; the input is in fuzz/artifacts/$target" >&2
                exit 1
            fi
            echo "$target: $(grep -E '^Done' "$log")"
        done
    fi
)

step "all green"
