//! The consensus types Malachite is generic over: heights, validator addresses, the value
//! (a block hash), proposals, votes, proposal parts, validator sets and the ed25519 signing
//! scheme, all bound to one chain by [`BansosContext`].
//!
//! Every byte string that a validator signs is built by one function in `proto::signing`,
//! so that the engine, the node and an offline auditor verifying a commit certificate agree
//! on it: `domain ‖ chain id ‖ fields`, with the vote extension left out of the vote's bytes
//! (Malachite rebuilds precommits from (height, round, value id, address) when it checks a
//! certificate).

use std::fmt;
use std::sync::Arc;

use arc_malachitebft_app_channel::app::types::core::{
    self as mc, LinearTimeouts, NilOrVal, Round, SignedExtension, VoteType,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use ledger::types::{Hash32, PublicKey};
use proto::signing::{self, ChainBinding, VoteKind};

/// A block height as consensus sees it (the ledger's height; 1 is the first block).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockHeight(pub u64);

impl fmt::Display for BlockHeight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl mc::Height for BlockHeight {
    const ZERO: Self = BlockHeight(0);
    const INITIAL: Self = BlockHeight(1);

    fn increment_by(&self, n: u64) -> Self {
        BlockHeight(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(BlockHeight)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: its consensus public key. Using the key itself (rather than a
/// truncated hash of it) lets an auditor check a certificate against genesis directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValidatorAddress(pub PublicKey);

impl fmt::Display for ValidatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl mc::Address for ValidatorAddress {}

/// The value consensus decides on: the hash of a block. The block itself travels as
/// proposal parts, so votes stay small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub Hash32);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl mc::Value for BlockId {
    type Id = BlockId;

    fn id(&self) -> BlockId {
        *self
    }
}

/// An ed25519 signature as consensus stores it (`Ord` is required by Malachite).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsensusSignature(pub [u8; 64]);

/// A signature or key whose bytes are malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemeError(pub String);

/// Ed25519 with ed25519-dalek, the same library the ledger signs transactions with: one
/// verification rule (strict) for everything a node checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519Scheme;

impl mc::SigningScheme for Ed25519Scheme {
    type DecodingError = SchemeError;
    type Signature = ConsensusSignature;
    type PublicKey = VerifyingKey;
    type PrivateKey = SigningKey;

    fn decode_signature(bytes: &[u8]) -> Result<ConsensusSignature, SchemeError> {
        let array: [u8; 64] = bytes
            .try_into()
            .map_err(|_| SchemeError(format!("a signature is 64 bytes, got {}", bytes.len())))?;
        Ok(ConsensusSignature(array))
    }

    fn encode_signature(signature: &ConsensusSignature) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<VerifyingKey, SchemeError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SchemeError(format!("a public key is 32 bytes, got {}", bytes.len())))?;
        VerifyingKey::from_bytes(&array)
            .map_err(|e| SchemeError(format!("invalid ed25519 public key: {e}")))
    }

    fn encode_public_key(public_key: &VerifyingKey) -> Vec<u8> {
        public_key.to_bytes().to_vec()
    }
}

/// A validator with its voting power.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub address: ValidatorAddress,
    pub public_key: VerifyingKey,
    pub voting_power: u64,
}

impl mc::Validator<BansosContext> for Validator {
    fn address(&self) -> &ValidatorAddress {
        &self.address
    }

    fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }

    fn voting_power(&self) -> u64 {
        self.voting_power
    }
}

/// The validator set as Malachite sees it, beside the verifier's view of the same set
/// (`proto::ValidatorSet`, which commit certificates are checked against): unique
/// addresses in ascending order, so every node iterates it the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    verifier_view: proto::ValidatorSet,
}

impl ValidatorSet {
    /// Builds a set from genesis validators (see `proto::ValidatorSet::from_genesis` for
    /// what is refused).
    pub fn from_genesis(entries: &[ledger::genesis::ValidatorEntry]) -> Option<ValidatorSet> {
        Self::from_view(proto::ValidatorSet::from_genesis(entries)?)
    }

    fn from_view(verifier_view: proto::ValidatorSet) -> Option<ValidatorSet> {
        let validators = verifier_view
            .validators()
            .iter()
            .map(|v| Validator {
                address: ValidatorAddress(v.key),
                public_key: v.verifying_key,
                voting_power: v.power,
            })
            .collect();
        Some(ValidatorSet {
            validators,
            verifier_view,
        })
    }

    /// Builds a set from the ledger's record of one (genesis's or a governance change's).
    pub fn from_record(record: &ledger::governance::ValidatorSetRecord) -> Option<ValidatorSet> {
        Self::from_view(proto::ValidatorSet::from_record(record)?)
    }

    /// The same set as a verifier sees it.
    pub fn verifier_view(&self) -> &proto::ValidatorSet {
        &self.verifier_view
    }
}

impl mc::ValidatorSet<BansosContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> u64 {
        self.verifier_view.total_power()
    }

    fn get_by_address(&self, address: &ValidatorAddress) -> Option<&Validator> {
        self.validators
            .binary_search_by_key(address, |v| v.address)
            .ok()
            .and_then(|i| self.validators.get(i))
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// A signed proposal's content: the value for (height, round), and the round it was locked
/// in, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub height: BlockHeight,
    pub round: Round,
    pub value: BlockId,
    pub pol_round: Round,
    pub proposer: ValidatorAddress,
}

