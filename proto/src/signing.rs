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
/// Domain of a node's signature over a batch of transactions it relays to a peer.
pub const RELAY_DOMAIN: &[u8] = b"bansos-ledger/relay/v1\0";

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

/// The bytes a node signs when it relays a batch: the time it sent it and the BLAKE3 hash
/// of the request body, bound to the chain.
pub fn relay_bytes(chain: &ChainBinding, time_ms: u64, body: &[u8]) -> Vec<u8> {
    let mut bytes = prefix(RELAY_DOMAIN, chain, 8 + 32);
    bytes.extend_from_slice(&time_ms.to_be_bytes());
    bytes.extend_from_slice(Hash32::digest(body).as_bytes());
    bytes
}

/// How far the time in a relay mark may be from the receiving node's clock, either way.
pub const RELAY_MARK_SKEW_MS_MAX: u64 = 60_000;

/// A node's signature on a batch it relays, carried in the `x-bansos-relayed` header as
/// `<node key hex> <unix ms> <signature hex>`: the peer checks that a node of the network
/// sent the batch before it treats the batch as relayed (not relayed again, refusals not
/// remembered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayMark {
    pub node: PublicKey,
    pub time_ms: u64,
    pub signature: SignatureBytes,
}

impl RelayMark {
    /// Signs `body`, sent at `time_ms`, as the node holding `key`.
    pub fn sign(
        key: &ed25519_dalek::SigningKey,
        chain: &ChainBinding,
        time_ms: u64,
        body: &[u8],
    ) -> RelayMark {
        use ed25519_dalek::Signer as _;
        let signature = key.sign(&relay_bytes(chain, time_ms, body));
        RelayMark {
            node: PublicKey(key.verifying_key().to_bytes()),
            time_ms,
            signature: SignatureBytes(signature.to_bytes()),
        }
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        format!("{} {} {}", self.node, self.time_ms, self.signature)
    }

    /// Parses a header value; `None` if it is not of that form.
    pub fn parse(text: &str) -> Option<RelayMark> {
        let mut fields = text.split(' ');
        let node = PublicKey::from_hex(fields.next()?).ok()?;
        let time_ms = fields.next()?.parse().ok()?;
        let signature = SignatureBytes::from_hex(fields.next()?).ok()?;
        if fields.next().is_some() {
            return None;
        }
        Some(RelayMark {
            node,
            time_ms,
            signature,
        })
    }

    /// Whether the mark is `node`'s signature over `body`, made within
    /// [`RELAY_MARK_SKEW_MS_MAX`] of `now_ms`.
    pub fn verify(&self, chain: &ChainBinding, body: &[u8], now_ms: u64) -> bool {
        now_ms.abs_diff(self.time_ms) <= RELAY_MARK_SKEW_MS_MAX
            && verify(
                &self.node,
                &relay_bytes(chain, self.time_ms, body),
                &self.signature.0,
            )
    }
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

    #[test]
    fn a_relay_mark_binds_the_node_the_body_the_time_and_the_chain() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let net = chain("bansos-test", 1);
        let mark = RelayMark::sign(&key, &net, 1_000_000, b"[tx]");
        let header = mark.to_header();
        assert_eq!(RelayMark::parse(&header), Some(mark.clone()));
        assert!(mark.verify(&net, b"[tx]", 1_000_000 + RELAY_MARK_SKEW_MS_MAX));
        assert!(!mark.verify(&net, b"[tx2]", 1_000_000), "another body");
        assert!(
            !mark.verify(&chain("bansos-test", 2), b"[tx]", 1_000_000),
            "another genesis"
        );
        assert!(
            !mark.verify(&net, b"[tx]", 1_000_001 + RELAY_MARK_SKEW_MS_MAX),
            "too old"
        );
        let mut other = mark.clone();
        other.node = PublicKey(
            ed25519_dalek::SigningKey::from_bytes(&[5; 32])
                .verifying_key()
                .to_bytes(),
        );
        assert!(
            !other.verify(&net, b"[tx]", 1_000_000),
            "claimed by another node"
        );
        for bad in ["1", "", &format!("{header} x"), &header.replace(' ', ",")] {
            assert_eq!(RelayMark::parse(bad), None, "{bad:?}");
        }
    }

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
