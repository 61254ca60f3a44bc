//! Power control: how each machine's power is reached (its BMC: IPMI over LAN, Redfish, or
//! Wake-on-LAN), set per machine or per group, and what each power action did.
//!
//! Secrets never come here. A BMC setting records only *that* a password is kept (in nmtd's
//! secrets file, beside the store) and whether this change set or replaced it. The log says
//! who set it and when; it cannot say what it is.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Command, Event, Mac, Machine, Refusal, State};

/// How a BMC is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "kebab-case")]
pub enum BmcProtocol {
    /// IPMI v2.0 over LAN (lanplus), through `ipmitool`.
    Ipmi {
        /// The BMC's host name or address; a group's may hold `{name}`, `{mac}`, `{ip}`.
        host: String,
        /// Its UDP port (623).
        port: u16,
    },
    /// Redfish over HTTPS.
    Redfish {
        /// The service's base URL (`https://bmc`), or a system's
        /// (`https://bmc/redfish/v1/Systems/1`); a group's may hold the same placeholders.
        url: String,
        /// How its certificate is checked.
        tls: Tls,
    },
    /// Wake-on-LAN: a magic packet to the machine's own MAC (power on only).
    Wol {
        /// The interface to broadcast on (none: the default route's).
        interface: Option<String>,
        /// A directed broadcast address instead (`10.0.9.255`), for a subnet behind a router.
        broadcast: Option<Ipv4Addr>,
    },
}

/// How a Redfish service's certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tls", rename_all = "kebab-case")]
pub enum Tls {
    /// Against the system's trusted roots, and the host name.
    Verify,
    /// Only this certificate (PEM) is trusted: the BMC's own, pinned.
    Pin {
        /// The certificate, PEM (public).
        pem: String,
    },
    /// Not checked (a lab; says so wherever it is shown).
    Insecure,
}

/// A BMC setting, for one machine or a whole group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bmc {
    /// How it is reached.
    #[serde(flatten)]
    pub protocol: BmcProtocol,
    /// The user it logs in as (none for Wake-on-LAN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// What a BMC setting did to its password (the password itself is never here).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretChange {
    /// None given: the one kept before (if any) stays.
    Kept,
    /// One was given where none was kept.
    Set,
    /// One was given and replaced the one kept.
    Changed,
}

/// Who a BMC setting is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BmcFor {
    /// One machine.
    Machine(Mac),
    /// Every member of a group without one of its own.
    Group(String),
}

impl BmcFor {
    /// The key of its password in the secrets file.
    pub fn secret_key(&self) -> String {
        match self {
            BmcFor::Machine(m) => format!("machine:{m}"),
            BmcFor::Group(g) => format!("group:{g}"),
        }
    }
}

impl fmt::Display for BmcFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BmcFor::Machine(m) => write!(f, "{m}"),
            BmcFor::Group(g) => write!(f, "@{g}"),
        }
    }
}

/// A power action.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerOp {
    /// Switch on.
    On,
    /// Switch off (hard).
    Off,
    /// Off, then on (on when it was off).
    Cycle,
    /// Hard reset.
    Reset,
    /// Read the power state.
    Status,
}

impl PowerOp {
    /// How it is written.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerOp::On => "on",
            PowerOp::Off => "off",
            PowerOp::Cycle => "cycle",
            PowerOp::Reset => "reset",
            PowerOp::Status => "status",
        }
    }

    /// Whether it (re)starts the machine: nmt sets its next boot to the network first.
    pub fn boots(self) -> bool {
        matches!(self, PowerOp::On | PowerOp::Cycle | PowerOp::Reset)
    }
}

impl std::str::FromStr for PowerOp {
    type Err = String;
    fn from_str(s: &str) -> Result<PowerOp, String> {
        Ok(match s {
            "on" => PowerOp::On,
            "off" => PowerOp::Off,
            "cycle" => PowerOp::Cycle,
            "reset" => PowerOp::Reset,
            "status" => PowerOp::Status,
            _ => {
                return Err(format!(
                    "{s:?} is not a power action (on, off, cycle, reset, status)"
                ));
            }
        })
    }
}

