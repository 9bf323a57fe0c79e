//! The upper levels of the transparency log, held in memory.
//!
//! An inclusion proof at six million leaves needs about 23 sibling subtrees; read one by one
//! from the store, six proofs make a tracking lookup cost some 140 point reads. A complete
//! subtree never changes, so the ones at level [`UPPER_LOG_LEVEL`] and above (one hash per
//! 256 leaves and fewer above: `size / 128` hashes, 32 bytes each, so 0.25 bytes per leaf,
//! 25 MB at a hundred million transactions) are kept here. A proof then reads from the store
//! only its leaf's sibling and its leaf's tile (the seven siblings below level 8, one value:
//! see [`crate::log_store`]) plus the lower part of the right edge.
//!
//! The cache is loaded from the store when the ledger opens and extended with the nodes each
//! committed block completes, in the same order the store received them. A node it should
//! hold and does not is an error ([`MissingLogNode`]), never a silent fallback.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::error::LedgerError;
use crate::log_store::{upper_node_key, MissingLogNode, StoreLog};
use crate::merkle::{self, Hash};
use crate::store::{Column, Store};

/// The lowest log level held in memory: level 8 nodes are the hashes of a C2SP level-1 tile.
pub const UPPER_LOG_LEVEL: u8 = 8;

/// The complete log subtrees at level [`UPPER_LOG_LEVEL`] and above; row `r` holds the nodes
/// of level `UPPER_LOG_LEVEL + r` in index order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpperLog {
    rows: Vec<Vec<Hash>>,
}

impl UpperLog {
    /// Reads the upper levels of a log of `size` leaves from the store, checking that each
    /// level holds exactly the complete subtrees that size implies.
    pub(crate) fn load(store: &dyn Store, size: u64) -> Result<UpperLog, LedgerError> {
        let mut upper = UpperLog::default();
        for level in UPPER_LOG_LEVEL..64 {
            let expected = size >> level;
            if expected == 0 {
                break;
            }
            let limit = usize::try_from(expected)
                .map_err(|_| LedgerError::Corrupt("the log is too large to index".into()))?;
            let prefix = [level];
            let entries = store.scan(Column::LogNodes, &prefix, &prefix, limit)?;
            if entries.len() as u64 != expected {
                return Err(LedgerError::Corrupt(format!(
                    "log level {level} holds {} complete subtrees; a log of {size} leaves has {expected}",
                    entries.len()
                )));
            }
            for (position, (key, value)) in entries.into_iter().enumerate() {
                let index = position as u64;
                if key != upper_node_key(level, index) {
                    return Err(LedgerError::Corrupt(format!(
                        "log level {level} has a gap before subtree {index}"
                    )));
                }
                let hash: Hash = value.try_into().map_err(|_| {
                    LedgerError::Corrupt(format!("log subtree {level}/{index} is not 32 bytes"))
                })?;
                upper.push(level, index, hash);
            }
        }
        Ok(upper)
    }

    /// Records a subtree the log just completed; lower levels are ignored. Nodes arrive in
    /// index order per level, as [`merkle::Frontier::append`] completes them.
    pub(crate) fn push(&mut self, level: u8, index: u64, hash: Hash) {
        let Some(row) = level.checked_sub(UPPER_LOG_LEVEL) else {
            return;
        };
        let row = usize::from(row);
        while self.rows.len() <= row {
            self.rows.push(Vec::new());
        }
        let nodes = &mut self.rows[row];
        assert_eq!(
            nodes.len() as u64,
            index,
            "log subtree {level}/{index} completed out of order"
        );
        nodes.push(hash);
    }

    fn get(&self, level: u8, index: u64) -> Option<Hash> {
        let row = usize::from(level.checked_sub(UPPER_LOG_LEVEL)?);
        let index = usize::try_from(index).ok()?;
        self.rows.get(row)?.get(index).copied()
    }

    /// How many hashes are held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// Whether nothing is held yet (a log under 256 leaves).
    pub fn is_empty(&self) -> bool {
        self.rows.iter().all(Vec::is_empty)
    }
}

/// The roots of the ranges `[start, size)` along the right edge of the log at one size:
/// `start` is 0 or the end of one of the complete subtrees `[0, size)` splits into (one per
/// set bit of `size`). Every inclusion proof at that size needs one of them, each the fold of
/// up to 63 subtrees, and the log root is the first: computed once per size, they save each
/// proof a dozen hashes.
#[derive(Debug)]
pub(crate) struct RightEdge {
    size: u64,
    /// `(start, root of [start, size))`, largest start first.
    roots: Vec<(u64, Hash)>,
}

