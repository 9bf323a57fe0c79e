//! # bansos-explorer: what the public sees (DESIGN §4, issue: the public explorer)
//!
//! Pure functions from committed ledger data to what a citizen may be shown; the node serves
//! them over HTTP. So far: a tracking-code holder's timeline ([`describe`]), one step per
//! committed transaction that concerns their enrolment, in terms a person understands —
//! never the pseudonym, an agent's key, an account reference or another person's data.
//!
//! **Invariant:** nothing here reads a clock, a socket or a file; the caller passes the
//! ledger's records in.

pub mod anomalies;
pub mod blocks;
pub mod pages;
pub mod stats;
pub mod suppress;

use ledger::state::{AllocationRecord, ObjectionRecord};
use ledger::tx::{Action, ObjectionSubject, StatusChange, Transaction, Verification};
use ledger::types::{AllocationId, ObjectionId, ProgramCode, Pseudonym};

/// The committed records a timeline step may need, for the steps that name only an
/// allocation or an objection.
pub trait Records {
    fn allocation(&self, id: &AllocationId) -> Option<AllocationRecord>;
    fn objection(&self, id: &ObjectionId) -> Option<ObjectionRecord>;
}

/// One step of a citizen's timeline, as the public may see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// `proposed`, `identity_checked`, `verified`, `rejected`, `enrolled`, `allocated`,
    /// `disbursed`, `received`, `not_received`, `objection_filed`, `objection_resolved`,
    /// `status_changed`.
    pub kind: &'static str,
    pub program: Option<String>,
    pub period: Option<String>,
    /// Rupiah.
    pub amount: Option<u64>,
    /// A short outcome where the step has one (`passed`, `failed`, `upheld`, `dismissed`,
    /// `deceased`, `moved`, `graduated`, `suspended`, `reinstated`, `death_record_corrected`,
    /// a payment channel).
    pub outcome: Option<&'static str>,
}

impl Step {
    fn new(kind: &'static str) -> Step {
        Step {
            kind,
            program: None,
            period: None,
            amount: None,
            outcome: None,
        }
    }
}

/// The step `tx` is in the timeline of `beneficiary`'s enrolment in `program`, or `None`
/// when it belongs to another program's timeline (or to no one's).
pub fn describe(
    tx: &Transaction,
    beneficiary: &Pseudonym,
    program: &ProgramCode,
    records: &impl Records,
) -> Option<Step> {
    let action = &tx.body.action;
    person_step(action, beneficiary, program)
        .or_else(|| allocation_step(action, beneficiary, program, records))
        .or_else(|| resolution_step(action, beneficiary, program, records))
}

/// The resolution of an objection about the beneficiary, or about one of their
/// allocations in `program`.
fn resolution_step(
    action: &Action,
    beneficiary: &Pseudonym,
    program: &ProgramCode,
    records: &impl Records,
) -> Option<Step> {
    let Action::ResolveObjection {
        objection, upheld, ..
    } = action
    else {
        return None;
    };
    let record = records.objection(objection)?;
    let step = Step {
        outcome: Some(if *upheld { "upheld" } else { "dismissed" }),
        ..Step::new("objection_resolved")
    };
    match record.subject {
        ObjectionSubject::Beneficiary(b) if b == *beneficiary => Some(step),
        ObjectionSubject::Allocation(id) => {
            let allocation = records
                .allocation(&id)
                .filter(|a| a.beneficiary == *beneficiary && a.program == *program)?;
            Some(Step {
                program: Some(allocation.program.to_string()),
                period: Some(allocation.period.to_string()),
                ..step
            })
        }
        ObjectionSubject::Beneficiary(_) => None,
    }
}

