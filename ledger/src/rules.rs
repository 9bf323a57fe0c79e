//! The rules of the aid lifecycle: who may take which step, and which steps the state
//! allows. One function, [`execute`], applies one transaction to an [`Overlay`] of the
//! state; it either succeeds or returns the broken rule, and on failure the caller throws
//! the transaction's writes away.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::LedgerError;
use crate::genesis::{is_usable_key, GenesisIndex, OrgKind};
use crate::limits::OBJECTION_RESPONSE_WINDOW_MS;
use crate::merkle;
use crate::state::{
    allocation_id, keys, AllocationRecord, BeneficiaryRecord, BudgetRecord, CosignatureRecord,
    DisbursementRecord, EligibilityStatus, EnrolmentRecord, IdentityStatus, KeyHolder, KeyRecord,
    LifeStatus, ObjectionRecord, ReceiptRecord, ResolutionRecord, TrackingRecord,
};
use crate::store::{Column, Store};
use crate::tx::{
    Action, AgentRole, Attestation, Consequence, ObjectionSubject, StatusChange, Transaction,
    Verification,
};
use crate::types::{Hash32, OrgId, ProgramCode, Pseudonym, RegionCode, TimeMs, TxHash};

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
            .insert(key, Some(borsh::to_vec(value).unwrap_or_default()));
    }

    /// Keeps the current transaction's writes.
    pub(crate) fn commit_tx(&mut self) {
        let writes = std::mem::take(&mut self.tx_writes);
        self.block_writes.extend(writes);
    }

    /// Throws the current transaction's writes away.
    pub(crate) fn discard_tx(&mut self) {
        self.tx_writes.clear();
    }

    /// The block's writes, in key order.
    pub(crate) fn into_writes(self) -> Writes {
        self.block_writes
    }
}

/// What a transaction executes against besides the state.
pub(crate) struct TxContext<'a> {
    pub genesis: &'a GenesisIndex,
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
        Action::DeclareBudget { .. } | Action::Enrol { .. } | Action::Allocate { .. } => {
            staff && kind_in(&[Kemensos])
        }
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
        Action::ChangeStatus { change, .. } => {
            staff
                && (kind_in(&[Pemda, Kemensos])
                    || (kind_in(&[Dukcapil])
                        && matches!(change, StatusChange::Deceased | StatusChange::Moved { .. })))
        }
        Action::Attest { .. } => staff && kind_in(&[Auditor]),
        Action::RegisterAgent { .. } | Action::RevokeAgent { .. } => role == SignerRole::OrgKey,
    }
}

