//! A local test network: the institutions, their keys, `genesis.json`, a config per node and
//! `network.json` (DESIGN §5).
//!
//! Layout of the output directory:
//!
//! ```text
//! DIR/genesis.json              the genesis document
//! DIR/network.json              {"chain_id", "nodes": [{"name", "role", "home", "http", "p2p"}]}
//! DIR/tlog-policy               the C2SP tlog-policy: validators' log keys, witnesses, quorum
//! DIR/keys/<org>.key            each institution's transaction key (0600)
//! DIR/keys/pseudonym.secret     the intake systems' pseudonym key (0600; never on public nodes)
//! DIR/keys/<payer>.account.secret  a payer's key for hashing account references (0600)
//! DIR/nodes/<name>/config.toml  the node's configuration
//! DIR/nodes/<name>/node.key     the node's consensus / network key (0600)
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ledger::genesis::{Genesis, Observer, OrgKind, Organisation, Program, ValidatorSpec};
use ledger::governance::GovernanceRule;
use ledger::note::NoteKey;
use ledger::privacy::SecretKey;
use ledger::types::{OrgId, ProgramCode, PublicKey, RegionCode};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

pub use crate::keys::{public, read_key, read_secret, KeyFile, SecretFile};
use crate::regions::{demo_regions, BANYUWANGI, MATARAM};
use crate::GenesisError;

/// The most validators the generator knows institutions for.
pub const TESTNET_VALIDATORS_MAX: usize = INSTITUTIONS.len();
/// The most observers the generator will create.
pub const TESTNET_OBSERVERS_MAX: usize = 16;

/// An institution of the demo network.
struct Institution {
    id: &'static str,
    kind: OrgKind,
    name: &'static str,
    regions: &'static [&'static str],
    programs: &'static [&'static str],
}

/// The demo institutions, in the order they become validators: with four validators the
/// network is Kemensos, Pemda Banyuwangi, a bank and an auditor (DESIGN §5).
const INSTITUTIONS: &[Institution] = &[
    Institution {
        id: "kemensos",
        kind: OrgKind::Kemensos,
        name: "Kementerian Sosial RI",
        regions: &[],
        programs: &[],
    },
    Institution {
        id: "pemda-3510",
        kind: OrgKind::Pemda,
        name: "Dinas Sosial Kabupaten Banyuwangi",
        regions: &[BANYUWANGI],
        programs: &[],
    },
    Institution {
        id: "bank-bri",
        kind: OrgKind::Bank,
        name: "PT Bank Rakyat Indonesia (Persero) Tbk",
        regions: &[BANYUWANGI],
        programs: &["PKH", "BPNT"],
    },
    Institution {
        id: "bpk",
        kind: OrgKind::Auditor,
        name: "Badan Pemeriksa Keuangan RI",
        regions: &[],
        programs: &[],
    },
    Institution {
        id: "pemda-5271",
        kind: OrgKind::Pemda,
        name: "Dinas Sosial Kota Mataram",
        regions: &[MATARAM],
        programs: &[],
    },
    Institution {
        id: "pos",
        kind: OrgKind::Pos,
        name: "PT Pos Indonesia (Persero)",
        regions: &[MATARAM],
        programs: &["PKH", "BPNT"],
    },
    Institution {
        id: "bpkp",
        kind: OrgKind::Auditor,
        name: "Badan Pengawasan Keuangan dan Pembangunan",
        regions: &[],
        programs: &[],
    },
    Institution {
        id: "dukcapil",
        kind: OrgKind::Dukcapil,
        name: "Ditjen Kependudukan dan Pencatatan Sipil",
        regions: &[],
        programs: &[],
    },
    Institution {
        id: "bps",
        kind: OrgKind::Bps,
        name: "Badan Pusat Statistik",
        regions: &[],
        programs: &[],
    },
    Institution {
        id: "bank-bni",
        kind: OrgKind::Bank,
        name: "PT Bank Negara Indonesia (Persero) Tbk",
        regions: &[MATARAM],
        programs: &["BPNT"],
    },
];

/// The programs of the demo.
const PROGRAMS: &[(&str, &str)] = &[
    ("PKH", "Program Keluarga Harapan"),
    ("BPNT", "Bantuan Pangan Non-Tunai (Sembako)"),
    ("BLT", "Bantuan Langsung Tunai"),
];

