//! The binary form of a transaction batch (`POST /v1/txs` with
//! `Content-Type: application/octet-stream`), for bulk clients and the relay between nodes:
//! borsh's `Vec<Vec<u8>>`, each element a transaction's canonical bytes. Little-endian `u32`
//! count, then per transaction a `u32` length and the bytes. About a third of the JSON
//! form's size (no hex, no field names), and decoded without a JSON parser.

use ledger::limits::TX_BYTES_MAX;
use ledger::tx::Transaction;

use crate::api::TX_BATCH_TXS_MAX;

/// The media type of the binary form.
pub const TX_BATCH_BINARY_TYPE: &str = "application/octet-stream";

/// Why a body is not a binary transaction batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxBatchError {
    #[error("the batch ends inside {0}")]
    Truncated(&'static str),
    #[error("{count} transactions in one batch; at most {TX_BATCH_TXS_MAX}")]
    TooMany { count: u64 },
    #[error("transaction {index} has {bytes} bytes; at most {TX_BYTES_MAX}")]
    TooLarge { index: usize, bytes: u64 },
    #[error("transaction {index} does not decode: {message}")]
    Transaction { index: usize, message: String },
    #[error("{0} bytes follow the last transaction")]
    Trailing(usize),
}

/// Encodes `txs` in the binary form; refuses what a node would refuse to decode (too many
/// transactions, or one too large).
pub fn encode_tx_batch(txs: &[Transaction]) -> Result<Vec<u8>, TxBatchError> {
    if txs.len() > TX_BATCH_TXS_MAX {
        return Err(TxBatchError::TooMany {
            count: txs.len() as u64,
        });
    }
    let encoded: Vec<Vec<u8>> = txs.iter().map(Transaction::to_bytes).collect();
    encode_encoded_batch(&encoded)
}

