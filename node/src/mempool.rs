//! The mempool: signed transactions admitted by this node, waiting for a block. A
//! transaction's signature is verified once: on admission, or (relayed by a peer node,
//! which verified it on its own admission) in a larger batch later: the block that takes
//! it, or the sweep of those left unchecked for [`UNCHECKED_AGE_MAX`]
//! ([`Mempool::insert_relayed`]).
//!
//! Bounded by count and bytes; a full pool refuses new transactions with a clear error
//! rather than growing. Per signer, transactions are kept in nonce order, with a cap on how
//! many one signer may have pending and how far past its contiguous nonces it may reach (so
//! a few keys cannot fill the pool with transactions that can never be included). A block
//! is filled in admission order, each signer's transactions in nonce order, so that a step
//! submitted after the step it depends on is also executed after it. A signer may replace
//! its own pending transaction by signing another with the same nonce. When the ledger
//! refuses a transaction at block building, its signer's later nonces are dropped with it
//! (they could never be included). Recently refused transactions are remembered (bounded)
//! so that a client asking about one learns why it was dropped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use ledger::limits::{BLOCK_BYTES_MAX, BLOCK_TXS_MAX};
use ledger::tx::Transaction;
use ledger::types::{PublicKey, TxHash};

mod nonces;
use nonces::SignerNonces;

/// How far past a signer's contiguous pending nonces a transaction may be (room for a
/// pipelining client's submissions arriving out of order). Further ones could never be
/// included soon and would only occupy the pool.
pub const NONCE_GAP_MAX: u64 = 64;
/// The most transactions one signer may have pending.
pub const PENDING_PER_SIGNER_MAX: usize = 4_096;
/// The share of the pool's room (transactions and bytes, in percent) that transactions
/// waiting for an earlier nonce may take. The rest is kept for ready ones: a pool full of
/// waiting transactions would refuse the very predecessors they wait for, and nothing
/// would commit until they expire.
pub const WAITING_ROOM_PERCENT: usize = 90;
/// How many refused transactions (hash, code, message) are remembered for status queries.
pub const REJECTIONS_REMEMBERED_MAX: usize = 20_000;
/// How long a transaction may wait in the pool before it is dropped (a future nonce whose
/// predecessor never came, for example).
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// Room left in a block for the header and encoding overhead.
const BLOCK_OVERHEAD_BYTES: usize = 4 * 1024;
/// How long a relayed transaction may wait with its signature unchecked before the sweep
/// checks it (most are checked sooner, by the block that takes them): a byzantine peer's
/// forgery that no block takes (waiting for a predecessor that never comes) occupies room
/// for at most this plus the sweep's interval.
pub const UNCHECKED_AGE_MAX: Duration = Duration::from_secs(1);

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("the mempool is full ({txs} transactions, {bytes} bytes); retry later")]
    Full { txs: usize, bytes: usize },
    #[error("the mempool is nearly full and keeps its last room for transactions that can go into a block now; nonce {nonce} waits for signer {signer}'s nonce {next}: submit that first, or retry later")]
    FullForWaiting {
        signer: PublicKey,
        nonce: u64,
        next: u64,
    },
    #[error("signer {signer} already has {PENDING_PER_SIGNER_MAX} transactions pending; retry once some commit")]
    SignerFull { signer: PublicKey },
    #[error(
        "nonce {nonce} is more than {NONCE_GAP_MAX} past signer {signer}'s next free nonce {next}"
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
            MempoolError::Full { .. } | MempoolError::FullForWaiting { .. } => "mempool_full",
            MempoolError::SignerFull { .. } => "signer_pending_full",
            MempoolError::NonceTooFarAhead { .. } => "nonce_too_far_ahead",
        }
    }
}

struct Entry {
    /// Boxed, so that the table holds small entries: when its removals' tombstones make it
    /// rehash, it moves pointers, not transactions.
    tx: Box<Transaction>,
    bytes: usize,
    /// Admission order, for filling blocks.
    sequence: u64,
    /// The node clock's monotonic reading at admission.
    admitted: Duration,
    /// The peer node (its key) that relayed it, while this node has not checked its
    /// signature itself.
    unchecked_from: Option<PublicKey>,
}

/// Where a transaction stands, as far as the mempool knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolStatus {
    Pending,
    Rejected { code: String, message: String },
    Unknown,
}

