//! What items are labelled with, fastai's y blocks: a class (`CategoryBlock`), numbers
//! (`RegressionBlock`) or a set of labels (`MultiCategoryBlock`). An item's `y` is its class
//! index, or for numbers and label sets the row of its targets here; the loader turns a
//! batch's `y`s into int64 classes `[N]` or float rows `[N, width]`.
use super::table::Column;
use anyhow::{bail, Result};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The kind of target a data set gives, which decides the loss, the metrics and what
/// `predict` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// One class per item: int64 `[N]`.
    Classes,
    /// Numbers (regression): float `[N, k]`.
    Floats,
    /// Any number of labels per item: multi-hot float `[N, C]`.
    MultiHot,
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TargetKind::Classes => "class targets (one label per item)",
            TargetKind::Floats => "float targets (regression)",
            TargetKind::MultiHot => "multi-hot targets (multi-label)",
        })
    }
}

/// How a table's label column becomes targets.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum TargetBlock {
    /// Float columns give numbers, any other column classes.
    #[default]
    Auto,
    /// Numbers, whatever the column's type (text cells must parse as numbers).
    Regression,
    /// Labels split on the delimiter; the vocabulary is every label seen, sorted.
    MultiLabel(String),
}

/// A data set's targets: the kind, the width of a target (classes: the vocabulary's
/// size), and the float rows items point at (empty for classes).
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    pub kind: TargetKind,
    pub width: usize,
    rows: Arc<Vec<f32>>,
}

/// What a batch's targets are, on the host, before they become a tensor.
pub enum BatchTargets {
    Classes(Vec<i64>),
    Rows { values: Vec<f32>, width: usize },
}

/// Targets read from label columns: the targets, the vocabulary (label names; for numbers
/// the columns' names, one per output) and each row's `y`.
pub struct Labelled {
    pub targets: Targets,
    pub vocab: Vec<String>,
    pub ys: Vec<i64>,
}

impl Targets {
    pub fn classes(n: usize) -> Targets {
        Targets::without_rows(TargetKind::Classes, n)
    }

    /// Targets of a kind and width with no items (a loaded learner's loaders).
    pub fn without_rows(kind: TargetKind, width: usize) -> Targets {
        Targets { kind, width, rows: Arc::default() }
    }

    /// Reads the label columns `cols` (named `names`) as `block` says.
    pub fn from_columns(names: &[String], cols: &[&Column], block: &TargetBlock) -> Result<Labelled> {
        let Some(first) = cols.first() else { bail!("no label column given") };
        let n = first.len();
        let regression = match block {
            TargetBlock::Regression => true,
            TargetBlock::Auto => cols.iter().all(|c| matches!(c, Column::Float(_))),
            TargetBlock::MultiLabel(_) => false,
        };
        if regression {
            return floats(names, cols, n);
        }
        if cols.len() > 1 {
            bail!("{} label columns ({}) are numbers for regression only: give one label column, or regression: true", cols.len(), names.join(", "));
        }
        match block {
            TargetBlock::MultiLabel(delim) => multi_hot(&names[0], first, delim),
            _ => Ok(classes(first)),
        }
    }

    /// The targets of items `ys`, as the loader stacks them.
    pub fn batch(&self, ys: &[i64]) -> BatchTargets {
        match self.kind {
            TargetKind::Classes => BatchTargets::Classes(ys.to_vec()),
            _ => BatchTargets::Rows { values: ys.iter().flat_map(|&y| self.row(y).iter().copied()).collect(), width: self.width },
        }
    }

    fn row(&self, y: i64) -> &[f32] {
        let at = y as usize * self.width;
        &self.rows[at..at + self.width]
    }

    /// One item's target as text (a title of show_batch): its class, its labels joined by
    /// spaces, or its numbers.
    pub fn describe(&self, y: i64, vocab: &[String]) -> String {
        match self.kind {
            TargetKind::Classes => vocab.get(y as usize).cloned().unwrap_or_else(|| y.to_string()),
            TargetKind::Floats => self.row(y).iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(", "),
            TargetKind::MultiHot => {
                let row = self.row(y);
                vocab.iter().zip(row).filter(|(_, &h)| h > 0.5).map(|(l, _)| l.as_str()).collect::<Vec<_>>().join(" ")
            }
        }
    }
}

/// Classes: the sorted distinct values (integers in numeric order, 2 before 10, as
/// fastai's CategoryMap sorts them), each row's index among them.
fn classes(col: &Column) -> Labelled {
    let names: Vec<String> = (0..col.len()).map(|i| col.get(i).to_string()).collect();
    let mut vocab = names.clone();
    match col {
        Column::Int(_) => vocab.sort_by_key(|v| v.parse::<i64>().unwrap_or(i64::MAX)),
        _ => vocab.sort(),
    }
    vocab.dedup();
    let index: std::collections::HashMap<&str, i64> = vocab.iter().enumerate().map(|(i, v)| (v.as_str(), i as i64)).collect();
    let ys = names.iter().map(|n| index[n.as_str()]).collect();
    Labelled { targets: Targets::classes(vocab.len()), vocab, ys }
}

