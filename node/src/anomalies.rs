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
    let mut accounts: Vec<(Hash32, Pseudonym, RegionCode)> = Vec::new();
    scan(ledger, &keys::allocations(), |record: AllocationRecord| {
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
        Ok(())
    })?;
    for village in shared_accounts(accounts) {
        villages.entry(village).or_default().shared_account += 1;
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
