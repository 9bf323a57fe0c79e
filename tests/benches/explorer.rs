//! The explorer's two reads at national scale (issue: the public explorer): a citizen's
//! tracking lookup (the timeline with an inclusion proof per step, exactly what
//! `GET /v1/track/{code}` computes) and a region dashboard (`GET /v1/totals/...`: the
//! table with suppression and its sum-tree proofs), with 1,000,000 beneficiaries in state.
//! Not criterion: one long run, figures printed.
//!
//! ```sh
//! CARGO_TARGET_DIR=$HOME/.cache/bansos-release cargo bench --workspace --bench explorer
//! BANSOS_EXPLORER_BENCH_BENEFICIARIES=100000 ... # a smaller state
//! BANSOS_EXPLORER_BENCH_DIR=/var/tmp/explorer-bench ... # keep the state for later runs
//! ```
//!
//! The state is built through the ledger (not consensus), in blocks of 2,000 transactions
//! committed to RocksDB: a PKH budget, then for every beneficiary a proposal, an identity
//! check, a verification, an enrolment with a fresh 100-bit tracking code, an allocation
//! and a disbursement, spread over Banyuwangi's villages: six transactions each, so a
//! timeline has six steps and the log holds six million leaves. The lookups then run on
//! every core over a sample of the codes, bypassing only HTTP and the per-client limit.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ledger::tx::{Action, BudgetCeiling, PaymentChannel, Transaction, TxBody, Verification};
use ledger::types::{Hash32, PeriodCode, ProgramCode, PublicKey, RegionCode, Rupiah};
use ledger::{Ledger, RocksStore};
use rand::SeedableRng;

/// The node binary's allocator, so that lookups allocate as they do in the node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BENEFICIARIES_DEFAULT: usize = 1_000_000;
const BLOCK_TXS: usize = 2_000;
/// Every this many beneficiaries, the tracking code is kept for the lookups.
const SAMPLE_EVERY: usize = 50;
const LOOKUPS_PER_THREAD: usize = 20_000;
const DASHBOARD_QUERIES: usize = 2_000;
const AMOUNT: Rupiah = Rupiah(750_000);

/// One unsigned step: who signs it and what it does.
type Step = (usize, Action);

struct Plan {
    keys: Vec<SigningKey>,
    steps: Vec<Step>,
    codes: Vec<String>,
}

/// A value that looks like what it stands for, a keyed hash: as random as a real pseudonym
/// or account reference, so that the store compresses these transactions no better than
/// real ones.
fn pseudo_random(what: &str, i: usize) -> Hash32 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(what.as_bytes());
    hasher.update(&(i as u64).to_be_bytes());
    Hash32(*hasher.finalize().as_bytes())
}

fn beneficiary(i: usize) -> Hash32 {
    pseudo_random("beneficiary", i)
}

/// One account per beneficiary, except that every thousandth pair shares one (an anomaly
/// the dashboards count).
fn account(i: usize) -> Hash32 {
    let owner = if i % 1000 == 1 { i - 1 } else { i };
    pseudo_random("account", owner)
}

