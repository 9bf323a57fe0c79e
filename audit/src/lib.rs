//! # bansos-audit: trust nothing, re-verify everything
//!
//! [`verify_chain`] takes a chain as a node stored it and checks it from genesis with
//! nothing but the genesis document:
//!
//! 1. every block's header hash chain (previous hash, height, chain id);
//! 2. every commit certificate, strictly: valid signatures only, signers in the validator
//!    set, more than two thirds of the voting power, bound to chain, genesis, height, round
//!    and block hash (`proto::StoredCertificate::verify`);
//! 3. every transaction — signature, nonce, role, region, every lifecycle rule — by replaying
//!    the blocks through a fresh ledger in memory, which recomputes the tx root, the log
//!    size and root and the state root and compares them with each header (signatures are
//!    checked ahead in batches on every core; one that fails there is checked again alone
//!    by the replay, which decides);
//! 4. the stored log: every stored subtree hash against the replayed log, and the tip;
//!    the totals tree rebuilt from scratch from every allocation record, against the last
//!    header's `totals_root` (the replay compared each header with the incremental tree);
//! 5. every kept checkpoint: the validators' note signatures (more than two thirds of the
//!    voting power), the witnesses' cosignatures, and its log and totals roots against the
//!    replay at that size.
//!
//! The first failure stops the run and names the height (or log size) and what failed.
//! The store is only read; `bansos audit verify --home DIR` opens a node's RocksDB
//! read-only, so a running node can be audited in place.
//!
//! [`verify_served`] runs checks 1 to 3 over blocks and certificates from any
//! [`ChainSource`] (`bansos audit verify --node URL` downloads them from a node as a
//! consortium member), then checks the node's latest signed checkpoint against the replay.

use std::collections::HashSet;
use std::time::Instant;

use ledger::chain::SignatureCheck;
use ledger::genesis::{Genesis, GenesisIndex};
use ledger::note::{self, Checkpoint, SignedNote};
use ledger::store::{Column, Store};
use ledger::types::TxHash;
use ledger::{Block, Ledger, MemoryStore, Transaction};
use proto::certificate::{StoredCertificate, ValidatorSet};
use proto::signing::ChainBinding;
use serde::Serialize;

/// Entries read per scan when comparing stored columns.
const SCAN_BATCH: usize = 4096;
/// Transactions whose signatures are checked together, across all cores, before their
/// blocks are replayed.
const VERIFY_WINDOW_TXS: usize = 16_384;

/// The first check that failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}{check}: {detail}", .height.map(|h| format!("height {h}: ")).unwrap_or_default())]
pub struct Failure {
    /// The height at fault, when one block is.
    pub height: Option<u64>,
    /// Which check failed (`block`, `certificate`, `replay`, `log`, `tip`, `checkpoint`,
    /// `genesis`, `store`).
    pub check: &'static str,
    pub detail: String,
}

impl Failure {
    fn at(height: u64, check: &'static str, detail: impl ToString) -> Failure {
        Failure {
            height: Some(height),
            check,
            detail: detail.to_string(),
        }
    }

    fn general(check: &'static str, detail: impl ToString) -> Failure {
        Failure {
            height: None,
            check,
            detail: detail.to_string(),
        }
    }
}

/// What a passing run checked.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub chain_id: String,
    pub heights: u64,
    pub transactions: u64,
    pub certificate_signatures: u64,
    pub log_size: u64,
    /// The log root at the tip, hex.
    pub log_root: String,
    pub log_nodes: u64,
    pub checkpoints: u64,
    pub seconds: f64,
    /// The version of the validator set that signs the verified tip's checkpoints (0:
    /// genesis's; governance changes it).
    pub validator_set_version: u64,
    /// The C2SP tlog-policy of that set, derived from the verified chain: what citizens'
    /// proofs are checked with once a governance change has replaced the genesis set.
    #[serde(skip)]
    pub tlog_policy: String,
}

