//! The one path from what a source read to events: every log file nmtd follows, every
//! journal, the installers' syslog and `nmt replay logs` go through a [`Pipeline`].
//!
//! A pipeline parses and converts what its source read, counts it, and keeps the source's
//! read marks. [`Pipeline::flush`] hands a [`Sink`] (the engine) one batch of
//! observations with their [`Source`]s and the marks to commit in the same transaction.
//! Counts and marks move forward only when the sink says the batch is committed; when it
//! says nothing was, the converter goes back to where the last commit left it and the
//! source is told to read again from its last committed mark ([`Resume`]). A failure to
//! render the files after a commit is reported, but the lines are committed: they are
//! never read twice.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use jiff::Timestamp;
use nmt_parsers::{parse_journal_json, parse_line};
use nmt_projections::{Observation, Source, untrusted};
use serde::Serialize;

use crate::marks::{Mark, MarkError, MarkKey};
use crate::{Checkpoint, Converter, Observed, Tailer};

/// Where a pipeline's events go: the engine, in nmtd and in `nmt replay logs`.
pub trait Sink {
    /// The committed mark under `key`, if any.
    fn mark(&self, key: &MarkKey) -> Result<Option<Mark>, SinkError>;

    /// Turn the observations into events (each against the state its predecessors left)
    /// and commit them with the marks, in one transaction; then bring the files up to
    /// date. An error means nothing was committed.
    fn commit(
        &mut self,
        observed: Vec<(Observed, Source)>,
        marks: Vec<(MarkKey, Mark)>,
    ) -> Result<Committed, SinkError>;
}

/// A sink's failure: nothing was committed (or a mark could not be read).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl From<MarkError> for SinkError {
    fn from(e: MarkError) -> SinkError {
        SinkError(e.to_string())
    }
}

/// What a sink committed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// Events appended.
    pub events: u64,
    /// The events were committed, but the files could not be brought up to date.
    pub render_error: Option<String>,
}

/// What a source has read and made, committed (what `nmt status` shows).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Lines (entries, datagrams) read.
    pub lines: u64,
    /// Events appended.
    pub events: u64,
    /// Lines recognised that made no event of their own (detail lines, lines naming no
    /// machine).
    pub ignored: u64,
    /// Lines not recognised.
    pub rejects: u64,
    /// Installer log lines from an address no machine was given.
    pub unattributed: u64,
    /// Lines skipped because they were read before (replay).
    pub already: u64,
    /// The last line not recognised (lossy, shortened).
    pub last_reject: Option<String>,
    /// Lines not recognised, by why (a line nmt does not know, or noise), with a few
    /// examples of each.
    pub reject_reasons: std::collections::BTreeMap<String, Rejected>,
}

/// Lines not recognised for one reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Rejected {
    /// How many.
    pub count: u64,
    /// The first few (lossy, shortened).
    pub examples: Vec<String>,
}

/// How many examples of each reason are kept.
const REJECT_EXAMPLES: usize = 3;

impl Rejected {
    fn add(&mut self, o: &Rejected) {
        self.count += o.count;
        for e in &o.examples {
            if self.examples.len() < REJECT_EXAMPLES {
                self.examples.push(e.clone());
            }
        }
    }
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.lines += o.lines;
        self.events += o.events;
        self.ignored += o.ignored;
        self.rejects += o.rejects;
        self.unattributed += o.unattributed;
        self.already += o.already;
        if o.last_reject.is_some() {
            self.last_reject.clone_from(&o.last_reject);
        }
        for (why, r) in &o.reject_reasons {
            self.reject_reasons.entry(why.clone()).or_default().add(r);
        }
    }
}

/// Where a source must read again from after a batch could not be committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// A followed log: just after this committed position (from its start when `None`).
    Tail(Option<Checkpoint>),
    /// A journal: after this committed cursor (from its start when `None`).
    Cursor(Option<String>),
    /// Nothing to read again (syslog datagrams are gone; a replay is refused).
    Nothing,
}

/// A batch that could not be committed.
#[derive(Debug, thiserror::Error)]
#[error("committing: {error}")]
pub struct Uncommitted {
    /// Why.
    pub error: SinkError,
    /// Where to read again from.
    pub resume: Resume,
}

