// Kotlin on the JVM against SeaweedFS (endpoint and credentials from the environment, set by
// scripts/test.sh). Prints "N passed, N failed" and exits non-zero on any failure.
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest.BodyPublishers
import java.net.http.HttpResponse.BodyHandlers
import java.io.BufferedInputStream
import java.io.ByteArrayOutputStream
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import uniffi.bucketsync_uniffi.*

val endpoint: String = System.getenv("BUCKETSYNC_TEST_ENDPOINT") ?: error("BUCKETSYNC_TEST_ENDPOINT is not set")
val accessKey: String = System.getenv("BUCKETSYNC_TEST_ACCESS_KEY")!!
val secretKey: String = System.getenv("BUCKETSYNC_TEST_SECRET_KEY")!!

/** Every temporary file and folder of the tests is made in here; `main` removes it at the end. */
val scratch: java.nio.file.Path = java.nio.file.Files.createTempDirectory("bucketsync-kotlin")

fun store(bucket: String, prefix: String = "") = "s3://$bucket/$prefix?endpoint=$endpoint&path_style=true"
fun creds(secret: String = secretKey, sessionToken: String? = null) = Credentials(accessKey, secret, sessionToken)

/** A transport on the JDK's own HTTP client: what an app does to use OkHttp or its proxies. */
open class JdkTransport : HostTransport {
    private val client = HttpClient.newHttpClient()
    var calls = 0
    /** Every request handed over, as received. */
    val sent: MutableList<HttpRequest> = java.util.Collections.synchronizedList(mutableListOf())

    override suspend fun send(request: HttpRequest): HttpResponse {
        calls++
        sent.add(request)
        val builder = java.net.http.HttpRequest.newBuilder(URI(request.url))
        for (h in request.headers) builder.header(h.name, h.value)
        val body = if (request.body.isEmpty()) BodyPublishers.noBody() else BodyPublishers.ofByteArray(request.body)
        builder.method(request.method, body)
        val response = try {
            client.send(builder.build(), BodyHandlers.ofByteArray())
        } catch (e: java.io.IOException) {
            throw TransportException.Network("JDK client: ${e.message}")
        }
        val headers = response.headers().map().flatMap { (name, values) -> values.map { Header(name, it) } }
        return HttpResponse(response.statusCode().toUShort(), headers, response.body())
    }
}

/** Sends the first segment PUT, then never answers it: a sync stuck until it is cancelled. */
class HangsAfterSegmentPut : JdkTransport() {
    val reached = CompletableDeferred<Unit>()
    private var hung = false

    override suspend fun send(request: HttpRequest): HttpResponse {
        val response = super.send(request)
        if (!hung && request.method == "PUT" && request.url.contains("/s/")) {
            hung = true
            reached.complete(Unit)
            awaitCancellation()
        }
        return response
    }
}

/** Passes every request on to [inner] and counts them. */
class Counting(private val inner: HostTransport) : HostTransport {
    val calls = AtomicInteger()
    override suspend fun send(request: HttpRequest): HttpResponse {
        calls.incrementAndGet()
        return inner.send(request)
    }
}

/** One exchange as a [Recorder] saw it: what went out, and the status that came back. */
data class Exchange(val method: String, val url: String, val ifNoneMatch: String?, val status: Int) {
    /** "hint" (the change hint), "list" (a listing) or "other". */
    val kind: String get() = when {
        url.contains("list-type=2") -> "list"
        url.substringBefore('?').endsWith("/h") -> "hint"
        else -> "other"
    }
}

/** Passes every request on to [inner] and notes each exchange, statuses included. */
class Recorder(private val inner: HostTransport) : HostTransport {
    private val seen = mutableListOf<Exchange>()
    override suspend fun send(request: HttpRequest): HttpResponse {
        val response = inner.send(request)
        val exchange = Exchange(request.method, request.url, request.header("if-none-match"), response.status.toInt())
        synchronized(this) { seen.add(exchange) }
        return response
    }
    /** What was sent (and answered) since the last call. */
    fun take(): List<Exchange> = synchronized(this) { seen.toList().also { seen.clear() } }
}

/** Suspends until [found] holds, failing after [seconds]. */
suspend fun waitFor(what: String, seconds: Double, found: () -> Boolean) {
    val start = System.nanoTime()
    while (!found()) {
        if (millisSince(start) > seconds * 1000) throw AssertionError("no $what within $seconds s")
        delay(20)
    }
}

/** One request as it arrived on the wire: the head exactly as sent, and the body. */
class RawRequest(val head: String, val body: ByteArray) {
    val requestLine: String get() = head.substringBefore("\r\n")
    /** The header lines, as (name, value), in the order sent. */
    val headers: List<Pair<String, String>> get() =
        head.split("\r\n").drop(1).filter { it.isNotEmpty() }.map { it.substringBefore(':') to it.substringAfter(':').trim() }
    fun values(name: String) = headers.filter { it.first.equals(name, ignoreCase = true) }.map { it.second }
}

/**
 * A tiny HTTP/1.1 server on 127.0.0.1 that records each request as it arrived and answers what
 * [answer] returns; null means never answer (it then waits until the client hangs up).
 */
class LocalServer(private val answer: (RawRequest) -> ByteArray?) : AutoCloseable {
    private val socket = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    val url = "http://127.0.0.1:${socket.localPort}"
    val connections = AtomicInteger()
    val requests: MutableList<RawRequest> = CopyOnWriteArrayList()
    /** Counted down when a request was received and is left unanswered. */
    val waiting = CountDownLatch(1)
    /** Counted down when the client hung up on an unanswered request. */
    val hungUp = CountDownLatch(1)

    init {
        thread(isDaemon = true) {
            while (!socket.isClosed) {
                val client = try { socket.accept() } catch (e: java.io.IOException) { break }
                connections.incrementAndGet()
                thread(isDaemon = true) { client.use { serve(it) } }
            }
        }
    }

    private fun serve(client: Socket) {
        val input = BufferedInputStream(client.getInputStream())
        while (true) {
            val head = ByteArrayOutputStream()
            while (!head.toString(Charsets.ISO_8859_1).endsWith("\r\n\r\n")) {
                val b = input.read()
                if (b < 0) return
                head.write(b)
            }
            val text = head.toString(Charsets.ISO_8859_1)
            val length = RawRequest(text, ByteArray(0)).values("content-length").firstOrNull()?.toInt() ?: 0
            val request = RawRequest(text, input.readNBytes(length))
            requests.add(request)
            val reply = answer(request)
            if (reply == null) {
                waiting.countDown()
                try { while (input.read() >= 0) {} } catch (e: java.io.IOException) {}
                hungUp.countDown()
                return
            }
            client.getOutputStream().apply { write(reply); flush() }
        }
    }

    override fun close() = socket.close()

    companion object {
        fun reply(status: Int, body: String = "", headers: List<Pair<String, String>> = emptyList()): ByteArray {
            val bytes = body.toByteArray()
            val head = StringBuilder("HTTP/1.1 $status Whatever\r\nContent-Length: ${bytes.size}\r\n")
            for ((name, value) in headers) head.append("$name: $value\r\n")
            return head.append("\r\n").toString().toByteArray() + bytes
        }
    }
}

fun millisSince(start: Long) = (System.nanoTime() - start) / 1_000_000

fun check(condition: Boolean, what: String) {
    if (!condition) throw AssertionError(what)
}

/** The value of header `name` (case-insensitive) in what the transport received. */
fun HttpRequest.header(name: String): String? = headers.firstOrNull { it.name.equals(name, ignoreCase = true) }?.value

/** Checks that the printed forms of a signed request hide its secrets and show the rest. */
fun checkPrintedRequest(request: HttpRequest, token: String?) {
    val authorization = request.header("authorization") ?: throw AssertionError("unsigned: ${request.url}")
    val signature = authorization.substringAfter("Signature=", "")
    check(signature.length == 64, "the transport reads the real authorization header: $authorization")
    val path = URI(request.url).rawPath
    for (printed in listOf(request.toString(), "$request", request.headers.toString(), listOf(request).toString())) {
        check(!printed.contains(signature) && !printed.contains(authorization), "the signature is hidden: $printed")
        check(token == null || !printed.contains(token), "the session token is hidden: $printed")
    }
    val printed = request.toString()
    check(printed.contains(request.method) && printed.contains(path), "method and path are shown: $printed")
    check(printed.contains("<redacted>") && printed.contains("x-amz-date"), "other headers are shown: $printed")
}

