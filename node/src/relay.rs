//! The transaction relay: passes transactions submitted to this node on to its peers, in
//! batches, so that whichever validator proposes next already holds (and has verified)
//! them. Peers do not relay them further (the batch is marked as relayed); a client that
//! submits a pending transaction again has it relayed again (a peer may have missed it).
//!
//! Not yet done: the relayed mark is taken from any caller; authenticating relay as a
//! consortium node needs the HTTP message signatures of the verifiable-log issue.

use std::time::Duration;

use ledger::tx::Transaction;
use proto::api::{RELAYED_HEADER, TX_BATCH_TXS_MAX};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// The most transactions relayed to a peer in one request.
pub const RELAY_BATCH_TXS_MAX: usize = 500;
/// How long the relay waits to fill a batch.
pub const RELAY_BATCH_WAIT: Duration = Duration::from_millis(10);
/// How long a relay request to a peer may take.
pub const RELAY_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most transactions waiting to be relayed to peers; beyond it relaying is skipped
/// (the transaction stays in this node's mempool and is proposed from here).
pub const RELAY_QUEUE_TXS_MAX: usize = 20_000;

// A relay batch must be a batch a peer accepts.
const _: () = assert!(RELAY_BATCH_TXS_MAX <= TX_BATCH_TXS_MAX);
const _: () = assert!(RELAY_BATCH_TXS_MAX <= RELAY_QUEUE_TXS_MAX);
const _: () = assert!(RELAY_BATCH_TXS_MAX <= RELAY_PEER_QUEUE_TXS_MAX);

/// The most transactions waiting for one peer; beyond it that peer misses some (it will
/// see them in a proposal), and no other peer is slowed down.
pub const RELAY_PEER_QUEUE_TXS_MAX: usize = 5_000;

/// Relays what arrives on `receiver` to every peer (`http://host:port` base URLs) until the
/// channel closes. Each peer has its own queue and sender, so one slow or unreachable peer
/// delays only itself.
pub async fn relay_transactions(mut receiver: mpsc::Receiver<Transaction>, peers: Vec<String>) {
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
    let mut queues = Vec::with_capacity(peers.len());
    let mut senders = Vec::with_capacity(peers.len());
    for peer in peers {
        let (queue, peer_receiver) = mpsc::channel(RELAY_PEER_QUEUE_TXS_MAX);
        queues.push(queue);
        senders.push(tokio::spawn(relay_to_peer(
            client.clone(),
            peer,
            peer_receiver,
        )));
    }
    while let Some(tx) = receiver.recv().await {
        for queue in &queues {
            // A full queue means that peer is slow or down: it misses this one.
            let _ = queue.try_send(tx.clone());
        }
    }
    for sender in senders {
        sender.abort();
    }
}

/// Sends one peer its transactions in batches, one request at a time.
async fn relay_to_peer(
    client: reqwest::Client,
    peer: String,
    mut receiver: mpsc::Receiver<Transaction>,
) {
    let mut batch = Vec::with_capacity(RELAY_BATCH_TXS_MAX);
    while next_batch(&mut receiver, &mut batch).await {
        let body = match serde_json::to_vec(&batch) {
            Ok(body) => body,
            Err(error) => {
                warn!(%error, "could not encode a relay batch");
                batch.clear();
                continue;
            }
        };
        batch.clear();
        let request = client
            .post(format!("{peer}/v1/txs"))
            .header(RELAYED_HEADER, "1")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send();
        if let Err(error) = request.await {
            debug!(%peer, %error, "relaying transactions failed");
        }
    }
}

/// Waits for one transaction, then gathers more for up to [`RELAY_BATCH_WAIT`]. False once
/// the channel is closed.
async fn next_batch(
    receiver: &mut mpsc::Receiver<Transaction>,
    batch: &mut Vec<Transaction>,
) -> bool {
    let Some(first) = receiver.recv().await else {
        return false;
    };
    batch.push(first);
    let deadline = tokio::time::Instant::now() + RELAY_BATCH_WAIT;
    while batch.len() < RELAY_BATCH_TXS_MAX {
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(tx)) => batch.push(tx),
            _ => break,
        }
    }
    true
}
