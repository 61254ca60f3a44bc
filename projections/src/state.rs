//! The projected state and the fold that builds it: `State::apply(&Envelope)`.
//!
//! `apply` only folds: no checks, no clock, no I/O, so replaying a journal always gives the
//! state the live system had. It is total (any sequence of events folds without panicking).
//! The automatic rules of the specification live here, because replay must reproduce them:
//! an install report moves a machine out of `unknown` into `localboot`, and a one-shot policy
//! reverts once the machine has used it. The business checks live in `decide`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Envelope, Event, Mac, MachineRecord, Policy, Profile};

/// The built-in group every unregistered machine lands in.
pub const UNKNOWN: &str = "unknown";
/// The built-in group of installed machines; its policy is always local boot.
pub const LOCALBOOT: &str = "localboot";

/// Timestamps as RFC 3339 text for people (JSON) and as nanoseconds in binary snapshots,
/// where parsing ten thousand strings would dominate start-up.
mod ts {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            t.serialize(s)
        } else {
            t.as_nanosecond().serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        if d.is_human_readable() {
            Timestamp::deserialize(d)
        } else {
            from_nanos(i128::deserialize(d)?).map_err(serde::de::Error::custom)
        }
    }

    /// [`Timestamp::from_nanosecond`], without its 128-bit division for the times an `i64`
    /// of nanoseconds holds (the years 1678 to 2262): a snapshot holds several a machine.
    pub(super) fn from_nanos(nanos: i128) -> Result<Timestamp, jiff::Error> {
        const BILLION: i64 = 1_000_000_000;
        match i64::try_from(nanos) {
            Ok(n) => Timestamp::new(n.div_euclid(BILLION), n.rem_euclid(BILLION) as i32),
            Err(_) => Timestamp::from_nanosecond(nanos),
        }
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct W<'a>(#[serde(with = "super")] &'a Timestamp);
            t.as_ref().map(W).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            #[derive(Deserialize)]
            struct W(#[serde(with = "super")] Timestamp);
            Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
        }
    }
}

/// A machine's own policy, overriding its group's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// The policy.
    pub policy: Policy,
    /// For one boot only: reverts to `previous` once used.
    pub once: bool,
    /// What a one-shot override reverts to (`None`: follow the group again).
    pub previous: Option<Policy>,
}

/// The last install report of a machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// The installed root device.
    pub device: String,
    /// When it was reported.
    #[serde(with = "ts")]
    pub at: Timestamp,
}

/// The last boot entry a machine fetched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastBoot {
    /// The file it fetched.
    pub file: String,
    /// The policy that entry carried at that moment.
    pub policy: Policy,
    /// When.
    #[serde(with = "ts")]
    pub at: Timestamp,
}

/// Everything known about one machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Its MAC, the key.
    pub mac: Mac,
    /// Its unique name.
    pub name: Option<String>,
    /// Its group (exactly one).
    pub group: String,
    /// Its fixed IPv4 address.
    pub ip: Option<Ipv4Addr>,
    /// Its mapped root device.
    pub rootdev: Option<String>,
    /// Its own policy, if it overrides its group's.
    pub policy: Option<Override>,
    /// Registered by an admin (rather than only seen in a log).
    pub registered: bool,
    /// The sequence number of the first event that mentioned it (orders "first appearance").
    pub first_seq: u64,
    /// When it was first seen or registered.
    #[serde(with = "ts")]
    pub first_seen: Timestamp,
    /// When it last showed activity (DHCP, boot, report).
    #[serde(with = "ts::option")]
    pub last_seen: Option<Timestamp>,
    /// The last IPv4 address it was seen with.
    pub last_ip: Option<Ipv4Addr>,
    /// The host name its DHCP client last sent (untrusted; shown, never rendered).
    pub dhcp_hostname: Option<String>,
    /// Its client architecture, when a DHCP log said (0 BIOS, 7/9 x86-64 UEFI).
    pub arch: Option<u16>,
    /// Its last install report.
    pub installed: Option<Installed>,
    /// The last boot entry it fetched.
    pub last_boot: Option<LastBoot>,
    /// A one-shot policy this machine is booting now. The one-shot was spent when the
    /// machine fetched its entry, but the entry stays served until the machine's next DHCP
    /// exchange or install report: a boot loader may fetch its file more than once in one
    /// boot (GRUB does), and must read the same entry each time.
    pub booting: Option<Policy>,
    /// An image save or restore it started and has not ended.
    #[serde(default)]
    pub imaging: Option<crate::ImageJob>,
    /// Its last power action.
    #[serde(default)]
    pub power: Option<crate::LastPower>,
}