impl RightEdge {
    fn compute<S: merkle::SubtreeSource>(source: &S, size: u64) -> Result<RightEdge, S::Error> {
        let mut pieces = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            if size >> level & 1 == 1 {
                pieces.push((start, level));
                start += 1 << level;
            }
        }
        let mut roots = Vec::with_capacity(pieces.len());
        let mut acc: Option<Hash> = None;
        for (start, level) in pieces.into_iter().rev() {
            let hash = source.subtree(level, start >> level)?;
            let root = acc.map_or(hash, |right| merkle::node_hash(&hash, &right));
            roots.push((start, root));
            acc = Some(root);
        }
        Ok(RightEdge { size, roots })
    }

    fn get(&self, start: u64, end: u64) -> Option<Hash> {
        if end != self.size {
            return None;
        }
        self.roots
            .iter()
            .find(|(s, _)| *s == start)
            .map(|(_, root)| *root)
    }
}

/// How many sizes' right edges [`RightEdges`] keeps: proofs are asked at the latest signed
/// checkpoint, which moves once per block.
pub const RIGHT_EDGES_KEPT: usize = 4;

/// The right edges of the last few sizes proofs were asked at.
#[derive(Debug, Default)]
pub(crate) struct RightEdges {
    recent: Mutex<VecDeque<Arc<RightEdge>>>,
}

impl RightEdges {
    /// The right edge at `size`, computed from `source` the first time.
    pub(crate) fn at(
        &self,
        source: &CachedLog<'_>,
        size: u64,
    ) -> Result<Arc<RightEdge>, MissingLogNode> {
        let recent = || self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(edge) = recent().iter().find(|e| e.size == size) {
            return Ok(Arc::clone(edge));
        }
        let edge = Arc::new(RightEdge::compute(source, size)?);
        let mut recent = recent();
        if recent.len() >= RIGHT_EDGES_KEPT {
            recent.pop_front();
        }
        recent.push_back(Arc::clone(&edge));
        Ok(edge)
    }
}

/// The stored log read through the in-memory upper levels, and through the right edge of one
/// size when it has one.
pub(crate) struct CachedLog<'a> {
    pub store: StoreLog<'a>,
    pub upper: &'a UpperLog,
    pub edge: Option<Arc<RightEdge>>,
}

