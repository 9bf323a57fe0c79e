//! The ledger state: records and their keys in [`crate::store::Column::State`].
//!
//! Keys are a one-byte record kind followed by the record's identity, so that one kind's
//! records sort together and can be scanned. Variable-length codes inside keys end with a
//! 0x00 byte, which no code may contain, so keys never collide.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::genesis::OrgKind;
use crate::tx::{AgentRole, ClaimCode, Consequence, ObjectionSubject, PaymentChannel};
use crate::types::{
    AllocationId, Hash32, ObjectionId, OrgId, PeriodCode, ProgramCode, Pseudonym, PublicKey,
    RegionCode, Rupiah, TimeMs, TrackingCodeHash, TxHash,
};

/// Record kinds: the first byte of every state key.
mod kind {
    pub const KEY: u8 = 0x01;
    pub const ORGANISATION: u8 = 0x02;
    pub const PROGRAM: u8 = 0x03;
    pub const VALIDATOR_SET: u8 = 0x04;
    pub const VALIDATOR_SET_FROM: u8 = 0x05;
    pub const CHANGE: u8 = 0x06;
    pub const CHANGE_DUE: u8 = 0x07;
    pub const GOVERNANCE_EPOCH: u8 = 0x08;
    pub const PSEUDONYM_KEY: u8 = 0x09;
    pub const PSEUDONYM_KEY_VERSION: u8 = 0x0A;
    pub const BENEFICIARY_COUNT: u8 = 0x0B;
    pub const BENEFICIARY: u8 = 0x10;
    pub const ENROLMENT: u8 = 0x11;
    pub const TRACKING: u8 = 0x12;
    pub const BUDGET: u8 = 0x13;
    pub const ALLOCATION: u8 = 0x14;
    pub const OBJECTION: u8 = 0x15;
    pub const COSIGNATURE: u8 = 0x16;
    pub const TOTALS: u8 = 0x17;
    pub const PSEUDONYM_LINK: u8 = 0x18;
    pub const PSEUDONYM_LINKED: u8 = 0x19;
}

/// State keys.
pub mod keys {
    use super::*;

    fn with_kind(kind: u8, capacity: usize) -> Vec<u8> {
        let mut key = Vec::with_capacity(1 + capacity);
        key.push(kind);
        key
    }

    fn push_code(key: &mut Vec<u8>, code: &str) {
        key.extend_from_slice(code.as_bytes());
        key.push(0);
    }

    pub fn signer(key: &PublicKey) -> Vec<u8> {
        let mut k = with_kind(kind::KEY, 32);
        k.extend_from_slice(key.as_bytes());
        k
    }

    /// An organisation's record (from genesis, or added by governance).
    pub fn organisation(org: &OrgId) -> Vec<u8> {
        let mut k = with_kind(kind::ORGANISATION, 32);
        push_code(&mut k, org.as_str());
        k
    }

    /// The prefix of every organisation.
    pub fn organisations() -> Vec<u8> {
        vec![kind::ORGANISATION]
    }

    /// An aid program's record.
    pub fn program(code: &ProgramCode) -> Vec<u8> {
        let mut k = with_kind(kind::PROGRAM, 32);
        push_code(&mut k, code.as_str());
        k
    }

    /// The validator set of the next height.
    pub fn validator_set() -> Vec<u8> {
        vec![kind::VALIDATOR_SET]
    }

    /// The validator set that took effect at `height` (kept for every change).
    pub fn validator_set_from(height: u64) -> Vec<u8> {
        let mut k = with_kind(kind::VALIDATOR_SET_FROM, 8);
        k.extend_from_slice(&height.to_be_bytes());
        k
    }

    /// The prefix of every validator set in the history.
    pub fn validator_sets() -> Vec<u8> {
        vec![kind::VALIDATOR_SET_FROM]
    }

    /// How many governance changes have taken effect (a `u64`): nodes reload organisations,
    /// keys and validators when it moves.
    pub fn governance_epoch() -> Vec<u8> {
        vec![kind::GOVERNANCE_EPOCH]
    }

    /// A governance change, by the hash of the transaction that proposed it.
    pub fn change(id: &TxHash) -> Vec<u8> {
        let mut k = with_kind(kind::CHANGE, 32);
        k.extend_from_slice(id.as_bytes());
        k
    }

    /// The marker of a change due to take effect at `height`.
    pub fn change_due(height: u64, id: &TxHash) -> Vec<u8> {
        let mut k = changes_due(height);
        k.extend_from_slice(id.as_bytes());
        k
    }

    /// The prefix of every change due at `height`.
    pub fn changes_due(height: u64) -> Vec<u8> {
        let mut k = with_kind(kind::CHANGE_DUE, 40);
        k.extend_from_slice(&height.to_be_bytes());
        k
    }

