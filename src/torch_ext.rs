//! Safe wrappers over `csrc/torch_ext.cpp`, the libtorch switches tch does not expose:
//! deterministic algorithms, cuDNN benchmark, TF32, bf16 autocast (tch's own autocast is
//! CUDA fp16 only), libtorch's warnings printed once each and counted, and libtorch's
//! unpickler for the tensors of a `.pth` file (see `model::pth`).
use anyhow::{bail, Result};
use std::ffi::{c_char, c_int, c_void, CStr};
use tch::{Device, Tensor};

extern "C" {
    fn runner_ext_last_error() -> *const c_char;
    fn runner_ext_set_deterministic(on: c_int, warn_only: c_int) -> c_int;
    fn runner_ext_deterministic() -> c_int;
    fn runner_ext_autocast_enter(cuda: c_int, prev_enabled: *mut c_int, prev_dtype: *mut c_int) -> c_int;
    fn runner_ext_autocast_exit(cuda: c_int, prev_enabled: c_int, prev_dtype: c_int) -> c_int;
    fn runner_ext_autocast_enabled(cuda: c_int) -> c_int;
    fn runner_ext_set_fill_uninitialized(on: c_int);
    fn runner_ext_set_cudnn_benchmark(on: c_int);
    fn runner_ext_set_tf32(on: c_int);
    fn runner_ext_tf32() -> c_int;
    fn runner_ext_warn_once();
    fn runner_ext_warnings(buf: *mut c_char, len: usize) -> usize;
    fn runner_ext_adam_step(
        ws: *const *mut c_void,
        grads: *const *mut c_void,
        avgs: *const *mut c_void,
        sqs: *const *mut c_void,
        n: usize,
        decayed: *const *mut c_void,
        n_decayed: usize,
        decay: f64,
        step_size: *const f64,
        debias2_sqrt: *const f64,
        mom: f64,
        sqr_mom: f64,
        eps: f64,
    ) -> c_int;
    fn runner_ext_sgd_step(
        ws: *const *mut c_void,
        grads: *const *mut c_void,
        avgs: *const *mut c_void,
        n: usize,
        decayed: *const *mut c_void,
        n_decayed: usize,
        decay: f64,
        lr: f64,
        mom: f64,
    ) -> c_int;
    fn runner_ext_clip_grad_norm(grads: *const *mut c_void, n: usize, max: f64) -> c_int;
    fn runner_ext_read_pth(
        path: *const c_char,
        pkl: *const c_char,
        pkl_len: usize,
        state_key: *const c_char,
        ctx: *mut c_void,
        add: extern "C" fn(*mut c_void, *const c_char, *mut c_void),
    ) -> c_int;
}

/// The shim's view of tensors: their `at::Tensor*` handles.
fn handles(ts: &[&Tensor]) -> Vec<*mut c_void> {
    ts.iter().map(|t| t.as_ptr() as *mut c_void).collect()
}

/// The tensors of one foreach optimizer step (equal lengths, same devices).
pub struct StepTensors<'a> {
    pub weights: Vec<&'a Tensor>,
    pub grads: Vec<&'a Tensor>,
    pub avgs: Vec<&'a Tensor>,
    /// Adam's squared averages (empty for SGD).
    pub sqr_avgs: Vec<&'a Tensor>,
    /// The weights that get weight decay, multiplied by `decay` first.
    pub decayed: Vec<&'a Tensor>,
    pub decay: f64,
}

/// fastai's Adam step as multi-tensor ops (see `csrc/torch_ext.cpp`); per parameter,
/// `step_size` = -lr / debias1 and `debias2_sqrt` = sqrt(debias2).
pub fn adam_step(t: &StepTensors, step_size: &[f64], debias2_sqrt: &[f64], mom: f64, sqr_mom: f64, eps: f64) -> Result<()> {
    let n = t.weights.len();
    assert!([t.grads.len(), t.avgs.len(), t.sqr_avgs.len(), step_size.len(), debias2_sqrt.len()].iter().all(|&l| l == n));
    let (w, g, a, s, d) = (handles(&t.weights), handles(&t.grads), handles(&t.avgs), handles(&t.sqr_avgs), handles(&t.decayed));
    // SAFETY: every array holds `n` (or `d.len()`) live tensor handles for the call.
    let rc = unsafe {
        runner_ext_adam_step(
            w.as_ptr(),
            g.as_ptr(),
            a.as_ptr(),
            s.as_ptr(),
            n,
            d.as_ptr(),
            d.len(),
            t.decay,
            step_size.as_ptr(),
            debias2_sqrt.as_ptr(),
            mom,
            sqr_mom,
            eps,
        )
    };
    check(rc, "Adam step failed")
}

