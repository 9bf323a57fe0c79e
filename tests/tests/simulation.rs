//! The deterministic simulation tier (TigerBeetle's VOPR, in its cheapest form): N replicas
//! of the pure ledger over in-memory stores, driven by one seed. The driver picks each
//! height's proposer, how the next batch of the synthetic demo year is split into blocks,
//! which adversarial transactions are slipped into the proposer's candidates, which blocks
//! are tampered with on the way to the other replicas, and which replicas crash (drop their
//! ledger and reopen it from the store) and catch up.
//!
//! After every height every replica has the same tip (height, block hash, state root, log);
//! a block built from honest and refused transactions is the very block built from the
//! honest ones alone (a refusal changes nothing, nonces included); a tampered block is
//! refused everywhere and changes nothing. Each seed runs twice and must give the same final
//! tip. The seed is printed on failure; `BANSOS_SIM_SEED=S` replays one, `BANSOS_SIM_SEEDS=N`
//! sets how many run (default 200).

use std::collections::HashSet;

use ed25519_dalek::SigningKey;
use genesis::demo::{generate, DemoParams};
use ledger::chain::{ChainTip, SignatureCheck};
use ledger::tx::{Action, Transaction, TxBody};
use ledger::types::{PublicKey, RegionCode, TxHash};
use ledger::{Block, Ledger, MemoryStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const REPLICAS: usize = 4;

struct Replica {
    store: MemoryStore,
    ledger: Option<Ledger<MemoryStore>>,
}

impl Replica {
    fn ledger(&self) -> &Ledger<MemoryStore> {
        self.ledger.as_ref().expect("replica is up")
    }
}

/// What a run ends with, to compare two runs of one seed.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    tip: ChainTip,
    adversarial_refused: usize,
    tampered_refused: usize,
    crashes: usize,
}

/// An adversarial variant of an honest transaction, or a stranger's transaction.
fn adversarial(
    rng: &mut ChaCha20Rng,
    honest: &Transaction,
    committed: &[Transaction],
    chain_id: &str,
) -> Transaction {
    match rng.gen_range(0..6) {
        0 => {
            let mut tx = honest.clone();
            tx.signature.0[rng.gen_range(0..64)] ^= 1 << rng.gen_range(0..8);
            tx
        }
        1 if !committed.is_empty() => committed[rng.gen_range(0..committed.len())].clone(),
        2 => {
            let mut tx = honest.clone();
            tx.body.chain_id = "another-chain".into();
            tx
        }
        3 => {
            // A key no genesis lists.
            let stranger = SigningKey::from_bytes(&rng.gen());
            TxBody {
                chain_id: chain_id.into(),
                signer: PublicKey(stranger.verifying_key().to_bytes()),
                nonce: 0,
                action: Action::RevokeAgent {
                    key: PublicKey([7; 32]),
                },
            }
            .sign(&stranger)
        }
        4 => {
            // The honest body with a nonce far ahead: the signature no longer matches.
            let mut tx = honest.clone();
            tx.body.nonce += 1 + rng.gen_range(0..5);
            tx
        }
        _ => {
            let mut tx = honest.clone();
            if let Action::Propose { region, .. } = &mut tx.body.action {
                *region = RegionCode::new("35.10.99.9999").expect("code");
            } else {
                tx.signature.0[0] ^= 0x80;
            }
            tx
        }
    }
}

/// A copy of `block` with one thing changed that every replica must notice.
fn tamper(rng: &mut ChaCha20Rng, block: &Block) -> Block {
    let mut bad = block.clone();
    match rng.gen_range(0..5) {
        0 => bad.header.state_root.0[0] ^= 1,
        1 => bad.header.log_root.0[5] ^= 1,
        2 => bad.header.tx_root.0[9] ^= 1,
        3 if !bad.txs.is_empty() => {
            let i = rng.gen_range(0..bad.txs.len());
            bad.txs[i].signature.0[3] ^= 1;
        }
        _ => bad.header.time_ms = bad.header.time_ms.saturating_sub(10_000_000_000),
    }
    bad
}

fn assert_same_tip(replicas: &[Replica], seed: u64, height: u64) {
    let first = replicas[0].ledger().tip().clone();
    for (i, replica) in replicas.iter().enumerate() {
        assert_eq!(
            replica.ledger().tip(),
            &first,
            "seed {seed}: replica {i} diverged at height {height}"
        );
    }
}

