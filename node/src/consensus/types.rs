//! The consensus types Malachite is generic over: heights, validator addresses, the value
//! (a block hash), proposals, votes, proposal parts, validator sets and the ed25519 signing
//! scheme, all bound to one chain by [`BansosContext`].
//!
//! Every byte string that a validator signs is built here by one function, so that the
//! engine, the node and an offline auditor verifying a commit certificate agree on it:
//! `domain ‖ chain id ‖ fields`, with the vote extension left out of the vote's bytes
//! (Malachite rebuilds precommits from (height, round, value id, address) when it checks a
//! certificate).

use std::fmt;
use std::sync::Arc;

use arc_malachitebft_app_channel::app::types::core::{
    self as mc, LinearTimeouts, NilOrVal, Round, SignedExtension, VoteType,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use ledger::types::{Hash32, PublicKey};

/// Domain separation for proposal signatures.
pub const PROPOSAL_DOMAIN: &[u8] = b"bansos-ledger/proposal/v1\0";
/// Domain separation for vote signatures.
pub const VOTE_DOMAIN: &[u8] = b"bansos-ledger/vote/v1\0";
/// Domain separation for proposal-stream signatures (the `Fin` part).
pub const STREAM_DOMAIN: &[u8] = b"bansos-ledger/proposal-stream/v1\0";

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

/// The validator set: unique addresses in ascending order, so every node iterates it the
/// same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

impl ValidatorSet {
    /// Builds a set from genesis validators, sorted by address and deduplicated. Returns
    /// `None` for an empty set or a key that is not a valid ed25519 point.
    pub fn from_genesis(entries: &[ledger::genesis::ValidatorEntry]) -> Option<ValidatorSet> {
        let mut validators = Vec::with_capacity(entries.len());
        for entry in entries {
            let public_key = VerifyingKey::from_bytes(entry.key.as_bytes()).ok()?;
            validators.push(Validator {
                address: ValidatorAddress(entry.key),
                public_key,
                voting_power: entry.power,
            });
        }
        validators.sort_by_key(|v| v.address);
        validators.dedup_by_key(|v| v.address);
        if validators.is_empty() {
            None
        } else {
            Some(ValidatorSet { validators })
        }
    }
}

impl mc::ValidatorSet<BansosContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> u64 {
        self.validators.iter().map(|v| v.voting_power).sum()
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
    chain_id: Arc<str>,
}

impl BansosContext {
    /// The context of chain `chain_id`.
    pub fn new(chain_id: &str) -> Self {
        BansosContext {
            chain_id: Arc::from(chain_id),
        }
    }

    fn prefix(&self, domain: &[u8], capacity: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(domain.len() + 4 + self.chain_id.len() + capacity);
        bytes.extend_from_slice(domain);
        bytes.extend_from_slice(&(self.chain_id.len() as u32).to_be_bytes());
        bytes.extend_from_slice(self.chain_id.as_bytes());
        bytes
    }

    /// The bytes a validator signs for a vote: never the extension.
    pub fn vote_signing_bytes(&self, vote: &Vote) -> Vec<u8> {
        let mut bytes = self.prefix(VOTE_DOMAIN, 8 + 8 + 1 + 33 + 32);
        bytes.push(match vote.vote_type {
            VoteType::Prevote => 1,
            VoteType::Precommit => 2,
        });
        bytes.extend_from_slice(&vote.height.0.to_be_bytes());
        bytes.extend_from_slice(&vote.round.as_i64().to_be_bytes());
        match &vote.value {
            NilOrVal::Nil => bytes.push(0),
            NilOrVal::Val(id) => {
                bytes.push(1);
                bytes.extend_from_slice(id.0.as_bytes());
            }
        }
        bytes.extend_from_slice(vote.voter.0.as_bytes());
        bytes
    }

    /// The bytes a proposer signs for a proposal.
    pub fn proposal_signing_bytes(&self, proposal: &Proposal) -> Vec<u8> {
        let mut bytes = self.prefix(PROPOSAL_DOMAIN, 8 + 8 + 32 + 8 + 32);
        bytes.extend_from_slice(&proposal.height.0.to_be_bytes());
        bytes.extend_from_slice(&proposal.round.as_i64().to_be_bytes());
        bytes.extend_from_slice(proposal.value.0.as_bytes());
        bytes.extend_from_slice(&proposal.pol_round.as_i64().to_be_bytes());
        bytes.extend_from_slice(proposal.proposer.0.as_bytes());
        bytes
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
        let mut bytes = self.prefix(STREAM_DOMAIN, 8 + 8 + 8 + 32 + 32);
        bytes.extend_from_slice(&height.0.to_be_bytes());
        bytes.extend_from_slice(&round.as_i64().to_be_bytes());
        bytes.extend_from_slice(&pol_round.as_i64().to_be_bytes());
        bytes.extend_from_slice(proposer.0.as_bytes());
        bytes.extend_from_slice(block_hash.as_bytes());
        bytes
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

    /// Round-robin over the sorted set, shifted by height, so that every validator proposes
    /// in turn and a crashed proposer costs one round, not a height.
    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: BlockHeight,
        round: Round,
    ) -> &'a Validator {
        let count = validator_set.validators.len().max(1) as u64;
        let round = round.as_u32().map(u64::from).unwrap_or(0);
        let index = (height.0.saturating_sub(1).wrapping_add(round) % count) as usize;
        // The set is never empty: `ValidatorSet::from_genesis` refuses to build an empty one.
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
