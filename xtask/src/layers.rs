//! The layer check itself (see `main.rs`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::Table;

/// Reads the layer table: the rows `| N | crate-a (note), crate-b, ... |` of the section headed `## Layers`.
pub fn table(architecture: &str) -> Result<Table, String> {
    let mut table = Table::new();
    let mut in_section = false;
    for line in architecture.lines() {
        if line.starts_with("## ") {
            in_section = line.trim() == "## Layers";
            continue;
        }
        if !in_section {
            continue;
        }
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let (Some(layer), Some(crates)) = (cells.first(), cells.get(1)) else {
            continue;
        };
        let Ok(layer) = layer.parse::<u32>() else {
            continue;
        };
        for item in without_notes(crates).split(',') {
            let name = item.trim().trim_matches('`');
            if !name.is_empty() {
                table.insert(name.to_string(), layer);
            }
        }
    }
    if table.is_empty() {
        return Err("no layer table found under `## Layers` in ARCHITECTURE.md".into());
    }
    Ok(table)
}

/// `cell` without its parenthesized notes: "htsr-server (+ axum, hyper), htsr-x" -> "htsr-server , htsr-x".
fn without_notes(cell: &str) -> String {
    let mut depth = 0usize;
    cell.chars()
        .filter(|&c| {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => return depth == 0,
            }
            false
        })
        .collect()
}

/// Workspace crates and their normal and build dependencies on other workspace crates.
pub fn edges(metadata: &Value) -> Vec<(String, Vec<String>)> {
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    packages
        .iter()
        .filter_map(|p| {
            let name = p["name"].as_str()?.to_string();
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .filter_map(|d| d["name"].as_str())
                .filter(|d| names.iter().any(|n| n == d))
                .map(str::to_string)
                .collect();
            Some((name, deps))
        })
        .collect()
}

/// Every problem with `edges` under `table`.
pub fn problems(table: &Table, edges: &[(String, Vec<String>)]) -> Vec<String> {
    let mut out = Vec::new();
    for (krate, deps) in edges {
        let Some(&layer) = table.get(krate) else {
            out.push(format!("{krate} has no layer in the table"));
            continue;
        };
        for dep in deps {
            match table.get(dep) {
                None => out.push(format!("{krate} uses {dep}, which has no layer in the table")),
                Some(&d) if d >= layer => out.push(format!(
                    "{krate} (layer {layer}) uses {dep} (layer {d}): a crate may use only crates of lower layers"
                )),
                Some(_) => {}
            }
        }
    }
    for name in table.keys() {
        if !edges.iter().any(|(k, _)| k == name) {
            out.push(format!(
                "the table names {name}, which is not a crate of the workspace"
            ));
        }
    }
    out
}

/// Runs the check on the workspace at `root`: a summary, or every problem found.
pub fn check(root: &Path) -> Result<String, Vec<String>> {
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md"))
        .map_err(|e| vec![format!("reading ARCHITECTURE.md: {e}")])?;
    let table = table(&architecture).map_err(|e| vec![e])?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| vec![format!("running cargo metadata: {e}")])?;
    if !output.status.success() {
        return Err(vec![format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )]);
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| vec![format!("cargo metadata's output: {e}")])?;
    let edges = edges(&metadata);
    let found = problems(&table, &edges);
    if !found.is_empty() {
        return Err(found);
    }
    let n_edges: usize = edges.iter().map(|(_, d)| d.len()).sum();
    Ok(format!(
        "xtask layers: {} crates in {} layers, {n_edges} dependencies between them, all downward",
        edges.len(),
        table.values().max().copied().unwrap_or(0)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# x\n## Layers\n\n| layer | crates |\n|---|---|\n| 2 | b (note, more), c |\n| 1 | a |\n\n## Next\n| 9 | z |\n";

    #[test]
    fn the_table_is_read_from_the_layers_section_only() {
        let t = table(DOC).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!((t["a"], t["b"], t["c"]), (1, 2, 2));
    }

    #[test]
    fn upward_and_sideways_uses_and_unknown_crates_are_problems() {
        let t = table(DOC).unwrap();
        let ok = vec![
            ("a".into(), vec![]),
            ("b".into(), vec!["a".into()]),
            ("c".into(), vec!["a".into()]),
        ];
        assert!(problems(&t, &ok).is_empty());
        let bad = vec![
            ("a".into(), vec!["b".into()]),
            ("b".into(), vec!["c".into()]),
            ("c".into(), vec!["new".into()]),
            ("new".into(), vec![]),
        ];
        let p = problems(&t, &bad);
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p.iter().any(|m| m.contains("a (layer 1) uses b (layer 2)")));
        assert!(p.iter().any(|m| m.contains("b (layer 2) uses c (layer 2)")));
        assert!(p.iter().any(|m| m.contains("new has no layer")));
    }

    #[test]
    fn the_workspace_keeps_to_its_layer_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        if let Err(problems) = check(&root) {
            panic!("{}", problems.join("\n"));
        }
    }
}
