//! The node's HTTP API (DESIGN §5): status, transaction submission and lookup, blocks with
//! their commit certificates, signer nonces, Prometheus metrics and the OpenAPI document.
//!
//! Every error is `{"error": {"code", "message"}}` with a stable code; request bodies are
//! size-limited before they are read.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger::block::Block;
use ledger::tx::Transaction;
use ledger::types::{Hash32, PublicKey};
use ledger::Store;
use proto::api::{
    time_text, BatchItemJson, BatchJson, BlockJson, CertificateJson, ErrorBody, ErrorDetail,
    HeaderJson, KeyJson, NodeRoleJson, SignedTxJson, StatusJson, SubmitStatus, SubmittedJson,
    TxBatchBytes, TxJson, TxState, TxStatusJson, ValidatorJson, TX_BATCH_REQUEST_BYTES_MAX,
    TX_BATCH_TXS_MAX, TX_REQUEST_BYTES_MAX,
};
use proto::certificate::StoredCertificate;
use serde::Deserialize;
use utoipa::OpenApi;

use crate::consortium::Allowed;
use crate::mempool::PoolStatus;
use crate::server::InFlight;
use crate::shared::{Admitted, BatchFrom, Refusal, RefusalKind, Shared};

/// An API error: an HTTP status, a stable code and a sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
    /// A header the answer carries besides the JSON error.
    header: Option<(&'static str, &'static str)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_owned(),
            message: message.into(),
            header: None,
        }
    }

    /// The error's code, such as `unknown_tracking_code`.
    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The same error, answered with `name: value` as well.
    pub(crate) fn with_header(mut self, name: &'static str, value: &'static str) -> ApiError {
        self.header = Some((name, value));
        self
    }

    pub(crate) fn internal(error: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
    }

    pub(crate) fn body(body: BytesRejection) -> ApiError {
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
            header: None,
        }
    }
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
        if let Some((name, value)) = self.header {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A query string, or the JSON error for one that does not parse (a repeated or
/// malformed parameter), instead of axum's plain-text rejection.
pub(crate) fn query<T>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<T> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))
}

/// Requests one node handles at once; beyond it, 503 with `Retry-After`.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 256;
/// Requests one client (IP address) may have in flight at once, so that one caller cannot
/// take every slot.
pub const REQUESTS_PER_CLIENT_MAX: usize = 32;
/// How long a request may take before the node gives up on it.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

const _: () = assert!(REQUESTS_PER_CLIENT_MAX <= REQUESTS_IN_FLIGHT_MAX);

