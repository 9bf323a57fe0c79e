//! The consensus codec (votes, proposals, proposal parts, sync requests and responses,
//! WAL entries: bytes from any peer): never panics, and bytes any message type accepts
//! re-encode to exactly themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    node::consensus::codec::check_canonical(data);
});
