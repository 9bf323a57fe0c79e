//! `bansos load`: a benchmark client. It submits valid signed transactions (households
//! proposed by the Pemda institutions of the network, with random pseudonyms) at a fixed
//! rate, follows the chain block by block, and reports committed transactions per second
//! and finality latency (submission to the first time the client sees the block holding the
//! transaction). It first measures, on this machine, the signature-verification limit the
//! DESIGN §7 target is stated against.
//!
//! Traffic goes only to the node named by `--node` (with `--spread`, to every validator of
//! the network, each agent to one), is bounded by `--count`, and stops after
//! `--timeout-secs` without progress.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use ed25519_dalek::SigningKey;
use ledger::genesis::OrgKind;
use ledger::limits::AGENT_REGIONS_MAX;
use ledger::tx::{Action, AgentRole, Transaction, TxBody};
use ledger::types::{Hash32, PublicKey, RegionCode};
use rand::{Rng, SeedableRng};

use crate::http::{runtime, NodeClient};

mod order;
use order::SignerQueues;

/// The most transactions a run may submit.
pub const LOAD_TXS_MAX: usize = 4_000_000;
/// Transactions per submission request.
const SUBMIT_BATCH_TXS_MAX: usize = 1_000;
/// Transactions of one signer per submission request: 64, the nonce gap a node allows past
/// a signer's pending transactions (`node::mempool::NONCE_GAP_MAX`, as Ethereum's geth
/// keeps per account). When the first is refused for load, the rest are still within the
/// gap and wait in the pool; with a signer's whole backlog in one request, under overload
/// all but 64 of each were refused `nonce_too_far_ahead` on every try (3,003,778
/// resubmissions in a 150 s overload).
pub const SUBMIT_SIGNER_TXS_MAX: usize = 64;
/// Submission requests in flight at once (each signer in at most one of them,
/// [`SignerQueues`]). A client that opened one per batch regardless had thousands open
/// under overload: the node shed most of them (503 `busy`), which ones got through was
/// chance, and a signer's earlier transactions could lose to its later ones until given up
/// on. Beyond this the client falls behind its rate, as a real one would.
const SUBMIT_IN_FLIGHT_MAX: usize = 16;
/// How often the submitter wakes up to send what is due.
const SUBMIT_TICK: Duration = Duration::from_millis(10);
/// How often the follower asks for the next block when it is not there yet.
const FOLLOW_POLL: Duration = Duration::from_millis(5);

/// Options of `bansos load`.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The node to submit to and follow.
    #[arg(long, default_value = "http://127.0.0.1:8701")]
    node: String,
    /// Submit to every validator in the network's `network.json` (under `--net`), each
    /// signer's transactions to one of them, the signers divided among them in turn: as
    /// each institution's agents submit to their own institution's node. `--node` is
    /// still the one followed.
    #[arg(long)]
    spread: bool,
    /// Transactions per second to submit.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Transactions to submit in all.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Write each transaction's hash with the height it committed at (or why not).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The network directory (for the institutions' keys).
    #[arg(long, default_value = "data/demo")]
    net: PathBuf,
    /// Give up when none of the submitted transactions commits for this long.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Seed for the generated households (default: from the clock, printed). Two runs with
    /// one seed propose the same households, and the second run's are refused as duplicates.
    #[arg(long)]
    seed: Option<u64>,
    /// Operator keys each Pemda registers first and then signs the proposals with, in
    /// turn (0: the Pemda's own key signs every one). Real load comes from many keys (each
    /// village's pendamping, each office's operators); one key alone meets the mempool's
    /// per-signer bounds long before the network's limit.
    #[arg(long, default_value_t = 64)]
    agents: usize,
}

/// The most agent keys a run registers.
pub const LOAD_AGENTS_MAX: usize = 4_096;
/// How long the load tool waits for its agent keys to be committed.
const AGENTS_COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

struct Signer {
    key: SigningKey,
    public: PublicKey,
    /// The regions the key may act in (an agent gets its Pemda's).
    scope: Vec<RegionCode>,
    villages: Vec<RegionCode>,
    next_nonce: u64,
}

/// How long the verification limit is measured for, in slices of [`LIMIT_SLICE`].
const LIMIT_MEASURE: Duration = Duration::from_secs(1);
/// One slice of the limit's measurement (about 10,000 verifications).
const LIMIT_SLICE: Duration = Duration::from_millis(100);