/// Admits a request if there is room (in total and for its client) and bounds its time.
async fn limit_requests(
    State(limits): State<Arc<InFlight>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let Some(_slot) = limits.enter(client) else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many requests in flight (from this client or in total); retry shortly",
        )
        .into_response();
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the request took longer than {REQUEST_TIMEOUT:?}"),
        )
        .into_response(),
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bansos Ledger node API",
        description = "Submit signed aid-lifecycle transactions and read committed blocks with their commit certificates."
    ),
    paths(
        status,
        submit_tx,
        submit_txs,
        tx_status,
        block,
        key,
        metrics,
        crate::log_api::inclusion_proof,
        crate::log_api::consistency_proof,
        crate::log_api::tile,
        crate::log_api::leaf,
        crate::log_api::tlog_proof,
        crate::track::track,
        crate::track::step_proof,
        crate::log_api::add_checkpoint,
        crate::web::programs,
        crate::web::period_totals,
        crate::web::region_totals,
        crate::web::lookup_page,
        crate::web::region_page,
        crate::web::verify_js,
        crate::open_data::totals_csv_handler,
        crate::open_data::totals_parquet_handler,
        crate::web::live_js,
        crate::chain_web::summaries,
        crate::chain_web::events,
        crate::chain_web::block_page,
        crate::pseudonym_api::key,
        crate::pseudonym_api::evaluate,
        crate::pseudonym_api::keys,
        crate::pseudonym_api::lookup,
        crate::pseudonym_api::unlinked,
        crate::governance_api::change,
        crate::governance_api::validator_sets
    ),
    components(schemas(
        proto::api::ChangeJson,
        proto::api::ValidatorSetsJson,
        proto::api::ValidatorSetJson,
        proto::api::SetMemberJson,
        proto::api::PseudonymKeyJson,
        proto::api::PseudonymKeysJson,
        proto::api::PseudonymKeyRecordJson,
        proto::api::LookupRequestJson,
        proto::api::LookupJson,
        proto::api::LookupEntryJson,
        proto::api::UnlinkedRequestJson,
        proto::api::UnlinkedJson,
        proto::api::InclusionProofJson,
        proto::api::ConsistencyProofJson,
        proto::api::CheckpointReceivedJson,
        proto::api::LeafJson,
        proto::api::TrackJson,
        proto::api::TrackStepJson,
        proto::api::TotalsJson,
        proto::api::TotalsValueJson,
        proto::api::TotalsNodeJson,
        proto::api::RegionTotalsJson,
        proto::api::ProgramPeriodsJson,
        proto::api::AnomalyCountsJson,
        proto::api::RegionStatsJson,
        proto::api::MonthJson,
        proto::api::BlockSummaryJson,
        StatusJson,
        BlockJson,
        SubmittedJson,
        BatchJson,
        TxStatusJson,
        KeyJson,
        ErrorBody,
        SignedTxJson,
        TxBatchBytes
    ))
)]
struct ApiDoc;

/// The API router over the node's shared state.
pub fn router<S: Store + 'static>(shared: Arc<Shared<S>>) -> Router {
    Router::new()
        .route("/v1/status", get(status::<S>))
        .route(
            "/v1/tx",
            post(submit_tx::<S>).layer(DefaultBodyLimit::max(TX_REQUEST_BYTES_MAX)),
        )
        .route(
            "/v1/txs",
            post(submit_txs::<S>).layer(DefaultBodyLimit::max(TX_BATCH_REQUEST_BYTES_MAX)),
        )
        .route("/v1/tx/{hash}", get(tx_status::<S>))
        .route("/v1/blocks/{height}", get(block::<S>))
        .route("/v1/keys/{public_key}", get(key::<S>))
        .route("/metrics", get(metrics::<S>))
        .route("/openapi.json", get(openapi))
        .merge(crate::log_api::routes::<S>())
        .merge(crate::track::routes::<S>())
        .merge(crate::web::routes::<S>())
        .merge(crate::chain_web::routes::<S>())
        .merge(crate::pseudonym_api::routes::<S>())
        .merge(crate::governance_api::routes::<S>())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            InFlight::new(REQUESTS_IN_FLIGHT_MAX, REQUESTS_PER_CLIENT_MAX),
            limit_requests,
        ))
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

#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = StatusJson)))]
async fn status<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> ApiResult<Json<StatusJson>> {
    let (chain_id, genesis_hash, tip, set, checkpoint_size) = {
        let ledger = shared.ledger();
        let checkpoint_size = ledger
            .latest_checkpoint_size()
            .map_err(ApiError::internal)?;
        let set = ledger.validator_set().map_err(ApiError::internal)?;
        (
            ledger.chain_id().to_owned(),
            ledger.genesis().hash.to_string(),
            ledger.tip().clone(),
            set,
            checkpoint_size,
        )
    };
    let validators = set
        .validators
        .iter()
        .map(|v| ValidatorJson {
            org: v.org.to_string(),
            public_key: v.key.to_string(),
            power: v.power,
        })
        .collect();
    let (checkpoint_conflicts_seen, checkpoint_conflicts) = shared.checkpoints.conflicts();
    let (mempool_txs, mempool_bytes) = {
        let pool = shared.mempool();
        (pool.len(), pool.bytes())
    };
    let view = shared.consensus_view().clone();
    Ok(Json(StatusJson {
        chain_id,
        genesis_hash,
        node: shared.node_name.clone(),
        node_key: shared.node_key.to_string(),
        role: match shared.role {
            genesis::testnet::NodeRole::Validator => NodeRoleJson::Validator,
            genesis::testnet::NodeRole::Observer => NodeRoleJson::Observer,
        },
        height: tip.height,
        latest_block_hash: tip.block_hash.to_string(),
        latest_block_time: time_text(tip.time_ms),
        round: if view.height == 0 { -1 } else { view.round },
        log_size: tip.log.size(),
        validators,
        validator_set_version: set.version,
        validator_set_from: set.from_height,
        peers: view.peers,
        mempool_txs,
        mempool_bytes,
        log_origin: shared.checkpoints.origin().to_owned(),
        checkpoint_size,
        checkpoint_conflicts_seen,
        checkpoint_conflicts,
    }))
}

