//! Data-block bindings: files, labels, splitters, pairs, tables and loaders for scripts.
//! Thin: convert arguments and options, call `crate::data`, position errors at the call.
//! Output paths (show_batch, to_csv) that are relative land in the run folder; input paths
//! are relative to the working directory.
use super::args::{script_err, to_string, Opts, OrScript, RhaiResult};
use super::ctx::ScriptCtx;
use super::options;
use crate::data::augment::AugTransforms;
use crate::data::blocks::{episode_loaders, TableColumns};
use crate::data::labels::{self, label_all, Labeller};
use crate::data::sampler::EpisodeLayout;
use crate::data::splitters::{self, Split};
use crate::data::table::{Column, Table, Value};
use crate::data::targets::{TargetBlock, TargetKind};
use crate::data::{blocks, datasets, files, oneshot, pairs, DataLoaders, LoaderConfig};
use crate::reg;
use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Loaders shared by handle: Rhai clones values, the loaders (threads, caches) must not be.
#[derive(Clone)]
pub struct ScriptDataLoaders(pub Rc<DataLoaders>);

/// A table shared by handle, so that passing it around copies nothing.
#[derive(Clone)]
pub struct ScriptTable(pub Rc<Table>);

/// A labeller: built in (regex, parent folder) or a script closure `|file| ...`.
#[derive(Clone)]
pub struct ScriptLabel(Labeller);

#[derive(Clone)]
pub struct ScriptSplits(pub Split);

fn table(t: Table) -> ScriptTable {
    ScriptTable(Rc::new(t))
}

fn paths(files: &Array) -> RhaiResult<Vec<PathBuf>> {
    files.iter().map(|f| to_string(f, "file").map(PathBuf::from)).collect()
}

fn strings(v: Vec<PathBuf>) -> Array {
    v.into_iter().map(|p| Dynamic::from(p.display().to_string())).collect()
}

/// Labels from a `Label` or a closure `|file| label`, as text.
fn labels_of(ctx: &NativeCallContext, files: &[PathBuf], label: &Dynamic) -> RhaiResult<Vec<String>> {
    Ok(match label_column(ctx, files, label)? {
        Column::Str(v) => v,
        col => (0..col.len()).map(|i| col.get(i).to_string()).collect(),
    })
}

/// Labels as a table column: text, or numbers when a closure returns numbers for every
/// file (floats regress, integers are classes in numeric order).
fn label_column(ctx: &NativeCallContext, files: &[PathBuf], label: &Dynamic) -> RhaiResult<Column> {
    if let Some(l) = label.clone().try_cast::<ScriptLabel>() {
        return label_all(files, |f| l.0.label(f)).map(Column::Str).or_script();
    }
    let Some(fp) = label.clone().try_cast::<FnPtr>() else {
        return Err(script_err(format!("label must be regex_label(..), parent_label() or a closure |file| .., got {}", label.type_name())));
    };
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        out.push(fp.call_within_context::<Dynamic>(ctx, (Dynamic::from(f.display().to_string()),))?);
    }
    Ok(if !out.is_empty() && out.iter().all(|v| v.is_float()) {
        Column::Float(out.iter().map(|v| v.as_float().unwrap_or(f64::NAN)).collect())
    } else if !out.is_empty() && out.iter().all(|v| v.is_int()) {
        Column::Int(out.iter().map(|v| v.as_int().unwrap_or_default()).collect())
    } else {
        Column::Str(out.iter().map(|v| v.to_string()).collect())
    })
}

fn value(v: Value) -> Dynamic {
    match v {
        Value::Str(s) => s.into(),
        Value::Int(i) => i.into(),
        Value::Float(f) => f.into(),
        Value::Bool(b) => b.into(),
    }
}

/// Script values as one typed column: all true/false, all integers, all numbers or all
/// strings; anything else is refused naming the first odd value.
fn column_of(values: Vec<Dynamic>, what: &str) -> RhaiResult<Column> {
    let all = |f: fn(&Dynamic) -> bool| values.iter().all(f);
    if all(|v| v.is_bool()) {
        return Ok(Column::Bool(values.iter().map(|v| v.as_bool().unwrap_or_default()).collect()));
    }
    if all(|v| v.is_int()) {
        return Ok(Column::Int(values.iter().map(|v| v.as_int().unwrap_or_default()).collect()));
    }
    if all(|v| v.is_int() || v.is_float()) {
        return Ok(Column::Float(values.iter().map(|v| v.as_float().or_else(|_| v.as_int().map(|i| i as f64)).unwrap_or_default()).collect()));
    }
    if all(|v| v.is_string()) {
        return Ok(Column::Str(values.iter().map(|v| v.to_string()).collect()));
    }
    let odd = values.iter().position(|v| v.type_name() != values[0].type_name()).unwrap_or(0);
    Err(script_err(format!(
        "{what}: a column holds one type (bool, integer, number or string); value {odd} is {} `{}` after {}",
        values[odd].type_name(),
        values[odd],
        values[0].type_name()
    )))
}

