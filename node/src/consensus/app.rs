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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use arc_malachitebft_app_channel::app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use arc_malachitebft_app_channel::app::streaming::StreamContent;
use arc_malachitebft_app_channel::app::types::core::{
    CommitCertificate, Context as _, ExtendedCommitCertificate, LinearTimeouts, Round,
    ValidatorSet as _, Validity, VoteExtensions,
};
use arc_malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};
use arc_malachitebft_app_channel::app::types::sync::RawDecidedValue;
use arc_malachitebft_app_channel::app::types::MisbehaviorEvidence;
use arc_malachitebft_app_channel::app::types::{LocallyProposedValue, PeerId, ProposedValue};
use arc_malachitebft_app_channel::{AppMsg, Channels, NetworkMsg, Reply};
use bytes::Bytes;
use ledger::block::Block;
use ledger::chain::{PreparedBlock, SignatureCheck};
use ledger::types::{Hash32, TxHash};
use ledger::{LedgerError, Store};
use proto::certificate::StoredCertificate;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::proposals::{KeptProposal, ProposalStore};
use super::signing::{commit_certificate, stored_certificate, ConsensusSigner, ConsensusVerifier};
use super::streams::{Pushed, Reassembler, PROPOSAL_CHUNK_BYTES};
use super::types::{
    BansosContext, BlockHeight, BlockId, ConsensusSignature, ProposalPart, ValidatorAddress,
    ValidatorSet,
};
use crate::shared::Shared;

#[cfg(feature = "byzantine")]
mod attacks;

/// The most complete proposals kept for heights ahead of ours.
pub const FUTURE_PROPOSALS_MAX: usize = 16;
/// How many heights ahead of this node a proposal is kept for later (a node one or two
/// heights behind catches up by sync, not by buffering).
pub const FUTURE_HEIGHTS_MAX: u64 = 2;
/// How many rounds ahead of the current one a proposal is looked at. Malachite itself
/// looks at most this far ahead; a proposer may not make a node execute blocks for rounds
/// it will never reach.
pub const ROUNDS_AHEAD_MAX: u32 = 10;
/// How far behind this node's clock its last block may be before the node counts itself as
/// catching up (and stops waiting for transactions when asked to propose).
pub const CATCHING_UP_LAG_MS: u64 = 10_000;
/// A block with at least this many transactions shows the network under load: a proposer
/// with an empty mempool then proposes at once (another validator holds the work the relay
/// has not brought here yet) instead of waiting for a transaction. A tenth of a full block;
/// a trickle of transactions makes blocks far smaller, and there an empty proposer waits,
/// so that the chain does not race through empty blocks between them.
pub const LOADED_BLOCK_TXS_MIN: usize = ledger::limits::BLOCK_TXS_MAX / 10;
/// How far ahead of this node's clock a block time may be before the block is refused.
pub const BLOCK_TIME_AHEAD_MS_MAX: u64 = 30_000;
/// The most bytes of blocks returned to one sync request.
pub const SYNC_RESPONSE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// The engine's limit on one RPC message (Malachite 0.8.2's `rpc_max_size` default).
pub const ENGINE_RPC_BYTES_MAX: usize = 10 * 1024 * 1024;

// A sync response of the most bytes, plus a whole block that may pass the soft limit and
// the certificates' framing, fits in one engine message.
const _: () =
    assert!(SYNC_RESPONSE_BYTES_MAX + ledger::limits::BLOCK_BYTES_MAX / 4 <= ENGINE_RPC_BYTES_MAX);

/// A complete, signature-checked proposal.
struct ReceivedProposal {
    height: u64,
    round: Round,
    pol_round: Round,
    proposer: ValidatorAddress,
    block: Block,
    /// The proposer's stream signature, when the proposal came as a stream (not for
    /// proposals reloaded from disk).
    signature: Option<ConsensusSignature>,
}

/// The `Init` part of a proposal stream.
struct StreamInit {
    height: u64,
    round: Round,
    pol_round: Round,
    proposer: ValidatorAddress,
}

/// A proposal stream received from another validator, kept so that it can be published
/// again unchanged (Malachite's hidden-lock case asks a validator to restream another's
/// proposal).
#[derive(Clone)]
struct StreamedBy {
    pol_round: Round,
    proposer: ValidatorAddress,
    signature: ConsensusSignature,
}

/// The application state driven by the engine.
pub struct App<S: Store> {
    ctx: BansosContext,
    shared: Arc<Shared<S>>,
    /// The validator set of the height being decided (the ledger's set for its next
    /// height), and the version of it this node follows.
    validators: ValidatorSet,
    validators_version: u64,
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
    /// Proposals for the next heights, one slot per proposer: a newer one replaces it.
    future: HashMap<ValidatorAddress, ReceivedProposal>,
    /// The highest height this node recorded taking part in consensus at (read from disk
    /// once, then kept here).
    consensus_height: Option<u64>,
    /// The value accepted per round at the current height: a proposer gets one.
    values_per_round: HashMap<u32, Hash32>,
    /// The signed stream of each value received at the current height, per round.
    streamed: HashMap<(u32, Hash32), StreamedBy>,
    streams: Reassembler<PeerId, ProposalPart>,
    /// The peer ids of the validators: only they publish proposal streams.
    validator_peers: HashSet<PeerId>,
    /// Monotonic time of the last commit, for the block-interval metric.
    last_commit: Option<Duration>,
    /// The height of the last block this node committed that held transactions.
    last_busy_height: Option<u64>,
    /// The height of the last block this node committed that held at least
    /// [`LOADED_BLOCK_TXS_MIN`] transactions: the network is under load.
    last_loaded_height: Option<u64>,
}