fn submit_status(admitted: Admitted) -> SubmitStatus {
    match admitted {
        Admitted::AlreadyCommitted => SubmitStatus::Committed,
        Admitted::New | Admitted::AlreadyPending => SubmitStatus::Pending,
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
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
async fn submit_tx<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
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
                status: submit_status(admitted),
            }),
        )),
        Err(refusal) => {
            shared.remember_refusal(hash, &refusal);
            Err(ApiError::refusal(refusal))
        }
    }
}

/// Whether a request's body is declared binary (`application/octet-stream`).
fn is_binary(request: &Parts) -> bool {
    request
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case(proto::txbatch::TX_BATCH_BINARY_TYPE)
        })
}

/// Whether a request carries a signature (and so must be checked as a consortium request).
fn is_signed(request: &Parts) -> bool {
    request.headers.contains_key("signature-input") || request.headers.contains_key("signature")
}

/// Submits up to 2,000 signed transactions at once (signatures verified as a batch), as a
/// JSON array or, with `Content-Type: application/octet-stream`, in the binary form
/// (`proto::txbatch`: borsh `Vec<Vec<u8>>` of canonical transactions; bulk clients and the
/// relay use it). Nodes use it to relay transactions to each other: a batch signed
/// (RFC 9421) by a node key in genesis counts as relayed and is not relayed again.
/// Unsigned, it is a public submission like `POST /v1/tx` (each transaction
/// authenticates itself).
#[utoipa::path(post, path = "/v1/txs",
    request_body(content((Vec<SignedTxJson> = "application/json"), (TxBatchBytes = "application/octet-stream"))),
    responses((status = 200, body = BatchJson), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "signed, but not validly by a key in genesis"), (status = 413, body = ErrorBody)))]
