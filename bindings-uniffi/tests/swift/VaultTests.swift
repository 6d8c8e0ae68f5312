// XCTest against SeaweedFS (endpoint and credentials from the environment, set by
// bindings-uniffi/test.sh): the same scenarios as the Kotlin test.
import XCTest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
@testable import Bucketsync

let env = ProcessInfo.processInfo.environment
let endpoint = env["BUCKETSYNC_TEST_ENDPOINT"] ?? "unset"

func store(_ bucket: String, _ prefix: String = "") -> String {
    "s3://\(bucket)/\(prefix)?endpoint=\(endpoint)&path_style=true"
}

func creds(_ secret: String? = nil, sessionToken: String? = nil) throws -> Credentials {
    try Credentials(accessKeyId: env["BUCKETSYNC_TEST_ACCESS_KEY"]!, secretAccessKey: secret ?? env["BUCKETSYNC_TEST_SECRET_KEY"]!, sessionToken: sessionToken)
}

/// Passes every request to a `URLSessionTransport` and records it.
final class Recording: HostTransport, @unchecked Sendable {
    private let inner: HostTransport
    private let lock = NSLock()
    private var requests: [HttpRequest] = []
    var calls: Int { lock.withLock { requests.count } }
    /// Every request handed over, as received.
    var sent: [HttpRequest] { lock.withLock { requests } }

    init(_ inner: HostTransport = URLSessionTransport()) { self.inner = inner }

    func send(request: HttpRequest) async throws -> HttpResponse {
        lock.withLock { requests.append(request) }
        return try await inner.send(request: request)
    }
}

/// Passes every request on to `inner` and notes each exchange, statuses included.
final class Recorder: HostTransport, @unchecked Sendable {
    struct Exchange: CustomStringConvertible {
        let method: String
        let url: String
        let ifNoneMatch: String?
        let status: Int
        /// "hint" (the change hint), "list" (a listing) or "other".
        var kind: String {
            if url.contains("list-type=2") { return "list" }
            return url.components(separatedBy: "?")[0].hasSuffix("/h") ? "hint" : "other"
        }
        var description: String { "\(method) \(kind) \(status)" }
    }

    private let inner: HostTransport
    private let lock = NSLock()
    private var seen: [Exchange] = []

    init(_ inner: HostTransport) { self.inner = inner }

    func send(request: HttpRequest) async throws -> HttpResponse {
        let response = try await inner.send(request: request)
        let ifNoneMatch = request.headers.first { $0.name.lowercased() == "if-none-match" }?.value
        lock.withLock { seen.append(Exchange(method: request.method, url: request.url, ifNoneMatch: ifNoneMatch, status: Int(response.status))) }
        return response
    }

    /// What was sent (and answered) since the last call.
    func take() -> [Exchange] { lock.withLock { defer { seen = [] }; return seen } }
}

/// Keeps the events it is given; optionally throws after each (which must break nothing).
final class Events: EventListener, @unchecked Sendable {
    private let lock = NSLock()
    private var events: [Event] = []
    private let throwing: Bool
    init(throwing: Bool = false) { self.throwing = throwing }

    func onEvent(event: Event) throws {
        add(event)
        if throwing { throw CancellationError() }
    }

    func add(_ event: Event) { lock.withLock { events.append(event) } }
    var all: [Event] { lock.withLock { events } }
    func has(_ state: SyncState) -> Bool { all.contains { $0.kind == .state && $0.state == state } }
}

/// One request as it arrived on the wire: the head exactly as sent, and the body.
struct RawRequest: Sendable {
    let head: String
    let body: Data
    var requestLine: String { head.components(separatedBy: "\r\n")[0] }
    /// The header lines, as (name, value), in the order sent.
    var headers: [(String, String)] {
        head.components(separatedBy: "\r\n").dropFirst().filter { !$0.isEmpty }.map { line in
            let colon = line.firstIndex(of: ":") ?? line.endIndex
            return (String(line[..<colon]), String(line[colon...].dropFirst()).trimmingCharacters(in: .whitespaces))
        }
    }
    func values(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map { $0.1 } }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (POSIX sockets, a thread per connection) that records
/// each request as it arrived and answers what `answer` returns; nil means never answer (it then
/// waits until the client hangs up).
final class LocalServer: @unchecked Sendable {
    private let listener: Int32
    let port: UInt16
    var url: String { "http://127.0.0.1:\(port)" }
    private let answer: @Sendable (RawRequest) -> Data?
    private let lock = NSLock()
    private var received: [RawRequest] = []
    private var accepted = 0
    private var unanswered = 0
    private var hangUps = 0
    var requests: [RawRequest] { lock.withLock { received } }
    var connections: Int { lock.withLock { accepted } }
    /// Requests received and left unanswered.
    var waiting: Int { lock.withLock { unanswered } }
    /// Clients that hung up on an unanswered request.
    var hungUp: Int { lock.withLock { hangUps } }

    init(answer: @escaping @Sendable (RawRequest) -> Data?) {
        self.answer = answer
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = listen(fd, 16)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                lock.withLock { accepted += 1 }
                Thread.detachNewThread { [self] in serve(client) }
            }
        }
    }

    func stop() {
        _ = shutdown(listener, Int32(SHUT_RDWR))
        _ = close(listener)
    }

    private func serve(_ client: Int32) {
        defer { _ = close(client) }
        var buffer = Data()
        func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = recv(client, &chunk, chunk.count, 0)
            if n <= 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
        while true {
            let separator = Data("\r\n\r\n".utf8)
            while buffer.range(of: separator) == nil { if !fill() { return } }
            let end = buffer.range(of: separator)!.upperBound
            let head = String(decoding: buffer[buffer.startIndex..<end], as: UTF8.self)
            let length = Int(RawRequest(head: head, body: Data()).values("content-length").first ?? "0") ?? 0
            while buffer.count - (end - buffer.startIndex) < length { if !fill() { return } }
            let request = RawRequest(head: head, body: Data(buffer[end..<(end + length)]))
            buffer = Data(buffer[(end + length)...])
            lock.withLock { received.append(request) }
            guard let reply = answer(request) else {
                lock.withLock { unanswered += 1 }
                while fill() {}
                lock.withLock { hangUps += 1 }
                return
            }
            var sent = 0
            while sent < reply.count {
                let n = reply[sent...].withUnsafeBytes { bytes in
                    #if canImport(Glibc)
                    return Glibc.send(client, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
                    #else
                    return Darwin.send(client, bytes.baseAddress, bytes.count, 0)
                    #endif
                }
                if n <= 0 { return }
                sent += n
            }
        }
    }

    static func reply(_ status: Int, _ body: String = "", headers: [(String, String)] = []) -> Data {
        var head = "HTTP/1.1 \(status) Whatever\r\nContent-Length: \(body.utf8.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return Data((head + "\r\n" + body).utf8)
    }
}

/// Waits (without blocking a thread) until `condition` holds, for at most `seconds`.
func eventually(_ seconds: Double, _ condition: () -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() > deadline { return false }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
    return true
}

/// True for the first caller only.
final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func first() -> Bool { lock.withLock { defer { done = true }; return !done } }
}

/// The outcome of `task`, or nil when it has not ended within `seconds` (the task goes on).
func outcome<T: Sendable>(of task: Task<T, Error>, within seconds: Double) async -> Result<T, Error>? {
    let once = Once()
    return await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, Error>?, Never>) in
        Task {
            let result = await task.result
            if once.first() { continuation.resume(returning: result) }
        }
        Task {
            try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            if once.first() { continuation.resume(returning: nil) }
        }
    }
}

func s3(_ server: LocalServer) -> String { "s3://bucket/?endpoint=\(server.url)&path_style=true" }

