//! The node's HTTP API (DESIGN §5): status, transaction submission and lookup, blocks with
//! their commit certificates, signer nonces, Prometheus metrics and the OpenAPI document.
//!
//! Every error is `{"error": {"code", "message"}}` with a stable code; request bodies are
//! size-limited before they are read.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger::block::{Block, BlockHeader};
use ledger::limits::TX_BYTES_MAX;
use ledger::tx::Transaction;
use ledger::types::{Hash32, PublicKey};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::consensus::signing::StoredCertificate;
use crate::mempool::PoolStatus;
use crate::shared::{Admitted, Refusal, RefusalKind, Shared};

/// The largest body `POST /v1/tx` reads: one transaction as JSON (hex doubles the bytes,
/// field names add some).
pub const TX_REQUEST_BYTES_MAX: usize = 4 * TX_BYTES_MAX;
/// The largest body `POST /v1/txs` reads.
pub const TX_BATCH_REQUEST_BYTES_MAX: usize = 8 * 1024 * 1024;
/// The most transactions in one `POST /v1/txs`.
pub const TX_BATCH_TXS_MAX: usize = 2_000;
/// The header a node sets when it relays transactions to a peer, so that the peer does not
/// relay them again.
pub const RELAYED_HEADER: &str = "x-bansos-relayed";

/// An API error: an HTTP status, a stable code and a sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn internal(error: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
    }

    fn body(body: BytesRejection) -> ApiError {
        let status = body.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "body_too_large",
                "the request body is larger than this endpoint accepts",
            )
        } else {
            ApiError::new(status, "bad_body", body.body_text())
        }
    }

    fn refusal(refusal: Refusal) -> ApiError {
        let status = match refusal.kind {
            RefusalKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            RefusalKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
            RefusalKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            code: refusal.code,
            message: refusal.message,
        }
    }
}

/// The error body.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a human-readable message.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: self.message,
                },
            }),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A signed transaction as JSON: what `bansos tx --print` outputs. `body` holds
/// `chain_id`, `signer` (hex), `nonce` and `action` (one lifecycle step, tagged by `type`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SignedTxJson {
    #[schema(value_type = Object)]
    body: (),
    /// ed25519 signature, hex.
    signature: String,
}

/// A validator as listed in `/v1/status`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ValidatorJson {
    pub org: String,
    pub public_key: String,
    pub power: u64,
}

/// `GET /v1/status`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct StatusJson {
    pub chain_id: String,
    pub node: String,
    pub role: String,
    /// Height of the last committed block (0 before the first).
    pub height: u64,
    pub latest_block_hash: String,
    pub latest_block_time: String,
    /// Consensus round at the height being decided (-1 before consensus starts).
    pub round: i64,
    pub log_size: u64,
    pub validators: Vec<ValidatorJson>,
    /// Peer ids of connected peers.
    pub peers: Vec<String>,
    pub mempool_txs: usize,
    pub mempool_bytes: usize,
}

/// A block header with its hash.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct HeaderJson {
    pub chain_id: String,
    pub height: u64,
    pub hash: String,
    pub prev_hash: String,
    pub time: String,
    pub time_ms: u64,
    pub proposer: String,
    pub tx_count: u32,
    pub tx_root: String,
    pub log_size: u64,
    pub log_root: String,
    pub state_root: String,
}

/// A committed transaction with its hash.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TxJson {
    pub hash: String,
    #[schema(value_type = Object)]
    pub tx: Transaction,
}

/// One precommit signature.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CommitSignatureJson {
    pub validator: String,
    pub signature: String,
}

/// A commit certificate.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CertificateJson {
    pub height: u64,
    pub round: u32,
    pub block_hash: String,
    pub signatures: Vec<CommitSignatureJson>,
}

/// `GET /v1/blocks/{height}`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BlockJson {
    pub header: HeaderJson,
    /// Full transactions, or only hashes with `?txs=hashes`.
    pub txs: Vec<TxJson>,
    pub tx_hashes: Vec<String>,
    pub certificate: Option<CertificateJson>,
}

