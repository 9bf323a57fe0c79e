//! The HTTP API in process: the axum router driven with `tower::ServiceExt::oneshot` over a
//! ledger in memory and a clock moved by hand. No ports, no processes, no consensus: blocks
//! are built from the mempool and committed with a certificate signed by every validator,
//! as consensus would.
//!
//! Every kind of bad input gets a clear error (status, code, message) and changes nothing;
//! a full mempool answers 503 instead of growing; the contract's endpoints answer.

use std::sync::Arc;

use std::time::Duration;
use tower::ServiceExt as _;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use ed25519_dalek::SigningKey;
use genesis::testnet::{NodeRole, Testnet, TestnetSpec};
use http_body_util::BodyExt;
use ledger::tx::{Action, Transaction, TxBody};
use ledger::types::{Hash32, PublicKey, RegionCode};
use ledger::{Ledger, MemoryStore};
use node::clock::{Clock as _, ManualClock};
use node::mempool::Mempool;
use node::shared::Shared;
use proto::api::{
    BatchJson, BlockJson, StatusJson, SubmitStatus, SubmittedJson, TxState, TxStatusJson,
};
use proto::certificate::StoredCertificate;
use proto::signing;
use rand::SeedableRng;
use serde_json::Value;

struct Node {
    net: Testnet,
    shared: Arc<Shared<MemoryStore>>,
    clock: Arc<ManualClock>,
    router: axum::Router,
}

fn node(mempool_txs_max: usize) -> Node {
    node_signing_checkpoints(mempool_txs_max, None)
}

/// A node that, with `validator`, signs checkpoints with that validator's checkpoint key.
fn node_signing_checkpoints(mempool_txs_max: usize, validator: Option<usize>) -> Node {
    node_with(mempool_txs_max, validator, None)
}

/// A node whose admitted client transactions go to `relay` (the relay's queue).
fn node_with(
    mempool_txs_max: usize,
    validator: Option<usize>,
    relay: Option<tokio::sync::mpsc::Sender<node::relay::Relayed>>,
) -> Node {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let net = Testnet::generate(&TestnetSpec::default(), &mut rng).unwrap();
    let clock = Arc::new(ManualClock::new(net.genesis.genesis_time_ms + 1_000));
    let ledger = Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
    let mut shared = Shared::new(
        "kemensos".into(),
        NodeRole::Validator,
        ledger::types::PublicKey(
            net.nodes[validator.unwrap_or(0)]
                .key
                .verifying_key()
                .to_bytes(),
        ),
        ledger,
        Mempool::new(mempool_txs_max, 1 << 20),
        relay,
        clock.clone(),
    );
    if let Some(validator) = validator {
        let key = net.nodes[validator]
            .checkpoint_key
            .clone()
            .expect("a validator");
        shared = shared.with_checkpoint_signer(key, None);
    }
    let shared = Arc::new(shared);
    let router = node::api::router(shared.clone());
    Node {
        net,
        shared,
        clock,
        router,
    }
}

impl Node {
    /// Serves this node's router on a free port of 127.0.0.1; returns its base URL.
    async fn serve_on_a_port(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(node::server::serve(
            listener,
            self.router.clone(),
            node::server::ServerLimits::default(),
        ));
        url
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        use tower::ServiceExt;
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let (status, bytes) = self.send(request).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_value(body).unwrap()
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, bytes) = self.send(request).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// What consensus does once a block is decided: build it from the mempool, sign a
    /// certificate with every validator, commit both.
    fn commit_block(&self) -> u64 {
        self.commit_block_after(Duration::from_secs(1))
    }

    /// [`Node::commit_block`] with the clock moved on by `wait` first.
    fn commit_block_after(&self, wait: Duration) -> u64 {
        self.clock.advance(wait);
        let proposer = PublicKey(self.net.nodes[0].key.verifying_key().to_bytes());
        let prepared = self.shared.build_block(proposer).unwrap();
        let height = prepared.block.header.height;
        let hash = prepared.hash;
        let keys: Vec<SigningKey> = self
            .net
            .nodes
            .iter()
            .filter(|n| n.role == NodeRole::Validator)
            .map(|n| n.key.clone())
            .collect();
        let chain = signing::ChainBinding::of(&self.net.genesis);
        let certificate = StoredCertificate::sign(&chain, &keys, height, 0, hash);
        self.shared
            .commit(prepared, &certificate.to_bytes())
            .unwrap();
        height
    }

    /// A request signed as a consortium member (RFC 9421) with `key`, created at
    /// `created_s` (unix seconds; the node's clock when `None`).
    async fn signed(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        key: &SigningKey,
        created_s: Option<u64>,
    ) -> Request<Body> {
        let headers = self.signature(method, path, body, key, created_s).await;
        with_headers(method, path, body, &headers)
    }

    /// The signature headers of such a request.
    async fn signature(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        key: &SigningKey,
        created_s: Option<u64>,
    ) -> axum::http::HeaderMap {
        let method = axum::http::Method::from_bytes(method.as_bytes()).unwrap();
        let uri: axum::http::Uri = path.parse().unwrap();
        let now = created_s.unwrap_or(self.clock.unix_ms() / 1_000);
        auth::sign_fresh(&method, &uri, body, key, now)
            .await
            .unwrap()
    }

    /// `GET path` signed by an institution in genesis (Kemensos).
    async fn get_signed(&self, path: &str) -> (StatusCode, Value) {
        let key = self.net.keys.org("kemensos").unwrap().clone();
        let request = self.signed("GET", path, b"", &key, None).await;
        let (status, bytes) = self.send(request).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get_signed_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let (status, body) = self.get_signed(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        serde_json::from_value(body).unwrap()
    }

    fn pemda_propose(&self, nonce: u64, pseudonym: u8) -> Transaction {
        let key = self.net.keys.org("pemda-3510").unwrap();
        let village = self
            .net
            .genesis
            .regions
            .iter()
            .map(|r| r.code.as_str().to_owned())
            .find(|c| c.starts_with("35.10.") && c.split('.').count() == 4)
            .unwrap();
        TxBody {
            chain_id: self.net.genesis.chain_id.clone(),
            signer: PublicKey(key.verifying_key().to_bytes()),
            nonce,
            action: Action::Propose {
                beneficiary: Hash32([pseudonym; 32]),
                region: RegionCode::new(village).unwrap(),
                household_size: 3,
                welfare_decile: 1,
            },
        }
        .sign(key)
    }
}

/// A request carrying `headers` (a signature made earlier: sending it twice is a replay).
fn with_headers(
    method: &str,
    path: &str,
    body: &[u8],
    headers: &axum::http::HeaderMap,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    request.body(Body::from(body.to_vec())).unwrap()
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_valid_transaction_is_admitted_committed_and_its_block_served_with_a_certificate() {
    let node = node(100);
    let tx = node.pemda_propose(0, 1);
    let (status, body) = node.post("/v1/tx", serde_json::to_vec(&tx).unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let submitted: SubmittedJson = serde_json::from_value(body).unwrap();
    assert_eq!(submitted.status, SubmitStatus::Pending);
    let pending: TxStatusJson = node.get_as(&format!("/v1/tx/{}", submitted.hash)).await;
    assert_eq!(pending.status, TxState::Pending);

    let height = node.commit_block();
    let committed: TxStatusJson = node.get_as(&format!("/v1/tx/{}", submitted.hash)).await;
    assert_eq!(
        (committed.status, committed.height),
        (TxState::Committed, Some(height))
    );
    // Submitting it again is not an error.
    let (status, body) = node.post("/v1/tx", serde_json::to_vec(&tx).unwrap()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("committed"))
    );

    let block: BlockJson = node.get_signed_as(&format!("/v1/blocks/{height}")).await;
    assert_eq!(block.txs.len(), 1);
    assert_eq!(block.txs[0].hash, submitted.hash);
    let certificate = block.certificate.expect("a certificate");
    assert_eq!(certificate.block_hash, block.header.hash);
    assert_eq!(certificate.signatures.len(), 4);
    let latest: BlockJson = node.get_as("/v1/blocks/latest?txs=hashes").await;
    assert_eq!((latest.txs.len(), latest.tx_hashes.len()), (0, 1));
    let status: StatusJson = node.get_as("/v1/status").await;
    assert_eq!((status.height, status.log_size), (height, 1));
    assert_eq!(status.latest_block_hash, block.header.hash);
    let key = node.net.nodes[0].key.verifying_key().to_bytes();
    assert_eq!(status.node_key, PublicKey(key).to_string());
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let node = node(5);
    let tx = node.pemda_propose(0, 1);
    node.post("/v1/tx", serde_json::to_vec(&tx).unwrap()).await;
    node.commit_block();
    let before = node.shared.ledger().tip().clone();

    let mut forged = node.pemda_propose(1, 2);
    forged.signature.0[0] ^= 1;
    let mut other_chain = node.pemda_propose(1, 3);
    other_chain.body.chain_id = "another-chain".into();
    let replay = node.pemda_propose(0, 4);
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"{\"body\": 1".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            vec![b' '; 64 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            serde_json::to_vec(&forged).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_signature",
        ),
        (
            serde_json::to_vec(&other_chain).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_chain_id",
        ),
        (
            serde_json::to_vec(&replay).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_nonce",
        ),
    ];
    for (body, expected_status, expected_code) in cases {
        let (status, answer) = node.post("/v1/tx", body).await;
        assert_eq!(
            (status, code(&answer)),
            (expected_status, expected_code),
            "{answer}"
        );
        assert!(!answer["error"]["message"].as_str().unwrap_or("").is_empty());
    }
    // The refusal is remembered for whoever asks about the transaction.
    let asked: TxStatusJson = node.get_as(&format!("/v1/tx/{}", replay.hash())).await;
    assert_eq!(asked.status, TxState::Rejected);
    assert_eq!(asked.error.map(|e| e.code).as_deref(), Some("bad_nonce"));

    for (path, expected) in [
        ("/v1/tx/xyz", StatusCode::BAD_REQUEST),
        ("/v1/blocks/abc", StatusCode::BAD_REQUEST),
        ("/v1/blocks/99999999?txs=hashes", StatusCode::NOT_FOUND),
        ("/v1/blocks/1?txs=some", StatusCode::BAD_REQUEST),
        ("/v1/keys/00", StatusCode::BAD_REQUEST),
        // A repeated query parameter is a JSON error too, not axum's plain text.
        (
            "/v1/proof/inclusion?index=0&size=1&size=2",
            StatusCode::BAD_REQUEST,
        ),
        ("/v1/blocks/1?txs=hashes&txs=full", StatusCode::BAD_REQUEST),
        ("/v1/nothing", StatusCode::NOT_FOUND),
    ] {
        let (status, body) = node.get(path).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    let unknown: TxStatusJson = node.get_as(&format!("/v1/tx/{}", Hash32([9; 32]))).await;
    assert_eq!(unknown.status, TxState::Unknown);

    // Nothing of it reached the mempool or the ledger: a block built now is empty.
    assert!(node.shared.mempool().is_empty());
    assert_eq!(node.shared.ledger().tip(), &before);
    node.commit_block();
    assert_eq!(node.shared.ledger().tip().log.size(), before.log.size());
}

#[tokio::test]
async fn a_full_mempool_answers_503_and_does_not_grow() {
    let node = node(5);
    // No consensus runs here: admitted transactions stay and fill the pool.
    let pending: Vec<Transaction> = (0..5)
        .map(|i| node.pemda_propose(i, 10 + i as u8))
        .collect();
    let (status, body) = node
        .post("/v1/txs", serde_json::to_vec(&pending).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let batch: BatchJson = serde_json::from_value(body).unwrap();
    assert!(batch.results.iter().all(|r| r.error.is_none()), "{batch:?}");
    let one_more = node.pemda_propose(5, 20);
    let request = Request::post("/v1/tx")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&one_more).unwrap()))
        .unwrap();
    use tower::ServiceExt;
    let response = node.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let status: StatusJson = node.get_as("/v1/status").await;
    assert_eq!(status.mempool_txs, 5);
    // A batch over the limit is refused whole.
    let too_many = vec![one_more; proto::api::TX_BATCH_TXS_MAX + 1];
    let (status, body) = node
        .post("/v1/txs", serde_json::to_vec(&too_many).unwrap())
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
        "{body}"
    );
    assert_eq!(node.shared.mempool().len(), 5);
}