extension HttpRequest {
    /// The value of header `name` (case-insensitive) in what the transport received.
    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// Every way an app may print a request: `print`, interpolation, `debugPrint`, `dump`, the list.
func printedForms(_ request: HttpRequest) -> [String] {
    var dumped = ""
    dump(request, to: &dumped)
    var headersDumped = ""
    dump(request.headers, to: &headersDumped)
    return [String(describing: request), "\(request)", String(reflecting: request), dumped,
            String(describing: request.headers), headersDumped, String(describing: [request])]
}

/// Checks that the printed forms of a signed request hide its secrets and show the rest.
func checkPrintedRequest(_ request: HttpRequest, token: String?, file: StaticString = #filePath, line: UInt = #line) throws {
    let authorization = try XCTUnwrap(request.header("authorization"), "unsigned: \(request.url)", file: file, line: line)
    let marker = try XCTUnwrap(authorization.range(of: "Signature="), authorization, file: file, line: line)
    let signature = String(authorization[marker.upperBound...])
    XCTAssertEqual(signature.count, 64, "the transport reads the real authorization header", file: file, line: line)
    for printed in printedForms(request) {
        XCTAssertFalse(printed.contains(signature) || printed.contains(authorization), "the signature is hidden: \(printed)", file: file, line: line)
        if let token { XCTAssertFalse(printed.contains(token), "the session token is hidden: \(printed)", file: file, line: line) }
    }
    let printed = String(describing: request)
    let path = try XCTUnwrap(URLComponents(string: request.url)).percentEncodedPath
    XCTAssertTrue(printed.contains(request.method) && printed.contains(path), "method and path are shown: \(printed)", file: file, line: line)
    XCTAssertTrue(printed.contains("<redacted>") && printed.contains("x-amz-date"), "other headers are shown: \(printed)", file: file, line: line)
}

final class VaultTests: XCTestCase {
    /// Collects the progress a file transfer reports.
    final class Progresses: FileListener, @unchecked Sendable {
        private let lock = NSLock()
        private var seen: [FileProgress] = []
        func onProgress(progress: FileProgress) { lock.lock(); seen.append(progress); lock.unlock() }
        var last: FileProgress? { lock.lock(); defer { lock.unlock() }; return seen.last }
    }

    func testAFileGoesBetweenDevicesByPath() async throws {
        let key = try VaultKey.generate()
        let a = try Vault.open(store: store("swift", "files/"), key: key, credentials: try creds(), create: true)
        let b = try Vault.open(store: store("swift", "files/"), key: key, credentials: try creds())
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bucketsync-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let source = dir.appendingPathComponent("in.bin")
        try data.write(to: source)
        // ANCHOR: files
        let progress = Progresses()
        let report = try await a.putFile(key: Data("docs/in.bin".utf8), path: source.path, listener: progress)
        XCTAssertEqual(report.size, UInt64(data.count))
        // Cut points depend on the vault key (a chunk may reach 8 MiB): at least one chunk in a
        // pack, none meaning the file went inline.
        XCTAssertGreaterThanOrEqual(report.chunks, 1)
        XCTAssertGreaterThanOrEqual(report.packs, 1)
        XCTAssertEqual(progress.last?.bytesDone, UInt64(data.count))
        XCTAssertEqual(try a.fileInfo(key: Data("docs/in.bin".utf8))?.size, UInt64(data.count))
        for vault in [a, b] {
            let synced = try await vault.sync()
            XCTAssertTrue(synced.errors.isEmpty)
        }
        let target = dir.appendingPathComponent("out.bin")
        let found = try await b.getFile(key: Data("docs/in.bin".utf8), path: target.path, listener: nil)
        XCTAssertTrue(found)
        XCTAssertEqual(try Data(contentsOf: target), data)
        // ANCHOR_END: files
        // Opened for reading at any offset, and as an AsyncSequence.
        let opened = try XCTUnwrap(try b.openFile(key: Data("docs/in.bin".utf8)))
        XCTAssertEqual(opened.size(), UInt64(data.count))
        let middle = try await opened.readAt(offset: 1 << 20, max: 300)
        XCTAssertEqual(middle, data.subdata(in: (1 << 20)..<((1 << 20) + 300)))
        let end = try await opened.readAt(offset: UInt64(data.count - 5), max: 100)
        XCTAssertEqual(end, data.subdata(in: (data.count - 5)..<data.count))
        let past = try await opened.readAt(offset: UInt64(data.count), max: 100)
        XCTAssertTrue(past.isEmpty)
        var whole = Data()
        var pieces = 0
        for try await piece in opened.bytes(from: 0, pieceSize: 700_000) {
            whole.append(piece)
            pieces += 1
        }
        XCTAssertEqual(whole, data)
        XCTAssertGreaterThanOrEqual(pieces, 4)
        XCTAssertNil(try b.openFile(key: Data("nope".utf8)))
        try b.putText(key: "plain", value: "a record, not a file")
        XCTAssertThrowsError(try b.openFile(key: Data("plain".utf8)))
        let absent = dir.appendingPathComponent("absent.bin")
        let none = try await b.getFile(key: Data("nope".utf8), path: absent.path, listener: nil)
        XCTAssertFalse(none)
        XCTAssertFalse(FileManager.default.fileExists(atPath: absent.path))
    }

    /// Notes the paths a folder call reports progress for.
    final class PathsSeen: FolderListener, @unchecked Sendable {
        private let lock = NSLock()
        private var paths: Set<String> = []
        func onProgress(path: String, progress: FileProgress) {
            lock.withLock { _ = paths.insert(path) }
        }
        var seen: Set<String> { lock.withLock { paths } }
    }

