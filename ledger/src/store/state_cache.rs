//! The RocksDB store's cache of recent point reads of the state column, in front of the
//! memtables and table files.
//!
//! Most transactions read the same few state records: their signer's key record (its
//! nonce, role and regions), the pseudonym service's key, their program. Those records are
//! rewritten at every block, so RocksDB finds them in its memtables, by a skip-list search
//! that misses the CPU cache at every level; at 6,400 tx/s the store's point reads took
//! 8.8% of the nodes' CPU, most of them such reads (docs/BENCHMARKS.md). Here a read that
//! was made before is a hash lookup.
//!
//! The cache holds what the store holds, absent keys included, and never anything else:
//! - a write updates every key of the batch that the cache holds, in the batch's order,
//!   once the write is durable (a key it does not hold is read from the store next time);
//!   a failed write drops those keys instead;
//! - while a write is in progress, reads go to the store (which holds the old values or,
//!   once written, the new ones, all of a batch at once): a read never sees a new value
//!   of one key and then an old value of another;
//! - a read that missed fills the cache only if no write began or ended between the read
//!   of the store and the fill. Every write counts up a generation when it begins and
//!   again when it ends; a fill is taken only with the generation its read started at,
//!   even (no write in progress), checked under the lock a write's end takes too.
//!   Otherwise a read could fetch a value, a write could replace it in the store and find
//!   nothing to update in the cache, and the read would then cache the old value for good.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::WriteOp;

/// The most memory the cache's entries may weigh: 1 MiB (keys, values and
/// [`ENTRY_OVERHEAD_BYTES`] each), room for ~4,000 records of ~200 bytes. The records
/// read again and again are far fewer; records read once (a new beneficiary's) pass
/// through. With 16 MiB the cache itself took more CPU than it saved at 1 MiB: its table
/// no longer fitted the CPU's cache, and it kept every record read once.
pub const STATE_CACHE_BYTES: u64 = 1024 * 1024;
/// What an entry costs besides its key and value (the cache's own bookkeeping and two
/// vectors' headers), counted against [`STATE_CACHE_BYTES`].
const ENTRY_OVERHEAD_BYTES: u64 = 64;
/// What an entry weighs on average, for sizing the cache's tables.
const ENTRY_BYTES_ESTIMATE: u64 = 256;

/// Weighs an entry by its bytes.
#[derive(Clone)]
struct Bytes;

impl quick_cache::Weighter<Vec<u8>, Option<Vec<u8>>> for Bytes {
    fn weight(&self, key: &Vec<u8>, value: &Option<Vec<u8>>) -> u64 {
        let value = value.as_ref().map_or(0, Vec::len);
        ENTRY_OVERHEAD_BYTES + key.len() as u64 + value as u64
    }
}

/// A read that missed the cache, and the generation it started at: `None` while a write
/// was in progress (its value is then not cached).
#[derive(Clone, Copy, Debug)]
pub(super) struct Miss(Option<u64>);

/// Recent state reads (a value, or that the key is absent), bounded by
/// [`STATE_CACHE_BYTES`].
pub(super) struct StateCache {
    entries: quick_cache::sync::Cache<Vec<u8>, Option<Vec<u8>>, Bytes>,
    /// Writes begun plus writes ended: odd while a write is in progress.
    generation: AtomicU64,
    /// Held by a fill from its check of the generation to its insert, and by a write from
    /// its begin and from its updates to its end.
    lock: Mutex<()>,
    /// Held by a write from its begin to its end: writes that touch the state take turns
    /// (RocksDB applies them one after another anyway).
    writer: Mutex<()>,
}