fn row_map(t: &Table, i: usize) -> Map {
    t.row(i).into_iter().map(|(n, v)| (n.into(), value(v))).collect()
}

/// Calls a closure that must answer true or false, once per item.
fn flags(ctx: &NativeCallContext, fp: &FnPtr, args: impl Iterator<Item = Dynamic>, what: &str) -> RhaiResult<Vec<bool>> {
    args.map(|a| {
        let r: Dynamic = fp.call_within_context(ctx, (a,))?;
        r.as_bool().map_err(|t| script_err(format!("{what} closure must return true or false, got {t}")))
    })
    .collect()
}

/// The loader options the function's table lists (episode loaders take no `bs`); the run's
/// seed unless given, the run's device.
fn loader_config(ctx: &ScriptCtx, o: &mut Opts) -> RhaiResult<LoaderConfig> {
    let mut cfg = LoaderConfig { seed: ctx.seed, device: ctx.device, ..LoaderConfig::default() };
    o.fill(&mut cfg)?;
    Ok(cfg)
}

pub fn register(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    engine.register_type_with_name::<ScriptDataLoaders>("DataLoaders");
    engine.register_type_with_name::<ScriptTable>("Table");
    engine.register_type_with_name::<ScriptLabel>("Label");
    engine.register_type_with_name::<ScriptSplits>("Splits");
    register_datasets(engine, ctx);
    register_augment(engine);
    register_image_files(engine);
    register_labels(engine);
    register_random_splitters(engine, ctx);
    register_rule_splitters(engine);
    register_splits(engine);
    register_table_building(engine, ctx);
    register_table_rows(engine, ctx);
    register_table_io(engine, ctx);
    register_loader_kinds(engine, ctx);
    register_loader_views(engine, ctx);
}

/// Known data sets: found or downloaded, checked, recorded.
fn register_datasets(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    // Every data set resolved is recorded in run.toml (folder, file count, fingerprint).
    let untar = move |name: &str, opts: datasets::Fetch| -> RhaiResult<String> {
        let store = datasets::Store::from_env();
        let fetch = || datasets::untar_data(name, &opts, &store);
        // In a data-parallel run rank 0 fetches first, the others wait and find it there.
        let found = match c.session.as_ref().and_then(|s| s.group.as_ref()) {
            Some(g) => g.rank0_first(fetch),
            None => fetch(),
        }
        .or_script()?;
        if let Some(session) = &c.session {
            let used = crate::track::DataUse::scan(&found.name, &found.folder, found.source).or_script()?;
            session.record_data(used).or_script()?;
        }
        Ok(found.folder.display().to_string())
    };
    // Inside a run, Ctrl-C and SIGTERM stop a download at once.
    let stop: fn() -> Option<&'static str> = if ctx.session.is_some() { crate::session::interrupt_signal } else { || None };
    let u = untar.clone();
    reg!(engine, "untar_data", ["name: String", "String"],
        "Folder of a known data set (pets, orl_faces, omniglot_small1, omniglot_small2, omniglot_runs) or an archive URL; found in RUNNER_DATA or downloaded, sha256-checked, extracted; recorded in run.toml (files, fingerprint). Offline, pets falls back to a bundled 148-photo sample, with a warning.",
        move |name: &str| u(name, datasets::Fetch { stop, ..Default::default() }));
    reg!(
        engine,
        "untar_data",
        ["name: String", "options: Map", "String"],
        "untar_data with options (see Options below): the archive's sha256, how far it may expand, how slow its download may be.",
        move |name: &str, opts: Map| -> RhaiResult<String> {
            let mut o = Opts::new(&options::UNTAR_DATA, opts);
            let bytes = |o: &mut Opts, key: &str| -> RhaiResult<u64> {
                let v = o.i64(key)?;
                u64::try_from(v).map_err(|_| script_err(format!("untar_data option `{key}` must not be negative, got {v}")))
            };
            let fetch = datasets::Fetch {
                sha256: o.opt_string("sha256")?,
                archive: crate::data::archive::Limits {
                    max_bytes: bytes(&mut o, "max_bytes")?,
                    max_entry_bytes: bytes(&mut o, "max_entry_bytes")?,
                    max_ratio: o.f64("max_ratio")?,
                },
                download: crate::data::download::Limits { timeout_s: o.f64("timeout_s")?, min_rate: o.f64("min_rate")? },
                stop,
            };
            o.finish()?;
            untar(name, fetch)
        }
    );
    reg!(
        engine,
        "datasets",
        ["Table"],
        "The data sets untar_data knows: name, folder, url, sha256 (empty where unknown), layout.",
        || -> RhaiResult<ScriptTable> {
            use crate::data::table::Column;
            let col = |f: fn(&datasets::Dataset) -> &str| Column::Str(datasets::REGISTRY.iter().map(|d| f(d).to_string()).collect());
            Table::new(vec![
                ("name".into(), col(|d| d.name)),
                ("folder".into(), col(|d| d.folder)),
                ("url".into(), col(|d| d.url)),
                ("sha256".into(), col(|d| d.sha256.unwrap_or(""))),
                ("layout".into(), col(|d| d.layout)),
            ])
            .map(table)
            .or_script()
        }
    );
}

