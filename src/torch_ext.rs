//! Safe wrappers over `csrc/torch_ext.cpp`, the libtorch switches tch does not expose:
//! deterministic algorithms and bf16 autocast (tch's own autocast is CUDA fp16 only).
use anyhow::{bail, Result};
use std::ffi::{c_char, c_int, CStr};
use tch::Device;

extern "C" {
    fn runner_ext_last_error() -> *const c_char;
    fn runner_ext_set_deterministic(on: c_int, warn_only: c_int) -> c_int;
    fn runner_ext_deterministic() -> c_int;
    fn runner_ext_autocast_enter(cuda: c_int, prev_enabled: *mut c_int, prev_dtype: *mut c_int) -> c_int;
    fn runner_ext_autocast_exit(cuda: c_int, prev_enabled: c_int, prev_dtype: c_int) -> c_int;
    fn runner_ext_autocast_enabled(cuda: c_int) -> c_int;
}

fn check(rc: c_int, what: &str) -> Result<()> {
    if rc == 0 {
        return Ok(());
    }
    // SAFETY: the shim keeps a NUL-terminated message in a static buffer.
    let msg = unsafe { CStr::from_ptr(runner_ext_last_error()) }.to_string_lossy().into_owned();
    bail!("{what}: {msg}")
}

/// Makes libtorch use deterministic kernels: bit-identical runs on CPU. On CUDA a few
/// backward kernels (adaptive pooling among them) have no deterministic version, so
/// there libtorch warns about them instead of failing the run.
pub fn set_deterministic(device: Device) -> Result<()> {
    if device.is_cuda() && std::env::var_os("CUBLAS_WORKSPACE_CONFIG").is_none() {
        // cuBLAS is deterministic only with a fixed workspace; read at its first use.
        std::env::set_var("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
    }
    // SAFETY: plain FFI call; exceptions are caught on the C++ side.
    check(unsafe { runner_ext_set_deterministic(1, device.is_cuda() as c_int) }, "cannot turn on deterministic algorithms")
}

pub fn deterministic() -> bool {
    // SAFETY: reads a flag.
    unsafe { runner_ext_deterministic() != 0 }
}

/// Whether autocast is on for `device`'s type on this thread.
pub fn autocast_enabled(device: Device) -> bool {
    // SAFETY: reads a thread-local flag.
    unsafe { runner_ext_autocast_enabled(device.is_cuda() as c_int) != 0 }
}

/// bf16 autocast on this thread while alive: matmuls and convolutions run in bfloat16,
/// reductions and losses stay in float32. No gradient scaler is needed for bf16.
pub struct Bf16Autocast {
    cuda: c_int,
    prev_enabled: c_int,
    prev_dtype: c_int,
}

impl Bf16Autocast {
    pub fn enter(device: Device) -> Result<Bf16Autocast> {
        let cuda = device.is_cuda() as c_int;
        let (mut prev_enabled, mut prev_dtype) = (0, 0);
        // SAFETY: the out-pointers are valid for the call.
        check(unsafe { runner_ext_autocast_enter(cuda, &mut prev_enabled, &mut prev_dtype) }, "cannot turn on bf16 autocast")?;
        Ok(Bf16Autocast { cuda, prev_enabled, prev_dtype })
    }
}

impl Drop for Bf16Autocast {
    fn drop(&mut self) {
        // SAFETY: restores the state `enter` read; errors here cannot be reported from drop.
        let _ = unsafe { runner_ext_autocast_exit(self.cuda, self.prev_enabled, self.prev_dtype) };
    }
}

/// Runs `f` under bf16 autocast when `on`, else as is.
pub fn maybe_bf16<T>(on: bool, device: Device, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let _guard = if on { Some(Bf16Autocast::enter(device)?) } else { None };
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn bf16_autocast_runs_matmul_in_bf16_and_restores() {
        let a = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
        assert!(!autocast_enabled(Device::Cpu));
        let k = maybe_bf16(true, Device::Cpu, || {
            assert!(autocast_enabled(Device::Cpu));
            Ok(a.matmul(&a).kind())
        })
        .unwrap();
        assert_eq!(k, Kind::BFloat16);
        assert!(!autocast_enabled(Device::Cpu));
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }

    #[test]
    fn deterministic_switch_sticks() {
        set_deterministic(Device::Cpu).unwrap();
        assert!(deterministic());
    }
}
