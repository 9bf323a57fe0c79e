//! A node's configuration: `config.toml` in its home directory (written by `bansos testnet`),
//! with tuning sections that default to sensible values when absent.
//!
//! ```toml
//! name = "kemensos"
//! role = "validator"
//! genesis = "../../genesis.json"
//! node_key = "node.key"
//! http_listen = "127.0.0.1:8701"
//! p2p_listen = "/ip4/127.0.0.2/tcp/27001"
//! peers = ["/ip4/127.0.0.3/tcp/27002/p2p/12D3KooW…", …]
//! tx_relay = ["http://127.0.0.1:8702", …]   # the other validators (observers propose nothing)
//! checkpoint_key = "checkpoint.key"          # validators
//! witnesses = ["http://127.0.0.1:8704"]      # validators: where checkpoints are cosigned
//! witness_key = "witness.key"                # an auditor's node that runs a witness
//! joining = true                             # a validator added by governance, not genesis
//!
//! [pseudonym_service]  # the identity authority's node only
//! key_file = "pseudonym-service.secret"
//! key_version = 1
//! # next = { key_file = "pseudonym-service-v2.secret", key_version = 2 }  # for a re-keying
//!
//! [mempool]            # optional
//! txs_max = 50000
//! bytes_max = 67108864
//!
//! [consensus]          # optional
//! idle_block_interval_ms = 1000
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use ed25519_dalek::SigningKey;
use genesis::testnet::NodeRole;
use ledger::genesis::{Genesis, GenesisIndex};
use ledger::types::PublicKey;
use serde::Deserialize;

/// The most transactions a mempool holds by default.
pub const MEMPOOL_TXS_MAX_DEFAULT: usize = 50_000;
/// The most transactions a mempool may be set to hold. Its table of pending transactions is
/// made for twice its limit when the node starts (112 bytes an entry, the transactions
/// themselves apart): 15 MB at the default, 470 MB at this bound. A million pending
/// transactions is a minute of blocks at this machine's peak.
pub const MEMPOOL_TXS_MAX_LIMIT: usize = 1_000_000;
/// The most bytes of canonical transactions a mempool holds by default.
pub const MEMPOOL_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// The propose timeout of round 0 by default; later rounds add half of it each.
pub const PROPOSE_TIMEOUT_MS_DEFAULT: u64 = 3_000;
/// The prevote timeout of round 0 by default.
pub const PREVOTE_TIMEOUT_MS_DEFAULT: u64 = 1_000;
/// The precommit timeout of round 0 by default.
pub const PRECOMMIT_TIMEOUT_MS_DEFAULT: u64 = 1_000;
/// How long a proposer with an empty mempool waits for a transaction before proposing an
/// empty block, by default. Empty blocks keep the chain's clock moving (objection deadlines
/// are judged by block time) and show liveness.
pub const IDLE_BLOCK_INTERVAL_MS_DEFAULT: u64 = 1_000;

/// Mempool limits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolSettings {
    pub txs_max: usize,
    pub bytes_max: usize,
}

impl Default for MempoolSettings {
    fn default() -> Self {
        MempoolSettings {
            txs_max: MEMPOOL_TXS_MAX_DEFAULT,
            bytes_max: MEMPOOL_BYTES_MAX_DEFAULT,
        }
    }
}

/// How consensus messages (votes, proposal parts) travel between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum P2pProtocol {
    /// Straight to every connected peer over the authenticated libp2p connection, once:
    /// for a consortium whose members all list each other as peers (what `bansos testnet`
    /// writes). The messages are signed by validators already, so nothing is re-signed.
    Broadcast,
    /// GossipSub: relayed through the mesh (reaches a node that is connected to only some
    /// peers), each message signed and checked by the libp2p key too; costs more CPU.
    Gossipsub,
}

/// Consensus pacing and transport.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsensusSettings {
    pub idle_block_interval_ms: u64,
    /// Propose timeout of round 0; later rounds add half of it each.
    pub propose_timeout_ms: u64,
    pub prevote_timeout_ms: u64,
    pub precommit_timeout_ms: u64,
    pub p2p_protocol: P2pProtocol,
}

