//! `bansos backup` and `bansos restore`: a stopped node's data, copied consistently and put
//! back on another machine.
//!
//! A backup is a directory holding
//! - `ledger/`: a RocksDB checkpoint of the ledger store (consistent; table files
//!   hard-linked when the backup is on the same file system, copied otherwise);
//! - `wal/` and `proposals/`: the consensus write-ahead log and the kept proposals with the
//!   highest height this node voted at, from the same moment (a validator's);
//! - `witness.json`: what a witness has cosigned, if the node is one;
//! - `backup.json`: the manifest (node, chain, genesis hash, height, block hash, log size).
//!
//! Keys and `config.toml` are not in it: an operator keeps keys apart (encrypted), and a new
//! machine gets its config first. The node must be stopped while a backup is taken (its
//! store's lock says whether it runs); in a network of four validators, one stopped for a
//! backup does not stop the chain, and it catches up when started again.
//!
//! A restore refuses: a home that already holds a ledger (it never overwrites one), a
//! backup of another node or another genesis, and a backup whose ledger does not open at
//! the height its manifest names. A node whose consensus record is ahead of its ledger (a
//! ledger put back without the matching `proposals/`) refuses to start (see
//! `consensus::app`), since voting again at those heights could sign two votes in a round.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context as _};
use ledger::{Ledger, RocksStore};
use serde::{Deserialize, Serialize};

use crate::config::NodeSettings;

/// The manifest's file name inside a backup.
pub const MANIFEST_FILE: &str = "backup.json";

/// The manifest format this build writes and reads.
pub const BACKUP_FORMAT: &str = "bansos-backup/1";

/// What a backup holds, written last (a backup without it is incomplete).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    pub format: String,
    pub node: String,
    pub chain_id: String,
    pub genesis_hash: String,
    pub height: u64,
    pub block_hash: String,
    pub log_size: u64,
    /// When the backup was taken, in milliseconds since 1970 (UTC).
    pub taken_unix_ms: u64,
}

/// The parts of a node's data directory besides the ledger, by name under `data/`.
const DATA_DIRS: [&str; 2] = ["wal", "proposals"];

/// Backs up the stopped node at `home` into the new directory `out`.
pub fn backup(home: &Path, out: &Path) -> anyhow::Result<BackupManifest> {
    let settings = NodeSettings::load(home)?;
    if out.exists() {
        bail!(
            "{} exists; a backup goes into a new directory",
            out.display()
        );
    }
    let store = open_stopped(&settings.ledger_path())?;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    store
        .checkpoint_to(&out.join("ledger"))
        .context("writing the ledger checkpoint")?;
    drop(store);
    let tip = tip_of(&out.join("ledger"), &settings)?;
    let data = settings.home.join("data");
    for name in DATA_DIRS {
        copy_flat_dir(&data.join(name), &out.join(name))?;
    }
    copy_file_if_present(&data.join(crate::witness::WITNESS_STATE_FILE), out)?;
    let manifest = BackupManifest {
        format: BACKUP_FORMAT.into(),
        node: settings.name.clone(),
        chain_id: settings.genesis.chain_id.clone(),
        genesis_hash: settings.genesis_index.hash.to_string(),
        height: tip.height,
        block_hash: tip.block_hash.to_string(),
        log_size: tip.log.size(),
        taken_unix_ms: now_unix_ms(),
    };
    write_synced(
        &out.join(MANIFEST_FILE),
        &serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(manifest)
}

/// Restores the backup at `from` into the node home `home` (its `config.toml` and keys in
/// place, no ledger yet). Returns the manifest of what was restored.
pub fn restore(from: &Path, home: &Path) -> anyhow::Result<BackupManifest> {
    let settings = NodeSettings::load(home)?;
    let manifest = read_manifest(from)?;
    check_fits(&manifest, &settings)?;
    let ledger_path = settings.ledger_path();
    if ledger_path.exists() {
        bail!(
            "{} already holds a ledger; a restore never overwrites one (move {} away first)",
            ledger_path.display(),
            settings.home.join("data").display()
        );
    }
    let backed_up = tip_of(&from.join("ledger"), &settings)?;
    if backed_up.height != manifest.height
        || backed_up.block_hash.to_string() != manifest.block_hash
    {
        bail!(
            "the backup's ledger is at height {} ({}), not at the manifest's {} ({}): the backup is damaged",
            backed_up.height,
            backed_up.block_hash,
            manifest.height,
            manifest.block_hash
        );
    }
    let data = settings.home.join("data");
    for name in DATA_DIRS {
        let target = data.join(name);
        if target.exists() {
            fs::remove_dir_all(&target)
                .with_context(|| format!("removing the old {}", target.display()))?;
        }
        copy_flat_dir(&from.join(name), &target)?;
    }
    copy_file_if_present(&from.join(crate::witness::WITNESS_STATE_FILE), &data)?;
    // The ledger last, through a temporary name: a restore that stops half-way leaves no
    // ledger behind, and can simply be run again.
    let partial = data.join("ledger.restoring");
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    copy_flat_dir(&from.join("ledger"), &partial)?;
    fs::rename(&partial, &ledger_path)
        .with_context(|| format!("moving the restored ledger to {}", ledger_path.display()))?;
    sync_dir(&data)?;
    let restored = tip_of(&ledger_path, &settings)?;
    assert_eq!(
        restored.height, manifest.height,
        "a copied ledger opens at the height of the one it was copied from"
    );
    Ok(manifest)
}

/// Reads and checks a backup's manifest.
pub fn read_manifest(from: &Path) -> anyhow::Result<BackupManifest> {
    let path = from.join(MANIFEST_FILE);
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is {} a complete backup?)",
            path.display(),
            from.display()
        )
    })?;
    let manifest: BackupManifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a backup manifest", path.display()))?;
    if manifest.format != BACKUP_FORMAT {
        bail!(
            "{}: format {:?}; this build reads {BACKUP_FORMAT:?}",
            path.display(),
            manifest.format
        );
    }
    Ok(manifest)
}

