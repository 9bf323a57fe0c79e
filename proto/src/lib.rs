//! # bansos-proto: what a verifier needs, and nothing that runs a node
//!
//! The node (server), the client commands, the explorer and auditors' tools all speak the
//! same types; this crate holds them so that none of those has to import another:
//!
//! - [`api`]: the JSON bodies of the HTTP API (DESIGN §5) and the limits both sides of it
//!   rely on;
//! - [`signing`]: the exact bytes every consensus signature covers (votes, proposals,
//!   proposal streams) and the one signature-check rule every verifier uses;
//! - [`txbatch`]: the binary form of a transaction batch (bulk clients, the relay);
//! - [`certificate`]: the validator set as a verifier sees it and the commit certificate
//!   stored beside each block, verified offline with nothing but genesis.
//!
//! **Architecture invariant:** no Malachite, no async runtime, no HTTP or network crate, no
//! RocksDB (a tidy test runs `cargo tree` on this crate). The node converts between these
//! types and Malachite's in `node/src/consensus/`.

pub mod api;
pub mod certificate;
pub mod pseudonym;
pub mod signing;
pub mod txbatch;

pub use certificate::{CertificateError, StoredCertificate, ValidatorSet};
