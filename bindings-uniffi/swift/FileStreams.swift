// Hand-written beside the generated bindings: bindings-uniffi/generate.sh copies it into the
// Swift package next to bucketsync_uniffi.swift. Foundation streams as the FileSource and
// FileSink that `Vault.putFileFrom` and `Vault.getFileTo` take, for content with no path of
// its own (bytes in memory, a stream from another API).
import Foundation

/// Reads `stream` for `Vault.putFileFrom(key:source:size:listener:)`, up to its end:
///
/// ```swift
/// try await vault.putFileFrom(key: Data("photos/cat.jpg".utf8), source: InputStreamFileSource(InputStream(data: jpeg)))
/// ```
///
/// The stream is opened if it is not yet, and not closed. A failed read stops the put (a
/// `BucketsyncError.Config` carrying the stream's error) and the key keeps what it had. Reads
/// block, so they run on a queue of their own, one at a time, never on the threads of Swift's
/// concurrency pool.
public final class InputStreamFileSource: FileSource, @unchecked Sendable {
    private let stream: InputStream
    /// Blocking reads run here, never on the threads of Swift's concurrency pool.
    private let queue = DispatchQueue(label: "bucketsync.InputStreamFileSource")

    public init(_ stream: InputStream) {
        self.stream = stream
    }

    public func read(max: UInt32) async throws -> Data {
        let size = Swift.min(Swift.max(Int(max), 1), 1 << 20)
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { [stream] in
                if stream.streamStatus == .notOpen { stream.open() }
                var buffer = [UInt8](repeating: 0, count: size)
                let n = stream.read(&buffer, maxLength: size)
                if n < 0 {
                    let reason = stream.streamError.map { "\($0)" } ?? "no reason given"
                    continuation.resume(throwing: StreamError.Io(reason: "reading the stream failed: \(reason)"))
                } else {
                    continuation.resume(returning: Data(buffer[0..<n]))
                }
            }
        }
    }
}

/// Writes what `Vault.getFileTo(key:sink:listener:)` reads to `stream`, in order. The stream is
/// opened if it is not yet, and not closed. Each piece is checked against its chunk id before
/// it is written, the whole-file hash at the end: on a `BucketsyncError.Corrupt`, discard what
/// was written. Blocking writes run on a queue of their own, never on the threads of Swift's
/// concurrency pool.
public final class OutputStreamFileSink: FileSink, @unchecked Sendable {
    private let stream: OutputStream
    private let queue = DispatchQueue(label: "bucketsync.OutputStreamFileSink")

    public init(_ stream: OutputStream) {
        self.stream = stream
    }

    public func write(data: Data) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            queue.async { [stream] in
                if stream.streamStatus == .notOpen { stream.open() }
                var done = 0
                let bytes = [UInt8](data)
                while done < bytes.count {
                    let n = bytes[done...].withUnsafeBufferPointer { stream.write($0.baseAddress!, maxLength: $0.count) }
                    if n <= 0 {
                        let reason = stream.streamError.map { "\($0)" } ?? "it took nothing"
                        continuation.resume(throwing: StreamError.Io(reason: "writing the stream failed: \(reason)"))
                        return
                    }
                    done += n
                }
                continuation.resume()
            }
        }
    }
}
