//! Bringing history back: `journal import` (events exactly as they were) and `replay logs`
//! (archived DHCP/TFTP logs through the same parsers as live ingest).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use nmt_projections::{Affected, Envelope, Event, Source, installer_actor, observe};
use nmt_replay::{Committed, Mark, MarkKey, Observed, Pipeline, Sink, SinkError};

use super::{Batch, Engine};
use crate::files::WriteOutcome;

/// What a replay did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReplaySummary {
    /// Lines read.
    pub lines: u64,
    /// Lines skipped because they were read before (live or an earlier replay).
    pub already: u64,
    /// Events appended.
    pub events: u64,
    /// Lines recognised that made no event (detail lines, lines naming no machine).
    pub ignored: u64,
    /// Lines not recognised.
    pub rejects: u64,
    /// Server lines with no time of their own, given that of the line before them in their
    /// file (or the file's modification time).
    pub untimed: u64,
}

/// A journal export `journal import` may take, read whole and checked before anything is
/// written.
#[derive(Debug)]
pub struct Importable {
    /// Its events, in sequence order (at least one).
    pub events: Vec<Envelope>,
    /// Why it may be only the start of the log (it has no trailer, or it is a filtered
    /// export); `None` for a whole export.
    pub partial: Option<String>,
}

/// Read an export for `journal import` (`name` is how refusals call it): every line decoded,
/// gap-free, its trailer matching when it has one (`nmt_replay::read_export`), and at least
/// one event. An export that may be only the start of the log is refused unless `partial`.
/// Every refusal says that nothing was imported.
pub fn read_importable(
    reader: impl std::io::BufRead,
    name: &std::path::Path,
    partial: bool,
) -> Result<Importable> {
    let journal = nmt_replay::read_export(reader)
        .with_context(|| format!("{} was refused; nothing was imported", name.display()))?;
    let events = journal.events;
    if events.is_empty() {
        bail!("{} holds no events; nothing was imported", name.display());
    }
    // Why this may be only the start of the log; a whole export needs no --partial.
    let prefix = match &journal.trailer {
        None => Some(format!(
            "{} has no trailer line, so it may have been cut short at a line boundary \
             (e.g. by `head`), or it was written by an nmt from before export trailers",
            name.display()
        )),
        Some(t) if !t.filter.is_whole() => Some(format!(
            "{} is a filtered export ({}), not the whole log",
            name.display(),
            t.filter
        )),
        Some(_) => None,
    };
    if let Some(why) = &prefix
        && !partial
    {
        bail!(
            "{why}; nothing was imported. Import a whole export (`nmt journal export FILE`), \
             or, to import these {} events as the start of the log on purpose, run again with \
             --partial",
            events.len()
        );
    }
    Ok(Importable {
        events,
        partial: prefix,
    })
}

