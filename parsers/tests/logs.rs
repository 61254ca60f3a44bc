//! Every message shape nmt reads, in every envelope, plus hostile input.
//!
//! The message bodies are the servers' own formats (ISC dhcpd
//! `server/dhcp.c` and `bootp.c`, dnsmasq `rfc2131.c` and `tftp.c`, Kea's
//! `dhcp4_messages.mes`, tftpd-hpa's `tftpd.c`), filled in with lab values.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use nmt_parsers::{
    Dhcp, DhcpKind, Info, LogLine, Record, RejectReason, Stamp, TftpKind, arch_from_vendor_class,
    parse_journal_json, parse_line,
};

/// (program, message body, expected summary of the record).
const CASES: &[(&str, &str, &str)] = &[
    // ISC dhcpd
    (
        "dhcpd",
        "DHCPDISCOVER from 52:54:00:12:34:56 via eth0",
        "dhcp isc Discover mac=52:54:00:12:34:56 via=eth0",
    ),
    (
        "dhcpd",
        "DHCPDISCOVER from 52:54:00:12:34:56 (pc-42) via 10.0.0.1",
        "dhcp isc Discover mac=52:54:00:12:34:56 host=pc-42 via=10.0.0.1",
    ),
    (
        "dhcpd",
        "DHCPDISCOVER from 0:c:29:a:b:c via eth0",
        "dhcp isc Discover mac=00:0c:29:0a:0b:0c via=eth0",
    ),
    (
        "dhcpd",
        "DHCPOFFER on 10.0.0.50 to 52:54:00:12:34:56 (pc-42) via eth0",
        "dhcp isc Offer mac=52:54:00:12:34:56 ip=10.0.0.50 host=pc-42 via=eth0",
    ),
    (
        "dhcpd",
        "DHCPREQUEST for 10.0.0.50 (10.0.0.1) from 52:54:00:12:34:56 (pc-42) via eth0",
        "dhcp isc Request mac=52:54:00:12:34:56 ip=10.0.0.50 host=pc-42 via=eth0",
    ),
    (
        "dhcpd",
        "DHCPREQUEST for 10.0.0.50 from 52:54:00:12:34:56 via eth0: wrong network.",
        "dhcp isc Request mac=52:54:00:12:34:56 ip=10.0.0.50 via=eth0 note=wrong network",
    ),
    (
        "dhcpd",
        "DHCPREQUEST for 10.0.0.50 from 52:54:00:12:34:56 via eth0: unknown lease 10.0.0.50.",
        "dhcp isc Request mac=52:54:00:12:34:56 ip=10.0.0.50 via=eth0 note=unknown lease 10.0.0.50",
    ),
    (
        "dhcpd",
        "DHCPREQUEST for 10.9.9.9 from 52:54:00:12:34:56 via eth0: ignored (not authoritative).",
        "dhcp isc Request mac=52:54:00:12:34:56 ip=10.9.9.9 via=eth0 note=ignored (not authoritative)",
    ),
    (
        "dhcpd",
        "DHCPREQUEST for 10.0.0.50 (10.0.0.2) from 52:54:00:12:34:56 via eth0: lease owned by peer",
        "dhcp isc Request mac=52:54:00:12:34:56 ip=10.0.0.50 via=eth0 note=lease owned by peer",
    ),
    (
        "dhcpd",
        "DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 (pc-42) via eth0",
        "dhcp isc Ack mac=52:54:00:12:34:56 ip=10.0.0.50 host=pc-42 via=eth0",
    ),
    (
        "dhcpd",
        "DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 (pc) uid 01:52:54:00:12:34:56 via eth0",
        "dhcp isc Ack mac=52:54:00:12:34:56 ip=10.0.0.50 host=pc via=eth0 cid=01:52:54:00:12:34:56",
    ),
    (
        "dhcpd",
        r#"DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 (pc) uid "\001RT4\000\0224V" via eth0"#,
        r#"dhcp isc Ack mac=52:54:00:12:34:56 ip=10.0.0.50 host=pc via=eth0 cid="\001RT4\000\0224V""#,
    ),
    (
        "dhcpd",
        "DHCPACK to 10.0.0.50 (52:54:00:12:34:56) via eth0",
        "dhcp isc Ack mac=52:54:00:12:34:56 ip=10.0.0.50 via=eth0",
    ),
    (
        "dhcpd",
        "DHCPNAK on 10.0.0.50 to 52:54:00:12:34:56 via eth0",
        "dhcp isc Nak mac=52:54:00:12:34:56 ip=10.0.0.50 via=eth0",
    ),
    (
        "dhcpd",
        "DHCPRELEASE of 10.0.0.50 from 52:54:00:12:34:56 (pc-42) via eth0 (found)",
        "dhcp isc Release mac=52:54:00:12:34:56 ip=10.0.0.50 host=pc-42 via=eth0 note=found",
    ),
    (
        "dhcpd",
        "DHCPRELEASE of 10.0.0.50 from 52:54:00:12:34:56 via eth0 (not found)",
        "dhcp isc Release mac=52:54:00:12:34:56 ip=10.0.0.50 via=eth0 note=not found",
    ),
    (
        "dhcpd",
        "DHCPINFORM from 10.0.0.50 via eth0",
        "dhcp isc Inform ip=10.0.0.50 via=eth0",
    ),
    (
        "dhcpd",
        "DHCPDECLINE of 10.0.0.50 from 52:54:00:12:34:56 via eth0: abandoned",
        "dhcp isc Decline mac=52:54:00:12:34:56 ip=10.0.0.50 via=eth0 note=abandoned",
    ),
    (
        "dhcpd",
        "DHCPDISCOVER from 52:54:00:12:34:56 via eth0: network 10.0.0.0/24: no free leases",
        "dhcp isc NoFreeLeases mac=52:54:00:12:34:56 via=eth0 note=network 10.0.0.0/24: no free leases",
    ),
    (
        "dhcpd",
        "DHCPDISCOVER from 52:54:00:12:34:56 via eth0: peer holds all free leases",
        "dhcp isc NoFreeLeases mac=52:54:00:12:34:56 via=eth0 note=peer holds all free leases",
    ),
    (
        "dhcpd",
        "DHCPDISCOVER from 52:54:00:12:34:56 via eth0: unknown network segment",
        "dhcp isc Discover mac=52:54:00:12:34:56 via=eth0 note=unknown network segment",
    ),
    (
        "dhcpd",
        "BOOTREQUEST from 52:54:00:12:34:56 via eth0",
        "dhcp isc BootRequest mac=52:54:00:12:34:56 via=eth0",
    ),
    (
        "dhcpd",
        "BOOTREQUEST from 52:54:00:12:34:56 via eth0: BOOTP from dynamic client and no dynamic leases",
        "dhcp isc BootRequest mac=52:54:00:12:34:56 via=eth0 note=BOOTP from dynamic client and no dynamic leases",
    ),
    (
        "dhcpd",
        "BOOTREPLY for 10.0.0.50 to pc-42 (52:54:00:12:34:56) via eth0",
        "dhcp isc BootReply mac=52:54:00:12:34:56 ip=10.0.0.50 host=pc-42 via=eth0",
    ),
    (
        "dhcpd",
        "BOOTREPLY on 10.0.0.50 to 52:54:00:12:34:56 via 10.0.0.1",
        "dhcp isc BootReply mac=52:54:00:12:34:56 ip=10.0.0.50 via=10.0.0.1",
    ),
    // dnsmasq DHCP, without and with --log-dhcp (dnsmasq leaves a trailing space)
    (
        "dnsmasq-dhcp",
        "DHCPDISCOVER(br0) 52:54:00:12:34:56 ",
        "dhcp dnsmasq Discover mac=52:54:00:12:34:56 via=br0",
    ),
    (
        "dnsmasq-dhcp",
        "DHCPOFFER(br0) 10.0.0.50 52:54:00:12:34:56 ",
        "dhcp dnsmasq Offer mac=52:54:00:12:34:56 ip=10.0.0.50 via=br0",
    ),
    (
        "dnsmasq-dhcp",
        "DHCPREQUEST(br0) 10.0.0.50 52:54:00:12:34:56 ",
        "dhcp dnsmasq Request mac=52:54:00:12:34:56 ip=10.0.0.50 via=br0",
    ),
    (
        "dnsmasq-dhcp",
        "DHCPACK(br0) 10.0.0.50 52:54:00:12:34:56 pc-42",
        "dhcp dnsmasq Ack mac=52:54:00:12:34:56 ip=10.0.0.50 host=pc-42 via=br0",
    ),
    (
        "dnsmasq-dhcp",
        "DHCPNAK(br0) 10.0.0.50 52:54:00:12:34:56 wrong address",
        "dhcp dnsmasq Nak mac=52:54:00:12:34:56 ip=10.0.0.50 via=br0 note=wrong address",
    ),
    (
        "dnsmasq-dhcp",
        "DHCPRELEASE(br0) 10.0.0.50 52:54:00:12:34:56 ",
        "dhcp dnsmasq Release mac=52:54:00:12:34:56 ip=10.0.0.50 via=br0",
    ),
    (
        "dnsmasq-dhcp",
        "DHCPDISCOVER(br0) 52:54:00:12:34:56 no address available",
        "dhcp dnsmasq NoFreeLeases mac=52:54:00:12:34:56 via=br0 note=no address available",
    ),
    (
        "dnsmasq-dhcp",
        "DHCPINFORM(br0) 10.0.0.50 52:54:00:12:34:56 ",
        "dhcp dnsmasq Inform mac=52:54:00:12:34:56 ip=10.0.0.50 via=br0",
    ),
    (
        "dnsmasq-dhcp",
        "DHCPDECLINE(br0) 10.0.0.50 52:54:00:12:34:56 ",
        "dhcp dnsmasq Decline mac=52:54:00:12:34:56 ip=10.0.0.50 via=br0",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 DHCPDISCOVER(br0) 52:54:00:12:34:56 ",
        "dhcp dnsmasq Discover mac=52:54:00:12:34:56 via=br0 xid=1234567",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 DHCPACK(br0) 10.0.0.50 52:54:00:12:34:56 pc-42",
        "dhcp dnsmasq Ack mac=52:54:00:12:34:56 ip=10.0.0.50 host=pc-42 via=br0 xid=1234567",
    ),
    (
        "dnsmasq-dhcp",
        "3173129068 PXE(br0) 10.0.0.50 52:54:00:12:34:56 pxelinux.0",
        "dhcp dnsmasq Pxe mac=52:54:00:12:34:56 ip=10.0.0.50 via=br0 xid=3173129068 note=pxelinux.0",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 vendor class: PXEClient:Arch:00000:UNDI:002001",
        "info 1234567 vendor=PXEClient:Arch:00000:UNDI:002001",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 user class: iPXE",
        "info 1234567 user=iPXE",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 tags: known, br0",
        "info 1234567 tags=known, br0",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 client provides name: pc-42",
        "info 1234567 name=pc-42",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 bootfile name: pxelinux.0",
        "info 1234567 bootfile=pxelinux.0",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 sent size: 11 option: 67 bootfile-name pxelinux.0",
        "info 1234567 other=sent size: 11 option: 67 bootfile-name pxelinux.0",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 requested options: 1:netmask, 3:router, 6:dns-server, 43:vendor-encap,",
        "info 1234567 other=requested options: 1:netmask, 3:router, 6:dns-server, 43:vendor-encap,",
    ),
    (
        "dnsmasq-dhcp",
        "1234567 available DHCP range: 10.0.0.50 -- 10.0.0.150",
        "info 1234567 other=available DHCP range: 10.0.0.50 -- 10.0.0.150",
    ),
    // dnsmasq TFTP
    (
        "dnsmasq-tftp",
        "sent /srv/tftp/pxelinux.0 to 10.0.0.50",
        "tftp Sent file=/srv/tftp/pxelinux.0 peer=10.0.0.50",
    ),
    (
        "dnsmasq-tftp",
        "file /srv/tftp/pxelinux.cfg/01-52-54-00-12-34-56 not found",
        "tftp NotFound file=/srv/tftp/pxelinux.cfg/01-52-54-00-12-34-56",
    ),
    (
        "dnsmasq-tftp",
        "file /srv/tftp/pxelinux.cfg/0A00 not found for 10.0.0.50",
        "tftp NotFound file=/srv/tftp/pxelinux.cfg/0A00 peer=10.0.0.50",
    ),
    (
        "dnsmasq-tftp",
        "error 0 TFTP Aborted received from 10.0.0.50",
        "tftp Error peer=10.0.0.50 detail=0 TFTP Aborted",
    ),
    (
        "dnsmasq-tftp",
        "failed sending /srv/tftp/vmlinuz to 10.0.0.50",
        "tftp Error file=/srv/tftp/vmlinuz peer=10.0.0.50 detail=failed sending",
    ),
    // Kea DHCPv4 through syslog (`%-5p [%c.%t] %m`)
    (
        "kea-dhcp4",
        "INFO  [kea-dhcp4.leases.140234] DHCP4_LEASE_ALLOC [hwtype=1 52:54:00:12:34:56], cid=[01:52:54:00:12:34:56], tid=0x1a2b3c4d: lease 10.0.0.50 has been allocated for 3600 seconds",
        "dhcp kea Ack mac=52:54:00:12:34:56 ip=10.0.0.50 xid=439041101 cid=01:52:54:00:12:34:56",
    ),
    (
        "kea-dhcp4",
        "INFO  [kea-dhcp4.leases.140234] DHCP4_LEASE_ADVERT [hwtype=1 52:54:00:12:34:56], cid=[no info], tid=0x1a2b3c4d: lease 10.0.0.50 will be advertised",
        "dhcp kea Offer mac=52:54:00:12:34:56 ip=10.0.0.50 xid=439041101",
    ),
    (
        "kea-dhcp4",
        "INFO  [kea-dhcp4.leases.140234] DHCP4_RELEASE [hwtype=1 52:54:00:12:34:56], cid=[no info], tid=0x1a2b3c4d: address 10.0.0.50 was released properly.",
        "dhcp kea Release mac=52:54:00:12:34:56 ip=10.0.0.50 xid=439041101",
    ),
    (
        "kea-dhcp4",
        "INFO  [kea-dhcp4.leases.140234] DHCP4_DECLINE_LEASE Received DHCPDECLINE for addr 10.0.0.50 from client [hwtype=1 52:54:00:12:34:56], cid=[no info], tid=0x1a2b3c4d. The lease will be unavailable for 86400 seconds.",
        "dhcp kea Decline mac=52:54:00:12:34:56 ip=10.0.0.50 xid=439041101",
    ),
    (
        "kea-dhcp4",
        "DEBUG [kea-dhcp4.packets.140234] DHCP4_PACKET_RECEIVED [hwtype=1 52:54:00:12:34:56], cid=[no info], tid=0x1a2b3c4d: DHCPDISCOVER (type 1) received from 0.0.0.0 to 255.255.255.255 on interface eth0",
        "dhcp kea Discover mac=52:54:00:12:34:56 via=eth0 xid=439041101",
    ),
    (
        "kea-dhcp4",
        "INFO  [kea-dhcp4.dhcp4.140234] DHCP4_QUERY_LABEL received query: [hwtype=1 52:54:00:12:34:56], cid=[no info], tid=0x1a2b3c4d",
        "dhcp kea Received mac=52:54:00:12:34:56 xid=439041101",
    ),
    (
        "kea-dhcp4",
        "INFO  [kea-dhcp4.dhcp4.140234] DHCP4_INIT_REBOOT [hwtype=1 52:54:00:12:34:56], cid=[no info], tid=0x1a2b3c4d: client is in INIT-REBOOT state and requests address 10.0.0.50",
        "dhcp kea Request mac=52:54:00:12:34:56 ip=10.0.0.50 xid=439041101",
    ),
    (
        "kea-dhcp4",
        "WARN  [kea-dhcp4.alloc-engine.140234] ALLOC_ENGINE_V4_ALLOC_FAIL [hwtype=1 52:54:00:12:34:56], cid=[no info], tid=0x1a2b3c4d: failed to allocate an IPv4 address after 10 attempt(s)",
        "dhcp kea NoFreeLeases mac=52:54:00:12:34:56 xid=439041101 note=failed to allocate an IPv4 address after 10 attempt(s)",
    ),
    // tftpd-hpa
    (
        "in.tftpd",
        "RRQ from 10.0.0.50 filename pxelinux.0",
        "tftp Request file=pxelinux.0 peer=10.0.0.50",
    ),
    (
        "in.tftpd",
        "RRQ from ::ffff:10.0.0.50 filename /pxelinux.cfg/01-52-54-00-12-34-56",
        "tftp Request file=/pxelinux.cfg/01-52-54-00-12-34-56 peer=10.0.0.50",
    ),
    (
        "in.tftpd",
        "RRQ from 10.0.0.50 filename pxelinux.bin remapped to pxelinux.0",
        "tftp Request file=pxelinux.bin peer=10.0.0.50",
    ),
    (
        "in.tftpd",
        "tftpd: read: Connection refused",
        "tftp Error detail=read: Connection refused",
    ),
];