/// Measures batched ed25519 verification on one core (batches of 256) for
/// [`LIMIT_MEASURE`]; returns signatures per second in its fastest [`LIMIT_SLICE`]. The
/// limit is what the machine can do: on a network just started, its nodes were still busy
/// during part of the second, and the whole second's rate read 21% low (36,046 against
/// 45,695-48,224 tx/s in the runs after it), so the ratio to it read high.
fn verification_rate_per_core(sample: &[Transaction]) -> f64 {
    let started = Instant::now();
    let mut fastest = 0f64;
    while started.elapsed() < LIMIT_MEASURE {
        let slice = Instant::now();
        let mut verified = 0usize;
        while slice.elapsed() < LIMIT_SLICE {
            for chunk in sample.chunks(256) {
                let _ = ledger::tx::verify_signatures(chunk.iter());
                verified += chunk.len();
            }
        }
        fastest = fastest.max(verified as f64 / slice.elapsed().as_secs_f64());
    }
    fastest
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Default)]
struct Progress {
    submitted_at: Vec<Option<Instant>>,
    refused: Vec<Option<String>>,
    committed: Vec<Option<(u64, Instant)>>,
    /// Transient refusals, by code, each one resubmission.
    resubmitted: HashMap<String, usize>,
    /// How many transactions were never sent yet, and how many are neither committed nor
    /// refused: kept as they change, so that the follower's check on every poll that finds
    /// no new block costs nothing (scanning every entry 200 times a second took 12% of a core
    /// from the nodes it measures in a run of 1,000,000).
    unsent: usize,
    outstanding: usize,
}

impl Progress {
    fn new(count: usize) -> Progress {
        Progress {
            submitted_at: vec![None; count],
            refused: vec![None; count],
            committed: vec![None; count],
            resubmitted: HashMap::new(),
            unsent: count,
            outstanding: count,
        }
    }

    /// Records that transaction `i` was (re)sent at `at`.
    fn mark_sent(&mut self, i: usize, at: Instant) {
        if self.submitted_at[i].replace(at).is_none() {
            self.unsent -= 1;
        }
    }

    /// Records that transaction `i` was refused for good, with `code`.
    fn mark_refused(&mut self, i: usize, code: String) {
        if self.refused[i].replace(code).is_none() && self.committed[i].is_none() {
            self.outstanding -= 1;
        }
    }

    /// Records that transaction `i` was seen committed at `height`, at `at` (the first
    /// sighting stays).
    fn mark_committed(&mut self, i: usize, height: u64, at: Instant) {
        if self.committed[i].is_some() {
            return;
        }
        self.committed[i] = Some((height, at));
        if self.refused[i].is_none() {
            self.outstanding -= 1;
        }
    }

    /// Whether every transaction was sent and each one is committed or refused.
    fn done(&self) -> bool {
        self.unsent == 0 && self.outstanding == 0
    }

    /// Whether the two counts are what the vectors say (checked once a run, in the report:
    /// scanning here on every poll is what the counts are for avoiding).
    fn counts_match(&self) -> bool {
        let unsent = self.submitted_at.iter().filter(|s| s.is_none()).count();
        let outstanding = (self.committed.iter().zip(&self.refused))
            .filter(|(c, r)| c.is_none() && r.is_none())
            .count();
        (unsent, outstanding) == (self.unsent, self.outstanding)
    }
}

/// Runs `bansos load`.
pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    if args.count == 0 || args.count > LOAD_TXS_MAX {
        bail!("--count must be 1 to {LOAD_TXS_MAX}");
    }
    if args.rate == 0 {
        bail!("--rate must be above zero");
    }
    if args.agents > LOAD_AGENTS_MAX {
        bail!("--agents must be at most {LOAD_AGENTS_MAX}");
    }
    let genesis: ledger::Genesis = genesis::testnet::read_json(&args.net.join("genesis.json"))
        .with_context(|| {
            format!(
                "reading the network in {} (pass --net DIR)",
                args.net.display()
            )
        })?;
    let keys = genesis::testnet::read_keys(&args.net)?;
    let client = NodeClient::new(&args.node)?;
    let runtime = runtime()?;
    let mut signers = pemda_signers(&genesis, &keys, &client, &runtime)?;
    if signers.is_empty() {
        bail!("no Pemda key with villages in {}", args.net.display());
    }
    let status = runtime.block_on(client.status())?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7)
    });
    println!("households from seed {seed}");
    if args.agents > 0 {
        signers = register_agents(
            &mut signers,
            args.agents,
            seed,
            &status.chain_id,
            &client,
            &runtime,
        )?;
        println!("{} agent keys registered", signers.len());
    }
    let status = runtime.block_on(client.status())?;
    let txs = propose_households(&mut signers, &status.chain_id, args.count, seed);
    let limit = measure_verification_limit(&txs, status.validators.len());
    let targets = if args.spread {
        spread_targets(&args.net, &txs)?
    } else {
        Targets::one(client.clone(), txs.len())
    };
    let to = match targets.clients.len() {
        1 => args.node.clone(),
        n => format!("{n} validators, each signer to one"),
    };
    println!(
        "submitting {} transactions at {} tx/s to {to} (chain {} at height {})",
        args.count, args.rate, status.chain_id, status.height
    );
    let hashes: Vec<String> = txs.iter().map(|t| t.hash().to_string()).collect();
    let timeout = Duration::from_secs(args.timeout_secs);
    let (p, started) = submit_and_follow(
        &runtime,
        (&client, &targets),
        &txs,
        &hashes,
        args.rate,
        status.height + 1,
        timeout,
    );
    report(&p, args.count, (started, args.rate), limit);
    if let Some(path) = &args.out {
        write_outcomes(path, &hashes, &p)?;
    }
    Ok(())
}

