//! Governance: changes to the consortium itself. An organisation's own key proposes a
//! [`Change`] with an activation height; other organisations approve it; at the end of the
//! block before the activation height the change takes effect if the organisations that
//! approved it meet the genesis rule ([`GovernanceRule`]: so many approvals, these
//! organisations among them), and expires otherwise.
//!
//! Every change is checked when it is proposed and again when it takes effect (the state
//! may have moved in between), in proposal-id order, so every node reaches the same result.
//! A change that fails then is recorded as failed with the rule it broke; it never stops the
//! block.
//!
//! The validator set lives in the state: the set of the next height under
//! [`keys::validator_set`], and every set the chain has had under
//! [`keys::validator_set_from`] (the height it took effect at), so that certificates,
//! checkpoints and audits of any height are checked against the set of that height.
//! Changes to it keep consensus safe across the change: a change may move less than one
//! third of the voting power (so a quorum of the old set and one of the new share an
//! honest majority of the old), and may not leave fewer than [`VALIDATOR_SET_MIN`]
//! validators, the fewest that tolerate a faulty one.

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::LedgerError;
use crate::genesis::{
    is_usable_key, Genesis, GenesisIndex, Organisation, Program, ValidatorEntry, ValidatorSpec,
};
use crate::limits::{
    CHANGES_DUE_PER_HEIGHT_MAX, CHANGE_ACTIVATION_DELAY_MAX, NAME_BYTES_MAX, ORGANISATIONS_MAX,
    ORG_TX_KEYS_MAX, VALIDATORS_MAX, VALIDATOR_SETS_MAX, VALIDATOR_SET_MIN,
};
use crate::note::NoteKey;
use crate::rules::Overlay;
use crate::state::{keys, KeyHolder, KeyRecord};
use crate::types::{OrgId, PublicKey, TxHash};

/// The organisations not removed, by id: what a signer's authority is resolved against.
/// Changes take effect only between blocks, so the ledger keeps this table in memory
/// (`Ledger::members`) and reloads it when one has.
pub type Members = std::collections::BTreeMap<OrgId, Organisation>;

/// Which organisations must approve a change before it takes effect (genesis).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct GovernanceRule {
    /// How many organisations must approve (the proposer's counts). Zero turns governance
    /// off: every change is refused.
    pub approvals: u32,
    /// Organisations whose approval every change needs (for example the ministry).
    #[serde(default)]
    pub required: Vec<OrgId>,
}

/// A change to the consortium.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A new institution joins, with its keys (and its validator, if it runs one).
    AddOrganisation { organisation: Organisation },
    /// An institution leaves: its keys and agents are refused from the activation height.
    /// It must not run a validator (remove that first) nor be one the rule requires.
    RemoveOrganisation { org: OrgId },
    /// One of an institution's transaction keys is replaced: `old` is refused from the
    /// activation height, `new` signs from then on (its nonces start at 0).
    RotateKey {
        org: OrgId,
        old: PublicKey,
        new: PublicKey,
    },
    /// An institution's validator is added, replaced (a new consensus or checkpoint key, or
    /// a new voting power) or, with `None`, removed.
    SetValidator {
        org: OrgId,
        validator: Option<ValidatorSpec>,
    },
    /// An aid program is added, or its name changed.
    SetProgram { program: Program },
    /// The pseudonym service's next key (the next version): from the activation height
    /// clients check answers against it, and intake pauses until the service's
    /// organisation has linked every beneficiary to its new pseudonym
    /// (`crate::pseudonyms`). Also how a chain without a service gets its first key.
    SetPseudonymKey {
        service: crate::pseudonyms::PseudonymServiceSpec,
    },
}

impl Change {
    /// The change's name for messages and the explorer.
    pub fn name(&self) -> &'static str {
        match self {
            Change::AddOrganisation { .. } => "add_organisation",
            Change::RemoveOrganisation { .. } => "remove_organisation",
            Change::RotateKey { .. } => "rotate_key",
            Change::SetValidator { .. } => "set_validator",
            Change::SetProgram { .. } => "set_program",
            Change::SetPseudonymKey { .. } => "set_pseudonym_key",
        }
    }
}

