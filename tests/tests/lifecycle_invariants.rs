//! Every invariant of DESIGN §3 as a named test, and every refusal leaving the state
//! exactly as it was.

use std::collections::BTreeSet;

use bansos_tests::*;
use ledger::chain::SignatureCheck;
use ledger::state::{allocation_id, keys, AllocationRecord, BeneficiaryRecord, LifeStatus};
use ledger::tx::{
    Action, AgentRole, ClaimCode, Consequence, ObjectionSubject, PaymentChannel, StatusChange,
    TxBody,
};
use ledger::types::{Hash32, Pseudonym, PublicKey, Rupiah, SignatureBytes};
use ledger::{LedgerError, MemoryStore};

type F = Fixture<MemoryStore>;

fn fixture() -> F {
    Fixture::new(MemoryStore::new(), 1)
}

/// Runs `txs` as one block, expecting a refusal; checks that not a byte of the store
/// changed, and returns the error code.
///
/// It also checks what a refusal means for a block: the block a proposer builds from
/// `txs` is exactly the block built from the transactions it did not refuse (same state
/// root, nonces and log), so a refused transaction leaves no trace.
fn refused(f: &mut F, txs: Vec<ledger::Transaction>) -> (&'static str, LedgerError) {
    let before = f.ledger.store().dump().expect("dump");
    let tip_before = f.ledger.tip().clone();
    let (time, proposer) = (f.time_ms + 1, f.proposer());
    let mixed = f
        .ledger
        .build_block(txs.clone(), time, proposer, SignatureCheck::VerifyAll)
        .expect("the proposer builds a block");
    assert!(!mixed.rejected.is_empty(), "nothing was refused");
    let refused: BTreeSet<Hash32> = mixed.rejected.iter().map(|(h, _)| *h).collect();
    let valid: Vec<ledger::Transaction> = txs
        .iter()
        .filter(|t| !refused.contains(&t.hash()))
        .cloned()
        .collect();
    let clean = f
        .ledger
        .build_block(valid, time, proposer, SignatureCheck::VerifyAll)
        .expect("the valid ones build");
    assert_eq!(
        mixed.hash, clean.hash,
        "a refused transaction left a trace in the block (state, nonces or log)"
    );
    let error = f.commit(txs).expect_err("the step must be refused");
    assert_eq!(
        f.ledger.store().dump().expect("dump"),
        before,
        "a refused step changed the store"
    );
    assert_eq!(f.ledger.tip(), &tip_before, "a refused step moved the tip");
    (error.code(), error)
}

fn allocate(
    f: &mut F,
    beneficiary: ledger::types::Pseudonym,
    amount: u64,
    period_code: &str,
) -> Result<Hash32, LedgerError> {
    let kemensos = f.key("kemensos");
    f.step(
        &kemensos,
        Action::Allocate {
            beneficiary,
            program: program("PKH"),
            period: period(period_code),
            amount: Rupiah(amount),
        },
    )?;
    Ok(allocation_id(
        &beneficiary,
        &program("PKH"),
        &period(period_code),
    ))
}

/// Kemensos's allocation of `amount` rupiah of `program_code` aid for `period_code`.
fn allocation_tx(
    f: &mut F,
    beneficiary: Pseudonym,
    program_code: &str,
    period_code: &str,
    amount: u64,
) -> ledger::Transaction {
    let kemensos = f.key("kemensos");
    f.sign(
        &kemensos,
        Action::Allocate {
            beneficiary,
            program: program(program_code),
            period: period(period_code),
            amount: Rupiah(amount),
        },
    )
}

fn disburse(f: &mut F, allocation: Hash32, amount: u64) -> ledger::Transaction {
    let bank = f.key("bank-bri");
    f.sign(
        &bank,
        Action::Disburse {
            allocation,
            amount: Rupiah(amount),
            channel: PaymentChannel::BankAccount,
            account_ref_hash: Hash32::digest(b"acct"),
        },
    )
}

#[test]
fn disbursement_never_exceeds_allocation() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let b = f.enrolled_beneficiary("3510000000000001");
    let allocation = allocate(&mut f, b, 750_000, "2026-T1").unwrap();
    let tx = disburse(&mut f, allocation, 750_001);
    let (code, _) = refused(&mut f, vec![tx]);
    assert_eq!(code, "over_disbursement");
    let tx = disburse(&mut f, allocation, 750_000);
    f.commit(vec![tx]).unwrap();
    let record: AllocationRecord = f
        .ledger
        .state_get(&keys::allocation(&allocation))
        .unwrap()
        .unwrap();
    assert_eq!(record.disbursement.unwrap().amount, Rupiah(750_000));
}

#[test]
fn allocation_is_disbursed_at_most_once() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let b = f.enrolled_beneficiary("3510000000000002");
    let allocation = allocate(&mut f, b, 750_000, "2026-T1").unwrap();
    let first = disburse(&mut f, allocation, 500_000);
    f.commit(vec![first]).unwrap();
    // Even a second payment that would stay within the allocation is refused.
    let second = disburse(&mut f, allocation, 250_000);
    assert_eq!(refused(&mut f, vec![second]).0, "double_disbursement");
}

#[test]
fn double_disbursement_within_one_block_is_refused() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let b = f.enrolled_beneficiary("3510000000000003");
    let allocation = allocate(&mut f, b, 750_000, "2026-T1").unwrap();
    let first = disburse(&mut f, allocation, 750_000);
    let second = disburse(&mut f, allocation, 750_000);
    assert_eq!(
        refused(&mut f, vec![first, second]).0,
        "double_disbursement"
    );
}

#[test]
fn allocations_stay_within_the_period_budget() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 1_000_000);
    let a = f.enrolled_beneficiary("3510000000000004");
    let b = f.enrolled_beneficiary("3510000000000005");
    allocate(&mut f, a, 750_000, "2026-T1").unwrap();
    let kemensos = f.key("kemensos");
    let over = f.sign(
        &kemensos,
        Action::Allocate {
            beneficiary: b,
            program: program("PKH"),
            period: period("2026-T1"),
            amount: Rupiah(250_001),
        },
    );
    assert_eq!(refused(&mut f, vec![over]).0, "over_budget");
    // Exactly up to the ceiling is allowed.
    allocate(&mut f, b, 250_000, "2026-T1").unwrap();
    // A revision may not lower the ceiling below what is already allocated.
    let revision = f.sign(
        &kemensos,
        Action::DeclareBudget {
            program: program("PKH"),
            period: period("2026-T1"),
            ceilings: vec![ledger::tx::BudgetCeiling {
                region: region("35.10"),
                ceiling: Rupiah(999_999),
            }],
        },
    );
    assert_eq!(refused(&mut f, vec![revision]).0, "ceiling_below_allocated");
}