impl Machine {
    /// Whether the DHCP files list this machine: an admin registered, named, addressed or
    /// grouped it. A machine only seen in a log stays out, so discoveries never reload DHCP.
    pub fn dhcp_listed(&self) -> bool {
        self.registered || self.name.is_some() || self.ip.is_some() || self.group != UNKNOWN
    }

    /// Which install this is: when its last install report came (microseconds; 0 before
    /// any). A report token is good for one generation.
    pub fn install_generation(&self) -> i64 {
        self.installed.as_ref().map_or(0, |i| i.at.as_microsecond())
    }
}

/// A group and its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its default policy.
    pub policy: Policy,
    /// `unknown` and `localboot`.
    pub builtin: bool,
    /// Its members.
    pub members: BTreeSet<Mac>,
}

/// Where a machine's effective policy comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The machine's own override.
    Machine,
    /// The machine's own one-shot override.
    MachineOnce,
    /// Its group's policy.
    Group,
}

/// A change to a group or a profile, kept in the state (they are few: admins make them) so a
/// machine's boots can be reconstructed from its own history (see
/// [`crate::BootTracker::from_history`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Setting {
    /// The event's sequence number.
    pub seq: u64,
    /// When it was observed.
    #[serde(with = "ts")]
    pub at: Timestamp,
    /// Who made it.
    pub actor: String,
    /// What changed.
    pub change: SettingChange,
}

/// What a [`Setting`] changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SettingChange {
    /// `GroupCreated`.
    GroupCreated { group: String, policy: Policy },
    /// `GroupPolicySet`.
    GroupPolicySet { group: String, policy: Policy },
    /// `GroupRemoved`.
    GroupRemoved { group: String },
    /// A group the fold made because a machine was put in it before it existed.
    GroupImplied { group: String },
    /// `ProfileDefined`.
    ProfileDefined { profile: Profile },
    /// `ProfileRemoved`.
    ProfileRemoved { name: String },
}

impl SettingChange {
    /// The event it was, when it was one.
    pub fn event(&self) -> Option<Event> {
        Some(match self {
            SettingChange::GroupCreated { group, policy } => Event::GroupCreated {
                group: group.clone(),
                policy: policy.clone(),
            },
            SettingChange::GroupPolicySet { group, policy } => Event::GroupPolicySet {
                group: group.clone(),
                policy: policy.clone(),
            },
            SettingChange::GroupRemoved { group } => Event::GroupRemoved {
                group: group.clone(),
            },
            SettingChange::GroupImplied { .. } => return None,
            SettingChange::ProfileDefined { profile } => Event::ProfileDefined {
                profile: profile.clone(),
            },
            SettingChange::ProfileRemoved { name } => Event::ProfileRemoved { name: name.clone() },
        })
    }

    /// The change an event makes to groups or profiles, if any.
    fn of(ev: &Event) -> Option<SettingChange> {
        Some(match ev {
            Event::GroupCreated { group, policy } => SettingChange::GroupCreated {
                group: group.clone(),
                policy: policy.clone(),
            },
            Event::GroupPolicySet { group, policy } => SettingChange::GroupPolicySet {
                group: group.clone(),
                policy: policy.clone(),
            },
            Event::GroupRemoved { group } => SettingChange::GroupRemoved {
                group: group.clone(),
            },
            Event::ProfileDefined { profile } => SettingChange::ProfileDefined {
                profile: profile.clone(),
            },
            Event::ProfileRemoved { name } => SettingChange::ProfileRemoved { name: name.clone() },
            _ => return None,
        })
    }
}

/// The projected state of the whole inventory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Shared with published copies of the state: a clone costs a pointer per machine, and
    /// a machine is copied only when it changes.
    #[serde(deserialize_with = "bulk_map")]
    machines: BTreeMap<Mac, Arc<Machine>>,
    groups: BTreeMap<String, Group>,
    profiles: BTreeMap<String, Profile>,
    site_key: Option<String>,
    installer_password: Option<String>,
    last_seq: u64,
    /// The latest observation time of any event folded (log replays can arrive out of time
    /// order; a snapshot is a valid start for "as of T" only when this is ≤ T).
    #[serde(with = "ts::option")]
    max_observed: Option<Timestamp>,
    /// Every change to a group or a profile, oldest first: what a machine's boots were
    /// decided by besides its own events, so they can be told from its own history.
    settings: Vec<Setting>,
    /// Saved disk images, by name.
    images: BTreeMap<String, crate::Image>,
    /// BMC settings.
    power: Arc<crate::Power>,
    /// Schedules, by name.
    #[serde(default)]
    schedules: BTreeMap<String, Arc<crate::Schedule>>,
    #[serde(skip)]
    names: HashMap<Arc<str>, Mac>,
    #[serde(skip)]
    ips: HashMap<Ipv4Addr, Mac>,
    /// Who was last acknowledged each address, to attribute file fetches by address.
    #[serde(skip)]
    leases: HashMap<Ipv4Addr, Mac>,
    /// The site key in force, given by whoever holds it ([`State::set_site_key`]): it is
    /// never in the log (nor in snapshots), only in a file beside the store.
    #[serde(skip)]
    key: Option<crate::SiteKey>,
}

