//! The transparency log as stored in [`Column::LogNodes`].
//!
//! Leaves are not hashed into the store: a leaf hash is recomputed from the leaf's bytes
//! ([`Column::LogLeaves`]) when a proof needs it. Above the leaves, two kinds of entry:
//!
//! - **Lower tiles** (levels 1 to 7). The 254 inner nodes of one 256-leaf tile (128 + 64 +
//!   … + 2) are one value under `0 ‖ tile` (9 bytes): a count byte `m` (the tile's level-1
//!   nodes so far, at most 128) and then the nodes level by level, level `l` holding
//!   `m >> (l - 1)` of them. An inclusion proof's seven lower siblings all lie in its leaf's
//!   tile, so they cost one read instead of seven. The value of the tile still filling is
//!   rewritten by each block that extends it; a full tile never changes again.
//! - **Upper nodes** (level 8 and up) under `level ‖ index` (9 bytes), one contiguous range
//!   per level, which [`crate::log_cache::UpperLog`] loads into memory.
//!
//! A node that should be stored and is not, or a value of the wrong shape, is an error
//! ([`MissingLogNode`]), never a default.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::error::LedgerError;
use crate::log_cache::UPPER_LOG_LEVEL;
use crate::merkle::{self, Hash};
use crate::store::{Column, Store, WriteBatch};

/// Levels inside a lower tile: 1 to 7.
const TILE_LEVELS: usize = UPPER_LOG_LEVEL as usize - 1;
/// Level-1 nodes of a full tile: 128.
pub const TILE_PAIRS_MAX: u8 = 1 << (UPPER_LOG_LEVEL - 1);
/// Inner nodes of a full tile: 254.
pub const TILE_NODES_MAX: usize = 2 * TILE_PAIRS_MAX as usize - 2;
/// Bytes of a full tile's value: the count byte and 254 hashes, 8,129 bytes.
pub const TILE_VALUE_BYTES_MAX: usize = 1 + 32 * TILE_NODES_MAX;

/// A log subtree that should be stored is not.
#[derive(Debug, thiserror::Error)]
#[error("log subtree at level {level}, index {index} is missing from the store: {detail}")]
pub struct MissingLogNode {
    pub level: u8,
    pub index: u64,
    pub detail: String,
}

/// The key of the stored upper node at `level` (8 and up), `index`.
pub(crate) fn upper_node_key(level: u8, index: u64) -> [u8; 9] {
    debug_assert!(level >= UPPER_LOG_LEVEL, "levels below 8 live in tiles");
    let mut key = [level; 9];
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The key of lower tile `tile` (leaves `256 * tile ..`).
pub(crate) fn tile_key(tile: u64) -> [u8; 9] {
    let mut key = [0; 9];
    key[1..].copy_from_slice(&tile.to_be_bytes());
    key
}

/// The tile a node at `level` (1 to 7), `index` lies in, and its offset within that level of
/// the tile.
fn tile_of(level: u8, index: u64) -> (u64, usize) {
    debug_assert!((1..UPPER_LOG_LEVEL).contains(&level));
    let per_tile = UPPER_LOG_LEVEL - level;
    (
        index >> per_tile,
        (index & ((1u64 << per_tile) - 1)) as usize,
    )
}

/// The node at `level` (1 to 7) and `offset` within its level in a stored tile value, read in
/// place; `None` when the value does not hold it or is not a tile value.
fn tile_node(bytes: &[u8], level: u8, offset: usize) -> Option<Hash> {
    let pairs = *bytes.first()?;
    let counts = LowerTile::counts(pairs);
    if pairs > TILE_PAIRS_MAX || bytes.len() != 1 + 32 * counts.iter().sum::<usize>() {
        return None;
    }
    let l = usize::from(level).checked_sub(1)?;
    if offset >= *counts.get(l)? {
        return None;
    }
    let at = 1 + 32 * (counts[..l].iter().sum::<usize>() + offset);
    bytes.get(at..at + 32)?.try_into().ok()
}

/// The inner nodes, levels 1 to 7, of one 256-leaf tile of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LowerTile {
    levels: [Vec<Hash>; TILE_LEVELS],
}

