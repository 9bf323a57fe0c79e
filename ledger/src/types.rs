//! Small value types shared by transactions, state and blocks.
//!
//! Every type here has one canonical binary form (borsh, which the hashes and signatures
//! cover) and one JSON form (serde, for the HTTP boundary). Byte strings are lowercase hex
//! in JSON so that hashes read the same everywhere: in the API, in logs and in audit output.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits::{CODE_BYTES_MAX, REGION_CODE_BYTES_MAX};

/// Defines a fixed-size byte array newtype that serialises as lowercase hex in JSON.
macro_rules! hex_bytes_type {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The length of the value in bytes.
            pub const LEN: usize = $len;

            /// Returns the raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Returns the value as lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Calls `use_hex` with the value as lowercase hex, written on the stack: the
            /// formatting of a hash (every transaction's, in every batch's answer) needs no
            /// allocation of its own.
            fn with_hex<R>(&self, use_hex: impl FnOnce(&str) -> R) -> R {
                let mut buf = [0u8; $len * 2];
                hex::encode_to_slice(self.0, &mut buf)
                    .expect("invariant broken: the buffer holds two hex digits a byte");
                use_hex(std::str::from_utf8(&buf).expect("invariant broken: hex digits are ASCII"))
            }

            /// Parses lowercase or uppercase hex of exactly the right length.
            pub fn from_hex(text: &str) -> Result<Self, HexError> {
                let mut bytes = [0u8; $len];
                hex::decode_to_slice(text, &mut bytes).map_err(|_| HexError {
                    expected_bytes: $len,
                    got_chars: text.len(),
                })?;
                Ok(Self(bytes))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.with_hex(|hex| write!(f, "{}({hex})", stringify!($name)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.with_hex(|hex| f.write_str(hex))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.with_hex(|hex| serializer.serialize_str(hex))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as Deserialize>::deserialize(deserializer)?;
                Self::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A hex string that did not decode to the expected number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected_bytes} bytes as {} hex characters, got {got_chars} characters that are not valid hex of that length", expected_bytes * 2)]
pub struct HexError {
    /// The number of bytes the type holds.
    pub expected_bytes: usize,
    /// The length of the text that was given.
    pub got_chars: usize,
}

hex_bytes_type!(
    /// A BLAKE3-256 digest: transaction hashes, block hashes, roots, evidence hashes.
    Hash32,
    32
);

hex_bytes_type!(
    /// An ed25519 public key (32 bytes, compressed Edwards point).
    PublicKey,
    32
);

hex_bytes_type!(
    /// An ed25519 signature (64 bytes).
    SignatureBytes,
    64
);

impl Hash32 {
    /// The all-zero hash, used as the "previous hash" of nothing.
    pub const ZERO: Hash32 = Hash32([0u8; 32]);

    /// BLAKE3 of `bytes`.
    pub fn digest(bytes: &[u8]) -> Hash32 {
        Hash32(*blake3::hash(bytes).as_bytes())
    }
}

/// The hash of a signed transaction: BLAKE3 of its canonical bytes.
pub type TxHash = Hash32;
/// The hash of a block header.
pub type BlockHash = Hash32;

/// An amount of money in whole rupiah. Aid is never fractional and never floating point.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Rupiah(pub u64);

impl Rupiah {
    /// Adds, or returns `None` on overflow: budget sums must never wrap.
    pub fn checked_add(self, other: Rupiah) -> Option<Rupiah> {
        self.0.checked_add(other.0).map(Rupiah)
    }
}

impl fmt::Display for Rupiah {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rp{}", self.0)
    }
}

/// Defines a short textual code (region, program, period, organisation id) with a
/// validated character set, so that codes can be used as parts of storage keys.
macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $allowed:expr) => {
        $(#[$doc])*
        ///
        /// Held inline (at most the code's longest, zero-padded): decoding one allocates
        /// nothing, and every transaction, key record and beneficiary record decoded holds
        /// codes. Zero sorts before every allowed character, so the derived order is the
        /// text's order.
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name {
            bytes: [u8; $max],
            len: u8,
        }

        // The length is held in a byte.
        const _: () = assert!($max <= u8::MAX as usize);

        impl TryFrom<String> for $name {
            type Error = CodeError;
            fn try_from(text: String) -> Result<Self, CodeError> {
                Self::new(text)
            }
        }

        impl From<$name> for String {
            fn from(code: $name) -> String {
                code.as_str().to_owned()
            }
        }

        // The encoding is a borsh string's (a u32 length, then the bytes).
        impl BorshSerialize for $name {
            fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
                BorshSerialize::serialize(self.as_str(), writer)
            }
        }

        // Decoding validates, so a code read from the wire or from disk always follows its
        // format and can be used as part of a storage key. A length beyond the longest code
        // is refused before anything more is read.
        impl BorshDeserialize for $name {
            fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
                let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
                let len = u32::deserialize_reader(reader)? as usize;
                if len > $max {
                    return Err(invalid(format!(
                        "a {} of {len} bytes; at most {}", stringify!($name), $max
                    )));
                }
                let mut bytes = [0u8; $max];
                reader.read_exact(&mut bytes[..len])?;
                let text = std::str::from_utf8(&bytes[..len]).map_err(|e| invalid(e.to_string()))?;
                Self::from_str_checked(text).map_err(|e| invalid(e.to_string()))
            }
        }

        impl $name {
            /// The longest code accepted, in bytes.
            pub const BYTES_MAX: usize = $max;

            /// Validates and wraps a code.
            pub fn new(text: impl Into<String>) -> Result<Self, CodeError> {
                Self::from_str_checked(&text.into())
            }

            /// Validates and copies a code.
            fn from_str_checked(text: &str) -> Result<Self, CodeError> {
                Self::validate(text)?;
                let mut bytes = [0u8; $max];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Ok(Self {
                    bytes,
                    len: text.len() as u8,
                })
            }

            /// Checks the length and characters of a code.
            pub fn validate(text: &str) -> Result<(), CodeError> {
                let allowed: fn(char) -> bool = $allowed;
                if text.is_empty() || text.len() > $max {
                    return Err(CodeError { kind: stringify!($name), text: text.chars().take(40).collect(), reason: "length must be 1 to the maximum" });
                }
                if !text.chars().all(allowed) {
                    return Err(CodeError { kind: stringify!($name), text: text.chars().take(40).collect(), reason: "contains a character that is not allowed" });
                }
                Ok(())
            }

            /// Returns the code as text.
            pub fn as_str(&self) -> &str {
                std::str::from_utf8(&self.bytes[..usize::from(self.len)])
                    .expect("invariant broken: only validated ASCII is held")
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A code that does not follow its format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {text:?}: {reason}")]
pub struct CodeError {
    /// Which kind of code.
    pub kind: &'static str,
    /// The offending text (truncated).
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

code_type!(
    /// A hierarchical region code in the Kemendagri style: province `35`, regency `35.10`,
    /// district `35.10.01`, village `35.10.01.2001`. A code lies within another when it
    /// equals it or extends it after a dot.
    RegionCode,
    REGION_CODE_BYTES_MAX,
    |c| c.is_ascii_digit() || c == '.'
);

code_type!(
    /// A program code such as `PKH` or `BPNT`.
    ProgramCode,
    CODE_BYTES_MAX,
    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'
);

code_type!(
    /// A payment period within a program, such as `2026-T4` (PKH tahap 4) or `2026-05`.
    PeriodCode,
    CODE_BYTES_MAX,
    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'
);

code_type!(
    /// An organisation's identifier in genesis, such as `kemensos` or `pemda-3510`.
    OrgId,
    CODE_BYTES_MAX,
    |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
);

impl RegionCode {
    /// True when `self` is `scope` or lies beneath it (`35.10.01.2001` is within `35.10`).
    pub fn is_within(&self, scope: &RegionCode) -> bool {
        let inner = self.as_str();
        let outer = scope.as_str();
        inner == outer
            || (inner.starts_with(outer) && inner.as_bytes().get(outer.len()) == Some(&b'.'))
    }

    /// The parent region code, or `None` for a province.
    pub fn parent(&self) -> Option<RegionCode> {
        let text = self.as_str();
        text.rfind('.').map(|cut| {
            let mut parent = self.clone();
            parent.bytes[cut..].fill(0);
            parent.len = cut as u8;
            parent
        })
    }
}

/// A keyed pseudonym of a beneficiary (see [`crate::privacy`]). It is not a hash of the NIK
/// alone: without the secret key it cannot be linked to an identity number.
pub type Pseudonym = Hash32;

/// The hash of a citizen's tracking code; the code itself never reaches the ledger.
pub type TrackingCodeHash = Hash32;

/// Identifies an allocation: derived from program, period and beneficiary, so a second
/// allocation of the same aid to the same person in the same period is detectable by key.
pub type AllocationId = Hash32;

/// Identifies an objection: the hash of the transaction that filed it.
pub type ObjectionId = Hash32;

/// Time in milliseconds since the Unix epoch, as agreed by consensus (never read from a
/// clock inside the ledger).
pub type TimeMs = u64;

/// Block height. Height 0 is genesis; the first block is height 1.
pub type Height = u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_within_requires_a_dot_boundary() {
        let village = RegionCode::new("35.10.01.2001").unwrap();
        assert!(village.is_within(&RegionCode::new("35.10").unwrap()));
        assert!(village.is_within(&RegionCode::new("35.10.01.2001").unwrap()));
        assert!(!village.is_within(&RegionCode::new("35.1").unwrap()));
        assert!(!RegionCode::new("35.100")
            .unwrap()
            .is_within(&RegionCode::new("35.10").unwrap()));
        assert_eq!(village.parent().unwrap().as_str(), "35.10.01");
    }

    #[test]
    fn codes_reject_bad_characters_and_lengths() {
        assert!(RegionCode::new("35.10; DROP").is_err());
        assert!(ProgramCode::new("").is_err());
        assert!(OrgId::new("Kemensos").is_err());
        assert!(PeriodCode::new("x".repeat(100)).is_err());
    }

    #[test]
    fn byte_values_format_as_their_lowercase_hex() {
        let hash = Hash32([0xab; 32]);
        assert_eq!(hash.to_string(), "ab".repeat(32));
        assert_eq!(format!("{hash:?}"), format!("Hash32({})", "ab".repeat(32)));
        let signature = SignatureBytes(std::array::from_fn(|i| i as u8));
        assert_eq!(signature.to_string(), hex::encode(signature.0));
        assert_eq!(
            serde_json::to_string(&signature).unwrap(),
            format!("\"{}\"", hex::encode(signature.0))
        );
    }

    #[test]
    fn hashes_round_trip_through_hex_json() {
        let hash = Hash32::digest(b"bansos");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", hash.to_hex()));
        let back: Hash32 = serde_json::from_str(&json).unwrap();
        assert_eq!(back, hash);
        assert!(serde_json::from_str::<Hash32>("\"abcd\"").is_err());
    }

    #[test]
    fn decoding_a_code_validates_it_in_json_and_borsh() {
        let code: RegionCode = serde_json::from_str("\"35.10\"").unwrap();
        assert_eq!(code.as_str(), "35.10");
        assert!(serde_json::from_str::<RegionCode>("\"35/10\"").is_err());
        let bad = borsh::to_vec(&"35/10".to_string()).unwrap();
        assert!(borsh::from_slice::<RegionCode>(&bad).is_err());
    }

    #[test]
    fn codes_encode_as_borsh_strings_and_sort_as_their_text() {
        for text in ["35", "35.10.01.2001", &"9".repeat(REGION_CODE_BYTES_MAX)] {
            let code = RegionCode::new(text).unwrap();
            let bytes = borsh::to_vec(&code).unwrap();
            assert_eq!(bytes, borsh::to_vec(&text.to_string()).unwrap());
            assert_eq!(borsh::from_slice::<RegionCode>(&bytes).unwrap(), code);
        }
        let mut texts = vec!["35.10", "35", "35.1", "35.10.01", "36", "35.100", "3"];
        let mut codes: Vec<RegionCode> =
            texts.iter().map(|t| RegionCode::new(*t).unwrap()).collect();
        texts.sort();
        codes.sort();
        let sorted: Vec<&str> = codes.iter().map(RegionCode::as_str).collect();
        assert_eq!(sorted, texts);
        assert_eq!(
            RegionCode::new("35.10.01").unwrap().parent(),
            Some(RegionCode::new("35.10").unwrap())
        );
    }

    #[test]
    fn a_code_longer_than_its_longest_is_refused_before_it_is_read() {
        // A length of 2^31 with no bytes after it: refused for the length, not for the
        // missing bytes (and nothing of that size is allocated).
        let mut bytes = (1u32 << 31).to_le_bytes().to_vec();
        let error = borsh::from_slice::<OrgId>(&bytes).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
        bytes = borsh::to_vec(&"a".repeat(CODE_BYTES_MAX + 1)).unwrap();
        assert!(borsh::from_slice::<OrgId>(&bytes).is_err());
        bytes = borsh::to_vec(&"a".repeat(CODE_BYTES_MAX)).unwrap();
        assert_eq!(
            borsh::from_slice::<OrgId>(&bytes).unwrap().as_str().len(),
            CODE_BYTES_MAX
        );
    }
}
