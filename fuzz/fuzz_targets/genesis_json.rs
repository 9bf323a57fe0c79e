//! Genesis loading (the file every node and auditor starts from): never panics; a genesis
//! that validates has a stable hash and survives a JSON round trip.
#![no_main]

use ledger::Genesis;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(genesis) = Genesis::from_json(text) else {
        return;
    };
    let hash = genesis.hash();
    let json = serde_json::to_string(&genesis).expect("serialises");
    let again = Genesis::from_json(&json).expect("own JSON parses");
    assert_eq!(
        again.hash(),
        hash,
        "a genesis changed its hash in a JSON round trip"
    );
    let _ = genesis.validate();
});
