//! Signing and verification of consensus messages (Malachite's `Signer` and `Verifier`),
//! and the conversion between Malachite's commit certificates and the form the ledger
//! stores beside each block (`proto::StoredCertificate`, which an auditor checks offline).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use arc_malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, Round, SignedMessage, SigningScheme, ValidatorProof,
    VoteExtensionScope,
};
use arc_malachitebft_signing::{Error as SigningError, Signer, VerificationResult, Verifier};
use async_trait::async_trait;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use ledger::types::{Hash32, PublicKey, SignatureBytes};
use prometheus_client::metrics::counter::Counter;
use proto::certificate::StoredCertificate;

use super::types::{
    BansosContext, BlockHeight, BlockId, ConsensusSignature, Ed25519Scheme, Proposal,
    ValidatorAddress, Vote,
};

/// Domain separation for vote extensions, which this chain does not use but must still sign
/// distinctly if the engine ever asks.
const EXTENSION_DOMAIN: &[u8] = b"bansos-ledger/vote-extension/v1\0";

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

/// The most passed signature checks a verifier remembers: 4,096 digests (~300 KiB in the
/// set and the queue). A height at 4 validators brings ~10 signatures (a proposal, its
/// stream, prevotes, precommits), at 100 validators ~200: room for every vote of the
/// heights a certificate is checked at.
pub const PASSED_SIGNATURES_MAX: usize = 4_096;

/// Signature checks that passed, by a digest of (key, signature, message), oldest first
/// out. A precommit is checked when it arrives, again when Malachite checks the
/// certificate it ends up in, and once more by the application before it commits the
/// block: three ed25519 checks where one says all (a live network reuses six checks a
/// height on every node, `bansos_consensus_signatures_reused_total`). At 300 tx/s the
/// consensus signature checks took 11.9% of the nodes' CPU with the repeats, 7.9% without
/// (docs/BENCHMARKS.md). Only passed checks are remembered: a bad signature costs its
/// check every time, as before.
#[derive(Default)]
struct PassedChecks {
    digests: HashSet<Hash32>,
    order: VecDeque<Hash32>,
}

impl PassedChecks {
    fn contains(&self, digest: &Hash32) -> bool {
        self.digests.contains(digest)
    }

    fn remember(&mut self, digest: Hash32) {
        if !self.digests.insert(digest) {
            return;
        }
        self.order.push_back(digest);
        if self.order.len() > PASSED_SIGNATURES_MAX {
            let oldest = self
                .order
                .pop_front()
                .expect("over the bound, so not empty");
            self.digests.remove(&oldest);
        }
        debug_assert_eq!(self.digests.len(), self.order.len());
    }
}

/// What a passed check is remembered by: the key and the signature (fixed sizes), then the
/// message. Any change to one of the three gives another digest, so a signature passes
/// here only for the key and message it was checked with.
fn check_digest(key: &PublicKey, message: &[u8], signature: &[u8; 64]) -> Hash32 {
    let mut bytes = Vec::with_capacity(32 + 64 + message.len());
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(signature);
    bytes.extend_from_slice(message);
    Hash32::digest(&bytes)
}

/// Verifies consensus messages of one chain. Clones share what they remember of passed
/// checks, so the engine's verifier and the application's check a vote once between them.
#[derive(Clone)]
pub struct ConsensusVerifier {
    context: BansosContext,
    passed: Arc<Mutex<PassedChecks>>,
    /// Checks answered from what was remembered.
    reused: Counter,
}

impl ConsensusVerifier {
    /// A verifier for `context`'s chain; `reused` counts the checks it did not repeat.
    pub fn new(context: BansosContext, reused: Counter) -> Self {
        ConsensusVerifier {
            context,
            passed: Arc::default(),
            reused,
        }
    }

    /// Whether `signature` is `key`'s over `message` (ZIP-215, as the ledger checks), from
    /// what this verifier remembers if it has seen these three pass before.
    pub fn check(&self, key: &PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
        let digest = check_digest(key, message, signature);
        if self.passed().contains(&digest) {
            self.reused.inc();
            return true;
        }
        let valid = proto::signing::verify(key, message, signature);
        if valid {
            self.passed().remember(digest);
        }
        valid
    }

