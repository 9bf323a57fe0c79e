//! The JSON bodies of the node's HTTP API (DESIGN §5), shared by the server (`node`), the
//! typed client (`client`) and anyone else who reads the API, plus the limits both sides
//! rely on. `/openapi.json` is generated from these types.
//!
//! Hashes and keys are lowercase hex; times are RFC 3339 with milliseconds (UTC) beside
//! the raw milliseconds.

use std::time::{Duration, UNIX_EPOCH};

use ledger::block::BlockHeader;
use ledger::limits::TX_BYTES_MAX;
use ledger::tx::Transaction;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::certificate::StoredCertificate;

/// The largest body `POST /v1/tx` reads: one transaction as JSON (hex doubles the bytes,
/// field names add some).
pub const TX_REQUEST_BYTES_MAX: usize = 4 * TX_BYTES_MAX;
/// The largest body `POST /v1/txs` reads.
pub const TX_BATCH_REQUEST_BYTES_MAX: usize = 8 * 1024 * 1024;
/// The most transactions in one `POST /v1/txs`.
pub const TX_BATCH_TXS_MAX: usize = 2_000;

/// What `POST /v1/tx` made of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubmitStatus {
    /// Admitted to the mempool (or already there).
    Pending,
    /// Committed before (submitting it again changes nothing).
    Committed,
}

/// Where a transaction stands, as one node knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TxState {
    Pending,
    Committed,
    /// Refused by this node (the error says why).
    Rejected,
    Unknown,
}

/// Whether a node votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeRoleJson {
    Validator,
    Observer,
}

/// Milliseconds since the Unix epoch as RFC 3339 with milliseconds, UTC.
pub fn time_text(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

impl HeaderJson {
    /// The JSON form of a header.
    pub fn from_header(header: &BlockHeader) -> HeaderJson {
        HeaderJson {
            chain_id: header.chain_id.clone(),
            height: header.height,
            hash: header.hash().to_string(),
            prev_hash: header.prev_hash.to_string(),
            time: time_text(header.time_ms),
            time_ms: header.time_ms,
            proposer: header.proposer.to_string(),
            tx_count: header.tx_count,
            tx_root: header.tx_root.to_string(),
            log_size: header.log_size,
            log_root: header.log_root.to_string(),
            state_root: header.state_root.to_string(),
            totals_root: header.totals_root.to_string(),
        }
    }
}

impl HeaderJson {
    /// The header back, for verification: `None` if a hex field is malformed. The `hash`
    /// and `time` fields are derived and not read; a verifier recomputes the hash.
    pub fn to_header(&self) -> Option<BlockHeader> {
        use ledger::types::{Hash32, PublicKey};
        Some(BlockHeader {
            chain_id: self.chain_id.clone(),
            height: self.height,
            prev_hash: Hash32::from_hex(&self.prev_hash).ok()?,
            time_ms: self.time_ms,
            proposer: PublicKey::from_hex(&self.proposer).ok()?,
            tx_count: self.tx_count,
            tx_root: Hash32::from_hex(&self.tx_root).ok()?,
            log_size: self.log_size,
            log_root: Hash32::from_hex(&self.log_root).ok()?,
            state_root: Hash32::from_hex(&self.state_root).ok()?,
            totals_root: Hash32::from_hex(&self.totals_root).ok()?,
        })
    }
}

impl BlockJson {
    /// The block with its full transactions back, for verification (`None` if a header
    /// field is malformed). A block served with `txs=hashes` has no transactions.
    pub fn to_block(&self) -> Option<ledger::block::Block> {
        Some(ledger::block::Block {
            header: self.header.to_header()?,
            txs: self.txs.iter().map(|t| t.tx.clone()).collect(),
        })
    }
}

impl CertificateJson {
    /// The stored form back, for verification: `None` if a hex field is malformed.
    pub fn to_stored(&self) -> Option<StoredCertificate> {
        let signatures = self
            .signatures
            .iter()
            .map(|s| {
                let key = ledger::types::PublicKey::from_hex(&s.validator).ok()?;
                let signature = ledger::types::SignatureBytes::from_hex(&s.signature).ok()?;
                Some((key, signature))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(StoredCertificate {
            height: self.height,
            round: self.round,
            block_hash: ledger::types::Hash32::from_hex(&self.block_hash).ok()?,
            signatures,
        })
    }

    /// The JSON form of a stored certificate.
    pub fn from_stored(certificate: &StoredCertificate) -> CertificateJson {
        CertificateJson {
            height: certificate.height,
            round: certificate.round,
            block_hash: certificate.block_hash.to_string(),
            signatures: certificate
                .signatures
                .iter()
                .map(|(key, signature)| CommitSignatureJson {
                    validator: key.to_string(),
                    signature: signature.to_string(),
                })
                .collect(),
        }
    }
}

/// `GET /v1/pseudonym/key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PseudonymKeyJson {
    pub key_version: u32,
    /// The service's public key, standard base64 of the 32-byte ristretto255 element.
    pub public_key: String,
    /// `ristretto255-SHA512`, VOPRF mode (RFC 9497).
    pub suite: String,
}

/// `GET /v1/pseudonym/keys`: every pseudonym key the ledger has recorded, oldest first
/// (the last is current).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PseudonymKeysJson {
    pub keys: Vec<PseudonymKeyRecordJson>,
}

/// One recorded pseudonym key and its re-keying progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PseudonymKeyRecordJson {
    pub key_version: u32,
    /// Standard base64 of the 32-byte ristretto255 public key (as `/v1/pseudonym/key`).
    pub public_key: String,
    /// The organisation that runs the service and submits re-keying links.
    pub organisation: String,
    /// The first height the key was current at.
    pub from_height: u64,
    /// Whether every beneficiary known before this key is linked to its new pseudonym;
    /// new beneficiaries are refused until it is.
    pub linked: bool,
    /// Beneficiaries linked under this key so far.
    pub links: u64,
    /// Beneficiaries that needed a link when the key took effect.
    pub beneficiaries: u64,
}

