//! DHCP servers' leases files: what a pool that booted before nmt was installed tells about
//! its machines. ISC dhcpd's `dhcpd.leases` (blocks, the last one for an address wins) and
//! dnsmasq's leases file (one line a lease).

use std::net::Ipv4Addr;

/// One lease: a client's MAC, its address, when the lease started (seconds since the epoch,
/// UTC; `None` when the file does not say) and the host name the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The client's MAC.
    pub mac: [u8; 6],
    /// The address leased.
    pub ip: Ipv4Addr,
    /// When the lease started, in seconds since the epoch (UTC).
    pub starts: Option<i64>,
    /// The client's own host name (untrusted bytes, as written).
    pub hostname: Option<Vec<u8>>,
    /// Where its text starts in the file.
    pub offset: u64,
}

/// Why a leases file was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeasesError {
    /// Not a leases file of a known kind.
    #[error("{0}")]
    Unknown(String),
}

/// The leases of an ISC dhcpd `dhcpd.leases` file: for each address, its last `lease` block
/// that names a hardware ethernet address, in the file's order of those last blocks.
/// `lease6`, `host`, `failover` and `server-duid` statements are skipped; so is a block cut
/// off at the end of the file (dhcpd is writing it).
pub fn parse_isc_leases(text: &[u8]) -> Vec<Lease> {
    let mut by_ip: std::collections::HashMap<Ipv4Addr, Lease> = std::collections::HashMap::new();
    let mut at = 0;
    while let Some(start) = find_word(text, at, b"lease") {
        at = start + 5;
        let rest = &text[at..];
        // `lease ADDR {`: an IPv4 lease (not `lease6`, not a word inside a comment).
        if !rest.first().is_some_and(|b| b.is_ascii_whitespace()) || in_comment(text, start) {
            continue;
        }
        let Some(open) = rest.iter().position(|&b| b == b'{') else {
            break;
        };
        let Ok(ip) = std::str::from_utf8(rest[..open].trim_ascii())
            .unwrap_or("")
            .parse::<Ipv4Addr>()
        else {
            continue;
        };
        let body_start = at + open + 1;
        let Some(close) = block_end(&text[body_start..]) else {
            break;
        };
        let body = &text[body_start..body_start + close];
        at = body_start + close + 1;
        let mut lease = Lease {
            mac: [0; 6],
            ip,
            starts: None,
            hostname: None,
            offset: start as u64,
        };
        let mut has_mac = false;
        for stmt in statements(body) {
            let mut words = stmt
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty());
            match words.next() {
                Some(b"hardware") => {
                    if words.next() == Some(b"ethernet")
                        && let Some(mac) = words.next().and_then(parse_mac)
                    {
                        lease.mac = mac;
                        has_mac = true;
                    }
                }
                Some(b"starts") => lease.starts = lease_time(&mut words),
                Some(b"client-hostname") => {
                    lease.hostname = quoted(stmt).map(<[u8]>::to_vec);
                }
                _ => {}
            }
        }
        if !has_mac {
            continue;
        }
        by_ip.insert(lease.ip, lease);
    }
    let mut last: Vec<Lease> = by_ip.into_values().collect();
    last.sort_by_key(|l| l.offset);
    last
}

/// The leases of a dnsmasq leases file: `EXPIRY MAC IP HOSTNAME CLIENT-ID` lines. DHCPv6
/// leases (after the `duid` line, with an IAID where the MAC would be) are skipped. A
/// dnsmasq leases file does not say when a lease started: `starts` is `None`.
pub fn parse_dnsmasq_leases(text: &[u8]) -> Vec<Lease> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for line in text.split(|&b| b == b'\n') {
        let here = offset;
        offset += line.len() as u64 + 1;
        let mut f = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let (Some(expiry), Some(mac), Some(ip)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !expiry.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let (Some(mac), Ok(ip)) = (
            parse_mac(mac),
            std::str::from_utf8(ip).unwrap_or("").parse::<Ipv4Addr>(),
        ) else {
            continue;
        };
        let hostname = f.next().filter(|h| *h != b"*").map(<[u8]>::to_vec);
        out.push(Lease {
            mac,
            ip,
            starts: None,
            hostname,
            offset: here,
        });
    }
    out
}

