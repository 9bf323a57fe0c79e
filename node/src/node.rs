//! `bansos node --home DIR`: opens the ledger, starts the HTTP API, the transaction relay
//! and consensus, and runs until consensus fails or the process is told to stop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ledger::tx::Transaction;
use ledger::{Ledger, RocksStore};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::api;
use crate::config::NodeSettings;
use crate::consensus;
use crate::mempool::Mempool;
use crate::shared::{Shared, RELAY_QUEUE_TXS_MAX};

/// The most transactions relayed to a peer in one request.
pub const RELAY_BATCH_TXS_MAX: usize = 500;
/// How long the relay waits to fill a batch.
pub const RELAY_BATCH_WAIT: Duration = Duration::from_millis(10);
/// How long a relay request to a peer may take.
pub const RELAY_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs a node from its home directory until it fails or receives Ctrl-C / SIGTERM.
pub fn run(home: &Path) -> anyhow::Result<()> {
    let settings = NodeSettings::load(home)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bansos")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_async(settings))
}

async fn run_async(settings: NodeSettings) -> anyhow::Result<()> {
    let store = RocksStore::open(&settings.ledger_path())
        .with_context(|| format!("opening the ledger at {}", settings.ledger_path().display()))?;
    let ledger = Ledger::open(store, settings.genesis.clone())?;
    info!(
        node = %settings.name,
        role = ?settings.role,
        chain_id = %settings.genesis.chain_id,
        height = ledger.tip().height,
        key = %settings.public_key(),
        "node starting"
    );
    let (relay_sender, relay_receiver) = mpsc::channel(RELAY_QUEUE_TXS_MAX);
    let relay_enabled = !settings.tx_relay.is_empty();
    let shared = Arc::new(Shared::new(
        settings.name.clone(),
        settings.role,
        ledger,
        Mempool::new(settings.mempool.txs_max, settings.mempool.bytes_max),
        relay_enabled.then_some(relay_sender),
    ));
    let listener = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .with_context(|| format!("listening for HTTP on {}", settings.http_listen))?;
    info!(http = %settings.http_listen, "HTTP API listening");
    let router = api::router(shared.clone());
    let http = tokio::spawn(async move { axum::serve(listener, router).await });
    let relay = tokio::spawn(relay_transactions(
        relay_receiver,
        settings.tx_relay.clone(),
    ));
    let result = tokio::select! {
        result = consensus::engine::run(&settings, shared.clone()) => result,
        result = http => match result {
            Ok(Ok(())) => Err(anyhow::anyhow!("the HTTP server stopped")),
            Ok(Err(e)) => Err(anyhow::anyhow!("the HTTP server failed: {e}")),
            Err(e) => Err(anyhow::anyhow!("the HTTP server task failed: {e}")),
        },
        () = shutdown_signal() => {
            info!("stopping on request");
            Ok(())
        }
    };
    relay.abort();
    result
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

/// Passes transactions submitted to this node on to its peers, in batches, so that
/// whichever validator proposes next holds them. Peers do not relay them further.
async fn relay_transactions(mut receiver: mpsc::Receiver<Transaction>, peers: Vec<String>) {
    let client = match reqwest::Client::builder()
        .timeout(RELAY_REQUEST_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            warn!(%error, "transaction relay disabled: no HTTP client");
            return;
        }
    };
    let mut batch = Vec::with_capacity(RELAY_BATCH_TXS_MAX);
    loop {
        let Some(first) = receiver.recv().await else {
            return;
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + RELAY_BATCH_WAIT;
        while batch.len() < RELAY_BATCH_TXS_MAX {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(tx)) => batch.push(tx),
                _ => break,
            }
        }
        let body = match serde_json::to_vec(&batch) {
            Ok(body) => body,
            Err(error) => {
                warn!(%error, "could not encode a relay batch");
                batch.clear();
                continue;
            }
        };
        batch.clear();
        let sends = peers.iter().map(|peer| {
            let request = client
                .post(format!("{peer}/v1/txs"))
                .header(api::RELAYED_HEADER, "1")
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send();
            async move {
                if let Err(error) = request.await {
                    debug!(%peer, %error, "relaying transactions failed");
                }
            }
        });
        futures::future::join_all(sends).await;
    }
}