/// A map read whole, then built at once: a snapshot writes it in key order, so building it
/// from its entries takes no search, where inserting them one by one searches the tree for
/// each (10,000 machines). A key given twice keeps its last value, as inserting does.
fn bulk_map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    struct Entries<K, V>(std::marker::PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> serde::de::Visitor<'de>
        for Entries<K, V>
    {
        type Value = BTreeMap<K, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            // The claimed size only as a hint: a damaged one cannot make it allocate much.
            let mut all = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(entry) = map.next_entry()? {
                all.push(entry);
            }
            Ok(all.into_iter().collect())
        }
    }
    d.deserialize_map(Entries(std::marker::PhantomData))
}

impl Default for State {
    fn default() -> Self {
        let builtin = |name: &str| Group {
            name: name.to_string(),
            policy: Policy::LocalBoot,
            builtin: true,
            members: BTreeSet::new(),
        };
        let mut groups = BTreeMap::new();
        groups.insert(UNKNOWN.to_string(), builtin(UNKNOWN));
        groups.insert(LOCALBOOT.to_string(), builtin(LOCALBOOT));
        State {
            machines: BTreeMap::new(),
            groups,
            profiles: BTreeMap::new(),
            site_key: None,
            installer_password: None,
            last_seq: 0,
            max_observed: None,
            settings: Vec::new(),
            images: BTreeMap::new(),
            schedules: BTreeMap::new(),
            power: Arc::default(),
            names: HashMap::new(),
            ips: HashMap::new(),
            leases: HashMap::new(),
            key: None,
        }
    }
}

impl State {
    /// An empty inventory with the two built-in groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold a sequence of events.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Envelope>) -> Self {
        let mut s = State::new();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Rebuild the lookup indexes after deserializing a snapshot.
    pub fn rebuild_indexes(&mut self) {
        self.names.clear();
        self.ips.clear();
        self.leases.clear();
        self.names.reserve(self.machines.len());
        self.ips.reserve(self.machines.len());
        self.leases.reserve(self.machines.len());
        // Latest acknowledgement wins, as in the fold.
        let mut by_time: Vec<&Machine> = self
            .machines
            .values()
            .map(|m| &**m)
            .filter(|m| m.last_ip.is_some())
            .collect();
        by_time.sort_by_key(|m| m.last_seen);
        for m in by_time {
            self.leases.insert(m.last_ip.expect("filtered"), m.mac);
        }
        for m in self.machines.values() {
            if let Some(n) = &m.name {
                self.names.insert(Arc::from(n.as_str()), m.mac);
            }
            if let Some(ip) = m.ip {
                self.ips.insert(ip, m.mac);
            }
        }
    }

    /// The sequence number of the last event folded.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The latest observation time among the events folded.
    pub fn max_observed(&self) -> Option<Timestamp> {
        self.max_observed
    }

    /// The site key that report tokens derive from: the one given with
    /// [`State::set_site_key`], else the one a store written before site keys left the log
    /// recorded in its first event. Never an empty one.
    pub fn site_key(&self) -> Option<&str> {
        self.key
            .as_ref()
            .map(crate::SiteKey::as_str)
            .or(self.site_key.as_deref())
            .filter(|k| !k.is_empty())
    }

    /// The site key a store written before site keys left the log recorded in its first
    /// event (it is read from there once, into the key file).
    pub fn logged_site_key(&self) -> Option<&str> {
        self.site_key.as_deref().filter(|k| !k.is_empty())
    }

    /// Give the state the site key in force (kept outside the log).
    pub fn set_site_key(&mut self, key: crate::SiteKey) {
        self.key = Some(key);
    }

    /// The crypted installer password (`$6$…`), once set.
    pub fn installer_password(&self) -> Option<&str> {
        self.installer_password.as_deref()
    }

    /// Every machine, by MAC.
    pub fn machines(&self) -> impl ExactSizeIterator<Item = &Machine> {
        self.machines.values().map(|m| &**m)
    }

    /// The machines as the state shares them, in MAC order: a machine no event changed
    /// since a copy of the state was made is the same allocation in both (`Arc::ptr_eq`).
    pub(crate) fn shared_machines(&self) -> impl Iterator<Item = (&Mac, &Arc<Machine>)> {
        self.machines.iter()
    }

