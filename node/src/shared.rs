//! State shared by the node's tasks: the ledger, the mempool, metrics and a view of
//! consensus, plus transaction admission (used by the HTTP API and the relay).
//!
//! Lock order: the ledger before the mempool, never the other way round; the set of
//! distrusted relayers is taken last, alone. Neither lock is held across an `.await`, and
//! signatures are verified before either is taken, but for a rare case: a peer's relayed
//! transaction in place of a pending one is checked under the mempool's lock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ed25519_dalek::SigningKey;
use ledger::chain::{PreparedBlock, SignatureCheck};
use ledger::tx::Transaction;
use ledger::types::{PublicKey, TxHash};
use ledger::{Ledger, LedgerError, Store};
use tokio::sync::{mpsc, Notify};
use tracing::warn;

use crate::checkpoints::{Checkpoints, Head};
use crate::clock::Clock;
use crate::consortium::Consortium;
use crate::mempool::{Mempool, MempoolError, UNCHECKED_AGE_MAX};
use crate::metrics::Metrics;
use crate::relay::Relayed;
use crate::witness::Witness;

/// The largest batch a peer node relays whose signatures are left to the block that takes
/// them (or the mempool's sweep). A larger one is verified on arrival: its size already
/// makes a signature cheap (about half the cost per signature at 250 as at 15), and there
/// it is off the consensus path, where a block's check would wait for it.
pub const UNCHECKED_BATCH_TXS_MAX: usize = 128;

/// How often the mempool drops transactions that waited longer than their time to live.
pub const MEMPOOL_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A count as a Prometheus gauge value (saturating; no count here comes near 2^63).
pub fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What consensus last told the application, for `/v1/status` and the relay.
#[derive(Clone, Debug, Default)]
pub struct ConsensusView {
    pub height: u64,
    pub round: i64,
    /// Whether the proposal of (`height`, `round`) is here (received, or this node's own):
    /// its proposer has built its block and takes nothing more at this height.
    pub proposed: bool,
    pub peers: Vec<String>,
}

/// Why a submitted transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub code: String,
    pub message: String,
}

/// How a refusal maps onto HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The transaction is wrong (400/422-like): form, signature, signer, role, nonce.
    Invalid,
    /// The node cannot take it now (503): mempool full.
    Busy,
    /// The node failed (500).
    Internal,
}

impl Refusal {
    fn ledger(error: &LedgerError) -> Refusal {
        let kind = match error {
            LedgerError::Storage(_) | LedgerError::Corrupt(_) => RefusalKind::Internal,
            _ => RefusalKind::Invalid,
        };
        Refusal {
            kind,
            code: error.code().to_owned(),
            message: error.to_string(),
        }
    }

    fn mempool(error: &MempoolError) -> Refusal {
        let kind = match error {
            MempoolError::Full { .. } | MempoolError::FullForWaiting { .. } => RefusalKind::Busy,
            _ => RefusalKind::Invalid,
        };
        Refusal {
            kind,
            code: error.code().to_owned(),
            message: error.to_string(),
        }
    }
}

/// Where an admitted transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Newly added to the mempool.
    New,
    /// Already pending here.
    AlreadyPending,
    /// Already committed.
    AlreadyCommitted,
}

/// Where a batch of transactions being admitted comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFrom {
    /// A client (or an institution): every signature is checked here, and what is new is
    /// relayed to the peers.
    Client,
    /// A peer node (its key) relaying what it admitted: not relayed further. Unless this
    /// peer has relayed a bad signature before, or the batch is larger than
    /// [`UNCHECKED_BATCH_TXS_MAX`], its transactions' signatures are checked with the block
    /// that takes them rather than now ([`Mempool::insert_relayed`]).
    Peer(PublicKey),
}

