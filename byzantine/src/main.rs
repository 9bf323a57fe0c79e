//! `bansos-byzantine`: a validator node that attacks the others with its own key, for the
//! cluster tests (tests/tests/cluster.rs). It is `bansos node` with the node crate's
//! `byzantine` feature turned on; the `bansos` binary is built without it.
//!
//! ```text
//! bansos-byzantine --home NET/nodes/bank --attacks equivocate,floods --seed 7
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use node::consensus::byzantine::{install, Attack};

#[derive(Parser)]
#[command(
    name = "bansos-byzantine",
    about = "A byzantine validator, for tests only"
)]
struct Args {
    /// The node's home directory (holding config.toml), as for `bansos node`.
    #[arg(long)]
    home: PathBuf,
    /// Attacks, comma-separated: equivocate, invalid-blocks, floods, wrong-votes,
    /// double-votes, crafted-signatures (default: all but crafted-signatures).
    #[arg(long, value_delimiter = ',')]
    attacks: Vec<Attack>,
    /// The institution's transaction key file (NET/keys/<org>.key), which the
    /// crafted-signatures attack misuses.
    #[arg(long)]
    tx_key: Option<PathBuf>,
    /// Seed of the attacks' random choices (printed at start).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Log filter (tracing syntax), overridden by RUST_LOG.
    #[arg(long, default_value = "info")]
    log: String,
}

fn run(args: Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| {
            tracing_subscriber::EnvFilter::try_new(format!(
                "{},{}",
                args.log,
                node::consensus::QUIET_LOG_DIRECTIVES
            ))
        })
        .context("--log is not a valid filter")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false)
        .init();
    let attacks = if args.attacks.is_empty() {
        Attack::ALL
            .into_iter()
            .filter(|a| *a != Attack::CraftedSignatures || args.tx_key.is_some())
            .collect()
    } else {
        args.attacks
    };
    let names: Vec<&str> = attacks.iter().map(|a| a.name()).collect();
    eprintln!(
        "bansos-byzantine: attacks {} with seed {}",
        names.join(","),
        args.seed
    );
    let tx_key = match &args.tx_key {
        Some(path) => Some(
            genesis::testnet::read_key(path)
                .with_context(|| format!("reading --tx-key {}", path.display()))?,
        ),
        None => None,
    };
    install(&attacks, args.seed, tx_key).map_err(anyhow::Error::msg)?;
    node::run(&args.home)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