    fn passed(&self) -> std::sync::MutexGuard<'_, PassedChecks> {
        self.passed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn verify(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &ConsensusSignature,
    ) -> VerificationResult {
        let key = PublicKey(key.to_bytes());
        VerificationResult::from_bool(self.check(&key, message, &signature.0))
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
        self.verify(
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
        Ok(self.verify(
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
        Ok(self.verify(
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
        Ok(self.verify(public_key, &extension_bytes(scope), signature))
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<BansosContext>,
    ) -> Result<VerificationResult, SigningError> {
        let Ok(key) = proof.decoded_public_key() else {
            return Ok(VerificationResult::Invalid);
        };
        Ok(self.verify(&key, &proof.preimage(), &proof.signature))
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

    /// Round-0 precommits for `block` at `height`, one by each of `keys`.
    async fn precommits(
        context: &BansosContext,
        keys: &[SigningKey],
        height: u64,
        block: Hash32,
    ) -> Vec<SignedMessage<BansosContext, Vote>> {
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
        votes
    }

    async fn certificate(
        context: &BansosContext,
        keys: &[SigningKey],
        height: u64,
        block: Hash32,
    ) -> CommitCertificate<BansosContext> {
        let votes = precommits(context, keys, height, block).await;
        CommitCertificate::new(BlockHeight(height), Round::new(0), BlockId(block), votes)
    }

    #[tokio::test]
    async fn three_of_four_precommits_prove_a_block_offline_and_to_malachite() {
        let context = BansosContext::for_test("bansos-test");
        let (keys, set) = validators(4);
        let block = Hash32::digest(b"block 7");
        let commit = certificate(&context, &keys[..3], 7, block).await;
        let verifier = ConsensusVerifier::new(context.clone(), Counter::default());
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

    /// A precommit checked on arrival passes again without another ed25519 check when
    /// Malachite checks the certificate it is in, and when the application (sharing the
    /// verifier) checks the stored certificate; a changed signature, the signature over
    /// another vote, or under another key, never passes, however often it is tried.
    #[tokio::test]
    async fn a_vote_is_checked_once_and_nothing_else_passes_for_it() {
        let context = BansosContext::for_test("bansos-test");
        let (keys, set) = validators(4);
        let block = Hash32::digest(b"block 10");
        let reused = Counter::default();
        let verifier = ConsensusVerifier::new(context.clone(), reused.clone());
        let key_of = |i: usize| keys[i].verifying_key();
        let votes = precommits(&context, &keys[..3], 10, block).await;
        for (i, vote) in votes.iter().enumerate() {
            let result = verifier
                .verify_signed_vote(&vote.message, &vote.signature, &key_of(i))
                .await
                .unwrap();
            assert!(result.is_valid());
        }
        assert_eq!(
            reused.get(),
            0,
            "each vote is checked when it first arrives"
        );

        let commit = CommitCertificate::new(
            BlockHeight(10),
            Round::new(0),
            BlockId(block),
            votes.clone(),
        );
        verifier
            .verify_commit_certificate(&context, &commit, &set, ThresholdParams::default())
            .await
            .unwrap();
        assert_eq!(
            reused.get(),
            3,
            "the certificate's precommits are not checked again"
        );
        let app_side = verifier.clone();
        stored_certificate(&commit)
            .verify_with(
                context.chain(),
                set.verifier_view(),
                10,
                &block,
                |key, message, signature| app_side.check(key, message, signature),
            )
            .unwrap();
        assert_eq!(reused.get(), 6, "nor by the application, through a clone");

        let mut changed = votes[0].signature;
        changed.0[7] ^= 1;
        let other = context.new_precommit(
            BlockHeight(10),
            Round::new(0),
            NilOrVal::Val(BlockId(Hash32::digest(b"another block"))),
            votes[0].message.voter,
        );
        for _ in 0..2 {
            let forged = [
                (&votes[0].message, changed, key_of(0)),
                (&other, votes[0].signature, key_of(0)),
                (&votes[0].message, votes[0].signature, key_of(1)),
            ];
            for (vote, signature, key) in forged {
                let result = verifier
                    .verify_signed_vote(vote, &signature, &key)
                    .await
                    .unwrap();
                assert!(!result.is_valid());
            }
        }
        assert_eq!(
            reused.get(),
            6,
            "nothing that failed was answered from memory"
        );
    }

    /// The verifier remembers at most `PASSED_SIGNATURES_MAX` passed checks, and forgets the
    /// oldest first.
    #[test]
    fn passed_checks_are_bounded_and_the_oldest_go_first() {
        let mut passed = PassedChecks::default();
        let digest = |i: u64| Hash32::digest(&i.to_be_bytes());
        for i in 0..=PASSED_SIGNATURES_MAX as u64 {
            passed.remember(digest(i));
            passed.remember(digest(i));
        }
        assert_eq!(passed.order.len(), PASSED_SIGNATURES_MAX);
        assert_eq!(passed.digests.len(), PASSED_SIGNATURES_MAX);
        assert!(!passed.contains(&digest(0)));
        assert!(passed.contains(&digest(1)));
        assert!(passed.contains(&digest(PASSED_SIGNATURES_MAX as u64)));
    }

    #[tokio::test]
    async fn two_of_four_precommits_prove_nothing() {
        let context = BansosContext::for_test("bansos-test");
        let (keys, set) = validators(4);
        let block = Hash32::digest(b"block 8");
        let commit = certificate(&context, &keys[..2], 8, block).await;
        let verifier = ConsensusVerifier::new(context.clone(), Counter::default());
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
        let verifier = ConsensusVerifier::new(context, Counter::default());
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
