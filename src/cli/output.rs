//! Printing results: aligned tables for people, JSON for scripts.

use std::io::Write;

use jiff::Timestamp;
use nmt_projections::{Installed, LastBoot, Mac, Machine, Origin, Policy, State};
use serde::Serialize;
use tabwriter::TabWriter;

/// One machine as `nmt machines --json` prints it.
#[derive(Serialize)]
pub struct MachineView<'a> {
    /// MAC.
    pub mac: Mac,
    /// Name.
    pub name: Option<&'a str>,
    /// Group.
    pub group: &'a str,
    /// The machine's own policy (null when it follows its group).
    pub policy: Option<&'a Policy>,
    /// What it boots next.
    pub effective_policy: Policy,
    /// Where the effective policy comes from.
    pub policy_origin: Origin,
    /// Whether its own policy is for the next boot only.
    pub once: bool,
    /// Fixed IPv4 address.
    pub ip: Option<std::net::Ipv4Addr>,
    /// Root device.
    pub rootdev: Option<&'a str>,
    /// Last activity.
    pub last_seen: Option<Timestamp>,
    /// Last address seen.
    pub last_ip: Option<std::net::Ipv4Addr>,
    /// The host name its DHCP client sent (untrusted data).
    pub dhcp_hostname: Option<&'a str>,
    /// Its client architecture (0 BIOS, 7/9 x86-64 UEFI), when a log said.
    pub arch: Option<u16>,
    /// First appearance.
    pub first_seen: Timestamp,
    /// Registered by an admin.
    pub registered: bool,
    /// Last install report.
    pub installed: Option<&'a Installed>,
    /// Last boot entry fetched.
    pub last_boot: Option<&'a LastBoot>,
}

impl<'a> MachineView<'a> {
    /// The view of one machine.
    pub fn new(state: &'a State, m: &'a Machine) -> Self {
        let (effective_policy, policy_origin) = state.effective_policy(m);
        MachineView {
            mac: m.mac,
            name: m.name.as_deref(),
            group: &m.group,
            policy: m.policy.as_ref().map(|o| &o.policy),
            effective_policy,
            policy_origin,
            once: m.policy.as_ref().is_some_and(|o| o.once),
            ip: m.ip,
            rootdev: m.rootdev.as_deref(),
            last_seen: m.last_seen,
            last_ip: m.last_ip,
            dhcp_hostname: m.dhcp_hostname.as_deref(),
            arch: m.arch,
            first_seen: m.first_seen,
            registered: m.registered,
            installed: m.installed.as_ref(),
            last_boot: m.last_boot.as_ref(),
        }
    }
}

/// A time in the local zone, to the second.
pub fn local_time(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Rows as an aligned table with a header.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut tw = TabWriter::new(Vec::new()).padding(2);
    let _ = writeln!(tw, "{}", header.join("\t"));
    for r in rows {
        let cells: Vec<String> = r
            .into_iter()
            .map(|c| c.replace(['\t', '\n'], " "))
            .collect();
        let _ = writeln!(tw, "{}", cells.join("\t"));
    }
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A value as pretty JSON, with a final newline.
pub fn json<T: Serialize + ?Sized>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("output values serialize");
    s.push('\n');
    s
}

/// `-` for a missing value.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}