/// Steps that name the beneficiary.
fn person_step(action: &Action, beneficiary: &Pseudonym, program: &ProgramCode) -> Option<Step> {
    match action {
        Action::Propose { beneficiary: b, .. } if b == beneficiary => Some(Step::new("proposed")),
        Action::CheckIdentity {
            beneficiary: b,
            passed,
            ..
        } if b == beneficiary => Some(Step {
            outcome: Some(if *passed { "passed" } else { "failed" }),
            ..Step::new("identity_checked")
        }),
        Action::VerifyEligibility {
            beneficiary: b,
            outcome,
        } if b == beneficiary => Some(Step::new(match outcome {
            Verification::Verified => "verified",
            Verification::Rejected { .. } => "rejected",
        })),
        Action::Enrol {
            beneficiary: b,
            program: p,
            ..
        } if b == beneficiary && p == program => Some(Step {
            program: Some(p.to_string()),
            ..Step::new("enrolled")
        }),
        Action::Allocate {
            beneficiary: b,
            program: p,
            period,
            amount,
        } if b == beneficiary && p == program => Some(Step {
            program: Some(p.to_string()),
            period: Some(period.to_string()),
            amount: Some(amount.0),
            ..Step::new("allocated")
        }),
        Action::FileObjection {
            subject: ObjectionSubject::Beneficiary(b),
            ..
        } if b == beneficiary => Some(Step::new("objection_filed")),
        Action::ChangeStatus {
            beneficiary: b,
            change,
        } if b == beneficiary => Some(Step {
            outcome: Some(status_outcome(change)),
            ..Step::new("status_changed")
        }),
        _ => None,
    }
}

fn status_outcome(change: &StatusChange) -> &'static str {
    match change {
        StatusChange::Deceased => "deceased",
        StatusChange::Moved { .. } => "moved",
        StatusChange::Graduated => "graduated",
        StatusChange::Suspended => "suspended",
        StatusChange::Reinstated => "reinstated",
        StatusChange::DeathRecordCorrected => "death_record_corrected",
    }
}

