//! dnsmasq messages: DHCP (`rfc2131.c` `log_packet`, the `--log-dhcp`
//! detail lines) and TFTP (`tftp.c`).
//!
//! ```text
//! [<xid> ]<TYPE>(<iface>) [<ip> ]<mac> [<name-or-file>][<error>]
//! <xid> vendor class: <vc>          <xid> user class: <uc>
//! <xid> tags: <t1>, <t2>            <xid> client provides name: <name>
//! <xid> bootfile name: <file>       <xid> <anything else>
//! sent <path> to <ip>               file <path> not found[ for <ip>]
//! error <n> <msg> received from <ip>
//! failed sending <path> to <ip>     cannot access <path>: <reason>
//! unsupported request from <ip>
//! ```
//!
//! `<xid>` is printed with `%u` and appears only with `--log-dhcp`. Old
//! versions prefix TFTP lines with `TFTP `.

use crate::logline::{
    ClientInfo, Dhcp, DhcpKind, Info, Record, RejectReason, Server, Tftp, TftpKind,
};
use crate::scan::{dec_u32, duid_mac, ipv4, mac, peer_ipv4, rfind, token, trim_start};

/// Any dnsmasq message (DHCP, detail or TFTP).
pub(crate) fn parse(body: &[u8]) -> Result<Record<'_>, RejectReason> {
    let (first, rest) = token(body);
    if first.first().is_some_and(u8::is_ascii_digit) {
        let xid = dec_u32(first).ok_or(RejectReason::Unrecognised)?;
        if let Some(d) = dhcp_line(rest, Some(xid))? {
            return Ok(Record::Dhcp(d));
        }
        return Ok(Record::ClientInfo(ClientInfo {
            xid,
            info: info(rest),
        }));
    }
    if let Some(d) = dhcp_line(body, None)? {
        return Ok(Record::Dhcp(d));
    }
    parse_tftp(body).map(Record::Tftp)
}

/// `<TYPE>(<iface>) ...`; `Ok(None)` when the line is not of that shape.
fn dhcp_line(s: &[u8], xid: Option<u32>) -> Result<Option<Dhcp<'_>>, RejectReason> {
    // The type is a short upper-case word; detail lines start in lower case.
    if !s.first().is_some_and(u8::is_ascii_uppercase) {
        return Ok(None);
    }
    let Some(open) = crate::scan::pos(&s[..s.len().min(24)], b'(') else {
        return Ok(None);
    };
    let ty = &s[..open];
    let kind = match ty {
        b"DHCPDISCOVER" => DhcpKind::Discover,
        b"DHCPOFFER" => DhcpKind::Offer,
        b"DHCPREQUEST" => DhcpKind::Request,
        b"DHCPACK" => DhcpKind::Ack,
        b"DHCPNAK" => DhcpKind::Nak,
        b"DHCPRELEASE" => DhcpKind::Release,
        b"DHCPINFORM" => DhcpKind::Inform,
        b"DHCPDECLINE" => DhcpKind::Decline,
        b"BOOTP" => DhcpKind::BootReply,
        b"PXE" => DhcpKind::Pxe,
        // DHCPv6 (`rfc3315.c`): the client is a DUID.
        b"DHCPSOLICIT" => DhcpKind::Discover,
        b"DHCPADVERTISE" => DhcpKind::Offer,
        b"DHCPRENEW" | b"DHCPREBIND" | b"DHCPCONFIRM" => DhcpKind::Request,
        b"DHCPREPLY" => DhcpKind::Ack,
        b"DHCPINFORMATION-REQUEST" => DhcpKind::Inform,
        // Router advertisements and other words share the shape.
        _ if ty.iter().all(|c| c.is_ascii_uppercase() || *c == b'-') && !ty.is_empty() => {
            return Err(RejectReason::Unrecognised);
        }
        _ => return Ok(None),
    };
    let after_open = &s[open + 1..];
    let close = crate::scan::pos(after_open, b')').ok_or(RejectReason::Malformed)?;
    let iface = &after_open[..close];
    let rest = trim_start(&after_open[close + 1..]);

    let (t1, r1) = token(rest);
    let (ip, hw, tail) = match ipv4(t1) {
        Some(ip) if !r1.is_empty() => {
            let (t2, r2) = token(r1);
            (Some(ip), t2, r2)
        }
        // DHCPv6: `<ipv6 address> <duid>`.
        _ if !r1.is_empty() && is_ipv6(t1) => {
            let (t2, r2) = token(r1);
            (None, t2, r2)
        }
        _ => (None, t1, r1),
    };
    let tail = Some(trim_start(tail)).filter(|t| !t.is_empty());
    let mut d = Dhcp {
        server: Server::Dnsmasq,
        kind,
        mac: mac(hw).or_else(|| duid_mac(hw)),
        ip,
        hostname: None,
        via: Some(iface).filter(|i| !i.is_empty()),
        xid,
        note: None,
        client_id: None,
    };
    // On DHCPACK the free text is the client's name; elsewhere it is an
    // error (or, on PXE, the boot file / `proxy`).
    if kind == DhcpKind::Ack && tail != Some(b"no addresses available") {
        d.hostname = tail;
    } else {
        d.note = tail;
        if tail == Some(b"no address available") || tail == Some(b"no addresses available") {
            d.kind = DhcpKind::NoFreeLeases;
        }
    }
    Ok(Some(d))
}