/// A write in progress ([`StateCache::begin_write`]); [`StateCache::end_write`] ends it.
/// Dropped without being ended (a panic in RocksDB's write or in the cache's updates), it
/// empties the cache: what the store then holds is not known here.
pub(super) struct Writing<'a> {
    cache: &'a StateCache,
    /// Set by [`StateCache::end_write`] once every update is made.
    ended: bool,
    /// The writer's turn, held until the write ends (dropped after [`Drop::drop`] runs).
    _turn: MutexGuard<'a, ()>,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Abandoned: the batch may be in the store or not, and some of its keys may have
        // been updated here. Nothing cached is trusted, and the generation is made even
        // again, so that the next write is counted as the only one in progress.
        let _lock = lock(&self.cache.lock);
        self.cache.entries.clear();
        self.cache.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl StateCache {
    /// An empty cache.
    pub(super) fn new() -> StateCache {
        StateCache {
            entries: quick_cache::sync::Cache::with_weighter(
                (STATE_CACHE_BYTES / ENTRY_BYTES_ESTIMATE) as usize,
                STATE_CACHE_BYTES,
                Bytes,
            ),
            generation: AtomicU64::new(0),
            lock: Mutex::new(()),
            writer: Mutex::new(()),
        }
    }

    /// The cached read of `key` (`Some(None)`: the key is absent), or the [`Miss`] to
    /// fill it with once the store has been read (every read while a write is in progress
    /// is a miss that fills nothing).
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Miss> {
        let generation = self.generation.load(Ordering::SeqCst);
        if !generation.is_multiple_of(2) {
            return Err(Miss(None));
        }
        match self.entries.get(key) {
            // No write began while the entry was looked up: it is what the store holds.
            Some(value) if self.generation.load(Ordering::SeqCst) == generation => Ok(value),
            Some(_) => Err(Miss(None)),
            None => Err(Miss(Some(generation))),
        }
    }

    /// Caches what the store returned for `key` after `miss`, unless a write began since.
    pub(super) fn fill(&self, miss: Miss, key: &[u8], value: &Option<Vec<u8>>) {
        let Some(read_at) = miss.0 else {
            return;
        };
        let _lock = lock(&self.lock);
        if self.generation.load(Ordering::SeqCst) == read_at {
            self.entries.insert(key.to_vec(), value.clone());
        }
    }

    /// Marks a write as begun, once any other has ended: reads from now on go to the
    /// store, and are not cached, until it ends.
    pub(super) fn begin_write(&self) -> Writing<'_> {
        let turn = lock(&self.writer);
        let _lock = lock(&self.lock);
        let before = self.generation.fetch_add(1, Ordering::SeqCst);
        assert!(before.is_multiple_of(2), "two writes in progress at once");
        Writing {
            cache: self,
            ended: false,
            _turn: turn,
        }
    }

    /// Ends `writing`. Each of `ops` (the state column's, in the batch's order) replaces a
    /// cached entry when the write succeeded and drops it when it failed.
    pub(super) fn end_write<'a>(
        &self,
        mut writing: Writing<'_>,
        ops: impl Iterator<Item = &'a WriteOp>,
        written: bool,
    ) {
        assert!(
            std::ptr::eq(writing.cache, self),
            "a write ended on another cache"
        );
        let _lock = lock(&self.lock);
        for op in ops {
            if written {
                // Only a key the cache holds, and most written keys are not held: looked
                // up before the key and value are copied for the replacement.
                if self.entries.contains_key(op.key.as_slice()) {
                    let _ = self
                        .entries
                        .replace(op.key.clone(), op.value.clone(), false);
                }
            } else {
                self.entries.remove(&op.key);
            }
        }
        let before = self.generation.fetch_add(1, Ordering::SeqCst);
        assert!(
            !before.is_multiple_of(2),
            "a write ended that had not begun"
        );
        writing.ended = true;
    }

    /// What the entries weigh now, in bytes.
    pub(super) fn bytes(&self) -> u64 {
        self.entries.weight()
    }
}