/// Steps that name one of the beneficiary's allocations in `program`.
fn allocation_step(
    action: &Action,
    beneficiary: &Pseudonym,
    program: &ProgramCode,
    records: &impl Records,
) -> Option<Step> {
    let of_allocation = |id: &AllocationId, kind: &'static str| {
        let record = records
            .allocation(id)
            .filter(|r| r.beneficiary == *beneficiary && r.program == *program)?;
        Some(Step {
            program: Some(record.program.to_string()),
            period: Some(record.period.to_string()),
            amount: Some(record.amount.0),
            ..Step::new(kind)
        })
    };
    match action {
        Action::Disburse {
            allocation,
            amount,
            channel,
            ..
        } => of_allocation(allocation, "disbursed").map(|step| Step {
            amount: Some(amount.0),
            outcome: Some(match channel {
                ledger::tx::PaymentChannel::BankAccount => "bank_account",
                ledger::tx::PaymentChannel::PosCash => "pos_cash",
                ledger::tx::PaymentChannel::Agent => "agent",
            }),
            ..step
        }),
        Action::ConfirmReceipt {
            allocation,
            received,
        } => of_allocation(
            allocation,
            if *received {
                "received"
            } else {
                "not_received"
            },
        ),
        Action::FileObjection {
            subject: ObjectionSubject::Allocation(id),
            ..
        } => of_allocation(id, "objection_filed"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::tx::{PaymentChannel, TxBody};
    use ledger::types::{Hash32, PeriodCode, PublicKey, RegionCode, Rupiah};

    fn tx(action: Action) -> Transaction {
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        TxBody {
            chain_id: "t".into(),
            signer: PublicKey(key.verifying_key().to_bytes()),
            nonce: 0,
            action,
        }
        .sign(&key)
    }

    fn code<T, E: std::fmt::Display>(make: fn(&str) -> Result<T, E>, text: &str) -> T {
        make(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_timeline_holds_the_holders_steps_of_that_program_only() {
        let me = Hash32([1; 32]);
        let other = Hash32([2; 32]);
        let pkh: ProgramCode = code(|t| ProgramCode::new(t), "PKH");
        let bpnt: ProgramCode = code(|t| ProgramCode::new(t), "BPNT");
        let period: PeriodCode = code(|t| PeriodCode::new(t), "2026-T4");
        let mine = AllocationRecord {
            beneficiary: me,
            program: pkh.clone(),
            period: period.clone(),
            amount: Rupiah(750_000),
            budget_region: code(|t| RegionCode::new(t), "35.10"),
            village: code(|t| RegionCode::new(t), "35.10.01.2001"),
            allocated_at: 0,
            disbursement: None,
            receipt: None,
            beneficiary_statement: None,
        };
        let my_allocation = Hash32([7; 32]);
        let my_objection = Hash32([5; 32]);
        let records = Known {
            allocation: (my_allocation, mine.clone()),
            objection: (
                my_objection,
                ObjectionRecord {
                    subject: ObjectionSubject::Allocation(my_allocation),
                    beneficiary: me,
                    claim: ledger::tx::ClaimCode::NotReceived,
                    evidence_hash: Hash32([0; 32]),
                    filed_by: code(|t| ledger::types::OrgId::new(t), "pemda-3510"),
                    filed_at: 0,
                    deadline: 1,
                    resolution: None,
                },
            ),
        };
        let view = |action: Action| describe(&tx(action), &me, &pkh, &records);
        let village: RegionCode = code(|t| RegionCode::new(t), "35.10.01.2001");
        let propose = |b| Action::Propose {
            beneficiary: b,
            region: village.clone(),
            household_size: 4,
            welfare_decile: 1,
        };
        assert_eq!(view(propose(me)).map(|s| s.kind), Some("proposed"));
        assert_eq!(view(propose(other)), None, "another person's step");
        let allocate = |program: &ProgramCode| Action::Allocate {
            beneficiary: me,
            program: program.clone(),
            period: period.clone(),
            amount: Rupiah(750_000),
        };
        assert_eq!(view(allocate(&bpnt)), None, "another program's step");
        let allocated = view(allocate(&pkh)).expect("a step");
        assert_eq!(
            (
                allocated.kind,
                allocated.period.as_deref(),
                allocated.amount
            ),
            ("allocated", Some("2026-T4"), Some(750_000))
        );
        let disburse = |allocation| Action::Disburse {
            allocation,
            amount: Rupiah(750_000),
            channel: PaymentChannel::PosCash,
            account_ref_hash: Hash32([9; 32]),
        };
        let paid = view(disburse(my_allocation)).expect("a step");
        assert_eq!((paid.kind, paid.outcome), ("disbursed", Some("pos_cash")));
        assert_eq!(
            view(disburse(Hash32([8; 32]))),
            None,
            "someone else's allocation"
        );
        let confirm = Action::ConfirmReceipt {
            allocation: my_allocation,
            received: false,
        };
        assert_eq!(view(confirm).map(|s| s.kind), Some("not_received"));
        let died = Action::ChangeStatus {
            beneficiary: me,
            change: StatusChange::Deceased,
        };
        assert_eq!(view(died).and_then(|s| s.outcome), Some("deceased"));
        let resolve = |objection| Action::ResolveObjection {
            objection,
            upheld: true,
            consequence: ledger::tx::Consequence::Repayment,
        };
        let resolved = view(resolve(my_objection)).expect("a step");
        assert_eq!(
            (resolved.kind, resolved.outcome, resolved.period.as_deref()),
            ("objection_resolved", Some("upheld"), Some("2026-T4"))
        );
        assert_eq!(
            view(resolve(Hash32([6; 32]))),
            None,
            "someone else's objection"
        );
    }

    struct Known {
        allocation: (AllocationId, AllocationRecord),
        objection: (ObjectionId, ObjectionRecord),
    }

    impl Records for Known {
        fn allocation(&self, id: &AllocationId) -> Option<AllocationRecord> {
            (*id == self.allocation.0).then(|| self.allocation.1.clone())
        }

        fn objection(&self, id: &ObjectionId) -> Option<ObjectionRecord> {
            (*id == self.objection.0).then(|| self.objection.1.clone())
        }
    }
}
