//! The chain: genesis, blocks applied all-or-nothing, the transparency log, the state root,
//! and the queries that the node, the explorer and auditors make.
//!
//! ## The state root
//!
//! `state_root(h) = BLAKE3(STATE_DOMAIN ‖ state_root(h-1) ‖ h ‖ writes(h))`, where
//! `writes(h)` is the block's state changes in key order, each as
//! `len(key) ‖ key ‖ 0 | 1 ‖ len(value) ‖ value`, and `state_root(-1)` is the genesis hash.
//! Any auditor recomputes it by replaying the blocks from genesis (which `bansos audit`
//! does), and the commit certificate over each header binds it. It is cheap: one hash
//! over the bytes a block writes, no tree to maintain on the hot path.
//!
//! ## Writing a block
//!
//! Reads first, then compute, then one write (TigerBeetle's prefetch/commit): a block's
//! transactions execute against an overlay of the store; the state changes, the header, the
//! log leaves and subtrees, the indexes, the new tip and the certificate then go to the store
//! in a single synced [`WriteBatch`]. A crash leaves either the whole block or none of it.

use std::collections::HashSet;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::block::{tx_root_of_leaves, Block, BlockHeader};
use crate::error::LedgerError;
use crate::genesis::{Genesis, GenesisIndex};
use crate::governance::{ChangeRecord, Members, OrgRecord, ValidatorSetRecord};
use crate::limits::{BLOCK_BYTES_MAX, BLOCK_TXS_MAX};
use crate::log_cache::{CachedLog, RightEdges, UpperLog};
use crate::log_store::{LogWrites, StoreLog};
use crate::merkle::{self, Frontier, TILE_HEIGHT, TILE_WIDTH};
use crate::rules::{self, Overlay, TxContext, Writes};
use crate::state::{keys, AllocationRecord, KeyHolder, KeyRecord};
use crate::store::{Column, Store, WriteBatch};
use crate::totals;
use crate::tx::{verify_signatures, Transaction};
use crate::types::{BlockHash, Hash32, Height, Pseudonym, PublicKey, TimeMs, TxHash};

/// Domain separation for the state root.
pub const STATE_DOMAIN: &[u8] = b"bansos-ledger/state/v1\0";

const META_GENESIS_HASH: &[u8] = b"genesis_hash";
const META_STORE_FORMAT: &[u8] = b"store_format";

/// The layout of the store's columns this version writes and reads: 1 before the marker
/// existed (node subtrees one key each, a height alone in the beneficiary index); 2 with
/// the log's lower levels one value per tile and the block time in the beneficiary index.
pub const STORE_FORMAT: u32 = 2;
const META_TIP: &[u8] = b"tip";
const META_LATEST_CHECKPOINT: &[u8] = b"latest_checkpoint";
/// Followed by a log size (u64 big-endian): the totals root at that size.
const META_TOTALS_AT: &[u8] = b"totals@";

fn totals_at_key(log_size: u64) -> Vec<u8> {
    let mut key = META_TOTALS_AT.to_vec();
    key.extend_from_slice(&log_size.to_be_bytes());
    key
}

/// One transaction concerning a beneficiary, as the beneficiary index holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BeneficiaryStep {
    pub log_index: u64,
    /// The height it was committed at.
    pub height: Height,
    /// That block's time.
    pub time_ms: TimeMs,
}

/// The head of the chain: enough to build or check the next block without reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTip {
    pub height: Height,
    pub block_hash: BlockHash,
    pub time_ms: TimeMs,
    pub state_root: Hash32,
    pub log: Frontier,
}

/// The tip as stored.
#[derive(BorshSerialize, BorshDeserialize)]
struct StoredTip {
    height: Height,
    block_hash: BlockHash,
    time_ms: TimeMs,
    state_root: Hash32,
    log_size: u64,
    log_hashes: Vec<[u8; 32]>,
}

/// Where a committed transaction is.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct TxLocation {
    pub height: Height,
    /// Position within the block.
    pub index: u32,
    /// Position in the transparency log.
    pub log_index: u64,
}

/// How to treat transaction signatures when executing a block.
#[derive(Clone, Copy)]
pub enum SignatureCheck<'a> {
    /// Verify every signature (batched).
    VerifyAll,
    /// Skip transactions whose hash is in the set: the node verified them on admission to
    /// its mempool and need not pay for it twice.
    SkipVerified(&'a HashSet<TxHash>),
    /// Skip transactions for which the function says yes (the node's mempool holds them,
    /// verified on admission): asked with the hash the block's execution computes anyway,
    /// so a block of thousands is not hashed twice to build a set first.
    SkipIf(&'a dyn Fn(&TxHash) -> bool),
}

/// A block that has been executed and checked but not yet written.
#[derive(Debug)]
pub struct PreparedBlock {
    pub block: Block,
    pub hash: BlockHash,
    /// Candidates left out of a built block, with the reason (empty when checking a block).
    pub rejected: Vec<(TxHash, LedgerError)>,
    /// The hash of each of the block's transactions, in order: computed once by the
    /// execution, for the node's mempool and metrics after the commit.
    pub tx_hashes: Vec<TxHash>,
    batch: WriteBatch,
    new_tip: ChainTip,
    /// The log subtrees at [`crate::log_cache::UPPER_LOG_LEVEL`] and above that the block completes, for the
    /// in-memory upper log once the block is written.
    upper_nodes: Vec<CompletedNode>,
}

/// A log subtree a block completes: level, index, hash.
type CompletedNode = (u8, u64, merkle::Hash);

/// The ledger: a deterministic state machine over a [`Store`].
pub struct Ledger<S: Store> {
    store: S,
    genesis: GenesisIndex,
    tip: ChainTip,
    /// The log's complete subtrees at level 8 and above, in memory (see [`crate::log_cache`]).
    upper_log: UpperLog,
    /// The right edges of the log at the sizes proofs were last asked at.
    right_edges: RightEdges,
    /// The organisations not removed (read for every transaction's signer), and the
    /// governance epoch they were read at.
    members: (u64, Members),
    /// Whether a pseudonym key took effect after genesis: only then can a step name a
    /// beneficiary by a linked pseudonym that must be resolved (`crate::pseudonyms`).
    rekeyed: bool,
}

impl<S: Store> std::fmt::Debug for Ledger<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("chain_id", &self.genesis.chain_id())
            .field("height", &self.tip.height)
            .finish()
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(format!("{what}: {e}"))
}

/// The state-root step for one height (see the module documentation).
pub fn next_state_root(previous: &Hash32, height: Height, writes: &Writes) -> Hash32 {
    let mut feed = HashFeed::new();
    feed.push(STATE_DOMAIN);
    feed.push(previous.as_bytes());
    feed.push(&height.to_be_bytes());
    for (key, value) in writes {
        feed.push(&(key.len() as u64).to_be_bytes());
        feed.push(key);
        match value {
            Some(value) => {
                feed.push(&[1]);
                feed.push(&(value.len() as u64).to_be_bytes());
                feed.push(value);
            }
            None => feed.push(&[0]),
        }
    }
    feed.finalize()
}