/// The binary form of transactions given in their canonical bytes (as a node holds those
/// it admitted, to relay): each copied once into the batch, none encoded again. The same
/// refusals as [`encode_tx_batch`]; the bytes are not decoded here.
pub fn encode_encoded_batch<B: AsRef<[u8]>>(encoded: &[B]) -> Result<Vec<u8>, TxBatchError> {
    if encoded.len() > TX_BATCH_TXS_MAX {
        return Err(TxBatchError::TooMany {
            count: encoded.len() as u64,
        });
    }
    let size = 4 + encoded.iter().map(|t| 4 + t.as_ref().len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    // Both fit in a u32: at most TX_BATCH_TXS_MAX transactions of at most TX_BYTES_MAX.
    out.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
    for (index, tx) in encoded.iter().enumerate() {
        let tx = tx.as_ref();
        if tx.len() > TX_BYTES_MAX {
            return Err(TxBatchError::TooLarge {
                index,
                bytes: tx.len() as u64,
            });
        }
        out.extend_from_slice(&(tx.len() as u32).to_le_bytes());
        out.extend_from_slice(tx);
    }
    Ok(out)
}

// The casts above cannot truncate.
const _: () = assert!(TX_BATCH_TXS_MAX <= u32::MAX as usize);
const _: () = assert!(TX_BYTES_MAX <= u32::MAX as usize);

/// Decodes the binary form, checking the count and every length against the limits
/// before anything is allocated for it.
pub fn decode_tx_batch(body: &[u8]) -> Result<Vec<Transaction>, TxBatchError> {
    let mut rest = body;
    let count = u64::from(take_u32(&mut rest, "the count")?);
    if count > TX_BATCH_TXS_MAX as u64 {
        return Err(TxBatchError::TooMany { count });
    }
    let mut txs = Vec::with_capacity(count as usize);
    for index in 0..count as usize {
        let bytes = u64::from(take_u32(&mut rest, "a length")?);
        if bytes > TX_BYTES_MAX as u64 {
            return Err(TxBatchError::TooLarge { index, bytes });
        }
        if (rest.len() as u64) < bytes {
            return Err(TxBatchError::Truncated("a transaction"));
        }
        let (tx, after) = rest.split_at(bytes as usize);
        rest = after;
        let tx = Transaction::from_bytes(tx).map_err(|e| TxBatchError::Transaction {
            index,
            message: e.to_string(),
        })?;
        txs.push(tx);
    }
    if !rest.is_empty() {
        return Err(TxBatchError::Trailing(rest.len()));
    }
    Ok(txs)
}

fn take_u32(rest: &mut &[u8], what: &'static str) -> Result<u32, TxBatchError> {
    let Some((head, tail)) = rest.split_first_chunk::<4>() else {
        return Err(TxBatchError::Truncated(what));
    };
    *rest = tail;
    Ok(u32::from_le_bytes(*head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::tx::{Action, TxBody};
    use ledger::types::{Hash32, PublicKey};

    fn tx(nonce: u64) -> Transaction {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let body = TxBody {
            chain_id: "bansos-test".into(),
            signer: PublicKey(key.verifying_key().to_bytes()),
            nonce,
            action: Action::CheckIdentity {
                beneficiary: Hash32([nonce as u8; 32]),
                passed: true,
                evidence_hash: Hash32([1; 32]),
            },
        };
        body.sign(&key)
    }

    #[test]
    fn a_batch_round_trips_and_is_borsh_vec_of_bytes() {
        let txs: Vec<Transaction> = (0..5).map(tx).collect();
        let bytes = encode_tx_batch(&txs).unwrap();
        assert_eq!(decode_tx_batch(&bytes).unwrap(), txs);
        let as_borsh: Vec<Vec<u8>> = borsh::from_slice(&bytes).unwrap();
        assert_eq!(as_borsh[3], txs[3].to_bytes());
        assert_eq!(
            decode_tx_batch(&encode_tx_batch(&[]).unwrap()).unwrap(),
            vec![]
        );
        let too_many = vec![tx(0); TX_BATCH_TXS_MAX + 1];
        assert!(matches!(
            encode_tx_batch(&too_many),
            Err(TxBatchError::TooMany { .. })
        ));
    }

    /// Transactions given as their bytes make the same batch as the transactions, and the
    /// same limits hold.
    #[test]
    fn a_batch_of_encodings_is_the_batch_of_their_transactions() {
        let txs: Vec<Transaction> = (0..5).map(tx).collect();
        let encoded: Vec<Vec<u8>> = txs.iter().map(Transaction::to_bytes).collect();
        let batch = encode_encoded_batch(&encoded).unwrap();
        assert_eq!(batch, encode_tx_batch(&txs).unwrap());
        assert_eq!(decode_tx_batch(&batch).unwrap(), txs);
        let too_many = vec![encoded[0].clone(); TX_BATCH_TXS_MAX + 1];
        assert_eq!(
            encode_encoded_batch(&too_many),
            Err(TxBatchError::TooMany {
                count: TX_BATCH_TXS_MAX as u64 + 1
            })
        );
        let too_large = [encoded[0].clone(), vec![0; TX_BYTES_MAX + 1]];
        assert_eq!(
            encode_encoded_batch(&too_large),
            Err(TxBatchError::TooLarge {
                index: 1,
                bytes: TX_BYTES_MAX as u64 + 1
            })
        );
    }

    #[test]
    fn every_malformed_batch_is_refused_by_name() {
        let good = encode_tx_batch(&[tx(1), tx(2)]).unwrap();
        assert_eq!(
            decode_tx_batch(&[]),
            Err(TxBatchError::Truncated("the count"))
        );
        assert_eq!(
            decode_tx_batch(&good[..good.len() - 1]),
            Err(TxBatchError::Truncated("a transaction"))
        );
        assert_eq!(
            decode_tx_batch(&good[..6]),
            Err(TxBatchError::Truncated("a length"))
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode_tx_batch(&trailing), Err(TxBatchError::Trailing(1)));
        let too_many = (TX_BATCH_TXS_MAX as u32 + 1).to_le_bytes();
        assert!(matches!(
            decode_tx_batch(&too_many),
            Err(TxBatchError::TooMany { count }) if count == TX_BATCH_TXS_MAX as u64 + 1
        ));
        let mut huge = 1u32.to_le_bytes().to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_tx_batch(&huge),
            Err(TxBatchError::TooLarge { index: 0, .. })
        ));
        let mut garbage = 1u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(&3u32.to_le_bytes());
        garbage.extend_from_slice(&[0xff; 3]);
        assert!(matches!(
            decode_tx_batch(&garbage),
            Err(TxBatchError::Transaction { index: 0, .. })
        ));
    }
}
