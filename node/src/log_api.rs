//! The transparency log over HTTP (DESIGN §4, §5). For anyone: inclusion and consistency
//! proofs as JSON, C2SP tlog-tiles hash tiles (which any tlog client turns into the same
//! proofs itself) and signed checkpoints; hashes reveal nothing about the leaves. For the
//! consortium only (signed requests, see `consortium`): the leaves themselves, one at a
//! time (`/v1/log/leaf/{index}`) or as entry bundles (`/tile/entries/...`), and pushes of
//! checkpoint signatures between nodes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ledger::error::LedgerError;
use ledger::merkle::{self, TILE_WIDTH};
use ledger::note::NOTE_BYTES_MAX;
use ledger::types::Hash32;
use ledger::Store;
use proto::api::{
    parse_tile_index_path, CheckpointReceivedJson, ConsistencyProofJson, InclusionProofJson,
    LeafJson,
};
use serde::Deserialize;

use crate::api::{ApiError, ApiResult};
use crate::checkpoints::{CheckpointError, Received};
use crate::consortium::Allowed;
use crate::shared::Shared;
use crate::witness::{WitnessError, ADD_CHECKPOINT_BYTES_MAX};

/// Cache lifetime of a tile: a tile's bytes never change once the log has them.
const TILE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The log's routes.
pub fn routes<S: Store + 'static>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/v1/proof/inclusion", get(inclusion_proof::<S>))
        .route("/v1/proof/consistency", get(consistency_proof::<S>))
        .route("/tile/{level}/{*index}", get(tile::<S>))
        .route("/v1/log/leaf/{index}", get(leaf::<S>))
        .route("/v1/log/proof/{index}", get(tlog_proof::<S>))
        .route("/v1/checkpoint", get(checkpoint::<S>))
        .route(
            "/v1/checkpoint/signatures",
            post(receive_checkpoint::<S>).layer(DefaultBodyLimit::max(NOTE_BYTES_MAX)),
        )
        .route(
            "/witness/add-checkpoint",
            post(add_checkpoint::<S>).layer(DefaultBodyLimit::max(ADD_CHECKPOINT_BYTES_MAX)),
        )
}

fn base64(hash: &Hash32) -> String {
    BASE64.encode(hash.0)
}

/// A required query parameter that must be a non-negative integer.
fn number(name: &str, value: Option<&str>) -> ApiResult<u64> {
    let value = value.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("the query parameter {name} is required"),
        )
    })?;
    crate::api::decimal(value).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("{name}={value:?} is not a non-negative integer (decimal, no leading zeroes)"),
        )
    })
}

/// A proof or tile the log cannot give: beyond its size, or out of range.
fn not_in_log(error: LedgerError) -> ApiError {
    match error {
        LedgerError::NotFound(message) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_in_log", message)
        }
        other => ApiError::internal(other),
    }
}

#[derive(Debug, Deserialize)]
pub struct InclusionQuery {
    index: Option<String>,
    size: Option<String>,
}

#[utoipa::path(get, path = "/v1/proof/inclusion",
    params(("index" = u64, Query, description = "Leaf index (the transaction's log index)"),
           ("size" = u64, Query, description = "Log size the proof is against; at most the current size")),
    responses((status = 200, body = InclusionProofJson), (status = 400, body = proto::api::ErrorBody),
              (status = 404, body = proto::api::ErrorBody, description = "index not below size, or size beyond the log")))]
pub async fn inclusion_proof<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    query: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<InclusionProofJson>> {
    let query = crate::api::query(query)?;
    let index = number("index", query.index.as_deref())?;
    let size = number("size", query.size.as_deref())?;
    let ledger = shared.ledger();
    let path = ledger.inclusion_proof(index, size).map_err(not_in_log)?;
    let leaf = ledger
        .log_leaf(index)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("log leaf {index} is missing")))?;
    let root = ledger.log_root_at(size).map_err(not_in_log)?;
    Ok(Json(InclusionProofJson {
        index,
        size,
        leaf_hash: base64(&Hash32(merkle::leaf_hash(&leaf))),
        path: path.iter().map(base64).collect(),
        root: base64(&root),
    }))
}

