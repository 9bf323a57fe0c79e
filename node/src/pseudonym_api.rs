//! The pseudonym service (the identity authority's node only): institutions send blinded
//! NIKs and get them evaluated under the service's key (`proto::pseudonym`, RFC 9497 VOPRF).
//! The key never leaves this node, and this node never sees a NIK.
//!
//! - `GET /v1/pseudonym/key`: the key version and public key the service answers under:
//!   the one the ledger has current (genesis records the first, a governance change each
//!   next one). Clients check every answer against the ledger's key, not this one's word.
//! - `POST /v1/pseudonym/evaluate`: a blinded batch in, the evaluated batch and its proof
//!   out; institutions only (an RFC 9421 signature by an institution's transaction key in
//!   genesis; not a node key), each caller at most
//!   [`PSEUDONYMS_PER_CALLER_PER_DAY`] a day, so that an insider cannot run the whole NIK
//!   space through the service.
//!
//! A node without the service answers 404 `no_pseudonym_service` to both. Every node
//! answers two more, from the ledger:
//!
//! - `GET /v1/pseudonym/keys`: every pseudonym key the ledger has recorded, with its
//!   re-keying progress (public: keys and counts, never a pseudonym).
//! - `POST /v1/beneficiaries/lookup`: which of up to [`LOOKUP_PSEUDONYMS_MAX`] pseudonyms
//!   name a beneficiary, and the pseudonym the ledger knows each by (consortium only: it
//!   answers about pseudonyms). The identity authority builds its re-keying plan with it.
//! - `POST /v1/pseudonym/unlinked`: during a re-keying, the beneficiaries not yet linked
//!   (consortium only), so the authority can retire those its register cannot account for.

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
use ledger::pseudonyms::PseudonymKeyRecord;
use ledger::types::Pseudonym;
use ledger::types::PublicKey;
use proto::api::{
    LookupEntryJson, LookupJson, LookupRequestJson, PseudonymKeyJson, PseudonymKeyRecordJson,
    PseudonymKeysJson, UnlinkedJson, UnlinkedRequestJson, LOOKUP_PSEUDONYMS_MAX,
    UNLINKED_PSEUDONYMS_MAX,
};
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

/// The service on this node: its keys and each caller's count today.
pub struct PseudonymService {
    /// The current key first, then the next one if the operator configured it.
    keys: Vec<Arc<ServiceKey>>,
    /// Caller → (day number, evaluations that day).
    counts: Mutex<HashMap<PublicKey, (u64, u64)>>,
}

impl PseudonymService {
    pub fn new(keys: Vec<Arc<ServiceKey>>) -> PseudonymService {
        assert!(!keys.is_empty(), "a pseudonym service holds a key");
        PseudonymService {
            keys,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The key to answer under: the ledger's current one (`None` when the chain records
    /// none: the configured key).
    pub fn serving(
        &self,
        current: Option<&PseudonymKeyRecord>,
    ) -> Result<Arc<ServiceKey>, ApiError> {
        let Some(current) = current else {
            return Ok(self.keys[0].clone());
        };
        let version = current.service.key_version;
        let held = self.keys.iter().find(|k| k.version() == version).ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "pseudonym_key_unavailable",
                format!("the ledger's current pseudonym key is version {version}; this service does not hold it"),
            )
        })?;
        if held.public_key() != current.service.public_key.0 {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "pseudonym_key_mismatch",
                format!("this service's key version {version} is not the one the ledger records"),
            ));
        }
        Ok(held.clone())
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

/// The largest lookup body, in bytes (each pseudonym 64 hex digits, quoted, with a comma).
const LOOKUP_REQUEST_BYTES_MAX: usize = 64 + LOOKUP_PSEUDONYMS_MAX * 70;
/// The largest request for unlinked beneficiaries, in bytes.
const UNLINKED_REQUEST_BYTES_MAX: usize = 256;

/// The service's routes (answering 404 on a node without it), and the ledger's pseudonym
/// records (every node).
pub fn routes<S: Store + 'static>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/v1/pseudonym/key", get(key::<S>))
        .route(
            "/v1/pseudonym/evaluate",
            post(evaluate::<S>).layer(DefaultBodyLimit::max(PSEUDONYM_REQUEST_BYTES_MAX)),
        )
        .route("/v1/pseudonym/keys", get(keys::<S>))
        .route(
            "/v1/beneficiaries/lookup",
            post(lookup::<S>).layer(DefaultBodyLimit::max(LOOKUP_REQUEST_BYTES_MAX)),
        )
        .route(
            "/v1/pseudonym/unlinked",
            post(unlinked::<S>).layer(DefaultBodyLimit::max(UNLINKED_REQUEST_BYTES_MAX)),
        )
}

