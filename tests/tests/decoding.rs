//! Decoders take hostile bytes: seeded mutations of real encodings (bit flips, truncations,
//! insertions, overwritten length prefixes) must never panic, and whatever a decoder
//! accepts must re-encode to exactly the bytes it was given. The second property matters as
//! much as the first: hashes and signatures are over canonical bytes, so two encodings of
//! one value would give one transaction two ids.
//!
//! `BANSOS_DECODE_ROUNDS` sets the mutations per input (default 300); the seed is printed.

use genesis::demo::{generate, DemoParams};
use ledger::chain::SignatureCheck;
use ledger::{Block, Ledger, MemoryStore, Transaction};
use proto::certificate::StoredCertificate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn mutate(rng: &mut ChaCha20Rng, original: &[u8]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..rng.gen_range(1..4) {
        let len = bytes.len().max(1);
        match rng.gen_range(0..5) {
            0 if !bytes.is_empty() => {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => bytes.truncate(rng.gen_range(0..len)),
            2 => {
                let at = rng.gen_range(0..=bytes.len());
                bytes.insert(at, rng.gen());
            }
            3 if bytes.len() >= 4 => {
                // A length prefix (borsh: u32 little-endian) made huge or off by one.
                let at = rng.gen_range(0..bytes.len() - 3);
                let value: u32 = if rng.gen_bool(0.5) {
                    u32::MAX
                } else {
                    rng.gen_range(0..70_000)
                };
                bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            _ if !bytes.is_empty() => {
                let at = rng.gen_range(0..bytes.len());
                bytes.remove(at);
            }
            _ => bytes.push(rng.gen()),
        }
    }
    bytes
}

fn rounds() -> usize {
    std::env::var("BANSOS_DECODE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

/// Real encodings: demo transactions, a block holding some, and a certificate.
fn corpus() -> (Vec<Transaction>, Block, StoredCertificate) {
    let net = bansos_tests::testnet(5);
    let demo = generate(
        &net.genesis,
        &net.keys,
        &DemoParams {
            beneficiaries: 3,
            seed: 5,
        },
    )
    .expect("demo");
    let txs: Vec<Transaction> = demo.batches.iter().flat_map(|b| b.txs.clone()).collect();
    let ledger = Ledger::open(MemoryStore::new(), net.genesis.clone()).expect("ledger");
    let first = &demo.batches[0];
    let proposer = ledger.genesis().validators[0].key;
    let block = ledger
        .build_block(
            first.txs.clone(),
            first.time_ms,
            proposer,
            SignatureCheck::VerifyAll,
        )
        .expect("block")
        .block;
    let certificate = StoredCertificate {
        height: 1,
        round: 0,
        block_hash: block.hash(),
        signatures: vec![(proposer, ledger::types::SignatureBytes([7; 64])); 3],
    };
    (txs, block, certificate)
}

#[test]
fn mutated_encodings_never_panic_and_accepted_ones_are_canonical() {
    let seed = bansos_tests::cluster::test_seed("mutated_encodings");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (txs, block, certificate) = corpus();
    let rounds = rounds();
    let mut accepted = 0usize;
    for tx in txs.iter().take(40) {
        let original = tx.to_bytes();
        for _ in 0..rounds {
            let bytes = mutate(&mut rng, &original);
            if let Ok(decoded) = Transaction::from_bytes(&bytes) {
                assert_eq!(
                    decoded.to_bytes(),
                    bytes,
                    "seed {seed}: a non-canonical transaction was accepted"
                );
                accepted += 1;
            }
            // The JSON submission path takes the same hostile bytes as text.
            let text = String::from_utf8_lossy(&bytes);
            let _ = serde_json::from_str::<Transaction>(&text);
        }
        let json = serde_json::to_vec(tx).expect("json");
        for _ in 0..rounds / 3 {
            let bytes = mutate(&mut rng, &json);
            if let Ok(decoded) = serde_json::from_slice::<Transaction>(&bytes) {
                // Whatever JSON decodes is then checked like any submission: no panic.
                let _ = decoded.check_form(&tx.body.chain_id);
            }
        }
    }
    let block_bytes = block.to_bytes();
    for _ in 0..rounds * 10 {
        let bytes = mutate(&mut rng, &block_bytes);
        if let Ok(decoded) = Block::from_bytes(&bytes) {
            assert_eq!(
                decoded.to_bytes(),
                bytes,
                "seed {seed}: a non-canonical block was accepted"
            );
            accepted += 1;
        }
    }
    // The binary batch form (bulk clients, the relay) decodes to canonical transactions
    // or is refused whole: re-encoding what was accepted gives the same bytes.
    let batch_bytes = proto::txbatch::encode_tx_batch(&txs[..8]).expect("a batch");
    for _ in 0..rounds * 10 {
        let bytes = mutate(&mut rng, &batch_bytes);
        if let Ok(decoded) = proto::txbatch::decode_tx_batch(&bytes) {
            assert_eq!(
                proto::txbatch::encode_tx_batch(&decoded).expect("re-encodes"),
                bytes,
                "seed {seed}: a non-canonical transaction batch was accepted"
            );
            accepted += 1;
        }
    }
    let certificate_bytes = certificate.to_bytes();
    for _ in 0..rounds * 10 {
        let bytes = mutate(&mut rng, &certificate_bytes);
        if let Ok(decoded) = StoredCertificate::from_bytes(&bytes) {
            assert_eq!(
                decoded.to_bytes(),
                bytes,
                "seed {seed}: a non-canonical certificate was accepted"
            );
            accepted += 1;
        }
    }
    eprintln!("mutated encodings: {accepted} mutants decoded (all canonical), seed {seed}");
}