/// An organisation as the state holds it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct OrgRecord {
    /// The organisation with its current transaction keys and validator.
    pub organisation: Organisation,
    /// The height from which it was removed, if it was.
    pub removed_from: Option<u64>,
}

/// One member of a validator set.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SetMember {
    pub org: OrgId,
    pub key: PublicKey,
    pub power: u64,
    /// The checkpoint key as a C2SP note verifier key.
    pub checkpoint_key: String,
}

/// A validator set and the height it took effect at.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ValidatorSetRecord {
    /// 0 for genesis's set, one more for each change.
    pub version: u64,
    /// The first height this set decides.
    pub from_height: u64,
    /// In organisation order.
    pub validators: Vec<SetMember>,
}

impl ValidatorSetRecord {
    /// The set as validator entries (checkpoint keys parsed).
    pub fn entries(&self) -> Result<Vec<ValidatorEntry>, LedgerError> {
        self.validators
            .iter()
            .map(|m| {
                let checkpoint_key = NoteKey::parse(&m.checkpoint_key).map_err(|e| {
                    LedgerError::Corrupt(format!("checkpoint key of {} in the set: {e}", m.org))
                })?;
                Ok(ValidatorEntry {
                    org: m.org.clone(),
                    key: m.key,
                    power: m.power,
                    checkpoint_key,
                })
            })
            .collect()
    }

    /// The validators' checkpoint keys with their voting powers.
    pub fn checkpoint_keys(&self) -> Result<Vec<(NoteKey, u64)>, LedgerError> {
        Ok(self
            .entries()?
            .into_iter()
            .map(|v| (v.checkpoint_key, v.power))
            .collect())
    }

    /// The sum of the voting powers.
    pub fn total_power(&self) -> u64 {
        self.validators.iter().map(|m| m.power).sum()
    }

    /// The member with consensus key `key`.
    pub fn member(&self, key: &PublicKey) -> Option<&SetMember> {
        self.validators.iter().find(|m| &m.key == key)
    }
}

/// Where a proposed change stands.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChangeStatus {
    /// Collecting approvals until the activation height.
    Pending,
    /// Took effect at the activation height.
    Activated,
    /// Approved, but broke a rule when it was due (the state had moved).
    Failed { code: String, message: String },
    /// Not approved by the rule's organisations before it was due.
    Expired,
}

/// A proposed change with its approvals.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub change: Change,
    pub activation_height: u64,
    pub proposed_by: OrgId,
    pub proposed_at: u64,
    /// The organisations that approved it, in id order (the proposer's included).
    pub approvals: Vec<OrgId>,
    pub status: ChangeStatus,
}

/// The records genesis puts in the state: organisations, programs, the first validator set.
pub(crate) fn genesis_records(genesis: &GenesisIndex) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut records = Vec::new();
    for org in &genesis.genesis.organisations {
        let record = OrgRecord {
            organisation: org.clone(),
            removed_from: None,
        };
        records.push((
            keys::organisation(&org.id),
            crate::encode::canonical(&record),
        ));
    }
    for program in &genesis.genesis.programs {
        records.push((
            keys::program(&program.code),
            crate::encode::canonical(program),
        ));
    }
    let set = genesis_set(&genesis.genesis);
    let set = crate::encode::canonical(&set);
    records.push((keys::validator_set_from(1), set.clone()));
    records.push((keys::validator_set(), set));
    records.extend(crate::pseudonyms::genesis_records(genesis));
    records
}

/// Genesis's validator set (version 0, deciding from height 1).
fn genesis_set(genesis: &Genesis) -> ValidatorSetRecord {
    let validators = genesis
        .organisations
        .iter()
        .filter_map(|org| {
            org.validator.as_ref().map(|v| SetMember {
                org: org.id.clone(),
                key: v.key,
                power: v.power,
                checkpoint_key: v.checkpoint_key.clone(),
            })
        })
        .collect();
    ValidatorSetRecord {
        version: 0,
        from_height: 1,
        validators,
    }
}

/// Reads an organisation's record; removed ones are returned too.
pub(crate) fn org_record(overlay: &Overlay<'_>, id: &OrgId) -> Result<OrgRecord, LedgerError> {
    overlay
        .get(&keys::organisation(id))?
        .ok_or_else(|| LedgerError::UnknownOrganisation(id.clone()))
}

