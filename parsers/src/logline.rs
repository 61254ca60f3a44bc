//! The parsed shape of one server log line, and [`parse_line`], which finds
//! the envelope and hands the message to the parser of the server that
//! wrote it.

use std::net::Ipv4Addr;

use crate::{dnsmasq, envelope, isc, kea, tftpd};

/// Lines longer than this many bytes are rejected with
/// [`RejectReason::TooLong`] before any parsing. Real DHCP and TFTP lines
/// are well under 1 KiB (dnsmasq caps its messages at 1 KiB, rsyslog at
/// 8 KiB by default).
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// One log line, parsed. Every byte slice borrows from the input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The time the envelope gives, as written. `None` for a bare line
    /// (e.g. `dhcpd -d` on stderr, which writes no time).
    pub stamp: Option<Stamp>,
    /// The host the envelope names, raw. `None` when the envelope has no
    /// host (bare lines, dnsmasq's own `log-facility=` file, Kea's file).
    pub host: Option<&'a [u8]>,
    /// The syslog tag's program name, raw (`dhcpd`, `dnsmasq-dhcp`,
    /// `in.tftpd`, ...). For a Kea log file, the logger's root
    /// (`kea-dhcp4`). `None` for a bare line.
    pub program: Option<&'a [u8]>,
    /// The process id in the tag (`dhcpd[812]`), when there is one.
    pub pid: Option<u32>,
    /// What the message says.
    pub record: Record<'a>,
}

/// A time stamp, exactly as precise as the line wrote it. The parser never
/// guesses a year or a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stamp {
    /// RFC 3164 (`Nov 20 02:05:11`): no year and no zone. The caller infers
    /// the year (see the replay crate) and uses the host's local zone.
    NoYear {
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        nanos: u32,
    },
    /// A full date: RFC 3339 / RFC 5424 / rsyslog high precision, or Kea's
    /// own file format (`2026-11-20 02:05:11.123`, local time).
    Full {
        year: i16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        nanos: u32,
        /// Offset from UTC in seconds (`Z` is `Some(0)`); `None` when the
        /// line gives no zone (local time).
        offset_seconds: Option<i32>,
    },
    /// journald's `__REALTIME_TIMESTAMP`: microseconds since the Unix epoch,
    /// UTC.
    UnixMicros(i64),
}

/// What a recognised line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// A DHCP message a server received or sent, or its refusal to answer.
    Dhcp(Dhcp<'a>),
    /// A dnsmasq `--log-dhcp` detail line, tied to its DHCP line by `xid`.
    ClientInfo(ClientInfo<'a>),
    /// A TFTP request, transfer, miss or error.
    Tftp(Tftp<'a>),
}

/// One DHCP event as a server logged it.
///
/// `hostname`, `via`, `note` and `client_id` are the raw bytes of the line:
/// never validated, unescaped or trusted. A DHCP client chooses its own
/// hostname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dhcp<'a> {
    pub server: Server,
    pub kind: DhcpKind,
    /// The client's Ethernet address, normalised to 6 bytes. `None` when the
    /// line gives none, or gives a hardware address that is not 6-byte
    /// Ethernet (InfiniBand, a client id in its place, `<no identifier>`).
    pub mac: Option<[u8; 6]>,
    /// The address the message is about: offered, acknowledged, requested,
    /// released, declined or NAKed; for `DHCPINFORM` the client's own.
    pub ip: Option<Ipv4Addr>,
    /// The client's host name as the server printed it: ISC's
    /// `(name)` (the client's option 12, or the literal
    /// `Hostname Unsuitable for Printing`), dnsmasq's name on `DHCPACK`, the
    /// `host` declaration's name on ISC's `BOOTREPLY for`.
    pub hostname: Option<&'a [u8]>,
    /// The receiving interface (`eth0`), or for ISC the relay address when
    /// the packet was relayed.
    pub via: Option<&'a [u8]>,
    /// The transaction id: dnsmasq `--log-dhcp` (decimal on the line) and
    /// Kea (`tid=0x...`). ISC dhcpd does not log it.
    pub xid: Option<u32>,
    /// The server's comment, without a trailing `.`: ISC's text after
    /// `via X: ` (`wrong network`, `unknown lease 10.0.0.50`,
    /// `ignored (not authoritative)`, `network 10.0.0.0/24: no free leases`,
    /// `abandoned`) or in parentheses after a release (`found`,
    /// `not found`); dnsmasq's error (`wrong address`,
    /// `no address available`) or, on a `PXE` line, the boot file or
    /// `proxy`; Kea's reason on a failure.
    pub note: Option<&'a [u8]>,
    /// The client identifier as printed: ISC's `uid` (hex, or a quoted,
    /// escaped string), Kea's `cid=[...]` contents.
    pub client_id: Option<&'a [u8]>,
}

/// Which server wrote a DHCP line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    IscDhcpd,
    Dnsmasq,
    Kea,
}

