//! The layout's rules, checked on the source: the top-level modules of `src/` import
//! each other without cycles, `session` (the str0m wrapper) imports nothing above it,
//! and `sfu` (the per-packet decisions) only `session`'s value types. A `crate::x`
//! path anywhere outside a comment counts as an import of `x`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Modules every other may use: leaves that import nothing of the crate.
const LEAVES: &[&str] = &["clock", "ids"];

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The crate modules a source text names: `crate::x` and each `x` of `crate::{x, y}`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let items: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .collect(),
                None => vec![rest],
            };
            for item in items {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    names.insert(name);
                }
            }
        }
    }
    names
}

/// Top-level module → the other top-level modules it imports. The crate root and the
/// binary's start-up (`lib`, `main`, `app`) wire everything together and are left out.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a path");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if ["lib", "main", "app"].contains(&module.as_str()) {
            continue;
        }
        let text = fs::read_to_string(&file).expect("readable source");
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(named_modules(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

/// A cycle through `start`, if any, as the modules along it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    walk(graph, start, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let graph = module_graph();
    assert!(graph.len() > 10, "found the modules: {graph:?}");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn session_imports_nothing_above_it_and_sfu_only_session() {
    let graph = module_graph();
    let allowed = |extra: &[&str]| -> BTreeSet<String> {
        LEAVES.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let session = &graph["session"];
    assert!(
        session.is_subset(&allowed(&[])),
        "session imports {session:?}"
    );
    let sfu = &graph["sfu"];
    assert!(sfu.is_subset(&allowed(&["session"])), "sfu imports {sfu:?}");
    for leaf in LEAVES {
        assert!(graph[*leaf].is_empty(), "{leaf} imports {:?}", graph[*leaf]);
    }
}

#[test]
fn the_scan_sees_paths_and_groups_but_not_comments() {
    let text = "use crate::{clock, ids as id};\nlet x = crate::room::Rooms::new(); // crate::api\n";
    let names = named_modules(text);
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["clock", "ids", "room"]
    );
}