/// Where blocks to verify come from: a node's store, or a node's API.
pub trait ChainSource {
    /// The height to verify up to.
    fn tip_height(&mut self) -> Result<u64, Failure>;
    /// The block at `height` and its commit certificate (stored bytes). A block that is
    /// not there, or cannot be read, is a failure at that height.
    fn block(&mut self, height: u64) -> Result<(Block, Vec<u8>), Failure>;
}

/// A node's ledger as a [`ChainSource`].
struct Stored<'a, S: Store>(&'a Ledger<S>);

impl<S: Store> ChainSource for Stored<'_, S> {
    fn tip_height(&mut self) -> Result<u64, Failure> {
        Ok(self.0.tip().height)
    }

    fn block(&mut self, height: u64) -> Result<(Block, Vec<u8>), Failure> {
        let block = read_block(self.0, height)?;
        let certificate = self
            .0
            .certificate(height)
            .map_err(|e| Failure::at(height, "certificate", e))?
            .ok_or_else(|| Failure::at(height, "certificate", "missing"))?;
        Ok((block, certificate))
    }
}

/// The chain replayed from genesis, and what it took.
struct Replayed {
    ledger: Ledger<MemoryStore>,
    index: GenesisIndex,
    heights: u64,
    signatures: u64,
}

/// Checks 1 to 3 over every block `source` has: hash chain, certificates, replay.
fn replay_chain(
    source: &mut impl ChainSource,
    genesis: Genesis,
    mut progress: impl FnMut(u64, u64),
) -> Result<Replayed, Failure> {
    let index = genesis
        .clone()
        .validate()
        .map_err(|e| Failure::general("genesis", e))?;
    let mut set = ValidatorSet::from_genesis(&index.validators)
        .ok_or_else(|| Failure::general("genesis", "no usable validator set"))?;
    let mut set_version = 0;
    let chain = ChainBinding::of(&genesis);
    let mut replay =
        Ledger::open(MemoryStore::new(), genesis).map_err(|e| Failure::general("genesis", e))?;
    let tip = source.tip_height()?;
    let mut signatures = 0u64;
    let mut next = 1;
    while next <= tip {
        let (window, unreadable) = read_window(source, next, tip);
        let blocks: Vec<&Block> = window.iter().map(|(block, _)| block).collect();
        let verified = verified_signatures(&blocks);
        for (block, certificate) in window {
            let height = block.header.height;
            // A governance change replaces the set at its activation height: the replay
            // holds the set of the next height, from the blocks before it.
            follow_set(&replay, height, &mut set, &mut set_version)?;
            signatures += verify_block(&mut replay, &chain, &set, block, certificate, &verified)?;
            progress(height, tip);
        }
        // The blocks before an unreadable one were checked first: the first failure wins.
        if let Some(failure) = unreadable {
            return Err(failure);
        }
        next = replay.tip().height + 1;
    }
    Ok(Replayed {
        ledger: replay,
        index,
        heights: tip,
        signatures,
    })
}

impl Replayed {
    fn summary(
        &self,
        log_nodes: u64,
        checkpoints: u64,
        started: Instant,
    ) -> Result<Summary, Failure> {
        let tip = self.ledger.tip();
        // The set that signs checkpoints of the tip's log size (genesis's on an empty log).
        let signers = match tip.log.size() {
            0 => self.ledger.validator_set_at(0),
            size => self.ledger.checkpoint_set(size),
        }
        .map_err(|e| Failure::at(tip.height, "validator set", e))?;
        let keys = signers
            .checkpoint_keys()
            .map_err(|e| Failure::at(tip.height, "validator set", e))?;
        let policy = ledger::policy::Policy::for_validators(&self.index, &keys);
        Ok(Summary {
            chain_id: self.index.genesis.chain_id.clone(),
            heights: self.heights,
            transactions: tip.log.size(),
            certificate_signatures: self.signatures,
            log_size: tip.log.size(),
            log_root: hex::encode(tip.log.root()),
            log_nodes,
            checkpoints,
            seconds: started.elapsed().as_secs_f64(),
            validator_set_version: signers.version,
            tlog_policy: policy.to_text(),
        })
    }
}

