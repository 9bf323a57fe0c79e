//! `audit::verify_chain` over a real RocksDB data directory: it passes on the chain as
//! written, and each kind of tampering (a flipped byte in a transaction, a header, a
//! certificate signature or a log node; a deleted transaction; two swapped blocks; a
//! certificate forged with keys outside the validator set) fails at the right height.

use std::path::{Path, PathBuf};

use audit::Failure;
use ed25519_dalek::SigningKey;
use genesis::demo::{generate, DemoParams};
use genesis::testnet::{NodeRole, Testnet, TestnetSpec};
use ledger::note::{sign, Checkpoint, SignedNote};
use ledger::store::{Column, Store, WriteBatch};
use ledger::types::Hash32;
use ledger::{Ledger, RocksStore, SignatureCheck};
use proto::certificate::StoredCertificate;
use proto::signing::ChainBinding;
use rand::SeedableRng;

/// The height every tamper aims at: a block with transactions, neither first nor last.
const TARGET: u64 = 3;

fn certificate(chain: &ChainBinding, keys: &[SigningKey], height: u64, hash: &Hash32) -> Vec<u8> {
    StoredCertificate::sign(chain, keys, height, 0, *hash).to_bytes()
}

/// Writes a node home: genesis, config.toml, and data/ledger with the demo year committed
/// block by block, each with a certificate of all validators and a checkpoint note signed
/// by three of four.
fn write_home(dir: &Path) -> (Testnet, PathBuf) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
    let net = Testnet::generate(&TestnetSpec::default(), &mut rng).unwrap();
    let data = generate(
        &net.genesis,
        &net.keys,
        &DemoParams {
            beneficiaries: 6,
            seed: 21,
        },
    )
    .unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(home.join("data")).unwrap();
    std::fs::write(
        home.join("genesis.json"),
        serde_json::to_vec(&net.genesis).unwrap(),
    )
    .unwrap();
    std::fs::write(home.join("config.toml"), "genesis = \"genesis.json\"\n").unwrap();
    let store = RocksStore::open(&home.join("data").join("ledger")).unwrap();
    let mut ledger = Ledger::open(store, net.genesis.clone()).unwrap();
    let chain = ChainBinding::of(&net.genesis);
    let validators: Vec<&genesis::testnet::NodeSpec> = net
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::Validator)
        .collect();
    let keys: Vec<SigningKey> = validators.iter().map(|n| n.key.clone()).collect();
    for batch in &data.batches {
        let proposer = ledger.genesis().validators[0].key;
        let prepared = ledger
            .build_block(
                batch.txs.clone(),
                batch.time_ms,
                proposer,
                SignatureCheck::VerifyAll,
            )
            .unwrap();
        let header = prepared.block.header.clone();
        let certificate = certificate(&chain, &keys, header.height, &prepared.hash);
        ledger.commit(prepared, &certificate).unwrap();
        let text = Checkpoint {
            origin: net.genesis.log_origin.clone(),
            size: header.log_size,
            root: header.log_root.0,
            totals: Some(header.totals_root.0),
        }
        .text();
        let note = SignedNote {
            signatures: validators[..3]
                .iter()
                .map(|v| {
                    sign(
                        &text,
                        &net.genesis.log_origin,
                        v.checkpoint_key.as_ref().unwrap(),
                    )
                })
                .collect(),
            text,
        };
        ledger
            .keep_checkpoint_note(header.log_size, &note.to_text(), true)
            .unwrap();
    }
    assert!(
        ledger.tip().height > TARGET + 1,
        "the demo makes enough blocks"
    );
    (net, home)
}

fn verify(home: &Path) -> Result<audit::Summary, Failure> {
    let genesis = audit::home_genesis(home)?;
    let source = audit::open_home(home, genesis.clone())?;
    audit::verify_chain(&source, genesis, |_, _| {})
}

