//! `--grid name=v1,v2`: the axes of a sweep and the points of their product, in the order
//! a user reads them (the last axis varies fastest).
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    pub name: String,
    pub values: Vec<String>,
}

/// Parses every `--grid` argument; a name given twice or an axis without values is refused.
pub fn parse_grid(grids: &[String]) -> Result<Vec<Axis>> {
    let mut axes: Vec<Axis> = Vec::new();
    for g in grids {
        let Some((k, vs)) = g.split_once('=') else { bail!("--grid `{g}`: expected name=v1,v2,...") };
        let values: Vec<String> = vs.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            bail!("--grid `{g}` has no values");
        }
        let name = k.trim().to_string();
        if axes.iter().any(|a| a.name == name) {
            bail!("--grid names `{name}` twice: give all its values in one --grid {name}=v1,v2,...");
        }
        axes.push(Axis { name, values });
    }
    if axes.is_empty() {
        bail!("give at least one --grid name=v1,v2");
    }
    Ok(axes)
}

/// Every combination of the axes' values as `name=value` settings.
pub fn points(axes: &[Axis]) -> Vec<Vec<String>> {
    let mut combos: Vec<Vec<String>> = vec![vec![]];
    for a in axes {
        combos = combos.iter().flat_map(|c| a.values.iter().map(move |v| [c.clone(), vec![format!("{}={v}", a.name)]].concat())).collect();
    }
    combos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_in_reading_order() {
        let axes = parse_grid(&["lr=1e-3,3e-3".into(), "size=64, 96".into()]).unwrap();
        let p = points(&axes);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], ["lr=1e-3", "size=64"]);
        assert_eq!(p[1], ["lr=1e-3", "size=96"]);
        assert_eq!(p[3], ["lr=3e-3", "size=96"]);
        assert!(parse_grid(&["lr=".into()]).is_err());
        assert!(parse_grid(&["lr=1".into(), "lr=2".into()]).is_err());
        assert!(parse_grid(&[]).is_err());
    }
}
