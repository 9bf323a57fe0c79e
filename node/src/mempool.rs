//! The mempool: signed transactions admitted by this node (signature verified once, on
//! admission), waiting for a block.
//!
//! Bounded by count and bytes; a full pool refuses new transactions with a clear error
//! rather than growing. Per signer, transactions are kept in nonce order, and a block is
//! filled round-robin across signers so that one busy institution cannot starve the others.
//! Recently refused transactions are remembered (bounded) so that a client asking about one
//! learns why it was dropped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use ledger::limits::{BLOCK_BYTES_MAX, BLOCK_TXS_MAX};
use ledger::tx::Transaction;
use ledger::types::{PublicKey, TxHash};

/// How far ahead of a signer's committed nonce a pending transaction may be. Further ones
/// could never be included soon and would only occupy the pool.
pub const NONCE_AHEAD_MAX: u64 = 10_000;
/// How many refused transactions (hash, code, message) are remembered for status queries.
pub const REJECTIONS_REMEMBERED_MAX: usize = 20_000;
/// How long a transaction may wait in the pool before it is dropped (a future nonce whose
/// predecessor never came, for example).
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// Room left in a block for the header and encoding overhead.
const BLOCK_OVERHEAD_BYTES: usize = 4 * 1024;

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("the mempool is full ({txs} transactions, {bytes} bytes); retry later")]
    Full { txs: usize, bytes: usize },
    #[error("nonce {nonce} of signer {signer} is already taken by another pending transaction")]
    NonceTaken { signer: PublicKey, nonce: u64 },
    #[error(
        "nonce {nonce} is more than {NONCE_AHEAD_MAX} ahead of signer {signer}'s next nonce {next}"
    )]
    NonceTooFarAhead {
        signer: PublicKey,
        nonce: u64,
        next: u64,
    },
}

impl MempoolError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            MempoolError::Full { .. } => "mempool_full",
            MempoolError::NonceTaken { .. } => "nonce_taken",
            MempoolError::NonceTooFarAhead { .. } => "nonce_too_far_ahead",
        }
    }
}

struct Entry {
    tx: Transaction,
    bytes: usize,
    admitted: Instant,
}

/// Where a transaction stands, as far as the mempool knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolStatus {
    Pending,
    Rejected { code: String, message: String },
    Unknown,
}

/// The pool. Not thread-safe by itself: the node keeps it behind a mutex.
pub struct Mempool {
    txs_max: usize,
    bytes_max: usize,
    by_hash: HashMap<TxHash, Entry>,
    by_signer: BTreeMap<PublicKey, BTreeMap<u64, TxHash>>,
    bytes: usize,
    rejections: HashMap<TxHash, (String, String)>,
    rejection_order: VecDeque<TxHash>,
}

impl Mempool {
    /// An empty pool with these limits.
    pub fn new(txs_max: usize, bytes_max: usize) -> Mempool {
        Mempool {
            txs_max,
            bytes_max,
            by_hash: HashMap::new(),
            by_signer: BTreeMap::new(),
            bytes: 0,
            rejections: HashMap::new(),
            rejection_order: VecDeque::new(),
        }
    }

