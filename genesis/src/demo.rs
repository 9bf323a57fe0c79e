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
//! The pseudonyms are the pseudonym service's (its genesis key, computed directly as the
//! identity authority would: the generator stands in for it), so `bansos tx --nik` and
//! `bansos import` with the service find the demo's people; a network without a service
//! in genesis falls back to the intake systems' shared key.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use ledger::genesis::Genesis;
use ledger::privacy::{
    account_reference, new_tracking_code, pseudonym, tracking_code_hash, SecretKey,
};
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

/// What BPNT pays per period.
const BPNT_PER_PERIOD: Rupiah = Rupiah(400_000);

/// Times in the synthetic year, counted from genesis.
struct Calendar {
    start: u64,
}

impl Calendar {
    /// `hour` o'clock on `day` of `month` (both from 1).
    fn at(&self, month: usize, day: u64, hour: u64) -> u64 {
        self.start
            + (DAYS_BEFORE_MONTH[month.saturating_sub(1) % 12] + day.saturating_sub(1)) * DAY_MS
            + hour * HOUR_MS
    }
    /// Deaths are recorded in June.
    fn death_at(&self) -> u64 {
        self.at(6, 10, 3)
    }
    /// Graduations are recorded in September.
    fn graduation_at(&self) -> u64 {
        self.at(9, 10, 3)
    }
    /// Objections are filed in the sanggah period in March.
    fn objections_filed_at(&self) -> u64 {
        self.at(3, 9, 3)
    }
    /// The Dinas resolves them within the 14-day window.
    fn objections_resolved_at(&self) -> u64 {
        self.at(3, 20, 3)
    }
    /// Past the 14-day window of the objections filed in March.
    fn objection_escalated_at(&self) -> u64 {
        self.at(4, 10, 3)
    }
}

/// The transaction key of the institution `org`.
fn org_key(keys: &TestnetKeys, org: &str) -> Result<SigningKey, GenesisError> {
    keys.org(org).cloned().ok_or_else(|| {
        GenesisError::Invalid(format!("the demo needs the transaction key of {org}"))
    })
}

/// The account-reference key of the payer `org`.
fn account_secret(keys: &TestnetKeys, org: &str) -> Result<SecretKey, GenesisError> {
    ledger::types::OrgId::new(org)
        .ok()
        .and_then(|id| keys.accounts.get(&id).cloned())
        .ok_or_else(|| GenesisError::Invalid(format!("the demo needs the account secret of {org}")))
}

/// Random evidence: the hash of a document that stays off the ledger.
fn evidence(rng: &mut ChaCha20Rng) -> Hash32 {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    Hash32(bytes)
}

