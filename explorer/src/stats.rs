//! Region statistics beside the provable sums (issue: the public explorer): how long payment
//! takes (the median days from allocation to payment), how many objections are open, and
//! payments per month (the time series the dashboards chart).
//!
//! A median is not a sum, so the totals tree cannot prove it: the node computes these from
//! its committed records, in the same pass as the anomaly counts, and the pages say so. The
//! same disclosure rules hold: nothing is shown for a region whose totals are suppressed, a
//! median only over at least [`K_MIN`] payments, and the months of a series are suppressed
//! like the rows of a table (a month under ten payments, and complementary months, so that
//! no hidden month is the published total minus the others).
//!
//! Pure functions over records and chain time; the node does the reading.

use std::collections::BTreeMap;

use ledger::state::AllocationRecord;
use serde::Serialize;

use crate::anomalies::DAY_MS;
use crate::suppress::{suppressed_rows, K_MIN};

/// The most days counted from allocation to payment; a longer wait counts as this many
/// (a median beyond a year and a half says what it must already).
pub const DAYS_TO_PAYMENT_MAX: u32 = 540;

/// What is gathered per cell (program, period, region) during the pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CellStats {
    /// Days from allocation to payment, one per paid allocation.
    days_to_payment: Vec<u16>,
    /// Payments and Rupiah paid per calendar month (`YYYY-MM`, UTC).
    months: BTreeMap<String, (u64, u64)>,
    /// Objections not yet resolved that concern the cell's allocations or beneficiaries.
    pub objections_open: u64,
}

/// A cell's statistics, finished.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeriodStats {
    /// Paid allocations.
    pub paid: u64,
    /// The middle of the days from allocation to payment (the lower middle for an even
    /// count); `None` when nothing was paid.
    pub median_days_to_payment: Option<u32>,
    pub objections_open: u64,
    /// Oldest first.
    pub months: Vec<MonthStats>,
}

/// Payments in one calendar month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MonthStats {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub payments: u64,
    /// Rupiah.
    pub disbursed: u64,
}

impl CellStats {
    /// Adds one allocation record.
    pub fn add_allocation(&mut self, record: &AllocationRecord) {
        let Some(paid) = &record.disbursement else {
            return;
        };
        let days = paid.paid_at.saturating_sub(record.allocated_at) / DAY_MS;
        let days = days.min(u64::from(DAYS_TO_PAYMENT_MAX)) as u16;
        self.days_to_payment.push(days);
        let month = self.months.entry(month_of(paid.paid_at)).or_default();
        month.0 += 1;
        month.1 = month.1.saturating_add(paid.amount.0);
    }

    /// Adds another cell's (a sub-region's) statistics to this one.
    pub fn merge(&mut self, other: &CellStats) {
        self.days_to_payment
            .extend_from_slice(&other.days_to_payment);
        for (month, (payments, rupiah)) in &other.months {
            let mine = self.months.entry(month.clone()).or_default();
            mine.0 += payments;
            mine.1 = mine.1.saturating_add(*rupiah);
        }
        self.objections_open += other.objections_open;
    }

    /// The finished statistics.
    pub fn finish(mut self) -> PeriodStats {
        PeriodStats {
            paid: self.days_to_payment.len() as u64,
            median_days_to_payment: median(&mut self.days_to_payment).map(u32::from),
            objections_open: self.objections_open,
            months: self
                .months
                .into_iter()
                .map(|(month, (payments, disbursed))| MonthStats {
                    month,
                    payments,
                    disbursed,
                })
                .collect(),
        }
    }
}

/// The middle value (the lower middle for an even count), reordering `values`.
pub fn median(values: &mut [u16]) -> Option<u16> {
    if values.is_empty() {
        return None;
    }
    let middle = (values.len() - 1) / 2;
    Some(*values.select_nth_unstable(middle).1)
}

/// The calendar month (`YYYY-MM`, UTC) of a time in milliseconds since 1970.
pub fn month_of(ms: u64) -> String {
    // Days to a civil date (proleptic Gregorian), after H. Hinnant's `civil_from_days`.
    let days = (ms / DAY_MS) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

/// What may be shown of a region's statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    pub median_days_to_payment: Option<u32>,
    pub objections_open: u64,
    /// Each month with its payments and Rupiah, or `None` where suppressed.
    pub months: Vec<(String, Option<(u64, u64)>)>,
}