fn resolve_authority(genesis: &GenesisIndex, holder: &KeyHolder) -> Result<Authority, LedgerError> {
    let org_of = |id: &OrgId| {
        genesis
            .organisations
            .get(id)
            .ok_or_else(|| LedgerError::UnknownOrganisation(id.clone()))
    };
    Ok(match holder {
        KeyHolder::Organisation { org } => {
            let spec = org_of(org)?;
            Authority {
                org: Some((org.clone(), spec.kind)),
                role: SignerRole::OrgKey,
                regions: spec.regions.clone(),
                programs: spec.programs.clone(),
            }
        }
        KeyHolder::Agent { org, role, regions } => {
            let spec = org_of(org)?;
            Authority {
                org: Some((org.clone(), spec.kind)),
                role: SignerRole::Agent(*role),
                regions: regions.clone(),
                programs: spec.programs.clone(),
            }
        }
        KeyHolder::Beneficiary { beneficiary } => Authority {
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
    genesis: &GenesisIndex,
    record: &KeyRecord,
    action: &Action,
) -> Result<(), LedgerError> {
    let authority = resolve_authority(genesis, &record.holder)?;
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

fn require_program(genesis: &GenesisIndex, program: &ProgramCode) -> Result<(), LedgerError> {
    if genesis.programs.contains(program) {
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
    let mut record = check_signer(overlay, tx, true)?;
    let authority = resolve_authority(ctx.genesis, &record.holder)?;
    let action = &tx.body.action;
    if !permitted(&authority, action) {
        return Err(LedgerError::RoleNotAllowed {
            role: authority.describe(),
            action: action.name(),
        });
    }
    let touched = apply_action(overlay, ctx, &authority, action)?;
    // The nonce advances only with a successful step, so a refused transaction leaves the
    // signer able to retry with the same nonce.
    record.next_nonce = record
        .next_nonce
        .checked_add(1)
        .ok_or(LedgerError::Overflow("nonce"))?;
    overlay.put(keys::signer(&tx.body.signer), &record);
    Ok(touched)
}

fn apply_action(
    overlay: &mut Overlay<'_>,
    ctx: &TxContext<'_>,
    authority: &Authority,
    action: &Action,
) -> Result<Option<Pseudonym>, LedgerError> {
    let genesis = ctx.genesis;
    let now = ctx.time_ms;
    match action {
        Action::DeclareBudget {
            program,
            period,
            ceilings,
        } => {
            require_program(genesis, program)?;
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
        Action::Propose {
            beneficiary,
            region,
            household_size,
            welfare_decile,
        } => {
            require_region_known(genesis, region)?;
            authority.require_region(region)?;
            let key = keys::beneficiary(beneficiary);
            if overlay.exists(&key)? {
                return Err(LedgerError::DuplicateProposal(*beneficiary));
            }
            let record = BeneficiaryRecord {
                region: region.clone(),
                household_size: *household_size,
                welfare_decile: *welfare_decile,
                proposed_by: authority.org_id()?,
                proposed_at: now,
                identity: IdentityStatus::Unchecked,
                eligibility: EligibilityStatus::Pending,
                status: LifeStatus::Active,
            };
            overlay.put(key, &record);
            Ok(Some(*beneficiary))
        }
        Action::CheckIdentity {
            beneficiary: pseudonym,
            passed,
            ..
        } => {
            let mut record = beneficiary(overlay, pseudonym)?;
            authority.require_region(&record.region)?;
            require_not_deceased(pseudonym, &record)?;
            record.identity = if *passed {
                IdentityStatus::Passed
            } else {
                IdentityStatus::Failed
            };
            overlay.put(keys::beneficiary(pseudonym), &record);
            Ok(Some(*pseudonym))
        }
        Action::VerifyEligibility {
            beneficiary: pseudonym,
            outcome,
        } => {
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
        Action::Enrol {
            beneficiary: pseudonym,
            program,
            tracking_code_hash,
            beneficiary_key,
        } => {
            require_program(genesis, program)?;
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
                    enrolled_at: now,
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
        Action::Allocate {
            beneficiary: pseudonym,
            program,
            period,
            amount,
        } => {
            require_program(genesis, program)?;
            let record = beneficiary(overlay, pseudonym)?;
            authority.require_region(&record.region)?;
            require_active(pseudonym, &record)?;
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
            // The ceiling that applies is the one declared for the nearest enclosing region
            // (a village's budget is usually its regency's).
            let mut region = Some(record.region.clone());
            let mut budget = None;
            while let Some(candidate) = region {
                let key = keys::budget(program, period, &candidate);
                if let Some(found) = overlay.get::<BudgetRecord>(&key)? {
                    budget = Some((candidate, key, found));
                    break;
                }
                region = candidate.parent();
            }
            let (budget_region, budget_key, mut budget_record) =
                budget.ok_or_else(|| LedgerError::NoBudget {
                    program: program.to_string(),
                    period: period.to_string(),
                    region: record.region.to_string(),
                })?;
            let total = budget_record
                .allocated
                .checked_add(*amount)
                .ok_or(LedgerError::Overflow("budget"))?;
            if total > budget_record.ceiling {
                return Err(LedgerError::OverBudget {
                    ceiling: budget_record.ceiling,
                    allocated: budget_record.allocated,
                    amount: *amount,
                });
            }
            budget_record.allocated = total;
            overlay.put(budget_key, &budget_record);
            overlay.put(
                keys::allocation(&id),
                &AllocationRecord {
                    beneficiary: *pseudonym,
                    program: program.clone(),
                    period: period.clone(),
                    amount: *amount,
                    budget_region,
                    allocated_at: now,
                    disbursement: None,
                    receipt: None,
                },
            );
            Ok(Some(*pseudonym))
        }
        Action::Disburse {
            allocation: id,
            amount,
            channel,
            account_ref_hash,
        } => {
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
            if *amount > record.amount {
                return Err(LedgerError::OverDisbursement {
                    allocated: record.amount,
                    amount: *amount,
                });
            }
            // Paying someone who has since died or been suspended is the classic leak.
            if person.status != LifeStatus::Active {
                return Err(LedgerError::BeneficiaryInactive {
                    beneficiary: record.beneficiary,
                    status: person.status.name(),
                });
            }
            record.disbursement = Some(DisbursementRecord {
                amount: *amount,
                paid_by: authority.org_id()?,
                channel: *channel,
                account_ref_hash: *account_ref_hash,
                paid_at: now,
            });
            overlay.put(keys::allocation(id), &record);
            Ok(Some(record.beneficiary))
        }
        Action::ConfirmReceipt {
            allocation: id,
            received,
        } => {
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
            if record.receipt.is_some() {
                return Err(LedgerError::AlreadyConfirmed(*id));
            }
            record.receipt = Some(ReceiptRecord {
                received: *received,
                by_beneficiary,
                confirmed_at: now,
            });
            overlay.put(keys::allocation(id), &record);
            Ok(Some(record.beneficiary))
        }
        Action::FileObjection {
            subject,
            claim,
            evidence_hash,
        } => {
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
                claim: *claim,
                evidence_hash: *evidence_hash,
                filed_by: authority.org_id()?,
                filed_at: now,
                deadline,
                resolution: None,
            };
            overlay.put(keys::objection(&ctx.tx_hash), &record);
            Ok(Some(pseudonym))
        }
        Action::ResolveObjection {
            objection: id,
            upheld,
            consequence,
        } => {
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
            if !*upheld && *consequence != Consequence::None {
                return Err(LedgerError::InvalidField(
                    "a dismissed objection can have no consequence".into(),
                ));
            }
            if *upheld
                && *consequence == Consequence::SuspendBeneficiary
                && person.status == LifeStatus::Active
            {
                person.status = LifeStatus::Suspended;
                overlay.put(keys::beneficiary(&record.beneficiary), &person);
            }
            record.resolution = Some(ResolutionRecord {
                upheld: *upheld,
                consequence: *consequence,
                resolved_by: authority.org_id()?,
                resolved_at: now,
            });
            let pseudonym = record.beneficiary;
            overlay.put(keys::objection(id), &record);
            Ok(Some(pseudonym))
        }
        Action::ChangeStatus {
            beneficiary: pseudonym,
            change,
        } => {
            let mut record = beneficiary(overlay, pseudonym)?;
            authority.require_region(&record.region)?;
            require_not_deceased(pseudonym, &record)?;
            match change {
                StatusChange::Deceased => record.status = LifeStatus::Deceased,
                StatusChange::Graduated => record.status = LifeStatus::Graduated,
                StatusChange::Suspended => record.status = LifeStatus::Suspended,
                StatusChange::Reinstated => record.status = LifeStatus::Active,
                StatusChange::Moved { to } => {
                    require_region_known(genesis, to)?;
                    record.region = to.clone();
                }
            }
            overlay.put(keys::beneficiary(pseudonym), &record);
            Ok(Some(*pseudonym))
        }
        Action::Attest { attestation } => {
            match attestation {
                Attestation::Checkpoint { size, root } => {
                    if *size > ctx.committed_log_size {
                        return Err(LedgerError::CheckpointAhead {
                            size: *size,
                            log_size: ctx.committed_log_size,
                        });
                    }
                    let actual = merkle::root_at(&StoreLog(ctx.store), *size)
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
        Action::RegisterAgent { key, role, regions } => {
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
                require_region_known(genesis, region)?;
                authority.require_region(region)?;
            }
            let record_key = keys::signer(key);
            if overlay.exists(&record_key)? {
                return Err(LedgerError::DuplicateKey(*key));
            }
            let holder = KeyHolder::Agent {
                org: authority.org_id()?,
                role: *role,
                regions: regions.clone(),
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
        Action::RevokeAgent { key } => {
            let record_key = keys::signer(key);
            let mut record: KeyRecord = overlay
                .get(&record_key)?
                .ok_or(LedgerError::UnknownSigner { signer: *key })?;
            let own_org = authority.org_id()?;
            match &record.holder {
                KeyHolder::Agent { org, .. } if *org == own_org => {}
                _ => {
                    return Err(LedgerError::RoleNotAllowed {
                        role: authority.describe(),
                        action: "revoke a key that is not its own agent's",
                    })
                }
            }
            record.revoked = true;
            overlay.put(record_key, &record);
            Ok(None)
        }
    }
}

/// The transparency log as stored: leaf hashes are recomputed from leaf bytes, higher
/// subtrees are read from [`Column::LogNodes`].
pub(crate) struct StoreLog<'a>(pub &'a dyn Store);

/// A log subtree that should be stored is not.
#[derive(Debug, thiserror::Error)]
#[error("log subtree at level {level}, index {index} is missing from the store: {detail}")]
pub struct MissingLogNode {
    pub level: u8,
    pub index: u64,
    pub detail: String,
}

/// The key of a stored log subtree.
pub(crate) fn log_node_key(level: u8, index: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = level;
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

impl merkle::SubtreeSource for StoreLog<'_> {
    type Error = MissingLogNode;

    fn subtree(&self, level: u8, index: u64) -> Result<merkle::Hash, MissingLogNode> {
        let missing = |detail: String| MissingLogNode {
            level,
            index,
            detail,
        };
        if level == 0 {
            let leaf = self
                .0
                .get(Column::LogLeaves, &index.to_be_bytes())
                .map_err(|e| missing(e.to_string()))?
                .ok_or_else(|| missing("absent".into()))?;
            return Ok(merkle::leaf_hash(&leaf));
        }
        let bytes = self
            .0
            .get(Column::LogNodes, &log_node_key(level, index))
            .map_err(|e| missing(e.to_string()))?
            .ok_or_else(|| missing("absent".into()))?;
        bytes.try_into().map_err(|_| missing("not 32 bytes".into()))
    }
}
