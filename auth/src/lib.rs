//! # bansos-auth: who may read consortium data (DESIGN §4)
//!
//! Consortium endpoints (full blocks, log leaves, entry bundles, key activity, node-to-node
//! pushes) answer only requests that carry an HTTP Message Signature (RFC 9421) by an
//! Ed25519 key listed in genesis: an institution's transaction key, a validator's or an
//! observer's node key. This crate is the one definition of that signature, used by the
//! client to sign and by the node to check.
//!
//! The signature (label `bansos`) covers `@method`, `@path`, `@query` and, when the request
//! has a body, its `content-digest` (RFC 9530, SHA-256), and carries the parameters
//! `created`, `expires` (at most [`SIGNATURE_LIFETIME_S`] later), a random `nonce`,
//! `keyid` (the key, hex, as genesis lists it), `alg="ed25519"` and `tag="bansos"`. A
//! node refuses an expired signature and one it has seen before (see the node's replay
//! guard); `@authority` is not covered, so that a reverse proxy in front of a node may
//! rewrite the host.
//!
//! RFC 9421 itself (signature bases, structured fields, Content-Digest) is `httpsig-hyper`'s
//! work; this crate fixes what is covered and checks the parameters.

use base64::Engine as _;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::Full;
use httpsig_hyper::prelude::{
    message_component::HttpMessageComponentId, AlgorithmName, HttpSignatureBase,
    HttpSignatureHeaders, HttpSignatureParams, SecretKey,
};
use httpsig_hyper::{ContentDigestType, MessageSignatureReq, RequestContentDigest};
use ledger::types::{PublicKey, SignatureBytes};

/// The signature's label in `Signature-Input` and `Signature`.
pub const SIGNATURE_LABEL: &str = "bansos";
/// The `tag` parameter: what the signature is for (RFC 9421 §2.3).
pub const SIGNATURE_TAG: &str = "bansos";
/// The longest a signature may be valid, from `created` to `expires`, in seconds.
pub const SIGNATURE_LIFETIME_S: u64 = 60;
/// How far in the future a signature's `created` may be (clocks differ), in seconds.
pub const CLOCK_SKEW_S_MAX: u64 = 30;
/// A nonce's length in hex digits, at least and at most.
pub const NONCE_HEX_MIN: usize = 16;
pub const NONCE_HEX_MAX: usize = 64;
/// The most bytes of `Signature-Input` plus `Signature` a node parses.
pub const SIGNATURE_HEADERS_BYTES_MAX: usize = 2_048;
/// The headers a signed request carries (besides its own).
pub const SIGNATURE_HEADERS: [&str; 3] = ["signature-input", "signature", "content-digest"];

/// The components every signature covers; `content-digest` is added when there is a body.
const COVERED: [&str; 3] = ["@method", "@path", "@query"];
const CONTENT_DIGEST: &str = "content-digest";

/// Why a request's signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("this is consortium data: sign the request (RFC 9421 HTTP Message Signature, Ed25519, a key listed in genesis)")]
    Missing,
    #[error("the signature headers are malformed: {0}")]
    Malformed(String),
    #[error("the signature does not cover {0}")]
    Uncovered(&'static str),
    #[error("key {0} is not listed in genesis")]
    UnknownKey(String),
    #[error("the signature expired at {expires} (unix seconds; now {now})")]
    Expired { expires: u64, now: u64 },
    #[error("the signature's created time {created} is ahead of this node's clock ({now})")]
    NotYetValid { created: u64, now: u64 },
    #[error("the signature is valid for {0} s; at most {SIGNATURE_LIFETIME_S} s")]
    TooLong(u64),
    #[error("the signature does not verify: {0}")]
    BadSignature(String),
    #[error("Content-Digest: {0}")]
    BadDigest(String),
    #[error("this signature was already used (a replay)")]
    Replayed,
    #[error("cannot sign the request: {0}")]
    Sign(String),
}

impl AuthError {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "signature_required",
            AuthError::Malformed(_) | AuthError::Uncovered(_) => "bad_signature_input",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::Expired { .. } | AuthError::NotYetValid { .. } | AuthError::TooLong(_) => {
                "signature_expired"
            }
            AuthError::BadSignature(_) => "bad_signature",
            AuthError::BadDigest(_) => "bad_content_digest",
            AuthError::Replayed => "signature_replayed",
            AuthError::Sign(_) => "sign_failed",
        }
    }
}

/// A request whose signature held: who signed it, and what a replay guard must remember.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    pub key: PublicKey,
    pub nonce: String,
    /// Until when (unix seconds) the signature could be replayed.
    pub expires_s: u64,
}

