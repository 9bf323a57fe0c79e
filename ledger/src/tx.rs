//! Transactions: one per step of the aid lifecycle, signed by the institution (or agent)
//! that took the step.
//!
//! The signed message is `TX_SIGNING_DOMAIN ‖ borsh(TxBody)`. The body carries the chain id
//! and a per-signer nonce, so a signature is valid on one network only and only once. The
//! transaction hash is BLAKE3 of the canonical bytes of the whole signed transaction, which
//! are also the leaf bytes in the transparency log.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer as _, SigningKey};
use serde::{Deserialize, Serialize};

use crate::error::LedgerError;
use crate::limits::{
    AGENT_REGIONS_MAX, BUDGET_REGIONS_MAX, CHAIN_ID_BYTES_MAX, HOUSEHOLD_SIZE_MAX, TX_BYTES_MAX,
};
use crate::types::{
    AllocationId, Hash32, ObjectionId, PeriodCode, ProgramCode, Pseudonym, PublicKey, RegionCode,
    Rupiah, SignatureBytes, TrackingCodeHash, TxHash,
};

/// Domain separation for transaction signatures: a transaction signature can never be
/// mistaken for a vote, a proposal or a checkpoint signature.
pub const TX_SIGNING_DOMAIN: &[u8] = b"bansos-ledger/tx/v1\0";

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TxBody {
    /// The network this transaction is meant for.
    pub chain_id: String,
    /// The key that signs: an organisation key, a registered agent key or a beneficiary's
    /// app key.
    pub signer: PublicKey,
    /// The signer's next nonce: 0 for its first transaction, then 1, 2, …
    pub nonce: u64,
    /// What the transaction does.
    pub action: Action,
}

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    /// The signed content.
    pub body: TxBody,
    /// Ed25519 signature of `TX_SIGNING_DOMAIN ‖ borsh(body)` by `body.signer`.
    pub signature: SignatureBytes,
}

