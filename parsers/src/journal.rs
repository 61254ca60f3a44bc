//! journald records as `journalctl -o json` prints them, one JSON object
//! per line.

use serde::Deserialize;

use crate::logline::{LogLine, Reject, RejectReason, Stamp, parse_message};
use crate::scan::dec_u32;

/// Journal lines longer than this are rejected with
/// [`RejectReason::TooLong`]. A record can be much longer than its message:
/// a non-UTF-8 `MESSAGE` is written as an array of numbers, up to four bytes
/// of JSON per byte.
pub const MAX_JOURNAL_LINE_LEN: usize = 1024 * 1024;

/// One journald record: the fields nmt reads, owned.
///
/// Get the parsed message with [`JournalEntry::log_line`]; an entry returned
/// by [`parse_journal_json`] always parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// `__CURSOR`: where to resume (`journalctl --after-cursor`).
    pub cursor: Option<String>,
    /// `__REALTIME_TIMESTAMP`: microseconds since the Unix epoch, UTC.
    pub realtime_micros: Option<i64>,
    /// `_HOSTNAME`, raw.
    pub host: Option<Vec<u8>>,
    /// `SYSLOG_IDENTIFIER`, or `_COMM` when there is none (a service's
    /// stdout), raw.
    pub program: Option<Vec<u8>>,
    /// `SYSLOG_PID`, or `_PID`.
    pub pid: Option<u32>,
    /// `MESSAGE`: the message body (no syslog envelope), raw bytes.
    pub message: Vec<u8>,
}

impl JournalEntry {
    /// The message parsed into the same shape [`parse_line`](crate::parse_line)
    /// returns, with `stamp` = [`Stamp::UnixMicros`], borrowing from `self`.
    pub fn log_line(&self) -> Result<LogLine<'_>, Reject> {
        let program = self.program.as_deref();
        let message = crate::scan::trim_end(&self.message);
        if message.is_empty() {
            return Err(RejectReason::Empty.into());
        }
        if message.len() > crate::MAX_LINE_LEN {
            return Err(RejectReason::TooLong.into());
        }
        let record = parse_message(program, message)?;
        Ok(LogLine {
            stamp: self.realtime_micros.map(Stamp::UnixMicros),
            host: self.host.as_deref(),
            program,
            pid: self.pid,
            record,
        })
    }
}

/// A journald field value: a string, an array of bytes (when the value is
/// not valid UTF-8), or an array of such (a field set several times; the
/// first is used).
#[derive(Deserialize)]
#[serde(untagged)]
enum Field {
    Str(String),
    Bytes(Vec<u8>),
    Many(Vec<Field>),
}

impl Field {
    fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Field::Str(s) => Some(s.into_bytes()),
            Field::Bytes(b) => Some(b),
            Field::Many(v) => v.into_iter().next().and_then(Field::into_bytes),
        }
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "__CURSOR")]
    cursor: Option<Field>,
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<Field>,
    #[serde(rename = "_HOSTNAME")]
    hostname: Option<Field>,
    #[serde(rename = "SYSLOG_IDENTIFIER")]
    identifier: Option<Field>,
    #[serde(rename = "_COMM")]
    comm: Option<Field>,
    #[serde(rename = "SYSLOG_PID")]
    syslog_pid: Option<Field>,
    #[serde(rename = "_PID")]
    pid: Option<Field>,
    #[serde(rename = "MESSAGE")]
    message: Option<Field>,
}

/// Parses one line of `journalctl -o json` output (without its `\n`).
///
/// Rejects a line that is not such a record ([`RejectReason::BadJournal`]),
/// whose `MESSAGE` is missing or `null` (journalctl prints `null` for values
/// over 4 KiB unless run with `--all`), or whose message
/// [`parse_line`](crate::parse_line) would reject for the same reasons.
/// Allocates (the entry is owned).
pub fn parse_journal_json(line: &[u8]) -> Result<JournalEntry, Reject> {
    if line.len() > MAX_JOURNAL_LINE_LEN {
        return Err(RejectReason::TooLong.into());
    }
    let line = crate::scan::trim_end(line);
    if line.is_empty() {
        return Err(RejectReason::Empty.into());
    }
    let raw: Raw = serde_json::from_slice(line).map_err(|_| RejectReason::BadJournal)?;
    let text = |f: Option<Field>| f.and_then(Field::into_bytes);
    let number = |f: Option<Field>| text(f).and_then(|b| dec_u32(&b));
    let entry = JournalEntry {
        cursor: text(raw.cursor).and_then(|b| String::from_utf8(b).ok()),
        realtime_micros: text(raw.realtime)
            .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<i64>().ok()),
        host: text(raw.hostname),
        program: text(raw.identifier).or_else(|| text(raw.comm)),
        pid: number(raw.syslog_pid).or_else(|| number(raw.pid)),
        message: text(raw.message).ok_or(RejectReason::BadJournal)?,
    };
    entry.log_line()?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dhcp, DhcpKind, Record};

    #[test]
    fn string_and_byte_array_messages() {
        let line = br#"{"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1795140311123456","_HOSTNAME":"boot1","SYSLOG_IDENTIFIER":"dhcpd","_PID":"812","MESSAGE":"DHCPDISCOVER from 52:54:00:12:34:56 via eth0"}"#;
        let e = parse_journal_json(line).unwrap();
        assert_eq!(e.cursor.as_deref(), Some("s=abc;i=1"));
        let l = e.log_line().unwrap();
        assert_eq!(l.stamp, Some(Stamp::UnixMicros(1795140311123456)));
        assert_eq!(
            (l.host, l.program, l.pid),
            (Some(&b"boot1"[..]), Some(&b"dhcpd"[..]), Some(812))
        );
        assert!(matches!(
            l.record,
            Record::Dhcp(Dhcp {
                kind: DhcpKind::Discover,
                ..
            })
        ));

        // "DHCPACK(br0) 10.0.0.50 52:54:00:12:34:56 p\xffc" as bytes.
        let mut msg = b"DHCPACK(br0) 10.0.0.50 52:54:00:12:34:56 p".to_vec();
        msg.extend_from_slice(&[0xff, b'c']);
        let arr: Vec<String> = msg.iter().map(u8::to_string).collect();
        let line = format!(
            r#"{{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"dnsmasq-dhcp","MESSAGE":[{}]}}"#,
            arr.join(",")
        );
        let e = parse_journal_json(line.as_bytes()).unwrap();
        match e.log_line().unwrap().record {
            Record::Dhcp(d) => assert_eq!(d.hostname, Some(&b"p\xffc"[..])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects() {
        let r = |s: &[u8]| parse_journal_json(s).unwrap_err().reason;
        assert_eq!(r(b"not json"), RejectReason::BadJournal);
        assert_eq!(r(br#"{"MESSAGE":null}"#), RejectReason::BadJournal);
        assert_eq!(r(br#"{"MESSAGE":[300]}"#), RejectReason::BadJournal);
        assert_eq!(
            r(br#"{"SYSLOG_IDENTIFIER":"sshd","MESSAGE":"Accepted publickey"}"#),
            RejectReason::NotAServerLine
        );
        assert_eq!(
            r(br#"{"_COMM":"dhcpd","MESSAGE":"Listening on LPF/eth0"}"#),
            RejectReason::Unrecognised
        );
    }
}