/// `POST /v1/txs` in the binary form (what bulk clients and the relay send): admitted as
/// the JSON form would be, and a body that is not a batch is refused whole with a code,
/// nothing admitted.
#[tokio::test]
async fn a_binary_batch_is_admitted_like_json_and_a_malformed_one_changes_nothing() {
    let node = node(100);
    let binary = |body: Vec<u8>| {
        Request::post("/v1/txs")
            .header("content-type", "application/octet-stream")
            .body(Body::from(body))
            .unwrap()
    };
    let txs: Vec<Transaction> = (0..3)
        .map(|i| node.pemda_propose(i, 30 + i as u8))
        .collect();
    let mut encoded = proto::txbatch::encode_tx_batch(&txs).unwrap();
    let truncated_tx = {
        let mut bytes = 1u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3]);
        bytes
    };
    for (bad, expected) in [
        (
            encoded[..encoded.len() - 1].to_vec(),
            (StatusCode::BAD_REQUEST, "malformed_batch"),
        ),
        (
            [encoded.clone(), vec![0]].concat(),
            (StatusCode::BAD_REQUEST, "malformed_batch"),
        ),
        (truncated_tx, (StatusCode::BAD_REQUEST, "malformed_batch")),
        (
            vec![0xff; 4],
            (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
        ),
        (
            serde_json::to_vec(&txs).unwrap(),
            (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
        ),
    ] {
        let (status, bytes) = node.send(binary(bad)).await;
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!((status, code(&body)), expected, "{body}");
    }
    assert!(
        node.shared.mempool().is_empty(),
        "nothing of a refused batch is admitted"
    );
    let (status, bytes) = node.send(binary(std::mem::take(&mut encoded))).await;
    assert_eq!(status, StatusCode::OK);
    let batch: BatchJson = serde_json::from_slice(&bytes).unwrap();
    let hashes: Vec<String> = txs.iter().map(|t| t.hash().to_string()).collect();
    let answered: Vec<String> = batch
        .results
        .iter()
        .filter_map(|r| r.hash.clone())
        .collect();
    assert_eq!(answered, hashes);
    assert!(
        batch
            .results
            .iter()
            .all(|r| r.status == Some(SubmitStatus::Pending)),
        "{batch:?}"
    );
    assert_eq!(node.shared.mempool().len(), 3);
    node.commit_block();
    for hash in &hashes {
        let asked: TxStatusJson = node.get_as(&format!("/v1/tx/{hash}")).await;
        assert_eq!(asked.status, TxState::Committed, "{hash}");
    }
}

#[tokio::test]
async fn waiting_transactions_expire_by_the_injected_clock() {
    let node = node(100);
    let gapped = node.pemda_propose(5, 1);
    node.post("/v1/tx", serde_json::to_vec(&gapped).unwrap())
        .await;
    assert_eq!(node.shared.mempool().len(), 1);
    node.clock
        .advance(node::mempool::PENDING_TTL + Duration::from_secs(1));
    assert_eq!(node.shared.mempool().expire(node.clock.monotonic()), 1);
    let asked: TxStatusJson = node.get_as(&format!("/v1/tx/{}", gapped.hash())).await;
    assert_eq!(asked.status, TxState::Rejected);
    assert_eq!(asked.error.map(|e| e.code).as_deref(), Some("expired"));
}

#[tokio::test]
async fn metrics_openapi_and_key_endpoints_answer() {
    let node = node(100);
    let tx = node.pemda_propose(0, 1);
    node.post("/v1/tx", serde_json::to_vec(&tx).unwrap()).await;
    node.commit_block();
    let (status, bytes) = node
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let metrics = String::from_utf8(bytes).unwrap();
    for name in [
        "bansos_height 1",
        "bansos_txs_committed_total 1",
        "bansos_mempool_txs 0",
        "bansos_consensus_round",
        "bansos_peers",
        "bansos_block_interval_seconds",
        "bansos_consensus_signatures_reused_total",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    let (_, openapi) = node.get("/openapi.json").await;
    for path in [
        "/v1/status",
        "/v1/tx",
        "/v1/txs",
        "/v1/tx/{hash}",
        "/v1/blocks/{height}",
        "/v1/keys/{public_key}",
        "/metrics",
    ] {
        assert!(
            openapi["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
    let signer = tx.body.signer;
    let (_, key) = node.get_signed(&format!("/v1/keys/{signer}")).await;
    assert_eq!(
        (key["known"].as_bool(), key["next_nonce"].as_u64()),
        (Some(true), Some(1))
    );
}

/// POSTs a batch to `/v1/txs` signed by `key` at `created_s`, its signature then changed
/// by `spoil`.
async fn post_signed_batch(
    node: &Node,
    body: &[u8],
    key: &SigningKey,
    created_s: Option<u64>,
    spoil: impl FnOnce(&mut Request<Body>),
) -> (StatusCode, Value) {
    let mut request = node.signed("POST", "/v1/txs", body, key, created_s).await;
    spoil(&mut request);
    let (status, bytes) = node.send(request).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn only_a_node_of_the_network_can_have_a_batch_treated_as_relayed() {
    let node = node(100);
    let now_s = node.clock.unix_ms() / 1_000;
    let waiting = vec![node.pemda_propose(10, 10)];
    let body = serde_json::to_vec(&waiting).unwrap();
    let validator = node.net.nodes[0].key.clone();
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let other_body = serde_json::to_vec(&[node.pemda_propose(10, 11)]).unwrap();
    type Spoil = Box<dyn FnOnce(&mut Request<Body>)>;
    let refused: [(&str, SigningKey, Option<u64>, Spoil); 4] = [
        ("unknown_key", stranger, None, Box::new(|_| {})),
        (
            "signature_expired",
            validator.clone(),
            Some(now_s - 120),
            Box::new(|_| {}),
        ),
        (
            "bad_content_digest",
            validator.clone(),
            None,
            Box::new(move |r| *r.body_mut() = Body::from(other_body)),
        ),
        (
            "bad_signature_input",
            validator.clone(),
            None,
            Box::new(|r| {
                r.headers_mut()
                    .insert("signature-input", "bansos=();created=1".parse().unwrap());
            }),
        ),
    ];
    for (expected, key, created, spoil) in refused {
        let (status, answer) = post_signed_batch(&node, &body, &key, created, spoil).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::UNAUTHORIZED, expected),
            "{answer}"
        );
        assert_eq!(
            node.shared.mempool().len(),
            0,
            "{expected} changed the mempool"
        );
    }
    let (status, answer) = post_signed_batch(&node, &body, &validator, None, |_| {}).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(node.shared.mempool().len(), 1);
    // A relayed refusal is not remembered (this node may only be behind: here, a signer
    // it does not know yet); the same refusal from a client, or from an institution's
    // signed batch, is.
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let mut body = node.pemda_propose(11, 11).body;
    body.signer = PublicKey(stranger.verifying_key().to_bytes());
    let forged = body.sign(&stranger);
    let forged_body = serde_json::to_vec(std::slice::from_ref(&forged)).unwrap();
    let (status, answer) = post_signed_batch(&node, &forged_body, &validator, None, |_| {}).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let path = format!("/v1/tx/{}", forged.hash());
    let state: TxStatusJson = node.get_as(&path).await;
    assert_eq!(state.status, TxState::Unknown);
    let institution = node.net.keys.org("kemensos").unwrap().clone();
    post_signed_batch(&node, &forged_body, &institution, None, |_| {}).await;
    let state: TxStatusJson = node.get_as(&path).await;
    assert_eq!(state.status, TxState::Rejected);
}

/// Decodes a base64 SHA-256 hash from a proof body.
fn log_hash(text: &str) -> [u8; 32] {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
        .try_into()
        .unwrap()
}

/// Commits `count` Pemda proposals in blocks of 60 (within the nonce-gap limit); returns
/// the log size after each block.
fn commit_proposals(node: &Node, count: u64) -> Vec<u64> {
    let mut sizes = Vec::new();
    for start in (0..count).step_by(60) {
        for nonce in start..(start + 60).min(count) {
            let tx = node.pemda_propose(nonce, 0);
            let mut tx = tx;
            // A distinct pseudonym per proposal: the nonce's bytes.
            let TxBody { action, .. } = &mut tx.body;
            if let Action::Propose { beneficiary, .. } = action {
                beneficiary.0[..8].copy_from_slice(&nonce.to_be_bytes());
                beneficiary.0[31] = 1;
            }
            let key = node.net.keys.org("pemda-3510").unwrap();
            let tx = tx.body.sign(key);
            node.shared.admit(tx, false, false).unwrap();
        }
        node.commit_block();
        sizes.push(node.shared.ledger().tip().log.size());
    }
    sizes
}

#[tokio::test]
async fn log_proofs_and_tiles_verify_against_the_committed_roots() {
    use ledger::merkle;
    let node = node(1000);
    let sizes = commit_proposals(&node, 300);
    assert_eq!(sizes, [60, 120, 180, 240, 300]);
    let leaves: Vec<[u8; 32]> = (0..300)
        .map(|i| merkle::leaf_hash(&node.shared.ledger().log_leaf(i).unwrap().unwrap()))
        .collect();
    // Each committed size's root is in its block header; proofs verify against it.
    for (height, &size) in (1..).zip(&sizes) {
        let block: BlockJson = node
            .get_as(&format!("/v1/blocks/{height}?txs=hashes"))
            .await;
        assert_eq!(block.header.log_size, size);
        let header_root = Hash32::from_hex(&block.header.log_root).unwrap().0;
        for index in [0, size / 2, size - 1] {
            let proof: proto::api::InclusionProofJson = node
                .get_as(&format!("/v1/proof/inclusion?index={index}&size={size}"))
                .await;
            assert_eq!(log_hash(&proof.root), header_root);
            assert_eq!(log_hash(&proof.leaf_hash), leaves[index as usize]);
            let path: Vec<[u8; 32]> = proof.path.iter().map(|h| log_hash(h)).collect();
            merkle::verify_inclusion(&leaves[index as usize], index, size, &path, &header_root)
                .unwrap();
        }
    }
    let consistency: proto::api::ConsistencyProofJson = node
        .get_as("/v1/proof/consistency?first=60&second=300")
        .await;
    let path: Vec<[u8; 32]> = consistency.path.iter().map(|h| log_hash(h)).collect();
    merkle::verify_consistency(
        60,
        300,
        &log_hash(&consistency.first_root),
        &log_hash(&consistency.second_root),
        &path,
    )
    .unwrap();
    // Tiles: leaf hashes at level 0, subtree roots of 256 leaves at level 1.
    let tile = |path: &str| {
        let request = Request::get(path).body(Body::empty()).unwrap();
        node.send(request)
    };
    let (status, full) = tile("/tile/0/000").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(full, leaves[..256].concat());
    let (status, partial) = tile("/tile/0/001.p/44").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(partial, leaves[256..300].concat());
    let mut tree = merkle::MemoryTree::new();
    for leaf in &leaves[..256] {
        tree.push_leaf_hash(*leaf);
    }
    let (status, upper) = tile("/tile/1/000.p/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(upper, merkle::root_at(&tree, 256).unwrap());
    // What the log does not have yet, or cannot be a tile, is refused with a code.
    for (path, expected) in [
        ("/tile/0/001", "unknown_tile"),
        ("/tile/0/001.p/45", "unknown_tile"),
        ("/tile/1/000", "unknown_tile"),
        ("/tile/00/000", "unknown_tile"),
        ("/tile/0/1", "unknown_tile"),
        ("/tile/64/000", "unknown_tile"),
        ("/v1/proof/inclusion?index=300&size=300", "not_in_log"),
        ("/v1/proof/inclusion?index=0&size=301", "not_in_log"),
        ("/v1/proof/inclusion?index=-1&size=3", "bad_query"),
        ("/v1/proof/inclusion?size=3", "bad_query"),
        ("/v1/proof/consistency?first=0&second=3", "not_in_log"),
        ("/v1/proof/consistency?first=4&second=3", "not_in_log"),
        ("/v1/proof/consistency?first=1&second=x", "bad_query"),
    ] {
        let (status, body) = node.get(path).await;
        assert!(status.is_client_error(), "{path}: {status}");
        assert_eq!(code(&body), expected, "{path}: {body}");
    }
}

/// A validator's one-signature checkpoint note for (size, root).
fn checkpoint_note(net: &Testnet, validator: usize, size: u64, root: [u8; 32]) -> String {
    use ledger::note::{sign, Checkpoint, SignedNote};
    let node = &net.nodes[validator];
    let key = node.checkpoint_key.as_ref().expect("a validator");
    let name = net.genesis.log_origin.clone();
    // These tests' blocks allocate nothing: the totals tree is still empty.
    let text = Checkpoint {
        origin: net.genesis.log_origin.clone(),
        size,
        root,
        totals: Some(ledger::totals::empty_root().0),
    }
    .text();
    SignedNote {
        signatures: vec![sign(&text, &name, key)],
        text,
    }
    .to_text()
}

async fn push_checkpoint(
    node: &Node,
    note: &str,
    signer: Option<&SigningKey>,
) -> (StatusCode, Value) {
    let path = "/v1/checkpoint/signatures";
    let request = match signer {
        Some(key) => node.signed("POST", path, note.as_bytes(), key, None).await,
        None => Request::post(path)
            .header("content-type", "text/plain")
            .body(Body::from(note.to_owned()))
            .unwrap(),
    };
    let (status, bytes) = node.send(request).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_validator_signs_the_growing_log_once_an_interval_and_again_when_it_goes_quiet() {
    use node::checkpoints::CHECKPOINT_INTERVAL_MS;
    // This node is validator 0. A size is served once three of four validators signed it:
    // validators 1 and 2 sign every size below, so a size is served exactly when this node
    // signed it too.
    let node = node_signing_checkpoints(100, Some(0));
    let sender = node.net.nodes[1].key.clone();
    let step = Duration::from_millis(CHECKPOINT_INTERVAL_MS / 5);
    // (block time, log size after it), from the genesis head on.
    let mut heads = vec![{
        let tip = node.shared.ledger().tip().clone();
        (tip.time_ms, tip.log.size())
    }];
    for nonce in 0..12 {
        node.shared
            .admit(node.pemda_propose(nonce, nonce as u8 + 1), false, false)
            .unwrap();
        node.commit_block_after(step);
        let tip = node.shared.ledger().tip().clone();
        heads.push((tip.time_ms, tip.log.size()));
    }
    // Then a block with nothing in it: the log has gone quiet.
    node.commit_block_after(step);
    let tip = node.shared.ledger().tip().clone();
    heads.push((tip.time_ms, tip.log.size()));

    let served = |size: u64| {
        let node = &node;
        let sender = &sender;
        async move {
            let text = node.shared.ledger().checkpoint_at(size).unwrap().text();
            for validator in [1, 2] {
                let key = node.net.nodes[validator].checkpoint_key.as_ref().unwrap();
                let note = ledger::note::SignedNote {
                    signatures: vec![ledger::note::sign(&text, &node.net.genesis.log_origin, key)],
                    text: text.clone(),
                }
                .to_text();
                let (status, body) = push_checkpoint(node, &note, Some(sender)).await;
                assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            }
            let (status, _) = node.get(&format!("/v1/checkpoint?size={size}")).await;
            status == StatusCode::OK
        }
    };
    let mut signed = Vec::new();
    for pair in heads.windows(2) {
        let ((before_ms, _), (after_ms, size)) = (pair[0], pair[1]);
        let last = size == heads.last().unwrap().1;
        if last {
            break;
        }
        let new_interval = after_ms / CHECKPOINT_INTERVAL_MS > before_ms / CHECKPOINT_INTERVAL_MS;
        assert_eq!(
            served(size).await,
            new_interval,
            "size {size} at {after_ms} ms"
        );
        signed.extend(new_interval.then_some(size));
    }
    // Twelve blocks 100 ms apart span two or three intervals of 500 ms, not twelve.
    assert!((2..=3).contains(&signed.len()), "{signed:?}");
    // The last size with transactions is signed at the quiet block after it.
    assert!(served(heads.last().unwrap().1).await);
}

#[tokio::test]
async fn checkpoints_gather_validator_signatures_serve_at_quorum_and_flag_a_forged_conflict() {
    use ledger::note::{verify_checkpoint, NoteKey};
    // This node is validator 0: it signs each new log head itself.
    let node = node_signing_checkpoints(100, Some(0));
    let sender = node.net.nodes[1].key.clone();

    node.shared
        .admit(node.pemda_propose(0, 1), false, false)
        .unwrap();
    let height = node.commit_block();
    let block: BlockJson = node
        .get_as(&format!("/v1/blocks/{height}?txs=hashes"))
        .await;
    let root = Hash32::from_hex(&block.header.log_root).unwrap().0;
    // One signature of four is no checkpoint yet.
    let (status, body) = node.get("/v1/checkpoint").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "no_checkpoint")
    );

    // Refused: unsigned, signed by a stranger or by an institution (not a node), a
    // stranger's checkpoint key, a bad signature.
    let from_1 = checkpoint_note(&node.net, 1, 1, root);
    let (status, body) = push_checkpoint(&node, &from_1, None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "signature_required")
    );
    let stranger = SigningKey::from_bytes(&[77; 32]);
    let institution = node.net.keys.org("kemensos").unwrap().clone();
    for key in [&stranger, &institution] {
        let (status, body) = push_checkpoint(&node, &from_1, Some(key)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "unknown_key")
        );
    }
    let by_stranger = {
        use ledger::note::{sign, SignedNote};
        let mut note = SignedNote::parse(&from_1).unwrap();
        note.signatures = vec![sign(&note.text, "bansos.local/evil", &stranger)];
        note.to_text()
    };
    let (status, body) = push_checkpoint(&node, &by_stranger, Some(&sender)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "bad_checkpoint")
    );
    let tampered = from_1.replacen("\n1\n", "\n2\n", 1);
    let (status, body) = push_checkpoint(&node, &tampered, Some(&sender)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "bad_checkpoint"),
        "{body}"
    );
    let (status, body) = node.get("/v1/checkpoint").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "no_checkpoint")
    );

    // Validators 1 and 2 sign: three of four, a quorum.
    for validator in [1, 2] {
        let note = checkpoint_note(&node.net, validator, 1, root);
        let (status, body) = push_checkpoint(&node, &note, Some(&sender)).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::ACCEPTED, Some("merged"))
        );
    }
    let request = Request::get("/v1/checkpoint").body(Body::empty()).unwrap();
    let (status, served) = node.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let served = String::from_utf8(served).unwrap();
    let validators: Vec<(NoteKey, u64)> = node
        .shared
        .ledger()
        .genesis()
        .validators
        .iter()
        .map(|v| (v.checkpoint_key.clone(), v.power))
        .collect();
    let verified =
        verify_checkpoint(&served, &node.net.genesis.log_origin, &validators, &[]).unwrap();
    assert_eq!(
        (verified.checkpoint.size, verified.checkpoint.root),
        (1, root)
    );
    assert_eq!(verified.signers.len(), 3);

    // A signature for a size this node has not reached waits, then counts.
    node.shared
        .admit(node.pemda_propose(1, 2), false, false)
        .unwrap();
    let ahead = checkpoint_note(&node.net, 3, 2, [0; 32]);
    let (status, body) = push_checkpoint(&node, &ahead, Some(&sender)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("pending"))
    );
    let status: StatusJson = node.get_as("/v1/status").await;
    assert_eq!(
        (status.checkpoint_size, status.checkpoint_conflicts_seen),
        (Some(1), 0)
    );
    // The pending one named a root the log does not have at size 2: once there, it is a
    // conflict, kept as evidence.
    node.commit_block();
    let status: StatusJson = node.get_as("/v1/status").await;
    assert_eq!(status.checkpoint_conflicts_seen, 1);
    assert_eq!(status.checkpoint_conflicts, std::slice::from_ref(&ahead));
    // A forged conflicting checkpoint at a committed size is flagged the same way.
    let forged = checkpoint_note(&node.net, 2, 1, [7; 32]);
    let (status, body) = push_checkpoint(&node, &forged, Some(&sender)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("conflict"))
    );
    let status: StatusJson = node.get_as("/v1/status").await;
    assert_eq!(status.checkpoint_conflicts_seen, 2);
    assert!(status.checkpoint_conflicts.contains(&forged));
    // The served checkpoint at size 1 is unchanged by all of it.
    let request = Request::get("/v1/checkpoint?size=1")
        .body(Body::empty())
        .unwrap();
    let (status, again) = node.send(request).await;
    assert_eq!(
        (status, String::from_utf8(again).unwrap()),
        (StatusCode::OK, served)
    );
}