/// Re-verifies the chain held by `source` (a node's ledger, opened read-only) against
/// `genesis`. `progress(height, tip)` is called after each block.
pub fn verify_chain<S: Store>(
    source: &Ledger<S>,
    genesis: Genesis,
    progress: impl FnMut(u64, u64),
) -> Result<Summary, Failure> {
    let started = Instant::now();
    let hash = genesis
        .clone()
        .validate()
        .map_err(|e| Failure::general("genesis", e))?
        .hash;
    if source.genesis().hash != hash {
        return Err(Failure::general(
            "genesis",
            "the store was made for another genesis",
        ));
    }
    let replayed = replay_chain(&mut Stored(source), genesis, progress)?;
    verify_tip(source, &replayed.ledger)?;
    verify_totals(&replayed.ledger)?;
    let log_nodes = verify_log_nodes(source, &replayed.ledger)?;
    let checkpoints = verify_checkpoints(source, &replayed.ledger, &replayed.index)?;
    replayed.summary(log_nodes, checkpoints, started)
}

/// Re-verifies the chain `source` serves against `genesis` (hash chain, certificates,
/// every transaction by replay) and, when given, a signed checkpoint it served: signed by
/// a quorum of the validators in genesis, of a size the served chain reaches, naming the
/// replayed root at that size.
pub fn verify_served(
    source: &mut impl ChainSource,
    genesis: Genesis,
    checkpoint: Option<&str>,
    progress: impl FnMut(u64, u64),
) -> Result<Summary, Failure> {
    let started = Instant::now();
    let replayed = replay_chain(source, genesis, progress)?;
    verify_totals(&replayed.ledger)?;
    if let Some(text) = checkpoint {
        check_note(text, &replayed.ledger, &replayed.index)?;
    }
    replayed.summary(0, u64::from(checkpoint.is_some()), started)
}

/// Rebuilds the totals tree from every allocation record the replay holds, from scratch,
/// and compares it with the root the last header commits to (each header's root was
/// already compared with the incremental tree during the replay).
fn verify_totals(replay: &Ledger<MemoryStore>) -> Result<(), Failure> {
    let height = replay.tip().height;
    let committed = match replay.header(height) {
        Ok(Some(header)) => header.totals_root,
        _ if height == 0 => ledger::totals::empty_root(),
        Ok(None) => return Err(Failure::at(height, "totals", "no header at the tip")),
        Err(e) => return Err(Failure::at(height, "totals", e)),
    };
    let recomputed = ledger::totals::recompute_root(replay.store())
        .map_err(|e| Failure::at(height, "totals", e))?;
    if recomputed != committed {
        return Err(Failure::at(
            height,
            "totals",
            "the totals tree rebuilt from the allocation records does not match the header",
        ));
    }
    Ok(())
}

/// Reads the blocks from `first` on, until they hold [`VERIFY_WINDOW_TXS`] transactions or
/// the tip is reached; a block that cannot be read ends the window with its failure.
fn read_window(
    source: &mut impl ChainSource,
    first: u64,
    tip: u64,
) -> (Vec<(Block, Vec<u8>)>, Option<Failure>) {
    let mut window = Vec::new();
    let mut txs = 0;
    for height in first..=tip {
        let (block, certificate) = match source.block(height) {
            Ok(read) => read,
            Err(failure) => return (window, Some(failure)),
        };
        if block.header.height != height {
            let detail = format!(
                "the header served here is for height {}",
                block.header.height
            );
            return (window, Some(Failure::at(height, "block", detail)));
        }
        txs += block.txs.len();
        window.push((block, certificate));
        if txs >= VERIFY_WINDOW_TXS {
            break;
        }
    }
    (window, None)
}