/// How scripts name a kind of target.
fn target_kind_name(k: TargetKind) -> &'static str {
    match k {
        TargetKind::Classes => "classes",
        TargetKind::Floats => "floats",
        TargetKind::MultiHot => "multi_hot",
    }
}

/// fastai's augmentation preset, as loader options.
fn register_augment(engine: &mut Engine) {
    let preset = |opts: Map| -> RhaiResult<Map> {
        let mut aug = AugTransforms::default();
        let mut o = Opts::new(&options::AUG_TRANSFORMS, opts);
        o.fill(&mut aug)?;
        o.finish()?;
        aug.augment().check().or_script()?;
        Ok(aug.loader_options().into_iter().map(|(k, v)| (k.into(), super::args::dynamic(&v))).collect())
    };
    reg!(engine, "aug_transforms", ["Map"],
        "fastai's aug_transforms() with its defaults (flip, rotate 10, zoom 1..1.1, warp 0.2, lighting 0.2, p 0.75) as loader options: `image_loaders(t, aug_transforms(#{ size: 224 }) + #{ item_size: 460, bs: 64 })`.",
        move || preset(Map::new()));
    reg!(
        engine,
        "aug_transforms",
        ["options: Map", "Map"],
        "aug_transforms with fastai's keys (see Options below); with the loaders' item_size larger than size, fastai's presizing.",
        preset
    );
}

/// Image files under folders, the unreadable ones, and Omniglot's one-shot runs.
fn register_image_files(engine: &mut Engine) {
    let find = |roots: Vec<PathBuf>| -> RhaiResult<Array> {
        let found = files::get_image_files(&roots).or_script()?;
        if found.duplicates > 0 {
            tracing::info!("get_image_files: {} duplicate(s) by relative path dropped", found.duplicates);
        }
        Ok(strings(found.files))
    };
    reg!(
        engine,
        "get_image_files",
        ["path: String", "Array"],
        "Image files (jpg, png, pgm, bmp, webp, ...) under a folder, recursively, sorted.",
        move |path: &str| find(vec![PathBuf::from(path)])
    );
    reg!(
        engine,
        "get_image_files",
        ["paths: Array", "Array"],
        "Image files under several folders; a file whose path relative to its folder was already found is skipped (overlapping sets count once).",
        move |roots: Array| find(paths(&roots)?)
    );
    reg!(
        engine,
        "image_size",
        ["file: String", "Array"],
        "[width, height] of an image file in pixels, from its header (PIL's `Image.open(f).size`).",
        |file: &str| -> RhaiResult<Array> {
            let (w, h) = crate::data::image::image_size(Path::new(file)).or_script()?;
            Ok(vec![Dynamic::from(w as i64), Dynamic::from(h as i64)])
        }
    );
    reg!(
        engine,
        "verify_images",
        ["files: Array", "Array"],
        "The files that cannot be opened as images (fastai's verify_images), decoded in parallel.",
        |files: Array| -> RhaiResult<Array> { Ok(strings(crate::data::image::verify_images(&paths(&files)?))) }
    );
    reg!(
        engine,
        "read_oneshot_runs",
        ["dir: String", "Array"],
        "The 20 Omniglot one-shot runs of an extracted all_runs folder: `#{name, support: [files], queries: [[file, support index]]}` each.",
        |dir: &str| -> RhaiResult<Array> {
            let runs = oneshot::read_oneshot_runs(Path::new(dir)).or_script()?;
            Ok(runs
                .into_iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert("name".into(), r.name.into());
                    m.insert("support".into(), Dynamic::from_array(strings(r.support)));
                    let q: Array =
                        r.queries.into_iter().map(|(f, i)| Dynamic::from_array(vec![f.display().to_string().into(), (i as i64).into()])).collect();
                    m.insert("queries".into(), Dynamic::from_array(q));
                    Dynamic::from_map(m)
                })
                .collect())
        }
    );
}

