//! Governance: changes to the consortium take effect at their activation height only with
//! the genesis rule's approvals (three organisations, the ministry among them, on the test
//! network), are checked again when due, and leave every earlier signature valid history.

use bansos_tests::*;
use ed25519_dalek::SigningKey;
use ledger::chain::SignatureCheck;
use ledger::genesis::{OrgKind, Organisation, Program, ValidatorSpec};
use ledger::governance::{Change, ChangeStatus};
use ledger::note::NoteKey;
use ledger::tx::Action;
use ledger::types::{Hash32, OrgId, PublicKey, TxHash};
use ledger::{LedgerError, MemoryStore};
use rand::SeedableRng;

type F = Fixture<MemoryStore>;

fn fixture() -> F {
    Fixture::new(MemoryStore::new(), 7)
}

fn org(id: &str) -> OrgId {
    OrgId::new(id).expect("valid organisation id")
}

fn public(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

fn fresh_key(seed: u64) -> SigningKey {
    SigningKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
}

/// A validator with fresh consensus and checkpoint keys.
fn new_validator(f: &F, seed: u64, power: u64) -> (SigningKey, ValidatorSpec) {
    let key = fresh_key(seed);
    let checkpoint = fresh_key(seed + 1_000);
    let origin = f.ledger.genesis().genesis.log_origin.clone();
    let spec = ValidatorSpec {
        key: public(&key),
        power,
        checkpoint_key: NoteKey::ed25519(&origin, public(&checkpoint))
            .expect("note key")
            .vkey(),
    };
    (key, spec)
}

/// Proposes `change` as `proposer` to take effect `delay` blocks after the next one;
/// returns its id.
fn propose(f: &mut F, proposer: &str, change: Change, delay: u64) -> Result<TxHash, LedgerError> {
    let activation_height = f.ledger.tip().height + 1 + delay;
    let key = f.key(proposer);
    let tx = f.sign(
        &key,
        Action::ProposeChange {
            change,
            activation_height,
        },
    );
    let id = tx.hash();
    f.commit(vec![tx])?;
    Ok(id)
}

fn approve(f: &mut F, approver: &str, id: TxHash) -> Result<(), LedgerError> {
    let key = f.key(approver);
    f.step(&key, Action::ApproveChange { change: id })
}

/// Commits empty blocks until the tip is `height`.
fn run_to(f: &mut F, height: u64) {
    while f.ledger.tip().height < height {
        f.commit(vec![]).expect("an empty block commits");
    }
}

fn status(f: &F, id: TxHash) -> ChangeStatus {
    f.ledger
        .change(&id)
        .expect("read")
        .expect("the change is recorded")
        .status
}

/// Proposes `change` as the ministry, has two more organisations approve, and runs the
/// chain to its activation height; returns the change's id and that height.
fn enact(f: &mut F, change: Change) -> (TxHash, u64) {
    let id = propose(f, "kemensos", change, 3).expect("proposed");
    approve(f, "bpk", id).expect("bpk approves");
    approve(f, "dukcapil", id).expect("dukcapil approves");
    let due = f.ledger.change(&id).unwrap().unwrap().activation_height;
    run_to(f, due - 1);
    (id, due)
}

#[test]
fn a_rotated_key_is_refused_from_the_activation_height_and_the_new_one_signs() {
    let mut f = fixture();
    let old = f.key("bank-bri");
    let new = fresh_key(1);
    let change = Change::RotateKey {
        org: org("bank-bri"),
        old: public(&old),
        new: public(&new),
    };
    let id = propose(&mut f, "bank-bri", change, 4).expect("the bank proposes its own rotation");
    approve(&mut f, "kemensos", id).expect("kemensos approves");
    approve(&mut f, "bpk", id).expect("bpk approves");
    // Until the change is due, the old key still signs.
    f.step(&old, Action::SkipNonce {})
        .expect("the old key signs before activation");
    let due = f.ledger.change(&id).unwrap().unwrap().activation_height;
    run_to(&mut f, due - 1);
    assert_eq!(status(&f, id), ChangeStatus::Activated);
    let old_tx = f.sign(&old, Action::SkipNonce {});
    let error = f.commit(vec![old_tx]).expect_err("the old key is refused");
    assert_eq!(error.code(), "revoked_signer", "{error}");
    f.step(&new, Action::SkipNonce {})
        .expect("the new key signs, nonce 0");
    let record = f
        .ledger
        .key_record(&public(&new))
        .unwrap()
        .expect("the new key is recorded");
    assert_eq!(record.next_nonce, 1);
    // History stays: the old key's blocks are still in the chain and still verify.
    let first = f.ledger.block(1).unwrap().expect("block 1");
    assert_eq!(first.txs[0].body.signer, public(&f.key("bank-bri")));
    let orgs = f.ledger.organisations().unwrap();
    let bank = orgs
        .iter()
        .find(|o| o.organisation.id == org("bank-bri"))
        .unwrap();
    assert_eq!(bank.organisation.tx_keys, vec![public(&new)]);
}

#[test]
fn a_change_without_the_ministrys_approval_expires_and_changes_nothing() {
    let mut f = fixture();
    let old = f.key("bank-bri");
    let change = Change::RotateKey {
        org: org("bank-bri"),
        old: public(&old),
        new: public(&fresh_key(2)),
    };
    let id = propose(&mut f, "bank-bri", change, 5).unwrap();
    approve(&mut f, "bpk", id).unwrap();
    approve(&mut f, "dukcapil", id).unwrap();
    approve(&mut f, "pos", id).unwrap();
    let due = f.ledger.change(&id).unwrap().unwrap().activation_height;
    run_to(&mut f, due);
    assert_eq!(status(&f, id), ChangeStatus::Expired);
    f.step(&old, Action::SkipNonce {})
        .expect("the old key still signs");
    assert_eq!(f.ledger.governance_epoch().unwrap(), 0);
}

#[test]
fn approvals_are_refused_twice_after_the_activation_height_and_for_unknown_changes() {
    let mut f = fixture();
    let change = Change::SetProgram {
        program: Program {
            code: program("PIP"),
            name: "Program Indonesia Pintar".into(),
        },
    };
    // Proposed in block P, due at P + 2: it falls due at the end of block P + 1.
    let id = propose(&mut f, "kemensos", change, 2).unwrap();
    let twice = approve(&mut f, "kemensos", id).expect_err("the proposer's approval counts once");
    assert_eq!(twice.code(), "already_approved");
    let unknown = approve(&mut f, "bpk", Hash32::digest(b"no such change"));
    assert_eq!(unknown.unwrap_err().code(), "unknown_change");
    // Block P + 1: the second approval of three, then the change expires.
    approve(&mut f, "bpk", id).unwrap();
    let late = approve(&mut f, "dukcapil", id).expect_err("the change was due at this height");
    assert_eq!(late.code(), "change_closed");
    assert_eq!(status(&f, id), ChangeStatus::Expired);
}

#[test]
fn activation_heights_outside_the_window_are_refused() {
    let mut f = fixture();
    let change = Change::SetProgram {
        program: Program {
            code: program("PIP"),
            name: "Program Indonesia Pintar".into(),
        },
    };
    let key = f.key("kemensos");
    let now = f.ledger.tip().height + 1;
    for activation_height in [now, now + ledger::limits::CHANGE_ACTIVATION_DELAY_MAX + 1] {
        let tx = f.sign(
            &key,
            Action::ProposeChange {
                change: change.clone(),
                activation_height,
            },
        );
        let error = f.commit(vec![tx]).expect_err("refused");
        assert_eq!(error.code(), "bad_activation_height");
    }
}

#[test]
fn agents_cannot_propose_or_approve_changes() {
    let mut f = fixture();
    let agent = fresh_key(9);
    let pemda = f.key("pemda-3510");
    f.step(
        &pemda,
        Action::RegisterAgent {
            key: public(&agent),
            role: ledger::tx::AgentRole::Pendamping,
            regions: vec![region(BANYUWANGI_VILLAGE)],
        },
    )
    .expect("agent registered");
    let change = Change::RemoveOrganisation { org: org("bps") };
    let tx = f.sign(
        &agent,
        Action::ProposeChange {
            change,
            activation_height: f.ledger.tip().height + 5,
        },
    );
    let error = f.commit(vec![tx]).expect_err("an agent cannot propose");
    assert_eq!(error.code(), "role_not_allowed", "{error}");
}

#[test]
fn an_added_program_can_be_budgeted_from_its_activation() {
    let mut f = fixture();
    let declare = || Action::DeclareBudget {
        program: program("PIP"),
        period: period("2026-T1"),
        ceilings: vec![ledger::tx::BudgetCeiling {
            region: region("35.10"),
            ceiling: ledger::types::Rupiah(1_000_000),
        }],
    };
    let kemensos = f.key("kemensos");
    let before = f
        .step(&kemensos, declare())
        .expect_err("no such program yet");
    assert_eq!(before.code(), "unknown_program");
    let change = Change::SetProgram {
        program: Program {
            code: program("PIP"),
            name: "Program Indonesia Pintar".into(),
        },
    };
    let (id, _) = enact(&mut f, change);
    assert_eq!(status(&f, id), ChangeStatus::Activated);
    f.step(&kemensos, declare()).expect("the program is known");
}

#[test]
fn an_added_organisation_acts_from_activation_and_a_removed_one_never_again() {
    let mut f = fixture();
    let key = fresh_key(11);
    let dinsos = Organisation {
        id: org("pemda-3510-b"),
        kind: OrgKind::Pemda,
        name: "Dinas Sosial Banyuwangi (kantor baru)".into(),
        regions: vec![region("35.10")],
        programs: vec![],
        tx_keys: vec![public(&key)],
        validator: None,
        witness_key: None,
    };
    let early = f
        .step(&key, Action::SkipNonce {})
        .expect_err("not a member yet");
    assert_eq!(early.code(), "unknown_signer");
    let (id, _) = enact(
        &mut f,
        Change::AddOrganisation {
            organisation: dinsos,
        },
    );
    assert_eq!(status(&f, id), ChangeStatus::Activated);
    let beneficiary = f.new_beneficiary("3510010101010001");
    f.step(
        &key,
        Action::Propose {
            beneficiary,
            region: region(BANYUWANGI_VILLAGE),
            household_size: 3,
            welfare_decile: 2,
        },
    )
    .expect("the new Pemda proposes in its region");

    let bps = f.key("bps");
    let (id, _) = enact(&mut f, Change::RemoveOrganisation { org: org("bps") });
    assert_eq!(status(&f, id), ChangeStatus::Activated);
    let error = f
        .step(&bps, Action::SkipNonce {})
        .expect_err("a removed member");
    assert_eq!(error.code(), "revoked_signer", "{error}");
    let again = propose(
        &mut f,
        "kemensos",
        Change::RemoveOrganisation { org: org("bps") },
        2,
    );
    assert_eq!(again.unwrap_err().code(), "unknown_organisation");
}

#[test]
fn an_added_validator_decides_from_its_activation_height_and_the_history_keeps_every_set() {
    let mut f = fixture();
    let (validator_key, spec) = new_validator(&f, 21, 1);
    let change = Change::SetValidator {
        org: org("pemda-5271"),
        validator: Some(spec.clone()),
    };
    let (id, due) = enact(&mut f, change);
    assert_eq!(status(&f, id), ChangeStatus::Activated);
    let set = f.ledger.validator_set().unwrap();
    assert_eq!(
        (set.version, set.from_height, set.validators.len()),
        (1, due, 5)
    );
    assert!(set.member(&spec.key).is_some());
    assert_eq!(
        f.ledger.validator_set_at(due - 1).unwrap().validators.len(),
        4
    );
    assert_eq!(f.ledger.validator_set_at(due).unwrap().version, 1);
    assert_eq!(f.ledger.validator_sets().unwrap().len(), 2);
    // The new validator's block is accepted at the activation height.
    let time = f.time_ms + 1_000;
    let built = f
        .ledger
        .build_block(
            vec![],
            time,
            public(&validator_key),
            SignatureCheck::VerifyAll,
        )
        .expect("the new validator proposes");
    f.ledger
        .commit(built, b"test-certificate")
        .expect("commits");
}

#[test]
fn a_validator_outside_the_set_cannot_propose() {
    let f = fixture();
    let (validator_key, _) = new_validator(&f, 22, 1);
    let time = f.time_ms + 1_000;
    let error = f
        .ledger
        .build_block(
            vec![],
            time,
            public(&validator_key),
            SignatureCheck::VerifyAll,
        )
        .expect_err("not in the set");
    assert_eq!(error.code(), "unknown_proposer");
}

#[test]
fn removing_a_validator_below_four_is_refused() {
    let mut f = fixture();
    let change = Change::SetValidator {
        org: org("bpk"),
        validator: None,
    };
    let error = propose(&mut f, "kemensos", change, 3).expect_err("refused");
    assert_eq!(error.code(), "validator_set_too_small", "{error}");
}

#[test]
fn moving_a_third_of_the_voting_power_is_refused_when_proposed_and_when_due() {
    let mut f = fixture();
    // One validator going from power 1 to 3 moves 2 of 4.
    let kemensos = f.ledger.validator_set().unwrap().validators[0].clone();
    let (_, mut spec) = new_validator(&f, 31, 3);
    spec.key = kemensos.key;
    spec.checkpoint_key = kemensos.checkpoint_key.clone();
    let change = Change::SetValidator {
        org: kemensos.org.clone(),
        validator: Some(spec),
    };
    let error = propose(&mut f, "kemensos", change, 3).expect_err("refused");
    assert_eq!(error.code(), "validator_power_change_too_large", "{error}");
    // Two additions of 1 each pass alone, but not together at one height (2 of 4).
    let (_, first) = new_validator(&f, 32, 1);
    let (_, second) = new_validator(&f, 33, 1);
    let height = f.ledger.tip().height;
    let mut ids = Vec::new();
    for (who, spec) in [("pemda-5271", first), ("pos", second)] {
        let change = Change::SetValidator {
            org: org(who),
            validator: Some(spec),
        };
        let delay = 10 - (f.ledger.tip().height - height);
        ids.push(propose(&mut f, "kemensos", change, delay).expect("each alone is fine"));
    }
    assert_eq!(
        f.ledger.change(&ids[0]).unwrap().unwrap().activation_height,
        f.ledger.change(&ids[1]).unwrap().unwrap().activation_height
    );
    for id in &ids {
        approve(&mut f, "bpk", *id).unwrap();
        approve(&mut f, "dukcapil", *id).unwrap();
    }
    let due = f.ledger.change(&ids[0]).unwrap().unwrap().activation_height;
    run_to(&mut f, due - 1);
    let statuses: Vec<ChangeStatus> = ids.iter().map(|id| status(&f, *id)).collect();
    let activated = statuses
        .iter()
        .filter(|s| **s == ChangeStatus::Activated)
        .count();
    let failed: Vec<&ChangeStatus> = statuses
        .iter()
        .filter(|s| matches!(s, ChangeStatus::Failed { code, .. } if code == "validator_power_change_too_large"))
        .collect();
    assert_eq!((activated, failed.len()), (1, 1), "{statuses:?}");
    assert_eq!(f.ledger.validator_set().unwrap().validators.len(), 5);
}

#[test]
fn governance_is_off_without_a_rule_in_genesis() {
    let mut net = testnet(7);
    net.genesis.governance = Default::default();
    let mut ledger = ledger::Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
    let key = net.keys.org("kemensos").unwrap().clone();
    let tx = ledger::tx::TxBody {
        chain_id: ledger.chain_id().to_owned(),
        signer: public(&key),
        nonce: 0,
        action: Action::ProposeChange {
            change: Change::RemoveOrganisation { org: org("bps") },
            activation_height: 5,
        },
    }
    .sign(&key);
    let proposer = ledger.genesis().validators[0].key;
    let time = net.genesis.genesis_time_ms + 1_000;
    let built = ledger
        .build_block(vec![tx], time, proposer, SignatureCheck::VerifyAll)
        .unwrap();
    let (_, error) = built.rejected.first().expect("refused");
    assert_eq!(error.code(), "change_refused", "{error}");
    ledger.commit(built, b"c").unwrap();
}
