//! Every options map a script function takes, in one table per function: key, type,
//! default and meaning. `Opts` reads keys through these tables (a key missing from its
//! table is a bug that any call of the function reveals), rejects keys that are not in
//! them, and takes defaults from them; `runner api` prints them into docs/API.md. So what
//! a function accepts, what the reference says and what the error lists cannot differ.

/// A default value, typed as the getter reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Def {
    F(f64),
    I(i64),
    B(bool),
    S(&'static str),
    /// No default: the option is off or absent unless given.
    None,
    /// A default only known at run time (the run's seed, the core count), in words.
    Text(&'static str),
}

impl std::fmt::Display for Def {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Def::F(x) => write!(f, "{x:?}"),
            Def::I(x) => write!(f, "{x}"),
            Def::B(x) => write!(f, "{x}"),
            Def::S(s) => write!(f, "\"{s}\""),
            Def::None => write!(f, "none"),
            Def::Text(t) => write!(f, "{t}"),
        }
    }
}

/// One option: key, type as scripts write it, default, meaning.
pub struct Opt {
    pub key: &'static str,
    pub ty: &'static str,
    pub default: Def,
    pub doc: &'static str,
}

/// The options of one function, in groups shared between functions (the loaders').
pub struct OptTable {
    pub function: &'static str,
    pub groups: &'static [&'static [Opt]],
}

impl OptTable {
    pub fn get(&self, key: &str) -> Option<&'static Opt> {
        self.groups.iter().flat_map(|g| g.iter()).find(|o| o.key == key)
    }

    pub fn keys(&self) -> Vec<&'static str> {
        self.groups.iter().flat_map(|g| g.iter()).map(|o| o.key).collect()
    }
}

const fn opt(key: &'static str, ty: &'static str, default: Def, doc: &'static str) -> Opt {
    Opt { key, ty, default, doc }
}

const SEED: Opt = opt("seed", "i64", Def::Text("the run's seed"), "the seed of this step's random choices");

const LOADER: &[Opt] = &[
    opt("size", "i64", Def::I(224), "image side in pixels after resizing"),
    opt("method", "String", Def::S("crop"), "resize method: crop (random on training, centre on validation), pad or squish"),
    opt("pad_mode", "String", Def::S("reflection"), "padding for `pad` and the affine warp: reflection, zeros or border"),
    opt("normalize", "String", Def::S("imagenet"), "imagenet statistics, stats (of up to 512 training images) or none (only / 255)"),
    opt("channels", "i64", Def::I(3), "1 (grey) or 3 (RGB)"),
    opt("flip", "bool", Def::B(false), "random horizontal flips on training"),
    opt("rotate", "f64", Def::F(0.0), "random rotation up to this many degrees"),
    opt("shear", "f64", Def::F(0.0), "random shear up to this fraction"),
    opt("scale", "f64", Def::F(0.0), "random zoom up to this fraction"),
    opt("translate", "f64", Def::F(0.0), "random shift up to this fraction of the side"),
    opt("brightness", "f64", Def::F(0.0), "random brightness change up to this fraction"),
    opt("contrast", "f64", Def::F(0.0), "random contrast change up to this fraction"),
    opt("p_affine", "f64", Def::F(0.75), "probability of the affine warp per image"),
    opt("p_lighting", "f64", Def::F(0.75), "probability of the lighting change per image"),
    opt("cache", "bool", Def::B(false), "keep decoded, resized images in memory after the first epoch"),
    opt("skip_bad", "bool", Def::B(false), "skip (and count) images that fail to decode instead of stopping"),
    opt("num_workers", "i64", Def::Text("all cores"), "decoding threads"),
    SEED,
];

/// The batch sizes (episode loaders have none: a batch is an episode).
const BATCH: &[Opt] = &[opt("bs", "i64", Def::I(64), "batch size"), opt("val_bs", "i64", Def::None, "validation batch size (default: bs)")];

const TABLE_COLUMNS: &[Opt] = &[
    opt("x", "String", Def::S("file"), "the column of image files"),
    opt("y", "String", Def::S("label"), "the column of labels"),
    opt("valid_col", "String", Def::S("is_valid"), "the true/false column that marks validation rows"),
];

pub const IMAGE_LOADERS: OptTable = OptTable { function: "image_loaders", groups: &[LOADER, BATCH, TABLE_COLUMNS] };

