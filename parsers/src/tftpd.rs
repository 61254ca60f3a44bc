//! tftpd-hpa messages (`tftpd/tftpd.c`).
//!
//! ```text
//! RRQ from <peer> filename <file>[ remapped to <file>]
//! WRQ from <peer> filename <file>[ remapped to <file>]
//! <peer>: file not found: <file>            (tftpd-hpa 5.3)
//! sending NAK (<code>, <message>) to <peer>
//! tftpd: <what>: <error>                    (e.g. `tftpd: read: Connection refused`)
//! ```
//!
//! `<peer>` comes from `inet_ntop`, so a dual-stack socket prints
//! `::ffff:10.0.0.50`.

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
        b"tftpd:" => t.detail = Some(rest),
        b"sending" if rest.starts_with(b"NAK ") => {
            let at = rfind(rest, b" to ").ok_or(RejectReason::Malformed)?;
            t.detail = Some(&rest[..at]);
            t.peer = peer_ipv4(&rest[at + 4..]);
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
}