impl LowerTile {
    /// Reads a stored value; `None` when it is not one.
    pub(crate) fn decode(bytes: &[u8]) -> Option<LowerTile> {
        let (&pairs, mut rest) = bytes.split_first()?;
        if pairs > TILE_PAIRS_MAX {
            return None;
        }
        let counts = Self::counts(pairs);
        if rest.len() != 32 * counts.iter().sum::<usize>() {
            return None;
        }
        let mut tile = LowerTile::default();
        for (level, count) in tile.levels.iter_mut().zip(counts) {
            let (these, after) = rest.split_at(32 * count);
            level.extend(these.chunks_exact(32).map(|c| {
                let hash: Hash = c.try_into().expect("chunks of 32 bytes");
                hash
            }));
            rest = after;
        }
        Some(tile)
    }

    /// The stored value: the count byte, then the nodes level by level.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let pairs = self.pairs();
        assert_eq!(
            self.levels.iter().map(Vec::len).collect::<Vec<_>>(),
            Self::counts(pairs),
            "a tile's levels must be those of its leaves so far"
        );
        let mut bytes = Vec::with_capacity(1 + 32 * self.len());
        bytes.push(pairs);
        for node in self.levels.iter().flatten() {
            bytes.extend_from_slice(node);
        }
        bytes
    }

    /// How many nodes each level holds when the tile has `pairs` level-1 nodes.
    fn counts(pairs: u8) -> [usize; TILE_LEVELS] {
        std::array::from_fn(|l| usize::from(pairs) >> l)
    }

    fn pairs(&self) -> u8 {
        u8::try_from(self.levels[0].len()).expect("at most 128 pairs in a tile")
    }

    /// How many nodes the tile holds.
    pub(crate) fn len(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Adds a node the log just completed; nodes arrive in order within each level.
    fn push(&mut self, level: u8, offset: usize, hash: Hash) {
        let nodes = &mut self.levels[usize::from(level) - 1];
        assert_eq!(
            nodes.len(),
            offset,
            "log node {level}/+{offset} completed out of order in its tile"
        );
        nodes.push(hash);
    }

    /// Every node with its level and index in the log, for tile `tile`.
    fn nodes(&self, tile: u64) -> impl Iterator<Item = (u8, u64, Hash)> + '_ {
        self.levels.iter().enumerate().flat_map(move |(l, nodes)| {
            let level = l as u8 + 1;
            let first = tile << (UPPER_LOG_LEVEL - level);
            nodes
                .iter()
                .enumerate()
                .map(move |(offset, hash)| (level, first + offset as u64, *hash))
        })
    }
}

/// The nodes a stored [`Column::LogNodes`] entry holds, each with its level and index, in
/// that order; `None` for an entry of neither form. `bansos audit verify` uses it to name
/// the node, and so the block, where a stored entry differs from the replayed one.
pub fn log_nodes_of_entry(key: &[u8], value: &[u8]) -> Option<Vec<(u8, u64, Hash)>> {
    let (&first, index) = key.split_first()?;
    let index = u64::from_be_bytes(index.try_into().ok()?);
    match first {
        0 => Some(LowerTile::decode(value)?.nodes(index).collect()),
        level if (UPPER_LOG_LEVEL..64).contains(&level) => {
            Some(vec![(level, index, value.try_into().ok()?)])
        }
        _ => None,
    }
}

/// The stored log as a [`merkle::SubtreeSource`]. It keeps a copy of the last tile it read,
/// so one inclusion proof reads its tile once (and allocates nothing for it).
pub(crate) struct StoreLog<'a> {
    store: &'a dyn Store,
    tile: RefCell<TileCopy>,
}

