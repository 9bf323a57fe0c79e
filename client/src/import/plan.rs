//! From checked rows to ledger actions: pseudonyms, keyed account references, allocation
//! ids and tracking codes are made here, on the operator's machine.

use ledger::privacy::{self, SecretKey};
use ledger::state::allocation_id;
use ledger::tx::Action;
use ledger::types::{Hash32, Pseudonym, Rupiah};

use super::rows::{Row, RowFields};

/// A row's identity across runs: a hash of its action without anything random (an
/// enrolment's tracking code), so a re-run finds the row's earlier transaction in the
/// journal even when other rows of the file were fixed or moved.
pub type RowKey = Hash32;

/// Where pseudonyms come from.
pub enum Pseudonyms {
    /// The intake systems' shared key (`privacy::pseudonym`), on this machine.
    Key(SecretKey),
    /// Looked up beforehand from the pseudonym service, by NIK.
    Service(std::collections::HashMap<String, Pseudonym>),
}

impl Pseudonyms {
    fn of(&self, nik: &str) -> Result<Pseudonym, PlanError> {
        match self {
            Pseudonyms::Key(key) => Ok(privacy::pseudonym(key, nik)),
            Pseudonyms::Service(found) => found.get(nik).copied().ok_or(PlanError::NoPseudonym),
        }
    }
}

/// The secrets that turn personal data into what the ledger stores.
pub struct Secrets {
    /// How NIKs become pseudonyms.
    pub pseudonym: Pseudonyms,
    /// The paying bank's key for account references (disbursements only).
    pub account: Option<SecretKey>,
}

/// A row ready to sign.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The row's line in the file.
    pub line: u64,
    pub key: RowKey,
    pub action: Action,
    /// An enrolment's new tracking code (used only if the journal holds none for the row).
    pub tracking_code: Option<String>,
}

/// Why rows cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("a disbursement file needs --account-key (the bank's key for account references)")]
    NoAccountKey,
    #[error("the pseudonym service gave no pseudonym for a row")]
    NoPseudonym,
}

/// Plans every row. Personal data is dropped here: only pseudonyms and keyed hashes go on.
pub fn plan(rows: Vec<Row>, secrets: &Secrets) -> Result<Vec<Planned>, PlanError> {
    rows.into_iter().map(|row| plan_row(row, secrets)).collect()
}

fn plan_row(row: Row, secrets: &Secrets) -> Result<Planned, PlanError> {
    let beneficiary = secrets.pseudonym.of(&row.nik)?;
    let mut tracking_code = None;
    let action = match row.fields {
        RowFields::Propose {
            region,
            household_size,
            welfare_decile,
        } => Action::Propose {
            beneficiary,
            region,
            household_size,
            welfare_decile,
        },
        RowFields::CheckIdentity {
            passed,
            evidence_hash,
        } => Action::CheckIdentity {
            beneficiary,
            passed,
            evidence_hash,
        },
        RowFields::VerifyEligibility { outcome } => Action::VerifyEligibility {
            beneficiary,
            outcome,
        },
        RowFields::Enrol {
            program,
            beneficiary_key,
        } => {
            let code = privacy::new_tracking_code(&mut rand::rngs::OsRng);
            let hash = privacy::tracking_code_hash(&code);
            assert!(hash.is_some(), "a new tracking code always checks");
            tracking_code = Some(code);
            Action::Enrol {
                beneficiary,
                program,
                tracking_code_hash: hash.unwrap_or(Hash32([0; 32])),
                beneficiary_key,
            }
        }
        RowFields::Allocate {
            program,
            period,
            amount,
        } => Action::Allocate {
            beneficiary,
            program,
            period,
            amount: Rupiah(amount),
        },
        RowFields::Disburse {
            program,
            period,
            amount,
            channel,
            account_number,
        } => {
            let account = secrets.account.as_ref().ok_or(PlanError::NoAccountKey)?;
            Action::Disburse {
                allocation: allocation_id(&beneficiary, &program, &period),
                amount: Rupiah(amount),
                channel,
                account_ref_hash: privacy::account_reference(account, &account_number),
            }
        }
    };
    Ok(Planned {
        line: row.line,
        key: row_key(&action),
        action,
        tracking_code,
    })
}

