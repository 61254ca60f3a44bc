//! The redb implementation of [`EventStore`]: one file, `STATE/nmt.redb`.
//!
//! Tables:
//! - `event_blocks`: first seq → a block of up to 32 consecutive events (`codec.rs`);
//! - `machine_epochs`: (epoch, mac, seq) → the machine's later events in the same append,
//!   as increasing deltas (LEB128), so an append indexes each machine once. The epoch is the
//!   first seq's top bits (2^18 events an epoch): leading the key with it, an append rewrites
//!   only the pages of the current epoch's part of the index, however long the log. A
//!   machine's history reads one range an epoch;
//! - `late` (seq → observed µs), `snapshots` (seq → encoded state), `snapshot_times` (seq →
//!   latest observed µs), and `checkpoints` (source → position).
//!
//! An append writes the events, their indexes, the checkpoints and an optional snapshot in
//! one transaction. It fills the last block first when that block is not full (it is read,
//! and written again with the new events after its own), so a log that grows a line at a
//! time is still kept in full blocks.
//!
//! Stores written by earlier releases hold their events in `events` (seq → one event) and
//! `by_machine` ((mac, seq) → ()), or their machine index in `machine_runs` ((mac, seq) →
//! deltas, the shape above without the epoch): those are read as they are, and the store
//! goes on in blocks and epochs after them. They may also hold `by_time` ((observed µs, seq)
//! → ()) and `meta`, which nothing reads any more.

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use nmt_projections::{Envelope, Mac};
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, TableDefinition,
    TableHandle,
};

use super::codec::{BLOCK_BYTES, BLOCK_EVENTS};
use super::{
    Append, Block, EventStore, Snapshot, StoreError, block_len, decode, encode_block, json_of,
    micros, snapshots_to_thin,
};

/// Earlier releases' events, one a row: read, never written.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Earlier releases' machine index: read, never written.
const BY_MACHINE: TableDefinition<(u64, u64), ()> = TableDefinition::new("by_machine");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("event_blocks");
/// The machine index of the release before epochs: read, never written.
const MACHINE_RUNS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("machine_runs");
/// The machine index: (epoch, mac, seq) → deltas (see the module's summary).
const MACHINE_EPOCHS: TableDefinition<(u64, u64, u64), &[u8]> =
    TableDefinition::new("machine_epochs");
/// An epoch of the machine index is 2^EPOCH_BITS events: an append that indexes 10,000
/// machines rewrites the pages of at most 262,144 events' rows, and a history of 10M events
/// reads 39 ranges.
const EPOCH_BITS: u32 = 18;
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
const SNAPSHOT_TIMES: TableDefinition<u64, i64> = TableDefinition::new("snapshot_times");
const LATE: TableDefinition<u64, i64> = TableDefinition::new("late");
const CHECKPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("checkpoints");

/// redb's page cache. redb's default (1 GiB) lets nmtd's resident size grow with the log;
/// the pages an append or a machine's history touch fit in far less (measured after a
/// 1M-line ingest: 32 MiB ingests as fast as 64 MiB, and nmtd stays near 200 MB resident).
const CACHE_BYTES: usize = 32 << 20;

/// Open or create the database with nmt's cache size.
fn create(path: &Path) -> Result<Database, DatabaseError> {
    Database::builder().set_cache_size(CACHE_BYTES).create(path)
}

/// redb's errors are the store's backend errors.
macro_rules! backend_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                StoreError::Backend(Box::new(redb::Error::from(e)))
            }
        }
    )*};
}

backend_errors!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// The redb-backed event store.
pub struct RedbStore {
    /// `None` after a write failed and the database could not be opened again yet.
    db: Option<Database>,
    path: PathBuf,
    /// A write failed: redb refuses every later write of this handle ("previous I/O error"),
    /// so the next append opens the database again first (e.g. once space is freed).
    reopen: bool,
    /// The file's size after the last compaction (or at open): it is compacted again when it
    /// has grown by half.
    compacted_len: u64,
    /// [`COMPACT_FROM`], lower in tests.
    compact_from: u64,
    /// [`EPOCH_BITS`], lower in tests.
    epoch_bits: u32,
    /// How many compactions ran (for tests).
    compactions: u64,
    /// When the last append committed.
    last_append: Instant,
}

impl Drop for RedbStore {
    /// A command, an import or a replay leaves the file compacted if it grew by half.
    fn drop(&mut self) {
        self.compact_when_grown();
    }
}

/// A store file under this size is never compacted.
const COMPACT_FROM: u64 = 64 << 20;

