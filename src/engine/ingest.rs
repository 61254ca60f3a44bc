//! The engine as the sink of every source's [`nmt_replay::Pipeline`]: what log lines, journal
//! entries and installer syslog lines observed becomes events, committed with the sources'
//! read marks in one transaction, then the files they affect are brought up to date.

use anyhow::Result;
use nmt_projections::{Affected, Envelope, Event, Source, installer_actor, observe};
use nmt_replay::{Committed, Mark, MarkKey, Observed, Sink, SinkError};

use super::{Batch, Engine};
use crate::store::EventStore;

impl Engine {
    /// Append what sources observed, each decided against the state its predecessors left
    /// (so a fetch is attributed through the acknowledgement just before it), together with
    /// the sources' read marks, in one transaction: a crash loses or repeats no line.
    /// Observations about nobody known (an installer log line from a stranger) make no
    /// event.
    pub fn ingest(
        &mut self,
        observed: Vec<(Observed, Source)>,
        marks: &[(MarkKey, Mark)],
    ) -> Result<(Vec<Envelope>, Affected)> {
        let mut batch = Batch::new();
        for (o, source) in observed {
            let Some(event) = observe(&self.state, o.observation) else {
                continue;
            };
            let actor = match &event {
                Event::InstallerLogged { mac, .. } => installer_actor(&self.state, mac),
                _ => o.actor,
            };
            self.push(&mut batch, event, &actor, o.at, Some(source));
        }
        let encoded: Vec<(String, Vec<u8>)> =
            marks.iter().map(|(k, m)| (k.key(), m.encode())).collect();
        let refs: Vec<(&str, &[u8])> = encoded
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        self.commit(batch, &refs)
    }

    /// A source's committed read mark; an error when it does not decode.
    pub fn mark(&self, key: &MarkKey) -> Result<Option<Mark>> {
        match self.store.checkpoint(&key.key())? {
            Some(bytes) => Ok(Some(Mark::decode(key, &bytes)?)),
            None => Ok(None),
        }
    }
}

impl Sink for Engine {
    fn mark(&self, key: &MarkKey) -> Result<Option<Mark>, SinkError> {
        Engine::mark(self, key).map_err(|e| SinkError(format!("{e:#}")))
    }

    fn commit(
        &mut self,
        observed: Vec<(Observed, Source)>,
        marks: Vec<(MarkKey, Mark)>,
    ) -> Result<Committed, SinkError> {
        let before = self.state.last_seq();
        let (events, affected) = self
            .ingest(observed, &marks)
            .map_err(|e| SinkError(format!("{e:#}")))?;
        let render_error = self
            .render(&affected, before)
            .err()
            .map(|e| format!("rendering: {e:#}"));
        Ok(Committed {
            events: events.len() as u64,
            render_error,
        })
    }
}