/// What happened. Refusals keep the kind of the message refused (a
/// `DHCPREQUEST` answered "wrong network" is a `Request` with a `note`),
/// except running out of addresses, which is [`DhcpKind::NoFreeLeases`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DhcpKind {
    Discover,
    Offer,
    Request,
    Ack,
    Nak,
    Release,
    Inform,
    Decline,
    /// ISC `BOOTREQUEST` (a BOOTP client asked).
    BootRequest,
    /// ISC `BOOTREPLY`, dnsmasq `BOOTP(...)` (a BOOTP client was answered).
    BootReply,
    /// The server had no address for the client: ISC `no free leases` /
    /// `peer holds all free leases` / `no available leases`, dnsmasq
    /// `no address available`, Kea `ALLOC_ENGINE_V4_ALLOC_FAIL*`.
    NoFreeLeases,
    /// dnsmasq `PXE(...)`: a proxy-DHCP / PXE boot-server answer.
    Pxe,
    /// Kea `DHCP4_QUERY_LABEL`: a packet from this client arrived, type not
    /// stated.
    Received,
}

/// A dnsmasq `--log-dhcp` detail line: `<xid> <what>: <value>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo<'a> {
    pub xid: u32,
    pub info: Info<'a>,
}

/// The detail a [`ClientInfo`] line carries; values are raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Info<'a> {
    /// `vendor class: PXEClient:Arch:00007:UNDI:003016` (see
    /// [`arch_from_vendor_class`](crate::arch_from_vendor_class)).
    VendorClass(&'a [u8]),
    /// `user class: iPXE`.
    UserClass(&'a [u8]),
    /// `tags: known, efi64, br0`.
    Tags(&'a [u8]),
    /// `client provides name: pc-42`.
    ClientName(&'a [u8]),
    /// `bootfile name: pxelinux.0`.
    BootFile(&'a [u8]),
    /// Any other detail line, whole after the xid (`requested options: ...`,
    /// `sent size: ...`, `available DHCP range: ...`, `next server: ...`).
    Other(&'a [u8]),
}

/// One TFTP event (tftpd-hpa or dnsmasq's TFTP server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tftp<'a> {
    pub kind: TftpKind,
    /// The file, raw, as the server printed it: the client's requested name
    /// for tftpd-hpa (before any remapping), the full path under the TFTP
    /// root for dnsmasq. `None` when the line names no file.
    pub file: Option<&'a [u8]>,
    /// The client, when it is IPv4 or IPv4-mapped IPv6.
    pub peer: Option<Ipv4Addr>,
    /// For errors: the server's or client's message, raw.
    pub detail: Option<&'a [u8]>,
}

/// What a TFTP line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TftpKind {
    /// A read request (tftpd-hpa `RRQ from`).
    Request,
    /// A write request (tftpd-hpa `WRQ from`).
    WriteRequest,
    /// A file was sent completely (dnsmasq `sent`).
    Sent,
    /// The requested file does not exist.
    NotFound,
    /// A transfer failed, the client sent an error, or the server hit one.
    Error,
}

/// Why a line was not turned into a [`LogLine`]. The caller counts these;
/// none of them stops ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{reason}")]
pub struct Reject {
    pub reason: RejectReason,
}

/// The reasons a line is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    #[error("empty line")]
    Empty,
    #[error("line longer than the limit")]
    TooLong,
    /// The line starts like a syslog envelope whose time stamp or header is
    /// broken.
    #[error("malformed syslog envelope")]
    BadEnvelope,
    /// The envelope names a program that is not a DHCP or TFTP server nmt
    /// reads (or has no program at all).
    #[error("not a line from a DHCP or TFTP server nmt reads")]
    NotAServerLine,
    /// From a server nmt reads, but a message it does not turn into events
    /// (start-up banners, DHCPv6, debug chatter, ...).
    #[error("server line nmt does not recognise")]
    Unrecognised,
    /// A recognised message with a field that does not parse (an address
    /// that is not one).
    #[error("recognised message with a malformed field")]
    Malformed,
    /// Not a `journalctl -o json` record, or one without a usable `MESSAGE`.
    #[error("not a journald JSON record")]
    BadJournal,
}

impl RejectReason {
    /// A short, stable name for counters and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::TooLong => "too_long",
            RejectReason::BadEnvelope => "bad_envelope",
            RejectReason::NotAServerLine => "not_a_server_line",
            RejectReason::Unrecognised => "unrecognised",
            RejectReason::Malformed => "malformed",
            RejectReason::BadJournal => "bad_journal",
        }
    }
}

impl From<RejectReason> for Reject {
    fn from(reason: RejectReason) -> Self {
        Reject { reason }
    }
}

