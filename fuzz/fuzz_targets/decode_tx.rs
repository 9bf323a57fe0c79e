//! Transaction decoding (the bytes every node takes from peers and stores): never panics,
//! and whatever decodes re-encodes to exactly the input (one transaction, one encoding,
//! one id).
#![no_main]

use ledger::Transaction;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = Transaction::from_bytes(data) {
        assert_eq!(
            tx.to_bytes(),
            data,
            "a transaction decoded from non-canonical bytes"
        );
    }
});
