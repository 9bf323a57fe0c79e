//! `bansos governance` and `bansos keys rotate`: changes to the consortium itself.
//!
//! An institution's own key proposes a change with an activation height; other
//! institutions approve it; it takes effect at that height if the genesis rule's
//! institutions approved it in time (on the demo network: three, the ministry among them).

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use genesis::keys::{read_key, write_new_key_file, KeyFile};
use ledger::governance::Change;
use ledger::tx::Action;
use ledger::types::{Hash32, OrgId, PublicKey};

use crate::http::{runtime, NodeClient};
use crate::tx::{submit_action, TxCommon};

/// Blocks between a proposal and its activation by default: time for the other
/// institutions to approve (at about a block a second under no load, a few minutes).
pub const ACTIVATION_DELAY_DEFAULT: u64 = 300;

#[derive(Subcommand, Debug)]
pub enum GovernanceCommand {
    /// Propose a change, signed by your institution's key: a JSON file such as
    /// `{"change": "rotate_key", "org": "bank-bri", "old": "<hex>", "new": "<hex>"}` (also
    /// add_organisation, remove_organisation, set_validator, set_program; see the README).
    /// Prints the change's id for the others to approve.
    Propose(ProposeArgs),
    /// Approve a proposed change, signed by your institution's key.
    Approve(ApproveArgs),
    /// Show a change: what it does, who approved it, and whether it took effect.
    Show(ShowArgs),
    /// List every validator set the chain has had, with the height each took effect at.
    Validators(ValidatorsArgs),
}

#[derive(Args, Debug)]
pub struct ProposeArgs {
    /// The change, as JSON.
    #[arg(long)]
    pub change: PathBuf,
    #[command(flatten)]
    pub activation: Activation,
    #[command(flatten)]
    pub common: TxCommon,
}

/// When a change takes effect.
#[derive(Args, Debug)]
pub struct Activation {
    /// The height it takes effect at (default: the node's height plus --activate-in).
    #[arg(long)]
    pub activation_height: Option<u64>,
    /// Blocks from now until it takes effect, when --activation-height is not given.
    #[arg(long, default_value_t = ACTIVATION_DELAY_DEFAULT)]
    pub activate_in: u64,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The change's id (the hash `propose` printed).
    #[arg(long = "change")]
    pub id: String,
    #[command(flatten)]
    pub common: TxCommon,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The change's id.
    pub id: String,
    /// The node to ask.
    #[arg(long, default_value = "http://127.0.0.1:8701")]
    pub node: String,
}

#[derive(Args, Debug)]
pub struct ValidatorsArgs {
    /// The node to ask.
    #[arg(long, default_value = "http://127.0.0.1:8701")]
    pub node: String,
}

/// `bansos keys rotate`: writes a new key file and proposes replacing the old key with it.
#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The organisation whose key is rotated.
    #[arg(long)]
    pub org: String,
    /// The new key file to write (mode 0600); refused if it exists. With --encrypt the
    /// secret is protected by the passphrase in BANSOS_KEY_PASSPHRASE.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub encrypt: bool,
    #[command(flatten)]
    pub activation: Activation,
    /// `--key` is the key being rotated out: it signs the proposal.
    #[command(flatten)]
    pub common: TxCommon,
}

pub fn run(command: GovernanceCommand) -> anyhow::Result<()> {
    match command {
        GovernanceCommand::Propose(args) => {
            let text = std::fs::read_to_string(&args.change)
                .with_context(|| format!("reading {}", args.change.display()))?;
            let change: Change = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a change", args.change.display()))?;
            propose(change, &args.activation, &args.common)
        }
        GovernanceCommand::Approve(args) => {
            let id = Hash32::from_hex(&args.id)
                .map_err(|e| anyhow::anyhow!("--change {:?}: {e}", args.id))?;
            submit_action(Action::ApproveChange { change: id }, &args.common, None)?;
            Ok(())
        }
        GovernanceCommand::Show(args) => {
            let client = NodeClient::new(&args.node)?;
            let change = runtime()?.block_on(client.change(&args.id))?;
            println!("{}", serde_json::to_string_pretty(&change)?);
            Ok(())
        }
        GovernanceCommand::Validators(args) => {
            let client = NodeClient::new(&args.node)?;
            let sets = runtime()?.block_on(client.validator_sets())?;
            println!("{}", serde_json::to_string_pretty(&sets)?);
            Ok(())
        }
    }
}

/// Proposes `change`, signed with `common`'s key, and says what comes next.
fn propose(change: Change, activation: &Activation, common: &TxCommon) -> anyhow::Result<()> {
    let activation_height = match activation.activation_height {
        Some(height) => height,
        None => {
            let client = NodeClient::new(&common.node)?;
            let status = runtime()?
                .block_on(client.status())
                .context("asking the node for its height (or pass --activation-height)")?;
            status.height + activation.activate_in.max(1)
        }
    };
    let action = Action::ProposeChange {
        change,
        activation_height,
    };
    let (id, _) = submit_action(action, common, None)?;
    eprintln!(
        "change {id} takes effect at height {activation_height} once approved: the other institutions run\n  bansos governance approve --change {id} --key THEIR.key --node {}",
        common.node
    );
    Ok(())
}

/// Runs `bansos keys rotate`.
pub fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let org = OrgId::new(&args.org).map_err(|e| anyhow::anyhow!("--org: {e}"))?;
    let old = read_key(&args.common.key)?;
    let new = SigningKey::generate(&mut rand::rngs::OsRng);
    let file = if args.encrypt {
        let passphrase = std::env::var(genesis::keys::KEY_PASSPHRASE_ENV).with_context(|| {
            format!(
                "--encrypt needs the passphrase in {}",
                genesis::keys::KEY_PASSPHRASE_ENV
            )
        })?;
        KeyFile::encrypted(org.as_str(), &new, &passphrase)?
    } else {
        KeyFile::plain(org.as_str(), &new)
    };
    if args.out.exists() {
        bail!(
            "{} exists; choose a new file for the new key",
            args.out.display()
        );
    }
    write_new_key_file(&args.out, &file)?;
    read_key(&args.out).context("reading the new key file back")?;
    let public = |key: &SigningKey| PublicKey(key.verifying_key().to_bytes());
    eprintln!(
        "new key {} written to {}; the old key signs until the change takes effect",
        public(&new),
        args.out.display()
    );
    let change = Change::RotateKey {
        org,
        old: public(&old),
        new: public(&new),
    };
    propose(change, &args.activation, &args.common)
}