#[derive(Debug, Deserialize)]
pub struct ConsistencyQuery {
    first: Option<String>,
    second: Option<String>,
}

#[utoipa::path(get, path = "/v1/proof/consistency",
    params(("first" = u64, Query, description = "The smaller log size, at least 1"),
           ("second" = u64, Query, description = "The larger log size; at most the current size")),
    responses((status = 200, body = ConsistencyProofJson), (status = 400, body = proto::api::ErrorBody),
              (status = 404, body = proto::api::ErrorBody, description = "sizes out of order or beyond the log")))]
pub async fn consistency_proof<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ConsistencyProofJson>> {
    let query = crate::api::query(query)?;
    let first = number("first", query.first.as_deref())?;
    let second = number("second", query.second.as_deref())?;
    let ledger = shared.ledger();
    let path = ledger
        .consistency_proof(first, second)
        .map_err(not_in_log)?;
    Ok(Json(ConsistencyProofJson {
        first,
        second,
        path: path.iter().map(base64).collect(),
        first_root: base64(&ledger.log_root_at(first).map_err(not_in_log)?),
        second_root: base64(&ledger.log_root_at(second).map_err(not_in_log)?),
    }))
}

/// A tile path's level: a decimal from 0 to 63 without leading zeroes (C2SP tlog-tiles).
fn tile_level(text: &str) -> Option<u8> {
    let level: u8 = text.parse().ok()?;
    (level <= 63 && level.to_string() == text).then_some(level)
}

fn unknown_tile(message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_tile", message)
}

#[utoipa::path(get, path = "/tile/{level}/{index}",
    params(("level" = String, Path, description = "Tile level, 0 to 63, or `entries` for an entry bundle (consortium only: a signed request)"),
           ("index" = String, Path, description = "Tile index as C2SP tlog-tiles writes it (`x001/x234/067`), with `.p/<width>` for a partial tile")),
    responses((status = 200, description = "The tile's SHA-256 hashes, concatenated; or the entry bundle (each leaf as a big-endian 16-bit length and its bytes)", content_type = "application/octet-stream"),
              (status = 401, body = proto::api::ErrorBody, description = "an entry bundle asked for without a consortium signature"),
              (status = 404, body = proto::api::ErrorBody)))]
pub async fn tile<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path((level, index)): Path<(String, String)>,
    request: Parts,
) -> ApiResult<Response> {
    let entries = level == "entries";
    if entries {
        let now = shared.clock.unix_ms();
        shared
            .consortium
            .check(&request, Bytes::new(), now, Allowed::Member)
            .await?;
    }
    let (index, width) = parse_tile_index_path(&index)
        .ok_or_else(|| unknown_tile(format!("{index:?} is not a tile index path")))?;
    let width = width.unwrap_or(TILE_WIDTH as u16);
    let bytes = if entries {
        shared.ledger().log_entry_bundle(index, width)
    } else {
        let level = tile_level(&level)
            .ok_or_else(|| unknown_tile(format!("{level:?} is not a tile level (0 to 63)")))?;
        shared.ledger().log_tile(level, index, width)
    };
    let bytes = bytes.map_err(|e| match e {
        LedgerError::NotFound(message) => unknown_tile(message),
        other => ApiError::internal(other),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, TILE_CACHE_CONTROL),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct CheckpointQuery {
    size: Option<String>,
}

#[utoipa::path(get, path = "/v1/checkpoint",
    params(("size" = Option<u64>, Query, description = "A log size with a signed checkpoint; the latest by default")),
    responses((status = 200, description = "The checkpoint as a C2SP signed note, signed by more than two thirds of the validators' voting power", content_type = "text/plain"),
              (status = 400, body = proto::api::ErrorBody), (status = 404, body = proto::api::ErrorBody)))]
