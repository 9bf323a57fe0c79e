//! `bansos tx STEP ...`: signs one lifecycle step with an institution's (or agent's) key and
//! submits it, or prints the signed JSON that `POST /v1/tx` takes.
//!
//! Personal data stays on the operator's machine: a NIK is turned into a pseudonym here with
//! the intake systems' key, an account number into a keyed reference, an evidence document
//! into its hash, and only those reach the ledger.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use ledger::privacy::{self, SecretKey};
use ledger::tx::{
    Action, AgentRole, Attestation, BudgetCeiling, ClaimCode, Consequence, ObjectionSubject,
    PaymentChannel, StatusChange, TxBody, Verification,
};
use ledger::types::{Hash32, PeriodCode, ProgramCode, PublicKey, RegionCode, Rupiah};

use proto::api::SubmitStatus;

use crate::http::{runtime, NodeClient};

/// Options every step takes.
#[derive(Args, Debug)]
pub struct TxCommon {
    /// Key file of the signer (an institution's or agent's key, as `bansos testnet` writes).
    #[arg(long)]
    pub key: PathBuf,
    /// The node to submit to (and to ask for the chain id and next nonce).
    #[arg(long, default_value = "http://127.0.0.1:8701")]
    pub node: String,
    /// Print the signed transaction as JSON instead of submitting it.
    #[arg(long)]
    print: bool,
    /// Nonce to sign with (default: the signer's next nonce, asked from the node).
    #[arg(long)]
    nonce: Option<u64>,
    /// Chain id to sign for (default: asked from the node).
    #[arg(long)]
    chain_id: Option<String>,
    /// Return once the node has accepted the transaction, without waiting for it to be
    /// committed (or refused by block execution).
    #[arg(long)]
    no_wait: bool,
}

/// How long `bansos tx` waits for its transaction to be committed.
pub const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Who a step is about: a pseudonym, or a NIK turned into one locally.
#[derive(Args, Debug)]
pub struct BeneficiaryArg {
    /// The beneficiary's pseudonym (64 hex digits).
    #[arg(long, conflicts_with = "nik")]
    beneficiary: Option<String>,
    /// The beneficiary's NIK: turned into the pseudonym with the pseudonym service
    /// (blinded, so the service never sees it) or a local key; never sent.
    #[arg(long)]
    nik: Option<String>,
    /// The pseudonym service (the identity authority's node URL), with --nik; its
    /// requests are signed with --key.
    #[arg(long, requires = "nik", conflicts_with = "pseudonym_key")]
    pseudonym_service: Option<String>,
    /// The service's published public key (base64) to hold it to: an answer under any
    /// other key is refused.
    #[arg(long, requires = "pseudonym_service")]
    pseudonym_service_key: Option<String>,
    /// Instead of the service: the intake systems' shared pseudonym key file (with --nik).
    #[arg(long, requires = "nik")]
    pseudonym_key: Option<PathBuf>,
}

impl BeneficiaryArg {
    fn pseudonym(&self) -> anyhow::Result<Hash32> {
        match (&self.beneficiary, &self.nik, &self.pseudonym_key) {
            (Some(hex), _, _) => hash_arg(hex, "--beneficiary"),
            (None, Some(nik), Some(key)) => {
                let secret: SecretKey = genesis::testnet::read_secret(key)?;
                Ok(privacy::pseudonym(&secret, &checked_nik(nik)?))
            }
            _ => bail!("give --beneficiary PSEUDONYM, or --nik NIK with --pseudonym-service URL (or --pseudonym-key FILE)"),
        }
    }

    /// Asks the pseudonym service for `--nik`'s pseudonym, when it is to be used; the
    /// NIK is then replaced by it.
    fn resolve_with_service(&mut self, common: &TxCommon) -> anyhow::Result<()> {
        let (Some(nik), Some(url)) = (&self.nik, &self.pseudonym_service) else {
            return Ok(());
        };
        let signer = genesis::testnet::read_key(&common.key)?;
        let niks = [checked_nik(nik)?];
        let pinned = self.pseudonym_service_key.as_deref();
        let found = runtime()?.block_on(async {
            crate::pseudonym::PseudonymClient::connect(url, signer, pinned, &common.node)
                .await?
                .pseudonyms(&niks)
                .await
        })?;
        let pseudonym = found.first().context("the service answered no pseudonym")?;
        self.beneficiary = Some(pseudonym.to_hex());
        self.nik = None;
        Ok(())
    }
}

