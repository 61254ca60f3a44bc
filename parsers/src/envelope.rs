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

/// Splits a line (already trimmed at the end, not empty) into envelope and
/// message.
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

    match rest.first() {
        Some(b'A'..=b'Z') if month(rest).is_some() => {
            let (after, stamp) = stamp_3164(rest).map_err(|_| RejectReason::BadEnvelope)?;
            let after = after.strip_prefix(b" ").ok_or(RejectReason::BadEnvelope)?;
            host_and_tag(Some(stamp), after)
        }
        Some(b'0'..=b'9') if looks_like_date(rest) => {
            let (after, (stamp, kea_style)) =
                full_stamp(rest).map_err(|_| RejectReason::BadEnvelope)?;
            let after = after.strip_prefix(b" ").ok_or(RejectReason::BadEnvelope)?;
            if kea_style && let Some(env) = kea_file(stamp, after) {
                return Ok(env);
            }
            host_and_tag(Some(stamp), after)
        }
        _ if pri.is_some() => {
            // `<30>dhcpd[812]: msg`: a PRI but no time stamp.
            host_and_tag(None, rest)
        }
        _ => Ok(Envelope {
            stamp: None,
            host: None,
            program: None,
            pid: None,
            body: rest,
        }),
    }
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

/// A syslog tag: `prog[pid]:` or `prog:`. Returns the program and pid.
#[inline(always)]
fn tag_token(t: &[u8]) -> Option<(&[u8], Option<u32>)> {
    let name = t.strip_suffix(b":")?;
    if let Some(inner) = name.strip_suffix(b"]") {
        let open = crate::scan::rpos(inner, b'[')?;
        let program = &inner[..open];
        if program.is_empty() {
            return None;
        }
        return Some((program, dec_u32(&inner[open + 1..])));
    }
    if name.is_empty() || name.contains(&b'[') {
        return None;
    }
    Some((name, None))
}

/// After the time stamp: `host prog[pid]: msg`, or `prog[pid]: msg` with
/// no host (dnsmasq's own `log-facility=` file).
#[inline]
fn host_and_tag(stamp: Option<Stamp>, s: &[u8]) -> Result<Envelope<'_>, RejectReason> {
    let (first, rest) = token(s);
    if let Some((program, pid)) = tag_token(first) {
        return Ok(Envelope {
            stamp,
            host: None,
            program: Some(program),
            pid,
            body: rest,
        });
    }
    let (second, rest) = token(rest);
    match tag_token(second) {
        Some((program, pid)) if !first.is_empty() => Ok(Envelope {
            stamp,
            host: Some(first),
            program: Some(program),
            pid,
            body: rest,
        }),
        _ => Err(RejectReason::NotAServerLine),
    }
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
        assert_eq!(
            parse(b"Nov 20 02:05:11 host -- MARK --"),
            Err(RejectReason::NotAServerLine)
        );
        assert_eq!(parse(b"<999>x"), Err(RejectReason::BadEnvelope));
    }
}
