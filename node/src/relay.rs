//! The transaction relay: passes transactions submitted to this node on to the peers due to
//! propose next, in batches, so that the validator whose block takes them already holds
//! them. Peers do not relay them further (the batch is marked as relayed); a client that
//! submits a pending transaction again has it relayed again (a peer may have missed it).
//!
//! A peer that proposes none of the next blocks is skipped: it would only check and hold
//! what it will see in a block anyway. Each peer says which validator it is (`node_key` in
//! its `/v1/status`); one that has not said yet is sent everything.
//!
//! Every push to a peer is signed with this node's key as a consortium request (RFC 9421,
//! `auth`), which the peer checks against the node keys in genesis: nobody else can have a
//! batch treated as relayed, or push checkpoint signatures.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ledger::tx::Transaction;
use ledger::types::{PublicKey, TxHash};
use ledger::Store;
use proto::api::TX_BATCH_TXS_MAX;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::clock::Clock;
use crate::shared::Shared;

/// The most transactions relayed to a peer in one request (fewer, larger requests: the
/// peer verifies a batch's signatures together).
pub const RELAY_BATCH_TXS_MAX: usize = 2_000;
/// How long the relay waits to fill a batch. Under load a batch fills anyway while the
/// previous request to the peer is in flight; at a moderate rate this wait is how much
/// later the next proposer holds the transaction (10 ms before 2026-12-06: finality at half
/// of peak paid for it, and a client request's transactions arrive well within 2 ms).
pub const RELAY_BATCH_WAIT: Duration = Duration::from_millis(2);
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
/// see them in a proposal), and no other peer is slowed down. A peer that misses one of a
/// signer's transactions holds that signer's later ones only as waiting (and refuses them
/// beyond the mempool's nonce gap) until a block commits the missing one, so this queue
/// holds as much as the relay's own ([`RELAY_QUEUE_TXS_MAX`]): a burst the node admitted
/// reaches every live peer. At most ~20,000 entries a peer, each a hash and a handle on
/// bytes (~1 KB) that every peer's queue shares.
pub const RELAY_PEER_QUEUE_TXS_MAX: usize = RELAY_QUEUE_TXS_MAX;

/// How often the relay asks a peer which validator it is, once it has said: a validator's
/// node can be restarted with another key (a governance change rotates it).
pub const PEER_KEY_REFRESH: Duration = Duration::from_secs(30);
/// How soon the relay asks again a peer that did not say which validator it is.
pub const PEER_KEY_RETRY: Duration = Duration::from_secs(1);

/// What a node signs its pushes to peers with: its node key (made ready to sign once) and
/// its clock.
#[derive(Clone)]
pub struct RelaySigner {
    key: auth::RequestKey,
    clock: Arc<dyn Clock>,
}

impl RelaySigner {
    /// Signs with `key`, dated by `clock`.
    pub fn new(key: &SigningKey, clock: Arc<dyn Clock>) -> Result<RelaySigner, auth::AuthError> {
        Ok(RelaySigner {
            key: auth::RequestKey::new(key)?,
            clock,
        })
    }
}

/// An HTTP client for talking to peers, or `None` (logged) if none can be built.
fn peer_client(purpose: &str) -> Option<reqwest::Client> {
    match reqwest::Client::builder()
        .timeout(RELAY_REQUEST_TIMEOUT)
        .build()
    {
        Ok(client) => Some(client),
        Err(error) => {
            warn!(%error, "{purpose} disabled: no HTTP client");
            None
        }
    }
}

/// Starts one sender per peer, each fed by its own queue of `capacity`, and hands every
/// item from `receiver` to every queue until the channel closes. A full queue means that
/// peer is slow or down: it misses that item, and the others do not wait for it.
async fn fan_out<T: Clone + Send + 'static, F>(
    mut receiver: mpsc::Receiver<T>,
    peers: Vec<String>,
    capacity: usize,
    dropped: Option<prometheus_client::metrics::counter::Counter>,
    sender: impl Fn(String, mpsc::Receiver<T>) -> F,
) where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut queues = Vec::with_capacity(peers.len());
    let mut senders = Vec::with_capacity(peers.len());
    for peer in peers {
        let (queue, peer_receiver) = mpsc::channel(capacity);
        queues.push(queue);
        senders.push(tokio::spawn(sender(peer, peer_receiver)));
    }
    while let Some(item) = receiver.recv().await {
        for queue in &queues {
            if queue.try_send(item.clone()).is_err() {
                if let Some(dropped) = &dropped {
                    dropped.inc();
                }
            }
        }
    }
    for sender in senders {
        sender.abort();
    }
}

