//! Which generated files an event can change, computed from the state *before* it is applied.
//!
//! The engine renders only these after a command, so one machine's policy change touches one
//! machine's files and a group's change touches its members'. Over-approximating is safe
//! (unchanged bytes are not rewritten); missing a file is not, and the model test in the
//! engine compares incremental output with a full render.

use std::collections::BTreeSet;

use crate::{Event, Mac, State, UNKNOWN, render};

/// The files a batch of events may have changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Affected {
    /// Machines whose boot files may change (or go, if the machine is gone afterwards).
    pub machines: BTreeSet<Mac>,
    /// The default entries (the `unknown` group's policy, for never-seen machines).
    pub defaults: bool,
    /// The DHCP files (dhcpd include, dnsmasq hosts).
    pub dhcp: bool,
    /// The /etc/hosts fragment.
    pub hosts: bool,
    /// Groups whose node lists may change (or go).
    pub node_lists: BTreeSet<String>,
    /// Groups whose shared boot entries may change (or go): the group's policy, and for
    /// pxelinux the set of its members' local disks.
    pub groups: BTreeSet<String>,
}

impl Affected {
    /// Everything: what a full render covers.
    pub fn everything(state: &State) -> Affected {
        Affected {
            machines: state.machines().map(|m| m.mac).collect(),
            defaults: true,
            dhcp: true,
            hosts: true,
            node_lists: state.groups().map(|g| g.name.clone()).collect(),
            groups: state.groups().map(|g| g.name.clone()).collect(),
        }
    }

