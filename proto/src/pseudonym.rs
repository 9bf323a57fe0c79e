//! The pseudonym service's protocol: a verifiable oblivious pseudorandom function (RFC 9497,
//! VOPRF mode, ciphersuite ristretto255-SHA512, by the `voprf` crate).
//!
//! An intake institution blinds each NIK, sends the blinded elements to the identity
//! authority's node, and unblinds the answers; the node's key never leaves it, and the node
//! never sees a NIK (a blinded element is a random group element to it). One proof covers a
//! whole batch: the client checks that every answer was computed with the key whose public
//! half it holds, so the service cannot hand different institutions different pseudonyms
//! for the same person without being caught.
//!
//! The pseudonym is `BLAKE3-derive("bansos-ledger 2026 pseudonym v2", public key ‖ VOPRF
//! output)`: deterministic per (key, NIK), so the same person gets the same pseudonym at
//! every institution (deduplication holds), and a new key gives new pseudonyms. The key
//! version is only a label: a service cannot make two institutions' pseudonyms differ by
//! telling them different versions under one key. What it could do is answer under
//! another key altogether; clients hold it to the published one (`--pseudonym-service-key`)
//! until the key is recorded on the ledger.
//!
//! Wire format (`application/octet-stream`, big-endian):
//! - request: `key_version u32 ‖ count u16 ‖ count × 32-byte blinded element`;
//! - answer: `key_version u32 ‖ count u16 ‖ count × 32-byte evaluated element ‖ 64-byte
//!   proof`.
//!
//! Lengths must be exact: a body a byte too long or short is refused.

use ledger::types::{Hash32, Pseudonym};
use rand_core::{CryptoRng, RngCore};
use voprf::Group as _;
use voprf::{BlindedElement, EvaluationElement, Proof, Ristretto255, VoprfClient, VoprfServer};

/// The ciphersuite.
pub type Suite = Ristretto255;
/// The most NIKs in one request (a `u16` count; a 10,000-row file is one request).
pub const PSEUDONYM_BATCH_MAX: usize = 10_000;
/// Bytes of a blinded or evaluated element (a compressed ristretto255 point).
pub const ELEMENT_BYTES: usize = 32;
/// Bytes of a batch proof (two scalars).
pub const PROOF_BYTES: usize = 64;
/// Bytes of the service's public key.
pub const PUBLIC_KEY_BYTES: usize = 32;
/// The largest request body, in bytes.
pub const PSEUDONYM_REQUEST_BYTES_MAX: usize = HEADER_BYTES + PSEUDONYM_BATCH_MAX * ELEMENT_BYTES;
const HEADER_BYTES: usize = 4 + 2;
/// The media type of requests and answers.
pub const PSEUDONYM_BODY_TYPE: &str = "application/octet-stream";

const _: () = assert!(PSEUDONYM_BATCH_MAX <= u16::MAX as usize);

/// Why a pseudonym request or answer is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PseudonymError {
    #[error("{0}")]
    Malformed(String),
    #[error("{count} NIKs in one request; at most {PSEUDONYM_BATCH_MAX}")]
    TooMany { count: usize },
    #[error("an empty request")]
    Empty,
    #[error("the service uses key version {serving}; the request asked for version {asked}")]
    WrongVersion { serving: u32, asked: u32 },
    #[error(
        "the service's proof does not verify against its public key: its answers cannot be trusted"
    )]
    Proof,
    #[error("the pseudonym key cannot be derived: {0}")]
    Key(String),
}

impl PseudonymError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PseudonymError::Malformed(_) => "malformed_request",
            PseudonymError::TooMany { .. } => "batch_too_large",
            PseudonymError::Empty => "empty_batch",
            PseudonymError::WrongVersion { .. } => "wrong_key_version",
            PseudonymError::Proof => "bad_proof",
            PseudonymError::Key(_) => "bad_key",
        }
    }
}

/// What the RFC 9497 key is derived for: one per key version.
fn key_info(version: u32) -> String {
    format!("bansos-ledger pseudonym key v{version}")
}

