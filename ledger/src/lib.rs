//! # Bansos ledger core
//!
//! The aid lifecycle as a deterministic state machine: signed transactions go in, blocks come
//! out, every block hash-chained with BLAKE3 and every transaction appended to a SHA-256
//! transparency log in the RFC 6962 / C2SP shape ([`merkle`], signed heads in [`note`]). This crate does no networking, reads no clock and draws no randomness:
//! time arrives in block headers, randomness as arguments. That is what lets every node,
//! and every auditor offline, reach the same state from the same blocks.
//!
//! ## The lifecycle (DESIGN §3)
//!
//! | step | [`tx::Action`] | who signs | state it needs |
//! | --- | --- | --- | --- |
//! | program / budget | `DeclareBudget` | Kemensos (organisation key) | program in genesis; a revision never below what is allocated; within every enclosing region's ceiling |
//! | proposal (usul) | `Propose` | Pemda (org key, operator, pendamping, cadre) in its regions; Kemensos intake | pseudonym not yet proposed |
//! | identity check | `CheckIdentity` | Dukcapil, Kemensos | beneficiary exists, not deceased |
//! | eligibility verification | `VerifyEligibility` | Pemda (own region), BPS | beneficiary exists, not deceased |
//! | enrolment | `Enrol` | Kemensos | identity passed, eligibility verified, active, not enrolled in the program |
//! | allocation | `Allocate` | Kemensos | enrolled, active, identity and eligibility still good, one per program period, within the ceiling of every enclosing region that has one |
//! | disbursement | `Disburse` | bank / PT Pos scoped to the region and program | allocation not yet paid, amount ≤ allocated, beneficiary active, identity and eligibility still good |
//! | receipt | `ConfirmReceipt` | beneficiary's own app key, or a pendamping in the region | disbursed; once each; the beneficiary's own word is kept beside a pendamping's |
//! | objection (sanggah) | `FileObjection` | any institution | subject exists; deadline = filing + 14 days |
//! | resolution | `ResolveObjection` | Pemda (region) before the deadline, Kemensos any time | not yet resolved |
//! | status change | `ChangeStatus` | Pemda, Kemensos; Dukcapil for death, moves and death corrections | not deceased (except a death correction); a ministry's suspension or a graduation is lifted by the ministry only |
//! | audit attestation | `Attest` | auditor | checkpoint matches the log at that size |
//! | keys | `RegisterAgent`, `RevokeAgent` | the organisation's own key; a beneficiary for its app key | key unused; regions within the organisation's; revoke own agents and own other keys, a beneficiary its own app key, Kemensos any beneficiary's |
//! | governance | `ProposeChange`, `ApproveChange` | an organisation's own key | the change keeps the rules when proposed and again when due; takes effect at the activation height if the genesis rule's organisations approved it ([`governance`]) |
//! | re-keying | `LinkPseudonyms` | the pseudonym service's organisation (own key) | a new pseudonym key is current and not yet linked; each old pseudonym names a beneficiary, each new one nothing yet; `complete` only when every beneficiary is linked ([`pseudonyms`]) |
//! | nonce | `SkipNonce` | any signer | none: only the signer's nonce advances (fills the nonce of a refused transaction in a signed run) |
//!
//! Every transaction also needs a known, unrevoked signer, the signer's next nonce, and the
//! chain id; see [`chain::Ledger`] for blocks and [`merkle`] for the log.

pub mod block;
pub mod chain;
pub mod encode;
pub mod error;
pub mod genesis;
pub mod governance;
pub mod limits;
pub mod log_cache;
pub mod log_store;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod privacy;
pub mod pseudonyms;
mod rules;
pub mod signature;
pub mod state;
pub mod store;
pub mod totals;
pub mod tx;
pub mod types;

pub use block::{Block, BlockHeader};
pub use chain::{BeneficiaryStep, ChainTip, Ledger, PreparedBlock, SignatureCheck, TxLocation};
pub use error::LedgerError;
pub use genesis::{Genesis, GenesisIndex, OrgKind};
pub use log_store::log_nodes_of_entry;
#[cfg(feature = "rocksdb")]
pub use store::RocksStore;
pub use store::{Column, MemoryStore, Store, StoreError, WriteBatch};
pub use tx::{Action, Transaction, TxBody};
pub use types::{Hash32, PublicKey, Rupiah};
