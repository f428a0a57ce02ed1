//! A small tensor type for scripts: create seeded random tensors, reduce them to numbers.
//! Heavy tensors stay inside the learner; this is for quick checks and custom metrics.
use super::args::{script_err, to_f64, to_usizes, RhaiResult};
use crate::reg;
use rhai::{Array, Dynamic, Engine};
use std::rc::Rc;
use tch::{Kind, Tensor};

/// A shared handle: Rhai clones values when passing them, tensors must not be copied.
#[derive(Clone)]
pub struct ScriptTensor(pub Rc<Tensor>);

impl ScriptTensor {
    pub fn new(t: Tensor) -> ScriptTensor {
        ScriptTensor(Rc::new(t))
    }
}

fn shape(v: &Array) -> RhaiResult<Vec<i64>> {
    Ok(to_usizes(&Dynamic::from_array(v.clone()), "shape")?.into_iter().map(|d| d as i64).collect())
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<ScriptTensor>("Tensor");
    reg!(
        engine,
        "randn",
        ["shape: Array", "Tensor"],
        "Normal(0, 1) random tensor, seeded by the run seed.",
        |s: Array| -> RhaiResult<ScriptTensor> { Ok(ScriptTensor::new(Tensor::randn(shape(&s)?, (Kind::Float, tch::Device::Cpu)))) }
    );
    reg!(
        engine,
        "rand",
        ["shape: Array", "Tensor"],
        "Uniform [0, 1) random tensor, seeded by the run seed.",
        |s: Array| -> RhaiResult<ScriptTensor> { Ok(ScriptTensor::new(Tensor::rand(shape(&s)?, (Kind::Float, tch::Device::Cpu)))) }
    );
    reg!(engine, "tensor", ["values: Array", "Tensor"], "A 1-d float tensor from numbers.", |v: Array| -> RhaiResult<ScriptTensor> {
        let xs: Vec<f32> = v.iter().map(|x| to_f64(x, "tensor value").map(|f| f as f32)).collect::<RhaiResult<_>>()?;
        Ok(ScriptTensor::new(Tensor::from_slice(&xs)))
    });
    reg!(engine, "mean", ["t: Tensor", "f64"], "Mean of all elements.", |t: &mut ScriptTensor| scalar(&t.0.mean(Kind::Double)));
    reg!(engine, "sum", ["t: Tensor", "f64"], "Sum of all elements.", |t: &mut ScriptTensor| scalar(&t.0.sum(Kind::Double)));
    reg!(engine, "std", ["t: Tensor", "f64"], "Standard deviation of all elements (unbiased).", |t: &mut ScriptTensor| scalar(
        &t.0.to_kind(Kind::Double).std(true)
    ));
    reg!(engine, "max", ["t: Tensor", "f64"], "Largest element.", |t: &mut ScriptTensor| scalar(&t.0.max().to_kind(Kind::Double)));
    reg!(engine, "min", ["t: Tensor", "f64"], "Smallest element.", |t: &mut ScriptTensor| scalar(&t.0.min().to_kind(Kind::Double)));
    reg!(engine, "shape", ["t: Tensor", "Array"], "The tensor's dimensions.", |t: &mut ScriptTensor| -> Array {
        t.0.size().into_iter().map(Dynamic::from).collect()
    });
    reg!(engine, "to_array", ["t: Tensor", "Array"], "All elements as a flat array of floats.", |t: &mut ScriptTensor| -> RhaiResult<Array> {
        let v = Vec::<f64>::try_from(t.0.flatten(0, -1).to_kind(Kind::Double)).map_err(|e: tch::TchError| script_err(e.to_string()))?;
        Ok(v.into_iter().map(Dynamic::from).collect())
    });
    reg!(engine, "to_string", ["t: Tensor", "String"], "Shape and values, for print.", |t: &mut ScriptTensor| format!(
        "Tensor{:?}\n{}",
        t.0.size(),
        t.0
    ));
    for (op, f) in [
        ("+", Tensor::f_add as fn(&Tensor, &Tensor) -> Result<Tensor, tch::TchError>),
        ("-", Tensor::f_sub),
        ("*", Tensor::f_mul),
        ("/", Tensor::f_div),
    ] {
        reg!(engine, op, ["a: Tensor", "b: Tensor", "Tensor"], "Elementwise arithmetic (+ - * /) of two tensors.", move |a: ScriptTensor,
                                                                                                                         b: ScriptTensor|
              -> RhaiResult<
            ScriptTensor,
        > {
            f(&a.0, &b.0).map(ScriptTensor::new).map_err(|e| script_err(e.to_string()))
        });
        reg!(
            engine,
            op,
            ["a: Tensor", "b: f64", "Tensor"],
            "Elementwise arithmetic (+ - * /) with a number.",
            move |a: ScriptTensor, b: Dynamic| -> RhaiResult<ScriptTensor> {
                let b = Tensor::from(to_f64(&b, "operand")? as f32);
                f(&a.0, &b).map(ScriptTensor::new).map_err(|e| script_err(e.to_string()))
            }
        );
    }
}
