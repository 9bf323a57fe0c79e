//! The RocksDB store: one column family per [`Column`], every batch written with `sync`.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, DataBlockIndexType,
    Direction, IteratorMode, Options, ReadOptions, WriteOptions, DB,
};

use super::state_cache::StateCache;
use super::{Column, Store, StoreError, WriteBatch};

/// The uncompressed data blocks RocksDB keeps in memory, shared by all column families:
/// 256 MiB. RocksDB's default is 32 MiB per family; at a million beneficiaries (six million
/// log leaves) most explorer reads then miss it and go to the page cache.
pub const BLOCK_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// The most memory all column families' memtables (writes not yet flushed to table files)
/// may hold together: 64 MiB. Without it each of the ten families may fill two 64 MiB
/// memtables of its own, and a node's memory rises by hundreds of MiB as a busy day's
/// writes spread over the families.
pub const MEMTABLES_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The least memtable budget a store may be opened with: 32 MiB. Below it a busy chain's
/// flushes write many small table files for compaction to merge again.
pub const MEMTABLES_BYTES_MIN: usize = 32 * 1024 * 1024;

/// The memtable bloom filter's size as a fraction of the memtable's, for the state and the
/// transaction index: 2%, about 10 bits a key for entries of ~60 bytes.
const MEMTABLE_BLOOM_RATIO: f64 = 0.02;

/// How a column's blocks are compressed when flushed. The log's subtree hashes hardly
/// compress, and explorer lookups read them at random: kept uncompressed, a block read
/// from the page cache needs no decompression. The log's leaves, the largest family, are
/// compressed with zstd against a dictionary (see [`DICTIONARY_BYTES`]) from the flush on:
/// their keys only grow, so RocksDB moves their table files down to the last level without
/// compressing them again. The rest are flushed with LZ4, which is fast to write.
fn compression(column: Column) -> DBCompressionType {
    match column {
        Column::LogNodes => DBCompressionType::None,
        Column::LogLeaves => DBCompressionType::Zstd,
        _ => DBCompressionType::Lz4,
    }
}

/// How a column's last level, where nearly all of a settled store lies, is compressed: zstd
/// against a dictionary for every family compressed at all. It costs more only when
/// compaction writes the last level (the state and the indexes, whose keys are random,
/// are compacted into it); a read decompresses a block in about a microsecond more than
/// LZ4.
fn bottommost_compression(column: Column) -> DBCompressionType {
    match compression(column) {
        DBCompressionType::None => DBCompressionType::None,
        _ => DBCompressionType::Zstd,
    }
}

/// The dictionary zstd trains for each table file it compresses: 16 KiB. Entries repeat
/// what one 4 KiB block alone cannot share (the chain id, the signers' keys, region codes,
/// the layout of actions, records and index values), so each block is compressed against
/// its file's dictionary. For the log's leaves: 112 instead of 155 bytes a proposal by 64
/// agents (LZ4; zstd without a dictionary 145), in this file's test; for the transaction
/// and beneficiary indexes, ~4 bytes an entry fewer than LZ4HC in an experiment.
pub const DICTIONARY_BYTES: usize = 16 * 1024;
/// The samples the dictionary is trained on: 10 × its size (zstd advises 100 ×). The
/// training's time grows with its samples, and a flush of the log's leaves trains one
/// while blocks commit: with 100 × it took 3.2% of the five nodes' CPU at 6,400 tx/s, with
/// 10 × 0.6%. The leaves are ~4 bytes a transaction larger for it (126–127 against
/// 122–123 at 4.3 million transactions), and stay so: their table files reach the last
/// level unrewritten, and `bansos compact` leaves that level's files as they are
/// (docs/BENCHMARKS.md).
const DICTIONARY_TRAIN_BYTES: usize = 10 * DICTIONARY_BYTES;
/// The data a flush or compaction holds in memory to sample before it writes a table file
/// with a dictionary: 8 MiB (unbounded, it would hold a whole 64 MiB table file).
const DICTIONARY_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// zstd's level where it compresses against a dictionary: 1, not its default 3. Under
/// sustained load the flushes and compactions compress a node's whole write stream again
/// and again as the store grows (the state and the indexes have random keys, and are
/// compacted into the last level): at level 3 zstd took 15.4% of the five nodes' CPU two
/// minutes into an overload, at level 1 9.0%, and the network committed ~10% more. It
/// costs ~3 bytes a transaction on disk (296 against 293 at 2.7 million transactions;
/// docs/BENCHMARKS.md).
const ZSTD_LEVEL: i32 = 1;