impl fmt::Display for PowerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a power action found or did to one machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerResult {
    /// It worked.
    pub ok: bool,
    /// The power state read or reached (`on`, `off`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// What happened, in words (a failure's reason: untrusted text from a BMC is cleaned).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The last power action on a machine, as the state keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastPower {
    /// What was asked.
    pub op: PowerOp,
    /// What came of it.
    pub result: PowerResult,
    /// When.
    pub at: Timestamp,
    /// By whom.
    pub by: String,
}

/// Every BMC setting, by [`BmcFor::secret_key`] (the last power action of each machine is
/// the machine's own: [`Machine::power`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Power {
    /// BMC settings by machine or group.
    pub bmcs: BTreeMap<String, BmcEntry>,
}

/// A BMC setting as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmcEntry {
    /// Whose it is.
    pub target: BmcFor,
    /// The setting.
    pub bmc: Bmc,
    /// A password is kept for it in the secrets file.
    pub secret: bool,
    /// When it was set, and by whom.
    pub at: Timestamp,
    /// By whom.
    pub by: String,
}

/// The BMC a machine's power goes through: its own, else its group's (its placeholders
/// filled in for the machine), with the key of the password that goes with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineBmc {
    /// The setting, for this machine.
    pub bmc: Bmc,
    /// Whose setting it is.
    pub from: BmcFor,
    /// A password is kept for it.
    pub secret: bool,
}

/// Fill a group setting's placeholders for one machine: `{name}` (its name, else its MAC
/// with dashes), `{mac}` (dashes), `{ip}` (its fixed address, else its last one).
pub fn expand(pattern: &str, m: &Machine) -> Result<String, String> {
    let mac = m.mac.to_string().replace(':', "-");
    let mut out = pattern.replace("{name}", m.name.as_deref().unwrap_or(&mac));
    out = out.replace("{mac}", &mac);
    if out.contains("{ip}") {
        match m.ip.or(m.last_ip) {
            Some(ip) => out = out.replace("{ip}", &ip.to_string()),
            None => {
                return Err(format!(
                    "{} has no address for {{ip}} in its group's BMC setting",
                    m.name.as_deref().unwrap_or(&mac)
                ));
            }
        }
    }
    Ok(out)
}

impl State {
    /// The BMC of a machine (its own, else its group's), its placeholders filled in.
    pub fn machine_bmc(&self, mac: &Mac) -> Option<Result<MachineBmc, String>> {
        let m = self.machine(mac)?;
        let own = BmcFor::Machine(*mac).secret_key();
        let group = BmcFor::Group(m.group.clone()).secret_key();
        let e = self
            .power()
            .bmcs
            .get(&own)
            .or_else(|| self.power().bmcs.get(&group))?;
        let from = &e.target;
        let mut bmc = e.bmc.clone();
        let filled = match &mut bmc.protocol {
            BmcProtocol::Ipmi { host, .. } => expand(host, m).map(|h| *host = h),
            BmcProtocol::Redfish { url, .. } => expand(url, m).map(|u| *url = u),
            BmcProtocol::Wol { .. } => Ok(()),
        };
        Some(filled.map(|()| MachineBmc {
            bmc,
            from: from.clone(),
            secret: e.secret,
        }))
    }
}

