//! Signing and verification of consensus messages, and commit certificates in the form the
//! ledger stores beside each block and an auditor checks offline.

use arc_malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, Round, SignedMessage, SigningScheme, ValidatorProof,
    ValidatorSet as _, VoteExtensionScope,
};
use arc_malachitebft_signing::{Error as SigningError, Signer, VerificationResult, Verifier};
use async_trait::async_trait;
use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use ledger::types::{Hash32, PublicKey, SignatureBytes};

use super::types::{
    BansosContext, BlockHeight, BlockId, ConsensusSignature, Ed25519Scheme, Proposal,
    ValidatorAddress, ValidatorSet, Vote,
};

/// Domain separation for vote extensions, which this chain does not use but must still sign
/// distinctly if the engine ever asks.
const EXTENSION_DOMAIN: &[u8] = b"bansos-ledger/vote-extension/v1\0";

fn verify(
    key: &VerifyingKey,
    message: &[u8],
    signature: &ConsensusSignature,
) -> VerificationResult {
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    VerificationResult::from_bool(key.verify_strict(message, &signature).is_ok())
}

/// Signs consensus messages with a validator's key.
pub struct ConsensusSigner {
    context: BansosContext,
    key: SigningKey,
}

impl ConsensusSigner {
    /// A signer for `context`'s chain.
    pub fn new(context: BansosContext, key: SigningKey) -> Self {
        ConsensusSigner { context, key }
    }

    /// The validator address of this signer.
    pub fn address(&self) -> ValidatorAddress {
        ValidatorAddress(PublicKey(self.key.verifying_key().to_bytes()))
    }

    fn sign_bytes(&self, bytes: &[u8]) -> ConsensusSignature {
        ConsensusSignature(self.key.sign(bytes).to_bytes())
    }

    /// Signs the `Fin` part of a proposal stream.
    pub fn sign_stream(
        &self,
        height: BlockHeight,
        round: Round,
        pol_round: Round,
        block_hash: &Hash32,
    ) -> ConsensusSignature {
        self.sign_bytes(&self.context.stream_signing_bytes(
            height,
            round,
            pol_round,
            &self.address(),
            block_hash,
        ))
    }
}

fn extension_bytes(scope: &VoteExtensionScope<BansosContext>) -> Vec<u8> {
    let mut bytes = EXTENSION_DOMAIN.to_vec();
    bytes.extend_from_slice(&scope.height.0.to_be_bytes());
    bytes.extend_from_slice(&scope.round.as_i64().to_be_bytes());
    bytes.extend_from_slice(scope.value_id.0.as_bytes());
    bytes.extend_from_slice(scope.validator_address.0.as_bytes());
    bytes
}

#[async_trait]
impl Signer<BansosContext> for ConsensusSigner {
    async fn sign_vote(
        &self,
        vote: Vote,
    ) -> Result<SignedMessage<BansosContext, Vote>, SigningError> {
        let signature = self.sign_bytes(&self.context.vote_signing_bytes(&vote));
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<BansosContext, Proposal>, SigningError> {
        let signature = self.sign_bytes(&self.context.proposal_signing_bytes(&proposal));
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<BansosContext>,
        extension: (),
    ) -> Result<SignedMessage<BansosContext, ()>, SigningError> {
        Ok(SignedMessage::new(
            extension,
            self.sign_bytes(&extension_bytes(&scope)),
        ))
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<BansosContext>, SigningError> {
        // Malachite requires exactly these bytes, with no domain prefix of ours.
        let signature = self.sign_bytes(&ValidatorProof::<BansosContext>::signing_bytes(
            &public_key,
            &peer_id,
        ));
        Ok(ValidatorProof::new(public_key, peer_id, signature))
    }
}

/// Verifies consensus messages of one chain.
#[derive(Clone)]
pub struct ConsensusVerifier {
    context: BansosContext,
}

impl ConsensusVerifier {
    /// A verifier for `context`'s chain.
    pub fn new(context: BansosContext) -> Self {
        ConsensusVerifier { context }
    }

    /// Verifies a proposal stream's `Fin` signature.
    pub fn verify_stream(
        &self,
        height: BlockHeight,
        round: Round,
        pol_round: Round,
        proposer: &ValidatorAddress,
        block_hash: &Hash32,
        key: &VerifyingKey,
        signature: &ConsensusSignature,
    ) -> bool {
        verify(
            key,
            &self
                .context
                .stream_signing_bytes(height, round, pol_round, proposer, block_hash),
            signature,
        )
        .is_valid()
    }
}

#[async_trait]
impl Verifier<BansosContext> for ConsensusVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &ConsensusSignature,
        public_key: &VerifyingKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(verify(
            public_key,
            &self.context.vote_signing_bytes(vote),
            signature,
        ))
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &ConsensusSignature,
        public_key: &VerifyingKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(verify(
            public_key,
            &self.context.proposal_signing_bytes(proposal),
            signature,
        ))
    }

    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<BansosContext>,
        _extension: &(),
        signature: &ConsensusSignature,
        public_key: &VerifyingKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(verify(public_key, &extension_bytes(scope), signature))
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<BansosContext>,
    ) -> Result<VerificationResult, SigningError> {
        let Ok(key) = proof.decoded_public_key() else {
            return Ok(VerificationResult::Invalid);
        };
        Ok(verify(&key, &proof.preimage(), &proof.signature))
    }
}