/// The columns of Kea's memfile lease file (`kea-leases4.csv`) that nmt reads, from its
/// header line: Kea 2.2 writes `address,hwaddr,client_id,valid_lifetime,expire,subnet_id,
/// fqdn_fwd,fqdn_rev,hostname,state,user_context`, later versions add columns (`pool_id`).
struct KeaColumns {
    address: usize,
    hwaddr: usize,
    valid_lifetime: usize,
    expire: usize,
    hostname: usize,
    state: usize,
}

impl KeaColumns {
    fn of(header: &[u8]) -> Option<KeaColumns> {
        let names: Vec<&[u8]> = header.trim_ascii().split(|&b| b == b',').collect();
        let at = |n: &[u8]| names.iter().position(|c| *c == n);
        Some(KeaColumns {
            address: at(b"address")?,
            hwaddr: at(b"hwaddr")?,
            valid_lifetime: at(b"valid_lifetime")?,
            expire: at(b"expire")?,
            hostname: at(b"hostname")?,
            state: at(b"state")?,
        })
    }
}

/// Whether `line` is the header of a Kea DHCPv4 lease file.
fn is_kea_header(line: &[u8]) -> bool {
    line.starts_with(b"address,hwaddr,") && KeaColumns::of(line).is_some()
}

/// Kea's escaping of a comma in a field (`&#x2c`), undone.
fn kea_unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i..].starts_with(b"&#x2c") {
            out.push(b',');
            i += 5;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

/// The leases of a Kea DHCPv4 memfile lease file (`kea-leases4.csv`, or one of its
/// rotated copies `.1`, `.2`, `.completed`): for each address, its last lease that names a
/// MAC, in the file's order of those last leases. Kea appends a line for every change, so a
/// later line for an address replaces an earlier one; a line with `valid_lifetime` 0 records
/// a deleted lease and a `state` of 1 a declined address, and neither says who had it.
/// A lease starts at `expire - valid_lifetime`. Lines before the header, and a last line
/// cut off without its newline (Kea is writing it), are skipped; so are DHCPv6 files
/// (`address,duid,…`).
pub fn parse_kea_leases(text: &[u8]) -> Vec<Lease> {
    let mut by_ip: std::collections::HashMap<Ipv4Addr, Lease> = std::collections::HashMap::new();
    let mut cols: Option<KeaColumns> = None;
    let mut offset = 0u64;
    let mut lines = text.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let here = offset;
        offset += line.len() as u64 + 1;
        if lines.peek().is_none() {
            // The part after the last newline: empty, or a line still being written.
            break;
        }
        if is_kea_header(line) {
            cols = KeaColumns::of(line);
            continue;
        }
        let Some(c) = &cols else {
            continue;
        };
        let f: Vec<&[u8]> = line.trim_ascii_end().split(|&b| b == b',').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or(b"");
        let (Ok(ip), Some(mac)) = (
            std::str::from_utf8(field(c.address))
                .unwrap_or("")
                .parse::<Ipv4Addr>(),
            parse_mac(field(c.hwaddr)),
        ) else {
            continue;
        };
        let number = |i: usize| {
            std::str::from_utf8(field(i))
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
        };
        let (Some(valid), Some(expire)) = (number(c.valid_lifetime), number(c.expire)) else {
            continue;
        };
        if valid == 0 || number(c.state) == Some(1) {
            continue;
        }
        let hostname = Some(kea_unescape(field(c.hostname))).filter(|h| !h.is_empty());
        by_ip.insert(
            ip,
            Lease {
                mac,
                ip,
                starts: expire.checked_sub(valid),
                hostname,
                offset: here,
            },
        );
    }
    let mut out: Vec<Lease> = by_ip.into_values().collect();
    out.sort_by_key(|l| l.offset);
    out
}

