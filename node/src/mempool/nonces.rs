//! One signer's pending transactions by nonce, with the runs of consecutive nonces among
//! them, so that "the first nonce from `n` on that is not pending" (the signer's contiguous
//! frontier, which admission asks of every transaction) is one lookup rather than a walk
//! over the signer's pending nonces. A walk made admitting a signer's `k` pending
//! transactions cost `k²/2` steps, most of admission's time under overload.

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use ledger::types::TxHash;

/// A signer's pending nonces: the transaction at each, and the maximal runs of consecutive
/// ones (first nonce → last nonce, inclusive: a run may end at `u64::MAX`).
#[derive(Default)]
pub(super) struct SignerNonces {
    by_nonce: BTreeMap<u64, TxHash>,
    runs: BTreeMap<u64, u64>,
}

impl SignerNonces {
    /// How many nonces are pending.
    pub(super) fn len(&self) -> usize {
        self.by_nonce.len()
    }

    /// Whether none is.
    pub(super) fn is_empty(&self) -> bool {
        self.by_nonce.is_empty()
    }

    /// The transaction pending at `nonce`.
    pub(super) fn get(&self, nonce: u64) -> Option<TxHash> {
        self.by_nonce.get(&nonce).copied()
    }

    /// Whether a transaction is pending at `nonce`.
    pub(super) fn contains(&self, nonce: u64) -> bool {
        self.by_nonce.contains_key(&nonce)
    }

    /// The lowest pending nonce.
    pub(super) fn first(&self) -> Option<u64> {
        self.by_nonce.keys().next().copied()
    }

