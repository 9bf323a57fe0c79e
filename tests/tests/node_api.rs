//! The node's HTTP API against a real one-validator network: every kind of bad input gets a
//! clear error (status, code, message) and changes nothing; a full mempool answers 503
//! with a clear error instead of growing; the contract's endpoints answer.

use std::time::Duration;

use bansos_tests::cluster::Cluster;
use ledger::tx::{Action, Transaction, TxBody};
use ledger::types::{Hash32, PublicKey, RegionCode};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

fn pemda_propose(cluster: &Cluster, nonce: u64, pseudonym: u8) -> Transaction {
    let net = cluster.net_dir();
    let keys = genesis::testnet::read_keys(&net).expect("keys");
    let key = keys.org("pemda-3510").expect("pemda key");
    let genesis: Value =
        serde_json::from_slice(&std::fs::read(net.join("genesis.json")).expect("genesis"))
            .expect("json");
    let village = genesis["regions"]
        .as_array()
        .expect("regions")
        .iter()
        .filter_map(|r| r["code"].as_str())
        .find(|c| c.starts_with("35.10.") && c.split('.').count() == 4)
        .expect("village")
        .to_owned();
    TxBody {
        chain_id: "bansos-testnet".into(),
        signer: PublicKey(key.verifying_key().to_bytes()),
        nonce,
        action: Action::Propose {
            beneficiary: Hash32([pseudonym; 32]),
            region: RegionCode::new(village).expect("region"),
            household_size: 3,
            welfare_decile: 1,
        },
    }
    .sign(key)
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let mut cluster = Cluster::create(1, 0, 18150, 28150);
    // A tiny mempool, to see it refuse rather than grow.
    let config = cluster.nodes[0].home.join("config.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("\n[mempool]\ntxs_max = 5\n");
    std::fs::write(&config, text).expect("config");
    cluster.start_node(0);
    cluster.wait_for("the first block", TIMEOUT, |c| {
        c.height(0).unwrap_or(0) >= 1
    });

    // A valid transaction commits; submitting it again is not an error.
    let tx = pemda_propose(&cluster, 0, 1);
    let hashes = cluster.submit(0, std::slice::from_ref(&tx));
    cluster.wait_committed(0, &hashes, TIMEOUT);
    let (status, body) = cluster.post(0, "/v1/tx", serde_json::to_vec(&tx).unwrap());
    assert_eq!((status, body["status"].as_str()), (202, Some("committed")));
    let log_size = cluster.get(0, "/v1/status").unwrap()["log_size"].as_u64();

    // Malformed JSON, an oversized body, a bad signature, another chain, a used nonce.
    let (status, body) = cluster.post(0, "/v1/tx", b"{\"body\": 1".to_vec());
    assert_eq!(
        (status, error_code(&body)),
        (400, "malformed_json"),
        "{body}"
    );
    assert!(!body["error"]["message"].as_str().unwrap_or("").is_empty());
    let (status, body) = cluster.post(0, "/v1/tx", vec![b' '; 64 * 1024]);
    assert_eq!(
        (status, error_code(&body)),
        (413, "body_too_large"),
        "{body}"
    );
    let mut forged = pemda_propose(&cluster, 1, 2);
    forged.signature.0[0] ^= 1;
    let (status, body) = cluster.post(0, "/v1/tx", serde_json::to_vec(&forged).unwrap());
    assert_eq!(
        (status, error_code(&body)),
        (422, "bad_signature"),
        "{body}"
    );
    let mut other_chain = pemda_propose(&cluster, 1, 3);
    other_chain.body.chain_id = "another-chain".into();
    let (status, body) = cluster.post(0, "/v1/tx", serde_json::to_vec(&other_chain).unwrap());
    assert_eq!(
        (status, error_code(&body)),
        (422, "wrong_chain_id"),
        "{body}"
    );
    let replay = pemda_propose(&cluster, 0, 4);
    let (status, body) = cluster.post(0, "/v1/tx", serde_json::to_vec(&replay).unwrap());
    assert_eq!((status, error_code(&body)), (422, "bad_nonce"), "{body}");
    // The refusal is remembered for whoever asks about the transaction.
    let asked = cluster
        .tx_status(0, &replay.hash().to_string())
        .expect("status");
    assert_eq!(asked["status"], "rejected");
    assert_eq!(asked["error"]["code"], "bad_nonce");

    // Reads with bad parameters.
    for (path, code) in [
        ("/v1/tx/xyz", 400),
        ("/v1/blocks/abc", 400),
        ("/v1/blocks/99999999", 404),
        ("/v1/keys/00", 400),
        ("/v1/nothing", 404),
    ] {
        let response =
            reqwest::blocking::get(format!("{}{path}", cluster.nodes[0].http)).expect("request");
        assert_eq!(response.status().as_u16(), code, "{path}");
        let body: Value = response.json().expect("error JSON");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    let unknown = cluster
        .tx_status(0, &Hash32([9; 32]).to_string())
        .expect("status");
    assert_eq!(unknown["status"], "unknown");

    // Transactions that cannot be included yet (nonces far ahead) fill the mempool; then
    // it refuses with 503 and a clear error, and does not grow.
    let waiting: Vec<Transaction> = (0..5)
        .map(|i| pemda_propose(&cluster, 100 + i, 10 + i as u8))
        .collect();
    cluster.submit(0, &waiting);
    let one_more = pemda_propose(&cluster, 200, 20);
    let (status, body) = cluster.post(0, "/v1/tx", serde_json::to_vec(&one_more).unwrap());
    assert_eq!((status, error_code(&body)), (503, "mempool_full"), "{body}");
    let status_now = cluster.get(0, "/v1/status").unwrap();
    assert_eq!(status_now["mempool_txs"].as_u64(), Some(5));

    // None of it reached the ledger.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        cluster.get(0, "/v1/status").unwrap()["log_size"].as_u64(),
        log_size
    );

    // The other endpoints of the contract answer.
    let metrics = reqwest::blocking::get(format!("{}/metrics", cluster.nodes[0].http))
        .expect("metrics")
        .text()
        .expect("text");
    for name in [
        "bansos_height",
        "bansos_txs_committed_total",
        "bansos_mempool_txs",
        "bansos_consensus_round",
        "bansos_peers",
        "bansos_block_interval_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let openapi = cluster.get(0, "/openapi.json").expect("openapi");
    for path in [
        "/v1/status",
        "/v1/tx",
        "/v1/tx/{hash}",
        "/v1/blocks/{height}",
        "/metrics",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
    let block = cluster.get(0, "/v1/blocks/1").expect("block 1");
    for field in [
        "height",
        "hash",
        "prev_hash",
        "log_size",
        "log_root",
        "state_root",
        "time",
    ] {
        assert!(!block["header"][field].is_null(), "header.{field}");
    }
    assert_eq!(
        block["certificate"]["signatures"].as_array().map(Vec::len),
        Some(1)
    );
}
