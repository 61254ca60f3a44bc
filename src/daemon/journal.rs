//! Journal sources: on Debian 12 and newer, ISC dhcpd often logs only to the systemd
//! journal. nmtd follows a unit with `journalctl --follow --output=json --unit=UNIT
//! --after-cursor=CURSOR` and commits the journal cursor as the source's checkpoint, in the
//! same transaction as the events of the entries before it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use nmt_parsers::parse_journal_json;
use nmt_projections::Source;
use nmt_replay::{Converter, Observed, Skipped};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{Shared, SourceStats};

const BATCH_LINES: usize = 2000;
const BATCH_WAIT: Duration = Duration::from_millis(100);

/// The store key of a unit's cursor.
pub fn checkpoint_key(unit: &str) -> String {
    format!("journal:{unit}")
}

/// Follow each unit's journal, reporting into `shared.sources`.
pub fn start(shared: Arc<Shared>, units: Vec<String>, directory: Option<PathBuf>) {
    for unit in units {
        let index = {
            let mut s = shared.sources.lock().unwrap_or_else(|p| p.into_inner());
            s.push(SourceStats {
                path: PathBuf::from(checkpoint_key(&unit)),
                ..SourceStats::default()
            });
            s.len() - 1
        };
        let (sh, dir) = (shared.clone(), directory.clone());
        tokio::spawn(async move {
            loop {
                if let Err(e) = follow(&sh, &unit, dir.as_ref(), index).await {
                    sh.sources.lock().unwrap_or_else(|p| p.into_inner())[index].last_error =
                        Some(e.to_string());
                    tracing::warn!(%unit, "journal source: {e:#}");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

async fn follow(
    shared: &Arc<Shared>,
    unit: &str,
    dir: Option<&PathBuf>,
    index: usize,
) -> anyhow::Result<()> {
    let key = checkpoint_key(unit);
    let cursor = {
        let e = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
        e.checkpoint(&key)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
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
    let mut converter = Converter::default();
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
        let (key2, unit2) = (key.clone(), unit.to_string());
        converter = tokio::task::spawn_blocking(move || {
            ingest(&sh, &key2, &unit2, batch, &mut converter, index);
            converter
        })
        .await?;
    }
}

fn ingest(
    shared: &Shared,
    key: &str,
    unit: &str,
    batch: Vec<String>,
    converter: &mut Converter,
    index: usize,
) {
    let now = Timestamp::now();
    let mut observed: Vec<(Observed, Source)> = Vec::new();
    let (mut ignored, mut rejects, mut last_reject, mut cursor) = (0u64, 0u64, None, None);
    let n = batch.len() as u64;
    for line in &batch {
        match parse_journal_json(line.as_bytes()) {
            Ok(entry) => {
                if let Some(c) = &entry.cursor {
                    cursor = Some(c.clone());
                }
                match entry.log_line().map(|ll| converter.convert(&ll, now)) {
                    Ok(Ok(o)) => observed.push((
                        o,
                        Source {
                            stream: format!("journal:{unit}"),
                            offset: None,
                        },
                    )),
                    Ok(Err(Skipped::Held | Skipped::NoMachine)) => ignored += 1,
                    Err(_) => {
                        rejects += 1;
                        last_reject = Some(line.chars().take(200).collect::<String>());
                    }
                }
            }
            Err(_) => {
                rejects += 1;
                last_reject = Some(line.chars().take(200).collect::<String>());
            }
        }
    }
    let events = observed.len() as u64;
    let Some(cursor) = cursor else {
        return;
    };
    let mut engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
    let before = engine.state().last_seq();
    let result = engine
        .ingest(observed, &[(key, cursor.as_bytes())])
        .and_then(|(_, affected)| engine.render(&affected, before));
    drop(engine);
    let mut st = shared.sources.lock().unwrap_or_else(|p| p.into_inner());
    let s = &mut st[index];
    match result {
        Ok(_) => {
            s.lines += n;
            s.events += events;
            s.ignored += ignored;
            s.rejects += rejects;
            if last_reject.is_some() {
                s.last_reject = last_reject;
            }
            s.last_event = Some(format!("cursor {cursor}"));
        }
        Err(e) => s.last_error = Some(format!("{e:#}")),
    }
}
