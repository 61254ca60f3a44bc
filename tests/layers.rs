//! The modules of `src/` depend on each other one way only: the command line, the daemon
//! and the web UI (inside the daemon) on the application layer, the application layer on
//! the engine, the engine on the store, the files and the configuration. A `crate::` path
//! that points up (or sideways between the front ends) fails here, with the line.

use std::collections::BTreeMap;
use std::path::Path;

/// Each module's layer: a module may only use modules of lower layers.
const LAYERS: &[(&str, u8)] = &[
    // The fuzz targets' entry points (`fuzz/`), above every front end.
    ("fuzzing", 6),
    ("cli", 5),
    ("daemon", 5),
    ("client", 4),
    ("app", 3),
    ("engine", 2),
    ("store", 1),
    ("config", 1),
    ("images", 1),
    ("power", 1),
    ("secrets", 0),
    ("password", 1),
    ("site_key", 1),
    ("kea", 0),
    ("files", 0),
    ("identity", 0),
    ("time", 0),
];

/// What the crate root re-exports, by the module it comes from.
fn module_of(name: &str) -> &str {
    match name {
        "Config" | "CONFIG_FILE" | "DaemonConfig" | "FileConfig" | "Paths" | "PowerConfig"
        | "WebConfig" => "config",
        "Engine" | "Executed" | "OpenOptions" | "ReplaySummary" | "LeasesSummary" | "Plan"
        | "SNAPSHOT_EVERY" | "resolve" | "DB_FILE" => "engine",
        "Drift" | "WriteOutcome" | "write_batch" => "files",
        "current_actor" => "identity",
        "parse_time" => "time",
        n if n.ends_with("Store") || n.ends_with("Error") || n == "Snapshot" || n == "Append" => {
            "store"
        }
        other => other,
    }
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The names a line takes from the crate root: `crate::a::…`, `crate::{A, b::C}`.
fn crate_names(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let head = item.trim().split("::").next().unwrap_or("").trim();
                if !head.is_empty() {
                    out.push(head.to_string());
                }
            }
        } else {
            let head: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(head);
        }
    }
    out
}

#[test]
fn the_modules_of_src_depend_downwards_only() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut wrong = Vec::new();
    let mut seen = 0;
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "bin" || top == "lib" {
            continue;
        }
        let Some(&mine) = layers.get(top.as_str()) else {
            panic!(
                "src/{} is in no layer: add `{top}` to LAYERS",
                rel.display()
            );
        };
        let text = std::fs::read_to_string(&f).unwrap();
        // Tests may reach anywhere.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for name in crate_names(line) {
                let module = module_of(&name);
                if module == top {
                    continue;
                }
                seen += 1;
                match layers.get(module) {
                    Some(&theirs) if theirs < mine => {}
                    _ => wrong.push(format!(
                        "src/{}:{}: {top} uses {module} (`{}`)",
                        rel.display(),
                        n + 1,
                        line.trim()
                    )),
                }
            }
        }
    }
    assert!(
        seen > 20,
        "only {seen} crate paths found: is the scan broken?"
    );
    assert!(
        wrong.is_empty(),
        "dependencies pointing up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scan_sees_grouped_and_plain_paths() {
    assert_eq!(
        crate_names("use crate::{Config, engine::Batch};"),
        ["Config", "engine"]
    );
    assert_eq!(
        crate_names("let x = crate::daemon::Shared::new();"),
        ["daemon"]
    );
}
