//! The event schema: the one contract that the store, the fold, replay and every binary share.
//!
//! Events are past-tense facts. The schema only ever grows: a new field comes with a default,
//! a new kind is a new variant, and nothing already written is reinterpreted. Older shapes are
//! turned into current ones by [`upcast`] when they are read. `fixtures/journal-v1.jsonl`
//! holds events written by the first release and must always decode.

use std::net::Ipv4Addr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Mac, Policy, Profile};

/// The schema version this release writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Where an event came from, beyond who caused it: a log file position for log lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// What produced it: `cli`, `http`, or a log source's fingerprint.
    pub stream: String,
    /// The byte offset of the line in that stream, for log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// An event with its envelope, as stored and exported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Gap-free sequence number, from 1.
    pub seq: u64,
    /// The schema version it was written with.
    #[serde(default = "v1")]
    pub v: u32,
    /// Wall clock when it was appended.
    pub recorded_at: Timestamp,
    /// When the source says it happened (a log line's stamp; the command's time).
    pub observed_at: Timestamp,
    /// Who caused it: a Unix user, `dhcpd@host` for a log line, the machine for a report.
    pub actor: String,
    /// Where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The fact itself.
    pub event: Event,
}

fn v1() -> u32 {
    1
}

/// How an install report reached nmt.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ReportVia {
    /// `nmt installed` by an admin.
    #[default]
    Manual,
    /// The installer's HTTP report, with a valid token.
    Installer,
}

/// Every kind of fact nmt records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// A new store was created. `site_key` (hex) derives per-machine report tokens.
    StoreCreated {
        /// 32 random bytes, hex.
        site_key: String,
    },
    /// An admin registered a machine.
    MachineRegistered {
        /// Its MAC.
        mac: Mac,
        /// Its name, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Its group; `unknown` when not given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        /// Its fixed IPv4 address, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<Ipv4Addr>,
    },
    /// A machine was removed from the inventory.
    MachineRemoved {
        /// Its MAC.
        mac: Mac,
    },
    /// A machine was given a name (or lost it, with `null`).
    MachineNamed {
        /// Its MAC.
        mac: Mac,
        /// The new name.
        name: Option<String>,
    },
    /// A machine was moved into a group.
    MachineAssigned {
        /// Its MAC.
        mac: Mac,
        /// The group.
        group: String,
    },
    /// A machine's fixed IPv4 address was set or cleared.
    MachineAddressSet {
        /// Its MAC.
        mac: Mac,
        /// The address.
        ip: Option<Ipv4Addr>,
    },
    /// A named group was created.
    GroupCreated {
        /// Its name.
        group: String,
        /// Its default policy.
        policy: Policy,
    },
    /// A named group was removed (it had no members left).
    GroupRemoved {
        /// Its name.
        group: String,
    },
    /// A group's default policy changed.
    GroupPolicySet {
        /// The group.
        group: String,
        /// The new policy.
        policy: Policy,
    },
    /// A machine's own policy was set, or cleared (`policy: null`) to follow its group again.
    MachinePolicySet {
        /// Its MAC.
        mac: Mac,
        /// The override.
        policy: Option<Policy>,
        /// For the next boot only.
        #[serde(default)]
        once: bool,
    },
    /// A root device was mapped for a machine.
    RootDeviceSet {
        /// Its MAC.
        mac: Mac,
        /// The device.
        device: String,
    },
    /// A machine's root-device mapping was removed.
    RootDeviceRemoved {
        /// Its MAC.
        mac: Mac,
    },
    /// A machine reported that an install finished on this root device.
    InstallReported {
        /// Its MAC.
        mac: Mac,
        /// The installed root device.
        device: String,
        /// How the report came.
        #[serde(default)]
        via: ReportVia,
    },
    /// A machine fetched its boot entry (seen in a TFTP/HTTP log): it booted what nmt set.
    BootEntryUsed {
        /// Its MAC.
        mac: Mac,
        /// The file it fetched.
        file: String,
        /// The address it fetched from, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<Ipv4Addr>,
    },
    /// A boot profile was defined or redefined.
    ProfileDefined {
        /// The whole profile.
        profile: Profile,
    },
    /// A boot profile was removed.
    ProfileRemoved {
        /// Its name.
        name: String,
    },
    /// A DHCP server logged an exchange with a machine (every recognised DHCP line).
    DhcpSeen {
        /// The client's MAC.
        mac: Mac,
        /// The message: `discover`, `offer`, `request`, `ack`, `nak`, `release`, `inform`,
        /// `decline`, `bootrequest`, `bootreply`, …
        kind: String,
        /// The address offered, acknowledged or asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<Ipv4Addr>,
        /// The host name the client sent: untrusted data, kept as text, never rendered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hostname: Option<String>,
        /// The client architecture (DHCP option 93: 0 BIOS, 7 and 9 x86-64 UEFI, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arch: Option<u16>,
        /// The vendor class the client sent (e.g. `PXEClient:Arch:00007:UNDI:003016`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vendor_class: Option<String>,
        /// Which server logged it (`dhcpd`, `dnsmasq`, `kea`).
        server: String,
        /// The interface or relay it came through.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
        /// What else the server said (`no free leases`, `wrong network`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A TFTP or HTTP server sent (or could not find) a file that is not a known machine's
    /// boot entry, or for an address no machine was given.
    FileServed {
        /// The file, as the server logged it.
        file: String,
        /// The client address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<Ipv4Addr>,
        /// The machine that address belongs to (its last DHCP acknowledgement), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<Mac>,
        /// Whether the server had it.
        found: bool,
    },
    /// A line the installer running on a machine sent to nmtd's syslog receiver.
    InstallerLogged {
        /// The machine (by the address its last DHCP acknowledgement gave it).
        mac: Mac,
        /// The address it came from.
        ip: Ipv4Addr,
        /// The line, as untrusted text.
        line: String,
    },
    /// The password of installed systems and installer consoles was set (a new store gets a
    /// random one, shown once). Only its crypt(3) hash is recorded.
    InstallerPasswordSet {
        /// SHA-512 crypt, `$6$…`.
        crypted: String,
    },
}