/// The block stored at `height`, which must say it is that height's.
fn read_block<S: Store>(source: &Ledger<S>, height: u64) -> Result<Block, Failure> {
    let block = source
        .block(height)
        .map_err(|e| Failure::at(height, "block", e))?
        .ok_or_else(|| Failure::at(height, "block", "missing"))?;
    if block.header.height != height {
        return Err(Failure::at(
            height,
            "block",
            format!(
                "the header stored here is for height {}",
                block.header.height
            ),
        ));
    }
    Ok(block)
}

/// The hashes of the transactions in `blocks` whose signatures are valid, checked in
/// batches on every core. Any other transaction is checked again, alone, by the replay,
/// which then fails at its block: the verdict is the replay's, this only saves time.
fn verified_signatures(blocks: &[&Block]) -> HashSet<TxHash> {
    let txs: Vec<&Transaction> = blocks.iter().flat_map(|b| &b.txs).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = txs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = txs
            .chunks(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    if ledger::tx::verify_signatures(chunk.iter().copied()).is_ok() {
                        chunk.iter().map(|tx| tx.hash()).collect::<Vec<_>>()
                    } else {
                        chunk
                            .iter()
                            .filter(|tx| tx.verify_signature().is_ok())
                            .map(|tx| tx.hash())
                            .collect()
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a signature worker panicked"))
            .collect()
    })
}

/// One height: its certificate and the replay of its block. Returns the number of
/// certificate signatures checked.
fn verify_block(
    replay: &mut Ledger<MemoryStore>,
    chain: &ChainBinding,
    set: &ValidatorSet,
    block: Block,
    certificate: Vec<u8>,
    verified: &HashSet<TxHash>,
) -> Result<u64, Failure> {
    let height = block.header.height;
    let hash = block.header.hash();
    let stored = StoredCertificate::from_bytes(&certificate)
        .map_err(|e| Failure::at(height, "certificate", e))?;
    stored
        .verify(chain, set, height, &hash)
        .map_err(|e| Failure::at(height, "certificate", e))?;
    let prepared = replay
        .prepare_block(&block, SignatureCheck::SkipVerified(verified))
        .map_err(|e| Failure::at(height, "replay", e))?;
    replay
        .commit(prepared, &certificate)
        .map_err(|e| Failure::at(height, "replay", e))?;
    Ok(stored.signatures.len() as u64)
}

/// Replaces `set` with the replay's set for `height` when its version moved.
fn follow_set(
    replay: &Ledger<MemoryStore>,
    height: u64,
    set: &mut ValidatorSet,
    version: &mut u64,
) -> Result<(), Failure> {
    let record = replay
        .validator_set()
        .map_err(|e| Failure::at(height, "validator set", e))?;
    if record.version != *version {
        *set = ValidatorSet::from_record(&record).ok_or_else(|| {
            Failure::at(
                height,
                "validator set",
                format!("set version {} is not usable", record.version),
            )
        })?;
        *version = record.version;
    }
    Ok(())
}

/// The stored tip must be the replayed one.
fn verify_tip<S: Store>(source: &Ledger<S>, replay: &Ledger<MemoryStore>) -> Result<(), Failure> {
    let (stored, replayed) = (source.tip(), replay.tip());
    if stored.block_hash != replayed.block_hash || stored.log.root() != replayed.log.root() {
        return Err(Failure::at(
            stored.height,
            "tip",
            "the stored tip is not the replayed chain's",
        ));
    }
    Ok(())
}

