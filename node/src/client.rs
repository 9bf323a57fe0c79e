//! An HTTP client for a node's API, used by `bansos tx`, `bansos demo load` and
//! `bansos load`.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use ledger::tx::Transaction;
use ledger::types::PublicKey;
use serde::de::DeserializeOwned;

use crate::api::{
    BatchJson, BlockJson, ErrorBody, KeyJson, StatusJson, SubmittedJson, TxStatusJson,
};

/// How long one API request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A node's API.
#[derive(Clone)]
pub struct NodeClient {
    base: String,
    http: reqwest::Client,
}

impl NodeClient {
    /// A client for the node at `base` (like `http://127.0.0.1:8701`).
    pub fn new(base: &str) -> anyhow::Result<NodeClient> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(NodeClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn read<T: DeserializeOwned>(
        &self,
        what: &str,
        response: reqwest::Response,
    ) -> anyhow::Result<T> {
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{what}: reading the response"))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("{what}: unexpected response"));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(anyhow!(
                "{what}: {} ({}): {}",
                status.as_u16(),
                body.error.code,
                body.error.message
            )),
            Err(_) => Err(anyhow!("{what}: HTTP {}", status.as_u16())),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        self.read(&format!("GET {url}"), response).await
    }

    /// `GET /v1/status`.
    pub async fn status(&self) -> anyhow::Result<StatusJson> {
        self.get("/v1/status").await
    }

    /// `GET /v1/keys/{key}`.
    pub async fn key(&self, key: &PublicKey) -> anyhow::Result<KeyJson> {
        self.get(&format!("/v1/keys/{key}")).await
    }

    /// `GET /v1/tx/{hash}`.
    pub async fn tx_status(&self, hash: &str) -> anyhow::Result<TxStatusJson> {
        self.get(&format!("/v1/tx/{hash}")).await
    }

    /// `GET /v1/blocks/{height}?txs=hashes`, or `None` if the chain is not there yet.
    pub async fn block_hashes(&self, height: u64) -> anyhow::Result<Option<BlockJson>> {
        let url = format!("{}/v1/blocks/{height}?txs=hashes", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.read(&format!("GET {url}"), response).await.map(Some)
    }

    /// `POST /v1/tx`.
    pub async fn submit(&self, tx: &Transaction) -> anyhow::Result<SubmittedJson> {
        let url = format!("{}/v1/tx", self.base);
        let response = self
            .http
            .post(&url)
            .json(tx)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        self.read("submitting the transaction", response).await
    }

    /// `POST /v1/txs`.
    pub async fn submit_batch(&self, txs: &[Transaction]) -> anyhow::Result<BatchJson> {
        let url = format!("{}/v1/txs", self.base);
        let response = self
            .http
            .post(&url)
            .json(txs)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        self.read("submitting transactions", response).await
    }
}

/// A single-threaded runtime for client commands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Waits until every hash is committed (or one is refused), polling with bounded
/// concurrency. Returns the heights, in order.
pub async fn wait_committed(
    client: &NodeClient,
    hashes: &[String],
    timeout: Duration,
) -> anyhow::Result<Vec<u64>> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut heights = vec![0u64; hashes.len()];
    let mut remaining: Vec<usize> = (0..hashes.len()).collect();
    while !remaining.is_empty() {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "{} of {} transactions not committed after {timeout:?} (first: {})",
                remaining.len(),
                hashes.len(),
                hashes[remaining[0]]
            );
        }
        let results: Vec<(usize, anyhow::Result<TxStatusJson>)> =
            futures::stream::iter(remaining.iter().copied())
                .map(|i| async move { (i, client.tx_status(&hashes[i]).await) })
                .buffer_unordered(32)
                .collect()
                .await;
        let mut still = Vec::new();
        for (i, result) in results {
            let status = result?;
            match status.status.as_str() {
                "committed" => heights[i] = status.height.unwrap_or(0),
                "rejected" => {
                    let error = status
                        .error
                        .map(|e| format!("{}: {}", e.code, e.message))
                        .unwrap_or_default();
                    bail!("transaction {} was refused: {error}", hashes[i]);
                }
                _ => still.push(i),
            }
        }
        still.sort_unstable();
        // Ask about the earliest ones first: later ones cannot commit before them.
        if !still.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        remaining = still;
    }
    Ok(heights)
}
