//! Bringing history back: `journal import` (events exactly as they were) and `replay logs`
//! (archived DHCP/TFTP logs through the same parsers as live ingest).

use std::path::PathBuf;

use anyhow::{Result, bail};
use jiff::Timestamp;
use nmt_projections::{Envelope, Source};
use nmt_replay::Observed;

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
        // How far each log file was read, from the events' sources (checkpoints are not in a
        // journal): replay after the import then skips what the journal already holds.
        let mut read_to: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for env in &envelopes {
            if let Some(Source {
                stream,
                offset: Some(o),
            }) = &env.source
                && stream.starts_with("file:")
            {
                let e = read_to.entry(stream.as_str()).or_insert(0);
                *e = (*e).max(o + 1);
            }
        }
        let cps: Vec<(String, [u8; 8])> = read_to
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_le_bytes()))
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
        let refs: Vec<(&str, &[u8])> = cps.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
        self.commit(Batch::new(), &refs)?;
        self.render_all()
    }

    /// Replay archived DHCP/TFTP logs (plain, rotated, gzip; several formats and hosts),
    /// merged in time order, through the same parsers as live ingest. Lines already read —
    /// by live ingest or an earlier replay, recognised by file content and offset — are
    /// skipped, so replaying twice adds nothing.
    pub fn replay(
        &mut self,
        paths: &[PathBuf],
        years: nmt_replay::YearRule,
        progress: Option<Box<dyn FnMut(nmt_replay::Progress) + Send>>,
    ) -> Result<ReplaySummary> {
        use std::collections::HashMap;
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
        let mut summary = ReplaySummary::default();
        let mut converters: HashMap<usize, nmt_replay::Converter> = HashMap::new();
        let mut done: HashMap<u64, u64> = HashMap::new();
        let mut batch: Vec<(Observed, Source)> = Vec::new();
        let mut ends: HashMap<u64, u64> = HashMap::new();
        let now = Timestamp::now();
        for line in merged {
            let l = line?;
            let key = crate::daemon::identity_key(l.identity);
            let read_to = match done.get(&l.identity) {
                Some(v) => *v,
                None => {
                    let v = self
                        .store
                        .checkpoint(&key)?
                        .and_then(|b| b.try_into().ok().map(u64::from_le_bytes))
                        .unwrap_or(0);
                    done.insert(l.identity, v);
                    v
                }
            };
            summary.lines += 1;
            if l.offset < read_to {
                summary.already += 1;
                continue;
            }
            let end = l.offset + l.bytes.len() as u64 + 1;
            let e = ends.entry(l.identity).or_insert(end);
            *e = (*e).max(end);
            match nmt_parsers::parse_line(&l.bytes) {
                Ok(ll) => match converters
                    .entry(l.path_index)
                    .or_default()
                    .convert(&ll, l.at.unwrap_or(now))
                {
                    Ok(o) => batch.push((
                        o,
                        Source {
                            stream: key,
                            offset: Some(l.offset),
                        },
                    )),
                    Err(_) => summary.ignored += 1,
                },
                Err(_) => summary.rejects += 1,
            }
            if batch.len() >= 20_000 {
                summary.events += self.replay_flush(&mut batch, &mut ends, &mut done)?;
            }
        }
        summary.events += self.replay_flush(&mut batch, &mut ends, &mut done)?;
        Ok(summary)
    }

    fn replay_flush(
        &mut self,
        batch: &mut Vec<(Observed, Source)>,
        ends: &mut std::collections::HashMap<u64, u64>,
        done: &mut std::collections::HashMap<u64, u64>,
    ) -> Result<u64> {
        if batch.is_empty() && ends.is_empty() {
            return Ok(0);
        }
        let keys: Vec<(String, [u8; 8])> = ends
            .iter()
            .map(|(id, end)| (crate::daemon::identity_key(*id), end.to_le_bytes()))
            .collect();
        let cps: Vec<(&str, &[u8])> = keys.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
        let n = batch.len() as u64;
        let before = self.state.last_seq();
        let (_, affected) = self.ingest(std::mem::take(batch), &cps)?;
        for (id, end) in ends.drain() {
            done.insert(id, end);
        }
        self.render(&affected, before)?;
        Ok(n)
    }
}
