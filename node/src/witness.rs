//! A C2SP witness (c2sp.org/tlog-witness, tlog-cosignature), run by an auditor's node.
//!
//! `POST /witness/add-checkpoint` takes the old size, a consistency proof and a checkpoint.
//! The witness cosigns (Ed25519, type 0x04, timestamped) only a checkpoint of this network's
//! log signed by validators holding more than two thirds of the voting power, and only if
//! it is consistent with the last one it cosigned; it then records the new size and root,
//! on disk, before it answers. The check of the old size and the update are one step under
//! a lock, so two requests cannot roll the witness back.
//!
//! Answers follow the spec: 400 malformed, 404 another log, 403 not signed by a quorum (or
//! a bad signature by a validator's key), 409 with the witness's size when the old size is
//! not it, 422 when the proof does not hold. A validly signed checkpoint that fails the
//! consistency check may be evidence of a fork: the caller hands it to the node's
//! checkpoint gatherer, which keeps it if it contradicts the node's own log.

use std::path::PathBuf;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ledger::genesis::GenesisIndex;
use ledger::merkle;
use ledger::note::{self, Checkpoint, NoteError, NoteKey, SignedNote, NOTE_BYTES_MAX};
use ledger::types::PublicKey;
use serde::{Deserialize, Serialize};

/// The most consistency proof lines a request may carry (the spec's bound).
pub const CONSISTENCY_PROOF_LINES_MAX: usize = 63;
/// The largest `add-checkpoint` body: the note, the proof lines and the old size line.
pub const ADD_CHECKPOINT_BYTES_MAX: usize = NOTE_BYTES_MAX + CONSISTENCY_PROOF_LINES_MAX * 46 + 32;
/// The witness's record in the node's data directory.
pub const WITNESS_STATE_FILE: &str = "witness.json";

/// Why a checkpoint was not cosigned, with its HTTP meaning.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// 400.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// 404.
    #[error("this witness does not witness the log {0:?}")]
    UnknownLog(String),
    /// 403.
    #[error("not signed by validators holding more than two thirds of the voting power: {0}")]
    NotSigned(String),
    /// 409: the size this witness last cosigned.
    #[error("the old size is not this witness's; it last cosigned size {0}")]
    OldSize(u64),
    /// 422, and evidence: validly signed, inconsistent with what the witness cosigned.
    #[error("inconsistent with the checkpoint this witness cosigned: {0}")]
    Inconsistent(String),
    /// 422: the request contradicts itself (a proof with old size 0, a bad empty root).
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// 500.
    #[error("the witness cannot record its state: {0}")]
    Storage(String),
}

/// The witness's record: the last checkpoint it cosigned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cosigned {
    size: u64,
    #[serde(with = "hex_root")]
    root: [u8; 32],
}

mod hex_root {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(root: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(root))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a root is 32 bytes"))
    }
}

/// One `add-checkpoint` request, parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old: u64,
    pub proof: Vec<[u8; 32]>,
    pub note: String,
}

impl AddCheckpoint {
    /// Parses `old <size>\n`, up to 63 base64 hash lines, an empty line, then the note.
    pub fn parse(body: &str) -> Result<AddCheckpoint, WitnessError> {
        let bad = |m: &str| WitnessError::Malformed(m.to_owned());
        let (first, rest) = body
            .split_once('\n')
            .ok_or_else(|| bad("no old size line"))?;
        let old = first
            .strip_prefix("old ")
            .and_then(note::parse_decimal)
            .ok_or_else(|| {
                bad("the first line must be `old <size>` (decimal, no leading zeroes)")
            })?;
        let (proof, rest) =
            note::take_hash_lines(rest, CONSISTENCY_PROOF_LINES_MAX).map_err(bad)?;
        Ok(AddCheckpoint {
            old,
            proof,
            note: rest.to_owned(),
        })
    }

    /// The request body.
    pub fn to_text(&self) -> String {
        let mut text = format!("old {}\n", self.old);
        for hash in &self.proof {
            text.push_str(&BASE64.encode(hash));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.note);
        text
    }
}

/// A witness: its cosigning key, the log it witnesses, and its record.
pub struct Witness {
    name: String,
    key: SigningKey,
    origin: String,
    /// Where the record is kept; `None` keeps it in memory (tests).
    path: Option<PathBuf>,
    state: Mutex<Cosigned>,
}

