//! The chain browser (issue: the public explorer): per-block summaries
//! (`GET /v1/blocks/summaries`), live as server-sent events (`GET /v1/events`), and the
//! `/blok` page: the latest blocks, a block by height or hash, a transaction's status by
//! hash. Counts and institutions only: no per-person row, no pseudonym.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use explorer::blocks::count;
use explorer::pages::{self, BlockPage, Lang};
use futures::Stream;
use ledger::types::Height;
use ledger::{Ledger, Store};
use proto::api::{time_text, BlockSummaryJson};
use proto::certificate::StoredCertificate;
use serde::Deserialize;

use crate::api::{parse_hash, query, tx_status_of, ApiError, ApiResult};
use crate::shared::Shared;
use crate::track::Committed;

/// The most summaries one request returns (and the page shows).
pub const SUMMARIES_MAX: u64 = 50;
/// Summaries the page shows by default.
const SUMMARIES_SHOWN: u64 = 20;
/// How often an idle event stream sends a comment, so proxies keep it open.
const EVENTS_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The chain browser's routes.
pub fn routes<S: Store + 'static>() -> Router<Arc<Shared<S>>> {
    Router::new()
        .route("/blok", get(block_page::<S>))
        .route("/v1/blocks/summaries", get(summaries::<S>))
        .route("/v1/events", get(events::<S>))
}

fn institution<S: Store>(ledger: &Ledger<S>, key: &ledger::PublicKey) -> String {
    // Any set of the chain's history: a validator that governance added or removed signed
    // the blocks of its heights (a consensus key is never reused).
    let org = ledger.validator_sets().ok().and_then(|sets| {
        sets.iter()
            .find_map(|set| set.member(key).map(|m| m.org.clone()))
    });
    org.and_then(|org| {
        ledger
            .state_get::<ledger::governance::OrgRecord>(&ledger::state::keys::organisation(&org))
            .ok()
            .flatten()
    })
    .map_or_else(|| "unknown".to_owned(), |o| o.organisation.name)
}

/// The summary of the block at `height`, if there is one.
pub fn summary<S: Store>(
    ledger: &Ledger<S>,
    height: Height,
) -> ApiResult<Option<BlockSummaryJson>> {
    let Some(block) = ledger.block(height).map_err(ApiError::internal)? else {
        return Ok(None);
    };
    let signers = match ledger.certificate(height).map_err(ApiError::internal)? {
        Some(bytes) => StoredCertificate::from_bytes(&bytes)
            .map(|c| {
                c.signatures
                    .iter()
                    .map(|(key, _)| institution(ledger, key))
                    .collect()
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let counts = count(&block.txs, &Committed(ledger));
    Ok(Some(BlockSummaryJson {
        height,
        hash: block.hash().to_string(),
        time: time_text(block.header.time_ms),
        proposer: institution(ledger, &block.header.proposer),
        signers,
        tx_count: block.header.tx_count,
        by_type: counts
            .by_type
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        by_regency: counts.by_regency,
        allocated: counts.allocated,
        disbursed: counts.disbursed,
    }))
}

/// Up to `count` summaries, newest first, from `before` (exclusive) down.
fn latest<S: Store>(
    ledger: &Ledger<S>,
    before: Option<u64>,
    count: u64,
) -> ApiResult<Vec<BlockSummaryJson>> {
    let top = before.map_or(ledger.tip().height, |b| {
        b.saturating_sub(1).min(ledger.tip().height)
    });
    let mut out = Vec::new();
    for height in (1..=top).rev().take(count.min(SUMMARIES_MAX) as usize) {
        out.extend(summary(ledger, height)?);
    }
    Ok(out)
}

/// Query of `GET /v1/blocks/summaries`.
#[derive(Deserialize)]
pub struct SummariesQuery {
    before: Option<u64>,
    count: Option<u64>,
}

#[utoipa::path(get, path = "/v1/blocks/summaries",
    params(("before" = Option<u64>, Query, description = "Only blocks below this height", minimum = 1, maximum = 9223372036854775807i64),
           ("count" = Option<u64>, Query, description = "How many (1 to 50; 20 by default)", minimum = 1, maximum = 50)),
    responses((status = 200, body = [BlockSummaryJson], description = "The latest blocks, newest first"),
              (status = 400, body = proto::api::ErrorBody, description = "a malformed query")))]
pub async fn summaries<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    params: Result<Query<SummariesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<BlockSummaryJson>>> {
    let params = query(params)?;
    let count = params.count.unwrap_or(SUMMARIES_SHOWN);
    let before_ok = params.before.is_none_or(|b| b >= 1 && b <= i64::MAX as u64);
    if !(1..=SUMMARIES_MAX).contains(&count) || !before_ok {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "bad_query",
            format!("count must be 1 to {SUMMARIES_MAX}, and before a height from 1"),
        ));
    }
    let ledger = shared.ledger();
    Ok(Json(latest(&ledger, params.before, count)?))
}

