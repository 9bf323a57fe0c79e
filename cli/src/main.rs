//! `bansos`: the one binary of Bansos Ledger.
//!
//! Subcommands: `testnet` (write a local network), `node` (run one node), `tx` (sign and
//! submit one lifecycle step), `demo load` / `demo replay` (the synthetic demo year) and
//! `load` (the benchmark client), `keys`, `audit verify` (the `audit` crate). A thin shell: the node is the `node` crate, the client
//! commands are the `client` crate; this file parses the command line, sets up logging and
//! prints one-line errors. See ARCHITECTURE.md for the crate map.

use client::{demo as demo_load, keys as keyscmd, load as loadgen, tx as txcmd};

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: the node's hot paths (tracking lookups,
/// admission, JSON) allocate many small buffers from several threads at once, where glibc's
/// allocator showed in profiles (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "bansos",
    version,
    about = "Bansos Ledger: verifiable social-aid payments on a permissioned BFT ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write keys, genesis.json, a config per node and network.json for a local network.
    Testnet(TestnetArgs),
    /// Run one node (validator or observer, as its config.toml says) until Ctrl-C.
    Node(NodeArgs),
    /// Sign one lifecycle step and submit it to a node (or --print the signed JSON).
    #[command(subcommand)]
    Tx(txcmd::TxStep),
    /// Sign and submit a whole CSV file, one step per row (a Pemda's proposals, a bank's
    /// disbursement batch): every row checked first, each committed at most once, safe
    /// to run again after a crash; writes a result file.
    Import(client::import::ImportArgs),
    /// The synthetic demo year (Banyuwangi and Mataram, PKH and BPNT).
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Benchmark: submit signed transactions at a rate and report committed tx/s and
    /// finality latency percentiles.
    Load(loadgen::LoadArgs),
    /// Re-verify a chain from genesis, trusting nothing but genesis.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Back up a stopped node's data (ledger checkpoint, consensus record, manifest) into a
    /// new directory. Keys and config.toml are not included.
    Backup(BackupArgs),
    /// Restore a backup into a node home that has its config.toml and keys but no ledger;
    /// the node then catches up from its peers when started.
    Restore(RestoreArgs),
    /// Changes to the consortium: propose, approve and show them (organisations, keys,
    /// validators, programs), and list the validator sets.
    #[command(subcommand)]
    Governance(client::governance::GovernanceCommand),
    /// Key files: generate (0600, optionally passphrase-encrypted), show, encrypt, rotate.
    #[command(subcommand)]
    Keys(keyscmd::KeysCommand),
    /// The identity authority's pseudonym key change: a new key and its governance change,
    /// the re-keying plan from the registry, and the links that keep every beneficiary's
    /// history one history.
    #[command(subcommand)]
    Pseudonym(client::rekey::PseudonymCommand),
    /// Compact a stopped node's ledger store (every RocksDB level into the last; the
    /// store does this gradually on its own) and print its size before and after, and
    /// each column family's after.
    Compact(CompactArgs),
}

#[derive(clap::Args)]
struct BackupArgs {
    /// The node's home directory. The node must be stopped.
    #[arg(long)]
    home: PathBuf,
    /// The backup directory to create (must not exist).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct RestoreArgs {
    /// The backup directory (`bansos backup --out`).
    #[arg(long)]
    from: PathBuf,
    /// The node home to restore into: config.toml and keys in place, no data/ledger.
    #[arg(long)]
    home: PathBuf,
}

#[derive(clap::Args)]
struct CompactArgs {
    /// The node's home directory (holding data/ledger). The node must be stopped.
    #[arg(long)]
    home: PathBuf,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-verify a chain from genesis: the hash chain, every commit certificate, every
    /// transaction by replay, every root, and the signed checkpoints. Either a node's data
    /// directory, read offline (`--home`; read-only, the node may be running; also its
    /// stored log), or what a node serves (`--node URL --key KEY --genesis FILE`, as a
    /// consortium member). Exit 0 only if everything holds; otherwise the first bad height
    /// and what failed.
    Verify(VerifyArgs),
    /// Check a C2SP tlog-proof file offline, with nothing but the network's tlog-policy:
    /// the checkpoint is signed by enough validators (log keys) and cosigned by the
    /// witness quorum, and the transaction in the proof is in the log under that
    /// checkpoint. Exit 0 only if it holds.
    CheckProof(CheckProofArgs),
}

