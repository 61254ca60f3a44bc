//! Sources and time for nmt: turning journals (and, later, archived DHCP/TFTP logs) back
//! into state.
//!
//! Today this crate folds a JSON-lines journal, as `nmt journal export` writes it, checking
//! that it is whole: every line decodes and the sequence numbers run gap-free from 1. Log
//! readers, year inference for RFC 3164 stamps and state *as of* a time come with replay.
//!
//! ```
//! let journal = br#"{"seq":1,"v":1,"recorded_at":"2026-01-01T00:00:00Z","observed_at":"2026-01-01T00:00:00Z","actor":"root","event":{"type":"GroupCreated","group":"lab","policy":"ltsp"}}"#;
//! let state = nmt_replay::fold_journal(&journal[..]).unwrap();
//! assert_eq!(state.group_policy("lab").to_string(), "ltsp");
//! ```

mod journal;

pub use journal::{JournalError, fold_journal, read_journal};