/// The entries the pool's table of pending transactions is made for, when the pool is made:
/// twice its limit. Removals leave tombstones in a hash table, and std's table, once they
/// use up its free room, clears them in place while at most half of its room is taken and
/// otherwise grows (twice the size, every entry moved). With room for twice the limit it
/// never grows: its memory is taken once, when the node starts, not at the first surge of
/// load. (Grown at load, with transactions held in the table, it stalled admission, with
/// the pool's lock held, for 100-150 ms on each of three nodes in a peak profile.)
fn table_capacity(txs_max: usize) -> usize {
    txs_max.saturating_mul(2)
}

/// The pool. Not thread-safe by itself: the node keeps it behind a mutex.
pub struct Mempool {
    txs_max: usize,
    bytes_max: usize,
    by_hash: HashMap<TxHash, Entry>,
    by_signer: BTreeMap<PublicKey, SignerNonces>,
    /// Each pending signer's next nonce in committed state: its transactions from that
    /// nonce on, without a gap, are ready for a block; the rest wait for a predecessor.
    committed_next: HashMap<PublicKey, u64>,
    bytes: usize,
    rejections: HashMap<TxHash, (String, String)>,
    rejection_order: VecDeque<TxHash>,
    next_sequence: u64,
}

impl Mempool {
    /// An empty pool with these limits.
    pub fn new(txs_max: usize, bytes_max: usize) -> Mempool {
        Mempool {
            txs_max,
            bytes_max,
            by_hash: HashMap::with_capacity(table_capacity(txs_max)),
            by_signer: BTreeMap::new(),
            committed_next: HashMap::new(),
            bytes: 0,
            rejections: HashMap::new(),
            rejection_order: VecDeque::new(),
            next_sequence: 0,
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

    /// Whether `hash` is pending and this node checked its signature.
    pub fn is_checked(&self, hash: &TxHash) -> bool {
        self.by_hash
            .get(hash)
            .is_some_and(|e| e.unchecked_from.is_none())
    }

    /// The peer that relayed `hash`, if it is pending with its signature not checked here.
    pub fn unchecked_from(&self, hash: &TxHash) -> Option<PublicKey> {
        self.by_hash.get(hash).and_then(|e| e.unchecked_from)
    }

    /// Whether the pool would take a transaction of `signer` with `nonce` and `bytes` now
    /// (`committed_next`: the signer's next nonce in committed state): every refusal
    /// [`Mempool::insert`] can give, changing nothing. Returns the pending transaction it
    /// would replace (same signer, same nonce).
    pub fn check_insert(
        &self,
        signer: &PublicKey,
        nonce: u64,
        bytes: usize,
        committed_next: u64,
    ) -> Result<Option<TxHash>, MempoolError> {
        self.check_insert_after(signer, nonce, bytes, committed_next, committed_next)
    }

    /// [`Mempool::check_insert`] for a transaction that arrives after others of its signer
    /// which fill the nonces from `committed_next` up to `filled` (exclusive): the
    /// transactions ahead of it in one batch. Admission asks this of a whole batch before
    /// it verifies the batch's signatures, so that a transaction the pool would refuse
    /// costs no verification; it never refuses one that inserting the batch in order would
    /// take (the batch's own use of room is not counted against it).
    pub fn check_insert_after(
        &self,
        signer: &PublicKey,
        nonce: u64,
        bytes: usize,
        committed_next: u64,
        filled: u64,
    ) -> Result<Option<TxHash>, MempoolError> {
        let filled = filled.max(committed_next);
        let frontier = self.pending_next_nonce(signer, filled);
        if nonce > frontier.saturating_add(NONCE_GAP_MAX) {
            return Err(MempoolError::NonceTooFarAhead {
                signer: *signer,
                nonce,
                next: frontier,
            });
        }
        let pending = self.by_signer.get(signer);
        let replaced = pending.and_then(|nonces| nonces.get(nonce));
        // A nonce below `filled` is taken, in the pool or by the batch ahead: this one
        // replaces that transaction rather than adding one.
        let replaces = replaced.is_some() || (committed_next..filled).contains(&nonce);
        if !replaces && pending.map_or(0, SignerNonces::len) >= PENDING_PER_SIGNER_MAX {
            return Err(MempoolError::SignerFull { signer: *signer });
        }
        if !replaces && self.only_ready_fit(bytes) && nonce != frontier {
            return Err(MempoolError::FullForWaiting {
                signer: *signer,
                nonce,
                next: frontier,
            });
        }
        let freed = replaced
            .and_then(|old| self.by_hash.get(&old))
            .map_or(0, |e| e.bytes);
        if self.by_hash.len() - usize::from(replaced.is_some()) >= self.txs_max
            || self.bytes - freed + bytes > self.bytes_max
        {
            return Err(MempoolError::Full {
                txs: self.by_hash.len(),
                bytes: self.bytes,
            });
        }
        Ok(replaced)
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
        self.by_signer
            .get(signer)
            .map_or(next, |nonces| nonces.frontier(next))
    }

    /// Admits a transaction that has passed the ledger's admission checks (with its
    /// signature verified). `committed_next` is the signer's next nonce in committed state;
    /// `now` the node clock's monotonic reading. Returns false if it was already pending
    /// (then it counts as checked from now on). A different transaction of the same signer
    /// with the same nonce replaces the pending one (which is remembered as `replaced`).
    pub fn insert(
        &mut self,
        hash: TxHash,
        tx: Transaction,
        bytes: usize,
        committed_next: u64,
        now: Duration,
    ) -> Result<bool, MempoolError> {
        if self.by_hash.contains_key(&hash) {
            self.mark_checked(&hash);
            return Ok(false);
        }
        self.insert_new(hash, tx, bytes, committed_next, now, None)
    }

    /// Whether [`Mempool::insert_relayed`] may take `tx` with its signature unchecked: it is
    /// not pending, and it replaces no pending transaction (an unchecked one never displaces
    /// another).
    pub fn takes_unchecked(&self, hash: &TxHash, tx: &Transaction) -> bool {
        let (signer, nonce) = (&tx.body.signer, tx.body.nonce);
        !self.by_hash.contains_key(hash)
            && self
                .by_signer
                .get(signer)
                .is_none_or(|nonces| !nonces.contains(nonce))
    }

    /// Admits a transaction relayed by the peer node `from` without this node checking its
    /// signature (the peer checked it on its own admission; this node checks it with the
    /// block that takes it, or in [`Mempool::unchecked_since`]'s sweep), as
    /// [`Mempool::insert`] does otherwise. Only for a transaction the pool
    /// [`takes_unchecked`](Mempool::takes_unchecked).
    pub fn insert_relayed(
        &mut self,
        (hash, tx, bytes): (TxHash, Transaction, usize),
        committed_next: u64,
        now: Duration,
        from: PublicKey,
    ) -> Result<bool, MempoolError> {
        assert!(
            self.takes_unchecked(&hash, &tx),
            "an unchecked transaction inserted twice or in place of another"
        );
        self.insert_new(hash, tx, bytes, committed_next, now, Some(from))
    }

    /// The transactions relayed unchecked and admitted at or before `admitted_by` (a
    /// monotonic reading), with the peers that relayed them: for a sweep to check.
    pub fn unchecked_since(&self, admitted_by: Duration) -> Vec<(TxHash, Transaction, PublicKey)> {
        self.by_hash
            .iter()
            .filter(|(_, e)| e.admitted <= admitted_by)
            .filter_map(|(hash, e)| Some((*hash, Transaction::clone(&e.tx), e.unchecked_from?)))
            .collect()
    }

    /// Notes that this node has checked the signature of pending `hash`.
    pub fn mark_checked(&mut self, hash: &TxHash) {
        if let Some(entry) = self.by_hash.get_mut(hash) {
            entry.unchecked_from = None;
        }
    }

    /// Inserts a transaction not pending yet, checked here or relayed unchecked by
    /// `unchecked_from`.
    fn insert_new(
        &mut self,
        hash: TxHash,
        tx: Transaction,
        bytes: usize,
        committed_next: u64,
        now: Duration,
        unchecked_from: Option<PublicKey>,
    ) -> Result<bool, MempoolError> {
        let signer = tx.body.signer;
        let nonce = tx.body.nonce;
        let replaced = self.check_insert(&signer, nonce, bytes, committed_next)?;
        if let Some(old) = replaced {
            self.reject(
                &old,
                "replaced",
                format!("replaced by transaction {hash} with the same nonce"),
            );
        }
        self.by_signer
            .entry(signer)
            .or_default()
            .insert(nonce, hash);
        let known = self.committed_next.entry(signer).or_insert(committed_next);
        *known = (*known).max(committed_next);
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.by_hash.insert(
            hash,
            Entry {
                tx: Box::new(tx),
                bytes,
                sequence,
                admitted: now,
                unchecked_from,
            },
        );
        self.bytes += bytes;
        self.debug_check();
        Ok(true)
    }

    /// Whether the pool, with `bytes` more, would be past the room that transactions
    /// waiting for a predecessor may take ([`WAITING_ROOM_PERCENT`]).
    fn only_ready_fit(&self, bytes: usize) -> bool {
        let percent = |limit: usize| limit.saturating_mul(WAITING_ROOM_PERCENT) / 100;
        self.by_hash.len() >= percent(self.txs_max) || self.bytes + bytes > percent(self.bytes_max)
    }

    /// Whether any signer's next transaction is ready for a block (its nonce is the
    /// signer's next in committed state); otherwise everything pending waits for a
    /// predecessor that has not arrived, and a block now would be empty.
    pub fn has_ready(&self) -> bool {
        self.by_signer
            .iter()
            .any(|(signer, nonces)| nonces.first() == Some(self.next_of(signer)))
    }

    /// A pending signer's next nonce in committed state.
    fn next_of(&self, signer: &PublicKey) -> u64 {
        *self
            .committed_next
            .get(signer)
            .expect("every pending signer's committed next nonce is known")
    }

    /// Candidates for the next block, within the block limits: the ready transactions
    /// (each signer's from its committed next nonce up to the first gap) in admission
    /// order, each signer's in nonce order. Returns the transactions and the hashes of
    /// those whose signature this node checked.
    pub fn candidates(&self) -> (Vec<Transaction>, HashSet<TxHash>) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        type Run<'a> = (u64, std::collections::btree_map::Range<'a, u64, TxHash>);
        let mut runs: Vec<Run<'_>> = self
            .by_signer
            .iter()
            .map(|(signer, nonces)| {
                let next = self.next_of(signer);
                (next, nonces.range(next..))
            })
            .collect();
        // A signer's next ready transaction, with when it was admitted.
        let head = |(expected, run): &mut Run<'_>| {
            let (&nonce, &hash) = run.next()?;
            if nonce != *expected {
                return None;
            }
            *expected += 1;
            let entry = self.by_hash.get(&hash)?;
            Some((entry.sequence, hash))
        };
        let mut heads = BinaryHeap::new();
        for (index, run) in runs.iter_mut().enumerate() {
            if let Some((sequence, hash)) = head(run) {
                heads.push(Reverse((sequence, index, hash)));
            }
        }
        let mut txs = Vec::new();
        let mut hashes = HashSet::new();
        let mut bytes = BLOCK_OVERHEAD_BYTES;
        while let Some(Reverse((_, index, hash))) = heads.pop() {
            let Some(entry) = self.by_hash.get(&hash) else {
                continue;
            };
            if txs.len() >= BLOCK_TXS_MAX || bytes + entry.bytes + 8 > BLOCK_BYTES_MAX {
                break;
            }
            bytes += entry.bytes + 8;
            txs.push(Transaction::clone(&entry.tx));
            if entry.unchecked_from.is_none() {
                hashes.insert(hash);
            }
            if let Some((sequence, next)) = head(&mut runs[index]) {
                heads.push(Reverse((sequence, index, next)));
            }
        }
        (txs, hashes)
    }

    /// Drops a transaction the ledger refused at block building, and every later nonce of
    /// its signer with it: they could never be included after it. Returns how many went.
    pub fn reject_with_successors(&mut self, hash: &TxHash, code: &str, message: String) -> usize {
        let Some(entry) = self.by_hash.get(hash) else {
            return 0;
        };
        let (signer, nonce) = (entry.tx.body.signer, entry.tx.body.nonce);
        self.reject(hash, code, message);
        let successors: Vec<TxHash> = self
            .by_signer
            .get(&signer)
            .map(|nonces| nonces.range(nonce + 1..).map(|(_, h)| *h).collect())
            .unwrap_or_default();
        for successor in &successors {
            self.reject(
                successor,
                "predecessor_refused",
                format!("transaction {hash} with the earlier nonce {nonce} was refused ({code}); sign again from nonce {nonce}"),
            );
        }
        1 + successors.len()
    }

    fn remove(&mut self, hash: &TxHash) -> Option<Transaction> {
        let entry = self.by_hash.remove(hash)?;
        debug_assert!(
            self.bytes >= entry.bytes,
            "byte count below an entry's size"
        );
        self.bytes -= entry.bytes;
        let signer = entry.tx.body.signer;
        let nonces = self.by_signer.get_mut(&signer);
        debug_assert!(
            nonces.is_some(),
            "a pending transaction's signer is indexed"
        );
        if let Some(nonces) = nonces {
            let removed = nonces.remove(entry.tx.body.nonce);
            debug_assert_eq!(removed, Some(*hash), "the nonce index points at the entry");
            if nonces.is_empty() {
                self.by_signer.remove(&signer);
                self.committed_next.remove(&signer);
            }
        }
        self.debug_check();
        Some(*entry.tx)
    }

    /// The pool's internal invariants: the signer index holds exactly the pending
    /// transactions, and the byte count is their sum. Checked in debug builds after every
    /// change (O(n): tests and debug runs only).
    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            let indexed: usize = self.by_signer.values().map(SignerNonces::len).sum();
            assert_eq!(
                indexed,
                self.by_hash.len(),
                "signer index and hash index disagree"
            );
            assert!(
                self.by_signer.len() == self.committed_next.len()
                    && self
                        .by_signer
                        .keys()
                        .all(|s| self.committed_next.contains_key(s)),
                "the pending signers and their committed next nonces disagree"
            );
            let bytes: usize = self.by_hash.values().map(|e| e.bytes).sum();
            assert_eq!(bytes, self.bytes, "byte count is not the sum of entries");
            assert!(
                self.by_hash.len() <= self.txs_max,
                "pool above its count limit"
            );
            assert!(self.bytes <= self.bytes_max, "pool above its byte limit");
            assert!(self.rejections.len() <= self.rejection_order.len());
        }
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
            if let Some(known) = self.committed_next.get_mut(signer) {
                *known = next;
            }
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

    /// Drops transactions that waited longer than [`PENDING_TTL`] by the monotonic reading
    /// `now`; returns how many.
    pub fn expire(&mut self, now: Duration) -> usize {
        let old: Vec<TxHash> = self
            .by_hash
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.admitted) > PENDING_TTL)
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

    /// A relayed transaction may wait unchecked, but never in place of a pending one; the
    /// sweep finds it once old enough; checked, it counts as checked.
    #[test]
    fn a_relayed_transaction_waits_unchecked_never_in_place_of_another() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let peer = PublicKey([5; 32]);
        let mut pool = Mempool::new(200, 1 << 20);
        let first = tx(&key, 0);
        assert!(pool.takes_unchecked(&first.0, &first.1));
        let at = Duration::from_secs(5);
        assert!(pool.insert_relayed(first.clone(), 0, at, peer).unwrap());
        assert!(!pool.is_checked(&first.0));
        assert_eq!(pool.unchecked_from(&first.0), Some(peer));
        let (candidates, checked) = pool.candidates();
        assert_eq!(candidates.len(), 1);
        assert!(
            checked.is_empty(),
            "an unchecked one is not skipped in a block"
        );

        // Pending already, or a replacement for a pending nonce: checked first. A gap is not.
        let mut other = tx(&key, 0).1;
        other.body.action = Action::RevokeAgent {
            key: PublicKey([8; 32]),
        };
        let other = other.body.sign(&key);
        assert!(!pool.takes_unchecked(&first.0, &first.1));
        assert!(!pool.takes_unchecked(&other.hash(), &other));
        let gapped = tx(&key, 2);
        assert!(pool.takes_unchecked(&gapped.0, &gapped.1));

        // The sweep sees what was admitted by then, unchecked only.
        let checked_here = tx(&key, 1);
        pool.insert(checked_here.0, checked_here.1, checked_here.2, 0, at)
            .unwrap();
        assert!(pool
            .unchecked_since(at - Duration::from_millis(1))
            .is_empty());
        let swept: Vec<TxHash> = pool.unchecked_since(at).iter().map(|t| t.0).collect();
        assert_eq!(swept, [first.0]);

        // Admitted again after a check here, or marked checked, it counts as checked.
        let (h, t, b) = first;
        assert!(!pool.insert(h, t, b, 0, Duration::ZERO).unwrap());
        assert!(pool.is_checked(&h));
        assert_eq!(pool.unchecked_from(&h), None);
        assert!(pool.candidates().1.contains(&h));
        assert!(pool.unchecked_since(at).is_empty());
        pool.insert_relayed(gapped.clone(), 0, at, peer).unwrap();
        pool.mark_checked(&gapped.0);
        assert!(pool.is_checked(&gapped.0));
    }

    #[test]
    fn full_pool_refuses_with_a_clear_error_and_does_not_grow() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut pool = Mempool::new(3, 1 << 20);
        for n in 0..3 {
            let (h, t, b) = tx(&key, n);
            assert!(pool.insert(h, t, b, 0, Duration::ZERO).unwrap());
        }
        let (h, t, b) = tx(&key, 3);
        let error = pool.insert(h, t, b, 0, Duration::ZERO).unwrap_err();
        assert_eq!(error.code(), "mempool_full");
        assert_eq!(pool.len(), 3);
    }

    /// The table of pending transactions is made for twice the limit with the pool, and
    /// filling the pool to its limit again and again (each fill leaving tombstones where
    /// committed transactions were) never makes it grow: its tombstones are cleared in place.
    #[test]
    fn the_pools_table_is_made_once_and_never_grows_under_churn() {
        const LIMIT: usize = 256;
        let key = SigningKey::from_bytes(&[1; 32]);
        let signer = PublicKey(key.verifying_key().to_bytes());
        let mut pool = Mempool::new(LIMIT, 1 << 30);
        let made = pool.by_hash.capacity();
        assert!(made >= 2 * LIMIT, "room for {made}, not twice the limit");
        let (mut next, mut pending) = (0u64, std::collections::VecDeque::new());
        for _round in 0..40 {
            while pool.len() < LIMIT {
                let (h, t, b) = tx(&key, next);
                pool.insert(h, t, b, next - pending.len() as u64, Duration::ZERO)
                    .unwrap();
                pending.push_back(h);
                next += 1;
            }
            let committed: Vec<TxHash> = pending.drain(..LIMIT - 20).collect();
            pool.on_commit(&committed, &[signer], |_| next - 20);
            assert_eq!(pool.len(), 20);
            assert!(
                pool.by_hash.capacity() <= made,
                "the table grew from room for {made} to {}",
                pool.by_hash.capacity()
            );
        }
    }

    #[test]
    fn byte_limit_is_enforced() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (h, t, b) = tx(&key, 0);
        let mut pool = Mempool::new(100, b * 2);
        assert!(pool.insert(h, t, b, 0, Duration::ZERO).unwrap());
        let (h2, t2, b2) = tx(&key, 1);
        assert!(pool.insert(h2, t2, b2, 0, Duration::ZERO).unwrap());
        let (h3, t3, b3) = tx(&key, 2);
        assert_eq!(
            pool.insert(h3, t3, b3, 0, Duration::ZERO)
                .unwrap_err()
                .code(),
            "mempool_full"
        );
        assert_eq!(pool.bytes(), 2 * b);
    }

    #[test]
    fn candidates_keep_nonce_order_per_signer() {
        let a = SigningKey::from_bytes(&[1; 32]);
        let b = SigningKey::from_bytes(&[2; 32]);
        let mut pool = Mempool::new(100, 1 << 20);
        for n in [2, 0, 1] {
            let (h, t, s) = tx(&a, n);
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
        }
        let (h, t, s) = tx(&b, 0);
        pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
        let (txs, hashes) = pool.candidates();
        assert_eq!(hashes.len(), 4);
        let a_nonces: Vec<u64> = txs
            .iter()
            .filter(|t| t.body.signer.0 == a.verifying_key().to_bytes())
            .map(|t| t.body.nonce)
            .collect();
        assert_eq!(a_nonces, vec![0, 1, 2]);
        // The second signer's only transaction, admitted last, comes last.
        let position_b = txs
            .iter()
            .position(|t| t.body.signer.0 == b.verifying_key().to_bytes())
            .unwrap();
        assert_eq!(position_b, 3);
    }

    #[test]
    fn same_signer_replacement_and_gap_limit() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut pool = Mempool::new(100, 1 << 20);
        let (h, t, s) = tx(&key, 0);
        pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
        // The same transaction again is not an error.
        let (h, t, s) = tx(&key, 0);
        assert!(!pool.insert(h, t, s, 0, Duration::ZERO).unwrap());
        // A different transaction with the same nonce, by the same signer, replaces it.
        let mut other = tx(&key, 0).1;
        other.body.action = Action::RevokeAgent {
            key: PublicKey([8; 32]),
        };
        let other = other.body.sign(&key);
        assert!(pool
            .insert(other.hash(), other.clone(), s, 0, Duration::ZERO)
            .unwrap());
        assert_eq!(pool.len(), 1);
        assert!(matches!(pool.status(&h), PoolStatus::Rejected { code, .. } if code == "replaced"));
        // Nonces may run ahead of the contiguous ones by at most NONCE_GAP_MAX.
        let (h, t, s) = tx(&key, 1 + NONCE_GAP_MAX);
        assert!(pool.insert(h, t, s, 0, Duration::ZERO).unwrap());
        let (h, t, s) = tx(&key, 2 + NONCE_GAP_MAX);
        assert_eq!(
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap_err().code(),
            "nonce_too_far_ahead"
        );
    }

    #[test]
    fn gapped_transactions_of_a_few_keys_cannot_fill_the_pool() {
        // Before the gap limit, five keys could park 10,000 unincludable transactions each.
        let mut pool = Mempool::new(50_000, 1 << 30);
        for seed in 1..=5u8 {
            let key = SigningKey::from_bytes(&[seed; 32]);
            let mut refused = 0;
            for nonce in 1..=1_000 {
                let (h, t, s) = tx(&key, nonce);
                if pool.insert(h, t, s, 0, Duration::ZERO).is_err() {
                    refused += 1;
                }
            }
            assert_eq!(refused, 1_000 - NONCE_GAP_MAX as usize);
        }
        assert_eq!(pool.len(), 5 * NONCE_GAP_MAX as usize);
    }

    #[test]
    fn one_signer_is_capped() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut pool = Mempool::new(PENDING_PER_SIGNER_MAX * 2, 1 << 30);
        for nonce in 0..PENDING_PER_SIGNER_MAX as u64 {
            let (h, t, s) = tx(&key, nonce);
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
        }
        let (h, t, s) = tx(&key, PENDING_PER_SIGNER_MAX as u64);
        assert_eq!(
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap_err().code(),
            "signer_pending_full"
        );
        let other = SigningKey::from_bytes(&[2; 32]);
        let (h, t, s) = tx(&other, 0);
        assert!(pool.insert(h, t, s, 0, Duration::ZERO).unwrap());
    }

    #[test]
    fn a_refused_transaction_takes_its_signers_later_nonces_with_it() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let mut pool = Mempool::new(100, 1 << 20);
        let mut hashes = Vec::new();
        for nonce in 0..4 {
            let (h, t, s) = tx(&key, nonce);
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
            hashes.push(h);
        }
        let (kept, t, s) = tx(&other, 0);
        pool.insert(kept, t, s, 0, Duration::ZERO).unwrap();
        assert_eq!(
            pool.reject_with_successors(&hashes[1], "unknown_agent", "x".into()),
            3
        );
        assert_eq!(pool.status(&hashes[0]), PoolStatus::Pending);
        assert!(
            matches!(pool.status(&hashes[3]), PoolStatus::Rejected { code, .. } if code == "predecessor_refused")
        );
        assert_eq!(pool.status(&kept), PoolStatus::Pending);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn blocks_are_filled_in_admission_order() {
        // A step submitted after the step it depends on (by another signer) comes after it.
        let first = SigningKey::from_bytes(&[9; 32]);
        let second = SigningKey::from_bytes(&[1; 32]);
        let mut pool = Mempool::new(100, 1 << 20);
        let (h1, t1, s1) = tx(&first, 0);
        let (h2, t2, s2) = tx(&second, 0);
        pool.insert(h1, t1, s1, 0, Duration::ZERO).unwrap();
        pool.insert(h2, t2, s2, 0, Duration::ZERO).unwrap();
        let (txs, _) = pool.candidates();
        assert_eq!(
            txs.iter().map(|t| t.hash()).collect::<Vec<_>>(),
            vec![h1, h2]
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
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
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

    #[test]
    fn waiting_transactions_cannot_fill_the_room_their_predecessors_need() {
        let mut pool = Mempool::new(100, 1 << 20);
        // 90 signers each park one transaction that waits for nonce 0.
        for seed in 1..=90u8 {
            let key = SigningKey::from_bytes(&[seed; 32]);
            let (h, t, s) = tx(&key, 1);
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
        }
        let late = SigningKey::from_bytes(&[200; 32]);
        let (h, t, s) = tx(&late, 1);
        let error = pool.insert(h, t, s, 0, Duration::ZERO).unwrap_err();
        assert_eq!(error.code(), "mempool_full");
        assert!(error.to_string().contains("waits for"), "{error}");
        assert_eq!(pool.len(), 90);
        // The predecessors still get in, and with them their successors become ready.
        for seed in 1..=10u8 {
            let key = SigningKey::from_bytes(&[seed; 32]);
            let (h, t, s) = tx(&key, 0);
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
        }
        assert_eq!(pool.len(), 100);
        assert_eq!(pool.candidates().0.len(), 20);
    }

    /// A batch is checked whole before any of it goes in: a signer's nonces that the
    /// batch's earlier transactions fill count as pending, as they will be when the batch
    /// is inserted in order (the next one is ready, one with a nonce the batch already
    /// holds replaces it), and a waiting one is refused as inserting it would be.
    #[test]
    fn a_batch_checked_ahead_counts_its_own_earlier_nonces() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signer = PublicKey(key.verifying_key().to_bytes());
        let mut pool = Mempool::new(10, 1 << 20);
        for nonce in 0..9 {
            let (h, t, s) = tx(&key, nonce);
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
        }
        // 9 of 10 places taken: the last is kept for ready transactions. The batch ahead
        // holds nonce 9.
        let (_, _, bytes) = tx(&key, 9);
        assert_eq!(pool.check_insert_after(&signer, 10, bytes, 0, 10), Ok(None));
        assert_eq!(pool.check_insert_after(&signer, 9, bytes, 0, 10), Ok(None));
        let waiting = pool.check_insert_after(&signer, 11, bytes, 0, 10);
        assert_eq!(waiting.unwrap_err().code(), "mempool_full");
        // Without the batch, only nonce 9 is ready.
        assert_eq!(
            pool.check_insert(&signer, 10, bytes, 0).unwrap_err().code(),
            "mempool_full"
        );
        assert_eq!(pool.check_insert(&signer, 9, bytes, 0), Ok(None));
    }

    #[test]
    fn only_transactions_without_a_gap_from_the_committed_nonce_are_ready() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signer = PublicKey(key.verifying_key().to_bytes());
        let mut pool = Mempool::new(100, 1 << 20);
        // Committed next nonce 5; 6 and 7 wait for 5.
        let waiting: Vec<TxHash> = [6, 7]
            .into_iter()
            .map(|n| {
                let (h, t, s) = tx(&key, n);
                pool.insert(h, t, s, 5, Duration::ZERO).unwrap();
                h
            })
            .collect();
        assert!(!pool.is_empty());
        assert!(!pool.has_ready(), "nothing can go into a block yet");
        assert!(pool.candidates().0.is_empty());
        // Another signer with a gap after its ready one: only the ready run is offered.
        let other = SigningKey::from_bytes(&[2; 32]);
        for n in [0, 2] {
            let (h, t, s) = tx(&other, n);
            pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
        }
        assert!(pool.has_ready());
        let offered: Vec<u64> = pool.candidates().0.iter().map(|t| t.body.nonce).collect();
        assert_eq!(offered, vec![0]);
        // Nonce 5 committed through another node's block: 6 and 7 become ready.
        let other_signer = PublicKey(other.verifying_key().to_bytes());
        pool.on_commit(&[], &[signer], |_| 6);
        let (txs, hashes) = pool.candidates();
        assert!(waiting.iter().all(|h| hashes.contains(h)));
        assert_eq!(txs.len(), 3);
        // The predecessor arriving makes the rest of a run ready too.
        let (h, t, s) = tx(&other, 1);
        pool.insert(h, t, s, 0, Duration::ZERO).unwrap();
        let of_other = pool
            .candidates()
            .0
            .iter()
            .filter(|t| t.body.signer == other_signer)
            .count();
        assert_eq!(of_other, 3);
    }
}