/// The validator set of the next height.
pub(crate) fn current_set(overlay: &Overlay<'_>) -> Result<ValidatorSetRecord, LedgerError> {
    overlay
        .get(&keys::validator_set())?
        .ok_or_else(|| LedgerError::Corrupt("the validator set is missing".into()))
}

/// Proposes `change` (the transaction `id`, signed by `org`'s own key in block `height`).
pub(crate) fn propose(
    overlay: &mut Overlay<'_>,
    genesis: &GenesisIndex,
    (id, org, height): (TxHash, OrgId, u64),
    change: &Change,
    activation_height: u64,
) -> Result<(), LedgerError> {
    if genesis.genesis.governance.approvals == 0 {
        return Err(LedgerError::ChangeRefused(
            "governance is off in this genesis (no approval rule)".into(),
        ));
    }
    let earliest = height + 1;
    let latest = height.saturating_add(CHANGE_ACTIVATION_DELAY_MAX);
    if activation_height < earliest || activation_height > latest {
        return Err(LedgerError::BadActivationHeight {
            got: activation_height,
            earliest,
            latest,
        });
    }
    let due = due_at(overlay, activation_height)?;
    if due.len() >= CHANGES_DUE_PER_HEIGHT_MAX {
        return Err(LedgerError::ChangeRefused(format!(
            "{CHANGES_DUE_PER_HEIGHT_MAX} changes are already due at height {activation_height}; choose another"
        )));
    }
    check_change(overlay, genesis, change)?;
    let record = ChangeRecord {
        change: change.clone(),
        activation_height,
        proposed_by: org.clone(),
        proposed_at: height,
        approvals: vec![org],
        status: ChangeStatus::Pending,
    };
    overlay.put(keys::change(&id), &record);
    overlay.put(keys::change_due(activation_height, &id), &());
    Ok(())
}

/// Records `org`'s approval of change `id` in block `height`.
pub(crate) fn approve(
    overlay: &mut Overlay<'_>,
    id: &TxHash,
    org: OrgId,
    height: u64,
) -> Result<(), LedgerError> {
    let key = keys::change(id);
    let mut record: ChangeRecord = overlay.get(&key)?.ok_or(LedgerError::UnknownChange(*id))?;
    if record.status != ChangeStatus::Pending || height >= record.activation_height {
        return Err(LedgerError::ChangeClosed(*id));
    }
    match record.approvals.binary_search(&org) {
        Ok(_) => return Err(LedgerError::AlreadyApproved { change: *id, org }),
        Err(at) => record.approvals.insert(at, org),
    }
    overlay.put(key, &record);
    Ok(())
}

/// At the end of block `height`: every change due at `height + 1` takes effect (approved
/// and still keeping the rules), fails, or expires. Writes into the overlay's current
/// transaction layer; the caller keeps it.
pub(crate) fn activate_due(
    overlay: &mut Overlay<'_>,
    genesis: &GenesisIndex,
    height: u64,
) -> Result<(), LedgerError> {
    let next = height + 1;
    let due = due_at(overlay, next)?;
    if due.is_empty() {
        return Ok(());
    }
    let before = current_set(overlay)?;
    for id in due {
        let key = keys::change(&id);
        let mut record: ChangeRecord = overlay
            .get(&key)?
            .ok_or_else(|| LedgerError::Corrupt(format!("change {id} is due but missing")))?;
        record.status = if !approved(overlay, genesis, &record)? {
            ChangeStatus::Expired
        } else {
            let checked = check_change(overlay, genesis, &record.change)
                .and_then(|()| check_power_since(overlay, &before, &record.change));
            match checked {
                Ok(()) => {
                    apply_change(overlay, &record.change, next)?;
                    let epoch: u64 = overlay.get(&keys::governance_epoch())?.unwrap_or(0);
                    overlay.put(keys::governance_epoch(), &(epoch + 1));
                    ChangeStatus::Activated
                }
                Err(error) => ChangeStatus::Failed {
                    code: error.code().to_owned(),
                    message: error.to_string(),
                },
            }
        };
        overlay.put(key, &record);
    }
    let after = current_set(overlay)?;
    if after.validators != before.validators {
        let set = ValidatorSetRecord {
            version: before.version + 1,
            from_height: next,
            validators: after.validators,
        };
        overlay.put(keys::validator_set(), &set);
        overlay.put(keys::validator_set_from(next), &set);
    }
    Ok(())
}

