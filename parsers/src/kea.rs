//! Kea DHCPv4 messages (`src/bin/dhcp4/dhcp4_messages.mes`,
//! `src/lib/dhcpsrv/alloc_engine_messages.mes`).
//!
//! A Kea message is `[SEVERITY] [[logger...]] MESSAGE_ID text`; the file
//! pattern is `%D{%Y-%m-%d %H:%M:%S.%q} %-5p [%c/%i.%t] %m` and the syslog
//! one `%-5p [%c.%t] %m`. Most texts start with the client label
//! `[hwtype=1 52:54:00:12:34:56], cid=[01:52:...], tid=0x1a2b3c4d: `.
//!
//! Recognised ids: `DHCP4_LEASE_ALLOC`, `DHCP4_LEASE_REUSE` (Ack),
//! `DHCP4_LEASE_ADVERT`, `DHCP4_LEASE_OFFER` (Offer), `DHCP4_RELEASE`,
//! `DHCP4_RELEASE_EXPIRED`, `DHCP4_RELEASE_DELETED` (Release),
//! `DHCP4_DECLINE_LEASE` (Decline), `DHCP4_INIT_REBOOT` (Request),
//! `DHCP4_PACKET_RECEIVED` and `DHCP4_PACKET_SEND` (the packet's type),
//! `DHCP4_QUERY_LABEL` (Received), `DHCP4_PACKET_NAK_*` (Nak),
//! `ALLOC_ENGINE_V4_ALLOC_FAIL*` (NoFreeLeases). Every other id is
//! [`RejectReason::Unrecognised`].

use crate::logline::{Dhcp, DhcpKind, LogLine, Record, RejectReason, Server, Stamp};
use crate::scan::{after, dec_u32, duid_mac, find, hex_u32_prefix, ipv4, mac, token, trim_start};

const SEVERITIES: [&[u8]; 5] = [b"FATAL", b"ERROR", b"WARN", b"INFO", b"DEBUG"];

/// True when a body with no program name looks like Kea's.
pub(crate) fn looks_like(body: &[u8]) -> bool {
    body.starts_with(b"DHCP4_")
        || body.starts_with(b"DHCP6_")
        || body.starts_with(b"ALLOC_ENGINE_V4")
        || body.starts_with(b"ALLOC_ENGINE_V6")
        || SEVERITIES.contains(&token(body).0)
}

/// A line of Kea's DHCPv4 memfile lease file (`kea-leases4.csv`), followed like a log:
/// `address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,
/// state,user_context[,…]`. Kea 2.2 to 2.6 keep these ten columns first, in this order (later
/// versions append `pool_id`), and a follower that starts in the middle of the file never
/// sees the header, so the order is taken as fixed. `None` when the line is not one; the
/// header is [`RejectReason::NotAServerLine`]. A lease is an `Ack` from `expire -
/// valid_lifetime`; `valid_lifetime` 0 records a deleted lease (`Release`) and `state` 1 a
/// declined address (`Decline`).
pub(crate) fn lease_row(line: &[u8]) -> Option<Result<LogLine<'_>, RejectReason>> {
    if line.starts_with(b"address,hwaddr,client_id,") {
        return Some(Err(RejectReason::NotAServerLine));
    }
    if !line.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let mut f = line.splitn(12, |&b| b == b',');
    let mut next = || f.next();
    let (address, hwaddr, client_id, valid, expire, subnet, fwd, rev, hostname, state) = (
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
        next()?,
    );
    let ip = ipv4(address)?;
    let number = |s: &[u8]| -> Option<i64> {
        if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let (valid, expire) = (number(valid)?, number(expire)?);
    number(subnet)?;
    let state = number(state)?;
    if !matches!(fwd, b"0" | b"1") || !matches!(rev, b"0" | b"1") {
        return None;
    }
    // An empty hardware address is Kea's for a lease known only by its client id.
    let mac = if hwaddr.is_empty() {
        None
    } else {
        Some(mac(hwaddr)?)
    };
    let kind = if valid == 0 {
        DhcpKind::Release
    } else if state == 1 {
        DhcpKind::Decline
    } else {
        DhcpKind::Ack
    };
    let starts = expire.checked_sub(valid)?;
    Some(Ok(LogLine {
        stamp: Some(Stamp::UnixMicros(starts.checked_mul(1_000_000)?)),
        host: None,
        program: Some(b"kea-dhcp4"),
        pid: None,
        record: Record::Dhcp(Dhcp {
            server: Server::Kea,
            kind,
            mac,
            ip: Some(ip),
            hostname: Some(hostname).filter(|h| !h.is_empty()),
            via: None,
            xid: None,
            note: None,
            client_id: Some(client_id).filter(|c| !c.is_empty()),
        }),
    }))
}

