//! Anomaly counts and statistics per region (issue: the public explorer), from the
//! committed records: one pass over the objections and the allocations, counted per village
//! with `explorer::anomalies` and `explorer::stats` and added up every level to the
//! province and the whole network.
//!
//! The result (a [`Survey`]) is cached and recomputed at most every [`ANOMALY_REFRESH`] when
//! the chain has moved, in a background thread, while readers keep the previous one. The
//! pass takes the ledger's read lock one page of records at a time ([`SCAN_PAGE`]), so a
//! block commit waits at most one page, never the whole pass (seconds at a million
//! beneficiaries). A survey may therefore mix records of a few consecutive heights; it says
//! the height it started at.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use explorer::anomalies::{allocation_flags, objection_overdue, AnomalyCounts};
use explorer::stats::{CellStats, PeriodStats};
use ledger::state::{keys, AllocationRecord, BeneficiaryRecord, LifeStatus, ObjectionRecord};
use ledger::store::Column;
use ledger::tx::{Action, ObjectionSubject, StatusChange};
use ledger::types::{Hash32, PeriodCode, ProgramCode, Pseudonym, RegionCode, TimeMs};
use ledger::{Ledger, LedgerError, Store, Transaction};

use crate::shared::Shared;

/// How stale the survey may grow while blocks keep coming.
pub const ANOMALY_REFRESH: Duration = Duration::from_secs(30);
/// Records read per store scan, and per hold of the ledger's read lock.
pub const SCAN_PAGE: usize = 4_096;
/// The most log entries read to find when a beneficiary's death was recorded.
const DEATH_SEARCH_STEPS_MAX: usize = 256;

/// Counts per region code; the empty code is the whole network.
pub type AnomalyTable = BTreeMap<String, AnomalyCounts>;
/// Statistics per (program, period, region code); the empty code is the program period.
pub type StatsTable = BTreeMap<(String, String, String), PeriodStats>;

/// What one pass over the records found.
#[derive(Debug, Default)]
pub struct Survey {
    /// The height the pass started at.
    pub height: u64,
    pub anomalies: AnomalyTable,
    pub stats: StatsTable,
}

#[derive(Default)]
struct CacheState {
    survey: Option<Arc<Survey>>,
    computed_at: Duration,
    refreshing: bool,
}

/// The latest survey, shared by the dashboard requests.
#[derive(Default)]
pub struct AnomalyCache {
    state: Mutex<CacheState>,
}

/// The survey for the chain as it stands: the cached one while it is fresh (the tip has not
/// moved, or it is younger than [`ANOMALY_REFRESH`]); otherwise the cached one while a
/// background thread computes the next. Only the very first call computes in place. The
/// caller must not hold the ledger's lock (the pass takes it page by page).
pub fn survey<S: Store + Send + Sync + 'static>(
    shared: &Arc<Shared<S>>,
) -> Result<Arc<Survey>, LedgerError> {
    let now = shared.clock.monotonic();
    let tip = shared.ledger().tip().height;
    let mut state = shared
        .anomalies
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(survey) = state.survey.clone() {
        let fresh = now.saturating_sub(state.computed_at) < ANOMALY_REFRESH;
        if !(survey.height == tip || fresh || state.refreshing) {
            state.refreshing = true;
            let shared = shared.clone();
            std::thread::spawn(move || refresh(&shared));
        }
        return Ok(survey);
    }
    let survey = Arc::new(compute(|| shared.ledger())?);
    state.survey = Some(survey.clone());
    state.computed_at = now;
    Ok(survey)
}

/// Computes the next survey and puts it in the cache.
fn refresh<S: Store>(shared: &Shared<S>) {
    let result = compute(|| shared.ledger());
    let mut state = shared
        .anomalies
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    state.refreshing = false;
    match result {
        Ok(survey) => {
            state.survey = Some(Arc::new(survey));
            state.computed_at = shared.clock.monotonic();
        }
        Err(error) => tracing::error!(%error, "recomputing the anomaly counts failed"),
    }
}

/// Scans the records under `prefix` in pages of `page`, taking the ledger from `read` for
/// each page and handing every record, decoded, to `each`.
fn scan<S, L, T>(
    read: &impl Fn() -> L,
    prefix: &[u8],
    page: usize,
    mut each: impl FnMut(&Ledger<S>, T) -> Result<(), LedgerError>,
) -> Result<(), LedgerError>
where
    S: Store,
    L: Deref<Target = Ledger<S>>,
    T: borsh::BorshDeserialize,
{
    let mut start = prefix.to_vec();
    loop {
        let ledger = read();
        let entries = ledger.store().scan(Column::State, prefix, &start, page)?;
        for (_, bytes) in &entries {
            let record = borsh::from_slice(bytes)
                .map_err(|e| LedgerError::Corrupt(format!("a state record: {e}")))?;
            each(&ledger, record)?;
        }
        drop(ledger);
        match entries.last() {
            Some((last, _)) if entries.len() == page => {
                start = last.clone();
                start.push(0);
            }
            _ => return Ok(()),
        }
    }
}

