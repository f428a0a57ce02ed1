//! Every options map a script function takes, in one table per function: key, type,
//! default and meaning. `Opts` reads keys through these tables (a key missing from its
//! table is a bug that any call of the function reveals), rejects keys that are not in
//! them, and takes defaults from them; `runner api` prints them into docs/API.md. So what
//! a function accepts, what the reference says and what the error lists cannot differ.
//! Options that configure a plain-API struct are declared with that struct (`crate::opts`)
//! and listed here by group; the rest are rows read key by key by their binding.
use crate::data::augment::AugTransforms;
use crate::data::episodes::EpisodeSpec;
use crate::data::sampler::EpisodeLayout;
use crate::data::LoaderConfig;
use crate::learn::fit::{EarlyStop, FitOptions};
use crate::learn::lr_find::LrFindOptions;
use crate::learn::schedule::OneCycle;
use crate::model::convnet::ConvNetSpec;
use crate::model::head::HeadSpec;
use crate::model::ProtoShape;
use crate::opts::Options;
pub use crate::opts::{Def, Opt};

use crate::data::{archive, download};

/// A group of options: rows the binding reads key by key, or a declared options struct's
/// (`crate::opts`), less the keys this function does not take.
pub enum Group {
    Keys(&'static [Opt]),
    Of(fn() -> Vec<Opt>, &'static [&'static str]),
}

/// The options of one function, in groups shared between functions (the loaders').
pub struct OptTable {
    pub function: &'static str,
    pub groups: &'static [Group],
}

impl OptTable {
    pub fn rows(&self) -> Vec<Opt> {
        let group = |g: &Group| match g {
            Group::Keys(rows) => rows.to_vec(),
            Group::Of(rows, less) => rows().into_iter().filter(|o| !less.contains(&o.key)).collect(),
        };
        self.groups.iter().flat_map(group).collect()
    }
}

const fn opt(key: &'static str, ty: &'static str, default: Def, doc: &'static str) -> Opt {
    Opt { key, ty, default, doc }
}

const SEED: Opt = opt("seed", "i64", Def::text("the run's seed"), "the seed of this step's random choices");

/// Every loader's options; episode loaders have no batch size (a batch is an episode).
const LOADER: Group = Group::Of(LoaderConfig::table, &[]);
const EPISODE_LOADER: Group = Group::Of(LoaderConfig::table, &["bs", "val_bs"]);

const X_COL: Opt = opt("x", "String", Def::s("file"), "the column of image files");
const VALID_COL: Opt = opt("valid_col", "String", Def::s("is_valid"), "the true/false column that marks validation rows");
const TABLE_COLUMNS: &[Opt] = &[X_COL, opt("y", "String", Def::s("label"), "the column of labels"), VALID_COL];

/// How image loaders read their label column(s) (episodes need classes).
const TARGET_COLUMNS: &[Opt] = &[
    opt(
        "regression",
        "bool",
        Def::B(false),
        "numbers to regress (fastai's RegressionBlock), whatever the column's type; a float column regresses without it",
    ),
    opt("label_delim", "String", Def::None, "several labels per item, split on this (fastai's MultiCategoryBlock, e.g. \" \"): multi-hot targets"),
];

pub const IMAGE_LOADERS: OptTable = OptTable {
    function: "image_loaders",
    groups: &[
        LOADER,
        Group::Keys(&[
            X_COL,
            opt("y", "String | Array", Def::s("label"), "the column of labels (an array of columns: several numbers to regress, one output each)"),
            VALID_COL,
        ]),
        Group::Keys(TARGET_COLUMNS),
    ],
};

pub const EPISODE_LOADERS: OptTable =
    OptTable { function: "episode_loaders", groups: &[EPISODE_LOADER, Group::Keys(TABLE_COLUMNS), Group::Of(EpisodeLayout::table, &[])] };

pub const PAIR_LOADERS: OptTable = OptTable {
    function: "pair_loaders",
    groups: &[
        LOADER,
        Group::Keys(&[
            opt("redraw", "bool", Def::B(false), "draw new training pairs every epoch"),
            opt("p_same", "f64", Def::F(0.5), "with redraw: the share of same-class pairs"),
        ]),
    ],
};