/// A transaction to relay: its hash and its canonical bytes, as admission had them. Every
/// peer's queue shares the one copy, and a batch copies the bytes into its request body
/// without encoding the transaction again.
#[derive(Clone, Debug)]
pub struct Relayed {
    hash: TxHash,
    bytes: bytes::Bytes,
}

impl Relayed {
    /// The transaction whose canonical encoding is `bytes` and whose hash is `hash` (the
    /// hash of those bytes, as admission computed it).
    pub(crate) fn new(hash: TxHash, bytes: Vec<u8>) -> Relayed {
        debug_assert_eq!(
            ledger::types::Hash32::digest(&bytes),
            hash,
            "invariant broken: a relayed transaction's hash is not its bytes' hash"
        );
        Relayed {
            hash,
            bytes: bytes.into(),
        }
    }

    /// `tx`, encoded.
    pub fn of(tx: &Transaction) -> Relayed {
        let bytes = tx.to_bytes();
        Relayed::new(ledger::types::Hash32::digest(&bytes), bytes)
    }

    /// The transaction's hash.
    pub fn hash(&self) -> &TxHash {
        &self.hash
    }
}

impl AsRef<[u8]> for Relayed {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Relays what arrives on `receiver` to every peer (`http://host:port` base URLs) until the
/// channel closes. Each peer has its own queue and sender, so one slow or unreachable peer
/// delays only itself.
pub async fn relay_transactions<S: Store + 'static>(
    receiver: mpsc::Receiver<Relayed>,
    peers: Vec<String>,
    signer: RelaySigner,
    shared: Arc<Shared<S>>,
) {
    let Some(client) = peer_client("transaction relay") else {
        return;
    };
    let capacity = RELAY_PEER_QUEUE_TXS_MAX;
    let dropped = shared.metrics.relay_dropped.clone();
    fan_out(receiver, peers, capacity, Some(dropped), |peer, queue| {
        let (key_sender, peer_key) = watch::channel(None);
        tokio::spawn(learn_peer_key(client.clone(), peer.clone(), key_sender));
        relay_to_peer(
            client.clone(),
            peer,
            peer_key,
            queue,
            signer.clone(),
            shared.clone(),
        )
    })
    .await;
}