/// Bytes gathered before they are handed to BLAKE3 together (its chunks are 1 KiB).
const HASH_FEED_BYTES: usize = 64 * 1024;

/// BLAKE3 over many small pieces, gathered into [`HASH_FEED_BYTES`] at a time: given
/// many whole chunks at once, BLAKE3 hashes them side by side (SIMD); given a few bytes at
/// a time it compresses one 64-byte block after another. The state root of a block of
/// 10,000 writes took 1,973 µs fed piece by piece and 254 µs gathered. The hash is the
/// same however the input is split.
struct HashFeed {
    hasher: blake3::Hasher,
    pending: Vec<u8>,
}

impl HashFeed {
    fn new() -> HashFeed {
        HashFeed {
            hasher: blake3::Hasher::new(),
            pending: Vec::with_capacity(HASH_FEED_BYTES),
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.pending.len() + bytes.len() > HASH_FEED_BYTES {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
        if bytes.len() >= HASH_FEED_BYTES {
            self.hasher.update(bytes);
        } else {
            self.pending.extend_from_slice(bytes);
        }
    }

    fn finalize(mut self) -> Hash32 {
        self.hasher.update(&self.pending);
        Hash32(*self.hasher.finalize().as_bytes())
    }
}

/// What executing a list of transactions produced.
struct Execution {
    included: Vec<Transaction>,
    included_bytes: Vec<Vec<u8>>,
    included_hashes: Vec<TxHash>,
    touched: Vec<Option<Pseudonym>>,
    rejected: Vec<(TxHash, LedgerError)>,
    writes: Writes,
    /// The totals tree's root after the block.
    totals_root: Hash32,
}

impl Execution {
    /// An empty execution with room for `txs` transactions.
    fn with_capacity(txs: usize) -> Execution {
        Execution {
            included: Vec::with_capacity(txs),
            included_bytes: Vec::with_capacity(txs),
            included_hashes: Vec::with_capacity(txs),
            touched: Vec::with_capacity(txs),
            rejected: Vec::new(),
            writes: Writes::new(),
            totals_root: Hash32::ZERO,
        }
    }
}

/// A transaction that passed the form check, with its canonical bytes and their hash.
type Formed = (Transaction, Vec<u8>, TxHash);

/// Build a block (drop bad transactions) or check one (any bad transaction fails it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Build,
    Check,
}

impl<S: Store> Ledger<S> {
    /// Opens the ledger on `store`, writing the genesis state on first use and checking on
    /// every later use that the store belongs to this genesis.
    pub fn open(store: S, genesis: Genesis) -> Result<Self, LedgerError> {
        let genesis = genesis.validate()?;
        match store.get(Column::Meta, META_GENESIS_HASH)? {
            Some(stored) => {
                let stored =
                    Hash32(stored.try_into().map_err(|_| {
                        LedgerError::Corrupt("genesis hash is not 32 bytes".into())
                    })?);
                if stored != genesis.hash {
                    return Err(LedgerError::GenesisMismatch {
                        stored,
                        expected: genesis.hash,
                    });
                }
                check_store_format(&store)?;
                let tip = Self::load_tip(&store)?;
                let upper_log = UpperLog::load(&store, tip.log.size())?;
                Ledger {
                    store,
                    genesis,
                    tip,
                    upper_log,
                    right_edges: RightEdges::default(),
                    members: (0, Members::new()),
                    rekeyed: false,
                }
                .with_members()
            }
            None => {
                let mut writes = Writes::new();
                for org in &genesis.genesis.organisations {
                    for key in &org.tx_keys {
                        let record = KeyRecord {
                            holder: KeyHolder::Organisation {
                                org: org.id.clone(),
                            },
                            next_nonce: 0,
                            revoked: false,
                        };
                        writes.insert(keys::signer(key), Some(crate::encode::canonical(&record)));
                    }
                }
                for (key, value) in crate::governance::genesis_records(&genesis) {
                    writes.insert(key, Some(value));
                }
                let tip = ChainTip {
                    height: 0,
                    block_hash: genesis.hash,
                    time_ms: genesis.genesis.genesis_time_ms,
                    state_root: next_state_root(&genesis.hash, 0, &writes),
                    log: Frontier::new(),
                };
                let mut batch = WriteBatch::new();
                for (key, value) in &writes {
                    if let Some(value) = value {
                        batch.put(Column::State, key.clone(), value.clone());
                    }
                }
                batch.put(
                    Column::Meta,
                    META_GENESIS_HASH.to_vec(),
                    genesis.hash.0.to_vec(),
                );
                batch.put(
                    Column::Meta,
                    META_STORE_FORMAT.to_vec(),
                    STORE_FORMAT.to_be_bytes().to_vec(),
                );
                batch.put(Column::Meta, META_TIP.to_vec(), encode_tip(&tip));
                store.write(batch)?;
                Ledger {
                    store,
                    genesis,
                    tip,
                    upper_log: UpperLog::default(),
                    right_edges: RightEdges::default(),
                    members: (0, Members::new()),
                    rekeyed: false,
                }
                .with_members()
            }
        }
    }

    /// The ledger with its organisations read from the state.
    fn with_members(mut self) -> Result<Self, LedgerError> {
        self.members = (self.governance_epoch()?, self.live_organisations()?);
        self.rekeyed = self.is_rekeyed()?;
        Ok(self)
    }

    fn is_rekeyed(&self) -> Result<bool, LedgerError> {
        Ok(self.pseudonym_key()?.is_some_and(|k| k.from_height > 1))
    }

    /// The current pseudonym key, if the chain has one.
    pub fn pseudonym_key(
        &self,
    ) -> Result<Option<crate::pseudonyms::PseudonymKeyRecord>, LedgerError> {
        self.state_get(&keys::pseudonym_key())
    }

    /// Every pseudonym key the chain has had, oldest first.
    pub fn pseudonym_keys(
        &self,
    ) -> Result<Vec<crate::pseudonyms::PseudonymKeyRecord>, LedgerError> {
        let prefix = keys::pseudonym_key_versions();
        let rows = self.store.scan(
            Column::State,
            &prefix,
            &prefix,
            crate::limits::PSEUDONYM_KEYS_MAX,
        )?;
        rows.iter()
            .map(|(_, bytes)| borsh::from_slice(bytes).map_err(|e| corrupt("pseudonym key", e)))
            .collect()
    }

    /// The pseudonym the ledger knows the beneficiary named `pseudonym` by: `pseudonym`
    /// itself, or the one a re-keying linked it to; `None` if it names no beneficiary.
    pub fn beneficiary_pseudonym(
        &self,
        pseudonym: &Pseudonym,
    ) -> Result<Option<Pseudonym>, LedgerError> {
        if self
            .state_get::<crate::state::BeneficiaryRecord>(&keys::beneficiary(pseudonym))?
            .is_some()
        {
            return Ok(Some(*pseudonym));
        }
        self.state_get(&keys::pseudonym_link(pseudonym))
    }