#[tokio::test]
async fn consortium_endpoints_refuse_unsigned_foreign_replayed_and_expired_requests() {
    let node = node_signing_checkpoints(100, Some(0));
    let tx = node.pemda_propose(0, 1);
    node.shared.admit(tx.clone(), false, false).unwrap();
    let height = node.commit_block();
    let root = node.shared.ledger().tip().log.root();
    let kemensos = node.net.keys.org("kemensos").unwrap().clone();
    let validator = node.net.nodes[1].key.clone();
    let stranger = SigningKey::from_bytes(&[42; 32]);
    let note = checkpoint_note(&node.net, 1, 1, root);
    let batch = serde_json::to_vec(&[node.pemda_propose(1, 2)]).unwrap();
    let signer = tx.body.signer;
    // (method, path, body, a member allowed to ask, whether unsigned is allowed)
    // A second validator's checkpoint signature first; the third comes in the loop, so
    // that size 1 has a quorum by the time its tlog-proof is asked for.
    let second = checkpoint_note(&node.net, 2, 1, root);
    let (status, _) = push_checkpoint(&node, &second, Some(&validator)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let consortium: [(&str, String, Vec<u8>, &SigningKey, bool); 8] = [
        (
            "GET",
            format!("/v1/blocks/{height}"),
            vec![],
            &kemensos,
            false,
        ),
        (
            "GET",
            "/v1/blocks/latest?txs=full".into(),
            vec![],
            &validator,
            false,
        ),
        ("GET", "/v1/log/leaf/0".into(), vec![], &kemensos, false),
        (
            "GET",
            "/tile/entries/000.p/1".into(),
            vec![],
            &kemensos,
            false,
        ),
        (
            "GET",
            format!("/v1/keys/{signer}"),
            vec![],
            &kemensos,
            false,
        ),
        (
            "POST",
            "/v1/checkpoint/signatures".into(),
            note.into_bytes(),
            &validator,
            false,
        ),
        ("GET", "/v1/log/proof/0".into(), vec![], &kemensos, false),
        // Unsigned, a batch is a public submission; signed, it must be signed well.
        ("POST", "/v1/txs".into(), batch, &validator, true),
    ];
    let now_s = node.clock.unix_ms() / 1_000;
    for (method, path, body, member, unsigned_ok) in &consortium {
        let what = format!("{method} {path}");
        let attempts = [
            (
                node.signature(method, path, body, &stranger, None).await,
                "unknown_key",
            ),
            (
                node.signature(method, path, body, member, Some(now_s - 61))
                    .await,
                "signature_expired",
            ),
            (
                node.signature(method, path, body, member, Some(now_s + 60))
                    .await,
                "signature_expired",
            ),
        ];
        let unsigned = (!unsigned_ok).then(|| (axum::http::HeaderMap::new(), "signature_required"));
        for (headers, expected) in attempts.into_iter().chain(unsigned) {
            let response = node
                .router
                .clone()
                .oneshot(with_headers(method, path, body, &headers))
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{what}: {expected}"
            );
            assert!(
                response.headers().contains_key("accept-signature"),
                "{what}"
            );
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let answer: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(code(&answer), expected, "{what}: {answer}");
        }
        let headers = node.signature(method, path, body, member, None).await;
        let (status, answer) = node.send(with_headers(method, path, body, &headers)).await;
        assert!(
            status.is_success(),
            "{what} signed by a member: {status} {}",
            String::from_utf8_lossy(&answer)
        );
        let (status, answer) = node.send(with_headers(method, path, body, &headers)).await;
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::UNAUTHORIZED, "signature_replayed"),
            "{what}"
        );
    }
    // What they serve: the leaf and the entry bundle are the transaction's canonical bytes.
    use base64::Engine as _;
    let leaf: proto::api::LeafJson = node.get_signed_as("/v1/log/leaf/0").await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&leaf.leaf)
        .unwrap();
    assert_eq!(
        (bytes.clone(), leaf.tx_hash),
        (tx.to_bytes(), tx.hash().to_string())
    );
    let request = node
        .signed("GET", "/tile/entries/000.p/1", b"", &kemensos, None)
        .await;
    let (status, bundle) = node.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let mut expected = (bytes.len() as u16).to_be_bytes().to_vec();
    expected.extend_from_slice(&bytes);
    assert_eq!(bundle, expected);
    let (status, body) = node.get_signed("/tile/entries/000.p/2").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown_tile")
    );

    // Public endpoints answer without a signature.
    for path in [
        "/v1/status".to_owned(),
        format!("/v1/blocks/{height}?txs=hashes"),
        "/v1/checkpoint?size=1".into(),
        "/tile/0/000.p/1".into(),
        "/v1/proof/inclusion?index=0&size=1".into(),
        format!("/v1/tx/{}", tx.hash()),
        "/metrics".into(),
        "/openapi.json".into(),
    ] {
        let request = Request::get(&path).body(Body::empty()).unwrap();
        let (status, _) = node.send(request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, _) = node.post("/v1/tx", serde_json::to_vec(&tx).unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// A checkpoint at `size` with the log's root there, signed by `validators`.
fn quorum_note(node: &Node, validators: &[usize], size: u64, root: Option<[u8; 32]>) -> String {
    use ledger::note::{sign, Checkpoint, SignedNote};
    let root = root.unwrap_or_else(|| node.shared.ledger().log_root_at(size).unwrap().0);
    let origin = node.net.genesis.log_origin.clone();
    let text = Checkpoint {
        origin: origin.clone(),
        size,
        root,
        totals: node.shared.ledger().totals_root_at(size).ok().map(|h| h.0),
    }
    .text();
    let signatures = validators
        .iter()
        .map(|&v| {
            sign(
                &text,
                &origin,
                node.net.nodes[v].checkpoint_key.as_ref().unwrap(),
            )
        })
        .collect();
    SignedNote { text, signatures }.to_text()
}

/// An `add-checkpoint` body from `old` to the note's size, with the log's proof.
fn add_checkpoint_body(node: &Node, old: u64, size: u64, note: &str) -> String {
    let proof = if old > 0 && old < size {
        let path = node.shared.ledger().consistency_proof(old, size).unwrap();
        path.iter().map(|h| h.0).collect()
    } else {
        Vec::new()
    };
    node::witness::AddCheckpoint {
        old,
        proof,
        note: note.to_owned(),
    }
    .to_text()
}

async fn witness_post(node: &Node, body: &str) -> (StatusCode, String, String) {
    use tower::ServiceExt;
    let request = Request::post("/witness/add-checkpoint")
        .header("content-type", "text/plain")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = node.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn the_auditors_witness_cosigns_only_quorum_signed_checkpoints_consistent_with_the_last() {
    use ledger::note::verify_checkpoint;
    let mut node = node(1000);
    let bpk = node
        .net
        .nodes
        .iter()
        .find(|n| n.witness_key.is_some())
        .expect("the auditor's node runs a witness");
    let witness = node::witness::Witness::open(
        node.shared.ledger().genesis(),
        bpk.witness_key.clone().unwrap(),
        None,
    )
    .unwrap();
    node.router = axum::Router::new();
    let shared = Arc::try_unwrap(node.shared).ok().expect("one owner");
    node.shared = Arc::new(shared.with_witness(witness));
    node.router = node::api::router(node.shared.clone());
    commit_proposals(&node, 180);
    let index = node.shared.ledger().genesis().clone();

    // Refused, and nothing recorded: malformed, another log, two of four signatures, a
    // validator's bad signature, an old size above the checkpoint's.
    let at_60 = quorum_note(&node, &[0, 1, 2], 60, None);
    let another_log = at_60.replace(&index.genesis.log_origin, "example.com/log");
    let two = quorum_note(&node, &[0, 1], 60, None);
    let bad_signature = at_60.replacen("\n60\n", "\n61\n", 1);
    for (body, expected) in [
        ("old 0\n".to_owned(), StatusCode::BAD_REQUEST),
        (format!("old 01\n\n{at_60}"), StatusCode::BAD_REQUEST),
        (
            format!("old 0\nnot base64\n\n{at_60}"),
            StatusCode::BAD_REQUEST,
        ),
        (format!("old 0\n\n{another_log}"), StatusCode::NOT_FOUND),
        (format!("old 0\n\n{two}"), StatusCode::FORBIDDEN),
        (format!("old 0\n\n{bad_signature}"), StatusCode::FORBIDDEN),
        (format!("old 61\n\n{at_60}"), StatusCode::BAD_REQUEST),
    ] {
        let (status, _, answer) = witness_post(&node, &body).await;
        assert_eq!(status, expected, "{body:?}: {answer}");
    }
    // The first checkpoint, from size 0: cosigned, timestamped with the node's clock.
    let (status, _, line) = witness_post(&node, &add_checkpoint_body(&node, 0, 60, &at_60)).await;
    assert_eq!(status, StatusCode::OK, "{line}");
    let cosigned = format!("{at_60}{line}");
    let verified = verify_checkpoint(
        &cosigned,
        &index.genesis.log_origin,
        &index.checkpoint_keys(),
        &index.witness_keys(),
    )
    .unwrap();
    assert_eq!(verified.cosigners, [index.witnesses[0].key.name.clone()]);
    // Asked again from 0: 409 with the size it holds.
    let (status, content_type, body) =
        witness_post(&node, &add_checkpoint_body(&node, 0, 60, &at_60)).await;
    assert_eq!(
        (status, content_type.as_str(), body.as_str()),
        (StatusCode::CONFLICT, "text/x.tlog.size", "60\n")
    );
    // A bad proof to 120 is refused and moves nothing; the right one is cosigned.
    let at_120 = quorum_note(&node, &[1, 2, 3], 120, None);
    let good = add_checkpoint_body(&node, 60, 120, &at_120);
    let mut request = node::witness::AddCheckpoint::parse(&good).unwrap();
    request.proof[0][0] ^= 1;
    let (status, _, answer) = witness_post(&node, &request.to_text()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (status, _, answer) = witness_post(&node, &good).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // A forged head at 180, signed by a quorum of validator keys but not the log's, is
    // refused and kept as evidence.
    let forged = quorum_note(&node, &[0, 1, 3], 180, Some([9; 32]));
    let (status, _, answer) =
        witness_post(&node, &add_checkpoint_body(&node, 120, 180, &forged)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let status: StatusJson = node.get_as("/v1/status").await;
    assert_eq!(status.checkpoint_conflicts, [forged]);
    let (status, _, body) = witness_post(
        &node,
        &add_checkpoint_body(&node, 0, 180, &quorum_note(&node, &[0, 1, 2], 180, None)),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::CONFLICT, "120\n"));
}

/// A node over the demo year (`households` households), its latest log size checkpointed by
/// three validators and cosigned by the auditor's witness; and the year's sample codes.
fn demo_node(households: usize) -> (Node, genesis::demo::DemoData) {
    use ledger::chain::SignatureCheck;
    let mut node = node(100);
    let data = genesis::demo::generate(
        &node.net.genesis,
        &node.net.keys,
        &genesis::demo::DemoParams {
            beneficiaries: households,
            seed: 5,
        },
    )
    .unwrap();
    node.router = axum::Router::new();
    {
        let mut ledger = node.shared.ledger_mut();
        let proposer = ledger.genesis().validators[0].key;
        for batch in &data.batches {
            let prepared = ledger
                .build_block(
                    batch.txs.clone(),
                    batch.time_ms,
                    proposer,
                    SignatureCheck::VerifyAll,
                )
                .unwrap();
            assert!(prepared.rejected.is_empty(), "{}", batch.label);
            ledger.commit(prepared, b"test").unwrap();
        }
    }
    node.router = node::api::router(node.shared.clone());
    let size = node.shared.ledger().tip().log.size();
    let note = quorum_note(&node, &[0, 1, 2], size, None);
    let witness = node
        .net
        .nodes
        .iter()
        .find_map(|n| n.witness_key.clone())
        .unwrap();
    let index = node.shared.ledger().genesis().clone();
    let parsed = ledger::note::SignedNote::parse(&note).unwrap();
    let cosignature = ledger::note::cosign(&parsed.text, &index.witnesses[0].key.name, &witness, 1);
    let cosigned = format!("{note}{}", cosignature.line());
    node.shared
        .checkpoints
        .receive(&mut node.shared.ledger_mut(), &cosigned)
        .unwrap();
    (node, data)
}

#[tokio::test]
async fn a_tracking_code_shows_its_holders_timeline_with_proofs_and_nothing_of_anyone_else() {
    use ledger::merkle;
    let (node, data) = demo_node(30);
    let index = node.shared.ledger().genesis().clone();
    let sample = data
        .tracking_codes
        .iter()
        .find(|s| s.program == "PKH")
        .expect("a PKH code");
    // Typed as a person might: lower case, spaces instead of hyphens.
    let typed = sample.code.to_lowercase().replace('-', " ");
    let track: proto::api::TrackJson = node
        .get_as(&format!("/v1/track/{}", typed.replace(' ', "%20")))
        .await;
    assert_eq!(track.program, "PKH");
    let kinds: Vec<&str> = track.steps.iter().map(|s| s.kind.as_str()).collect();
    for kind in ["proposed", "verified", "enrolled", "allocated", "disbursed"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // Every step's path leads to the root of the checkpoint served with it, which the
    // genesis keys and the policy accept.
    let checkpoint = track.checkpoint.clone().expect("a checkpoint");
    let verified = ledger::note::verify_checkpoint(
        &checkpoint,
        &index.genesis.log_origin,
        &index.checkpoint_keys(),
        &index.witness_keys(),
    )
    .unwrap();
    for step in &track.steps {
        let path: Vec<[u8; 32]> = step
            .path
            .as_ref()
            .unwrap()
            .iter()
            .map(|h| log_hash(h))
            .collect();
        merkle::verify_inclusion(
            &log_hash(&step.leaf_hash),
            step.log_index,
            verified.checkpoint.size,
            &path,
            &verified.checkpoint.root,
        )
        .unwrap_or_else(|e| panic!("step {} does not verify: {e}", step.log_index));
        assert!(!step.institution.is_empty() && step.institution != "unknown");
    }
    // No pseudonym, no key of a signer, no account reference in the answer.
    let (_, body) = node.get(&format!("/v1/track/{}", sample.code)).await;
    let text = body.to_string();
    let person = data
        .people
        .iter()
        .map(|p| p.pseudonym.to_string())
        .collect::<Vec<_>>();
    for pseudonym in &person {
        assert!(!text.contains(pseudonym.as_str()), "a pseudonym in {text}");
    }
    for key in node.net.keys.orgs.values() {
        let public = PublicKey(key.verifying_key().to_bytes()).to_string();
        assert!(!text.contains(&public), "a signer's key in the answer");
    }
    for person in &data.people {
        assert!(!text.contains(&person.name) && !text.contains(&person.nik));
    }
    // A step's tlog-proof checks offline with the network's policy.
    let step = &track.steps[0];
    let request = Request::get(format!(
        "/v1/track/{}/proof/{}",
        sample.code, step.log_index
    ))
    .body(Body::empty())
    .unwrap();
    let (status, file) = node.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let proof = ledger::policy::TlogProof::parse(&String::from_utf8(file).unwrap()).unwrap();
    let policy = ledger::policy::Policy::for_network(&index);
    assert_eq!(
        proof.verify(&policy).unwrap().size,
        verified.checkpoint.size
    );
    // A newer checkpoint that no witness has cosigned yet is served as the latest, but
    // proofs keep naming the cosigned one, which the network's policy accepts.
    let before = verified.checkpoint.size;
    let pemda = node.net.keys.org("pemda-3510").unwrap().clone();
    let signer = PublicKey(pemda.verifying_key().to_bytes());
    let nonce = node.shared.ledger().next_nonce(&signer).unwrap().unwrap();
    let mut tx = node.pemda_propose(nonce, 200);
    tx = tx.body.sign(&pemda);
    node.shared.admit(tx, false, false).unwrap();
    node.commit_block();
    let newer = quorum_note(&node, &[0, 1, 2], before + 1, None);
    node.shared
        .checkpoints
        .receive(&mut node.shared.ledger_mut(), &newer)
        .unwrap();
    let request = Request::get("/v1/checkpoint").body(Body::empty()).unwrap();
    let (_, latest) = node.send(request).await;
    assert!(String::from_utf8(latest)
        .unwrap()
        .contains(&format!("\n{}\n", before + 1)));
    let again: proto::api::TrackJson = node.get_as(&format!("/v1/track/{}", sample.code)).await;
    assert_eq!(again.checkpoint_size, Some(before));
    // Another code's step is not served under this code.
    let other = data
        .tracking_codes
        .iter()
        .find(|s| s.code != sample.code)
        .unwrap();
    let theirs: proto::api::TrackJson = node.get_as(&format!("/v1/track/{}", other.code)).await;
    let foreign = theirs
        .steps
        .iter()
        .find(|s| track.steps.iter().all(|m| m.log_index != s.log_index))
        .expect("a step of theirs only");
    let (status, body) = node
        .get(&format!(
            "/v1/track/{}/proof/{}",
            sample.code, foreign.log_index
        ))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "no_such_step")
    );
}

#[tokio::test]
async fn mistyped_malformed_and_unknown_codes_get_helpful_answers_and_guessing_is_limited() {
    let (node, data) = demo_node(10);
    let sample = &data.tracking_codes[0].code;
    // One symbol changed: the check symbol catches it.
    let last = sample.chars().last().unwrap();
    let typo = format!(
        "{}{}",
        &sample[..sample.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(99);
    let unknown = ledger::privacy::new_tracking_code(&mut rng);
    for (path, status, expected) in [
        (
            format!("/v1/track/{typo}"),
            StatusCode::BAD_REQUEST,
            "mistyped_tracking_code",
        ),
        (
            "/v1/track/BNS-1234".into(),
            StatusCode::BAD_REQUEST,
            "bad_tracking_code",
        ),
        (
            format!("/v1/track/{}", &sample[..sample.len() - 4]),
            StatusCode::BAD_REQUEST,
            "bad_tracking_code",
        ),
        (
            format!("/v1/track/{unknown}"),
            StatusCode::NOT_FOUND,
            "unknown_tracking_code",
        ),
    ] {
        let (got, body) = node.get(&path).await;
        assert_eq!((got, code(&body)), (status, expected), "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 20);
    }
    // The burst allowance is 20 lookups; the clock does not move, so more are refused.
    let mut limited = 0;
    for _ in 0..30 {
        let (status, _) = node.get(&format!("/v1/track/{unknown}")).await;
        limited += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(
        limited,
        30 - (node::track::TRACK_LOOKUPS_BURST as usize - 4)
    );
    // Allowance comes back with time.
    node.clock.advance(Duration::from_secs(5));
    let (status, _) = node.get(&format!("/v1/track/{}", sample)).await;
    assert_eq!(status, StatusCode::OK);
}

/// Every table reachable from the program periods, depth first: (path, answer).
async fn all_totals(node: &Node) -> Vec<(String, proto::api::TotalsJson)> {
    let programs: Vec<proto::api::ProgramPeriodsJson> = node.get_as("/v1/totals").await;
    let mut todo: Vec<String> = programs
        .iter()
        .flat_map(|p| {
            p.periods
                .iter()
                .map(|q| format!("/v1/totals/{}/{q}", p.program))
        })
        .collect();
    let mut seen = Vec::new();
    while let Some(path) = todo.pop() {
        let totals: proto::api::TotalsJson = node.get_as(&path).await;
        let base = format!("/v1/totals/{}/{}", totals.program, totals.period);
        for row in &totals.rows {
            if !row.at_region_itself {
                todo.push(format!("{base}/{}", row.region));
            }
        }
        seen.push((path, totals));
    }
    seen
}

#[tokio::test]
async fn region_totals_hide_cells_under_ten_and_prove_the_rest_against_the_signed_checkpoint() {
    use ledger::totals::{NodePath, NodeProof, TotalsProofError};
    let (node, _) = demo_node(300);
    let index = node.shared.ledger().genesis().clone();
    let tables = all_totals(&node).await;
    assert!(
        tables.len() > 50,
        "program periods, provinces, regencies, districts, villages"
    );
    let (mut published, mut hidden_villages) = (0, 0);
    for (path, t) in &tables {
        // Suppression: no published cell under ten; hidden rows are none, or at least two
        // that together count ten or more, unless the table itself is hidden.
        for row in &t.rows {
            if let Some(v) = row.totals {
                assert!(v.beneficiaries >= 10, "{path}: {row:?}");
                assert!(t.totals.is_some(), "{path}: a row under a hidden total");
            } else if row.region.matches('.').count() == 3 {
                hidden_villages += 1;
            }
        }
        if let Some(total) = t.totals {
            let shown: u64 = t
                .rows
                .iter()
                .filter_map(|r| r.totals)
                .map(|v| v.beneficiaries)
                .sum();
            let hidden_rows = t.rows.iter().filter(|r| r.totals.is_none()).count();
            let residual = total.beneficiaries - shown;
            assert!(
                hidden_rows == 0 || (hidden_rows >= 2 && residual >= 10),
                "{path}: {hidden_rows} hidden rows adding up to {residual}"
            );
            // The proof: the node's hash among its parent's children, up to the root that
            // the quorum-signed checkpoint names.
            let note = t.checkpoint.as_ref().expect("the totals are signed");
            let verified = ledger::note::verify_checkpoint(
                note,
                &index.genesis.log_origin,
                &index.checkpoint_keys(),
                &index.witness_keys(),
            )
            .unwrap();
            let root = ledger::Hash32(verified.checkpoint.totals.expect("a totals line"));
            use ledger::types::{PeriodCode, ProgramCode, RegionCode};
            let (program, period) = (
                ProgramCode::new(t.program.as_str()).unwrap(),
                PeriodCode::new(t.period.as_str()).unwrap(),
            );
            let claimed = match &t.region {
                Some(r) => NodePath::Region(program, period, RegionCode::new(r.as_str()).unwrap()),
                None => NodePath::Period(program, period),
            };
            let proof = NodeProof {
                path: t.proof.iter().map(|n| n.to_proof_node().unwrap()).collect(),
            };
            assert_eq!(
                proof.verify(&claimed, &root).unwrap(),
                total.into(),
                "{path}"
            );
            for (row, node_json) in t.rows.iter().zip(&t.row_nodes) {
                let Some(node_json) = node_json else { continue };
                let child = node_json.to_proof_node().unwrap();
                assert!(
                    proof.path[0].children.contains(&child.hash()),
                    "{path}: {row:?}"
                );
                assert_eq!(Some(child.sums.into()), row.totals);
                assert!(
                    node_json.own.is_none() && node_json.salt.is_none(),
                    "{path}"
                );
            }
            // Own totals are opened only for the proven node, and only when its own row
            // (records kept at the region itself) is published.
            assert!(
                t.proof[1..]
                    .iter()
                    .all(|n| n.own.is_none() && n.salt.is_none()),
                "{path}"
            );
            let own_row = t
                .rows
                .iter()
                .find(|r| r.at_region_itself)
                .and_then(|r| r.totals);
            assert_eq!(t.proof[0].own, own_row, "{path}");
            // A total changed by one Rupiah no longer proves.
            let mut tampered = proof.clone();
            tampered.path[0].sums.allocated += 1;
            assert_eq!(
                tampered.verify(&claimed, &root),
                Err(TotalsProofError::NotAChild(0))
            );
            published += 1;
        } else {
            assert!(
                t.proof.is_empty() && t.rows.iter().all(|r| r.totals.is_none()),
                "{path}"
            );
        }
    }
    assert!(published >= 10, "only {published} tables published");
    // Anomaly counts come with every published table and never with a hidden one; the
    // network's "not received" count is the number of allocations whose standing
    // statement says so, counted here straight from the records.
    for (path, t) in &tables {
        assert_eq!(t.anomalies.is_some(), t.totals.is_some(), "{path}");
    }
    let top = &tables.iter().find(|(_, t)| t.region.is_none()).unwrap().1;
    let national = top.anomalies.expect("national anomaly counts");
    let records: Vec<ledger::state::AllocationRecord> = {
        use ledger::store::Store as _;
        let prefix = ledger::state::keys::allocations();
        node.shared
            .ledger()
            .store()
            .scan(ledger::store::Column::State, &prefix, &prefix, usize::MAX)
            .unwrap()
            .iter()
            .map(|(_, v)| borsh::from_slice(v).unwrap())
            .collect()
    };
    let not_received = records
        .iter()
        .filter(|r| {
            r.beneficiary_statement
                .as_ref()
                .or(r.receipt.as_ref())
                .is_some_and(|s| !s.received)
        })
        .count() as u64;
    assert!(
        not_received > 0,
        "the demo year has payments reported not received"
    );
    assert_eq!(national.reported_not_received, not_received);
    assert!(national.disbursed_not_confirmed > 0 || national.allocated_not_disbursed > 0);

    // Statistics come with every published table and never with a hidden one. Each program
    // period's median days to payment and payments per month are what the records say; no
    // month shown counts under ten payments, and hidden months are none, or several that
    // together count ten or more.
    let mut medians = 0;
    for (path, t) in &tables {
        assert_eq!(t.stats.is_some(), t.totals.is_some(), "{path}");
        let Some(stats) = &t.stats else { continue };
        assert!(
            stats
                .months
                .iter()
                .all(|m| m.payments.is_none_or(|n| n >= 10)),
            "{path}"
        );
        let hidden: Vec<_> = stats
            .months
            .iter()
            .filter(|m| m.payments.is_none())
            .collect();
        assert!(
            hidden.len() != 1,
            "{path}: one hidden month is the total minus the others"
        );
        if t.region.is_some() {
            continue;
        }
        let mut days: Vec<u64> = Vec::new();
        let mut months: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for r in records
            .iter()
            .filter(|r| r.program.as_str() == t.program && r.period.as_str() == t.period)
        {
            let Some(paid) = &r.disbursement else {
                continue;
            };
            days.push((paid.paid_at - r.allocated_at) / explorer::anomalies::DAY_MS);
            let month = months
                .entry(explorer::stats::month_of(paid.paid_at))
                .or_default();
            month.0 += 1;
            month.1 += paid.amount.0;
        }
        days.sort();
        let median = (days.len() >= 10).then(|| days[(days.len() - 1) / 2] as u32);
        assert_eq!(stats.median_days_to_payment, median, "{path}");
        medians += u32::from(median.is_some());
        assert_eq!(
            stats
                .months
                .iter()
                .map(|m| m.month.clone())
                .collect::<Vec<_>>(),
            months.keys().cloned().collect::<Vec<_>>(),
            "{path}"
        );
        for m in &stats.months {
            if let (Some(n), Some(rupiah)) = (m.payments, m.disbursed) {
                assert_eq!((n, rupiah), months[&m.month], "{path} {}", m.month);
            }
        }
    }
    assert!(
        medians > 0,
        "the demo year has program periods with a median"
    );
    // The pass holds the ledger's lock a page at a time: with pages of three records it
    // takes it once per page, and finds exactly what one long hold finds.
    let takes = std::cell::Cell::new(0usize);
    let paged = node::anomalies::compute_paged(
        || {
            takes.set(takes.get() + 1);
            node.shared.ledger()
        },
        3,
    )
    .unwrap();
    let whole = node::anomalies::compute(|| node.shared.ledger()).unwrap();
    assert_eq!(
        (&paged.anomalies, &paged.stats),
        (&whole.anomalies, &whole.stats)
    );
    assert!(
        takes.get() > records.len() / 3,
        "{} lock holds",
        takes.get()
    );

    // Open data: the same tables as CSV, every row's figures equal to its JSON table's, with
    // the checkpoint's log size and totals root.
    let (status, kind, csv) = page(&node, "/v1/open-data/totals.csv").await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        node::open_data::TOTALS_CSV_COLUMNS.join(",")
    );
    let root = node
        .shared
        .ledger()
        .totals_root_at(node.shared.ledger().tip().log.size())
        .unwrap();
    let mut rows = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 21, "{line}");
        assert_eq!(cells[1], root.to_hex());
        let path = match cells[5] {
            "" => format!("/v1/totals/{}/{}", cells[2], cells[3]),
            region => format!("/v1/totals/{}/{}/{region}", cells[2], cells[3]),
        };
        let table = &tables
            .iter()
            .find(|(p, _)| *p == path)
            .unwrap_or_else(|| panic!("{path}"))
            .1;
        match table.totals {
            Some(t) => {
                assert_eq!(cells[7], "false");
                assert_eq!(
                    cells[8..12],
                    [t.beneficiaries, t.allocated, t.disbursed, t.confirmed].map(|n| n.to_string())
                );
                let stats = table.stats.as_ref().expect("published statistics");
                let median = stats
                    .median_days_to_payment
                    .map_or_else(String::new, |d| d.to_string());
                assert_eq!(
                    cells[18..20],
                    [median, stats.objections_open.to_string()],
                    "{line}"
                );
            }
            None => assert!(
                cells[7] == "true" && cells[8..20].iter().all(|c| c.is_empty()),
                "{line}"
            ),
        }
        rows += 1;
    }
    assert_eq!(rows, tables.len(), "one CSV row per table");

    // The same rows as Parquet, read back with the parquet crate's own reader.
    let request = Request::get("/v1/open-data/totals.parquet")
        .body(Body::empty())
        .unwrap();
    let (status, bytes) = node.send(request).await;
    assert_eq!(status, StatusCode::OK);
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let names: Vec<&str> = schema.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, node::open_data::TOTALS_CSV_COLUMNS);
    let parquet_rows: Vec<parquet::record::Row> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(parquet_rows.len(), tables.len());
    for (row, line) in parquet_rows.iter().zip(csv.lines().skip(1)) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(row.get_string(5).unwrap(), cells[5]);
        assert_eq!(row.get_bool(7).unwrap().to_string(), cells[7]);
        match row.get_long(8) {
            Ok(n) => assert_eq!(n.to_string(), cells[8]),
            Err(_) => assert!(cells[8].is_empty(), "{line}"),
        }
    }
    assert!(hidden_villages > 0, "the demo has small villages");
    // The program period sums the whole year's allocations (four PKH stages and six BPNT
    // months are separate periods, so a period's count is its beneficiaries).
    let programs: Vec<proto::api::ProgramPeriodsJson> = node.get_as("/v1/totals").await;
    assert!(
        programs
            .iter()
            .any(|p| p.program == "PKH" && p.periods.len() == 4),
        "{programs:?}"
    );

    // Bad input: a clear error, nothing else.
    for (path, status, expected) in [
        ("/v1/totals/PKH/2026!", StatusCode::BAD_REQUEST, "bad_code"),
        (
            "/v1/totals/NOPE/2026-T1",
            StatusCode::NOT_FOUND,
            "unknown_program",
        ),
        (
            "/v1/totals/PKH/2026-T1/99.99",
            StatusCode::NOT_FOUND,
            "unknown_region",
        ),
        (
            "/v1/totals/PKH/2026-T1/35.1x",
            StatusCode::BAD_REQUEST,
            "bad_code",
        ),
    ] {
        let (got, body) = node.get(path).await;
        assert_eq!((got, code(&body)), (status, expected), "{path}: {body}");
    }
}

/// GETs a page: status, content type, body.
async fn page(node: &Node, path: &str) -> (StatusCode, String, String) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    use tower::ServiceExt;
    let response = node.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, kind, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn the_explorer_pages_answer_in_both_languages_and_look_codes_up_without_javascript() {
    let (node, data) = demo_node(300);
    let (status, kind, home) = page(&node, "/").await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(home.contains("lang=\"id\"") && home.contains("Kode lacak"));
    assert!(home.len() < 100 * 1024);
    let (_, _, english) = page(&node, "/?lang=en").await;
    assert!(english.contains("lang=\"en\"") && english.contains("Tracking code"));

    let sample = data
        .tracking_codes
        .iter()
        .find(|s| s.program == "PKH")
        .unwrap();
    let (status, _, found) = page(&node, &format!("/?kode={}", sample.code)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        found.contains("Sudah disalurkan") && found.contains("tercatat di log"),
        "{found}"
    );
    assert!(found.contains(&format!("/v1/track/{}/proof/", sample.code)));
    assert!(found.contains("id=\"bukti\"") && found.contains(explorer::pages::VERIFY_JS_PATH));
    assert!(found.len() < 100 * 1024, "{} bytes", found.len());
    let (_, _, found_en) = page(&node, &format!("/?kode={}&lang=en", sample.code)).await;
    assert!(found_en.contains("paid out"), "{found_en}");

    let last = sample.code.chars().last().unwrap();
    let typo = format!(
        "{}{}",
        &sample.code[..sample.code.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let unknown = ledger::privacy::new_tracking_code(&mut rng);
    for (code, expected) in [
        (typo.as_str(), "salah ketik"),
        ("BNS-12", "bukan kode lacak"),
        (unknown.as_str(), "Tidak ada bantuan tercatat"),
    ] {
        let (status, _, body) = page(&node, &format!("/?kode={code}")).await;
        assert_eq!(status, StatusCode::OK, "{code}");
        assert!(
            body.contains(expected) && !body.contains("id=\"bukti\""),
            "{code}: {body}"
        );
    }
    // Markup in the code is escaped, never run.
    let (_, _, body) = page(&node, "/?kode=%3Cscript%3Ealert(1)%3C/script%3E").await;
    assert!(!body.contains("<script>alert") && body.contains("&lt;script&gt;"));

    let programs: Vec<proto::api::ProgramPeriodsJson> = node.get_as("/v1/totals").await;
    let pkh = programs.iter().find(|p| p.program == "PKH").unwrap();
    let (status, _, region) = page(
        &node,
        &format!("/wilayah?program=PKH&periode={}", pkh.periods[0]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        region.contains("<svg") && region.contains("Penerima"),
        "{region}"
    );
    let (status, _, _) = page(&node, "/wilayah?program=PKH&periode=2026!").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let request = Request::get(explorer::pages::VERIFY_JS_PATH)
        .body(Body::empty())
        .unwrap();
    use tower::ServiceExt;
    let response = node.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
}

#[tokio::test]
async fn no_public_answer_names_a_person_or_shows_a_village_cell_under_ten() {
    let (node, data) = demo_node(300);
    let mut answers: Vec<(String, String)> = Vec::new();
    for (path, totals) in all_totals(&node).await {
        answers.push((path, serde_json::to_string(&totals).unwrap()));
        let region = totals
            .region
            .clone()
            .map(|r| format!("&kode={r}"))
            .unwrap_or_default();
        for lang in ["", "&lang=en"] {
            let url = format!(
                "/wilayah?program={}&periode={}{region}{lang}",
                totals.program, totals.period
            );
            let (_, _, html) = page(&node, &url).await;
            answers.push((url, html));
        }
    }
    for sample in data.tracking_codes.iter().take(15) {
        for url in [
            format!("/v1/track/{}", sample.code),
            format!("/?kode={}", sample.code),
        ] {
            let (_, _, body) = page(&node, &url).await;
            answers.push((url, body));
        }
    }
    let tip = node.shared.ledger().tip().height;
    for url in [
        "/".to_owned(),
        "/v1/status".into(),
        "/v1/checkpoint".into(),
        "/v1/totals".into(),
        "/v1/open-data/totals.csv".into(),
        "/v1/blocks/summaries?count=50".into(),
        "/blok".into(),
        format!("/blok?cari={tip}"),
        format!("/v1/blocks/{tip}?txs=hashes"),
        "/v1/blocks/1?txs=hashes".into(),
    ] {
        let (_, _, body) = page(&node, &url).await;
        answers.push((url, body));
    }
    // A NIK-shaped value: sixteen digits standing alone (not inside a hex hash).
    let sixteen_digits = |text: &str| {
        text.as_bytes()
            .split(|b| !b.is_ascii_alphanumeric())
            .any(|word| word.len() == 16 && word.iter().all(u8::is_ascii_digit))
    };
    for (url, body) in &answers {
        assert!(
            !sixteen_digits(body),
            "{url}: an identity-number-shaped value"
        );
        for person in &data.people {
            assert!(
                !body.contains(&person.pseudonym.to_string()),
                "{url}: a pseudonym"
            );
            assert!(!body.contains(&person.nik), "{url}: a NIK");
            assert!(
                !body.contains(&person.account_number),
                "{url}: an account number"
            );
            assert!(
                !body.contains(&person.name),
                "{url}: a demo name ({})",
                person.name
            );
        }
    }
    // Village-level cells: every published one counts ten or more (checked on the JSON,
    // which the pages render).
    for (url, body) in answers.iter().filter(|(u, _)| u.starts_with("/v1/totals/")) {
        let totals: proto::api::TotalsJson = serde_json::from_str(body).unwrap();
        for row in totals
            .rows
            .iter()
            .filter(|r| r.region.matches('.').count() == 3)
        {
            assert!(
                row.totals.is_none_or(|v| v.beneficiaries >= 10),
                "{url}: {row:?}"
            );
        }
    }
    assert!(answers.len() > 100, "{} answers scanned", answers.len());
}

/// The browser test (`tests/browser/explorer.py`) against this node served on a real port:
/// headless Chromium at 360 px checks every proof with WebCrypto. Set
/// `BANSOS_SCREENSHOTS=DIR` to keep its screenshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_verifies_its_proofs_in_headless_chromium() {
    let (node, data) = demo_node(300);
    let url = node.serve_on_a_port().await;
    let sample = data
        .tracking_codes
        .iter()
        .find(|s| s.program == "PKH")
        .unwrap();
    let programs: Vec<proto::api::ProgramPeriodsJson> = node.get_as("/v1/totals").await;
    let period = &programs
        .iter()
        .find(|p| p.program == "PKH")
        .unwrap()
        .periods[0];
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser/explorer.py");
    let downloads = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new("/usr/bin/python3");
    command
        .arg(script)
        .args([
            "--url",
            &url,
            "--code",
            &sample.code,
            "--program",
            "PKH",
            "--period",
            period,
        ])
        .arg("--downloads")
        .arg(downloads.path());
    if let Ok(dir) = std::env::var("BANSOS_SCREENSHOTS") {
        command.args(["--screenshots", &dir]);
    }
    // The script's own waits are bounded (20 s each); the node answers from other threads.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect(
            "python3 runs (scripts/setup.sh installs chromium, chromium-driver, python3-selenium)",
        );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{log}");
    assert!(output.status.success(), "{log}");
}

#[tokio::test]
async fn the_chain_browser_summarises_blocks_finds_them_and_streams_new_ones() {
    let (node, _) = demo_node(40);
    let tip = node.shared.ledger().tip().height;
    let latest: Vec<proto::api::BlockSummaryJson> =
        node.get_as("/v1/blocks/summaries?count=5").await;
    let heights: Vec<u64> = latest.iter().map(|b| b.height).collect();
    assert_eq!(heights, (tip - 4..=tip).rev().collect::<Vec<_>>());
    for b in &latest {
        assert_eq!(
            b.by_type.values().sum::<u64>(),
            u64::from(b.tx_count),
            "{b:?}"
        );
        assert!(b.by_regency.values().sum::<u64>() <= u64::from(b.tx_count));
        assert!(
            b.by_regency.keys().all(|r| r.matches('.').count() <= 1),
            "regencies only: {b:?}"
        );
    }
    for bad in [
        "count=x",
        "count=0",
        "count=51",
        "before=0",
        "before=9223372036854775808",
    ] {
        let (status, body) = node.get(&format!("/v1/blocks/summaries?{bad}")).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "bad_query"),
            "{bad}"
        );
    }

    // Live: a stream opened now carries the next block's summary, with the institutions
    // whose validators signed its certificate.
    let request = Request::get("/v1/events").body(Body::empty()).unwrap();
    let response = node.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.into_body();
    let nonce = {
        let pemda = node.net.keys.org("pemda-3510").unwrap();
        node.shared
            .ledger()
            .next_nonce(&PublicKey(pemda.verifying_key().to_bytes()))
            .unwrap()
            .unwrap()
    };
    let tx = node.pemda_propose(nonce, 201);
    node.shared.admit(tx.clone(), false, false).unwrap();
    let height = node.commit_block();
    let frame = tokio::time::timeout(Duration::from_secs(10), stream.frame())
        .await
        .expect("an event within 10 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(text.starts_with("event: blocks"), "{text}");
    let blocks: Vec<proto::api::BlockSummaryJson> = serde_json::from_str(data).unwrap();
    assert_eq!(blocks[0].height, height);
    assert_eq!(blocks[0].by_type.get("propose"), Some(&1));
    assert_eq!(blocks[0].by_regency.get("35.10"), Some(&1));
    assert_eq!(blocks[0].signers.len(), 4, "{:?}", blocks[0]);

    // The page: latest blocks, a block by height and by hash, a transaction's status.
    let (status, _, html) = page(&node, "/blok").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Blok terbaru") && html.contains(&format!("/blok?cari={height}")));
    let (_, _, by_height) = page(&node, &format!("/blok?cari={height}")).await;
    assert!(
        by_height.contains(&blocks[0].hash) && by_height.contains("propose 1"),
        "{by_height}"
    );
    let (_, _, by_hash) = page(&node, &format!("/blok?cari={}&lang=en", blocks[0].hash)).await;
    assert!(by_hash.contains(&format!("Block {height}")), "{by_hash}");
    let (_, _, none) = page(&node, "/blok?cari=99999999").await;
    assert!(none.contains("Tidak ada blok"));
    let (_, _, committed) = page(&node, &format!("/blok?tx={}", tx.hash())).await;
    assert!(
        committed.contains(&format!("Tercatat di blok {height}")),
        "{committed}"
    );
    let (_, _, malformed) = page(&node, "/blok?tx=%3Cscript%3Ex").await;
    assert!(malformed.contains("bukan hash transaksi") && !malformed.contains("<script>x"));
}

#[test]
fn the_survey_is_served_stale_while_a_background_thread_computes_the_next() {
    use node::anomalies::{survey, ANOMALY_REFRESH};
    let node = node(100);
    let first = survey(&node.shared).unwrap();
    assert_eq!(first.height, 0);
    node.commit_block();
    // Younger than the refresh interval: the same survey, nothing recomputed.
    assert!(Arc::ptr_eq(&first, &survey(&node.shared).unwrap()));
    // Older, and the chain has moved: the old survey at once, the next one from a thread.
    node.clock.advance(ANOMALY_REFRESH);
    assert!(Arc::ptr_eq(&first, &survey(&node.shared).unwrap()));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let latest = survey(&node.shared).unwrap();
        if latest.height == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refreshed survey after 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The testnet's pseudonym service seed (the ministry's node holds it).
fn service_seed(node: &Node) -> ledger::privacy::SecretKey {
    node.net
        .nodes
        .iter()
        .find_map(|n| n.pseudonym_service.clone())
        .expect("the testnet's service seed")
}

/// `node` running the pseudonym service with `keys` (the current one first).
fn run_pseudonym_service(mut node: Node, keys: Vec<Arc<proto::pseudonym::ServiceKey>>) -> Node {
    // The router holds the shared state too: drop it first.
    node.router = axum::Router::new();
    let shared = Arc::try_unwrap(node.shared).ok().expect("one owner");
    node.shared = Arc::new(shared.with_pseudonym_service(keys));
    node.router = node::api::router(node.shared.clone());
    node
}

/// The pseudonym service (issue: institution operations): its public key for anyone; a
/// blinded batch evaluated for an institution's key, the answer unblinding to what the key
/// computes directly; a node key, a malformed batch and a node without the service refused.
#[tokio::test]
async fn the_pseudonym_service_evaluates_blinded_batches_for_institutions_only() {
    let mut node = node(1000);
    let (_, answer) = node.get("/v1/pseudonym/key").await;
    assert_eq!(answer["error"]["code"], "no_pseudonym_service");
    let key = Arc::new(proto::pseudonym::ServiceKey::from_seed(&service_seed(&node).0, 1).unwrap());
    node = run_pseudonym_service(node, vec![key.clone()]);

    let served: proto::api::PseudonymKeyJson = node.get_as("/v1/pseudonym/key").await;
    use base64::Engine as _;
    let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
    assert_eq!((served.key_version, served.public_key), (1, public));

    let niks = vec!["3510014501850001".to_owned(), "3510011203790002".to_owned()];
    let (blinded, body) = proto::pseudonym::blind(&mut rand::rngs::OsRng, 1, &niks).unwrap();
    let path = "/v1/pseudonym/evaluate";
    let pemda = node.net.keys.org("pemda-3510").unwrap().clone();
    let request = node.signed("POST", path, &body, &pemda, None).await;
    let (status, answer) = node.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let pseudonyms = proto::pseudonym::unblind(&blinded, &answer, &key.public_key()).unwrap();
    assert_eq!(pseudonyms[1], key.pseudonym(&niks[1]).unwrap());

    let node_key = node.net.nodes[0].key.clone();
    let request = node.signed("POST", path, &body, &node_key, None).await;
    assert_eq!(
        node.send(request).await.0,
        StatusCode::UNAUTHORIZED,
        "a node key"
    );
    let request = node
        .signed("POST", path, &body[..body.len() - 1], &pemda, None)
        .await;
    let (status, bytes) = node.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&bytes).contains("malformed_request"));
}

