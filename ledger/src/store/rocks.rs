//! The RocksDB store: one column family per [`Column`], every batch written with `sync`.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, Direction, IteratorMode, Options,
    WriteOptions, DB,
};

use super::{Column, Store, StoreError, WriteBatch};

/// The uncompressed data blocks RocksDB keeps in memory, shared by all column families:
/// 256 MiB. RocksDB's default is 32 MiB per family; at a million beneficiaries (six million
/// log leaves) most explorer reads then miss it and go to the page cache.
pub const BLOCK_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// A RocksDB database holding one node's chain and state.
pub struct RocksStore {
    db: DB,
    path: String,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RocksStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |e: rocksdb::Error| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // Bounded resources: a node must not grow without limit on a busy day.
        options.set_max_open_files(512);
        options.set_keep_log_file_num(4);
        // One block cache for every column family, so that hot reads (recent blocks, the
        // log's lower levels, active beneficiaries) share one bounded budget.
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let families = Column::ALL.iter().map(|column| {
            let mut cf_options = Options::default();
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            // Point lookups dominate (state keys, tx hashes): a bloom filter avoids disk
            // reads for keys that are absent, which is every new beneficiary or allocation.
            table.set_bloom_filter(10.0, false);
            cf_options.set_block_based_table_factory(&table);
            cf_options.set_compression_type(rocksdb::DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(column.name(), cf_options)
        });
        let db = DB::open_cf_descriptors(&options, path, families).map_err(open_error)?;
        Ok(RocksStore {
            db,
            path: path.display().to_string(),
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

    fn family(&self, column: Column) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(column.name())
            .ok_or_else(|| StoreError::Read(format!("column family {} is missing", column.name())))
    }
}

impl Store for RocksStore {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(self.family(column)?, key)
            .map_err(|e| StoreError::Read(e.to_string()))
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.ops() {
            let family = self
                .family(op.column)
                .map_err(|e| StoreError::Write(e.to_string()))?;
            match &op.value {
                Some(value) => rocks_batch.put_cf(family, &op.key, value),
                None => rocks_batch.delete_cf(family, &op.key),
            }
        }
        let mut options = WriteOptions::default();
        // A block reported committed must survive a power cut: sync before returning.
        options.set_sync(true);
        self.db
            .write_opt(rocks_batch, &options)
            .map_err(|e| StoreError::Write(e.to_string()))
    }

    fn scan(
        &self,
        column: Column,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<super::KeyValue>, StoreError> {
        let from = if start > prefix { start } else { prefix };
        let iterator = self.db.iterator_cf(
            self.family(column)?,
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