/// Every change of one height together moves under a third of the voting power of the
/// set before them: checks the set `change` would leave against `before`.
fn check_power_since(
    overlay: &Overlay<'_>,
    before: &ValidatorSetRecord,
    change: &Change,
) -> Result<(), LedgerError> {
    let (org, spec) = match change {
        Change::SetValidator { org, validator } => (org, validator.as_ref()),
        Change::AddOrganisation { organisation } if organisation.validator.is_some() => {
            (&organisation.id, organisation.validator.as_ref())
        }
        _ => return Ok(()),
    };
    let next = with_validator(&current_set(overlay)?, org, spec);
    check_power_moved(&before.validators, &next)
}

/// The ids of the changes due at `height`, in id order: those already stored and those
/// the current block wrote.
fn due_at(overlay: &Overlay<'_>, height: u64) -> Result<Vec<TxHash>, LedgerError> {
    let prefix = keys::changes_due(height);
    let mut ids: BTreeSet<TxHash> = BTreeSet::new();
    for key in overlay.keys_under(&prefix, CHANGES_DUE_PER_HEIGHT_MAX + 1)? {
        let id: [u8; 32] = key[prefix.len()..]
            .try_into()
            .map_err(|_| LedgerError::Corrupt("a due-change key is not 32 bytes long".into()))?;
        ids.insert(crate::types::Hash32(id));
    }
    Ok(ids.into_iter().collect())
}

/// Whether the organisations that approved (and still exist) meet the genesis rule.
fn approved(
    overlay: &Overlay<'_>,
    genesis: &GenesisIndex,
    record: &ChangeRecord,
) -> Result<bool, LedgerError> {
    let rule = &genesis.genesis.governance;
    let mut present = Vec::new();
    for org in &record.approvals {
        if org_record(overlay, org)?.removed_from.is_none() {
            present.push(org);
        }
    }
    let enough = present.len() as u64 >= u64::from(rule.approvals) && rule.approvals > 0;
    Ok(enough && rule.required.iter().all(|r| present.contains(&r)))
}

/// Checks `change` against the state as it stands.
pub(crate) fn check_change(
    overlay: &Overlay<'_>,
    genesis: &GenesisIndex,
    change: &Change,
) -> Result<(), LedgerError> {
    match change {
        Change::AddOrganisation { organisation } => {
            check_add_organisation(overlay, genesis, organisation)
        }
        Change::RemoveOrganisation { org } => check_remove_organisation(overlay, genesis, org),
        Change::RotateKey { org, old, new } => check_rotate_key(overlay, org, old, new),
        Change::SetValidator { org, validator } => {
            let record = live_org(overlay, org)?;
            let set = current_set(overlay)?;
            let next = with_validator(&set, org, validator.as_ref());
            check_new_set(
                overlay,
                genesis,
                &set,
                &next,
                validator.as_ref(),
                &record.organisation,
            )
        }
        Change::SetProgram { program } => {
            if program.name.is_empty() || program.name.len() > NAME_BYTES_MAX {
                return Err(LedgerError::ChangeRefused(format!(
                    "a program name must be 1 to {NAME_BYTES_MAX} bytes"
                )));
            }
            Ok(())
        }
        Change::SetPseudonymKey { service } => crate::pseudonyms::check_new_key(overlay, service),
    }
}

/// An organisation that has not been removed.
fn live_org(overlay: &Overlay<'_>, id: &OrgId) -> Result<OrgRecord, LedgerError> {
    let record = org_record(overlay, id)?;
    if record.removed_from.is_some() {
        return Err(LedgerError::UnknownOrganisation(id.clone()));
    }
    Ok(record)
}