fn plan(net: &genesis::testnet::Testnet, count: usize) -> Plan {
    let orgs = ["kemensos", "pemda-3510", "dukcapil", "bank-bri"];
    let keys: Vec<SigningKey> = orgs
        .iter()
        .map(|o| net.keys.org(o).expect("a testnet organisation").clone())
        .collect();
    let (kemensos, pemda, dukcapil, bank) = (0, 1, 2, 3);
    let villages: Vec<RegionCode> = net
        .genesis
        .regions
        .iter()
        .map(|r| r.code.clone())
        .filter(|c| c.as_str().starts_with("35.10.") && c.as_str().split('.').count() == 4)
        .collect();
    let pkh = ProgramCode::new("PKH").unwrap();
    let period = PeriodCode::new("2026-T1").unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let mut steps: Vec<Step> = Vec::with_capacity(6 * count + 1);
    steps.push((
        kemensos,
        Action::DeclareBudget {
            program: pkh.clone(),
            period: period.clone(),
            ceilings: vec![BudgetCeiling {
                region: RegionCode::new("35.10").unwrap(),
                ceiling: Rupiah(AMOUNT.0 * count as u64),
            }],
        },
    ));
    let mut codes = Vec::new();
    for i in 0..count {
        steps.push((
            pemda,
            Action::Propose {
                beneficiary: beneficiary(i),
                region: villages[i % villages.len()].clone(),
                household_size: 4,
                welfare_decile: 1,
            },
        ));
    }
    for i in 0..count {
        steps.push((
            dukcapil,
            Action::CheckIdentity {
                beneficiary: beneficiary(i),
                passed: true,
                evidence_hash: pseudo_random("evidence", i),
            },
        ));
    }
    for i in 0..count {
        steps.push((
            pemda,
            Action::VerifyEligibility {
                beneficiary: beneficiary(i),
                outcome: Verification::Verified,
            },
        ));
    }
    for i in 0..count {
        let code = ledger::privacy::new_tracking_code(&mut rng);
        steps.push((
            kemensos,
            Action::Enrol {
                beneficiary: beneficiary(i),
                program: pkh.clone(),
                tracking_code_hash: ledger::privacy::tracking_code_hash(&code).unwrap(),
                beneficiary_key: None,
            },
        ));
        if i % SAMPLE_EVERY == 0 {
            codes.push(code);
        }
    }
    for i in 0..count {
        steps.push((
            kemensos,
            Action::Allocate {
                beneficiary: beneficiary(i),
                program: pkh.clone(),
                period: period.clone(),
                amount: AMOUNT,
            },
        ));
    }
    for i in 0..count {
        steps.push((
            bank,
            Action::Disburse {
                allocation: ledger::state::allocation_id(&beneficiary(i), &pkh, &period),
                amount: AMOUNT,
                channel: PaymentChannel::BankAccount,
                account_ref_hash: account(i),
            },
        ));
    }
    Plan { keys, steps, codes }
}

