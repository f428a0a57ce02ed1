//! The engine, set up once: limits so a runaway script stops with a clear error,
//! `print`/`debug` to the console and the run log, Ctrl-C polling, module imports
//! relative to the script, and every domain's bindings.
use super::ctx::ScriptCtx;
use super::modules::ScriptModules;
use rhai::{Dynamic, Engine};
use std::path::Path;
use std::rc::Rc;

/// A runaway loop stops after this many script operations (native work, such as a
/// training epoch, counts as one call).
pub const DEFAULT_MAX_OPERATIONS: u64 = 200_000_000;

pub fn new_engine(ctx: Rc<ScriptCtx>, max_operations: u64) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(max_operations);
    engine.set_max_call_levels(64);
    engine.set_max_expr_depths(128, 64);
    engine.on_print(|s| {
        println!("{s}");
        tracing::info!(target: "script", "{s}");
    });
    engine.on_debug(|s, src, pos| {
        let at = match (src, pos.line()) {
            (Some(src), Some(l)) => format!("{src}:{l}: "),
            _ => String::new(),
        };
        eprintln!("{at}{s}");
        tracing::debug!(target: "script", "{at}{s}");
    });
    engine.on_progress(|_| crate::session::interrupt_signal().map(|sig| Dynamic::from(format!("interrupted by {sig}"))));
    let session = ctx.session.clone();
    let script_dir = ctx.script.parent().map(Path::to_path_buf).unwrap_or_default();
    engine.set_module_resolver(ScriptModules::new(move |file| {
        if let Some(s) = &session {
            let rel = file
                .strip_prefix(&script_dir)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| Path::new("modules").join(file.file_name().unwrap_or_default()));
            if let Err(e) = s.keep_source(file, &rel) {
                tracing::warn!("{e:#}");
            }
        }
    }));
    super::core::register(&mut engine, &ctx);
    super::tensor::register(&mut engine);
    super::data::register(&mut engine, &ctx);
    super::model::register(&mut engine, &ctx);
    super::learn::register(&mut engine, &ctx);
    super::vision::register(&mut engine, &ctx);
    super::export::register(&mut engine, &ctx);
    super::interpret::register(&mut engine, &ctx);
    super::fewshot::register(&mut engine, &ctx);
    super::callbacks::register(&mut engine);
    engine
}