fn hex_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn summary(r: &Record<'_>) -> String {
    let mut out = String::new();
    match r {
        Record::Dhcp(d) => {
            let server = match d.server {
                nmt_parsers::Server::IscDhcpd => "isc",
                nmt_parsers::Server::Dnsmasq => "dnsmasq",
                nmt_parsers::Server::Kea => "kea",
            };
            write!(out, "dhcp {server} {:?}", d.kind).unwrap();
            if let Some(m) = d.mac {
                write!(out, " mac={}", hex_mac(m)).unwrap();
            }
            if let Some(ip) = d.ip {
                write!(out, " ip={ip}").unwrap();
            }
            if let Some(h) = d.hostname {
                write!(out, " host={}", s(h)).unwrap();
            }
            if let Some(v) = d.via {
                write!(out, " via={}", s(v)).unwrap();
            }
            if let Some(x) = d.xid {
                write!(out, " xid={x}").unwrap();
            }
            if let Some(n) = d.note {
                write!(out, " note={}", s(n)).unwrap();
            }
            if let Some(c) = d.client_id {
                write!(out, " cid={}", s(c)).unwrap();
            }
        }
        Record::ClientInfo(c) => {
            let (k, v) = match c.info {
                Info::VendorClass(v) => ("vendor", v),
                Info::UserClass(v) => ("user", v),
                Info::Tags(v) => ("tags", v),
                Info::ClientName(v) => ("name", v),
                Info::BootFile(v) => ("bootfile", v),
                Info::Other(v) => ("other", v),
                _ => ("?", &b""[..]),
            };
            write!(out, "info {} {k}={}", c.xid, s(v)).unwrap();
        }
        Record::Tftp(t) => {
            write!(out, "tftp {:?}", t.kind).unwrap();
            if let Some(f) = t.file {
                write!(out, " file={}", s(f)).unwrap();
            }
            if let Some(p) = t.peer {
                write!(out, " peer={p}").unwrap();
            }
            if let Some(d) = t.detail {
                write!(out, " detail={}", s(d)).unwrap();
            }
        }
    }
    out
}

