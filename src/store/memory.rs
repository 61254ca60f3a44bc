//! A volatile [`EventStore`]: everything in memory, nothing survives the process. For tests,
//! and for trying the engine out without a state directory's database.
//!
//! It keeps the same semantics as [`super::RedbStore`] (gap-free sequence numbers, all-or-
//! nothing appends, the same indexes and snapshot thinning); events are kept encoded as
//! they would be on disk, so they decode through the same path.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use nmt_projections::{Envelope, Mac};

use super::{Append, EventStore, Snapshot, StoreError, decode, encode, micros, snapshots_to_thin};

/// An in-memory event store.
///
/// Clones share the same log, as two opens of the same database file would see the same
/// one: drop an engine and open another over a clone to "reopen" the store.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// seq → the encoded envelope.
    events: BTreeMap<u64, Vec<u8>>,
    /// (mac, seq).
    by_machine: BTreeSet<(u64, u64)>,
    /// seq → observed µs.
    late: BTreeMap<u64, i64>,
    /// seq → (encoded state, latest observed µs).
    snapshots: BTreeMap<u64, (Vec<u8>, i64)>,
    checkpoints: HashMap<String, Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // An append checks everything before it changes anything, so a panic elsewhere
        // cannot leave half a batch behind.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("events", &inner.events.len())
            .field("snapshots", &inner.snapshots.len())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn last_seq(&self) -> u64 {
        self.events.last_key_value().map_or(0, |(k, _)| *k)
    }
}

impl EventStore for MemoryStore {
    fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.lock().last_seq())
    }

    fn append(
        &mut self,
        batch: &[Append<'_>],
        checkpoints: &[(&str, &[u8])],
        snapshots: &[Snapshot<'_>],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        // Check the whole batch first: a refused append changes nothing.
        let first = inner.last_seq() + 1;
        for (want, a) in (first..).zip(batch) {
            if a.envelope.seq != want {
                return Err(StoreError::SequenceConflict {
                    expected: want,
                    got: a.envelope.seq,
                });
            }
        }
        let encoded = batch
            .iter()
            .map(|a| encode(a.envelope))
            .collect::<Result<Vec<_>, _>>()?;
        for (a, bytes) in batch.iter().zip(encoded) {
            let env = a.envelope;
            inner.events.insert(env.seq, bytes);
            for mac in a.machines {
                inner.by_machine.insert((mac.as_u64(), env.seq));
            }
            if a.late {
                inner.late.insert(env.seq, env.observed_at.as_microsecond());
            }
        }
        for (source, pos) in checkpoints {
            inner.checkpoints.insert(source.to_string(), pos.to_vec());
        }
        for snap in snapshots {
            inner
                .snapshots
                .insert(snap.seq, (snap.bytes.to_vec(), micros(snap.max_observed)));
        }
        if !snapshots.is_empty() {
            let keys: Vec<u64> = inner.snapshots.keys().copied().collect();
            for k in snapshots_to_thin(&keys) {
                inner.snapshots.remove(&k);
            }
        }
        Ok(())
    }

    fn scan(
        &self,
        range: RangeInclusive<u64>,
        visit: &mut dyn FnMut(Envelope) -> bool,
    ) -> Result<(), StoreError> {
        // Not holding the lock while the visitor runs: it may read the store itself.
        let mut from = *range.start();
        let end = *range.end();
        loop {
            let chunk: Vec<(u64, Vec<u8>)> = {
                let inner = self.lock();
                if from > end {
                    return Ok(());
                }
                inner
                    .events
                    .range(from..=end)
                    .take(1024)
                    .map(|(k, v)| (*k, v.clone()))
                    .collect()
            };
            let Some(&(last, _)) = chunk.last() else {
                return Ok(());
            };
            for (seq, bytes) in chunk {
                if !visit(decode(seq, &bytes)?) {
                    return Ok(());
                }
            }
            if last == u64::MAX {
                return Ok(());
            }
            from = last + 1;
        }
    }

    fn seqs_for_machine(&self, mac: &Mac) -> Result<Vec<u64>, StoreError> {
        let m = mac.as_u64();
        Ok(self
            .lock()
            .by_machine
            .range((m, 0)..=(m, u64::MAX))
            .map(|(_, seq)| *seq)
            .collect())
    }

    fn get(&self, seq: u64) -> Result<Option<Envelope>, StoreError> {
        let bytes = self.lock().events.get(&seq).cloned();
        bytes.map(|b| decode(seq, &b)).transpose()
    }

    fn snapshot_at_or_before(&self, seq: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .lock()
            .snapshots
            .range(..=seq)
            .next_back()
            .map(|(k, (bytes, _))| (*k, bytes.clone())))
    }

    fn snapshot_for_time(&self, at: Timestamp) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let at = at.as_microsecond();
        Ok(self
            .lock()
            .snapshots
            .iter()
            .rev()
            .find(|(_, (_, observed))| *observed <= at)
            .map(|(k, (bytes, _))| (*k, bytes.clone())))
    }

    fn late_after(&self, seq: u64, at: Timestamp) -> Result<Vec<u64>, StoreError> {
        let at = at.as_microsecond();
        Ok(self
            .lock()
            .late
            .range(seq.saturating_add(1)..)
            .filter(|(_, observed)| **observed <= at)
            .map(|(k, _)| *k)
            .collect())
    }

    fn checkpoint(&self, source: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().checkpoints.get(source).cloned())
    }
}

#[cfg(test)]
impl MemoryStore {
    /// Replace a stored event's bytes (for the corruption test).
    pub(super) fn corrupt_for_test(&self, seq: u64, bytes: &[u8]) {
        self.lock().events.insert(seq, bytes.to_vec());
    }
}