#[derive(clap::Args)]
struct CheckProofArgs {
    /// The proof file (`.tlog-proof`: c2sp.org/tlog-proof@v1).
    file: PathBuf,
    /// The network's tlog-policy file (`bansos testnet` writes NET/tlog-policy).
    #[arg(long)]
    policy: PathBuf,
    /// Print the result as JSON on standard output.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["home", "node"])))]
struct VerifyArgs {
    /// The node's home directory (holding config.toml and data/ledger).
    #[arg(long)]
    home: Option<PathBuf>,
    /// A node's API, like http://127.0.0.1:8701 (needs --key and --genesis).
    #[arg(long, requires_all = ["key", "genesis"])]
    node: Option<String>,
    /// With --node: a key listed in genesis (an institution's), to sign the requests.
    #[arg(long)]
    key: Option<PathBuf>,
    /// With --node: the genesis document you trust (the node's is not asked for).
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// Print the result as JSON on standard output.
    #[arg(long)]
    json: bool,
    /// Once verified, write the C2SP tlog-policy of the validator set that signs the tip's
    /// checkpoints to this new file: the policy to check citizens' proofs with after a
    /// governance change replaced genesis's validators.
    #[arg(long)]
    policy_out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct NodeArgs {
    /// The node's home directory (holding config.toml).
    #[arg(long)]
    home: PathBuf,
    /// Log filter (tracing syntax), overridden by RUST_LOG. libp2p, ractor and Malachite's
    /// core consensus (a line per vote) log only warnings unless RUST_LOG names them.
    #[arg(long, default_value = "info")]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Load the demo year into a running network through its API and write
    /// DIR/sample-tracking-codes.txt.
    Load(demo_load::LoadArgs),
    /// Replay the demo year offline through the ledger core into a RocksDB store, one block
    /// per batch, and write DIR/sample-tracking-codes.txt.
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
struct ReplayArgs {
    #[command(flatten)]
    year: demo_load::YearArgs,
    /// Where to write the store (default: NET/replay-db); must not exist yet.
    #[arg(long)]
    store: Option<PathBuf>,
}

#[derive(clap::Args)]
struct TestnetArgs {
    /// Number of validators (1 to 10; 4 = Kemensos, Pemda Banyuwangi, a bank, an auditor).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Number of observer (non-voting) nodes.
    #[arg(long, default_value_t = 0)]
    observers: usize,
    /// Output directory; must not already hold a network.
    #[arg(long)]
    out: PathBuf,
    /// Chain id written into genesis and every signature.
    #[arg(long, default_value = "bansos-testnet")]
    chain_id: String,
    /// First HTTP port on 127.0.0.1 (node i uses base + i).
    #[arg(long, default_value_t = 8701)]
    http_port: u16,
    /// First p2p port (node i listens on 127.0.0.(2+i) at base + i).
    #[arg(long, default_value_t = 27001)]
    p2p_port: u16,
}

fn testnet(args: TestnetArgs) -> anyhow::Result<()> {
    let spec = genesis::testnet::TestnetSpec {
        chain_id: args.chain_id,
        validators: args.validators,
        observers: args.observers,
        http_port_base: args.http_port,
        p2p_port_base: args.p2p_port,
        ..Default::default()
    };
    let net = genesis::testnet::Testnet::generate(&spec, &mut rand::rngs::OsRng)?;
    net.write(&args.out)
        .with_context(|| format!("writing the network to {}", args.out.display()))?;
    println!(
        "wrote a {}-validator network ({} observers) to {}",
        spec.validators,
        spec.observers,
        args.out.display()
    );
    for node in net.network_file().nodes {
        println!(
            "  {:<12} {:<9} {}  p2p {}",
            node.name,
            format!("{:?}", node.role).to_lowercase(),
            node.http,
            node.p2p
        );
    }
    Ok(())
}

fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    use ledger::chain::SignatureCheck;
    let (genesis, data) = args.year.generate()?;
    let store_path = args
        .store
        .unwrap_or_else(|| args.year.net.join("replay-db"));
    if store_path.exists() {
        anyhow::bail!(
            "{} already exists; remove it or pass --store",
            store_path.display()
        );
    }
    let store = ledger::RocksStore::open(&store_path)?;
    let mut ledger = ledger::Ledger::open(store, genesis)?;
    let proposer = ledger
        .genesis()
        .validators
        .first()
        .map(|v| v.key)
        .context("genesis has no validator")?;
    let started = std::time::Instant::now();
    for batch in &data.batches {
        let prepared = ledger.build_block(
            batch.txs.clone(),
            batch.time_ms,
            proposer,
            SignatureCheck::VerifyAll,
        )?;
        if let Some((hash, error)) = prepared.rejected.first() {
            anyhow::bail!(
                "demo batch {:?}: transaction {hash} refused: {error}",
                batch.label
            );
        }
        let header = prepared.block.header.clone();
        ledger.commit(prepared, &[])?;
        println!(
            "height {:>3}  {:>5} txs  {}",
            header.height, header.tx_count, batch.label
        );
    }
    let elapsed = started.elapsed();
    let tip = ledger.tip().clone();
    drop(ledger);
    let disk_bytes = directory_bytes(&store_path)?;
    println!(
        "committed {} transactions in {} blocks in {:.1} s ({:.0} tx/s, signatures verified); log root {} at size {}",
        tip.log.size(),
        tip.height,
        elapsed.as_secs_f64(),
        tip.log.size() as f64 / elapsed.as_secs_f64().max(1e-9),
        hex::encode(tip.log.root()),
        tip.log.size()
    );
    println!(
        "store {}: {} bytes, {:.0} bytes per transaction",
        store_path.display(),
        disk_bytes,
        disk_bytes as f64 / tip.log.size().max(1) as f64
    );
    demo_load::save_and_show_sample_codes(&args.year.net, &data.tracking_codes)
}

fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let manifest = node::backup::backup(&args.home, &args.out)?;
    println!(
        "backed up node {} of chain {} at height {} (log size {}, block {}) to {}",
        manifest.node,
        manifest.chain_id,
        manifest.height,
        manifest.log_size,
        manifest.block_hash,
        args.out.display()
    );
    Ok(())
}

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let manifest = node::backup::restore(&args.from, &args.home)?;
    println!(
        "restored node {} of chain {} at height {} into {}; start it with bansos node --home {} and it catches up from its peers",
        manifest.node,
        manifest.chain_id,
        manifest.height,
        args.home.display(),
        args.home.display()
    );
    Ok(())
}