impl Event {
    /// The variant's name, as in the JSON `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::StoreCreated { .. } => "StoreCreated",
            Event::MachineRegistered { .. } => "MachineRegistered",
            Event::MachineRemoved { .. } => "MachineRemoved",
            Event::MachineNamed { .. } => "MachineNamed",
            Event::MachineAssigned { .. } => "MachineAssigned",
            Event::MachineAddressSet { .. } => "MachineAddressSet",
            Event::GroupCreated { .. } => "GroupCreated",
            Event::GroupRemoved { .. } => "GroupRemoved",
            Event::GroupPolicySet { .. } => "GroupPolicySet",
            Event::MachinePolicySet { .. } => "MachinePolicySet",
            Event::RootDeviceSet { .. } => "RootDeviceSet",
            Event::RootDeviceRemoved { .. } => "RootDeviceRemoved",
            Event::InstallReported { .. } => "InstallReported",
            Event::BootEntryUsed { .. } => "BootEntryUsed",
            Event::ProfileDefined { .. } => "ProfileDefined",
            Event::ProfileRemoved { .. } => "ProfileRemoved",
            Event::InstallerPasswordSet { .. } => "InstallerPasswordSet",
            Event::DhcpSeen { .. } => "DhcpSeen",
            Event::FileServed { .. } => "FileServed",
            Event::InstallerLogged { .. } => "InstallerLogged",
        }
    }

    /// The machine this event is about, if it is about one.
    pub fn mac(&self) -> Option<Mac> {
        match self {
            Event::MachineRegistered { mac, .. }
            | Event::MachineRemoved { mac }
            | Event::MachineNamed { mac, .. }
            | Event::MachineAssigned { mac, .. }
            | Event::MachineAddressSet { mac, .. }
            | Event::MachinePolicySet { mac, .. }
            | Event::RootDeviceSet { mac, .. }
            | Event::RootDeviceRemoved { mac }
            | Event::InstallReported { mac, .. }
            | Event::BootEntryUsed { mac, .. }
            | Event::DhcpSeen { mac, .. }
            | Event::InstallerLogged { mac, .. }
            | Event::FileServed { mac: Some(mac), .. } => Some(*mac),
            _ => None,
        }
    }

    /// The group this event is about, if it is about one.
    pub fn group(&self) -> Option<&str> {
        match self {
            Event::GroupCreated { group, .. }
            | Event::GroupRemoved { group }
            | Event::GroupPolicySet { group, .. }
            | Event::MachineAssigned { group, .. } => Some(group),
            _ => None,
        }
    }
}

/// Why stored or exported bytes are not an event.
#[derive(Debug, thiserror::Error)]
#[error("not an nmt event: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

/// Turn an older stored shape into the current one, at read time. The journal itself is
/// never rewritten. Version 1 is the current shape, so this is the identity for now; a
/// future version adds its conversions here, keyed on `v`.
pub fn upcast(value: serde_json::Value) -> serde_json::Value {
    value
}

impl Envelope {
    /// Encode for storage and export: one line of JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// Decode from storage or export, upcasting older shapes.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        // The current shape decodes directly (the hot path of every fold); an older one goes
        // through `upcast` first.
        match serde_json::from_slice::<Envelope>(bytes) {
            Ok(env) if env.v == SCHEMA_VERSION => Ok(env),
            _ => {
                let value: serde_json::Value = serde_json::from_slice(bytes)?;
                Ok(serde_json::from_value(upcast(value))?)
            }
        }
    }
}