/// What to generate.
#[derive(Clone, Debug)]
pub struct TestnetSpec {
    pub chain_id: String,
    pub validators: usize,
    pub observers: usize,
    /// 2026-01-01T00:00:00Z by default.
    pub genesis_time_ms: u64,
    /// The first HTTP port on 127.0.0.1; node i listens on `http_port_base + i`.
    pub http_port_base: u16,
    /// The first p2p port; node i listens on 127.0.0.(2 + i) at `p2p_port_base + i`. Each
    /// node has its own loopback address because the network layer limits connections per
    /// IP address.
    pub p2p_port_base: u16,
}

impl Default for TestnetSpec {
    fn default() -> Self {
        TestnetSpec {
            chain_id: "bansos-testnet".into(),
            validators: 4,
            observers: 0,
            genesis_time_ms: 1_767_225_600_000,
            http_port_base: 8701,
            p2p_port_base: 27001,
        }
    }
}

/// The role of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    Validator,
    Observer,
}

/// One node of the network.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub name: String,
    pub role: NodeRole,
    /// The institution running it (validators only).
    pub org: Option<OrgId>,
    pub key: SigningKey,
    /// The key that signs the log's checkpoints (validators only).
    pub checkpoint_key: Option<SigningKey>,
    /// The key that cosigns checkpoints as a C2SP witness (an auditor's node).
    pub witness_key: Option<SigningKey>,
    /// The pseudonym service's secret seed (the node that runs the service).
    pub pseudonym_service: Option<SecretKey>,
    pub http: String,
    pub p2p: String,
}

impl NodeSpec {
    /// The node's listen address with its peer id appended, as peers dial it.
    pub fn p2p_with_peer_id(&self) -> String {
        format!("{}/p2p/{}", self.p2p, peer_id(&public(&self.key)))
    }
}

/// All generated key material.
#[derive(Clone, Debug)]
pub struct TestnetKeys {
    /// Each institution's transaction key.
    pub orgs: BTreeMap<OrgId, SigningKey>,
    /// The intake systems' shared pseudonym key (networks without the pseudonym service).
    pub pseudonym: SecretKey,
    /// Each payer's account-reference key.
    pub accounts: BTreeMap<OrgId, SecretKey>,
    /// The pseudonym service's seed, read from its node's home (never written to `keys/`):
    /// the demo generator computes its people's pseudonyms as the identity authority would.
    pub pseudonym_service: Option<SecretKey>,
}

impl TestnetKeys {
    /// The transaction key of `org`.
    pub fn org(&self, org: &str) -> Option<&SigningKey> {
        OrgId::new(org).ok().and_then(|id| self.orgs.get(&id))
    }
}

/// A generated network.
#[derive(Clone, Debug)]
pub struct Testnet {
    pub genesis: Genesis,
    pub keys: TestnetKeys,
    pub nodes: Vec<NodeSpec>,
}

/// `network.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFile {
    pub chain_id: String,
    pub nodes: Vec<NetworkNode>,
}

/// One node in `network.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkNode {
    pub name: String,
    pub role: NodeRole,
    /// Relative to the directory holding `network.json`, or absolute.
    pub home: String,
    /// Like `http://127.0.0.1:8701`.
    pub http: String,
    /// A libp2p multiaddress with the peer id, like `/ip4/127.0.0.2/tcp/27001/p2p/12D3KooW…`.
    pub p2p: String,
}

/// The pseudonym service a node runs (`[pseudonym_service]` in its `config.toml`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PseudonymServiceConfig {
    /// The service's secret seed file (0600), relative to the node's home or absolute.
    pub key_file: String,
    /// The key version the service answers for (a new key, a new version).
    pub key_version: u32,
    /// The next key, held ready for a governance change (`set_pseudonym_key`): the service
    /// answers under whichever of its keys the ledger has current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<PseudonymKeyFile>,
}

/// A pseudonym key's seed file and version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PseudonymKeyFile {
    pub key_file: String,
    pub key_version: u32,
}

/// The file name of the pseudonym service's secret seed in its node's home.
pub const PSEUDONYM_SERVICE_KEY_FILE: &str = "pseudonym-service.secret";

/// The testnet's pseudonym service runs on the ministry's node: the testnet has no civil
/// registry (Dukcapil) node, whose service it would be in a real network.
const PSEUDONYM_SERVICE_ORG: &str = "kemensos";

