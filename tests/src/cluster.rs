//! A local network of real `bansos node` processes for the cluster tests (the slow tier):
//! real libp2p on loopback (each node on its own 127.0.0.x address), real RocksDB, real
//! HTTP, driven through the typed client crate. Nodes can be killed with SIGKILL and
//! restarted. Each node logs to `DIR/nodes/NAME/node.log`; on a failed wait the tail of
//! every log is printed.
//!
//! Each cluster gets its own free ports (no fixed ranges), so clusters can run side by
//! side; how many at once is `BANSOS_CLUSTERS_IN_PARALLEL` (default 1: on two cores,
//! parallel networks would only make each other's timeouts fire).
//!
//! The `bansos` binary is the one cargo built next to the test executable
//! (`target/<profile>/bansos`, built by `cargo test --workspace`), or `$BANSOS_BIN`.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use client::http::RawResponse;
use client::NodeClient;
use genesis::testnet::NetworkFile;
use ledger::tx::Transaction;
use proto::api::{BlockJson, StatusJson, TxState, TxStatusJson};

/// Running clusters, bounded by [`clusters_in_parallel`].
static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

fn clusters_in_parallel() -> usize {
    std::env::var("BANSOS_CLUSTERS_IN_PARALLEL")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// A slot among the running clusters; freed on drop.
struct ClusterSlot;

impl ClusterSlot {
    fn take() -> ClusterSlot {
        let (lock, freed) = &RUNNING;
        let mut running = lock.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= clusters_in_parallel() {
            running = freed.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        ClusterSlot
    }
}

impl Drop for ClusterSlot {
    fn drop(&mut self) {
        let (lock, freed) = &RUNNING;
        let mut running = lock.lock().unwrap_or_else(|p| p.into_inner());
        *running -= 1;
        freed.notify_one();
    }
}

/// The next port to try; starts at a place that depends on the process, so that test
/// binaries running at once start apart.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);
const PORTS_FIRST: u16 = 20_000;
const PORTS_SPAN: u16 = 30_000;

fn port_free(ip: Ipv4Addr, port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(ip, port)).is_ok()
}

/// `count` consecutive ports, free for HTTP on 127.0.0.1 and for p2p on node i's own
/// address 127.0.0.(2+i) (see `bansos testnet`). Returns the first.
pub fn free_ports(count: u16) -> u16 {
    let _ = NEXT_PORT.compare_exchange(
        0,
        PORTS_FIRST + (std::process::id() % u32::from(PORTS_SPAN / 2)) as u16,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..1_000 {
        let mut base = NEXT_PORT.fetch_add(count, Ordering::SeqCst);
        if !(PORTS_FIRST..=PORTS_FIRST + PORTS_SPAN).contains(&base) {
            NEXT_PORT.store(PORTS_FIRST + count, Ordering::SeqCst);
            base = PORTS_FIRST;
        }
        let all_free = (0..count).all(|i| {
            port_free(Ipv4Addr::LOCALHOST, base + i)
                && port_free(Ipv4Addr::new(127, 0, 0, 2 + i as u8), base + i)
        });
        if all_free {
            return base;
        }
    }
    panic!("no block of {count} free ports found");
}

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
    workspace_binary("bansos")
}

/// Runs `bansos ARGS...`: whether it succeeded, and its standard output and error together.
pub fn bansos(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let output = Command::new(bansos_binary())
        .args(args)
        .output()
        .expect("bansos runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `bansos ARGS...` that must succeed; returns its standard output and error together.
pub fn bansos_ok(args: &[&std::ffi::OsStr]) -> String {
    let (ok, text) = bansos(args);
    assert!(ok, "bansos {args:?} failed:\n{text}");
    text
}

/// The `bansos-byzantine` binary (a validator with the test-only attacks), built by
/// `cargo test --workspace` next to `bansos`.
pub fn byzantine_binary() -> PathBuf {
    workspace_binary("bansos-byzantine")
}

fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let binary = dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (scripts/test.sh), which builds it",
        binary.display()
    );
    binary
}

/// One node process.
pub struct NodeProcess {
    pub name: String,
    pub home: PathBuf,
    pub http: String,
    pub client: NodeClient,
    child: Option<Child>,
}

/// A running local network.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub network: NetworkFile,
    pub nodes: Vec<NodeProcess>,
    binary: PathBuf,
    runtime: tokio::runtime::Runtime,
    _slot: ClusterSlot,
}

/// Where Debian's golang-golang-x-mod-dev puts Go's x/mod sources (GOPATH layout).
pub const GO_DEBIAN_PATH: &str = "/usr/share/gocode";

