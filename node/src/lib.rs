//! # bansos-node: one institution's node, as a library
//!
//! The server side of Bansos Ledger: the ledger behind a lock, the mempool, the HTTP API,
//! the transaction relay and consensus (Malachite over libp2p). The `bansos` binary calls
//! [`run`]; tests build a [`shared::Shared`] over an in-memory ledger with a
//! [`clock::ManualClock`] and drive [`api::router`] in process.
//!
//! - [`config`]: `config.toml`, strictly parsed (unknown keys are errors), defaults in one
//!   place;
//! - [`clock`]: injected time;
//! - [`shared`]: the state the tasks share, and transaction admission;
//! - [`mempool`]: bounded pending transactions;
//! - [`api`] and [`metrics`]: HTTP and Prometheus; [`log_api`]: proofs, tiles, checkpoints;
//!   [`consortium`]: which requests must be signed by a key in genesis (DESIGN §4);
//!   [`witness`]: the C2SP witness an auditor's node runs; [`track`]: a citizen's timeline
//!   by tracking code, with proofs; [`governance_api`]: changes and validator sets;
//!   [`server`]: the connection loop
//!   (connection cap, header time-out);
//! - [`relay`]: passing admitted transactions on to peers;
//! - [`consensus`]: everything that touches Malachite (nothing outside it names a Malachite
//!   type);
//! - [`run`]: start-up and shutdown of a whole node; [`backup`]: `bansos backup` and
//!   `bansos restore` of a stopped node's data.
//!
//! Client code (the `bansos tx`, `load` and `demo load` commands) is in the `client` crate,
//! which shares only `proto`'s types with this one.

pub mod anomalies;
pub mod api;
#[cfg(feature = "rocksdb")]
pub mod backup;
pub mod chain_web;
pub mod checkpoints;
pub mod clock;
pub mod config;
pub mod consensus;
pub mod consortium;
pub mod governance_api;
pub mod log_api;
pub mod mempool;
pub mod metrics;
pub mod open_data;
pub mod pseudonym_api;
pub mod relay;
#[cfg(feature = "rocksdb")]
pub mod run;
pub mod server;
pub mod shared;
pub mod track;
pub mod web;
pub mod witness;

#[cfg(feature = "rocksdb")]
pub use run::run;
