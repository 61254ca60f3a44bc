//! The event store: an append-only log of [`Envelope`]s with its indexes and snapshots.
//!
//! The [`EventStore`] trait is the whole contract the engine needs (append a batch with its
//! checkpoints, read a range, read by machine, the late index, snapshots); [`RedbStore`] is
//! the embedded default and [`MemoryStore`] a volatile one for tests. Domain rules never live
//! here. Every backend reports its failures as a [`StoreError`].

mod codec;
mod memory;
mod redb_store;

#[cfg(test)]
mod conformance;

use std::ops::RangeInclusive;
use std::time::Duration;

use jiff::Timestamp;
use nmt_projections::{Envelope, Mac};

use codec::{Block, block_len, decode, encode, encode_block};
pub use memory::MemoryStore;
pub use redb_store::RedbStore;

/// A backend's own error (redb's, a database client's), kept as the cause.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the store, and kept it for longer than we were willing to wait.
    #[error(
        "the store {location} is in use by another nmt process (a running nmtd or another nmt \
         command) and stayed busy for {waited:?}; stop the other process, or try again (`nmt` \
         waits longer with --wait SECONDS)"
    )]
    Busy {
        /// Where the store is (the database file).
        location: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The store could not be opened for another reason than being busy.
    #[error("cannot open the store {location}: {source}")]
    Open {
        /// Where the store is (the database file).
        location: String,
        /// The cause.
        source: BackendError,
    },
    /// An appended event does not follow the log's last one: the log must stay gap-free.
    /// Nothing of the batch was written.
    #[error(
        "refusing to append event {got} where event {expected} comes next: the log must stay \
         gap-free"
    )]
    SequenceConflict {
        /// The sequence number the next event must have.
        expected: u64,
        /// The one it had.
        got: u64,
    },
    /// A stored event does not decode.
    #[error("event {seq} of the store does not decode: {reason}")]
    Corrupt {
        /// Its sequence number.
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend failed (I/O, a transaction, a table).
    #[error("the store failed: {0}")]
    Backend(BackendError),
}

/// The former name of [`StoreError`] for [`RedbStore::open`]'s errors.
pub type OpenError = StoreError;

/// A snapshot of the state after event `seq`, and the latest observation time folded in it.
pub struct Snapshot<'a> {
    /// The last event it includes.
    pub seq: u64,
    /// The encoded state.
    pub bytes: &'a [u8],
    /// The latest `observed_at` among the events it includes.
    pub max_observed: Option<Timestamp>,
}

/// One event to append, with the machines whose history it belongs to.
pub struct Append<'a> {
    /// The event and its envelope (its `seq` must follow the store's last one).
    pub envelope: &'a Envelope,
    /// The machines to index it under.
    pub machines: &'a [Mac],
    /// Observed before an event already in the log (a replayed archive): indexed apart, so
    /// "as of" queries can stop scanning at the first in-order event past their time.
    pub late: bool,
    /// Its JSON ([`Envelope::to_json`]), when the caller made it already (`journal import`
    /// makes it on another thread while it folds); `None` has the store make it.
    pub json: Option<&'a [u8]>,
}

/// The JSON of an event to append: the caller's, or made now.
fn json_of<'a>(a: &Append<'a>) -> std::borrow::Cow<'a, [u8]> {
    match a.json {
        Some(json) => std::borrow::Cow::Borrowed(json),
        None => std::borrow::Cow::Owned(a.envelope.to_json()),
    }
}

/// An append-only, gap-free event log.
///
/// Contract (checked for every backend by the conformance tests in this module):
/// - sequence numbers start at 1 and have no gaps; an append whose first event is not
///   `last_seq() + 1` (or whose events do not follow each other) is refused with
///   [`StoreError::SequenceConflict`] and writes nothing;
/// - an append writes its events, their machine and late indexes, the checkpoints and the
///   snapshots all at once, or nothing;
/// - snapshots are thinned as they accumulate (see [`SNAPSHOTS_RECENT`]), so any given one
///   may disappear later; readers fall back to an older one or to the log.
pub trait EventStore {
    /// The last sequence number written (0 when empty).
    fn last_seq(&self) -> Result<u64, StoreError>;