/// A backup fits a node when it is of the same node of the same network.
fn check_fits(manifest: &BackupManifest, settings: &NodeSettings) -> anyhow::Result<()> {
    let genesis_hash = settings.genesis_index.hash.to_string();
    if manifest.genesis_hash != genesis_hash || manifest.chain_id != settings.genesis.chain_id {
        bail!(
            "the backup is of chain {} (genesis {}), this node's config names chain {} (genesis {})",
            manifest.chain_id,
            manifest.genesis_hash,
            settings.genesis.chain_id,
            genesis_hash
        );
    }
    // Another node's consensus record would make this one vote as if it had voted there.
    if manifest.node != settings.name {
        bail!(
            "the backup is of node {:?}, this home is node {:?}",
            manifest.node,
            settings.name
        );
    }
    Ok(())
}

/// Opens a node's store for writing, which only succeeds while the node is stopped.
fn open_stopped(path: &Path) -> anyhow::Result<RocksStore> {
    if !path.is_dir() {
        bail!("{} holds no ledger store", path.display());
    }
    RocksStore::open(path).map_err(|e| {
        if e.to_string().contains("lock") {
            anyhow::anyhow!(
                "{} is in use: stop the node first (its store is locked)",
                path.display()
            )
        } else {
            anyhow::anyhow!(e)
        }
    })
}

/// The tip of the ledger store at `path`, opened read-only against this node's genesis.
fn tip_of(path: &Path, settings: &NodeSettings) -> anyhow::Result<ledger::ChainTip> {
    let store =
        RocksStore::open_read_only(path).with_context(|| format!("opening {}", path.display()))?;
    let ledger = Ledger::open(store, settings.genesis.clone())
        .with_context(|| format!("reading the ledger at {}", path.display()))?;
    Ok(ledger.tip().clone())
}

/// Copies the regular files of `from` (if it exists) into the new directory `to`, each
/// synced, then the directory. A subdirectory is an error: these directories have none.
fn copy_flat_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    if !from.exists() {
        return Ok(());
    }
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            bail!(
                "{} is not a regular file; refusing to guess how to copy it",
                entry.path().display()
            );
        }
        copy_synced(&entry.path(), &to.join(entry.file_name()))?;
    }
    sync_dir(to)
}

fn copy_file_if_present(file: &Path, into: &Path) -> anyhow::Result<()> {
    match file.file_name() {
        Some(name) if file.exists() => copy_synced(file, &into.join(name)),
        _ => Ok(()),
    }
}

fn copy_synced(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    fs::File::open(to)?.sync_all()?;
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    fs::File::open(path)?.sync_all()?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

fn now_unix_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the system clock is after 1970");
    u64::try_from(since.as_millis()).expect("milliseconds since 1970 fit in 64 bits")
}
