//! The genesis document: the chain id, the institutions with their keys, region scopes and
//! validator power, the programs and the regions. Everything the ledger must know before
//! the first block, and nothing that changes afterwards except through transactions.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::LedgerError;
use crate::limits::{
    CHAIN_ID_BYTES_MAX, GENESIS_ORGANISATIONS_MAX, GENESIS_REGIONS_MAX, NAME_BYTES_MAX,
    ORG_TX_KEYS_MAX, PSEUDONYM_KEYS_MAX,
};
use crate::note::NoteKey;
use crate::types::{Hash32, OrgId, ProgramCode, PublicKey, RegionCode, TimeMs};

/// Domain separation for the genesis hash.
pub const GENESIS_DOMAIN: &[u8] = b"bansos-ledger/genesis/v1\0";

/// The kind of an institution, which decides which steps its keys may sign.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// The Ministry of Social Affairs: budgets, enrolment, allocation, final resolution.
    Kemensos,
    /// A local government (Dinas Sosial), scoped to its regions: proposals, verification.
    Pemda,
    /// A state bank (Himbara) paying aid in its regions and programs.
    Bank,
    /// PT Pos Indonesia paying aid in cash in its regions and programs.
    Pos,
    /// The civil registry: identity checks, deaths and moves.
    Dukcapil,
    /// The statistics office: eligibility verification against welfare data.
    Bps,
    /// An auditor (BPK, BPKP): checkpoint cosignatures and findings.
    Auditor,
}

impl OrgKind {
    /// The kind's name for messages.
    pub fn name(self) -> &'static str {
        match self {
            OrgKind::Kemensos => "kemensos",
            OrgKind::Pemda => "pemda",
            OrgKind::Bank => "bank",
            OrgKind::Pos => "pos",
            OrgKind::Dukcapil => "dukcapil",
            OrgKind::Bps => "bps",
            OrgKind::Auditor => "auditor",
        }
    }
}

/// A consensus validator key, its voting power, and the key with which it signs the
/// transparency log's checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ValidatorSpec {
    pub key: PublicKey,
    pub power: u64,
    /// The checkpoint-signing key as a C2SP note verifier key
    /// (`name+keyid+base64(0x01 ‖ key)`); a key of its own, not the consensus key.
    pub checkpoint_key: String,
}

/// One institution.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Organisation {
    pub id: OrgId,
    pub kind: OrgKind,
    pub name: String,
    /// Regions the organisation acts in; empty means national scope.
    #[serde(default)]
    pub regions: Vec<RegionCode>,
    /// Programs the organisation acts in (for payers); empty means all programs.
    #[serde(default)]
    pub programs: Vec<ProgramCode>,
    /// Keys that sign the organisation's transactions.
    pub tx_keys: Vec<PublicKey>,
    /// The organisation's consensus key, if it runs a validator.
    #[serde(default)]
    pub validator: Option<ValidatorSpec>,
    /// The organisation's witness key, if it runs a C2SP witness (auditors): a note
    /// verifier key for tlog-cosignature (`name+keyid+base64(0x04 ‖ key)`), a key of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_key: Option<String>,
}

/// An aid program.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Program {
    pub code: ProgramCode,
    pub name: String,
}

/// A region (province, regency/city, district, village).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Region {
    pub code: RegionCode,
    pub name: String,
}

/// A node that follows the chain without voting (a public explorer, a journalist's
/// replica). Listed so that only known peers are admitted to the network.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Observer {
    pub name: String,
    /// The node's network key.
    pub key: PublicKey,
}

