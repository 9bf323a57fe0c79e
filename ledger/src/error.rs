//! Typed errors. Each variant names the rule that was broken; [`LedgerError::code`] gives the
//! stable machine-readable code that the HTTP layer returns.

use crate::types::{
    AllocationId, Hash32, Height, ObjectionId, OrgId, Pseudonym, PublicKey, Rupiah,
};

/// Why a transaction or block was refused. A refused transaction or block changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    // --- Form -----------------------------------------------------------------------------
    #[error("transaction is {bytes} bytes, more than the limit of {limit} bytes")]
    TxTooLarge { bytes: usize, limit: usize },
    #[error("transaction bytes do not decode: {0}")]
    MalformedTx(String),
    #[error("transaction field is invalid: {0}")]
    InvalidField(String),
    #[error("transaction is for chain {got:?}, this is chain {expected:?}")]
    WrongChainId { expected: String, got: String },
    #[error("signature does not verify for signer {signer}")]
    BadSignature { signer: PublicKey },

    // --- Authority ------------------------------------------------------------------------
    #[error("signer {signer} is not a key registered in genesis or by an organisation")]
    UnknownSigner { signer: PublicKey },
    #[error("signer {signer} has been revoked")]
    RevokedSigner { signer: PublicKey },
    #[error("nonce {got} for signer {signer} is not the next expected nonce {expected}")]
    BadNonce {
        signer: PublicKey,
        expected: u64,
        got: u64,
    },
    #[error("the role of the signer ({role}) may not perform {action}")]
    RoleNotAllowed { role: String, action: &'static str },
    #[error("region {region} is outside the signer's region scope")]
    RegionNotAllowed { region: String },
    #[error("program {program} is outside the signer's program scope")]
    ProgramNotAllowed { program: String },

    // --- References -----------------------------------------------------------------------
    #[error("unknown region {0}")]
    UnknownRegion(String),
    #[error("unknown program {0}")]
    UnknownProgram(String),
    #[error("unknown organisation {0}")]
    UnknownOrganisation(OrgId),
    #[error("unknown beneficiary {0}")]
    UnknownBeneficiary(Pseudonym),
    #[error("unknown allocation {0}")]
    UnknownAllocation(AllocationId),
    #[error("unknown objection {0}")]
    UnknownObjection(ObjectionId),
    #[error("no budget declared for program {program}, period {period}, covering region {region}")]
    NoBudget {
        program: String,
        period: String,
        region: String,
    },

    // --- Lifecycle ------------------------------------------------------------------------
    #[error("beneficiary {0} has already been proposed")]
    DuplicateProposal(Pseudonym),
    #[error("beneficiary {beneficiary} is already enrolled in program {program}")]
    DuplicateEnrolment {
        beneficiary: Pseudonym,
        program: String,
    },
    #[error("tracking code hash {0} is already in use")]
    DuplicateTrackingCode(Hash32),
    #[error("key {0} is already registered")]
    DuplicateKey(PublicKey),
    #[error("beneficiary {beneficiary} cannot be enrolled: {reason}")]
    NotEligibleForEnrolment {
        beneficiary: Pseudonym,
        reason: &'static str,
    },
    #[error("beneficiary {beneficiary} is not enrolled in program {program}")]
    NotEnrolled {
        beneficiary: Pseudonym,
        program: String,
    },
    #[error("beneficiary {beneficiary} is {status} and may not receive an allocation")]
    BeneficiaryInactive {
        beneficiary: Pseudonym,
        status: &'static str,
    },
    #[error("beneficiary {0} is recorded as deceased; no further status change is possible")]
    BeneficiaryDeceased(Pseudonym),
    #[error("an allocation for this beneficiary, program and period already exists: {0}")]
    DuplicateAllocation(AllocationId),
    #[error("allocation of {amount} would exceed the budget ceiling {ceiling} (already allocated {allocated})")]
    OverBudget {
        ceiling: Rupiah,
        allocated: Rupiah,
        amount: Rupiah,
    },
    #[error("budget ceiling {ceiling} is below the {allocated} already allocated")]
    CeilingBelowAllocated { ceiling: Rupiah, allocated: Rupiah },
    #[error("budget ceiling {ceiling} exceeds the ceiling {parent_ceiling} of the enclosing region {parent_region}")]
    CeilingAboveParent {
        ceiling: Rupiah,
        parent_region: String,
        parent_ceiling: Rupiah,
    },
    #[error("beneficiary {beneficiary} may no longer be paid: {reason}")]
    NoLongerEligible {
        beneficiary: Pseudonym,
        reason: &'static str,
    },
    #[error("status change not allowed: {0}")]
    StatusChangeNotAllowed(&'static str),
    #[error("allocation {0} has already been disbursed")]
    AlreadyDisbursed(AllocationId),
    #[error("disbursement of {amount} exceeds the allocated {allocated}")]
    OverDisbursement { allocated: Rupiah, amount: Rupiah },
    #[error("allocation {0} has not been disbursed")]
    NotDisbursed(AllocationId),
    #[error("receipt of allocation {0} has already been confirmed")]
    AlreadyConfirmed(AllocationId),
    #[error("objection {0} has already been resolved")]
    AlreadyResolved(ObjectionId),
    #[error(
        "objection {objection} passed its response deadline; only the ministry may resolve it now"
    )]
    ObjectionDeadlinePassed { objection: ObjectionId },
    #[error("amount must be positive")]
    ZeroAmount,
    #[error("checkpoint of size {size} is ahead of the log (size {log_size})")]
    CheckpointAhead { size: u64, log_size: u64 },
    #[error("checkpoint root does not match the log's root at size {size}")]
    CheckpointMismatch { size: u64 },
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),

    // --- Governance -----------------------------------------------------------------------
    #[error("change refused: {0}")]
    ChangeRefused(String),
    #[error("activation height {got} is outside {earliest} to {latest}")]
    BadActivationHeight {
        got: u64,
        earliest: u64,
        latest: u64,
    },
    #[error("unknown change {0}")]
    UnknownChange(Hash32),
    #[error("change {0} is no longer open for approval")]
    ChangeClosed(Hash32),
    #[error("{org} has already approved change {change}")]
    AlreadyApproved { change: Hash32, org: OrgId },
    #[error("the pseudonym key changed to version {version} at height {from_height}; new beneficiaries are refused until the identity authority has linked every beneficiary to its new pseudonym")]
    PseudonymRekeying { version: u32, from_height: u64 },
    #[error("pseudonym links refused: {0}")]
    PseudonymLinkRefused(String),
    #[error("the validator set would keep {remaining} validators; at least {min} are needed to tolerate a faulty one")]
    ValidatorSetTooSmall { remaining: usize, min: usize },
    #[error("the change moves {moved} of {total} voting power; less than a third may move at one height")]
    PowerChangeTooLarge { moved: u64, total: u64 },

    // --- Blocks ---------------------------------------------------------------------------
    #[error("block height {got} does not follow the tip; expected {expected}")]
    WrongHeight { expected: Height, got: Height },
    #[error("block's previous hash {got} is not the tip hash {expected}")]
    WrongPrevHash { expected: Hash32, got: Hash32 },
    #[error("block time {got} ms is not after the previous block time {previous} ms")]
    TimeNotIncreasing { previous: u64, got: u64 },
    #[error("block header field {field} does not match the block's contents")]
    HeaderMismatch { field: &'static str },
    #[error("block has {txs} transactions or {bytes} bytes, more than the limits")]
    BlockTooLarge { txs: usize, bytes: usize },
    #[error("transaction {index} of the block is invalid: {source}")]
    InvalidTxInBlock {
        index: usize,
        source: Box<LedgerError>,
    },
    #[error("block proposer {0} is not in the validator set of this height")]
    UnknownProposer(PublicKey),

    // --- Storage and data -----------------------------------------------------------------
    #[error("storage: {0}")]
    Storage(#[from] crate::store::StoreError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store belongs to a different genesis ({stored}), not {expected}")]
    GenesisMismatch { stored: Hash32, expected: Hash32 },
    #[error("the store was written in store format {found}, and this version reads format {expected}: start on a fresh data directory and let the node sync (or replay the chain)")]
    StoreFormat { found: u32, expected: u32 },
    #[error("invalid genesis: {0}")]
    InvalidGenesis(String),
    #[error("not found: {0}")]
    NotFound(String),
}

impl LedgerError {
    /// A stable, machine-readable code for this error, as returned in
    /// `{"error": {"code", "message"}}`. Codes never change meaning.
    pub fn code(&self) -> &'static str {
        use LedgerError::*;
        match self {
            TxTooLarge { .. } => "tx_too_large",
            MalformedTx(_) => "malformed_tx",
            InvalidField(_) => "invalid_field",
            WrongChainId { .. } => "wrong_chain_id",
            BadSignature { .. } => "bad_signature",
            UnknownSigner { .. } => "unknown_signer",
            RevokedSigner { .. } => "revoked_signer",
            BadNonce { .. } => "bad_nonce",
            RoleNotAllowed { .. } => "role_not_allowed",
            RegionNotAllowed { .. } => "region_not_allowed",
            ProgramNotAllowed { .. } => "program_not_allowed",
            UnknownRegion(_) => "unknown_region",
            UnknownProgram(_) => "unknown_program",
            UnknownOrganisation(_) => "unknown_organisation",
            UnknownBeneficiary(_) => "unknown_beneficiary",
            UnknownAllocation(_) => "unknown_allocation",
            UnknownObjection(_) => "unknown_objection",
            NoBudget { .. } => "no_budget",
            DuplicateProposal(_) => "duplicate_proposal",
            DuplicateEnrolment { .. } => "duplicate_enrolment",
            DuplicateTrackingCode(_) => "duplicate_tracking_code",
            DuplicateKey(_) => "duplicate_key",
            NotEligibleForEnrolment { .. } => "not_eligible_for_enrolment",
            NotEnrolled { .. } => "not_enrolled",
            BeneficiaryInactive { .. } => "beneficiary_inactive",
            BeneficiaryDeceased(_) => "beneficiary_deceased",
            DuplicateAllocation(_) => "duplicate_allocation",
            OverBudget { .. } => "over_budget",
            CeilingBelowAllocated { .. } => "ceiling_below_allocated",
            CeilingAboveParent { .. } => "ceiling_above_parent",
            NoLongerEligible { .. } => "no_longer_eligible",
            StatusChangeNotAllowed(_) => "status_change_not_allowed",
            AlreadyDisbursed(_) => "double_disbursement",
            OverDisbursement { .. } => "over_disbursement",
            NotDisbursed(_) => "not_disbursed",
            AlreadyConfirmed(_) => "already_confirmed",
            AlreadyResolved(_) => "already_resolved",
            ObjectionDeadlinePassed { .. } => "objection_deadline_passed",
            ZeroAmount => "zero_amount",
            CheckpointAhead { .. } => "checkpoint_ahead",
            CheckpointMismatch { .. } => "checkpoint_mismatch",
            Overflow(_) => "overflow",
            ChangeRefused(_) => "change_refused",
            BadActivationHeight { .. } => "bad_activation_height",
            UnknownChange(_) => "unknown_change",
            ChangeClosed(_) => "change_closed",
            AlreadyApproved { .. } => "already_approved",
            PseudonymRekeying { .. } => "pseudonym_rekeying",
            PseudonymLinkRefused(_) => "pseudonym_link_refused",
            ValidatorSetTooSmall { .. } => "validator_set_too_small",
            PowerChangeTooLarge { .. } => "validator_power_change_too_large",
            WrongHeight { .. } => "wrong_height",
            WrongPrevHash { .. } => "wrong_prev_hash",
            TimeNotIncreasing { .. } => "time_not_increasing",
            HeaderMismatch { .. } => "header_mismatch",
            BlockTooLarge { .. } => "block_too_large",
            InvalidTxInBlock { .. } => "invalid_tx_in_block",
            UnknownProposer(_) => "unknown_proposer",
            Storage(_) => "storage",
            Corrupt(_) => "corrupt",
            GenesisMismatch { .. } => "genesis_mismatch",
            StoreFormat { .. } => "store_format",
            InvalidGenesis(_) => "invalid_genesis",
            NotFound(_) => "not_found",
        }
    }
}
