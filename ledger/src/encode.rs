//! Canonical encoding of values the ledger built itself.
//!
//! Borsh writes into a `Vec` and fails only on an I/O error of the writer (a `Vec` has none)
//! or on a collection longer than `u32::MAX` entries (every collection here is capped far
//! below that by `limits.rs`). A failure is therefore a programmer error, and it is asserted
//! rather than turned into empty bytes that would be hashed, signed or stored as if valid.

use borsh::BorshSerialize;

/// The canonical (borsh) bytes of `value`.
///
/// # Panics
/// Only if the encoding invariant above is broken, which is a bug, never bad input.
pub fn canonical<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    canonical_after(&[], value)
}

/// `prefix` followed by the canonical bytes of `value` (a domain tag before signed bytes),
/// in one allocation of the exact size.
///
/// # Panics
/// As [`canonical`].
pub fn canonical_after<T: BorshSerialize + ?Sized>(prefix: &[u8], value: &T) -> Vec<u8> {
    let len = prefix.len() + encoded_len(value);
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(prefix);
    let written = value.serialize(&mut bytes);
    assert!(
        written.is_ok(),
        "invariant broken: borsh encoding into a Vec failed: {written:?}"
    );
    debug_assert_eq!(bytes.len(), len, "the encoding's length was miscounted");
    bytes
}

/// How many bytes `value` encodes to, counted without writing them, so that the encoding
/// goes into one allocation of its size, not into a `Vec` that doubles its way up (a
/// transaction's few hundred bytes took six allocations and copies, at every encoding of
/// every transaction at every node: docs/BENCHMARKS.md).
///
/// # Panics
/// As [`canonical`]: counting fails only where writing would.
fn encoded_len<T: BorshSerialize + ?Sized>(value: &T) -> usize {
    borsh::object_length(value).expect("invariant broken: borsh counts what it can write")
}

#[cfg(test)]
mod tests {
    use super::{canonical, canonical_after};

    #[test]
    fn canonical_bytes_are_borsh() {
        let value = (7u32, String::from("bansos"), vec![1u8, 2, 3]);
        assert_eq!(canonical(&value), borsh::to_vec(&value).unwrap());
    }

    #[test]
    fn canonical_bytes_fill_exactly_one_allocation() {
        // Written a few bytes at a time: a growing Vec would end with room to spare.
        let value = (7u32, String::from("bansos"), vec![9u32; 100]);
        let bytes = canonical(&value);
        assert_eq!(bytes.capacity(), bytes.len());
    }

    #[test]
    fn canonical_bytes_after_a_prefix_follow_it() {
        let value = (7u32, String::from("bansos"));
        let bytes = canonical_after(b"domain", &value);
        assert_eq!(&bytes[..6], b"domain");
        assert_eq!(&bytes[6..], borsh::to_vec(&value).unwrap());
        assert_eq!(bytes.capacity(), bytes.len());
    }
}
