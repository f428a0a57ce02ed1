//! Tracing for runs: JSON lines into the current run's `log.jsonl`, warnings and errors
//! to the console. Installed once per process; the file switches with each run (sweeps).
use std::fs::File;
use std::io::IsTerminal;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, Once};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{filter, filter::LevelFilter, Layer};

static LOG_FILE: Mutex<Option<File>> = Mutex::new(None);
static INIT: Once = Once::new();

struct RunLog;

impl Write for RunLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(f) = LOG_FILE.lock().unwrap().as_mut() {
            f.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(f) = LOG_FILE.lock().unwrap().as_mut() {
            f.flush()?;
        }
        Ok(())
    }
}

struct MakeRunLog;

impl<'a> MakeWriter<'a> for MakeRunLog {
    type Writer = RunLog;
    fn make_writer(&'a self) -> RunLog {
        RunLog
    }
}

/// Sends tracing events to `<run>/log.jsonl` (and warnings to stderr) from now on.
pub fn log_to(run_dir: &Path) -> anyhow::Result<()> {
    INIT.call_once(|| {
        let file_layer = tracing_subscriber::fmt::layer().json().with_writer(MakeRunLog).with_filter(LevelFilter::DEBUG);
        // The run's own outcome (target "run") is printed by the CLI, not repeated here.
        let console = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .without_time()
            .with_filter(filter::filter_fn(|m| m.target() != "run" && *m.level() <= tracing::Level::WARN));
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(file_layer).with(console));
    });
    let path = run_dir.join("log.jsonl");
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    *LOG_FILE.lock().unwrap() = Some(file);
    Ok(())
}
