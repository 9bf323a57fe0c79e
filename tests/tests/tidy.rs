//! Project rules checked as tests (rust-analyzer's tidy, TigerBeetle's tidy.zig): the
//! ledger core stays free of IO crates, and library code has no debugging leftovers or
//! panicking shortcuts.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

#[test]
fn ledger_depends_on_no_async_runtime_network_or_http_crate() {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "bansos-ledger",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    for forbidden in [
        "tokio ",
        "libp2p",
        "axum ",
        "hyper ",
        "reqwest ",
        "async-std",
        "mio ",
    ] {
        assert!(
            !tree.lines().any(|line| line.starts_with(forbidden)),
            "ledger depends on {forbidden}"
        );
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

/// The text of a file up to its `#[cfg(test)]` module, which is exempt.
fn non_test_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("readable");
    match text.find("#[cfg(test)]") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

#[test]
fn library_code_has_no_unwrap_panic_todo_or_dbg() {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in ["ledger/src", "genesis/src", "explorer/src"] {
        rust_files(&root.join(krate), &mut files);
    }
    let mut offences = Vec::new();
    for file in files {
        // The conformance suite is a test module of its own.
        if file.ends_with("conformance.rs") {
            continue;
        }
        for (number, line) in non_test_code(&file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for pattern in [
                ".unwrap()",
                ".expect(",
                "panic!(",
                "todo!(",
                "unimplemented!(",
                "dbg!(",
            ] {
                if code.contains(pattern) {
                    offences.push(format!(
                        "{}:{}: {}",
                        file.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "library code must not panic on bad input:\n{}",
        offences.join("\n")
    );
}
