//! The `bansos-byzantine` binary as the cluster tests start it (this test also makes
//! `cargo test --workspace` build the binary next to `bansos`).

use std::process::Command;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bansos-byzantine"))
}

#[test]
fn an_unknown_attack_is_refused_with_the_known_ones_named() {
    let output = binary()
        .args(["--home", "/nonexistent", "--attacks", "fork-everything"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown attack"), "{stderr}");
    assert!(stderr.contains("equivocate"), "{stderr}");
}

#[test]
fn a_missing_home_is_an_error_not_a_panic() {
    let output = binary()
        .args(["--home", "/nonexistent/bansos-home", "--attacks", "floods"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("bansos-byzantine: attacks floods"),
        "{stderr}"
    );
    assert!(stderr.contains("error:"), "{stderr}");
}

#[test]
fn crafted_signatures_without_the_institution_key_is_refused() {
    let output = binary()
        .args([
            "--home",
            "/nonexistent/bansos-home",
            "--attacks",
            "crafted-signatures",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("transaction key"), "{stderr}");
}
