#!/usr/bin/env bash
# Kotlin (JVM) and Swift (XCTest, in a Debian trixie chroot) against one SeaweedFS, then the
# interop check: a record written from Kotlin is read by Swift and by the Rust side.
# Swift needs the chroot that scripts/test.sh prepares; BUCKETSYNC_SKIP_SWIFT=1 skips it
# explicitly (and says so), nothing else does.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${BUCKETSYNC_CACHE:-$HOME/.cache/bucketsync}"
kotlin="$cache/kotlin/node_modules/kotlin-compiler"
swift_root="$cache/swift-root"
tmp=$(mktemp -d)
server_pid=""
other_pid=""
cleanup() {
  exec 9>&- 2>/dev/null || true
  exec 8>&- 2>/dev/null || true
  [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null || true
  [ -n "$other_pid" ] && wait "$other_pid" 2>/dev/null || true
  mountpoint -q "$swift_root/proc" && umount "$swift_root/proc" || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# scripts/test.sh passes the package and feature selection its test build used, so that the
# library, the test server and the example are the ones it compiled (see there).
cargo build -q ${BUCKETSYNC_CARGO_SELECTION:-} --bin test-server --example read_record
bindings-uniffi/generate.sh /work/bucketsync-swift

# One SeaweedFS for the whole step; it stops when fd 9 closes. Beside it, another service
# (s3s-fs accepting only its own key, behind a tap that appends every byte sent to it to a
# file the Swift chroot sees too), for the tests of where a home's keys go; it stops when fd 8
# closes.
mkfifo "$tmp/ctl" "$tmp/other-ctl"
target/debug/test-server seaweedfs kotlin swift interop < "$tmp/ctl" > "$tmp/server.json" &
server_pid=$!
exec 9> "$tmp/ctl"
if [ "${BUCKETSYNC_SKIP_SWIFT:-}" = 1 ]; then tap="$tmp/other-tap.log"; else
  mkdir -p "$swift_root/work"; tap="$swift_root/work/other-tap.log"; fi
rm -f "$tap"
other_key=other-service-key other_secret=other-service-secret-0123456789
target/debug/test-server s3s --as "$other_key:$other_secret" --tap "$tap" trips < "$tmp/other-ctl" > "$tmp/other.json" &
other_pid=$!
exec 8> "$tmp/other-ctl"
# Each one line of JSON, whole (ending with a newline). A server that exits first, or never
# answers (a bound far above its usual second or two), stops the step instead of hanging it.
answered() { [ -s "$1" ] && [ -z "$(tail -c 1 "$1")" ]; }
for _ in $(seq 3000); do
  answered "$tmp/server.json" && answered "$tmp/other.json" && break
  kill -0 "$server_pid" 2>/dev/null && kill -0 "$other_pid" 2>/dev/null \
    || { echo "a test server exited before it answered" >&2; exit 1; }
  sleep 0.1
done
answered "$tmp/server.json" && answered "$tmp/other.json" \
  || { echo "the test servers did not answer within 300 s" >&2; exit 1; }
# Read as lines (no eval of what the servers printed); a failing parse stops the step.
settings=$(python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(s["endpoint"], s["accessKeyId"], s["secretAccessKey"], sep="\n")' "$tmp/server.json")
{ read -r endpoint; read -r access_key; read -r secret_key; } <<< "$settings"
other_endpoint=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$tmp/other.json")
export BUCKETSYNC_TEST_ENDPOINT="$endpoint" BUCKETSYNC_TEST_ACCESS_KEY="$access_key" BUCKETSYNC_TEST_SECRET_KEY="$secret_key"
export BUCKETSYNC_TEST_OTHER_ENDPOINT="$other_endpoint" BUCKETSYNC_TEST_OTHER_ACCESS_KEY="$other_key" \
  BUCKETSYNC_TEST_OTHER_SECRET_KEY="$other_secret" BUCKETSYNC_TEST_TAP="$tap"
read_record=target/debug/examples/read_record
BUCKETSYNC_INTEROP_CODE=$("$read_record" --new-code)
export BUCKETSYNC_INTEROP_CODE

echo "-- Kotlin"
cp_jars="/usr/share/java/jna.jar:$kotlin/lib/kotlinx-coroutines-core-jvm.jar"
"$kotlin/bin/kotlinc" -nowarn target/uniffi/kotlin/uniffi/bucketsync_uniffi/*.kt \
  bindings-uniffi/tests/kotlin/VaultTest.kt -cp "$cp_jars" -d "$tmp/kotlin-test.jar" 2>&1 | grep -v "^warning" || true
java -Djna.library.path=target/uniffi/kotlin -cp "$tmp/kotlin-test.jar:$kotlin/lib/kotlin-stdlib.jar:$cp_jars" VaultTestKt

echo "-- Swift"
if [ "${BUCKETSYNC_SKIP_SWIFT:-}" = 1 ]; then
  echo "Swift SKIPPED because BUCKETSYNC_SKIP_SWIFT=1"
else
  if [ ! -L "$swift_root/usr/bin/swift" ] && [ ! -x "$swift_root/usr/bin/swift" ]; then
    echo "no Swift toolchain at $swift_root (scripts/test.sh builds it; or set BUCKETSYNC_SKIP_SWIFT=1 to skip Swift explicitly)" >&2
    exit 1
  fi
  rm -rf "$swift_root/work/bucketsync-swift"
  mkdir -p "$swift_root/work"
  cp -r target/uniffi/swift/Bucketsync "$swift_root/work/bucketsync-swift"
  cp bindings-uniffi/tests/swift/VaultTests.swift "$swift_root/work/bucketsync-swift/Tests/BucketsyncTests/"
  mountpoint -q "$swift_root/proc" || mount -t proc proc "$swift_root/proc"
  chroot "$swift_root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root \
    LD_LIBRARY_PATH=/work/bucketsync-swift/lib BUCKETSYNC_TEST_ENDPOINT="$BUCKETSYNC_TEST_ENDPOINT" \
    BUCKETSYNC_TEST_ACCESS_KEY="$BUCKETSYNC_TEST_ACCESS_KEY" BUCKETSYNC_TEST_SECRET_KEY="$BUCKETSYNC_TEST_SECRET_KEY" \
    BUCKETSYNC_INTEROP_CODE="$BUCKETSYNC_INTEROP_CODE" BUCKETSYNC_TEST_OTHER_ENDPOINT="$BUCKETSYNC_TEST_OTHER_ENDPOINT" \
    BUCKETSYNC_TEST_OTHER_ACCESS_KEY="$other_key" BUCKETSYNC_TEST_OTHER_SECRET_KEY="$other_secret" \
    BUCKETSYNC_TEST_TAP=/work/other-tap.log \
    bash -c "cd /work/bucketsync-swift && swift test --disable-swift-testing 2>&1" | grep -vE "^\[[0-9]+/[0-9]+\]|^Building|^Compiling|^Write|^Planning" 
  umount "$swift_root/proc"
fi

echo "-- Rust reads what Kotlin (and Swift) wrote"
"$read_record" "s3://interop/?endpoint=$BUCKETSYNC_TEST_ENDPOINT&path_style=true" \
  "$BUCKETSYNC_INTEROP_CODE" from/kotlin "hello from Kotlin"
if [ "${BUCKETSYNC_SKIP_SWIFT:-}" != 1 ]; then
  "$read_record" "s3://interop/?endpoint=$BUCKETSYNC_TEST_ENDPOINT&path_style=true" \
    "$BUCKETSYNC_INTEROP_CODE" from/swift "hello from Swift"
fi
