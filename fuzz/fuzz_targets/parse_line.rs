//! Every parser of `nmt-parsers` on arbitrary bytes: the envelope scanner and the message
//! parsers behind it (`parse_line`, on the input and on each of its lines), journald's JSON
//! records, DHCP servers' leases files, the noderange syntax and PXE vendor classes.
//!
//! Beyond "no panic", what a parser returns must hold: every field it takes from the line is
//! a piece of the line (a TFTP error's detail at least words of it), a time stamp is a time, a MAC or an IPv4 address is written in the
//! input, the same input parses the same way twice, a journal record that parses has a
//! message that parses, a leases file names each address once, a noderange expands to words
//! of its syntax and at most 100,000 of them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nmt_parsers::{
    Info, LogLine, MAX_LINE_LEN, NodeRangeError, RangeItem, Record, RejectReason, Stamp,
    arch_from_vendor_class, parse_dnsmasq_leases, parse_isc_leases, parse_journal_json,
    parse_leases, parse_line, parse_noderange,
};

fuzz_target!(|data: &[u8]| {
    check_line(data);
    check_journal(data);
    if data.contains(&b'\n') {
        for line in data.split(|&b| b == b'\n') {
            check_line(line);
            check_journal(line);
        }
    }
    check_leases(data);
    if let Ok(text) = std::str::from_utf8(data) {
        check_noderange(text);
    }
    if let Some(arch) = arch_from_vendor_class(data) {
        assert!(data.starts_with(b"PXEClient:Arch:") || data.starts_with(b"HTTPClient:Arch:"));
        assert!(arch.to_string().len() <= 5);
    }
});

fn check_line(line: &[u8]) {
    let parsed = parse_line(line);
    assert_eq!(
        parsed,
        parse_line(line),
        "the same line parses the same way"
    );
    if line.len() > MAX_LINE_LEN {
        assert_eq!(
            parsed.map(|_| ()).unwrap_err().reason,
            RejectReason::TooLong
        );
        return;
    }
    let Ok(l) = parsed else { return };
    if let Some(stamp) = l.stamp {
        check_stamp(stamp);
        assert!(
            !matches!(stamp, Stamp::UnixMicros(_)),
            "only journald gives those"
        );
    }
    check_fields(line, &l);
}

/// Every field of a parsed line is a piece of `text`, and its MAC and addresses are written
/// there.
fn check_fields(text: &[u8], l: &LogLine<'_>) {
    for piece in [l.host, l.program].into_iter().flatten() {
        assert_within(text, piece);
    }
    match l.record {
        Record::Dhcp(d) => {
            for piece in [d.hostname, d.via, d.note, d.client_id]
                .into_iter()
                .flatten()
            {
                assert_within(text, piece);
            }
            if let Some(mac) = d.mac {
                assert!(mac_written(text, mac), "MAC {mac:02x?} is not in the line");
            }
            if let Some(ip) = d.ip {
                assert!(ipv4_written(text, ip.octets()), "{ip} is not in the line");
            }
        }
        Record::ClientInfo(c) => match c.info {
            Info::VendorClass(s)
            | Info::UserClass(s)
            | Info::Tags(s)
            | Info::ClientName(s)
            | Info::BootFile(s)
            | Info::Other(s) => assert_within(text, s),
            _ => {}
        },
        Record::Tftp(t) => {
            if let Some(file) = t.file {
                assert_within(text, file);
            }
            // dnsmasq's details are a few words of the line, written once in the parser.
            if let Some(detail) = t.detail.filter(|d| !d.is_empty()) {
                assert!(
                    text.windows(detail.len()).any(|w| w == detail),
                    "{:?} is not in the line",
                    String::from_utf8_lossy(detail)
                );
            }
            if let Some(ip) = t.peer {
                assert!(ipv4_written(text, ip.octets()), "{ip} is not in the line");
            }
        }
    }
}

fn check_stamp(stamp: Stamp) {
    let (month, day, hour, minute, second, nanos) = match stamp {
        Stamp::NoYear {
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        } => (month, day, hour, minute, second, nanos),
        Stamp::Full {
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset_seconds,
            ..
        } => {
            assert!(
                offset_seconds.is_none_or(|o| o.abs() < 24 * 3600),
                "{stamp:?}"
            );
            (month, day, hour, minute, second, nanos)
        }
        Stamp::UnixMicros(_) => return,
    };
    assert!((1..=12).contains(&month), "{stamp:?}");
    assert!((1..=31).contains(&day), "{stamp:?}");
    assert!(hour < 24 && minute < 60 && second <= 60, "{stamp:?}");
    assert!(nanos < 1_000_000_000, "{stamp:?}");
}

fn check_journal(line: &[u8]) {
    let Ok(entry) = parse_journal_json(line) else {
        return;
    };
    assert_eq!(parse_journal_json(line).as_ref(), Ok(&entry));
    // Documented: an entry parse_journal_json returns always parses.
    let l = entry
        .log_line()
        .unwrap_or_else(|r| panic!("a journal entry that does not parse: {r}"));
    assert_eq!(l.stamp, entry.realtime_micros.map(Stamp::UnixMicros));
    check_fields(
        &entry.message,
        &LogLine {
            host: None,
            program: None,
            ..l
        },
    );
}

