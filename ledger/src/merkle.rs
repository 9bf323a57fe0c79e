//! An append-only Merkle tree for a transparency log.
//!
//! The tree has the shape defined by RFC 6962 and RFC 9162 §2.1: a tree over
//! `n > 1` leaves is split at the largest power of two `k < n`, so that the
//! left subtree is always complete and only the right edge can be ragged.
//! Because that shape never changes once a subtree is complete, every node
//! that is ever computed can be stored once and reused forever, which is what
//! lets the proof generators here work from O(log n) stored subtrees instead
//! of rehashing O(n) leaves.
//!
//! The hash is SHA-256, exactly as RFC 6962 and the C2SP specifications
//! (tlog-checkpoint, tlog-tiles, tlog-witness, tlog-proof) define it, so that
//! tools this project did not write (Go's `sumdb/tlog`, witnesses, browsers'
//! WebCrypto) check its roots and proofs. Leaves are hashed behind a `0x00`
//! prefix and interior nodes behind a `0x01` prefix (RFC 9162 §2.1.1), so a
//! leaf can never be passed off as an interior node or the other way round.
//!
//! The module has three parts:
//! * generators (`root_at`, `inclusion_proof`, `consistency_proof`) that read
//!   complete, aligned subtrees through the [`SubtreeSource`] trait, so that a
//!   database, a file or the in-memory [`MemoryTree`] can back them;
//! * verifiers (`verify_inclusion`, `verify_consistency`) that follow the
//!   RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms literally and share no code
//!   with the generators, so a bug in one side cannot hide a bug in the other;
//! * the [`Frontier`], the right edge of the tree, which is all a writer
//!   needs to append leaves and publish tree heads without reading anything.

use sha2::{Digest, Sha256};

/// A 32-byte SHA-256 digest; every node of the tree, leaf or interior, is one.
pub type Hash = [u8; 32];

/// Tree levels per C2SP tlog-tiles tile: a tile at tile level `L` holds hashes of merkle
/// level `8 L`.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile (2^[`TILE_HEIGHT`]).
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

/// The prefix that marks a leaf hash, per RFC 9162 §2.1.1, so that a leaf can
/// never collide with an interior node.
const LEAF_PREFIX: u8 = 0x00;

/// The prefix that marks an interior node hash, per RFC 9162 §2.1.1, so that
/// an interior node can never collide with a leaf.
const NODE_PREFIX: u8 = 0x01;

/// Hashes one leaf's bytes into its level-0 node.
///
/// The leaf is hashed as `SHA-256(0x00 || leaf_bytes)` (RFC 9162 §2.1.1) so
/// that its digest lives in a different domain from every interior node.
pub fn leaf_hash(leaf_bytes: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([LEAF_PREFIX])
        .chain_update(leaf_bytes)
        .finalize()
        .into()
}

/// Hashes two child nodes into their parent.
///
/// The parent is `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1); the
/// prefix keeps interior nodes apart from leaves, and the fixed order makes
/// the hash commit to which child is on which side.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([NODE_PREFIX])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Returns the tree head of a log with no leaves.
///
/// RFC 9162 §2.1.1 defines the hash of an empty list as the hash of the empty
/// string, `MTH({}) = HASH()`, so the empty log still has a well-defined,
/// publishable root.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Gives access to stored complete subtrees, so that roots and proofs can be
/// built from O(log n) lookups instead of from every leaf.
pub trait SubtreeSource {
    /// The error a lookup can fail with; it is carried unchanged inside
    /// [`MerkleError::Source`] so that the caller can see what went wrong.
    type Error: std::error::Error + 'static;

    /// Returns the hash of the complete, aligned subtree at `level` that
    /// covers the leaves `[index * 2^level, (index + 1) * 2^level)`.
    ///
    /// Level 0 holds the leaf hashes themselves. The functions in this module
    /// only ever ask for subtrees that are complete within the tree size they
    /// were given, so a store that persists every completed node (see
    /// [`Frontier::append`]) can answer every request.
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;

    /// The root of the range `[start, end)` when it is not one complete subtree and the
    /// source already knows it (a memo); `None`, the default, has the caller fold it from
    /// complete subtrees.
    fn known_range(&self, _start: u64, _end: u64) -> Option<Hash> {
        None
    }
}

/// The ways in which building a root or a proof from stored subtrees can
/// fail; the type parameter is the error of the [`SubtreeSource`].
#[derive(Debug, thiserror::Error)]
pub enum MerkleError<E> {
    /// The leaf index is not inside the tree, so no inclusion proof exists.
    #[error("the leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index that was asked for.
        index: u64,
        /// The number of leaves in the tree.
        size: u64,
    },
    /// The two tree sizes cannot be related by a consistency proof.
    #[error(
        "no consistency proof exists from a tree of {first} leaves to a tree of {second} leaves; \
         the first size must be at least 1 and at most the second size"
    )]
    InvalidRange {
        /// The size of the older tree.
        first: u64,
        /// The size of the newer tree.
        second: u64,
    },
    /// The subtree source failed to return a subtree that was needed.
    #[error("the subtree source could not return a needed subtree")]
    Source(#[source] E),
}

