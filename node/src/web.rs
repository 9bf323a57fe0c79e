//! The public explorer over HTTP (issue: the public explorer): the HTML pages from the
//! `explorer` crate (`/` a citizen's own aid, `/wilayah` region totals), the script that
//! verifies them in the browser, and the totals API (`/v1/totals...`) with k = 10
//! suppression and Merkle-sum proofs.
//!
//! Every total published here comes with the tree nodes that prove it against the
//! `bansos-totals` line of a checkpoint signed by a quorum of validators.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use explorer::anomalies::AnomalyCounts;
use explorer::pages::{self, Lang, Lookup, RegionPlace, TrustedKeys};
use explorer::stats::publishable;
use explorer::suppress::{suppressed_rows, total_published};
use ledger::note::checkpoint_of;
use ledger::totals::{NodePath, NodeProof, ProofNode, TotalsNode};
use ledger::types::{PeriodCode, ProgramCode, RegionCode};
use ledger::{Ledger, Store};
use proto::api::{
    AnomalyCountsJson, MonthJson, ProgramPeriodsJson, RegionStatsJson, RegionTotalsJson,
    TotalsJson, TotalsNodeJson, TotalsValueJson,
};
use serde::Deserialize;

use crate::anomalies::Survey;
use crate::api::{query, ApiError, ApiResult};
use crate::shared::Shared;
use crate::track::{client, lookup, track_json};

/// The explorer routes.
pub fn routes<S: Store + 'static>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/", get(lookup_page::<S>))
        .route("/wilayah", get(region_page::<S>))
        .route(pages::VERIFY_JS_PATH, get(verify_js))
        .route(pages::LIVE_JS_PATH, get(live_js))
        .route("/v1/totals", get(programs::<S>))
        .route("/v1/totals/{program}/{period}", get(period_totals::<S>))
        .route(
            "/v1/open-data/totals.csv",
            get(crate::open_data::totals_csv_handler::<S>),
        )
        .route(
            "/v1/open-data/totals.parquet",
            get(crate::open_data::totals_parquet_handler::<S>),
        )
        .route(
            "/v1/totals/{program}/{period}/{region}",
            get(region_totals::<S>),
        )
}

/// How long browsers and caches may keep a page that changes with every block.
const PAGE_CACHE: &str = "public, max-age=5";

fn html(markup: pages::Markup) -> Response {
    (
        [(header::CACHE_CONTROL, PAGE_CACHE)],
        Html(markup.into_string()),
    )
        .into_response()
}

#[utoipa::path(get, path = "/static/verify-v1.js",
    responses((status = 200, description = "The script that checks proofs in the browser (WebCrypto); immutable", content_type = "text/javascript")))]
pub async fn verify_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // The path carries the script's version: it never changes under one name.
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        pages::VERIFY_JS,
    )
        .into_response()
}

#[utoipa::path(get, path = "/static/live-v1.js",
    responses((status = 200, description = "The chain browser's live updates (server-sent events); immutable", content_type = "text/javascript")))]
pub async fn live_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        pages::LIVE_JS,
    )
        .into_response()
}

fn trusted_keys<S: Store>(shared: &Shared<S>) -> TrustedKeys {
    TrustedKeys {
        origin: shared.checkpoints.origin().to_owned(),
        validators: shared
            .checkpoints
            .validators(shared.ledger().tip().log.size())
            .iter()
            .map(|(key, power)| (key.vkey(), *power))
            .collect(),
    }
}

#[derive(Deserialize)]
pub struct LookupQuery {
    kode: Option<String>,
    lang: Option<String>,
}

/// `path?query` of the request, for the language switch.
fn here(request: &Parts) -> String {
    request
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
}

#[utoipa::path(get, path = "/",
    params(("kode" = Option<String>, Query, description = "A tracking code to look up"),
           ("lang" = Option<String>, Query, description = "`en` for English; Bahasa Indonesia otherwise")),
    responses((status = 200, description = "The lookup page, with the timeline when a known code was given, or a helpful message", content_type = "text/html"),
              (status = 400, body = proto::api::ErrorBody, description = "a malformed query string"),
              (status = 429, description = "too many lookups from this address", content_type = "text/html")))]