/// Labels of files: built in, or a closure.
fn register_labels(engine: &mut Engine) {
    reg!(
        engine,
        "regex_label",
        ["pattern: String", "Label"],
        "Label = first capture group (or the whole match) of a regex on the file name, e.g. `^(.*)_\\d+\\.jpg$`.",
        |pattern: &str| -> RhaiResult<ScriptLabel> { Labeller::regex(pattern).map(ScriptLabel).or_script() }
    );
    reg!(engine, "parent_label", ["Label"], "Label = the parent folder's name.", || ScriptLabel(Labeller::Parent(1)));
    reg!(
        engine,
        "parent_label",
        ["levels: i64", "Label"],
        "Label = the last `levels` folder names joined with `/` (2: `Greek/character03`).",
        |levels: i64| -> RhaiResult<ScriptLabel> { Labeller::parent(levels.max(0) as usize).map(ScriptLabel).or_script() }
    );
    reg!(
        engine,
        "file_name",
        ["path: String", "String"],
        "The last part of a path (fastai's `Path.name`): `file_name(\"/d/images/pug_12.jpg\") == \"pug_12.jpg\"`; label closures get whole paths.",
        |path: &str| labels::file_name(Path::new(path))
    );
    reg!(
        engine,
        "parent_name",
        ["path: String", "String"],
        "The name of the folder holding a path (fastai's `Path.parent.name`): `parent_name(\"/d/s7/3.pgm\") == \"s7\"`.",
        |path: &str| labels::parent_name(Path::new(path))
    );
    reg!(
        engine,
        "get_labels",
        ["files: Array", "label: Label | Fn", "Array"],
        "The label of every file, from a Label or a closure `|file| ...`; the closure gets the whole path, as fastai's label functions do (`|f| file_name(f)` for the name).",
        |ctx: NativeCallContext, files: Array, label: Dynamic| -> RhaiResult<Array> {
            Ok(labels_of(&ctx, &paths(&files)?, &label)?.into_iter().map(Dynamic::from).collect())
        }
    );
}

/// Seeded random splits, of items or of whole groups.
fn register_random_splitters(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "random_splitter",
        ["files: Array", "options: Map", "Splits"],
        "fastai's RandomSplitter: shuffled (seeded), the first int(valid_pct * n) are valid. Options: see Options below.",
        move |files: Array, opts: Map| -> RhaiResult<ScriptSplits> {
            let mut o = Opts::new(&options::RANDOM_SPLITTER, opts);
            let (pct, seed) = (o.f64("valid_pct")?, o.opt_u64("seed")?.unwrap_or(c.seed));
            o.finish()?;
            splitters::random_splitter(files.len(), pct, seed).map(ScriptSplits).or_script()
        }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "random_splitter",
        ["t: Table", "options: Map", "Splits"],
        "random_splitter over a table's rows (one read by read_csv): `t.with_column(\"is_valid\", random_splitter(t, #{ valid_pct: 0.2 }))`.",
        move |t: &mut ScriptTable, opts: Map| -> RhaiResult<ScriptSplits> {
            let mut o = Opts::new(&options::RANDOM_SPLITTER, opts);
            let (pct, seed) = (o.f64("valid_pct")?, o.opt_u64("seed")?.unwrap_or(c.seed));
            o.finish()?;
            splitters::random_splitter(t.0.len(), pct, seed).map(ScriptSplits).or_script()
        }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "group_splitter",
        ["files: Array", "group: Label | Fn", "options: Map", "Splits"],
        "Whole groups (e.g. a person: parent_label()) go to the validation set: int(valid_pct * n_groups) random groups. Options: see Options below.",
        move |ctx: NativeCallContext, files: Array, group: Dynamic, opts: Map| -> RhaiResult<ScriptSplits> {
            let mut o = Opts::new(&options::GROUP_SPLITTER, opts);
            let (pct, seed) = (o.f64("valid_pct")?, o.opt_u64("seed")?.unwrap_or(c.seed));
            o.finish()?;
            let groups = labels_of(&ctx, &paths(&files)?, &group)?;
            splitters::group_splitter(&groups, pct, seed).map(ScriptSplits).or_script()
        }
    );
}

