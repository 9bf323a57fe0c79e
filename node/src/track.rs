//! A citizen's own aid, by tracking code (issue: the public explorer): `GET /v1/track/{code}`
//! answers with the timeline of that enrolment, each step with its inclusion proof against
//! the latest signed checkpoint, and `GET /v1/track/{code}/proof/{log_index}` with one
//! step's C2SP tlog-proof file (the transaction in its `extra` line), which
//! `bansos audit check-proof` checks offline with the network's tlog-policy.
//!
//! Only the code's holder can ask: the code carries 100 random bits and the ledger holds
//! only its hash. Lookups are rate-limited per client address, so that guessing is slow
//! here as well as offline. A mistyped code (the check symbol fails) and an unknown one get
//! different, helpful answers; there is no partial matching.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ledger::privacy::{parse_tracking_code, tracking_code_hash, TrackingCodeError};
use ledger::state::{keys, KeyHolder, KeyRecord, TrackingRecord};
use ledger::{Ledger, Store, Transaction};
use proto::api::{time_text, TrackJson, TrackStepJson};

use crate::api::{ApiError, ApiResult};
use crate::log_api::{proof_checkpoint, tlog_proof_file};
use crate::shared::Shared;

/// Lookups one client address may make per second, on average.
pub const TRACK_LOOKUPS_PER_SECOND: f64 = 2.0;
/// Lookups one client may make at once before the rate applies.
pub const TRACK_LOOKUPS_BURST: f64 = 20.0;
/// Client addresses remembered by the limiter; when full, those with a full allowance go.
pub const TRACK_CLIENTS_MAX: usize = 100_000;
/// The most steps one timeline shows.
pub const TRACK_STEPS_MAX: usize = 256;

/// A token bucket per client address.
#[derive(Default)]
pub struct LookupLimiter {
    clients: Mutex<HashMap<IpAddr, (f64, Duration)>>,
}

impl LookupLimiter {
    /// Takes one lookup from `client`'s allowance at `now` (a monotonic reading); false
    /// when it has none left.
    pub fn allow(&self, client: IpAddr, now: Duration) -> bool {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= TRACK_CLIENTS_MAX && !clients.contains_key(&client) {
            clients.retain(|_, (tokens, at)| {
                *tokens + (now.saturating_sub(*at)).as_secs_f64() * TRACK_LOOKUPS_PER_SECOND
                    < TRACK_LOOKUPS_BURST
            });
            if clients.len() >= TRACK_CLIENTS_MAX {
                return false;
            }
        }
        let (tokens, at) = clients.entry(client).or_insert((TRACK_LOOKUPS_BURST, now));
        let refilled = *tokens + now.saturating_sub(*at).as_secs_f64() * TRACK_LOOKUPS_PER_SECOND;
        *tokens = refilled.min(TRACK_LOOKUPS_BURST);
        *at = now;
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

/// The tracking routes.
pub fn routes<S: Store + 'static>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/v1/track/{code}", get(track::<S>))
        .route("/v1/track/{code}/proof/{log_index}", get(step_proof::<S>))
}

/// The client's address (none in in-process tests, which then share one allowance).
pub(crate) fn client(request: &Parts) -> IpAddr {
    request
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip())
}

/// Checks the allowance, the code's form and its enrolment; returns the enrolment.
pub(crate) fn lookup<S: Store>(
    shared: &Shared<S>,
    client: IpAddr,
    code: &str,
) -> ApiResult<TrackingRecord> {
    if !shared.track_limiter.allow(client, shared.clock.monotonic()) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many tracking lookups from this address; wait a little and try again",
        )
        .with_header("retry-after", "1"));
    }
    record_for_code(&shared.ledger(), code)
}

/// The enrolment a tracking code names: a mistyped or malformed code, or one nothing is
/// recorded under, is a clear error. No rate limit here: [`lookup`] applies it.
pub fn record_for_code<S: Store>(ledger: &Ledger<S>, code: &str) -> ApiResult<TrackingRecord> {
    if let Err(error) = parse_tracking_code(code) {
        let code = match error {
            TrackingCodeError::Check => "mistyped_tracking_code",
            _ => "bad_tracking_code",
        };
        return Err(ApiError::new(StatusCode::BAD_REQUEST, code, format!(
            "{error}. A tracking code looks like BNS-7K3-Q9X-WDM-2PA-QR4-THZ-8NC (on the KKS card or in the SMS)."
        )));
    }
    let hash = tracking_code_hash(code)
        .ok_or_else(|| ApiError::internal("a code that parses has a hash"))?;
    ledger
        .state_get::<TrackingRecord>(&keys::tracking(&hash))
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_tracking_code",
                "no aid is recorded under this tracking code; check it against the card or SMS, or ask the village office (kantor desa)",
            )
        })
}

