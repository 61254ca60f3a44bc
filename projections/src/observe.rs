//! What DHCP and TFTP logs say, in domain terms, and the rule that turns it into events:
//! a fetch of a machine's boot entry — named by its MAC, or a default entry fetched from the
//! address its last DHCP acknowledgement gave it — is `BootEntryUsed`, which spends one-shot
//! policies and answers "which entry did it boot". Pure, so replay attributes exactly as live
//! ingest did.

use std::net::Ipv4Addr;

use crate::{Event, Mac, State};

/// One recognised log line, as the replay crate reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A DHCP exchange.
    Dhcp {
        /// The client's MAC.
        mac: Mac,
        /// `discover`, `offer`, `request`, `ack`, `nak`, …
        kind: String,
        /// The address in the message.
        ip: Option<Ipv4Addr>,
        /// The client's own host name (untrusted).
        hostname: Option<String>,
        /// The client architecture.
        arch: Option<u16>,
        /// The client's vendor class.
        vendor_class: Option<String>,
        /// `dhcpd`, `dnsmasq` or `kea`.
        server: String,
        /// Interface or relay.
        via: Option<String>,
        /// Anything else the server said.
        note: Option<String>,
    },
    /// A file a TFTP (or HTTP) server sent or did not find.
    File {
        /// The path as logged.
        file: String,
        /// The client's address.
        ip: Option<Ipv4Addr>,
        /// Whether it was sent.
        found: bool,
    },
    /// A line an installer sent to nmtd's syslog receiver.
    InstallerLog {
        /// The sender's address.
        ip: Ipv4Addr,
        /// The message, as untrusted text.
        line: String,
    },
}

/// The machine whose per-machine entry a path names: `…/pxelinux.cfg/01-aa-bb-…`,
/// `…/grub.cfg-01-aa-bb-…`, `…/01-aa-bb-….ipxe`.
pub fn entry_mac(file: &str) -> Option<Mac> {
    let base = file.rsplit('/').next().unwrap_or(file);
    let dashed = base
        .strip_prefix("grub.cfg-01-")
        .or_else(|| base.strip_prefix("01-"))?;
    let dashed = dashed.strip_suffix(".ipxe").unwrap_or(dashed);
    if dashed.len() != 17 {
        return None;
    }
    Mac::parse(dashed)
}

/// Whether a path is one of the default entries (for machines nmt had not seen).
pub fn is_default_entry(file: &str) -> bool {
    let f = file.trim_start_matches('/');
    f.ends_with("pxelinux.cfg/default")
        || f.ends_with("grub/grub.cfg")
        || f == "grub.cfg"
        || f.ends_with("ipxe/default.ipxe")
}

/// Keep untrusted text as data: valid UTF-8 (lossy), control characters escaped, at most
/// 255 characters.
pub fn untrusted(bytes: &[u8]) -> String {
    // The common case, printable ASCII, without a pass per character.
    if bytes.len() <= 255 && bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return String::from_utf8(bytes.to_vec()).expect("ASCII");
    }
    let mut out = String::new();
    for c in String::from_utf8_lossy(bytes).chars().take(255) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Who an installer's report or log line is recorded as: `installer@NAME`, or
/// `installer@MAC` for a machine with no name.
pub fn installer_actor(state: &State, mac: &Mac) -> String {
    match state.machine(mac).and_then(|m| m.name.as_deref()) {
        Some(n) => format!("installer@{n}"),
        None => format!("installer@{mac}"),
    }
}

