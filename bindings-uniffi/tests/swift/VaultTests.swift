// XCTest against SeaweedFS (endpoint and credentials from the environment, set by
// bindings-uniffi/test.sh): the same scenarios as the Kotlin test.
import XCTest
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

/// A transport on URLSession: what an iOS app does for background sessions or pinning.
final class URLSessionTransport: HostTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    private var requests: [HttpRequest] = []
    var calls: Int { lock.withLock { count } }
    /// Every request handed over, as received.
    var sent: [HttpRequest] { lock.withLock { requests } }

    func send(request: HttpRequest) async throws -> HttpResponse {
        lock.withLock { count += 1; requests.append(request) }
        var urlRequest = URLRequest(url: URL(string: request.url)!)
        urlRequest.httpMethod = request.method
        for header in request.headers { urlRequest.setValue(header.value, forHTTPHeaderField: header.name) }
        if !request.body.isEmpty { urlRequest.httpBody = request.body }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await withCheckedThrowingContinuation { continuation in
                URLSession.shared.dataTask(with: urlRequest) { data, response, error in
                    if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: (data ?? Data(), response!)) }
                }.resume()
            }
        } catch {
            throw TransportError.Network(reason: "URLSession: \(error)")
        }
        let http = response as! HTTPURLResponse
        let headers = http.allHeaderFields.map { Header(name: "\($0.key)", value: "\($0.value)") }
        return HttpResponse(status: UInt16(http.statusCode), headers: headers, body: data)
    }
}

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
    func testTwoVaultsConvergeAndAThirdBootstraps() async throws {
        let key = try VaultKey.generate()
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
        let c = try Vault.open(store: store("swift", "converge/"), key: key, credentials: try creds())
        let report = try await c.sync()
        XCTAssertEqual(report.pulled, 2)
        XCTAssertEqual(try c.keys(prefix: Data()).count, 1)
        let again = try await c.sync()
        XCTAssertEqual(again.requests, 1)
        XCTAssertEqual(report.changed.count, 2)
        XCTAssertTrue(try c.devices(staleAfterDays: 30).contains { $0.label == "swift a" && !$0.stale })
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
        let lost = try Vault.open(store: store("swift", "converge/"), key: try VaultKey.generate(), credentials: try creds())
        do {
            _ = try await lost.sync()
            XCTFail("joined a vault that does not exist")
        } catch BucketsyncError.NotFound(let message) {
            XCTAssertTrue(message.contains("no vault for this key"), message)
        }
    }

    func testASwiftTransportIsUsedForASync() async throws {
        let key = try VaultKey.generate()
        let transport = URLSessionTransport()
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
        let transport = URLSessionTransport()
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
        let withToken = URLSessionTransport()
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

    func testInteropReadsTheRecordKotlinWrote() async throws {
        let code = try XCTUnwrap(env["BUCKETSYNC_INTEROP_CODE"])
        let vault = try Vault.open(store: store("interop"), key: try VaultKey.fromRecoveryCode(code: code), credentials: try creds())
        _ = try await vault.sync()
        XCTAssertEqual(try vault.getText(key: "from/kotlin"), "hello from Kotlin")
        try vault.putText(key: "from/swift", value: "hello from Swift")
        _ = try await vault.sync()
    }
}
