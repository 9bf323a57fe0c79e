//! Governance records, public: what the consortium itself is (organisations' changes, the
//! validator sets). Nothing here concerns a citizen.
//!
//! - `GET /v1/governance/changes/{id}`: a proposed change, its approvals and its status.
//! - `GET /v1/validator-sets`: every validator set, with the height it took effect at, so
//!   that certificates and checkpoints of any height can be checked against their set.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use ledger::governance::{ChangeRecord, ChangeStatus, ValidatorSetRecord};
use ledger::types::TxHash;
use ledger::Store;
use proto::api::{ChangeJson, ErrorBody, SetMemberJson, ValidatorSetJson, ValidatorSetsJson};

use crate::api::{ApiError, ApiResult};
use crate::shared::Shared;

pub fn routes<S: Store + 'static>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/v1/governance/changes/{id}", get(change::<S>))
        .route("/v1/validator-sets", get(validator_sets::<S>))
}

#[utoipa::path(get, path = "/v1/governance/changes/{id}",
    params(("id" = String, Path, description = "The hash of the transaction that proposed the change, hex", pattern = "^[0-9a-fA-F]{64}$")),
    responses((status = 200, body = ChangeJson), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "no change was proposed by that transaction")))]
pub async fn change<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path(text): Path<String>,
) -> ApiResult<Json<ChangeJson>> {
    let id = TxHash::from_hex(&text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_hash",
            format!("{text:?} is not a 32-byte hex hash: {e}"),
        )
    })?;
    let record = shared.ledger().change(&id).map_err(ApiError::internal)?;
    let record = record.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_change",
            format!("no change was proposed by transaction {id}"),
        )
    })?;
    change_json(id, record).map(Json)
}

fn change_json(id: TxHash, record: ChangeRecord) -> ApiResult<ChangeJson> {
    let (status, code, message) = match record.status {
        ChangeStatus::Pending => ("pending", None, None),
        ChangeStatus::Activated => ("activated", None, None),
        ChangeStatus::Expired => ("expired", None, None),
        ChangeStatus::Failed { code, message } => ("failed", Some(code), Some(message)),
    };
    Ok(ChangeJson {
        id: id.to_string(),
        change: serde_json::to_value(&record.change).map_err(ApiError::internal)?,
        activation_height: record.activation_height,
        proposed_by: record.proposed_by.to_string(),
        proposed_at: record.proposed_at,
        approvals: record.approvals.iter().map(|o| o.to_string()).collect(),
        status: status.to_owned(),
        code,
        message,
    })
}

#[utoipa::path(get, path = "/v1/validator-sets",
    responses((status = 200, body = ValidatorSetsJson)))]
pub async fn validator_sets<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> ApiResult<Json<ValidatorSetsJson>> {
    let sets = shared
        .ledger()
        .validator_sets()
        .map_err(ApiError::internal)?;
    Ok(Json(ValidatorSetsJson {
        sets: sets.into_iter().map(set_json).collect(),
    }))
}

fn set_json(set: ValidatorSetRecord) -> ValidatorSetJson {
    ValidatorSetJson {
        version: set.version,
        from_height: set.from_height,
        validators: set
            .validators
            .into_iter()
            .map(|m| SetMemberJson {
                org: m.org.to_string(),
                public_key: m.key.to_string(),
                power: m.power,
                checkpoint_key: m.checkpoint_key,
            })
            .collect(),
    }
}