/// The components a signature must cover, by name.
fn covered_names(body: bool) -> impl Iterator<Item = &'static str> {
    COVERED.into_iter().chain(body.then_some(CONTENT_DIGEST))
}

fn component_id(name: &str) -> Result<HttpMessageComponentId, AuthError> {
    HttpMessageComponentId::try_from(name).map_err(|e| AuthError::Sign(e.to_string()))
}

fn request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, AuthError> {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .body(Full::new(body))
        .map_err(|e| AuthError::Malformed(e.to_string()))?;
    *request.headers_mut() = headers.clone();
    Ok(request)
}

/// A key made ready to sign requests: the expanded secret and the `keyid`, derived once
/// (deriving them is a base-point multiplication, as costly as the signature itself, and a
/// node signs every relay request and checkpoint push).
#[derive(Clone)]
pub struct RequestKey {
    secret: SecretKey,
    keyid: String,
}

impl RequestKey {
    /// `key` ready to sign requests.
    pub fn new(key: &SigningKey) -> Result<RequestKey, AuthError> {
        let secret = SecretKey::from_bytes(&AlgorithmName::Ed25519, &key.to_bytes())
            .map_err(|e| AuthError::Sign(e.to_string()))?;
        Ok(RequestKey {
            secret,
            keyid: hex::encode(key.verifying_key().to_bytes()),
        })
    }
}

/// The headers that sign a request of `method` to `uri` with `body` as `key`'s holder, at
/// `now_s` (unix seconds), with `nonce` (hex, random per request): `Content-Digest` (when
/// there is a body), `Signature-Input` and `Signature`.
pub async fn sign(
    method: &Method,
    uri: &Uri,
    body: &[u8],
    key: &SigningKey,
    now_s: u64,
    nonce: &str,
) -> Result<HeaderMap, AuthError> {
    sign_with(method, uri, body, &RequestKey::new(key)?, now_s, nonce).await
}

/// [`sign`] with a key made ready once.
pub async fn sign_with(
    method: &Method,
    uri: &Uri,
    body: &[u8],
    key: &RequestKey,
    now_s: u64,
    nonce: &str,
) -> Result<HeaderMap, AuthError> {
    let has_body = !body.is_empty();
    let request = request(method, uri, &HeaderMap::new(), Bytes::copy_from_slice(body))?;
    let mut request = if has_body {
        let digested = request
            .set_content_digest(&ContentDigestType::Sha256)
            .await
            .map_err(|e| AuthError::Sign(e.to_string()))?;
        let (parts, _) = digested.into_parts();
        Request::from_parts(parts, Full::new(Bytes::new()))
    } else {
        request
    };
    let ids = covered_names(has_body)
        .map(component_id)
        .collect::<Result<Vec<_>, _>>()?;
    let mut params =
        HttpSignatureParams::try_new(&ids).map_err(|e| AuthError::Sign(e.to_string()))?;
    params
        .set_created(now_s)
        .set_expires(now_s + SIGNATURE_LIFETIME_S)
        .set_nonce(nonce)
        .set_alg(&AlgorithmName::Ed25519)
        .set_keyid(&key.keyid)
        .set_tag(SIGNATURE_TAG);
    request
        .set_message_signature(&params, &key.secret, Some(SIGNATURE_LABEL))
        .await
        .map_err(|e| AuthError::Sign(e.to_string()))?;
    let mut headers = request.headers().clone();
    headers.remove(http::header::CONTENT_TYPE);
    Ok(headers)
}

/// A fresh random nonce: 128 bits, hex.
pub fn fresh_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// [`sign`] with a fresh nonce.
pub async fn sign_fresh(
    method: &Method,
    uri: &Uri,
    body: &[u8],
    key: &SigningKey,
    now_s: u64,
) -> Result<HeaderMap, AuthError> {
    sign(method, uri, body, key, now_s, &fresh_nonce()).await
}

/// [`sign_with`] with a fresh nonce.
pub async fn sign_fresh_with(
    method: &Method,
    uri: &Uri,
    body: &[u8],
    key: &RequestKey,
    now_s: u64,
) -> Result<HeaderMap, AuthError> {
    sign_with(method, uri, body, key, now_s, &fresh_nonce()).await
}

