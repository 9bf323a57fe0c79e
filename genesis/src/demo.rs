//! A synthetic year of aid (DESIGN §10): Banyuwangi and Mataram, PKH and BPNT, every stage
//! from agent registration to receipt, with objections and anomalies, as correctly signed
//! transactions.
//!
//! The data is generated from a seed, so tests, benchmarks and the demo see the same year.
//! It comes in [`DemoBatch`]es: a batch depends only on earlier batches, never on a
//! transaction of its own batch (except a signer's own nonce order), so a loader may submit
//! a batch in any interleaving once the previous batch is committed.
//!
//! Synthetic people have names, NIKs and account numbers so that the intake side is
//! realistic; those stay in [`SyntheticPerson`] and never reach a transaction: the ledger
//! sees keyed pseudonyms and keyed account hashes only (a test checks the whole store).

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use ledger::genesis::Genesis;
use ledger::privacy::{account_reference, new_tracking_code, pseudonym, tracking_code_hash};
use ledger::state::allocation_id;
use ledger::tx::{
    Action, AgentRole, BudgetCeiling, ClaimCode, Consequence, ObjectionSubject, PaymentChannel,
    StatusChange, Transaction, TxBody, Verification,
};
use ledger::types::{Hash32, PeriodCode, ProgramCode, Pseudonym, PublicKey, RegionCode, Rupiah};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::regions::{villages_of, BANYUWANGI, MATARAM};
use crate::testnet::TestnetKeys;
use crate::GenesisError;

/// What to generate.
#[derive(Clone, Debug)]
pub struct DemoParams {
    /// Households proposed during the year.
    pub beneficiaries: usize,
    pub seed: u64,
}

impl Default for DemoParams {
    fn default() -> Self {
        DemoParams {
            beneficiaries: 600,
            seed: 2026,
        }
    }
}

/// Transactions that may be committed together once every earlier batch is committed.
#[derive(Clone, Debug)]
pub struct DemoBatch {
    /// When the step happened in the synthetic year (used as block time when the batch is
    /// applied directly as one block).
    pub time_ms: u64,
    pub label: String,
    pub txs: Vec<Transaction>,
}

/// A tracking code handed to a citizen, for trying the explorer.
#[derive(Clone, Debug)]
pub struct SampleCode {
    pub code: String,
    pub program: String,
    pub region: String,
}

/// A synthetic person: the personal data that stays with the intake systems.
#[derive(Clone, Debug)]
pub struct SyntheticPerson {
    pub name: String,
    pub nik: String,
    pub account_number: String,
    pub pseudonym: Pseudonym,
}

/// The generated year.
#[derive(Clone, Debug)]
pub struct DemoData {
    pub batches: Vec<DemoBatch>,
    pub tracking_codes: Vec<SampleCode>,
    pub people: Vec<SyntheticPerson>,
}

impl DemoData {
    /// The number of transactions.
    pub fn tx_count(&self) -> usize {
        self.batches.iter().map(|b| b.txs.len()).sum()
    }
}

const FIRST_NAMES: &[&str] = &[
    "Siti", "Sri", "Nur", "Dewi", "Wahyuni", "Sumiati", "Suparmi", "Lestari", "Yuliana", "Rohmah",
    "Budi", "Agus", "Slamet", "Joko", "Bambang", "Hadi", "Eko", "Sutrisno", "Ahmad", "Lalu",
    "Baiq", "Ni Made", "I Wayan", "Hairul", "Zainab",
];
const FAMILY_NAMES: &[&str] = &[
    "Rahayu",
    "Wati",
    "Santoso",
    "Susanto",
    "Hidayat",
    "Kurniawan",
    "Setiawan",
    "Handayani",
    "Fitriani",
    "Suryani",
    "Sasak",
    "Mulyadi",
    "Saputra",
    "Rahman",
    "Hasanah",
    "Prasetyo",
];