/// The genesis document, as stored in `genesis.json`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: String,
    /// The transparency log's name: the first line of every checkpoint (C2SP
    /// tlog-checkpoint), like `bansos.kemensos.go.id/2026`.
    pub log_origin: String,
    /// The time of genesis; the first block's time must be later.
    pub genesis_time_ms: TimeMs,
    pub organisations: Vec<Organisation>,
    #[serde(default)]
    pub observers: Vec<Observer>,
    pub programs: Vec<Program>,
    pub regions: Vec<Region>,
    /// Who must approve a change to the consortium (organisations, keys, validators,
    /// programs). Absent: governance is off.
    #[serde(default)]
    pub governance: crate::governance::GovernanceRule,
    /// The identity authority's pseudonym service and its first public key. Absent: the
    /// chain has none until a governance change sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonym_service: Option<crate::pseudonyms::PseudonymServiceSpec>,
}

/// A validator in consensus order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorEntry {
    pub org: OrgId,
    pub key: PublicKey,
    pub power: u64,
    pub checkpoint_key: NoteKey,
}

/// A witness (an institution that cosigns checkpoints) and its cosignature key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessEntry {
    pub org: OrgId,
    pub key: NoteKey,
}

/// A validated genesis with lookup tables.
#[derive(Clone, Debug)]
pub struct GenesisIndex {
    pub genesis: Genesis,
    pub hash: Hash32,
    pub organisations: BTreeMap<OrgId, Organisation>,
    pub programs: BTreeSet<ProgramCode>,
    pub regions: BTreeMap<RegionCode, String>,
    pub validators: Vec<ValidatorEntry>,
    /// The witnesses, in genesis order.
    pub witnesses: Vec<WitnessEntry>,
}

impl GenesisIndex {
    /// The validators' checkpoint keys with their voting powers.
    pub fn checkpoint_keys(&self) -> Vec<(NoteKey, u64)> {
        self.validators
            .iter()
            .map(|v| (v.checkpoint_key.clone(), v.power))
            .collect()
    }

    /// The witnesses' cosignature keys.
    pub fn witness_keys(&self) -> Vec<NoteKey> {
        self.witnesses.iter().map(|w| w.key.clone()).collect()
    }
}

impl Genesis {
    /// Parses `genesis.json`.
    pub fn from_json(text: &str) -> Result<Genesis, LedgerError> {
        serde_json::from_str(text)
            .map_err(|e| LedgerError::InvalidGenesis(format!("genesis.json does not parse: {e}")))
    }

    /// The genesis hash, which the first block names as its previous hash.
    pub fn hash(&self) -> Hash32 {
        Hash32::digest(&crate::encode::canonical_after(GENESIS_DOMAIN, self))
    }

    /// Checks the document and builds lookup tables. Every problem is named, not just the
    /// first, so an operator can fix a genesis file in one pass.
    pub fn validate(self) -> Result<GenesisIndex, LedgerError> {
        let mut problems: Vec<String> = Vec::new();
        self.check_sizes(&mut problems);
        let regions = self.region_table(&mut problems);
        let programs = self.program_set(&mut problems);
        let mut keys_seen: BTreeMap<PublicKey, String> = BTreeMap::new();
        let (organisations, validators) =
            self.organisation_table(&regions, &programs, &mut keys_seen, &mut problems);
        self.check_observers(&mut keys_seen, &mut problems);
        self.check_governance(&organisations, &mut problems);
        self.check_pseudonym_service(&organisations, &mut problems);
        let witnesses = self.witness_table(&mut keys_seen, &mut problems);
        if validators.is_empty() {
            problems.push("no organisation runs a validator".to_owned());
        }
        if !self
            .organisations
            .iter()
            .any(|o| o.kind == OrgKind::Kemensos)
        {
            problems
                .push("no kemensos organisation: nobody could declare budgets or enrol".to_owned());
        }

        if !problems.is_empty() {
            return Err(LedgerError::InvalidGenesis(problems.join("; ")));
        }
        let hash = self.hash();
        Ok(GenesisIndex {
            genesis: self,
            hash,
            organisations,
            programs,
            regions,
            validators,
            witnesses,
        })
    }

