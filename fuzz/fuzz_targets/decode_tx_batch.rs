//! The binary transaction batch (`POST /v1/txs` as `application/octet-stream`, what bulk
//! clients and every relaying peer send): never panics, never allocates beyond the limits,
//! and whatever decodes re-encodes to exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::txbatch::{decode_tx_batch, encode_tx_batch};

fuzz_target!(|data: &[u8]| {
    if let Ok(txs) = decode_tx_batch(data) {
        assert_eq!(
            encode_tx_batch(&txs).expect("a decoded batch re-encodes"),
            data,
            "a batch decoded from non-canonical bytes"
        );
    }
});
