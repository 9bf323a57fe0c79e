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
/// Random symbols in a tracking code: 20 × 5 = 100 bits (see ARCHITECTURE.md for why that
/// is out of reach of guessing even with the hashes public).
pub const TRACKING_CODE_SYMBOLS: usize = 20;
/// Symbols per group in the printed form.
pub const TRACKING_CODE_GROUP: usize = 3;
/// The printed form's prefix, optional when typed.
pub const TRACKING_CODE_PREFIX: &str = "BNS";

/// Why typed text is not a tracking code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrackingCodeError {
    #[error("a tracking code has {expected} letters and digits after BNS; this has {found}")]
    Length { expected: usize, found: usize },
    #[error("{0:?} does not occur in tracking codes (they use 0-9 and A-Z without I, L, O, U)")]
    Symbol(char),
    /// The check symbol does not match: a typo (every single wrong symbol and every swap
    /// of two neighbours is caught).
    #[error("the code does not check: a letter or digit is probably mistyped")]
    Check,
}

/// Multiplication in GF(32) with the primitive polynomial x⁵ + x² + 1.
fn gf32_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..5 {
        if b & 1 == 1 {
            product ^= a;
        }
        b >>= 1;
        a <<= 1;
        if a & 0x20 != 0 {
            a ^= 0x25;
        }
    }
    debug_assert!(product < 32);
    product
}

/// The check symbol: Σ αⁱ⁺¹·vᵢ over GF(32), α = x. Distinct nonzero weights catch every
/// single-symbol error; αⁱ ≠ αⁱ⁺¹ catches every swap of two different neighbours.
fn check_symbol(values: &[u8]) -> u8 {
    let mut weight = 1u8;
    let mut sum = 0u8;
    for &value in values {
        weight = gf32_mul(weight, 2);
        sum ^= gf32_mul(weight, value);
    }
    sum
}

/// The printed form of a code's 20 symbol values and its check symbol:
/// `BNS-7K3-Q9X-WDM-2PA-QR4-THZ-8NC` (the last symbol is the check).
fn format_tracking_code(values: &[u8]) -> String {
    debug_assert_eq!(values.len(), TRACKING_CODE_SYMBOLS);
    let mut symbols: Vec<u8> = values.to_vec();
    symbols.push(check_symbol(values));
    let mut code = String::from(TRACKING_CODE_PREFIX);
    for group in symbols.chunks(TRACKING_CODE_GROUP) {
        code.push('-');
        code.extend(
            group
                .iter()
                .map(|&v| char::from(TRACKING_ALPHABET[usize::from(v)])),
        );
    }
    code
}

/// Draws a tracking code.
pub fn new_tracking_code<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let values: Vec<u8> = (0..TRACKING_CODE_SYMBOLS)
        .map(|_| (rng.next_u32() % 32) as u8)
        .collect();
    format_tracking_code(&values)
}

/// Reads a tracking code as a citizen might type it: case, spaces and hyphens are ignored,
/// the prefix is optional, and the letters Crockford's base32 leaves out are read as the
/// digits they look like. Returns the 20 symbol values, the check symbol verified.
pub fn parse_tracking_code(input: &str) -> Result<Vec<u8>, TrackingCodeError> {
    let mut symbols: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    // A bare code may itself begin with B, N, S: the prefix is dropped when it is set
    // apart (`BNS-`, `BNS `) or when the length says it is there.
    let set_apart = input
        .trim_start()
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("BNS-") || p.eq_ignore_ascii_case("BNS "));
    let prefixed_length = TRACKING_CODE_PREFIX.len() + TRACKING_CODE_SYMBOLS + 1;
    if symbols.starts_with(TRACKING_CODE_PREFIX) && (set_apart || symbols.len() == prefixed_length)
    {
        symbols.drain(..TRACKING_CODE_PREFIX.len());
    }
    let found = symbols.chars().count();
    if found != TRACKING_CODE_SYMBOLS + 1 {
        return Err(TrackingCodeError::Length {
            expected: TRACKING_CODE_SYMBOLS + 1,
            found,
        });
    }
    let values = symbols
        .chars()
        .map(|c| {
            TRACKING_ALPHABET
                .iter()
                .position(|&a| char::from(a) == c)
                .map(|v| v as u8)
                .ok_or(TrackingCodeError::Symbol(c))
        })
        .collect::<Result<Vec<u8>, _>>()?;
    let (data, check) = values.split_at(TRACKING_CODE_SYMBOLS);
    if check != [check_symbol(data)] {
        return Err(TrackingCodeError::Check);
    }
    Ok(data.to_vec())
}