    /// During a re-keying: the current key's version and the beneficiaries not yet linked
    /// under it, in pseudonym order after `after`, at most `limit`, reading at most
    /// [`crate::limits::UNLINKED_SCAN_RECORDS_MAX`] records, with where to go on from when
    /// it stopped early. `None` when no re-keying is open.
    pub fn unlinked_beneficiaries(
        &self,
        after: Option<&Pseudonym>,
        limit: usize,
    ) -> Result<Option<crate::pseudonyms::UnlinkedPage>, LedgerError> {
        const PAGE: usize = 1_024;
        let version = match self.pseudonym_key()? {
            Some(key) if !key.linked => key.service.key_version,
            _ => return Ok(None),
        };
        let prefix = keys::beneficiaries();
        let mut start = match after {
            Some(p) => [keys::beneficiary(p), vec![0]].concat(),
            None => prefix.clone(),
        };
        let (mut found, mut scanned) = (Vec::new(), 0usize);
        loop {
            let rows = self.store.scan(Column::State, &prefix, &start, PAGE)?;
            for (key, _) in &rows {
                let bytes: [u8; 32] = key
                    .get(1..33)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("beneficiary key", "not 33 bytes"))?;
                let pseudonym: Pseudonym = crate::types::Hash32(bytes);
                scanned += 1;
                let marker = keys::pseudonym_linked(version, &pseudonym);
                if self.state_get::<()>(&marker)?.is_none() {
                    found.push(pseudonym);
                }
                if found.len() >= limit || scanned >= crate::limits::UNLINKED_SCAN_RECORDS_MAX {
                    return Ok(Some(crate::pseudonyms::UnlinkedPage {
                        key_version: version,
                        unlinked: found,
                        next: Some(pseudonym),
                    }));
                }
            }
            match rows.last() {
                Some((last, _)) if rows.len() == PAGE => start = [last.clone(), vec![0]].concat(),
                _ => {
                    return Ok(Some(crate::pseudonyms::UnlinkedPage {
                        key_version: version,
                        unlinked: found,
                        next: None,
                    }))
                }
            }
        }
    }

    /// `action` with any linked pseudonym replaced by the one the ledger knows the
    /// beneficiary by, as the rules applied it; `None` when it is as it was (always, on a
    /// chain that has not re-keyed: no state is read then).
    pub fn canonical_action(
        &self,
        action: &crate::tx::Action,
    ) -> Result<Option<crate::tx::Action>, LedgerError> {
        if !self.rekeyed {
            return Ok(None);
        }
        let overlay = rules::Overlay::new(&self.store);
        crate::pseudonyms::canonical_action(&overlay, action)
    }

    /// Reads the organisations again if a governance change took effect since they were
    /// read: one state read per commit otherwise.
    fn reload_members(&mut self) -> Result<(), LedgerError> {
        let epoch = self.governance_epoch()?;
        if epoch != self.members.0 {
            self.members = (epoch, self.live_organisations()?);
            self.rekeyed = self.is_rekeyed()?;
        }
        Ok(())
    }

    fn live_organisations(&self) -> Result<Members, LedgerError> {
        Ok(self
            .organisations()?
            .into_iter()
            .filter(|record| record.removed_from.is_none())
            .map(|record| (record.organisation.id.clone(), record.organisation))
            .collect())
    }

    fn load_tip(store: &S) -> Result<ChainTip, LedgerError> {
        let bytes = store
            .get(Column::Meta, META_TIP)?
            .ok_or_else(|| LedgerError::Corrupt("the chain tip is missing".into()))?;
        let stored: StoredTip = borsh::from_slice(&bytes).map_err(|e| corrupt("chain tip", e))?;
        let log = Frontier::from_parts(stored.log_size, stored.log_hashes)
            .map_err(|e| corrupt("chain tip log", e))?;
        Ok(ChainTip {
            height: stored.height,
            block_hash: stored.block_hash,
            time_ms: stored.time_ms,
            state_root: stored.state_root,
            log,
        })
    }

    /// The validated genesis.
    pub fn genesis(&self) -> &GenesisIndex {
        &self.genesis
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        self.genesis.chain_id()
    }

    /// The head of the chain.
    pub fn tip(&self) -> &ChainTip {
        &self.tip
    }

    /// The underlying store, for read-only queries by the node and explorer.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Checks a transaction for admission to a mempool: form, chain id, signature (unless
    /// `signature_verified`), a known and unrevoked signer, a nonce not already used, and a
    /// role that may take this step. Checks that depend on other pending transactions
    /// (budget, lifecycle order) wait for block execution. Changes nothing.
    pub fn check_transaction(
        &self,
        tx: &Transaction,
        signature_verified: bool,
    ) -> Result<TxHash, LedgerError> {
        let bytes = tx.check_form(self.chain_id())?;
        if !signature_verified {
            tx.verify_signature()?;
        }
        self.check_signer_and_role(tx)?;
        Ok(Hash32::digest(&bytes))
    }

    /// The checks of [`Ledger::check_transaction`] past the form and the signature, for a
    /// transaction whose form the caller has checked: the signer is known and not
    /// revoked, the nonce is not used, and the signer's role may take this step. Returns
    /// the signer's key record (its next nonce), read once.
    pub fn check_signer_and_role(&self, tx: &Transaction) -> Result<KeyRecord, LedgerError> {
        let overlay = Overlay::new(&self.store);
        let record = rules::check_signer(&overlay, tx, false)?;
        rules::check_role(&self.members.1, &record, &tx.body.action)?;
        Ok(record)
    }

    /// The next nonce of `signer`, or `None` for a key the ledger does not know.
    pub fn next_nonce(&self, signer: &PublicKey) -> Result<Option<u64>, LedgerError> {
        Ok(self.key_record(signer)?.map(|r| r.next_nonce))
    }

    /// The key record of `signer`.
    pub fn key_record(&self, signer: &PublicKey) -> Result<Option<KeyRecord>, LedgerError> {
        self.state_get(&keys::signer(signer))
    }

    /// The validator set of the next height (`tip + 1`).
    pub fn validator_set(&self) -> Result<ValidatorSetRecord, LedgerError> {
        crate::governance::current_set(&Overlay::new(&self.store))
    }

    /// Every validator set the chain has had, oldest first (genesis's from height 1), with
    /// the one due at the next height if a change takes effect there.
    pub fn validator_sets(&self) -> Result<Vec<ValidatorSetRecord>, LedgerError> {
        let prefix = keys::validator_sets();
        let rows = self.store.scan(
            Column::State,
            &prefix,
            &prefix,
            crate::limits::VALIDATOR_SETS_MAX,
        )?;
        rows.iter()
            .map(|(_, bytes)| borsh::from_slice(bytes).map_err(|e| corrupt("validator set", e)))
            .collect()
    }

