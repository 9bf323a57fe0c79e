//! The validator set as a verifier sees it, and the commit certificate stored beside each
//! block: the precommit signatures of more than two thirds of the voting power for (height,
//! round, block hash). An auditor checks one with nothing but genesis; the node checks each
//! certificate Malachite hands it the same way before it commits (Malachite 0.8.2's
//! `verify_commit_certificate` applies the same rule; a node test checks they agree).

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::VerifyingKey;
use ledger::genesis::ValidatorEntry;
use ledger::types::{Hash32, PublicKey, SignatureBytes};

use crate::signing::{self, ChainBinding, VoteKind};

/// One validator: its consensus key and voting power.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub key: PublicKey,
    pub verifying_key: VerifyingKey,
    pub power: u64,
}

/// A validator set: unique keys in ascending order, so every node iterates it alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
}

impl ValidatorSet {
    /// Builds a set from genesis entries, sorted by key and deduplicated. `None` for an
    /// empty set, a key that is not an ed25519 point, a zero power, or total power whose
    /// two-thirds threshold could overflow.
    pub fn from_genesis(entries: &[ValidatorEntry]) -> Option<ValidatorSet> {
        let mut validators = Vec::with_capacity(entries.len());
        let mut total_power: u64 = 0;
        for entry in entries {
            let verifying_key = VerifyingKey::from_bytes(entry.key.as_bytes()).ok()?;
            if entry.power == 0 {
                return None;
            }
            total_power = total_power.checked_add(entry.power)?;
            validators.push(Validator {
                key: entry.key,
                verifying_key,
                power: entry.power,
            });
        }
        validators.sort_by_key(|v| v.key);
        let before = validators.len();
        validators.dedup_by_key(|v| v.key);
        if validators.is_empty() || validators.len() != before || total_power > u64::MAX / 3 {
            return None;
        }
        Some(ValidatorSet {
            validators,
            total_power,
        })
    }

    /// Builds a set from the ledger's record of one (genesis's or a governance change's).
    pub fn from_record(record: &ledger::governance::ValidatorSetRecord) -> Option<ValidatorSet> {
        ValidatorSet::from_genesis(&record.entries().ok()?)
    }

    /// The validators, in ascending key order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The validator with this key.
    pub fn get(&self, key: &PublicKey) -> Option<&Validator> {
        self.validators
            .binary_search_by_key(key, |v| v.key)
            .ok()
            .and_then(|i| self.validators.get(i))
    }

    /// The position in [`ValidatorSet::validators`] of the validator that proposes at
    /// (`height`, `round`): round-robin over the sorted set, shifted by height, so that
    /// every validator proposes in turn and a crashed proposer costs one round, not a
    /// height. Consensus picks its proposers by this rule, and the transaction relay sends
    /// to the ones due next.
    pub fn proposer_index(&self, height: u64, round: u32) -> usize {
        let count = self.validators.len() as u64;
        let turn = height.saturating_sub(1).wrapping_add(u64::from(round));
        // A set is never empty: `from_genesis` refuses to build one.
        (turn % count) as usize
    }

    /// The sum of every validator's voting power.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Whether `signed` power is strictly more than two thirds of the total.
    pub fn is_quorum(&self, signed: u64) -> bool {
        u128::from(signed) * 3 > u128::from(self.total_power) * 2
    }
}

/// A commit certificate as stored beside its block and served to auditors.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StoredCertificate {
    pub height: u64,
    pub round: u32,
    pub block_hash: Hash32,
    pub signatures: Vec<(PublicKey, SignatureBytes)>,
}

/// Why a stored certificate does not prove its block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate is for height {got}, expected {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("certificate signs block {got}, expected {expected}")]
    WrongBlock { expected: Hash32, got: Hash32 },
    #[error("certificate has a signature from {0}, which is not a validator")]
    UnknownValidator(PublicKey),
    #[error("certificate has two signatures from {0}")]
    DuplicateSigner(PublicKey),
    #[error("certificate signature of {0} does not verify")]
    BadSignature(PublicKey),
    #[error(
        "certificate carries {signed} of {total} voting power; more than two thirds is needed"
    )]
    NotEnoughPower { signed: u64, total: u64 },
    #[error("certificate bytes do not decode: {0}")]
    Malformed(String),
}

impl CertificateError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CertificateError::WrongHeight { .. } => "certificate_wrong_height",
            CertificateError::WrongBlock { .. } => "certificate_wrong_block",
            CertificateError::UnknownValidator(_) => "certificate_unknown_validator",
            CertificateError::DuplicateSigner(_) => "certificate_duplicate_signer",
            CertificateError::BadSignature(_) => "certificate_bad_signature",
            CertificateError::NotEnoughPower { .. } => "certificate_not_enough_power",
            CertificateError::Malformed(_) => "certificate_malformed",
        }
    }
}

impl StoredCertificate {
    /// A certificate of `keys`' precommits for `block_hash` at (`height`, `round`), as the
    /// validators holding those keys would sign it (for tests, tools and simulations; the
    /// node takes its certificates from consensus).
    pub fn sign(
        chain: &ChainBinding,
        keys: &[ed25519_dalek::SigningKey],
        height: u64,
        round: u32,
        block_hash: Hash32,
    ) -> StoredCertificate {
        use ed25519_dalek::Signer as _;
        let signatures = keys
            .iter()
            .map(|key| {
                let public = PublicKey(key.verifying_key().to_bytes());
                let bytes = signing::vote_bytes(
                    chain,
                    VoteKind::Precommit,
                    height,
                    i64::from(round),
                    Some(&block_hash),
                    &public,
                );
                (public, SignatureBytes(key.sign(&bytes).to_bytes()))
            })
            .collect();
        StoredCertificate {
            height,
            round,
            block_hash,
            signatures,
        }
    }

