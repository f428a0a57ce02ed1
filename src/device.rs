//! Picks the compute device: CUDA when present (one code path for CPU and GPU),
//! overridable with `--device cpu|cuda|cuda:N`.
use anyhow::{bail, Result};
use tch::Device;

pub fn parse_device(spec: &str) -> Result<Device> {
    let d = match spec {
        "auto" => return Ok(Device::cuda_if_available()),
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => Device::Cuda(0),
        s => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Device::Cuda(n),
            None => bail!("unknown device `{spec}`: use auto, cpu, cuda or cuda:N"),
        },
    };
    if let Device::Cuda(n) = d {
        let count = tch::Cuda::device_count() as usize;
        if n >= count {
            bail!("device `{spec}` asked for, but this machine has {count} CUDA device(s)");
        }
    }
    Ok(d)
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The device line a run starts with, so that a newcomer knows at once what will do the
/// work (and, on a CPU, with how many threads, as `threads::in_effect` words them, and
/// that a big model will be slow).
pub fn describe(d: Device, threads: impl std::fmt::Display) -> String {
    match d {
        Device::Cpu if tch::Cuda::is_available() => format!("cpu ({threads}; a CUDA device is present: --device cuda to use it)"),
        Device::Cpu => format!("cpu ({threads}; no CUDA device found, so big models such as resnet34 at 224 px train slowly)"),
        Device::Cuda(n) => format!("cuda:{n} (one of {} CUDA devices)", tch::Cuda::device_count()),
        other => device_name(other),
    }
}

/// Keeps freed memory in the process instead of handing it back to the kernel. glibc
/// serves every allocation above 128 KB-32 MB with a fresh `mmap`, so each float batch and
/// each big activation paid for page faults and zeroing on every step (a fifth of the
/// loader's time in a profile); with this, freed blocks are reused as they are.
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes glibc's allocation policy; both values are valid for it.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Facts for `runner --version` and run records.
pub fn libtorch_version() -> &'static str {
    env!("RUNNER_LIBTORCH_VERSION")
}