/// The ways in which verifying a proof can fail.
///
/// Each reason is its own variant so that a monitor can tell a malformed
/// proof apart from a proof that is well formed but does not match the
/// published tree heads, which is evidence of a misbehaving log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree, so the claim cannot be true.
    #[error("the leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index that was claimed.
        index: u64,
        /// The number of leaves in the tree.
        size: u64,
    },
    /// The two tree sizes cannot be related by a consistency proof.
    #[error(
        "no consistency proof exists from a tree of {first} leaves to a tree of {second} leaves; \
         the first size must be at least 1 and at most the second size"
    )]
    InvalidRange {
        /// The size of the older tree.
        first: u64,
        /// The size of the newer tree.
        second: u64,
    },
    /// The proof has more hashes than the tree sizes call for.
    #[error("the proof has more hashes than the tree sizes call for")]
    ProofTooLong,
    /// The proof has fewer hashes than the tree sizes call for.
    #[error("the proof has fewer hashes than the tree sizes call for")]
    ProofTooShort,
    /// The inclusion proof leads to a root other than the expected one.
    #[error("the root rebuilt from the inclusion proof does not match the expected tree head")]
    RootMismatch,
    /// The consistency proof does not lead back to the older tree head.
    #[error("the root of the first tree rebuilt from the consistency proof does not match its tree head")]
    FirstRootMismatch,
    /// The consistency proof does not lead to the newer tree head.
    #[error("the root of the second tree rebuilt from the consistency proof does not match its tree head")]
    SecondRootMismatch,
    /// Two tree heads for the same size differ, so the log has forked.
    #[error("the two tree heads for the same size of {size} leaves differ")]
    DifferentRootsForSameSize {
        /// The size both tree heads claim.
        size: u64,
    },
}

/// The ways in which building or growing a [`Frontier`] can fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    /// The number of stored hashes does not match the tree size, so the
    /// persisted frontier is corrupt or belongs to another size.
    #[error(
        "a frontier for {size} leaves needs {expected} subtree hashes, one per set bit of the size, \
         but {actual} were given"
    )]
    HashCountMismatch {
        /// The tree size the frontier was said to have.
        size: u64,
        /// The number of hashes that size requires.
        expected: u32,
        /// The number of hashes that were given.
        actual: usize,
    },
    /// The tree already holds `u64::MAX` leaves, so its size cannot grow.
    #[error("the tree already holds the largest representable number of leaves")]
    Full,
}

/// The error of a [`MemoryTree`] lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryTreeError {
    /// The asked-for subtree is not complete in the tree, so it has no hash
    /// yet.
    #[error("the subtree at level {level} with index {index} is not complete in this tree")]
    MissingSubtree {
        /// The level that was asked for.
        level: u8,
        /// The index within that level that was asked for.
        index: u64,
    },
}

/// Returns the largest power of two strictly below `n`, the split point `k`
/// of RFC 9162 §2.1.1.
///
/// Callers only pass `n >= 2`; for smaller inputs it returns 1 instead of
/// failing, so that the function stays total.
fn split_point(n: u64) -> u64 {
    let below = n.saturating_sub(1).max(1);
    1u64 << (63 - below.leading_zeros())
}

/// Computes `MTH(D[start:end])` for a node of the RFC 9162 tree shape from
/// the complete subtrees that make it up.
///
/// Every node that the RFC's recursive split produces starts at a multiple of
/// a power of two at least as large as its width, so the range decomposes
/// into complete aligned subtrees, one per set bit of `end - start`, with the
/// largest on the left. Folding them from the right rebuilds exactly the
/// RFC's right-leaning edge, with at most 64 lookups. An empty range yields
/// the empty root, so the function is total.
fn range_root<S: SubtreeSource>(
    source: &S,
    start: u64,
    end: u64,
) -> Result<Hash, MerkleError<S::Error>> {
    let mut remaining = end.saturating_sub(start);
    if remaining.count_ones() > 1 {
        if let Some(root) = source.known_range(start, end) {
            return Ok(root);
        }
    }
    let mut cursor = end;
    let mut acc: Option<Hash> = None;
    // Peel the smallest subtree off the right end first, so that each new
    // one becomes the left child of everything already folded.
    while remaining != 0 {
        let level = remaining.trailing_zeros();
        let width = 1u64 << level;
        cursor -= width;
        let hash = source
            .subtree(level as u8, cursor >> level)
            .map_err(MerkleError::Source)?;
        acc = Some(match acc {
            None => hash,
            Some(right) => node_hash(&hash, &right),
        });
        remaining &= remaining - 1;
    }
    Ok(acc.unwrap_or_else(empty_root))
}

/// Returns the tree head `MTH(D[0:size])` (RFC 9162 §2.1.1) of the first
/// `size` leaves.
///
/// It reads only the maximal complete subtrees of `[0, size)`, one per set
/// bit of `size`, so it costs O(log n) lookups and works for any past size of
/// a log that keeps its completed nodes.
pub fn root_at<S: SubtreeSource>(source: &S, size: u64) -> Result<Hash, MerkleError<S::Error>> {
    range_root(source, 0, size)
}