const NOYEAR: Stamp = Stamp::NoYear {
    month: 11,
    day: 20,
    hour: 2,
    minute: 5,
    second: 11,
    nanos: 0,
};

fn full(offset_seconds: Option<i32>, nanos: u32) -> Stamp {
    Stamp::Full {
        year: 2026,
        month: 11,
        day: 20,
        hour: 2,
        minute: 5,
        second: 11,
        nanos,
        offset_seconds,
    }
}

/// What the envelope part of a parsed line must be.
struct Want<'a> {
    summary: &'a str,
    stamp: Option<Stamp>,
    host: Option<&'a str>,
    program: Option<&'a str>,
    pid: Option<u32>,
}

/// One body wrapped in one envelope.
struct Wrapped {
    name: &'static str,
    line: String,
    stamp: Option<Stamp>,
    host: Option<&'static str>,
    has_program: bool,
    pid: Option<u32>,
}

/// The envelopes every body is wrapped in, with what each must yield.
fn envelopes(program: &str, body: &str) -> Vec<Wrapped> {
    let w = |name, line, stamp, host, has_program, pid| Wrapped {
        name,
        line,
        stamp,
        host,
        has_program,
        pid,
    };
    vec![
        w("bare", body.to_string(), None, None, false, None),
        w(
            "rfc3164",
            format!("Nov 20 02:05:11 boot1 {program}[812]: {body}"),
            Some(NOYEAR),
            Some("boot1"),
            true,
            Some(812),
        ),
        w(
            "rfc3164-no-pid",
            format!("Nov 20 02:05:11 boot1 {program}: {body}"),
            Some(NOYEAR),
            Some("boot1"),
            true,
            None,
        ),
        w(
            "rfc3164-no-host",
            format!("Nov 20 02:05:11 {program}[812]: {body}"),
            Some(NOYEAR),
            None,
            true,
            Some(812),
        ),
        w(
            "rfc3164-pri",
            format!("<30>Nov 20 02:05:11 boot1 {program}[812]: {body}"),
            Some(NOYEAR),
            Some("boot1"),
            true,
            Some(812),
        ),
        w(
            "rfc5424",
            format!("<30>1 2026-11-20T02:05:11.123456+01:00 boot1 {program} 812 - - {body}"),
            Some(full(Some(3600), 123_456_000)),
            Some("boot1"),
            true,
            Some(812),
        ),
        w(
            "rfc5424-sd",
            format!(
                r#"<30>1 2026-11-20T02:05:11.123456Z boot1 {program} 812 ID47 [origin ip="10.0.0.1" x="a\]b"] {body}"#
            ),
            Some(full(Some(0), 123_456_000)),
            Some("boot1"),
            true,
            Some(812),
        ),
        w(
            "rsyslog-hp",
            format!("2026-11-20T02:05:11.123456+00:00 boot1 {program}[812]: {body}"),
            Some(full(Some(0), 123_456_000)),
            Some("boot1"),
            true,
            Some(812),
        ),
        w(
            "crlf",
            format!("Nov 20 02:05:11 boot1 {program}[812]: {body}\r"),
            Some(NOYEAR),
            Some("boot1"),
            true,
            Some(812),
        ),
    ]
}