    /// Parses the witnesses' cosignature keys: tlog-cosignature (0x04) note keys, each of
    /// its own, with distinct names.
    fn witness_table(
        &self,
        keys_seen: &mut BTreeMap<PublicKey, String>,
        problems: &mut Vec<String>,
    ) -> Vec<WitnessEntry> {
        let mut witnesses: Vec<WitnessEntry> = Vec::new();
        for org in &self.organisations {
            let Some(vkey) = &org.witness_key else {
                continue;
            };
            let id = &org.id;
            let key = match NoteKey::parse(vkey) {
                Ok(key) if key.algorithm == crate::note::ALGORITHM_COSIGNATURE_V1 => key,
                Ok(_) => {
                    problems.push(format!(
                        "the witness key of {id} is not a tlog-cosignature (0x04) note key"
                    ));
                    continue;
                }
                Err(error) => {
                    problems.push(format!("the witness key of {id}: {error}"));
                    continue;
                }
            };
            if !is_usable_key(&key.key) {
                problems.push(format!(
                    "the witness key of {id} is not a valid ed25519 key"
                ));
            }
            if witnesses.iter().any(|w| w.key.name == key.name) {
                problems.push(format!("the witness name {:?} is used twice", key.name));
            }
            if let Some(other) = keys_seen.insert(key.key, format!("witness key of {id}")) {
                problems.push(format!(
                    "the witness key of {id} is already used by {other}"
                ));
            }
            witnesses.push(WitnessEntry {
                org: id.clone(),
                key,
            });
        }
        witnesses
    }

    /// Checks the chain id's length and the numbers of organisations and regions.
    fn check_sizes(&self, problems: &mut Vec<String>) {
        if self.chain_id.is_empty() || self.chain_id.len() > CHAIN_ID_BYTES_MAX {
            problems.push(format!("chain_id must be 1 to {CHAIN_ID_BYTES_MAX} bytes"));
        }
        if let Err(problem) = crate::note::check_name(&self.log_origin) {
            problems.push(format!("log_origin: {problem}"));
        }
        if self.organisations.len() > GENESIS_ORGANISATIONS_MAX {
            problems.push(format!(
                "more than {GENESIS_ORGANISATIONS_MAX} organisations"
            ));
        }
        if self.regions.len() > GENESIS_REGIONS_MAX {
            problems.push(format!("more than {GENESIS_REGIONS_MAX} regions"));
        }
    }

    /// Checks the regions (names, duplicates, parents) and returns their names by code.
    fn region_table(&self, problems: &mut Vec<String>) -> BTreeMap<RegionCode, String> {
        let mut regions = BTreeMap::new();
        for region in &self.regions {
            if region.name.is_empty() || region.name.len() > NAME_BYTES_MAX {
                problems.push(format!(
                    "region {} has an empty or overlong name",
                    region.code
                ));
            }
            if regions
                .insert(region.code.clone(), region.name.clone())
                .is_some()
            {
                problems.push(format!("region {} is listed twice", region.code));
            }
        }
        for region in &self.regions {
            if let Some(parent) = region.code.parent() {
                if !regions.contains_key(&parent) {
                    problems.push(format!(
                        "region {} has no parent region {parent} in genesis",
                        region.code
                    ));
                }
            }
        }
        regions
    }

    /// Checks the programs for duplicates and returns their codes.
    fn program_set(&self, problems: &mut Vec<String>) -> BTreeSet<ProgramCode> {
        let mut programs = BTreeSet::new();
        for program in &self.programs {
            if !programs.insert(program.code.clone()) {
                problems.push(format!("program {} is listed twice", program.code));
            }
        }
        programs
    }

