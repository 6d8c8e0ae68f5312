// Hand-written beside the generated bindings: bindings-uniffi/generate.sh copies it next to
// bucketsync_uniffi.kt, in the same package. The background sync's events as a Flow.
package uniffi.bucketsync_uniffi

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

/**
 * The background sync's events ([Vault.startAutoSync] starts it) as a cold [Flow]: each
 * collector adds a listener to the vault when it starts collecting and removes it when its
 * coroutine is cancelled or leaves the flow, and hears every event from then on.
 *
 * ```kotlin
 * vault.startAutoSync(AutoSyncSettings(intervalSeconds = 30.0))
 * lifecycleScope.launch {
 *     vault.events().collect { event ->
 *         when (event.kind) {
 *             EventKind.CHANGED -> refresh(event.keys)
 *             EventKind.STATE -> showStatus(event.state, event.category)
 *             else -> {}
 *         }
 *     }
 * }
 * ```
 *
 * Events come from the background sync's thread and are buffered without a bound, so none is
 * lost while the collector is busy (`.conflate()` or `.filter {}` downstream if only the latest
 * state matters).
 */
fun Vault.events(): Flow<Event> = callbackFlow {
    val id = addEventListener(object : EventListener {
        override fun onEvent(event: Event) {
            trySend(event)
        }
    })
    awaitClose {
        try {
            removeEventListener(id)
        } catch (e: IllegalStateException) {
            // The vault was closed first: its listeners went with it.
        }
    }
}.buffer(Channel.UNLIMITED)