fn check(name: &str, line: &[u8], parsed: &LogLine<'_>, want: &Want<'_>) {
    let ctx = format!("{name}: {}", s(line));
    assert_eq!(summary(&parsed.record), want.summary, "{ctx}");
    assert_eq!(parsed.stamp, want.stamp, "{ctx}");
    assert_eq!(parsed.host.map(s).as_deref(), want.host, "{ctx}");
    assert_eq!(parsed.program.map(s).as_deref(), want.program, "{ctx}");
    assert_eq!(parsed.pid, want.pid, "{ctx}");
}

#[test]
fn every_shape_in_every_envelope() {
    let mut checked = 0;
    for &(program, body, want) in CASES {
        for e in envelopes(program, body) {
            if e.name == "bare" && body.starts_with("tftpd: ") {
                // Bare, tftpd-hpa's own `tftpd:` prefix reads as the tag.
                continue;
            }
            let parsed = parse_line(e.line.as_bytes())
                .unwrap_or_else(|err| panic!("{}: {:?} rejected: {err}", e.name, e.line));
            let expect = Want {
                summary: want,
                stamp: e.stamp,
                host: e.host,
                program: e.has_program.then_some(program),
                pid: e.pid,
            };
            check(e.name, e.line.as_bytes(), &parsed, &expect);
            checked += 1;
        }
        // journald, MESSAGE as a string and as an array of bytes.
        for as_bytes in [false, true] {
            let message = if as_bytes {
                serde_json::json!(body.as_bytes())
            } else {
                serde_json::json!(body)
            };
            let json = serde_json::json!({
                "__CURSOR": "s=739ad463348b4ceca5a9e69c95a3c93f;i=4ece7;b=6c7c6013a8b34d3ebb4f3ca5f4fe5d33;m=9f4b2d3a;t=5ec1a8b0b39a8;x=67b4f4a6a8c6d3c1",
                "__REALTIME_TIMESTAMP": "1795140311123456",
                "_HOSTNAME": "boot1",
                "SYSLOG_IDENTIFIER": program,
                "_PID": "812",
                "MESSAGE": message,
            })
            .to_string();
            let entry = parse_journal_json(json.as_bytes())
                .unwrap_or_else(|e| panic!("journal: {json} rejected: {e}"));
            assert!(entry.cursor.as_deref().unwrap().starts_with("s=739a"));
            let parsed = entry.log_line().unwrap();
            let expect = Want {
                summary: want,
                stamp: Some(Stamp::UnixMicros(1795140311123456)),
                host: Some("boot1"),
                program: Some(program),
                pid: Some(812),
            };
            check("journal", json.as_bytes(), &parsed, &expect);
            checked += 1;
        }
    }
    // Every case in every envelope, but the one bare tftpd-hpa line.
    assert_eq!(checked, CASES.len() * 11 - 1);
}

