//! The [`Tailer`]: which file to read next for one followed path, across rename rotation,
//! `copytruncate`, deletion and restarts from a checkpoint. Reading lines out of one file is
//! `cursor.rs`; finding rotated siblings is `siblings.rs`. No threads, no clocks, no watching:
//! the daemon calls [`Tailer::poll`] when something may have changed.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::cursor::{Cursor, first_bytes};
use super::siblings::{open_if, rotated_siblings};
use super::types::{Batch, Checkpoint, FileId, TailEvent, fingerprint};

/// The default cap on a line's length, see [`Tailer::max_line`].
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// Most files one poll moves through (a bound against a directory that rotates faster
/// than it can be read; the next poll goes on).
const MAX_HOPS: usize = 64;

/// Follows one log path, by file identity, handing out every complete line exactly once.
///
/// - The file is known by `(dev, ino)` and a fingerprint of its first bytes, never by name.
/// - **Rename rotation** (`mv log log.1`, then a new `log`): the old file stays open and is
///   read to its end before the new one is read from 0. It is *finished* once a newer file
///   (the one at the path, or a newer rotated sibling) has data: the writer then has moved
///   on, so an unterminated last line is handed out too. Until then only its complete lines
///   are, and the new file waits. When several rotations happened between two polls (or
///   while the daemon was down), the rotated siblings newer than the old file are read in
///   between, oldest first (see `siblings.rs` for the order).
/// - **Deletion and re-creation**: a deleted file is still read to its end through the open
///   descriptor, then the file at the path from 0. Limit: a file rotated away between the
///   deletion and the next poll is not found (a deleted file has no place among the
///   siblings).
/// - **Truncation in place** (`copytruncate`): noticed when the file is shorter than what was
///   read, or when its first bytes changed (a truncation followed at once by a large write).
///   The lines after the old offset are then read from the copy beside it (the newest
///   rotated sibling whose first bytes are the ones seen, and long enough), then the newer
///   siblings, then the file again from 0. Lines written between the copy and the truncation
///   are lost to any reader; so are those of a copy of a file that was still empty when it
///   was last looked at (nothing to recognise the copy by). A truncation is only seen if
///   the new first bytes differ from those seen before: real lines start with a timestamp,
///   but when only a few bytes of a first, partial line were seen, they may match.
/// - **Inherent losses**, for any reader: after a crash, the unread rest of a file deleted
///   meanwhile; lines a writer adds to a rotated file after a newer file got data.
/// - **A missing path** is not an error: [`TailEvent::Missing`] once, and the next polls look
///   again.
/// - **A restart** from a checkpoint finds its file at the path or among the rotated siblings
///   by `(dev, ino)` and fingerprint, or else a copy of it by fingerprint; failing both, it
///   reports [`TailEvent::Lost`] and starts the file at the path from 0.
/// - **Lines are bytes**; one longer than [`Tailer::max_line`] is handed out once complete,
///   cut to that many bytes and marked `truncated`; its tail is skipped as it is read, so
///   memory stays bounded whatever is in the file.
/// - **After an I/O error** the tailer goes back to the last checkpoint it handed out (or
///   started from): the lines of the failed poll are read again.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    max_line: usize,
    cur: Option<Cursor>,
    /// A checkpoint to resume from at the next poll.
    resume: Option<Checkpoint>,
    /// The last checkpoint handed out, or the one started from.
    last: Option<Checkpoint>,
    /// [`TailEvent::Missing`] was reported for the current absence of the path.
    missing: bool,
    /// When following began: without a checkpoint, rotated files written since then are
    /// read before the file at the path (they appeared and rotated away before a first look).
    started: std::time::SystemTime,
}

/// File times are coarser than the clock (ext4 stamps in jiffies): a file written just
/// after following began can carry a slightly earlier time.
const MTIME_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

/// A file that could come after the one being read.
struct Next {
    path: PathBuf,
    id: FileId,
    size: u64,
}

impl Tailer {
    /// Start following `path`, which may not exist yet, from `from` (`None`: from the start
    /// of the file at the path). Nothing is opened until the first [`Tailer::poll`].
    pub fn new(path: impl Into<PathBuf>, from: Option<Checkpoint>) -> Tailer {
        Tailer {
            path: path.into(),
            max_line: DEFAULT_MAX_LINE,
            cur: None,
            resume: from.clone(),
            last: from,
            missing: false,
            started: std::time::SystemTime::now(),
        }
    }

    /// Treat files written since `t` as new (default: when the tailer was made). Without a
    /// checkpoint, rotated files written since then are read before the file at the path.
    pub fn since(mut self, t: std::time::SystemTime) -> Tailer {
        self.started = t;
        self
    }

    /// Cap lines at `bytes` (at least 1; [`DEFAULT_MAX_LINE`], 1 MiB, unless set): a longer
    /// line is handed out once its `\n` arrives, as its first `bytes` bytes, marked
    /// [`Line::truncated`](super::Line::truncated).
    pub fn max_line(mut self, bytes: usize) -> Tailer {
        self.max_line = bytes.max(1);
        self
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last checkpoint handed out, or the one the tailer started from.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.last.as_ref()
    }

