//! Provable totals: a Merkle-sum tree over (program, period, region) totals of allocations.
//!
//! Every allocation adds to one **cell**, the beneficiary's region (a village) under its
//! program and period: one beneficiary counted, the amount allocated, the amount disbursed,
//! and the amount whose receipt stands confirmed ([`contribution`]). Cells are the leaves of
//! a tree that follows the region hierarchy:
//!
//! ```text
//! root ─ program ─ period ─ province ─ regency ─ district ─ village
//! ```
//!
//! Each node holds its own cell's totals (`own`, non-zero only where records sit directly at
//! that region), the sums of its subtree, a `salt` (the XOR of a SHA-256 of each allocation
//! record in its cell, as it now stands), and an entry per child. Its hash is
//!
//! ```text
//! own_commitment = SHA-256("bansos-ledger/totals-own/v2\0" ‖ own ‖ salt)
//! hash = SHA-256("bansos-ledger/totals/v2\0" ‖ u8 len(segment) ‖ segment ‖ sums
//!                ‖ own_commitment ‖ u32 n ‖ child hash × n)
//!                                   (totals as 4 × u64 big-endian, children sorted)
//! ```
//!
//! and the root's hash is committed in every block header (`totals_root`) and in every
//! checkpoint note (the `bansos-totals` extension line), so a total the explorer shows is
//! proven by the chain of node preimages from it up to a signed checkpoint ([`NodeProof`]):
//! the same validator signatures that prove a log entry prove a village total.
//!
//! Every validator recomputes the tree while executing a block and refuses a header whose
//! root differs, and so does `bansos audit verify` when it replays the chain: a total is
//! exactly the sum of committed allocation records.
//!
//! **Privacy.** A node's hash commits to its children's hashes, never to their totals in
//! the clear, and to its own records' totals only through `own_commitment`. The `salt` of a
//! cell is derived from its allocation records, which name pseudonyms. A sibling's hash in a
//! proof, or an ancestor's own commitment, therefore cannot be brute-forced back to a small,
//! suppressed count: only the consortium, which holds the records, could recompute it. A
//! proof opens a node's own totals (gives `own` and `salt`) only where they are published;
//! the ancestors on its path show their sums, which count at least as many beneficiaries as
//! the node proven.
//!
//! **Invariant:** `sums == own + Σ children.sums` at every node, after every block; checked
//! arithmetic, since a total can never overflow `u64` Rupiah without a broken rule.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::LedgerError;
use crate::rules::Overlay;
use crate::state::{keys, AllocationRecord};
use crate::store::{Column, Store};
use crate::types::{Hash32, PeriodCode, ProgramCode, RegionCode};

/// Domain separation for node hashes.
pub const TOTALS_DOMAIN: &[u8] = b"bansos-ledger/totals/v2\0";
/// Domain separation for a node's commitment to its own records' totals.
pub const OWN_DOMAIN: &[u8] = b"bansos-ledger/totals-own/v2\0";
/// Domain separation for a cell's salt chain.
const SALT_DOMAIN: &[u8] = b"bansos-ledger/totals-salt/v1\0";
/// The extension line of a checkpoint note that carries the totals root.
pub const CHECKPOINT_LINE_PREFIX: &str = "bansos-totals ";
/// The most children a node may list: provinces, regencies per province, districts per
/// regency, villages per district, programs, periods per program. Indonesia's largest
/// district has under 100 villages; a program runs a few periods a year.
pub const NODE_CHILDREN_MAX: usize = 4_096;

/// The totals of one cell or subtree.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Totals {
    /// Beneficiaries allocated aid (one allocation each per program period).
    pub beneficiaries: u64,
    /// Rupiah allocated.
    pub allocated: u64,
    /// Rupiah disbursed.
    pub disbursed: u64,
    /// Rupiah whose receipt stands confirmed.
    pub confirmed: u64,
}

impl Totals {
    fn fields(&self) -> [u64; 4] {
        [
            self.beneficiaries,
            self.allocated,
            self.disbursed,
            self.confirmed,
        ]
    }

    fn from_fields([beneficiaries, allocated, disbursed, confirmed]: [u64; 4]) -> Totals {
        Totals {
            beneficiaries,
            allocated,
            disbursed,
            confirmed,
        }
    }