#[test]
fn kea_own_file_format() {
    for &(program, body, want) in CASES.iter().filter(|c| c.0 == "kea-dhcp4") {
        // Kea's file pattern has `[logger/pid.tid]` where syslog has `[logger.tid]`.
        let body = body.replacen(".140234]", "/812.140234]", 1);
        let line = format!("2026-11-20 02:05:11.123 {body}");
        let parsed = parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        let expect = Want {
            summary: want,
            stamp: Some(full(None, 123_000_000)),
            host: None,
            program: Some(program),
            pid: Some(812),
        };
        check("kea-file", line.as_bytes(), &parsed, &expect);
    }
}

#[test]
fn vendor_class_architectures() {
    assert_eq!(
        arch_from_vendor_class(b"PXEClient:Arch:00000:UNDI:002001"),
        Some(0)
    );
    assert_eq!(
        arch_from_vendor_class(b"PXEClient:Arch:00007:UNDI:003016"),
        Some(7)
    );
    assert_eq!(arch_from_vendor_class(b"PXEClient:Arch:00009"), Some(9));
    assert_eq!(
        arch_from_vendor_class(b"HTTPClient:Arch:00016:UNDI:003001"),
        Some(16)
    );
    assert_eq!(arch_from_vendor_class(b"udhcp 1.35.0"), None);
    assert_eq!(arch_from_vendor_class(b"PXEClient:Arch:99999"), None);
    assert_eq!(arch_from_vendor_class(b"PXEClient:Arch::UNDI"), None);
    assert_eq!(arch_from_vendor_class(b"PXEClient:Arch:0x7"), None);
}

