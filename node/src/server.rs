//! The HTTP server loop: accepts connections up to a cap, and gives each client a bounded
//! time to send its request headers, so that slow or idle clients cannot hold the node's
//! connections (the request-level limits, per client and in total, are in [`crate::api`]).
//!
//! Built on hyper's HTTP/1 connection builder rather than `axum::serve`, which sets
//! neither limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt as _;
use tracing::{debug, warn};

/// Open connections at once; a connection over the cap is closed at once. Well under the
/// usual limit of 1,024 open files, which RocksDB and libp2p share.
pub const CONNECTIONS_MAX: usize = 256;
/// Open connections from one IP address (loopback excepted: local tools and tests).
pub const CONNECTIONS_PER_CLIENT_MAX: usize = 32;
/// Time a client has to send a request's headers, from the connection's start or from the
/// previous response on a kept-alive connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a response may wait on a client that does not read it (no byte accepted by the
/// socket) before the connection is closed.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed accept (out of file descriptors, say) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The server's connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    pub connections_max: usize,
    pub connections_per_client_max: usize,
    /// Whether loopback clients are exempt from the per-client cap.
    pub loopback_exempt: bool,
    pub header_read_timeout: Duration,
    pub write_stall_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            connections_max: CONNECTIONS_MAX,
            connections_per_client_max: CONNECTIONS_PER_CLIENT_MAX,
            loopback_exempt: true,
            header_read_timeout: HEADER_READ_TIMEOUT,
            write_stall_timeout: WRITE_STALL_TIMEOUT,
        }
    }
}

/// Things in flight (connections here, requests in `api`), counted in total and per
/// client address, each under its own cap. A client given as `None` counts toward the
/// total only.
pub struct InFlight {
    total_max: usize,
    per_client_max: usize,
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One thing's place among those in flight; given back on drop.
pub struct InFlightSlot {
    owner: Arc<InFlight>,
    client: Option<IpAddr>,
}

impl InFlight {
    pub fn new(total_max: usize, per_client_max: usize) -> Arc<InFlight> {
        Arc::new(InFlight {
            total_max,
            per_client_max,
            counts: Mutex::new((0, HashMap::new())),
        })
    }

    /// A place for one more from `client`, if both caps leave room.
    pub fn enter(self: &Arc<Self>, client: Option<IpAddr>) -> Option<InFlightSlot> {
        let mut guard = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_client) = &mut *guard;
        if *total >= self.total_max {
            return None;
        }
        if let Some(ip) = client {
            let count = per_client.entry(ip).or_insert(0);
            if *count >= self.per_client_max {
                return None;
            }
            *count += 1;
        }
        *total += 1;
        Some(InFlightSlot {
            owner: self.clone(),
            client,
        })
    }
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        let mut guard = self.owner.counts.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_client) = &mut *guard;
        *total = total.saturating_sub(1);
        if let Some(ip) = self.client {
            if let Some(count) = per_client.get_mut(&ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    per_client.remove(&ip);
                }
            }
        }
    }
}

/// Serves `router` on `listener` until the task is dropped. Each request carries the
/// client's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(listener: TcpListener, router: Router, limits: ServerLimits) {
    let connections = InFlight::new(limits.connections_max, limits.connections_per_client_max);
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "accepting an HTTP connection failed");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let exempt = limits.loopback_exempt && client.ip().is_loopback();
        let Some(slot) = connections.enter((!exempt).then_some(client.ip())) else {
            debug!(%client, "closing a connection over the cap");
            drop(stream);
            continue;
        };
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(client));
                request
            });
        // A client that stops reading its response fails the write after the stall time.
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.write_stall_timeout));
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(
                    TokioIo::new(Box::pin(stream)),
                    TowerToHyperService::new(service),
                );
            if let Err(error) = connection.await {
                debug!(%client, %error, "HTTP connection ended with an error");
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn start(limits: ServerLimits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = Router::new()
            .route(
                "/",
                get(|ConnectInfo(client): ConnectInfo<SocketAddr>| async move {
                    client.ip().to_string()
                }),
            )
            .route("/big", get(|| async { vec![b'x'; BIG_RESPONSE_BYTES] }));
        tokio::spawn(serve(listener, router, limits));
        address
    }

    /// Far more than the sockets' buffers hold, so that the server waits on the client.
    const BIG_RESPONSE_BYTES: usize = 64 << 20;

    /// Reads until the server closes the connection; the bytes read, or `None` if it is
    /// still open after `wait`.
    async fn read_to_close(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        tokio::time::timeout(wait, stream.read_to_end(&mut bytes))
            .await
            .ok()
            .map(|r| r.map(|_| bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_disconnected() {
        let limits = ServerLimits {
            header_read_timeout: Duration::from_millis(300),
            ..ServerLimits::default()
        };
        let address = start(limits).await;
        let mut slow = TcpStream::connect(address).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let closed = read_to_close(&mut slow, Duration::from_secs(5)).await;
        assert!(
            closed.is_some(),
            "the server kept a connection without headers open"
        );
        // A client that sends its request in time is answered, with its address known.
        let mut prompt = TcpStream::connect(address).await.unwrap();
        prompt
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut prompt, Duration::from_secs(5))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("127.0.0.1"), "{text}");
    }

    #[tokio::test]
    async fn one_client_cannot_take_every_connection() {
        let limits = ServerLimits {
            connections_per_client_max: 1,
            loopback_exempt: false,
            header_read_timeout: Duration::from_secs(30),
            ..ServerLimits::default()
        };
        let address = start(limits).await;
        let _held = TcpStream::connect(address).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut second = TcpStream::connect(address).await.unwrap();
        let closed = read_to_close(&mut second, Duration::from_secs(5)).await;
        assert_eq!(
            closed,
            Some(Vec::new()),
            "a second connection of one client was kept"
        );
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_and_room_returns_when_one_ends() {
        let limits = ServerLimits {
            connections_max: 2,
            header_read_timeout: Duration::from_secs(30),
            ..ServerLimits::default()
        };
        let address = start(limits).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(TcpStream::connect(address).await.unwrap());
        }
        // Give the server time to accept both before the third arrives.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(address).await.unwrap();
        let closed = read_to_close(&mut third, Duration::from_secs(5)).await;
        assert_eq!(closed, Some(Vec::new()), "a third connection was kept");
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = TcpStream::connect(address).await.unwrap();
        again
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut again, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_its_response_is_disconnected_and_its_place_freed() {
        let limits = ServerLimits {
            connections_max: 1,
            write_stall_timeout: Duration::from_millis(500),
            ..ServerLimits::default()
        };
        let address = start(limits).await;
        let mut stalled = TcpStream::connect(address).await.unwrap();
        stalled
            .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // The client reads nothing; the server must give up on it and take the next one.
        let started = std::time::Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the stalled connection still holds the only place"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut next = TcpStream::connect(address).await.unwrap();
            next.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let answer = read_to_close(&mut next, Duration::from_secs(5))
                .await
                .unwrap_or_default();
            if String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200") {
                break;
            }
        }
        // The stalled client gets a cut-off response, never the whole body.
        let mut received = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut received))
            .await
            .expect("the server closed the stalled connection");
        assert!(received.len() < BIG_RESPONSE_BYTES, "{}", received.len());
    }
}
