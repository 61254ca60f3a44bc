//! What the tailer hands out: lines with their byte offsets, the checkpoint to commit after
//! them, and the events (rotation, truncation…) the daemon turns into logs and metrics.
//! How files are identified (device, inode and a fingerprint of their first bytes) lives here too.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// How many leading bytes of a file its fingerprint covers at most.
pub const FINGERPRINT_BYTES: usize = 256;

/// A file by identity, not by name: the device and inode numbers from `stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl FileId {
    pub(super) fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// Where a source stands: which file (by identity, not name) and how far its lines were
/// handed out. Commit it in the same transaction as the events made from those lines; a
/// [`Tailer`](super::Tailer) rebuilt from it after a crash goes on with the next line, exactly.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// `st_dev` of the file.
    pub dev: u64,
    /// `st_ino` of the file.
    pub ino: u64,
    /// Just after the last byte handed out (a line's `\n`, or the end of a finished file).
    pub offset: u64,
    /// [`fingerprint`] of the file's first `min(offset, 256)` bytes: those bytes were handed
    /// out, so an appending writer never changes them. It tells a file that was truncated and
    /// rewritten, or a new file that got a freed inode number, from the file the offset is in.
    pub fingerprint: u64,
}

impl Checkpoint {
    /// The file this checkpoint is in.
    pub fn file(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
        }
    }

    /// How many leading bytes [`Checkpoint::fingerprint`] covers.
    pub fn fingerprint_len(&self) -> usize {
        fingerprint_len(self.offset)
    }
}

pub(super) fn fingerprint_len(offset: u64) -> usize {
    usize::try_from(offset).map_or(FINGERPRINT_BYTES, |o| o.min(FINGERPRINT_BYTES))
}

/// The fingerprint of a file's first bytes: the first 8 bytes (little-endian) of their
/// SHA-256. Stable across releases, since checkpoints are stored. A cryptographic hash, because
/// whoever writes log lines must not be able to forge a collision and hide a truncation.
pub fn fingerprint(first_bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(first_bytes);
    let mut eight = [0; 8];
    eight.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(eight)
}

/// One line, as bytes: any encoding, invalid UTF-8 included.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The file it is in.
    pub file: FileId,
    /// Where its first byte is in that file.
    pub offset: u64,
    /// The line without its `\n`; only its first `max_line` bytes when `truncated`.
    pub bytes: Vec<u8>,
    /// The line was longer than the tailer's `max_line` cap, and its tail was skipped.
    pub truncated: bool,
    /// The file's content identity ([`crate::file_identity`] of its first line): the same
    /// for the file once rotated, copied or gzipped, so replay can tell what was read.
    pub identity: u64,
}

/// What one [`Tailer::poll`](super::Tailer::poll) found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The lines, in order; they may run from the end of a rotated file into the next one.
    pub lines: Vec<Line>,
    /// The checkpoint to commit together with whatever was made of `lines`: just after the
    /// last of them. `None` when no line was handed out (nothing new to commit).
    pub checkpoint: Option<Checkpoint>,
    /// What happened to the files, in order; for the daemon's logs and metrics.
    pub events: Vec<TailEvent>,
}

/// Something that happened to the followed files. The library reports; the daemon logs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailEvent {
    /// Started reading a file: at the first poll, after a restart (at the checkpoint, in the
    /// file at `path`, which may be a rotated name), or when the path appeared after being
    /// missing.
    Opened {
        /// The file.
        file: FileId,
        /// Where it was found.
        path: PathBuf,
        /// Where reading starts.
        offset: u64,
    },
    /// Finished a file that is no longer at the path (it was renamed) and moved on to the
    /// next one: a newer rotated file, or the file now at the path.
    Rotated {
        /// The finished file.
        from: FileId,
        /// The next file.
        to: FileId,
        /// Where the next file is.
        path: PathBuf,
    },
    /// Finished a file that was deleted, and moved on to the file now at the path.
    Recreated {
        /// The finished (deleted) file.
        from: FileId,
        /// The new file.
        to: FileId,
    },
    /// A file was truncated in place (`copytruncate`, or rewritten from the start): it is
    /// shorter than what was read, or its first bytes changed. On a restart this is also how
    /// a new file that got the inode number of the checkpoint's deleted one shows.
    Truncated {
        /// The truncated file.
        file: FileId,
        /// How far it had been read.
        offset: u64,
        /// A copy of its old content found beside it (`copytruncate`'s `path.1`), where the
        /// lines after `offset` are read from before the file is read again from 0. `None`:
        /// no copy was found, whatever lay past `offset` is lost, and the file is read from 0.
        copy: Option<PathBuf>,
    },
    /// Nothing is at the path. Not an error: it is reported once, and polled again later.
    Missing,
    /// Restarting from a checkpoint whose file is nowhere to be found (not at the path, not
    /// among its rotated siblings, no copy): what was left in it is lost, and reading starts
    /// over with the file now at the path, from 0.
    Lost {
        /// The checkpoint that could not be followed.
        checkpoint: Checkpoint,
    },
}

/// A sentence for `nmt status` and the daemon's log.
impl std::fmt::Display for TailEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TailEvent::Opened { file, path, offset } => {
                write!(
                    f,
                    "opened {} (file {file}) at byte {offset}",
                    path.display()
                )
            }
            TailEvent::Rotated { from, to, path } => write!(
                f,
                "rotated: finished file {from}, went on to {} (file {to})",
                path.display()
            ),
            TailEvent::Recreated { from, to } => write!(
                f,
                "recreated: finished the deleted file {from}, went on to the new file {to}"
            ),
            TailEvent::Truncated {
                file,
                offset,
                copy: Some(copy),
            } => write!(
                f,
                "truncated in place after byte {offset} of file {file}: read the rest from its copy {}",
                copy.display()
            ),
            TailEvent::Truncated {
                file,
                offset,
                copy: None,
            } => write!(
                f,
                "truncated in place after byte {offset} of file {file}, with no copy beside it: reading it again from its start"
            ),
            TailEvent::Missing => f.write_str("the file is missing; waiting for it to appear"),
            TailEvent::Lost { checkpoint } => write!(
                f,
                "the file last read (file {}, byte {}) is nowhere to be found; reading the file at the path from its start",
                checkpoint.file(),
                checkpoint.offset
            ),
        }
    }
}
