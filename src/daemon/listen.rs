//! Serving HTTP on a TCP listener that anyone on the network can reach: a client that sends
//! its request headers slowly, or its body slowly, is cut off; the connections open at once
//! are capped, in all and per client address, so that no client (nor a flood of them) can
//! use up nmtd's file descriptors and take the CLI socket, log ingest or rendering with it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// Refused connections are logged a few at a time (a flood would fill the log).
static REFUSED: super::throttle::Throttle =
    super::throttle::Throttle::new("connections refused (too many open at once)");

/// The limits of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once, from everyone.
    pub connections: usize,
    /// Connections open at once from one address.
    pub per_address: usize,
    /// How long a client may take to send a request's headers (also the idle time allowed
    /// between requests on a kept-alive connection).
    pub headers: Duration,
    /// How long a request's body may pause between two pieces of it.
    pub body_idle: Duration,
    /// How long a whole request may take: its body, and the answer.
    pub request: Duration,
}

/// File descriptors kept for everything but clients: the store, the followed logs, the
/// files being rendered, the CLI socket and its clients.
const RESERVED_FILES: u64 = 64;

impl Limits {
    /// For each of the TCP listeners (the machine-facing API, the web UI): together they
    /// leave [`RESERVED_FILES`] of the process's open-file limit to the rest of nmtd.
    pub fn tcp() -> Limits {
        let files = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        let connections = (files.saturating_sub(RESERVED_FILES) / 2).clamp(8, 512) as usize;
        Limits {
            connections,
            per_address: (connections / 8).clamp(2, 64),
            headers: Duration::from_secs(10),
            body_idle: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

/// How many connections each address has open.
type PerAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One address's connection slot, given back when dropped.
struct Slot {
    ip: IpAddr,
    table: PerAddress,
}

impl Slot {
    fn take(table: &PerAddress, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
        let n = t.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            table: table.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = t.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// Serve `app` on `listener` within `limits` until `stop` turns true (its routes carry their
/// time limits: see [`timed`]). Handlers see the
/// client's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(limits.connections));
    let per_address: PerAddress = Arc::default();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted:
                // pause instead of spinning, and go on.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permits = open.clone().try_acquire_owned().ok().zip(Slot::take(
            &per_address,
            peer.ip(),
            limits.per_address,
        ));
        let Some(permits) = permits else {
            // Closed at once: the cap holds. Said a few at a time, not for each one.
            if REFUSED.allow() {
                tracing::warn!(
                    %peer,
                    "connection refused: too many open at once (at most {} in all, {} per \
                     address)",
                    limits.connections,
                    limits.per_address
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let _permits = permits;
            serve_connection(stream, app, peer, limits).await;
        });
    }
}

/// `app` with the body and request timeouts of `limits` on every route (the routes of the
/// image streams have their own, see `imaging.rs`).
pub(crate) fn with_timeouts(app: Router, limits: Limits) -> Router {
    app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_idle,
    ))
    .layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request,
    ))
}

/// Serve HTTP/1.1 on one accepted connection from `peer` until it closes: `app` (its routes
/// carrying their time limits, see [`with_timeouts`]) sees the client's address as
/// `ConnectInfo<SocketAddr>`, and a client that sends its headers slowly is cut off.
pub(crate) async fn serve_connection<S>(stream: S, app: Router, peer: SocketAddr, limits: Limits)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = app.map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        req
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.headers)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
        .with_upgrades();
    let _ = conn.await;
}