/// Computes the survey at the chain time of the tip `read` first gives.
pub fn compute<S, L>(read: impl Fn() -> L) -> Result<Survey, LedgerError>
where
    S: Store,
    L: Deref<Target = Ledger<S>>,
{
    compute_paged(read, SCAN_PAGE)
}

/// One cell of the statistics: program, period, the beneficiary's region.
type Cell = (ProgramCode, PeriodCode, RegionCode);

/// Open objections, found before the allocations are read.
#[derive(Default)]
struct OpenObjections {
    by_cell: HashMap<Cell, u64>,
    by_beneficiary: HashMap<Pseudonym, u64>,
}

/// [`compute`] with the page size given (tests use small pages).
pub fn compute_paged<S, L>(read: impl Fn() -> L, page: usize) -> Result<Survey, LedgerError>
where
    S: Store,
    L: Deref<Target = Ledger<S>>,
{
    let (now, height) = {
        let ledger = read();
        (ledger.tip().time_ms, ledger.tip().height)
    };
    let mut villages: BTreeMap<RegionCode, AnomalyCounts> = BTreeMap::new();
    let mut open = OpenObjections::default();
    scan(
        &read,
        &keys::objections(),
        page,
        |ledger, record: ObjectionRecord| objection(ledger, &record, now, &mut villages, &mut open),
    )?;
    let mut cells: BTreeMap<Cell, CellStats> = BTreeMap::new();
    let mut deaths: HashMap<Pseudonym, Option<TimeMs>> = HashMap::new();
    let mut accounts: Vec<(Hash32, Pseudonym, RegionCode)> = Vec::new();
    scan(
        &read,
        &keys::allocations(),
        page,
        |ledger, record: AllocationRecord| {
            let died_at = match &record.disbursement {
                Some(paid) => {
                    accounts.push((
                        paid.account_ref_hash,
                        record.beneficiary,
                        record.village.clone(),
                    ));
                    death_time(ledger, &mut deaths, &record.beneficiary)?
                }
                None => None,
            };
            let flags = allocation_flags(&record, now, died_at);
            villages
                .entry(record.village.clone())
                .or_default()
                .add(&flags);
            let cell = (
                record.program.clone(),
                record.period.clone(),
                record.village.clone(),
            );
            let stats = cells.entry(cell).or_default();
            stats.add_allocation(&record);
            stats.objections_open += open
                .by_beneficiary
                .get(&record.beneficiary)
                .copied()
                .unwrap_or(0);
            Ok(())
        },
    )?;
    for (cell, count) in open.by_cell {
        cells.entry(cell).or_default().objections_open += count;
    }
    for village in shared_accounts(accounts) {
        villages.entry(village).or_default().shared_account += 1;
    }
    Ok(Survey {
        height,
        anomalies: roll_up(villages),
        stats: roll_up_stats(cells),
    })
}

/// Counts one objection: overdue per village; open per cell (an allocation's) or per
/// beneficiary (counted in each of their program periods).
fn objection<S: Store>(
    ledger: &Ledger<S>,
    record: &ObjectionRecord,
    now: TimeMs,
    villages: &mut BTreeMap<RegionCode, AnomalyCounts>,
    open: &mut OpenObjections,
) -> Result<(), LedgerError> {
    if objection_overdue(record, now) {
        if let Some(person) =
            ledger.state_get::<BeneficiaryRecord>(&keys::beneficiary(&record.beneficiary))?
        {
            villages
                .entry(person.region)
                .or_default()
                .objections_overdue += 1;
        }
    }
    if record.resolution.is_some() {
        return Ok(());
    }
    match &record.subject {
        ObjectionSubject::Allocation(id) => {
            if let Some(a) = ledger.state_get::<AllocationRecord>(&keys::allocation(id))? {
                *open
                    .by_cell
                    .entry((a.program, a.period, a.village))
                    .or_default() += 1;
            }
        }
        ObjectionSubject::Beneficiary(person) => {
            *open.by_beneficiary.entry(*person).or_default() += 1;
        }
    }
    Ok(())
}

/// Adds each cell's statistics to every region above it and to its program period, then
/// finishes them.
fn roll_up_stats(cells: BTreeMap<Cell, CellStats>) -> StatsTable {
    let mut gathered: BTreeMap<(String, String, String), CellStats> = BTreeMap::new();
    for ((program, period, village), stats) in cells {
        let (program, period) = (program.to_string(), period.to_string());
        let mut next = Some(village);
        while let Some(region) = next {
            gathered
                .entry((program.clone(), period.clone(), region.to_string()))
                .or_default()
                .merge(&stats);
            next = region.parent();
        }
        gathered
            .entry((program, period, String::new()))
            .or_default()
            .merge(&stats);
    }
    gathered
        .into_iter()
        .map(|(key, stats)| (key, stats.finish()))
        .collect()
}