/// Splits by folder names, a closure or a column.
fn register_rule_splitters(engine: &mut Engine) {
    let folder_split = |table: &'static options::OptTable, level: usize| {
        move |files: Array, opts: Map| -> RhaiResult<ScriptSplits> {
            let mut o = Opts::new(table, opts);
            let (t, v) = (o.string("train_name")?, o.string("valid_name")?);
            o.finish()?;
            splitters::folder_splitter(&paths(&files)?, level, &t, &v).map(ScriptSplits).or_script()
        }
    };
    reg!(engine, "grandparent_splitter", ["files: Array", "options: Map", "Splits"],
        "fastai's GrandparentSplitter: valid when the grandparent folder is `valid_name` (\"valid\"), train when `train_name` (\"train\"); any other is an error.",
        folder_split(&options::GRANDPARENT_SPLITTER, 2));
    reg!(
        engine,
        "parent_splitter",
        ["files: Array", "options: Map", "Splits"],
        "Like grandparent_splitter, on the parent folder's name. Options: see Options below.",
        folder_split(&options::PARENT_SPLITTER, 1)
    );
    reg!(
        engine,
        "func_splitter",
        ["files: Array", "is_valid: Fn", "Splits"],
        "fastai's FuncSplitter: valid where the closure `|file| ...` returns true.",
        |ctx: NativeCallContext, files: Array, f: FnPtr| -> RhaiResult<ScriptSplits> {
            Ok(ScriptSplits(Split { is_valid: flags(&ctx, &f, files.into_iter(), "func_splitter")? }))
        }
    );
    reg!(
        engine,
        "col_splitter",
        ["t: Table", "column: String", "Splits"],
        "fastai's ColSplitter: valid where the column is true (true/false, pandas' True/False or 1/0).",
        |t: &mut ScriptTable, col: &str| -> RhaiResult<ScriptSplits> { Ok(ScriptSplits(Split { is_valid: t.0.bools(col).or_script()?.to_vec() })) }
    );
}

/// What a split holds.
fn register_splits(engine: &mut Engine) {
    reg!(engine, "get$train", ["s: Splits", "Array"], "`splits.train`: indices of the training items.", |s: &mut ScriptSplits| -> Array {
        s.0.train().into_iter().map(|i| Dynamic::from(i as i64)).collect()
    });
    reg!(engine, "get$valid", ["s: Splits", "Array"], "`splits.valid`: indices of the validation items.", |s: &mut ScriptSplits| -> Array {
        s.0.valid().into_iter().map(|i| Dynamic::from(i as i64)).collect()
    });
    reg!(engine, "len", ["s: Splits", "i64"], "Number of items split.", |s: &mut ScriptSplits| s.0.len() as i64);
    reg!(engine, "to_string", ["s: Splits", "String"], "`Splits(train N, valid M)`, for print.", |s: &mut ScriptSplits| format!(
        "Splits(train {}, valid {})",
        s.0.train().len(),
        s.0.valid().len()
    ));
}

