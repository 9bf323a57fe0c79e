//! One conformance suite that every [`Store`] implementation must pass, run against the
//! RocksDB store and the in-memory store alike (the openraft `testing::log::Suite` idea).

#[cfg(feature = "rocksdb")]
use super::RocksStore;
use super::{Column, MemoryStore, Store, WriteBatch};

/// Opens a store that persists across handles: each call returns a fresh handle to the
/// same data, the way reopening a database directory does.
trait Reopen {
    type S: Store;
    fn open(&self) -> Self::S;
}

#[cfg(feature = "rocksdb")]
struct RocksAt(tempfile::TempDir);
#[cfg(feature = "rocksdb")]
impl Reopen for RocksAt {
    type S = RocksStore;
    fn open(&self) -> RocksStore {
        RocksStore::open(self.0.path()).expect("open rocksdb")
    }
}

struct SharedMemory(MemoryStore);
impl Reopen for SharedMemory {
    type S = MemoryStore;
    fn open(&self) -> MemoryStore {
        self.0.clone()
    }
}

fn put_get_and_delete<R: Reopen>(r: &R) {
    let store = r.open();
    assert_eq!(store.get(Column::State, b"k").unwrap(), None);
    let mut batch = WriteBatch::new();
    batch.put(Column::State, b"k".to_vec(), b"v1".to_vec());
    store.write(batch).unwrap();
    assert_eq!(
        store.get(Column::State, b"k").unwrap(),
        Some(b"v1".to_vec())
    );
    let mut seen = Vec::new();
    let present = store
        .read_with(Column::State, b"k", &mut |v| seen.extend_from_slice(v))
        .unwrap();
    assert_eq!((present, seen.as_slice()), (true, &b"v1"[..]));
    let mut batch = WriteBatch::new();
    batch.delete(Column::State, b"k".to_vec());
    store.write(batch).unwrap();
    assert_eq!(store.get(Column::State, b"k").unwrap(), None);
    let mut called = false;
    let present = store
        .read_with(Column::State, b"k", &mut |_| called = true)
        .unwrap();
    assert_eq!((present, called), (false, false));
}

fn columns_are_separate<R: Reopen>(r: &R) {
    let store = r.open();
    let mut batch = WriteBatch::new();
    for (i, column) in Column::ALL.iter().enumerate() {
        batch.put(*column, b"same-key".to_vec(), vec![i as u8]);
    }
    store.write(batch).unwrap();
    for (i, column) in Column::ALL.iter().enumerate() {
        assert_eq!(
            store.get(*column, b"same-key").unwrap(),
            Some(vec![i as u8])
        );
    }
}

