//! The application side of Malachite: answers every `AppMsg` the engine sends.
//!
//! The rules that keep the chain safe live here (see ARCHITECTURE.md):
//! - a proposer persists the block it proposes before telling the engine, and proposes the
//!   same block again for a (height, round) it already proposed in, even after a crash;
//! - a validator votes for a block only after executing it completely against its own state
//!   (`Ledger::prepare_block`): signatures (except those it verified on admission), every
//!   ledger rule, every root in the header, and a block time not ahead of its clock;
//! - a decided block is written atomically with its commit certificate, which is checked
//!   against the genesis validator set first, before the engine is told it is done;
//! - a synced block goes through the same checks, after the engine has verified its
//!   certificate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use arc_malachitebft_app_channel::app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use arc_malachitebft_app_channel::app::streaming::StreamContent;
use arc_malachitebft_app_channel::app::types::core::{
    CommitCertificate, ExtendedCommitCertificate, LinearTimeouts, Round, ValidatorSet as _,
    Validity, VoteExtensions,
};
use arc_malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::sync::RawDecidedValue;
use arc_malachitebft_app_channel::app::types::{LocallyProposedValue, PeerId, ProposedValue};
use arc_malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};
use bytes::Bytes;
use ledger::block::Block;
use ledger::chain::{PreparedBlock, SignatureCheck};
use ledger::limits::BLOCK_BYTES_MAX;
use ledger::types::{Hash32, PublicKey, TxHash};
use ledger::LedgerError;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::proposals::{KeptProposal, ProposalStore};
use super::signing::{ConsensusSigner, ConsensusVerifier, StoredCertificate};
use super::types::{
    BansosContext, BlockHeight, BlockId, ProposalPart, ValidatorAddress, ValidatorSet,
};
use crate::shared::Shared;

/// Bytes of block per streamed chunk (well under the 4 MiB gossip message limit).
pub const PROPOSAL_CHUNK_BYTES: usize = 256 * 1024;
/// The most proposal streams being reassembled at once; the oldest is dropped beyond it.
pub const STREAMS_IN_FLIGHT_MAX: usize = 64;
/// The most bytes one proposal stream may carry (a full block plus framing).
pub const STREAM_BYTES_MAX: usize = BLOCK_BYTES_MAX + 64 * 1024;
/// The most complete proposals kept for heights ahead of ours.
pub const FUTURE_PROPOSALS_MAX: usize = 16;
/// How far ahead of this node's clock a block time may be before the block is refused.
pub const BLOCK_TIME_AHEAD_MS_MAX: u64 = 30_000;
/// The most bytes of blocks returned to one sync request (the engine's response limit is
/// 10 MiB).
pub const SYNC_RESPONSE_BYTES_MAX: usize = 8 * 1024 * 1024;

/// A stream being reassembled.
struct StreamBuffer {
    parts: BTreeMap<u64, ProposalPart>,
    fin_sequence: Option<u64>,
    bytes: usize,
    started: Instant,
}

/// A complete, signature-checked proposal.
struct ReceivedProposal {
    height: u64,
    round: Round,
    pol_round: Round,
    proposer: ValidatorAddress,
    block: Block,
}

