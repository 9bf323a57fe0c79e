//! The one rule that decides whether an ed25519 signature is valid, for transactions and
//! consensus messages alike: ZIP-215 (`ed25519-consensus`), under which a signature's
//! validity is a pure function of (key, message, signature).
//!
//! Why not ed25519-dalek's `verify_strict` plus its batch check: strict single checks reject
//! signatures whose R has a small-order component, while dalek's cofactorless batch check
//! accepts such a signature with a probability that depends on the random weights, i.e. on
//! the rest of the batch. Validators batching different subsets of one block (each skips
//! what its own mempool already verified) could then disagree on the block, and a node that
//! later syncs it with every signature checked could find it invalid. ZIP-215 checks the
//! cofactored equation `[8](sB − kA − R) = 0` both alone and in batches, so the two agree by
//! construction; batching is only a speed-up.
//!
//! Batch weights must be unpredictable to whoever made the signatures, and this crate draws
//! no randomness: they come from BLAKE3 over the whole batch (keys, signatures, messages),
//! the Fiat–Shamir way, so they are fixed only once every signature in the batch is.

use ed25519_consensus::{batch, Signature, VerificationKey, VerificationKeyBytes};

use crate::types::{PublicKey, SignatureBytes};

/// Domain of the batch-weight derivation.
const BATCH_WEIGHTS_DOMAIN: &str = "bansos-ledger 2026 ed25519 batch weights v1";

/// Whether `signature` is `key`'s signature over `message` (ZIP-215).
pub fn verify(key: &PublicKey, message: &[u8], signature: &SignatureBytes) -> bool {
    let Ok(key) = VerificationKey::try_from(key.0) else {
        return false;
    };
    key.verify(&Signature::from(signature.0), message).is_ok()
}

/// Checks every (key, message, signature) at once. `Err(i)` names the first invalid one;
/// the verdict on each item is exactly [`verify`]'s.
pub fn verify_all(items: &[(PublicKey, &[u8], SignatureBytes)]) -> Result<(), usize> {
    let mut verifier = batch::Verifier::new();
    let mut weights = blake3::Hasher::new_derive_key(BATCH_WEIGHTS_DOMAIN);
    for (key, message, signature) in items {
        weights.update(key.as_bytes());
        weights.update(signature.as_bytes());
        weights.update(blake3::hash(message).as_bytes());
        verifier.queue((
            VerificationKeyBytes::from(key.0),
            Signature::from(signature.0),
            *message,
        ));
    }
    let rng = TranscriptRng(weights.finalize_xof());
    if verifier.verify(rng).is_ok() {
        return Ok(());
    }
    // The single check is the rule; the batch only saves time. Under ZIP-215 a batch of
    // valid signatures always verifies (valid items satisfy the cofactored equation
    // exactly, so every weighted sum does too), so when it fails one item fails alone. Were
    // that ever not so, the single verdicts still decide: the input is hostile, and a
    // panic here would stop every node at once.
    match items.iter().position(|(k, m, s)| !verify(k, m, s)) {
        Some(index) => Err(index),
        None => {
            debug_assert!(
                false,
                "a batch of individually valid ZIP-215 signatures failed"
            );
            Ok(())
        }
    }
}

/// Randomness read from a BLAKE3 output stream: deterministic, and unpredictable before
/// its input is fixed.
struct TranscriptRng(blake3::OutputReader);