/// A commit certificate as stored beside its block and served to auditors: the precommit
/// signatures of more than two thirds of the voting power for (height, round, block hash).
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

impl StoredCertificate {
    /// Converts Malachite's certificate for storage.
    pub fn from_commit(certificate: &CommitCertificate<BansosContext>) -> StoredCertificate {
        StoredCertificate {
            height: certificate.height.0,
            round: certificate.round.as_u32().unwrap_or(0),
            block_hash: certificate.value_id.0,
            signatures: certificate
                .commit_signatures
                .iter()
                .map(|s| (s.address.0, SignatureBytes(s.signature.0)))
                .collect(),
        }
    }

    /// Converts back to Malachite's certificate.
    pub fn to_commit(&self) -> CommitCertificate<BansosContext> {
        CommitCertificate {
            height: BlockHeight(self.height),
            round: Round::new(self.round),
            value_id: BlockId(self.block_hash),
            commit_signatures: self
                .signatures
                .iter()
                .map(|(key, signature)| {
                    CommitSignature::new(ValidatorAddress(*key), ConsensusSignature(signature.0))
                })
                .collect(),
        }
    }

    /// Canonical bytes, as stored with the block.
    pub fn to_bytes(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    /// Decodes stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoredCertificate, CertificateError> {
        borsh::from_slice(bytes).map_err(|e| CertificateError::Malformed(e.to_string()))
    }

    /// Checks, without any network, that this certificate proves `block_hash` at `height`
    /// under `validators`: every signature valid, no signer twice, no stranger, and more
    /// than two thirds of the voting power. The same rule Malachite applies, written out so
    /// an auditor needs nothing but genesis.
    pub fn verify(
        &self,
        context: &BansosContext,
        validators: &ValidatorSet,
        height: u64,
        block_hash: &Hash32,
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
        let total: u64 = validators.total_voting_power();
        let mut signed: u64 = 0;
        let mut seen = std::collections::BTreeSet::new();
        for (key, signature) in &self.signatures {
            let validator = validators
                .get_by_address(&ValidatorAddress(*key))
                .ok_or(CertificateError::UnknownValidator(*key))?;
            if !seen.insert(*key) {
                return Err(CertificateError::DuplicateSigner(*key));
            }
            let precommit = <BansosContext as arc_malachitebft_app_channel::app::types::core::Context>::new_precommit(
                context,
                BlockHeight(self.height),
                Round::new(self.round),
                arc_malachitebft_app_channel::app::types::core::NilOrVal::Val(BlockId(self.block_hash)),
                validator.address,
            );
            if verify(
                &validator.public_key,
                &context.vote_signing_bytes(&precommit),
                &ConsensusSignature(signature.0),
            )
            .is_invalid()
            {
                return Err(CertificateError::BadSignature(*key));
            }
            signed = signed.saturating_add(validator.voting_power);
        }
        // Strictly more than two thirds, computed without division.
        if u128::from(signed) * 3 <= u128::from(total) * 2 {
            return Err(CertificateError::NotEnoughPower { signed, total });
        }
        Ok(())
    }
}

