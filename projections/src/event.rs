//! The event schema: the one contract that the store, the fold, replay and every binary share.
//!
//! Events are past-tense facts. The schema only ever grows: a new field comes with a default,
//! a new kind is a new variant, and nothing already written is reinterpreted. Older shapes are
//! turned into current ones by [`upcast`] when they are read. `fixtures/journal-v1.jsonl`
//! holds events written by the first release and must always decode.

use std::net::Ipv4Addr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{ImageAction, ImageManifest, Mac, Policy, Profile};

/// Defines [`Event`] from one list of variants, and beside it what is derived from that list:
/// [`Event::KINDS`], [`Event::kind`], and its decoder.
///
/// An event is stored internally tagged (`{"type":"DhcpSeen","mac":…}`). Serde's derived
/// decoder for that shape buffers every field before it looks at `type`; this one reads
/// `type` first (nmt always writes it first) and hands the rest of the object to `Tagged`, a
/// private twin of [`Event`] with the same variants, fields and attributes, externally
/// tagged, so each field is decoded once, in place. An object whose `type` is not first is
/// decoded the slow way, so every valid shape still reads.
macro_rules! events {
    (
        $(#[$meta:meta])*
        pub enum Event {
            $(
                $(#[$vmeta:meta])*
                $variant:ident {
                    $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
                }
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum Event {
            $(
                $(#[$vmeta])*
                $variant { $( $(#[$fmeta])* $field: $ty ),* }
            ),*
        }

        /// [`Event`]'s variants, externally tagged: what its decoder hands an object to once it
        /// has read the `type`.
        #[derive(Deserialize)]
        enum Tagged {
            $( $variant { $( $(#[$fmeta])* $field: $ty ),* } ),*
        }

        impl From<Tagged> for Event {
            fn from(t: Tagged) -> Event {
                match t {
                    $( Tagged::$variant { $($field),* } => Event::$variant { $($field),* } ),*
                }
            }
        }

        impl Event {
            /// Every variant's name, as [`Event::kind`] gives it (`nmt history --kind` takes
            /// these).
            pub const KINDS: &'static [&'static str] = &[ $( stringify!($variant) ),* ];

            /// The variant's name, as in the JSON `type` field.
            pub fn kind(&self) -> &'static str {
                match self {
                    $( Event::$variant { .. } => stringify!($variant) ),*
                }
            }
        }
    };
}

/// The schema version this release writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Where an event came from, beyond who caused it (the actor says who): which door an admin
/// used, which machine-facing endpoint a machine called, or which log, journal or syslog
/// stream a line was read from, with its position.
///
/// Stored as `{"stream": "...", "offset": N}` exactly as releases before this type wrote it,
/// so every journal ever exported decodes and re-exports byte for byte: a stream this release
/// does not know (or writes differently) is kept as [`Source::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "RawSource")]
pub enum Source {
    /// The `nmt` command line (in-process or through nmtd's socket). Releases before typed
    /// sources recorded every admin command, web form and installer report as this.
    Cli,
    /// A form of the web UI.
    Web,
    /// The machine-facing HTTP API: `report` (an installer's report), `answer` (an answer
    /// file was served).
    Http {
        /// The endpoint: `report`, `answer`, …
        endpoint: String,
    },
    /// A syslog datagram (an installer logging to nmtd) from this address.
    Syslog {
        /// The sender.
        ip: Ipv4Addr,
    },
    /// A line of a log file, by the file's content identity (the same once rotated, copied
    /// or gzipped) and the line's byte offset in it.
    LogFile {
        /// The file's content identity.
        identity: u64,
        /// The line's first byte.
        offset: u64,
    },
    /// An entry of a systemd unit's journal.
    Journal {
        /// The unit.
        unit: String,
    },
    /// nmtd running a schedule (its runs, misses and checks, and the events its action made).
    Schedule {
        /// The schedule.
        name: String,
    },
    /// A stream this release does not know, kept as it was written.
    Other {
        /// The stream as written.
        stream: String,
        /// Its offset, if one was written.
        offset: Option<u64>,
    },
}

/// The stored shape of a [`Source`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RawSource {
    stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
}

impl Source {
    /// The stream name as stored: `cli`, `web`, `http:report`, `syslog:10.0.0.5`,
    /// `file:<16 hex digits>`, `journal:<unit>`.
    pub fn stream(&self) -> String {
        RawSource::from(self.clone()).stream
    }

    /// The byte offset of a log line.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Source::LogFile { offset, .. } => Some(*offset),
            Source::Other { offset, .. } => *offset,
            _ => None,
        }
    }

    /// The store key of a log file's read mark: `file:<16 hex digits>`.
    pub fn file_stream(identity: u64) -> String {
        format!("file:{identity:016x}")
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset() {
            Some(o) => write!(f, "{}@{o}", self.stream()),
            None => f.write_str(&self.stream()),
        }
    }
}

/// Written as [`RawSource`] is, without making its `String` first (every event has a source).
impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let offset = self.offset();
        let mut raw = s.serialize_struct("RawSource", 1 + usize::from(offset.is_some()))?;
        raw.serialize_field("stream", &Stream(self))?;
        match offset {
            Some(o) => raw.serialize_field("offset", &o)?,
            None => raw.skip_field("offset")?,
        }
        raw.end()
    }
}

/// A source's stream name as stored (see [`Source::stream`]).
struct Stream<'a>(&'a Source);

impl Serialize for Stream<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Source::Cli => s.serialize_str("cli"),
            Source::Web => s.serialize_str("web"),
            Source::Http { endpoint } => s.collect_str(&format_args!("http:{endpoint}")),
            Source::Syslog { ip } => s.collect_str(&format_args!("syslog:{ip}")),
            Source::LogFile { identity, .. } => {
                let mut name = *b"file:0000000000000000";
                for (i, d) in name[5..].iter_mut().enumerate() {
                    *d = b"0123456789abcdef"[(identity >> (60 - 4 * i) & 0xf) as usize];
                }
                s.serialize_str(std::str::from_utf8(&name).expect("ASCII"))
            }
            Source::Journal { unit } => s.collect_str(&format_args!("journal:{unit}")),
            Source::Schedule { name } => s.collect_str(&format_args!("schedule:{name}")),
            Source::Other { stream, .. } => s.serialize_str(stream),
        }
    }
}

impl From<Source> for RawSource {
    fn from(s: Source) -> RawSource {
        let (stream, offset) = match s {
            Source::Cli => ("cli".to_string(), None),
            Source::Web => ("web".to_string(), None),
            Source::Http { endpoint } => (format!("http:{endpoint}"), None),
            Source::Syslog { ip } => (format!("syslog:{ip}"), None),
            Source::LogFile { identity, offset } => (Source::file_stream(identity), Some(offset)),
            Source::Journal { unit } => (format!("journal:{unit}"), None),
            Source::Schedule { name } => (format!("schedule:{name}"), None),
            Source::Other { stream, offset } => (stream, offset),
        };
        RawSource { stream, offset }
    }
}

impl From<RawSource> for Source {
    fn from(raw: RawSource) -> Source {
        let typed = match (raw.stream.split_once(':'), raw.offset) {
            _ if raw.stream == "cli" && raw.offset.is_none() => Some(Source::Cli),
            _ if raw.stream == "web" && raw.offset.is_none() => Some(Source::Web),
            (Some(("http", e)), None) if !e.is_empty() => Some(Source::Http {
                endpoint: e.to_string(),
            }),
            (Some(("syslog", ip)), None) => ip.parse().ok().map(|ip| Source::Syslog { ip }),
            // The common case, a log line, is checked without writing it back: 16 lowercase
            // hex digits are exactly what `file_stream` writes.
            (Some(("file", hex)), Some(offset))
                if hex.len() == 16
                    && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
            {
                let identity = u64::from_str_radix(hex, 16).expect("16 hex digits");
                return Source::LogFile { identity, offset };
            }
            (Some(("journal", unit)), None) if !unit.is_empty() => Some(Source::Journal {
                unit: unit.to_string(),
            }),
            (Some(("schedule", name)), None) if !name.is_empty() => Some(Source::Schedule {
                name: name.to_string(),
            }),
            _ => None,
        };
        // Only a form this release writes back identically is typed; anything else is kept
        // as written, so an export of an imported journal stays byte-identical.
        match typed {
            Some(t) if RawSource::from(t.clone()) == raw => t,
            _ => Source::Other {
                stream: raw.stream,
                offset: raw.offset,
            },
        }
    }
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

/// What an admin set on a machine, as kept by its removal and given back by its restore.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its group.
    pub group: String,
    /// Its fixed IPv4 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// Its mapped root device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootdev: Option<String>,
    /// Its own policy, if it overrode its group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// That policy was for the next boot only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once: bool,
    /// What a next-boot-only policy reverts to (none: the group's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Policy>,
}

events! {
/// Every kind of fact nmt records.
///
/// Stored as an object with its variant's name in `type` (written first) beside its fields.
/// It decodes by that name first, and so without buffering the fields (see [`events!`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// A new store was created. Stores written before site keys left the log carry their
    /// `site_key` (hex) here; new ones keep it in a file beside the store (`site-key`), and
    /// write none here.
    StoreCreated {
        /// 32 random bytes, hex (old stores only; empty and not written in new ones).
        #[serde(default, skip_serializing_if = "String::is_empty")]
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
        /// What it was just before (its name, group, address, policy, root device), so that
        /// `nmt machine restore` can bring it back. Removals written before this field
        /// existed have none (the state before them says the same).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        was: Option<MachineRecord>,
    },
    /// A removed machine was brought back as it was just before its removal.
    MachineRestored {
        /// Its MAC.
        mac: Mac,
        /// The sequence number of the removal this undoes.
        removed: u64,
        /// What it is again.
        was: MachineRecord,
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
    /// A machine's imager began saving its disk as a new version of an image.
    ImageSaveStarted {
        /// The machine.
        mac: Mac,
        /// The image's name.
        image: String,
        /// The new version's number.
        version: u32,
    },
    /// A save completed: every stream arrived, and the version is stored and visible.
    ImageSaved {
        /// The machine it was saved from.
        mac: Mac,
        /// The image's name.
        image: String,
        /// Its version.
        version: u32,
        /// What it holds.
        manifest: ImageManifest,
    },
    /// A machine's imager began restoring an image version onto its disk.
    ImageRestoreStarted {
        /// The machine.
        mac: Mac,
        /// The image's name.
        image: String,
        /// The version.
        version: u32,
    },
    /// A restore completed, and every stream's digest the imager computed matched the
    /// manifest.
    ImageRestored {
        /// The machine.
        mac: Mac,
        /// The image's name.
        image: String,
        /// The version.
        version: u32,
        /// The streams verified (`table`, `head`, `p1`, …).
        verified: Vec<String>,
    },
    /// A save or a restore failed; a restore's machine stays on its restore policy.
    ImageFailed {
        /// The machine.
        mac: Mac,
        /// Saving or restoring.
        action: ImageAction,
        /// The image's name.
        image: String,
        /// The version.
        version: u32,
        /// Why, as the imager or nmtd said it (untrusted text).
        reason: String,
    },
    /// An image version was removed (its files deleted).
    ImageRemoved {
        /// The image's name.
        image: String,
        /// The version.
        version: u32,
    },
    /// A schedule was defined (or redefined): the actor owns it, and its runs act with the
    /// actor's rights.
    ScheduleDefined {
        /// Its name.
        name: String,
        /// Its cron pattern (`MIN HOUR DOM MON DOW`).
        cron: String,
        /// The IANA time zone the pattern is read in.
        tz: String,
        /// Check each run's outcome this many seconds after it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect: Option<u64>,
        /// A run may be made at most this many seconds late.
        grace: u64,
        /// The command as the admin wrote it.
        command: Vec<String>,
        /// The action it carries out, as nmt encodes actions (JSON text).
        action: String,
    },
    /// A schedule was removed.
    ScheduleRemoved {
        /// Its name.
        name: String,
    },
    /// A schedule was paused: its times pass without a run.
    SchedulePaused {
        /// Its name.
        name: String,
    },
    /// A paused schedule was resumed (from this moment on).
    ScheduleResumed {
        /// Its name.
        name: String,
    },
    /// nmtd ran a schedule: its action's events follow in the same batch, with the actor
    /// `schedule NAME (set by USER)`.
    ScheduleRan {
        /// The schedule.
        name: String,
        /// The run's number.
        run: u64,
        /// The time it was due.
        due: Timestamp,
        /// Run late (nmtd was down at its time, within the schedule's grace).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
        /// The machines its action targeted.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        targets: Vec<Mac>,
        /// Machines whose one-shot policy from an earlier run was still pending: not set
        /// again.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        carried: Vec<Mac>,
        /// Why its action failed (nothing else was changed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Times of a schedule passed without a run (nmtd was down longer than the grace):
    /// recorded, not run.
    ScheduleMissed {
        /// The schedule.
        name: String,
        /// The first time missed.
        first: Timestamp,
        /// The last.
        last: Timestamp,
        /// How many.
        count: u64,
    },
    /// A run's outcome check: what each machine it targeted did.
    ScheduleChecked {
        /// The schedule.
        name: String,
        /// The run.
        run: u64,
        /// Each machine's outcome.
        outcomes: Vec<crate::MachineOutcome>,
    },
    /// A machine's or a group's BMC was set: how its power is reached. Its password is
    /// never here: only whether this change set or replaced the one nmtd keeps.
    BmcSet {
        /// One machine, or every member of a group without its own.
        target: crate::BmcFor,
        /// The setting.
        bmc: crate::Bmc,
        /// What happened to its password.
        secret: crate::SecretChange,
    },
    /// A BMC setting was removed (with its password).
    BmcRemoved {
        /// Whose.
        target: crate::BmcFor,
    },
    /// A power action on a machine, and what came of it.
    PowerActed {
        /// The machine.
        mac: Mac,
        /// What was asked.
        op: crate::PowerOp,
        /// What came of it.
        result: crate::PowerResult,
    },
}
}

impl Event {
    /// The machine this event is about, if it is about one.
    pub fn mac(&self) -> Option<Mac> {
        match self {
            Event::MachineRegistered { mac, .. }
            | Event::MachineRemoved { mac, .. }
            | Event::MachineRestored { mac, .. }
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
            | Event::ImageSaveStarted { mac, .. }
            | Event::ImageSaved { mac, .. }
            | Event::ImageRestoreStarted { mac, .. }
            | Event::ImageRestored { mac, .. }
            | Event::ImageFailed { mac, .. }
            | Event::PowerActed { mac, .. }
            | Event::BmcSet {
                target: crate::BmcFor::Machine(mac),
                ..
            }
            | Event::BmcRemoved {
                target: crate::BmcFor::Machine(mac),
            }
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

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}

/// Decodes an [`Event`] by its `type` first (see [`events!`]).
struct EventVisitor;

impl<'de> serde::de::Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an event: an object with its `type`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        use serde::de::{Error, IntoDeserializer, value::EnumAccessDeserializer};
        let Some(first) = map.next_key::<Text<'de>>()? else {
            return Err(A::Error::missing_field("type"));
        };
        if first.0 == "type" {
            let tag: Text<'de> = map.next_value()?;
            let rest = Rest { tag, map };
            return Ok(Tagged::deserialize(EnumAccessDeserializer::new(rest))?.into());
        }
        // `type` elsewhere: gather the object, then decode it as `{type: {fields}}`.
        let mut fields = serde_json::Map::new();
        fields.insert(first.0.into_owned(), map.next_value()?);
        while let Some((k, v)) = map.next_entry::<Text<'de>, serde_json::Value>()? {
            fields.insert(k.0.into_owned(), v);
        }
        let tag = match fields.remove("type") {
            Some(serde_json::Value::String(tag)) => tag,
            Some(other) => {
                return Err(A::Error::invalid_type(
                    serde::de::Unexpected::Other(&other.to_string()),
                    &"the name of an event's kind",
                ));
            }
            None => return Err(A::Error::missing_field("type")),
        };
        let outer = serde_json::Value::Object(serde_json::Map::from_iter([(
            tag,
            serde_json::Value::Object(fields),
        )]));
        Tagged::deserialize(outer.into_deserializer())
            .map(Event::from)
            .map_err(A::Error::custom)
    }
}

