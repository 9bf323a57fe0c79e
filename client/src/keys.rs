//! `bansos keys generate|show|encrypt`: an institution's, a node's or an agent's key files
//! (format and rules: `genesis::keys`). Files are written 0600 and never replaced.
//!
//! Rotating a key that is already on the ledger (an organisation's or a validator's) is a
//! governance step: the network must approve the new key before it counts. Until that
//! exists, a rotation means a new genesis.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use genesis::keys::{
    public, read_key, read_key_file, read_key_with, write_new_key_file, KeyFile, KEY_PASSPHRASE_ENV,
};

/// The key commands.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a new ed25519 key and write it to a new file (mode 0600). With
    /// --encrypt the secret is protected by the passphrase in BANSOS_KEY_PASSPHRASE.
    Generate(GenerateArgs),
    /// Show a key file's owner, public key, libp2p peer id and whether it is encrypted
    /// (no passphrase needed); --check also opens the secret and checks it.
    Show(ShowArgs),
    /// Write an encrypted copy of a plain key file (passphrase from
    /// BANSOS_KEY_PASSPHRASE). The plain file is left for you to delete.
    Encrypt(EncryptArgs),
    /// Replace your institution's transaction key: write a new key file and propose the
    /// change, signed by the old key (--key). The old key signs until the change takes
    /// effect (once approved, at its activation height), the new one from then on.
    Rotate(crate::governance::RotateArgs),
}

#[derive(Args)]
pub struct GenerateArgs {
    /// The file to write; refused if it exists.
    #[arg(long)]
    pub out: PathBuf,
    /// Who the key belongs to (an organisation id, a node name, an agent).
    #[arg(long)]
    pub owner: String,
    /// Encrypt the secret with the passphrase in BANSOS_KEY_PASSPHRASE.
    #[arg(long)]
    pub encrypt: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The key file.
    pub file: PathBuf,
    /// Also open the secret (with BANSOS_KEY_PASSPHRASE if encrypted) and check that it
    /// matches the public key.
    #[arg(long)]
    pub check: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct EncryptArgs {
    /// The plain key file.
    pub file: PathBuf,
    /// The encrypted key file to write; refused if it exists.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs one key command.
pub fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate(args) => generate(args),
        KeysCommand::Show(args) => show(args),
        KeysCommand::Encrypt(args) => encrypt(args),
        KeysCommand::Rotate(args) => crate::governance::rotate(args),
    }
}

fn passphrase() -> anyhow::Result<String> {
    std::env::var(KEY_PASSPHRASE_ENV)
        .with_context(|| format!("--encrypt needs the passphrase in {KEY_PASSPHRASE_ENV}"))
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let file = if args.encrypt {
        KeyFile::encrypted(&args.owner, &key, &passphrase()?)?
    } else {
        KeyFile::plain(&args.owner, &key)
    };
    write_new_key_file(&args.out, &file)?;
    // Read back as a node would: what was written opens.
    read_key(&args.out).context("reading the new key file back")?;
    print_file(&args.out, &file, args.json);
    Ok(())
}

fn show(args: ShowArgs) -> anyhow::Result<()> {
    let file = read_key_file(&args.file)?;
    if args.check {
        read_key(&args.file)?;
    }
    print_file(&args.file, &file, args.json);
    Ok(())
}

fn encrypt(args: EncryptArgs) -> anyhow::Result<()> {
    let plain = read_key_file(&args.file)?;
    if plain.is_encrypted() {
        anyhow::bail!("{} is already encrypted", args.file.display());
    }
    let key = read_key_with(&args.file, None)?;
    let file = KeyFile::encrypted(&plain.owner, &key, &passphrase()?)?;
    write_new_key_file(&args.out, &file)?;
    let reopened = read_key(&args.out).context("reading the encrypted key file back")?;
    anyhow::ensure!(
        public(&reopened) == plain.public_key,
        "the encrypted file does not hold the same key"
    );
    print_file(&args.out, &file, false);
    Ok(())
}

fn print_file(path: &std::path::Path, file: &KeyFile, json: bool) {
    let peer_id = genesis::testnet::peer_id(&file.public_key);
    if json {
        let shown = serde_json::json!({
            "file": path.display().to_string(),
            "owner": file.owner,
            "public_key": file.public_key.to_hex(),
            "peer_id": peer_id,
            "encrypted": file.is_encrypted(),
        });
        println!("{shown}");
    } else {
        println!(
            "{}: owner {}, public key {}, peer id {}, {}",
            path.display(),
            file.owner,
            file.public_key.to_hex(),
            peer_id,
            if file.is_encrypted() {
                "encrypted"
            } else {
                "not encrypted"
            }
        );
    }
}
