//! Blocks proposed at heights not yet decided, kept on disk so that a node killed at any
//! moment comes back with them: its own proposal for a (height, round) is never rebuilt
//! differently (Malachite's WAL would see a second value for the same round and the node
//! would equivocate), and a proposal it already validated and voted for is still there when
//! the decision arrives.
//!
//! Each proposal is kept in a slot file (`slot-NNNN`): a header (the proposal's height,
//! round, proposer kind, proof-of-lock round, hash and length, and a checksum over all of
//! it and the block) and the block. A slot whose proposal is decided is free and is
//! overwritten in place by the next one, then synced with `fdatasync`; at steady load no
//! file is created, renamed or removed, so the sync carries no directory change (the first
//! version wrote a new file per proposal, renamed it, synced the directory and removed the
//! file at the decision: journal commits at every height on every node). A write cut short
//! leaves a slot whose checksum fails, read as free: `keep` had not returned, so nothing
//! was signed that relied on it, and what the slot held before was decided.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use ledger::block::Block;
use ledger::types::Hash32;

use super::height_record::HeightRecord;

/// A proposal as kept on disk.
#[derive(Clone, Debug)]
pub struct KeptProposal {
    pub height: u64,
    pub round: u32,
    /// The proof-of-lock round (-1 for none), as Malachite's `Round::as_i64`.
    pub valid_round: i64,
    pub own: bool,
    pub block: Block,
}

/// The file recording the highest height this node took part in consensus at. A ledger
/// restored from an older backup is behind it, and starting consensus there could sign a
/// second vote at a height already voted at; the node refuses to start instead. Written at
/// every height, in place ([`HeightRecord`]).
pub const CONSENSUS_HEIGHT_FILE: &str = "consensus-height";

/// Free slot files kept for the next proposals after a decision; more (left by a height of
/// many rounds) are removed.
pub const FREE_SLOTS_MAX: usize = 4;

/// Marks a slot file's header.
const SLOT_MAGIC: &[u8; 8] = b"bansosKP";
/// Bytes of a slot's header before its checksum: magic, height, round, own, proof-of-lock
/// round, hash, block length.
const FIELDS_BYTES: usize = 8 + 8 + 4 + 1 + 8 + 32 + 8;
/// Bytes of a slot's header.
const HEADER_BYTES: usize = FIELDS_BYTES + 32;
/// The prefix of slot file names.
const SLOT_PREFIX: &str = "slot-";

/// What a slot holds: a proposal's identity (its block is read from the file when asked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    height: u64,
    round: u32,
    own: bool,
    valid_round: i64,
    hash: Hash32,
}

/// One slot file.
struct Slot {
    index: u32,
    file: File,
    /// `None`: free (never written, decided, or its last write cut short).
    held: Option<Held>,
}

/// The directory of kept proposals, with the consensus height record.
pub struct ProposalStore {
    dir: PathBuf,
    height: HeightRecord,
    slots: Mutex<Vec<Slot>>,
}

impl ProposalStore {
    /// Opens (creating) the directory, its slots and its consensus height record. Proposals
    /// kept by the first version (one file each) are moved into slots.
    pub fn open(dir: &Path) -> std::io::Result<ProposalStore> {
        fs::create_dir_all(dir)?;
        let height = HeightRecord::open(&dir.join(CONSENSUS_HEIGHT_FILE))?;
        let mut slots = Vec::new();
        let mut legacy = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(index) = slot_index(&name) {
                slots.push(open_slot(&entry.path(), index)?);
            } else if name.ends_with(".own") || name.ends_with(".peer") {
                legacy.push(entry.path());
            } else if name.ends_with(".tmp") && !name.starts_with(CONSENSUS_HEIGHT_FILE) {
                fs::remove_file(entry.path())?;
            }
        }
        slots.sort_by_key(|s| s.index);
        let store = ProposalStore {
            dir: dir.to_path_buf(),
            height,
            slots: Mutex::new(slots),
        };
        for path in legacy {
            store.import_legacy(&path)?;
        }
        Ok(store)
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Durably keeps a proposal; returns once it is on disk.
    pub fn keep(&self, proposal: &KeptProposal, hash: &Hash32) -> std::io::Result<()> {
        let held = Held {
            height: proposal.height,
            round: proposal.round,
            own: proposal.own,
            valid_round: proposal.valid_round,
            hash: *hash,
        };
        let mut slots = self.slots();
        let same = |h: &Held| {
            (h.height, h.round, h.own, h.hash) == (held.height, held.round, held.own, held.hash)
        };
        if slots.iter().any(|s| s.held.as_ref().is_some_and(same)) {
            return Ok(());
        }
        let at = match slots.iter().position(|s| s.held.is_none()) {
            Some(at) => at,
            None => {
                let created = self.create_slot(&slots)?;
                slots.push(created);
                slots.len() - 1
            }
        };
        let slot = &mut slots[at];
        // Free until the write is on disk: a failed write leaves it unknown.
        slot.held = None;
        slot.file
            .write_all_at(&encode(&held, &proposal.block.to_bytes()), 0)?;
        slot.file.sync_data()?;
        slot.held = Some(held);
        Ok(())
    }