/// Where a transaction's signature stands at admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signature {
    /// Not checked yet: check it now.
    Unchecked,
    /// Checked (with its batch).
    Checked,
    /// Vouched for by the peer node that relayed it: checked with the next block's batch
    /// when the mempool takes it so, else now.
    RelayedBy(PublicKey),
}

/// A transaction past the checks that cost no signature verification.
struct Formed {
    tx: Transaction,
    hash: TxHash,
    /// Its canonical encoding (what its hash is of, and what the relay sends on).
    bytes: Vec<u8>,
}

/// Per signer, the nonce after the run that the transactions already prechecked in a batch
/// will fill.
type BatchNonces = HashMap<PublicKey, u64>;

/// What the cheap checks of admission found. Unboxed: one lives for a moment per
/// transaction admitted, and a box would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Precheck {
    /// Nothing more to do: pending here already.
    Settled(TxHash, Admitted),
    /// On to the signature, the ledger and the mempool.
    Formed(Formed),
}

/// The node's shared state, over any store (RocksDB in a node, memory in tests).
pub struct Shared<S: Store> {
    pub node_name: String,
    pub role: genesis::testnet::NodeRole,
    /// The node's key (a validator's is its consensus key), which `/v1/status` shows so
    /// that a peer's relay can tell when this node proposes.
    pub node_key: PublicKey,
    /// The node's only source of time.
    pub clock: Arc<dyn Clock>,
    /// The chain's id, from genesis (fixed for the ledger's life).
    chain_id: String,
    ledger: RwLock<Ledger<S>>,
    mempool: Mutex<Mempool>,
    /// Woken when a transaction is admitted, so an idle proposer can propose at once.
    pub mempool_changed: Notify,
    pub metrics: Metrics,
    pub consensus: Mutex<ConsensusView>,
    relay: Option<mpsc::Sender<Relayed>>,
    /// The log's signed checkpoints: signing, gathering, serving.
    pub checkpoints: Checkpoints,
    /// The keys that may read consortium data, and the signatures seen recently.
    pub consortium: Consortium,
    /// The C2SP witness this node runs (an auditor's node), if any.
    pub witness: Option<Witness>,
    /// The pseudonym service this node runs (the identity authority's), if any.
    pub pseudonym_service: Option<Arc<crate::pseudonym_api::PseudonymService>>,
    /// Tracking lookups allowed per client address.
    pub track_limiter: crate::track::LookupLimiter,
    /// Signing keys' institution names, remembered across tracking lookups.
    pub institutions: crate::track::InstitutionNames,
    /// The height of the latest committed block, for live updates (`/v1/events`).
    pub committed_height: tokio::sync::watch::Sender<u64>,
    /// The anomaly counts per region, recomputed as the chain moves.
    pub anomalies: crate::anomalies::AnomalyCache,
    /// Where this validator's own checkpoint signatures go to be pushed to peers.
    checkpoint_push: Option<mpsc::Sender<String>>,
    /// Peer nodes that relayed a transaction with a bad signature: what they relay is
    /// checked on arrival from then on (until this node restarts).
    distrusted_relayers: Mutex<HashSet<PublicKey>>,
}

impl<S: Store> Shared<S> {
    /// Shared state over an opened ledger. `relay` receives admitted client transactions to
    /// pass on to peers.
    pub fn new(
        node_name: String,
        role: genesis::testnet::NodeRole,
        node_key: PublicKey,
        ledger: Ledger<S>,
        mempool: Mempool,
        relay: Option<mpsc::Sender<Relayed>>,
        clock: Arc<dyn Clock>,
    ) -> Shared<S> {
        let metrics = Metrics::new();
        let ledger_height = ledger.tip().height;
        metrics.height.set(gauge(ledger_height));
        let checkpoints = Checkpoints::new(ledger.genesis(), None);
        let consortium = Consortium::new(ledger.genesis());
        follow_governance(&ledger, &checkpoints, &consortium);
        Shared {
            node_name,
            role,
            node_key,
            clock,
            chain_id: ledger.chain_id().to_owned(),
            ledger: RwLock::new(ledger),
            mempool: Mutex::new(mempool),
            mempool_changed: Notify::new(),
            metrics,
            consensus: Mutex::new(ConsensusView::default()),
            relay,
            checkpoints,
            consortium,
            witness: None,
            pseudonym_service: None,
            track_limiter: crate::track::LookupLimiter::default(),
            institutions: crate::track::InstitutionNames::default(),
            anomalies: crate::anomalies::AnomalyCache::default(),
            committed_height: tokio::sync::watch::Sender::new(ledger_height),
            checkpoint_push: None,
            distrusted_relayers: Mutex::new(HashSet::new()),
        }
    }