/// Parses one log line (without its trailing `\n`; a trailing `\r` and
/// trailing blanks are ignored).
///
/// The envelope may be RFC 3164 (`Nov 20 02:05:11 host dhcpd[812]: ...`,
/// with or without the host, with or without a `<PRI>`), RFC 5424
/// (`<30>1 2026-11-20T02:05:11.123456+01:00 host dhcpd 812 - - ...`),
/// rsyslog's high-precision format (`2026-11-20T02:05:11.123456+00:00 host
/// dhcpd[812]: ...`), Kea's own log file format
/// (`2026-11-20 02:05:11.123 INFO  [kea-dhcp4.leases/812.140234] ...`), or
/// none at all (a bare message, as `dhcpd -d` writes). When the envelope
/// names a program, only that server's messages are accepted from it;
/// other programs are [`RejectReason::NotAServerLine`].
///
/// Never panics and never allocates. For `journalctl -o json` lines use
/// [`parse_journal_json`](crate::parse_journal_json).
pub fn parse_line(line: &[u8]) -> Result<LogLine<'_>, Reject> {
    if line.len() > MAX_LINE_LEN {
        return Err(RejectReason::TooLong.into());
    }
    let line = crate::scan::trim_end(line);
    if line.is_empty() {
        return Err(RejectReason::Empty.into());
    }
    if let Some(row) = crate::kea::lease_row(line) {
        return row.map_err(Into::into);
    }
    let env = envelope::parse(line)?;
    let record = match parse_message(env.program, env.body) {
        // A time stamp and then no program: not a server's line (`-- MARK --`).
        Err(RejectReason::Unrecognised) if env.program.is_none() && env.stamp.is_some() => {
            return Err(RejectReason::NotAServerLine.into());
        }
        other => other?,
    };
    Ok(LogLine {
        stamp: env.stamp,
        host: env.host,
        program: env.program,
        pid: env.pid,
        record,
    })
}

/// The family of server a program name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Isc,
    Dnsmasq,
    Kea,
    Tftpd,
    /// No program named: recognise the message by its shape.
    Any,
}

fn family(program: Option<&[u8]>) -> Result<Family, RejectReason> {
    let Some(program) = program else {
        return Ok(Family::Any);
    };
    // A tag may be a path (`/usr/sbin/dhcpd[812]:`).
    let base = if program.first() == Some(&b'/') {
        crate::scan::rpos(program, b'/').map_or(program, |i| &program[i + 1..])
    } else {
        program
    };
    if base.starts_with(b"dnsmasq") {
        Ok(Family::Dnsmasq)
    } else if base.starts_with(b"dhcpd") {
        Ok(Family::Isc)
    } else if base.starts_with(b"kea-dhcp4") || base.starts_with(b"kea-dhcp6") {
        Ok(Family::Kea)
    } else if base.ends_with(b"tftpd") || base.starts_with(b"tftpd") {
        Ok(Family::Tftpd)
    } else {
        Err(RejectReason::NotAServerLine)
    }
}

/// Parses a message body (what follows the envelope), given the program the
/// envelope named.
pub(crate) fn parse_message<'a>(
    program: Option<&[u8]>,
    body: &'a [u8],
) -> Result<Record<'a>, RejectReason> {
    let body = crate::scan::trim_start(body);
    if body.is_empty() {
        return Err(RejectReason::Unrecognised);
    }
    match family(program)? {
        Family::Isc => isc::parse(body).map(Record::Dhcp),
        Family::Dnsmasq => dnsmasq::parse(body),
        Family::Kea => kea::parse(body).map(Record::Dhcp),
        Family::Tftpd => tftpd::parse(body).map(Record::Tftp),
        Family::Any => guess(body),
    }
}

/// Recognises a message with no program name by its first bytes.
fn guess(body: &[u8]) -> Result<Record<'_>, RejectReason> {
    let first = body[0];
    if first.is_ascii_digit() {
        return dnsmasq::parse(body);
    }
    if kea::looks_like(body) {
        return kea::parse(body).map(Record::Dhcp);
    }
    if body.starts_with(b"DHCP") || body.starts_with(b"BOOT") || body.starts_with(b"PXE(") {
        // dnsmasq writes `DHCPACK(eth0)`, ISC `DHCPACK on`.
        let end = body
            .iter()
            .position(|&c| c == b' ' || c == b'(')
            .unwrap_or(body.len());
        return if body.get(end) == Some(&b'(') {
            dnsmasq::parse(body)
        } else {
            isc::parse(body).map(Record::Dhcp)
        };
    }
    match tftpd::parse(body) {
        Err(RejectReason::Unrecognised) => dnsmasq::parse_tftp(body).map(Record::Tftp),
        other => other.map(Record::Tftp),
    }
}

/// The PXE client architecture (RFC 4578 option 93, IANA "Processor
/// Architecture Types") from a vendor class such as
/// `PXEClient:Arch:00007:UNDI:003016` (→ `Some(7)`, x64 UEFI) or
/// `HTTPClient:Arch:00016` (→ `Some(16)`). `None` for other vendor classes
/// (`udhcp 1.35.0`, `MSFT 5.0`) or a malformed number.
pub fn arch_from_vendor_class(vc: &[u8]) -> Option<u16> {
    let rest = vc
        .strip_prefix(b"PXEClient:Arch:")
        .or_else(|| vc.strip_prefix(b"HTTPClient:Arch:"))?;
    let end = crate::scan::pos(rest, b':').unwrap_or(rest.len());
    let digits = &rest[..end];
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    crate::scan::dec_u32(digits).and_then(|v| u16::try_from(v).ok())
}
