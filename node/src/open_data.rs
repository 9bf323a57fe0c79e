//! Open data (issue: the public explorer): every published table as one CSV file for
//! spreadsheets, pandas, DuckDB or Spark, `GET /v1/open-data/totals.csv`. One row per
//! program period and region (every level, from the program period down to the village),
//! with the same suppression as the dashboards (a suppressed row's figures are empty and
//! `suppressed` is true), the region's anomaly counts, and the checkpoint the figures were
//! computed at (its log size and totals root), so that any row can be checked against the
//! signed tree with `GET /v1/totals/...`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use explorer::suppress::{suppressed_rows, total_published};
use ledger::totals::{NodePath, Totals};
use ledger::types::{PeriodCode, ProgramCode, RegionCode};
use ledger::{Ledger, Store};

use crate::anomalies::AnomalyTable;
use crate::api::{ApiError, ApiResult};
use crate::shared::Shared;
use crate::web::node_of;

/// The CSV header; the columns every row has, in order.
pub const TOTALS_CSV_COLUMNS: [&str; 19] = [
    "log_size",
    "totals_root",
    "program",
    "period",
    "level",
    "region",
    "name",
    "suppressed",
    "beneficiaries",
    "allocated",
    "disbursed",
    "confirmed",
    "allocated_not_disbursed",
    "disbursed_not_confirmed",
    "reported_not_received",
    "objections_overdue",
    "paid_after_death",
    "shared_account",
    "parent",
];

/// One region of one program period, as the walk found it.
struct Row {
    program: String,
    period: String,
    region: Option<RegionCode>,
    totals: Option<Totals>,
}

fn level(region: Option<&RegionCode>) -> &'static str {
    match region.map(|r| r.as_str().matches('.').count()) {
        None => "program_period",
        Some(0) => "province",
        Some(1) => "regency",
        Some(2) => "district",
        _ => "village",
    }
}

/// Walks one program period's tree from the top, deciding publication exactly as the
/// dashboards do (a row is published when its table is and suppression spares it).
fn walk<S: Store>(
    ledger: &Ledger<S>,
    program: &ProgramCode,
    period: &PeriodCode,
    out: &mut Vec<Row>,
) -> ApiResult<()> {
    let top = node_of(ledger, &NodePath::Period(program.clone(), period.clone()))?;
    let published = total_published(top.sums.beneficiaries, None);
    let mut stack = vec![(None::<RegionCode>, top, published)];
    while let Some((region, node, published)) = stack.pop() {
        out.push(Row {
            program: program.to_string(),
            period: period.to_string(),
            region: region.clone(),
            totals: published.then_some(node.sums),
        });
        let counts: Vec<u64> = node
            .children
            .iter()
            .map(|c| c.sums.beneficiaries)
            .chain((node.own.beneficiaries > 0).then_some(node.own.beneficiaries))
            .collect();
        let hidden = suppressed_rows(&counts, published);
        for (child, hide) in node.children.iter().zip(hidden) {
            let code = RegionCode::new(child.segment.as_str()).map_err(ApiError::internal)?;
            let path = NodePath::Region(program.clone(), period.clone(), code.clone());
            let child_node = node_of(ledger, &path)?;
            let child_published = total_published(child_node.sums.beneficiaries, Some(!hide));
            stack.push((Some(code), child_node, child_published));
        }
    }
    Ok(())
}

/// The whole CSV text.
pub fn totals_csv<S: Store>(ledger: &Ledger<S>, anomalies: &AnomalyTable) -> ApiResult<String> {
    let size = ledger.tip().log.size();
    let root = ledger.totals_root_at(size).map_err(ApiError::internal)?;
    let mut rows = Vec::new();
    let top = node_of(ledger, &NodePath::Root)?;
    for program in &top.children {
        let program = ProgramCode::new(program.segment.as_str()).map_err(ApiError::internal)?;
        let periods = node_of(ledger, &NodePath::Program(program.clone()))?;
        for period in &periods.children {
            let period = PeriodCode::new(period.segment.as_str()).map_err(ApiError::internal)?;
            walk(ledger, &program, &period, &mut rows)?;
        }
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| ApiError::internal(format!("writing CSV: {e}"));
    writer.write_record(TOTALS_CSV_COLUMNS).map_err(csv_error)?;
    for row in rows {
        let region = row
            .region
            .as_ref()
            .map_or_else(String::new, |r| r.to_string());
        let name = row
            .region
            .as_ref()
            .and_then(|r| ledger.genesis().regions.get(r).cloned())
            .unwrap_or_default();
        let parent = row
            .region
            .as_ref()
            .and_then(|r| r.parent())
            .map_or_else(String::new, |p| p.to_string());
        let figures: Vec<String> = match row.totals {
            Some(t) => {
                let flags = anomalies.get(&region).copied().unwrap_or_default();
                [t.beneficiaries, t.allocated, t.disbursed, t.confirmed]
                    .into_iter()
                    .chain(flags.named().map(|(_, n)| n))
                    .map(|n| n.to_string())
                    .collect()
            }
            None => vec![String::new(); 10],
        };
        let mut record = vec![
            size.to_string(),
            root.to_hex(),
            row.program,
            row.period,
            level(row.region.as_ref()).to_owned(),
            region,
            name,
            row.totals.is_none().to_string(),
        ];
        record.extend(figures);
        record.push(parent);
        writer.write_record(&record).map_err(csv_error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::internal(format!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(ApiError::internal)
}

#[utoipa::path(get, path = "/v1/open-data/totals.csv",
    responses((status = 200, description = "Every published table as CSV: one row per program period and region (all levels), suppressed figures empty, anomaly counts, and the checkpoint's log size and totals root", content_type = "text/csv")))]
pub async fn totals_csv_handler<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> ApiResult<Response> {
    let text = {
        let ledger = shared.ledger();
        let anomalies = shared
            .anomalies
            .table(&ledger, shared.clock.monotonic())
            .map_err(ApiError::internal)?;
        totals_csv(&ledger, &anomalies)?
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"bansos-totals.csv\"",
            ),
            (header::CACHE_CONTROL, "public, max-age=30"),
        ],
        text,
    )
        .into_response())
}