/// The network's Pemda institutions whose keys are at hand, each with the villages in its
/// scope and its next nonce (asked from the node); those without villages are left out.
fn pemda_signers(
    genesis: &ledger::Genesis,
    keys: &genesis::testnet::TestnetKeys,
    client: &NodeClient,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Signer>> {
    let mut signers = Vec::new();
    for org in genesis
        .organisations
        .iter()
        .filter(|o| o.kind == OrgKind::Pemda)
    {
        let Some(key) = keys.orgs.get(&org.id) else {
            continue;
        };
        let villages: Vec<RegionCode> = genesis
            .regions
            .iter()
            .map(|r| r.code.clone())
            .filter(|c| {
                c.as_str().split('.').count() == 4
                    && org.regions.iter().any(|scope| c.is_within(scope))
            })
            .collect();
        if villages.is_empty() {
            continue;
        }
        let public = PublicKey(key.verifying_key().to_bytes());
        // Nonces are consortium data: asked as the institution itself.
        let own = client.clone().signed_by(key.clone());
        let next_nonce = runtime.block_on(own.key(&public))?.pending_next_nonce;
        signers.push(Signer {
            key: key.clone(),
            public,
            scope: org
                .regions
                .iter()
                .take(AGENT_REGIONS_MAX)
                .cloned()
                .collect(),
            villages,
            next_nonce,
        });
    }
    Ok(signers)
}

/// Registers `count` operator keys (drawn from `seed`), spread over the Pemda `orgs`, each
/// with its Pemda's regions, and waits until the last of them is committed; returns them
/// as signers.
fn register_agents(
    orgs: &mut [Signer],
    count: usize,
    seed: u64,
    chain_id: &str,
    client: &NodeClient,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Signer>> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed ^ 0xa6e7);
    let mut agents = Vec::with_capacity(count);
    let mut registrations = Vec::with_capacity(count);
    for i in 0..count {
        let org = &mut orgs[i % orgs.len()];
        let key = SigningKey::from_bytes(&rng.gen());
        let public = PublicKey(key.verifying_key().to_bytes());
        let body = TxBody {
            chain_id: chain_id.to_owned(),
            signer: org.public,
            nonce: org.next_nonce,
            action: Action::RegisterAgent {
                key: public,
                role: AgentRole::Operator,
                regions: org.scope.clone(),
            },
        };
        org.next_nonce += 1;
        registrations.push(body.sign(&org.key));
        agents.push(Signer {
            key,
            public,
            scope: org.scope.clone(),
            villages: org.villages.clone(),
            next_nonce: 0,
        });
    }
    runtime.block_on(async {
        for batch in registrations.chunks(SUBMIT_BATCH_TXS_MAX) {
            let response = client.submit_batch(batch).await?;
            if let Some(error) = response.results.iter().find_map(|r| r.error.as_ref()) {
                bail!(
                    "registering an agent key was refused: {}: {}",
                    error.code,
                    error.message
                );
            }
        }
        // Each Pemda's registrations commit in nonce order, so its last one being
        // committed means all of its are.
        let deadline = Instant::now() + AGENTS_COMMIT_TIMEOUT;
        for i in count.saturating_sub(orgs.len())..count {
            let own = client.clone().signed_by(orgs[i % orgs.len()].key.clone());
            while own.key(&agents[i].public).await.is_err() {
                if Instant::now() > deadline {
                    bail!("the agent keys were not committed within {AGENTS_COMMIT_TIMEOUT:?}");
                }
                tokio::time::sleep(FOLLOW_POLL * 20).await;
            }
        }
        Ok(())
    })?;
    Ok(agents)
}

/// Signs `count` proposals of random households from `seed`, taking the signers in turn
/// and advancing their nonces.
fn propose_households(
    signers: &mut [Signer],
    chain_id: &str,
    count: usize,
    seed: u64,
) -> Vec<Transaction> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut txs = Vec::with_capacity(count);
    for i in 0..count {
        let signer_count = signers.len();
        let signer = &mut signers[i % signer_count];
        let mut pseudonym = [0u8; 32];
        rng.fill(&mut pseudonym);
        let region = signer.villages[rng.gen_range(0..signer.villages.len())].clone();
        let body = TxBody {
            chain_id: chain_id.to_owned(),
            signer: signer.public,
            nonce: signer.next_nonce,
            action: Action::Propose {
                beneficiary: Hash32(pseudonym),
                region,
                household_size: rng.gen_range(1..=8),
                welfare_decile: rng.gen_range(1..=4),
            },
        };
        signer.next_nonce += 1;
        txs.push(body.sign(&signer.key));
    }
    txs
}

/// Measures and prints the signature-verification limit of this machine for a network of
/// `validators`, each verifying every transaction; returns it in transactions per second.
fn measure_verification_limit(txs: &[Transaction], validators: usize) -> f64 {
    let validators = validators.max(1);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let per_core = verification_rate_per_core(&txs[..txs.len().min(4096)]);
    let limit = per_core * cores as f64 / validators as f64;
    println!(
        "signature-verification limit on this machine: {limit:.0} tx/s ({per_core:.0} batched verifications/s per core x {cores} cores / {validators} validators each verifying every transaction)"
    );
    limit
}