pub(crate) fn parse(body: &[u8]) -> Result<Dhcp<'_>, RejectReason> {
    let mut b = body;
    // Kea's own stamp inside a syslog or journal message (systemd runs it
    // with its file pattern on stdout): `2025-08-13 14:23:38.856 INFO ...`.
    if b.len() > 24 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        b = trim_start(token(token(b).1).1);
    }
    let (first, rest) = token(b);
    if SEVERITIES.contains(&first) {
        b = trim_start(rest);
    }
    if let Some(inner) = b.strip_prefix(b"[") {
        let close = crate::scan::pos(inner, b']').ok_or(RejectReason::Unrecognised)?;
        b = trim_start(&inner[close + 1..]);
    }
    let (id, text) = token(b);

    let kind_of_lease = |k| (k, after(text, b": lease "));
    let (kind, ip_at) = match id {
        b"DHCP4_LEASE_ALLOC" | b"DHCP4_LEASE_REUSE" => kind_of_lease(DhcpKind::Ack),
        b"DHCP4_LEASE_ADVERT" | b"DHCP4_LEASE_OFFER" => kind_of_lease(DhcpKind::Offer),
        b"DHCP4_RELEASE" | b"DHCP4_RELEASE_EXPIRED" | b"DHCP4_RELEASE_DELETED" => {
            (DhcpKind::Release, after(text, b": address "))
        }
        b"DHCP4_DECLINE_LEASE" => (DhcpKind::Decline, after(text, b"for addr ")),
        b"DHCP4_INIT_REBOOT" => (DhcpKind::Request, after(text, b"requests address ")),
        b"DHCP4_QUERY_LABEL" => (DhcpKind::Received, None),
        b"DHCP4_PACKET_RECEIVED" => (packet_kind(after(text, b": "))?, None),
        b"DHCP4_PACKET_SEND" => (packet_kind(after(text, b"trying to send packet "))?, None),
        // DHCPv6 (`dhcp6_messages.mes`): addresses are IPv6, the client a DUID.
        b"DHCP6_LEASE_ALLOC" | b"DHCP6_PD_LEASE_ALLOC" | b"DHCP6_LEASE_RENEW" => {
            (DhcpKind::Ack, None)
        }
        b"DHCP6_LEASE_ADVERT" | b"DHCP6_PD_LEASE_ADVERT" => (DhcpKind::Offer, None),
        b"DHCP6_RELEASE_NA" | b"DHCP6_RELEASE_PD" => (DhcpKind::Release, None),
        b"DHCP6_DECLINE_LEASE" => (DhcpKind::Decline, None),
        b"DHCP6_QUERY_LABEL" => (DhcpKind::Received, None),
        b"DHCP6_PACKET_RECEIVED" => (packet6_kind(after(text, b": "))?, None),
        _ if id.starts_with(b"ALLOC_ENGINE_V6_ALLOC_FAIL") => (DhcpKind::NoFreeLeases, None),
        _ if id.starts_with(b"DHCP4_PACKET_NAK_") => (DhcpKind::Nak, None),
        _ if id.starts_with(b"ALLOC_ENGINE_V4_ALLOC_FAIL") => (DhcpKind::NoFreeLeases, None),
        _ => return Err(RejectReason::Unrecognised),
    };

    let mut d = Dhcp {
        server: Server::Kea,
        kind,
        mac: None,
        ip: None,
        hostname: None,
        via: None,
        xid: None,
        note: None,
        client_id: None,
    };
    if let Some(at) = ip_at {
        d.ip = Some(ipv4(token(at).0).ok_or(RejectReason::Malformed)?);
    }
    if id.starts_with(b"DHCP6_") || id.starts_with(b"ALLOC_ENGINE_V6") {
        // Only a DUID-LL or DUID-LLT names the client's MAC.
        if let Some(duid) = after(text, b"duid=[") {
            let end = crate::scan::pos(duid, b']').unwrap_or(duid.len());
            d.mac = duid_mac(&duid[..end]);
            d.client_id = Some(&duid[..end]).filter(|c| *c != b"no info" && !c.is_empty());
        }
    } else if let Some(hw) = after(text, b"[hwtype=") {
        let (htype, rest) = token(hw);
        let end = crate::scan::pos(rest, b']').unwrap_or(rest.len());
        if dec_u32(htype) == Some(1) {
            d.mac = mac(&rest[..end]);
        }
    }
    if let Some(cid) = after(text, b"cid=[") {
        let end = crate::scan::pos(cid, b']').unwrap_or(cid.len());
        d.client_id = Some(&cid[..end]).filter(|c| *c != b"no info" && !c.is_empty());
    }
    let mut reason = None;
    if let Some(tid) = after(text, b"tid=0x") {
        d.xid = hex_u32_prefix(tid);
        reason = find(tid, b": ").map(|i| &tid[i + 2..]);
    }
    if (id == b"DHCP4_PACKET_RECEIVED"
        || id == b"DHCP4_PACKET_SEND"
        || id == b"DHCP6_PACKET_RECEIVED")
        && let Some(iface) = after(text, b"on interface ")
    {
        d.via = Some(token(iface).0).filter(|v| !v.is_empty());
    }
    if matches!(kind, DhcpKind::Nak | DhcpKind::NoFreeLeases) {
        d.note = reason.or(Some(text)).filter(|n| !n.is_empty());
    }
    Ok(d)
}