/// Tables of items: classification rows, pairs, turned copies, stacked tables.
fn register_table_building(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(engine, "siamese_pairs", ["files: Array", "splits: Splits", "label: Label | Fn", "options: Map", "Table"],
        "One pair per file, partner from the same split: same class with probability p_same (0.5), else a random other class present in the split; never the file itself while its class has another image. Columns file1, file2, class1, class2, label (true = same), is_valid. Options: see Options below.",
        move |ctx: NativeCallContext, files: Array, s: ScriptSplits, label: Dynamic, opts: Map| -> RhaiResult<ScriptTable> {
            let mut o = Opts::new(&options::SIAMESE_PAIRS, opts);
            let (p_same, seed) = (o.f64("p_same")?, o.opt_u64("seed")?.unwrap_or(c.seed));
            o.finish()?;
            let files = paths(&files)?;
            let labels = labels_of(&ctx, &files, &label)?;
            let (t, fb) = pairs::siamese_pairs(&files, &labels, &s.0, p_same, seed).or_script()?;
            if fb.total() > 0 {
                tracing::warn!("siamese_pairs: {}", fb.describe());
            }
            Ok(table(t))
        });
    reg!(
        engine,
        "image_table",
        ["files: Array", "label: Label | Fn", "splits: Splits", "Table"],
        "A labelled table: columns file, label, is_valid. A closure that returns floats gives a float label column (regression); integers, classes in numeric order.",
        |ctx: NativeCallContext, files: Array, label: Dynamic, s: ScriptSplits| -> RhaiResult<ScriptTable> {
            let files = paths(&files)?;
            s.0.check_len(files.len(), "the file list").or_script()?;
            let labels = label_column(&ctx, &files, &label)?;
            crate::data::blocks::image_table(&files, labels, &s.0).map(table).or_script()
        }
    );
    reg!(
        engine,
        "with_column",
        ["t: Table", "name: String", "values: Array", "Table"],
        "pandas' `df[name] = values`: the table with the column added (or replaced); one value per row, all of one type.",
        |t: &mut ScriptTable, name: &str, values: Array| -> RhaiResult<ScriptTable> {
            let col = column_of(values, &format!("with_column(`{name}`)"))?;
            t.0.with_column(name, col).map(table).or_script()
        }
    );
    reg!(
        engine,
        "with_column",
        ["t: Table", "name: String", "value: Fn", "Table"],
        "The column computed per row by `|r| ...` (`r` a map of the row): `t.with_column(\"name\", |r| file_name(r.file))`.",
        |ctx: NativeCallContext, t: &mut ScriptTable, name: &str, f: FnPtr| -> RhaiResult<ScriptTable> {
            let values =
                (0..t.0.len()).map(|i| f.call_within_context(&ctx, (Dynamic::from_map(row_map(&t.0, i)),))).collect::<RhaiResult<Vec<Dynamic>>>()?;
            let col = column_of(values, &format!("with_column(`{name}`)"))?;
            t.0.with_column(name, col).map(table).or_script()
        }
    );
    reg!(
        engine,
        "with_column",
        ["t: Table", "name: String", "splits: Splits", "Table"],
        "A split's validation flags as a true/false column (`is_valid`, as image_loaders reads it).",
        |t: &mut ScriptTable, name: &str, s: ScriptSplits| -> RhaiResult<ScriptTable> {
            s.0.check_len(t.0.len(), "the table").or_script()?;
            t.0.with_column(name, Column::Bool(s.0.is_valid)).map(table).or_script()
        }
    );
    reg!(
        engine,
        "quarter_turns",
        ["t: Table", "label: String", "Table"],
        "Each row 4 times, turned 0/90/180/270 degrees (column turns, read by image_loaders), each turn its own class (label/rot90...).",
        |t: &mut ScriptTable, label: &str| -> RhaiResult<ScriptTable> { t.0.quarter_turns(label).map(table).or_script() }
    );
    reg!(
        engine,
        "concat",
        ["tables: Array", "Table"],
        "Tables with the same columns, stacked in order.",
        |tables: Array| -> RhaiResult<ScriptTable> {
            let ts: Vec<Table> = tables
                .into_iter()
                .map(|t| t.try_cast::<ScriptTable>().map(|t| (*t.0).clone()).ok_or_else(|| script_err("concat takes an array of tables")))
                .collect::<RhaiResult<_>>()?;
            Table::concat(&ts).map(table).or_script()
        }
    );
}

/// Looking at and choosing a table's rows.
fn register_table_rows(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    reg!(engine, "len", ["t: Table", "i64"], "Number of rows.", |t: &mut ScriptTable| t.0.len() as i64);
    reg!(engine, "head", ["t: Table", "Table"], "The first 5 rows.", |t: &mut ScriptTable| table(t.0.head(5)));
    reg!(engine, "head", ["t: Table", "n: i64", "Table"], "The first n rows.", |t: &mut ScriptTable, n: i64| -> RhaiResult<ScriptTable> {
        Ok(table(t.0.head(super::args::to_usize(&Dynamic::from(n), "head(n): n")?)))
    });
    reg!(
        engine,
        "value_counts",
        ["t: Table", "column: String", "Table"],
        "Each distinct value of a column and its count, most frequent first.",
        |t: &mut ScriptTable, col: &str| -> RhaiResult<ScriptTable> { t.0.value_counts(col).map(table).or_script() }
    );
    reg!(
        engine,
        "filter",
        ["t: Table", "keep: Fn", "Table"],
        "The rows for which `|r| ...` returns true; `r` is a map of the row (`r.is_valid`).",
        |ctx: NativeCallContext, t: &mut ScriptTable, f: FnPtr| -> RhaiResult<ScriptTable> {
            let keep = flags(&ctx, &f, (0..t.0.len()).map(|i| Dynamic::from_map(row_map(&t.0, i))), "filter")?;
            Ok(table(t.0.filter_mask(&keep)))
        }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "oversample",
        ["t: Table", "column: String", "Table"],
        "Balances a column by resampling rows of the rarer values with replacement (seeded by the run seed); added rows follow the originals.",
        move |t: &mut ScriptTable, col: &str| -> RhaiResult<ScriptTable> { t.0.oversample(col, c.seed).map(table).or_script() }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "oversample",
        ["t: Table", "column: String", "options: Map", "Table"],
        "oversample with options (see Options below).",
        move |t: &mut ScriptTable, col: &str, opts: Map| -> RhaiResult<ScriptTable> {
            let mut o = Opts::new(&options::OVERSAMPLE, opts);
            let seed = o.opt_u64("seed")?.unwrap_or(c.seed);
            o.finish()?;
            t.0.oversample(col, seed).map(table).or_script()
        }
    );
}

