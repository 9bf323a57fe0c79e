//! The byzantine validator's side of the application (cargo feature `byzantine`, tests
//! only; see [`crate::consensus::byzantine`]). Each attack is signed with this node's own
//! key.

use arc_malachitebft_app_channel::app::streaming::StreamContent;
use arc_malachitebft_app_channel::app::types::core::Round;
use arc_malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};
use bytes::Bytes;
use ledger::block::Block;
use ledger::chain::SignatureCheck;
use ledger::types::Hash32;
use ledger::Store;
use tracing::warn;

use super::App;
use crate::consensus::byzantine::{
    active, Attack, Byzantine, FLOOD_HEIGHTS_AHEAD, FLOOD_JUNK_CHUNK_BYTES, FLOOD_JUNK_PARTS,
    FLOOD_JUNK_STREAMS, FLOOD_ROUNDS_AHEAD,
};
use crate::consensus::types::ProposalPart;

/// Stream variants (the last byte of the stream id) of the attacks.
const VARIANT_EQUIVOCATION: u8 = 1;
const VARIANT_INVALID: u8 = 2;
const VARIANT_FLOOD: u8 = 3;

impl<S: Store + 'static> App<S> {
    /// Before streaming its honest proposal for (height, round): half of the time, an
    /// invalid block first, so that the others receive (and must refuse) it first.
    pub(super) async fn misbehave_before_proposing(
        &mut self,
        height: u64,
        round: Round,
        hash: &Hash32,
    ) {
        let Some(byzantine) = active(Attack::InvalidBlocks) else {
            return;
        };
        if byzantine.coin() {
            if let Some(block) = self.prepared.get(hash).map(|p| p.block.clone()) {
                self.propose_invalid_block(height, round, block).await;
            }
        }
    }

    /// After streaming its honest proposal `hash` for (height, round): a second valid
    /// block, and an invalid one.
    pub(super) async fn misbehave_as_proposer(&mut self, height: u64, round: Round, hash: &Hash32) {
        let Some(block) = self.prepared.get(hash).map(|p| p.block.clone()) else {
            return;
        };
        if active(Attack::Equivocate).is_some() {
            self.equivocate(height, round, &block).await;
        }
        if active(Attack::InvalidBlocks).is_some() {
            self.propose_invalid_block(height, round, block).await;
        }
    }

    /// At the start of every round: floods of proposals this node is not scheduled for,
    /// and of junk streams.
    pub(super) async fn misbehave_at_round(&mut self, height: u64, round: Round) {
        if let Some(byzantine) = active(Attack::Floods) {
            self.flood(byzantine, height, round).await;
        }
    }

    /// A second valid block for the same (height, round): an empty one, a millisecond later.
    async fn equivocate(&mut self, height: u64, round: Round, block: &Block) {
        let other = {
            let ledger = self.shared.ledger();
            ledger.build_block(
                Vec::new(),
                block.header.time_ms + 1,
                block.header.proposer,
                SignatureCheck::VerifyAll,
            )
        };
        match other {
            Ok(other) => {
                warn!(height, %round, block = %other.hash, "byzantine: equivocating");
                let bytes = other.block.to_bytes();
                self.publish_proposal(
                    height,
                    round,
                    Round::Nil,
                    &other.hash,
                    &bytes,
                    VARIANT_EQUIVOCATION,
                )
                .await;
            }
            Err(error) => warn!(%error, "byzantine: could not build a second block"),
        }
    }

    /// The proposed block with a wrong state root, signed and streamed as a proposal.
    async fn propose_invalid_block(&mut self, height: u64, round: Round, mut block: Block) {
        block.header.state_root.0[0] ^= 1;
        let hash = block.hash();
        warn!(height, %round, block = %hash, "byzantine: proposing an invalid block");
        self.publish_proposal(
            height,
            round,
            Round::Nil,
            &hash,
            &block.to_bytes(),
            VARIANT_INVALID,
        )
        .await;
    }

    /// Signed proposals for the next rounds and heights, and junk streams.
    async fn flood(&mut self, byzantine: &Byzantine, height: u64, round: Round) {
        let Some(signer) = &self.signer else {
            return;
        };
        let proposer = signer.address().0;
        let built = {
            let ledger = self.shared.ledger();
            let time_ms = self.shared.clock.unix_ms().max(ledger.tip().time_ms + 1);
            ledger.build_block(Vec::new(), time_ms, proposer, SignatureCheck::VerifyAll)
        };
        let Ok(built) = built else {
            return;
        };
        let base = round.as_u32().unwrap_or(0);
        let bytes = built.block.to_bytes();
        for ahead in 1..=FLOOD_ROUNDS_AHEAD {
            self.publish_proposal(
                height,
                Round::new(base + ahead),
                Round::Nil,
                &built.hash,
                &bytes,
                VARIANT_FLOOD,
            )
            .await;
        }
        for ahead in 1..=FLOOD_HEIGHTS_AHEAD {
            let mut block = built.block.clone();
            block.header.height = height + ahead;
            let hash = block.hash();
            self.publish_proposal(
                height + ahead,
                Round::new(0),
                Round::Nil,
                &hash,
                &block.to_bytes(),
                VARIANT_FLOOD,
            )
            .await;
        }
        for _ in 0..FLOOD_JUNK_STREAMS {
            let stream_id = StreamId::new(Bytes::from(byzantine.bytes(16)));
            let messages: Vec<_> = (0..FLOOD_JUNK_PARTS)
                .map(|_| {
                    let part = ProposalPart::Chunk(byzantine.bytes(FLOOD_JUNK_CHUNK_BYTES));
                    StreamMessage::new(
                        stream_id.clone(),
                        byzantine.next_u64() >> 1,
                        StreamContent::Data(part),
                    )
                })
                .collect();
            self.publish(messages).await;
        }
        warn!(height, %round, "byzantine: flooded proposals for other rounds and heights, and junk streams");
    }
}
