//! State shared by the node's tasks: the ledger, the mempool, metrics and a view of
//! consensus, plus transaction admission (used by the HTTP API and the relay).
//!
//! Lock order: the ledger before the mempool, never the other way round. Neither lock is
//! held across an `.await`, and signatures are verified before either is taken.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ed25519_dalek::SigningKey;
use ledger::chain::{PreparedBlock, SignatureCheck};
use ledger::tx::Transaction;
use ledger::types::{PublicKey, TxHash};
use ledger::{Ledger, LedgerError, Store};
use tokio::sync::{mpsc, Notify};

use crate::checkpoints::{Checkpoints, Head};
use crate::clock::Clock;
use crate::consortium::Consortium;
use crate::mempool::{Mempool, MempoolError};
use crate::metrics::Metrics;
use crate::witness::Witness;

/// How often the mempool drops transactions that waited longer than their time to live.
pub const MEMPOOL_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A count as a Prometheus gauge value (saturating; no count here comes near 2^63).
pub fn gauge(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What consensus last told the application, for `/v1/status`.
#[derive(Clone, Debug, Default)]
pub struct ConsensusView {
    pub height: u64,
    pub round: i64,
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

/// A transaction past the checks that cost no signature verification.
struct Formed {
    tx: Transaction,
    hash: TxHash,
    /// Its canonical encoding's length in bytes.
    size: usize,
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
    /// The node's only source of time.
    pub clock: Arc<dyn Clock>,
    ledger: RwLock<Ledger<S>>,
    mempool: Mutex<Mempool>,
    /// Woken when a transaction is admitted, so an idle proposer can propose at once.
    pub mempool_changed: Notify,
    pub metrics: Metrics,
    pub consensus: Mutex<ConsensusView>,
    relay: Option<mpsc::Sender<crate::relay::Relayed>>,
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
}

impl<S: Store> Shared<S> {
    /// Shared state over an opened ledger. `relay` receives admitted client transactions to
    /// pass on to peers.
    pub fn new(
        node_name: String,
        role: genesis::testnet::NodeRole,
        ledger: Ledger<S>,
        mempool: Mempool,
        relay: Option<mpsc::Sender<crate::relay::Relayed>>,
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
            clock,
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
            Ok(Precheck::Formed(formed)) => self.admit_formed(formed, signature_verified, relay),
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
        let chain_id = self.ledger().chain_id().to_owned();
        match tx.check_form(&chain_id) {
            Ok(bytes) => {
                let hash = ledger::types::Hash32::digest(&bytes);
                let formed = Formed {
                    tx,
                    hash,
                    size: bytes.len(),
                };
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
                let _ = sender.try_send((hash, formed.tx));
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
            pool.check_insert_after(&signer, nonce, formed.size, next, filled)
                .map_err(|e| Refusal::mempool(&e))?;
            if nonce == pool.pending_next_nonce(&signer, filled) {
                batch.insert(signer, nonce + 1);
            }
        }
        Ok(Precheck::Formed(formed))
    }

    /// Admits a prechecked transaction: its signature (unless verified already), whether
    /// it is committed, the ledger's rules and the signer's nonce, then the mempool.
    fn admit_formed(
        &self,
        Formed { tx, hash, size }: Formed,
        signature_verified: bool,
        relay: bool,
    ) -> Result<(TxHash, Admitted), Refusal> {
        if !signature_verified {
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
        let relayed = relay.then(|| (hash, tx.clone()));
        let inserted = {
            let mut pool = self.mempool();
            let inserted = pool
                .insert(hash, tx, size, next, self.clock.monotonic())
                .map_err(|e| Refusal::mempool(&e))?;
            self.update_mempool_metrics(&pool);
            inserted
        };
        drop(ledger);
        if !inserted {
            return Ok((hash, Admitted::AlreadyPending));
        }
        self.mempool_changed.notify_one();
        if let (Some(tx), Some(sender)) = (relayed, &self.relay) {
            // A full relay queue only delays the transaction until this node proposes.
            if sender.try_send(tx).is_err() {
                self.metrics.relay_dropped.inc();
            }
        }
        Ok((hash, Admitted::New))
    }

    /// Admits a batch (from a peer's relay or a bulk client), verifying together the
    /// signatures of the transactions that pass the cheap checks first. Returns each
    /// transaction's hash and result, in order.
    pub fn admit_batch(
        &self,
        txs: Vec<Transaction>,
        relay: bool,
    ) -> Vec<(TxHash, Result<Admitted, Refusal>)> {
        let mut batch = BatchNonces::new();
        let prechecked: Vec<(TxHash, Result<Precheck, Refusal>)> = txs
            .into_iter()
            .map(|tx| self.precheck(tx, relay, &mut batch))
            .collect();
        let all_valid =
            ledger::tx::verify_signatures(prechecked.iter().filter_map(|(_, p)| match p {
                Ok(Precheck::Formed(formed)) => Some(&formed.tx),
                _ => None,
            }))
            .is_ok();
        prechecked
            .into_iter()
            .map(|(hash, prechecked)| {
                let result = match prechecked {
                    Ok(Precheck::Settled(hash, admitted)) => Ok((hash, admitted)),
                    // A batch with a bad signature in it: each is verified on its own.
                    Ok(Precheck::Formed(formed)) => self.admit_formed(formed, all_valid, relay),
                    Err(refusal) => Err(refusal),
                };
                self.count_admission(&result);
                (hash, result.map(|(_, admitted)| admitted))
            })
            .collect()
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

    /// Drops the mempool's transactions that waited too long; returns how many.
    pub fn sweep_mempool(&self) -> usize {
        let mut pool = self.mempool();
        let expired = pool.expire(self.clock.monotonic());
        self.update_mempool_metrics(&pool);
        expired
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
