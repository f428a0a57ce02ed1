//! What identifies a run's code and machine, in one list: the script, the commit of the
//! experiment's repository (apart from the runner's own), the versions, device, threads,
//! precision, host and user. `runner show`, `compare` and the MLflow tags all read it, so
//! the three say the same things under the same names.
use super::record::{value_string, RunRecord};

/// One identifying field: how tables label it, the MLflow tag it becomes, its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub label: &'static str,
    pub tag: &'static str,
    pub value: String,
}

/// Record keys (also their tags) that only some runs have: read by name, whether this
/// version writes them or not.
const OPTIONAL: [(&str, &str); 3] = [("threads", "threads"), ("precision", "precision"), ("world size", "world_size")];

/// The run's identifying fields that it has, in display order. `git commit` is the commit
/// of the repository holding the script (absent outside one); `runner commit` is the
/// runner's own.
pub fn provenance(rec: &RunRecord) -> Vec<Field> {
    let mut out = Vec::new();
    let mut push = |label, tag, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push(Field { label, tag, value });
        }
    };
    push("script", "mlflow.source.name", Some(rec.script.clone()));
    push("git commit", "mlflow.source.git.commit", rec.git_commit.clone());
    push("git dirty", "git_dirty", rec.git_dirty.map(|d| d.to_string()));
    push("runner", "runner.version", Some(rec.runner_version.clone()));
    push("runner commit", "runner.commit", Some(rec.runner_commit.clone()));
    push("libtorch", "libtorch", Some(rec.libtorch.clone()));
    push("device", "device", Some(rec.device.clone()));
    for (label, key) in OPTIONAL {
        push(label, key, rec.field(key).map(|v| value_string(&v)));
    }
    push("host", "host", Some(rec.host.clone()));
    push("user", "mlflow.user", rec.user.clone());
    out
}

/// A commit as tables show it: its first 10 characters, `+dirty` when the checkout had changes.
pub fn short_commit(commit: &str, dirty: Option<bool>) -> String {
    let short: String = commit.chars().take(10).collect();
    if dirty == Some(true) {
        format!("{short}+dirty")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_commits_are_told_apart_and_unknown_fields_are_read() {
        let text = "format_version = 1\nid = \"a\"\nname = \"n\"\nscript = \"/x/t.rhai\"\nscript_sha256 = \"0\"\nstatus = \"completed\"\n\
                    seed = 1\ncommand = []\nrunner_version = \"0.3.0\"\nrunner_commit = \"r1\"\nlibtorch = \"2.11.0\"\ndevice = \"cpu\"\n\
                    host = \"h\"\nstarted = \"t\"\nthreads = 4\nprecision = \"bf16\"\n";
        let mut rec: RunRecord = toml::from_str(text).unwrap();
        let get = |rec: &RunRecord, tag: &str| provenance(rec).into_iter().find(|f| f.tag == tag).map(|f| f.value);
        assert_eq!(get(&rec, "mlflow.source.git.commit"), None, "outside a git repository there is no source commit");
        assert_eq!(get(&rec, "runner.commit").as_deref(), Some("r1"));
        assert_eq!(get(&rec, "threads").as_deref(), Some("4"));
        assert_eq!(get(&rec, "precision").as_deref(), Some("bf16"));
        assert_eq!(get(&rec, "world_size"), None);
        rec.git_commit = Some("g1".into());
        rec.git_dirty = Some(true);
        assert_eq!(get(&rec, "mlflow.source.git.commit").as_deref(), Some("g1"));
        assert_eq!(get(&rec, "git_dirty").as_deref(), Some("true"));
        assert_eq!(short_commit("0123456789abcdef", Some(true)), "0123456789+dirty");
    }
}
