// Hand-written beside the generated bindings (bindings-uniffi/generate.sh copies it into the
// Swift package): a ready-made HostTransport on the platform's own HTTP stack, URLSession.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Sends the vault's requests with `URLSession`:
///
/// ```swift
/// let vault = try Vault.open(store: store, key: key, credentials: credentials, transport: URLSessionTransport())
/// ```
///
/// - Every header goes out as given (the request is already signed). `Host` and `Content-Length`
///   come from the URL and the body, as URLSession insists; a request whose own `Host` or
///   `Content-Length` says otherwise fails with `TransportError.Network` instead of going out
///   different from what was signed. URLSession adds unsigned headers of its own (`User-Agent`,
///   `Accept`, `Accept-Language`, `Accept-Encoding`, whose compressed answers it decompresses,
///   `Connection`); a signature covers only the headers it names, so these do not break it.
/// - Redirects are never followed: a 3xx comes back as the response (a redirect would carry the
///   signature and the session token to another host). No cache, no cookies.
/// - Every status comes back with its headers and body (4xx/5xx included). Only when no response
///   arrived does it throw: `TransportError.Timeout` when the request timed out,
///   `TransportError.Network` for anything else. Messages leave out the URL (a presigned URL
///   carries its signature in the query).
/// - Cancelling the Swift task that awaits it (the one running `vault.sync()`, say) cancels the
///   data task; the call ends with `CancellationError`.
public final class URLSessionTransport: HostTransport, @unchecked Sendable {
    /// The session every request goes through.
    public let session: URLSession
    private let timeout: TimeInterval
    private let redirects: RefuseRedirects

    /// - Parameters:
    ///   - timeout: the longest wait for a connection and then for the next bytes of an answer
    ///     (URLSession has no separate connect timeout). On Linux (swift-corelibs-foundation) it
    ///     counts in whole seconds and bounds the whole request instead.
    ///   - configuration: the session's configuration (`.ephemeral` by default): proxies, TLS
    ///     settings, `timeoutIntervalForResource` (a limit on the whole request; 7 days by default)…
    ///     It is copied; the timeout, cache and cookie settings above are set on the copy. Background
    ///     configurations do not work: they take no data tasks.
    public init(timeout: TimeInterval = 60, configuration: URLSessionConfiguration = .ephemeral) {
        #if canImport(FoundationNetworking)
        // swift-corelibs-foundation truncates it to whole seconds: 0.5 would be no time at all.
        let timeout = max(1, timeout.rounded(.up))
        #endif
        let configuration = configuration.copy() as! URLSessionConfiguration
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        let redirects = RefuseRedirects()
        self.redirects = redirects
        self.timeout = timeout
        session = URLSession(configuration: configuration, delegate: redirects, delegateQueue: nil)
    }

    deinit {
        // A session keeps its delegate until it is invalidated.
        session.finishTasksAndInvalidate()
    }

    public func send(request: HttpRequest) async throws -> HttpResponse {
        let urlRequest = try Self.urlRequest(for: request, timeout: timeout)
        let call = Call()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HttpResponse, Error>) in
                let task = session.dataTask(with: urlRequest) { data, response, error in
                    continuation.resume(with: Self.result(data, response, error, cancelled: call.cancelled))
                }
                // The session's delegate refuses redirects; so does the task's own delegate,
                // which URLSession asks first where there is one.
                task.delegate = redirects
                if !call.start(task) {
                    continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            call.cancel()
        }
    }

    /// The URLRequest for `request`, or `TransportError.Network` when it cannot go out as given.
    static func urlRequest(for request: HttpRequest, timeout: TimeInterval) throws -> URLRequest {
        guard let url = URL(string: request.url), let host = url.host,
              ["http", "https"].contains(url.scheme?.lowercased() ?? "") else {
            throw TransportError.Network(reason: "URLSession: not an http(s) URL")
        }
        var urlRequest = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        urlRequest.httpMethod = request.method
        urlRequest.httpShouldHandleCookies = false
        let defaultPort = url.scheme?.lowercased() == "https" ? 443 : 80
        let authority = url.port.map { $0 == defaultPort ? host : "\(host):\($0)" } ?? host
        for header in request.headers {
            let value = header.value.trimmingCharacters(in: .whitespaces)
            switch header.name.lowercased() {
            case "host":
                guard value.lowercased() == authority.lowercased() else {
                    throw TransportError.Network(reason: "URLSession sends Host: \(authority) (from the URL), not the request's Host: \(header.value)")
                }
            case "content-length":
                guard value == String(request.body.count) else {
                    throw TransportError.Network(reason: "the request says Content-Length: \(header.value) for a body of \(request.body.count) bytes")
                }
            default:
                urlRequest.addValue(header.value, forHTTPHeaderField: header.name)
            }
        }
        if !request.body.isEmpty || request.method == "PUT" || request.method == "POST" {
            // Also an empty one: S3 wants Content-Length: 0 on an empty PUT.
            urlRequest.httpBody = request.body
        }
        return urlRequest
    }

    static func result(_ data: Data?, _ response: URLResponse?, _ error: Error?, cancelled: Bool) -> Result<HttpResponse, Error> {
        if let error {
            if cancelled { return .failure(CancellationError()) }
            return .failure(transportError(error))
        }
        guard let http = response as? HTTPURLResponse else {
            return .failure(TransportError.Network(reason: "URLSession: not an HTTP response"))
        }
        let headers = http.allHeaderFields.map { Header(name: "\($0.key)", value: "\($0.value)") }
        return .success(HttpResponse(status: UInt16(clamping: http.statusCode), headers: headers, body: data ?? Data()))
    }

    /// An error of URLSession as a TransportError, without the URL that `URLError` carries.
    static func transportError(_ error: Error) -> TransportError {
        let nsError = error as NSError
        let reason = "URLSession: \(nsError.domain) \(nsError.code): \(nsError.localizedDescription)"
        if nsError.domain == NSURLErrorDomain && nsError.code == NSURLErrorTimedOut {
            return .Timeout(reason: reason)
        }
        return .Network(reason: reason)
    }
}

/// One call's data task, and whether the call was cancelled (before or after the task began).
private final class Call: @unchecked Sendable {
    private let lock = NSLock()
    private var task: URLSessionTask?
    private var wasCancelled = false

    var cancelled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return wasCancelled
    }

    /// Starts `task` unless the call was cancelled already (then false).
    func start(_ task: URLSessionTask) -> Bool {
        lock.lock()
        guard !wasCancelled else {
            lock.unlock()
            return false
        }
        self.task = task
        lock.unlock()
        task.resume()
        return true
    }

    func cancel() {
        lock.lock()
        wasCancelled = true
        let task = self.task
        lock.unlock()
        task?.cancel()
    }
}

/// Answers every redirect with "do not follow": the 3xx itself becomes the response.
private final class RefuseRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)
    }
}