/// Gives the ministry's node (else the first validator's) the pseudonym service's seed.
fn add_pseudonym_service<R: RngCore + CryptoRng>(nodes: &mut [NodeSpec], rng: &mut R) {
    let host = nodes
        .iter()
        .position(|n| {
            n.org
                .as_ref()
                .is_some_and(|o| o.as_str() == PSEUDONYM_SERVICE_ORG)
        })
        .or_else(|| nodes.iter().position(|n| n.role == NodeRole::Validator));
    if let Some(host) = host {
        nodes[host].pseudonym_service = Some(SecretKey::generate(rng));
    }
}

/// The pseudonym service genesis records: its host's organisation and the public key of
/// its seed, version 1.
fn pseudonym_service_spec(
    nodes: &[NodeSpec],
) -> Result<Option<ledger::pseudonyms::PseudonymServiceSpec>, GenesisError> {
    let Some(host) = nodes.iter().find(|n| n.pseudonym_service.is_some()) else {
        return Ok(None);
    };
    let (Some(org), Some(seed)) = (&host.org, &host.pseudonym_service) else {
        return Err(GenesisError::Invalid(
            "the pseudonym service runs on a node without an organisation".into(),
        ));
    };
    let key = proto::pseudonym::ServiceKey::from_seed(&seed.0, PSEUDONYM_KEY_VERSION)
        .map_err(|e| GenesisError::Invalid(e.to_string()))?;
    Ok(Some(ledger::pseudonyms::PseudonymServiceSpec {
        organisation: org.clone(),
        key_version: PSEUDONYM_KEY_VERSION,
        public_key: ledger::types::Hash32(key.public_key()),
    }))
}

/// The version of a new network's pseudonym key.
pub const PSEUDONYM_KEY_VERSION: u32 = 1;

/// A node's `config.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfigFile {
    pub name: String,
    pub role: NodeRole,
    /// Path of `genesis.json`, relative to the node's home or absolute.
    pub genesis: String,
    /// Path of the node's key file, relative to the node's home or absolute.
    pub node_key: String,
    /// Path of the validator's checkpoint-signing key file (validators only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_key: Option<String>,
    /// Path of the witness cosigning key file (an auditor's node that runs a witness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_key: Option<String>,
    /// HTTP listen address, like `127.0.0.1:8701`.
    pub http_listen: String,
    /// libp2p listen multiaddress.
    pub p2p_listen: String,
    /// The other nodes' multiaddresses, each ending in `/p2p/<peer id>`.
    pub peers: Vec<String>,
    /// The other validators' HTTP APIs (like `http://127.0.0.1:8702`), to which
    /// transactions submitted here are relayed so that whichever validator proposes next
    /// has them. Observers are not listed: they propose nothing, and check a block's
    /// transactions in one batch when it commits (relayed to, an observer used half as much
    /// CPU again, admitting every transaction in small requests: docs/BENCHMARKS.md).
    #[serde(default)]
    pub tx_relay: Vec<String>,
    /// The witnesses' HTTP APIs (validators only), to which signed checkpoints are pushed
    /// for cosigning (C2SP tlog-witness `add-checkpoint`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
    /// The pseudonym service this node runs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonym_service: Option<PseudonymServiceConfig>,
    /// A validator that genesis does not list, joining through a governance change: it
    /// follows the chain and takes part in consensus from the height the change takes
    /// effect at.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joining: bool,
}

/// The file name of a validator's checkpoint-signing key in its home.
pub const CHECKPOINT_KEY_FILE: &str = "checkpoint.key";
/// The network's C2SP tlog-policy (log keys, witnesses, quorum), beside `genesis.json`: what
/// a citizen's or an auditor's tool needs to check a proof offline.
pub const POLICY_FILE: &str = "tlog-policy";

/// The file name of a witness's cosigning key in its node's home.
pub const WITNESS_KEY_FILE: &str = "witness.key";

/// The name of `org`'s witness key for the log `origin`: `<origin>/witness/<org>`.
pub fn witness_name(origin: &str, org: &OrgId) -> String {
    format!("{origin}/witness/{org}")
}

/// The libp2p peer id of an ed25519 key, as text (`12D3KooW…`): the identity multihash of
/// the protobuf-encoded public key, in base58. Persistent peers must be written with it, since
/// the network recognises inbound persistent peers by peer id, not by address.
pub fn peer_id(key: &PublicKey) -> String {
    bs58::encode(peer_id_bytes(key)).into_string()
}

