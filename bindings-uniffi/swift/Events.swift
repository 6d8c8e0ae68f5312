// Hand-written beside the generated bindings: bindings-uniffi/generate.sh copies it into the
// Swift package next to bucketsync_uniffi.swift. The background sync's events as an
// AsyncStream.

extension Vault {
    /// The background sync's events (`startAutoSync` starts it) as an `AsyncStream`: the stream
    /// adds a listener to the vault when it is made and removes it when it ends (the task
    /// iterating it is cancelled, or the loop leaves it), and yields every event from then on.
    ///
    /// ```swift
    /// try vault.startAutoSync(settings: AutoSyncSettings(intervalSeconds: 30))
    /// for await event in vault.events() {
    ///     switch event.kind {
    ///     case .changed: refresh(event.keys)
    ///     case .state: showStatus(event.state, event.category)
    ///     default: break
    ///     }
    /// }
    /// ```
    ///
    /// Events come from the background sync's thread; `bufferingPolicy` says what is kept
    /// while the iterating task is busy (all of them by default).
    public func events(
        bufferingPolicy: AsyncStream<Event>.Continuation.BufferingPolicy = .unbounded
    ) -> AsyncStream<Event> {
        AsyncStream(bufferingPolicy: bufferingPolicy) { continuation in
            let id = addEventListener(listener: StreamListener(continuation))
            continuation.onTermination = { [weak self] _ in
                self?.removeEventListener(id: id)
            }
        }
    }
}

/// Passes each event on to an `AsyncStream`.
private final class StreamListener: EventListener, @unchecked Sendable {
    private let continuation: AsyncStream<Event>.Continuation

    init(_ continuation: AsyncStream<Event>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: Event) throws {
        continuation.yield(event)
    }
}