impl Default for ConsensusSettings {
    fn default() -> Self {
        ConsensusSettings {
            idle_block_interval_ms: IDLE_BLOCK_INTERVAL_MS_DEFAULT,
            propose_timeout_ms: PROPOSE_TIMEOUT_MS_DEFAULT,
            prevote_timeout_ms: PREVOTE_TIMEOUT_MS_DEFAULT,
            precommit_timeout_ms: PRECOMMIT_TIMEOUT_MS_DEFAULT,
            p2p_protocol: P2pProtocol::Broadcast,
        }
    }
}

/// `config.toml` as the node reads it: the fields `bansos testnet` writes
/// (`genesis::testnet::NodeConfigFile`) plus optional tuning sections. Unknown keys and sections are errors
/// that name the key, so a misspelt `[concensus]` cannot pass silently (serde's `flatten`
/// would turn `deny_unknown_fields` off, hence the fields are spelt out again here, and a
/// test checks that what `bansos testnet` writes parses).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigToml {
    name: String,
    role: NodeRole,
    genesis: String,
    node_key: String,
    #[serde(default)]
    checkpoint_key: Option<String>,
    #[serde(default)]
    witness_key: Option<String>,
    http_listen: String,
    p2p_listen: String,
    peers: Vec<String>,
    #[serde(default)]
    tx_relay: Vec<String>,
    #[serde(default)]
    witnesses: Vec<String>,
    #[serde(default)]
    pseudonym_service: Option<genesis::testnet::PseudonymServiceConfig>,
    #[serde(default)]
    joining: bool,
    #[serde(default)]
    mempool: MempoolSettings,
    #[serde(default)]
    consensus: ConsensusSettings,
}

/// Everything a node needs to start, loaded and checked.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub home: PathBuf,
    pub name: String,
    pub role: NodeRole,
    pub genesis: Genesis,
    pub genesis_index: GenesisIndex,
    pub node_key: SigningKey,
    /// The key this validator signs the log's checkpoints with (validators only).
    pub checkpoint_key: Option<SigningKey>,
    /// The key this node cosigns checkpoints with as a C2SP witness (an auditor's node).
    pub witness_key: Option<SigningKey>,
    pub http_listen: std::net::SocketAddr,
    pub p2p_listen: String,
    pub peers: Vec<String>,
    pub tx_relay: Vec<String>,
    /// Witnesses' HTTP APIs this validator pushes its signed checkpoints to.
    pub witnesses: Vec<String>,
    /// The pseudonym service's keys (the current one, and the next if configured), if
    /// this node runs it; empty otherwise.
    pub pseudonym_service: Vec<Arc<proto::pseudonym::ServiceKey>>,
    /// A validator that genesis does not list, added by a governance change.
    pub joining: bool,
    pub mempool: MempoolSettings,
    pub consensus: ConsensusSettings,
}

