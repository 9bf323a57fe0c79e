//! The line between public and consortium data (DESIGN §4), on the node's side: who holds a
//! key listed in genesis, and the check every consortium endpoint makes before it answers.
//!
//! A consortium request carries an RFC 9421 signature (`auth`) by an institution's
//! transaction key or a node key in genesis. The node refuses it unless the signature is
//! current and unseen: each (key, nonce) is remembered until the signature expires, so a
//! captured request cannot be sent again. Refusals are 401 with the JSON error shape and an
//! `Accept-Signature` header saying what to sign.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use auth::{AuthError, Signer};
use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::StatusCode;
use ledger::error::LedgerError;
use ledger::genesis::GenesisIndex;
use ledger::types::PublicKey;
use ledger::{Ledger, Store};

use crate::api::ApiError;

/// Signatures remembered against replay at once; when full of unexpired ones, signed
/// requests wait (503) until some expire.
pub const SEEN_SIGNATURES_MAX: usize = 100_000;

/// What a genesis key is to the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member {
    /// A validator's or an observer's node key: may also push to peers.
    Node,
    /// An institution's transaction key.
    Institution,
}

/// Who may ask for something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// Any key listed in genesis.
    Member,
    /// Nodes only (pushes between nodes).
    Node,
    /// Institutions' transaction keys only (services for institutions).
    Institution,
    /// Any key listed in genesis, or this key itself (a signer reading its own nonces).
    MemberOrSelf(PublicKey),
}

/// The consortium's keys and the signatures seen recently.
pub struct Consortium {
    /// The members and the governance epoch (changes taken effect) they were read at.
    members: RwLock<(u64, HashMap<PublicKey, Member>)>,
    /// (key, nonce) → expiry (unix seconds).
    seen: Mutex<HashMap<(PublicKey, String), u64>>,
}

impl Consortium {
    /// The keys genesis lists: node keys of validators and observers, institutions'
    /// transaction keys.
    pub fn new(genesis: &GenesisIndex) -> Consortium {
        let nodes = genesis
            .validators
            .iter()
            .map(|v| v.key)
            .chain(genesis.genesis.observers.iter().map(|o| o.key));
        let institutions = genesis
            .organisations
            .values()
            .flat_map(|o| o.tx_keys.iter().copied());
        let mut members: HashMap<PublicKey, Member> =
            institutions.map(|k| (k, Member::Institution)).collect();
        members.extend(nodes.map(|k| (k, Member::Node)));
        Consortium {
            members: RwLock::new((0, members)),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Follows governance: once a change has taken effect, the members are read again from
    /// the ledger (organisations not removed, their transaction keys; the validators of the
    /// next height; genesis's observers). Nothing is read otherwise.
    pub fn follow<S: Store>(&self, ledger: &Ledger<S>) -> Result<(), LedgerError> {
        let (epoch, organisations) = ledger.members();
        if self.read().0 == epoch {
            return Ok(());
        }
        let mut members: HashMap<PublicKey, Member> = organisations
            .values()
            .flat_map(|o| o.tx_keys.iter().map(|key| (*key, Member::Institution)))
            .collect();
        let set = ledger.validator_set()?;
        let observers = ledger.genesis().genesis.observers.iter().map(|o| o.key);
        for key in set.validators.iter().map(|v| v.key).chain(observers) {
            members.insert(key, Member::Node);
        }
        *self.members.write().unwrap_or_else(|e| e.into_inner()) = (epoch, members);
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (u64, HashMap<PublicKey, Member>)> {
        self.members.read().unwrap_or_else(|e| e.into_inner())
    }

    fn allows(&self, key: &PublicKey, allowed: Allowed) -> bool {
        match (allowed, self.read().1.get(key)) {
            (Allowed::MemberOrSelf(own), None) => *key == own,
            (Allowed::Node, Some(member)) => *member == Member::Node,
            (Allowed::Institution, Some(member)) => *member == Member::Institution,
            (_, member) => member.is_some(),
        }
    }

    /// Remembers a signature until it expires; false if it was seen before.
    fn first_use(&self, signer: &Signer, now_s: u64) -> Result<bool, ApiError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SEEN_SIGNATURES_MAX {
            seen.retain(|_, expires| *expires >= now_s);
        }
        if seen.len() >= SEEN_SIGNATURES_MAX {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many recent signed requests; retry shortly",
            ));
        }
        let key = (signer.key, signer.nonce.clone());
        Ok(seen.insert(key, signer.expires_s).is_none())
    }

    /// Checks a consortium request: a current, unseen signature by a key `allowed` admits.
    pub async fn check(
        &self,
        request: &Parts,
        body: Bytes,
        now_ms: u64,
        allowed: Allowed,
    ) -> Result<Signer, ApiError> {
        let now_s = now_ms / 1_000;
        let (method, uri, headers) = (&request.method, &request.uri, &request.headers);
        let signer = auth::verify(method, uri, headers, body, now_s, |key| {
            self.allows(key, allowed)
        })
        .await
        .map_err(refusal)?;
        if !self.first_use(&signer, now_s)? {
            return Err(refusal(AuthError::Replayed));
        }
        Ok(signer)
    }

    /// Whether `key` is a node key in genesis.
    pub fn is_node(&self, key: &PublicKey) -> bool {
        self.read().1.get(key) == Some(&Member::Node)
    }
}

/// The 401 answer for a refused signature.
fn refusal(error: AuthError) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, error.code(), error.to_string()).with_header(
        "accept-signature",
        "bansos=(\"@method\" \"@path\" \"@query\");tag=\"bansos\"",
    )
}