    func testFoldersBackUpPhotosRestoreElsewhereAndSyncBothWays() async throws {
        let key = try VaultKey.generate()
        let phone = try Vault.open(store: store("swift", "folders/"), key: key, device: "phone", credentials: try creds(), create: true)
        let laptop = try Vault.open(store: store("swift", "folders/"), key: key, device: "laptop", credentials: try creds())
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bucketsync-folders-\(UUID().uuidString)")
        let camera = root.appendingPathComponent("DCIM/Camera")
        try FileManager.default.createDirectory(at: camera, withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        for i in 1...3 {
            let data = Data((0..<(200_000 + i)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            try data.write(to: camera.appendingPathComponent("IMG_000\(i).jpg"))
        }
        let dcim = root.appendingPathComponent("DCIM").path
        let progress = PathsSeen()
        // ANCHOR: folders
        // Back the phone's photos up: only what changed since the last backup is sent.
        let backup = try await phone.backupFolder(folder: dcim, name: "photos", listener: progress)
        XCTAssertEqual(backup.filesStored, 3)
        XCTAssertTrue(backup.errors.isEmpty, "\(backup.errors)")
        _ = try await phone.sync()
        // On another device: the same tree, byte for byte.
        _ = try await laptop.sync()
        let restoredTo = root.appendingPathComponent("restored")
        let restored = try await laptop.restoreFolder(to: restoredTo.path, name: "photos")
        XCTAssertEqual(restored.filesWritten, 3)
        // ANCHOR_END: folders
        XCTAssertEqual(progress.seen, ["Camera/IMG_0001.jpg", "Camera/IMG_0002.jpg", "Camera/IMG_0003.jpg"])
        for i in 1...3 {
            let name = "Camera/IMG_000\(i).jpg"
            XCTAssertEqual(try Data(contentsOf: restoredTo.appendingPathComponent(name)),
                           try Data(contentsOf: root.appendingPathComponent("DCIM/\(name)")))
        }
        XCTAssertEqual(try laptop.backups(), ["photos"])
        let checked = try await laptop.verify()
        XCTAssertEqual(checked.filesOk, 3)
        XCTAssertTrue(checked.damaged.isEmpty)
        let one = try await laptop.restoreFolder(to: root.appendingPathComponent("one").path, name: "photos",
                                                 options: RestoreOptions(only: ["IMG_0002.jpg"]))
        XCTAssertEqual(one.filesWritten, 1, "only the one asked for")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("one/Camera/IMG_0002.jpg").path))
        // A dry run changes nothing.
        try Data(repeating: 4, count: 1000).write(to: camera.appendingPathComponent("IMG_0004.jpg"))
        let dry = try await phone.backupFolder(folder: dcim, name: "photos", options: BackupOptions(dryRun: true))
        XCTAssertTrue(dry.dryRun)
        XCTAssertEqual(dry.filesNew, 1)
        let again = try await phone.backupFolder(folder: dcim, name: "photos", options: BackupOptions(dryRun: true))
        XCTAssertEqual(again.filesNew, 1, "the dry run stored nothing")
        // Two-way: an edit on the laptop reaches the phone.
        let onPhone = root.appendingPathComponent("notes-phone")
        let onLaptop = root.appendingPathComponent("notes-laptop")
        for dir in [onPhone, onLaptop] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        try Data("milk".utf8).write(to: onPhone.appendingPathComponent("todo.txt"))
        let sent = try await phone.syncFolder(folder: onPhone.path, name: "notes")
        XCTAssertEqual(sent.uploaded, 1)
        let got = try await laptop.syncFolder(folder: onLaptop.path, name: "notes")
        XCTAssertEqual(got.downloaded, 1)
        try Data("milk, eggs".utf8).write(to: onLaptop.appendingPathComponent("todo.txt"))
        let plan = try await laptop.syncFolder(folder: onLaptop.path, name: "notes", dryRun: true)
        XCTAssertTrue(plan.dryRun)
        XCTAssertEqual(plan.changes, [PathChange(path: "todo.txt", change: "upload")])
        _ = try await laptop.syncFolder(folder: onLaptop.path, name: "notes")
        let back = try await phone.syncFolder(folder: onPhone.path, name: "notes")
        XCTAssertEqual(back.downloaded, 1)
        XCTAssertTrue(back.conflicts.isEmpty)
        XCTAssertEqual(try String(contentsOf: onPhone.appendingPathComponent("todo.txt"), encoding: .utf8), "milk, eggs")
        // A folder that is not there is a Config error.
        do {
            _ = try await phone.syncFolder(folder: root.appendingPathComponent("missing").path, name: "notes")
            XCTFail("synced a missing folder")
        } catch BucketsyncError.Config(let message) {
            XCTAssertTrue(message.contains("nothing was synced"), message)
        }
    }

    /// Notes the keys a putFiles reports progress for, and runs `then` after each call.
    final class FilesProgress: FilesListener, @unchecked Sendable {
        private let lock = NSLock()
        private var keys: Set<Data> = []
        private let then: @Sendable () -> Void
        init(then: @escaping @Sendable () -> Void) { self.then = then }
        func onProgress(key: Data, progress: FileProgress) {
            lock.withLock { _ = keys.insert(key) }
            then()
        }
        var seen: Set<Data> { lock.withLock { keys } }
    }

    func testPutFilesSharesPacksAndLeavesOutOnlyTheMissingFile() async throws {
        let key = try VaultKey.generate()
        let a = try Vault.open(store: store("swift", "batch/"), key: key, credentials: try creds(), create: true)
        let b = try Vault.open(store: store("swift", "batch/"), key: key, credentials: try creds())
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bucketsync-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        var files: [Data: (path: URL, data: Data)] = [:]
        for i in 1...3 {
            let data = Data((0..<(100_000 * i)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let path = dir.appendingPathComponent("\(i).bin")
            try data.write(to: path)
            files[Data("docs/\(i).bin".utf8)] = (path, data)
        }
        let gone = dir.appendingPathComponent("gone.bin")
        try Data(repeating: 1, count: 50_000).write(to: gone)
        // Checked before anything is sent: a missing path throws and nothing is stored.
        do {
            _ = try await a.putFiles(files: [FileToPut(key: Data("x".utf8), path: files[Data("docs/1.bin".utf8)]!.path.path),
                                             FileToPut(key: Data("y".utf8), path: dir.appendingPathComponent("missing").path)],
                                     listener: nil, packSize: nil)
            XCTFail("stored a batch with a missing path")
        } catch BucketsyncError.Config(let message) {
            XCTAssertTrue(message.contains("missing"), message)
        }
        XCTAssertNil(try a.fileInfo(key: Data("x".utf8)))
        // A folder is refused the same way, as on every platform.
        do {
            _ = try await a.putFiles(files: [FileToPut(key: Data("x".utf8), path: dir.path)], listener: nil, packSize: nil)
            XCTFail("stored a folder")
        } catch BucketsyncError.Config(let message) {
            XCTAssertTrue(message.contains("is a folder, not a file"), message)
        }
        // A file that is gone when its turn comes (removed by the first progress call) is left
        // out; the others are stored.
        let goneKey = Data("docs/gone.bin".utf8)
        let progress = FilesProgress(then: { try? FileManager.default.removeItem(at: gone) })
        let keys = files.keys.sorted { $0.lexicographicallyPrecedes($1) }
        var given = keys.map { FileToPut(key: $0, path: files[$0]!.path.path) }
        given.insert(FileToPut(key: goneKey, path: gone.path), at: 1)
        let report = try await a.putFiles(files: given, listener: progress, packSize: nil)
        XCTAssertEqual(Set(report.stored.map { $0.key }), Set(keys))
        for stored in report.stored {
            XCTAssertEqual(stored.report.size, UInt64(files[stored.key]!.data.count))
        }
        XCTAssertEqual(report.failed.map { $0.key }, [goneKey])
        XCTAssertEqual(report.failed.first?.category, "config")
        XCTAssertTrue(report.failed.first?.message.contains("gone.bin") ?? false, "\(report.failed)")
        // Each file is one chunk (under 512 KiB), and a chunk goes into either of the upload's
        // two open packs, at random: three files in at most two packs share one.
        XCTAssertTrue((1...2).contains(report.packs), "at most two packs for the three: \(report)")
        XCTAssertGreaterThanOrEqual(report.chunksUploaded, 3)
        XCTAssertEqual(progress.seen, Set(keys))
        XCTAssertNil(try a.fileInfo(key: goneKey))
        for vault in [a, b] {
            let synced = try await vault.sync()
            XCTAssertTrue(synced.errors.isEmpty)
        }
        for (k, file) in files {
            let out = dir.appendingPathComponent("out-\(file.path.lastPathComponent)")
            let found = try await b.getFile(key: k, path: out.path, listener: nil)
            XCTAssertTrue(found)
            XCTAssertEqual(try Data(contentsOf: out), file.data)
        }
    }

    final class FailingSource: FileSource, @unchecked Sendable {
        private var left = 2 << 20
        func read(max: UInt32) async throws -> Data {
            if left <= 0 { throw StreamError.Io(reason: "disk gone") }
            let n = min(Int(max), left)
            left -= n
            return Data(repeating: 7, count: n)
        }
    }

    func testAStreamGoesUpAndAnotherDeviceReadsItIntoAStream() async throws {
        let key = try VaultKey.generate()
        let a = try Vault.open(store: store("swift", "streams/"), key: key, credentials: try creds(), create: true)
        let b = try Vault.open(store: store("swift", "streams/"), key: key, credentials: try creds())
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<((3 << 20) + 4321)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let progress = Progresses()
        let report = try await a.putFileFrom(key: Data("docs/streamed.bin".utf8), source: InputStreamFileSource(InputStream(data: data)),
                                             size: UInt64(data.count), listener: progress)
        XCTAssertEqual(report.size, UInt64(data.count))
        // Cut points depend on the vault key (a chunk may reach 8 MiB): at least one chunk in a
        // pack, none meaning the file went inline.
        XCTAssertGreaterThanOrEqual(report.chunks, 1)
        XCTAssertGreaterThanOrEqual(report.packs, 1)
        XCTAssertEqual(progress.last?.bytesDone, UInt64(data.count))
        for vault in [a, b] {
            let synced = try await vault.sync()
            XCTAssertTrue(synced.errors.isEmpty)
        }
        let out = OutputStream.toMemory()
        let found = try await b.getFileTo(key: Data("docs/streamed.bin".utf8), sink: OutputStreamFileSink(out), listener: nil)
        XCTAssertTrue(found)
        XCTAssertEqual(out.property(forKey: .dataWrittenToMemoryStreamKey) as? Data, data)
        let none = try await b.getFileTo(key: Data("nope".utf8), sink: OutputStreamFileSink(OutputStream.toMemory()), listener: nil)
        XCTAssertFalse(none)
        // A source that fails half-way: Config with its reason, and the key keeps its file.
        do {
            _ = try await a.putFileFrom(key: Data("docs/streamed.bin".utf8), source: FailingSource(), size: nil, listener: nil)
            XCTFail("a failing source was stored")
        } catch BucketsyncError.Config(let message) {
            XCTAssertTrue(message.contains("disk gone"), message)
        }
        XCTAssertEqual(try a.fileInfo(key: Data("docs/streamed.bin".utf8))?.size, UInt64(data.count))
    }

    func testTwoVaultsConvergeAndAThirdBootstraps() async throws {
        let key = try VaultKey.generate()
        // ANCHOR: converge
        let a = try Vault.open(store: store("swift", "converge/"), key: key, device: "swift a", credentials: try creds(), create: true)
        let b = try Vault.open(store: store("swift", "converge/"), key: key, credentials: try creds())
        try a.putText(key: "notes/a", value: "from a")
        try b.putText(key: "notes/b", value: "from b")
        try b.delete(key: Data("notes/b".utf8))
        for vault in [a, b, a] {
            let report = try await vault.sync()
            XCTAssertTrue(report.errors.isEmpty)
        }
        XCTAssertEqual(try b.getText(key: "notes/a"), "from a")
        XCTAssertNil(try a.getText(key: "notes/b"))
        // ANCHOR_END: converge
        let c = try Vault.open(store: store("swift", "converge/"), key: key, credentials: try creds())
        let report = try await c.sync()
        XCTAssertEqual(report.pulled, 2)
        XCTAssertEqual(try c.keys(prefix: Data()).count, 1)
        let again = try await c.sync()
        XCTAssertEqual(again.requests, 1)
        XCTAssertEqual(report.changed.count, 2)
        XCTAssertTrue(try c.devices().contains { $0.label == "swift a" && !$0.stale })
        XCTAssertThrowsError(try c.devices(staleAfterDays: -1)) { error in
            guard case BucketsyncError.Config(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("staleAfterDays"), message)
        }
        // c retires b; b starts over under a new id when it syncs again.
        let bId = try b.devices(staleAfterDays: 30).first { $0.thisDevice }!.id
        try c.retire(id: bId)
        _ = try await c.sync()
        try b.putText(key: "after", value: "retired")
        let back = try await b.sync()
        XCTAssertEqual(back.startedOver, bId)
        XCTAssertEqual(back.restamped.count, 1)
        _ = try await c.sync()
        XCTAssertEqual(try c.getText(key: "after"), "retired")
        XCTAssertTrue(try c.devices(staleAfterDays: 30).contains { $0.id == bId && $0.retired })
        // ANCHOR: not_found
        let lost = try Vault.open(store: store("swift", "converge/"), key: try VaultKey.generate(), credentials: try creds())
        do {
            _ = try await lost.sync()
            XCTFail("joined a vault that does not exist")
        } catch BucketsyncError.NotFound(let message) {
            XCTAssertTrue(message.contains("no vault for this key"), message)
        }
        // ANCHOR_END: not_found
    }

    func testASwiftTransportIsUsedForASync() async throws {
        let key = try VaultKey.generate()
        let transport = Recording()
        let vault = try Vault.open(store: store("swift", "transport/"), key: key, credentials: try creds(), transport: transport, create: true)
        try vault.putText(key: "via", value: "URLSession")
        let report = try await vault.sync()
        XCTAssertEqual(report.pushed, 1)
        XCTAssertEqual(UInt64(transport.calls), report.requests)
        let reader = try Vault.open(store: store("swift", "transport/"), key: key, credentials: try creds())
        _ = try await reader.sync()
        XCTAssertEqual(try reader.getText(key: "via"), "URLSession")
    }

    func testARequestPrintsWithoutItsSignatureOrSessionToken() async throws {
        // Static credentials: the sync succeeds, so every request went out with its real signature.
        let key = try VaultKey.generate()
        let transport = Recording()
        let vault = try Vault.open(store: store("swift", "redact/"), key: key, credentials: try creds(), transport: transport, create: true)
        try vault.putText(key: "secret/path", value: "value")
        let report = try await vault.sync()
        XCTAssertTrue(report.errors.isEmpty)
        XCTAssertEqual(report.pushed, 1)
        XCTAssertEqual(try vault.unpushed(), 0)
        XCTAssertEqual(UInt64(transport.sent.count), report.requests)
        XCTAssertTrue(transport.sent.contains { $0.method == "PUT" })
        for request in transport.sent { try checkPrintedRequest(request, token: nil) }
        // A session token: the transport gets it in its header (SeaweedFS, which issued no such
        // token, refuses it), and no printed form shows it.
        let token = "swift-session-token-0123456789-not-for-logs"
        let withToken = Recording()
        let temporary = try Vault.open(store: store("swift", "redact/"), key: key, credentials: try creds(sessionToken: token), transport: withToken)
        do {
            _ = try await temporary.sync()
            XCTFail("SeaweedFS accepted a token it never issued")
        } catch BucketsyncError.Auth(let message) {
            XCTAssertFalse(message.contains(token))
        }
        XCTAssertFalse(withToken.sent.isEmpty)
        for request in withToken.sent {
            XCTAssertEqual(request.header("X-Amz-Security-Token"), token, "the real token is sent")
            try checkPrintedRequest(request, token: token)
        }
        // A presigned URL and mixed-case header names, as an app may build them.
        let presigned = HttpRequest(
            method: "GET",
            url: "https://bucket.s3.amazonaws.com/notes/a?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
                + "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=300&x-amz-security-token=presigned-token&X-Amz-SignedHeaders=host&X-Amz-Signature=0123abcd",
            headers: [Header(name: "Authorization", value: "AWS4-HMAC-SHA256 Signature=feedbeef"),
                      Header(name: "X-Amz-Security-Token", value: "header-token"), Header(name: "Range", value: "bytes=0-9")],
            body: Data(count: 3))
        for printed in printedForms(presigned) {
            for secret in ["AKIAEXAMPLE", "presigned-token", "0123abcd", "feedbeef", "header-token"] {
                XCTAssertFalse(printed.contains(secret), "\(secret) is hidden: \(printed)")
            }
        }
        let printed = String(describing: presigned)
        for shown in ["GET", "https://bucket.s3.amazonaws.com/notes/a?", "X-Amz-Expires=300", "X-Amz-Signature=<redacted>", "bytes=0-9", "3 bytes"] {
            XCTAssertTrue(printed.contains(shown), "\(shown) is shown: \(printed)")
        }
        XCTAssertEqual(presigned.headers[0].value, "AWS4-HMAC-SHA256 Signature=feedbeef")
        XCTAssertTrue(presigned.url.contains("X-Amz-Signature=0123abcd"))
        XCTAssertEqual(presigned, presigned)
    }

    func testErrorsAreTypedWithTheirCategory() async throws {
        let key = try VaultKey.generate()
        let code = key.recoveryCode()
        let typo = (code.first == "1" ? "2" : "1") + code.dropFirst()
        XCTAssertThrowsError(try VaultKey.fromRecoveryCode(code: typo)) { error in
            guard case BucketsyncError.Config = error else { return XCTFail("\(error)") }
        }
        let secret = "not-the-secret-at-all-42"
        let wrong = try Vault.open(store: store("swift"), key: key, credentials: try creds(secret))
        try wrong.putText(key: "k", value: "v")
        do {
            _ = try await wrong.sync()
            XCTFail("a wrong secret was accepted")
        } catch BucketsyncError.Auth(let message) {
            XCTAssertFalse(message.contains(secret))
        }
        XCTAssertEqual(try wrong.unpushed(), 1)
        do {
            _ = try await Vault.open(store: store("no-such-bucket-here"), key: key, credentials: try creds()).sync()
            XCTFail("a missing bucket was accepted")
        } catch BucketsyncError.NotFound {}
    }

    func testURLSessionTransportOneDeviceWritesAnotherReadsBack() async throws {
        let key = try VaultKey.generate()
        let big = Data((0..<70_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        // ANCHOR: platform_transport
        let writerTransport = Recording(URLSessionTransport())
        let writer = try Vault.open(store: store("swift", "platform/"), key: key, device: "writer", credentials: try creds(), transport: writerTransport, create: true)
        try writer.putText(key: "note", value: "through URLSession")
        try writer.putText(key: "gone", value: "soon")
        try writer.put(key: Data("bytes".utf8), value: big)
        var report = try await writer.sync()
        // ANCHOR_END: platform_transport
        XCTAssertTrue(report.errors.isEmpty, "\(report.errors)")
        XCTAssertEqual(report.pushed, 3)
        XCTAssertEqual(try writer.unpushed(), 0)
        XCTAssertEqual(UInt64(writerTransport.calls), report.requests, "every request went through it")
        let readerTransport = Recording(URLSessionTransport())
        let reader = try Vault.open(store: store("swift", "platform/"), key: key, credentials: try creds(), transport: readerTransport)
        report = try await reader.sync()
        XCTAssertTrue(report.errors.isEmpty, "\(report.errors)")
        XCTAssertEqual(report.pulled, 3)
        XCTAssertEqual(UInt64(readerTransport.calls), report.requests)
        XCTAssertEqual(try reader.getText(key: "note"), "through URLSession")
        XCTAssertEqual(try reader.get(key: Data("bytes".utf8)), big)
        // Back the other way: a deletion and a new key from the reader reach the writer.
        try reader.delete(key: Data("gone".utf8))
        try reader.putText(key: "reply", value: "from the reader")
        _ = try await reader.sync()
        _ = try await writer.sync()
        XCTAssertEqual(try writer.getText(key: "reply"), "from the reader")
        XCTAssertNil(try writer.getText(key: "gone"))
    }

    func testURLSessionTransportWrongSecretIsAuthMissingBucketNotFound() async throws {
        let key = try VaultKey.generate()
        let secret = "not-the-secret-at-all-42"
        let wrong = try Vault.open(store: store("swift", "platform-auth/"), key: key, credentials: try creds(secret), transport: URLSessionTransport(), create: true)
        try wrong.putText(key: "k", value: "v")
        do {
            _ = try await wrong.sync()
            XCTFail("a wrong secret was accepted")
        } catch BucketsyncError.Auth(let message) {
            XCTAssertFalse(message.contains(secret))
        }
        XCTAssertEqual(try wrong.unpushed(), 1)
        do {
            _ = try await Vault.open(store: store("no-such-bucket-here"), key: key, credentials: try creds(), transport: URLSessionTransport()).sync()
            XCTFail("a missing bucket was accepted")
        } catch BucketsyncError.NotFound {}
    }

    func testURLSessionTransportSendsHeadersAsGivenAndReturnsEveryStatus() async throws {
        let server = LocalServer { request in
            if request.requestLine.hasPrefix("HEAD") { return LocalServer.reply(200, headers: [("ETag", "\"e1\"")]) }
            if request.requestLine.contains("/missing") { return LocalServer.reply(404, "<Error><Code>NoSuchKey</Code></Error>", headers: [("x-amz-request-id", "r404")]) }
            if request.requestLine.contains("/broken") { return LocalServer.reply(503, "<Error><Code>SlowDown</Code></Error>") }
            if request.requestLine.contains("/empty") { return LocalServer.reply(204) }
            return LocalServer.reply(200, "stored", headers: [("ETag", "\"abc\"")])
        }
        defer { server.stop() }
        let transport = URLSessionTransport()
        let body = Data((0..<3000).map { UInt8(truncatingIfNeeded: $0) })
        let given = [
            Header(name: "x-amz-date", value: "20260101T000000Z"),
            Header(name: "x-amz-content-sha256", value: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
            Header(name: "If-None-Match", value: "*"),
            Header(name: "X-Amz-Meta-Mixed", value: "a  value,  with spaces"),
            Header(name: "authorization", value: "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;if-none-match;x-amz-content-sha256;x-amz-date, Signature=00ff"),
            Header(name: "Host", value: "127.0.0.1:\(server.port)"),
            Header(name: "Content-Length", value: "3000"),
        ]
        let path = "/bucket/v%2Fm/a%3Db%20c?x-id=PutObject&prefix=a%2Fb"
        let put = try await transport.send(request: HttpRequest(method: "PUT", url: server.url + path, headers: given, body: body))
        XCTAssertEqual(put.status, 200)
        XCTAssertEqual(String(decoding: put.body, as: UTF8.self), "stored")
        XCTAssertTrue(put.headers.contains { $0.name.lowercased() == "etag" && $0.value == "\"abc\"" }, "\(put.headers)")
        let sent = try XCTUnwrap(server.requests.first)
        XCTAssertEqual(server.requests.count, 1)
        XCTAssertEqual(sent.requestLine, "PUT \(path) HTTP/1.1", "the path and query as given")
        XCTAssertEqual(sent.body, body, "the body as given")
        for header in given {
            XCTAssertEqual(sent.values(header.name), [header.value], "\(header.name) sent once, as given")
        }
        XCTAssertEqual(sent.values("content-type"), [], "no Content-Type added to a PUT")
        let added = sent.headers.filter { name, _ in !given.contains { $0.name.lowercased() == name.lowercased() } }
        XCTAssertFalse(added.contains { name, _ in name.lowercased().hasPrefix("x-amz-") || name.lowercased() == "content-md5" }, "\(added)")
        print("   (URLSession adds \(added.map { "\($0.0): \($0.1)" }.joined(separator: ", ")))")
        // Other statuses and methods: the status, headers and body as the server answered.
        let missing = try await transport.send(request: HttpRequest(method: "GET", url: server.url + "/bucket/missing", headers: [], body: Data()))
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(String(decoding: missing.body, as: UTF8.self), "<Error><Code>NoSuchKey</Code></Error>")
        XCTAssertTrue(missing.headers.contains { $0.name.lowercased() == "x-amz-request-id" && $0.value == "r404" })
        let broken = try await transport.send(request: HttpRequest(method: "DELETE", url: server.url + "/bucket/broken", headers: [], body: Data()))
        XCTAssertEqual(broken.status, 503)
        XCTAssertTrue(String(decoding: broken.body, as: UTF8.self).contains("SlowDown"))
        let head = try await transport.send(request: HttpRequest(method: "HEAD", url: server.url + "/bucket/k", headers: [], body: Data()))
        XCTAssertEqual(head.status, 200)
        XCTAssertTrue(head.body.isEmpty)
        XCTAssertTrue(head.headers.contains { $0.value == "\"e1\"" })
        let empty = try await transport.send(request: HttpRequest(method: "PUT", url: server.url + "/bucket/empty", headers: [], body: Data()))
        XCTAssertEqual(empty.status, 204)
        XCTAssertEqual(server.requests.last?.values("content-length"), ["0"], "an empty PUT says Content-Length: 0")
        // What URLSession would change fails before anything is sent.
        let before = server.requests.count
        for bad in [Header(name: "Host", value: "elsewhere.example"), Header(name: "Content-Length", value: "5")] {
            do {
                _ = try await transport.send(request: HttpRequest(method: "GET", url: server.url + "/bucket/k", headers: [bad], body: Data()))
                XCTFail("sent with \(bad.name): \(bad.value)")
            } catch TransportError.Network(let reason) {
                XCTAssertTrue(reason.contains(bad.name), reason)
            }
        }
        XCTAssertEqual(server.requests.count, before, "none of them reached the server")
    }

    func testURLSessionTransportNeverFollowsARedirect() async throws {
        let elsewhere = LocalServer { _ in LocalServer.reply(200, "should never be asked") }
        defer { elsewhere.stop() }
        let target = elsewhere.url + "/bucket/k"
        let server = LocalServer { _ in LocalServer.reply(307, "<Error><Code>TemporaryRedirect</Code></Error>", headers: [("Location", target)]) }
        defer { server.stop() }
        let transport = URLSessionTransport()
        for method in ["GET", "PUT"] {
            let body = method == "PUT" ? Data("data".utf8) : Data()
            let response = try await transport.send(request: HttpRequest(method: method, url: server.url + "/bucket/k", headers: [Header(name: "authorization", value: "AWS4-HMAC-SHA256 Signature=secret")], body: body))
            XCTAssertEqual(response.status, 307, method)
            #if !os(Linux)
            // swift-corelibs-foundation (Linux) drops the body of a redirect it did not follow.
            XCTAssertTrue(String(decoding: response.body, as: UTF8.self).contains("TemporaryRedirect"), method)
            #endif
            XCTAssertTrue(response.headers.contains { $0.name.lowercased() == "location" && $0.value == target }, "\(method): \(response.headers)")
        }
        // Through a vault: the sync fails on the redirect and nothing goes to the other host.
        let vault = try Vault.open(store: s3(server), key: try VaultKey.generate(), credentials: try creds(), transport: URLSessionTransport(), create: true)
        try vault.putText(key: "k", value: "v")
        do {
            _ = try await vault.sync()
            XCTFail("a sync through a redirect succeeded")
        } catch BucketsyncError.Config(let message) {
            XCTAssertTrue(message.contains("307"), message)
        }
        XCTAssertEqual(elsewhere.connections, 0, "the other host was contacted")
    }

    func testURLSessionTransportTimesOutOnAServerThatNeverAnswers() async throws {
        let server = LocalServer { _ in nil }
        defer { server.stop() }
        let transport = URLSessionTransport(timeout: 1)
        let start = Date()
        do {
            _ = try await transport.send(request: HttpRequest(method: "GET", url: server.url + "/bucket?list-type=2&X-Amz-Signature=presigned-secret", headers: [], body: Data()))
            XCTFail("answered")
        } catch TransportError.Timeout(let reason) {
            XCTAssertFalse(reason.contains("presigned-secret"), reason)
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertTrue(elapsed > 0.8 && elapsed < 5, "timed out after \(elapsed) s")
        XCTAssertEqual(server.requests.count, 1, "sent once")
        // Through a vault: the core retries, then the sync fails with the Timeout category.
        let vault = try Vault.open(store: s3(server), key: try VaultKey.generate(), credentials: try creds(), transport: transport, create: true)
        do {
            _ = try await vault.sync()
            XCTFail("synced")
        } catch BucketsyncError.Timeout {}
        // Nobody listening: a Network error.
        let closed = LocalServer { _ in nil }
        closed.stop()
        do {
            _ = try await transport.send(request: HttpRequest(method: "GET", url: closed.url + "/", headers: [], body: Data()))
            XCTFail("connected")
        } catch TransportError.Network {}
    }

    func testTheBuiltInClientTimesOutOnAServerThatNeverAnswers() async throws {
        // A replica that holds a file, its state then opened on a store whose server never
        // answers (the state names no store: a vault folder can move).
        let key = try VaultKey.generate()
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("deadline-\(UUID().uuidString).state")
        do {
            let a = try Vault.open(store: store("swift", "deadline/"), key: key, statePath: state.path, credentials: try creds(), create: true)
            _ = try await a.putFileFrom(key: Data("f".utf8), source: InputStreamFileSource(InputStream(data: Data(repeating: 3, count: 300_000))), size: nil, listener: nil)
            _ = try await a.sync()
        }
        let server = LocalServer { _ in nil }
        defer { server.stop() }
        let quick = VaultSettings(stallTimeoutSeconds: 0.3, requestTimeoutSeconds: 10)
        let vault = try Vault.open(store: s3(server), key: key, statePath: state.path, credentials: try creds(), settings: quick)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("deadline-\(UUID().uuidString).out")
        do {
            _ = try await vault.getFile(key: Data("f".utf8), path: out.path, listener: nil)
            XCTFail("a silent server gave a file")
        } catch BucketsyncError.Timeout {}
        try vault.putText(key: "k", value: "v")
        do {
            _ = try await vault.sync()
            XCTFail("a silent server answered")
        } catch BucketsyncError.Timeout(let message) {
            XCTAssertTrue(message.contains("stall deadline"), message)
        }
        do {
            _ = try await vault.putFileFrom(key: Data("g".utf8), source: InputStreamFileSource(InputStream(data: Data(repeating: 7, count: 300_000))), size: nil, listener: nil)
            XCTFail("a silent server took a file")
        } catch BucketsyncError.Timeout {}
        // The loop reports the timeout as its state.
        let seen = Events()
        try vault.startAutoSync(settings: AutoSyncSettings(intervalSeconds: 1), listener: seen)
        let reported = try await eventually(60) { seen.all.contains { $0.kind == .state && $0.state == .error && $0.category == "timeout" } }
        XCTAssertTrue(reported, "the loop's timeout state: \(seen.all)")
        vault.stopAutoSync()
        XCTAssertEqual(try vault.getText(key: "k"), "v", "nothing lost")
        XCTAssertEqual(try vault.unpushed(), 1)
    }

    func testURLSessionTransportCancelledCallCancelsTheDataTask() async throws {
        let server = LocalServer { _ in nil }
        defer { server.stop() }
        let transport = URLSessionTransport(timeout: 60)
        let call = Task { try await transport.send(request: HttpRequest(method: "GET", url: server.url + "/bucket/k", headers: [], body: Data())) }
        let reached = try await eventually(10) { server.waiting == 1 }
        XCTAssertTrue(reached, "the request reached the server")
        call.cancel()
        guard let result = await outcome(of: call, within: 2) else { return XCTFail("the cancelled call goes on") }
        guard case .failure(let error) = result, error is CancellationError else { return XCTFail("\(result)") }
        let closed = try await eventually(2) { server.hungUp == 1 }
        XCTAssertTrue(closed, "the connection was closed")
        // A task cancelled before the call: nothing is sent.
        let before = server.requests.count
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await transport.send(request: HttpRequest(method: "GET", url: server.url + "/bucket/k", headers: [], body: Data()))
        }
        guard case .failure(let earlyError) = await early.result, earlyError is CancellationError else { return XCTFail("not cancelled") }
        XCTAssertEqual(server.requests.count, before)
    }

    func testCancellingTheSyncTaskCancelsTheDataTask() async throws {
        let server = LocalServer { _ in nil }
        defer { server.stop() }
        let vault = try Vault.open(store: s3(server), key: try VaultKey.generate(), credentials: try creds(), transport: URLSessionTransport(timeout: 60), create: true)
        try vault.putText(key: "k", value: "v")
        let sync = Task { try await vault.sync() }
        let reached = try await eventually(10) { server.waiting == 1 }
        XCTAssertTrue(reached, "the request reached the server")
        sync.cancel()
        guard let result = await outcome(of: sync, within: 2) else { return XCTFail("the cancelled sync goes on") }
        guard case .failure(let error) = result, error is CancellationError else { return XCTFail("\(result)") }
        let closed = try await eventually(2) { server.hungUp == 1 }
        XCTAssertTrue(closed, "the connection was closed")
        XCTAssertEqual(try vault.unpushed(), 1, "the vault is usable, nothing lost")
        XCTAssertEqual(try vault.getText(key: "k"), "v")
    }

    func testManualSyncsAndTheLoopShareOneConnectionPool() async throws {
        XCTAssertEqual(AutoSyncSettings(), defaultAutoSyncSettings(), "the Swift defaults are the core's")
        XCTAssertEqual(VaultSettings(), defaultVaultSettings(), "the Swift defaults are the core's")
        let key = try VaultKey.generate()
        let a = try Vault.open(store: store("swift", "one-runtime/"), key: key, credentials: try creds(), create: true)
        try a.putText(key: "seed", value: "1")
        _ = try await a.sync()
        // The built-in HTTP client for both the manual syncs and the loop.
        let b = try Vault.open(store: store("swift", "one-runtime/"), key: key, credentials: try creds())
        _ = try await b.sync()
        try b.startAutoSync(settings: AutoSyncSettings(intervalSeconds: 1))
        try a.putText(key: "live/1", value: "v1")
        _ = try await a.sync()
        var arrived = try await eventually(40) { (try? b.getText(key: "live/1")) == "v1" }
        XCTAssertTrue(arrived, "the loop merged live/1")
        try a.putText(key: "live/2", value: "v2")
        _ = try await a.sync()
        do { _ = try await b.sync() } catch BucketsyncError.Conflict {}
        arrived = try await eventually(40) { (try? b.getText(key: "live/2")) == "v2" }
        XCTAssertTrue(arrived, "live/2 on b")
        try a.putText(key: "live/3", value: "v3")
        _ = try await a.sync()
        arrived = try await eventually(40) { (try? b.getText(key: "live/3")) == "v3" }
        XCTAssertTrue(arrived, "the loop merged live/3")
        b.stopAutoSync()
        XCTAssertFalse(b.isAutoSyncing())
    }

    func testAutoSyncDeliversAPeersPutAsAnEventWithNoSyncAndIdlePollsAre304() async throws {
        let key = try VaultKey.generate()
        let a = try Vault.open(store: store("swift", "auto/"), key: key, credentials: try creds(), create: true)
        try a.putText(key: "first", value: "1")
        _ = try await a.sync()
        let recorder = Recorder(URLSessionTransport())
        let b = try Vault.open(store: store("swift", "auto/"), key: key, credentials: try creds(), transport: recorder)
        // The stream's listener is in place once events() returns.
        let stream = b.events()
        let seen = Events()
        let collector = Task { for await event in stream { seen.add(event) } }
        defer { collector.cancel() }
        do {
            try b.startAutoSync(settings: AutoSyncSettings(intervalSeconds: 0))
            XCTFail("a 0 s interval was taken")
        } catch BucketsyncError.Config(let message) {
            XCTAssertTrue(message.contains("intervalSeconds"), message)
        }
        XCTAssertFalse(b.isAutoSyncing())
        // A listener that throws breaks nothing: the loop and the stream go on.
        let throwing = Events(throwing: true)
        // ANCHOR: start_auto_sync
        try b.startAutoSync(settings: AutoSyncSettings(intervalSeconds: 1, fullSyncIntervalSeconds: 600), listener: throwing)
        // ANCHOR_END: start_auto_sync
        XCTAssertTrue(b.isAutoSyncing())
        do {
            try b.startAutoSync()
            XCTFail("two background syncs")
        } catch BucketsyncError.Conflict {}
        var synced = try await eventually(10) { (try? b.getText(key: "first")) == "1" && seen.has(.idle) }
        XCTAssertTrue(synced, "B's first sync")
        XCTAssertTrue(seen.has(.syncing), "the first sync showed itself: \(seen.all)")

        // A's put reaches B as a "changed" event naming the key (a second stream, made before
        // the put). It takes about an interval; the bounds are generous, so a loaded machine
        // does not fail them.
        // ANCHOR: auto_sync
        let changes = b.events()
        let next = Task { () async throws -> Event? in
            for await event in changes where event.kind == .changed && event.keys.contains(Data("note".utf8)) {
                return event
            }
            return nil
        }
        try a.putText(key: "note", value: "from a")
        _ = try await a.sync()
        let pushed = Date()
        // ANCHOR_END: auto_sync
        guard case .success(let found) = await outcome(of: next, within: 30), let changed = found else {
            next.cancel()
            return XCTFail("no changed event within 30 s: \(seen.all)")
        }
        print("    push on A to the event on B: \(Int(Date().timeIntervalSince(pushed) * 1000)) ms")
        XCTAssertEqual(changed.keys, [Data("note".utf8)])
        synced = try await eventually(30) { seen.all.contains { $0.kind == .changed } }
        XCTAssertTrue(synced, "the event in the first stream too")
        XCTAssertEqual(try b.getText(key: "note"), "from a")
        XCTAssertGreaterThanOrEqual(throwing.all.count, 3, "the throwing listener was called")

        // Idle: one conditional GET of the hint per interval, answered 304 through URLSession,
        // and nothing else (a 200 there would make every poll list).
        try await Task.sleep(nanoseconds: 1_500_000_000)
        _ = recorder.take()
        try await Task.sleep(nanoseconds: 3_500_000_000)
        let idle = recorder.take()
        let polls = idle.filter { $0.kind == "hint" && $0.method == "GET" }
        // At most one poll per interval (the point); at least one, however loaded the machine.
        XCTAssertTrue((1...5).contains(polls.count), "one poll per interval: \(idle)")
        XCTAssertTrue(polls.allSatisfy { $0.status == 304 && !($0.ifNoneMatch ?? "").isEmpty }, "conditional, answered 304: \(polls)")
        XCTAssertEqual(idle.count, polls.count, "an idle device only polls: \(idle)")

        // Offline: a state event, and no polls.
        b.notify(what: .networkLost)
        synced = try await eventually(3) { seen.has(.offline) }
        XCTAssertTrue(synced, "the offline state")
        _ = recorder.take()
        try await Task.sleep(nanoseconds: 2_200_000_000)
        XCTAssertEqual(recorder.take().count, 0, "nothing goes out while offline")
        b.notify(what: .networkBack)

        // Stopped: the thread ends, and nothing more goes out.
        b.stopAutoSync()
        XCTAssertFalse(b.isAutoSyncing())
        _ = recorder.take()
        try a.putText(key: "late", value: "after the stop")
        _ = try await a.sync()
        try await Task.sleep(nanoseconds: 2_500_000_000)
        XCTAssertEqual(recorder.take().count, 0, "no request after stopAutoSync")
        XCTAssertNil(try b.getText(key: "late"))
        // A stopped vault starts again.
        try b.startAutoSync(settings: AutoSyncSettings(intervalSeconds: 1))
        synced = try await eventually(10) { (try? b.getText(key: "late")) == "after the stop" }
        XCTAssertTrue(synced, "the late key")
        b.stopAutoSync()
    }

    func testURLSessionTransportReturnsA304AsIs() async throws {
        let server = LocalServer { request in
            if request.values("if-none-match").first == "\"v1\"" { return LocalServer.reply(304, headers: [("ETag", "\"v1\"")]) }
            return LocalServer.reply(200, "hint", headers: [("ETag", "\"v1\""), ("Cache-Control", "max-age=3600")])
        }
        defer { server.stop() }
        let transport = URLSessionTransport()
        let first = try await transport.send(request: HttpRequest(method: "GET", url: server.url + "/bucket/v/h", headers: [], body: Data()))
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(String(decoding: first.body, as: UTF8.self), "hint")
        let again = try await transport.send(request: HttpRequest(method: "GET", url: server.url + "/bucket/v/h", headers: [Header(name: "If-None-Match", value: "\"v1\"")], body: Data()))
        XCTAssertEqual(again.status, 304, "the 304 itself, not a cached 200")
        XCTAssertTrue(again.body.isEmpty)
        XCTAssertTrue(again.headers.contains { $0.name.lowercased() == "etag" && $0.value == "\"v1\"" }, "\(again.headers)")
        XCTAssertEqual(server.requests.count, 2)
        XCTAssertEqual(server.requests.last?.values("if-none-match"), ["\"v1\""])
    }

    func testExportThenImportIntoANewVaultGivesEqualMaps() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bucketsync-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func open(_ name: String) throws -> Vault {
            try Vault.open(store: "file://" + dir.appendingPathComponent(name).path, key: try VaultKey.generate(), create: true)
        }
        func map(_ vault: Vault) throws -> [Data: Data] {
            var map: [Data: Data] = [:]
            for key in try vault.keys(prefix: Data()) { map[key] = try vault.get(key: key) }
            return map
        }
        let a = try open("a")
        try a.putText(key: "notes/a", value: "hello")
        try a.putText(key: "notes/b", value: "first")
        try a.putText(key: "notes/b", value: "second")
        try a.put(key: Data([0, 255, 7]), value: Data([1, 2, 253]))
        try a.putText(key: "gone", value: "soon")
        try a.delete(key: Data("gone".utf8))
        let path = dir.appendingPathComponent("records.jsonl").path
        let exported = try a.exportRecords(path: path)
        XCTAssertEqual(exported, ExportReport(lines: 4, deleted: 1, history: 0, files: 0))
        let text = try a.exportRecordsText()
        XCTAssertEqual(text, try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertGreaterThanOrEqual(try a.exportRecords(path: dir.appendingPathComponent("history.jsonl").path, history: true).history, 2)
        let fromFile = try open("b")
        let imported = try fromFile.importRecords(path: path)
        XCTAssertEqual(imported.lines, 4)
        XCTAssertEqual(imported.imported, 3)
        XCTAssertEqual(imported.unchanged, 1)
        XCTAssertEqual(try map(fromFile), try map(a))
        XCTAssertEqual(try map(a).count, 3)
        XCTAssertEqual(try fromFile.importRecords(path: path).imported, 0, "a second import changes nothing")
        let fromText = try open("c")
        _ = try fromText.importRecordsText(text: text)
        XCTAssertEqual(try map(fromText), try map(a))
        do {
            _ = try fromText.importRecordsText(text: "{\"key\":\"x\",\"value\":\"1\"}\n\n{\"key\":\"y\",\"value\":\n")
            XCTFail("a malformed line was taken")
        } catch BucketsyncError.Config(let message) {
            XCTAssertTrue(message.contains("line 3"), message)
        }
        XCTAssertNil(try fromText.get(key: Data("x".utf8)), "nothing imported")
        XCTAssertThrowsError(try fromText.importRecords(path: dir.appendingPathComponent("missing.jsonl").path))
    }

    func testAliceSharesWithBobCarolCannotAcceptBobCannotReshare() async throws {
        func home(_ name: String, _ transport: HostTransport? = nil) throws -> Vault {
            try Vault.open(store: store("swift", "share-\(name)/"), key: try VaultKey.generate(), credentials: try creds(), transport: transport, create: true)
        }
        let alice = try home("alice")
        let bobTransport = Recording()
        let bob = try home("bob", bobTransport)
        let carol = try home("carol")
        let emma = try alice.createShared(store: store("swift", "share-emma/"), label: "emma", credentials: try creds())
        try emma.putText(key: "note", value: "from alice")
        _ = try await emma.sync()
        let invitation = try await emma.share(public: try bob.identity().public, role: .write)
        do {
            _ = try await carol.accept(invitation: invitation, credentials: try creds())
            XCTFail("Carol used Bob's invitation")
        } catch BucketsyncError.Access {}
        let bobs = try await bob.accept(invitation: invitation, credentials: try creds())
        let info = try XCTUnwrap(try bob.shared().first)
        XCTAssertEqual([info.label, "\(info.role)", info.grantedBy], ["emma", "write", try alice.identity().fingerprint])
        _ = try await bobs.sync()
        XCTAssertEqual(try bobs.getText(key: "note"), "from alice")
        XCTAssertGreaterThan(bobTransport.calls, 1, "through Bob's home's transport")
        try bobs.putText(key: "note", value: "from bob")
        _ = try await bobs.sync()
        _ = try await emma.sync()
        XCTAssertEqual(try emma.getText(key: "note"), "from bob")
        do {
            _ = try await bobs.share(public: try carol.identity().public)
            XCTFail("a writer re-shared")
        } catch BucketsyncError.Access {}
    }

    /// Another service: a second server accepting only its own key, behind a tap that keeps
    /// every byte sent to it (test.sh starts it). The home's key id must never reach it.
    func testAHomesKeysNeverReachAStoreAnInvitationNamesOnAnotherService() async throws {
        let tap = URL(fileURLWithPath: env["BUCKETSYNC_TEST_TAP"]!)
        let theirs = try Credentials(accessKeyId: env["BUCKETSYNC_TEST_OTHER_ACCESS_KEY"]!,
                                     secretAccessKey: env["BUCKETSYNC_TEST_OTHER_SECRET_KEY"]!, sessionToken: nil)
        func seen(_ text: String) -> Bool {
            guard let bytes = try? Data(contentsOf: tap) else { return false }
            return bytes.range(of: Data(text.utf8)) != nil
        }
        let homeKey = env["BUCKETSYNC_TEST_ACCESS_KEY"]!
        let trips = "s3://trips/swift/?endpoint=\(env["BUCKETSYNC_TEST_OTHER_ENDPOINT"]!)&path_style=true"
        let alice = try Vault.open(store: store("swift", "keys-alice/"), key: try VaultKey.generate(), credentials: try creds(), create: true)
        let trip = try alice.createShared(store: trips, label: "trip", credentials: theirs)
        try trip.putText(key: "hotel", value: "by the lake")
        _ = try await trip.sync()
        let bob = try Vault.open(store: store("swift", "keys-bob/"), key: try VaultKey.generate(), credentials: try creds(), create: true)
        let invitation = try await trip.share(public: try bob.identity().public)
        XCTAssertTrue(seen(env["BUCKETSYNC_TEST_OTHER_ACCESS_KEY"]!) && !seen(homeKey), "only the vault's own key went there")
        do {
            _ = try await bob.accept(invitation: invitation)
            XCTFail("accepted without the vault's credentials")
        } catch BucketsyncError.Auth(let message) {
            XCTAssertTrue(message.contains("pass this vault's own credentials"), message)
        }
        XCTAssertFalse(seen(homeKey), "the home's key id reached the other service")
        let bobs = try await bob.accept(invitation: invitation, credentials: theirs)
        _ = try await bobs.sync()
        XCTAssertEqual(try bobs.getText(key: "hotel"), "by the lake")
        XCTAssertFalse(seen(homeKey), "the home's key id reached the other service")
    }

    func testMembersAndAliceRevokesBob() async throws {
        func home(_ name: String) throws -> Vault {
            try Vault.open(store: store("swift", "members-\(name)/"), key: try VaultKey.generate(), credentials: try creds(), create: true)
        }
        let (alice, bob, carol) = (try home("alice"), try home("bob"), try home("carol"))
        let (aliceId, bobId, carolId) = (try alice.identity(), try bob.identity(), try carol.identity())
        let emma = try alice.createShared(store: store("swift", "members-emma/"), label: "emma", credentials: try creds())
        try emma.putText(key: "note", value: "from alice")
        _ = try await emma.sync()
        let toBob = try await emma.share(public: bobId.public, role: .write)
        let toCarol = try await emma.share(public: carolId.public)
        // What an invitation says, and one that names a signer.
        let info = try invitationInfo(invitation: toBob)
        XCTAssertEqual(info.grantedBy, aliceId.fingerprint)
        XCTAssertNil(info.signer)
        let url = "https://signer.example/sign"
        let through = try await emma.share(public: carolId.public, signerUrl: url)
        XCTAssertEqual(try invitationInfo(invitation: through).signer, url)
        _ = try await emma.sync()
        let bobs = try await bob.accept(invitation: toBob, credentials: try creds(), grantedBy: aliceId.fingerprint)
        let carols = try await carol.accept(invitation: toCarol, credentials: try creds(), grantedBy: aliceId.fingerprint)
        _ = try await bobs.sync()
        _ = try await carols.sync()
        for (who, vault) in [("alice", emma), ("bob", bobs), ("carol", carols)] {
            let members = try vault.members()
            XCTAssertEqual(members.count, 3, "\(who) sees \(members)")
            for (id, role) in [(aliceId, Role.owner), (bobId, Role.write), (carolId, Role.read)] {
                let m = try XCTUnwrap(members.first { $0.fingerprint == id.fingerprint }, "\(who) does not see \(id.fingerprint)")
                XCTAssertEqual(m.publicIdentity, id.public)
                XCTAssertEqual(m.role, role)
                XCTAssertFalse(m.revoked)
                XCTAssertEqual(m.grantedBy, aliceId.fingerprint)
                XCTAssertEqual(m.mayWrite, role != .read)
                XCTAssertEqual(m.pins, [])
                XCTAssertGreaterThan(m.sinceMs, 0)
            }
        }
        do {
            _ = try bobs.revoke(fingerprint: carolId.fingerprint)
            XCTFail("a writer revoked")
        } catch BucketsyncError.Access {}
        do {
            _ = try emma.revoke(fingerprint: aliceId.fingerprint)
            XCTFail("the founder revoked herself")
        } catch BucketsyncError.Config {}
        try bobs.putText(key: "note", value: "from bob")
        _ = try await bobs.sync()
        _ = try await emma.sync()
        let was = try emma.revoke(fingerprint: bobId.fingerprint.lowercased())
        XCTAssertEqual(was.role, .write, "revoke returns Bob as he was")
        XCTAssertFalse(was.revoked)
        _ = try await emma.sync()
        do {
            _ = try await bobs.sync()
            XCTFail("Bob synced after his revocation")
        } catch BucketsyncError.Access(let message) {
            XCTAssertTrue(message.contains("revoked"), message)
        }
        let revoked = try XCTUnwrap(try emma.members().first { $0.fingerprint == bobId.fingerprint })
        XCTAssertNil(revoked.role)
        XCTAssertTrue(revoked.revoked)
        XCTAssertFalse(revoked.mayWrite)
        XCTAssertEqual(revoked.grantedBy, aliceId.fingerprint)
        XCTAssertEqual(revoked.pins.map(\.device), [try bobs.device()])
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(revoked.pins.first).segments, 1)
        _ = try await carols.sync()
        XCTAssertEqual(try carols.members().first { $0.fingerprint == bobId.fingerprint }, revoked, "Carol sees Bob revoked")
        XCTAssertEqual(try carols.getText(key: "note"), "from bob", "Bob's write before his revocation still counts")
    }

    func testInteropReadsTheRecordKotlinWrote() async throws {
        let code = try XCTUnwrap(env["BUCKETSYNC_INTEROP_CODE"])
        let vault = try Vault.open(store: store("interop"), key: try VaultKey.fromRecoveryCode(code: code), credentials: try creds())
        _ = try await vault.sync()
        XCTAssertEqual(try vault.getText(key: "from/kotlin"), "hello from Kotlin")
        try vault.putText(key: "from/swift", value: "hello from Swift")
        _ = try await vault.sync()
    }
}
