//! Siamese pairs as the fastai tutorial draws them: for each file, "same" with probability
//! `p_same`, and a partner from the same split, of the same class or of a random other class.
//! Two pitfalls of the tutorial's code are avoided: partners come only from classes present
//! in the split, and a file is never its own partner while its class has another image.
//!
//! Fallbacks, counted and reported: a "same" draw for a class with a single image in the
//! split becomes a "different" pair; a "different" draw in a split with one class becomes a
//! "same" pair; a split holding a single file pairs it with itself.
use super::splitters::Split;
use super::table::{Column, Table};
use anyhow::Result;
use rand::Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The files one split may draw partners from, indexed by class.
pub struct PartnerPool {
    classes: Vec<String>,
    by_class: BTreeMap<String, Vec<usize>>,
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallbacks {
    pub same_to_different: usize,
    pub different_to_same: usize,
    pub self_pairs: usize,
}

impl Fallbacks {
    pub fn total(&self) -> usize {
        self.same_to_different + self.different_to_same + self.self_pairs
    }

    /// A one-line report, for a warning.
    pub fn describe(&self) -> String {
        format!(
            "{} \"same\" draws became \"different\" (class with one image in its split), {} \"different\" draws \
             became \"same\" (split with one class), {} files paired with themselves (split with one file)",
            self.same_to_different, self.different_to_same, self.self_pairs
        )
    }
}

impl PartnerPool {
    /// `classes[k]` is the class of candidate k; candidates are referred to by position.
    pub fn new(classes: Vec<String>) -> PartnerPool {
        let mut by_class: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (k, c) in classes.iter().enumerate() {
            by_class.entry(c.clone()).or_default().push(k);
        }
        PartnerPool { classes, by_class }
    }