    /// Whether nothing is affected.
    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
            && !self.defaults
            && !self.dhcp
            && !self.hosts
            && self.node_lists.is_empty()
            && self.groups.is_empty()
    }

    /// Merge another set in.
    pub fn extend(&mut self, other: Affected) {
        self.machines.extend(other.machines);
        self.defaults |= other.defaults;
        self.dhcp |= other.dhcp;
        self.hosts |= other.hosts;
        self.node_lists.extend(other.node_lists);
        self.groups.extend(other.groups);
    }

    /// Add what `ev` may change, given the state just before it is applied.
    pub fn add(&mut self, before: &State, ev: &Event) {
        let group_of = |mac: &Mac| before.machine(mac).map(|m| m.group.clone());
        let listed = |mac: &Mac| before.machine(mac).is_some_and(|m| m.dhcp_listed());
        // A name taken over from another machine changes that machine's files too.
        let mut previous_owner = |name: Option<&String>, mac: &Mac| {
            if let Some(other) = name.and_then(|n| before.machine_by_name(n))
                && other.mac != *mac
            {
                self.machines.insert(other.mac);
                self.node_lists.insert(other.group.clone());
            }
        };
        match ev {
            Event::StoreCreated { .. } => {
                self.extend(Affected::everything(before));
            }
            Event::MachineRegistered {
                mac, group, name, ..
            } => {
                previous_owner(name.as_ref(), mac);
                self.machines.insert(*mac);
                self.dhcp = true;
                self.hosts = true;
                let old = group_of(mac).unwrap_or_else(|| UNKNOWN.to_string());
                let new = group.clone().unwrap_or_else(|| UNKNOWN.to_string());
                self.node_lists.insert(old.clone());
                self.node_lists.insert(new.clone());
                self.groups.insert(old);
                self.groups.insert(new);
            }
            Event::MachineRestored { mac, was, .. } => {
                previous_owner(was.name.as_ref(), mac);
                self.machines.insert(*mac);
                self.dhcp = true;
                self.hosts = true;
                let old = group_of(mac).unwrap_or_else(|| UNKNOWN.to_string());
                self.node_lists.insert(old.clone());
                self.node_lists.insert(was.group.clone());
                self.groups.insert(old);
                self.groups.insert(was.group.clone());
            }
            Event::MachineRemoved { mac, .. } => {
                self.machines.insert(*mac);
                self.dhcp |= listed(mac);
                self.hosts = true;
                self.node_lists.extend(group_of(mac));
                self.groups.extend(group_of(mac));
            }
            Event::MachineNamed { mac, name } => {
                previous_owner(name.as_ref(), mac);
                self.machines.insert(*mac);
                self.dhcp = true;
                self.hosts = true;
                self.node_lists
                    .insert(group_of(mac).unwrap_or_else(|| UNKNOWN.to_string()));
            }
            Event::MachineAssigned { mac, group } => {
                self.machines.insert(*mac);
                self.dhcp = true;
                let old = group_of(mac).unwrap_or_else(|| UNKNOWN.to_string());
                self.node_lists.insert(old.clone());
                self.node_lists.insert(group.clone());
                self.groups.insert(old);
                self.groups.insert(group.clone());
            }
            Event::MachineAddressSet { mac, .. } => {
                self.machines.insert(*mac);
                self.dhcp = true;
                self.hosts = true;
            }
            Event::GroupCreated { group, .. } => {
                self.node_lists.insert(group.clone());
                self.groups.insert(group.clone());
            }
            Event::GroupRemoved { group } => {
                self.dhcp = true;
                self.node_lists.insert(group.clone());
                self.node_lists.insert(UNKNOWN.to_string());
                self.groups.insert(group.clone());
                self.groups.insert(UNKNOWN.to_string());
                if let Some(g) = before.group(group) {
                    self.machines.extend(g.members.iter().copied());
                }
            }
            Event::GroupPolicySet { group, policy } => {
                // Members point at the group's shared entry, which is all that changes;
                // only entries that carry per-machine values (a report token) are written
                // per member.
                let old = before.group_policy(group);
                if let Some(g) = before.group(group)
                    && (render::per_machine(before, &old) || render::per_machine(before, policy))
                {
                    self.machines.extend(g.members.iter().copied());
                }
                self.groups.insert(group.clone());
                self.defaults |= group == UNKNOWN;
            }
            Event::MachinePolicySet { mac, .. } => {
                self.machines.insert(*mac);
            }
            // A boot changes files only when it spends a one-shot policy, or when it is the
            // first sight of the machine.
            Event::BootEntryUsed { mac, .. } => match before.machine(mac) {
                None => {
                    self.machines.insert(*mac);
                    self.groups.insert(UNKNOWN.to_string());
                    self.node_lists.insert(UNKNOWN.to_string());
                }
                Some(m) if m.policy.as_ref().is_some_and(|o| o.once) => {
                    self.machines.insert(*mac);
                }
                Some(_) => {}
            },
            Event::RootDeviceSet { mac, .. } | Event::RootDeviceRemoved { mac } => {
                self.machines.insert(*mac);
                self.groups.extend(group_of(mac));
            }
            Event::InstallReported { mac, .. } => {
                self.machines.insert(*mac);
                self.dhcp = true;
                let old = group_of(mac).unwrap_or_else(|| UNKNOWN.to_string());
                self.node_lists.insert(old.clone());
                self.node_lists.insert(crate::LOCALBOOT.to_string());
                self.groups.insert(old);
                self.groups.insert(crate::LOCALBOOT.to_string());
            }
            Event::ProfileDefined { profile } => self.profile_users(before, &profile.name),
            Event::ProfileRemoved { name } => self.profile_users(before, name),
            // Answer files are served, not written.
            Event::InstallerPasswordSet { .. } => {}
            // A machine seen for the first time gets its entries; after that, what DHCP and
            // TFTP logs say changes no file, but for the end of a one-shot boot.
            Event::DhcpSeen { mac, .. } => match before.machine(mac) {
                None => {
                    self.machines.insert(*mac);
                    self.groups.insert(UNKNOWN.to_string());
                    self.node_lists.insert(UNKNOWN.to_string());
                }
                // The boot that used a one-shot is over: its entry gives way.
                Some(m) if m.booting.is_some() => {
                    self.machines.insert(*mac);
                }
                Some(_) => {}
            },
            Event::FileServed { .. } | Event::InstallerLogged { .. } => {}
            // A failed restore may put its one-shot back: the machine's entry restores again.
            Event::ImageFailed { mac, .. } => {
                self.machines.insert(*mac);
            }
            // A restore's one-shot is armed again while it runs, and spent once verified.
            Event::ImageRestoreStarted { mac, .. } | Event::ImageRestored { mac, .. } => {
                self.machines.insert(*mac);
            }
            // Images are files of their own, not generated ones.
            Event::ImageSaveStarted { .. }
            | Event::ImageSaved { .. }
            | Event::ImageRemoved { .. } => {}
            // Schedules write no files; the events a run's action makes are its own.
            Event::ScheduleDefined { .. }
            | Event::ScheduleRemoved { .. }
            | Event::SchedulePaused { .. }
            | Event::ScheduleResumed { .. }
            | Event::ScheduleRan { .. }
            | Event::ScheduleMissed { .. }
            | Event::ScheduleChecked { .. } => {}
            // Power writes no files.
            Event::BmcSet { .. } | Event::BmcRemoved { .. } | Event::PowerActed { .. } => {}
        }
    }

    fn profile_users(&mut self, before: &State, name: &str) {
        for m in before.machines() {
            let (p, _) = before.served_policy(m);
            if p.profile_name() == Some(name) {
                self.machines.insert(m.mac);
            }
        }
        for g in before.groups() {
            if before.group_policy(&g.name).profile_name() == Some(name) {
                self.groups.insert(g.name.clone());
            }
        }
        self.defaults |= before.group_policy(UNKNOWN).profile_name() == Some(name);
    }
}
