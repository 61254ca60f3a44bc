//! Log ingest: each configured DHCP/TFTP log is an [`nmt_replay::FileSource`] (nmt's own
//! reader feeding the one ingest pipeline); linemux's file events (with a periodic poll as
//! a backstop) only wake it. Each batch of complete lines is parsed and committed with the
//! source's read marks in one transaction, so a crash neither loses nor repeats a line, and
//! a failed commit reads the same lines again from the last committed position.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::app::SourceStats;
use anyhow::Result;
use jiff::Timestamp;
use nmt_replay::FileSource;

use super::Shared;

/// How much log one poll reads at most (then the batch is committed and it reads again).
const BATCH_BYTES: usize = 4 << 20;
/// The backstop: how often sources are polled when no file event woke the reader.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Start following `paths`, reporting into `shared.sources`. A log whose read mark does not
/// decode is not followed (reading it from its start would ingest it twice): `nmt status`
/// shows why.
pub fn start(shared: Arc<Shared>, paths: Vec<PathBuf>) -> Result<()> {
    let mut sources = Vec::new();
    let mut stats = Vec::new();
    {
        let engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
        for path in paths {
            match FileSource::open(&path, &*engine) {
                Ok(src) => {
                    stats.push(SourceStats {
                        path: path.clone(),
                        checkpoint: src.pipeline().committed_tail().cloned(),
                        ..SourceStats::default()
                    });
                    sources.push((stats.len() - 1, src));
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), "not following: {e}");
                    stats.push(SourceStats {
                        path: path.clone(),
                        last_error: Some(format!(
                            "not followed: {e}. Reading it from its start would record its \
                             lines twice; run the nmt release that wrote this store"
                        )),
                        ..SourceStats::default()
                    });
                }
            }
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
        .map(|(_, s)| s.path().to_path_buf())
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
                for (i, s) in src.iter_mut() {
                    poll_source(&sh, s, *i);
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

/// Read and commit until the source has nothing more, or fails. While a full batch is
/// committed, the next one is read and parsed on a second thread; a failed commit drops it
/// and the source reads again from the last committed position.
fn poll_source(shared: &Shared, src: &mut FileSource, i: usize) {
    let mut read = src.read(BATCH_BYTES, Timestamp::now());
    loop {
        let committed = match &read {
            Ok(r) => {
                let mut sealed = src.seal();
                // A batch ends on a line boundary, so it never quite fills `BATCH_BYTES`; one
                // that filled half of it stopped short of the file's end: read the next one
                // while this one commits.
                let ahead = r.bytes >= BATCH_BYTES / 2;
                let commit = |sealed: &mut nmt_replay::Sealed| match sealed.is_empty() {
                    true => Ok(nmt_replay::Committed::default()),
                    false => {
                        let (observed, marks) = sealed.take();
                        let mut engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
                        nmt_replay::Sink::commit(&mut *engine, observed, marks)
                    }
                };
                let (result, next) = match ahead {
                    true => std::thread::scope(|s| {
                        let h = s.spawn(|| commit(&mut sealed));
                        let next = src.read(BATCH_BYTES, Timestamp::now());
                        let result = h.join().unwrap_or_else(|_| {
                            Err(nmt_replay::SinkError("the commit panicked".into()))
                        });
                        (result, Some(next))
                    }),
                    false => (commit(&mut sealed), None),
                };
                Some((src.settle(sealed, result), next))
            }
            Err(_) => None,
        };
        let (committed, next) = match committed {
            Some((c, n)) => (Some(c), n),
            None => (None, None),
        };
        let mut st = shared.sources.lock().unwrap_or_else(|p| p.into_inner());
        let e = &mut st[i];
        let error = match (&read, committed) {
            (Err(err), _) => Some(format!("reading: {err}")),
            (Ok(_), Some(Err(err))) => Some(format!(
                "{err}; reading again from the last committed position"
            )),
            (Ok(_), Some(Ok(done))) => done.render_error,
            (Ok(_), None) => None,
        };
        let p = src.pipeline();
        e.fill(p.counts());
        e.checkpoint = p.committed_tail().cloned();
        if let Ok(r) = &read {
            for ev in &r.events {
                tracing::info!(path = %e.path.display(), "reader: {ev}");
            }
            if let Some(ev) = r.events.last() {
                e.last_event = Some(ev.to_string());
            }
        }
        let meta = std::fs::metadata(&e.path);
        e.lag_bytes = meta
            .as_ref()
            .map(|m| {
                m.len()
                    .saturating_sub(e.checkpoint.as_ref().map_or(0, |c| c.offset))
            })
            .unwrap_or(0);
        note_missing(e, meta.is_err());
        if let Some(err) = error {
            tracing::warn!(path = %e.path.display(), "{err}");
            e.last_error = Some(err);
            return;
        }
        if read.as_ref().is_ok_and(|r| r.bytes > 0) && e.last_error.take().is_some() {
            tracing::info!(path = %e.path.display(), "reading and recording again");
        }
        drop(st);
        // Go on with the batch read ahead. A read that used less than half the budget met the
        // file's end: the reader waits to be woken again, and the other sources get their turn
        // (a log written line by line as fast as it commits does not keep them waiting).
        read = match next {
            Some(next) => next,
            None => return,
        };
    }
}

/// A followed path that does not exist is a warning (in `nmt status` and nmtd's log) until
/// it appears: a mistyped `--log` would otherwise look like a quiet log.
fn note_missing(e: &mut SourceStats, missing: bool) {
    match (missing, e.warning.is_some()) {
        (true, false) => {
            let w = format!(
                "{} does not exist; nmtd follows it from when it appears. If that is not \
                 expected, check the path given with --log or in [daemon] logs",
                e.path.display()
            );
            tracing::warn!(path = %e.path.display(), "{w}");
            e.warning = Some(w);
        }
        (false, true) => {
            tracing::info!(path = %e.path.display(), "it exists now; following it");
            e.warning = None;
        }
        _ => {}
    }
}