/// The NIK as evaluated: its letters and digits only, so one NIK typed with spaces or
/// hyphens maps to one pseudonym.
pub fn canonical_nik(nik: &str) -> String {
    nik.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// The pseudonym of a VOPRF output under the key whose public half is `public_key`.
pub fn pseudonym_of_output(public_key: &[u8; PUBLIC_KEY_BYTES], output: &[u8]) -> Pseudonym {
    let mut hasher = blake3::Hasher::new_derive_key("bansos-ledger 2026 pseudonym v2");
    hasher.update(public_key);
    hasher.update(output);
    Hash32(*hasher.finalize().as_bytes())
}

/// The service's key (on the identity authority's node only).
pub struct ServiceKey {
    version: u32,
    server: VoprfServer<Suite>,
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceKey(v{}, …)", self.version)
    }
}

impl ServiceKey {
    /// The key of version `version` derived from a 32-byte secret seed (RFC 9497
    /// DeriveKeyPair).
    pub fn from_seed(seed: &[u8; 32], version: u32) -> Result<ServiceKey, PseudonymError> {
        let server = VoprfServer::<Suite>::new_from_seed(seed, key_info(version).as_bytes())
            .map_err(|e| PseudonymError::Key(format!("{e:?}")))?;
        Ok(ServiceKey { version, server })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The public key clients check answers against.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_BYTES] {
        let mut out = [0u8; PUBLIC_KEY_BYTES];
        out.copy_from_slice(&Suite::serialize_elem(self.server.get_public_key()));
        out
    }

    /// Checks a request body's form and version without evaluating it: the number of
    /// NIKs it asks for.
    pub fn check_request(&self, body: &[u8]) -> Result<usize, PseudonymError> {
        let (asked, elements) = decode_elements(body, 0)?;
        if asked != self.version {
            return Err(PseudonymError::WrongVersion {
                serving: self.version,
                asked,
            });
        }
        Ok(elements.len())
    }

    /// Answers a request body.
    pub fn answer<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        body: &[u8],
    ) -> Result<Vec<u8>, PseudonymError> {
        let (asked, elements) = decode_elements(body, 0)?;
        if asked != self.version {
            return Err(PseudonymError::WrongVersion {
                serving: self.version,
                asked,
            });
        }
        let blinded = elements
            .iter()
            .map(|e| BlindedElement::<Suite>::deserialize(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                PseudonymError::Malformed("a blinded element is not a group element".into())
            })?;
        let result = self
            .server
            .batch_blind_evaluate(rng, &blinded)
            .map_err(|e| PseudonymError::Malformed(format!("{e:?}")))?;
        let mut out = header(self.version, result.messages.len());
        for message in &result.messages {
            out.extend_from_slice(&message.serialize());
        }
        out.extend_from_slice(&result.proof.serialize());
        Ok(out)
    }

    /// The pseudonym of `nik` computed directly (the authority's own use: building the
    /// links from old to new pseudonyms when the key changes, and tests).
    pub fn pseudonym(&self, nik: &str) -> Result<Pseudonym, PseudonymError> {
        let output = self
            .server
            .evaluate(canonical_nik(nik).as_bytes())
            .map_err(|e| PseudonymError::Malformed(format!("{e:?}")))?;
        Ok(pseudonym_of_output(&self.public_key(), &output))
    }
}

fn header(version: u32, count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + count * ELEMENT_BYTES + PROOF_BYTES);
    out.extend_from_slice(&version.to_be_bytes());
    // `count` is at most PSEUDONYM_BATCH_MAX, checked by the callers.
    out.extend_from_slice(&(count as u16).to_be_bytes());
    out
}

