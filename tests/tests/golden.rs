//! Golden hashes pin the canonical encodings: a change to how a transaction, a block header
//! or a genesis is encoded shows up here as a visible format change, never silently.

use ledger::block::BlockHeader;
use ledger::genesis::{Genesis, OrgKind, Organisation, Program, Region, ValidatorSpec};
use ledger::tx::{Action, TxBody};
use ledger::types::{Hash32, OrgId, PeriodCode, ProgramCode, PublicKey, RegionCode, Rupiah};

fn key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn public(seed: u8) -> PublicKey {
    PublicKey(key(seed).verifying_key().to_bytes())
}

#[test]
fn golden_transaction_encoding() {
    let body = TxBody {
        chain_id: "bansos-golden".into(),
        signer: public(1),
        nonce: 7,
        action: Action::Allocate {
            beneficiary: Hash32::digest(b"beneficiary"),
            program: ProgramCode::new("PKH").unwrap(),
            period: PeriodCode::new("2026-T4").unwrap(),
            amount: Rupiah(750_000),
        },
    };
    let tx = body.sign(&key(1));
    tx.verify_signature().unwrap();
    assert_eq!(tx.to_bytes().len(), 180);
    assert_eq!(
        tx.hash().to_hex(),
        "e6da2b09dc4b0bed0571f474c1c265f4255071557adbd45cb41bfb914f8f283a"
    );
}

#[test]
fn golden_block_header_hash() {
    let header = BlockHeader {
        chain_id: "bansos-golden".into(),
        height: 42,
        prev_hash: Hash32::digest(b"prev"),
        time_ms: 1_767_225_600_000,
        proposer: public(2),
        tx_count: 3,
        tx_root: Hash32::digest(b"txs"),
        log_size: 1_000,
        log_root: Hash32::digest(b"log"),
        state_root: Hash32::digest(b"state"),
        totals_root: Hash32::digest(b"totals"),
    };
    assert_eq!(
        header.hash().to_hex(),
        "2533a3d4b0921735c5f83af40b1a11b93edd17d97609bb5d80fd11ddf43785bb"
    );
}

#[test]
fn golden_genesis_hash() {
    let genesis = Genesis {
        chain_id: "bansos-golden".into(),
        log_origin: "bansos.golden/log".into(),
        genesis_time_ms: 1_767_225_600_000,
        organisations: vec![Organisation {
            id: OrgId::new("kemensos").unwrap(),
            kind: OrgKind::Kemensos,
            name: "Kementerian Sosial RI".into(),
            regions: vec![],
            programs: vec![],
            tx_keys: vec![public(3)],
            validator: Some(ValidatorSpec {
                key: public(4),
                power: 1,
                checkpoint_key: ledger::note::NoteKey::ed25519("bansos.golden/log", public(5))
                    .unwrap()
                    .vkey(),
            }),
            witness_key: None,
        }],
        observers: vec![],
        governance: Default::default(),
        pseudonym_service: None,
        programs: vec![Program {
            code: ProgramCode::new("PKH").unwrap(),
            name: "Program Keluarga Harapan".into(),
        }],
        regions: vec![Region {
            code: RegionCode::new("35").unwrap(),
            name: "Jawa Timur".into(),
        }],
    };
    // Changed deliberately when organisations gained `witness_key` (C2SP witnesses), and
    // again when genesis gained its `governance` rule (who approves changes), and its
    // `pseudonym_service` (the service's public key).
    assert_eq!(
        genesis.hash().to_hex(),
        "6ea36d058ce094f578406e44dc0507976fd909ab7b2e7191d599e53c46ecc441"
    );
}

/// `SkipNonce` is the fifteenth action: its tag byte is pinned like the others' order.
#[test]
fn golden_skip_nonce_encoding() {
    assert_eq!(borsh::to_vec(&Action::SkipNonce {}).unwrap(), vec![14]);
    assert_eq!(
        serde_json::to_string(&Action::SkipNonce {}).unwrap(),
        r#"{"type":"skip_nonce"}"#
    );
}

/// The governance actions follow it: `ApproveChange` is tag 16 with the change's id.
#[test]
fn golden_governance_action_encoding() {
    let approve = Action::ApproveChange {
        change: ledger::types::Hash32([7; 32]),
    };
    let mut expected = vec![16];
    expected.extend([7; 32]);
    assert_eq!(borsh::to_vec(&approve).unwrap(), expected);
    let propose = Action::ProposeChange {
        change: ledger::governance::Change::RemoveOrganisation {
            org: OrgId::new("bps").unwrap(),
        },
        activation_height: 9,
    };
    assert_eq!(borsh::to_vec(&propose).unwrap()[..2], [15, 1]);
    assert_eq!(
        serde_json::to_string(&propose).unwrap(),
        r#"{"type":"propose_change","change":{"change":"remove_organisation","org":"bps"},"activation_height":9}"#
    );
}

/// Re-keying links are tag 17: version, links (old, new), complete.
#[test]
fn golden_link_pseudonyms_encoding() {
    let action = Action::LinkPseudonyms {
        key_version: 2,
        links: vec![ledger::pseudonyms::PseudonymLink {
            old: ledger::types::Hash32([1; 32]),
            new: ledger::types::Hash32([2; 32]),
        }],
        complete: true,
    };
    let mut expected = vec![17, 2, 0, 0, 0, 1, 0, 0, 0];
    expected.extend([1; 32]);
    expected.extend([2; 32]);
    expected.push(1);
    assert_eq!(borsh::to_vec(&action).unwrap(), expected);
    let change = ledger::governance::Change::SetPseudonymKey {
        service: ledger::pseudonyms::PseudonymServiceSpec {
            organisation: OrgId::new("dukcapil").unwrap(),
            key_version: 2,
            public_key: ledger::types::Hash32([3; 32]),
        },
    };
    assert_eq!(borsh::to_vec(&change).unwrap()[0], 5);
}
