//! `bansos node --home DIR`: opens the ledger, starts the HTTP API, the transaction relay
//! and consensus, and runs until consensus fails or the process is told to stop.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context as _;
use ledger::store::{MEMTABLES_BYTES_MAX, MEMTABLES_BYTES_MIN};
use ledger::types::PublicKey;
use ledger::{Ledger, RocksStore};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::api;
use crate::clock::SystemClock;
use crate::config::NodeSettings;
use crate::consensus;
use crate::mempool::Mempool;
use crate::relay::{
    pull_checkpoints, push_checkpoints, push_to_witnesses, relay_transactions, RelaySigner,
    CHECKPOINT_PEER_QUEUE_MAX, RELAY_QUEUE_TXS_MAX,
};
use crate::server::{self, ServerLimits};
use crate::shared::{Shared, MEMPOOL_SWEEP_INTERVAL};

/// How much less than [`MEMTABLES_BYTES_MAX`] a node's memtables may be given: up to a
/// quarter, 16 MiB.
const MEMTABLES_BUDGET_SPREAD_BYTES: usize = MEMTABLES_BYTES_MAX / 4;
const _: () = assert!(MEMTABLES_BYTES_MAX - MEMTABLES_BUDGET_SPREAD_BYTES >= MEMTABLES_BYTES_MIN);

/// The memory this node's RocksDB memtables get, from its node key: 48 to 64 MiB, a
/// different amount on each node. Every node writes the same chain, so with equal budgets
/// they all flushed at the same block, and a flush (the log's leaves through zstd: 0.5–2 s
/// of a core) on every node at once stalled blocks for up to half a second when the nodes
/// share a machine (docs/BENCHMARKS.md). Derived from the key, not drawn at random: a
/// node keeps its budget across restarts, and a test can predict it.
pub fn memtables_budget(node_key: &PublicKey) -> usize {
    let mut first = [0u8; 8];
    first.copy_from_slice(&node_key.0[..8]);
    let less = u64::from_le_bytes(first) % (MEMTABLES_BUDGET_SPREAD_BYTES as u64 + 1);
    MEMTABLES_BYTES_MAX - less as usize
}

/// How long a stopping node waits for its tasks to end, so that the store they share is
/// closed before the process exits.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// Runs a node from its home directory until it fails or receives Ctrl-C / SIGTERM.
///
/// Consensus (Malachite's actors and the application loop) runs on a runtime of its own,
/// so that however busy the HTTP API gets, consensus messages are still handled.
///
/// On the way out both runtimes are shut down, waiting at most [`SHUTDOWN_WAIT`] each for
/// their tasks to end, and with them the last holders of the ledger: RocksDB closes (its
/// flushes and compactions finish or stop) before the process exits. A process that exits
/// with the database open runs RocksDB's static destructors under its background threads,
/// and aborted so ("pthread lock: Invalid argument") on 8 of 40 stops after load
/// (docs/BENCHMARKS.md).
pub fn run(home: &Path) -> anyhow::Result<()> {
    let settings = NodeSettings::load(home)?;
    let http_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bansos-http")
        .build()
        .context("starting the HTTP runtime")?;
    let consensus_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .thread_name("bansos-consensus")
        .build()
        .context("starting the consensus runtime")?;
    let mut held = Weak::new();
    let result = http_runtime.block_on(run_async(
        settings,
        consensus_runtime.handle().clone(),
        &mut held,
    ));
    // A stalled task is waited for only so long.
    consensus_runtime.shutdown_timeout(SHUTDOWN_WAIT);
    http_runtime.shutdown_timeout(SHUTDOWN_WAIT);
    if held.strong_count() == 0 {
        info!("ledger closed");
    } else {
        warn!("the ledger is still in use at exit: RocksDB may not close cleanly");
    }
    result
}

