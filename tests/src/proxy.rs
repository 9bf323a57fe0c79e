//! An HTTP proxy on 127.0.0.1 in front of a node that alters one block on its way: what an
//! auditor reading a node through an untrusted network (or a lying node) would get.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The most bytes of a request or response body the proxy carries.
const BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A running proxy; it stops when dropped.
pub struct TamperingProxy {
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Clone)]
struct Target {
    upstream: String,
    /// The path whose JSON answer is altered: `/v1/blocks/{height}`.
    path: String,
    client: reqwest::Client,
}

impl TamperingProxy {
    /// Forwards everything to `upstream` (`http://host:port`) and flips one hex digit of
    /// the first transaction's signature in the block at `height`.
    pub fn start(upstream: &str, height: u64) -> TamperingProxy {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a port on 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let target = Target {
            upstream: upstream.trim_end_matches('/').to_owned(),
            path: format!("/v1/blocks/{height}"),
            client: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(forward).with_state(target);
        runtime.spawn(async move { axum::serve(listener, app).await });
        TamperingProxy {
            url,
            _runtime: runtime,
        }
    }
}

async fn forward(State(target): State<Target>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_BYTES_MAX).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            headers.append(name, value.clone());
        }
    }
    let sent = target
        .client
        .request(parts.method, format!("{}{path}", target.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(answer) = sent else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let Ok(bytes) = answer.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let bytes = if parts.uri.path() == target.path {
        tamper(&bytes)
    } else {
        bytes
    };
    (status, Body::from(bytes)).into_response()
}

/// The block JSON with one hex digit of its first transaction's signature changed.
fn tamper(bytes: &Bytes) -> Bytes {
    let mut block: serde_json::Value = serde_json::from_slice(bytes).expect("a block as JSON");
    let signature = block["txs"][0]["tx"]["signature"]
        .as_str()
        .expect("a block with a transaction")
        .to_owned();
    let flipped = if signature.ends_with('0') { '1' } else { '0' };
    let altered = format!("{}{flipped}", &signature[..signature.len() - 1]);
    block["txs"][0]["tx"]["signature"] = serde_json::Value::String(altered);
    Bytes::from(serde_json::to_vec(&block).expect("JSON"))
}