impl Witness {
    /// The witness holding `key` (its cosignature key in genesis), with its record read
    /// from `path` if there is one.
    pub fn open(
        genesis: &GenesisIndex,
        key: SigningKey,
        path: Option<PathBuf>,
    ) -> Result<Witness, String> {
        let public = PublicKey(key.verifying_key().to_bytes());
        let entry = genesis
            .witnesses
            .iter()
            .find(|w| w.key.key == public)
            .ok_or_else(|| format!("witness key {public} is not in genesis"))?;
        let state = match &path {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            _ => Cosigned::default(),
        };
        Ok(Witness {
            name: entry.key.name.clone(),
            key,
            origin: genesis.genesis.log_origin.clone(),
            path,
            state: Mutex::new(state),
        })
    }

    /// The size of the last checkpoint cosigned.
    pub fn cosigned_size(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).size
    }

    /// The `add-checkpoint` call: checks the request and, if it holds, records the new
    /// checkpoint and returns the cosignature line(s), timestamped `now_s`.
    /// `validators(size)` gives the checkpoint keys of the set that signs a size (the
    /// witness's node follows the chain, governance changes included).
    pub fn add_checkpoint<V: std::ops::Deref<Target = Vec<(NoteKey, u64)>>>(
        &self,
        body: &str,
        now_s: u64,
        validators: impl Fn(u64) -> V,
    ) -> Result<String, WitnessError> {
        let request = AddCheckpoint::parse(body)?;
        let note =
            SignedNote::parse(&request.note).map_err(|e| WitnessError::Malformed(e.to_string()))?;
        let checkpoint =
            Checkpoint::parse(&note.text).map_err(|e| WitnessError::Malformed(e.to_string()))?;
        if checkpoint.origin != self.origin {
            return Err(WitnessError::UnknownLog(checkpoint.origin));
        }
        match note::verify_checkpoint(
            &request.note,
            &self.origin,
            &validators(checkpoint.size),
            &[],
        ) {
            Ok(_) => {}
            Err(error @ (NoteError::NoQuorum { .. } | NoteError::BadSignature { .. })) => {
                return Err(WitnessError::NotSigned(error.to_string()))
            }
            Err(error) => return Err(WitnessError::Malformed(error.to_string())),
        }
        if request.old > checkpoint.size {
            return Err(WitnessError::Malformed(
                "the old size is above the checkpoint's".into(),
            ));
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if request.old != state.size {
            return Err(WitnessError::OldSize(state.size));
        }
        check_consistency(&state, &request, &checkpoint)?;
        let next = Cosigned {
            size: checkpoint.size,
            root: checkpoint.root,
        };
        self.persist(&next)?;
        *state = next;
        Ok(note::cosign(&note.text, &self.name, &self.key, now_s).line())
    }

    /// Writes the record durably (a synced temporary file, renamed over the old one).
    fn persist(&self, state: &Cosigned) -> Result<(), WitnessError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let storage = |e: std::io::Error| WitnessError::Storage(format!("{}: {e}", path.display()));
        let text = serde_json::to_vec(state).map_err(|e| WitnessError::Storage(e.to_string()))?;
        let temporary = path.with_extension("json.tmp");
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&temporary).map_err(storage)?;
            file.write_all(&text).map_err(storage)?;
            file.sync_all().map_err(storage)?;
        }
        std::fs::rename(&temporary, path).map_err(storage)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(storage)?;
        }
        Ok(())
    }
}

/// The checkpoint must extend what was cosigned: by a valid consistency proof, or be the
/// same head.
fn check_consistency(
    state: &Cosigned,
    request: &AddCheckpoint,
    checkpoint: &Checkpoint,
) -> Result<(), WitnessError> {
    if checkpoint.size == 0 && checkpoint.root != merkle::empty_root() {
        return Err(WitnessError::Unprocessable(
            "a checkpoint of size 0 must have the empty tree's root".into(),
        ));
    }
    if request.old == 0 {
        return match request.proof.is_empty() {
            true => Ok(()),
            false => Err(WitnessError::Unprocessable(
                "a proof from size 0 must be empty".into(),
            )),
        };
    }
    if request.old == checkpoint.size {
        return match state.root == checkpoint.root {
            true => Ok(()),
            false => Err(WitnessError::Inconsistent(format!(
                "another root at size {}",
                checkpoint.size
            ))),
        };
    }
    merkle::verify_consistency(
        request.old,
        checkpoint.size,
        &state.root,
        &checkpoint.root,
        &request.proof,
    )
    .map_err(|e| WitnessError::Inconsistent(e.to_string()))
}