fn reason(line: &[u8]) -> RejectReason {
    match parse_line(line) {
        Ok(l) => panic!("{:?} accepted as {l:?}", s(line)),
        Err(e) => e.reason,
    }
}

#[test]
fn rejects_are_counted_not_fatal() {
    use RejectReason::*;
    assert_eq!(reason(b""), Empty);
    assert_eq!(reason(b"   \r"), Empty);
    assert_eq!(
        reason(b"Nov 20 02:05:11 boot1 sshd[99]: Accepted publickey for root"),
        NotAServerLine
    );
    assert_eq!(
        reason(b"Nov 20 02:05:11 boot1 CRON[5]: (root) CMD (sent x to 10.0.0.1)"),
        NotAServerLine
    );
    assert_eq!(reason(b"Nov 20 02:05:11 boot1 -- MARK --"), NotAServerLine);
    assert_eq!(
        reason(
            b"Nov 20 02:05:11 boot1 dhcpd[812]: Internet Systems Consortium DHCP Server 4.4.3-P1"
        ),
        Unrecognised
    );
    assert_eq!(reason(b"Nov 20 02:05:11 boot1 dhcpd[812]: Listening on LPF/eth0/52:54:00:12:34:56/10.0.0.0/24"), Unrecognised);
    assert_eq!(
        reason(b"Nov 20 02:05:11 boot1 dnsmasq[812]: started, version 2.90 cachesize 150"),
        Unrecognised
    );
    assert_eq!(reason(b"Nov 20 02:05:11 boot1 dnsmasq-dhcp[812]: DHCP, IP range 10.0.0.50 -- 10.0.0.150, lease time 1h"), Unrecognised);
    assert_eq!(
        reason(b"Nov 20 02:05:11 boot1 dnsmasq-dhcp[812]: RTR-ADVERT(br0) fd00:6470:6865::"),
        Unrecognised
    );
    assert_eq!(reason(b"2026-11-20 02:05:11.123 INFO  [kea-dhcp4.dhcp4/812.1] DHCP4_STARTED Kea DHCPv4 server version 2.6.1 started"), Unrecognised);
    assert_eq!(
        reason(b"2026-11-20 02:05:11.123 INFO  [kea-dhcp6.dhcp6/812.1] DHCP6_STARTED x"),
        Unrecognised
    );
    assert_eq!(
        reason(b"2026-11-20 02:05:11.123 INFO  [kea-dhcp-ddns.d2/812.1] DHCP_DDNS_STARTED x"),
        NotAServerLine
    );
    assert_eq!(reason(b"Nov 20 02:05:11 boot1 dhcpd[812]: DHCPACK on 10.0.0.999 to 52:54:00:12:34:56 via eth0"), Malformed);
    assert_eq!(reason(b"Nov 32 02:05:11 boot1 dhcpd[812]: x"), BadEnvelope);
    assert_eq!(reason(b"Nov 20 02:05 boot1 dhcpd[812]: x"), BadEnvelope);
    assert_eq!(
        reason(b"2026-13-20T02:05:11Z boot1 dhcpd[812]: x"),
        BadEnvelope
    );
    assert_eq!(reason(b"<30>1 2026-11-20T02:05:11Z boot1"), BadEnvelope);
    assert_eq!(reason(b"hello world"), Unrecognised);
    let huge = vec![b'a'; 100 * 1024];
    assert_eq!(reason(&huge), TooLong);
    // The reasons have stable names for metrics.
    assert_eq!(TooLong.as_str(), "too_long");
}