    /// The validator set that decides `height`.
    pub fn validator_set_at(&self, height: u64) -> Result<ValidatorSetRecord, LedgerError> {
        let sets = self.validator_sets()?;
        sets.into_iter()
            .take_while(|set| set.from_height <= height.max(1))
            .last()
            .ok_or_else(|| LedgerError::Corrupt("no validator set from height 1".into()))
    }

    /// The validator set that signs the log's checkpoint of `size`: the set that decided
    /// the block whose transactions brought the log to `size` (the head after a block is
    /// signed by the set that decided it). The log size before the first block of each set
    /// is read from the header before it; `size` must be at least 1.
    pub fn checkpoint_set(&self, size: u64) -> Result<ValidatorSetRecord, LedgerError> {
        let mut found = None;
        for set in self.validator_sets()? {
            if self.log_size_before(set.from_height)? >= size {
                break;
            }
            found = Some(set);
        }
        found.ok_or_else(|| LedgerError::Corrupt("no validator set from height 1".into()))
    }

    /// The log's size before block `height` (after `height - 1`), `height` at most
    /// `tip + 1`.
    pub fn log_size_before(&self, height: Height) -> Result<u64, LedgerError> {
        if height <= 1 {
            return Ok(0);
        }
        if height - 1 == self.tip.height {
            return Ok(self.tip.log.size());
        }
        self.header(height - 1)?
            .map(|h| h.log_size)
            .ok_or_else(|| LedgerError::Corrupt(format!("no header at height {}", height - 1)))
    }

    /// Every organisation, removed ones included, in id order.
    pub fn organisations(&self) -> Result<Vec<OrgRecord>, LedgerError> {
        let prefix = keys::organisations();
        let limit = crate::limits::ORGANISATIONS_MAX;
        let rows = self.store.scan(Column::State, &prefix, &prefix, limit)?;
        rows.iter()
            .map(|(_, bytes)| borsh::from_slice(bytes).map_err(|e| corrupt("organisation", e)))
            .collect()
    }

    /// The organisations not removed, as of the tip, with the governance epoch they were
    /// read at (it moves when a change takes effect).
    pub fn members(&self) -> (u64, &Members) {
        (self.members.0, &self.members.1)
    }

    /// How many governance changes have taken effect: when it moves, organisations, keys or
    /// validators changed.
    pub fn governance_epoch(&self) -> Result<u64, LedgerError> {
        Ok(self.state_get(&keys::governance_epoch())?.unwrap_or(0))
    }

    /// The changes due after the tip (still pending), soonest first, at most `limit`.
    pub fn pending_changes(
        &self,
        limit: usize,
    ) -> Result<Vec<(TxHash, ChangeRecord)>, LedgerError> {
        let prefix = keys::changes_due(0)[..1].to_vec();
        let start = keys::changes_due(self.tip.height + 1);
        let rows = self.store.scan(Column::State, &prefix, &start, limit)?;
        let mut changes = Vec::with_capacity(rows.len());
        for (key, _) in rows {
            let id: [u8; 32] = key[start.len()..]
                .try_into()
                .map_err(|_| corrupt("due change", "a key is not 32 bytes long"))?;
            let id = Hash32(id);
            let record = self
                .change(&id)?
                .ok_or_else(|| corrupt("due change", format!("change {id} is missing")))?;
            changes.push((id, record));
        }
        Ok(changes)
    }

    /// A governance change by the hash of the transaction that proposed it.
    pub fn change(&self, id: &TxHash) -> Result<Option<ChangeRecord>, LedgerError> {
        self.state_get(&keys::change(id))
    }

    /// Reads and decodes one state record by key (see [`crate::state::keys`]).
    pub fn state_get<T: BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>, LedgerError> {
        Overlay::new(&self.store).get(key)
    }

    /// Builds the next block from `candidates`, in order, leaving out those that fail and
    /// stopping at the block limits. Writes nothing: pass the result to [`Self::commit`]
    /// once consensus decides it.
    pub fn build_block(
        &self,
        candidates: Vec<Transaction>,
        time_ms: TimeMs,
        proposer: PublicKey,
        signatures: SignatureCheck<'_>,
    ) -> Result<PreparedBlock, LedgerError> {
        self.check_time_and_proposer(time_ms, &proposer)?;
        let mut execution = self.execute(candidates, time_ms, signatures, Mode::Build)?;
        let height = self.tip.height + 1;
        let mut header = BlockHeader {
            chain_id: self.chain_id().to_owned(),
            height,
            prev_hash: self.tip.block_hash,
            time_ms,
            proposer,
            tx_count: 0,
            tx_root: Hash32::ZERO,
            log_size: 0,
            log_root: Hash32::ZERO,
            state_root: Hash32::ZERO,
            totals_root: Hash32::ZERO,
        };
        let (batch, new_tip, upper_nodes) = self.finish(&mut header, &mut execution)?;
        let block = Block {
            header,
            txs: execution.included,
        };
        Ok(PreparedBlock {
            hash: block.hash(),
            block,
            rejected: execution.rejected,
            tx_hashes: execution.included_hashes,
            batch,
            new_tip,
            upper_nodes,
        })
    }

    /// Checks a proposed or synced block completely (linkage, limits, signatures, every
    /// rule, every root in the header) without writing it.
    pub fn prepare_block(
        &self,
        block: &Block,
        signatures: SignatureCheck<'_>,
    ) -> Result<PreparedBlock, LedgerError> {
        let header = &block.header;
        let expected_height = self.tip.height + 1;
        if header.height != expected_height {
            return Err(LedgerError::WrongHeight {
                expected: expected_height,
                got: header.height,
            });
        }
        if header.chain_id != self.chain_id() {
            return Err(LedgerError::WrongChainId {
                expected: self.chain_id().to_owned(),
                got: header.chain_id.chars().take(64).collect(),
            });
        }
        if header.prev_hash != self.tip.block_hash {
            return Err(LedgerError::WrongPrevHash {
                expected: self.tip.block_hash,
                got: header.prev_hash,
            });
        }
        self.check_time_and_proposer(header.time_ms, &header.proposer)?;
        if block.txs.len() > BLOCK_TXS_MAX {
            return Err(LedgerError::BlockTooLarge {
                txs: block.txs.len(),
                bytes: 0,
            });
        }
        if header.tx_count as usize != block.txs.len() {
            return Err(LedgerError::HeaderMismatch { field: "tx_count" });
        }
        let mut execution =
            self.execute(block.txs.clone(), header.time_ms, signatures, Mode::Check)?;
        let mut expected = header.clone();
        let (batch, new_tip, upper_nodes) = self.finish(&mut expected, &mut execution)?;
        for (field, matches) in [
            ("tx_count", expected.tx_count == header.tx_count),
            ("tx_root", expected.tx_root == header.tx_root),
            ("log_size", expected.log_size == header.log_size),
            ("log_root", expected.log_root == header.log_root),
            ("state_root", expected.state_root == header.state_root),
            ("totals_root", expected.totals_root == header.totals_root),
        ] {
            if !matches {
                return Err(LedgerError::HeaderMismatch { field });
            }
        }
        // Checking includes every transaction or fails: the executed ones are the block's.
        debug_assert_eq!(execution.included.len(), block.txs.len());
        Ok(PreparedBlock {
            hash: block.hash(),
            block: Block {
                header: header.clone(),
                txs: execution.included,
            },
            rejected: Vec::new(),
            tx_hashes: execution.included_hashes,
            batch,
            new_tip,
            upper_nodes,
        })
    }