    /// How many machines are known.
    pub fn machine_count(&self) -> usize {
        self.machines.len()
    }

    /// Every image, by name.
    pub fn schedules(&self) -> impl Iterator<Item = &crate::Schedule> {
        self.schedules.values().map(|s| &**s)
    }

    /// BMC settings.
    pub fn power(&self) -> &crate::Power {
        &self.power
    }

    /// A schedule by name.
    pub fn schedule(&self, name: &str) -> Option<&crate::Schedule> {
        self.schedules.get(name).map(|s| &**s)
    }

    /// Every image by name.
    pub fn images(&self) -> impl Iterator<Item = (&str, &crate::Image)> {
        self.images.iter().map(|(n, i)| (n.as_str(), i))
    }

    /// One image.
    pub fn image(&self, name: &str) -> Option<&crate::Image> {
        self.images.get(name)
    }

    /// The version an image reference names: the given one, or the newest.
    pub fn image_version(&self, r: &crate::ImageRef) -> Option<&crate::ImageVersion> {
        let image = self.images.get(&r.name)?;
        match r.version {
            Some(v) => image.versions.get(&v),
            None => image.newest(),
        }
    }

    /// One machine.
    pub fn machine(&self, mac: &Mac) -> Option<&Machine> {
        self.machines.get(mac).map(|m| &**m)
    }

    /// The machine with this (lowercase) name.
    pub fn machine_by_name(&self, name: &str) -> Option<&Machine> {
        self.names.get(name).and_then(|m| self.machine(m))
    }

    /// The machine with this fixed address.
    pub fn machine_by_ip(&self, ip: &Ipv4Addr) -> Option<&Machine> {
        self.ips.get(ip).and_then(|m| self.machine(m))
    }

    /// The machine last acknowledged this address by a DHCP server.
    pub fn machine_by_lease(&self, ip: &Ipv4Addr) -> Option<&Machine> {
        self.leases.get(ip).and_then(|m| self.machine(m))
    }

    /// Every group, by name.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// One group.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// Every profile, by name.
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    /// One profile.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// A group's policy (`localboot` is always local boot).
    pub fn group_policy(&self, group: &str) -> Policy {
        if group == LOCALBOOT {
            return Policy::LocalBoot;
        }
        self.groups
            .get(group)
            .map(|g| g.policy.clone())
            .unwrap_or(Policy::LocalBoot)
    }

    /// What a machine's boot files serve now: the one-shot it is in the middle of booting
    /// (see [`Machine::booting`]), else what it boots next.
    pub fn served_policy(&self, m: &Machine) -> (Policy, Origin) {
        match &m.booting {
            Some(p) => (p.clone(), Origin::MachineOnce),
            None => self.effective_policy(m),
        }
    }

    /// What a machine boots next, and why.
    pub fn effective_policy(&self, m: &Machine) -> (Policy, Origin) {
        match &m.policy {
            Some(o) if o.once => (o.policy.clone(), Origin::MachineOnce),
            Some(o) => (o.policy.clone(), Origin::Machine),
            None => (self.group_policy(&m.group), Origin::Group),
        }
    }

    /// What an admin set on a machine, as its removal keeps it (see [`Event::MachineRemoved`]).
    pub fn record(&self, mac: &Mac) -> Option<MachineRecord> {
        let m = self.machine(mac)?;
        Some(MachineRecord {
            name: m.name.clone(),
            group: m.group.clone(),
            ip: m.ip,
            rootdev: m.rootdev.clone(),
            policy: m.policy.as_ref().map(|o| o.policy.clone()),
            once: m.policy.as_ref().is_some_and(|o| o.once),
            previous: m.policy.as_ref().and_then(|o| o.previous.clone()),
        })
    }

    /// The machines whose history an event belongs to: the machine it names, or every
    /// member of the group whose policy it changes.
    pub fn history_macs(&self, ev: &Event) -> Vec<Mac> {
        match ev {
            Event::GroupPolicySet { group, .. } => self
                .groups
                .get(group)
                .map(|g| g.members.iter().copied().collect())
                .unwrap_or_default(),
            _ => crate::schedule::machines(ev).unwrap_or_else(|| ev.mac().into_iter().collect()),
        }
    }

    fn ensure_machine(&mut self, mac: Mac, env: &Envelope) -> &mut Machine {
        if !self.machines.contains_key(&mac) {
            self.groups
                .get_mut(UNKNOWN)
                .expect("built-in group")
                .members
                .insert(mac);
        }
        let m = self.machines.entry(mac).or_insert_with(|| {
            Arc::new(Machine {
                mac,
                name: None,
                group: UNKNOWN.to_string(),
                ip: None,
                rootdev: None,
                policy: None,
                registered: false,
                first_seq: env.seq,
                first_seen: env.observed_at,
                last_seen: None,
                last_ip: None,
                dhcp_hostname: None,
                arch: None,
                installed: None,
                last_boot: None,
                booting: None,
                imaging: None,
                power: None,
            })
        });
        Arc::make_mut(m)
    }