/// Re-keying through the API: the service answers under the key the ledger has current,
/// switching to its next key at the change's activation height (a request for the old
/// version is refused from then on); `/v1/pseudonym/keys` shows the ledger's keys and the
/// linking progress; `/v1/beneficiaries/lookup` (consortium only) finds a beneficiary by
/// either pseudonym once it is linked; a key file that is not the ledger's is refused.
#[tokio::test]
async fn a_rekeying_is_served_from_the_ledger_and_either_pseudonym_finds_the_beneficiary() {
    use ledger::governance::Change;
    use ledger::pseudonyms::{PseudonymLink, PseudonymServiceSpec};
    use proto::api::{PseudonymKeyJson, PseudonymKeysJson};
    use proto::pseudonym::ServiceKey;
    let mut node = node(1000);
    let v1 = Arc::new(ServiceKey::from_seed(&service_seed(&node).0, 1).unwrap());
    let v2 = Arc::new(ServiceKey::from_seed(&[22; 32], 2).unwrap());
    let wrong_v1 = Arc::new(ServiceKey::from_seed(&[11; 32], 1).unwrap());
    let refused =
        node::pseudonym_api::check_keys_against_ledger(&[wrong_v1], &node.shared.ledger());
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("does not hold the key the ledger records"));
    node::pseudonym_api::check_keys_against_ledger(
        &[v1.clone(), v2.clone()],
        &node.shared.ledger(),
    )
    .expect("the genesis key and a key the ledger does not know yet");
    node = run_pseudonym_service(node, vec![v1.clone(), v2.clone()]);
    use base64::Engine as _;
    let b64 = |k: &ServiceKey| base64::engine::general_purpose::STANDARD.encode(k.public_key());

    let served: PseudonymKeyJson = node.get_as("/v1/pseudonym/key").await;
    assert_eq!((served.key_version, served.public_key), (1, b64(&v1)));
    let keys: PseudonymKeysJson = node.get_as("/v1/pseudonym/keys").await;
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(
        (
            keys.keys[0].public_key.clone(),
            keys.keys[0].organisation.as_str()
        ),
        (b64(&v1), "kemensos")
    );

    let niks = ["3510014501850001", "3510011203790002"];
    let old: Vec<_> = niks.iter().map(|n| v1.pseudonym(n).unwrap()).collect();
    let new: Vec<_> = niks.iter().map(|n| v2.pseudonym(n).unwrap()).collect();
    for &beneficiary in &old {
        admit_as(
            &node,
            "pemda-3510",
            Action::Propose {
                beneficiary,
                region: ledger::types::RegionCode::new("35.10.20.2001").unwrap(),
                household_size: 3,
                welfare_decile: 2,
            },
        );
    }
    let activation = node.commit_block() + 3;
    let service = PseudonymServiceSpec {
        organisation: ledger::types::OrgId::new("kemensos").unwrap(),
        key_version: 2,
        public_key: Hash32(v2.public_key()),
    };
    let change = Change::SetPseudonymKey { service };
    propose_and_approve(&node, change, activation);
    while node.commit_block() < activation {}

    let served: PseudonymKeyJson = node.get_as("/v1/pseudonym/key").await;
    assert_eq!((served.key_version, served.public_key), (2, b64(&v2)));
    let pemda = node.net.keys.org("pemda-3510").unwrap().clone();
    let (_, body) =
        proto::pseudonym::blind(&mut rand::rngs::OsRng, 1, &[niks[0].to_owned()]).unwrap();
    let request = node
        .signed("POST", "/v1/pseudonym/evaluate", &body, &pemda, None)
        .await;
    let (status, answer) = node.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&answer).contains("wrong_key_version"));
    let keys: PseudonymKeysJson = node.get_as("/v1/pseudonym/keys").await;
    let current = keys.keys.last().unwrap();
    assert_eq!(
        (
            current.key_version,
            current.linked,
            current.links,
            current.beneficiaries
        ),
        (2, false, 0, 2)
    );

    let ask = |list: &[Hash32]| {
        serde_json::to_vec(&serde_json::json!({ "pseudonyms": list.iter().map(|p| p.to_hex()).collect::<Vec<_>>() })).unwrap()
    };
    let path = "/v1/beneficiaries/lookup";
    let (status, body) = node.post(path, ask(&old)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "signature_required"),
        "{body}"
    );
    let unlinked_path = "/v1/pseudonym/unlinked";
    let request = node
        .signed("POST", unlinked_path, br#"{"limit":10}"#, &pemda, None)
        .await;
    let (status, answer) = node.send(request).await;
    assert_eq!(status, StatusCode::OK);
    let unlinked: proto::api::UnlinkedJson = serde_json::from_slice(&answer).unwrap();
    let mut expected: Vec<String> = old.iter().map(|p| p.to_hex()).collect();
    expected.sort();
    assert_eq!(
        (unlinked.key_version, unlinked.unlinked, unlinked.next),
        (2, expected, None)
    );
    let (status, body) = node.post(unlinked_path, br#"{"limit":10}"#.to_vec()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "signature_required")
    );
    let found = lookup(&node, &pemda, ask(&[old[0], new[0]])).await;
    assert_eq!(found.beneficiaries[0].known_as, Some(old[0].to_hex()));
    assert_eq!(found.beneficiaries[1].known_as, None, "not linked yet");

    let links = old
        .iter()
        .zip(&new)
        .map(|(&old, &new)| PseudonymLink { old, new })
        .collect();
    admit_as(
        &node,
        "kemensos",
        Action::LinkPseudonyms {
            key_version: 2,
            links,
            complete: true,
        },
    );
    node.commit_block();
    let found = lookup(&node, &pemda, ask(&new)).await;
    let known: Vec<_> = found
        .beneficiaries
        .iter()
        .map(|b| b.known_as.clone())
        .collect();
    assert_eq!(
        known,
        old.iter().map(|p| Some(p.to_hex())).collect::<Vec<_>>()
    );
    let keys: PseudonymKeysJson = node.get_as("/v1/pseudonym/keys").await;
    assert!(keys.keys[1].linked);
    let request = node
        .signed("POST", unlinked_path, br#"{"limit":10}"#, &pemda, None)
        .await;
    let (status, answer) = node.send(request).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "{}",
        String::from_utf8_lossy(&answer)
    );

    let request = node
        .signed("POST", path, b"{\"pseudonyms\":[\"xyz\"]}", &pemda, None)
        .await;
    let (status, answer) = node.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&answer).contains("bad_pseudonym"));
}

