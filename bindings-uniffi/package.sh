#!/usr/bin/env bash
# Builds what an app developer ships: the phone builds of libbucketsync_uniffi (release profile,
# WITHOUT the `reqwest` feature: phones reach the bucket through the platform HTTP transports,
# kotlin/HttpURLConnectionTransport.kt and swift/URLSessionTransport.swift) with the bindings
# generated from those very libraries.
#
#   --android   OUT/android/bucketsync-uniffi.aar  jni/<abi>/libbucketsync_uniffi.so for arm64-v8a,
#                                                  armeabi-v7a and x86_64, AndroidManifest.xml
#                                                  (minSdk = ANDROID_API), R8 keep rules for JNA
#                                                  (proguard.txt) and an empty classes.jar
#               OUT/android/kotlin/                the Kotlin sources: generated + bindings-uniffi/kotlin
#               OUT/android/jniLibs/<abi>/         the same libraries, for a module's src/main/jniLibs
#               OUT/android/LICENSE-MIT, LICENSE-APACHE  the licence texts (MIT OR Apache-2.0)
#   --ios       OUT/apple/Bucketsync/              a Swift package: bucketsync_uniffiFFI.xcframework
#                                                  (static library for iOS devices, and for the
#                                                  simulator arm64 + x86_64 in one slice; with
#                                                  --macos also arm64 + x86_64 macOS) with the C
#                                                  header and module map, the generated Swift and
#                                                  bindings-uniffi/swift, Package.swift, and
#                                                  the licence texts LICENSE-MIT, LICENSE-APACHE
#               OUT/apple/bucketsync_uniffiFFI.xcframework.zip   the XCFramework zipped, for a
#                                                  remote binary target, and beside it .sha256:
#                                                  its SwiftPM checksum (the zip's SHA-256)
#   --binary-url URL  (with --ios) also OUT/apple/Bucketsync-remote/: the same Swift package, whose
#                                                  Package.swift fetches the zip from URL (with
#                                                  that checksum) instead of holding the
#                                                  XCFramework: what a release publishes
#
# The AAR holds no compiled Kotlin: the app's Gradle build compiles OUT/android/kotlin (add it
# as a source directory). (The Maven publication is another AAR, with compiled classes:
# bindings-uniffi/android builds it with Gradle from OUT/android, see docs/RELEASING.md.) Compiled classes would tie the app to the Kotlin version that built
# them (an older Kotlin compiler cannot read a newer one's class metadata) and need JNA and
# kotlinx-coroutines jars here; sources build with whatever Kotlin the app uses.
#
# Usage: bindings-uniffi/package.sh [--android] [--ios [--macos] [--binary-url URL]] [--out DIR] [--help]
#
# Needs:
#   Android  an Android NDK, r25 or later (Rust's Android targets need r25+; the latest LTS is
#            what Rust supports), found through ANDROID_NDK_HOME, else ANDROID_NDK_ROOT, else the
#            newest $ANDROID_HOME/ndk/<version> (or $ANDROID_SDK_ROOT/ndk/<version>). Each target
#            links with the NDK's <triple><ANDROID_API>-clang. ANDROID_API: minimum API level,
#            default 24. The libraries are linked for 16 KB pages (-z max-page-size=16384,
#            which Google Play asks for); a RUSTFLAGS of your own replaces that flag (cargo then
#            ignores per-target rustflags).
#   iOS      macOS with Xcode (xcodebuild -create-xcframework, lipo). IPHONEOS_DEPLOYMENT_TARGET
#            (default 15.0) and MACOSX_DEPLOYMENT_TARGET (default 12.0) match Package.swift.
#   Both     rustup (missing Rust targets are added, nothing else), python3.
# When what a platform needs is missing, it stops before building anything, says what to
# install, and exits 2 (as for bad arguments). CARGO_TARGET_DIR is honoured. The Swift
# cancellation patch is the one in generate.sh (read from there, so it exists once).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
stop() { printf 'package.sh: %s\n' "$@" >&2; exit 2; }

android=false ios=false macos=false out="" binary_url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --android) android=true ;;
    --ios) ios=true ;;
    --macos) macos=true ;;
    --out) [ $# -ge 2 ] || stop "--out needs a directory"; out="$2"; shift ;;
    --out=*) out="${1#--out=}" ;;
    --binary-url) [ $# -ge 2 ] || stop "--binary-url needs a URL"; binary_url="$2"; shift ;;
    --binary-url=*) binary_url="${1#--binary-url=}" ;;
    -h|--help) usage; exit 0 ;;
    *) stop "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