/// A NIK checked for its shape (16 digits, a province code, a birth date), as `bansos
/// import` checks it: a mistyped one would otherwise become the pseudonym of nobody.
fn checked_nik(nik: &str) -> anyhow::Result<String> {
    crate::import::rows::normalise_nik(nik).map_err(|e| anyhow::anyhow!("--nik: {e}"))
}

impl TxStep {
    /// The step's beneficiary argument (if it has one) and its common options.
    fn beneficiary_mut(&mut self) -> Option<(&mut BeneficiaryArg, &TxCommon)> {
        match self {
            TxStep::Propose { who, common, .. }
            | TxStep::CheckIdentity { who, common, .. }
            | TxStep::VerifyEligibility { who, common, .. }
            | TxStep::Enrol { who, common, .. }
            | TxStep::Allocate { who, common, .. }
            | TxStep::FileObjection { who, common, .. }
            | TxStep::ChangeStatus { who, common, .. } => Some((who, common)),
            _ => None,
        }
    }
}

/// Evidence: a hash, or a file hashed locally.
#[derive(Args, Debug)]
pub struct EvidenceArg {
    /// BLAKE3 hash of the evidence document (64 hex digits).
    #[arg(long, conflicts_with = "evidence")]
    evidence_hash: Option<String>,
    /// The evidence document; only its BLAKE3 hash is sent.
    #[arg(long)]
    evidence: Option<PathBuf>,
}

impl EvidenceArg {
    fn hash(&self) -> anyhow::Result<Hash32> {
        match (&self.evidence_hash, &self.evidence) {
            (Some(hex), _) => hash_arg(hex, "--evidence-hash"),
            (None, Some(path)) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                Ok(Hash32::digest(&bytes))
            }
            (None, None) => bail!("give --evidence-hash HASH or --evidence FILE"),
        }
    }
}