#[test]
fn hostile_fields_come_back_raw() {
    let names: &[&[u8]] = &[
        br#"a"b'c"#,
        b"{${jndi:ldap://x}}",
        b"pc;rm -rf /",
        b"../../etc/passwd",
        b"x) via evil",
        b"\xff\xfe\x00bin",
        b"<script>alert(1)</script>",
        b"a\tb",
    ];
    for name in names {
        let mut line =
            b"Nov 20 02:05:11 boot1 dhcpd[812]: DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 ("
                .to_vec();
        line.extend_from_slice(name);
        line.extend_from_slice(b") via eth0");
        let Record::Dhcp(Dhcp {
            hostname, via, mac, ..
        }) = parse_line(&line).unwrap().record
        else {
            panic!()
        };
        assert_eq!(hostname, Some(*name));
        assert_eq!(via, Some(&b"eth0"[..]));
        assert_eq!(mac, Some([0x52, 0x54, 0, 0x12, 0x34, 0x56]));

        let mut line =
            b"Nov 20 02:05:11 dnsmasq-dhcp[812]: 7 DHCPACK(br0) 10.0.0.50 52:54:00:12:34:56 "
                .to_vec();
        line.extend_from_slice(name);
        let Record::Dhcp(d) = parse_line(&line).unwrap().record else {
            panic!()
        };
        assert_eq!(
            d.hostname.map(|h| h.to_vec()),
            Some(name.to_vec()).filter(|n| !n.is_empty()).map(|n| {
                // A trailing blank is trimmed with the line.
                let end = n
                    .iter()
                    .rposition(|c| !b" \t".contains(c))
                    .map_or(0, |i| i + 1);
                n[..end].to_vec()
            })
        );

        let mut line =
            b"Nov 20 02:05:11 boot1 in.tftpd[812]: RRQ from 10.0.0.50 filename ".to_vec();
        line.extend_from_slice(name);
        let Record::Tftp(t) = parse_line(&line).unwrap().record else {
            panic!()
        };
        assert_eq!(t.file, Some(*name));
        assert_eq!(t.peer, Some(Ipv4Addr::new(10, 0, 0, 50)));
    }
    // dnsmasq vendor classes are client-chosen too.
    let line =
        b"Nov 20 02:05:11 dnsmasq-dhcp[812]: 9 vendor class: PXEClient:Arch:00007\"; DROP TABLE";
    let Record::ClientInfo(c) = parse_line(line).unwrap().record else {
        panic!()
    };
    assert_eq!(
        c.info,
        Info::VendorClass(b"PXEClient:Arch:00007\"; DROP TABLE")
    );
    assert_eq!(
        arch_from_vendor_class(b"PXEClient:Arch:00007\"; DROP TABLE"),
        None
    );
}

