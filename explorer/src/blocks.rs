//! Per-block summaries for the chain browser (DESIGN §4: "per-block summaries (height, time,
//! proposer, counts by type and kabupaten)"): what a block did, counted, never who.

use std::collections::BTreeMap;

use ledger::tx::{Action, ObjectionSubject, Transaction};
use ledger::types::{Pseudonym, RegionCode};

use crate::Records;

/// What the summaries need besides [`Records`]: a beneficiary's region as it stands.
pub trait Regions: Records {
    fn beneficiary_region(&self, beneficiary: &Pseudonym) -> Option<RegionCode>;
}

/// A block's transactions counted by step and by regency, and the amounts it moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockCounts {
    /// Step name (`propose`, `allocate`, …) → transactions.
    pub by_type: BTreeMap<&'static str, u64>,
    /// Regency code (`35.10`) → transactions; steps with no region (keys, attestations, a
    /// budget over several regions) are not counted here.
    pub by_regency: BTreeMap<String, u64>,
    /// Rupiah allocated in the block.
    pub allocated: u64,
    /// Rupiah disbursed in the block.
    pub disbursed: u64,
}

/// The regency (`35.10`) a region lies in, or the province itself for a province code.
pub fn regency_of(region: &RegionCode) -> String {
    region
        .as_str()
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".")
}

/// The region a transaction concerns, as the records now stand.
fn region_of(action: &Action, records: &impl Regions) -> Option<RegionCode> {
    match action {
        Action::Propose { region, .. } => Some(region.clone()),
        Action::DeclareBudget { ceilings, .. } if ceilings.len() == 1 => {
            Some(ceilings[0].region.clone())
        }
        Action::CheckIdentity { beneficiary, .. }
        | Action::VerifyEligibility { beneficiary, .. }
        | Action::Enrol { beneficiary, .. }
        | Action::Allocate { beneficiary, .. }
        | Action::ChangeStatus { beneficiary, .. }
        | Action::FileObjection {
            subject: ObjectionSubject::Beneficiary(beneficiary),
            ..
        } => records.beneficiary_region(beneficiary),
        Action::Disburse { allocation, .. }
        | Action::ConfirmReceipt { allocation, .. }
        | Action::FileObjection {
            subject: ObjectionSubject::Allocation(allocation),
            ..
        } => records.allocation(allocation).map(|a| a.village),
        Action::ResolveObjection { objection, .. } => records
            .objection(objection)
            .and_then(|o| records.beneficiary_region(&o.beneficiary)),
        Action::DeclareBudget { .. }
        | Action::Attest { .. }
        | Action::RegisterAgent { .. }
        | Action::RevokeAgent { .. }
        | Action::SkipNonce {}
        | Action::ProposeChange { .. }
        | Action::ApproveChange { .. }
        | Action::LinkPseudonyms { .. } => None,
    }
}

/// Counts a block's transactions.
pub fn count(txs: &[Transaction], records: &impl Regions) -> BlockCounts {
    let mut counts = BlockCounts::default();
    for tx in txs {
        let action = &tx.body.action;
        *counts.by_type.entry(action.name()).or_default() += 1;
        if let Some(region) = region_of(action, records) {
            *counts.by_regency.entry(regency_of(&region)).or_default() += 1;
        }
        match action {
            Action::Allocate { amount, .. } => counts.allocated += amount.0,
            Action::Disburse { amount, .. } => counts.disbursed += amount.0,
            _ => {}
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_counts_under_its_regency() {
        assert_eq!(
            regency_of(&RegionCode::new("35.10.01.2001").unwrap()),
            "35.10"
        );
        assert_eq!(regency_of(&RegionCode::new("35.10").unwrap()), "35.10");
        assert_eq!(regency_of(&RegionCode::new("35").unwrap()), "35");
    }
}
