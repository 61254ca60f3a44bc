//! Syslog envelopes: RFC 3164 (with or without a host, with or without a
//! `<PRI>`), RFC 5424, rsyslog's high-precision (RFC 3339) format, Kea's
//! own log-file format, and no envelope at all.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{take, take_while1},
    character::complete::{char, one_of},
    combinator::{map, map_opt, opt, verify},
};

use crate::logline::{RejectReason, Stamp};
use crate::scan::{dec_u32, token, trim_start};

/// The parts of a line around its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    pub stamp: Option<Stamp>,
    pub host: Option<&'a [u8]>,
    pub program: Option<&'a [u8]>,
    pub pid: Option<u32>,
    pub body: &'a [u8],
}

type R<'a, T> = IResult<&'a [u8], T, ()>;

/// At most this many bytes and fields precede a program tag: an envelope
/// is a few short fields, and a tag quoted further on in a message is not
/// the line's program.
const MAX_PREFIX: usize = 320;
const MAX_FIELDS: usize = 16;

/// Splits a line (already trimmed at the end, not empty) into envelope and
/// message.
///
/// The line's program is its first syslog tag (`prog[pid]:` or `prog:`)
/// within the first [`MAX_FIELDS`] fields, whatever precedes it: a time in
/// any of the shapes [`stamp_at`] reads, host names, the sender's address,
/// `facility.level`, a `<PRI>`, tabs. The time is read from what precedes
/// the tag when it can be; a line with no tag is a bare message, perhaps
/// after a time stamp. RFC 5424 and Kea's own file format have no tag and
/// are read by their own rules.
pub(crate) fn parse(line: &[u8]) -> Result<Envelope<'_>, RejectReason> {
    let (rest, pri) = match pri(line) {
        Ok((rest, p)) => (rest, Some(p)),
        Err(_) if line.first() == Some(&b'<') && line.get(1).is_some_and(u8::is_ascii_digit) => {
            return Err(RejectReason::BadEnvelope);
        }
        Err(_) => (line, None),
    };

    // RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]`.
    if let Some(after_version) = rest.strip_prefix(b"1 ")
        && (pri.is_some() || full_stamp(after_version).is_ok())
    {
        return rfc5424(after_version);
    }

    // Kea's own file: `2026-11-20 02:05:11.123 INFO  [kea-dhcp4.leases/812.1] ...`.
    if looks_like_date(rest)
        && let Ok((after, (stamp, true))) = full_stamp(rest)
        && let Some(after) = after.strip_prefix(b" ")
        && let Some(env) = kea_file(stamp, after)
    {
        return Ok(env);
    }

    // The common case first: `Nov 20 02:05:11 [host ]prog[pid]: msg`.
    if month(rest).is_some()
        && rest.get(3) == Some(&b' ')
        && let Ok((after, stamp)) = stamp_3164(rest)
        && let Some(after) = after.strip_prefix(b" ")
        && let Some(env) = host_and_tag(stamp, after)
    {
        return Ok(env);
    }

    if let Some(tag) = find_tag(line) {
        let (stamp, host) = read_prefix(&line[..tag.start])?;
        return Ok(Envelope {
            stamp,
            host,
            program: Some(tag.program),
            pid: tag.pid,
            body: tag.body,
        });
    }

    // No tag: a bare message (`dhcpd -d`, `docker logs`), perhaps after a
    // time stamp (`docker logs --timestamps`).
    let rest = trim_start(rest);
    let (stamp, body) = match stamp_at(rest) {
        Some((stamp, used)) => (Some(stamp), trim_start(&rest[used..])),
        None if strict_shape(rest) => return Err(RejectReason::BadEnvelope),
        None => (None, rest),
    };
    Ok(Envelope {
        stamp,
        host: None,
        program: None,
        pid: None,
        body,
    })
}