    /// A validator's shared state: it signs each new log head with `checkpoint_key` and
    /// sends the note to `push`.
    pub fn with_checkpoint_signer(
        mut self,
        checkpoint_key: SigningKey,
        push: Option<mpsc::Sender<String>>,
    ) -> Shared<S> {
        let checkpoints = Checkpoints::new(self.ledger().genesis(), Some(checkpoint_key));
        follow_governance(&self.ledger(), &checkpoints, &self.consortium);
        self.checkpoints = checkpoints;
        self.checkpoint_push = push;
        self
    }

    /// This node as a C2SP witness, cosigning with `witness`.
    pub fn with_witness(mut self, witness: Witness) -> Shared<S> {
        self.witness = Some(witness);
        self
    }

    /// Runs the pseudonym service with `keys` (the current one first) on this node.
    pub fn with_pseudonym_service(
        mut self,
        keys: Vec<Arc<proto::pseudonym::ServiceKey>>,
    ) -> Shared<S> {
        self.pseudonym_service = Some(Arc::new(crate::pseudonym_api::PseudonymService::new(keys)));
        self
    }

    /// Queues a note (a witness's cosignatures on a checkpoint) for this validator's peers,
    /// as its own checkpoint signatures are.
    pub fn push_checkpoint_note(&self, note: String) {
        if let Some(push) = &self.checkpoint_push {
            // A full queue: the peers get the next cosigned checkpoint instead.
            let _ = push.try_send(note);
        }
    }

    /// Read access to the ledger. A poisoned lock means a thread panicked while writing;
    /// the ledger's own writes are atomic batches, so its state is still consistent.
    pub fn ledger(&self) -> RwLockReadGuard<'_, Ledger<S>> {
        self.ledger.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Write access to the ledger (commits only).
    pub fn ledger_mut(&self) -> RwLockWriteGuard<'_, Ledger<S>> {
        self.ledger.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The mempool.
    pub fn mempool(&self) -> MutexGuard<'_, Mempool> {
        self.mempool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The consensus view.
    pub fn consensus_view(&self) -> MutexGuard<'_, ConsensusView> {
        self.consensus.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits one transaction: first the checks that cost no verification
    /// ([`Shared::precheck`]), then its signature (unless `signature_verified`), role and
    /// nonce against committed state, and the mempool. Relays it to peers when `relay` is
    /// set and it is new. Changes nothing when refused.
    pub fn admit(
        &self,
        tx: Transaction,
        signature_verified: bool,
        relay: bool,
    ) -> Result<(TxHash, Admitted), Refusal> {
        let result = match self.precheck(tx, relay, &mut BatchNonces::new()).1 {
            Ok(Precheck::Settled(hash, admitted)) => Ok((hash, admitted)),
            Ok(Precheck::Formed(formed)) => {
                let signature = match signature_verified {
                    true => Signature::Checked,
                    false => Signature::Unchecked,
                };
                self.admit_formed(formed, signature, relay)
            }
            Err(refusal) => Err(refusal),
        };
        self.count_admission(&result);
        result
    }