#[test]
fn allocation_without_a_budget_is_refused() {
    let mut f = fixture();
    let b = f.enrolled_beneficiary("3510000000000006");
    let tx = allocation_tx(&mut f, b, "PKH", "2026-T9", 1);
    assert_eq!(refused(&mut f, vec![tx]).0, "no_budget");
}

#[test]
fn one_allocation_per_beneficiary_program_and_period() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let b = f.enrolled_beneficiary("3510000000000007");
    allocate(&mut f, b, 100_000, "2026-T1").unwrap();
    let kemensos = f.key("kemensos");
    let again = f.sign(
        &kemensos,
        Action::Allocate {
            beneficiary: b,
            program: program("PKH"),
            period: period("2026-T1"),
            amount: Rupiah(100_000),
        },
    );
    assert_eq!(refused(&mut f, vec![again]).0, "duplicate_allocation");
}

#[test]
fn one_enrolment_per_beneficiary_per_program() {
    let mut f = fixture();
    let b = f.enrolled_beneficiary("3510000000000008");
    let kemensos = f.key("kemensos");
    let tracking_code_hash = f.new_tracking_hash();
    let again = f.sign(
        &kemensos,
        Action::Enrol {
            beneficiary: b,
            program: program("PKH"),
            tracking_code_hash,
            beneficiary_key: None,
        },
    );
    assert_eq!(refused(&mut f, vec![again]).0, "duplicate_enrolment");
    // The same person in another program is a different enrolment.
    let tracking_code_hash = f.new_tracking_hash();
    f.step(
        &kemensos,
        Action::Enrol {
            beneficiary: b,
            program: program("BPNT"),
            tracking_code_hash,
            beneficiary_key: None,
        },
    )
    .unwrap();
}

#[test]
fn the_same_person_is_proposed_only_once() {
    let mut f = fixture();
    f.enrolled_beneficiary("3510000000000009");
    // The same NIK typed with spaces maps to the same pseudonym: deduplication holds.
    let same = f.new_beneficiary("3510 0000 0000 0009");
    let pemda = f.key("pemda-3510");
    let tx = f.sign(
        &pemda,
        Action::Propose {
            beneficiary: same,
            region: region(BANYUWANGI_VILLAGE),
            household_size: 3,
            welfare_decile: 2,
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "duplicate_proposal");
}

#[test]
fn enrolment_requires_identity_and_verification() {
    let mut f = fixture();
    let b = f.new_beneficiary("3510000000000010");
    let pemda = f.key("pemda-3510");
    let kemensos = f.key("kemensos");
    f.step(
        &pemda,
        Action::Propose {
            beneficiary: b,
            region: region(BANYUWANGI_VILLAGE),
            household_size: 2,
            welfare_decile: 1,
        },
    )
    .unwrap();
    let tracking_code_hash = f.new_tracking_hash();
    let tx = f.sign(
        &kemensos,
        Action::Enrol {
            beneficiary: b,
            program: program("PKH"),
            tracking_code_hash,
            beneficiary_key: None,
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "not_eligible_for_enrolment");
}

#[test]
fn no_allocation_to_a_deceased_beneficiary() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let b = f.enrolled_beneficiary("3510000000000011");
    let dukcapil = f.key("dukcapil");
    f.step(
        &dukcapil,
        Action::ChangeStatus {
            beneficiary: b,
            change: StatusChange::Deceased,
        },
    )
    .unwrap();
    let tx = allocation_tx(&mut f, b, "PKH", "2026-T1", 1);
    let (code, error) = refused(&mut f, vec![tx]);
    assert_eq!(code, "beneficiary_inactive");
    assert!(error.to_string().contains("deceased"));
    // Death is final.
    let tx = f.sign(
        &f.key("pemda-3510"),
        Action::ChangeStatus {
            beneficiary: b,
            change: StatusChange::Reinstated,
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "beneficiary_deceased");
}

#[test]
fn no_allocation_to_a_suspended_beneficiary() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let b = f.enrolled_beneficiary("3510000000000012");
    let pemda = f.key("pemda-3510");
    f.step(
        &pemda,
        Action::ChangeStatus {
            beneficiary: b,
            change: StatusChange::Suspended,
        },
    )
    .unwrap();
    let tx = allocation_tx(&mut f, b, "PKH", "2026-T1", 1);
    assert_eq!(refused(&mut f, vec![tx]).0, "beneficiary_inactive");
    f.step(
        &pemda,
        Action::ChangeStatus {
            beneficiary: b,
            change: StatusChange::Reinstated,
        },
    )
    .unwrap();
    allocate(&mut f, b, 1, "2026-T1").unwrap();
}

#[test]
fn no_allocation_to_an_unenrolled_beneficiary() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let b = f.enrolled_beneficiary("3510000000000013");
    let tx = allocation_tx(&mut f, b, "BPNT", "2026-T1", 1);
    assert_eq!(refused(&mut f, vec![tx]).0, "not_enrolled");
}

#[test]
fn no_payment_to_a_beneficiary_who_died_after_allocation() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let b = f.enrolled_beneficiary("3510000000000014");
    let allocation = allocate(&mut f, b, 500_000, "2026-T1").unwrap();
    f.step(
        &f.key("dukcapil"),
        Action::ChangeStatus {
            beneficiary: b,
            change: StatusChange::Deceased,
        },
    )
    .unwrap();
    let tx = disburse(&mut f, allocation, 500_000);
    assert_eq!(refused(&mut f, vec![tx]).0, "beneficiary_inactive");
}