/// Table files in level 0 of a family with random keys (the state, the transaction and
/// beneficiary indexes) before RocksDB compacts them into the level below: 8, not its
/// default 4. A flush of such a family overlaps the whole key range, so each compaction
/// out of level 0 rewrites the whole of the level below, and while a family is under
/// RocksDB's base level size (256 MiB) that is the whole family: doubling the files
/// merged at once halves how often it is rewritten. In a 150 s overload (2.7 million
/// transactions) a validator's compactions took 7.3 s of CPU against 13.5 s, and the
/// network committed 12,794 tx/s against 12,129 (docs/BENCHMARKS.md). A read that misses
/// the memtables may probe up to 8 files' bloom filters in level 0 instead of 4.
const RANDOM_KEYS_L0_COMPACTION_FILES: i32 = 8;

/// Whether a column's keys are random (hashes), so that every flush of it overlaps every
/// table file below. The others' keys grow with the chain (heights, log indexes).
fn random_keys(column: Column) -> bool {
    matches!(
        column,
        Column::State | Column::TxIndex | Column::BeneficiaryIndex
    )
}

/// A column family's options before its table options: zstd's dictionary, for the log's
/// leaves at every level and for the other compressed families at the last, and memtable
/// inserts that start from where the last insert went (RocksDB takes the dictionary's
/// buffer bound and the insert hint only as an option string).
fn column_base_options(column: Column) -> Result<Options, rocksdb::Error> {
    let dictionary = match (compression(column), bottommost_compression(column)) {
        (DBCompressionType::Zstd, _) => Some("compression_opts"),
        (_, DBCompressionType::Zstd) => Some("bottommost_compression_opts"),
        _ => None,
    };
    let mut settings = String::from(MEMTABLE_INSERT_HINT);
    if let Some(which) = dictionary {
        settings.push_str(&format!(
            ";{which}={{level={ZSTD_LEVEL};max_dict_bytes={DICTIONARY_BYTES};\
             zstd_max_train_bytes={DICTIONARY_TRAIN_BYTES};\
             max_dict_buffer_bytes={DICTIONARY_BUFFER_BYTES};enabled=true}}"
        ));
    }
    Options::default().get_options_from_string(settings)
}

/// One insert hint per column family's memtable (the prefix of every key is empty): each
/// insert starts its search of the skip list from where the previous one went and climbs
/// only as far as it must. With a batch's keys in order ([`RocksStore::write`] sorts them),
/// consecutive inserts land close together; without the hint every insert searched from
/// the top of a list of hundreds of thousands of keys, a cache miss a level, and the
/// memtable's inserts took ~60% of a block's commit (docs/BENCHMARKS.md).
const MEMTABLE_INSERT_HINT: &str =
    "memtable_insert_with_hint_prefix_extractor=rocksdb.CappedPrefix.0";

/// The memory a RocksDB store holds, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreMemory {
    /// Uncompressed blocks in the shared cache: at most [`BLOCK_CACHE_BYTES`].
    pub block_cache_bytes: u64,
    /// Writes not yet flushed: at most [`MEMTABLES_BYTES_MAX`] (plus one memtable being
    /// flushed).
    pub memtable_bytes: u64,
    /// Open table files' index and filter blocks: proportional to the data on disk.
    pub table_reader_bytes: u64,
    /// Recent state reads: at most [`super::STATE_CACHE_BYTES`].
    pub state_cache_bytes: u64,
}

