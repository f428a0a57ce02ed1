//! `ProcessGroup`: a safe handle on `csrc/c10d.cpp`'s group (a TCPStore and a Gloo or NCCL
//! backend). Collectives that fail because a peer died or hung are explained from the
//! store: a rank that failed on its own says so there before it exits, so the others can
//! name it; a rank that left no word is named as gone.
use anyhow::{anyhow, Result};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::time::Duration;
use tch::Tensor;

extern "C" {
    fn runner_c10d_free(p: *mut c_void);
    fn runner_c10d_new(
        host: *const c_char,
        port: c_int,
        rank: c_int,
        world: c_int,
        is_server: c_int,
        timeout_ms: i64,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn runner_c10d_backend(g: *mut c_void, backend: c_int, timeout_ms: i64, gloo_host: *const c_char) -> *mut c_char;
    fn runner_c10d_destroy(g: *mut c_void);
    fn runner_c10d_store_set(g: *mut c_void, key: *const c_char, value: *const u8, len: usize) -> *mut c_char;
    fn runner_c10d_store_get(g: *mut c_void, key: *const c_char, timeout_ms: i64, value: *mut *mut u8, len: *mut usize) -> *mut c_char;
    fn runner_c10d_store_check(g: *mut c_void, key: *const c_char, present: *mut c_int) -> *mut c_char;
    fn runner_c10d_allreduce(g: *mut c_void, ts: *const *mut c_void, n: usize, op: c_int, cap: usize) -> *mut c_char;
    fn runner_c10d_broadcast(g: *mut c_void, ts: *const *mut c_void, n: usize, root: c_int, cap: usize) -> *mut c_char;
    fn runner_c10d_allgather(g: *mut c_void, x: *mut c_void, out: *mut *mut c_void) -> *mut c_char;
    fn runner_c10d_barrier(g: *mut c_void) -> *mut c_char;
    fn runner_c10d_sync_batch_norm(
        g: *mut c_void,
        x: *mut c_void,
        w: *mut c_void,
        b: *mut c_void,
        rm: *mut c_void,
        rv: *mut c_void,
        momentum: f64,
        eps: f64,
        out: *mut *mut c_void,
    ) -> *mut c_char;
}

/// Bytes per flat buffer of a bucketed allreduce or broadcast (DDP's default bucket cap).
pub const BUCKET_BYTES: usize = 25 << 20;

/// Which library moves the tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CPU tensors (and CUDA ones through the host).
    Gloo,
    /// CUDA tensors, GPU to GPU.
    Nccl,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl => "nccl",
        }
    }

    /// Whether this runner was built with NCCL (libtorch_cuda and CUDA headers present).
    pub fn nccl_built() -> bool {
        env!("RUNNER_C10D_NCCL") == "1"
    }
}

/// How the group sums: a plain sum, or the sum over the world size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Avg,
}

/// The shim's error: a malloc'd message, or none.
fn check(err: *mut c_char) -> Result<(), String> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null return is a NUL-terminated string malloc'd by the shim, freed here once.
    let msg = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
    unsafe { runner_c10d_free(err.cast()) };
    Err(msg.trim().to_string())
}

fn handles(ts: &[&Tensor]) -> Vec<*mut c_void> {
    ts.iter().map(|t| t.as_ptr() as *mut c_void).collect()
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| anyhow!("{s:?} holds a NUL byte"))
}

/// The keys ranks leave in the store when their run fails: the first error of their own
/// (`failed`), or a collective that broke under them (`broken`).
fn failed_key(rank: usize) -> String {
    format!("runner/failed/{rank}")
}
fn broken_key(rank: usize) -> String {
    format!("runner/broken/{rank}")
}

/// One process's membership of a data-parallel group.
pub struct ProcessGroup {
    raw: *mut c_void,
    rank: usize,
    world: usize,
    backend: Backend,
    timeout: Duration,
    /// `host:port` of the store, for messages.
    store_addr: String,
}

// SAFETY: the shim's group is a c10d TCPStore (its operations hold a lock) and a backend
// whose collectives queue work from any thread; the handle is freed once, in Drop.
unsafe impl Send for ProcessGroup {}
unsafe impl Sync for ProcessGroup {}