/// The most pseudonyms one `POST /v1/pseudonym/unlinked` answers with.
pub const UNLINKED_PSEUDONYMS_MAX: usize = 10_000;

/// `POST /v1/pseudonym/unlinked` request: where to start (after this pseudonym, hex) and
/// how many at most.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkedRequestJson {
    #[serde(default)]
    pub after: Option<String>,
    pub limit: u32,
}

/// `POST /v1/pseudonym/unlinked` answer: beneficiaries not yet linked under the current
/// key, and where to go on from (`null` at the end).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnlinkedJson {
    pub key_version: u32,
    pub unlinked: Vec<String>,
    pub next: Option<String>,
}

/// The most pseudonyms one `POST /v1/beneficiaries/lookup` asks about.
pub const LOOKUP_PSEUDONYMS_MAX: usize = 1_000;

/// `POST /v1/beneficiaries/lookup` request: pseudonyms, lowercase or uppercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequestJson {
    pub pseudonyms: Vec<String>,
}

/// `POST /v1/beneficiaries/lookup` answer, in the request's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LookupJson {
    pub beneficiaries: Vec<LookupEntryJson>,
}

/// Whether a pseudonym names a beneficiary, and the pseudonym the ledger knows it by (the
/// same one, or the one a re-keying linked it to); `null` if it names none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LookupEntryJson {
    pub pseudonym: String,
    pub known_as: Option<String>,
}

/// The error body.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a human-readable message.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// A batch of transactions in the binary form (`proto::txbatch`), as the body of
/// `POST /v1/txs` with `Content-Type: application/octet-stream`: bytes, not the array of
/// numbers a `Vec<u8>` would be documented as.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct TxBatchBytes(pub Vec<u8>);

