//! The consensus glue: everything that touches Malachite lives under this module, because
//! Malachite's application API changes between versions (the dependency is pinned to an
//! exact version in `node/Cargo.toml`).
//!
//! - [`types`]: the Malachite `Context` for this chain (heights, validator addresses, block
//!   hashes as values, proposals, votes, proposal parts, the ed25519 scheme) and the exact
//!   bytes each consensus signature covers, chain id included.
//! - [`codec`]: the encoding of every consensus, sync and WAL message, hand-written and
//!   versioned, with capped lengths so hostile bytes are refused rather than trusted.
//! - [`signing`]: Malachite's `Signer` and `Verifier`, and the commit certificate as the
//!   ledger stores it beside each block and an auditor verifies it offline.
//!
//! - [`engine`]: Malachite's configuration (libp2p over TCP, genesis peers only, per-IP
//!   limits, value sync), the node's network identity, and the start of the engine.
//! - [`app`]: the answers to every message the engine sends (propose, check, commit, sync).
//! - [`proposals`]: undecided proposals kept on disk for crash recovery.
//! - [`streams`]: bounded reassembly of proposal streams (no Malachite type in it).
//! - `byzantine` (cargo feature `byzantine`, tests only): a validator that attacks the
//!   others with its own key, for the cluster tests.

pub mod app;
#[cfg(feature = "byzantine")]
pub mod byzantine;
pub mod codec;
pub mod engine;
pub mod height_record;
pub mod proposals;
pub mod signing;
pub mod streams;
pub mod types;

/// Log directives a node adds to its filter (`bansos node --log`, unless `RUST_LOG` is set):
/// libp2p's and ractor's chatter, and Malachite's core consensus below warnings. That core
/// logs every vote, timeout and step at `info` (~20 lines a height on each node); formatting
/// them was ~9% of a node's CPU per height at 47 heights a second (docs/BENCHMARKS.md). The
/// node logs each proposal and commit itself (`proposing`, `committed`, with height and
/// round), and `RUST_LOG` brings Malachite's lines back.
pub const QUIET_LOG_DIRECTIVES: &str =
    "libp2p=warn,ractor=warn,arc_malachitebft_core_consensus=warn";