/// Every stored log subtree hash must be the replayed one, and none may be missing or extra.
/// Returns how many subtree hashes were compared.
fn verify_log_nodes<S: Store>(
    source: &Ledger<S>,
    replay: &Ledger<MemoryStore>,
) -> Result<u64, Failure> {
    let mut start: Vec<u8> = Vec::new();
    let mut count = 0u64;
    loop {
        let stored = scan(source.store(), Column::LogNodes, &start)?;
        let replayed = scan(replay.store(), Column::LogNodes, &start)?;
        for (i, (key, value)) in stored.iter().enumerate() {
            match replayed.get(i) {
                Some(entry) if entry == &stored[i] => {}
                Some((k, v)) if k == key => {
                    return Err(log_node_failure(replay, key, Some(value), Some(v)))
                }
                _ => return Err(log_node_failure(replay, key, Some(value), None)),
            }
            count += ledger::log_nodes_of_entry(key, value).map_or(0, |n| n.len() as u64);
        }
        if replayed.len() != stored.len() {
            let (key, value) = &replayed[stored.len().min(replayed.len())];
            return Err(log_node_failure(replay, key, None, Some(value)));
        }
        match stored.last() {
            Some((key, _)) if stored.len() == SCAN_BATCH => {
                start = key.clone();
                start.push(0);
            }
            _ => return Ok(count),
        }
    }
}

fn scan<S: Store>(
    store: &S,
    column: Column,
    start: &[u8],
) -> Result<Vec<ledger::store::KeyValue>, Failure> {
    store
        .scan(column, &[], start, SCAN_BATCH)
        .map_err(|e| Failure::general("store", e))
}

/// Names the block that completed the first subtree where a stored log entry (`stored`)
/// and the replayed one under the same key differ, or the first subtree of an entry only one
/// of them has.
fn log_node_failure(
    replay: &Ledger<MemoryStore>,
    key: &[u8],
    stored: Option<&[u8]>,
    replayed: Option<&[u8]>,
) -> Failure {
    let nodes = |value: Option<&[u8]>| value.and_then(|v| ledger::log_nodes_of_entry(key, v));
    let (stored, replayed) = (nodes(stored), nodes(replayed));
    let first_difference = match (&stored, &replayed) {
        (Some(s), Some(r)) => r
            .iter()
            .enumerate()
            .find(|(i, node)| s.get(*i) != Some(*node))
            .map(|(_, node)| *node)
            .or_else(|| s.get(r.len()).copied()),
        (None, Some(nodes)) | (Some(nodes), None) => nodes.first().copied(),
        (None, None) => None,
    };
    let Some((level, index, _)) = first_difference else {
        return Failure::general("log", "a stored log entry has a malformed key or value");
    };
    let last_leaf = (index + 1)
        .checked_shl(u32::from(level))
        .map_or(u64::MAX, |end| end - 1);
    let detail = format!("the stored log node at level {level}, index {index} is not the replayed one (or is missing or extra)");
    match height_of_leaf(replay, last_leaf) {
        Some(height) => Failure::at(height, "log", detail),
        None => Failure::general("log", detail),
    }
}

