//! Ledger core throughput (issue: ledger core).
//!
//! Run with `cargo bench -p bansos-tests --bench ledger`. Reports, in one run:
//! - this machine's raw ed25519 verification rate under the ledger's rule (ZIP-215), one at
//!   a time and batched, beside the previous rule (ed25519-dalek strict / batch);
//! - transactions applied per second through the state machine (build + check + commit of
//!   blocks from the demo year), with signatures verified one by one, batched, or already
//!   verified, on the in-memory and the RocksDB store;
//! - Merkle log append and proof generation rates.

use std::collections::HashSet;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use genesis::demo::{generate, DemoData, DemoParams};
use ledger::chain::SignatureCheck;
use ledger::merkle::{self, Frontier, MemoryTree};
use ledger::tx::verify_signatures;
use ledger::{Ledger, MemoryStore, RocksStore, Store, Transaction};

fn demo() -> (genesis::testnet::Testnet, DemoData) {
    let net = bansos_tests::testnet(1);
    let data = generate(
        &net.genesis,
        &net.keys,
        &DemoParams {
            beneficiaries: 150,
            seed: 1,
        },
    )
    .expect("demo generates");
    (net, data)
}

fn all_txs(data: &DemoData) -> Vec<Transaction> {
    data.batches
        .iter()
        .flat_map(|b| b.txs.iter().cloned())
        .collect()
}

fn signatures(c: &mut Criterion) {
    let (_, data) = demo();
    let txs: Vec<Transaction> = all_txs(&data).into_iter().take(1024).collect();
    let mut group = c.benchmark_group("ed25519");
    group.throughput(Throughput::Elements(txs.len() as u64));
    group.bench_function("verify_single_x1024", |b| {
        b.iter(|| txs.iter().all(|t| t.verify_signature().is_ok()))
    });
    group.bench_function("verify_batched_x1024", |b| {
        b.iter(|| verify_signatures(txs.iter()).is_ok())
    });
    // The previous rule, for comparison: ed25519-dalek's strict single check and its
    // cofactorless batch (which did not always agree; see ledger/src/signature.rs).
    let keys: Vec<ed25519_dalek::VerifyingKey> = txs
        .iter()
        .map(|t| ed25519_dalek::VerifyingKey::from_bytes(t.body.signer.as_bytes()).expect("key"))
        .collect();
    let messages: Vec<Vec<u8>> = txs.iter().map(|t| t.body.signing_bytes()).collect();
    let signatures: Vec<ed25519_dalek::Signature> = txs
        .iter()
        .map(|t| ed25519_dalek::Signature::from_bytes(t.signature.as_bytes()))
        .collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    group.bench_function("previous_rule_dalek_strict_single_x1024", |b| {
        b.iter(|| {
            (0..txs.len()).all(|i| {
                keys[i]
                    .verify_strict(message_refs[i], &signatures[i])
                    .is_ok()
            })
        })
    });
    group.bench_function("previous_rule_dalek_batch_x1024", |b| {
        b.iter(|| ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).is_ok())
    });
    group.finish();
}

#[derive(Clone, Copy)]
enum Verify {
    Single,
    Batched,
    Preverified,
}

/// Applies the whole demo year block by block; returns the number of transactions.
fn apply_year<S: Store>(ledger: &mut Ledger<S>, data: &DemoData, verify: Verify) -> usize {
    let proposer = ledger.genesis().validators[0].key;
    let mut count = 0;
    for batch in &data.batches {
        let verified: HashSet<_> = match verify {
            Verify::Single => batch
                .txs
                .iter()
                .filter(|t| t.verify_signature().is_ok())
                .map(|t| t.hash())
                .collect(),
            Verify::Preverified => batch.txs.iter().map(|t| t.hash()).collect(),
            Verify::Batched => HashSet::new(),
        };
        let check = match verify {
            Verify::Batched => SignatureCheck::VerifyAll,
            _ => SignatureCheck::SkipVerified(&verified),
        };
        let prepared = ledger
            .build_block(batch.txs.clone(), batch.time_ms, proposer, check)
            .expect("builds");
        count += prepared.block.txs.len();
        ledger.commit(prepared, b"bench").expect("commits");
    }
    count
}

fn state_machine(c: &mut Criterion) {
    let (net, data) = demo();
    let total = data.tx_count() as u64;
    let mut group = c.benchmark_group("apply_demo_year");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(total));
    for (name, verify) in [
        ("memory_verify_single", Verify::Single),
        ("memory_verify_batched", Verify::Batched),
        ("memory_preverified", Verify::Preverified),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || Ledger::open(MemoryStore::new(), net.genesis.clone()).expect("opens"),
                |mut ledger| apply_year(&mut ledger, &data, verify),
                BatchSize::PerIteration,
            )
        });
    }
    group.bench_function("rocksdb_verify_batched", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let ledger = Ledger::open(
                    RocksStore::open(dir.path()).expect("opens"),
                    net.genesis.clone(),
                )
                .expect("opens");
                (dir, ledger)
            },
            |(dir, mut ledger)| {
                let n = apply_year(&mut ledger, &data, Verify::Batched);
                drop(ledger);
                drop(dir);
                n
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn merkle_log(c: &mut Criterion) {
    let leaves: Vec<merkle::Hash> = (0..100_000u32)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut group = c.benchmark_group("merkle");
    group.throughput(Throughput::Elements(leaves.len() as u64));
    group.bench_function("frontier_append_x100k", |b| {
        b.iter(|| {
            let mut frontier = Frontier::new();
            for leaf in &leaves {
                frontier.append(*leaf);
            }
            frontier.root()
        })
    });
    let mut tree = MemoryTree::new();
    for leaf in &leaves {
        tree.push_leaf_hash(*leaf);
    }
    let size = tree.size();
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("inclusion_proof_x1000_memory", |b| {
        b.iter(|| {
            (0..1_000u64)
                .map(|i| {
                    merkle::inclusion_proof(&tree, i * 97 % size, size)
                        .map(|p| p.len())
                        .unwrap_or(0)
                })
                .sum::<usize>()
        })
    });
    group.bench_function("consistency_proof_x1000_memory", |b| {
        b.iter(|| {
            (1..=1_000u64)
                .map(|i| {
                    merkle::consistency_proof(&tree, i * 97, size)
                        .map(|p| p.len())
                        .unwrap_or(0)
                })
                .sum::<usize>()
        })
    });

    // Proofs served from a RocksDB ledger holding the demo year.
    let (net, data) = demo();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger = Ledger::open(
        RocksStore::open(dir.path()).expect("opens"),
        net.genesis.clone(),
    )
    .expect("opens");
    apply_year(&mut ledger, &data, Verify::Batched);
    let log_size = ledger.tip().log.size();
    group.bench_function("inclusion_proof_x1000_rocksdb", |b| {
        b.iter(|| {
            (0..1_000u64)
                .map(|i| {
                    ledger
                        .inclusion_proof(i * 97 % log_size, log_size)
                        .map(|p| p.len())
                        .unwrap_or(0)
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, signatures, state_machine, merkle_log);
criterion_main!(benches);
