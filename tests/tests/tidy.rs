//! Project rules checked as tests (rust-analyzer's tidy, TigerBeetle's tidy.zig): the crates
//! depend on each other one way only, the verifier crates stay free of IO crates, Malachite
//! stays inside the node's consensus module, library code asserts programmer errors instead
//! of hiding them and never panics on input, and functions stay short enough to read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `cargo tree` of one package (normal dependencies only), one crate name per line.
fn dependency_tree(package: &str, extra: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .args(extra)
        .current_dir(workspace_root())
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

const IO_CRATES: [&str; 11] = [
    "tokio",
    "libp2p",
    "axum",
    "hyper",
    "reqwest",
    "async-std",
    "mio",
    "rocksdb",
    "librocksdb-sys",
    "tower",
    "arc-malachitebft-core-consensus",
];

fn assert_free_of_io(package: &str, extra: &[&str]) {
    let tree = dependency_tree(package, extra);
    for forbidden in IO_CRATES {
        assert!(
            !tree.iter().any(|name| name == forbidden),
            "{package} {extra:?} depends on {forbidden}"
        );
    }
}

#[test]
fn ledger_without_rocksdb_depends_on_no_runtime_network_http_or_database_crate() {
    assert_free_of_io("bansos-ledger", &["--no-default-features"]);
    let with_rocksdb = dependency_tree("bansos-ledger", &[]);
    assert!(
        with_rocksdb.iter().any(|n| n == "rocksdb"),
        "the default build has RocksDB"
    );
    assert!(!with_rocksdb.iter().any(|n| n == "tokio"));
}

#[test]
fn proto_depends_on_no_malachite_runtime_network_http_or_database_crate() {
    assert_free_of_io("bansos-proto", &[]);
    let tree = dependency_tree("bansos-proto", &[]);
    assert!(!tree.iter().any(|n| n.starts_with("arc-malachitebft")));
}

/// The workspace crates each crate may depend on (normal dependencies): binary → node /
/// client → proto → ledger, with genesis beside them (on proto and ledger).
fn allowed_dependencies() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("bansos-ledger", vec![]),
        ("bansos-proto", vec!["bansos-ledger"]),
        // Genesis records the pseudonym service's public key, which proto's protocol derives.
        ("bansos-genesis", vec!["bansos-ledger", "bansos-proto"]),
        ("bansos-auth", vec!["bansos-ledger"]),
        ("bansos-explorer", vec!["bansos-ledger", "bansos-proto"]),
        (
            "bansos-node",
            vec![
                "bansos-ledger",
                "bansos-proto",
                "bansos-genesis",
                "bansos-auth",
                "bansos-explorer",
            ],
        ),
        (
            "bansos-client",
            vec![
                "bansos-ledger",
                "bansos-proto",
                "bansos-genesis",
                "bansos-auth",
                "bansos-audit",
            ],
        ),
        (
            "bansos-cli",
            vec![
                "bansos-ledger",
                "bansos-genesis",
                "bansos-node",
                "bansos-client",
                "bansos-audit",
            ],
        ),
        ("bansos-byzantine", vec!["bansos-node", "bansos-genesis"]),
        ("bansos-audit", vec!["bansos-ledger", "bansos-proto"]),
        (
            "bansos-tests",
            vec![
                "bansos-ledger",
                "bansos-genesis",
                "bansos-proto",
                "bansos-client",
            ],
        ),
    ])
}

#[test]
fn crates_depend_on_each_other_one_way_only() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success());
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let allowed = allowed_dependencies();
    let packages = metadata["packages"].as_array().expect("packages");
    let workspace: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    for package in packages {
        let name = package["name"].as_str().expect("name");
        let permitted = allowed
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the layering table of tidy.rs"));
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let target = dependency["name"].as_str().expect("dependency name");
            let normal = dependency["kind"].is_null();
            if normal && workspace.contains(&target) {
                assert!(
                    permitted.contains(&target),
                    "{name} depends on {target}; the layering (ARCHITECTURE.md) allows only {permitted:?}"
                );
            }
        }
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every crate's `src/` files (library and binary code, not tests or benches).
fn source_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in [
        "ledger", "proto", "genesis", "auth", "node", "client", "cli", "audit", "explorer",
    ] {
        rust_files(&root.join(krate).join("src"), &mut files);
    }
    files
}

/// The text of a file up to its `#[cfg(test)]` module, which is exempt, as is a unit-test
/// module in a file of its own (`src/**/tests.rs`, declared `#[cfg(test)] mod tests;`).
fn non_test_code(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).expect("readable");
    match text.find("#[cfg(test)]") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Modules that read input from outside (network, files, users): there, even `expect` is
