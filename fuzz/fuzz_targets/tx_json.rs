//! The JSON a client POSTs to /v1/tx and /v1/txs: never panics; a transaction parsed from
//! JSON that passes the admission form check (size limit included) survives both
//! encodings unchanged.
#![no_main]

use ledger::Transaction;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = serde_json::from_slice::<Transaction>(data) {
        if tx.check_form(&tx.body.chain_id).is_err() {
            return;
        }
        let bytes = tx.to_bytes();
        let decoded = Transaction::from_bytes(&bytes).expect("canonical bytes decode");
        assert_eq!(decoded, tx);
        let json = serde_json::to_vec(&tx).expect("serialises");
        let again: Transaction = serde_json::from_slice(&json).expect("own JSON parses");
        assert_eq!(again, tx);
    }
    let _ = serde_json::from_slice::<Vec<Transaction>>(data);
});
