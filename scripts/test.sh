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
trap 'rm -rf "$tmp"' EXIT
cargo build -q --example quickstart
(cd "$tmp" && "$OLDPWD/target/debug/examples/quickstart" >/dev/null)
echo "quickstart ok"

# One closing line for all the test binaries above.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\nrust: %d passed, %d failed\n", p, f }' "$results"
rm -f "$results"
