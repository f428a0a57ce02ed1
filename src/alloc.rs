//! The process's allocator: jemalloc, for libtorch's tensors as much as for Rust's own
//! allocations (its unprefixed `malloc` serves the C++ code too), set to keep freed pages
//! for reuse instead of handing them back to the kernel. A training step frees and
//! allocates the same few dozen large activations and gradients every batch; with glibc's
//! malloc (even told never to `mmap` nor trim) the seed recipe at 96 px took 5-10% longer
//! on one thread (60.8 s against 55.1 s) and 2% on two, and held 1.9 GB at its peak against
//! 1.6 GB. jemalloc's default decay hands pages back after each step (7 million page faults
//! in that run, against 0.4 million), hence the setting. The cost: a process keeps its peak.

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's compile-time options (its `malloc_conf` symbol, read before `main`; the
/// `MALLOC_CONF` environment variable still overrides them): freed pages never decay.
#[no_mangle]
#[used]
static malloc_conf: Conf = Conf(c"dirty_decay_ms:-1,muzzy_decay_ms:-1".as_ptr());

/// A C string pointer, as jemalloc declares `malloc_conf` (`const char *`).
#[repr(transparent)]
struct Conf(*const std::ffi::c_char);
// SAFETY: it points at a string literal, immutable for the life of the process.
unsafe impl Sync for Conf {}

#[cfg(test)]
mod tests {
    use std::ffi::{c_void, CStr};

    /// jemalloc's `mallctl`: reads `name` into an `Out`, writing `new` first when given.
    fn mallctl<Out: Default, New>(name: &CStr, new: Option<&New>) -> Result<Out, i32> {
        let mut out = Out::default();
        let mut len = std::mem::size_of::<Out>();
        let (newp, newlen) = new.map_or((std::ptr::null_mut(), 0), |n| (n as *const New as *mut c_void, std::mem::size_of::<New>()));
        // SAFETY: out and len describe an Out; newp, when given, points at a New.
        let rc = unsafe { tikv_jemalloc_sys::mallctl(name.as_ptr(), &mut out as *mut Out as *mut c_void, &mut len, newp, newlen) };
        if rc == 0 {
            Ok(out)
        } else {
            Err(rc)
        }
    }

    /// The arena that owns `ptr`, if jemalloc allocated it.
    fn arena_of(ptr: *mut c_void) -> Result<u32, i32> {
        mallctl(c"arenas.lookup", Some(&ptr))
    }

    #[test]
    fn libtorch_allocates_from_jemalloc_which_keeps_freed_pages() {
        assert_eq!(mallctl::<isize, ()>(c"opt.dirty_decay_ms", None), Ok(-1), "malloc_conf was read");
        assert_eq!(mallctl::<isize, ()>(c"opt.muzzy_decay_ms", None), Ok(-1));
        // A tensor's storage, allocated by libtorch's C++ code, belongs to a jemalloc arena.
        let t = tch::Tensor::zeros([1 << 20], (tch::Kind::Float, tch::Device::Cpu));
        assert!(arena_of(t.data_ptr()).is_ok(), "libtorch's tensor is jemalloc's");
        let on_stack = 0u64;
        assert!(arena_of(&on_stack as *const u64 as *mut c_void).is_err(), "a stack address is no arena's");
    }
}