/// One step of the aid lifecycle (DESIGN §3), or the registration of an agent key.
///
/// The order of the variants is part of the canonical encoding: append new steps at the
/// end, never reorder (the golden-hash test pins this).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Kemensos declares (or revises) a program period's budget ceilings per region.
    DeclareBudget {
        program: ProgramCode,
        period: PeriodCode,
        ceilings: Vec<BudgetCeiling>,
    },
    /// A Pemda (or its pendamping, or a self-registration intake at Kemensos) proposes a
    /// pseudonymous beneficiary (usul).
    Propose {
        beneficiary: Pseudonym,
        region: RegionCode,
        household_size: u8,
        welfare_decile: u8,
    },
    /// Dukcapil (or Kemensos for it) attests the outcome of an identity check.
    CheckIdentity {
        beneficiary: Pseudonym,
        passed: bool,
        evidence_hash: Hash32,
    },
    /// Pemda (own region) or BPS verifies or rejects eligibility.
    VerifyEligibility {
        beneficiary: Pseudonym,
        outcome: Verification,
    },
    /// Kemensos enrols a verified beneficiary in a program.
    Enrol {
        beneficiary: Pseudonym,
        program: ProgramCode,
        tracking_code_hash: TrackingCodeHash,
        /// The beneficiary's own app key, which may then confirm receipts.
        beneficiary_key: Option<PublicKey>,
    },
    /// Kemensos allocates an amount to an enrolled beneficiary for one program period.
    Allocate {
        beneficiary: Pseudonym,
        program: ProgramCode,
        period: PeriodCode,
        amount: Rupiah,
    },
    /// The bank or PT Pos assigned to the region pays one allocation.
    Disburse {
        allocation: AllocationId,
        amount: Rupiah,
        channel: PaymentChannel,
        /// A keyed hash of the account or card reference; never the number itself.
        account_ref_hash: Hash32,
    },
    /// The beneficiary (app key) or a pendamping on their behalf confirms receipt or not.
    ConfirmReceipt {
        allocation: AllocationId,
        received: bool,
    },
    /// Any institution files an objection (sanggah) or complaint on a citizen's behalf.
    FileObjection {
        subject: ObjectionSubject,
        claim: ClaimCode,
        evidence_hash: Hash32,
    },
    /// Pemda or Kemensos resolves an objection.
    ResolveObjection {
        objection: ObjectionId,
        upheld: bool,
        consequence: Consequence,
    },
    /// Pemda, Dukcapil or Kemensos records a change in a beneficiary's status.
    ChangeStatus {
        beneficiary: Pseudonym,
        change: StatusChange,
    },
    /// An auditor cosigns a checkpoint of the transparency log or records a finding.
    Attest { attestation: Attestation },
    /// An organisation registers the key of one of its agents.
    RegisterAgent {
        key: PublicKey,
        role: AgentRole,
        regions: Vec<RegionCode>,
    },
    /// An organisation revokes one of its agent keys.
    RevokeAgent { key: PublicKey },
    /// The signer uses up its next nonce without taking a step. A client that signed a
    /// run of transactions (`bansos import`) fills with it the nonce of one the ledger
    /// refused, so that the later ones, already signed and perhaps already relayed, still
    /// go in unchanged, and the refused one can never be included afterwards. Also
    /// cancels a pending transaction by taking its nonce.
    SkipNonce {},
    /// An organisation's own key proposes a change to the consortium, to take effect at
    /// `activation_height` once the genesis rule's organisations approve it. The change's
    /// id is this transaction's hash; the proposer's approval counts.
    ProposeChange {
        change: crate::governance::Change,
        activation_height: u64,
    },
    /// An organisation's own key approves a proposed change.
    ApproveChange { change: TxHash },
    /// The pseudonym service's organisation links beneficiaries to their pseudonyms under a
    /// new pseudonym key (`crate::pseudonyms`); `complete` on the last batch resumes intake.
    LinkPseudonyms {
        key_version: u32,
        links: Vec<crate::pseudonyms::PseudonymLink>,
        complete: bool,
    },
}

/// A budget ceiling for one region (usually a regency or city).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BudgetCeiling {
    pub region: RegionCode,
    pub ceiling: Rupiah,
}

/// The outcome of an eligibility verification.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verification {
    Verified,
    /// Rejected, with a reason code from the verifier's reference list.
    Rejected {
        reason_code: u16,
    },
}

/// How a disbursement was paid.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PaymentChannel {
    /// Credited to the KKS card / bank account.
    BankAccount,
    /// Cash handed over by PT Pos (at the office or at home).
    PosCash,
    /// Paid through an e-warong / agent.
    Agent,
}

/// What an objection is about.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ObjectionSubject {
    Beneficiary(Pseudonym),
    Allocation(AllocationId),
}

/// The claim an objection makes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ClaimCode {
    /// The beneficiary does not meet the criteria (e.g. is well off).
    NotEligible,
    /// The beneficiary is deceased.
    Deceased,
    /// The same person is registered twice.
    Duplicate,
    /// The aid was not received.
    NotReceived,
    /// The amount received differs from the amount paid.
    WrongAmount,
    /// Anything else, described in the evidence.
    Other,
}

/// What follows from an upheld objection.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Consequence {
    /// Nothing changes in the ledger (e.g. dismissed, or fixed outside it).
    None,
    /// The beneficiary is suspended: no further allocations until reinstated.
    SuspendBeneficiary,
    /// A payment is to be re-issued or corrected by the payer.
    Repayment,
}

/// A change in a beneficiary's status.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StatusChange {
    Deceased,
    /// Moved to another village; the region follows.
    Moved {
        to: RegionCode,
    },
    /// Graduated out of poverty: no further allocations.
    Graduated,
    Suspended,
    /// Back to active after a suspension (or, by the ministry only, a graduation).
    Reinstated,
    /// A death recorded in error is withdrawn (Dukcapil, or Kemensos on its behalf): the
    /// only way back from `deceased`. The wrong record stays in the log.
    DeathRecordCorrected,
}