/// Returns the inclusion proof `PATH(m, D[n])` of RFC 9162 §2.1.3.1 for the
/// leaf at `index` in the tree of the first `size` leaves.
///
/// The RFC's recursion is walked from the root down: at each node the leaf
/// lies on one side of the split and the other side's root is part of the
/// proof. A sibling on the right edge is not a complete subtree, so it is
/// rebuilt from its complete parts; that happens at most once on the way
/// down, because once the walk enters a complete subtree every later sibling
/// is complete too, which keeps the cost at O(log n) lookups. The hashes are
/// returned leaf-side first, as the RFC orders them.
pub fn inclusion_proof<S: SubtreeSource>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, MerkleError<S::Error>> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::with_capacity(64);
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let mid = start + split_point(end - start);
        if index < mid {
            // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
            path.push(range_root(source, mid, end)?);
            end = mid;
        } else {
            // PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
            path.push(range_root(source, start, mid)?);
            start = mid;
        }
    }
    path.reverse();
    Ok(path)
}

/// Returns the consistency proof `PROOF(m, D[n])` of RFC 9162 §2.1.4.1 that
/// the tree of the first `first` leaves is a prefix of the tree of the first
/// `second` leaves.
///
/// The RFC's `SUBPROOF` recursion is walked from the root down, collecting
/// the sibling roots it appends after each recursive call and finally the
/// root of the node where the old tree ends, unless that node is the whole
/// old tree, which the verifier already knows. Only the first step to the
/// left can meet a right-edge sibling that is not complete, so the cost stays
/// at O(log n) lookups. Equal sizes give an empty proof. A first size of 0 is
/// rejected because RFC 9162 defines no proof from an empty tree, and a first
/// size above the second is rejected because a log only grows.
pub fn consistency_proof<S: SubtreeSource>(
    source: &S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, MerkleError<S::Error>> {
    if first == 0 || first > second {
        return Err(MerkleError::InvalidRange { first, second });
    }
    let mut proof = Vec::with_capacity(64);
    let (mut start, mut end) = (0u64, second);
    // `whole` is the RFC's flag `b`: whether the current node is still the
    // root of the old tree and so need not be sent.
    let mut whole = true;
    // The walk keeps start <= first <= end, and start < first whenever
    // first < end, so every split below has a non-empty side on each hand.
    while first != end {
        let mid = start + split_point(end - start);
        if first <= mid {
            // SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            proof.push(range_root(source, mid, end)?);
            end = mid;
        } else {
            // SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            proof.push(range_root(source, start, mid)?);
            start = mid;
            whole = false;
        }
    }
    // SUBPROOF(m, D[m], false) = {MTH(D[m])}; SUBPROOF(m, D[m], true) = {}.
    if !whole {
        proof.push(range_root(source, start, end)?);
    }
    proof.reverse();
    Ok(proof)
}

/// Shifts both node numbers right until `fnode` is odd or zero, the loop that
/// RFC 9162 §2.1.3.2 and §2.1.4.2 run after combining with a left sibling, so
/// that levels where the right edge has no sibling are skipped.
fn skip_levels_without_sibling(fnode: &mut u64, snode: &mut u64) {
    while *fnode & 1 == 0 && *fnode != 0 {
        *fnode >>= 1;
        *snode >>= 1;
    }
}

/// Checks that `proof` shows the leaf with hash `leaf_hash` at `index` in the
/// tree of `size` leaves whose head is `root`.
///
/// This is the verification algorithm of RFC 9162 §2.1.3.2, step by step. It
/// deliberately shares no code with [`inclusion_proof`], so that it can catch
/// errors in the generator. It also rejects proofs with hashes missing or
/// left over, because a proof of the wrong length belongs to another tree
/// shape.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // Step 1: the index must be inside the tree.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Steps 2 and 3.
    let mut fnode = index;
    let mut snode = size - 1;
    let mut r = *leaf_hash;
    // Step 4.
    for p in proof {
        if snode == 0 {
            return Err(ProofError::ProofTooLong);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            skip_levels_without_sibling(&mut fnode, &mut snode);
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5.
    if snode != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that `proof` shows the tree of `first` leaves with head
/// `first_root` to be a prefix of the tree of `second` leaves with head
/// `second_root`.
///
/// This is the verification algorithm of RFC 9162 §2.1.4.2, step by step,
/// and it shares no code with [`consistency_proof`]. For equal sizes the
/// proof must be empty and the two heads must be equal, because a log that
/// publishes two heads for one size has forked. A first size of 0 is
/// rejected because RFC 9162 defines no proof from an empty tree.
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first == 0 || first > second {
        return Err(ProofError::InvalidRange { first, second });
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::ProofTooLong);
        }
        if first_root != second_root {
            return Err(ProofError::DifferentRootsForSameSize { size: first });
        }
        return Ok(());
    }
    // Step 1: a proof between different sizes is never empty.
    if proof.is_empty() {
        return Err(ProofError::ProofTooShort);
    }
    let mut rest = proof.iter();
    // Step 2: when the old tree is a complete subtree of the new one, the
    // proof leaves out its root, which the verifier already has; putting it
    // in front is the RFC's "prepend first_hash".
    let seed = if first.is_power_of_two() {
        *first_root
    } else {
        match rest.next() {
            Some(h) => *h,
            None => return Err(ProofError::ProofTooShort),
        }
    };
    // Step 3.
    let mut fnode = first - 1;
    let mut snode = second - 1;
    // Step 4: skip the levels where the old tree's last node is a right
    // child, since its left siblings are inside the seed already.
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 5.
    let mut fr = seed;
    let mut sr = seed;
    // Step 6.
    for c in rest {
        if snode == 0 {
            return Err(ProofError::ProofTooLong);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            skip_levels_without_sibling(&mut fnode, &mut snode);
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if fr != *first_root {
        return Err(ProofError::FirstRootMismatch);
    }
    if sr != *second_root {
        return Err(ProofError::SecondRootMismatch);
    }
    Ok(())
}

/// The right edge of the tree: the roots of its maximal complete subtrees,
/// one per set bit of the size.
///
/// That is all a writer needs to append leaves and to publish the current
/// tree head without reading anything back, and it is small (at most 64
/// hashes) so that it can be persisted with every tree head.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    /// The number of leaves in the tree.
    size: u64,
    /// The roots of the maximal complete subtrees, largest (leftmost) first;
    /// always exactly `size.count_ones()` of them.
    hashes: Vec<Hash>,
}

impl Frontier {
    /// Returns the frontier of the empty tree, the starting point of a log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Returns the roots of the maximal complete subtrees, largest (leftmost)
    /// first, so that they can be persisted and handed to
    /// [`Frontier::from_parts`] later.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Rebuilds a frontier from a persisted size and hash list.
    ///
    /// The list must hold exactly one hash per set bit of `size`, because any
    /// other count cannot describe the right edge of a tree of that size and
    /// would make later roots wrong.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, FrontierError> {
        let expected = size.count_ones();
        if hashes.len() != expected as usize {
            return Err(FrontierError::HashCountMismatch {
                size,
                expected,
                actual: hashes.len(),
            });
        }
        Ok(Self { size, hashes })
    }

    /// Rebuilds the frontier of the first `size` leaves from stored subtrees,
    /// with one lookup per set bit of `size`, so that a writer can resume
    /// after a restart without replaying the log.
    pub fn from_source<S: SubtreeSource>(
        source: &S,
        size: u64,
    ) -> Result<Self, MerkleError<S::Error>> {
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            let width = 1u64 << level;
            if size & width != 0 {
                let hash = source
                    .subtree(level as u8, start >> level)
                    .map_err(MerkleError::Source)?;
                hashes.push(hash);
                start += width;
            }
        }
        Ok(Self { size, hashes })
    }

    /// Returns the current tree head, `MTH(D[0:size])` of RFC 9162 §2.1.1.
    ///
    /// The complete subtrees are folded from the right, which rebuilds the
    /// RFC's right-leaning edge without reading anything.
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(last) => iter.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// Appends a leaf and returns every complete subtree node that the append
    /// completed, as `(level, index, hash)`, so that a store can persist them
    /// and later answer [`SubtreeSource`] lookups.
    ///
    /// The first node returned is the leaf itself at level 0. Each trailing
    /// set bit of the old size is a complete subtree that the new leaf's
    /// subtree now matches in width, so the two merge into a parent, exactly
    /// like a carry in binary addition.
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves. Reaching that size takes 2^64
    /// appends, so only a frontier restored with that size can get there: a broken
    /// invariant, not bad input. Use [`Frontier::try_append`] where the size comes
    /// from outside.
    pub fn append(&mut self, leaf_hash: Hash) -> Vec<(u8, u64, Hash)> {
        self.try_append(leaf_hash)
            .expect("a log of u64::MAX leaves cannot grow; no chain gets there")
    }

    /// Appends a leaf like [`Frontier::append`] without reporting the nodes it completes
    /// (no allocation: for a root only, such as a block's `tx_root`).
    ///
    /// # Panics
    /// As [`Frontier::append`].
    pub fn push(&mut self, leaf_hash: Hash) {
        self.try_append_visiting(leaf_hash, |_, _, _| {})
            .expect("a log of u64::MAX leaves cannot grow; no chain gets there");
    }

    /// Appends a leaf like [`Frontier::append`], but reports a full tree as
    /// [`FrontierError::Full`] instead of ignoring the leaf.
    pub fn try_append(&mut self, leaf_hash: Hash) -> Result<Vec<(u8, u64, Hash)>, FrontierError> {
        let mut completed = Vec::with_capacity(self.size.trailing_ones() as usize + 1);
        self.try_append_visiting(leaf_hash, |level, index, hash| {
            completed.push((level, index, hash));
        })?;
        Ok(completed)
    }

    /// Appends a leaf like [`Frontier::try_append`], handing each node the append completes
    /// to `visit` (the leaf first, then upwards) instead of collecting them: no allocation,
    /// for a caller that needs only the root (a block's `tx_root`) or stores the nodes as it
    /// goes.
    pub fn try_append_visiting(
        &mut self,
        leaf_hash: Hash,
        mut visit: impl FnMut(u8, u64, Hash),
    ) -> Result<(), FrontierError> {
        let old_size = self.size;
        let new_size = old_size.checked_add(1).ok_or(FrontierError::Full)?;
        let merges = old_size.trailing_ones() as usize;
        visit(0, old_size, leaf_hash);
        // The `merges` smallest subtrees are the ones the new leaf completes;
        // the invariant hashes.len() == size.count_ones() guarantees there
        // are that many, and saturating_sub keeps this total regardless.
        let keep = self.hashes.len().saturating_sub(merges);
        let mut node = leaf_hash;
        for (step, left) in self.hashes[keep..].iter().rev().enumerate() {
            node = node_hash(left, &node);
            let level = step as u32 + 1;
            visit(level as u8, old_size >> level, node);
        }
        self.hashes.truncate(keep);
        self.hashes.push(node);
        self.size = new_size;
        Ok(())
    }
}

