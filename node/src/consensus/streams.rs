//! Reassembly of proposal streams: the parts of one streamed proposal arrive in any order,
//! possibly duplicated, and are put back together here before the block is decoded.
//!
//! Everything a peer can make this module hold is bounded, per publisher and in total, so
//! that a faulty or malicious validator cannot exhaust memory or push honest streams out:
//! - a stream holds at most [`STREAM_PARTS_MAX`] parts and no sequence number beyond it;
//! - every part is charged at least [`PART_CHARGE_BYTES_MIN`] bytes (an empty chunk is not
//!   free), and a stream at most [`STREAM_BYTES_MAX`];
//! - each publisher has [`STREAMS_PER_PUBLISHER_MAX`] streams in flight; a new one replaces
//!   that publisher's oldest, never another publisher's;
//! - at most [`STREAMS_IN_FLIGHT_MAX`] streams in total (new ones are refused beyond it);
//! - a stream not completed within [`STREAM_TIMEOUT`] is dropped.
//!
//! Time is the node clock's monotonic reading, passed in. The module knows nothing of
//! Malachite: a part is any `T`, the end-of-stream marker is `None`.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::Duration;

use ledger::limits::BLOCK_BYTES_MAX;

/// Bytes of block per streamed chunk (well under the 4 MiB gossip message limit).
pub const PROPOSAL_CHUNK_BYTES: usize = 256 * 1024;
/// The most bytes one proposal stream may carry (a full block plus framing).
pub const STREAM_BYTES_MAX: usize = BLOCK_BYTES_MAX + 64 * 1024;
/// The most parts in one stream: Init, the chunks of a full block, Fin, with room to spare.
pub const STREAM_PARTS_MAX: u64 = 2 * (BLOCK_BYTES_MAX / PROPOSAL_CHUNK_BYTES) as u64 + 4;
/// What the smallest part costs against a stream's byte budget.
pub const PART_CHARGE_BYTES_MIN: usize = 1024;
/// Streams one publisher may have in flight (a proposer streams one per round).
pub const STREAMS_PER_PUBLISHER_MAX: usize = 4;
/// Streams in flight across all publishers.
pub const STREAMS_IN_FLIGHT_MAX: usize = 64;
/// How long a stream may take to complete.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

// A full block fits in one stream, in chunks that fit its part budget.
const _: () = assert!(STREAM_BYTES_MAX > BLOCK_BYTES_MAX);
const _: () = assert!(
    (BLOCK_BYTES_MAX / PROPOSAL_CHUNK_BYTES + 3) as u64 <= STREAM_PARTS_MAX,
    "a full block's parts fit in a stream"
);

/// What pushing one message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// The stream is not complete yet.
    Pending,
    /// The stream is complete: its parts in sequence order, the end marker excluded.
    Complete(Vec<T>),
    /// The message (and with it, for a broken limit, its stream) was dropped.
    Dropped(DropReason),
}

/// Why a message or stream was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A sequence number at or beyond [`STREAM_PARTS_MAX`], or after the end marker.
    SequenceOutOfRange,
    /// The stream's charged bytes would pass [`STREAM_BYTES_MAX`].
    TooLarge,
    /// All [`STREAMS_IN_FLIGHT_MAX`] slots are taken by other publishers' streams.
    TooManyStreams,
    /// Two different end markers for one stream.
    ConflictingEnd,
}

struct Buffer<T> {
    parts: BTreeMap<u64, T>,
    end: Option<u64>,
    charged_bytes: usize,
    started: Duration,
}

/// Streams being reassembled, keyed by (publisher, stream id).
pub struct Reassembler<P, T> {
    streams: HashMap<(P, Vec<u8>), Buffer<T>>,
}

impl<P: Clone + Eq + Hash, T> Default for Reassembler<P, T> {
    fn default() -> Self {
        Reassembler {
            streams: HashMap::new(),
        }
    }
}

impl<P: Clone + Eq + Hash, T> Reassembler<P, T> {
    /// No stream in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Streams in flight.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether no stream is in flight.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Streams in flight from `publisher`.
    pub fn streams_of(&self, publisher: &P) -> usize {
        self.streams.keys().filter(|(p, _)| p == publisher).count()
    }