    /// A new, empty slot file under the lowest unused index, its directory entry synced.
    fn create_slot(&self, slots: &[Slot]) -> std::io::Result<Slot> {
        let used: BTreeSet<u32> = slots.iter().map(|s| s.index).collect();
        let index = (0..)
            .find(|i| !used.contains(i))
            .expect("fewer than 2^32 slots");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.dir.join(slot_name(index)))?;
        File::open(&self.dir)?.sync_all()?;
        Ok(Slot {
            index,
            file,
            held: None,
        })
    }

    /// Every kept proposal at `height`, by round. A slot whose block no longer reads is
    /// skipped (it can only be a write cut short).
    pub fn at_height(&self, height: u64) -> std::io::Result<Vec<KeptProposal>> {
        let slots = self.slots();
        let mut out = Vec::new();
        for slot in slots.iter() {
            let Some(held) = slot.held.filter(|h| h.height == height) else {
                continue;
            };
            let Some((_, block)) = read_slot(&slot.file)? else {
                continue;
            };
            let Ok(block) = Block::from_bytes(&block) else {
                continue;
            };
            out.push(KeptProposal {
                height,
                round: held.round,
                valid_round: held.valid_round,
                own: held.own,
                block,
            });
        }
        out.sort_by_key(|p| p.round);
        Ok(out)
    }

    /// The highest height this node has taken part in consensus at, as last recorded.
    pub fn consensus_height(&self) -> std::io::Result<Option<u64>> {
        self.height.get()
    }

    /// Durably records that this node takes part in consensus at `height` (before it signs
    /// anything there).
    pub fn record_consensus_height(&self, height: u64) -> std::io::Result<()> {
        self.height.record(height)
    }

    /// Forgets every proposal at or below `height` (it is decided): their slots are free
    /// for the next proposals, and free slots beyond [`FREE_SLOTS_MAX`] are removed.
    pub fn prune_through(&self, height: u64) -> std::io::Result<()> {
        let mut slots = self.slots();
        for slot in slots.iter_mut() {
            if slot.held.is_some_and(|h| h.height <= height) {
                slot.held = None;
            }
        }
        let mut free = slots.iter().filter(|s| s.held.is_none()).count();
        while free > FREE_SLOTS_MAX {
            let at = slots
                .iter()
                .rposition(|s| s.held.is_none())
                .expect("a free slot is counted");
            let slot = slots.remove(at);
            fs::remove_file(self.dir.join(slot_name(slot.index)))?;
            free -= 1;
        }
        Ok(())
    }

    /// Moves a proposal kept by the first version (`HEIGHT-ROUND-HASH.{own,peer}`, a borsh
    /// `LegacyStored`) into a slot, then removes its file. A file that does not parse can
    /// only be a leftover of a write cut short before its rename, and is removed.
    fn import_legacy(&self, path: &Path) -> std::io::Result<()> {
        if let Some((proposal, hash)) = read_legacy(path) {
            self.keep(&proposal, &hash)?;
        }
        fs::remove_file(path)
    }
}

/// A proposal file of the first version.
#[derive(BorshSerialize, BorshDeserialize)]
struct LegacyStored {
    valid_round: i64,
    block: Vec<u8>,
}

fn read_legacy(path: &Path) -> Option<(KeptProposal, Hash32)> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let mut parts = name.splitn(3, '-');
    let height = parts.next()?.parse::<u64>().ok()?;
    let round = parts.next()?.parse::<u32>().ok()?;
    let own = parts.next()?.ends_with(".own");
    let stored = borsh::from_slice::<LegacyStored>(&fs::read(path).ok()?).ok()?;
    let block = Block::from_bytes(&stored.block).ok()?;
    let hash = block.hash();
    let proposal = KeptProposal {
        height,
        round,
        valid_round: stored.valid_round,
        own,
        block,
    };
    Some((proposal, hash))
}

fn slot_name(index: u32) -> String {
    format!("{SLOT_PREFIX}{index:04}")
}