/// Where each transaction is submitted: `route[i]` indexes `clients`.
struct Targets {
    clients: Vec<NodeClient>,
    route: Vec<usize>,
}

impl Targets {
    /// Every one of `count` transactions to `client`.
    fn one(client: NodeClient, count: usize) -> Targets {
        Targets {
            clients: vec![client],
            route: vec![0; count],
        }
    }
}

/// The validators of the network in `net` (its `network.json`), each signer of `txs` given
/// to one of them in turn, in the order the signers first sign.
fn spread_targets(net: &Path, txs: &[Transaction]) -> anyhow::Result<Targets> {
    let network: genesis::testnet::NetworkFile =
        genesis::testnet::read_json(&net.join("network.json"))
            .with_context(|| format!("reading {}/network.json", net.display()))?;
    let clients = network
        .nodes
        .iter()
        .filter(|node| node.role == genesis::testnet::NodeRole::Validator)
        .map(|node| NodeClient::new(&node.http))
        .collect::<Result<Vec<_>, _>>()?;
    if clients.is_empty() {
        bail!("no validator in {}/network.json", net.display());
    }
    let mut assigned: HashMap<PublicKey, usize> = HashMap::new();
    let route = txs
        .iter()
        .map(|tx| {
            let next = assigned.len() % clients.len();
            *assigned.entry(tx.body.signer).or_insert(next)
        })
        .collect();
    Ok(Targets { clients, route })
}

/// Submits `txs` (whose hashes are `hashes`) at `rate` per second while following the
/// chain from `from_height`, until every transaction is committed or refused or nothing
/// commits for `timeout`; returns what happened to each and when submission started.
fn submit_and_follow(
    runtime: &tokio::runtime::Runtime,
    (client, targets): (&NodeClient, &Targets),
    txs: &[Transaction],
    hashes: &[String],
    rate: u64,
    from_height: u64,
    timeout: Duration,
) -> (Progress, Instant) {
    let index: HashMap<String, usize> = hashes
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, h)| (h, i))
        .collect();
    let progress = Arc::new(Mutex::new(Progress::new(txs.len())));
    let started = Instant::now();
    runtime.block_on(async {
        let follower = tokio::spawn(follow(
            client.clone(),
            from_height,
            index,
            progress.clone(),
            timeout,
        ));
        for request in submit_at_rate(targets, txs, rate, started, &progress).await {
            if let Err(failed) = request.await {
                if failed.is_panic() {
                    std::panic::resume_unwind(failed.into_panic());
                }
            }
        }
        let _ = follower.await;
    });
    let mut p = lock(&progress);
    (std::mem::take(&mut *p), started)
}

/// Submits `txs` in batches as they fall due at `rate` per second from `started`, each to
/// its target, marking when each was sent; returns the submission requests, still running.
/// A signer's transactions wait while a request holding its earlier ones is unanswered
/// ([`SignerQueues`]).
async fn submit_at_rate(
    targets: &Targets,
    txs: &[Transaction],
    rate: u64,
    started: Instant,
    progress: &Arc<Mutex<Progress>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut submitter = Submitter {
        targets,
        txs,
        progress: progress.clone(),
        order: Arc::new(Mutex::new(SignerQueues::new(
            signer_numbers(txs),
            targets.route.clone(),
            targets.clients.len(),
        ))),
        in_flight: Arc::new(tokio::sync::Semaphore::new(SUBMIT_IN_FLIGHT_MAX)),
        first_target: 0,
        requests: Vec::new(),
    };
    let (mut queued, mut sent) = (0usize, 0usize);
    while sent < txs.len() {
        tokio::time::sleep(SUBMIT_TICK).await;
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as usize).min(txs.len());
        {
            let mut order = lock(&submitter.order);
            (queued..due).for_each(|tx| order.push(tx));
        }
        queued = due;
        // With no request in flight every signer is free (a request's signers are released
        // before its permit), so something queued must go.
        let idle = submitter.in_flight.available_permits() == SUBMIT_IN_FLIGHT_MAX;
        let now = submitter.send_due();
        assert!(
            !idle || sent == queued || now > 0,
            "{} transactions queued, none in flight, none sent: a request task failed",
            queued - sent
        );
        sent += now;
    }
    submitter.requests
}

/// What the submission loop shares with the requests it starts.
struct Submitter<'a> {
    targets: &'a Targets,
    txs: &'a [Transaction],
    progress: Arc<Mutex<Progress>>,
    order: Arc<Mutex<SignerQueues>>,
    in_flight: Arc<tokio::sync::Semaphore>,
    /// The target whose batch goes first in the next round, each in turn: under overload
    /// a permit or two frees up a tick, and the same target must not always get it.
    first_target: usize,
    requests: Vec<tokio::task::JoinHandle<()>>,
}

