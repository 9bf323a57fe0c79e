//! A node's chain as the audit reads it over HTTP (`bansos audit verify --node URL`): full
//! blocks with their certificates, asked for as a consortium member (every request signed
//! with the auditor's key), fetched ahead a few at a time.
//!
//! Nothing the node says is trusted: the blocks are rebuilt from their JSON and
//! `audit::verify_served` recomputes every hash and root from genesis.

use std::collections::BTreeMap;

use audit::{ChainSource, Failure};
use futures::StreamExt;
use ledger::Block;

use crate::http::{runtime, ClientError, NodeClient};

/// Blocks asked for ahead of the one the audit reads.
pub const PREFETCH_BLOCKS: u64 = 64;
/// Block requests in flight at once.
pub const BLOCK_REQUESTS_IN_FLIGHT_MAX: usize = 8;

/// A block and its certificate bytes, or why the audit cannot use what was served.
type Served = Result<(Block, Vec<u8>), Failure>;

/// A node's served chain, up to the height it had when the audit started.
pub struct RemoteChain {
    client: NodeClient,
    runtime: tokio::runtime::Runtime,
    tip: u64,
    ahead: BTreeMap<u64, Served>,
}

impl RemoteChain {
    /// Connects to the node at `url`, signing every request with `key` (a key listed in
    /// genesis: full blocks are consortium data).
    pub fn connect(url: &str, key: ed25519_dalek::SigningKey) -> Result<RemoteChain, ClientError> {
        let client = NodeClient::new(url)?.signed_by(key);
        let runtime = runtime().map_err(|e| ClientError::Decode {
            what: "starting the HTTP runtime".into(),
            detail: e.to_string(),
        })?;
        let tip = runtime.block_on(client.status())?.height;
        Ok(RemoteChain {
            client,
            runtime,
            tip,
            ahead: BTreeMap::new(),
        })
    }

    /// The node's latest signed checkpoint (a C2SP note), if it has one. Asked before the
    /// blocks, so the chain the audit reads reaches its size.
    pub fn latest_checkpoint(&self) -> Result<Option<String>, ClientError> {
        self.runtime.block_on(self.client.checkpoint(None))
    }

    /// The height the audit goes up to.
    pub fn tip(&self) -> u64 {
        self.tip
    }

    /// Fetches heights `first..=last`, several at once.
    fn fetch(&mut self, first: u64, last: u64) {
        let client = &self.client;
        let fetched: Vec<(u64, Served)> = self.runtime.block_on(async {
            futures::stream::iter(first..=last)
                .map(|height| async move { (height, fetch_block(client, height).await) })
                .buffer_unordered(BLOCK_REQUESTS_IN_FLIGHT_MAX)
                .collect()
                .await
        });
        self.ahead.extend(fetched);
    }
}

/// One served block and its certificate, rebuilt from JSON.
async fn fetch_block(client: &NodeClient, height: u64) -> Served {
    let fail = |check: &'static str, detail: String| Failure {
        height: Some(height),
        check,
        detail,
    };
    let served = client
        .block(height, false)
        .await
        .map_err(|e| fail("fetch", e.to_string()))?
        .ok_or_else(|| fail("block", "the node has no block here".into()))?;
    let block = served
        .to_block()
        .ok_or_else(|| fail("block", "a header field is malformed".into()))?;
    if served.header.hash != block.header.hash().to_string() {
        return Err(fail(
            "block",
            "the hash served is not the header's hash".into(),
        ));
    }
    let certificate = served
        .certificate
        .as_ref()
        .and_then(|c| c.to_stored())
        .ok_or_else(|| fail("certificate", "missing or malformed".into()))?;
    Ok((block, certificate.to_bytes()))
}

impl ChainSource for RemoteChain {
    fn tip_height(&mut self) -> Result<u64, Failure> {
        Ok(self.tip)
    }

    fn block(&mut self, height: u64) -> Result<(Block, Vec<u8>), Failure> {
        if !self.ahead.contains_key(&height) {
            let last = (height + PREFETCH_BLOCKS - 1).min(self.tip).max(height);
            self.fetch(height, last);
        }
        self.ahead.remove(&height).unwrap_or_else(|| {
            Err(Failure {
                height: Some(height),
                check: "fetch",
                detail: "not fetched".into(),
            })
        })
    }
}