/// `POST /v1/tx` accepted.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SubmittedJson {
    pub hash: String,
    /// `pending` or `committed` (submitted before).
    pub status: String,
}

/// One result of `POST /v1/txs`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchItemJson {
    pub hash: Option<String>,
    pub status: Option<String>,
    pub error: Option<ErrorDetail>,
}

/// `POST /v1/txs`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct BatchJson {
    pub results: Vec<BatchItemJson>,
}

/// `GET /v1/tx/{hash}`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TxStatusJson {
    pub hash: String,
    /// `pending`, `committed`, `rejected` or `unknown`.
    pub status: String,
    pub height: Option<u64>,
    pub index: Option<u32>,
    pub log_index: Option<u64>,
    pub error: Option<ErrorDetail>,
}

/// `GET /v1/keys/{public_key}`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyJson {
    pub public_key: String,
    /// Whether the ledger knows this key (genesis or a registered agent).
    pub known: bool,
    /// The next nonce in committed state.
    pub next_nonce: u64,
    /// The next nonce counting this node's pending transactions: what to sign next.
    pub pending_next_nonce: u64,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bansos Ledger node API",
        description = "Submit signed aid-lifecycle transactions and read committed blocks with their commit certificates."
    ),
    paths(status, submit_tx, submit_txs, tx_status, block, key, metrics),
    components(schemas(
        StatusJson,
        BlockJson,
        SubmittedJson,
        BatchJson,
        TxStatusJson,
        KeyJson,
        ErrorBody,
        SignedTxJson
    ))
)]
struct ApiDoc;

/// The API router over the node's shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route(
            "/v1/tx",
            post(submit_tx).layer(DefaultBodyLimit::max(TX_REQUEST_BYTES_MAX)),
        )
        .route(
            "/v1/txs",
            post(submit_txs).layer(DefaultBodyLimit::max(TX_BATCH_REQUEST_BYTES_MAX)),
        )
        .route("/v1/tx/{hash}", get(tx_status))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/keys/{public_key}", get(key))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::cors::CorsLayer::permissive())
        .with_state(shared)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /openapi.json",
    )
}

fn time_text(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = StatusJson)))]
async fn status(State(shared): State<Arc<Shared>>) -> ApiResult<Json<StatusJson>> {
    let (chain_id, tip, validators) = {
        let ledger = shared.ledger();
        let validators = ledger
            .genesis()
            .validators
            .iter()
            .map(|v| ValidatorJson {
                org: v.org.to_string(),
                public_key: v.key.to_string(),
                power: v.power,
            })
            .collect();
        (
            ledger.chain_id().to_owned(),
            ledger.tip().clone(),
            validators,
        )
    };
    let (mempool_txs, mempool_bytes) = {
        let pool = shared.mempool();
        (pool.len(), pool.bytes())
    };
    let view = shared.consensus_view().clone();
    Ok(Json(StatusJson {
        chain_id,
        node: shared.node_name.clone(),
        role: format!("{:?}", shared.role).to_lowercase(),
        height: tip.height,
        latest_block_hash: tip.block_hash.to_string(),
        latest_block_time: time_text(tip.time_ms),
        round: if view.height == 0 { -1 } else { view.round },
        log_size: tip.log.size(),
        validators,
        peers: view.peers,
        mempool_txs,
        mempool_bytes,
    }))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

/// Submits one signed transaction (the JSON `bansos tx --print` outputs).
#[utoipa::path(post, path = "/v1/tx", request_body = SignedTxJson,
    responses((status = 202, body = SubmittedJson), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody, description = "mempool full; retry")))]
