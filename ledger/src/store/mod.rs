//! Storage behind a narrow trait: point reads, ordered prefix scans and one atomic write
//! per block.
//!
//! The ledger never holds a write open across calls: it reads what a block touches, computes
//! everything in memory, then hands the store one [`WriteBatch`] that becomes durable all at
//! once or not at all. That is the only contract a store must keep, and the conformance suite
//! in `conformance.rs` checks it for every implementation.

mod memory;
#[cfg(feature = "rocksdb")]
mod rocks;
#[cfg(feature = "rocksdb")]
mod state_cache;

#[cfg(test)]
mod conformance;

pub use memory::MemoryStore;
#[cfg(feature = "rocksdb")]
pub use rocks::{
    RocksStore, StoreMemory, BLOCK_CACHE_BYTES, MEMTABLES_BYTES_MAX, MEMTABLES_BYTES_MIN,
};
#[cfg(feature = "rocksdb")]
pub use state_cache::STATE_CACHE_BYTES;

/// The key spaces of the store. Only [`Column::State`] is covered by the state root; the
/// others hold the chain itself (blocks, log) or indexes derived from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    /// Chain metadata: the genesis hash and the tip.
    Meta,
    /// The ledger state (organisations' keys, beneficiaries, budgets, allocations, …).
    State,
    /// Block headers by height (8-byte big-endian).
    Blocks,
    /// Block height by block hash.
    BlockHashes,
    /// Commit certificates by height, as opaque bytes from consensus.
    Certificates,
    /// Transaction bytes by log index (8-byte big-endian): the log's leaves.
    LogLeaves,
    /// Complete log subtree hashes by (level, index), levels 1 and up.
    LogNodes,
    /// Transaction location (height, position, log index) by transaction hash.
    TxIndex,
    /// Log indexes of the transactions that concern a beneficiary, for tracking lookups.
    BeneficiaryIndex,
    /// Signed checkpoints (C2SP signed notes) by log size (8-byte big-endian): the
    /// validators' signatures gathered after the blocks, outside consensus.
    Checkpoints,
}

impl Column {
    /// Every column, in a fixed order.
    pub const ALL: [Column; 10] = [
        Column::Meta,
        Column::State,
        Column::Blocks,
        Column::BlockHashes,
        Column::Certificates,
        Column::LogLeaves,
        Column::LogNodes,
        Column::TxIndex,
        Column::BeneficiaryIndex,
        Column::Checkpoints,
    ];

    /// The column's name (a RocksDB column family name).
    pub fn name(self) -> &'static str {
        match self {
            Column::Meta => "meta",
            Column::State => "state",
            Column::Blocks => "blocks",
            Column::BlockHashes => "block_hashes",
            Column::Certificates => "certificates",
            Column::LogLeaves => "log_leaves",
            Column::LogNodes => "log_nodes",
            Column::TxIndex => "tx_index",
            Column::BeneficiaryIndex => "beneficiary_index",
            Column::Checkpoints => "checkpoints",
        }
    }
}

/// One change in a batch: a put (`Some`) or a delete (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOp {
    pub column: Column,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A set of changes applied atomically and durably by [`Store::write`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, column: Column, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp {
            column,
            key: key.into(),
            value: Some(value.into()),
        });
    }

    /// Adds a delete.
    pub fn delete(&mut self, column: Column, key: impl Into<Vec<u8>>) {
        self.ops.push(WriteOp {
            column,
            key: key.into(),
            value: None,
        });
    }

    /// The changes, in the order they were added; a later change to a key wins.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// The number of changes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A storage failure. The ledger treats every one as fatal for the operation in progress;
/// nothing is half-written because writes are batched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store at {path}: {message}")]
    Open { path: String, message: String },
    #[error("read failed: {0}")]
    Read(String),
    #[error("write failed: {0}")]
    Write(String),
}

/// A key and its value, as a scan returns them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Key-value storage with atomic batches. Implementations: [`RocksStore`] for nodes,
/// [`MemoryStore`] for tests and offline re-verification.
pub trait Store: Send + Sync {
    /// Reads one value.
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Reads one value in place: calls `read` with it, without copying it out of the store;
    /// returns whether the key is present (`read` is not called when it is not). For large
    /// values read often, such as the log's tiles.
    fn read_with(
        &self,
        column: Column,
        key: &[u8],
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, StoreError>;

    /// Applies every change in `batch` atomically and durably (synced to disk where there
    /// is a disk): after a crash either all of them are visible or none.
    fn write(&self, batch: WriteBatch) -> Result<(), StoreError>;

    /// Returns up to `limit` entries whose keys start with `prefix` and are at least
    /// `start` (pass `prefix` as `start` to begin at the first), in ascending key order.
    fn scan(
        &self,
        column: Column,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError>;
}

impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(column, key)
    }
    fn read_with(
        &self,
        column: Column,
        key: &[u8],
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, StoreError> {
        (**self).read_with(column, key, read)
    }
    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        (**self).write(batch)
    }
    fn scan(
        &self,
        column: Column,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        (**self).scan(column, prefix, start, limit)
    }
}