    /// Checks every organisation, recording its keys in `keys_seen`; returns the
    /// organisations by id and the validators in consensus order.
    fn organisation_table(
        &self,
        regions: &BTreeMap<RegionCode, String>,
        programs: &BTreeSet<ProgramCode>,
        keys_seen: &mut BTreeMap<PublicKey, String>,
        problems: &mut Vec<String>,
    ) -> (BTreeMap<OrgId, Organisation>, Vec<ValidatorEntry>) {
        let mut organisations = BTreeMap::new();
        let mut validators = Vec::new();
        let mut key_ids = BTreeMap::new();
        let mut total_power: u64 = 0;
        for org in &self.organisations {
            let id = &org.id;
            if organisations.insert(id.clone(), org.clone()).is_some() {
                problems.push(format!("organisation {id} is listed twice"));
            }
            check_organisation_scope(org, regions, programs, problems);
            check_organisation_keys(org, keys_seen, problems);
            if let Some(validator) = &org.validator {
                if validator.power == 0 {
                    problems.push(format!("validator of {id} has zero voting power"));
                }
                match total_power.checked_add(validator.power) {
                    // Consensus multiplies total power by 3; keep that from overflowing.
                    Some(sum) if sum <= u64::MAX / 4 => total_power = sum,
                    _ => problems.push("total voting power is too large".to_owned()),
                }
                let Some(checkpoint_key) = checkpoint_key(
                    id,
                    validator,
                    &self.log_origin,
                    &mut key_ids,
                    keys_seen,
                    problems,
                ) else {
                    continue;
                };
                validators.push(ValidatorEntry {
                    org: id.clone(),
                    key: validator.key,
                    power: validator.power,
                    checkpoint_key,
                });
            }
        }
        (organisations, validators)
    }

    /// Checks the governance rule: required organisations exist, and the number of
    /// approvals is one the organisations can give.
    fn check_governance(
        &self,
        organisations: &BTreeMap<OrgId, Organisation>,
        problems: &mut Vec<String>,
    ) {
        let rule = &self.governance;
        for org in &rule.required {
            if !organisations.contains_key(org) {
                problems.push(format!("governance requires unknown organisation {org}"));
            }
        }
        if rule.approvals as usize > organisations.len() {
            problems.push(format!(
                "governance asks for {} approvals of {} organisations",
                rule.approvals,
                organisations.len()
            ));
        }
        if rule.approvals > 0 && (rule.approvals as usize) < rule.required.len() {
            problems.push(
                "governance asks for fewer approvals than it requires organisations".to_owned(),
            );
        }
    }

    fn check_pseudonym_service(
        &self,
        organisations: &BTreeMap<OrgId, Organisation>,
        problems: &mut Vec<String>,
    ) {
        let Some(service) = &self.pseudonym_service else {
            return;
        };
        if !organisations.contains_key(&service.organisation) {
            problems.push(format!(
                "the pseudonym service's organisation {} is not in genesis",
                service.organisation
            ));
        }
        if service.key_version == 0 || service.key_version as usize > PSEUDONYM_KEYS_MAX {
            problems.push(format!(
                "the pseudonym key version is 1 to {PSEUDONYM_KEYS_MAX} (a chain keeps that many keys)"
            ));
        }
        if !crate::pseudonyms::is_ristretto_public_key(&service.public_key) {
            problems.push(format!(
                "the pseudonym service's public key {} is not a ristretto255 key",
                service.public_key
            ));
        }
    }

    /// Checks the observers' names and network keys, recording the keys in `keys_seen`.
    fn check_observers(
        &self,
        keys_seen: &mut BTreeMap<PublicKey, String>,
        problems: &mut Vec<String>,
    ) {
        for observer in &self.observers {
            if observer.name.is_empty() || observer.name.len() > NAME_BYTES_MAX {
                problems.push("an observer has an empty or overlong name".to_owned());
            }
            if !is_usable_key(&observer.key) {
                problems.push(format!(
                    "observer {} has key {}, which is not a valid ed25519 key",
                    observer.name, observer.key
                ));
            }
            if let Some(other) =
                keys_seen.insert(observer.key, format!("observer {}", observer.name))
            {
                problems.push(format!(
                    "key {} of observer {} is already used by {other}",
                    observer.key, observer.name
                ));
            }
        }
    }
}

