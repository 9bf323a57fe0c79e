//! `bansos audit verify` throughput and proof generation from RocksDB over a large chain
//! (issue: the verifiable log). Not criterion: one long run, figures printed.
//!
//! ```sh
//! CARGO_TARGET_DIR=$HOME/.cache/bansos-release cargo bench -p bansos-tests --bench audit
//! BANSOS_AUDIT_BENCH_TXS=100000 ... # a smaller chain
//! ```
//!
//! The chain is built through the ledger directly (not through consensus): Pemda proposals
//! of distinct households, 2,000 per block, each block committed to RocksDB with a
//! certificate signed by all four validators. Then `audit::verify_chain` re-verifies it from
//! genesis as `bansos audit verify --home` does, and inclusion and consistency proofs and
//! hash tiles are generated from the store at the full size.

use std::time::Instant;

use ed25519_dalek::SigningKey;
use ledger::tx::{Action, Transaction, TxBody};
use ledger::types::{Hash32, PublicKey, RegionCode};
use ledger::{Ledger, RocksStore};
use rand::{Rng, SeedableRng};

const TXS_DEFAULT: usize = 1_000_000;
const BLOCK_TXS: usize = 2_000;
const INCLUSION_PROOFS: u64 = 20_000;
const CONSISTENCY_PROOFS: u64 = 5_000;
const TILES: u64 = 2_000;

struct Signer {
    key: SigningKey,
    village: RegionCode,
}

/// Pemda proposals of distinct households, signed on every core.
fn transactions(net: &genesis::testnet::Testnet, count: usize) -> Vec<Transaction> {
    let signers: Vec<Signer> = ["pemda-3510", "pemda-5271"]
        .iter()
        .map(|org| {
            let prefix = if *org == "pemda-3510" {
                "35.10."
            } else {
                "52.71."
            };
            let village = net
                .genesis
                .regions
                .iter()
                .map(|r| r.code.clone())
                .find(|c| c.as_str().starts_with(prefix) && c.as_str().split('.').count() == 4)
                .expect("a village");
            Signer {
                key: net.keys.org(org).expect("a Pemda key").clone(),
                village,
            }
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let signers = &signers;
                let chain_id = net.genesis.chain_id.clone();
                scope.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(count))
                        .map(|i| {
                            let signer = &signers[i % 2];
                            let mut beneficiary = [0u8; 32];
                            beneficiary[..8].copy_from_slice(&(i as u64).to_be_bytes());
                            beneficiary[31] = 1;
                            TxBody {
                                chain_id: chain_id.clone(),
                                signer: PublicKey(signer.key.verifying_key().to_bytes()),
                                nonce: (i / 2) as u64,
                                action: Action::Propose {
                                    beneficiary: Hash32(beneficiary),
                                    region: signer.village.clone(),
                                    household_size: 4,
                                    welfare_decile: 1,
                                },
                            }
                            .sign(&signer.key)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a signing thread"))
            .collect()
    })
}

fn rate(count: u64, seconds: f64) -> String {
    format!("{:.0}/s", count as f64 / seconds)
}

fn proofs(ledger: &Ledger<RocksStore>) {
    let size = ledger.tip().log.size();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let started = Instant::now();
    for _ in 0..INCLUSION_PROOFS {
        let index = rng.gen_range(0..size);
        let path = ledger.inclusion_proof(index, size).expect("a proof");
        assert!(!path.is_empty());
    }
    let inclusion = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..CONSISTENCY_PROOFS {
        let first = rng.gen_range(1..size);
        ledger.consistency_proof(first, size).expect("a proof");
    }
    let consistency = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let full_tiles = size / 256;
    for _ in 0..TILES {
        let index = rng.gen_range(0..full_tiles);
        ledger.log_tile(0, index, 256).expect("a tile");
    }
    let tiles = started.elapsed().as_secs_f64();
    println!(
        "proofs at size {size} from RocksDB: inclusion {} ({INCLUSION_PROOFS}), consistency {} ({CONSISTENCY_PROOFS}), level-0 hash tiles {} ({TILES})",
        rate(INCLUSION_PROOFS, inclusion),
        rate(CONSISTENCY_PROOFS, consistency),
        rate(TILES, tiles)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let count = std::env::var("BANSOS_AUDIT_BENCH_TXS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(TXS_DEFAULT);
    let net = bansos_tests::testnet(1);
    let started = Instant::now();
    let txs = transactions(&net, count);
    println!(
        "signed {count} transactions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut ledger = Ledger::open(
        RocksStore::open(dir.path()).expect("RocksDB opens"),
        net.genesis.clone(),
    )
    .expect("the ledger opens");
    let started = Instant::now();
    bansos_tests::commit_in_blocks(&net, &mut ledger, txs, BLOCK_TXS);
    let built = started.elapsed().as_secs_f64();
    println!(
        "built {} heights, {count} transactions through the ledger into RocksDB in {built:.1} s ({})",
        ledger.tip().height,
        rate(count as u64, built)
    );
    let summary =
        audit::verify_chain(&ledger, net.genesis.clone(), |_, _| {}).expect("the chain verifies");
    println!(
        "audit verify: {} heights, {} transactions, {} certificate signatures, {} log nodes in {:.1} s: {} transactions",
        summary.heights,
        summary.transactions,
        summary.certificate_signatures,
        summary.log_nodes,
        summary.seconds,
        rate(summary.transactions, summary.seconds)
    );
    proofs(&ledger);
}