async fn submit_tx(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<SubmittedJson>)> {
    let body = body.map_err(ApiError::body)?;
    let tx: Transaction = parse_json(&body)?;
    let hash = tx.hash();
    let shared2 = shared.clone();
    // Signature verification is CPU work; keep it off the I/O threads.
    let result = tokio::task::spawn_blocking(move || shared2.admit(tx, false, true))
        .await
        .map_err(ApiError::internal)?;
    match result {
        Ok((hash, admitted)) => Ok((
            StatusCode::ACCEPTED,
            Json(SubmittedJson {
                hash: hash.to_string(),
                status: match admitted {
                    Admitted::AlreadyCommitted => "committed",
                    _ => "pending",
                }
                .into(),
            }),
        )),
        Err(refusal) => {
            shared.remember_refusal(hash, &refusal);
            Err(ApiError::refusal(refusal))
        }
    }
}

/// Submits up to 2,000 signed transactions at once (signatures verified as a batch).
/// Nodes use it to relay transactions to each other.
#[utoipa::path(post, path = "/v1/txs", request_body = Vec<SignedTxJson>,
    responses((status = 200, body = BatchJson), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn submit_txs(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<BatchJson>> {
    let body = body.map_err(ApiError::body)?;
    let txs: Vec<Transaction> = parse_json(&body)?;
    if txs.len() > TX_BATCH_TXS_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} transactions in one batch; at most {TX_BATCH_TXS_MAX}",
                txs.len()
            ),
        ));
    }
    let relay = !headers.contains_key(RELAYED_HEADER);
    let hashes: Vec<Hash32> = txs.iter().map(|t| t.hash()).collect();
    let shared2 = shared.clone();
    let results = tokio::task::spawn_blocking(move || shared2.admit_batch(txs, relay))
        .await
        .map_err(ApiError::internal)?;
    let results = results
        .into_iter()
        .zip(hashes)
        .map(|(result, hash)| match result {
            Ok((hash, admitted)) => BatchItemJson {
                hash: Some(hash.to_string()),
                status: Some(
                    if admitted == Admitted::AlreadyCommitted {
                        "committed"
                    } else {
                        "pending"
                    }
                    .into(),
                ),
                error: None,
            },
            Err(refusal) => {
                shared.remember_refusal(hash, &refusal);
                BatchItemJson {
                    hash: Some(hash.to_string()),
                    status: None,
                    error: Some(ErrorDetail {
                        code: refusal.code,
                        message: refusal.message,
                    }),
                }
            }
        })
        .collect();
    Ok(Json(BatchJson { results }))
}

fn parse_hash(text: &str, what: &str) -> ApiResult<Hash32> {
    Hash32::from_hex(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_hash",
            format!("{what} {text:?} is not 64 hex digits: {e}"),
        )
    })
}

/// Where a transaction stands: pending here, committed (height, index, log index), refused
/// (with the reason), or unknown.
#[utoipa::path(get, path = "/v1/tx/{hash}", params(("hash" = String, Path, description = "Transaction hash, hex")),
    responses((status = 200, body = TxStatusJson), (status = 400, body = ErrorBody)))]
async fn tx_status(
    State(shared): State<Arc<Shared>>,
    Path(hash): Path<String>,
) -> ApiResult<Json<TxStatusJson>> {
    let hash = parse_hash(&hash, "transaction hash")?;
    let location = shared
        .ledger()
        .tx_location(&hash)
        .map_err(ApiError::internal)?;
    let mut out = TxStatusJson {
        hash: hash.to_string(),
        status: "unknown".into(),
        height: None,
        index: None,
        log_index: None,
        error: None,
    };
    if let Some(location) = location {
        out.status = "committed".into();
        out.height = Some(location.height);
        out.index = Some(location.index);
        out.log_index = Some(location.log_index);
        return Ok(Json(out));
    }
    match shared.mempool().status(&hash) {
        PoolStatus::Pending => out.status = "pending".into(),
        PoolStatus::Rejected { code, message } => {
            out.status = "rejected".into();
            out.error = Some(ErrorDetail { code, message });
        }
        PoolStatus::Unknown => {}
    }
    Ok(Json(out))
}

