//! The bytes each consensus signature covers, and the rule that checks a signature.
//!
//! Every signed consensus byte string is `domain ‖ len(chain id) ‖ chain id ‖ genesis hash
//! ‖ fields`, so a vote or proposal of one network is worthless on another, even on a
//! network that reuses the chain id with another genesis, and no message of one kind can be
//! replayed as another. A vote's bytes never include its extension: Malachite rebuilds a
//! precommit from (height, round, value id, address) when it checks a commit certificate,
//! and an auditor does the same here.
//!
//! Rounds are Malachite's `Round::as_i64()`: -1 for "no round" (a proof-of-lock round that
//! is absent), otherwise the round number.

use ledger::types::{Hash32, PublicKey, SignatureBytes};

/// Domain separation for proposal signatures.
pub const PROPOSAL_DOMAIN: &[u8] = b"bansos-ledger/proposal/v2\0";
/// Domain separation for vote signatures.
pub const VOTE_DOMAIN: &[u8] = b"bansos-ledger/vote/v2\0";
/// Domain separation for proposal-stream signatures (the `Fin` part).
pub const STREAM_DOMAIN: &[u8] = b"bansos-ledger/proposal-stream/v2\0";

/// What binds a signature to one network: its chain id and the hash of its genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBinding {
    pub chain_id: String,
    pub genesis_hash: Hash32,
}

impl ChainBinding {
    /// The binding of the network started from `genesis`.
    pub fn of(genesis: &ledger::genesis::Genesis) -> ChainBinding {
        ChainBinding {
            chain_id: genesis.chain_id.clone(),
            genesis_hash: genesis.hash(),
        }
    }
}

/// Which vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

fn prefix(domain: &[u8], chain: &ChainBinding, capacity: usize) -> Vec<u8> {
    let chain_id = chain.chain_id.as_bytes();
    let mut bytes = Vec::with_capacity(domain.len() + 4 + chain_id.len() + 32 + capacity);
    bytes.extend_from_slice(domain);
    // Chain ids are at most CHAIN_ID_BYTES_MAX (64) bytes; the cast cannot truncate.
    bytes.extend_from_slice(&(chain_id.len() as u32).to_be_bytes());
    bytes.extend_from_slice(chain_id);
    bytes.extend_from_slice(chain.genesis_hash.as_bytes());
    bytes
}

/// The bytes a validator signs for a vote for `value` (`None`: nil) at (height, round).
pub fn vote_bytes(
    chain: &ChainBinding,
    kind: VoteKind,
    height: u64,
    round: i64,
    value: Option<&Hash32>,
    voter: &PublicKey,
) -> Vec<u8> {
    let mut bytes = prefix(VOTE_DOMAIN, chain, 8 + 8 + 1 + 33 + 32);
    bytes.push(match kind {
        VoteKind::Prevote => 1,
        VoteKind::Precommit => 2,
    });
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&round.to_be_bytes());
    match value {
        None => bytes.push(0),
        Some(id) => {
            bytes.push(1);
            bytes.extend_from_slice(id.as_bytes());
        }
    }
    bytes.extend_from_slice(voter.as_bytes());
    bytes
}

/// The bytes a proposer signs for a proposal of `value` at (height, round).
pub fn proposal_bytes(
    chain: &ChainBinding,
    height: u64,
    round: i64,
    value: &Hash32,
    pol_round: i64,
    proposer: &PublicKey,
) -> Vec<u8> {
    let mut bytes = prefix(PROPOSAL_DOMAIN, chain, 8 + 8 + 32 + 8 + 32);
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&round.to_be_bytes());
    bytes.extend_from_slice(value.as_bytes());
    bytes.extend_from_slice(&pol_round.to_be_bytes());
    bytes.extend_from_slice(proposer.as_bytes());
    bytes
}

/// The bytes a proposer signs in a proposal stream's `Fin` part: the stream's `Init`
/// fields and the hash of the block its chunks carry.
pub fn stream_bytes(
    chain: &ChainBinding,
    height: u64,
    round: i64,
    pol_round: i64,
    proposer: &PublicKey,
    block_hash: &Hash32,
) -> Vec<u8> {
    let mut bytes = prefix(STREAM_DOMAIN, chain, 8 + 8 + 8 + 32 + 32);
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&round.to_be_bytes());
    bytes.extend_from_slice(&pol_round.to_be_bytes());
    bytes.extend_from_slice(proposer.as_bytes());
    bytes.extend_from_slice(block_hash.as_bytes());
    bytes
}

/// Whether `signature` is `key`'s ed25519 signature over `message`, by the one rule every
/// signature check of this chain uses (`ledger::signature`: ZIP-215, the same alone and in
/// batches).
pub fn verify(key: &PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
    ledger::signature::verify(key, message, &SignatureBytes(*signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(id: &str, genesis: u8) -> ChainBinding {
        ChainBinding {
            chain_id: id.into(),
            genesis_hash: Hash32([genesis; 32]),
        }
    }

    #[test]
    fn sign_bytes_bind_the_chain_the_kind_and_every_field() {
        let (c, d, other_genesis) = (chain("c", 1), chain("d", 1), chain("c", 2));
        let voter = PublicKey([3; 32]);
        let value = Hash32([9; 32]);
        let base = vote_bytes(&c, VoteKind::Precommit, 5, 0, Some(&value), &voter);
        let variants = [
            vote_bytes(&d, VoteKind::Precommit, 5, 0, Some(&value), &voter),
            vote_bytes(&c, VoteKind::Prevote, 5, 0, Some(&value), &voter),
            vote_bytes(&c, VoteKind::Precommit, 6, 0, Some(&value), &voter),
            vote_bytes(&c, VoteKind::Precommit, 5, 1, Some(&value), &voter),
            vote_bytes(&c, VoteKind::Precommit, 5, 0, None, &voter),
            vote_bytes(
                &c,
                VoteKind::Precommit,
                5,
                0,
                Some(&value),
                &PublicKey([4; 32]),
            ),
            vote_bytes(
                &other_genesis,
                VoteKind::Precommit,
                5,
                0,
                Some(&value),
                &voter,
            ),
            proposal_bytes(&c, 5, 0, &value, -1, &voter),
            stream_bytes(&c, 5, 0, -1, &voter, &value),
        ];
        for variant in variants {
            assert_ne!(variant, base);
        }
        // A chain id is length-prefixed: "ab" ‖ "c…" never reads as "a" ‖ "bc…".
        assert_ne!(
            vote_bytes(&chain("ab", 1), VoteKind::Prevote, 1, 0, None, &voter),
            vote_bytes(&chain("a", 1), VoteKind::Prevote, 1, 0, None, &voter)
        );
    }
}