fn compact(args: CompactArgs) -> anyhow::Result<()> {
    let path = args.home.join("data").join("ledger");
    if !path.is_dir() {
        anyhow::bail!(
            "{} holds no ledger store (is --home a node's home?)",
            path.display()
        );
    }
    let before = directory_bytes(&path)?;
    let store = ledger::RocksStore::open(&path)
        .with_context(|| format!("opening {} (is the node still running?)", path.display()))?;
    let started = std::time::Instant::now();
    store.compact()?;
    let columns = store.column_bytes()?;
    drop(store);
    let after = directory_bytes(&path)?;
    println!(
        "compacted {} in {:.1} s: {before} bytes before, {after} bytes after",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    for (name, bytes) in columns {
        println!("  {name}: {bytes} bytes");
    }
    Ok(())
}

/// The total size of the files under `path`.
fn directory_bytes(path: &std::path::Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            directory_bytes(&entry.path())?
        } else {
            metadata.len()
        };
    }
    Ok(total)
}

fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| {
            tracing_subscriber::EnvFilter::try_new(format!(
                "{},{}",
                args.log,
                node::consensus::QUIET_LOG_DIRECTIVES
            ))
        })
        .context("--log is not a valid filter")?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal());
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    node::run(&args.home)
}

/// A progress bar over heights on a terminal, hidden otherwise.
fn height_bar(tip: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::new(tip);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} heights {per_sec} eta {eta}",
            )
            .expect("a valid template"),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// `audit verify --home`: the node's store, offline.
fn audit_home(home: &std::path::Path) -> Result<audit::Summary, audit::Failure> {
    let genesis = audit::home_genesis(home)?;
    let source = audit::open_home(home, genesis.clone())?;
    let bar = height_bar(source.tip().height);
    let result = audit::verify_chain(&source, genesis, |height, _| bar.set_position(height));
    bar.finish_and_clear();
    result
}

/// `audit verify --node`: what the node serves, as a consortium member.
fn audit_node(
    url: &str,
    key: &Path,
    genesis: &Path,
) -> anyhow::Result<Result<audit::Summary, audit::Failure>> {
    let genesis: ledger::Genesis = genesis::testnet::read_json(genesis)?;
    let key = genesis::testnet::read_key(key)?;
    let mut remote = client::remote::RemoteChain::connect(url, key)?;
    let checkpoint = remote.latest_checkpoint()?;
    let bar = height_bar(remote.tip());
    let result = audit::verify_served(&mut remote, genesis, checkpoint.as_deref(), |height, _| {
        bar.set_position(height)
    });
    bar.finish_and_clear();
    Ok(result)
}

