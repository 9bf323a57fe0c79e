//! `bansos pseudonym`: the identity authority's side of a pseudonym key change.
//!
//! 1. `bansos pseudonym key --generate --seed NEW --version 2 --org dukcapil --change-out
//!    change.json` writes a new seed (0600) and the governance change that makes its
//!    public key current (`bansos governance propose --change change.json`). The service
//!    node holds the seed as `[pseudonym_service.next]`.
//! 2. After the change takes effect (intake pauses), `bansos pseudonym plan --registry
//!    NIKS.csv --old-seed OLD --new-seed NEW …` computes, from the authority's own
//!    registry, each person's old and new pseudonyms, keeps those whose old one names a
//!    beneficiary on the ledger, and writes the plan (`old,new`, 0600). The plan is as
//!    sensitive as the registry: it stays on the authority's machine. It needs the register
//!    and both seeds together, which only the identity authority holds; the service's
//!    request path still never sees a NIK, and no other institution holds a seed.
//! 3. `bansos pseudonym link --plan PLAN.csv` submits the links (consortium data) in
//!    batches, skipping any already on the ledger (safe to run again), and completes the
//!    re-keying when every beneficiary is linked: intake resumes. Beneficiaries the register
//!    cannot account for would hold intake paused for good; `--retire-unlinked` links them
//!    to random pseudonyms (listed by `POST /v1/pseudonym/unlinked`) and completes it.
//!
//! An old key may also be the intake systems' shared key of the first design
//! (`--old-shared-key`): that is how a chain moves its beneficiaries to the service.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use ledger::limits::PSEUDONYM_LINKS_PER_TX_MAX;
use ledger::privacy::SecretKey;
use ledger::pseudonyms::{PseudonymLink, PseudonymServiceSpec};
use ledger::tx::{Action, TxBody};
use ledger::types::{Hash32, OrgId, Pseudonym, PublicKey};
use proto::api::PseudonymKeyRecordJson;
use proto::pseudonym::ServiceKey;

use crate::http::{runtime, wait_committed, NodeClient};

/// Pseudonyms per lookup request (the node's limit).
const LOOKUP_BATCH: usize = proto::api::LOOKUP_PSEUDONYMS_MAX;
/// Link transactions submitted before waiting for them to commit.
const LINK_TXS_IN_FLIGHT: usize = 200;
/// How long one round of link transactions may take to commit.
const LINK_COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

#[derive(Subcommand, Debug)]
pub enum PseudonymCommand {
    /// Show a pseudonym service seed's public key (or --generate a new seed) and write the
    /// governance change that makes it the next key.
    Key(KeyArgs),
    /// Build the re-keying plan from the identity registry: every beneficiary's old
    /// pseudonym and its new one (written 0600; it never leaves this machine).
    Plan(PlanArgs),
    /// Submit a plan's links to the ledger; the last batch completes the re-keying.
    Link(LinkArgs),
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    /// The seed file (a 32-byte secret, 0600).
    #[arg(long)]
    pub seed: PathBuf,
    /// Write a new random seed to --seed (refused if the file exists).
    #[arg(long)]
    pub generate: bool,
    /// The key's version: one more than the ledger's current key.
    #[arg(long)]
    pub version: u32,
    /// The organisation that runs the service (the identity authority).
    #[arg(long)]
    pub org: String,
    /// Write the `set_pseudonym_key` change here, for `bansos governance propose`.
    #[arg(long)]
    pub change_out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The identity registry: a CSV file with a `nik` column.
    #[arg(long)]
    pub registry: PathBuf,
    /// The seed of the key being replaced.
    #[arg(
        long,
        conflicts_with = "old_shared_key",
        required_unless_present = "old_shared_key"
    )]
    pub old_seed: Option<PathBuf>,
    /// The old key's version.
    #[arg(long, requires = "old_seed")]
    pub old_version: Option<u32>,
    /// Instead: the intake systems' shared pseudonym key the beneficiaries were made with.
    #[arg(long)]
    pub old_shared_key: Option<PathBuf>,
    /// The seed of the key the ledger has made current.
    #[arg(long)]
    pub new_seed: PathBuf,
    /// The plan file to write (refused if it exists).
    #[arg(long)]
    pub out: PathBuf,
    /// The service organisation's key (signs the lookups: consortium data).
    #[arg(long)]
    pub key: PathBuf,
    #[arg(long, default_value = "http://127.0.0.1:8701")]
    pub node: String,
}

