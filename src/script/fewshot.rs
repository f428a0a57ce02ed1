//! Few-shot bindings: episodes over a Table, N-way evaluation by prototypes, the
//! prototypical loss on tensors, and test-time augmentation. Thin: options in, `crate::data`,
//! `crate::model` and `crate::learn` calls, maps out.
use super::args::{script_err, Opts, OrScript, RhaiResult};
use super::ctx::ScriptCtx;
use super::data::{ScriptDataLoaders, ScriptTable};
use super::learn::ScriptLearner;
use super::model::ScriptModel;
use super::options;
use super::tensor::ScriptTensor;
use crate::data::episodes::{sample_episodes, Episode, EpisodeSpec};
use crate::data::read_oneshot_runs;
use crate::data::table::Table;
use crate::learn::oneshot::{n_way_eval_embeddings, NWayResult, NWayTask};
use crate::learn::tta::{embed_files, learner_tta, Tta};
use crate::learn::LearnData;
use crate::model::prototypes::{proto_logits, proto_loss, prototypes, Metric};
use crate::reg;
use rhai::{Array, Dynamic, Engine, Map};
use std::path::PathBuf;
use std::rc::Rc;

/// Episodes with the table their rows index.
#[derive(Clone)]
pub struct ScriptEpisodes {
    table: Rc<Table>,
    episodes: Rc<Vec<Episode>>,
}

fn tta_opts(o: &mut Opts) -> RhaiResult<Tta> {
    let n = o.usize("tta")?;
    Tta::new(n, o.f64("beta")?).or_script()
}

fn result_map(r: NWayResult, ci95: f64, per_run: bool) -> Map {
    let mut m = Map::new();
    m.insert("accuracy".into(), r.accuracy.into());
    m.insert("ci95".into(), ci95.into());
    m.insert("tasks".into(), (r.per_trial.len() as i64).into());
    if per_run {
        m.insert("runs".into(), Dynamic::from_map(r.per_trial.into_iter().map(|(n, a)| (n.into(), a.into())).collect()));
    }
    m
}

fn eval(m: &ScriptModel, d: &ScriptDataLoaders, tasks: &[NWayTask], o: Map, per_run: bool) -> RhaiResult<Map> {
    let mut o = Opts::new(&options::N_WAY_EVAL, o);
    let metric: Metric = o.choice("metric")?;
    let tta = tta_opts(&mut o)?;
    o.finish()?;
    let (r, ci) = n_way_eval_embeddings(&m.0, d.0.as_ref(), tasks, metric, tta).or_script()?;
    Ok(result_map(r, ci, per_run))
}

fn tensor_arg(t: &ScriptTensor) -> tch::Tensor {
    t.0.shallow_clone()
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    engine.register_type_with_name::<ScriptEpisodes>("Episodes");
    register_episodes(engine, ctx);
    register_evaluation(engine);
    register_prototype_math(engine);
}

/// Episodes drawn over a table, and reading them.
fn register_episodes(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "episodes",
        ["table: Table", "options: Map", "Episodes"],
        "N-way K-shot episodes over a table's classes (see Options below): each draws n_way classes of one split, k_shot support and n_query query rows of each; seeded per split and episode.",
        move |t: ScriptTable, o: Map| -> RhaiResult<ScriptEpisodes> {
            let mut o = Opts::new(&options::EPISODES, o);
            let mut spec = EpisodeSpec { seed: c.seed, ..EpisodeSpec::default() };
            o.fill(&mut spec)?;
            let label = o.string("label")?;
            o.finish()?;
            let episodes = sample_episodes(&t.0, &label, &spec).or_script()?;
            Ok(ScriptEpisodes { table: t.0.clone(), episodes: Rc::new(episodes) })
        }
    );
    reg!(engine, "len", ["e: Episodes", "i64"], "Number of episodes.", |e: &mut ScriptEpisodes| e.episodes.len() as i64);
    reg!(
        engine,
        "index$get$",
        ["e: Episodes", "i: i64", "Map"],
        "`eps[i]`: #{classes, support: [files], query: [files], query_y: [class index]}, support class-major.",
        |e: &mut ScriptEpisodes, i: i64| -> RhaiResult<Map> {
            let ep = usize::try_from(i)
                .ok()
                .and_then(|i| e.episodes.get(i))
                .ok_or_else(|| script_err(format!("episode {i} does not exist ({} episodes)", e.episodes.len())))?;
            let files = e.table.strs("file").or_script()?;
            let list = |rows: &[usize]| -> Array { rows.iter().map(|&r| Dynamic::from(files[r].clone())).collect() };
            let mut m = Map::new();
            m.insert("classes".into(), Dynamic::from_array(ep.classes.iter().map(|c| Dynamic::from(c.clone())).collect()));
            m.insert("support".into(), Dynamic::from_array(list(&ep.support)));
            m.insert("query".into(), Dynamic::from_array(list(&ep.query)));
            m.insert("query_y".into(), Dynamic::from_array(ep.query_y.iter().map(|&y| Dynamic::from(y as i64)).collect()));
            Ok(m)
        }
    );
    reg!(engine, "to_string", ["e: Episodes", "String"], "`Episodes(100 x 5-way 1-shot)`, for print.", |e: &mut ScriptEpisodes| {
        let first = e.episodes.first();
        format!(
            "Episodes({} x {}-way {}-shot, {} queries each)",
            e.episodes.len(),
            first.map_or(0, |ep| ep.n_way()),
            first.map_or(0, |ep| ep.k_shot()),
            first.map_or(0, |ep| ep.query.len())
        )
    });
}

