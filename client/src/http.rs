//! A typed client for a node's HTTP API: the request and response bodies are `proto::api`'s
//! types, the same ones the server serialises, and every failure is a [`ClientError`] that
//! says what was asked and what went wrong (the node's error code included).

use std::time::Duration;

use futures::StreamExt;
use ledger::tx::Transaction;
use ledger::types::PublicKey;
use proto::api::{
    BatchJson, BlockJson, ErrorBody, KeyJson, LeafJson, StatusJson, SubmittedJson, TxState,
    TxStatusJson,
};
use serde::de::DeserializeOwned;

/// How long one API request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Status queries in flight at once while waiting for commitment.
pub const STATUS_QUERIES_IN_FLIGHT_MAX: usize = 32;
/// How long to wait between rounds of status queries.
pub const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build an HTTP client: {0}")]
    Build(reqwest::Error),
    #[error("{what}: {source}")]
    Transport {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// The node answered with its JSON error.
    #[error("{what}: {status} ({code}): {message}")]
    Api {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The node answered with an error that is not its JSON error shape.
    #[error("{what}: HTTP {status}")]
    Http { what: String, status: u16 },
    #[error("{what}: unexpected response: {detail}")]
    Decode { what: String, detail: String },
    #[error("{what}: cannot sign the request: {detail}")]
    Sign { what: String, detail: String },
    #[error(
        "{remaining} of {total} transactions not committed after {timeout:?} (first: {first})"
    )]
    NotCommitted {
        remaining: usize,
        total: usize,
        timeout: Duration,
        first: String,
    },
    #[error("transaction {hash} was refused: {code}: {message}")]
    Refused {
        hash: String,
        code: String,
        message: String,
    },
}

