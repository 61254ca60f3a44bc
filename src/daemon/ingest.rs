//! Log ingest: nmt's own reader ([`nmt_replay::Tailer`]) follows each configured DHCP/TFTP
//! log; linemux's file events (with a periodic poll as a backstop) only wake it. Each batch
//! of complete lines is parsed, turned into events and committed with the source's
//! checkpoint in one transaction, so a crash neither loses nor repeats a line.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use jiff::Timestamp;
use nmt_parsers::parse_line;
use nmt_projections::Source;
use nmt_replay::{Checkpoint, Converter, Observed, Skipped, Tailer};
use serde::Serialize;

use super::Shared;

/// How much log one poll reads at most (then the batch is committed and it reads again).
const BATCH_BYTES: usize = 4 << 20;
/// The backstop: how often sources are polled when no file event woke the reader.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// What `nmt status` shows for one source.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceStats {
    /// The configured path.
    pub path: PathBuf,
    /// Complete lines read.
    pub lines: u64,
    /// Events appended.
    pub events: u64,
    /// Lines recognised that made no event of their own (detail lines, lines naming no
    /// machine).
    pub ignored: u64,
    /// Lines not recognised.
    pub rejects: u64,
    /// The last rejected line (lossy, shortened).
    pub last_reject: Option<String>,
    /// The committed position.
    pub checkpoint: Option<Checkpoint>,
    /// Bytes in the file beyond the checkpoint.
    pub lag_bytes: u64,
    /// The last thing the reader reported (rotation, truncation, a missing file).
    pub last_event: Option<String>,
    /// The last error reading or committing.
    pub last_error: Option<String>,
}

struct Source1 {
    key: String,
    tailer: Tailer,
    converter: Converter,
}

/// The store key of how far a file (by content identity) has been read, by live ingest or
/// replay, and the source stream its events name.
pub fn identity_key(identity: u64) -> String {
    format!("file:{identity:016x}")
}

/// The store key of a source's checkpoint.
pub fn checkpoint_key(path: &std::path::Path) -> String {
    format!("log:{}", path.display())
}

