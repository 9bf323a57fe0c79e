//! Shared fixtures for the integration tests in `tests/tests/`.
//!
//! A [`Fixture`] is a ledger on a generated 4-validator test network with helpers to sign
//! steps as each institution and to commit them as blocks, so that each test reads as the
//! lifecycle it checks.

pub mod cluster;
pub mod proxy;

use std::collections::HashMap;

use ed25519_dalek::SigningKey;
use genesis::testnet::{Testnet, TestnetSpec};
use ledger::chain::SignatureCheck;
use ledger::privacy::{pseudonym, tracking_code_hash};
use ledger::tx::{Action, BudgetCeiling, Transaction, TxBody, Verification};
use ledger::types::{Hash32, PeriodCode, ProgramCode, Pseudonym, PublicKey, RegionCode, Rupiah};
use ledger::{Ledger, LedgerError, Store};
use rand::SeedableRng;

/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// A generated network with deterministic keys.
pub fn testnet(seed: u64) -> Testnet {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    Testnet::generate(&TestnetSpec::default(), &mut rng).expect("testnet generates")
}

/// A ledger on a test network, with a clock and nonce bookkeeping.
pub struct Fixture<S: Store> {
    pub net: Testnet,
    pub ledger: Ledger<S>,
    pub time_ms: u64,
    pending_nonces: HashMap<PublicKey, u64>,
    rng: rand_chacha::ChaCha20Rng,
}

/// Shorthand for codes in tests.
pub fn region(code: &str) -> RegionCode {
    RegionCode::new(code).expect("valid region code")
}
pub fn program(code: &str) -> ProgramCode {
    ProgramCode::new(code).expect("valid program code")
}
pub fn period(code: &str) -> PeriodCode {
    PeriodCode::new(code).expect("valid period code")
}

/// A village in Banyuwangi and one in Mataram (from the demo regions).
pub const BANYUWANGI_VILLAGE: &str = "35.10.20.2001";
pub const MATARAM_VILLAGE: &str = "52.71.01.1001";

impl<S: Store> Fixture<S> {
    /// A fixture on `store` with the network generated from `seed`.
    pub fn new(store: S, seed: u64) -> Self {
        let net = testnet(seed);
        let ledger = Ledger::open(store, net.genesis.clone()).expect("ledger opens");
        let time_ms = net.genesis.genesis_time_ms;
        Fixture {
            net,
            ledger,
            time_ms,
            pending_nonces: HashMap::new(),
            rng: rand_chacha::ChaCha20Rng::seed_from_u64(seed ^ 0x5eed),
        }
    }

    /// An institution's transaction key.
    pub fn key(&self, org: &str) -> SigningKey {
        self.net
            .keys
            .org(org)
            .cloned()
            .unwrap_or_else(|| panic!("no key for {org}"))
    }

    /// The proposer for blocks: the first validator.
    pub fn proposer(&self) -> PublicKey {
        self.ledger.genesis().validators[0].key
    }

    /// Signs `action` as `key` with its next nonce (counting transactions signed but not
    /// yet committed).
    pub fn sign(&mut self, key: &SigningKey, action: Action) -> Transaction {
        let signer = PublicKey(key.verifying_key().to_bytes());
        let committed = self
            .ledger
            .next_nonce(&signer)
            .expect("read nonce")
            .unwrap_or(0);
        let nonce = self
            .pending_nonces
            .get(&signer)
            .copied()
            .unwrap_or(committed)
            .max(committed);
        self.pending_nonces.insert(signer, nonce + 1);
        TxBody {
            chain_id: self.ledger.chain_id().to_owned(),
            signer,
            nonce,
            action,
        }
        .sign(key)
    }

    /// Forgets nonces of transactions that were refused, so the next signature reuses them.
    pub fn reset_nonces(&mut self) {
        self.pending_nonces.clear();
    }

    /// Commits `txs` as one block, one hour after the previous one. Fails, changing
    /// nothing, if any transaction is refused.
    pub fn commit(&mut self, txs: Vec<Transaction>) -> Result<(), LedgerError> {
        self.time_ms += 60 * 60 * 1000;
        let prepared = self.ledger.build_block(
            txs,
            self.time_ms,
            self.proposer(),
            SignatureCheck::VerifyAll,
        )?;
        if let Some((_, error)) = prepared.rejected.into_iter().next() {
            self.reset_nonces();
            return Err(error);
        }
        let block = prepared.block.clone();
        // Check the built block the way another validator would, then commit it.
        let checked = self
            .ledger
            .prepare_block(&block, SignatureCheck::VerifyAll)?;
        self.ledger.commit(checked, b"test-certificate")
    }