/// The row key of an action: BLAKE3 (derived-key mode) of its canonical bytes, an
/// enrolment's tracking code hash left out.
pub fn row_key(action: &Action) -> RowKey {
    let mut stable = action.clone();
    if let Action::Enrol {
        tracking_code_hash, ..
    } = &mut stable
    {
        *tracking_code_hash = Hash32([0; 32]);
    }
    let bytes = borsh::to_vec(&stable);
    assert!(bytes.is_ok(), "an action always encodes");
    let mut hasher = blake3::Hasher::new_derive_key("bansos-ledger 2026 import row key v1");
    hasher.update(&bytes.unwrap_or_default());
    Hash32(*hasher.finalize().as_bytes())
}

/// Puts an enrolment's tracking code (from the journal, on a re-run) into its action.
pub fn with_tracking_code(action: &Action, code: &str) -> Option<Action> {
    let mut action = action.clone();
    if let Action::Enrol {
        tracking_code_hash, ..
    } = &mut action
    {
        *tracking_code_hash = privacy::tracking_code_hash(code)?;
    }
    Some(action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::rows::{parse_rows, ImportStep};

    fn secrets() -> Secrets {
        Secrets {
            pseudonym: Pseudonyms::Key(SecretKey([1; 32])),
            account: Some(SecretKey([2; 32])),
        }
    }

    #[test]
    fn an_enrolment_keeps_its_row_key_whatever_its_tracking_code() {
        let rows = parse_rows(
            b"nik,program\n3510014501900001,PKH\n",
            ImportStep::Enrol,
            "t.csv",
        )
        .expect("rows");
        let first = plan(rows.clone(), &secrets()).expect("plan");
        let second = plan(rows, &secrets()).expect("plan");
        assert_ne!(first[0].tracking_code, second[0].tracking_code);
        assert_ne!(first[0].action, second[0].action);
        assert_eq!(first[0].key, second[0].key);
        let code = second[0].tracking_code.clone().expect("a code");
        let rebuilt = with_tracking_code(&first[0].action, &code).expect("checks");
        assert_eq!(rebuilt, second[0].action);
    }

    #[test]
    fn no_nik_or_account_number_reaches_the_action() {
        let rows = parse_rows(
            b"nik,program,period,amount,channel,account_number\n3510014501900001,PKH,2026-T1,750000,bank_account,0123-4567-8901\n",
            ImportStep::Disburse,
            "t.csv",
        )
        .expect("rows");
        let planned = plan(rows, &secrets()).expect("plan");
        let text = format!("{:?}", planned[0].action);
        assert!(!text.contains("3510014501900001") && !text.contains("4567"));
        let Action::Disburse { allocation, .. } = &planned[0].action else {
            panic!("a disbursement")
        };
        let pseudonym = privacy::pseudonym(&SecretKey([1; 32]), "3510014501900001");
        let expected = allocation_id(
            &pseudonym,
            &ledger::types::ProgramCode::new("PKH").expect("code"),
            &ledger::types::PeriodCode::new("2026-T1").expect("code"),
        );
        assert_eq!(*allocation, expected);
        let without_key = Secrets {
            pseudonym: Pseudonyms::Key(SecretKey([1; 32])),
            account: None,
        };
        let rows = parse_rows(
            b"nik,program,period,amount,channel,account_number\n3510014501900001,PKH,2026-T1,750000,bank_account,0123-4567-8901\n",
            ImportStep::Disburse,
            "t.csv",
        )
        .expect("rows");
        assert!(matches!(
            plan(rows, &without_key),
            Err(PlanError::NoAccountKey)
        ));
    }
}