/// After an RFC 3164 stamp: `host prog[pid]: msg` or `prog[pid]: msg`, or
/// `None` for any other shape (the general scanner reads those).
#[inline(always)]
fn host_and_tag(stamp: Stamp, s: &[u8]) -> Option<Envelope<'_>> {
    let (first, rest) = token(s);
    if let Some((program, pid)) = tag_token(first) {
        return Some(Envelope {
            stamp: Some(stamp),
            host: None,
            program: Some(program),
            pid,
            body: rest,
        });
    }
    if !is_host(first) || first.contains(&b'\t') {
        return None;
    }
    let (second, rest) = token(rest);
    let (program, pid) = tag_token(second)?;
    Some(Envelope {
        stamp: Some(stamp),
        host: Some(first),
        program: Some(program),
        pid,
        body: rest,
    })
}

/// A program tag found in a line.
struct Tag<'a> {
    /// Where the tag's field starts (what precedes it is the envelope).
    start: usize,
    program: &'a [u8],
    pid: Option<u32>,
    body: &'a [u8],
}

#[inline(always)]
fn is_sep(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// The first field that is a syslog tag, unless a message starts first.
#[inline]
fn find_tag(line: &[u8]) -> Option<Tag<'_>> {
    let limit = line.len().min(MAX_PREFIX);
    let mut i = 0;
    for _ in 0..MAX_FIELDS {
        while i < line.len() && is_sep(line[i]) {
            i += 1;
        }
        if i >= limit {
            return None;
        }
        let start = i;
        while i < line.len() && !is_sep(line[i]) {
            i += 1;
        }
        let field = &line[start..i];
        if field.last() == Some(&b':') {
            // `<30>dhcpd[812]:`: a PRI glued to the tag.
            let (skip, t) = match field.strip_prefix(b"<") {
                Some(r) => match crate::scan::pos(r, b'>') {
                    Some(k) => (k + 2, &r[k + 1..]),
                    None => (0, field),
                },
                None => (0, field),
            };
            if let Some((program, pid)) = tag_token(t) {
                let body = line.get(i + 1..).unwrap_or_default();
                return Some(Tag {
                    start: start + skip,
                    program,
                    pid,
                    body,
                });
            }
        } else if starts_message(field, &line[i..]) {
            return None;
        }
    }
    None
}

/// True when `field` is the first word of a server message (so the line
/// has no tag before it): ISC's `DHCPACK on`, dnsmasq's `DHCPACK(eth0)`,
/// Kea's ids, tftpd-hpa's `RRQ from`, or a dnsmasq transaction number.
#[inline]
fn starts_message(field: &[u8], after: &[u8]) -> bool {
    match field.first() {
        Some(b'D' | b'B' | b'P' | b'R' | b'W' | b'A') => {}
        Some(b'0'..=b'9') => return xid_then_detail(field, after),
        _ => return false,
    }
    if field.starts_with(b"DHCP4_")
        || field.starts_with(b"DHCP6_")
        || field.starts_with(b"ALLOC_ENGINE_")
    {
        return true;
    }
    let word_end = field
        .iter()
        .position(|c| !(c.is_ascii_uppercase() || *c == b'-'))
        .unwrap_or(field.len());
    if word_end < 3 {
        return false;
    }
    if field.get(word_end) == Some(&b'(') {
        return true;
    }
    if word_end != field.len() {
        return false;
    }
    let next = token(trim_start(after)).0;
    match field {
        b"RRQ" | b"WRQ" => next == b"from",
        _ if field.starts_with(b"DHCP") || field.starts_with(b"BOOT") => {
            matches!(next, b"from" | b"on" | b"for" | b"of" | b"to")
        }
        _ => false,
    }
}