/// A stored tile value, copied out of the store into a buffer of a full tile's size.
struct TileCopy {
    /// Which tile `bytes[..len]` holds, if any.
    tile: Option<u64>,
    len: usize,
    bytes: [u8; TILE_VALUE_BYTES_MAX],
}

impl<'a> StoreLog<'a> {
    pub(crate) fn new(store: &'a dyn Store) -> Self {
        StoreLog {
            store,
            tile: RefCell::new(TileCopy {
                tile: None,
                len: 0,
                bytes: [0; TILE_VALUE_BYTES_MAX],
            }),
        }
    }

    fn leaf_hash(&self, index: u64) -> Result<Hash, MissingLogNode> {
        let missing = |detail: String| MissingLogNode {
            level: 0,
            index,
            detail,
        };
        let leaf = self
            .store
            .get(Column::LogLeaves, &index.to_be_bytes())
            .map_err(|e| missing(e.to_string()))?
            .ok_or_else(|| missing("absent".into()))?;
        Ok(merkle::leaf_hash(&leaf))
    }

    fn lower(&self, level: u8, index: u64) -> Result<Hash, MissingLogNode> {
        let missing = |detail: &str| MissingLogNode {
            level,
            index,
            detail: detail.into(),
        };
        let (tile, offset) = tile_of(level, index);
        let mut copy = self.tile.borrow_mut();
        if copy.tile != Some(tile) {
            copy.tile = None;
            let TileCopy { len, bytes, .. } = &mut *copy;
            let present = self
                .store
                .read_with(Column::LogNodes, &tile_key(tile), &mut |value| {
                    // A value too long for a tile is kept as none, which reads as malformed.
                    *len = if value.len() <= TILE_VALUE_BYTES_MAX {
                        bytes[..value.len()].copy_from_slice(value);
                        value.len()
                    } else {
                        0
                    };
                })
                .map_err(|e| missing(&e.to_string()))?;
            if !present {
                return Err(missing("its tile is absent"));
            }
            copy.tile = Some(tile);
        }
        tile_node(&copy.bytes[..copy.len], level, offset)
            .ok_or_else(|| missing("beyond its tile's stored nodes, or its tile is malformed"))
    }

    fn upper(&self, level: u8, index: u64) -> Result<Hash, MissingLogNode> {
        let missing = |detail: String| MissingLogNode {
            level,
            index,
            detail,
        };
        let bytes = self
            .store
            .get(Column::LogNodes, &upper_node_key(level, index))
            .map_err(|e| missing(e.to_string()))?
            .ok_or_else(|| missing("absent".into()))?;
        bytes.try_into().map_err(|_| missing("not 32 bytes".into()))
    }
}

impl merkle::SubtreeSource for StoreLog<'_> {
    type Error = MissingLogNode;

    fn subtree(&self, level: u8, index: u64) -> Result<Hash, MissingLogNode> {
        match level {
            0 => self.leaf_hash(index),
            l if l < UPPER_LOG_LEVEL => self.lower(level, index),
            _ => self.upper(level, index),
        }
    }
}

/// The log nodes one block completes, gathered into the writes of its batch.
pub(crate) struct LogWrites<'a> {
    store: &'a dyn Store,
    /// The log's size before the block.
    size_before: u64,
    tiles: BTreeMap<u64, LowerTile>,
    upper: Vec<(u8, u64, Hash)>,
}

impl<'a> LogWrites<'a> {
    pub(crate) fn new(store: &'a dyn Store, size_before: u64) -> Self {
        LogWrites {
            store,
            size_before,
            tiles: BTreeMap::new(),
            upper: Vec::new(),
        }
    }