/// Runs the node until it stops. `held` is pointed at the node's shared state (the ledger
/// with its store), to show when the last task holding it has ended.
async fn run_async(
    settings: NodeSettings,
    consensus_runtime: tokio::runtime::Handle,
    held: &mut Weak<Shared<RocksStore>>,
) -> anyhow::Result<()> {
    let budget = memtables_budget(&settings.public_key());
    let store = RocksStore::open_with_memtables(&settings.ledger_path(), budget)
        .with_context(|| format!("opening the ledger at {}", settings.ledger_path().display()))?;
    let ledger = Ledger::open(store, settings.genesis.clone())?;
    info!(
        node = %settings.name,
        role = ?settings.role,
        chain_id = %settings.genesis.chain_id,
        genesis_hash = %ledger.genesis().hash,
        height = ledger.tip().height,
        key = %settings.public_key(),
        memtables_mib = budget / (1024 * 1024),
        peer_id = %genesis::testnet::peer_id(&settings.public_key()),
        p2p = %settings.p2p_listen,
        "node starting"
    );
    let (relay_sender, relay_receiver) = mpsc::channel(RELAY_QUEUE_TXS_MAX);
    let relay_enabled = !settings.tx_relay.is_empty();
    let (checkpoint_sender, checkpoint_receiver) = mpsc::channel(CHECKPOINT_PEER_QUEUE_MAX);
    let mut shared = Shared::new(
        settings.name.clone(),
        settings.role,
        settings.public_key(),
        ledger,
        Mempool::new(settings.mempool.txs_max, settings.mempool.bytes_max),
        relay_enabled.then_some(relay_sender),
        Arc::new(SystemClock::new()),
    );
    if let Some(key) = &settings.checkpoint_key {
        shared = shared.with_checkpoint_signer(key.clone(), Some(checkpoint_sender));
    }
    if let Some(key) = &settings.witness_key {
        let record = settings
            .home
            .join("data")
            .join(crate::witness::WITNESS_STATE_FILE);
        let witness =
            crate::witness::Witness::open(&settings.genesis_index, key.clone(), Some(record))
                .map_err(|e| anyhow::anyhow!("the witness cannot start: {e}"))?;
        info!(cosigned = witness.cosigned_size(), "witnessing the log");
        shared = shared.with_witness(witness);
    }
    if !settings.pseudonym_service.is_empty() {
        crate::pseudonym_api::check_keys_against_ledger(
            &settings.pseudonym_service,
            &shared.ledger(),
        )?;
        for key in &settings.pseudonym_service {
            use base64::Engine as _;
            let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
            info!(key_version = key.version(), public_key = %public, "pseudonym service holds key");
        }
        shared = shared.with_pseudonym_service(settings.pseudonym_service.clone());
    }
    let shared = Arc::new(shared);
    *held = Arc::downgrade(&shared);
    let listener = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .with_context(|| format!("listening for HTTP on {}", settings.http_listen))?;
    info!(http = %settings.http_listen, "HTTP API listening");
    let router = api::router(shared.clone());
    let http = tokio::spawn(server::serve(listener, router, ServerLimits::default()));
    let background = spawn_background(&settings, &shared, relay_receiver, checkpoint_receiver)?;
    #[cfg(feature = "byzantine")]
    tokio::spawn(crate::consensus::byzantine::craft_transactions(
        shared.clone(),
    ));
    let consensus_settings = settings.clone();
    let consensus_shared = shared.clone();
    let consensus = consensus_runtime
        .spawn(async move { consensus::engine::run(&consensus_settings, consensus_shared).await });
    let result = tokio::select! {
        result = consensus => match result {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("the consensus task failed: {e}")),
        },
        result = http => match result {
            Ok(()) => Err(anyhow::anyhow!("the HTTP server stopped")),
            Err(e) => Err(anyhow::anyhow!("the HTTP server task failed: {e}")),
        },
        () = shutdown_signal() => {
            info!("stopping on request");
            Ok(())
        }
    };
    for task in background {
        task.abort();
    }
    result
}