#[test]
fn objection_past_its_deadline_escalates_to_the_ministry() {
    let mut f = fixture();
    let b = f.enrolled_beneficiary("3510000000000015");
    let pemda = f.key("pemda-3510");
    let filed = f.sign(
        &pemda,
        Action::FileObjection {
            subject: ObjectionSubject::Beneficiary(b),
            claim: ClaimCode::NotEligible,
            evidence_hash: Hash32::digest(b"x"),
        },
    );
    let objection = filed.hash();
    f.commit(vec![filed]).unwrap();
    f.advance(15 * DAY_MS);
    let late = f.sign(
        &pemda,
        Action::ResolveObjection {
            objection,
            upheld: true,
            consequence: Consequence::SuspendBeneficiary,
        },
    );
    assert_eq!(refused(&mut f, vec![late]).0, "objection_deadline_passed");
    let kemensos = f.key("kemensos");
    f.step(
        &kemensos,
        Action::ResolveObjection {
            objection,
            upheld: true,
            consequence: Consequence::SuspendBeneficiary,
        },
    )
    .unwrap();
    let record: BeneficiaryRecord = f.ledger.state_get(&keys::beneficiary(&b)).unwrap().unwrap();
    assert_eq!(record.status, LifeStatus::Suspended);
    let again = f.sign(
        &kemensos,
        Action::ResolveObjection {
            objection,
            upheld: false,
            consequence: Consequence::None,
        },
    );
    assert_eq!(refused(&mut f, vec![again]).0, "already_resolved");
}

#[test]
fn objection_within_its_deadline_may_be_resolved_by_the_region() {
    let mut f = fixture();
    let b = f.enrolled_beneficiary("3510000000000016");
    let pemda = f.key("pemda-3510");
    let filed = f.sign(
        &f.key("bpk"),
        Action::FileObjection {
            subject: ObjectionSubject::Beneficiary(b),
            claim: ClaimCode::Duplicate,
            evidence_hash: Hash32::digest(b"x"),
        },
    );
    let objection = filed.hash();
    f.commit(vec![filed]).unwrap();
    f.advance(13 * DAY_MS);
    f.step(
        &pemda,
        Action::ResolveObjection {
            objection,
            upheld: false,
            consequence: Consequence::None,
        },
    )
    .unwrap();
}

#[test]
fn replayed_nonce_is_refused() {
    let mut f = fixture();
    let kemensos = f.key("kemensos");
    let tracking = f.new_tracking_hash();
    let b = f.enrolled_beneficiary("3510000000000017");
    let tx = f.sign(
        &kemensos,
        Action::Enrol {
            beneficiary: b,
            program: program("BPNT"),
            tracking_code_hash: tracking,
            beneficiary_key: None,
        },
    );
    f.commit(vec![tx.clone()]).unwrap();
    // The very same signed bytes, submitted again.
    assert_eq!(refused(&mut f, vec![tx]).0, "bad_nonce");
}

#[test]
fn wrong_chain_id_is_refused() {
    let mut f = fixture();
    let kemensos = f.key("kemensos");
    let signer = PublicKey(kemensos.verifying_key().to_bytes());
    let tx = TxBody {
        chain_id: "bansos-other-network".into(),
        signer,
        nonce: 0,
        action: Action::RevokeAgent { key: signer },
    }
    .sign(&kemensos);
    assert_eq!(refused(&mut f, vec![tx]).0, "wrong_chain_id");
}

#[test]
fn bad_signature_is_refused() {
    let mut f = fixture();
    let pemda = f.key("pemda-3510");
    let b = f.new_beneficiary("3510000000000018");
    let mut tx = f.sign(
        &pemda,
        Action::Propose {
            beneficiary: b,
            region: region(BANYUWANGI_VILLAGE),
            household_size: 2,
            welfare_decile: 1,
        },
    );
    if let Action::Propose { household_size, .. } = &mut tx.body.action {
        // Changed after signing: the signature no longer covers the body.
        *household_size = 9;
    }
    assert_eq!(refused(&mut f, vec![tx.clone()]).0, "bad_signature");
    tx.signature = SignatureBytes([0; 64]);
    assert_eq!(refused(&mut f, vec![tx]).0, "bad_signature");
}