    /// Pending transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Bytes of pending transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `hash` is pending.
    pub fn contains(&self, hash: &TxHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Whether the pool could take one more transaction of `bytes`.
    pub fn check_room(&self, bytes: usize) -> Result<(), MempoolError> {
        if self.by_hash.len() >= self.txs_max || self.bytes + bytes > self.bytes_max {
            return Err(MempoolError::Full {
                txs: self.by_hash.len(),
                bytes: self.bytes,
            });
        }
        Ok(())
    }

    /// The status of `hash` as the pool knows it.
    pub fn status(&self, hash: &TxHash) -> PoolStatus {
        if self.by_hash.contains_key(hash) {
            PoolStatus::Pending
        } else if let Some((code, message)) = self.rejections.get(hash) {
            PoolStatus::Rejected {
                code: code.clone(),
                message: message.clone(),
            }
        } else {
            PoolStatus::Unknown
        }
    }

    /// The nonce after the highest contiguous pending one of `signer`, starting at its
    /// committed `next` nonce: what a client should sign next.
    pub fn pending_next_nonce(&self, signer: &PublicKey, next: u64) -> u64 {
        let mut expected = next;
        if let Some(nonces) = self.by_signer.get(signer) {
            for nonce in nonces.range(next..).map(|(n, _)| *n) {
                if nonce != expected {
                    break;
                }
                expected += 1;
            }
        }
        expected
    }

    /// Admits a transaction that has passed the ledger's admission checks (with its
    /// signature verified). `committed_next` is the signer's next nonce in committed state.
    /// Returns false if it was already pending.
    pub fn insert(
        &mut self,
        hash: TxHash,
        tx: Transaction,
        bytes: usize,
        committed_next: u64,
    ) -> Result<bool, MempoolError> {
        if self.by_hash.contains_key(&hash) {
            return Ok(false);
        }
        let signer = tx.body.signer;
        let nonce = tx.body.nonce;
        if nonce > committed_next.saturating_add(NONCE_AHEAD_MAX) {
            return Err(MempoolError::NonceTooFarAhead {
                signer,
                nonce,
                next: committed_next,
            });
        }
        if self
            .by_signer
            .get(&signer)
            .is_some_and(|nonces| nonces.contains_key(&nonce))
        {
            return Err(MempoolError::NonceTaken { signer, nonce });
        }
        self.check_room(bytes)?;
        self.by_signer
            .entry(signer)
            .or_default()
            .insert(nonce, hash);
        self.by_hash.insert(
            hash,
            Entry {
                tx,
                bytes,
                admitted: Instant::now(),
            },
        );
        self.bytes += bytes;
        Ok(true)
    }

    /// Candidates for the next block, within the block limits: per signer in nonce order,
    /// signers taken round-robin. Returns the transactions and their hashes.
    pub fn candidates(&self) -> (Vec<Transaction>, HashSet<TxHash>) {
        let mut queues: Vec<std::collections::btree_map::Values<'_, u64, TxHash>> =
            self.by_signer.values().map(|n| n.values()).collect();
        let mut txs = Vec::new();
        let mut hashes = HashSet::new();
        let mut bytes = BLOCK_OVERHEAD_BYTES;
        'fill: while !queues.is_empty() {
            let mut index = 0;
            while index < queues.len() {
                let Some(hash) = queues[index].next() else {
                    let _exhausted = queues.swap_remove(index);
                    continue;
                };
                let Some(entry) = self.by_hash.get(hash) else {
                    index += 1;
                    continue;
                };
                if txs.len() >= BLOCK_TXS_MAX || bytes + entry.bytes + 8 > BLOCK_BYTES_MAX {
                    break 'fill;
                }
                bytes += entry.bytes + 8;
                txs.push(entry.tx.clone());
                hashes.insert(*hash);
                index += 1;
            }
        }
        (txs, hashes)
    }

    fn remove(&mut self, hash: &TxHash) -> Option<Transaction> {
        let entry = self.by_hash.remove(hash)?;
        self.bytes -= entry.bytes;
        let signer = entry.tx.body.signer;
        if let Some(nonces) = self.by_signer.get_mut(&signer) {
            nonces.remove(&entry.tx.body.nonce);
            if nonces.is_empty() {
                self.by_signer.remove(&signer);
            }
        }
        Some(entry.tx)
    }

    /// Drops a transaction that can never be included, remembering why.
    pub fn reject(&mut self, hash: &TxHash, code: &str, message: String) {
        self.remove(hash);
        self.remember_rejection(*hash, code, message);
    }

    /// Remembers a refusal that happened before admission (bounded).
    pub fn remember_rejection(&mut self, hash: TxHash, code: &str, message: String) {
        if self
            .rejections
            .insert(hash, (code.to_owned(), message))
            .is_none()
        {
            self.rejection_order.push_back(hash);
        }
        while self.rejection_order.len() > REJECTIONS_REMEMBERED_MAX {
            if let Some(old) = self.rejection_order.pop_front() {
                self.rejections.remove(&old);
            }
        }
    }

    /// After a block commits: drops its transactions, and every pending transaction whose
    /// nonce the block used up. `next_nonce` gives a signer's committed next nonce.
    pub fn on_commit(
        &mut self,
        committed: &[TxHash],
        signers: &[PublicKey],
        mut next_nonce: impl FnMut(&PublicKey) -> u64,
    ) {
        for hash in committed {
            self.remove(hash);
            self.rejections.remove(hash);
        }
        for signer in signers {
            let next = next_nonce(signer);
            let stale: Vec<TxHash> = self
                .by_signer
                .get(signer)
                .map(|nonces| nonces.range(..next).map(|(_, h)| *h).collect())
                .unwrap_or_default();
            for hash in stale {
                self.reject(
                    &hash,
                    "bad_nonce",
                    format!("another transaction of signer {signer} used this nonce first"),
                );
            }
        }
    }

    /// Drops transactions that waited longer than [`PENDING_TTL`]; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let old: Vec<TxHash> = self
            .by_hash
            .iter()
            .filter(|(_, e)| now.duration_since(e.admitted) > PENDING_TTL)
            .map(|(h, _)| *h)
            .collect();
        for hash in &old {
            self.reject(
                hash,
                "expired",
                "the transaction waited too long in the mempool (a missing earlier nonce?)".into(),
            );
        }
        old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ledger::tx::{Action, TxBody};