/// Which kind of leases file `text` is, and its leases.
pub fn parse_leases(text: &[u8]) -> Result<(&'static str, Vec<Lease>), LeasesError> {
    if text
        .split(|&b| b == b'\n')
        .take(64)
        .any(|l| is_kea_header(l.trim_ascii_end()))
    {
        return Ok(("kea", parse_kea_leases(text)));
    }
    let isc = parse_isc_leases(text);
    if !isc.is_empty() || find_word(text, 0, b"lease").is_some() {
        return Ok(("dhcpd", isc));
    }
    let dnsmasq = parse_dnsmasq_leases(text);
    if !dnsmasq.is_empty() || text.trim_ascii().is_empty() {
        return Ok(("dnsmasq", dnsmasq));
    }
    Err(LeasesError::Unknown(
        "not a leases file nmt reads: ISC dhcpd's (`lease ADDR { … }` blocks), dnsmasq's \
         (`EXPIRY MAC IP HOST CLIENT-ID` lines) or Kea's memfile CSV (a header line \
         `address,hwaddr,client_id,…`)"
            .into(),
    ))
}

/// The next `word` at or after `from` that stands alone (not part of a longer word).
fn find_word(text: &[u8], from: usize, word: &[u8]) -> Option<usize> {
    let mut i = from;
    while i + word.len() <= text.len() {
        let j = i + text[i..].windows(word.len()).position(|w| w == word)?;
        let before = j.checked_sub(1).map(|k| text[k]);
        if before.is_none_or(|b| b.is_ascii_whitespace() || b == b';' || b == b'}') {
            return Some(j);
        }
        i = j + 1;
    }
    None
}

