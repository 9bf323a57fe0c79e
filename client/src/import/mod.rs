//! `bansos import FILE.csv --step STEP --key KEYFILE --node URL`: an institution's whole
//! spreadsheet as signed transactions, each row at most once, resumable after a crash.
//!
//! 1. Every row is read and checked first ([`rows`]); one bad row stops the import before
//!    anything is sent, and each bad row is reported with its line.
//! 2. NIKs become pseudonyms through the identity authority's pseudonym service (blinded:
//!    the service never sees them, [`crate::pseudonym`]) or a local key, and account
//!    numbers keyed references here ([`plan`]); no NIK or account number is sent.
//! 3. Rows are signed with consecutive nonces, a window at a time; each signed transaction
//!    goes into the journal, on disk, before it is sent ([`journal`]).
//! 4. The importer follows the signer's nonce on the ledger ([`engine`]). A transaction
//!    the ledger refuses gets its nonce filled by a `SkipNonce`, so the rest go in as
//!    signed and the refused one can never be included later. A row is signed again only
//!    once its old transaction's nonce is taken by another: it can never be on the ledger
//!    twice.
//! 5. The result file lists, per line, the transaction hash and height or the ledger's
//!    error (and an enrolment's tracking code).
//!
//! Re-running the same command after a crash resumes from the journal: committed rows are
//! skipped, signed ones sent again byte for byte, the rest signed.

pub mod engine;
pub mod journal;
pub mod plan;
pub mod rows;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use ledger::types::PublicKey;

use crate::http::{runtime, NodeClient};
use crate::pseudonym::{as_the_ledger_knows, PseudonymClient};
use engine::{Engine, RowResult};
use plan::{Pseudonyms, Secrets};
pub use rows::ImportStep;

/// `bansos import` arguments.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The CSV file (comma or semicolon separated, a header line first; columns per step
    /// in docs/examples/).
    pub file: PathBuf,
    /// Which step every row takes.
    #[arg(long, value_enum)]
    pub step: ImportStep,
    /// Key file of the signer (the institution's or an agent's key).
    #[arg(long)]
    pub key: PathBuf,
    /// The node to submit to.
    #[arg(long, default_value = "http://127.0.0.1:8701")]
    pub node: String,
    /// The pseudonym service (the identity authority's node URL): NIKs are blinded here
    /// and never sent in the clear; requests are signed with --key.
    #[arg(long, required_unless_present = "pseudonym_key")]
    pub pseudonym_service: Option<String>,
    /// The service's public key (base64) to hold it to: answers under another are refused.
    #[arg(long, requires = "pseudonym_service")]
    pub pseudonym_service_key: Option<String>,
    /// Instead of the service: the intake systems' shared pseudonym key file.
    #[arg(long, conflicts_with = "pseudonym_service")]
    pub pseudonym_key: Option<PathBuf>,
    /// The paying bank's account-reference key file (disbursements).
    #[arg(long)]
    pub account_key: Option<PathBuf>,
    /// Sign again the rows the ledger refused in an earlier run of this import (after the
    /// cause was mended, a budget declared for example). Without it they stay refused.
    #[arg(long)]
    pub retry_refused: bool,
    /// The result file (default: FILE with `.result.csv`). Its journal is the same path
    /// with `.journal` added; keep both until the import has finished.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `bansos import`.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let rows = rows::read_rows(&args.file, args.step)?;
    let key = genesis::testnet::read_key(&args.key)?;
    let runtime = runtime()?;
    let mut pseudonym_key_version = None;
    let pseudonym = match (&args.pseudonym_service, &args.pseudonym_key) {
        (Some(url), _) => {
            let service = runtime.block_on(PseudonymClient::connect(
                url,
                key.clone(),
                args.pseudonym_service_key.as_deref(),
                &args.node,
            ))?;
            // Each person once, however many rows name them.
            let niks: Vec<String> = rows
                .iter()
                .map(|r| r.nik.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut found = runtime.block_on(service.pseudonyms(&niks))?;
            if service.rekeyed() {
                let node = NodeClient::new(&args.node)?.signed_by(key.clone());
                found = runtime.block_on(as_the_ledger_knows(&node, found))?;
            }
            pseudonym_key_version = Some(service.version());
            Pseudonyms::Service(niks.into_iter().zip(found).collect())
        }
        (None, Some(path)) => Pseudonyms::Key(genesis::testnet::read_secret(path)?),
        (None, None) => bail!("give --pseudonym-service URL (or --pseudonym-key FILE)"),
    };
    let secrets = Secrets {
        pseudonym,
        account: args
            .account_key
            .as_ref()
            .map(|path| genesis::testnet::read_secret(path))
            .transpose()?,
    };
    let planned = plan::plan(rows, &secrets)?;
    let signer = PublicKey(key.verifying_key().to_bytes());
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.file.with_extension("result.csv"));
    let journal_path = journal_path(&out);
    let client = NodeClient::new(&args.node)?.signed_by(key.clone());
    let status = runtime
        .block_on(client.status())
        .context("asking the node for its chain id")?;
    // Only a node that builds blocks learns when the ledger refuses a transaction; an
    // observer would hold a refused one pending until it expires.
    if status.role != proto::api::NodeRoleJson::Validator {
        bail!(
            "{} is an observer node; import through a validator's node (its own institution's)",
            args.node
        );
    }
    let chain_id = status.chain_id;
    let known = runtime
        .block_on(client.key(&signer))
        .context("asking the node about the signing key")?
        .known;
    if !known {
        bail!("the ledger does not know key {signer}; only genesis institutions and their registered agents may sign");
    }
    let header = journal::Header::new(&chain_id, &signer.to_string(), args.step.name());
    let (journal, lines) = journal::Journal::open(&journal_path, &header)?;
    let total = planned.len();
    let mut engine = Engine::new(
        client,
        key,
        chain_id,
        planned,
        journal,
        lines,
        args.retry_refused,
    )?
    .with_pseudonym_key(pseudonym_key_version);
    let progress = progress_bar(total as u64);
    let outcome = runtime.block_on(engine.run(&progress));
    progress.finish_and_clear();
    let results = engine.results();
    write_results(&out, &results)?;
    report(&args.file, args.step, &out, &results, outcome)
}