/// What is read but not committed yet.
#[derive(Default)]
struct Pending {
    observed: Vec<(Observed, Source)>,
    counts: Counts,
    /// File identity → end of the last line read from it.
    read_to: HashMap<u64, u64>,
    tail: Option<Checkpoint>,
    cursor: Option<String>,
}

/// The kind of source, for its marks and its events' [`Source`].
#[derive(Clone, Debug)]
enum Kind {
    File(MarkKey),
    Journal(String),
    Replay,
    Syslog,
}

/// One source's way from bytes read to committed events.
pub struct Pipeline {
    kind: Kind,
    /// One converter per lane (a replay merges several files, each its own lane).
    lanes: Vec<Converter>,
    /// The converters as the last commit left them.
    saved: Vec<Converter>,
    pending: Pending,
    counts: Counts,
    tail: Option<Checkpoint>,
    cursor: Option<String>,
    /// File identity → committed end (a cache of the store's `file:` marks).
    read_to: HashMap<u64, u64>,
}

impl Pipeline {
    fn new(kind: Kind) -> Pipeline {
        Pipeline {
            kind,
            lanes: vec![Converter::default()],
            saved: vec![Converter::default()],
            pending: Pending::default(),
            counts: Counts::default(),
            tail: None,
            cursor: None,
            read_to: HashMap::new(),
        }
    }

    /// A followed log file, going on from its committed mark. A mark that does not decode
    /// is an error: the file is not read from its start instead.
    pub fn file(path: &Path, sink: &dyn Sink) -> Result<Pipeline, SinkError> {
        let key = MarkKey::log(path);
        let mut p = Pipeline::new(Kind::File(key.clone()));
        if let Some(Mark::Tail(cp)) = sink.mark(&key)? {
            p.tail = Some(cp);
        }
        Ok(p)
    }

    /// A unit's journal, going on after its committed cursor.
    pub fn journal(unit: &str, sink: &dyn Sink) -> Result<Pipeline, SinkError> {
        let key = MarkKey::Journal(unit.to_string());
        let mut p = Pipeline::new(Kind::Journal(unit.to_string()));
        if let Some(Mark::Cursor(c)) = sink.mark(&key)? {
            p.cursor = Some(c);
        }
        Ok(p)
    }

    /// Archived logs (`nmt replay logs`): `lanes` files merged, each with its converter.
    pub fn replay(lanes: usize) -> Pipeline {
        let mut p = Pipeline::new(Kind::Replay);
        p.lanes = vec![Converter::default(); lanes.max(1)];
        p.saved = p.lanes.clone();
        p
    }

    /// The installers' syslog receiver.
    pub fn syslog() -> Pipeline {
        Pipeline::new(Kind::Syslog)
    }

    /// What was committed so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The committed position of a followed log.
    pub fn committed_tail(&self) -> Option<&Checkpoint> {
        self.tail.as_ref()
    }

    /// The committed cursor of a journal.
    pub fn committed_cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Lines read and not committed yet.
    pub fn pending_lines(&self) -> u64 {
        self.pending.counts.lines
    }

    fn reject(&mut self, bytes: &[u8], why: &dyn std::fmt::Display) {
        let line = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        let c = &mut self.pending.counts;
        c.rejects += 1;
        let r = c.reject_reasons.entry(why.to_string()).or_default();
        r.count += 1;
        if r.examples.len() < REJECT_EXAMPLES {
            r.examples.push(line.clone());
        }
        c.last_reject = Some(line);
    }

    /// One complete line of a log file (live or archived): `identity` is the file's content
    /// identity, `offset` the line's first byte, `reference` the time a stamp without a
    /// year is read against.
    pub fn line(
        &mut self,
        lane: usize,
        identity: u64,
        offset: u64,
        bytes: &[u8],
        reference: Timestamp,
    ) {
        self.pending.counts.lines += 1;
        let end = offset + bytes.len() as u64 + 1;
        let e = self.pending.read_to.entry(identity).or_insert(end);
        *e = (*e).max(end);
        let ll = match parse_line(bytes) {
            Ok(ll) => ll,
            Err(r) => return self.reject(bytes, &r.reason),
        };
        match self.lanes[lane].convert(&ll, reference) {
            Ok(o) => self
                .pending
                .observed
                .push((o, Source::LogFile { identity, offset })),
            Err(_) => self.pending.counts.ignored += 1,
        }
    }

