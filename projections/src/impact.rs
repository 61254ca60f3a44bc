//! What a change does to the machines: which ones it removes, and what each one boots next
//! where that changed. Worked out from the state before and after a command's events, so it
//! is the same whatever the command was (a machine's policy, a group's, an assignment, a
//! group removed, a profile). Before a command is performed it says whether it needs the
//! admin's confirmation ([`Impact::needs_confirmation`]); after, the CLI prints it ("3
//! machines will now install at next boot: lab01, lab02, lab03").

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Mac, Machine, Policy, State};

/// A machine as a message names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MachineRef {
    /// Its MAC.
    pub mac: Mac,
    /// Its name, if it has one.
    pub name: Option<String>,
}

impl MachineRef {
    fn of(state: &State, mac: &Mac) -> MachineRef {
        MachineRef {
            mac: *mac,
            name: state.machine(mac).and_then(|m| m.name.clone()),
        }
    }

    /// Its name, else its MAC.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.mac.to_string())
    }
}

impl std::fmt::Display for MachineRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} ({})", self.mac),
            None => write!(f, "{}", self.mac),
        }
    }
}

/// The machines that boot something new next, all with the same new policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootChange {
    /// What they boot next now.
    pub policy: Policy,
    /// Whether that erases their disks (an install, an image restored).
    pub erases_disk: bool,
    /// The machines (by name, then MAC).
    pub machines: Vec<MachineRef>,
}

impl BootChange {
    /// What the machines do at their next boot, as a verb phrase ("install", "restore image
    /// lab", "boot from the local disk").
    pub fn doing(&self) -> String {
        match &self.policy {
            Policy::LocalBoot => "boot from the local disk".into(),
            Policy::Install { profile } if profile == crate::DEFAULT_INSTALL_PROFILE => {
                "install".into()
            }
            Policy::Install { profile } => format!("install (profile {profile})"),
            Policy::SaveImage { image } => format!("save the disk as image {image}"),
            Policy::RestoreImage { image } => format!("restore image {image}"),
            Policy::Ltsp => "boot LTSP".into(),
            Policy::NfsRoot { server, export } => format!("boot diskless from {server}:{export}"),
            Policy::Custom { entry } => format!("boot custom entry {entry}"),
        }
    }

    /// "3 machines will now install at next boot: lab01, lab02, lab03" (`will`: "will now"
    /// or "would"); the list is cut after `max` names.
    pub fn sentence(&self, will: &str, max: usize) -> String {
        let n = self.machines.len();
        let what = if n == 1 {
            "1 machine".to_string()
        } else {
            format!("{n} machines")
        };
        format!(
            "{what} {will} {} at next boot: {}",
            self.doing(),
            list(&self.machines, max)
        )
    }
}

/// Machines' names (else MACs), comma-separated, cut after `max` with "and N more".
pub fn list(machines: &[MachineRef], max: usize) -> String {
    let mut out: Vec<String> = machines.iter().take(max).map(|m| m.label()).collect();
    if machines.len() > max {
        out.push(format!("and {} more", machines.len() - max));
    }
    out.join(", ")
}

/// What a change does to the machines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    /// The machines it removes.
    pub removed: Vec<MachineRef>,
    /// The machines whose next boot changes (new ones included), by new policy.
    pub boot: Vec<BootChange>,
}

impl Impact {
    /// Compare the state before a change with the state after it.
    ///
    /// Both states' machines are walked together in MAC order, and a machine's next boot
    /// is worked out only when it may have changed: it is new, its record changed (the
    /// after state shares every machine no event touched), or it follows a group whose
    /// policy changed. A change to one machine among 10,000 costs a walk, not 20,000
    /// policy lookups.
    pub fn between(before: &State, after: &State) -> Impact {
        let regrouped: BTreeSet<&str> = before
            .groups()
            .chain(after.groups())
            .map(|g| g.name.as_str())
            .filter(|g| before.group_policy(g) != after.group_policy(g))
            .collect();
        let mut removed: Vec<MachineRef> = Vec::new();
        let mut by_policy: BTreeMap<Policy, Vec<MachineRef>> = BTreeMap::new();
        let mut changed = |now: &Machine, was: Option<&Machine>| {
            let unchanged = was.is_some_and(|b| {
                let follows =
                    |m: &Machine| m.policy.is_none() && !regrouped.contains(m.group.as_str());
                match (&now.policy, &b.policy) {
                    (Some(n), Some(w)) => n.policy == w.policy && n.once == w.once,
                    (None, None) => now.group == b.group && follows(now),
                    _ => false,
                }
            });
            if unchanged {
                return;
            }
            let policy = after.effective_policy(now).0;
            if was.map(|b| before.effective_policy(b).0).as_ref() != Some(&policy) {
                by_policy
                    .entry(policy)
                    .or_default()
                    .push(MachineRef::of(after, &now.mac));
            }
        };
        let mut old = before.shared_machines().peekable();
        for (mac, now) in after.shared_machines() {
            // The machines before this one that are gone.
            while let Some((gone, _)) = old.next_if(|(m, _)| *m < mac) {
                removed.push(MachineRef::of(before, gone));
            }
            match old.next_if(|(m, _)| *m == mac) {
                Some((_, was))
                    if Arc::ptr_eq(was, now) && !regrouped.contains(now.group.as_str()) => {}
                Some((_, was)) => changed(now, Some(was)),
                None => changed(now, None),
            }
        }
        removed.extend(old.map(|(gone, _)| MachineRef::of(before, gone)));
        removed.sort_by_key(|m| (m.label(), m.mac));
        let boot = by_policy
            .into_iter()
            .map(|(policy, mut machines)| {
                machines.sort_by_key(|m| (m.label(), m.mac));
                BootChange {
                    erases_disk: policy.erases_disk(),
                    policy,
                    machines,
                }
            })
            .collect();
        Impact { removed, boot }
    }

    /// The machines whose next boot now erases their disks.
    pub fn erasing(&self) -> Vec<&MachineRef> {
        self.boot
            .iter()
            .filter(|b| b.erases_disk)
            .flat_map(|b| &b.machines)
            .collect()
    }

    /// Whether the change is bulk destruction, which an admin confirms after seeing the
    /// list: it removes more than one machine, or makes more than one machine erase its
    /// disk at its next boot (an install, an image restored).
    pub fn needs_confirmation(&self) -> bool {
        self.removed.len() > 1 || self.erasing().len() > 1
    }

    /// The machines a confirmation is about: those removed and those that will erase their
    /// disks. What is performed must reach exactly these.
    pub fn at_risk(&self) -> BTreeSet<Mac> {
        self.removed
            .iter()
            .chain(self.erasing())
            .map(|m| m.mac)
            .collect()
    }

    /// Whether nothing changes for any machine.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.boot.is_empty()
    }
}