    /// `op` field by field; `None` if it fails for any field.
    fn zip_with(&self, other: &Totals, op: fn(u64, u64) -> Option<u64>) -> Option<Totals> {
        let (a, b) = (self.fields(), other.fields());
        let mut out = [0u64; 4];
        for i in 0..4 {
            out[i] = op(a[i], b[i])?;
        }
        Some(Totals::from_fields(out))
    }

    /// Field-wise checked sum.
    pub fn checked_add(&self, other: &Totals) -> Option<Totals> {
        self.zip_with(other, u64::checked_add)
    }

    /// Field-wise checked difference.
    pub fn checked_sub(&self, other: &Totals) -> Option<Totals> {
        self.zip_with(other, u64::checked_sub)
    }

    /// The 32 bytes hashed for these totals.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, value) in self.fields().iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&value.to_be_bytes());
        }
        out
    }
}

/// What one allocation record adds to its cell. A receipt stands confirmed when the
/// beneficiary's own statement, or failing that the first confirmation, says received.
pub fn contribution(record: &AllocationRecord) -> Totals {
    let disbursed = record.disbursement.as_ref().map_or(0, |d| d.amount.0);
    let statement = record
        .beneficiary_statement
        .as_ref()
        .or(record.receipt.as_ref());
    let confirmed = match statement {
        Some(s) if s.received => disbursed,
        _ => 0,
    };
    Totals {
        beneficiaries: 1,
        allocated: record.amount.0,
        disbursed,
        confirmed,
    }
}

/// Where a node sits in the tree.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodePath {
    Root,
    Program(ProgramCode),
    Period(ProgramCode, PeriodCode),
    Region(ProgramCode, PeriodCode, RegionCode),
}

impl NodePath {
    /// The node above this one, or `None` for the root.
    pub fn parent(&self) -> Option<NodePath> {
        match self {
            NodePath::Root => None,
            NodePath::Program(_) => Some(NodePath::Root),
            NodePath::Period(program, _) => Some(NodePath::Program(program.clone())),
            NodePath::Region(program, period, region) => Some(match region.parent() {
                Some(up) => NodePath::Region(program.clone(), period.clone(), up),
                None => NodePath::Period(program.clone(), period.clone()),
            }),
        }
    }

    /// The name of the node among its siblings: the program, the period or the full
    /// region code (empty for the root).
    pub fn segment(&self) -> &str {
        match self {
            NodePath::Root => "",
            NodePath::Program(program) => program.as_str(),
            NodePath::Period(_, period) => period.as_str(),
            NodePath::Region(_, _, region) => region.as_str(),
        }
    }

    /// Steps from the root.
    pub fn depth(&self) -> usize {
        match self {
            NodePath::Root => 0,
            NodePath::Program(_) => 1,
            NodePath::Period(..) => 2,
            NodePath::Region(_, _, region) => 3 + region.as_str().matches('.').count(),
        }
    }

    /// The state key of the node's record.
    pub fn key(&self) -> Vec<u8> {
        match self {
            NodePath::Root => keys::totals(&[]),
            NodePath::Program(p) => keys::totals(&[p.as_str()]),
            NodePath::Period(p, q) => keys::totals(&[p.as_str(), q.as_str()]),
            NodePath::Region(p, q, r) => keys::totals(&[p.as_str(), q.as_str(), r.as_str()]),
        }
    }
}

/// A child as its parent records it: the hash is what the parent's hash commits to; the
/// sums are kept beside it so that one read answers a dashboard.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChildEntry {
    pub segment: String,
    pub hash: Hash32,
    pub sums: Totals,
}

/// One node of the tree, as stored.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TotalsNode {
    /// Records that sit at this region itself.
    pub own: Totals,
    /// XOR of [`record_digest`] over the records in `own` (zero while there are none).
    pub salt: Hash32,
    /// `own` plus every child's sums.
    pub sums: Totals,
    /// Sorted by segment.
    pub children: Vec<ChildEntry>,
}