    /// Writes a prepared block and its commit certificate (opaque bytes from consensus) in
    /// one synced batch, and advances the tip.
    pub fn commit(
        &mut self,
        prepared: PreparedBlock,
        certificate: &[u8],
    ) -> Result<(), LedgerError> {
        let header = &prepared.block.header;
        // The tip may have moved since the block was prepared (a synced block arrived
        // first); a stale block must not be written over the chain.
        if header.height != self.tip.height + 1 {
            return Err(LedgerError::WrongHeight {
                expected: self.tip.height + 1,
                got: header.height,
            });
        }
        if header.prev_hash != self.tip.block_hash {
            return Err(LedgerError::WrongPrevHash {
                expected: self.tip.block_hash,
                got: header.prev_hash,
            });
        }
        let mut batch = prepared.batch;
        batch.put(
            Column::Certificates,
            header.height.to_be_bytes().to_vec(),
            certificate.to_vec(),
        );
        self.store.write(batch)?;
        self.tip = prepared.new_tip;
        for (level, index, hash) in prepared.upper_nodes {
            self.upper_log.push(level, index, hash);
        }
        self.reload_members()
    }

    /// Checks and commits a block in one step.
    pub fn apply_block(
        &mut self,
        block: &Block,
        certificate: &[u8],
        signatures: SignatureCheck<'_>,
    ) -> Result<BlockHash, LedgerError> {
        let prepared = self.prepare_block(block, signatures)?;
        let hash = prepared.hash;
        self.commit(prepared, certificate)?;
        Ok(hash)
    }

    fn check_time_and_proposer(
        &self,
        time_ms: TimeMs,
        proposer: &PublicKey,
    ) -> Result<(), LedgerError> {
        if time_ms <= self.tip.time_ms {
            return Err(LedgerError::TimeNotIncreasing {
                previous: self.tip.time_ms,
                got: time_ms,
            });
        }
        if self.validator_set()?.member(proposer).is_none() {
            return Err(LedgerError::UnknownProposer(*proposer));
        }
        Ok(())
    }

    /// Runs `txs` in order against an overlay of the store. Building, bad transactions are
    /// rejected and the block limits end the block; checking, any bad transaction, or a
    /// block over the byte limit, fails it.
    fn execute(
        &self,
        txs: Vec<Transaction>,
        time_ms: TimeMs,
        signatures: SignatureCheck<'_>,
        mode: Mode,
    ) -> Result<Execution, LedgerError> {
        let mut execution = Execution::with_capacity(txs.len());

        // Form first (cheap), then all signatures in one batch.
        let formed = self.check_forms(txs, mode, &mut execution.rejected)?;
        let signature_ok = Self::check_signatures(&formed, signatures, mode)?;

        let mut overlay = Overlay::new(&self.store);
        let mut block_bytes = 0usize;
        for (index, (tx, bytes, hash)) in formed.into_iter().enumerate() {
            if mode == Mode::Build
                && (execution.included.len() >= BLOCK_TXS_MAX
                    || block_bytes + bytes.len() > BLOCK_BYTES_MAX)
            {
                // Left for the next block: not rejected, simply not taken.
                break;
            }
            if !signature_ok[index] {
                execution.rejected.push((
                    hash,
                    LedgerError::BadSignature {
                        signer: tx.body.signer,
                    },
                ));
                continue;
            }
            block_bytes += self.execute_one(
                &mut overlay,
                &mut execution,
                (tx, bytes, hash),
                index,
                time_ms,
                mode,
            )?;
        }
        if mode == Mode::Check && block_bytes > BLOCK_BYTES_MAX {
            return Err(LedgerError::BlockTooLarge {
                txs: execution.included.len(),
                bytes: block_bytes,
            });
        }
        // Governance changes due at the next height take effect after the block's own
        // transactions, so the state after this block holds the next height's validators.
        crate::governance::activate_due(&mut overlay, &self.genesis, self.tip.height + 1)?;
        overlay.commit_tx();
        execution.totals_root = Self::update_totals(&mut overlay)?;
        execution.writes = overlay.into_writes();
        Ok(execution)
    }

    /// Folds the block's allocation changes into the totals tree; returns its new root.
    fn update_totals(overlay: &mut Overlay<'_>) -> Result<Hash32, LedgerError> {
        let prefix = keys::allocations();
        let written: Vec<(Vec<u8>, Vec<u8>)> = overlay
            .block_writes_under(&prefix)
            .map(|(key, value)| {
                let value = value
                    .as_ref()
                    .expect("allocation records are never deleted");
                (key.clone(), value.clone())
            })
            .collect();
        let mut changed = Vec::with_capacity(written.len());
        for (key, bytes) in written {
            let before = overlay.get_before_block::<AllocationRecord>(&key)?;
            let after: AllocationRecord =
                borsh::from_slice(&bytes).map_err(|e| corrupt("allocation written", e))?;
            changed.push((key, before, after));
        }
        totals::update(overlay, &changed)
    }

    /// Checks each transaction's form; returns the well-formed ones with their canonical
    /// bytes and hash. A malformed one is rejected when building and fails the block when
    /// checking.
    fn check_forms(
        &self,
        txs: Vec<Transaction>,
        mode: Mode,
        rejected: &mut Vec<(TxHash, LedgerError)>,
    ) -> Result<Vec<Formed>, LedgerError> {
        let mut formed: Vec<Formed> = Vec::with_capacity(txs.len());
        for (index, tx) in txs.into_iter().enumerate() {
            match tx.check_form(self.chain_id()) {
                Ok(bytes) => {
                    let hash = Hash32::digest(&bytes);
                    formed.push((tx, bytes, hash));
                }
                Err(error) => match mode {
                    Mode::Check => {
                        return Err(LedgerError::InvalidTxInBlock {
                            index,
                            source: Box::new(error),
                        })
                    }
                    Mode::Build => rejected.push((tx.hash(), error)),
                },
            }
        }
        Ok(formed)
    }