/// A signed transaction as JSON: what `bansos tx --print` outputs. (Documentation only:
/// the node reads `ledger::tx::Transaction`.)
#[derive(ToSchema)]
pub struct SignedTxJson {
    pub body: TxBodyJson,
    /// Ed25519 signature by `body.signer` over the body's canonical encoding, hex.
    #[schema(pattern = "^[0-9a-fA-F]{128}$")]
    pub signature: String,
}

/// What a transaction's signature covers.
#[derive(ToSchema)]
pub struct TxBodyJson {
    /// The network the transaction is meant for (its genesis `chain_id`).
    pub chain_id: String,
    /// The signing key (an organisation's, an agent's or a beneficiary app's): Ed25519,
    /// hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub signer: String,
    /// The signer's next nonce: 0 for its first transaction, then 1, 2, …
    pub nonce: u64,
    pub action: ActionJson,
}

/// One step of the aid lifecycle, tagged by `type` (`declare_budget`, `propose`, …); its
/// other fields are the step's (`bansos tx --print` writes them).
#[derive(ToSchema)]
pub struct ActionJson {
    #[schema(rename = "type")]
    pub kind: String,
}

/// A validator as listed in `/v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidatorJson {
    pub org: String,
    pub public_key: String,
    pub power: u64,
}

/// A governance change (`GET /v1/governance/changes/{id}`): the id is the hash of the
/// transaction that proposed it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangeJson {
    pub id: String,
    /// The change as its transaction carries it (`{"change": "rotate_key", ...}`).
    #[schema(value_type = Object)]
    pub change: serde_json::Value,
    pub activation_height: u64,
    pub proposed_by: String,
    pub proposed_at: u64,
    /// The organisations that approved it, the proposer's included.
    pub approvals: Vec<String>,
    /// `pending`, `activated`, `failed` (with `code` and `message`) or `expired`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One validator set and the height it took effect at.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidatorSetJson {
    pub version: u64,
    pub from_height: u64,
    pub validators: Vec<SetMemberJson>,
}

/// A member of a validator set, with the key it signs checkpoints with.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SetMemberJson {
    pub org: String,
    pub public_key: String,
    pub power: u64,
    /// A C2SP note verifier key.
    pub checkpoint_key: String,
}

/// `GET /v1/validator-sets`: every set the chain has had, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ValidatorSetsJson {
    pub sets: Vec<ValidatorSetJson>,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusJson {
    pub chain_id: String,
    /// The hash of the genesis document this node runs (`bansos node` logs it at start):
    /// nodes of one network show the same.
    pub genesis_hash: String,
    pub node: String,
    /// This node's key (hex): a validator's consensus key, as genesis or a governance
    /// change lists it. A peer relays transactions to the validators due to propose next.
    /// Empty from a node that predates it (2026-12-07): clients read both.
    #[serde(default)]
    pub node_key: String,
    pub role: NodeRoleJson,
    /// Height of the last committed block (0 before the first).
    pub height: u64,
    pub latest_block_hash: String,
    pub latest_block_time: String,
    /// Consensus round at the height being decided (-1 before consensus starts).
    pub round: i64,
    pub log_size: u64,
    /// The validators of the next height (governance changes them at activation heights).
    pub validators: Vec<ValidatorJson>,
    /// The version of that set: 0 for genesis's, one more for each change.
    pub validator_set_version: u64,
    /// The first height that set decides.
    pub validator_set_from: u64,
    /// Peer ids of connected peers.
    pub peers: Vec<String>,
    pub mempool_txs: usize,
    pub mempool_bytes: usize,
    /// The transparency log's origin (the first line of its checkpoints).
    pub log_origin: String,
    /// The log size of the latest checkpoint signed by a quorum of validators.
    pub checkpoint_size: Option<u64>,
    /// Validly signed checkpoints seen that conflict with this node's log (evidence of a
    /// validator signing a false head); the first ones are in `checkpoint_conflicts`.
    pub checkpoint_conflicts_seen: u64,
    /// The first conflicting checkpoints, as signed notes.
    pub checkpoint_conflicts: Vec<String>,
}

