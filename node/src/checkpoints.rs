//! Signed checkpoints of the transparency log (DESIGN §6, C2SP tlog-checkpoint and
//! signed-note), gathered outside consensus.
//!
//! Every block header already commits to the log's size and root under a commit
//! certificate; a checkpoint says the same in the form every transparency tool reads. After
//! a commit that [`signing_due`] picks (the first block in each [`CHECKPOINT_INTERVAL_MS`]
//! of block time, and the first that adds nothing once the log grew), a validator signs the
//! log's head with its checkpoint key (in genesis, apart from its consensus key) and pushes
//! the one-signature note to its peers (`POST /v1/checkpoint/signatures`,
//! consortium-authenticated like the relay). Every
//! node merges the validators' signatures per log size and keeps the note in its store; a
//! note is served once its signers hold more than two thirds of the voting power.
//!
//! A signature for a size this node has not reached waits in a small buffer until it does.
//! A validly signed checkpoint whose root differs from this node's log at that size is a
//! conflicting checkpoint: evidence that a validator signed a false head (or that this node
//! holds a different log). It is kept, counted and shown by `/v1/status`.
//!
//! The head after block `h` is signed, and its quorum counted, by the validator set that
//! decided `h`: when a governance change replaces the set, the gatherer follows it from
//! that height (a validator added later signs from then; one removed signs no more).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use ed25519_dalek::SigningKey;
use ledger::chain::ChainTip;
use ledger::error::LedgerError;
use ledger::genesis::GenesisIndex;
use ledger::note::{self, Checkpoint, NoteError, NoteKey, SignedNote};
use ledger::types::{PublicKey, TimeMs};
use ledger::{Ledger, Store};
use tracing::warn;

/// Block time between the log heads the validators sign while the log grows: at most two
/// checkpoints a second, however many heights a second the chain runs. Each signed head
/// costs every validator a note signature and a consortium request to each peer, and every
/// node the checks of those requests and notes, a merge under the ledger's lock and up to
/// two synced writes. Signed at every block, that was a tenth of the nodes' CPU at 200 tx/s
/// (47 heights a second) and grew with the number of heights, not of transactions
/// (docs/BENCHMARKS.md).
/// The witnesses are taken the latest signed checkpoint once a second
/// (`relay::WITNESS_PUSH_INTERVAL`), so a citizen's proof waits about as long as before.
/// Every validator must use the same interval (it decides which sizes they sign).
pub const CHECKPOINT_INTERVAL_MS: u64 = 500;

/// Signed notes for log sizes this node has not reached yet, kept in all.
pub const PENDING_NOTES_MAX: usize = 256;
/// Notes still gathering signatures kept in memory (the oldest sizes are dropped first).
pub const PARTIAL_NOTES_MAX: usize = 64;
/// Conflicting checkpoints kept as evidence (the first ones; later ones are counted only).
pub const CONFLICTS_KEPT_MAX: usize = 16;

/// Why a pushed checkpoint signature was not taken.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("the note carries no signature, or one by a key that is neither a validator's checkpoint key nor a witness's")]
    NoValidatorSignature,
    #[error("the log size is 0: there is nothing to sign")]
    EmptyLog,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What became of a pushed checkpoint signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Merged into this node's note for that size.
    Merged,
    /// Kept until this node's log reaches that size.
    Pending,
    /// Validly signed, but for another root than this node's log at that size.
    Conflict,
}

/// One validator set's checkpoint keys and powers.
struct SetKeys {
    version: u64,
    /// The log size before the set's first block.
    start_size: u64,
    keys: Arc<Vec<(NoteKey, u64)>>,
}