/// Refuses to run the service with a key the ledger records differently: it would hand
/// out pseudonyms every client refuses.
pub fn check_keys_against_ledger<S: Store>(
    keys: &[Arc<ServiceKey>],
    ledger: &ledger::Ledger<S>,
) -> anyhow::Result<()> {
    let recorded = ledger.pseudonym_keys()?;
    for key in keys {
        let same_version = recorded
            .iter()
            .find(|r| r.service.key_version == key.version());
        if let Some(record) = same_version {
            anyhow::ensure!(
                record.service.public_key.0 == key.public_key(),
                "[pseudonym_service]: the key file of version {} does not hold the key the ledger records for that version (public key {}); check the file",
                key.version(),
                record.service.public_key
            );
        }
    }
    Ok(())
}

fn current_key<S: Store>(shared: &Shared<S>) -> ApiResult<Option<PseudonymKeyRecord>> {
    shared.ledger().pseudonym_key().map_err(ApiError::internal)
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
    responses((status = 200, body = PseudonymKeyJson), (status = 404, body = proto::api::ErrorBody),
              (status = 503, body = proto::api::ErrorBody, description = "the service does not hold the key the ledger has current")))]
async fn key<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> ApiResult<Json<PseudonymKeyJson>> {
    let key = service(&shared)?.serving(current_key(&shared)?.as_ref())?;
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
              (status = 429, body = proto::api::ErrorBody),
              (status = 503, body = proto::api::ErrorBody, description = "the service does not hold the key the ledger has current")))]
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
        let key = service.serving(current_key(&shared2)?.as_ref())?;
        // Checked before it is counted: a malformed request costs the caller nothing.
        let count = key.check_request(&body).map_err(refusal)?;
        service.charge(caller.key, count as u64, now)?;
        let answer = key.answer(&mut rand_core::OsRng, &body).map_err(refusal)?;
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

/// The pseudonym keys the ledger records.
#[utoipa::path(get, path = "/v1/pseudonym/keys",
    responses((status = 200, body = PseudonymKeysJson)))]
async fn keys<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> ApiResult<Json<PseudonymKeysJson>> {
    use base64::Engine as _;
    let records = shared
        .ledger()
        .pseudonym_keys()
        .map_err(ApiError::internal)?;
    let keys = records
        .into_iter()
        .map(|r| PseudonymKeyRecordJson {
            key_version: r.service.key_version,
            public_key: base64::engine::general_purpose::STANDARD.encode(r.service.public_key.0),
            organisation: r.service.organisation.to_string(),
            from_height: r.from_height,
            linked: r.linked,
            links: r.links,
            beneficiaries: r.beneficiaries,
        })
        .collect();
    Ok(Json(PseudonymKeysJson { keys }))
}

/// A JSON request body signed by a consortium key (pseudonyms are consortium data).
async fn consortium_json<S: Store + 'static, T: serde::de::DeserializeOwned>(
    shared: &Shared<S>,
    request: &Parts,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<T> {
    let body = body.map_err(ApiError::body)?;
    let now = shared.clock.unix_ms();
    shared
        .consortium
        .check(request, body.clone(), now, Allowed::Member)
        .await?;
    crate::api::parse_json(&body)
}

/// Which pseudonyms name a beneficiary (consortium only).
#[utoipa::path(post, path = "/v1/beneficiaries/lookup", request_body = LookupRequestJson,
    responses((status = 200, body = LookupJson), (status = 400, body = proto::api::ErrorBody),
              (status = 401, body = proto::api::ErrorBody, description = "not signed (RFC 9421) by a key in genesis: pseudonyms are consortium data"),
              (status = 413, body = proto::api::ErrorBody)))]
