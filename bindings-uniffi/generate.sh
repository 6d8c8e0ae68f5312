#!/usr/bin/env bash
# Builds the library and generates the app-facing sources with the workspace's own
# uniffi-bindgen:
#   target/uniffi/kotlin/uniffi/bucketsync_uniffi/bucketsync_uniffi.kt   (+ libbucketsync_uniffi.so,
#                                                                          + bindings-uniffi/kotlin/*.kt)
#   target/uniffi/swift/Bucketsync/                                      (a Swift package, with
#                                                                          bindings-uniffi/swift/*.swift)
# Usage: bindings-uniffi/generate.sh [PACKAGE_ROOT]
#   PACKAGE_ROOT is where the Swift package will live (the module map needs an absolute
#   header path); default: target/uniffi/swift/Bucketsync in this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-debug}"
flag=$([ "$profile" = release ] && echo --release || true)
# BUCKETSYNC_CARGO_SELECTION: packages and features to build the debug library with instead
# (the suite's test script passes its test build's, which holds this library with reqwest, so
# the library the tests compiled is reused). A release build always builds the package alone.
selection="-p bucketsync-uniffi --features reqwest"
[ "$profile" = debug ] && selection="${BUCKETSYNC_CARGO_SELECTION:-$selection}"
cargo build -q $flag $selection --lib
# UNIFFI_BINDGEN: a generator built before (the suite's test script keeps the workspace's in
# its tool cache); otherwise the workspace's is built here.
bindgen="${UNIFFI_BINDGEN:-}"
if [ -z "$bindgen" ]; then
  cargo build -q $flag -p bucketsync-uniffi-bindgen
  bindgen="target/$profile/uniffi-bindgen"
fi
lib="target/$profile/libbucketsync_uniffi.so"
out=target/uniffi
rm -rf "$out" && mkdir -p "$out/kotlin" "$out/swift-gen"
"$bindgen" generate --no-format --library "$lib" --language kotlin --out-dir "$out/kotlin" >/dev/null
"$bindgen" generate --no-format --library "$lib" --language swift --out-dir "$out/swift-gen" >/dev/null
cp bindings-uniffi/kotlin/*.kt "$out/kotlin/uniffi/bucketsync_uniffi/"   # hand-written: HttpURLConnectionTransport.kt, OpenedFileInputStream.kt, FileStreams.kt, Events.kt
cp "$lib" "$out/kotlin/"

pkg="$out/swift/Bucketsync"
root="${1:-$(pwd)/$pkg}"
mkdir -p "$pkg/Sources/Bucketsync" "$pkg/Sources/bucketsync_uniffiFFI" "$pkg/lib"
cp "$out/swift-gen/bucketsync_uniffi.swift" "$pkg/Sources/Bucketsync/"
# uniffi 0.32's Swift does not pass a Task's cancellation on to the Rust future it awaits
# (mozilla/uniffi-rs#2771; its Kotlin does): cancelling the Task running `vault.sync()` would
# change nothing until the sync ended by itself. Patched here as the Kotlin side does it: on
# cancellation the Rust future is cancelled and freed (which drops the pending HostTransport
# call, whose Swift task is then cancelled: URLSessionTransport cancels its data task), and the
# call throws CancellationError. Only throwing async functions may be exported (a CancellationError
# through `try!` would crash).
python3 - "$pkg/Sources/Bucketsync/bucketsync_uniffi.swift" <<'PATCH'
import re, sys
path = sys.argv[1]
src = open(path).read()
if "try! await uniffiRustCallAsync(" in src:
    sys.exit("generate.sh: a non-throwing async export cannot be made cancellable; make it throw")
signature = "    freeFunc: (UInt64) -> (),\n    liftFunc: (F) throws -> T,"
loop = """    var pollResult: Int8;
    repeat {
        pollResult = await withUnsafeContinuation {
            pollFunc(
                rustFuture,
                { handle, pollResult in
                    uniffiFutureContinuationCallback(handle: handle, pollResult: pollResult)
                },
                uniffiContinuationHandleMap.insert(obj: $0)
            )
        }
    } while pollResult != UNIFFI_RUST_FUTURE_POLL_READY
"""
cancellable = """    let cancelled: Bool = await withTaskCancellationHandler {
        var pollResult: Int8;
        repeat {
            pollResult = await withUnsafeContinuation {
                pollFunc(
                    rustFuture,
                    { handle, pollResult in
                        uniffiFutureContinuationCallback(handle: handle, pollResult: pollResult)
                    },
                    uniffiContinuationHandleMap.insert(obj: $0)
                )
            }
        } while pollResult != UNIFFI_RUST_FUTURE_POLL_READY
        return Task.isCancelled
    } onCancel: {
        cancelFunc(rustFuture)
    }
    if cancelled {
        throw CancellationError()
    }
"""
calls = re.compile(r"freeFunc: (ffi_\w+)_rust_future_free_(\w+),")
if src.count(signature) != 1 or src.count(loop) != 1 or not calls.search(src):
    sys.exit("generate.sh: uniffi's Swift async code changed; update the cancellation patch")
src = src.replace(signature, "    freeFunc: (UInt64) -> (),\n    cancelFunc: @escaping @Sendable (UInt64) -> (),\n    liftFunc: (F) throws -> T,")
src = src.replace(loop, cancellable)
src = calls.sub(r"freeFunc: \1_rust_future_free_\2,\n            cancelFunc: { \1_rust_future_cancel_\2($0) },", src)
open(path, "w").write(src)
PATCH
cp bindings-uniffi/swift/*.swift "$pkg/Sources/Bucketsync/"   # hand-written: Redaction.swift, URLSessionTransport.swift, OpenedFileBytes.swift, FileStreams.swift, Events.swift
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