pub const UNTAR_DATA: OptTable = OptTable {
    function: "untar_data",
    groups: &[Group::Keys(&[
        opt("sha256", "String", Def::None, "the expected sha256 of the archive"),
        opt("max_bytes", "i64", Def::I(archive::DEFAULT_MAX_BYTES as i64), "the most bytes the archive may expand to (200 GiB)"),
        opt("max_entry_bytes", "i64", Def::I(archive::DEFAULT_MAX_ENTRY_BYTES as i64), "the most bytes one member may expand to (16 GiB)"),
        opt(
            "max_ratio",
            "f64",
            Def::F(archive::DEFAULT_MAX_RATIO),
            "the most the archive may expand to, as a multiple of its size (one under 1 MiB counts as 1 MiB)",
        ),
        opt(
            "timeout_s",
            "f64",
            Def::F(download::DEFAULT_TIMEOUT_S),
            "a download fails when connecting takes longer, or when less than min_rate arrives over this many seconds",
        ),
        opt("min_rate", "f64", Def::F(download::DEFAULT_MIN_RATE), "the slowest download accepted, in bytes per second over each timeout_s"),
    ])],
};

pub const RANDOM_SPLITTER: OptTable = OptTable {
    function: "random_splitter",
    groups: &[Group::Keys(&[opt("valid_pct", "f64", Def::F(0.2), "the share of items held out for validation"), SEED])],
};

pub const AUG_TRANSFORMS: OptTable = OptTable { function: "aug_transforms", groups: &[Group::Of(AugTransforms::table, &[])] };

pub const READ_CSV: OptTable = OptTable {
    function: "read_csv",
    groups: &[Group::Keys(&[
        opt("folder", "String", Def::None, "the folder the file names are relative to (fastai's path/folder; a relative one is under the CSV's folder, \".\" is that folder); given, every file is checked now"),
        opt("fn_col", "String", Def::s("file"), "with folder: the column of file names"),
        opt("suff", "String", Def::s(""), "with folder: appended to every file name (fastai's suff, e.g. \".jpg\")"),
    ])],
};

pub const GROUP_SPLITTER: OptTable = OptTable {
    function: "group_splitter",
    groups: &[Group::Keys(&[opt("valid_pct", "f64", Def::F(0.2), "the share of groups held out for validation (whole groups)"), SEED])],
};

const FOLDER_NAMES: &[Opt] = &[
    opt("train_name", "String", Def::s("train"), "the training folder's name"),
    opt("valid_name", "String", Def::s("valid"), "the validation folder's name"),
];

pub const GRANDPARENT_SPLITTER: OptTable = OptTable { function: "grandparent_splitter", groups: &[Group::Keys(FOLDER_NAMES)] };
pub const PARENT_SPLITTER: OptTable = OptTable { function: "parent_splitter", groups: &[Group::Keys(FOLDER_NAMES)] };

pub const SIAMESE_PAIRS: OptTable =
    OptTable { function: "siamese_pairs", groups: &[Group::Keys(&[opt("p_same", "f64", Def::F(0.5), "the share of same-class pairs"), SEED])] };

pub const OVERSAMPLE: OptTable = OptTable { function: "oversample", groups: &[Group::Keys(&[SEED])] };

const BODY_KEYS: Group = Group::Keys(&[
        opt("cut", "i64", Def::I(-2), "where to cut the torchvision model (fastai's cut; -2 drops pooling and the classifier)"),
        opt("weights", "String", Def::text("the arch's ImageNet weights"), "a weights file (.pth as torch.save writes it, or .safetensors), a URL (downloaded once into the runner's cache; a sha256 prefix in its name is checked) or one of the arch's tags (IMAGENET1K_V1, ...)"),
        opt("pretrained", "bool | String", Def::B(true), "false: random init, quietly; \"required\": an error when the default weights can be neither found nor downloaded (as RUNNER_REQUIRE_WEIGHTS=1), which otherwise warns and starts from random init"),
    ]);