/// An in-memory log that keeps every level of complete subtrees, for tests,
/// tools and small logs that need every proof without a database.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[l][i]` is the complete subtree at level `l` with index `i`;
    /// level 0 holds the leaf hashes.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// Returns an empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of leaves in the log.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Hashes `leaf_bytes` as a leaf, appends it, and returns its index so
    /// that the caller can later ask for its inclusion proof.
    pub fn append(&mut self, leaf_bytes: &[u8]) -> u64 {
        let index = self.size();
        self.push_leaf_hash(leaf_hash(leaf_bytes));
        index
    }

    /// Appends an already hashed leaf and stores every subtree it completes,
    /// so that every later lookup is a plain read.
    pub fn push_leaf_hash(&mut self, h: Hash) {
        let mut node = h;
        let mut level = 0usize;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                return;
            };
            row.push(node);
            // An even count means the new node is a right child whose left
            // sibling is complete, so their parent is complete as well.
            match row.as_slice() {
                [.., left, right] if row.len() % 2 == 0 => node = node_hash(left, right),
                _ => return,
            }
            level += 1;
        }
    }
}

impl SubtreeSource for MemoryTree {
    type Error = MemoryTreeError;

    fn subtree(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(usize::from(level))?.get(i))
            .copied()
            .ok_or(MemoryTreeError::MissingSubtree { level, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The largest power of two strictly below `n`, computed the slow way so
    /// that the reference does not share the library's bit trick.
    fn naive_split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// MTH(D[n]) straight from RFC 9162 §2.1.1.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = naive_split(n);
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    /// PATH(m, D[n]) straight from RFC 9162 §2.1.3.1.
    fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = naive_split(n);
        if m < k {
            let mut p = naive_path(m, &leaves[..k]);
            p.push(naive_root(&leaves[k..]));
            p
        } else {
            let mut p = naive_path(m - k, &leaves[k..]);
            p.push(naive_root(&leaves[..k]));
            p
        }
    }

    /// SUBPROOF(m, D[n], b) straight from RFC 9162 §2.1.4.1.
    fn naive_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![naive_root(leaves)]
            };
        }
        let k = naive_split(n);
        if m <= k {
            let mut p = naive_subproof(m, &leaves[..k], b);
            p.push(naive_root(&leaves[k..]));
            p
        } else {
            let mut p = naive_subproof(m - k, &leaves[k..], false);
            p.push(naive_root(&leaves[..k]));
            p
        }
    }

    /// PROOF(m, D[n]) straight from RFC 9162 §2.1.4.1.
    fn naive_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        naive_subproof(m, leaves, true)
    }

    fn test_leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    fn tree_of(leaves: &[Hash]) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for h in leaves {
            tree.push_leaf_hash(*h);
        }
        tree
    }

    fn flip(h: &Hash) -> Hash {
        let mut out = *h;
        out[7] ^= 0x40;
        out
    }

    #[test]
    fn hashes_use_rfc_domain_separation() {
        let sha256 = |bytes: &[u8]| -> Hash { Sha256::digest(bytes).into() };
        assert_eq!(empty_root(), sha256(b""));
        assert_eq!(leaf_hash(b"abc"), sha256(b"\x00abc"));
        let (l, r) = ([1u8; 32], [2u8; 32]);
        let mut buf = vec![1u8];
        buf.extend_from_slice(&l);
        buf.extend_from_slice(&r);
        assert_eq!(node_hash(&l, &r), sha256(&buf));
        assert_ne!(node_hash(&l, &r), node_hash(&r, &l));
    }

    /// The leaves of the RFC 6962 test vectors (certificate-transparency's
    /// `merkle_tree_test`, also used by transparency-dev/merkle).
    const RFC6962_LEAVES: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];

    /// Their published roots for the first 1 to 8 leaves.
    const RFC6962_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn hex(hash: &Hash) -> String {
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn roots_match_the_published_rfc6962_test_vectors() {
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut tree = MemoryTree::new();
        let mut frontier = Frontier::new();
        for (leaf, expected) in RFC6962_LEAVES.iter().zip(RFC6962_ROOTS) {
            tree.append(leaf);
            frontier.append(leaf_hash(leaf));
            assert_eq!(hex(&root_at(&tree, tree.size()).unwrap()), expected);
            assert_eq!(hex(&frontier.root()), expected);
        }
    }

    #[test]
    fn proofs_match_the_published_rfc6962_test_vectors() {
        let mut tree = MemoryTree::new();
        for leaf in RFC6962_LEAVES {
            tree.append(leaf);
        }
        let path = |proof: Vec<Hash>| -> Vec<String> { proof.iter().map(hex).collect() };
        // Inclusion of leaf 0 in the tree of 8, and of leaf 5 in the tree of 8.
        assert_eq!(
            path(inclusion_proof(&tree, 0, 8).unwrap()),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            path(inclusion_proof(&tree, 5, 8).unwrap()),
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        // Consistency between the trees of 1 and 8, 6 and 8, 2 and 5.
        assert_eq!(
            path(consistency_proof(&tree, 1, 8).unwrap()),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            path(consistency_proof(&tree, 6, 8).unwrap()),
            [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert_eq!(
            path(consistency_proof(&tree, 2, 5).unwrap()),
            [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
            ]
        );
    }

    #[test]
    fn roots_match_naive_and_frontier_for_sizes_0_to_300() {
        let leaves = test_leaves(300);
        let tree = tree_of(&leaves);
        let mut frontier = Frontier::new();
        for size in 0..=300usize {
            let expected = naive_root(&leaves[..size]);
            assert_eq!(
                root_at(&tree, size as u64).unwrap(),
                expected,
                "root_at {size}"
            );
            assert_eq!(frontier.root(), expected, "frontier {size}");
            assert_eq!(frontier.size(), size as u64);
            if let Some(leaf) = leaves.get(size) {
                frontier.append(*leaf);
            }
        }
    }

    #[test]
    fn frontier_from_source_matches_incremental_frontier_for_sizes_0_to_300() {
        let leaves = test_leaves(300);
        let tree = tree_of(&leaves);
        let mut frontier = Frontier::new();
        for size in 0..=300usize {
            assert_eq!(Frontier::from_source(&tree, size as u64).unwrap(), frontier);
            let restored =
                Frontier::from_parts(frontier.size(), frontier.hashes().to_vec()).unwrap();
            assert_eq!(restored, frontier);
            if let Some(leaf) = leaves.get(size) {
                frontier.append(*leaf);
            }
        }
    }

    #[test]
    fn inclusion_proofs_match_naive_and_verify_for_sizes_1_to_160() {
        let leaves = test_leaves(160);
        let tree = tree_of(&leaves);
        for size in 1..=160usize {
            let root = naive_root(&leaves[..size]);
            for index in 0..size {
                let proof = inclusion_proof(&tree, index as u64, size as u64).unwrap();
                assert_eq!(
                    proof,
                    naive_path(index, &leaves[..size]),
                    "{index} in {size}"
                );
                assert_eq!(
                    verify_inclusion(&leaves[index], index as u64, size as u64, &proof, &root),
                    Ok(())
                );
            }
        }
    }

    #[test]
    fn inclusion_verification_rejects_tampered_proofs_for_sizes_1_to_160() {
        let leaves = test_leaves(160);
        let tree = tree_of(&leaves);
        let wrong_leaf = leaf_hash(b"not in the log");
        for size in 1..=160usize {
            let root = naive_root(&leaves[..size]);
            let n = size as u64;
            for index in 0..size {
                let i = index as u64;
                let leaf = &leaves[index];
                let proof = inclusion_proof(&tree, i, n).unwrap();
                let check = |leaf: &Hash, i: u64, n: u64, p: &[Hash]| {
                    verify_inclusion(leaf, i, n, p, &root)
                };
                // Wrong leaf.
                assert!(check(&wrong_leaf, i, n, &proof).is_err());
                // Wrong index: the next leaf, and one past the end.
                if size > 1 {
                    assert!(check(leaf, (i + 1) % n, n, &proof).is_err());
                }
                assert_eq!(
                    check(leaf, n, n, &proof),
                    Err(ProofError::IndexOutOfRange { index: n, size: n })
                );
                // Wrong size. RFC 9162 inclusion proofs do not commit to the
                // size where two sizes give the leaf the same path shape (for
                // example leaf 0 in sizes 3 and 4), so only sizes whose path
                // length differs are required to fail; doubling always adds a
                // level.
                assert!(check(leaf, i, 2 * n, &proof).is_err());
                for other in [size - 1, size + 1] {
                    if index < other && other <= 160 {
                        let other_len = naive_path(index, &leaves[..other]).len();
                        if other_len != proof.len() {
                            assert!(check(leaf, i, other as u64, &proof).is_err());
                        }
                    }
                }
                // One flipped byte in each element.
                for k in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[k] = flip(&bad[k]);
                    assert_eq!(check(leaf, i, n, &bad), Err(ProofError::RootMismatch));
                }
                // Each element removed in turn.
                for k in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad.remove(k);
                    assert!(check(leaf, i, n, &bad).is_err());
                }
                // One element appended.
                let mut longer = proof.clone();
                longer.push(root);
                assert_eq!(check(leaf, i, n, &longer), Err(ProofError::ProofTooLong));
            }
        }
    }

    #[test]
    fn consistency_proofs_match_naive_and_verify_up_to_160() {
        let leaves = test_leaves(160);
        let tree = tree_of(&leaves);
        let roots: Vec<Hash> = (0..=160).map(|n| naive_root(&leaves[..n])).collect();
        for second in 1..=160usize {
            for first in 1..=second {
                let proof = consistency_proof(&tree, first as u64, second as u64).unwrap();
                assert_eq!(
                    proof,
                    naive_proof(first, &leaves[..second]),
                    "{first} -> {second}"
                );
                assert_eq!(
                    verify_consistency(
                        first as u64,
                        second as u64,
                        &roots[first],
                        &roots[second],
                        &proof
                    ),
                    Ok(())
                );
            }
        }
    }

    #[test]
    fn consistency_verification_rejects_tampered_proofs_up_to_160() {
        let leaves = test_leaves(160);
        let tree = tree_of(&leaves);
        let roots: Vec<Hash> = (0..=160).map(|n| naive_root(&leaves[..n])).collect();
        for second in 1..=160usize {
            for first in 1..=second {
                let (m, n) = (first as u64, second as u64);
                let (r1, r2) = (&roots[first], &roots[second]);
                let proof = consistency_proof(&tree, m, n).unwrap();
                // A flipped byte in each element.
                for k in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[k] = flip(&bad[k]);
                    assert!(
                        verify_consistency(m, n, r1, r2, &bad).is_err(),
                        "{m}->{n} #{k}"
                    );
                }
                // Wrong first and second roots.
                assert!(verify_consistency(m, n, &flip(r1), r2, &proof).is_err());
                assert!(verify_consistency(m, n, r1, &flip(r2), &proof).is_err());
                // Each element removed in turn.
                for k in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad.remove(k);
                    assert!(verify_consistency(m, n, r1, r2, &bad).is_err());
                }
                // One element appended.
                let mut longer = proof.clone();
                longer.push(*r2);
                assert_eq!(
                    verify_consistency(m, n, r1, r2, &longer),
                    Err(ProofError::ProofTooLong)
                );
            }
        }
    }

    #[test]
    fn consistency_verification_of_equal_sizes_needs_equal_roots_and_no_proof() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        assert_eq!(verify_consistency(5, 5, &a, &a, &[]), Ok(()));
        assert_eq!(
            verify_consistency(5, 5, &a, &b, &[]),
            Err(ProofError::DifferentRootsForSameSize { size: 5 })
        );
        assert_eq!(
            verify_consistency(5, 5, &a, &a, &[b]),
            Err(ProofError::ProofTooLong)
        );
        assert_eq!(
            verify_consistency(4, 5, &a, &b, &[]),
            Err(ProofError::ProofTooShort)
        );
        assert_eq!(
            verify_consistency(3, 5, &a, &b, &[]),
            Err(ProofError::ProofTooShort)
        );
    }

    #[test]
    fn generators_reject_out_of_range_arguments() {
        let tree = tree_of(&test_leaves(10));
        assert!(matches!(
            inclusion_proof(&tree, 10, 10),
            Err(MerkleError::IndexOutOfRange {
                index: 10,
                size: 10
            })
        ));
        assert!(matches!(
            inclusion_proof(&tree, 0, 0),
            Err(MerkleError::IndexOutOfRange { index: 0, size: 0 })
        ));
        assert!(matches!(
            consistency_proof(&tree, 0, 5),
            Err(MerkleError::InvalidRange {
                first: 0,
                second: 5
            })
        ));
        assert!(matches!(
            consistency_proof(&tree, 0, 0),
            Err(MerkleError::InvalidRange {
                first: 0,
                second: 0
            })
        ));
        assert!(matches!(
            consistency_proof(&tree, 6, 5),
            Err(MerkleError::InvalidRange {
                first: 6,
                second: 5
            })
        ));
    }

    #[test]
    fn verifiers_reject_out_of_range_arguments() {
        let h = leaf_hash(b"x");
        assert_eq!(
            verify_inclusion(&h, 3, 3, &[], &h),
            Err(ProofError::IndexOutOfRange { index: 3, size: 3 })
        );
        assert_eq!(
            verify_inclusion(&h, 0, 0, &[], &h),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_consistency(0, 4, &h, &h, &[]),
            Err(ProofError::InvalidRange {
                first: 0,
                second: 4
            })
        );
        assert_eq!(
            verify_consistency(5, 4, &h, &h, &[]),
            Err(ProofError::InvalidRange {
                first: 5,
                second: 4
            })
        );
    }

    #[test]
    fn missing_subtrees_surface_as_source_errors() {
        let tree = tree_of(&test_leaves(5));
        assert!(matches!(
            root_at(&tree, 6),
            Err(MerkleError::Source(MemoryTreeError::MissingSubtree {
                level: 1,
                index: 2
            }))
        ));
        assert!(matches!(
            inclusion_proof(&tree, 0, 8),
            Err(MerkleError::Source(MemoryTreeError::MissingSubtree { .. }))
        ));
        assert!(matches!(
            Frontier::from_source(&tree, 8),
            Err(MerkleError::Source(MemoryTreeError::MissingSubtree {
                level: 3,
                index: 0
            }))
        ));
        assert_eq!(
            tree.subtree(40, u64::MAX),
            Err(MemoryTreeError::MissingSubtree {
                level: 40,
                index: u64::MAX
            })
        );
    }

    #[test]
    fn frontier_append_reports_exactly_the_complete_subtrees() {
        let leaves = test_leaves(300);
        let tree = tree_of(&leaves);
        let mut frontier = Frontier::new();
        let mut reported = BTreeSet::new();
        for leaf in &leaves {
            let nodes = frontier.append(*leaf);
            assert_eq!(nodes.first().map(|n| n.0), Some(0));
            for node in nodes {
                assert!(reported.insert(node), "node {node:?} reported twice");
            }
        }
        let mut stored = BTreeSet::new();
        for (level, row) in tree.levels.iter().enumerate() {
            for (index, hash) in row.iter().enumerate() {
                stored.insert((level as u8, index as u64, *hash));
            }
        }
        assert_eq!(reported, stored);
        assert_eq!(tree.size(), 300);
    }

    #[test]
    fn a_frontier_pushed_to_has_the_roots_of_one_appended_to() {
        let leaves = test_leaves(300);
        let mut pushed = Frontier::new();
        for (size, leaf) in leaves.iter().enumerate() {
            pushed.push(*leaf);
            assert_eq!(
                pushed.root(),
                naive_root(&leaves[..=size]),
                "size {}",
                size + 1
            );
            assert_eq!(pushed.size(), size as u64 + 1);
        }
    }

    #[test]
    fn frontier_from_parts_checks_hash_count_and_full_tree_cannot_grow() {
        let h = leaf_hash(b"x");
        assert_eq!(
            Frontier::from_parts(6, vec![h]),
            Err(FrontierError::HashCountMismatch {
                size: 6,
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(Frontier::from_parts(0, Vec::new()), Ok(Frontier::new()));
        let mut full = Frontier::from_parts(u64::MAX, vec![h; 64]).unwrap();
        let before = full.clone();
        assert_eq!(full.try_append(h), Err(FrontierError::Full));
        assert_eq!(full, before);
        // `append` treats a full tree as the broken invariant it is.
        let appended = std::panic::catch_unwind(move || full.clone().append(h));
        assert!(appended.is_err(), "append on a full tree must assert");
        // The largest growable frontier still appends and merges all levels.
        let mut big = Frontier::from_parts(u64::MAX - 1, vec![h; 63]).unwrap();
        let nodes = big.append(h);
        assert_eq!(nodes.len(), 1);
        assert_eq!(big.size(), u64::MAX);
    }

    /// A consistent source for arbitrarily large trees whose leaves are all
    /// the same, so that a subtree's hash depends only on its level and costs
    /// O(level) to compute; it counts the lookups it answers.
    struct CountingSource(std::cell::Cell<u64>);

    impl SubtreeSource for CountingSource {
        type Error = std::convert::Infallible;
        fn subtree(&self, level: u8, _index: u64) -> Result<Hash, Self::Error> {
            self.0.set(self.0.get() + 1);
            let mut h = leaf_hash(b"same");
            for _ in 0..level {
                h = node_hash(&h, &h);
            }
            Ok(h)
        }
    }

    #[test]
    fn generators_use_logarithmically_many_lookups_on_huge_trees() {
        let source = CountingSource(std::cell::Cell::new(0));
        let sizes = [u64::MAX, u64::MAX - 1, (1 << 40) + 12345, 1 << 63, 3];
        for &size in &sizes {
            for index in [0, 1, size / 3, size / 2, size - 2, size - 1] {
                source.0.set(0);
                let proof = inclusion_proof(&source, index, size).unwrap();
                assert!(source.0.get() <= 128, "{} lookups", source.0.get());
                assert!(proof.len() <= 64);
                let root = root_at(&source, size).unwrap();
                let leaf = source.subtree(0, index).unwrap();
                assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));
            }
            for first in [1, 2, size / 3, size / 2 + 1, size - 1, size] {
                source.0.set(0);
                let proof = consistency_proof(&source, first, size).unwrap();
                assert!(source.0.get() <= 128, "{} lookups", source.0.get());
                let (r1, r2) = (
                    root_at(&source, first).unwrap(),
                    root_at(&source, size).unwrap(),
                );
                assert_eq!(verify_consistency(first, size, &r1, &r2, &proof), Ok(()));
            }
        }
    }

    #[test]
    fn memory_tree_append_returns_leaf_indices() {
        let mut tree = MemoryTree::new();
        assert_eq!(tree.size(), 0);
        assert_eq!(root_at(&tree, 0).unwrap(), empty_root());
        assert_eq!(tree.append(b"a"), 0);
        assert_eq!(tree.append(b"b"), 1);
        assert_eq!(tree.size(), 2);
        assert_eq!(
            root_at(&tree, 2).unwrap(),
            node_hash(&leaf_hash(b"a"), &leaf_hash(b"b"))
        );
    }
}