    /// Takes one message of stream `stream_id` from `publisher`: a part (`Some`, charged
    /// `bytes`) or the end marker (`None`) at `sequence`. `now` is the monotonic time.
    pub fn push(
        &mut self,
        publisher: P,
        stream_id: &[u8],
        sequence: u64,
        part: Option<T>,
        bytes: usize,
        now: Duration,
    ) -> Pushed<T> {
        self.expire(now);
        if sequence >= STREAM_PARTS_MAX {
            self.streams.remove(&(publisher, stream_id.to_vec()));
            return Pushed::Dropped(DropReason::SequenceOutOfRange);
        }
        let key = (publisher, stream_id.to_vec());
        if !self.streams.contains_key(&key) {
            if let Err(reason) = self.make_room(&key.0) {
                return Pushed::Dropped(reason);
            }
        }
        let buffer = self.streams.entry(key.clone()).or_insert_with(|| Buffer {
            parts: BTreeMap::new(),
            end: None,
            charged_bytes: 0,
            started: now,
        });
        if let Err(reason) = add(buffer, sequence, part, bytes) {
            self.streams.remove(&key);
            return Pushed::Dropped(reason);
        }
        let complete = buffer
            .end
            .is_some_and(|end| buffer.parts.len() as u64 == end);
        if !complete {
            return Pushed::Pending;
        }
        match self.streams.remove(&key) {
            Some(buffer) => Pushed::Complete(buffer.parts.into_values().collect()),
            None => Pushed::Pending,
        }
    }

    /// Frees a slot for a new stream of `publisher`: its own oldest stream goes if it is at
    /// its quota; nothing of anyone else's is ever evicted.
    fn make_room(&mut self, publisher: &P) -> Result<(), DropReason> {
        if self.streams_of(publisher) >= STREAMS_PER_PUBLISHER_MAX {
            let oldest = self
                .streams
                .iter()
                .filter(|((p, _), _)| p == publisher)
                .min_by_key(|(_, b)| b.started)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.streams.remove(&oldest);
            }
        }
        if self.streams.len() >= STREAMS_IN_FLIGHT_MAX {
            return Err(DropReason::TooManyStreams);
        }
        Ok(())
    }

    /// Drops streams older than [`STREAM_TIMEOUT`].
    pub fn expire(&mut self, now: Duration) {
        self.streams
            .retain(|_, b| now.saturating_sub(b.started) < STREAM_TIMEOUT);
    }
}

