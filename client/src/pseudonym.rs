//! Pseudonyms from the identity authority's pseudonym service (`proto::pseudonym`): NIKs
//! are blinded here, evaluated there, and unblinded here after the batch proof is checked
//! against the service's public key. The service never sees a NIK; this machine never
//! holds the key.

use anyhow::{bail, Context as _};
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use ledger::types::Pseudonym;
use proto::pseudonym::{blind, unblind, PSEUDONYM_BATCH_MAX, PUBLIC_KEY_BYTES};

use crate::http::NodeClient;

/// A connection to the pseudonym service, with the key it answers under.
pub struct PseudonymClient {
    client: NodeClient,
    version: u32,
    public_key: [u8; PUBLIC_KEY_BYTES],
    rekeyed: bool,
}

impl PseudonymClient {
    /// Connects to the service at `url`, signing requests with `key` (an institution's key
    /// in genesis). The service must answer under the pseudonym key the ledger at `node`
    /// has current (genesis records the first, governance each next one): a service that
    /// changed its key on its own, or an impostor, is refused. With `pinned` (standard
    /// base64) it must also be that key.
    pub async fn connect(
        url: &str,
        key: SigningKey,
        pinned: Option<&str>,
        node: &str,
    ) -> anyhow::Result<PseudonymClient> {
        let client = NodeClient::new(url)?.signed_by(key);
        let served = client
            .pseudonym_key()
            .await
            .with_context(|| format!("asking {url} for the pseudonym service's key"))?;
        let mut recorded = NodeClient::new(node)?
            .pseudonym_keys()
            .await
            .with_context(|| format!("asking {node} for the ledger's pseudonym key"))?
            .keys;
        let rekeyed_since_genesis = recorded.iter().any(|k| k.from_height > 1);
        let recorded = recorded.pop();
        if let Some(recorded) = recorded {
            if (recorded.key_version, &recorded.public_key)
                != (served.key_version, &served.public_key)
            {
                bail!(
                    "the pseudonym service at {url} answers under key version {} ({}), but the ledger's current pseudonym key is version {} ({}); refused",
                    served.key_version,
                    served.public_key,
                    recorded.key_version,
                    recorded.public_key
                );
            }
        }
        if let Some(pinned) = pinned {
            if pinned != served.public_key {
                bail!(
                    "the pseudonym service at {url} answers under key {}, not the pinned {pinned}",
                    served.public_key
                );
            }
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&served.public_key)
            .ok()
            .and_then(|bytes| <[u8; PUBLIC_KEY_BYTES]>::try_from(bytes).ok())
            .with_context(|| format!("{url} served a malformed public key"))?;
        Ok(PseudonymClient {
            client,
            version: served.key_version,
            public_key: decoded,
            rekeyed: rekeyed_since_genesis,
        })
    }

    /// The key version the service answers under.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Whether the ledger's pseudonym key changed since genesis: only then may a person
    /// have a pseudonym other than the one the ledger knows them by.
    pub fn rekeyed(&self) -> bool {
        self.rekeyed
    }

    /// The pseudonyms of `niks`, in order, in batches of [`PSEUDONYM_BATCH_MAX`].
    pub async fn pseudonyms(&self, niks: &[String]) -> anyhow::Result<Vec<Pseudonym>> {
        let mut out = Vec::with_capacity(niks.len());
        for chunk in niks.chunks(PSEUDONYM_BATCH_MAX) {
            let (blinded, request) = blind(&mut rand::rngs::OsRng, self.version, chunk)?;
            let answer = self.client.pseudonym_evaluate(request).await?;
            out.extend(unblind(&blinded, &answer, &self.public_key)?);
        }
        Ok(out)
    }
}

/// The pseudonyms the ledger knows these people by (`POST /v1/beneficiaries/lookup`,
/// signed by `node`'s key): after a re-keying, a person the ledger knew before keeps the
/// pseudonym it first knew them by, which allocation ids and an import's row keys are
/// made from; anyone else keeps the service's.
pub async fn as_the_ledger_knows(
    node: &NodeClient,
    pseudonyms: Vec<Pseudonym>,
) -> anyhow::Result<Vec<Pseudonym>> {
    let mut out = Vec::with_capacity(pseudonyms.len());
    for chunk in pseudonyms.chunks(proto::api::LOOKUP_PSEUDONYMS_MAX) {
        let found = node
            .lookup(chunk)
            .await
            .context("asking the node which beneficiaries these pseudonyms name")?;
        if found.beneficiaries.len() != chunk.len() {
            bail!(
                "the node answered about {} pseudonyms of {}",
                found.beneficiaries.len(),
                chunk.len()
            );
        }
        for (pseudonym, entry) in chunk.iter().zip(found.beneficiaries) {
            out.push(match entry.known_as {
                Some(hex) => Pseudonym::from_hex(&hex)
                    .map_err(|e| anyhow::anyhow!("the node answered {hex:?}: {e}"))?,
                None => *pseudonym,
            });
        }
    }
    Ok(out)
}