async fn submit_txs<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    request: Parts,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<BatchJson>> {
    let body = body.map_err(ApiError::body)?;
    let from = if is_signed(&request) {
        let now = shared.clock.unix_ms();
        let signer = shared
            .consortium
            .check(&request, body.clone(), now, Allowed::Member)
            .await?;
        match shared.consortium.is_node(&signer.key) {
            true => BatchFrom::Peer(signer.key),
            false => BatchFrom::Client,
        }
    } else {
        BatchFrom::Client
    };
    let relay = from == BatchFrom::Client;
    let binary = is_binary(&request);
    let shared2 = shared.clone();
    // Parsing up to 8 MiB of JSON and verifying up to 2,000 signatures is CPU work: off the
    // async threads, which also serve consensus-adjacent tasks.
    let results = tokio::task::spawn_blocking(move || {
        let txs: Vec<Transaction> = if binary {
            proto::txbatch::decode_tx_batch(&body).map_err(|e| match e {
                // Refused before anything is decoded, as the JSON form is after.
                proto::txbatch::TxBatchError::TooMany { .. } => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "batch_too_large",
                    format!("{e}"),
                ),
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_batch",
                    format!("the body is not a binary transaction batch: {e}"),
                ),
            })?
        } else {
            parse_json(&body)?
        };
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
        Ok(shared2.admit_batch(txs, from))
    })
    .await
    .map_err(ApiError::internal)??;
    let results = results
        .into_iter()
        .map(|(hash, result)| match result {
            Ok(admitted) => BatchItemJson {
                hash: Some(hash.to_string()),
                status: Some(submit_status(admitted)),
                error: None,
            },
            Err(refusal) => {
                // A relayed transaction refused here may only mean this node is behind
                // (an agent registered in a block it has not applied yet): not remembered,
                // so that status queries do not report a refusal the network did not make.
                if relay {
                    shared.remember_refusal(hash, &refusal);
                }
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

pub(crate) fn parse_hash(text: &str, what: &str) -> ApiResult<Hash32> {
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
#[utoipa::path(get, path = "/v1/tx/{hash}", params(("hash" = String, Path, description = "Transaction hash, hex", pattern = "^[0-9a-fA-F]{64}$")),
    responses((status = 200, body = TxStatusJson), (status = 400, body = ErrorBody)))]
async fn tx_status<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path(hash): Path<String>,
) -> ApiResult<Json<TxStatusJson>> {
    let hash = parse_hash(&hash, "transaction hash")?;
    Ok(Json(tx_status_of(&shared, hash)?))
}

/// Where a transaction stands on this node: committed, pending, refused or unknown.
pub(crate) fn tx_status_of<S: Store>(
    shared: &Shared<S>,
    hash: ledger::types::TxHash,
) -> ApiResult<TxStatusJson> {
    let location = shared
        .ledger()
        .tx_location(&hash)
        .map_err(ApiError::internal)?;
    let mut out = TxStatusJson {
        hash: hash.to_string(),
        status: TxState::Unknown,
        height: None,
        index: None,
        log_index: None,
        error: None,
    };
    if let Some(location) = location {
        out.status = TxState::Committed;
        out.height = Some(location.height);
        out.index = Some(location.index);
        out.log_index = Some(location.log_index);
        return Ok(out);
    }
    match shared.mempool().status(&hash) {
        PoolStatus::Pending => out.status = TxState::Pending,
        PoolStatus::Rejected { code, message } => {
            out.status = TxState::Rejected;
            out.error = Some(ErrorDetail { code, message });
        }
        PoolStatus::Unknown => {}
    }
    Ok(out)
}

/// The most digits a number in a path or query may have: 19, so that every number written
/// so fits in a `u64` (whose largest value has 20 digits).
const DECIMAL_DIGITS_MAX: usize = 19;

/// `text` as a number if it is written the way the API documents numbers in paths and
/// queries (`^(0|[1-9][0-9]{0,18})$`): decimal digits only, no sign, no leading zeroes (as
/// C2SP writes sizes and indexes), at most [`DECIMAL_DIGITS_MAX`] of them. `u64::from_str`
/// alone also takes `+1` and `01`, which the document refuses.
pub(crate) fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.len() <= DECIMAL_DIGITS_MAX
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    // At most 19 digits always fit in a u64: the parse cannot fail here.
    text.parse().ok()
}

/// Query of `GET /v1/blocks/{height}`.
#[derive(Deserialize)]
struct BlockQuery {
    /// `full` (default) or `hashes`.
    txs: Option<String>,
}

/// A committed block (`latest` for the tip) with its commit certificate. With its
/// transactions (`txs=full`, the default) it is consortium data: the request must be
/// signed (RFC 9421) by a key in genesis. Header, certificate and transaction hashes
/// (`txs=hashes`) are public.
#[utoipa::path(get, path = "/v1/blocks/{height}", params(("height" = String, Path, description = "A height, or `latest`", pattern = "^(latest|0|[1-9][0-9]{0,18})$"),
    ("txs" = Option<String>, Query, description = "`full` (default; consortium only) or `hashes` (public)", pattern = "^(full|hashes)$")),
    responses((status = 200, body = BlockJson), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "full transactions asked for without a consortium signature"),
              (status = 404, body = ErrorBody)))]
