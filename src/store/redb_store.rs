//! The redb implementation of [`EventStore`]: one file, `STATE/nmt.redb`.
//!
//! Tables: `events` (seq → JSON envelope), `by_machine` ((mac, seq) → ()), `by_time`
//! ((observed µs, seq) → ()), `snapshots` (seq → encoded state), `checkpoints`
//! (source → position) and `meta`. An append writes the events, both indexes, the
//! checkpoints and an optional snapshot in one transaction.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use jiff::Timestamp;
use nmt_projections::{Envelope, Mac};
use redb::{Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::{Append, EventStore, Snapshot};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const BY_MACHINE: TableDefinition<(u64, u64), ()> = TableDefinition::new("by_machine");
const BY_TIME: TableDefinition<(i64, u64), ()> = TableDefinition::new("by_time");
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
const SNAPSHOT_TIMES: TableDefinition<u64, i64> = TableDefinition::new("snapshot_times");
const LATE: TableDefinition<u64, i64> = TableDefinition::new("late");
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Snapshots kept: the newest `SNAPSHOTS_RECENT` all, and older ones thinned (every second
/// one dropped) whenever there are more than `SNAPSHOTS_MAX`, so old times stay reachable
/// at a coarser grain and the store does not grow with them.
const SNAPSHOTS_RECENT: usize = 16;
const SNAPSHOTS_MAX: usize = 256;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process held it for longer than we were willing to wait.
    #[error(
        "the store {path} is in use by another nmt process (a running nmtd or another nmt \
         command) and stayed busy for {waited:?}; try again, or raise --wait"
    )]
    Busy {
        /// The database file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// Anything else.
    #[error("cannot open the store {path}: {source}")]
    Other {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: DatabaseError,
    },
}