    /// Verifies in one batch the signatures `signatures` does not let us skip; returns
    /// whether each formed transaction's signature is good. A bad one fails the block when
    /// checking; when building, a failed batch is verified one by one to find the bad ones.
    fn check_signatures(
        formed: &[Formed],
        signatures: SignatureCheck<'_>,
        mode: Mode,
    ) -> Result<Vec<bool>, LedgerError> {
        let needs_check: Vec<usize> = (0..formed.len())
            .filter(|&i| match signatures {
                SignatureCheck::VerifyAll => true,
                SignatureCheck::SkipVerified(verified) => !verified.contains(&formed[i].2),
                SignatureCheck::SkipIf(verified) => !verified(&formed[i].2),
            })
            .collect();
        let mut signature_ok = vec![true; formed.len()];
        if let Err((position, error)) = verify_signatures(needs_check.iter().map(|&i| &formed[i].0))
        {
            match mode {
                Mode::Check => {
                    return Err(LedgerError::InvalidTxInBlock {
                        index: needs_check.get(position).copied().unwrap_or(0),
                        source: Box::new(error),
                    })
                }
                Mode::Build => {
                    for &i in &needs_check {
                        signature_ok[i] = formed[i].0.verify_signature().is_ok();
                    }
                }
            }
        }
        Ok(signature_ok)
    }

    /// Runs one well-formed, correctly signed transaction (number `index`) against
    /// `overlay`. If it keeps the rules, its writes are kept and it is included: returns its
    /// size in bytes. If not, its writes are thrown away and it is rejected when building
    /// (returns 0) or fails the block when checking.
    fn execute_one(
        &self,
        overlay: &mut Overlay<'_>,
        execution: &mut Execution,
        (tx, bytes, hash): Formed,
        index: usize,
        time_ms: TimeMs,
        mode: Mode,
    ) -> Result<usize, LedgerError> {
        let context = TxContext {
            genesis: &self.genesis,
            members: &self.members.1,
            rekeyed: self.rekeyed,
            store: &self.store,
            time_ms,
            tx_hash: hash,
            committed_log_size: self.tip.log.size(),
            height: self.tip.height + 1,
        };
        match rules::execute(overlay, &context, &tx) {
            Ok(touched) => {
                overlay.commit_tx();
                let included_bytes = bytes.len();
                execution.touched.push(touched);
                execution.included_bytes.push(bytes);
                execution.included_hashes.push(hash);
                execution.included.push(tx);
                Ok(included_bytes)
            }
            Err(error) => {
                overlay.discard_tx();
                match mode {
                    Mode::Check => Err(LedgerError::InvalidTxInBlock {
                        index,
                        source: Box::new(error),
                    }),
                    Mode::Build => {
                        execution.rejected.push((hash, error));
                        Ok(0)
                    }
                }
            }
        }
    }

    /// Fills the header's computed fields and assembles the block's write batch, moving
    /// the execution's encodings and state writes into it (the caller keeps only the
    /// transactions, their hashes and refusals).
    fn finish(
        &self,
        header: &mut BlockHeader,
        execution: &mut Execution,
    ) -> Result<(WriteBatch, ChainTip, Vec<CompletedNode>), LedgerError> {
        let mut batch = WriteBatch::new();
        let mut log = self.tip.log.clone();
        let mut log_writes = LogWrites::new(&self.store, log.size());
        // Each leaf hashed once, for the block's tx_root and for the log.
        let included_bytes = std::mem::take(&mut execution.included_bytes);
        let leaves: Vec<merkle::Hash> = included_bytes
            .iter()
            .map(|bytes| merkle::leaf_hash(bytes))
            .collect();
        header.tx_count = included_bytes.len() as u32;
        header.tx_root = tx_root_of_leaves(&leaves);
        for (position, (bytes, leaf)) in included_bytes.into_iter().zip(leaves).enumerate() {
            let log_index = log.size();
            for (level, index, hash) in log.append(leaf) {
                log_writes.push(level, index, hash)?;
            }
            batch.put(Column::LogLeaves, log_index.to_be_bytes().to_vec(), bytes);
            let location = TxLocation {
                height: header.height,
                index: position as u32,
                log_index,
            };
            batch.put(
                Column::TxIndex,
                execution.included_hashes[position].0.to_vec(),
                crate::encode::canonical(&location),
            );
            if let Some(pseudonym) = &execution.touched[position] {
                let mut key = pseudonym.0.to_vec();
                key.extend_from_slice(&log_index.to_be_bytes());
                // The value is the height and the block time, so that a timeline needs
                // neither the transaction index nor the headers.
                let mut value = header.height.to_be_bytes().to_vec();
                value.extend_from_slice(&header.time_ms.to_be_bytes());
                batch.put(Column::BeneficiaryIndex, key, value);
            }
        }
        header.state_root = next_state_root(&self.tip.state_root, header.height, &execution.writes);
        for (key, value) in std::mem::take(&mut execution.writes) {
            match value {
                Some(value) => batch.put(Column::State, key, value),
                None => batch.delete(Column::State, key),
            }
        }
        header.log_size = log.size();
        header.log_root = Hash32(log.root());
        header.totals_root = execution.totals_root;
        batch.put(
            Column::Meta,
            totals_at_key(header.log_size),
            header.totals_root.0.to_vec(),
        );
        let hash = header.hash();
        batch.put(
            Column::Blocks,
            header.height.to_be_bytes().to_vec(),
            crate::encode::canonical(&*header),
        );
        batch.put(
            Column::BlockHashes,
            hash.0.to_vec(),
            header.height.to_be_bytes().to_vec(),
        );
        let new_tip = ChainTip {
            height: header.height,
            block_hash: hash,
            time_ms: header.time_ms,
            state_root: header.state_root,
            log,
        };
        batch.put(Column::Meta, META_TIP.to_vec(), encode_tip(&new_tip));
        let upper_nodes = log_writes.write(&mut batch);
        Ok((batch, new_tip, upper_nodes))
    }

    // --- Queries ----------------------------------------------------------------------------