/// dnsmasq's `--log-dhcp` transaction number before its message
/// (`3173129068 vendor class: ...`, `3173129068 DHCPACK(br0) ...`).
#[inline]
fn xid_then_detail(field: &[u8], after: &[u8]) -> bool {
    if field.len() > 10 || !field.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let next = token(trim_start(after)).0;
    if next.first().is_some_and(u8::is_ascii_uppercase) {
        return crate::scan::pos(next, b'(').is_some();
    }
    matches!(
        next,
        b"vendor"
            | b"user"
            | b"tags:"
            | b"client"
            | b"bootfile"
            | b"requested"
            | b"available"
            | b"sent"
            | b"next"
            | b"broadcast"
            | b"server"
            | b"static"
            | b"requested options:"
    )
}

/// Reads the time and host from what precedes a tag. The time is the first
/// stamp found at the start of a field; the host is the last field after
/// it that is not a `facility.level`, a `<PRI>` or a separator.
#[inline]
fn read_prefix(prefix: &[u8]) -> Result<(Option<Stamp>, Option<&[u8]>), RejectReason> {
    let mut i = 0;
    let mut first = true;
    let mut found = None;
    while i < prefix.len() {
        while i < prefix.len() && is_sep(prefix[i]) {
            i += 1;
        }
        if i >= prefix.len() {
            break;
        }
        let mut s = &prefix[i..];
        if let Ok((r, _)) = pri(s) {
            s = r;
        }
        if let Some(r) = s.strip_prefix(b"[") {
            s = r;
        }
        let skipped = prefix.len() - i - s.len();
        if let Some((stamp, used)) = stamp_at(s) {
            found = Some((stamp, i + skipped + used));
            break;
        }
        if first && strict_shape(s) {
            return Err(RejectReason::BadEnvelope);
        }
        first = false;
        while i < prefix.len() && !is_sep(prefix[i]) {
            i += 1;
        }
    }
    let Some((stamp, end)) = found else {
        return Ok((None, None));
    };
    let mut host = None;
    let mut rest = &prefix[end.min(prefix.len())..];
    while !rest.is_empty() {
        let r = trim_start(rest);
        let n = r.iter().position(|&c| is_sep(c)).unwrap_or(r.len());
        let field = &r[..n];
        if is_host(field) {
            host = Some(field);
        }
        rest = &r[n..];
    }
    Ok((Some(stamp), host))
}

const FACILITIES: [&[u8]; 20] = [
    b"kern",
    b"user",
    b"mail",
    b"daemon",
    b"auth",
    b"syslog",
    b"lpr",
    b"news",
    b"uucp",
    b"cron",
    b"authpriv",
    b"ftp",
    b"local0",
    b"local1",
    b"local2",
    b"local3",
    b"local4",
    b"local5",
    b"local6",
    b"local7",
];

/// A field that may name the sending host: not `daemon.info`, not a `<PRI>`,
/// not punctuation (`|`, `-`) and not a bare number or a bracket.
#[inline]
fn is_host(f: &[u8]) -> bool {
    let Some(&c) = f.first() else {
        return false;
    };
    if !(c.is_ascii_alphanumeric() || c >= 0x80) || f.last() == Some(&b']') {
        return false;
    }
    if f.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if let Some(dot) = crate::scan::pos(f, b'.') {
        let fac = &f[..dot];
        if FACILITIES.iter().any(|x| x.eq_ignore_ascii_case(fac)) {
            return false;
        }
    }
    true
}

/// A field that starts like a time stamp nmt knows (an English month and a
/// space, or `YYYY-`): when it does not read as one, the envelope is
/// broken rather than foreign.
#[inline]
fn strict_shape(s: &[u8]) -> bool {
    (month(s).is_some() && s.get(3) == Some(&b' ')) || looks_like_date(s)
}