fn check_add_organisation(
    overlay: &Overlay<'_>,
    genesis: &GenesisIndex,
    org: &Organisation,
) -> Result<(), LedgerError> {
    let refuse = |message: String| Err(LedgerError::ChangeRefused(message));
    if overlay
        .get::<OrgRecord>(&keys::organisation(&org.id))?
        .is_some()
    {
        return refuse(format!("organisation {} exists or existed", org.id));
    }
    let count = overlay
        .keys_under(&keys::organisations(), ORGANISATIONS_MAX)?
        .len();
    if count >= ORGANISATIONS_MAX {
        return refuse(format!(
            "the chain has had {ORGANISATIONS_MAX} organisations, the most it keeps"
        ));
    }
    if org.name.is_empty() || org.name.len() > NAME_BYTES_MAX {
        return refuse(format!(
            "an organisation name must be 1 to {NAME_BYTES_MAX} bytes"
        ));
    }
    if org.tx_keys.is_empty() || org.tx_keys.len() > ORG_TX_KEYS_MAX {
        return refuse(format!(
            "an organisation lists 1 to {ORG_TX_KEYS_MAX} transaction keys"
        ));
    }
    if org.witness_key.is_some() {
        return refuse(
            "witnesses are listed in genesis; a new organisation cannot bring a witness key".into(),
        );
    }
    for region in &org.regions {
        if !genesis.has_region(region) {
            return Err(LedgerError::UnknownRegion(region.to_string()));
        }
    }
    for program in &org.programs {
        if overlay.get::<Program>(&keys::program(program))?.is_none() {
            return Err(LedgerError::UnknownProgram(program.to_string()));
        }
    }
    let mut seen = BTreeSet::new();
    for key in &org.tx_keys {
        if !seen.insert(*key) {
            return refuse(format!("key {key} is listed twice"));
        }
        check_fresh_key(overlay, genesis, key)?;
    }
    if org.validator.is_some() {
        let set = current_set(overlay)?;
        let next = with_validator(&set, &org.id, org.validator.as_ref());
        check_new_set(overlay, genesis, &set, &next, org.validator.as_ref(), org)?;
    }
    Ok(())
}

fn check_remove_organisation(
    overlay: &Overlay<'_>,
    genesis: &GenesisIndex,
    id: &OrgId,
) -> Result<(), LedgerError> {
    let record = live_org(overlay, id)?;
    if genesis.genesis.governance.required.contains(id) {
        return Err(LedgerError::ChangeRefused(format!(
            "{id} must approve every change; it cannot be removed"
        )));
    }
    if record.organisation.validator.is_some() {
        return Err(LedgerError::ChangeRefused(format!(
            "{id} runs a validator; remove the validator first"
        )));
    }
    if crate::pseudonyms::current_key(overlay)?.is_some_and(|k| &k.service.organisation == id) {
        return Err(LedgerError::ChangeRefused(format!(
            "{id} runs the pseudonym service; move the service first (set_pseudonym_key)"
        )));
    }
    Ok(())
}

fn check_rotate_key(
    overlay: &Overlay<'_>,
    id: &OrgId,
    old: &PublicKey,
    new: &PublicKey,
) -> Result<(), LedgerError> {
    let record = live_org(overlay, id)?;
    if !record.organisation.tx_keys.contains(old) {
        return Err(LedgerError::ChangeRefused(format!(
            "{old} is not a transaction key of {id}"
        )));
    }
    let old_record: Option<KeyRecord> = overlay.get(&keys::signer(old))?;
    if old_record.map(|r| r.revoked).unwrap_or(true) {
        return Err(LedgerError::RevokedSigner { signer: *old });
    }
    if !is_usable_key(new) {
        return Err(LedgerError::ChangeRefused(format!(
            "{new} is not a valid ed25519 key"
        )));
    }
    if overlay.get::<KeyRecord>(&keys::signer(new))?.is_some() {
        return Err(LedgerError::DuplicateKey(*new));
    }
    Ok(())
}

/// A key that no signer, validator or observer uses, and a valid ed25519 point.
fn check_fresh_key(
    overlay: &Overlay<'_>,
    genesis: &GenesisIndex,
    key: &PublicKey,
) -> Result<(), LedgerError> {
    if !is_usable_key(key) {
        return Err(LedgerError::ChangeRefused(format!(
            "{key} is not a valid ed25519 key"
        )));
    }
    let observer = genesis.genesis.observers.iter().any(|o| &o.key == key);
    let validator = current_set(overlay)?.member(key).is_some();
    if observer || validator || overlay.get::<KeyRecord>(&keys::signer(key))?.is_some() {
        return Err(LedgerError::DuplicateKey(*key));
    }
    Ok(())
}