/// The power commands of [`crate::decide`].
pub(crate) fn decide(state: &State, cmd: Command) -> Result<Vec<Event>, Refusal> {
    match cmd {
        Command::SetBmc {
            target,
            bmc,
            secret,
        } => {
            match &target {
                BmcFor::Machine(mac) => {
                    if state.machine(mac).is_none() {
                        return Err(Refusal::NoSuchMachine(*mac));
                    }
                }
                BmcFor::Group(g) => {
                    if state.group(g).is_none() {
                        return Err(Refusal::NoSuchGroup {
                            group: g.clone(),
                            known: state
                                .groups()
                                .map(|g| g.name.clone())
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    }
                }
            }
            check_bmc(&bmc, &target)?;
            let kept = state
                .power()
                .bmcs
                .get(&target.secret_key())
                .is_some_and(|e| e.secret);
            let secret = match (secret, kept) {
                (false, _) => SecretChange::Kept,
                (true, false) => SecretChange::Set,
                (true, true) => SecretChange::Changed,
            };
            if matches!(
                bmc.protocol,
                BmcProtocol::Ipmi { .. } | BmcProtocol::Redfish { .. }
            ) && bmc.user.is_none()
            {
                return Err(Refusal::Invalid(
                    "an IPMI or Redfish BMC needs --user (and --password-file)".into(),
                ));
            }
            Ok(vec![Event::BmcSet {
                target,
                bmc,
                secret,
            }])
        }
        Command::RemoveBmc { target } => {
            if !state.power().bmcs.contains_key(&target.secret_key()) {
                return Err(Refusal::Invalid(format!(
                    "{target} has no BMC setting of its own"
                )));
            }
            Ok(vec![Event::BmcRemoved { target }])
        }
        Command::RecordPower { mac, op, result } => {
            if state.machine(&mac).is_none() {
                return Err(Refusal::NoSuchMachine(mac));
            }
            Ok(vec![Event::PowerActed { mac, op, result }])
        }
        _ => unreachable!("only power commands come here"),
    }
}

fn check_bmc(bmc: &Bmc, target: &BmcFor) -> Result<(), Refusal> {
    let bad = |s: &str| {
        s.is_empty() || s.len() > 255 || s.chars().any(|c| c.is_control() || c.is_whitespace())
    };
    let pattern_ok = |s: &str| {
        let stripped = s
            .replace("{name}", "")
            .replace("{mac}", "")
            .replace("{ip}", "");
        if stripped.contains('{') || stripped.contains('}') {
            return Err(Refusal::Invalid(format!(
                "{s:?}: a BMC address may hold {{name}}, {{mac}} and {{ip}}, nothing else in braces"
            )));
        }
        if matches!(target, BmcFor::Machine(_)) && stripped != s {
            return Err(Refusal::Invalid(format!(
                "{s:?}: placeholders are for a group's setting; give this machine's own address"
            )));
        }
        Ok(())
    };
    match &bmc.protocol {
        BmcProtocol::Ipmi { host, port } => {
            if bad(host) || *port == 0 {
                return Err(Refusal::Invalid(format!("{host:?} is not a BMC host")));
            }
            pattern_ok(host)?;
        }
        BmcProtocol::Redfish { url, .. } => {
            if bad(url) || !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(Refusal::Invalid(format!(
                    "{url:?} is not a Redfish URL (https://HOST or https://HOST/redfish/v1/Systems/ID)"
                )));
            }
            pattern_ok(url)?;
        }
        BmcProtocol::Wol { interface, .. } => {
            if interface.as_deref().is_some_and(|i| bad(i) || i.len() > 15) {
                return Err(Refusal::Invalid("not an interface name".into()));
            }
        }
    }
    if let Some(u) = &bmc.user
        && bad(u)
    {
        return Err(Refusal::Invalid(format!("{u:?} is not a BMC user name")));
    }
    Ok(())
}

/// Fold a BMC setting event.
pub(crate) fn fold(power: &mut Power, env: &crate::Envelope) {
    match &env.event {
        Event::BmcSet {
            target,
            bmc,
            secret,
        } => {
            let key = target.secret_key();
            let had = power.bmcs.get(&key).is_some_and(|e| e.secret);
            power.bmcs.insert(
                key,
                BmcEntry {
                    target: target.clone(),
                    bmc: bmc.clone(),
                    secret: had || *secret != SecretChange::Kept,
                    at: env.observed_at,
                    by: env.actor.clone(),
                },
            );
        }
        Event::BmcRemoved { target } => {
            power.bmcs.remove(&target.secret_key());
        }
        _ => {}
    }
}

/// A BMC setting in words (no secret: there is none here to say).
pub fn describe_bmc(b: &Bmc) -> String {
    let user = b
        .user
        .as_deref()
        .map(|u| format!(" as {u}"))
        .unwrap_or_default();
    match &b.protocol {
        BmcProtocol::Ipmi { host, port } => format!("IPMI lanplus {host}:{port}{user}"),
        BmcProtocol::Redfish { url, tls } => format!(
            "Redfish {url}{user}{}",
            match tls {
                Tls::Verify => "",
                Tls::Pin { .. } => ", its certificate pinned",
                Tls::Insecure => ", certificate NOT checked",
            }
        ),
        BmcProtocol::Wol {
            interface,
            broadcast,
        } => format!(
            "Wake-on-LAN{}{}",
            interface
                .as_deref()
                .map(|i| format!(" on {i}"))
                .unwrap_or_default(),
            broadcast.map(|b| format!(" to {b}")).unwrap_or_default()
        ),
    }
}