impl rand_core::RngCore for TranscriptRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.0.fill(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.0.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for TranscriptRng {}

/// Signatures an attacker crafts, for the tests and the byzantine test node (cargo feature
/// `crafted-signatures`; never in a shipped binary).
#[cfg(any(test, feature = "crafted-signatures"))]
pub mod crafted {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::Scalar;
    use ed25519_dalek::SigningKey;
    use sha2::{Digest, Sha512};

    use crate::tx::{Transaction, TxBody};
    use crate::types::SignatureBytes;

    /// Domain of the crafted signatures' nonce derivation.
    const NONCE_DOMAIN: &[u8] = b"bansos-ledger crafted mixed-order nonce v1\0";

    /// A signature by `key` over `message` whose R carries a small-order component: valid
    /// under the cofactored (ZIP-215) equation, rejected by `verify_strict`, and accepted
    /// by a cofactorless batch check only for some batch weights. The nonce is derived from
    /// the key and the message, so no two messages share one.
    pub fn mixed_order_signature(key: &SigningKey, message: &[u8]) -> SignatureBytes {
        let a = key.to_scalar();
        let public = key.verifying_key().to_bytes();
        let r = Scalar::from_hash(
            Sha512::new()
                .chain_update(NONCE_DOMAIN)
                .chain_update(key.to_bytes())
                .chain_update(message),
        );
        let big_r = (r * ED25519_BASEPOINT_POINT + EIGHT_TORSION[1])
            .compress()
            .to_bytes();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(big_r)
                .chain_update(public)
                .chain_update(message),
        );
        let s = r + k * a;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&big_r);
        bytes[32..].copy_from_slice(s.as_bytes());
        SignatureBytes(bytes)
    }

    /// `body` signed by `key` with a [`mixed_order_signature`].
    pub fn sign_mixed_order(body: TxBody, key: &SigningKey) -> Transaction {
        let signature = mixed_order_signature(key, &body.signing_bytes());
        Transaction { body, signature }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::crafted::mixed_order_signature;
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn key(seed: u8) -> (SigningKey, PublicKey) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let public = PublicKey(key.verifying_key().to_bytes());
        (key, public)
    }

    #[test]
    fn a_mixed_order_signature_gets_the_same_verdict_alone_and_in_every_batch() {
        let (crafted_key, crafted_public) = key(1);
        let crafted = mixed_order_signature(&crafted_key, b"crafted");
        let strict = ed25519_dalek::Signature::from_bytes(&crafted.0);
        assert!(
            crafted_key
                .verifying_key()
                .verify_strict(b"crafted", &strict)
                .is_err(),
            "the crafted signature really has a small-order component"
        );
        let alone = verify(&crafted_public, b"crafted", &crafted);
        assert!(alone, "ZIP-215 accepts it");
        let (honest_key, honest_public) = key(2);
        let messages: Vec<Vec<u8>> = (0..64u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let honest: Vec<SignatureBytes> = messages
            .iter()
            .map(|m| SignatureBytes(honest_key.sign(m).to_bytes()))
            .collect();
        // 64 different batches: each different set of weights gives the same answer.
        for extra in 0..messages.len() {
            let mut items = vec![(crafted_public, &b"crafted"[..], crafted)];
            for i in 0..=extra {
                items.push((honest_public, messages[i].as_slice(), honest[i]));
            }
            assert_eq!(
                verify_all(&items).is_ok(),
                alone,
                "batch of {}",
                items.len()
            );
        }
    }

    #[test]
    fn a_bad_signature_is_named_wherever_it_is_in_the_batch() {
        let (signer, public) = key(3);
        let messages: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 3]).collect();
        let mut signatures: Vec<SignatureBytes> = messages
            .iter()
            .map(|m| SignatureBytes(signer.sign(m).to_bytes()))
            .collect();
        let items = |signatures: &[SignatureBytes]| -> Vec<(PublicKey, Vec<u8>, SignatureBytes)> {
            messages
                .iter()
                .zip(signatures)
                .map(|(m, s)| (public, m.clone(), *s))
                .collect()
        };
        let check = |items: &[(PublicKey, Vec<u8>, SignatureBytes)]| {
            let refs: Vec<(PublicKey, &[u8], SignatureBytes)> = items
                .iter()
                .map(|(k, m, s)| (*k, m.as_slice(), *s))
                .collect();
            verify_all(&refs)
        };
        assert_eq!(check(&items(&signatures)), Ok(()));
        signatures[6].0[40] ^= 1;
        assert_eq!(check(&items(&signatures)), Err(6));
        assert!(!verify(&public, &messages[6], &signatures[6]));
    }
}