/// The libp2p peer id of an ed25519 key as raw bytes (an identity multihash).
pub fn peer_id_bytes(key: &PublicKey) -> Vec<u8> {
    // Protobuf PublicKey { Type = Ed25519 (field 1 = 1), Data (field 2) = 32 bytes }.
    let mut encoded = vec![0x08, 0x01, 0x12, 0x20];
    encoded.extend_from_slice(key.as_bytes());
    // Identity multihash: code 0x00, then the length (36, one byte).
    let mut multihash = vec![0x00, encoded.len() as u8];
    multihash.extend_from_slice(&encoded);
    multihash
}

fn new_key<R: RngCore + CryptoRng>(rng: &mut R) -> SigningKey {
    SigningKey::generate(rng)
}

fn codes<T>(
    texts: &[&str],
    make: fn(String) -> Result<T, ledger::types::CodeError>,
) -> Result<Vec<T>, GenesisError> {
    texts
        .iter()
        .map(|t| make((*t).to_owned()).map_err(|e| GenesisError::Invalid(e.to_string())))
        .collect()
}

/// Refuses a spec with too few or too many validators, too many observers, or port bases
/// too close to the top of the port range for every node.
fn check_spec(spec: &TestnetSpec) -> Result<(), GenesisError> {
    if spec.validators == 0 || spec.validators > TESTNET_VALIDATORS_MAX {
        return Err(GenesisError::Invalid(format!(
            "--validators must be 1 to {TESTNET_VALIDATORS_MAX} (one per demo institution), got {}",
            spec.validators
        )));
    }
    if spec.observers > TESTNET_OBSERVERS_MAX {
        return Err(GenesisError::Invalid(format!(
            "--observers must be at most {TESTNET_OBSERVERS_MAX}, got {}",
            spec.observers
        )));
    }
    let node_count = spec.validators + spec.observers;
    if usize::from(spec.http_port_base) + node_count > usize::from(u16::MAX)
        || usize::from(spec.p2p_port_base) + node_count > usize::from(u16::MAX)
    {
        return Err(GenesisError::Invalid(
            "port bases leave no room for every node".into(),
        ));
    }
    Ok(())
}

/// The demo institutions as generated: their genesis entries, their keys, and the nodes of
/// those that run validators (addresses not yet assigned).
struct Institutions {
    organisations: Vec<Organisation>,
    org_keys: BTreeMap<OrgId, SigningKey>,
    accounts: BTreeMap<OrgId, SecretKey>,
    nodes: Vec<NodeSpec>,
}

impl Institutions {
    /// Generates every demo institution in order, the first `validators` running a
    /// validator. Each institution draws its keys in the order transaction key, node key,
    /// checkpoint key, account key.
    fn generate<R: RngCore + CryptoRng>(
        validators: usize,
        origin: &str,
        rng: &mut R,
    ) -> Result<Institutions, GenesisError> {
        let mut out = Institutions {
            organisations: Vec::new(),
            org_keys: BTreeMap::new(),
            accounts: BTreeMap::new(),
            nodes: Vec::new(),
        };
        for (index, institution) in INSTITUTIONS.iter().enumerate() {
            let id =
                OrgId::new(institution.id).map_err(|e| GenesisError::Invalid(e.to_string()))?;
            let tx_key = new_key(rng);
            let validator = if index < validators {
                Some(out.add_validator_node(institution, &id, origin, rng)?)
            } else {
                None
            };
            if matches!(institution.kind, OrgKind::Bank | OrgKind::Pos) {
                out.accounts.insert(id.clone(), SecretKey::generate(rng));
            }
            out.organisations.push(Organisation {
                id: id.clone(),
                kind: institution.kind,
                name: institution.name.to_owned(),
                regions: codes(institution.regions, RegionCode::new)?,
                programs: codes(institution.programs, ProgramCode::new)?,
                tx_keys: vec![public(&tx_key)],
                validator,
                witness_key: None,
            });
            out.org_keys.insert(id, tx_key);
        }
        Ok(out)
    }