/// Signs the steps in order, each signer's nonces counting up, on every core.
fn sign(net: &genesis::testnet::Testnet, plan: &Plan) -> Vec<Transaction> {
    let mut next = vec![0u64; plan.keys.len()];
    let nonces: Vec<u64> = plan
        .steps
        .iter()
        .map(|(who, _)| {
            next[*who] += 1;
            next[*who] - 1
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = plan.steps.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let nonces = &nonces;
                let chain_id = net.genesis.chain_id.clone();
                scope.spawn(move || {
                    let range = t * chunk..((t + 1) * chunk).min(plan.steps.len());
                    range
                        .map(|i| {
                            let (who, action) = &plan.steps[i];
                            let key = &plan.keys[*who];
                            TxBody {
                                chain_id: chain_id.clone(),
                                signer: PublicKey(key.verifying_key().to_bytes()),
                                nonce: nonces[i],
                                action: action.clone(),
                            }
                            .sign(key)
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn lookups(ledger: &Ledger<RocksStore>, codes: &[String]) {
    let size = ledger.tip().log.size();
    let checkpoint = Some((ledger.checkpoint_at(size).expect("a head").text(), size));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let names = &node::track::InstitutionNames::default();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let checkpoint = checkpoint.clone();
                scope.spawn(move || {
                    let mut times = Vec::with_capacity(LOOKUPS_PER_THREAD);
                    for i in 0..LOOKUPS_PER_THREAD {
                        let code = &codes[(i * threads + t) % codes.len()];
                        let began = Instant::now();
                        let record = node::track::record_for_code(ledger, code).expect("known");
                        let track =
                            node::track::track_for(ledger, names, &record, checkpoint.clone())
                                .expect("a timeline");
                        assert_eq!(track.steps.len(), 6);
                        assert!(track.steps.iter().all(|s| s.path.is_some()));
                        times.push(began.elapsed());
                    }
                    times
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a lookup thread"))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "tracking lookups ({threads} threads, {} lookups, 6 steps with inclusion proofs each, log size {size}): {:.0}/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        latencies.len() as f64 / seconds,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
}

fn dashboards(ledger: &Ledger<RocksStore>) {
    let started = Instant::now();
    let survey = node::anomalies::compute(|| ledger).expect("the anomaly counts");
    println!(
        "anomaly counts and statistics over every allocation and objection: {:.2} s (cached by the node, recomputed at most every {} s as blocks come, in the background)",
        started.elapsed().as_secs_f64(),
        node::anomalies::ANOMALY_REFRESH.as_secs()
    );
    let village = ledger
        .genesis()
        .regions
        .keys()
        .find(|c| c.as_str().starts_with("35.10.") && c.as_str().split('.').count() == 4)
        .expect("a village")
        .to_string();
    for (what, region) in [
        ("program period (provinces)", None),
        ("regency (its districts)", Some("35.10".to_owned())),
        ("village", Some(village)),
    ] {
        let mut times = Vec::with_capacity(DASHBOARD_QUERIES);
        for _ in 0..DASHBOARD_QUERIES {
            let began = Instant::now();
            let totals =
                node::web::totals_json(ledger, &survey, "PKH", "2026-T1", region.as_deref())
                    .expect("a table");
            assert!(totals.totals.is_some());
            times.push(began.elapsed());
        }
        times.sort();
        println!(
            "dashboard query, {what}: p50 {:.3} ms, p99 {:.3} ms",
            percentile(&times, 0.50).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
        );
    }
}

/// Builds the state in `dir`, or reopens it when an earlier run left it there with its
/// sample codes (`BANSOS_EXPLORER_BENCH_DIR`: repeated runs, e.g. under `perf`, skip the
/// build).
fn state(
    net: &genesis::testnet::Testnet,
    dir: &std::path::Path,
    count: usize,
) -> (Ledger<RocksStore>, Vec<String>) {
    let codes_file = dir.join(format!("codes-{count}.txt"));
    if let Ok(text) = std::fs::read_to_string(&codes_file) {
        let ledger = Ledger::open(
            RocksStore::open(&dir.join("db")).expect("RocksDB opens"),
            net.genesis.clone(),
        )
        .expect("the ledger opens");
        println!("reopened the state of an earlier run in {}", dir.display());
        return (ledger, text.lines().map(str::to_owned).collect());
    }
    let started = Instant::now();
    let plan = plan(net, count);
    let txs = sign(net, &plan);
    println!(
        "signed {} transactions for {count} beneficiaries in {:.1} s",
        txs.len(),
        started.elapsed().as_secs_f64()
    );
    let mut ledger = Ledger::open(
        RocksStore::open(&dir.join("db")).expect("RocksDB opens"),
        net.genesis.clone(),
    )
    .expect("the ledger opens");
    let started = Instant::now();
    bansos_tests::commit_in_blocks(net, &mut ledger, txs, BLOCK_TXS);
    println!(
        "built {} heights into RocksDB in {:.1} s",
        ledger.tip().height,
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&codes_file, plan.codes.join("\n")).expect("the codes are written");
    (ledger, plan.codes)
}

fn main() {
    let count = std::env::var("BANSOS_EXPLORER_BENCH_BENEFICIARIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(BENEFICIARIES_DEFAULT);
    let net = bansos_tests::testnet(1);
    let temporary = tempfile::tempdir().expect("a temporary directory");
    let dir = std::env::var_os("BANSOS_EXPLORER_BENCH_DIR")
        .map_or_else(|| temporary.path().to_owned(), std::path::PathBuf::from);
    let (ledger, codes) = state(&net, &dir, count);
    // A node's store settles by background compaction within minutes of a bulk load; the
    // lookups measure that steady state, not the moment after the load.
    let started = Instant::now();
    ledger.store().compact().expect("the store compacts");
    println!(
        "compacted the store in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    lookups(&ledger, &codes);
    dashboards(&ledger);
}
