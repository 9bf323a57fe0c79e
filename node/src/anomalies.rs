//! Anomaly counts per region (issue: the public explorer), from the committed records:
//! one pass over the allocations and the objections, counted per village with
//! `explorer::anomalies` and added up every level to the province and the whole network.
//! The table is cached and recomputed at most every [`ANOMALY_REFRESH`] when the chain has
//! moved, so a dashboard read costs one map lookup.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use explorer::anomalies::{allocation_flags, objection_overdue, AnomalyCounts};
use ledger::state::{keys, AllocationRecord, BeneficiaryRecord, LifeStatus, ObjectionRecord};
use ledger::store::Column;
use ledger::tx::{Action, StatusChange};
use ledger::types::{Hash32, Pseudonym, RegionCode, TimeMs};
use ledger::{Ledger, LedgerError, Store, Transaction};

/// How stale the table may grow while blocks keep coming.
pub const ANOMALY_REFRESH: Duration = Duration::from_secs(30);
/// Records read per store scan.
const SCAN_PAGE: usize = 4_096;
/// The most log entries read to find when a beneficiary's death was recorded.
const DEATH_SEARCH_STEPS_MAX: usize = 256;

/// Counts per region code; the empty code is the whole network.
pub type AnomalyTable = BTreeMap<String, AnomalyCounts>;

struct Cached {
    height: u64,
    computed_at: Duration,
    table: Arc<AnomalyTable>,
}

/// The latest table, shared by the dashboard requests.
#[derive(Default)]
pub struct AnomalyCache {
    cached: Mutex<Option<Cached>>,
}

impl AnomalyCache {
    /// The table for `ledger`'s tip, recomputed when the tip moved and the cached one is
    /// older than [`ANOMALY_REFRESH`] (`now` is a monotonic reading).
    pub fn table<S: Store>(
        &self,
        ledger: &Ledger<S>,
        now: Duration,
    ) -> Result<Arc<AnomalyTable>, LedgerError> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cached.as_ref() {
            let fresh = now.saturating_sub(c.computed_at) < ANOMALY_REFRESH;
            if c.height == ledger.tip().height || fresh {
                return Ok(c.table.clone());
            }
        }
        let table = Arc::new(compute(ledger)?);
        *cached = Some(Cached {
            height: ledger.tip().height,
            computed_at: now,
            table: table.clone(),
        });
        Ok(table)
    }
}

/// Scans the records under `prefix`, decoding each.
fn scan<S: Store, T: borsh::BorshDeserialize>(
    ledger: &Ledger<S>,
    prefix: &[u8],
    mut each: impl FnMut(T) -> Result<(), LedgerError>,
) -> Result<(), LedgerError> {
    let mut start = prefix.to_vec();
    loop {
        let page = ledger
            .store()
            .scan(Column::State, prefix, &start, SCAN_PAGE)?;
        for (_, bytes) in &page {
            let record = borsh::from_slice(bytes)
                .map_err(|e| LedgerError::Corrupt(format!("a state record: {e}")))?;
            each(record)?;
        }
        match page.last() {
            Some((last, _)) if page.len() == SCAN_PAGE => {
                start = last.clone();
                start.push(0);
            }
            _ => return Ok(()),
        }
    }
}

/// Computes the whole table at the tip's time.
pub fn compute<S: Store>(ledger: &Ledger<S>) -> Result<AnomalyTable, LedgerError> {
    let now = ledger.tip().time_ms;
    let mut villages: BTreeMap<RegionCode, AnomalyCounts> = BTreeMap::new();
    let mut deaths: HashMap<Pseudonym, Option<TimeMs>> = HashMap::new();
    let mut accounts: HashMap<Hash32, Vec<(Pseudonym, RegionCode)>> = HashMap::new();
    scan(ledger, &keys::allocations(), |record: AllocationRecord| {
        let died_at = match &record.disbursement {
            Some(paid) => {
                let people = accounts.entry(paid.account_ref_hash).or_default();
                if people.iter().all(|(p, _)| *p != record.beneficiary) {
                    people.push((record.beneficiary, record.village.clone()));
                }
                death_time(ledger, &mut deaths, &record.beneficiary)?
            }
            None => None,
        };
        let flags = allocation_flags(&record, now, died_at);
        villages
            .entry(record.village.clone())
            .or_default()
            .add(&flags);
        Ok(())
    })?;
    for people in accounts.values().filter(|p| p.len() > 1) {
        for (_, village) in people {
            villages.entry(village.clone()).or_default().shared_account += 1;
        }
    }
    scan(ledger, &keys::objections(), |record: ObjectionRecord| {
        if objection_overdue(&record, now) {
            if let Some(person) =
                ledger.state_get::<BeneficiaryRecord>(&keys::beneficiary(&record.beneficiary))?
            {
                villages
                    .entry(person.region)
                    .or_default()
                    .objections_overdue += 1;
            }
        }
        Ok(())
    })?;
    Ok(roll_up(villages))
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