impl Submitter<'_> {
    /// Starts requests for what is queued, a batch for each target in turn, until none can
    /// go or the requests in flight are at their most; returns how many transactions went.
    fn send_due(&mut self) -> usize {
        let targets = self.targets.clients.len();
        let mut sent = 0;
        loop {
            let mut any = false;
            for k in 0..targets {
                let target = (self.first_target + k) % targets;
                let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
                    return sent;
                };
                let batch = lock(&self.order).next_batch(
                    target,
                    SUBMIT_BATCH_TXS_MAX,
                    SUBMIT_SIGNER_TXS_MAX,
                );
                if batch.is_empty() {
                    continue;
                }
                (any, sent) = (true, sent + batch.len());
                self.first_target = (target + 1) % targets;
                self.start(target, batch, permit);
            }
            if !any {
                return sent;
            }
        }
    }

    /// Starts the request for `batch` (transaction numbers) to `target`, holding `permit`
    /// until it is answered for good.
    fn start(
        &mut self,
        target: usize,
        batch: Vec<usize>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        mark_submitted(&self.progress, &batch);
        let batch: Vec<(usize, Transaction)> = batch
            .into_iter()
            .map(|i| (i, self.txs[i].clone()))
            .collect();
        let client = self.targets.clients[target].clone();
        let (progress, order) = (self.progress.clone(), self.order.clone());
        self.requests.push(tokio::spawn(async move {
            submit_batch(client, batch, progress, order).await;
            drop(permit);
        }));
    }
}

/// Each transaction's signer, numbered from 0 in the order they first sign.
fn signer_numbers(txs: &[Transaction]) -> Vec<usize> {
    let mut numbers: HashMap<PublicKey, usize> = HashMap::new();
    txs.iter()
        .map(|tx| {
            let next = numbers.len();
            *numbers.entry(tx.body.signer).or_insert(next)
        })
        .collect()
}

/// Locks `mutex`, poisoned or not: a request task that panicked is reported where its
/// handle is awaited (or by the submission loop's check that something can go), not by
/// every later lock.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records now as the submission time of the transactions numbered `batch`.
fn mark_submitted(progress: &Mutex<Progress>, batch: &[usize]) {
    let now = Instant::now();
    let mut p = lock(progress);
    for &i in batch {
        p.mark_sent(i, now);
    }
}

/// How long the load tool keeps resubmitting a transaction refused for now (the node full or
/// busy, a predecessor not yet there) before it records it as refused. Under overload the
/// mempool stays full for as long as the backlog lasts, so this is generous.
const SUBMIT_RETRY_WINDOW: Duration = Duration::from_secs(180);
/// The pause before the first resubmission after a refusal for load (or a failed request);
/// it doubles up to [`SUBMIT_RETRY_PAUSE_MAX`].
const SUBMIT_RETRY_PAUSE: Duration = Duration::from_millis(100);
const SUBMIT_RETRY_PAUSE_MAX: Duration = Duration::from_secs(1);
/// The first pause before resubmitting transactions refused only because an earlier nonce
/// of their signer is not in the pool yet ([`NONCE_TOO_FAR_AHEAD`]); it doubles up to
/// [`SUBMIT_RETRY_PAUSE_MAX`] too. A signer's transactions are never in two requests in
/// flight at once ([`SignerQueues`]), so this comes only when the node no longer holds a
/// predecessor it took (it restarted, or the predecessor outlived the pool's time limit)
/// or refused one for good; the pause grows because such a predecessor may never
/// come. (When batches to one node could overtake each other, this pause, as long as one
/// for load, left the network idle at the end of a run, waiting for the client.)
const SUBMIT_REORDER_PAUSE: Duration = Duration::from_millis(20);
/// The refusal of a transaction that is further past its signer's pending nonces than the
/// node's gap allows.
const NONCE_TOO_FAR_AHEAD: &str = "nonce_too_far_ahead";
/// Refusals that say "not now" rather than "never": the node is busy or full, or a
/// predecessor of the transaction is not in its pool.
const TRANSIENT_REFUSALS: [&str; 4] = ["busy", "timeout", "mempool_full", NONCE_TOO_FAR_AHEAD];
/// How a request that failed (no response) is counted among the resubmissions.
const REQUEST_FAILED: &str = "request_failed";

/// Submits one batch (each transaction with its number) and records which of its
/// transactions the node refused. A failed request (a fault between client and node) and
/// transient refusals are retried with a growing pause ([`Backoff`]) for up to
/// [`SUBMIT_RETRY_WINDOW`], as a real client would: a transaction given up on leaves a
/// nonce gap that strands its signer's later ones.
async fn submit_batch(
    client: NodeClient,
    batch: Vec<(usize, Transaction)>,
    progress: Arc<Mutex<Progress>>,
    order: Arc<Mutex<SignerQueues>>,
) {
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    let mut backoff = Backoff::default();
    let deadline = Instant::now() + SUBMIT_RETRY_WINDOW;
    loop {
        let txs: Vec<Transaction> = pending.iter().map(|&i| batch[i].1.clone()).collect();
        let last = Instant::now() >= deadline;
        let result = client.submit_batch(&txs).await;
        let sorted = match &result {
            Ok(response) if response.results.len() == pending.len() => {
                let codes: Vec<Option<&str>> = (response.results)
                    .iter()
                    .map(|item| item.error.as_ref().map(|e| e.code.as_str()))
                    .collect();
                sort_outcomes(&codes, last)
            }
            Ok(response) => failed_request(
                pending.len(),
                last,
                &format!(
                    "request failed: {} results for {} transactions",
                    response.results.len(),
                    pending.len()
                ),
            ),
            Err(error) => {
                failed_request(pending.len(), last, &format!("request failed: {error:#}"))
            }
        };
        record_outcomes(&progress, &batch, &pending, &sorted);
        let resolved;
        (resolved, pending) = split_answer(&pending, &sorted.retry);
        let number = |places: &[usize]| places.iter().map(|&k| batch[k].0).collect::<Vec<_>>();
        lock(&order).answered(&number(&resolved), &number(&pending));
        if pending.is_empty() {
            return;
        }
        tokio::time::sleep(backoff.next(sorted.only_reordered)).await;
    }
}