/// Signing keys remembered by [`InstitutionNames`], at most; when full it starts afresh.
pub const INSTITUTION_NAMES_MAX: usize = 65_536;

/// The institution name of each signing key a timeline has shown. A key's holder never
/// changes once registered (a key is registered once; revoking it keeps its holder), so a
/// name, once found, stays true.
#[derive(Default)]
pub struct InstitutionNames {
    names: Mutex<HashMap<ledger::types::PublicKey, String>>,
}

impl InstitutionNames {
    /// The name of the institution holding the key that signed `tx`.
    fn of<S: Store>(&self, ledger: &Ledger<S>, tx: &Transaction) -> String {
        let signer = tx.body.signer;
        let names = || self.names.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(name) = names().get(&signer) {
            return name.clone();
        }
        let Some(name) = institution(ledger, &signer) else {
            return "unknown".into();
        };
        let mut names = names();
        if names.len() >= INSTITUTION_NAMES_MAX {
            names.clear();
        }
        names.insert(signer, name.clone());
        name
    }
}

/// The name of the institution holding `signer`, if the key is registered.
fn institution<S: Store>(ledger: &Ledger<S>, signer: &ledger::types::PublicKey) -> Option<String> {
    let holder = ledger
        .state_get::<KeyRecord>(&keys::signer(signer))
        .ok()
        .flatten()?
        .holder;
    let org = match holder {
        KeyHolder::Organisation { org } | KeyHolder::Agent { org, .. } => org,
        KeyHolder::Beneficiary { .. } => return Some("penerima (beneficiary)".into()),
    };
    // The organisation as the state holds it (genesis's, or one governance added).
    let record = ledger
        .state_get::<ledger::governance::OrgRecord>(&keys::organisation(&org))
        .ok()
        .flatten();
    Some(record.map_or_else(|| org.to_string(), |r| r.organisation.name))
}

/// The steps of an enrolment's timeline with their proofs against the checkpoint of `size`.
fn timeline<S: Store>(
    ledger: &Ledger<S>,
    names: &InstitutionNames,
    record: &TrackingRecord,
    size: Option<u64>,
) -> ApiResult<Vec<TrackStepJson>> {
    let indexes = ledger
        .beneficiary_steps(&record.beneficiary, TRACK_STEPS_MAX)
        .map_err(ApiError::internal)?;
    let mut steps = Vec::new();
    for ledger::BeneficiaryStep {
        log_index,
        height,
        time_ms,
    } in indexes
    {
        let (mut tx, leaf) = leaf_tx(ledger, log_index)?;
        // A step after a re-keying may name the beneficiary by its newer pseudonym.
        if let Some(action) = ledger
            .canonical_action(&tx.body.action)
            .map_err(ApiError::internal)?
        {
            tx.body.action = action;
        }
        let records = Committed(ledger);
        let Some(step) = explorer::describe(&tx, &record.beneficiary, &record.program, &records)
        else {
            continue;
        };
        let path = match size {
            Some(size) if log_index < size => Some(
                ledger
                    .inclusion_proof(log_index, size)
                    .map_err(ApiError::internal)?
                    .iter()
                    .map(|h| BASE64.encode(h.0))
                    .collect(),
            ),
            _ => None,
        };
        steps.push(TrackStepJson {
            log_index,
            height,
            time: time_text(time_ms),
            kind: step.kind.into(),
            program: step.program,
            period: step.period,
            amount: step.amount,
            outcome: step.outcome.map(Into::into),
            institution: names.of(ledger, &tx),
            leaf_hash: BASE64.encode(ledger::merkle::leaf_hash(&leaf)),
            path,
        });
    }
    Ok(steps)
}

/// The ledger's committed records, as the explorer reads them.
pub(crate) struct Committed<'a, S: Store>(pub(crate) &'a Ledger<S>);

impl<S: Store> explorer::Records for Committed<'_, S> {
    fn allocation(
        &self,
        id: &ledger::types::AllocationId,
    ) -> Option<ledger::state::AllocationRecord> {
        self.0.state_get(&keys::allocation(id)).ok().flatten()
    }

    fn objection(&self, id: &ledger::types::ObjectionId) -> Option<ledger::state::ObjectionRecord> {
        self.0.state_get(&keys::objection(id)).ok().flatten()
    }
}

