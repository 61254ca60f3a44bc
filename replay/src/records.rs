//! Parsed log lines into domain observations: which server said what about which machine,
//! and when. dnsmasq's `--log-dhcp` detail lines (vendor class, client name) come before
//! the DHCP line of the same transaction, so they are held by transaction id and attached to
//! it. RFC 3164 stamps carry no year: it is inferred from a reference time (the file's
//! modification time, or now), assuming logs are never from the future.

use std::collections::HashMap;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use nmt_parsers::{
    DhcpKind, Info, LogLine, Record, Server, Stamp, TftpKind, arch_from_vendor_class,
};
use nmt_projections::{Mac, Observation, untrusted};

/// How many transactions' detail lines to hold before forgetting the oldest.
const PENDING_LIMIT: usize = 4096;

#[derive(Default, Clone)]
struct Pending {
    vendor_class: Option<String>,
    arch: Option<u16>,
    hostname: Option<String>,
}

/// What a recognised line is about, and its envelope facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The observation.
    pub observation: Observation,
    /// When the line says it happened.
    pub at: Timestamp,
    /// Who said it: `dnsmasq@boot1`, `dhcpd@gw`, `kea@…`, `tftpd@…`.
    pub actor: String,
}

/// Why a recognised line gave no observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// A detail line, held for its transaction.
    Held,
    /// A line about no machine (no MAC, no file).
    NoMachine,
}

/// Turns parsed lines of one source into observations, in order.
#[derive(Clone)]
pub struct Converter {
    tz: TimeZone,
    pending: HashMap<u32, Pending>,
}

impl Default for Converter {
    fn default() -> Self {
        Converter::new(TimeZone::system())
    }
}

fn kind_word(k: &DhcpKind) -> &'static str {
    match k {
        DhcpKind::Discover => "discover",
        DhcpKind::Offer => "offer",
        DhcpKind::Request => "request",
        DhcpKind::Ack => "ack",
        DhcpKind::Nak => "nak",
        DhcpKind::Release => "release",
        DhcpKind::Inform => "inform",
        DhcpKind::Decline => "decline",
        DhcpKind::BootRequest => "bootrequest",
        DhcpKind::BootReply => "bootreply",
        DhcpKind::NoFreeLeases => "no-free-leases",
        DhcpKind::Pxe => "pxe",
        DhcpKind::Received => "received",
        _ => "other",
    }
}

fn server_word(s: &Server) -> &'static str {
    match s {
        Server::IscDhcpd => "dhcpd",
        Server::Dnsmasq => "dnsmasq",
        Server::Kea => "kea",
    }
}

impl Converter {
    /// A converter reading local times in `tz`.
    pub fn new(tz: TimeZone) -> Converter {
        Converter {
            tz,
            pending: HashMap::new(),
        }
    }

    /// The time a stamp names; `reference` is "now" for the source (it resolves the missing
    /// year of RFC 3164 stamps, and stands in when a line has no stamp).
    pub fn time(&self, stamp: Option<&Stamp>, reference: Timestamp) -> Timestamp {
        let local = |dt: DateTime| {
            self.tz
                .to_ambiguous_timestamp(dt)
                .compatible()
                .unwrap_or(reference)
        };
        match stamp {
            None => reference,
            Some(Stamp::UnixMicros(us)) => Timestamp::from_microsecond(*us).unwrap_or(reference),
            Some(Stamp::Full {
                year,
                month,
                day,
                hour,
                minute,
                second,
                nanos,
                offset_seconds,
            }) => {
                let Ok(dt) = DateTime::new(
                    *year,
                    *month as i8,
                    *day as i8,
                    *hour as i8,
                    *minute as i8,
                    *second as i8,
                    *nanos as i32,
                ) else {
                    return reference;
                };
                match offset_seconds {
                    Some(off) => Offset::from_seconds(*off)
                        .ok()
                        .and_then(|o| o.to_timestamp(dt).ok())
                        .unwrap_or(reference),
                    None => local(dt),
                }
            }
            Some(Stamp::NoYear {
                month,
                day,
                hour,
                minute,
                second,
                nanos,
            }) => {
                let this_year = reference.to_zoned(self.tz.clone()).year();
                let at = |year: i16| -> Option<Timestamp> {
                    let d = Date::new(year, *month as i8, *day as i8).ok()?;
                    let t =
                        Time::new(*hour as i8, *minute as i8, *second as i8, *nanos as i32).ok()?;
                    Some(local(d.to_datetime(t)))
                };
                // Logs are not from the future: a stamp more than a day ahead of the
                // reference belongs to last year (a December line read in January).
                match at(this_year) {
                    Some(t) if t > reference + SignedDuration::from_hours(24) => {
                        at(this_year - 1).unwrap_or(t)
                    }
                    Some(t) => t,
                    // 29 February in a non-leap year: the previous leap year.
                    None => (1..=4)
                        .find_map(|back| at(this_year - back))
                        .unwrap_or(reference),
                }
            }
        }
    }

