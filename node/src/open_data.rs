//! Open data (issue: the public explorer): every published table as one CSV file for
//! spreadsheets, `GET /v1/open-data/totals.csv`, and the same rows as Parquet for DuckDB,
//! Spark or pandas, `GET /v1/open-data/totals.parquet`. One row per
//! program period and region (every level, from the program period down to the village),
//! with the same suppression as the dashboards (a suppressed row's figures are empty and
//! `suppressed` is true), the region's anomaly counts, and the checkpoint the figures were
//! computed at (its log size and totals root), so that any row can be checked against the
//! signed tree with `GET /v1/totals/...`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use explorer::stats::publishable;
use explorer::suppress::total_published;
use ledger::totals::{NodePath, Totals};
use ledger::types::{PeriodCode, ProgramCode, RegionCode};
use ledger::{Ledger, Store};

use crate::anomalies::Survey;
use crate::api::{ApiError, ApiResult};
use crate::shared::Shared;
use crate::web::{node_of, rows_of};

/// The CSV header; the columns every row has, in order.
pub const TOTALS_CSV_COLUMNS: [&str; 21] = [
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
    "median_days_to_payment",
    "objections_open",
    "parent",
];

/// The figures of a row: the CSV columns from `beneficiaries` to `objections_open`.
pub const FIGURES: usize = 12;
/// Where the figures start among the columns.
const FIRST_FIGURE: usize = 8;
const FIRST_FIGURE_END: usize = FIRST_FIGURE + FIGURES;
const _: () = assert!(FIRST_FIGURE_END + 1 == TOTALS_CSV_COLUMNS.len());

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
        for (code, _, itself, hide) in rows_of(&node, region.as_ref(), published) {
            if itself {
                continue;
            }
            let code = RegionCode::new(code.as_str()).map_err(ApiError::internal)?;
            let path = NodePath::Region(program.clone(), period.clone(), code.clone());
            let child_node = node_of(ledger, &path)?;
            let child_published = total_published(child_node.sums.beneficiaries, Some(!hide));
            stack.push((Some(code), child_node, child_published));
        }
    }
    Ok(())
}

/// One row of the open data, typed.
pub struct OpenRow {
    pub log_size: u64,
    pub totals_root: String,
    pub program: String,
    pub period: String,
    pub level: &'static str,
    pub region: String,
    pub name: String,
    pub suppressed: bool,
    /// Beneficiaries, allocated, disbursed, confirmed, the six anomaly counts, the median
    /// days to payment and the open objections; all `None` when the row is suppressed, the
    /// median also when fewer than ten were paid.
    pub figures: [Option<u64>; FIGURES],
    pub parent: String,
}

/// Every published table's rows, as the dashboards decide them, at the tip.
pub fn open_rows<S: Store>(ledger: &Ledger<S>, survey: &Survey) -> ApiResult<Vec<OpenRow>> {
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
    Ok(rows
        .into_iter()
        .map(|row| {
            let code = row
                .region
                .as_ref()
                .map_or_else(String::new, |r| r.to_string());
            let mut figures = [None; FIGURES];
            if let Some(t) = row.totals {
                let flags = survey
                    .anomalies
                    .get(&code)
                    .copied()
                    .unwrap_or_default()
                    .named();
                let key = (row.program.clone(), row.period.clone(), code.clone());
                let stats = survey.stats.get(&key).cloned().unwrap_or_default();
                let shown = publishable(&stats, true).expect("published");
                let (median, open) = (shown.median_days_to_payment, shown.objections_open);
                let values = [t.beneficiaries, t.allocated, t.disbursed, t.confirmed]
                    .into_iter()
                    .chain(flags.map(|(_, n)| n))
                    .map(Some)
                    .chain([median.map(u64::from), Some(open)]);
                for (slot, value) in figures.iter_mut().zip(values) {
                    *slot = value;
                }
            }
            OpenRow {
                log_size: size,
                totals_root: root.to_hex(),
                program: row.program,
                period: row.period,
                level: level(row.region.as_ref()),
                name: row
                    .region
                    .as_ref()
                    .and_then(|r| ledger.genesis().regions.get(r).cloned())
                    .unwrap_or_default(),
                parent: row
                    .region
                    .as_ref()
                    .and_then(|r| r.parent())
                    .map_or_else(String::new, |p| p.to_string()),
                region: code,
                suppressed: row.totals.is_none(),
                figures,
            }
        })
        .collect())
}

