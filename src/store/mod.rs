//! The event store: an append-only log of [`Envelope`]s with its indexes and snapshots.
//!
//! The [`EventStore`] trait is the whole contract the engine needs (append a batch with its
//! checkpoints, read a range, read by machine, read by time, snapshots); [`RedbStore`] is the
//! embedded default. Domain rules never live here.

mod redb_store;

use std::ops::RangeInclusive;

use anyhow::Result;
use jiff::Timestamp;
use nmt_projections::{Envelope, Mac};

pub use redb_store::{OpenError, RedbStore};

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
}

/// An append-only, gap-free event log.
pub trait EventStore {
    /// The last sequence number written (0 when empty).
    fn last_seq(&self) -> Result<u64>;

    /// Append a batch atomically, with source checkpoints committed in the same transaction,
    /// and optionally a snapshot of the state after the batch. All or nothing.
    fn append(
        &mut self,
        batch: &[Append<'_>],
        checkpoints: &[(&str, &[u8])],
        snapshot: Option<Snapshot<'_>>,
    ) -> Result<()>;

    /// Visit events in a sequence range, in order; the visitor returns false to stop.
    fn scan(
        &self,
        range: RangeInclusive<u64>,
        visit: &mut dyn FnMut(Envelope) -> Result<bool>,
    ) -> Result<()>;

    /// The sequence numbers of the events indexed under a machine, oldest first.
    fn seqs_for_machine(&self, mac: &Mac) -> Result<Vec<u64>>;

    /// The sequence numbers of events observed in a time window, in time order.
    fn seqs_in_time(&self, since: Option<Timestamp>, until: Option<Timestamp>) -> Result<Vec<u64>>;

    /// One event.
    fn get(&self, seq: u64) -> Result<Option<Envelope>>;

    /// The newest snapshot at or before `seq`: its sequence number and bytes.
    fn snapshot_at_or_before(&self, seq: u64) -> Result<Option<(u64, Vec<u8>)>>;

    /// The late events (see [`Append::late`]) after `seq` observed at or before `at`, in
    /// sequence order.
    fn late_after(&self, seq: u64, at: Timestamp) -> Result<Vec<u64>>;

    /// The newest snapshot whose events were all observed at or before `at`.
    fn snapshot_for_time(&self, at: Timestamp) -> Result<Option<(u64, Vec<u8>)>>;

    /// A source's checkpoint.
    fn checkpoint(&self, source: &str) -> Result<Option<Vec<u8>>>;

    /// Read a small metadata value.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Write a small metadata value (its own transaction).
    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<()>;
}