    /// The current pseudonym key (`pseudonyms::PseudonymKeyRecord`).
    pub fn pseudonym_key() -> Vec<u8> {
        vec![kind::PSEUDONYM_KEY]
    }

    /// Pseudonym key `version`, kept for every version.
    pub fn pseudonym_key_version(version: u32) -> Vec<u8> {
        let mut k = with_kind(kind::PSEUDONYM_KEY_VERSION, 4);
        k.extend_from_slice(&version.to_be_bytes());
        k
    }

    /// The prefix of every pseudonym key version.
    pub fn pseudonym_key_versions() -> Vec<u8> {
        vec![kind::PSEUDONYM_KEY_VERSION]
    }

    /// How many beneficiaries have been proposed (a `u64`).
    pub fn beneficiary_count() -> Vec<u8> {
        vec![kind::BENEFICIARY_COUNT]
    }

    /// The pseudonym the ledger knows the beneficiary with (newer) `pseudonym` by.
    pub fn pseudonym_link(pseudonym: &Pseudonym) -> Vec<u8> {
        let mut k = with_kind(kind::PSEUDONYM_LINK, 32);
        k.extend_from_slice(pseudonym.as_bytes());
        k
    }

    /// Marks the beneficiary known as `canonical` linked under key `version`.
    pub fn pseudonym_linked(version: u32, canonical: &Pseudonym) -> Vec<u8> {
        let mut k = with_kind(kind::PSEUDONYM_LINKED, 36);
        k.extend_from_slice(&version.to_be_bytes());
        k.extend_from_slice(canonical.as_bytes());
        k
    }

    /// The prefix of every beneficiary record.
    pub fn beneficiaries() -> Vec<u8> {
        vec![kind::BENEFICIARY]
    }

    pub fn beneficiary(pseudonym: &Pseudonym) -> Vec<u8> {
        let mut k = with_kind(kind::BENEFICIARY, 32);
        k.extend_from_slice(pseudonym.as_bytes());
        k
    }

    pub fn enrolment(pseudonym: &Pseudonym, program: &ProgramCode) -> Vec<u8> {
        let mut k = with_kind(kind::ENROLMENT, 48);
        k.extend_from_slice(pseudonym.as_bytes());
        push_code(&mut k, program.as_str());
        k
    }

    /// The prefix of every enrolment of one beneficiary.
    pub fn enrolments_of(pseudonym: &Pseudonym) -> Vec<u8> {
        let mut k = with_kind(kind::ENROLMENT, 32);
        k.extend_from_slice(pseudonym.as_bytes());
        k
    }

    pub fn tracking(code_hash: &TrackingCodeHash) -> Vec<u8> {
        let mut k = with_kind(kind::TRACKING, 32);
        k.extend_from_slice(code_hash.as_bytes());
        k
    }

    pub fn budget(program: &ProgramCode, period: &PeriodCode, region: &RegionCode) -> Vec<u8> {
        let mut k = with_kind(kind::BUDGET, 48);
        push_code(&mut k, program.as_str());
        push_code(&mut k, period.as_str());
        push_code(&mut k, region.as_str());
        k
    }

    pub fn allocation(id: &AllocationId) -> Vec<u8> {
        let mut k = with_kind(kind::ALLOCATION, 32);
        k.extend_from_slice(id.as_bytes());
        k
    }

    pub fn objection(id: &ObjectionId) -> Vec<u8> {
        let mut k = with_kind(kind::OBJECTION, 32);
        k.extend_from_slice(id.as_bytes());
        k
    }

    pub fn cosignature(size: u64, org: &OrgId) -> Vec<u8> {
        let mut k = with_kind(kind::COSIGNATURE, 40);
        k.extend_from_slice(&size.to_be_bytes());
        push_code(&mut k, org.as_str());
        k
    }

    /// A node of the totals tree ([`crate::totals`]), by its codes from the root down.
    pub fn totals(segments: &[&str]) -> Vec<u8> {
        let mut k = with_kind(kind::TOTALS, 48);
        for segment in segments {
            push_code(&mut k, segment);
        }
        k
    }

    /// The prefix of every allocation.
    pub fn allocations() -> Vec<u8> {
        vec![kind::ALLOCATION]
    }

    /// The prefix of every objection.
    pub fn objections() -> Vec<u8> {
        vec![kind::OBJECTION]
    }

    /// The prefix of every cosignature.
    pub fn cosignatures() -> Vec<u8> {
        vec![kind::COSIGNATURE]
    }
}

/// The identifier of the allocation of `program`/`period` aid to `beneficiary`: derived,
/// so a second allocation of the same aid is found by key.
pub fn allocation_id(
    beneficiary: &Pseudonym,
    program: &ProgramCode,
    period: &PeriodCode,
) -> AllocationId {
    let mut hasher = blake3::Hasher::new_derive_key("bansos-ledger 2026 allocation id v1");
    hasher.update(beneficiary.as_bytes());
    hasher.update(program.as_str().as_bytes());
    hasher.update(&[0]);
    hasher.update(period.as_str().as_bytes());
    Hash32(*hasher.finalize().as_bytes())
}