/// A block header with its hash.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct HeaderJson {
    pub chain_id: String,
    pub height: u64,
    pub hash: String,
    pub prev_hash: String,
    pub time: String,
    pub time_ms: u64,
    pub proposer: String,
    pub tx_count: u32,
    pub tx_root: String,
    pub log_size: u64,
    pub log_root: String,
    pub state_root: String,
    /// The totals tree's root (SHA-256, hex): see `GET /v1/totals`.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub totals_root: String,
}

/// A committed transaction with its hash.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TxJson {
    pub hash: String,
    #[schema(value_type = Object)]
    pub tx: Transaction,
}

/// One precommit signature.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CommitSignatureJson {
    pub validator: String,
    pub signature: String,
}

/// A commit certificate.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CertificateJson {
    pub height: u64,
    pub round: u32,
    pub block_hash: String,
    pub signatures: Vec<CommitSignatureJson>,
}

/// `GET /v1/blocks/{height}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockJson {
    pub header: HeaderJson,
    /// Full transactions, or only hashes with `?txs=hashes`.
    pub txs: Vec<TxJson>,
    pub tx_hashes: Vec<String>,
    pub certificate: Option<CertificateJson>,
}

/// `POST /v1/tx` accepted.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SubmittedJson {
    pub hash: String,
    pub status: SubmitStatus,
}

/// One result of `POST /v1/txs`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchItemJson {
    pub hash: Option<String>,
    pub status: Option<SubmitStatus>,
    pub error: Option<ErrorDetail>,
}

/// `POST /v1/txs`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchJson {
    pub results: Vec<BatchItemJson>,
}

/// `GET /v1/tx/{hash}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TxStatusJson {
    pub hash: String,
    pub status: TxState,
    pub height: Option<u64>,
    pub index: Option<u32>,
    pub log_index: Option<u64>,
    pub error: Option<ErrorDetail>,
}

/// `GET /v1/keys/{public_key}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyJson {
    pub public_key: String,
    /// Whether the ledger knows this key (genesis or a registered agent).
    pub known: bool,
    /// The next nonce in committed state.
    pub next_nonce: u64,
    /// The next nonce counting this node's pending transactions: what to sign next.
    pub pending_next_nonce: u64,
}

/// `GET /v1/proof/inclusion?index=I&size=S`: the RFC 6962 / 9162 inclusion proof of leaf
/// `index` in the log of `size` leaves. Hashes are standard base64 of SHA-256 digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProofJson {
    pub index: u64,
    pub size: u64,
    /// SHA-256(0x00 ‖ leaf bytes).
    #[schema(pattern = "^[A-Za-z0-9+/]{43}=$")]
    pub leaf_hash: String,
    /// Sibling hashes from the leaf up.
    pub path: Vec<String>,
    /// The log root at `size`.
    #[schema(pattern = "^[A-Za-z0-9+/]{43}=$")]
    pub root: String,
}

/// `GET /v1/track/{code}`: a tracking code holder's timeline, each step with its inclusion
/// proof against the checkpoint served with it. Never a pseudonym or a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrackJson {
    /// The program the code belongs to.
    pub program: String,
    pub steps: Vec<TrackStepJson>,
    /// The latest checkpoint signed by a quorum (C2SP signed note), which every `path`
    /// leads to; `None` before the first.
    pub checkpoint: Option<String>,
    /// Its log size.
    pub checkpoint_size: Option<u64>,
}

