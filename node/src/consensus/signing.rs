//! Signing and verification of consensus messages (Malachite's `Signer` and `Verifier`),
//! and the conversion between Malachite's commit certificates and the form the ledger
//! stores beside each block (`proto::StoredCertificate`, which an auditor checks offline).

use arc_malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, Round, SignedMessage, SigningScheme, ValidatorProof,
    VoteExtensionScope,
};
use arc_malachitebft_signing::{Error as SigningError, Signer, VerificationResult, Verifier};
use async_trait::async_trait;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use ledger::types::{Hash32, PublicKey, SignatureBytes};
use proto::certificate::StoredCertificate;

use super::types::{
    BansosContext, BlockHeight, BlockId, ConsensusSignature, Ed25519Scheme, Proposal,
    ValidatorAddress, Vote,
};

/// Domain separation for vote extensions, which this chain does not use but must still sign
/// distinctly if the engine ever asks.
const EXTENSION_DOMAIN: &[u8] = b"bansos-ledger/vote-extension/v1\0";

fn verify(
    key: &VerifyingKey,
    message: &[u8],
    signature: &ConsensusSignature,
) -> VerificationResult {
    let key = PublicKey(key.to_bytes());
    VerificationResult::from_bool(proto::signing::verify(&key, message, &signature.0))
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
        #[cfg(feature = "byzantine")]
        let vote = super::byzantine::tamper_vote(vote);
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
    #[allow(clippy::too_many_arguments)] // the signed fields, each named at the call site
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

/// Converts Malachite's certificate for storage.
pub fn stored_certificate(certificate: &CommitCertificate<BansosContext>) -> StoredCertificate {
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

/// Converts a stored certificate back to Malachite's (for value sync).
pub fn commit_certificate(stored: &StoredCertificate) -> CommitCertificate<BansosContext> {
    CommitCertificate {
        height: BlockHeight(stored.height),
        round: Round::new(stored.round),
        value_id: BlockId(stored.block_hash),
        commit_signatures: stored
            .signatures
            .iter()
            .map(|(key, signature)| {
                CommitSignature::new(ValidatorAddress(*key), ConsensusSignature(signature.0))
            })
            .collect(),
    }
}

/// The public key encoding Malachite's network expects in validator proofs.
pub fn encoded_public_key(key: &VerifyingKey) -> Vec<u8> {
    Ed25519Scheme::encode_public_key(key)
}

#[cfg(test)]
mod tests {
    use super::super::types::ValidatorSet;
    use super::*;
    use arc_malachitebft_app_channel::app::types::core::{Context as _, NilOrVal, ThresholdParams};
    use arc_malachitebft_app_channel::VerifierExt;
    use ledger::genesis::ValidatorEntry;
    use ledger::types::OrgId;
    use proto::certificate::CertificateError;

    fn validators(n: u8) -> (Vec<SigningKey>, ValidatorSet) {
        let keys: Vec<SigningKey> = (1..=n).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
        let entries: Vec<ValidatorEntry> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| ValidatorEntry {
                org: OrgId::new(format!("org-{i}")).unwrap(),
                key: PublicKey(k.verifying_key().to_bytes()),
                power: 1,
                // Checkpoint keys play no part in consensus signatures.
                checkpoint_key: ledger::note::NoteKey::ed25519(
                    &format!("test/org-{i}"),
                    PublicKey([9; 32]),
                )
                .unwrap(),
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
        let context = BansosContext::for_test("bansos-test");
        let (keys, set) = validators(4);
        let block = Hash32::digest(b"block 7");
        let commit = certificate(&context, &keys[..3], 7, block).await;
        let verifier = ConsensusVerifier::new(context.clone());
        verifier
            .verify_commit_certificate(&context, &commit, &set, ThresholdParams::default())
            .await
            .unwrap();
        let stored =
            StoredCertificate::from_bytes(&stored_certificate(&commit).to_bytes()).unwrap();
        stored
            .verify(context.chain(), set.verifier_view(), 7, &block)
            .unwrap();
        assert_eq!(commit_certificate(&stored), commit);
    }

    #[tokio::test]
    async fn two_of_four_precommits_prove_nothing() {
        let context = BansosContext::for_test("bansos-test");
        let (keys, set) = validators(4);
        let block = Hash32::digest(b"block 8");
        let commit = certificate(&context, &keys[..2], 8, block).await;
        let verifier = ConsensusVerifier::new(context.clone());
        assert!(verifier
            .verify_commit_certificate(&context, &commit, &set, ThresholdParams::default())
            .await
            .is_err());
        let stored = stored_certificate(&commit);
        assert_eq!(
            stored.verify(context.chain(), set.verifier_view(), 8, &block),
            Err(CertificateError::NotEnoughPower {
                signed: 2,
                total: 4
            })
        );
    }

    #[tokio::test]
    async fn a_certificate_from_another_chain_or_for_another_block_fails() {
        let context = BansosContext::for_test("bansos-test");
        let other_chain = BansosContext::for_test("bansos-other");
        let (keys, set) = validators(4);
        let block = Hash32::digest(b"block 9");
        let commit = certificate(&other_chain, &keys, 9, block).await;
        let stored = stored_certificate(&commit);
        assert!(matches!(
            stored.verify(context.chain(), set.verifier_view(), 9, &block),
            Err(CertificateError::BadSignature(_))
        ));
        let honest = stored_certificate(&certificate(&context, &keys, 9, block).await);
        assert!(matches!(
            honest.verify(
                context.chain(),
                set.verifier_view(),
                9,
                &Hash32::digest(b"other")
            ),
            Err(CertificateError::WrongBlock { .. })
        ));
        let mut doubled = honest.clone();
        doubled.signatures.push(doubled.signatures[0]);
        assert!(matches!(
            doubled.verify(context.chain(), set.verifier_view(), 9, &block),
            Err(CertificateError::DuplicateSigner(_))
        ));
        let stranger = SigningKey::from_bytes(&[99; 32]);
        let mut foreign = honest.clone();
        foreign.signatures[0].0 = PublicKey(stranger.verifying_key().to_bytes());
        assert!(matches!(
            foreign.verify(context.chain(), set.verifier_view(), 9, &block),
            Err(CertificateError::UnknownValidator(_))
        ));
    }

    #[tokio::test]
    async fn validator_proofs_verify_and_name_the_peer() {
        let context = BansosContext::for_test("bansos-test");
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
        let context = BansosContext::for_test("bansos-test");
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
