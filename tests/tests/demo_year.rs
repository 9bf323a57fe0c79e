//! The synthetic demo year applies cleanly, the same blocks give the same roots on RocksDB
//! and in memory, a RocksDB ledger reopens where it stopped, and no personal data reaches
//! the store.

use bansos_tests::testnet;
use genesis::demo::{generate, DemoData, DemoParams};
use ledger::chain::SignatureCheck;
use ledger::merkle;
use ledger::{Block, Ledger, MemoryStore, RocksStore, Store};
use proptest::prelude::*;

fn demo(seed: u64, beneficiaries: usize) -> (genesis::testnet::Testnet, DemoData) {
    let net = testnet(seed);
    let data = generate(
        &net.genesis,
        &net.keys,
        &DemoParams {
            beneficiaries,
            seed,
        },
    )
    .expect("demo generates");
    (net, data)
}

/// Applies every batch as one block (as the proposer would build it) and returns the blocks.
fn apply_all<S: Store>(ledger: &mut Ledger<S>, data: &DemoData) -> Vec<Block> {
    let proposer = ledger.genesis().validators[0].key;
    let mut blocks = Vec::new();
    for batch in &data.batches {
        let prepared = ledger
            .build_block(
                batch.txs.clone(),
                batch.time_ms,
                proposer,
                SignatureCheck::VerifyAll,
            )
            .expect("block builds");
        assert!(
            prepared.rejected.is_empty(),
            "batch {:?} had refusals: {:?}",
            batch.label,
            prepared.rejected.first()
        );
        assert_eq!(
            prepared.block.txs.len(),
            batch.txs.len(),
            "batch {:?} did not fit in one block",
            batch.label
        );
        blocks.push(prepared.block.clone());
        ledger
            .commit(prepared, b"demo-certificate")
            .expect("commit");
    }
    blocks
}

/// The roots a small demo year ends at, pinned: the state machine is deterministic, so any
/// change to what a block writes (its state writes, log, indexes, totals) or to how the
/// roots are computed from them shows here, where building and checking a block would
/// agree with each other on a changed root.
#[test]
fn a_small_demo_year_ends_at_pinned_roots() {
    let (net, data) = demo(5, 40);
    let mut ledger = Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
    apply_all(&mut ledger, &data);
    let tip = ledger.tip();
    let roots = (
        tip.height,
        tip.state_root.to_hex(),
        hex::encode(tip.log.root()),
        tip.block_hash.to_hex(),
    );
    assert_eq!(
        roots,
        (
            42,
            String::from("dfc018c55335c06c5e5ba2fd8dc7fb950bd7ba57472738e2fe80cfb3c1c42745"),
            String::from("4d320c16de3edb09402de9c0f436d4302be55190f2aedb99fb604e508b3ff788"),
            String::from("9a1e86b342af8fee5b172dd93aef03ac48a1961ea695d8d07c6708c2dff49f62"),
        )
    );
}

#[test]
fn demo_year_applies_without_a_single_refusal_and_covers_every_step() {
    let (net, data) = demo(11, 300);
    let mut ledger = Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
    let blocks = apply_all(&mut ledger, &data);
    let steps: std::collections::BTreeSet<&str> = data
        .batches
        .iter()
        .flat_map(|b| b.txs.iter().map(|t| t.body.action.name()))
        .collect();
    for step in [
        "register_agent",
        "declare_budget",
        "propose",
        "check_identity",
        "verify_eligibility",
        "enrol",
        "allocate",
        "disburse",
        "confirm_receipt",
        "file_objection",
        "resolve_objection",
        "change_status",
    ] {
        assert!(steps.contains(step), "the demo year has no {step}");
    }
    assert_eq!(ledger.tip().log.size() as usize, data.tx_count());
    assert!(
        data.tx_count() > 5_000,
        "a year for 300 households is more than {} transactions",
        data.tx_count()
    );
    // Every block is retrievable and hash-chained.
    let mut previous = net.genesis.hash();
    for block in &blocks {
        let stored = ledger.block(block.header.height).unwrap().unwrap();
        assert_eq!(&stored, block);
        assert_eq!(stored.header.prev_hash, previous);
        previous = stored.hash();
    }
    // Inclusion proofs from the store verify against the header's log root.
    let tip = ledger.tip().clone();
    for index in [0, 1, tip.log.size() / 2, tip.log.size() - 1] {
        let leaf = ledger.log_leaf(index).unwrap().unwrap();
        let path: Vec<merkle::Hash> = ledger
            .inclusion_proof(index, tip.log.size())
            .unwrap()
            .into_iter()
            .map(|h| h.0)
            .collect();
        merkle::verify_inclusion(
            &merkle::leaf_hash(&leaf),
            index,
            tip.log.size(),
            &path,
            &tip.log.root(),
        )
        .unwrap();
    }
    let half = tip.log.size() / 2;
    let proof: Vec<merkle::Hash> = ledger
        .consistency_proof(half, tip.log.size())
        .unwrap()
        .into_iter()
        .map(|h| h.0)
        .collect();
    merkle::verify_consistency(
        half,
        tip.log.size(),
        &ledger.log_root_at(half).unwrap().0,
        &tip.log.root(),
        &proof,
    )
    .unwrap();
}

