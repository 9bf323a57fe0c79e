//! C2SP tlog-policy files and tlog-proof bundles: what a citizen's phone or an auditor's
//! laptop needs to check, offline, that a transaction is in the log.
//!
//! A policy (c2sp.org/tlog-policy) lists the log keys, the witnesses and the witness quorum.
//! Standard tools accept a checkpoint signed by any one log key; this network's log keys
//! are its validators, and a Bansos verifier requires more: the `# bansos-log-threshold K`
//! line (a comment to other tools) says how many distinct log keys must have signed — at
//! least K keys always hold more than two thirds of the voting power.
//!
//! A proof (c2sp.org/tlog-proof@v1) carries the transaction's bytes in its `extra` line,
//! the leaf index, the inclusion path and the signed checkpoint with its cosignatures.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::genesis::GenesisIndex;
use crate::merkle;
use crate::note::{self, Checkpoint, NoteKey, SignedNote};

/// The most bytes of a policy file or a proof file read.
pub const POLICY_BYTES_MAX: usize = 64 * 1024;
pub const PROOF_BYTES_MAX: usize = 256 * 1024;
/// The most inclusion path lines a proof may carry (a tree of 2^63 leaves).
pub const PROOF_PATH_LINES_MAX: usize = 63;
/// The first line of a tlog-proof.
pub const PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// The comment line by which a policy sets how many log keys must sign.
pub const LOG_THRESHOLD_DIRECTIVE: &str = "# bansos-log-threshold";

/// Why a policy or a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy line {line}: {message}")]
    Policy { line: usize, message: String },
    #[error("proof: {0}")]
    Proof(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("the inclusion proof does not bind the transaction to the signed root: {0}")]
    Inclusion(String),
}

/// A group's threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Threshold {
    All,
    Any,
    AtLeast(usize),
}

/// A parsed tlog-policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub logs: Vec<NoteKey>,
    /// Witness name → cosignature key.
    pub witnesses: BTreeMap<String, NoteKey>,
    groups: BTreeMap<String, (Threshold, Vec<String>)>,
    /// A witness or group name, or `none`.
    pub quorum: String,
    /// Distinct log keys that must sign (1 for a plain tlog-policy).
    pub log_threshold: usize,
}

/// The smallest number of validators that always holds more than two thirds of the power:
/// enough that even the weakest ones, together, do.
fn log_threshold(powers: &[u64]) -> usize {
    let total: u64 = powers.iter().sum();
    let mut weakest = powers.to_vec();
    weakest.sort_unstable();
    let mut sum = 0u64;
    for (count, power) in weakest.iter().enumerate() {
        sum += power;
        if sum.saturating_mul(3) > total.saturating_mul(2) {
            return count + 1;
        }
    }
    powers.len()
}

impl Policy {
    /// The policy of a network: its validators' checkpoint keys as logs (with the threshold
    /// that makes any qualifying set hold more than two thirds of the power), its auditors'
    /// witnesses, any one of which must cosign (`quorum none` without witnesses).
    pub fn for_network(genesis: &GenesisIndex) -> Policy {
        Policy::for_validators(genesis, &genesis.checkpoint_keys())
    }

    /// The same policy for another validator set of the network (`validators`: checkpoint
    /// keys with voting powers), as governance changes it: a policy file names one set, so
    /// a new set needs a new file.
    pub fn for_validators(genesis: &GenesisIndex, validators: &[(NoteKey, u64)]) -> Policy {
        let powers: Vec<u64> = validators.iter().map(|(_, power)| *power).collect();
        let witnesses: BTreeMap<String, NoteKey> = genesis
            .witnesses
            .iter()
            .map(|w| (w.org.to_string(), w.key.clone()))
            .collect();
        let mut groups = BTreeMap::new();
        let quorum = if witnesses.is_empty() {
            "none".to_owned()
        } else {
            let names = witnesses.keys().cloned().collect();
            groups.insert("auditors".to_owned(), (Threshold::Any, names));
            "auditors".to_owned()
        };
        Policy {
            logs: validators.iter().map(|(key, _)| key.clone()).collect(),
            witnesses,
            groups,
            quorum,
            log_threshold: log_threshold(&powers),
        }
    }