pub const EPISODE_LOADERS: OptTable = OptTable {
    function: "episode_loaders",
    groups: &[
        LOADER,
        TABLE_COLUMNS,
        &[
            opt("n_way", "i64", Def::I(5), "classes per episode"),
            opt("k_shot", "i64", Def::I(1), "support images per class"),
            opt("n_query", "i64", Def::I(5), "query images per class"),
            opt("episodes", "i64", Def::I(100), "training episodes per epoch (drawn afresh each epoch)"),
            opt("valid_episodes", "i64", Def::I(100), "validation episodes (drawn once)"),
            opt("valid_query", "i64", Def::Text("n_query"), "query images per class in validation episodes"),
            opt("within_parent", "bool", Def::B(false), "draw all of an episode's classes from one parent (see episodes)"),
        ],
    ],
};

pub const PAIR_LOADERS: OptTable = OptTable {
    function: "pair_loaders",
    groups: &[
        LOADER,
        BATCH,
        &[
            opt("redraw", "bool", Def::B(false), "draw new training pairs every epoch"),
            opt("p_same", "f64", Def::F(0.5), "with redraw: the share of same-class pairs"),
        ],
    ],
};

pub const UNTAR_DATA: OptTable =
    OptTable { function: "untar_data", groups: &[&[opt("sha256", "String", Def::None, "the expected sha256 of the archive")]] };

pub const RANDOM_SPLITTER: OptTable =
    OptTable { function: "random_splitter", groups: &[&[opt("valid_pct", "f64", Def::F(0.2), "the share of items held out for validation"), SEED]] };

pub const GROUP_SPLITTER: OptTable = OptTable {
    function: "group_splitter",
    groups: &[&[opt("valid_pct", "f64", Def::F(0.2), "the share of groups held out for validation (whole groups)"), SEED]],
};

const FOLDER_NAMES: &[Opt] = &[
    opt("train_name", "String", Def::S("train"), "the training folder's name"),
    opt("valid_name", "String", Def::S("valid"), "the validation folder's name"),
];

pub const GRANDPARENT_SPLITTER: OptTable = OptTable { function: "grandparent_splitter", groups: &[FOLDER_NAMES] };
pub const PARENT_SPLITTER: OptTable = OptTable { function: "parent_splitter", groups: &[FOLDER_NAMES] };

pub const SIAMESE_PAIRS: OptTable =
    OptTable { function: "siamese_pairs", groups: &[&[opt("p_same", "f64", Def::F(0.5), "the share of same-class pairs"), SEED]] };

pub const OVERSAMPLE: OptTable = OptTable { function: "oversample", groups: &[&[SEED]] };

pub const CREATE_BODY: OptTable = OptTable {
    function: "create_body",
    groups: &[&[
        opt("cut", "i64", Def::I(-2), "where to cut the torchvision model (fastai's cut; -2 drops pooling and the classifier)"),
        opt("weights", "String", Def::None, "a .safetensors file of torchvision weights (random weights otherwise)"),
    ]],
};

pub const CONVNET: OptTable = OptTable {
    function: "convnet",
    groups: &[&[
        opt("input", "[i64; 2]", Def::Text("required"), "input [height, width]"),
        opt("in_channels", "i64", Def::I(1), "input channels"),
        opt("channels", "Array", Def::Text("[64, 128, 128, 256]"), "output channels of each conv"),
        opt("kernels", "Array", Def::Text("[10, 7, 4, 4]"), "kernel size of each conv"),
        opt("pool", "Array", Def::Text("[true, true, true, false]"), "max-pool 2x2 after each conv"),
        opt("bn", "bool", Def::B(false), "BatchNorm after each conv"),
        opt("embed", "i64", Def::I(4096), "embedding size (a Linear after flattening); 0 pools globally instead"),
        opt("sigmoid", "bool", Def::B(true), "sigmoid on the embedding (Koch et al.)"),
        opt("padding", "String", Def::S("valid"), "valid (no padding) or same (kernel/2)"),
    ]],
};

pub const CREATE_HEAD: OptTable = OptTable {
    function: "create_head",
    groups: &[&[
        opt("ps", "f64 | Array", Def::F(0.5), "dropout: the last layer's, earlier layers get half (fastai), or one per layer"),
        opt("lin_ftrs", "Array", Def::Text("[512]"), "hidden layer sizes"),
        opt("concat_pool", "bool", Def::B(true), "concatenate average and max pooling"),
        opt("first_bn", "bool", Def::B(true), "BatchNorm before the first Linear"),
        opt("bn_final", "bool", Def::B(false), "BatchNorm after the last Linear"),
    ]],
};

pub const CLASSIFIER_MODEL: OptTable = OptTable {
    function: "classifier_model",
    groups: &[&[
        opt("scale", "f64", Def::F(20.0), "the cosine head's logit scale"),
        opt("margin", "f64", Def::F(0.0), "CosFace's additive cosine margin m: training takes scale * m off each image's own-class logit"),
    ]],
};