impl Default for TotalsNode {
    fn default() -> TotalsNode {
        TotalsNode {
            own: Totals::default(),
            salt: Hash32::ZERO,
            sums: Totals::default(),
            children: Vec::new(),
        }
    }
}

impl TotalsNode {
    /// The node's hash under `segment` (see the module documentation).
    pub fn hash(&self, segment: &str) -> Hash32 {
        let hashes: Vec<Hash32> = self.children.iter().map(|c| c.hash).collect();
        node_hash(segment, &self.sums, &self.own_commitment(), &hashes)
    }

    /// What the node's hash commits to for its own records.
    pub fn own_commitment(&self) -> Hash32 {
        own_commitment(&self.own, &self.salt)
    }
}

/// The commitment to a node's own records' totals, blinded by their salt.
pub fn own_commitment(own: &Totals, salt: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update(OWN_DOMAIN);
    hasher.update(own.to_bytes());
    hasher.update(salt.0);
    Hash32(hasher.finalize().into())
}

/// The hash of a node from its parts.
pub fn node_hash(
    segment: &str,
    sums: &Totals,
    own_commitment: &Hash32,
    children: &[Hash32],
) -> Hash32 {
    assert!(
        segment.len() <= u8::MAX as usize,
        "segments are short codes"
    );
    let mut hasher = Sha256::new();
    hasher.update(TOTALS_DOMAIN);
    hasher.update([segment.len() as u8]);
    hasher.update(segment.as_bytes());
    hasher.update(sums.to_bytes());
    hasher.update(own_commitment.0);
    hasher.update((children.len() as u32).to_be_bytes());
    for child in children {
        hasher.update(child.0);
    }
    Hash32(hasher.finalize().into())
}

/// The root hash of a tree with no allocations yet.
pub fn empty_root() -> Hash32 {
    TotalsNode::default().hash("")
}

/// Reads a node (an absent node is an empty one).
pub fn node<S: Store + ?Sized>(store: &S, path: &NodePath) -> Result<TotalsNode, LedgerError> {
    match store.get(Column::State, &path.key())? {
        None => Ok(TotalsNode::default()),
        Some(bytes) => borsh::from_slice(&bytes)
            .map_err(|e| LedgerError::Corrupt(format!("totals node {path:?}: {e}"))),
    }
}

fn overflow() -> LedgerError {
    LedgerError::Overflow("totals")
}

/// Brings the tree up to date with a block's allocation writes: `changed` lists each
/// allocation key the block wrote, with the record before the block (if any) and after.
/// Returns the new root hash. Runs after the block's transactions, inside its overlay, so
/// the node records are part of the block's state writes.
pub(crate) fn update(
    overlay: &mut Overlay<'_>,
    changed: &[(Vec<u8>, Option<AllocationRecord>, AllocationRecord)],
) -> Result<Hash32, LedgerError> {
    let mut dirty: BTreeMap<(Reverse<usize>, NodePath), TotalsNode> = BTreeMap::new();
    for (key, before, after) in changed {
        let path = NodePath::Region(
            after.program.clone(),
            after.period.clone(),
            after.village.clone(),
        );
        let slot = (Reverse(path.depth()), path.clone());
        if !dirty.contains_key(&slot) {
            let current = overlay.get::<TotalsNode>(&path.key())?.unwrap_or_default();
            dirty.insert(slot.clone(), current);
        }
        let node = dirty.get_mut(&slot).expect("just inserted");
        let old = before.as_ref().map(contribution).unwrap_or_default();
        node.own = node
            .own
            .checked_sub(&old)
            .and_then(|own| own.checked_add(&contribution(after)))
            .ok_or_else(overflow)?;
        if let Some(before) = before {
            node.salt = xor(&node.salt, &record_digest(key, before));
        }
        node.salt = xor(&node.salt, &record_digest(key, after));
    }
    // Deepest first: a node is final once all its dirty children have reported to it.
    while let Some(((_, path), mut node)) = dirty.pop_first() {
        let hash = settle(&mut node, &path)?;
        overlay.put(path.key(), &node);
        let Some(parent_path) = path.parent() else {
            overlay.commit_tx();
            return Ok(hash);
        };
        let slot = (Reverse(parent_path.depth()), parent_path.clone());
        if !dirty.contains_key(&slot) {
            let current = overlay
                .get::<TotalsNode>(&parent_path.key())?
                .unwrap_or_default();
            dirty.insert(slot.clone(), current);
        }
        let parent = dirty.get_mut(&slot).expect("just inserted");
        set_child(parent, path.segment(), hash, node.sums)?;
    }
    // Nothing changed: the root stands.
    Ok(overlay
        .get::<TotalsNode>(&NodePath::Root.key())?
        .unwrap_or_default()
        .hash(""))
}

