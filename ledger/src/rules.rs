//! The rules of the aid lifecycle: who may take which step, and which steps the state
//! allows. One function, [`execute`], applies one transaction to an [`Overlay`] of the
//! state; it either succeeds or returns the broken rule, and on failure the caller throws
//! the transaction's writes away.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::LedgerError;
use crate::genesis::{is_usable_key, GenesisIndex, OrgKind, Program};
use crate::governance::{self, Members};
use crate::limits::OBJECTION_RESPONSE_WINDOW_MS;
use crate::merkle;
use crate::pseudonyms;
use crate::state::{
    allocation_id, keys, AllocationRecord, BeneficiaryRecord, BudgetRecord, CosignatureRecord,
    DisbursementRecord, EligibilityStatus, EnrolmentRecord, IdentityStatus, KeyHolder, KeyRecord,
    LifeStatus, ObjectionRecord, ReceiptRecord, ResolutionRecord, TrackingRecord,
};
use crate::store::{Column, Store};
use crate::tx::{
    Action, AgentRole, Attestation, BudgetCeiling, ClaimCode, Consequence, ObjectionSubject,
    PaymentChannel, StatusChange, Transaction, Verification,
};
use crate::types::{
    AllocationId, Hash32, ObjectionId, OrgId, PeriodCode, ProgramCode, Pseudonym, PublicKey,
    RegionCode, Rupiah, TimeMs, TrackingCodeHash, TxHash,
};

/// State changes: key → new value, or `None` for a deletion.
pub(crate) type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The state as a block sees it: the store, then the block's committed writes, then the
/// current transaction's writes.
pub(crate) struct Overlay<'a> {
    store: &'a dyn Store,
    block_writes: Writes,
    tx_writes: Writes,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(store: &'a dyn Store) -> Self {
        Overlay {
            store,
            block_writes: Writes::new(),
            tx_writes: Writes::new(),
        }
    }

    fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        if let Some(value) = self.tx_writes.get(key) {
            return Ok(value.clone());
        }
        if let Some(value) = self.block_writes.get(key) {
            return Ok(value.clone());
        }
        Ok(self.store.get(Column::State, key)?)
    }

    pub(crate) fn get<T: BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>, LedgerError> {
        match self.get_raw(key)? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes).map(Some).map_err(|e| {
                LedgerError::Corrupt(format!("state record {}: {e}", hex::encode(key)))
            }),
        }
    }

    fn exists(&self, key: &[u8]) -> Result<bool, LedgerError> {
        Ok(self.get_raw(key)?.is_some())
    }

    pub(crate) fn put<T: BorshSerialize>(&mut self, key: Vec<u8>, value: &T) {
        self.tx_writes
            .insert(key, Some(crate::encode::canonical(value)));
    }

    /// Keeps the current transaction's writes.
    pub(crate) fn commit_tx(&mut self) {
        let writes = std::mem::take(&mut self.tx_writes);
        self.block_writes.extend(writes);
    }

    /// The keys under `prefix` (up to `limit` from the store), as the store, the block's
    /// writes and the transaction's writes together have them, in key order.
    pub(crate) fn keys_under(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, LedgerError> {
        let mut found: std::collections::BTreeSet<Vec<u8>> = self
            .store
            .scan(Column::State, prefix, prefix, limit)?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        for layer in [&self.block_writes, &self.tx_writes] {
            let under = layer
                .range(prefix.to_vec()..)
                .take_while(|(key, _)| key.starts_with(prefix));
            for (key, value) in under {
                if value.is_some() {
                    found.insert(key.clone());
                } else {
                    found.remove(key);
                }
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Throws the current transaction's writes away.
    pub(crate) fn discard_tx(&mut self) {
        self.tx_writes.clear();
    }

    /// The block's writes so far under `prefix`, in key order.
    pub(crate) fn block_writes_under<'b>(
        &'b self,
        prefix: &'b [u8],
    ) -> impl Iterator<Item = (&'b Vec<u8>, &'b Option<Vec<u8>>)> + 'b {
        self.block_writes
            .range(prefix.to_vec()..)
            .take_while(move |(key, _)| key.starts_with(prefix))
    }

    /// Reads a record as it was before the block.
    pub(crate) fn get_before_block<T: BorshDeserialize>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, LedgerError> {
        match self.store.get(Column::State, key)? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes).map(Some).map_err(|e| {
                LedgerError::Corrupt(format!("state record {}: {e}", hex::encode(key)))
            }),
        }
    }

    /// The block's writes, in key order.
    pub(crate) fn into_writes(self) -> Writes {
        self.block_writes
    }
}

/// What a transaction executes against besides the state.
pub(crate) struct TxContext<'a> {
    pub genesis: &'a GenesisIndex,
    /// The organisations at the start of the block (governance changes them only between
    /// blocks).
    pub members: &'a Members,
    /// Whether steps may name beneficiaries by linked pseudonyms (`crate::pseudonyms`).
    pub rekeyed: bool,
    pub store: &'a dyn Store,
    pub time_ms: TimeMs,
    pub tx_hash: TxHash,
    /// The log size before the current block: checkpoints can only name committed sizes.
    pub committed_log_size: u64,
    pub height: u64,
}

