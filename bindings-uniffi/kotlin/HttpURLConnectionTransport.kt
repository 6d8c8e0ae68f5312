// Hand-written beside the generated bindings: bindings-uniffi/generate.sh copies it next to
// bucketsync_uniffi.kt, in the same package. A ready-made HostTransport on the platform's own
// HTTP stack, java.net.HttpURLConnection: the JVM's, and on Android the system's (java.net.http
// does not exist on Android). No dependency beyond the generated bindings' (JNA, coroutines).
package uniffi.bucketsync_uniffi

import java.io.IOException
import java.io.InterruptedIOException
import java.net.HttpURLConnection
import java.net.Proxy
import java.net.SocketTimeoutException
import java.net.URL
import java.util.concurrent.Executor
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.asExecutor
import kotlinx.coroutines.suspendCancellableCoroutine

/**
 * Sends the vault's requests with `java.net.HttpURLConnection`:
 *
 * ```kotlin
 * val vault = Vault.open(store, key, credentials = credentials, transport = HttpURLConnectionTransport())
 * ```
 *
 * - Every header goes out as given (the request is already signed). `Host` and
 *   `Content-Length` come from the URL and the body, as HttpURLConnection insists; a request
 *   whose own `Host` or `Content-Length` says otherwise, or with a header HttpURLConnection
 *   would silently drop (`Connection`, `Transfer-Encoding`, `Origin`…), fails with
 *   [TransportException.Network] instead of going out different from what was signed.
 *   HttpURLConnection adds unsigned headers of its own (`User-Agent`, `Accept`, `Connection`,
 *   `Cache-Control: no-cache` and `Pragma: no-cache`; on Android `Accept-Encoding: gzip`, which it
 *   decompresses); a signature covers only the headers it names, so these do not break it.
 * - Redirects are never followed: a 3xx comes back as the response (a redirect would carry the
 *   signature and the session token to another host). No response cache, no retried PUT.
 * - Every status comes back with its headers and body (4xx/5xx bodies included). Only when no
 *   response arrived does it throw: [TransportException.Timeout] for a connect or read timeout,
 *   [TransportException.Network] for anything else. Messages leave out the URL's query (a
 *   presigned URL carries its signature there).
 * - Cancelling the coroutine (the one running `Vault.sync()`, say) disconnects the connection and
 *   ends the call at once.
 *
 * @param connectTimeoutMillis the longest wait to establish a connection.
 * @param readTimeoutMillis the longest wait for the next bytes of an answer. There is no limit on a
 *   whole request: a large segment on a slow uplink must still get through.
 * @param proxy a proxy for every connection; null for the platform's default (system properties,
 *   `ProxySelector`).
 * @param executor where the blocking I/O runs (it is never the caller's thread).
 * @param configure called on each connection before it connects, to set what the app needs
 *   (`HttpsURLConnection.sslSocketFactory` for certificate pinning, a `hostnameVerifier`…). It
 *   must not turn redirects back on; the timeouts and cache settings above are set after it.
 */
