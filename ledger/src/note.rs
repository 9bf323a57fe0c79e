//! Signed checkpoints of the transparency log, in the C2SP formats other tools read:
//!
//! - a *checkpoint* (c2sp.org/tlog-checkpoint) is the note text `origin\nsize\nbase64(root)\n`
//!   (plus optional extension lines);
//! - a *signed note* (c2sp.org/signed-note) is that text, a blank line, and one line
//!   `— <key name> base64(key ID ‖ signature)` per signature; validators sign with Ed25519
//!   (signature type 0x01) over the note text;
//! - a *cosignature* (c2sp.org/tlog-cosignature, type 0x04) is a witness's timestamped
//!   Ed25519 signature over `cosignature/v1\ntime <t>\n` followed by the checkpoint text;
//! - a *verifier key* (vkey) is `<name>+<hex key ID>+base64(type ‖ public key)`.
//!
//! Parsing is strict (the formats allow one spelling of each value) and bounded
//! ([`NOTE_BYTES_MAX`], [`NOTE_SIGNATURES_MAX`]). No IO, no clock: a verifier passes in
//! what it trusts.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::types::{PublicKey, SignatureBytes};

/// The largest signed note accepted, in bytes: a checkpoint with a few extension lines and
/// many more signatures than any network here has validators and witnesses.
pub const NOTE_BYTES_MAX: usize = 64 * 1024;
/// The most signature lines accepted on one note (the spec asks for at least 16).
pub const NOTE_SIGNATURES_MAX: usize = 256;
/// The longest key name or origin, in bytes.
pub const NOTE_NAME_BYTES_MAX: usize = 256;
/// Signature type of Ed25519 note signatures (c2sp.org/signed-note).
pub const ALGORITHM_ED25519: u8 = 0x01;
/// Signature type of timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature).
pub const ALGORITHM_COSIGNATURE_V1: u8 = 0x04;

/// What is wrong with a note, a checkpoint or a verifier key.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NoteError {
    #[error("the note is {bytes} bytes; at most {limit} are accepted")]
    TooLarge { bytes: usize, limit: usize },
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    #[error("malformed verifier key: {0}")]
    MalformedKey(String),
    #[error("the signature of {name} does not verify")]
    BadSignature { name: String },
    #[error("signatures of {signed} of {total} voting power; more than two thirds are needed")]
    NoQuorum { signed: u64, total: u64 },
    #[error("the checkpoint is for log {found:?}, not {expected:?}")]
    WrongOrigin { expected: String, found: String },
}

/// A key name or log origin: non-empty, bounded, no Unicode spaces and no `+`
/// (c2sp.org/signed-note).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > NOTE_NAME_BYTES_MAX {
        return Err(format!("a name must be 1 to {NOTE_NAME_BYTES_MAX} bytes"));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(format!(
            "the name {name:?} has a space, a control character or a '+'"
        ));
    }
    Ok(())
}

/// `SHA-256(name ‖ 0x0A ‖ algorithm ‖ public key)[:4]`, the key ID of c2sp.org/signed-note.
pub fn key_id(name: &str, algorithm: u8, key: &PublicKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', algorithm])
        .chain_update(key.0)
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A note verifier key: who signs (name), with which algorithm and Ed25519 key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteKey {
    pub name: String,
    pub algorithm: u8,
    pub key: PublicKey,
}

impl NoteKey {
    /// A validator's checkpoint-signing key (type 0x01).
    pub fn ed25519(name: &str, key: PublicKey) -> Result<NoteKey, NoteError> {
        check_name(name).map_err(NoteError::MalformedKey)?;
        Ok(NoteKey {
            name: name.to_owned(),
            algorithm: ALGORITHM_ED25519,
            key,
        })
    }

    /// A witness's cosigning key (type 0x04).
    pub fn cosigner(name: &str, key: PublicKey) -> Result<NoteKey, NoteError> {
        let mut note_key = NoteKey::ed25519(name, key)?;
        note_key.algorithm = ALGORITHM_COSIGNATURE_V1;
        Ok(note_key)
    }

    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, self.algorithm, &self.key)
    }

    /// `<name>+<hex key ID>+base64(type ‖ key)`.
    pub fn vkey(&self) -> String {
        let mut material = vec![self.algorithm];
        material.extend_from_slice(&self.key.0);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id()),
            BASE64.encode(material)
        )
    }

    /// Parses a vkey of type 0x01 or 0x04 and checks that its key ID is the computed one.
    pub fn parse(vkey: &str) -> Result<NoteKey, NoteError> {
        let bad = |m: &str| NoteError::MalformedKey(m.to_owned());
        // The name has no '+' and the key ID is hex; the base64 may contain '+'.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name+keyid+base64"));
        };
        check_name(name).map_err(NoteError::MalformedKey)?;
        let material = decode_base64(material).ok_or_else(|| bad("the key is not base64"))?;
        let (&algorithm, key) = material.split_first().ok_or_else(|| bad("empty key"))?;
        if algorithm != ALGORITHM_ED25519 && algorithm != ALGORITHM_COSIGNATURE_V1 {
            return Err(bad(
                "only Ed25519 (0x01) and cosignature (0x04) keys are supported",
            ));
        }
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let note_key = NoteKey {
            name: name.to_owned(),
            algorithm,
            key: PublicKey(key),
        };
        if id != hex::encode(note_key.key_id()) {
            return Err(bad("the key ID does not match the name and key"));
        }
        Ok(note_key)
    }
}

