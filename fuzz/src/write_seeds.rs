//! Writes the starting corpus of each fuzz target from real encodings: the demo year's
//! transactions (binary and JSON), a block, a certificate-shaped input and the test
//! network's genesis. `cargo run --bin write-seeds` from fuzz/.

use std::fs;
use std::path::Path;

use ledger::chain::SignatureCheck;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus directory");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn main() {
    let world = bansos_fuzz::world();
    let txs: Vec<_> = world
        .demo
        .batches
        .iter()
        .flat_map(|b| b.txs.iter())
        .collect();
    // A spread of transaction kinds: every 7th of the demo year.
    for (i, tx) in txs.iter().step_by(7).enumerate() {
        write("decode_tx", &format!("tx-{i}"), &tx.to_bytes());
        write("execute_tx", &format!("tx-{i}"), &tx.to_bytes());
        write(
            "tx_json",
            &format!("tx-{i}"),
            &serde_json::to_vec(tx).expect("json"),
        );
    }
    let first: Vec<_> = world.demo.batches[0].txs.iter().take(16).cloned().collect();
    write(
        "decode_tx_batch",
        "batch",
        &proto::txbatch::encode_tx_batch(&first).expect("a batch"),
    );
    let batch = &world.demo.batches[bansos_fuzz::BATCHES_COMMITTED];
    let proposer = world.ledger.genesis().validators[0].key;
    let prepared = world
        .ledger
        .build_block(
            batch.txs.clone(),
            batch.time_ms,
            proposer,
            SignatureCheck::VerifyAll,
        )
        .expect("next demo batch builds");
    write("decode_block", "block", &prepared.block.to_bytes());
    // A certificate over that block, signed by three validators' keys.
    let signatures = world
        .net
        .nodes
        .iter()
        .filter(|n| n.role == genesis::testnet::NodeRole::Validator)
        .take(3)
        .map(|n| {
            let key = ledger::types::PublicKey(n.key.verifying_key().to_bytes());
            (key, ledger::types::SignatureBytes([7; 64]))
        })
        .collect();
    let certificate = proto::certificate::StoredCertificate {
        height: 7,
        round: 0,
        block_hash: prepared.hash,
        signatures,
    };
    write("certificate", "certificate", &certificate.to_bytes());
    let genesis = serde_json::to_vec_pretty(&world.net.genesis).expect("json");
    write("genesis_json", "genesis", &genesis);
    write("proofs", "small", &[5, 0, 3, 0, 0, 1, 2]);
    write(
        "proofs",
        "large",
        &[0x2b, 0x01, 0x80, 0x00, 0x06, 0x00, 0x09],
    );
    println!("seeds written under corpus/");
}
