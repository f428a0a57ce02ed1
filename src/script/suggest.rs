//! "Did you mean": a name a script cannot find gets a pointer. A fastai name
//! (`ImageDataLoaders`, `cnn_learner`, `learn.export()`) points at the runner's call, from
//! one table; any other unknown function at the nearest registered names (edit distance).
//! Plain functions over names; `errors` adds the hint to the message it formats.

/// fastai names a script may write, and what the runner writes instead. Names that are
/// the same here (`fine_tune`, `lr_find`, `get_image_files`) need no entry.
pub const FASTAI: &[(&str, &str)] = &[
    ("ImageDataLoaders", "image_loaders(table, #{ size, bs }) over a table from image_table(files, label, splits) or read_csv(path, #{ folder })"),
    ("DataBlock", "the table steps: get_image_files, a label (regex_label, parent_label or a closure), a splitter, image_table, then image_loaders"),
    ("DataLoaders", "image_loaders, pair_loaders or episode_loaders (a table in, loaders out)"),
    ("cnn_learner", "vision_learner(dls, arch, #{ metrics }) (fastai renamed cnn_learner to vision_learner)"),
    ("Learner", "learner(dls, model, #{ loss, metrics }), or vision_learner(dls, arch, #{ metrics })"),
    ("create_cnn_model", "create_body(arch) and create_head(nf, n_out) into classifier_model(body, head)"),
    ("ClassificationInterpretation", "learn.interpretation() (then most_confused, plot_confusion_matrix, plot_top_losses)"),
    ("Interpretation", "learn.interpretation() (then top_losses, plot_top_losses)"),
    ("export", "learn.export_learner(path) (`export` is a Rhai keyword), then load_learner(path)"),
    ("show_results", "learn.show_results(path) (a PNG of validation items, target / prediction); interp.plot_top_losses(k, path) for the worst"),
    ("URLs", "untar_data(\"pets\"): data sets are named by strings (datasets() lists them)"),
    ("untar_data", "untar_data(\"pets\") (a name or an archive URL, as a string)"),
    ("RandomSplitter", "random_splitter(files, #{ valid_pct, seed }) or random_splitter(table, #{ valid_pct })"),
    ("GrandparentSplitter", "grandparent_splitter(files, #{ train_name, valid_name })"),
    ("ColSplitter", "col_splitter(table, \"is_valid\")"),
    ("FuncSplitter", "func_splitter(files, |f| ...)"),
    ("RegexLabeller", "regex_label(pattern)"),
    ("using_attr", "a label closure: it gets the whole path (|f| file_name(f), parent_name(f))"),
    ("Resize", "the loaders' size and method options; item_size for presizing's item Resize(460)"),
    ("RandomResizedCrop", "aug_transforms(#{ size, min_scale })"),
    ("get_transforms", "aug_transforms() (fastai v2's name)"),
    ("Normalize", "the loaders' normalize option: imagenet, stats or none"),
    ("imagenet_stats", "the loaders' normalize: \"imagenet\" (the default)"),
    ("CrossEntropyLossFlat", "the learner option loss: \"cross_entropy\""),
    ("BCEWithLogitsLossFlat", "the learner option loss: \"bce_multi\""),
    ("MSELossFlat", "the learner option loss: \"mse\""),
    ("L1LossFlat", "the learner option loss: \"l1\""),
    ("accuracy", "metric names are strings: metrics: [\"accuracy\", \"error_rate\"]"),
    ("error_rate", "metric names are strings: metrics: [\"accuracy\", \"error_rate\"]"),
    ("resnet18", "archs are named by strings: \"resnet18\""),
    ("resnet34", "archs are named by strings: \"resnet34\""),
    ("resnet50", "archs are named by strings: \"resnet50\""),
    ("SaveModelCallback", "the fit option save_best: \"valid_loss\" (or a metric's name)"),
    ("EarlyStoppingCallback", "the fit option early_stopping: #{ monitor, patience }"),
    ("to_fp16", "--precision bf16 on the command line, or the learner option precision"),
    ("set_seed", "--seed on the command line (the script reads it as `seed`)"),
    ("Path", "paths are strings: path + \"/images\""),
    ("pd", "read_csv(path) (a table, as pandas' DataFrame)"),
    ("PILImage", "file paths: the loaders and learn.predict(file) read image files themselves"),
];

/// What the runner writes for fastai's `name`, if the table knows it.
pub fn fastai(name: &str) -> Option<&'static str> {
    FASTAI.iter().find(|(f, _)| *f == name).map(|(_, ours)| *ours)
}

/// Levenshtein distance (insert, delete, substitute) over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// Up to three known names nearest to `name`, closest first (ties alphabetical); only
/// those within a third of the name's length (at least 2 edits, case ignored).
pub fn nearest<'a>(name: &str, known: &'a [String]) -> Vec<&'a str> {
    let lower = name.to_lowercase();
    let most = (name.chars().count() / 3).max(2);
    let mut close: Vec<(usize, &str)> =
        known.iter().map(|k| (distance(&lower, &k.to_lowercase()), k.as_str())).filter(|&(d, k)| d <= most && k != name).collect();
    close.sort();
    close.dedup();
    close.into_iter().take(3).map(|(_, k)| k).collect()
}

/// The hint for an unknown `name`: the fastai table first, else the nearest of `known`.
pub fn hint(name: &str, known: &[String]) -> Option<String> {
    if let Some(ours) = fastai(name) {
        return Some(format!("fastai's `{name}` is {ours} here"));
    }
    let near = nearest(name, known);
    if near.is_empty() {
        return None;
    }
    let quoted: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
    Some(format!("did you mean {}?", quoted.join(" or ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        ["fine_tune", "fit_one_cycle", "fit", "image_loaders", "image_table", "interpretation", "random_splitter", "lr_find"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn fastai_names_point_at_ours() {
        assert!(hint("ImageDataLoaders", &known()).unwrap().starts_with("fastai's `ImageDataLoaders` is image_loaders("));
        assert!(hint("ClassificationInterpretation", &known()).unwrap().contains("learn.interpretation()"));
        assert!(hint("export", &known()).unwrap().contains("learn.export_learner(path) (`export` is a Rhai keyword)"));
        assert!(hint("cnn_learner", &[]).unwrap().contains("vision_learner(dls, arch"));
        assert!(hint("show_results", &[]).unwrap().contains("learn.show_results(path)"));
        // One entry per fastai name, and none for a name that is the same here.
        let mut names: Vec<&str> = FASTAI.iter().map(|e| e.0).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
        assert!(fastai("fine_tune").is_none());
    }

    #[test]
    fn other_names_get_the_nearest_known_ones() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(nearest("fine_tun", &known()), ["fine_tune"]);
        assert_eq!(nearest("fit_one_cyle", &known()), ["fit_one_cycle"]);
        assert_eq!(nearest("image_loader", &known()), ["image_loaders"]);
        assert_eq!(nearest("Random_Splitter", &known()), ["random_splitter"], "case is ignored");
        assert_eq!(hint("lr_fnd", &known()).unwrap(), "did you mean `lr_find`?");
        assert!(hint("completely_unrelated_name", &known()).is_none());
        assert!(nearest("fit", &known()).is_empty(), "the name itself is not a suggestion");
    }
}