val tests: List<Pair<String, suspend () -> Unit>> = listOf(
    "two vaults converge through SeaweedFS, a third bootstraps" to {
        val key = VaultKey.generate()
        // ANCHOR: converge
        val a = Vault.open(store("kotlin", "converge/"), key, device = "kotlin a", credentials = creds(), create = true)
        val b = Vault.open(store("kotlin", "converge/"), key, credentials = creds())
        a.putText("notes/a", "from a")
        b.putText("notes/b", "from b")
        b.delete("notes/b".toByteArray())
        for (v in listOf(a, b, a)) check(v.sync().errors.isEmpty(), "no sync errors")
        check(b.getText("notes/a") == "from a", "b sees a's note")
        check(a.getText("notes/b") == null, "the delete reached a")
        // ANCHOR_END: converge
        val c = Vault.open(store("kotlin", "converge/"), key, credentials = creds())
        val report = c.sync()
        check(report.pulled == 2UL && c.keys(ByteArray(0)).size == 1, "c bootstraps: $report")
        check(c.sync().requests == 1UL, "nothing new is one LIST")
        check(report.changed.size == 2, "a's note and b's deletion changed: ${report.changed.size}")
        check(c.devices().any { it.label == "kotlin a" && !it.stale && !it.thisDevice }, "a is listed by its name")
        try { c.devices(-1.0); check(false, "a negative staleAfterDays was taken") }
        catch (e: BucketsyncException.Config) { check(e.message!!.contains("staleAfterDays"), e.message!!) }
        // ANCHOR: not_found
        // A wrong key joins nothing: not found, and the write stays.
        val lost = Vault.open(store("kotlin", "converge/"), VaultKey.generate(), credentials = creds())
        lost.putText("k", "v")
        try { lost.sync(); check(false, "joined a vault that does not exist") }
        catch (e: BucketsyncException.NotFound) { check(e.message!!.contains("1 other vault"), e.message!!) }
        check(lost.unpushed() == 1UL, "nothing lost")
        // ANCHOR_END: not_found
        try { Vault.open(store("kotlin", "converge/"), key, credentials = creds(), create = true).sync(); check(false, "created twice") }
        catch (e: BucketsyncException.Conflict) {}
        // ANCHOR: history
        // A concurrent edit: the later one wins, both stay in history.
        b.putText("shared", "from b")
        Thread.sleep(5)
        a.putText("shared", "from a")
        a.sync()
        check(b.sync().conflicts.size == 1, "b's unpushed edit met a's")
        a.sync()
        for (v in listOf(a, b)) {
            val versions = v.history("shared".toByteArray()).map { it.value?.let { bytes -> String(bytes) } }
            check(versions == listOf("from a", "from b"), "history: $versions")
        }
        // ANCHOR_END: history
        // a retires b; b starts over under a new id when it syncs again, its write survives.
        val bId = b.devices(30.0).first { it.thisDevice }.id
        try { a.retire(a.devices(30.0).first { it.thisDevice }.id); check(false, "retired itself") }
        catch (e: BucketsyncException.Config) {}
        a.retire(bId)
        a.sync()
        b.putText("after", "retired")
        val back = b.sync()
        check(back.startedOver == bId && back.restamped.size == 1, "b started over: $back")
        a.sync()
        check(a.getText("after") == "retired" && a.devices(30.0).any { it.id == bId && it.retired }, "a sees it")
    },
    "a Kotlin-implemented transport is used for a sync" to {
        val key = VaultKey.generate()
        val transport = JdkTransport()
        val vault = Vault.open(store("kotlin", "transport/"), key, credentials = creds(), transport = transport, create = true)
        vault.putText("via", "the JDK HTTP client")
        val report = vault.sync()
        check(report.pushed == 1UL && transport.calls.toULong() == report.requests, "all requests went through it: $report")
        val reader = Vault.open(store("kotlin", "transport/"), key, credentials = creds())
        reader.sync()
        check(reader.getText("via") == "the JDK HTTP client", "read back")
    },
    "a request prints without its signature or session token; the transport sends the real ones" to {
        // Static credentials: the sync succeeds, so every request went out with its real signature.
        val key = VaultKey.generate()
        val transport = JdkTransport()
        val vault = Vault.open(store("kotlin", "redact/"), key, credentials = creds(), transport = transport, create = true)
        vault.putText("secret/path", "value")
        val report = vault.sync()
        check(report.errors.isEmpty() && report.pushed == 1UL && vault.unpushed() == 0UL, "the sync went through: $report")
        check(transport.sent.size.toULong() == report.requests && transport.sent.any { it.method == "PUT" }, "requests seen")
        for (request in transport.sent) checkPrintedRequest(request, null)
        // A session token: the transport gets it in its header (SeaweedFS, which issued no such
        // token, refuses it), and no printed form shows it.
        val token = "kotlin-session-token-0123456789-not-for-logs"
        val withToken = JdkTransport()
        val temporary = Vault.open(store("kotlin", "redact/"), key, credentials = creds(sessionToken = token), transport = withToken)
        try { temporary.sync(); check(false, "SeaweedFS accepted a token it never issued") }
        catch (e: BucketsyncException.Auth) { check(!e.message!!.contains(token), "no token in the message") }
        check(withToken.sent.isNotEmpty(), "the request reached the transport")
        for (request in withToken.sent) {
            check(request.header("X-Amz-Security-Token") == token, "the real token is sent: ${request.headers.map { it.name }}")
            checkPrintedRequest(request, token)
        }
        // A presigned URL and mixed-case header names, as an app may build them.
        val presigned = HttpRequest(
            "GET",
            "https://bucket.s3.amazonaws.com/notes/a?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request" +
                "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=300&x-amz-security-token=presigned-token&X-Amz-SignedHeaders=host&X-Amz-Signature=0123abcd",
            listOf(Header("Authorization", "AWS4-HMAC-SHA256 Signature=feedbeef"), Header("X-Amz-Security-Token", "header-token"), Header("Range", "bytes=0-9")),
            ByteArray(3),
        )
        val printed = presigned.toString()
        for (secret in listOf("AKIAEXAMPLE", "presigned-token", "0123abcd", "feedbeef", "header-token")) {
            check(!printed.contains(secret), "$secret is hidden: $printed")
        }
        for (shown in listOf("GET", "https://bucket.s3.amazonaws.com/notes/a?", "X-Amz-Expires=300", "X-Amz-Signature=<redacted>", "bytes=0-9", "3 bytes")) {
            check(printed.contains(shown), "$shown is shown: $printed")
        }
        check(presigned.headers[0].value == "AWS4-HMAC-SHA256 Signature=feedbeef" && presigned.url.contains("X-Amz-Signature=0123abcd"), "fields keep the real values")
        check(presigned == presigned.copy() && presigned.headers[1].toString().contains("X-Amz-Security-Token"), "still a data class")
    },
    "errors arrive as the typed exception with the right category" to {
        val key = VaultKey.generate()
        val code = key.recoveryCode()
        val typo = (if (code[0] == '1') "2" else "1") + code.substring(1)
        try { VaultKey.fromRecoveryCode(typo); check(false, "typo accepted") } catch (e: BucketsyncException.Config) {}
        try { Vault.open("s3://bucket/x?endpoit=http://x", key, credentials = creds()); check(false, "bad URL accepted") }
        catch (e: BucketsyncException.Config) { check(e.message!!.contains("unknown parameter"), e.message!!) }
        val secret = "not-the-secret-at-all-42"
        val wrong = Vault.open(store("kotlin"), key, credentials = creds(secret))
        wrong.putText("k", "v")
        try { wrong.sync(); check(false, "wrong secret accepted") }
        catch (e: BucketsyncException.Auth) { check(!e.message!!.contains(secret), "no secret in the message") }
        check(wrong.unpushed() == 1UL, "nothing lost")
        try { Vault.open(store("no-such-bucket-here"), key, credentials = creds()).sync(); check(false, "missing bucket") }
        catch (e: BucketsyncException.NotFound) {}
    },
    "a sync cancelled mid-flight leaves the vault usable; the next one converges" to {
        coroutineScope {
            val key = VaultKey.generate()
            val state = java.io.File.createTempFile("bucketsync-cancel", ".state", scratch.toFile()).also { it.delete() }
            val transport = HangsAfterSegmentPut()
            val vault = Vault.open(store("kotlin", "cancel/"), key, statePath = state.path, credentials = creds(), transport = transport, create = true)
            for (i in 0 until 20) vault.putText("k$i", "v$i")
            val job = launch { vault.sync() }
            transport.reached.await()
            job.cancelAndJoin()
            vault.putText("after", "the cancel")
            val report = vault.sync()
            check(report.errors.isEmpty() && vault.unpushed() == 0UL, "the next sync finishes: $report")
            vault.close()
            val reader = Vault.open(store("kotlin", "cancel/"), key, credentials = creds())
            val pulled = reader.sync().pulled
            check(pulled == 21UL && reader.getText("k7") == "v7" && reader.getText("after") == "the cancel", "all writes, once each: $pulled")
        }
    },
    "HttpURLConnectionTransport: one device writes, another reads back, every request through it" to {
        val key = VaultKey.generate()
        // ANCHOR: platform_transport
        val writerTransport = Counting(HttpURLConnectionTransport())
        val writer = Vault.open(store("kotlin", "platform/"), key, device = "writer", credentials = creds(), transport = writerTransport, create = true)
        writer.putText("note", "through HttpURLConnection")
        writer.putText("gone", "soon")
        writer.put("bytes".toByteArray(), ByteArray(70_000) { (it * 7).toByte() })
        var report = writer.sync()
        check(report.errors.isEmpty() && report.pushed == 3UL && writer.unpushed() == 0UL, "pushed: $report")
        // ANCHOR_END: platform_transport
        check(writerTransport.calls.get().toULong() == report.requests, "${writerTransport.calls} calls for ${report.requests} requests")
        val readerTransport = Counting(HttpURLConnectionTransport())
        val reader = Vault.open(store("kotlin", "platform/"), key, credentials = creds(), transport = readerTransport)
        report = reader.sync()
        check(report.errors.isEmpty() && report.pulled == 3UL, "pulled: $report")
        check(reader.getText("note") == "through HttpURLConnection", "read back")
        check(reader.get("bytes".toByteArray())!!.contentEquals(ByteArray(70_000) { (it * 7).toByte() }), "70 kB read back")
        check(readerTransport.calls.get().toULong() == report.requests, "the reader's requests went through it too")
        // Back the other way: a deletion and a new key from the reader reach the writer.
        reader.delete("gone".toByteArray())
        reader.putText("reply", "from the reader")
        reader.sync()
        writer.sync()
        check(writer.getText("reply") == "from the reader" && writer.getText("gone") == null, "the writer sees the reader's changes")
    },
    "HttpURLConnectionTransport: a wrong secret is Auth, a missing bucket NotFound" to {
        val key = VaultKey.generate()
        val secret = "not-the-secret-at-all-42"
        val wrong = Vault.open(store("kotlin", "platform-auth/"), key, credentials = creds(secret), transport = HttpURLConnectionTransport(), create = true)
        wrong.putText("k", "v")
        try { wrong.sync(); check(false, "wrong secret accepted") }
        catch (e: BucketsyncException.Auth) { check(!e.message!!.contains(secret), "no secret in the message") }
        check(wrong.unpushed() == 1UL, "nothing lost")
        try { Vault.open(store("no-such-bucket-here"), key, credentials = creds(), transport = HttpURLConnectionTransport()).sync(); check(false, "missing bucket") }
        catch (e: BucketsyncException.NotFound) {}
    },
    "HttpURLConnectionTransport: headers go out as given, every status comes back with its body" to {
        LocalServer { request ->
            when {
                request.requestLine.startsWith("HEAD") -> LocalServer.reply(200, headers = listOf("ETag" to "\"e1\""))
                request.requestLine.contains("/missing") -> LocalServer.reply(404, "<Error><Code>NoSuchKey</Code></Error>", listOf("x-amz-request-id" to "r404"))
                request.requestLine.contains("/broken") -> LocalServer.reply(503, "<Error><Code>SlowDown</Code></Error>")
                request.requestLine.contains("/empty") -> LocalServer.reply(204)
                else -> LocalServer.reply(200, "stored", listOf("ETag" to "\"abc\"", "X-Multi" to "one", "X-Multi" to "two"))
            }
        }.use { server ->
            withContext(Dispatchers.IO) {
                val transport = HttpURLConnectionTransport()
                val body = ByteArray(3000) { it.toByte() }
                val given = listOf(
                    Header("x-amz-date", "20260101T000000Z"),
                    Header("x-amz-content-sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
                    Header("If-None-Match", "*"),
                    Header("X-Amz-Meta-Mixed", "a  value,  with spaces"),
                    Header("authorization", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;if-none-match;x-amz-content-sha256;x-amz-date, Signature=00ff"),
                    Header("Host", server.url.removePrefix("http://")),
                    Header("Content-Length", "3000"),
                )
                val path = "/bucket/v%2Fm/a%3Db%20c?x-id=PutObject&prefix=a%2Fb"
                val put = transport.send(HttpRequest("PUT", server.url + path, given, body))
                check(put.status.toInt() == 200 && String(put.body) == "stored", "PUT answered: ${put.status}")
                check(put.headers.any { it.name.equals("etag", true) && it.value == "\"abc\"" }, "response headers: ${put.headers}")
                check(put.headers.filter { it.name.equals("x-multi", true) }.map { it.value }.sorted() == listOf("one", "two"), "repeated headers kept")
                val sent = server.requests.single()
                check(sent.requestLine == "PUT $path HTTP/1.1", "the path and query as given: ${sent.requestLine}")
                check(sent.body.contentEquals(body), "the body as given")
                for (h in given) check(sent.values(h.name) == listOf(h.value), "${h.name} sent once, as given: ${sent.values(h.name)}")
                check(sent.values("content-type").isEmpty(), "no Content-Type added to a PUT: ${sent.head}")
                val added = sent.headers.filter { (name, _) -> given.none { it.name.equals(name, true) } }
                check(added.none { (name, _) -> name.lowercase().startsWith("x-amz-") || name.equals("content-md5", true) }, "nothing that S3 wants signed is added: $added")
                println("   (HttpURLConnection adds ${added.joinToString { "${it.first}: ${it.second}" }})")
                // Other statuses and methods: the status, headers and body as the server answered.
                val missing = transport.send(HttpRequest("GET", server.url + "/bucket/missing", emptyList(), ByteArray(0)))
                check(missing.status.toInt() == 404 && String(missing.body) == "<Error><Code>NoSuchKey</Code></Error>", "404 with its body")
                check(missing.headers.any { it.name.equals("x-amz-request-id", true) && it.value == "r404" }, "404 headers")
                val broken = transport.send(HttpRequest("DELETE", server.url + "/bucket/broken", emptyList(), ByteArray(0)))
                check(broken.status.toInt() == 503 && String(broken.body).contains("SlowDown"), "503 with its body")
                val head = transport.send(HttpRequest("HEAD", server.url + "/bucket/k", emptyList(), ByteArray(0)))
                check(head.status.toInt() == 200 && head.body.isEmpty() && head.headers.any { it.value == "\"e1\"" }, "HEAD")
                val empty = transport.send(HttpRequest("PUT", server.url + "/bucket/empty", emptyList(), ByteArray(0)))
                check(empty.status.toInt() == 204 && server.requests.last().values("content-length") == listOf("0"), "an empty PUT says Content-Length: 0")
                // What HttpURLConnection would change or drop fails before anything is sent.
                val before = server.requests.size
                for (bad in listOf(Header("Origin", "https://example.com"), Header("Host", "elsewhere.example"), Header("Content-Length", "5"), Header("Transfer-Encoding", "chunked"))) {
                    try { transport.send(HttpRequest("GET", server.url + "/bucket/k", listOf(bad), ByteArray(0))); check(false, "sent with ${bad.name}: ${bad.value}") }
                    catch (e: TransportException.Network) { check(e.reason.contains(bad.name), e.reason) }
                }
                check(server.requests.size == before, "none of them reached the server")
            }
        }
    },
    "HttpURLConnectionTransport: a redirect comes back as the response, never followed" to {
        LocalServer { LocalServer.reply(200, "should never be asked") }.use { elsewhere ->
            LocalServer { LocalServer.reply(307, "<Error><Code>TemporaryRedirect</Code></Error>", listOf("Location" to elsewhere.url + "/bucket/k")) }.use { server ->
                val transport = HttpURLConnectionTransport()
                for (method in listOf("GET", "PUT")) {
                    val body = if (method == "PUT") "data".toByteArray() else ByteArray(0)
                    val response = transport.send(HttpRequest(method, server.url + "/bucket/k", listOf(Header("authorization", "AWS4-HMAC-SHA256 Signature=secret")), body))
                    check(response.status.toInt() == 307 && String(response.body).contains("TemporaryRedirect"), "$method: the 307 itself")
                    check(response.headers.any { it.name.equals("location", true) && it.value == elsewhere.url + "/bucket/k" }, "$method: its Location")
                }
                // Through a vault: the sync fails on the redirect and nothing goes to the other host.
                val vault = Vault.open("s3://bucket/?endpoint=${server.url}&path_style=true", VaultKey.generate(), credentials = creds(), transport = HttpURLConnectionTransport(), create = true)
                vault.putText("k", "v")
                try { vault.sync(); check(false, "a sync through a redirect succeeded") }
                catch (e: BucketsyncException.Config) { check(e.message!!.contains("307"), e.message!!) }
                check(elsewhere.connections.get() == 0, "the other host got ${elsewhere.connections} connections")
            }
        }
    },
    "HttpURLConnectionTransport: a server that never answers is a Timeout" to {
        LocalServer { null }.use { server ->
            val transport = HttpURLConnectionTransport(connectTimeoutMillis = 1000, readTimeoutMillis = 300)
            val start = System.nanoTime()
            try { transport.send(HttpRequest("GET", server.url + "/bucket?list-type=2&X-Amz-Signature=presigned-secret", emptyList(), ByteArray(0))); check(false, "answered") }
            catch (e: TransportException.Timeout) { check(!e.reason.contains("presigned-secret"), "no query in the message: ${e.reason}") }
            val elapsed = millisSince(start)
            check(elapsed in 250..2000, "timed out after $elapsed ms")
            check(server.requests.size == 1, "sent once, not retried by HttpURLConnection: ${server.requests.size}")
            // Through a vault: the core retries, then the sync fails with the Timeout category.
            val vault = Vault.open("s3://bucket/?endpoint=${server.url}&path_style=true", VaultKey.generate(), credentials = creds(), transport = transport, create = true)
            try { vault.sync(); check(false, "synced") } catch (e: BucketsyncException.Timeout) {}
        }
        // Nobody listening: a Network error, at once.
        val closed = ServerSocket(0, 1, InetAddress.getLoopbackAddress()).use { it.localPort }
        try { HttpURLConnectionTransport().send(HttpRequest("GET", "http://127.0.0.1:$closed/", emptyList(), ByteArray(0))); check(false, "connected") }
        catch (e: TransportException.Network) { check(e.reason.contains("ConnectException"), e.reason) }
    },
    "HttpURLConnectionTransport: cancelling the sync disconnects and ends the call at once" to {
        coroutineScope {
            LocalServer { null }.use { server ->
                val transport = HttpURLConnectionTransport(readTimeoutMillis = 60_000)
                val vault = Vault.open("s3://bucket/?endpoint=${server.url}&path_style=true", VaultKey.generate(), credentials = creds(), transport = transport, create = true)
                vault.putText("k", "v")
                val job = launch { vault.sync() }
                check(withContext(Dispatchers.IO) { server.waiting.await(10, TimeUnit.SECONDS) }, "the request reached the server")
                val start = System.nanoTime()
                job.cancelAndJoin()
                val elapsed = millisSince(start)
                check(elapsed < 2000, "the cancelled sync ended after $elapsed ms")
                check(withContext(Dispatchers.IO) { server.hungUp.await(2, TimeUnit.SECONDS) }, "the connection was closed")
                check(vault.unpushed() == 1UL && vault.getText("k") == "v", "the vault is usable, nothing lost")
            }
        }
    },
    "a file goes between devices by path, with progress, and reads back whole" to {
        val key = VaultKey.generate()
        val a = Vault.open(store("kotlin", "files/"), key, credentials = creds(), create = true)
        val b = Vault.open(store("kotlin", "files/"), key, credentials = creds())
        val dir = java.nio.file.Files.createTempDirectory(scratch, "bucketsync-files")
        val data = ByteArray(5 shl 20).also { java.util.Random(7).nextBytes(it) }
        val source = dir.resolve("in.bin").also { java.nio.file.Files.write(it, data) }
        // ANCHOR: files
        val seen = java.util.Collections.synchronizedList(mutableListOf<FileProgress>())
        val listener = object : FileListener {
            override fun onProgress(progress: FileProgress) { seen.add(progress) }
        }
        val report = a.putFile("docs/in.bin".toByteArray(), source.toString(), listener)
        val size = data.size.toULong()
        // Cut points depend on the vault key (a chunk may reach 8 MiB): at least one chunk in a
        // pack, none meaning the file went inline.
        check(report.size == size && report.chunks >= 1UL && report.packs >= 1UL, "stored in chunks: $report")
        check(seen.last().bytesDone == size && seen.last().bytesTotal == size, "progress reached the size: ${seen.last()}")
        check(a.fileInfo("docs/in.bin".toByteArray())?.size == size, "file info without fetching")
        for (v in listOf(a, b)) check(v.sync().errors.isEmpty(), "synced")
        val target = dir.resolve("out.bin")
        val read = java.util.Collections.synchronizedList(mutableListOf<FileProgress>())
        val reading = object : FileListener {
            override fun onProgress(progress: FileProgress) { read.add(progress) }
        }
        check(b.getFile("docs/in.bin".toByteArray(), target.toString(), reading), "found on the other device")
        // ANCHOR_END: files
        check(java.nio.file.Files.readAllBytes(target).contentEquals(data), "the same bytes")
        check(read.last().bytesDone == size, "read progress reached the size")
        // Opened for reading at any offset, and as an InputStream.
        val opened = b.openFile("docs/in.bin".toByteArray()) ?: error("the file does not open")
        check(opened.size() == size, "the opened file's size")
        check(opened.readAt(0UL, 10u).contentEquals(data.copyOfRange(0, 10)), "its start")
        val mid = 3 shl 20
        check(opened.readAt(mid.toULong(), 5000u).contentEquals(data.copyOfRange(mid, mid + 5000)), "its middle")
        check(opened.readAt(size - 5UL, 100u).contentEquals(data.copyOfRange(data.size - 5, data.size)), "short at its end")
        check(opened.readAt(size, 100u).isEmpty() && opened.readAt(size + 10UL, 1u).isEmpty(), "nothing past its end")
        val streamed = withContext(Dispatchers.IO) { opened.inputStream().use { it.readBytes() } }
        check(streamed.contentEquals(data), "the InputStream reads it whole")
        val skipping = opened.inputStream(1000)
        check(skipping.read() == (data[1000].toInt() and 0xff) && skipping.skip(10) == 10L, "a stream from an offset, skipping")
        check(skipping.read() == (data[1011].toInt() and 0xff), "reads on after the skip")
        check(b.openFile("nope".toByteArray()) == null, "an absent key opens as null")
        b.putText("plain", "a record, not a file")
        try {
            b.openFile("plain".toByteArray())
            check(false, "opened a record that is not a file")
        } catch (e: BucketsyncException.Config) {
        }
        val absent = dir.resolve("absent.bin")
        check(!b.getFile("nope".toByteArray(), absent.toString()), "an absent key is false")
        check(!java.nio.file.Files.exists(absent), "and writes nothing")
        try {
            a.putFile("x".toByteArray(), dir.resolve("missing").toString())
            check(false, "stored a file that does not exist")
        } catch (e: BucketsyncException.Config) {
            check(a.fileInfo("x".toByteArray()) == null, "nothing stored")
        }
    },
    "putFiles: three files share packs, one that goes missing is left out, a missing path stores nothing" to {
        val key = VaultKey.generate()
        val a = Vault.open(store("kotlin", "batch/"), key, credentials = creds(), create = true)
        val b = Vault.open(store("kotlin", "batch/"), key, credentials = creds())
        val dir = java.nio.file.Files.createTempDirectory(scratch, "bucketsync-batch")
        val files = (1..3).associate { i ->
            val data = ByteArray(100_000 * i).also { java.util.Random(20L + i).nextBytes(it) }
            "docs/$i.bin" to dir.resolve("$i.bin").also { java.nio.file.Files.write(it, data) }
        }
        val gone = dir.resolve("gone.bin").also { java.nio.file.Files.write(it, ByteArray(50_000) { 1 }) }
        // Checked before anything is sent: a missing path throws and nothing is stored.
        try {
            a.putFiles(listOf(FileToPut("x".toByteArray(), files.getValue("docs/1.bin").toString()),
                FileToPut("y".toByteArray(), dir.resolve("missing").toString())))
            check(false, "stored a batch with a missing path")
        } catch (e: BucketsyncException.Config) {
            check(e.message?.contains("missing") == true, "it names the path: ${e.message}")
        }
        check(a.fileInfo("x".toByteArray()) == null, "nothing stored")
        // A folder is refused the same way, as on every platform.
        try { a.putFiles(listOf(FileToPut("x".toByteArray(), dir.toString()))); check(false, "stored a folder") }
        catch (e: BucketsyncException.Config) { check(e.message!!.contains("is a folder, not a file"), "${e.message}") }
        // A file that is gone when its turn comes (removed by the first progress call) is left
        // out; the others are stored.
        val seen = java.util.Collections.synchronizedList(mutableListOf<String>())
        val listener = object : FilesListener {
            override fun onProgress(key: ByteArray, progress: FileProgress) {
                seen.add(String(key))
                java.nio.file.Files.deleteIfExists(gone)
            }
        }
        val given = files.entries.map { (k, path) -> FileToPut(k.toByteArray(), path.toString()) }
        val report = a.putFiles(listOf(given[0], FileToPut("docs/gone.bin".toByteArray(), gone.toString())) + given.drop(1), listener)
        check(report.stored.map { String(it.key) }.sorted() == files.keys.sorted(), "three stored: $report")
        for (s in report.stored) {
            check(s.report.size == java.nio.file.Files.size(files.getValue(String(s.key))).toULong(), "its size: $s")
        }
        check(report.failed.map { String(it.key) } == listOf("docs/gone.bin"), "the missing one left out: ${report.failed}")
        check(report.failed.single().category == "config" && report.failed.single().message.contains("gone.bin"), "${report.failed}")
        // Each file is one chunk (under 512 KiB), and a chunk goes into either of the upload's
        // two open packs, at random: three files in at most two packs share one.
        check(report.packs in 1UL..2UL, "at most two packs for the three: $report")
        check(report.chunksUploaded >= 3UL && report.requests >= 1UL && report.bytesSent > 600_000UL, "$report")
        check(seen.toSet() == files.keys, "progress named each file: $seen")
        check(a.fileInfo("docs/gone.bin".toByteArray()) == null, "nothing under the missing one's key")
        for (v in listOf(a, b)) check(v.sync().errors.isEmpty(), "synced")
        for ((k, path) in files) {
            val out = dir.resolve("out-${path.fileName}")
            check(b.getFile(k.toByteArray(), out.toString()), "$k found on the other device")
            check(java.nio.file.Files.readAllBytes(out).contentEquals(java.nio.file.Files.readAllBytes(path)), "$k reads back equal")
        }
    },
    "folders: a phone's photos backed up and restored elsewhere, a folder synced both ways, a mass deletion stopped" to {
        val key = VaultKey.generate()
        val phone = Vault.open(store("kotlin", "folders/"), key, device = "phone", credentials = creds(), create = true)
        val laptop = Vault.open(store("kotlin", "folders/"), key, device = "laptop", credentials = creds())
        val root = java.nio.file.Files.createTempDirectory(scratch, "bucketsync-folders")
        val photos = java.nio.file.Files.createDirectories(root.resolve("DCIM/Camera"))
        for (i in 1..3) {
            val data = ByteArray(200_000 + i).also { java.util.Random(40L + i).nextBytes(it) }
            java.nio.file.Files.write(photos.resolve("IMG_000$i.jpg"), data)
        }
        val dcim = root.resolve("DCIM").toString()
        // ANCHOR: folders
        // Back the phone's photos up: only what changed since the last backup is sent.
        val seen = java.util.Collections.synchronizedSet(mutableSetOf<String>())
        val listener = object : FolderListener {
            override fun onProgress(path: String, progress: FileProgress) { seen.add(path) }
        }
        val backup = phone.backupFolder(dcim, name = "photos", listener = listener)
        check(backup.filesStored == 3UL && backup.errors.isEmpty(), "$backup")
        phone.sync()
        // On another device: the same tree, byte for byte.
        laptop.sync()
        val restored = laptop.restoreFolder(root.resolve("restored").toString(), name = "photos")
        check(restored.filesWritten == 3UL && restored.errors.isEmpty(), "$restored")
        // ANCHOR_END: folders
        check(seen == setOf("Camera/IMG_0001.jpg", "Camera/IMG_0002.jpg", "Camera/IMG_0003.jpg"), "progress named each photo: $seen")
        for (i in 1..3) {
            val name = "Camera/IMG_000$i.jpg"
            check(java.nio.file.Files.readAllBytes(root.resolve("restored/$name")).contentEquals(
                java.nio.file.Files.readAllBytes(root.resolve("DCIM/$name"))), "$name restored equal")
        }
        check(laptop.backups() == listOf("photos"), "${laptop.backups()}")
        val checked = laptop.verify()
        check(checked.filesOk == 3UL && checked.damaged.isEmpty() && checked.name == "photos", "$checked")
        val one = laptop.restoreFolder(root.resolve("one").toString(), name = "photos", options = RestoreOptions(only = listOf("IMG_0002.jpg")))
        check(one.filesWritten == 1UL && java.nio.file.Files.exists(root.resolve("one/Camera/IMG_0002.jpg")), "only the one asked for: $one")
        // A second backup of an unchanged folder sends nothing; a dry run changes nothing.
        check(phone.backupFolder(dcim, name = "photos").filesUnchanged == 3UL, "unchanged")
        java.nio.file.Files.write(photos.resolve("IMG_0004.jpg"), ByteArray(1000) { 4 })
        val dry = phone.backupFolder(dcim, name = "photos", options = BackupOptions(dryRun = true))
        check(dry.dryRun && dry.filesNew == 1UL, "$dry")
        check(phone.backupFolder(dcim, name = "photos", options = BackupOptions(dryRun = true)).filesNew == 1UL, "the dry run stored nothing")
        // Two-way: an edit on each side reaches the other.
        val onPhone = java.nio.file.Files.createDirectories(root.resolve("notes-phone"))
        val onLaptop = java.nio.file.Files.createDirectories(root.resolve("notes-laptop"))
        java.nio.file.Files.writeString(onPhone.resolve("todo.txt"), "milk")
        check(phone.syncFolder(onPhone.toString(), name = "notes").uploaded == 1UL, "sent")
        check(laptop.syncFolder(onLaptop.toString(), name = "notes").downloaded == 1UL, "received")
        java.nio.file.Files.writeString(onLaptop.resolve("todo.txt"), "milk, eggs")
        laptop.syncFolder(onLaptop.toString(), name = "notes")
        val back = phone.syncFolder(onPhone.toString(), name = "notes")
        check(back.downloaded == 1UL && back.conflicts.isEmpty(), "$back")
        check(java.nio.file.Files.readString(onPhone.resolve("todo.txt")) == "milk, eggs", "the laptop's edit reached the phone")
        // Deleting most of a folder stops, changing nothing, until confirmed.
        for (i in 1..11) java.nio.file.Files.writeString(onPhone.resolve("n$i.txt"), "note $i")
        phone.syncFolder(onPhone.toString(), name = "notes")
        for (i in 1..11) java.nio.file.Files.delete(onPhone.resolve("n$i.txt"))
        val plan = phone.syncFolder(onPhone.toString(), name = "notes", dryRun = true)
        check(plan.dryRun && plan.deletedThere == 11UL && plan.changes.all { it.change == "delete-there" }, "$plan")
        try {
            phone.syncFolder(onPhone.toString(), name = "notes")
            check(false, "deleted 11 of 12 files without asking")
        } catch (e: BucketsyncException.Conflict) {
            check(e.message!!.contains("would delete 11 of its 12 files"), "${e.message}")
        }
        phone.confirmDeletions()
        check(phone.syncFolder(onPhone.toString(), name = "notes").deletedThere == 11UL, "confirmed")
        // A folder that is not there is a Config error.
        try { phone.syncFolder(root.resolve("missing").toString(), name = "notes"); check(false, "synced a missing folder") }
        catch (e: BucketsyncException.Config) { check(e.message!!.contains("nothing was synced"), "${e.message}") }
    },
    "files: an InputStream goes up in chunks, another device reads it into an OutputStream; a failing stream stores nothing" to {
        val key = VaultKey.generate()
        val a = Vault.open(store("kotlin", "streams/"), key, credentials = creds(), create = true)
        val b = Vault.open(store("kotlin", "streams/"), key, credentials = creds())
        val data = ByteArray((3 shl 20) + 12345).also { java.util.Random(11).nextBytes(it) }
        val seen = java.util.Collections.synchronizedList(mutableListOf<FileProgress>())
        val listener = object : FileListener {
            override fun onProgress(progress: FileProgress) { seen.add(progress) }
        }
        // A stream that hands out odd-sized pieces, as network and content streams do.
        val trickle = object : java.io.FilterInputStream(java.io.ByteArrayInputStream(data)) {
            override fun read(b: ByteArray, off: Int, len: Int): Int = super.read(b, off, minOf(len, 70_001))
        }
        val report = a.putFileFrom("docs/streamed.bin".toByteArray(), trickle.asFileSource(), data.size.toULong(), listener)
        val size = data.size.toULong()
        // At least one chunk in a pack (cut points depend on the key; none would mean inline).
        check(report.size == size && report.chunks >= 1UL && report.packs >= 1UL, "stored in chunks: $report")
        check(seen.last().bytesDone == size && seen.last().bytesTotal == size, "progress reached the size: ${seen.last()}")
        for (v in listOf(a, b)) check(v.sync().errors.isEmpty(), "synced")
        val out = java.io.ByteArrayOutputStream()
        check(b.getFileTo("docs/streamed.bin".toByteArray(), out.asFileSink()), "found on the other device")
        check(out.toByteArray().contentEquals(data), "the same bytes through the OutputStream")
        // Small content lives in its record, and reads back the same way.
        a.putFileFrom("small".toByteArray(), "tiny".toByteArray().inputStream().asFileSource())
        val small = java.io.ByteArrayOutputStream()
        check(a.getFileTo("small".toByteArray(), small.asFileSink()) && small.toString() == "tiny", "a small file")
        val none = java.io.ByteArrayOutputStream()
        check(!b.getFileTo("nope".toByteArray(), none.asFileSink()) && none.size() == 0, "an absent key is false and writes nothing")
        // A stream that fails half-way: Config with its reason, and the key keeps what it had.
        val failing = object : java.io.InputStream() {
            var left = 2 shl 20
            override fun read(): Int = throw java.io.IOException("disk gone")
            override fun read(b: ByteArray, off: Int, len: Int): Int {
                if (left <= 0) throw java.io.IOException("disk gone")
                val n = minOf(len, left); left -= n; return n
            }
        }
        try {
            a.putFileFrom("docs/streamed.bin".toByteArray(), failing.asFileSource())
            check(false, "a failing stream was stored")
        } catch (e: BucketsyncException.Config) {
            check(e.message?.contains("disk gone") == true, "the stream's reason is kept: ${e.message}")
        }
        check(a.fileInfo("docs/streamed.bin".toByteArray())?.size == size, "the key keeps the file it had")
        // A stream cut short of the size it was said to hold is not stored as the whole file.
        try {
            a.putFileFrom("docs/streamed.bin".toByteArray(), data.copyOf(1000).inputStream().asFileSource(), size)
            check(false, "a stream cut short was stored")
        } catch (e: BucketsyncException.Config) {
            check(e.message?.contains("ended after 1000 bytes") == true, "it says so: ${e.message}")
        }
        check(a.fileInfo("docs/streamed.bin".toByteArray())?.size == size, "and the key keeps its file")
        // A sink that fails stops the read with its reason.
        val broken = object : java.io.OutputStream() {
            override fun write(b: Int) = throw java.io.IOException("no space left")
            override fun write(b: ByteArray, off: Int, len: Int) = throw java.io.IOException("no space left")
        }
        try {
            b.getFileTo("docs/streamed.bin".toByteArray(), broken.asFileSink())
            check(false, "a failing sink took the file")
        } catch (e: BucketsyncException.Config) {
            check(e.message?.contains("no space left") == true, "the sink's reason is kept: ${e.message}")
        }
    },
    "auto sync: B hears A's put through events() with no sync() call; idle polls are one GET answered 304" to {
        coroutineScope {
            val key = VaultKey.generate()
            val a = Vault.open(store("kotlin", "auto/"), key, credentials = creds(), create = true)
            a.putText("first", "1")
            a.sync()
            val recorder = Recorder(HttpURLConnectionTransport())
            val b = Vault.open(store("kotlin", "auto/"), key, credentials = creds(), transport = recorder)
            val events = CopyOnWriteArrayList<Event>()
            // Unconfined and undispatched: the flow's listener is in place when launch returns.
            val collector = launch(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
                b.events().collect { events.add(it) }
            }
            // A listener that throws breaks nothing: the loop and the flow go on.
            val thrown = AtomicInteger()
            val throwing = object : EventListener {
                override fun onEvent(event: Event) {
                    thrown.incrementAndGet()
                    throw IllegalStateException("a listener that throws")
                }
            }
            try { b.startAutoSync(AutoSyncSettings(intervalSeconds = 0.0)); check(false, "a 0 s interval was taken") }
            catch (e: BucketsyncException.Config) { check(e.message!!.contains("intervalSeconds"), e.message!!) }
            check(!b.isAutoSyncing(), "nothing started")
            // ANCHOR: start_auto_sync
            b.startAutoSync(AutoSyncSettings(intervalSeconds = 1.0, fullSyncIntervalSeconds = 600.0), throwing)
            // ANCHOR_END: start_auto_sync
            check(b.isAutoSyncing(), "running")
            try { b.startAutoSync(); check(false, "two background syncs") } catch (e: BucketsyncException.Conflict) {}
            waitFor("B's first sync", 10.0) { b.getText("first") == "1" && events.any { it.kind == EventKind.STATE && it.state == SyncState.IDLE } }
            check(events.any { it.kind == EventKind.STATE && it.state == SyncState.SYNCING }, "the first sync showed itself: $events")

            // A's put reaches B as a "changed" event naming the key (a second flow, collecting
            // from before the put). It takes about an interval; the bounds are generous, so a
            // loaded machine does not fail them.
            // ANCHOR: auto_sync
            val next = async(Dispatchers.Unconfined, start = CoroutineStart.UNDISPATCHED) {
                b.events().first { it.kind == EventKind.CHANGED && it.keys.any { k -> String(k) == "note" } }
            }
            a.putText("note", "from a")
            a.sync()
            val pushed = System.nanoTime()
            val changed = withTimeout(30000) { next.await() }
            // ANCHOR_END: auto_sync
            println("    push on A to the event on B: ${millisSince(pushed)} ms")
            check(changed.keys.map { String(it) } == listOf("note"), "the event names the key: ${changed.keys.map { String(it) }}")
            waitFor("the event in the first flow too", 30.0) { events.any { it.kind == EventKind.CHANGED } }
            check(b.getText("note") == "from a", "B holds the value")
            check(thrown.get() >= 3, "the throwing listener was called: ${thrown.get()}")

            // Idle: one conditional GET of the hint per interval, answered 304 through
            // HttpURLConnection, and nothing else (a 200 there would make every poll list).
            delay(1500)
            recorder.take()
            delay(3500)
            val idle = recorder.take()
            val polls = idle.filter { it.kind == "hint" && it.method == "GET" }
            // At most one poll per interval (the point); at least one, however loaded the machine.
            check(polls.size in 1..5, "one poll per interval: $idle")
            check(polls.all { it.status == 304 && !it.ifNoneMatch.isNullOrEmpty() }, "conditional, answered 304: $polls")
            check(idle.size == polls.size, "an idle device only polls: $idle")

            // Offline: a state event, and no polls.
            b.notify(Happening.NETWORK_LOST)
            waitFor("the offline state", 3.0) { events.any { it.kind == EventKind.STATE && it.state == SyncState.OFFLINE } }
            recorder.take()
            delay(2200)
            check(recorder.take().isEmpty(), "nothing goes out while offline")
            b.notify(Happening.NETWORK_BACK)

            // Stopped: the thread ends, and nothing more goes out.
            b.stopAutoSync()
            check(!b.isAutoSyncing(), "stopped")
            recorder.take()
            a.putText("late", "after the stop")
            a.sync()
            delay(2500)
            check(recorder.take().isEmpty() && b.getText("late") == null, "no request after stopAutoSync")
            collector.cancel()
            // A stopped vault starts again; releasing it stops the sync (the state lock goes too).
            b.startAutoSync(AutoSyncSettings(intervalSeconds = 1.0))
            waitFor("the late key", 10.0) { b.getText("late") == "after the stop" }
            b.close()
        }
    },
    "one connection pool for manual syncs and the loop (built-in HTTP): sync, auto sync, a sync while it runs, close while it runs" to {
        val key = VaultKey.generate()
        val a = Vault.open(store("kotlin", "one-runtime/"), key, credentials = creds(), create = true)
        a.putText("seed", "1")
        a.sync()
        val b = Vault.open(store("kotlin", "one-runtime/"), key, credentials = creds())
        b.sync()
        check(AutoSyncSettings() == defaultAutoSyncSettings(), "the Kotlin defaults are the core's: ${AutoSyncSettings()}")
        b.startAutoSync(AutoSyncSettings(intervalSeconds = 1.0))
        a.putText("live/1", "v1")
        a.sync()
        // Generous bounds: the loop polls every second; a hang would wait for a read timeout.
        waitFor("the loop to merge live/1", 40.0) { b.getText("live/1") == "v1" }
        a.putText("live/2", "v2")
        a.sync()
        try { b.sync() } catch (e: BucketsyncException.Conflict) { /* the loop's own sync ran */ }
        waitFor("live/2 on b", 40.0) { b.getText("live/2") == "v2" }
        a.putText("live/3", "v3")
        a.sync()
        waitFor("the loop to merge live/3", 40.0) { b.getText("live/3") == "v3" }
        // Released while the loop runs: the loop stops with it (Drop), without hanging.
        b.close()
        a.close()
    },
    "the built-in HTTP client: a server that never answers fails sync, putFile, getFile and the loop as Timeout, nothing lost" to {
        check(VaultSettings() == defaultVaultSettings(), "the Kotlin defaults are the core's: ${VaultSettings()}")
        try { Vault.open(store("kotlin", "settings/"), VaultKey.generate(), settings = VaultSettings(maxFutureDays = -1.0)); check(false, "a negative bound was taken") }
        catch (e: BucketsyncException.Config) { check(e.message!!.contains("maxFutureDays"), e.message!!) }
        // A replica that holds a file, its state then opened on a store whose server never
        // answers (the state names no store: a vault folder can move).
        val key = VaultKey.generate()
        val state = java.io.File.createTempFile("bucketsync-deadline", ".state", scratch.toFile()).also { it.delete() }
        val source = java.nio.file.Files.createTempFile(scratch, "bucketsync-deadline", ".bin")
        java.nio.file.Files.write(source, ByteArray(300_000) { it.toByte() })
        Vault.open(store("kotlin", "deadline/"), key, statePath = state.path, credentials = creds(), create = true).use { a ->
            a.putFile("f".toByteArray(), source.toString())
            a.sync()
        }
        LocalServer { null }.use { server ->
            val quick = VaultSettings(stallTimeoutSeconds = 0.3, requestTimeoutSeconds = 10.0)
            val vault = Vault.open("s3://bucket/?endpoint=${server.url}&path_style=true", key, statePath = state.path, credentials = creds(), settings = quick)
            val out = java.nio.file.Files.createTempFile(scratch, "bucketsync-deadline", ".out")
            try { vault.getFile("f".toByteArray(), out.toString()); check(false, "a silent server gave a file") } catch (e: BucketsyncException.Timeout) {}
            vault.putText("k", "v")
            try { vault.sync(); check(false, "a silent server answered") } catch (e: BucketsyncException.Timeout) { check(e.message!!.contains("stall deadline"), e.message!!) }
            // Other bytes than f's (the same would need no upload: its chunks are stored).
            val other = java.nio.file.Files.createTempFile(scratch, "bucketsync-deadline", ".bin")
            java.nio.file.Files.write(other, ByteArray(300_000) { (it * 7 + 1).toByte() })
            try { vault.putFile("g".toByteArray(), other.toString()); check(false, "a silent server took a file") } catch (e: BucketsyncException.Timeout) {}
            val events = CopyOnWriteArrayList<Event>()
            vault.startAutoSync(AutoSyncSettings(intervalSeconds = 1.0), object : EventListener {
                override fun onEvent(event: Event) { events.add(event) }
            })
            waitFor("the loop's timeout state", 60.0) { events.any { it.kind == EventKind.STATE && it.state == SyncState.ERROR && it.category == "timeout" } }
            vault.stopAutoSync()
            check(vault.unpushed() == 1UL && vault.getText("k") == "v", "nothing lost")
            vault.close()
        }
    },
    "HttpURLConnectionTransport: a 304 to a conditional GET comes back as a 304, not a cached 200" to {
        LocalServer { request ->
            if (request.values("if-none-match").firstOrNull() == "\"v1\"") LocalServer.reply(304, headers = listOf("ETag" to "\"v1\""))
            else LocalServer.reply(200, "hint", listOf("ETag" to "\"v1\"", "Cache-Control" to "max-age=3600"))
        }.use { server ->
            val transport = HttpURLConnectionTransport()
            val first = transport.send(HttpRequest("GET", server.url + "/bucket/v/h", emptyList(), ByteArray(0)))
            check(first.status.toInt() == 200 && String(first.body) == "hint", "the first GET")
            val again = transport.send(HttpRequest("GET", server.url + "/bucket/v/h", listOf(Header("If-None-Match", "\"v1\"")), ByteArray(0)))
            check(again.status.toInt() == 304 && again.body.isEmpty(), "the 304 itself: ${again.status}")
            check(again.headers.any { it.name.equals("etag", true) && it.value == "\"v1\"" }, "with its ETag")
            check(server.requests.size == 2 && server.requests[1].values("if-none-match") == listOf("\"v1\""), "both reached the server")
        }
    },
    "export to a file and to text, import into a new vault: equal maps; a malformed line names it, imports nothing" to {
        val dir = java.nio.file.Files.createTempDirectory(scratch, "bucketsync-export")
        val a = Vault.open("file://$dir/a", VaultKey.generate(), create = true)
        a.putText("notes/a", "hello")
        a.putText("notes/b", "first")
        a.putText("notes/b", "second")
        a.put(byteArrayOf(0, -1, 7), byteArrayOf(1, 2, -3))
        a.putText("gone", "soon")
        a.delete("gone".toByteArray())
        val path = dir.resolve("records.jsonl").toString()
        val exported = a.exportRecords(path)
        check(exported.lines == 4UL && exported.deleted == 1UL && exported.history == 0UL, "exported: $exported")
        val text = a.exportRecordsText()
        check(text == java.io.File(path).readText() && text.lines().count { it.isNotEmpty() } == 4, "the text is the file's")
        check(a.exportRecords(dir.resolve("history.jsonl").toString(), history = true).history >= 2UL, "history lines")
        fun map(v: Vault) = v.keys(ByteArray(0)).associate { String(it, Charsets.ISO_8859_1) to v.get(it)!!.toList() }
        val fromFile = Vault.open("file://$dir/b", VaultKey.generate(), create = true)
        val imported = fromFile.importRecords(path)
        check(imported.lines == 4UL && imported.imported == 3UL && imported.unchanged == 1UL, "imported: $imported")
        check(map(fromFile) == map(a) && map(a).size == 3, "equal maps: ${map(fromFile).keys} vs ${map(a).keys}")
        check(fromFile.importRecords(path).imported == 0UL, "a second import changes nothing")
        val fromText = Vault.open("file://$dir/c", VaultKey.generate(), create = true)
        fromText.importRecordsText(text)
        check(map(fromText) == map(a), "the same from text")
        val malformed = "{\"key\":\"x\",\"value\":\"1\"}\n\n{\"key\":\"y\",\"value\":\n"
        try { fromText.importRecordsText(malformed); check(false, "a malformed line was taken") }
        catch (e: BucketsyncException.Config) { check(e.message!!.contains("line 3"), e.message!!) }
        check(fromText.get("x".toByteArray()) == null, "nothing imported")
        try { fromText.importRecords(dir.resolve("missing.jsonl").toString()); check(false, "a missing file") }
        catch (e: BucketsyncException.Config) {}
    },
    "sharing: Alice shares emma with Bob (write); Carol cannot use his invitation; Bob cannot re-share" to {
        fun home(name: String, transport: HostTransport? = null) =
            Vault.open(store("kotlin", "share-$name/"), VaultKey.generate(), credentials = creds(), transport = transport, create = true)
        val alice = home("alice")
        val bobTransport = Counting(HttpURLConnectionTransport())
        val bob = home("bob", bobTransport)
        val carol = home("carol")
        val emma = alice.createShared(store("kotlin", "share-emma/"), "emma", credentials = creds())
        emma.putText("note", "from alice")
        emma.sync()
        val invitation = emma.share(bob.identity().public, Role.WRITE)
        try { carol.accept(invitation, credentials = creds()); check(false, "Carol used Bob's invitation") }
        catch (e: BucketsyncException.Access) {}
        val bobs = bob.accept(invitation, credentials = creds())
        val info = bob.shared().single()
        check(info.label == "emma" && info.role == Role.WRITE && info.grantedBy == alice.identity().fingerprint, "$info")
        bobs.sync()
        check(bobs.getText("note") == "from alice" && bobTransport.calls.get() > 1, "Bob reads, through his home's transport")
        bobs.putText("note", "from bob")
        bobs.sync()
        emma.sync()
        check(emma.getText("note") == "from bob", "Alice sees Bob's write")
        try { bobs.share(carol.identity().public); check(false, "a writer re-shared") }
        catch (e: BucketsyncException.Access) {}
    },
    "sharing: a home's keys never reach a store an invitation names on another service" to {
        // Another service: a second server accepting only its own key, behind a tap that
        // keeps every byte sent to it (test.sh starts it).
        val other = System.getenv("BUCKETSYNC_TEST_OTHER_ENDPOINT") ?: error("BUCKETSYNC_TEST_OTHER_ENDPOINT is not set")
        val tap = java.io.File(System.getenv("BUCKETSYNC_TEST_TAP")!!)
        val theirs = Credentials(System.getenv("BUCKETSYNC_TEST_OTHER_ACCESS_KEY")!!, System.getenv("BUCKETSYNC_TEST_OTHER_SECRET_KEY")!!, null)
        fun seen(text: String) = tap.exists() && String(tap.readBytes(), Charsets.ISO_8859_1).contains(text)
        val trips = "s3://trips/kotlin/?endpoint=$other&path_style=true"
        val alice = Vault.open(store("kotlin", "keys-alice/"), VaultKey.generate(), credentials = creds(), create = true)
        val trip = alice.createShared(trips, "trip", credentials = theirs)
        trip.putText("hotel", "by the lake")
        trip.sync()
        val bob = Vault.open(store("kotlin", "keys-bob/"), VaultKey.generate(), credentials = creds(), create = true)
        val invitation = trip.share(bob.identity().public)
        check(seen(System.getenv("BUCKETSYNC_TEST_OTHER_ACCESS_KEY")!!) && !seen(accessKey), "only the vault's own key went there")
        try { bob.accept(invitation); check(false, "accepted without the vault's credentials") }
        catch (e: BucketsyncException.Auth) { check(e.message!!.contains("pass this vault's own credentials"), e.message!!) }
        check(!seen(accessKey), "the home's key id reached the other service")
        val bobs = bob.accept(invitation, credentials = theirs)
        bobs.sync()
        check(bobs.getText("hotel") == "by the lake", "read with the vault's own credentials")
        check(!seen(accessKey), "the home's key id reached the other service")
    },
    "sharing: members are Alice owner, Bob write, Carol read; Alice revokes Bob, whose next sync fails" to {
        fun home(name: String) =
            Vault.open(store("kotlin", "members-$name/"), VaultKey.generate(), credentials = creds(), create = true)
        val (alice, bob, carol) = listOf(home("alice"), home("bob"), home("carol"))
        val (aliceId, bobId, carolId) = listOf(alice.identity(), bob.identity(), carol.identity())
        val emma = alice.createShared(store("kotlin", "members-emma/"), "emma", credentials = creds())
        emma.putText("note", "from alice")
        emma.sync()
        val toBob = emma.share(bobId.public, Role.WRITE)
        val toCarol = emma.share(carolId.public)
        // What an invitation says, and one that names a signer (never one with credentials).
        val info = invitationInfo(toBob)
        check(info.grantedBy == aliceId.fingerprint && info.signer == null, "$info")
        val url = "https://signer.example/sign"
        check(invitationInfo(emma.share(carolId.public, signerUrl = url)).signer == url, "signer")
        try { emma.share(carolId.public, signerUrl = "https://c:secret@x.example/sign"); check(false, "credentials in a signer URL") }
        catch (e: BucketsyncException.Config) { check(!(e.message ?: "").contains("secret"), "${e.message}") }
        emma.sync()
        val bobs = bob.accept(toBob, credentials = creds(), grantedBy = aliceId.fingerprint)
        val carols = carol.accept(toCarol, credentials = creds(), grantedBy = aliceId.fingerprint)
        bobs.sync()
        carols.sync()
        for ((who, vault) in listOf("alice" to emma, "bob" to bobs, "carol" to carols)) {
            val members = vault.members().associateBy { it.fingerprint }
            check(members.size == 3, "$who sees $members")
            for ((id, role) in listOf(aliceId to Role.OWNER, bobId to Role.WRITE, carolId to Role.READ)) {
                val m = members[id.fingerprint] ?: error("$who does not see ${id.fingerprint}")
                check(m.publicIdentity == id.public && m.role == role && !m.revoked && m.grantedBy == aliceId.fingerprint &&
                    m.mayWrite == (role != Role.READ) && m.pins.isEmpty() && m.sinceMs > 0UL, "$who sees $m")
            }
        }
        try { bobs.revoke(carolId.fingerprint); check(false, "a writer revoked") }
        catch (e: BucketsyncException.Access) {}
        try { emma.revoke(aliceId.fingerprint); check(false, "the founder revoked herself") }
        catch (e: BucketsyncException.Config) {}
        bobs.putText("note", "from bob")
        bobs.sync()
        emma.sync()
        val was = emma.revoke(bobId.fingerprint.lowercase())
        check(was.role == Role.WRITE && !was.revoked && was.mayWrite, "revoke returns Bob as he was: $was")
        emma.sync()
        try { bobs.sync(); check(false, "Bob synced after his revocation") }
        catch (e: BucketsyncException.Access) { check(e.message!!.contains("revoked"), e.message!!) }
        val revoked = emma.members().single { it.fingerprint == bobId.fingerprint }
        check(revoked.role == null && revoked.revoked && !revoked.mayWrite && revoked.grantedBy == aliceId.fingerprint, "$revoked")
        check(revoked.pins.map { it.device } == listOf(bobs.device()) && revoked.pins.single().segments >= 1UL, "$revoked")
        carols.sync()
        check(carols.members().single { it.fingerprint == bobId.fingerprint } == revoked, "Carol sees Bob revoked")
        check(carols.getText("note") == "from bob", "Bob's write before his revocation still counts")
    },
    "interop: a record written from Kotlin, for Swift and Rust to read" to {
        val code = System.getenv("BUCKETSYNC_INTEROP_CODE") ?: error("BUCKETSYNC_INTEROP_CODE is not set")
        val vault = Vault.open(store("interop"), VaultKey.fromRecoveryCode(code), credentials = creds(), create = true)
        vault.putText("from/kotlin", "hello from Kotlin")
        check(vault.sync().pushed == 1UL, "pushed")
    },
)

fun main() = runBlocking {
    var passed = 0
    var failed = 0
    for ((name, body) in tests) {
        val start = System.nanoTime()
        try {
            body()
            passed++
            println("ok - $name (${(System.nanoTime() - start) / 1_000_000} ms)")
        } catch (e: Throwable) {
            failed++
            println("FAILED - $name: $e")
        }
    }
    scratch.toFile().deleteRecursively()
    println("kotlin: $passed passed, $failed failed")
    if (failed > 0) kotlin.system.exitProcess(1)
}