    /// Canonical bytes, as stored with the block.
    pub fn to_bytes(&self) -> Vec<u8> {
        ledger::encode::canonical(self)
    }

    /// Decodes stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoredCertificate, CertificateError> {
        borsh::from_slice(bytes).map_err(|e| CertificateError::Malformed(e.to_string()))
    }

    /// Checks, without any network, that this certificate proves `block_hash` at `height`
    /// on the chain `chain` names, under `validators`: every signature valid, no signer twice, no
    /// stranger, and more than two thirds of the voting power.
    pub fn verify(
        &self,
        chain: &ChainBinding,
        validators: &ValidatorSet,
        height: u64,
        block_hash: &Hash32,
    ) -> Result<(), CertificateError> {
        self.verify_with(chain, validators, height, block_hash, signing::verify)
    }

    /// [`StoredCertificate::verify`], with each signature checked by `check` (key, message,
    /// signature): a node passes one that remembers the votes it has already checked.
    pub fn verify_with(
        &self,
        chain: &ChainBinding,
        validators: &ValidatorSet,
        height: u64,
        block_hash: &Hash32,
        check: impl Fn(&PublicKey, &[u8], &[u8; 64]) -> bool,
    ) -> Result<(), CertificateError> {
        if self.height != height {
            return Err(CertificateError::WrongHeight {
                expected: height,
                got: self.height,
            });
        }
        if &self.block_hash != block_hash {
            return Err(CertificateError::WrongBlock {
                expected: *block_hash,
                got: self.block_hash,
            });
        }
        let mut signed: u64 = 0;
        let mut seen = BTreeSet::new();
        for (key, signature) in &self.signatures {
            let validator = validators
                .get(key)
                .ok_or(CertificateError::UnknownValidator(*key))?;
            if !seen.insert(*key) {
                return Err(CertificateError::DuplicateSigner(*key));
            }
            let message = signing::vote_bytes(
                chain,
                VoteKind::Precommit,
                self.height,
                i64::from(self.round),
                Some(&self.block_hash),
                key,
            );
            if !check(&validator.key, &message, &signature.0) {
                return Err(CertificateError::BadSignature(*key));
            }
            // Cannot overflow: the set's total power is at most u64::MAX / 3.
            signed += validator.power;
        }
        if !validators.is_quorum(signed) {
            return Err(CertificateError::NotEnoughPower {
                signed,
                total: validators.total_power(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ledger::types::OrgId;

    /// A checkpoint key; these tests are about consensus keys only.
    fn note_key() -> ledger::note::NoteKey {
        let key = SigningKey::from_bytes(&[200; 32])
            .verifying_key()
            .to_bytes();
        ledger::note::NoteKey::ed25519("test/checkpoints", PublicKey(key)).unwrap()
    }

    fn set(keys: &[SigningKey]) -> ValidatorSet {
        let entries: Vec<ValidatorEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorEntry {
                org: OrgId::new(format!("org-{i}")).unwrap(),
                key: PublicKey(k.verifying_key().to_bytes()),
                power: 1,
                checkpoint_key: note_key(),
            })
            .collect();
        ValidatorSet::from_genesis(&entries).unwrap()
    }

    fn chain(id: &str) -> ChainBinding {
        ChainBinding {
            chain_id: id.into(),
            genesis_hash: Hash32([1; 32]),
        }
    }

    #[test]
    fn three_of_four_prove_a_block_and_two_do_not() {
        let keys: Vec<SigningKey> = (1..=4).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
        let validators = set(&keys);
        let block = Hash32([7; 32]);
        let three = StoredCertificate::sign(&chain("c"), &keys[..3], 7, 0, block);
        let three = StoredCertificate::from_bytes(&three.to_bytes()).unwrap();
        three.verify(&chain("c"), &validators, 7, &block).unwrap();
        assert_eq!(
            StoredCertificate::sign(&chain("c"), &keys[..2], 7, 0, block).verify(
                &chain("c"),
                &validators,
                7,
                &block
            ),
            Err(CertificateError::NotEnoughPower {
                signed: 2,
                total: 4
            })
        );
        assert!(matches!(
            three.verify(&chain("other-chain"), &validators, 7, &block),
            Err(CertificateError::BadSignature(_))
        ));
        let other_genesis = ChainBinding {
            chain_id: "c".into(),
            genesis_hash: Hash32([2; 32]),
        };
        assert!(matches!(
            three.verify(&other_genesis, &validators, 7, &block),
            Err(CertificateError::BadSignature(_))
        ));
        assert!(matches!(
            three.verify(&chain("c"), &validators, 8, &block),
            Err(CertificateError::WrongHeight { .. })
        ));
    }

    #[test]
    fn a_set_with_duplicate_keys_or_zero_power_is_refused() {
        let key = PublicKey(SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes());
        let entry = |power| ValidatorEntry {
            org: OrgId::new("org").unwrap(),
            key,
            power,
            checkpoint_key: note_key(),
        };
        assert!(ValidatorSet::from_genesis(&[entry(1), entry(1)]).is_none());
        assert!(ValidatorSet::from_genesis(&[entry(0)]).is_none());
        assert!(ValidatorSet::from_genesis(&[]).is_none());
        assert!(ValidatorSet::from_genesis(&[entry(u64::MAX)]).is_none());
    }
}
