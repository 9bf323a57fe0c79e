//! Submission order: at most one request in flight per signer.
//!
//! A node takes concurrent requests in any order. When two requests in flight both hold
//! transactions of one signer, the later nonces may arrive first, and a node refuses those
//! more than its nonce gap past the signer's pending ones (`nonce_too_far_ahead`): the
//! client must send them again. Before this queue the load tool had up to 16 batches in
//! flight to one validator and resent 8,315–46,361 transactions per 60,000 at peak, each
//! one decoded and checked again by the node. Here each signer's due transactions wait in
//! the signer's own queue while a request holding its earlier ones is unanswered, as an
//! account-based wallet sends one account's transactions in order; requests still go to a
//! node concurrently, each for different signers.

use std::collections::VecDeque;

/// The due, unsent transactions of every signer, and which signers have a request in
/// flight.
#[derive(Debug)]
pub(super) struct SignerQueues {
    /// The transactions (numbers into the run's list) due and not yet sent, per signer, in
    /// nonce order.
    queues: Vec<VecDeque<usize>>,
    /// Whether a request holding transactions of the signer is unanswered.
    in_flight: Vec<bool>,
    /// The signers submitting to each target, in the order they first sign.
    by_target: Vec<Vec<usize>>,
    /// Per target, the place in `by_target` the next batch starts at: after the last signer
    /// the batch before took, so that a full batch does not always leave the same ones out.
    cursor: Vec<usize>,
    /// Each transaction's signer.
    signer_of: Vec<usize>,
}

impl SignerQueues {
    /// Queues for transactions numbered from 0 whose signers are `signer_of` (dense
    /// numbers from 0) and targets `target_of`, of `targets` targets. Every transaction of a
    /// signer must go to one target.
    pub(super) fn new(signer_of: Vec<usize>, target_of: Vec<usize>, targets: usize) -> Self {
        assert_eq!(signer_of.len(), target_of.len());
        let signers = signer_of.iter().max().map_or(0, |s| s + 1);
        let mut target_of_signer: Vec<Option<usize>> = vec![None; signers];
        let mut by_target = vec![Vec::new(); targets];
        for (&signer, &target) in signer_of.iter().zip(&target_of) {
            assert!(target < targets, "target {target} of {targets}");
            match target_of_signer[signer] {
                None => {
                    target_of_signer[signer] = Some(target);
                    by_target[target].push(signer);
                }
                Some(t) => assert_eq!(t, target, "signer {signer} split between targets"),
            }
        }
        SignerQueues {
            queues: vec![VecDeque::new(); signers],
            in_flight: vec![false; signers],
            by_target,
            cursor: vec![0; targets],
            signer_of,
        }
    }

    /// Queues transaction `tx`, now due (each signer's in nonce order).
    pub(super) fn push(&mut self, tx: usize) {
        self.queues[self.signer_of[tx]].push_back(tx);
    }

    /// The next batch for `target`: the queued transactions of signers with no request in
    /// flight, up to `max` in all and `per_signer` of each signer's first ones; those
    /// signers are then in flight until [`SignerQueues::answered`]. Empty when none can go.
    pub(super) fn next_batch(
        &mut self,
        target: usize,
        max: usize,
        per_signer: usize,
    ) -> Vec<usize> {
        assert!(
            max > 0 && per_signer > 0,
            "a batch of {max}, {per_signer} a signer"
        );
        let signers = &self.by_target[target];
        let start = self.cursor[target];
        let mut batch = Vec::new();
        for k in 0..signers.len() {
            if batch.len() == max {
                break;
            }
            let place = (start + k) % signers.len();
            let signer = signers[place];
            if self.in_flight[signer] || self.queues[signer].is_empty() {
                continue;
            }
            let queue = &mut self.queues[signer];
            let take = queue.len().min(max - batch.len()).min(per_signer);
            batch.extend(queue.drain(..take));
            self.in_flight[signer] = true;
            // The next batch starts after the last signer taken.
            self.cursor[target] = (place + 1) % signers.len();
        }
        batch
    }