/// A table's values, CSV files, and printing.
fn register_table_io(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "to_csv",
        ["t: Table", "path: String", "String"],
        "Writes a CSV (relative paths: in the run folder); returns the path written.",
        move |t: &mut ScriptTable, path: &str| -> RhaiResult<String> {
            let p = c.output_path(path);
            t.0.to_csv(&p).or_script()?;
            Ok(p.display().to_string())
        }
    );
    reg!(
        engine,
        "read_csv",
        ["path: String", "Table"],
        "Reads a CSV with a header; columns typed as bool, int, float or string.",
        |path: &str| -> RhaiResult<ScriptTable> { Table::read_csv(Path::new(path)).map(table).or_script() }
    );
    reg!(
        engine,
        "read_csv",
        ["path: String", "options: Map", "Table"],
        "read_csv with fastai's from_df file options (see Options below): with `folder`, the names in fn_col become folder/name + suff (a relative folder is under the CSV's own), each checked to exist now; a missing one is named with its row.",
        |path: &str, opts: Map| -> RhaiResult<ScriptTable> {
            let mut o = Opts::new(&options::READ_CSV, opts);
            let (folder, fn_col, suff) = (o.opt_string("folder")?, o.string("fn_col")?, o.string("suff")?);
            o.finish()?;
            let path = Path::new(path);
            let t = Table::read_csv(path).or_script()?;
            match folder {
                Some(f) => t.resolve_files(&fn_col, &path.parent().unwrap_or(Path::new("")).join(f), &suff).map(table).or_script(),
                None => Ok(table(t)),
            }
        }
    );
    reg!(engine, "column", ["t: Table", "name: String", "Array"], "The values of one column.", |t: &mut ScriptTable,
                                                                                                name: &str|
     -> RhaiResult<Array> {
        let col = t.0.column(name).or_script()?;
        Ok((0..col.len()).map(|i| value(col.get(i))).collect())
    });
    reg!(engine, "row", ["t: Table", "i: i64", "Map"], "Row i as a map.", |t: &mut ScriptTable, i: i64| -> RhaiResult<Map> {
        if i < 0 || i as usize >= t.0.len() {
            return Err(script_err(format!("row {i} out of range: the table has {} rows", t.0.len())));
        }
        Ok(row_map(&t.0, i as usize))
    });
    reg!(engine, "get$columns", ["t: Table", "Array"], "`table.columns`: the column names.", |t: &mut ScriptTable| -> Array {
        t.0.names().iter().map(|n| Dynamic::from(n.clone())).collect()
    });
    reg!(engine, "to_string", ["t: Table", "String"], "The table aligned, for print (long tables show head and tail).", |t: &mut ScriptTable| t
        .0
        .to_string());
}

/// Loaders for classification tables, episodes and pairs.
fn register_loader_kinds(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    reg!(
        engine,
        "image_loaders",
        ["t: Table", "options: Map", "DataLoaders"],
        "Loaders from a table of files, labels and is_valid: classes, numbers (a float column, or regression: true) or label sets (label_delim). Options: see Options below.",
        move |t: &mut ScriptTable, opts: Map| -> RhaiResult<ScriptDataLoaders> {
            let mut o = Opts::new(&options::IMAGE_LOADERS, opts);
            let cfg = loader_config(&c, &mut o)?;
            let y = match o.get("y")? {
                Some(v) if v.is_array() => v.cast::<Array>().iter().map(|c| to_string(c, "y column")).collect::<RhaiResult<Vec<_>>>()?,
                Some(v) => vec![to_string(&v, "y")?],
                None => vec!["label".into()],
            };
            let (regression, delim) = (o.bool("regression")?, o.opt_string("label_delim")?);
            let block = match (regression, delim) {
                (true, Some(_)) => return Err(script_err("regression: true and label_delim ask for two kinds of targets: give one")),
                (true, None) => TargetBlock::Regression,
                (false, Some(d)) => TargetBlock::MultiLabel(d),
                (false, None) => TargetBlock::Auto,
            };
            let cols = TableColumns { x: o.string("x")?, y, valid_col: o.string("valid_col")?, block };
            o.finish()?;
            blocks::image_loaders(&t.0, &cols, &cfg).map(|d| ScriptDataLoaders(Rc::new(d))).or_script()
        }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "episode_loaders",
        ["t: Table", "options: Map", "DataLoaders"],
        "Episodic loaders from a classification table: every batch one N-way K-shot episode (support class-major, then queries), targets the queries' episode-local classes; training episodes drawn afresh each epoch, validation episodes once. Options: see Options below.",
        move |t: &mut ScriptTable, opts: Map| -> RhaiResult<ScriptDataLoaders> {
            let mut o = Opts::new(&options::EPISODE_LOADERS, opts);
            let cfg = loader_config(&c, &mut o)?;
            let cols = TableColumns { x: o.string("x")?, y: vec![o.string("y")?], valid_col: o.string("valid_col")?, block: TargetBlock::Auto };
            let mut layout = EpisodeLayout::default();
            o.fill(&mut layout)?;
            o.finish()?;
            episode_loaders(&t.0, &cols, &cfg, &layout).map(|d| ScriptDataLoaders(Rc::new(d))).or_script()
        }
    );
    let c = ctx.clone();
    reg!(
        engine,
        "pair_loaders",
        ["t: Table", "options: Map", "DataLoaders"],
        "Siamese loaders from a pairs table (file1, file2, label, is_valid). Options: see Options below.",
        move |t: &mut ScriptTable, opts: Map| -> RhaiResult<ScriptDataLoaders> {
            let mut o = Opts::new(&options::PAIR_LOADERS, opts);
            let mut cfg = loader_config(&c, &mut o)?;
            let redraw = o.bool("redraw")?;
            let p_same = o.f64("p_same")?;
            o.finish()?;
            cfg.redraw = redraw.then_some(p_same);
            blocks::pair_loaders(&t.0, &cfg).map(|d| ScriptDataLoaders(Rc::new(d))).or_script()
        }
    );
}