fn later_op_in_batch_wins<R: Reopen>(r: &R) {
    let store = r.open();
    let mut batch = WriteBatch::new();
    batch.put(Column::Meta, b"a".to_vec(), b"1".to_vec());
    batch.put(Column::Meta, b"a".to_vec(), b"2".to_vec());
    batch.put(Column::Meta, b"b".to_vec(), b"1".to_vec());
    batch.delete(Column::Meta, b"b".to_vec());
    store.write(batch).unwrap();
    assert_eq!(store.get(Column::Meta, b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get(Column::Meta, b"b").unwrap(), None);
    // Keys out of order, in two columns, each changed again after others: a store that
    // orders a batch's writes (RocksDB's, for its memtable) keeps each key's last change.
    let mut batch = WriteBatch::new();
    batch.put(Column::State, b"z".to_vec(), b"1".to_vec());
    batch.delete(Column::Meta, b"a".to_vec());
    batch.put(Column::State, b"c".to_vec(), b"1".to_vec());
    batch.put(Column::Meta, b"b".to_vec(), b"3".to_vec());
    batch.delete(Column::State, b"z".to_vec());
    batch.put(Column::Meta, b"a".to_vec(), b"3".to_vec());
    batch.put(Column::State, b"c".to_vec(), b"2".to_vec());
    batch.delete(Column::Meta, b"b".to_vec());
    store.write(batch).unwrap();
    assert_eq!(store.get(Column::Meta, b"a").unwrap(), Some(b"3".to_vec()));
    assert_eq!(store.get(Column::Meta, b"b").unwrap(), None);
    assert_eq!(store.get(Column::State, b"c").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get(Column::State, b"z").unwrap(), None);
}

/// Reads of the state, present and absent keys alike, see every later write to them (a
/// store that caches reads must update what it cached), batch after batch.
fn state_reads_see_later_writes<R: Reopen>(r: &R) {
    let store = r.open();
    let mut batch = WriteBatch::new();
    batch.put(Column::State, b"kept".to_vec(), b"1".to_vec());
    batch.put(Column::State, b"dropped".to_vec(), b"1".to_vec());
    store.write(batch).unwrap();
    let read = |key: &[u8]| store.get(Column::State, key).unwrap();
    assert_eq!(read(b"kept"), Some(b"1".to_vec()));
    assert_eq!(read(b"dropped"), Some(b"1".to_vec()));
    assert_eq!(read(b"absent"), None);
    for round in 2..5u8 {
        let mut batch = WriteBatch::new();
        batch.put(Column::State, b"kept".to_vec(), vec![round]);
        batch.put(Column::State, b"absent".to_vec(), vec![round]);
        batch.put(Column::State, b"kept".to_vec(), vec![round, round]);
        batch.delete(Column::State, b"dropped".to_vec());
        batch.put(Column::Meta, b"kept".to_vec(), b"meta".to_vec());
        store.write(batch).unwrap();
        assert_eq!(read(b"kept"), Some(vec![round, round]));
        assert_eq!(read(b"absent"), Some(vec![round]));
        assert_eq!(read(b"dropped"), None);
        let mut batch = WriteBatch::new();
        batch.put(Column::State, b"dropped".to_vec(), vec![round]);
        batch.delete(Column::State, b"absent".to_vec());
        store.write(batch).unwrap();
        assert_eq!(read(b"dropped"), Some(vec![round]));
        assert_eq!(read(b"absent"), None);
        let mut batch = WriteBatch::new();
        batch.delete(Column::State, b"dropped".to_vec());
        store.write(batch).unwrap();
    }
    drop(store);
    let store = r.open();
    assert_eq!(store.get(Column::State, b"kept").unwrap(), Some(vec![4, 4]));
    assert_eq!(
        store.get(Column::Meta, b"kept").unwrap(),
        Some(b"meta".to_vec())
    );
}

fn scan_is_ordered_prefixed_and_limited<R: Reopen>(r: &R) {
    let store = r.open();
    let mut batch = WriteBatch::new();
    for key in [&b"p\x02"[..], b"p\x01", b"q\x00", b"p\x03", b"o\xff", b"p"] {
        batch.put(Column::BeneficiaryIndex, key.to_vec(), key.to_vec());
    }
    store.write(batch).unwrap();
    let keys =
        |entries: Vec<(Vec<u8>, Vec<u8>)>| entries.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(
            store
                .scan(Column::BeneficiaryIndex, b"p", b"p", 100)
                .unwrap()
        ),
        vec![
            b"p".to_vec(),
            b"p\x01".to_vec(),
            b"p\x02".to_vec(),
            b"p\x03".to_vec()
        ]
    );
    assert_eq!(
        keys(
            store
                .scan(Column::BeneficiaryIndex, b"p", b"p\x02", 100)
                .unwrap()
        ),
        vec![b"p\x02".to_vec(), b"p\x03".to_vec()]
    );
    assert_eq!(
        keys(store.scan(Column::BeneficiaryIndex, b"p", b"p", 2).unwrap()).len(),
        2
    );
    assert!(store
        .scan(Column::State, b"p", b"p", 100)
        .unwrap()
        .is_empty());
}

fn data_survives_reopen<R: Reopen>(r: &R) {
    {
        let store = r.open();
        let mut batch = WriteBatch::new();
        batch.put(
            Column::Blocks,
            7u64.to_be_bytes().to_vec(),
            b"block seven".to_vec(),
        );
        store.write(batch).unwrap();
    }
    let store = r.open();
    assert_eq!(
        store.get(Column::Blocks, &7u64.to_be_bytes()).unwrap(),
        Some(b"block seven".to_vec())
    );
}

fn empty_batch_is_a_no_op<R: Reopen>(r: &R) {
    let store = r.open();
    store.write(WriteBatch::new()).unwrap();
    assert!(store
        .scan(Column::TxIndex, b"", b"", 10)
        .unwrap()
        .is_empty());
}

fn large_values_round_trip<R: Reopen>(r: &R) {
    let store = r.open();
    let value: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut batch = WriteBatch::new();
    batch.put(Column::LogLeaves, b"big".to_vec(), value.clone());
    store.write(batch).unwrap();
    assert_eq!(store.get(Column::LogLeaves, b"big").unwrap(), Some(value));
}

/// Runs every check on fresh stores made by `make`.
fn suite<R: Reopen>(make: impl Fn() -> R) {
    put_get_and_delete(&make());
    columns_are_separate(&make());
    later_op_in_batch_wins(&make());
    state_reads_see_later_writes(&make());
    scan_is_ordered_prefixed_and_limited(&make());
    data_survives_reopen(&make());
    empty_batch_is_a_no_op(&make());
    large_values_round_trip(&make());
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_store_passes_the_conformance_suite() {
    suite(|| RocksAt(tempfile::tempdir().expect("tempdir")));
}

#[test]
fn memory_store_passes_the_conformance_suite() {
    suite(|| SharedMemory(MemoryStore::new()));
}