class HttpURLConnectionTransport(
    val connectTimeoutMillis: Int = 10_000,
    val readTimeoutMillis: Int = 60_000,
    private val proxy: Proxy? = null,
    private val executor: Executor = Dispatchers.IO.asExecutor(),
    private val configure: (HttpURLConnection) -> Unit = {},
) : HostTransport {
    init {
        require(connectTimeoutMillis >= 0 && readTimeoutMillis >= 0) { "timeouts cannot be negative (0 waits forever)" }
    }

    override suspend fun send(request: HttpRequest): HttpResponse {
        val connection = try {
            prepare(request)
        } catch (e: Exception) {
            throw transportError(e, request)
        }
        return suspendCancellableCoroutine { continuation ->
            // disconnect() closes the socket under a blocked connect/write/read, which then
            // fails at once on the I/O thread; that late failure is dropped (the continuation is
            // cancelled already).
            continuation.invokeOnCancellation { quietly { connection.disconnect() } }
            try {
                executor.execute { exchange(connection, request, continuation) }
            } catch (e: Exception) {
                quietly { connection.disconnect() }
                continuation.resumeWith(Result.failure(transportError(e, request)))
            }
        }
    }

    /** A connection with the request's method and headers set, not connected yet. */
    private fun prepare(request: HttpRequest): HttpURLConnection {
        val url = URL(request.url)
        val opened = if (proxy != null) url.openConnection(proxy) else url.openConnection()
        val connection = opened as? HttpURLConnection
            ?: throw IOException("not an http(s) URL: ${url.protocol}")
        configure(connection)
        connection.instanceFollowRedirects = false
        connection.useCaches = false
        connection.connectTimeout = connectTimeoutMillis
        connection.readTimeout = readTimeoutMillis
        connection.requestMethod = request.method
        val sendsBody = request.body.isNotEmpty() || request.method == "PUT" || request.method == "POST"
        if (sendsBody) {
            // HttpURLConnection turns a GET with a body into a POST; refuse rather than send that.
            if (request.method == "GET" || request.method == "HEAD") throw IOException("a ${request.method} request cannot carry a body here")
            connection.doOutput = true
            // Sets Content-Length (also 0: S3 wants it on an empty PUT) and streams the body
            // without buffering or retrying it.
            connection.setFixedLengthStreamingMode(request.body.size)
        }
        val authority = if (url.port == -1 || url.port == url.defaultPort) url.host else "${url.host}:${url.port}"
        for (header in request.headers) {
            when (header.name.lowercase()) {
                "host" -> if (!header.value.trim().equals(authority, ignoreCase = true)) {
                    throw IOException("HttpURLConnection sends Host: $authority (from the URL), not the request's Host: ${header.value}")
                }
                "content-length" -> if (header.value.trim() != request.body.size.toString()) {
                    throw IOException("the request says Content-Length: ${header.value} for a body of ${request.body.size} bytes")
                }
                else -> connection.addRequestProperty(header.name, header.value)
            }
        }
        // HttpURLConnection silently drops restricted headers (JDK: Connection, Keep-Alive,
        // Transfer-Encoding, Origin, Via…): check every header is still there. It never shows
        // Authorization back, so that one is taken on trust (it is not restricted).
        val kept = connection.requestProperties.keys.filterNotNull().map { it.lowercase() }.toSet()
        for (header in request.headers) {
            val name = header.name.lowercase()
            if (name !in setOf("host", "content-length", "authorization", "proxy-authorization") && name !in kept) {
                throw IOException("HttpURLConnection would not send the header ${header.name}")
            }
        }
        return connection
    }

    /** Runs on the executor: sends, reads the whole answer, resumes the caller. */
    private fun exchange(connection: HttpURLConnection, request: HttpRequest, continuation: CancellableContinuation<HttpResponse>) {
        val result = try {
            if (!continuation.isActive) throw CancellationException("the call was cancelled")
            connection.connect()
            // A cancel that came during connect() may have found nothing to disconnect yet.
            if (!continuation.isActive) throw CancellationException("the call was cancelled")
            if (connection.doOutput) connection.outputStream.use { it.write(request.body) }
            val status = connection.responseCode
            if (status !in 100..999) throw IOException("not an HTTP response")
            val headers = connection.headerFields.flatMap { (name, values) ->
                // The null key is the status line.
                if (name == null) emptyList() else values.map { Header(name, it ?: "") }
            }
            // 4xx/5xx bodies come from errorStream (getInputStream throws for them); a response
            // without a body has neither.
            val stream = if (status >= 400) connection.errorStream else connection.inputStream
            val body = stream?.use { it.readBytes() } ?: ByteArray(0)
            // The stream was read to its end: the connection goes back to the keep-alive pool.
            Result.success(HttpResponse(status.toUShort(), headers, body))
        } catch (e: Throwable) {
            quietly { connection.disconnect() }
            Result.failure(if (e is Exception) transportError(e, request) else e)
        }
        // Ignored when the caller was cancelled meanwhile.
        continuation.resumeWith(result)
    }

    private fun transportError(e: Exception, request: HttpRequest): Exception {
        if (e is CancellationException || e is TransportException) return e
        // The message without the URL's query, which holds the signature of a presigned URL.
        val what = (e.message ?: "").replace(request.url, request.url.substringBefore('?'))
        val reason = "HttpURLConnection: ${e.javaClass.simpleName}" + if (what.isEmpty()) "" else ": $what"
        return when (e) {
            // Android's HttpURLConnection (OkHttp inside) also reports a write that timed out
            // as a plain InterruptedIOException("timeout").
            is SocketTimeoutException, is InterruptedIOException -> TransportException.Timeout(reason)
            else -> TransportException.Network(reason)
        }
    }

    private inline fun quietly(block: () -> Unit) {
        try {
            block()
        } catch (e: Exception) {
            // Closing what is already broken.
        }
    }
}