/// Sets a node's sums to its own totals plus its children's, and returns its hash.
fn settle(node: &mut TotalsNode, path: &NodePath) -> Result<Hash32, LedgerError> {
    node.sums = node
        .children
        .iter()
        .try_fold(node.own, |sum, child| sum.checked_add(&child.sums))
        .ok_or_else(overflow)?;
    Ok(node.hash(path.segment()))
}

/// Inserts or replaces a child's entry, keeping the list sorted.
fn set_child(
    parent: &mut TotalsNode,
    segment: &str,
    hash: Hash32,
    sums: Totals,
) -> Result<(), LedgerError> {
    let entry = ChildEntry {
        segment: segment.to_owned(),
        hash,
        sums,
    };
    match parent
        .children
        .binary_search_by(|c| c.segment.as_str().cmp(segment))
    {
        Ok(at) => parent.children[at] = entry,
        Err(at) => {
            if parent.children.len() >= NODE_CHILDREN_MAX {
                return Err(LedgerError::InvalidField(format!(
                    "a totals node may have at most {NODE_CHILDREN_MAX} children"
                )));
            }
            parent.children.insert(at, entry);
        }
    }
    Ok(())
}

fn xor(a: &Hash32, b: &Hash32) -> Hash32 {
    Hash32(std::array::from_fn(|i| a.0[i] ^ b.0[i]))
}

/// One record's share of its cell's salt.
fn record_digest(key: &[u8], record: &AllocationRecord) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update(SALT_DOMAIN);
    hasher.update((key.len() as u32).to_be_bytes());
    hasher.update(key);
    hasher.update(crate::encode::canonical(record));
    Hash32(hasher.finalize().into())
}

/// Rebuilds the whole tree from the allocation records in `store`, independently of the
/// incremental updates, and returns its root hash: what `bansos audit verify` compares with
/// the last header.
pub fn recompute_root<S: Store + ?Sized>(store: &S) -> Result<Hash32, LedgerError> {
    const PAGE: usize = 4_096;
    let prefix = keys::allocations();
    let mut cells: BTreeMap<NodePath, TotalsNode> = BTreeMap::new();
    let mut start = prefix.clone();
    loop {
        let page = store.scan(Column::State, &prefix, &start, PAGE)?;
        for (key, bytes) in &page {
            let record: AllocationRecord = borsh::from_slice(bytes)
                .map_err(|e| LedgerError::Corrupt(format!("allocation record: {e}")))?;
            let path = NodePath::Region(
                record.program.clone(),
                record.period.clone(),
                record.village.clone(),
            );
            let cell = cells.entry(path).or_default();
            cell.own = cell
                .own
                .checked_add(&contribution(&record))
                .ok_or_else(overflow)?;
            cell.salt = xor(&cell.salt, &record_digest(key, &record));
        }
        match page.last() {
            Some((last, _)) if page.len() == PAGE => {
                start = last.clone();
                start.push(0);
            }
            _ => break,
        }
    }
    let mut pending: BTreeMap<(Reverse<usize>, NodePath), TotalsNode> = cells
        .into_iter()
        .map(|(path, node)| ((Reverse(path.depth()), path), node))
        .collect();
    while let Some(((_, path), mut node)) = pending.pop_first() {
        let hash = settle(&mut node, &path)?;
        let Some(parent) = path.parent() else {
            return Ok(hash);
        };
        let parent = pending
            .entry((Reverse(parent.depth()), parent))
            .or_default();
        set_child(parent, path.segment(), hash, node.sums)?;
    }
    Ok(empty_root())
}