/// SGD with momentum as multi-tensor ops: avg = mom * avg + g; w -= lr * avg.
pub fn sgd_step(t: &StepTensors, lr: f64, mom: f64) -> Result<()> {
    let n = t.weights.len();
    assert!(t.grads.len() == n && t.avgs.len() == n);
    let (w, g, a, d) = (handles(&t.weights), handles(&t.grads), handles(&t.avgs), handles(&t.decayed));
    // SAFETY: as in `adam_step`.
    let rc = unsafe { runner_ext_sgd_step(w.as_ptr(), g.as_ptr(), a.as_ptr(), n, d.as_ptr(), d.len(), t.decay, lr, mom) };
    check(rc, "SGD step failed")
}

/// Scales `grads` in place so that their global L2 norm is at most `max`; the norm and the
/// coefficient stay on the device (no host sync).
pub fn clip_grad_norm(grads: &[&Tensor], max: f64) -> Result<()> {
    let g = handles(grads);
    // SAFETY: `g` holds live tensor handles for the call.
    check(unsafe { runner_ext_clip_grad_norm(g.as_ptr(), g.len(), max) }, "gradient clipping failed")
}

/// Receives one tensor of `read_pth`: `ctx` is the caller's list, `tensor` a new handle it now owns.
extern "C" fn push_tensor(ctx: *mut c_void, name: *const c_char, tensor: *mut c_void) {
    // SAFETY: `ctx` is the `Vec` `read_pth` passed for this call; `name` is NUL-terminated;
    // `tensor` is a fresh `at::Tensor*`, which tch's `Tensor` frees on drop.
    unsafe {
        let out = &mut *(ctx as *mut Vec<(String, Tensor)>);
        out.push((CStr::from_ptr(name).to_string_lossy().into_owned(), Tensor::from_ptr(tensor as *mut torch_sys::C_tensor)));
    }
}

/// The tensors of the `torch.save` zip at `path`, its data.pkl replaced by `pkl` (see
/// `model::pth::read`); entries under `state_key` are skipped.
pub fn read_pth(path: &std::path::Path, pkl: &[u8], state_key: &str) -> Result<Vec<(String, Tensor)>> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(|_| anyhow::anyhow!("a NUL byte in `{s}`"));
    let (path_c, key_c) = (c(&path.to_string_lossy())?, c(state_key)?);
    let mut out: Vec<(String, Tensor)> = Vec::new();
    // SAFETY: every pointer is valid for the call; `push_tensor` gets `out` back as `ctx`.
    let rc = unsafe {
        runner_ext_read_pth(path_c.as_ptr(), pkl.as_ptr() as *const c_char, pkl.len(), key_c.as_ptr(), &mut out as *mut _ as *mut c_void, push_tensor)
    };
    if rc != 0 {
        bail!("{}", last_error());
    }
    Ok(out)
}

fn check(rc: c_int, what: &str) -> Result<()> {
    if rc == 0 {
        return Ok(());
    }
    bail!("{what}: {}", last_error())
}

/// The message of the shim's last failed call.
fn last_error() -> String {
    // SAFETY: the shim keeps a NUL-terminated message in a static buffer.
    unsafe { CStr::from_ptr(runner_ext_last_error()) }.to_string_lossy().into_owned()
}

/// How strictly a run asks libtorch for reproducible kernels (`RUNNER_DETERMINISTIC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Determinism {
    /// Deterministic kernels only: an op without one fails the run (the CPU default).
    Strict,
    /// Deterministic kernels where they exist; each op without one is reported once and
    /// recorded in run.toml (the CUDA default: the head's adaptive max pooling has no
    /// deterministic CUDA backward).
    Warn,
    /// The fastest kernels, cuDNN benchmark on: for speed runs.
    Off,
}

impl Determinism {
    /// `RUNNER_DETERMINISTIC` (strict, warn or off), else the device's default.
    pub fn from_env(device: Device) -> Result<Determinism> {
        Ok(match std::env::var("RUNNER_DETERMINISTIC").as_deref() {
            Ok("strict") => Determinism::Strict,
            Ok("warn") => Determinism::Warn,
            Ok("off") => Determinism::Off,
            Ok(other) => bail!("RUNNER_DETERMINISTIC is `{other}`: use strict, warn or off"),
            Err(_) if device.is_cuda() => Determinism::Warn,
            Err(_) => Determinism::Strict,
        })
    }
}

