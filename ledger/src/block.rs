//! Blocks: a header that commits to everything, and the transactions.
//!
//! The header commits to the previous block (hash chain), the block's transactions
//! (`tx_root`), the whole transparency log after the block (`log_size`, `log_root`) and the
//! ledger state after the block (`state_root`) and the allocation totals per region
//! (`totals_root`). A commit certificate over the block hash
//! therefore also signs a log checkpoint (DESIGN §6).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::error::LedgerError;
use crate::limits::{BLOCK_BYTES_MAX, BLOCK_TXS_MAX};
use crate::merkle;
use crate::tx::Transaction;
use crate::types::{BlockHash, Hash32, Height, PublicKey, TimeMs};

/// Domain separation for block hashes.
pub const BLOCK_DOMAIN: &[u8] = b"bansos-ledger/block/v1\0";

/// A block header.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    pub chain_id: String,
    pub height: Height,
    /// The previous block's hash; for height 1, the genesis hash.
    pub prev_hash: BlockHash,
    /// Milliseconds since the Unix epoch, proposed by the proposer and agreed by consensus.
    pub time_ms: TimeMs,
    /// The consensus key of the validator that proposed the block.
    pub proposer: PublicKey,
    pub tx_count: u32,
    /// RFC 9162 Merkle root of this block's transactions alone.
    pub tx_root: Hash32,
    /// The transparency log's size after this block.
    pub log_size: u64,
    /// The transparency log's root after this block.
    pub log_root: Hash32,
    /// The state root after this block (see `chain.rs`).
    pub state_root: Hash32,
    /// The root of the totals tree after this block (see `totals.rs`): SHA-256.
    pub totals_root: Hash32,
}

impl BlockHeader {
    /// The block hash: BLAKE3 of the domain and the canonical header.
    pub fn hash(&self) -> BlockHash {
        Hash32::digest(&crate::encode::canonical_after(BLOCK_DOMAIN, self))
    }
}

/// A block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<Transaction>,
}

impl Block {
    /// The block hash (the header's hash).
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// Canonical bytes, as streamed between validators and served to syncing peers.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::encode::canonical(self)
    }

    /// Decodes canonical bytes, refusing blocks over the limits before allocating for them.
    pub fn from_bytes(bytes: &[u8]) -> Result<Block, LedgerError> {
        if bytes.len() > BLOCK_BYTES_MAX + 64 * 1024 {
            return Err(LedgerError::BlockTooLarge {
                txs: 0,
                bytes: bytes.len(),
            });
        }
        let block: Block = borsh::from_slice(bytes)
            .map_err(|e| LedgerError::MalformedTx(format!("block: {e}")))?;
        if block.txs.len() > BLOCK_TXS_MAX {
            return Err(LedgerError::BlockTooLarge {
                txs: block.txs.len(),
                bytes: bytes.len(),
            });
        }
        Ok(block)
    }
}

/// The RFC 9162 root over a block's transactions, given their leaf hashes
/// (`merkle::leaf_hash` of each transaction's encoding, which the log takes too).
pub fn tx_root_of_leaves(leaves: &[merkle::Hash]) -> Hash32 {
    let mut frontier = merkle::Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    Hash32(frontier.root())
}