impl merkle::SubtreeSource for CachedLog<'_> {
    type Error = MissingLogNode;

    fn subtree(&self, level: u8, index: u64) -> Result<Hash, MissingLogNode> {
        if level < UPPER_LOG_LEVEL {
            return self.store.subtree(level, index);
        }
        self.upper.get(level, index).ok_or_else(|| MissingLogNode {
            level,
            index,
            detail: "not among the upper levels held in memory".into(),
        })
    }

    fn known_range(&self, start: u64, end: u64) -> Option<Hash> {
        self.edge.as_ref()?.get(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{SubtreeSource, TILE_WIDTH};
    use crate::store::{MemoryStore, WriteBatch};

    /// A store holding a log of `size` leaves the way the ledger writes it.
    fn stored_log(size: u64) -> (MemoryStore, UpperLog) {
        let store = MemoryStore::new();
        let mut frontier = merkle::Frontier::new();
        let mut upper = UpperLog::default();
        let mut batch = WriteBatch::new();
        let mut writes = crate::log_store::LogWrites::new(&store, 0);
        for i in 0..size {
            let leaf = i.to_be_bytes().to_vec();
            for (level, index, hash) in frontier.append(merkle::leaf_hash(&leaf)) {
                writes.push(level, index, hash).unwrap();
                upper.push(level, index, hash);
            }
            batch.put(Column::LogLeaves, i.to_be_bytes().to_vec(), leaf);
        }
        writes.write(&mut batch);
        store.write(batch).unwrap();
        (store, upper)
    }

    #[test]
    fn loading_gives_what_the_appends_gave_and_proofs_match_the_store() {
        let size = 3 * TILE_WIDTH as u64 * TILE_WIDTH as u64 / 2 + 77;
        let (store, pushed) = stored_log(size);
        let loaded = UpperLog::load(&store, size).unwrap();
        assert_eq!(loaded, pushed);
        assert_eq!(
            loaded.len() as u64,
            (size >> 8)
                + (size >> 9)
                + (size >> 10)
                + (size >> 11)
                + (size >> 12)
                + (size >> 13)
                + (size >> 14)
                + (size >> 15)
                + (size >> 16)
                + (size >> 17)
        );
        let plain = StoreLog::new(&store);
        let mut cached = CachedLog {
            store: StoreLog::new(&store),
            upper: &loaded,
            edge: None,
        };
        let edges = RightEdges::default();
        for with_edge in [false, true] {
            if with_edge {
                cached.edge = Some(edges.at(&cached, size).unwrap());
            }
            for index in [0, 1, 255, 256, 40_000, size - 1] {
                assert_eq!(
                    merkle::inclusion_proof(&cached, index, size).unwrap(),
                    merkle::inclusion_proof(&plain, index, size).unwrap()
                );
            }
            assert_eq!(
                merkle::root_at(&cached, size).unwrap(),
                merkle::root_at(&plain, size).unwrap()
            );
            assert_eq!(
                merkle::consistency_proof(&cached, 1000, size).unwrap(),
                merkle::consistency_proof(&plain, 1000, size).unwrap()
            );
        }
    }

    /// A source that counts its lookups, to see what the right edge saves.
    struct Counting<'a>(
        &'a dyn merkle::SubtreeSource<Error = MissingLogNode>,
        std::cell::Cell<u32>,
    );

    impl merkle::SubtreeSource for Counting<'_> {
        type Error = MissingLogNode;
        fn subtree(&self, level: u8, index: u64) -> Result<Hash, MissingLogNode> {
            self.1.set(self.1.get() + 1);
            self.0.subtree(level, index)
        }
        fn known_range(&self, start: u64, end: u64) -> Option<Hash> {
            self.0.known_range(start, end)
        }
    }

    #[test]
    fn the_right_edge_gives_every_size_the_same_roots_and_proofs_with_fewer_lookups() {
        let most = 700;
        let (store, upper) = stored_log(most);
        let plain = StoreLog::new(&store);
        let edges = RightEdges::default();
        for size in 1..=most {
            let mut cached = CachedLog {
                store: StoreLog::new(&store),
                upper: &upper,
                edge: None,
            };
            cached.edge = Some(edges.at(&cached, size).unwrap());
            assert_eq!(
                merkle::root_at(&cached, size).unwrap(),
                merkle::root_at(&plain, size).unwrap(),
                "root at {size}"
            );
            for index in [0, size / 3, size - 1] {
                let counting = Counting(&cached, std::cell::Cell::new(0));
                assert_eq!(
                    merkle::inclusion_proof(&counting, index, size).unwrap(),
                    merkle::inclusion_proof(&plain, index, size).unwrap(),
                    "proof of {index} at {size}"
                );
                // At most one lookup per level: no range is folded from pieces.
                assert!(counting.1.get() <= 64 - size.leading_zeros(), "{size}");
            }
            let first = 1 + size / 2;
            assert_eq!(
                merkle::consistency_proof(&cached, first, size).unwrap(),
                merkle::consistency_proof(&plain, first, size).unwrap()
            );
        }
        assert_eq!(edges.recent.lock().unwrap().len(), RIGHT_EDGES_KEPT);
    }

    #[test]
    fn a_missing_or_extra_upper_node_is_corruption_not_a_default() {
        let size = 4 * TILE_WIDTH as u64;
        let (store, upper) = stored_log(size);
        // A log size the store's upper levels do not match.
        assert!(matches!(
            UpperLog::load(&store, size + 256),
            Err(LedgerError::Corrupt(_))
        ));
        let mut batch = WriteBatch::new();
        batch.delete(Column::LogNodes, upper_node_key(8, 2).to_vec());
        store.write(batch).unwrap();
        assert!(matches!(
            UpperLog::load(&store, size),
            Err(LedgerError::Corrupt(_))
        ));
        // Beyond what it holds, the cache answers an error, not a hash.
        let cached = CachedLog {
            store: StoreLog::new(&store),
            upper: &upper,
            edge: None,
        };
        assert!(cached.subtree(8, 4).is_err());
        assert!(cached.subtree(9, 2).is_err());
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn a_node_out_of_order_is_a_broken_invariant() {
        let mut upper = UpperLog::default();
        upper.push(8, 1, [0; 32]);
    }
}