    /// The policy file.
    pub fn to_text(&self) -> String {
        let mut text = String::from("# C2SP tlog-policy of a Bansos Ledger network.\n");
        text.push_str(&format!(
            "# The log keys are the validators'; a Bansos verifier requires {} of them:\n{LOG_THRESHOLD_DIRECTIVE} {}\n",
            self.log_threshold, self.log_threshold
        ));
        for log in &self.logs {
            text.push_str(&format!("log {}\n", log.vkey()));
        }
        for (name, key) in &self.witnesses {
            text.push_str(&format!("witness {name} {}\n", key.vkey()));
        }
        for (name, (threshold, members)) in &self.groups {
            let threshold = match threshold {
                Threshold::All => "all".to_owned(),
                Threshold::Any => "any".to_owned(),
                Threshold::AtLeast(k) => k.to_string(),
            };
            text.push_str(&format!("group {name} {threshold} {}\n", members.join(" ")));
        }
        text.push_str(&format!("quorum {}\n", self.quorum));
        text
    }

    /// Parses a policy file.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > POLICY_BYTES_MAX {
            return Err(PolicyError::Policy {
                line: 0,
                message: format!("over {POLICY_BYTES_MAX} bytes"),
            });
        }
        let mut policy = Policy {
            logs: Vec::new(),
            witnesses: BTreeMap::new(),
            groups: BTreeMap::new(),
            quorum: String::new(),
            log_threshold: 1,
        };
        for (number, line) in text.lines().enumerate() {
            policy
                .parse_line(line)
                .map_err(|message| PolicyError::Policy {
                    line: number + 1,
                    message,
                })?;
        }
        if policy.quorum.is_empty() {
            return Err(PolicyError::Policy {
                line: 0,
                message: "no quorum line".into(),
            });
        }
        if policy.logs.is_empty() || policy.log_threshold > policy.logs.len() {
            return Err(PolicyError::Policy {
                line: 0,
                message: "fewer log keys than the log threshold".into(),
            });
        }
        Ok(policy)
    }

    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        let trimmed = line.trim_matches([' ', '\t']);
        if let Some(rest) = trimmed.strip_prefix(LOG_THRESHOLD_DIRECTIVE) {
            let k: usize = rest.trim().parse().map_err(|_| "a bad log threshold")?;
            self.log_threshold = k.max(1);
            return Ok(());
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(());
        }
        let words: Vec<&str> = trimmed
            .split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .collect();
        if !self.quorum.is_empty() {
            return Err("nothing may follow the quorum line".into());
        }
        match words.as_slice() {
            ["log", vkey, ..] if words.len() <= 3 => self.add_log(vkey),
            ["witness", name, vkey, ..] if words.len() <= 4 => self.add_witness(name, vkey),
            ["group", name, threshold, members @ ..] => self.add_group(name, threshold, members),
            ["quorum", name] => self.set_quorum(name),
            _ => Err(format!("not a policy line: {trimmed:?}")),
        }
    }

    fn add_log(&mut self, vkey: &str) -> Result<(), String> {
        let key = NoteKey::parse(vkey).map_err(|e| e.to_string())?;
        if key.algorithm != note::ALGORITHM_ED25519 {
            return Err("a log key must be an Ed25519 (0x01) note key".into());
        }
        if self.logs.iter().any(|k| k.key == key.key) {
            return Err("a duplicate log key".into());
        }
        self.logs.push(key);
        Ok(())
    }

    fn add_witness(&mut self, name: &str, vkey: &str) -> Result<(), String> {
        let key = NoteKey::parse(vkey).map_err(|e| e.to_string())?;
        if key.algorithm != note::ALGORITHM_COSIGNATURE_V1 {
            return Err("a witness key must be a cosignature (0x04) note key".into());
        }
        if self.witnesses.values().any(|k| k.key == key.key) {
            return Err("a duplicate witness key".into());
        }
        self.define(name)?;
        self.witnesses.insert(name.to_owned(), key);
        Ok(())
    }

    fn define(&self, name: &str) -> Result<(), String> {
        if name == "none" || self.witnesses.contains_key(name) || self.groups.contains_key(name) {
            return Err(format!("the name {name:?} is taken"));
        }
        Ok(())
    }

    fn add_group(&mut self, name: &str, threshold: &str, members: &[&str]) -> Result<(), String> {
        self.define(name)?;
        if members.is_empty() {
            return Err("a group needs members".into());
        }
        for member in members {
            if !self.witnesses.contains_key(*member) && !self.groups.contains_key(*member) {
                return Err(format!("{member:?} is not defined above"));
            }
        }
        let threshold = match threshold {
            "all" => Threshold::All,
            "any" => Threshold::Any,
            k => match k.parse::<usize>() {
                Ok(k) if k >= 1 && k <= members.len() => Threshold::AtLeast(k),
                _ => {
                    return Err(format!(
                        "{k:?} is not a threshold for {} members",
                        members.len()
                    ))
                }
            },
        };
        let members = members.iter().map(|m| (*m).to_owned()).collect();
        self.groups.insert(name.to_owned(), (threshold, members));
        Ok(())
    }

    fn set_quorum(&mut self, name: &str) -> Result<(), String> {
        if name != "none" && !self.witnesses.contains_key(name) && !self.groups.contains_key(name) {
            return Err(format!("{name:?} is not defined above"));
        }
        self.quorum = name.to_owned();
        Ok(())
    }

    /// Whether `name` (a witness or a group) is satisfied by the witnesses in `cosigned`.
    fn satisfied(&self, name: &str, cosigned: &[String], depth: usize) -> bool {
        if name == "none" {
            return true;
        }
        if self.witnesses.contains_key(name) {
            return cosigned.iter().any(|c| c == name);
        }
        let Some((threshold, members)) = self.groups.get(name) else {
            return false;
        };
        // Groups name only earlier definitions, so the depth is bounded by their number.
        debug_assert!(depth <= self.groups.len());
        let met = members
            .iter()
            .filter(|m| self.satisfied(m, cosigned, depth + 1))
            .count();
        match threshold {
            Threshold::All => met == members.len(),
            Threshold::Any => met >= 1,
            Threshold::AtLeast(k) => met >= *k,
        }
    }

    /// Checks a signed checkpoint against the policy: signed by at least `log_threshold`
    /// distinct log keys named after its origin, every signature and cosignature by a
    /// known key valid, the witness quorum met. Returns the checkpoint.
    pub fn verify_checkpoint(&self, text: &str) -> Result<Checkpoint, PolicyError> {
        let fail = |m: String| PolicyError::Checkpoint(m);
        let note = SignedNote::parse(text).map_err(|e| fail(e.to_string()))?;
        let checkpoint = Checkpoint::parse(&note.text).map_err(|e| fail(e.to_string()))?;
        let mut signed = 0;
        for key in self.logs.iter().filter(|k| k.name == checkpoint.origin) {
            if let Some(signature) = note.by(key).next() {
                if !note::verify_signature(&note.text, key, signature) {
                    return Err(fail(format!("a bad signature by log key {}", key.vkey())));
                }
                signed += 1;
            }
        }
        if signed < self.log_threshold {
            return Err(fail(format!(
                "signed by {signed} of the policy's log keys for {:?}; {} needed",
                checkpoint.origin, self.log_threshold
            )));
        }
        let mut cosigned = Vec::new();
        for (name, key) in &self.witnesses {
            if let Some(signature) = note.by(key).next() {
                if !note::verify_signature(&note.text, key, signature) {
                    return Err(fail(format!("a bad cosignature by witness {name}")));
                }
                cosigned.push(name.clone());
            }
        }
        if !self.satisfied(&self.quorum, &cosigned, 0) {
            return Err(fail(format!(
                "the witness quorum {:?} is not met (cosigned by {cosigned:?})",
                self.quorum
            )));
        }
        Ok(checkpoint)
    }
}