    fn move_to_group(&mut self, mac: Mac, group: &str) {
        let Some(m) = machine_mut(&mut self.machines, &mac) else {
            return;
        };
        if m.group == group {
            return;
        }
        if let Some(old) = self.groups.get_mut(&m.group) {
            old.members.remove(&mac);
        }
        m.group = group.to_string();
        self.groups
            .entry(group.to_string())
            .or_insert_with(|| Group {
                name: group.to_string(),
                policy: Policy::LocalBoot,
                builtin: false,
                members: BTreeSet::new(),
            })
            .members
            .insert(mac);
    }

    fn set_name(&mut self, mac: Mac, name: Option<String>) {
        if let Some(n) = &name
            && let Some(other) = self.names.get(n.as_str()).copied()
            && other != mac
            && let Some(o) = machine_mut(&mut self.machines, &other)
        {
            o.name = None;
        }
        let Some(m) = machine_mut(&mut self.machines, &mac) else {
            return;
        };
        if let Some(old) = m.name.take() {
            self.names.remove(old.as_str());
        }
        if let Some(n) = &name {
            self.names.insert(Arc::from(n.as_str()), mac);
        }
        m.name = name;
    }

    fn set_ip(&mut self, mac: Mac, ip: Option<Ipv4Addr>) {
        if let Some(a) = ip
            && let Some(other) = self.ips.get(&a).copied()
            && other != mac
            && let Some(o) = machine_mut(&mut self.machines, &other)
        {
            o.ip = None;
        }
        let Some(m) = machine_mut(&mut self.machines, &mac) else {
            return;
        };
        if let Some(old) = m.ip.take() {
            self.ips.remove(&old);
        }
        if let Some(a) = ip {
            self.ips.insert(a, mac);
        }
        m.ip = ip;
    }

    /// A one-shot override has been used: go back to what was there before (the boot in
    /// progress keeps its entry: [`Machine::booting`]).
    fn spend_once(m: &mut Machine) {
        if let Some(o) = &m.policy
            && o.once
        {
            m.booting = Some(o.policy.clone());
            m.policy = o.previous.clone().map(|p| Override {
                policy: p,
                once: false,
                previous: None,
            });
        }
    }

    /// The changes to groups and profiles, oldest first.
    pub(crate) fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// Make a group or profile change recorded by another state (no machine is touched
    /// beyond what the change itself does: a removed group's members move to `unknown`).
    pub(crate) fn apply_setting(&mut self, s: &Setting) {
        match &s.change {
            SettingChange::GroupImplied { group } => {
                self.groups.entry(group.clone()).or_insert_with(|| Group {
                    name: group.clone(),
                    policy: Policy::LocalBoot,
                    builtin: false,
                    members: BTreeSet::new(),
                });
            }
            change => {
                if let Some(event) = change.event() {
                    self.apply(&Envelope {
                        seq: s.seq,
                        v: crate::SCHEMA_VERSION,
                        recorded_at: s.at,
                        observed_at: s.at,
                        actor: s.actor.clone(),
                        source: None,
                        event,
                    });
                }
            }
        }
    }

    /// Fold one event. No checks, no side effects.
    pub fn apply(&mut self, env: &Envelope) {
        let implied = match &env.event {
            Event::MachineAssigned { group, .. }
            | Event::MachineRegistered {
                group: Some(group), ..
            } => (!self.groups.contains_key(group)).then(|| group.clone()),
            _ => None,
        };
        self.fold(env);
        let change = match implied {
            Some(group) if self.groups.contains_key(&group) => {
                Some(SettingChange::GroupImplied { group })
            }
            _ => SettingChange::of(&env.event),
        };
        if let Some(change) = change {
            self.settings.push(Setting {
                seq: env.seq,
                at: env.observed_at,
                actor: env.actor.clone(),
                change,
            });
        }
    }

