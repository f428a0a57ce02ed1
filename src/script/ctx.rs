//! The run as script bindings see it: the session (folder, record, metrics log), params,
//! the seed, the device, the precision, the script. It sits below every binding file and the engine
//! builder (`host`) composes them on top, so nothing imports in a circle.
use super::params::ParamInputs;
use crate::learn::learner::RunOut;
use crate::precision::Precision;
use crate::session::Session;
use crate::track::{paths, WeightsUse};
use rhai::Engine;
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use tch::Device;

/// What script functions can reach: the run (absent for `runner api`), params, seed, device.
pub struct ScriptCtx {
    pub session: Option<Arc<Session>>,
    pub inputs: ParamInputs,
    pub seed: u64,
    pub device: Device,
    pub script: PathBuf,
    /// For a rerun: the run it repeats, and the weights its bodies started from, which
    /// this run's must start from too.
    pub rerun_weights: Option<(String, Vec<WeightsUse>)>,
    /// Bodies made so far (a rerun matches them to the recorded ones in this order).
    pub bodies: Cell<usize>,
    /// The precision learners train in unless their options say otherwise.
    pub precision: Precision,
    /// The engine running the script, for closures the learner calls outside any script
    /// call (a loss closure, in every batch); unset until the run binds it.
    pub engine: RefCell<Weak<Engine>>,
}

impl ScriptCtx {
    /// A context with no run, for listing the API or checking a script.
    pub fn detached() -> ScriptCtx {
        ScriptCtx {
            session: None,
            inputs: ParamInputs::default(),
            seed: crate::seed::DEFAULT_SEED,
            device: Device::Cpu,
            script: PathBuf::from("script.rhai"),
            rerun_weights: None,
            bodies: Cell::new(0),
            precision: crate::precision::DEFAULT,
            engine: RefCell::default(),
        }
    }

    /// Makes `engine` the one closures kept by the script's objects are called on.
    pub fn bind_engine(&self, engine: &Rc<Engine>) {
        *self.engine.borrow_mut() = Rc::downgrade(engine);
    }

    /// The engine running the script, while it runs.
    pub fn engine(&self) -> Option<Rc<Engine>> {
        self.engine.borrow().upgrade()
    }
}

impl ScriptCtx {
    fn run_dir(&self) -> Option<&Path> {
        self.session.as_ref().map(|s| s.dir.as_path())
    }

    /// A relative output path means inside the run folder.
    pub fn output_path(&self, p: &str) -> PathBuf {
        paths::output_file(self.run_dir(), p)
    }

    /// A bare name means `<run>/models/<name>.safetensors`.
    pub fn model_path(&self, name: &str) -> PathBuf {
        paths::model_file(self.run_dir(), name)
    }

    /// Where a learner made by this script writes, and how it hears of Ctrl-C/SIGTERM.
    pub fn run_out(&self) -> RunOut {
        match &self.session {
            Some(s) => RunOut {
                dir: s.dir.clone(),
                metrics: Some(s.metrics.clone()),
                record: Some(s.record.clone()),
                interrupted: crate::session::interrupt_signal,
                fits: s.fits.clone(),
                group: s.group.clone(),
            },
            None => RunOut::detached("."),
        }
    }
}