/// What the signer of a transaction is, resolved from its key record.
#[derive(Debug, Clone)]
struct Authority {
    /// The signing key (set when a transaction is executed).
    signer: Option<PublicKey>,
    org: Option<(OrgId, OrgKind)>,
    role: SignerRole,
    /// Regions the signer may act in; empty means national scope.
    regions: Vec<RegionCode>,
    /// Programs the signer may pay; empty means all.
    programs: Vec<ProgramCode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignerRole {
    OrgKey,
    Agent(AgentRole),
    Beneficiary(Pseudonym),
}

impl Authority {
    fn describe(&self) -> String {
        let org = self
            .org
            .as_ref()
            .map(|(id, kind)| format!("{} {id}", kind.name()))
            .unwrap_or_else(|| "beneficiary".to_owned());
        match self.role {
            SignerRole::OrgKey => format!("{org} organisation key"),
            SignerRole::Agent(role) => format!("{org} {} agent", role.name()),
            SignerRole::Beneficiary(_) => "beneficiary app key".to_owned(),
        }
    }

    fn kind(&self) -> Option<OrgKind> {
        self.org.as_ref().map(|(_, kind)| *kind)
    }

    fn org_id(&self) -> Result<OrgId, LedgerError> {
        self.org
            .as_ref()
            .map(|(id, _)| id.clone())
            .ok_or_else(|| LedgerError::RoleNotAllowed {
                role: self.describe(),
                action: "act for an institution",
            })
    }

    fn covers(&self, region: &RegionCode) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|scope| region.is_within(scope))
    }

    fn require_region(&self, region: &RegionCode) -> Result<(), LedgerError> {
        if self.covers(region) {
            Ok(())
        } else {
            Err(LedgerError::RegionNotAllowed {
                region: region.to_string(),
            })
        }
    }
}

/// Which organisation kinds and roles may take each step (DESIGN §3, "who signs").
fn permitted(authority: &Authority, action: &Action) -> bool {
    use AgentRole::*;
    use OrgKind::*;
    let kind = authority.kind();
    let role = authority.role;
    // Staff: the organisation's own keys and its operators act with its full authority.
    let staff = matches!(role, SignerRole::OrgKey | SignerRole::Agent(Operator));
    let kind_in = |kinds: &[OrgKind]| kind.map(|k| kinds.contains(&k)).unwrap_or(false);
    match action {
        // A budget binds every region under it: the ministry's own key only, not an agent
        // scoped to a region.
        Action::DeclareBudget { .. } => role == SignerRole::OrgKey && kind_in(&[Kemensos]),
        Action::Enrol { .. } | Action::Allocate { .. } => staff && kind_in(&[Kemensos]),
        Action::Propose { .. } => {
            (kind_in(&[Pemda]) && (staff || matches!(role, SignerRole::Agent(Pendamping | Cadre))))
                || (staff && kind_in(&[Kemensos]))
        }
        Action::CheckIdentity { .. } => staff && kind_in(&[Dukcapil, Kemensos]),
        Action::VerifyEligibility { .. } => staff && kind_in(&[Pemda, Bps]),
        Action::Disburse { .. } => {
            kind_in(&[Bank, Pos]) && (staff || role == SignerRole::Agent(BankOfficer))
        }
        Action::ConfirmReceipt { .. } => matches!(
            role,
            SignerRole::Beneficiary(_) | SignerRole::Agent(Pendamping)
        ),
        Action::FileObjection { .. } => kind.is_some(),
        Action::ResolveObjection { .. } => staff && kind_in(&[Pemda, Kemensos]),
        // A death record is the civil registry's to correct (Kemensos on its behalf).
        Action::ChangeStatus {
            change: StatusChange::DeathRecordCorrected,
            ..
        } => staff && kind_in(&[Dukcapil, Kemensos]),
        Action::ChangeStatus { change, .. } => {
            staff
                && (kind_in(&[Pemda, Kemensos])
                    || (kind_in(&[Dukcapil])
                        && matches!(change, StatusChange::Deceased | StatusChange::Moved { .. })))
        }
        Action::Attest { .. } => staff && kind_in(&[Auditor]),
        Action::RegisterAgent { .. } => role == SignerRole::OrgKey,
        // An organisation revokes its agents and its other keys; a beneficiary (or the
        // ministry, for a lost phone) revokes the beneficiary's app key.
        Action::RevokeAgent { .. } => {
            matches!(role, SignerRole::OrgKey | SignerRole::Beneficiary(_))
        }
        // An institution's key or agent may give up its own next nonce: it changes nothing
        // else. Not a beneficiary's app key: every other step it may take needs a payment
        // first, so it cannot fill blocks with steps of its own.
        Action::SkipNonce {} => kind.is_some(),
        // Governance is the institutions' own business: their own keys, not agents.
        Action::ProposeChange { .. } | Action::ApproveChange { .. } => {
            role == SignerRole::OrgKey && kind.is_some()
        }
        // The pseudonym service's organisation (checked with the state), its own key.
        Action::LinkPseudonyms { .. } => role == SignerRole::OrgKey && kind.is_some(),
    }
}

fn resolve_authority(members: &Members, holder: &KeyHolder) -> Result<Authority, LedgerError> {
    // An organisation as it stands now: a removed one's keys and agents act no more.
    let org_of = |id: &OrgId| {
        members
            .get(id)
            .ok_or_else(|| LedgerError::UnknownOrganisation(id.clone()))
    };
    Ok(match holder {
        KeyHolder::Organisation { org } => {
            let spec = org_of(org)?;
            Authority {
                signer: None,
                org: Some((org.clone(), spec.kind)),
                role: SignerRole::OrgKey,
                regions: spec.regions.clone(),
                programs: spec.programs.clone(),
            }
        }
        KeyHolder::Agent { org, role, regions } => {
            let spec = org_of(org)?;
            Authority {
                signer: None,
                org: Some((org.clone(), spec.kind)),
                role: SignerRole::Agent(*role),
                regions: regions.clone(),
                programs: spec.programs.clone(),
            }
        }
        KeyHolder::Beneficiary { beneficiary } => Authority {
            signer: None,
            org: None,
            role: SignerRole::Beneficiary(*beneficiary),
            regions: Vec::new(),
            programs: Vec::new(),
        },
    })
}