    /// The header at `height` (1 ..= tip).
    pub fn header(&self, height: Height) -> Result<Option<BlockHeader>, LedgerError> {
        match self.store.get(Column::Blocks, &height.to_be_bytes())? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes)
                .map(Some)
                .map_err(|e| corrupt(&format!("header {height}"), e)),
        }
    }

    /// The block at `height`, reassembled from its header and its log leaves.
    pub fn block(&self, height: Height) -> Result<Option<Block>, LedgerError> {
        let Some(header) = self.header(height)? else {
            return Ok(None);
        };
        let first = header
            .log_size
            .checked_sub(u64::from(header.tx_count))
            .ok_or_else(|| corrupt("header", "tx_count exceeds log_size"))?;
        let mut txs = Vec::with_capacity(header.tx_count as usize);
        for index in first..header.log_size {
            let bytes = self
                .log_leaf(index)?
                .ok_or_else(|| corrupt("log", format!("leaf {index} is missing")))?;
            txs.push(
                Transaction::from_bytes(&bytes)
                    .map_err(|e| corrupt(&format!("leaf {index}"), e))?,
            );
        }
        Ok(Some(Block { header, txs }))
    }

    /// The height of the block with hash `hash`.
    pub fn height_of(&self, hash: &BlockHash) -> Result<Option<Height>, LedgerError> {
        match self.store.get(Column::BlockHashes, hash.as_bytes())? {
            None => Ok(None),
            Some(bytes) => {
                Ok(Some(u64::from_be_bytes(bytes.try_into().map_err(
                    |_| corrupt("block hash index", "not 8 bytes"),
                )?)))
            }
        }
    }

    /// The commit certificate stored with the block at `height`.
    pub fn certificate(&self, height: Height) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self
            .store
            .get(Column::Certificates, &height.to_be_bytes())?)
    }

    /// The signed checkpoint kept for log size `size` (a C2SP signed note), if any.
    pub fn checkpoint_note(&self, size: u64) -> Result<Option<String>, LedgerError> {
        self.store
            .get(Column::Checkpoints, &size.to_be_bytes())?
            .map(|bytes| String::from_utf8(bytes).map_err(|e| corrupt("checkpoint", e)))
            .transpose()
    }

    /// The largest log size with a kept signed checkpoint.
    pub fn latest_checkpoint_size(&self) -> Result<Option<u64>, LedgerError> {
        match self.store.get(Column::Meta, META_LATEST_CHECKPOINT)? {
            None => Ok(None),
            Some(bytes) => {
                Ok(Some(u64::from_be_bytes(bytes.try_into().map_err(
                    |_| corrupt("latest checkpoint", "not 8 bytes"),
                )?)))
            }
        }
    }

    /// Keeps `note` as the signed checkpoint of log size `size` (replacing a note with fewer
    /// signatures), and as the latest when `latest`. The caller has verified it; the ledger
    /// only checks that the size is committed.
    pub fn keep_checkpoint_note(
        &mut self,
        size: u64,
        note: &str,
        latest: bool,
    ) -> Result<(), LedgerError> {
        self.require_log_size(size)?;
        let mut batch = WriteBatch::new();
        batch.put(
            Column::Checkpoints,
            size.to_be_bytes().to_vec(),
            note.as_bytes().to_vec(),
        );
        if latest {
            batch.put(
                Column::Meta,
                META_LATEST_CHECKPOINT.to_vec(),
                size.to_be_bytes().to_vec(),
            );
        }
        self.store.write(batch)?;
        Ok(())
    }

    /// Where the transaction `hash` was committed.
    pub fn tx_location(&self, hash: &TxHash) -> Result<Option<TxLocation>, LedgerError> {
        match self.store.get(Column::TxIndex, hash.as_bytes())? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes)
                .map(Some)
                .map_err(|e| corrupt("tx index", e)),
        }
    }

    /// The leaf bytes (canonical transaction) at `index` in the log.
    pub fn log_leaf(&self, index: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.store.get(Column::LogLeaves, &index.to_be_bytes())?)
    }

    fn require_log_size(&self, size: u64) -> Result<(), LedgerError> {
        if size > self.tip.log.size() {
            return Err(LedgerError::NotFound(format!(
                "log size {size} is beyond the current size {}",
                self.tip.log.size()
            )));
        }
        Ok(())
    }

    /// The checkpoint of the log at any committed size: origin, size, log root and the
    /// totals root, as validators sign it.
    pub fn checkpoint_at(&self, size: u64) -> Result<crate::note::Checkpoint, LedgerError> {
        Ok(crate::note::Checkpoint {
            origin: self.genesis.genesis.log_origin.clone(),
            size,
            root: self.log_root_at(size)?.0,
            totals: Some(self.totals_root_at(size)?.0),
        })
    }

    /// The totals root when the log had `size` entries (any committed size). Totals change
    /// only with transactions, so one log size has one totals root.
    pub fn totals_root_at(&self, size: u64) -> Result<Hash32, LedgerError> {
        self.require_log_size(size)?;
        if size == 0 {
            return Ok(totals::empty_root());
        }
        let bytes = self
            .store
            .get(Column::Meta, &totals_at_key(size))?
            .ok_or_else(|| LedgerError::Corrupt(format!("no totals root at log size {size}")))?;
        Ok(Hash32(bytes.try_into().map_err(|_| {
            LedgerError::Corrupt("a totals root is not 32 bytes".into())
        })?))
    }

    /// A node of the totals tree as committed now (`None` when nothing was ever allocated
    /// under it).
    pub fn totals_node(
        &self,
        path: &totals::NodePath,
    ) -> Result<Option<totals::TotalsNode>, LedgerError> {
        self.state_get(&path.key())
    }

    /// The stored log, its upper levels read from memory.
    fn log_source(&self) -> CachedLog<'_> {
        CachedLog {
            store: StoreLog::new(&self.store),
            upper: &self.upper_log,
            edge: None,
        }
    }

    /// The stored log with its right edge at `size` (a committed size) remembered.
    fn log_source_at(&self, size: u64) -> Result<CachedLog<'_>, LedgerError> {
        let mut source = self.log_source();
        source.edge = Some(
            self.right_edges
                .at(&source, size)
                .map_err(|e| corrupt("log", e))?,
        );
        Ok(source)
    }

    /// The log root at any committed size.
    pub fn log_root_at(&self, size: u64) -> Result<Hash32, LedgerError> {
        self.require_log_size(size)?;
        merkle::root_at(&self.log_source_at(size)?, size)
            .map(Hash32)
            .map_err(|e| corrupt("log", e))
    }

    /// An RFC 9162 inclusion proof of leaf `index` in the log of size `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash32>, LedgerError> {
        self.require_log_size(size)?;
        if index >= size {
            return Err(LedgerError::NotFound(format!(
                "leaf index {index} is not below size {size}"
            )));
        }
        let path = merkle::inclusion_proof(&self.log_source_at(size)?, index, size)
            .map_err(|e| corrupt("log", e))?;
        Ok(path.into_iter().map(Hash32).collect())
    }

    /// An RFC 9162 consistency proof between log sizes `first` and `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash32>, LedgerError> {
        self.require_log_size(second)?;
        if first == 0 || first > second {
            return Err(LedgerError::NotFound(format!(
                "no consistency proof from size {first} to size {second}: need 0 < first <= second"
            )));
        }
        let path = merkle::consistency_proof(&self.log_source_at(second)?, first, second)
            .map_err(|e| corrupt("log", e))?;
        Ok(path.into_iter().map(Hash32).collect())
    }

    /// The hashes of a C2SP tlog-tiles hash tile, concatenated: tile `index` at tile level
    /// `level`, `width` hashes wide (256 for a full tile). Hash `i` is the root of the
    /// complete subtree of 256^level leaves at position `index * 256 + i`; every one must be
    /// complete within the current log.
    pub fn log_tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<u8>, LedgerError> {
        let merkle_level = self.require_tile(level, index, width)?;
        let source = self.log_source();
        let mut bytes = Vec::with_capacity(usize::from(width) * 32);
        for i in 0..u64::from(width) {
            let hash = merkle::SubtreeSource::subtree(
                &source,
                merkle_level as u8,
                index * TILE_WIDTH as u64 + i,
            )
            .map_err(|e| corrupt("log", e))?;
            bytes.extend_from_slice(&hash);
        }
        Ok(bytes)
    }

    /// Checks that tile `index` at tile level `level`, `width` wide, lies within the log;
    /// returns its Merkle level.
    fn require_tile(&self, level: u8, index: u64, width: u16) -> Result<u32, LedgerError> {
        let merkle_level = u32::from(level) * TILE_HEIGHT;
        if width == 0 || usize::from(width) > TILE_WIDTH || merkle_level >= 64 {
            return Err(LedgerError::NotFound(format!(
                "no tile at level {level} of width {width}"
            )));
        }
        let end = index
            .checked_mul(TILE_WIDTH as u64)
            .and_then(|first| first.checked_add(u64::from(width)))
            .and_then(|end| end.checked_mul(1u64 << merkle_level));
        match end {
            Some(end) if end <= self.tip.log.size() => Ok(merkle_level),
            _ => Err(LedgerError::NotFound(format!(
                "tile {level}/{index} of width {width} is beyond the log's {} leaves",
                self.tip.log.size()
            ))),
        }
    }

    /// A C2SP tlog-tiles entry bundle: leaves `index * 256` onwards, `width` of them, each
    /// as a big-endian 16-bit length and its bytes.
    pub fn log_entry_bundle(&self, index: u64, width: u16) -> Result<Vec<u8>, LedgerError> {
        self.require_tile(0, index, width)?;
        let mut bytes = Vec::new();
        for i in 0..u64::from(width) {
            let position = index * TILE_WIDTH as u64 + i;
            let leaf = self
                .log_leaf(position)?
                .ok_or_else(|| corrupt("log", format!("leaf {position} is missing")))?;
            let length = u16::try_from(leaf.len())
                .map_err(|_| corrupt("log", format!("leaf {position} is over 64 KiB")))?;
            bytes.extend_from_slice(&length.to_be_bytes());
            bytes.extend_from_slice(&leaf);
        }
        Ok(bytes)
    }

    /// The transactions concerning `beneficiary`, oldest first, at most `limit`.
    pub fn beneficiary_steps(
        &self,
        beneficiary: &Pseudonym,
        limit: usize,
    ) -> Result<Vec<BeneficiaryStep>, LedgerError> {
        let prefix = beneficiary.0.to_vec();
        let entries = self
            .store
            .scan(Column::BeneficiaryIndex, &prefix, &prefix, limit)?;
        entries
            .into_iter()
            .map(|(key, value)| {
                let word = |bytes: &[u8], at: usize| -> Option<u64> {
                    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
                };
                let bad = |what: &str| corrupt("beneficiary index", what);
                if key.len() != 40 || value.len() != 16 {
                    return Err(bad("an entry of the wrong length"));
                }
                Ok(BeneficiaryStep {
                    log_index: word(&key, 32).ok_or_else(|| bad("bad key"))?,
                    height: word(&value, 0).ok_or_else(|| bad("bad height"))?,
                    time_ms: word(&value, 8).ok_or_else(|| bad("bad time"))?,
                })
            })
            .collect()
    }

    /// The log indexes of the transactions concerning `beneficiary`, oldest first, at most
    /// `limit`.
    pub fn beneficiary_log_indexes(
        &self,
        beneficiary: &Pseudonym,
        limit: usize,
    ) -> Result<Vec<u64>, LedgerError> {
        Ok(self
            .beneficiary_steps(beneficiary, limit)?
            .into_iter()
            .map(|step| step.log_index)
            .collect())
    }
}