    /// Signs and commits one step.
    pub fn step(&mut self, org_key: &SigningKey, action: Action) -> Result<(), LedgerError> {
        let tx = self.sign(org_key, action);
        self.commit(vec![tx])
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, ms: u64) {
        self.time_ms += ms;
    }

    /// A fresh pseudonym for a synthetic NIK.
    pub fn new_beneficiary(&mut self, nik: &str) -> Pseudonym {
        pseudonym(&self.net.keys.pseudonym, nik)
    }

    /// A fresh tracking code hash.
    pub fn new_tracking_hash(&mut self) -> Hash32 {
        let code = ledger::privacy::new_tracking_code(&mut self.rng);
        tracking_code_hash(&code).expect("generated code parses")
    }

    /// Declares a PKH budget for `period_code` with `ceiling` for Banyuwangi.
    pub fn declare_pkh_budget(&mut self, period_code: &str, ceiling: u64) {
        let action = Action::DeclareBudget {
            program: program("PKH"),
            period: period(period_code),
            ceilings: vec![BudgetCeiling {
                region: region("35.10"),
                ceiling: Rupiah(ceiling),
            }],
        };
        let kemensos = self.key("kemensos");
        self.step(&kemensos, action).expect("budget declared");
    }

    /// Takes a Banyuwangi household through proposal, identity check, verification and
    /// PKH enrolment.
    pub fn enrolled_beneficiary(&mut self, nik: &str) -> Pseudonym {
        let beneficiary = self.new_beneficiary(nik);
        self.enrol(beneficiary)
            .expect("proposed, checked, verified and enrolled");
        beneficiary
    }

    /// Takes `beneficiary`, in a Banyuwangi village, through proposal, identity check,
    /// verification and PKH enrolment; the first refusal is returned.
    pub fn enrol(&mut self, beneficiary: Pseudonym) -> Result<(), LedgerError> {
        let pemda = self.key("pemda-3510");
        let dukcapil = self.key("dukcapil");
        let kemensos = self.key("kemensos");
        self.step(
            &pemda,
            Action::Propose {
                beneficiary,
                region: region(BANYUWANGI_VILLAGE),
                household_size: 4,
                welfare_decile: 1,
            },
        )?;
        self.step(
            &dukcapil,
            Action::CheckIdentity {
                beneficiary,
                passed: true,
                evidence_hash: Hash32::digest(b"ikd"),
            },
        )?;
        self.step(
            &pemda,
            Action::VerifyEligibility {
                beneficiary,
                outcome: Verification::Verified,
            },
        )?;
        let tracking_code_hash = self.new_tracking_hash();
        self.step(
            &kemensos,
            Action::Enrol {
                beneficiary,
                program: program("PKH"),
                tracking_code_hash,
                beneficiary_key: None,
            },
        )
    }
}

/// Commits `txs` through `ledger` in blocks of `block_txs`, one second apart, each with a
/// certificate signed by every validator of `net`: how the benchmarks build large chains
/// without consensus. The caller signed the transactions, so their signatures are not
/// checked again here (the audit does). Panics if a block leaves any transaction out.
pub fn commit_in_blocks<S: Store>(
    net: &Testnet,
    ledger: &mut Ledger<S>,
    txs: Vec<Transaction>,
    block_txs: usize,
) {
    let validators: Vec<SigningKey> = net
        .nodes
        .iter()
        .filter(|n| n.role == genesis::testnet::NodeRole::Validator)
        .map(|n| n.key.clone())
        .collect();
    let chain = proto::signing::ChainBinding::of(&net.genesis);
    let proposer = ledger.genesis().validators[0].key;
    let mut time = ledger.tip().time_ms;
    let mut txs = txs.into_iter().peekable();
    while txs.peek().is_some() {
        let block: Vec<Transaction> = txs.by_ref().take(block_txs).collect();
        let signed: std::collections::HashSet<_> = block.iter().map(|t| t.hash()).collect();
        let expected = block.len();
        time += 1_000;
        let prepared = ledger
            .build_block(block, time, proposer, SignatureCheck::SkipVerified(&signed))
            .expect("the block builds");
        assert!(
            prepared.rejected.is_empty() && prepared.block.txs.len() == expected,
            "refused: {:?}",
            prepared.rejected.first()
        );
        let height = prepared.block.header.height;
        let certificate = proto::certificate::StoredCertificate::sign(
            &chain,
            &validators,
            height,
            0,
            prepared.hash,
        );
        ledger
            .commit(prepared, &certificate.to_bytes())
            .expect("the block commits");
    }
}