#[test]
fn signer_role_is_enforced() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let b = f.enrolled_beneficiary("3510000000000019");
    // A bank may pay, never allocate.
    let bank = f.key("bank-bri");
    let tx = f.sign(
        &bank,
        Action::Allocate {
            beneficiary: b,
            program: program("PKH"),
            period: period("2026-T1"),
            amount: Rupiah(1),
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
    // An auditor may not propose.
    let tx = f.sign(
        &f.key("bpk"),
        Action::Propose {
            beneficiary: Hash32::digest(b"z"),
            region: region(BANYUWANGI_VILLAGE),
            household_size: 2,
            welfare_decile: 1,
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
    // A key nobody registered signs nothing.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let tx = f.sign(
        &stranger,
        Action::RevokeAgent {
            key: PublicKey([1; 32]),
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "unknown_signer");
}

#[test]
fn signer_region_scope_is_enforced() {
    let mut f = fixture();
    // Pemda Banyuwangi cannot propose a household in Mataram.
    let pemda = f.key("pemda-3510");
    let tx = f.sign(
        &pemda,
        Action::Propose {
            beneficiary: Hash32::digest(b"m"),
            region: region(MATARAM_VILLAGE),
            household_size: 2,
            welfare_decile: 1,
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "region_not_allowed");

    // BRI is assigned to Banyuwangi: it cannot pay a Mataram allocation.
    let b = f.new_beneficiary("5271000000000001");
    let mataram = f.key("pemda-5271");
    f.step(
        &mataram,
        Action::Propose {
            beneficiary: b,
            region: region(MATARAM_VILLAGE),
            household_size: 2,
            welfare_decile: 1,
        },
    )
    .unwrap();
    f.step(
        &f.key("dukcapil"),
        Action::CheckIdentity {
            beneficiary: b,
            passed: true,
            evidence_hash: Hash32::digest(b"e"),
        },
    )
    .unwrap();
    f.step(
        &mataram,
        Action::VerifyEligibility {
            beneficiary: b,
            outcome: ledger::tx::Verification::Verified,
        },
    )
    .unwrap();
    let tracking_code_hash = f.new_tracking_hash();
    let kemensos = f.key("kemensos");
    f.step(
        &kemensos,
        Action::Enrol {
            beneficiary: b,
            program: program("PKH"),
            tracking_code_hash,
            beneficiary_key: None,
        },
    )
    .unwrap();
    f.step(
        &kemensos,
        Action::DeclareBudget {
            program: program("PKH"),
            period: period("2026-T1"),
            ceilings: vec![ledger::tx::BudgetCeiling {
                region: region("52.71"),
                ceiling: Rupiah(1_000_000),
            }],
        },
    )
    .unwrap();
    let allocation = allocate(&mut f, b, 600_000, "2026-T1").unwrap();
    let tx = disburse(&mut f, allocation, 600_000);
    assert_eq!(refused(&mut f, vec![tx]).0, "region_not_allowed");
    // Pemda Banyuwangi cannot verify a Mataram household either.
    let tx = f.sign(
        &pemda,
        Action::VerifyEligibility {
            beneficiary: b,
            outcome: ledger::tx::Verification::Rejected { reason_code: 1 },
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "region_not_allowed");
}

#[test]
fn agents_act_within_their_role_and_stop_when_revoked() {
    let mut f = fixture();
    let pemda = f.key("pemda-3510");
    let agent = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let agent_public = PublicKey(agent.verifying_key().to_bytes());
    // The agent is scoped to one district.
    f.step(
        &pemda,
        Action::RegisterAgent {
            key: agent_public,
            role: AgentRole::Pendamping,
            regions: vec![region("35.10.20")],
        },
    )
    .unwrap();
    let b = f.new_beneficiary("3510000000000020");
    f.step(
        &agent,
        Action::Propose {
            beneficiary: b,
            region: region(BANYUWANGI_VILLAGE),
            household_size: 5,
            welfare_decile: 1,
        },
    )
    .unwrap();
    let elsewhere = f.sign(
        &agent,
        Action::Propose {
            beneficiary: Hash32::digest(b"o"),
            region: region("35.10.01.2001"),
            household_size: 5,
            welfare_decile: 1,
        },
    );
    assert_eq!(refused(&mut f, vec![elsewhere]).0, "region_not_allowed");
    // A pendamping does not verify eligibility.
    let tx = f.sign(
        &agent,
        Action::VerifyEligibility {
            beneficiary: b,
            outcome: ledger::tx::Verification::Verified,
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
    f.step(&pemda, Action::RevokeAgent { key: agent_public })
        .unwrap();
    let tx = f.sign(
        &agent,
        Action::Propose {
            beneficiary: Hash32::digest(b"p"),
            region: region(BANYUWANGI_VILLAGE),
            household_size: 5,
            welfare_decile: 1,
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "revoked_signer");
    // Another organisation cannot revoke this organisation's agents.
    let tx = f.sign(
        &f.key("pemda-5271"),
        Action::RevokeAgent { key: agent_public },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
}

#[test]
fn receipt_is_confirmed_by_the_beneficiary_key_only_after_payment() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let app = ed25519_dalek::SigningKey::from_bytes(&[11; 32]);
    let other_app = ed25519_dalek::SigningKey::from_bytes(&[12; 32]);
    let b = f.enrolled_beneficiary("3510000000000021");
    let c = f.enrolled_beneficiary("3510000000000022");
    let kemensos = f.key("kemensos");
    for (who, key) in [(b, &app), (c, &other_app)] {
        let tracking_code_hash = f.new_tracking_hash();
        f.step(
            &kemensos,
            Action::Enrol {
                beneficiary: who,
                program: program("BPNT"),
                tracking_code_hash,
                beneficiary_key: Some(PublicKey(key.verifying_key().to_bytes())),
            },
        )
        .unwrap();
    }
    let allocation = allocate(&mut f, b, 300_000, "2026-T1").unwrap();
    let early = f.sign(
        &app,
        Action::ConfirmReceipt {
            allocation,
            received: true,
        },
    );
    assert_eq!(refused(&mut f, vec![early]).0, "not_disbursed");
    let tx = disburse(&mut f, allocation, 300_000);
    f.commit(vec![tx]).unwrap();
    let impostor = f.sign(
        &other_app,
        Action::ConfirmReceipt {
            allocation,
            received: false,
        },
    );
    assert_eq!(refused(&mut f, vec![impostor]).0, "role_not_allowed");
    f.step(
        &app,
        Action::ConfirmReceipt {
            allocation,
            received: true,
        },
    )
    .unwrap();
    let twice = f.sign(
        &app,
        Action::ConfirmReceipt {
            allocation,
            received: false,
        },
    );
    assert_eq!(refused(&mut f, vec![twice]).0, "already_confirmed");
}

#[test]
fn each_kind_of_bad_input_is_refused_with_its_own_error_code() {
    // The eight refusals the issue names, produced for real in one ledger, each leaving the
    // store untouched; their codes must all differ so a client can tell them apart
    // without parsing messages.
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 1_000_000);
    let b = f.enrolled_beneficiary("3510000000000030");
    let allocation = allocate(&mut f, b, 600_000, "2026-T1").unwrap();
    let pemda = f.key("pemda-3510");
    let kemensos = f.key("kemensos");
    let mut codes = Vec::new();

    let mut forged = f.sign(
        &pemda,
        Action::ChangeStatus {
            beneficiary: b,
            change: StatusChange::Graduated,
        },
    );
    forged.signature = SignatureBytes([1; 64]);
    codes.push(refused(&mut f, vec![forged]).0);

    let signer = PublicKey(kemensos.verifying_key().to_bytes());
    let foreign = TxBody {
        chain_id: "bansos-elsewhere".into(),
        signer,
        nonce: 0,
        action: Action::RevokeAgent { key: signer },
    }
    .sign(&kemensos);
    codes.push(refused(&mut f, vec![foreign]).0);

    let replayed = TxBody {
        chain_id: f.ledger.chain_id().into(),
        signer,
        nonce: 0,
        action: Action::RevokeAgent { key: signer },
    }
    .sign(&kemensos);
    codes.push(refused(&mut f, vec![replayed]).0);

    let wrong_role = f.sign(
        &f.key("bank-bri"),
        Action::ChangeStatus {
            beneficiary: b,
            change: StatusChange::Graduated,
        },
    );
    codes.push(refused(&mut f, vec![wrong_role]).0);

    let wrong_region = f.sign(
        &f.key("pemda-5271"),
        Action::ChangeStatus {
            beneficiary: b,
            change: StatusChange::Graduated,
        },
    );
    codes.push(refused(&mut f, vec![wrong_region]).0);

    let c = f.enrolled_beneficiary("3510000000000031");
    let over_budget = allocation_tx(&mut f, c, "PKH", "2026-T1", 400_001);
    codes.push(refused(&mut f, vec![over_budget]).0);

    let too_much = disburse(&mut f, allocation, 600_001);
    codes.push(refused(&mut f, vec![too_much]).0);
    let paid = disburse(&mut f, allocation, 600_000);
    f.commit(vec![paid]).unwrap();
    let again = disburse(&mut f, allocation, 1);
    codes.push(refused(&mut f, vec![again]).0);

    assert_eq!(
        codes,
        [
            "bad_signature",
            "wrong_chain_id",
            "bad_nonce",
            "role_not_allowed",
            "region_not_allowed",
            "over_budget",
            "over_disbursement",
            "double_disbursement"
        ]
    );
    assert_eq!(codes.iter().collect::<BTreeSet<_>>().len(), codes.len());
}

#[test]
fn a_block_with_one_bad_transaction_is_refused_whole() {
    let mut f = fixture();
    let pemda = f.key("pemda-3510");
    let good = f.sign(
        &pemda,
        Action::Propose {
            beneficiary: Hash32::digest(b"g"),
            region: region(BANYUWANGI_VILLAGE),
            household_size: 2,
            welfare_decile: 1,
        },
    );
    let bad = f.sign(
        &pemda,
        Action::Propose {
            beneficiary: Hash32::digest(b"g"),
            region: region(BANYUWANGI_VILLAGE),
            household_size: 2,
            welfare_decile: 1,
        },
    );
    // Build a block from the good transaction alone, then splice in the duplicate the way
    // a faulty proposer would: the header no longer matches, and even with a header
    // recomputed for both the block is refused.
    let prepared = f
        .ledger
        .build_block(
            vec![good.clone()],
            f.time_ms + 1,
            f.proposer(),
            SignatureCheck::VerifyAll,
        )
        .unwrap();
    let mut block = prepared.block.clone();
    block.txs.push(bad);
    block.header.tx_count = 2;
    let before = f.ledger.store().dump().unwrap();
    let error = f
        .ledger
        .prepare_block(&block, SignatureCheck::VerifyAll)
        .unwrap_err();
    assert_eq!(error.code(), "invalid_tx_in_block", "{error}");
    assert_eq!(f.ledger.store().dump().unwrap(), before);
}

#[test]
fn a_header_that_lies_about_a_root_is_refused() {
    let mut f = fixture();
    let pemda = f.key("pemda-3510");
    let tx = f.sign(
        &pemda,
        Action::Propose {
            beneficiary: Hash32::digest(b"h"),
            region: region(BANYUWANGI_VILLAGE),
            household_size: 2,
            welfare_decile: 1,
        },
    );
    let prepared = f
        .ledger
        .build_block(
            vec![tx],
            f.time_ms + 1,
            f.proposer(),
            SignatureCheck::VerifyAll,
        )
        .unwrap();
    for field in ["state_root", "log_root", "tx_root"] {
        let mut block = prepared.block.clone();
        match field {
            "state_root" => block.header.state_root = Hash32::digest(b"lie"),
            "log_root" => block.header.log_root = Hash32::digest(b"lie"),
            _ => block.header.tx_root = Hash32::digest(b"lie"),
        }
        let error = f
            .ledger
            .prepare_block(&block, SignatureCheck::VerifyAll)
            .unwrap_err();
        assert_eq!(error, LedgerError::HeaderMismatch { field }, "{field}");
    }
    let mut block = prepared.block.clone();
    block.header.time_ms = f.ledger.tip().time_ms;
    assert_eq!(
        f.ledger
            .prepare_block(&block, SignatureCheck::VerifyAll)
            .unwrap_err()
            .code(),
        "time_not_increasing"
    );
    let mut block = prepared.block.clone();
    block.header.proposer = PublicKey(
        ed25519_dalek::SigningKey::from_bytes(&[3; 32])
            .verifying_key()
            .to_bytes(),
    );
    assert_eq!(
        f.ledger
            .prepare_block(&block, SignatureCheck::VerifyAll)
            .unwrap_err()
            .code(),
        "unknown_proposer"
    );
    // The honest block still applies.
    let checked = f
        .ledger
        .prepare_block(&prepared.block, SignatureCheck::VerifyAll)
        .unwrap();
    f.ledger.commit(checked, b"cert").unwrap();
    assert_eq!(f.ledger.tip().height, 1);
}

#[test]
fn auditor_cosigns_only_a_true_checkpoint() {
    let mut f = fixture();
    f.enrolled_beneficiary("3510000000000023");
    let size = f.ledger.tip().log.size();
    let root = f.ledger.log_root_at(size).unwrap();
    let bpk = f.key("bpk");
    let wrong = f.sign(
        &bpk,
        Action::Attest {
            attestation: ledger::tx::Attestation::Checkpoint {
                size,
                root: Hash32::digest(b"no"),
            },
        },
    );
    assert_eq!(refused(&mut f, vec![wrong]).0, "checkpoint_mismatch");
    let ahead = f.sign(
        &bpk,
        Action::Attest {
            attestation: ledger::tx::Attestation::Checkpoint {
                size: size + 5,
                root,
            },
        },
    );
    assert_eq!(refused(&mut f, vec![ahead]).0, "checkpoint_ahead");
    f.step(
        &bpk,
        Action::Attest {
            attestation: ledger::tx::Attestation::Checkpoint { size, root },
        },
    )
    .unwrap();
    let older_root = f.ledger.log_root_at(2).unwrap();
    f.step(
        &bpk,
        Action::Attest {
            attestation: ledger::tx::Attestation::Checkpoint {
                size: 2,
                root: older_root,
            },
        },
    )
    .unwrap();
}

#[test]
fn admission_check_refuses_without_changing_anything() {
    let f = fixture();
    let kemensos = f.key("kemensos");
    let signer = PublicKey(kemensos.verifying_key().to_bytes());
    let good = TxBody {
        chain_id: f.ledger.chain_id().into(),
        signer,
        nonce: 0,
        action: Action::RevokeAgent {
            key: PublicKey([5; 32]),
        },
    }
    .sign(&kemensos);
    assert!(f.ledger.check_transaction(&good, false).is_ok());
    // Future nonces are admitted (they wait in the mempool); used ones are not.
    let future = TxBody {
        nonce: 7,
        ..good.body.clone()
    }
    .sign(&kemensos);
    assert!(f.ledger.check_transaction(&future, false).is_ok());
    let bank = f.key("bank-bri");
    let wrong_role = TxBody {
        chain_id: f.ledger.chain_id().into(),
        signer: PublicKey(bank.verifying_key().to_bytes()),
        nonce: 0,
        action: Action::Allocate {
            beneficiary: Hash32::ZERO,
            program: program("PKH"),
            period: period("x"),
            amount: Rupiah(1),
        },
    }
    .sign(&bank);
    assert_eq!(
        f.ledger
            .check_transaction(&wrong_role, false)
            .unwrap_err()
            .code(),
        "role_not_allowed"
    );
    let mut bad = good.clone();
    bad.signature = SignatureBytes([7; 64]);
    assert_eq!(
        f.ledger.check_transaction(&bad, false).unwrap_err().code(),
        "bad_signature"
    );
    assert_eq!(f.ledger.tip().height, 0);
}

/// A household proposed in `village`, identity-checked, verified and enrolled in PKH.
fn enrolled_in(f: &mut F, nik: &str, village: &str) -> Pseudonym {
    let beneficiary = f.new_beneficiary(nik);
    let (pemda, dukcapil, kemensos) = (f.key("pemda-3510"), f.key("dukcapil"), f.key("kemensos"));
    let steps = [
        (
            &pemda,
            Action::Propose {
                beneficiary,
                region: region(village),
                household_size: 4,
                welfare_decile: 1,
            },
        ),
        (
            &dukcapil,
            Action::CheckIdentity {
                beneficiary,
                passed: true,
                evidence_hash: Hash32::digest(b"ikd"),
            },
        ),
        (
            &pemda,
            Action::VerifyEligibility {
                beneficiary,
                outcome: ledger::tx::Verification::Verified,
            },
        ),
    ];
    for (key, action) in steps {
        f.step(key, action).unwrap();
    }
    let tracking_code_hash = f.new_tracking_hash();
    f.step(
        &kemensos,
        Action::Enrol {
            beneficiary,
            program: program("PKH"),
            tracking_code_hash,
            beneficiary_key: None,
        },
    )
    .unwrap();
    beneficiary
}

fn declare(
    f: &mut F,
    key: &ed25519_dalek::SigningKey,
    region_code: &str,
    ceiling: u64,
) -> ledger::Transaction {
    f.sign(
        key,
        Action::DeclareBudget {
            program: program("PKH"),
            period: period("2026-T1"),
            ceilings: vec![ledger::tx::BudgetCeiling {
                region: region(region_code),
                ceiling: Rupiah(ceiling),
            }],
        },
    )
}

/// Another Banyuwangi village than [`BANYUWANGI_VILLAGE`].
fn other_banyuwangi_village(f: &F) -> String {
    f.net
        .genesis
        .regions
        .iter()
        .map(|r| r.code.to_string())
        .find(|c| c.starts_with("35.10.") && c.split('.').count() == 4 && c != BANYUWANGI_VILLAGE)
        .expect("a second village")
}

#[test]
fn budget_ceiling_cannot_be_bypassed_through_nested_regions() {
    let mut f = fixture();
    let kemensos = f.key("kemensos");
    let tx = declare(&mut f, &kemensos, "35.10", 500_000);
    f.commit(vec![tx]).unwrap();
    // A village's ceiling may not exceed its regency's.
    let too_big = declare(&mut f, &kemensos, BANYUWANGI_VILLAGE, 2_000_000);
    assert_eq!(refused(&mut f, vec![too_big]).0, "ceiling_above_parent");
    let tx = declare(&mut f, &kemensos, BANYUWANGI_VILLAGE, 400_000);
    f.commit(vec![tx]).unwrap();
    let in_village = enrolled_in(&mut f, "3510000000000301", BANYUWANGI_VILLAGE);
    let elsewhere = other_banyuwangi_village(&f);
    let outside = enrolled_in(&mut f, "3510000000000302", &elsewhere);
    // The village allocation is charged to the village and to the regency: the regency's
    // remaining 200,000 cannot be spent twice through the village budget.
    allocate(&mut f, in_village, 300_000, "2026-T1").unwrap();
    let tx = allocation_tx(&mut f, outside, "PKH", "2026-T1", 250_000);
    assert_eq!(refused(&mut f, vec![tx]).0, "over_budget");
    allocate(&mut f, outside, 200_000, "2026-T1").unwrap();
    let regency: ledger::state::BudgetRecord = f
        .ledger
        .state_get(&keys::budget(
            &program("PKH"),
            &period("2026-T1"),
            &region("35.10"),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(regency.allocated, Rupiah(500_000));
}

#[test]
fn only_the_ministrys_organisation_key_declares_budgets() {
    let mut f = fixture();
    let kemensos = f.key("kemensos");
    let operator = ed25519_dalek::SigningKey::from_bytes(&[31; 32]);
    f.step(
        &kemensos,
        Action::RegisterAgent {
            key: PublicKey(operator.verifying_key().to_bytes()),
            role: AgentRole::Operator,
            regions: vec![region("35.10.20")],
        },
    )
    .unwrap();
    let tx = declare(&mut f, &operator, BANYUWANGI_VILLAGE, 1_000);
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
}

#[test]
fn a_pendamping_confirmation_does_not_silence_the_beneficiarys_own_not_received() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let app = ed25519_dalek::SigningKey::from_bytes(&[41; 32]);
    let b = f.enrolled_beneficiary("3510000000000311");
    let (kemensos, pemda) = (f.key("kemensos"), f.key("pemda-3510"));
    let tracking_code_hash = f.new_tracking_hash();
    f.step(
        &kemensos,
        Action::Enrol {
            beneficiary: b,
            program: program("BPNT"),
            tracking_code_hash,
            beneficiary_key: Some(PublicKey(app.verifying_key().to_bytes())),
        },
    )
    .unwrap();
    let pendamping = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    f.step(
        &pemda,
        Action::RegisterAgent {
            key: PublicKey(pendamping.verifying_key().to_bytes()),
            role: AgentRole::Pendamping,
            regions: vec![region("35.10.20")],
        },
    )
    .unwrap();
    let allocation = allocate(&mut f, b, 300_000, "2026-T1").unwrap();
    let tx = disburse(&mut f, allocation, 300_000);
    f.commit(vec![tx]).unwrap();
    f.step(
        &pendamping,
        Action::ConfirmReceipt {
            allocation,
            received: true,
        },
    )
    .unwrap();
    f.step(
        &app,
        Action::ConfirmReceipt {
            allocation,
            received: false,
        },
    )
    .unwrap();
    let record: AllocationRecord = f
        .ledger
        .state_get(&keys::allocation(&allocation))
        .unwrap()
        .unwrap();
    // Both statements stay: the conflict is visible.
    let first = record.receipt.expect("the pendamping's confirmation");
    let own = record
        .beneficiary_statement
        .expect("the beneficiary's own statement");
    assert!(first.received && !first.by_beneficiary);
    assert!(!own.received && own.by_beneficiary);
    // Each speaks once.
    let again = f.sign(
        &app,
        Action::ConfirmReceipt {
            allocation,
            received: true,
        },
    );
    assert_eq!(refused(&mut f, vec![again]).0, "already_confirmed");
    let again = f.sign(
        &pendamping,
        Action::ConfirmReceipt {
            allocation,
            received: true,
        },
    );
    assert_eq!(refused(&mut f, vec![again]).0, "already_confirmed");
}

fn status(
    f: &mut F,
    key: &ed25519_dalek::SigningKey,
    beneficiary: Pseudonym,
    change: StatusChange,
) -> ledger::Transaction {
    f.sign(
        key,
        Action::ChangeStatus {
            beneficiary,
            change,
        },
    )
}

fn life_status(f: &F, beneficiary: &Pseudonym) -> LifeStatus {
    let record: BeneficiaryRecord = f
        .ledger
        .state_get(&keys::beneficiary(beneficiary))
        .unwrap()
        .unwrap();
    record.status
}

#[test]
fn a_regional_office_cannot_undo_a_ministry_suspension_or_a_graduation() {
    let mut f = fixture();
    let (kemensos, pemda) = (f.key("kemensos"), f.key("pemda-3510"));
    let b = f.enrolled_beneficiary("3510000000000321");
    let tx = status(&mut f, &kemensos, b, StatusChange::Suspended);
    f.commit(vec![tx]).unwrap();
    let tx = status(&mut f, &pemda, b, StatusChange::Reinstated);
    assert_eq!(refused(&mut f, vec![tx]).0, "status_change_not_allowed");
    let tx = status(&mut f, &kemensos, b, StatusChange::Reinstated);
    f.commit(vec![tx]).unwrap();
    assert_eq!(life_status(&f, &b), LifeStatus::Active);
    // A suspension the regional office imposed, it may lift.
    let tx = status(&mut f, &pemda, b, StatusChange::Suspended);
    f.commit(vec![tx]).unwrap();
    let tx = status(&mut f, &pemda, b, StatusChange::Reinstated);
    f.commit(vec![tx]).unwrap();
    // A graduation is undone by the ministry only; an active beneficiary is not "reinstated".
    let tx = status(&mut f, &pemda, b, StatusChange::Reinstated);
    assert_eq!(refused(&mut f, vec![tx]).0, "status_change_not_allowed");
    let tx = status(&mut f, &pemda, b, StatusChange::Graduated);
    f.commit(vec![tx]).unwrap();
    let tx = status(&mut f, &pemda, b, StatusChange::Reinstated);
    assert_eq!(refused(&mut f, vec![tx]).0, "status_change_not_allowed");
    let tx = status(&mut f, &kemensos, b, StatusChange::Reinstated);
    f.commit(vec![tx]).unwrap();
    assert_eq!(life_status(&f, &b), LifeStatus::Active);
}

#[test]
fn a_wrong_death_record_is_corrected_by_the_civil_registry_and_nobody_else() {
    let mut f = fixture();
    let (dukcapil, pemda) = (f.key("dukcapil"), f.key("pemda-3510"));
    let b = f.enrolled_beneficiary("3510000000000331");
    let tx = status(&mut f, &dukcapil, b, StatusChange::DeathRecordCorrected);
    assert_eq!(refused(&mut f, vec![tx]).0, "status_change_not_allowed");
    let tx = status(&mut f, &dukcapil, b, StatusChange::Deceased);
    f.commit(vec![tx]).unwrap();
    let tx = status(&mut f, &pemda, b, StatusChange::DeathRecordCorrected);
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
    let tx = status(&mut f, &dukcapil, b, StatusChange::DeathRecordCorrected);
    f.commit(vec![tx]).unwrap();
    assert_eq!(life_status(&f, &b), LifeStatus::Active);
}

#[test]
fn no_allocation_or_payment_once_identity_or_eligibility_is_withdrawn() {
    let mut f = fixture();
    f.declare_pkh_budget("2026-T1", 10_000_000);
    let (dukcapil, pemda) = (f.key("dukcapil"), f.key("pemda-3510"));
    let b = f.enrolled_beneficiary("3510000000000341");
    let c = f.enrolled_beneficiary("3510000000000342");
    let paid_later = allocate(&mut f, c, 100_000, "2026-T1").unwrap();
    let tx = f.sign(
        &dukcapil,
        Action::CheckIdentity {
            beneficiary: b,
            passed: false,
            evidence_hash: Hash32::digest(b"x"),
        },
    );
    f.commit(vec![tx]).unwrap();
    let tx = allocation_tx(&mut f, b, "PKH", "2026-T1", 100_000);
    assert_eq!(refused(&mut f, vec![tx]).0, "no_longer_eligible");
    let tx = f.sign(
        &pemda,
        Action::VerifyEligibility {
            beneficiary: c,
            outcome: ledger::tx::Verification::Rejected { reason_code: 7 },
        },
    );
    f.commit(vec![tx]).unwrap();
    let tx = disburse(&mut f, paid_later, 100_000);
    assert_eq!(refused(&mut f, vec![tx]).0, "no_longer_eligible");
}

#[test]
fn beneficiary_app_keys_are_revoked_by_their_owner_or_the_ministry_and_organisations_keep_their_own(
) {
    let mut f = fixture();
    let kemensos = f.key("kemensos");
    let apps: Vec<ed25519_dalek::SigningKey> = (51..53)
        .map(|i| ed25519_dalek::SigningKey::from_bytes(&[i; 32]))
        .collect();
    for (i, app) in apps.iter().enumerate() {
        let b = f.enrolled_beneficiary(&format!("351000000000035{i}"));
        let tracking_code_hash = f.new_tracking_hash();
        f.step(
            &kemensos,
            Action::Enrol {
                beneficiary: b,
                program: program("BPNT"),
                tracking_code_hash,
                beneficiary_key: Some(PublicKey(app.verifying_key().to_bytes())),
            },
        )
        .unwrap();
    }
    let public = |k: &ed25519_dalek::SigningKey| PublicKey(k.verifying_key().to_bytes());
    // One beneficiary cannot revoke another's key; its own, it can.
    let tx = f.sign(
        &apps[0],
        Action::RevokeAgent {
            key: public(&apps[1]),
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
    f.step(
        &apps[0],
        Action::RevokeAgent {
            key: public(&apps[0]),
        },
    )
    .unwrap();
    let tx = f.sign(
        &apps[0],
        Action::RevokeAgent {
            key: public(&apps[0]),
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "revoked_signer");
    // The ministry revokes a lost phone's key; a regional office may not.
    let tx = f.sign(
        &f.key("pemda-3510"),
        Action::RevokeAgent {
            key: public(&apps[1]),
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
    f.step(
        &kemensos,
        Action::RevokeAgent {
            key: public(&apps[1]),
        },
    )
    .unwrap();
    // An organisation key cannot revoke itself (it would lock the organisation out), nor
    // another organisation's key.
    let tx = f.sign(
        &kemensos,
        Action::RevokeAgent {
            key: public(&kemensos),
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
    let tx = f.sign(
        &kemensos,
        Action::RevokeAgent {
            key: public(&f.key("bank-bri")),
        },
    );
    assert_eq!(refused(&mut f, vec![tx]).0, "role_not_allowed");
}

#[test]
fn a_move_out_of_the_signers_regions_is_recorded_by_a_national_authority_only() {
    let mut f = fixture();
    let (pemda, dukcapil) = (f.key("pemda-3510"), f.key("dukcapil"));
    let b = f.enrolled_beneficiary("3510000000000361");
    let to_mataram = StatusChange::Moved {
        to: region(MATARAM_VILLAGE),
    };
    let tx = status(&mut f, &pemda, b, to_mataram.clone());
    assert_eq!(refused(&mut f, vec![tx]).0, "region_not_allowed");
    let tx = status(&mut f, &dukcapil, b, to_mataram);
    f.commit(vec![tx]).unwrap();
    let record: BeneficiaryRecord = f.ledger.state_get(&keys::beneficiary(&b)).unwrap().unwrap();
    assert_eq!(record.region, region(MATARAM_VILLAGE));
}

/// A skipped nonce (issue: institution operations, `bansos import`): a run of signed
/// transactions whose first was refused goes in unchanged once a `SkipNonce` takes the
/// refused one's nonce; the refused transaction can never be included afterwards; the skip
/// changes nothing but the signer's nonce.
#[test]
fn a_skipped_nonce_lets_the_rest_of_a_signed_run_in_and_shuts_the_refused_one_out() {
    let mut f = fixture();
    let pemda = f.key("pemda-3510");
    let signer = PublicKey(pemda.verifying_key().to_bytes());
    let taken = f.enrolled_beneficiary("3510000000000031");
    let propose = |beneficiary: Pseudonym| Action::Propose {
        beneficiary,
        region: region(BANYUWANGI_VILLAGE),
        household_size: 4,
        welfare_decile: 1,
    };
    // A run of three signed in advance: the first repeats a proposal, so it is refused.
    let doomed = f.sign(&pemda, propose(taken));
    let second = f.new_beneficiary("3510000000000032");
    let second = f.sign(&pemda, propose(second));
    let third = f.new_beneficiary("3510000000000033");
    let third = f.sign(&pemda, propose(third));
    assert_eq!(
        refused(&mut f, vec![doomed.clone()]).0,
        "duplicate_proposal"
    );
    let nonce_before = f.ledger.next_nonce(&signer).expect("nonce");
    let state_before = f.ledger.store().dump().expect("dump");
    let skip = TxBody {
        chain_id: f.ledger.chain_id().to_owned(),
        signer,
        nonce: doomed.body.nonce,
        action: Action::SkipNonce {},
    }
    .sign(&pemda);
    f.commit(vec![skip])
        .expect("any signer may skip its next nonce");
    assert_eq!(
        f.ledger.next_nonce(&signer).expect("nonce"),
        nonce_before.map(|n| n + 1)
    );
    // Only the signer's key record (its nonce), the log and the block records changed:
    // no beneficiary, allocation or budget entry.
    let after = f.ledger.store().dump().expect("dump");
    let changed: Vec<&Vec<u8>> = after
        .iter()
        .filter(|(column, _)| *column == ledger::store::Column::State)
        .filter(|entry| !state_before.contains(entry))
        .map(|(_, (key, _))| key)
        .collect();
    assert_eq!(
        changed,
        vec![&keys::signer(&signer)],
        "a skip changed more than the nonce"
    );
    f.commit(vec![second, third])
        .expect("the rest of the run goes in unchanged");
    assert_eq!(refused(&mut f, vec![doomed]).0, "bad_nonce");
}
