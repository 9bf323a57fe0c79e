//! Block decoding (proposal streams and sync responses): never panics, accepted bytes are
//! canonical, and a decoded block checked against the ledger is refused or accepted
//! without a panic.
#![no_main]

use ledger::chain::SignatureCheck;
use ledger::Block;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::from_bytes(data) {
        assert_eq!(
            block.to_bytes(),
            data,
            "a block decoded from non-canonical bytes"
        );
        let world = bansos_fuzz::world();
        let _ = world
            .ledger
            .prepare_block(&block, SignatureCheck::VerifyAll);
    }
});
