//! Blocks proposed at heights not yet decided, kept on disk so that a node killed at any
//! moment comes back with them: its own proposal for a (height, round) is never rebuilt
//! differently (Malachite's WAL would see a second value for the same round and the node
//! would equivocate), and a proposal it already validated and voted for is still there when
//! the decision arrives.
//!
//! One file per proposal, `HEIGHT-ROUND-HASH.{own,peer}`, written to a temporary name,
//! synced, renamed and the directory synced, so a file is either complete or absent.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

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

#[derive(BorshSerialize, BorshDeserialize)]
struct Stored {
    valid_round: i64,
    block: Vec<u8>,
}

/// The file recording the highest height this node took part in consensus at. A ledger
/// restored from an older backup is behind it, and starting consensus there could sign a
/// second vote at a height already voted at; the node refuses to start instead. Written at
/// every height, in place ([`HeightRecord`]).
pub const CONSENSUS_HEIGHT_FILE: &str = "consensus-height";

/// The directory of kept proposals, with the consensus height record.
pub struct ProposalStore {
    dir: PathBuf,
    height: HeightRecord,
}

impl ProposalStore {
    /// Opens (creating) the directory and its consensus height record.
    pub fn open(dir: &Path) -> std::io::Result<ProposalStore> {
        fs::create_dir_all(dir)?;
        let height = HeightRecord::open(&dir.join(CONSENSUS_HEIGHT_FILE))?;
        Ok(ProposalStore {
            dir: dir.to_path_buf(),
            height,
        })
    }

    fn file_name(height: u64, round: u32, hash: &Hash32, own: bool) -> String {
        let kind = if own { "own" } else { "peer" };
        format!("{height:020}-{round:010}-{hash}.{kind}")
    }

    /// Durably keeps a proposal; returns once it is on disk.
    pub fn keep(&self, proposal: &KeptProposal, hash: &Hash32) -> std::io::Result<()> {
        let name = Self::file_name(proposal.height, proposal.round, hash, proposal.own);
        let path = self.dir.join(&name);
        if path.exists() {
            return Ok(());
        }
        let stored = Stored {
            valid_round: proposal.valid_round,
            block: proposal.block.to_bytes(),
        };
        let bytes = borsh::to_vec(&stored)?;
        let temporary = self.dir.join(format!("{name}.tmp"));
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, &path)?;
        fs::File::open(&self.dir)?.sync_all()
    }

    /// Every kept proposal at `height`. Files that do not parse are skipped: they can only
    /// be leftovers of a write interrupted before its rename.
    pub fn at_height(&self, height: u64) -> std::io::Result<Vec<KeptProposal>> {
        let prefix = format!("{height:020}-");
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&prefix) || name.ends_with(".tmp") {
                continue;
            }
            let mut parts = name.splitn(3, '-');
            let (Some(_), Some(round), Some(rest)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(round) = round.parse::<u32>() else {
                continue;
            };
            let own = rest.ends_with(".own");
            let Ok(bytes) = fs::read(entry.path()) else {
                continue;
            };
            let Ok(stored) = borsh::from_slice::<Stored>(&bytes) else {
                continue;
            };
            let Ok(block) = Block::from_bytes(&stored.block) else {
                continue;
            };
            out.push(KeptProposal {
                height,
                round,
                valid_round: stored.valid_round,
                own,
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

    /// Forgets every proposal at or below `height` (it is decided).
    pub fn prune_through(&self, height: u64) -> std::io::Result<()> {
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(CONSENSUS_HEIGHT_FILE) {
                continue;
            }
            let Some(kept_height) = name.split('-').next().and_then(|h| h.parse::<u64>().ok())
            else {
                continue;
            };
            if kept_height <= height {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
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