/// The lifecycle steps (DESIGN §3), one subcommand each.
#[derive(Subcommand, Debug)]
pub enum TxStep {
    /// Kemensos: declare (or revise) a program's budget for a period, per region.
    DeclareBudget {
        #[arg(long)]
        program: String,
        #[arg(long)]
        period: String,
        /// REGION=AMOUNT in rupiah; repeat per region.
        #[arg(long = "ceiling", required = true)]
        ceilings: Vec<String>,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Pemda / pendamping: propose a household for aid.
    Propose {
        #[command(flatten)]
        who: BeneficiaryArg,
        /// Village code, like 35.10.01.2001.
        #[arg(long)]
        region: String,
        #[arg(long)]
        household_size: u8,
        /// Welfare decile from DTKS/DTSEN (1 = poorest).
        #[arg(long)]
        welfare_decile: u8,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Dukcapil: record the identity check of a proposed beneficiary.
    CheckIdentity {
        #[command(flatten)]
        who: BeneficiaryArg,
        #[arg(long, action = clap::ArgAction::Set)]
        passed: bool,
        #[command(flatten)]
        evidence: EvidenceArg,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Pemda / Kemensos: record the eligibility verification (verified, or rejected with a
    /// reason code).
    VerifyEligibility {
        #[command(flatten)]
        who: BeneficiaryArg,
        /// Reject with this reason code instead of verifying.
        #[arg(long)]
        reject_reason: Option<u16>,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Kemensos: enrol a verified beneficiary in a program; prints the tracking code.
    Enrol {
        #[command(flatten)]
        who: BeneficiaryArg,
        #[arg(long)]
        program: String,
        /// The citizen's tracking code (BNS- and 21 letters and digits, the last a check); a new
        /// one is made if absent.
        #[arg(long)]
        tracking_code: Option<String>,
        /// The beneficiary's own app key (hex), to let them confirm receipt themselves.
        #[arg(long)]
        beneficiary_key: Option<String>,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Kemensos: allocate a period's amount to an enrolled beneficiary.
    Allocate {
        #[command(flatten)]
        who: BeneficiaryArg,
        #[arg(long)]
        program: String,
        #[arg(long)]
        period: String,
        /// Rupiah.
        #[arg(long)]
        amount: u64,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Bank / PT Pos: record a disbursement of an allocation.
    Disburse {
        /// Allocation id (64 hex digits).
        #[arg(long)]
        allocation: String,
        #[arg(long)]
        amount: u64,
        /// bank_account, pos_cash or agent.
        #[arg(long)]
        channel: String,
        /// Keyed hash of the account reference (64 hex digits).
        #[arg(long, conflicts_with = "account_number")]
        account_ref_hash: Option<String>,
        /// The account number; hashed locally with --account-key, never sent.
        #[arg(long, requires = "account_key")]
        account_number: Option<String>,
        /// The payer's account-reference key file.
        #[arg(long)]
        account_key: Option<PathBuf>,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Beneficiary / pendamping: confirm whether a disbursement was received.
    ConfirmReceipt {
        #[arg(long)]
        allocation: String,
        #[arg(long, action = clap::ArgAction::Set)]
        received: bool,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Anyone with a key: object to a beneficiary (--beneficiary/--nik) or an allocation.
    FileObjection {
        #[command(flatten)]
        who: BeneficiaryArg,
        /// Object to this allocation instead of a beneficiary.
        #[arg(long)]
        allocation: Option<String>,
        /// not_eligible, deceased, duplicate, not_received, wrong_amount or other.
        #[arg(long)]
        claim: String,
        #[command(flatten)]
        evidence: EvidenceArg,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Pemda (within 14 days) or Kemensos: resolve an objection.
    ResolveObjection {
        #[arg(long)]
        objection: String,
        #[arg(long, action = clap::ArgAction::Set)]
        upheld: bool,
        /// none, suspend_beneficiary or repayment.
        #[arg(long, default_value = "none")]
        consequence: String,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Record a change of a beneficiary's status.
    ChangeStatus {
        #[command(flatten)]
        who: BeneficiaryArg,
        /// deceased, moved, graduated, suspended, reinstated or death_record_corrected (withdraws
        /// a death recorded in error; Dukcapil or Kemensos).
        #[arg(long)]
        status: String,
        /// New region (with --status moved).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Auditor: cosign a checkpoint (log size and root).
    AttestCheckpoint {
        #[arg(long)]
        size: u64,
        #[arg(long)]
        root: String,
        #[command(flatten)]
        common: TxCommon,
    },
    /// Auditor: record a finding about a height.
    AttestFinding {
        #[arg(long)]
        height: u64,
        #[arg(long)]
        severity: u8,
        #[arg(long)]
        finding_code: u16,
        #[command(flatten)]
        evidence: EvidenceArg,
        #[command(flatten)]
        common: TxCommon,
    },
    /// An institution: register an agent key (pendamping, cadre, bank_officer, operator).
    RegisterAgent {
        /// The agent's public key (hex).
        #[arg(long)]
        agent_key: String,
        #[arg(long)]
        role: String,
        /// Region codes the agent may act in; repeat.
        #[arg(long = "region", required = true)]
        regions: Vec<String>,
        #[command(flatten)]
        common: TxCommon,
    },
    /// An institution: revoke an agent key.
    RevokeAgent {
        #[arg(long)]
        agent_key: String,
        #[command(flatten)]
        common: TxCommon,
    },
}

fn hash_arg(text: &str, flag: &str) -> anyhow::Result<Hash32> {
    Hash32::from_hex(text).map_err(|e| anyhow::anyhow!("{flag} {text:?}: {e}"))
}

fn key_arg(text: &str, flag: &str) -> anyhow::Result<PublicKey> {
    PublicKey::from_hex(text).map_err(|e| anyhow::anyhow!("{flag} {text:?}: {e}"))
}

/// Parses a snake_case name into one of the ledger's enums, through its serde names.
fn named<T: serde::de::DeserializeOwned>(
    text: &str,
    flag: &str,
    choices: &str,
) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| anyhow::anyhow!("{flag} {text:?}: expected one of {choices}"))
}

fn code<T>(
    text: &str,
    flag: &str,
    make: fn(String) -> Result<T, ledger::types::CodeError>,
) -> anyhow::Result<T> {
    make(text.to_owned()).map_err(|e| anyhow::anyhow!("{flag} {text:?}: {e}"))
}

/// Builds the action of a step; returns it with the common options and any tracking code
/// made for the citizen.
fn action(step: TxStep) -> anyhow::Result<(Action, TxCommon, Option<String>)> {
    let (action, common) = match step {
        TxStep::Enrol {
            who,
            program,
            tracking_code,
            beneficiary_key,
            common,
        } => {
            let (action, tracking) = enrol(&who, &program, tracking_code, beneficiary_key)?;
            return Ok((action, common, Some(tracking)));
        }
        TxStep::ChangeStatus {
            who,
            status,
            to,
            common,
        } => (change_status(&who, &status, to)?, common),
        TxStep::DeclareBudget { .. } | TxStep::Allocate { .. } => budget_action(step)?,
        TxStep::Propose { .. }
        | TxStep::CheckIdentity { .. }
        | TxStep::VerifyEligibility { .. } => intake_action(step)?,
        TxStep::Disburse { .. } | TxStep::ConfirmReceipt { .. } => payment_action(step)?,
        TxStep::FileObjection { .. } | TxStep::ResolveObjection { .. } => objection_action(step)?,
        TxStep::AttestCheckpoint { .. } | TxStep::AttestFinding { .. } => attest_action(step)?,
        TxStep::RegisterAgent { .. } | TxStep::RevokeAgent { .. } => agent_action(step)?,
    };
    Ok((action, common, None))
}

/// Builds Kemensos's money steps: a program's budget, and a beneficiary's allocation.
fn budget_action(step: TxStep) -> anyhow::Result<(Action, TxCommon)> {
    match step {
        TxStep::DeclareBudget {
            program,
            period,
            ceilings,
            common,
        } => {
            let ceilings = budget_ceilings(&ceilings)?;
            Ok((
                Action::DeclareBudget {
                    program: code(&program, "--program", ProgramCode::new)?,
                    period: code(&period, "--period", PeriodCode::new)?,
                    ceilings,
                },
                common,
            ))
        }
        TxStep::Allocate {
            who,
            program,
            period,
            amount,
            common,
        } => Ok((
            Action::Allocate {
                beneficiary: who.pseudonym()?,
                program: code(&program, "--program", ProgramCode::new)?,
                period: code(&period, "--period", PeriodCode::new)?,
                amount: Rupiah(amount),
            },
            common,
        )),
        _ => unreachable!("`action` routes only budget steps here"),
    }
}

/// Parses `--ceiling REGION=AMOUNT` options into budget ceilings.
fn budget_ceilings(ceilings: &[String]) -> anyhow::Result<Vec<BudgetCeiling>> {
    ceilings
        .iter()
        .map(|c| {
            let (region, amount) = c
                .split_once('=')
                .with_context(|| format!("--ceiling {c:?}: expected REGION=AMOUNT"))?;
            Ok(BudgetCeiling {
                region: code(region, "--ceiling", RegionCode::new)?,
                ceiling: Rupiah(
                    amount
                        .parse()
                        .with_context(|| format!("--ceiling {c:?}: amount is not a number"))?,
                ),
            })
        })
        .collect()
}

/// Builds the intake steps before enrolment: proposal, identity check, eligibility.
fn intake_action(step: TxStep) -> anyhow::Result<(Action, TxCommon)> {
    match step {
        TxStep::Propose {
            who,
            region,
            household_size,
            welfare_decile,
            common,
        } => Ok((
            Action::Propose {
                beneficiary: who.pseudonym()?,
                region: code(&region, "--region", RegionCode::new)?,
                household_size,
                welfare_decile,
            },
            common,
        )),
        TxStep::CheckIdentity {
            who,
            passed,
            evidence,
            common,
        } => Ok((
            Action::CheckIdentity {
                beneficiary: who.pseudonym()?,
                passed,
                evidence_hash: evidence.hash()?,
            },
            common,
        )),
        TxStep::VerifyEligibility {
            who,
            reject_reason,
            common,
        } => Ok((
            Action::VerifyEligibility {
                beneficiary: who.pseudonym()?,
                outcome: match reject_reason {
                    Some(reason_code) => Verification::Rejected { reason_code },
                    None => Verification::Verified,
                },
            },
            common,
        )),
        _ => unreachable!("`action` routes only intake steps here"),
    }
}

/// Builds an enrolment; returns it with the citizen's tracking code (the one given, or a
/// new one).
fn enrol(
    who: &BeneficiaryArg,
    program: &str,
    tracking_code: Option<String>,
    beneficiary_key: Option<String>,
) -> anyhow::Result<(Action, String)> {
    let code_text = match tracking_code {
        Some(text) => privacy::parse_tracking_code(&text)
            .map(|_| privacy::normalise_tracking_code(&text).unwrap_or_default())
            .map_err(|e| anyhow::anyhow!("--tracking-code {text:?}: {e}"))?,
        None => privacy::new_tracking_code(&mut rand::rngs::OsRng),
    };
    let hash = privacy::tracking_code_hash(&code_text)
        .with_context(|| format!("tracking code {code_text:?} does not check"))?;
    let action = Action::Enrol {
        beneficiary: who.pseudonym()?,
        program: code(program, "--program", ProgramCode::new)?,
        tracking_code_hash: hash,
        beneficiary_key: beneficiary_key
            .map(|k| key_arg(&k, "--beneficiary-key"))
            .transpose()?,
    };
    Ok((action, code_text))
}

/// Builds the payer's and the beneficiary's steps: disbursement and receipt.
fn payment_action(step: TxStep) -> anyhow::Result<(Action, TxCommon)> {
    match step {
        TxStep::Disburse {
            allocation,
            amount,
            channel,
            account_ref_hash,
            account_number,
            account_key,
            common,
        } => {
            let account_ref_hash =
                account_reference(account_ref_hash, account_number, account_key)?;
            Ok((
                Action::Disburse {
                    allocation: hash_arg(&allocation, "--allocation")?,
                    amount: Rupiah(amount),
                    channel: named::<PaymentChannel>(
                        &channel,
                        "--channel",
                        "bank_account, pos_cash, agent",
                    )?,
                    account_ref_hash,
                },
                common,
            ))
        }
        TxStep::ConfirmReceipt {
            allocation,
            received,
            common,
        } => Ok((
            Action::ConfirmReceipt {
                allocation: hash_arg(&allocation, "--allocation")?,
                received,
            },
            common,
        )),
        _ => unreachable!("`action` routes only payment steps here"),
    }
}

/// The keyed account reference of a disbursement: given as a hash, or an account number
/// hashed locally with the payer's key.
fn account_reference(
    account_ref_hash: Option<String>,
    account_number: Option<String>,
    account_key: Option<PathBuf>,
) -> anyhow::Result<Hash32> {
    Ok(match (account_ref_hash, account_number, account_key) {
        (Some(hex), _, _) => hash_arg(&hex, "--account-ref-hash")?,
        (None, Some(number), Some(key)) => {
            let secret = genesis::testnet::read_secret(&key)?;
            privacy::account_reference(&secret, &number)
        }
        _ => bail!("give --account-ref-hash HASH, or --account-number with --account-key FILE"),
    })
}

/// Builds the objection steps: filing one, and resolving it.
fn objection_action(step: TxStep) -> anyhow::Result<(Action, TxCommon)> {
    match step {
        TxStep::FileObjection {
            who,
            allocation,
            claim,
            evidence,
            common,
        } => {
            let subject = match allocation {
                Some(id) => ObjectionSubject::Allocation(hash_arg(&id, "--allocation")?),
                None => ObjectionSubject::Beneficiary(who.pseudonym()?),
            };
            Ok((
                Action::FileObjection {
                    subject,
                    claim: named::<ClaimCode>(
                        &claim,
                        "--claim",
                        "not_eligible, deceased, duplicate, not_received, wrong_amount, other",
                    )?,
                    evidence_hash: evidence.hash()?,
                },
                common,
            ))
        }
        TxStep::ResolveObjection {
            objection,
            upheld,
            consequence,
            common,
        } => Ok((
            Action::ResolveObjection {
                objection: hash_arg(&objection, "--objection")?,
                upheld,
                consequence: named::<Consequence>(
                    &consequence,
                    "--consequence",
                    "none, suspend_beneficiary, repayment",
                )?,
            },
            common,
        )),
        _ => unreachable!("`action` routes only objection steps here"),
    }
}

/// Builds a change of a beneficiary's status (`--to` only with `--status moved`).
fn change_status(who: &BeneficiaryArg, status: &str, to: Option<String>) -> anyhow::Result<Action> {
    let change = match (status, to) {
        ("moved", Some(to)) => StatusChange::Moved {
            to: code(&to, "--to", RegionCode::new)?,
        },
        ("moved", None) => bail!("--status moved needs --to REGION"),
        (_, Some(_)) => bail!("--to goes only with --status moved"),
        ("deceased", None) => StatusChange::Deceased,
        ("graduated", None) => StatusChange::Graduated,
        ("suspended", None) => StatusChange::Suspended,
        ("reinstated", None) => StatusChange::Reinstated,
        ("death_record_corrected", None) => StatusChange::DeathRecordCorrected,
        (other, None) => bail!(
            "--status {other:?}: expected deceased, moved, graduated, suspended, reinstated or death_record_corrected"
        ),
    };
    Ok(Action::ChangeStatus {
        beneficiary: who.pseudonym()?,
        change,
    })
}

/// Builds an auditor's attestations: a checkpoint cosignature, or a finding.
fn attest_action(step: TxStep) -> anyhow::Result<(Action, TxCommon)> {
    match step {
        TxStep::AttestCheckpoint { size, root, common } => Ok((
            Action::Attest {
                attestation: Attestation::Checkpoint {
                    size,
                    root: hash_arg(&root, "--root")?,
                },
            },
            common,
        )),
        TxStep::AttestFinding {
            height,
            severity,
            finding_code,
            evidence,
            common,
        } => Ok((
            Action::Attest {
                attestation: Attestation::Finding {
                    height,
                    severity,
                    finding_code,
                    evidence_hash: evidence.hash()?,
                },
            },
            common,
        )),
        _ => unreachable!("`action` routes only attestations here"),
    }
}

/// Builds an institution's agent steps: registering an agent key, or revoking one.
fn agent_action(step: TxStep) -> anyhow::Result<(Action, TxCommon)> {
    match step {
        TxStep::RegisterAgent {
            agent_key,
            role,
            regions,
            common,
        } => Ok((
            Action::RegisterAgent {
                key: key_arg(&agent_key, "--agent-key")?,
                role: named::<AgentRole>(
                    &role,
                    "--role",
                    "pendamping, cadre, bank_officer, operator",
                )?,
                regions: regions
                    .iter()
                    .map(|r| code(r, "--region", RegionCode::new))
                    .collect::<anyhow::Result<_>>()?,
            },
            common,
        )),
        TxStep::RevokeAgent { agent_key, common } => Ok((
            Action::RevokeAgent {
                key: key_arg(&agent_key, "--agent-key")?,
            },
            common,
        )),
        _ => unreachable!("`action` routes only agent steps here"),
    }
}

/// Runs `bansos tx STEP ...`.
pub fn run(mut step: TxStep) -> anyhow::Result<()> {
    if let Some((who, common)) = step.beneficiary_mut() {
        who.resolve_with_service(common)?;
    }
    let (action, common, tracking) = action(step)?;
    submit_action(action, &common, tracking.as_deref())?;
    Ok(())
}

/// Signs `action` with `common`'s key, submits it and waits for its commitment (unless
/// `--print` or `--no-wait`), printing the hash; returns the hash and the height it was
/// committed at (`None` when it did not wait).
pub fn submit_action(
    action: Action,
    common: &TxCommon,
    tracking: Option<&str>,
) -> anyhow::Result<(String, Option<u64>)> {
    let key = genesis::testnet::read_key(&common.key)?;
    let signer = PublicKey(key.verifying_key().to_bytes());
    // Signed with the signer's own key: a key may read its own nonces (consortium data).
    let client = NodeClient::new(&common.node)?.signed_by(key.clone());
    let runtime = runtime()?;
    let chain_id = match common.chain_id.clone() {
        Some(id) => id,
        None => {
            runtime
                .block_on(client.status())
                .context("asking the node for its chain id (or pass --chain-id)")?
                .chain_id
        }
    };
    let nonce = match common.nonce {
        Some(nonce) => nonce,
        None => {
            let info = runtime
                .block_on(client.key(&signer))
                .context("asking the node for the signer's next nonce (or pass --nonce)")?;
            if !info.known {
                bail!("the ledger does not know key {signer}; only member institutions (from genesis or a governance change) and their registered agents may sign, and a rotated-out key signs no more");
            }
            info.pending_next_nonce
        }
    };
    let tx = TxBody {
        chain_id,
        signer,
        nonce,
        action,
    }
    .sign(&key);
    tx.check_form(&tx.body.chain_id)?;
    if let Some(code) = tracking {
        eprintln!("tracking code for the citizen: {code}");
    }
    if common.print {
        println!("{}", serde_json::to_string_pretty(&tx)?);
        return Ok((tx.hash().to_string(), None));
    }
    let submitted = runtime.block_on(client.submit(&tx))?;
    if common.no_wait || submitted.status == SubmitStatus::Committed {
        let status = match submitted.status {
            SubmitStatus::Committed => "committed",
            SubmitStatus::Pending => "pending",
        };
        println!("{} {status}", submitted.hash);
        return Ok((submitted.hash, None));
    }
    // Lifecycle rules that depend on other pending transactions are checked when the block
    // is built; wait for that verdict so the user learns it.
    let heights = runtime.block_on(crate::http::wait_committed(
        &client,
        std::slice::from_ref(&submitted.hash),
        COMMIT_WAIT,
    ))?;
    println!("{} committed at height {}", submitted.hash, heights[0]);
    Ok((submitted.hash, Some(heights[0])))
}
