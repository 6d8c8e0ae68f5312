//! Big byte buffers that give their memory back to the system when dropped.
//!
//! glibc's `malloc` serves a request of at least its mmap threshold with a mapping of its own,
//! unmapped on `free`; below it, from a heap that keeps freed memory resident. The threshold
//! starts at 128 KiB and rises to the size of each mapped block freed, up to 32 MiB on 64-bit
//! hosts: once the first 16 MiB pack or range was freed, the next ones came from a heap, and a
//! restore or an upload kept tens of megabytes it no longer used. A buffer reserved above
//! 32 MiB is always a mapping; only the pages written are resident, so the reservation costs
//! address space, not memory. That holds for glibc on 64-bit Linux only, so only there are
//! buffers reserved so: 32-bit glibc maps anything over 512 KiB already, other allocators map
//! big blocks anyway, Windows would commit the whole reservation, and wasm memory only grows.

/// Buffers that may hold this many bytes or more are reserved as [`MAPPED`].
pub(crate) const BIG: usize = 1 << 20;

/// What a big buffer is reserved as, at least: above glibc's highest mmap threshold.
const MAPPED: usize = 33 << 20;

/// Whether big buffers are reserved as [`MAPPED`] here: glibc on 64-bit Linux.
const GLIBC_64: bool = cfg!(all(
    target_os = "linux",
    target_env = "gnu",
    target_pointer_width = "64"
));

/// An empty buffer for `len` bytes: on 64-bit glibc, reserved above the mmap threshold when
/// `len` is at least [`BIG`].
pub(crate) fn reserve(len: usize) -> Vec<u8> {
    match len >= BIG && GLIBC_64 {
        true => Vec::with_capacity(len.max(MAPPED)),
        false => Vec::with_capacity(len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_buffers_are_reserved_above_the_threshold_and_small_ones_as_asked() {
        assert_eq!(reserve(1000).capacity(), 1000);
        assert_eq!(reserve(BIG).capacity() >= MAPPED, GLIBC_64);
        assert!(reserve(40 << 20).capacity() >= 40 << 20);
        assert!(reserve(BIG).is_empty());
    }
}
