//! Boots, reconstructed from the log: when a machine asked DHCP, what address it got, which
//! boot entry it fetched, what that entry meant (policy, profile or image, kernel and
//! initrd), and who set that policy and when — the forensic answer to "which image did lab07
//! boot last night?" and "who put the physics group on ltsp?".

use std::net::Ipv4Addr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::render::{self, BootKind, RenderConfig};
use crate::state::{Setting, SettingChange};
use crate::{Envelope, Event, Mac, Origin, Policy, State, describe};

/// One boot of a machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    /// When it fetched its boot entry.
    pub at: Timestamp,
    /// The sequence number of that fetch.
    pub seq: u64,
    /// When its DHCP server last acknowledged it before that.
    pub dhcp_at: Option<Timestamp>,
    /// The address it was given.
    pub ip: Option<Ipv4Addr>,
    /// The entry file it fetched.
    pub file: String,
    /// The policy that entry carried.
    pub policy: Policy,
    /// Where that policy came from.
    pub origin: Origin,
    /// What it booted: `kernel K initrd I…` or `local disk …`.
    pub booted: String,
    /// The profile, for kernel boots.
    pub profile: Option<String>,
    /// The image, for imaging policies.
    pub image: Option<String>,
    /// What the imager did in this boot: `saved lab@2`, `restored lab@1 (verified)`,
    /// `failed to restore lab@1: …`, or `restoring lab@1` while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imaged: Option<String>,
    /// Who set the policy in force.
    pub set_by: Option<String>,
    /// When.
    pub set_at: Option<Timestamp>,
    /// How (the event, in words).
    pub set_how: Option<String>,
}

/// A one-shot policy used up: the event that spent it (a boot, or an install report), and
/// what the machine boots next since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneShotSpent {
    /// The event that used it.
    pub seq: u64,
    /// The one-shot policy.
    pub used: Policy,
    /// What the machine boots next now.
    pub now: Policy,
    /// Where that comes from: the machine's own policy, or its group's.
    pub origin: Origin,
    /// Its group then.
    pub group: String,
}

impl std::fmt::Display for OneShotSpent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the one-shot policy {} is used; next boots: {} ({})",
            self.used,
            self.now,
            match self.origin {
                Origin::Group => format!("group {}'s policy", self.group),
                Origin::Machine | Origin::MachineOnce => "its own policy".into(),
            }
        )
    }
}

/// How far apart two fetches of the same entry, with no DHCP exchange between, are still
/// one boot.
const SAME_BOOT_SECS: f64 = 30.0;

/// Who set a policy, when, and how.
struct Setter {
    actor: String,
    at: Timestamp,
    how: String,
    seq: u64,
}

/// Folds the log (or one machine's history and the changes to groups and profiles, see
/// [`BootTracker::from_history`]) and records one machine's boots.
pub struct BootTracker {
    state: State,
    mac: Mac,
    last_ack: Option<(Timestamp, Option<Ipv4Addr>)>,
    /// The entry fetched since the last DHCP exchange, and when.
    fetched: Option<(String, Timestamp)>,
    /// The last event that set this machine's own policy or its group membership.
    setter: Option<Setter>,
    /// While a one-shot policy is pending: who set what it reverts to, which is credited
    /// again once the one-shot is spent.
    before_once: Option<Option<Setter>>,
    /// The last event that set each group's policy, whether or not the machine was a
    /// member then: a machine discovered later follows a policy set before it existed.
    group_setters: std::collections::HashMap<String, Setter>,
    /// The boots found so far, oldest first.
    pub boots: Vec<BootRecord>,
    /// The one-shot policies used up so far, oldest first.
    pub spent: Vec<OneShotSpent>,
    /// Whether to work out each boot's entry (only the spent one-shots are wanted otherwise).
    records_boots: bool,
}

impl BootTracker {
    /// Track `mac`.
    pub fn new(mac: Mac) -> BootTracker {
        BootTracker {
            state: State::new(),
            mac,
            last_ack: None,
            fetched: None,
            setter: None,
            before_once: None,
            group_setters: std::collections::HashMap::new(),
            boots: Vec::new(),
            spent: Vec::new(),
            records_boots: true,
        }
    }