/// A parsed tlog-proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// The `extra` data: here, the transaction's canonical bytes (the leaf).
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub path: Vec<[u8; 32]>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    /// The proof file.
    pub fn to_text(&self) -> String {
        let mut text = format!("{PROOF_HEADER}\n");
        if let Some(extra) = &self.extra {
            text.push_str(&format!("extra {}\n", BASE64.encode(extra)));
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.path {
            text.push_str(&format!("{}\n", BASE64.encode(hash)));
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }

    /// Parses a proof file.
    pub fn parse(text: &str) -> Result<TlogProof, PolicyError> {
        let bad = |m: &str| PolicyError::Proof(m.to_owned());
        if text.len() > PROOF_BYTES_MAX {
            return Err(bad("the file is too large"));
        }
        let rest = text
            .strip_prefix(PROOF_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| bad("the first line must be c2sp.org/tlog-proof@v1"))?;
        let (mut line, mut rest) = rest.split_once('\n').ok_or_else(|| bad("no index line"))?;
        let mut extra = None;
        if let Some(data) = line.strip_prefix("extra ") {
            extra = Some(
                BASE64
                    .decode(data)
                    .map_err(|_| bad("extra is not base64"))?,
            );
            (line, rest) = rest.split_once('\n').ok_or_else(|| bad("no index line"))?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(note::parse_decimal)
            .ok_or_else(|| {
                bad("the index line must be `index <n>` (decimal, no leading zeroes)")
            })?;
        let (path, rest) = note::take_hash_lines(rest, PROOF_PATH_LINES_MAX).map_err(bad)?;
        Ok(TlogProof {
            extra,
            index,
            path,
            checkpoint: rest.to_owned(),
        })
    }

    /// Checks the proof with nothing but `policy`: the checkpoint passes the policy, and
    /// the leaf (the `extra` bytes) is at `index` under its root. Returns the checkpoint.
    pub fn verify(&self, policy: &Policy) -> Result<Checkpoint, PolicyError> {
        let leaf = self.extra.as_ref().ok_or_else(|| {
            PolicyError::Proof("no extra line: the transaction's bytes are needed".into())
        })?;
        let checkpoint = policy.verify_checkpoint(&self.checkpoint)?;
        let leaf_hash = merkle::leaf_hash(leaf);
        merkle::verify_inclusion(
            &leaf_hash,
            self.index,
            checkpoint.size,
            &self.path,
            &checkpoint.root,
        )
        .map_err(|e| PolicyError::Inclusion(e.to_string()))?;
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, MemoryTree};
    use crate::note::{cosign, sign};
    use crate::types::PublicKey;
    use ed25519_dalek::SigningKey;

    const ORIGIN: &str = "bansos.test/log";

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn public(key: &SigningKey) -> PublicKey {
        PublicKey(key.verifying_key().to_bytes())
    }

    /// Four log keys (validators, equal power) and two witnesses, any one of which suffices.
    fn policy() -> Policy {
        let logs = (1..=4)
            .map(|s| NoteKey::ed25519(ORIGIN, public(&key(s))).unwrap())
            .collect();
        let witnesses: BTreeMap<String, NoteKey> = [("bpk", 11u8), ("bpkp", 12)]
            .into_iter()
            .map(|(n, s)| {
                (
                    n.to_owned(),
                    NoteKey::cosigner(&format!("{ORIGIN}/witness/{n}"), public(&key(s))).unwrap(),
                )
            })
            .collect();
        let mut groups = BTreeMap::new();
        groups.insert(
            "auditors".to_owned(),
            (Threshold::Any, vec!["bpk".to_owned(), "bpkp".to_owned()]),
        );
        Policy {
            logs,
            witnesses,
            groups,
            quorum: "auditors".into(),
            log_threshold: log_threshold(&[1, 1, 1, 1]),
        }
    }

    /// A log of `n` leaves and a proof of leaf `index`, signed by `signers` and cosigned by
    /// `witnesses` (seeds).
    fn proof(n: u64, index: u64, signers: &[u8], witnesses: &[(u8, &str)]) -> TlogProof {
        let mut log = MemoryTree::new();
        for i in 0..n {
            log.append(format!("tx {i}").as_bytes());
        }
        let root = merkle::root_at(&log, n).unwrap();
        let text = Checkpoint {
            origin: ORIGIN.into(),
            size: n,
            root,
            totals: Some([3; 32]),
        }
        .text();
        let mut signatures: Vec<_> = signers
            .iter()
            .map(|s| sign(&text, ORIGIN, &key(*s)))
            .collect();
        for (seed, name) in witnesses {
            signatures.push(cosign(
                &text,
                &format!("{ORIGIN}/witness/{name}"),
                &key(*seed),
                1_790_000_000,
            ));
        }
        TlogProof {
            extra: Some(format!("tx {index}").into_bytes()),
            index,
            path: merkle::inclusion_proof(&log, index, n).unwrap(),
            checkpoint: SignedNote { text, signatures }.to_text(),
        }
    }

    #[test]
    fn the_threshold_is_the_fewest_validators_that_always_hold_two_thirds() {
        assert_eq!(log_threshold(&[1, 1, 1, 1]), 3);
        assert_eq!(log_threshold(&[1, 1, 1]), 3);
        assert_eq!(log_threshold(&[1; 7]), 5);
        // The three weakest of {1, 1, 1, 10} hold 3 of 13: all four are needed.
        assert_eq!(log_threshold(&[10, 1, 1, 1]), 4);
    }

    #[test]
    fn a_policy_round_trips_and_bad_lines_are_named() {
        let policy = policy();
        let text = policy.to_text();
        assert_eq!(Policy::parse(&text).unwrap(), policy);
        let witness = policy.witnesses["bpk"].vkey();
        let log = policy.logs[0].vkey();
        for (bad, line) in [
            (format!("log {log}\nquorum nobody\n"), 2),
            (format!("log {witness}\nquorum none\n"), 1),
            (format!("log {log}\nlog {log}\nquorum none\n"), 2),
            (
                format!("log {log}\nwitness none {witness}\nquorum none\n"),
                2,
            ),
            (format!("log {log}\ngroup g 2 x\nquorum none\n"), 2),
            (format!("log {log}\nquorum none\nlog {log}\n"), 3),
            (format!("log {log}\nfrobnicate\nquorum none\n"), 2),
        ] {
            match Policy::parse(&bad) {
                Err(PolicyError::Policy { line: l, .. }) => assert_eq!(l, line, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(Policy::parse(&format!("log {log}\n")).is_err(), "no quorum");
    }

    #[test]
    fn a_proof_verifies_offline_with_the_policy_and_nothing_else() {
        let policy = policy();
        let good = proof(37, 21, &[1, 2, 3], &[(11, "bpk")]);
        let parsed = TlogProof::parse(&good.to_text()).unwrap();
        assert_eq!(parsed, good);
        let checkpoint = parsed.verify(&policy).unwrap();
        assert_eq!(checkpoint.size, 37);
    }

    #[test]
    fn a_proof_fails_on_any_change_or_a_weak_checkpoint() {
        let policy = policy();
        let mut other_leaf = proof(37, 21, &[1, 2, 3], &[(11, "bpk")]);
        other_leaf.extra = Some(b"tx 22".to_vec());
        let mut other_index = proof(37, 21, &[1, 2, 3], &[(11, "bpk")]);
        other_index.index = 22;
        let mut bent_path = proof(37, 21, &[1, 2, 3], &[(11, "bpk")]);
        bent_path.path[0][0] ^= 1;
        let two_signers = proof(37, 21, &[1, 2], &[(11, "bpk")]);
        let stranger = proof(37, 21, &[1, 2, 9], &[(11, "bpk")]);
        let no_witness = proof(37, 21, &[1, 2, 3, 4], &[]);
        let wrong_witness = proof(37, 21, &[1, 2, 3], &[(13, "bpk")]);
        let mut no_extra = proof(37, 21, &[1, 2, 3], &[(11, "bpk")]);
        no_extra.extra = None;
        for (name, bad) in [
            ("another leaf", other_leaf),
            ("another index", other_index),
            ("a changed path", bent_path),
            ("two of four log keys", two_signers),
            ("a stranger's third signature", stranger),
            ("no witness", no_witness),
            ("a bad cosignature", wrong_witness),
            ("no extra", no_extra),
        ] {
            assert!(bad.verify(&policy).is_err(), "{name} passed");
        }
        // The second witness alone meets the quorum too.
        assert!(proof(37, 0, &[2, 3, 4], &[(12, "bpkp")])
            .verify(&policy)
            .is_ok());
    }

    #[test]
    fn malformed_proof_files_are_refused() {
        let text = proof(5, 1, &[1, 2, 3], &[(11, "bpk")]).to_text();
        for bad in [
            text.replacen(PROOF_HEADER, "c2sp.org/tlog-proof@v2", 1),
            text.replacen("index 1", "index 01", 1),
            text.replacen("index 1\n", "index 1\nnot-base64\n", 1),
            text.replacen("extra ", "extra !", 1),
            String::from("c2sp.org/tlog-proof@v1\nindex 0\n"),
        ] {
            assert!(TlogProof::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