/// Checks the signer's key record and nonce without changing anything: what a mempool can
/// check on admission. Returns the key record.
pub(crate) fn check_signer(
    overlay: &Overlay<'_>,
    tx: &Transaction,
    nonce_must_match: bool,
) -> Result<KeyRecord, LedgerError> {
    let signer = tx.body.signer;
    let record: KeyRecord = overlay
        .get(&keys::signer(&signer))?
        .ok_or(LedgerError::UnknownSigner { signer })?;
    if record.revoked {
        return Err(LedgerError::RevokedSigner { signer });
    }
    let nonce_ok = if nonce_must_match {
        tx.body.nonce == record.next_nonce
    } else {
        tx.body.nonce >= record.next_nonce
    };
    if !nonce_ok {
        return Err(LedgerError::BadNonce {
            signer,
            expected: record.next_nonce,
            got: tx.body.nonce,
        });
    }
    Ok(record)
}

/// Checks that the signer's role may take this step at all (before any state lookup of the
/// step itself), for admission.
pub(crate) fn check_role(
    members: &Members,
    record: &KeyRecord,
    action: &Action,
) -> Result<(), LedgerError> {
    let authority = resolve_authority(members, &record.holder)?;
    if permitted(&authority, action) {
        Ok(())
    } else {
        Err(LedgerError::RoleNotAllowed {
            role: authority.describe(),
            action: action.name(),
        })
    }
}

fn beneficiary(
    overlay: &Overlay<'_>,
    pseudonym: &Pseudonym,
) -> Result<BeneficiaryRecord, LedgerError> {
    overlay
        .get(&keys::beneficiary(pseudonym))?
        .ok_or(LedgerError::UnknownBeneficiary(*pseudonym))
}

fn allocation(overlay: &Overlay<'_>, id: &Hash32) -> Result<AllocationRecord, LedgerError> {
    overlay
        .get(&keys::allocation(id))?
        .ok_or(LedgerError::UnknownAllocation(*id))
}

/// The program is in the state (from genesis, or added by governance).
fn require_program(overlay: &Overlay<'_>, program: &ProgramCode) -> Result<(), LedgerError> {
    if overlay.get::<Program>(&keys::program(program))?.is_some() {
        Ok(())
    } else {
        Err(LedgerError::UnknownProgram(program.to_string()))
    }
}

fn require_region_known(genesis: &GenesisIndex, region: &RegionCode) -> Result<(), LedgerError> {
    if genesis.has_region(region) {
        Ok(())
    } else {
        Err(LedgerError::UnknownRegion(region.to_string()))
    }
}

fn require_active(pseudonym: &Pseudonym, record: &BeneficiaryRecord) -> Result<(), LedgerError> {
    if record.status == LifeStatus::Active {
        Ok(())
    } else {
        Err(LedgerError::BeneficiaryInactive {
            beneficiary: *pseudonym,
            status: record.status.name(),
        })
    }
}

/// Refuses a beneficiary whose identity check or eligibility changed for the worse after
/// enrolment (a later failed check, a rejection on re-verification).
fn require_still_eligible(
    pseudonym: &Pseudonym,
    record: &BeneficiaryRecord,
) -> Result<(), LedgerError> {
    if record.identity != IdentityStatus::Passed {
        return Err(LedgerError::NoLongerEligible {
            beneficiary: *pseudonym,
            reason: "the identity check no longer passes",
        });
    }
    if record.eligibility != EligibilityStatus::Verified {
        return Err(LedgerError::NoLongerEligible {
            beneficiary: *pseudonym,
            reason: "eligibility is no longer verified",
        });
    }
    Ok(())
}

fn require_not_deceased(
    pseudonym: &Pseudonym,
    record: &BeneficiaryRecord,
) -> Result<(), LedgerError> {
    if record.status == LifeStatus::Deceased {
        Err(LedgerError::BeneficiaryDeceased(*pseudonym))
    } else {
        Ok(())
    }
}

/// Applies one transaction whose form and signature have been checked. On success the
/// writes are in the overlay's transaction layer and the return value names the
/// beneficiary the step concerns (for the tracking index); on error the caller discards
/// the transaction's writes.
pub(crate) fn execute(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    tx: &Transaction,
) -> Result<Option<Pseudonym>, LedgerError> {
    let record = check_signer(overlay, tx, true)?;
    let mut authority = resolve_authority(ctx.members, &record.holder)?;
    authority.signer = Some(tx.body.signer);
    let action = &tx.body.action;
    if !permitted(&authority, action) {
        return Err(LedgerError::RoleNotAllowed {
            role: authority.describe(),
            action: action.name(),
        });
    }
    let canonical = if ctx.rekeyed {
        pseudonyms::canonical_action(overlay, action)?
    } else {
        None
    };
    let touched = apply_action(
        overlay,
        ctx,
        &authority,
        canonical.as_ref().unwrap_or(action),
    )?;
    // The nonce advances only with a successful step, so a refused transaction leaves the
    // signer able to retry with the same nonce. The record is read again: the step may have
    // changed it (a beneficiary revoking its own key).
    let mut record: KeyRecord = overlay
        .get(&keys::signer(&tx.body.signer))?
        .unwrap_or(record);
    record.next_nonce = record
        .next_nonce
        .checked_add(1)
        .ok_or(LedgerError::Overflow("nonce"))?;
    overlay.put(keys::signer(&tx.body.signer), &record);
    Ok(touched)
}

