//! A typed client for a node's HTTP API: the request and response bodies are `proto::api`'s
//! types, the same ones the server serialises, and every failure is a [`ClientError`] that
//! says what was asked and what went wrong (the node's error code included).

use std::time::Duration;

use futures::StreamExt;
use ledger::tx::Transaction;
use ledger::types::PublicKey;
use proto::api::{
    BatchJson, BlockJson, ErrorBody, KeyJson, StatusJson, SubmittedJson, TxState, TxStatusJson,
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

/// A node's API.
#[derive(Clone, Debug)]
pub struct NodeClient {
    base: String,
    http: reqwest::Client,
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
        })
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

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let what = format!("GET {url}");
        let (status, bytes) = self.send(&what, self.http.get(&url)).await?;
        Self::decode(&what, status, &bytes)
    }

    /// `GET path` with the status and whatever JSON came back: for callers that check
    /// error answers themselves.
    pub async fn get_raw(&self, path: &str) -> Result<RawResponse, ClientError> {
        let url = format!("{}{path}", self.base);
        let (status, bytes) = self
            .send(&format!("GET {url}"), self.http.get(&url))
            .await?;
        Ok(RawResponse {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        })
    }

    /// `POST path` with `body` as JSON bytes, returning the status and JSON answer.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<RawResponse, ClientError> {
        let url = format!("{}{path}", self.base);
        let request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let (status, bytes) = self.send(&format!("POST {url}"), request).await?;
        Ok(RawResponse {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        })
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> Result<StatusJson, ClientError> {
        self.get("/v1/status").await
    }

    /// `GET /v1/keys/{key}`.
    pub async fn key(&self, key: &PublicKey) -> Result<KeyJson, ClientError> {
        self.get(&format!("/v1/keys/{key}")).await
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
        let what = format!("GET {url}");
        let (status, bytes) = self.send(&what, self.http.get(&url)).await?;
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
        let (status, bytes) = self.send(what, self.http.post(&url).json(tx)).await?;
        Self::decode(what, status, &bytes)
    }

    /// `POST /v1/txs`.
    pub async fn submit_batch(&self, txs: &[Transaction]) -> Result<BatchJson, ClientError> {
        let url = format!("{}/v1/txs", self.base);
        let what = "submitting transactions";
        let (status, bytes) = self.send(what, self.http.post(&url).json(txs)).await?;
        Self::decode(what, status, &bytes)
    }

    /// `GET /metrics` (Prometheus text).
    /// The signed checkpoint (a C2SP signed note) at log size `size`, or the latest;
    /// `None` when the node has none signed by a quorum. Not verified here: a verifier
    /// checks it with `ledger::note::verify_checkpoint` and the genesis keys.
    pub async fn checkpoint(&self, size: Option<u64>) -> Result<Option<String>, ClientError> {
        let query = size.map_or(String::new(), |s| format!("?size={s}"));
        let url = format!("{}/v1/checkpoint{query}", self.base);
        let what = format!("GET {url}");
        let (status, bytes) = self.send(&what, self.http.get(&url)).await?;
        match status {
            404 => Ok(None),
            200..=299 => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            _ => Err(ClientError::Http { what, status }),
        }
    }

    pub async fn metrics(&self) -> Result<String, ClientError> {
        let url = format!("{}/metrics", self.base);
        let what = format!("GET {url}");
        let (status, bytes) = self.send(&what, self.http.get(&url)).await?;
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
