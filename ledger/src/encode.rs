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
    let mut bytes = Vec::new();
    let written = value.serialize(&mut bytes);
    assert!(
        written.is_ok(),
        "invariant broken: borsh encoding into a Vec failed: {written:?}"
    );
    bytes
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn canonical_bytes_are_borsh() {
        let value = (7u32, String::from("bansos"), vec![1u8, 2, 3]);
        assert_eq!(canonical(&value), borsh::to_vec(&value).unwrap());
    }
}