fn audit_verify(args: VerifyArgs) -> anyhow::Result<()> {
    let result = match (&args.home, &args.node, &args.key, &args.genesis) {
        (Some(home), _, _, _) => audit_home(home),
        (None, Some(url), Some(key), Some(genesis)) => audit_node(url, key, genesis)?,
        _ => anyhow::bail!("give --home DIR, or --node URL with --key and --genesis"),
    };
    match (&result, args.json) {
        (Ok(summary), true) => println!(
            "{}",
            serde_json::json!({"ok": true, "summary": summary})
        ),
        (Err(failure), true) => println!(
            "{}",
            serde_json::json!({"ok": false, "failure": failure})
        ),
        (Ok(s), false) => println!(
            "ok: chain {} verified from genesis: {} heights, {} transactions replayed, {} certificate signatures, log size {} root {}, {} log nodes, {} signed checkpoints, in {:.1} s",
            s.chain_id, s.heights, s.transactions, s.certificate_signatures, s.log_size, s.log_root, s.log_nodes, s.checkpoints, s.seconds
        ),
        (Err(_), false) => {}
    }
    let summary = result.map_err(|failure| anyhow::anyhow!("audit failed: {failure}"))?;
    if let Some(path) = &args.policy_out {
        write_new_file(path, summary.tlog_policy.as_bytes())?;
        eprintln!(
            "wrote the tlog-policy of validator set version {} to {}",
            summary.validator_set_version,
            path.display()
        );
    }
    Ok(())
}

/// Writes `bytes` to a file that must not exist yet.
fn write_new_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a text file of at most `max` bytes.
fn read_text(path: &Path, max: usize) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() > max {
        anyhow::bail!("{} is over {max} bytes", path.display());
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// What a checked proof shows: the transaction and the checkpoint it is under.
fn proven(
    proof: &ledger::policy::TlogProof,
    checkpoint: &ledger::note::Checkpoint,
) -> serde_json::Value {
    let tx = proof
        .extra
        .as_deref()
        .and_then(|bytes| ledger::Transaction::from_bytes(bytes).ok());
    serde_json::json!({
        "origin": checkpoint.origin,
        "checkpoint_size": checkpoint.size,
        "index": proof.index,
        "tx_hash": tx.as_ref().map(|t| t.hash().to_string()),
        "tx": tx,
    })
}

fn check_proof(args: CheckProofArgs) -> anyhow::Result<()> {
    use ledger::policy::{Policy, TlogProof, POLICY_BYTES_MAX, PROOF_BYTES_MAX};
    let policy = Policy::parse(&read_text(&args.policy, POLICY_BYTES_MAX)?)
        .with_context(|| format!("{} is not a tlog-policy", args.policy.display()))?;
    let result = TlogProof::parse(&read_text(&args.file, PROOF_BYTES_MAX)?)
        .and_then(|proof| proof.verify(&policy).map(|c| proven(&proof, &c)));
    match (&result, args.json) {
        (Ok(shown), true) => println!("{}", serde_json::json!({"ok": true, "proof": shown})),
        (Err(error), true) => {
            println!("{}", serde_json::json!({"ok": false, "error": error.to_string()}))
        }
        (Ok(shown), false) => println!(
            "ok: transaction {} is leaf {} of the log {}, under a checkpoint of size {} that the policy accepts",
            shown["tx_hash"].as_str().unwrap_or("?"),
            shown["index"],
            shown["origin"].as_str().unwrap_or("?"),
            shown["checkpoint_size"]
        ),
        (Err(_), false) => {}
    }
    result
        .map(|_| ())
        .map_err(|error| anyhow::anyhow!("the proof does not hold: {error}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Testnet(args) => testnet(args),
        Command::Demo(DemoCommand::Replay(args)) => replay(args),
        Command::Demo(DemoCommand::Load(args)) => demo_load::run(args),
        Command::Node(args) => run_node(args),
        Command::Tx(step) => txcmd::run(step),
        Command::Load(args) => loadgen::run(args),
        Command::Audit(AuditCommand::Verify(args)) => audit_verify(args),
        Command::Audit(AuditCommand::CheckProof(args)) => check_proof(args),
        Command::Compact(args) => compact(args),
        Command::Keys(command) => keyscmd::run(command),
        Command::Pseudonym(command) => client::rekey::run(command),
        Command::Governance(command) => client::governance::run(command),
        Command::Import(args) => client::import::run(args),
        Command::Backup(args) => backup(args),
        Command::Restore(args) => restore(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, as the CLI contract says: the error and its causes.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