pub async fn checkpoint<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    query: Result<Query<CheckpointQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let query = crate::api::query(query)?;
    let size = match query.size.as_deref() {
        None => None,
        Some(text) => Some(number("size", Some(text))?),
    };
    let note = shared
        .checkpoints
        .served(&shared.ledger(), size)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            let what = size.map_or("yet".to_owned(), |s| format!("at log size {s}"));
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_checkpoint",
                format!("no checkpoint signed by a quorum of validators {what}"),
            )
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        note,
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/checkpoint/signatures", request_body(content = String, content_type = "text/plain", description = "A checkpoint as a C2SP signed note, signed by validators' checkpoint keys"),
    responses((status = 202, body = CheckpointReceivedJson), (status = 401, body = proto::api::ErrorBody, description = "not signed (RFC 9421) by a node key in genesis"),
              (status = 413, body = proto::api::ErrorBody), (status = 422, body = proto::api::ErrorBody, description = "not a checkpoint of this log signed by its validators")))]
pub async fn receive_checkpoint<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    request: Parts,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<CheckpointReceivedJson>)> {
    let body = body.map_err(ApiError::body)?;
    let now = shared.clock.unix_ms();
    shared
        .consortium
        .check(&request, body.clone(), now, Allowed::Node)
        .await?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_checkpoint",
            "the body is not UTF-8 text",
        )
    })?;
    // Signatures are checked before the ledger's lock is taken: a commit does not wait on them.
    let checked = shared.checkpoints.check(text).map_err(checkpoint_refusal)?;
    let received = shared
        .checkpoints
        .receive_checked(&mut shared.ledger_mut(), checked)
        .map_err(checkpoint_refusal)?;
    let status = match received {
        Received::Merged => "merged",
        Received::Pending => "pending",
        Received::Conflict => "conflict",
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(CheckpointReceivedJson {
            status: status.into(),
        }),
    ))
}

fn checkpoint_refusal(error: CheckpointError) -> ApiError {
    match error {
        CheckpointError::Ledger(error) => ApiError::internal(error),
        other => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_checkpoint",
            other.to_string(),
        ),
    }
}

#[utoipa::path(get, path = "/v1/log/leaf/{index}",
    params(("index" = String, Path, description = "The leaf's index in the log (a transaction's log index)", pattern = "^(0|[1-9][0-9]{0,18})$")),
    responses((status = 200, body = LeafJson), (status = 400, body = proto::api::ErrorBody),
              (status = 401, body = proto::api::ErrorBody, description = "not signed (RFC 9421) by a key in genesis: leaves are consortium data"),
              (status = 404, body = proto::api::ErrorBody)))]
pub async fn leaf<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path(index): Path<String>,
    request: Parts,
) -> ApiResult<Json<LeafJson>> {
    let now = shared.clock.unix_ms();
    shared
        .consortium
        .check(&request, Bytes::new(), now, Allowed::Member)
        .await?;
    let index = number("index", Some(&index))?;
    let leaf = shared
        .ledger()
        .log_leaf(index)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_in_log",
                format!("no leaf {index}: the log is smaller"),
            )
        })?;
    Ok(Json(LeafJson {
        index,
        leaf: BASE64.encode(&leaf),
        tx_hash: Hash32::digest(&leaf).to_string(),
    }))
}

/// The C2SP tlog-witness answer for a refused checkpoint.
fn witness_refusal(error: WitnessError) -> ApiError {
    let (status, code) = match &error {
        WitnessError::Malformed(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        WitnessError::UnknownLog(_) => (StatusCode::NOT_FOUND, "unknown_log"),
        WitnessError::NotSigned(_) => (StatusCode::FORBIDDEN, "not_signed"),
        WitnessError::OldSize(_) => (StatusCode::CONFLICT, "old_size"),
        WitnessError::Inconsistent(_) => (StatusCode::UNPROCESSABLE_ENTITY, "inconsistent"),
        WitnessError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
        WitnessError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    ApiError::new(status, code, error.to_string())
}

#[utoipa::path(post, path = "/witness/add-checkpoint",
    request_body(content = String, content_type = "text/plain", description = "C2SP tlog-witness: `old <size>`, consistency proof lines (base64), an empty line, the checkpoint note"),
    responses((status = 200, description = "The witness's cosignature line (tlog-cosignature, Ed25519, timestamped)", content_type = "text/plain"),
              (status = 400, body = proto::api::ErrorBody), (status = 403, body = proto::api::ErrorBody, description = "not signed by a quorum of the validators"),
              (status = 404, body = proto::api::ErrorBody, description = "another log, or this node runs no witness"),
              (status = 409, description = "the old size is not the witness's; the body is its size", content_type = "text/x.tlog.size"),
              (status = 413, body = proto::api::ErrorBody), (status = 422, body = proto::api::ErrorBody, description = "the consistency proof does not hold")))]