/// One node of a proof: everything its hash is computed from. Its own records' totals are
/// sealed (only their commitment is given) unless the proof opens them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofNode {
    pub segment: String,
    pub sums: Totals,
    pub own_commitment: Hash32,
    /// The node's own totals and salt, when they are published.
    pub opened: Option<(Totals, Hash32)>,
    pub children: Vec<Hash32>,
}

impl ProofNode {
    /// The node with its own records' totals sealed.
    pub fn of(segment: &str, node: &TotalsNode) -> ProofNode {
        ProofNode {
            segment: segment.to_owned(),
            sums: node.sums,
            own_commitment: node.own_commitment(),
            opened: None,
            children: node.children.iter().map(|c| c.hash).collect(),
        }
    }

    /// The node with its own records' totals given in the clear.
    pub fn opened(segment: &str, node: &TotalsNode) -> ProofNode {
        ProofNode {
            opened: Some((node.own, node.salt)),
            ..ProofNode::of(segment, node)
        }
    }

    pub fn hash(&self) -> Hash32 {
        node_hash(
            &self.segment,
            &self.sums,
            &self.own_commitment,
            &self.children,
        )
    }

    /// The opened own totals, checked against the commitment (`None` when sealed).
    pub fn own(&self) -> Result<Option<Totals>, TotalsProofError> {
        match &self.opened {
            None => Ok(None),
            Some((own, salt)) if own_commitment(own, salt) == self.own_commitment => Ok(Some(*own)),
            Some(_) => Err(TotalsProofError::WrongOwn),
        }
    }
}

/// A node's preimage and its ancestors' up to the root: proves the node's totals against a
/// totals root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeProof {
    /// The node first, the root last.
    pub path: Vec<ProofNode>,
}

/// Why a totals proof failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TotalsProofError {
    #[error("the proof is empty")]
    Empty,
    #[error("node {0} is not among its parent's children")]
    NotAChild(usize),
    #[error("node {0} of the proof is not the node claimed or its ancestor")]
    WrongNode(usize),
    #[error("the proof does not end at the root")]
    NotRooted,
    #[error("the proof's root does not match the committed totals root")]
    WrongRoot,
    #[error("the opened own totals do not match the node's commitment")]
    WrongOwn,
}

impl NodeProof {
    /// Builds the proof of `path` from the stored tree, every node sealed.
    pub fn build<S: Store + ?Sized>(store: &S, path: &NodePath) -> Result<NodeProof, LedgerError> {
        let mut nodes = Vec::with_capacity(path.depth() + 1);
        let mut next = Some(path.clone());
        while let Some(at) = next {
            nodes.push(ProofNode::of(at.segment(), &node(store, &at)?));
            next = at.parent();
        }
        Ok(NodeProof { path: nodes })
    }

    /// Like [`NodeProof::build`], with the proven node's own totals opened.
    pub fn build_opened<S: Store + ?Sized>(
        store: &S,
        path: &NodePath,
    ) -> Result<NodeProof, LedgerError> {
        let mut proof = NodeProof::build(store, path)?;
        proof.path[0] = ProofNode::opened(path.segment(), &node(store, path)?);
        Ok(proof)
    }

    /// Checks that the proof names `claimed` and its ancestors, that each node is a child of
    /// the next and that the last hashes to `root`; returns the claimed node's totals.
    pub fn verify(&self, claimed: &NodePath, root: &Hash32) -> Result<Totals, TotalsProofError> {
        let mut expected = Some(claimed.clone());
        for (i, node) in self.path.iter().enumerate() {
            match expected {
                Some(at) if at.segment() == node.segment => expected = at.parent(),
                _ => return Err(TotalsProofError::WrongNode(i)),
            }
        }
        if expected.is_some() {
            return Err(TotalsProofError::NotRooted);
        }
        let first = self.path.first().ok_or(TotalsProofError::Empty)?;
        first.own()?;
        let mut hash = first.hash();
        for (i, parent) in self.path.iter().enumerate().skip(1) {
            if !parent.children.contains(&hash) {
                return Err(TotalsProofError::NotAChild(i - 1));
            }
            hash = parent.hash();
        }
        if hash != *root {
            return Err(TotalsProofError::WrongRoot);
        }
        Ok(first.sums)
    }
}

#[cfg(test)]
mod tests;