/// Dispatches one step of the lifecycle to the function that applies it.
fn apply_action(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    action: &Action,
) -> Result<Option<Pseudonym>, LedgerError> {
    match action {
        Action::DeclareBudget {
            program,
            period,
            ceilings,
        } => declare_budget(overlay, ctx, authority, program, period, ceilings),
        Action::Propose {
            beneficiary,
            region,
            household_size,
            welfare_decile,
        } => propose(
            overlay,
            ctx,
            authority,
            beneficiary,
            region,
            *household_size,
            *welfare_decile,
        ),
        Action::CheckIdentity {
            beneficiary: pseudonym,
            passed,
            ..
        } => check_identity(overlay, authority, pseudonym, *passed),
        Action::VerifyEligibility {
            beneficiary: pseudonym,
            outcome,
        } => verify_eligibility(overlay, authority, pseudonym, outcome),
        Action::Enrol {
            beneficiary: pseudonym,
            program,
            tracking_code_hash,
            beneficiary_key,
        } => enrol(
            overlay,
            ctx,
            authority,
            pseudonym,
            program,
            tracking_code_hash,
            beneficiary_key,
        ),
        Action::Allocate {
            beneficiary: pseudonym,
            program,
            period,
            amount,
        } => allocate(overlay, ctx, authority, pseudonym, program, period, *amount),
        Action::Disburse {
            allocation: id,
            amount,
            channel,
            account_ref_hash,
        } => disburse(
            overlay,
            ctx,
            authority,
            id,
            *amount,
            *channel,
            account_ref_hash,
        ),
        Action::ConfirmReceipt {
            allocation: id,
            received,
        } => confirm_receipt(overlay, ctx, authority, id, *received),
        Action::FileObjection {
            subject,
            claim,
            evidence_hash,
        } => file_objection(overlay, ctx, authority, subject, *claim, evidence_hash),
        Action::ResolveObjection {
            objection: id,
            upheld,
            consequence,
        } => resolve_objection(overlay, ctx, authority, id, *upheld, *consequence),
        Action::ChangeStatus {
            beneficiary: pseudonym,
            change,
        } => change_status(overlay, ctx, authority, pseudonym, change),
        Action::Attest { attestation } => attest(overlay, ctx, authority, attestation),
        Action::RegisterAgent { key, role, regions } => {
            register_agent(overlay, ctx, authority, key, *role, regions)
        }
        Action::RevokeAgent { key } => revoke_agent(overlay, authority, key),
        // Only the nonce advances, in `execute`.
        Action::SkipNonce {} => Ok(None),
        Action::ProposeChange { .. } | Action::ApproveChange { .. } => {
            governance_action(overlay, ctx, authority, action)
        }
        Action::LinkPseudonyms { .. } => link_pseudonyms(overlay, authority, action),
    }
}

/// The pseudonym service's organisation links beneficiaries to their new pseudonyms.
fn link_pseudonyms(
    overlay: &mut Overlay<'_>,
    authority: &Authority,
    action: &Action,
) -> Result<Option<Pseudonym>, LedgerError> {
    let Action::LinkPseudonyms {
        key_version,
        links,
        complete,
    } = action
    else {
        unreachable!("only link_pseudonyms is routed here")
    };
    pseudonyms::link(
        overlay,
        &authority.org_id()?,
        *key_version,
        links,
        *complete,
    )?;
    Ok(None)
}

/// An institution proposes or approves a change to the consortium.
fn governance_action(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    action: &Action,
) -> Result<Option<Pseudonym>, LedgerError> {
    let org = authority.org_id()?;
    match action {
        Action::ProposeChange {
            change,
            activation_height,
        } => {
            let signer = (ctx.tx_hash, org, ctx.height);
            governance::propose(overlay, ctx.genesis, signer, change, *activation_height)?
        }
        Action::ApproveChange { change } => governance::approve(overlay, change, org, ctx.height)?,
        _ => unreachable!("only governance actions are routed here"),
    }
    Ok(None)
}

/// Records a program period's budget ceiling per region, enforcing that the program is
/// known (from genesis or a governance change) and that a revision is never below what is
/// already allocated.
fn declare_budget(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    program: &ProgramCode,
    period: &PeriodCode,
    ceilings: &[BudgetCeiling],
) -> Result<Option<Pseudonym>, LedgerError> {
    let genesis = ctx.genesis;
    require_program(overlay, program)?;
    for ceiling in ceilings {
        require_region_known(genesis, &ceiling.region)?;
        authority.require_region(&ceiling.region)?;
        let key = keys::budget(program, period, &ceiling.region);
        let allocated = overlay
            .get::<BudgetRecord>(&key)?
            .map(|b| b.allocated)
            .unwrap_or_default();
        // A revision may raise or lower the ceiling, never below what is already
        // promised to beneficiaries.
        if ceiling.ceiling < allocated {
            return Err(LedgerError::CeilingBelowAllocated {
                ceiling: ceiling.ceiling,
                allocated,
            });
        }
        // A region's ceiling fits inside every enclosing region's.
        for (parent_region, _, parent) in budgets_above(overlay, program, period, &ceiling.region)?
        {
            if parent_region != ceiling.region && ceiling.ceiling > parent.ceiling {
                return Err(LedgerError::CeilingAboveParent {
                    ceiling: ceiling.ceiling,
                    parent_region: parent_region.to_string(),
                    parent_ceiling: parent.ceiling,
                });
            }
        }
        overlay.put(
            key,
            &BudgetRecord {
                ceiling: ceiling.ceiling,
                allocated,
            },
        );
    }
    Ok(None)
}

