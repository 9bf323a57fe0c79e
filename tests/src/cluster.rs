//! A local network of real `bansos node` processes for the cluster tests: real libp2p on
//! loopback (each node on its own 127.0.0.x address), real RocksDB, real HTTP. Nodes can be
//! killed with SIGKILL and restarted. Each node logs to `DIR/nodes/NAME/node.log`; on a
//! failed wait the tail of every log is printed.
//!
//! The `bansos` binary is the one cargo built next to the test executable
//! (`target/<profile>/bansos`, built by `cargo test --workspace`), or `$BANSOS_BIN`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use genesis::testnet::NetworkFile;
use ledger::tx::Transaction;
use serde_json::Value;

/// Clusters run one at a time: on two cores, parallel networks would only make each other's
/// timeouts fire.
static CLUSTER_LOCK: Mutex<()> = Mutex::new(());

/// The seed of a test: `$BANSOS_TEST_SEED`, or the time. Printed so that a failure can be
/// replayed.
pub fn test_seed(test: &str) -> u64 {
    let seed = std::env::var("BANSOS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: seed {seed} (replay with BANSOS_TEST_SEED={seed})");
    seed
}

/// The `bansos` binary under test.
pub fn bansos_binary() -> PathBuf {
    if let Ok(path) = std::env::var("BANSOS_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/bansos
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let binary = dir.join("bansos");
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (scripts/test.sh), which builds it, or set BANSOS_BIN",
        binary.display()
    );
    binary
}

/// One node process.
pub struct NodeProcess {
    pub name: String,
    pub home: PathBuf,
    pub http: String,
    child: Option<Child>,
}

/// A running local network.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub network: NetworkFile,
    pub nodes: Vec<NodeProcess>,
    binary: PathBuf,
    http: reqwest::blocking::Client,
    _lock: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Writes a network with `validators` validators and `observers` observers (HTTP ports
    /// from `http_port`, p2p ports from `p2p_port`) and starts every node.
    pub fn start(validators: usize, observers: usize, http_port: u16, p2p_port: u16) -> Cluster {
        let mut cluster = Cluster::create(validators, observers, http_port, p2p_port);
        for i in 0..cluster.nodes.len() {
            cluster.start_node(i);
        }
        cluster
    }

    /// Writes a network like [`Cluster::start`] without starting any node, so that a test
    /// can change a node's configuration first.
    pub fn create(validators: usize, observers: usize, http_port: u16, p2p_port: u16) -> Cluster {
        let lock = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let binary = bansos_binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().join("net");
        let status = Command::new(&binary)
            .args([
                "testnet",
                "--validators",
                &validators.to_string(),
                "--observers",
                &observers.to_string(),
            ])
            .args([
                "--http-port",
                &http_port.to_string(),
                "--p2p-port",
                &p2p_port.to_string(),
            ])
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .expect("bansos testnet runs");
        assert!(status.success(), "bansos testnet failed");
        let network: NetworkFile =
            genesis::testnet::read_json(&out.join("network.json")).expect("network.json");
        let nodes = network
            .nodes
            .iter()
            .map(|n| NodeProcess {
                name: n.name.clone(),
                home: out.join(&n.home),
                http: n.http.clone(),
                child: None,
            })
            .collect();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Cluster {
            dir,
            network,
            nodes,
            binary,
            http,
            _lock: lock,
        }
    }

    /// POSTs `body` to node `i`; returns the status code and the JSON answer.
    pub fn post(&self, i: usize, path: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.nodes[i].http))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    /// The network directory (genesis.json, keys/, nodes/).
    pub fn net_dir(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    /// Starts node `i` (again).
    pub fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} is already running", node.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.home.join("node.log"))
            .expect("node log");
        let child = Command::new(&self.binary)
            .arg("node")
            .arg("--home")
            .arg(&node.home)
            .args(["--log", "info"])
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("bansos node starts");
        node.child = Some(child);
    }

    /// Kills node `i` with SIGKILL (no shutdown code runs) and reaps it.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether node `i`'s process has exited, with its status.
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        self.nodes[i]
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// GET a JSON document from node `i`, or `None` if it does not answer.
    pub fn get(&self, i: usize, path: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.nodes[i].http))
            .send()
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().ok()
    }

    /// Node `i`'s committed height, if it answers.
    pub fn height(&self, i: usize) -> Option<u64> {
        self.get(i, "/v1/status")?.get("height")?.as_u64()
    }

    /// The hash of node `i`'s block at `height`.
    pub fn block_hash(&self, i: usize, height: u64) -> Option<String> {
        let block = self.get(i, &format!("/v1/blocks/{height}?txs=hashes"))?;
        Some(block["header"]["hash"].as_str()?.to_owned())
    }

    /// Submits transactions to node `i` in one batch; panics on any refusal.
    pub fn submit(&self, i: usize, txs: &[Transaction]) -> Vec<String> {
        let response: Value = self
            .http
            .post(format!("{}/v1/txs", self.nodes[i].http))
            .json(txs)
            .send()
            .expect("submission request")
            .json()
            .expect("submission response");
        response["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| {
                assert!(
                    r["error"].is_null(),
                    "{} refused a transaction: {r}",
                    self.nodes[i].name
                );
                r["hash"].as_str().expect("hash").to_owned()
            })
            .collect()
    }

    /// The status of a transaction at node `i` (`pending`, `committed`, …).
    pub fn tx_status(&self, i: usize, hash: &str) -> Option<Value> {
        self.get(i, &format!("/v1/tx/{hash}"))
    }

    /// Waits until `condition` holds, or panics after `timeout` naming `what` and printing
    /// the tail of every node's log.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&Cluster) -> bool,
    ) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if condition(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.print_logs();
        panic!("timed out after {timeout:?} waiting for: {what}");
    }

    /// Waits until every transaction is committed as seen by node `i`.
    pub fn wait_committed(&self, i: usize, hashes: &[String], timeout: Duration) {
        self.wait_for("transactions to commit", timeout, |c| {
            hashes.iter().all(|h| {
                c.tx_status(i, h)
                    .map(|s| {
                        assert_ne!(s["status"], "rejected", "transaction refused: {s}");
                        s["status"] == "committed"
                    })
                    .unwrap_or(false)
            })
        });
    }

    /// Asserts that every listed node that has a block at a height has the same one, for
    /// every height up to `through`: no fork.
    pub fn assert_same_chain(&self, nodes: &[usize], through: u64) {
        for height in 1..=through {
            let hashes: Vec<(usize, String)> = nodes
                .iter()
                .filter_map(|&i| self.block_hash(i, height).map(|h| (i, h)))
                .collect();
            if let Some((_, first)) = hashes.first() {
                for (i, hash) in &hashes {
                    assert_eq!(
                        hash, first,
                        "fork at height {height}: {} has {hash}, another node {first}",
                        self.nodes[*i].name
                    );
                }
            }
        }
    }

    /// Prints the last lines of every node's log.
    pub fn print_logs(&self) {
        for node in &self.nodes {
            let text = std::fs::read_to_string(node.home.join("node.log")).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("----- {} (last 30 lines) -----", node.name);
            for line in &lines[lines.len().saturating_sub(30)..] {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
    }
}
