//! Re-keying the pseudonym service: genesis records the service's public key, a
//! governance change replaces it, intake pauses until the identity authority has linked
//! every beneficiary to its new pseudonym, and from then on either pseudonym names the one
//! beneficiary, whose history stays one history.

use bansos_tests::*;
use ledger::governance::{Change, ChangeStatus};
use ledger::pseudonyms::{PseudonymLink, PseudonymServiceSpec};
use ledger::tx::{Action, Verification};
use ledger::types::{Hash32, OrgId, Pseudonym, Rupiah, TxHash};
use ledger::{LedgerError, MemoryStore};
use proto::pseudonym::ServiceKey;

type F = Fixture<MemoryStore>;

/// The NIKs of the test's people.
const NIKS: [&str; 3] = ["3510010101800001", "3510010101800002", "3510010101800003"];

fn org(id: &str) -> OrgId {
    OrgId::new(id).expect("valid organisation id")
}

/// The service's key of `version`: the network's own seed for version 1, a new one after.
fn service_key(f: &F, version: u32) -> ServiceKey {
    let seed = if version == 1 {
        f.net
            .nodes
            .iter()
            .find_map(|n| n.pseudonym_service.clone())
            .expect("the test network runs a pseudonym service")
            .0
    } else {
        [version as u8; 32]
    };
    ServiceKey::from_seed(&seed, version).expect("key")
}

fn spec(key: &ServiceKey) -> PseudonymServiceSpec {
    PseudonymServiceSpec {
        organisation: org("kemensos"),
        key_version: key.version(),
        public_key: Hash32(key.public_key()),
    }
}

fn pseudonyms(key: &ServiceKey) -> Vec<Pseudonym> {
    NIKS.iter()
        .map(|nik| key.pseudonym(nik).expect("pseudonym"))
        .collect()
}

fn allocate(f: &mut F, beneficiary: Pseudonym, period_code: &str) -> Result<(), LedgerError> {
    let kemensos = f.key("kemensos");
    f.step(
        &kemensos,
        Action::Allocate {
            beneficiary,
            program: program("PKH"),
            period: period(period_code),
            amount: Rupiah(600_000),
        },
    )
}

/// Enacts `change` (the ministry proposes, two institutions approve) and runs the chain to
/// its activation height.
fn enact(f: &mut F, change: Change) -> TxHash {
    let activation_height = f.ledger.tip().height + 4;
    let kemensos = f.key("kemensos");
    let tx = f.sign(
        &kemensos,
        Action::ProposeChange {
            change,
            activation_height,
        },
    );
    let id = tx.hash();
    f.commit(vec![tx]).expect("proposed");
    for approver in ["bpk", "dukcapil"] {
        let key = f.key(approver);
        f.step(&key, Action::ApproveChange { change: id })
            .expect("approved");
    }
    while f.ledger.tip().height < activation_height - 1 {
        f.commit(vec![]).expect("an empty block commits");
    }
    id
}

fn link(
    f: &mut F,
    signer: &str,
    version: u32,
    links: Vec<PseudonymLink>,
    complete: bool,
) -> Result<(), LedgerError> {
    let key = f.key(signer);
    f.step(
        &key,
        Action::LinkPseudonyms {
            key_version: version,
            links,
            complete,
        },
    )
}

fn links(old: &[Pseudonym], new: &[Pseudonym]) -> Vec<PseudonymLink> {
    old.iter()
        .zip(new)
        .map(|(&old, &new)| PseudonymLink { old, new })
        .collect()
}

/// Three people enrolled and paid for 2026-Q3 under key version 1, then key version 2
/// enacted: the fixture, the old and the new pseudonyms.
fn rekeyed() -> (F, Vec<Pseudonym>, Vec<Pseudonym>) {
    let mut f = Fixture::new(MemoryStore::new(), 11);
    f.declare_pkh_budget("2026-Q3", 100_000_000);
    f.declare_pkh_budget("2026-Q4", 100_000_000);
    let (v1, v2) = (service_key(&f, 1), service_key(&f, 2));
    let (old, new) = (pseudonyms(&v1), pseudonyms(&v2));
    for &person in &old {
        f.enrol(person).expect("enrolled under key version 1");
        allocate(&mut f, person, "2026-Q3").expect("allocated");
    }
    let id = enact(&mut f, Change::SetPseudonymKey { service: spec(&v2) });
    assert_eq!(
        f.ledger.change(&id).unwrap().unwrap().status,
        ChangeStatus::Activated
    );
    (f, old, new)
}

#[test]
fn genesis_records_the_pseudonym_services_public_key() {
    let f = Fixture::new(MemoryStore::new(), 11);
    let key = f.ledger.pseudonym_key().unwrap().expect("recorded");
    assert_eq!(key.service, spec(&service_key(&f, 1)));
    assert!(key.linked, "nothing to link at genesis");
    assert_eq!(f.ledger.pseudonym_keys().unwrap().len(), 1);
}