/// Records a proposed (usul) beneficiary in a known region within the signer's scope,
/// enforcing that the pseudonym has not been proposed before.
fn propose(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    beneficiary: &Pseudonym,
    region: &RegionCode,
    household_size: u8,
    welfare_decile: u8,
) -> Result<Option<Pseudonym>, LedgerError> {
    require_region_known(ctx.genesis, region)?;
    authority.require_region(region)?;
    let key = keys::beneficiary(beneficiary);
    if overlay.exists(&key)? {
        return Err(LedgerError::DuplicateProposal(*beneficiary));
    }
    pseudonyms::require_intake_open(overlay)?;
    pseudonyms::count_beneficiary(overlay)?;
    let record = BeneficiaryRecord {
        region: region.clone(),
        household_size,
        welfare_decile,
        proposed_by: authority.org_id()?,
        proposed_at: ctx.time_ms,
        identity: IdentityStatus::Unchecked,
        eligibility: EligibilityStatus::Pending,
        status: LifeStatus::Active,
        status_set_by: None,
    };
    overlay.put(key, &record);
    Ok(Some(*beneficiary))
}

/// Records the outcome of an identity check, enforcing that the beneficiary exists, is in
/// the signer's regions and is not deceased.
fn check_identity(
    overlay: &mut Overlay<'_>,
    authority: &Authority,
    pseudonym: &Pseudonym,
    passed: bool,
) -> Result<Option<Pseudonym>, LedgerError> {
    let mut record = beneficiary(overlay, pseudonym)?;
    authority.require_region(&record.region)?;
    require_not_deceased(pseudonym, &record)?;
    record.identity = if passed {
        IdentityStatus::Passed
    } else {
        IdentityStatus::Failed
    };
    overlay.put(keys::beneficiary(pseudonym), &record);
    Ok(Some(*pseudonym))
}

/// Records an eligibility verification or rejection, enforcing that the beneficiary exists,
/// is in the signer's regions and is not deceased.
fn verify_eligibility(
    overlay: &mut Overlay<'_>,
    authority: &Authority,
    pseudonym: &Pseudonym,
    outcome: &Verification,
) -> Result<Option<Pseudonym>, LedgerError> {
    let mut record = beneficiary(overlay, pseudonym)?;
    authority.require_region(&record.region)?;
    require_not_deceased(pseudonym, &record)?;
    record.eligibility = match outcome {
        Verification::Verified => EligibilityStatus::Verified,
        Verification::Rejected { reason_code } => EligibilityStatus::Rejected {
            reason_code: *reason_code,
        },
    };
    overlay.put(keys::beneficiary(pseudonym), &record);
    Ok(Some(*pseudonym))
}

/// Records an enrolment with its tracking code (and the beneficiary's app key, if any),
/// enforcing a passed identity check, verified eligibility, an active beneficiary and no
/// earlier enrolment in the program.
fn enrol(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    pseudonym: &Pseudonym,
    program: &ProgramCode,
    tracking_code_hash: &TrackingCodeHash,
    beneficiary_key: &Option<PublicKey>,
) -> Result<Option<Pseudonym>, LedgerError> {
    require_program(overlay, program)?;
    let record = beneficiary(overlay, pseudonym)?;
    authority.require_region(&record.region)?;
    require_active(pseudonym, &record)?;
    if record.identity != IdentityStatus::Passed {
        return Err(LedgerError::NotEligibleForEnrolment {
            beneficiary: *pseudonym,
            reason: "the identity check has not passed",
        });
    }
    if record.eligibility != EligibilityStatus::Verified {
        return Err(LedgerError::NotEligibleForEnrolment {
            beneficiary: *pseudonym,
            reason: "eligibility has not been verified",
        });
    }
    let enrolment_key = keys::enrolment(pseudonym, program);
    if overlay.exists(&enrolment_key)? {
        return Err(LedgerError::DuplicateEnrolment {
            beneficiary: *pseudonym,
            program: program.to_string(),
        });
    }
    let tracking_key = keys::tracking(tracking_code_hash);
    if overlay.exists(&tracking_key)? {
        return Err(LedgerError::DuplicateTrackingCode(*tracking_code_hash));
    }
    if let Some(app_key) = beneficiary_key {
        if !is_usable_key(app_key) {
            return Err(LedgerError::InvalidField(
                "beneficiary_key is not a valid ed25519 key".into(),
            ));
        }
        let key = keys::signer(app_key);
        if overlay.exists(&key)? {
            return Err(LedgerError::DuplicateKey(*app_key));
        }
        overlay.put(
            key,
            &KeyRecord {
                holder: KeyHolder::Beneficiary {
                    beneficiary: *pseudonym,
                },
                next_nonce: 0,
                revoked: false,
            },
        );
    }
    overlay.put(
        enrolment_key,
        &EnrolmentRecord {
            tracking_code_hash: *tracking_code_hash,
            beneficiary_key: *beneficiary_key,
            enrolled_at: ctx.time_ms,
        },
    );
    overlay.put(
        tracking_key,
        &TrackingRecord {
            beneficiary: *pseudonym,
            program: program.clone(),
        },
    );
    Ok(Some(*pseudonym))
}

