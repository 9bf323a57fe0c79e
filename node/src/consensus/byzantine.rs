//! A byzantine validator, for tests only.
//!
//! Compiled with the cargo feature `byzantine`, which only the `bansos-byzantine` test
//! binary turns on; the `bansos` binary has no switch that reaches it. The attacks use the
//! validator's own key only (a byzantine insider cannot forge the others' signatures):
//!
//! - [`Attack::Equivocate`]: as proposer, streams a second, different valid block for the
//!   same (height, round), signed with its key;
//! - [`Attack::InvalidBlocks`]: as proposer, also streams a signed block whose state root
//!   is wrong, half of the time before its valid one;
//! - [`Attack::Floods`]: at every round, signed proposals for the next rounds and heights
//!   (most of them rounds it is not scheduled for), and junk streams that never finish,
//!   with huge sequence numbers;
//! - [`Attack::WrongVotes`]: signs prevotes and precommits for values nobody proposed, in
//!   place of the votes the engine asked for (half of them, by a seeded coin);
//! - [`Attack::DoubleVotes`]: signs two different votes for one (height, round, kind),
//!   through Malachite's own byzantine network proxy (`arc-malachitebft-engine-byzantine`);
//! - [`Attack::CraftedSignatures`]: with its institution's transaction key, signs
//!   transactions whose signature R has a small-order component (valid under ZIP-215,
//!   refused by `verify_strict`, accepted by a cofactorless batch only for some weights);
//!   half go to the peers, half only into its own proposals, so that the honest validators
//!   check some relayed (held unchecked in their mempools until a block or the sweep checks
//!   them) and some fresh in a block.
//!
//! Honest validators must stay in agreement and keep committing with one such node of
//! four: `tests/tests/cluster.rs` runs it.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_malachitebft_app_channel::app::types::core::NilOrVal;
use arc_malachitebft_app_channel::{
    ByzantineContext, Channels, EngineBuilder, EngineHandle, NetworkIdentity, RequestContext,
    SyncContext, WalContext,
};
use arc_malachitebft_engine_byzantine::{ByzantineConfig, Trigger};
use ed25519_dalek::SigningKey;
use ledger::signature::crafted::sign_mixed_order;
use ledger::tx::{Action, AgentRole, TxBody};
use ledger::types::{Hash32, PublicKey};
use ledger::Store;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::codec::BansosCodec;
use super::engine::{EngineConfig, ENGINE_REQUEST_QUEUE};
use super::signing::ConsensusSigner;
use super::types::{BansosContext, BlockId, Vote};
use crate::shared::Shared;

/// One misbehaviour of a byzantine validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Attack {
    Equivocate,
    InvalidBlocks,
    Floods,
    WrongVotes,
    DoubleVotes,
    CraftedSignatures,
}

impl Attack {
    /// Every attack, in the order of the names [`Attack::from_str`] accepts.
    pub const ALL: [Attack; 6] = [
        Attack::Equivocate,
        Attack::InvalidBlocks,
        Attack::Floods,
        Attack::WrongVotes,
        Attack::DoubleVotes,
        Attack::CraftedSignatures,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::Equivocate => "equivocate",
            Attack::InvalidBlocks => "invalid-blocks",
            Attack::Floods => "floods",
            Attack::WrongVotes => "wrong-votes",
            Attack::DoubleVotes => "double-votes",
            Attack::CraftedSignatures => "crafted-signatures",
        }
    }
}

impl FromStr for Attack {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Attack::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Attack::ALL.iter().map(|a| a.name()).collect();
                format!("unknown attack {s:?}; known: {}", names.join(", "))
            })
    }
}

/// Signed proposal streams for rounds ahead sent per round by [`Attack::Floods`].
pub const FLOOD_ROUNDS_AHEAD: u32 = 12;
/// Signed proposal streams for heights ahead sent per round by [`Attack::Floods`].
pub const FLOOD_HEIGHTS_AHEAD: u64 = 4;
/// Junk streams (random chunks, never finished) sent per round by [`Attack::Floods`].
pub const FLOOD_JUNK_STREAMS: usize = 16;
/// Parts per junk stream.
pub const FLOOD_JUNK_PARTS: usize = 8;
/// Bytes per junk chunk.
pub const FLOOD_JUNK_CHUNK_BYTES: usize = 1024;

