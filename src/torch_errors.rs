//! libtorch failures as errors a person can read: its messages carry forty C++ stack
//! frames, of which the first line says what went wrong (the rest goes to the run log).
//! And tensor requests checked against the memory the machine has, since a tensor larger
//! than that is not refused by libtorch on Linux but killed by the kernel mid-fill.
use anyhow::{bail, Result};
use tch::{Kind, TchError};

/// The readable part of a libtorch message (raw, or as a panic's `Debug` text with `\n`
/// escaped): what comes before "Exception raised from" and the frames, in one line.
pub fn short_message(msg: &str) -> String {
    // A panic's text from tch wraps the message in its `Debug` form.
    let msg = msg.trim_start_matches("called `Result::unwrap()` on an `Err` value: ").trim_start_matches("Torch(\"");
    let cut = ["Exception raised from", "\nframe #", "\\nframe #"].iter().filter_map(|m| msg.find(m)).min().unwrap_or(msg.len());
    let head = msg[..cut].replace("\\n", "\n");
    let lines: Vec<&str> = head.lines().map(str::trim).filter(|l| !l.is_empty()).take(2).collect();
    lines.join(" ")
}

/// A libtorch error for a message: `op: what went wrong`; the full text goes to the log.
pub fn short(op: &str, e: &TchError) -> String {
    tracing::debug!(target: "torch", "{op}: {e}");
    let text = match e {
        TchError::Torch(m) => m.clone(),
        other => other.to_string(),
    };
    format!("{op}: {}", short_message(&text))
}

/// Bytes of memory the kernel says can be allocated without swapping (`MemAvailable`).
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Refuses a tensor of `shape` whose elements do not fit in the available memory (or in
/// the address space), naming the shape and both sizes.
pub fn check_alloc(shape: &[i64], kind: Kind) -> Result<()> {
    let numel = shape.iter().try_fold(1u128, |n, &d| u128::try_from(d).ok().and_then(|d| n.checked_mul(d)));
    let Some(numel) = numel else { bail!("a tensor of shape {shape:?} has more elements than can be counted") };
    let bytes = numel.saturating_mul(kind.elt_size_in_bytes() as u128);
    if let Some(avail) = available_memory() {
        if bytes > avail as u128 {
            bail!("a tensor of shape {shape:?} needs {}, more than the {} of memory available", gb(bytes), gb(avail as u128));
        }
    }
    Ok(())
}

fn gb(bytes: u128) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_from_libtorch_messages() {
        let raw = "max(): Expected reduction dim to be specified for input.numel() == 0.\nException raised from max at aten.cpp:1:\nframe #0: c10::Error::Error() + 0x1\nframe #1: at::max()";
        assert_eq!(short_message(raw), "max(): Expected reduction dim to be specified for input.numel() == 0.");
        let panic = r#"called `Result::unwrap()` on an `Err` value: Torch("shape '[2]' is invalid\nException raised from x\nframe #0: f")"#;
        assert_eq!(short_message(panic), "shape '[2]' is invalid");
    }

    #[test]
    fn impossible_tensors_are_refused_before_allocation() {
        let e = check_alloc(&[3037000500, 3037000500], Kind::Float).unwrap_err().to_string();
        assert!(e.contains("[3037000500, 3037000500]") && e.contains("memory available"), "{e}");
        let e = check_alloc(&[i64::MAX, i64::MAX, i64::MAX], Kind::Float).unwrap_err().to_string();
        assert!(e.contains("more elements than can be counted"), "{e}");
        check_alloc(&[1000, 1000], Kind::Float).unwrap();
        check_alloc(&[0], Kind::Float).unwrap();
    }
}
