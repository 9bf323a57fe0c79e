//! A byzantine validator, for tests only.
//!
//! Compiled with the cargo feature `byzantine`, which only the `bansos-byzantine` test
//! binary turns on; the `bansos` binary has no switch that reaches it. The attacks use the
//! validator's own key only (a byzantine insider cannot forge the others' signatures):
//!
//! - [`Attack::Equivocate`]: as proposer, streams a second, different valid block for the
//!   same (height, round), signed with its key;
//! - [`Attack::InvalidBlocks`]: as proposer, also streams a signed block whose state root
//!   is wrong, half of the time before its valid one;
//! - [`Attack::Floods`]: at every round, signed proposals for the next rounds and heights
//!   (most of them rounds it is not scheduled for), and junk streams that never finish,
//!   with huge sequence numbers;
//! - [`Attack::WrongVotes`]: signs prevotes and precommits for values nobody proposed, in
//!   place of the votes the engine asked for (half of them, by a seeded coin).
//!
//! Honest validators must stay in agreement and keep committing with one such node of
//! four: `tests/tests/cluster.rs` runs it.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use arc_malachitebft_app_channel::app::types::core::NilOrVal;
use ledger::types::Hash32;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::types::{BlockId, Vote};

/// One misbehaviour of a byzantine validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attack {
    Equivocate,
    InvalidBlocks,
    Floods,
    WrongVotes,
}

impl Attack {
    /// Every attack, in the order of the names [`Attack::from_str`] accepts.
    pub const ALL: [Attack; 4] = [
        Attack::Equivocate,
        Attack::InvalidBlocks,
        Attack::Floods,
        Attack::WrongVotes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::Equivocate => "equivocate",
            Attack::InvalidBlocks => "invalid-blocks",
            Attack::Floods => "floods",
            Attack::WrongVotes => "wrong-votes",
        }
    }
}

impl FromStr for Attack {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Attack::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Attack::ALL.iter().map(|a| a.name()).collect();
                format!("unknown attack {s:?}; known: {}", names.join(", "))
            })
    }
}

/// Signed proposal streams for rounds ahead sent per round by [`Attack::Floods`].
pub const FLOOD_ROUNDS_AHEAD: u32 = 12;
/// Signed proposal streams for heights ahead sent per round by [`Attack::Floods`].
pub const FLOOD_HEIGHTS_AHEAD: u64 = 4;
/// Junk streams (random chunks, never finished) sent per round by [`Attack::Floods`].
pub const FLOOD_JUNK_STREAMS: usize = 16;
/// Parts per junk stream.
pub const FLOOD_JUNK_PARTS: usize = 8;
/// Bytes per junk chunk.
pub const FLOOD_JUNK_CHUNK_BYTES: usize = 1024;

/// The attacks this process carries out, and the seeded randomness they draw on.
pub struct Byzantine {
    attacks: HashSet<Attack>,
    rng: Mutex<ChaCha8Rng>,
}

static INSTALLED: OnceLock<Byzantine> = OnceLock::new();

/// Turns this process into a byzantine validator, before [`crate::run`]. Once only.
pub fn install(attacks: &[Attack], seed: u64) -> Result<(), String> {
    INSTALLED
        .set(Byzantine {
            attacks: attacks.iter().copied().collect(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        })
        .map_err(|_| "a byzantine behaviour is already installed".to_string())
}

/// The installed behaviour, when it includes `attack`.
pub(crate) fn active(attack: Attack) -> Option<&'static Byzantine> {
    INSTALLED.get().filter(|b| b.attacks.contains(&attack))
}

impl Byzantine {
    fn rng(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A seeded coin that lands heads with probability 1/2.
    pub(crate) fn coin(&self) -> bool {
        self.rng().next_u32() & 1 == 1
    }

    pub(crate) fn next_u64(&self) -> u64 {
        self.rng().next_u64()
    }

    pub(crate) fn bytes(&self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.rng().fill_bytes(&mut bytes);
        bytes
    }

    pub(crate) fn hash(&self) -> [u8; 32] {
        let mut hash = [0; 32];
        self.rng().fill_bytes(&mut hash);
        hash
    }
}

/// [`Attack::WrongVotes`]: half of this node's votes name a value nobody proposed.
pub(crate) fn tamper_vote(mut vote: Vote) -> Vote {
    if let Some(byzantine) = active(Attack::WrongVotes) {
        if byzantine.coin() {
            vote.value = NilOrVal::Val(BlockId(Hash32(byzantine.hash())));
            tracing::warn!(height = %vote.height, round = %vote.round, kind = ?vote.vote_type, "byzantine: voting for a value nobody proposed");
        }
    }
    vote
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_names_parse_back_and_unknown_ones_are_refused() {
        for attack in Attack::ALL {
            assert_eq!(attack.name().parse::<Attack>(), Ok(attack));
        }
        let error = "fork".parse::<Attack>().unwrap_err();
        assert!(error.contains("equivocate"), "{error}");
    }
}
