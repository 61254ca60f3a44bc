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
use std::sync::atomic::{AtomicU64, Ordering};

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
        let p = self.progress();
        if p.read >= self.next_report {
            self.next_report = p.read + PROGRESS_STEP;
            if let Some(f) = self.on_progress.as_mut() {
                f(p);
            }
        }
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
        let mut surveys = Vec::with_capacity(self.sources.len());
        for i in 0..self.sources.len() {
            surveys.push(self.survey(i)?);
        }
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

    /// The first pass over file `i`.
    fn survey(&mut self, i: usize) -> io::Result<Survey> {
        let archive = &self.sources[i].archive;
        let path = archive.path.clone();
        let mut lines = LineReader::new(archive.reader(Some(self.read.clone()))?);
        // The same lines get a stamp as in the second pass: those not cut at `max_line`
        // that the parsers read (none longer than `MAX_LINE_LEN`).
        let cap = self.max_line.min(nmt_parsers::MAX_LINE_LEN + 1);
        let mut s = Survey::default();
        let mut bytes = Vec::new();
        while let Some((_, truncated)) = lines
            .next_into(&mut bytes, cap)
            .map_err(|e| annotate(&path, e))?
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
            self.report();
        }
        Ok(s)
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
        let stamp = if truncated { None } else { stamp_of(&bytes) };
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
        src.pending = Some(ArchiveLine {
            identity: src.archive.identity,
            offset,
            bytes,
            truncated,
            at,
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

/// The stamp of a line the parsers read: a syslog line's, or a `journalctl -o json`
/// record's time.
fn stamp_of(bytes: &[u8]) -> Option<Stamp> {
    match parse_line(bytes) {
        Ok(line) => line.stamp,
        Err(_) if bytes.first() == Some(&b'{') => parse_journal_json(bytes)
            .ok()?
            .realtime_micros
            .map(Stamp::UnixMicros),
        Err(_) => None,
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
