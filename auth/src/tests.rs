use super::*;
use ed25519_dalek::{Signature, Verifier as _};
use futures::executor::block_on;

const NOW: u64 = 1_790_000_000;
const NONCE: &str = "0123456789abcdef0123456789abcdef";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

fn signed(method: &str, uri: &str, body: &[u8], key: &SigningKey, now: u64) -> HeaderMap {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let uri: Uri = uri.parse().expect("uri");
    block_on(sign(&method, &uri, body, key, now, NONCE)).expect("signs")
}

fn check(
    method: &str,
    uri: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: u64,
    members: &[PublicKey],
) -> Result<Signer, AuthError> {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let uri: Uri = uri.parse().expect("uri");
    block_on(verify(
        &method,
        &uri,
        headers,
        Bytes::copy_from_slice(body),
        now,
        |k| members.contains(k),
    ))
}

#[test]
fn a_signed_request_verifies_and_names_its_signer() {
    let k = key(1);
    let headers = signed("GET", "http://node:8701/v1/log/leaf/7?x=1", b"", &k, NOW);
    // A node sees the origin form of the URI; the signature covers path and query only.
    let signer = check(
        "GET",
        "/v1/log/leaf/7?x=1",
        &headers,
        b"",
        NOW,
        &[public(&k)],
    )
    .expect("verifies");
    assert_eq!(signer.key, public(&k));
    assert_eq!(signer.nonce, NONCE);
    assert_eq!(signer.expires_s, NOW + SIGNATURE_LIFETIME_S);
    let body = br#"[{"tx":1}]"#;
    let headers = signed("POST", "http://node/v1/txs", body, &k, NOW);
    assert!(headers.contains_key("content-digest"));
    check("POST", "/v1/txs", &headers, body, NOW, &[public(&k)]).expect("verifies");
}

/// The signature base rebuilt by hand from RFC 9421 §2.5, verified with ed25519-dalek: what
/// the crate produces is the standard's signature, not a private format.
#[test]
fn the_signature_is_rfc_9421_over_the_documented_base() {
    let k = key(2);
    let headers = signed("GET", "http://node/tile/entries/000?a=b", b"", &k, NOW);
    let input = headers["signature-input"].to_str().expect("ascii");
    let params = input.strip_prefix("bansos=").expect("labelled bansos");
    let base = format!(
        "\"@method\": GET\n\"@path\": /tile/entries/000\n\"@query\": ?a=b\n\"@signature-params\": {params}"
    );
    assert!(
        params.starts_with("(\"@method\" \"@path\" \"@query\");"),
        "{params}"
    );
    for part in [
        format!("created={NOW}"),
        format!("expires={}", NOW + SIGNATURE_LIFETIME_S),
        format!("nonce=\"{NONCE}\""),
        "alg=\"ed25519\"".to_owned(),
        format!("keyid=\"{}\"", public(&k)),
        "tag=\"bansos\"".to_owned(),
    ] {
        assert!(params.contains(&part), "{part} in {params}");
    }
    let value = headers["signature"].to_str().expect("ascii");
    let b64 = value
        .strip_prefix("bansos=:")
        .and_then(|v| v.strip_suffix(':'))
        .expect("a byte sequence");
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let signature = Signature::from_slice(&bytes).expect("64 bytes");
    k.verifying_key()
        .verify(base.as_bytes(), &signature)
        .expect("the hand-built base is what was signed");
}

#[test]
fn a_changed_request_is_refused() {
    let k = key(3);
    let members = [public(&k)];
    let body = b"checkpoint note";
    let headers = signed("POST", "/v1/checkpoint/signatures", body, &k, NOW);
    let cases: [(&str, &str, &[u8], &str); 4] = [
        (
            "POST",
            "/v1/checkpoint/signatures",
            b"another note",
            "bad_content_digest",
        ),
        ("POST", "/v1/txs", body, "bad_signature"),
        ("PUT", "/v1/checkpoint/signatures", body, "bad_signature"),
        ("POST", "/v1/checkpoint/signatures?x", body, "bad_signature"),
    ];
    for (method, uri, body, code) in cases {
        let error = check(method, uri, &headers, body, NOW, &members).expect_err(uri);
        assert_eq!(error.code(), code, "{method} {uri}: {error}");
    }
}