    /// Draws a node key for `institution`'s validator, adds its node, and returns its
    /// genesis entry.
    fn add_validator_node<R: RngCore + CryptoRng>(
        &mut self,
        institution: &Institution,
        id: &OrgId,
        origin: &str,
        rng: &mut R,
    ) -> Result<ValidatorSpec, GenesisError> {
        let node_key = new_key(rng);
        let checkpoint_key = new_key(rng);
        let note_key = NoteKey::ed25519(origin, public(&checkpoint_key))
            .map_err(|e| GenesisError::Invalid(e.to_string()))?;
        let validator = ValidatorSpec {
            key: public(&node_key),
            power: 1,
            checkpoint_key: note_key.vkey(),
        };
        self.nodes.push(NodeSpec {
            name: institution.id.to_owned(),
            role: NodeRole::Validator,
            org: Some(id.clone()),
            key: node_key,
            checkpoint_key: Some(checkpoint_key),
            witness_key: None,
            pseudonym_service: None,
            http: String::new(),
            p2p: String::new(),
        });
        Ok(validator)
    }
}

/// The log origin of a local test network: `bansos.local/<chain id>`.
pub fn log_origin(chain_id: &str) -> String {
    format!("bansos.local/{chain_id}")
}

/// Generates `count` observers, drawing a key for each and adding its node to `nodes`;
/// returns their genesis entries.
fn generate_observers<R: RngCore + CryptoRng>(
    count: usize,
    rng: &mut R,
    nodes: &mut Vec<NodeSpec>,
) -> Vec<Observer> {
    let mut observers = Vec::new();
    for index in 0..count {
        let key = new_key(rng);
        let name = format!("observer-{}", index + 1);
        observers.push(Observer {
            name: name.clone(),
            key: public(&key),
        });
        nodes.push(NodeSpec {
            name,
            role: NodeRole::Observer,
            org: None,
            key,
            checkpoint_key: None,
            witness_key: None,
            pseudonym_service: None,
            http: String::new(),
            p2p: String::new(),
        });
    }
    observers
}

/// Gives every auditor institution that runs a validator a witness: a cosigning key drawn
/// from `rng` (after every other key, so that earlier keys do not change), in genesis and
/// on its node.
fn add_witnesses<R: RngCore + CryptoRng>(
    origin: &str,
    organisations: &mut [Organisation],
    nodes: &mut [NodeSpec],
    rng: &mut R,
) -> Result<(), GenesisError> {
    for org in organisations
        .iter_mut()
        .filter(|o| o.kind == OrgKind::Auditor)
    {
        let Some(node) = nodes.iter_mut().find(|n| n.org.as_ref() == Some(&org.id)) else {
            continue;
        };
        let key = new_key(rng);
        let vkey = NoteKey::cosigner(&witness_name(origin, &org.id), public(&key))
            .map_err(|e| GenesisError::Invalid(e.to_string()))?
            .vkey();
        org.witness_key = Some(vkey);
        node.witness_key = Some(key);
    }
    Ok(())
}

/// Gives node i the HTTP port `http_port_base + i` on 127.0.0.1, and the p2p port
/// `p2p_port_base + i` on its own loopback address 127.0.0.(2 + i).
fn assign_addresses(spec: &TestnetSpec, nodes: &mut [NodeSpec]) {
    for (index, node) in nodes.iter_mut().enumerate() {
        let offset = index as u16;
        node.http = format!("127.0.0.1:{}", spec.http_port_base + offset);
        node.p2p = format!(
            "/ip4/127.0.0.{}/tcp/{}",
            2 + index,
            spec.p2p_port_base + offset
        );
    }
}

/// The demo programs, as genesis lists them.
fn demo_programs() -> Result<Vec<Program>, GenesisError> {
    PROGRAMS
        .iter()
        .map(|(code, name)| {
            Ok(Program {
                code: ProgramCode::new(*code).map_err(|e| GenesisError::Invalid(e.to_string()))?,
                name: (*name).to_owned(),
            })
        })
        .collect()
}

/// The demo's governance rule: a change needs three institutions' approval, the
/// ministry's among them.
fn demo_governance() -> Result<GovernanceRule, GenesisError> {
    let kemensos = OrgId::new("kemensos").map_err(|e| GenesisError::Invalid(e.to_string()))?;
    Ok(GovernanceRule {
        approvals: 3,
        required: vec![kemensos],
    })
}

