//! Which group the BatchNorm layers of the forward pass in progress synchronise over, if
//! any. The learner opens the scope around a training forward of a data-parallel fit and
//! the model's BatchNorm layers ask here, so models know nothing of groups. A layer's
//! `forward_t` cannot return an error: a failed collective is kept here and the scope
//! returns it once the forward is done.
use super::group::ProcessGroup;
use anyhow::Result;
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    static ACTIVE: RefCell<Option<Arc<ProcessGroup>>> = const { RefCell::new(None) };
    static FAILED: RefCell<Option<anyhow::Error>> = const { RefCell::new(None) };
}

/// Restores the scope that was open before, also when `f` panics.
struct Restore(Option<Arc<ProcessGroup>>);

impl Drop for Restore {
    fn drop(&mut self) {
        ACTIVE.with(|a| *a.borrow_mut() = self.0.take());
    }
}

/// Runs `f` with BatchNorm synchronised over `group`; the first collective error of a
/// layer inside it, if any, is the result.
pub fn with_sync_bn<R>(group: &Arc<ProcessGroup>, f: impl FnOnce() -> R) -> Result<R> {
    let before = ACTIVE.with(|a| a.borrow_mut().replace(group.clone()));
    let out = {
        let _restore = Restore(before);
        f()
    };
    match FAILED.with(|e| e.borrow_mut().take()) {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The group a training-mode BatchNorm should synchronise over now, if any.
pub fn sync_bn_group() -> Option<Arc<ProcessGroup>> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// Keeps a layer's collective error for `with_sync_bn` to return (the first one wins).
pub fn fail(e: anyhow::Error) {
    FAILED.with(|f| {
        f.borrow_mut().get_or_insert(e);
    });
}