/// Records an allocation for one program period and charges it to the budget, enforcing an
/// active, enrolled beneficiary, one allocation per program period, and the ceiling of the
/// nearest enclosing region with a budget and of every region above it that has one.
fn allocate(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    pseudonym: &Pseudonym,
    program: &ProgramCode,
    period: &PeriodCode,
    amount: Rupiah,
) -> Result<Option<Pseudonym>, LedgerError> {
    require_program(overlay, program)?;
    let record = beneficiary(overlay, pseudonym)?;
    authority.require_region(&record.region)?;
    require_active(pseudonym, &record)?;
    require_still_eligible(pseudonym, &record)?;
    if !overlay.exists(&keys::enrolment(pseudonym, program))? {
        return Err(LedgerError::NotEnrolled {
            beneficiary: *pseudonym,
            program: program.to_string(),
        });
    }
    let id = allocation_id(pseudonym, program, period);
    if overlay.exists(&keys::allocation(&id))? {
        return Err(LedgerError::DuplicateAllocation(id));
    }
    let budget_region = charge_budgets(overlay, program, period, &record.region, amount)?;
    overlay.put(
        keys::allocation(&id),
        &AllocationRecord {
            beneficiary: *pseudonym,
            program: program.clone(),
            period: period.clone(),
            amount,
            budget_region,
            village: record.region.clone(),
            allocated_at: ctx.time_ms,
            disbursement: None,
            receipt: None,
            beneficiary_statement: None,
        },
    );
    Ok(Some(*pseudonym))
}

/// Every declared budget of (program, period) for `region` and the regions enclosing it,
/// nearest first, as (region, state key, record).
fn budgets_above(
    overlay: &Overlay<'_>,
    program: &ProgramCode,
    period: &PeriodCode,
    region: &RegionCode,
) -> Result<Vec<(RegionCode, Vec<u8>, BudgetRecord)>, LedgerError> {
    let mut found = Vec::new();
    let mut next = Some(region.clone());
    while let Some(candidate) = next {
        let key = keys::budget(program, period, &candidate);
        if let Some(record) = overlay.get::<BudgetRecord>(&key)? {
            found.push((candidate.clone(), key, record));
        }
        next = candidate.parent();
    }
    Ok(found)
}

/// Charges `amount` to the budget of every region enclosing `beneficiary_region` that has
/// one (checked arithmetic), refusing if any ceiling would be passed: a village budget
/// cannot be used to get around its regency's. Returns the nearest budget's region.
fn charge_budgets(
    overlay: &mut Overlay<'_>,
    program: &ProgramCode,
    period: &PeriodCode,
    beneficiary_region: &RegionCode,
    amount: Rupiah,
) -> Result<RegionCode, LedgerError> {
    let budgets = budgets_above(overlay, program, period, beneficiary_region)?;
    let Some((nearest, _, _)) = budgets.first() else {
        return Err(LedgerError::NoBudget {
            program: program.to_string(),
            period: period.to_string(),
            region: beneficiary_region.to_string(),
        });
    };
    let nearest = nearest.clone();
    let mut charged = Vec::with_capacity(budgets.len());
    for (_, key, mut record) in budgets {
        let total = record
            .allocated
            .checked_add(amount)
            .ok_or(LedgerError::Overflow("budget"))?;
        if total > record.ceiling {
            return Err(LedgerError::OverBudget {
                ceiling: record.ceiling,
                allocated: record.allocated,
                amount,
            });
        }
        record.allocated = total;
        charged.push((key, record));
    }
    for (key, record) in charged {
        overlay.put(key, &record);
    }
    Ok(nearest)
}

/// Records the payment of an allocation, enforcing the payer's region and program scope,
/// one payment per allocation, an amount no larger than allocated and an active
/// beneficiary.
fn disburse(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    id: &AllocationId,
    amount: Rupiah,
    channel: PaymentChannel,
    account_ref_hash: &Hash32,
) -> Result<Option<Pseudonym>, LedgerError> {
    let mut record = allocation(overlay, id)?;
    let person = beneficiary(overlay, &record.beneficiary)?;
    authority.require_region(&person.region)?;
    if !authority.programs.is_empty() && !authority.programs.contains(&record.program) {
        return Err(LedgerError::ProgramNotAllowed {
            program: record.program.to_string(),
        });
    }
    if record.disbursement.is_some() {
        return Err(LedgerError::AlreadyDisbursed(*id));
    }
    if amount > record.amount {
        return Err(LedgerError::OverDisbursement {
            allocated: record.amount,
            amount,
        });
    }
    // Paying someone who has since died or been suspended is the classic leak.
    if person.status != LifeStatus::Active {
        return Err(LedgerError::BeneficiaryInactive {
            beneficiary: record.beneficiary,
            status: person.status.name(),
        });
    }
    require_still_eligible(&record.beneficiary, &person)?;
    record.disbursement = Some(DisbursementRecord {
        amount,
        paid_by: authority.org_id()?,
        channel,
        account_ref_hash: *account_ref_hash,
        paid_at: ctx.time_ms,
    });
    overlay.put(keys::allocation(id), &record);
    Ok(Some(record.beneficiary))
}

/// Records whether a payment was received, enforcing that only the beneficiary's own app
/// key or a pendamping in their region confirms, after disbursement, once each: a
/// pendamping's confirmation never silences the beneficiary's own later statement.
fn confirm_receipt(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    id: &AllocationId,
    received: bool,
) -> Result<Option<Pseudonym>, LedgerError> {
    let mut record = allocation(overlay, id)?;
    let by_beneficiary = match authority.role {
        SignerRole::Beneficiary(own) if own == record.beneficiary => true,
        SignerRole::Beneficiary(_) => {
            return Err(LedgerError::RoleNotAllowed {
                role: authority.describe(),
                action: "confirm another beneficiary's receipt",
            })
        }
        _ => {
            let person = beneficiary(overlay, &record.beneficiary)?;
            authority.require_region(&person.region)?;
            false
        }
    };
    if record.disbursement.is_none() {
        return Err(LedgerError::NotDisbursed(*id));
    }
    let statement = ReceiptRecord {
        received,
        by_beneficiary,
        confirmed_at: ctx.time_ms,
    };
    match &record.receipt {
        None => record.receipt = Some(statement),
        // The beneficiary's own word after a pendamping's: always recorded, beside it.
        Some(first)
            if by_beneficiary
                && !first.by_beneficiary
                && record.beneficiary_statement.is_none() =>
        {
            record.beneficiary_statement = Some(statement)
        }
        Some(_) => return Err(LedgerError::AlreadyConfirmed(*id)),
    }
    overlay.put(keys::allocation(id), &record);
    Ok(Some(record.beneficiary))
}