/// How long a test waits for one HTTP answer before it counts the node as not answering.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node may take to exit after SIGTERM: its runtimes wait up to
/// `node::run::SHUTDOWN_WAIT` (10 s) each for their tasks, in a debug build.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl Cluster {
    /// Writes a network with `validators` validators and `observers` observers on free
    /// ports and starts every node.
    pub fn start(validators: usize, observers: usize) -> Cluster {
        let mut cluster = Cluster::create(validators, observers);
        for i in 0..cluster.nodes.len() {
            cluster.start_node(i);
        }
        cluster
    }

    /// Writes a network like [`Cluster::start`] without starting any node, so that a test
    /// can change a node's configuration first.
    pub fn create(validators: usize, observers: usize) -> Cluster {
        let slot = ClusterSlot::take();
        let binary = bansos_binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().join("net");
        let count = u16::try_from(validators + observers).expect("a small network");
        // Two blocks: one for HTTP, one for p2p (each node's p2p has its own address).
        let http_port = free_ports(count);
        let p2p_port = free_ports(count);
        let status = Command::new(&binary)
            .args(["testnet", "--validators", &validators.to_string()])
            .args(["--observers", &observers.to_string()])
            .args(["--http-port", &http_port.to_string()])
            .args(["--p2p-port", &p2p_port.to_string()])
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
                client: NodeClient::new(&n.http).expect("HTTP client"),
                child: None,
            })
            .collect();
        let runtime = client::http::runtime().expect("async runtime");
        Cluster {
            dir,
            network,
            nodes,
            binary,
            runtime,
            _slot: slot,
        }
    }

    /// Appends `toml` (tuning sections) to node `i`'s config.toml, before it starts.
    pub fn append_config(&self, i: usize, toml: &str) {
        let path = self.nodes[i].home.join("config.toml");
        let mut text = std::fs::read_to_string(&path).expect("config.toml");
        text.push('\n');
        text.push_str(toml);
        std::fs::write(&path, text).expect("config.toml");
    }

    /// Runs a client call to completion, giving up after [`REQUEST_TIMEOUT`].
    pub fn call<T, E>(&self, call: impl std::future::Future<Output = Result<T, E>>) -> Option<T> {
        self.runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, call).await })
            .ok()?
            .ok()
    }

    /// Runs a client call that must fail; returns its error as text.
    pub fn call_error<T: std::fmt::Debug, E: std::fmt::Display>(
        &self,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> String {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, call).await })
        {
            Ok(Ok(value)) => panic!("the call succeeded: {value:?}"),
            Ok(Err(error)) => error.to_string(),
            Err(_) => panic!("the node did not answer"),
        }
    }

    /// POSTs `body` to node `i`; returns the status code and the JSON answer.
    pub fn post(&self, i: usize, path: &str, body: Vec<u8>) -> RawResponse {
        self.call(self.nodes[i].client.post_raw(path, body))
            .unwrap_or_else(|| panic!("{} did not answer POST {path}", self.nodes[i].name))
    }

    /// GETs `path` from node `i`: the status code and the JSON answer, or `None` if it
    /// does not answer.
    pub fn get_raw(&self, i: usize, path: &str) -> Option<RawResponse> {
        self.call(self.nodes[i].client.get_raw(path))
    }

    /// The network directory (genesis.json, keys/, nodes/).
    pub fn net_dir(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    /// Starts node `i` (again).
    pub fn start_node(&mut self, i: usize) {
        let mut command = Command::new(&self.binary);
        command.arg("node");
        self.spawn_node(i, command);
    }

    /// Starts node `i` as a byzantine validator (`bansos-byzantine`) with `attacks`
    /// (comma-separated names) and `seed`.
    /// Starts validator `i` as `bansos-byzantine` with `attacks` (comma-separated). With
    /// `misuse_tx_key`, it also gets its institution's transaction key to misuse.
    pub fn start_byzantine_node(
        &mut self,
        i: usize,
        attacks: &str,
        seed: u64,
        misuse_tx_key: bool,
    ) {
        let mut command = Command::new(byzantine_binary());
        command
            .args(["--attacks", attacks])
            .args(["--seed", &seed.to_string()]);
        if misuse_tx_key {
            // A validator node is named after its institution.
            let key = self
                .net_dir()
                .join("keys")
                .join(format!("{}.key", self.nodes[i].name));
            command.arg("--tx-key").arg(key);
        }
        self.spawn_node(i, command);
    }

    fn spawn_node(&mut self, i: usize, mut command: Command) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} is already running", node.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.home.join("node.log"))
            .expect("node log");
        let child = command
            .arg("--home")
            .arg(&node.home)
            .args(["--log", "info"])
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("node process starts");
        node.child = Some(child);
    }

    /// Node `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].home.join("node.log")).unwrap_or_default()
    }

    /// Node `i`'s resident memory in KiB (Linux `/proc`), if it is running.
    pub fn rss_kib(&self, i: usize) -> Option<u64> {
        let pid = self.nodes[i].child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Kills node `i` with SIGKILL (no shutdown code runs) and reaps it.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `i` as an operator does (SIGTERM), waits for it to exit (at most
    /// [`STOP_TIMEOUT`]; then it is killed and the test fails) and returns its exit status.
    pub fn stop_node(&mut self, i: usize) -> std::process::ExitStatus {
        let name = self.nodes[i].name.clone();
        let mut child = self.nodes[i].child.take().expect("the node is running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM to {name}");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for the node") {
                return status;
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} did not exit within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether node `i`'s process has exited, with its status.
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        self.nodes[i]
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Node `i`'s status, if it answers.
    pub fn status(&self, i: usize) -> Option<StatusJson> {
        self.call(self.nodes[i].client.status())
    }

    /// Node `i`'s committed height, if it answers.
    pub fn height(&self, i: usize) -> Option<u64> {
        self.status(i).map(|s| s.height)
    }

    /// Node `i`'s block at `height` with transaction hashes only: `Some(None)` if it has no
    /// block there yet, `None` if it does not answer.
    pub fn block(&self, i: usize, height: u64) -> Option<Option<BlockJson>> {
        self.call(self.nodes[i].client.block_hashes(height))
    }

    /// The hash of node `i`'s block at `height`, if it answers and has one.
    pub fn block_hash(&self, i: usize, height: u64) -> Option<String> {
        self.block(i, height).flatten().map(|b| b.header.hash)
    }

    /// Submits transactions to node `i` in one batch; panics on any refusal.
    pub fn submit(&self, i: usize, txs: &[Transaction]) -> Vec<String> {
        let name = &self.nodes[i].name;
        let response = self
            .call(self.nodes[i].client.submit_batch(txs))
            .unwrap_or_else(|| panic!("{name} did not answer a submission"));
        response
            .results
            .into_iter()
            .map(|r| {
                assert!(r.error.is_none(), "{name} refused a transaction: {r:?}");
                r.hash.expect("an admitted transaction has a hash")
            })
            .collect()
    }

    /// The status of a transaction at node `i`, if it answers.
    /// Runs `tests/interop/tlogcheck.go` (Go's golang.org/x/mod/sumdb tlog and note, from
    /// Debian's golang-golang-x-mod-dev, which `scripts/setup.sh` installs) against node
    /// `i`: its checkpoint, tiles and proofs must verify. Returns the program's report.
    pub fn go_tlogcheck(&self, i: usize, require_cosignature: bool) -> String {
        let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/tlogcheck.go");
        let cache = self.dir.path().join("go-cache");
        let output = Command::new("go")
            .arg("run")
            .arg(&program)
            .arg(&self.nodes[i].http)
            .arg(self.net_dir().join("genesis.json"))
            .args(require_cosignature.then_some("--require-cosignature"))
            .env("GO111MODULE", "off")
            .env("GOPATH", GO_DEBIAN_PATH)
            .env("GOCACHE", &cache)
            .env("GOFLAGS", "")
            .output()
            .unwrap_or_else(|e| {
                panic!("running go ({e}): run scripts/setup.sh, which installs golang-go")
            });
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "Go's tlog/note refused {}: {stdout}{stderr}",
            self.nodes[i].name
        );
        stdout
    }

    /// Node `i`'s latest checkpoint signed by a quorum, verified with the genesis keys (the
    /// witnesses' cosignatures too: `cosigners` names those it carries).
    pub fn verified_checkpoint(&self, i: usize) -> Option<ledger::note::VerifiedCheckpoint> {
        let note = self.call(self.nodes[i].client.checkpoint(None)).flatten()?;
        let genesis: ledger::Genesis =
            genesis::testnet::read_json(&self.net_dir().join("genesis.json")).expect("genesis");
        let index = genesis.validate().expect("genesis validates");
        let verified = ledger::note::verify_checkpoint(
            &note,
            &index.genesis.log_origin,
            &index.checkpoint_keys(),
            &index.witness_keys(),
        );
        Some(
            verified
                .unwrap_or_else(|e| panic!("{} served a bad checkpoint: {e}", self.nodes[i].name)),
        )
    }

    pub fn tx_status(&self, i: usize, hash: &str) -> Option<TxStatusJson> {
        self.call(self.nodes[i].client.tx_status(hash))
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
                        assert_ne!(s.status, TxState::Rejected, "transaction refused: {s:?}");
                        s.status == TxState::Committed
                    })
                    .unwrap_or(false)
            })
        });
    }

    /// Asserts that the listed nodes agree on every height up to `through`: each must
    /// answer, and every node that has a block at a height has the same one. No fork, and
    /// no node silently left out of the comparison.
    pub fn assert_same_chain(&self, nodes: &[usize], through: u64) {
        for height in 1..=through {
            let mut hashes: Vec<(usize, String)> = Vec::new();
            for &i in nodes {
                let block = self.block(i, height).unwrap_or_else(|| {
                    self.print_logs();
                    panic!("{} did not answer for height {height}", self.nodes[i].name)
                });
                if let Some(block) = block {
                    hashes.push((i, block.header.hash));
                }
            }
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
