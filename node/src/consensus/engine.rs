//! Starting Malachite: its configuration (libp2p over TCP, who may connect, value sync),
//! the node's network identity and the engine itself, then the application loop.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use arc_malachitebft_app_channel::app::config::{
    ConsensusConfig, NodeConfig, PubSubProtocol, ValuePayload, ValueSyncConfig,
};
use arc_malachitebft_app_channel::app::net::Multiaddr;
use arc_malachitebft_app_channel::app::types::codec::Codec;
use arc_malachitebft_app_channel::app::types::core::{LinearTimeouts, ValidatorProof};
use arc_malachitebft_app_channel::app::types::Keypair;
use arc_malachitebft_app_channel::{
    start_engine, Channels, ConsensusContext, EngineHandle, NetworkIdentity, NetworkRequest,
    RequestContext, Signer, SyncContext, WalContext,
};
use genesis::testnet::NodeRole;
use ledger::governance::Change;
use ledger::Store;
use tracing::{info, warn};

use super::app::{validator_set, App};
use super::codec::BansosCodec;
use super::proposals::ProposalStore;
use super::signing::{encoded_public_key, ConsensusSigner, ConsensusVerifier};
use super::types::{BansosContext, ValidatorAddress};
use crate::config::{NodeSettings, P2pProtocol};
use crate::shared::Shared;

/// Inbound connections accepted from one IP address on a local testnet. Every local node
/// dials from 127.0.0.1 whatever its listen address, so the default of 5 would refuse a
/// 4-node network's own members after a restart or two.
pub const CONNECTIONS_PER_IP_MAX: usize = 64;
/// How long start-up may take before the node gives up: if the network cannot listen
/// (address in use), the engine never reports ready.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often value sync asks peers for their tip. Faster than the default (10 s) so that a
/// restarted node catches up within seconds.
pub const SYNC_STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// Requests (state dumps, peer updates) queued for the engine.
pub const ENGINE_REQUEST_QUEUE: usize = 100;
/// Pending governance changes read for validators to admit as peers (at most).
const GOVERNANCE_PEERS_PENDING_MAX: usize = 1_000;
/// How often the peer list is refreshed for `/v1/status` and `/metrics`.
const PEER_REFRESH_INTERVAL: Duration = Duration::from_secs(2);