pub const PROTONET: OptTable = OptTable {
    function: "protonet",
    groups: &[&[
        opt("n_way", "i64", Def::I(5), "classes per episode (as the episode loaders draw them)"),
        opt("k_shot", "i64", Def::I(1), "support images per class"),
        opt("metric", "String", Def::S("euclidean"), "closeness of a query to a prototype: euclidean (Snell et al.) or cosine"),
        opt("scale", "f64", Def::F(1.0), "the logits' scale (cosine needs about 10 to train)"),
    ]],
};

pub const SUMMARY: OptTable = OptTable {
    function: "summary",
    groups: &[&[opt("input", "[i64; 3]", Def::Text("the body's default input"), "the input shape [channels, height, width]")]],
};

pub const LEARNER: OptTable = OptTable {
    function: "learner",
    groups: &[&[
        opt("loss", "String", Def::Text("the model's"), "cross_entropy, bce or contrastive; by default what the model's output calls for"),
        opt("margin", "f64", Def::F(1.0), "the contrastive loss's margin (given alone, it selects the contrastive loss)"),
        opt("metrics", "Array", Def::None, "metric names (accuracy, error_rate, roc_auc, precision, recall, f1) or |preds, targets| closures"),
        opt("splitter", "String", Def::S("body_head"), "parameter groups: body_head, resnet (fastai's three) or none"),
        opt("opt", "String", Def::S("adam"), "adam (fastai's defaults) or sgd"),
        opt("wd", "f64", Def::F(0.01), "weight decay (decoupled)"),
        opt("wd_bn_bias", "bool", Def::B(false), "also decay BatchNorm and bias parameters"),
        opt("train_bn", "bool", Def::B(true), "BatchNorm keeps training while its group is frozen"),
        opt("sync_bn", "bool", Def::B(true), "data-parallel runs: BatchNorm statistics over every process's batch (false: each its own)"),
        opt("cbs", "Array", Def::None, "callbacks for every fit: after_epoch(|e| ...), after_batch(|b| ...)"),
        opt(
            "threshold",
            "f64",
            Def::F(0.5),
            "two-class (pair) models: p(same) at which a pair counts as same, for every metric and prediction (see learn.calibrate())",
        ),
    ]],
};

const FIT: &[Opt] = &[
    opt("wd", "f64", Def::Text("the learner's"), "weight decay for this fit and after"),
    opt("grad_clip", "f64", Def::None, "clip the gradient norm to this"),
    opt("early_stopping", "Map", Def::None, "#{ monitor, patience }: stop when the column stops improving"),
    opt("save_best", "String", Def::None, "save models/best when this column improves; reload it at the end"),
    opt("channels_last", "bool", Def::B(false), "NHWC memory order for inputs and conv weights"),
    opt("bf16", "bool", Def::B(false), "bf16 mixed precision for this fit"),
    opt("cbs", "Array", Def::None, "callbacks for this fit: after_epoch(|e| ...), after_batch(|b| ...)"),
];

pub const FIT_ONE_CYCLE: OptTable = OptTable {
    function: "fit_one_cycle",
    groups: &[
        &[
            opt("div", "f64", Def::F(25.0), "the first learning rate is lr_max / div"),
            opt("div_final", "f64", Def::F(1e5), "the last learning rate is lr_max / (div * div_final)"),
            opt("pct_start", "f64", Def::F(0.25), "the share of the fit spent warming up"),
            opt("moms", "Array", Def::Text("[0.95, 0.85, 0.95]"), "momentum at the start, the peak and the end"),
        ],
        FIT,
    ],
};

pub const FIT_CONSTANT: OptTable = OptTable { function: "fit", groups: &[FIT] };

pub const FINE_TUNE: OptTable =
    OptTable { function: "fine_tune", groups: &[&[opt("freeze_epochs", "i64", Def::I(1), "epochs with the body frozen first")], FIT] };

pub const EARLY_STOPPING: OptTable = OptTable {
    function: "early_stopping",
    groups: &[&[
        opt("monitor", "String", Def::S("valid_loss"), "the epoch-table column to watch"),
        opt("patience", "i64", Def::I(1), "epochs without improvement before stopping"),
    ]],
};

pub const LR_FIND: OptTable = OptTable {
    function: "lr_find",
    groups: &[&[
        opt("start_lr", "f64", Def::F(1e-7), "the first learning rate"),
        opt("end_lr", "f64", Def::F(10.0), "the last learning rate"),
        opt("num_it", "i64", Def::I(100), "batches in the sweep"),
        opt("stop_div", "bool", Def::B(true), "stop once the smoothed loss passes 4x its best"),
    ]],
};

pub const MOST_CONFUSED: OptTable =
    OptTable { function: "most_confused", groups: &[&[opt("min_val", "i64", Def::I(1), "leave out cells with fewer items than this")]] };