/// The village of each beneficiary paid into an account that someone else was paid into
/// too (one entry per beneficiary and account). Sorting keeps it linear-logarithmic however
/// many people share one account, which is exactly the case it looks for.
fn shared_accounts(mut payments: Vec<(Hash32, Pseudonym, RegionCode)>) -> Vec<RegionCode> {
    payments.sort_unstable_by_key(|a| (a.0, a.1));
    payments.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let mut out = Vec::new();
    for group in payments.chunk_by(|a, b| a.0 == b.0) {
        if group.len() > 1 {
            out.extend(group.iter().map(|(_, _, village)| village.clone()));
        }
    }
    out
}

/// Adds each village's counts to every region above it and to the whole network ("").
fn roll_up(villages: BTreeMap<RegionCode, AnomalyCounts>) -> AnomalyTable {
    let mut table = AnomalyTable::new();
    for (village, counts) in villages {
        let mut next = Some(village);
        while let Some(region) = next {
            table.entry(region.to_string()).or_default().add(&counts);
            next = region.parent();
        }
        table.entry(String::new()).or_default().add(&counts);
    }
    table
}

/// When the beneficiary's death was recorded, if they are recorded deceased now (the
/// answer is remembered per beneficiary for the pass).
fn death_time<S: Store>(
    ledger: &Ledger<S>,
    known: &mut HashMap<Pseudonym, Option<TimeMs>>,
    person: &Pseudonym,
) -> Result<Option<TimeMs>, LedgerError> {
    if let Some(time) = known.get(person) {
        return Ok(*time);
    }
    let deceased = ledger
        .state_get::<BeneficiaryRecord>(&keys::beneficiary(person))?
        .is_some_and(|r| r.status == LifeStatus::Deceased);
    let mut time = None;
    if deceased {
        for index in ledger.beneficiary_log_indexes(person, DEATH_SEARCH_STEPS_MAX)? {
            let Some(leaf) = ledger.log_leaf(index)? else {
                continue;
            };
            let tx = Transaction::from_bytes(&leaf)?;
            if let Action::ChangeStatus {
                change: StatusChange::Deceased,
                ..
            } = tx.body.action
            {
                let height = ledger.tx_location(&tx.hash())?.map(|l| l.height);
                time = height
                    .and_then(|h| ledger.header(h).ok().flatten())
                    .map(|h| h.time_ms);
            }
        }
    }
    known.insert(*person, time);
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(account: u8, person: u8, village: &str) -> (Hash32, Pseudonym, RegionCode) {
        (
            Hash32([account; 32]),
            Hash32([person; 32]),
            RegionCode::new(village).expect("a region code"),
        )
    }

    #[test]
    fn an_account_counts_once_per_person_and_only_when_shared() {
        let villages = shared_accounts(vec![
            payment(1, 10, "35.10.01.2001"),
            payment(1, 11, "35.10.01.2002"),
            payment(1, 10, "35.10.01.2001"), // the same person paid again: still one
            payment(2, 12, "35.10.01.2001"), // alone in their account
            payment(3, 13, "35.10.02.2001"),
            payment(3, 13, "35.10.02.2001"),
        ]);
        let mut names: Vec<&str> = villages.iter().map(|v| v.as_str()).collect();
        names.sort();
        assert_eq!(names, ["35.10.01.2001", "35.10.01.2002"]);
    }

    #[test]
    fn an_account_shared_by_many_counts_each_of_them() {
        let many: Vec<_> = (0..50_000u32)
            .map(|i| {
                let mut person = [0u8; 32];
                person[..4].copy_from_slice(&i.to_be_bytes());
                (
                    Hash32([1; 32]),
                    Hash32(person),
                    RegionCode::new("35.10").expect("a code"),
                )
            })
            .collect();
        assert_eq!(shared_accounts(many).len(), 50_000);
    }

    #[test]
    fn counts_add_up_every_level_and_to_the_network() {
        let mut villages = BTreeMap::new();
        let one = AnomalyCounts {
            reported_not_received: 1,
            ..AnomalyCounts::default()
        };
        villages.insert(RegionCode::new("35.10.01.2001").expect("a code"), one);
        villages.insert(RegionCode::new("35.10.02.2001").expect("a code"), one);
        let table = roll_up(villages);
        assert_eq!(table["35.10.01"].reported_not_received, 1);
        assert_eq!(table["35.10"].reported_not_received, 2);
        assert_eq!(table["35"].reported_not_received, 2);
        assert_eq!(table[""].reported_not_received, 2);
    }
}