impl<S: Store> explorer::blocks::Regions for Committed<'_, S> {
    fn beneficiary_region(
        &self,
        beneficiary: &ledger::types::Pseudonym,
    ) -> Option<ledger::types::RegionCode> {
        let record = |p: &ledger::types::Pseudonym| {
            self.0
                .state_get::<ledger::state::BeneficiaryRecord>(&keys::beneficiary(p))
                .ok()
                .flatten()
        };
        // A pseudonym linked by a re-keying names the beneficiary the ledger knows.
        let linked = || record(&self.0.beneficiary_pseudonym(beneficiary).ok().flatten()?);
        record(beneficiary).or_else(linked).map(|b| b.region)
    }
}

/// A log leaf and the transaction it is.
fn leaf_tx<S: Store>(ledger: &Ledger<S>, log_index: u64) -> ApiResult<(Transaction, Vec<u8>)> {
    let leaf = ledger
        .log_leaf(log_index)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("log leaf {log_index} is missing")))?;
    let tx = Transaction::from_bytes(&leaf).map_err(ApiError::internal)?;
    Ok((tx, leaf))
}

#[utoipa::path(get, path = "/v1/track/{code}",
    params(("code" = String, Path, description = "A tracking code, as printed (BNS-XXX-…) or typed (case, spaces and hyphens ignored); the last symbol is a check", pattern = "^(BNS-)?[0-9A-HJKMNP-TV-Z]{3}(-[0-9A-HJKMNP-TV-Z]{3}){6}$")),
    responses((status = 200, body = TrackJson),
              (status = 400, body = proto::api::ErrorBody, description = "not a tracking code (`bad_tracking_code`) or mistyped (`mistyped_tracking_code`: the check symbol fails)"),
              (status = 404, body = proto::api::ErrorBody, description = "no aid under this code"),
              (status = 429, body = proto::api::ErrorBody, description = "too many lookups from this address")))]
pub async fn track<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path(code): Path<String>,
    request: Parts,
) -> ApiResult<Json<TrackJson>> {
    let record = lookup(&shared, client(&request), &code)?;
    Ok(Json(track_json(&shared, &record)?))
}

/// The timeline of an enrolment with its proofs against the checkpoint for proofs.
pub(crate) fn track_json<S: Store>(
    shared: &Shared<S>,
    record: &TrackingRecord,
) -> ApiResult<TrackJson> {
    let ledger = shared.ledger();
    let checkpoint = proof_checkpoint(shared, &ledger)?;
    track_for(&ledger, &shared.institutions, record, checkpoint)
}

/// The timeline of an enrolment with its proofs against `checkpoint` (a signed note and
/// its size), as `GET /v1/track/{code}` answers it.
pub fn track_for<S: Store>(
    ledger: &Ledger<S>,
    names: &InstitutionNames,
    record: &TrackingRecord,
    checkpoint: Option<(String, u64)>,
) -> ApiResult<TrackJson> {
    let steps = timeline(ledger, names, record, checkpoint.as_ref().map(|c| c.1))?;
    Ok(TrackJson {
        program: record.program.to_string(),
        steps,
        checkpoint_size: checkpoint.as_ref().map(|c| c.1),
        checkpoint: checkpoint.map(|c| c.0),
    })
}

#[utoipa::path(get, path = "/v1/track/{code}/proof/{log_index}",
    params(("code" = String, Path, description = "The tracking code", pattern = "^(BNS-)?[0-9A-HJKMNP-TV-Z]{3}(-[0-9A-HJKMNP-TV-Z]{3}){6}$"),
           ("log_index" = String, Path, description = "A step's log index, from the timeline", pattern = "^(0|[1-9][0-9]{0,18})$")),
    responses((status = 200, description = "The step's C2SP tlog-proof (the transaction in `extra`)", content_type = "text/plain"),
              (status = 400, body = proto::api::ErrorBody), (status = 404, body = proto::api::ErrorBody, description = "no such step of this code's timeline under the latest checkpoint"),
              (status = 429, body = proto::api::ErrorBody)))]
pub async fn step_proof<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path((code, log_index)): Path<(String, String)>,
    request: Parts,
) -> ApiResult<Response> {
    let record = lookup(&shared, client(&request), &code)?;
    let not_here = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_step",
            "this step is not in this code's timeline under the latest signed checkpoint",
        )
    };
    let log_index = crate::api::decimal(&log_index).ok_or_else(not_here)?;
    let ledger = shared.ledger();
    let (checkpoint, size) = proof_checkpoint(&shared, &ledger)?.ok_or_else(not_here)?;
    // Membership only: the timeline without proofs, then the one proof asked for.
    let steps = timeline(&ledger, &shared.institutions, &record, None)?;
    if log_index >= size || steps.iter().all(|s| s.log_index != log_index) {
        return Err(not_here());
    }
    let proof = tlog_proof_file(&ledger, log_index, checkpoint, size)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"langkah.tlog-proof\"",
            ),
        ],
        proof,
    )
        .into_response())
}