$android || $ios || stop "say what to build: --android, --ios or both (see --help)"
if $macos && ! $ios; then stop "--macos adds a slice to the iOS XCFramework: use it with --ios"; fi
if [ -n "$binary_url" ] && ! $ios; then stop "--binary-url is where the iOS XCFramework's zip will be: use it with --ios"; fi
case "$binary_url" in ""|https://*.zip) ;; *) stop "--binary-url must be an https:// URL of a .zip, not '$binary_url'" ;; esac
# A relative --out is relative to where the script was called from.
if [ -n "$out" ]; then case "$out" in /*) ;; *) out="$PWD/$out" ;; esac; fi

cd "$(dirname "$0")/.."
repo="$PWD"
out="${out:-$repo/target/mobile}"
tgt="${CARGO_TARGET_DIR:-target}"
case "$tgt" in /*) ;; *) tgt="$repo/$tgt" ;; esac
gen="$tgt/uniffi-mobile"   # scratch: bindings as uniffi-bindgen writes them
lib=libbucketsync_uniffi

# --- What each platform needs, checked before anything is built -------------------------------
# Each check returns 1 after recording what is missing, so that a run with both flags reports
# both platforms' problems at once.

problems=()
missing() { problems+=("$1"); return 1; }

# Rust triple, Android ABI, prefix of the NDK's clang wrapper (armv7 is spelled armv7a there).
android_targets=(
  "aarch64-linux-android arm64-v8a aarch64-linux-android"
  "armv7-linux-androideabi armeabi-v7a armv7a-linux-androideabi"
  "x86_64-linux-android x86_64 x86_64-linux-android"
)
ndk_bin=""
api="${ANDROID_API:-24}"

check_android() {
  local ndk="" how="" sdk rev major prefix install
  install="  Install the Android NDK, r25 or later: in Android Studio, Settings > Languages &
  Frameworks > Android SDK > SDK Tools > NDK (Side by side); or sdkmanager --install
  \"ndk;<version>\" (sdkmanager --list shows the versions). Then point the script at it:
    export ANDROID_NDK_HOME=\$HOME/Android/Sdk/ndk/<version>   # macOS: ~/Library/Android/sdk/ndk/<version>
    bindings-uniffi/package.sh --android"
  [[ "$api" =~ ^[0-9]+$ ]] || missing "ANDROID_API must be a number (the minimum API level), not '$api'" || return
  if [ -n "${ANDROID_NDK_HOME:-}" ]; then ndk="$ANDROID_NDK_HOME" how="ANDROID_NDK_HOME"
  elif [ -n "${ANDROID_NDK_ROOT:-}" ]; then ndk="$ANDROID_NDK_ROOT" how="ANDROID_NDK_ROOT"
  else
    for sdk in "${ANDROID_HOME:-}" "${ANDROID_SDK_ROOT:-}"; do
      if [ -z "$sdk" ] || [ ! -d "$sdk/ndk" ]; then continue; fi
      ndk=$(printf '%s\n' "$sdk"/ndk/*/ | sort -V | tail -n 1)
      ndk="${ndk%/}" how="the newest NDK in $sdk/ndk"
      if [ -d "$ndk" ]; then break; fi
      ndk=""
    done
  fi
  [ -n "$ndk" ] || missing "cannot build for Android: no Android NDK found (ANDROID_NDK_HOME and
  ANDROID_NDK_ROOT are unset, and there is no ndk/ in ANDROID_HOME or ANDROID_SDK_ROOT).
$install" || return
  [ -d "$ndk" ] || missing "cannot build for Android: $how is $ndk, which is not a directory.
$install" || return
  rev=$(sed -n 's/^Pkg\.Revision *= *//p' "$ndk/source.properties" 2>/dev/null || true)
  major="${rev%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] || missing "cannot build for Android: $ndk ($how) is not an NDK
  (its source.properties has no Pkg.Revision).
$install" || return
  [ "$major" -ge 25 ] || missing "cannot build for Android: the NDK at $ndk is $rev, and Rust's
  Android targets need r25 or later.