/// The institutions whose own keys sign most steps.
struct Institutions {
    kemensos: SigningKey,
    dukcapil: SigningKey,
    bps: SigningKey,
    pemda: [(&'static str, SigningKey); 2],
}

impl Institutions {
    fn new(keys: &TestnetKeys) -> Result<Institutions, GenesisError> {
        Ok(Institutions {
            kemensos: org_key(keys, "kemensos")?,
            dukcapil: org_key(keys, "dukcapil")?,
            bps: org_key(keys, "bps")?,
            pemda: [
                (BANYUWANGI, org_key(keys, "pemda-3510")?),
                (MATARAM, org_key(keys, "pemda-5271")?),
            ],
        })
    }

    /// The Dinas Sosial of `regency`.
    fn pemda_key(&self, regency: &str) -> &SigningKey {
        if regency == BANYUWANGI {
            &self.pemda[0].1
        } else {
            &self.pemda[1].1
        }
    }
}

/// Agents, keyed by district (pendamping) or by payer (bank officers), with their regency.
type Agents<K> = BTreeMap<K, (&'static str, SigningKey)>;

/// Everything decided before anything is signed.
struct Plan {
    pendamping: Agents<RegionCode>,
    officers: Agents<&'static str>,
    households: Vec<Household>,
    /// (household, claim, upheld, escalated) per objection in the sanggah period.
    objections: Vec<(usize, ClaimCode, bool, bool)>,
    pkh: ProgramCode,
    bpnt: ProgramCode,
    /// Each PKH stage (tahap) with the month it is allocated in.
    pkh_periods: Vec<(PeriodCode, usize)>,
    /// Each BPNT period with the month it is allocated in.
    bpnt_periods: Vec<(PeriodCode, usize)>,
}

impl Plan {
    fn programs(&self) -> [(&ProgramCode, &Vec<(PeriodCode, usize)>); 2] {
        [
            (&self.pkh, &self.pkh_periods),
            (&self.bpnt, &self.bpnt_periods),
        ]
    }

    /// What `h` receives per period of `program`, if it takes part.
    fn amount_for(&self, h: &Household, program: &ProgramCode) -> Option<Rupiah> {
        if *program == self.pkh {
            h.pkh_per_stage
        } else if h.bpnt {
            Some(BPNT_PER_PERIOD)
        } else {
            None
        }
    }

    /// The pendamping of the district `h` lives in, if it has one.
    fn pendamping_of(&self, h: &Household) -> Option<&SigningKey> {
        h.village
            .parent()
            .and_then(|d| self.pendamping.get(&d))
            .map(|(_, k)| k)
    }
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
    let calendar = Calendar {
        start: genesis.genesis_time_ms,
    };
    let institutions = Institutions::new(keys)?;
    let pkh = code("PKH", ProgramCode::new)?;
    let bpnt = code("BPNT", ProgramCode::new)?;
    let plan = plan_year(genesis, keys, params, &calendar, pkh, bpnt, &mut rng)?;
    let schedule = schedule(&plan, &calendar);
    let mut year = Year {
        keys,
        institutions,
        plan,
        rng,
        signer: Signer {
            chain_id: genesis.chain_id.clone(),
            nonces: BTreeMap::new(),
        },
        tracking_codes: Vec::new(),
        filed_objections: Vec::new(),
        allocated: BTreeMap::new(),
        paid: BTreeMap::new(),
        receipts_not_received: Vec::new(),
        short_payments: Vec::new(),
        complaint_resolutions: Vec::new(),
    };
    let mut batches: Vec<DemoBatch> = Vec::new();
    for (time_ms, phase) in schedule {
        let txs = year.run(time_ms, phase)?;
        push(&mut batches, time_ms, &phase.label(&year.plan), txs);
    }
    separate_batch_times(&mut batches);
    let people = year.plan.households.into_iter().map(|h| h.person).collect();
    Ok(DemoData {
        batches,
        tracking_codes: year.tracking_codes,
        people,
    })
}

/// Plan: agents, households and everything decided up front.
///
/// Nothing is signed while planning: transactions are signed phase by phase in time
/// order afterwards, so every signer's nonces rise with time, as they would in real life.
fn plan_year(
    genesis: &Genesis,
    keys: &TestnetKeys,
    params: &DemoParams,
    calendar: &Calendar,
    pkh: ProgramCode,
    bpnt: ProgramCode,
    rng: &mut ChaCha20Rng,
) -> Result<Plan, GenesisError> {
    let banyuwangi_villages = villages_of(&genesis.regions, BANYUWANGI);
    let mataram_villages = villages_of(&genesis.regions, MATARAM);
    if banyuwangi_villages.is_empty() || mataram_villages.is_empty() {
        return Err(GenesisError::Invalid(
            "the demo needs the Banyuwangi and Mataram regions in genesis".into(),
        ));
    }
    let (pendamping, officers) = plan_agents(&banyuwangi_villages, &mataram_villages, rng);
    let pseudonyms = Pseudonymiser::new(genesis, keys)?;
    let mut households: Vec<Household> = Vec::with_capacity(params.beneficiaries);
    for index in 0..params.beneficiaries {
        households.push(plan_household(
            index,
            &banyuwangi_villages,
            &mataram_villages,
            &pseudonyms,
            rng,
        )?);
    }
    plan_status_events(&mut households, calendar, rng);
    let objections = plan_objections(&mut households, calendar);
    let pkh_periods: Vec<(PeriodCode, usize)> = (1..=4)
        .map(|t| Ok((code(&format!("2026-T{t}"), PeriodCode::new)?, 3 * t - 1)))
        .collect::<Result<_, GenesisError>>()?;
    let bpnt_periods: Vec<(PeriodCode, usize)> = (1..=6)
        .map(|b| Ok((code(&format!("2026-B{b}"), PeriodCode::new)?, 2 * b)))
        .collect::<Result<_, GenesisError>>()?;
    Ok(Plan {
        pendamping,
        officers,
        households,
        objections,
        pkh,
        bpnt,
        pkh_periods,
        bpnt_periods,
    })
}

/// A pendamping for each of the first districts of each regency, and a bank or PT Pos
/// officer for each payer.
fn plan_agents(
    banyuwangi_villages: &[RegionCode],
    mataram_villages: &[RegionCode],
    rng: &mut ChaCha20Rng,
) -> (Agents<RegionCode>, Agents<&'static str>) {
    let mut pendamping: Agents<RegionCode> = BTreeMap::new();
    for (regency, villages, count) in [
        (BANYUWANGI, banyuwangi_villages, 8),
        (MATARAM, mataram_villages, 3),
    ] {
        let districts: std::collections::BTreeSet<RegionCode> =
            villages.iter().filter_map(RegionCode::parent).collect();
        for district in districts.into_iter().take(count) {
            pendamping.insert(district, (regency, SigningKey::generate(rng)));
        }
    }
    let mut officers: Agents<&'static str> = BTreeMap::new();
    for (org, regency) in [
        ("bank-bri", BANYUWANGI),
        ("pos", MATARAM),
        ("bank-bni", MATARAM),
    ] {
        officers.insert(org, (regency, SigningKey::generate(rng)));
    }
    (pendamping, officers)
}

/// How the demo's people get their pseudonyms.
enum Pseudonymiser {
    /// The pseudonym service's key that genesis records.
    Service(proto::pseudonym::ServiceKey),
    /// The intake systems' shared key (a network without the service).
    Shared(SecretKey),
}

impl Pseudonymiser {
    fn new(genesis: &Genesis, keys: &TestnetKeys) -> Result<Pseudonymiser, GenesisError> {
        let (Some(service), Some(seed)) = (&genesis.pseudonym_service, &keys.pseudonym_service)
        else {
            return Ok(Pseudonymiser::Shared(keys.pseudonym.clone()));
        };
        let key = proto::pseudonym::ServiceKey::from_seed(&seed.0, service.key_version)
            .map_err(|e| GenesisError::Invalid(e.to_string()))?;
        if key.public_key() != service.public_key.0 {
            return Err(GenesisError::Invalid(
                "the pseudonym service's seed is not the key genesis records".into(),
            ));
        }
        Ok(Pseudonymiser::Service(key))
    }

    fn pseudonym(&self, nik: &str) -> Result<Pseudonym, GenesisError> {
        match self {
            Pseudonymiser::Service(key) => key
                .pseudonym(nik)
                .map_err(|e| GenesisError::Invalid(e.to_string())),
            Pseudonymiser::Shared(secret) => Ok(pseudonym(secret, nik)),
        }
    }
}

/// Household number `index`: where it lives, who it is, and how its year will go.
fn plan_household(
    index: usize,
    banyuwangi_villages: &[RegionCode],
    mataram_villages: &[RegionCode],
    pseudonyms: &Pseudonymiser,
    rng: &mut ChaCha20Rng,
) -> Result<Household, GenesisError> {
    let in_banyuwangi = rng.gen_bool(0.75);
    let (regency, villages) = if in_banyuwangi {
        (BANYUWANGI, banyuwangi_villages)
    } else {
        (MATARAM, mataram_villages)
    };
    let village = villages[rng.gen_range(0..villages.len())].clone();
    let person = synthetic_person(index, &village, pseudonyms, rng)?;
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
    Ok(Household {
        person,
        village,
        regency,
        household_size: rng.gen_range(1..=8),
        decile: rng.gen_range(1..=4),
        identity_passes: rng.gen_bool(0.97),
        rejection,
        bpnt: pkh_per_stage.is_none() || rng.gen_bool(0.7),
        pkh_per_stage,
        app_key: if rng.gen_bool(0.35) {
            Some(SigningKey::generate(rng))
        } else {
            None
        },
        inactive_from_ms: None,
    })
}

/// A name, a NIK in `village`'s regency and an account number, and the pseudonym the
/// ledger will know the person by.
fn synthetic_person(
    index: usize,
    village: &RegionCode,
    pseudonyms: &Pseudonymiser,
    rng: &mut ChaCha20Rng,
) -> Result<SyntheticPerson, GenesisError> {
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
    Ok(SyntheticPerson {
        name,
        pseudonym: pseudonyms.pseudonym(&nik)?,
        nik,
        account_number,
    })
}

/// Status events: deaths in June, graduations in September.
fn plan_status_events(households: &mut [Household], calendar: &Calendar, rng: &mut ChaCha20Rng) {
    let death_at = calendar.death_at();
    let graduation_at = calendar.graduation_at();
    for household in households.iter_mut().filter(|h| h.eligible()) {
        let roll: f64 = rng.gen();
        if roll < 0.01 {
            household.inactive_from_ms = Some(death_at);
        } else if roll < 0.03 {
            household.inactive_from_ms = Some(graduation_at);
        }
    }
}

/// Objections in the sanggah period: one upheld by the Dinas (suspension), one dismissed,
/// one left past its 14-day window and decided by the ministry (suspension).
fn plan_objections(
    households: &mut [Household],
    calendar: &Calendar,
) -> Vec<(usize, ClaimCode, bool, bool)> {
    let objections_resolved_at = calendar.objections_resolved_at();
    let objection_escalated_at = calendar.objection_escalated_at();
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
    objection_plans
}

/// A step of the year, signed as one batch (or one per program period).
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

impl Phase {
    /// The label of the phase's batch.
    fn label(self, plan: &Plan) -> String {
        let period = |p: usize, i: usize, what: &str| {
            let (program, periods) = plan.programs()[p];
            format!("{program} {}: {what}", periods[i].0)
        };
        match self {
            Phase::Agents => "agent keys registered".into(),
            Phase::Budgets => "budgets declared".into(),
            Phase::Proposals => "proposals (usul)".into(),
            Phase::Identity => "identity checks (Dukcapil)".into(),
            Phase::Verification => "eligibility verification (Pemda, BPS)".into(),
            Phase::Enrolment => "enrolment (Kemensos)".into(),
            Phase::ObjectionsFiled => "objections filed (sanggah)".into(),
            Phase::ObjectionsResolved => "objections resolved by Pemda".into(),
            Phase::ObjectionEscalated => "overdue objection resolved by Kemensos".into(),
            Phase::Deaths => "deaths recorded (Dukcapil)".into(),
            Phase::Graduations => "graduations recorded (Pemda)".into(),
            Phase::Allocations(p, i) => period(p, i, "allocations"),
            Phase::Disbursements(p, i) => period(p, i, "disbursements"),
            Phase::Receipts(p, i) => period(p, i, "receipts"),
            Phase::Complaints => "payment complaints filed".into(),
            Phase::ComplaintResolutions => "payment complaints resolved".into(),
        }
    }
}

/// The schedule, in time order.
fn schedule(plan: &Plan, calendar: &Calendar) -> Vec<(u64, Phase)> {
    let at = |month: usize, day: u64, hour: u64| calendar.at(month, day, hour);
    let mut schedule: Vec<(u64, Phase)> = vec![
        (at(1, 2, 2), Phase::Agents),
        (at(1, 5, 2), Phase::Budgets),
        (at(1, 12, 1), Phase::Proposals),
        (at(1, 19, 2), Phase::Identity),
        (at(1, 26, 2), Phase::Verification),
        (at(2, 2, 2), Phase::Enrolment),
        (calendar.objections_filed_at(), Phase::ObjectionsFiled),
        (calendar.objections_resolved_at(), Phase::ObjectionsResolved),
        (calendar.objection_escalated_at(), Phase::ObjectionEscalated),
        (calendar.death_at(), Phase::Deaths),
        (calendar.graduation_at(), Phase::Graduations),
        (at(12, 10, 3), Phase::Complaints),
        (at(12, 17, 3), Phase::ComplaintResolutions),
    ];
    for (p, (program, periods)) in plan.programs().iter().enumerate() {
        for (i, (_, month)) in periods.iter().enumerate() {
            let allocate_at = at(*month, if **program == plan.pkh { 3 } else { 15 }, 2);
            schedule.push((allocate_at, Phase::Allocations(p, i)));
            schedule.push((allocate_at + 7 * DAY_MS, Phase::Disbursements(p, i)));
            schedule.push((allocate_at + 10 * DAY_MS, Phase::Receipts(p, i)));
        }
    }
    schedule.sort_by_key(|(time, _)| *time);
    schedule
}

/// Two phases at the same moment would share a block time: nudge the later one.
fn separate_batch_times(batches: &mut [DemoBatch]) {
    for pair in 1..batches.len() {
        if batches[pair].time_ms <= batches[pair - 1].time_ms {
            batches[pair].time_ms = batches[pair - 1].time_ms + 60_000;
        }
    }
}

/// A program period: the program's index in [`Plan::programs`], the period's in its list.
type ProgramPeriod = (usize, usize);

/// The year being signed: the plan, the signers, and what each phase leaves for later ones.
struct Year<'a> {
    keys: &'a TestnetKeys,
    institutions: Institutions,
    plan: Plan,
    rng: ChaCha20Rng,
    signer: Signer,
    tracking_codes: Vec<SampleCode>,
    /// (household, objection id, upheld, escalated) per objection filed.
    filed_objections: Vec<(usize, Hash32, bool, bool)>,
    /// (household, allocation id, amount) per program period.
    allocated: BTreeMap<ProgramPeriod, Vec<(usize, Hash32, Rupiah)>>,
    /// (household, allocation id) per program period.
    paid: BTreeMap<ProgramPeriod, Vec<(usize, Hash32)>>,
    receipts_not_received: Vec<(usize, Hash32)>,
    short_payments: Vec<(usize, Hash32)>,
    complaint_resolutions: Vec<(&'static str, Action)>,
}

impl Year<'_> {
    /// Signs the transactions of `phase`, scheduled at `time_ms`.
    fn run(&mut self, time_ms: u64, phase: Phase) -> Result<Vec<Transaction>, GenesisError> {
        Ok(match phase {
            Phase::Agents => self.register_agents()?,
            Phase::Budgets => self.declare_budgets()?,
            Phase::Proposals => self.propose(),
            Phase::Identity => self.check_identities(),
            Phase::Verification => self.verify_eligibility(),
            Phase::Enrolment => self.enrol()?,
            Phase::ObjectionsFiled => self.file_objections(),
            Phase::ObjectionsResolved => self.resolve_objections(false),
            Phase::ObjectionEscalated => self.resolve_objections(true),
            Phase::Deaths => self.record_status_changes(time_ms, true),
            Phase::Graduations => self.record_status_changes(time_ms, false),
            Phase::Allocations(p, i) => self.allocate(time_ms, p, i),
            Phase::Disbursements(p, i) => self.disburse(p, i)?,
            Phase::Receipts(p, i) => self.confirm_receipts(p, i),
            Phase::Complaints => self.file_complaints(),
            Phase::ComplaintResolutions => self.resolve_complaints(),
        })
    }

    /// The Pemda register a pendamping per district, the payers an officer each.
    fn register_agents(&mut self) -> Result<Vec<Transaction>, GenesisError> {
        let mut txs = Vec::new();
        for (district, (regency, agent)) in &self.plan.pendamping {
            let action = Action::RegisterAgent {
                key: PublicKey(agent.verifying_key().to_bytes()),
                role: AgentRole::Pendamping,
                regions: vec![district.clone()],
            };
            txs.push(
                self.signer
                    .sign(self.institutions.pemda_key(regency), action),
            );
        }
        for (org, (regency, agent)) in &self.plan.officers {
            let action = Action::RegisterAgent {
                key: PublicKey(agent.verifying_key().to_bytes()),
                role: AgentRole::BankOfficer,
                regions: vec![code(regency, RegionCode::new)?],
            };
            txs.push(self.signer.sign(&org_key(self.keys, org)?, action));
        }
        Ok(txs)
    }

    /// Kemensos declares each program period's ceilings for both regencies.
    fn declare_budgets(&mut self) -> Result<Vec<Transaction>, GenesisError> {
        let mut txs = Vec::new();
        for (program, periods) in self.plan.programs() {
            for (period, _) in periods.iter() {
                let mut ceilings = Vec::new();
                for regency in [BANYUWANGI, MATARAM] {
                    let planned: u64 = self
                        .plan
                        .households
                        .iter()
                        .filter(|h| h.eligible() && h.regency == regency)
                        .filter_map(|h| self.plan.amount_for(h, program))
                        .map(|r| r.0)
                        .sum();
                    // Five percent headroom, rounded up to Rp10 million, as a budget line would be.
                    let ceiling = (planned + planned / 20).div_ceil(10_000_000) * 10_000_000;
                    ceilings.push(BudgetCeiling {
                        region: code(regency, RegionCode::new)?,
                        ceiling: Rupiah(ceiling.max(10_000_000)),
                    });
                }
                txs.push(self.signer.sign(
                    &self.institutions.kemensos,
                    Action::DeclareBudget {
                        program: program.clone(),
                        period: period.clone(),
                        ceilings,
                    },
                ));
            }
        }
        Ok(txs)
    }

    /// Every household is proposed (usul).
    fn propose(&mut self) -> Vec<Transaction> {
        let mut txs = Vec::new();
        for (index, h) in self.plan.households.iter().enumerate() {
            let action = Action::Propose {
                beneficiary: h.person.pseudonym,
                region: h.village.clone(),
                household_size: h.household_size,
                welfare_decile: h.decile,
            };
            let agent = self.plan.pendamping_of(h);
            // One in ten registers through the ministry's self-registration intake;
            // otherwise the district's pendamping (where there is one) or the Dinas.
            let proposer = if index % 10 == 0 {
                &self.institutions.kemensos
            } else {
                agent.unwrap_or(self.institutions.pemda_key(h.regency))
            };
            txs.push(self.signer.sign(proposer, action));
        }
        txs
    }

    /// Dukcapil checks every household's identity.
    fn check_identities(&mut self) -> Vec<Transaction> {
        let mut txs = Vec::new();
        for h in &self.plan.households {
            txs.push(self.signer.sign(
                &self.institutions.dukcapil,
                Action::CheckIdentity {
                    beneficiary: h.person.pseudonym,
                    passed: h.identity_passes,
                    evidence_hash: evidence(&mut self.rng),
                },
            ));
        }
        txs
    }

    /// The Pemda (or, for one in seven, BPS) verify or reject the households that passed.
    fn verify_eligibility(&mut self) -> Vec<Transaction> {
        let mut txs = Vec::new();
        for (index, h) in self
            .plan
            .households
            .iter()
            .enumerate()
            .filter(|(_, h)| h.identity_passes)
        {
            let outcome = match h.rejection {
                Some(reason_code) => Verification::Rejected { reason_code },
                None => Verification::Verified,
            };
            let verifier = if index % 7 == 0 {
                &self.institutions.bps
            } else {
                self.institutions.pemda_key(h.regency)
            };
            txs.push(self.signer.sign(
                verifier,
                Action::VerifyEligibility {
                    beneficiary: h.person.pseudonym,
                    outcome,
                },
            ));
        }
        txs
    }

    /// Kemensos enrols every eligible household in its programs, handing out tracking codes.
    fn enrol(&mut self) -> Result<Vec<Transaction>, GenesisError> {
        let mut txs = Vec::new();
        for h in self.plan.households.iter().filter(|h| h.eligible()) {
            // The app key is registered once, with the first enrolment.
            let mut app_key = h
                .app_key
                .as_ref()
                .map(|k| PublicKey(k.verifying_key().to_bytes()));
            for program in [&self.plan.pkh, &self.plan.bpnt] {
                if self.plan.amount_for(h, program).is_none() {
                    continue;
                }
                let code_text = new_tracking_code(&mut self.rng);
                let code_hash = tracking_code_hash(&code_text).ok_or_else(|| {
                    GenesisError::Invalid("generated tracking code does not parse".into())
                })?;
                txs.push(self.signer.sign(
                    &self.institutions.kemensos,
                    Action::Enrol {
                        beneficiary: h.person.pseudonym,
                        program: program.clone(),
                        tracking_code_hash: code_hash,
                        beneficiary_key: app_key.take(),
                    },
                ));
                self.tracking_codes.push(SampleCode {
                    code: code_text,
                    program: program.to_string(),
                    region: h.village.to_string(),
                });
            }
        }
        Ok(txs)
    }

    /// The planned objections are filed (sanggah), one of them by Kemensos.
    fn file_objections(&mut self) -> Vec<Transaction> {
        let mut txs = Vec::new();
        for (n, (index, claim, upheld, escalate)) in self.plan.objections.iter().enumerate() {
            let h = &self.plan.households[*index];
            let filer = if n == 1 {
                &self.institutions.kemensos
            } else {
                self.institutions.pemda_key(h.regency)
            };
            let filed = self.signer.sign(
                filer,
                Action::FileObjection {
                    subject: ObjectionSubject::Beneficiary(h.person.pseudonym),
                    claim: *claim,
                    evidence_hash: evidence(&mut self.rng),
                },
            );
            self.filed_objections
                .push((*index, filed.hash(), *upheld, *escalate));
            txs.push(filed);
        }
        txs
    }

    /// The Pemda resolve the objections in time, or (`escalated`) Kemensos the overdue one.
    fn resolve_objections(&mut self, escalated: bool) -> Vec<Transaction> {
        let mut txs = Vec::new();
        for (index, objection, upheld, escalate) in &self.filed_objections {
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
                &self.institutions.kemensos
            } else {
                self.institutions
                    .pemda_key(self.plan.households[*index].regency)
            };
            txs.push(self.signer.sign(resolver, action));
        }
        txs
    }

    /// Dukcapil records the deaths (`deaths`), or the Pemda the graduations, due at `time_ms`.
    fn record_status_changes(&mut self, time_ms: u64, deaths: bool) -> Vec<Transaction> {
        let mut txs = Vec::new();
        for h in self
            .plan
            .households
            .iter()
            .filter(|h| h.eligible() && h.inactive_from_ms == Some(time_ms))
        {
            let tx = if deaths {
                self.signer.sign(
                    &self.institutions.dukcapil,
                    Action::ChangeStatus {
                        beneficiary: h.person.pseudonym,
                        change: StatusChange::Deceased,
                    },
                )
            } else {
                self.signer.sign(
                    self.institutions.pemda_key(h.regency),
                    Action::ChangeStatus {
                        beneficiary: h.person.pseudonym,
                        change: StatusChange::Graduated,
                    },
                )
            };
            txs.push(tx);
        }
        txs
    }

    /// Kemensos allocates period `i` of program `p`, at `time_ms`, to every household
    /// still on the path when it is paid.
    fn allocate(&mut self, time_ms: u64, p: usize, i: usize) -> Vec<Transaction> {
        let mut txs = Vec::new();
        let (program, periods) = self.plan.programs()[p];
        let period = &periods[i].0;
        let mut list = Vec::new();
        for (index, h) in self.plan.households.iter().enumerate() {
            let Some(amount) = self.plan.amount_for(h, program) else {
                continue;
            };
            // Skip anyone who leaves the path before this period is paid.
            if !h.eligible() || !h.active_at(time_ms + 10 * DAY_MS) {
                continue;
            }
            txs.push(self.signer.sign(
                &self.institutions.kemensos,
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
        self.allocated.insert((p, i), list);
        txs
    }

    /// The regency's bank or PT Pos pays period `i` of program `p`, now and then short.
    fn disburse(&mut self, p: usize, i: usize) -> Result<Vec<Transaction>, GenesisError> {
        let mut txs = Vec::new();
        let (program, _) = self.plan.programs()[p];
        let mut list = Vec::new();
        for (index, allocation, amount) in self.allocated.get(&(p, i)).cloned().unwrap_or_default()
        {
            let h = &self.plan.households[index];
            let (payer, channel) = match (h.regency, *program == self.plan.pkh) {
                (BANYUWANGI, _) => ("bank-bri", PaymentChannel::BankAccount),
                (_, true) => ("pos", PaymentChannel::PosCash),
                (_, false) => ("bank-bni", PaymentChannel::BankAccount),
            };
            // An anomaly: now and then a payment comes out short.
            let amount_paid = if self.rng.gen_bool(0.004) {
                Rupiah(amount.0 - amount.0 / 4)
            } else {
                amount
            };
            if amount_paid != amount {
                self.short_payments.push((index, allocation));
            }
            let officer = self
                .plan
                .officers
                .get(payer)
                .map(|(_, k)| k)
                .ok_or_else(|| GenesisError::Invalid(format!("no officer for {payer}")))?;
            let account_ref_hash =
                account_reference(&account_secret(self.keys, payer)?, &h.person.account_number);
            txs.push(self.signer.sign(
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
        self.paid.insert((p, i), list);
        Ok(txs)
    }

    /// Beneficiaries (app key) or pendamping confirm receipt of period `i` of program `p`.
    fn confirm_receipts(&mut self, p: usize, i: usize) -> Vec<Transaction> {
        let mut txs = Vec::new();
        for (index, allocation) in self.paid.get(&(p, i)).cloned().unwrap_or_default() {
            let h = &self.plan.households[index];
            let received = !self.rng.gen_bool(0.01);
            let receipt = Action::ConfirmReceipt {
                allocation,
                received,
            };
            let agent = self.plan.pendamping_of(h);
            if let Some(app) = h.app_key.as_ref().filter(|_| self.rng.gen_bool(0.8)) {
                txs.push(self.signer.sign(app, receipt));
            } else if let Some(agent) = agent.filter(|_| self.rng.gen_bool(0.6)) {
                txs.push(self.signer.sign(agent, receipt));
            } else {
                continue;
            }
            if !received {
                self.receipts_not_received.push((index, allocation));
            }
        }
        txs
    }

    /// The Pemda file complaints about unreceived and short payments, to resolve later.
    fn file_complaints(&mut self) -> Vec<Transaction> {
        let mut txs = Vec::new();
        for (claim, cases) in [
            (ClaimCode::NotReceived, &self.receipts_not_received),
            (ClaimCode::WrongAmount, &self.short_payments),
        ] {
            for (index, allocation) in cases.iter().take(3) {
                let regency = self.plan.households[*index].regency;
                let filed = self.signer.sign(
                    self.institutions.pemda_key(regency),
                    Action::FileObjection {
                        subject: ObjectionSubject::Allocation(*allocation),
                        claim,
                        evidence_hash: evidence(&mut self.rng),
                    },
                );
                self.complaint_resolutions.push((
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
        txs
    }

    /// The Pemda uphold the complaints: the payer is to repay.
    fn resolve_complaints(&mut self) -> Vec<Transaction> {
        let mut txs = Vec::new();
        for (regency, action) in self.complaint_resolutions.drain(..) {
            txs.push(
                self.signer
                    .sign(self.institutions.pemda_key(regency), action),
            );
        }
        txs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testnet::{Testnet, TestnetSpec};

    /// A digest of everything `generate` returns: each batch's label, time and the canonical
    /// bytes of every transaction, then the tracking codes and the people.
    fn demo_digest(testnet_seed: u64, params: &DemoParams) -> String {
        let mut rng = ChaCha20Rng::seed_from_u64(testnet_seed);
        let net = Testnet::generate(&TestnetSpec::default(), &mut rng).unwrap();
        let data = generate(&net.genesis, &net.keys, params).unwrap();
        let mut hasher = blake3::Hasher::new();
        let mut field = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        for batch in &data.batches {
            field(batch.label.as_bytes());
            field(&batch.time_ms.to_le_bytes());
            field(&(batch.txs.len() as u64).to_le_bytes());
            for tx in &batch.txs {
                field(&tx.to_bytes());
            }
        }
        for sample in &data.tracking_codes {
            field(sample.code.as_bytes());
            field(sample.program.as_bytes());
            field(sample.region.as_bytes());
        }
        for person in &data.people {
            field(person.name.as_bytes());
            field(person.nik.as_bytes());
            field(person.account_number.as_bytes());
            field(&person.pseudonym.0);
        }
        hasher.finalize().to_hex().to_string()
    }

    /// Pins the demo data: tests, benchmarks and the demo rely on the same year for the same
    /// seed. A deliberate change to the data updates these digests; a refactor must not.
    #[test]
    fn demo_year_is_unchanged_by_refactoring() {
        // Changed deliberately when tracking codes grew to 100 bits with a check symbol, and
        // when the people's pseudonyms became the pseudonym service's (genesis key).
        let default_year = demo_digest(42, &DemoParams::default());
        let small_year = demo_digest(
            7,
            &DemoParams {
                beneficiaries: 120,
                seed: 11,
            },
        );
        assert_eq!(
            default_year,
            "b391cb2f2b454ed42c216e9849de47acdf9844a0e0e85fc87b04e3e0af918c42"
        );
        assert_eq!(
            small_year,
            "af1bfe3ba16a1c4c61d93d52689cb0200f5eb61e32350c5784973173c8dd5269"
        );
    }
}
