//! Girder's global allocator: the system allocator, counting the bytes it holds.
//!
//! `maxmemory` is a promise about the process's memory, so the number it is held to must
//! be what the allocator really holds, not an estimate of what the data structures
//! should need. [`Counting`] wraps [`System`] (glibc's malloc on Linux) and charges each
//! block at its real footprint: `malloc_usable_size` plus malloc's chunk header. A
//! 100-byte value costs 120 bytes here, as it does in the heap; counting the 100 bytes
//! asked for would under-count small blocks by 10–30% and let RSS run past the limit.
//! This is what Redis's `zmalloc` does with jemalloc's `je_malloc_usable_size`.
//!
//! The count is kept per thread and added to the shared total in steps of at most
//! [`DRIFT`] bytes, so an allocation costs a thread-local add, not a contended atomic:
//! [`allocated`] is exact to within `DRIFT` per thread (the calling thread's own share is
//! always included).
//!
//! Install it in a binary with
//! `#[global_allocator] static ALLOC: girder_alloc::Counting = girder_alloc::Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// The counting global allocator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

/// Bytes held, as far as every thread has reported them.
static HELD: AtomicIsize = AtomicIsize::new(0);
/// Whether [`Counting`] has allocated anything (is the global allocator).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Largest count a thread keeps to itself before adding it to the shared total.
pub const DRIFT: usize = 64 * 1024;

thread_local! {
    // `const` and without a destructor: usable from inside the allocator, even while the
    // thread is being torn down.
    static LOCAL: Cell<isize> = const { Cell::new(0) };
}

/// Bytes held by the allocator, to within [`DRIFT`] per other thread; `None` when
/// [`Counting`] is not the global allocator.
pub fn allocated() -> Option<usize> {
    if !INSTALLED.load(Ordering::Relaxed) {
        return None;
    }
    let own = LOCAL.try_with(Cell::get).unwrap_or(0);
    Some(usize::try_from(HELD.load(Ordering::Relaxed) + own).unwrap_or(0))
}

#[inline]
fn charge(bytes: isize) {
    let spill = LOCAL
        .try_with(|local| {
            let v = local.get() + bytes;
            if v.unsigned_abs() >= DRIFT {
                local.set(0);
                v
            } else {
                local.set(v);
                0
            }
        })
        .unwrap_or(bytes);
    if spill != 0 {
        HELD.fetch_add(spill, Ordering::Relaxed);
    }
}

/// malloc's bookkeeping word in front of every chunk.
const HEADER: usize = std::mem::size_of::<usize>();

/// What the block at `ptr` (allocated for `layout`) takes from the heap.
///
/// # Safety
/// `ptr` must be a live block from [`System`].
#[inline]
#[allow(unsafe_code)]
unsafe fn footprint(ptr: *mut u8, layout: Layout) -> isize {
    #[cfg(target_os = "linux")]
    let usable = {
        let _ = layout;
        // SAFETY: `ptr` is a live block of the system allocator (the caller's promise).
        unsafe { libc::malloc_usable_size(ptr.cast()) }
    };
    #[cfg(not(target_os = "linux"))]
    let usable = {
        let _ = ptr;
        layout.size()
    };
    (usable + HEADER) as isize
}

#[inline]
fn installed() {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// accounting around it reads only blocks `System` just returned or is about to free.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded under the caller's contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            installed();
            // SAFETY: `ptr` was just returned by `System`.
            charge(unsafe { footprint(ptr, layout) });
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded under the caller's contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            installed();
            // SAFETY: `ptr` was just returned by `System`.
            charge(unsafe { footprint(ptr, layout) });
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller promises `ptr` is a live block of this allocator, which is
        // `System`'s.
        charge(-unsafe { footprint(ptr, layout) });
        // SAFETY: forwarded under the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is live until `System.realloc` succeeds (the caller's promise).
        let before = unsafe { footprint(ptr, layout) };
        // SAFETY: forwarded under the caller's contract.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            // SAFETY: the caller promises `new_size` with `layout`'s alignment is valid.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: `moved` was just returned by `System`.
            charge(unsafe { footprint(moved, new_layout) } - before);
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOC: Counting = Counting;

    fn held() -> i64 {
        allocated().expect("installed in this test binary") as i64
    }

    // One test: tests on other threads would move the shared total under its feet.
    #[test]
    fn counts_the_footprint_of_what_is_held() {
        counts_what_is_held_and_gives_it_back();
        small_blocks_are_charged_their_footprint();
        realloc_moves_the_count();
    }

    fn counts_what_is_held_and_gives_it_back() {
        let before = held();
        let blocks: Vec<Vec<u8>> = (0..1000).map(|_| vec![1u8; 1000]).collect();
        let during = held();
        // Each block is charged at least what was asked, plus the header.
        assert!(during - before >= 1000 * 1008, "{before} → {during}");
        // ... and not much more: glibc rounds to 16 bytes.
        assert!(
            during - before <= 1000 * 1040 + 64 * 1024,
            "{before} → {during}"
        );
        drop(blocks);
        let after = held();
        assert!((after - before).abs() <= 64 * 1024, "{before} → {after}");
    }

    fn small_blocks_are_charged_their_footprint() {
        let before = held();
        let blocks: Vec<Box<[u8; 100]>> = (0..10_000).map(|_| Box::new([0u8; 100])).collect();
        let per_block = (held() - before) as f64 / 10_000.0;
        // 100 bytes asked: 104 usable in a 112-byte chunk on glibc, + the header word.
        assert!((108.0..=130.0).contains(&per_block), "{per_block}");
        drop(blocks);
    }

    fn realloc_moves_the_count() {
        let before = held();
        let mut v: Vec<u8> = Vec::with_capacity(16);
        for i in 0..1_000_000u32 {
            v.push(i as u8);
        }
        let grown = held() - before;
        assert!(grown >= 1_000_000, "{grown}");
        v.truncate(10);
        v.shrink_to_fit();
        let shrunk = held() - before;
        assert!(shrunk < 64 * 1024 + 1024, "{shrunk}");
    }
}
