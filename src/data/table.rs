//! A small typed table, the tutorial's pandas step: rows of pairs or labelled files that a
//! script can count, filter, oversample, concatenate, extend by a column, save as CSV, edit
//! by hand and read back; file names made whole and checked against a folder (fastai's
//! `path`/`folder`) when the table is read, not at the first batch.
use anyhow::{bail, Context, Result};
use rand::Rng;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    Str(Vec<String>),
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Str(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Column::Str(_) => "str",
            Column::Int(_) => "int",
            Column::Float(_) => "float",
            Column::Bool(_) => "bool",
        }
    }

    pub fn get(&self, i: usize) -> Value {
        match self {
            Column::Str(v) => Value::Str(v[i].clone()),
            Column::Int(v) => Value::Int(v[i]),
            Column::Float(v) => Value::Float(v[i]),
            Column::Bool(v) => Value::Bool(v[i]),
        }
    }

    fn take(&self, rows: &[usize]) -> Column {
        fn pick<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|&i| v[i].clone()).collect()
        }
        match self {
            Column::Str(v) => Column::Str(pick(v, rows)),
            Column::Int(v) => Column::Int(pick(v, rows)),
            Column::Float(v) => Column::Float(pick(v, rows)),
            Column::Bool(v) => Column::Bool(pick(v, rows)),
        }
    }

    /// Appends `other` (same type) at the end.
    fn extend(&mut self, other: &Column) -> bool {
        match (self, other) {
            (Column::Str(a), Column::Str(b)) => a.extend_from_slice(b),
            (Column::Int(a), Column::Int(b)) => a.extend_from_slice(b),
            (Column::Float(a), Column::Float(b)) => a.extend_from_slice(b),
            (Column::Bool(a), Column::Bool(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
    }

    /// Parses CSV cells with the narrowest type that fits all of them: bool (`true`/`false`
    /// as the runner writes them, `True`/`False` as pandas does), int, float, str.
    fn parse(cells: Vec<String>) -> Column {
        if !cells.is_empty() && cells.iter().all(|c| matches!(c.as_str(), "true" | "false" | "True" | "False")) {
            return Column::Bool(cells.iter().map(|c| c.eq_ignore_ascii_case("true")).collect());
        }
        if let Ok(v) = cells.iter().map(|c| c.parse::<i64>()).collect::<Result<Vec<_>, _>>() {
            if !cells.is_empty() {
                return Column::Int(v);
            }
        }
        if let Ok(v) = cells.iter().map(|c| c.parse::<f64>()).collect::<Result<Vec<_>, _>>() {
            if !cells.is_empty() {
                return Column::Float(v);
            }
        }
        Column::Str(cells)
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Table {
    names: Vec<String>,
    cols: Vec<Column>,
}

impl Table {
    /// A table from named columns of equal length.
    pub fn new(cols: Vec<(String, Column)>) -> Result<Table> {
        let mut t = Table::default();
        for (name, col) in cols {
            if t.names.contains(&name) {
                bail!("column `{name}` appears twice");
            }
            if let Some(first) = t.cols.first() {
                if first.len() != col.len() {
                    bail!("column `{name}` has {} rows, `{}` has {}", col.len(), t.names[0], first.len());
                }
            }
            t.names.push(name);
            t.cols.push(col);
        }
        Ok(t)
    }

    pub fn len(&self) -> usize {
        self.cols.first().map_or(0, Column::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn column(&self, name: &str) -> Result<&Column> {
        match self.names.iter().position(|n| n == name) {
            Some(i) => Ok(&self.cols[i]),
            None => bail!("no column `{name}`; the table has {}", self.names.join(", ")),
        }
    }

    pub fn strs(&self, name: &str) -> Result<&[String]> {
        match self.column(name)? {
            Column::Str(v) => Ok(v),
            c => bail!("column `{name}` holds {} values, not strings", c.type_name()),
        }
    }

    /// A true/false column; integers 1/0 and the texts true/false, True/False (any case),
    /// 1/0 are read as such, anything else is named with its row.
    pub fn bools(&self, name: &str) -> Result<Cow<'_, [bool]>> {
        let bad = |row: usize, v: &dyn fmt::Display| -> anyhow::Error {
            anyhow::anyhow!("column `{name}` row {row} holds `{v}`, not a boolean (true/false, True/False or 1/0)")
        };
        match self.column(name)? {
            Column::Bool(v) => Ok(Cow::Borrowed(v)),
            Column::Int(v) => {
                v.iter().enumerate().map(|(i, &x)| if x == 0 || x == 1 { Ok(x == 1) } else { Err(bad(i, &x)) }).collect::<Result<_>>().map(Cow::Owned)
            }
            Column::Str(v) => v
                .iter()
                .enumerate()
                .map(|(i, x)| match x.to_ascii_lowercase().as_str() {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => Err(bad(i, x)),
                })
                .collect::<Result<_>>()
                .map(Cow::Owned),
            c => bail!("column `{name}` holds {} values, not true/false", c.type_name()),
        }
    }

    /// pandas' `df[name] = values`: the table with the column replaced, or added at the end.
    pub fn with_column(&self, name: &str, col: Column) -> Result<Table> {
        if col.len() != self.len() && !self.names.is_empty() {
            bail!("with_column(`{name}`): {} values for a table of {} rows", col.len(), self.len());
        }
        let mut t = self.clone();
        match t.names.iter().position(|n| n == name) {
            Some(i) => t.cols[i] = col,
            None => {
                t.names.push(name.to_string());
                t.cols.push(col);
            }
        }
        Ok(t)
    }

    /// fastai's `path`/`folder`/`suff` of `from_df`: each name in column `col` becomes
    /// `folder/name + suff` (absolute names keep their place), and every file must exist;
    /// the missing ones are named with their rows.
    pub fn resolve_files(&self, col: &str, folder: &Path, suff: &str) -> Result<Table> {
        let names = self.strs(col)?;
        let full: Vec<String> = names.iter().map(|n| folder.join(format!("{n}{suff}")).display().to_string()).collect();
        let missing: Vec<String> = full.iter().enumerate().filter(|(_, f)| !Path::new(f).is_file()).map(|(i, f)| format!("row {i}: {f}")).collect();
        if !missing.is_empty() {
            let shown = missing.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
            bail!("{} of {} files in column `{col}` do not exist under {}: {shown}", missing.len(), names.len(), folder.display());
        }
        self.with_column(col, Column::Str(full))
    }

    /// One row as (column name, value) pairs.
    pub fn row(&self, i: usize) -> Vec<(&str, Value)> {
        self.names.iter().zip(&self.cols).map(|(n, c)| (n.as_str(), c.get(i))).collect()
    }

    /// The rows at `rows`, in that order (repeats allowed).
    pub fn take(&self, rows: &[usize]) -> Table {
        Table { names: self.names.clone(), cols: self.cols.iter().map(|c| c.take(rows)).collect() }
    }

    pub fn head(&self, n: usize) -> Table {
        self.take(&(0..n.min(self.len())).collect::<Vec<_>>())
    }

    pub fn filter_mask(&self, keep: &[bool]) -> Table {
        self.take(&(0..self.len()).filter(|&i| keep[i]).collect::<Vec<_>>())
    }

    /// Each row four times, turned 0..3 quarter turns (a new `turns` column), each turn a
    /// class of its own (`label` gets `/rot90`, `/rot180`, `/rot270`): the few-shot trick
    /// (Santoro et al. 2016, Snell et al. 2017) that multiplies the classes by four.
    pub fn quarter_turns(&self, label: &str) -> Result<Table> {
        if self.names.iter().any(|n| n == "turns") {
            bail!("the table already has a `turns` column");
        }
        let labels = self.strs(label)?;
        let rows: Vec<usize> = (0..4).flat_map(|_| 0..self.len()).collect();
        let mut t = self.take(&rows);
        let turned = rows.iter().enumerate().map(|(k, &i)| match k / self.len() {
            0 => labels[i].clone(),
            q => format!("{}/rot{}", labels[i], q * 90),
        });
        let at = t.names.iter().position(|n| n == label).expect("label column");
        t.cols[at] = Column::Str(turned.collect());
        t.names.push("turns".into());
        t.cols.push(Column::Int((0..4).flat_map(|q| std::iter::repeat_n(q, self.len())).collect()));
        Ok(t)
    }

    /// Row indices grouped by the printed value of `name`, groups in value order.
    fn groups(&self, name: &str) -> Result<BTreeMap<String, Vec<usize>>> {
        let col = self.column(name)?;
        let mut g: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for i in 0..self.len() {
            g.entry(col.get(i).to_string()).or_default().push(i);
        }
        Ok(g)
    }

    /// pandas' `value_counts`: each distinct value and its count, most frequent first.
    pub fn value_counts(&self, name: &str) -> Result<Table> {
        let col = self.column(name)?;
        let mut counts: Vec<(usize, Vec<usize>)> = self.groups(name)?.into_values().map(|rows| (rows.len(), rows)).collect();
        counts.sort_by_key(|c| std::cmp::Reverse(c.0));
        let firsts: Vec<usize> = counts.iter().map(|(_, rows)| rows[0]).collect();
        Table::new(vec![(name.to_string(), col.take(&firsts)), ("count".to_string(), Column::Int(counts.iter().map(|c| c.0 as i64).collect()))])
    }

    /// Balances `name` by resampling, with replacement, the rows of every less frequent
    /// value until each value is as frequent as the most frequent one. The added rows
    /// follow the original ones; the draw is seeded.
    pub fn oversample(&self, name: &str, seed: u64) -> Result<Table> {
        let groups = self.groups(name)?;
        let most = groups.values().map(Vec::len).max().unwrap_or(0);
        let mut rng = crate::seed::rng(seed, "oversample");
        let mut rows: Vec<usize> = (0..self.len()).collect();
        for g in groups.values() {
            rows.extend((g.len()..most).map(|_| g[rng.gen_range(0..g.len())]));
        }
        Ok(self.take(&rows))
    }

    /// Stacks tables with the same columns (names and types) on top of each other.
    pub fn concat(tables: &[Table]) -> Result<Table> {
        let Some(first) = tables.first() else { bail!("concat needs at least one table") };
        let mut out = first.clone();
        for (k, t) in tables.iter().enumerate().skip(1) {
            if t.names != out.names {
                bail!("concat: table {} has columns {} but table 1 has {}", k + 1, t.names.join(", "), out.names.join(", "));
            }
            for ((name, a), b) in out.names.iter().zip(out.cols.iter_mut()).zip(&t.cols) {
                let a_type = a.type_name();
                if !a.extend(b) {
                    bail!("concat: column `{name}` is {a_type} in table 1 but {} in table {}", b.type_name(), k + 1);
                }
            }
        }
        Ok(out)
    }

    pub fn to_csv(&self, path: &Path) -> Result<()> {
        let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
        w.write_record(&self.names)?;
        for i in 0..self.len() {
            w.write_record(self.cols.iter().map(|c| c.get(i).to_string()))?;
        }
        w.flush().with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// Reads a CSV with a header row; each column gets the narrowest type that fits.
    pub fn read_csv(path: &Path) -> Result<Table> {
        let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
        let names: Vec<String> =
            r.headers().with_context(|| format!("cannot read the header of {}", path.display()))?.iter().map(String::from).collect();
        let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
        for (line, rec) in r.records().enumerate() {
            let rec = rec.with_context(|| format!("{}: bad row {}", path.display(), line + 2))?;
            for (c, v) in cells.iter_mut().zip(rec.iter()) {
                c.push(v.to_string());
            }
        }
        Table::new(names.into_iter().zip(cells.into_iter().map(Column::parse)).collect())
    }

    /// Aligned text with a row index; long tables show their head and tail, like pandas.
    pub fn render(&self, max_rows: usize) -> String {
        let n = self.len();
        let shown: Vec<usize> = if n <= max_rows { (0..n).collect() } else { (0..max_rows / 2).chain(n - max_rows / 2..n).collect() };
        let mut headers = vec![String::new()];
        headers.extend(self.names.iter().cloned());
        let mut rows: Vec<Vec<String>> = Vec::new();
        for (k, &i) in shown.iter().enumerate() {
            if n > max_rows && k == max_rows / 2 {
                rows.push(vec!["...".to_string(); headers.len()]);
            }
            let mut r = vec![i.to_string()];
            r.extend(self.cols.iter().map(|c| c.get(i).to_string()));
            rows.push(r);
        }
        let mut s = crate::text_table::render(&headers, &rows);
        if n > max_rows {
            s.push_str(&format!("\n[{n} rows x {} columns]", self.names.len()));
        }
        s
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.render(20))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs() -> Table {
        Table::new(vec![
            ("file".into(), Column::Str((0..10).map(|i| format!("f{i}.jpg")).collect())),
            ("label".into(), Column::Bool((0..10).map(|i| i < 3).collect())),
            ("score".into(), Column::Float((0..10).map(|i| i as f64 / 4.0).collect())),
        ])
        .unwrap()
    }

    #[test]
    fn quarter_turns_make_four_classes_per_label() {
        let t = Table::new(vec![
            ("file".into(), Column::Str(vec!["a.png".into(), "b.png".into()])),
            ("label".into(), Column::Str(vec!["x".into(), "y".into()])),
        ])
        .unwrap();
        let q = t.quarter_turns("label").unwrap();
        assert_eq!(q.strs("label").unwrap(), ["x", "y", "x/rot90", "y/rot90", "x/rot180", "y/rot180", "x/rot270", "y/rot270"]);
        assert_eq!(q.strs("file").unwrap()[5], "b.png");
        assert_eq!(q.column("turns").unwrap(), &Column::Int(vec![0, 0, 1, 1, 2, 2, 3, 3]));
        assert!(q.quarter_turns("label").is_err(), "turning twice is refused");
        assert!(t.quarter_turns("file").is_ok() && t.quarter_turns("nope").is_err());
    }

    #[test]
    fn oversample_balances_and_is_seeded() {
        let t = pairs();
        let o = t.oversample("label", 1).unwrap();
        assert_eq!(o.len(), 14);
        let vc = o.value_counts("label").unwrap();
        assert_eq!(vc.column("count").unwrap(), &Column::Int(vec![7, 7]));
        assert_eq!(o.head(10), t, "original rows come first");
        assert_eq!(o, t.oversample("label", 1).unwrap());
        assert_ne!(o, t.oversample("label", 2).unwrap());
        assert!(o.bools("label").unwrap()[10..].iter().all(|&b| b), "added rows are the minority");
    }

    #[test]
    fn csv_round_trip_keeps_types() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        let t = pairs();
        t.to_csv(&p).unwrap();
        assert_eq!(Table::read_csv(&p).unwrap(), t);
    }

    #[test]
    fn pandas_booleans_and_bad_ones_named_by_row() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        std::fs::write(&p, "file,is_valid,flag,n\na.jpg,True,1,0\nb.jpg,False,0,1\nc.jpg,True,yes,1\n").unwrap();
        let t = Table::read_csv(&p).unwrap();
        assert_eq!(t.column("is_valid").unwrap(), &Column::Bool(vec![true, false, true]));
        assert_eq!(&*t.bools("n").unwrap(), [false, true, true], "integers 0/1 read as booleans");
        let e = t.bools("flag").unwrap_err().to_string();
        assert_eq!(e, "column `flag` row 2 holds `yes`, not a boolean (true/false, True/False or 1/0)");
        let e = t.bools("file").unwrap_err().to_string();
        assert!(e.contains("row 0 holds `a.jpg`"), "{e}");
        let twos = Table::new(vec![("k".into(), Column::Int(vec![0, 2]))]).unwrap();
        assert!(twos.bools("k").unwrap_err().to_string().contains("row 1 holds `2`"));
    }

    #[test]
    fn with_column_adds_or_replaces() {
        let t = pairs();
        let w = t.with_column("n", Column::Int((0..10).collect())).unwrap();
        assert_eq!(w.names(), ["file", "label", "score", "n"]);
        let r = w.with_column("file", Column::Int(vec![7; 10])).unwrap();
        assert_eq!(r.names(), w.names());
        assert_eq!(r.column("file").unwrap(), &Column::Int(vec![7; 10]));
        assert!(t.with_column("n", Column::Int(vec![1])).unwrap_err().to_string().contains("1 values for a table of 10 rows"));
    }

    #[test]
    fn resolve_files_joins_the_folder_and_names_missing_rows() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.jpg"), b"x").unwrap();
        std::fs::write(d.path().join("b.jpg"), b"x").unwrap();
        let t = Table::new(vec![("file".into(), Column::Str(vec!["a".into(), "b".into()]))]).unwrap();
        let r = t.resolve_files("file", d.path(), ".jpg").unwrap();
        assert_eq!(r.strs("file").unwrap()[1], d.path().join("b.jpg").display().to_string());
        let t = Table::new(vec![("file".into(), Column::Str(vec!["a.jpg".into(), "gone.jpg".into(), "b.jpg".into()]))]).unwrap();
        let e = t.resolve_files("file", d.path(), "").unwrap_err().to_string();
        assert!(
            e.starts_with("1 of 3 files in column `file` do not exist under ")
                && e.ends_with(&format!("row 1: {}", d.path().join("gone.jpg").display())),
            "{e}"
        );
    }

    #[test]
    fn concat_checks_columns_and_render_aligns() {
        let t = pairs();
        let c = Table::concat(&[t.head(2), t.filter_mask(&[false, true, true, false, false, false, false, false, false, false])]).unwrap();
        assert_eq!(c.len(), 4);
        let other = Table::new(vec![("file".into(), Column::Int(vec![1]))]).unwrap();
        assert!(Table::concat(&[t.clone(), other]).unwrap_err().to_string().contains("columns"));
        let s = t.head(2).to_string();
        assert_eq!(s, "   file    label  score\n0  f0.jpg  true       0\n1  f1.jpg  true    0.25");
        assert!(Table::concat(&vec![t; 3]).unwrap().to_string().contains("[30 rows x 3 columns]"));
    }
}