pub const CREATE_BODY: OptTable = OptTable { function: "create_body", groups: &[BODY_KEYS] };

pub const CONVNET: OptTable = OptTable { function: "convnet", groups: &[Group::Of(ConvNetSpec::table, &[])] };

pub const CREATE_HEAD: OptTable = OptTable { function: "create_head", groups: &[Group::Of(HeadSpec::table, &[])] };

pub const CLASSIFIER_MODEL: OptTable = OptTable {
    function: "classifier_model",
    groups: &[Group::Keys(&[
        opt("scale", "f64", Def::F(20.0), "the cosine head's logit scale"),
        opt("margin", "f64", Def::F(0.0), "CosFace's additive cosine margin m: training takes scale * m off each image's own-class logit"),
        opt("arc_margin", "f64", Def::F(0.0), "ArcFace's additive angular margin m (radians): training scores each image's own class at scale * cos(theta + m); one of margin and arc_margin"),
    ])],
};

pub const PROTONET: OptTable = OptTable { function: "protonet", groups: &[Group::Of(ProtoShape::table, &[])] };

pub const SUMMARY: OptTable = OptTable {
    function: "summary",
    groups: &[Group::Keys(&[opt("input", "[i64; 3]", Def::text("the body's default input"), "the input shape [channels, height, width]")])],
};

pub const LEARNER: OptTable = OptTable {
    function: "learner",
    groups: &[Group::Keys(&[
        opt(
            "loss",
            "String|FnPtr",
            Def::text("the targets' and model's"),
            "cross_entropy, label_smoothing_cross_entropy, focal, bce, contrastive (classes); mse, l1, smooth_l1 (numbers); bce_multi (label sets); or a closure |preds, targets| returning the batch's loss as a Tensor (autograd runs through it; metrics and predictions then see the raw outputs). By default numbers: mse, label sets: bce_multi, classes: what the model's output calls for",
        ),
        opt("margin", "f64", Def::F(1.0), "the contrastive loss's margin (given alone, it selects the contrastive loss)"),
        opt(
            "label_smoothing",
            "f64",
            Def::text("0.0 (0.1 for label_smoothing_cross_entropy)"),
            "cross-entropy against targets smoothed by this eps (fastai's LabelSmoothingCrossEntropy)",
        ),
        opt("gamma", "f64", Def::F(2.0), "the focal loss's focusing exponent (fastai's FocalLossFlat)"),
        opt("beta", "f64", Def::F(1.0), "smooth_l1: where the loss turns from squared to absolute"),
        opt(
            "metrics",
            "Array",
            Def::None,
            "metric names (accuracy, error_rate, roc_auc, precision, recall, f1; rmse, mae, r2; accuracy_multi, f1_multi), accuracy_multi(#{ thresh }) / f1_multi(#{ thresh }), |preds, targets| closures (columns metric1, metric2, .., not ranked), metric(closure, #{ name, lower_is_better }), or maps #{ metric: closure, name, goal }",
        ),
        opt("splitter", "String", Def::s("body_head"), "parameter groups: body_head, arch (the body arch's own, as fastai's model_meta: resnets three, others body_head), resnet (fastai's three) or none"),
        opt("opt", "String", Def::s("adam"), "adam (fastai's defaults) or sgd"),
        opt("wd", "f64", Def::F(0.01), "weight decay (decoupled)"),
        opt("wd_bn_bias", "bool", Def::B(false), "also decay BatchNorm and bias parameters"),
        opt("train_bn", "bool", Def::B(true), "BatchNorm keeps training while its group is frozen"),
        opt("sync_bn", "bool", Def::B(true), "data-parallel runs: BatchNorm statistics over every process's batch (false: each its own)"),
        opt("cbs", "Array", Def::None, "callbacks for every fit: after_epoch(|e| ...), after_batch(|b| ...)"),
        opt(
            "precision",
            "String",
            Def::text("the run's --precision"),
            "fp32, bf16 (mixed, with channels_last where it helps) or auto (bf16 where the device computes it natively)",
        ),
        opt(
            "threshold",
            "f64",
            Def::F(0.5),
            "two-class (pair) models: p(same) at which a pair counts as same, for every metric and prediction (see learn.calibrate()); label sets: the probability above which predict and the interpretation give a label",
        ),
    ])],
};