impl NodeSettings {
    /// The node's public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.node_key.verifying_key().to_bytes())
    }

    /// Where the ledger's RocksDB store lives.
    pub fn ledger_path(&self) -> PathBuf {
        self.home.join("data").join("ledger")
    }

    /// Where Malachite's write-ahead log lives.
    pub fn wal_path(&self) -> PathBuf {
        self.home.join("data").join("wal").join("consensus.wal")
    }

    /// Where this node keeps the blocks proposed at heights not yet decided.
    pub fn proposals_path(&self) -> PathBuf {
        self.home.join("data").join("proposals")
    }

    /// Loads `home/config.toml`, the genesis and the node key, and checks that they fit:
    /// a validator's key must be a genesis validator, an observer's a genesis observer, and
    /// every peer must be a genesis node (the network admits no one else).
    pub fn load(home: &Path) -> anyhow::Result<NodeSettings> {
        let config_path = home.join("config.toml");
        let text = std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?;
        let config: ConfigToml =
            toml::from_str(&text).with_context(|| format!("parsing {}", config_path.display()))?;
        let resolve = |p: &str| {
            let path = Path::new(p);
            if path.is_absolute() {
                path.to_path_buf()
            } else {
                home.join(path)
            }
        };
        let genesis: Genesis = genesis::testnet::read_json(&resolve(&config.genesis))?;
        let genesis_index = genesis
            .clone()
            .validate()
            .map_err(|e| anyhow::anyhow!("genesis is invalid: {e}"))?;
        let node_key = genesis::testnet::read_key(&resolve(&config.node_key))?;
        let http_listen = config.http_listen.parse().with_context(|| {
            format!(
                "http_listen {:?} is not an address like 127.0.0.1:8701",
                config.http_listen
            )
        })?;
        let checkpoint_key = match &config.checkpoint_key {
            Some(path) => Some(genesis::testnet::read_key(&resolve(path))?),
            None => None,
        };
        let witness_key = match &config.witness_key {
            Some(path) => Some(genesis::testnet::read_key(&resolve(path))?),
            None => None,
        };
        let pseudonym_service = match &config.pseudonym_service {
            Some(service) => {
                let read = |file: &str, version: u32| -> anyhow::Result<_> {
                    let seed = genesis::testnet::read_secret(&resolve(file))?;
                    let key = proto::pseudonym::ServiceKey::from_seed(&seed.0, version)
                        .map_err(|e| anyhow::anyhow!("[pseudonym_service]: {e}"))?;
                    Ok(Arc::new(key))
                };
                let mut keys = vec![read(&service.key_file, service.key_version)?];
                if let Some(next) = &service.next {
                    if next.key_version <= service.key_version {
                        anyhow::bail!(
                            "[pseudonym_service.next]: key_version {} must be above {}",
                            next.key_version,
                            service.key_version
                        );
                    }
                    keys.push(read(&next.key_file, next.key_version)?);
                }
                keys
            }
            None => Vec::new(),
        };
        let settings = NodeSettings {
            home: home.to_path_buf(),
            name: config.name,
            role: config.role,
            genesis,
            genesis_index,
            node_key,
            checkpoint_key,
            witness_key,
            http_listen,
            p2p_listen: config.p2p_listen,
            peers: config.peers,
            tx_relay: config.tx_relay,
            witnesses: config.witnesses,
            pseudonym_service,
            joining: config.joining,
            mempool: config.mempool,
            consensus: config.consensus,
        };
        settings.check_membership()?;
        Ok(settings)
    }

    /// The peer ids (`12D3KooW…`) of every node key in genesis: validators and observers.
    pub fn genesis_peer_ids(&self) -> Vec<String> {
        let validators = self.genesis_index.validators.iter().map(|v| v.key);
        let observers = self.genesis.observers.iter().map(|o| o.key);
        validators
            .chain(observers)
            .map(|key| genesis::testnet::peer_id(&key))
            .collect()
    }

    fn check_membership(&self) -> anyhow::Result<()> {
        let key = self.public_key();
        match self.role {
            NodeRole::Validator => {
                let Some(checkpoint_key) = &self.checkpoint_key else {
                    bail!("a validator needs checkpoint_key in config.toml: the key it signs the log's checkpoints with");
                };
                // A validator that a governance change adds is not in genesis: it follows
                // the chain and takes part from the height its set takes effect at (the
                // ledger's set decides; see `run`).
                let in_genesis = self.genesis_index.validators.iter().find(|v| v.key == key);
                match (in_genesis, self.joining) {
                    (Some(validator), false) => {
                        let public = PublicKey(checkpoint_key.verifying_key().to_bytes());
                        if public != validator.checkpoint_key.key {
                            bail!("checkpoint key {public} is not this validator's checkpoint key in genesis ({})", validator.checkpoint_key.vkey());
                        }
                    }
                    (Some(_), true) => bail!("node key {key} is a validator in genesis; remove `joining = true` from config.toml"),
                    (None, true) => {}
                    (None, false) => bail!("node key {key} is not a validator in genesis; a validator that a governance change adds starts with `joining = true` in config.toml (or run this node as an observer)"),
                }
            }
            NodeRole::Observer => {
                if !self.genesis.observers.iter().any(|o| o.key == key) {
                    bail!("node key {key} is not an observer in genesis; only institutions listed in genesis may join the network");
                }
            }
        }
        if let Some(witness_key) = &self.witness_key {
            let public = PublicKey(witness_key.verifying_key().to_bytes());
            if !self
                .genesis_index
                .witnesses
                .iter()
                .any(|w| w.key.key == public)
            {
                bail!("witness key {public} is not a witness key in genesis; remove witness_key from config.toml or list the key in genesis");
            }
        }
        if self.mempool.txs_max == 0 || self.mempool.bytes_max == 0 {
            bail!("[mempool] limits must be above zero");
        }
        if self.mempool.txs_max > MEMPOOL_TXS_MAX_LIMIT {
            bail!(
                "[mempool] txs_max = {} is above the most a node allows, {MEMPOOL_TXS_MAX_LIMIT}",
                self.mempool.txs_max
            );
        }
        let allowed = self.genesis_peer_ids();
        for peer in &self.peers {
            let Some((_, id)) = peer.rsplit_once("/p2p/") else {
                bail!("peer {peer:?} must end in /p2p/<peer id>, so that the network can recognise it");
            };
            if !allowed.iter().any(|a| a == id) {
                bail!("peer {peer:?} is not a node listed in genesis; only genesis validators and observers may be peers");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn testnet_home() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let spec = genesis::testnet::TestnetSpec::default();
        let net = genesis::testnet::Testnet::generate(&spec, &mut rng).unwrap();
        net.write(dir.path()).unwrap();
        let home = dir.path().join("nodes").join(&net.nodes[0].name);
        (dir, home)
    }

    #[test]
    fn the_config_bansos_testnet_writes_loads_with_the_defaults() {
        let (_dir, home) = testnet_home();
        let settings = NodeSettings::load(&home).unwrap();
        assert_eq!(settings.mempool, MempoolSettings::default());
        assert_eq!(settings.consensus, ConsensusSettings::default());
    }

    #[test]
    fn an_unknown_key_or_section_is_an_error_that_names_it() {
        let (_dir, home) = testnet_home();
        let path = home.join("config.toml");
        let written = std::fs::read_to_string(&path).unwrap();
        for (extra, name) in [
            ("\n[concensus]\npropose_timeout_ms = 10\n", "concensus"),
            ("\n[mempool]\ntx_max = 5\n", "tx_max"),
            ("\n[consensus]\npropose_timeout = 10\n", "propose_timeout"),
            (
                "\n[consensus]\np2p_protocol = \"carrier-pigeon\"\n",
                "gossipsub",
            ),
        ] {
            let error = load_error(&home, &format!("{written}{extra}"));
            assert!(error.contains(name), "{name}: {error}");
        }
        let error = load_error(&home, &format!("colour = \"blue\"\n{written}"));
        assert!(error.contains("colour"), "{error}");
    }

    /// The error loading `home` gives with `config` as its config.toml.
    fn load_error(home: &Path, config: &str) -> String {
        std::fs::write(home.join("config.toml"), config).unwrap();
        format!("{:#}", NodeSettings::load(home).unwrap_err())
    }

    #[test]
    fn mempool_limits_out_of_range_are_errors_that_name_them() {
        let (_dir, home) = testnet_home();
        let path = home.join("config.toml");
        let written = std::fs::read_to_string(&path).unwrap();
        for (section, wanted) in [
            ("[mempool]\ntxs_max = 0\n", "above zero"),
            ("[mempool]\nbytes_max = 0\n", "above zero"),
            (
                "[mempool]\ntxs_max = 1000001\n",
                "txs_max = 1000001 is above",
            ),
        ] {
            let error = load_error(&home, &format!("{written}\n{section}"));
            assert!(error.contains(wanted), "{section}: {error}");
        }
        std::fs::write(&path, format!("{written}\n[mempool]\ntxs_max = 1000000\n")).unwrap();
        assert_eq!(
            NodeSettings::load(&home).unwrap().mempool.txs_max,
            1_000_000
        );
    }

    /// The tuning sections as the README documents them.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tuning {
        mempool: MempoolSettings,
        consensus: ConsensusSettings,
    }

    #[test]
    fn the_readme_config_block_shows_the_defaults() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
                .unwrap();
        let start = readme
            .find("```toml\n[mempool]")
            .expect("README has a ```toml block starting with [mempool]");
        let block = &readme[start + "```toml\n".len()..];
        let block = &block[..block.find("```").expect("the block ends")];
        let tuning: Tuning = toml::from_str(block).expect("the README block parses strictly");
        assert_eq!(tuning.mempool, MempoolSettings::default());
        assert_eq!(tuning.consensus, ConsensusSettings::default());
    }
}
