//! The pseudonym service (the identity authority's node only): institutions send blinded
//! NIKs and get them evaluated under the service's key (`proto::pseudonym`, RFC 9497 VOPRF).
//! The key never leaves this node, and this node never sees a NIK.
//!
//! - `GET /v1/pseudonym/key`: the key version and public key (public: clients check every
//!   answer against it, and may pin it).
//! - `POST /v1/pseudonym/evaluate`: a blinded batch in, the evaluated batch and its proof
//!   out; institutions only (an RFC 9421 signature by an institution's transaction key in
//!   genesis; not a node key), each caller at most
//!   [`PSEUDONYMS_PER_CALLER_PER_DAY`] a day, so that an insider cannot run the whole NIK
//!   space through the service.
//!
//! A node without the service answers 404 `no_pseudonym_service` to both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger::types::PublicKey;
use proto::api::PseudonymKeyJson;
use proto::pseudonym::{
    PseudonymError, ServiceKey, PSEUDONYM_BODY_TYPE, PSEUDONYM_REQUEST_BYTES_MAX,
};
use tracing::info;

use crate::api::{ApiError, ApiResult};
use crate::consortium::Allowed;
use crate::shared::Shared;
use ledger::Store;

/// The most NIKs one caller (key) may have evaluated per day: a province's intake, far
/// below the tens of millions an enumeration of plausible NIKs would take.
pub const PSEUDONYMS_PER_CALLER_PER_DAY: u64 = 2_000_000;
const DAY_MS: u64 = 24 * 60 * 60 * 1_000;

/// The service on this node: its key and each caller's count today.
pub struct PseudonymService {
    key: Arc<ServiceKey>,
    /// Caller → (day number, evaluations that day).
    counts: Mutex<HashMap<PublicKey, (u64, u64)>>,
}

impl PseudonymService {
    pub fn new(key: Arc<ServiceKey>) -> PseudonymService {
        PseudonymService {
            key,
            counts: Mutex::new(HashMap::new()),
        }
    }

    pub fn key(&self) -> &ServiceKey {
        &self.key
    }

    /// Counts `count` evaluations for `caller`; refuses past the daily allowance.
    fn charge(&self, caller: PublicKey, count: u64, now_ms: u64) -> Result<(), ApiError> {
        let day = now_ms / DAY_MS;
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        // Yesterday's counts are of no use: keep the map to today's callers.
        counts.retain(|_, (d, _)| *d == day);
        let used = counts.entry(caller).or_insert((day, 0));
        if used.1 + count > PSEUDONYMS_PER_CALLER_PER_DAY {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "pseudonym_quota",
                format!(
                    "this key has had {} pseudonyms today; at most {PSEUDONYMS_PER_CALLER_PER_DAY} a day",
                    used.1
                ),
            ));
        }
        used.1 += count;
        Ok(())
    }
}

/// The service's routes (answering 404 on a node without it).
pub fn routes<S: Store + 'static>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/v1/pseudonym/key", get(key::<S>))
        .route(
            "/v1/pseudonym/evaluate",
            post(evaluate::<S>).layer(DefaultBodyLimit::max(PSEUDONYM_REQUEST_BYTES_MAX)),
        )
}

fn service<S: Store>(shared: &Shared<S>) -> Result<&PseudonymService, ApiError> {
    shared.pseudonym_service.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_pseudonym_service",
            "this node does not run the pseudonym service; ask the identity authority's node",
        )
    })
}

#[utoipa::path(get, path = "/v1/pseudonym/key",
    responses((status = 200, body = PseudonymKeyJson), (status = 404, body = proto::api::ErrorBody)))]
async fn key<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> ApiResult<Json<PseudonymKeyJson>> {
    let key = service(&shared)?.key();
    use base64::Engine as _;
    Ok(Json(PseudonymKeyJson {
        key_version: key.version(),
        public_key: base64::engine::general_purpose::STANDARD.encode(key.public_key()),
        suite: "ristretto255-SHA512".into(),
    }))
}

/// Evaluates a blinded batch (`proto::pseudonym` wire format).
#[utoipa::path(post, path = "/v1/pseudonym/evaluate",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = Vec<u8>, content_type = "application/octet-stream"),
              (status = 400, body = proto::api::ErrorBody), (status = 401, body = proto::api::ErrorBody),
              (status = 404, body = proto::api::ErrorBody), (status = 413, body = proto::api::ErrorBody),
              (status = 429, body = proto::api::ErrorBody)))]
async fn evaluate<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    request: Parts,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(ApiError::body)?;
    service(&shared)?;
    let now = shared.clock.unix_ms();
    let caller = shared
        .consortium
        .check(&request, body.clone(), now, Allowed::Institution)
        .await?;
    let shared2 = shared.clone();
    let (answer, count) = tokio::task::spawn_blocking(move || {
        let service = service(&shared2)?;
        // Checked before it is counted: a malformed request costs the caller nothing.
        let count = service.key().check_request(&body).map_err(refusal)?;
        service.charge(caller.key, count as u64, now)?;
        let answer = service
            .key()
            .answer(&mut rand_core::OsRng, &body)
            .map_err(refusal)?;
        Ok::<_, ApiError>((answer, count))
    })
    .await
    .map_err(ApiError::internal)??;
    info!(caller = %caller.key, count, "pseudonyms evaluated");
    Ok((
        [(axum::http::header::CONTENT_TYPE, PSEUDONYM_BODY_TYPE)],
        answer,
    )
        .into_response())
}

fn refusal(error: PseudonymError) -> ApiError {
    let status = match error {
        PseudonymError::TooMany { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, error.code(), error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_a_daily_allowance_that_starts_again_the_next_day() {
        let key = ServiceKey::from_seed(&[3; 32], 1).expect("key");
        let service = PseudonymService::new(Arc::new(key));
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let noon = 10 * DAY_MS + DAY_MS / 2;
        service
            .charge(a, PSEUDONYMS_PER_CALLER_PER_DAY - 5, noon)
            .expect("within the allowance");
        service.charge(a, 5, noon).expect("exactly the allowance");
        let refused = service.charge(a, 1, noon).expect_err("over it");
        assert_eq!(refused.code(), "pseudonym_quota");
        service
            .charge(b, 10, noon)
            .expect("another caller has its own");
        service
            .charge(a, 1, noon + DAY_MS)
            .expect("the next day starts again");
    }
}
