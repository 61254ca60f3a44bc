//! Reading a JSON-lines journal: one envelope per line, gap-free sequence numbers from 1.
//! A truncated or corrupted journal is refused with the line number; nothing is half-read.
//!
//! `nmt journal export` ends an export with a trailer line, so that a journal cut at a line
//! boundary (`head -n 300`) can be told from a whole one:
//!
//! ```text
//! {"trailer":{"events":758,"sha256":"<hex>","filter":{}}}
//! ```
//!
//! `events` counts the event lines before it, `sha256` is the SHA-256 of their bytes (each
//! line with its newline, as exported), and `filter` names the `--since`, `--until` and
//! `--machine` that chose them (`{}` for the whole log). Journals written before trailers
//! existed have none; reading one is allowed here, and `nmt journal import` asks for
//! `--partial` to take it.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};

use nmt_projections::{Envelope, State};

use sha2::{Digest, Sha256};

/// Why a journal was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The journal could not be read.
    #[error("cannot read the journal: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not an event (truncated, corrupted, or from a newer nmt).
    #[error("line {line}: {source}")]
    Decode {
        /// 1-based line number.
        line: usize,
        /// Why.
        source: nmt_projections::DecodeError,
    },
    /// The sequence numbers skip or repeat.
    #[error(
        "line {line}: event {found} follows event {previous}; a journal runs gap-free from 1, so this one is incomplete or out of order"
    )]
    Gap {
        /// 1-based line number.
        line: usize,
        /// The sequence number found.
        found: u64,
        /// The one before.
        previous: u64,
    },
    /// A filtered export: its events skip by design, so it cannot be folded or imported.
    #[error(
        "line {line}: event {found} follows event {previous}: this export holds only the events \
         of `{filter}` (its trailer says so), not the whole log; export without --since and \
         --machine to rebuild a state"
    )]
    Filtered {
        /// 1-based line number of the first skip.
        line: usize,
        /// The sequence number found.
        found: u64,
        /// The one before.
        previous: u64,
        /// The filter, as command-line options.
        filter: String,
    },
    /// The trailer line does not decode.
    #[error("line {line}: the export's trailer is cut or damaged: {reason}")]
    BadTrailer {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// The trailer does not match the lines before it.
    #[error("line {line}: {reason}; the export was cut or edited")]
    Mismatch {
        /// 1-based line number of the trailer.
        line: usize,
        /// What differs.
        reason: String,
    },
    /// An event of a schema version this nmt does not know (or none at all).
    #[error(
        "line {line}: {what}; this nmt reads versions 1 to {known} (an export from a newer nmt \
         needs that nmt, and a line without a version was edited)"
    )]
    Version {
        /// 1-based line number.
        line: usize,
        /// What was found.
        what: String,
        /// The newest version known.
        known: u32,
    },
    /// The events break the log's own rules (one store creation, first).
    #[error("line {line}: {reason}; this is not a log nmt wrote")]
    Invariant {
        /// 1-based line number.
        line: usize,
        /// Which rule.
        reason: String,
    },
    /// Something follows the trailer, which ends an export.
    #[error("line {line}: a line after the trailer, which ends an export (two exports joined?)")]
    AfterTrailer {
        /// 1-based line number.
        line: usize,
    },
}

/// The rules every exported event keeps: a known schema version, written out; the store's
/// creation first, and only there.
fn check_event(line: usize, raw: &[u8], env: &Envelope) -> Result<(), JournalError> {
    let known = nmt_projections::SCHEMA_VERSION;
    let written = raw.windows(4).any(|w| w == b"\"v\":");
    if !written || env.v == 0 || env.v > known {
        return Err(JournalError::Version {
            line,
            what: if written {
                format!("event {} says it is of schema version {}", env.seq, env.v)
            } else {
                format!("event {} has no schema version (\"v\")", env.seq)
            },
            known,
        });
    }
    let creates = matches!(env.event, nmt_projections::Event::StoreCreated { .. });
    if env.seq == 1 && !creates {
        return Err(JournalError::Invariant {
            line,
            reason: format!(
                "event 1 is {}, but a log starts with the store's creation (StoreCreated)",
                env.event.kind()
            ),
        });
    }
    if env.seq != 1 && creates {
        return Err(JournalError::Invariant {
            line,
            reason: format!("event {} creates the store a second time", env.seq),
        });
    }
    Ok(())
}