/// A time stamp at the start of `s`, and how many bytes it takes:
///
/// * RFC 3339 / ISO 8601 with `T` or a space, any fraction, a zone or none
///   (`2025-03-03T07:15:09.123456789Z`, journalctl `short-iso`);
/// * RFC 3164 (`Mar  3 07:15:09`, with a fraction for `short-precise`),
///   followed or not by a year (OpenWrt `logread`: `Mon Mar  3 07:15:09
///   2025`, the weekday being a field of its own);
/// * a month name in another locale (`mar 03`, `Okt  3`, `déc. 3`,
///   `мар 3`) or numbered (`3月  3`, `3월  3`).
#[inline]
pub(crate) fn stamp_at(s: &[u8]) -> Option<(Stamp, usize)> {
    let first = *s.first()?;
    let (rest, stamp) = if first.is_ascii_digit() {
        if looks_like_date(s) {
            full_stamp(s).ok().map(|(r, (st, _))| (r, st))?
        } else {
            numbered_month(s)?
        }
    } else if month(s).is_some() && s.get(3) == Some(&b' ') {
        stamp_3164(s).ok()?
    } else {
        local_month(s)?
    };
    let (rest, stamp) = with_year(rest, stamp);
    Some((stamp, s.len() - rest.len()))
}

/// `Mon Mar  3 07:15:09 2025`: a year after an RFC 3164 time.
#[inline]
fn with_year(rest: &[u8], stamp: Stamp) -> (&[u8], Stamp) {
    if let Stamp::NoYear {
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    } = stamp
        && let [b' ', y1, y2, y3, y4, tail @ ..] = rest
        && [y1, y2, y3, y4].iter().all(|c| c.is_ascii_digit())
        && tail.first().is_none_or(|c| is_sep(*c))
    {
        let year = [y1, y2, y3, y4]
            .iter()
            .fold(0i16, |a, c| a * 10 + i16::from(**c - b'0'));
        return (
            tail,
            Stamp::Full {
                year,
                month,
                day,
                hour,
                minute,
                second,
                nanos,
                offset_seconds: None,
            },
        );
    }
    (rest, stamp)
}

/// Month names and abbreviations as `%b` prints them in common locales
/// (lower case, without a trailing `.`).
const MONTHS: [(&str, u8); 66] = [
    ("jan", 1),
    ("janv", 1),
    ("ene", 1),
    ("gen", 1),
    ("sty", 1),
    ("jän", 1),
    ("янв", 1),
    ("feb", 2),
    ("févr", 2),
    ("fév", 2),
    ("fev", 2),
    ("lut", 2),
    ("фев", 2),
    ("mar", 3),
    ("mars", 3),
    ("mär", 3),
    ("mrt", 3),
    ("мар", 3),
    ("apr", 4),
    ("avr", 4),
    ("abr", 4),
    ("kwi", 4),
    ("апр", 4),
    ("may", 5),
    ("mai", 5),
    ("mag", 5),
    ("mei", 5),
    ("maj", 5),
    ("мая", 5),
    ("май", 5),
    ("jun", 6),
    ("juin", 6),
    ("giu", 6),
    ("cze", 6),
    ("июн", 6),
    ("jul", 7),
    ("juil", 7),
    ("lug", 7),
    ("lip", 7),
    ("июл", 7),
    ("aug", 8),
    ("août", 8),
    ("ago", 8),
    ("sie", 8),
    ("авг", 8),
    ("sep", 9),
    ("sept", 9),
    ("set", 9),
    ("wrz", 9),
    ("сен", 9),
    ("oct", 10),
    ("okt", 10),
    ("ott", 10),
    ("out", 10),
    ("paź", 10),
    ("окт", 10),
    ("nov", 11),
    ("lis", 11),
    ("ноя", 11),
    ("dec", 12),
    ("déc", 12),
    ("dic", 12),
    ("dez", 12),
    ("gru", 12),
    ("дек", 12),
    ("des", 12),
];

/// A month name in another locale, then the day and time.
fn local_month(s: &[u8]) -> Option<(&[u8], Stamp)> {
    let end = s.iter().position(|&c| is_sep(c)).unwrap_or(s.len());
    let word = &s[..end];
    let word = word.strip_suffix(b".").unwrap_or(word);
    if word.len() < 3 || word.len() > 8 {
        return None;
    }
    let mut buf = [0u8; 8];
    for (b, c) in buf.iter_mut().zip(word) {
        *b = c.to_ascii_lowercase();
    }
    let lower = &buf[..word.len()];
    let month = MONTHS
        .iter()
        .find(|(name, _)| name.as_bytes() == lower)
        .map(|m| m.1)?;
    day_and_time(month, &s[end..])
}