    /// Draws a partner for candidate `anchor`: (partner, same).
    pub fn draw(&self, anchor: usize, p_same: f64, rng: &mut impl Rng, fb: &mut Fallbacks) -> (usize, bool) {
        let class = &self.classes[anchor];
        let mates = &self.by_class[class];
        let want_same = rng.gen::<f64>() < p_same;
        let other_classes = self.by_class.len() - 1;
        let same = match (want_same, mates.len() > 1, other_classes > 0) {
            (true, true, _) | (false, true, false) => {
                if !want_same {
                    fb.different_to_same += 1;
                }
                true
            }
            (true, false, true) | (false, _, true) => {
                if want_same {
                    fb.same_to_different += 1;
                }
                false
            }
            (_, false, false) => {
                fb.self_pairs += 1;
                return (anchor, true);
            }
        };
        if same {
            // Uniform over the class without the anchor itself.
            let k = rng.gen_range(0..mates.len() - 1);
            let pos = mates.iter().position(|&m| m == anchor).unwrap_or(mates.len());
            (mates[if k >= pos { k + 1 } else { k }], true)
        } else {
            let mut k = rng.gen_range(0..other_classes);
            let own = self.by_class.keys().position(|c| c == class).unwrap_or(usize::MAX);
            if k >= own {
                k += 1;
            }
            let members = self.by_class.values().nth(k).expect("class index in range");
            (members[rng.gen_range(0..members.len())], false)
        }
    }
}

/// The pairs table: `file1, file2, class1, class2, label (true = same), is_valid`, one row
/// per file, in file order; partners are drawn within each split.
pub fn siamese_pairs(files: &[PathBuf], labels: &[String], split: &Split, p_same: f64, seed: u64) -> Result<(Table, Fallbacks)> {
    split.check_len(files.len(), "the file list")?;
    if labels.len() != files.len() {
        anyhow::bail!("{} labels for {} files", labels.len(), files.len());
    }
    if !(0.0..=1.0).contains(&p_same) {
        anyhow::bail!("p_same must be in [0, 1], got {p_same}");
    }
    let sides = [split.train(), split.valid()];
    let pools: Vec<PartnerPool> = sides.iter().map(|idx| PartnerPool::new(idx.iter().map(|&i| labels[i].clone()).collect())).collect();
    // Position of each file inside its side's pool.
    let mut pos = vec![0usize; files.len()];
    for idx in &sides {
        for (k, &i) in idx.iter().enumerate() {
            pos[i] = k;
        }
    }
    let mut rng = crate::seed::rng(seed, "pairs");
    let mut fb = Fallbacks::default();
    let (mut partner, mut same) = (Vec::with_capacity(files.len()), Vec::with_capacity(files.len()));
    for (&valid, &at) in split.is_valid.iter().zip(&pos) {
        let side = valid as usize;
        let (k, s) = pools[side].draw(at, p_same, &mut rng, &mut fb);
        partner.push(sides[side][k]);
        same.push(s);
    }
    let path = |i: usize| files[i].display().to_string();
    let table = Table::new(vec![
        ("file1".into(), Column::Str((0..files.len()).map(path).collect())),
        ("file2".into(), Column::Str(partner.iter().map(|&j| path(j)).collect())),
        ("class1".into(), Column::Str(labels.to_vec())),
        ("class2".into(), Column::Str(partner.iter().map(|&j| labels[j].clone()).collect())),
        ("label".into(), Column::Bool(same)),
        ("is_valid".into(), Column::Bool(split.is_valid.clone())),
    ])?;
    Ok((table, fb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::splitters::random_splitter;

    fn orl() -> (Vec<PathBuf>, Vec<String>) {
        let files: Vec<PathBuf> = (1..=40).flat_map(|p| (1..=10).map(move |i| PathBuf::from(format!("s{p}/{i}.pgm")))).collect();
        let labels = files.iter().map(|f| f.parent().unwrap().display().to_string()).collect();
        (files, labels)
    }

    #[test]
    fn partners_stay_in_their_split_and_never_self_pair() {
        let (files, labels) = orl();
        let split = random_splitter(files.len(), 0.2, 42).unwrap();
        let (t, fb) = siamese_pairs(&files, &labels, &split, 0.5, 42).unwrap();
        // A few people have a single image in the random validation split: their "same" draws fall back.
        assert_eq!((fb.different_to_same, fb.self_pairs), (0, 0));
        let valid = t.bools("is_valid").unwrap();
        let (f1, f2) = (t.strs("file1").unwrap(), t.strs("file2").unwrap());
        let (c1, c2, same) = (t.strs("class1").unwrap(), t.strs("class2").unwrap(), t.bools("label").unwrap());
        let valid_files: std::collections::BTreeSet<&String> = f1.iter().zip(valid.iter()).filter(|p| *p.1).map(|p| p.0).collect();
        for i in 0..t.len() {
            assert_ne!(f1[i], f2[i]);
            assert_eq!(same[i], c1[i] == c2[i]);
            assert_eq!(valid[i], valid_files.contains(&f2[i]), "partner from the same split");
        }
        let n_same = same.iter().filter(|&&s| s).count();
        assert!((150..250).contains(&n_same), "{n_same}");
        let (t2, _) = siamese_pairs(&files, &labels, &split, 0.5, 42).unwrap();
        assert_eq!(t, t2);
    }

    #[test]
    fn degenerate_splits_fall_back_without_hanging() {
        let (files, labels) = orl();
        // One person in the validation set: "different" draws become "same".
        let split = Split { is_valid: (0..400).map(|i| i < 10).collect() };
        let (t, fb) = siamese_pairs(&files, &labels, &split, 0.5, 1).unwrap();
        assert!(fb.different_to_same > 0 && fb.same_to_different == 0);
        assert!(t.bools("label").unwrap()[..10].iter().all(|&s| s));
        // A validation set of one file pairs it with itself; a class of one image never draws "same".
        let split = Split { is_valid: (0..400).map(|i| i == 0).collect() };
        let mut labels2 = labels.clone();
        labels2[1] = "lonely".into();
        let (t, fb) = siamese_pairs(&files, &labels2, &split, 1.0, 1).unwrap();
        assert_eq!(fb.self_pairs, 1);
        assert_eq!(fb.same_to_different, 1);
        assert_eq!(t.strs("file2").unwrap()[0], t.strs("file1").unwrap()[0]);
    }
}