#[test]
fn demo_tracking_codes_resolve_to_enrolments() {
    let (net, data) = demo(12, 60);
    let mut ledger = Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
    apply_all(&mut ledger, &data);
    for sample in data.tracking_codes.iter().take(20) {
        let hash = ledger::privacy::tracking_code_hash(&sample.code).unwrap();
        let record: ledger::state::TrackingRecord = ledger
            .state_get(&ledger::state::keys::tracking(&hash))
            .unwrap()
            .expect("tracking code known");
        assert_eq!(record.program.as_str(), sample.program);
        assert!(!ledger
            .beneficiary_log_indexes(&record.beneficiary, 100)
            .unwrap()
            .is_empty());
    }
}

#[test]
fn no_personal_data_reaches_the_store() {
    let (net, data) = demo(13, 200);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger =
        Ledger::open(RocksStore::open(dir.path()).unwrap(), net.genesis.clone()).unwrap();
    apply_all(&mut ledger, &data);
    drop(ledger);
    // Read back every key and value of every column of the RocksDB store.
    let store = RocksStore::open(dir.path()).unwrap();
    let mut haystack: Vec<u8> = Vec::new();
    for column in ledger::Column::ALL {
        for (key, value) in store.scan(column, b"", b"", usize::MAX).unwrap() {
            haystack.extend_from_slice(&key);
            haystack.push(0);
            haystack.extend_from_slice(&value);
            haystack.push(0);
        }
    }
    assert!(haystack.len() > 100_000);
    // Every needle, grouped by length, so one pass over the store per length finds any of
    // them: names, NIKs, account numbers and even the unkeyed BLAKE3 of a NIK, which an
    // attacker could enumerate.
    let mut needles: std::collections::BTreeMap<usize, std::collections::HashSet<Vec<u8>>> =
        Default::default();
    for person in &data.people {
        for needle in [
            person.nik.as_bytes().to_vec(),
            person.account_number.as_bytes().to_vec(),
            person.name.as_bytes().to_vec(),
            blake3::hash(person.nik.as_bytes()).as_bytes().to_vec(),
        ] {
            needles.entry(needle.len()).or_default().insert(needle);
        }
    }
    for sample in &data.tracking_codes {
        needles
            .entry(sample.code.len())
            .or_default()
            .insert(sample.code.as_bytes().to_vec());
    }
    for (length, set) in &needles {
        if let Some(found) = haystack
            .windows(*length)
            .find(|window| set.contains(*window))
        {
            panic!(
                "personal data reached the store: {:?}",
                String::from_utf8_lossy(found)
            );
        }
    }
}