/// Keeps `key` at the node key `peer` says it has (`node_key` in its `/v1/status`), until
/// the relay to that peer ends (drops its receiver). What a peer says only steers where
/// transactions go: a peer that lies about its key receives more or less to check, and
/// every push is still signed and checked as before.
async fn learn_peer_key(
    client: reqwest::Client,
    peer: String,
    key: watch::Sender<Option<PublicKey>>,
) {
    loop {
        let wait = match peer_node_key(&client, &peer).await {
            Some(learned) => {
                key.send_if_modified(|known| known.replace(learned) != Some(learned));
                PEER_KEY_REFRESH
            }
            None => PEER_KEY_RETRY,
        };
        tokio::select! {
            () = key.closed() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The node key `peer`'s `/v1/status` shows, if it answers with one.
async fn peer_node_key(client: &reqwest::Client, peer: &str) -> Option<PublicKey> {
    let response = client.get(format!("{peer}/v1/status")).send().await;
    let status: proto::api::StatusJson = match response {
        Ok(response) if response.status().is_success() => response.json().await.ok()?,
        Ok(response) => {
            debug!(%peer, status = %response.status(), "a peer did not say which node it is");
            return None;
        }
        Err(error) => {
            debug!(%peer, %error, "a peer did not say which node it is");
            return None;
        }
    };
    PublicKey::from_hex(&status.node_key).ok()
}

/// The validators due to propose what is relayed while consensus decides `height` at
/// `round`:
/// - that round's proposer, until its proposal is here (`proposed`): it may still be
///   waiting for work to build its block; once it has built, it takes nothing more at this
///   height;
/// - the next round's, should this one fail;
/// - the next height's first: under load the current proposer has built its block already,
///   and the next one takes what arrives meanwhile;
/// - once this round's proposal is here, also the first of the height after: the next
///   proposer builds as soon as it commits this height, which may be before this node does,
///   and what reaches it after that waits for a block of a validator that holds it. Sent
///   only to the next proposer, such a transaction waited for the submitting node's own
///   turn, up to a whole round of proposers.
///
/// With a set of four at round 0, two validators; with one, itself.
pub fn relay_targets(
    set: &proto::ValidatorSet,
    height: u64,
    round: u32,
    proposed: bool,
) -> Vec<PublicKey> {
    let next_height = height.saturating_add(1);
    let mut due = vec![
        set.proposer_index(height, round.saturating_add(1)),
        set.proposer_index(next_height, 0),
    ];
    if proposed {
        due.push(set.proposer_index(next_height.saturating_add(1), 0));
    } else {
        due.push(set.proposer_index(height, round));
    }
    let mut keys: Vec<PublicKey> = due.iter().map(|&i| set.validators()[i].key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Which validators a relay task sends to now, worked out again only when the height or
/// round being decided, whether its proposal is here, or the validator set changes.
#[derive(Default)]
struct Schedule {
    /// The (height, round, whether its proposal is here) the targets are for.
    at: Option<(u64, u32, bool)>,
    /// The validator set they were picked from, and its version.
    set: Option<(u64, proto::ValidatorSet)>,
    /// `None` when the ledger's validator set could not be read: then every peer is sent
    /// everything, as before the relay picked its peers.
    targets: Option<Vec<PublicKey>>,
}

impl Schedule {
    /// Whether the validator with `key` is due to propose soon enough to be sent what is
    /// relayed now.
    fn wants<S: Store>(&mut self, shared: &Shared<S>, key: &PublicKey) -> bool {
        let height = shared.ledger().tip().height.saturating_add(1);
        let (view_height, view_round, view_proposed) = {
            let view = shared.consensus_view();
            (view.height, view.round, view.proposed)
        };
        let (round, proposed) = match u32::try_from(view_round) {
            Ok(round) if view_height == height => (round, view_proposed),
            _ => (0, false),
        };
        if self.at != Some((height, round, proposed)) {
            self.at = Some((height, round, proposed));
            // The set of the next height; read from the store only when that height, its
            // round or whether the round's proposal is here changes (twice a height).
            let record = shared.ledger().validator_set();
            self.targets = match record {
                Ok(record) => self
                    .set_for(&record)
                    .map(|set| relay_targets(set, height, round, proposed)),
                Err(error) => {
                    warn!(%error, "the relay cannot read the validator set: relaying to every peer");
                    None
                }
            };
        }
        self.targets
            .as_ref()
            .is_none_or(|targets| targets.contains(key))
    }

    /// The set `record` describes, built again only when its version changes.
    fn set_for(
        &mut self,
        record: &ledger::governance::ValidatorSetRecord,
    ) -> Option<&proto::ValidatorSet> {
        if self.set.as_ref().map(|(version, _)| *version) != Some(record.version) {
            self.set = proto::ValidatorSet::from_record(record).map(|set| (record.version, set));
        }
        self.set.as_ref().map(|(_, set)| set)
    }
}

/// Sends one peer its transactions in batches, one request at a time, while it is due to
/// propose soon (`Schedule`); a batch that leaves while it is not is dropped for this peer,
/// which will see those transactions in a block. Those no longer pending here when their
/// batch leaves (a block took them meanwhile, as it takes most under load, or the mempool
/// dropped them) are not sent either.
async fn relay_to_peer<S: Store + 'static>(
    client: reqwest::Client,
    peer: String,
    peer_key: watch::Receiver<Option<PublicKey>>,
    mut receiver: mpsc::Receiver<Relayed>,
    signer: RelaySigner,
    shared: Arc<Shared<S>>,
) {
    let mut batch = Vec::with_capacity(RELAY_BATCH_TXS_MAX);
    let mut schedule = Schedule::default();
    while next_batch(&mut receiver, &mut batch).await {
        let known_key = *peer_key.borrow();
        if let Some(key) = known_key {
            if !schedule.wants(&shared, &key) {
                shared.metrics.relay_not_due.inc_by(batch.len() as u64);
                batch.clear();
                continue;
            }
        }
        {
            let pool = shared.mempool();
            batch.retain(|relayed| pool.contains(relayed.hash()));
        }
        if batch.is_empty() {
            continue;
        }
        // The binary form: no JSON to write here or to parse at the peer, a third the bytes
        // to send and to digest for the request signature.
        let body = proto::txbatch::encode_encoded_batch(&batch);
        batch.clear();
        let body = match body {
            Ok(body) => body,
            Err(error) => {
                // Admitted transactions in a batch of at most RELAY_BATCH_TXS_MAX always fit.
                debug_assert!(false, "a relay batch does not encode: {error}");
                warn!(%error, "could not encode a relay batch");
                continue;
            }
        };
        let post = MarkedPost {
            path: "/v1/txs",
            content_type: proto::txbatch::TX_BATCH_BINARY_TYPE,
            what: "relayed transactions",
        };
        post.send(&client, &peer, &signer, body).await;
    }
}

/// A POST to a peer, signed as a consortium request with this node's key.
struct MarkedPost {
    path: &'static str,
    content_type: &'static str,
    /// What is sent, for the log.
    what: &'static str,
}

impl MarkedPost {
    async fn send(
        &self,
        client: &reqwest::Client,
        peer: &str,
        signer: &RelaySigner,
        body: Vec<u8>,
    ) {
        let url = format!("{peer}{}", self.path);
        let Ok(uri) = url.parse::<axum::http::Uri>() else {
            warn!(%peer, "not a peer URL");
            return;
        };
        let now_s = signer.clock.unix_ms() / 1_000;
        let signature =
            auth::sign_fresh_with(&axum::http::Method::POST, &uri, &body, &signer.key, now_s).await;
        let signature = match signature {
            Ok(headers) => headers,
            Err(error) => {
                warn!(%error, what = self.what, "could not sign a push to peers");
                return;
            }
        };
        let request = client
            .post(url)
            .headers(signature)
            .header(reqwest::header::CONTENT_TYPE, self.content_type)
            .body(body)
            .send();
        match request.await {
            Ok(response) if response.status().is_success() => {}
            // A peer that refuses the signature (a key it does not know, or clocks more
            // than half a minute apart) would otherwise drop everything without a trace.
            Ok(response) => {
                warn!(%peer, status = %response.status(), what = self.what, "a peer refused what this node sent")
            }
            Err(error) => debug!(%peer, %error, what = self.what, "sending to a peer failed"),
        }
    }
}

/// Waits for one transaction, then gathers more for up to [`RELAY_BATCH_WAIT`]. False once
/// the channel is closed.
async fn next_batch(receiver: &mut mpsc::Receiver<Relayed>, batch: &mut Vec<Relayed>) -> bool {
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

/// Checkpoint notes queued per peer; a slow peer misses the oldest (a later checkpoint
/// supersedes them).
pub const CHECKPOINT_PEER_QUEUE_MAX: usize = 64;

/// Pushes this validator's signed checkpoints (one-signature notes) to every peer's
/// `POST /v1/checkpoint/signatures`, signed like relayed transactions, until the channel
/// closes. One queue and sender per peer.
pub async fn push_checkpoints(
    receiver: mpsc::Receiver<String>,
    peers: Vec<String>,
    signer: RelaySigner,
) {
    let Some(client) = peer_client("checkpoint push") else {
        return;
    };
    fan_out(
        receiver,
        peers,
        CHECKPOINT_PEER_QUEUE_MAX,
        None,
        |peer, queue| push_to_peer(client.clone(), peer, queue, signer.clone()),
    )
    .await;
}

/// Sends one peer this validator's checkpoint notes, one request each.
async fn push_to_peer(
    client: reqwest::Client,
    peer: String,
    mut receiver: mpsc::Receiver<String>,
    signer: RelaySigner,
) {
    let post = MarkedPost {
        path: "/v1/checkpoint/signatures",
        content_type: "text/plain; charset=utf-8",
        what: "a checkpoint signature",
    };
    while let Some(note) = receiver.recv().await {
        post.send(&client, &peer, &signer, note.into_bytes()).await;
    }
}

/// How often a node whose latest signed checkpoint is behind its log asks its peers for
/// theirs (a pushed signature can be lost, and a node that was down missed them).
pub const CHECKPOINT_PULL_INTERVAL: Duration = Duration::from_secs(2);

/// Fetches the peers' latest checkpoints (`GET /v1/checkpoint`, public: the note's
/// signatures authenticate it) whenever this node's latest signed one is behind its log.
pub async fn pull_checkpoints<S: Store + 'static>(shared: Arc<Shared<S>>, peers: Vec<String>) {
    let Some(client) = peer_client("checkpoint pull") else {
        return;
    };
    loop {
        tokio::time::sleep(CHECKPOINT_PULL_INTERVAL).await;
        let behind = {
            let ledger = shared.ledger();
            let size = ledger.tip().log.size();
            size > 0 && ledger.latest_checkpoint_size().ok().flatten() < Some(size)
        };
        if !behind {
            continue;
        }
        for peer in &peers {
            let response = client.get(format!("{peer}/v1/checkpoint")).send().await;
            let Ok(response) = response else { continue };
            if !response.status().is_success() {
                continue;
            }
            let Ok(note) = response.text().await else {
                continue;
            };
            if let Err(error) = shared.checkpoints.receive(&mut shared.ledger_mut(), &note) {
                debug!(%peer, %error, "a peer's checkpoint was not taken");
            }
        }
    }
}

/// How often a validator looks for a newer signed checkpoint to take to the witnesses.
pub const WITNESS_PUSH_INTERVAL: Duration = Duration::from_secs(1);

/// What a witness made of a checkpoint.
enum Witnessed {
    /// Cosigned: the cosignature lines.
    Cosigned(String),
    /// The old size was not the witness's; this is its size.
    OldSize(u64),
    Failed,
}

/// Takes this node's latest signed checkpoint to every witness (C2SP tlog-witness
/// `add-checkpoint`, with a consistency proof from the size the witness last cosigned) and
/// merges the cosignatures they return into the note it serves. A witness that was down
/// gets the latest checkpoint when it is back; sizes in between are not cosigned.
pub async fn push_to_witnesses<S: Store + 'static>(shared: Arc<Shared<S>>, witnesses: Vec<String>) {
    let Some(client) = peer_client("witness push") else {
        return;
    };
    // Per witness: the size it last cosigned (as far as this node knows), and the size
    // this node last had cosigned by it.
    let mut known = vec![0u64; witnesses.len()];
    let mut done = vec![0u64; witnesses.len()];
    loop {
        tokio::time::sleep(WITNESS_PUSH_INTERVAL).await;
        let Some((size, note)) = latest_signed(&shared) else {
            continue;
        };
        for (i, witness) in witnesses.iter().enumerate() {
            // A 409 teaches the witness's size; one retry with it.
            for _ in 0..2 {
                if done[i] >= size || known[i] > size {
                    break;
                }
                match add_checkpoint(&client, &shared, witness, known[i], size, &note).await {
                    Witnessed::Cosigned(lines) => {
                        merge_cosignatures(&shared, &note, &lines, witness);
                        (known[i], done[i]) = (size, size);
                    }
                    Witnessed::OldSize(theirs) => {
                        known[i] = theirs;
                        continue;
                    }
                    Witnessed::Failed => {}
                }
                break;
            }
        }
    }
}

/// This node's latest checkpoint signed by a quorum: its size and the note.
fn latest_signed<S: Store>(shared: &Shared<S>) -> Option<(u64, String)> {
    let note = shared.checkpoints.served(&shared.ledger(), None).ok()??;
    let size = ledger::note::checkpoint_of(&note).ok()?.size;
    Some((size, note))
}

/// One `add-checkpoint` request.
async fn add_checkpoint<S: Store>(
    client: &reqwest::Client,
    shared: &Shared<S>,
    witness: &str,
    old: u64,
    size: u64,
    note: &str,
) -> Witnessed {
    let proof = if old > 0 && old < size {
        match shared.ledger().consistency_proof(old, size) {
            Ok(path) => path.iter().map(|h| h.0).collect(),
            Err(error) => {
                warn!(%error, old, size, "no consistency proof for a witness");
                return Witnessed::Failed;
            }
        }
    } else {
        Vec::new()
    };
    let body = crate::witness::AddCheckpoint {
        old,
        proof,
        note: note.to_owned(),
    }
    .to_text();
    let sent = client
        .post(format!("{witness}/witness/add-checkpoint"))
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            debug!(%witness, %error, "a witness did not answer");
            return Witnessed::Failed;
        }
    };
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match status.as_u16() {
        200 => Witnessed::Cosigned(text),
        409 => text
            .trim_end()
            .parse()
            .map_or(Witnessed::Failed, Witnessed::OldSize),
        _ => {
            warn!(%witness, %status, answer = %text.trim(), "a witness refused a checkpoint");
            Witnessed::Failed
        }
    }
}

/// Adds a witness's cosignature lines to the note (checked like any signature first) and
/// passes them on to the peers, observers included, so that every node serves checkpoints
/// a citizen's policy accepts.
fn merge_cosignatures<S: Store>(shared: &Shared<S>, note: &str, lines: &str, witness: &str) {
    let Ok(parsed) = ledger::note::SignedNote::parse(note) else {
        return;
    };
    let cosigned = format!("{}\n{lines}", parsed.text);
    match shared
        .checkpoints
        .receive(&mut shared.ledger_mut(), &cosigned)
    {
        Ok(_) => shared.push_checkpoint_note(cosigned),
        Err(error) => warn!(%witness, %error, "a witness's cosignature was not taken"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use genesis::testnet::{Testnet, TestnetSpec};
    use rand::SeedableRng;

    fn set_of(validators: usize) -> proto::ValidatorSet {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let spec = TestnetSpec {
            validators,
            ..TestnetSpec::default()
        };
        let net = Testnet::generate(&spec, &mut rng).unwrap();
        let index = net.genesis.validate().unwrap();
        proto::ValidatorSet::from_genesis(&index.validators).unwrap()
    }

    /// Round-robin written out for a set of four: at round 0 of height h the proposers of
    /// h and h + 1; once round r of h has begun, those of rounds r and r + 1 of h and of h +
    /// 1's first round (which is round r + 1's at r = 0, and another validator's later).
    /// Once the round's proposal is here, its proposer gives way to h + 2's first.
    #[test]
    fn the_relay_targets_the_proposer_due_now_and_the_next() {
        let set = set_of(4);
        let key = |turn: u64| set.validators()[(turn % 4) as usize].key;
        let sorted = |mut keys: Vec<PublicKey>| {
            keys.sort_unstable();
            keys.dedup();
            keys
        };
        for height in 1..=9_u64 {
            // Before the round's proposal is here: its proposer and the next; after: the
            // next two.
            let round_0 = sorted(vec![key(height - 1), key(height)]);
            assert_eq!(
                relay_targets(&set, height, 0, false),
                round_0,
                "height {height}"
            );
            let round_0 = sorted(vec![key(height), key(height + 1)]);
            assert_eq!(
                relay_targets(&set, height, 0, true),
                round_0,
                "height {height}"
            );
            for round in 1..=5_u32 {
                let turn = height - 1 + u64::from(round);
                let expected = sorted(vec![key(turn), key(turn + 1), key(height)]);
                assert_eq!(
                    relay_targets(&set, height, round, false),
                    expected,
                    "height {height} round {round}"
                );
                let expected = sorted(vec![key(turn + 1), key(height), key(height + 1)]);
                assert_eq!(
                    relay_targets(&set, height, round, true),
                    expected,
                    "height {height} round {round}, proposed"
                );
            }
        }
        assert_eq!(relay_targets(&set, 1, 0, false).len(), 2);
        assert_eq!(relay_targets(&set, 1, 0, true).len(), 2);
        let alone = set_of(1);
        assert_eq!(
            relay_targets(&alone, 5, 2, true),
            vec![alone.validators()[0].key]
        );
    }
}