pub const PLOT_CONFUSION_MATRIX: OptTable = OptTable {
    function: "plot_confusion_matrix",
    groups: &[&[opt("normalize", "bool", Def::B(false), "show each actual class's row as shares (summing to 1) instead of counts")]],
};

pub const EPISODES: OptTable = OptTable {
    function: "episodes",
    groups: &[&[
        opt("n_way", "i64", Def::I(5), "classes per episode"),
        opt("k_shot", "i64", Def::I(1), "support images per class"),
        opt("n_query", "i64", Def::I(1), "query images per class"),
        opt("n_episodes", "i64", Def::I(100), "episodes to draw"),
        opt("split", "String", Def::S("valid"), "rows to draw from: train, valid (the is_valid column) or all"),
        opt("label", "String", Def::S("label"), "the column of classes"),
        opt(
            "within_parent",
            "bool",
            Def::B(false),
            "draw all of an episode's classes from one parent (Greek of Greek/character03), as Omniglot's runs keep to one alphabet",
        ),
        SEED,
    ]],
};

const TTA_OPTS: &[Opt] = &[
    opt("tta", "i64", Def::I(0), "test-time augmentation: passes of the training augmentation averaged in (0: none)"),
    opt("beta", "f64", Def::F(0.25), "with tta: the weight of the plain prediction, lerp(augmented mean, plain, beta)"),
];

pub const N_WAY_EVAL: OptTable = OptTable {
    function: "n_way_eval",
    groups: &[&[opt("metric", "String", Def::S("cosine"), "closeness of a query to a class prototype: cosine or euclidean")], TTA_OPTS],
};

pub const TTA: OptTable = OptTable {
    function: "tta",
    groups: &[&[
        opt("n", "i64", Def::I(4), "passes of the training augmentation"),
        opt("beta", "f64", Def::F(0.25), "the weight of the plain prediction, lerp(augmented mean, plain, beta)"),
    ]],
};

/// Every table, for the reference.
pub const ALL: &[&OptTable] = &[
    &UNTAR_DATA,
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
    &FIT_ONE_CYCLE,
    &FIT_CONSTANT,
    &FINE_TUNE,
    &EARLY_STOPPING,
    &LR_FIND,
    &MOST_CONFUSED,
    &PLOT_CONFUSION_MATRIX,
    &EPISODES,
    &N_WAY_EVAL,
    &TTA,
];

/// The options reference as Markdown: one table per function.
pub fn markdown() -> String {
    let mut s = String::from("## Options\n\nEvery options map, key by key; any other key is refused with this list.\n");
    for t in ALL {
        s.push_str(&format!("\n### {}\n\n| key | type | default | meaning |\n|---|---|---|---|\n", t.function));
        for o in t.groups.iter().flat_map(|g| g.iter()) {
            let cell = |x: String| x.replace('|', "\\|");
            s.push_str(&format!("| `{}` | {} | {} | {} |\n", o.key, cell(o.ty.to_string()), cell(o.default.to_string()), cell(o.doc.to_string())));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::augment::Augment;
    use crate::data::LoaderConfig;
    use crate::learn::lr_find::LrFindOptions;
    use crate::learn::schedule::OneCycle;

    fn f(t: &OptTable, k: &str) -> f64 {
        match t.get(k).unwrap().default {
            Def::F(x) => x,
            Def::I(i) => i as f64,
            d => panic!("{k}: {d:?}"),
        }
    }

    /// The tables' defaults are the plain API's defaults.
    #[test]
    fn defaults_match_the_library() {
        let (a, l, c, r) = (Augment::default(), LoaderConfig::default(), OneCycle::new(1.0), LrFindOptions::default());
        let t = &PAIR_LOADERS;
        assert_eq!([f(t, "rotate"), f(t, "p_affine"), f(t, "p_lighting")], [a.rotate, a.p_affine, a.p_lighting]);
        assert_eq!([f(t, "size"), f(t, "bs"), f(t, "channels")], [l.size as f64, l.bs as f64, l.channels as f64]);
        let t = &FIT_ONE_CYCLE;
        assert_eq!([f(t, "div"), f(t, "div_final"), f(t, "pct_start")], [c.div, c.div_final, c.pct_start]);
        let t = &LR_FIND;
        assert_eq!([f(t, "start_lr"), f(t, "end_lr"), f(t, "num_it")], [r.start_lr, r.end_lr, r.num_it as f64]);
    }

    #[test]
    fn keys_are_unique_per_function() {
        for t in ALL {
            let mut k = t.keys();
            k.sort();
            let n = k.len();
            k.dedup();
            assert_eq!(n, k.len(), "{}", t.function);
        }
    }
}