#[utoipa::path(get, path = "/v1/events",
    responses((status = 200, content_type = "text/event-stream",
        description = "Server-sent events: `blocks` with a JSON array of the block summaries committed since the last event, newest first")))]
pub async fn events<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watch = shared.committed_height.subscribe();
    let sent = *watch.borrow();
    let stream = futures::stream::unfold(
        (shared, watch, sent),
        |(shared, mut watch, sent)| async move {
            watch.changed().await.ok()?;
            let height = *watch.borrow_and_update();
            let new = height.saturating_sub(sent).min(SUMMARIES_MAX);
            let blocks = latest(&shared.ledger(), Some(height + 1), new).unwrap_or_default();
            let event = Event::default()
                .event("blocks")
                .json_data(&blocks)
                .unwrap_or_else(|_| Event::default().comment("unencodable"));
            Some((Ok(event), (shared, watch, height)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(EVENTS_KEEP_ALIVE))
}

/// Query of `/blok`.
#[derive(Deserialize)]
pub struct BlockPageQuery {
    /// A height or a block hash.
    cari: Option<String>,
    /// A transaction hash.
    tx: Option<String>,
    lang: Option<String>,
}

#[utoipa::path(get, path = "/blok",
    params(("cari" = Option<String>, Query, description = "A height or a block hash to show"),
           ("tx" = Option<String>, Query, description = "A transaction hash whose status to show"),
           ("lang" = Option<String>, Query, description = "`en` for English")),
    responses((status = 200, description = "The chain browser", content_type = "text/html"),
              (status = 400, body = proto::api::ErrorBody, description = "a malformed query string")))]
pub async fn block_page<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
    params: Result<Query<BlockPageQuery>, axum::extract::rejection::QueryRejection>,
    request: Parts,
) -> ApiResult<Response> {
    let params = query(params)?;
    let lang = Lang::from_query(params.lang.as_deref());
    let search = params
        .cari
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let tx = params
        .tx
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let tx_status = match tx {
        Some(text) => Some(
            parse_hash(text, "transaction hash")
                .ok()
                .map(|hash| tx_status_of(&shared, hash))
                .transpose()?,
        ),
        None => None,
    };
    let (found, blocks) = {
        let ledger = shared.ledger();
        let found = match search {
            Some(text) => Some(find_block(&ledger, text)?),
            None => None,
        };
        (found, latest(&ledger, None, SUMMARIES_SHOWN)?)
    };
    let here = request.uri.path_and_query().map_or("/blok", |p| p.as_str());
    let page = BlockPage {
        search: search.unwrap_or(""),
        found: found.as_ref().map(Option::as_ref),
        tx: tx.unwrap_or(""),
        tx_status: tx_status.as_ref().map(Option::as_ref),
        latest: &blocks,
    };
    Ok((
        [(axum::http::header::CACHE_CONTROL, "public, max-age=2")],
        Html(pages::block_page(lang, here, &page).into_string()),
    )
        .into_response())
}

/// The block a search names (a height or a block hash); `None` when there is none.
fn find_block<S: Store>(ledger: &Ledger<S>, text: &str) -> ApiResult<Option<BlockSummaryJson>> {
    if let Ok(height) = text.parse::<u64>() {
        return summary(ledger, height);
    }
    let Ok(hash) = ledger::types::Hash32::from_hex(text) else {
        return Ok(None);
    };
    match ledger.height_of(&hash).map_err(ApiError::internal)? {
        Some(height) => summary(ledger, height),
        None => Ok(None),
    }
}
