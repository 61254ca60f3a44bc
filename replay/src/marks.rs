//! Read marks: how far each source has been read, committed in the same transaction as the
//! events made from what was read. One typed, versioned key and value per kind:
//!
//! | key | value | what |
//! |---|---|---|
//! | `log:<path>` | [`Mark::Tail`] | the tailer's position in a followed log path |
//! | `file:<16 hex>` | [`Mark::ReadTo`] | how far a file, by content identity, was read (live or replay) |
//! | `journal:<unit>` | [`Mark::Cursor`] | the journal cursor of the last entry read |
//!
//! Values are written as `nmt-mark/1` followed by JSON. Values written by releases before
//! marks were versioned (a tailer checkpoint as bare JSON, a little-endian `u64`, a bare
//! cursor) still decode. A value that does not decode is an error, never "nothing read
//! yet": a source must not start over from byte 0 because its mark is unreadable.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Checkpoint;

/// The prefix of a versioned mark value.
const MAGIC: &[u8] = b"nmt-mark/1\n";

/// Which source a mark belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MarkKey {
    /// A followed log path.
    LogPath(PathBuf),
    /// A file by content identity ([`crate::file_identity`]).
    File(u64),
    /// A systemd unit's journal.
    Journal(String),
}

impl MarkKey {
    /// The store key.
    pub fn key(&self) -> String {
        match self {
            MarkKey::LogPath(p) => format!("log:{}", p.display()),
            MarkKey::File(id) => format!("file:{id:016x}"),
            MarkKey::Journal(unit) => format!("journal:{unit}"),
        }
    }

    /// The key of a followed log path.
    pub fn log(path: &Path) -> MarkKey {
        MarkKey::LogPath(path.to_path_buf())
    }
}

impl std::fmt::Display for MarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// How far a source was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// A tailer's position (file, offset, fingerprint).
    Tail(Checkpoint),
    /// Every line starting before this byte offset was read.
    ReadTo(u64),
    /// The journal cursor of the last entry read.
    Cursor(String),
}

/// A mark that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("the read mark {key} does not decode ({why}); nmt will not guess where to go on from")]
pub struct MarkError {
    /// The store key.
    pub key: String,
    /// What is wrong with it.
    pub why: String,
}

impl Mark {
    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        serde_json::to_writer(&mut out, self).expect("a mark serializes");
        out
    }

    /// Decode the value stored under `key`, in this release's form or an earlier one.
    pub fn decode(key: &MarkKey, bytes: &[u8]) -> Result<Mark, MarkError> {
        let err = |why: String| MarkError {
            key: key.key(),
            why,
        };
        let mark = match bytes.strip_prefix(MAGIC) {
            Some(json) => serde_json::from_slice::<Mark>(json)
                .map_err(|e| err(format!("version 1, but {e}")))?,
            // Earlier releases: the bare value of the key's kind.
            None => match key {
                MarkKey::LogPath(_) => serde_json::from_slice::<Checkpoint>(bytes)
                    .map(Mark::Tail)
                    .map_err(|e| err(format!("not a tailer checkpoint: {e}")))?,
                MarkKey::File(_) => <[u8; 8]>::try_from(bytes)
                    .map(|b| Mark::ReadTo(u64::from_le_bytes(b)))
                    .map_err(|_| err(format!("{} bytes, not an offset", bytes.len())))?,
                MarkKey::Journal(_) => match std::str::from_utf8(bytes) {
                    Ok(c) if !c.is_empty() && !c.contains('\n') => Mark::Cursor(c.to_string()),
                    _ => return Err(err("not a journal cursor".into())),
                },
            },
        };
        let fits = matches!(
            (key, &mark),
            (MarkKey::LogPath(_), Mark::Tail(_))
                | (MarkKey::File(_), Mark::ReadTo(_))
                | (MarkKey::Journal(_), Mark::Cursor(_))
        );
        if !fits {
            return Err(err(format!("a {mark:?} does not belong under this key")));
        }
        Ok(mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp() -> Checkpoint {
        Checkpoint {
            dev: 1,
            ino: 2,
            offset: 300,
            fingerprint: 4,
        }
    }

    #[test]
    fn marks_round_trip_and_old_values_still_decode() {
        let log = MarkKey::log(Path::new("/var/log/syslog"));
        let file = MarkKey::File(0xabc);
        let journal = MarkKey::Journal("isc-dhcp-server.service".into());
        assert_eq!(log.key(), "log:/var/log/syslog");
        assert_eq!(file.key(), "file:0000000000000abc");
        assert_eq!(journal.key(), "journal:isc-dhcp-server.service");
        for (k, m) in [
            (&log, Mark::Tail(cp())),
            (&file, Mark::ReadTo(1 << 40 | 1)),
            (&journal, Mark::Cursor("s=1;i=2".into())),
        ] {
            assert_eq!(Mark::decode(k, &m.encode()).unwrap(), m);
        }
        // As releases before versioned marks wrote them.
        let old = serde_json::to_vec(&cp()).unwrap();
        assert_eq!(Mark::decode(&log, &old).unwrap(), Mark::Tail(cp()));
        assert_eq!(
            Mark::decode(&file, &257u64.to_le_bytes()).unwrap(),
            Mark::ReadTo(257)
        );
        assert_eq!(
            Mark::decode(&journal, b"s=abc;i=9").unwrap(),
            Mark::Cursor("s=abc;i=9".into())
        );
    }

    #[test]
    fn a_mark_that_does_not_decode_is_an_error_not_a_fresh_start() {
        let log = MarkKey::log(Path::new("/var/log/syslog"));
        let e = Mark::decode(&log, b"{\"dev\":1").unwrap_err();
        assert!(e.to_string().contains("log:/var/log/syslog"), "{e}");
        assert!(Mark::decode(&MarkKey::File(1), b"1234567").is_err());
        assert!(Mark::decode(&MarkKey::File(1), &Mark::Cursor("x".into()).encode()).is_err());
        let mut newer = b"nmt-mark/1\n".to_vec();
        newer.extend_from_slice(b"{\"tail2\":{}}");
        assert!(Mark::decode(&log, &newer).is_err());
        assert!(Mark::decode(&MarkKey::Journal("u".into()), b"").is_err());
    }
}