/// Asks `/v1/beneficiaries/lookup` about pseudonyms, signed by `key`.
async fn lookup(node: &Node, key: &SigningKey, body: Vec<u8>) -> proto::api::LookupJson {
    let path = "/v1/beneficiaries/lookup";
    let request = node.signed("POST", path, &body, key, None).await;
    let (status, answer) = node.send(request).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    serde_json::from_slice(&answer).unwrap()
}

/// The ministry proposes `change` for `activation`, and two more institutions approve it
/// (the test network's rule), each in a committed block; returns the change's id.
fn propose_and_approve(node: &Node, change: ledger::governance::Change, activation: u64) -> Hash32 {
    let proposal = Action::ProposeChange {
        change,
        activation_height: activation,
    };
    let id = admit_as(node, "kemensos", proposal);
    node.commit_block();
    for org in ["bpk", "dukcapil"] {
        admit_as(node, org, Action::ApproveChange { change: id });
    }
    node.commit_block();
    id
}

/// Signs and admits `action` as institution `org` with its next nonce.
fn admit_as(node: &Node, org: &str, action: Action) -> Hash32 {
    let key = node.net.keys.org(org).unwrap();
    let signer = PublicKey(key.verifying_key().to_bytes());
    let next = node
        .shared
        .ledger()
        .next_nonce(&signer)
        .unwrap()
        .unwrap_or(0);
    let tx = TxBody {
        chain_id: node.net.genesis.chain_id.clone(),
        signer,
        nonce: node.shared.mempool().pending_next_nonce(&signer, next),
        action,
    }
    .sign(key);
    let hash = tx.hash();
    node.shared.admit(tx, false, false).unwrap();
    hash
}