/// The printed form of a typed tracking code, or `None` when it is not one.
pub fn normalise_tracking_code(input: &str) -> Option<String> {
    parse_tracking_code(input)
        .ok()
        .map(|values| format_tracking_code(&values))
}

/// The hash the ledger stores for a tracking code, or `None` for text that is not one.
/// A fast, domain-separated hash: with 100 random bits, speed does not help a guesser.
pub fn tracking_code_hash(code: &str) -> Option<TrackingCodeHash> {
    let values = parse_tracking_code(code).ok()?;
    let mut hasher = blake3::Hasher::new_derive_key("bansos-ledger 2026 tracking code v2");
    hasher.update(&values);
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
        // BNS, seven groups of three, hyphens.
        assert_eq!(code.len(), 3 + 7 * 4);
        let typed = code.to_lowercase().replace('-', " ");
        assert_eq!(tracking_code_hash(&code), tracking_code_hash(&typed));
        assert_eq!(
            normalise_tracking_code(&typed).as_deref(),
            Some(code.as_str())
        );
        let bare = code.trim_start_matches("BNS-").replace('-', "");
        assert_eq!(tracking_code_hash(&bare), tracking_code_hash(&code));
        assert!(tracking_code_hash(&code).is_some());
        assert_eq!(
            parse_tracking_code("BNS-1234"),
            Err(TrackingCodeError::Length {
                expected: 21,
                found: 4
            })
        );
        assert_eq!(
            parse_tracking_code(&"U".repeat(21)),
            Err(TrackingCodeError::Symbol('U'))
        );
        // A code cut short after its prefix is too short, not mistyped.
        assert!(matches!(
            parse_tracking_code(&code[..code.len() - 4]),
            Err(TrackingCodeError::Length { found: 18, .. })
        ));
        // O, I and L read as 0, 1 and 1.
        let zeros = format_tracking_code(&[0; TRACKING_CODE_SYMBOLS]);
        assert_eq!(
            tracking_code_hash(&zeros.replace('0', "o")),
            tracking_code_hash(&zeros)
        );
    }

    /// Every single mistyped symbol and every swap of two different neighbours in a code
    /// is caught by the check symbol, for many codes.
    #[test]
    fn the_check_symbol_catches_every_typo_and_neighbour_swap() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        for _ in 0..200 {
            let code = new_tracking_code(&mut rng);
            let symbols: Vec<u8> = code.bytes().filter(|b| *b != b'-').skip(3).collect();
            assert_eq!(symbols.len(), TRACKING_CODE_SYMBOLS + 1);
            for i in 0..symbols.len() {
                for &other in TRACKING_ALPHABET.iter().filter(|&&a| a != symbols[i]) {
                    let mut typo = symbols.clone();
                    typo[i] = other;
                    let text = String::from_utf8(typo).unwrap_or_default();
                    assert_eq!(
                        parse_tracking_code(&text),
                        Err(TrackingCodeError::Check),
                        "{text}"
                    );
                }
                if i + 1 < symbols.len() && symbols[i] != symbols[i + 1] {
                    let mut swapped = symbols.clone();
                    swapped.swap(i, i + 1);
                    let text = String::from_utf8(swapped).unwrap_or_default();
                    assert!(parse_tracking_code(&text).is_err(), "{text}");
                }
            }
        }
    }

    #[test]
    fn gf32_multiplication_is_a_field() {
        // Every nonzero element has an inverse, and α = 2 generates all 31 of them.
        for a in 1..32u8 {
            assert_eq!((1..32u8).filter(|&b| gf32_mul(a, b) == 1).count(), 1, "{a}");
        }
        let mut powers = std::collections::BTreeSet::new();
        let mut x = 1u8;
        for _ in 0..31 {
            x = gf32_mul(x, 2);
            powers.insert(x);
        }
        assert_eq!(powers.len(), 31);
    }
}
