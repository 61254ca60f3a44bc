//! One-line human descriptions of events, for `nmt history` and the web timeline.

use crate::{Event, MachineRecord, ReportVia};

/// A removed machine's settings in words: "was node07 in group lab, address 10.0.0.7".
fn record(w: &MachineRecord) -> String {
    let mut s = String::new();
    if let Some(n) = &w.name {
        s += &format!("{n}, ");
    }
    s += &format!("group {}", w.group);
    if let Some(a) = w.ip {
        s += &format!(", address {a}");
    }
    if let Some(d) = &w.rootdev {
        s += &format!(", root device {d}");
    }
    if let Some(p) = &w.policy {
        s += &format!(", own policy {p}");
        if w.once {
            s += " (next boot only)";
        }
    }
    s
}

/// [`describe`], in one machine's history: a schedule run's check says that machine's
/// outcome first.
pub fn describe_for(ev: &Event, mac: &crate::Mac) -> String {
    match ev {
        // In one machine's history, a run's check says what that machine did.
        Event::ScheduleChecked {
            name,
            run,
            outcomes,
        } if outcomes.len() > 1 => match outcomes.iter().find(|o| o.mac == *mac) {
            Some(o) => format!(
                "schedule {name} run {run} checked: {} ({} in all: {})",
                crate::schedule::outcome_words(o),
                outcomes.len(),
                crate::schedule::counts_words(outcomes)
            ),
            None => describe(ev),
        },
        _ => describe(ev),
    }
}