pub(crate) struct EngineConfig {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

fn engine_config(settings: &NodeSettings) -> anyhow::Result<EngineConfig> {
    let mut consensus = ConsensusConfig {
        value_payload: ValuePayload::ProposalAndParts,
        queue_capacity: 100,
        ..ConsensusConfig::default()
    };
    consensus.p2p.protocol = match settings.consensus.p2p_protocol {
        P2pProtocol::Broadcast => PubSubProtocol::Broadcast,
        P2pProtocol::Gossipsub => PubSubProtocol::default(),
    };
    consensus.p2p.listen_addr = settings
        .p2p_listen
        .parse::<Multiaddr>()
        .with_context(|| format!("p2p_listen {:?} is not a multiaddress", settings.p2p_listen))?;
    if !settings.p2p_listen.contains("/tcp/") {
        anyhow::bail!(
            "p2p_listen {:?} must be a TCP address like /ip4/127.0.0.2/tcp/27001",
            settings.p2p_listen
        );
    }
    consensus.p2p.persistent_peers = settings
        .peers
        .iter()
        .map(|p| {
            p.parse::<Multiaddr>()
                .with_context(|| format!("peer {p:?} is not a multiaddress"))
        })
        .collect::<anyhow::Result<_>>()?;
    // Only the nodes listed in genesis (checked when the settings were loaded) may connect.
    consensus.p2p.persistent_peers_only = true;
    if is_local_testnet(&settings.p2p_listen) {
        // Every local node dials from 127.0.0.1: Malachite's per-IP limits would refuse the
        // network's own members after a restart or two. On real addresses they stay on.
        consensus.p2p.discovery.max_connections_per_ip = CONNECTIONS_PER_IP_MAX;
        consensus.p2p.discovery.ip_throttle_duration = Duration::ZERO;
    }
    let value_sync = ValueSyncConfig {
        status_update_interval: SYNC_STATUS_INTERVAL,
        batch_size: 10,
        ..ValueSyncConfig::default()
    };
    Ok(EngineConfig {
        moniker: settings.name.clone(),
        consensus,
        value_sync,
    })
}

/// Whether a p2p listen address is on the loopback network (a local testnet).
fn is_local_testnet(listen: &str) -> bool {
    listen.starts_with("/ip4/127.") || listen.starts_with("/ip6/::1/")
}

/// The timeouts of round 0 and their growth per round.
pub fn timeouts(settings: &NodeSettings) -> LinearTimeouts {
    let c = &settings.consensus;
    LinearTimeouts {
        propose: Duration::from_millis(c.propose_timeout_ms),
        propose_delta: Duration::from_millis(c.propose_timeout_ms / 2),
        prevote: Duration::from_millis(c.prevote_timeout_ms),
        prevote_delta: Duration::from_millis(c.prevote_timeout_ms / 2),
        precommit: Duration::from_millis(c.precommit_timeout_ms),
        precommit_delta: Duration::from_millis(c.precommit_timeout_ms / 2),
        ..LinearTimeouts::default()
    }
}

/// Starts the engine and runs the application until the engine stops or fails.
pub async fn run<S: Store + 'static>(
    settings: &NodeSettings,
    shared: Arc<Shared<S>>,
) -> anyhow::Result<()> {
    let ctx = BansosContext::new(proto::signing::ChainBinding::of(&settings.genesis));
    let validators = validator_set(&settings.genesis_index)?;
    let codec = BansosCodec;
    let key = settings.node_key.clone();
    let address = ValidatorAddress(settings.public_key());
    let keypair = Keypair::ed25519_from_bytes(key.to_bytes())
        .map_err(|e| anyhow!("node key is not a usable libp2p key: {e}"))?;
    let verifier = ConsensusVerifier::new(
        ctx.clone(),
        shared.metrics.consensus_signatures_reused.clone(),
    );
    let (identity, consensus_ctx, app_signer) = match settings.role {
        NodeRole::Validator => {
            let signer = ConsensusSigner::new(ctx.clone(), key.clone());
            let peer_id = keypair.public().to_peer_id().to_bytes();
            let proof: ValidatorProof<BansosContext> = signer
                .sign_validator_proof(encoded_public_key(&key.verifying_key()), peer_id)
                .await
                .map_err(|e| anyhow!("signing the validator proof: {e}"))?;
            let proof_bytes = Codec::<ValidatorProof<BansosContext>>::encode(&codec, &proof)?;
            let identity = NetworkIdentity::new_validator(
                settings.name.clone(),
                keypair,
                address.to_string(),
                proof_bytes,
            );
            let consensus_ctx = ConsensusContext::new_validator(
                address,
                Box::new(verifier.clone()),
                Box::new(ConsensusSigner::new(ctx.clone(), key.clone())),
            );
            (identity, consensus_ctx, Some(signer))
        }
        NodeRole::Observer => (
            NetworkIdentity::new(settings.name.clone(), keypair, None),
            ConsensusContext::new_full_node(address, Box::new(verifier.clone())),
            None,
        ),
    };
    let (channels, handle) = start(settings, ctx.clone(), identity, consensus_ctx)
        .await
        .map_err(|e| anyhow!("starting the consensus engine: {e:#}"))?;
    let EngineHandle {
        actor: _actor,
        handle: engine_task,
    } = handle;
    let proposals = ProposalStore::open(&settings.proposals_path())?;
    // Slots of proposals decided before a restart are free for the next ones.
    proposals.prune_through(shared.ledger().tip().height)?;
    let app = App::new(
        ctx,
        shared.clone(),
        validators,
        app_signer,
        verifier,
        timeouts(settings),
        Duration::from_millis(settings.consensus.idle_block_interval_ms),
        proposals,
        channels.network.clone(),
    );
    let net_requests = channels.net_requests.clone();
    let peers_task = tokio::spawn(refresh_peers(net_requests, shared.clone()));
    // If the network cannot listen (address in use), the engine never reports ready.
    let startup_check = async {
        tokio::time::sleep(STARTUP_TIMEOUT).await;
        if shared.consensus_view().height == 0 {
            warn!("consensus has not started after {STARTUP_TIMEOUT:?}");
            return;
        }
        std::future::pending::<()>().await
    };
    info!(p2p = %settings.p2p_listen, "consensus engine started");
    let result = tokio::select! {
        result = app.run(channels) => result,
        _ = engine_task => Err(anyhow!("the consensus engine stopped")),
        _ = startup_check => Err(anyhow!(
            "consensus did not start within {STARTUP_TIMEOUT:?} (is the p2p address {} already in use?)",
            settings.p2p_listen
        )),
    };
    peers_task.abort();
    result
}