/// The DHCPv6 packet type word in `SOLICIT (type 1)`.
fn packet6_kind(s: Option<&[u8]>) -> Result<DhcpKind, RejectReason> {
    let word = token(s.ok_or(RejectReason::Malformed)?).0;
    Ok(match word {
        b"SOLICIT" => DhcpKind::Discover,
        b"ADVERTISE" => DhcpKind::Offer,
        b"REQUEST" | b"RENEW" | b"REBIND" | b"CONFIRM" => DhcpKind::Request,
        b"REPLY" => DhcpKind::Ack,
        b"RELEASE" => DhcpKind::Release,
        b"DECLINE" => DhcpKind::Decline,
        b"INFORMATION_REQUEST" | b"INFORMATION-REQUEST" => DhcpKind::Inform,
        _ => return Err(RejectReason::Unrecognised),
    })
}

/// The packet type word in `DHCPDISCOVER (type 1)`.
fn packet_kind(s: Option<&[u8]>) -> Result<DhcpKind, RejectReason> {
    let word = token(s.ok_or(RejectReason::Malformed)?).0;
    Ok(match word {
        b"DHCPDISCOVER" => DhcpKind::Discover,
        b"DHCPOFFER" => DhcpKind::Offer,
        b"DHCPREQUEST" => DhcpKind::Request,
        b"DHCPACK" => DhcpKind::Ack,
        b"DHCPNAK" => DhcpKind::Nak,
        b"DHCPRELEASE" => DhcpKind::Release,
        b"DHCPINFORM" => DhcpKind::Inform,
        b"DHCPDECLINE" => DhcpKind::Decline,
        _ => return Err(RejectReason::Unrecognised),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const IP: Option<Ipv4Addr> = Some(Ipv4Addr::new(10, 0, 0, 50));
    const LABEL: &str = "[hwtype=1 52:54:00:12:34:56], cid=[01:52:54:00:12:34:56], tid=0x1a2b3c4d";

    fn p(s: &str) -> Dhcp<'_> {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn lease_file_lines_followed_like_a_log() {
        let line = |s: &'static str| crate::parse_line(s.as_bytes());
        let l = line(
            "10.0.0.50,52:54:00:12:34:56,01:52:54:00:12:34:56,7200,1765087200,1,0,0,pc&#x2c42,0,\n",
        )
        .unwrap();
        assert_eq!(l.stamp, Some(Stamp::UnixMicros(1_765_080_000_000_000)));
        assert_eq!(l.program, Some(&b"kea-dhcp4"[..]));
        let Record::Dhcp(d) = l.record else {
            panic!("{l:?}")
        };
        assert_eq!(
            (d.server, d.kind, d.mac, d.ip),
            (Server::Kea, DhcpKind::Ack, Some(MAC), IP)
        );
        assert_eq!(d.hostname, Some(&b"pc&#x2c42"[..]));
        assert_eq!(d.client_id, Some(&b"01:52:54:00:12:34:56"[..]));
        // Kea 2.4's pool_id column, and a user context with escaped commas.
        let l = line(
            "10.0.0.50,52:54:00:12:34:56,,3600,1765087200,1,1,1,,0,{ \"a\": 1 &#x2c \"b\": 2 },0",
        )
        .unwrap();
        let Record::Dhcp(d) = l.record else {
            panic!("{l:?}")
        };
        assert_eq!(
            (d.kind, d.hostname, d.client_id),
            (DhcpKind::Ack, None, None)
        );
        // A deleted lease, a declined address, a lease with no MAC.
        let kind = |s: &'static str| match line(s).unwrap().record {
            Record::Dhcp(d) => (d.kind, d.mac),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            kind("10.0.0.50,52:54:00:12:34:56,,0,1765087200,1,0,0,,0,"),
            (DhcpKind::Release, Some(MAC))
        );
        assert_eq!(
            kind("10.0.0.50,52:54:00:12:34:56,,7200,1765087200,1,0,0,,1,"),
            (DhcpKind::Decline, Some(MAC))
        );
        assert_eq!(
            kind("10.0.0.50,,01:02:03,7200,1765087200,1,0,0,,0,"),
            (DhcpKind::Ack, None)
        );
        // The header is no server line; other lines starting with an address are not rows.
        assert_eq!(
            line("address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context")
                .unwrap_err()
                .reason,
            RejectReason::NotAServerLine
        );
        for not_a_row in [
            "10.0.0.50,52:54:00:12:34:56,,7200,soon,1,0,0,,0,",
            "10.0.0.50,52:54:00:12:34:56,,7200,1765087200,1,2,0,,0,",
            "10.0.0.50,zz:54:00:12:34:56,,7200,1765087200,1,0,0,,0,",
            "10.0.0.50,52:54:00:12:34:56,,7200",
            "10.0.0.999,52:54:00:12:34:56,,7200,1765087200,1,0,0,,0,",
        ] {
            assert!(
                !matches!(
                    line(not_a_row),
                    Ok(LogLine {
                        record: Record::Dhcp(_),
                        ..
                    })
                ),
                "{not_a_row}"
            );
        }
    }

    #[test]
    fn leases() {
        let s = format!(
            "INFO  [kea-dhcp4.leases/812.140234] DHCP4_LEASE_ALLOC {LABEL}: lease 10.0.0.50 has been allocated for 3600 seconds"
        );
        let d = p(&s);
        assert_eq!(
            (d.kind, d.mac, d.ip, d.xid),
            (DhcpKind::Ack, Some(MAC), IP, Some(0x1a2b3c4d))
        );
        assert_eq!(d.client_id, Some(&b"01:52:54:00:12:34:56"[..]));
        let s = format!("DHCP4_LEASE_ADVERT {LABEL}: lease 10.0.0.50 will be advertised");
        assert_eq!(p(&s).kind, DhcpKind::Offer);
        let s = format!(
            "INFO  [kea-dhcp4.leases.140234] DHCP4_RELEASE {LABEL}: address 10.0.0.50 was released properly."
        );
        assert_eq!((p(&s).kind, p(&s).ip), (DhcpKind::Release, IP));
        let s = format!(
            "INFO  [kea-dhcp4.dhcp4.1] DHCP4_DECLINE_LEASE Received DHCPDECLINE for addr 10.0.0.50 from client {LABEL}. The lease will be unavailable for 86400 seconds."
        );
        assert_eq!(
            (p(&s).kind, p(&s).ip, p(&s).mac),
            (DhcpKind::Decline, IP, Some(MAC))
        );
    }

    #[test]
    fn packets() {
        let s = format!(
            "DEBUG [kea-dhcp4.packets/812.140234] DHCP4_PACKET_RECEIVED {LABEL}: DHCPDISCOVER (type 1) received from 0.0.0.0 to 255.255.255.255 on interface eth0"
        );
        let d = p(&s);
        assert_eq!(
            (d.kind, d.via, d.ip),
            (DhcpKind::Discover, Some(&b"eth0"[..]), None)
        );
        let d = p(
            "INFO  [kea-dhcp4.dhcp4/1.2] DHCP4_QUERY_LABEL received query: [hwtype=1 52:54:00:12:34:56], cid=[no info], tid=0x5",
        );
        assert_eq!(
            (d.kind, d.mac, d.client_id, d.xid),
            (DhcpKind::Received, Some(MAC), None, Some(5))
        );
        let s = format!(
            "WARN  [kea-dhcp4.alloc-engine/1.2] ALLOC_ENGINE_V4_ALLOC_FAIL {LABEL}: failed to allocate an IPv4 address after 10 attempt(s)"
        );
        let d = p(&s);
        assert_eq!(d.kind, DhcpKind::NoFreeLeases);
        assert_eq!(
            d.note,
            Some(&b"failed to allocate an IPv4 address after 10 attempt(s)"[..])
        );
        let d = p("DHCP4_QUERY_LABEL received query: [no hwaddr info], cid=[no info], tid=0x5");
        assert_eq!(d.mac, None);
    }

    #[test]
    fn dhcpv6_macs_come_from_duid_ll_and_llt_only() {
        let d = p(
            "INFO  [kea-dhcp6.leases/1.2] DHCP6_LEASE_ALLOC duid=[00:01:00:01:2c:5a:3b:1e:52:54:00:12:34:56], [no hwaddr info], tid=0xa492a1: lease for address 2001:db8::1057 and iaid=0 has been allocated for 1800 seconds",
        );
        assert_eq!(
            (d.kind, d.mac, d.ip, d.xid),
            (DhcpKind::Ack, Some(MAC), None, Some(0xa492a1))
        );
        let d = p(
            "DHCP6_LEASE_ADVERT duid=[00:03:00:01:52:54:00:12:34:56], [hwtype=1 52:54:00:12:34:56], tid=0x1: lease for address 2001:db8::5 and iaid=1 will be advertised",
        );
        assert_eq!((d.kind, d.mac), (DhcpKind::Offer, Some(MAC)));
        // A DUID-EN is no MAC, even when Kea prints a hardware address.
        let d = p(
            "DHCP6_LEASE_ALLOC duid=[00:02:00:00:09:bf:12:34:56:78], [hwtype=1 52:54:00:12:34:56], tid=0x1: lease for address 2001:db8::5 and iaid=1 has been allocated for 60 seconds",
        );
        assert_eq!(d.mac, None);
        let d = p(
            "DEBUG [kea-dhcp6.packets/1.2] DHCP6_PACKET_RECEIVED duid=[00:03:00:01:52:54:00:12:34:56], [no hwaddr info], tid=0x2: SOLICIT (type 1) received from fe80::5054:ff:fe12:3456 to ff02::1:2 on interface eth0",
        );
        assert_eq!(
            (d.kind, d.mac, d.via),
            (DhcpKind::Discover, Some(MAC), Some(&b"eth0"[..]))
        );
    }

    #[test]
    fn rejects() {
        assert_eq!(parse(b"INFO  [kea-dhcp4.dhcp4/1.2] DHCP4_STARTED Kea DHCPv4 server version 2.6.1 started"), Err(RejectReason::Unrecognised));
        assert_eq!(
            parse(b"DHCP4_LEASE_ALLOC x: lease 10.0.0 has"),
            Err(RejectReason::Malformed)
        );
    }
}