    fn fold(&mut self, env: &Envelope) {
        self.last_seq = env.seq;
        if self.max_observed.is_none_or(|m| env.observed_at > m) {
            self.max_observed = Some(env.observed_at);
        }
        let at = env.observed_at;
        match &env.event {
            // Stores written before site keys left the log carry it here.
            Event::StoreCreated { site_key } => {
                self.site_key = Some(site_key.clone()).filter(|k| !k.is_empty());
            }
            Event::MachineRegistered {
                mac,
                name,
                group,
                ip,
            } => {
                self.ensure_machine(*mac, env).registered = true;
                if name.is_some() {
                    self.set_name(*mac, name.clone());
                }
                if ip.is_some() {
                    self.set_ip(*mac, *ip);
                }
                if let Some(g) = group {
                    self.move_to_group(*mac, g);
                }
            }
            Event::MachineRestored { mac, was, .. } => {
                let m = self.ensure_machine(*mac, env);
                m.registered = true;
                m.rootdev.clone_from(&was.rootdev);
                m.booting = None;
                m.policy = was.policy.clone().map(|policy| Override {
                    policy,
                    once: was.once,
                    previous: was.previous.clone().filter(|_| was.once),
                });
                self.set_name(*mac, was.name.clone());
                self.set_ip(*mac, was.ip);
                self.move_to_group(*mac, &was.group);
            }
            Event::MachineRemoved { mac, .. } => {
                if let Some(m) = self.machines.remove(mac) {
                    if let Some(ip) = &m.last_ip
                        && self.leases.get(ip) == Some(mac)
                    {
                        self.leases.remove(ip);
                    }
                    if let Some(n) = &m.name {
                        self.names.remove(n.as_str());
                    }
                    if let Some(ip) = &m.ip {
                        self.ips.remove(ip);
                    }
                    if let Some(g) = self.groups.get_mut(&m.group) {
                        g.members.remove(mac);
                    }
                }
            }
            Event::MachineNamed { mac, name } => {
                self.ensure_machine(*mac, env);
                self.set_name(*mac, name.clone());
            }
            Event::MachineAssigned { mac, group } => {
                self.ensure_machine(*mac, env);
                self.move_to_group(*mac, group);
            }
            Event::MachineAddressSet { mac, ip } => {
                self.ensure_machine(*mac, env);
                self.set_ip(*mac, *ip);
            }
            Event::GroupCreated { group, policy } => {
                let g = self.groups.entry(group.clone()).or_insert_with(|| Group {
                    name: group.clone(),
                    policy: policy.clone(),
                    builtin: false,
                    members: BTreeSet::new(),
                });
                g.policy = policy.clone();
            }
            Event::GroupRemoved { group } => {
                if let Some(g) = self.groups.get(group)
                    && !g.builtin
                {
                    let members: Vec<Mac> = g.members.iter().copied().collect();
                    for m in members {
                        self.move_to_group(m, UNKNOWN);
                    }
                    self.groups.remove(group);
                }
            }
            Event::GroupPolicySet { group, policy } => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.policy = policy.clone();
                }
            }
            Event::MachinePolicySet { mac, policy, once } => {
                let m = self.ensure_machine(*mac, env);
                // The admin's word on this machine wins over a one-shot boot in progress.
                m.booting = None;
                m.policy = match policy {
                    None => None,
                    Some(p) if *once => {
                        // Revert to whatever was in force before any pending one-shot.
                        let previous = match &m.policy {
                            Some(o) if o.once => o.previous.clone(),
                            Some(o) => Some(o.policy.clone()),
                            None => None,
                        };
                        Some(Override {
                            policy: p.clone(),
                            once: true,
                            previous,
                        })
                    }
                    Some(p) => Some(Override {
                        policy: p.clone(),
                        once: false,
                        previous: None,
                    }),
                };
            }
            Event::RootDeviceSet { mac, device } => {
                self.ensure_machine(*mac, env).rootdev = Some(device.clone());
            }
            Event::RootDeviceRemoved { mac } => {
                if let Some(m) = machine_mut(&mut self.machines, mac) {
                    m.rootdev = None;
                }
            }
            Event::InstallReported { mac, device, .. } => {
                let m = self.ensure_machine(*mac, env);
                m.rootdev = Some(device.clone());
                m.installed = Some(Installed {
                    device: device.clone(),
                    at,
                });
                m.last_seen = Some(at);
                if matches!(&m.policy, Some(o) if o.once && matches!(o.policy, Policy::Install { .. }))
                {
                    Self::spend_once(m);
                }
                // The install is over: its next boot is the new policy's.
                m.booting = None;
                if m.group == UNKNOWN {
                    self.move_to_group(*mac, LOCALBOOT);
                }
            }
            Event::ImageSaveStarted {
                mac,
                image,
                version,
            }
            | Event::ImageRestoreStarted {
                mac,
                image,
                version,
            } => {
                let action = if matches!(env.event, Event::ImageSaveStarted { .. }) {
                    crate::ImageAction::Save
                } else {
                    crate::ImageAction::Restore
                };
                if action == crate::ImageAction::Save {
                    let i = self.images.entry(image.clone()).or_default();
                    i.last_started = i.last_started.max(*version);
                }
                let m = self.ensure_machine(*mac, env);
                m.last_seen = Some(at);
                m.imaging = Some(crate::ImageJob {
                    action,
                    image: image.clone(),
                    version: *version,
                    at,
                });
                // A one-shot restore stays armed until the restore is verified: a machine
                // cut off in the middle restores again at its next boot, instead of booting
                // a half-written disk.
                if action == crate::ImageAction::Restore {
                    let restoring = |p: &Policy| matches!(p, Policy::RestoreImage { .. });
                    let armed = m.policy.as_ref().is_some_and(|o| restoring(&o.policy));
                    if let Some(policy) = m
                        .last_boot
                        .as_ref()
                        .map(|b| b.policy.clone())
                        .filter(|p| restoring(p) && !armed)
                        .filter(|_| {
                            m.booting.is_none() || m.booting.as_ref().is_some_and(restoring)
                        })
                    {
                        let group_restores = m.policy.is_none() && {
                            let g = m.group.clone();
                            self.groups.get(&g).is_some_and(|g| restoring(&g.policy))
                        };
                        let m = machine_mut(&mut self.machines, mac).expect("ensured above");
                        if !group_restores {
                            let previous = m.policy.take().map(|o| o.policy);
                            m.policy = Some(Override {
                                policy,
                                once: true,
                                previous,
                            });
                        }
                        m.booting = None;
                    }
                }
            }
            Event::ImageSaved {
                mac,
                image,
                version,
                manifest,
            } => {
                let i = self.images.entry(image.clone()).or_default();
                i.last_started = i.last_started.max(*version);
                i.versions.insert(
                    *version,
                    crate::ImageVersion {
                        name: image.clone(),
                        version: *version,
                        manifest: manifest.clone(),
                        from: *mac,
                        at,
                        restores: Vec::new(),
                    },
                );
                if let Some(m) = machine_mut(&mut self.machines, mac) {
                    m.imaging = None;
                    m.last_seen = Some(at);
                }
            }
            Event::ImageRestored {
                mac,
                image,
                version,
                ..
            } => {
                if let Some(v) = self
                    .images
                    .get_mut(image)
                    .and_then(|i| i.versions.get_mut(version))
                {
                    v.restores.push(crate::Restore { mac: *mac, at });
                }
                if let Some(m) = machine_mut(&mut self.machines, mac) {
                    m.imaging = None;
                    m.last_seen = Some(at);
                    // Verified: a one-shot restore is spent now.
                    if m.policy
                        .as_ref()
                        .is_some_and(|o| o.once && matches!(o.policy, Policy::RestoreImage { .. }))
                    {
                        m.policy = m.policy.take().and_then(|o| o.previous).map(|p| Override {
                            policy: p,
                            once: false,
                            previous: None,
                        });
                    }
                }
            }
            Event::ImageFailed {
                mac, action, image, ..
            } => {
                if let Some(m) = machine_mut(&mut self.machines, mac) {
                    m.imaging = None;
                    m.last_seen = Some(at);
                    // A failed restore tries again at the next boot: a one-shot restore that
                    // its boot spent is put back, ahead of what it had reverted to.
                    if *action == crate::ImageAction::Restore {
                        let restoring = |p: &Policy| matches!(p, Policy::RestoreImage { .. });
                        let still = m.policy.as_ref().is_some_and(|o| restoring(&o.policy));
                        let group_restores = m.policy.is_none()
                            && restoring(
                                &self
                                    .groups
                                    .get(&m.group)
                                    .map_or(Policy::LocalBoot, |g| g.policy.clone()),
                            );
                        if !still && !group_restores {
                            let policy = m
                                .last_boot
                                .as_ref()
                                .map(|b| b.policy.clone())
                                .filter(restoring)
                                .unwrap_or_else(|| Policy::RestoreImage {
                                    image: image.clone(),
                                });
                            let previous = m.policy.take().map(|o| o.policy);
                            m.policy = Some(Override {
                                policy,
                                once: true,
                                previous,
                            });
                        }
                    }
                }
            }
            Event::ScheduleDefined { .. }
            | Event::ScheduleRemoved { .. }
            | Event::SchedulePaused { .. }
            | Event::ScheduleResumed { .. }
            | Event::ScheduleRan { .. }
            | Event::ScheduleMissed { .. }
            | Event::ScheduleChecked { .. } => crate::schedule::fold(&mut self.schedules, env),
            Event::BmcSet { .. } | Event::BmcRemoved { .. } => {
                crate::power::fold(Arc::make_mut(&mut self.power), env)
            }
            Event::PowerActed { mac, op, result } => {
                if let Some(m) = machine_mut(&mut self.machines, mac) {
                    m.power = Some(crate::LastPower {
                        op: *op,
                        result: result.clone(),
                        at: env.observed_at,
                        by: env.actor.clone(),
                    });
                }
            }
            Event::ImageRemoved { image, version } => {
                if let Some(i) = self.images.get_mut(image) {
                    i.versions.remove(version);
                }
            }
            Event::BootEntryUsed { mac, file, ip } => {
                self.ensure_machine(*mac, env);
                let m = &self.machines[mac];
                let (policy, _) = self.served_policy(m);
                let m = machine_mut(&mut self.machines, mac).expect("ensured above");
                m.last_boot = Some(LastBoot {
                    file: file.clone(),
                    policy,
                    at,
                });
                m.last_seen = Some(at);
                if let Some(a) = ip {
                    m.last_ip = Some(*a);
                }
                Self::spend_once(m);
                if let Some(a) = ip {
                    self.leases.insert(*a, *mac);
                }
            }
            Event::ProfileDefined { profile } => {
                self.profiles.insert(profile.name.clone(), profile.clone());
            }
            Event::ProfileRemoved { name } => {
                self.profiles.remove(name);
            }
            Event::InstallerPasswordSet { crypted } => {
                self.installer_password = Some(crypted.clone());
            }
            Event::DhcpSeen {
                mac,
                kind,
                ip,
                hostname,
                arch,
                ..
            } => {
                let m = self.ensure_machine(*mac, env);
                m.last_seen = Some(at);
                // A new DHCP exchange: the boot that used a one-shot is over.
                m.booting = None;
                if hostname.is_some() {
                    m.dhcp_hostname = hostname.clone();
                }
                if arch.is_some() {
                    m.arch = *arch;
                }
                if matches!(kind.as_str(), "ack" | "bootreply")
                    && let Some(a) = ip
                {
                    m.last_ip = Some(*a);
                    self.leases.insert(*a, *mac);
                }
            }
            Event::InstallerLogged { mac, .. } => {
                if let Some(m) = machine_mut(&mut self.machines, mac) {
                    m.last_seen = Some(at);
                }
            }
            Event::FileServed { mac, .. } => {
                if let Some(mac) = mac
                    && let Some(m) = machine_mut(&mut self.machines, mac)
                {
                    m.last_seen = Some(at);
                }
            }
        }
    }
}

