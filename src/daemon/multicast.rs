//! Multicast restores: when several machines restore the same image version at once, nmtd
//! sends each partition stream once, through a udpcast session (`udp-sender`) on the
//! provisioning interface, and the imagers join it (docs/imaging.md).
//!
//! A session gathers the machines expected to restore that version (those whose boot entry
//! restores it) for `[images] multicast_wait` seconds, or until all of them asked for the
//! manifest; then it sends. A machine that asks later, or loses the stream, gets its streams
//! over HTTP; a machine that never comes does not hold the others up for longer than the
//! wait. Each stream starts with the line `nmt-stream NAME@N STREAM SHA256`, which the imager
//! checks before a byte reaches its disk.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nmt_projections::{ImageRef, ImageVersion, Mac, Policy, State};
use tokio::io::AsyncWriteExt;

use crate::config::ImagesConfig;
use crate::images::ImageStore;

/// The sessions gathering or sending, by `NAME@VERSION`.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
    /// Sessions started so far (each takes the next pair of ports).
    started: Mutex<u16>,
}

struct Session {
    port: u16,
    joined: BTreeSet<Mac>,
    expected: usize,
    sending: bool,
}

/// How long one stream may take to send before the sender is stopped.
const STREAM_LIMIT: Duration = Duration::from_secs(4 * 3600);

/// Machines whose boot entry restores `v` now (their own policy, a one-shot, or their
/// group's), or that are restoring it.
pub fn expected(st: &State, v: &ImageVersion) -> BTreeSet<Mac> {
    let names_it = |p: &Policy| match p {
        Policy::RestoreImage { image } => ImageRef::parse(image)
            .ok()
            .and_then(|r| st.image_version(&r))
            .is_some_and(|x| x.name == v.name && x.version == v.version),
        _ => false,
    };
    st.machines()
        .filter(|m| {
            let (served, _) = st.served_policy(m);
            names_it(&served)
                || m.last_boot.as_ref().is_some_and(|b| names_it(&b.policy))
                || m.imaging
                    .as_ref()
                    .is_some_and(|j| j.image == v.name && j.version == v.version)
        })
        .map(|m| m.mac)
        .collect()
}

impl Sessions {
    /// `mac` starts restoring `v`: the `multicast PORTBASE ADDRESS` line its manifest gets,
    /// if a session serves it, and a new session to start with [`send`] when this machine
    /// opened one (more than one machine is expected).
    pub fn join(
        &self,
        cfg: &ImagesConfig,
        store: &ImageStore,
        st: &State,
        mac: Mac,
        v: &ImageVersion,
    ) -> (Option<String>, Option<Job>) {
        match self.join_inner(cfg, store, st, mac, v) {
            Some((line, job)) => (Some(line), job),
            None => (None, None),
        }
    }

    fn join_inner(
        &self,
        cfg: &ImagesConfig,
        store: &ImageStore,
        st: &State,
        mac: Mac,
        v: &ImageVersion,
    ) -> Option<(String, Option<Job>)> {
        let interface = cfg.multicast_interface.clone()?;
        let key = format!("{}@{}", v.name, v.version);
        let mut sessions = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sessions.get_mut(&key) {
            if s.sending {
                tracing::info!(%mac, session = %key, "multicast session already sending: this machine restores over HTTP");
                return None;
            }
            s.joined.insert(mac);
            return Some((
                format!("multicast {} {}", s.port, cfg.multicast_address),
                None,
            ));
        }
        let expected = expected(st, v);
        if expected.len() < 2 {
            return None;
        }
        let port = {
            let mut n = self.started.lock().unwrap_or_else(|p| p.into_inner());
            *n = (*n + 1) % 500;
            cfg.multicast_portbase.saturating_add(2 * (*n - 1))
        };
        sessions.insert(
            key.clone(),
            Session {
                port,
                joined: BTreeSet::from([mac]),
                expected: expected.len(),
                sending: false,
            },
        );
        tracing::info!(session = %key, port, expected = expected.len(), "multicast session gathering");
        let streams: Vec<(String, String, std::path::PathBuf)> = v
            .manifest
            .parts
            .iter()
            .filter_map(|p| {
                let s = format!("p{}", p.number);
                Some((
                    s.clone(),
                    p.stream.sha256.clone(),
                    store.stored(&v.name, v.version, &s)?,
                ))
            })
            .collect();
        let job = Job {
            key,
            interface,
            address: cfg.multicast_address.clone(),
            port,
            wait: Duration::from_secs(cfg.multicast_wait),
            streams,
        };
        Some((
            format!("multicast {port} {}", cfg.multicast_address),
            Some(job),
        ))
    }
}

/// What a new session sends.
pub struct Job {
    key: String,
    interface: String,
    address: String,
    port: u16,
    wait: Duration,
    streams: Vec<(String, String, std::path::PathBuf)>,
}

/// Gather, then send each stream to the machines that joined.
pub async fn send(shared: Arc<super::Shared>, job: Job) {
    let started = Instant::now();
    let joined = loop {
        let (joined, expected) = {
            let s = shared
                .multicast
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let Some(s) = s.get(&job.key) else { return };
            (s.joined.len(), s.expected)
        };
        if joined >= expected || started.elapsed() >= job.wait {
            let mut s = shared
                .multicast
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(s) = s.get_mut(&job.key) {
                s.sending = true;
            }
            break joined;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tracing::info!(session = %job.key, port = job.port, machines = joined, "multicast session sending");
    for (stream, sha, path) in &job.streams {
        match send_stream(&job, joined, stream, sha, path).await {
            Ok(()) => {
                tracing::info!(session = %job.key, port = job.port, %stream, machines = joined, "multicast session sent a stream")
            }
            Err(e) => {
                tracing::warn!(session = %job.key, %stream, "multicast session failed: {e:#}; the machines fetch the rest over HTTP");
                break;
            }
        }
    }
    shared
        .multicast
        .inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&job.key);
}

async fn send_stream(
    job: &Job,
    receivers: usize,
    stream: &str,
    sha: &str,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new("udp-sender")
        .args(["--nokbd", "--full-duplex", "--interface", &job.interface])
        .args(["--portbase", &job.port.to_string()])
        .args(["--mcast-rdv-address", &job.address])
        .args(["--min-receivers", &receivers.max(1).to_string()])
        .args(["--max-wait", &job.wait.as_secs().max(5).to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("udp-sender (Debian package udpcast) did not start: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let header = format!("nmt-stream {} {stream} {sha}\n", job.key);
    let path = path.to_path_buf();
    let feed = async move {
        stdin.write_all(header.as_bytes()).await?;
        let mut f = tokio::fs::File::open(&path).await?;
        tokio::io::copy(&mut f, &mut stdin).await?;
        stdin.shutdown().await?;
        anyhow::Ok(())
    };
    let run = async {
        feed.await?;
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            anyhow::bail!(
                "udp-sender ended with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(STREAM_LIMIT, run)
        .await
        .map_err(|_| anyhow::anyhow!("the stream took longer than {STREAM_LIMIT:?}"))?
}