/// Adds one message to a stream's buffer, enforcing the per-stream limits.
fn add<T>(
    buffer: &mut Buffer<T>,
    sequence: u64,
    part: Option<T>,
    bytes: usize,
) -> Result<(), DropReason> {
    if buffer.end.is_some_and(|end| sequence >= end) && part.is_some() {
        return Err(DropReason::SequenceOutOfRange);
    }
    let Some(part) = part else {
        if buffer.end.is_some_and(|end| end != sequence) {
            return Err(DropReason::ConflictingEnd);
        }
        if buffer
            .parts
            .keys()
            .next_back()
            .is_some_and(|last| *last >= sequence)
        {
            return Err(DropReason::SequenceOutOfRange);
        }
        buffer.end = Some(sequence);
        return Ok(());
    };
    let charge = bytes.max(PART_CHARGE_BYTES_MIN);
    if buffer.charged_bytes + charge > STREAM_BYTES_MAX {
        return Err(DropReason::TooLarge);
    }
    if let std::collections::btree_map::Entry::Vacant(slot) = buffer.parts.entry(sequence) {
        buffer.charged_bytes += charge;
        slot.insert(part);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::ZERO;

    fn push(
        r: &mut Reassembler<u8, u32>,
        p: u8,
        id: &[u8],
        seq: u64,
        part: Option<u32>,
    ) -> Pushed<u32> {
        r.push(p, id, seq, part, 10, T0)
    }

    #[test]
    fn parts_in_any_order_with_duplicates_complete_once() {
        let mut r = Reassembler::new();
        assert_eq!(push(&mut r, 1, b"s", 2, Some(12)), Pushed::Pending);
        assert_eq!(push(&mut r, 1, b"s", 3, None), Pushed::Pending);
        assert_eq!(push(&mut r, 1, b"s", 0, Some(10)), Pushed::Pending);
        assert_eq!(push(&mut r, 1, b"s", 0, Some(10)), Pushed::Pending);
        assert_eq!(
            push(&mut r, 1, b"s", 1, Some(11)),
            Pushed::Complete(vec![10, 11, 12])
        );
        assert!(r.is_empty());
    }

    #[test]
    fn sequences_beyond_the_cap_or_the_end_drop_the_stream() {
        let mut r = Reassembler::new();
        assert_eq!(
            push(&mut r, 1, b"s", STREAM_PARTS_MAX, Some(1)),
            Pushed::Dropped(DropReason::SequenceOutOfRange)
        );
        push(&mut r, 1, b"t", 0, Some(1));
        push(&mut r, 1, b"t", 2, None);
        assert_eq!(
            push(&mut r, 1, b"t", 5, Some(1)),
            Pushed::Dropped(DropReason::SequenceOutOfRange)
        );
        assert!(r.is_empty());
        push(&mut r, 1, b"u", 0, Some(1));
        push(&mut r, 1, b"u", 4, None);
        assert_eq!(
            push(&mut r, 1, b"u", 3, None),
            Pushed::Dropped(DropReason::ConflictingEnd)
        );
    }

    #[test]
    fn empty_parts_are_charged_so_a_stream_cannot_grow_for_free() {
        let mut r: Reassembler<u8, u32> = Reassembler::new();
        let parts_that_fit = (STREAM_BYTES_MAX / PART_CHARGE_BYTES_MIN) as u64;
        assert!(
            parts_that_fit > STREAM_PARTS_MAX,
            "the part cap binds first for tiny parts"
        );
        let mut big = Reassembler::new();
        let chunk = STREAM_BYTES_MAX / 3;
        for seq in 0..3 {
            assert_eq!(
                big.push(1u8, b"s", seq, Some(0u32), chunk, T0),
                Pushed::Pending
            );
        }
        assert_eq!(
            big.push(1u8, b"s", 3, Some(0u32), 0, T0),
            Pushed::Dropped(DropReason::TooLarge)
        );
        for seq in 0..STREAM_PARTS_MAX {
            assert_eq!(r.push(1, b"s", seq, Some(0), 0, T0), Pushed::Pending);
        }
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn a_flooding_publisher_evicts_only_its_own_streams() {
        let mut r = Reassembler::new();
        push(&mut r, 1, b"honest", 0, Some(1));
        for i in 0..1_000u32 {
            push(&mut r, 2, &i.to_be_bytes(), 0, Some(1));
        }
        assert_eq!(r.streams_of(&2), STREAMS_PER_PUBLISHER_MAX);
        assert_eq!(r.streams_of(&1), 1, "the honest stream survives the flood");
        assert_eq!(
            push(&mut r, 1, b"honest", 1, None),
            Pushed::Complete(vec![1])
        );
    }

    #[test]
    fn the_total_is_capped_and_stale_streams_time_out() {
        let mut r = Reassembler::new();
        let publishers = (STREAMS_IN_FLIGHT_MAX / STREAMS_PER_PUBLISHER_MAX) as u8;
        for p in 0..publishers {
            for s in 0..STREAMS_PER_PUBLISHER_MAX as u8 {
                assert_eq!(push(&mut r, p, &[s], 0, Some(1)), Pushed::Pending);
            }
        }
        assert_eq!(r.len(), STREAMS_IN_FLIGHT_MAX);
        assert_eq!(
            push(&mut r, publishers, b"late", 0, Some(1)),
            Pushed::Dropped(DropReason::TooManyStreams)
        );
        r.expire(STREAM_TIMEOUT);
        assert!(r.is_empty());
        assert_eq!(
            r.push(9, b"new", 0, Some(1), 1, STREAM_TIMEOUT),
            Pushed::Pending
        );
    }
}
