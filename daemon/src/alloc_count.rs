//! With the `alloc-count` feature, a global allocator that counts allocations, so the
//! daemon can prove its media path allocates nothing per packet (the relay benchmark
//! builds it and reads the count from the exit log line). Without the feature the count
//! is always 0 and nothing is wrapped.

#[cfg(feature = "alloc-count")]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub(super) static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

    /// The system allocator, counting `alloc`, `alloc_zeroed` and `realloc` calls.
    pub(super) struct Counting;

    // SAFETY: every call is passed unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the caller's contract is `System`'s.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: as above.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;
}

/// Whether allocations are counted (the `alloc-count` feature).
pub const ENABLED: bool = cfg!(feature = "alloc-count");

/// Allocations so far, process-wide (0 without the feature).
#[inline]
pub fn allocations() -> u64 {
    #[cfg(feature = "alloc-count")]
    {
        counting::ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(feature = "alloc-count"))]
    {
        0
    }
}
