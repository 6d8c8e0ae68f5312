// Hand-written beside the generated bindings: bindings-uniffi/generate.sh copies it next to
// bucketsync_uniffi.kt, in the same package. java.io streams as the FileSource and FileSink that
// Vault.putFileFrom and Vault.getFileTo take, for content with no path of its own (an Android
// ContentResolver stream, bytes in memory).
package uniffi.bucketsync_uniffi

import java.io.IOException
import java.io.InputStream
import java.io.OutputStream
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * Reads `stream` for [Vault.putFileFrom], on `Dispatchers.IO`, up to its end:
 *
 * ```kotlin
 * contentResolver.openInputStream(uri)?.use { vault.putFileFrom("photos/cat.jpg".toByteArray(), it.asFileSource()) }
 * ```
 *
 * The stream is not closed. An `IOException` stops the put (a `BucketsyncException.Config`
 * carrying its message) and the key keeps what it had.
 */
class InputStreamFileSource(private val stream: InputStream) : FileSource {
    override suspend fun read(max: UInt): ByteArray = withContext(Dispatchers.IO) {
        val buffer = ByteArray(max.toInt().coerceIn(1, 1 shl 20))
        val n = try {
            stream.read(buffer)
        } catch (e: IOException) {
            throw StreamException.Io("reading the stream failed: ${e.message ?: e.javaClass.name}")
        }
        if (n <= 0) ByteArray(0) else buffer.copyOf(n)
    }
}

/**
 * Writes what [Vault.getFileTo] reads to `stream`, on `Dispatchers.IO`, in order. The stream is
 * neither flushed nor closed. Each piece is checked against its chunk id before it is written,
 * the whole-file hash at the end: on a `BucketsyncException.Corrupt`, discard what was written.
 */
class OutputStreamFileSink(private val stream: OutputStream) : FileSink {
    override suspend fun write(data: ByteArray) = withContext(Dispatchers.IO) {
        try {
            stream.write(data)
        } catch (e: IOException) {
            throw StreamException.Io("writing the stream failed: ${e.message ?: e.javaClass.name}")
        }
    }
}

/** This stream as the [FileSource] of [Vault.putFileFrom]. */
fun InputStream.asFileSource(): FileSource = InputStreamFileSource(this)

/** This stream as the [FileSink] of [Vault.getFileTo]. */
fun OutputStream.asFileSink(): FileSink = OutputStreamFileSink(this)