    fn count_admission(&self, result: &Result<(TxHash, Admitted), Refusal>) {
        match result {
            Ok((_, Admitted::New)) => {
                self.metrics.txs_admitted.inc();
            }
            Ok(_) => {}
            Err(_) => {
                self.metrics.txs_refused.inc();
            }
        }
    }

    /// The checks that cost no signature verification: the form, whether it is pending
    /// here already (then it is relayed again: a peer may have missed it), whether the
    /// ledger knows the signer, whether it is committed already (an old nonce), and
    /// whether the mempool would take it now (room, the signer's nonce gap and pending
    /// count, the last room kept for ready transactions). A transaction refused here, as
    /// most are from a client resubmitting into a full mempool, costs no signature check.
    /// `batch` holds, per signer, the nonce after those that transactions ahead of this
    /// one in its batch will fill (they are not in the pool yet when the whole batch is
    /// prechecked).
    fn precheck(
        &self,
        tx: Transaction,
        relay: bool,
        batch: &mut BatchNonces,
    ) -> (TxHash, Result<Precheck, Refusal>) {
        match tx.check_form(&self.chain_id) {
            Ok(bytes) => {
                let hash = ledger::types::Hash32::digest(&bytes);
                let formed = Formed { tx, hash, bytes };
                (hash, self.precheck_formed(formed, relay, batch))
            }
            Err(error) => (tx.hash(), Err(Refusal::ledger(&error))),
        }
    }

    /// [`Shared::precheck`] past the form: pending, signer, committed, the mempool's room
    /// and nonces.
    fn precheck_formed(
        &self,
        formed: Formed,
        relay: bool,
        batch: &mut BatchNonces,
    ) -> Result<Precheck, Refusal> {
        let (tx, hash) = (&formed.tx, formed.hash);
        if self.mempool().contains(&hash) {
            if let (true, Some(sender)) = (relay, &self.relay) {
                let _ = sender.try_send(Relayed::new(hash, formed.bytes));
            }
            return Ok(Precheck::Settled(hash, Admitted::AlreadyPending));
        }
        let Some(next) = self.signer_next_nonce(&tx.body.signer)? else {
            let error = LedgerError::UnknownSigner {
                signer: tx.body.signer,
            };
            return Err(Refusal::ledger(&error));
        };
        if tx.body.nonce < next {
            // Committed (as most are that a peer relays after a block took them), or a
            // stale nonce the ledger's checks refuse after the signature. The hash covers
            // the signature, which was verified when the block was.
            if self.is_committed(&hash)? {
                return Ok(Precheck::Settled(hash, Admitted::AlreadyCommitted));
            }
        } else {
            let (signer, nonce) = (tx.body.signer, tx.body.nonce);
            let filled = batch.get(&signer).copied().unwrap_or(next);
            let pool = self.mempool();
            pool.check_insert_after(&signer, nonce, formed.bytes.len(), next, filled)
                .map_err(|e| Refusal::mempool(&e))?;
            if nonce == pool.pending_next_nonce(&signer, filled) {
                batch.insert(signer, nonce + 1);
            }
        }
        Ok(Precheck::Formed(formed))
    }

