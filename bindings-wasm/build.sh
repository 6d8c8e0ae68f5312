#!/usr/bin/env bash
# Builds the npm package into bindings-wasm/js: wasm (size profile) → wasm-bindgen → wasm-opt.
# Needs wasm-bindgen-cli 0.2.130 and npm binaryen; scripts/test.sh installs both into the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${BUCKETSYNC_CACHE:-$HOME/.cache/bucketsync}"
wasm_bindgen="${WASM_BINDGEN:-$cache/wasm-bindgen/bin/wasm-bindgen}"
wasm_opt="${WASM_OPT:-$cache/npm/node_modules/.bin/wasm-opt}"
cargo build -p bucketsync-wasm --target wasm32-unknown-unknown --profile wasm-release
"$wasm_bindgen" --target web --out-dir bindings-wasm/js/pkg --out-name bucketsync_wasm \
  target/wasm32-unknown-unknown/wasm-release/bucketsync_wasm.wasm
"$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --strip-debug --strip-producers \
  bindings-wasm/js/pkg/bucketsync_wasm_bg.wasm -o bindings-wasm/js/pkg/bucketsync_wasm_bg.wasm
raw=$(wc -c < bindings-wasm/js/pkg/bucketsync_wasm_bg.wasm)
gz=$(gzip -9 -c bindings-wasm/js/pkg/bucketsync_wasm_bg.wasm | wc -c)
echo "wasm size: $raw bytes raw, $gz bytes gzipped (bar: 250000)"
[ "$gz" -le 250000 ] || { echo "the wasm is over the 250 KB gzipped bar" >&2; exit 1; }