    /// How many bytes of an unterminated line are held in memory.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.cur.as_ref().map_or(0, Cursor::held)
    }

    /// Read what is there now: complete lines only, moving through rotated files as needed.
    /// At most `max_bytes` bytes of log are read (at least 1; a line longer than that takes
    /// several polls, and the partial line read so far is kept, not read again), besides a
    /// few hundred bytes per file to check fingerprints. Returns the lines with the checkpoint
    /// to commit after them.
    pub fn poll(&mut self, max_bytes: usize) -> io::Result<Batch> {
        let mut batch = Batch::default();
        match self.poll_into(max_bytes.max(1), &mut batch) {
            Ok(()) => {
                if batch.checkpoint.is_some() {
                    self.last.clone_from(&batch.checkpoint);
                }
                Ok(batch)
            }
            Err(e) => {
                self.cur = None;
                self.resume.clone_from(&self.last);
                Err(e)
            }
        }
    }

    fn poll_into(&mut self, mut budget: usize, batch: &mut Batch) -> io::Result<()> {
        if let Some(from) = self.resume.take() {
            self.resume_from(&from, &mut batch.events)?;
        }
        for _ in 0..MAX_HOPS {
            let at_path = self.stat_path()?;
            if at_path.is_none() && !self.missing {
                batch.events.push(TailEvent::Missing);
            }
            self.missing = at_path.is_none();
            let Some(cur) = self.cur.as_mut() else {
                // Nothing read yet: a file written since following began may already have
                // been rotated away; start with the oldest of those.
                if self.last.is_none()
                    && let Some(fresh) = rotated_siblings(&self.path)?
                        .into_iter()
                        .find(|s| s.modified.is_some_and(|m| m >= self.started - MTIME_SLACK))
                    && let Some(file) = open_if(&fresh.path, fresh.id)?
                {
                    self.cur = Some(Cursor::new(file, fresh.id, 0)?);
                    batch.events.push(TailEvent::Opened {
                        file: fresh.id,
                        path: fresh.path,
                        offset: 0,
                    });
                    continue;
                }
                let Some((id, _)) = at_path else { break };
                let Some(file) = open_if(&self.path, id)? else {
                    break;
                };
                self.cur = Some(Cursor::new(file, id, 0)?);
                batch.events.push(TailEvent::Opened {
                    file: id,
                    path: self.path.clone(),
                    offset: 0,
                });
                continue;
            };
            if cur.truncated()? {
                self.after_truncation(batch)?;
                continue;
            }
            if at_path.map(|(id, _)| id) == Some(cur.id) {
                cur.read(&mut batch.lines, &mut budget, self.max_line, false)?;
                break;
            }
            // The file being read is no longer at the path: renamed, deleted, or the path is
            // missing. Look at what came after it before reading to its end, so that an end
            // seen after a newer file had data is its real end (one writer writes in order).
            let later = self.later(at_path)?;
            let finished = later.iter().any(|f| f.size > 0);
            let cur = self.cur.as_mut().expect("checked above");
            let at_end = cur.read(&mut batch.lines, &mut budget, self.max_line, finished)?;
            if !(at_end && finished) {
                break;
            }
            let next = later
                .into_iter()
                .next()
                .expect("finished means a later file");
            let Some(file) = open_if(&next.path, next.id)? else {
                break;
            };
            let deleted = cur.deleted()?;
            let from = cur.id;
            self.leave(batch)?;
            batch.events.push(if deleted {
                TailEvent::Recreated { from, to: next.id }
            } else {
                TailEvent::Rotated {
                    from,
                    to: next.id,
                    path: next.path,
                }
            });
            self.cur = Some(Cursor::new(file, next.id, 0)?);
        }
        self.leave(batch)
    }

    /// If lines were handed out from the current file in this poll, the batch's checkpoint is
    /// just after the last of them.
    fn leave(&mut self, batch: &mut Batch) -> io::Result<()> {
        if let Some(cur) = self.cur.as_mut().filter(|c| c.emitted) {
            cur.emitted = false;
            batch.checkpoint = Some(cur.checkpoint()?);
        }
        Ok(())
    }

    /// The file at the path and its size, if there is one.
    fn stat_path(&self) -> io::Result<Option<(FileId, u64)>> {
        match std::fs::metadata(&self.path) {
            Ok(meta) => Ok(Some((FileId::of(&meta), meta.len()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The files that come after the current one, which is not at the path: the rotated
    /// siblings newer than it (when it is one of them), then the file at the path.
    fn later(&self, at_path: Option<(FileId, u64)>) -> io::Result<Vec<Next>> {
        let cur = self.cur.as_ref().expect("called with a current file");
        let path_id = at_path.map(|(id, _)| id);
        let mut out = Vec::new();
        if !cur.deleted()? {
            let siblings = rotated_siblings(&self.path)?;
            if let Some(i) = siblings.iter().position(|s| s.id == cur.id) {
                out.extend(
                    siblings
                        .into_iter()
                        .skip(i + 1)
                        .filter(|s| s.id != cur.id && Some(s.id) != path_id)
                        .map(|s| Next {
                            path: s.path,
                            id: s.id,
                            size: s.size,
                        }),
                );
            }
        }
        if let Some((id, size)) = at_path.filter(|(id, _)| *id != cur.id) {
            out.push(Next {
                path: self.path.clone(),
                id,
                size,
            });
        }
        Ok(out)
    }

    /// The current file was truncated: go on from the copy of its old content if there is
    /// one beside it, else read it again from 0.
    fn after_truncation(&mut self, batch: &mut Batch) -> io::Result<()> {
        self.leave(batch)?;
        let cur = self.cur.as_ref().expect("called with a current file");
        let (id, offset) = (cur.id, cur.offset);
        let prefix = cur.prefix();
        let copy = if prefix.is_empty() {
            None
        } else {
            self.find_copy(prefix.len(), fingerprint(prefix), offset, id)?
        };
        match copy {
            Some((path, copy_id, file)) => {
                batch.events.push(TailEvent::Truncated {
                    file: id,
                    offset,
                    copy: Some(path),
                });
                self.cur = Some(Cursor::new(file, copy_id, offset)?);
            }
            None => {
                batch.events.push(TailEvent::Truncated {
                    file: id,
                    offset,
                    copy: None,
                });
                self.cur.as_mut().expect("checked above").restart()?;
            }
        }
        Ok(())
    }

    /// The newest rotated sibling (other than `exclude`) of at least `min_size` bytes whose
    /// first `n` bytes have fingerprint `fp`: a copy of a file as it was.
    fn find_copy(
        &self,
        n: usize,
        fp: u64,
        min_size: u64,
        exclude: FileId,
    ) -> io::Result<Option<(PathBuf, FileId, File)>> {
        for s in rotated_siblings(&self.path)?.into_iter().rev() {
            if s.id == exclude || s.size < min_size {
                continue;
            }
            let Some(file) = open_if(&s.path, s.id)? else {
                continue;
            };
            let head = first_bytes(&file, n)?;
            if head.len() == n && fingerprint(&head) == fp {
                return Ok(Some((s.path, s.id, file)));
            }
        }
        Ok(None)
    }

    /// Find where a checkpoint's file is now, and open it at the checkpoint.
    /// Look for the checkpoint's file at the path and among the rotated siblings, as it was.
    fn resume_found(
        &mut self,
        from: &Checkpoint,
        n: usize,
        events: &mut Vec<TailEvent>,
    ) -> io::Result<bool> {
        let at_path = self.stat_path()?.map(|(id, _)| id);
        let mut places: Vec<(PathBuf, FileId)> = Vec::new();
        if at_path == Some(from.file()) {
            places.push((self.path.clone(), from.file()));
        }
        for s in rotated_siblings(&self.path)? {
            if s.id == from.file() && at_path != Some(s.id) {
                places.push((s.path, s.id));
            }
        }
        for (path, id) in places {
            let Some(file) = open_if(&path, id)? else {
                continue;
            };
            let head = first_bytes(&file, n)?;
            let whole = file.metadata()?.len() >= from.offset;
            if whole && head.len() == n && fingerprint(&head) == from.fingerprint {
                events.push(TailEvent::Opened {
                    file: id,
                    path,
                    offset: from.offset,
                });
                self.cur = Some(Cursor::new(file, id, from.offset)?);
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn resume_from(&mut self, from: &Checkpoint, events: &mut Vec<TailEvent>) -> io::Result<()> {
        let n = from.fingerprint_len();
        // A rotation running right now can move the file between listing the directory and
        // opening it: look again a few times before concluding it is gone.
        for attempt in 0..5 {
            if attempt > 0 {
                // Still at the path but different: truncated in place, no point waiting.
                if self.stat_path()?.map(|(id, _)| id) == Some(from.file()) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if self.resume_found(from, n, events)? {
                return Ok(());
            }
        }
        let at_path = self.stat_path()?.map(|(id, _)| id);
        // Not there as it was: truncated in place, or gone. Look for a copy.
        let truncated = at_path == Some(from.file());
        let copy = match n {
            0 => None,
            _ => self.find_copy(n, from.fingerprint, from.offset, from.file())?,
        };
        match copy {
            Some((path, id, file)) => {
                events.push(if truncated {
                    TailEvent::Truncated {
                        file: from.file(),
                        offset: from.offset,
                        copy: Some(path),
                    }
                } else {
                    TailEvent::Opened {
                        file: id,
                        path,
                        offset: from.offset,
                    }
                });
                self.cur = Some(Cursor::new(file, id, from.offset)?);
            }
            None if truncated => {
                events.push(TailEvent::Truncated {
                    file: from.file(),
                    offset: from.offset,
                    copy: None,
                });
            }
            None => events.push(TailEvent::Lost {
                checkpoint: from.clone(),
            }),
        }
        Ok(())
    }
}