/// Sets libtorch up for a run on `device`: determinism as `RUNNER_DETERMINISTIC` asks
/// (bit-identical runs on CPU by default), TF32 as `RUNNER_TF32` asks (libtorch's default
/// otherwise: TF32 for float32 convolutions on CUDA, not for matmuls), and every libtorch
/// warning printed once.
pub fn set_deterministic(device: Device) -> Result<()> {
    let mode = Determinism::from_env(device)?;
    if device.is_cuda() && mode != Determinism::Off && std::env::var_os("CUBLAS_WORKSPACE_CONFIG").is_none() {
        // cuBLAS is deterministic only with a fixed workspace; read at its first use.
        std::env::set_var("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
    }
    match std::env::var("RUNNER_TF32").as_deref() {
        Ok("1") => set_tf32(true),
        Ok("0") => set_tf32(false),
        Ok(other) => bail!("RUNNER_TF32 is `{other}`: use 1 (TF32 for float32 convolutions and matmuls on CUDA) or 0 (full float32)"),
        Err(_) => {}
    }
    // SAFETY: plain FFI calls; exceptions are caught on the C++ side.
    unsafe {
        runner_ext_warn_once();
        runner_ext_set_fill_uninitialized((mode == Determinism::Strict) as c_int);
        runner_ext_set_cudnn_benchmark((mode == Determinism::Off) as c_int);
        let (on, warn_only) = (mode != Determinism::Off, mode == Determinism::Warn);
        check(runner_ext_set_deterministic(on as c_int, warn_only as c_int), "cannot set deterministic algorithms")
    }
}

/// TF32 tensor-core math for float32 convolutions and matmuls on CUDA (about 3 decimal
/// digits, several times faster on recent GPUs); no effect on the CPU.
pub fn set_tf32(on: bool) {
    // SAFETY: sets two flags.
    unsafe { runner_ext_set_tf32(on as c_int) }
}

pub fn tf32() -> bool {
    // SAFETY: reads a flag.
    unsafe { runner_ext_tf32() != 0 }
}

/// The distinct libtorch warnings seen so far (since `set_deterministic`), with how many
/// times each was raised.
pub fn warnings() -> Vec<(u64, String)> {
    // SAFETY: a null buffer of length 0 only asks for the length.
    let len = unsafe { runner_ext_warnings(std::ptr::null_mut(), 0) };
    let mut buf = vec![0 as c_char; len + 1];
    // SAFETY: `buf` holds `len + 1` bytes, room for the text and its NUL.
    unsafe { runner_ext_warnings(buf.as_mut_ptr(), buf.len()) };
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
    text.split('\u{1e}').filter_map(|r| r.split_once('\u{1f}')).map(|(n, m)| (n.parse().unwrap_or(0), m.to_string())).collect()
}

/// The ops that ran without a deterministic implementation (libtorch's alerts in `Warn` mode).
pub fn nondeterministic_ops() -> Vec<String> {
    warnings().into_iter().filter_map(|(_, m)| m.split_once(" does not have a deterministic implementation").map(|(op, _)| op.to_string())).collect()
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
    use tch::Kind;

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
    fn clip_grad_norm_scales_to_the_max_norm_only_when_above() {
        tch::manual_seed(3);
        let grads: Vec<Tensor> = [[4i64, 3], [7, 1]].iter().map(|s| Tensor::randn(*s, (Kind::Float, Device::Cpu)) * 5.0).collect();
        let norm = |gs: &[Tensor]| gs.iter().map(|g| g.square().sum(Kind::Double).double_value(&[])).sum::<f64>().sqrt();
        let before = norm(&grads);
        let copies: Vec<Tensor> = grads.iter().map(Tensor::copy).collect();
        clip_grad_norm(&copies.iter().collect::<Vec<_>>(), before * 2.0).unwrap();
        assert!(copies.iter().zip(&grads).all(|(a, b)| a.equal(b)), "below the max: untouched");
        clip_grad_norm(&copies.iter().collect::<Vec<_>>(), 1.0).unwrap();
        assert!((norm(&copies) - 1.0).abs() < 1e-5, "clipped to norm {}", norm(&copies));
        let want = &grads[0] * (1.0 / (before + 1e-6));
        assert!(copies[0].allclose(&want, 1e-6, 1e-7, false));
    }

    #[test]
    fn deterministic_switch_sticks_and_alerts_are_counted_once_each() {
        set_deterministic(Device::Cpu).unwrap();
        assert!(deterministic());
        assert_eq!(Determinism::from_env(Device::Cpu).unwrap(), Determinism::Strict);
        // In the same test (the mode is global): put_ without accumulate has no
        // deterministic kernel, on the CPU too; warn mode reports it.
        // SAFETY: plain FFI call.
        unsafe { runner_ext_set_deterministic(1, 1) };
        let mut x = Tensor::zeros([4], (Kind::Float, Device::Cpu));
        for _ in 0..3 {
            let _ = x.put_(&Tensor::from_slice(&[1i64]), &Tensor::from_slice(&[2f32]), false);
        }
        set_deterministic(Device::Cpu).unwrap();
        let put: Vec<(u64, String)> = warnings().into_iter().filter(|(_, m)| m.contains("put_")).collect();
        assert_eq!(put.len(), 1, "{put:?}");
        assert_eq!(put[0].0, 3, "raised three times, stored (and printed) once");
        assert!(nondeterministic_ops().iter().any(|op| op.contains("put_")), "{:?}", nondeterministic_ops());
    }
}
