//! The Rhai layer: one engine set up in one place (`host`), and one thin binding file per
//! domain that converts arguments and errors and calls the plain Rust API.
pub mod args;
pub mod callbacks;
pub mod core;
pub mod ctx;
pub mod data;
pub mod errors;
pub mod export;
pub mod fewshot;
pub mod host;
pub mod interpret;
pub mod learn;
pub mod limits;
pub mod loss;
pub mod model;
pub mod modules;
pub mod options;
pub mod params;
pub mod suggest;
pub mod tensor;
pub mod tensor_value;
pub mod vision;

pub use ctx::ScriptCtx;
pub use errors::format_script_error;
pub use host::new_engine;
pub use params::{declared_params, ParamInputs};

/// Registers a script function with its parameter names/types, a one-line doc and the
/// place of this call (`bound at src/script/data.rs:42`), which `runner api` lists; the
/// reference is generated from these registrations.
#[macro_export]
macro_rules! reg {
    ($engine:expr, $name:expr, [$($p:expr),* $(,)?], $doc:expr, $f:expr) => {
        rhai::FuncRegistration::new($name)
            .with_params_info([$($p),*])
            .with_comments([concat!("/// ", $doc), concat!("/// ", $crate::bound_at!(), file!(), ":", line!())])
            .with_volatility(true)
            .register_into_engine($engine, $f)
    };
}

/// How `reg!` starts the doc line that says where a function is bound (`runner api` reads it).
#[macro_export]
macro_rules! bound_at {
    () => {
        "bound at "
    };
}