/// Where the journal of result file `out` is kept.
pub fn journal_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

fn progress_bar(rows: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(rows);
    let style = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} rows settled ({msg}) {elapsed_precise} eta {eta}",
    );
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// Prints the summary; an error (exit status 1) when rows were refused or are left.
fn report(
    file: &Path,
    step: ImportStep,
    out: &Path,
    results: &[RowResult],
    outcome: anyhow::Result<()>,
) -> anyhow::Result<()> {
    let count = |f: fn(&RowResult) -> bool| results.iter().filter(|r| f(r)).count();
    let committed = count(|r| matches!(r, RowResult::Committed { .. }));
    let earlier = count(|r| {
        matches!(
            r,
            RowResult::Committed {
                earlier_run: true,
                ..
            }
        )
    });
    let refused = count(|r| matches!(r, RowResult::Refused { .. }));
    println!(
        "{} ({}): {} rows: {committed} committed ({earlier} of them signed by an earlier run), {refused} refused by the ledger, {} not yet; results in {}",
        file.display(),
        step.name(),
        results.len(),
        results.len() - committed - refused,
        out.display()
    );
    outcome?;
    if refused > 0 {
        bail!(
            "{refused} row(s) were refused by the ledger; their errors are in {}",
            out.display()
        );
    }
    Ok(())
}

/// Writes the result file (0600: an enrolment's tracking codes are the citizens' keys to
/// their own records), replacing it whole.
fn write_results(out: &Path, results: &[RowResult]) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "line",
        "status",
        "tx_hash",
        "height",
        "error_code",
        "error_message",
        "tracking_code",
    ])?;
    for result in results {
        writer.write_record(result.record())?;
    }
    let bytes = writer.into_inner().context("writing the results")?;
    let partial = journal_path(out).with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = journal::create_private(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    std::io::Write::write_all(&mut file, &bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
