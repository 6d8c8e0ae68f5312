// Hand-written beside the generated bindings: bindings-uniffi/generate.sh copies it into the
// Swift package next to bucketsync_uniffi.swift. The bytes of a file opened with
// `Vault.openFile(key:)` as an AsyncSequence, fetched as it is iterated.
import Foundation

/// The bytes of an opened file from an offset on, in pieces of at most `pieceSize` bytes, each
/// fetched (and checked) only when the iteration asks for it:
///
/// ```swift
/// if let movie = try vault.openFile(key: Data("videos/holiday.mp4".utf8)) {
///     for try await piece in movie.bytes(from: 0) { player.append(piece) }
/// }
/// ```
///
/// A read that fails throws its `BucketsyncError`; cancelling the task stops at the next piece.
public struct OpenedFileBytes: AsyncSequence, Sendable {
    public typealias Element = Data
    let file: OpenedFile
    let start: UInt64
    let pieceSize: UInt32

    public struct AsyncIterator: AsyncIteratorProtocol {
        let file: OpenedFile
        var at: UInt64
        let pieceSize: UInt32

        public mutating func next() async throws -> Data? {
            try Task.checkCancellation()
            let piece = try await file.readAt(offset: at, max: pieceSize)
            if piece.isEmpty { return nil }
            at += UInt64(piece.count)
            return piece
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(file: file, at: start, pieceSize: pieceSize)
    }
}

extension OpenedFile {
    /// Its bytes from `offset` on, `pieceSize` (1 MiB by default) at a time.
    public func bytes(from offset: UInt64 = 0, pieceSize: UInt32 = 1 << 20) -> OpenedFileBytes {
        OpenedFileBytes(file: self, start: offset, pieceSize: max(pieceSize, 1))
    }
}
