//! State shared by the node's tasks: the ledger, the mempool, metrics and a view of
//! consensus, plus transaction admission (used by the HTTP API and the relay).
//!
//! Lock order: the ledger before the mempool, never the other way round. Neither lock is
//! held across an `.await`, and signatures are verified before either is taken.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ledger::tx::Transaction;
use ledger::types::TxHash;
use ledger::{Ledger, LedgerError, RocksStore};
use tokio::sync::{mpsc, Notify};

use crate::mempool::{Mempool, MempoolError};
use crate::metrics::Metrics;

/// The most transactions waiting to be relayed to peers; beyond it relaying is skipped
/// (the transaction stays in this node's mempool and is proposed from here).
pub const RELAY_QUEUE_TXS_MAX: usize = 20_000;

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
            MempoolError::Full { .. } => RefusalKind::Busy,
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

/// The node's shared state.
pub struct Shared {
    pub node_name: String,
    pub role: genesis::testnet::NodeRole,
    ledger: RwLock<Ledger<RocksStore>>,
    mempool: Mutex<Mempool>,
    /// Woken when a transaction is admitted, so an idle proposer can propose at once.
    pub mempool_changed: Notify,
    pub metrics: Metrics,
    pub consensus: Mutex<ConsensusView>,
    relay: Option<mpsc::Sender<Transaction>>,
}

impl Shared {
    /// Shared state over an opened ledger. `relay` receives admitted client transactions to
    /// pass on to peers.
    pub fn new(
        node_name: String,
        role: genesis::testnet::NodeRole,
        ledger: Ledger<RocksStore>,
        mempool: Mempool,
        relay: Option<mpsc::Sender<Transaction>>,
    ) -> Shared {
        let metrics = Metrics::new();
        metrics.height.set(ledger.tip().height as i64);
        Shared {
            node_name,
            role,
            ledger: RwLock::new(ledger),
            mempool: Mutex::new(mempool),
            mempool_changed: Notify::new(),
            metrics,
            consensus: Mutex::new(ConsensusView::default()),
            relay,
        }
    }

    /// Read access to the ledger. A poisoned lock means a thread panicked while writing;
    /// the ledger's own writes are atomic batches, so its state is still consistent.
    pub fn ledger(&self) -> RwLockReadGuard<'_, Ledger<RocksStore>> {
        self.ledger.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Write access to the ledger (commits only).
    pub fn ledger_mut(&self) -> RwLockWriteGuard<'_, Ledger<RocksStore>> {
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

    /// Admits one transaction: form and chain id, signature (unless `signature_verified`),
    /// signer, role and nonce against committed state, then room in the mempool. Relays it
    /// to peers when `relay` is set and it is new. Changes nothing when refused.
    pub fn admit(
        &self,
        tx: Transaction,
        signature_verified: bool,
        relay: bool,
    ) -> Result<(TxHash, Admitted), Refusal> {
        let result = self.admit_inner(tx, signature_verified, relay);
        match &result {
            Ok((_, Admitted::New)) => {
                self.metrics.txs_admitted.inc();
            }
            Ok(_) => {}
            Err(_) => {
                self.metrics.txs_refused.inc();
            }
        }
        result
    }

    fn admit_inner(
        &self,
        tx: Transaction,
        signature_verified: bool,
        relay: bool,
    ) -> Result<(TxHash, Admitted), Refusal> {
        let chain_id = self.ledger().chain_id().to_owned();
        let bytes = tx.check_form(&chain_id).map_err(|e| Refusal::ledger(&e))?;
        let hash = ledger::types::Hash32::digest(&bytes);
        {
            let pool = self.mempool();
            if pool.contains(&hash) {
                return Ok((hash, Admitted::AlreadyPending));
            }
            pool.check_room(bytes.len())
                .map_err(|e| Refusal::mempool(&e))?;
        }
        if !signature_verified {
            tx.verify_signature().map_err(|e| Refusal::ledger(&e))?;
        }
        let ledger = self.ledger();
        if ledger
            .tx_location(&hash)
            .map_err(|e| Refusal::ledger(&e))?
            .is_some()
        {
            return Ok((hash, Admitted::AlreadyCommitted));
        }
        ledger
            .check_transaction(&tx, true)
            .map_err(|e| Refusal::ledger(&e))?;
        let next = ledger
            .next_nonce(&tx.body.signer)
            .map_err(|e| Refusal::ledger(&e))?
            .unwrap_or(0);
        let relayed = relay.then(|| tx.clone());
        let inserted = {
            let mut pool = self.mempool();
            let inserted = pool
                .insert(hash, tx, bytes.len(), next)
                .map_err(|e| Refusal::mempool(&e))?;
            self.metrics.mempool_txs.set(pool.len() as i64);
            self.metrics.mempool_bytes.set(pool.bytes() as i64);
            inserted
        };
        drop(ledger);
        if !inserted {
            return Ok((hash, Admitted::AlreadyPending));
        }
        self.mempool_changed.notify_one();
        if let (Some(tx), Some(sender)) = (relayed, &self.relay) {
            // A full relay queue only delays the transaction until this node proposes.
            let _ = sender.try_send(tx);
        }
        Ok((hash, Admitted::New))
    }

    /// Admits a batch (from a peer's relay or a bulk client), verifying the signatures of
    /// the whole batch at once. Returns one result per transaction, in order.
    pub fn admit_batch(
        &self,
        txs: Vec<Transaction>,
        relay: bool,
    ) -> Vec<Result<(TxHash, Admitted), Refusal>> {
        let all_valid = ledger::tx::verify_signatures(txs.iter()).is_ok();
        txs.into_iter()
            .map(|tx| self.admit(tx, all_valid, relay))
            .collect()
    }

    /// Records a refusal for status queries (a transaction that failed admission).
    pub fn remember_refusal(&self, hash: TxHash, refusal: &Refusal) {
        if refusal.kind == RefusalKind::Invalid {
            self.mempool()
                .remember_rejection(hash, &refusal.code, refusal.message.clone());
        }
    }
}