#[derive(Args, Debug)]
pub struct LinkArgs {
    /// The plan (`bansos pseudonym plan --out`).
    #[arg(long)]
    pub plan: PathBuf,
    /// After the plan's links: link every beneficiary still unlinked (one the register
    /// does not account for: a NIK withdrawn, a pseudonym proposed without one) to a random
    /// pseudonym no NIK gives, so that intake resumes. Such a person, proposed again under
    /// the new key, is a new beneficiary.
    #[arg(long)]
    pub retire_unlinked: bool,
    /// The service organisation's own key.
    #[arg(long)]
    pub key: PathBuf,
    #[arg(long, default_value = "http://127.0.0.1:8701")]
    pub node: String,
}

pub fn run(command: PseudonymCommand) -> anyhow::Result<()> {
    match command {
        PseudonymCommand::Key(args) => key(args),
        PseudonymCommand::Plan(args) => plan(args),
        PseudonymCommand::Link(args) => link(args),
    }
}

fn key(args: KeyArgs) -> anyhow::Result<()> {
    if args.generate {
        let seed = SecretKey::generate(&mut rand::rngs::OsRng);
        let purpose = format!(
            "pseudonym service key version {} (its node only)",
            args.version
        );
        genesis::keys::write_new_secret_file(&args.seed, &purpose, &seed)?;
        println!("wrote a new seed to {} (0600)", args.seed.display());
    }
    let key = service_key(&args.seed, args.version)?;
    let public = Hash32(key.public_key());
    println!("key version {}", args.version);
    println!("public key  {public} (base64 {})", base64_of(&key));
    if let Some(path) = &args.change_out {
        let change = ledger::governance::Change::SetPseudonymKey {
            service: PseudonymServiceSpec {
                organisation: OrgId::new(&args.org).map_err(|e| anyhow::anyhow!("--org: {e}"))?,
                key_version: args.version,
                public_key: public,
            },
        };
        let text = serde_json::to_string_pretty(&change)? + "\n";
        write_new(path, text.as_bytes())?;
        println!(
            "wrote the change to {}: bansos governance propose --change {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn service_key(seed: &Path, version: u32) -> anyhow::Result<ServiceKey> {
    let secret = genesis::testnet::read_secret(seed)?;
    Ok(ServiceKey::from_seed(&secret.0, version)?)
}

fn base64_of(key: &ServiceKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.public_key())
}

/// The ledger's current key, which must be being linked.
async fn open_rekeying(client: &NodeClient) -> anyhow::Result<PseudonymKeyRecordJson> {
    let current = client
        .pseudonym_keys()
        .await?
        .keys
        .pop()
        .context("the ledger records no pseudonym key")?;
    if current.linked {
        bail!(
            "pseudonym key version {} is current and every beneficiary is linked: no re-keying is open",
            current.key_version
        );
    }
    Ok(current)
}

fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let niks = read_registry(&args.registry)?;
    let signer = genesis::testnet::read_key(&args.key)?;
    let client = NodeClient::new(&args.node)?.signed_by(signer);
    let runtime = runtime()?;
    let current = runtime.block_on(open_rekeying(&client))?;
    let new = service_key(&args.new_seed, current.key_version)?;
    if base64_of(&new) != current.public_key {
        bail!(
            "--new-seed is not the ledger's current key (version {}, {})",
            current.key_version,
            current.public_key
        );
    }
    let old = OldKey::read(&args)?;
    let mut pairs = Vec::with_capacity(niks.len());
    for nik in &niks {
        pairs.push((old.pseudonym(nik)?, new.pseudonym(nik)?));
    }
    let mut links = Vec::new();
    for chunk in pairs.chunks(LOOKUP_BATCH) {
        let olds: Vec<Pseudonym> = chunk.iter().map(|(o, _)| *o).collect();
        let found = runtime.block_on(client.lookup(&olds))?;
        for ((old, new), entry) in chunk.iter().zip(found.beneficiaries) {
            if entry.known_as.is_some() {
                links.push(PseudonymLink {
                    old: *old,
                    new: *new,
                });
            }
        }
    }
    let mut text = String::from("old,new\n");
    for link in &links {
        text.push_str(&format!("{},{}\n", link.old, link.new));
    }
    write_new(&args.out, text.as_bytes())?;
    println!(
        "{} people in the registry; {} of the ledger's {} beneficiaries found; plan written to {} (0600: keep it on this machine)",
        niks.len(),
        links.len(),
        current.beneficiaries,
        args.out.display()
    );
    if (links.len() as u64) < current.beneficiaries {
        eprintln!(
            "warning: {} beneficiaries are not in this registry; intake stays paused until they are linked",
            current.beneficiaries - links.len() as u64
        );
    }
    Ok(())
}