impl Testnet {
    /// Generates a network with fresh keys drawn from `rng`.
    pub fn generate<R: RngCore + CryptoRng>(
        spec: &TestnetSpec,
        rng: &mut R,
    ) -> Result<Testnet, GenesisError> {
        check_spec(spec)?;
        // Keys are drawn from `rng` in a fixed order (each institution's keys in turn, the
        // observers', the pseudonym key, the witnesses', the pseudonym service's), so one
        // seed always gives one network.
        let origin = log_origin(&spec.chain_id);
        let mut institutions = Institutions::generate(spec.validators, &origin, rng)?;
        let mut nodes = institutions.nodes;
        let observers = generate_observers(spec.observers, rng, &mut nodes);
        let pseudonym = SecretKey::generate(rng);
        add_witnesses(&origin, &mut institutions.organisations, &mut nodes, rng)?;
        add_pseudonym_service(&mut nodes, rng);
        assign_addresses(spec, &mut nodes);
        let genesis = Genesis {
            chain_id: spec.chain_id.clone(),
            log_origin: origin,
            genesis_time_ms: spec.genesis_time_ms,
            organisations: institutions.organisations,
            observers,
            programs: demo_programs()?,
            regions: demo_regions(),
            governance: demo_governance()?,
            pseudonym_service: pseudonym_service_spec(&nodes)?,
        };
        // Fail here, with every problem named, rather than when a node starts.
        genesis
            .clone()
            .validate()
            .map_err(|e| GenesisError::Invalid(e.to_string()))?;
        Ok(Testnet {
            genesis,
            keys: TestnetKeys {
                orgs: institutions.org_keys,
                pseudonym,
                accounts: institutions.accounts,
                pseudonym_service: nodes.iter().find_map(|n| n.pseudonym_service.clone()),
            },
            nodes,
        })
    }

    /// `network.json` for this network, with homes relative to its directory.
    pub fn network_file(&self) -> NetworkFile {
        NetworkFile {
            chain_id: self.genesis.chain_id.clone(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NetworkNode {
                    name: n.name.clone(),
                    role: n.role,
                    home: format!("nodes/{}", n.name),
                    http: format!("http://{}", n.http),
                    p2p: n.p2p_with_peer_id(),
                })
                .collect(),
        }
    }

    /// Writes the network to `dir`, which must not already hold a network.
    pub fn write(&self, dir: &Path) -> Result<(), GenesisError> {
        if dir.join("genesis.json").exists() {
            return Err(GenesisError::Invalid(format!("{} already holds a network (genesis.json exists); choose another directory or remove it", dir.display())));
        }
        create_dir(dir)?;
        create_dir(&dir.join("keys"))?;
        write_json(&dir.join("genesis.json"), &self.genesis, false)?;
        write_json(&dir.join("network.json"), &self.network_file(), false)?;
        let index = self
            .genesis
            .clone()
            .validate()
            .map_err(|e| GenesisError::Invalid(e.to_string()))?;
        let policy = ledger::policy::Policy::for_network(&index).to_text();
        write_file(&dir.join(POLICY_FILE), policy.as_bytes(), false)?;
        for (org, key) in &self.keys.orgs {
            let file = KeyFile::plain(org.to_string(), key);
            write_json(&dir.join("keys").join(format!("{org}.key")), &file, true)?;
        }
        let pseudonym = SecretFile {
            purpose: "beneficiary pseudonyms (intake systems only; never on a public node)".into(),
            secret: hex::encode(self.keys.pseudonym.0),
        };
        write_json(&dir.join("keys").join("pseudonym.secret"), &pseudonym, true)?;
        for (org, secret) in &self.keys.accounts {
            let file = SecretFile {
                purpose: format!("account references of {org}"),
                secret: hex::encode(secret.0),
            };
            write_json(
                &dir.join("keys").join(format!("{org}.account.secret")),
                &file,
                true,
            )?;
        }
        for node in &self.nodes {
            self.write_node(dir, node)?;
        }
        Ok(())
    }

