//! Following a live log file and reading every line exactly once, across crashes, rename
//! rotation, `copytruncate` and deletion: byte offsets, file identity by `(dev, ino)` and a
//! fingerprint, rotated siblings. Synchronous, I/O through std only; watching (linemux, a
//! `stat` timer) and committing checkpoints are the daemon's.

mod cursor;
mod siblings;
mod tailer;
mod types;

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;

pub use tailer::{DEFAULT_MAX_LINE, Tailer};
pub use types::{Batch, Checkpoint, FINGERPRINT_BYTES, FileId, Line, TailEvent, fingerprint};