/// Records an objection (sanggah) under the transaction's hash, enforcing that its subject
/// exists and setting its deadline to filing time plus the response window.
fn file_objection(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    subject: &ObjectionSubject,
    claim: ClaimCode,
    evidence_hash: &Hash32,
) -> Result<Option<Pseudonym>, LedgerError> {
    let now = ctx.time_ms;
    let pseudonym = match subject {
        ObjectionSubject::Beneficiary(pseudonym) => {
            beneficiary(overlay, pseudonym)?;
            *pseudonym
        }
        ObjectionSubject::Allocation(id) => allocation(overlay, id)?.beneficiary,
    };
    let deadline = now
        .checked_add(OBJECTION_RESPONSE_WINDOW_MS)
        .ok_or(LedgerError::Overflow("deadline"))?;
    let record = ObjectionRecord {
        subject: *subject,
        beneficiary: pseudonym,
        claim,
        evidence_hash: *evidence_hash,
        filed_by: authority.org_id()?,
        filed_at: now,
        deadline,
        resolution: None,
    };
    overlay.put(keys::objection(&ctx.tx_hash), &record);
    Ok(Some(pseudonym))
}

/// Records the resolution of an objection (suspending the beneficiary if so decided),
/// enforcing that it is resolved once, and by the region's Pemda only before the deadline.
fn resolve_objection(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    id: &ObjectionId,
    upheld: bool,
    consequence: Consequence,
) -> Result<Option<Pseudonym>, LedgerError> {
    let now = ctx.time_ms;
    let mut record: ObjectionRecord = overlay
        .get(&keys::objection(id))?
        .ok_or(LedgerError::UnknownObjection(*id))?;
    if record.resolution.is_some() {
        return Err(LedgerError::AlreadyResolved(*id));
    }
    let mut person = beneficiary(overlay, &record.beneficiary)?;
    authority.require_region(&person.region)?;
    // After the response window the regional office has lost the case: it escalates
    // to the ministry, which alone may resolve it from then on.
    if now > record.deadline && authority.kind() != Some(OrgKind::Kemensos) {
        return Err(LedgerError::ObjectionDeadlinePassed { objection: *id });
    }
    if !upheld && consequence != Consequence::None {
        return Err(LedgerError::InvalidField(
            "a dismissed objection can have no consequence".into(),
        ));
    }
    if upheld
        && consequence == Consequence::SuspendBeneficiary
        && person.status == LifeStatus::Active
    {
        person.status = LifeStatus::Suspended;
        person.status_set_by = authority.kind();
        overlay.put(keys::beneficiary(&record.beneficiary), &person);
    }
    record.resolution = Some(ResolutionRecord {
        upheld,
        consequence,
        resolved_by: authority.org_id()?,
        resolved_at: now,
    });
    let pseudonym = record.beneficiary;
    overlay.put(keys::objection(id), &record);
    Ok(Some(pseudonym))
}

/// Records a change in a beneficiary's status or region, enforcing that the beneficiary is
/// in the signer's regions, that only a correction leaves `deceased`, that a suspension or
/// graduation set by the ministry is lifted by the ministry only, and that a move goes to a
/// known region within the signer's scope.
fn change_status(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    pseudonym: &Pseudonym,
    change: &StatusChange,
) -> Result<Option<Pseudonym>, LedgerError> {
    let mut record = beneficiary(overlay, pseudonym)?;
    authority.require_region(&record.region)?;
    if *change == StatusChange::DeathRecordCorrected {
        if record.status != LifeStatus::Deceased {
            return Err(LedgerError::StatusChangeNotAllowed(
                "only a recorded death can be corrected",
            ));
        }
    } else {
        require_not_deceased(pseudonym, &record)?;
    }
    let set = |record: &mut BeneficiaryRecord, status| {
        record.status = status;
        record.status_set_by = if status == LifeStatus::Active {
            None
        } else {
            authority.kind()
        };
    };
    match change {
        StatusChange::Deceased => set(&mut record, LifeStatus::Deceased),
        StatusChange::Graduated => set(&mut record, LifeStatus::Graduated),
        StatusChange::Suspended => set(&mut record, LifeStatus::Suspended),
        StatusChange::Reinstated => {
            require_may_reinstate(authority, &record)?;
            set(&mut record, LifeStatus::Active)
        }
        StatusChange::DeathRecordCorrected => set(&mut record, LifeStatus::Active),
        StatusChange::Moved { to } => {
            require_region_known(ctx.genesis, to)?;
            authority.require_region(to)?;
            record.region = to.clone();
        }
    }
    overlay.put(keys::beneficiary(pseudonym), &record);
    Ok(Some(*pseudonym))
}