/// An IPv6 address as `inet_ntop` prints it (not a DUID, whose groups are
/// all two hex digits).
fn is_ipv6(s: &[u8]) -> bool {
    s.len() >= 2
        && s.iter().all(|&c| c == b':' || c.is_ascii_hexdigit())
        && s.split(|&c| c == b':').any(|g| g.len() != 2)
}

fn info(s: &[u8]) -> Info<'_> {
    if let Some(v) = s.strip_prefix(b"vendor class: ") {
        Info::VendorClass(v)
    } else if let Some(v) = s.strip_prefix(b"user class: ") {
        Info::UserClass(v)
    } else if let Some(v) = s.strip_prefix(b"tags: ") {
        Info::Tags(v)
    } else if let Some(v) = s.strip_prefix(b"client provides name: ") {
        Info::ClientName(v)
    } else if let Some(v) = s.strip_prefix(b"bootfile name: ") {
        Info::BootFile(v)
    } else {
        Info::Other(s)
    }
}

/// dnsmasq's TFTP messages.
pub(crate) fn parse_tftp(body: &[u8]) -> Result<Tftp<'_>, RejectReason> {
    let b = body.strip_prefix(b"TFTP ").unwrap_or(body);
    let mut t = Tftp {
        kind: TftpKind::Error,
        file: None,
        peer: None,
        detail: None,
    };
    if let Some(r) = b.strip_prefix(b"sent ") {
        let at = rfind(r, b" to ").ok_or(RejectReason::Malformed)?;
        t.kind = TftpKind::Sent;
        t.file = Some(&r[..at]);
        t.peer = peer_ipv4(&r[at + 4..]);
    } else if let Some(r) = b.strip_prefix(b"file ") {
        t.kind = TftpKind::NotFound;
        if let Some(at) = rfind(r, b" not found for ") {
            t.file = Some(&r[..at]);
            t.peer = peer_ipv4(&r[at + 15..]);
        } else if let Some(f) = r.strip_suffix(b" not found") {
            t.file = Some(f);
        } else {
            return Err(RejectReason::Unrecognised);
        }
    } else if let Some(r) = b.strip_prefix(b"error ") {
        let at = rfind(r, b" received from ").ok_or(RejectReason::Unrecognised)?;
        t.detail = Some(&r[..at]);
        t.peer = peer_ipv4(&r[at + 15..]);
    } else if let Some(r) = b.strip_prefix(b"failed sending ") {
        let at = rfind(r, b" to ").ok_or(RejectReason::Malformed)?;
        t.file = Some(&r[..at]);
        t.peer = peer_ipv4(&r[at + 4..]);
        t.detail = Some(b"failed sending");
    } else if let Some(r) = b.strip_prefix(b"cannot access ") {
        let at = rfind(r, b": ").ok_or(RejectReason::Malformed)?;
        t.file = Some(&r[..at]);
        t.detail = Some(&r[at + 2..]);
    } else if let Some(r) = b.strip_prefix(b"unsupported request from ") {
        t.peer = peer_ipv4(r);
        t.detail = Some(b"unsupported request");
    } else {
        return Err(RejectReason::Unrecognised);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const IP: Option<Ipv4Addr> = Some(Ipv4Addr::new(10, 0, 0, 50));

    fn dhcp(s: &str) -> Dhcp<'_> {
        match parse(s.as_bytes()) {
            Ok(Record::Dhcp(d)) => d,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn dhcp_lines() {
        let d = dhcp("DHCPDISCOVER(br0) 52:54:00:12:34:56 ");
        assert_eq!(
            (d.kind, d.mac, d.ip, d.via),
            (DhcpKind::Discover, Some(MAC), None, Some(&b"br0"[..]))
        );
        let d = dhcp("DHCPOFFER(br0) 10.0.0.50 52:54:00:12:34:56");
        assert_eq!((d.kind, d.mac, d.ip), (DhcpKind::Offer, Some(MAC), IP));
        let d = dhcp("DHCPACK(br0) 10.0.0.50 52:54:00:12:34:56 pc-42");
        assert_eq!(
            (d.kind, d.hostname, d.note),
            (DhcpKind::Ack, Some(&b"pc-42"[..]), None)
        );
        let d = dhcp("DHCPNAK(br0) 10.0.0.50 52:54:00:12:34:56 wrong address");
        assert_eq!(
            (d.kind, d.note),
            (DhcpKind::Nak, Some(&b"wrong address"[..]))
        );
        let d = dhcp("DHCPDISCOVER(br0) 52:54:00:12:34:56 no address available");
        assert_eq!(
            (d.kind, d.note),
            (DhcpKind::NoFreeLeases, Some(&b"no address available"[..]))
        );
        let d = dhcp("1234567 DHCPREQUEST(br0) 10.0.0.50 52:54:00:12:34:56 ");
        assert_eq!(
            (d.kind, d.xid, d.ip),
            (DhcpKind::Request, Some(1234567), IP)
        );
        let d = dhcp("3173129068 PXE(vsrv) 10.10.0.37 52:54:00:aa:bb:07 ipxe.efi");
        assert_eq!((d.kind, d.note), (DhcpKind::Pxe, Some(&b"ipxe.efi"[..])));
        assert_eq!(
            parse(b"RTR-ADVERT(br0) fd00:6470:6865::"),
            Err(RejectReason::Unrecognised)
        );
    }

    #[test]
    fn dhcpv6_duid_ll_and_llt_carry_the_mac() {
        // dnsmasq's own words (rfc3315.c), as a forum post quoted them.
        let d = dhcp("658188 DHCPSOLICIT(br0) 00:03:00:01:52:54:00:12:34:56 ");
        assert_eq!(
            (d.kind, d.mac, d.xid, d.ip),
            (DhcpKind::Discover, Some(MAC), Some(658188), None)
        );
        let d = dhcp("DHCPADVERTISE(br0) fd00:6470:6865::54 00:03:00:01:52:54:00:12:34:56 ");
        assert_eq!((d.kind, d.mac), (DhcpKind::Offer, Some(MAC)));
        let d = dhcp("DHCPREPLY(br0) 2001:db8::c 00:01:00:01:2c:5a:3b:1e:52:54:00:12:34:56 pc-42");
        assert_eq!(
            (d.kind, d.mac, d.hostname),
            (DhcpKind::Ack, Some(MAC), Some(&b"pc-42"[..]))
        );
        let d = dhcp("DHCPREQUEST(br0) 00:01:00:01:2c:5a:3b:1e:52:54:00:12:34:56");
        assert_eq!((d.kind, d.mac), (DhcpKind::Request, Some(MAC)));
        // DUID-EN and DUID-UUID name no machine.
        let d = dhcp("DHCPSOLICIT(br0) 00:02:00:00:ab:11:f1:e2:d3:c4:b5:a6");
        assert_eq!(d.mac, None);
        let d = dhcp("DHCPADVERTISE(br0) 00:03:00:01:52:54:00:12:34:56 no addresses available");
        assert_eq!((d.kind, d.mac), (DhcpKind::NoFreeLeases, Some(MAC)));
    }

    #[test]
    fn details() {
        let i = |s: &'static str| match parse(s.as_bytes()) {
            Ok(Record::ClientInfo(c)) => c,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            i("1234567 vendor class: PXEClient:Arch:00000:UNDI:002001"),
            ClientInfo {
                xid: 1234567,
                info: Info::VendorClass(b"PXEClient:Arch:00000:UNDI:002001")
            }
        );
        assert_eq!(i("1 user class: iPXE").info, Info::UserClass(b"iPXE"));
        assert_eq!(i("1 tags: known, br0").info, Info::Tags(b"known, br0"));
        assert_eq!(
            i("1 client provides name: pc-42").info,
            Info::ClientName(b"pc-42")
        );
        assert_eq!(
            i("1 bootfile name: pxelinux.0").info,
            Info::BootFile(b"pxelinux.0")
        );
        assert_eq!(
            i("1 sent size: 11 option: 67 bootfile-name pxelinux.0").info,
            Info::Other(b"sent size: 11 option: 67 bootfile-name pxelinux.0")
        );
        assert_eq!(
            parse(b"99999999999 tags: x"),
            Err(RejectReason::Unrecognised)
        );
    }

    #[test]
    fn tftp_lines() {
        let t = parse_tftp(b"sent /srv/tftp/pxelinux.0 to 10.0.0.50").unwrap();
        assert_eq!(
            (t.kind, t.file, t.peer),
            (TftpKind::Sent, Some(&b"/srv/tftp/pxelinux.0"[..]), IP)
        );
        let t = parse_tftp(b"file /srv/tftp/pxelinux.cfg/01-52-54-00-12-34-56 not found").unwrap();
        assert_eq!((t.kind, t.peer), (TftpKind::NotFound, None));
        let t = parse_tftp(b"file /srv/x not found for 10.0.0.50").unwrap();
        assert_eq!((t.file, t.peer), (Some(&b"/srv/x"[..]), IP));
        let t = parse_tftp(b"error 0 TFTP Aborted received from 10.0.0.50").unwrap();
        assert_eq!(
            (t.kind, t.detail, t.peer),
            (TftpKind::Error, Some(&b"0 TFTP Aborted"[..]), IP)
        );
        let t = parse_tftp(b"TFTP sent /tftpboot/pxelinux.0 to 10.0.0.50").unwrap();
        assert_eq!(t.kind, TftpKind::Sent);
        let t = parse_tftp(b"sent /srv/my file to x.0 to 10.0.0.50").unwrap();
        assert_eq!(t.file, Some(&b"/srv/my file to x.0"[..]));
        assert_eq!(
            parse_tftp(b"started, version 2.90"),
            Err(RejectReason::Unrecognised)
        );
    }
}