    /// Records a node the log completed; leaf hashes (level 0) are not stored.
    pub(crate) fn push(&mut self, level: u8, index: u64, hash: Hash) -> Result<(), LedgerError> {
        if level == 0 {
            return Ok(());
        }
        if level >= UPPER_LOG_LEVEL {
            self.upper.push((level, index, hash));
            return Ok(());
        }
        let (tile, offset) = tile_of(level, index);
        if !self.tiles.contains_key(&tile) {
            let stored = self.stored_tile(tile)?;
            self.tiles.insert(tile, stored);
        }
        let nodes = self.tiles.get_mut(&tile).expect("just inserted");
        nodes.push(level, offset, hash);
        Ok(())
    }

    /// The nodes tile `tile` held before the block: those of the leaves it already had.
    fn stored_tile(&self, tile: u64) -> Result<LowerTile, LedgerError> {
        let first_leaf = tile << UPPER_LOG_LEVEL;
        let leaves = self.size_before.saturating_sub(first_leaf).min(256);
        let pairs = (leaves / 2) as u8;
        if pairs == 0 {
            return Ok(LowerTile::default());
        }
        let corrupt = |what: &str| LedgerError::Corrupt(format!("log tile {tile} is {what}"));
        let bytes = self
            .store
            .get(Column::LogNodes, &tile_key(tile))?
            .ok_or_else(|| corrupt("missing"))?;
        let nodes = LowerTile::decode(&bytes).ok_or_else(|| corrupt("malformed"))?;
        if nodes.pairs() != pairs {
            return Err(corrupt(&format!(
                "holding {} pairs where the log's {} leaves make {pairs}",
                nodes.pairs(),
                self.size_before
            )));
        }
        Ok(nodes)
    }