/// Takes `mutex`. It guards no data of its own: a panic elsewhere cannot leave anything
/// half-changed.
fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Column;

    fn put(key: &[u8], value: &[u8]) -> WriteOp {
        WriteOp {
            column: Column::State,
            key: key.to_vec(),
            value: Some(value.to_vec()),
        }
    }

    #[test]
    fn a_read_is_cached_and_a_write_replaces_it_in_the_batchs_order() {
        let cache = StateCache::new();
        let miss = cache.get(b"k").unwrap_err();
        cache.fill(miss, b"k", &Some(b"v1".to_vec()));
        assert_eq!(cache.get(b"k").unwrap(), Some(b"v1".to_vec()));
        let absent = cache.get(b"gone").unwrap_err();
        cache.fill(absent, b"gone", &None);
        assert_eq!(cache.get(b"gone").unwrap(), None);
        let writing = cache.begin_write();
        let ops = [
            put(b"k", b"v2"),
            put(b"gone", b"here"),
            put(b"k", b"v3"),
            put(b"new", b"x"),
        ];
        cache.end_write(writing, ops.iter(), true);
        assert_eq!(cache.get(b"k").unwrap(), Some(b"v3".to_vec()));
        assert_eq!(cache.get(b"gone").unwrap(), Some(b"here".to_vec()));
        assert!(
            cache.get(b"new").is_err(),
            "a key it did not hold is not added"
        );
    }

    #[test]
    fn a_failed_write_drops_the_keys_it_touched() {
        let cache = StateCache::new();
        let miss = cache.get(b"k").unwrap_err();
        cache.fill(miss, b"k", &Some(b"v1".to_vec()));
        let writing = cache.begin_write();
        cache.end_write(writing, [put(b"k", b"v2")].iter(), false);
        assert!(cache.get(b"k").is_err());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_cached() {
        let cache = StateCache::new();
        // The read misses and fetches the old value; a write then replaces it in the store,
        // finding nothing to update in the cache, before the read fills.
        let before = cache.get(b"k").unwrap_err();
        let writing = cache.begin_write();
        cache.end_write(writing, [put(b"k", b"new")].iter(), true);
        cache.fill(before, b"k", &Some(b"old".to_vec()));
        assert!(cache.get(b"k").is_err(), "the old value must not be cached");
        // While a write is in progress every read goes to the store, a cached key too, and
        // none is cached.
        let cached = cache.get(b"cached").unwrap_err();
        cache.fill(cached, b"cached", &Some(b"old".to_vec()));
        let writing = cache.begin_write();
        assert!(
            cache.get(b"cached").is_err(),
            "a hit during a write goes to the store"
        );
        let during = cache.get(b"k").unwrap_err();
        cache.fill(during, b"k", &Some(b"old".to_vec()));
        cache.end_write(writing, std::iter::empty(), true);
        assert!(cache.get(b"k").is_err());
        // After the write, a fill is taken.
        let after = cache.get(b"k").unwrap_err();
        cache.fill(after, b"k", &Some(b"new".to_vec()));
        assert_eq!(cache.get(b"k").unwrap(), Some(b"new".to_vec()));
    }

    #[test]
    fn a_write_abandoned_by_a_panic_empties_the_cache_and_ends() {
        let cache = StateCache::new();
        let miss = cache.get(b"k").unwrap_err();
        cache.fill(miss, b"k", &Some(b"v1".to_vec()));
        // RocksDB's write panics after the batch is in the store: `end_write` never runs.
        let abandoned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _writing = cache.begin_write();
            panic!("the write panicked");
        }));
        assert!(abandoned.is_err());
        assert!(
            cache.get(b"k").is_err(),
            "what the abandoned write left in the store is read from the store"
        );
        // The next write takes its turn and ends as usual, and reads are cached again.
        let miss = cache.get(b"k").unwrap_err();
        cache.fill(miss, b"k", &Some(b"v2".to_vec()));
        let writing = cache.begin_write();
        assert!(cache.get(b"k").is_err(), "a write is in progress");
        cache.end_write(writing, [put(b"k", b"v3")].iter(), true);
        assert_eq!(cache.get(b"k").unwrap(), Some(b"v3".to_vec()));
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let cache = StateCache::new();
        let value = vec![7u8; 1024];
        for i in 0..(2 * STATE_CACHE_BYTES / 1024) {
            let key = i.to_be_bytes();
            let miss = cache.get(&key).unwrap_err();
            cache.fill(miss, &key, &Some(value.clone()));
        }
        assert!(cache.bytes() <= STATE_CACHE_BYTES);
        assert!(cache.bytes() > STATE_CACHE_BYTES / 2);
    }
}