/// Splits a body into its version and `count` 32-byte elements, with `trailer` bytes
/// left over at the end (the proof); the length must be exact.
fn decode_elements(body: &[u8], trailer: usize) -> Result<(u32, Vec<&[u8]>), PseudonymError> {
    if body.len() < HEADER_BYTES + trailer {
        return Err(PseudonymError::Malformed(format!(
            "{} bytes; a body starts with a 4-byte key version and a 2-byte count",
            body.len()
        )));
    }
    let version = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let count = usize::from(u16::from_be_bytes([body[4], body[5]]));
    if count == 0 {
        return Err(PseudonymError::Empty);
    }
    if count > PSEUDONYM_BATCH_MAX {
        return Err(PseudonymError::TooMany { count });
    }
    let expected = HEADER_BYTES + count * ELEMENT_BYTES + trailer;
    if body.len() != expected {
        return Err(PseudonymError::Malformed(format!(
            "{} bytes for {count} elements; expected exactly {expected}",
            body.len()
        )));
    }
    let elements = body[HEADER_BYTES..expected - trailer]
        .chunks_exact(ELEMENT_BYTES)
        .collect();
    Ok((version, elements))
}

/// A client's blinded batch, kept to unblind the answer.
pub struct Blinded {
    version: u32,
    inputs: Vec<String>,
    states: Vec<VoprfClient<Suite>>,
}

/// Blinds `niks` for key `version`; returns the state and the request body.
pub fn blind<R: RngCore + CryptoRng>(
    rng: &mut R,
    version: u32,
    niks: &[String],
) -> Result<(Blinded, Vec<u8>), PseudonymError> {
    if niks.is_empty() {
        return Err(PseudonymError::Empty);
    }
    if niks.len() > PSEUDONYM_BATCH_MAX {
        return Err(PseudonymError::TooMany { count: niks.len() });
    }
    let inputs: Vec<String> = niks.iter().map(|n| canonical_nik(n)).collect();
    let mut body = header(version, inputs.len());
    let mut states = Vec::with_capacity(inputs.len());
    for input in &inputs {
        let blinded = VoprfClient::<Suite>::blind(input.as_bytes(), rng)
            .map_err(|e| PseudonymError::Malformed(format!("NIK cannot be blinded: {e:?}")))?;
        body.extend_from_slice(&blinded.message.serialize());
        states.push(blinded.state);
    }
    Ok((
        Blinded {
            version,
            inputs,
            states,
        },
        body,
    ))
}

