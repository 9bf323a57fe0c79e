//! The `bansos` command line as a user runs it: exit codes, one-line errors, and signed
//! transactions printed by `bansos tx --print`. (This test also makes `cargo test` build the
//! binary that the cluster tests in `tests/` start.)

use std::path::Path;
use std::process::Command;

use ledger::tx::{Action, Transaction};

fn bansos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bansos"))
}

fn testnet(dir: &Path) {
    let status = bansos()
        .args(["testnet", "--validators", "4", "--observers", "1", "--out"])
        .arg(dir)
        .output()
        .expect("bansos runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

fn village(dir: &Path) -> String {
    let genesis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("genesis.json")).unwrap()).unwrap();
    genesis["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .find(|c| c.starts_with("35.10.") && c.split('.').count() == 4)
        .expect("a Banyuwangi village")
}

#[test]
fn tx_print_outputs_a_signed_transaction_that_post_v1_tx_accepts_the_form_of() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    testnet(&net);
    let output = bansos()
        .args([
            "tx",
            "propose",
            "--print",
            "--nonce",
            "0",
            "--chain-id",
            "bansos-testnet",
        ])
        .arg("--key")
        .arg(net.join("keys/pemda-3510.key"))
        .args(["--nik", "3510010101800001", "--pseudonym-key"])
        .arg(net.join("keys/pseudonym.secret"))
        .args([
            "--region",
            &village(&net),
            "--household-size",
            "4",
            "--welfare-decile",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tx: Transaction =
        serde_json::from_slice(&output.stdout).expect("the printed JSON is a transaction");
    tx.verify_signature().expect("signed with the key given");
    tx.check_form("bansos-testnet").expect("well formed");
    assert_eq!(tx.body.nonce, 0);
    assert!(matches!(
        tx.body.action,
        Action::Propose {
            household_size: 4,
            ..
        }
    ));
    // The NIK itself never appears in what would be sent.
    assert!(!String::from_utf8_lossy(&output.stdout).contains("3510010101800001"));
}

#[test]
fn bad_input_gives_a_one_line_error_and_a_failure_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    testnet(&net);
    let output = bansos()
        .args([
            "tx",
            "resolve-objection",
            "--print",
            "--nonce",
            "0",
            "--chain-id",
            "bansos-testnet",
        ])
        .arg("--key")
        .arg(net.join("keys/kemensos.key"))
        .args(["--objection", "not-hex", "--upheld", "true"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: --objection"), "{stderr}");
    // A node whose directory holds no config says so.
    let output = bansos()
        .args(["node", "--home"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("config.toml"));
}

#[test]
fn a_node_whose_key_is_not_in_genesis_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    testnet(&net);
    // Swap the observer's key for a fresh one that genesis does not list.
    let other = dir.path().join("other");
    testnet(&other);
    std::fs::copy(
        other.join("nodes/observer-1/node.key"),
        net.join("nodes/observer-1/node.key"),
    )
    .unwrap();
    let output = bansos()
        .args(["node", "--home"])
        .arg(net.join("nodes/observer-1"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not an observer in genesis"), "{stderr}");
}

#[test]
fn audit_verify_of_a_home_without_data_fails_with_one_line_and_json_names_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    testnet(&net);
    // A node that never ran has no ledger yet: nothing to verify is a failure, not a pass.
    let home = net.join("nodes/kemensos");
    let output = bansos()
        .args(["audit", "verify", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: audit failed: store:"),
        "{stderr}"
    );
    let output = bansos()
        .args(["audit", "verify", "--json", "--home"])
        .arg(&home)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["failure"]["check"], "store");
}