/// Refuses a store written in another layout (a store without the marker is format 1).
fn check_store_format(store: &dyn Store) -> Result<(), LedgerError> {
    let found = match store.get(Column::Meta, META_STORE_FORMAT)? {
        None => 1,
        Some(bytes) => u32::from_be_bytes(
            bytes
                .try_into()
                .map_err(|_| corrupt("store format", "not 4 bytes"))?,
        ),
    };
    if found != STORE_FORMAT {
        return Err(LedgerError::StoreFormat {
            found,
            expected: STORE_FORMAT,
        });
    }
    Ok(())
}

fn encode_tip(tip: &ChainTip) -> Vec<u8> {
    let stored = StoredTip {
        height: tip.height,
        block_hash: tip.block_hash,
        time_ms: tip.time_ms,
        state_root: tip.state_root,
        log_size: tip.log.size(),
        log_hashes: tip.log.hashes().to_vec(),
    };
    crate::encode::canonical(&stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state root as the module documentation defines it, fed to BLAKE3 piece by piece.
    fn state_root_by_definition(previous: &Hash32, height: Height, writes: &Writes) -> Hash32 {
        let mut hasher = blake3::Hasher::new();
        hasher.update(STATE_DOMAIN);
        hasher.update(previous.as_bytes());
        hasher.update(&height.to_be_bytes());
        for (key, value) in writes {
            hasher.update(&(key.len() as u64).to_be_bytes());
            hasher.update(key);
            match value {
                Some(value) => {
                    hasher.update(&[1]);
                    hasher.update(&(value.len() as u64).to_be_bytes());
                    hasher.update(value);
                }
                None => {
                    hasher.update(&[0]);
                }
            }
        }
        Hash32(*hasher.finalize().as_bytes())
    }

    /// Gathering the input changes nothing: writes whose bytes cross many feed boundaries,
    /// deletions, and values as large as the feed and larger.
    #[test]
    fn the_state_root_gathered_is_the_state_root_by_definition() {
        let previous = Hash32([9; 32]);
        let mut writes = Writes::new();
        for i in 0u32..3_000 {
            let key = Hash32::digest(&i.to_be_bytes()).as_bytes().to_vec();
            let value = (i % 7 != 0).then(|| vec![i as u8; (i as usize * 37) % 300]);
            writes.insert(key, value);
        }
        for (name, size) in [
            ("exactly", HASH_FEED_BYTES),
            ("over", HASH_FEED_BYTES + 1),
            ("under", HASH_FEED_BYTES - 1),
        ] {
            writes.insert(name.as_bytes().to_vec(), Some(vec![size as u8; size]));
        }
        for height in [0, 1, 77] {
            assert_eq!(
                next_state_root(&previous, height, &writes),
                state_root_by_definition(&previous, height, &writes)
            );
        }
        let empty = Writes::new();
        assert_eq!(
            next_state_root(&previous, 5, &empty),
            state_root_by_definition(&previous, 5, &empty)
        );
    }
}