    /// A followed log's position after the lines given so far.
    pub fn tail_at(&mut self, cp: Checkpoint) {
        self.pending.tail = Some(cp);
    }

    /// Whether a line of an archive was read before (by live ingest or an earlier replay):
    /// it is counted and skipped.
    pub fn already_read(
        &mut self,
        sink: &dyn Sink,
        identity: u64,
        offset: u64,
    ) -> Result<bool, SinkError> {
        let read_to = match self.read_to.get(&identity) {
            Some(v) => *v,
            None => {
                let v = match sink.mark(&MarkKey::File(identity))? {
                    Some(Mark::ReadTo(v)) => v,
                    _ => 0,
                };
                self.read_to.insert(identity, v);
                v
            }
        };
        let pending = self.pending.read_to.get(&identity).copied().unwrap_or(0);
        if offset < read_to.max(pending) {
            self.pending.counts.lines += 1;
            self.pending.counts.already += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// One line of `journalctl --output=json`.
    pub fn journal_entry(&mut self, line: &[u8], now: Timestamp) {
        self.pending.counts.lines += 1;
        let Kind::Journal(unit) = &self.kind else {
            return self.reject(line, &"not from a journal");
        };
        let unit = unit.clone();
        let entry = match parse_journal_json(line) {
            Ok(e) => e,
            Err(r) => return self.reject(line, &r.reason),
        };
        // An entry without a cursor could not be found again: it is not taken.
        let Some(cursor) = entry.cursor.clone() else {
            return self.reject(line, &"a journal entry without a cursor");
        };
        self.pending.cursor = Some(cursor);
        let ll = match entry.log_line() {
            Ok(ll) => ll,
            Err(r) => return self.reject(line, &r.reason),
        };
        match self.lanes[0].convert(&ll, now) {
            Ok(o) => self.pending.observed.push((o, Source::Journal { unit })),
            Err(_) => self.pending.counts.ignored += 1,
        }
    }

    /// One syslog datagram from `ip`, received at `at`.
    pub fn datagram(&mut self, ip: Ipv4Addr, datagram: &[u8], at: Timestamp) {
        self.pending.counts.lines += 1;
        let mut d = datagram;
        if d.first() == Some(&b'<')
            && let Some(end) = d.iter().take(6).position(|b| *b == b'>')
        {
            d = &d[end + 1..];
        }
        let d = d.strip_suffix(b"\n").unwrap_or(d);
        self.pending.observed.push((
            Observed {
                observation: Observation::InstallerLog {
                    ip,
                    line: untrusted(d),
                },
                at,
                actor: format!("installer@{ip}"),
            },
            Source::Syslog { ip },
        ));
    }

    /// A datagram from an IPv6 address (no machine has one): counted, not recorded.
    pub fn unattributed(&mut self) {
        self.pending.counts.lines += 1;
        self.pending.counts.unattributed += 1;
    }

    /// Commit what was read, with the marks, through `sink`. On success the counts and marks
    /// move forward; on failure nothing does, and [`Uncommitted::resume`] says where the
    /// source must read again from.
    pub fn flush(&mut self, sink: &mut dyn Sink) -> Result<Committed, Uncommitted> {
        let mut sealed = self.seal();
        let result = match sealed.is_empty() {
            true => Ok(Committed::default()),
            false => {
                let (observed, marks) = sealed.take();
                sink.commit(observed, marks)
            }
        };
        self.settle(sealed, result)
    }

    /// Take what was read out of the pipeline, with the marks to commit with it, so that it
    /// can be committed while the next batch is read: [`Pipeline::settle`] then says how the
    /// commit went. The converters as this batch leaves them go with it: a failed commit
    /// puts them back to where the last committed batch left them, and drops whatever was
    /// read after.
    pub fn seal(&mut self) -> Sealed {
        let pending = std::mem::take(&mut self.pending);
        let mut marks: Vec<(MarkKey, Mark)> = Vec::new();
        match &self.kind {
            Kind::File(key) => {
                if let Some(cp) = &pending.tail {
                    marks.push((key.clone(), Mark::Tail(cp.clone())));
                }
            }
            Kind::Journal(unit) => {
                if let Some(c) = &pending.cursor {
                    marks.push((MarkKey::Journal(unit.clone()), Mark::Cursor(c.clone())));
                }
            }
            Kind::Replay | Kind::Syslog => {}
        }
        let mut ends: Vec<(u64, u64)> = pending.read_to.iter().map(|(k, v)| (*k, *v)).collect();
        ends.sort_unstable();
        marks.extend(
            ends.iter()
                .map(|(id, end)| (MarkKey::File(*id), Mark::ReadTo(*end))),
        );
        Sealed {
            observed_count: pending.observed.len() as u64,
            observed: pending.observed,
            marks,
            counts: pending.counts,
            ends,
            tail: pending.tail,
            cursor: pending.cursor,
            lanes: self.lanes.clone(),
        }
    }

    /// How the commit of `sealed` (the batch [`Pipeline::seal`] took, committed or not)
    /// went: on success the counts and marks move forward to it; on failure nothing does,
    /// whatever was read since it is dropped, and [`Uncommitted::resume`] says where the
    /// source must read again from.
    pub fn settle(
        &mut self,
        sealed: Sealed,
        result: Result<Committed, SinkError>,
    ) -> Result<Committed, Uncommitted> {
        match result {
            Ok(done) => {
                let mut c = sealed.counts;
                c.events = done.events;
                if matches!(self.kind, Kind::Syslog) {
                    c.unattributed += sealed.observed_count.saturating_sub(done.events);
                }
                self.counts.add(&c);
                if sealed.tail.is_some() {
                    self.tail = sealed.tail;
                }
                if sealed.cursor.is_some() {
                    self.cursor = sealed.cursor;
                }
                for (id, end) in sealed.ends {
                    self.read_to.insert(id, end);
                }
                self.saved = sealed.lanes;
                Ok(done)
            }
            Err(error) => {
                self.pending = Pending::default();
                self.lanes.clone_from(&self.saved);
                let resume = match self.kind {
                    Kind::File(_) => Resume::Tail(self.tail.clone()),
                    Kind::Journal(_) => Resume::Cursor(self.cursor.clone()),
                    Kind::Replay | Kind::Syslog => Resume::Nothing,
                };
                Err(Uncommitted { error, resume })
            }
        }
    }
}

/// What a sink commits: observations with their sources, and the marks that go with them.
pub type ToCommit = (Vec<(Observed, Source)>, Vec<(MarkKey, Mark)>);

/// A batch taken out of a [`Pipeline`] to be committed ([`Pipeline::seal`]).
pub struct Sealed {
    observed: Vec<(Observed, Source)>,
    marks: Vec<(MarkKey, Mark)>,
    observed_count: u64,
    counts: Counts,
    ends: Vec<(u64, u64)>,
    tail: Option<Checkpoint>,
    cursor: Option<String>,
    /// The converters as this batch left them.
    lanes: Vec<Converter>,
}

impl Sealed {
    /// Whether there is nothing to commit (no observation, no mark).
    pub fn is_empty(&self) -> bool {
        self.observed.is_empty() && self.marks.is_empty()
    }

    /// What the sink is to commit: the observations and the marks.
    pub fn take(&mut self) -> ToCommit {
        (
            std::mem::take(&mut self.observed),
            std::mem::take(&mut self.marks),
        )
    }
}

/// What one [`FileSource::read`] did.
#[derive(Debug, Default)]
pub struct Read {
    /// Complete lines read.
    pub lines: usize,
    /// Bytes read.
    pub bytes: usize,
    /// What happened to the files (rotation, truncation …), for the daemon's log.
    pub events: Vec<crate::TailEvent>,
}

/// A followed log file: nmt's [`Tailer`] feeding a [`Pipeline`]. Read without the engine,
/// commit with it; a failed commit puts the tailer back on the last committed position.
pub struct FileSource {
    tailer: Tailer,
    pipeline: Pipeline,
}

impl FileSource {
    /// Follow `path` from its committed mark.
    pub fn open(path: &Path, sink: &dyn Sink) -> Result<FileSource, SinkError> {
        let pipeline = Pipeline::file(path, sink)?;
        Ok(FileSource {
            tailer: Tailer::new(path, pipeline.committed_tail().cloned()),
            pipeline,
        })
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        self.tailer.path()
    }

    /// The pipeline (counts, committed position).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Read up to about `max_bytes` of complete lines into the pipeline.
    pub fn read(&mut self, max_bytes: usize, now: Timestamp) -> std::io::Result<Read> {
        let batch = self.tailer.poll(max_bytes)?;
        let mut read = Read {
            lines: batch.lines.len(),
            events: batch.events,
            ..Read::default()
        };
        self.pipeline.pending.observed.reserve(batch.lines.len());
        for l in &batch.lines {
            read.bytes += l.bytes.len() + 1;
            self.pipeline.line(0, l.identity, l.offset, &l.bytes, now);
        }
        if let Some(cp) = batch.checkpoint {
            self.pipeline.tail_at(cp);
        }
        Ok(read)
    }

    /// Commit what was read. On failure the tailer goes back to the last committed
    /// position, so those lines are read again, once.
    pub fn commit(&mut self, sink: &mut dyn Sink) -> Result<Committed, Uncommitted> {
        let done = self.pipeline.flush(sink);
        self.after(done)
    }

    /// Take what was read, to be committed while the next batch is read
    /// ([`Pipeline::seal`]).
    pub fn seal(&mut self) -> Sealed {
        self.pipeline.seal()
    }

    /// How the commit of `sealed` went ([`Pipeline::settle`]). On failure what was read
    /// since is dropped and the tailer goes back to the last committed position.
    pub fn settle(
        &mut self,
        sealed: Sealed,
        result: Result<Committed, SinkError>,
    ) -> Result<Committed, Uncommitted> {
        let done = self.pipeline.settle(sealed, result);
        self.after(done)
    }

    fn after(&mut self, done: Result<Committed, Uncommitted>) -> Result<Committed, Uncommitted> {
        done.inspect_err(|e| {
            if let Resume::Tail(from) = &e.resume {
                self.tailer = Tailer::new(self.tailer.path().to_path_buf(), from.clone());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A sink that keeps what it commits in memory, all or nothing, and fails on demand.
    #[derive(Default)]
    struct FakeSink {
        committed: Vec<(Observed, Source)>,
        marks: HashMap<String, Vec<u8>>,
        fail_commit: bool,
        fail_render: bool,
    }

    impl Sink for FakeSink {
        fn mark(&self, key: &MarkKey) -> Result<Option<Mark>, SinkError> {
            match self.marks.get(&key.key()) {
                Some(b) => Ok(Some(Mark::decode(key, b)?)),
                None => Ok(None),
            }
        }
        fn commit(
            &mut self,
            observed: Vec<(Observed, Source)>,
            marks: Vec<(MarkKey, Mark)>,
        ) -> Result<Committed, SinkError> {
            if self.fail_commit {
                return Err(SinkError("disk full (injected)".into()));
            }
            let events = observed.len() as u64;
            self.committed.extend(observed);
            for (k, m) in marks {
                self.marks.insert(k.key(), m.encode());
            }
            Ok(Committed {
                events,
                render_error: self
                    .fail_render
                    .then(|| "dhcpd rejected the file (injected)".into()),
            })
        }
    }

    fn ack(i: u32) -> String {
        format!(
            "Nov 20 02:05:{:02} boot1 dnsmasq-dhcp[812]: DHCPACK(br0) 10.0.0.{} 52:54:00:00:00:{:02x}",
            i % 60,
            i % 250 + 1,
            i
        )
    }

    fn macs(sink: &FakeSink) -> Vec<String> {
        sink.committed
            .iter()
            .map(|(o, _)| match &o.observation {
                Observation::Dhcp { mac, .. } => mac.to_string(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn expected(n: std::ops::Range<u32>) -> Vec<String> {
        n.map(|i| format!("52:54:00:00:00:{i:02x}")).collect()
    }

    /// A directory with `dnsmasq.log`, a way to append acknowledgements `r` to it, an empty
    /// sink, and the log followed from its start.
    fn ack_log() -> (
        tempfile::TempDir,
        impl FnMut(std::ops::Range<u32>),
        FakeSink,
        FileSource,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dnsmasq.log");
        let mut log = std::fs::File::create(&path).unwrap();
        let sink = FakeSink::default();
        let src = FileSource::open(&path, &sink).unwrap();
        let write = move |r: std::ops::Range<u32>| {
            for i in r {
                writeln!(log, "{}", ack(i)).unwrap();
            }
            log.flush().unwrap();
        };
        (dir, write, sink, src)
    }

    #[test]
    fn a_render_failure_then_a_commit_failure_reads_no_line_twice() {
        let (dir, mut write, mut sink, mut src) = ack_log();
        let now: Timestamp = "2026-11-20T03:00:00Z".parse().unwrap();
        // Batch 1 commits, but the files cannot be rendered.
        write(0..10);
        src.read(1 << 20, now).unwrap();
        sink.fail_render = true;
        let done = src.commit(&mut sink).unwrap();
        assert_eq!(done.events, 10);
        assert!(done.render_error.is_some());
        sink.fail_render = false;
        // Batch 2 cannot be committed: read again from the end of batch 1, not its start.
        write(10..20);
        src.read(1 << 20, now).unwrap();
        sink.fail_commit = true;
        let e = src.commit(&mut sink).unwrap_err();
        assert!(
            matches!(e.resume, Resume::Tail(Some(ref cp)) if cp.offset > 0),
            "{e:?}"
        );
        sink.fail_commit = false;
        write(20..25);
        src.read(1 << 20, now).unwrap();
        src.commit(&mut sink).unwrap();
        assert_eq!(macs(&sink), expected(0..25), "each line exactly once");
        assert_eq!(src.pipeline().counts().lines, 25);
        assert_eq!(src.pipeline().counts().events, 25);
        // A restart goes on from the committed mark and finds nothing new.
        let mut again = FileSource::open(&dir.path().join("dnsmasq.log"), &sink).unwrap();
        again.read(1 << 20, now).unwrap();
        again.commit(&mut sink).unwrap();
        assert_eq!(sink.committed.len(), 25);
    }

    #[test]
    fn a_batch_read_while_the_one_before_commits_is_dropped_when_that_commit_fails() {
        let (_dir, mut write, mut sink, mut src) = ack_log();
        let now: Timestamp = "2026-11-20T03:00:00Z".parse().unwrap();
        // Batch 1 is sealed and commits while batch 2 is read.
        write(0..10);
        src.read(1 << 20, now).unwrap();
        let mut one = src.seal();
        write(10..20);
        assert_eq!(src.read(1 << 20, now).unwrap().lines, 10);
        let (observed, marks) = one.take();
        let done = sink.commit(observed, marks);
        src.settle(one, done).unwrap();
        assert_eq!(
            src.pipeline().counts().lines,
            10,
            "batch 2 is not committed yet"
        );
        // Batch 2 is sealed; batch 3 is read while batch 2 fails to commit: both are read
        // again, from the end of batch 1.
        let mut two = src.seal();
        write(20..30);
        assert_eq!(src.read(1 << 20, now).unwrap().lines, 10);
        sink.fail_commit = true;
        let (observed, marks) = two.take();
        let done = sink.commit(observed, marks);
        let e = src.settle(two, done).unwrap_err();
        assert!(
            matches!(e.resume, Resume::Tail(Some(ref cp)) if cp.offset > 0),
            "{e:?}"
        );
        assert_eq!(src.pipeline().pending_lines(), 0, "batch 3 was dropped");
        sink.fail_commit = false;
        assert_eq!(src.read(1 << 20, now).unwrap().lines, 20);
        src.commit(&mut sink).unwrap();
        assert_eq!(macs(&sink), expected(0..30), "each line exactly once");
        assert_eq!(src.pipeline().counts().lines, 30);
        assert_eq!(src.pipeline().counts().events, 30);
    }

    #[test]
    fn a_journal_batch_that_fails_to_commit_is_read_again_not_skipped() {
        let now: Timestamp = "2026-11-20T03:00:00Z".parse().unwrap();
        let entries: Vec<String> = (0..9u32)
            .map(|i| {
                serde_json::json!({
                    "__CURSOR": format!("s=1;i={i}"),
                    "__REALTIME_TIMESTAMP": "1763604311000000",
                    "SYSLOG_IDENTIFIER": "dhcpd",
                    "_HOSTNAME": "gw",
                    "MESSAGE": format!("DHCPACK on 10.0.0.{} to 52:54:00:00:00:{i:02x} via eth0", i + 1),
                })
                .to_string()
            })
            .collect();
        // What `journalctl --after-cursor` would print.
        let after = |cursor: Option<&str>| -> Vec<String> {
            let from = cursor.map_or(0, |c| {
                c.rsplit('=').next().unwrap().parse::<usize>().unwrap() + 1
            });
            entries[from..].to_vec()
        };
        let mut sink = FakeSink::default();
        let mut p = Pipeline::journal("isc-dhcp-server.service", &sink).unwrap();
        let feed = |p: &mut Pipeline, lines: &[String]| {
            for l in lines {
                p.journal_entry(l.as_bytes(), now);
            }
        };
        // Entries 0..3 commit; rendering fails.
        let stream = after(p.committed_cursor());
        feed(&mut p, &stream[..3]);
        sink.fail_render = true;
        assert!(p.flush(&mut sink).unwrap().render_error.is_some());
        sink.fail_render = false;
        // Entries 3..6 fail to commit: the follower starts again after entry 2.
        feed(&mut p, &stream[3..6]);
        sink.fail_commit = true;
        let e = p.flush(&mut sink).unwrap_err();
        assert_eq!(e.resume, Resume::Cursor(Some("s=1;i=2".into())));
        sink.fail_commit = false;
        let stream = after(p.committed_cursor());
        feed(&mut p, &stream);
        p.flush(&mut sink).unwrap();
        assert_eq!(macs(&sink), expected(0..9), "nothing lost, nothing doubled");
        assert_eq!(
            Mark::decode(
                &MarkKey::Journal("isc-dhcp-server.service".into()),
                &sink.marks["journal:isc-dhcp-server.service"]
            )
            .unwrap(),
            Mark::Cursor("s=1;i=8".into())
        );
        assert_eq!(p.counts().events, 9);
    }

    #[test]
    fn a_mark_that_does_not_decode_stops_the_source() {
        let mut sink = FakeSink::default();
        sink.marks
            .insert("log:/var/log/dnsmasq.log".into(), b"{\"dev\":".to_vec());
        let e = FileSource::open(Path::new("/var/log/dnsmasq.log"), &sink)
            .err()
            .unwrap();
        assert!(e.to_string().contains("does not decode"), "{e}");
    }

    #[test]
    fn a_datagram_loses_its_priority_and_its_text_stays_data() {
        let mut sink = FakeSink::default();
        let mut p = Pipeline::syslog();
        let ip = Ipv4Addr::new(10, 0, 0, 7);
        let at = Timestamp::UNIX_EPOCH;
        p.datagram(ip, b"<13>main-menu[312]: INFO: Menu item 'partman'\n", at);
        p.datagram(ip, b"<13>a\x1b[2Jb", at);
        p.flush(&mut sink).unwrap();
        let lines: Vec<&str> = sink
            .committed
            .iter()
            .map(|(o, s)| {
                assert_eq!(s, &Source::Syslog { ip });
                match &o.observation {
                    Observation::InstallerLog { line, .. } => line.as_str(),
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(
            lines,
            ["main-menu[312]: INFO: Menu item 'partman'", "a\\u{1b}[2Jb"]
        );
    }
}
