use super::*;
use crate::state::{allocation_id, DisbursementRecord, ReceiptRecord};
use crate::store::{MemoryStore, WriteBatch};
use crate::tx::PaymentChannel;
use crate::types::{OrgId, Rupiah};

fn allocation(person: u8, village: &str, amount: u64) -> (Vec<u8>, AllocationRecord) {
    let beneficiary = Hash32([person; 32]);
    let record = AllocationRecord {
        beneficiary,
        program: ProgramCode::new("PKH").unwrap(),
        period: PeriodCode::new("2026-T1").unwrap(),
        amount: Rupiah(amount),
        budget_region: RegionCode::new("35.10").unwrap(),
        village: RegionCode::new(village).unwrap(),
        allocated_at: 1,
        disbursement: None,
        receipt: None,
        beneficiary_statement: None,
    };
    let id = allocation_id(&beneficiary, &record.program, &record.period);
    (keys::allocation(&id), record)
}

fn paid(mut record: AllocationRecord, amount: u64) -> AllocationRecord {
    record.disbursement = Some(DisbursementRecord {
        amount: Rupiah(amount),
        paid_by: OrgId::new("bri").unwrap(),
        channel: PaymentChannel::BankAccount,
        account_ref_hash: Hash32::ZERO,
        paid_at: 2,
    });
    record
}

fn statement(received: bool, by_beneficiary: bool) -> Option<ReceiptRecord> {
    Some(ReceiptRecord {
        received,
        by_beneficiary,
        confirmed_at: 3,
    })
}

/// Applies one block's allocation changes to `store` through the incremental update, as
/// the chain does, and returns the new root.
fn apply(store: &MemoryStore, changes: Vec<(Vec<u8>, AllocationRecord)>) -> Hash32 {
    let mut overlay = Overlay::new(store);
    let mut changed = Vec::new();
    for (key, after) in changes {
        let before = overlay.get_before_block::<AllocationRecord>(&key).unwrap();
        overlay.put(key.clone(), &after);
        changed.push((key, before, after));
    }
    overlay.commit_tx();
    let root = update(&mut overlay, &changed).unwrap();
    let mut batch = WriteBatch::new();
    for (key, value) in overlay.into_writes() {
        batch.put(Column::State, key, value.unwrap());
    }
    store.write(batch).unwrap();
    root
}

fn village(name: &str) -> NodePath {
    NodePath::Region(
        ProgramCode::new("PKH").unwrap(),
        PeriodCode::new("2026-T1").unwrap(),
        RegionCode::new(name).unwrap(),
    )
}

#[test]
fn a_receipt_stands_confirmed_only_while_the_beneficiarys_word_says_received() {
    let (_, record) = allocation(1, "35.10.01.2001", 600_000);
    assert_eq!(
        contribution(&record),
        Totals {
            beneficiaries: 1,
            allocated: 600_000,
            disbursed: 0,
            confirmed: 0
        }
    );
    let mut record = paid(record, 600_000);
    assert_eq!(contribution(&record).disbursed, 600_000);
    assert_eq!(contribution(&record).confirmed, 0);
    record.receipt = statement(true, false);
    assert_eq!(contribution(&record).confirmed, 600_000);
    record.beneficiary_statement = statement(false, true);
    assert_eq!(
        contribution(&record).confirmed,
        0,
        "the beneficiary says not received"
    );
}

#[test]
fn incremental_updates_match_a_rebuild_and_sum_up_the_hierarchy() {
    let store = MemoryStore::new();
    assert_eq!(recompute_root(&store).unwrap(), empty_root());
    let (key_a, a) = allocation(1, "35.10.01.2001", 600_000);
    let (key_b, b) = allocation(2, "35.10.01.2002", 750_000);
    let (key_c, c) = allocation(3, "35.10.02.2001", 600_000);
    let root = apply(
        &store,
        vec![
            (key_a.clone(), a.clone()),
            (key_b, b),
            (key_c.clone(), c.clone()),
        ],
    );
    assert_eq!(root, recompute_root(&store).unwrap());
    // A later block pays one allocation and confirms another's receipt.
    let mut c = paid(c, 600_000);
    c.receipt = statement(true, true);
    let root = apply(&store, vec![(key_a, paid(a, 500_000)), (key_c, c)]);
    assert_eq!(root, recompute_root(&store).unwrap());

    let regency = node(
        &store,
        &NodePath::Region(
            ProgramCode::new("PKH").unwrap(),
            PeriodCode::new("2026-T1").unwrap(),
            RegionCode::new("35.10").unwrap(),
        ),
    )
    .unwrap();
    assert_eq!(
        regency.sums,
        Totals {
            beneficiaries: 3,
            allocated: 1_950_000,
            disbursed: 1_100_000,
            confirmed: 600_000
        }
    );
    let segments: Vec<&str> = regency
        .children
        .iter()
        .map(|c| c.segment.as_str())
        .collect();
    assert_eq!(segments, ["35.10.01", "35.10.02"]);
    let root_node = node(&store, &NodePath::Root).unwrap();
    assert_eq!(root_node.sums, regency.sums);
    assert_eq!(root_node.hash(""), root);
}