    /// The boots of `mac` from its own history (the events indexed under it, oldest first)
    /// and what `state` (the current one) recorded about groups and profiles: the same boots
    /// as feeding every event of the log, without reading the log.
    pub fn from_history(state: &State, mac: Mac, history: &[Envelope]) -> Vec<BootRecord> {
        let mut t = BootTracker::new(mac);
        t.feed_history(state, history);
        t.boots
    }

    /// The one-shot policies `mac`'s history used up (as [`BootTracker::from_history`] reads
    /// it, without working out each boot's entry).
    pub fn spent_one_shots(state: &State, mac: Mac, history: &[Envelope]) -> Vec<OneShotSpent> {
        let mut t = BootTracker::new(mac);
        t.records_boots = false;
        t.feed_history(state, history);
        t.spent
    }

    fn feed_history(&mut self, state: &State, history: &[Envelope]) {
        let t = self;
        let Some(last) = history.last().map(|e| e.seq) else {
            return;
        };
        let mut settings = state
            .settings()
            .iter()
            .take_while(|s| s.seq <= last)
            .peekable();
        for env in history {
            while let Some(s) = settings.next_if(|s| s.seq < env.seq) {
                t.feed_setting(s);
            }
            // A change to a group is in its members' histories too: once is enough.
            match settings.next_if(|s| s.seq == env.seq) {
                Some(s) => t.feed_setting(s),
                None => t.feed(env),
            }
        }
    }

    fn feed_setting(&mut self, s: &Setting) {
        if let Some(event) = s.change.event()
            && let SettingChange::GroupPolicySet { group, .. }
            | SettingChange::GroupRemoved { group } = &s.change
        {
            self.group_setters.insert(
                group.clone(),
                Setter {
                    actor: s.actor.clone(),
                    at: s.at,
                    how: describe(&event),
                    seq: s.seq,
                },
            );
        }
        self.state.apply_setting(s);
    }