/// The public key encoding Malachite's network expects in validator proofs.
pub fn encoded_public_key(key: &VerifyingKey) -> Vec<u8> {
    Ed25519Scheme::encode_public_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arc_malachitebft_app_channel::app::types::core::{Context as _, NilOrVal, ThresholdParams};
    use arc_malachitebft_app_channel::VerifierExt;
    use ledger::genesis::ValidatorEntry;
    use ledger::types::OrgId;

    fn validators(n: u8) -> (Vec<SigningKey>, ValidatorSet) {
        let keys: Vec<SigningKey> = (1..=n).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
        let entries: Vec<ValidatorEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorEntry {
                org: OrgId::new(format!("org-{i}")).unwrap(),
                key: PublicKey(k.verifying_key().to_bytes()),
                power: 1,
            })
            .collect();
        (keys, ValidatorSet::from_genesis(&entries).unwrap())
    }

    async fn certificate(
        context: &BansosContext,
        keys: &[SigningKey],
        height: u64,
        block: Hash32,
    ) -> CommitCertificate<BansosContext> {
        let mut votes = Vec::new();
        for key in keys {
            let signer = ConsensusSigner::new(context.clone(), key.clone());
            let vote = context.new_precommit(
                BlockHeight(height),
                Round::new(0),
                NilOrVal::Val(BlockId(block)),
                signer.address(),
            );
            votes.push(signer.sign_vote(vote).await.unwrap());
        }
        CommitCertificate::new(BlockHeight(height), Round::new(0), BlockId(block), votes)
    }

    #[tokio::test]
    async fn three_of_four_precommits_prove_a_block_offline_and_to_malachite() {
        let context = BansosContext::new("bansos-test");
        let (keys, set) = validators(4);
        let block = Hash32::digest(b"block 7");
        let commit = certificate(&context, &keys[..3], 7, block).await;
        let verifier = ConsensusVerifier::new(context.clone());
        verifier
            .verify_commit_certificate(&context, &commit, &set, ThresholdParams::default())
            .await
            .unwrap();
        let stored =
            StoredCertificate::from_bytes(&StoredCertificate::from_commit(&commit).to_bytes())
                .unwrap();
        stored.verify(&context, &set, 7, &block).unwrap();
        assert_eq!(stored.to_commit(), commit);
    }

    #[tokio::test]
    async fn two_of_four_precommits_prove_nothing() {
        let context = BansosContext::new("bansos-test");
        let (keys, set) = validators(4);
        let block = Hash32::digest(b"block 8");
        let commit = certificate(&context, &keys[..2], 8, block).await;
        let verifier = ConsensusVerifier::new(context.clone());
        assert!(verifier
            .verify_commit_certificate(&context, &commit, &set, ThresholdParams::default())
            .await
            .is_err());
        let stored = StoredCertificate::from_commit(&commit);
        assert_eq!(
            stored.verify(&context, &set, 8, &block),
            Err(CertificateError::NotEnoughPower {
                signed: 2,
                total: 4
            })
        );
    }

    #[tokio::test]
    async fn a_certificate_from_another_chain_or_for_another_block_fails() {
        let context = BansosContext::new("bansos-test");
        let other_chain = BansosContext::new("bansos-other");
        let (keys, set) = validators(4);
        let block = Hash32::digest(b"block 9");
        let commit = certificate(&other_chain, &keys, 9, block).await;
        let stored = StoredCertificate::from_commit(&commit);
        assert!(matches!(
            stored.verify(&context, &set, 9, &block),
            Err(CertificateError::BadSignature(_))
        ));
        let honest = StoredCertificate::from_commit(&certificate(&context, &keys, 9, block).await);
        assert!(matches!(
            honest.verify(&context, &set, 9, &Hash32::digest(b"other")),
            Err(CertificateError::WrongBlock { .. })
        ));
        let mut doubled = honest.clone();
        doubled.signatures.push(doubled.signatures[0]);
        assert!(matches!(
            doubled.verify(&context, &set, 9, &block),
            Err(CertificateError::DuplicateSigner(_))
        ));
        let stranger = SigningKey::from_bytes(&[99; 32]);
        let mut foreign = honest.clone();
        foreign.signatures[0].0 = PublicKey(stranger.verifying_key().to_bytes());
        assert!(matches!(
            foreign.verify(&context, &set, 9, &block),
            Err(CertificateError::UnknownValidator(_))
        ));
    }

    #[tokio::test]
    async fn validator_proofs_verify_and_name_the_peer() {
        let context = BansosContext::new("bansos-test");
        let key = SigningKey::from_bytes(&[5; 32]);
        let signer = ConsensusSigner::new(context.clone(), key.clone());
        let proof = signer
            .sign_validator_proof(encoded_public_key(&key.verifying_key()), b"peer".to_vec())
            .await
            .unwrap();
        let verifier = ConsensusVerifier::new(context);
        assert!(verifier
            .verify_validator_proof(&proof)
            .await
            .unwrap()
            .is_valid());
        let forged = ValidatorProof::<BansosContext>::new(
            proof.public_key.clone(),
            b"other peer".to_vec(),
            proof.signature,
        );
        assert!(verifier
            .verify_validator_proof(&forged)
            .await
            .unwrap()
            .is_invalid());
    }

    #[test]
    fn proposer_rotates_with_height_and_round() {
        let context = BansosContext::new("bansos-test");
        let (_, set) = validators(4);
        let at = |h: u64, r: u32| {
            context
                .select_proposer(&set, BlockHeight(h), Round::new(r))
                .address
        };
        assert_ne!(at(1, 0), at(2, 0));
        assert_eq!(at(1, 1), at(2, 0));
        assert_eq!(at(1, 0), at(5, 0));
    }
}