/// `3月  3 07:15:09` (Chinese, Japanese) and `3월  3 07:15:09` (Korean).
fn numbered_month(s: &[u8]) -> Option<(&[u8], Stamp)> {
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 2 {
        return None;
    }
    let month = dec_u32(&s[..digits])?;
    if !(1..=12).contains(&month) {
        return None;
    }
    let r = &s[digits..];
    let r = r
        .strip_prefix("月".as_bytes())
        .or_else(|| r.strip_prefix("월".as_bytes()))?;
    day_and_time(month as u8, r)
}

/// After a month name: spaces, a day of one or two digits (with `.`, `日`
/// or `일` after it in some locales), a space and `HH:MM:SS[.frac]`.
fn day_and_time(month: u8, s: &[u8]) -> Option<(&[u8], Stamp)> {
    let s = trim_start(s);
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 2 {
        return None;
    }
    let day = dec_u32(&s[..digits])? as u8;
    if !(1..=31).contains(&day) {
        return None;
    }
    let mut r = &s[digits..];
    for suffix in [&b"."[..], "日".as_bytes(), "일".as_bytes()] {
        if let Some(x) = r.strip_prefix(suffix) {
            r = x;
        }
    }
    let r = trim_start(r);
    let (r, (hour, minute, second)) = hms(r).ok()?;
    let (r, nanos) = nanos(r).ok()?;
    Some((
        r,
        Stamp::NoYear {
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        },
    ))
}

/// `<PRI>`: 1 to 3 digits, at most 191.
fn pri(i: &[u8]) -> R<'_, u8> {
    map_opt(
        (
            char('<'),
            take_while1(|c: u8| c.is_ascii_digit()),
            char('>'),
        ),
        |(_, d, _): (char, &[u8], char)| {
            if d.len() > 3 {
                return None;
            }
            dec_u32(d).filter(|&p| p <= 191).map(|p| p as u8)
        },
    )
    .parse(i)
}

fn looks_like_date(s: &[u8]) -> bool {
    s.len() >= 19 && s[..4].iter().all(u8::is_ascii_digit) && s[4] == b'-'
}

/// Exactly `N` ASCII digits as a number.
fn num<const N: usize>(i: &[u8]) -> R<'_, u32> {
    map_opt(take(N), |d: &[u8]| {
        d.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    })
    .parse(i)
}

