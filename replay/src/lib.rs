//! Sources and time for nmt: reading logs and journals back into events.
//!
//! - [`Tailer`]: nmt's byte-accurate log reader. It follows a path through rename rotation,
//!   copytruncate, deletion and recreation, hands out only complete lines with their byte
//!   offsets, and gives the [`Checkpoint`] to commit with the events those lines produced,
//!   so live ingest and replay read exactly once.
//! - [`Converter`]: parsed log lines (nmt-parsers) into domain observations, with the year of
//!   RFC 3164 stamps inferred and dnsmasq's detail lines joined to their transaction.
//! - [`Archive`] / [`merge`]: archived logs (plain, rotated, gzip) merged in time order, with
//!   each line's file identity and offset (the same as live ingest records) and the year of
//!   RFC 3164 stamps inferred ([`YearRule`]).
//! - [`read_journal`] / [`fold_journal`]: a JSON-lines journal as `nmt journal export`
//!   writes it, refused with its line number when truncated or out of sequence; [`read_export`]
//!   also gives its [`Trailer`] (event count, digest, filter), checked.
//!
//! ```
//! let journal = br#"{"seq":1,"v":1,"recorded_at":"2026-01-01T00:00:00Z","observed_at":"2026-01-01T00:00:00Z","actor":"nmt","event":{"type":"StoreCreated"}}
//! {"seq":2,"v":1,"recorded_at":"2026-01-01T00:00:00Z","observed_at":"2026-01-01T00:00:00Z","actor":"root","event":{"type":"GroupCreated","group":"lab","policy":"ltsp"}}"#;
//! let state = nmt_replay::fold_journal(&journal[..]).unwrap();
//! assert_eq!(state.group_policy("lab").to_string(), "ltsp");
//! ```

mod archive;
mod journal;
mod marks;
mod pipeline;
mod records;
mod tail;

pub use archive::{Archive, ArchiveLine, Merged, Progress, YearRule, file_identity, merge};
pub use journal::{
    CHUNK_LINES, ExportChunk, ExportFilter, Journal, JournalError, Trailer, fold_journal,
    read_export, read_export_chunks, read_journal,
};
pub use marks::{Mark, MarkError, MarkKey};
pub use pipeline::{
    Committed, Counts, FileSource, Pipeline, Read, Rejected, Resume, Sealed, Sink, SinkError,
    Uncommitted,
};
pub use records::{Converter, Observed, Skipped};
pub use tail::{
    Batch, Checkpoint, DEFAULT_MAX_LINE, FINGERPRINT_BYTES, FileId, Line, TailEvent, Tailer,
    fingerprint,
};
