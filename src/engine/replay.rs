//! Bringing history back: `journal import` (events exactly as they were) and `replay logs`
//! (archived DHCP/TFTP logs through the same parsers as live ingest).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use jiff::Timestamp;
use nmt_projections::{Envelope, Source};
use nmt_replay::{Mark, MarkKey, Pipeline};

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
        let mut rest = envelopes.into_iter();
        loop {
            let mut batch = Batch::new();
            batch.track_affected = false;
            for env in rest.by_ref().take(50_000) {
                self.stage(&mut batch, env);
            }
            if batch.envelopes.is_empty() {
                break;
            }
            self.commit(batch, &[])?;
        }
        self.ingest(Vec::new(), &marks)?;
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
        let now = Timestamp::now();
        // A render failure does not stop the replay: every line is recorded, then it is said.
        let mut render_error = None;
        for line in merged {
            let l = line?;
            if pipeline.already_read(self, l.identity, l.offset)? {
                continue;
            }
            pipeline.line(
                l.path_index,
                l.identity,
                l.offset,
                &l.bytes,
                l.at.unwrap_or(now),
            );
            if pipeline.pending_lines() >= 20_000 {
                self.replay_flush(&mut pipeline, &mut render_error)?;
            }
        }
        self.replay_flush(&mut pipeline, &mut render_error)?;
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
        })
    }

    /// Commit what the pipeline holds; a render failure is kept (the last one) for the end.
    fn replay_flush(
        &mut self,
        pipeline: &mut Pipeline,
        render_error: &mut Option<String>,
    ) -> Result<()> {
        let done = pipeline.flush(self)?;
        if let Some(e) = done.render_error {
            *render_error = Some(e.to_string());
        }
        Ok(())
    }
}