impl ProcessGroup {
    /// Connects to the group's store at `host:port` (serving it when `serve`), waiting up
    /// to `timeout` for it; the backend comes later (`start_backend`), once the ranks have
    /// agreed on what they run.
    pub fn connect(host: &str, port: u16, rank: usize, world: usize, serve: bool, timeout: Duration) -> Result<ProcessGroup> {
        let mut raw = std::ptr::null_mut();
        let h = cstr(host)?;
        // SAFETY: `h` lives for the call; `raw` receives the new group on success.
        let err = unsafe { runner_c10d_new(h.as_ptr(), port as c_int, rank as c_int, world as c_int, serve as c_int, ms(timeout), &mut raw) };
        let store_addr = format!("{host}:{port}");
        check(err).map_err(|e| {
            if serve {
                anyhow!("rank {rank} cannot serve the group's store on port {port} (MASTER_PORT): {e}")
            } else {
                anyhow!("rank {rank} cannot reach the group's store at {store_addr} (MASTER_ADDR:MASTER_PORT) within {}s: {e}", timeout.as_secs())
            }
        })?;
        Ok(ProcessGroup { raw, rank, world, backend: Backend::Gloo, timeout, store_addr })
    }

    /// Makes the backend; every rank must call it (Gloo and NCCL meet through the store).
    /// `bind` is the address Gloo listens on (None: this machine's hostname).
    pub fn start_backend(&mut self, backend: Backend, bind: Option<&str>) -> Result<()> {
        let b = cstr(bind.unwrap_or(""))?;
        let kind = if backend == Backend::Nccl { 1 } else { 0 };
        // SAFETY: `self.raw` is a live group, `b` lives for the call.
        check(unsafe { runner_c10d_backend(self.raw, kind, ms(self.timeout), b.as_ptr()) })
            .map_err(|e| self.explain(&format!("starting the {} backend", backend.name()), e))?;
        self.backend = backend;
        Ok(())
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world(&self) -> usize {
        self.world
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    pub fn store_set(&self, key: &str, value: &[u8]) -> Result<()> {
        let k = cstr(key)?;
        // SAFETY: live group; `k` and `value` live for the call.
        check(unsafe { runner_c10d_store_set(self.raw, k.as_ptr(), value.as_ptr(), value.len()) })
            .map_err(|e| anyhow!("cannot write {key} to the group's store at {}: {e}", self.store_addr))
    }

    /// The value of `key`, waiting up to `timeout` for some rank to set it; Err(message)
    /// when it did not come (or the store is gone).
    pub fn store_get(&self, key: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        let k = CString::new(key).map_err(|_| format!("{key:?} holds a NUL byte"))?;
        let (mut p, mut len) = (std::ptr::null_mut(), 0usize);
        // SAFETY: live group; on success `p` holds `len` malloc'd bytes, copied then freed.
        check(unsafe { runner_c10d_store_get(self.raw, k.as_ptr(), ms(timeout), &mut p, &mut len) })?;
        let v = unsafe { std::slice::from_raw_parts(p, len) }.to_vec();
        unsafe { runner_c10d_free(p.cast()) };
        Ok(v)
    }

    /// Whether `key` is set, without waiting.
    pub fn store_has(&self, key: &str) -> Result<bool, String> {
        let k = CString::new(key).map_err(|_| format!("{key:?} holds a NUL byte"))?;
        let mut present = 0;
        // SAFETY: live group, `k` lives for the call.
        check(unsafe { runner_c10d_store_check(self.raw, k.as_ptr(), &mut present) })?;
        Ok(present != 0)
    }

    /// Sums or averages `ts` over the group, in place, in flat buckets of `BUCKET_BYTES`.
    pub fn allreduce(&self, ts: &[&Tensor], op: Reduce) -> Result<()> {
        let h = handles(ts);
        let op = if op == Reduce::Avg { 1 } else { 0 };
        // SAFETY: live group; `h` holds live tensor handles for the call.
        check(unsafe { runner_c10d_allreduce(self.raw, h.as_ptr(), h.len(), op, BUCKET_BYTES) }).map_err(|e| self.explain("allreduce", e))
    }

    /// Makes every rank's `ts` equal to rank `root`'s, in place.
    pub fn broadcast(&self, ts: &[&Tensor], root: usize) -> Result<()> {
        let h = handles(ts);
        // SAFETY: as in `allreduce`.
        check(unsafe { runner_c10d_broadcast(self.raw, h.as_ptr(), h.len(), root as c_int, BUCKET_BYTES) }).map_err(|e| self.explain("broadcast", e))
    }

    /// `[world, ...]`: every rank's `x` (of one shape everywhere), in rank order.
    pub fn allgather(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = std::ptr::null_mut();
        // SAFETY: live group and tensor; on success `out` is a new `at::Tensor*` we own.
        check(unsafe { runner_c10d_allgather(self.raw, x.as_ptr() as *mut c_void, &mut out) }).map_err(|e| self.explain("allgather", e))?;
        Ok(unsafe { Tensor::from_ptr(out.cast()) })
    }

    pub fn barrier(&self) -> Result<()> {
        // SAFETY: live group.
        check(unsafe { runner_c10d_barrier(self.raw) }).map_err(|e| self.explain("barrier", e))
    }

    /// Training-mode BatchNorm of `x` over the whole group's batch (statistics gathered from
    /// every rank, gradients allreduced in backward); updates the running statistics.
    #[allow(clippy::too_many_arguments)]
    pub fn sync_batch_norm(
        &self,
        x: &Tensor,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running_mean: &Tensor,
        running_var: &Tensor,
        momentum: f64,
        eps: f64,
    ) -> Result<Tensor> {
        let h = |t: Option<&Tensor>| t.map_or(std::ptr::null_mut(), |t| t.as_ptr() as *mut c_void);
        let mut out = std::ptr::null_mut();
        // SAFETY: live group and tensors (or NULL for absent ones); `out` is a new tensor we own.
        let err = unsafe {
            runner_c10d_sync_batch_norm(
                self.raw,
                h(Some(x)),
                h(weight),
                h(bias),
                h(Some(running_mean)),
                h(Some(running_var)),
                momentum,
                eps,
                &mut out,
            )
        };
        check(err).map_err(|e| self.explain("synchronised BatchNorm", e))?;
        Ok(unsafe { Tensor::from_ptr(out.cast()) })
    }

    /// fastai's `rank0_first`: `f` (a download, an extraction) runs on rank 0 while the
    /// others wait at a barrier, then on them, finding its work done.
    pub fn rank0_first<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.rank == 0 {
            let r = f();
            self.barrier()?;
            r
        } else {
            self.barrier()?;
            f()
        }
    }

    /// Tells the others this rank's run failed with `error` (before it exits), so that
    /// their broken collectives name it.
    pub fn announce_failure(&self, error: &str) {
        let _ = self.store_set(&failed_key(self.rank), error.as_bytes());
    }

    /// A collective `what` failed with `error` (also one inside autograd's backward, such
    /// as a synchronised BatchNorm's): names the rank that failed or left, as far as the
    /// store knows.
    pub fn explain(&self, what: &str, error: String) -> anyhow::Error {
        let _ = self.store_set(&broken_key(self.rank), error.as_bytes());
        let others: Vec<usize> = (0..self.world).filter(|&r| r != self.rank).collect();
        let failed = |r: usize| self.store_has(&failed_key(r));
        // The rank that failed first says so before it exits; the others break with us.
        for _ in 0..2 {
            match others.iter().map(|&r| failed(r).map(|f| (r, f))).collect::<Result<Vec<_>, String>>() {
                Err(_) => {
                    return anyhow!("{what} failed: the group's store at {} is gone, so rank 0 (which serves it) stopped: {error}", self.store_addr)
                }
                Ok(v) => {
                    if let Some((r, _)) = v.into_iter().find(|(_, f)| *f) {
                        let why = self
                            .store_get(&failed_key(r), Duration::from_secs(1))
                            .map(|v| String::from_utf8_lossy(&v).into_owned())
                            .unwrap_or_default();
                        let why = why.lines().next().unwrap_or("").to_string();
                        return anyhow!("{what} failed: rank {r} stopped with an error: {why}");
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let gone: Vec<String> = others.iter().filter(|&&r| self.store_has(&broken_key(r)) == Ok(false)).map(|r| r.to_string()).collect();
        match gone.as_slice() {
            [] => anyhow!("{what} failed on rank {}: {error}", self.rank),
            [r] => anyhow!("{what} failed: rank {r} died or hung (it left no error; timeout {}s): {error}", self.timeout.as_secs()),
            rs => anyhow!("{what} failed: ranks {} died or hung (they left no error; timeout {}s): {error}", rs.join(", "), self.timeout.as_secs()),
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped exactly once.
        unsafe { runner_c10d_destroy(self.raw) };
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}