/// The checkpoint gatherer of one node.
pub struct Checkpoints {
    origin: String,
    /// Every validator set the chain has had, oldest first, with the log size before its
    /// first block: the checkpoint of a size is signed by the set that reached it.
    sets: RwLock<Arc<Vec<SetKeys>>>,
    /// The witnesses' cosignature keys: their cosignatures are merged into served notes.
    witnesses: Vec<NoteKey>,
    /// This validator's checkpoint key: it signs while the key is in the set.
    signer: Option<SigningKey>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The largest log size this node has signed.
    signed_through: u64,
    /// One-signature notes by log size, for sizes beyond this node's log.
    pending: BTreeMap<u64, Vec<SignedNote>>,
    /// Notes still gathering signatures, by log size (written to the store at a quorum).
    partial: BTreeMap<u64, SignedNote>,
    pending_count: usize,
    /// Conflicting signed checkpoints, as served text.
    conflicts: Vec<String>,
    conflicts_seen: u64,
    /// The largest log size whose kept note carries a witness's cosignature as well as a
    /// quorum (since this node started).
    cosigned_through: u64,
}

/// A pushed note that [`Checkpoints::check`] passed (only it makes one).
#[derive(Debug)]
pub struct CheckedNote {
    note: SignedNote,
    size: u64,
}

/// The chain's head as the checkpoint cadence reads it: a block's time and the log's size
/// after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub time_ms: TimeMs,
    pub log_size: u64,
}

impl Head {
    pub fn of(tip: &ChainTip) -> Head {
        Head {
            time_ms: tip.time_ms,
            log_size: tip.log.size(),
        }
    }
}

/// Whether validators sign the log's head after the block that moved the head from `before`
/// to `after`: when the block opens a new interval of [`CHECKPOINT_INTERVAL_MS`] block time,
/// or adds nothing to the log (the log has gone quiet, so its last growth is signed without
/// waiting for a block in the next interval: an idle chain still makes a block every
/// `idle_block_interval_ms`). Decided from the chain alone, so every validator signs the
/// same sizes and their signatures merge into one note; a size already signed is not
/// signed again ([`Checkpoints::after_commit`]).
pub fn signing_due(before: Head, after: Head) -> bool {
    debug_assert!(after.time_ms > before.time_ms, "block times increase");
    debug_assert!(after.log_size >= before.log_size, "the log only grows");
    after.time_ms / CHECKPOINT_INTERVAL_MS > before.time_ms / CHECKPOINT_INTERVAL_MS
        || after.log_size == before.log_size
}

