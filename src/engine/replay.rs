//! Bringing history back: `journal import` (events exactly as they were) and `replay logs`
//! (archived DHCP/TFTP logs through the same parsers as live ingest).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use nmt_projections::{Affected, Envelope, Event, Source, installer_actor, observe};
use nmt_replay::{ArchiveLine, Committed, Mark, MarkKey, Observed, Pipeline, Sink, SinkError};

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

/// Whether an export read whole with `events` events and `trailer` may be imported: why it
/// may be only the start of the log (`None` for a whole export), or the refusal, which says
/// that nothing was imported (no events; only the start of the log without `partial`).
pub fn whole_or_partial(
    events: u64,
    trailer: Option<&nmt_replay::Trailer>,
    name: &std::path::Path,
    partial: bool,
) -> Result<Option<String>> {
    if events == 0 {
        bail!("{} holds no events; nothing was imported", name.display());
    }
    // Why this may be only the start of the log; a whole export needs no --partial.
    let prefix = match trailer {
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
             or, to import these {events} events as the start of the log on purpose, run \
             again with --partial"
        );
    }
    Ok(prefix)
}

/// How far each log file was read, from the events' sources (marks are not in a journal):
/// replay after an import then skips what the journal already holds.
fn note_read_to(read_to: &mut HashMap<u64, u64>, env: &Envelope) {
    if let Some(Source::LogFile { identity, offset }) = &env.source {
        let e = read_to.entry(*identity).or_insert(0);
        *e = (*e).max(offset + 1);
    }
}

/// The read marks of [`note_read_to`]'s files.
fn read_marks(read_to: HashMap<u64, u64>) -> Vec<(MarkKey, Mark)> {
    read_to
        .into_iter()
        .map(|(id, end)| (MarkKey::File(id), Mark::ReadTo(end)))
        .collect()
}

/// What [`import_journal`] did.
#[derive(Debug)]
pub struct Imported {
    /// Events imported.
    pub events: u64,
    /// The last one's sequence number.
    pub last: u64,
    /// Why the export may be only the start of the log (imported with `--partial`).
    pub partial: Option<String>,
    /// The files written after.
    pub written: WriteOutcome,
}

/// Events `journal import` commits at a time.
const IMPORT_BATCH: usize = 50_000;
/// Events between an import's snapshots, as many as the store keeps of an old log: one a
/// batch would leave `nmt show --at` folding up to 50,000 events.
const IMPORT_SNAPSHOT_EVERY: u64 = crate::store::SNAPSHOT_SPACING;
/// What an import's batch is sized for: it is written once it holds `IMPORT_BATCH` events,
/// and a chunk of the export may take it past that (growing it would copy it whole).
const IMPORT_ROOM: usize = IMPORT_BATCH + nmt_replay::CHUNK_LINES;