/// Governance through the API: a change adding a fifth validator is served with its
/// approvals and status; from its activation height `/v1/status` and `/v1/validator-sets`
/// show the new set, the consortium admits the new validator's node key, and checkpoints
/// need a quorum of the set that reached their size: three of the four old validators
/// still make one for a size before the change, but no longer for a size after it.
#[tokio::test]
async fn a_validator_set_change_is_served_and_checkpoint_quorums_follow_it() {
    use ledger::governance::Change;
    use ledger::note::{sign, Checkpoint, NoteKey, SignedNote};
    let node = node(1000);
    commit_proposals(&node, 30);
    let size_before = node.shared.ledger().tip().log.size();
    let new_key = SigningKey::from_bytes(&[41; 32]);
    let checkpoint_key = SigningKey::from_bytes(&[42; 32]);
    let origin = node.net.genesis.log_origin.clone();
    let public = |k: &SigningKey| PublicKey(k.verifying_key().to_bytes());
    let spec = ledger::genesis::ValidatorSpec {
        key: public(&new_key),
        power: 1,
        checkpoint_key: NoteKey::ed25519(&origin, public(&checkpoint_key))
            .unwrap()
            .vkey(),
    };
    let activation = node.shared.ledger().tip().height + 4;
    let change = Change::SetValidator {
        org: ledger::types::OrgId::new("pemda-5271").unwrap(),
        validator: Some(spec),
    };
    let id = propose_and_approve(&node, change, activation);
    let shown: proto::api::ChangeJson = node.get_as(&format!("/v1/governance/changes/{id}")).await;
    assert_eq!(
        (shown.status.as_str(), shown.approvals.len()),
        ("pending", 3),
        "{shown:?}"
    );
    assert_eq!(shown.change["change"], "set_validator");
    let (status, body) = node
        .get(&format!("/v1/governance/changes/{}", Hash32([7; 32])))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown_change")
    );
    let (status, body) = node.get("/v1/governance/changes/xyz").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "bad_hash"));
    let before: StatusJson = node.get_as("/v1/status").await;
    assert_eq!(
        (before.validator_set_version, before.validators.len()),
        (0, 4)
    );

    while node.shared.ledger().tip().height < activation - 1 {
        node.commit_block();
    }
    // The block at the activation height grows the log: its head is the new set's to sign.
    node.shared
        .admit(node.pemda_propose(30, 9), false, false)
        .unwrap();
    assert_eq!(node.commit_block(), activation);
    let status: StatusJson = node.get_as("/v1/status").await;
    assert_eq!(
        (status.validator_set_version, status.validator_set_from),
        (1, activation)
    );
    assert_eq!(status.validators.len(), 5);
    let sets: proto::api::ValidatorSetsJson = node.get_as("/v1/validator-sets").await;
    assert_eq!(sets.sets.len(), 2);
    assert_eq!(sets.sets[1].validators.len(), 5);
    let shown: proto::api::ChangeJson = node.get_as(&format!("/v1/governance/changes/{id}")).await;
    assert_eq!(shown.status, "activated");
    // The new validator's node key is a consortium node now (it may push checkpoints).
    assert!(node.shared.consortium.is_node(&public(&new_key)));

    let size_after = node.shared.ledger().tip().log.size();
    assert!(size_after > size_before);
    let note = |size: u64, validators: &[usize], extra: Option<&SigningKey>| {
        let text = Checkpoint {
            origin: origin.clone(),
            size,
            root: node.shared.ledger().log_root_at(size).unwrap().0,
            totals: node.shared.ledger().totals_root_at(size).ok().map(|h| h.0),
        }
        .text();
        let mut signatures: Vec<_> = validators
            .iter()
            .map(|&v| {
                sign(
                    &text,
                    &origin,
                    node.net.nodes[v].checkpoint_key.as_ref().unwrap(),
                )
            })
            .collect();
        signatures.extend(extra.map(|k| sign(&text, &origin, k)));
        SignedNote { text, signatures }.to_text()
    };
    let pusher = node.net.nodes[1].key.clone();
    let served = |size: u64| {
        let ledger = node.shared.ledger();
        node.shared
            .checkpoints
            .served(&ledger, Some(size))
            .unwrap()
            .is_some()
    };
    // Before the change: three of four is a quorum.
    let (status, body) =
        push_checkpoint(&node, &note(size_before, &[0, 1, 2], None), Some(&pusher)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(served(size_before));
    // After it: three of five is not; with the new validator's signature, four of five is.
    let (status, body) =
        push_checkpoint(&node, &note(size_after, &[0, 1, 2], None), Some(&pusher)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(!served(size_after));
    let (status, body) = push_checkpoint(
        &node,
        &note(size_after, &[], Some(&checkpoint_key)),
        Some(&pusher),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(served(size_after));
    // The new validator's checkpoint key is refused for a size before the change.
    let (status, _) = push_checkpoint(
        &node,
        &note(size_before, &[], Some(&checkpoint_key)),
        Some(&pusher),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Each result of a batch answer as a short code: its status (`new`, `pending`, ...) or its
/// error's code.
fn batch_codes(answer: &Value) -> Vec<String> {
    let results = answer["results"].as_array().expect("a batch answer");
    let code = |r: &Value| {
        r["status"]
            .as_str()
            .or(r["error"]["code"].as_str())
            .map(str::to_owned)
    };
    results
        .iter()
        .map(|r| code(r).unwrap_or_default())
        .collect()
}

/// A peer node's relayed transactions are admitted with their signatures left to the block
/// that takes them, or to the sweep (the peer checked them on its own admission). A bad
/// one found there is rejected and counted, and costs that peer its trust: its relays are
/// checked on arrival from then on. An unchecked transaction never displaces a pending one.
#[tokio::test]
async fn a_peers_relayed_signatures_are_checked_with_the_next_block_and_a_bad_one_costs_its_trust()
{
    let node = node(100);
    let peer = node.net.nodes[1].key.clone();
    let relay = |txs: Vec<Transaction>, key: SigningKey| {
        let node = &node;
        async move {
            let body = serde_json::to_vec(&txs).unwrap();
            let (status, answer) = post_signed_batch(node, &body, &key, None, |_| {}).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            batch_codes(&answer)
        }
    };
    let client_tx = node.pemda_propose(0, 1);
    node.shared.admit(client_tx.clone(), false, true).unwrap();
    // A forgery in place of a pending transaction is checked on arrival.
    let codes = relay(vec![forged_propose(&node, 0, 2)], peer.clone()).await;
    assert_eq!(codes, ["bad_signature"]);
    assert!(node.shared.mempool().is_checked(&client_tx.hash()));

    let good = node.pemda_propose(1, 3);
    let forged = forged_propose(&node, 2, 4);
    let codes = relay(vec![good.clone(), forged.clone()], peer.clone()).await;
    assert_eq!(codes, ["pending", "pending"]);
    assert!(!node.shared.mempool().is_checked(&good.hash()));
    assert!(!node.shared.mempool().is_checked(&forged.hash()));
    assert_eq!(node.shared.metrics.relay_bad_signatures.get(), 0);

    node.commit_block();
    let state: TxStatusJson = node.get_as(&format!("/v1/tx/{}", good.hash())).await;
    assert_eq!(state.status, TxState::Committed);
    let state: TxStatusJson = node.get_as(&format!("/v1/tx/{}", forged.hash())).await;
    assert_eq!(state.status, TxState::Rejected);
    assert_eq!(
        state.error.map(|e| e.code).as_deref(),
        Some("bad_signature")
    );
    assert_eq!(node.shared.metrics.relay_bad_signatures.get(), 1);

    // The peer's next forgery, though next in line, is checked on arrival.
    let codes = relay(vec![forged_propose(&node, 2, 5)], peer).await;
    assert_eq!(codes, ["bad_signature"]);
    assert_eq!(node.shared.mempool().len(), 0);
    // Another peer is still trusted. Its forgery that no block takes (it waits for nonce
    // 2) is checked by the sweep once it has waited UNCHECKED_AGE_MAX, with the good ones.
    let other_peer = node.net.nodes[2].key.clone();
    let next = node.pemda_propose(2, 6);
    let waiting = forged_propose(&node, 4, 7);
    let codes = relay(vec![next.clone(), waiting.clone()], other_peer.clone()).await;
    assert_eq!(codes, ["pending", "pending"]);
    assert!(!node.shared.mempool().is_checked(&next.hash()));
    node.shared.sweep_mempool();
    assert!(!node.shared.mempool().is_checked(&next.hash()), "too young");
    node.clock.advance(node::mempool::UNCHECKED_AGE_MAX);
    node.shared.sweep_mempool();
    assert!(node.shared.mempool().is_checked(&next.hash()));
    let state: TxStatusJson = node.get_as(&format!("/v1/tx/{}", waiting.hash())).await;
    assert_eq!(state.status, TxState::Rejected);
    assert_eq!(node.shared.metrics.relay_bad_signatures.get(), 2);
    let codes = relay(vec![forged_propose(&node, 3, 8)], other_peer).await;
    assert_eq!(codes, ["bad_signature"]);
}

/// A peer's batch larger than UNCHECKED_BATCH_TXS_MAX is verified on arrival (its size
/// already makes a signature cheap, and a block's check would wait for it); one of that
/// size is left to the block.
#[tokio::test]
async fn a_peers_large_relayed_batch_is_checked_on_arrival() {
    use node::shared::UNCHECKED_BATCH_TXS_MAX;
    let node = node(2 * UNCHECKED_BATCH_TXS_MAX + 1);
    let peer = node.net.nodes[1].key.clone();
    let mut nonce = 0u64;
    for (size, checked) in [
        (UNCHECKED_BATCH_TXS_MAX + 1, true),
        (UNCHECKED_BATCH_TXS_MAX, false),
    ] {
        let txs: Vec<Transaction> = (nonce..nonce + size as u64)
            .map(|n| node.pemda_propose(n, n as u8))
            .collect();
        nonce += size as u64;
        let body = serde_json::to_vec(&txs).unwrap();
        let (status, answer) = post_signed_batch(&node, &body, &peer, None, |_| {}).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(
            batch_codes(&answer).iter().all(|c| c == "pending"),
            "{answer}"
        );
        let pool = node.shared.mempool();
        assert!(
            txs.iter().all(|tx| pool.is_checked(&tx.hash()) == checked),
            "a batch of {size}: checked {checked}"
        );
    }
}

/// `node.shared.admit_batch(batch)` from a client, each result as a short code: `new`,
/// `pending`, `committed` or the refusal's code.
fn admit_codes(node: &Node, batch: Vec<Transaction>) -> Vec<String> {
    use node::shared::Admitted;
    let results = node
        .shared
        .admit_batch(batch, node::shared::BatchFrom::Client);
    let code = |(_, result): &(Hash32, Result<Admitted, node::shared::Refusal>)| match result {
        Ok(Admitted::New) => "new".to_owned(),
        Ok(Admitted::AlreadyPending) => "pending".to_owned(),
        Ok(Admitted::AlreadyCommitted) => "committed".to_owned(),
        Err(refusal) => refusal.code.clone(),
    };
    results.iter().map(code).collect()
}

/// The Pemda's proposal `nonce` with its signature spoiled.
fn forged_propose(node: &Node, nonce: u64, pseudonym: u8) -> Transaction {
    let mut tx = node.pemda_propose(nonce, pseudonym);
    tx.signature.0[0] ^= 1;
    tx
}

/// A batch (a client's or a peer's relay) is admitted transaction by transaction: the
/// checks that cost nothing come first (pending already, room, a known signer), the
/// survivors' signatures are verified together, and each gets its own result, in order.
/// A transaction refused for room is refused before its signature is looked at.
#[test]
fn a_batch_is_admitted_one_by_one_with_the_cheap_checks_before_the_signatures() {
    let node = node(3);
    let forged = |nonce, pseudonym| forged_propose(&node, nonce, pseudonym);
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let mut strangers = node.pemda_propose(0, 9).body;
    strangers.signer = PublicKey(stranger.verifying_key().to_bytes());
    let first = node.pemda_propose(0, 1);
    let batch = vec![
        first.clone(),
        first.clone(),
        forged(1, 2),
        strangers.sign(&stranger),
        node.pemda_propose(1, 3),
    ];
    let results = admit_codes(&node, batch);
    assert_eq!(
        results,
        ["new", "pending", "bad_signature", "unknown_signer", "new"]
    );
    assert_eq!(node.shared.mempool().len(), 2);

    // One place is left: the first transaction takes it, the second finds none.
    let batch = vec![node.pemda_propose(2, 4), node.pemda_propose(3, 5)];
    let results = admit_codes(&node, batch);
    assert_eq!(results, ["new", "mempool_full"]);
    // A full mempool refuses a forged transaction for room, not for its signature.
    let results = admit_codes(&node, vec![forged(4, 6)]);
    assert_eq!(results, ["mempool_full"]);
    assert_eq!(node.shared.mempool().len(), 3);
}

/// What the mempool would refuse for a transaction's nonce (too far past its signer's
/// pending ones, or waiting for a predecessor when the pool keeps its last room for ready
/// transactions) is refused before the signature is looked at: under overload, clients
/// resubmit such transactions again and again. A signer's consecutive nonces in one batch
/// still go in, in order: the batch's earlier transactions count as filling the gap.
#[test]
fn a_transaction_the_mempool_would_refuse_for_its_nonce_costs_no_signature_check() {
    use node::mempool::NONCE_GAP_MAX;
    let roomy = node(100);
    let far = forged_propose(&roomy, NONCE_GAP_MAX + 1, 1);
    let results = admit_codes(&roomy, vec![far]);
    assert_eq!(results, ["nonce_too_far_ahead"]);

    // 11 places, 90% of them (9) for waiting transactions: 9 ready ones fill that share.
    let node = node(11);
    for nonce in 0..9 {
        node.shared
            .admit(node.pemda_propose(nonce, nonce as u8 + 1), false, false)
            .unwrap();
    }
    let batch = vec![
        forged_propose(&node, 10, 20),
        node.pemda_propose(9, 21),
        node.pemda_propose(10, 22),
    ];
    let results = admit_codes(&node, batch);
    assert_eq!(results, ["mempool_full", "new", "new"]);
    assert_eq!(node.shared.mempool().len(), 11);
}

/// What admission hands the relay is the transaction's canonical bytes under its hash: for
/// a client's new transaction, and again when a client submits one already pending (a peer
/// may have missed it); nothing for one refused or from a peer.
#[tokio::test]
async fn admission_hands_the_relay_each_transactions_canonical_bytes() {
    let (queue, mut relayed) = tokio::sync::mpsc::channel(8);
    let here = node_with(100, None, Some(queue));
    let tx = here.pemda_propose(0, 1);
    let expect = |relayed: node::relay::Relayed| {
        assert_eq!(relayed.hash(), &tx.hash());
        assert_eq!(relayed.as_ref(), &tx.to_bytes()[..]);
        assert_eq!(Transaction::from_bytes(relayed.as_ref()).unwrap(), tx);
    };
    here.shared.admit(tx.clone(), false, true).unwrap();
    expect(relayed.try_recv().expect("relayed when new"));
    let (_, again) = here.shared.admit(tx.clone(), false, true).unwrap();
    assert_eq!(again, node::shared::Admitted::AlreadyPending);
    expect(
        relayed
            .try_recv()
            .expect("relayed again when submitted again"),
    );
    // Refused (its signature does not verify): not relayed.
    let mut other = here.pemda_propose(1, 2);
    other.signature = ledger::types::SignatureBytes([0; 64]);
    let refusal = here.shared.admit(other, false, true).unwrap_err();
    assert_eq!(refusal.code, "bad_signature");
    assert!(relayed.try_recv().is_err());
    // From a peer (`relay` false), new or already pending here: not relayed on (two nodes
    // would otherwise pass a transaction back and forth until a block took it).
    let (_, from_peer) = here
        .shared
        .admit(here.pemda_propose(1, 3), false, false)
        .unwrap();
    assert_eq!(from_peer, node::shared::Admitted::New);
    let (_, pending) = here.shared.admit(tx.clone(), false, false).unwrap();
    assert_eq!(pending, node::shared::Admitted::AlreadyPending);
    assert!(relayed.try_recv().is_err());
}

/// The relay sends a peer only what is still pending here when its batch leaves: a
/// transaction that a block took meanwhile (as most are under load, before the relay gets
/// to them) or that the mempool dropped is not sent, and costs the peer nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_sends_only_what_is_still_pending_when_its_batch_leaves() {
    let here = node(100);
    let peer = node_signing_checkpoints(100, Some(validator_due_at_height_1(&here, true, false)));
    let url = peer.serve_on_a_port().await;
    let pending = here.pemda_propose(0, 1);
    let gone = here.pemda_propose(1, 2);
    here.shared.admit(pending.clone(), false, false).unwrap();
    // Both queued before the relay starts: they leave in one batch unless one is held back.
    let (queue, receiver) = tokio::sync::mpsc::channel(8);
    for tx in [&pending, &gone] {
        queue.send(node::relay::Relayed::of(tx)).await.unwrap();
    }
    let clock: Arc<dyn node::clock::Clock> = here.clock.clone();
    let signer = node::relay::RelaySigner::new(&here.net.nodes[0].key, clock).unwrap();
    let relay = tokio::spawn(node::relay::relay_transactions(
        receiver,
        vec![url],
        signer,
        here.shared.clone(),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !peer.shared.mempool().contains(&pending.hash()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the peer never got the pending one"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The peer would have taken the other (the next nonce) had it been sent with it.
    assert!(!peer.shared.mempool().contains(&gone.hash()));
    assert_eq!(peer.shared.mempool().len(), 1);
    relay.abort();
}

/// A validator (its index in the testnet's nodes) that is (`due`) or is not among the
/// proposers the relay sends to while height 1 is decided at round 0, before or after
/// (`proposed`) that round's proposal is here.
fn validator_due_at_height_1(node: &Node, due: bool, proposed: bool) -> usize {
    let index = node
        .net
        .genesis
        .clone()
        .validate()
        .expect("a testnet's genesis");
    let set = proto::certificate::ValidatorSet::from_genesis(&index.validators)
        .expect("a testnet's validator set");
    let targets = node::relay::relay_targets(&set, 1, 0, proposed);
    node.net
        .nodes
        .iter()
        .position(|n| {
            let key = PublicKey(n.key.verifying_key().to_bytes());
            n.role == NodeRole::Validator && targets.contains(&key) == due
        })
        .expect("a testnet of four validators has two due and two not")
}

/// The relay sends a peer only what is relayed while that peer is due to propose one of
/// the next blocks: a validator that proposes none of them would only check and hold what
/// it will see in a block. Which validator a peer is, the relay learns from the peer's
/// `/v1/status` (`node_key`); until it knows, it sends everything, so each transaction
/// here is relayed on its own until a batch has been held back from the idle peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_sends_only_to_the_peers_due_to_propose_next() {
    relay_holds_back_from_the_idle_peer(false).await;
}

/// Once the proposal of the round being decided is here, its proposer takes nothing more
/// at this height, and the relay sends to the proposer of the height after next instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_rounds_proposal_is_here_the_relay_sends_to_the_two_next_proposers() {
    relay_holds_back_from_the_idle_peer(true).await;
}

/// Relays transactions from a node deciding height 1 at round 0, its proposal here or not
/// (`proposed`), to a peer due to propose and an idle one; checks that batches are held
/// back from the idle peer once the relay knows which validator it is.
async fn relay_holds_back_from_the_idle_peer(proposed: bool) {
    let here = node(100);
    {
        let mut view = here.shared.consensus_view();
        (view.height, view.round, view.proposed) = (1, 0, proposed);
    }
    let due = node_signing_checkpoints(100, Some(validator_due_at_height_1(&here, true, proposed)));
    let idle =
        node_signing_checkpoints(100, Some(validator_due_at_height_1(&here, false, proposed)));
    let urls = vec![due.serve_on_a_port().await, idle.serve_on_a_port().await];
    let (queue, receiver) = tokio::sync::mpsc::channel(8);
    let clock: Arc<dyn node::clock::Clock> = here.clock.clone();
    let signer = node::relay::RelaySigner::new(&here.net.nodes[0].key, clock).unwrap();
    let relay = tokio::spawn(node::relay::relay_transactions(
        receiver,
        urls,
        signer,
        here.shared.clone(),
    ));
    let not_due = || here.shared.metrics.relay_not_due.get();
    let mut held_back = 0;
    for nonce in 0..40_u64 {
        let tx = here.pemda_propose(nonce, u8::try_from(nonce).unwrap() + 1);
        here.shared.admit(tx.clone(), false, false).unwrap();
        let skipped_before = not_due();
        queue.send(node::relay::Relayed::of(&tx)).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Each peer's batch of it has left (the due peer holds it) and been either sent
        // to the idle peer or held back from it.
        while !(due.shared.mempool().contains(&tx.hash())
            && (idle.shared.mempool().contains(&tx.hash()) || not_due() > skipped_before))
        {
            assert!(std::time::Instant::now() < deadline, "the relay stalled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if not_due() > skipped_before {
            assert!(!idle.shared.mempool().contains(&tx.hash()));
            held_back += 1;
            if held_back == 3 {
                break;
            }
        } else {
            assert_eq!(held_back, 0, "the idle peer got one after it was known");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(
        held_back, 3,
        "the relay never learned which validator its peer is"
    );
    relay.abort();
}

/// The pattern `/openapi.json` documents for parameter `name` of `GET path`.
fn documented_pattern(doc: &Value, path: &str, name: &str) -> regex::Regex {
    let parameters = doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{path} documents no parameters"));
    let parameter = parameters
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{path} documents no parameter {name}"));
    let pattern = parameter["schema"]["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: parameter {name} documents no pattern"));
    regex::Regex::new(pattern).expect("a documented pattern compiles")
}

/// What `/openapi.json` says a block's parameters may be is what the endpoint takes: a
/// value matching the documented pattern is never refused as bad input (400), and every
/// value outside it is. Tools that test an API from its document (schemathesis) send
/// exactly such values.
#[tokio::test]
async fn a_blocks_documented_parameters_are_what_the_endpoint_takes() {
    let node = node(5);
    node.commit_block();
    let doc = node.get("/openapi.json").await.1;
    let txs = documented_pattern(&doc, "/v1/blocks/{height}", "txs");
    let values = [
        "full",
        "hashes",
        "",
        "some",
        "FULL",
        "hashes%20",
        "full,hashes",
    ];
    let asks = values.map(|v| (v.replace("%20", " "), format!("/v1/blocks/1?txs={v}")));
    refused_exactly_outside(&node, &txs, asks).await;
    let height = documented_pattern(&doc, "/v1/blocks/{height}", "height");
    let values = [
        "latest",
        "0",
        "1",
        "99",
        "01",
        "+1",
        "-1",
        "abc",
        "1e3",
        "99999999999999999999",
    ];
    let asks = values.map(|v| (v.to_owned(), format!("/v1/blocks/{v}?txs=hashes")));
    refused_exactly_outside(&node, &height, asks).await;
}

/// Asks for each `(value, path)` and checks that the node refuses it as bad input (400)
/// exactly when `value` falls outside `pattern`.
async fn refused_exactly_outside<const N: usize>(
    node: &Node,
    pattern: &regex::Regex,
    asks: [(String, String); N],
) {
    for (value, path) in asks {
        let (status, body) = node.get(&path).await;
        assert_eq!(
            status != StatusCode::BAD_REQUEST,
            pattern.is_match(&value),
            "{path}: {status} {body}"
        );
    }
}

/// The binary form of `POST /v1/txs` is documented as bytes, not as the array of numbers
/// a `Vec<u8>` would give: a client generated from the document sends the batch as is.
#[tokio::test]
async fn the_binary_batch_is_documented_as_bytes() {
    let node = node(5);
    let doc = node.get("/openapi.json").await.1;
    let content = &doc["paths"]["/v1/txs"]["post"]["requestBody"]["content"];
    let mut schema = content["application/octet-stream"]["schema"].clone();
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.trim_start_matches("#/components/schemas/");
        schema = doc["components"]["schemas"][name].clone();
    }
    assert_eq!(
        (schema["type"].as_str(), schema["format"].as_str()),
        (Some("string"), Some("binary")),
        "{schema}"
    );
}

/// Every field `/openapi.json` marks required in a signed transaction is one the node
/// cannot do without: a transaction missing it is refused as malformed (400), and changes
/// nothing.
#[tokio::test]
async fn a_transactions_documented_required_fields_are_required() {
    let node = node(5);
    let doc = node.get("/openapi.json").await.1;
    let schemas = &doc["components"]["schemas"];
    let required = |name: &str| -> Vec<String> {
        let fields = schemas[name]["required"].as_array();
        let fields = fields.unwrap_or_else(|| panic!("{name} documents no required fields"));
        fields
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect()
    };
    let action = &schemas["TxBodyJson"]["properties"]["action"]["$ref"];
    let action = action.as_str().expect("the action is a documented schema");
    let action = action.trim_start_matches("#/components/schemas/");
    let tx = serde_json::to_value(node.pemda_propose(0, 1)).unwrap();
    let mut missing = Vec::new();
    for (schema, at) in [
        ("SignedTxJson", ""),
        ("TxBodyJson", "/body"),
        (action, "/body/action"),
    ] {
        for field in required(schema) {
            let mut without = tx.clone();
            let object = without.pointer_mut(at).and_then(Value::as_object_mut);
            object.expect("the transaction has it").remove(&field);
            missing.push((format!("{at}/{field}"), without));
        }
    }
    assert_eq!(missing.len(), 2 + 4 + 1, "fields documented required");
    for (field, without) in missing {
        let (status, body) = node
            .post("/v1/tx", serde_json::to_vec(&without).unwrap())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "without {field}: {body}");
    }
    assert!(node.shared.mempool().is_empty());
    let (status, _) = node.post("/v1/tx", serde_json::to_vec(&tx).unwrap()).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the whole transaction is taken"
    );
}