/// Checks the service's answer against its public key and unblinds it: the pseudonyms,
/// in the order of the NIKs given to [`blind`].
pub fn unblind(
    blinded: &Blinded,
    answer: &[u8],
    public_key: &[u8; PUBLIC_KEY_BYTES],
) -> Result<Vec<Pseudonym>, PseudonymError> {
    let (version, elements) = decode_elements(answer, PROOF_BYTES)?;
    if version != blinded.version {
        return Err(PseudonymError::WrongVersion {
            serving: version,
            asked: blinded.version,
        });
    }
    if elements.len() != blinded.states.len() {
        return Err(PseudonymError::Malformed(format!(
            "{} answers to {} NIKs",
            elements.len(),
            blinded.states.len()
        )));
    }
    let malformed = |what: &str| PseudonymError::Malformed(format!("{what} does not decode"));
    let messages = elements
        .iter()
        .map(|e| EvaluationElement::<Suite>::deserialize(e))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| malformed("an evaluated element"))?;
    let proof = Proof::<Suite>::deserialize(&answer[answer.len() - PROOF_BYTES..])
        .map_err(|_| malformed("the proof"))?;
    let key = Suite::deserialize_elem(public_key).map_err(|_| malformed("the public key"))?;
    let inputs: Vec<&[u8]> = blinded.inputs.iter().map(|i| i.as_bytes()).collect();
    let outputs = VoprfClient::batch_finalize(&inputs, &blinded.states, &messages, &proof, key)
        .map_err(|_| PseudonymError::Proof)?;
    outputs
        .map(|output| {
            output
                .map(|o| pseudonym_of_output(public_key, &o))
                .map_err(|_| PseudonymError::Proof)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn niks() -> Vec<String> {
        vec!["3510014501850001".into(), "3510 0112 0379 0002".into()]
    }

    #[test]
    fn a_blinded_batch_unblinds_to_what_the_key_computes_directly() {
        let key = ServiceKey::from_seed(&[7; 32], 1).expect("key");
        let (blinded, request) = blind(&mut OsRng, 1, &niks()).expect("blind");
        assert!(
            !request.windows(16).any(|w| w == b"3510014501850001"),
            "a NIK in the request"
        );
        let answer = key.answer(&mut OsRng, &request).expect("answer");
        let pseudonyms = unblind(&blinded, &answer, &key.public_key()).expect("unblind");
        assert_eq!(pseudonyms[0], key.pseudonym(&niks()[0]).expect("direct"));
        assert_eq!(
            pseudonyms[1],
            key.pseudonym("3510011203790002").expect("direct")
        );
        // Blinding is random; the pseudonym is not.
        let (again, request) = blind(&mut OsRng, 1, &niks()).expect("blind");
        let answer = key.answer(&mut OsRng, &request).expect("answer");
        assert_eq!(
            unblind(&again, &answer, &key.public_key()).expect("unblind"),
            pseudonyms
        );
        // Another key version gives other pseudonyms.
        let v2 = ServiceKey::from_seed(&[7; 32], 2).expect("key");
        assert_ne!(v2.pseudonym(&niks()[0]).expect("direct"), pseudonyms[0]);
    }

    /// A service telling a client another version label under the same key changes
    /// nothing: pseudonyms follow the key.
    #[test]
    fn a_version_label_cannot_split_pseudonyms_under_one_key() {
        let key = ServiceKey::from_seed(&[7; 32], 1).expect("key");
        let honest = key.pseudonym(&niks()[0]).expect("direct");
        let (blinded, mut request) = blind(&mut OsRng, 9, &niks()[..1]).expect("blind");
        request[..4].copy_from_slice(&1u32.to_be_bytes());
        let mut answer = key.answer(&mut OsRng, &request).expect("answer");
        answer[..4].copy_from_slice(&9u32.to_be_bytes());
        let told = unblind(&blinded, &answer, &key.public_key()).expect("the proof holds");
        assert_eq!(told, vec![honest]);
    }

    #[test]
    fn an_answer_under_another_key_fails_its_proof() {
        let key = ServiceKey::from_seed(&[7; 32], 1).expect("key");
        let impostor = ServiceKey::from_seed(&[8; 32], 1).expect("key");
        let (blinded, request) = blind(&mut OsRng, 1, &niks()).expect("blind");
        let answer = impostor.answer(&mut OsRng, &request).expect("answer");
        assert_eq!(
            unblind(&blinded, &answer, &key.public_key()),
            Err(PseudonymError::Proof)
        );
        // A tampered element fails too.
        let mut answer = key.answer(&mut OsRng, &request).expect("answer");
        answer[HEADER_BYTES] ^= 1;
        assert!(unblind(&blinded, &answer, &key.public_key()).is_err());
    }

    #[test]
    fn bodies_of_the_wrong_length_count_or_version_are_refused() {
        let key = ServiceKey::from_seed(&[7; 32], 1).expect("key");
        let (_, request) = blind(&mut OsRng, 1, &niks()).expect("blind");
        let code = |body: &[u8]| {
            key.answer(&mut OsRng, body)
                .map(|_| ())
                .map_err(|e| e.code())
        };
        assert_eq!(code(&request), Ok(()));
        let mut longer = request.clone();
        longer.push(0);
        assert_eq!(code(&longer), Err("malformed_request"));
        assert_eq!(
            code(&request[..request.len() - 1]),
            Err("malformed_request")
        );
        assert_eq!(code(&request[..3]), Err("malformed_request"));
        assert_eq!(code(&[0, 0, 0, 1, 0, 0]), Err("empty_batch"));
        assert_eq!(code(&[0, 0, 0, 1, 0xff, 0xff]), Err("batch_too_large"));
        let mut other_version = request.clone();
        other_version[3] = 2;
        assert_eq!(code(&other_version), Err("wrong_key_version"));
        let mut not_a_point = request;
        not_a_point[HEADER_BYTES..HEADER_BYTES + ELEMENT_BYTES].fill(0xff);
        assert_eq!(code(&not_a_point), Err("malformed_request"));
    }
}