/// What chose an export's events: `nmt journal export --since/--until/--machine`. Empty for
/// the whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportFilter {
    /// `--since`, as RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `--until`, as RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `--machine`, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

impl ExportFilter {
    /// No filter: the whole log.
    pub fn is_whole(&self) -> bool {
        self.since.is_none() && self.until.is_none() && self.machine.is_none()
    }
}

impl std::fmt::Display for ExportFilter {
    /// As command-line options: `--since T --machine M`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (opt, v) in [
            ("--since", &self.since),
            ("--until", &self.until),
            ("--machine", &self.machine),
        ] {
            if let Some(v) = v {
                parts.push(format!("{opt} {v}"));
            }
        }
        if parts.is_empty() {
            f.write_str("the whole log")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

/// The last line of an export (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trailer {
    /// How many event lines precede it.
    pub events: u64,
    /// SHA-256 of those lines' bytes, each with its newline, in lowercase hex.
    pub sha256: String,
    /// What chose the events.
    pub filter: ExportFilter,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TrailerLine {
    trailer: Trailer,
}

const TRAILER_START: &[u8] = br#"{"trailer":"#;

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Trailer {
    /// The trailer of an export whose event lines (each ending in a newline) are `body`.
    pub fn of(body: &[u8], filter: ExportFilter) -> Trailer {
        Trailer {
            events: memchr::memchr_iter(b'\n', body).count() as u64,
            sha256: hex(&Sha256::digest(body)),
            filter,
        }
    }

    /// The trailer as its line, with its newline.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(&TrailerLine {
            trailer: self.clone(),
        })
        .expect("a trailer serializes");
        s.push('\n');
        s
    }
}

/// A journal as read: its events, and its trailer when it has one (checked: it matched).
#[derive(Debug)]
pub struct Journal {
    /// The events, in sequence order.
    pub events: Vec<Envelope>,
    /// The trailer; `None` for a journal cut at a line boundary or written before trailers.
    pub trailer: Option<Trailer>,
}

/// Lines a parsing thread takes at a time: the most events an [`ExportChunk`] holds.
pub const CHUNK_LINES: usize = 4096;

/// Event lines read, to be decoded by a parsing thread: their bytes, one after the other,
/// and each line's number and end in them.
#[derive(Default)]
struct Chunk {
    index: usize,
    bytes: Vec<u8>,
    lines: Vec<(usize, usize)>,
}

/// A chunk's events with their line numbers (and the chunk, whose lines they are), or the
/// first line that was refused.
type Decoded = Result<(Vec<(usize, Envelope)>, Chunk), (usize, JournalError)>;

/// Which chunk a decoded one was.
fn decoded_index(d: &Decoded) -> usize {
    match d {
        Ok((_, chunk)) => chunk.index,
        Err((index, _)) => *index,
    }
}

fn decode_chunk(chunk: &Chunk) -> Result<Vec<(usize, Envelope)>, JournalError> {
    let mut start = 0;
    let mut out = Vec::with_capacity(chunk.lines.len());
    for &(line_no, end) in &chunk.lines {
        let raw = &chunk.bytes[start..end];
        start = end;
        let env = Envelope::from_json(raw).map_err(|source| JournalError::Decode {
            line: line_no,
            source,
        })?;
        check_event(line_no, raw, &env)?;
        out.push((line_no, env));
    }
    Ok(out)
}

/// Read every event of a journal, checking it is whole: decoded lines, gap-free sequence
/// numbers from 1, and a trailer, if there is one, that counts and digests the lines before
/// it. A journal without a trailer is read too ([`Journal::trailer`] says so).
///
/// The whole journal is held in memory: [`read_export_chunks`] hands it over a chunk at a
/// time instead.
pub fn read_export(reader: impl BufRead + Send) -> Result<Journal, JournalError> {
    let mut events = Vec::new();
    let trailer = read_export_chunks(reader, &mut |chunk| {
        events.extend(chunk.events);
        Ok(())
    })?;
    Ok(Journal { events, trailer })
}

/// Events of a journal in the order of its lines, as [`read_export_chunks`] hands them over.
pub struct ExportChunk {
    /// The events, in sequence order, following the previous chunk's.
    pub events: Vec<Envelope>,
    /// Each event's line as it is in the journal (without its line break).
    pub lines: Vec<Vec<u8>>,
}

