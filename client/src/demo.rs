//! `bansos demo load --net DIR`: submits the synthetic demo year to a running network
//! through its API, batch after batch (each batch waits for the previous one to commit),
//! spreading submissions over every node, and writes `DIR/sample-tracking-codes.txt`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use genesis::testnet::NetworkFile;

use crate::http::{runtime, wait_committed, NodeClient};
use proto::api::TX_BATCH_TXS_MAX;

/// How long one demo batch may take to commit.
pub const BATCH_COMMIT_TIMEOUT: Duration = Duration::from_secs(180);

/// Which demo year, for `bansos demo load` and `bansos demo replay`.
#[derive(clap::Args, Debug)]
pub struct YearArgs {
    /// The network directory written by `bansos testnet` (holds network.json and keys/).
    #[arg(long)]
    pub net: PathBuf,
    /// Households proposed during the year.
    #[arg(long, default_value_t = 600)]
    pub households: usize,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

impl YearArgs {
    /// The network's genesis and its synthetic demo year.
    pub fn generate(&self) -> anyhow::Result<(ledger::Genesis, genesis::demo::DemoData)> {
        demo_year(&self.net, self.households, self.seed)
    }
}

/// Options of `bansos demo load`.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    pub year: YearArgs,
}

/// Writes the sample tracking codes file and returns its path.
pub fn write_sample_codes(
    net: &Path,
    samples: &[genesis::demo::SampleCode],
) -> anyhow::Result<PathBuf> {
    let path = net.join("sample-tracking-codes.txt");
    let mut text = String::new();
    for sample in samples {
        text.push_str(&format!(
            "{}  {}  {}\n",
            sample.code, sample.program, sample.region
        ));
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes `NET/sample-tracking-codes.txt` and prints the first few codes, so a newcomer can
/// try a lookup at once.
pub fn save_and_show_sample_codes(
    net: &Path,
    samples: &[genesis::demo::SampleCode],
) -> anyhow::Result<()> {
    let path = write_sample_codes(net, samples)?;
    println!(
        "sample tracking codes ({} in {}):",
        samples.len(),
        path.display()
    );
    for sample in samples.iter().take(5) {
        println!("  {}  {}  {}", sample.code, sample.program, sample.region);
    }
    Ok(())
}

/// Reads a network's genesis and keys and generates its synthetic demo year.
pub fn demo_year(
    net: &Path,
    households: usize,
    seed: u64,
) -> anyhow::Result<(ledger::Genesis, genesis::demo::DemoData)> {
    let genesis: ledger::Genesis = genesis::testnet::read_json(&net.join("genesis.json"))?;
    let keys = genesis::testnet::read_keys(net)?;
    let data = genesis::demo::generate(
        &genesis,
        &keys,
        &genesis::demo::DemoParams {
            beneficiaries: households,
            seed,
        },
    )?;
    Ok((genesis, data))
}

/// Runs `bansos demo load`.
pub fn run(LoadArgs { year: args }: LoadArgs) -> anyhow::Result<()> {
    let network: NetworkFile = genesis::testnet::read_json(&args.net.join("network.json"))?;
    let (genesis, data) = args.generate()?;
    if network.nodes.is_empty() {
        bail!("{} lists no nodes", args.net.join("network.json").display());
    }
    let clients = network
        .nodes
        .iter()
        .map(|n| NodeClient::new(&n.http))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let status = clients[0].status().await.with_context(|| {
            format!(
                "is the network running? {} does not answer",
                clients[0].base()
            )
        })?;
        if status.chain_id != genesis.chain_id {
            bail!(
                "{} runs chain {:?}, but {} is for {:?}",
                clients[0].base(),
                status.chain_id,
                args.net.display(),
                genesis.chain_id
            );
        }
        println!(
            "loading {} transactions in {} batches into {} ({} nodes)",
            data.tx_count(),
            data.batches.len(),
            status.chain_id,
            clients.len()
        );
        let started = Instant::now();
        let mut next_client = 0;
        for batch in &data.batches {
            let batch_started = Instant::now();
            let mut hashes = Vec::with_capacity(batch.txs.len());
            for chunk in batch.txs.chunks(TX_BATCH_TXS_MAX / 2) {
                let client = &clients[next_client % clients.len()];
                next_client += 1;
                let result = client.submit_batch(chunk).await?;
                for (item, tx) in result.results.iter().zip(chunk) {
                    if let Some(error) = &item.error {
                        bail!(
                            "batch {:?}: {} refused transaction {}: {} ({})",
                            batch.label,
                            client.base(),
                            tx.hash(),
                            error.message,
                            error.code
                        );
                    }
                    hashes.push(tx.hash().to_string());
                }
            }
            let heights = wait_committed(&clients[0], &hashes, BATCH_COMMIT_TIMEOUT)
                .await
                .with_context(|| format!("batch {:?}", batch.label))?;
            let (low, high) = (
                heights.iter().min().copied().unwrap_or(0),
                heights.iter().max().copied().unwrap_or(0),
            );
            println!(
                "  {:>5} txs committed at heights {low}..={high} in {:>5} ms  {}",
                batch.txs.len(),
                batch_started.elapsed().as_millis(),
                batch.label
            );
        }
        println!(
            "loaded {} transactions in {:.1} s",
            data.tx_count(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })?;
    save_and_show_sample_codes(&args.net, &data.tracking_codes)
}