/// The application state driven by the engine.
pub struct App {
    ctx: BansosContext,
    shared: Arc<Shared>,
    validators: ValidatorSet,
    signer: Option<ConsensusSigner>,
    verifier: ConsensusVerifier,
    timeouts: LinearTimeouts,
    idle_block_interval: Duration,
    proposals: ProposalStore,
    network: mpsc::Sender<NetworkMsg<BansosContext>>,
    height: u64,
    round: Round,
    /// Checked blocks at the current height, by hash, ready to commit.
    prepared: HashMap<Hash32, PreparedBlock>,
    /// This node's own proposal per round at the current height.
    own: HashMap<u32, Hash32>,
    future: Vec<ReceivedProposal>,
    streams: HashMap<(PeerId, Bytes), StreamBuffer>,
    last_commit: Option<Instant>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl App {
    /// The application for one node. `signer` is `None` on an observer.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: BansosContext,
        shared: Arc<Shared>,
        validators: ValidatorSet,
        signer: Option<ConsensusSigner>,
        timeouts: LinearTimeouts,
        idle_block_interval: Duration,
        proposals: ProposalStore,
        network: mpsc::Sender<NetworkMsg<BansosContext>>,
    ) -> App {
        let verifier = ConsensusVerifier::new(ctx.clone());
        App {
            ctx,
            shared,
            validators,
            signer,
            verifier,
            timeouts,
            idle_block_interval,
            proposals,
            network,
            height: 0,
            round: Round::Nil,
            prepared: HashMap::new(),
            own: HashMap::new(),
            future: Vec::new(),
            streams: HashMap::new(),
            last_commit: None,
        }
    }

    fn params(&self) -> HeightParams<BansosContext> {
        HeightParams::new(self.validators.clone(), self.timeouts, None)
    }

    /// Runs until the engine closes its channel. An error means the node must stop: it
    /// could not keep a promise it makes to consensus (persist before replying).
    pub async fn run(mut self, mut channels: Channels<BansosContext>) -> anyhow::Result<()> {
        while let Some(msg) = channels.consensus.recv().await {
            self.handle(msg).await?;
        }
        bail!("the consensus engine stopped")
    }