/// Who may undo what: a suspension is lifted by whoever may suspend, unless the ministry
/// imposed it (directly or by upholding an objection); a graduation is undone by the
/// ministry only.
fn require_may_reinstate(
    authority: &Authority,
    record: &BeneficiaryRecord,
) -> Result<(), LedgerError> {
    let ministry = authority.kind() == Some(OrgKind::Kemensos);
    match record.status {
        LifeStatus::Suspended if record.status_set_by == Some(OrgKind::Kemensos) && !ministry => {
            Err(LedgerError::StatusChangeNotAllowed(
                "a suspension imposed by the ministry is lifted by the ministry only",
            ))
        }
        LifeStatus::Suspended => Ok(()),
        LifeStatus::Graduated if ministry => Ok(()),
        LifeStatus::Graduated => Err(LedgerError::StatusChangeNotAllowed(
            "a graduation is undone by the ministry only",
        )),
        LifeStatus::Active | LifeStatus::Deceased => Err(LedgerError::StatusChangeNotAllowed(
            "only a suspended or graduated beneficiary can be reinstated",
        )),
    }
}

/// Records an auditor's cosignature of a checkpoint, enforcing that it matches the log at
/// a committed size; a finding is only checked to name a height the chain has reached.
fn attest(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    attestation: &Attestation,
) -> Result<Option<Pseudonym>, LedgerError> {
    match attestation {
        Attestation::Checkpoint { size, root } => {
            if *size > ctx.committed_log_size {
                return Err(LedgerError::CheckpointAhead {
                    size: *size,
                    log_size: ctx.committed_log_size,
                });
            }
            let actual = merkle::root_at(&crate::log_store::StoreLog::new(ctx.store), *size)
                .map_err(|e| LedgerError::Corrupt(format!("log: {e}")))?;
            if actual != root.0 {
                return Err(LedgerError::CheckpointMismatch { size: *size });
            }
            let org = authority.org_id()?;
            let kind = authority.kind().unwrap_or(OrgKind::Auditor);
            overlay.put(
                keys::cosignature(*size, &org),
                &CosignatureRecord {
                    root: *root,
                    tx_hash: ctx.tx_hash,
                    org_kind: kind,
                },
            );
        }
        Attestation::Finding { height, .. } => {
            if *height > ctx.height {
                return Err(LedgerError::InvalidField(format!(
                    "finding names height {height}, beyond the chain"
                )));
            }
        }
    }
    Ok(None)
}

/// Records an agent key under the signing organisation, enforcing a role that fits the
/// organisation, a usable and unused key, and regions known and within the organisation's.
fn register_agent(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    key: &PublicKey,
    role: AgentRole,
    regions: &[RegionCode],
) -> Result<Option<Pseudonym>, LedgerError> {
    let (_, kind) = authority.org.clone().ok_or(LedgerError::RoleNotAllowed {
        role: authority.describe(),
        action: "register_agent",
    })?;
    let role_fits = match role {
        AgentRole::BankOfficer => matches!(kind, OrgKind::Bank | OrgKind::Pos),
        AgentRole::Pendamping | AgentRole::Cadre => {
            matches!(kind, OrgKind::Pemda | OrgKind::Kemensos)
        }
        AgentRole::Operator => true,
    };
    if !role_fits {
        return Err(LedgerError::RoleNotAllowed {
            role: format!("{} organisation", kind.name()),
            action: "register an agent of this role",
        });
    }
    if !is_usable_key(key) {
        return Err(LedgerError::InvalidField(
            "agent key is not a valid ed25519 key".into(),
        ));
    }
    for region in regions {
        require_region_known(ctx.genesis, region)?;
        authority.require_region(region)?;
    }
    let record_key = keys::signer(key);
    if overlay.exists(&record_key)? {
        return Err(LedgerError::DuplicateKey(*key));
    }
    let holder = KeyHolder::Agent {
        org: authority.org_id()?,
        role,
        regions: regions.to_vec(),
    };
    overlay.put(
        record_key,
        &KeyRecord {
            holder,
            next_nonce: 0,
            revoked: false,
        },
    );
    Ok(None)
}

/// Records the revocation of a key (the action keeps its historic name): an organisation
/// revokes its own agents' keys and its own other keys (never the key signing), a
/// beneficiary its own app key, and the ministry any beneficiary's app key (a lost phone).
/// A revoked key is refused from the next transaction on; its history stays valid.
fn revoke_agent(
    overlay: &mut Overlay<'_>,
    authority: &Authority,
    key: &PublicKey,
) -> Result<Option<Pseudonym>, LedgerError> {
    let record_key = keys::signer(key);
    let mut record: KeyRecord = overlay
        .get(&record_key)?
        .ok_or(LedgerError::UnknownSigner { signer: *key })?;
    let own_org = authority.org.as_ref().map(|(id, _)| id);
    let allowed = match (&record.holder, authority.role) {
        (KeyHolder::Agent { org, .. }, SignerRole::OrgKey) => Some(org) == own_org,
        (KeyHolder::Organisation { org }, SignerRole::OrgKey) => {
            Some(org) == own_org && Some(*key) != authority.signer
        }
        (KeyHolder::Beneficiary { beneficiary }, SignerRole::Beneficiary(own)) => {
            *beneficiary == own
        }
        (KeyHolder::Beneficiary { .. }, SignerRole::OrgKey) => {
            authority.kind() == Some(OrgKind::Kemensos)
        }
        _ => false,
    };
    if !allowed {
        return Err(LedgerError::RoleNotAllowed {
            role: authority.describe(),
            action: "revoke a key it does not answer for",
        });
    }
    if record.revoked {
        return Err(LedgerError::RevokedSigner { signer: *key });
    }
    record.revoked = true;
    overlay.put(record_key, &record);
    Ok(None)
}