/// `journal import`: rebuild the empty store of `opts.state_dir` from an export, exactly as
/// it was (same sequence numbers, times, actors and sources), read from `reader` a chunk at
/// a time (`name` is how refusals call it), then render every file. Every line is decoded,
/// the events are gap-free, the trailer matches when there is one, and there is at least
/// one event; an export that may be only the start of the log is refused unless `partial`
/// ([`whole_or_partial`]). Every refusal says that nothing was imported, and refused when the
/// store already holds events.
///
/// The events go into a new store file beside the state's (`nmt.redb.importing`), which
/// takes the state's place only once the whole export was read and checked (the trailer's
/// count and digest come at its end), so memory stays bounded however long the export is,
/// and a refused, failed or interrupted import leaves the state as it was.
pub fn import_journal(
    opts: &super::OpenOptions,
    reader: impl std::io::BufRead + Send,
    name: &std::path::Path,
    partial: bool,
) -> Result<Imported> {
    let real = opts.state_dir.join(super::DB_FILE);
    // An existing store is held while the import runs (no nmtd starts on it meanwhile).
    let held = match real.exists() {
        true => Some(Engine::open_bare(opts)?),
        false => None,
    };
    if let Some(engine) = &held {
        engine.refuse_unless_empty()?;
    }
    // A refused import leaves no state directory it made.
    let new_dir = !opts.state_dir.exists();
    super::create_state_dir(&opts.state_dir)?;
    let temp = opts.state_dir.join(format!("{}.importing", super::DB_FILE));
    let remove = |path: &std::path::Path| match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::Error::new(e).context(format!("while removing {}", path.display())))
        }
        _ => Ok(()),
    };
    // What an interrupted import left.
    remove(&temp)?;
    let store = crate::store::RedbStore::open(&temp, opts.wait)?;
    let mut engine = Engine::open_bare_with_store(opts, store)?;
    let imported = engine.import_stream(reader, name, partial);
    drop(engine);
    let (events, last, prefix) = match imported {
        Ok(done) => done,
        Err(e) => {
            remove(&temp)?;
            if new_dir {
                let _ = std::fs::remove_dir(&opts.state_dir);
            }
            return Err(e);
        }
    };
    drop(held);
    std::fs::rename(&temp, &real).with_context(|| {
        format!(
            "while moving the imported store {} to {}",
            temp.display(),
            real.display()
        )
    })?;
    if let Ok(dir) = std::fs::File::open(&opts.state_dir) {
        let _ = dir.sync_all();
    }
    let mut engine = Engine::open_bare(opts)?;
    // The imported log's own key when it carries one (an old store's), else a new one.
    engine.attach_site_key(true)?;
    let written = engine.render_all()?;
    Ok(Imported {
        events,
        last,
        partial: prefix,
        written,
    })
}

impl Engine {
    /// Refused when the store already holds events.
    fn refuse_unless_empty(&self) -> Result<()> {
        if self.state.last_seq() != 0 {
            bail!(
                "{} already holds {} events; `journal import` rebuilds an empty state \
                 directory: give it a new --state DIR",
                self.config.state_dir.display(),
                self.state.last_seq()
            );
        }
        Ok(())
    }