/// The one signature's parameters, checked for what every consortium signature must
/// carry; returns the key it names.
fn check_params(params: &HttpSignatureParams, has_body: bool) -> Result<PublicKey, AuthError> {
    if params.tag.as_deref() != Some(SIGNATURE_TAG) {
        return Err(AuthError::Malformed(format!(
            "tag must be {SIGNATURE_TAG:?}"
        )));
    }
    if params.alg.as_deref().is_some_and(|alg| alg != "ed25519") {
        return Err(AuthError::Malformed("alg must be \"ed25519\"".into()));
    }
    let nonce = params.nonce.as_deref().unwrap_or_default();
    let nonce_ok = (NONCE_HEX_MIN..=NONCE_HEX_MAX).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_hexdigit());
    if !nonce_ok {
        return Err(AuthError::Malformed(format!(
            "nonce must be {NONCE_HEX_MIN} to {NONCE_HEX_MAX} hex digits"
        )));
    }
    for name in covered_names(has_body) {
        if !params.covered_components.contains(&component_id(name)?) {
            return Err(AuthError::Uncovered(name));
        }
    }
    let keyid = params
        .keyid
        .as_deref()
        .ok_or_else(|| AuthError::Malformed("no keyid".into()))?;
    PublicKey::from_hex(keyid)
        .map_err(|e| AuthError::Malformed(format!("keyid is not a hex ed25519 key: {e}")))
}

/// Whether the signature is current at `now_s`: created at most [`CLOCK_SKEW_S_MAX`]
/// ahead, not expired, valid for at most [`SIGNATURE_LIFETIME_S`].
fn check_times(params: &HttpSignatureParams, now_s: u64) -> Result<u64, AuthError> {
    let (Some(created), Some(expires)) = (params.created, params.expires) else {
        return Err(AuthError::Malformed(
            "created and expires are required".into(),
        ));
    };
    if created > now_s + CLOCK_SKEW_S_MAX {
        return Err(AuthError::NotYetValid {
            created,
            now: now_s,
        });
    }
    if expires < now_s {
        return Err(AuthError::Expired {
            expires,
            now: now_s,
        });
    }
    let lifetime = expires.saturating_sub(created);
    if lifetime > SIGNATURE_LIFETIME_S {
        return Err(AuthError::TooLong(lifetime));
    }
    Ok(expires)
}

/// The request's one signature, labelled [`SIGNATURE_LABEL`], with the base it signs.
fn the_signature(
    request: &Request<Full<Bytes>>,
) -> Result<(HttpSignatureBase, HttpSignatureHeaders), AuthError> {
    let mut all = request
        .extract_signatures()
        .map_err(|e| AuthError::Malformed(e.to_string()))?;
    match (all.len(), all.shift_remove(SIGNATURE_LABEL)) {
        (1, Some(one)) => Ok(one),
        _ => Err(AuthError::Malformed(format!(
            "expected exactly one signature, labelled {SIGNATURE_LABEL:?}"
        ))),
    }
}

/// Checks a request's consortium signature at `now_s`: one signature labelled
/// [`SIGNATURE_LABEL`], covering what it must, current, by a key `is_member` accepts,
/// valid, and, with a body, a `Content-Digest` that matches it. Replays are the caller's
/// to refuse (it keeps the nonces).
pub async fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    now_s: u64,
    is_member: impl Fn(&PublicKey) -> bool,
) -> Result<Signer, AuthError> {
    let header_bytes: usize = ["signature-input", "signature"]
        .iter()
        .flat_map(|name| headers.get_all(*name))
        .map(|value| value.len())
        .sum();
    if header_bytes == 0 {
        return Err(AuthError::Missing);
    }
    if header_bytes > SIGNATURE_HEADERS_BYTES_MAX {
        return Err(AuthError::Malformed(format!(
            "{header_bytes} bytes of signature headers; at most {SIGNATURE_HEADERS_BYTES_MAX}"
        )));
    }
    let has_body = !body.is_empty();
    let request = request(method, uri, headers, body)?;
    let (base, signature) = the_signature(&request)?;
    let params = signature.signature_params();
    let key = check_params(params, has_body)?;
    let expires_s = check_times(params, now_s)?;
    if !is_member(&key) {
        return Err(AuthError::UnknownKey(key.to_string()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(signature.signature().to_string())
        .map_err(|e| AuthError::Malformed(e.to_string()))?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| AuthError::BadSignature("not 64 bytes".into()))?;
    // Checked here rather than by the crate, which judges expiry by the system clock: the
    // node's clock decides, and the chain's one signature rule applies.
    if !ledger::signature::verify(&key, &base.as_bytes(), &SignatureBytes(bytes)) {
        return Err(AuthError::BadSignature(
            "not the key's signature over this request".into(),
        ));
    }
    let nonce = params.nonce.clone().unwrap_or_default();
    if has_body {
        request
            .verify_content_digest()
            .await
            .map_err(|e| AuthError::BadDigest(e.to_string()))?;
    }
    Ok(Signer {
        key,
        nonce,
        expires_s,
    })
}

#[cfg(test)]
mod tests;