async fn block<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path(height): Path<String>,
    block_query: Result<Query<BlockQuery>, axum::extract::rejection::QueryRejection>,
    request: Parts,
) -> ApiResult<Json<BlockJson>> {
    let query = query(block_query)?;
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
    let requested = match height.as_str() {
        "latest" => None,
        text => Some(decimal(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_height",
                format!(
                    "{height:?} is not a height (a number without leading zeroes, or `latest`)"
                ),
            )
        })?),
    };
    if full {
        let now = shared.clock.unix_ms();
        shared
            .consortium
            .check(&request, Bytes::new(), now, Allowed::Member)
            .await?;
    }
    let (block, certificate): (Block, Option<Vec<u8>>) = {
        let ledger = shared.ledger();
        let height = requested.unwrap_or(ledger.tip().height);
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
            Some(CertificateJson::from_stored(&c))
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
        header: HeaderJson::from_header(&block.header),
        txs,
        tx_hashes,
        certificate,
    }))
}

/// A signer's nonces: what to sign next. How many steps a key has signed is agent
/// activity, so it is consortium data: the request must be signed (RFC 9421) by a key in
/// genesis, or by the key asked about (a signer reading its own nonces).
#[utoipa::path(get, path = "/v1/keys/{public_key}", params(("public_key" = String, Path, description = "ed25519 public key, hex", pattern = "^[0-9a-fA-F]{64}$")),
    responses((status = 200, body = KeyJson), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "not signed by a key in genesis or by this key")))]
async fn key<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path(text): Path<String>,
    request: Parts,
) -> ApiResult<Json<KeyJson>> {
    let key = PublicKey::from_hex(&text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_key",
            format!("{text:?} is not a 32-byte hex public key: {e}"),
        )
    })?;
    let now = shared.clock.unix_ms();
    shared
        .consortium
        .check(&request, Bytes::new(), now, Allowed::MemberOrSelf(key))
        .await?;
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
async fn metrics<S: Store + 'static>(State(shared): State<Arc<Shared<S>>>) -> impl IntoResponse {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_cannot_take_every_request_slot() {
        let limits = InFlight::new(REQUESTS_IN_FLIGHT_MAX, REQUESTS_PER_CLIENT_MAX);
        let greedy = Some(std::net::IpAddr::from([10, 0, 0, 1]));
        let slots: Vec<_> = (0..REQUESTS_PER_CLIENT_MAX)
            .map(|_| limits.enter(greedy).expect("room"))
            .collect();
        assert!(limits.enter(greedy).is_none(), "the client is at its cap");
        let polite = Some(std::net::IpAddr::from([10, 0, 0, 2]));
        assert!(
            limits.enter(polite).is_some(),
            "another client still gets in"
        );
        drop(slots);
        assert!(limits.enter(greedy).is_some(), "slots come back on drop");
    }

    #[test]
    fn numbers_are_taken_only_as_the_document_writes_them() {
        for (text, number) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("1234567890", Some(1_234_567_890)),
            ("9999999999999999999", Some(9_999_999_999_999_999_999)),
            ("", None),
            ("00", None),
            ("01", None),
            ("+1", None),
            ("-1", None),
            (" 1", None),
            ("1 ", None),
            ("1e3", None),
            ("0x10", None),
            ("١", None),
            ("10000000000000000000", None),
            ("18446744073709551615", None),
        ] {
            assert_eq!(decimal(text), number, "{text:?}");
        }
    }

    #[test]
    fn the_total_in_flight_is_capped() {
        let limits = InFlight::new(REQUESTS_IN_FLIGHT_MAX, REQUESTS_PER_CLIENT_MAX);
        let slots: Vec<_> = (0..REQUESTS_IN_FLIGHT_MAX)
            .map(|i| {
                let ip = std::net::IpAddr::from([10, 1, (i / 256) as u8, (i % 256) as u8]);
                limits.enter(Some(ip)).expect("room")
            })
            .collect();
        assert!(limits.enter(None).is_none());
        drop(slots);
        assert!(limits.enter(None).is_some());
    }
}
