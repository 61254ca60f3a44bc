//! The engine as the sink of every source's [`nmt_replay::Pipeline`]: what log lines, journal
//! entries and installer syslog lines observed becomes events, committed with the sources'
//! read marks in one transaction, then the files they affect are brought up to date.

use anyhow::Result;
use nmt_projections::{Affected, Envelope, Event, Source, installer_actor, observe};
use nmt_replay::{Committed, Mark, MarkKey, Observed, Sink, SinkError};

use nmt_projections::State;

use super::{Batch, Engine, push_into};

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
        let mut batch = Batch::with_capacity(observed.len());
        let limit = self.config.daemon.new_machines_per_minute;
        stage_observed(
            &mut self.state,
            &mut self.discoveries,
            limit,
            &mut batch,
            observed,
        );
        let encoded = encode_marks(marks);
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

/// Decide what each observation makes against the state its predecessors left, fold it
/// into `state` and add it to `batch` (see [`Engine::ingest`]): never-seen machines over
/// `limit` a minute of log (0: no limit) are not recorded.
pub(super) fn stage_observed(
    state: &mut State,
    discoveries: &mut Discoveries,
    limit: u32,
    batch: &mut Batch,
    observed: Vec<(Observed, Source)>,
) {
    for (o, source) in observed {
        let Some(event) = observe(state, o.observation) else {
            continue;
        };
        if let Event::DhcpSeen { mac, .. } = &event
            && state.machine(mac).is_none()
            && !discoveries.admit(o.at, limit)
        {
            continue;
        }
        // A machine that boots again while its imager is at work was cut off: that job
        // failed, recorded before the boot.
        if let Some(failed) = nmt_projections::interrupted(state, &event) {
            push_into(
                state,
                batch,
                failed,
                "nmtd".into(),
                o.at,
                Some(source.clone()),
            );
        }
        let actor = match &event {
            Event::InstallerLogged { mac, .. } => installer_actor(state, mac),
            _ => o.actor,
        };
        push_into(state, batch, event, actor, o.at, Some(source));
    }
}

/// Sources' read marks as the store keeps them: key and encoded value.
pub(super) fn encode_marks(marks: &[(MarkKey, Mark)]) -> Vec<(String, Vec<u8>)> {
    marks.iter().map(|(k, m)| (k.key(), m.encode())).collect()
}

/// How many never-seen machines were recorded in the current minute of log, and how many
/// were not (over `[daemon] new_machines_per_minute`).
#[derive(Debug, Default)]
pub(crate) struct Discoveries {
    /// The minute (of observation time) being counted, and its discoveries so far.
    minute: i64,
    count: u32,
    /// Never-seen machines not recorded since this engine opened.
    pub(crate) limited: u64,
}

impl Discoveries {
    /// Whether a machine first seen at `at` may be recorded under `per_minute` (0: always).
    fn admit(&mut self, at: jiff::Timestamp, per_minute: u32) -> bool {
        if per_minute == 0 {
            return true;
        }
        let minute = at.as_second().div_euclid(60);
        if minute != self.minute {
            self.minute = minute;
            self.count = 0;
        }
        if self.count < per_minute {
            self.count += 1;
            true
        } else {
            self.limited += 1;
            false
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use nmt_replay::{FileSource, Resume};

    use super::*;
    use crate::OpenOptions;

    /// The real engine, with a commit failure injected on demand (as a full disk would).
    struct Flaky<'a> {
        engine: &'a mut Engine,
        fail_commit: bool,
    }

    impl Sink for Flaky<'_> {
        fn mark(&self, key: &MarkKey) -> Result<Option<Mark>, SinkError> {
            Sink::mark(&*self.engine, key)
        }
        fn commit(
            &mut self,
            observed: Vec<(Observed, Source)>,
            marks: Vec<(MarkKey, Mark)>,
        ) -> Result<Committed, SinkError> {
            if self.fail_commit {
                return Err(SinkError("No space left on device (injected)".into()));
            }
            Sink::commit(self.engine, observed, marks)
        }
    }

    #[test]
    fn a_failing_render_then_a_failing_commit_lose_and_double_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let opts = OpenOptions {
            state_dir: state.clone(),
            config: None,
            wait: Duration::from_secs(5),
            create: true,
        };
        drop(Engine::open(&opts).unwrap());
        // A real render failure: the boot entries' directory became a file.
        let entries = state.join("tftp/pxelinux.cfg");
        std::fs::remove_dir_all(&entries).unwrap();
        std::fs::write(&entries, "not a directory").unwrap();
        let mut engine = Engine::open(&opts).unwrap();
        let log = dir.path().join("dhcpd.log");
        let mut f = std::fs::File::create(&log).unwrap();
        let mut write = |from: u32, to: u32| {
            for i in from..to {
                writeln!(
                    f,
                    "Nov 21 02:05:11 gw dhcpd[77]: DHCPACK on 10.0.0.{} to 52:54:00:00:00:{i:02x} via eth0",
                    i + 1
                )
                .unwrap();
            }
        };
        let now = jiff::Timestamp::now();
        let mut src = FileSource::open(&log, &engine).unwrap();
        write(0, 5);
        src.read(1 << 20, now).unwrap();
        let mut sink = Flaky {
            engine: &mut engine,
            fail_commit: false,
        };
        let done = src.commit(&mut sink).unwrap();
        assert_eq!(done.events, 5);
        let why = done.render_error.expect("no entry can be written");
        assert!(why.contains("pxelinux.cfg"), "{why}");
        write(5, 9);
        src.read(1 << 20, now).unwrap();
        sink.fail_commit = true;
        let e = src.commit(&mut sink).unwrap_err();
        assert!(matches!(e.resume, Resume::Tail(Some(_))), "{e:?}");
        sink.fail_commit = false;
        write(9, 12);
        src.read(1 << 20, now).unwrap();
        src.commit(&mut sink).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        engine
            .events(None, None, &mut |env| {
                if let Event::DhcpSeen { mac, .. } = env.event {
                    *seen.entry(mac.to_string()).or_insert(0) += 1;
                }
                Ok(true)
            })
            .unwrap();
        assert_eq!(seen.len(), 12, "{seen:?}");
        assert!(seen.values().all(|n| *n == 1), "{seen:?}");
        // A restart goes on from the committed mark: nothing again.
        let mut again = FileSource::open(&log, &engine).unwrap();
        assert_eq!(again.read(1 << 20, now).unwrap().lines, 0);
    }
}