/// An auditor's attestation.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Attestation {
    /// A cosignature of the log at `size` with `root` (the C2SP tlog-witness idea): the
    /// transaction's own signature is the cosignature.
    Checkpoint { size: u64, root: Hash32 },
    /// A finding about a height, with a severity (1 = note … 4 = critical).
    Finding {
        height: u64,
        severity: u8,
        finding_code: u16,
        evidence_hash: Hash32,
    },
}

/// The role of an agent key registered under an organisation.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AgentRole {
    /// Village social worker: proposals and receipt confirmations on behalf of citizens.
    Pendamping,
    /// Dasa Wisma cadre: proposals only.
    Cadre,
    /// Bank or PT Pos officer: disbursements.
    BankOfficer,
    /// Institution staff: any step the organisation may take, within the agent's regions.
    Operator,
}

impl AgentRole {
    /// The role's name for messages.
    pub fn name(self) -> &'static str {
        match self {
            AgentRole::Pendamping => "pendamping",
            AgentRole::Cadre => "cadre",
            AgentRole::BankOfficer => "bank_officer",
            AgentRole::Operator => "operator",
        }
    }
}

impl Action {
    /// The step's name, as used in messages, the CLI and the explorer.
    pub fn name(&self) -> &'static str {
        match self {
            Action::DeclareBudget { .. } => "declare_budget",
            Action::Propose { .. } => "propose",
            Action::CheckIdentity { .. } => "check_identity",
            Action::VerifyEligibility { .. } => "verify_eligibility",
            Action::Enrol { .. } => "enrol",
            Action::Allocate { .. } => "allocate",
            Action::Disburse { .. } => "disburse",
            Action::ConfirmReceipt { .. } => "confirm_receipt",
            Action::FileObjection { .. } => "file_objection",
            Action::ResolveObjection { .. } => "resolve_objection",
            Action::ChangeStatus { .. } => "change_status",
            Action::Attest { .. } => "attest",
            Action::RegisterAgent { .. } => "register_agent",
            Action::RevokeAgent { .. } => "revoke_agent",
            Action::SkipNonce {} => "skip_nonce",
            Action::ProposeChange { .. } => "propose_change",
            Action::ApproveChange { .. } => "approve_change",
            Action::LinkPseudonyms { .. } => "link_pseudonyms",
        }
    }

    /// Checks what can be checked without state: ranges and list lengths.
    fn check_fields(&self) -> Result<(), LedgerError> {
        let invalid = |message: &str| Err(LedgerError::InvalidField(message.to_owned()));
        match self {
            Action::DeclareBudget { ceilings, .. } => {
                if ceilings.is_empty() || ceilings.len() > BUDGET_REGIONS_MAX {
                    return invalid("ceilings must list 1 to 64 regions");
                }
                let mut regions: Vec<&RegionCode> = ceilings.iter().map(|c| &c.region).collect();
                regions.sort();
                if regions.windows(2).any(|pair| pair[0] == pair[1]) {
                    return invalid("ceilings list a region twice");
                }
            }
            Action::Propose {
                household_size,
                welfare_decile,
                ..
            } => {
                if *household_size == 0 || *household_size > HOUSEHOLD_SIZE_MAX {
                    return invalid("household_size must be 1 to 30");
                }
                if *welfare_decile == 0 || *welfare_decile > 10 {
                    return invalid("welfare_decile must be 1 to 10");
                }
            }
            Action::Allocate { amount, .. } | Action::Disburse { amount, .. } if amount.0 == 0 => {
                return Err(LedgerError::ZeroAmount);
            }
            Action::Attest {
                attestation: Attestation::Finding { severity, .. },
            } if !(1..=4).contains(severity) => {
                return invalid("severity must be 1 to 4");
            }
            Action::RegisterAgent { regions, .. }
                if regions.is_empty() || regions.len() > AGENT_REGIONS_MAX =>
            {
                return invalid("an agent must be scoped to 1 to 32 regions");
            }
            Action::ProposeChange {
                change: crate::governance::Change::RotateKey { old, new, .. },
                ..
            } if old == new => {
                return invalid("a rotated key must differ from the old one");
            }
            Action::LinkPseudonyms {
                links, complete, ..
            } => crate::pseudonyms::check_batch(links, *complete)?,
            _ => {}
        }
        Ok(())
    }
}