/// A string, borrowed from the input when it holds no escape.
pub(crate) struct Text<'de>(pub(crate) std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text<'de>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(s.into()))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(s.to_owned().into()))
            }
            fn visit_string<E>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(s.into()))
            }
        }
        d.deserialize_str(V)
    }
}

/// The rest of an event's object once its `type` was read, as the variant `type` names.
struct Rest<'de, A> {
    tag: Text<'de>,
    map: A,
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::EnumAccess<'de> for Rest<'de, A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<V: serde::de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), A::Error> {
        use serde::de::IntoDeserializer;
        let variant = seed.deserialize(self.tag.0.as_ref().into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::VariantAccess<'de> for Rest<'de, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        Err(serde::de::Error::custom("every event has fields"))
    }

    fn newtype_variant_seed<T: serde::de::DeserializeSeed<'de>>(
        self,
        _: T,
    ) -> Result<T::Value, A::Error> {
        Err(serde::de::Error::custom("every event has named fields"))
    }

    fn tuple_variant<V: serde::de::Visitor<'de>>(
        self,
        _: usize,
        _: V,
    ) -> Result<V::Value, A::Error> {
        Err(serde::de::Error::custom("every event has named fields"))
    }

    fn struct_variant<V: serde::de::Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.map)
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
        // Room for most events at once (a DHCP event is about 300 bytes): growing from
        // serde_json's 128 copies it twice.
        let mut out = Vec::with_capacity(512);
        serde_json::to_writer(&mut out, self).expect("an envelope always serializes");
        out
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

