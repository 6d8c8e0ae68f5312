#!/usr/bin/env bash
# Builds the library and generates the app-facing sources with the workspace's own
# uniffi-bindgen:
#   target/uniffi/kotlin/uniffi/bucketsync_uniffi/bucketsync_uniffi.kt   (+ libbucketsync_uniffi.so)
#   target/uniffi/swift/Bucketsync/                                      (a Swift package, with
#                                                                          bindings-uniffi/swift/*.swift)
# Usage: bindings-uniffi/generate.sh [PACKAGE_ROOT]
#   PACKAGE_ROOT is where the Swift package will live (the module map needs an absolute
#   header path); default: target/uniffi/swift/Bucketsync in this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-debug}"
flag=$([ "$profile" = release ] && echo --release || true)
cargo build -q $flag -p bucketsync-uniffi --features reqwest
lib="target/$profile/libbucketsync_uniffi.so"
out=target/uniffi
rm -rf "$out" && mkdir -p "$out/kotlin" "$out/swift-gen"
"target/$profile/uniffi-bindgen" generate --no-format --library "$lib" --language kotlin --out-dir "$out/kotlin" >/dev/null
"target/$profile/uniffi-bindgen" generate --no-format --library "$lib" --language swift --out-dir "$out/swift-gen" >/dev/null
cp "$lib" "$out/kotlin/"

pkg="$out/swift/Bucketsync"
root="${1:-$(pwd)/$pkg}"
mkdir -p "$pkg/Sources/Bucketsync" "$pkg/Sources/bucketsync_uniffiFFI" "$pkg/lib"
cp "$out/swift-gen/bucketsync_uniffi.swift" "$pkg/Sources/Bucketsync/"
cp bindings-uniffi/swift/*.swift "$pkg/Sources/Bucketsync/"   # hand-written: Redaction.swift
cp "$out/swift-gen/bucketsync_uniffiFFI.h" "$pkg/Sources/bucketsync_uniffiFFI/"
cp "$lib" "$pkg/lib/"
cat > "$pkg/Sources/bucketsync_uniffiFFI/module.modulemap" <<MAP
module bucketsync_uniffiFFI {
    header "$root/Sources/bucketsync_uniffiFFI/bucketsync_uniffiFFI.h"
    export *
}
MAP
cat > "$pkg/Package.swift" <<SWIFT
// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "Bucketsync",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [.library(name: "Bucketsync", targets: ["Bucketsync"])],
    targets: [
        .systemLibrary(name: "bucketsync_uniffiFFI", path: "Sources/bucketsync_uniffiFFI"),
        .target(
            name: "Bucketsync",
            dependencies: ["bucketsync_uniffiFFI"],
            path: "Sources/Bucketsync",
            linkerSettings: [.unsafeFlags(["-L$root/lib"]), .linkedLibrary("bucketsync_uniffi")]
        ),
        .testTarget(name: "BucketsyncTests", dependencies: ["Bucketsync"], path: "Tests/BucketsyncTests"),
    ]
)
SWIFT
mkdir -p "$pkg/Tests/BucketsyncTests"
echo "generated $out/kotlin and $pkg"
