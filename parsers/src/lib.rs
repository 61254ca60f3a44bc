//! Parsers for nmt: DHCP/TFTP server log lines and the noderange syntax.
//!
//! Everything here is pure: bytes or text in, typed values or a
//! descriptive rejection out, with no I/O, no clock and no time-zone
//! arithmetic.
//!
//! # Log lines
//!
//! [`parse_line`] turns one line a DHCP or TFTP server wrote into a
//! [`LogLine`]: the envelope's [`Stamp`], host, program and pid, and a
//! [`Record`]:
//!
//! * [`Record::Dhcp`]: a [`Dhcp`] message from ISC dhcpd, dnsmasq or Kea
//!   DHCPv4 ([`DhcpKind`]: discover, offer, request, ack, nak, release,
//!   inform, decline, BOOTP, "no free leases", ...), with the client's MAC
//!   normalised to 6 bytes;
//! * [`Record::ClientInfo`]: a dnsmasq `--log-dhcp` detail line (vendor
//!   class, user class, tags, client name, boot file) tied to its DHCP
//!   line by transaction id; see [`arch_from_vendor_class`];
//! * [`Record::Tftp`]: a [`Tftp`] request, transfer, miss or error from
//!   tftpd-hpa or dnsmasq.
//!
//! Envelopes: the line's program is its first syslog tag (`prog[pid]:`),
//! whatever precedes it: RFC 3164 (with or without a host, a `<PRI>`, a
//! year as OpenWrt's `logread` writes it, month names in other locales),
//! rsyslog's high-precision RFC 3339 format, journalctl's `short-iso` and
//! `short-precise`, docker's `--timestamps`, remote collectors' fields
//! (the sender's address, `facility.level`, tabs), or nothing at all. The
//! time is read from what precedes the tag when it can be (else `None`).
//! RFC 5424 and Kea's own log-file format are read by their own rules, and
//! a line with no tag is a bare message (`dhcpd -d`). For
//! `journalctl -o json` output use [`parse_journal_json`], which gives a
//! [`JournalEntry`] (owned, with its cursor) whose
//! [`log_line`](JournalEntry::log_line) has the same shape.
//!
//! A line nmt does not read is a [`Reject`] with a [`RejectReason`] to
//! count, never an error that stops ingest. The parsers never panic, and
//! [`parse_line`] never allocates. Strings taken from the line (host
//! names, file names, vendor classes, interface names) are returned as raw
//! bytes, unvalidated and unescaped: they are chosen by whoever is on the
//! provisioning network, and the caller validates them before use.
//!
//! ```
//! use nmt_parsers::{parse_line, DhcpKind, Record, Stamp};
//!
//! let line = b"Nov 20 02:05:11 boot1 dhcpd[812]: DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 (pc-42) via eth0";
//! let parsed = parse_line(line).unwrap();
//! assert!(matches!(parsed.stamp, Some(Stamp::NoYear { month: 11, day: 20, .. })));
//! let Record::Dhcp(d) = parsed.record else { panic!() };
//! assert_eq!(d.kind, DhcpKind::Ack);
//! assert_eq!(d.mac, Some([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
//! assert_eq!(d.hostname, Some(&b"pc-42"[..]));
//! ```
//!
//! # Noderanges
//!
//! The noderange parser turns what an admin types on the command line
//! (`node[001-300]`, `rack[1-2]n[01-04]`, `52:54:00:aa:bb:01`, `@web`, ...)
//! into a [`NodeRange`]. See [`parse_noderange`].

mod dnsmasq;
mod envelope;
mod isc;
mod journal;
mod kea;
mod leases;
mod logline;
mod noderange;
mod scan;
mod tftpd;

pub use journal::{JournalEntry, MAX_JOURNAL_LINE_LEN, parse_journal_json};
pub use leases::{
    Lease, LeasesError, parse_dnsmasq_leases, parse_isc_leases, parse_kea_leases, parse_leases,
};
pub use logline::{
    ClientInfo, Dhcp, DhcpKind, Info, LogLine, MAX_LINE_LEN, Record, Reject, RejectReason, Server,
    Stamp, Tftp, TftpKind, arch_from_vendor_class, parse_line,
};
pub use noderange::{NodeRange, NodeRangeError, RangeItem, parse_noderange};