/// What loaders hold: a batch as a picture, the vocab, counts, printing.
fn register_loader_views(engine: &mut Engine, ctx: &Rc<ScriptCtx>) {
    let c = ctx.clone();
    let show = move |d: &ScriptDataLoaders, path: &str, n: i64| -> RhaiResult<String> {
        let p = c.output_path(path);
        d.0.show_batch(&p, n.max(1) as usize).or_script()?;
        Ok(p.display().to_string())
    };
    let show2 = show.clone();
    reg!(
        engine,
        "show_batch",
        ["dls: DataLoaders", "path: String", "String"],
        "Writes a PNG grid of 9 training items as the model sees them, titled by label (relative paths: in the run folder).",
        move |d: &mut ScriptDataLoaders, path: &str| show(d, path, 9)
    );
    reg!(
        engine,
        "show_batch",
        ["dls: DataLoaders", "path: String", "max_n: i64", "String"],
        "show_batch with up to max_n items.",
        move |d: &mut ScriptDataLoaders, path: &str, n: i64| show2(d, path, n)
    );
    reg!(
        engine,
        "get$vocab",
        ["dls: DataLoaders", "Array"],
        "`dls.vocab`: class names (pairs: different, same; label sets: every label; numbers: the label columns' names).",
        |d: &mut ScriptDataLoaders| -> Array { d.0.vocab.iter().map(|v| Dynamic::from(v.clone())).collect() }
    );
    reg!(
        engine,
        "get$target_kind",
        ["dls: DataLoaders", "String"],
        "`dls.target_kind`: classes, floats (numbers to regress) or multi_hot (label sets).",
        |d: &mut ScriptDataLoaders| -> String { target_kind_name(d.0.targets.kind).into() }
    );
    reg!(engine, "get$n_train", ["dls: DataLoaders", "i64"], "`dls.n_train`: training items.", |d: &mut ScriptDataLoaders| d.0.train.n_items()
        as i64);
    reg!(engine, "get$n_valid", ["dls: DataLoaders", "i64"], "`dls.n_valid`: validation items.", |d: &mut ScriptDataLoaders| d.0.valid.n_items()
        as i64);
    reg!(engine, "get$skipped", ["dls: DataLoaders", "i64"], "`dls.skipped`: items dropped by skip_bad.", |d: &mut ScriptDataLoaders| d.0.skipped
        as i64);
    reg!(engine, "to_string", ["dls: DataLoaders", "String"], "Items, batches, size and normalisation, for print.", |d: &mut ScriptDataLoaders| {
        let d = &d.0;
        format!(
            "DataLoaders({} input{}, {} {}, train {} items / {} batches of {}, valid {} items / {} batches, {}x{}x{}, mean {:?}, std {:?})",
            d.n_inputs,
            if d.n_inputs > 1 { "s" } else { "" },
            d.vocab.len(),
            match d.targets.kind {
                TargetKind::Classes => "classes",
                TargetKind::MultiHot => "labels (multi-hot)",
                TargetKind::Floats => "number(s) to regress",
            },
            d.train.n_items(),
            d.train.len(),
            d.train.batch_size(),
            d.valid.n_items(),
            d.valid.len(),
            d.channels,
            d.size,
            d.size,
            d.mean,
            d.std
        )
    });
}
