//! Every example in the README runs, so the README cannot rot: each ```rhai block as a
//! script (its params at smoke settings), then each `runner ...` line of the ```sh blocks
//! (those that submit to Slurm run on the test cluster, in tests/slurm.rs).
mod common;
use common::{readme_blocks as blocks, Sandbox};

/// Smoke values for the params a README example declares.
const SMOKE: [(&str, &str); 4] = [("size", "32"), ("epochs", "1"), ("arch", "resnet18"), ("n", "10")];

#[test]
fn readme_examples_run() {
    let readme = std::fs::read_to_string(common::project_root().join("README.md")).unwrap();
    let sb = Sandbox::new();
    let scripts = blocks(&readme, "rhai");
    assert!(scripts.len() >= 2, "the README has script examples");
    for (i, src) in scripts.iter().enumerate() {
        let name = format!("example{i}.rhai");
        sb.write(&name, src);
        let mut args = vec![name.clone()];
        for (k, v) in SMOKE {
            if src.contains(&format!("param(\"{k}\"")) {
                args.extend(["--set".to_string(), format!("{k}={v}")]);
            }
        }
        let r = sb.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.code, 0, "README example {i} failed:\n{src}\n{}", r.stderr);
    }
    let root = common::project_root();
    let experiments = format!("{}/experiments/", root.display());
    let mut ran = 0;
    for block in blocks(&readme, "sh") {
        for line in block.lines() {
            let cmd = line.split(" #").next().unwrap().trim();
            let Some(rest) = cmd.strip_prefix("runner ") else { continue };
            // Submitting to Slurm needs the test cluster: tests/slurm.rs runs those lines there.
            if cmd.contains("--on slurm") && !cmd.contains("--dry-run") {
                continue;
            }
            let rest = rest.replace("experiments/", &experiments);
            let args: Vec<&str> = rest.split_whitespace().collect();
            let r = sb.run(&args);
            assert_eq!(r.code, 0, "README command `{cmd}` failed:\n{}\n{}", r.stdout, r.stderr);
            ran += 1;
        }
    }
    assert!(ran >= 8, "README commands run: {ran}");
}