    async fn handle(&mut self, msg: AppMsg<BansosContext>) -> anyhow::Result<()> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let next = self.shared.ledger().tip().height + 1;
                info!(height = next, "consensus ready");
                self.height = next;
                let _ = reply.send((BlockHeight(next), self.params()));
            }
            AppMsg::StartedRound {
                height,
                round,
                proposer,
                role,
                reply_value,
            } => {
                debug!(%height, %round, %proposer, ?role, "started round");
                let values = self.started_round(height.0, round)?;
                let _ = reply_value.send(values);
            }
            AppMsg::GetValue {
                height,
                round,
                timeout,
                reply,
            } => {
                let hash = self.get_value(height.0, round, timeout).await?;
                let _ = reply.send(LocallyProposedValue::new(height, round, BlockId(hash)));
                self.stream_own_proposal(height.0, round, Round::Nil, &hash)
                    .await;
            }
            AppMsg::ExtendVote { reply, .. } => {
                // Vote extensions are disabled; this message is only sent when they are
                // required.
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtensions {
                extensions, reply, ..
            } => {
                let verdicts = extensions.into_iter().map(|(a, _)| (a, Ok(()))).collect();
                let _ = reply.send(verdicts);
            }
            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                address,
                value_id,
            } => {
                let mine = self.signer.as_ref().map(|s| s.address());
                if mine.as_ref() == Some(&address) {
                    self.stream_own_proposal(height.0, round, valid_round, &value_id.0)
                        .await;
                } else {
                    debug!(%height, %round, %address, "not restreaming another validator's proposal");
                }
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(BlockHeight(1));
            }
            AppMsg::ReceivedProposalPart {
                from,
                published_by,
                part,
                reply,
            } => {
                let value = self.received_part(published_by.unwrap_or(from), part)?;
                let _ = reply.send(value);
            }
            AppMsg::Decided {
                certificate, reply, ..
            } => {
                self.decided(&certificate)?;
                let _ = reply.send(());
            }
            AppMsg::Finalized {
                certificate, reply, ..
            } => {
                let next = certificate.height.0 + 1;
                let _ = reply.send(Next::Start(BlockHeight(next), self.params()));
            }
            AppMsg::GetDecidedValues { range, reply } => {
                let values = self.decided_values(range.start().0, range.end().0)?;
                let _ = reply.send(values);
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let outcome = self.synced_value(height.0, round, proposer, &value_bytes);
                let _ = reply.send(outcome);
            }
        }
        Ok(())
    }

    /// Checks a block against the current tip. Signatures of transactions this node
    /// already verified (its mempool) are not checked again.
    fn check_block(&self, block: &Block) -> Result<PreparedBlock, LedgerError> {
        if block.header.time_ms > now_ms().saturating_add(BLOCK_TIME_AHEAD_MS_MAX) {
            return Err(LedgerError::InvalidField(format!(
                "block time {} is more than {} ms ahead of this validator's clock",
                block.header.time_ms, BLOCK_TIME_AHEAD_MS_MAX
            )));
        }
        let verified: HashSet<TxHash> = {
            let pool = self.shared.mempool();
            block
                .txs
                .iter()
                .map(|tx| tx.hash())
                .filter(|h| pool.contains(h))
                .collect()
        };
        self.shared
            .ledger()
            .prepare_block(block, SignatureCheck::SkipVerified(&verified))
    }

    /// Validates a proposal at the current height and remembers it (in memory and on disk)
    /// when valid.
    fn accept_proposal(
        &mut self,
        proposal: ReceivedProposal,
    ) -> anyhow::Result<ProposedValue<BansosContext>> {
        let hash = proposal.block.hash();
        let validity = if self.prepared.contains_key(&hash) {
            Validity::Valid
        } else {
            match self.check_block(&proposal.block) {
                Ok(prepared) => {
                    if let Some(round) = proposal.round.as_u32() {
                        self.proposals
                            .keep(
                                &KeptProposal {
                                    height: proposal.height,
                                    round,
                                    valid_round: proposal.pol_round.as_i64(),
                                    own: false,
                                    block: proposal.block,
                                },
                                &hash,
                            )
                            .context("keeping a received proposal")?;
                    }
                    self.prepared.insert(hash, prepared);
                    Validity::Valid
                }
                Err(error) => {
                    warn!(height = proposal.height, round = %proposal.round, proposer = %proposal.proposer, %error, "refusing an invalid proposed block");
                    Validity::Invalid
                }
            }
        };
        Ok(ProposedValue {
            height: BlockHeight(proposal.height),
            round: proposal.round,
            valid_round: proposal.pol_round,
            proposer: proposal.proposer,
            value: BlockId(hash),
            validity,
        })
    }

    fn started_round(
        &mut self,
        height: u64,
        round: Round,
    ) -> anyhow::Result<Vec<ProposedValue<BansosContext>>> {
        if height != self.height {
            self.prepared.clear();
            self.own.clear();
        }
        self.height = height;
        self.round = round;
        {
            let mut view = self.shared.consensus_view();
            view.height = height;
            view.round = round.as_i64();
        }
        self.shared.metrics.round.set(round.as_i64());
        let mut values = Vec::new();
        // Proposals that arrived while this node was still at an earlier height.
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.future)
            .into_iter()
            .partition(|p| p.height == height);
        self.future = later.into_iter().filter(|p| p.height > height).collect();
        for proposal in ready {
            values.push(self.accept_proposal(proposal)?);
        }
        // After a restart: what this node proposed or received at this round before.
        let Some(round_number) = round.as_u32() else {
            return Ok(values);
        };
        for kept in self
            .proposals
            .at_height(height)
            .context("reading kept proposals")?
        {
            if kept.round != round_number {
                continue;
            }
            let hash = kept.block.hash();
            if kept.own {
                self.own.insert(kept.round, hash);
            }
            if values.iter().any(|v| v.value.0 == hash && v.round == round) {
                continue;
            }
            let proposer = ValidatorAddress(kept.block.header.proposer);
            values.push(self.accept_proposal(ReceivedProposal {
                height,
                round,
                pol_round: Round::from(kept.valid_round.max(-1)),
                proposer,
                block: kept.block,
            })?);
        }
        Ok(values)
    }

    /// Builds (or, after a crash, reloads) this node's proposal for (height, round), keeps
    /// it on disk and returns its hash.
    async fn get_value(
        &mut self,
        height: u64,
        round: Round,
        timeout: Duration,
    ) -> anyhow::Result<Hash32> {
        let round_number = round.as_u32().unwrap_or(0);
        if let Some(hash) = self.own.get(&round_number) {
            return Ok(*hash);
        }
        for kept in self.proposals.at_height(height)? {
            if kept.own && kept.round == round_number {
                let hash = kept.block.hash();
                if !self.prepared.contains_key(&hash) {
                    let prepared = self.check_block(&kept.block).map_err(|e| {
                        anyhow!("own kept proposal at height {height} no longer checks: {e}")
                    })?;
                    self.prepared.insert(hash, prepared);
                }
                self.own.insert(round_number, hash);
                return Ok(hash);
            }
        }
        let signer_key = match &self.signer {
            Some(signer) => signer.address().0,
            None => bail!("asked to propose, but this node has no validator key"),
        };
        // Wait for work, but leave most of the propose timeout for the other validators to
        // receive and check the block.
        if self.shared.mempool().is_empty() {
            let wait = self.idle_block_interval.min(timeout / 2);
            let _ = tokio::time::timeout(wait, self.shared.mempool_changed.notified()).await;
        }
        let (candidates, verified) = self.shared.mempool().candidates();
        let prepared = {
            let ledger = self.shared.ledger();
            let time_ms = now_ms().max(ledger.tip().time_ms + 1);
            ledger.build_block(
                candidates,
                time_ms,
                signer_key,
                SignatureCheck::SkipVerified(&verified),
            )?
        };
        if !prepared.rejected.is_empty() {
            let mut pool = self.shared.mempool();
            for (hash, error) in &prepared.rejected {
                // A nonce ahead of the signer's next one waits for its predecessor.
                if matches!(error, LedgerError::BadNonce { expected, got, .. } if got > expected) {
                    continue;
                }
                pool.reject(hash, error.code(), error.to_string());
            }
        }
        let hash = prepared.hash;
        self.proposals.keep(
            &KeptProposal {
                height,
                round: round_number,
                valid_round: -1,
                own: true,
                block: prepared.block.clone(),
            },
            &hash,
        )?;
        info!(height, round = round_number, txs = prepared.block.txs.len(), block = %hash, "proposing");
        self.own.insert(round_number, hash);
        self.prepared.insert(hash, prepared);
        Ok(hash)
    }

    /// Publishes a block this node holds as a proposal stream for (height, round).
    async fn stream_own_proposal(
        &mut self,
        height: u64,
        round: Round,
        pol_round: Round,
        hash: &Hash32,
    ) {
        let Some(signer) = &self.signer else {
            return;
        };
        let Some(prepared) = self.prepared.get(hash) else {
            warn!(height, %round, block = %hash, "cannot stream a proposal this node does not hold");
            return;
        };
        let bytes = prepared.block.to_bytes();
        let signature = signer.sign_stream(BlockHeight(height), round, pol_round, hash);
        let mut stream_id = Vec::with_capacity(16);
        stream_id.extend_from_slice(&height.to_be_bytes());
        stream_id.extend_from_slice(&round.as_i64().to_be_bytes());
        let stream_id = StreamId::new(Bytes::from(stream_id));
        let mut parts = vec![ProposalPart::Init {
            height: BlockHeight(height),
            round,
            pol_round,
            proposer: signer.address(),
        }];
        parts.extend(
            bytes
                .chunks(PROPOSAL_CHUNK_BYTES)
                .map(|c| ProposalPart::Chunk(c.to_vec())),
        );
        parts.push(ProposalPart::Fin { signature });
        let count = parts.len() as u64;
        let messages = parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                StreamMessage::new(stream_id.clone(), i as u64, StreamContent::Data(part))
            })
            .chain(std::iter::once(StreamMessage::new(
                stream_id.clone(),
                count,
                StreamContent::Fin,
            )));
        for message in messages {
            if self
                .network
                .send(NetworkMsg::PublishProposalPart(message))
                .await
                .is_err()
            {
                warn!("network channel closed while streaming a proposal");
                return;
            }
        }
    }

    fn received_part(
        &mut self,
        publisher: PeerId,
        message: StreamMessage<ProposalPart>,
    ) -> anyhow::Result<Option<ProposedValue<BansosContext>>> {
        let key = (publisher, message.stream_id.to_bytes());
        if !self.streams.contains_key(&key) && self.streams.len() >= STREAMS_IN_FLIGHT_MAX {
            if let Some(oldest) = self
                .streams
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| k.clone())
            {
                self.streams.remove(&oldest);
            }
        }
        let buffer = self
            .streams
            .entry(key.clone())
            .or_insert_with(|| StreamBuffer {
                parts: BTreeMap::new(),
                fin_sequence: None,
                bytes: 0,
                started: Instant::now(),
            });
        match message.content {
            StreamContent::Data(part) => {
                let size = match &part {
                    ProposalPart::Chunk(bytes) => bytes.len(),
                    _ => 128,
                };
                if buffer.bytes + size > STREAM_BYTES_MAX {
                    warn!(%publisher, "dropping an oversized proposal stream");
                    self.streams.remove(&key);
                    return Ok(None);
                }
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    buffer.parts.entry(message.sequence)
                {
                    buffer.bytes += size;
                    slot.insert(part);
                }
            }
            StreamContent::Fin => buffer.fin_sequence = Some(message.sequence),
        }
        let complete = buffer
            .fin_sequence
            .is_some_and(|fin| buffer.parts.len() as u64 == fin);
        if !complete {
            return Ok(None);
        }
        let Some(buffer) = self.streams.remove(&key) else {
            return Ok(None);
        };
        let Some(proposal) = self.assemble(buffer) else {
            return Ok(None);
        };
        if proposal.height < self.height {
            return Ok(None);
        }
        if proposal.height > self.height {
            if self.future.len() < FUTURE_PROPOSALS_MAX {
                self.future.push(proposal);
            }
            return Ok(None);
        }
        self.accept_proposal(proposal).map(Some)
    }

    /// Turns a complete stream into a proposal if it is well formed and signed by a
    /// validator; anything else is dropped (and logged).
    fn assemble(&self, buffer: StreamBuffer) -> Option<ReceivedProposal> {
        let mut parts = buffer.parts.into_values();
        let Some(ProposalPart::Init {
            height,
            round,
            pol_round,
            proposer,
        }) = parts.next()
        else {
            warn!("dropping a proposal stream that does not start with Init");
            return None;
        };
        let mut bytes = Vec::new();
        let mut signature = None;
        for part in parts {
            match part {
                ProposalPart::Chunk(chunk) if signature.is_none() => {
                    bytes.extend_from_slice(&chunk)
                }
                ProposalPart::Fin { signature: s } if signature.is_none() => signature = Some(s),
                _ => {
                    warn!("dropping a malformed proposal stream");
                    return None;
                }
            }
        }
        let signature = signature?;
        let Some(validator) = self.validators.get_by_address(&proposer) else {
            warn!(%proposer, "dropping a proposal stream from a key that is not a validator");
            return None;
        };
        let block = match Block::from_bytes(&bytes) {
            Ok(block) => block,
            Err(error) => {
                warn!(%proposer, %error, "dropping a proposal stream whose block does not decode");
                return None;
            }
        };
        let hash = block.hash();
        if !self.verifier.verify_stream(
            height,
            round,
            pol_round,
            &proposer,
            &hash,
            &validator.public_key,
            &signature,
        ) {
            warn!(%proposer, "dropping a proposal stream with a bad signature");
            return None;
        }
        if block.header.height != height.0 {
            warn!(%proposer, "dropping a proposal stream whose block is for another height");
            return None;
        }
        Some(ReceivedProposal {
            height: height.0,
            round,
            pol_round,
            proposer,
            block,
        })
    }

    fn decided(&mut self, certificate: &CommitCertificate<BansosContext>) -> anyhow::Result<()> {
        let height = certificate.height.0;
        let hash = certificate.value_id.0;
        let stored = StoredCertificate::from_commit(certificate);
        stored
            .verify(&self.ctx, &self.validators, height, &hash)
            .with_context(|| {
                format!(
                    "the engine decided height {height} with a certificate that does not verify"
                )
            })?;
        {
            let ledger = self.shared.ledger();
            let tip = ledger.tip();
            if tip.height >= height {
                if ledger.header(height)?.map(|h| h.hash()) == Some(hash) {
                    return Ok(());
                }
                bail!("decided block {hash} at height {height} differs from the committed one");
            }
        }
        let prepared = match self.prepared.remove(&hash) {
            Some(prepared) => prepared,
            None => {
                let kept = self
                    .proposals
                    .at_height(height)?
                    .into_iter()
                    .find(|k| k.block.hash() == hash)
                    .ok_or_else(|| {
                        anyhow!("decided block {hash} at height {height} is not held by this node")
                    })?;
                self.shared
                    .ledger()
                    .prepare_block(&kept.block, SignatureCheck::VerifyAll)?
            }
        };
        let started = Instant::now();
        let committed: Vec<TxHash> = prepared.block.txs.iter().map(|t| t.hash()).collect();
        let mut signers: Vec<PublicKey> =
            prepared.block.txs.iter().map(|t| t.body.signer).collect();
        signers.sort();
        signers.dedup();
        let tx_count = committed.len();
        {
            let mut ledger = self.shared.ledger_mut();
            ledger.commit(prepared, &stored.to_bytes())?;
        }
        {
            let ledger = self.shared.ledger();
            let mut pool = self.shared.mempool();
            pool.on_commit(&committed, &signers, |signer| {
                ledger.next_nonce(signer).ok().flatten().unwrap_or(0)
            });
            self.shared.metrics.mempool_txs.set(pool.len() as i64);
            self.shared.metrics.mempool_bytes.set(pool.bytes() as i64);
            // Stale transactions are swept now and then rather than on every block.
            if height % 64 == 0 {
                pool.expire(Instant::now());
            }
        }
        let metrics = &self.shared.metrics;
        metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Some(last) = self.last_commit {
            metrics
                .block_interval_seconds
                .observe(last.elapsed().as_secs_f64());
        }
        self.last_commit = Some(Instant::now());
        metrics.height.set(height as i64);
        metrics.blocks_committed.inc();
        metrics.txs_committed.inc_by(tx_count as u64);
        info!(height, round = %certificate.round, txs = tx_count, block = %hash, "committed");
        self.proposals.prune_through(height)?;
        self.prepared.clear();
        self.own.clear();
        self.future.retain(|p| p.height > height);
        self.streams
            .retain(|_, s| s.started.elapsed() < Duration::from_secs(60));
        Ok(())
    }

    fn decided_values(
        &self,
        first: u64,
        last: u64,
    ) -> anyhow::Result<Vec<RawDecidedValue<BansosContext>>> {
        let ledger = self.shared.ledger();
        let mut values = Vec::new();
        let mut bytes_total = 0;
        for height in first..=last.min(ledger.tip().height) {
            let (Some(block), Some(certificate)) =
                (ledger.block(height)?, ledger.certificate(height)?)
            else {
                break;
            };
            let certificate = StoredCertificate::from_bytes(&certificate)?;
            let bytes = block.to_bytes();
            bytes_total += bytes.len();
            if bytes_total > SYNC_RESPONSE_BYTES_MAX && !values.is_empty() {
                break;
            }
            values.push(RawDecidedValue::new(
                Bytes::from(bytes),
                ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                    certificate.to_commit(),
                    VoteExtensions::default(),
                ),
            ));
        }
        Ok(values)
    }

    fn synced_value(
        &mut self,
        height: u64,
        round: Round,
        proposer: ValidatorAddress,
        bytes: &[u8],
    ) -> SyncedValueOutcome<BansosContext> {
        let block = match Block::from_bytes(bytes) {
            Ok(block) => block,
            Err(error) => {
                warn!(height, %error, "a peer sent a synced block that does not decode");
                return SyncedValueOutcome::PeerFault;
            }
        };
        if block.header.height != height {
            return SyncedValueOutcome::PeerFault;
        }
        let expected = self.shared.ledger().tip().height + 1;
        if height != expected {
            // Not checkable against this node's state yet (or any more); ask again later.
            debug!(height, expected, "synced block for another height");
            return SyncedValueOutcome::LocalTransientError;
        }
        let hash = block.hash();
        let validity = if self.prepared.contains_key(&hash) {
            Validity::Valid
        } else {
            match self
                .shared
                .ledger()
                .prepare_block(&block, SignatureCheck::VerifyAll)
            {
                Ok(prepared) => {
                    self.prepared.insert(hash, prepared);
                    Validity::Valid
                }
                Err(LedgerError::Storage(error)) => {
                    warn!(height, %error, "storage error while checking a synced block");
                    return SyncedValueOutcome::LocalTransientError;
                }
                Err(error) => {
                    warn!(height, %error, "a synced block does not check");
                    Validity::Invalid
                }
            }
        };
        debug!(height, %round, block = %hash, "synced block checked");
        SyncedValueOutcome::Verdict(ProposedValue {
            height: BlockHeight(height),
            round,
            valid_round: Round::Nil,
            proposer,
            value: BlockId(hash),
            validity,
        })
    }
}