    /// Append a batch atomically, with source checkpoints committed in the same transaction,
    /// and snapshots of the state after some of its events (or after the events before it),
    /// in order. All or nothing.
    fn append(
        &mut self,
        batch: &[Append<'_>],
        checkpoints: &[(&str, &[u8])],
        snapshots: &[Snapshot<'_>],
    ) -> Result<(), StoreError>;

    /// Visit events in a sequence range, in order; the visitor returns false to stop.
    fn scan(
        &self,
        range: RangeInclusive<u64>,
        visit: &mut dyn FnMut(Envelope) -> bool,
    ) -> Result<(), StoreError>;

    /// The sequence numbers of the events indexed under a machine, oldest first.
    fn seqs_for_machine(&self, mac: &Mac) -> Result<Vec<u64>, StoreError>;

    /// One event.
    fn get(&self, seq: u64) -> Result<Option<Envelope>, StoreError>;

    /// The events of `seqs` (in increasing order) that exist, in that order; the visitor
    /// returns false to stop. A backend that keeps events in blocks reads each block once.
    fn get_each(
        &self,
        seqs: &[u64],
        visit: &mut dyn FnMut(Envelope) -> bool,
    ) -> Result<(), StoreError> {
        for &seq in seqs {
            if let Some(env) = self.get(seq)?
                && !visit(env)
            {
                break;
            }
        }
        Ok(())
    }

    /// The newest snapshot at or before `seq`: its sequence number and bytes.
    fn snapshot_at_or_before(&self, seq: u64) -> Result<Option<(u64, Vec<u8>)>, StoreError>;

    /// The newest snapshot whose events were all observed at or before `at` (a snapshot
    /// without an observation time qualifies for any `at`).
    fn snapshot_for_time(&self, at: Timestamp) -> Result<Option<(u64, Vec<u8>)>, StoreError>;

    /// The late events (see [`Append::late`]) after `seq` observed at or before `at`, in
    /// sequence order.
    fn late_after(&self, seq: u64, at: Timestamp) -> Result<Vec<u64>, StoreError>;

    /// A source's checkpoint.
    fn checkpoint(&self, source: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Give back space the backend no longer uses, if there is enough of it and nothing was
    /// appended for `quiet`. Only an optimisation: it never fails.
    fn compact_when_idle(&mut self, _quiet: Duration) {}
}

/// Snapshots kept: the newest `SNAPSHOTS_RECENT` all, and older ones thinned (every second
/// one dropped) whenever there are more than [`SNAPSHOTS_MAX`], so old times stay reachable
/// at a coarser grain; but never so that two kept ones end up more than
/// [`SNAPSHOT_SPACING`] events apart. A store holds about a snapshot per 1,000 events up to
/// a few hundred thousand events, then one per 25,000 events or closer: an as-of query
/// (`nmt show --at`) folds at most that many events from the one before its time.
pub const SNAPSHOTS_RECENT: usize = 16;
/// See [`SNAPSHOTS_RECENT`].
pub const SNAPSHOTS_MAX: usize = 256;
/// See [`SNAPSHOTS_RECENT`]. A snapshot of 10,000 machines is about 200 kB: one per 25,000
/// events adds 8 bytes to each event's 45 or so (measured on a 10M-event import).
pub const SNAPSHOT_SPACING: u64 = 25_000;

/// The snapshots to drop, given all kept ones' sequence numbers in order (every backend
/// thins the same way).
fn snapshots_to_thin(keys: &[u64]) -> Vec<u64> {
    if keys.len() <= SNAPSHOTS_MAX {
        return Vec::new();
    }
    let old = keys.len() - SNAPSHOTS_RECENT;
    let mut drop = Vec::new();
    let mut kept = keys[0];
    for i in 1..old {
        // Every second one, unless its neighbours would then be too far apart.
        if i % 2 == 1 && keys[i + 1] - kept <= SNAPSHOT_SPACING {
            drop.push(keys[i]);
        } else {
            kept = keys[i];
        }
    }
    drop
}

/// The observation time as a late or snapshot index value (µs; none sorts first).
fn micros(t: Option<Timestamp>) -> i64 {
    t.map_or(i64::MIN, |t| t.as_microsecond())
}

#[cfg(test)]
mod thinning_tests {
    use super::*;

    /// The snapshots a store keeps when one is added every `gap` events, `n` times.
    fn kept(gap: u64, n: u64) -> Vec<u64> {
        let mut keys = Vec::new();
        for k in 1..=n {
            keys.push(k * gap);
            let drop = snapshots_to_thin(&keys);
            keys.retain(|k| !drop.contains(k));
        }
        keys
    }

    #[test]
    fn snapshots_are_thinned_to_a_few_hundred_but_never_further_apart_than_the_spacing() {
        let n = SNAPSHOTS_MAX as u64 * 8;
        for gap in [1, 1_000, 10_000, SNAPSHOT_SPACING / 2, SNAPSHOT_SPACING + 1] {
            let kept = kept(gap, n);
            // The first one and the newest ones always.
            assert_eq!(kept[0], gap, "{gap}");
            assert!(
                kept.ends_with(
                    &(n - SNAPSHOTS_RECENT as u64 + 1..=n)
                        .map(|k| k * gap)
                        .collect::<Vec<_>>()
                ),
                "{gap}"
            );
            let widest = kept.windows(2).map(|w| w[1] - w[0]).max().unwrap();
            if gap * 4 <= SNAPSHOT_SPACING {
                // Thinned as far as the spacing allows, and no further.
                assert!(widest <= SNAPSHOT_SPACING, "{gap}: {widest}");
                assert!(kept.len() < n as usize / 2, "{gap}: {} kept", kept.len());
            }
            if gap * n <= SNAPSHOT_SPACING * SNAPSHOTS_MAX as u64 / 2 {
                // A short log: at most the count, as before the spacing.
                assert!(
                    kept.len() <= SNAPSHOTS_MAX + 1,
                    "{gap}: {} kept",
                    kept.len()
                );
            }
            if gap > SNAPSHOT_SPACING / 2 {
                // An import's snapshots, one per spacing or more apart: all kept.
                assert_eq!(kept.len(), n as usize, "{gap}");
            }
        }
    }
}