impl Engine {
    /// Rebuild an empty store from a journal's events, exactly as they were (same sequence
    /// numbers, times, actors and sources), then render every file. Refused when the store
    /// already holds events.
    pub fn import(&mut self, envelopes: Vec<Envelope>) -> Result<WriteOutcome> {
        if self.state.last_seq() != 0 {
            bail!(
                "{} already holds {} events; `journal import` rebuilds an empty state \
                 directory: give it a new --state DIR",
                self.config.state_dir.display(),
                self.state.last_seq()
            );
        }
        // How far each log file was read, from the events' sources (marks are not in a
        // journal): replay after the import then skips what the journal already holds.
        let mut read_to: HashMap<u64, u64> = HashMap::new();
        for env in &envelopes {
            if let Some(Source::LogFile { identity, offset }) = &env.source {
                let e = read_to.entry(*identity).or_insert(0);
                *e = (*e).max(offset + 1);
            }
        }
        let marks: Vec<(MarkKey, Mark)> = read_to
            .into_iter()
            .map(|(id, end)| (MarkKey::File(id), Mark::ReadTo(end)))
            .collect();
        // Two stages on two cores: a thread writes each chunk of events as JSON (their
        // stored form before compression) while this one folds the chunk before and commits
        // it.
        const CHUNK: usize = 50_000;
        std::thread::scope(|s| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            s.spawn(move || {
                let mut rest = envelopes.into_iter();
                loop {
                    let chunk: Vec<Envelope> = rest.by_ref().take(CHUNK).collect();
                    if chunk.is_empty() {
                        break;
                    }
                    let json: Vec<Vec<u8>> = chunk.iter().map(Envelope::to_json).collect();
                    // The receiver is gone when a commit failed: stop.
                    if tx.send((chunk, json)).is_err() {
                        break;
                    }
                }
            });
            for (chunk, json) in rx {
                let mut batch = Batch::new();
                batch.track_affected = false;
                batch.json = Some(json);
                for env in chunk {
                    self.stage(&mut batch, env);
                }
                self.commit(batch, &[])?;
            }
            Ok(())
        })?;
        self.ingest(Vec::new(), &marks)?;
        // The imported log's own key when it carries one (an old store's), else a new one.
        self.attach_site_key(true)?;
        self.render_all()
    }

    /// Replay archived DHCP/TFTP logs (plain, rotated, gzip; several formats and hosts),
    /// merged in time order, through the same pipeline as live ingest. Lines already read —
    /// by live ingest or an earlier replay, recognised by file content and offset — are
    /// skipped, so replaying twice adds nothing.
    pub fn replay(
        &mut self,
        paths: &[PathBuf],
        years: nmt_replay::YearRule,
        progress: Option<Box<dyn FnMut(nmt_replay::Progress) + Send>>,
    ) -> Result<ReplaySummary> {
        let mut archives = Vec::with_capacity(paths.len());
        for p in paths {
            archives.push(nmt_replay::Archive::open(p)?);
        }
        let mut merged = nmt_replay::merge(archives, years);
        if let Some(cb) = progress {
            merged = merged.on_progress(cb);
        }
        // Reads every file once first: a damaged archive is refused before anything is added.
        merged.prepare()?;
        let mut pipeline = Pipeline::replay(paths.len());
        // A render failure does not stop the replay: every line is recorded, then it is said.
        let (render_error, untimed) = feed(merged, &mut pipeline, self)?;
        let c = pipeline.counts();
        if let Some(e) = render_error {
            bail!(
                "the replayed events are recorded ({} events from {} lines), but the generated \
                 files are not up to date: {e}; fix the cause and run `nmt render`",
                c.events,
                c.lines
            );
        }
        Ok(ReplaySummary {
            lines: c.lines,
            already: c.already,
            events: c.events,
            ignored: c.ignored,
            rejects: c.rejects,
            untimed,
        })
    }

    /// What [`Engine::replay`] would do, without appending or writing: the summary, the
    /// first [`PLAN_EVENTS`] events it would append, and the files it would change.
    pub fn replay_plan(
        &self,
        paths: &[PathBuf],
        years: nmt_replay::YearRule,
    ) -> Result<(ReplaySummary, Vec<Envelope>, WriteOutcome)> {
        let mut archives = Vec::with_capacity(paths.len());
        for p in paths {
            archives.push(nmt_replay::Archive::open(p)?);
        }
        let mut merged = nmt_replay::merge(archives, years);
        merged.prepare()?;
        let mut pipeline = Pipeline::replay(paths.len());
        let mut sink = DrySink {
            engine: self,
            plan: super::Plan {
                events: Vec::new(),
                after: self.state.clone(),
                affected: Affected::default(),
            },
        };
        let (_, untimed) = feed(merged, &mut pipeline, &mut sink)?;
        let c = pipeline.counts();
        let files = self.planned_files(&sink.plan);
        Ok((
            ReplaySummary {
                lines: c.lines,
                already: c.already,
                events: c.events,
                ignored: c.ignored,
                rejects: c.rejects,
                untimed,
            },
            sink.plan.events,
            files,
        ))
    }
}

/// Feed every line of `merged` not read before through `pipeline` into `sink`, committing
/// every 20,000 lines and at the end. A render failure does not stop it: the last one is
/// returned, once every line is in.
fn feed(
    merged: nmt_replay::Merged,
    pipeline: &mut Pipeline,
    sink: &mut dyn Sink,
) -> Result<(Option<String>, u64)> {
    let now = Timestamp::now();
    let mut render_error = None;
    let mut untimed = 0;
    for line in merged {
        let l = line?;
        if pipeline.already_read(&*sink, l.identity, l.offset)? {
            continue;
        }
        untimed += u64::from(l.untimed);
        pipeline.line(
            l.path_index,
            l.identity,
            l.offset,
            &l.bytes,
            l.at.unwrap_or(now),
        );
        if pipeline.pending_lines() >= 20_000
            && let Some(e) = pipeline.flush(sink)?.render_error
        {
            render_error = Some(e.to_string());
        }
    }
    if let Some(e) = pipeline.flush(sink)?.render_error {
        render_error = Some(e.to_string());
    }
    Ok((render_error, untimed))
}

/// How many of a replay's events a dry run shows.
pub const PLAN_EVENTS: usize = 200;

/// The engine's state as a replay's sink that commits nothing: what it would append is
/// folded into a copy of the state.
struct DrySink<'a> {
    engine: &'a Engine,
    plan: super::Plan,
}

impl Sink for DrySink<'_> {
    fn mark(&self, key: &MarkKey) -> Result<Option<Mark>, SinkError> {
        self.engine
            .mark(key)
            .map_err(|e| SinkError(format!("{e:#}")))
    }

    fn commit(
        &mut self,
        observed: Vec<(Observed, Source)>,
        _marks: Vec<(MarkKey, Mark)>,
    ) -> Result<Committed, SinkError> {
        let mut n = 0;
        let recorded_at = Timestamp::now();
        for (o, source) in observed {
            let after = &mut self.plan.after;
            let Some(event) = observe(after, o.observation) else {
                continue;
            };
            let actor = match &event {
                Event::InstallerLogged { mac, .. } => installer_actor(after, mac),
                _ => o.actor,
            };
            self.plan.affected.add(after, &event);
            let env = Envelope {
                seq: after.last_seq() + 1,
                v: nmt_projections::SCHEMA_VERSION,
                recorded_at,
                observed_at: o.at,
                actor,
                source: Some(source),
                event,
            };
            after.apply(&env);
            if self.plan.events.len() < PLAN_EVENTS {
                self.plan.events.push(env);
            }
            n += 1;
        }
        Ok(Committed {
            events: n,
            render_error: None,
        })
    }
}
