//! The TFTP servers other than dnsmasq's: tftpd-hpa (`tftpd/tftpd.c`),
//! atftpd (`tftpd.c`, `logger(LOG_NOTICE, "Serving %s to %s:%d", ...)`),
//! netkit-tftpd (Debian's `tftpd`, `validate_access`) and the BSD tftpd
//! (FreeBSD, NetBSD, OpenBSD, macOS, GNU inetutils: `"%s: %s request for
//! %s: %s"` with `errtomsg`).
//!
//! ```text
//! RRQ from <peer> filename <file>[ remapped to <file>]      tftpd-hpa
//! WRQ from <peer> filename <file>[ remapped to <file>]
//! <peer>: file not found: <file>            (tftpd-hpa 5.3)
//! sending NAK (<code>, <message>) to <peer>
//! tftpd: <what>: <error>                    (e.g. `tftpd: read: Connection refused`)
//! Serving <file> to <peer>:<port>                           atftpd
//! tftpd: trying to get file: <file>                         netkit
//! <peer-or-name>: read request for <file>: success|<error>  BSD
//! <peer-or-name>: write request for <file>: <result>
//! ```
//!
//! `<peer>` comes from `inet_ntop`, so a dual-stack socket prints
//! `::ffff:10.0.0.50`. netkit names no peer, and BSD's may be a host name:
//! then `peer` is `None`.

use crate::logline::{RejectReason, Tftp, TftpKind};
use crate::scan::{find, peer_ipv4, rfind, token};