/// Decodes standard base64, accepting only the canonical spelling.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = BASE64.decode(text).ok()?;
    (BASE64.encode(&bytes) == text).then_some(bytes)
}

/// The signed head of the log at one size (c2sp.org/tlog-checkpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
    /// The totals root at this size ([`crate::totals`]), as the extension line
    /// `bansos-totals <base64>`. This log's validators always write it.
    pub totals: Option<[u8; 32]>,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n`, then `bansos-totals base64(root)\n`
    /// when the totals root is given.
    pub fn text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        if let Some(totals) = &self.totals {
            text.push_str(crate::totals::CHECKPOINT_LINE_PREFIX);
            text.push_str(&BASE64.encode(totals));
            text.push('\n');
        }
        text
    }

    /// Parses a note text. The one extension line this log writes (the totals root) is
    /// read; any other is refused, since a verifier here should not be asked to trust text
    /// it cannot interpret.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |m: &str| NoteError::MalformedCheckpoint(m.to_owned());
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the text must end in a newline"))?
            .split('\n')
            .collect();
        let (origin, size, root, totals) = match lines[..] {
            [origin, size, root] => (origin, size, root, None),
            [origin, size, root, extension] => {
                let totals = extension
                    .strip_prefix(crate::totals::CHECKPOINT_LINE_PREFIX)
                    .and_then(decode_base64)
                    .and_then(|r| <[u8; 32]>::try_from(r).ok())
                    .ok_or_else(|| bad("the only extension line is `bansos-totals <base64>`"))?;
                (origin, size, root, Some(totals))
            }
            _ => return Err(bad("expected origin, size, root and a totals line")),
        };
        check_name(origin)
            .map_err(|_| bad("the origin must be a non-empty name without spaces"))?;
        let size: u64 = size.parse().map_err(|_| bad("the size is not a number"))?;
        if size.to_string() != lines[1] {
            return Err(bad("the size must be decimal without leading zeroes"));
        }
        let root: [u8; 32] = decode_base64(root)
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("the root is not a base64 SHA-256 hash"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            totals,
        })
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    /// The signature after the key ID (64 bytes for 0x01, 72 for 0x04).
    pub bytes: Vec<u8>,
}

impl NoteSignature {
    /// `— <name> base64(key ID ‖ bytes)\n`.
    pub fn line(&self) -> String {
        let mut blob = self.key_id.to_vec();
        blob.extend_from_slice(&self.bytes);
        format!("\u{2014} {} {}\n", self.name, BASE64.encode(blob))
    }

    fn parse(line: &str) -> Result<NoteSignature, NoteError> {
        let bad = |m: &str| NoteError::Malformed(m.to_owned());
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or_else(|| bad("a signature line starts with an em dash and a space"))?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or_else(|| bad("a signature line is '— name signature'"))?;
        check_name(name).map_err(NoteError::Malformed)?;
        let blob = decode_base64(blob).ok_or_else(|| bad("the signature is not base64"))?;
        if blob.len() < 5 {
            return Err(bad("a signature is a key ID and at least one byte"));
        }
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: [blob[0], blob[1], blob[2], blob[3]],
            bytes: blob[4..].to_vec(),
        })
    }
}

/// A note text and its signatures (c2sp.org/signed-note).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// The note as served: text, blank line, signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.line());
        }
        out
    }

    /// Parses a signed note, strictly and within the limits.
    pub fn parse(note: &str) -> Result<SignedNote, NoteError> {
        let bad = |m: &str| NoteError::Malformed(m.to_owned());
        if note.len() > NOTE_BYTES_MAX {
            return Err(NoteError::TooLarge {
                bytes: note.len(),
                limit: NOTE_BYTES_MAX,
            });
        }
        if note.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(bad("control characters other than newline"));
        }
        // The text ends at the last blank line.
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = &note[..split + 1];
        let block = note[split + 2..]
            .strip_suffix('\n')
            .ok_or_else(|| bad("the note must end in a newline"))?;
        let signatures = block
            .split('\n')
            .map(NoteSignature::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if signatures.len() > NOTE_SIGNATURES_MAX {
            return Err(bad("too many signatures"));
        }
        Ok(SignedNote {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signatures by `key` (same name and key ID); a valid note has at most one.
    pub fn by<'a>(&'a self, key: &'a NoteKey) -> impl Iterator<Item = &'a NoteSignature> + 'a {
        let id = key.key_id();
        self.signatures
            .iter()
            .filter(move |s| s.name == key.name && s.key_id == id)
    }
}

/// The checkpoint a signed note carries (its signatures not checked).
pub fn checkpoint_of(note: &str) -> Result<Checkpoint, NoteError> {
    Checkpoint::parse(&SignedNote::parse(note)?.text)
}

/// A decimal as C2SP text formats write sizes and indexes: ASCII digits, no leading zeroes
/// (except `0` itself), within u64.
pub fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = text == "0" || (!text.starts_with('0') && !text.is_empty());
    if !canonical || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Reads lines of base64 SHA-256 hashes up to an empty line (a proof in C2SP tlog-witness
/// and tlog-proof bodies), at most `max` of them; returns them and what follows the empty
/// line, or why not.
pub fn take_hash_lines(text: &str, max: usize) -> Result<(Vec<[u8; 32]>, &str), &'static str> {
    let mut hashes = Vec::new();
    let mut rest = text;
    loop {
        let (line, after) = rest
            .split_once('\n')
            .ok_or("no empty line before the checkpoint")?;
        rest = after;
        if line.is_empty() {
            return Ok((hashes, rest));
        }
        if hashes.len() == max {
            return Err("too many proof lines");
        }
        let hash = BASE64
            .decode(line)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or("a proof line is not a base64 SHA-256 hash")?;
        hashes.push(hash);
    }
}

/// Signs a checkpoint text as `key`'s note signature (type 0x01).
pub fn sign(text: &str, name: &str, key: &SigningKey) -> NoteSignature {
    let public = PublicKey(key.verifying_key().to_bytes());
    NoteSignature {
        name: name.to_owned(),
        key_id: key_id(name, ALGORITHM_ED25519, &public),
        bytes: key.sign(text.as_bytes()).to_bytes().to_vec(),
    }
}

/// The message a cosigner signs: `cosignature/v1\ntime <t>\n` and the checkpoint text.
pub fn cosigned_message(text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

/// Cosigns a checkpoint text at `timestamp` (POSIX seconds), as a witness (type 0x04).
pub fn cosign(text: &str, name: &str, key: &SigningKey, timestamp: u64) -> NoteSignature {
    let public = PublicKey(key.verifying_key().to_bytes());
    let mut bytes = timestamp.to_be_bytes().to_vec();
    bytes.extend_from_slice(&key.sign(&cosigned_message(text, timestamp)).to_bytes());
    NoteSignature {
        name: name.to_owned(),
        key_id: key_id(name, ALGORITHM_COSIGNATURE_V1, &public),
        bytes,
    }
}

/// Whether `signature` is `key`'s valid signature (or cosignature) over `text`.
pub fn verify_signature(text: &str, key: &NoteKey, signature: &NoteSignature) -> bool {
    if signature.name != key.name || signature.key_id != key.key_id() {
        return false;
    }
    match key.algorithm {
        ALGORITHM_ED25519 => match <[u8; 64]>::try_from(signature.bytes.as_slice()) {
            Ok(sig) => crate::signature::verify(&key.key, text.as_bytes(), &SignatureBytes(sig)),
            Err(_) => false,
        },
        ALGORITHM_COSIGNATURE_V1 => {
            let Ok(bytes) = <[u8; 72]>::try_from(signature.bytes.as_slice()) else {
                return false;
            };
            let timestamp = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
            let sig: [u8; 64] = bytes[8..].try_into().expect("64 bytes");
            timestamp < 1 << 63
                && crate::signature::verify(
                    &key.key,
                    &cosigned_message(text, timestamp),
                    &SignatureBytes(sig),
                )
        }
        _ => false,
    }
}

/// A checkpoint whose signers passed a verifier's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub checkpoint: Checkpoint,
    /// Names of the validators whose signatures verified.
    pub signers: Vec<String>,
    /// Names of the witnesses whose cosignatures verified.
    pub cosigners: Vec<String>,
}

/// Checks a signed checkpoint for log `origin` against the validators' keys and voting
/// powers: more than two thirds of the power must have signed validly, and a signature by
/// a known key that does not verify rejects the note (c2sp.org/signed-note). Cosignatures
/// by the listed witnesses are verified and reported; unknown signatures are ignored.
pub fn verify_checkpoint(
    note: &str,
    origin: &str,
    validators: &[(NoteKey, u64)],
    witnesses: &[NoteKey],
) -> Result<VerifiedCheckpoint, NoteError> {
    let note = SignedNote::parse(note)?;
    let checkpoint = Checkpoint::parse(&note.text)?;
    if checkpoint.origin != origin {
        return Err(NoteError::WrongOrigin {
            expected: origin.to_owned(),
            found: checkpoint.origin,
        });
    }
    let total: u64 = validators.iter().map(|(_, power)| *power).sum();
    let mut signed = 0u64;
    let mut signers = Vec::new();
    for (key, power) in validators {
        if let Some(signature) = note.by(key).next() {
            if !verify_signature(&note.text, key, signature) {
                return Err(NoteError::BadSignature {
                    name: key.name.clone(),
                });
            }
            signed += power;
            signers.push(key.name.clone());
        }
    }
    if signed.saturating_mul(3) <= total.saturating_mul(2) {
        return Err(NoteError::NoQuorum { signed, total });
    }
    let mut cosigners = Vec::new();
    for key in witnesses {
        if let Some(signature) = note.by(key).next() {
            if !verify_signature(&note.text, key, signature) {
                return Err(NoteError::BadSignature {
                    name: key.name.clone(),
                });
            }
            cosigners.push(key.name.clone());
        }
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        signers,
        cosigners,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn public(key: &SigningKey) -> PublicKey {
        PublicKey(key.verifying_key().to_bytes())
    }

    /// The example of c2sp.org/signed-note: a vkey and a note it verifies.
    #[test]
    fn the_specs_example_note_verifies_with_its_vkey() {
        let vkey = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
        let key = NoteKey::parse(vkey).unwrap();
        assert_eq!(key.vkey(), vkey);
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let parsed = SignedNote::parse(note).unwrap();
        assert_eq!(parsed.to_text(), note);
        assert!(verify_signature(&parsed.text, &key, &parsed.signatures[0]));
        let mut tampered = parsed.clone();
        tampered.text = "This is an example message!\n".into();
        assert!(!verify_signature(
            &tampered.text,
            &key,
            &tampered.signatures[0]
        ));
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "bansos.example/test".into(),
            size: 20852163,
            root: [7; 32],
            totals: None,
        }
    }

    #[test]
    fn a_checkpoint_round_trips_and_only_its_one_spelling_parses() {
        let text = checkpoint().text();
        assert_eq!(Checkpoint::parse(&text).unwrap(), checkpoint());
        let with_totals = Checkpoint {
            totals: Some([9; 32]),
            ..checkpoint()
        };
        assert!(with_totals
            .text()
            .ends_with(&format!("\nbansos-totals {}\n", BASE64.encode([9; 32]))));
        assert_eq!(Checkpoint::parse(&with_totals.text()).unwrap(), with_totals);
        for bad in [
            text.replace("20852163", "020852163"),
            text.replace("20852163", "-1"),
            text.trim_end().to_owned(),
            format!("{text}extension\n"),
            format!("{text}bansos-totals AAAA\n"),
            format!(
                "{text}bansos-totals {}\nbansos-totals {}\n",
                BASE64.encode([1; 32]),
                BASE64.encode([1; 32])
            ),
            text.replace("bansos.example/test", "bansos example"),
            text.replace('=', ""),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
    }

    fn validators(n: u8) -> (Vec<SigningKey>, Vec<(NoteKey, u64)>) {
        let keys: Vec<SigningKey> = (1..=n).map(key).collect();
        let set = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (NoteKey::ed25519(&format!("v{i}"), public(k)).unwrap(), 1))
            .collect();
        (keys, set)
    }

    fn signed_by(keys: &[SigningKey], which: &[usize]) -> SignedNote {
        let text = checkpoint().text();
        SignedNote {
            signatures: which
                .iter()
                .map(|&i| sign(&text, &format!("v{i}"), &keys[i]))
                .collect(),
            text,
        }
    }

    #[test]
    fn a_checkpoint_needs_more_than_two_thirds_of_the_power() {
        let (keys, set) = validators(4);
        let origin = "bansos.example/test";
        let two = signed_by(&keys, &[0, 1]).to_text();
        assert_eq!(
            verify_checkpoint(&two, origin, &set, &[]),
            Err(NoteError::NoQuorum {
                signed: 2,
                total: 4
            })
        );
        let three = signed_by(&keys, &[0, 2, 3]).to_text();
        let verified = verify_checkpoint(&three, origin, &set, &[]).unwrap();
        assert_eq!(verified.signers, ["v0", "v2", "v3"]);
        assert_eq!(
            verify_checkpoint(&three, "another/log", &set, &[]),
            Err(NoteError::WrongOrigin {
                expected: "another/log".into(),
                found: origin.into()
            })
        );
        // A known key's bad signature rejects the note; a stranger's is ignored.
        let mut forged = signed_by(&keys, &[0, 1, 2]);
        forged.signatures[1].bytes[3] ^= 1;
        assert_eq!(
            verify_checkpoint(&forged.to_text(), origin, &set, &[]),
            Err(NoteError::BadSignature { name: "v1".into() })
        );
        let mut with_stranger = signed_by(&keys, &[0, 1, 2]);
        with_stranger
            .signatures
            .push(sign(&with_stranger.text, "stranger", &key(99)));
        assert!(verify_checkpoint(&with_stranger.to_text(), origin, &set, &[]).is_ok());
        // One key cannot count twice under another name.
        let mut renamed = signed_by(&keys, &[0, 1]);
        renamed.signatures.push(sign(&renamed.text, "v3", &keys[0]));
        assert!(verify_checkpoint(&renamed.to_text(), origin, &set, &[]).is_err());
    }

    #[test]
    fn cosignatures_are_timestamped_and_bound_to_the_text() {
        let (keys, set) = validators(4);
        let witness = key(50);
        let witness_key = NoteKey::cosigner("bpk.example/witness", public(&witness)).unwrap();
        let mut note = signed_by(&keys, &[0, 1, 2]);
        note.signatures.push(cosign(
            &note.text,
            &witness_key.name,
            &witness,
            1_700_000_000,
        ));
        let verified = verify_checkpoint(
            &note.to_text(),
            "bansos.example/test",
            &set,
            std::slice::from_ref(&witness_key),
        )
        .unwrap();
        assert_eq!(verified.cosigners, ["bpk.example/witness"]);
        let signature = note.signatures.last().unwrap().clone();
        assert_eq!(signature.bytes[..8], 1_700_000_000u64.to_be_bytes());
        let mut later = signature.clone();
        later.bytes[7] ^= 1;
        assert!(!verify_signature(&note.text, &witness_key, &later));
        // The cosigning key's ID differs from the same key's note-signature ID.
        let as_signer = NoteKey::ed25519("bpk.example/witness", public(&witness)).unwrap();
        assert_ne!(as_signer.key_id(), witness_key.key_id());
        assert!(!verify_signature(&note.text, &as_signer, &signature));
    }

    #[test]
    fn a_vkey_whose_base64_holds_a_plus_parses() {
        let with_plus = (0u8..=255)
            .map(|seed| NoteKey::ed25519("a.example/k", public(&key(seed))).unwrap())
            .find(|k| k.vkey().matches('+').count() > 2)
            .expect("some key's base64 has a '+'");
        assert_eq!(NoteKey::parse(&with_plus.vkey()).unwrap(), with_plus);
    }

    #[test]
    fn malformed_notes_and_keys_are_refused() {
        let good = signed_by(&validators(1).0, &[0]).to_text();
        for bad in [
            good.replace("\n\n", "\n"),
            good.replace('\u{2014}', "-"),
            good.trim_end().to_owned(),
            good.replace("v0 ", "v0  "),
            format!("{good}\u{7}"),
            "x".repeat(NOTE_BYTES_MAX + 1),
        ] {
            assert!(SignedNote::parse(&bad).is_err(), "{bad:?}");
        }
        let vkey = NoteKey::ed25519("a.example/k", public(&key(3)))
            .unwrap()
            .vkey();
        for bad in [
            vkey.replacen("a.example/k", "a example", 1),
            vkey.replacen('+', "", 1),
            format!("{vkey}+extra"),
            vkey.replace(&vkey[12..20], "00000000"),
            format!("{}A", vkey),
        ] {
            assert!(NoteKey::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
