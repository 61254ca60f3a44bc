//! ISC dhcpd (`server/dhcp.c`, `server/bootp.c`) messages.
//!
//! The shapes dhcpd prints (`%s` fields in its own words):
//!
//! ```text
//! DHCPDISCOVER from <hw> [(<name>) ][uid <id> ]via <if|relay>[: <note>]
//! DHCPREQUEST for <ip>[ (<server-id>)] from <hw> [(<name>) ]via <if|relay>[: <note>]
//! DHCPOFFER|DHCPACK|BOOTREPLY on <ip> to <hw> [(<name>) ][uid <id> ]via <if|relay>
//! DHCPNAK on <ip> to <hw> via <if|relay>
//! DHCPRELEASE of <ip> from <hw> [(<name>) ]via <if|relay> (found|not found)
//! DHCPDECLINE of <ip> from <hw> [(<name>) ]via <if|relay>[: <note>]
//! DHCPINFORM from <ip> via <if|relay>[: <note>]
//! DHCPACK to <ip> (<hw>) via <if|relay>
//! BOOTREQUEST from <hw> via <if|relay>[: <note>]
//! BOOTREPLY for <ip> to <host-decl> (<hw>) via <if|relay>
//! ```
//!
//! `<hw>` is `print_hw_addr` (hex bytes without leading zeros), a client
//! id in hex when the packet had no hardware type, or `<no identifier>`.
//! The client's name is the only free text before `via`, so `via` is found
//! from the right: a hostile name such as `x) via evil` cannot move it.

use crate::logline::{Dhcp, DhcpKind, RejectReason, Server};
use crate::scan::{ipv4, is_hex_colon, mac, rfind, strip_dot, token, trim_start};

pub(crate) fn parse(body: &[u8]) -> Result<Dhcp<'_>, RejectReason> {
    let body = body.strip_prefix(b"DHCP4o6 ").unwrap_or(body);
    let (ty, rest) = token(body);
    let mut kind = match ty {
        b"DHCPDISCOVER" => DhcpKind::Discover,
        b"DHCPOFFER" => DhcpKind::Offer,
        b"DHCPREQUEST" => DhcpKind::Request,
        b"DHCPACK" => DhcpKind::Ack,
        b"DHCPNAK" => DhcpKind::Nak,
        b"DHCPRELEASE" => DhcpKind::Release,
        b"DHCPINFORM" => DhcpKind::Inform,
        b"DHCPDECLINE" => DhcpKind::Decline,
        b"BOOTREQUEST" => DhcpKind::BootRequest,
        b"BOOTREPLY" => DhcpKind::BootReply,
        _ => return Err(RejectReason::Unrecognised),
    };
    // `rest` starts at the preposition; `via` is the last " via ".
    let at = rfind(rest, b" via ").ok_or(RejectReason::Unrecognised)?;
    let (head, tail) = (&rest[..at], &rest[at + 5..]);
    let (via, note) = via_and_note(tail);

    let mut d = Dhcp {
        server: Server::IscDhcpd,
        kind,
        mac: None,
        ip: None,
        hostname: None,
        via: Some(via).filter(|v| !v.is_empty()),
        xid: None,
        note,
        client_id: None,
    };

    let (prep, after) = token(head);
    match prep {
        b"from" => client(&mut d, after),
        b"for" | b"of" | b"on" => {
            let (ip_tok, r) = token(after);
            d.ip = Some(ipv4(ip_tok).ok_or(RejectReason::Malformed)?);
            // DHCPREQUEST's server identifier: ` (10.0.0.1)`.
            let r = match r.strip_prefix(b"(") {
                Some(inner) => {
                    let close = crate::scan::pos(inner, b')').ok_or(RejectReason::Malformed)?;
                    trim_start(&inner[close + 1..])
                }
                None => r,
            };
            let (prep2, region) = token(r);
            if prep2 != b"from" && prep2 != b"to" {
                return Err(RejectReason::Unrecognised);
            }
            if kind == DhcpKind::BootReply && prep == b"for" {
                // BOOTREPLY for <ip> to <host-decl> (<hw>)
                let open = rfind(region, b" (").ok_or(RejectReason::Malformed)?;
                let hw = region[open + 2..]
                    .strip_suffix(b")")
                    .ok_or(RejectReason::Malformed)?;
                d.mac = mac(hw);
                d.hostname = Some(&region[..open]).filter(|n| !n.is_empty());
            } else {
                client(&mut d, region);
            }
        }
        b"to" => {
            // DHCPACK to <ip> (<hw>), dhcpd's answer to a DHCPINFORM.
            let (ip_tok, r) = token(after);
            d.ip = Some(ipv4(ip_tok).ok_or(RejectReason::Malformed)?);
            if let Some(hw) = r.strip_prefix(b"(").and_then(|r| r.strip_suffix(b")")) {
                d.mac = mac(hw);
            }
        }
        _ => return Err(RejectReason::Unrecognised),
    }

    if let Some(n) = note
        && (n.ends_with(b"no free leases")
            || n.ends_with(b"all free leases")
            || n.ends_with(b"no available leases"))
    {
        kind = DhcpKind::NoFreeLeases;
    }
    d.kind = kind;
    Ok(d)
}

