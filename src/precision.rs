//! The arithmetic a learner trains in: float32, or bf16 mixed precision (convolutions and
//! matmuls in bfloat16 under autocast; weights, optimizer state and losses in float32).
//! `auto` picks bf16 where the hardware computes it natively, so that users get the speed
//! without knowing to ask: CPUs with AMX or AVX512-BF16 (oneDNN uses them under autocast;
//! elsewhere bf16 is emulated and slower than float32) and CUDA devices of compute
//! capability 8.0 or more. bf16 comes with channels_last (NHWC) conv weights and inputs:
//! CUDA's tensor cores want them, and on an AVX512-BF16 CPU a bf16 resnet18 epoch at 128 px
//! took 11% less CPU time with them (a small convnet: no change).
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use tch::Device;

/// What a run or a learner asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Bf16,
    Auto,
}

/// The precision runs and learners use when none is asked for: bf16 where it is native.
/// Measured before choosing (bf16 against float32, same seeds, this project's benches):
/// ORL held-out pair accuracy over splits 42, 1, 2, 3, 4 mean 0.908 against 0.916, Omniglot
/// one-shot over seeds 42, 1, 2 mean 0.9125 against 0.920, the pets seed recipe 0.4324 in
/// both: within a point on each. On an AMX CPU ORL ran about as fast as in float32, Omniglot
/// in 0.6-0.9x its time and the pets recipe in 0.43x.
pub const DEFAULT: Precision = Precision::Auto;

/// What a record or config from before precisions were recorded computed in.
pub const UNRECORDED: Precision = Precision::Fp32;

impl std::str::FromStr for Precision {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Precision> {
        Ok(match s {
            "fp32" | "float32" => Precision::Fp32,
            "bf16" | "bfloat16" => Precision::Bf16,
            "auto" => Precision::Auto,
            _ => anyhow::bail!("unknown precision `{s}`: use fp32, bf16 or auto"),
        })
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Auto => "auto",
        })
    }
}

/// What a precision comes to on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Fp32 or Bf16, never Auto.
    pub precision: Precision,
    /// Conv weights and inputs in NHWC memory order.
    pub channels_last: bool,
    /// Why, for the record: `--precision bf16`, `auto: the CPU has avx512_bf16`, ...
    pub why: String,
}

impl Resolved {
    pub fn bf16(&self) -> bool {
        self.precision == Precision::Bf16
    }
}

/// Whether `device` computes bf16 natively, and what it has (or lacks), in words.
pub fn native_bf16(device: Device) -> (bool, String) {
    match device {
        Device::Cuda(n) => match cuda_capability(n) {
            Some((major, minor)) => (major >= 8, format!("cuda:{n} is of compute capability {major}.{minor}")),
            None => (false, format!("the compute capability of cuda:{n} is unknown")),
        },
        _ => {
            let flags = cpu_flags();
            match ["amx_bf16", "avx512_bf16"].into_iter().find(|f| flags.iter().any(|g| g == f)) {
                Some(f) => (true, format!("the CPU has {f}")),
                None => (false, "the CPU has neither amx_bf16 nor avx512_bf16".into()),
            }
        }
    }
}

impl Precision {
    /// What this precision comes to on `device`.
    pub fn resolve(self, device: Device) -> Resolved {
        let (precision, why) = match self {
            Precision::Auto => {
                let (native, what) = native_bf16(device);
                (if native { Precision::Bf16 } else { Precision::Fp32 }, format!("auto: {what}"))
            }
            p => (p, format!("--precision {p}")),
        };
        Resolved { precision, channels_last: precision == Precision::Bf16, why }
    }
}

/// The flags of the first CPU in /proc/cpuinfo (empty where there is none).
fn cpu_flags() -> &'static [String] {
    static FLAGS: OnceLock<Vec<String>> = OnceLock::new();
    FLAGS.get_or_init(|| parse_flags(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()))
}

fn parse_flags(cpuinfo: &str) -> Vec<String> {
    cpuinfo
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == "flags").map(|(_, v)| v.split_whitespace().map(String::from).collect()))
        .unwrap_or_default()
}

/// The compute capability of CUDA device `n`, from the CUDA runtime libtorch already
/// loaded (`cudaDeviceGetAttribute`); None when it is not there.
fn cuda_capability(n: usize) -> Option<(i32, i32)> {
    type GetAttribute = unsafe extern "C" fn(*mut i32, i32, i32) -> i32;
    const MAJOR: i32 = 75; // cudaDevAttrComputeCapabilityMajor
    const MINOR: i32 = 76; // cudaDevAttrComputeCapabilityMinor
                           // SAFETY: dlsym looks a symbol up in the libraries already loaded; when found it is the
                           // CUDA runtime's `cudaError_t cudaDeviceGetAttribute(int*, cudaDeviceAttr, int)`, called
                           // with a valid out-pointer.
    unsafe {
        let sym = libc::dlsym(libc::RTLD_DEFAULT, c"cudaDeviceGetAttribute".as_ptr());
        if sym.is_null() {
            return None;
        }
        let get: GetAttribute = std::mem::transmute::<*mut libc::c_void, GetAttribute>(sym);
        let (mut major, mut minor) = (0, 0);
        (get(&mut major, MAJOR, n as i32) == 0 && get(&mut minor, MINOR, n as i32) == 0).then_some((major, minor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_resolves_explicit_choices_as_asked() {
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!("float32".parse::<Precision>().unwrap(), Precision::Fp32);
        let e = "fp16".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("`fp16`") && e.contains("fp32, bf16 or auto"), "{e}");
        let r = Precision::Fp32.resolve(Device::Cpu);
        assert_eq!((r.precision, r.channels_last, r.why.as_str()), (Precision::Fp32, false, "--precision fp32"));
        let b = Precision::Bf16.resolve(Device::Cpu);
        assert!(b.bf16() && b.channels_last, "bf16 comes with channels_last");
    }

    #[test]
    fn auto_follows_the_cpu_flags() {
        let flags = parse_flags("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\nbugs\t: x\n");
        assert_eq!(flags, ["fpu", "sse2", "avx512f", "avx512_bf16"]);
        assert!(parse_flags("no flags here").is_empty());
        let r = Precision::Auto.resolve(Device::Cpu);
        let native = cpu_flags().iter().any(|f| f == "amx_bf16" || f == "avx512_bf16");
        assert_eq!(r.bf16(), native, "{r:?}");
        assert!(r.why.starts_with("auto: the CPU has"), "{}", r.why);
    }
}
