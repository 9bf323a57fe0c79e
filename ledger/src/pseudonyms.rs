//! The pseudonym key and re-keying.
//!
//! Beneficiaries are pseudonyms computed by the identity authority's pseudonym service
//! (RFC 9497 VOPRF, `proto::pseudonym`); the ledger never computes one. What it keeps is
//! the service's public key ([`PseudonymKeyRecord`]: genesis names the first, a governance
//! change [`crate::governance::Change::SetPseudonymKey`] the next), so that every client
//! checks the service's answers against the key the consortium agreed on, not one the
//! service chose.
//!
//! A new key gives every person a new pseudonym. So that a beneficiary's history stays
//! one history, re-keying runs in two steps:
//!
//! 1. At the change's activation height the new key becomes current and **intake pauses**:
//!    a `Propose` is refused (`pseudonym_rekeying`) until step 2 is complete, because a
//!    person already on the ledger would otherwise come back as a new beneficiary.
//! 2. The service's organisation submits `LinkPseudonyms` transactions: for every
//!    beneficiary on the ledger, the new pseudonym and the one the ledger knows it by. The
//!    links are computed by the identity authority from its own registry (it holds the
//!    NIKs and both keys) and never leave the consortium: transactions are consortium data,
//!    and no public answer names a pseudonym. The last batch says `complete`, and intake
//!    resumes.
//!
//! From then on a step may name a beneficiary by either pseudonym: the ledger resolves a
//! linked (new) pseudonym to the one it first knew ([`canonical_action`]) before applying
//! the step, so deduplication, allocations per period, the citizen's tracking timeline and
//! every invariant keep working on one record per person. Resolution costs one state read
//! per beneficiary step, and only on a chain that has re-keyed.

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::LedgerError;
use crate::genesis::GenesisIndex;
use crate::limits::{PSEUDONYM_KEYS_MAX, PSEUDONYM_LINKS_PER_TX_MAX};
use crate::rules::Overlay;
use crate::state::{keys, BeneficiaryRecord};
use crate::tx::{Action, ObjectionSubject};
use crate::types::{Hash32, OrgId, Pseudonym};

/// The pseudonym service: who runs it and the public key it answers under.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PseudonymServiceSpec {
    /// The identity authority's organisation: it alone submits re-keying links.
    pub organisation: OrgId,
    /// The key's version (a label clients send with each request; one more per new key).
    pub key_version: u32,
    /// The RFC 9497 (ristretto255-SHA512) public key, 32 bytes.
    pub public_key: Hash32,
}

/// The current pseudonym key as the state holds it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PseudonymKeyRecord {
    pub service: PseudonymServiceSpec,
    /// The first height the key is current at (1 for genesis's).
    pub from_height: u64,
    /// Whether every beneficiary known before this key has been linked to its new
    /// pseudonym (always for genesis's key). Intake is paused until it is.
    pub linked: bool,
    /// Beneficiaries linked to a pseudonym under this key so far.
    pub links: u64,
    /// Beneficiaries on the ledger when the key became current: all must be linked
    /// before intake resumes.
    pub beneficiaries: u64,
}

/// One beneficiary's pseudonym under the new key, and the pseudonym the ledger knows it by
/// (its first, or any pseudonym already linked to it).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct PseudonymLink {
    pub old: Pseudonym,
    pub new: Pseudonym,
}

/// One page of the beneficiaries not yet linked during a re-keying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlinkedPage {
    /// The key being linked.
    pub key_version: u32,
    /// Canonical pseudonyms, in order.
    pub unlinked: Vec<Pseudonym>,
    /// Where the next page starts after, when the scan stopped early.
    pub next: Option<Pseudonym>,
}

/// Whether `key` encodes a ristretto255 element other than the identity: what an RFC 9497
/// public key is. A mistyped key would otherwise become current and pause intake with no
/// service able to answer under it.
pub fn is_ristretto_public_key(key: &Hash32) -> bool {
    use curve25519_dalek::ristretto::CompressedRistretto;
    use curve25519_dalek::traits::Identity as _;
    CompressedRistretto(key.0)
        .decompress()
        .is_some_and(|point| point != curve25519_dalek::RistrettoPoint::identity())
}

/// The state records genesis's pseudonym service gives (none without one).
pub(crate) fn genesis_records(genesis: &GenesisIndex) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Some(service) = &genesis.genesis.pseudonym_service else {
        return Vec::new();
    };
    let record = PseudonymKeyRecord {
        service: service.clone(),
        from_height: 1,
        linked: true,
        links: 0,
        beneficiaries: 0,
    };
    let bytes = crate::encode::canonical(&record);
    vec![
        (keys::pseudonym_key(), bytes.clone()),
        (keys::pseudonym_key_version(service.key_version), bytes),
    ]
}