pub async fn add_checkpoint<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(ApiError::body)?;
    let Some(witness) = &shared.witness else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_a_witness",
            "this node runs no witness",
        ));
    };
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body is not UTF-8 text",
        )
    })?;
    let now_s = shared.clock.unix_ms() / 1_000;
    match witness.add_checkpoint(text, now_s, |size| shared.checkpoints.validators(size)) {
        Ok(cosignature) => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            cosignature,
        )
            .into_response()),
        Err(WitnessError::OldSize(size)) => Ok((
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{size}\n"),
        )
            .into_response()),
        Err(error) => {
            // A quorum-signed checkpoint the witness found inconsistent is evidence if it
            // contradicts this node's log (a bad proof alone is not): the gatherer keeps
            // it as a conflict then.
            if let (WitnessError::Inconsistent(_), Ok(request)) =
                (&error, crate::witness::AddCheckpoint::parse(text))
            {
                let _ = shared
                    .checkpoints
                    .receive(&mut shared.ledger_mut(), &request.note);
            }
            Err(witness_refusal(error))
        }
    }
}

#[utoipa::path(get, path = "/v1/log/proof/{index}",
    params(("index" = String, Path, description = "The leaf's index in the log (a transaction's log index)", pattern = "^(0|[1-9][0-9]{0,18})$")),
    responses((status = 200, description = "A C2SP tlog-proof: the transaction's bytes (extra), the index, the inclusion path and the latest signed checkpoint with its cosignatures; checked offline with `bansos audit check-proof` and the network's tlog-policy", content_type = "text/plain"),
              (status = 400, body = proto::api::ErrorBody),
              (status = 401, body = proto::api::ErrorBody, description = "not signed (RFC 9421) by a key in genesis: the proof carries a transaction"),
              (status = 404, body = proto::api::ErrorBody, description = "no such leaf under the latest signed checkpoint")))]
pub async fn tlog_proof<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path(index): Path<String>,
    request: Parts,
) -> ApiResult<Response> {
    let now = shared.clock.unix_ms();
    shared
        .consortium
        .check(&request, Bytes::new(), now, Allowed::Member)
        .await?;
    let index = number("index", Some(&index))?;
    let ledger = shared.ledger();
    let missing = |why: &str| ApiError::new(StatusCode::NOT_FOUND, "not_in_log", why.to_owned());
    let (checkpoint, size) = proof_checkpoint(&shared, &ledger)?
        .ok_or_else(|| missing("no checkpoint signed by a quorum yet"))?;
    if index >= size {
        return Err(missing(&format!(
            "leaf {index} is not under the latest signed checkpoint (size {size}) yet"
        )));
    }
    let proof = tlog_proof_file(&ledger, index, checkpoint, size)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], proof).into_response())
}

/// The checkpoint proofs name (the latest one a witness cosigned, when the network has
/// witnesses) and its size.
pub(crate) fn proof_checkpoint<S: Store>(
    shared: &Shared<S>,
    ledger: &ledger::Ledger<S>,
) -> ApiResult<Option<(String, u64)>> {
    let Some(note) = shared
        .checkpoints
        .for_proofs(ledger)
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let size = ledger::note::checkpoint_of(&note)
        .map_err(ApiError::internal)?
        .size;
    Ok(Some((note, size)))
}

/// The C2SP tlog-proof of leaf `index` (below `size`) under `checkpoint`, the leaf's bytes
/// in its `extra` line.
pub(crate) fn tlog_proof_file<S: Store>(
    ledger: &ledger::Ledger<S>,
    index: u64,
    checkpoint: String,
    size: u64,
) -> ApiResult<String> {
    let leaf = ledger
        .log_leaf(index)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("log leaf {index} is missing")))?;
    let path = ledger.inclusion_proof(index, size).map_err(not_in_log)?;
    let proof = ledger::policy::TlogProof {
        extra: Some(leaf),
        index,
        path: path.iter().map(|h| h.0).collect(),
        checkpoint,
    };
    Ok(proof.to_text())
}
