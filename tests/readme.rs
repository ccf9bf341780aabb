//! The docs quote code that compiles: every `ANCHOR: hook` region of the minimal examples appears verbatim
//! (dedented) in the page that documents that hook (the tch example in the README, the Burn and Candle examples in
//! docs/HOOKS.md), so the documented hook lines cannot drift from the examples that CI builds and runs.

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

fn assert_quoted(example: &str, page: &str) {
    let root = workspace_root();
    let source = std::fs::read_to_string(root.join(example)).unwrap();
    let text = std::fs::read_to_string(root.join(page)).unwrap();
    let regions = anchored_regions(&source);
    assert_eq!(
        regions.len(),
        3,
        "{example}: build, step and finish regions"
    );
    for region in regions {
        assert!(
            text.contains(&region),
            "{page} lacks this hook code from {example}:\n{region}"
        );
    }
}

#[test]
fn readme_hook_lines_come_from_the_compiled_example() {
    assert_quoted("examples/src/bin/mlp.rs", "README.md");
}

#[test]
fn the_burn_and_candle_hook_lines_come_from_their_compiled_examples() {
    assert_quoted("examples/burn/src/bin/mlp.rs", "docs/HOOKS.md");
    assert_quoted("examples/candle/src/bin/mlp.rs", "docs/HOOKS.md");
}
