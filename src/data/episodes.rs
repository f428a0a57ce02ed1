//! N-way K-shot episodes over a Table's classes (learn2learn's `TaskDataset`, torchmeta's
//! `ClassSplitter`): each episode draws `n_way` classes of one split, then `k_shot` support
//! rows and `n_query` query rows of each. Seeded per split and episode, so one seed gives
//! the same episodes whatever else the run draws. `within_parent` draws all the classes of
//! an episode from one parent (`Greek` of `Greek/character03`), as Omniglot's official
//! runs draw within one alphabet, which is harder than classes from mixed alphabets.
use super::table::Table;
use crate::opts::Choice;
use anyhow::{bail, Result};
use rand::seq::index::sample;
use rand::Rng;
use std::collections::BTreeMap;

/// Which rows of the table episodes draw from (its `is_valid` column), or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Train,
    Valid,
    All,
}

impl std::str::FromStr for Part {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Part> {
        Ok(match s {
            "train" => Part::Train,
            "valid" => Part::Valid,
            "all" => Part::All,
            other => bail!("unknown split `{other}`: use train, valid or all"),
        })
    }
}

impl Choice for Part {
    fn name(&self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Valid => "valid",
            Part::All => "all",
        }
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

crate::options! {
    /// What `episodes` draws.
    #[derive(Clone, Debug, PartialEq)]
    pub struct EpisodeSpec {
        /// classes per episode
        opt n_way: usize = 5,
        /// support images per class
        opt k_shot: usize = 1,
        /// query images per class
        opt n_query: usize = 1,
        /// episodes to draw
        opt n_episodes: usize = 100,
        /// rows to draw from: train, valid (the is_valid column) or all
        opt part as split: Part = Part::Valid,
        // The parent is the text before a class name's last `/`, drawn uniformly among the
        // parents with `n_way` usable classes.
        /// draw all of an episode's classes from one parent (Greek of Greek/character03), as
        /// Omniglot's runs keep to one alphabet
        opt within_parent: bool = false,
        /// the seed of this step's random choices
        opt seed: u64 = crate::seed::DEFAULT_SEED => "the run's seed",
    }
}

/// The parent of a class name: the text before its last `/` (empty when it has none).
pub fn class_parent(class: &str) -> &str {
    class.rsplit_once('/').map_or("", |(p, _)| p)
}

/// One task: rows of the table, support class-major (`k_shot` rows of class 0, then of
/// class 1, ...), queries with the index of their class in `classes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub classes: Vec<String>,
    pub support: Vec<usize>,
    pub query: Vec<usize>,
    pub query_y: Vec<usize>,
}

impl Episode {
    pub fn n_way(&self) -> usize {
        self.classes.len()
    }

    pub fn k_shot(&self) -> usize {
        self.support.len() / self.classes.len().max(1)
    }
}

/// Draws `spec.n_episodes` episodes from the classes of column `label` (its printed values)
/// among the rows of `spec.part`. Classes with fewer than `k_shot + n_query` rows there
/// are never drawn; too few usable classes is an error that gives the counts.
pub fn sample_episodes(table: &Table, label: &str, spec: &EpisodeSpec) -> Result<Vec<Episode>> {
    let col = table.column(label)?;
    let keep: Vec<bool> = match spec.part {
        Part::All => vec![true; table.len()],
        Part::Train => table.bools("is_valid")?.iter().map(|v| !v).collect(),
        Part::Valid => table.bools("is_valid")?.to_vec(),
    };
    let rows: Vec<usize> = (0..table.len()).filter(|&i| keep[i]).collect();
    let classes: Vec<String> = rows.iter().map(|&i| col.get(i).to_string()).collect();
    let mut episodes = draw_episodes(&classes, spec, &format!("episodes/{}", spec.part))?;
    for ep in &mut episodes {
        for r in ep.support.iter_mut().chain(ep.query.iter_mut()) {
            *r = rows[*r];
        }
    }
    Ok(episodes)
}

/// Draws `spec.n_episodes` episodes over items `0..classes.len()`, item `i` of class
/// `classes[i]` (`spec.part` only names the split in messages); episode `e` draws from the
/// random stream `(spec.seed, "{stream}/{e}")`, so a loader can draw new episodes each epoch.
pub fn draw_episodes(classes: &[String], spec: &EpisodeSpec, stream: &str) -> Result<Vec<Episode>> {
    if spec.n_way < 2 || spec.k_shot < 1 || spec.n_query < 1 {
        bail!("an episode needs n_way >= 2, k_shot >= 1 and n_query >= 1, got {}-way {}-shot with {} queries", spec.n_way, spec.k_shot, spec.n_query);
    }
    let mut by_class: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in classes.iter().enumerate() {
        by_class.entry(c).or_default().push(i);
    }
    let need = spec.k_shot + spec.n_query;
    let usable: Vec<(&str, &Vec<usize>)> = by_class.iter().map(|(n, r)| (*n, r)).filter(|(_, rows)| rows.len() >= need).collect();
    // The pools an episode's classes come from: all usable classes, or one parent's.
    let mut pools: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (name, _)) in usable.iter().enumerate() {
        pools.entry(if spec.within_parent { class_parent(name) } else { "" }).or_default().push(i);
    }
    let pools: Vec<Vec<usize>> = pools.into_values().filter(|p| p.len() >= spec.n_way).collect();
    if pools.is_empty() {
        bail!(
            "{}-way episodes need {} classes with at least {need} rows ({} shot + {} query) in split `{}`{}; it has {} such classes out of {}",
            spec.n_way,
            spec.n_way,
            spec.k_shot,
            spec.n_query,
            spec.part,
            if spec.within_parent { " under one parent" } else { "" },
            usable.len(),
            by_class.len()
        );
    }
    let episodes = (0..spec.n_episodes)
        .map(|e| {
            let mut rng = crate::seed::rng(spec.seed, &format!("{stream}/{e}"));
            let pool = if pools.len() == 1 { &pools[0] } else { &pools[rng.gen_range(0..pools.len())] };
            let mut ep = Episode { classes: Vec::new(), support: Vec::new(), query: Vec::new(), query_y: Vec::new() };
            for (c, pi) in sample(&mut rng, pool.len(), spec.n_way).into_iter().enumerate() {
                let (name, rows) = usable[pool[pi]];
                let picked: Vec<usize> = sample(&mut rng, rows.len(), need).into_iter().map(|r| rows[r]).collect();
                ep.classes.push(name.to_string());
                ep.support.extend_from_slice(&picked[..spec.k_shot]);
                ep.query.extend_from_slice(&picked[spec.k_shot..]);
                ep.query_y.extend(std::iter::repeat_n(c, spec.n_query));
            }
            ep
        })
        .collect();
    Ok(episodes)
}