#[test]
fn a_node_proof_verifies_and_any_change_to_it_fails() {
    let store = MemoryStore::new();
    let (key_a, a) = allocation(1, "35.10.01.2001", 600_000);
    let (key_b, b) = allocation(2, "35.10.01.2002", 750_000);
    let root = apply(&store, vec![(key_a, a), (key_b, b)]);
    let path = village("35.10.01.2002");
    let proof = NodeProof::build(&store, &path).unwrap();
    assert_eq!(
        proof.path.len(),
        7,
        "village, district, regency, province, period, program, root"
    );
    assert_eq!(proof.verify(&path, &root).unwrap().allocated, 750_000);

    let mut inflated = proof.clone();
    inflated.path[0].sums.allocated += 1;
    assert_eq!(
        inflated.verify(&path, &root),
        Err(TotalsProofError::NotAChild(0))
    );

    let mut forged_parent = proof.clone();
    forged_parent.path[1].sums.allocated += 1;
    assert_eq!(
        forged_parent.verify(&path, &root),
        Err(TotalsProofError::NotAChild(1))
    );

    assert_eq!(
        proof.verify(&village("35.10.01.2001"), &root),
        Err(TotalsProofError::WrongNode(0))
    );
    assert_eq!(
        proof.verify(&path, &empty_root()),
        Err(TotalsProofError::WrongRoot)
    );
    let mut short = proof.clone();
    short.path.pop();
    assert_eq!(short.verify(&path, &root), Err(TotalsProofError::NotRooted));
}

#[test]
fn a_cells_hash_depends_on_its_records_not_only_its_totals() {
    // Two villages with the same totals but different beneficiaries hash differently even
    // under the same segment: a small count cannot be guessed from a sibling hash.
    let one = MemoryStore::new();
    let two = MemoryStore::new();
    let (key_a, a) = allocation(1, "35.10.01.2001", 600_000);
    let (key_b, b) = allocation(2, "35.10.01.2001", 600_000);
    apply(&one, vec![(key_a, a)]);
    apply(&two, vec![(key_b, b)]);
    let path = village("35.10.01.2001");
    let (x, y) = (node(&one, &path).unwrap(), node(&two, &path).unwrap());
    assert_eq!(x.sums, y.sums);
    assert_ne!(x.hash(path.segment()), y.hash(path.segment()));
}

#[test]
fn a_proof_shows_an_ancestors_own_totals_only_as_a_commitment() {
    // Two records kept at the regency itself (fewer than ten: suppressed there) and one
    // in a village under it. The village's proof passes through the regency.
    let store = MemoryStore::new();
    let (key_a, a) = allocation(1, "35.10", 600_000);
    let (key_b, b) = allocation(2, "35.10", 600_000);
    let (key_c, c) = allocation(3, "35.10.01.2001", 750_000);
    let root = apply(&store, vec![(key_a, a), (key_b, b), (key_c, c)]);
    let path = village("35.10.01.2001");
    let proof = NodeProof::build(&store, &path).unwrap();
    assert!(proof.path.iter().all(|n| n.opened.is_none()));
    let serialized = serde_json::to_string(&proof).unwrap();
    assert!(
        !serialized.contains("1200000"),
        "the regency's own amount appears in a proof that passes through it: {serialized}"
    );
    assert_eq!(proof.verify(&path, &root).unwrap().allocated, 750_000);

    // The regency's own proof may open its own totals; opened totals that do not match the
    // commitment fail.
    let regency = NodePath::Region(
        ProgramCode::new("PKH").unwrap(),
        PeriodCode::new("2026-T1").unwrap(),
        RegionCode::new("35.10").unwrap(),
    );
    let opened = NodeProof::build_opened(&store, &regency).unwrap();
    assert_eq!(opened.path[0].own().unwrap().unwrap().allocated, 1_200_000);
    assert!(opened.verify(&regency, &root).is_ok());
    let mut lied = opened.clone();
    if let Some((own, _)) = &mut lied.path[0].opened {
        own.beneficiaries = 1;
    }
    assert_eq!(
        lied.verify(&regency, &root),
        Err(TotalsProofError::WrongOwn)
    );
}