/// The current pseudonym key, if the chain has one.
pub(crate) fn current_key(
    overlay: &Overlay<'_>,
) -> Result<Option<PseudonymKeyRecord>, LedgerError> {
    overlay.get(&keys::pseudonym_key())
}

/// Checks a new key: the next version, a live organisation, a key never used before.
pub(crate) fn check_new_key(
    overlay: &Overlay<'_>,
    spec: &PseudonymServiceSpec,
) -> Result<(), LedgerError> {
    let refuse = |message: String| Err(LedgerError::ChangeRefused(message));
    let current = current_key(overlay)?;
    let expected = current
        .as_ref()
        .map_or(Some(1), |c| c.service.key_version.checked_add(1));
    if Some(spec.key_version) != expected {
        return refuse(format!(
            "the next pseudonym key is version {}; this change names version {}",
            expected.map_or("none".to_owned(), |v| v.to_string()),
            spec.key_version
        ));
    }
    if let Some(current) = &current {
        if !current.linked {
            return refuse(format!(
                "pseudonym key version {} is still being linked; finish that re-keying first",
                current.service.key_version
            ));
        }
    }
    if spec.key_version as usize > PSEUDONYM_KEYS_MAX {
        return refuse(format!(
            "the chain keeps at most {PSEUDONYM_KEYS_MAX} pseudonym keys"
        ));
    }
    if !is_ristretto_public_key(&spec.public_key) {
        return refuse(format!(
            "{} is not a ristretto255 public key (RFC 9497): check the change",
            spec.public_key
        ));
    }
    for version in 1..spec.key_version {
        let old: Option<PseudonymKeyRecord> = overlay.get(&keys::pseudonym_key_version(version))?;
        if old.is_some_and(|o| o.service.public_key == spec.public_key) {
            return refuse(format!(
                "that public key was version {version}'s; a new key gives new pseudonyms only if it is new"
            ));
        }
    }
    crate::governance::org_record(overlay, &spec.organisation).and_then(|r| {
        if r.removed_from.is_some() {
            Err(LedgerError::UnknownOrganisation(spec.organisation.clone()))
        } else {
            Ok(())
        }
    })
}

/// Makes `spec` the current key from `height`; intake pauses until every beneficiary on
/// the ledger is linked to its new pseudonym (at once if there is none).
pub(crate) fn apply_new_key(
    overlay: &mut Overlay<'_>,
    spec: &PseudonymServiceSpec,
    height: u64,
) -> Result<(), LedgerError> {
    let beneficiaries = beneficiary_count(overlay)?;
    let record = PseudonymKeyRecord {
        service: spec.clone(),
        from_height: height,
        linked: beneficiaries == 0,
        links: 0,
        beneficiaries,
    };
    overlay.put(keys::pseudonym_key(), &record);
    overlay.put(keys::pseudonym_key_version(spec.key_version), &record);
    Ok(())
}

/// How many beneficiaries have been proposed (each is one, however many pseudonyms it has).
pub(crate) fn beneficiary_count(overlay: &Overlay<'_>) -> Result<u64, LedgerError> {
    Ok(overlay.get(&keys::beneficiary_count())?.unwrap_or(0))
}

/// Counts one more beneficiary (a proposal).
pub(crate) fn count_beneficiary(overlay: &mut Overlay<'_>) -> Result<(), LedgerError> {
    let count = beneficiary_count(overlay)?
        .checked_add(1)
        .ok_or(LedgerError::Overflow("beneficiary count"))?;
    overlay.put(keys::beneficiary_count(), &count);
    Ok(())
}

/// Refuses new beneficiaries while a re-keying is being linked.
pub(crate) fn require_intake_open(overlay: &Overlay<'_>) -> Result<(), LedgerError> {
    match current_key(overlay)? {
        Some(key) if !key.linked => Err(LedgerError::PseudonymRekeying {
            version: key.service.key_version,
            from_height: key.from_height,
        }),
        _ => Ok(()),
    }
}

/// The pseudonym the ledger knows `pseudonym`'s beneficiary by, if it is a linked one.
pub(crate) fn linked_to(
    overlay: &Overlay<'_>,
    pseudonym: &Pseudonym,
) -> Result<Option<Pseudonym>, LedgerError> {
    overlay.get(&keys::pseudonym_link(pseudonym))
}