/// The event an observation becomes, given the state just before it; `None` for an
/// installer's log line from an address no machine was given (it is about nobody known),
/// and for a DHCP line or boot entry naming a MAC no machine can have (broadcast, multicast,
/// all zero; see [`Mac::not_a_machine`]).
pub fn observe(state: &State, obs: Observation) -> Option<Event> {
    Some(match obs {
        Observation::Dhcp { mac, .. } if mac.not_a_machine().is_some() => return None,
        Observation::Dhcp {
            mac,
            kind,
            ip,
            hostname,
            arch,
            vendor_class,
            server,
            via,
            note,
        } => Event::DhcpSeen {
            mac,
            kind,
            ip,
            hostname,
            arch,
            vendor_class,
            server,
            via,
            note,
        },
        Observation::File { file, ip, found } => {
            let by_lease = ip.and_then(|a| state.machine_by_lease(&a)).map(|m| m.mac);
            let entry = if !found {
                None
            } else if let Some(mac) = entry_mac(&file) {
                if mac.not_a_machine().is_some() {
                    return None;
                }
                Some(mac)
            } else if is_default_entry(&file) {
                by_lease
            } else {
                None
            };
            match entry {
                Some(mac) => Event::BootEntryUsed { mac, file, ip },
                None => Event::FileServed {
                    file,
                    ip,
                    mac: by_lease,
                    found,
                },
            }
        }
        Observation::InstallerLog { ip, line } => {
            let m = state
                .machine_by_lease(&ip)
                .or_else(|| state.machine_by_ip(&ip))?;
            Event::InstallerLogged {
                mac: m.mac,
                ip,
                line,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;

    fn env(seq: u64, event: Event) -> Envelope {
        Envelope {
            seq,
            v: 1,
            recorded_at: jiff::Timestamp::UNIX_EPOCH,
            observed_at: jiff::Timestamp::UNIX_EPOCH,
            actor: "dnsmasq@boot".into(),
            source: None,
            event,
        }
    }

    #[test]
    fn entry_names() {
        let m: Mac = "52:54:00:0a:0b:0c".parse().unwrap();
        for f in [
            "/srv/tftp/pxelinux.cfg/01-52-54-00-0a-0b-0c",
            "grub/grub.cfg-01-52-54-00-0a-0b-0c",
            "/srv/tftp/ipxe/01-52-54-00-0a-0b-0c.ipxe",
        ] {
            assert_eq!(entry_mac(f), Some(m), "{f}");
        }
        for f in ["pxelinux.0", "pxelinux.cfg/C0A80001", "01-zz", "vmlinuz"] {
            assert_eq!(entry_mac(f), None, "{f}");
        }
        assert!(is_default_entry("/srv/tftp/pxelinux.cfg/default"));
        assert!(!is_default_entry("/srv/tftp/pxelinux.0"));
    }

    #[test]
    fn fetches_are_attributed_through_the_last_ack() {
        let mac: Mac = "52:54:00:0a:0b:0c".parse().unwrap();
        let ip = Ipv4Addr::new(10, 0, 0, 50);
        let mut st = State::new();
        let ack = observe(
            &st,
            Observation::Dhcp {
                mac,
                kind: "ack".into(),
                ip: Some(ip),
                hostname: Some(untrusted(b"pc\n\"42\"")),
                arch: Some(7),
                vendor_class: None,
                server: "dnsmasq".into(),
                via: Some("br0".into()),
                note: None,
            },
        )
        .unwrap();
        st.apply(&env(1, ack));
        let m = st.machine(&mac).unwrap();
        assert_eq!(
            m.group,
            crate::UNKNOWN,
            "discovered machines land in unknown"
        );
        assert_eq!(m.last_ip, Some(ip));
        assert_eq!(m.arch, Some(7));
        assert_eq!(m.dhcp_hostname.as_deref(), Some("pc\\n\"42\""));
        let used = observe(
            &st,
            Observation::File {
                file: "/srv/tftp/pxelinux.cfg/default".into(),
                ip: Some(ip),
                found: true,
            },
        )
        .unwrap();
        assert!(matches!(used, Event::BootEntryUsed { mac: m, .. } if m == mac));
        let other = observe(
            &st,
            Observation::File {
                file: "/srv/tftp/vmlinuz".into(),
                ip: Some(ip),
                found: true,
            },
        )
        .unwrap();
        assert!(matches!(other, Event::FileServed { mac: Some(m), .. } if m == mac));
        let stranger = observe(
            &st,
            Observation::File {
                file: "/srv/tftp/pxelinux.cfg/default".into(),
                ip: Some(Ipv4Addr::new(10, 0, 0, 99)),
                found: true,
            },
        )
        .unwrap();
        assert!(matches!(stranger, Event::FileServed { mac: None, .. }));
        let missing = observe(
            &st,
            Observation::File {
                file: "/srv/tftp/pxelinux.cfg/01-52-54-00-0a-0b-0c".into(),
                ip: Some(ip),
                found: false,
            },
        )
        .unwrap();
        assert!(matches!(missing, Event::FileServed { found: false, .. }));
        let log = |ip| Observation::InstallerLog {
            ip,
            line: "main-menu: INFO: partman".into(),
        };
        assert!(
            matches!(observe(&st, log(ip)), Some(Event::InstallerLogged { mac: m, .. }) if m == mac)
        );
        assert_eq!(observe(&st, log(Ipv4Addr::new(10, 0, 0, 99))), None);
        assert_eq!(installer_actor(&st, &mac), format!("installer@{mac}"));
    }
}
