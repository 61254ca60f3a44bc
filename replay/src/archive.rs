//! Archived logs for `nmt replay logs FILE...`: plain, rotated (`x.1`, `x-20260102`) and
//! gzip-compressed (detected by its magic bytes, not by name) files, read as streams and
//! merged into one sequence of lines in time order.
//!
//! - **Identity.** Each file is known by [`file_identity`] of its (decompressed) first bytes:
//!   the fingerprint of its first line, `\n` included, cut at [`FINGERPRINT_BYTES`]. A
//!   rotated file and its `.gz` have the same identity, and so does the live file it was:
//!   once its first line is complete, an appending writer never changes those bytes. With the
//!   byte offset of each line in the decompressed content, that is the event's source, so
//!   replaying twice, or replaying what live ingest already read, adds nothing.
//! - **Order.** A k-way merge on each line's time, holding one pending line per file. Lines of
//!   one file always keep their order; a line without a stamp (or one the parsers do not
//!   read) goes with the line before it. Equal times go oldest rotation first, then in the
//!   order the files were given.
//! - **Years.** RFC 3164 stamps have none. With [`YearRule::Infer`] a file's last such line
//!   is placed no later than (a day after) the file's modification time, and the years walk
//!   back from there: while reading forward, a stamp more than a day earlier than the one
//!   before it means a New Year passed. A rotated file's end is also bounded by the first
//!   line of the next newer file of its rotation set among those given, so that siblings
//!   come out in rotation order even when their modification times are equal (a copy).
//!   Rotation sets are told by name (`x`, `x.1`, `x.2.gz`, `x-20260102`): files given from
//!   one directory as `a.1` and `a.2` are taken for rotations of `a`. [`YearRule::Fixed`] names the year of the first
//!   such line of the oldest file of each rotation set instead; New Years are counted from
//!   there, through the set's files in rotation order.
//! - **Cost.** Each file is read twice as a stream (a first pass counts New Years and finds
//!   first and last stamps), never held in memory; [`Progress`] counts both passes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use flate2::read::MultiGzDecoder;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use nmt_parsers::{Stamp, parse_journal_json, parse_line};

use crate::records::Converter;
use crate::tail::{DEFAULT_MAX_LINE, FINGERPRINT_BYTES, fingerprint};

/// The first two bytes of a gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Read buffer size, for the file and for the decompressed stream.
const READ_BUF: usize = 64 * 1024;
/// How many bytes read between two calls of the progress callback.
const PROGRESS_STEP: u64 = 1 << 20;
/// Name suffixes of compressed files, left out when telling a file's rotation set.
const COMPRESSED: &[&[u8]] = &[
    b".gz", b".bz2", b".xz", b".zst", b".lz4", b".lzma", b".Z", b".z",
];
/// Longest all-digit suffix that counts as a rotation number (`log.3`); longer ones are
/// dates or epoch seconds and sort as text.
const MAX_NUMBER_DIGITS: usize = 5;
/// Longest rotation suffix made of digits, `-` and `_` (`20260102`, `2026-01-02-1767312000`).
const MAX_SUFFIX: usize = 24;
/// How far a stamp may go back in one file before it counts as a New Year: out-of-order
/// lines a few seconds apart across a month's end are not one.
const BACKWARDS_SLACK_SECONDS: i64 = 24 * 3600;

/// The identity of a log file, from its first bytes (decompressed): [`fingerprint`] of its
/// first line including the `\n`, cut at [`FINGERPRINT_BYTES`] bytes; of the whole content
/// when it has no `\n` within those bytes and is shorter.
///
/// `head` is any prefix of the content that is the whole content, or holds the first `\n`,
/// or is at least [`FINGERPRINT_BYTES`] long: the result is the same for all of them. So the
/// live reader can compute it from the first line it hands out (`line.bytes` + `\n`, at
/// offset 0) or from the file's first [`FINGERPRINT_BYTES`] bytes, and it never changes
/// once the first line is complete. It is the fingerprint of the tailer's
/// [`Checkpoint`](crate::Checkpoint) right after the first line when that line is shorter
/// than [`FINGERPRINT_BYTES`] (the checkpoint's fingerprint covers `min(offset, 256)` bytes,
/// so it moves as the file grows and is not an identity by itself).
pub fn file_identity(head: &[u8]) -> u64 {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    let end = memchr::memchr(b'\n', head).map_or(head.len(), |i| i + 1);
    fingerprint(&head[..end])
}