impl<S: Store + 'static> App<S> {
    /// The application for one node. `signer` is `None` on an observer; `verifier` is (a
    /// clone of) the engine's, so that a vote is checked once between them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ctx: BansosContext,
        shared: Arc<Shared<S>>,
        validators: ValidatorSet,
        signer: Option<ConsensusSigner>,
        verifier: ConsensusVerifier,
        timeouts: LinearTimeouts,
        idle_block_interval: Duration,
        proposals: ProposalStore,
        network: mpsc::Sender<NetworkMsg<BansosContext>>,
    ) -> App<S> {
        let validator_peers = peers_of(&validators);
        App {
            ctx,
            shared,
            validators,
            validators_version: 0,
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
            future: HashMap::new(),
            values_per_round: HashMap::new(),
            streamed: HashMap::new(),
            consensus_height: None,
            streams: Reassembler::new(),
            validator_peers,
            last_commit: None,
            last_busy_height: None,
            last_loaded_height: None,
        }
    }

    /// The next height's parameters: its validator set (followed from the ledger) and the
    /// timeouts.
    fn params(&mut self) -> anyhow::Result<HeightParams<BansosContext>> {
        self.follow_validator_set()?;
        Ok(HeightParams::new(
            self.validators.clone(),
            self.timeouts,
            None,
        ))
    }

    /// Follows the validator set of the next height as the ledger holds it: a governance
    /// change takes effect at its activation height, and every node derives the set for
    /// that height from the same committed blocks (synced ones included). Called before
    /// each height starts.
    fn follow_validator_set(&mut self) -> anyhow::Result<()> {
        let record = self.shared.ledger().validator_set()?;
        if record.version == self.validators_version {
            return Ok(());
        }
        let set = ValidatorSet::from_record(&record)
            .ok_or_else(|| anyhow!("validator set version {} is not usable", record.version))?;
        info!(
            version = record.version,
            from_height = record.from_height,
            validators = record.validators.len(),
            "following a new validator set"
        );
        self.validator_peers = peers_of(&set);
        self.validators = set;
        self.validators_version = record.version;
        Ok(())
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
                self.check_not_behind_own_consensus(next)?;
                info!(height = next, "consensus ready");
                self.height = next;
                let _ = reply.send((BlockHeight(next), self.params()?));
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
                #[cfg(feature = "byzantine")]
                self.misbehave_at_round(height.0, round).await;
            }
            AppMsg::GetValue {
                height,
                round,
                timeout,
                reply,
            } => self.propose(height, round, timeout, reply).await?,
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
                self.restream(height.0, round, valid_round, address, value_id.0)
                    .await;
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
                certificate,
                evidence,
                reply,
                ..
            } => {
                self.report_evidence(certificate.height.0, &evidence);
                let next = certificate.height.0 + 1;
                let _ = reply.send(Next::Start(BlockHeight(next), self.params()?));
            }
            AppMsg::GetDecidedValues { range, reply } => {
                // A failure to serve a peer is that peer's loss, not a reason to stop.
                let values = self
                    .decided_values(range.start().0, range.end().0)
                    .unwrap_or_else(|error| {
                        warn!(%error, "could not serve decided values to a peer");
                        Vec::new()
                    });
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

    /// Answers `GetValue`: builds (or reloads) this node's block for (height, round),
    /// replies with its hash once it is on disk, then streams it.
    async fn propose(
        &mut self,
        height: BlockHeight,
        round: Round,
        timeout: Duration,
        reply: Reply<LocallyProposedValue<BansosContext>>,
    ) -> anyhow::Result<()> {
        let hash = self.get_value(height.0, round, timeout).await?;
        self.note_proposal_here(height.0, round);
        let _ = reply.send(LocallyProposedValue::new(height, round, BlockId(hash)));
        #[cfg(feature = "byzantine")]
        self.misbehave_before_proposing(height.0, round, &hash)
            .await;
        self.stream_own_proposal(height.0, round, Round::Nil, &hash)
            .await;
        #[cfg(feature = "byzantine")]
        self.misbehave_as_proposer(height.0, round, &hash).await;
        Ok(())
    }

    /// Logs and counts the conflicting messages Malachite saw a validator sign (two votes
    /// or two proposals for one round): evidence of a byzantine validator, kept in the log
    /// and `bansos_equivocations_total` for its operators and the others to act on.
    fn report_evidence(&self, height: u64, evidence: &MisbehaviorEvidence<BansosContext>) {
        if evidence.is_empty() {
            return;
        }
        for validator in self.validators.verifier_view().validators() {
            let address = ValidatorAddress(validator.key);
            let votes = evidence.votes.get(&address).map_or(0, Vec::len);
            let proposals = evidence.proposals.get(&address).map_or(0, Vec::len);
            if votes + proposals > 0 {
                warn!(height, validator = %address, double_votes = votes, double_proposals = proposals, "misbehaviour evidence: a validator signed conflicting messages");
                self.shared
                    .metrics
                    .equivocations
                    .inc_by((votes + proposals) as u64);
            }
        }
    }

    /// Checks a block against the current tip. Signatures of transactions this node
    /// already checked (pending in its mempool) are not checked again.
    fn check_block(&self, block: &Block) -> Result<PreparedBlock, LedgerError> {
        if block.header.time_ms
            > self
                .shared
                .clock
                .unix_ms()
                .saturating_add(BLOCK_TIME_AHEAD_MS_MAX)
        {
            return Err(LedgerError::InvalidField(format!(
                "block time {} is more than {} ms ahead of this validator's clock",
                block.header.time_ms, BLOCK_TIME_AHEAD_MS_MAX
            )));
        }
        // Signatures this node checked are not checked again (a peer's relayed transactions
        // pending here are checked now, with the rest of the block). Asked per transaction
        // (the ledger lock, then the mempool's, the order admission takes them in), so the
        // block is hashed once, by its execution.
        let in_pool = |hash: &TxHash| self.shared.mempool().is_checked(hash);
        self.shared
            .ledger()
            .prepare_block(block, SignatureCheck::SkipIf(&in_pool))
    }

    /// Notes, for the relay, that the proposal of (`height`, `round`) is here when that is
    /// the round being decided: its proposer takes nothing more at this height.
    fn note_proposal_here(&self, height: u64, round: Round) {
        let mut view = self.shared.consensus_view();
        if (view.height, view.round) == (height, round.as_i64()) {
            view.proposed = true;
        }
    }

    /// Validates a proposal at the current height and remembers it (in memory and on disk)
    /// when valid.
    fn accept_proposal(
        &mut self,
        proposal: ReceivedProposal,
    ) -> anyhow::Result<ProposedValue<BansosContext>> {
        let hash = proposal.block.hash();
        self.note_proposal_here(proposal.height, proposal.round);
        if let (Some(signature), Some(round)) = (proposal.signature, proposal.round.as_u32()) {
            self.streamed.insert(
                (round, hash),
                StreamedBy {
                    pol_round: proposal.pol_round,
                    proposer: proposal.proposer,
                    signature,
                },
            );
        }
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

    /// Refuses to start consensus below a height this node already took part in: its
    /// ledger was restored from an older backup (or lost writes), and voting again at those
    /// heights could sign two different votes for one round.
    fn check_not_behind_own_consensus(&self, next: u64) -> anyhow::Result<()> {
        match self.proposals.consensus_height()? {
            Some(recorded) if recorded > next => bail!(
                "the ledger is at height {} but this node already took part in consensus at height {recorded}: \
                 was the ledger restored from an older backup? Starting here could double-sign. \
                 Restore a ledger at height {} or later, or (for a node that must forget its votes) \
                 remove data/wal and data/proposals deliberately",
                next - 1,
                recorded - 1
            ),
            _ => Ok(()),
        }
    }

    /// Keeps a proposal for a coming height, if it is near enough: one per proposer, the
    /// latest (height, round) winning, so a proposer flooding far-future heights can only
    /// replace its own entry.
    fn keep_future(&mut self, proposal: ReceivedProposal) {
        if proposal.height > self.height.saturating_add(FUTURE_HEIGHTS_MAX) {
            debug!(
                height = proposal.height,
                "dropping a proposal too far ahead"
            );
            return;
        }
        let newer =
            |old: &ReceivedProposal| (proposal.height, proposal.round) > (old.height, old.round);
        match self.future.get(&proposal.proposer) {
            Some(old) if !newer(old) => {}
            _ if self.future.len() >= FUTURE_PROPOSALS_MAX
                && !self.future.contains_key(&proposal.proposer) => {}
            _ => {
                self.future.insert(proposal.proposer, proposal);
            }
        }
    }

    /// Whether this is the first value seen for its round at the current height (a second,
    /// different one is an equivocating proposer and is not even executed), and the round
    /// is within [`ROUNDS_AHEAD_MAX`] of ours.
    fn first_value_in_round(&mut self, proposal: &ReceivedProposal) -> bool {
        let Some(round) = proposal.round.as_u32() else {
            return false;
        };
        let current = self.round.as_u32().unwrap_or(0);
        if round > current.saturating_add(ROUNDS_AHEAD_MAX) {
            warn!(
                height = proposal.height,
                round, current, "dropping a proposal for a round too far ahead"
            );
            return false;
        }
        let hash = proposal.block.hash();
        match self.values_per_round.get(&round) {
            Some(seen) if *seen != hash => {
                warn!(height = proposal.height, round, proposer = %proposal.proposer, "equivocating proposer: a second value for one round is ignored");
                false
            }
            _ => {
                self.values_per_round.insert(round, hash);
                true
            }
        }
    }

    fn started_round(
        &mut self,
        height: u64,
        round: Round,
    ) -> anyhow::Result<Vec<ProposedValue<BansosContext>>> {
        if height != self.height {
            self.prepared.clear();
            self.own.clear();
            self.values_per_round.clear();
            self.streamed.clear();
        }
        if self.consensus_height.is_none() {
            self.consensus_height = self.proposals.consensus_height()?;
        }
        if self.consensus_height.is_none_or(|h| h < height) {
            self.proposals
                .record_consensus_height(height)
                .context("recording the consensus height")?;
            self.consensus_height = Some(height);
        }
        self.height = height;
        self.round = round;
        {
            let mut view = self.shared.consensus_view();
            view.height = height;
            view.round = round.as_i64();
            view.proposed = false;
        }
        self.shared.metrics.round.set(round.as_i64());
        let mut values = Vec::new();
        // Proposals that arrived while this node was still at an earlier height.
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.future)
            .into_iter()
            .partition(|(_, p)| p.height == height);
        self.future = later
            .into_iter()
            .filter(|(_, p)| p.height > height)
            .collect();
        let ready: Vec<ReceivedProposal> = ready.into_iter().map(|(_, p)| p).collect();
        for proposal in ready {
            if self.first_value_in_round(&proposal) {
                values.push(self.accept_proposal(proposal)?);
            }
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
            // Every kept proposal for this round came from (or was) its scheduled proposer;
            // a block streamed again keeps the proposer of its first round in its header.
            let proposer = self
                .ctx
                .select_proposer(&self.validators, BlockHeight(height), round)
                .address;
            values.push(self.accept_proposal(ReceivedProposal {
                height,
                round,
                pol_round: Round::from(kept.valid_round.max(-1)),
                proposer,
                block: kept.block,
                signature: None,
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
        if self.should_wait_for_work(height) {
            self.wait_for_ready_transactions(timeout).await;
        }
        let prepared = self.shared.build_block(signer_key)?;
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

    /// Whether the proposer should wait for work before building: when nothing it holds can
    /// go into a block, unless another proposer holds the work, as a recent block shows: a
    /// block of the last round of proposers that held transactions, when this node holds
    /// transactions waiting for a predecessor (someone else holds the predecessor), or one
    /// that held [`LOADED_BLOCK_TXS_MIN`] when its mempool is empty (under load the relay
    /// runs behind; a wait here cost up to a second a turn while another validator held
    /// thousands ready). Nor when this node is catching up (a wait would hold up the synced
    /// blocks queued behind). Without the wait, a client that submits only a nonce gap, or
    /// a trickle of transactions, has the validators produce empty blocks as fast as they
    /// can vote.
    fn should_wait_for_work(&self, height: u64) -> bool {
        let (empty, ready) = {
            let pool = self.shared.mempool();
            (pool.is_empty(), pool.has_ready())
        };
        let proposers = self.validators.verifier_view().validators().len() as u64;
        let recent = |last: Option<u64>| last.is_some_and(|at| at + proposers >= height);
        let others_hold_work = if empty {
            recent(self.last_loaded_height)
        } else {
            recent(self.last_busy_height)
        };
        !ready && !others_hold_work && !self.catching_up()
    }

    /// Waits until the mempool holds a transaction ready for a block, for at most the idle
    /// block interval, and never more than half the propose `timeout` (the rest is for the
    /// other validators to receive and check the block).
    async fn wait_for_ready_transactions(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + self.idle_block_interval.min(timeout / 2);
        while !self.shared.mempool().has_ready() {
            let notified = self.shared.mempool_changed.notified();
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Whether this node's last block is much older than its clock: it is syncing a chain
    /// the others have moved on from (on a live chain even an idle block comes every
    /// `idle_block_interval`).
    fn catching_up(&self) -> bool {
        let tip_ms = self.shared.ledger().tip().time_ms;
        let lag_ms = self.shared.clock.unix_ms().saturating_sub(tip_ms);
        let idle_ms = u64::try_from(self.idle_block_interval.as_millis()).unwrap_or(u64::MAX);
        lag_ms > CATCHING_UP_LAG_MS.max(idle_ms.saturating_mul(3))
    }

    /// Publishes a proposal again, as Malachite asks in two cases: this node, the proposer
    /// of `round`, re-proposes a value that had a polka in `valid_round` (possibly another
    /// validator's block: the stream is signed by this node, the block keeps its original
    /// proposer); or (the hidden-lock case, from round 10 on) this node re-publishes
    /// `address`'s proposal for `round` unchanged, with that proposer's own signature.
    async fn restream(
        &mut self,
        height: u64,
        round: Round,
        valid_round: Round,
        address: ValidatorAddress,
        value: Hash32,
    ) {
        if let Err(error) = self.hold_value(height, &value) {
            warn!(height, %round, block = %value, %error, "cannot restream a value this node does not hold");
            return;
        }
        let mine = self.signer.as_ref().map(|s| s.address());
        if mine.as_ref() == Some(&address) {
            self.stream_own_proposal(height, round, valid_round, &value)
                .await;
            return;
        }
        let streamed = round
            .as_u32()
            .and_then(|r| self.streamed.get(&(r, value)))
            .filter(|s| s.proposer == address && s.pol_round == valid_round)
            .cloned();
        let (Some(streamed), Some(prepared)) = (streamed, self.prepared.get(&value)) else {
            warn!(height, %round, proposer = %address, block = %value, "cannot restream another validator's proposal: its signed stream is not held (received before a restart?)");
            return;
        };
        info!(height, %round, proposer = %address, block = %value, "restreaming another validator's proposal");
        let bytes = prepared.block.to_bytes();
        let init = StreamInit {
            height,
            round,
            pol_round: streamed.pol_round,
            proposer: streamed.proposer,
        };
        self.publish_stream(&init, &bytes, streamed.signature, 0)
            .await;
    }

    /// Makes sure a checked block with hash `value` at `height` is in `prepared`, reloading
    /// it from the proposals kept on disk (after a restart) if needed.
    fn hold_value(&mut self, height: u64, value: &Hash32) -> anyhow::Result<()> {
        if self.prepared.contains_key(value) {
            return Ok(());
        }
        let kept = self
            .proposals
            .at_height(height)?
            .into_iter()
            .find(|k| k.block.hash() == *value)
            .ok_or_else(|| anyhow!("no kept proposal has this hash"))?;
        let prepared = self
            .check_block(&kept.block)
            .map_err(|e| anyhow!("the kept block no longer checks: {e}"))?;
        self.prepared.insert(*value, prepared);
        Ok(())
    }

    /// Publishes a block this node holds as a proposal stream for (height, round).
    async fn stream_own_proposal(
        &mut self,
        height: u64,
        round: Round,
        pol_round: Round,
        hash: &Hash32,
    ) {
        let Some(prepared) = self.prepared.get(hash) else {
            warn!(height, %round, block = %hash, "cannot stream a proposal this node does not hold");
            return;
        };
        let bytes = prepared.block.to_bytes();
        self.publish_proposal(height, round, pol_round, hash, &bytes, 0)
            .await;
    }

    /// Publishes `bytes` (a block whose hash is `hash`) as this node's signed proposal
    /// stream for (height, round). `variant` tells apart streams for one round: an honest
    /// node sends one (variant 0); only the test-only byzantine mode sends more.
    async fn publish_proposal(
        &self,
        height: u64,
        round: Round,
        pol_round: Round,
        hash: &Hash32,
        bytes: &[u8],
        variant: u8,
    ) {
        let Some(signer) = &self.signer else {
            return;
        };
        let signature = signer.sign_stream(BlockHeight(height), round, pol_round, hash);
        let init = StreamInit {
            height,
            round,
            pol_round,
            proposer: signer.address(),
        };
        self.publish_stream(&init, bytes, signature, variant).await;
    }

    /// Publishes a proposal stream: `Init`, the block's chunks, `Fin` with `signature`.
    async fn publish_stream(
        &self,
        init: &StreamInit,
        bytes: &[u8],
        signature: ConsensusSignature,
        variant: u8,
    ) {
        let mut stream_id = Vec::with_capacity(17);
        stream_id.extend_from_slice(&init.height.to_be_bytes());
        stream_id.extend_from_slice(&init.round.as_i64().to_be_bytes());
        if variant != 0 {
            stream_id.push(variant);
        }
        let stream_id = StreamId::new(Bytes::from(stream_id));
        let mut parts = vec![ProposalPart::Init {
            height: BlockHeight(init.height),
            round: init.round,
            pol_round: init.pol_round,
            proposer: init.proposer,
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
        self.publish(messages).await;
    }

    /// Sends stream messages to the network, in order.
    async fn publish(&self, messages: impl IntoIterator<Item = StreamMessage<ProposalPart>>) {
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
        // Parts published by anyone but a validator are dropped before they cost memory.
        if !self.validator_peers.contains(&publisher) {
            debug!(%publisher, "dropping a proposal part from a peer that is not a validator");
            return Ok(None);
        }
        let (part, bytes) = match message.content {
            StreamContent::Data(part) => {
                let bytes = match &part {
                    ProposalPart::Chunk(chunk) => chunk.len(),
                    _ => 0,
                };
                (Some(part), bytes)
            }
            StreamContent::Fin => (None, 0),
        };
        let now = self.shared.clock.monotonic();
        let parts = match self.streams.push(
            publisher,
            &message.stream_id.to_bytes(),
            message.sequence,
            part,
            bytes,
            now,
        ) {
            Pushed::Pending => return Ok(None),
            Pushed::Dropped(reason) => {
                warn!(%publisher, ?reason, "dropping a proposal stream");
                return Ok(None);
            }
            Pushed::Complete(parts) => parts,
        };
        let Some(proposal) = self.assemble(parts) else {
            return Ok(None);
        };
        if proposal.height < self.height {
            return Ok(None);
        }
        if proposal.height > self.height {
            self.keep_future(proposal);
            return Ok(None);
        }
        if !self.first_value_in_round(&proposal) {
            return Ok(None);
        }
        self.accept_proposal(proposal).map(Some)
    }

    /// Turns a complete stream into a proposal if it is well formed and signed by a
    /// validator; anything else is dropped (and logged).
    fn assemble(&self, parts: Vec<ProposalPart>) -> Option<ReceivedProposal> {
        let mut parts = parts.into_iter();
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
        let scheduled = self
            .ctx
            .select_proposer(&self.validators, height, round)
            .address;
        if proposer != scheduled {
            warn!(%proposer, %scheduled, height = height.0, %round, "dropping a proposal from a validator that is not the scheduled proposer");
            return None;
        }
        if !self.block_proposer_fits(&block, height, round, pol_round) {
            warn!(%proposer, height = height.0, %round, %pol_round, "dropping a proposal whose block names a proposer that was not scheduled");
            return None;
        }
        Some(ReceivedProposal {
            height: height.0,
            round,
            pol_round,
            proposer,
            block,
            signature: Some(signature),
        })
    }

    /// A block names as its proposer the validator scheduled for `round`, or, when it is
    /// re-proposed with a proof-of-lock round below `round`, a validator scheduled for that
    /// round or an earlier one, where it was first proposed (a polka in `pol_round` may
    /// itself be for a re-proposal; the schedule repeats after one round per validator).
    fn block_proposer_fits(
        &self,
        block: &Block,
        height: BlockHeight,
        round: Round,
        pol_round: Round,
    ) -> bool {
        let scheduled_at = |r: u32| {
            self.ctx
                .select_proposer(&self.validators, height, Round::new(r))
                .address
                .0
        };
        let Some(round) = round.as_u32() else {
            return false;
        };
        if block.header.proposer == scheduled_at(round) {
            return true;
        }
        let Some(pol_round) = pol_round.as_u32().filter(|&p| p < round) else {
            return false;
        };
        let distinct = self.validators.verifier_view().validators().len() as u32;
        (0..=pol_round)
            .rev()
            .take(distinct as usize)
            .any(|earlier| block.header.proposer == scheduled_at(earlier))
    }

    fn decided(&mut self, certificate: &CommitCertificate<BansosContext>) -> anyhow::Result<()> {
        let height = certificate.height.0;
        let hash = certificate.value_id.0;
        let stored = stored_certificate(certificate);
        stored
            .verify_with(
                self.ctx.chain(),
                self.validators.verifier_view(),
                height,
                &hash,
                |key, message, signature| self.verifier.check(key, message, signature),
            )
            .with_context(|| {
                format!(
                    "the engine decided height {height} with a certificate that does not verify"
                )
            })?;
        if self.already_committed(height, &hash)? {
            return Ok(());
        }
        let prepared = self.decided_block(height, &hash)?;
        let started = self.shared.clock.monotonic();
        let tx_count = self.shared.commit(prepared, &stored.to_bytes())?;
        let now = self.shared.clock.monotonic();
        let metrics = &self.shared.metrics;
        metrics
            .commit_seconds
            .observe(now.saturating_sub(started).as_secs_f64());
        if let Some(last) = self.last_commit {
            metrics
                .block_interval_seconds
                .observe(now.saturating_sub(last).as_secs_f64());
        }
        self.last_commit = Some(now);
        if tx_count > 0 {
            self.last_busy_height = Some(height);
        }
        if tx_count >= LOADED_BLOCK_TXS_MIN {
            self.last_loaded_height = Some(height);
        }
        info!(height, round = %certificate.round, txs = tx_count, block = %hash, "committed");
        self.proposals.prune_through(height)?;
        self.prepared.clear();
        self.own.clear();
        self.values_per_round.clear();
        self.streamed.clear();
        self.future.retain(|_, p| p.height > height);
        self.streams.expire(now);
        Ok(())
    }

    /// Whether `height` is already committed (with this very block: anything else is a
    /// fork, and an error).
    fn already_committed(&self, height: u64, hash: &Hash32) -> anyhow::Result<bool> {
        let ledger = self.shared.ledger();
        if ledger.tip().height < height {
            return Ok(false);
        }
        if ledger.header(height)?.map(|h| h.hash()) == Some(*hash) {
            return Ok(true);
        }
        bail!("decided block {hash} at height {height} differs from the committed one");
    }

    /// The checked block the engine decided: prepared in memory, or kept on disk before a
    /// restart and checked again now.
    fn decided_block(&mut self, height: u64, hash: &Hash32) -> anyhow::Result<PreparedBlock> {
        if let Some(prepared) = self.prepared.remove(hash) {
            return Ok(prepared);
        }
        let kept = self
            .proposals
            .at_height(height)?
            .into_iter()
            .find(|k| k.block.hash() == *hash)
            .ok_or_else(|| {
                anyhow!("decided block {hash} at height {height} is not held by this node")
            })?;
        Ok(self
            .shared
            .ledger()
            .prepare_block(&kept.block, SignatureCheck::VerifyAll)?)
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
                    commit_certificate(&certificate),
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
        if validity == Validity::Valid {
            // The engine records this value in its WAL and may decide it next: from here on
            // the block must survive a crash, exactly as a received proposal does.
            if let Err(error) = self.keep_synced(height, round, &block, &hash) {
                warn!(height, %error, "could not keep a synced block on disk");
                return SyncedValueOutcome::LocalTransientError;
            }
        }
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

impl<S: Store + 'static> App<S> {
    /// Durably keeps a synced block (as a peer's proposal for the certificate's round).
    fn keep_synced(
        &self,
        height: u64,
        round: Round,
        block: &Block,
        hash: &Hash32,
    ) -> std::io::Result<()> {
        let kept = KeptProposal {
            height,
            round: round.as_u32().unwrap_or(0),
            valid_round: -1,
            own: false,
            block: block.clone(),
        };
        self.proposals.keep(&kept, hash)
    }
}

/// The validator set for this chain's genesis.
pub fn validator_set(genesis: &ledger::genesis::GenesisIndex) -> anyhow::Result<ValidatorSet> {
    ValidatorSet::from_genesis(&genesis.validators)
        .ok_or_else(|| anyhow!("genesis has no usable validator set"))
}

/// The peer ids of a set's validators (a node's peer id is derived from its consensus key).
fn peers_of(set: &ValidatorSet) -> HashSet<PeerId> {
    set.verifier_view()
        .validators()
        .iter()
        .filter_map(|v| PeerId::from_bytes(&genesis::testnet::peer_id_bytes(&v.key)).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::mempool::Mempool;
    use arc_malachitebft_app_channel::app::types::core::NilOrVal;
    use arc_malachitebft_app_channel::Signer as _;
    use ed25519_dalek::SigningKey;
    use genesis::testnet::{NodeRole, Testnet, TestnetSpec};
    use ledger::{Ledger, RocksStore};
    use prometheus_client::metrics::counter::Counter;
    use rand::SeedableRng;

    type Network = mpsc::Receiver<NetworkMsg<BansosContext>>;

    fn testnet() -> Testnet {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        Testnet::generate(&TestnetSpec::default(), &mut rng).unwrap()
    }

    fn context(net: &Testnet) -> BansosContext {
        BansosContext::new(proto::signing::ChainBinding::of(&net.genesis))
    }

    /// A validator's application over its own store in `dir`, signing with `key`; the
    /// receiver gets what it publishes.
    fn app_as(
        dir: &std::path::Path,
        net: &Testnet,
        clock: Arc<ManualClock>,
        key: &SigningKey,
    ) -> (App<RocksStore>, Network) {
        let ctx = context(net);
        let store = RocksStore::open(&dir.join("ledger")).unwrap();
        let ledger = Ledger::open(store, net.genesis.clone()).unwrap();
        let index = net.genesis.clone().validate().unwrap();
        let shared = Arc::new(Shared::new(
            "test".into(),
            NodeRole::Validator,
            ledger::types::PublicKey(key.verifying_key().to_bytes()),
            ledger,
            Mempool::new(100, 1 << 20),
            None,
            clock,
        ));
        let (network, receiver) = mpsc::channel(64);
        let app = App::new(
            ctx.clone(),
            shared,
            validator_set(&index).unwrap(),
            Some(ConsensusSigner::new(ctx.clone(), key.clone())),
            ConsensusVerifier::new(ctx, Counter::default()),
            LinearTimeouts::default(),
            Duration::from_millis(1),
            ProposalStore::open(&dir.join("proposals")).unwrap(),
            network,
        );
        (app, receiver)
    }

    fn app(dir: &std::path::Path, net: &Testnet, clock: Arc<ManualClock>) -> App<RocksStore> {
        app_as(dir, net, clock, &net.nodes[0].key).0
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(1_790_000_000_000))
    }

    /// The validator keys in schedule order for (height, round): the first is the proposer.
    fn scheduled(net: &Testnet, height: u64, round: u32) -> (SigningKey, SigningKey) {
        let ctx = context(net);
        let set = validator_set(&net.genesis.clone().validate().unwrap()).unwrap();
        let proposer = ctx
            .select_proposer(&set, BlockHeight(height), Round::new(round))
            .address;
        let key = |wanted: bool| {
            net.nodes
                .iter()
                .filter(|n| n.role == NodeRole::Validator)
                .find(|n| (n.key.verifying_key().to_bytes() == proposer.0 .0) == wanted)
                .map(|n| n.key.clone())
                .unwrap()
        };
        (key(true), key(false))
    }

    /// Everything `network` received, as stream messages.
    fn published(network: &mut Network) -> Vec<StreamMessage<ProposalPart>> {
        let mut out = Vec::new();
        while let Ok(message) = network.try_recv() {
            let NetworkMsg::PublishProposalPart(part) = message;
            out.push(part);
        }
        out
    }

    /// Feeds a stream to `app`; returns the value it yields, if any.
    fn deliver(
        app: &mut App<RocksStore>,
        from: PeerId,
        stream: Vec<StreamMessage<ProposalPart>>,
    ) -> Option<ProposedValue<BansosContext>> {
        let mut value = None;
        for message in stream {
            if let Some(v) = app.received_part(from, message).unwrap() {
                value = Some(v);
            }
        }
        value
    }

    /// Builds and streams a proposal for (height 1, `round`) as `key`, from its own store.
    async fn propose(
        net: &Testnet,
        clock: Arc<ManualClock>,
        key: &SigningKey,
        round: u32,
    ) -> (Hash32, Vec<StreamMessage<ProposalPart>>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let (mut proposer, mut network) = app_as(dir.path(), net, clock, key);
        let hash = proposer
            .get_value(1, Round::new(round), Duration::from_secs(3))
            .await
            .unwrap();
        proposer
            .stream_own_proposal(1, Round::new(round), Round::Nil, &hash)
            .await;
        (hash, published(&mut network), dir)
    }

    /// The peer id of a validator (the parts' publisher in these tests).
    fn validator_peer(net: &Testnet) -> PeerId {
        let key = ledger::types::PublicKey(net.nodes[0].key.verifying_key().to_bytes());
        PeerId::from_bytes(&genesis::testnet::peer_id_bytes(&key)).unwrap()
    }

    /// A peer id no genesis lists.
    fn stranger_peer() -> PeerId {
        let libp2p_id =
            arc_malachitebft_app_channel::app::types::Keypair::ed25519_from_bytes([9u8; 32])
                .unwrap()
                .public()
                .to_peer_id();
        PeerId::from_bytes(&libp2p_id.to_bytes()).unwrap()
    }

    /// A validator that holds a peer's relayed transaction unchecked checks its signature
    /// in a proposal that carries it: a forged one fails the block (a byzantine proposer
    /// and a byzantine relayer together gain nothing). Checked here, it is skipped.
    #[tokio::test]
    async fn a_relayed_transaction_pending_unchecked_is_checked_in_a_proposed_block() {
        let net = testnet();
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), &net, clock());
        let key = net.keys.org("pemda-3510").unwrap();
        let village = net
            .genesis
            .regions
            .iter()
            .map(|r| r.code.as_str().to_owned())
            .find(|c| c.starts_with("35.10.") && c.split('.').count() == 4)
            .unwrap();
        let mut tx = ledger::tx::TxBody {
            chain_id: net.genesis.chain_id.clone(),
            signer: ledger::types::PublicKey(key.verifying_key().to_bytes()),
            nonce: 0,
            action: ledger::tx::Action::Propose {
                beneficiary: Hash32([1; 32]),
                region: ledger::types::RegionCode::new(village).unwrap(),
                household_size: 3,
                welfare_decile: 1,
            },
        }
        .sign(key);
        tx.signature.0[0] ^= 1;
        let hash = tx.hash();
        let peer = ledger::types::PublicKey(net.nodes[1].key.verifying_key().to_bytes());
        let admitted = app
            .shared
            .admit_batch(vec![tx.clone()], crate::shared::BatchFrom::Peer(peer));
        assert!(admitted[0].1.is_ok(), "{admitted:?}");
        // What a byzantine proposer would build: the forgery with its signature skipped.
        let proposer = ledger::types::PublicKey(net.nodes[0].key.verifying_key().to_bytes());
        let time_ms = net.genesis.genesis_time_ms + 1;
        let skipped = HashSet::from([hash]);
        let block = app
            .shared
            .ledger()
            .build_block(
                vec![tx],
                time_ms,
                proposer,
                SignatureCheck::SkipVerified(&skipped),
            )
            .unwrap()
            .block;
        let error = app.check_block(&block).unwrap_err();
        assert_eq!(error.code(), "invalid_tx_in_block", "{error}");
    }

    #[tokio::test]
    async fn proposal_parts_from_a_peer_that_is_not_a_validator_are_dropped() {
        let net = testnet();
        let clock = clock();
        let (proposer, _) = scheduled(&net, 1, 0);
        let (hash, stream, _dir) = propose(&net, clock.clone(), &proposer, 0).await;
        let dir = tempfile::tempdir().unwrap();
        let mut receiver = app(dir.path(), &net, clock);
        receiver.height = 1;
        assert!(deliver(&mut receiver, stranger_peer(), stream.clone()).is_none());
        assert!(
            receiver.streams.is_empty(),
            "nothing of the stranger's was buffered"
        );
        let value = deliver(&mut receiver, validator_peer(&net), stream).expect("a value");
        assert_eq!(value.value.0, hash);
    }

    /// The relay learns from the consensus view when the round's proposal is here (its
    /// proposer takes nothing more at this height), and that a new round has none yet.
    #[tokio::test]
    async fn the_view_shows_when_the_rounds_proposal_is_here() {
        let net = testnet();
        let clock = clock();
        let (proposer, _) = scheduled(&net, 1, 0);
        let (_, stream, _dir) = propose(&net, clock.clone(), &proposer, 0).await;
        let dir = tempfile::tempdir().unwrap();
        let mut receiver = app(dir.path(), &net, clock);
        let proposed = |app: &App<RocksStore>| app.shared.consensus_view().proposed;
        receiver.started_round(1, Round::new(0)).unwrap();
        assert!(!proposed(&receiver));
        deliver(&mut receiver, validator_peer(&net), stream).expect("a value");
        assert!(proposed(&receiver));
        receiver.started_round(1, Round::new(1)).unwrap();
        assert!(!proposed(&receiver), "round 1 has no proposal yet");
    }

    #[tokio::test]
    async fn after_a_crash_the_proposer_proposes_the_same_block_again_for_the_same_round() {
        let dir = tempfile::tempdir().unwrap();
        let net = testnet();
        let timeout = Duration::from_secs(3);
        let clock = clock();
        let first = {
            let mut before = app(dir.path(), &net, clock.clone());
            before.get_value(1, Round::new(0), timeout).await.unwrap()
        };
        // Block times differ between builds, so a rebuilt block would have another hash.
        clock.advance(Duration::from_millis(5));
        let mut after = app(dir.path(), &net, clock);
        let again = after.get_value(1, Round::new(0), timeout).await.unwrap();
        assert_eq!(again, first, "a restarted proposer must not equivocate");
        assert!(
            after.prepared.contains_key(&first),
            "the kept block is checked and ready to commit"
        );
        let next_round = after.get_value(1, Round::new(1), timeout).await.unwrap();
        assert_ne!(next_round, first, "a new round gets a freshly built block");
    }

    async fn commit_certificate_for(
        net: &Testnet,
        hash: Hash32,
    ) -> CommitCertificate<BansosContext> {
        let ctx = context(net);
        let mut votes = Vec::new();
        for node in net.nodes.iter().filter(|n| n.role == NodeRole::Validator) {
            let signer = ConsensusSigner::new(ctx.clone(), node.key.clone());
            let vote = ctx.new_precommit(
                BlockHeight(1),
                Round::new(0),
                NilOrVal::Val(BlockId(hash)),
                signer.address(),
            );
            votes.push(signer.sign_vote(vote).await.unwrap());
        }
        CommitCertificate::new(BlockHeight(1), Round::new(0), BlockId(hash), votes)
    }

    #[tokio::test]
    async fn synced_blocks_are_persisted_before_replying() {
        let net = testnet();
        let clock = clock();
        let (proposer, other) = scheduled(&net, 1, 0);
        let (hash, _, proposer_dir) = propose(&net, clock.clone(), &proposer, 0).await;
        let bytes = {
            let (kept, _) = app_as(proposer_dir.path(), &net, clock.clone(), &proposer);
            kept.proposals.at_height(1).unwrap()[0].block.to_bytes()
        };
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut syncing, _) = app_as(dir.path(), &net, clock.clone(), &other);
            let outcome = syncing.synced_value(
                1,
                Round::new(0),
                ValidatorAddress(ledger::types::PublicKey(
                    proposer.verifying_key().to_bytes(),
                )),
                &bytes,
            );
            assert!(
                matches!(outcome, SyncedValueOutcome::Verdict(ref v) if v.validity == Validity::Valid)
            );
            // The node crashes here: the engine has the value in its WAL, the app's memory
            // is gone.
        }
        let (mut restarted, _) = app_as(dir.path(), &net, clock, &other);
        restarted
            .decided(&commit_certificate_for(&net, hash).await)
            .expect("the synced block survived the crash");
        assert_eq!(restarted.shared.ledger().tip().block_hash, hash);
    }

    #[tokio::test]
    async fn a_proposal_from_a_validator_out_of_turn_is_not_executed() {
        let net = testnet();
        let clock = clock();
        let (_, out_of_turn) = scheduled(&net, 1, 0);
        let (_, stream, _dir) = propose(&net, clock.clone(), &out_of_turn, 0).await;
        let dir = tempfile::tempdir().unwrap();
        let mut receiver = app(dir.path(), &net, clock);
        receiver.height = 1;
        assert!(deliver(&mut receiver, validator_peer(&net), stream).is_none());
        assert!(receiver.prepared.is_empty(), "nothing was executed");
    }

    #[tokio::test]
    async fn the_proposer_of_a_later_round_re_proposes_another_validators_block_with_its_polka_round(
    ) {
        let net = testnet();
        let clock = clock();
        let (first_proposer, _) = scheduled(&net, 1, 0);
        let (next_proposer, _) = scheduled(&net, 1, 1);
        assert_ne!(
            first_proposer.verifying_key(),
            next_proposer.verifying_key()
        );
        let (hash, stream, _a) = propose(&net, clock.clone(), &first_proposer, 0).await;
        // Round 1's proposer received round 0's block, which had a polka in round 0.
        let dir = tempfile::tempdir().unwrap();
        let (mut next, mut network) = app_as(dir.path(), &net, clock.clone(), &next_proposer);
        next.height = 1;
        deliver(&mut next, validator_peer(&net), stream).expect("round 0's value");
        let me = next.signer.as_ref().unwrap().address();
        // Malachite asks it to re-propose that value in round 1, with round 0 as pol round.
        next.restream(1, Round::new(1), Round::new(0), me, hash)
            .await;
        let restreamed = published(&mut network);
        assert!(!restreamed.is_empty(), "the value was not re-proposed");
        // A validator that never saw round 0 gets the value for round 1, from round 1's
        // proposer, with round 0 as its proof-of-lock round.
        let other = tempfile::tempdir().unwrap();
        let mut third = app(other.path(), &net, clock.clone());
        third.height = 1;
        let value = deliver(&mut third, validator_peer(&net), restreamed).expect("the value");
        assert_eq!(
            (
                value.value.0,
                value.round,
                value.valid_round,
                value.validity
            ),
            (hash, Round::new(1), Round::new(0), Validity::Valid)
        );
        assert_eq!(value.proposer, me);
        // The same block streamed for round 1 without a proof-of-lock round names a
        // proposer that round 1 did not schedule: dropped.
        next.stream_own_proposal(1, Round::new(1), Round::Nil, &hash)
            .await;
        let unexplained = published(&mut network);
        let other = tempfile::tempdir().unwrap();
        let mut fourth = app(other.path(), &net, clock);
        fourth.height = 1;
        assert!(deliver(&mut fourth, validator_peer(&net), unexplained).is_none());
    }

    #[tokio::test]
    async fn in_the_hidden_lock_case_a_validator_republishes_another_proposers_stream_unchanged() {
        let net = testnet();
        let clock = clock();
        let (proposer, others) = scheduled(&net, 1, 0);
        let (hash, stream, _a) = propose(&net, clock.clone(), &proposer, 0).await;
        let original = ValidatorAddress(ledger::types::PublicKey(
            proposer.verifying_key().to_bytes(),
        ));
        let dir = tempfile::tempdir().unwrap();
        let (mut validator, mut network) = app_as(dir.path(), &net, clock.clone(), &others);
        validator.height = 1;
        // Asked before it holds the proposal: nothing to publish.
        validator
            .restream(1, Round::new(0), Round::Nil, original, hash)
            .await;
        assert!(published(&mut network).is_empty());
        deliver(&mut validator, validator_peer(&net), stream).expect("round 0's value");
        // Malachite asks a validator that precommitted to republish the proposer's parts.
        validator
            .restream(1, Round::new(0), Round::Nil, original, hash)
            .await;
        let republished = published(&mut network);
        assert!(
            !republished.is_empty(),
            "another validator's proposal was not republished"
        );
        let other = tempfile::tempdir().unwrap();
        let mut late = app(other.path(), &net, clock);
        late.height = 1;
        let value = deliver(&mut late, validator_peer(&net), republished).expect("the value");
        assert_eq!(
            (value.value.0, value.round, value.proposer, value.validity),
            (hash, Round::new(0), original, Validity::Valid)
        );
    }

    #[tokio::test]
    async fn double_votes_in_malachites_evidence_are_logged_and_counted_per_validator() {
        let net = testnet();
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), &net, clock());
        let (key, _) = scheduled(&net, 1, 0);
        let signer = ConsensusSigner::new(context(&net), key);
        let vote_for = |value: &[u8]| {
            app.ctx.new_prevote(
                BlockHeight(1),
                Round::new(0),
                NilOrVal::Val(BlockId(Hash32::digest(value))),
                signer.address(),
            )
        };
        let first = signer.sign_vote(vote_for(b"a")).await.unwrap();
        let second = signer.sign_vote(vote_for(b"b")).await.unwrap();
        let mut evidence = MisbehaviorEvidence::<BansosContext> {
            proposals: Default::default(),
            votes: Default::default(),
        };
        app.report_evidence(1, &evidence);
        assert!(app
            .shared
            .metrics
            .render()
            .contains("bansos_equivocations_total 0"));
        evidence.votes.add(first, second);
        app.report_evidence(1, &evidence);
        assert!(app
            .shared
            .metrics
            .render()
            .contains("bansos_equivocations_total 1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_proposer_waits_for_transactions_only_when_it_is_not_catching_up() {
        let net = testnet();
        let (key, _) = scheduled(&net, 1, 0);
        let idle = Duration::from_secs(5);
        let behind_ms = CATCHING_UP_LAG_MS.max(3 * 5_000) + 1;
        for (lag_ms, waits) in [(0, true), (behind_ms - 2, true), (behind_ms, false)] {
            let dir = tempfile::tempdir().unwrap();
            // The genesis time is the tip's time: the clock `lag_ms` after it.
            let clock = Arc::new(ManualClock::new(net.genesis.genesis_time_ms + lag_ms));
            let (mut app, _network) = app_as(dir.path(), &net, clock, &key);
            app.idle_block_interval = idle;
            let started = tokio::time::Instant::now();
            app.get_value(1, Round::new(0), Duration::from_secs(30))
                .await
                .unwrap();
            let waited = started.elapsed() >= idle;
            assert_eq!(
                waited,
                waits,
                "lag {lag_ms} ms: waited {:?}",
                started.elapsed()
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_proposer_with_nothing_ready_waits_unless_the_last_proposers_were_busy() {
        let net = testnet();
        let (key, _) = scheduled(&net, 1, 0);
        let idle = Duration::from_secs(5);
        let stranger = SigningKey::from_bytes(&[42; 32]);
        let gapped = ledger::tx::TxBody {
            chain_id: net.genesis.chain_id.clone(),
            signer: ledger::types::PublicKey(stranger.verifying_key().to_bytes()),
            nonce: 1,
            action: ledger::tx::Action::RevokeAgent {
                key: ledger::types::PublicKey([7; 32]),
            },
        }
        .sign(&stranger);
        // Nothing is ready: the mempool is empty, or holds only a transaction that waits
        // for a predecessor. Holding that, a recent block with any transactions passes the
        // turn on at once (another validator holds the predecessor); with an empty mempool
        // only a recent loaded block does (a trickle of transactions must not make the
        // chain race through empty blocks).
        for (busy, loaded, holds_waiting, waits) in [
            (None, None, true, true),
            (Some(0), None, true, false),
            (None, None, false, true),
            (Some(0), None, false, true),
            (Some(0), Some(0), false, false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let clock = Arc::new(ManualClock::new(net.genesis.genesis_time_ms));
            let (mut app, _network) = app_as(dir.path(), &net, clock, &key);
            app.idle_block_interval = idle;
            app.last_busy_height = busy;
            app.last_loaded_height = loaded;
            if holds_waiting {
                let bytes = gapped.to_bytes().len();
                app.shared
                    .mempool()
                    .insert(gapped.hash(), gapped.clone(), bytes, 0, Duration::ZERO)
                    .unwrap();
            }
            let started = tokio::time::Instant::now();
            let hash = app
                .get_value(1, Round::new(0), Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(
                started.elapsed() >= idle,
                waits,
                "busy {busy:?}, loaded {loaded:?}, holding a waiting transaction: {holds_waiting}"
            );
            assert!(app.prepared[&hash].block.txs.is_empty());
        }
    }

    #[tokio::test]
    async fn a_second_value_for_one_round_is_not_executed() {
        let net = testnet();
        let clock = clock();
        let (proposer, _) = scheduled(&net, 1, 0);
        let (first, stream, _a) = propose(&net, clock.clone(), &proposer, 0).await;
        clock.advance(Duration::from_millis(7));
        let (second, equivocation, _b) = propose(&net, clock.clone(), &proposer, 0).await;
        assert_ne!(first, second);
        let dir = tempfile::tempdir().unwrap();
        let mut receiver = app(dir.path(), &net, clock);
        receiver.height = 1;
        let value = deliver(&mut receiver, validator_peer(&net), stream).expect("the first value");
        assert_eq!((value.value.0, value.validity), (first, Validity::Valid));
        assert!(deliver(&mut receiver, validator_peer(&net), equivocation).is_none());
        assert_eq!(
            receiver.prepared.len(),
            1,
            "the second block was not executed"
        );
    }

    #[tokio::test]
    async fn proposals_for_rounds_or_heights_too_far_ahead_are_dropped_and_the_buffer_keeps_one_per_proposer(
    ) {
        let net = testnet();
        let clock = clock();
        let (proposer, _) = scheduled(&net, 1, ROUNDS_AHEAD_MAX + 1);
        let (_, stream, _dir) = propose(&net, clock.clone(), &proposer, ROUNDS_AHEAD_MAX + 1).await;
        let dir = tempfile::tempdir().unwrap();
        let mut receiver = app(dir.path(), &net, clock);
        receiver.height = 1;
        receiver.round = Round::new(0);
        assert!(deliver(&mut receiver, validator_peer(&net), stream).is_none());
        assert!(receiver.prepared.is_empty());
        // The future buffer: near heights only, one slot per proposer, the newest wins.
        let make = |height: u64, round: u32, who: u8| ReceivedProposal {
            height,
            round: Round::new(round),
            pol_round: Round::Nil,
            signature: None,
            proposer: ValidatorAddress(ledger::types::PublicKey([who; 32])),
            block: Block {
                header: ledger::block::BlockHeader {
                    chain_id: "t".into(),
                    height,
                    prev_hash: Hash32::ZERO,
                    time_ms: u64::from(round),
                    proposer: ledger::types::PublicKey([who; 32]),
                    tx_count: 0,
                    tx_root: Hash32::ZERO,
                    log_size: 0,
                    log_root: Hash32::ZERO,
                    state_root: Hash32::ZERO,
                    totals_root: Hash32::ZERO,
                },
                txs: Vec::new(),
            },
        };
        receiver.keep_future(make(2, 0, 1));
        for height in 4..200 {
            receiver.keep_future(make(height, 0, 2));
        }
        receiver.keep_future(make(3, 0, 2));
        receiver.keep_future(make(3, 1, 2));
        receiver.keep_future(make(2, 5, 2));
        assert_eq!(receiver.future.len(), 2);
        let two = &receiver.future[&ValidatorAddress(ledger::types::PublicKey([2; 32]))];
        assert_eq!((two.height, two.round), (3, Round::new(1)));
        assert_eq!(
            receiver.future[&ValidatorAddress(ledger::types::PublicKey([1; 32]))].height,
            2
        );
    }

    #[test]
    fn a_node_whose_ledger_is_behind_its_own_votes_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let net = testnet();
        let app = app(dir.path(), &net, clock());
        app.check_not_behind_own_consensus(1).unwrap();
        app.proposals.record_consensus_height(7).unwrap();
        let error = app
            .check_not_behind_own_consensus(1)
            .unwrap_err()
            .to_string();
        assert!(error.contains("older backup"), "{error}");
        app.check_not_behind_own_consensus(7).unwrap();
    }
}