/// A machine to change: copied first if a published state still shares it.
fn machine_mut<'a>(
    machines: &'a mut BTreeMap<Mac, Arc<Machine>>,
    mac: &Mac,
) -> Option<&'a mut Machine> {
    machines.get_mut(mac).map(Arc::make_mut)
}

#[cfg(test)]
mod snapshot_form_tests {
    use std::collections::BTreeMap;

    use jiff::Timestamp;
    use serde::Deserialize;

    #[test]
    fn nanoseconds_read_without_a_128_bit_division_are_the_same_times() {
        let edge = |t: Timestamp| t.as_nanosecond();
        for n in [
            0i128,
            1,
            -1,
            999_999_999,
            -999_999_999,
            1_000_000_000,
            -1_000_000_001,
            1_764_000_000_123_456_789,
            -5_000_000_000_123_456_789,
            i128::from(i64::MAX),
            i128::from(i64::MIN),
            i128::from(i64::MAX) + 1,
            i128::from(i64::MIN) - 1,
            edge(Timestamp::MAX),
            edge(Timestamp::MIN),
            edge(Timestamp::MAX) + 1,
            edge(Timestamp::MIN) - 1,
        ] {
            assert_eq!(
                super::ts::from_nanos(n).ok(),
                Timestamp::from_nanosecond(n).ok(),
                "{n}"
            );
        }
    }

    #[test]
    fn a_map_built_at_once_is_the_map_inserted_one_by_one() {
        #[derive(Deserialize)]
        struct Held {
            #[serde(deserialize_with = "super::bulk_map")]
            map: BTreeMap<u32, String>,
        }
        // In order, out of order, and a key given twice (its last value is kept).
        for (json, want) in [
            (r#"{"map":{}}"#, vec![]),
            (
                r#"{"map":{"1":"a","2":"b","3":"c"}}"#,
                vec![(1, "a"), (2, "b"), (3, "c")],
            ),
            (
                r#"{"map":{"3":"c","1":"a","2":"b"}}"#,
                vec![(1, "a"), (2, "b"), (3, "c")],
            ),
            (
                r#"{"map":{"1":"a","2":"b","1":"z"}}"#,
                vec![(1, "z"), (2, "b")],
            ),
        ] {
            let held: Held = serde_json::from_str(json).unwrap();
            let want: BTreeMap<u32, String> =
                want.into_iter().map(|(k, v)| (k, v.to_string())).collect();
            assert_eq!(held.map, want, "{json}");
        }
    }
}