    /// Fold and commit an export's chunks as they are read, with the log files' read marks
    /// last: the events imported, the last one's sequence number, and why the export may be
    /// only the start of the log.
    fn import_stream(
        &mut self,
        reader: impl std::io::BufRead + Send,
        name: &std::path::Path,
        partial: bool,
    ) -> Result<(u64, u64, Option<String>)> {
        let mut read_to = HashMap::new();
        let mut batch = Batch::with_capacity(IMPORT_ROOM);
        batch.track_affected = false;
        let mut json = Vec::with_capacity(IMPORT_ROOM);
        let mut count = 0u64;
        // Full batches are written on a thread of their own while the next one is folded: one
        // in flight at a time. The store writes nothing more once one failed.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Staged>(1);
        // Written batches come back emptied, to be filled again: a new one is 20 MB of fresh
        // pages to fault in and zero, every batch.
        let (back, spare) = std::sync::mpsc::channel::<Batch>();
        let mut snapshots = Vec::new();
        let store = &mut self.store;
        let state_dir = &self.config.state_dir;
        let state = &mut self.state;
        let snapshot_seq = &mut self.snapshot_seq;
        let (read, written) = std::thread::scope(|s| {
            let writer = s.spawn(move || match write_staged(&mut **store, rx, back) {
                (_, Some(e)) => Err(super::not_written(e, state_dir)),
                (_, None) => Ok(()),
            });
            let read = nmt_replay::read_export_chunks(reader, &mut |chunk| {
                count += chunk.events.len() as u64;
                for (env, line) in chunk.events.into_iter().zip(chunk.lines) {
                    // The line is the event's stored JSON as it is, unless an older shape
                    // that reading upcasts.
                    json.push(if env.v == nmt_projections::SCHEMA_VERSION {
                        line
                    } else {
                        env.to_json()
                    });
                    note_read_to(&mut read_to, &env);
                    super::stage_into(state, &mut batch, env);
                }
                // Made between the chunks, written with the batch they are in.
                if let Some(snap) = super::snapshot_due(state, *snapshot_seq, IMPORT_SNAPSHOT_EVERY)
                {
                    *snapshot_seq = snap.seq;
                    snapshots.push(snap);
                }
                if batch.envelopes.len() >= IMPORT_BATCH {
                    let mut next = spare.try_recv().unwrap_or_else(|_| {
                        let mut new = Batch::with_capacity(IMPORT_ROOM);
                        new.track_affected = false;
                        new
                    });
                    let next_json = next
                        .json
                        .take()
                        .unwrap_or_else(|| Vec::with_capacity(IMPORT_ROOM));
                    let mut full = std::mem::replace(&mut batch, next);
                    full.json = Some(std::mem::replace(&mut json, next_json));
                    let staged = Staged {
                        batch: full,
                        marks: Vec::new(),
                        snapshots: std::mem::take(&mut snapshots),
                    };
                    if tx.send(staged).is_err() {
                        return Err(nmt_replay::JournalError::Io(std::io::Error::other(
                            "the import stopped",
                        )));
                    }
                }
                Ok(())
            });
            drop(tx);
            let written = writer
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("writing the store panicked")));
            (read, written)
        });
        if let Err(e) = written {
            return Err(e.context("nothing was imported"));
        }
        let trailer =
            read.with_context(|| format!("{} was refused; nothing was imported", name.display()))?;
        let prefix = whole_or_partial(count, trailer.as_ref(), name, partial)?;
        batch.json = Some(json);
        self.commit_with(batch, &[], snapshots)
            .context("nothing was imported")?;
        self.ingest(Vec::new(), &read_marks(read_to))
            .context("nothing was imported")?;
        Ok((count, self.state.last_seq(), prefix))
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
        self.replay_in_batches(paths, years, progress, REPLAY_BATCH)
    }

    /// [`Engine::replay`], committing every `batch` lines.
    fn replay_in_batches(
        &mut self,
        paths: &[PathBuf],
        years: nmt_replay::YearRule,
        progress: Option<Box<dyn FnMut(nmt_replay::Progress) + Send>>,
        batch: u64,
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
        // What earlier reads of these files reached, read now: while the replay runs, the
        // store is the writing thread's.
        let mut read_before = HashMap::new();
        for a in merged.archives() {
            let key = MarkKey::File(a.identity());
            read_before.insert(a.identity(), self.mark(&key)?);
        }
        let before = self.state.last_seq();
        let limit = self.config.daemon.new_machines_per_minute;
        let store = &mut self.store;
        let state_dir = &self.config.state_dir;
        // Each batch is decided and folded here, then written on a thread of its own while
        // the next one is read and folded: one in flight at a time, and the store writes
        // nothing more once one failed.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Staged>(1);
        // Written batches come back emptied, to be filled again (fresh pages cost more to
        // fault in and zero than the events they hold).
        let (back, spare) = std::sync::mpsc::channel::<Batch>();
        let mut sink = Staging {
            state: &mut self.state,
            discoveries: &mut self.discoveries,
            limit,
            snapshot_seq: &mut self.snapshot_seq,
            read_before,
            affected: Affected::default(),
            tx,
            spare,
        };
        let (fed, affected, written) = std::thread::scope(|s| {
            let writer = s.spawn(move || write_staged(&mut **store, rx, back));
            let fed = feed(merged, &mut pipeline, &mut sink, batch);
            let Staging { affected, tx, .. } = sink;
            drop(tx);
            let written = writer.join();
            (fed, affected, written)
        });
        let failed = match written {
            Ok((_, None)) => None,
            Ok((0, Some(e))) => Some(super::not_written(e, state_dir)),
            Ok((n, Some(e))) => {
                let hint = super::write_hint(&e, state_dir);
                Some(anyhow::Error::new(e).context(format!(
                    "the replay stopped: the {n} events of its first lines are recorded, the \
                     rest are not: the store could not write them{hint}; running the replay \
                     again goes on after the lines recorded"
                )))
            }
            Err(_) => Some(anyhow::anyhow!(
                "the replay stopped: writing the store panicked; running the replay again goes \
                 on after what it wrote"
            )),
        };
        if let Some(e) = failed {
            // The fold ran ahead of the store: go back to what the store holds. What was
            // written stays, and a replay run again skips it.
            self.load()?;
            return Err(e);
        }
        // The files are brought up to date once, for every batch: before a read error too,
        // since what was read before it is recorded.
        let rendered = self.render(&affected, before);
        let untimed = fed?;
        let c = pipeline.counts();
        if let Err(e) = rendered {
            bail!(
                "the replayed events are recorded ({} events from {} lines), but the generated \
                 files are not up to date: rendering: {e:#}; fix the cause and run `nmt render`",
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
        let untimed = feed(merged, &mut pipeline, &mut sink, REPLAY_BATCH)?;
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

/// Lines `replay logs` commits at a time. Each commit rewrites the pages of the machine index
/// it touches, which a 10,000-machine log spreads over all of them: measured on 1.5M lines,
/// 20,000 a commit took 11.7 s, 100,000 took 6.3 s (about 230 MB resident), 250,000 took
/// about as long with twice the memory. With a batch written while the next is folded,
/// 100,000 keeps a 10,000-machine replay near 400 MB resident.
const REPLAY_BATCH: u64 = 100_000;

/// Lines the reading thread hands over at a time.
const READ_CHUNK: usize = 4096;

/// Feed every line of `merged` not read before through `pipeline` into `sink`, committing
/// every `batch` lines and at the end: the lines without a time of their own. The archives
/// are read (decompressed, split and merged in time order) on a thread of their own while
/// lines are converted and handed to the sink on this one.
fn feed(
    merged: nmt_replay::Merged,
    pipeline: &mut Pipeline,
    sink: &mut dyn Sink,
    batch: u64,
) -> Result<u64> {
    let now = Timestamp::now();
    let mut untimed = 0;
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<ArchiveLine>>>(8);
    std::thread::scope(|s| {
        // Stops when this side stops taking (an error here drops the receiver).
        s.spawn(move || {
            let mut chunk = Vec::with_capacity(READ_CHUNK);
            for line in merged {
                match line {
                    Ok(l) => chunk.push(l),
                    Err(e) => {
                        let _ = tx.send(Ok(chunk));
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
                if chunk.len() == READ_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(READ_CHUNK));
                    if tx.send(Ok(full)).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(Ok(chunk));
        });
        for chunk in rx {
            for l in chunk? {
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
                if pipeline.pending_lines() >= batch {
                    pipeline.flush(sink)?;
                }
            }
        }
        pipeline.flush(sink)?;
        Ok(untimed)
    })
}

/// Write each staged batch as it comes, handing it back emptied to be filled again: the
/// events written, and the failure that stopped the writing (nothing is written after it).
fn write_staged(
    store: &mut dyn crate::store::EventStore,
    staged: std::sync::mpsc::Receiver<Staged>,
    back: std::sync::mpsc::Sender<Batch>,
) -> (u64, Option<crate::store::StoreError>) {
    let mut written = 0;
    for Staged {
        mut batch,
        marks,
        snapshots,
    } in staged
    {
        let refs: Vec<(&str, &[u8])> = marks
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        if let Err(e) = super::append_batch(store, &batch, &refs, &snapshots) {
            return (written, Some(e));
        }
        written += batch.envelopes.len() as u64;
        batch.clear();
        let _ = back.send(batch);
    }
    (written, None)
}

/// A batch decided and folded (a replay's, an import's), for the writing thread: its events,
/// the read marks that go with them and the snapshots due within or after them.
struct Staged {
    batch: Batch,
    marks: Vec<(String, Vec<u8>)>,
    snapshots: Vec<super::Snapped>,
}

/// The engine's state as a replay's sink: each batch is decided and folded as live ingest
/// does ([`super::ingest::stage_observed`]), then handed to the writing thread; what the
/// batches affect is rendered once they are all written.
struct Staging<'a> {
    state: &'a mut nmt_projections::State,
    discoveries: &'a mut super::ingest::Discoveries,
    limit: u32,
    snapshot_seq: &'a mut u64,
    /// Each archive's read mark as the replay began (the store cannot be read meanwhile).
    read_before: HashMap<u64, Option<Mark>>,
    affected: Affected,
    tx: std::sync::mpsc::SyncSender<Staged>,
    /// Batches the writing thread has written and emptied.
    spare: std::sync::mpsc::Receiver<Batch>,
}

impl Sink for Staging<'_> {
    fn mark(&self, key: &MarkKey) -> Result<Option<Mark>, SinkError> {
        match key {
            MarkKey::File(id) if let Some(mark) = self.read_before.get(id) => Ok(mark.clone()),
            _ => Err(SinkError(format!(
                "the replay asked for the read mark {} of no file it reads",
                key.key()
            ))),
        }
    }

    fn commit(
        &mut self,
        observed: Vec<(Observed, Source)>,
        marks: Vec<(MarkKey, Mark)>,
    ) -> Result<Committed, SinkError> {
        let mut batch = match self.spare.try_recv() {
            Ok(b) => b,
            Err(_) => Batch::with_capacity(observed.len()),
        };
        super::ingest::stage_observed(
            self.state,
            self.discoveries,
            self.limit,
            &mut batch,
            observed,
        );
        let events = batch.envelopes.len() as u64;
        self.affected.extend(std::mem::take(&mut batch.affected));
        let snapshots: Vec<_> =
            super::snapshot_due(self.state, *self.snapshot_seq, super::SNAPSHOT_EVERY)
                .into_iter()
                .collect();
        if let Some(s) = snapshots.last() {
            *self.snapshot_seq = s.seq;
        }
        let staged = Staged {
            batch,
            marks: super::ingest::encode_marks(&marks),
            snapshots,
        };
        // A failed write ends the writing thread; its error is the replay's.
        self.tx
            .send(staged)
            .map_err(|_| SinkError("the store stopped taking events".into()))?;
        Ok(Committed {
            events,
            render_error: None,
        })
    }
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::ops::RangeInclusive;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use nmt_projections::Mac;

    use super::*;
    use crate::store::{Append, EventStore, Snapshot, StoreError};
    use crate::{MemoryStore, OpenOptions};

    /// A store whose appends fail, as on a full disk, once `appends_left` reaches 0.
    struct FillsUp {
        inner: MemoryStore,
        appends_left: Arc<AtomicUsize>,
    }

    impl EventStore for FillsUp {
        fn last_seq(&self) -> Result<u64, StoreError> {
            self.inner.last_seq()
        }
        fn append(
            &mut self,
            batch: &[Append<'_>],
            checkpoints: &[(&str, &[u8])],
            snapshots: &[Snapshot<'_>],
        ) -> Result<(), StoreError> {
            let left = self.appends_left.load(Ordering::SeqCst);
            if left == 0 {
                return Err(StoreError::Backend(
                    std::io::Error::from_raw_os_error(28).into(),
                ));
            }
            self.appends_left.store(left - 1, Ordering::SeqCst);
            self.inner.append(batch, checkpoints, snapshots)
        }
        fn scan(
            &self,
            range: RangeInclusive<u64>,
            visit: &mut dyn FnMut(Envelope) -> bool,
        ) -> Result<(), StoreError> {
            self.inner.scan(range, visit)
        }
        fn seqs_for_machine(&self, mac: &Mac) -> Result<Vec<u64>, StoreError> {
            self.inner.seqs_for_machine(mac)
        }
        fn get(&self, seq: u64) -> Result<Option<Envelope>, StoreError> {
            self.inner.get(seq)
        }
        fn snapshot_at_or_before(&self, seq: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
            self.inner.snapshot_at_or_before(seq)
        }
        fn snapshot_for_time(&self, at: Timestamp) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
            self.inner.snapshot_for_time(at)
        }
        fn late_after(&self, seq: u64, at: Timestamp) -> Result<Vec<u64>, StoreError> {
            self.inner.late_after(seq, at)
        }
        fn checkpoint(&self, source: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.checkpoint(source)
        }
    }

    /// The events a store holds after event `after`, in order, as their JSON without the
    /// append time.
    fn events_after(engine: &Engine, after: u64) -> Vec<String> {
        let mut out = Vec::new();
        engine
            .events(None, None, &mut |mut env| {
                if env.seq > after {
                    env.recorded_at = Timestamp::UNIX_EPOCH;
                    out.push(String::from_utf8(env.to_json()).unwrap());
                }
                Ok(true)
            })
            .unwrap();
        out
    }

    #[test]
    fn a_write_failing_mid_replay_keeps_the_batches_before_it_and_a_second_run_adds_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let opts = |name: &str| {
            let state = dir.path().join(name);
            std::fs::create_dir_all(&state).unwrap();
            OpenOptions {
                state_dir: state,
                config: None,
                wait: Duration::from_secs(5),
                create: true,
            }
        };
        // 2,500 lines about 500 machines, committed 400 lines at a time: 7 batches.
        let log = dir.path().join("dhcpd.log");
        let mut f = std::fs::File::create(&log).unwrap();
        for i in 0..2_500u32 {
            let m = i % 500;
            writeln!(
                f,
                "Nov 21 02:{:02}:{:02} gw dhcpd[77]: DHCPACK on 10.0.{}.{} to 52:54:00:00:{:02x}:{:02x} via eth0",
                i / 60 % 60,
                i % 60,
                m >> 8,
                m & 0xff,
                m >> 8,
                m & 0xff
            )
            .unwrap();
        }
        drop(f);
        let paths = [log];
        let years = nmt_replay::YearRule::Fixed(2025);

        // Told apart: the same replay on a store that never fails.
        let mut whole = Engine::open_with_store(&opts("whole"), MemoryStore::new()).unwrap();
        let done = whole.replay_in_batches(&paths, years, None, 400).unwrap();
        assert_eq!((done.lines, done.events), (2_500, 2_500));

        let appends_left = Arc::new(AtomicUsize::new(usize::MAX));
        let store = FillsUp {
            inner: MemoryStore::new(),
            appends_left: appends_left.clone(),
        };
        let mut engine = Engine::open_with_store(&opts("filled"), store).unwrap();
        let start = engine.state().last_seq();
        assert_eq!(start, whole.state().last_seq() - 2_500);
        // The first batch finds the disk full: nothing is recorded, and it says so.
        let fails = |engine: &mut Engine| {
            let err = engine.replay_in_batches(&paths, years, None, 400);
            format!("{:#}", err.unwrap_err())
        };
        appends_left.store(0, Ordering::SeqCst);
        let err = fails(&mut engine);
        assert!(
            err.contains("nothing was recorded") && err.contains("free space"),
            "{err}"
        );
        assert_eq!(engine.state().last_seq(), start);
        // Three batches are written, the fourth finds the disk full.
        appends_left.store(3, Ordering::SeqCst);
        let err = fails(&mut engine);
        assert!(
            err.contains("the replay stopped: the 1200 events of its first lines are recorded")
                && err.contains("free space"),
            "{err}"
        );
        // The engine went back to what the store holds: the three batches, no more.
        assert_eq!(engine.state().last_seq(), start + 1_200);
        let reopened = engine.state_through(start + 1_200).unwrap();
        assert_eq!(
            serde_json::to_value(engine.state()).unwrap(),
            serde_json::to_value(&reopened).unwrap()
        );
        // With room again, the same replay adds the rest, once.
        appends_left.store(usize::MAX, Ordering::SeqCst);
        let done = engine.replay_in_batches(&paths, years, None, 400).unwrap();
        assert_eq!((done.already, done.events), (1_200, 1_300));
        let (got, want) = (events_after(&engine, start), events_after(&whole, start));
        assert_eq!(got.len(), 2_500);
        assert!(got == want, "the replayed events differ from one replay's");
        // And once more adds nothing.
        let done = engine.replay_in_batches(&paths, years, None, 400).unwrap();
        assert_eq!((done.already, done.events), (2_500, 0));
    }
}