async fn lookup<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    request: Parts,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<LookupJson>> {
    let asked: LookupRequestJson = consortium_json(&shared, &request, body).await?;
    if asked.pseudonyms.is_empty() || asked.pseudonyms.len() > LOOKUP_PSEUDONYMS_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_lookup",
            format!("ask about 1 to {LOOKUP_PSEUDONYMS_MAX} pseudonyms"),
        ));
    }
    let pseudonyms = asked
        .pseudonyms
        .iter()
        .map(|text| {
            Pseudonym::from_hex(text).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_pseudonym",
                    format!("{text:?} is not a pseudonym (32 bytes, hex): {e}"),
                )
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let ledger = shared.ledger();
    let beneficiaries = pseudonyms
        .iter()
        .map(|p| {
            Ok(LookupEntryJson {
                pseudonym: p.to_hex(),
                known_as: ledger
                    .beneficiary_pseudonym(p)
                    .map_err(ApiError::internal)?
                    .map(|k| k.to_hex()),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(LookupJson { beneficiaries }))
}

/// During a re-keying, the beneficiaries not yet linked under the current key (consortium
/// only): what the identity authority's register could not account for.
#[utoipa::path(post, path = "/v1/pseudonym/unlinked", request_body = UnlinkedRequestJson,
    responses((status = 200, body = UnlinkedJson), (status = 400, body = proto::api::ErrorBody),
              (status = 401, body = proto::api::ErrorBody, description = "not signed (RFC 9421) by a key in genesis: pseudonyms are consortium data"),
              (status = 409, body = proto::api::ErrorBody, description = "no re-keying is open"),
              (status = 413, body = proto::api::ErrorBody)))]
async fn unlinked<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    request: Parts,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<UnlinkedJson>> {
    let asked: UnlinkedRequestJson = consortium_json(&shared, &request, body).await?;
    let limit = asked.limit as usize;
    if limit == 0 || limit > UNLINKED_PSEUDONYMS_MAX {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_limit",
            format!("limit is 1 to {UNLINKED_PSEUDONYMS_MAX}"),
        ));
    }
    let after = asked
        .after
        .as_deref()
        .map(|text| {
            Pseudonym::from_hex(text).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_pseudonym",
                    format!("after {text:?} is not a pseudonym (32 bytes, hex): {e}"),
                )
            })
        })
        .transpose()?;
    let shared2 = shared.clone();
    let found = tokio::task::spawn_blocking(move || {
        shared2
            .ledger()
            .unlinked_beneficiaries(after.as_ref(), limit)
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)??;
    let page = found.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_rekeying_open",
            "every beneficiary is linked under the current pseudonym key",
        )
    })?;
    Ok(Json(UnlinkedJson {
        key_version: page.key_version,
        unlinked: page.unlinked.iter().map(|p| p.to_hex()).collect(),
        next: page.next.map(|p| p.to_hex()),
    }))
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
        let service = PseudonymService::new(vec![Arc::new(key)]);
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

    #[test]
    fn the_service_answers_under_the_ledgers_current_key_only() {
        let v1 = Arc::new(ServiceKey::from_seed(&[1; 32], 1).expect("key"));
        let v2 = Arc::new(ServiceKey::from_seed(&[2; 32], 2).expect("key"));
        let service = PseudonymService::new(vec![v1.clone(), v2.clone()]);
        let record = |key: &ServiceKey, version: u32| PseudonymKeyRecord {
            service: ledger::pseudonyms::PseudonymServiceSpec {
                organisation: ledger::types::OrgId::new("dukcapil").expect("id"),
                key_version: version,
                public_key: ledger::types::Hash32(key.public_key()),
            },
            from_height: 1,
            linked: true,
            links: 0,
            beneficiaries: 0,
        };
        let version = |r: Result<Arc<ServiceKey>, ApiError>| {
            r.map(|k| k.version()).map_err(|e| e.code().to_owned())
        };
        assert_eq!(
            version(service.serving(None)),
            Ok(1),
            "no key on the ledger: the configured one"
        );
        assert_eq!(version(service.serving(Some(&record(&v1, 1)))), Ok(1));
        assert_eq!(version(service.serving(Some(&record(&v2, 2)))), Ok(2));
        let v3 = ServiceKey::from_seed(&[3; 32], 3).expect("key");
        assert_eq!(
            version(service.serving(Some(&record(&v3, 3)))),
            Err("pseudonym_key_unavailable".into())
        );
        assert_eq!(
            version(service.serving(Some(&record(&v3, 2)))),
            Err("pseudonym_key_mismatch".into())
        );
    }
}
