//! Software prefetch of objects the writer is about to read.
//!
//! A list of records is walked in order, but the records themselves are
//! wherever the allocator put them: perf put the first touch of each record
//! (taking a reference to it) at a quarter of the list walk's cycles, a
//! cache miss each. Asking for an object a few items ahead overlaps those
//! misses with the work on the items before it. A prefetch never faults, so
//! any address may be passed; outside x86-64 it is a no-op.

/// Start loading the cache line at `ptr` (an object's header).
#[inline(always)]
pub fn read<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing architecturally and
    // cannot fault, whatever the address. SSE is part of x86-64.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(ptr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}