/// Parses a validator's checkpoint key: an Ed25519 note key (type 0x01) of its own.
fn checkpoint_key(
    id: &OrgId,
    validator: &ValidatorSpec,
    log_origin: &str,
    key_ids: &mut BTreeMap<[u8; 4], String>,
    keys_seen: &mut BTreeMap<PublicKey, String>,
    problems: &mut Vec<String>,
) -> Option<NoteKey> {
    let key = match NoteKey::parse(&validator.checkpoint_key) {
        Ok(key) if key.algorithm == crate::note::ALGORITHM_ED25519 => key,
        Ok(_) => {
            problems.push(format!(
                "the checkpoint key of {id}'s validator is not an Ed25519 (0x01) note key"
            ));
            return None;
        }
        Err(error) => {
            problems.push(format!("the checkpoint key of {id}'s validator: {error}"));
            return None;
        }
    };
    if !is_usable_key(&key.key) {
        problems.push(format!(
            "the checkpoint key of {id}'s validator is not a valid ed25519 key"
        ));
    }
    // The C2SP log key of a checkpoint is named after the log (c2sp.org/tlog-policy): every
    // validator's key bears the origin as its name and differs by key ID.
    if key.name != log_origin {
        problems.push(format!(
            "the checkpoint key of {id}'s validator is named {:?}; it must be the log origin {log_origin:?}",
            key.name
        ));
    }
    if let Some(other) = key_ids.insert(key.key_id(), id.to_string()) {
        problems.push(format!(
            "the checkpoint keys of {id} and {other} have the same key ID; generate another key"
        ));
    }
    let owner = format!("checkpoint key of {id}");
    if let Some(other) = keys_seen.insert(key.key, owner) {
        problems.push(format!(
            "the checkpoint key of {id}'s validator is already used by {other}"
        ));
    }
    Some(key)
}

/// Checks an organisation's name, its region and program scopes and its number of
/// transaction keys.
fn check_organisation_scope(
    org: &Organisation,
    regions: &BTreeMap<RegionCode, String>,
    programs: &BTreeSet<ProgramCode>,
    problems: &mut Vec<String>,
) {
    let id = &org.id;
    if org.name.is_empty() || org.name.len() > NAME_BYTES_MAX {
        problems.push(format!("organisation {id} has an empty or overlong name"));
    }
    for region in &org.regions {
        if !regions.contains_key(region) {
            problems.push(format!(
                "organisation {id} is scoped to unknown region {region}"
            ));
        }
    }
    for program in &org.programs {
        if !programs.contains(program) {
            problems.push(format!(
                "organisation {id} is scoped to unknown program {program}"
            ));
        }
    }
    if org.tx_keys.is_empty() || org.tx_keys.len() > ORG_TX_KEYS_MAX {
        problems.push(format!(
            "organisation {id} must list 1 to {ORG_TX_KEYS_MAX} transaction keys"
        ));
    }
}

/// Checks that an organisation's transaction keys and validator key are usable ed25519 keys
/// not listed before, recording them in `keys_seen`.
fn check_organisation_keys(
    org: &Organisation,
    keys_seen: &mut BTreeMap<PublicKey, String>,
    problems: &mut Vec<String>,
) {
    let id = &org.id;
    let org_keys = org
        .tx_keys
        .iter()
        .chain(org.validator.as_ref().map(|v| &v.key));
    for key in org_keys {
        if !is_usable_key(key) {
            problems.push(format!(
                "organisation {id} lists key {key}, which is not a valid ed25519 key"
            ));
        }
        if let Some(other) = keys_seen.insert(*key, format!("organisation {id}")) {
            problems.push(format!(
                "key {key} is listed twice ({other} and organisation {id})"
            ));
        }
    }
}

/// True when `key` decodes to an ed25519 point that is not of small order.
pub fn is_usable_key(key: &PublicKey) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes())
        .map(|k| !k.is_weak())
        .unwrap_or(false)
}