$install" || return
  ndk_bin=$(printf '%s\n' "$ndk"/toolchains/llvm/prebuilt/*/bin | head -n 1)
  [ -d "$ndk_bin" ] || missing "cannot build for Android: the NDK at $ndk has no
  toolchains/llvm/prebuilt/<host>/bin (an incomplete install?).
$install" || return
  for t in "${android_targets[@]}"; do
    read -r _ _ prefix <<<"$t"
    [ -x "$ndk_bin/$prefix$api-clang" ] || missing "cannot build for Android: NDK $rev has no
  $prefix$api-clang in $ndk_bin, so API level $api is not one it supports.
  Choose one it has: ANDROID_API=24 bindings-uniffi/package.sh --android" || return
  done
  echo "Android: NDK $rev at $ndk ($how), API level $api"
}

check_apple() {
  local install="  Install Xcode (App Store or developer.apple.com; the Command Line Tools alone have no
  xcodebuild), open it once, then: sudo xcode-select -s /Applications/Xcode.app/Contents/Developer"
  [ "$(uname -s)" = Darwin ] || missing "cannot build for iOS here: this is $(uname -s), and the
  XCFramework needs macOS with Xcode (xcodebuild -create-xcframework, lipo). Run
  bindings-uniffi/package.sh --ios on a Mac with Xcode.
$install" || return
  if ! command -v xcodebuild >/dev/null || ! xcodebuild -version >/dev/null 2>&1; then
    missing "cannot build for iOS: xcodebuild does not run.
$install" || return
  fi
  command -v lipo >/dev/null || missing "cannot build for iOS: no lipo.
$install" || return
  echo "Apple: $(xcodebuild -version | head -n 1)"
}

if $android; then check_android || true; fi
if $ios; then check_apple || true; fi
command -v python3 >/dev/null || missing "python3 is needed (zip files, the Swift patch)" || true
if [ ${#problems[@]} -gt 0 ]; then
  printf 'package.sh: %s\n' "${problems[@]}" >&2
  echo "package.sh: nothing was built." >&2
  exit 2
fi

# Only what is missing is added.
want=()
if $android; then for t in "${android_targets[@]}"; do want+=("${t%% *}"); done; fi
if $ios; then want+=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios); fi
if $macos; then want+=(aarch64-apple-darwin x86_64-apple-darwin); fi
if command -v rustup >/dev/null; then
  installed=$(rustup target list --installed)
  for t in "${want[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
else
  echo "no rustup: assuming the targets ${want[*]} are installed" >&2
fi

# The workspace's uniffi-bindgen, built for this machine (debug: it only reads metadata).
cargo build -q -p bucketsync-uniffi-bindgen
bindgen="$tgt/debug/uniffi-bindgen"

# Writes the files in $1 (a directory) into the zip file $2, paths relative to $1.
zip_dir() {
  python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
root, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        rel = os.path.relpath(folder, root)
        if rel != "." and not files and not dirs:
            z.writestr(rel + "/", "")
        for name in sorted(files):
            path = os.path.join(folder, name)
            z.write(path, os.path.relpath(path, root))
PY
}

# --- Android ----------------------------------------------------------------------------------

package_android() {
  local dest="$out/android" stage="$gen/aar" triple abi prefix var clang so flags
  rm -rf "$stage" "$gen/kotlin" "$gen/classes-jar" "$dest"
  mkdir -p "$stage" "$gen/kotlin" "$dest"
  for t in "${android_targets[@]}"; do
    read -r triple abi prefix <<<"$t"
    var=$(tr 'a-z-' 'A-Z_' <<<"$triple")
    clang="$ndk_bin/$prefix$api-clang"
    echo "-- $triple ($abi): release, without reqwest"
    # Linker per target; CC/AR too, should a dependency ever compile C (none does today).
    # 16 KB pages: added to the target's own rustflags, if any are set.
    flags="CARGO_TARGET_${var}_RUSTFLAGS"
    flags="${!flags:-} -C link-arg=-Wl,-z,max-page-size=16384"
    env "CARGO_TARGET_${var}_LINKER=$clang" "CC_${triple//-/_}=$clang" "AR_${triple//-/_}=$ndk_bin/llvm-ar" \
      "CARGO_TARGET_${var}_RUSTFLAGS=${flags# }" \
      cargo build --release --lib -p bucketsync-uniffi --target "$triple"
    so="$tgt/$triple/release/$lib.so"
    mkdir -p "$stage/jni/$abi" "$dest/jniLibs/$abi"
    cp "$so" "$stage/jni/$abi/"
    cp "$so" "$dest/jniLibs/$abi/"
  done

  # The Kotlin, generated from the arm64 library (every ABI exports the same interface).
  "$bindgen" generate --no-format --library "$tgt/aarch64-linux-android/release/$lib.so" \
    --language kotlin --out-dir "$gen/kotlin" >/dev/null
  mkdir -p "$dest/kotlin"
  cp -R "$gen/kotlin/uniffi" "$dest/kotlin/"
  cp bindings-uniffi/kotlin/*.kt "$dest/kotlin/uniffi/bucketsync_uniffi/"
  cp LICENSE-MIT LICENSE-APACHE "$dest/"

  cat > "$stage/AndroidManifest.xml" <<XML
<?xml version="1.0" encoding="utf-8"?>
<!-- bucketsync: the native library for the uniffi.bucketsync_uniffi Kotlin bindings. -->
<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="uniffi.bucketsync_uniffi">
    <uses-sdk android:minSdkVersion="$api" />
</manifest>
XML
  # Consumer R8/ProGuard rules, applied to any app that shrinks: JNA finds the bindings'
  # native methods, structures and callbacks by reflection and by name.
  cat > "$stage/proguard.txt" <<'PRO'
-keep class com.sun.jna.** { *; }
-keep class * implements com.sun.jna.** { *; }
-keep class uniffi.bucketsync_uniffi.** { *; }
-dontwarn java.awt.**
PRO
  # The format's other entries, empty: no resources, and no classes (the Kotlin is compiled by
  # the app, see the top of this file).
  : > "$stage/R.txt"
  mkdir -p "$stage/res" "$gen/classes-jar/META-INF"
  printf 'Manifest-Version: 1.0\r\n\r\n' > "$gen/classes-jar/META-INF/MANIFEST.MF"
  zip_dir "$gen/classes-jar" "$stage/classes.jar"
  zip_dir "$stage" "$dest/bucketsync-uniffi.aar"
  echo "Android: $dest/bucketsync-uniffi.aar ($(wc -c < "$dest/bucketsync-uniffi.aar") bytes)," \
    "$dest/kotlin (compile in the app), $dest/jniLibs"
}

# --- Apple ------------------------------------------------------------------------------------

# Writes DIR/Package.swift whose FFI target is the binary target $2 (a local path or a URL).
write_package_swift() {
  cat > "$1/Package.swift" <<SWIFT
// swift-tools-version:5.9
// bucketsync for iOS$($macos && echo " and macOS"): made by bindings-uniffi/package.sh.
// End-to-end encrypted key-value sync through an S3-compatible bucket. Licence: MIT OR
// Apache-2.0 (LICENSE-MIT and LICENSE-APACHE beside this file).
import PackageDescription

let package = Package(
    name: "Bucketsync",
    platforms: [.iOS("$IPHONEOS_DEPLOYMENT_TARGET"), .macOS("$MACOSX_DEPLOYMENT_TARGET")],
    products: [.library(name: "Bucketsync", targets: ["Bucketsync"])],
    targets: [
        $2,
        .target(name: "Bucketsync", dependencies: ["bucketsync_uniffiFFI"], path: "Sources/Bucketsync"),
    ]
)
SWIFT
}

package_apple() {
  local dest="$out/apple/Bucketsync" stage="$gen/apple" t libs=() args=() swift patch
  rm -rf "$stage" "$gen/swift" "$dest"
  mkdir -p "$stage/headers" "$gen/swift" "$dest/Sources/Bucketsync"
  export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-15.0}"
  export MACOSX_DEPLOYMENT_TARGET="${MACOSX_DEPLOYMENT_TARGET:-12.0}"
  local targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
  if $macos; then targets+=(aarch64-apple-darwin x86_64-apple-darwin); fi
  for t in "${targets[@]}"; do
    echo "-- $t: static library, release, without reqwest"
    # The crate's own crate-types are cdylib and rlib; the XCFramework takes a static library.
    cargo rustc --release --lib -p bucketsync-uniffi --target "$t" --crate-type staticlib
  done
  mkdir -p "$stage/ios" "$stage/ios-simulator"
  cp "$tgt/aarch64-apple-ios/release/$lib.a" "$stage/ios/"
  lipo -create "$tgt/aarch64-apple-ios-sim/release/$lib.a" "$tgt/x86_64-apple-ios/release/$lib.a" \
    -output "$stage/ios-simulator/$lib.a"
  libs=("$stage/ios/$lib.a" "$stage/ios-simulator/$lib.a")
  if $macos; then
    mkdir -p "$stage/macos"
    lipo -create "$tgt/aarch64-apple-darwin/release/$lib.a" "$tgt/x86_64-apple-darwin/release/$lib.a" \
      -output "$stage/macos/$lib.a"
    libs+=("$stage/macos/$lib.a")
  fi

  "$bindgen" generate --no-format --library "$tgt/aarch64-apple-ios/release/$lib.a" \
    --language swift --out-dir "$gen/swift" >/dev/null
  swift="$dest/Sources/Bucketsync/bucketsync_uniffi.swift"
  cp "$gen/swift/bucketsync_uniffi.swift" "$swift"
  # generate.sh's patch that makes cancelling a Swift Task cancel the Rust future: the Python
  # program between its <<'PATCH' and PATCH lines, run on this copy.
  patch=$(sed -n "/<<'PATCH'\$/,/^PATCH\$/p" bindings-uniffi/generate.sh | sed '1d;$d')
  [ -n "$patch" ] || { echo "package.sh: no Swift patch found in bindings-uniffi/generate.sh" >&2; exit 1; }
  python3 -c "$patch" "$swift"
  cp bindings-uniffi/swift/*.swift "$dest/Sources/Bucketsync/"
  cp LICENSE-MIT LICENSE-APACHE "$dest/"

  # Header and module map at the top of each slice's Headers (where Xcode's explicit-module
  # scanner looks). uniffi's own module map also says `use "_Builtin_stdbool"` and the like,
  # which newer Xcodes reject; this one, like generate.sh's, does not.
  cp "$gen/swift/bucketsync_uniffiFFI.h" "$stage/headers/"
  cat > "$stage/headers/module.modulemap" <<'MAP'
module bucketsync_uniffiFFI {
    header "bucketsync_uniffiFFI.h"
    export *
}
MAP
  for t in "${libs[@]}"; do args+=(-library "$t" -headers "$stage/headers"); done
  xcodebuild -create-xcframework "${args[@]}" -output "$dest/bucketsync_uniffiFFI.xcframework" >/dev/null

  write_package_swift "$dest" '.binaryTarget(name: "bucketsync_uniffiFFI", path: "bucketsync_uniffiFFI.xcframework")'

  # The XCFramework zipped (the folder itself at the top of the zip, as SwiftPM expects), and
  # its checksum: SwiftPM's is the zip's SHA-256 (what `swift package compute-checksum` prints).
  local zip="$out/apple/bucketsync_uniffiFFI.xcframework.zip" sum remote="$out/apple/Bucketsync-remote"
  rm -rf "$gen/xcframework-zip" "$zip" "$zip.sha256" "$remote"
  mkdir -p "$gen/xcframework-zip"
  cp -R "$dest/bucketsync_uniffiFFI.xcframework" "$gen/xcframework-zip/"
  zip_dir "$gen/xcframework-zip" "$zip"
  sum=$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$zip")
  echo "$sum" > "$zip.sha256"
  echo "Apple: $zip (SwiftPM checksum $sum)"
  if [ -n "$binary_url" ]; then
    mkdir -p "$remote"
    cp -R "$dest/Sources" "$dest/LICENSE-MIT" "$dest/LICENSE-APACHE" "$remote/"
    write_package_swift "$remote" ".binaryTarget(name: \"bucketsync_uniffiFFI\", url: \"$binary_url\", checksum: \"$sum\")"
    echo "Apple: $remote (Package.swift fetches $binary_url)"
  fi
  echo "Apple: $dest (Package.swift, bucketsync_uniffiFFI.xcframework, Sources/Bucketsync)"
}

# (Called from if, not from &&: set -e does not reach into a function called from an && list.)
if $android; then package_android; fi
if $ios; then package_apple; fi
echo "done: $out"