fn slot_index(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(SLOT_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn open_slot(path: &Path, index: u32) -> std::io::Result<Slot> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let held = read_slot(&file)?.map(|(held, _)| held);
    Ok(Slot { index, file, held })
}

fn fields(held: &Held, block_len: u64) -> [u8; FIELDS_BYTES] {
    let mut out = [0u8; FIELDS_BYTES];
    let mut at = 0;
    for part in [
        &SLOT_MAGIC[..],
        &held.height.to_le_bytes(),
        &held.round.to_le_bytes(),
        &[u8::from(held.own)],
        &held.valid_round.to_le_bytes(),
        &held.hash.0,
        &block_len.to_le_bytes(),
    ] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    debug_assert_eq!(at, FIELDS_BYTES);
    out
}

fn checksum(fields: &[u8; FIELDS_BYTES], block: &[u8]) -> Hash32 {
    let mut bytes = fields.to_vec();
    bytes.extend_from_slice(&Hash32::digest(block).0);
    Hash32::digest(&bytes)
}

fn encode(held: &Held, block: &[u8]) -> Vec<u8> {
    let fields = fields(held, block.len() as u64);
    let mut out = Vec::with_capacity(HEADER_BYTES + block.len());
    out.extend_from_slice(&fields);
    out.extend_from_slice(&checksum(&fields, block).0);
    out.extend_from_slice(block);
    out
}

/// The fields [`fields`] wrote, read back in the same order; `None` when they cannot be
/// its (another marker, a proposer kind that is neither 0 nor 1).
fn parse_fields(bytes: &[u8]) -> Option<(Held, u64)> {
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        head
    }
    let mut rest = bytes;
    if take(&mut rest, 8) != SLOT_MAGIC {
        return None;
    }
    let height = u64::from_le_bytes(take(&mut rest, 8).try_into().ok()?);
    let round = u32::from_le_bytes(take(&mut rest, 4).try_into().ok()?);
    let own = match take(&mut rest, 1) {
        [0] => false,
        [1] => true,
        _ => return None,
    };
    let valid_round = i64::from_le_bytes(take(&mut rest, 8).try_into().ok()?);
    let hash = Hash32(take(&mut rest, 32).try_into().ok()?);
    let block_len = u64::from_le_bytes(take(&mut rest, 8).try_into().ok()?);
    debug_assert!(rest.is_empty());
    let held = Held {
        height,
        round,
        own,
        valid_round,
        hash,
    };
    Some((held, block_len))
}