    fn tx(key: &SigningKey, nonce: u64) -> (TxHash, Transaction, usize) {
        let body = TxBody {
            chain_id: "t".into(),
            signer: PublicKey(key.verifying_key().to_bytes()),
            nonce,
            action: Action::RevokeAgent {
                key: PublicKey([7; 32]),
            },
        };
        let tx = body.sign(key);
        let bytes = tx.to_bytes().len();
        (tx.hash(), tx, bytes)
    }

    #[test]
    fn full_pool_refuses_with_a_clear_error_and_does_not_grow() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut pool = Mempool::new(3, 1 << 20);
        for n in 0..3 {
            let (h, t, b) = tx(&key, n);
            assert!(pool.insert(h, t, b, 0).unwrap());
        }
        let (h, t, b) = tx(&key, 3);
        let error = pool.insert(h, t, b, 0).unwrap_err();
        assert_eq!(error.code(), "mempool_full");
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn byte_limit_is_enforced() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (h, t, b) = tx(&key, 0);
        let mut pool = Mempool::new(100, b * 2);
        assert!(pool.insert(h, t, b, 0).unwrap());
        let (h2, t2, b2) = tx(&key, 1);
        assert!(pool.insert(h2, t2, b2, 0).unwrap());
        let (h3, t3, b3) = tx(&key, 2);
        assert_eq!(
            pool.insert(h3, t3, b3, 0).unwrap_err().code(),
            "mempool_full"
        );
        assert_eq!(pool.bytes(), 2 * b);
    }

    #[test]
    fn candidates_keep_nonce_order_and_alternate_signers() {
        let a = SigningKey::from_bytes(&[1; 32]);
        let b = SigningKey::from_bytes(&[2; 32]);
        let mut pool = Mempool::new(100, 1 << 20);
        for n in [2, 0, 1] {
            let (h, t, s) = tx(&a, n);
            pool.insert(h, t, s, 0).unwrap();
        }
        let (h, t, s) = tx(&b, 0);
        pool.insert(h, t, s, 0).unwrap();
        let (txs, hashes) = pool.candidates();
        assert_eq!(hashes.len(), 4);
        let a_nonces: Vec<u64> = txs
            .iter()
            .filter(|t| t.body.signer.0 == a.verifying_key().to_bytes())
            .map(|t| t.body.nonce)
            .collect();
        assert_eq!(a_nonces, vec![0, 1, 2]);
        // The second signer's only transaction comes before the first signer's second.
        let position_b = txs
            .iter()
            .position(|t| t.body.signer.0 == b.verifying_key().to_bytes())
            .unwrap();
        assert!(position_b <= 1);
    }

    #[test]
    fn duplicate_nonce_and_far_future_nonce_are_refused() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut pool = Mempool::new(100, 1 << 20);
        let (h, t, s) = tx(&key, 0);
        pool.insert(h, t, s, 0).unwrap();
        // The same transaction again is not an error.
        let (h, t, s) = tx(&key, 0);
        assert!(!pool.insert(h, t, s, 0).unwrap());
        // A different transaction with the same nonce is.
        let mut other = tx(&key, 0).1;
        other.body.action = Action::RevokeAgent {
            key: PublicKey([8; 32]),
        };
        let other = other.body.sign(&key);
        let error = pool.insert(other.hash(), other.clone(), s, 0).unwrap_err();
        assert_eq!(error.code(), "nonce_taken");
        let (h, t, s) = tx(&key, NONCE_AHEAD_MAX + 1);
        assert_eq!(
            pool.insert(h, t, s, 0).unwrap_err().code(),
            "nonce_too_far_ahead"
        );
    }

    #[test]
    fn commit_removes_included_and_stale_transactions() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signer = PublicKey(key.verifying_key().to_bytes());
        let mut pool = Mempool::new(100, 1 << 20);
        let mut hashes = Vec::new();
        for n in 0..4 {
            let (h, t, s) = tx(&key, n);
            pool.insert(h, t, s, 0).unwrap();
            hashes.push(h);
        }
        assert_eq!(pool.pending_next_nonce(&signer, 0), 4);
        // Nonces 0 and 1 committed (1 through a different transaction).
        pool.on_commit(&hashes[..1], &[signer], |_| 2);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.status(&hashes[0]), PoolStatus::Unknown);
        assert!(matches!(
            pool.status(&hashes[1]),
            PoolStatus::Rejected { .. }
        ));
        assert_eq!(pool.status(&hashes[2]), PoolStatus::Pending);
        assert_eq!(pool.bytes(), 2 * tx(&key, 0).2);
    }
}
