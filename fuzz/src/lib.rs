//! Shared state for the fuzz targets: a test network and a ledger holding part of the
//! demo year, built once per process from fixed seeds.

use std::sync::OnceLock;

use genesis::demo::{generate, DemoData, DemoParams};
use genesis::testnet::{Testnet, TestnetSpec};
use ledger::chain::SignatureCheck;
use ledger::{Ledger, MemoryStore};
use rand::SeedableRng;

/// Demo batches committed before a target runs (enrolled families, budgets, allocations).
pub const BATCHES_COMMITTED: usize = 6;

pub struct World {
    pub net: Testnet,
    pub demo: DemoData,
    /// The ledger after [`BATCHES_COMMITTED`] demo batches.
    pub ledger: Ledger<MemoryStore>,
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let net = Testnet::generate(&TestnetSpec::default(), &mut rng).expect("testnet");
        let demo = generate(
            &net.genesis,
            &net.keys,
            &DemoParams {
                beneficiaries: 8,
                seed: 5,
            },
        )
        .expect("demo data");
        let mut ledger = Ledger::open(MemoryStore::new(), net.genesis.clone()).expect("ledger");
        let proposer = ledger.genesis().validators[0].key;
        for batch in demo.batches.iter().take(BATCHES_COMMITTED) {
            let prepared = ledger
                .build_block(
                    batch.txs.clone(),
                    batch.time_ms,
                    proposer,
                    SignatureCheck::VerifyAll,
                )
                .expect("demo batch builds");
            ledger.commit(prepared, &[]).expect("demo batch commits");
        }
        World { net, demo, ledger }
    })
}