fn run(seed: u64) -> Outcome {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let net = bansos_tests::testnet(seed % 7);
    let households = 2 + rng.gen_range(0..5);
    let demo = generate(
        &net.genesis,
        &net.keys,
        &DemoParams {
            beneficiaries: households,
            seed,
        },
    )
    .expect("demo data");
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|_| {
            let store = MemoryStore::new();
            let ledger = Ledger::open(store.clone(), net.genesis.clone()).expect("opens");
            Replica {
                store,
                ledger: Some(ledger),
            }
        })
        .collect();
    let proposers: Vec<PublicKey> = net
        .genesis
        .clone()
        .validate()
        .expect("genesis")
        .validators
        .iter()
        .map(|v| v.key)
        .collect();
    let chain_id = net.genesis.chain_id.clone();
    let mut committed: Vec<Transaction> = Vec::new();
    let mut outcome = Outcome {
        tip: replicas[0].ledger().tip().clone(),
        adversarial_refused: 0,
        tampered_refused: 0,
        crashes: 0,
    };
    for batch in &demo.batches {
        let mut remaining: &[Transaction] = &batch.txs;
        while !remaining.is_empty() {
            let take = rng.gen_range(1..=remaining.len().min(40));
            let (honest, rest) = remaining.split_at(take);
            remaining = rest;
            let height = replicas[0].ledger().tip().height + 1;
            let proposer_index = rng.gen_range(0..REPLICAS);
            let proposer = proposers[rng.gen_range(0..proposers.len())];
            let time_ms = batch.time_ms.max(replicas[0].ledger().tip().time_ms + 1);
            // The proposer's candidates: the honest ones with adversarial ones slipped in.
            let mut candidates = honest.to_vec();
            let mut slipped: HashSet<TxHash> = HashSet::new();
            for _ in 0..rng.gen_range(0..4) {
                let base = &honest[rng.gen_range(0..honest.len())];
                let bad = adversarial(&mut rng, base, &committed, &chain_id);
                if honest.iter().any(|h| h.hash() == bad.hash()) {
                    continue;
                }
                slipped.insert(bad.hash());
                let at = rng.gen_range(0..=candidates.len());
                candidates.insert(at, bad);
            }
            let built = replicas[proposer_index]
                .ledger()
                .build_block(candidates, time_ms, proposer, SignatureCheck::VerifyAll)
                .unwrap_or_else(|e| panic!("seed {seed}: height {height}: build failed: {e}"));
            let refused: HashSet<TxHash> = built.rejected.iter().map(|(h, _)| *h).collect();
            assert_eq!(
                refused, slipped,
                "seed {seed}: height {height}: refused {:?}",
                built.rejected
            );
            outcome.adversarial_refused += refused.len();
            // A refusal changes nothing: the block is the one built from the honest alone.
            let clean = replicas[(proposer_index + 1) % REPLICAS]
                .ledger()
                .build_block(
                    honest.to_vec(),
                    time_ms,
                    proposer,
                    SignatureCheck::VerifyAll,
                )
                .expect("clean build");
            assert_eq!(
                built.hash, clean.hash,
                "seed {seed}: height {height}: refused transactions changed the block"
            );
            let block = built.block.clone();
            // Sometimes a tampered copy reaches the replicas first: all refuse it.
            if rng.gen_bool(0.2) {
                let bad = tamper(&mut rng, &block);
                if bad.hash() != block.hash() || bad.txs != block.txs {
                    for (i, replica) in replicas.iter().enumerate() {
                        let before = replica.ledger().tip().clone();
                        assert!(
                            replica
                                .ledger()
                                .prepare_block(&bad, SignatureCheck::VerifyAll)
                                .is_err(),
                            "seed {seed}: height {height}: replica {i} accepted a tampered block"
                        );
                        assert_eq!(replica.ledger().tip(), &before);
                    }
                    outcome.tampered_refused += 1;
                }
            }
            // Every replica checks and commits the block; some crash first and reopen.
            for replica in replicas.iter_mut() {
                if rng.gen_bool(0.05) {
                    replica.ledger = None;
                    replica.ledger = Some(
                        Ledger::open(replica.store.clone(), net.genesis.clone()).expect("reopens"),
                    );
                    outcome.crashes += 1;
                }
                let prepared = replica
                    .ledger()
                    .prepare_block(&block, SignatureCheck::VerifyAll)
                    .unwrap_or_else(|e| {
                        panic!("seed {seed}: height {height}: a replica refused the block: {e}")
                    });
                assert_eq!(prepared.hash, block.hash());
                replica
                    .ledger
                    .as_mut()
                    .expect("up")
                    .commit(prepared, b"simulated certificate")
                    .expect("commit");
            }
            assert_same_tip(&replicas, seed, height);
            committed.extend_from_slice(honest);
        }
    }
    // Every replica reopened from its store agrees too.
    for replica in replicas.iter_mut() {
        replica.ledger =
            Some(Ledger::open(replica.store.clone(), net.genesis.clone()).expect("reopens"));
    }
    assert_same_tip(&replicas, seed, u64::MAX);
    let last = replicas[0].ledger().tip().clone();
    assert_eq!(
        last.log.size(),
        demo.tx_count() as u64,
        "seed {seed}: every honest transaction committed"
    );
    outcome.tip = last;
    outcome
}

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("BANSOS_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let count: u64 = std::env::var("BANSOS_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let base: u64 = std::env::var("BANSOS_SIM_BASE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    (base..base + count).collect()
}

#[test]
fn replicas_agree_on_every_height_under_adversarial_transactions_tampered_blocks_and_crashes() {
    let seeds = seeds();
    let mut totals = (0, 0, 0);
    for &seed in &seeds {
        let result = std::panic::catch_unwind(|| (run(seed), run(seed)));
        let (first, second) = match result {
            Ok(pair) => pair,
            Err(panic) => {
                eprintln!("simulation failed at seed {seed} (replay with BANSOS_SIM_SEED={seed})");
                std::panic::resume_unwind(panic);
            }
        };
        assert_eq!(
            first, second,
            "seed {seed}: the same seed gave two different runs"
        );
        totals.0 += first.adversarial_refused;
        totals.1 += first.tampered_refused;
        totals.2 += first.crashes;
    }
    eprintln!(
        "simulated {} seeds ({}..={}): {} adversarial transactions refused, {} tampered blocks refused, {} crash-reopens",
        seeds.len(),
        seeds[0],
        seeds[seeds.len() - 1],
        totals.0,
        totals.1,
        totals.2
    );
    assert!(
        totals.0 > 0 && totals.2 > 0 || seeds.len() < 10,
        "the driver exercised faults"
    );
}
