//! Reading a JSON-lines journal: one envelope per line, gap-free sequence numbers from 1.
//! A truncated or corrupted journal is refused with the line number; nothing is half-read.

use std::io::BufRead;

use nmt_projections::{Envelope, State};

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
}

/// Read every event of a journal, checking it is whole.
pub fn read_journal(reader: impl BufRead) -> Result<Vec<Envelope>, JournalError> {
    let mut out = Vec::new();
    let mut previous = 0;
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i + 1;
        let line = line?;
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            continue;
        }
        let env = Envelope::from_json(trimmed).map_err(|source| JournalError::Decode {
            line: line_no,
            source,
        })?;
        if env.seq != previous + 1 {
            return Err(JournalError::Gap {
                line: line_no,
                found: env.seq,
                previous,
            });
        }
        previous = env.seq;
        out.push(env);
    }
    Ok(out)
}

/// Fold a whole journal into a state.
pub fn fold_journal(reader: impl BufRead) -> Result<State, JournalError> {
    Ok(State::from_events(&read_journal(reader)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE1: &str = r#"{"seq":1,"v":1,"recorded_at":"2026-01-01T00:00:00Z","observed_at":"2026-01-01T00:00:00Z","actor":"root","event":{"type":"GroupCreated","group":"lab","policy":"ltsp"}}"#;
    const LINE2: &str = r#"{"seq":2,"v":1,"recorded_at":"2026-01-01T00:00:00Z","observed_at":"2026-01-01T00:00:00Z","actor":"root","event":{"type":"GroupRemoved","group":"lab"}}"#;

    #[test]
    fn a_whole_journal_folds() {
        let s = fold_journal(format!("{LINE1}\n{LINE2}\n").as_bytes()).unwrap();
        assert!(s.group("lab").is_none());
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
}