/// Describe an event in a few words, e.g. "policy set to install:default (next boot only)".
pub fn describe(ev: &Event) -> String {
    match ev {
        Event::StoreCreated { .. } => "store created".into(),
        Event::MachineRegistered {
            mac,
            name,
            group,
            ip,
        } => {
            let mut s = format!("{mac} registered");
            if let Some(n) = name {
                s += &format!(" as {n}");
            }
            if let Some(g) = group {
                s += &format!(" in group {g}");
            }
            if let Some(a) = ip {
                s += &format!(" with address {a}");
            }
            s
        }
        Event::MachineRemoved { mac, was: None } => format!("{mac} removed"),
        Event::MachineRemoved { mac, was: Some(w) } => format!("{mac} removed ({})", record(w)),
        Event::MachineRestored { mac, removed, was } => {
            format!(
                "{mac} restored as it was before event {removed} ({})",
                record(was)
            )
        }
        Event::MachineNamed { mac, name } => match name {
            Some(n) => format!("{mac} named {n}"),
            None => format!("{mac} unnamed"),
        },
        Event::MachineAssigned { mac, group } => format!("{mac} assigned to group {group}"),
        Event::MachineAddressSet { mac, ip } => match ip {
            Some(a) => format!("{mac} fixed address set to {a}"),
            None => format!("{mac} fixed address cleared"),
        },
        Event::GroupCreated { group, policy } => {
            format!("group {group} created with policy {policy}")
        }
        Event::GroupRemoved { group } => format!("group {group} removed"),
        Event::GroupPolicySet { group, policy } => {
            format!("group {group} policy set to {policy}")
        }
        Event::MachinePolicySet { mac, policy, once } => match policy {
            Some(p) if *once => format!("{mac} policy set to {p} (next boot only)"),
            Some(p) => format!("{mac} policy set to {p}"),
            None => format!("{mac} policy cleared (follows its group)"),
        },
        Event::RootDeviceSet { mac, device } => format!("{mac} root device set to {device}"),
        Event::RootDeviceRemoved { mac } => format!("{mac} root device mapping removed"),
        Event::InstallReported { mac, device, via } => match via {
            ReportVia::Manual => format!("{mac} install recorded by hand on {device}"),
            ReportVia::Installer => format!("{mac} installer reported root device {device}"),
        },
        Event::BootEntryUsed { mac, file, ip } => match ip {
            Some(a) => format!("{mac} fetched boot entry {file} from {a}"),
            None => format!("{mac} fetched boot entry {file}"),
        },
        Event::ProfileDefined { profile } => format!(
            "profile {} ({}) defined: kernel {}",
            profile.name,
            profile.kind.as_str(),
            profile.kernel
        ),
        Event::ProfileRemoved { name } => format!("profile {name} removed"),
        Event::InstallerPasswordSet { .. } => "installer password set".into(),
        Event::InstallerLogged { line, .. } => format!("installer log: {line}"),
        Event::ImageSaveStarted {
            mac,
            image,
            version,
        } => format!("{mac} started saving its disk as image {image}@{version}"),
        Event::ImageSaved {
            mac,
            image,
            version,
            manifest,
        } => format!(
            "{mac} saved image {image}@{version}: {} partition(s), {} bytes stored",
            manifest.parts.len(),
            manifest.stored_bytes()
        ),
        Event::ImageRestoreStarted {
            mac,
            image,
            version,
        } => format!("{mac} started restoring image {image}@{version}"),
        Event::ImageRestored {
            mac,
            image,
            version,
            verified,
        } => format!(
            "{mac} restored image {image}@{version} ({} streams verified)",
            verified.len()
        ),
        Event::ImageFailed {
            mac,
            action,
            image,
            version,
            reason,
        } => format!("{mac} failed to {action} image {image}@{version}: {reason}"),
        Event::ImageRemoved { image, version } => format!("image {image}@{version} removed"),
        Event::ScheduleDefined {
            name,
            cron,
            tz,
            expect,
            command,
            ..
        } => format!(
            "schedule {name} set: '{cron}' ({tz}) runs `nmt {}`{}",
            command.join(" "),
            expect
                .map(|s| format!(
                    ", outcome checked after {}",
                    crate::schedule::duration_words(s)
                ))
                .unwrap_or_default()
        ),
        Event::ScheduleRemoved { name } => format!("schedule {name} removed"),
        Event::BmcSet {
            target,
            bmc,
            secret,
        } => format!(
            "BMC of {target} set: {}{}",
            crate::power::describe_bmc(bmc),
            match secret {
                crate::SecretChange::Kept => "",
                crate::SecretChange::Set => " (password set)",
                crate::SecretChange::Changed => " (password changed)",
            }
        ),
        Event::BmcRemoved { target } => format!("BMC setting of {target} removed"),
        Event::PowerActed { mac, op, result } => {
            let mut s = format!("{mac} power {op}: ");
            if result.ok {
                s.push_str("ok");
                if let Some(st) = &result.state {
                    s.push_str(&format!(", {st}"));
                }
            } else {
                s.push_str("failed");
            }
            if !result.detail.is_empty() {
                s.push_str(&format!(" ({})", result.detail));
            }
            s
        }
        Event::SchedulePaused { name } => format!("schedule {name} paused"),
        Event::ScheduleResumed { name } => format!("schedule {name} resumed"),
        Event::ScheduleRan {
            name,
            run,
            due,
            late,
            targets,
            carried,
            error,
        } => {
            let mut s = format!("schedule {name} run {run} (due {due})");
            if *late {
                s.push_str(", late");
            }
            match error {
                Some(e) => s.push_str(&format!(": failed, nothing changed: {e}")),
                None => s.push_str(&format!(": {} targeted", targets.len())),
            }
            if !carried.is_empty() {
                s.push_str(&format!(
                    ", {} still had its one-shot pending (not set again)",
                    carried.len()
                ));
            }
            s
        }
        Event::ScheduleMissed {
            name,
            first,
            last,
            count,
        } => {
            if count == &1 {
                format!("schedule {name} missed its run due {first} (nmtd was down; not run)")
            } else {
                format!(
                    "schedule {name} missed {count} runs due {first} to {last} (nmtd was down; \
                     not run)"
                )
            }
        }
        Event::ScheduleChecked {
            name,
            run,
            outcomes,
        } => match outcomes.as_slice() {
            [o] => format!(
                "schedule {name} run {run} checked: {} {}",
                o.mac,
                crate::schedule::outcome_words(o)
            ),
            _ => format!(
                "schedule {name} run {run} checked: {}",
                crate::schedule::counts_words(outcomes)
            ),
        },
        Event::DhcpSeen {
            mac,
            kind,
            ip,
            hostname,
            arch,
            server,
            note,
            ..
        } => {
            let mut s = format!("{server}: DHCP {kind} {mac}");
            if let Some(a) = ip {
                s += &format!(" {a}");
            }
            if let Some(h) = hostname {
                s += &format!(" (client name {h:?})");
            }
            if let Some(a) = arch {
                s += &format!(" arch {a}");
            }
            if let Some(n) = note {
                s += &format!(": {n}");
            }
            s
        }
        Event::FileServed {
            file, ip, found, ..
        } => {
            let verb = if *found { "sent" } else { "not found:" };
            match ip {
                Some(a) => format!("{verb} {file} to {a}"),
                None => format!("{verb} {file}"),
            }
        }
    }
}
