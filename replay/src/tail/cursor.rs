//! Reading one open file from a byte offset: complete lines only, the unterminated tail kept
//! (at most `max_line` bytes of it) until its `\n` arrives, and the file's first bytes watched
//! so that a truncation is noticed. Which file to read, and when to move on, is `tailer.rs`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::types::{Checkpoint, FINGERPRINT_BYTES, FileId, Line, fingerprint, fingerprint_len};

/// Most bytes read by one `read_at`.
const CHUNK: usize = 64 * 1024;

/// `pread` that retries when interrupted.
pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The first `n` bytes of `file`, fewer if it is shorter.
pub(super) fn first_bytes(file: &File, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; n];
    let mut got = 0;
    while got < n {
        match read_at(file, &mut buf[got..], got as u64)? {
            0 => break,
            k => got += k,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// An open file being read.
#[derive(Debug)]
pub(super) struct Cursor {
    pub file: File,
    pub id: FileId,
    /// Just after the last byte handed out.
    pub offset: u64,
    /// How far the file has been read; `partial` holds `[offset, scanned)`, capped.
    scanned: u64,
    /// The unterminated line at `offset`: at most `max_line` bytes of it.
    partial: Vec<u8>,
    /// The unterminated line is longer than `max_line`; its tail is being skipped.
    over: bool,
    /// The file's first bytes (up to [`FINGERPRINT_BYTES`]) as last seen.
    prefix: Vec<u8>,
    /// Lines were handed out from this file in the current poll.
    pub emitted: bool,
}

impl Cursor {
    /// Start reading `file` at `offset`.
    pub fn new(file: File, id: FileId, offset: u64) -> io::Result<Cursor> {
        let prefix = first_bytes(&file, FINGERPRINT_BYTES)?;
        Ok(Cursor {
            file,
            id,
            offset,
            scanned: offset,
            partial: Vec::new(),
            over: false,
            prefix,
            emitted: false,
        })
    }

    /// Read the file again from 0 (it was truncated and no copy of its old content was found).
    pub fn restart(&mut self) -> io::Result<()> {
        self.offset = 0;
        self.scanned = 0;
        self.partial = Vec::new();
        self.over = false;
        self.prefix = first_bytes(&self.file, FINGERPRINT_BYTES)?;
        Ok(())
    }

    /// The file's first bytes as last seen, to look for a copy of it.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Whether the file was truncated since it was last looked at: it is shorter than what was
    /// read, or its first bytes are not the ones seen before (a truncation followed at once by
    /// a write at least as long). The latter can only be seen once some bytes were.
    pub fn truncated(&mut self) -> io::Result<bool> {
        let size = self.file.metadata()?.len();
        if size < self.scanned {
            return Ok(true);
        }
        let now = first_bytes(&self.file, FINGERPRINT_BYTES)?;
        if !now.starts_with(&self.prefix) {
            return Ok(true);
        }
        self.prefix = now;
        Ok(false)
    }

    /// Whether the file was deleted (no name links to it any more).
    pub fn deleted(&self) -> io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        Ok(self.file.metadata()?.nlink() == 0)
    }

    /// The checkpoint just after the last byte handed out.
    pub fn checkpoint(&mut self) -> io::Result<Checkpoint> {
        let n = fingerprint_len(self.offset);
        if self.prefix.len() < n {
            self.prefix = first_bytes(&self.file, FINGERPRINT_BYTES)?;
        }
        let covered = &self.prefix[..n.min(self.prefix.len())];
        Ok(Checkpoint {
            dev: self.id.dev,
            ino: self.id.ino,
            offset: self.offset,
            fingerprint: fingerprint(covered),
        })
    }

    /// Read on, taking at most `budget` bytes from the file, and push the complete lines. When
    /// `finished` (the writer has moved to another file), the unterminated tail at the end is
    /// handed out as a last line. Returns whether the end of the file was reached.
    pub fn read(
        &mut self,
        lines: &mut Vec<Line>,
        budget: &mut usize,
        max_line: usize,
        finished: bool,
    ) -> io::Result<bool> {
        let mut buf = Vec::new();
        loop {
            if *budget == 0 {
                return Ok(false);
            }
            buf.resize(CHUNK.min(*budget), 0);
            let n = read_at(&self.file, &mut buf, self.scanned)?;
            if n == 0 {
                if finished && self.scanned > self.offset {
                    let end = self.scanned;
                    self.emit(lines, end);
                }
                return Ok(true);
            }
            *budget -= n;
            let base = self.scanned;
            let chunk = &buf[..n];
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', chunk) {
                self.absorb(&chunk[start..nl], max_line);
                self.emit(lines, base + nl as u64 + 1);
                start = nl + 1;
            }
            self.absorb(&chunk[start..], max_line);
            self.scanned = base + n as u64;
        }
    }

    fn absorb(&mut self, piece: &[u8], max_line: usize) {
        if self.over {
            return;
        }
        let room = max_line.saturating_sub(self.partial.len());
        if piece.len() > room {
            self.partial.extend_from_slice(&piece[..room]);
            self.over = true;
        } else {
            self.partial.extend_from_slice(piece);
        }
    }

    /// How many bytes of an unterminated line are held in memory.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.partial.len()
    }

    /// Hand out the line at `offset`, which ends just before `next`.
    fn emit(&mut self, lines: &mut Vec<Line>, next: u64) {
        // The identity needs the first line whole: read the head again if the prefix was
        // taken before it was complete.
        if self.prefix.len() < FINGERPRINT_BYTES
            && !self.prefix.contains(&b'\n')
            && let Ok(head) = first_bytes(&self.file, FINGERPRINT_BYTES)
        {
            self.prefix = head;
        }
        lines.push(Line {
            file: self.id,
            offset: self.offset,
            bytes: std::mem::take(&mut self.partial),
            truncated: std::mem::replace(&mut self.over, false),
            identity: crate::file_identity(&self.prefix),
        });
        self.offset = next;
        self.scanned = self.scanned.max(next);
        self.emitted = true;
    }
}