/// Start following `paths`, reporting into `shared.sources`.
pub fn start(shared: Arc<Shared>, paths: Vec<PathBuf>) -> Result<()> {
    let mut sources = Vec::new();
    let mut stats = Vec::new();
    {
        let engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
        for path in paths {
            let key = checkpoint_key(&path);
            let from: Option<Checkpoint> = engine
                .checkpoint(&key)?
                .and_then(|b| serde_json::from_slice(&b).ok());
            stats.push(SourceStats {
                path: path.clone(),
                checkpoint: from.clone(),
                ..SourceStats::default()
            });
            sources.push(Source1 {
                key,
                tailer: Tailer::new(path, from),
                converter: Converter::default(),
            });
        }
    }
    shared
        .sources
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .splice(0..0, stats);
    if sources.is_empty() {
        return Ok(());
    }
    let wake = Arc::new(tokio::sync::Notify::new());
    // linemux watches the files (even ones that do not exist yet) and only wakes us.
    let watched: Vec<PathBuf> = sources
        .iter()
        .map(|s| s.tailer.path().to_path_buf())
        .collect();
    let w = wake.clone();
    tokio::spawn(async move {
        let Ok(mut events) = linemux::MuxedEvents::new() else {
            return;
        };
        for p in watched {
            let _ = events.add_file(p).await;
        }
        while let Ok(Some(_)) = events.next_event().await {
            w.notify_one();
        }
    });
    let sources = Arc::new(Mutex::new(sources));
    tokio::spawn(async move {
        loop {
            let (sh, src) = (shared.clone(), sources.clone());
            let _ = tokio::task::spawn_blocking(move || {
                let mut src = src.lock().unwrap_or_else(|p| p.into_inner());
                for (i, s) in src.iter_mut().enumerate() {
                    poll_source(&sh, s, &sh.sources, i);
                }
            })
            .await;
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    });
    Ok(())
}

fn poll_source(shared: &Shared, s: &mut Source1, stats: &Mutex<Vec<SourceStats>>, i: usize) {
    loop {
        let batch = match s.tailer.poll(BATCH_BYTES) {
            Ok(b) => b,
            Err(e) => {
                stats.lock().unwrap_or_else(|p| p.into_inner())[i].last_error =
                    Some(format!("reading: {e}"));
                return;
            }
        };
        let bytes: usize = batch.lines.iter().map(|l| l.bytes.len() + 1).sum();
        let now = Timestamp::now();
        let mut observed: Vec<(Observed, Source)> = Vec::with_capacity(batch.lines.len());
        // How far each file (by content identity) has been read, for replay to skip.
        let mut read_to: Vec<(u64, u64)> = Vec::new();
        let (mut ignored, mut rejects, mut last_reject) = (0u64, 0u64, None);
        for line in &batch.lines {
            let end = line.offset + line.bytes.len() as u64 + 1;
            match read_to.iter_mut().find(|(id, _)| *id == line.identity) {
                Some(r) => r.1 = r.1.max(end),
                None => read_to.push((line.identity, end)),
            }
            match parse_line(&line.bytes) {
                Ok(ll) => match s.converter.convert(&ll, now) {
                    Ok(o) => observed.push((
                        o,
                        Source {
                            stream: identity_key(line.identity),
                            offset: Some(line.offset),
                        },
                    )),
                    Err(Skipped::Held | Skipped::NoMachine) => ignored += 1,
                },
                Err(_) => {
                    rejects += 1;
                    last_reject = Some(
                        String::from_utf8_lossy(&line.bytes[..line.bytes.len().min(200)])
                            .into_owned(),
                    );
                }
            }
        }
        let n_events = observed.len() as u64;
        let mut error = None;
        if let Some(cp) = &batch.checkpoint {
            let cp_bytes = serde_json::to_vec(cp).expect("a checkpoint serializes");
            let mut engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
            let before = engine.state().last_seq();
            let keys: Vec<(String, [u8; 8])> = read_to
                .iter()
                .map(|(id, end)| (identity_key(*id), end.to_le_bytes()))
                .collect();
            let mut cps: Vec<(&str, &[u8])> = vec![(&s.key, &cp_bytes)];
            cps.extend(keys.iter().map(|(k, v)| (k.as_str(), &v[..])));
            match engine.ingest(observed, &cps) {
                Ok((_, affected)) => {
                    if let Err(e) = engine.render(&affected, before) {
                        error = Some(format!("rendering: {e:#}"));
                    }
                }
                Err(e) => {
                    // Nothing was committed: read these lines again from the checkpoint.
                    error = Some(format!("committing: {e:#}"));
                    drop(engine);
                    let from = stats.lock().unwrap_or_else(|p| p.into_inner())[i]
                        .checkpoint
                        .clone();
                    s.tailer = Tailer::new(s.tailer.path().to_path_buf(), from);
                    s.converter = Converter::default();
                }
            }
        }
        let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
        let e = &mut st[i];
        if error.is_none() {
            e.lines += batch.lines.len() as u64;
            e.events += n_events;
            e.ignored += ignored;
            e.rejects += rejects;
            if last_reject.is_some() {
                e.last_reject = last_reject;
            }
            if let Some(cp) = batch.checkpoint {
                e.checkpoint = Some(cp);
            }
        }
        for ev in &batch.events {
            tracing::info!(path = %e.path.display(), "reader: {ev:?}");
        }
        if let Some(ev) = batch.events.last() {
            e.last_event = Some(format!("{ev:?}"));
        }
        if error.is_some() {
            tracing::warn!(path = %e.path.display(), "{}", error.as_deref().unwrap_or(""));
            e.last_error = error;
            return;
        }
        e.lag_bytes = std::fs::metadata(&e.path)
            .map(|m| {
                m.len()
                    .saturating_sub(e.checkpoint.as_ref().map_or(0, |c| c.offset))
            })
            .unwrap_or(0);
        drop(st);
        if bytes < BATCH_BYTES {
            return;
        }
    }
}