#[inline(always)]
fn month(m: &[u8]) -> Option<u8> {
    Some(match m.get(..3)? {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// `HH:MM:SS`, range-checked (a leap second is allowed).
#[inline(always)]
fn hms(i: &[u8]) -> R<'_, (u8, u8, u8)> {
    let d = |c: u8| c.wrapping_sub(b'0');
    match i {
        [h1, h2, b':', m1, m2, b':', s1, s2, rest @ ..]
            if [h1, h2, m1, m2, s1, s2].iter().all(|c| c.is_ascii_digit()) =>
        {
            let (h, m, s) = (
                d(*h1) * 10 + d(*h2),
                d(*m1) * 10 + d(*m2),
                d(*s1) * 10 + d(*s2),
            );
            if h < 24 && m < 60 && s <= 60 {
                Ok((rest, (h, m, s)))
            } else {
                Err(nom::Err::Error(()))
            }
        }
        _ => Err(nom::Err::Error(())),
    }
}

/// An optional `.fraction`, as nanoseconds (digits past the ninth are
/// read and dropped).
#[inline(always)]
fn nanos(i: &[u8]) -> R<'_, u32> {
    let Some(frac) = i.strip_prefix(b".") else {
        return Ok((i, 0));
    };
    let len = frac.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 {
        return Err(nom::Err::Error(()));
    }
    let mut n = 0u32;
    for k in 0..9 {
        n = n * 10
            + frac
                .get(k)
                .filter(|_| k < len)
                .map_or(0, |&c| u32::from(c - b'0'));
    }
    Ok((&frac[len..], n))
}

/// RFC 3164: `Nov 20 02:05:11`, `Nov  5 02:05:11` or `Nov 5 02:05:11`
/// (an optional fraction is accepted too). Fixed width, so read by hand:
/// this is the hottest envelope.
#[inline(always)]
fn stamp_3164(s: &[u8]) -> R<'_, Stamp> {
    let fail = || nom::Err::Error(());
    let month = month(s).ok_or_else(fail)?;
    let (day, rest) = match s.get(3..6).ok_or_else(fail)? {
        [b' ', b' ', d @ b'1'..=b'9'] => (d - b'0', &s[6..]),
        [b' ', a @ b'0'..=b'3', b @ b'0'..=b'9'] => ((a - b'0') * 10 + (b - b'0'), &s[6..]),
        [b' ', d @ b'1'..=b'9', b' '] => (d - b'0', &s[5..]),
        _ => return Err(fail()),
    };
    if !(1..=31).contains(&day) {
        return Err(fail());
    }
    let rest = rest.strip_prefix(b" ").ok_or_else(fail)?;
    let (rest, (hour, minute, second)) = hms(rest)?;
    let (rest, nanos) = nanos(rest)?;
    Ok((
        rest,
        Stamp::NoYear {
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        },
    ))
}

/// A full date and time: RFC 3339 (`T` separator, optional zone) or the
/// space-separated form Kea and others write. The flag is true for the
/// space-separated form.
fn full_stamp(i: &[u8]) -> R<'_, (Stamp, bool)> {
    map(
        (
            num::<4>,
            char('-'),
            verify(num::<2>, |m| (1..=12).contains(m)),
            char('-'),
            verify(num::<2>, |d| (1..=31).contains(d)),
            one_of("T "),
            hms,
            nanos,
            zone,
        ),
        |(year, _, month, _, day, sep, (hour, minute, second), nanos, offset_seconds)| {
            (
                Stamp::Full {
                    year: year as i16,
                    month: month as u8,
                    day: day as u8,
                    hour,
                    minute,
                    second,
                    nanos,
                    offset_seconds,
                },
                sep == ' ',
            )
        },
    )
    .parse(i)
}

/// `Z`, `+01:00`, `-0530`, or nothing (local time).
fn zone(i: &[u8]) -> R<'_, Option<i32>> {
    opt(alt((
        map(one_of("Zz"), |_| 0i32),
        map_opt(
            (one_of("+-"), num::<2>, opt(char(':')), num::<2>),
            |(sign, h, _, m)| {
                if h > 23 || m > 59 {
                    return None;
                }
                let secs = (h * 3600 + m * 60) as i32;
                Some(if sign == '-' { -secs } else { secs })
            },
        ),
    )))
    .parse(i)
}

/// A syslog tag: `prog[pid]:` or `prog:`, where the program is a name or a
/// path (`/usr/sbin/dhcpd`). Returns the program and pid.
#[inline(always)]
fn tag_token(t: &[u8]) -> Option<(&[u8], Option<u32>)> {
    let name = t.strip_suffix(b":")?;
    let (program, pid) = match name.strip_suffix(b"]") {
        Some(inner) => {
            let open = crate::scan::rpos(inner, b'[')?;
            (&inner[..open], Some(dec_u32(&inner[open + 1..])?))
        }
        None => (name, None),
    };
    let first = *program.first()?;
    if !(first.is_ascii_alphabetic() || first == b'/') {
        return None;
    }
    program
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/' | b'@' | b'+'))
        .then_some((program, pid))
}

