//! The node's Prometheus metrics (served at `/metrics`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Every metric the node exports, registered once at start-up.
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub round: Gauge,
    pub peers: Gauge,
    pub mempool_txs: Gauge,
    pub mempool_bytes: Gauge,
    pub blocks_committed: Counter,
    pub txs_committed: Counter,
    pub txs_admitted: Counter,
    pub txs_refused: Counter,
    /// Transactions not relayed to a peer because its queue (or the relay's) was full.
    pub relay_dropped: Counter,
    /// Transactions not relayed to a peer because it proposes none of the next blocks.
    pub relay_not_due: Counter,
    /// Transactions relayed by a peer node whose signature failed here.
    pub relay_bad_signatures: Counter,
    pub block_interval_seconds: Histogram,
    pub commit_seconds: Histogram,
    /// Conflicting signed messages (double votes, double proposals) seen from validators.
    pub equivocations: Counter,
    /// Consensus signatures not checked again: seen to pass before (a vote, then the same
    /// vote in a certificate).
    pub consensus_signatures_reused: Counter,
    /// What the ledger store holds in memory.
    pub store: StoreGauges,
}

/// The ledger store's memory, sampled by the node (RocksDB's own accounting).
#[derive(Clone, Default)]
pub struct StoreGauges {
    pub block_cache_bytes: Gauge,
    pub memtable_bytes: Gauge,
    pub table_reader_bytes: Gauge,
    pub state_cache_bytes: Gauge,
}

impl StoreGauges {
    fn register(registry: &mut Registry) -> StoreGauges {
        let gauges = StoreGauges::default();
        registry.register(
            "store_block_cache_bytes",
            "Bytes of uncompressed blocks in the store's cache (bounded)",
            gauges.block_cache_bytes.clone(),
        );
        registry.register(
            "store_memtable_bytes",
            "Bytes of writes the store holds in memory before flushing (bounded)",
            gauges.memtable_bytes.clone(),
        );
        registry.register(
            "store_table_reader_bytes",
            "Bytes of index and filter blocks of the store's open table files",
            gauges.table_reader_bytes.clone(),
        );
        registry.register(
            "store_state_cache_bytes",
            "Bytes of recent state reads the store caches (bounded)",
            gauges.state_cache_bytes.clone(),
        );
        gauges
    }
}

impl Metrics {
    /// Registers the metrics under the `bansos_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("bansos");
        let r = &mut registry;
        let height = registered(r, "height", "Height of the last committed block");
        let round = registered(
            r,
            "consensus_round",
            "Consensus round at the current height",
        );
        let peers = registered(r, "peers", "Connected libp2p peers");
        let mempool_txs = registered(r, "mempool_txs", "Transactions waiting in the mempool");
        let mempool_bytes = registered(
            r,
            "mempool_bytes",
            "Bytes of transactions waiting in the mempool",
        );
        let blocks_committed = registered(r, "blocks_committed", "Blocks committed since start");
        let txs_committed = registered(r, "txs_committed", "Transactions committed since start");
        let txs_admitted = registered(r, "txs_admitted", "Transactions admitted to the mempool");
        let txs_refused = registered(r, "txs_refused", "Transactions refused at submission");
        let relay_dropped = registered(
            r,
            "relay_dropped",
            "Transactions not relayed to a peer (counted once per peer) because a relay queue was full",
        );
        let relay_not_due = registered(
            r,
            "relay_not_due",
            "Transactions not relayed to a peer (counted once per peer) because it proposes none of the next blocks",
        );
        let relay_bad_signatures = registered(
            r,
            "relay_bad_signatures",
            "Transactions relayed by a peer node whose signature failed here (that peer's relays are checked on arrival from then on)",
        );
        let block_interval_seconds =
            Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]);
        r.register(
            "block_interval_seconds",
            "Time between consecutive commits seen by this node",
            block_interval_seconds.clone(),
        );
        let commit_seconds = Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]);
        r.register(
            "commit_seconds",
            "Time to write a decided block and its certificate",
            commit_seconds.clone(),
        );
        let equivocations = registered(
            r,
            "equivocations",
            "Conflicting votes or proposals signed by one validator, as consensus evidence",
        );
        let consensus_signatures_reused = registered(
            r,
            "consensus_signatures_reused",
            "Consensus signatures not checked again because they passed before (a vote, then the same vote in a certificate)",
        );
        let store = StoreGauges::register(r);
        Metrics {
            store,
            registry,
            height,
            round,
            peers,
            mempool_txs,
            mempool_bytes,
            blocks_committed,
            txs_committed,
            txs_admitted,
            txs_refused,
            relay_dropped,
            relay_not_due,
            relay_bad_signatures,
            block_interval_seconds,
            commit_seconds,
            equivocations,
            consensus_signatures_reused,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A new gauge or counter, registered in `registry` under `name` with `help`.
fn registered<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: Default + Clone + prometheus_client::registry::Metric,
{
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}