/// Starts the node's background tasks: the transaction relay, checkpoint pushes and pulls,
/// witness pushes, the mempool sweeper and the store's memory gauges.
fn spawn_background(
    settings: &NodeSettings,
    shared: &Arc<Shared<RocksStore>>,
    relay_receiver: mpsc::Receiver<crate::relay::Relayed>,
    checkpoint_receiver: mpsc::Receiver<String>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let relay_signer = RelaySigner::new(&settings.node_key, shared.clock.clone())
        .context("preparing the node key to sign requests to peers")?;
    let checkpoint_push = tokio::spawn(push_checkpoints(
        checkpoint_receiver,
        settings.tx_relay.clone(),
        relay_signer.clone(),
    ));
    let checkpoint_pull = tokio::spawn(pull_checkpoints(shared.clone(), settings.tx_relay.clone()));
    let witness_push = tokio::spawn(push_to_witnesses(
        shared.clone(),
        settings.witnesses.clone(),
    ));
    let relay = tokio::spawn(relay_transactions(
        relay_receiver,
        settings.tx_relay.clone(),
        relay_signer,
        shared.clone(),
    ));
    let sweeper = tokio::spawn(sweep_mempool(shared.clone()));
    let store_memory = tokio::spawn(sample_store_memory(shared.clone()));
    Ok(vec![
        relay,
        checkpoint_push,
        checkpoint_pull,
        witness_push,
        sweeper,
        store_memory,
    ])
}

/// How often the store's memory gauges are refreshed.
const STORE_MEMORY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Keeps the `bansos_store_*_bytes` gauges current.
async fn sample_store_memory(shared: Arc<Shared<RocksStore>>) {
    let mut interval = tokio::time::interval(STORE_MEMORY_INTERVAL);
    loop {
        interval.tick().await;
        let memory = shared.ledger().store().memory();
        match memory {
            Ok(memory) => {
                let gauges = &shared.metrics.store;
                let set = |gauge: &prometheus_client::metrics::gauge::Gauge, bytes: u64| {
                    gauge.set(i64::try_from(bytes).expect("a store holds less than 2^63 bytes"));
                };
                set(&gauges.block_cache_bytes, memory.block_cache_bytes);
                set(&gauges.memtable_bytes, memory.memtable_bytes);
                set(&gauges.table_reader_bytes, memory.table_reader_bytes);
                set(&gauges.state_cache_bytes, memory.state_cache_bytes);
            }
            Err(error) => tracing::warn!(%error, "could not read the store's memory use"),
        }
    }
}

/// Drops transactions that waited too long, on a timer (not only when blocks commit, which
/// may be rare on a quiet network).
async fn sweep_mempool(shared: Arc<Shared<RocksStore>>) {
    let mut interval = tokio::time::interval(MEMPOOL_SWEEP_INTERVAL);
    loop {
        interval.tick().await;
        // The sweep checks signatures (relayed ones left unchecked): off the async threads.
        let sweeper = shared.clone();
        let expired = match tokio::task::spawn_blocking(move || sweeper.sweep_mempool()).await {
            Ok(expired) => expired,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        };
        if expired > 0 {
            info!(expired, "dropped transactions that waited too long");
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use super::{memtables_budget, MEMTABLES_BYTES_MAX, MEMTABLES_BYTES_MIN};
    use ledger::types::PublicKey;
    use rand::{Rng, SeedableRng};

    #[test]
    fn nodes_get_different_memtable_budgets_within_the_store_bounds() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let keys: Vec<PublicKey> = (0..5)
            .map(|_| {
                PublicKey(
                    ed25519_dalek::SigningKey::from_bytes(&rng.gen())
                        .verifying_key()
                        .to_bytes(),
                )
            })
            .collect();
        let budgets: Vec<usize> = keys.iter().map(memtables_budget).collect();
        for (key, budget) in keys.iter().zip(&budgets) {
            assert!((MEMTABLES_BYTES_MIN..=MEMTABLES_BYTES_MAX).contains(budget));
            assert!(
                *budget >= MEMTABLES_BYTES_MAX - MEMTABLES_BYTES_MAX / 4,
                "{budget}"
            );
            assert_eq!(
                memtables_budget(key),
                *budget,
                "the same key, the same budget"
            );
        }
        // A budget depends on the key: these five keys give five budgets 64 KiB apart or
        // more.
        let mut sorted = budgets.clone();
        sorted.sort_unstable();
        for pair in sorted.windows(2) {
            assert!(pair[1] - pair[0] >= 64 * 1024, "{budgets:?}");
        }
        // The extremes of the key space stay inside the bounds.
        assert_eq!(memtables_budget(&PublicKey([0; 32])), MEMTABLES_BYTES_MAX);
        let spread = MEMTABLES_BYTES_MAX / 4;
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&(spread as u64).to_le_bytes());
        assert_eq!(
            memtables_budget(&PublicKey(key)),
            MEMTABLES_BYTES_MAX - spread
        );
    }
}