pub const MULTI_METRIC: OptTable = OptTable {
    function: "accuracy_multi, f1_multi",
    groups: &[Group::Keys(&[opt(
        "thresh",
        "f64",
        Def::F(crate::learn::metrics::MULTI_THRESH),
        "a label counts as predicted when its sigmoid exceeds this",
    )])],
};

fn learner_rows() -> Vec<Opt> {
    LEARNER.rows()
}

pub const VISION_LEARNER: OptTable = OptTable {
    function: "vision_learner",
    groups: &[
        BODY_KEYS,
        Group::Of(HeadSpec::table, &[]),
        Group::Keys(&[opt(
            "splitter",
            "String",
            Def::s("arch"),
            "parameter groups: arch (the arch's own split, fastai's), body_head, resnet or none",
        )]),
        Group::Of(learner_rows, &["splitter"]),
    ],
};

pub const SHOW_RESULTS: OptTable =
    OptTable { function: "show_results", groups: &[Group::Keys(&[opt("max_n", "i64", Def::I(9), "validation items shown, from the first")])] };

pub const METRIC_ENTRY: OptTable = OptTable {
    function: "metrics entry",
    groups: &[Group::Keys(&[
        opt("metric", "FnPtr", Def::None, "the closure |preds, targets| returning a number (required)"),
        opt("name", "String", Def::text("the function's name, else metricN"), "the epoch-table column's name"),
        opt("goal", "String", Def::None, "max (higher is better) or min; without it, comparisons of runs do not rank the column"),
    ])],
};

pub const METRIC: OptTable = OptTable {
    function: "metric",
    groups: &[Group::Keys(&[
        opt("name", "String", Def::text("the function's name, else metricN"), "the epoch-table column's name"),
        opt(
            "lower_is_better",
            "bool",
            Def::None,
            "true: lower is better (rmse, mae), false: higher; used by compare, the report, save_best and early stopping. Without it comparisons of runs do not rank the column",
        ),
    ])],
};

pub const LOG_METRIC: OptTable = OptTable {
    function: "log_metric",
    groups: &[Group::Keys(&[opt(
        "goal",
        "String",
        Def::text("a built-in metric's or loss's"),
        "max (higher is better) or min; names no metric defines are not ranked unless given",
    )])],
};

/// Every fit's options; callbacks are the script's own.
const FIT: Group = Group::Of(FitOptions::table, &[]);
const FIT_CBS: Group = Group::Keys(&[opt("cbs", "Array", Def::None, "callbacks for this fit: after_epoch(|e| ...), after_batch(|b| ...)")]);

pub const FIT_ONE_CYCLE: OptTable = OptTable { function: "fit_one_cycle", groups: &[Group::Of(OneCycle::table, &[]), FIT, FIT_CBS] };

pub const FIT_CONSTANT: OptTable = OptTable { function: "fit", groups: &[FIT, FIT_CBS] };

pub const FINE_TUNE: OptTable = OptTable {
    function: "fine_tune",
    groups: &[Group::Keys(&[opt("freeze_epochs", "i64", Def::I(1), "epochs with the body frozen first")]), FIT, FIT_CBS],
};

pub const EARLY_STOPPING: OptTable = OptTable { function: "early_stopping", groups: &[Group::Of(EarlyStop::table, &[])] };

pub const LR_FIND: OptTable = OptTable { function: "lr_find", groups: &[Group::Of(LrFindOptions::table, &[])] };

pub const MOST_CONFUSED: OptTable =
    OptTable { function: "most_confused", groups: &[Group::Keys(&[opt("min_val", "i64", Def::I(1), "leave out cells with fewer items than this")])] };

pub const PLOT_CONFUSION_MATRIX: OptTable = OptTable {
    function: "plot_confusion_matrix",
    groups: &[Group::Keys(&[opt("normalize", "bool", Def::B(false), "show each actual class's row as shares (summing to 1) instead of counts")])],
};