/// `set` with `org`'s validator replaced by `spec` (or removed), in organisation order.
fn with_validator(
    set: &ValidatorSetRecord,
    org: &OrgId,
    spec: Option<&ValidatorSpec>,
) -> Vec<SetMember> {
    let mut members: Vec<SetMember> = set
        .validators
        .iter()
        .filter(|m| &m.org != org)
        .cloned()
        .collect();
    if let Some(spec) = spec {
        members.push(SetMember {
            org: org.clone(),
            key: spec.key,
            power: spec.power,
            checkpoint_key: spec.checkpoint_key.clone(),
        });
    }
    members.sort_by(|a, b| a.org.cmp(&b.org));
    members
}

/// Checks a validator set about to replace `set`: the new member's keys, the size, and
/// the voting power moved.
fn check_new_set(
    overlay: &Overlay<'_>,
    genesis: &GenesisIndex,
    set: &ValidatorSetRecord,
    next: &[SetMember],
    spec: Option<&ValidatorSpec>,
    org: &Organisation,
) -> Result<(), LedgerError> {
    if let Some(spec) = spec {
        check_validator_spec(overlay, genesis, set, spec, org)?;
    }
    let history = overlay.keys_under(&keys::validator_sets(), VALIDATOR_SETS_MAX)?;
    if history.len() >= VALIDATOR_SETS_MAX {
        return Err(LedgerError::ChangeRefused(format!(
            "the chain has had {VALIDATOR_SETS_MAX} validator sets, the most it keeps"
        )));
    }
    if next.len() > VALIDATORS_MAX {
        return Err(LedgerError::ChangeRefused(format!(
            "a validator set holds at most {VALIDATORS_MAX} validators"
        )));
    }
    if next.len() < set.validators.len() && next.len() < VALIDATOR_SET_MIN {
        return Err(LedgerError::ValidatorSetTooSmall {
            remaining: next.len(),
            min: VALIDATOR_SET_MIN,
        });
    }
    check_power_moved(&set.validators, next)
}

/// A new or replaced validator's keys: valid, its own, a checkpoint key named after the
/// log with a key ID no other validator's has.
fn check_validator_spec(
    overlay: &Overlay<'_>,
    genesis: &GenesisIndex,
    set: &ValidatorSetRecord,
    spec: &ValidatorSpec,
    org: &Organisation,
) -> Result<(), LedgerError> {
    let refuse = |message: String| Err(LedgerError::ChangeRefused(message));
    if spec.power == 0 {
        return refuse("a validator's voting power must be positive".into());
    }
    let own = set.validators.iter().find(|m| m.org == org.id);
    if own.map(|m| m.key) != Some(spec.key) {
        check_fresh_key(overlay, genesis, &spec.key)?;
    }
    let key = NoteKey::parse(&spec.checkpoint_key)
        .map_err(|e| LedgerError::ChangeRefused(format!("the checkpoint key: {e}")))?;
    if key.algorithm != crate::note::ALGORITHM_ED25519 || !is_usable_key(&key.key) {
        return refuse("the checkpoint key must be a valid Ed25519 (0x01) note key".into());
    }
    if key.name != genesis.genesis.log_origin {
        return refuse(format!(
            "the checkpoint key must be named after the log, {:?}",
            genesis.genesis.log_origin
        ));
    }
    for member in set.validators.iter().filter(|m| m.org != org.id) {
        let other = NoteKey::parse(&member.checkpoint_key)
            .map_err(|e| LedgerError::Corrupt(format!("a checkpoint key in the set: {e}")))?;
        if other.key_id() == key.key_id() || other.key == key.key {
            return refuse(format!(
                "the checkpoint key has the key ID of {}'s; generate another",
                member.org
            ));
        }
    }
    Ok(())
}