/// Splits the places in a batch just sent (`sent`, in order) into those answered for good
/// and those to send again, which `retry` names by their place in `sent`.
fn split_answer(sent: &[usize], retry: &[(usize, String)]) -> (Vec<usize>, Vec<usize>) {
    let again: Vec<usize> = retry.iter().map(|(k, _)| sent[*k]).collect();
    debug_assert!(
        again.windows(2).all(|w| w[0] < w[1]),
        "retries out of order"
    );
    let resolved = (sent.iter().copied())
        .filter(|k| again.binary_search(k).is_err())
        .collect();
    (resolved, again)
}

/// What became of one submission of a batch: which of its transactions (their places in
/// it) to resubmit and which the node refused, each with the refusal's code, and whether
/// every refusal was only [`NONCE_TOO_FAR_AHEAD`].
#[derive(Debug, PartialEq)]
struct Outcomes {
    retry: Vec<(usize, String)>,
    refused: Vec<(usize, String)>,
    only_reordered: bool,
}

/// Sorts a batch's results (`None` for a transaction taken, or its refusal's code): a
/// transient refusal is resubmitted unless this was the `last` try.
fn sort_outcomes(codes: &[Option<&str>], last: bool) -> Outcomes {
    let mut outcomes = Outcomes {
        retry: Vec::new(),
        refused: Vec::new(),
        only_reordered: true,
    };
    for (k, code) in codes.iter().enumerate() {
        let Some(code) = code else { continue };
        let entry = (k, (*code).to_owned());
        if !last && TRANSIENT_REFUSALS.contains(code) {
            outcomes.retry.push(entry);
        } else {
            outcomes.refused.push(entry);
        }
        outcomes.only_reordered &= *code == NONCE_TOO_FAR_AHEAD;
    }
    outcomes
}

/// A submission of `count` transactions with no usable response: all resubmitted (counted
/// as [`REQUEST_FAILED`]), or on the `last` try all refused with `why`.
fn failed_request(count: usize, last: bool, why: &str) -> Outcomes {
    let all = |code: &str| (0..count).map(|k| (k, code.to_owned())).collect();
    let (retry, refused) = if last {
        (Vec::new(), all(why))
    } else {
        (all(REQUEST_FAILED), Vec::new())
    };
    Outcomes {
        retry,
        refused,
        only_reordered: false,
    }
}

/// Records `outcomes` of submitting the transactions at `pending` in `batch`: refusals,
/// and resubmissions by code.
fn record_outcomes(
    progress: &Mutex<Progress>,
    batch: &[(usize, Transaction)],
    pending: &[usize],
    outcomes: &Outcomes,
) {
    let mut p = lock(progress);
    for (_, code) in &outcomes.retry {
        *p.resubmitted.entry(code.clone()).or_default() += 1;
    }
    for (k, code) in &outcomes.refused {
        p.mark_refused(batch[pending[*k]].0, code.clone());
    }
}

/// The pauses between resubmissions of one batch: one for refusals for load and failed
/// requests, from [`SUBMIT_RETRY_PAUSE`], one for refusals only for a missing predecessor,
/// from [`SUBMIT_REORDER_PAUSE`]; each doubles when used, up to [`SUBMIT_RETRY_PAUSE_MAX`].
#[derive(Debug)]
struct Backoff {
    load: Duration,
    reorder: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            load: SUBMIT_RETRY_PAUSE,
            reorder: SUBMIT_REORDER_PAUSE,
        }
    }
}

impl Backoff {
    /// The pause before the next resubmission, after refusals that were `only_reordered`
    /// or not.
    fn next(&mut self, only_reordered: bool) -> Duration {
        let pause = if only_reordered {
            &mut self.reorder
        } else {
            &mut self.load
        };
        let now = *pause;
        *pause = (*pause * 2).min(SUBMIT_RETRY_PAUSE_MAX);
        now
    }
}

