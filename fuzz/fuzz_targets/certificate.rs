//! Commit-certificate decoding and offline verification (what an auditor runs on data
//! from an untrusted node): never panics; accepted bytes are canonical.
#![no_main]

use ledger::types::Hash32;
use libfuzzer_sys::fuzz_target;
use proto::certificate::{StoredCertificate, ValidatorSet};
use proto::signing::ChainBinding;

fuzz_target!(|data: &[u8]| {
    if let Ok(certificate) = StoredCertificate::from_bytes(data) {
        assert_eq!(
            certificate.to_bytes(),
            data,
            "a certificate decoded from non-canonical bytes"
        );
        let world = bansos_fuzz::world();
        let validators =
            ValidatorSet::from_genesis(&world.ledger.genesis().validators).expect("validator set");
        let chain = ChainBinding::of(&world.net.genesis);
        // Against its own block hash, so that the signature checks are reached.
        let _ = certificate.verify(
            &chain,
            &validators,
            certificate.height,
            &certificate.block_hash,
        );
        let _ = certificate.verify(&chain, &validators, certificate.height, &Hash32::ZERO);
    }
});
