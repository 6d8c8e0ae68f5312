//! The workspace's own uniffi-bindgen (there is no installable one), of the uniffi version the
//! library uses:
//! `cargo run -p bucketsync-uniffi-bindgen -- generate --library target/release/libbucketsync_uniffi.so --language kotlin|swift --out-dir DIR`
fn main() {
    uniffi::uniffi_bindgen_main()
}