/// The key the beneficiaries' current pseudonyms were made with.
enum OldKey {
    Service(ServiceKey),
    Shared(SecretKey),
}

impl OldKey {
    fn read(args: &PlanArgs) -> anyhow::Result<OldKey> {
        match (&args.old_seed, &args.old_shared_key) {
            (Some(seed), _) => {
                let version = args.old_version.context("--old-seed needs --old-version")?;
                Ok(OldKey::Service(service_key(seed, version)?))
            }
            (None, Some(path)) => Ok(OldKey::Shared(genesis::testnet::read_secret(path)?)),
            (None, None) => bail!("give --old-seed FILE --old-version N, or --old-shared-key FILE"),
        }
    }

    fn pseudonym(&self, nik: &str) -> anyhow::Result<Pseudonym> {
        Ok(match self {
            OldKey::Service(key) => key.pseudonym(nik)?,
            OldKey::Shared(secret) => ledger::privacy::pseudonym(secret, nik),
        })
    }
}

/// The registry's NIKs, each checked; every bad row is reported and nothing is done.
fn read_registry(path: &Path) -> anyhow::Result<Vec<String>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("nik"))
        .with_context(|| format!("{} has no `nik` column", path.display()))?;
    let mut niks = Vec::new();
    let mut problems = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{} line {}", path.display(), line + 2))?;
        match crate::import::rows::normalise_nik(record.get(column).unwrap_or("")) {
            Ok(nik) => niks.push(nik),
            Err(e) => problems.push(format!("line {}: {e}", line + 2)),
        }
    }
    if !problems.is_empty() {
        bail!(
            "{}: {} bad rows, nothing done:\n{}",
            path.display(),
            problems.len(),
            problems.join("\n")
        );
    }
    niks.sort();
    niks.dedup();
    Ok(niks)
}

fn link(args: LinkArgs) -> anyhow::Result<()> {
    let links = read_plan(&args.plan)?;
    let signing = genesis::testnet::read_key(&args.key)?;
    let client = NodeClient::new(&args.node)?.signed_by(signing.clone());
    let runtime = runtime()?;
    let current = runtime.block_on(open_rekeying(&client))?;
    let todo = runtime.block_on(not_yet_linked(&client, &links))?;
    let linked = current.links + todo.len() as u64;
    let complete = linked >= current.beneficiaries;
    let sender = LinkSender::new(&client, signing, current.key_version, &runtime)?;
    submit_links(&client, &sender, &todo, complete, &runtime)?;
    println!(
        "{} links submitted ({} already on the ledger)",
        todo.len(),
        links.len() - todo.len()
    );
    let mut retired = 0;
    if !complete && args.retire_unlinked {
        let unlinked = runtime.block_on(all_unlinked(&client))?;
        retired = unlinked.len() as u64;
        let random = unlinked
            .into_iter()
            .map(|old| {
                let mut new = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut new);
                PseudonymLink {
                    old,
                    new: Hash32(new),
                }
            })
            .collect::<Vec<_>>();
        submit_links(&client, &sender, &random, true, &runtime)?;
        println!(
            "{retired} beneficiaries the register does not account for retired (linked to pseudonyms no NIK gives)"
        );
    }
    if complete || retired > 0 {
        println!("every beneficiary is linked: intake has resumed");
    } else {
        println!(
            "{linked} of {} beneficiaries linked: intake stays paused until the rest are (find them in the register, or run again with --retire-unlinked)",
            current.beneficiaries
        );
    }
    Ok(())
}

/// The plan's links whose new pseudonym the ledger does not know yet.
async fn not_yet_linked(
    client: &NodeClient,
    links: &[PseudonymLink],
) -> anyhow::Result<Vec<PseudonymLink>> {
    let mut todo = Vec::new();
    for chunk in links.chunks(LOOKUP_BATCH) {
        let news: Vec<Pseudonym> = chunk.iter().map(|l| l.new).collect();
        let found = client.lookup(&news).await?;
        todo.extend(
            chunk
                .iter()
                .zip(found.beneficiaries)
                .filter(|(_, e)| e.known_as.is_none())
                .map(|(l, _)| *l),
        );
    }
    Ok(todo)
}

