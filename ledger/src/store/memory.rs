//! An in-memory store: the deterministic twin of the RocksDB store, for tests, simulation
//! and offline re-verification.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{Column, Store, StoreError, WriteBatch};

type Tables = BTreeMap<(Column, Vec<u8>), Vec<u8>>;

/// An in-memory store. Clones share the same data, so dropping one handle and keeping
/// another behaves like closing and reopening a database.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    tables: Arc<RwLock<Tables>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every entry, for tests that scan the whole store.
    pub fn dump(&self) -> Result<Vec<(Column, super::KeyValue)>, StoreError> {
        let tables = self
            .tables
            .read()
            .map_err(|_| StoreError::Read("lock poisoned".into()))?;
        Ok(tables
            .iter()
            .map(|((c, k), v)| (*c, (k.clone(), v.clone())))
            .collect())
    }
}

impl Store for MemoryStore {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tables = self
            .tables
            .read()
            .map_err(|_| StoreError::Read("lock poisoned".into()))?;
        Ok(tables.get(&(column, key.to_vec())).cloned())
    }

    fn read_with(
        &self,
        column: Column,
        key: &[u8],
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, StoreError> {
        let tables = self
            .tables
            .read()
            .map_err(|_| StoreError::Read("lock poisoned".into()))?;
        let value = tables.get(&(column, key.to_vec()));
        if let Some(value) = value {
            read(value);
        }
        Ok(value.is_some())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        // Holding the write lock for the whole batch makes it atomic for readers.
        let mut tables = self
            .tables
            .write()
            .map_err(|_| StoreError::Write("lock poisoned".into()))?;
        for op in batch.ops() {
            let key = (op.column, op.key.clone());
            match &op.value {
                Some(value) => {
                    tables.insert(key, value.clone());
                }
                None => {
                    tables.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn scan(
        &self,
        column: Column,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<super::KeyValue>, StoreError> {
        let tables = self
            .tables
            .read()
            .map_err(|_| StoreError::Read("lock poisoned".into()))?;
        let from = if start > prefix { start } else { prefix };
        Ok(tables
            .range((column, from.to_vec())..)
            .take_while(|((c, k), _)| *c == column && k.starts_with(prefix))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}