pub(crate) fn parse(body: &[u8]) -> Result<Tftp<'_>, RejectReason> {
    let mut t = Tftp {
        kind: TftpKind::Error,
        file: None,
        peer: None,
        detail: None,
    };
    let (first, rest) = token(body);
    match first {
        b"RRQ" | b"WRQ" => {
            t.kind = if first == b"RRQ" {
                TftpKind::Request
            } else {
                TftpKind::WriteRequest
            };
            let rest = rest
                .strip_prefix(b"from ")
                .ok_or(RejectReason::Unrecognised)?;
            let (peer, rest) = token(rest);
            t.peer = peer_ipv4(peer);
            let file = rest
                .strip_prefix(b"filename ")
                .ok_or(RejectReason::Malformed)?;
            // The server appends ` remapped to X` last.
            t.file = Some(match rfind(file, b" remapped to ") {
                Some(at) => &file[..at],
                None => file,
            });
        }
        b"tftpd:" => match rest.strip_prefix(b"trying to get file: ") {
            Some(file) => {
                t.kind = TftpKind::Request;
                t.file = Some(file);
            }
            None => t.detail = Some(rest),
        },
        b"Serving" => {
            let at = rfind(rest, b" to ").ok_or(RejectReason::Malformed)?;
            t.kind = TftpKind::Request;
            t.file = Some(&rest[..at]);
            let peer = &rest[at + 4..];
            let peer = match crate::scan::rpos(peer, b':') {
                Some(colon) if peer[colon + 1..].iter().all(u8::is_ascii_digit) => &peer[..colon],
                _ => peer,
            };
            t.peer = peer_ipv4(peer);
        }
        b"sending" if rest.starts_with(b"NAK ") => {
            let at = rfind(rest, b" to ").ok_or(RejectReason::Malformed)?;
            t.detail = Some(&rest[..at]);
            t.peer = peer_ipv4(&rest[at + 4..]);
        }
        _ if find(body, b" request for ").is_some() => {
            // BSD: `<peer>: read request for <file>: <result>`.
            let at = find(body, b" request for ").unwrap_or_default();
            let who = &body[..at];
            let (who, kind) = if let Some(w) = who.strip_suffix(b": read") {
                (w, TftpKind::Request)
            } else if let Some(w) = who.strip_suffix(b": write") {
                (w, TftpKind::WriteRequest)
            } else {
                return Err(RejectReason::Unrecognised);
            };
            // NetBSD: `<peer> -> <local>: ...`.
            let who = find(who, b" -> ").map_or(who, |k| &who[..k]);
            let rest = &body[at + 13..];
            let colon = rfind(rest, b": ").ok_or(RejectReason::Malformed)?;
            let result = &rest[colon + 2..];
            t.peer = peer_ipv4(who);
            t.file = Some(&rest[..colon]);
            t.kind = match result {
                b"success" => kind,
                b"File not found" => TftpKind::NotFound,
                _ => {
                    t.detail = Some(result);
                    TftpKind::Error
                }
            };
        }
        _ => {
            let at = find(body, b": file not found: ").ok_or(RejectReason::Unrecognised)?;
            t.kind = TftpKind::NotFound;
            t.peer = peer_ipv4(&body[..at]);
            t.file = Some(&body[at + 18..]);
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const IP: Option<Ipv4Addr> = Some(Ipv4Addr::new(10, 0, 0, 50));

    #[test]
    fn lines() {
        let t = parse(b"RRQ from 10.0.0.50 filename pxelinux.0").unwrap();
        assert_eq!(
            (t.kind, t.peer, t.file),
            (TftpKind::Request, IP, Some(&b"pxelinux.0"[..]))
        );
        let t = parse(b"RRQ from ::ffff:10.0.0.50 filename /pxelinux.cfg/01-52-54-00-12-34-56")
            .unwrap();
        assert_eq!(
            (t.peer, t.file),
            (IP, Some(&b"/pxelinux.cfg/01-52-54-00-12-34-56"[..]))
        );
        let t = parse(b"RRQ from 10.0.0.50 filename pxelinux.bin remapped to pxelinux.0").unwrap();
        assert_eq!(t.file, Some(&b"pxelinux.bin"[..]));
        let t = parse(b"WRQ from fe80::1 filename up.img").unwrap();
        assert_eq!((t.kind, t.peer), (TftpKind::WriteRequest, None));
        let t = parse(b"10.0.0.50: file not found: /srv/tftp/x").unwrap();
        assert_eq!(
            (t.kind, t.peer, t.file),
            (TftpKind::NotFound, IP, Some(&b"/srv/tftp/x"[..]))
        );
        let t = parse(b"tftpd: read: Connection refused").unwrap();
        assert_eq!(
            (t.kind, t.detail),
            (TftpKind::Error, Some(&b"read: Connection refused"[..]))
        );
        let t = parse(b"sending NAK (1, File not found) to 10.0.0.50").unwrap();
        assert_eq!(
            (t.detail, t.peer),
            (Some(&b"NAK (1, File not found)"[..]), IP)
        );
        assert_eq!(parse(b"RRQ to x"), Err(RejectReason::Unrecognised));
        assert_eq!(parse(b"hello"), Err(RejectReason::Unrecognised));
    }

    #[test]
    fn atftpd_netkit_and_bsd() {
        // atftpd: `Serving %s to %s:%d`.
        let t = parse(b"Serving pxelinux.0 to 10.0.0.50:2070").unwrap();
        assert_eq!(
            (t.kind, t.file, t.peer),
            (TftpKind::Request, Some(&b"pxelinux.0"[..]), IP)
        );
        let t =
            parse(b"Serving /pxelinux.cfg/01-52-54-00-12-34-56 to ::ffff:10.0.0.50:49152").unwrap();
        assert_eq!(
            (t.file, t.peer),
            (Some(&b"/pxelinux.cfg/01-52-54-00-12-34-56"[..]), IP)
        );
        // netkit-tftpd: no peer.
        let t = parse(b"tftpd: trying to get file: pxelinux.0").unwrap();
        assert_eq!(
            (t.kind, t.file, t.peer),
            (TftpKind::Request, Some(&b"pxelinux.0"[..]), None)
        );
        let t = parse(b"tftpd: serving file from /srv/tftp").unwrap();
        assert_eq!((t.kind, t.file), (TftpKind::Error, None));
        // BSD: the peer as a name or an address, and the result.
        let t = parse(b"providence: read request for //pxelinux.0: success").unwrap();
        assert_eq!(
            (t.kind, t.file, t.peer),
            (TftpKind::Request, Some(&b"//pxelinux.0"[..]), None)
        );
        let t =
            parse(b"10.0.0.50: read request for /pxelinux.cfg/default: File not found").unwrap();
        assert_eq!(
            (t.kind, t.file, t.peer),
            (TftpKind::NotFound, Some(&b"/pxelinux.cfg/default"[..]), IP)
        );
        let t = parse(b"10.0.0.50 -> 10.0.0.1: write request for x: Access violation").unwrap();
        assert_eq!(
            (t.kind, t.peer, t.detail),
            (TftpKind::Error, IP, Some(&b"Access violation"[..]))
        );
        assert_eq!(parse(b"hello"), Err(RejectReason::Unrecognised));
    }
}
