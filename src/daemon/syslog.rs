//! The syslog receiver installers log to (`log_host` in d-i, `inst.syslog` in anaconda,
//! rsyslog in autoinstall): each UDP datagram from a machine's address becomes an
//! `InstallerLogged` event of that machine, so `nmt history` shows its install log — the
//! answer to Roger's hung remote install. Datagrams are batched into one commit per 200 ms.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use jiff::Timestamp;
use nmt_projections::{Event, Source, untrusted};
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

/// The message of a syslog datagram: the `<PRI>` dropped, at most one line.
fn message(datagram: &[u8]) -> String {
    let mut d = datagram;
    if d.first() == Some(&b'<')
        && let Some(end) = d.iter().take(6).position(|b| *b == b'>')
    {
        d = &d[end + 1..];
    }
    let d = d.strip_suffix(b"\n").unwrap_or(d);
    untrusted(d)
}

/// Receive until the process ends.
pub fn start(shared: Arc<Shared>, socket: UdpSocket) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        let mut pending: Vec<(SocketAddr, String, Timestamp)> = Vec::new();
        loop {
            let got = tokio::time::timeout(FLUSH_EVERY, socket.recv_from(&mut buf)).await;
            if let Ok(Ok((n, peer))) = got {
                pending.push((peer, message(&buf[..n]), Timestamp::now()));
                if pending.len() < FLUSH_AT {
                    continue;
                }
            }
            if pending.is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut pending);
            let sh = shared.clone();
            let _ = tokio::task::spawn_blocking(move || flush(&sh, batch)).await;
        }
    });
}

fn flush(shared: &Shared, batch: Vec<(SocketAddr, String, Timestamp)>) {
    let mut engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
    let mut unattributed = 0u64;
    for (peer, line, at) in batch {
        let IpAddr::V4(ip) = peer.ip() else {
            unattributed += 1;
            continue;
        };
        let st = engine.state();
        let Some(m) = st.machine_by_lease(&ip).or_else(|| st.machine_by_ip(&ip)) else {
            unattributed += 1;
            continue;
        };
        let (mac, actor) = match &m.name {
            Some(n) => (m.mac, format!("installer@{n}")),
            None => (m.mac, format!("installer@{}", m.mac)),
        };
        let source = Source {
            stream: format!("syslog:{ip}"),
            offset: None,
        };
        if let Err(e) = engine.append(
            vec![Event::InstallerLogged { mac, ip, line }],
            &actor,
            at,
            Some(source),
        ) {
            tracing::warn!("installer log line not recorded: {e:#}");
        }
    }
    drop(engine);
    if unattributed > 0 {
        shared
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .syslog_unattributed += unattributed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_priority_goes_and_the_text_stays_data() {
        assert_eq!(
            message(b"<13>main-menu[312]: INFO: Menu item 'partman'"),
            "main-menu[312]: INFO: Menu item 'partman'"
        );
        assert_eq!(message(b"plain\n"), "plain");
        assert_eq!(message(b"<13>a\x1b[2Jb"), "a\\u{1b}[2Jb");
    }
}