pub const EPISODES: OptTable = OptTable {
    function: "episodes",
    groups: &[Group::Of(EpisodeSpec::table, &[]), Group::Keys(&[opt("label", "String", Def::s("label"), "the column of classes")])],
};

const TTA_OPTS: &[Opt] = &[
    opt("tta", "i64", Def::I(0), "test-time augmentation: passes of the training augmentation averaged in (0: none)"),
    opt("beta", "f64", Def::F(0.25), "with tta: the weight of the plain prediction, lerp(augmented mean, plain, beta)"),
];

pub const N_WAY_EVAL: OptTable = OptTable {
    function: "n_way_eval",
    groups: &[
        Group::Keys(&[opt("metric", "String", Def::s("cosine"), "closeness of a query to a class prototype: cosine or euclidean")]),
        Group::Keys(TTA_OPTS),
    ],
};

pub const CALIBRATE: OptTable = OptTable {
    function: "calibrate",
    groups: &[Group::Keys(&[opt(
        "cut",
        "String",
        Def::s("best"),
        "where the threshold goes: \"best\" (the cut that classifies the most training pairs right) or \"eer\" (equal error rates: as many same pairs rejected as different ones accepted, in shares)",
    )])],
};

pub const TTA: OptTable = OptTable {
    function: "tta",
    groups: &[Group::Keys(&[
        opt("n", "i64", Def::I(4), "passes of the training augmentation"),
        opt("beta", "f64", Def::F(0.25), "the weight of the plain prediction, lerp(augmented mean, plain, beta)"),
    ])],
};

/// Every table, for the reference.
pub const ALL: &[&OptTable] = &[
    &UNTAR_DATA,
    &READ_CSV,
    &AUG_TRANSFORMS,
    &RANDOM_SPLITTER,
    &GROUP_SPLITTER,
    &GRANDPARENT_SPLITTER,
    &PARENT_SPLITTER,
    &SIAMESE_PAIRS,
    &OVERSAMPLE,
    &IMAGE_LOADERS,
    &EPISODE_LOADERS,
    &PAIR_LOADERS,
    &CREATE_BODY,
    &CONVNET,
    &CREATE_HEAD,
    &CLASSIFIER_MODEL,
    &PROTONET,
    &SUMMARY,
    &LEARNER,
    &VISION_LEARNER,
    &SHOW_RESULTS,
    &METRIC_ENTRY,
    &MULTI_METRIC,
    &METRIC,
    &LOG_METRIC,
    &FIT_ONE_CYCLE,
    &FIT_CONSTANT,
    &FINE_TUNE,
    &EARLY_STOPPING,
    &LR_FIND,
    &MOST_CONFUSED,
    &PLOT_CONFUSION_MATRIX,
    &EPISODES,
    &N_WAY_EVAL,
    &CALIBRATE,
    &TTA,
];

/// The options reference as Markdown: one table per function.
pub fn markdown() -> String {
    let mut s = String::from("## Options\n\nEvery options map, key by key; any other key is refused with this list.\n");
    for t in ALL {
        s.push_str(&format!("\n### {}\n\n| key | type | default | meaning |\n|---|---|---|---|\n", t.function));
        for o in t.rows() {
            let cell = |x: String| x.replace('|', "\\|");
            s.push_str(&format!("| `{}` | {} | {} | {} |\n", o.key, cell(o.ty.to_string()), cell(o.default.to_string()), cell(o.doc.to_string())));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_per_function() {
        for t in ALL {
            let mut k: Vec<&str> = t.rows().iter().map(|o| o.key).collect();
            k.sort();
            let n = k.len();
            k.dedup();
            assert_eq!(n, k.len(), "{}", t.function);
        }
    }

    #[test]
    fn episode_loaders_take_no_batch_size() {
        let keys = |t: &OptTable| t.rows().iter().map(|o| o.key).collect::<Vec<_>>();
        assert!(keys(&IMAGE_LOADERS).contains(&"bs") && keys(&IMAGE_LOADERS).contains(&"rotate"));
        assert!(!keys(&EPISODE_LOADERS).contains(&"bs") && keys(&EPISODE_LOADERS).contains(&"n_way"));
    }
}