/// Share of this node's votes that [`Attack::DoubleVotes`] signs twice.
pub const DOUBLE_VOTE_PROBABILITY: f64 = 0.5;
/// How often [`Attack::CraftedSignatures`] signs a transaction.
pub const CRAFTED_TX_INTERVAL: Duration = Duration::from_millis(500);
/// Crafted transactions [`Attack::CraftedSignatures`] keeps pending at once.
pub const CRAFTED_TXS_PENDING_MAX: u64 = 4;

/// The attacks this process carries out, the seeded randomness they draw on, and the
/// institution key it misuses.
pub struct Byzantine {
    attacks: HashSet<Attack>,
    seed: u64,
    rng: Mutex<ChaCha8Rng>,
    tx_key: Option<SigningKey>,
}

static INSTALLED: OnceLock<Byzantine> = OnceLock::new();

/// Turns this process into a byzantine validator, before [`crate::run`]. Once only.
/// [`Attack::CraftedSignatures`] needs `tx_key`, the transaction key of the node's
/// institution.
pub fn install(attacks: &[Attack], seed: u64, tx_key: Option<SigningKey>) -> Result<(), String> {
    if attacks.contains(&Attack::CraftedSignatures) && tx_key.is_none() {
        return Err("the crafted-signatures attack needs the institution's transaction key".into());
    }
    INSTALLED
        .set(Byzantine {
            attacks: attacks.iter().copied().collect(),
            seed,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            tx_key,
        })
        .map_err(|_| "a byzantine behaviour is already installed".to_string())
}

/// The installed behaviour, when it includes `attack`.
pub(crate) fn active(attack: Attack) -> Option<&'static Byzantine> {
    INSTALLED.get().filter(|b| b.attacks.contains(&attack))
}

impl Byzantine {
    fn rng(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A seeded coin that lands heads with probability 1/2.
    pub(crate) fn coin(&self) -> bool {
        self.rng().next_u32() & 1 == 1
    }

    pub(crate) fn next_u64(&self) -> u64 {
        self.rng().next_u64()
    }

    pub(crate) fn bytes(&self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.rng().fill_bytes(&mut bytes);
        bytes
    }

    pub(crate) fn hash(&self) -> [u8; 32] {
        let mut hash = [0; 32];
        self.rng().fill_bytes(&mut hash);
        hash
    }
}

/// [`Attack::WrongVotes`]: half of this node's votes name a value nobody proposed.
pub(crate) fn tamper_vote(mut vote: Vote) -> Vote {
    if let Some(byzantine) = active(Attack::WrongVotes) {
        if byzantine.coin() {
            vote.value = NilOrVal::Val(BlockId(Hash32(byzantine.hash())));
            tracing::warn!(height = %vote.height, round = %vote.round, kind = ?vote.vote_type, "byzantine: voting for a value nobody proposed");
        }
    }
    vote
}

/// [`Attack::DoubleVotes`], when installed.
pub(crate) struct DoubleVotes {
    seed: u64,
}

pub(crate) fn double_votes() -> Option<DoubleVotes> {
    active(Attack::DoubleVotes).map(|b| DoubleVotes { seed: b.seed })
}

impl DoubleVotes {
    /// Starts the engine with Malachite's byzantine network proxy in front of the real
    /// network: it sends, for a share of this node's votes, a second vote for another value
    /// signed with the same key.
    pub(crate) async fn start_engine(
        self,
        ctx: BansosContext,
        config: EngineConfig,
        wal: WalContext<BansosCodec>,
        identity: NetworkIdentity,
        key: SigningKey,
    ) -> anyhow::Result<(Channels<BansosContext>, EngineHandle)> {
        let signer = ConsensusSigner::new(ctx.clone(), key.clone());
        let address = signer.address();
        let consensus = arc_malachitebft_app_channel::ConsensusContext::new_validator(
            address,
            Box::new(super::signing::ConsensusVerifier::new(
                ctx.clone(),
                prometheus_client::metrics::counter::Counter::default(),
            )),
            Box::new(ConsensusSigner::new(ctx.clone(), key)),
        );
        let config_byz =
            ByzantineConfig::new(Some(self.seed)).with_equivocate_votes(Trigger::Random {
                probability: DOUBLE_VOTE_PROBABILITY,
            });
        let seed = self.seed;
        let conflicting = move |value: Option<&BlockId>| {
            // Another value than the one voted for (or a value at all, for a nil vote).
            let mut hash = value.map_or([0; 32], |id| id.0 .0);
            hash[0] ^= 0xff;
            hash[31] ^= seed as u8;
            tracing::warn!("byzantine: double vote, the second for a value nobody proposed");
            BlockId(Hash32(hash))
        };
        let byzantine = ByzantineContext {
            identity,
            codec: BansosCodec,
            config: config_byz,
            signer: Box::new(signer),
            address,
            conflicting_value_fn: None,
            conflicting_vote_value_fn: Some(Box::new(conflicting)),
        };
        EngineBuilder::new(ctx, config)
            .with_default_wal(wal)
            .with_byzantine_network(byzantine)
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}"))?
            .with_default_sync(SyncContext::new(BansosCodec))
            .with_default_consensus(consensus)
            .with_default_request(RequestContext::new(ENGINE_REQUEST_QUEUE))
            .build()
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}"))
    }
}

