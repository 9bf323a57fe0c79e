//! The upper levels of the transparency log, held in memory.
//!
//! An inclusion proof at six million leaves needs about 23 sibling subtrees; read one by one
//! from the store, six proofs make a tracking lookup cost some 140 point reads. A complete
//! subtree never changes, so the ones at level [`UPPER_LOG_LEVEL`] and above (one hash per
//! 256 leaves and fewer above: `size / 128` hashes, 32 bytes each, so 0.25 bytes per leaf,
//! 25 MB at a hundred million transactions) are kept here. A proof then reads at most
//! [`UPPER_LOG_LEVEL`] siblings from the store (those inside its own 256-leaf tile) plus the
//! lower part of the right edge.
//!
//! The cache is loaded from the store when the ledger opens and extended with the nodes each
//! committed block completes, in the same order the store received them. A node it should
//! hold and does not is an error ([`MissingLogNode`]), never a silent fallback.

use crate::error::LedgerError;
use crate::merkle::{self, Hash};
use crate::rules::{log_node_key, MissingLogNode, StoreLog};
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
                if key != log_node_key(level, index).as_bytes() {
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

/// The stored log read through the in-memory upper levels.
pub(crate) struct CachedLog<'a> {
    pub store: StoreLog<'a>,
    pub upper: &'a UpperLog,
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
        for i in 0..size {
            let leaf = i.to_be_bytes().to_vec();
            for (level, index, hash) in frontier.append(merkle::leaf_hash(&leaf)) {
                if level > 0 {
                    batch.put(
                        Column::LogNodes,
                        log_node_key(level, index).to_vec(),
                        hash.to_vec(),
                    );
                }
                upper.push(level, index, hash);
            }
            batch.put(Column::LogLeaves, i.to_be_bytes().to_vec(), leaf);
        }
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
        let plain = StoreLog(&store);
        let cached = CachedLog {
            store: StoreLog(&store),
            upper: &loaded,
        };
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
        batch.delete(Column::LogNodes, log_node_key(8, 2).to_vec());
        store.write(batch).unwrap();
        assert!(matches!(
            UpperLog::load(&store, size),
            Err(LedgerError::Corrupt(_))
        ));
        // Beyond what it holds, the cache answers an error, not a hash.
        let cached = CachedLog {
            store: StoreLog(&store),
            upper: &upper,
        };
        assert!(cached.subtree(8, 4).is_err());
        assert!(cached.subtree(9, 2).is_err());
    }

    #[test]
    fn a_tiles_lower_nodes_are_adjacent_in_key_order() {
        let tile = |t: u64| -> Vec<Vec<u8>> {
            (1..UPPER_LOG_LEVEL)
                .flat_map(|level| {
                    let per_tile = 1u64 << (UPPER_LOG_LEVEL - level);
                    (t * per_tile..(t + 1) * per_tile).map(move |i| log_node_key(level, i).to_vec())
                })
                .collect()
        };
        let (before, this, after) = (tile(4), tile(5), tile(6));
        assert_eq!(this.len(), 254, "levels 1 to 7 of 256 leaves");
        let distinct: std::collections::HashSet<&Vec<u8>> = this.iter().collect();
        assert_eq!(distinct.len(), this.len());
        assert!(before.iter().max() < this.iter().min());
        assert!(this.iter().max() < after.iter().min());
        // Every key reads back as its level and index.
        for (level, index) in [
            (1, 0),
            (1, 1_000_001),
            (3, 77),
            (7, 5),
            (8, 0),
            (12, 9),
            (40, 1),
        ] {
            assert_eq!(
                crate::rules::log_node_of_key(log_node_key(level, index).as_bytes()),
                Some((level, index))
            );
        }
        assert_eq!(crate::rules::log_node_of_key(&[0; 11][..10]), None);
        assert_eq!(
            crate::rules::log_node_of_key(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 200]),
            None
        );
        // The upper levels keep one contiguous range per level, apart from the tiles.
        assert!(log_node_key(8, 0).as_bytes() > this.iter().max().unwrap().as_slice());
        assert!(log_node_key(8, u64::MAX).as_bytes() < log_node_key(9, 0).as_bytes());
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn a_node_out_of_order_is_a_broken_invariant() {
        let mut upper = UpperLog::default();
        upper.push(8, 1, [0; 32]);
    }
}