/// Who holds a signing key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "holder", rename_all = "snake_case")]
pub enum KeyHolder {
    /// One of an organisation's own transaction keys (from genesis or a governance change).
    Organisation { org: OrgId },
    /// An agent registered by an organisation.
    Agent {
        org: OrgId,
        role: AgentRole,
        regions: Vec<RegionCode>,
    },
    /// A beneficiary's app key, registered at enrolment.
    Beneficiary { beneficiary: Pseudonym },
}

/// A signing key and its replay-protection nonce.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct KeyRecord {
    pub holder: KeyHolder,
    /// The nonce the key's next transaction must carry.
    pub next_nonce: u64,
    pub revoked: bool,
}

/// Identity check outcome.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStatus {
    Unchecked,
    Passed,
    Failed,
}

/// Eligibility outcome.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EligibilityStatus {
    Pending,
    Verified,
    Rejected { reason_code: u16 },
}

/// Life status of a beneficiary.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LifeStatus {
    Active,
    Suspended,
    Graduated,
    Deceased,
}

impl LifeStatus {
    pub fn name(self) -> &'static str {
        match self {
            LifeStatus::Active => "active",
            LifeStatus::Suspended => "suspended",
            LifeStatus::Graduated => "graduated",
            LifeStatus::Deceased => "deceased",
        }
    }
}

/// A proposed beneficiary. Holds no personal data: a pseudonym, a village code and two
/// small numbers.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BeneficiaryRecord {
    pub region: RegionCode,
    pub household_size: u8,
    pub welfare_decile: u8,
    pub proposed_by: OrgId,
    pub proposed_at: TimeMs,
    pub identity: IdentityStatus,
    pub eligibility: EligibilityStatus,
    pub status: LifeStatus,
    /// Who set the current status, when it is not `active`: a suspension or graduation set
    /// by the ministry can be lifted by the ministry only.
    pub status_set_by: Option<crate::genesis::OrgKind>,
}

/// Enrolment of a beneficiary in a program.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EnrolmentRecord {
    pub tracking_code_hash: TrackingCodeHash,
    pub beneficiary_key: Option<PublicKey>,
    pub enrolled_at: TimeMs,
}

/// What a tracking code points to.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TrackingRecord {
    pub beneficiary: Pseudonym,
    pub program: ProgramCode,
}

/// A budget ceiling for one program period in one region, and what is allocated of it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BudgetRecord {
    pub ceiling: Rupiah,
    pub allocated: Rupiah,
}

/// A payment made against an allocation.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DisbursementRecord {
    pub amount: Rupiah,
    pub paid_by: OrgId,
    pub channel: PaymentChannel,
    pub account_ref_hash: Hash32,
    pub paid_at: TimeMs,
}

/// A receipt confirmation.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReceiptRecord {
    pub received: bool,
    /// True when the beneficiary's own key signed; false for a pendamping on their behalf.
    pub by_beneficiary: bool,
    pub confirmed_at: TimeMs,
}

/// An allocation of aid.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AllocationRecord {
    pub beneficiary: Pseudonym,
    pub program: ProgramCode,
    pub period: PeriodCode,
    pub amount: Rupiah,
    /// The region whose budget ceiling this allocation counts against.
    pub budget_region: RegionCode,
    /// The beneficiary's region when allocated: the cell of the totals tree it counts in.
    pub village: RegionCode,
    pub allocated_at: TimeMs,
    pub disbursement: Option<DisbursementRecord>,
    pub receipt: Option<ReceiptRecord>,
    /// The beneficiary's own statement when a pendamping confirmed first: their own key can
    /// always say "not received", and both records stay, so the conflict is visible.
    pub beneficiary_statement: Option<ReceiptRecord>,
}

/// How an objection was resolved.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ResolutionRecord {
    pub upheld: bool,
    pub consequence: Consequence,
    pub resolved_by: OrgId,
    pub resolved_at: TimeMs,
}

/// An objection (sanggah) or complaint.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ObjectionRecord {
    pub subject: ObjectionSubject,
    /// The beneficiary concerned (directly, or through the allocation).
    pub beneficiary: Pseudonym,
    pub claim: ClaimCode,
    pub evidence_hash: Hash32,
    pub filed_by: OrgId,
    pub filed_at: TimeMs,
    /// After this time only the ministry may resolve it.
    pub deadline: TimeMs,
    pub resolution: Option<ResolutionRecord>,
}

/// An auditor's cosignature of a log checkpoint: the transaction that carries it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CosignatureRecord {
    pub root: Hash32,
    pub tx_hash: TxHash,
    pub org_kind: OrgKind,
}