#[test]
fn rocksdb_ledger_reopens_at_its_tip_and_continues() {
    let (net, data) = demo(14, 40);
    let dir = tempfile::tempdir().unwrap();
    let half = data.batches.len() / 2;
    let first = DemoData {
        batches: data.batches[..half].to_vec(),
        ..data.clone()
    };
    let second = DemoData {
        batches: data.batches[half..].to_vec(),
        ..data.clone()
    };
    let tip = {
        let mut ledger =
            Ledger::open(RocksStore::open(dir.path()).unwrap(), net.genesis.clone()).unwrap();
        apply_all(&mut ledger, &first);
        ledger.tip().clone()
    };
    let mut ledger =
        Ledger::open(RocksStore::open(dir.path()).unwrap(), net.genesis.clone()).unwrap();
    assert_eq!(ledger.tip(), &tip);
    apply_all(&mut ledger, &second);
    let mut memory = Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
    apply_all(&mut memory, &data);
    assert_eq!(ledger.tip(), memory.tip());
    // A store belongs to one genesis only.
    drop(ledger);
    let other = testnet(99);
    let error = Ledger::open(RocksStore::open(dir.path()).unwrap(), other.genesis).unwrap_err();
    assert_eq!(error.code(), "genesis_mismatch");
    // A store in another layout is refused by name, not read as corrupt later: one written
    // before the format marker existed (format 1), and one from a newer version.
    for (marker, found) in [(None, 1), (Some(3u32), 3)] {
        let store = RocksStore::open(dir.path()).unwrap();
        let mut batch = ledger::WriteBatch::new();
        match marker {
            None => batch.delete(ledger::Column::Meta, b"store_format".to_vec()),
            Some(format) => batch.put(
                ledger::Column::Meta,
                b"store_format".to_vec(),
                format.to_be_bytes().to_vec(),
            ),
        }
        ledger::Store::write(&store, batch).unwrap();
        let error = Ledger::open(store, net.genesis.clone()).unwrap_err();
        assert_eq!(error.code(), "store_format");
        assert!(
            error.to_string().contains(&format!("store format {found}")),
            "{error}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, .. ProptestConfig::default() })]

    /// The same blocks applied to a RocksDB store and an in-memory store give the same state
    /// root, log root and block hash at every height, whatever the demo seed and however
    /// the year is cut into blocks.
    #[test]
    fn rocksdb_and_memory_stores_agree_on_every_root(seed in 0u64..1_000, households in 5usize..40, split in 1usize..4) {
        let (net, data) = demo(seed, households);
        let dir = tempfile::tempdir().unwrap();
        let mut rocks = Ledger::open(RocksStore::open(dir.path()).unwrap(), net.genesis.clone()).unwrap();
        let mut memory = Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
        let proposer = memory.genesis().validators[0].key;
        for batch in &data.batches {
            let chunk = batch.txs.len().div_ceil(split).max(1);
            for (n, txs) in batch.txs.chunks(chunk).enumerate() {
                let prepared = memory.build_block(txs.to_vec(), batch.time_ms + n as u64, proposer, SignatureCheck::VerifyAll).unwrap();
                prop_assert!(prepared.rejected.is_empty());
                let block = prepared.block.clone();
                memory.commit(prepared, b"c").unwrap();
                rocks.apply_block(&block, b"c", SignatureCheck::VerifyAll).unwrap();
                prop_assert_eq!(rocks.tip(), memory.tip());
            }
        }
    }
}

#[test]
fn the_totals_tree_sums_every_allocation_and_matches_a_rebuild() {
    use ledger::state::{keys, AllocationRecord};
    use ledger::store::Column;
    use ledger::totals::{self, NodePath, NodeProof};
    let (net, data) = demo(14, 120);
    let mut ledger = Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
    apply_all(&mut ledger, &data);
    let header = ledger.header(ledger.tip().height).unwrap().unwrap();
    assert_eq!(
        totals::recompute_root(ledger.store()).unwrap(),
        header.totals_root
    );
    // The root's sums are the sums over every allocation record, counted here directly.
    let records: Vec<AllocationRecord> = ledger
        .store()
        .scan(
            Column::State,
            &keys::allocations(),
            &keys::allocations(),
            usize::MAX,
        )
        .unwrap()
        .iter()
        .map(|(_, bytes)| borsh::from_slice(bytes).unwrap())
        .collect();
    assert!(records.len() > 100, "the demo allocates");
    let root = ledger.totals_node(&NodePath::Root).unwrap().unwrap();
    assert_eq!(root.sums.beneficiaries, records.len() as u64);
    assert_eq!(
        root.sums.allocated,
        records.iter().map(|r| r.amount.0).sum::<u64>()
    );
    assert_eq!(
        root.sums.disbursed,
        records
            .iter()
            .filter_map(|r| r.disbursement.as_ref())
            .map(|d| d.amount.0)
            .sum::<u64>()
    );
    assert!(root.sums.confirmed > 0 && root.sums.confirmed <= root.sums.disbursed);
    // A header naming any other totals root is refused by every validator (and by the
    // audit, which replays through the same check).
    let mut replica = Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
    let blocks = {
        let mut source = Ledger::open(MemoryStore::new(), net.genesis.clone()).unwrap();
        apply_all(&mut source, &data)
    };
    let (last, before) = blocks.split_last().unwrap();
    for block in before {
        replica
            .apply_block(block, b"demo-certificate", SignatureCheck::VerifyAll)
            .unwrap();
    }
    let mut forged = last.clone();
    forged.header.totals_root.0[0] ^= 1;
    assert!(matches!(
        replica.prepare_block(&forged, SignatureCheck::VerifyAll),
        Err(ledger::LedgerError::HeaderMismatch {
            field: "totals_root"
        })
    ));
    replica
        .apply_block(last, b"demo-certificate", SignatureCheck::VerifyAll)
        .unwrap();
    // Every village cell proves against the checkpoint's totals root.
    let checkpoint = ledger.checkpoint_at(header.log_size).unwrap();
    let committed = ledger::Hash32(checkpoint.totals.unwrap());
    for record in records.iter().take(50) {
        let path = NodePath::Region(
            record.program.clone(),
            record.period.clone(),
            record.village.clone(),
        );
        let proof = NodeProof::build(ledger.store(), &path).unwrap();
        let sums = proof.verify(&path, &committed).unwrap();
        assert!(sums.beneficiaries >= 1);
    }
}
