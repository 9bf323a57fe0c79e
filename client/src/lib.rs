//! # bansos-client: talking to a node from outside
//!
//! - [`http`]: a typed client for a node's HTTP API (the types are `proto::api`'s, the same
//!   the server serialises), with typed errors;
//! - [`tx`], [`import`], [`load`], [`demo`], [`keys`]: the `bansos tx STEP`,
//!   `bansos import`, `bansos load`, `bansos demo load` and `bansos keys` commands. They report to a person at a terminal, so they return `anyhow` errors, as
//!   the binary does; everything a program would call (the HTTP client) has typed errors.
//!
//! **Architecture invariant:** no server code. This crate depends on `proto` and `ledger`
//! (without RocksDB), never on `node`.

pub mod demo;
pub mod governance;
pub mod http;
pub mod import;
pub mod keys;
pub mod load;
pub mod pseudonym;
pub mod rekey;
pub mod remote;
pub mod tx;

pub use http::{ClientError, NodeClient};