    /// Writes one node's home: its keys and `config.toml`.
    fn write_node(&self, dir: &Path, node: &NodeSpec) -> Result<(), GenesisError> {
        let home = dir.join("nodes").join(&node.name);
        create_dir(&home)?;
        let key = KeyFile::plain(node.name.clone(), &node.key);
        write_json(&home.join("node.key"), &key, true)?;
        if let Some(checkpoint_key) = &node.checkpoint_key {
            let key = KeyFile::plain(format!("{} checkpoints", node.name), checkpoint_key);
            write_json(&home.join(CHECKPOINT_KEY_FILE), &key, true)?;
        }
        if let Some(witness_key) = &node.witness_key {
            let key = KeyFile::plain(format!("{} witness", node.name), witness_key);
            write_json(&home.join(WITNESS_KEY_FILE), &key, true)?;
        }
        if let Some(seed) = &node.pseudonym_service {
            let file = SecretFile {
                purpose: "pseudonym service key seed (this node only; never copied)".into(),
                secret: hex::encode(seed.0),
            };
            write_json(&home.join(PSEUDONYM_SERVICE_KEY_FILE), &file, true)?;
        }
        let config = NodeConfigFile {
            name: node.name.clone(),
            role: node.role,
            genesis: "../../genesis.json".into(),
            node_key: "node.key".into(),
            checkpoint_key: node
                .checkpoint_key
                .as_ref()
                .map(|_| CHECKPOINT_KEY_FILE.into()),
            witness_key: node.witness_key.as_ref().map(|_| WITNESS_KEY_FILE.into()),
            http_listen: node.http.clone(),
            p2p_listen: node.p2p.clone(),
            peers: self
                .nodes
                .iter()
                .filter(|other| other.name != node.name)
                .map(NodeSpec::p2p_with_peer_id)
                .collect(),
            tx_relay: self
                .nodes
                .iter()
                .filter(|other| other.name != node.name && other.role == NodeRole::Validator)
                .map(|other| format!("http://{}", other.http))
                .collect(),
            witnesses: if node.role == NodeRole::Validator {
                self.nodes
                    .iter()
                    .filter(|other| other.witness_key.is_some())
                    .map(|other| format!("http://{}", other.http))
                    .collect()
            } else {
                Vec::new()
            },
            pseudonym_service: node
                .pseudonym_service
                .as_ref()
                .map(|_| PseudonymServiceConfig {
                    key_file: PSEUDONYM_SERVICE_KEY_FILE.into(),
                    key_version: PSEUDONYM_KEY_VERSION,
                    next: None,
                }),
            joining: false,
        };
        let text = toml::to_string_pretty(&config)
            .map_err(|e| GenesisError::Invalid(format!("config: {e}")))?;
        write_file(&home.join("config.toml"), text.as_bytes(), false)?;
        Ok(())
    }
}

/// Reads the key material that [`Testnet::write`] wrote to `dir`.
pub fn read_keys(dir: &Path) -> Result<TestnetKeys, GenesisError> {
    let genesis: Genesis = read_json(&dir.join("genesis.json"))?;
    let mut orgs = BTreeMap::new();
    let mut accounts = BTreeMap::new();
    for org in &genesis.organisations {
        let path = dir.join("keys").join(format!("{}.key", org.id));
        if path.exists() {
            orgs.insert(org.id.clone(), read_key(&path)?);
        }
        let account = dir.join("keys").join(format!("{}.account.secret", org.id));
        if account.exists() {
            accounts.insert(org.id.clone(), read_secret(&account)?);
        }
    }
    let pseudonym = read_secret(&dir.join("keys").join("pseudonym.secret"))?;
    Ok(TestnetKeys {
        orgs,
        pseudonym,
        accounts,
        pseudonym_service: read_service_seed(dir)?,
    })
}

/// The pseudonym service's seed from the home of the node that runs it, if one does.
fn read_service_seed(dir: &Path) -> Result<Option<SecretKey>, GenesisError> {
    let network: NetworkFile = read_json(&dir.join("network.json"))?;
    for node in &network.nodes {
        let seed = dir.join(&node.home).join(PSEUDONYM_SERVICE_KEY_FILE);
        if seed.exists() {
            return read_secret(&seed).map(Some);
        }
    }
    Ok(None)
}

/// Reads and parses a JSON file, naming the file in every error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, GenesisError> {
    let text = fs::read_to_string(path).map_err(|source| GenesisError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| GenesisError::Invalid(format!("{}: {e}", path.display())))
}

fn create_dir(path: &Path) -> Result<(), GenesisError> {
    fs::create_dir_all(path).map_err(|source| GenesisError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T, secret: bool) -> Result<(), GenesisError> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| GenesisError::Invalid(e.to_string()))?;
    text.push('\n');
    write_file(path, text.as_bytes(), secret)
}