/// `e` with the path in its message, of the same kind.
fn annotate(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// One archived log file, opened: plain or gzip (by its magic bytes, whatever its name).
#[derive(Debug)]
pub struct Archive {
    path: PathBuf,
    file: File,
    gzip: bool,
    len: u64,
    modified: Option<Timestamp>,
    identity: u64,
}

impl Archive {
    /// Open `path`, tell gzip from plain, and read its first line for its identity. Errors
    /// name the path (a missing file, a directory, a gzip header cut short).
    pub fn open(path: &Path) -> io::Result<Archive> {
        let at = |e| annotate(path, e);
        let file = File::open(path).map_err(at)?;
        let meta = file.metadata().map_err(at)?;
        if !meta.is_file() {
            return Err(at(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mut magic = [0; 2];
        let mut got = 0;
        while got < magic.len() {
            match file.read_at(&mut magic[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(at(e)),
            }
        }
        let mut archive = Archive {
            path: path.to_path_buf(),
            file,
            gzip: got == 2 && magic == GZIP_MAGIC,
            len: meta.len(),
            modified: meta.modified().ok().and_then(|t| t.try_into().ok()),
            identity: 0,
        };
        let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
        archive
            .reader(None)?
            .take(FINGERPRINT_BYTES as u64)
            .read_until(b'\n', &mut head)
            .map_err(at)?;
        archive.identity = file_identity(&head);
        Ok(archive)
    }

    /// The file's identity: [`file_identity`] of its decompressed content. The same for a
    /// rotated file, its `.gz`, and the live file it was.
    pub fn identity(&self) -> u64 {
        self.identity
    }

    /// The size of the file on disk (compressed when gzip), for progress.
    pub fn len_hint(&self) -> Option<u64> {
        Some(self.len)
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Its modification time, the reference for inferring RFC 3164 years.
    pub fn modified(&self) -> Option<Timestamp> {
        self.modified
    }

    /// A fresh stream of the decompressed content from its start, counting the bytes read
    /// from disk into `counter`.
    fn reader(&self, counter: Option<Arc<AtomicU64>>) -> io::Result<Box<dyn BufRead + Send>> {
        let at = At {
            file: self.file.try_clone().map_err(|e| annotate(&self.path, e))?,
            pos: 0,
            counter,
        };
        Ok(if self.gzip {
            Box::new(BufReader::with_capacity(
                READ_BUF,
                MultiGzDecoder::new(BufReader::with_capacity(READ_BUF, at)),
            ))
        } else {
            Box::new(BufReader::with_capacity(READ_BUF, at))
        })
    }

    /// Its rotation set (directory and base name, compression suffix left out) and its age
    /// within it.
    fn rotation(&self) -> (PathBuf, Rank) {
        let name = self.path.file_name().map(OsStrExt::as_bytes).unwrap_or(b"");
        let name = COMPRESSED
            .iter()
            .find_map(|ext| name.strip_suffix(*ext).filter(|n| !n.is_empty()))
            .unwrap_or(name);
        let (base, rank) = split_rotation(name);
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        (dir.join(std::ffi::OsStr::from_bytes(base)), rank)
    }
}

/// Reads a file from its start by position (`pread`), independently of other readers of it.
struct At {
    file: File,
    pos: u64,
    counter: Option<Arc<AtomicU64>>,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        if let Some(c) = &self.counter {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// The age of a file within its rotation set, oldest first: dated suffixes in ascending
/// order, then numbered ones from the highest number down (`.2` before `.1` before `.0`),
/// then the file without a suffix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Named(Vec<u8>),
    Numbered(Reverse<u64>),
    Current,
}

/// `name` (without compression suffix) as base name and rotation rank: the suffix after
/// the first `.` or `-` from which on the name is only digits, `-` and `_`, starting with a
/// digit (`dhcpd.log.1`, `syslog-20260102`, `syslog-2026-01-02`).
fn split_rotation(name: &[u8]) -> (&[u8], Rank) {
    for (i, &c) in name.iter().enumerate().skip(1) {
        if c != b'.' && c != b'-' {
            continue;
        }
        let suffix = &name[i + 1..];
        let rotation = suffix.len() <= MAX_SUFFIX
            && suffix.first().is_some_and(u8::is_ascii_digit)
            && suffix
                .iter()
                .all(|b| b.is_ascii_digit() || *b == b'-' || *b == b'_');
        if !rotation {
            continue;
        }
        let number = (suffix.len() <= MAX_NUMBER_DIGITS)
            .then(|| std::str::from_utf8(suffix).ok()?.parse::<u64>().ok())
            .flatten();
        let rank = match number {
            Some(n) => Rank::Numbered(Reverse(n)),
            None => Rank::Named(suffix.to_vec()),
        };
        return (&name[..i], rank);
    }
    (name, Rank::Current)
}

/// How to give RFC 3164 stamps (no year) their year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YearRule {
    /// From each file's modification time, counting back over New Years (see the module).
    Infer,
    /// The year of the first RFC 3164 line of the oldest file of each rotation set (of each
    /// file given, when it has no rotated siblings among them); New Years seen from there on
    /// advance it. `nmt replay logs --year`.
    Fixed(i16),
}

/// One line of an archive, as [`Merged`] hands it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveLine {
    /// Its file's [`Archive::identity`].
    pub identity: u64,
    /// Where its first byte is in the file's decompressed content (for a plain file, in the
    /// file): the same offset live ingest records for the same line.
    pub offset: u64,
    /// The line without its `\n`, as bytes (any encoding); only its first `max_line` bytes
    /// when `truncated`.
    pub bytes: Vec<u8>,
    /// The line was longer than [`Merged::max_line`], and its tail was skipped.
    pub truncated: bool,
    /// The time its stamp names, the year inferred or fixed. `None` when the parsers do not
    /// read the line (not a DHCP or TFTP server's) or it has no stamp. To convert it, pass
    /// `at` as the reference to [`Converter::convert`]: the observation then gets this time.
    pub at: Option<Timestamp>,
    /// A DHCP or TFTP server's line with no time of its own (`dhcpd -d`, `docker logs`,
    /// `journalctl -o cat`): `at` is that of the line before it in its file, or the file's
    /// modification time when none came before (no line of a file is newer than the file).
    pub untimed: bool,
    /// Which of the archives given to [`merge`] it comes from.
    pub path_index: usize,
}

/// How far a [`Merged`] has read: bytes read from disk (compressed ones for gzip) over the
/// total it will read. Every file is read twice, so `total` is twice their sizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes read so far.
    pub read: u64,
    /// Bytes to read in all.
    pub total: u64,
}

/// What the first pass found in one file.
#[derive(Default)]
struct Survey {
    /// The first stamp.
    first: Option<Stamp>,
    /// The first and last RFC 3164 stamps.
    first_no_year: Option<Stamp>,
    last_no_year: Option<Stamp>,
    /// New Years between its RFC 3164 stamps.
    new_years: i32,
}

/// A file being merged.
struct Source {
    archive: Archive,
    lines: Option<LineReader>,
    /// The year of its next RFC 3164 stamp.
    year: i32,
    /// Its last RFC 3164 stamp.
    prev: Option<Stamp>,
    /// The merge key of its last line (the time of its first stamp before any).
    key: Timestamp,
    /// Its place among equal times: rotation set, then age.
    order: usize,
    pending: Option<ArchiveLine>,
}

/// Lines of several archives merged in time order; made by [`merge`]. An
/// `Iterator<Item = io::Result<ArchiveLine>>`. The first pass over all files happens at
/// [`Merged::prepare`] (or the first `next`); after an error (it names the file: a gzip
/// stream cut short, a read failing) the iterator ends.
pub struct Merged {
    sources: Vec<Source>,
    years: YearRule,
    tz: TimeZone,
    converter: Converter,
    max_line: usize,
    prepared: bool,
    done: bool,
    /// The pending lines: their merge key, their file's place among equal keys, the file.
    heap: BinaryHeap<Reverse<(Timestamp, usize, usize)>>,
    /// An error met while reading ahead, handed out after the line before it.
    error: Option<io::Error>,
    read: Arc<AtomicU64>,
    total: u64,
    on_progress: Option<Box<dyn FnMut(Progress) + Send>>,
    next_report: u64,
}

impl std::fmt::Debug for Merged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merged")
            .field("files", &self.sources.len())
            .field("years", &self.years)
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

/// Merge the lines of `archives` in time order (see the module for the rules). Nothing is
/// read until [`Merged::prepare`] or the first `next`; local times (RFC 3164, and full stamps
/// without an offset) are read in the system's time zone unless [`Merged::time_zone`] says
/// otherwise.
pub fn merge(archives: Vec<Archive>, years: YearRule) -> Merged {
    let total = archives.iter().map(|a| 2 * a.len).sum();
    let tz = TimeZone::system();
    Merged {
        sources: archives
            .into_iter()
            .map(|archive| Source {
                archive,
                lines: None,
                year: 0,
                prev: None,
                key: Timestamp::MIN,
                order: 0,
                pending: None,
            })
            .collect(),
        years,
        converter: Converter::new(tz.clone()),
        tz,
        max_line: DEFAULT_MAX_LINE,
        prepared: false,
        done: false,
        heap: BinaryHeap::new(),
        error: None,
        read: Arc::new(AtomicU64::new(0)),
        total,
        on_progress: None,
        next_report: PROGRESS_STEP,
    }
}

impl Merged {
    /// Read local times in `tz` (as the [`Converter`] of live ingest does).
    pub fn time_zone(mut self, tz: TimeZone) -> Merged {
        self.converter = Converter::new(tz.clone());
        self.tz = tz;
        self
    }

    /// Cap lines at `bytes` (at least 1; [`DEFAULT_MAX_LINE`] unless set), like the tailer.
    pub fn max_line(mut self, bytes: usize) -> Merged {
        self.max_line = bytes.max(1);
        self
    }

    /// Call `f` with the progress about every MiB read, in both passes.
    pub fn on_progress(mut self, f: impl FnMut(Progress) + Send + 'static) -> Merged {
        self.on_progress = Some(Box::new(f));
        self
    }

    /// How far reading has got.
    pub fn progress(&self) -> Progress {
        Progress {
            read: self.read.load(Ordering::Relaxed),
            total: self.total,
        }
    }

    /// The archives, in the order given (`ArchiveLine::path_index` indexes this).
    pub fn archives(&self) -> impl Iterator<Item = &Archive> {
        self.sources.iter().map(|s| &s.archive)
    }

    fn report(&mut self) {
        report(
            &self.read,
            self.total,
            &mut self.next_report,
            &mut self.on_progress,
        );
    }

    /// The first pass: read every file once to place its years, then open them all for the
    /// merge. Errors name the file; nothing has been handed out then.
    pub fn prepare(&mut self) -> io::Result<()> {
        if self.prepared {
            return Ok(());
        }
        self.prepared = true;
        let result = self.prepare_inner();
        if result.is_err() {
            self.done = true;
        }
        result
    }

    fn prepare_inner(&mut self) -> io::Result<()> {
        let surveys = self.survey_all()?;
        // Rotation sets, each oldest first; sets in the order of their first file given.
        let mut sets: BTreeMap<PathBuf, Vec<(Rank, usize)>> = BTreeMap::new();
        for (i, s) in self.sources.iter().enumerate() {
            let (base, rank) = s.archive.rotation();
            sets.entry(base).or_default().push((rank, i));
        }
        let mut sets: Vec<Vec<usize>> = sets
            .into_values()
            .map(|mut v| {
                v.sort();
                v.into_iter().map(|(_, i)| i).collect()
            })
            .collect();
        sets.sort_by_key(|set| set.iter().min().copied());
        let mut order = 0;
        let mut first_times = vec![None; self.sources.len()];
        for set in &sets {
            for &i in set {
                self.sources[i].order = order;
                order += 1;
            }
            let starts = match self.years {
                YearRule::Infer => self.infer_years(set, &surveys),
                YearRule::Fixed(year) => fixed_years(set, &surveys, year.into()),
            };
            for (&i, start) in set.iter().zip(starts) {
                self.sources[i].year = start;
                first_times[i] = self.first_time(&surveys[i], start);
            }
        }
        for (i, first) in first_times.into_iter().enumerate() {
            let s = &mut self.sources[i];
            s.key = first.unwrap_or(Timestamp::MIN);
            s.lines = Some(LineReader::new(s.archive.reader(Some(self.read.clone()))?));
            self.advance(i)?;
        }
        Ok(())
    }

    /// The first pass over every file, two at a time (decompressing is most of it); the
    /// error of the first file given that failed.
    fn survey_all(&mut self) -> io::Result<Vec<Survey>> {
        let n = self.sources.len();
        let cap = self.max_line.min(nmt_parsers::MAX_LINE_LEN + 1);
        let next = AtomicUsize::new(0);
        let archives: Vec<&Archive> = self.sources.iter().map(|s| &s.archive).collect();
        let read = &self.read;
        // Files are taken in order, as each worker becomes free.
        let work = |tick: &mut dyn FnMut()| {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return done;
                }
                done.push((i, survey(archives[i], read, cap, tick)));
            }
        };
        let (total, next_report, on_progress) =
            (self.total, &mut self.next_report, &mut self.on_progress);
        let mut results = std::thread::scope(|s| {
            let helper = s.spawn(|| work(&mut || {}));
            // This thread says how far both have read.
            let mut done = work(&mut || report(read, total, next_report, on_progress));
            match helper.join() {
                Ok(theirs) => done.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
            done
        });
        results.sort_unstable_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }
    /// The year of the first RFC 3164 line of each file of `set` (oldest first), from
    /// modification times, newest file first.
    fn infer_years(&self, set: &[usize], surveys: &[Survey]) -> Vec<i32> {
        let mut starts = vec![0; set.len()];
        // The first time of the nearest newer file that has a stamp.
        let mut newer: Option<Timestamp> = None;
        for (k, &i) in set.iter().enumerate().rev() {
            let modified = self.sources[i].archive.modified;
            let mut reference = modified.unwrap_or_else(Timestamp::now);
            // A rotated file ended before the next one began, whatever its modification
            // time says (equal to the others' after a copy).
            if let Some(first) = newer {
                reference = reference.min(first);
            }
            let survey = &surveys[i];
            let start = match &survey.last_no_year {
                Some(last) => {
                    let at = self.converter.time(Some(last), reference);
                    i32::from(at.to_zoned(self.tz.clone()).year()) - survey.new_years
                }
                None => i32::from(reference.to_zoned(self.tz.clone()).year()),
            };
            starts[k] = start;
            if let Some(first) = self.first_time(survey, start) {
                newer = Some(first);
            }
        }
        starts
    }

    /// The time of the first stamp of a file whose first RFC 3164 line is in `year`.
    fn first_time(&self, survey: &Survey, year: i32) -> Option<Timestamp> {
        self.time_of(survey.first.as_ref()?, year)
    }

    /// The time `stamp` names, RFC 3164 ones in `year`; `None` if there is no such time.
    fn time_of(&self, stamp: &Stamp, year: i32) -> Option<Timestamp> {
        let full = match *stamp {
            Stamp::NoYear {
                month,
                day,
                hour,
                minute,
                second,
                nanos,
            } => Stamp::Full {
                year: i16::try_from(year).ok()?,
                month,
                day,
                hour,
                minute,
                second,
                nanos,
                offset_seconds: None,
            },
            other => other,
        };
        // `Converter::time` falls back to the reference; no stamp names `Timestamp::MIN`.
        let t = self.converter.time(Some(&full), Timestamp::MIN);
        (t != Timestamp::MIN).then_some(t)
    }

    /// Read file `i`'s next line into its pending slot and the heap.
    fn advance(&mut self, i: usize) -> io::Result<()> {
        let Some(lines) = self.sources[i].lines.as_mut() else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        let Some((offset, truncated)) = lines
            .next_into(&mut bytes, self.max_line)
            .map_err(|e| annotate(&self.sources[i].archive.path, e))?
        else {
            self.sources[i].lines = None;
            return Ok(());
        };
        let (stamp, server_line) = if truncated {
            (None, false)
        } else {
            stamp_and_kind(&bytes)
        };
        let mut at = None;
        if let Some(stamp) = stamp {
            let src = &mut self.sources[i];
            if matches!(stamp, Stamp::NoYear { .. }) {
                if let Some(prev) = &src.prev
                    && new_year_between(prev, &stamp)
                {
                    src.year += 1;
                }
                src.prev = Some(stamp);
            }
            let year = src.year;
            at = self.time_of(&stamp, year);
        }
        let src = &mut self.sources[i];
        if let Some(at) = at {
            src.key = at;
        }
        let untimed = at.is_none() && server_line;
        if untimed {
            at = if src.key != Timestamp::MIN {
                Some(src.key)
            } else {
                src.archive.modified
            };
        }
        src.pending = Some(ArchiveLine {
            identity: src.archive.identity,
            offset,
            bytes,
            truncated,
            at,
            untimed,
            path_index: i,
        });
        self.heap.push(Reverse((src.key, src.order, i)));
        self.report();
        Ok(())
    }
}

impl Iterator for Merged {
    type Item = io::Result<ArchiveLine>;

    fn next(&mut self) -> Option<io::Result<ArchiveLine>> {
        if self.done {
            return None;
        }
        if let Err(e) = self.prepare() {
            return Some(Err(e));
        }
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        let Some(Reverse((_, _, i))) = self.heap.pop() else {
            self.done = true;
            // The last word is always the whole: 100% once everything was read.
            let p = self.progress();
            if let Some(f) = self.on_progress.as_mut() {
                f(Progress {
                    read: p.total.max(p.read),
                    total: p.total.max(p.read),
                });
            }
            return None;
        };
        let line = self.sources[i].pending.take();
        if let Err(e) = self.advance(i) {
            self.error = Some(e);
        }
        line.map(Ok)
    }
}

/// The years of the first RFC 3164 line of each file of `set` (oldest first) when the
/// oldest starts in `year`: New Years within files and between them advance it.
fn fixed_years(set: &[usize], surveys: &[Survey], year: i32) -> Vec<i32> {
    let mut year = year;
    let mut last: Option<&Stamp> = None;
    set.iter()
        .map(|&i| {
            let s = &surveys[i];
            if let (Some(prev), Some(first)) = (last, &s.first_no_year)
                && new_year_between(prev, first)
            {
                year += 1;
            }
            let start = year;
            year += s.new_years;
            if s.last_no_year.is_some() {
                last = s.last_no_year.as_ref();
            }
            start
        })
        .collect()
}

/// Call `on_progress` with the progress when `read` passed `next_report` (about every MiB).
fn report(
    read: &AtomicU64,
    total: u64,
    next_report: &mut u64,
    on_progress: &mut Option<Box<dyn FnMut(Progress) + Send>>,
) {
    let p = Progress {
        read: read.load(Ordering::Relaxed),
        total,
    };
    if p.read >= *next_report {
        *next_report = p.read + PROGRESS_STEP;
        if let Some(f) = on_progress.as_mut() {
            f(p);
        }
    }
}

/// The first pass over `archive`: its first stamps and the New Years between its undated
/// ones, counting what it reads into `read` and calling `tick` after each line.
fn survey(
    archive: &Archive,
    read: &Arc<AtomicU64>,
    cap: usize,
    tick: &mut dyn FnMut(),
) -> io::Result<Survey> {
    let path = &archive.path;
    let mut lines = LineReader::new(archive.reader(Some(read.clone()))?);
    // The same lines get a stamp as in the second pass: those not cut at `max_line` that the
    // parsers read (none longer than `MAX_LINE_LEN`).
    let mut s = Survey::default();
    let mut bytes = Vec::new();
    while let Some((_, truncated)) = lines
        .next_into(&mut bytes, cap)
        .map_err(|e| annotate(path, e))?
    {
        if let Some(stamp) = stamp_of(&bytes).filter(|_| !truncated) {
            s.first.get_or_insert(stamp);
            if matches!(stamp, Stamp::NoYear { .. }) {
                if let Some(prev) = &s.last_no_year
                    && new_year_between(prev, &stamp)
                {
                    s.new_years += 1;
                }
                s.first_no_year.get_or_insert(stamp);
                s.last_no_year = Some(stamp);
            }
        }
        tick();
    }
    Ok(s)
}

/// The stamp of a line the parsers read: a syslog line's, or a `journalctl -o json`
/// record's time.
fn stamp_of(bytes: &[u8]) -> Option<Stamp> {
    stamp_and_kind(bytes).0
}

/// A line's stamp, and whether it is a server line the parsers read.
fn stamp_and_kind(bytes: &[u8]) -> (Option<Stamp>, bool) {
    match parse_line(bytes) {
        Ok(line) => (line.stamp, true),
        Err(_) if bytes.first() == Some(&b'{') => match parse_journal_json(bytes) {
            Ok(e) => (e.realtime_micros.map(Stamp::UnixMicros), true),
            Err(_) => (None, false),
        },
        Err(_) => (None, false),
    }
}

/// Seconds into a (non-leap) year of an RFC 3164 stamp; 29 February counts as 1 March.
fn second_of_year(stamp: &Stamp) -> Option<i64> {
    const DAYS_BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let Stamp::NoYear {
        month,
        day,
        hour,
        minute,
        second,
        ..
    } = *stamp
    else {
        return None;
    };
    let before = *DAYS_BEFORE.get(usize::from(month).checked_sub(1)?)?;
    let days = before + i64::from(day) - 1;
    Some(days * 86400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))
}

/// Whether a New Year passed between two RFC 3164 stamps read in this order: the later one
/// goes back by more than a day.
fn new_year_between(prev: &Stamp, next: &Stamp) -> bool {
    match (second_of_year(prev), second_of_year(next)) {
        (Some(p), Some(n)) => n + BACKWARDS_SLACK_SECONDS < p,
        _ => false,
    }
}

/// Lines of a stream with their offsets, memory bounded by the line cap.
struct LineReader {
    inner: Box<dyn BufRead + Send>,
    offset: u64,
}

impl LineReader {
    fn new(inner: Box<dyn BufRead + Send>) -> LineReader {
        LineReader { inner, offset: 0 }
    }

    /// The next line into `bytes` (cleared; without its `\n`; at most `max_line` bytes of
    /// it), with its offset and whether it was cut. The last line may lack its `\n`.
    fn next_into(
        &mut self,
        bytes: &mut Vec<u8>,
        max_line: usize,
    ) -> io::Result<Option<(u64, bool)>> {
        bytes.clear();
        let start = self.offset;
        let mut truncated = false;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok((self.offset > start).then_some((start, truncated)));
            }
            let (piece, used, end) = match memchr::memchr(b'\n', buf) {
                Some(nl) => (&buf[..nl], nl + 1, true),
                None => (buf, buf.len(), false),
            };
            let room = max_line.saturating_sub(bytes.len());
            if piece.len() > room {
                truncated = true;
            }
            bytes.extend_from_slice(&piece[..piece.len().min(room)]);
            self.inner.consume(used);
            self.offset += used as u64;
            if end {
                return Ok(Some((start, truncated)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::SystemTime;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use nmt_projections::Observation;

    use super::*;
    use crate::Tailer;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn gzip(content: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(content).unwrap();
        e.finish().unwrap()
    }

    /// Write `content` (gzipped when asked) at `dir/name`, modified at `mtime`.
    fn put(dir: &Path, name: &str, content: &[u8], gz: bool, mtime: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, if gz { gzip(content) } else { content.to_vec() }).unwrap();
        let f = File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::from(ts(mtime))).unwrap();
        path
    }

    fn isc(stamp: &str, host: &str, n: u8) -> String {
        format!("{stamp} {host} dhcpd[812]: DHCPDISCOVER from 52:54:00:12:34:{n:02x} via eth0\n")
    }

    fn open_all(paths: &[&Path]) -> Vec<Archive> {
        paths.iter().map(|p| Archive::open(p).unwrap()).collect()
    }

    fn replay(paths: &[&Path], years: YearRule) -> Vec<ArchiveLine> {
        merge(open_all(paths), years)
            .time_zone(TimeZone::UTC)
            .collect::<io::Result<_>>()
            .unwrap()
    }

    fn text(l: &ArchiveLine) -> String {
        String::from_utf8_lossy(&l.bytes).into_owned()
    }

    fn times(lines: &[ArchiveLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.at.map_or("-".into(), |t| t.to_string()))
            .collect()
    }

    #[test]
    fn rotated_plain_and_gzip_files_merge_with_another_hosts_log_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let oldest = [
            isc("Nov 20 01:00:00", "boot1", 1),
            isc("Nov 20 01:20:00", "boot1", 2),
        ]
        .concat();
        let older = [
            isc("Nov 20 02:00:00", "boot1", 3),
            "Nov 20 02:00:30 boot1 kernel: eth0: link up\n".to_string(),
            isc("Nov 20 02:20:00", "boot1", 4),
        ]
        .concat();
        // The live file's last line is not terminated yet.
        let current = [
            isc("Nov 20 03:00:00", "boot1", 5),
            isc("Nov 20 03:20:00", "boot1", 6).trim_end().to_string(),
        ]
        .concat();
        let other: String = ["01:10:00", "02:10:00", "03:10:00"]
            .iter()
            .enumerate()
            .map(|(n, t)| {
                format!(
                    "2026-11-20T{t}.250000+00:00 boot2 dnsmasq-dhcp[77]: DHCPDISCOVER(br0) 52:54:00:ab:cd:{n:02x}\n"
                )
            })
            .collect();
        let p_oldest = put(
            d,
            "dhcpd.log.2.gz",
            oldest.as_bytes(),
            true,
            "2026-11-20T01:30:00Z",
        );
        let p_older = put(
            d,
            "dhcpd.log.1",
            older.as_bytes(),
            false,
            "2026-11-20T02:30:00Z",
        );
        let p_current = put(
            d,
            "dhcpd.log",
            current.as_bytes(),
            false,
            "2026-11-20T03:30:00Z",
        );
        let p_other = put(
            d,
            "boot2.log",
            other.as_bytes(),
            false,
            "2026-11-20T03:30:00Z",
        );
        // Given in no particular order.
        let paths = [&*p_current, &*p_other, &*p_oldest, &*p_older];
        let contents = [&current, &other, &oldest, &older];
        let archives = open_all(&paths);
        assert!(archives[2].is_gzip() && !archives[3].is_gzip());
        let identities: Vec<u64> = archives.iter().map(Archive::identity).collect();
        let total: u64 = archives.iter().map(|a| 2 * a.len_hint().unwrap()).sum();
        let mut merged = merge(archives, YearRule::Infer).time_zone(TimeZone::UTC);
        let lines: Vec<ArchiveLine> = merged.by_ref().collect::<io::Result<_>>().unwrap();
        assert_eq!(
            times(&lines),
            [
                "2026-11-20T01:00:00Z",
                "2026-11-20T01:10:00.25Z",
                "2026-11-20T01:20:00Z",
                "2026-11-20T02:00:00Z",
                "-",
                "2026-11-20T02:10:00.25Z",
                "2026-11-20T02:20:00Z",
                "2026-11-20T03:00:00Z",
                "2026-11-20T03:10:00.25Z",
                "2026-11-20T03:20:00Z",
            ]
        );
        assert_eq!(
            text(&lines[4]),
            "Nov 20 02:00:30 boot1 kernel: eth0: link up"
        );
        assert_eq!(
            lines.iter().map(|l| l.path_index).collect::<Vec<_>>(),
            [2, 1, 2, 3, 3, 1, 3, 0, 1, 0]
        );
        for l in &lines {
            // The offset points at the line in the (decompressed) content.
            let content = contents[l.path_index].as_bytes();
            let at = usize::try_from(l.offset).unwrap();
            assert_eq!(&content[at..at + l.bytes.len()], &l.bytes[..]);
            assert!(at == 0 || content[at - 1] == b'\n');
            assert_eq!(l.identity, identities[l.path_index]);
            assert!(!l.truncated);
        }
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.path_index == 3)
                .map(|l| l.offset)
                .collect::<Vec<_>>(),
            [0, 79, 79 + 44]
        );
        assert_eq!(isc("Nov 20 02:00:00", "boot1", 3).len(), 79);
        assert_eq!(merged.progress(), Progress { read: total, total });
    }

    #[test]
    fn december_lines_of_a_file_spanning_new_year_get_the_previous_year() {
        let dir = tempfile::tempdir().unwrap();
        let content = [
            isc("Dec 31 23:59:58", "boot1", 1),
            isc("Dec 31 23:59:59", "boot1", 2),
            isc("Jan  1 00:00:01", "boot1", 3),
            isc("Jan  1 00:10:00", "boot1", 4),
        ]
        .concat();
        let expected = [
            "2026-12-31T23:59:58Z",
            "2026-12-31T23:59:59Z",
            "2027-01-01T00:00:01Z",
            "2027-01-01T00:10:00Z",
        ];
        // Modified just after the last line, or days later, or compressed a week later.
        for (name, gz, mtime) in [
            ("a.log", false, "2027-01-01T00:10:00Z"),
            ("b.log", false, "2027-01-03T06:00:00Z"),
            ("c.log.1.gz", true, "2027-01-08T06:25:00Z"),
        ] {
            let p = put(dir.path(), name, content.as_bytes(), gz, mtime);
            assert_eq!(times(&replay(&[&p], YearRule::Infer)), expected, "{name}");
        }
        // A file spanning two New Years.
        let long = [
            isc("Dec 31 10:00:00", "boot1", 1),
            isc("Jun  1 10:00:00", "boot1", 2),
            isc("Jan  1 10:00:00", "boot1", 3),
        ]
        .concat();
        let p = put(
            dir.path(),
            "long.log",
            long.as_bytes(),
            false,
            "2027-02-01T00:00:00Z",
        );
        assert_eq!(
            times(&replay(&[&p], YearRule::Infer)),
            [
                "2025-12-31T10:00:00Z",
                "2026-06-01T10:00:00Z",
                "2027-01-01T10:00:00Z"
            ]
        );
    }

    #[test]
    fn lines_a_little_out_of_order_across_a_months_end_are_not_a_new_year() {
        let dir = tempfile::tempdir().unwrap();
        let content = [
            isc("Feb  1 00:00:00", "boot1", 1),
            isc("Jan 31 23:59:59", "boot1", 2),
            isc("Feb  1 00:00:02", "boot1", 3),
        ]
        .concat();
        let p = put(
            dir.path(),
            "a.log",
            content.as_bytes(),
            false,
            "2027-02-01T00:00:03Z",
        );
        assert_eq!(
            times(&replay(&[&p], YearRule::Infer)),
            [
                "2027-02-01T00:00:00Z",
                "2027-01-31T23:59:59Z",
                "2027-02-01T00:00:02Z"
            ]
        );
    }

    #[test]
    fn rotated_siblings_with_equal_modification_times_come_out_in_rotation_order() {
        // Copied on 31 December 2026 (without keeping times): a year after they were written.
        let dir = tempfile::tempdir().unwrap();
        let copied = "2026-12-31T12:00:00Z";
        let oldest = [
            isc("Dec 29 08:00:00", "boot1", 1),
            isc("Dec 29 09:00:00", "boot1", 2),
        ]
        .concat();
        let older = [
            isc("Dec 30 10:00:00", "boot1", 3),
            isc("Dec 31 23:59:59", "boot1", 4),
        ]
        .concat();
        let current = [
            isc("Dec 31 23:59:59", "boot1", 5),
            isc("Jan  1 00:00:00", "boot1", 6),
            isc("Jan  2 08:00:00", "boot1", 7),
        ]
        .concat();
        let p0 = put(dir.path(), "syslog.2.gz", oldest.as_bytes(), true, copied);
        let p1 = put(dir.path(), "syslog.1", older.as_bytes(), false, copied);
        let p2 = put(dir.path(), "syslog", current.as_bytes(), false, copied);
        let lines = replay(&[&p2, &p1, &p0], YearRule::Infer);
        assert_eq!(
            times(&lines),
            [
                "2025-12-29T08:00:00Z",
                "2025-12-29T09:00:00Z",
                "2025-12-30T10:00:00Z",
                "2025-12-31T23:59:59Z",
                "2025-12-31T23:59:59Z",
                "2026-01-01T00:00:00Z",
                "2026-01-02T08:00:00Z",
            ]
        );
        // The equal times go oldest file first, whatever order the files were given in.
        assert_eq!(
            lines.iter().map(|l| l.path_index).collect::<Vec<_>>(),
            [2, 2, 1, 1, 0, 0, 0]
        );
    }

    #[test]
    fn a_fixed_year_overrides_inference_and_new_years_advance_it() {
        let dir = tempfile::tempdir().unwrap();
        let older = [
            isc("Dec 30 10:00:00", "boot1", 1),
            isc("Dec 31 23:59:59", "boot1", 2),
        ]
        .concat();
        let current = [
            isc("Jan  1 00:00:01", "boot1", 3),
            isc("Mar  3 00:00:00", "boot1", 4),
        ]
        .concat();
        let p1 = put(
            dir.path(),
            "dhcpd.log.1",
            older.as_bytes(),
            false,
            "2027-01-01T00:00:00Z",
        );
        let p0 = put(
            dir.path(),
            "dhcpd.log",
            current.as_bytes(),
            false,
            "2027-03-03T00:00:00Z",
        );
        let full =
            "2026-11-20T02:05:11Z boot2 dhcpd[812]: DHCPDISCOVER from 52:54:00:12:34:99 via eth0\n";
        let p2 = put(
            dir.path(),
            "boot2.log",
            full.as_bytes(),
            false,
            "2027-03-03T00:00:00Z",
        );
        assert_eq!(
            times(&replay(&[&p0, &p1], YearRule::Infer)),
            [
                "2026-12-30T10:00:00Z",
                "2026-12-31T23:59:59Z",
                "2027-01-01T00:00:01Z",
                "2027-03-03T00:00:00Z",
            ]
        );
        // Full stamps keep their year.
        assert_eq!(
            times(&replay(&[&p0, &p1, &p2], YearRule::Fixed(2020))),
            [
                "2020-12-30T10:00:00Z",
                "2020-12-31T23:59:59Z",
                "2021-01-01T00:00:01Z",
                "2021-03-03T00:00:00Z",
                "2026-11-20T02:05:11Z",
            ]
        );
        // One file alone: its first line is in the year given.
        assert_eq!(
            times(&replay(&[&p0], YearRule::Fixed(2020))),
            ["2020-01-01T00:00:01Z", "2020-03-03T00:00:00Z"]
        );
    }

    #[test]
    fn the_same_content_plain_or_gzipped_has_the_same_identity_and_other_content_another() {
        let dir = tempfile::tempdir().unwrap();
        let content = [
            isc("Nov 20 01:00:00", "boot1", 1),
            isc("Nov 20 01:20:00", "boot1", 2),
        ]
        .concat();
        let plain = put(
            dir.path(),
            "x.log.1",
            content.as_bytes(),
            false,
            "2026-11-21T00:00:00Z",
        );
        // Named as plain, compressed: told by its magic bytes.
        let gz = put(
            dir.path(),
            "x.log.2",
            content.as_bytes(),
            true,
            "2026-11-21T00:00:00Z",
        );
        let other = put(
            dir.path(),
            "y.log",
            isc("Nov 20 01:00:01", "boot1", 1).as_bytes(),
            false,
            "2026-11-21T00:00:00Z",
        );
        let [a, b, c] = [&plain, &gz, &other].map(|p| Archive::open(p).unwrap());
        assert!(b.is_gzip() && !a.is_gzip());
        assert_eq!(a.identity(), b.identity());
        assert_ne!(a.identity(), c.identity());
        // The first line with its newline; more bytes of the head give the same.
        let first = isc("Nov 20 01:00:00", "boot1", 1);
        assert_eq!(a.identity(), fingerprint(first.as_bytes()));
        assert_eq!(a.identity(), file_identity(content.as_bytes()));
        assert_eq!(a.identity(), file_identity(first.as_bytes()));
        assert_eq!(b.len_hint(), Some(std::fs::metadata(&gz).unwrap().len()));
        let lines = replay(&[&plain, &gz], YearRule::Infer);
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.identity == a.identity()));
    }

    #[test]
    fn the_identity_is_what_the_live_tailer_sees_of_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let content = [
            isc("Nov 20 01:00:00", "boot1", 1),
            isc("Nov 20 01:20:00", "boot1", 2),
            isc("Nov 20 01:40:00", "boot1", 3),
        ]
        .concat();
        let path = put(
            dir.path(),
            "dhcpd.log",
            content.as_bytes(),
            false,
            "2026-11-21T00:00:00Z",
        );
        let identity = Archive::open(&path).unwrap().identity();
        // From the first line the tailer hands out: its bytes and the newline.
        let batch = Tailer::new(&path, None).poll(1 << 20).unwrap();
        let first = &batch.lines[0];
        assert_eq!(first.offset, 0);
        assert_eq!(file_identity(&[&first.bytes[..], b"\n"].concat()), identity);
        // The archive's lines are the tailer's, at the same offsets.
        let lines = replay(&[&path], YearRule::Infer);
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.offset, l.bytes.clone()))
                .collect::<Vec<_>>(),
            batch
                .lines
                .iter()
                .map(|l| (l.offset, l.bytes.clone()))
                .collect::<Vec<_>>()
        );
        // The checkpoint just after the first line has the identity as its fingerprint.
        let mut tailer = Tailer::new(&path, None);
        let batch = tailer.poll(first.bytes.len() + 1).unwrap();
        assert_eq!(batch.lines.len(), 1);
        assert_eq!(batch.checkpoint.unwrap().fingerprint, identity);

        // A first line longer than the fingerprint: its first 256 bytes, as any checkpoint
        // past them has.
        let long = format!("{}{}", "x".repeat(300), "\nmore\n");
        let path = put(
            dir.path(),
            "long.log",
            long.as_bytes(),
            false,
            "2026-11-21T00:00:00Z",
        );
        let identity = Archive::open(&path).unwrap().identity();
        let batch = Tailer::new(&path, None).poll(1 << 20).unwrap();
        assert_eq!(batch.checkpoint.unwrap().fingerprint, identity);
        assert_eq!(identity, fingerprint(&long.as_bytes()[..FINGERPRINT_BYTES]));
    }

    #[test]
    fn a_truncated_gzip_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let content: String = (0..5000u32)
            .map(|n| {
                isc(
                    &format!("Nov 20 {:02}:{:02}:{:02}", n / 3600, n / 60 % 60, n % 60),
                    "boot1",
                    (n % 251) as u8,
                )
            })
            .collect();
        let whole = gzip(content.as_bytes());
        let path = dir.path().join("dhcpd.log.3.gz");
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        let archive = Archive::open(&path).unwrap();
        let mut merged = merge(vec![archive], YearRule::Infer);
        let e = merged.next().unwrap().unwrap_err();
        assert!(e.to_string().contains("dhcpd.log.3.gz"), "{e}");
        assert!(merged.next().is_none());
        // Among several files read two at a time, the first one given that is damaged is
        // named, whichever was read first.
        for damaged in [[1, 4], [4, 5], [0, 5]] {
            let mut archives = Vec::new();
            for k in 0..6 {
                let path = dir.path().join(format!("host{k}.log.gz"));
                let cut = if damaged.contains(&k) {
                    whole.len() / 2
                } else {
                    whole.len()
                };
                std::fs::write(&path, &whole[..cut]).unwrap();
                archives.push(Archive::open(&path).unwrap());
            }
            let e = merge(archives, YearRule::Infer).prepare().unwrap_err();
            let first = format!("host{}.log.gz", damaged[0]);
            assert!(e.to_string().contains(&first), "{damaged:?}: {e}");
        }
        // Cut within the header: at open.
        std::fs::write(&path, &whole[..5]).unwrap();
        let e = Archive::open(&path).unwrap_err();
        assert!(e.to_string().contains("dhcpd.log.3.gz"), "{e}");
        // Not a file at all.
        let e = Archive::open(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains(&*dir.path().to_string_lossy()),
            "{e}"
        );
    }

    #[test]
    fn invalid_utf8_lines_pass_through_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = isc("Nov 20 01:00:00", "boot1", 1).into_bytes();
        content.extend_from_slice(b"\xff\xfe not text \xc3\x28\n");
        content.extend_from_slice(b"Nov 20 01:00:01 boot1 dhcpd[812]: DHCPDISCOVER from 52:54:00:12:34:56 (\xff) via eth0\n");
        let path = put(
            dir.path(),
            "x.log.gz",
            &content,
            true,
            "2026-11-21T00:00:00Z",
        );
        let lines = replay(&[&path], YearRule::Infer);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].bytes, b"\xff\xfe not text \xc3\x28");
        assert_eq!(lines[1].at, None);
        assert_eq!(
            lines[2].bytes.len() + 1 + lines[2].offset as usize,
            content.len()
        );
        assert_eq!(lines[2].at, Some(ts("2026-11-20T01:00:01Z")));
    }

    #[test]
    fn a_line_longer_than_the_cap_is_cut_and_the_next_keeps_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let content = format!(
            "{}\n{}",
            "y".repeat(1000),
            isc("Nov 20 01:00:00", "boot1", 1)
        );
        let path = put(
            dir.path(),
            "x.log",
            content.as_bytes(),
            false,
            "2026-11-21T00:00:00Z",
        );
        let lines: Vec<ArchiveLine> = merge(open_all(&[&path]), YearRule::Infer)
            .time_zone(TimeZone::UTC)
            .max_line(100)
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].truncated && lines[0].bytes.len() == 100);
        assert_eq!((lines[1].offset, lines[1].truncated), (1001, false));
        assert_eq!(lines[1].at, Some(ts("2026-11-20T01:00:00Z")));
    }

    #[test]
    fn converting_a_line_with_its_time_as_reference_keeps_that_time() {
        let dir = tempfile::tempdir().unwrap();
        let tz = TimeZone::fixed(jiff::tz::offset(1));
        let content = [
            isc("Dec 31 23:30:00", "boot1", 1),
            isc("Jan  1 00:30:00", "boot1", 2),
        ]
        .concat();
        let path = put(
            dir.path(),
            "x.log",
            content.as_bytes(),
            false,
            "2027-06-01T00:00:00Z",
        );
        let lines: Vec<ArchiveLine> = merge(open_all(&[&path]), YearRule::Infer)
            .time_zone(tz.clone())
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(
            times(&lines),
            ["2026-12-31T22:30:00Z", "2026-12-31T23:30:00Z"]
        );
        let mut converter = Converter::new(tz);
        for l in &lines {
            let parsed = parse_line(&l.bytes).unwrap();
            let o = converter.convert(&parsed, l.at.unwrap()).unwrap();
            assert_eq!(Some(o.at), l.at);
            assert!(matches!(o.observation, Observation::Dhcp { .. }));
        }
    }

    #[test]
    fn progress_is_reported_over_both_passes() {
        let dir = tempfile::tempdir().unwrap();
        let content: String = (0..20_000u32)
            .map(|n| {
                isc(
                    &format!(
                        "Nov 20 {:02}:{:02}:{:02}",
                        n / 3600 % 24,
                        n / 60 % 60,
                        n % 60
                    ),
                    "boot1",
                    (n % 251) as u8,
                )
            })
            .collect();
        let path = put(
            dir.path(),
            "x.log",
            content.as_bytes(),
            false,
            "2026-11-21T00:00:00Z",
        );
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut merged = merge(open_all(&[&path]), YearRule::Infer)
            .time_zone(TimeZone::UTC)
            .on_progress(move |p| s.lock().unwrap().push(p));
        merged.prepare().unwrap();
        let after_first_pass = merged.progress().read;
        assert!(after_first_pass >= content.len() as u64);
        assert_eq!(merged.by_ref().count(), 20_000);
        let total = 2 * content.len() as u64;
        assert_eq!(merged.progress(), Progress { read: total, total });
        let seen = seen.lock().unwrap();
        assert!(seen.len() >= 2, "{seen:?}");
        assert!(
            seen.windows(2)
                .all(|w| w[0].read < w[1].read && w[1].read <= total)
        );
    }

    #[test]
    fn rotation_names() {
        let rank = |n: &str| {
            let (base, rank) = split_rotation(n.as_bytes());
            (String::from_utf8(base.to_vec()).unwrap(), rank)
        };
        assert_eq!(rank("dhcpd.log"), ("dhcpd.log".into(), Rank::Current));
        assert_eq!(
            rank("dhcpd.log.1"),
            ("dhcpd.log".into(), Rank::Numbered(Reverse(1)))
        );
        assert_eq!(
            rank("syslog-20260102"),
            ("syslog".into(), Rank::Named(b"20260102".to_vec()))
        );
        assert_eq!(
            rank("syslog-2026-01-02"),
            ("syslog".into(), Rank::Named(b"2026-01-02".to_vec()))
        );
        assert_eq!(
            rank("kea-dhcp4.log"),
            ("kea-dhcp4.log".into(), Rank::Current)
        );
        assert!(Rank::Named(b"20260102".to_vec()) < Rank::Numbered(Reverse(9)));
        assert!(Rank::Numbered(Reverse(2)) < Rank::Numbered(Reverse(1)));
        assert!(Rank::Numbered(Reverse(0)) < Rank::Current);
        let a = Archive::open(Path::new("/dev/null"));
        assert!(a.is_err());
    }
}