    /// Admits a prechecked transaction: its signature (unless checked already or vouched
    /// for), whether it is committed, the ledger's rules and the signer's nonce, then the
    /// mempool.
    fn admit_formed(
        &self,
        Formed { tx, hash, bytes }: Formed,
        signature: Signature,
        relay: bool,
    ) -> Result<(TxHash, Admitted), Refusal> {
        if signature == Signature::Unchecked {
            tx.verify_signature().map_err(|e| Refusal::ledger(&e))?;
        }
        // Committed and the signer's nonce are read again, now under the lock the insert
        // holds: a block may have committed since the precheck read them.
        let ledger = self.ledger();
        if ledger
            .tx_location(&hash)
            .map_err(|e| Refusal::ledger(&e))?
            .is_some()
        {
            return Ok((hash, Admitted::AlreadyCommitted));
        }
        // The form was checked by the precheck; the signer's record is read once here.
        let next = ledger
            .check_signer_and_role(&tx)
            .map_err(|e| Refusal::ledger(&e))?
            .next_nonce;
        let size = bytes.len();
        let relayed = relay.then(|| Relayed::new(hash, bytes));
        let inserted = {
            let mut pool = self.mempool();
            let inserted = self.insert(&mut pool, (hash, tx, size), next, signature)?;
            self.update_mempool_metrics(&pool);
            inserted
        };
        drop(ledger);
        if !inserted {
            return Ok((hash, Admitted::AlreadyPending));
        }
        self.mempool_changed.notify_one();
        if let (Some(relayed), Some(sender)) = (relayed, &self.relay) {
            // A full relay queue only delays the transaction until this node proposes.
            if sender.try_send(relayed).is_err() {
                self.metrics.relay_dropped.inc();
            }
        }
        Ok((hash, Admitted::New))
    }

    /// Inserts an admitted transaction into `pool`: unchecked when a peer vouches for it
    /// and the pool takes it so, else checked first (then under the pool's lock: a
    /// replacement, rare in a relay).
    fn insert(
        &self,
        pool: &mut Mempool,
        (hash, tx, size): (TxHash, Transaction, usize),
        next: u64,
        signature: Signature,
    ) -> Result<bool, Refusal> {
        let now = self.clock.monotonic();
        let inserted = match signature {
            Signature::RelayedBy(peer) if pool.takes_unchecked(&hash, &tx) => {
                pool.insert_relayed((hash, tx, size), next, now, peer)
            }
            Signature::RelayedBy(_) => {
                tx.verify_signature().map_err(|e| Refusal::ledger(&e))?;
                pool.insert(hash, tx, size, next, now)
            }
            Signature::Checked | Signature::Unchecked => pool.insert(hash, tx, size, next, now),
        };
        inserted.map_err(|e| Refusal::mempool(&e))
    }

    /// Admits a batch (from a peer's relay or a bulk client), verifying together the
    /// signatures of the transactions that pass the cheap checks first (those of a trusted
    /// peer's batch of at most [`UNCHECKED_BATCH_TXS_MAX`] are left to the block that takes
    /// them: [`BatchFrom::Peer`]). Returns each transaction's hash and result, in order.
    pub fn admit_batch(
        &self,
        txs: Vec<Transaction>,
        from: BatchFrom,
    ) -> Vec<(TxHash, Result<Admitted, Refusal>)> {
        let relay = from == BatchFrom::Client;
        let mut batch = BatchNonces::new();
        let prechecked: Vec<(TxHash, Result<Precheck, Refusal>)> = txs
            .into_iter()
            .map(|tx| self.precheck(tx, relay, &mut batch))
            .collect();
        let to_check = prechecked
            .iter()
            .filter(|(_, p)| matches!(p, Ok(Precheck::Formed(_))))
            .count();
        let signature = match from {
            BatchFrom::Peer(peer)
                if to_check <= UNCHECKED_BATCH_TXS_MAX && !self.distrusts(&peer) =>
            {
                Signature::RelayedBy(peer)
            }
            _ => Self::check_batch(&prechecked),
        };
        prechecked
            .into_iter()
            .map(|(hash, prechecked)| {
                let result = match prechecked {
                    Ok(Precheck::Settled(hash, admitted)) => Ok((hash, admitted)),
                    Ok(Precheck::Formed(formed)) => self.admit_formed(formed, signature, relay),
                    Err(refusal) => Err(refusal),
                };
                self.count_admission(&result);
                (hash, result.map(|(_, admitted)| admitted))
            })
            .collect()
    }