/// RFC 5424, after `<PRI>1 `.
fn rfc5424(s: &[u8]) -> Result<Envelope<'_>, RejectReason> {
    let bad = RejectReason::BadEnvelope;
    let (stamp, rest) = if let Some(rest) = s.strip_prefix(b"- ") {
        (None, rest)
    } else {
        let (rest, (stamp, _)) = full_stamp(s).map_err(|_| bad)?;
        (Some(stamp), rest.strip_prefix(b" ").ok_or(bad)?)
    };
    let (host, rest) = token(rest);
    let (app, rest) = token(rest);
    let (procid, rest) = token(rest);
    let (msgid, rest) = token(rest);
    if host.is_empty() || app.is_empty() || procid.is_empty() || msgid.is_empty() {
        return Err(bad);
    }
    let body = skip_structured_data(rest).ok_or(bad)?;
    let body = body.strip_prefix(b" ").unwrap_or(body);
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let nil = |f: &'_ [u8]| f != b"-";
    Ok(Envelope {
        stamp,
        host: Some(host).filter(|h| nil(h)),
        program: Some(app).filter(|a| nil(a)),
        pid: dec_u32(procid),
        body,
    })
}

/// Skips RFC 5424 STRUCTURED-DATA (`-` or `[id k="v" ...]...`), honouring
/// `\"`, `\]` and `\\` inside quoted values. Returns what follows.
fn skip_structured_data(s: &[u8]) -> Option<&[u8]> {
    if let Some(rest) = s.strip_prefix(b"-") {
        return Some(rest);
    }
    let mut i = 0;
    if s.first() != Some(&b'[') {
        return None;
    }
    while s.get(i) == Some(&b'[') {
        i += 1;
        let mut quoted = false;
        loop {
            match *s.get(i)? {
                b'\\' if quoted => i += 2,
                b'"' => {
                    quoted = !quoted;
                    i += 1;
                }
                b']' if !quoted => {
                    i += 1;
                    break;
                }
                _ => i += 1,
            }
        }
    }
    s.get(i..)
}

const KEA_SEVERITIES: [&[u8]; 5] = [b"FATAL", b"ERROR", b"WARN", b"INFO", b"DEBUG"];