impl GenesisIndex {
    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.genesis.chain_id
    }

    /// True when `region` is listed in genesis.
    pub fn has_region(&self, region: &RegionCode) -> bool {
        self.regions.contains_key(region)
    }

    /// The validator with consensus key `key`.
    pub fn validator(&self, key: &PublicKey) -> Option<&ValidatorEntry> {
        self.validators.iter().find(|v| &v.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PublicKey {
        PublicKey(
            ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
                .verifying_key()
                .to_bytes(),
        )
    }

    fn minimal() -> Genesis {
        Genesis {
            chain_id: "bansos-test".into(),
            log_origin: "bansos.test/log".into(),
            genesis_time_ms: 1_767_225_600_000,
            organisations: vec![Organisation {
                id: OrgId::new("kemensos").unwrap(),
                kind: OrgKind::Kemensos,
                name: "Kementerian Sosial".into(),
                regions: vec![],
                programs: vec![],
                tx_keys: vec![key(1)],
                validator: Some(ValidatorSpec {
                    key: key(2),
                    power: 1,
                    checkpoint_key: NoteKey::ed25519("bansos.test/log", key(4)).unwrap().vkey(),
                }),
                witness_key: None,
            }],
            observers: vec![],
            governance: Default::default(),
            pseudonym_service: None,
            programs: vec![Program {
                code: ProgramCode::new("PKH").unwrap(),
                name: "Program Keluarga Harapan".into(),
            }],
            regions: vec![Region {
                code: RegionCode::new("35").unwrap(),
                name: "Jawa Timur".into(),
            }],
        }
    }

    #[test]
    fn minimal_genesis_validates() {
        let index = minimal().validate().unwrap();
        assert_eq!(index.validators.len(), 1);
    }

    #[test]
    fn genesis_names_every_problem() {
        let mut genesis = minimal();
        let mut twin = genesis.organisations[0].clone();
        twin.validator = None;
        twin.regions = vec![RegionCode::new("52.71").unwrap()];
        genesis.organisations.push(twin);
        genesis.organisations[0].validator = None;
        genesis.regions.push(Region {
            code: RegionCode::new("35.10").unwrap(),
            name: "".into(),
        });
        let message = genesis.validate().unwrap_err().to_string();
        for expected in [
            "organisation kemensos is listed twice",
            "unknown region 52.71",
            "is listed twice (organisation kemensos and organisation kemensos)",
            "no organisation runs a validator",
            "region 35.10 has an empty or overlong name",
        ] {
            assert!(
                message.contains(expected),
                "{expected:?} missing from {message}"
            );
        }
    }

    #[test]
    fn a_checkpoint_key_must_be_an_ed25519_vkey_named_after_the_log_and_its_own_key() {
        let validator = |g: &mut Genesis| g.organisations[0].validator.as_mut().unwrap().clone();
        let set = |g: &mut Genesis, vkey: String| {
            g.organisations[0]
                .validator
                .as_mut()
                .unwrap()
                .checkpoint_key = vkey;
        };
        for (vkey, problem) in [
            (
                NoteKey::ed25519("another/log", key(4)).unwrap().vkey(),
                "must be the log origin",
            ),
            (
                NoteKey::cosigner("bansos.test/log", key(4)).unwrap().vkey(),
                "not an Ed25519 (0x01) note key",
            ),
            (
                NoteKey::ed25519("bansos.test/log", key(2)).unwrap().vkey(),
                "already used by",
            ),
            (
                "bansos.test/log+00000000+AAAA".to_owned(),
                "malformed verifier key",
            ),
        ] {
            let mut genesis = minimal();
            assert!(validator(&mut genesis)
                .checkpoint_key
                .starts_with("bansos.test/log+"));
            set(&mut genesis, vkey);
            let error = genesis.validate().unwrap_err().to_string();
            assert!(error.contains(problem), "{error}");
        }
    }

    #[test]
    fn genesis_rejects_region_without_parent() {
        let mut genesis = minimal();
        genesis.regions.push(Region {
            code: RegionCode::new("52.71").unwrap(),
            name: "Kota Mataram".into(),
        });
        let message = genesis.validate().unwrap_err().to_string();
        assert!(message.contains("has no parent region 52"), "{message}");
    }
}