    /// The observation a parsed line makes, if any.
    pub fn convert(
        &mut self,
        line: &LogLine<'_>,
        reference: Timestamp,
    ) -> Result<Observed, Skipped> {
        let host = line
            .host
            .map(untrusted)
            .unwrap_or_else(|| "localhost".into());
        let at = self.time(line.stamp.as_ref(), reference);
        match &line.record {
            Record::ClientInfo(ci) => {
                if self.pending.len() >= PENDING_LIMIT {
                    self.pending.clear();
                }
                let p = self.pending.entry(ci.xid).or_default();
                match &ci.info {
                    Info::VendorClass(vc) => {
                        p.vendor_class = Some(untrusted(vc));
                        p.arch = arch_from_vendor_class(vc);
                    }
                    Info::ClientName(n) => p.hostname = Some(untrusted(n)),
                    _ => {}
                }
                Err(Skipped::Held)
            }
            Record::Dhcp(d) => {
                let Some(mac) = d.mac else {
                    return Err(Skipped::NoMachine);
                };
                let pending = d.xid.and_then(|x| self.pending.get(&x)).cloned();
                let pending = pending.unwrap_or_default();
                let server = server_word(&d.server);
                Ok(Observed {
                    observation: Observation::Dhcp {
                        mac: Mac::new(mac),
                        kind: kind_word(&d.kind).to_string(),
                        ip: d.ip,
                        hostname: d.hostname.map(untrusted).or(pending.hostname),
                        arch: pending.arch,
                        vendor_class: pending.vendor_class,
                        server: server.to_string(),
                        via: d.via.map(untrusted),
                        note: d.note.map(untrusted),
                    },
                    at,
                    actor: format!("{server}@{host}"),
                })
            }
            Record::Tftp(t) => {
                let found = match t.kind {
                    TftpKind::Sent | TftpKind::Request => true,
                    TftpKind::NotFound => false,
                    _ => return Err(Skipped::NoMachine),
                };
                let Some(file) = t.file else {
                    return Err(Skipped::NoMachine);
                };
                let program = line
                    .program
                    .map(|p| {
                        if p.starts_with(b"dnsmasq") {
                            "dnsmasq".to_string()
                        } else {
                            "tftpd".to_string()
                        }
                    })
                    .unwrap_or_else(|| "tftpd".into());
                Ok(Observed {
                    observation: Observation::File {
                        file: untrusted(file),
                        ip: t.peer,
                        found,
                    },
                    at,
                    actor: format!("{program}@{host}"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nmt_parsers::parse_line;

    fn utc() -> Converter {
        Converter::new(TimeZone::UTC)
    }

    #[test]
    fn dnsmasq_detail_lines_join_their_transaction() {
        let mut c = utc();
        let now: Timestamp = "2026-11-20T03:00:00Z".parse().unwrap();
        let lines = [
            "Nov 20 02:05:11 boot1 dnsmasq-dhcp[812]: 3342 vendor class: PXEClient:Arch:00007:UNDI:003016",
            "Nov 20 02:05:11 boot1 dnsmasq-dhcp[812]: 3342 DHCPDISCOVER(br0) 52:54:00:12:34:56",
        ];
        assert_eq!(
            c.convert(&parse_line(lines[0].as_bytes()).unwrap(), now),
            Err(Skipped::Held)
        );
        let o = c
            .convert(&parse_line(lines[1].as_bytes()).unwrap(), now)
            .unwrap();
        assert_eq!(o.actor, "dnsmasq@boot1");
        assert_eq!(o.at.to_string(), "2026-11-20T02:05:11Z");
        match o.observation {
            Observation::Dhcp { arch, kind, .. } => {
                assert_eq!(arch, Some(7));
                assert_eq!(kind, "discover");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_year_rolls_back_over_new_year() {
        let c = utc();
        let stamp = Stamp::NoYear {
            month: 12,
            day: 31,
            hour: 23,
            minute: 59,
            second: 58,
            nanos: 0,
        };
        let jan: Timestamp = "2027-01-01T00:00:05Z".parse().unwrap();
        assert_eq!(
            c.time(Some(&stamp), jan).to_string(),
            "2026-12-31T23:59:58Z"
        );
        let new_year = Stamp::NoYear {
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 1,
            nanos: 0,
        };
        assert_eq!(
            c.time(Some(&new_year), jan).to_string(),
            "2027-01-01T00:00:01Z"
        );
    }

    #[test]
    fn tftp_lines_are_file_observations() {
        let mut c = utc();
        let now: Timestamp = "2026-11-20T03:00:00Z".parse().unwrap();
        let l = "Nov 20 02:05:12 boot1 dnsmasq-tftp[812]: sent /srv/tftp/pxelinux.cfg/01-52-54-00-12-34-56 to 10.0.0.50";
        let o = c.convert(&parse_line(l.as_bytes()).unwrap(), now).unwrap();
        assert_eq!(
            o.observation,
            Observation::File {
                file: "/srv/tftp/pxelinux.cfg/01-52-54-00-12-34-56".into(),
                ip: Some("10.0.0.50".parse().unwrap()),
                found: true
            }
        );
    }
}
