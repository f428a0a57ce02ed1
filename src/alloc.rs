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