#[test]
fn a_rekeying_keeps_every_beneficiarys_history_linked() {
    let (mut f, old, new) = rekeyed();
    let key = f.ledger.pseudonym_key().unwrap().unwrap();
    assert_eq!((key.service.key_version, key.linked), (2, false));
    assert_eq!(key.beneficiaries, 3);

    // Until every beneficiary is linked: no intake, and new pseudonyms name nobody.
    let stranger = service_key(&f, 2).pseudonym("3510010101800099").unwrap();
    let error = f.enrol(stranger).expect_err("intake is paused");
    assert_eq!(error.code(), "pseudonym_rekeying", "{error}");
    let error = allocate(&mut f, new[0], "2026-Q4").expect_err("not linked yet");
    assert_eq!(error.code(), "unknown_beneficiary", "{error}");
    let error = link(&mut f, "kemensos", 2, links(&old[..2], &new[..2]), true)
        .expect_err("two of three is not complete");
    assert_eq!(error.code(), "pseudonym_link_refused", "{error}");
    assert!(error.to_string().contains("2 of the 3"), "{error}");
    assert_eq!(
        f.ledger.beneficiary_pseudonym(&new[0]).unwrap(),
        None,
        "a refused batch links nothing"
    );

    link(&mut f, "kemensos", 2, links(&old[..2], &new[..2]), false).expect("a first batch");
    link(&mut f, "kemensos", 2, links(&old[2..], &new[2..]), true).expect("the last batch");
    assert!(f.ledger.pseudonym_key().unwrap().unwrap().linked);

    // Either pseudonym names the one beneficiary.
    for (o, n) in old.iter().zip(&new) {
        assert_eq!(f.ledger.beneficiary_pseudonym(n).unwrap(), Some(*o));
    }
    let error = f
        .enrol(new[0])
        .expect_err("the same person is not proposed twice");
    assert_eq!(error.code(), "duplicate_proposal", "{error}");
    let error =
        allocate(&mut f, new[1], "2026-Q3").expect_err("paid for Q3 under the old pseudonym");
    assert_eq!(error.code(), "duplicate_allocation", "{error}");
    allocate(&mut f, new[1], "2026-Q4").expect("Q4 under the new pseudonym");
    let id = ledger::state::allocation_id(&old[1], &program("PKH"), &period("2026-Q4"));
    let record: ledger::state::AllocationRecord = f
        .ledger
        .state_get(&ledger::state::keys::allocation(&id))
        .unwrap()
        .expect("the Q4 allocation is the beneficiary's, under the pseudonym the ledger knows");
    assert_eq!(record.beneficiary, old[1]);
    // The timeline (what a citizen's tracking code shows) runs on across the change:
    // proposal, check, verification, enrolment, Q3 and Q4 allocations.
    let steps = f.ledger.beneficiary_steps(&old[1], 100).unwrap();
    assert_eq!(steps.len(), 6, "{steps:?}");
    assert!(f.ledger.beneficiary_steps(&new[1], 100).unwrap().is_empty());

    // Intake is open again, for new people under the new key.
    f.enrol(stranger).expect("a new person under key version 2");
}

#[test]
fn links_are_checked_one_by_one() {
    let (mut f, old, new) = rekeyed();
    let refused = |r: Result<(), LedgerError>| r.expect_err("refused").code();
    assert_eq!(
        refused(link(
            &mut f,
            "pemda-3510",
            2,
            links(&old[..1], &new[..1]),
            false
        )),
        "pseudonym_link_refused"
    );
    assert_eq!(
        refused(link(
            &mut f,
            "kemensos",
            3,
            links(&old[..1], &new[..1]),
            false
        )),
        "pseudonym_link_refused"
    );
    let nobody = service_key(&f, 1).pseudonym("3510010101800077").unwrap();
    assert_eq!(
        refused(link(
            &mut f,
            "kemensos",
            2,
            links(&[nobody], &new[..1]),
            false
        )),
        "unknown_beneficiary"
    );
    assert_eq!(
        refused(link(
            &mut f,
            "kemensos",
            2,
            links(&old[..1], &old[1..2]),
            false
        )),
        "pseudonym_link_refused"
    );
    let twice = vec![
        PseudonymLink {
            old: old[0],
            new: new[0],
        },
        PseudonymLink {
            old: old[0],
            new: new[1],
        },
    ];
    assert_eq!(
        refused(link(&mut f, "kemensos", 2, twice, false)),
        "pseudonym_link_refused"
    );
    assert_eq!(
        refused(link(&mut f, "kemensos", 2, vec![], false)),
        "invalid_field"
    );
    link(&mut f, "kemensos", 2, links(&old, &new), true).expect("the right batch");
    assert_eq!(
        refused(link(&mut f, "kemensos", 2, vec![], true)),
        "pseudonym_link_refused",
    );
}