/// Writes a file; secrets are created with mode 0600 from the start, never widened later.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), GenesisError> {
    let io = |source| GenesisError::Io {
        path: PathBuf::from(path),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn four_validators_are_kemensos_pemda_bank_and_auditor() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let net = Testnet::generate(
            &TestnetSpec {
                observers: 1,
                ..TestnetSpec::default()
            },
            &mut rng,
        )
        .unwrap();
        let index = net.genesis.clone().validate().unwrap();
        let kinds: Vec<OrgKind> = index
            .validators
            .iter()
            .map(|v| index.organisations[&v.org].kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                OrgKind::Kemensos,
                OrgKind::Pemda,
                OrgKind::Bank,
                OrgKind::Auditor
            ]
        );
        assert_eq!(net.nodes.len(), 5);
        assert_eq!(net.nodes[4].role, NodeRole::Observer);
        assert_eq!(net.nodes[1].p2p, "/ip4/127.0.0.3/tcp/27002");
        let dialled = net.nodes[1].p2p_with_peer_id();
        let id = dialled.rsplit('/').next().unwrap();
        // Every ed25519 identity peer id reads 12D3KooW… and is 52 characters long.
        assert!(id.starts_with("12D3KooW") && id.len() == 52, "{dialled}");
    }

    #[test]
    fn written_network_reads_back_with_private_keys_0600() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let net = Testnet::generate(&TestnetSpec::default(), &mut rng).unwrap();
        let dir = tempfile::tempdir().unwrap();
        net.write(dir.path()).unwrap();
        let keys = read_keys(dir.path()).unwrap();
        assert_eq!(keys.orgs.len(), net.keys.orgs.len());
        assert_eq!(keys.pseudonym.0, net.keys.pseudonym.0);
        let seed = |k: &TestnetKeys| k.pseudonym_service.as_ref().map(|s| s.0);
        assert!(seed(&keys).is_some());
        assert_eq!(seed(&keys), seed(&net.keys));
        let network: NetworkFile = read_json(&dir.path().join("network.json")).unwrap();
        assert_eq!(network.nodes.len(), 4);
        assert_eq!(network.nodes[0].http, "http://127.0.0.1:8701");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [
                dir.path().join("keys/kemensos.key"),
                dir.path().join("keys/pseudonym.secret"),
                dir.path().join("nodes/kemensos/node.key"),
            ] {
                assert_eq!(
                    fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                    0o600,
                    "{}",
                    path.display()
                );
            }
        }
        let config: NodeConfigFile =
            toml::from_str(&fs::read_to_string(dir.path().join("nodes/bpk/config.toml")).unwrap())
                .unwrap();
        assert_eq!(config.peers.len(), 3);
        // Peers are dialled and recognised by peer id, so every entry carries one.
        assert!(
            config.peers.iter().all(|p| p.contains("/p2p/12D3KooW")),
            "{:?}",
            config.peers
        );
        assert!(network
            .nodes
            .iter()
            .all(|n| n.p2p.contains("/p2p/12D3KooW")));
        // Writing twice into the same directory is refused rather than overwriting keys.
        assert!(net.write(dir.path()).is_err());
    }

    #[test]
    fn every_node_relays_transactions_to_the_other_validators_and_to_no_observer() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(10);
        let spec = TestnetSpec {
            observers: 2,
            ..TestnetSpec::default()
        };
        let net = Testnet::generate(&spec, &mut rng).unwrap();
        let dir = tempfile::tempdir().unwrap();
        net.write(dir.path()).unwrap();
        let validators: Vec<String> = net
            .nodes
            .iter()
            .filter(|n| n.role == NodeRole::Validator)
            .map(|n| format!("http://{}", n.http))
            .collect();
        assert_eq!(validators.len(), 4);
        for node in &net.nodes {
            let path = dir
                .path()
                .join("nodes")
                .join(&node.name)
                .join("config.toml");
            let config: NodeConfigFile =
                toml::from_str(&fs::read_to_string(path).unwrap()).unwrap();
            let own = format!("http://{}", node.http);
            let expected: Vec<&String> = validators.iter().filter(|v| **v != own).collect();
            let relayed: Vec<&String> = config.tx_relay.iter().collect();
            assert_eq!(relayed, expected, "{}", node.name);
        }
    }

    #[test]
    fn validator_count_out_of_range_is_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        for validators in [0, TESTNET_VALIDATORS_MAX + 1] {
            let error = Testnet::generate(
                &TestnetSpec {
                    validators,
                    ..TestnetSpec::default()
                },
                &mut rng,
            )
            .unwrap_err();
            assert!(error.to_string().contains("--validators"), "{error}");
        }
    }
}