/// Starts Malachite's actors: the default ones, or (in the byzantine test node) a network
/// that double-signs votes.
async fn start(
    settings: &NodeSettings,
    ctx: BansosContext,
    identity: NetworkIdentity,
    consensus_ctx: ConsensusContext<BansosContext>,
) -> anyhow::Result<(Channels<BansosContext>, EngineHandle)> {
    let codec = BansosCodec;
    let wal = WalContext::new(settings.wal_path(), codec);
    #[cfg(feature = "byzantine")]
    if let (Some(attack), NodeRole::Validator) = (super::byzantine::double_votes(), settings.role) {
        return attack
            .start_engine(
                ctx,
                engine_config(settings)?,
                wal,
                identity,
                settings.node_key.clone(),
            )
            .await;
    }
    start_engine(
        ctx,
        engine_config(settings)?,
        wal,
        arc_malachitebft_app_channel::NetworkContext::new(identity, codec),
        consensus_ctx,
        SyncContext::new(codec),
        RequestContext::new(ENGINE_REQUEST_QUEUE),
    )
    .await
    .map_err(|e| anyhow!("{e:#}"))
}

async fn refresh_peers<S: Store>(
    requests: tokio::sync::mpsc::Sender<NetworkRequest>,
    shared: Arc<Shared<S>>,
) {
    let mut admitted: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::time::sleep(PEER_REFRESH_INTERVAL).await;
        admit_governance_peers(&requests, &shared, &mut admitted).await;
        if let Ok(Some(dump)) = NetworkRequest::dump_state(&requests).await {
            let mut peers: Vec<String> = dump.peers.keys().map(|p| p.to_string()).collect();
            peers.sort();
            shared
                .metrics
                .peers
                .set(crate::shared::gauge(peers.len() as u64));
            shared.consensus_view().peers = peers;
        }
    }
}

/// The network admits only its persistent peers (genesis's nodes, from the config). A
/// validator that governance adds is admitted by its peer id (derived from its consensus
/// key) as soon as a change naming it is pending, so that it can sync before the change
/// takes effect, and dropped once it is neither pending nor in the next height's set.
async fn admit_governance_peers<S: Store>(
    requests: &tokio::sync::mpsc::Sender<NetworkRequest>,
    shared: &Shared<S>,
    admitted: &mut BTreeSet<String>,
) {
    let wanted = match governance_peers(&shared.ledger()) {
        Ok(wanted) => wanted,
        Err(error) => {
            warn!(%error, "could not read the validator set for the peer list");
            return;
        }
    };
    let new: Vec<String> = wanted.difference(admitted).cloned().collect();
    for peer in new {
        let Ok(address) = format!("/p2p/{peer}").parse::<Multiaddr>() else {
            continue;
        };
        if let Ok(Ok(())) = NetworkRequest::add_persistent_peer(requests, address).await {
            info!(%peer, "admitting a validator that a governance change adds");
            admitted.insert(peer);
        }
    }
    for peer in admitted.difference(&wanted).cloned().collect::<Vec<_>>() {
        let Ok(address) = format!("/p2p/{peer}").parse::<Multiaddr>() else {
            continue;
        };
        if let Ok(Ok(())) = NetworkRequest::remove_persistent_peer(requests, address).await {
            info!(%peer, "no longer admitting a validator that left the set");
            admitted.remove(&peer);
        }
    }
}

/// The peer ids of validators outside genesis: in the next height's set, or named by a
/// pending change.
fn governance_peers<S: Store>(
    ledger: &ledger::Ledger<S>,
) -> Result<BTreeSet<String>, ledger::LedgerError> {
    let genesis = ledger.genesis();
    let in_genesis = |key: &ledger::types::PublicKey| {
        genesis.validator(key).is_some() || genesis.genesis.observers.iter().any(|o| &o.key == key)
    };
    let mut keys: Vec<ledger::types::PublicKey> = ledger
        .validator_set()?
        .validators
        .iter()
        .map(|v| v.key)
        .collect();
    for (_, record) in ledger.pending_changes(GOVERNANCE_PEERS_PENDING_MAX)? {
        match &record.change {
            Change::SetValidator {
                validator: Some(spec),
                ..
            } => keys.push(spec.key),
            Change::AddOrganisation { organisation } => {
                keys.extend(organisation.validator.as_ref().map(|v| v.key))
            }
            _ => {}
        }
    }
    Ok(keys
        .iter()
        .filter(|key| !in_genesis(key))
        .map(genesis::testnet::peer_id)
        .collect())
}