impl mc::Proposal<BansosContext> for Proposal {
    fn height(&self) -> BlockHeight {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockId {
        &self.value
    }
    fn take_value(self) -> BlockId {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &ValidatorAddress {
        &self.proposer
    }
}

/// A prevote or precommit. Equality ignores the extension, as Malachite requires.
#[derive(Clone, Debug)]
pub struct Vote {
    pub vote_type: VoteType,
    pub height: BlockHeight,
    pub round: Round,
    pub value: NilOrVal<BlockId>,
    pub voter: ValidatorAddress,
    pub extension: Option<SignedExtension<BansosContext>>,
}

impl PartialEq for Vote {
    fn eq(&self, other: &Self) -> bool {
        self.vote_type == other.vote_type
            && self.height == other.height
            && self.round == other.round
            && self.value == other.value
            && self.voter == other.voter
    }
}

impl Eq for Vote {}

impl mc::Vote<BansosContext> for Vote {
    fn height(&self) -> BlockHeight {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &ValidatorAddress {
        &self.voter
    }
    fn extension(&self) -> Option<&SignedExtension<BansosContext>> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension<BansosContext>> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension<BansosContext>) -> Self {
        Vote {
            extension: Some(extension),
            ..self
        }
    }
}

/// One part of a streamed proposal: `Init`, then the block's bytes in chunks, then `Fin`
/// with the proposer's signature over everything before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalPart {
    Init {
        height: BlockHeight,
        round: Round,
        pol_round: Round,
        proposer: ValidatorAddress,
    },
    Chunk(Vec<u8>),
    Fin {
        signature: ConsensusSignature,
    },
}

impl mc::ProposalPart<BansosContext> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init { .. })
    }
    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin { .. })
    }
}

/// The Malachite context of one chain. It carries the chain id, which every consensus
/// signature covers: a vote on one network is worthless on another.
#[derive(Clone, Debug)]
pub struct BansosContext {
    chain: Arc<ChainBinding>,
}

impl BansosContext {
    /// The context of the chain `chain` names (chain id and genesis hash).
    pub fn new(chain: ChainBinding) -> Self {
        BansosContext {
            chain: Arc::new(chain),
        }
    }

    /// A context for tests: chain id `chain_id` with a fixed genesis hash.
    pub fn for_test(chain_id: &str) -> Self {
        BansosContext::new(ChainBinding {
            chain_id: chain_id.to_owned(),
            genesis_hash: Hash32::digest(chain_id.as_bytes()),
        })
    }

    /// What every signature of this chain is bound to.
    pub fn chain(&self) -> &ChainBinding {
        &self.chain
    }

    /// The bytes a validator signs for a vote: never the extension.
    pub fn vote_signing_bytes(&self, vote: &Vote) -> Vec<u8> {
        let kind = match vote.vote_type {
            VoteType::Prevote => VoteKind::Prevote,
            VoteType::Precommit => VoteKind::Precommit,
        };
        let value = match &vote.value {
            NilOrVal::Nil => None,
            NilOrVal::Val(id) => Some(&id.0),
        };
        signing::vote_bytes(
            &self.chain,
            kind,
            vote.height.0,
            vote.round.as_i64(),
            value,
            &vote.voter.0,
        )
    }

    /// The bytes a proposer signs for a proposal.
    pub fn proposal_signing_bytes(&self, proposal: &Proposal) -> Vec<u8> {
        signing::proposal_bytes(
            &self.chain,
            proposal.height.0,
            proposal.round.as_i64(),
            &proposal.value.0,
            proposal.pol_round.as_i64(),
            &proposal.proposer.0,
        )
    }

    /// The bytes a proposer signs in a stream's `Fin` part: the stream's `Init` fields and
    /// the hash of the block carried by its chunks.
    pub fn stream_signing_bytes(
        &self,
        height: BlockHeight,
        round: Round,
        pol_round: Round,
        proposer: &ValidatorAddress,
        block_hash: &Hash32,
    ) -> Vec<u8> {
        signing::stream_bytes(
            &self.chain,
            height.0,
            round.as_i64(),
            pol_round.as_i64(),
            &proposer.0,
            block_hash,
        )
    }
}

impl mc::Context for BansosContext {
    type Address = ValidatorAddress;
    type Height = BlockHeight;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519Scheme;

    /// Round-robin over the sorted set, shifted by height (`proto::ValidatorSet::
    /// proposer_index`, the rule the transaction relay follows too).
    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: BlockHeight,
        round: Round,
    ) -> &'a Validator {
        let round = round.as_u32().unwrap_or(0);
        let index = validator_set.verifier_view.proposer_index(height.0, round);
        // The two views hold the same validators in the same order (`from_view`).
        &validator_set.validators[index]
    }

    fn new_proposal(
        &self,
        height: BlockHeight,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: ValidatorAddress,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: BlockHeight,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: ValidatorAddress,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Prevote,
            height,
            round,
            value: value_id,
            voter: address,
            extension: None,
        }
    }

    fn new_precommit(
        &self,
        height: BlockHeight,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: ValidatorAddress,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Precommit,
            height,
            round,
            value: value_id,
            voter: address,
            extension: None,
        }
    }
}