impl ClientError {
    /// The node's error code, when the node answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } | ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the node answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A raw answer: status, and the body parsed as JSON (`Null` if it is not JSON).
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

/// A node's API. With a key ([`NodeClient::signed_by`]) every request carries an RFC 9421
/// signature (`auth`), which consortium endpoints require (DESIGN §4).
#[derive(Clone, Debug)]
pub struct NodeClient {
    base: String,
    http: reqwest::Client,
    key: Option<ed25519_dalek::SigningKey>,
}

impl NodeClient {
    /// A client for the node at `base` (like `http://127.0.0.1:8701`).
    pub fn new(base: &str) -> Result<NodeClient, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(ClientError::Build)?;
        Ok(NodeClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
            key: None,
        })
    }

    /// The same client, signing every request with `key` (an institution's or a node's key
    /// listed in genesis, or a signer's own key for its nonces).
    pub fn signed_by(mut self, key: ed25519_dalek::SigningKey) -> NodeClient {
        self.key = Some(key);
        self
    }

    /// A request, signed when this client has a key.
    async fn request(
        &self,
        what: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let mut request = self.http.request(method.clone(), url);
        let (content_type, body) = body.unwrap_or(("", Vec::new()));
        if let Some(key) = &self.key {
            let uri: reqwest::Url = url.parse().map_err(|e| ClientError::Decode {
                what: what.to_owned(),
                detail: format!("not a URL: {e}"),
            })?;
            let uri = uri.as_str().parse().map_err(|e| ClientError::Decode {
                what: what.to_owned(),
                detail: format!("not a URI: {e}"),
            })?;
            let now_s = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let headers = auth::sign_fresh(&method, &uri, &body, key, now_s)
                .await
                .map_err(|e| ClientError::Sign {
                    what: what.to_owned(),
                    detail: e.to_string(),
                })?;
            request = request.headers(headers);
        }
        if !content_type.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        Ok(request)
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let transport = |source| ClientError::Transport {
            what: what.to_owned(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(transport)?;
        Ok((status, bytes.to_vec()))
    }

    fn decode<T: DeserializeOwned>(
        what: &str,
        status: u16,
        bytes: &[u8],
    ) -> Result<T, ClientError> {
        if (200..300).contains(&status) {
            return serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
                what: what.to_owned(),
                detail: e.to_string(),
            });
        }
        Err(match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) => ClientError::Api {
                what: what.to_owned(),
                status,
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => ClientError::Http {
                what: what.to_owned(),
                status,
            },
        })
    }

    /// `GET url`: status and body.
    async fn get_bytes(&self, url: &str) -> Result<(String, u16, Vec<u8>), ClientError> {
        let what = format!("GET {url}");
        let request = self.request(&what, reqwest::Method::GET, url, None).await?;
        let (status, bytes) = self.send(&what, request).await?;
        Ok((what, status, bytes))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let (what, status, bytes) = self.get_bytes(&url).await?;
        Self::decode(&what, status, &bytes)
    }

    /// `POST url` with a JSON body: status and body.
    async fn post_json(
        &self,
        what: &str,
        url: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let body = Some(("application/json", body));
        let request = self.request(what, reqwest::Method::POST, url, body).await?;
        self.send(what, request).await
    }

    /// `GET path` with the status and whatever JSON came back: for callers that check
    /// error answers themselves.
    pub async fn get_raw(&self, path: &str) -> Result<RawResponse, ClientError> {
        let url = format!("{}{path}", self.base);
        let (_, status, bytes) = self.get_bytes(&url).await?;
        Ok(RawResponse {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        })
    }

    /// `POST path` with `body` as JSON bytes, returning the status and JSON answer.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<RawResponse, ClientError> {
        let url = format!("{}{path}", self.base);
        let (status, bytes) = self.post_json(&format!("POST {url}"), &url, body).await?;
        Ok(RawResponse {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        })
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusJson, ClientError> {
        self.get("/v1/status").await
    }

    /// `GET /v1/governance/changes/{id}`.
    pub async fn change(&self, id: &str) -> Result<proto::api::ChangeJson, ClientError> {
        self.get(&format!("/v1/governance/changes/{id}")).await
    }

    /// `GET /v1/validator-sets`.
    pub async fn validator_sets(&self) -> Result<proto::api::ValidatorSetsJson, ClientError> {
        self.get("/v1/validator-sets").await
    }

    /// `GET /v1/keys/{key}`.
    pub async fn key(&self, key: &PublicKey) -> Result<KeyJson, ClientError> {
        self.get(&format!("/v1/keys/{key}")).await
    }

    /// `GET /v1/log/leaf/{index}` (consortium: the client must be signed by a genesis key).
    pub async fn leaf(&self, index: u64) -> Result<LeafJson, ClientError> {
        self.get(&format!("/v1/log/leaf/{index}")).await
    }

    /// `GET /v1/log/proof/{index}` (consortium): a C2SP tlog-proof of the leaf, as text.
    pub async fn tlog_proof(&self, index: u64) -> Result<String, ClientError> {
        let url = format!("{}/v1/log/proof/{index}", self.base);
        let (what, status, bytes) = self.get_bytes(&url).await?;
        if !(200..300).contains(&status) {
            let error = Self::decode::<serde_json::Value>(&what, status, &bytes).err();
            return Err(error.unwrap_or(ClientError::Http { what, status }));
        }
        String::from_utf8(bytes).map_err(|e| ClientError::Decode {
            what,
            detail: e.to_string(),
        })
    }

    /// `GET /v1/tx/{hash}`.
    pub async fn tx_status(&self, hash: &str) -> Result<TxStatusJson, ClientError> {
        self.get(&format!("/v1/tx/{hash}")).await
    }

    /// `GET /v1/blocks/{height}` with full transactions (`hashes_only`: only their hashes),
    /// or `None` if the chain is not there yet.
    pub async fn block(
        &self,
        height: u64,
        hashes_only: bool,
    ) -> Result<Option<BlockJson>, ClientError> {
        let query = if hashes_only { "?txs=hashes" } else { "" };
        let url = format!("{}/v1/blocks/{height}{query}", self.base);
        let (what, status, bytes) = self.get_bytes(&url).await?;
        if status == 404 {
            return Ok(None);
        }
        Self::decode(&what, status, &bytes).map(Some)
    }

    /// `GET /v1/blocks/{height}?txs=hashes`, or `None` if the chain is not there yet.
    pub async fn block_hashes(&self, height: u64) -> Result<Option<BlockJson>, ClientError> {
        self.block(height, true).await
    }

    /// `POST /v1/tx`.
    pub async fn submit(&self, tx: &Transaction) -> Result<SubmittedJson, ClientError> {
        let url = format!("{}/v1/tx", self.base);
        let what = "submitting the transaction";
        let body = serde_json::to_vec(tx).map_err(|e| ClientError::Decode {
            what: what.to_owned(),
            detail: e.to_string(),
        })?;
        let (status, bytes) = self.post_json(what, &url, body).await?;
        Self::decode(what, status, &bytes)
    }

    /// `GET /v1/pseudonym/key`: the pseudonym service's key version and public key.
    pub async fn pseudonym_key(&self) -> Result<proto::api::PseudonymKeyJson, ClientError> {
        self.get("/v1/pseudonym/key").await
    }

    /// `GET /v1/pseudonym/keys`: the pseudonym keys the ledger records (the last current).
    pub async fn pseudonym_keys(&self) -> Result<proto::api::PseudonymKeysJson, ClientError> {
        self.get("/v1/pseudonym/keys").await
    }

    /// `POST /v1/beneficiaries/lookup`, signed (consortium data): which of `pseudonyms`
    /// name a beneficiary, and the pseudonym the ledger knows each by.
    pub async fn lookup(
        &self,
        pseudonyms: &[ledger::types::Pseudonym],
    ) -> Result<proto::api::LookupJson, ClientError> {
        let request = proto::api::LookupRequestJson {
            pseudonyms: pseudonyms.iter().map(|p| p.to_hex()).collect(),
        };
        self.post_as(
            "looking beneficiaries up",
            "/v1/beneficiaries/lookup",
            &request,
        )
        .await
    }

    /// `POST /v1/pseudonym/unlinked`, signed (consortium data): during a re-keying, up to
    /// `limit` beneficiaries not yet linked, after `after`.
    pub async fn unlinked(
        &self,
        after: Option<&ledger::types::Pseudonym>,
        limit: u32,
    ) -> Result<proto::api::UnlinkedJson, ClientError> {
        let request = proto::api::UnlinkedRequestJson {
            after: after.map(|p| p.to_hex()),
            limit,
        };
        let what = "asking for beneficiaries not yet linked";
        self.post_as(what, "/v1/pseudonym/unlinked", &request).await
    }

    /// `POST path` with `request` as JSON, the answer decoded.
    async fn post_as<R: serde::Serialize, T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        request: &R,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Decode {
            what: what.to_owned(),
            detail: e.to_string(),
        })?;
        let (status, bytes) = self.post_json(what, &url, body).await?;
        Self::decode(what, status, &bytes)
    }

    /// `POST /v1/pseudonym/evaluate` (`proto::pseudonym` wire format), signed: the
    /// service's answer bytes.
    pub async fn pseudonym_evaluate(&self, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/v1/pseudonym/evaluate", self.base);
        let what = "asking the pseudonym service";
        let body = Some((proto::pseudonym::PSEUDONYM_BODY_TYPE, body));
        let request = self
            .request(what, reqwest::Method::POST, &url, body)
            .await?;
        let (status, bytes) = self.send(what, request).await?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        Err(Self::decode::<serde_json::Value>(what, status, &bytes)
            .err()
            .unwrap_or(ClientError::Http {
                what: what.to_owned(),
                status,
            }))
    }

    /// `POST /v1/txs`, in the binary form (`proto::txbatch`): a third of the JSON's bytes,
    /// and no JSON for the node to parse.
    pub async fn submit_batch(&self, txs: &[Transaction]) -> Result<BatchJson, ClientError> {
        let url = format!("{}/v1/txs", self.base);
        let what = "submitting transactions";
        let encoded = proto::txbatch::encode_tx_batch(txs).map_err(|e| ClientError::Decode {
            what: what.to_owned(),
            detail: e.to_string(),
        })?;
        let body = Some((proto::txbatch::TX_BATCH_BINARY_TYPE, encoded));
        let request = self
            .request(what, reqwest::Method::POST, &url, body)
            .await?;
        let (status, bytes) = self.send(what, request).await?;
        Self::decode(what, status, &bytes)
    }

    /// The signed checkpoint (a C2SP signed note) at log size `size`, or the latest;
    /// `None` when the node has none signed by a quorum. Not verified here: a verifier
    /// checks it with `ledger::note::verify_checkpoint` and the genesis keys.
    pub async fn checkpoint(&self, size: Option<u64>) -> Result<Option<String>, ClientError> {
        let query = size.map_or(String::new(), |s| format!("?size={s}"));
        let url = format!("{}/v1/checkpoint{query}", self.base);
        let (what, status, bytes) = self.get_bytes(&url).await?;
        match status {
            404 => Ok(None),
            200..=299 => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            _ => Err(ClientError::Http { what, status }),
        }
    }

    /// `GET /metrics` (Prometheus text).
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let url = format!("{}/metrics", self.base);
        let (what, status, bytes) = self.get_bytes(&url).await?;
        if !(200..300).contains(&status) {
            return Err(ClientError::Http { what, status });
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A small multi-threaded runtime for client commands and blocking callers.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Waits until every hash is committed (or one is refused), polling with bounded
/// concurrency. Returns the heights, in order.
pub async fn wait_committed(
    client: &NodeClient,
    hashes: &[String],
    timeout: Duration,
) -> Result<Vec<u64>, ClientError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut heights = vec![0u64; hashes.len()];
    let mut remaining: Vec<usize> = (0..hashes.len()).collect();
    while let Some(&first) = remaining.first() {
        if tokio::time::Instant::now() > deadline {
            return Err(ClientError::NotCommitted {
                remaining: remaining.len(),
                total: hashes.len(),
                timeout,
                first: hashes[first].clone(),
            });
        }
        let results: Vec<(usize, Result<TxStatusJson, ClientError>)> =
            futures::stream::iter(remaining.iter().copied())
                .map(|i| async move { (i, client.tx_status(&hashes[i]).await) })
                .buffer_unordered(STATUS_QUERIES_IN_FLIGHT_MAX)
                .collect()
                .await;
        let mut still = Vec::new();
        for (i, result) in results {
            let status = result?;
            match status.status {
                TxState::Committed => heights[i] = status.height.unwrap_or(0),
                TxState::Rejected => {
                    let (code, message) = status
                        .error
                        .map(|e| (e.code, e.message))
                        .unwrap_or_default();
                    return Err(ClientError::Refused {
                        hash: hashes[i].clone(),
                        code,
                        message,
                    });
                }
                TxState::Pending | TxState::Unknown => still.push(i),
            }
        }
        // Ask about the earliest ones first: later ones cannot commit before them.
        still.sort_unstable();
        if !still.is_empty() {
            tokio::time::sleep(STATUS_POLL_INTERVAL).await;
        }
        remaining = still;
    }
    Ok(heights)
}