/// Whether `pos` is inside a `#` comment (on its line, after a `#`).
fn in_comment(text: &[u8], pos: usize) -> bool {
    let line_start = text[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    text[line_start..pos].contains(&b'#')
}

/// Where the block that starts after its `{` ends (its `}`), skipping quoted strings.
fn block_end(body: &[u8]) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in body.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// A block's statements (split at `;` outside quotes), without comments.
fn statements(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut comment = false;
    for (i, &b) in body.iter().enumerate() {
        if comment {
            if b == b'\n' {
                comment = false;
                start = i + 1;
            }
            continue;
        }
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'#' if !quoted => comment = true,
            b';' if !quoted => {
                out.push(body[start..i].trim_ascii());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.into_iter()
}

/// `W YYYY/MM/DD HH:MM:SS` (UTC) or `epoch N` after `starts`.
fn lease_time<'a>(words: &mut impl Iterator<Item = &'a [u8]>) -> Option<i64> {
    let first = words.next()?;
    if first == b"epoch" {
        return std::str::from_utf8(words.next()?).ok()?.parse().ok();
    }
    if first == b"never" {
        return None;
    }
    let date = words.next()?;
    let time = words.next()?;
    let d: Vec<i64> = split_num(date, b'/')?;
    let t: Vec<i64> = split_num(time, b':')?;
    let [y, mo, da] = <[i64; 3]>::try_from(d).ok()?;
    let [h, mi, s] = <[i64; 3]>::try_from(t).ok()?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + s)
}

fn split_num(s: &[u8], sep: u8) -> Option<Vec<i64>> {
    s.split(|&b| b == sep)
        .map(|p| std::str::from_utf8(p).ok()?.parse().ok())
        .collect()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The text between the first pair of double quotes.
fn quoted(stmt: &[u8]) -> Option<&[u8]> {
    let a = stmt.iter().position(|&b| b == b'"')?;
    let b = stmt[a + 1..].iter().rposition(|&b| b == b'"')?;
    Some(&stmt[a + 1..a + 1 + b])
}

/// `aa:bb:cc:dd:ee:ff` (one or two hex digits a byte, as dhcpd writes them).
fn parse_mac(s: &[u8]) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split(|&b| b == b':') {
        // Hex digits only: `from_str_radix` would also take a sign (`+2`).
        if n == 6 || part.is_empty() || part.len() > 2 || !part.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        out[n] = u8::from_str_radix(std::str::from_utf8(part).ok()?, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kea 2.2's memfile format: a lease, one with an escaped comma in its host name, the
    /// first one deleted (valid_lifetime 0) and renewed, a declined address, a DHCPv4 line
    /// without a MAC, and a last line still being written.
    const KEA: &str = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
10.9.0.100,52:54:00:12:34:56,01:52:54:00:12:34:56,7200,1765087200,1,0,0,node01,0,
10.9.0.101,52:54:00:12:34:57,,3600,1765083700,1,0,0,a&#x2cb,0,
10.9.0.100,52:54:00:12:34:56,01:52:54:00:12:34:56,0,1765080500,1,0,0,node01,0,
10.9.0.102,52:54:00:12:34:58,,7200,1765087300,1,0,0,,1,
10.9.0.103,,01:02:03,7200,1765087300,1,0,0,,0,
10.9.0.101,52:54:00:12:34:59,,3600,1765090000,1,0,0,,0,{ \"ISC\": { } }
10.9.0.104,52:54:00:12:34:5a,,7200,17650";

    #[test]
    fn kea_memfile_leases() {
        let leases = parse_kea_leases(KEA.as_bytes());
        type Seen<'a> = (Ipv4Addr, [u8; 6], Option<i64>, Option<&'a [u8]>);
        let got: Vec<Seen> = leases
            .iter()
            .map(|l| (l.ip, l.mac, l.starts, l.hostname.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                // The deletion says nothing about who had it: the lease before it stands.
                (
                    Ipv4Addr::new(10, 9, 0, 100),
                    [0x52, 0x54, 0, 0x12, 0x34, 0x56],
                    Some(1_765_080_000),
                    Some(&b"node01"[..])
                ),
                // The last line for an address wins.
                (
                    Ipv4Addr::new(10, 9, 0, 101),
                    [0x52, 0x54, 0, 0x12, 0x34, 0x59],
                    Some(1_765_086_400),
                    None
                ),
            ]
        );
        assert_eq!(parse_leases(KEA.as_bytes()).unwrap().0, "kea");
        // Later versions add columns; the header says where each one is.
        let v24 = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id
10.9.0.100,52:54:00:12:34:56,,7200,1765087200,1,0,0,n&#x2c1,0,,0
";
        let l = parse_kea_leases(v24.as_bytes());
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].hostname.as_deref(), Some(&b"n,1"[..]));
        // A DHCPv6 lease file is not a DHCPv4 one.
        let v6 = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context
2001:db8::1,00:01:02,7200,1765087200,1,3600,0,1,128,0,0,,52:54:00:12:34:56,0,
";
        assert!(parse_kea_leases(v6.as_bytes()).is_empty());
        assert!(parse_leases(v6.as_bytes()).is_err());
    }

    const ISC: &str = r#"# The format of this file is documented in the dhcpd.leases(5) manual page.
# This lease file was written by isc-dhcp-4.4.3-P1

# authoring-byte-order entry is generated, DO NOT DELETE
authoring-byte-order little-endian;

server-duid "\000\001\000\001*\243\305\337RT\000\022\064V";

lease 10.0.0.50 {
  starts 3 2025/03/05 07:15:09;
  ends 3 2025/03/05 19:15:09;
  cltt 3 2025/03/05 07:15:09;
  binding state active;
  next binding state free;
  rewind binding state free;
  hardware ethernet 52:54:00:12:34:56;
  uid "\001RT\000\0224V";
  client-hostname "pc-42";
}
lease 10.0.0.51 {
  starts epoch 1741158909; # Wed Mar 05 07:15:09 2025
  ends epoch 1741202109; # Wed Mar 05 19:15:09 2025
  binding state active;
  hardware ethernet 52:54:0:ab:c:1;
  client-hostname "semi;colon } brace";
}
lease 10.0.0.50 {
  starts 4 2025/03/06 08:00:00;
  ends 4 2025/03/06 20:00:00;
  binding state active;
  hardware ethernet 52:54:00:12:34:57;
}
lease6 ia-na "\001\000\000\000\000\001\000\001*\243\305\337RT\000\0224V" {
  cltt 3 2025/03/05 07:15:09;
  iaaddr 2001:db8::10 {
    binding state active;
  }
}
host static-1 {
  dynamic;
  hardware ethernet 52:54:00:99:99:99;
  fixed-address 10.0.0.99;
}
lease 10.0.0.52 {
  starts 3 2025/03/05 07:15:09;
  binding state free;
"#;

    #[test]
    fn isc_leases_keep_the_last_block_of_each_address() {
        let l = parse_isc_leases(ISC.as_bytes());
        assert_eq!(l.len(), 2, "{l:#?}");
        assert_eq!(l[0].ip, Ipv4Addr::new(10, 0, 0, 51));
        assert_eq!(l[0].mac, [0x52, 0x54, 0, 0xab, 0x0c, 1]);
        assert_eq!(l[0].starts, Some(1_741_158_909));
        assert_eq!(l[0].hostname.as_deref(), Some(&b"semi;colon } brace"[..]));
        // The second block for .50 replaced the first.
        assert_eq!(l[1].ip, Ipv4Addr::new(10, 0, 0, 50));
        assert_eq!(l[1].mac, [0x52, 0x54, 0, 0x12, 0x34, 0x57]);
        assert_eq!(l[1].starts, Some(1_741_248_000));
        assert_eq!(l[1].hostname, None);
        // The weekday-and-date form is UTC, as dhcpd writes it.
        let first = parse_isc_leases(&ISC.as_bytes()[..ISC.find("lease 10.0.0.51").unwrap()]);
        assert_eq!(first[0].starts, Some(1_741_158_909));
        assert_eq!(first[0].hostname.as_deref(), Some(&b"pc-42"[..]));
    }

    #[test]
    fn dnsmasq_leases_are_lines_and_skip_dhcpv6() {
        let text = b"1741202109 52:54:00:12:34:56 10.0.0.50 pc-42 01:52:54:00:12:34:56\n\
                     0 52:54:00:12:34:58 10.0.0.53 * *\n\
                     duid 00:01:00:01:2a:a3:c5:df:52:54:00:12:34:56\n\
                     1741202109 1234567 2001:db8::10 pc6 00:01:00:01:2a:a3:c5:df:52:54:00:12:34:56\n";
        let l = parse_dnsmasq_leases(text);
        assert_eq!(l.len(), 2, "{l:#?}");
        assert_eq!(l[0].hostname.as_deref(), Some(&b"pc-42"[..]));
        assert_eq!(l[1].hostname, None);
        assert_eq!(l[1].ip, Ipv4Addr::new(10, 0, 0, 53));
        assert_eq!(parse_leases(text).unwrap().0, "dnsmasq");
        assert_eq!(parse_leases(ISC.as_bytes()).unwrap().0, "dhcpd");
        assert!(parse_leases(b"hello world\n").is_err());
    }

    #[test]
    fn a_mac_is_hex_digits_only() {
        // Found by the parse_line fuzz target: `+2` was read as the byte 2.
        assert_eq!(parse_mac(b"52:54:00:+2:34:57"), None);
        assert_eq!(parse_mac(b"52:54:00:-2:34:57"), None);
        assert_eq!(
            parse_mac(b"52:54:00:2:34:57"),
            Some([0x52, 0x54, 0, 2, 0x34, 0x57])
        );
        let isc = "lease 10.0.0.50 {\n  hardware ethernet 52:54:00:+2:34:57;\n}\n";
        assert_eq!(parse_isc_leases(isc.as_bytes()), []);
        assert_eq!(
            parse_dnsmasq_leases(b"1741202109 52:54:00:+2:34:57 10.0.0.50 pc *\n"),
            []
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let seed = ISC.as_bytes();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = seed.to_vec();
            let i = (x as usize) % m.len();
            match x % 3 {
                0 => m[i] = (x >> 8) as u8,
                1 => m.truncate(i),
                _ => m.insert(i, b'{'),
            }
            let _ = parse_leases(&m);
            let _ = parse_dnsmasq_leases(&m);
        }
    }
}