/// N-way evaluation, embeddings and test-time augmentation.
fn register_evaluation(engine: &mut Engine) {
    reg!(
        engine,
        "n_way_eval",
        ["model: Model", "dls: DataLoaders", "episodes: Episodes", "options: Map", "Map"],
        "N-way accuracy over episodes of a table: images embedded as dls prepares its validation set (tta optional), each query given the class of its nearest prototype (mean support embedding); #{accuracy, ci95, tasks}.",
        |m: ScriptModel, d: ScriptDataLoaders, e: ScriptEpisodes, o: Map| -> RhaiResult<Map> {
            let tasks = e.episodes.iter().enumerate().map(|(i, ep)| NWayTask::from_episode(&e.table, ep, i)).collect::<anyhow::Result<Vec<_>>>().or_script()?;
            eval(&m, &d, &tasks, o, false)
        }
    );
    reg!(
        engine,
        "n_way_eval",
        ["model: Model", "dls: DataLoaders", "runs_dir: String", "options: Map", "Map"],
        "n_way_eval on Omniglot-style run folders (runNN/class_labels.txt); #{accuracy, ci95, tasks, runs: #{name: accuracy}}.",
        |m: ScriptModel, d: ScriptDataLoaders, dir: &str, o: Map| -> RhaiResult<Map> {
            let runs = read_oneshot_runs(std::path::Path::new(dir)).or_script()?;
            eval(&m, &d, &runs.iter().map(NWayTask::from_run).collect::<Vec<_>>(), o, true)
        }
    );
    reg!(
        engine,
        "embed",
        ["model: Model", "dls: DataLoaders", "files: Array", "options: Map", "Tensor"],
        "Embeddings [N, D] of image files (the model's body, pooled), prepared as dls prepares its validation set; options tta and beta average in augmented passes.",
        |m: ScriptModel, d: ScriptDataLoaders, files: Array, o: Map| -> RhaiResult<ScriptTensor> {
            let mut o = Opts::new(&options::N_WAY_EVAL, o);
            let tta = tta_opts(&mut o)?;
            o.finish()?;
            let files: Vec<PathBuf> = files.into_iter().map(|f| PathBuf::from(f.to_string())).collect();
            let turns = vec![0; files.len()];
            Ok(ScriptTensor::new(embed_files(&m.0, d.0.as_ref() as &dyn LearnData, &files, &turns, tta).or_script()?))
        }
    );
    reg!(
        engine,
        "tta",
        ["learn: Learner", "options: Map", "Map"],
        "fastai's learn.tta: the built-in metrics on validation predictions blended over n passes of the training augmentation, lerp(augmented mean, plain, beta).",
        |l: &mut ScriptLearner, o: Map| -> RhaiResult<Map> {
            let mut o = Opts::new(&options::TTA, o);
            let tta = Tta::new(o.usize("n")?, o.f64("beta")?).or_script()?;
            o.finish()?;
            let learn = l.inner.try_borrow().map_err(|_| script_err("the learner is busy (called from inside its own fit?)"))?;
            let (probs, targets) = learner_tta(&learn, tta).or_script()?;
            Ok(learn.named_metrics(&probs, &targets).into_iter().map(|(k, v)| (k.into(), v.into())).collect())
        }
    );
}

/// The prototypical network's math on tensors, for scripts that write their own.
fn register_prototype_math(engine: &mut Engine) {
    reg!(
        engine,
        "prototypes",
        ["support: Tensor", "n_way: i64", "Tensor"],
        "Class prototypes [N, D]: the means of support embeddings [N * K, D] ordered class-major.",
        |s: ScriptTensor, n: i64| -> RhaiResult<ScriptTensor> { Ok(ScriptTensor::new(prototypes(&tensor_arg(&s), n.max(0) as usize).or_script()?)) }
    );
    reg!(
        engine,
        "proto_logits",
        ["prototypes: Tensor", "queries: Tensor", "metric: String", "Tensor"],
        "[Q, N] closeness of queries [Q, D] to prototypes [N, D]: cosine, or euclidean (minus the squared distance).",
        |p: ScriptTensor, q: ScriptTensor, metric: &str| -> RhaiResult<ScriptTensor> {
            let metric: Metric = metric.parse().or_script()?;
            Ok(ScriptTensor::new(proto_logits(&tensor_arg(&p), &tensor_arg(&q), metric)))
        }
    );
    reg!(
        engine,
        "proto_loss",
        ["support: Tensor", "queries: Tensor", "query_y: Tensor", "n_way: i64", "metric: String", "scale: f64", "Tensor"],
        "The prototypical loss of one episode: cross-entropy of scale * proto_logits against each query's class.",
        |s: ScriptTensor, q: ScriptTensor, y: ScriptTensor, n: i64, metric: &str, scale: f64| -> RhaiResult<ScriptTensor> {
            let metric: Metric = metric.parse().or_script()?;
            let y = crate::learn::data::as_targets(&tensor_arg(&y), crate::learn::TargetKind::Classes);
            Ok(ScriptTensor::new(proto_loss(&tensor_arg(&s), &tensor_arg(&q), &y, n.max(0) as usize, metric, scale).or_script()?))
        }
    );
}