/// One step of a timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrackStepJson {
    /// The transaction's index in the log.
    pub log_index: u64,
    pub height: u64,
    /// RFC 3339, UTC: the block's time.
    pub time: String,
    /// `proposed`, `identity_checked`, `verified`, `rejected`, `enrolled`, `allocated`,
    /// `disbursed`, `received`, `not_received`, `objection_filed`, `status_changed`.
    pub kind: String,
    pub program: Option<String>,
    pub period: Option<String>,
    /// Rupiah.
    pub amount: Option<u64>,
    pub outcome: Option<String>,
    /// The institution that signed the step (its name; an agent's key is never shown).
    pub institution: String,
    /// SHA-256(0x00 ‖ leaf), base64.
    #[schema(pattern = "^[A-Za-z0-9+/]{43}=$")]
    pub leaf_hash: String,
    /// The inclusion path to the checkpoint's root, base64; `None` while the step is newer
    /// than the latest checkpoint.
    pub path: Option<Vec<String>>,
}

/// `GET /v1/log/leaf/{index}` (consortium): one leaf of the log, which is a committed
/// transaction's canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LeafJson {
    pub index: u64,
    /// The leaf bytes, standard base64.
    pub leaf: String,
    /// The transaction's hash (BLAKE3 of the leaf bytes), hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub tx_hash: String,
}

/// `GET /v1/proof/consistency?first=A&second=B`: the RFC 6962 / 9162 consistency proof
/// between two sizes of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProofJson {
    pub first: u64,
    pub second: u64,
    pub path: Vec<String>,
    #[schema(pattern = "^[A-Za-z0-9+/]{43}=$")]
    pub first_root: String,
    #[schema(pattern = "^[A-Za-z0-9+/]{43}=$")]
    pub second_root: String,
}

/// The part of a C2SP tlog-tiles path after the level: tile index `index` as zero-padded
/// 3-digit groups, all but the last prefixed with `x` (1234067 → `x001/x234/067`), then
/// `.p/<width>` for a partial tile.
pub fn tile_index_path(index: u64, partial_width: Option<u16>) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    let mut path = groups.join("/");
    if let Some(width) = partial_width {
        path.push_str(&format!(".p/{width}"));
    }
    path
}

/// Parses what [`tile_index_path`] writes, accepting only that one spelling: the tile index
/// and, for a partial tile, its width (1 to 255).
pub fn parse_tile_index_path(path: &str) -> Option<(u64, Option<u16>)> {
    let (groups, width) = match path.split_once(".p/") {
        Some((groups, width)) => {
            let parsed: u16 = width.parse().ok()?;
            if !(1..=255).contains(&parsed) || parsed.to_string() != width {
                return None;
            }
            (groups, Some(parsed))
        }
        None => (path, None),
    };
    let parts: Vec<&str> = groups.split('/').collect();
    let (last, leading) = parts.split_last()?;
    let mut index: u64 = 0;
    for part in leading
        .iter()
        .map(|p| p.strip_prefix('x'))
        .chain([Some(*last)])
    {
        let digits = part?;
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let group: u64 = digits.parse().ok()?;
        index = index.checked_mul(1000)?.checked_add(group)?;
    }
    // Leading zero groups would be a second spelling of a smaller index.
    (tile_index_path(index, width) == path).then_some((index, width))
}

#[cfg(test)]
mod tile_path_tests {
    use super::*;

    #[test]
    fn tile_paths_follow_the_spec_and_parse_back_in_one_spelling_only() {
        assert_eq!(tile_index_path(1234067, None), "x001/x234/067");
        assert_eq!(tile_index_path(0, Some(17)), "000.p/17");
        assert_eq!(tile_index_path(1000, None), "x001/000");
        for (index, width) in [
            (0, None),
            (5, Some(1)),
            (999, None),
            (1000, Some(255)),
            (u64::MAX, None),
        ] {
            let path = tile_index_path(index, width);
            assert_eq!(parse_tile_index_path(&path), Some((index, width)), "{path}");
        }
        for bad in [
            "1",
            "0001",
            "x000/001",
            "001/x001",
            "000.p/0",
            "000.p/256",
            "000.p/017",
            "x001",
            "abc",
            "000/",
            "",
        ] {
            assert_eq!(parse_tile_index_path(bad), None, "{bad}");
        }
    }
}