/// Every beneficiary not yet linked under the current key.
async fn all_unlinked(client: &NodeClient) -> anyhow::Result<Vec<Pseudonym>> {
    let mut out = Vec::new();
    let mut after: Option<Pseudonym> = None;
    loop {
        let page = client
            .unlinked(after.as_ref(), proto::api::UNLINKED_PSEUDONYMS_MAX as u32)
            .await?;
        for hex in &page.unlinked {
            out.push(
                Pseudonym::from_hex(hex)
                    .map_err(|e| anyhow::anyhow!("the node answered {hex:?}: {e}"))?,
            );
        }
        match page.next {
            Some(next) => {
                after = Some(
                    Pseudonym::from_hex(&next)
                        .map_err(|e| anyhow::anyhow!("the node answered {next:?}: {e}"))?,
                )
            }
            None => return Ok(out),
        }
    }
}

/// Signs `links` in batches (the last with `complete`, an empty one if there are none)
/// and waits for each round to commit.
fn submit_links(
    client: &NodeClient,
    sender: &LinkSender,
    links: &[PseudonymLink],
    complete: bool,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let batches: Vec<&[PseudonymLink]> = links.chunks(PSEUDONYM_LINKS_PER_TX_MAX).collect();
    let mut txs = Vec::with_capacity(batches.len() + 1);
    for (i, batch) in batches.iter().enumerate() {
        txs.push(sender.sign(batch.to_vec(), complete && i + 1 == batches.len()));
    }
    if batches.is_empty() && complete {
        txs.push(sender.sign(Vec::new(), true));
    }
    let progress = indicatif::ProgressBar::new(txs.len() as u64);
    for round in txs.chunks(LINK_TXS_IN_FLIGHT) {
        let batch = runtime.block_on(client.submit_batch(round))?;
        if let Some(refused) = batch.results.iter().find_map(|r| r.error.as_ref()) {
            bail!(
                "the node refused a link transaction: {} ({})",
                refused.message,
                refused.code
            );
        }
        let hashes: Vec<String> = round.iter().map(|tx| tx.hash().to_hex()).collect();
        runtime.block_on(wait_committed(client, &hashes, LINK_COMMIT_WAIT))?;
        progress.inc(round.len() as u64);
    }
    progress.finish_and_clear();
    Ok(())
}

/// Signs link transactions with consecutive nonces.
struct LinkSender {
    chain_id: String,
    key: SigningKey,
    signer: PublicKey,
    version: u32,
    next_nonce: std::cell::Cell<u64>,
}

impl LinkSender {
    fn new(
        client: &NodeClient,
        key: SigningKey,
        version: u32,
        runtime: &tokio::runtime::Runtime,
    ) -> anyhow::Result<LinkSender> {
        let signer = PublicKey(key.verifying_key().to_bytes());
        let chain_id = runtime.block_on(client.status())?.chain_id;
        let info = runtime.block_on(client.key(&signer))?;
        if !info.known {
            bail!("the ledger does not know key {signer}: sign with the service organisation's own key");
        }
        Ok(LinkSender {
            chain_id,
            key,
            signer,
            version,
            next_nonce: std::cell::Cell::new(info.pending_next_nonce),
        })
    }

    fn sign(&self, links: Vec<PseudonymLink>, complete: bool) -> ledger::tx::Transaction {
        let nonce = self.next_nonce.get();
        self.next_nonce.set(nonce + 1);
        TxBody {
            chain_id: self.chain_id.clone(),
            signer: self.signer,
            nonce,
            action: Action::LinkPseudonyms {
                key_version: self.version,
                links,
                complete,
            },
        }
        .sign(&self.key)
    }
}

fn read_plan(path: &Path) -> anyhow::Result<Vec<PseudonymLink>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let mut links = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{} line {}", path.display(), line + 2))?;
        let field = |i: usize| -> anyhow::Result<Pseudonym> {
            Pseudonym::from_hex(record.get(i).unwrap_or(""))
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), line + 2))
        };
        links.push(PseudonymLink {
            old: field(0)?,
            new: field(1)?,
        });
    }
    Ok(links)
}

/// Writes a new file only its owner can read; refuses to replace one.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