/// Numbers: one output per column; a cell that is not a finite number is named.
fn floats(names: &[String], cols: &[&Column], n: usize) -> Result<Labelled> {
    let width = cols.len();
    let mut rows = vec![0f32; n * width];
    for (j, (name, col)) in names.iter().zip(cols).enumerate() {
        for i in 0..n {
            let v = match col {
                Column::Float(v) => v[i],
                Column::Int(v) => v[i] as f64,
                Column::Str(v) => match v[i].trim().parse::<f64>() {
                    Ok(x) => x,
                    Err(_) => bail!("regression targets: column `{name}` row {i} holds `{}`, not a number", v[i]),
                },
                Column::Bool(_) => bail!("regression targets: column `{name}` holds true/false, not numbers"),
            };
            if !v.is_finite() {
                bail!("regression targets: column `{name}` row {i} holds {v}, not a finite number");
            }
            rows[i * width + j] = v as f32;
        }
    }
    let targets = Targets { kind: TargetKind::Floats, width, rows: Arc::new(rows) };
    Ok(Labelled { targets, vocab: names.to_vec(), ys: (0..n as i64).collect() })
}

/// Label sets: each cell split on `delim` (empty pieces dropped), multi-hot over the
/// sorted labels of all rows (fastai's MultiCategorize).
fn multi_hot(name: &str, col: &Column, delim: &str) -> Result<Labelled> {
    let Column::Str(cells) = col else { bail!("label_delim: column `{name}` holds {} values, not text to split into labels", col.type_name()) };
    if delim.is_empty() {
        bail!("label_delim must not be empty (fastai's default is a space: \" \")");
    }
    let split: Vec<Vec<&str>> = cells.iter().map(|c| c.split(delim).map(str::trim).filter(|l| !l.is_empty()).collect()).collect();
    let vocab: Vec<String> = split.iter().flatten().copied().collect::<BTreeSet<_>>().into_iter().map(String::from).collect();
    if vocab.is_empty() {
        bail!("label_delim: column `{name}` holds no labels");
    }
    let width = vocab.len();
    let mut rows = vec![0f32; cells.len() * width];
    for (i, labels) in split.iter().enumerate() {
        for l in labels {
            let j = vocab.binary_search_by(|v| v.as_str().cmp(l)).expect("label in vocab");
            rows[i * width + j] = 1.0;
        }
    }
    let targets = Targets { kind: TargetKind::MultiHot, width, rows: Arc::new(rows) };
    Ok(Labelled { targets, vocab, ys: (0..cells.len() as i64).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Column {
        Column::Str(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn float_columns_regress_and_other_columns_are_classes() {
        let names = vec!["y".to_string()];
        let l = Targets::from_columns(&names, &[&Column::Float(vec![2.5, 10.0, 2.5])], &TargetBlock::Auto).unwrap();
        assert_eq!((l.targets.kind, l.targets.width, l.vocab.clone()), (TargetKind::Floats, 1, names.clone()));
        match l.targets.batch(&[1, 0]) {
            BatchTargets::Rows { values, width } => assert_eq!((values, width), (vec![10.0, 2.5], 1)),
            BatchTargets::Classes(_) => panic!("floats expected"),
        }
        let l = Targets::from_columns(&names, &[&Column::Int(vec![10, 2, 10])], &TargetBlock::Auto).unwrap();
        assert_eq!((l.targets.kind, l.vocab, l.ys), (TargetKind::Classes, vec!["2".to_string(), "10".into()], vec![1, 0, 1]));
        let l = Targets::from_columns(&names, &[&Column::Int(vec![10, 2])], &TargetBlock::Regression).unwrap();
        assert_eq!((l.targets.kind, l.targets.describe(0, &l.vocab)), (TargetKind::Floats, "10.000".to_string()));
    }

    #[test]
    fn a_bad_number_names_its_row_and_value() {
        let names = vec!["age".to_string()];
        let e = Targets::from_columns(&names, &[&strs(&["1.5", "2", "old"])], &TargetBlock::Regression).err().unwrap().to_string();
        assert!(e.contains("column `age` row 2 holds `old`"), "{e}");
        let e = Targets::from_columns(&names, &[&Column::Float(vec![1.0, f64::NAN])], &TargetBlock::Auto).err().unwrap().to_string();
        assert!(e.contains("row 1 holds NaN"), "{e}");
    }

    #[test]
    fn delimited_labels_become_multi_hot_rows_over_the_sorted_labels() {
        let names = vec!["labels".to_string()];
        let col = strs(&["dog beagle", "cat", "cat  persian", ""]);
        let l = Targets::from_columns(&names, &[&col], &TargetBlock::MultiLabel(" ".into())).unwrap();
        assert_eq!(l.vocab, ["beagle", "cat", "dog", "persian"]);
        assert_eq!((l.targets.kind, l.targets.width), (TargetKind::MultiHot, 4));
        match l.targets.batch(&[0, 2, 3]) {
            BatchTargets::Rows { values, .. } => assert_eq!(values, [1., 0., 1., 0., 0., 1., 0., 1., 0., 0., 0., 0.]),
            BatchTargets::Classes(_) => panic!("rows expected"),
        }
        assert_eq!(l.targets.describe(2, &l.vocab), "cat persian");
        let e = Targets::from_columns(&names, &[&Column::Int(vec![1])], &TargetBlock::MultiLabel(" ".into())).err().unwrap().to_string();
        assert!(e.contains("not text"), "{e}");
    }
}