/// Copies the home, changes its store with `tamper`, and returns the audit's verdict.
fn tampered(home: &Path, name: &str, tamper: impl FnOnce(&RocksStore)) -> Failure {
    let copy = home.with_file_name(name);
    copy_dir(home, &copy);
    {
        let store = RocksStore::open(&copy.join("data").join("ledger")).unwrap();
        tamper(&store);
    }
    verify(&copy).expect_err(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn get(store: &RocksStore, column: Column, key: &[u8]) -> Vec<u8> {
    store.get(column, key).unwrap().expect("present")
}

fn put(store: &RocksStore, column: Column, key: &[u8], value: Vec<u8>) {
    let mut batch = WriteBatch::new();
    batch.put(column, key.to_vec(), value);
    store.write(batch).unwrap();
}

fn flip(store: &RocksStore, column: Column, key: &[u8], at: impl FnOnce(usize) -> usize) {
    let mut value = get(store, column, key);
    let i = at(value.len());
    value[i] ^= 0x01;
    put(store, column, key, value);
}

/// The hash of block `height` as stored.
fn block_hash(home: &Path, height: u64) -> Hash32 {
    let genesis = audit::home_genesis(home).unwrap();
    let source = audit::open_home(home, genesis).unwrap();
    source.header(height).unwrap().unwrap().hash()
}

/// The log index of the first transaction of block `height`.
fn first_leaf(home: &Path, height: u64) -> u64 {
    let genesis = audit::home_genesis(home).unwrap();
    let source = audit::open_home(home, genesis).unwrap();
    let header = source.header(height).unwrap().unwrap();
    assert!(header.tx_count > 0, "block {height} has transactions");
    header.log_size - u64::from(header.tx_count)
}

#[test]
fn an_untouched_chain_passes_and_every_tamper_fails_at_its_height() {
    let dir = tempfile::tempdir().unwrap();
    let (net, home) = write_home(dir.path());
    let summary = verify(&home).unwrap();
    assert!(summary.heights > TARGET && summary.transactions > 0);
    assert_eq!(summary.checkpoints, summary.heights);
    assert!(summary.certificate_signatures >= 4 * summary.heights);

    let leaf = first_leaf(&home, TARGET);
    let target_hash = block_hash(&home, TARGET);
    let height = TARGET.to_be_bytes();
    let cases: Vec<(&str, Failure)> = vec![
        (
            "tx-byte",
            tampered(&home, "tx-byte", |s| {
                flip(s, Column::LogLeaves, &leaf.to_be_bytes(), |len| len - 1)
            }),
        ),
        (
            "header-byte",
            tampered(&home, "header-byte", |s| {
                flip(s, Column::Blocks, &height, |len| len / 2)
            }),
        ),
        (
            "certificate-signature",
            tampered(&home, "certificate-signature", |s| {
                flip(s, Column::Certificates, &height, |len| len - 1)
            }),
        ),
        (
            "deleted-tx",
            tampered(&home, "deleted-tx", |s| {
                let mut batch = WriteBatch::new();
                batch.delete(Column::LogLeaves, leaf.to_be_bytes().to_vec());
                s.write(batch).unwrap();
            }),
        ),
        (
            "swapped-blocks",
            tampered(&home, "swapped-blocks", |s| {
                let next = (TARGET + 1).to_be_bytes();
                let (a, b) = (
                    get(s, Column::Blocks, &height),
                    get(s, Column::Blocks, &next),
                );
                put(s, Column::Blocks, &height, b);
                put(s, Column::Blocks, &next, a);
            }),
        ),
        (
            "forged-certificate",
            tampered(&home, "forged-certificate", |s| {
                let strangers: Vec<SigningKey> = (1..=4)
                    .map(|i| SigningKey::from_bytes(&[100 + i; 32]))
                    .collect();
                let forged = certificate(
                    &ChainBinding::of(&net.genesis),
                    &strangers,
                    TARGET,
                    &target_hash,
                );
                put(s, Column::Certificates, &height, forged);
            }),
        ),
    ];
    // Two faults: the earlier height is the one reported, even when a later block cannot
    // even be read (signatures are checked ahead for many blocks at once).
    let two = tampered(&home, "two-faults", |s| {
        flip(s, Column::Certificates, &height, |len| len - 1);
        let mut batch = WriteBatch::new();
        batch.delete(Column::Blocks, (TARGET + 1).to_be_bytes().to_vec());
        s.write(batch).unwrap();
    });
    assert_eq!(
        (two.height, two.check),
        (Some(TARGET), "certificate"),
        "{two}"
    );
    for (name, failure) in &cases {
        assert_eq!(failure.height, Some(TARGET), "{name}: {failure}");
    }
    let check = |name: &str| cases.iter().find(|(n, _)| *n == name).unwrap().1.check;
    assert_eq!(check("tx-byte"), "replay");
    assert_eq!(check("certificate-signature"), "certificate");
    assert_eq!(check("forged-certificate"), "certificate");

    // A log node inside a tile: the audit names the block that completed that subtree, not
    // merely the tile's first.
    let pair = std::cell::Cell::new(0u64);
    let log_node = tampered(&home, "log-node", |s| {
        let nodes = s.scan(Column::LogNodes, &[], &[], 1).unwrap();
        let (key, mut value) = nodes.into_iter().next().expect("a stored log node");
        // The first stored entry is the first tile: a count byte (its level-1 nodes), then
        // level 1 from index 0. Its last level-1 node hashes leaves 2k and 2k + 1.
        let k = u64::from(value[0]) - 1;
        assert!(k > 0, "the first tile holds more than one pair");
        value[1 + 32 * k as usize] ^= 0x01;
        pair.set(k);
        put(s, Column::LogNodes, &key, value);
    });
    assert_eq!(log_node.check, "log", "{log_node}");
    let expected = {
        let genesis = audit::home_genesis(&home).unwrap();
        let source = audit::open_home(&home, genesis).unwrap();
        let last_leaf = 2 * pair.get() + 1;
        (1..=source.tip().height)
            .find(|h| source.header(*h).unwrap().unwrap().log_size > last_leaf)
            .unwrap()
    };
    let first_block = {
        let genesis = audit::home_genesis(&home).unwrap();
        let source = audit::open_home(&home, genesis).unwrap();
        (1..=source.tip().height)
            .find(|h| source.header(*h).unwrap().unwrap().log_size > 1)
            .unwrap()
    };
    assert_ne!(
        expected, first_block,
        "the node lies in a later block than the tile's first"
    );
    assert_eq!(log_node.height, Some(expected), "{log_node}");

    // A checkpoint whose signatures are fine but whose root is not the log's cannot be
    // forged without the validators' keys; a tampered note fails its signatures.
    let checkpoint = tampered(&home, "checkpoint", |s| {
        let entries = s.scan(Column::Checkpoints, &[], &[], 1).unwrap();
        let (key, value) = entries.into_iter().next().expect("a checkpoint");
        let text = String::from_utf8(value).unwrap();
        let mut note = SignedNote::parse(&text).unwrap();
        let mut checkpoint = Checkpoint::parse(&note.text).unwrap();
        checkpoint.root[0] ^= 1;
        note.text = checkpoint.text();
        put(s, Column::Checkpoints, &key, note.to_text().into_bytes());
    });
    assert_eq!(checkpoint.check, "checkpoint", "{checkpoint}");
    // Dropping signatures below the quorum is caught too.
    let thinned = tampered(&home, "thinned-checkpoint", |s| {
        let entries = s.scan(Column::Checkpoints, &[], &[], 1).unwrap();
        let (key, value) = entries.into_iter().next().expect("a checkpoint");
        let mut note = SignedNote::parse(&String::from_utf8(value).unwrap()).unwrap();
        note.signatures.truncate(2);
        put(s, Column::Checkpoints, &key, note.to_text().into_bytes());
    });
    assert_eq!(thinned.check, "checkpoint", "{thinned}");
}