/// `POST /v1/checkpoint/signatures`: what became of the pushed signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointReceivedJson {
    /// `merged` (into this node's note at that size), `pending` (this node's log has not
    /// reached that size yet) or `conflict` (validly signed, but another root than this
    /// node's log at that size: kept as evidence).
    #[schema(pattern = "^(merged|pending|conflict)$")]
    pub status: String,
}

/// Totals of a region (or a program period) under one program period: one beneficiary per
/// allocation; amounts in Rupiah.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotalsValueJson {
    pub beneficiaries: u64,
    pub allocated: u64,
    pub disbursed: u64,
    /// Disbursed and confirmed received (the beneficiary's own word prevails).
    pub confirmed: u64,
}

impl From<ledger::totals::Totals> for TotalsValueJson {
    fn from(t: ledger::totals::Totals) -> Self {
        TotalsValueJson {
            beneficiaries: t.beneficiaries,
            allocated: t.allocated,
            disbursed: t.disbursed,
            confirmed: t.confirmed,
        }
    }
}

impl From<TotalsValueJson> for ledger::totals::Totals {
    fn from(t: TotalsValueJson) -> Self {
        ledger::totals::Totals {
            beneficiaries: t.beneficiaries,
            allocated: t.allocated,
            disbursed: t.disbursed,
            confirmed: t.confirmed,
        }
    }
}

/// One node of the totals tree with everything its SHA-256 hash is computed from
/// (`ledger::totals`): a verifier hashes it and finds the hash among its parent's
/// `children`, up to the root that a signed checkpoint names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotalsNodeJson {
    /// The program, the period or the full region code; empty for the root.
    pub segment: String,
    pub sums: TotalsValueJson,
    /// Hex: SHA-256 over the totals of the records kept at this region itself (not under a
    /// child) and their salt; the node's hash commits to this, not to the totals.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub own_commitment: String,
    /// The totals of the records at this region itself, given only where they are published
    /// (the proven node's own row); `own_commitment` is SHA-256 of them with `salt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own: Option<TotalsValueJson>,
    /// Hex: blinds `own_commitment` (derived from the records); given with `own`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub salt: Option<String>,
    /// The children's hashes, hex, in segment order.
    pub children: Vec<String>,
}

impl TotalsNodeJson {
    pub fn from_proof_node(node: &ledger::totals::ProofNode) -> TotalsNodeJson {
        TotalsNodeJson {
            segment: node.segment.clone(),
            sums: node.sums.into(),
            own_commitment: node.own_commitment.to_hex(),
            own: node.opened.map(|(own, _)| own.into()),
            salt: node.opened.map(|(_, salt)| salt.to_hex()),
            children: node.children.iter().map(|h| h.to_hex()).collect(),
        }
    }

    /// The node back, for verification (`None` if a hash is malformed).
    pub fn to_proof_node(&self) -> Option<ledger::totals::ProofNode> {
        use ledger::types::Hash32;
        Some(ledger::totals::ProofNode {
            segment: self.segment.clone(),
            sums: self.sums.into(),
            own_commitment: Hash32::from_hex(&self.own_commitment).ok()?,
            opened: match (&self.own, &self.salt) {
                (Some(own), Some(salt)) => Some(((*own).into(), Hash32::from_hex(salt).ok()?)),
                (None, None) => None,
                _ => return None,
            },
            children: self
                .children
                .iter()
                .map(|h| Hash32::from_hex(h).ok())
                .collect::<Option<Vec<_>>>()?,
        })
    }
}

/// One row of a totals table: a sub-region, or the records kept at the region itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegionTotalsJson {
    /// The region code.
    pub region: String,
    /// Its name in genesis (the code when it has none).
    pub name: String,
    /// `None` when suppressed: under 10 beneficiaries, or derivable from published totals.
    pub totals: Option<TotalsValueJson>,
    /// True for the row of records kept at the region itself rather than a sub-region.
    pub at_region_itself: bool,
}

