//! Genesis files, local test networks and the synthetic demo year.
//!
//! - [`testnet`]: `bansos testnet` — institutions, keys (0600), `genesis.json`, a config per
//!   node and `network.json`.
//! - [`keys`]: key files (0600, optionally passphrase-encrypted PKCS#8) and secret files.
//! - [`regions`]: the Banyuwangi and Mataram regions of the demo.
//! - [`demo`]: a year of aid as signed transactions, for the demo, tests and benchmarks.

pub mod demo;
pub mod keys;
pub mod regions;
pub mod testnet;

use std::path::PathBuf;

/// Why genesis material could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}
