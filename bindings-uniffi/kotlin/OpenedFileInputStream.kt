// Hand-written beside the generated bindings: bindings-uniffi/generate.sh copies it next to
// bucketsync_uniffi.kt, in the same package. A java.io.InputStream over a file opened with
// Vault.openFile, for the many APIs that take one (decoders, parsers, copy helpers).
package uniffi.bucketsync_uniffi

import java.io.IOException
import java.io.InputStream
import kotlinx.coroutines.runBlocking

/**
 * The bytes of `file` from `start` on, as a blocking `InputStream`:
 *
 * ```kotlin
 * vault.openFile("photos/cat.jpg".toByteArray())?.inputStream()?.use { BitmapFactory.decodeStream(it) }
 * ```
 *
 * Each `read` waits for [OpenedFile.readAt] (it blocks the calling thread: read on
 * `Dispatchers.IO` or a worker thread, never on the main one). A failed read throws an
 * `IOException` whose cause is the `BucketsyncException`. `skip` and `mark`/`reset` move
 * without fetching anything.
 */
class OpenedFileInputStream(private val file: OpenedFile, start: Long = 0) : InputStream() {
    private val size = file.size().toLong()
    private var position = start.coerceIn(0, size)
    private var marked = position
    private var closed = false

    override fun read(): Int {
        val one = ByteArray(1)
        return if (read(one, 0, 1) <= 0) -1 else one[0].toInt() and 0xff
    }

    override fun read(b: ByteArray, off: Int, len: Int): Int {
        if (off < 0 || len < 0 || len > b.size - off) throw IndexOutOfBoundsException("off $off, len $len, size ${b.size}")
        if (closed) throw IOException("the stream is closed")
        if (len == 0) return 0
        if (position >= size) return -1
        val bytes = try {
            runBlocking { file.readAt(position.toULong(), len.toUInt()) }
        } catch (e: BucketsyncException) {
            throw IOException("reading the opened file failed: ${e.message}", e)
        }
        if (bytes.isEmpty()) return -1
        System.arraycopy(bytes, 0, b, off, bytes.size)
        position += bytes.size
        return bytes.size
    }

    override fun skip(n: Long): Long {
        val by = n.coerceIn(0, size - position)
        position += by
        return by
    }

    /** What is left; reading it still fetches (the JDK's contract allows 0 here too). */
    override fun available(): Int = (size - position).coerceAtMost(Int.MAX_VALUE.toLong()).toInt()

    override fun markSupported(): Boolean = true

    override fun mark(readlimit: Int) {
        marked = position
    }

    override fun reset() {
        position = marked
    }

    override fun close() {
        closed = true
    }
}

/** The file's bytes from `start` on, as an `InputStream` (see [OpenedFileInputStream]). */
fun OpenedFile.inputStream(start: Long = 0): InputStream = OpenedFileInputStream(this, start)
