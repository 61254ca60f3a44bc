//! Small byte-slice helpers shared by the log-line parsers. None of them
//! allocates or panics, whatever the input.

use std::net::Ipv4Addr;

/// Haystacks shorter than this are searched with a plain loop: real log
/// fields are short, and `memchr`'s set-up costs more than it saves there.
const SHORT: usize = 192;

const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` that equals `byte` (exact, no false
/// positives).
#[inline(always)]
fn matches(w: u64, byte: u8) -> u64 {
    let x = w ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((x & LO7) + LO7) | x) & HI
}

#[inline(always)]
fn word(s: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(b)
}

/// The position of the first `byte` in `s`: eight bytes at a time for
/// short fields (fewer mispredicted branches than a byte loop), `memchr`
/// for long ones.
#[inline(always)]
pub(crate) fn pos(s: &[u8], byte: u8) -> Option<usize> {
    if s.len() >= SHORT {
        return memchr::memchr(byte, s);
    }
    let mut i = 0;
    while i + 8 <= s.len() {
        let m = matches(word(s, i), byte);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..].iter().position(|&c| c == byte).map(|k| i + k)
}

/// The position of the last `byte` in `s`.
#[inline]
pub(crate) fn rpos(s: &[u8], byte: u8) -> Option<usize> {
    if s.len() >= SHORT {
        return memchr::memrchr(byte, s);
    }
    let mut end = s.len();
    while end >= 8 {
        let m = matches(word(s, end - 8), byte);
        if m != 0 {
            return Some(end - 8 + 7 - (m.leading_zeros() / 8) as usize);
        }
        end -= 8;
    }
    s[..end].iter().rposition(|&c| c == byte)
}

/// The first space-separated token and what follows that space (empty when
/// there is no space).
#[inline(always)]
pub(crate) fn token(s: &[u8]) -> (&[u8], &[u8]) {
    match pos(s, b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &s[s.len()..]),
    }
}

/// The first occurrence of `needle`. Short haystacks are scanned for the
/// needle's second byte (the needles here start with a common space or
/// colon), eight bytes at a time.
#[inline]
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let n = needle.len();
    if haystack.len() >= SHORT || n < 2 {
        return memchr::memmem::find(haystack, needle);
    }
    let mut from = 1;
    while from < haystack.len() {
        let k = from + pos(&haystack[from..], needle[1])?;
        if eq_at(haystack, k - 1, needle) {
            return Some(k - 1);
        }
        from = k + 1;
    }
    None
}

/// The last occurrence of `needle` (see [`find`]).
#[inline]
pub(crate) fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let n = needle.len();
    if haystack.len() >= SHORT || n < 2 {
        return memchr::memmem::rfind(haystack, needle);
    }
    let mut end = haystack.len();
    while end > 1 {
        let k = rpos(&haystack[1..end], needle[1])? + 1;
        if eq_at(haystack, k - 1, needle) {
            return Some(k - 1);
        }
        end = k;
    }
    None
}

/// `haystack[i..]` starts with `needle` (compared byte by byte: for the
/// short needles here a `memcmp` call costs more than the comparison).
#[inline]
fn eq_at(haystack: &[u8], i: usize, needle: &[u8]) -> bool {
    match haystack.get(i..i + needle.len()) {
        Some(window) => window.iter().zip(needle).all(|(a, b)| a == b),
        None => false,
    }
}

/// What follows the first occurrence of `needle`.
#[inline]
pub(crate) fn after<'a>(haystack: &'a [u8], needle: &[u8]) -> Option<&'a [u8]> {
    find(haystack, needle).map(|i| &haystack[i + needle.len()..])
}

#[inline]
pub(crate) fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

#[inline]
pub(crate) fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// `s` without one trailing `.`.
#[inline]
pub(crate) fn strip_dot(s: &[u8]) -> &[u8] {
    s.strip_suffix(b".").unwrap_or(s)
}

/// A dotted-quad IPv4 address, strictly: four decimal parts of 1-3 digits,
/// each at most 255.
#[inline]
pub(crate) fn ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    if s.len() < 7 || s.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut part = 0usize;
    let mut value = 0u32;
    let mut digits = 0u32;
    for &c in s {
        match c {
            b'0'..=b'9' => {
                value = value * 10 + u32::from(c - b'0');
                digits += 1;
                if digits > 3 || value > 255 {
                    return None;
                }
            }
            b'.' => {
                if digits == 0 || part == 3 {
                    return None;
                }
                octets[part] = value as u8;
                part += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if digits == 0 || part != 3 {
        return None;
    }
    octets[3] = value as u8;
    Some(Ipv4Addr::from(octets))
}

/// An IPv4 address, or an IPv4-mapped IPv6 address (`::ffff:10.0.0.5`) as
/// servers on a dual-stack socket print their peers.
pub(crate) fn peer_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    if s.len() > 7 && s[..7].eq_ignore_ascii_case(b"::ffff:") {
        return ipv4(&s[7..]);
    }
    ipv4(s)
}

/// A 6-byte MAC written as six groups of one or two hex digits separated by
/// `:` (ISC dhcpd prints `0:c:29:a:b:c`, dropping leading zeros).
pub(crate) fn mac(s: &[u8]) -> Option<[u8; 6]> {
    // The common, canonical spelling first: `52:54:00:12:34:56`.
    if let Ok(s) = <&[u8; 17]>::try_from(s) {
        let mut out = [0u8; 6];
        let mut bad = 0u8;
        let mut colons = true;
        for (k, byte) in out.iter_mut().enumerate() {
            let (hi, lo) = (HEX[usize::from(s[k * 3])], HEX[usize::from(s[k * 3 + 1])]);
            bad |= hi | lo;
            *byte = (hi << 4) | lo;
            if k < 5 {
                colons &= s[k * 3 + 2] == b':';
            }
        }
        if bad & 0xf0 == 0 && colons {
            return Some(out);
        }
    }
    mac_loose(s)
}

/// The MAC inside a DHCPv6 DUID written as colon-separated hex bytes: a
/// DUID-LLT (type 1: `00:01`, hardware type, 4 bytes of time, address) or
/// a DUID-LL (type 3: `00:03`, hardware type, address) whose hardware type
/// is 1 (Ethernet) and whose address is 6 bytes. Any other DUID (DUID-EN,
/// DUID-UUID, another hardware type) names no MAC.
pub(crate) fn duid_mac(s: &[u8]) -> Option<[u8; 6]> {
    let (skip, len) = match s.get(..11)? {
        b"00:01:00:01" => (8, 14),
        b"00:03:00:01" => (4, 10),
        _ => return None,
    };
    if s.len() != len * 3 - 1 {
        return None;
    }
    let mut out = [0u8; 6];
    for (k, byte) in out.iter_mut().enumerate() {
        let at = (skip + k) * 3;
        if s[at - 1] != b':' {
            return None;
        }
        *byte = (hex_digit(s[at])? << 4) | hex_digit(s[at + 1])?;
    }
    Some(out)
}

/// Groups of one or two hex digits, as `print_hw_addr` writes them.
fn mac_loose(s: &[u8]) -> Option<[u8; 6]> {
    if s.len() < 11 || s.len() > 17 {
        return None;
    }
    let mut out = [0u8; 6];
    let mut group = 0usize;
    let mut value = 0u8;
    let mut digits = 0u8;
    for &c in s {
        if c == b':' {
            if digits == 0 || group == 5 {
                return None;
            }
            out[group] = value;
            group += 1;
            value = 0;
            digits = 0;
        } else {
            let d = hex_digit(c)?;
            digits += 1;
            if digits > 2 {
                return None;
            }
            value = (value << 4) | d;
        }
    }
    if digits == 0 || group != 5 {
        return None;
    }
    out[5] = value;
    Some(out)
}

/// Hex digit values; 0xff for bytes that are not hex digits.
static HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => c as u8 - b'0',
            b'a'..=b'f' => c as u8 - b'a' + 10,
            b'A'..=b'F' => c as u8 - b'A' + 10,
            _ => 0xff,
        };
        c += 1;
    }
    t
};

#[inline]
pub(crate) fn hex_digit(c: u8) -> Option<u8> {
    let v = HEX[usize::from(c)];
    (v != 0xff).then_some(v)
}

/// A decimal `u32`, all of `s`.
pub(crate) fn dec_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u64::from(c - b'0');
    }
    u32::try_from(v).ok()
}

/// A hexadecimal `u32` at the start of `s` (at most 8 digits are read).
pub(crate) fn hex_u32_prefix(s: &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    let mut n = 0;
    for &c in s.iter().take(8) {
        match hex_digit(c) {
            Some(d) => {
                v = (v << 4) | u32::from(d);
                n += 1;
            }
            None => break,
        }
    }
    (n > 0).then_some(v)
}

/// True when `s` is one or more hex digits and colons (an ISC `uid`).
pub(crate) fn is_hex_colon(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| c == b':' || c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            mac(b"52:54:00:12:34:56"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
        );
        assert_eq!(mac(b"0:c:29:a:b:c"), Some([0, 0xc, 0x29, 0xa, 0xb, 0xc]));
        assert_eq!(
            mac(b"AA:BB:CC:DD:EE:FF"),
            Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
        );
        assert_eq!(mac(b"52:54:00:12:34"), None);
        assert_eq!(mac(b"52:54:00:12:34:56:78"), None);
        assert_eq!(mac(b"52:54:00:12:34:5g"), None);
        assert_eq!(mac(b"52:54:00::34:56"), None);
        assert_eq!(mac(b"123:4:00:12:34:56"), None);
    }

    #[test]
    fn duids() {
        let m = Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert_eq!(duid_mac(b"00:03:00:01:52:54:00:12:34:56"), m);
        assert_eq!(duid_mac(b"00:01:00:01:2c:5a:3b:1e:52:54:00:12:34:56"), m);
        // Hardware type 6 (IEEE 802), DUID-EN, DUID-UUID: no MAC.
        assert_eq!(duid_mac(b"00:03:00:06:52:54:00:12:34:56"), None);
        assert_eq!(duid_mac(b"00:02:00:00:ab:11:52:54:00:12:34:56"), None);
        assert_eq!(
            duid_mac(b"00:04:12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0"),
            None
        );
        // Truncated, too long, or not hex.
        assert_eq!(duid_mac(b"00:03:00:01:52:54:00:12:34"), None);
        assert_eq!(duid_mac(b"00:03:00:01:52:54:00:12:34:56:78"), None);
        assert_eq!(duid_mac(b"00:03:00:01:52:54:00:12:34:zz"), None);
        assert_eq!(duid_mac(b"00:03:00:01:52-54-00-12-34-56"), None);
    }

    #[test]
    fn ips() {
        assert_eq!(ipv4(b"10.0.0.50"), Some(Ipv4Addr::new(10, 0, 0, 50)));
        assert_eq!(ipv4(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(ipv4(b"256.0.0.1"), None);
        assert_eq!(ipv4(b"1.2.3"), None);
        assert_eq!(ipv4(b"1.2.3.4.5"), None);
        assert_eq!(ipv4(b"1..3.4"), None);
        assert_eq!(ipv4(b"1.2.3.4."), None);
        assert_eq!(
            peer_ipv4(b"::ffff:10.0.0.50"),
            Some(Ipv4Addr::new(10, 0, 0, 50))
        );
        assert_eq!(
            peer_ipv4(b"::FFFF:10.0.0.50"),
            Some(Ipv4Addr::new(10, 0, 0, 50))
        );
        assert_eq!(peer_ipv4(b"fe80::1"), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(dec_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(dec_u32(b"4294967296"), None);
        assert_eq!(dec_u32(b""), None);
        assert_eq!(hex_u32_prefix(b"1a2b3c4d: x"), Some(0x1a2b3c4d));
        assert_eq!(hex_u32_prefix(b"xyz"), None);
    }
}

#[cfg(test)]
mod search_tests {
    use super::*;

    #[test]
    fn find_and_rfind_agree_with_naive_search() {
        let naive = |h: &[u8], n: &[u8]| h.windows(n.len()).position(|w| w == n);
        let rnaive = |h: &[u8], n: &[u8]| h.windows(n.len()).rposition(|w| w == n);
        let hay = b" via  via via viavia  vi via x via";
        for len in 0..=hay.len() {
            for start in 0..=len {
                let h = &hay[start..len];
                for n in [&b" via "[..], b"via", b"vv", b" v", b"a "] {
                    assert_eq!(find(h, n), naive(h, n), "{h:?} {n:?}");
                    assert_eq!(rfind(h, n), rnaive(h, n), "{h:?} {n:?}");
                }
            }
        }
    }

    #[test]
    fn pos_and_rpos_agree_with_naive_search() {
        let hay: Vec<u8> = (0..300u32).map(|i| (i * 7 % 13) as u8 + b' ').collect();
        for len in 0..hay.len() {
            let s = &hay[..len];
            for b in [b' ', b'!', b'&', b',', 0, 0x81] {
                assert_eq!(pos(s, b), s.iter().position(|&c| c == b), "{len} {b}");
                assert_eq!(rpos(s, b), s.iter().rposition(|&c| c == b), "{len} {b}");
            }
        }
        let s = b"\x01\x00\x01\x01 \x80\xff \x01";
        for b in 0..=255u8 {
            assert_eq!(pos(s, b), s.iter().position(|&c| c == b));
            assert_eq!(rpos(s, b), s.iter().rposition(|&c| c == b));
        }
    }
}