/// What a region's page may show of its statistics: nothing when its totals are not
/// published; the median only over at least [`K_MIN`] payments; each month's figures, or
/// `None` where suppressed.
pub fn publishable(stats: &PeriodStats, published: bool) -> Option<Shown> {
    if !published {
        return None;
    }
    let median = stats.median_days_to_payment.filter(|_| stats.paid >= K_MIN);
    let counts: Vec<u64> = stats.months.iter().map(|m| m.payments).collect();
    let hidden = suppressed_rows(&counts, true);
    let months = stats
        .months
        .iter()
        .zip(hidden)
        .map(|(m, hide)| {
            (
                m.month.clone(),
                (!hide).then_some((m.payments, m.disbursed)),
            )
        })
        .collect();
    Some(Shown {
        median_days_to_payment: median,
        objections_open: stats.objections_open,
        months,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::state::DisbursementRecord;
    use ledger::tx::PaymentChannel;
    use ledger::types::{Hash32, OrgId, PeriodCode, ProgramCode, RegionCode, Rupiah};

    fn paid(allocated_at: u64, paid_at: u64) -> AllocationRecord {
        AllocationRecord {
            beneficiary: Hash32([1; 32]),
            program: ProgramCode::new("PKH").unwrap(),
            period: PeriodCode::new("2026-T1").unwrap(),
            amount: Rupiah(750_000),
            budget_region: RegionCode::new("35.10").unwrap(),
            village: RegionCode::new("35.10.01.2001").unwrap(),
            allocated_at,
            disbursement: Some(DisbursementRecord {
                amount: Rupiah(750_000),
                channel: PaymentChannel::BankAccount,
                account_ref_hash: Hash32([2; 32]),
                paid_by: OrgId::new("bank-bri").unwrap(),
                paid_at,
            }),
            receipt: None,
            beneficiary_statement: None,
        }
    }

    #[test]
    fn months_are_utc_calendar_months() {
        assert_eq!(month_of(0), "1970-01");
        // 2026-02-28T23:59:59.999Z and a millisecond later.
        assert_eq!(month_of(1_772_323_199_999), "2026-02");
        assert_eq!(month_of(1_772_323_200_000), "2026-03");
        // A leap day: 2024-02-29.
        assert_eq!(month_of(1_709_164_800_000), "2024-02");
        assert_eq!(month_of(1_709_251_200_000), "2024-03");
    }

    #[test]
    fn the_median_is_the_middle_day() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [7]), Some(7));
        assert_eq!(median(&mut [30, 2, 9]), Some(9));
        assert_eq!(median(&mut [30, 2, 9, 4]), Some(4));
    }

    #[test]
    fn cells_gather_days_and_months_and_merge() {
        let start = 1_767_225_600_000; // 2026-01-01
        let mut village = CellStats::default();
        for day in 0..12u64 {
            village.add_allocation(&paid(start, start + day * DAY_MS + 5));
        }
        let mut unpaid = paid(start, start);
        unpaid.disbursement = None;
        village.add_allocation(&unpaid);
        let mut district = CellStats::default();
        district.merge(&village);
        district.add_allocation(&paid(start, start + 40 * DAY_MS));
        district.objections_open = 1;
        let stats = district.finish();
        assert_eq!(stats.paid, 13);
        assert_eq!(stats.median_days_to_payment, Some(6));
        assert_eq!(stats.objections_open, 1);
        assert_eq!(
            stats.months,
            [
                MonthStats {
                    month: "2026-01".into(),
                    payments: 12,
                    disbursed: 9_000_000
                },
                MonthStats {
                    month: "2026-02".into(),
                    payments: 1,
                    disbursed: 750_000
                },
            ]
        );
        // Far-off payments count as the cap, not as a wrapped-around small number.
        let mut late = CellStats::default();
        late.add_allocation(&paid(0, 100_000 * DAY_MS));
        assert_eq!(
            late.finish().median_days_to_payment,
            Some(DAYS_TO_PAYMENT_MAX)
        );
    }

    #[test]
    fn small_medians_and_months_are_not_published() {
        let month = |m: &str, payments| MonthStats {
            month: m.into(),
            payments,
            disbursed: payments * 750_000,
        };
        let stats = PeriodStats {
            paid: 9,
            median_days_to_payment: Some(3),
            objections_open: 2,
            months: vec![month("2026-01", 3), month("2026-02", 6)],
        };
        assert_eq!(publishable(&stats, false), None);
        let shown = publishable(&stats, true).unwrap();
        assert_eq!(
            (shown.median_days_to_payment, shown.objections_open),
            (None, 2)
        );
        assert!(shown.months.iter().all(|m| m.1.is_none()));
        let stats = PeriodStats {
            paid: 45,
            median_days_to_payment: Some(3),
            objections_open: 0,
            months: vec![
                month("2026-01", 20),
                month("2026-02", 4),
                month("2026-03", 21),
            ],
        };
        let shown = publishable(&stats, true).unwrap();
        assert_eq!(shown.median_days_to_payment, Some(3));
        // 4 alone would be the published total minus the others: its smallest neighbour
        // goes with it.
        let months: Vec<bool> = shown.months.iter().map(|m| m.1.is_some()).collect();
        assert_eq!(months, [false, false, true]);
    }
}