impl Checkpoints {
    /// A gatherer for the network of `genesis`; `signer` is a validator's checkpoint key.
    pub fn new(genesis: &GenesisIndex, signer: Option<SigningKey>) -> Checkpoints {
        let validators: Vec<(NoteKey, u64)> = genesis
            .validators
            .iter()
            .map(|v| (v.checkpoint_key.clone(), v.power))
            .collect();
        if let Some(key) = &signer {
            let public = PublicKey(key.verifying_key().to_bytes());
            if !validators.iter().any(|(k, _)| k.key == public) {
                warn!(key = %public, "the checkpoint key is not in genesis's validator set; this node signs checkpoints only once a governance change adds it");
            }
        }
        Checkpoints {
            origin: genesis.genesis.log_origin.clone(),
            sets: RwLock::new(Arc::new(vec![SetKeys {
                version: 0,
                start_size: 0,
                keys: Arc::new(validators),
            }])),
            witnesses: genesis.witness_keys(),
            signer,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The note keys and voting powers of the validators that sign the checkpoint of
    /// `size` (the set that decided the block reaching it), as far as this node has
    /// followed the chain.
    pub fn validators(&self, size: u64) -> Arc<Vec<(NoteKey, u64)>> {
        let sets = self.sets.read().unwrap_or_else(|e| e.into_inner()).clone();
        let set = sets
            .iter()
            .rev()
            .find(|set| set.start_size < size)
            .or_else(|| sets.first())
            .expect("the genesis set is always kept");
        set.keys.clone()
    }

    /// Follows the ledger's validator sets (after each commit, and at start): one state
    /// read unless a governance change made a new set.
    pub fn follow<S: Store>(&self, ledger: &Ledger<S>) -> Result<(), LedgerError> {
        let newest = ledger.validator_set()?.version;
        let known = self.sets.read().unwrap_or_else(|e| e.into_inner()).clone();
        if known.last().map(|set| set.version) == Some(newest) {
            return Ok(());
        }
        let mut sets = Vec::new();
        for set in ledger.validator_sets()? {
            sets.push(SetKeys {
                version: set.version,
                start_size: ledger.log_size_before(set.from_height)?,
                keys: Arc::new(set.checkpoint_keys()?),
            });
        }
        *self.sets.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(sets);
        Ok(())
    }

    /// After a commit that moved the head from `before`: signs the new log head (a
    /// validator, when [`signing_due`] and the head is larger than any it signed) and merges
    /// the signatures that waited for it. Returns this node's one-signature note to push.
    pub fn after_commit<S: Store>(&self, ledger: &mut Ledger<S>, before: Head) -> Option<String> {
        let after = Head::of(ledger.tip());
        let size = after.log_size;
        let own = if signing_due(before, after) {
            self.sign_head(ledger, size)
        } else {
            None
        };
        let ready: Vec<SignedNote> = {
            let mut state = self.state();
            let later = state.pending.split_off(&(size + 1));
            let ready = std::mem::replace(&mut state.pending, later);
            let ready: Vec<SignedNote> = ready.into_values().flatten().collect();
            state.pending_count -= ready.len();
            ready
        };
        for note in ready.into_iter().chain(own.clone()) {
            if let Err(error) = self.take(ledger, note) {
                warn!(%error, "could not keep a checkpoint signature");
            }
        }
        own.map(|note| note.to_text())
    }

    fn sign_head<S: Store>(&self, ledger: &Ledger<S>, size: u64) -> Option<SignedNote> {
        let key = self.signer.as_ref()?;
        let public = PublicKey(key.verifying_key().to_bytes());
        let name = self
            .validators(size)
            .iter()
            .find(|(k, _)| k.key == public)
            .map(|(k, _)| k.name.clone())?;
        {
            let mut state = self.state();
            if size == 0 || size <= state.signed_through {
                return None;
            }
            state.signed_through = size;
        }
        let text = ledger.checkpoint_at(size).ok()?.text();
        let signature = note::sign(&text, &name, key);
        Some(SignedNote {
            text,
            signatures: vec![signature],
        })
    }

    /// Takes a pushed note: [`Checkpoints::check`], then [`Checkpoints::receive_checked`].
    pub fn receive<S: Store>(
        &self,
        ledger: &mut Ledger<S>,
        text: &str,
    ) -> Result<Received, CheckpointError> {
        let checked = self.check(text)?;
        self.receive_checked(ledger, checked)
    }

    /// Checks a pushed note without the ledger: a checkpoint of this log, of a size above 0,
    /// every signature on it a validator's or a witness's, and valid. A handler checks first
    /// and takes the ledger's lock only for [`Checkpoints::receive_checked`], so that no
    /// commit or read waits on signature checks.
    pub fn check(&self, text: &str) -> Result<CheckedNote, CheckpointError> {
        let note = SignedNote::parse(text)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        if checkpoint.origin != self.origin {
            return Err(NoteError::WrongOrigin {
                expected: self.origin.clone(),
                found: checkpoint.origin,
            }
            .into());
        }
        if checkpoint.size == 0 {
            return Err(CheckpointError::EmptyLog);
        }
        self.check_signatures(&note, checkpoint.size)?;
        Ok(CheckedNote {
            note,
            size: checkpoint.size,
        })
    }

    /// Merges a checked note, keeps it for later (a size this node has not reached), or
    /// keeps it as a conflict.
    pub fn receive_checked<S: Store>(
        &self,
        ledger: &mut Ledger<S>,
        checked: CheckedNote,
    ) -> Result<Received, CheckpointError> {
        if checked.size > ledger.tip().log.size() {
            self.keep_pending(checked.size, checked.note);
            return Ok(Received::Pending);
        }
        self.take(ledger, checked.note)
    }

    /// Every signature must be by a validator's checkpoint key or a witness's cosignature
    /// key, and verify.
    fn check_signatures(&self, note: &SignedNote, size: u64) -> Result<(), CheckpointError> {
        if note.signatures.is_empty() {
            return Err(CheckpointError::NoValidatorSignature);
        }
        let validators = self.validators(size);
        for signature in &note.signatures {
            let key = validators
                .iter()
                .map(|(k, _)| k)
                .chain(&self.witnesses)
                .find(|k| k.name == signature.name && k.key_id() == signature.key_id)
                .ok_or(CheckpointError::NoValidatorSignature)?;
            if !note::verify_signature(&note.text, key, signature) {
                return Err(NoteError::BadSignature {
                    name: key.name.clone(),
                }
                .into());
            }
        }
        Ok(())
    }

    fn keep_pending(&self, size: u64, note: SignedNote) {
        let mut state = self.state();
        if state.pending_count >= PENDING_NOTES_MAX {
            // Drop the farthest size: the nearest ones are needed first.
            let farthest = *state.pending.keys().next_back().expect("count > 0");
            if farthest <= size {
                return;
            }
            let dropped = state.pending.remove(&farthest).map_or(0, |v| v.len());
            state.pending_count -= dropped;
        }
        state.pending.entry(size).or_default().push(note);
        state.pending_count += 1;
    }

    /// Merges a checked note for a committed size into the kept one, or records a conflict.
    /// Signatures gather in memory; the note is written to the store (a synced write) when
    /// it first reaches a quorum and again when every validator has signed, not at each
    /// signature.
    fn take<S: Store>(
        &self,
        ledger: &mut Ledger<S>,
        note: SignedNote,
    ) -> Result<Received, CheckpointError> {
        let checkpoint = Checkpoint::parse(&note.text)?;
        let ours = ledger.checkpoint_at(checkpoint.size)?;
        if ours != checkpoint {
            self.record_conflict(&note);
            return Ok(Received::Conflict);
        }
        let validators = self.validators(checkpoint.size);
        let mut state = self.state();
        let mut kept = match state.partial.remove(&checkpoint.size) {
            Some(kept) => kept,
            None => match ledger.checkpoint_note(checkpoint.size)? {
                Some(text) => SignedNote::parse(&text)?,
                None => SignedNote {
                    text: ours.text(),
                    signatures: Vec::new(),
                },
            },
        };
        let had_quorum = has_quorum(&validators, &kept);
        let (mut added, mut cosigned) = (false, false);
        for signature in note.signatures {
            if !kept
                .signatures
                .iter()
                .any(|s| s.name == signature.name && s.key_id == signature.key_id)
            {
                cosigned |= self.witnesses.iter().any(|w| w.name == signature.name);
                added = true;
                kept.signatures.push(signature);
            }
        }
        let complete = validator_signatures(&validators, &kept) == validators.len();
        let quorum = has_quorum(&validators, &kept);
        if added && quorum && (!had_quorum || complete || cosigned) {
            kept.signatures.sort_by_key(|s| s.key_id);
            let latest = ledger
                .latest_checkpoint_size()?
                .is_none_or(|latest| checkpoint.size > latest);
            ledger.keep_checkpoint_note(checkpoint.size, &kept.to_text(), latest)?;
            if self.is_cosigned(&kept) {
                state.cosigned_through = state.cosigned_through.max(checkpoint.size);
            }
        }
        if !complete {
            state.partial.insert(checkpoint.size, kept);
            while state.partial.len() > PARTIAL_NOTES_MAX {
                state.partial.pop_first();
            }
        }
        Ok(Received::Merged)
    }

    /// Whether a witness of this network cosigned `note` (every signature on it was
    /// verified before it was merged).
    fn is_cosigned(&self, note: &SignedNote) -> bool {
        self.witnesses.iter().any(|w| note.by(w).next().is_some())
    }

    /// The checkpoint a proof for a citizen should name: the latest one a witness cosigned
    /// when the network has witnesses (its policy requires one), else the latest.
    pub fn for_proofs<S: Store>(&self, ledger: &Ledger<S>) -> Result<Option<String>, LedgerError> {
        let cosigned = self.state().cosigned_through;
        match (self.witnesses.is_empty(), cosigned) {
            (false, size) if size > 0 => self.served(ledger, Some(size)),
            _ => self.served(ledger, None),
        }
    }

    fn record_conflict(&self, note: &SignedNote) {
        self.record_evidence(note.to_text());
    }

    /// Keeps a validly signed checkpoint that contradicts this log as evidence.
    fn record_evidence(&self, text: String) {
        warn!(note = %text.escape_debug(), "conflicting checkpoint: validly signed, but not this log's head at that size");
        let mut state = self.state();
        state.conflicts_seen += 1;
        if state.conflicts.len() < CONFLICTS_KEPT_MAX && !state.conflicts.contains(&text) {
            state.conflicts.push(text);
        }
    }

    /// Conflicting checkpoints seen (how many in all, and the first ones kept).
    pub fn conflicts(&self) -> (u64, Vec<String>) {
        let state = self.state();
        (state.conflicts_seen, state.conflicts.clone())
    }

    /// The signed checkpoint at `size` (or the latest) if it carries a quorum.
    pub fn served<S: Store>(
        &self,
        ledger: &Ledger<S>,
        size: Option<u64>,
    ) -> Result<Option<String>, LedgerError> {
        let size = match size {
            Some(size) => size,
            None => match ledger.latest_checkpoint_size()? {
                Some(size) => size,
                None => return Ok(None),
            },
        };
        let Some(text) = ledger.checkpoint_note(size)? else {
            return Ok(None);
        };
        let verified =
            note::verify_checkpoint(&text, &self.origin, &self.validators(size), &self.witnesses);
        Ok(verified.is_ok().then_some(text))
    }
}

/// How many of `validators` signed `note`.
fn validator_signatures(validators: &[(NoteKey, u64)], note: &SignedNote) -> usize {
    validators
        .iter()
        .filter(|(key, _)| signed_by(note, key))
        .count()
}

/// Whether the validators that signed `note` hold more than two thirds of the voting
/// power. Every signature on it was verified before it was merged.
fn has_quorum(validators: &[(NoteKey, u64)], note: &SignedNote) -> bool {
    let total: u64 = validators.iter().map(|(_, power)| power).sum();
    let signed: u64 = validators
        .iter()
        .filter(|(key, _)| signed_by(note, key))
        .map(|(_, power)| power)
        .sum();
    signed.saturating_mul(3) > total.saturating_mul(2)
}

fn signed_by(note: &SignedNote, key: &NoteKey) -> bool {
    let id = key.key_id();
    note.signatures
        .iter()
        .any(|s| s.name == key.name && s.key_id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(time_ms: TimeMs, log_size: u64) -> Head {
        Head { time_ms, log_size }
    }

    #[test]
    fn a_growing_log_is_signed_at_the_first_block_of_each_interval() {
        let start = 10 * CHECKPOINT_INTERVAL_MS;
        let mut before = head(start, 100);
        let mut due_at = Vec::new();
        // A block every 20 ms, each adding 30 leaves, for four intervals.
        for block in 1..=(4 * CHECKPOINT_INTERVAL_MS / 20) {
            let after = head(start + 20 * block, before.log_size + 30);
            if signing_due(before, after) {
                due_at.push(after.time_ms - start);
            }
            before = after;
        }
        let interval = CHECKPOINT_INTERVAL_MS;
        assert_eq!(
            due_at,
            vec![interval, 2 * interval, 3 * interval, 4 * interval]
        );
    }

    #[test]
    fn the_first_block_that_adds_nothing_is_signed_within_the_interval() {
        let start = 10 * CHECKPOINT_INTERVAL_MS;
        let grew = head(start + 20, 130);
        assert!(!signing_due(head(start, 100), grew));
        assert!(signing_due(grew, head(start + 40, 130)));
    }

    #[test]
    fn a_slow_trickle_is_signed_at_every_block() {
        let mut before = head(1_000, 1);
        for block in 1..=5 {
            let after = head(
                1_000 + block * 2 * CHECKPOINT_INTERVAL_MS,
                before.log_size + 1,
            );
            assert!(signing_due(before, after), "block {block}");
            before = after;
        }
    }
}