/// A RocksDB database holding one node's chain and state.
pub struct RocksStore {
    db: DB,
    path: String,
    /// Recent point reads of [`Column::State`] (`state_cache.rs`).
    state_cache: StateCache,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RocksStore {
    /// Opens (or creates) the database at `path`, its memtables given [`MEMTABLES_BYTES_MAX`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_memtables(path, MEMTABLES_BYTES_MAX)
    }

    /// Opens (or creates) the database at `path`, its memtables given `memtables_bytes`
    /// together, from [`MEMTABLES_BYTES_MIN`] to [`MEMTABLES_BYTES_MAX`]. RocksDB flushes
    /// when they fill, so stores that write the same chain with the same budget flush at
    /// the same block; nodes give theirs different budgets so that they do not all flush at
    /// once (`node::run::memtables_budget`).
    pub fn open_with_memtables(path: &Path, memtables_bytes: usize) -> Result<Self, StoreError> {
        let open_error = |e: rocksdb::Error| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if !(MEMTABLES_BYTES_MIN..=MEMTABLES_BYTES_MAX).contains(&memtables_bytes) {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                message: format!(
                    "a memtable budget of {memtables_bytes} bytes is outside \
                     {MEMTABLES_BYTES_MIN}..={MEMTABLES_BYTES_MAX}"
                ),
            });
        }
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // Bounded resources: a node must not grow without limit on a busy day.
        options.set_max_open_files(512);
        options.set_keep_log_file_num(4);
        options.set_db_write_buffer_size(memtables_bytes);
        // Table files are read through memory maps: a data block that is not compressed is
        // then used where it lies in the page cache, with no read call and no copy.
        options.set_allow_mmap_reads(true);
        // One block cache for every column family, so that hot reads (recent blocks, the
        // log's lower levels, active beneficiaries) share one bounded budget.
        // A hyper clock cache: lookups take no lock, where an LRU cache's shard mutex was
        // contended by concurrent explorer reads (futex calls in the profile). Entry size 0
        // lets it size its table as it fills.
        let cache = Cache::new_hyper_clock_cache(BLOCK_CACHE_BYTES, 0);
        let mut families = Vec::with_capacity(Column::ALL.len());
        for column in &Column::ALL {
            let mut cf_options = column_base_options(*column).map_err(open_error)?;
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            // Point lookups dominate (state keys, tx hashes): a bloom filter avoids disk
            // reads for keys that are absent, which is every new beneficiary or allocation.
            // The log's columns keep theirs too: without them explorer lookups ran ~20%
            // slower (docs/BENCHMARKS.md), for ~1.3 bytes a transaction saved.
            table.set_bloom_filter(10.0, false);
            // A hash index inside each data block: a point read finds its key in the block
            // without a binary search over restart points.
            table.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
            cf_options.set_block_based_table_factory(&table);
            cf_options.set_compression_type(compression(*column));
            cf_options.set_bottommost_compression_type(bottommost_compression(*column));
            if matches!(column, Column::State | Column::TxIndex) {
                // A bloom filter over the memtable's keys: a lookup of a key not written
                // since the last flush (every new transaction's hash at admission, every
                // new record) skips the skip list, whose lookups took 6.5% of a
                // validator's CPU at peak, half of it for the transaction index.
                cf_options.set_memtable_whole_key_filtering(true);
                cf_options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
            }
            if random_keys(*column) {
                cf_options
                    .set_level_zero_file_num_compaction_trigger(RANDOM_KEYS_L0_COMPACTION_FILES);
            }
            families.push(ColumnFamilyDescriptor::new(column.name(), cf_options));
        }
        let db = DB::open_cf_descriptors(&options, path, families).map_err(open_error)?;
        Ok(RocksStore {
            db,
            path: path.display().to_string(),
            state_cache: StateCache::new(),
        })
    }

    /// Opens the database at `path` read-only, as an auditor reads a node's data directory
    /// (the node may be running: nothing is written, nothing is locked). Writes fail.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let open_error = |e: rocksdb::Error| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let options = Options::default();
        let names = Column::ALL.iter().map(|column| column.name());
        let db = DB::open_cf_for_read_only(&options, path, names, false).map_err(open_error)?;
        Ok(RocksStore {
            db,
            path: path.display().to_string(),
            state_cache: StateCache::new(),
        })
    }

    /// Compacts every column family fully (all levels into the last), as a node's data
    /// settles over time: reads then probe one sorted run per level instead of many fresh
    /// ones. The explorer benchmark uses it to measure a settled store.
    pub fn compact(&self) -> Result<(), StoreError> {
        for column in Column::ALL {
            self.db
                .compact_range_cf(self.family(column)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// What the store holds in memory now: its block cache, memtables and table readers
    /// (index and filter blocks), each bounded or proportional to the data as ARCHITECTURE
    /// says.
    pub fn memory(&self) -> Result<StoreMemory, StoreError> {
        let sum = |property: &str| -> Result<u64, StoreError> {
            let mut total = 0;
            for column in Column::ALL {
                total += self
                    .db
                    .property_int_value_cf(self.family(column)?, property)
                    .map_err(|e| StoreError::Read(e.to_string()))?
                    .ok_or_else(|| StoreError::Read(format!("no {property} property")))?;
            }
            Ok(total)
        };
        let cache = self
            .db
            .property_int_value_cf(self.family(Column::State)?, "rocksdb.block-cache-usage")
            .map_err(|e| StoreError::Read(e.to_string()))?
            .ok_or_else(|| StoreError::Read("no block-cache-usage property".into()))?;
        Ok(StoreMemory {
            block_cache_bytes: cache,
            memtable_bytes: sum("rocksdb.cur-size-all-mem-tables")?,
            table_reader_bytes: sum("rocksdb.estimate-table-readers-mem")?,
            state_cache_bytes: self.state_cache.bytes(),
        })
    }

    /// Writes a consistent copy of the whole store to `to` (a directory that must not exist
    /// yet): a RocksDB checkpoint, its table files hard-linked when `to` is on the same
    /// file system (so it costs little space until the store compacts them away) and
    /// copied otherwise.
    pub fn checkpoint_to(&self, to: &Path) -> Result<(), StoreError> {
        let error = |e: rocksdb::Error| StoreError::Write(format!("{}: {e}", to.display()));
        rocksdb::checkpoint::Checkpoint::new(&self.db)
            .map_err(error)?
            .create_checkpoint(to)
            .map_err(error)
    }

    /// The bytes of each column family's table files (not counting its write-ahead log and
    /// memtables), by column name: where a store's disk goes.
    pub fn column_bytes(&self) -> Result<Vec<(&'static str, u64)>, StoreError> {
        Column::ALL
            .iter()
            .map(|column| {
                let bytes = self
                    .db
                    .property_int_value_cf(self.family(*column)?, "rocksdb.total-sst-files-size")
                    .map_err(|e| StoreError::Read(e.to_string()))?
                    .ok_or_else(|| {
                        StoreError::Read(format!("{}: no table-size property", column.name()))
                    })?;
                Ok((column.name(), bytes))
            })
            .collect()
    }

    /// Reads one value from RocksDB itself.
    fn get_uncached(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(self.family(column)?, key)
            .map_err(|e| StoreError::Read(e.to_string()))
    }

    /// Writes `batch` to RocksDB itself, synced.
    fn write_uncached(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let ops = batch.ops();
        let mut rocks_batch = rocksdb::WriteBatch::with_capacity_bytes(rocks_batch_bytes(ops));
        let mut family = None;
        for index in apply_order(ops) {
            let op = &ops[index];
            let handle = match family {
                Some((column, handle)) if column == op.column => handle,
                _ => {
                    let handle = self
                        .family(op.column)
                        .map_err(|e| StoreError::Write(e.to_string()))?;
                    family = Some((op.column, handle));
                    handle
                }
            };
            match &op.value {
                Some(value) => rocks_batch.put_cf(handle, &op.key, value),
                None => rocks_batch.delete_cf(handle, &op.key),
            }
        }
        let mut options = WriteOptions::default();
        // A block reported committed must survive a power cut: sync before returning.
        options.set_sync(true);
        self.db
            .write_opt(rocks_batch, &options)
            .map_err(|e| StoreError::Write(e.to_string()))
    }

    fn family(&self, column: Column) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(column.name())
            .ok_or_else(|| StoreError::Read(format!("column family {} is missing", column.name())))
    }
}

/// A RocksDB write batch's header: a sequence number and a count, 12 bytes.
const ROCKS_BATCH_HEADER_BYTES: usize = 12;
/// The most a record of a RocksDB write batch takes beyond its key and value: a tag, then
/// the column family id and the two lengths as varints of at most 5 bytes each.
const ROCKS_BATCH_RECORD_OVERHEAD_BYTES: usize = 1 + 3 * 5;

/// The bytes RocksDB's batch of `ops` takes, at most: allocated at once, the batch is not
/// copied again each time it grows (a block's batch is megabytes at load).
fn rocks_batch_bytes(ops: &[super::WriteOp]) -> usize {
    ops.iter().fold(ROCKS_BATCH_HEADER_BYTES, |bytes, op| {
        bytes
            + ROCKS_BATCH_RECORD_OVERHEAD_BYTES
            + op.key.len()
            + op.value.as_ref().map_or(0, Vec::len)
    })
}

/// The order a batch's changes go to RocksDB in: by column, then by key, changes to one key
/// in the order they were added (a later one wins). In key order each memtable insert
/// starts next to the previous one (MEMTABLE_INSERT_HINT).
///
/// The order is that of `(column, key, position)`. It is found by sorting, in one array, a
/// number per change (its column and its key's first 15 bytes, big-endian, so that
/// comparing numbers compares those bytes) with the change's position; keys are compared
/// whole only when the numbers tie (keys that agree in their first 15 bytes, or a shorter
/// key and its zero-padded extension). The state's and the indexes' keys are hashes, which
/// the numbers alone order.
fn apply_order(ops: &[super::WriteOp]) -> Vec<usize> {
    const PREFIX_KEY_BYTES: usize = 15;
    let prefix = |op: &super::WriteOp| {
        let mut bytes = [0u8; 1 + PREFIX_KEY_BYTES];
        bytes[0] = op.column as u8;
        let taken = op.key.len().min(PREFIX_KEY_BYTES);
        bytes[1..1 + taken].copy_from_slice(&op.key[..taken]);
        u128::from_be_bytes(bytes)
    };
    let mut order: Vec<(u128, u32)> = ops
        .iter()
        .enumerate()
        .map(|(index, op)| {
            let position = u32::try_from(index).expect("a batch holds fewer than 2^32 changes");
            (prefix(op), position)
        })
        .collect();
    order.sort_unstable_by(|(a_prefix, a), (b_prefix, b)| {
        a_prefix.cmp(b_prefix).then_with(|| {
            let (a_op, b_op) = (&ops[*a as usize], &ops[*b as usize]);
            a_op.key.cmp(&b_op.key).then(a.cmp(b))
        })
    });
    order.into_iter().map(|(_, index)| index as usize).collect()
}

impl Store for RocksStore {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if column != Column::State {
            return self.get_uncached(column, key);
        }
        match self.state_cache.get(key) {
            Ok(value) => Ok(value),
            Err(miss) => {
                let value = self.get_uncached(column, key)?;
                self.state_cache.fill(miss, key, &value);
                Ok(value)
            }
        }
    }

    fn read_with(
        &self,
        column: Column,
        key: &[u8],
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, StoreError> {
        let value = self
            .db
            .get_pinned_cf(self.family(column)?, key)
            .map_err(|e| StoreError::Read(e.to_string()))?;
        if let Some(value) = &value {
            read(value);
        }
        Ok(value.is_some())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let state = || batch.ops().iter().filter(|op| op.column == Column::State);
        if state().next().is_none() {
            return self.write_uncached(&batch);
        }
        let writing = self.state_cache.begin_write();
        let written = self.write_uncached(&batch);
        self.state_cache
            .end_write(writing, state(), written.is_ok());
        written
    }

    fn scan(
        &self,
        column: Column,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<super::KeyValue>, StoreError> {
        let from = if start > prefix { start } else { prefix };
        let mut options = ReadOptions::default();
        // The first key after every key with this prefix: the iterator stops there instead
        // of reading on into the next block.
        if let Some(end) = prefix_end(prefix) {
            options.set_iterate_upper_bound(end);
        }
        let iterator = self.db.iterator_cf_opt(
            self.family(column)?,
            options,
            IteratorMode::From(from, Direction::Forward),
        );
        let mut entries = Vec::new();
        for item in iterator {
            let (key, value) = item.map_err(|e| StoreError::Read(e.to_string()))?;
            if !key.starts_with(prefix) || entries.len() >= limit {
                break;
            }
            entries.push((key.to_vec(), value.to_vec()));
        }
        Ok(entries)
    }
}

/// The least key greater than every key that starts with `prefix`; `None` when there is
/// none (an empty prefix, or one of all 0xff bytes).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|b| *b != 0xff)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::{
        prefix_end, Column, RocksStore, Store, StoreError, WriteBatch, MEMTABLES_BYTES_MAX,
        MEMTABLES_BYTES_MIN,
    };
    use crate::tx::{Action, TxBody};
    use crate::types::{Hash32, PublicKey, RegionCode};
    use ed25519_dalek::SigningKey;
    use rand::{Rng, SeedableRng};

    /// The options RocksDB runs the store in `dir` with: it writes them to an OPTIONS file,
    /// one section for the database and one per column family.
    fn options_file(dir: &std::path::Path) -> String {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                path.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("OPTIONS-")
            })
            .map(|path| std::fs::read_to_string(path).unwrap())
            .expect("an OPTIONS file")
    }

    /// Random batches whose keys often share their first bytes, are prefixes of each other,
    /// end in zero bytes or repeat: the order changes go to RocksDB in is that of a stable
    /// sort by (column, key), so a later change to a key still wins.
    #[test]
    fn a_batch_goes_to_rocksdb_in_column_and_key_order_with_repeated_keys_in_batch_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..200 {
            let mut batch = WriteBatch::new();
            for _ in 0..rng.gen_range(0..300) {
                let column = Column::ALL[rng.gen_range(0..Column::ALL.len())];
                let key: Vec<u8> = match rng.gen_range(0..3) {
                    0 => (0..32).map(|_| rng.gen()).collect(),
                    // From a small alphabet and up to 20 bytes: prefixes of each other,
                    // zero-padded look-alikes, repeats.
                    1 => (0..rng.gen_range(0..20))
                        .map(|_| rng.gen_range(0..2))
                        .collect(),
                    // One 15-byte start and a random tail: the numbers tie, the keys do not.
                    _ => [7u8; 15]
                        .into_iter()
                        .chain((0..rng.gen_range(0..4)).map(|_| rng.gen_range(0..3)))
                        .collect(),
                };
                if rng.gen_bool(0.2) {
                    batch.delete(column, key);
                } else {
                    batch.put(column, key, vec![rng.gen()]);
                }
            }
            let ops = batch.ops();
            let mut expected: Vec<usize> = (0..ops.len()).collect();
            expected
                .sort_by(|&a, &b| (ops[a].column, &ops[a].key).cmp(&(ops[b].column, &ops[b].key)));
            assert_eq!(super::apply_order(ops), expected);
        }
    }

    /// The capacity reserved for RocksDB's batch is never less than what it writes: many
    /// small records, where the per-record bytes dominate, and a few large ones.
    #[test]
    fn a_rocksdb_batch_fits_the_bytes_reserved_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(dir.path()).unwrap();
        let mut batch = WriteBatch::new();
        for (i, column) in Column::ALL.iter().cycle().take(1_000).enumerate() {
            let key = (i as u32).to_be_bytes();
            match i % 3 {
                0 => batch.delete(*column, key),
                _ => batch.put(*column, key, vec![1; i % 2]),
            }
        }
        batch.put(Column::State, vec![7; 300], vec![1; 70_000]);
        batch.delete(Column::TxIndex, vec![9; 200]);
        batch.put(Column::LogLeaves, Vec::new(), Vec::new());
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.ops() {
            let family = store.family(op.column).unwrap();
            match &op.value {
                Some(value) => rocks_batch.put_cf(family, &op.key, value),
                None => rocks_batch.delete_cf(family, &op.key),
            }
        }
        assert!(rocks_batch.size_in_bytes() <= super::rocks_batch_bytes(batch.ops()));
    }

    #[test]
    fn the_memtables_get_the_budget_the_store_is_opened_with() {
        let budget = MEMTABLES_BYTES_MIN + 12_345;
        let dir = tempfile::tempdir().unwrap();
        drop(RocksStore::open_with_memtables(dir.path(), budget).unwrap());
        let options = options_file(dir.path());
        let line = format!("  db_write_buffer_size={budget}\n");
        assert_eq!(options.matches(&line).count(), 1, "{options}");
        // Reopened with the default, the store takes the default.
        let default = tempfile::tempdir().unwrap();
        drop(RocksStore::open(default.path()).unwrap());
        let line = format!("  db_write_buffer_size={MEMTABLES_BYTES_MAX}\n");
        assert_eq!(options_file(default.path()).matches(&line).count(), 1);
    }

    #[test]
    fn a_memtable_budget_out_of_bounds_is_refused_and_creates_nothing() {
        for budget in [0, MEMTABLES_BYTES_MIN - 1, MEMTABLES_BYTES_MAX + 1] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ledger");
            let refused = RocksStore::open_with_memtables(&path, budget);
            assert!(
                matches!(&refused, Err(StoreError::Open { message, .. }) if message.contains("memtable budget")),
                "{budget}: {refused:?}"
            );
            assert!(!path.exists(), "{budget}: a refused open created {path:?}");
        }
        for budget in [MEMTABLES_BYTES_MIN, MEMTABLES_BYTES_MAX] {
            let dir = tempfile::tempdir().unwrap();
            RocksStore::open_with_memtables(dir.path(), budget).unwrap();
        }
    }

    #[test]
    fn every_column_family_inserts_into_its_memtable_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let _store = RocksStore::open(dir.path()).unwrap();
        // The default column family is not used.
        let options = options_file(dir.path());
        let hinted = "  memtable_insert_with_hint_prefix_extractor=rocksdb.CappedPrefix.0\n";
        assert_eq!(
            options.matches(hinted).count(),
            Column::ALL.len(),
            "{options}"
        );
    }

    /// The option `name`'s value in each column family's section of `options`, by family.
    fn family_option(options: &str, name: &str) -> std::collections::HashMap<String, String> {
        options
            .split("\n[CFOptions \"")
            .skip(1)
            .map(|section| {
                let (family, body) = section.split_once('"').unwrap();
                let value = (body.lines().map(str::trim))
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                    .unwrap_or_else(|| panic!("{name} in {family}"));
                (family.to_owned(), value.to_owned())
            })
            .collect()
    }

    #[test]
    fn families_with_random_keys_gather_more_files_before_compacting_them() {
        let dir = tempfile::tempdir().unwrap();
        drop(RocksStore::open(dir.path()).unwrap());
        let triggers = family_option(
            &options_file(dir.path()),
            "level0_file_num_compaction_trigger",
        );
        for column in Column::ALL {
            let expected = if super::random_keys(column) {
                super::RANDOM_KEYS_L0_COMPACTION_FILES.to_string()
            } else {
                "4".to_owned() // RocksDB's default
            };
            assert_eq!(triggers[column.name()], expected, "{}", column.name());
        }
        let random = Column::ALL.iter().filter(|c| super::random_keys(**c));
        assert_eq!(random.count(), 3);
    }

    /// Proposals as the benchmark's load makes them: 64 agents in turn, random pseudonyms.
    fn proposal_leaves(count: u64) -> Vec<Vec<u8>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let agents: Vec<SigningKey> = (0..64)
            .map(|_| SigningKey::from_bytes(&rng.gen()))
            .collect();
        let region = RegionCode::new("3510.01.2001").expect("a valid region code");
        (0..count)
            .map(|i| {
                let agent = &agents[(i % 64) as usize];
                let body = TxBody {
                    chain_id: "bansos-testnet".into(),
                    signer: PublicKey(agent.verifying_key().to_bytes()),
                    nonce: i / 64,
                    action: Action::Propose {
                        beneficiary: Hash32(rng.gen()),
                        region: region.clone(),
                        household_size: rng.gen_range(1..8),
                        welfare_decile: rng.gen_range(1..5),
                    },
                };
                body.sign(agent).to_bytes()
            })
            .collect()
    }

    /// The options RocksDB persists for a new store: the log's leaves compressed with zstd at
    /// [`super::ZSTD_LEVEL`] against a dictionary (a level RocksDB did not take would show as its
    /// default, 32767).
    #[test]
    fn dictionaries_compress_at_the_chosen_zstd_level() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        drop(RocksStore::open(dir.path()).expect("a new store"));
        let compression = family_option(&options_file(dir.path()), "compression_opts");
        let line = &compression[Column::LogLeaves.name()];
        assert!(
            line.contains(&format!("level={};", super::ZSTD_LEVEL))
                && line.contains("max_dict_bytes=16384"),
            "{line}"
        );
    }

    #[test]
    fn the_logs_leaves_settle_compressed_against_a_dictionary_and_read_back_whole() {
        const LEAVES: u64 = 20_000;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = RocksStore::open(dir.path()).expect("a new store");
        let leaves = proposal_leaves(LEAVES);
        for (chunk, part) in leaves.chunks(5_000).enumerate() {
            let mut batch = WriteBatch::new();
            for (i, leaf) in part.iter().enumerate() {
                let index = (chunk * 5_000 + i) as u64;
                batch.put(
                    Column::LogLeaves,
                    index.to_be_bytes().to_vec(),
                    leaf.clone(),
                );
            }
            store.write(batch).expect("a write");
        }
        store.compact().expect("a compaction");
        let bytes = store
            .column_bytes()
            .expect("column sizes")
            .into_iter()
            .find(|(name, _)| *name == Column::LogLeaves.name())
            .expect("the leaves' column")
            .1;
        let raw: usize = leaves.iter().map(|l| l.len()).sum();
        let per_leaf = bytes as f64 / LEAVES as f64;
        // 173 raw bytes a leaf; with the dictionary 112 on disk, zstd without it 145, LZ4
        // (as before) 155.
        assert!(
            per_leaf < 125.0,
            "{per_leaf:.1} bytes a leaf on disk ({:.1} raw)",
            raw as f64 / LEAVES as f64
        );
        for (index, leaf) in leaves.iter().enumerate() {
            let key = (index as u64).to_be_bytes();
            assert_eq!(
                store.get(Column::LogLeaves, &key).expect("a read").as_ref(),
                Some(leaf)
            );
        }
    }

    #[test]
    fn the_end_of_a_prefix_is_the_least_key_after_it() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
    }
}