#[test]
fn a_new_key_is_the_next_version_and_new() {
    let (mut f, old, new) = rekeyed();
    let kemensos = f.key("kemensos");
    let propose = |f: &mut F, service: PseudonymServiceSpec| {
        let activation_height = f.ledger.tip().height + 3;
        let action = Action::ProposeChange {
            change: Change::SetPseudonymKey { service },
            activation_height,
        };
        f.step(&kemensos, action).expect_err("refused").code()
    };
    let v3 = service_key(&f, 3);
    assert_eq!(
        propose(&mut f, spec(&v3)),
        "change_refused",
        "while version 2 is being linked"
    );
    link(&mut f, "kemensos", 2, links(&old, &new), true).expect("linked");
    let mut skipped = spec(&service_key(&f, 4));
    skipped.key_version = 4;
    assert_eq!(
        propose(&mut f, skipped),
        "change_refused",
        "version 4 before 3"
    );
    let mut mistyped = spec(&v3);
    mistyped.public_key = Hash32([1; 32]);
    assert_eq!(
        propose(&mut f, mistyped),
        "change_refused",
        "not a ristretto255 key"
    );
    let mut reused = spec(&v3);
    reused.public_key = Hash32(service_key(&f, 1).public_key());
    assert_eq!(
        propose(&mut f, reused),
        "change_refused",
        "version 1's key again"
    );
}

#[test]
fn a_second_rekeying_links_to_the_first_pseudonym() {
    let (mut f, old, new) = rekeyed();
    link(&mut f, "kemensos", 2, links(&old, &new), true).expect("linked");
    let v3 = service_key(&f, 3);
    enact(&mut f, Change::SetPseudonymKey { service: spec(&v3) });
    let newest = pseudonyms(&v3);
    // The authority links from the version-2 pseudonyms it holds.
    link(&mut f, "kemensos", 3, links(&new, &newest), true).expect("linked again");
    for (first, latest) in old.iter().zip(&newest) {
        assert_eq!(
            f.ledger.beneficiary_pseudonym(latest).unwrap(),
            Some(*first)
        );
    }
    allocate(&mut f, newest[2], "2026-Q4").expect("paid under the third key");
    assert_eq!(f.ledger.pseudonym_keys().unwrap().len(), 3);
}

#[test]
fn steps_by_new_pseudonyms_reach_the_beneficiary_in_the_linking_block_and_after_a_restart() {
    let (mut f, old, new) = rekeyed();
    // A link and a step that uses it, in one block.
    let (kemensos, pemda) = (f.key("kemensos"), f.key("pemda-3510"));
    let first = f.sign(
        &kemensos,
        Action::LinkPseudonyms {
            key_version: 2,
            links: links(&old[..1], &new[..1]),
            complete: false,
        },
    );
    let step = f.sign(
        &pemda,
        Action::VerifyEligibility {
            beneficiary: new[0],
            outcome: Verification::Verified,
        },
    );
    f.commit(vec![first, step])
        .expect("linked, then reached, in one block");
    link(&mut f, "kemensos", 2, links(&old[1..], &new[1..]), true).expect("the rest");

    // The ledger opened again from its store still resolves linked pseudonyms.
    let store = f.ledger.store().clone();
    f.ledger = ledger::Ledger::open(store, f.net.genesis.clone()).expect("reopens");
    f.step(
        &pemda,
        Action::ChangeStatus {
            beneficiary: new[1],
            change: ledger::tx::StatusChange::Suspended,
        },
    )
    .expect("a status change by the new pseudonym");
    let record: ledger::state::BeneficiaryRecord = f
        .ledger
        .state_get(&ledger::state::keys::beneficiary(&old[1]))
        .unwrap()
        .expect("the beneficiary");
    assert_eq!(record.status, ledger::state::LifeStatus::Suspended);
    let before = f.ledger.beneficiary_steps(&old[2], 100).unwrap().len();
    f.step(
        &pemda,
        Action::FileObjection {
            subject: ledger::tx::ObjectionSubject::Beneficiary(new[2]),
            claim: ledger::tx::ClaimCode::Duplicate,
            evidence_hash: Hash32::digest(b"letter"),
        },
    )
    .expect("an objection about the new pseudonym");
    assert_eq!(
        f.ledger.beneficiary_steps(&old[2], 100).unwrap().len(),
        before + 1,
        "the objection is in the beneficiary's history"
    );
}

#[test]
fn the_unlinked_beneficiaries_are_listed_page_by_page_until_all_are_linked() {
    let (mut f, old, new) = rekeyed();
    let mut expected = old.clone();
    expected.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = f
            .ledger
            .unlinked_beneficiaries(after.as_ref(), 1)
            .unwrap()
            .expect("a re-keying is open");
        assert_eq!(page.key_version, 2);
        assert!(page.unlinked.len() <= 1);
        seen.extend(page.unlinked);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    link(&mut f, "kemensos", 2, links(&old[..2], &new[..2]), false).expect("two linked");
    let rest = f.ledger.unlinked_beneficiaries(None, 10).unwrap().unwrap();
    assert_eq!(rest.unlinked, vec![old[2]]);
    link(&mut f, "kemensos", 2, links(&old[2..], &new[2..]), true).expect("all linked");
    assert!(f.ledger.unlinked_beneficiaries(None, 10).unwrap().is_none());
}