/// `action` with every linked pseudonym replaced by the one the ledger knows the
/// beneficiary by; `None` when it names none (the usual case).
pub(crate) fn canonical_action(
    overlay: &Overlay<'_>,
    action: &Action,
) -> Result<Option<Action>, LedgerError> {
    let Some(named) = named_beneficiary(action) else {
        return Ok(None);
    };
    let Some(canonical) = linked_to(overlay, &named)? else {
        return Ok(None);
    };
    let mut action = action.clone();
    match &mut action {
        Action::Propose { beneficiary, .. }
        | Action::CheckIdentity { beneficiary, .. }
        | Action::VerifyEligibility { beneficiary, .. }
        | Action::Enrol { beneficiary, .. }
        | Action::Allocate { beneficiary, .. }
        | Action::ChangeStatus { beneficiary, .. }
        | Action::FileObjection {
            subject: ObjectionSubject::Beneficiary(beneficiary),
            ..
        } => *beneficiary = canonical,
        _ => unreachable!("named_beneficiary names one only for these actions"),
    }
    Ok(Some(action))
}

/// The beneficiary an action names by pseudonym, if any.
fn named_beneficiary(action: &Action) -> Option<Pseudonym> {
    match action {
        Action::Propose { beneficiary, .. }
        | Action::CheckIdentity { beneficiary, .. }
        | Action::VerifyEligibility { beneficiary, .. }
        | Action::Enrol { beneficiary, .. }
        | Action::Allocate { beneficiary, .. }
        | Action::ChangeStatus { beneficiary, .. }
        | Action::FileObjection {
            subject: ObjectionSubject::Beneficiary(beneficiary),
            ..
        } => Some(*beneficiary),
        _ => None,
    }
}

/// Records a batch of links for the current key, by the service's organisation; with
/// `complete`, intake resumes.
pub(crate) fn link(
    overlay: &mut Overlay<'_>,
    org: &OrgId,
    key_version: u32,
    links: &[PseudonymLink],
    complete: bool,
) -> Result<(), LedgerError> {
    let refuse = |message: String| Err(LedgerError::PseudonymLinkRefused(message));
    let Some(mut key) = current_key(overlay)? else {
        return refuse("this chain has no pseudonym service".into());
    };
    if &key.service.organisation != org {
        return refuse(format!(
            "links come from the pseudonym service's organisation, {}",
            key.service.organisation
        ));
    }
    if key_version != key.service.key_version || key.linked {
        return refuse(format!(
            "no re-keying is open for version {key_version} (the current key is version {}{})",
            key.service.key_version,
            if key.linked { ", already linked" } else { "" }
        ));
    }
    let mut seen = BTreeSet::new();
    for link in links {
        if !seen.insert(link.new) {
            return refuse(format!("new pseudonym {} is listed twice", link.new));
        }
        record_link(overlay, key_version, link)?;
    }
    key.links += links.len() as u64;
    if complete && key.links != key.beneficiaries {
        return refuse(format!(
            "{} of the {} beneficiaries known before key version {key_version} are linked; all must be before intake resumes",
            key.links, key.beneficiaries
        ));
    }
    key.linked = complete;
    overlay.put(keys::pseudonym_key(), &key);
    overlay.put(keys::pseudonym_key_version(key_version), &key);
    Ok(())
}

/// Records one link; each beneficiary is linked once per key.
fn record_link(
    overlay: &mut Overlay<'_>,
    key_version: u32,
    link: &PseudonymLink,
) -> Result<(), LedgerError> {
    let refuse = |message: String| Err(LedgerError::PseudonymLinkRefused(message));
    let canonical = match linked_to(overlay, &link.old)? {
        Some(canonical) => canonical,
        None => link.old,
    };
    if overlay
        .get::<BeneficiaryRecord>(&keys::beneficiary(&canonical))?
        .is_none()
    {
        return Err(LedgerError::UnknownBeneficiary(link.old));
    }
    if link.new == link.old || link.new == canonical {
        return refuse(format!("pseudonym {} is linked to itself", link.new));
    }
    let new_is_known = overlay
        .get::<BeneficiaryRecord>(&keys::beneficiary(&link.new))?
        .is_some()
        || linked_to(overlay, &link.new)?.is_some();
    if new_is_known {
        return refuse(format!(
            "new pseudonym {} already names a beneficiary",
            link.new
        ));
    }
    let marker = keys::pseudonym_linked(key_version, &canonical);
    if overlay.get::<()>(&marker)?.is_some() {
        return refuse(format!(
            "beneficiary {} is already linked under key version {key_version}",
            link.old
        ));
    }
    overlay.put(marker, &());
    overlay.put(keys::pseudonym_link(&link.new), &canonical);
    Ok(())
}

/// Checks what a link batch can be checked for without state.
pub(crate) fn check_batch(links: &[PseudonymLink], complete: bool) -> Result<(), LedgerError> {
    if links.len() > PSEUDONYM_LINKS_PER_TX_MAX {
        return Err(LedgerError::InvalidField(format!(
            "a transaction carries at most {PSEUDONYM_LINKS_PER_TX_MAX} links"
        )));
    }
    if links.is_empty() && !complete {
        return Err(LedgerError::InvalidField(
            "a link batch carries links, or completes the re-keying".into(),
        ));
    }
    Ok(())
}
