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

/// `bansos keys`: a generated key file is private (0600) and never replaced; an encrypted
/// one opens only with its passphrase, in the node too; and a node refuses a key file that
/// others can read.
#[cfg(unix)]
#[test]
fn key_files_are_private_encrypted_on_request_and_a_node_refuses_a_readable_one() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("agent.key");
    let run = |args: &[&std::ffi::OsStr], passphrase: Option<&str>| {
        let mut command = bansos();
        command
            .args(args)
            .env_remove(genesis::keys::KEY_PASSPHRASE_ENV);
        if let Some(passphrase) = passphrase {
            command.env(genesis::keys::KEY_PASSPHRASE_ENV, passphrase);
        }
        let output = command.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let generate = [
        "keys".as_ref(),
        "generate".as_ref(),
        "--owner".as_ref(),
        "pendamping-1".as_ref(),
        "--json".as_ref(),
        "--out".as_ref(),
        plain.as_os_str(),
    ];
    let (ok, out) = run(&generate, None);
    assert!(ok, "{out}");
    let shown: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(shown["encrypted"], false);
    assert!(shown["peer_id"].as_str().unwrap().starts_with("12D3KooW"));
    let mode = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&plain).unwrap();
    let (ok, out) = run(&generate, None);
    assert!(!ok, "an existing key file is never replaced: {out}");
    assert_eq!(std::fs::read(&plain).unwrap(), before);

    let encrypted = dir.path().join("agent.enc.key");
    let encrypt = [
        "keys".as_ref(),
        "encrypt".as_ref(),
        plain.as_os_str(),
        "--out".as_ref(),
        encrypted.as_os_str(),
    ];
    let (ok, out) = run(&encrypt, None);
    assert!(
        !ok && out.contains(genesis::keys::KEY_PASSPHRASE_ENV),
        "{out}"
    );
    let (ok, out) = run(&encrypt, Some("sepuluh dua belas"));
    assert!(ok, "{out}");
    let args = [
        "keys".as_ref(),
        "show".as_ref(),
        "--check".as_ref(),
        "--json".as_ref(),
        encrypted.as_os_str(),
    ];
    let (ok, out) = run(&args, Some("sepuluh dua belas"));
    assert!(ok, "{out}");
    let shown_encrypted: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(shown_encrypted["encrypted"], true);
    assert_eq!(shown_encrypted["public_key"], shown["public_key"]);
    let (ok, out) = run(&args, Some("sepuluh dua belaz"));
    assert!(!ok && out.contains("passphrase does not open"), "{out}");

    // A node's key encrypted in place of the plain one: the node needs the passphrase.
    let net = dir.path().join("net");
    testnet(&net);
    let home = net.join("nodes/observer-1");
    let node_key = home.join("node.key");
    let (ok, out) = run(
        &[
            "keys".as_ref(),
            "encrypt".as_ref(),
            node_key.as_os_str(),
            "--out".as_ref(),
            home.join("node.enc.key").as_os_str(),
        ],
        Some("sepuluh dua belas"),
    );
    assert!(ok, "{out}");
    std::fs::rename(home.join("node.enc.key"), &node_key).unwrap();
    let node = ["node".as_ref(), "--home".as_ref(), home.as_os_str()];
    let (ok, out) = run(&node, None);
    assert!(
        !ok && out.contains(genesis::keys::KEY_PASSPHRASE_ENV),
        "{out}"
    );
    // Readable by others: refused before anything else, with the fix in the message.
    std::fs::set_permissions(&node_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = run(&node, Some("sepuluh dua belas"));
    assert!(!ok && out.contains("chmod 600"), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
}