    /// The pending nonces in `range`, in order, with their transactions.
    pub(super) fn range(
        &self,
        range: impl RangeBounds<u64>,
    ) -> std::collections::btree_map::Range<'_, u64, TxHash> {
        self.by_nonce.range(range)
    }

    /// The first nonce from `from` on that is not pending (`from` itself when it is not);
    /// `u64::MAX` if every nonce from `from` to it is.
    pub(super) fn frontier(&self, from: u64) -> u64 {
        match self.runs.range(..=from).next_back() {
            Some((_, &last)) if last >= from => last.saturating_add(1),
            _ => from,
        }
    }

    /// Puts `hash` at `nonce`; returns the transaction it replaces there, if any.
    pub(super) fn insert(&mut self, nonce: u64, hash: TxHash) -> Option<TxHash> {
        if let Some(old) = self.by_nonce.insert(nonce, hash) {
            return Some(old);
        }
        let joins_left = nonce
            .checked_sub(1)
            .and_then(|before| self.run_holding(before));
        let right_last = nonce
            .checked_add(1)
            .and_then(|after| self.runs.remove(&after));
        let first = joins_left.map_or(nonce, |(first, _)| first);
        self.runs.insert(first, right_last.unwrap_or(nonce));
        self.debug_check();
        None
    }

    /// Takes the transaction at `nonce` out; returns it, if one was there.
    pub(super) fn remove(&mut self, nonce: u64) -> Option<TxHash> {
        let hash = self.by_nonce.remove(&nonce)?;
        let (first, last) = self
            .run_holding(nonce)
            .expect("every pending nonce lies in a run");
        self.runs.remove(&first);
        if first < nonce {
            self.runs.insert(first, nonce - 1);
        }
        if nonce < last {
            self.runs.insert(nonce + 1, last);
        }
        self.debug_check();
        Some(hash)
    }

    /// The run (first, last) that `nonce` lies in, if it is pending.
    fn run_holding(&self, nonce: u64) -> Option<(u64, u64)> {
        let (&first, &last) = self.runs.range(..=nonce).next_back()?;
        (last >= nonce).then_some((first, last))
    }

    /// The runs cover exactly the pending nonces, each run maximal (O(n): debug builds).
    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            let mut covered = 0;
            let mut previous_last: Option<u64> = None;
            for (&first, &last) in &self.runs {
                assert!(first <= last, "a run ends before it starts");
                assert!(
                    previous_last.is_none_or(|p| p.saturating_add(1) < first),
                    "two runs overlap or touch"
                );
                let pending = self.by_nonce.range(first..=last).count();
                assert_eq!(
                    pending as u64,
                    last - first + 1,
                    "a run holds a nonce not pending"
                );
                covered += pending;
                previous_last = Some(last);
            }
            assert_eq!(
                covered,
                self.by_nonce.len(),
                "a pending nonce outside every run"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The frontier as it was computed before the runs: a walk from `from` over the
    /// pending nonces (`u64::MAX` if it reaches it).
    fn walked(pending: &BTreeMap<u64, TxHash>, from: u64) -> u64 {
        let mut expected = from;
        for &nonce in pending.range(from..).map(|(n, _)| n) {
            if nonce != expected {
                break;
            }
            match expected.checked_add(1) {
                Some(next) => expected = next,
                None => break,
            }
        }
        expected
    }

    fn hash(n: u64) -> TxHash {
        let mut bytes = [0; 32];
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        ledger::types::Hash32(bytes)
    }

    #[test]
    fn the_frontier_is_the_first_nonce_not_pending() {
        let mut nonces = SignerNonces::default();
        for n in [3, 4, 5, 7, 9, 8] {
            assert_eq!(nonces.insert(n, hash(n)), None);
        }
        assert_eq!(nonces.frontier(0), 0);
        assert_eq!(nonces.frontier(3), 6);
        assert_eq!(nonces.frontier(5), 6);
        assert_eq!(nonces.frontier(6), 6);
        assert_eq!(nonces.frontier(7), 10);
        nonces.insert(6, hash(6));
        assert_eq!(nonces.frontier(3), 10);
        assert_eq!(nonces.remove(8), Some(hash(8)));
        assert_eq!(nonces.frontier(3), 8);
        assert_eq!(nonces.frontier(9), 10);
        assert_eq!(nonces.remove(8), None);
        assert_eq!(nonces.insert(9, hash(90)), Some(hash(9)), "a replacement");
        assert_eq!(nonces.frontier(9), 10);
        assert_eq!(nonces.len(), 6);
    }

    #[test]
    fn runs_reach_the_last_nonce_without_overflow() {
        let mut nonces = SignerNonces::default();
        nonces.insert(u64::MAX, hash(1));
        nonces.insert(u64::MAX - 1, hash(2));
        assert_eq!(nonces.frontier(u64::MAX - 1), u64::MAX);
        nonces.insert(0, hash(3));
        assert_eq!(nonces.frontier(0), 1);
        assert_eq!(nonces.remove(u64::MAX), Some(hash(1)));
        assert_eq!(nonces.frontier(u64::MAX - 1), u64::MAX);
        assert_eq!(nonces.frontier(u64::MAX), u64::MAX);
    }

    /// Seeded random inserts and removals over a small range of nonces (from 0, or up to
    /// `u64::MAX`), against a plain map: after each, what the change returned, the count
    /// and the frontier from every nonce are what the map and a walk over it give.
    /// `BANSOS_TEST_SEED` replays a seed.
    #[test]
    fn the_frontier_agrees_with_a_walk_through_random_changes() {
        let seed: u64 = std::env::var("BANSOS_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        eprintln!("seed {seed} (replay with BANSOS_TEST_SEED={seed})");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for base in [0, u64::MAX - 47] {
            let mut nonces = SignerNonces::default();
            let mut model = BTreeMap::new();
            for step in 0..2_000u64 {
                let nonce = base + rng.gen_range(0..48);
                let case = format!("seed {seed}, base {base}, step {step}, nonce {nonce}");
                if rng.gen_bool(0.6) {
                    let got = nonces.insert(nonce, hash(step));
                    assert_eq!(got, model.insert(nonce, hash(step)), "{case}");
                } else {
                    assert_eq!(nonces.remove(nonce), model.remove(&nonce), "{case}");
                }
                assert_eq!(nonces.len(), model.len(), "{case}");
                for from in (base..=base + 47).chain(base.checked_sub(1)) {
                    assert_eq!(nonces.frontier(from), walked(&model, from), "{case}");
                }
            }
        }
    }
}