/// forbidden, because any failure must be an error that names the bad input.
const INPUT_PATHS: [&str; 13] = [
    "auth/src/lib.rs",
    "node/src/consortium.rs",
    "node/src/track.rs",
    "ledger/src/tx.rs",
    "ledger/src/block.rs",
    "ledger/src/genesis.rs",
    "proto/src/",
    "node/src/api.rs",
    "node/src/config.rs",
    "node/src/consensus/codec.rs",
    "node/src/consensus/streams.rs",
    "client/src/http.rs",
    "genesis/src/testnet.rs",
];

#[test]
fn library_code_asserts_invariants_and_never_panics_on_input() {
    let mut offences = Vec::new();
    for file in source_files() {
        // The conformance suite is a test module of its own.
        if file.ends_with("conformance.rs") {
            continue;
        }
        let name = relative(&file);
        let input_path = INPUT_PATHS.iter().any(|p| name.starts_with(p));
        for (number, line) in non_test_code(&file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut forbidden = vec![".unwrap()", "panic!(", "todo!(", "unimplemented!(", "dbg!("];
            if input_path {
                forbidden.push(".expect(");
            }
            for pattern in forbidden {
                if code.contains(pattern) {
                    offences.push(format!(
                        "{name}:{}: {pattern} in {}",
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "bad input must be an error, and a broken invariant an assert!/expect with a reason \
         (never .unwrap(), and no expect on input paths):\n{}",
        offences.join("\n")
    );
}

#[test]
fn malachite_is_named_only_under_node_consensus() {
    let mut offences = Vec::new();
    for file in source_files() {
        let name = relative(&file);
        if name.starts_with("node/src/consensus/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable");
        if text.contains("arc_malachitebft") || text.contains("malachitebft_") {
            offences.push(name);
        }
    }
    assert!(
        offences.is_empty(),
        "Malachite named outside node/src/consensus/: {offences:?}"
    );
}

/// The most lines a function may span (signature to closing brace).
const FUNCTION_LINES_MAX: usize = 100;

/// Functions over the limit that are still to be split, as `path::name`. The list only
/// shrinks: a new long function fails, and so does an entry that is no longer long.
const LONG_FUNCTIONS: [&str; 0] = [];

/// Every function in `text` with its line count: a `fn` line, and the first later line at
/// the same indentation that closes it (rustfmt puts the closing brace there).
fn function_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let after_qualifiers = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ")
            .trim_start_matches("const ")
            .trim_start_matches("async ")
            .trim_start_matches("unsafe ");
        let Some(rest) = after_qualifiers.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // A declaration without a body (in a trait) ends in `;` before any `{`.
        let header_end = lines[start..]
            .iter()
            .map(|l| l.split("//").next().unwrap_or("").trim_end())
            .find(|l| l.ends_with('{') || l.ends_with(';'));
        if header_end.is_none_or(|l| l.ends_with(';')) {
            continue;
        }
        let closing = " ".repeat(indent) + "}";
        if let Some(end) = lines[start + 1..].iter().position(|l| *l == closing) {
            out.push((name, end + 2));
        }
    }
    out
}

#[test]
fn functions_stay_short_enough_to_read_at_once() {
    let mut long = Vec::new();
    for file in source_files() {
        let text = non_test_code(&file);
        for (name, lines) in function_lengths(&text) {
            if lines > FUNCTION_LINES_MAX {
                long.push(format!("{}::{name}", relative(&file)));
            }
        }
    }
    let unexpected: Vec<&String> = long
        .iter()
        .filter(|f| !LONG_FUNCTIONS.contains(&f.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "functions over {FUNCTION_LINES_MAX} lines (split them): {unexpected:?}"
    );
    let stale: Vec<&&str> = LONG_FUNCTIONS
        .iter()
        .filter(|f| !long.iter().any(|l| l == *f))
        .collect();
    assert!(
        stale.is_empty(),
        "no longer long, remove from LONG_FUNCTIONS: {stale:?}"
    );
}

#[test]
fn the_function_length_check_measures_what_it_claims() {
    let text = "fn short() {\n    one();\n}\n\npub async fn longer(\n    a: u8,\n) {\n    if a {\n    }\n}\n\ntrait T {\n    fn declared(&self)\n        -> u8;\n}\n";
    assert_eq!(
        function_lengths(text),
        vec![("short".to_owned(), 3), ("longer".to_owned(), 6)]
    );
}
