//! Merkle proof verification accepts exactly the true proofs: a tree of distinct leaves,
//! a true inclusion or consistency proof, then fuzzer-chosen changes to the index, sizes and
//! proof hashes. Verification must succeed if and only if nothing changed (sizes aside:
//! see below).
#![no_main]

use ledger::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root_at, verify_consistency, verify_inclusion,
    MemoryTree,
};
use libfuzzer_sys::fuzz_target;

/// The largest tree built (leaves).
const LEAVES_MAX: u64 = 300;

fn tree(size: u64) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for i in 0..size {
        tree.append(&i.to_be_bytes());
    }
    tree
}

/// Applies the fuzzer's edits to a proof: xor into hashes, truncate, or append.
fn edit(proof: &mut Vec<ledger::merkle::Hash>, edits: &[u8]) {
    for pair in edits.chunks(2) {
        let (op, arg) = (pair[0], *pair.get(1).unwrap_or(&0));
        match op % 3 {
            0 if !proof.is_empty() => {
                let i = arg as usize % proof.len();
                proof[i][op as usize % 32] ^= arg | 1;
            }
            1 => proof.truncate(arg as usize % (proof.len() + 1)),
            _ => proof.push([arg; 32]),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let size = 1 + u64::from(u16::from_le_bytes([data[0], data[1]])) % LEAVES_MAX;
    let other = 1 + u64::from(u16::from_le_bytes([data[2], data[3]])) % size;
    let tweak = data[4];
    let edits = &data[5..];
    let tree = tree(size);
    let root = root_at(&tree, size).expect("root");
    // Inclusion of leaf `other - 1`.
    let index = other - 1;
    let true_proof = inclusion_proof(&tree, index, size).expect("proof");
    let mut proof = true_proof.clone();
    edit(&mut proof, edits);
    let (claimed_index, claimed_size) = match tweak % 4 {
        0 => (index, size),
        1 => (index ^ u64::from(tweak >> 2), size),
        2 => (index, size + u64::from(tweak >> 2)),
        _ => (index, size.saturating_sub(u64::from(tweak >> 2))),
    };
    let leaf = leaf_hash(&index.to_be_bytes());
    let verdict = verify_inclusion(&leaf, claimed_index, claimed_size, &proof, &root).is_ok();
    // The size is bound by the signed checkpoint, not by the proof: a proof may verify
    // for another size with the same path shape. Other sizes only must not panic.
    if claimed_size == size {
        let unchanged = proof == true_proof && claimed_index == index;
        assert_eq!(
            verdict, unchanged,
            "inclusion: verdict {verdict} for an unchanged={unchanged} proof"
        );
    }
    // Consistency from `other` leaves to `size`.
    let first_root = root_at(&tree, other).expect("root");
    let true_proof = consistency_proof(&tree, other, size).expect("proof");
    let mut proof = true_proof.clone();
    edit(&mut proof, edits);
    let claimed_first = if tweak & 1 == 1 {
        other
    } else {
        other ^ u64::from(tweak >> 1)
    };
    let unchanged = proof == true_proof && claimed_first == other;
    let verdict = verify_consistency(claimed_first, size, &first_root, &root, &proof).is_ok();
    assert_eq!(
        verdict, unchanged,
        "consistency: verdict {verdict} for an unchanged={unchanged} proof"
    );
});