/// The redb-backed event store.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// Open (creating if needed) the store at `path`, waiting up to `wait` while another
    /// process holds it.
    pub fn open(path: &Path, wait: Duration) -> std::result::Result<RedbStore, OpenError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match Database::create(path) {
                Ok(db) => {
                    let store = RedbStore {
                        db,
                        path: path.to_path_buf(),
                    };
                    store.ensure_tables().map_err(|e| OpenError::Other {
                        path: path.to_path_buf(),
                        source: DatabaseError::Storage(redb::StorageError::Io(
                            std::io::Error::other(e.to_string()),
                        )),
                    })?;
                    return Ok(store);
                }
                Err(DatabaseError::DatabaseAlreadyOpen) => {
                    if start.elapsed() >= wait {
                        return Err(OpenError::Busy {
                            path: path.to_path_buf(),
                            waited: start.elapsed(),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(source) => {
                    return Err(OpenError::Other {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ensure_tables(&self) -> Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(EVENTS)?;
        tx.open_table(BY_MACHINE)?;
        tx.open_table(BY_TIME)?;
        tx.open_table(SNAPSHOTS)?;
        tx.open_table(SNAPSHOT_TIMES)?;
        tx.open_table(LATE)?;
        tx.open_table(CHECKPOINTS)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(())
    }

    fn decode(seq: u64, bytes: &[u8]) -> Result<Envelope> {
        let mut env = Envelope::from_json(bytes)
            .with_context(|| format!("while decoding event {seq} of the store"))?;
        env.seq = seq;
        Ok(env)
    }
}

impl EventStore for RedbStore {
    fn last_seq(&self) -> Result<u64> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(EVENTS)?;
        Ok(t.last()?.map(|(k, _)| k.value()).unwrap_or(0))
    }

    fn append(
        &mut self,
        batch: &[Append<'_>],
        checkpoints: &[(&str, &[u8])],
        snapshot: Option<Snapshot<'_>>,
    ) -> Result<()> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut events = tx.open_table(EVENTS)?;
            let mut by_machine = tx.open_table(BY_MACHINE)?;
            let mut by_time = tx.open_table(BY_TIME)?;
            let mut late = tx.open_table(LATE)?;
            let first = events.last()?.map(|(k, _)| k.value()).unwrap_or(0) + 1;
            for (want, a) in (first..).zip(batch) {
                let env = a.envelope;
                if env.seq != want {
                    bail!(
                        "refusing to append event {} after {}: the log must stay gap-free",
                        env.seq,
                        want - 1
                    );
                }
                events.insert(env.seq, env.to_json().as_slice())?;
                for mac in a.machines {
                    by_machine.insert((mac.as_u64(), env.seq), ())?;
                }
                by_time.insert((env.observed_at.as_microsecond(), env.seq), ())?;
                if a.late {
                    late.insert(env.seq, env.observed_at.as_microsecond())?;
                }
            }
            let mut cps = tx.open_table(CHECKPOINTS)?;
            for (source, pos) in checkpoints {
                cps.insert(*source, *pos)?;
            }
            if let Some(snap) = snapshot {
                let mut snaps = tx.open_table(SNAPSHOTS)?;
                let mut times = tx.open_table(SNAPSHOT_TIMES)?;
                snaps.insert(snap.seq, snap.bytes)?;
                times.insert(
                    snap.seq,
                    snap.max_observed.map_or(i64::MIN, |t| t.as_microsecond()),
                )?;
                let keys: Vec<u64> = snaps
                    .iter()?
                    .map(|r| r.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()?;
                if keys.len() > SNAPSHOTS_MAX {
                    let old = &keys[..keys.len() - SNAPSHOTS_RECENT];
                    for k in old.iter().skip(1).step_by(2) {
                        snaps.remove(*k)?;
                        times.remove(*k)?;
                    }
                }
            }
        }
        tx.commit()
            .context("while committing events to the store")?;
        Ok(())
    }

    fn scan(
        &self,
        range: RangeInclusive<u64>,
        visit: &mut dyn FnMut(Envelope) -> Result<bool>,
    ) -> Result<()> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(EVENTS)?;
        for row in t.range(range)? {
            let (k, v) = row?;
            if !visit(Self::decode(k.value(), v.value())?)? {
                break;
            }
        }
        Ok(())
    }

    fn seqs_for_machine(&self, mac: &Mac) -> Result<Vec<u64>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(BY_MACHINE)?;
        let m = mac.as_u64();
        let mut out = Vec::new();
        for row in t.range((m, 0)..=(m, u64::MAX))? {
            out.push(row?.0.value().1);
        }
        Ok(out)
    }

    fn seqs_in_time(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> Result<Vec<u64>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(BY_TIME)?;
        let lo = since.map(|t| t.as_microsecond()).unwrap_or(i64::MIN);
        let hi = until.map(|t| t.as_microsecond()).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        for row in t.range((lo, 0)..=(hi, u64::MAX))? {
            out.push(row?.0.value().1);
        }
        Ok(out)
    }

    fn get(&self, seq: u64) -> Result<Option<Envelope>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(EVENTS)?;
        t.get(seq)?
            .map(|v| Self::decode(seq, v.value()))
            .transpose()
    }

    fn snapshot_at_or_before(&self, seq: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(SNAPSHOTS)?;
        let mut r = t.range(..=seq)?;
        match r.next_back() {
            Some(row) => {
                let (k, v) = row?;
                Ok(Some((k.value(), v.value().to_vec())))
            }
            None => Ok(None),
        }
    }

    fn late_after(&self, seq: u64, at: Timestamp) -> Result<Vec<u64>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(LATE)?;
        let at = at.as_microsecond();
        let mut out = Vec::new();
        for row in t.range(seq.saturating_add(1)..)? {
            let (k, v) = row?;
            if v.value() <= at {
                out.push(k.value());
            }
        }
        Ok(out)
    }

    fn snapshot_for_time(&self, at: Timestamp) -> Result<Option<(u64, Vec<u8>)>> {
        let tx = self.db.begin_read()?;
        let times = tx.open_table(SNAPSHOT_TIMES)?;
        let at = at.as_microsecond();
        // The latest observation time only grows with the sequence number: the newest
        // snapshot within `at` is the first one found going back.
        for row in times.iter()?.rev() {
            let (k, v) = row?;
            if v.value() <= at {
                let snaps = tx.open_table(SNAPSHOTS)?;
                return Ok(snaps
                    .get(k.value())?
                    .map(|b| (k.value(), b.value().to_vec())));
            }
        }
        Ok(None)
    }

    fn checkpoint(&self, source: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CHECKPOINTS)?;
        Ok(t.get(source)?.map(|v| v.value().to_vec()))
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(META)?;
            t.insert(key, value)?;
        }
        tx.commit().map_err(|e| anyhow!(e))?;
        Ok(())
    }
}