pub async fn lookup_page<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    params: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
    request: Parts,
) -> ApiResult<Response> {
    let params = query(params)?;
    let lang = Lang::from_query(params.lang.as_deref());
    let code = params.kode.unwrap_or_default();
    let code = code.trim();
    let outcome = if code.is_empty() {
        Lookup::Empty
    } else {
        match lookup(&shared, client(&request), code) {
            Ok(record) => Lookup::Found(Box::new(track_json(&shared, &record)?)),
            Err(error) => match error.code() {
                "mistyped_tracking_code" => Lookup::Mistyped,
                "bad_tracking_code" => Lookup::Malformed(error.code().to_owned()),
                "unknown_tracking_code" => Lookup::Unknown,
                "rate_limited" => Lookup::RateLimited,
                _ => return Err(error),
            },
        }
    };
    let status = match outcome {
        Lookup::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    };
    let markup = pages::lookup_page(
        lang,
        &here(&request),
        code,
        &outcome,
        &trusted_keys(&shared),
    );
    Ok((status, html(markup)).into_response())
}

#[derive(Deserialize)]
pub struct RegionQuery {
    program: Option<String>,
    periode: Option<String>,
    kode: Option<String>,
    lang: Option<String>,
}

#[utoipa::path(get, path = "/wilayah",
    params(("program" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{0,32}$"),
           ("periode" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]{0,32}$"),
           ("kode" = Option<String>, Query, description = "A region code; the program period's provinces without one", pattern = "^([0-9]{2}(\\.[0-9]{2,4}){0,3})?$"),
           ("lang" = Option<String>, Query, description = "`en` for English; anything else is Bahasa Indonesia")),
    responses((status = 200, description = "The region dashboard", content_type = "text/html"),
              (status = 400, body = proto::api::ErrorBody, description = "a malformed code"),
              (status = 404, body = proto::api::ErrorBody, description = "no such program or region")))]
pub async fn region_page<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    params: Result<Query<RegionQuery>, axum::extract::rejection::QueryRejection>,
    request: Parts,
) -> ApiResult<Response> {
    let params = query(params)?;
    let lang = Lang::from_query(params.lang.as_deref());
    let survey = survey(&shared)?;
    let ledger = shared.ledger();
    let programs = program_periods(&ledger)?;
    let chosen = |value: Option<String>| value.filter(|v| !v.is_empty());
    let (program, period) = (chosen(params.program), chosen(params.periode));
    // Each code given must be well-formed even when the page has nothing to show for it.
    if let Some(p) = &program {
        ProgramCode::new(p.as_str()).map_err(|e| bad_code("program", e))?;
    }
    if let Some(p) = &period {
        PeriodCode::new(p.as_str()).map_err(|e| bad_code("period", e))?;
    }
    if let Some(k) = params.kode.as_deref().filter(|k| !k.is_empty()) {
        let region = RegionCode::new(k).map_err(|e| bad_code("region", e))?;
        if !ledger.genesis().regions.contains_key(&region) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_region",
                "no such region in genesis",
            ));
        }
    }
    let totals = match (program, period) {
        (Some(program), Some(period)) => Some(totals_json(
            &ledger,
            &survey,
            &program,
            &period,
            params.kode.as_deref().filter(|k| !k.is_empty()),
        )?),
        _ => None,
    };
    let ancestors = totals
        .as_ref()
        .and_then(|t| t.region.as_deref())
        .and_then(|r| RegionCode::new(r).ok())
        .map(|r| ancestors(&ledger, &r))
        .unwrap_or_default();
    drop(ledger);
    let place = RegionPlace {
        programs: &programs,
        ancestors,
    };
    let keys = trusted_keys(&shared);
    Ok(html(pages::region_page(
        lang,
        &here(&request),
        &place,
        totals.as_ref(),
        &keys,
    )))
}

/// The regions above `region`, from the province down, with names.
fn ancestors<S: Store>(ledger: &Ledger<S>, region: &RegionCode) -> Vec<(String, String)> {
    let mut chain = Vec::new();
    let mut next = region.parent();
    while let Some(up) = next {
        chain.push((up.to_string(), region_name(ledger, &up)));
        next = up.parent();
    }
    chain.reverse();
    chain
}

