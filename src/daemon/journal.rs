//! Journal sources: on Debian 12 and newer, ISC dhcpd often logs only to the systemd
//! journal. nmtd follows a unit with `journalctl --follow --output=json --unit=UNIT
//! --after-cursor=CURSOR`; each batch of entries goes through the unit's
//! [`nmt_replay::Pipeline`], which commits the cursor of the last entry with the events of
//! the entries up to it. When a batch cannot be committed, journalctl is started again
//! after the last committed cursor, so no entry is lost or read twice.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use nmt_replay::{MarkKey, Pipeline};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{Shared, SourceStats};

const BATCH_LINES: usize = 2000;
const BATCH_WAIT: Duration = Duration::from_millis(100);

/// Follow each unit's journal, reporting into `shared.sources`.
pub fn start(shared: Arc<Shared>, units: Vec<String>, directory: Option<PathBuf>) {
    for unit in units {
        let index = {
            let mut s = shared.sources.lock().unwrap_or_else(|p| p.into_inner());
            s.push(SourceStats {
                path: PathBuf::from(MarkKey::Journal(unit.clone()).key()),
                ..SourceStats::default()
            });
            s.len() - 1
        };
        let (sh, dir) = (shared.clone(), directory.clone());
        tokio::spawn(async move {
            let mut pipeline: Option<Pipeline> = None;
            loop {
                let error = match &mut pipeline {
                    None => {
                        let u = unit.clone();
                        match sh.write(move |engine| Pipeline::journal(&u, engine)).await {
                            Ok(Ok(p)) => {
                                pipeline = Some(p);
                                continue;
                            }
                            // Not followed from the start instead: that would read it twice.
                            Ok(Err(e)) => format!("not followed: {e}"),
                            Err(e) => format!("{e:#}"),
                        }
                    }
                    Some(_) => match follow(&sh, &unit, dir.as_ref(), index, &mut pipeline).await {
                        Ok(()) => continue,
                        Err(e) => format!("{e:#}"),
                    },
                };
                tracing::warn!(%unit, "journal source: {error}");
                sh.sources.lock().unwrap_or_else(|p| p.into_inner())[index].last_error =
                    Some(error);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Run journalctl after the pipeline's committed cursor and commit what it prints, until it
/// ends or a batch cannot be committed.
async fn follow(
    shared: &Arc<Shared>,
    unit: &str,
    dir: Option<&PathBuf>,
    index: usize,
    slot: &mut Option<Pipeline>,
) -> anyhow::Result<()> {
    let cursor = slot
        .as_ref()
        .and_then(|p| p.committed_cursor().map(str::to_string));
    let mut cmd = Command::new("journalctl");
    // --merge: every boot and every journal file, not only the current boot's (a cursor from
    // before a reboot, or a copied journal, must still be followed).
    cmd.args([
        "--follow",
        "--merge",
        "--output=json",
        "--no-pager",
        "--all",
    ])
    .arg(format!("--unit={unit}"))
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    if let Some(d) = dir {
        cmd.arg(format!("--directory={}", d.display()));
    }
    match &cursor {
        Some(c) => cmd.arg(format!("--after-cursor={c}")),
        None => cmd.arg("--lines=all"),
    };
    let mut child = cmd.spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    loop {
        let mut batch: Vec<String> = Vec::new();
        match lines.next_line().await? {
            Some(l) => batch.push(l),
            None => anyhow::bail!("journalctl ended"),
        }
        let deadline = tokio::time::Instant::now() + BATCH_WAIT;
        while batch.len() < BATCH_LINES {
            match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(l))) => batch.push(l),
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        let sh = shared.clone();
        let mut pipeline = slot.take().expect("a pipeline while following");
        let (pipeline, result) = tokio::task::spawn_blocking(move || {
            let now = Timestamp::now();
            for l in &batch {
                pipeline.journal_entry(l.as_bytes(), now);
            }
            let result = {
                let mut engine = sh.engine.lock().unwrap_or_else(|p| p.into_inner());
                pipeline.flush(&mut *engine)
            };
            let mut st = sh.sources.lock().unwrap_or_else(|p| p.into_inner());
            let s = &mut st[index];
            s.fill(pipeline.counts());
            if let Some(c) = pipeline.committed_cursor() {
                s.last_event = Some(format!("cursor {c}"));
            }
            if let Ok(done) = &result
                && let Some(e) = &done.render_error
            {
                s.last_error = Some(e.clone());
            }
            (pipeline, result)
        })
        .await?;
        *slot = Some(pipeline);
        // journalctl is stopped (dropped) and started again after the committed cursor.
        result.map_err(|e| anyhow::anyhow!("{e}; reading again after the last committed entry"))?;
    }
}
