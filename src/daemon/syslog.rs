//! The syslog receiver installers log to (`log_host` in d-i, `inst.syslog` in anaconda,
//! rsyslog in autoinstall): each UDP datagram from a machine's address becomes an
//! `InstallerLogged` event of that machine, so `nmt history` shows its install log — the
//! answer to Roger's hung remote install. Datagrams go through the receiver's
//! [`nmt_replay::Pipeline`], batched into one commit per 200 ms.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use jiff::Timestamp;
use nmt_replay::Pipeline;
use tokio::net::UdpSocket;

use super::Shared;

const FLUSH_EVERY: Duration = Duration::from_millis(200);
const FLUSH_AT: usize = 2000;

/// Bind the receiver.
pub async fn bind(addr: &str) -> Result<UdpSocket> {
    UdpSocket::bind(addr)
        .await
        .with_context(|| format!("while binding the syslog receiver {addr}"))
}

type Datagram = (SocketAddr, Vec<u8>, Timestamp);

/// Receive until the process ends.
pub fn start(shared: Arc<Shared>, socket: UdpSocket) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        let mut pending: Vec<Datagram> = Vec::new();
        let mut pipeline = Some(Pipeline::syslog());
        loop {
            let got = tokio::time::timeout(FLUSH_EVERY, socket.recv_from(&mut buf)).await;
            if let Ok(Ok((n, peer))) = got {
                pending.push((peer, buf[..n].to_vec(), Timestamp::now()));
                if pending.len() < FLUSH_AT {
                    continue;
                }
            }
            if pending.is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut pending);
            let sh = shared.clone();
            let mut p = pipeline.take().unwrap_or_else(Pipeline::syslog);
            pipeline = tokio::task::spawn_blocking(move || {
                flush(&sh, &mut p, batch);
                p
            })
            .await
            .ok();
        }
    });
}

/// Commit a batch of datagrams through the receiver's pipeline; installer log lines from
/// addresses no machine was given are counted for `nmt status`, not recorded. Datagrams
/// that cannot be committed are gone (UDP keeps nothing to read again): logged.
fn flush(shared: &Shared, pipeline: &mut Pipeline, batch: Vec<Datagram>) {
    let before = pipeline.counts().unattributed;
    for (peer, datagram, at) in batch {
        match peer.ip() {
            IpAddr::V4(ip) => pipeline.datagram(ip, &datagram, at),
            IpAddr::V6(_) => pipeline.unattributed(),
        }
    }
    let result = {
        let mut engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
        pipeline.flush(&mut *engine)
    };
    match result {
        Ok(done) => {
            if let Some(e) = done.render_error {
                tracing::warn!("installer log lines recorded, but {e}");
            }
        }
        Err(e) => tracing::warn!("installer log lines not recorded: {e}"),
    }
    let unattributed = pipeline.counts().unattributed - before;
    if unattributed > 0 {
        shared
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .syslog_unattributed += unattributed;
    }
}