/// Read a journal as [`read_export`] does, handing its events to `take` a chunk at a time,
/// in order, as soon as they are decoded and follow the events before them without a gap.
/// The checks that need the whole journal (the trailer's count and digest, nothing after
/// it) come at the end: an `Err` may come after chunks were taken, and a caller that wrote
/// them must undo that. An error `take` returns stops the reading and is returned as it is.
/// Returns the trailer when there is one.
///
/// One thread reads the lines and digests them; the decoding, most of the work, runs on as
/// many threads as there are cores (up to 4), a chunk of lines at a time; `take` runs on the
/// calling thread. Only a few chunks are in memory at a time. The refusal is that of the
/// first refused line, as if the lines were read one by one.
pub fn read_export_chunks(
    reader: impl BufRead + Send,
    take: &mut dyn FnMut(ExportChunk) -> Result<(), JournalError>,
) -> Result<Option<Trailer>, JournalError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let work_rx = std::sync::Mutex::new(None::<std::sync::mpsc::Receiver<Chunk>>);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (work_tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(workers * 2);
        *work_rx.lock().unwrap_or_else(|p| p.into_inner()) = Some(rx);
        // Bounded: a slow `take` holds the reading back.
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(usize, Decoded)>(workers * 2);
        for _ in 0..workers {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            s.spawn(move || {
                loop {
                    let next = work_rx
                        .lock()
                        .ok()
                        .and_then(|rx| rx.as_ref().map(|rx| rx.recv()));
                    let Some(Ok(chunk)) = next else { break };
                    let index = chunk.index;
                    let decoded = match decode_chunk(&chunk) {
                        Ok(events) => Ok((events, chunk)),
                        Err(e) => Err((index, e)),
                    };
                    if done_tx.send((decoded_index(&decoded), decoded)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let reading = s.spawn(|| read_lines(reader, work_tx, &stop));
        let mut pending: std::collections::BTreeMap<usize, Decoded> = Default::default();
        let mut next = 0;
        let mut previous = 0;
        // The first line refused in decoding, and the first gap: the order of precedence
        // below is that of reading the lines one by one.
        let mut refused: Option<JournalError> = None;
        let mut first_gap: Option<(usize, u64, u64)> = None;
        let mut counted = 0u64;
        let mut taken: Result<(), JournalError> = Ok(());
        for (index, decoded) in done_rx {
            pending.insert(index, decoded);
            while let Some(decoded) = pending.remove(&next) {
                next += 1;
                if refused.is_some() || taken.is_err() {
                    continue;
                }
                let (events, chunk) = match decoded {
                    Ok(d) => d,
                    Err((_, e)) => {
                        refused = Some(e);
                        stop.store(true, Ordering::Relaxed);
                        continue;
                    }
                };
                counted += events.len() as u64;
                let mut out = ExportChunk {
                    events: Vec::with_capacity(events.len()),
                    lines: Vec::with_capacity(events.len()),
                };
                let mut start = 0;
                for ((line_no, env), &(_, end)) in events.into_iter().zip(&chunk.lines) {
                    let line = &chunk.bytes[start..end];
                    start = end;
                    if env.seq != previous + 1 && first_gap.is_none() {
                        first_gap = Some((line_no, env.seq, previous));
                    }
                    previous = env.seq;
                    if first_gap.is_none() {
                        out.lines.push(line.to_vec());
                        out.events.push(env);
                    }
                }
                if !out.events.is_empty() {
                    taken = take(out);
                    if taken.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        let (hasher, trailer, read_refused) = reading.join().expect("the reading thread panicked");
        // A line refused in decoding comes before any refused in reading (which stopped
        // there); what `take` refused stopped everything.
        taken?;
        if let Some(e) = refused.or(read_refused.map(|(_, e)| e)) {
            return Err(e);
        }
        if let Some((line, found, previous)) = first_gap {
            return Err(match &trailer {
                Some((_, t)) if !t.filter.is_whole() => JournalError::Filtered {
                    line,
                    found,
                    previous,
                    filter: t.filter.to_string(),
                },
                _ => JournalError::Gap {
                    line,
                    found,
                    previous,
                },
            });
        }
        if let Some((line, t)) = &trailer {
            if t.events != counted {
                return Err(JournalError::Mismatch {
                    line: *line,
                    reason: format!(
                        "the trailer counts {} events, but {counted} lines precede it",
                        t.events
                    ),
                });
            }
            if t.sha256 != hex(&hasher.finalize()) {
                return Err(JournalError::Mismatch {
                    line: *line,
                    reason: "the events' lines do not match the trailer's digest (sha256)".into(),
                });
            }
        }
        Ok(trailer.map(|(_, t)| t))
    })
}

/// What the reading thread found: the digest of the event lines, the trailer with its line
/// number, and the first line it refused (I/O, the trailer's rules) with its number.
type ReadOutcome = (
    Sha256,
    Option<(usize, Trailer)>,
    Option<(usize, JournalError)>,
);

/// Read the lines, digest them, and send the event lines to the parsing threads a chunk at
/// a time (numbered from 0). Stops at the first refused line, or when `stop` is set (a line
/// refused in decoding, or the taker failed: nothing after matters).
fn read_lines(
    reader: impl BufRead,
    work_tx: std::sync::mpsc::SyncSender<Chunk>,
    stop: &AtomicBool,
) -> ReadOutcome {
    let mut hasher = Sha256::new();
    let mut trailer: Option<(usize, Trailer)> = None;
    let mut refused: Option<(usize, JournalError)> = None;
    let mut chunk = Chunk::default();
    let mut sent = 0;
    // One buffer for every line, and each chunk sized like the one before: growing them a
    // line at a time costs more than reading.
    let mut reader = reader;
    let mut line = Vec::new();
    let mut line_no = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        line_no += 1;
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
            }
            Err(e) => {
                refused = Some((line_no, JournalError::Io(e)));
                break;
            }
        }
        let trimmed = line.trim_ascii();
        if trailer.is_some() {
            if trimmed.is_empty() {
                continue;
            }
            refused = Some((line_no, JournalError::AfterTrailer { line: line_no }));
            break;
        }
        if trimmed.starts_with(TRAILER_START) {
            match serde_json::from_slice::<TrailerLine>(trimmed) {
                Ok(t) => trailer = Some((line_no, t.trailer)),
                Err(e) => {
                    let reason = e.to_string();
                    refused = Some((
                        line_no,
                        JournalError::BadTrailer {
                            line: line_no,
                            reason,
                        },
                    ));
                    break;
                }
            }
            continue;
        }
        hasher.update(&line);
        hasher.update(b"\n");
        if trimmed.is_empty() {
            continue;
        }
        chunk.bytes.extend_from_slice(trimmed);
        chunk.lines.push((line_no, chunk.bytes.len()));
        if chunk.lines.len() == CHUNK_LINES {
            let next = Chunk {
                index: sent + 1,
                bytes: Vec::with_capacity(chunk.bytes.len() + chunk.bytes.len() / 8),
                lines: Vec::with_capacity(CHUNK_LINES),
            };
            // The workers only stop when this sender is dropped.
            let _ = work_tx.send(std::mem::replace(&mut chunk, next));
            sent += 1;
        }
    }
    if !chunk.lines.is_empty() {
        let _ = work_tx.send(chunk);
    }
    (hasher, trailer, refused)
}

/// Read every event of a journal, checking it is whole (see [`read_export`]); its trailer,
/// when it has one, is checked and is not an event.
pub fn read_journal(reader: impl BufRead + Send) -> Result<Vec<Envelope>, JournalError> {
    Ok(read_export(reader)?.events)
}

/// Fold a whole journal into a state.
pub fn fold_journal(reader: impl BufRead + Send) -> Result<State, JournalError> {
    Ok(State::from_events(&read_journal(reader)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE1: &str = r#"{"seq":1,"v":1,"recorded_at":"2026-01-01T00:00:00Z","observed_at":"2026-01-01T00:00:00Z","actor":"root","event":{"type":"StoreCreated"}}"#;
    const LINE2: &str = r#"{"seq":2,"v":1,"recorded_at":"2026-01-01T00:00:00Z","observed_at":"2026-01-01T00:00:00Z","actor":"root","event":{"type":"GroupCreated","group":"lab","policy":"ltsp"}}"#;

    #[test]
    fn a_whole_journal_folds() {
        let s = fold_journal(format!("{LINE1}\n{LINE2}\n").as_bytes()).unwrap();
        assert!(s.group("lab").is_some());
    }

    #[test]
    fn truncation_and_gaps_are_refused_with_the_line() {
        let truncated = format!("{LINE1}\n{}", &LINE2[..40]);
        let e = read_journal(truncated.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("line 2: not an nmt event"), "{e}");
        let gap = format!("{LINE2}\n");
        let e = read_journal(gap.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("line 1: event 2 follows event 0"), "{e}");
    }

    #[test]
    fn item_3_the_trailer_is_checked_and_is_not_an_event() {
        let body = format!("{LINE1}\n{LINE2}\n");
        let trailer = Trailer::of(body.as_bytes(), ExportFilter::default());
        assert_eq!(trailer.events, 2);
        let whole = format!("{body}{}", trailer.to_line());
        assert!(whole.ends_with("\"filter\":{}}}\n"), "{whole}");
        let s = fold_journal(whole.as_bytes()).unwrap();
        assert!(s.group("lab").is_some());
        assert_eq!(s.last_seq(), 2);
        let j = read_export(whole.as_bytes()).unwrap();
        assert_eq!((j.events.len(), j.trailer), (2, Some(trailer.clone())));
        // Cut at a line boundary: no trailer, which the reader says.
        let cut = format!("{LINE1}\n");
        assert!(read_export(cut.as_bytes()).unwrap().trailer.is_none());
        // A trailer that counts other lines, or other bytes, is refused.
        let short = format!("{LINE1}\n{}", trailer.to_line());
        let e = read_journal(short.as_bytes()).unwrap_err().to_string();
        assert!(
            e.starts_with("line 2: the trailer counts 2 events, but 1"),
            "{e}"
        );
        let edited = whole.replacen("root", "toor", 1);
        let e = read_journal(edited.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("digest"), "{e}");
        let damaged = &whole[..whole.len() - 5];
        let e = read_journal(damaged.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("line 3: the export's trailer is cut"), "{e}");
    }

    /// A journal of `n` events: the store's creation, then group changes.
    fn long(n: u64) -> Vec<String> {
        let mut lines = vec![LINE1.to_string()];
        for seq in 2..=n {
            lines.push(LINE2.replace(r#""seq":2"#, &format!(r#""seq":{seq}"#)));
        }
        lines
    }

    #[test]
    fn a_long_journal_is_read_in_order_and_refused_at_its_first_bad_line() {
        // Several chunks for the decoding threads, with blank lines among them.
        let mut lines = long(3 * CHUNK_LINES as u64 + 17);
        lines.insert(5000, String::new());
        let body = lines.join("\n") + "\n";
        let events = read_journal(body.as_bytes()).unwrap();
        assert_eq!(events.len(), 3 * CHUNK_LINES + 17);
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, e)| e.seq == i as u64 + 1)
        );
        // Damage in two chunks: the first damaged line is named, whichever thread read it.
        let mut bad = lines.clone();
        bad[9000] = "{".into();
        bad[11000] = "not json".into();
        let e = read_journal((bad.join("\n") + "\n").as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 9001: "), "{e}");
        // A gap in a late chunk, and a damaged line after it: the damage is named first,
        // as a reader of one line at a time would.
        let mut gap = lines.clone();
        gap.remove(10_000);
        let e = read_journal((gap.join("\n") + "\n").as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 10001: event "), "{e}");
        gap[12_000] = "{".into();
        let e = read_journal((gap.join("\n") + "\n").as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("line 12001: "), "{e}");
        // A line after the trailer: refused there, unless a damaged line in an earlier
        // chunk came first.
        let trailed = |first: &[String]| {
            let mut lines = first.to_vec();
            let trailer = Trailer::of(b"", ExportFilter::default()).to_line();
            lines.extend([trailer.trim().to_string(), LINE1.to_string()]);
            read_journal((lines.join("\n") + "\n").as_bytes()).unwrap_err()
        };
        let e = trailed(&bad[..10_000]);
        assert!(e.to_string().starts_with("line 9001: "), "{e}");
        let e = trailed(&lines[..10_000]);
        assert!(
            matches!(e, JournalError::AfterTrailer { line: 10_002 }),
            "{e}"
        );
    }
}
