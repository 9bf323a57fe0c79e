//! Limits on everything the ledger accepts, named with their units.
//!
//! A limit that is not written down is a limit that an attacker chooses. These are checked
//! before any work proportional to the input is done.

/// The largest canonical encoding of one signed transaction.
pub const TX_BYTES_MAX: usize = 4 * 1024;
/// The largest leaf of the transparency log: a C2SP entry bundle prefixes each entry with
/// a big-endian u16 length, so 64 KiB less one byte. Every leaf is one transaction's
/// canonical bytes, so [`TX_BYTES_MAX`] must stay within it (checked at compile time).
pub const LOG_LEAF_BYTES_MAX: usize = u16::MAX as usize;
const _: () = assert!(TX_BYTES_MAX <= LOG_LEAF_BYTES_MAX);
/// The most transactions in one block.
pub const BLOCK_TXS_MAX: usize = 10_000;
/// The largest sum of transaction encodings in one block.
pub const BLOCK_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The longest chain id.
pub const CHAIN_ID_BYTES_MAX: usize = 64;
/// The longest region code (`35.10.01.2001` is 13 bytes).
pub const REGION_CODE_BYTES_MAX: usize = 24;
/// The longest program, period or organisation code.
pub const CODE_BYTES_MAX: usize = 32;
/// The most regions one budget declaration may set ceilings for.
pub const BUDGET_REGIONS_MAX: usize = 64;
/// The most regions an agent key may be scoped to.
pub const AGENT_REGIONS_MAX: usize = 32;
/// How long an objection may wait for a regional resolution before it escalates to the
/// ministry: 14 days, the usul-sanggah response window.
pub const OBJECTION_RESPONSE_WINDOW_MS: u64 = 14 * 24 * 60 * 60 * 1000;
/// The largest household size a proposal may record.
pub const HOUSEHOLD_SIZE_MAX: u8 = 30;
/// The most organisations in genesis.
pub const GENESIS_ORGANISATIONS_MAX: usize = 1_000;
/// The most regions in genesis.
pub const GENESIS_REGIONS_MAX: usize = 100_000;
/// The most transaction keys one organisation may list in genesis.
/// Organisations a chain may have over its life, removed ones included (genesis's and
/// those governance adds).
pub const ORGANISATIONS_MAX: usize = 2_000;

pub const ORG_TX_KEYS_MAX: usize = 16;
/// The longest organisation or region name in genesis.
pub const NAME_BYTES_MAX: usize = 128;
/// The most validators in a set.
pub const VALIDATORS_MAX: usize = 100;
/// The fewest validators a governance change may leave when it removes one: four tolerate
/// one faulty validator (n ≥ 3f + 1).
pub const VALIDATOR_SET_MIN: usize = 4;
/// How far ahead a governance change may be scheduled, in blocks (about 11 days at one
/// block a second).
pub const CHANGE_ACTIVATION_DELAY_MAX: u64 = 1_000_000;
/// The most governance changes due at one height: bounds the work at the end of a block.
pub const CHANGES_DUE_PER_HEIGHT_MAX: usize = 64;
/// The most validator sets a chain keeps in its history (one per height that changed it);
/// a change beyond it is refused.
pub const VALIDATOR_SETS_MAX: usize = 10_000;

/// Re-keying links in one transaction: 64 bytes each, within [`TX_BYTES_MAX`].
pub const PSEUDONYM_LINKS_PER_TX_MAX: usize = 48;
const _: () = assert!(PSEUDONYM_LINKS_PER_TX_MAX * 64 + 512 <= TX_BYTES_MAX);
/// Pseudonym key versions a chain may have (one re-keying a month for 80 years).
pub const PSEUDONYM_KEYS_MAX: usize = 1_000;
/// Beneficiary records one query for those not yet linked reads, at most (it says where
/// to go on from).
pub const UNLINKED_SCAN_RECORDS_MAX: usize = 100_000;
