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

/// Facts for `runner --version` and run records.
pub fn libtorch_version() -> &'static str {
    env!("RUNNER_LIBTORCH_VERSION")
}