/// The height whose block appended log leaf `leaf`, by binary search over the headers.
fn height_of_leaf(replay: &Ledger<MemoryStore>, leaf: u64) -> Option<u64> {
    let (mut low, mut high) = (1u64, replay.tip().height);
    if high == 0 || leaf >= replay.tip().log.size() {
        return None;
    }
    while low < high {
        let middle = low + (high - low) / 2;
        let size = replay.header(middle).ok()??.log_size;
        if size > leaf {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Some(low)
}

/// Every kept checkpoint must carry a quorum of valid validator signatures and name the
/// replayed root at its size.
fn verify_checkpoints<S: Store>(
    source: &Ledger<S>,
    replay: &Ledger<MemoryStore>,
    index: &GenesisIndex,
) -> Result<u64, Failure> {
    let mut start: Vec<u8> = Vec::new();
    let mut count = 0u64;
    loop {
        let entries = scan(source.store(), Column::Checkpoints, &start)?;
        for (key, value) in &entries {
            let size = u64::from_be_bytes(
                key.as_slice()
                    .try_into()
                    .map_err(|_| Failure::general("checkpoint", "a malformed key"))?,
            );
            let text = std::str::from_utf8(value)
                .map_err(|e| Failure::general("checkpoint", format!("log size {size}: {e}")))?;
            // A node writes a note only once it carries a quorum.
            if check_note(text, replay, index)? != size {
                return Err(Failure::general(
                    "checkpoint",
                    format!("log size {size}: the note kept there is for another size"),
                ));
            }
            count += 1;
        }
        match entries.last() {
            Some((key, _)) if entries.len() == SCAN_BATCH => {
                start = key.clone();
                start.push(0);
            }
            _ => return Ok(count),
        }
    }
}

/// A signed checkpoint must carry a quorum of valid signatures by the validators that
/// decided the block reaching its size (genesis's set, or the one a governance change put
/// in place) and name the replayed root at that size, which the replay must reach.
/// Returns the size.
fn check_note(
    text: &str,
    replay: &Ledger<MemoryStore>,
    index: &GenesisIndex,
) -> Result<u64, Failure> {
    // Witnesses' cosignatures are checked too: one by a genesis witness key that does not
    // verify fails the note.
    let size = SignedNote::parse(text)
        .and_then(|note| Checkpoint::parse(&note.text))
        .map_err(|e| Failure::general("checkpoint", e))?
        .size;
    if size == 0 || size > replay.tip().log.size() {
        return Err(Failure::general(
            "checkpoint",
            format!("log size {size}: the replayed log does not reach it"),
        ));
    }
    let signers = replay
        .checkpoint_set(size)
        .and_then(|set| set.checkpoint_keys())
        .map_err(|e| Failure::general("checkpoint", format!("log size {size}: {e}")))?;
    let verified = note::verify_checkpoint(
        text,
        &index.genesis.log_origin,
        &signers,
        &index.witness_keys(),
    )
    .map_err(|e| Failure::general("checkpoint", e))?;
    let size = verified.checkpoint.size;
    let replayed = replay
        .checkpoint_at(size)
        .map_err(|e| Failure::general("checkpoint", format!("log size {size}: {e}")))?;
    if verified.checkpoint.root != replayed.root {
        return Err(Failure::general(
            "checkpoint",
            format!("log size {size}: signed, but not the replayed log's root"),
        ));
    }
    if verified.checkpoint.totals != replayed.totals {
        return Err(Failure::general(
            "checkpoint",
            format!("log size {size}: signed, but not the replayed totals root"),
        ));
    }
    Ok(size)
}

/// The genesis a node's home uses: the `genesis` path in `HOME/config.toml`, relative to
/// the home or absolute.
pub fn home_genesis(home: &std::path::Path) -> Result<Genesis, Failure> {
    let config_path = home.join("config.toml");
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| Failure::general("genesis", format!("{}: {e}", config_path.display())))?;
    let config: toml::Value = toml::from_str(&text)
        .map_err(|e| Failure::general("genesis", format!("{}: {e}", config_path.display())))?;
    let path = config
        .get("genesis")
        .and_then(|g| g.as_str())
        .ok_or_else(|| Failure::general("genesis", "config.toml names no genesis"))?;
    let path = home.join(path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::general("genesis", format!("{}: {e}", path.display())))?;
    Genesis::from_json(&text).map_err(|e| Failure::general("genesis", e))
}

/// Opens a node home's ledger store read-only: `HOME/data/ledger`.
pub fn open_home(
    home: &std::path::Path,
    genesis: Genesis,
) -> Result<Ledger<ledger::RocksStore>, Failure> {
    let path = home.join("data").join("ledger");
    if !path.exists() {
        return Err(Failure::general(
            "store",
            format!("{} does not exist", path.display()),
        ));
    }
    let store =
        ledger::RocksStore::open_read_only(&path).map_err(|e| Failure::general("store", e))?;
    Ledger::open(store, genesis).map_err(|e| Failure::general("store", e))
}