/// Kea's own file format after its stamp: `INFO  [kea-dhcp4.leases/812.140234] MSGID ...`.
/// The body keeps the severity and bracket; the kea parser skips them.
fn kea_file(stamp: Stamp, s: &[u8]) -> Option<Envelope<'_>> {
    let (severity, rest) = token(s);
    if !KEA_SEVERITIES.contains(&severity) {
        return None;
    }
    let rest = trim_start(rest);
    let (mut program, mut pid) = (None, None);
    if let Some(inner) = rest.strip_prefix(b"[")
        && let Some(close) = crate::scan::pos(inner, b']')
    {
        let inner = &inner[..close];
        let logger_end = crate::scan::pos(inner, b'/').unwrap_or(inner.len());
        let logger = &inner[..logger_end];
        let root = crate::scan::pos(logger, b'.').unwrap_or(logger.len());
        program = Some(&logger[..root]).filter(|p| !p.is_empty());
        if logger_end < inner.len() {
            let after = &inner[logger_end + 1..];
            let end = crate::scan::pos(after, b'.').unwrap_or(after.len());
            pid = dec_u32(&after[..end]);
        }
    }

    Some(Envelope {
        stamp: Some(stamp),
        host: None,
        program,
        pid,
        body: s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(line: &str) -> Envelope<'_> {
        parse(line.as_bytes()).unwrap()
    }

    #[test]
    fn rfc3164_with_host() {
        let e = env("Nov 20 02:05:11 boot1 dhcpd[812]: DHCPDISCOVER from x via eth0");
        assert_eq!(
            e.stamp,
            Some(Stamp::NoYear {
                month: 11,
                day: 20,
                hour: 2,
                minute: 5,
                second: 11,
                nanos: 0
            })
        );
        assert_eq!(e.host, Some(&b"boot1"[..]));
        assert_eq!(e.program, Some(&b"dhcpd"[..]));
        assert_eq!(e.pid, Some(812));
        assert_eq!(e.body, b"DHCPDISCOVER from x via eth0");
    }

    #[test]
    fn rfc3164_space_padded_day_and_no_host() {
        let e = env("Nov  5 02:05:11 dnsmasq-dhcp[812]: DHCPACK(br0) 1.2.3.4 m");
        assert!(matches!(e.stamp, Some(Stamp::NoYear { day: 5, .. })));
        assert_eq!(e.host, None);
        assert_eq!(e.program, Some(&b"dnsmasq-dhcp"[..]));
    }

    #[test]
    fn rfc3164_with_pri_and_tag_without_pid() {
        let e = env("<30>Nov 20 02:05:11 host in.tftpd: RRQ from 1.2.3.4 filename x");
        assert_eq!(e.program, Some(&b"in.tftpd"[..]));
        assert_eq!(e.pid, None);
    }

    #[test]
    fn rfc5424() {
        let e = env("<30>1 2026-11-20T02:05:11.123456+01:00 host dhcpd 812 - - DHCPNAK on x");
        assert_eq!(
            e.stamp,
            Some(Stamp::Full {
                year: 2026,
                month: 11,
                day: 20,
                hour: 2,
                minute: 5,
                second: 11,
                nanos: 123_456_000,
                offset_seconds: Some(3600)
            })
        );
        assert_eq!(e.host, Some(&b"host"[..]));
        assert_eq!(e.program, Some(&b"dhcpd"[..]));
        assert_eq!(e.pid, Some(812));
        assert_eq!(e.body, b"DHCPNAK on x");
        let e =
            env(r#"<30>1 2026-11-20T02:05:11Z - dhcpd - ID47 [a b="x\"]" c="d"][e f="g"] BOMmsg"#);
        assert_eq!(e.host, None);
        assert_eq!(e.pid, None);
        assert_eq!(e.body, b"BOMmsg");
        assert!(matches!(
            e.stamp,
            Some(Stamp::Full {
                offset_seconds: Some(0),
                ..
            })
        ));
    }

    #[test]
    fn rsyslog_high_precision() {
        let e = env("2026-11-20T02:05:11.123456-05:30 host dhcpd[812]: msg");
        assert!(matches!(
            e.stamp,
            Some(Stamp::Full {
                offset_seconds: Some(-19800),
                nanos: 123_456_000,
                ..
            })
        ));
        assert_eq!(e.body, b"msg");
    }

    #[test]
    fn kea_file_format() {
        let e = env("2026-11-20 02:05:11.123 INFO  [kea-dhcp4.leases/812.140234] DHCP4_X y");
        assert_eq!(e.program, Some(&b"kea-dhcp4"[..]));
        assert_eq!(e.pid, Some(812));
        assert!(matches!(
            e.stamp,
            Some(Stamp::Full {
                offset_seconds: None,
                nanos: 123_000_000,
                ..
            })
        ));
        assert!(e.body.starts_with(b"INFO"));
    }

    #[test]
    fn bare_and_broken() {
        let e = env("DHCPDISCOVER from 52:54:00:12:34:56 via eth0");
        assert_eq!(e.stamp, None);
        assert_eq!(e.program, None);
        assert_eq!(
            parse(b"Nov 99 02:05:11 h p: x"),
            Err(RejectReason::BadEnvelope)
        );
        assert_eq!(
            parse(b"Nov 20 25:05:11 h p: x"),
            Err(RejectReason::BadEnvelope)
        );
        // A time and no program: a bare message (parse_line rejects it).
        let e = env("Nov 20 02:05:11 host -- MARK --");
        assert_eq!((e.program, e.body), (None, &b"host -- MARK --"[..]));
        assert_eq!(parse(b"<999>x"), Err(RejectReason::BadEnvelope));
    }
}