/// The voting power moved from `before` to `after` must be under a third of `before`'s.
fn check_power_moved(before: &[SetMember], after: &[SetMember]) -> Result<(), LedgerError> {
    let total: u128 = before.iter().map(|m| u128::from(m.power)).sum();
    let moved = power_moved(before, after);
    if moved * 3 >= total {
        return Err(LedgerError::PowerChangeTooLarge {
            moved: moved as u64,
            total: total as u64,
        });
    }
    let after_total: u128 = after.iter().map(|m| u128::from(m.power)).sum();
    if after_total == 0 || after_total > u128::from(u64::MAX / 4) {
        return Err(LedgerError::ChangeRefused(
            "the total voting power is out of range".into(),
        ));
    }
    Ok(())
}

/// The power that differs between two sets, counted by consensus key: a validator whose
/// key changes moves all its power.
fn power_moved(before: &[SetMember], after: &[SetMember]) -> u128 {
    let power_of = |set: &[SetMember], key: &PublicKey| {
        set.iter()
            .find(|m| &m.key == key)
            .map(|m| u128::from(m.power))
            .unwrap_or(0)
    };
    let keys: BTreeSet<PublicKey> = before.iter().chain(after).map(|m| m.key).collect();
    keys.iter()
        .map(|key| power_of(before, key).abs_diff(power_of(after, key)))
        .sum::<u128>()
}

/// Applies a checked change that takes effect at `height`.
fn apply_change(
    overlay: &mut Overlay<'_>,
    change: &Change,
    height: u64,
) -> Result<(), LedgerError> {
    match change {
        Change::AddOrganisation { organisation } => {
            for key in &organisation.tx_keys {
                put_org_key(overlay, &organisation.id, key);
            }
            let record = OrgRecord {
                organisation: organisation.clone(),
                removed_from: None,
            };
            overlay.put(keys::organisation(&organisation.id), &record);
            if organisation.validator.is_some() {
                set_validator(overlay, &organisation.id, organisation.validator.as_ref())?;
            }
        }
        Change::RemoveOrganisation { org } => {
            let mut record = org_record(overlay, org)?;
            for key in &record.organisation.tx_keys {
                revoke(overlay, key)?;
            }
            record.removed_from = Some(height);
            overlay.put(keys::organisation(org), &record);
        }
        Change::RotateKey { org, old, new } => {
            let mut record = org_record(overlay, org)?;
            for key in record.organisation.tx_keys.iter_mut().filter(|k| *k == old) {
                *key = *new;
            }
            overlay.put(keys::organisation(org), &record);
            revoke(overlay, old)?;
            put_org_key(overlay, org, new);
        }
        Change::SetValidator { org, validator } => {
            let mut record = org_record(overlay, org)?;
            record.organisation.validator = validator.clone();
            overlay.put(keys::organisation(org), &record);
            set_validator(overlay, org, validator.as_ref())?;
        }
        Change::SetProgram { program } => overlay.put(keys::program(&program.code), program),
        Change::SetPseudonymKey { service } => {
            crate::pseudonyms::apply_new_key(overlay, service, height)?
        }
    }
    Ok(())
}

fn put_org_key(overlay: &mut Overlay<'_>, org: &OrgId, key: &PublicKey) {
    let record = KeyRecord {
        holder: KeyHolder::Organisation { org: org.clone() },
        next_nonce: 0,
        revoked: false,
    };
    overlay.put(keys::signer(key), &record);
}

fn revoke(overlay: &mut Overlay<'_>, key: &PublicKey) -> Result<(), LedgerError> {
    let mut record: KeyRecord = overlay
        .get(&keys::signer(key))?
        .ok_or(LedgerError::UnknownSigner { signer: *key })?;
    record.revoked = true;
    overlay.put(keys::signer(key), &record);
    Ok(())
}

/// Replaces `org`'s validator in the current set (the version and height are set once
/// every change of the height is in).
fn set_validator(
    overlay: &mut Overlay<'_>,
    org: &OrgId,
    spec: Option<&ValidatorSpec>,
) -> Result<(), LedgerError> {
    let mut set = current_set(overlay)?;
    set.validators = with_validator(&set, org, spec);
    overlay.put(keys::validator_set(), &set);
    Ok(())
}
