//! Ledger rules on hostile transactions: any decodable transaction, its signature check
//! skipped so that the fuzzer reaches the lifecycle rules, executed in a block on a ledger
//! holding part of the demo year. Never panics, and building the same block twice gives
//! the same result (the state machine is deterministic).
#![no_main]

use std::collections::HashSet;

use ledger::chain::SignatureCheck;
use ledger::Transaction;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = Transaction::from_bytes(data) else {
        return;
    };
    let world = bansos_fuzz::world();
    let skip: HashSet<_> = [tx.hash()].into_iter().collect();
    let tip = world.ledger.tip();
    let proposer = world.ledger.genesis().validators[0].key;
    let build = || {
        world
            .ledger
            .build_block(
                vec![tx.clone()],
                tip.time_ms + 1,
                proposer,
                SignatureCheck::SkipVerified(&skip),
            )
            .map(|p| (p.hash, p.rejected.len()))
            .map_err(|e| e.code())
    };
    assert_eq!(build(), build(), "one block built twice gave two results");
});
