// Hand-written beside the generated bindings (bindings-uniffi/generate.sh copies it into the
// Swift package). `print`, interpolation and `debugPrint` of a request or header use the
// redacted `description`/`debugDescription` from Rust; `dump()` and other Mirror-based
// printers would also walk the stored properties, showing the signed headers and URL. These
// mirrors have no children, so `dump()` prints only the redacted `debugDescription`.

extension HttpRequest: CustomReflectable {
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

extension Header: CustomReflectable {
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