/// Query of `GET /v1/blocks/{height}`.
#[derive(Deserialize)]
struct BlockQuery {
    /// `full` (default) or `hashes`.
    txs: Option<String>,
}

fn header_json(header: &BlockHeader) -> HeaderJson {
    HeaderJson {
        chain_id: header.chain_id.clone(),
        height: header.height,
        hash: header.hash().to_string(),
        prev_hash: header.prev_hash.to_string(),
        time: time_text(header.time_ms),
        time_ms: header.time_ms,
        proposer: header.proposer.to_string(),
        tx_count: header.tx_count,
        tx_root: header.tx_root.to_string(),
        log_size: header.log_size,
        log_root: header.log_root.to_string(),
        state_root: header.state_root.to_string(),
    }
}

/// A committed block (`latest` for the tip) with its commit certificate.
#[utoipa::path(get, path = "/v1/blocks/{height}", params(("height" = String, Path, description = "A height, or `latest`"),
    ("txs" = Option<String>, Query, description = "`full` (default) or `hashes`")),
    responses((status = 200, body = BlockJson), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn block(
    State(shared): State<Arc<Shared>>,
    Path(height): Path<String>,
    Query(query): Query<BlockQuery>,
) -> ApiResult<Json<BlockJson>> {
    let full = match query.txs.as_deref() {
        None | Some("full") => true,
        Some("hashes") => false,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("txs={other:?}: expected full or hashes"),
            ))
        }
    };
    let (block, certificate): (Block, Option<Vec<u8>>) = {
        let ledger = shared.ledger();
        let height = if height == "latest" {
            ledger.tip().height
        } else {
            height.parse::<u64>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_height",
                    format!("{height:?} is not a height (a number or `latest`)"),
                )
            })?
        };
        let block = ledger
            .block(height)
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_block",
                    format!(
                        "no block at height {height}; the chain is at {}",
                        ledger.tip().height
                    ),
                )
            })?;
        (
            block,
            ledger.certificate(height).map_err(ApiError::internal)?,
        )
    };
    let certificate = match certificate {
        Some(bytes) => {
            let c = StoredCertificate::from_bytes(&bytes).map_err(ApiError::internal)?;
            Some(CertificateJson {
                height: c.height,
                round: c.round,
                block_hash: c.block_hash.to_string(),
                signatures: c
                    .signatures
                    .iter()
                    .map(|(k, s)| CommitSignatureJson {
                        validator: k.to_string(),
                        signature: s.to_string(),
                    })
                    .collect(),
            })
        }
        None => None,
    };
    let tx_hashes: Vec<String> = block.txs.iter().map(|t| t.hash().to_string()).collect();
    let txs = if full {
        block
            .txs
            .iter()
            .zip(&tx_hashes)
            .map(|(tx, hash)| TxJson {
                hash: hash.clone(),
                tx: tx.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(BlockJson {
        header: header_json(&block.header),
        txs,
        tx_hashes,
        certificate,
    }))
}

/// A signer's nonces: what to sign next.
#[utoipa::path(get, path = "/v1/keys/{public_key}", params(("public_key" = String, Path, description = "ed25519 public key, hex")),
    responses((status = 200, body = KeyJson), (status = 400, body = ErrorBody)))]
async fn key(
    State(shared): State<Arc<Shared>>,
    Path(text): Path<String>,
) -> ApiResult<Json<KeyJson>> {
    let key = PublicKey::from_hex(&text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_key",
            format!("{text:?} is not a 32-byte hex public key: {e}"),
        )
    })?;
    let next = shared
        .ledger()
        .next_nonce(&key)
        .map_err(ApiError::internal)?;
    let pending = shared.mempool().pending_next_nonce(&key, next.unwrap_or(0));
    Ok(Json(KeyJson {
        public_key: key.to_string(),
        known: next.is_some(),
        next_nonce: next.unwrap_or(0),
        pending_next_nonce: pending,
    }))
}

/// Prometheus metrics: height, transactions committed, mempool size, round, peers, block
/// interval.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