/// Prints the outcome of a run of `count` transactions started at `started` at `rate` per
/// second: counts, committed throughput against the signature-verification `limit`,
/// finality latency, how far behind schedule the client sent, and the refusals by code.
fn report(p: &Progress, count: usize, (started, rate): (Instant, u64), limit: f64) {
    debug_assert!(p.counts_match(), "the load tool's running counts drifted");
    let mut latencies = Vec::new();
    let mut last_commit = started;
    for (submitted, committed) in p.submitted_at.iter().zip(&p.committed) {
        if let (Some(s), Some((_, c))) = (submitted, committed) {
            latencies.push(c.saturating_duration_since(*s));
            last_commit = last_commit.max(*c);
        }
    }
    latencies.sort();
    let committed = latencies.len();
    let refused = p.refused.iter().filter(|r| r.is_some()).count();
    let seconds = last_commit.duration_since(started).as_secs_f64().max(1e-9);
    let throughput = committed as f64 / seconds;
    println!("submitted {count} / committed {committed} / refused {refused} in {seconds:.2} s");
    println!(
        "committed throughput: {throughput:.0} tx/s ({:.0}% of the signature-verification limit)",
        100.0 * throughput / limit.max(1e-9)
    );
    println!(
        "finality latency: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        percentile(&latencies, 50.0).as_millis(),
        percentile(&latencies, 90.0).as_millis(),
        percentile(&latencies, 99.0).as_millis(),
        latencies.last().copied().unwrap_or_default().as_millis()
    );
    let mut behind: Vec<Duration> = (p.submitted_at.iter().enumerate())
        .filter_map(|(i, sent)| {
            // Transaction `i` falls due when `i + 1` have at `rate`.
            let due = started + Duration::from_secs_f64((i + 1) as f64 / rate as f64);
            sent.map(|sent| sent.saturating_duration_since(due))
        })
        .collect();
    behind.sort();
    println!(
        "sent behind schedule (the client's own queue, not in the latency above): p50 {} ms, p99 {} ms",
        percentile(&behind, 50.0).as_millis(),
        percentile(&behind, 99.0).as_millis(),
    );
    let mut refusal_codes: HashMap<&str, usize> = HashMap::new();
    for code in p.refused.iter().flatten() {
        *refusal_codes.entry(code.as_str()).or_default() += 1;
    }
    for (code, count) in refusal_codes {
        println!("  refused {count}: {code}");
    }
    let mut resubmitted: Vec<_> = p.resubmitted.iter().collect();
    resubmitted.sort();
    for (code, count) in resubmitted {
        println!("  resubmitted {count} after {code}");
    }
}

/// Writes each transaction's hash with the height it committed at, or why not, to `path`.
fn write_outcomes(path: &Path, hashes: &[String], p: &Progress) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for (i, hash) in hashes.iter().enumerate() {
        match (&p.committed[i], &p.refused[i]) {
            (Some((height, _)), _) => writeln!(file, "{hash} {height}")?,
            (None, Some(code)) => writeln!(file, "{hash} refused:{code}")?,
            (None, None) => writeln!(file, "{hash} not_committed")?,
        }
    }
    println!("wrote {}", path.display());
    Ok(())
}