/// Eligibility rejection reasons (illustrative reference list of the verifiers).
const REJECT_WELFARE_ABOVE_THRESHOLD: u16 = 11;
const REJECT_CIVIL_SERVANT_IN_HOUSEHOLD: u16 = 12;
const REJECT_ADDRESS_NOT_FOUND: u16 = 13;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;
const HOUR_MS: u64 = 60 * 60 * 1000;
const DAYS_BEFORE_MONTH: [u64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/// Signs transactions, keeping each signer's nonce.
struct Signer {
    chain_id: String,
    nonces: BTreeMap<PublicKey, u64>,
}

impl Signer {
    fn sign(&mut self, key: &SigningKey, action: Action) -> Transaction {
        let signer = PublicKey(key.verifying_key().to_bytes());
        let nonce = self.nonces.entry(signer).or_insert(0);
        let body = TxBody {
            chain_id: self.chain_id.clone(),
            signer,
            nonce: *nonce,
            action,
        };
        *nonce += 1;
        body.sign(key)
    }
}

/// One household through the year.
struct Household {
    person: SyntheticPerson,
    village: RegionCode,
    regency: &'static str,
    household_size: u8,
    decile: u8,
    identity_passes: bool,
    rejection: Option<u16>,
    pkh_per_stage: Option<Rupiah>,
    bpnt: bool,
    app_key: Option<SigningKey>,
    /// Set when the household leaves the allocation path (death, suspension, graduation).
    inactive_from_ms: Option<u64>,
}

impl Household {
    fn eligible(&self) -> bool {
        self.identity_passes && self.rejection.is_none()
    }
    fn active_at(&self, time_ms: u64) -> bool {
        self.inactive_from_ms.map(|t| time_ms < t).unwrap_or(true)
    }
}

fn push(batches: &mut Vec<DemoBatch>, time_ms: u64, label: &str, txs: Vec<Transaction>) {
    if !txs.is_empty() {
        batches.push(DemoBatch {
            time_ms,
            label: label.to_owned(),
            txs,
        });
    }
}

fn code<T>(
    text: &str,
    make: fn(String) -> Result<T, ledger::types::CodeError>,
) -> Result<T, GenesisError> {
    make(text.to_owned()).map_err(|e| GenesisError::Invalid(e.to_string()))
}

/// The synthetic year for the network described by `genesis` and `keys`.
pub fn generate(
    genesis: &Genesis,
    keys: &TestnetKeys,
    params: &DemoParams,
) -> Result<DemoData, GenesisError> {
    // Derived from the seed under its own context, so the demo never draws the same keys as
    // a test network generated from the same seed.
    let mut rng = ChaCha20Rng::from_seed(blake3::derive_key(
        "bansos-ledger 2026 demo year v1",
        &params.seed.to_le_bytes(),
    ));
    let start = genesis.genesis_time_ms;
    let at = |month: usize, day: u64, hour: u64| {
        start
            + (DAYS_BEFORE_MONTH[month.saturating_sub(1) % 12] + day.saturating_sub(1)) * DAY_MS
            + hour * HOUR_MS
    };
    let key = |org: &str| {
        keys.org(org).cloned().ok_or_else(|| {
            GenesisError::Invalid(format!("the demo needs the transaction key of {org}"))
        })
    };
    let kemensos = key("kemensos")?;
    let dukcapil = key("dukcapil")?;
    let bps = key("bps")?;
    let pemda = [
        (BANYUWANGI, key("pemda-3510")?),
        (MATARAM, key("pemda-5271")?),
    ];
    let pemda_key = |regency: &str| {
        if regency == BANYUWANGI {
            &pemda[0].1
        } else {
            &pemda[1].1
        }
    };
    let account_secret = |org: &str| {
        ledger::types::OrgId::new(org)
            .ok()
            .and_then(|id| keys.accounts.get(&id).cloned())
            .ok_or_else(|| {
                GenesisError::Invalid(format!("the demo needs the account secret of {org}"))
            })
    };
    let pkh = code("PKH", ProgramCode::new)?;
    let bpnt = code("BPNT", ProgramCode::new)?;

    let mut signer = Signer {
        chain_id: genesis.chain_id.clone(),
        nonces: BTreeMap::new(),
    };
    let mut batches: Vec<DemoBatch> = Vec::new();

    // --- Plan: agents, households and everything decided up front. -------------------------
    // Nothing is signed while planning: transactions are signed phase by phase in time
    // order below, so every signer's nonces rise with time, as they would in real life.
    let banyuwangi_villages = villages_of(&genesis.regions, BANYUWANGI);
    let mataram_villages = villages_of(&genesis.regions, MATARAM);
    if banyuwangi_villages.is_empty() || mataram_villages.is_empty() {
        return Err(GenesisError::Invalid(
            "the demo needs the Banyuwangi and Mataram regions in genesis".into(),
        ));
    }
    let mut pendamping: BTreeMap<RegionCode, (&'static str, SigningKey)> = BTreeMap::new();
    for (regency, villages, count) in [
        (BANYUWANGI, &banyuwangi_villages, 8),
        (MATARAM, &mataram_villages, 3),
    ] {
        let districts: std::collections::BTreeSet<RegionCode> =
            villages.iter().filter_map(RegionCode::parent).collect();
        for district in districts.into_iter().take(count) {
            pendamping.insert(district, (regency, SigningKey::generate(&mut rng)));
        }
    }
    let mut officers: BTreeMap<&str, (&'static str, SigningKey)> = BTreeMap::new();
    for (org, regency) in [
        ("bank-bri", BANYUWANGI),
        ("pos", MATARAM),
        ("bank-bni", MATARAM),
    ] {
        officers.insert(org, (regency, SigningKey::generate(&mut rng)));
    }

    let mut households: Vec<Household> = Vec::with_capacity(params.beneficiaries);
    for index in 0..params.beneficiaries {
        let in_banyuwangi = rng.gen_bool(0.75);
        let (regency, villages) = if in_banyuwangi {
            (BANYUWANGI, &banyuwangi_villages)
        } else {
            (MATARAM, &mataram_villages)
        };
        let village = villages[rng.gen_range(0..villages.len())].clone();
        let name = format!(
            "{} {}",
            FIRST_NAMES[rng.gen_range(0..FIRST_NAMES.len())],
            FAMILY_NAMES[rng.gen_range(0..FAMILY_NAMES.len())]
        );
        let region_digits: String = village
            .as_str()
            .split('.')
            .take(3)
            .collect::<Vec<_>>()
            .concat();
        let nik = format!(
            "{region_digits}{:02}{:02}{:02}{:04}",
            rng.gen_range(1..=28),
            rng.gen_range(1..=12),
            rng.gen_range(40..=99),
            index % 10_000
        );
        let account_number = format!(
            "{:04}{:011}",
            rng.gen_range(1000..9999),
            rng.gen_range(0..99_999_999_999u64)
        );
        let roll: f64 = rng.gen();
        let rejection = if roll < 0.03 {
            Some(REJECT_WELFARE_ABOVE_THRESHOLD)
        } else if roll < 0.05 {
            Some(REJECT_CIVIL_SERVANT_IN_HOUSEHOLD)
        } else if roll < 0.07 {
            Some(REJECT_ADDRESS_NOT_FOUND)
        } else {
            None
        };
        // PKH components per stage (tahap): early childhood Rp750k, elementary Rp225k,
        // junior high Rp375k, elderly or disabled Rp600k; a household has one to three.
        let pkh_per_stage = if rng.gen_bool(0.6) {
            let components = [750_000u64, 225_000, 375_000, 600_000];
            let count = rng.gen_range(1..=3);
            Some(Rupiah(
                (0..count)
                    .map(|_| components[rng.gen_range(0..components.len())])
                    .sum(),
            ))
        } else {
            None
        };
        households.push(Household {
            person: SyntheticPerson {
                name,
                pseudonym: pseudonym(&keys.pseudonym, &nik),
                nik,
                account_number,
            },
            village,
            regency,
            household_size: rng.gen_range(1..=8),
            decile: rng.gen_range(1..=4),
            identity_passes: rng.gen_bool(0.97),
            rejection,
            bpnt: pkh_per_stage.is_none() || rng.gen_bool(0.7),
            pkh_per_stage,
            app_key: if rng.gen_bool(0.35) {
                Some(SigningKey::generate(&mut rng))
            } else {
                None
            },
            inactive_from_ms: None,
        });
    }

    // Status events: deaths in June, graduations in September.
    let death_at = at(6, 10, 3);
    let graduation_at = at(9, 10, 3);
    for household in households.iter_mut().filter(|h| h.eligible()) {
        let roll: f64 = rng.gen();
        if roll < 0.01 {
            household.inactive_from_ms = Some(death_at);
        } else if roll < 0.03 {
            household.inactive_from_ms = Some(graduation_at);
        }
    }

    // Objections in the sanggah period: one upheld by the Dinas (suspension), one dismissed,
    // one left past its 14-day window and decided by the ministry (suspension).
    let objections_filed_at = at(3, 9, 3);
    let objections_resolved_at = at(3, 20, 3);
    let objection_escalated_at = at(4, 10, 3);
    let candidates: Vec<usize> = (0..households.len())
        .filter(|&i| households[i].eligible() && households[i].inactive_from_ms.is_none())
        .collect();
    let mut objection_plans: Vec<(usize, ClaimCode, bool, bool)> = Vec::new();
    for (n, (claim, upheld, escalate)) in [
        (ClaimCode::NotEligible, true, false),
        (ClaimCode::Duplicate, false, false),
        (ClaimCode::NotEligible, true, true),
    ]
    .into_iter()
    .enumerate()
    {
        let Some(&index) = candidates.get((n + 1) * 37 % candidates.len().max(1)) else {
            continue;
        };
        if objection_plans.iter().any(|(i, ..)| *i == index) {
            continue;
        }
        if upheld {
            households[index].inactive_from_ms = Some(if escalate {
                objection_escalated_at
            } else {
                objections_resolved_at
            });
        }
        objection_plans.push((index, claim, upheld, escalate));
    }

    let pkh_periods: Vec<(PeriodCode, usize)> = (1..=4)
        .map(|t| Ok((code(&format!("2026-T{t}"), PeriodCode::new)?, 3 * t - 1)))
        .collect::<Result<_, GenesisError>>()?;
    let bpnt_periods: Vec<(PeriodCode, usize)> = (1..=6)
        .map(|b| Ok((code(&format!("2026-B{b}"), PeriodCode::new)?, 2 * b)))
        .collect::<Result<_, GenesisError>>()?;
    let programs: [(&ProgramCode, &Vec<(PeriodCode, usize)>); 2] =
        [(&pkh, &pkh_periods), (&bpnt, &bpnt_periods)];
    const BPNT_PER_PERIOD: Rupiah = Rupiah(400_000);
    let amount_for = |h: &Household, program: &ProgramCode| {
        if *program == pkh {
            h.pkh_per_stage
        } else if h.bpnt {
            Some(BPNT_PER_PERIOD)
        } else {
            None
        }
    };

    // --- The schedule, in time order. ---------------------------------------------------------
    #[derive(Clone, Copy)]
    enum Phase {
        Agents,
        Budgets,
        Proposals,
        Identity,
        Verification,
        Enrolment,
        ObjectionsFiled,
        ObjectionsResolved,
        ObjectionEscalated,
        Deaths,
        Graduations,
        Allocations(usize, usize),
        Disbursements(usize, usize),
        Receipts(usize, usize),
        Complaints,
        ComplaintResolutions,
    }
    let mut schedule: Vec<(u64, Phase)> = vec![
        (at(1, 2, 2), Phase::Agents),
        (at(1, 5, 2), Phase::Budgets),
        (at(1, 12, 1), Phase::Proposals),
        (at(1, 19, 2), Phase::Identity),
        (at(1, 26, 2), Phase::Verification),
        (at(2, 2, 2), Phase::Enrolment),
        (objections_filed_at, Phase::ObjectionsFiled),
        (objections_resolved_at, Phase::ObjectionsResolved),
        (objection_escalated_at, Phase::ObjectionEscalated),
        (death_at, Phase::Deaths),
        (graduation_at, Phase::Graduations),
        (at(12, 10, 3), Phase::Complaints),
        (at(12, 17, 3), Phase::ComplaintResolutions),
    ];
    for (p, (program, periods)) in programs.iter().enumerate() {
        for (i, (_, month)) in periods.iter().enumerate() {
            let allocate_at = at(*month, if **program == pkh { 3 } else { 15 }, 2);
            schedule.push((allocate_at, Phase::Allocations(p, i)));
            schedule.push((allocate_at + 7 * DAY_MS, Phase::Disbursements(p, i)));
            schedule.push((allocate_at + 10 * DAY_MS, Phase::Receipts(p, i)));
        }
    }
    schedule.sort_by_key(|(time, _)| *time);

    let evidence = |rng: &mut ChaCha20Rng| {
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes);
        Hash32(bytes)
    };
    let mut tracking_codes = Vec::new();
    let mut filed_objections: Vec<(usize, Hash32, bool, bool)> = Vec::new();
    let mut allocated: BTreeMap<(usize, usize), Vec<(usize, Hash32, Rupiah)>> = BTreeMap::new();
    let mut paid: BTreeMap<(usize, usize), Vec<(usize, Hash32)>> = BTreeMap::new();
    let mut receipts_not_received: Vec<(usize, Hash32)> = Vec::new();
    let mut short_payments: Vec<(usize, Hash32)> = Vec::new();
    let mut complaint_resolutions: Vec<(&'static str, Action)> = Vec::new();

    for (time_ms, phase) in schedule {
        let mut txs = Vec::new();
        let label: String = match phase {
            Phase::Agents => {
                for (district, (regency, agent)) in &pendamping {
                    let action = Action::RegisterAgent {
                        key: PublicKey(agent.verifying_key().to_bytes()),
                        role: AgentRole::Pendamping,
                        regions: vec![district.clone()],
                    };
                    txs.push(signer.sign(pemda_key(regency), action));
                }
                for (org, (regency, agent)) in &officers {
                    let action = Action::RegisterAgent {
                        key: PublicKey(agent.verifying_key().to_bytes()),
                        role: AgentRole::BankOfficer,
                        regions: vec![code(regency, RegionCode::new)?],
                    };
                    txs.push(signer.sign(&key(org)?, action));
                }
                "agent keys registered".into()
            }
            Phase::Budgets => {
                for (program, periods) in programs {
                    for (period, _) in periods.iter() {
                        let mut ceilings = Vec::new();
                        for regency in [BANYUWANGI, MATARAM] {
                            let planned: u64 = households
                                .iter()
                                .filter(|h| h.eligible() && h.regency == regency)
                                .filter_map(|h| amount_for(h, program))
                                .map(|r| r.0)
                                .sum();
                            // Five percent headroom, rounded up to Rp10 million, as a budget line would be.
                            let ceiling =
                                (planned + planned / 20).div_ceil(10_000_000) * 10_000_000;
                            ceilings.push(BudgetCeiling {
                                region: code(regency, RegionCode::new)?,
                                ceiling: Rupiah(ceiling.max(10_000_000)),
                            });
                        }
                        txs.push(signer.sign(
                            &kemensos,
                            Action::DeclareBudget {
                                program: program.clone(),
                                period: period.clone(),
                                ceilings,
                            },
                        ));
                    }
                }
                "budgets declared".into()
            }
            Phase::Proposals => {
                for (index, h) in households.iter().enumerate() {
                    let action = Action::Propose {
                        beneficiary: h.person.pseudonym,
                        region: h.village.clone(),
                        household_size: h.household_size,
                        welfare_decile: h.decile,
                    };
                    let agent = h
                        .village
                        .parent()
                        .and_then(|d| pendamping.get(&d))
                        .map(|(_, k)| k);
                    // One in ten registers through the ministry's self-registration intake;
                    // otherwise the district's pendamping (where there is one) or the Dinas.
                    let proposer = if index % 10 == 0 {
                        &kemensos
                    } else {
                        agent.unwrap_or(pemda_key(h.regency))
                    };
                    txs.push(signer.sign(proposer, action));
                }
                "proposals (usul)".into()
            }
            Phase::Identity => {
                for h in &households {
                    txs.push(signer.sign(
                        &dukcapil,
                        Action::CheckIdentity {
                            beneficiary: h.person.pseudonym,
                            passed: h.identity_passes,
                            evidence_hash: evidence(&mut rng),
                        },
                    ));
                }
                "identity checks (Dukcapil)".into()
            }
            Phase::Verification => {
                for (index, h) in households
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| h.identity_passes)
                {
                    let outcome = match h.rejection {
                        Some(reason_code) => Verification::Rejected { reason_code },
                        None => Verification::Verified,
                    };
                    let verifier = if index % 7 == 0 {
                        &bps
                    } else {
                        pemda_key(h.regency)
                    };
                    txs.push(signer.sign(
                        verifier,
                        Action::VerifyEligibility {
                            beneficiary: h.person.pseudonym,
                            outcome,
                        },
                    ));
                }
                "eligibility verification (Pemda, BPS)".into()
            }
            Phase::Enrolment => {
                for h in households.iter().filter(|h| h.eligible()) {
                    // The app key is registered once, with the first enrolment.
                    let mut app_key = h
                        .app_key
                        .as_ref()
                        .map(|k| PublicKey(k.verifying_key().to_bytes()));
                    for program in [&pkh, &bpnt] {
                        if amount_for(h, program).is_none() {
                            continue;
                        }
                        let code_text = new_tracking_code(&mut rng);
                        let code_hash = tracking_code_hash(&code_text).ok_or_else(|| {
                            GenesisError::Invalid("generated tracking code does not parse".into())
                        })?;
                        txs.push(signer.sign(
                            &kemensos,
                            Action::Enrol {
                                beneficiary: h.person.pseudonym,
                                program: program.clone(),
                                tracking_code_hash: code_hash,
                                beneficiary_key: app_key.take(),
                            },
                        ));
                        tracking_codes.push(SampleCode {
                            code: code_text,
                            program: program.to_string(),
                            region: h.village.to_string(),
                        });
                    }
                }
                "enrolment (Kemensos)".into()
            }
            Phase::ObjectionsFiled => {
                for (n, (index, claim, upheld, escalate)) in objection_plans.iter().enumerate() {
                    let h = &households[*index];
                    let filer = if n == 1 {
                        &kemensos
                    } else {
                        pemda_key(h.regency)
                    };
                    let filed = signer.sign(
                        filer,
                        Action::FileObjection {
                            subject: ObjectionSubject::Beneficiary(h.person.pseudonym),
                            claim: *claim,
                            evidence_hash: evidence(&mut rng),
                        },
                    );
                    filed_objections.push((*index, filed.hash(), *upheld, *escalate));
                    txs.push(filed);
                }
                "objections filed (sanggah)".into()
            }
            Phase::ObjectionsResolved | Phase::ObjectionEscalated => {
                let escalated = matches!(phase, Phase::ObjectionEscalated);
                for (index, objection, upheld, escalate) in &filed_objections {
                    if *escalate != escalated {
                        continue;
                    }
                    let consequence = if *upheld {
                        Consequence::SuspendBeneficiary
                    } else {
                        Consequence::None
                    };
                    let action = Action::ResolveObjection {
                        objection: *objection,
                        upheld: *upheld,
                        consequence,
                    };
                    // Left unanswered by the Dinas past the 14-day window: the ministry decides.
                    let resolver = if escalated {
                        &kemensos
                    } else {
                        pemda_key(households[*index].regency)
                    };
                    txs.push(signer.sign(resolver, action));
                }
                if escalated {
                    "overdue objection resolved by Kemensos".into()
                } else {
                    "objections resolved by Pemda".into()
                }
            }
            Phase::Deaths | Phase::Graduations => {
                let deaths = matches!(phase, Phase::Deaths);
                for h in households
                    .iter()
                    .filter(|h| h.eligible() && h.inactive_from_ms == Some(time_ms))
                {
                    let tx = if deaths {
                        signer.sign(
                            &dukcapil,
                            Action::ChangeStatus {
                                beneficiary: h.person.pseudonym,
                                change: StatusChange::Deceased,
                            },
                        )
                    } else {
                        signer.sign(
                            pemda_key(h.regency),
                            Action::ChangeStatus {
                                beneficiary: h.person.pseudonym,
                                change: StatusChange::Graduated,
                            },
                        )
                    };
                    txs.push(tx);
                }
                if deaths {
                    "deaths recorded (Dukcapil)".into()
                } else {
                    "graduations recorded (Pemda)".into()
                }
            }
            Phase::Allocations(p, i) => {
                let (program, periods) = programs[p];
                let period = &periods[i].0;
                let mut list = Vec::new();
                for (index, h) in households.iter().enumerate() {
                    let Some(amount) = amount_for(h, program) else {
                        continue;
                    };
                    // Skip anyone who leaves the path before this period is paid.
                    if !h.eligible() || !h.active_at(time_ms + 10 * DAY_MS) {
                        continue;
                    }
                    txs.push(signer.sign(
                        &kemensos,
                        Action::Allocate {
                            beneficiary: h.person.pseudonym,
                            program: program.clone(),
                            period: period.clone(),
                            amount,
                        },
                    ));
                    list.push((
                        index,
                        allocation_id(&h.person.pseudonym, program, period),
                        amount,
                    ));
                }
                allocated.insert((p, i), list);
                format!("{program} {period}: allocations")
            }
            Phase::Disbursements(p, i) => {
                let (program, periods) = programs[p];
                let mut list = Vec::new();
                for (index, allocation, amount) in
                    allocated.get(&(p, i)).cloned().unwrap_or_default()
                {
                    let h = &households[index];
                    let (payer, channel) = match (h.regency, *program == pkh) {
                        (BANYUWANGI, _) => ("bank-bri", PaymentChannel::BankAccount),
                        (_, true) => ("pos", PaymentChannel::PosCash),
                        (_, false) => ("bank-bni", PaymentChannel::BankAccount),
                    };
                    // An anomaly: now and then a payment comes out short.
                    let amount_paid = if rng.gen_bool(0.004) {
                        Rupiah(amount.0 - amount.0 / 4)
                    } else {
                        amount
                    };
                    if amount_paid != amount {
                        short_payments.push((index, allocation));
                    }
                    let officer = officers
                        .get(payer)
                        .map(|(_, k)| k)
                        .ok_or_else(|| GenesisError::Invalid(format!("no officer for {payer}")))?;
                    let account_ref_hash =
                        account_reference(&account_secret(payer)?, &h.person.account_number);
                    txs.push(signer.sign(
                        officer,
                        Action::Disburse {
                            allocation,
                            amount: amount_paid,
                            channel,
                            account_ref_hash,
                        },
                    ));
                    list.push((index, allocation));
                }
                paid.insert((p, i), list);
                format!("{program} {}: disbursements", periods[i].0)
            }
            Phase::Receipts(p, i) => {
                let (program, periods) = programs[p];
                for (index, allocation) in paid.get(&(p, i)).cloned().unwrap_or_default() {
                    let h = &households[index];
                    let received = !rng.gen_bool(0.01);
                    let receipt = Action::ConfirmReceipt {
                        allocation,
                        received,
                    };
                    let agent = h
                        .village
                        .parent()
                        .and_then(|d| pendamping.get(&d))
                        .map(|(_, k)| k);
                    if let Some(app) = h.app_key.as_ref().filter(|_| rng.gen_bool(0.8)) {
                        txs.push(signer.sign(app, receipt));
                    } else if let Some(agent) = agent.filter(|_| rng.gen_bool(0.6)) {
                        txs.push(signer.sign(agent, receipt));
                    } else {
                        continue;
                    }
                    if !received {
                        receipts_not_received.push((index, allocation));
                    }
                }
                format!("{program} {}: receipts", periods[i].0)
            }
            Phase::Complaints => {
                for (claim, cases) in [
                    (ClaimCode::NotReceived, &receipts_not_received),
                    (ClaimCode::WrongAmount, &short_payments),
                ] {
                    for (index, allocation) in cases.iter().take(3) {
                        let regency = households[*index].regency;
                        let filed = signer.sign(
                            pemda_key(regency),
                            Action::FileObjection {
                                subject: ObjectionSubject::Allocation(*allocation),
                                claim,
                                evidence_hash: evidence(&mut rng),
                            },
                        );
                        complaint_resolutions.push((
                            regency,
                            Action::ResolveObjection {
                                objection: filed.hash(),
                                upheld: true,
                                consequence: Consequence::Repayment,
                            },
                        ));
                        txs.push(filed);
                    }
                }
                "payment complaints filed".into()
            }
            Phase::ComplaintResolutions => {
                for (regency, action) in complaint_resolutions.drain(..) {
                    txs.push(signer.sign(pemda_key(regency), action));
                }
                "payment complaints resolved".into()
            }
        };
        push(&mut batches, time_ms, &label, txs);
    }

    for pair in 1..batches.len() {
        // Two phases at the same moment would share a block time: nudge the later one.
        if batches[pair].time_ms <= batches[pair - 1].time_ms {
            batches[pair].time_ms = batches[pair - 1].time_ms + 60_000;
        }
    }
    let people = households.into_iter().map(|h| h.person).collect();
    Ok(DemoData {
        batches,
        tracking_codes,
        people,
    })
}