fn region_name<S: Store>(ledger: &Ledger<S>, region: &RegionCode) -> String {
    ledger
        .genesis()
        .regions
        .get(region)
        .cloned()
        .unwrap_or_else(|| region.to_string())
}

/// The programs and the periods the totals tree has.
fn program_periods<S: Store>(ledger: &Ledger<S>) -> ApiResult<Vec<ProgramPeriodsJson>> {
    let root = ledger
        .totals_node(&NodePath::Root)
        .map_err(ApiError::internal)?
        .unwrap_or_default();
    let mut out = Vec::new();
    for entry in &root.children {
        let program = ProgramCode::new(entry.segment.as_str()).map_err(ApiError::internal)?;
        let node = ledger
            .totals_node(&NodePath::Program(program.clone()))
            .map_err(ApiError::internal)?
            .unwrap_or_default();
        let name = ledger
            .genesis()
            .genesis
            .programs
            .iter()
            .find(|p| p.code == program)
            .map_or_else(|| program.to_string(), |p| p.name.clone());
        out.push(ProgramPeriodsJson {
            program: program.to_string(),
            name,
            periods: node.children.iter().map(|c| c.segment.clone()).collect(),
        });
    }
    Ok(out)
}

#[utoipa::path(get, path = "/v1/totals",
    responses((status = 200, body = [ProgramPeriodsJson], description = "The programs and periods with published totals")))]
pub async fn programs<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> ApiResult<Json<Vec<ProgramPeriodsJson>>> {
    Ok(Json(program_periods(&shared.ledger())?))
}

#[utoipa::path(get, path = "/v1/totals/{program}/{period}",
    params(("program" = String, Path, pattern = "^[A-Za-z0-9_-]{1,32}$"),
           ("period" = String, Path, pattern = "^[A-Za-z0-9_-]{1,32}$")),
    responses((status = 200, body = TotalsJson, description = "The program period's totals; the rows are provinces"),
              (status = 400, body = proto::api::ErrorBody), (status = 404, body = proto::api::ErrorBody)))]
pub async fn period_totals<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path((program, period)): Path<(String, String)>,
) -> ApiResult<Json<TotalsJson>> {
    let survey = survey(&shared)?;
    let ledger = shared.ledger();
    Ok(Json(totals_json(
        &ledger, &survey, &program, &period, None,
    )?))
}

#[utoipa::path(get, path = "/v1/totals/{program}/{period}/{region}",
    params(("program" = String, Path, pattern = "^[A-Za-z0-9_-]{1,32}$"),
           ("period" = String, Path, pattern = "^[A-Za-z0-9_-]{1,32}$"),
           ("region" = String, Path, pattern = "^[0-9]{2}(\\.[0-9]{2,4}){0,3}$")),
    responses((status = 200, body = TotalsJson, description = "A region's totals and its sub-regions'"),
              (status = 400, body = proto::api::ErrorBody), (status = 404, body = proto::api::ErrorBody)))]
pub async fn region_totals<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    Path((program, period, region)): Path<(String, String, String)>,
) -> ApiResult<Json<TotalsJson>> {
    let survey = survey(&shared)?;
    let ledger = shared.ledger();
    Ok(Json(totals_json(
        &ledger,
        &survey,
        &program,
        &period,
        Some(&region),
    )?))
}

fn bad_code(what: &str, error: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_code",
        format!("{what}: {error}"),
    )
}

/// A node of the totals tree as committed (an empty one where nothing was allocated).
pub(crate) fn node_of<S: Store>(ledger: &Ledger<S>, path: &NodePath) -> ApiResult<TotalsNode> {
    Ok(ledger
        .totals_node(path)
        .map_err(ApiError::internal)?
        .unwrap_or_default())
}