impl TxBody {
    /// The exact bytes that are signed.
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::encode::canonical_after(TX_SIGNING_DOMAIN, self)
    }

    /// Signs the body with `key`, which must be the key named as `signer`.
    pub fn sign(self, key: &SigningKey) -> Transaction {
        let signature = key.sign(&self.signing_bytes());
        Transaction {
            body: self,
            signature: SignatureBytes(signature.to_bytes()),
        }
    }
}

impl Transaction {
    /// The canonical bytes: what is hashed, stored, and appended to the log.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::encode::canonical(self)
    }

    /// Decodes canonical bytes, refusing oversized input and trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Transaction, LedgerError> {
        if bytes.len() > TX_BYTES_MAX {
            return Err(LedgerError::TxTooLarge {
                bytes: bytes.len(),
                limit: TX_BYTES_MAX,
            });
        }
        borsh::from_slice(bytes).map_err(|e| LedgerError::MalformedTx(e.to_string()))
    }

    /// The transaction hash: BLAKE3 of the canonical bytes.
    pub fn hash(&self) -> TxHash {
        Hash32::digest(&self.to_bytes())
    }

    /// Checks everything that needs neither state nor signature verification: size, chain
    /// id and field ranges. Returns the canonical encoding, which callers usually need next.
    pub fn check_form(&self, chain_id: &str) -> Result<Vec<u8>, LedgerError> {
        let bytes = self.to_bytes();
        if bytes.len() > TX_BYTES_MAX {
            return Err(LedgerError::TxTooLarge {
                bytes: bytes.len(),
                limit: TX_BYTES_MAX,
            });
        }
        if self.body.chain_id.len() > CHAIN_ID_BYTES_MAX || self.body.chain_id != chain_id {
            return Err(LedgerError::WrongChainId {
                expected: chain_id.to_owned(),
                got: self
                    .body
                    .chain_id
                    .chars()
                    .take(CHAIN_ID_BYTES_MAX)
                    .collect(),
            });
        }
        self.body.action.check_fields()?;
        Ok(bytes)
    }

    /// Verifies the signature alone, by the ledger's one signature rule
    /// ([`crate::signature`]: ZIP-215).
    pub fn verify_signature(&self) -> Result<(), LedgerError> {
        if crate::signature::verify(
            &self.body.signer,
            &self.body.signing_bytes(),
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(LedgerError::BadSignature {
                signer: self.body.signer,
            })
        }
    }
}

/// Verifies many transaction signatures at once (batched: about twice as fast per
/// signature). The verdict on each transaction is exactly [`Transaction::verify_signature`]'s,
/// whatever else is in the batch; the error names the first bad one.
pub fn verify_signatures<'a>(
    txs: impl IntoIterator<Item = &'a Transaction>,
) -> Result<(), (usize, LedgerError)> {
    let txs: Vec<&Transaction> = txs.into_iter().collect();
    let messages: Vec<Vec<u8>> = txs.iter().map(|tx| tx.body.signing_bytes()).collect();
    let items: Vec<(PublicKey, &[u8], SignatureBytes)> = txs
        .iter()
        .zip(&messages)
        .map(|(tx, message)| (tx.body.signer, message.as_slice(), tx.signature))
        .collect();
    crate::signature::verify_all(&items).map_err(|index| {
        (
            index,
            LedgerError::BadSignature {
                signer: txs[index].body.signer,
            },
        )
    })
}