/// The rows as CSV text.
pub fn totals_csv(rows: &[OpenRow]) -> ApiResult<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| ApiError::internal(format!("writing CSV: {e}"));
    writer.write_record(TOTALS_CSV_COLUMNS).map_err(csv_error)?;
    for row in rows {
        let mut record = vec![
            row.log_size.to_string(),
            row.totals_root.clone(),
            row.program.clone(),
            row.period.clone(),
            row.level.to_owned(),
            row.region.clone(),
            row.name.clone(),
            row.suppressed.to_string(),
        ];
        record.extend(
            row.figures
                .iter()
                .map(|f| f.map_or_else(String::new, |n| n.to_string())),
        );
        record.push(row.parent.clone());
        writer.write_record(&record).map_err(csv_error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::internal(format!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(ApiError::internal)
}

/// The Parquet schema: the CSV's columns, figures as optional 64-bit integers (absent when
/// suppressed), text as UTF-8 strings.
const PARQUET_SCHEMA: &str = "message bansos_totals {
    REQUIRED INT64 log_size;
    REQUIRED BINARY totals_root (STRING);
    REQUIRED BINARY program (STRING);
    REQUIRED BINARY period (STRING);
    REQUIRED BINARY level (STRING);
    REQUIRED BINARY region (STRING);
    REQUIRED BINARY name (STRING);
    REQUIRED BOOLEAN suppressed;
    OPTIONAL INT64 beneficiaries;
    OPTIONAL INT64 allocated;
    OPTIONAL INT64 disbursed;
    OPTIONAL INT64 confirmed;
    OPTIONAL INT64 allocated_not_disbursed;
    OPTIONAL INT64 disbursed_not_confirmed;
    OPTIONAL INT64 reported_not_received;
    OPTIONAL INT64 objections_overdue;
    OPTIONAL INT64 paid_after_death;
    OPTIONAL INT64 shared_account;
    OPTIONAL INT64 median_days_to_payment;
    OPTIONAL INT64 objections_open;
    REQUIRED BINARY parent (STRING);
}";

/// The rows as one Parquet file (one row group, uncompressed), for DuckDB, Spark, pandas.
pub fn totals_parquet(rows: &[OpenRow]) -> ApiResult<Vec<u8>> {
    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let error =
        |e: parquet::errors::ParquetError| ApiError::internal(format!("writing Parquet: {e}"));
    let schema =
        Arc::new(parquet::schema::parser::parse_message_type(PARQUET_SCHEMA).map_err(error)?);
    let properties = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, properties).map_err(error)?;
    let mut group = writer.next_row_group().map_err(error)?;
    let text = |f: &dyn Fn(&OpenRow) -> &str| -> Vec<ByteArray> {
        rows.iter().map(|r| ByteArray::from(f(r))).collect()
    };
    let mut column = 0usize;
    while let Some(mut writer) = group.next_column().map_err(error)? {
        match column {
            0 => {
                let sizes: Vec<i64> = rows.iter().map(|r| r.log_size as i64).collect();
                writer
                    .typed::<Int64Type>()
                    .write_batch(&sizes, None, None)
                    .map_err(error)?;
            }
            1..=6 => {
                let values = match column {
                    1 => text(&|r| &r.totals_root),
                    2 => text(&|r| &r.program),
                    3 => text(&|r| &r.period),
                    4 => text(&|r| r.level),
                    5 => text(&|r| &r.region),
                    _ => text(&|r| &r.name),
                };
                writer
                    .typed::<ByteArrayType>()
                    .write_batch(&values, None, None)
                    .map_err(error)?;
            }
            7 => {
                let suppressed: Vec<bool> = rows.iter().map(|r| r.suppressed).collect();
                writer
                    .typed::<BoolType>()
                    .write_batch(&suppressed, None, None)
                    .map_err(error)?;
            }
            FIRST_FIGURE..FIRST_FIGURE_END => {
                let figure = |r: &OpenRow| r.figures[column - FIRST_FIGURE];
                let values: Vec<i64> = rows
                    .iter()
                    .filter_map(|r| figure(r).map(|n| n as i64))
                    .collect();
                let present: Vec<i16> = rows
                    .iter()
                    .map(|r| i16::from(figure(r).is_some()))
                    .collect();
                writer
                    .typed::<Int64Type>()
                    .write_batch(&values, Some(&present), None)
                    .map_err(error)?;
            }
            _ => {
                let values = text(&|r| &r.parent);
                writer
                    .typed::<ByteArrayType>()
                    .write_batch(&values, None, None)
                    .map_err(error)?;
            }
        }
        writer.close().map_err(error)?;
        column += 1;
    }
    assert_eq!(
        column,
        TOTALS_CSV_COLUMNS.len(),
        "the Parquet schema has the CSV's columns"
    );
    group.close().map_err(error)?;
    writer.into_inner().map_err(error)
}

fn open_data<S: Store + 'static>(shared: &Arc<Shared<S>>) -> ApiResult<Vec<OpenRow>> {
    let survey = crate::web::survey(shared)?;
    let ledger = shared.ledger();
    open_rows(&ledger, &survey)
}

#[utoipa::path(get, path = "/v1/open-data/totals.csv",
    responses((status = 200, description = "Every published table as CSV: one row per program period and region (all levels), suppressed figures empty, anomaly counts, and the checkpoint's log size and totals root", content_type = "text/csv")))]
pub async fn totals_csv_handler<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> ApiResult<Response> {
    let text = totals_csv(&open_data(&shared)?)?;
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

#[utoipa::path(get, path = "/v1/open-data/totals.parquet",
    responses((status = 200, description = "The same rows as totals.csv as one Parquet file: figures as optional INT64 (absent when suppressed), text as UTF-8", content_type = "application/vnd.apache.parquet")))]
pub async fn totals_parquet_handler<S: Store + 'static>(
    State(shared): State<Arc<Shared<S>>>,
) -> ApiResult<Response> {
    let bytes = totals_parquet(&open_data(&shared)?)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apache.parquet"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"bansos-totals.parquet\"",
            ),
            (header::CACHE_CONTROL, "public, max-age=30"),
        ],
        bytes,
    )
        .into_response())
}