impl RedbStore {
    /// Open (creating if needed) the store at `path`, waiting up to `wait` while another
    /// process holds it ([`StoreError::Busy`] after that).
    pub fn open(path: &Path, wait: Duration) -> Result<RedbStore, StoreError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        let location = || path.display().to_string();
        let new = !path.exists();
        loop {
            match create(path) {
                Ok(db) => {
                    if new {
                        // The log is readable by nmtd's group (backups), not by everyone.
                        use std::os::unix::fs::PermissionsExt;
                        let _ =
                            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640));
                    }
                    let store = RedbStore {
                        db: Some(db),
                        path: path.to_path_buf(),
                        reopen: false,
                        compacted_len: std::fs::metadata(path).map_or(0, |m| m.len()),
                        compact_from: COMPACT_FROM,
                        epoch_bits: EPOCH_BITS,
                        compactions: 0,
                        last_append: Instant::now(),
                    };
                    store.ensure_tables().map_err(|e| StoreError::Open {
                        location: location(),
                        source: Box::new(e),
                    })?;
                    return Ok(store);
                }
                Err(DatabaseError::DatabaseAlreadyOpen) => {
                    if start.elapsed() >= wait {
                        return Err(StoreError::Busy {
                            location: location(),
                            waited: start.elapsed(),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(source) => {
                    return Err(StoreError::Open {
                        location: location(),
                        source: Box::new(source),
                    });
                }
            }
        }
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or_else(|| {
            StoreError::Backend(
                format!(
                    "{} could not be opened again after a failed write",
                    self.path.display()
                )
                .into(),
            )
        })
    }

    /// After a failed write: close the database and open it again (redb checks and, if
    /// needed, repairs it), so that writes work again once the cause is gone.
    fn reopen(&mut self) -> Result<(), StoreError> {
        self.db = None;
        let db = create(&self.path).map_err(|e| StoreError::Open {
            location: self.path.display().to_string(),
            source: Box::new(e),
        })?;
        self.db = Some(db);
        self.reopen = false;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append_once(
        &self,
        batch: &[Append<'_>],
        checkpoints: &[(&str, &[u8])],
        snapshots: &[Snapshot<'_>],
    ) -> Result<(), StoreError> {
        let mut tx = self.db()?.begin_write()?;
        tx.set_durability(Durability::Immediate)?;
        {
            let mut blocks = tx.open_table(BLOCKS)?;
            let mut runs = tx.open_table(MACHINE_EPOCHS)?;
            let mut late = tx.open_table(LATE)?;
            // The last block, when it has room, is written again with the batch after its own
            // events.
            let mut tail = None;
            let first = match blocks.last()? {
                Some((k, v)) => {
                    let (key, n) = (k.value(), block_len(k.value(), v.value())?);
                    if n < BLOCK_EVENTS as u64 && !batch.is_empty() {
                        tail = Some(Block::decode(key, v.value())?);
                    }
                    key + n
                }
                // The first block follows an earlier release's events, if any.
                None => {
                    let old = tx.open_table(EVENTS)?;
                    old.last()?.map_or(0, |(k, _)| k.value()) + 1
                }
            };
            for (want, a) in (first..).zip(batch) {
                if a.envelope.seq != want {
                    // Dropping the transaction uncommitted writes nothing of the batch.
                    return Err(StoreError::SequenceConflict {
                        expected: want,
                        got: a.envelope.seq,
                    });
                }
            }
            let jsons = match batch.iter().all(|a| a.json.is_some()) {
                true => batch.iter().map(json_of).collect(),
                false => on_two(batch, 4096, json_of),
            };
            let mut lines: Vec<(u64, &[u8])> = Vec::with_capacity(batch.len() + BLOCK_EVENTS);
            if let Some(block) = &tail {
                lines.extend(block.seqs().map(|seq| (seq, block.json(seq))));
            }
            lines.extend(
                batch
                    .iter()
                    .zip(&jsons)
                    .map(|(a, j)| (a.envelope.seq, &j[..])),
            );
            let mut rest = &lines[..];
            let mut parts = Vec::with_capacity(lines.len() / BLOCK_EVENTS + 1);
            while !rest.is_empty() {
                let mut n = 0;
                let mut bytes = 0;
                while n < rest.len()
                    && n < BLOCK_EVENTS
                    && (n == 0 || bytes + rest[n].1.len() <= BLOCK_BYTES)
                {
                    bytes += rest[n].1.len();
                    n += 1;
                }
                parts.push(&rest[..n]);
                rest = &rest[n..];
            }
            let values = on_two(&parts, 128, |part| {
                encode_block(part.iter().map(|(_, j)| *j))
            });
            for (part, value) in parts.iter().zip(values) {
                blocks.insert(part[0].0, value?.as_slice())?;
            }
            // Each machine once: its first event of the batch, then the others as deltas.
            let mut pairs: Vec<(u64, u64)> = batch
                .iter()
                .flat_map(|a| a.machines.iter().map(|m| (m.as_u64(), a.envelope.seq)))
                .collect();
            pairs.sort_unstable();
            pairs.dedup();
            let mut value = Vec::new();
            for run in pairs.chunk_by(|a, b| a.0 == b.0) {
                value.clear();
                for w in run.windows(2) {
                    leb128(w[1].1 - w[0].1, &mut value);
                }
                let (mac, seq) = run[0];
                runs.insert((seq >> self.epoch_bits, mac, seq), value.as_slice())?;
            }
            for a in batch.iter().filter(|a| a.late) {
                late.insert(a.envelope.seq, a.envelope.observed_at.as_microsecond())?;
            }
            let mut cps = tx.open_table(CHECKPOINTS)?;
            for (source, pos) in checkpoints {
                cps.insert(*source, *pos)?;
            }
            if !snapshots.is_empty() {
                let mut snaps = tx.open_table(SNAPSHOTS)?;
                let mut times = tx.open_table(SNAPSHOT_TIMES)?;
                for snap in snapshots {
                    snaps.insert(snap.seq, snap.bytes)?;
                    times.insert(snap.seq, micros(snap.max_observed))?;
                }
                let keys: Vec<u64> = snaps
                    .iter()?
                    .map(|r| r.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()?;
                for k in snapshots_to_thin(&keys) {
                    snaps.remove(k)?;
                    times.remove(k)?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// redb's file keeps the pages that copy-on-write freed, and grows in steps that double
    /// it (measured: 270 MB for 150 MB of pages after a million-line ingest). Once the file
    /// has grown by half since the last time, compact it: the pages in use move to the front
    /// and the file is cut (60 ms to 0.9 s for that store). Not during a stream of appends,
    /// which would only grow the file again: when the store is dropped, and when nmtd has
    /// had no append for a while ([`EventStore::compact_when_idle`]). Compaction is only an
    /// optimisation; if it fails, the next append opens the database again first.
    fn compact_when_grown(&mut self) {
        let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if len < self.compact_from || len < self.compacted_len + self.compacted_len / 2 {
            return;
        }
        let Some(db) = self.db.as_mut() else {
            return;
        };
        let mut result = Ok(true);
        while let Ok(true) = result {
            result = db.compact();
        }
        if let Err(e) = result {
            tracing::warn!(path = %self.path.display(), "compacting the store failed: {e}");
            self.reopen = true;
        }
        self.compacted_len = std::fs::metadata(&self.path).map_or(len, |m| m.len());
        self.compactions += 1;
    }

    fn ensure_tables(&self) -> Result<(), redb::Error> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        // Every table there already (any store this release wrote): nothing to write.
        let have: Vec<String> = db
            .begin_read()?
            .list_tables()?
            .map(|t| t.name().to_string())
            .collect();
        // Each table named once, for both the check and the creation.
        macro_rules! every_table {
            ($each:ident) => {
                $each!(
                    EVENTS,
                    BY_MACHINE,
                    BLOCKS,
                    MACHINE_RUNS,
                    MACHINE_EPOCHS,
                    SNAPSHOTS,
                    SNAPSHOT_TIMES,
                    LATE,
                    CHECKPOINTS
                )
            };
        }
        macro_rules! there {
            ($($t:ident),*) => { true $(&& have.iter().any(|h| h == $t.name()))* };
        }
        if every_table!(there) {
            return Ok(());
        }
        let tx = db.begin_write()?;
        macro_rules! open {
            ($($t:ident),*) => { $(tx.open_table($t)?;)* };
        }
        every_table!(open);
        tx.commit()?;
        Ok(())
    }
}

impl EventStore for RedbStore {
    fn last_seq(&self) -> Result<u64, StoreError> {
        let tx = self.db()?.begin_read()?;
        if let Some((k, v)) = tx.open_table(BLOCKS)?.last()? {
            return Ok(k.value() + block_len(k.value(), v.value())? - 1);
        }
        let t = tx.open_table(EVENTS)?;
        Ok(t.last()?.map(|(k, _)| k.value()).unwrap_or(0))
    }

    fn append(
        &mut self,
        batch: &[Append<'_>],
        checkpoints: &[(&str, &[u8])],
        snapshots: &[Snapshot<'_>],
    ) -> Result<(), StoreError> {
        if self.reopen {
            self.reopen()?;
        }
        let result = self.append_once(batch, checkpoints, snapshots);
        match &result {
            Err(StoreError::Backend(_)) => self.reopen = true,
            Err(_) => {}
            Ok(()) => self.last_append = Instant::now(),
        }
        result
    }

    fn scan(
        &self,
        range: RangeInclusive<u64>,
        visit: &mut dyn FnMut(Envelope) -> bool,
    ) -> Result<(), StoreError> {
        let (start, end) = (*range.start(), *range.end());
        let tx = self.db()?.begin_read()?;
        for row in tx.open_table(EVENTS)?.range(range)? {
            let (k, v) = row?;
            if !visit(decode(k.value(), v.value())?) {
                return Ok(());
            }
        }
        let blocks = tx.open_table(BLOCKS)?;
        // The block holding `start`, then the ones after it.
        let from = blocks
            .range(..=start)?
            .next_back()
            .transpose()?
            .map_or(start, |(k, _)| k.value());
        let rows = blocks.range(from..=end)?;
        if end.saturating_sub(start) >= SCAN_AHEAD_FROM {
            let rows = rows.map(|row| {
                let (k, v) = row?;
                Ok((k.value(), v.value().to_vec(), Picks::Within(start, end)))
            });
            return decode_ahead(rows, visit);
        }
        for row in rows {
            let (k, v) = row?;
            let block = Block::decode(k.value(), v.value())?;
            for seq in Picks::Within(start, end).of(block.seqs()) {
                if !visit(block.event(seq)?) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn seqs_for_machine(&self, mac: &Mac) -> Result<Vec<u64>, StoreError> {
        let tx = self.db()?.begin_read()?;
        let m = mac.as_u64();
        let mut out = Vec::new();
        for row in tx.open_table(BY_MACHINE)?.range((m, 0)..=(m, u64::MAX))? {
            out.push(row?.0.value().1);
        }
        // Each run's events are all after the run before it (runs are made an append at a
        // time), and after every event of earlier releases' indexes; epochs go in order.
        for row in tx.open_table(MACHINE_RUNS)?.range((m, 0)..=(m, u64::MAX))? {
            let (k, v) = row?;
            push_run(mac, k.value().1, v.value(), &mut out)?;
        }
        let epochs = tx.open_table(MACHINE_EPOCHS)?;
        let mut next = epochs.first()?.map(|(k, _)| k.value().0);
        while let Some(epoch) = next {
            for row in epochs.range((epoch, m, 0)..=(epoch, m, u64::MAX))? {
                let (k, v) = row?;
                push_run(mac, k.value().2, v.value(), &mut out)?;
            }
            next = match epoch.checked_add(1) {
                Some(after) => epochs.range((after, 0, 0)..)?.next().transpose()?,
                None => None,
            }
            .map(|(k, _)| k.value().0);
        }
        Ok(out)
    }

    fn get(&self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        let mut found = None;
        self.get_each(&[seq], &mut |env| {
            found = Some(env);
            false
        })?;
        Ok(found)
    }

    fn get_each(
        &self,
        seqs: &[u64],
        visit: &mut dyn FnMut(Envelope) -> bool,
    ) -> Result<(), StoreError> {
        let tx = self.db()?.begin_read()?;
        let old = tx.open_table(EVENTS)?;
        // An earlier release's events come before every block: look there only up to its last.
        let old_last = old.last()?.map_or(0, |(k, _)| k.value());
        let blocks = tx.open_table(BLOCKS)?;
        if seqs.len() >= GET_AHEAD_FROM && seqs.iter().all(|&s| s > old_last) {
            // Consecutive events of one block are picked from it together.
            let mut rows: Vec<(u64, Vec<u8>, Picks)> = Vec::new();
            for &seq in seqs {
                if let Some((first, bytes, Picks::These(picks))) = rows.last_mut()
                    && seq >= *first
                    && block_len(*first, bytes).is_ok_and(|n| seq < *first + n)
                    && picks.last().is_some_and(|&p| p < seq)
                {
                    picks.push(seq);
                    continue;
                }
                if let Some((k, v)) = blocks.range(..=seq)?.next_back().transpose()? {
                    rows.push((k.value(), v.value().to_vec(), Picks::These(vec![seq])));
                }
            }
            return decode_ahead(rows.into_iter().map(Ok), visit);
        }
        let mut block: Option<Block> = None;
        for &seq in seqs {
            let env = if seq <= old_last
                && let Some(v) = old.get(seq)?
            {
                decode(seq, v.value())?
            } else {
                if !block.as_ref().is_some_and(|b| b.seqs().contains(&seq)) {
                    block = match blocks.range(..=seq)?.next_back().transpose()? {
                        Some((k, v)) => Some(Block::decode(k.value(), v.value())?),
                        None => None,
                    };
                }
                match &block {
                    Some(b) if b.seqs().contains(&seq) => b.event(seq)?,
                    _ => continue,
                }
            };
            if !visit(env) {
                break;
            }
        }
        Ok(())
    }

    fn snapshot_at_or_before(&self, seq: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let tx = self.db()?.begin_read()?;
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

    fn snapshot_for_time(&self, at: Timestamp) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let tx = self.db()?.begin_read()?;
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

    fn late_after(&self, seq: u64, at: Timestamp) -> Result<Vec<u64>, StoreError> {
        let tx = self.db()?.begin_read()?;
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

    fn compact_when_idle(&mut self, quiet: Duration) {
        if self.last_append.elapsed() >= quiet {
            self.compact_when_grown();
        }
    }

    fn checkpoint(&self, source: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db()?.begin_read()?;
        let t = tx.open_table(CHECKPOINTS)?;
        Ok(t.get(source)?.map(|v| v.value().to_vec()))
    }
}

/// A scan of at least this many events decodes its blocks ahead, on other threads.
const SCAN_AHEAD_FROM: u64 = 8 * SCAN_WINDOW as u64 * BLOCK_EVENTS as u64;
/// Reading at least this many events by their sequence numbers (a machine's history)
/// decodes their blocks ahead, on other threads.
const GET_AHEAD_FROM: usize = 256;
/// The blocks a decoding thread takes at a time in a long scan.
const SCAN_WINDOW: usize = 64;

/// A window's events within a scan's range, decoded; and what stopped its decoding early.
type Decoded = (Vec<Envelope>, Option<StoreError>);

/// The events of a stored block that a read wants.
enum Picks {
    /// Those within these sequence numbers (a scan).
    Within(u64, u64),
    /// These, in this order (some of a machine's events).
    These(Vec<u64>),
}

impl Picks {
    /// The sequence numbers wanted of a block holding `held`, in order.
    fn of(&self, held: Range<u64>) -> impl Iterator<Item = u64> + '_ {
        let (within, these) = match self {
            Picks::Within(from, to) => (
                held.start.max(*from)..held.end.min(to.saturating_add(1)),
                &[][..],
            ),
            Picks::These(seqs) => (0..0, &seqs[..]),
        };
        within.chain(these.iter().copied().filter(move |s| held.contains(s)))
    }
}

/// The events `rows` pick (stored blocks, each with the events wanted from it), decoded a
/// window of blocks at a time by helper threads (one per core, up to four) and given to
/// `visit` in order, as a plain read gives them: decompressing and decoding is most of a long
/// read's work (a fold from a snapshot, `show --at`, an export, a machine's history), and only
/// `visit` has to run in order. An error is returned once the events before it were
/// visited; once `visit` says stop, the helpers drop what they have not begun.
fn decode_ahead(
    rows: impl Iterator<Item = Result<(u64, Vec<u8>, Picks), StoreError>>,
    visit: &mut dyn FnMut(Envelope) -> bool,
) -> Result<(), StoreError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
    type Job = (Vec<(u64, Vec<u8>, Picks)>, SyncSender<Decoded>);
    let helpers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let ahead = 2 * helpers;
    let (jobs, queue) = sync_channel::<Job>(ahead);
    let queue = std::sync::Mutex::new(queue);
    let stop = AtomicBool::new(false);
    let decode = |window: &[(u64, Vec<u8>, Picks)]| -> Decoded {
        let mut out = Vec::with_capacity(window.len() * BLOCK_EVENTS);
        for (first, bytes, picks) in window {
            let block = match Block::decode(*first, bytes) {
                Ok(b) => b,
                Err(e) => return (out, Some(e)),
            };
            for seq in picks.of(block.seqs()) {
                match block.event(seq) {
                    Ok(env) => out.push(env),
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, None)
    };
    std::thread::scope(|s| {
        for _ in 0..helpers {
            s.spawn(|| {
                loop {
                    let job = queue
                        .lock()
                        .map_err(|_| ())
                        .and_then(|q| q.recv().map_err(|_| ()));
                    let Ok((window, done)) = job else { return };
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    // A panic is the read's error, not a helper gone and a reader waiting.
                    let decoded =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(&window)))
                            .unwrap_or_else(|_| (Vec::new(), Some(stopped("panicked"))));
                    let _ = done.send(decoded);
                }
            });
        }
        let mut pending: std::collections::VecDeque<Receiver<Decoded>> = Default::default();
        let mut rows = rows.fuse();
        // A row the store could not read ends the read once the blocks before it are visited.
        let mut unread = None;
        let result = (|| {
            loop {
                while pending.len() < ahead && unread.is_none() {
                    let mut window = Vec::with_capacity(SCAN_WINDOW);
                    for row in rows.by_ref().take(SCAN_WINDOW) {
                        match row {
                            Ok(row) => window.push(row),
                            Err(e) => {
                                unread = Some(e);
                                break;
                            }
                        }
                    }
                    if window.is_empty() {
                        break;
                    }
                    let (done, answer) = sync_channel(1);
                    jobs.send((window, done)).map_err(|_| stopped("stopped"))?;
                    pending.push_back(answer);
                }
                let Some(answer) = pending.pop_front() else {
                    return unread.take().map_or(Ok(()), Err);
                };
                let (events, failed) = answer.recv().map_err(|_| stopped("stopped"))?;
                for env in events {
                    if !visit(env) {
                        return Ok(());
                    }
                }
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        })();
        stop.store(true, Ordering::Relaxed);
        drop(jobs);
        result
    })
}

/// The error of a read whose decoding thread `what` (stopped, panicked).
fn stopped(what: &str) -> StoreError {
    StoreError::Backend(Box::new(std::io::Error::other(format!(
        "a thread decoding the log {what}"
    ))))
}

/// `f` of each item, in order. Many items are split between two threads, half each: encoding
/// the events and their blocks is most of an append's work, and the engine's own thread is
/// the one a live ingest waits on.
fn on_two<T: Sync, U: Send>(items: &[T], many: usize, f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    if items.len() < many {
        return items.iter().map(&f).collect();
    }
    let (front, back) = items.split_at(items.len() / 2);
    std::thread::scope(|s| {
        let made = s.spawn(|| front.iter().map(&f).collect::<Vec<_>>());
        let back: Vec<U> = back.iter().map(&f).collect();
        // `f` does not panic; if it did, the front half is made here instead.
        let mut all = made
            .join()
            .unwrap_or_else(|_| front.iter().map(&f).collect());
        all.extend(back);
        all
    })
}

/// A run of the machine index: its first event `seq`, then the others from their deltas.
fn push_run(
    mac: &Mac,
    mut seq: u64,
    mut deltas: &[u8],
    out: &mut Vec<u64>,
) -> Result<(), StoreError> {
    out.push(seq);
    while !deltas.is_empty() {
        let (d, used) = read_leb128(deltas).ok_or_else(|| StoreError::Corrupt {
            seq,
            reason: format!("the machine index after it for {mac} is damaged"),
        })?;
        seq += d;
        out.push(seq);
        deltas = &deltas[used..];
    }
    Ok(())
}

/// `n` as LEB128 (7 bits a byte, least significant first).
fn leb128(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A LEB128 number and the bytes it took; `None` when cut short or too long.
fn read_leb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{append_range, never};
    use redb::ReadableTableMetadata;

    /// The same appends into a store that compacts from 1 MB and one that never does: the
    /// length of each file at the end.
    fn grow(dir: &Path, compact_from: u64) -> (RedbStore, u64) {
        let path = dir.join(format!("t{compact_from}.redb"));
        let mut store = RedbStore::open(&path, Duration::ZERO).unwrap();
        store.compact_from = compact_from;
        // Snapshots are rewritten and thinned: pages freed by copy-on-write pile up.
        let big = vec![7u8; 300_000];
        for k in 0..40u64 {
            let snap = Snapshot {
                seq: k * 50 + 50,
                bytes: &big,
                max_observed: None,
            };
            append_range(&mut store, k * 50 + 1, k * 50 + 50, &never, &[], &[snap]).unwrap();
        }
        store.compact_when_idle(Duration::ZERO);
        let len = std::fs::metadata(&path).unwrap().len();
        (store, len)
    }

    #[test]
    fn a_store_of_an_earlier_release_reads_and_goes_on_in_blocks() {
        use crate::store::conformance::scan_all;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        // Events 1..=5 as earlier releases kept them: a row each (plain JSON and single
        // compressed frames), and the machine index a row per event.
        let mut envs = Vec::new();
        let mut other = RedbStore::open(&dir.path().join("model.redb"), Duration::ZERO).unwrap();
        append_range(&mut other, 1, 8, &never, &[], &[]).unwrap();
        other
            .scan(1..=8, &mut |e| {
                envs.push(e);
                true
            })
            .unwrap();
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut events = tx.open_table(EVENTS).unwrap();
                let mut by_machine = tx.open_table(BY_MACHINE).unwrap();
                for e in &envs[..5] {
                    let value = if e.seq % 2 == 0 {
                        e.to_json()
                    } else {
                        crate::store::encode(e).unwrap()
                    };
                    events.insert(e.seq, value.as_slice()).unwrap();
                    let m = nmt_projections::Mac::new([0x52, 0x54, 0, 0, 0, (e.seq % 3) as u8]);
                    by_machine.insert((m.as_u64(), e.seq), ()).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let mut store = RedbStore::open(&path, Duration::ZERO).unwrap();
        assert_eq!(store.last_seq().unwrap(), 5);
        append_range(&mut store, 6, 7, &never, &[], &[]).unwrap();
        append_range(&mut store, 8, 8, &never, &[], &[]).unwrap();
        drop(store);
        let store = RedbStore::open(&path, Duration::ZERO).unwrap();
        assert_eq!(store.last_seq().unwrap(), 8);
        assert_eq!(scan_all(&store), envs);
        let mut across = Vec::new();
        store
            .scan(4..=7, &mut |e| {
                across.push(e.seq);
                true
            })
            .unwrap();
        assert_eq!(across, [4, 5, 6, 7]);
        assert_eq!(store.get(5).unwrap().as_ref(), Some(&envs[4]));
        assert_eq!(store.get(6).unwrap().as_ref(), Some(&envs[5]));
        let mut each = Vec::new();
        store
            .get_each(&[2, 5, 6, 8], &mut |e| {
                each.push(e.seq);
                true
            })
            .unwrap();
        assert_eq!(each, [2, 5, 6, 8]);
        // Machine 52:54:00:00:00:02 is mac(2): seq % 3 == 2 in both indexes.
        let two = nmt_projections::Mac::new([0x52, 0x54, 0, 0, 0, 2]);
        assert_eq!(store.seqs_for_machine(&two).unwrap(), [2, 5, 8]);
        // The new events went into blocks, the old rows stayed as they were.
        let tx = store.db().unwrap().begin_read().unwrap();
        assert_eq!(tx.open_table(EVENTS).unwrap().len().unwrap(), 5);
        let blocks = tx.open_table(BLOCKS).unwrap();
        assert_eq!(blocks.len().unwrap(), 1);
        assert_eq!(blocks.first().unwrap().unwrap().0.value(), 6);
    }

    #[test]
    fn a_long_scan_decoded_ahead_gives_what_a_plain_one_gives_and_stops_where_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.redb");
        let mut store = RedbStore::open(&path, Duration::ZERO).unwrap();
        let n = 3 * SCAN_AHEAD_FROM + 77;
        for from in (1..=n).step_by(10_000) {
            append_range(&mut store, from, (from + 9_999).min(n), &never, &[], &[]).unwrap();
        }
        let seqs = |range: RangeInclusive<u64>, stop_at: u64| {
            let mut out = Vec::new();
            store
                .scan(range, &mut |e| {
                    out.push(e.seq);
                    e.seq != stop_at
                })
                .map(|()| out)
        };
        // Whole, from within a block to within another, and stopped early: in order, each
        // event once.
        assert_eq!(seqs(1..=n, 0).unwrap(), (1..=n).collect::<Vec<_>>());
        let (a, b) = (SCAN_AHEAD_FROM / 3 + 5, 2 * SCAN_AHEAD_FROM + 11);
        assert_eq!(seqs(a..=b, 0).unwrap(), (a..=b).collect::<Vec<_>>());
        assert_eq!(
            seqs(a..=n + 50, a + 1000).unwrap(),
            (a..=a + 1000).collect::<Vec<_>>()
        );
        // The same events as a short scan decoded here.
        let mut ahead = Vec::new();
        store
            .scan(a..=b, &mut |e| {
                ahead.push(e);
                true
            })
            .unwrap();
        for e in [&ahead[0], &ahead[4321], ahead.last().unwrap()] {
            assert_eq!(store.get(e.seq).unwrap().as_ref(), Some(e));
        }
        // Many events by their numbers (a machine's history), several from one block, some
        // past the end: the same events, in the order asked, as a scan gives them.
        let mut asked: Vec<u64> = (1..=n).step_by(7).collect();
        asked.extend([n - 3, n - 2, n + 5, n + 900]);
        let mut got = Vec::new();
        store
            .get_each(&asked, &mut |e| {
                got.push(e);
                true
            })
            .unwrap();
        assert!(asked.len() > GET_AHEAD_FROM);
        assert_eq!(
            got.iter().map(|e| e.seq).collect::<Vec<_>>(),
            asked[..asked.len() - 2]
        );
        assert_eq!(
            got[(a / 7) as usize + 1],
            ahead[(a / 7 * 7 + 8 - a) as usize]
        );
        let mut three = 0;
        store
            .get_each(&asked, &mut |_| {
                three += 1;
                three < 3
            })
            .unwrap();
        assert_eq!(three, 3);
        // A damaged block halfway: the events before it are given, then the error.
        let damaged = {
            let tx = store.db().unwrap().begin_read().unwrap();
            let blocks = tx.open_table(BLOCKS).unwrap();
            let (k, _) = blocks
                .range(..=n / 2)
                .unwrap()
                .next_back()
                .unwrap()
                .unwrap();
            k.value()
        };
        let tx = store.db().unwrap().begin_write().unwrap();
        tx.open_table(BLOCKS)
            .unwrap()
            .insert(
                damaged,
                &[crate::store::codec::BLOCK_V1, 32, 0, 0, 0, 1, 2, 3][..],
            )
            .unwrap();
        tx.commit().unwrap();
        let mut before = Vec::new();
        let err = store
            .scan(1..=n, &mut |e| {
                before.push(e.seq);
                true
            })
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { seq, .. } if seq == damaged),
            "{err}"
        );
        assert_eq!(before, (1..damaged).collect::<Vec<_>>());
    }

    #[test]
    fn the_machine_index_goes_on_in_epochs_after_the_runs_of_the_release_before() {
        use crate::store::conformance::mac;
        let dir = tempfile::tempdir().unwrap();
        let mut store = RedbStore::open(&dir.path().join("runs.redb"), Duration::ZERO).unwrap();
        store.epoch_bits = 3;
        append_range(&mut store, 1, 10, &never, &[], &[]).unwrap();
        // As the release before epochs kept them: the same runs, keyed (mac, seq).
        let tx = store.db().unwrap().begin_write().unwrap();
        {
            let mut epochs = tx.open_table(MACHINE_EPOCHS).unwrap();
            let mut runs = tx.open_table(MACHINE_RUNS).unwrap();
            for row in epochs.iter().unwrap() {
                let (k, v) = row.unwrap();
                let (_, m, seq) = k.value();
                runs.insert((m, seq), v.value()).unwrap();
            }
            epochs.retain(|_, _| false).unwrap();
        }
        tx.commit().unwrap();
        // Then appends of one event and of many, in epochs with a gap between them.
        for s in 11..=20 {
            append_range(&mut store, s, s, &never, &[], &[]).unwrap();
        }
        append_range(&mut store, 21, 100, &never, &[], &[]).unwrap();
        append_range(&mut store, 101, 130, &never, &[], &[]).unwrap();
        for k in 0..3u8 {
            let want: Vec<u64> = (1..=130).filter(|s| s % 3 == u64::from(k)).collect();
            assert_eq!(store.seqs_for_machine(&mac(k)).unwrap(), want, "{k}");
        }
        assert!(store.seqs_for_machine(&mac(9)).unwrap().is_empty());
        let tx = store.db().unwrap().begin_read().unwrap();
        let epochs: std::collections::BTreeSet<u64> = tx
            .open_table(MACHINE_EPOCHS)
            .unwrap()
            .iter()
            .unwrap()
            .map(|r| r.unwrap().0.value().0)
            .collect();
        assert_eq!(epochs, [1, 2, 12].into());
    }

    #[test]
    fn a_grown_store_is_compacted_and_keeps_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, plain_len) = grow(dir.path(), u64::MAX);
        assert_eq!(plain.compactions, 0);
        let (store, len) = grow(dir.path(), 1 << 20);
        assert!(store.compactions > 0);
        assert!(len < plain_len, "{len} compacted, {plain_len} not");
        let mut seen = 0;
        store
            .scan(1..=2000, &mut |e| {
                seen += 1;
                e.seq == seen
            })
            .unwrap();
        assert_eq!(seen, 2000);
        let path = store.path().to_path_buf();
        drop(store);
        let store = RedbStore::open(&path, Duration::ZERO).unwrap();
        assert_eq!(store.last_seq().unwrap(), 2000);
        assert!(store.snapshot_at_or_before(2000).unwrap().is_some());
    }
}
