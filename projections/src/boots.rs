//! Boots, reconstructed from the log: when a machine asked DHCP, what address it got, which
//! boot entry it fetched, what that entry meant (policy, profile or image, kernel and
//! initrd), and who set that policy and when — the forensic answer to "which image did lab07
//! boot last night?" and "who put the physics group on ltsp?".

use std::net::Ipv4Addr;

use jiff::Timestamp;
use serde::Serialize;

use crate::render::{self, BootKind, RenderConfig};
use crate::{Envelope, Event, Mac, Origin, Policy, State, describe};

/// One boot of a machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    /// Who set the policy in force.
    pub set_by: Option<String>,
    /// When.
    pub set_at: Option<Timestamp>,
    /// How (the event, in words).
    pub set_how: Option<String>,
}

/// Folds the log and records one machine's boots.
pub struct BootTracker {
    state: State,
    mac: Mac,
    last_ack: Option<(Timestamp, Option<Ipv4Addr>)>,
    setter: Option<(String, Timestamp, String)>,
    /// The boots found so far, oldest first.
    pub boots: Vec<BootRecord>,
}

impl BootTracker {
    /// Track `mac`.
    pub fn new(mac: Mac) -> BootTracker {
        BootTracker {
            state: State::new(),
            mac,
            last_ack: None,
            setter: None,
            boots: Vec::new(),
        }
    }

    /// Feed the next event of the log.
    pub fn feed(&mut self, env: &Envelope) {
        let group = self.state.machine(&self.mac).map(|m| m.group.clone());
        let sets_policy = match &env.event {
            Event::MachinePolicySet { mac, .. }
            | Event::MachineAssigned { mac, .. }
            | Event::MachineRegistered { mac, .. }
            | Event::InstallReported { mac, .. } => *mac == self.mac,
            Event::GroupPolicySet { group: g, .. } | Event::GroupRemoved { group: g } => {
                group.as_deref() == Some(g.as_str())
            }
            _ => false,
        };
        match &env.event {
            Event::DhcpSeen { mac, kind, ip, .. }
                if *mac == self.mac && matches!(kind.as_str(), "ack" | "bootreply") =>
            {
                self.last_ack = Some((env.observed_at, *ip));
            }
            Event::BootEntryUsed { mac, file, ip } if *mac == self.mac => {
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
                    let (set_by, set_at, set_how) = match &self.setter {
                        Some((a, t, h)) => (Some(a.clone()), Some(*t), Some(h.clone())),
                        None => (None, None, None),
                    };
                    self.boots.push(BootRecord {
                        at: env.observed_at,
                        seq: env.seq,
                        dhcp_at: self.last_ack.map(|(t, _)| t),
                        ip: ip.or(self.last_ack.and_then(|(_, a)| a)),
                        file: file.clone(),
                        image: entry.policy.image().map(str::to_string),
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
            _ => {}
        }
        if sets_policy {
            self.setter = Some((env.actor.clone(), env.observed_at, describe(&env.event)));
        }
        self.state.apply(env);
    }
}