    /// Feed the next event of the log.
    pub fn feed(&mut self, env: &Envelope) {
        let sets_own = match &env.event {
            Event::MachinePolicySet { mac, .. }
            | Event::MachineAssigned { mac, .. }
            | Event::MachineRegistered { mac, .. }
            | Event::MachineRestored { mac, .. }
            | Event::InstallReported { mac, .. } => *mac == self.mac,
            _ => false,
        };
        let sets_group = match &env.event {
            Event::GroupPolicySet { group, .. } | Event::GroupRemoved { group } => {
                Some(group.clone())
            }
            _ => None,
        };
        match &env.event {
            Event::DhcpSeen { mac, kind, ip, .. } if *mac == self.mac => {
                self.fetched = None;
                if matches!(kind.as_str(), "ack" | "bootreply") {
                    self.last_ack = Some((env.observed_at, *ip));
                }
            }
            // The same file again, soon and with no DHCP exchange between, is the same boot:
            // GRUB fetches its configuration twice.
            Event::BootEntryUsed { mac, file, .. }
                if *mac == self.mac
                    && self.fetched.as_ref().is_some_and(|(f, at)| {
                        f == file
                            && env.observed_at.duration_since(*at).as_secs_f64().abs()
                                <= SAME_BOOT_SECS
                    }) => {}
            Event::BootEntryUsed { mac, file, .. } if *mac == self.mac && !self.records_boots => {
                self.fetched = Some((file.clone(), env.observed_at));
            }
            Event::BootEntryUsed { mac, file, ip } if *mac == self.mac => {
                self.fetched = Some((file.clone(), env.observed_at));
                if let Some(entry) =
                    render::boot_entry(&self.state, &self.mac, &RenderConfig::default())
                {
                    let (booted, profile) = match &entry.kind {
                        BootKind::Local { rootdev, chain } => (
                            format!(
                                "local disk{}",
                                match (chain, rootdev) {
                                    (Some(c), _) => format!(" {c}"),
                                    (None, Some(d)) => format!(" ({d})"),
                                    (None, None) => String::new(),
                                }
                            ),
                            None,
                        ),
                        BootKind::Kernel {
                            profile,
                            kernel,
                            initrd,
                            ..
                        } => (
                            format!("kernel {kernel} initrd {}", initrd.join(",")),
                            Some(profile.clone()),
                        ),
                        BootKind::MissingProfile { profile } => {
                            (format!("local disk (profile {profile} missing)"), None)
                        }
                    };
                    // A machine's own policy was set by its own events; a group's policy by
                    // the group's, or by whatever last moved the machine into that group.
                    let own = self.setter.as_ref();
                    let setter = match entry.origin {
                        Origin::Machine | Origin::MachineOnce => own,
                        Origin::Group => {
                            let group = self
                                .state
                                .machine(&self.mac)
                                .and_then(|m| self.group_setters.get(&m.group));
                            match (own, group) {
                                (Some(a), Some(b)) => Some(if a.seq > b.seq { a } else { b }),
                                (a, b) => a.or(b),
                            }
                        }
                    };
                    let (set_by, set_at, set_how) = match setter {
                        Some(s) => (Some(s.actor.clone()), Some(s.at), Some(s.how.clone())),
                        None => (None, None, None),
                    };
                    self.boots.push(BootRecord {
                        at: env.observed_at,
                        seq: env.seq,
                        dhcp_at: self.last_ack.map(|(t, _)| t),
                        ip: ip.or(self.last_ack.and_then(|(_, a)| a)),
                        file: file.clone(),
                        image: entry.policy.image().map(str::to_string),
                        imaged: None,
                        policy: entry.policy,
                        origin: entry.origin,
                        booted,
                        profile,
                        set_by,
                        set_at,
                        set_how,
                    });
                }
            }
            // What the imager of the last boot did, with the image's version.
            Event::ImageSaveStarted {
                mac,
                image,
                version,
            }
            | Event::ImageRestoreStarted {
                mac,
                image,
                version,
            }
            | Event::ImageSaved {
                mac,
                image,
                version,
                ..
            }
            | Event::ImageRestored {
                mac,
                image,
                version,
                ..
            }
            | Event::ImageFailed {
                mac,
                image,
                version,
                ..
            } if *mac == self.mac => {
                let what = match &env.event {
                    Event::ImageSaveStarted { .. } => format!("saving {image}@{version}"),
                    Event::ImageRestoreStarted { .. } => format!("restoring {image}@{version}"),
                    Event::ImageSaved { .. } => format!("saved {image}@{version}"),
                    Event::ImageRestored { .. } => {
                        format!("restored {image}@{version} (verified)")
                    }
                    Event::ImageFailed { action, reason, .. } => {
                        format!("failed to {action} {image}@{version}: {reason}")
                    }
                    _ => unreachable!("matched above"),
                };
                if let Some(b) = self.boots.last_mut()
                    && b.seq < env.seq
                {
                    // A failure found at the next boot belongs to the boot before it.
                    if b.imaged.is_some() || !matches!(env.event, Event::ImageFailed { .. }) {
                        b.imaged = Some(what);
                    }
                }
            }
            _ => {}
        }
        let setter = || Setter {
            actor: env.actor.clone(),
            at: env.observed_at,
            how: describe(&env.event),
            seq: env.seq,
        };
        let once_pending = |st: &State, mac: &Mac| {
            st.machine(mac)
                .and_then(|m| m.policy.as_ref())
                .is_some_and(|p| p.once)
        };
        let was_once = once_pending(&self.state, &self.mac);
        let used = self
            .state
            .machine(&self.mac)
            .and_then(|m| m.policy.as_ref())
            .map(|o| o.policy.clone());
        if sets_own {
            let previous = self.setter.replace(setter());
            if let Event::MachinePolicySet { once: true, .. } = &env.event
                && self.before_once.is_none()
            {
                self.before_once = Some(previous);
            } else if !matches!(&env.event, Event::MachinePolicySet { once: true, .. }) {
                self.before_once = None;
            }
        }
        if let Some(group) = sets_group {
            self.group_setters.insert(group, setter());
        }
        self.state.apply(env);
        // A one-shot spent by a boot: its setter no longer decides the next boots.
        let spent = was_once
            && !matches!(
                &env.event,
                Event::MachinePolicySet { .. } | Event::MachineRemoved { .. }
            )
            && !once_pending(&self.state, &self.mac);
        if spent {
            if let (Some(used), Some(m)) = (used, self.state.machine(&self.mac)) {
                let (now, origin) = self.state.effective_policy(m);
                self.spent.push(OneShotSpent {
                    seq: env.seq,
                    used,
                    now,
                    origin,
                    group: m.group.clone(),
                });
            }
            if !sets_own && let Some(previous) = self.before_once.take() {
                self.setter = previous;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(seq: u64, actor: &str, event: Event) -> Envelope {
        Envelope {
            seq,
            v: 1,
            recorded_at: Timestamp::UNIX_EPOCH,
            observed_at: Timestamp::from_second(seq as i64).unwrap(),
            actor: actor.into(),
            source: None,
            event,
        }
    }

    fn ack(mac: Mac) -> Event {
        Event::DhcpSeen {
            mac,
            kind: "ack".into(),
            ip: Some(Ipv4Addr::new(10, 0, 0, 5)),
            hostname: None,
            arch: None,
            vendor_class: None,
            server: "dnsmasq".into(),
            via: None,
            note: None,
        }
    }

    fn fetch(mac: Mac) -> Event {
        Event::BootEntryUsed {
            mac,
            file: "pxelinux.cfg/01-52-54-00-00-00-01".into(),
            ip: None,
        }
    }

    #[test]
    fn item_12_the_boot_after_a_one_shot_is_credited_to_who_set_what_it_reverted_to() {
        let mac: Mac = "52:54:00:00:00:01".parse().unwrap();
        let mut t = BootTracker::new(mac);
        t.feed(&env(
            1,
            "kathrin",
            Event::GroupPolicySet {
                group: crate::UNKNOWN.into(),
                policy: "localboot".parse().unwrap(),
            },
        ));
        t.feed(&env(2, "dnsmasq@lab", ack(mac)));
        t.feed(&env(
            3,
            "rich",
            Event::MachinePolicySet {
                mac,
                policy: Some("restore-image:lab".parse().unwrap()),
                once: true,
            },
        ));
        t.feed(&env(4, "dnsmasq@lab", ack(mac)));
        t.feed(&env(5, "dnsmasq@lab", fetch(mac)));
        t.feed(&env(6, "dnsmasq@lab", ack(mac)));
        t.feed(&env(7, "dnsmasq@lab", fetch(mac)));
        let by: Vec<(String, Option<&str>)> = t
            .boots
            .iter()
            .map(|b| (b.policy.to_string(), b.set_by.as_deref()))
            .collect();
        assert_eq!(
            by,
            [
                ("restore-image:lab".to_string(), Some("rich")),
                ("localboot".to_string(), Some("kathrin")),
            ]
        );
    }

    #[test]
    fn a_machine_discovered_later_names_who_set_its_groups_policy() {
        let mac: Mac = "52:54:00:00:00:01".parse().unwrap();
        let other: Mac = "52:54:00:00:00:02".parse().unwrap();
        let mut t = BootTracker::new(mac);
        t.feed(&env(
            1,
            "andreas",
            Event::GroupPolicySet {
                group: crate::UNKNOWN.into(),
                policy: "install".parse().unwrap(),
            },
        ));
        // Another machine's events say nothing about this one.
        t.feed(&env(2, "dnsmasq@lab", ack(other)));
        t.feed(&env(3, "dnsmasq@lab", ack(mac)));
        t.feed(&env(4, "dnsmasq@lab", fetch(mac)));
        let b = &t.boots[0];
        assert_eq!(b.policy.to_string(), "install:default");
        assert_eq!(b.origin, Origin::Group);
        assert_eq!(b.set_by.as_deref(), Some("andreas"));
        assert_eq!(b.set_at, Some(Timestamp::from_second(1).unwrap()));
        assert!(b.set_how.as_deref().unwrap().contains("unknown"), "{b:?}");

        // The install report moves it to localboot: that report is what set its policy, not
        // the localboot group's creation long before.
        t.feed(&env(
            5,
            "installer@52:54:00:00:00:01",
            Event::InstallReported {
                mac,
                device: "/dev/sda1".into(),
                via: crate::ReportVia::Installer,
            },
        ));
        t.feed(&env(6, "dnsmasq@lab", ack(mac)));
        t.feed(&env(7, "dnsmasq@lab", fetch(mac)));
        let b = &t.boots[1];
        assert_eq!(b.policy.to_string(), "localboot");
        assert_eq!(b.set_by.as_deref(), Some("installer@52:54:00:00:00:01"));

        // Another group's policy changing later is no cause of this machine's boots.
        t.feed(&env(
            8,
            "reinhard",
            Event::GroupPolicySet {
                group: crate::UNKNOWN.into(),
                policy: "ltsp".parse().unwrap(),
            },
        ));
        t.feed(&env(9, "dnsmasq@lab", ack(mac)));
        t.feed(&env(10, "dnsmasq@lab", fetch(mac)));
        // GRUB fetches its file twice in one boot: one boot.
        t.feed(&env(11, "dnsmasq@lab", fetch(mac)));
        assert_eq!(t.boots.len(), 3);
        let b = &t.boots[2];
        assert_eq!(b.policy.to_string(), "localboot");
        assert_eq!(b.set_by.as_deref(), Some("installer@52:54:00:00:00:01"));
    }

    /// The boots from a machine's history equal those from the whole log, whatever happened
    /// to groups and profiles in between (indexed as the engine indexes events).
    #[test]
    fn boots_from_a_machines_history_equal_boots_from_the_whole_log() {
        use crate::{AnswerKind, Profile, ProfileKind};
        let a: Mac = "52:54:00:00:00:01".parse().unwrap();
        let b: Mac = "52:54:00:00:00:02".parse().unwrap();
        let c: Mac = "52:54:00:00:00:03".parse().unwrap();
        let profile = |kernel: &str| Event::ProfileDefined {
            profile: Profile {
                name: "deb".into(),
                kind: ProfileKind::Install,
                kernel: kernel.into(),
                initrd: vec!["initrd.gz".into()],
                args: String::new(),
                answer: Some(AnswerKind::Preseed),
                network_console: false,
                preseed: None,
            },
        };
        let group_policy = |group: &str, policy: &str| Event::GroupPolicySet {
            group: group.into(),
            policy: policy.parse().unwrap(),
        };
        let events = vec![
            ("nmt", profile("k1")),
            (
                "root",
                Event::GroupCreated {
                    group: "lab".into(),
                    policy: "install:deb".parse().unwrap(),
                },
            ),
            ("d", ack(a)),
            ("d", fetch(a)),
            ("root", group_policy(crate::UNKNOWN, "install:deb")),
            ("d", ack(a)),
            ("d", fetch(a)),
            ("root", profile("k2")),
            ("d", ack(b)),
            (
                "root",
                Event::MachineAssigned {
                    mac: b,
                    group: "lab".into(),
                },
            ),
            ("d", ack(b)),
            ("d", fetch(b)),
            ("root", group_policy("lab", "ltsp")),
            // A group made by an assignment alone, then given a policy.
            (
                "root",
                Event::MachineAssigned {
                    mac: c,
                    group: "implied".into(),
                },
            ),
            ("root", group_policy("implied", "install:deb")),
            (
                "root",
                Event::MachineAssigned {
                    mac: a,
                    group: "implied".into(),
                },
            ),
            ("d", ack(a)),
            ("d", fetch(a)),
            (
                "root",
                Event::MachinePolicySet {
                    mac: b,
                    policy: Some("restore-image:x".parse().unwrap()),
                    once: true,
                },
            ),
            ("d", ack(b)),
            ("d", fetch(b)),
            (
                "root",
                Event::GroupRemoved {
                    group: "lab".into(),
                },
            ),
            ("root", Event::ProfileRemoved { name: "deb".into() }),
            ("d", ack(b)),
            ("d", fetch(b)),
            ("d", ack(a)),
            ("d", fetch(a)),
        ];
        let mut state = State::new();
        let mut log = Vec::new();
        let mut index: std::collections::HashMap<Mac, Vec<Envelope>> = Default::default();
        for (i, (actor, event)) in events.into_iter().enumerate() {
            let e = env(i as u64 + 1, actor, event);
            for m in state.history_macs(&e.event) {
                index.entry(m).or_default().push(e.clone());
            }
            state.apply(&e);
            log.push(e);
        }
        for mac in [a, b, c] {
            let mut t = BootTracker::new(mac);
            for e in &log {
                t.feed(e);
            }
            let from_history = BootTracker::from_history(&state, mac, &index[&mac]);
            assert_eq!(from_history, t.boots, "{mac}");
        }
        let boots = |m: Mac| BootTracker::from_history(&state, m, &index[&m]);
        let a_boots: Vec<String> = boots(a).iter().map(|b| b.booted.clone()).collect();
        assert_eq!(
            a_boots,
            [
                "local disk",
                "kernel k1 initrd initrd.gz",
                "kernel k2 initrd initrd.gz",
                "local disk (profile deb missing)",
            ]
        );
        let b_boots = boots(b);
        assert_eq!(b_boots.len(), 3);
        assert_eq!(b_boots[0].set_by.as_deref(), Some("root"));
        assert_eq!(b_boots[2].policy.to_string(), "install:deb");
    }
}