/// The validator set for this chain's genesis.
pub fn validator_set(genesis: &ledger::genesis::GenesisIndex) -> anyhow::Result<ValidatorSet> {
    ValidatorSet::from_genesis(&genesis.validators)
        .ok_or_else(|| anyhow!("genesis has no usable validator set"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::Mempool;
    use genesis::testnet::{NodeRole, Testnet, TestnetSpec};
    use ledger::{Ledger, RocksStore};
    use rand::SeedableRng;

    fn app(dir: &std::path::Path, net: &Testnet) -> App {
        let ctx = BansosContext::new(&net.genesis.chain_id);
        let store = RocksStore::open(&dir.join("ledger")).unwrap();
        let ledger = Ledger::open(store, net.genesis.clone()).unwrap();
        let index = net.genesis.clone().validate().unwrap();
        let shared = Arc::new(Shared::new(
            "test".into(),
            NodeRole::Validator,
            ledger,
            Mempool::new(100, 1 << 20),
            None,
        ));
        let (network, _receiver) = mpsc::channel(16);
        App::new(
            ctx.clone(),
            shared,
            validator_set(&index).unwrap(),
            Some(ConsensusSigner::new(ctx, net.nodes[0].key.clone())),
            LinearTimeouts::default(),
            Duration::from_millis(1),
            ProposalStore::open(&dir.join("proposals")).unwrap(),
            network,
        )
    }

    #[tokio::test]
    async fn after_a_crash_the_proposer_proposes_the_same_block_again_for_the_same_round() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let net = Testnet::generate(&TestnetSpec::default(), &mut rng).unwrap();
        let timeout = Duration::from_secs(3);
        let first = {
            let mut before = app(dir.path(), &net);
            before.get_value(1, Round::new(0), timeout).await.unwrap()
        };
        // Block times differ between builds, so a rebuilt block would have another hash.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut after = app(dir.path(), &net);
        let again = after.get_value(1, Round::new(0), timeout).await.unwrap();
        assert_eq!(again, first, "a restarted proposer must not equivocate");
        assert!(
            after.prepared.contains_key(&first),
            "the kept block is checked and ready to commit"
        );
        let next_round = after.get_value(1, Round::new(1), timeout).await.unwrap();
        assert_ne!(next_round, first, "a new round gets a freshly built block");
    }
}