/// What follows ` via `: the interface or relay, then `: note` or
/// ` (found)`.
fn via_and_note(tail: &[u8]) -> (&[u8], Option<&[u8]>) {
    let (via, after) = token(tail);
    let via = via.strip_suffix(b":").unwrap_or(via);
    let note = if after.is_empty() {
        None
    } else if let Some(inner) = after.strip_prefix(b"(").and_then(|a| a.strip_suffix(b")")) {
        Some(inner)
    } else {
        Some(strip_dot(after))
    };
    (via, note.filter(|n| !n.is_empty()))
}

/// `<hw> [(<name>) ][uid <id>]` (the text between the preposition and
/// ` via `).
fn client<'a>(d: &mut Dhcp<'a>, region: &'a [u8]) {
    const NO_ID: &[u8] = b"<no identifier>";
    let (hw, mut rest) = if region.starts_with(NO_ID) {
        (&region[..NO_ID.len()], &region[NO_ID.len()..])
    } else {
        let end = crate::scan::pos(region, b' ').unwrap_or(region.len());
        (&region[..end], &region[end..])
    };
    if d.kind == DhcpKind::Inform {
        d.ip = ipv4(hw);
    } else {
        d.mac = mac(hw);
    }
    // The uid comes last: a quoted string (with `\"` escaped, so ` uid "`
    // cannot occur inside it) or hex.
    if rest.is_empty() || rest.ends_with(b")") {
        // No uid: a hex uid never ends in `)`, a quoted one ends in `"`.
    } else if rest.ends_with(b"\"") {
        if let Some(at) = rfind(rest, b" uid \"") {
            d.client_id = Some(&rest[at + 5..]);
            rest = &rest[..at];
        }
    } else if let Some(at) = rfind(rest, b" uid ")
        && is_hex_colon(&rest[at + 5..])
    {
        d.client_id = Some(&rest[at + 5..]);
        rest = &rest[..at];
    }
    if let Some(name) = rest.strip_prefix(b" (").and_then(|r| r.strip_suffix(b")")) {
        d.hostname = Some(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn p(s: &str) -> Dhcp<'_> {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn discover_forms() {
        let d = p("DHCPDISCOVER from 52:54:00:12:34:56 via eth0");
        assert_eq!(
            (d.kind, d.mac, d.via),
            (DhcpKind::Discover, Some(MAC), Some(&b"eth0"[..]))
        );
        let d = p("DHCPDISCOVER from 52:54:00:12:34:56 (pc-42) via 10.0.0.1");
        assert_eq!(d.hostname, Some(&b"pc-42"[..]));
        assert_eq!(d.via, Some(&b"10.0.0.1"[..]));
        let d =
            p("DHCPDISCOVER from 52:54:00:12:34:56 via eth0: network 10.0.0.0/24: no free leases");
        assert_eq!(d.kind, DhcpKind::NoFreeLeases);
        assert_eq!(d.note, Some(&b"network 10.0.0.0/24: no free leases"[..]));
        let d = p("DHCPDISCOVER from 0:c:29:a:b:c via eth0");
        assert_eq!(d.mac, Some([0, 0xc, 0x29, 0xa, 0xb, 0xc]));
        let d = p("DHCPDISCOVER from <no identifier> via eth0: unknown network segment");
        assert_eq!(
            (d.mac, d.note),
            (None, Some(&b"unknown network segment"[..]))
        );
    }

    #[test]
    fn request_forms() {
        let d = p("DHCPREQUEST for 10.0.0.50 (10.0.0.1) from 52:54:00:12:34:56 (pc-42) via eth0");
        assert_eq!(d.ip, Some(Ipv4Addr::new(10, 0, 0, 50)));
        assert_eq!(d.hostname, Some(&b"pc-42"[..]));
        let d = p("DHCPREQUEST for 10.0.0.50 from 52:54:00:12:34:56 via eth0: wrong network.");
        assert_eq!(d.note, Some(&b"wrong network"[..]));
        let d = p(
            "DHCPREQUEST for 10.0.0.50 from 52:54:00:12:34:56 via eth0: unknown lease 10.0.0.50.",
        );
        assert_eq!(d.note, Some(&b"unknown lease 10.0.0.50"[..]));
        let d = p(
            "DHCPREQUEST for 10.9.9.9 from 52:54:00:12:34:56 via eth0: ignored (not authoritative).",
        );
        assert_eq!(d.note, Some(&b"ignored (not authoritative)"[..]));
        assert_eq!(d.kind, DhcpKind::Request);
    }

    #[test]
    fn replies() {
        let d = p("DHCPOFFER on 10.0.0.50 to 52:54:00:12:34:56 (pc-42) via eth0");
        assert_eq!(
            (d.kind, d.mac, d.hostname),
            (DhcpKind::Offer, Some(MAC), Some(&b"pc-42"[..]))
        );
        let d = p("DHCPNAK on 10.0.0.50 to 52:54:00:12:34:56 via eth0");
        assert_eq!(d.kind, DhcpKind::Nak);
        let d =
            p("DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 (pc) uid 01:52:54:00:12:34:56 via eth0");
        assert_eq!(d.client_id, Some(&b"01:52:54:00:12:34:56"[..]));
        assert_eq!(d.hostname, Some(&b"pc"[..]));
        let d = p(r#"DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 uid "\001RT4\000\0224V" via eth0"#);
        assert_eq!(d.client_id, Some(&br#""\001RT4\000\0224V""#[..]));
        assert_eq!(d.hostname, None);
        let d = p("DHCPACK to 10.0.0.50 (52:54:00:12:34:56) via eth0");
        assert_eq!(
            (d.kind, d.mac, d.ip),
            (DhcpKind::Ack, Some(MAC), Some(Ipv4Addr::new(10, 0, 0, 50)))
        );
        let d = p("BOOTREPLY for 10.0.0.50 to pc-42 (52:54:00:12:34:56) via eth0");
        assert_eq!(
            (d.kind, d.mac, d.hostname),
            (DhcpKind::BootReply, Some(MAC), Some(&b"pc-42"[..]))
        );
        let d = p("BOOTREPLY on 10.0.0.50 to 52:54:00:12:34:56 via eth0");
        assert_eq!(d.mac, Some(MAC));
    }

    #[test]
    fn release_decline_inform_bootrequest() {
        let d = p("DHCPRELEASE of 10.0.0.50 from 52:54:00:12:34:56 (pc-42) via eth0 (found)");
        assert_eq!((d.kind, d.note), (DhcpKind::Release, Some(&b"found"[..])));
        let d = p("DHCPRELEASE of 10.0.0.50 from 52:54:00:12:34:56 via eth0 (not found)");
        assert_eq!(d.note, Some(&b"not found"[..]));
        let d = p("DHCPDECLINE of 10.0.0.50 from 52:54:00:12:34:56 via eth0: abandoned");
        assert_eq!(
            (d.kind, d.note),
            (DhcpKind::Decline, Some(&b"abandoned"[..]))
        );
        let d = p("DHCPINFORM from 10.0.0.50 via eth0");
        assert_eq!(
            (d.kind, d.ip, d.mac),
            (DhcpKind::Inform, Some(Ipv4Addr::new(10, 0, 0, 50)), None)
        );
        let d = p("BOOTREQUEST from 52:54:00:12:34:56 via eth0");
        assert_eq!((d.kind, d.mac), (DhcpKind::BootRequest, Some(MAC)));
        let d = p("BOOTREQUEST from 52:54:00:12:34:56 via eth0: no available leases");
        assert_eq!(d.kind, DhcpKind::NoFreeLeases);
    }

    #[test]
    fn hostile_names_do_not_move_via() {
        let d = p("DHCPDISCOVER from 52:54:00:12:34:56 (x) via evil: no free leases) via eth0");
        assert_eq!(d.via, Some(&b"eth0"[..]));
        assert_eq!(d.hostname, Some(&b"x) via evil: no free leases"[..]));
        assert_eq!(d.kind, DhcpKind::Discover);
        let d = p(r#"DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 (a"; rm -rf /; {../}) via eth0"#);
        assert_eq!(d.hostname, Some(&br#"a"; rm -rf /; {../}"#[..]));
    }

    #[test]
    fn rejects() {
        assert_eq!(
            parse(b"Internet Systems Consortium DHCP Server 4.4.3"),
            Err(RejectReason::Unrecognised)
        );
        assert_eq!(
            parse(b"DHCPACK on 10.0.0 to x via eth0"),
            Err(RejectReason::Malformed)
        );
        assert_eq!(
            parse(b"DHCPLEASEQUERY from x via eth0"),
            Err(RejectReason::Unrecognised)
        );
        assert_eq!(
            parse(b"DHCPDISCOVER from 52:54:00:12:34:56"),
            Err(RejectReason::Unrecognised)
        );
    }
}
