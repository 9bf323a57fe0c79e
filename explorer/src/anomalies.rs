//! Anomaly flags (issue: the public explorer): per region, counts of what a watchful
//! citizen, village head or journalist should ask about. Never a list of people: the node
//! adds these up per region and publishes only the sums, and only for a region whose
//! totals are published (ten beneficiaries or more).
//!
//! Pure functions over committed records and the chain's own time (the latest block's),
//! never a clock.

use ledger::state::{AllocationRecord, ObjectionRecord};
use ledger::types::TimeMs;
use serde::Serialize;

/// A day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;
/// After this long, an allocation not yet paid, or a payment not yet confirmed, is overdue.
pub const OVERDUE_DAYS: u64 = 30;

/// The counts of one region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AnomalyCounts {
    /// Allocated more than 30 days ago and not paid.
    pub allocated_not_disbursed: u64,
    /// Paid more than 30 days ago and no confirmation of receipt.
    pub disbursed_not_confirmed: u64,
    /// The beneficiary (or their pendamping) says the money did not arrive.
    pub reported_not_received: u64,
    /// Objections still open after their 14-day deadline.
    pub objections_overdue: u64,
    /// Payments recorded after the beneficiary's death was recorded.
    pub paid_after_death: u64,
    /// Beneficiaries whose payment account reference is also used for someone else.
    pub shared_account: u64,
}

impl AnomalyCounts {
    /// Field-wise sum (saturating: these are counts of records, far below `u64::MAX`).
    pub fn add(&mut self, other: &AnomalyCounts) {
        self.allocated_not_disbursed += other.allocated_not_disbursed;
        self.disbursed_not_confirmed += other.disbursed_not_confirmed;
        self.reported_not_received += other.reported_not_received;
        self.objections_overdue += other.objections_overdue;
        self.paid_after_death += other.paid_after_death;
        self.shared_account += other.shared_account;
    }

    /// The flags in display order, by name.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("allocated_not_disbursed", self.allocated_not_disbursed),
            ("disbursed_not_confirmed", self.disbursed_not_confirmed),
            ("reported_not_received", self.reported_not_received),
            ("objections_overdue", self.objections_overdue),
            ("paid_after_death", self.paid_after_death),
            ("shared_account", self.shared_account),
        ]
    }
}

fn older_than(then: TimeMs, now: TimeMs, days: u64) -> bool {
    now.saturating_sub(then) > days * DAY_MS
}

/// What one allocation contributes, at chain time `now`; `died_at` is when the
/// beneficiary's death was recorded, if it was. (A shared account is found across records:
/// see [`AnomalyCounts::shared_account`].)
pub fn allocation_flags(
    record: &AllocationRecord,
    now: TimeMs,
    died_at: Option<TimeMs>,
) -> AnomalyCounts {
    let mut flags = AnomalyCounts::default();
    match &record.disbursement {
        None => {
            flags.allocated_not_disbursed =
                u64::from(older_than(record.allocated_at, now, OVERDUE_DAYS));
        }
        Some(paid) => {
            let statement = record
                .beneficiary_statement
                .as_ref()
                .or(record.receipt.as_ref());
            flags.disbursed_not_confirmed =
                u64::from(statement.is_none() && older_than(paid.paid_at, now, OVERDUE_DAYS));
            flags.reported_not_received = u64::from(statement.is_some_and(|s| !s.received));
            flags.paid_after_death = u64::from(died_at.is_some_and(|d| paid.paid_at >= d));
        }
    }
    flags
}

/// Whether an objection is still open past its deadline at chain time `now`.
pub fn objection_overdue(record: &ObjectionRecord, now: TimeMs) -> bool {
    record.resolution.is_none() && now > record.deadline
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::state::{DisbursementRecord, ReceiptRecord};
    use ledger::tx::PaymentChannel;
    use ledger::types::{Hash32, OrgId, PeriodCode, ProgramCode, RegionCode, Rupiah};

    fn allocation(at: TimeMs) -> AllocationRecord {
        AllocationRecord {
            beneficiary: Hash32([1; 32]),
            program: ProgramCode::new("PKH").unwrap(),
            period: PeriodCode::new("2026-T1").unwrap(),
            amount: Rupiah(750_000),
            budget_region: RegionCode::new("35.10").unwrap(),
            village: RegionCode::new("35.10.01.2001").unwrap(),
            allocated_at: at,
            disbursement: None,
            receipt: None,
            beneficiary_statement: None,
        }
    }

    fn paid(mut record: AllocationRecord, at: TimeMs) -> AllocationRecord {
        record.disbursement = Some(DisbursementRecord {
            amount: record.amount,
            paid_by: OrgId::new("bank-bri").unwrap(),
            channel: PaymentChannel::BankAccount,
            account_ref_hash: Hash32([2; 32]),
            paid_at: at,
        });
        record
    }

    #[test]
    fn unpaid_and_unconfirmed_become_overdue_after_thirty_days() {
        let day = DAY_MS;
        assert_eq!(
            allocation_flags(&allocation(0), 30 * day, None),
            AnomalyCounts::default()
        );
        assert_eq!(
            allocation_flags(&allocation(0), 31 * day, None).allocated_not_disbursed,
            1
        );
        let record = paid(allocation(0), 5 * day);
        assert_eq!(
            allocation_flags(&record, 35 * day, None).disbursed_not_confirmed,
            0
        );
        assert_eq!(
            allocation_flags(&record, 36 * day, None).disbursed_not_confirmed,
            1
        );
    }

    #[test]
    fn the_beneficiarys_own_word_decides_not_received() {
        let mut record = paid(allocation(0), 1);
        record.receipt = Some(ReceiptRecord {
            received: true,
            by_beneficiary: false,
            confirmed_at: 2,
        });
        assert_eq!(allocation_flags(&record, 3, None).reported_not_received, 0);
        record.beneficiary_statement = Some(ReceiptRecord {
            received: false,
            by_beneficiary: true,
            confirmed_at: 3,
        });
        let flags = allocation_flags(&record, 4, None);
        assert_eq!(
            (flags.reported_not_received, flags.disbursed_not_confirmed),
            (1, 0)
        );
    }

    #[test]
    fn a_payment_at_or_after_a_recorded_death_is_flagged() {
        let record = paid(allocation(0), 100);
        assert_eq!(
            allocation_flags(&record, 200, Some(100)).paid_after_death,
            1
        );
        assert_eq!(
            allocation_flags(&record, 200, Some(101)).paid_after_death,
            0
        );
        assert_eq!(allocation_flags(&record, 200, None).paid_after_death, 0);
    }
}