    /// Verifies together the signatures of the prechecked transactions that go on to the
    /// ledger's checks: all checked when they all pass; else each is checked on its own.
    fn check_batch(prechecked: &[(TxHash, Result<Precheck, Refusal>)]) -> Signature {
        let formed = prechecked.iter().filter_map(|(_, p)| match p {
            Ok(Precheck::Formed(formed)) => Some(&formed.tx),
            _ => None,
        });
        match ledger::tx::verify_signatures(formed) {
            Ok(()) => Signature::Checked,
            Err(_) => Signature::Unchecked,
        }
    }

    /// Whether `peer` has relayed a transaction with a bad signature.
    fn distrusts(&self, peer: &PublicKey) -> bool {
        self.distrusted_relayers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(peer)
    }

    /// Notes that `peer` relayed the transaction `hash` whose signature failed here: a
    /// node that relays checks first, so it is faulty or byzantine. Its relays are checked
    /// on arrival from then on.
    fn distrust(&self, peer: PublicKey, hash: &TxHash) {
        self.metrics.relay_bad_signatures.inc();
        let newly = self
            .distrusted_relayers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer);
        if newly {
            warn!(%peer, tx = %hash, "a peer node relayed a transaction with a bad signature; its relays are checked on arrival from now on");
        }
    }

    /// Whether the transaction `hash` is in a committed block.
    fn is_committed(&self, hash: &TxHash) -> Result<bool, Refusal> {
        self.ledger()
            .tx_location(hash)
            .map(|location| location.is_some())
            .map_err(|e| Refusal::ledger(&e))
    }

    /// The next nonce of `signer` in committed state, or `None` if the ledger does not
    /// know the signer (a genesis key, an agent or a beneficiary key).
    fn signer_next_nonce(&self, signer: &PublicKey) -> Result<Option<u64>, Refusal> {
        self.ledger()
            .next_nonce(signer)
            .map_err(|e| Refusal::ledger(&e))
    }

    /// Builds the next block as `proposer` from the mempool's candidates, at the clock's
    /// time (never before the tip's). Candidates the ledger refuses are dropped from the
    /// mempool with the reason, except those only waiting for an earlier nonce.
    pub fn build_block(&self, proposer: PublicKey) -> Result<PreparedBlock, LedgerError> {
        let (candidates, verified) = self.mempool().candidates();
        let prepared = {
            let ledger = self.ledger();
            let time_ms = self.clock.unix_ms().max(ledger.tip().time_ms + 1);
            ledger.build_block(
                candidates,
                time_ms,
                proposer,
                SignatureCheck::SkipVerified(&verified),
            )?
        };
        if !prepared.rejected.is_empty() {
            let mut pool = self.mempool();
            for (hash, error) in &prepared.rejected {
                match error {
                    // A nonce ahead of the signer's next one waits for its predecessor.
                    LedgerError::BadNonce { expected, got, .. } if got > expected => {}
                    // A nonce already used: later ones of the signer may still be good.
                    LedgerError::BadNonce { .. } => {
                        pool.reject(hash, error.code(), error.to_string());
                    }
                    _ => {
                        // A bad signature this node left to the block: its relayer's fault.
                        let relayer = pool.unchecked_from(hash);
                        if let (LedgerError::BadSignature { .. }, Some(peer)) = (error, relayer) {
                            self.distrust(peer, hash);
                        }
                        pool.reject_with_successors(hash, error.code(), error.to_string());
                    }
                }
            }
            self.update_mempool_metrics(&pool);
        }
        Ok(prepared)
    }

    /// Commits a checked block with its certificate, then drops its transactions (and every
    /// pending one whose nonce it used up) from the mempool. Returns the number of
    /// transactions committed.
    pub fn commit(
        &self,
        prepared: PreparedBlock,
        certificate: &[u8],
    ) -> Result<usize, LedgerError> {
        let committed = prepared.tx_hashes.clone();
        let mut signers: Vec<PublicKey> =
            prepared.block.txs.iter().map(|t| t.body.signer).collect();
        signers.sort();
        signers.dedup();
        let height = prepared.block.header.height;
        let own_checkpoint = {
            let mut ledger = self.ledger_mut();
            let before = Head::of(ledger.tip());
            ledger.commit(prepared, certificate)?;
            self.checkpoints.follow(&ledger)?;
            self.consortium.follow(&ledger)?;
            self.checkpoints.after_commit(&mut ledger, before)
        };
        if let (Some(note), Some(push)) = (own_checkpoint, &self.checkpoint_push) {
            // A full queue only delays this signature's peers until the next checkpoint.
            let _ = push.try_send(note);
        }
        let ledger = self.ledger();
        let mut pool = self.mempool();
        pool.on_commit(&committed, &signers, |signer| {
            ledger.next_nonce(signer).ok().flatten().unwrap_or(0)
        });
        self.update_mempool_metrics(&pool);
        self.metrics.height.set(gauge(height));
        self.committed_height.send_replace(height);
        self.metrics.blocks_committed.inc();
        self.metrics.txs_committed.inc_by(committed.len() as u64);
        Ok(committed.len())
    }

    fn update_mempool_metrics(&self, pool: &Mempool) {
        self.metrics.mempool_txs.set(gauge(pool.len() as u64));
        self.metrics.mempool_bytes.set(gauge(pool.bytes() as u64));
    }

    /// Drops the mempool's transactions that waited too long, and checks those relayed
    /// unchecked for longer than [`UNCHECKED_AGE_MAX`]; returns how many expired.
    pub fn sweep_mempool(&self) -> usize {
        self.check_unchecked();
        let mut pool = self.mempool();
        let expired = pool.expire(self.clock.monotonic());
        self.update_mempool_metrics(&pool);
        expired
    }

    /// Checks together, outside the mempool's lock, the signatures of the relayed
    /// transactions that have waited unchecked for [`UNCHECKED_AGE_MAX`] (no block took
    /// them: most wait for a predecessor). A bad one is rejected with its signer's later
    /// nonces, and its relayer is distrusted.
    fn check_unchecked(&self) {
        let now = self.clock.monotonic();
        let Some(admitted_by) = now.checked_sub(UNCHECKED_AGE_MAX) else {
            return;
        };
        let old = self.mempool().unchecked_since(admitted_by);
        let all_good = ledger::tx::verify_signatures(old.iter().map(|(_, tx, _)| tx)).is_ok();
        let good: Vec<bool> = old
            .iter()
            .map(|(_, tx, _)| all_good || tx.verify_signature().is_ok())
            .collect();
        let mut pool = self.mempool();
        for ((hash, tx, peer), good) in old.iter().zip(good) {
            if good {
                pool.mark_checked(hash);
            } else if pool.unchecked_from(hash).is_some() {
                self.distrust(*peer, hash);
                let error = LedgerError::BadSignature {
                    signer: tx.body.signer,
                };
                pool.reject_with_successors(hash, error.code(), error.to_string());
            }
        }
        self.update_mempool_metrics(&pool);
    }

    /// Records a refusal for status queries (a transaction that failed admission).
    pub fn remember_refusal(&self, hash: TxHash, refusal: &Refusal) {
        if refusal.kind == RefusalKind::Invalid {
            self.mempool()
                .remember_rejection(hash, &refusal.code, refusal.message.clone());
        }
    }
}

/// Has the checkpoint gatherer and the consortium's keys follow the governance changes the
/// ledger holds (a node restarted after one). A store that cannot be read here fails the
/// first commit too; until then the genesis view stands, and it is logged.
fn follow_governance<S: Store>(
    ledger: &Ledger<S>,
    checkpoints: &Checkpoints,
    consortium: &Consortium,
) {
    if let Err(error) = checkpoints
        .follow(ledger)
        .and_then(|()| consortium.follow(ledger))
    {
        tracing::error!(%error, "could not read the validator set or organisations from the store");
    }
}