#[cfg(test)]
mod source_tests {
    use super::*;

    fn round(json: &str) -> Source {
        let s: Source = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), json, "{s:?}");
        s
    }

    #[test]
    fn sources_are_typed_and_written_back_as_they_were() {
        assert_eq!(round(r#"{"stream":"cli"}"#), Source::Cli);
        assert_eq!(round(r#"{"stream":"web"}"#), Source::Web);
        assert_eq!(
            round(r#"{"stream":"http:report"}"#),
            Source::Http {
                endpoint: "report".into()
            }
        );
        assert_eq!(
            round(r#"{"stream":"syslog:10.0.0.5"}"#),
            Source::Syslog {
                ip: Ipv4Addr::new(10, 0, 0, 5)
            }
        );
        assert_eq!(
            round(r#"{"stream":"file:00000000deadbeef","offset":42}"#),
            Source::LogFile {
                identity: 0xdead_beef,
                offset: 42
            }
        );
        assert_eq!(
            round(r#"{"stream":"file:f0123456789abcde","offset":0}"#),
            Source::LogFile {
                identity: 0xf012_3456_789a_bcde,
                offset: 0
            }
        );
        // Written as the stored shape is.
        for s in [
            Source::Cli,
            Source::LogFile {
                identity: u64::MAX,
                offset: 7,
            },
            Source::Other {
                stream: "x".into(),
                offset: None,
            },
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                serde_json::to_string(&RawSource::from(s.clone())).unwrap()
            );
        }
        assert_eq!(
            round(r#"{"stream":"schedule:lab-nightly"}"#),
            Source::Schedule {
                name: "lab-nightly".into()
            }
        );
        assert_eq!(
            round(r#"{"stream":"journal:isc-dhcp-server.service"}"#),
            Source::Journal {
                unit: "isc-dhcp-server.service".into()
            }
        );
        // Shapes this release does not write are kept exactly.
        for other in [
            r#"{"stream":"file:DEADBEEF","offset":1}"#,
            r#"{"stream":"file:00000000deadbeef"}"#,
            r#"{"stream":"syslog:010.0.0.5"}"#,
            r#"{"stream":"cli","offset":3}"#,
            r#"{"stream":"something-new"}"#,
        ] {
            assert!(matches!(round(other), Source::Other { .. }), "{other}");
        }
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    /// Every kind of event, as a release wrote it.
    const EVERY_KIND: &str = include_str!("../../fixtures/journal-v6.jsonl");

    /// `json` with its event's `type` moved to the end of the event's object.
    fn type_last(json: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        let event = v["event"].as_object_mut().unwrap();
        let tag = event.remove("type").unwrap();
        let mut fields = serde_json::to_string(event).unwrap();
        fields.pop();
        let sep = if fields.len() > 1 { "," } else { "" };
        v["event"] = serde_json::Value::Null;
        let outer = serde_json::to_string(&v).unwrap();
        outer.replace(
            r#""event":null"#,
            &format!(r#""event":{fields}{sep}"type":{tag}}}"#),
        )
    }

    #[test]
    fn every_kind_decodes_by_its_type_wherever_the_type_is() {
        let mut kinds = std::collections::BTreeSet::new();
        for line in EVERY_KIND
            .lines()
            .filter(|l| !l.starts_with(r#"{"trailer""#))
        {
            let first = Envelope::from_json(line.as_bytes()).unwrap();
            // Written again and read back, it is the same event: the decoder lost nothing.
            assert_eq!(Envelope::from_json(&first.to_json()).unwrap(), first);
            let moved = type_last(line);
            assert!(
                !moved.contains(r#""event":{"type""#)
                    || moved.contains(r#"{"type":"StoreCreated"}"#)
            );
            assert_eq!(
                Envelope::from_json(moved.as_bytes()).unwrap(),
                first,
                "{moved}"
            );
            kinds.insert(first.event.kind());
        }
        assert_eq!(
            kinds.len(),
            Event::KINDS.len(),
            "the fixture holds every kind"
        );
    }

    #[test]
    fn an_event_without_a_known_type_is_refused_by_name() {
        let env = |event: &str| {
            format!(
                r#"{{"seq":1,"recorded_at":"2026-01-01T00:00:00Z","observed_at":"2026-01-01T00:00:00Z","actor":"a","event":{event}}}"#
            )
        };
        let err = |event: &str| {
            Envelope::from_json(env(event).as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(r#"{"type":"Bogus","mac":"52:54:00:00:00:01"}"#)
                .contains("unknown variant `Bogus`")
        );
        assert!(
            err(r#"{"mac":"52:54:00:00:00:01","type":"Bogus"}"#)
                .contains("unknown variant `Bogus`")
        );
        assert!(err(r#"{"mac":"52:54:00:00:00:01"}"#).contains("missing field `type`"));
        assert!(err(r#"{}"#).contains("missing field `type`"));
        assert!(err(r#"{"type":7}"#).contains("invalid type"));
        assert!(err(r#"{"type":"GroupRemoved"}"#).contains("missing field `group`"));
        // An escaped name is still a name.
        let escaped = env(r#"{"type":"Group\u0052emoved","group":"lab"}"#);
        assert_eq!(
            Envelope::from_json(escaped.as_bytes()).unwrap().event,
            Event::GroupRemoved {
                group: "lab".into()
            }
        );
    }
}