#[test]
fn hostile_journal_records() {
    for line in [
        &b"{"[..],
        b"[]",
        b"null",
        b"{\"MESSAGE\":\"DHCPACK(br0) 10.0.0.50 52:54:00:12:34:56 x\",\"SYSLOG_IDENTIFIER\":[1,2,3]}",
        b"{\"MESSAGE\":{\"a\":1}}",
        b"{\"MESSAGE\":[-1]}",
        b"{\"MESSAGE\":\"x\",\"__REALTIME_TIMESTAMP\":\"99999999999999999999999\"}",
        b"\xff\xfe{}",
    ] {
        let _ = parse_journal_json(line);
    }
    let big = format!("{{\"MESSAGE\":\"{}\"}}", "a".repeat(2 * 1024 * 1024));
    assert_eq!(
        parse_journal_json(big.as_bytes()).unwrap_err().reason,
        RejectReason::TooLong
    );
}

/// A fixed-seed xorshift generator: the property loop needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn never_panics_on_random_bytes_or_truncations() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet: &[u8] = b" :.()[]<>-_\"\\/0123456789abcdefDHCPACKOFFERvia from to on for of uid";
    let mut valid: Vec<Vec<u8>> = Vec::new();
    for &(program, body, _) in CASES {
        for e in envelopes(program, body) {
            valid.push(e.line.into_bytes());
        }
    }
    let mut accepted = 0usize;
    for round in 0..60_000 {
        let line: Vec<u8> = match round % 4 {
            // Random bytes.
            0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
            // Random text over the parsers' own punctuation.
            1 => (0..rng.below(200))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect(),
            // A valid line cut anywhere.
            2 => {
                let v = &valid[rng.below(valid.len())];
                v[..rng.below(v.len() + 1)].to_vec()
            }
            // A valid line with a few bytes changed.
            _ => {
                let mut v = valid[rng.below(valid.len())].clone();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(v.len());
                    v[i] = if rng.next().is_multiple_of(2) {
                        rng.next() as u8
                    } else {
                        alphabet[rng.below(alphabet.len())]
                    };
                }
                v
            }
        };
        if parse_line(&line).is_ok() {
            accepted += 1;
        }
        let _ = parse_journal_json(&line);
    }
    // Truncations and mutations of valid lines are often still valid.
    assert!(accepted > 1000, "{accepted}");
}

#[test]
fn long_lines_under_the_limit() {
    // A 60 KB hostname is not rejected for its length, and still parses.
    let mut line = b"DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 (".to_vec();
    line.extend(std::iter::repeat_n(b'x', 60 * 1024));
    line.extend_from_slice(b") via eth0");
    let Record::Dhcp(d) = parse_line(&line).unwrap().record else {
        panic!()
    };
    assert_eq!(d.hostname.map(<[u8]>::len), Some(60 * 1024));
    assert_eq!(d.kind, DhcpKind::Ack);
    // Many separators do not make the parsers slow.
    let line = " via".repeat(15_000);
    let _ = parse_line(line.as_bytes());
    let line = format!(
        "DHCPACK on 10.0.0.50 to 52:54:00:12:34:56 ({}) via eth0",
        " uid ".repeat(10_000)
    );
    let _ = parse_line(line.as_bytes());
}

#[test]
fn bare_dhcpd_minus_d_and_tftp_kinds() {
    // dhcpd -d writes no envelope; every kind survives without one.
    let l = parse_line(b"DHCPOFFER on 10.213.0.50 to 52:54:00:aa:bb:01 via br-lab").unwrap();
    assert_eq!(
        (l.stamp, l.host, l.program, l.pid),
        (None, None, None, None)
    );
    let Record::Tftp(t) = parse_line(b"sent /srv/tftp/ldlinux.c32 to 10.213.0.50")
        .unwrap()
        .record
    else {
        panic!()
    };
    assert_eq!(t.kind, TftpKind::Sent);
}

#[test]
fn fixture_pxe_boot_session() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/logs/parsers-pxe-boot.log"
    );
    let data = std::fs::read(path).unwrap();
    let (mut dhcp, mut info, mut tftp, mut no_free, mut archs) = (0, 0, 0, 0, Vec::new());
    for line in data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let parsed = parse_line(line).unwrap_or_else(|e| panic!("{}: {e}", s(line)));
        assert!(parsed.stamp.is_some());
        match parsed.record {
            Record::Dhcp(d) => {
                dhcp += 1;
                assert!(d.mac.is_some(), "{}", s(line));
                no_free += usize::from(d.kind == DhcpKind::NoFreeLeases);
            }
            Record::ClientInfo(c) => {
                info += 1;
                if let Info::VendorClass(vc) = c.info {
                    archs.push(arch_from_vendor_class(vc));
                }
            }
            Record::Tftp(_) => tftp += 1,
        }
    }
    assert_eq!((dhcp, info, tftp, no_free), (18, 11, 10, 1));
    assert_eq!(archs, [Some(0), None]);
}