    /// Puts every touched tile and upper node into `batch`; returns the upper nodes, which
    /// the in-memory cache takes once the block is committed.
    pub(crate) fn write(self, batch: &mut WriteBatch) -> Vec<(u8, u64, Hash)> {
        for (tile, nodes) in &self.tiles {
            batch.put(Column::LogNodes, tile_key(*tile).to_vec(), nodes.encode());
        }
        for (level, index, hash) in &self.upper {
            batch.put(
                Column::LogNodes,
                upper_node_key(*level, *index).to_vec(),
                hash.to_vec(),
            );
        }
        self.upper
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::SubtreeSource;
    use crate::store::MemoryStore;

    /// A log of `size` leaves stored block by block (`block` leaves each) the way the ledger
    /// stores it; also returns every node the frontier completed.
    fn stored(size: u64, block: u64) -> (MemoryStore, Vec<(u8, u64, Hash)>) {
        let store = MemoryStore::new();
        let mut frontier = merkle::Frontier::new();
        let mut all = Vec::new();
        let mut start = 0;
        while start < size {
            let end = (start + block).min(size);
            let mut writes = LogWrites::new(&store, start);
            let mut batch = WriteBatch::new();
            for i in start..end {
                let leaf = i.to_be_bytes().to_vec();
                for (level, index, hash) in frontier.append(merkle::leaf_hash(&leaf)) {
                    writes.push(level, index, hash).unwrap();
                    all.push((level, index, hash));
                }
                batch.put(Column::LogLeaves, i.to_be_bytes().to_vec(), leaf);
            }
            writes.write(&mut batch);
            store.write(batch).unwrap();
            start = end;
        }
        (store, all)
    }

    #[test]
    fn every_completed_node_reads_back_whatever_the_block_sizes() {
        for block in [1, 3, 256, 1000] {
            let size = 3 * 256 + 77;
            let (store, all) = stored(size, block);
            let log = StoreLog::new(&store);
            for (level, index, hash) in &all {
                assert_eq!(log.subtree(*level, *index).unwrap(), *hash, "block {block}");
            }
            // Nodes not yet complete are errors, never defaults.
            assert!(log.subtree(1, size / 2).is_err());
            assert!(log.subtree(7, 6).is_err());
            assert!(log.subtree(8, 3).is_err());
            assert!(log.subtree(3, 1_000).is_err());
        }
    }

    #[test]
    fn a_full_tile_is_one_value_of_254_nodes() {
        let (store, _) = stored(256 * 2 + 5, 7);
        let entries = store.scan(Column::LogNodes, &[0], &[0], 10).unwrap();
        assert_eq!(entries.len(), 3, "two full tiles and the one filling");
        assert_eq!(entries[0].1.len(), TILE_VALUE_BYTES_MAX);
        assert_eq!(
            LowerTile::decode(&entries[1].1).unwrap().len(),
            TILE_NODES_MAX
        );
        // Five leaves: two level-1 nodes, one level-2 node.
        assert_eq!(entries[2].1.len(), 1 + 32 * 3);
        // An entry decodes to its nodes with their places in the log.
        let nodes = log_nodes_of_entry(&entries[1].0, &entries[1].1).unwrap();
        assert_eq!(nodes.len(), TILE_NODES_MAX);
        assert_eq!((nodes[0].0, nodes[0].1), (1, 128));
        assert_eq!((nodes[253].0, nodes[253].1), (7, 3));
        let log = StoreLog::new(&store);
        for (level, index, hash) in nodes {
            assert_eq!(log.subtree(level, index).unwrap(), hash);
        }
    }

    #[test]
    fn malformed_values_and_keys_are_refused() {
        let full = vec![1u8; TILE_VALUE_BYTES_MAX];
        let mut value = full.clone();
        value[0] = TILE_PAIRS_MAX;
        assert!(LowerTile::decode(&value).is_some());
        value[0] = TILE_PAIRS_MAX + 1;
        assert!(LowerTile::decode(&value).is_none(), "too many pairs");
        value[0] = TILE_PAIRS_MAX;
        assert!(
            LowerTile::decode(&value[..value.len() - 1]).is_none(),
            "short"
        );
        assert_eq!(tile_node(&value, 7, 1), Some([1; 32]));
        assert_eq!(tile_node(&value, 7, 2), None, "beyond level 7's two nodes");
        assert_eq!(tile_node(&value[..value.len() - 1], 1, 0), None);
        value[0] = 3;
        assert_eq!(
            tile_node(&value, 1, 0),
            None,
            "a count byte the length does not match"
        );
        value[0] = TILE_PAIRS_MAX;
        assert!(LowerTile::decode(&[]).is_none());
        assert_eq!(LowerTile::decode(&[0]).unwrap().len(), 0);
        assert!(log_nodes_of_entry(&tile_key(0)[..8], &value).is_none());
        assert!(log_nodes_of_entry(&[3, 0, 0, 0, 0, 0, 0, 0, 0], &[0; 32]).is_none());
        assert!(log_nodes_of_entry(&upper_node_key(8, 1), &[0; 31]).is_none());
        assert_eq!(
            log_nodes_of_entry(&upper_node_key(9, 5), &[4; 32]),
            Some(vec![(9, 5, [4; 32])])
        );
    }

    #[test]
    fn a_stored_tile_that_does_not_match_the_log_size_is_corruption() {
        let (store, _) = stored(100, 100);
        // The store holds 50 pairs; a log said to have 120 leaves needs 60.
        let mut writes = LogWrites::new(&store, 120);
        let hash = [0; 32];
        assert!(matches!(
            writes.push(1, 60, hash),
            Err(LedgerError::Corrupt(_))
        ));
        // A tile with no stored value where the log says it has pairs.
        let mut writes = LogWrites::new(&store, 300);
        assert!(matches!(
            writes.push(1, 150, hash),
            Err(LedgerError::Corrupt(_))
        ));
    }

    #[test]
    fn tiles_sort_before_the_upper_levels_and_each_level_is_one_range() {
        assert!(tile_key(u64::MAX) < upper_node_key(8, 0));
        assert!(upper_node_key(8, u64::MAX) < upper_node_key(9, 0));
        assert!(tile_key(4) < tile_key(5));
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn a_node_out_of_order_in_its_tile_is_a_broken_invariant() {
        let mut tile = LowerTile::default();
        tile.push(2, 1, [0; 32]);
    }
}
