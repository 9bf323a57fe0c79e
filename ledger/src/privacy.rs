//! Privacy helpers (DESIGN §4): what stands in for personal data on the ledger.
//!
//! - A beneficiary is a keyed pseudonym of their NIK. A plain hash of a NIK is not
//!   anonymous: the 16-digit NIK encodes region and birth date, so its whole space falls to
//!   one GPU in under an hour. The key is held by the intake institutions (Kemensos and
//!   Dukcapil systems), never by public nodes.
//! - A citizen gets a random tracking code; the ledger stores only its hash.
//! - Account and card numbers are keyed hashes under the paying bank's secret key.
//!
//! Randomness comes in as an argument: the ledger itself never draws any.

use rand_core::{CryptoRng, RngCore};

use crate::types::{Hash32, Pseudonym, TrackingCodeHash};

/// A secret 32-byte key for keyed hashing (pseudonyms, account references).
#[derive(Clone)]
pub struct SecretKey(pub [u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, not even in a debug log.
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// Draws a new key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> SecretKey {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        SecretKey(bytes)
    }
}

/// The pseudonym of the person with identity number `nik`, under `key`.
///
/// Spaces and hyphens are ignored so the same NIK typed differently maps to one pseudonym:
/// deduplication depends on it.
pub fn pseudonym(key: &SecretKey, nik: &str) -> Pseudonym {
    let normalised: String = nik.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let mut hasher = blake3::Hasher::new_keyed(&key.0);
    hasher.update(b"bansos-ledger/pseudonym/v1\0");
    hasher.update(normalised.as_bytes());
    Hash32(*hasher.finalize().as_bytes())
}

/// A keyed hash of a bank account or card number under the paying bank's key.
pub fn account_reference(key: &SecretKey, account_number: &str) -> Hash32 {
    let normalised: String = account_number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut hasher = blake3::Hasher::new_keyed(&key.0);
    hasher.update(b"bansos-ledger/account/v1\0");
    hasher.update(normalised.as_bytes());
    Hash32(*hasher.finalize().as_bytes())
}

/// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or typed from a card
/// is hard to get wrong.
const TRACKING_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Symbols in a tracking code: 12 × 5 = 60 random bits, too many to enumerate.
pub const TRACKING_CODE_SYMBOLS: usize = 12;

/// Draws a tracking code such as `BNS-7K3Q-9XWD-M2PA`.
pub fn new_tracking_code<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut code = String::from("BNS");
    for i in 0..TRACKING_CODE_SYMBOLS {
        if i % 4 == 0 {
            code.push('-');
        }
        let index = (rng.next_u32() % 32) as usize;
        code.push(char::from(TRACKING_ALPHABET[index]));
    }
    code
}

/// Normalises a tracking code as a citizen might type it: case, spaces and hyphens are
/// ignored, and the letters Crockford's base32 leaves out are read as the digits they
/// look like. Returns `None` when it cannot be a tracking code.
pub fn normalise_tracking_code(input: &str) -> Option<String> {
    let mut symbols: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if symbols.starts_with("BNS") {
        symbols.drain(..3);
    }
    if symbols.len() == TRACKING_CODE_SYMBOLS
        && symbols.bytes().all(|b| TRACKING_ALPHABET.contains(&b))
    {
        Some(symbols)
    } else {
        None
    }
}

/// The hash the ledger stores for a tracking code, or `None` for text that is not one.
pub fn tracking_code_hash(code: &str) -> Option<TrackingCodeHash> {
    let symbols = normalise_tracking_code(code)?;
    let mut hasher = blake3::Hasher::new_derive_key("bansos-ledger 2026 tracking code v1");
    hasher.update(symbols.as_bytes());
    Some(Hash32(*hasher.finalize().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pseudonym_depends_on_the_key_and_ignores_formatting() {
        let key = SecretKey([7; 32]);
        let other = SecretKey([8; 32]);
        assert_eq!(
            pseudonym(&key, "3510010101900001"),
            pseudonym(&key, "3510 0101-0190 0001")
        );
        assert_ne!(
            pseudonym(&key, "3510010101900001"),
            pseudonym(&other, "3510010101900001")
        );
        // A keyed pseudonym is not the plain hash an attacker could enumerate.
        assert_ne!(
            pseudonym(&key, "3510010101900001"),
            Hash32::digest(b"3510010101900001")
        );
    }

    #[test]
    fn tracking_codes_normalise_and_hash() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let code = new_tracking_code(&mut rng);
        assert_eq!(code.len(), 3 + 3 + TRACKING_CODE_SYMBOLS);
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(tracking_code_hash(&code), tracking_code_hash(&typed));
        assert!(tracking_code_hash(&code).is_some());
        assert_eq!(tracking_code_hash("BNS-1234"), None);
        assert_eq!(tracking_code_hash("BNS-UUUU-UUUU-UUUU"), None);
        assert_eq!(
            normalise_tracking_code("bns-0o1i-l234-5678").as_deref(),
            Some("001112345678")
        );
    }
}
