// Kotlin on the JVM against SeaweedFS (endpoint and credentials from the environment, set by
// scripts/test.sh). Prints "N passed, N failed" and exits non-zero on any failure.
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest.BodyPublishers
import java.net.http.HttpResponse.BodyHandlers
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import uniffi.bucketsync_uniffi.*

val endpoint: String = System.getenv("BUCKETSYNC_TEST_ENDPOINT") ?: error("BUCKETSYNC_TEST_ENDPOINT is not set")
val accessKey: String = System.getenv("BUCKETSYNC_TEST_ACCESS_KEY")!!
val secretKey: String = System.getenv("BUCKETSYNC_TEST_SECRET_KEY")!!

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
        val a = Vault.open(store("kotlin", "converge/"), key, device = "kotlin a", credentials = creds(), create = true)
        val b = Vault.open(store("kotlin", "converge/"), key, credentials = creds())
        a.putText("notes/a", "from a")
        b.putText("notes/b", "from b")
        b.delete("notes/b".toByteArray())
        for (v in listOf(a, b, a)) check(v.sync().errors.isEmpty(), "no sync errors")
        check(b.getText("notes/a") == "from a", "b sees a's note")
        check(a.getText("notes/b") == null, "the delete reached a")
        val c = Vault.open(store("kotlin", "converge/"), key, credentials = creds())
        val report = c.sync()
        check(report.pulled == 2UL && c.keys(ByteArray(0)).size == 1, "c bootstraps: $report")
        check(c.sync().requests == 1UL, "nothing new is one LIST")
        check(report.changed.size == 2, "a's note and b's deletion changed: ${report.changed.size}")
        check(c.devices(30u).any { it.label == "kotlin a" && !it.stale && !it.thisDevice }, "a is listed by its name")
        // A wrong key joins nothing: not found, and the write stays.
        val lost = Vault.open(store("kotlin", "converge/"), VaultKey.generate(), credentials = creds())
        lost.putText("k", "v")
        try { lost.sync(); check(false, "joined a vault that does not exist") }
        catch (e: BucketsyncException.NotFound) { check(e.message!!.contains("1 other vault"), e.message!!) }
        check(lost.unpushed() == 1UL, "nothing lost")
        try { Vault.open(store("kotlin", "converge/"), key, credentials = creds(), create = true).sync(); check(false, "created twice") }
        catch (e: BucketsyncException.Conflict) {}
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
        // a retires b; b starts over under a new id when it syncs again, its write survives.
        val bId = b.devices(30u).first { it.thisDevice }.id
        try { a.retire(a.devices(30u).first { it.thisDevice }.id); check(false, "retired itself") }
        catch (e: BucketsyncException.Config) {}
        a.retire(bId)
        a.sync()
        b.putText("after", "retired")
        val back = b.sync()
        check(back.startedOver == bId && back.restamped.size == 1, "b started over: $back")
        a.sync()
        check(a.getText("after") == "retired" && a.devices(30u).any { it.id == bId && it.retired }, "a sees it")
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
            val state = java.io.File.createTempFile("bucketsync-cancel", ".state").also { it.delete() }
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
    println("kotlin: $passed passed, $failed failed")
    if (failed > 0) kotlin.system.exitProcess(1)
}