/// The published rows of `node`'s table: (region code, totals, whether at the region
/// itself), then which of them are suppressed.
pub(crate) fn rows_of(
    node: &TotalsNode,
    region: Option<&RegionCode>,
    published: bool,
) -> Vec<(String, ledger::totals::Totals, bool, bool)> {
    let mut rows: Vec<(String, ledger::totals::Totals, bool)> = node
        .children
        .iter()
        .map(|c| (c.segment.clone(), c.sums, false))
        .collect();
    if node.own.beneficiaries > 0 {
        let code = region.map_or_else(String::new, |r| r.to_string());
        rows.push((code, node.own, true));
    }
    let counts: Vec<u64> = rows.iter().map(|r| r.1.beneficiaries).collect();
    let hidden = suppressed_rows(&counts, published);
    rows.into_iter()
        .zip(hidden)
        .map(|((code, totals, itself), hide)| (code, totals, itself, hide))
        .collect()
}

/// Whether `target`'s total is published: walking down from the program period, each
/// region's row must be published in its parent's table.
fn is_published<S: Store>(
    ledger: &Ledger<S>,
    program: &ProgramCode,
    period: &PeriodCode,
    target: Option<&RegionCode>,
) -> ApiResult<bool> {
    let top = node_of(ledger, &NodePath::Period(program.clone(), period.clone()))?;
    let mut published = total_published(top.sums.beneficiaries, None);
    let Some(target) = target else {
        return Ok(published);
    };
    let mut chain = vec![target.clone()];
    while let Some(up) = chain.last().and_then(|r| r.parent()) {
        chain.push(up);
    }
    chain.reverse();
    let mut parent = top;
    let mut parent_region: Option<RegionCode> = None;
    for region in chain {
        let rows = rows_of(&parent, parent_region.as_ref(), published);
        let row = rows.iter().find(|r| !r.2 && r.0 == region.as_str());
        let node = node_of(
            ledger,
            &NodePath::Region(program.clone(), period.clone(), region.clone()),
        )?;
        published = match row {
            Some(row) => total_published(node.sums.beneficiaries, Some(!row.3)),
            None => false,
        };
        parent = node;
        parent_region = Some(region);
    }
    Ok(published)
}

/// A region's (or a program period's) totals with suppression and proofs, as
/// `GET /v1/totals/{program}/{period}[/{region}]` answers them.
pub fn totals_json<S: Store>(
    ledger: &Ledger<S>,
    survey: &Survey,
    program: &str,
    period: &str,
    region: Option<&str>,
) -> ApiResult<TotalsJson> {
    let program = ProgramCode::new(program).map_err(|e| bad_code("program", e))?;
    let period = PeriodCode::new(period).map_err(|e| bad_code("period", e))?;
    let region = region
        .map(RegionCode::new)
        .transpose()
        .map_err(|e| bad_code("region", e))?;
    if !ledger.genesis().programs.contains(&program) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_program",
            "no such program in genesis",
        ));
    }
    if let Some(region) = &region {
        if !ledger.genesis().regions.contains_key(region) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_region",
                "no such region in genesis",
            ));
        }
    }
    let path = match &region {
        Some(r) => NodePath::Region(program.clone(), period.clone(), r.clone()),
        None => NodePath::Period(program.clone(), period.clone()),
    };
    let node = node_of(ledger, &path)?;
    let published = is_published(ledger, &program, &period, region.as_ref())?;
    let table = rows_of(&node, region.as_ref(), published);
    // The proven node's own totals are opened only when their row is published.
    let own_published = table.iter().any(|(_, _, itself, hide)| *itself && !*hide);
    let (rows, row_nodes) = table_json(ledger, &program, &period, table)?;
    let proof = if published {
        let build = if own_published {
            NodeProof::build_opened
        } else {
            NodeProof::build
        };
        build(ledger.store(), &path)
            .map_err(ApiError::internal)?
            .path
            .iter()
            .map(TotalsNodeJson::from_proof_node)
            .collect()
    } else {
        Vec::new()
    };
    let checkpoint = totals_checkpoint(ledger)?;
    let key = region.as_ref().map_or_else(String::new, |r| r.to_string());
    let region_anomalies =
        published.then(|| anomaly_json(survey.anomalies.get(&key).copied().unwrap_or_default()));
    let stats = stats_json(survey, &program, &period, key, published);
    let name = match &region {
        Some(r) => region_name(ledger, r),
        None => format!("{program} {period}"),
    };
    Ok(TotalsJson {
        program: program.to_string(),
        period: period.to_string(),
        region: region.map(|r| r.to_string()),
        name,
        totals: published.then(|| TotalsValueJson::from(node.sums)),
        anomalies: region_anomalies,
        stats,
        rows,
        threshold: explorer::suppress::K_MIN,
        proof,
        row_nodes,
        checkpoint_size: checkpoint.as_ref().map(|c| c.1),
        checkpoint: checkpoint.map(|c| c.0),
    })
}