    /// Records an answer to a request: the transactions `resolved` in it are taken or
    /// refused for good, `pending` are still to be sent again. A signer with none left in
    /// `pending` has no request in flight any more.
    pub(super) fn answered(&mut self, resolved: &[usize], pending: &[usize]) {
        let signers = |txs: &[usize]| {
            let mut signers: Vec<usize> = txs.iter().map(|&tx| self.signer_of[tx]).collect();
            signers.sort_unstable();
            signers.dedup();
            signers
        };
        let waiting = signers(pending);
        for signer in signers(resolved) {
            if waiting.binary_search(&signer).is_ok() {
                continue;
            }
            assert!(self.in_flight[signer], "signer {signer} answered twice");
            self.in_flight[signer] = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two signers on target 0, one on target 1: (signer, target) per transaction, each
    /// signer's in nonce order.
    fn queues() -> SignerQueues {
        let plan = [(0, 0), (1, 0), (2, 1), (0, 0), (1, 0), (0, 0), (2, 1)];
        let (signers, targets) = plan.into_iter().unzip();
        SignerQueues::new(signers, targets, 2)
    }

    #[test]
    fn a_signer_with_a_request_in_flight_waits_for_its_answer() {
        let mut q = queues();
        for tx in 0..3 {
            q.push(tx);
        }
        assert_eq!(q.next_batch(0, 100, 100), [0, 1]);
        for tx in 3..7 {
            q.push(tx);
        }
        // Signers 0 and 1 are in flight: their later nonces wait, whatever else goes.
        assert_eq!(q.next_batch(0, 100, 100), Vec::<usize>::new());
        assert_eq!(q.next_batch(1, 100, 100), [2, 6]);
        q.answered(&[1], &[]);
        assert_eq!(q.next_batch(0, 100, 100), [4]);
        q.answered(&[0], &[]);
        assert_eq!(q.next_batch(0, 100, 100), [3, 5]);
        assert_eq!(q.next_batch(0, 100, 100), Vec::<usize>::new());
    }

    #[test]
    fn a_full_batch_leaves_the_rest_of_a_signer_queued_in_order() {
        let mut q = queues();
        for tx in 0..7 {
            q.push(tx);
        }
        // Two of signer 0's three fill a batch of two; signer 1 waits for the next one.
        assert_eq!(q.next_batch(0, 2, 100), [0, 3]);
        assert_eq!(q.next_batch(0, 1, 100), [1]);
        q.answered(&[1], &[]);
        assert_eq!(q.next_batch(0, 3, 100), [4]);
        // Nonce 3 is to be sent again: signer 0 stays in flight, its nonce 5 queued.
        q.answered(&[0], &[3]);
        assert_eq!(q.next_batch(0, 3, 100), Vec::<usize>::new());
        q.answered(&[3], &[]);
        assert_eq!(q.next_batch(0, 3, 100), [5]);
    }

    #[test]
    fn a_request_holds_at_most_so_many_of_a_signers_transactions() {
        let mut q = queues();
        for tx in 0..7 {
            q.push(tx);
        }
        assert_eq!(q.next_batch(0, 100, 2), [0, 3, 1, 4]);
        q.answered(&[0, 3, 1, 4], &[]);
        assert_eq!(q.next_batch(0, 100, 2), [5]);
    }

    #[test]
    fn full_batches_take_the_signers_in_turn() {
        // Signers 0, 1 and 2 with two transactions each: 0, 1, 2, then 3, 4, 5.
        let plan = [(0, 0), (1, 0), (2, 0), (0, 0), (1, 0), (2, 0)];
        let (signers, targets) = plan.into_iter().unzip();
        let mut q = SignerQueues::new(signers, targets, 1);
        (0..6).for_each(|tx| q.push(tx));
        let mut batches = Vec::new();
        for _ in 0..3 {
            let batch = q.next_batch(0, 2, 1);
            q.answered(&batch, &[]);
            batches.push(batch);
        }
        // The second batch starts after signer 1, the last the first took: signer 2 is not
        // passed over for signer 1 again.
        assert_eq!(batches, [[0, 1], [2, 3], [4, 5]]);
    }

    #[test]
    #[should_panic(expected = "split between targets")]
    fn a_signer_goes_to_one_target() {
        SignerQueues::new(vec![0, 0], vec![0, 1], 2);
    }
}