/// [`Attack::CraftedSignatures`]: signs a transaction with a mixed-order signature every
/// [`CRAFTED_TX_INTERVAL`], registering a fresh operator agent of the institution, at the
/// institution key's next nonce. Runs until the node stops.
pub async fn craft_transactions<S: Store>(shared: Arc<Shared<S>>) {
    let Some(byzantine) = active(Attack::CraftedSignatures) else {
        return;
    };
    let key = byzantine.tx_key.as_ref().expect("checked by install");
    loop {
        tokio::time::sleep(CRAFTED_TX_INTERVAL).await;
        let Some(body) = crafted_body(&shared, byzantine, key) else {
            continue;
        };
        let nonce = body.nonce;
        let tx = sign_mixed_order(body, key);
        let relay = byzantine.coin();
        match shared.admit(tx, false, relay) {
            Ok((hash, _)) => {
                tracing::warn!(%hash, nonce, relayed = relay, "byzantine: crafted a mixed-order signature transaction")
            }
            Err(refusal) => {
                tracing::warn!(code = refusal.code, message = %refusal.message, "byzantine: own node refused a crafted transaction")
            }
        }
    }
}

/// The next crafted transaction's body, or `None` while enough are pending.
fn crafted_body<S: Store>(
    shared: &Shared<S>,
    byzantine: &Byzantine,
    key: &SigningKey,
) -> Option<TxBody> {
    let signer = PublicKey(key.verifying_key().to_bytes());
    let (chain_id, committed, region) = {
        let ledger = shared.ledger();
        let index = ledger.genesis();
        let org = index
            .organisations
            .values()
            .find(|o| o.tx_keys.contains(&signer))?;
        let region = org
            .regions
            .first()
            .or_else(|| index.regions.keys().next())
            .cloned()?;
        let committed = ledger.next_nonce(&signer).ok()?.unwrap_or(0);
        (ledger.chain_id().to_owned(), committed, region)
    };
    let nonce = shared.mempool().pending_next_nonce(&signer, committed);
    if nonce >= committed + CRAFTED_TXS_PENDING_MAX {
        return None;
    }
    let agent = SigningKey::from_bytes(&byzantine.hash());
    Some(TxBody {
        chain_id,
        signer,
        nonce,
        action: Action::RegisterAgent {
            key: PublicKey(agent.verifying_key().to_bytes()),
            role: AgentRole::Operator,
            regions: vec![region],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_names_parse_back_and_unknown_ones_are_refused() {
        for attack in Attack::ALL {
            assert_eq!(attack.name().parse::<Attack>(), Ok(attack));
        }
        let error = "fork".parse::<Attack>().unwrap_err();
        assert!(error.contains("equivocate"), "{error}");
    }
}