/// Follows the chain from `height`, recording when each of our transactions is first seen
/// committed. Stops when every submitted, unrefused transaction is committed, or none of
/// them commits for `timeout`.
async fn follow(
    client: NodeClient,
    mut height: u64,
    index: HashMap<String, usize>,
    progress: Arc<Mutex<Progress>>,
    timeout: Duration,
) {
    let mut last_progress = Instant::now();
    loop {
        match client.block_hashes(height).await {
            Ok(Some(block)) => {
                let now = Instant::now();
                let mut p = lock(&progress);
                for hash in &block.tx_hashes {
                    if let Some(&i) = index.get(hash) {
                        p.mark_committed(i, height, now);
                        // Progress is our transactions committing, not just blocks (empty
                        // blocks keep coming while transactions may be stranded).
                        last_progress = now;
                    }
                }
                height += 1;
            }
            Ok(None) | Err(_) => {
                if lock(&progress).done() {
                    return;
                }
                if last_progress.elapsed() > timeout {
                    eprintln!(
                        "none of the outstanding transactions committed for {timeout:?}; giving up"
                    );
                    return;
                }
                tokio::time::sleep(FOLLOW_POLL).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use genesis::testnet::{NetworkFile, NetworkNode, NodeRole};

    fn node(name: &str, role: NodeRole, port: u16) -> NetworkNode {
        NetworkNode {
            name: name.to_owned(),
            role,
            home: format!("nodes/{name}"),
            http: format!("http://127.0.0.1:{port}"),
            p2p: String::new(),
        }
    }

    /// The follower stops only when every transaction was sent and each is committed or
    /// refused; a transaction sent twice, or refused and then seen committed (a request
    /// that failed on the way back), counts once.
    #[test]
    fn progress_is_done_once_each_transaction_is_sent_and_settled() {
        let now = Instant::now();
        let mut p = Progress::new(3);
        for i in 0..3 {
            p.mark_sent(i, now);
        }
        p.mark_sent(0, now);
        p.mark_committed(0, 5, now);
        assert!(!p.done());
        p.mark_refused(1, "request failed: reset".to_owned());
        p.mark_committed(1, 6, now);
        assert!(!p.done(), "one transaction is still outstanding");
        p.mark_refused(2, "mempool_full".to_owned());
        assert!(p.done());
        assert!(p.counts_match());
        let mut unsent = Progress::new(2);
        unsent.mark_sent(0, now);
        unsent.mark_committed(0, 1, now);
        unsent.mark_committed(1, 1, now);
        assert!(!unsent.done(), "a transaction was never sent");
    }

    /// Each kind of refusal has its own pause, doubling up to the most: a batch only
    /// ahead of its signers' nonces is resubmitted soon, and still less often the longer
    /// its predecessor stays away.
    #[test]
    fn pauses_grow_apart_for_load_and_for_a_missing_predecessor() {
        let mut backoff = Backoff::default();
        let kinds = [
            false, true, true, false, false, true, true, true, true, true, false, false,
        ];
        let slept: Vec<u128> = kinds
            .iter()
            .map(|&only_reordered| backoff.next(only_reordered).as_millis())
            .collect();
        assert_eq!(
            slept,
            [100, 20, 40, 200, 400, 80, 160, 320, 640, 1_000, 800, 1_000]
        );
    }

    /// A batch's places split by an answer: those it names to send again (by their place
    /// among the ones sent) and the rest, settled.
    #[test]
    fn an_answer_splits_a_batch_into_settled_and_to_send_again() {
        let retry = [(1, "mempool_full".to_owned()), (3, "busy".to_owned())];
        let (resolved, again) = split_answer(&[0, 2, 5, 7], &retry);
        assert_eq!((resolved, again), (vec![0, 5], vec![2, 7]));
        let (resolved, again) = split_answer(&[4, 9], &[]);
        assert_eq!((resolved, again), (vec![4, 9], vec![]));
    }

    /// A batch's results: taken, resubmitted when refused for now, refused for good
    /// otherwise or on the last try; "only reordered" only when every refusal was a
    /// missing predecessor.
    #[test]
    fn outcomes_sort_transient_from_final_refusals() {
        let ahead = Some(NONCE_TOO_FAR_AHEAD);
        let sorted = sort_outcomes(&[None, ahead, None, ahead], false);
        let ahead_code = NONCE_TOO_FAR_AHEAD.to_owned();
        assert_eq!(
            sorted.retry,
            [(1, ahead_code.clone()), (3, ahead_code.clone())]
        );
        assert!(sorted.refused.is_empty());
        assert!(sorted.only_reordered);

        let sorted = sort_outcomes(&[ahead, Some("mempool_full"), None], false);
        let codes: Vec<&str> = sorted.retry.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(codes, [NONCE_TOO_FAR_AHEAD, "mempool_full"]);
        assert!(
            !sorted.only_reordered,
            "a refusal for load backs off as such"
        );

        let sorted = sort_outcomes(&[ahead, Some("predecessor_refused")], false);
        assert_eq!(sorted.retry, [(0, ahead_code.clone())]);
        assert_eq!(sorted.refused, [(1, "predecessor_refused".to_owned())]);
        assert!(
            !sorted.only_reordered,
            "a refusal for good: the gap may stay"
        );

        let sorted = sort_outcomes(&[ahead, None], true);
        assert!(sorted.retry.is_empty());
        assert_eq!(sorted.refused, [(0, ahead_code)]);

        let failed = failed_request(2, false, "request failed: reset");
        let retried: Vec<usize> = failed.retry.iter().map(|(k, _)| *k).collect();
        assert_eq!((retried, failed.only_reordered), (vec![0, 1], false));
        assert_eq!(failed.retry[0].1, REQUEST_FAILED);
        let failed = failed_request(2, true, "request failed: reset");
        assert!(failed.retry.is_empty());
        assert_eq!(failed.refused[1], (1, "request failed: reset".to_owned()));
    }

    /// `--spread`: each signer's transactions all go to one validator (its nonces arrive
    /// in order at one node), the signers are dealt to the validators in turn, and an
    /// observer gets none.
    #[test]
    fn spreading_gives_each_signer_one_validator_in_turn_and_skips_observers() {
        let dir = tempfile::tempdir().unwrap();
        let network = NetworkFile {
            chain_id: "bansos-test".to_owned(),
            nodes: vec![
                node("a", NodeRole::Validator, 8701),
                node("o", NodeRole::Observer, 8702),
                node("b", NodeRole::Validator, 8703),
            ],
        };
        let text = serde_json::to_string(&network).unwrap();
        std::fs::write(dir.path().join("network.json"), text).unwrap();
        let keys: Vec<SigningKey> = (1..=3u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let signed_by = |k: usize, nonce: u64| {
            TxBody {
                chain_id: "bansos-test".to_owned(),
                signer: PublicKey(keys[k].verifying_key().to_bytes()),
                nonce,
                action: Action::Propose {
                    beneficiary: Hash32([k as u8; 32]),
                    region: RegionCode::new("35.10.01.2001").unwrap(),
                    household_size: 1,
                    welfare_decile: 1,
                },
            }
            .sign(&keys[k])
        };
        let txs = [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (2, 1), (0, 2)]
            .map(|(k, nonce)| signed_by(k, nonce));
        let targets = spread_targets(dir.path(), &txs).unwrap();
        let bases: Vec<&str> = targets.clients.iter().map(NodeClient::base).collect();
        assert_eq!(bases, ["http://127.0.0.1:8701", "http://127.0.0.1:8703"]);
        assert_eq!(targets.route, [0, 1, 0, 0, 1, 0, 0]);
    }
}