/// The slot's proposal and block, or `None` when it holds none that checks (empty, or a
/// write cut short).
fn read_slot(file: &File) -> std::io::Result<Option<(Held, Vec<u8>)>> {
    let mut header = [0u8; HEADER_BYTES];
    match file.read_exact_at(&mut header, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let Some((held, block_len)) = parse_fields(&header[..FIELDS_BYTES]) else {
        return Ok(None);
    };
    if block_len > file.metadata()?.len().saturating_sub(HEADER_BYTES as u64) {
        return Ok(None);
    }
    let mut block = vec![0u8; block_len as usize];
    file.read_exact_at(&mut block, HEADER_BYTES as u64)?;
    if header[FIELDS_BYTES..] != checksum(&fields(&held, block_len), &block).0[..] {
        return Ok(None);
    }
    Ok(Some((held, block)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::block::BlockHeader;
    use ledger::types::PublicKey;

    fn block(height: u64) -> Block {
        Block {
            header: BlockHeader {
                chain_id: "t".into(),
                height,
                prev_hash: Hash32::ZERO,
                time_ms: 5,
                proposer: PublicKey([1; 32]),
                tx_count: 0,
                tx_root: Hash32::ZERO,
                log_size: 0,
                log_root: Hash32::ZERO,
                state_root: Hash32::ZERO,
                totals_root: Hash32::ZERO,
            },
            txs: Vec::new(),
        }
    }

    #[test]
    fn kept_proposals_survive_reopen_and_are_pruned_when_decided() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProposalStore::open(dir.path()).unwrap();
        for (height, round, own) in [(3, 0, true), (3, 1, false), (4, 0, false)] {
            let b = block(height);
            let kept = KeptProposal {
                height,
                round,
                valid_round: -1,
                own,
                block: b.clone(),
            };
            store.keep(&kept, &b.hash()).unwrap();
        }
        let store = ProposalStore::open(dir.path()).unwrap();
        let at3 = store.at_height(3).unwrap();
        assert_eq!(at3.len(), 2);
        assert!(at3[0].own && at3[0].round == 0);
        assert!(!at3[1].own && at3[1].round == 1);
        assert_eq!(at3[0].block, block(3));
        store.prune_through(3).unwrap();
        assert!(store.at_height(3).unwrap().is_empty());
        assert_eq!(store.at_height(4).unwrap().len(), 1);
    }

    fn kept(height: u64, round: u32, own: bool) -> (KeptProposal, Hash32) {
        let b = block(height);
        let hash = b.hash();
        let proposal = KeptProposal {
            height,
            round,
            valid_round: i64::from(round) - 1,
            own,
            block: b,
        };
        (proposal, hash)
    }

    fn slot_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != CONSENSUS_HEIGHT_FILE)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_decided_proposals_slot_is_overwritten_by_the_next_without_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProposalStore::open(dir.path()).unwrap();
        let (one, hash) = kept(1, 0, true);
        store.keep(&one, &hash).unwrap();
        store.keep(&one, &hash).unwrap();
        assert_eq!(slot_files(dir.path()), ["slot-0000"]);
        store.prune_through(1).unwrap();
        let (two, hash) = kept(2, 3, false);
        store.keep(&two, &hash).unwrap();
        assert_eq!(slot_files(dir.path()), ["slot-0000"]);
        let store = ProposalStore::open(dir.path()).unwrap();
        assert!(store.at_height(1).unwrap().is_empty());
        let at2 = store.at_height(2).unwrap();
        assert_eq!(at2.len(), 1);
        assert_eq!(
            (at2[0].round, at2[0].valid_round, at2[0].own),
            (3, 2, false)
        );
        assert_eq!(at2[0].block, block(2));
    }

    #[test]
    fn a_slot_whose_write_was_cut_short_reads_as_free_and_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProposalStore::open(dir.path()).unwrap();
        let (five, hash) = kept(5, 0, true);
        store.keep(&five, &hash).unwrap();
        let path = dir.path().join("slot-0000");
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER_BYTES + 3] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let store = ProposalStore::open(dir.path()).unwrap();
        assert!(store.at_height(5).unwrap().is_empty());
        let (other, hash) = kept(5, 1, false);
        store.keep(&other, &hash).unwrap();
        assert_eq!(slot_files(dir.path()), ["slot-0000"]);
        // Cut short before the end of the block: the length no longer fits the file.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(HEADER_BYTES as u64 + 2).unwrap();
        let store = ProposalStore::open(dir.path()).unwrap();
        assert!(store.at_height(5).unwrap().is_empty());
    }

    #[test]
    fn free_slots_beyond_the_bound_are_removed_at_the_decision() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProposalStore::open(dir.path()).unwrap();
        for round in 0..7 {
            let (proposal, hash) = kept(9, round, false);
            store.keep(&proposal, &hash).unwrap();
        }
        let (next, hash) = kept(10, 0, false);
        store.keep(&next, &hash).unwrap();
        assert_eq!(slot_files(dir.path()).len(), 8);
        store.prune_through(9).unwrap();
        assert_eq!(slot_files(dir.path()).len(), FREE_SLOTS_MAX + 1);
        let store = ProposalStore::open(dir.path()).unwrap();
        assert_eq!(store.at_height(10).unwrap().len(), 1);
        assert!(store.at_height(9).unwrap().len() <= FREE_SLOTS_MAX);
    }

    #[test]
    fn proposals_kept_by_the_first_version_are_moved_into_slots() {
        let dir = tempfile::tempdir().unwrap();
        let (proposal, hash) = kept(12, 2, true);
        let stored = LegacyStored {
            valid_round: 1,
            block: proposal.block.to_bytes(),
        };
        let legacy = format!("{:020}-{:010}-{hash}.own", 12, 2);
        fs::write(dir.path().join(&legacy), borsh::to_vec(&stored).unwrap()).unwrap();
        fs::write(
            dir.path().join(format!("{:020}-{:010}-x.peer", 12, 3)),
            b"cut",
        )
        .unwrap();
        fs::write(dir.path().join("something.own.tmp"), b"cut").unwrap();
        let store = ProposalStore::open(dir.path()).unwrap();
        let at12 = store.at_height(12).unwrap();
        assert_eq!(at12.len(), 1);
        assert_eq!(
            (at12[0].round, at12[0].valid_round, at12[0].own),
            (2, 1, true)
        );
        assert_eq!(at12[0].block, proposal.block);
        assert_eq!(slot_files(dir.path()), ["slot-0000"]);
    }

    #[test]
    fn the_consensus_height_survives_reopen_and_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProposalStore::open(dir.path()).unwrap();
        assert_eq!(store.consensus_height().unwrap(), None);
        store.record_consensus_height(41).unwrap();
        store.prune_through(100).unwrap();
        let store = ProposalStore::open(dir.path()).unwrap();
        assert_eq!(store.consensus_height().unwrap(), Some(41));
    }
}