/// `GET /v1/totals/{program}/{period}[/{region}]`: a region's totals under a program period
/// and its sub-regions' (k = 10 suppression, complementary included), with the tree nodes
/// that prove each published total against `checkpoint`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TotalsJson {
    pub program: String,
    pub period: String,
    /// `None` for the whole program period (the rows are provinces).
    pub region: Option<String>,
    pub name: String,
    /// `None` when the region itself is suppressed.
    pub totals: Option<TotalsValueJson>,
    pub rows: Vec<RegionTotalsJson>,
    /// Cells under this many beneficiaries are never published.
    pub threshold: u64,
    /// The node first, the root last; empty when the region is suppressed.
    pub proof: Vec<TotalsNodeJson>,
    /// The node of each published sub-region row, in row order (`None` for suppressed
    /// rows and the row of the region itself).
    pub row_nodes: Vec<Option<TotalsNodeJson>>,
    /// The region's anomaly counts (all programs and periods); `None` when the region's
    /// totals are suppressed.
    pub anomalies: Option<AnomalyCountsJson>,
    /// How long payment takes, open objections and payments per month, for this program
    /// period and region; `None` when the region's totals are suppressed. Computed by the
    /// node from its committed records (not provable by the totals tree).
    #[serde(default)]
    pub stats: Option<RegionStatsJson>,
    /// A checkpoint signed by a quorum whose `bansos-totals` line is the root `proof` ends
    /// at; `None` while the latest totals are not yet signed (ask again in a moment).
    pub checkpoint: Option<String>,
    pub checkpoint_size: Option<u64>,
}

/// Statistics of a region under one program period, beside its provable totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegionStatsJson {
    /// The height the node's pass over the records started at.
    pub computed_at_height: u64,
    /// The median of the whole days from allocation to payment over the paid allocations;
    /// `None` when fewer than ten were paid.
    pub median_days_to_payment: Option<u32>,
    /// Objections not yet resolved about this program period's allocations here, or about
    /// the beneficiaries themselves.
    pub objections_open: u64,
    /// Payments per calendar month (UTC), oldest first; a month's figures are `None` when
    /// suppressed (under ten payments, or complementary).
    pub months: Vec<MonthJson>,
}

/// Payments in one calendar month.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MonthJson {
    /// `YYYY-MM`.
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}$")]
    pub month: String,
    pub payments: Option<u64>,
    /// Rupiah paid.
    pub disbursed: Option<u64>,
}

/// Anomaly counts of a region, across programs and periods, at the latest block's time:
/// never a list of people.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AnomalyCountsJson {
    /// Allocated more than 30 days ago and not paid.
    pub allocated_not_disbursed: u64,
    /// Paid more than 30 days ago and no confirmation of receipt.
    pub disbursed_not_confirmed: u64,
    /// The beneficiary or their pendamping says the money did not arrive.
    pub reported_not_received: u64,
    /// Objections still open after their 14-day deadline.
    pub objections_overdue: u64,
    /// Payments recorded after the beneficiary's death was recorded.
    pub paid_after_death: u64,
    /// Beneficiaries whose payment account reference is also used for someone else.
    pub shared_account: u64,
}

/// A program and the periods it has totals for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProgramPeriodsJson {
    pub program: String,
    pub name: String,
    pub periods: Vec<String>,
}

/// What one block did, as the public may see it: who proposed and certified it, its
/// transactions counted by step and by regency, and the amounts it moved. Never a person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockSummaryJson {
    pub height: u64,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The proposing validator's institution.
    pub proposer: String,
    /// The institutions whose validators signed the commit certificate.
    pub signers: Vec<String>,
    pub tx_count: u32,
    /// Step name (`propose`, `allocate`, …) → transactions.
    pub by_type: std::collections::BTreeMap<String, u64>,
    /// Regency code → transactions (steps without a region are not counted here).
    pub by_regency: std::collections::BTreeMap<String, u64>,
    /// Rupiah allocated in the block.
    pub allocated: u64,
    /// Rupiah disbursed in the block.
    pub disbursed: u64,
}