/// A table's rows as JSON, with each published sub-region row's node (sealed).
fn table_json<S: Store>(
    ledger: &Ledger<S>,
    program: &ProgramCode,
    period: &PeriodCode,
    table: Vec<(String, ledger::totals::Totals, bool, bool)>,
) -> ApiResult<(Vec<RegionTotalsJson>, Vec<Option<TotalsNodeJson>>)> {
    let mut rows = Vec::new();
    let mut row_nodes = Vec::new();
    for (code, totals, itself, hide) in table {
        let name = RegionCode::new(code.as_str())
            .map(|r| region_name(ledger, &r))
            .unwrap_or_else(|_| code.clone());
        row_nodes.push(if hide || itself {
            None
        } else {
            let child = NodePath::Region(
                program.clone(),
                period.clone(),
                RegionCode::new(code.as_str()).map_err(ApiError::internal)?,
            );
            Some(TotalsNodeJson::from_proof_node(&ProofNode::of(
                &code,
                &node_of(ledger, &child)?,
            )))
        });
        rows.push(RegionTotalsJson {
            region: code,
            name,
            totals: (!hide).then(|| TotalsValueJson::from(totals)),
            at_region_itself: itself,
        });
    }
    Ok((rows, row_nodes))
}

/// A region's statistics under one program period as it may be shown (`None` when its
/// totals are suppressed).
fn stats_json(
    survey: &Survey,
    program: &ProgramCode,
    period: &PeriodCode,
    region: String,
    published: bool,
) -> Option<RegionStatsJson> {
    let key = (program.to_string(), period.to_string(), region);
    let stats = survey.stats.get(&key).cloned().unwrap_or_default();
    publishable(&stats, published).map(|shown| RegionStatsJson {
        computed_at_height: survey.height,
        median_days_to_payment: shown.median_days_to_payment,
        objections_open: shown.objections_open,
        months: shown
            .months
            .into_iter()
            .map(|(month, figures)| MonthJson {
                month,
                payments: figures.map(|f| f.0),
                disbursed: figures.map(|f| f.1),
            })
            .collect(),
    })
}

fn anomaly_json(counts: AnomalyCounts) -> AnomalyCountsJson {
    AnomalyCountsJson {
        allocated_not_disbursed: counts.allocated_not_disbursed,
        disbursed_not_confirmed: counts.disbursed_not_confirmed,
        reported_not_received: counts.reported_not_received,
        objections_overdue: counts.objections_overdue,
        paid_after_death: counts.paid_after_death,
        shared_account: counts.shared_account,
    }
}

/// The anomaly counts and statistics as the chain stands (take it before the ledger's lock).
pub(crate) fn survey<S: Store + 'static>(shared: &Arc<Shared<S>>) -> ApiResult<Arc<Survey>> {
    crate::anomalies::survey(shared).map_err(ApiError::internal)
}

/// The latest quorum-signed checkpoint when its totals line is the tree as it stands now
/// (`None` while the newest totals await their signatures).
fn totals_checkpoint<S: Store>(ledger: &Ledger<S>) -> ApiResult<Option<(String, u64)>> {
    let Some(size) = ledger
        .latest_checkpoint_size()
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let Some(note) = ledger.checkpoint_note(size).map_err(ApiError::internal)? else {
        return Ok(None);
    };
    let signed = checkpoint_of(&note).map_err(ApiError::internal)?;
    let current = ledger
        .totals_root_at(ledger.tip().log.size())
        .map_err(ApiError::internal)?;
    Ok((signed.totals == Some(current.0)).then_some((note, size)))
}
