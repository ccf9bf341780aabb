//! The README quotes code that compiles: every `ANCHOR: hook` region of the minimal example appears in it
//! verbatim (dedented), so the documented hook lines cannot drift from the example that CI builds and runs.

use htsr_e2e::workspace_root;

fn anchored_regions(source: &str) -> Vec<String> {
    let mut regions = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in source.lines() {
        let t = line.trim();
        if t == "// ANCHOR: hook" {
            current = Some(Vec::new());
        } else if t == "// ANCHOR_END: hook" {
            let lines = current.take().expect("ANCHOR_END after ANCHOR");
            let indent = lines
                .iter()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start().len())
                .min()
                .unwrap_or(0);
            regions.push(
                lines
                    .iter()
                    .map(|l| l.get(indent..).unwrap_or("").trim_end())
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    regions
}

#[test]
fn readme_hook_lines_come_from_the_compiled_example() {
    let root = workspace_root();
    let example = std::fs::read_to_string(root.join("examples/src/bin/mlp.rs")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let regions = anchored_regions(&example);
    assert_eq!(regions.len(), 3, "build, step and finish regions");
    for region in regions {
        assert!(
            readme.contains(&region),
            "README.md lacks this hook code from mlp.rs:\n{region}"
        );
    }
}