#[test]
fn unsigned_unknown_expired_and_future_signatures_are_refused() {
    let k = key(4);
    let members = [public(&k)];
    let headers = signed("GET", "/v1/log/leaf/0", b"", &k, NOW);
    let ok = |now| check("GET", "/v1/log/leaf/0", &headers, b"", now, &members);
    assert!(
        ok(NOW + SIGNATURE_LIFETIME_S).is_ok(),
        "valid to its last second"
    );
    let cases = [
        (
            check(
                "GET",
                "/v1/log/leaf/0",
                &HeaderMap::new(),
                b"",
                NOW,
                &members,
            ),
            "signature_required",
        ),
        (
            check(
                "GET",
                "/v1/log/leaf/0",
                &headers,
                b"",
                NOW,
                &[public(&key(5))],
            ),
            "unknown_key",
        ),
        (ok(NOW + SIGNATURE_LIFETIME_S + 1), "signature_expired"),
        (ok(NOW - CLOCK_SKEW_S_MAX - 1), "signature_expired"),
    ];
    for (result, code) in cases {
        assert_eq!(result.expect_err(code).code(), code);
    }
}

#[test]
fn signatures_that_leave_something_out_or_live_too_long_are_refused() {
    let k = key(6);
    let members = [public(&k)];
    let secret = SecretKey::from_bytes(&AlgorithmName::Ed25519, &k.to_bytes()).expect("key");
    let forge = |components: &[&str], expires: u64, nonce: &str, tag: &str| {
        let ids: Vec<_> = components
            .iter()
            .map(|c| HttpMessageComponentId::try_from(*c).expect("id"))
            .collect();
        let mut params = HttpSignatureParams::try_new(&ids).expect("params");
        params
            .set_created(NOW)
            .set_expires(expires)
            .set_nonce(nonce)
            .set_keyid(&public(&k).to_string())
            .set_tag(tag);
        let mut request = Request::builder()
            .uri("/v1/log/leaf/0")
            .body(Full::new(Bytes::new()))
            .expect("request");
        block_on(request.set_message_signature(&params, &secret, Some(SIGNATURE_LABEL)))
            .expect("signs");
        request.headers().clone()
    };
    let all = ["@method", "@path", "@query"];
    let later = NOW + 10;
    let cases = [
        (
            forge(&["@method", "@query"], later, NONCE, "bansos"),
            "bad_signature_input",
        ),
        (
            forge(&all, NOW + SIGNATURE_LIFETIME_S + 1, NONCE, "bansos"),
            "signature_expired",
        ),
        (forge(&all, later, "short", "bansos"), "bad_signature_input"),
        (forge(&all, later, NONCE, "other"), "bad_signature_input"),
    ];
    for (headers, code) in cases {
        let error = check("GET", "/v1/log/leaf/0", &headers, b"", NOW, &members).expect_err(code);
        assert_eq!(error.code(), code, "{error}");
    }
    assert!(check(
        "GET",
        "/v1/log/leaf/0",
        &forge(&all, later, NONCE, "bansos"),
        b"",
        NOW,
        &members
    )
    .is_ok());
}

/// A key made ready once signs request after request as that key, over the same parameters
/// as `sign` (the signatures themselves differ: the signer adds randomness to each).
#[test]
fn a_key_made_ready_once_signs_every_request_as_its_holder() {
    let (k, other) = (key(4), key(5));
    let ready = RequestKey::new(&k).expect("ready");
    let uri: Uri = "http://node/v1/txs".parse().expect("uri");
    for body in [&b"[1]"[..], b"[2]"] {
        let headers =
            block_on(sign_with(&Method::POST, &uri, body, &ready, NOW, NONCE)).expect("signs");
        let by_sign = signed("POST", "http://node/v1/txs", body, &k, NOW);
        assert_eq!(headers["signature-input"], by_sign["signature-input"]);
        let signer = check("POST", "/v1/txs", &headers, body, NOW, &[public(&k)]);
        assert_eq!(signer.expect("verifies").key, public(&k));
        let as_other = check("POST", "/v1/txs", &headers, body, NOW, &[public(&other)]);
        assert!(as_other.is_err());
    }
}