fn check_leases(text: &[u8]) {
    let isc = parse_isc_leases(text);
    let dnsmasq = parse_dnsmasq_leases(text);
    match parse_leases(text) {
        Ok(("dhcpd", leases)) => assert_eq!(leases, isc),
        Ok(("dnsmasq", leases)) => assert_eq!(leases, dnsmasq),
        Ok((other, _)) => panic!("a leases file of kind {other:?}"),
        Err(e) => {
            assert!(
                isc.is_empty() && dnsmasq.is_empty(),
                "refused with leases: {e}"
            );
            assert!(!e.to_string().is_empty());
        }
    }
    // One lease an address, in the file's order.
    for pair in isc.windows(2) {
        assert!(pair[0].offset < pair[1].offset);
    }
    let mut ips: Vec<_> = isc.iter().map(|l| l.ip).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), isc.len(), "an address leased twice");
    for l in &isc {
        let at = usize::try_from(l.offset).unwrap();
        assert!(text[at..].starts_with(b"lease"), "a lease at {at}");
    }
    for pair in dnsmasq.windows(2) {
        assert!(pair[0].offset < pair[1].offset);
    }
    for l in isc.iter().chain(&dnsmasq) {
        let rest = &text[usize::try_from(l.offset).unwrap()..];
        assert!(
            mac_written(rest, l.mac),
            "MAC {:02x?} is not in the file",
            l.mac
        );
        assert!(
            ipv4_written(rest, l.ip.octets()),
            "{} is not in the file",
            l.ip
        );
        if let Some(h) = l
            .hostname
            .as_deref()
            .filter(|h| !h.is_empty() && h.len() <= 64)
        {
            assert!(
                rest.windows(h.len()).any(|w| w == h),
                "host name not in the file"
            );
        }
    }
}

/// At most this many names from one noderange (the parser's own limit).
const MAX_NAMES: usize = 100_000;

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '.' | '_')
}

fn check_noderange(input: &str) {
    let columns = input.chars().count() + 1;
    match parse_noderange(input) {
        Ok(range) => {
            assert!(!range.items.is_empty());
            let mut names = 0;
            for item in &range.items {
                match item {
                    RangeItem::Literal(w) => {
                        assert!(!w.is_empty() && w.chars().all(is_word_char), "{w:?}");
                        assert!(input.contains(w.as_str()));
                        names += 1;
                    }
                    RangeItem::Group(g) => {
                        assert!(!g.is_empty() && g.chars().all(is_word_char), "{g:?}");
                        assert!(input.contains(&format!("@{g}")));
                    }
                    RangeItem::Expanded { pattern, words } => {
                        assert!(input.contains(pattern.as_str()), "{pattern:?}");
                        assert!(!words.is_empty(), "{pattern:?} expands to nothing");
                        for w in words {
                            assert!(!w.is_empty() && w.chars().all(is_word_char), "{w:?}");
                        }
                        names += words.len();
                    }
                }
            }
            assert!(names <= MAX_NAMES, "{names} names");
            let _ = (range.as_groups(), range.as_single_group());
        }
        Err(e) => {
            let column = match &e {
                NodeRangeError::EmptyItem { column, .. }
                | NodeRangeError::UnexpectedChar { column, .. }
                | NodeRangeError::UnexpectedEnd { column, .. }
                | NodeRangeError::UnclosedBracket { column, .. }
                | NodeRangeError::EmptyGroupName { column, .. }
                | NodeRangeError::ReversedRange { column, .. }
                | NodeRangeError::NumberTooLarge { column, .. }
                | NodeRangeError::TooLarge { column, .. } => Some(*column),
                _ => None,
            };
            if let Some(c) = column {
                assert!((1..=columns).contains(&c), "column {c} of {columns}: {e}");
            }
            assert!(!e.to_string().is_empty());
        }
    }
}

/// `piece` is a sub-slice of `text` (a parser returns pieces of its input, never copies).
fn assert_within(text: &[u8], piece: &[u8]) {
    let (start, end) = (text.as_ptr() as usize, text.as_ptr() as usize + text.len());
    let p = piece.as_ptr() as usize;
    assert!(
        piece.is_empty() || (p >= start && p + piece.len() <= end),
        "{:?} is not a piece of the input",
        String::from_utf8_lossy(piece)
    );
}

/// The numbers of each run of `sep`-separated groups of digits (in `radix`, at most
/// `width` of them) in `text`: `None` for a group that is not one.
fn groups(text: &[u8], sep: u8, radix: u32, width: usize) -> Vec<Vec<Option<u32>>> {
    let is_digit = |c: u8| (c as char).is_digit(radix);
    text.split(|&c| c != sep && !is_digit(c))
        .filter(|run| !run.is_empty())
        .map(|run| {
            run.split(|&c| c == sep)
                .map(|g| {
                    (!g.is_empty() && g.len() <= width)
                        .then(|| u32::from_str_radix(std::str::from_utf8(g).ok()?, radix).ok())
                        .flatten()
                })
                .collect()
        })
        .collect()
}

/// `want` is written in `text` as consecutive groups of one of its runs.
fn written(runs: &[Vec<Option<u32>>], want: &[u32]) -> bool {
    runs.iter().any(|run| {
        run.windows(want.len())
            .any(|w| w.iter().zip(want).all(|(g, v)| *g == Some(*v)))
    })
}

/// The MAC is in `text` as six `:`-separated groups of one or two hex digits (alone, or
/// inside a DHCPv6 DUID).
fn mac_written(text: &[u8], mac: [u8; 6]) -> bool {
    written(&groups(text, b':', 16, 2), &mac.map(u32::from))
}

/// The address is in `text` as four `.`-separated groups of one to three decimal digits.
fn ipv4_written(text: &[u8], octets: [u8; 4]) -> bool {
    written(&groups(text, b'.', 10, 3), &octets.map(u32::from))
}
