//! Deciding: admin commands checked against the current state and turned into events.
//!
//! `decide` holds every business rule that can refuse a command; a refused command yields no
//! event at all. It never mutates the state: the caller appends the events, then folds them
//! with `State::apply`. Target resolution (noderanges) happens before, in the caller, so
//! commands here carry MACs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use crate::names::{self, NameError};
use crate::{
    Event, LOCALBOOT, Mac, MachineRecord, Policy, Profile, ProfileError, ProfileKind, ReportVia,
    State, UNKNOWN,
};

/// An admin command, with its targets already resolved to MACs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Command {
    /// Start a new store: record its creation and the default profiles (the site key is
    /// kept out of the log).
    Init,
    /// `nmt machine add`.
    AddMachine {
        /// The MAC.
        mac: Mac,
        /// A name.
        name: Option<String>,
        /// A group (default `unknown`).
        group: Option<String>,
        /// A fixed IPv4 address.
        ip: Option<Ipv4Addr>,
    },
    /// `nmt machine import`: all rows or none.
    Import {
        /// The rows of the node table.
        rows: Vec<ImportRow>,
    },
    /// `nmt machine rm`.
    RemoveMachines {
        /// The machines.
        macs: Vec<Mac>,
    },
    /// `nmt machine restore`: bring a removed machine back as it was just before its last
    /// removal (the caller finds that removal in the log).
    RestoreMachine {
        /// The machine.
        mac: Mac,
        /// Its last removal: the event's sequence number and what it kept (`None`: the
        /// machine was never removed).
        removal: Option<(u64, MachineRecord)>,
        /// Put it in this group instead of its old one.
        group: Option<String>,
    },
    /// `nmt name MACHINE NAME`.
    Name {
        /// The machine.
        mac: Mac,
        /// The new name.
        name: String,
    },
    /// `nmt name RANGE --pattern`.
    NamePattern {
        /// The machines (named in order of first appearance, whatever order these are in).
        macs: Vec<Mac>,
        /// The pattern.
        pattern: NamePattern,
    },
    /// `nmt group add`.
    AddGroup {
        /// Its name.
        group: String,
        /// Its policy (default `localboot`).
        policy: Option<Policy>,
    },
    /// `nmt group rm`.
    RemoveGroup {
        /// Its name.
        group: String,
        /// Move remaining members to `unknown` instead of refusing.
        force: bool,
        /// Move remaining members to this group instead (implies `force`).
        to: Option<String>,
    },
    /// `nmt assign`.
    Assign {
        /// The machines.
        macs: Vec<Mac>,
        /// The group.
        group: String,
        /// Their fixed address as well: `Some(Some(ip))` gives the one machine `ip`,
        /// `Some(None)` takes their addresses away, `None` leaves them.
        address: Option<Option<Ipv4Addr>>,
    },
    /// `nmt policy RANGE POLICY` on machines (`None` clears their override).
    SetPolicy {
        /// The machines.
        macs: Vec<Mac>,
        /// The override, or `None` to follow the group again.
        policy: Option<Policy>,
        /// Next boot only.
        once: bool,
    },
    /// `nmt policy @group POLICY`.
    SetGroupPolicy {
        /// The group.
        group: String,
        /// The policy.
        policy: Policy,
        /// Next boot only: becomes a one-shot override on every current member.
        once: bool,
    },
    /// `nmt rootdev set`.
    SetRootDevice {
        /// The machines.
        macs: Vec<Mac>,
        /// The device.
        device: String,
    },
    /// `nmt rootdev rm`.
    RemoveRootDevice {
        /// The machines.
        macs: Vec<Mac>,
    },
    /// `nmt installed`, or the installer's report.
    ReportInstall {
        /// The machine.
        mac: Mac,
        /// Its installed root device.
        device: String,
        /// How it came.
        via: ReportVia,
    },
    /// `nmt profile add`.
    DefineProfile {
        /// The profile.
        profile: Profile,
        /// Allow replacing an existing profile of that name.
        replace: bool,
    },
    /// `nmt profile rm`.
    RemoveProfile {
        /// Its name.
        name: String,
    },
    /// Set the installer password (its crypt(3) hash; the plaintext never reaches the log).
    SetInstallerPassword {
        /// SHA-512 crypt, `$6$…`.
        crypted: String,
    },
    /// A machine's imager starts saving its disk (the image comes from its boot entry).
    StartImageSave {
        /// The machine.
        mac: Mac,
    },
    /// A machine's imager sent every stream of the version it saves.
    FinishImageSave {
        /// The machine.
        mac: Mac,
        /// The version it was given.
        version: u32,
        /// What the streams hold, with the digests nmtd computed as they arrived.
        manifest: crate::ImageManifest,
    },
    /// A machine's imager starts restoring (the image comes from its boot entry).
    StartImageRestore {
        /// The machine.
        mac: Mac,
    },
    /// A machine's imager wrote every stream, with the digests it computed as it read them.
    FinishImageRestore {
        /// The machine.
        mac: Mac,
        /// The version it restored.
        version: u32,
        /// Stream name (`table`, `head`, `p1`, …) → SHA-256, lower-case hex.
        digests: std::collections::BTreeMap<String, String>,
    },
    /// A save or restore in progress failed.
    FailImage {
        /// The machine.
        mac: Mac,
        /// The version of its job.
        version: u32,
        /// Why (untrusted text, kept as data).
        reason: String,
    },
    /// `nmt image rm NAME[@VERSION]`.
    RemoveImage {
        /// The image, and a version (all of them without one).
        image: crate::ImageRef,
    },
    /// `nmt schedule add`.
    DefineSchedule {
        /// Its name.
        name: String,
        /// Its cron pattern.
        cron: String,
        /// Its IANA time zone (checked against the zone database by the caller).
        tz: String,
        /// Check the outcome this many seconds after each run.
        expect: Option<u64>,
        /// Run at most this many seconds late.
        grace: u64,
        /// The command as written.
        command: Vec<String>,
        /// The action, encoded by the application layer.
        action: String,
        /// Redefine an existing schedule of that name.
        replace: bool,
    },
    /// `nmt bmc set`: a machine's or a group's BMC (`secret`: a password was given, which
    /// the caller keeps in the secrets file; it never comes here).
    SetBmc {
        /// Whose.
        target: crate::BmcFor,
        /// The setting.
        bmc: crate::Bmc,
        /// A password was given with it.
        secret: bool,
    },
    /// `nmt bmc rm`.
    RemoveBmc {
        /// Whose.
        target: crate::BmcFor,
    },
    /// A power action was carried out on a machine.
    RecordPower {
        /// The machine.
        mac: Mac,
        /// What was asked.
        op: crate::PowerOp,
        /// What came of it.
        result: crate::PowerResult,
    },
    /// `nmt schedule rm`.
    RemoveSchedule {
        /// Its name.
        name: String,
    },
    /// `nmt schedule pause`.
    PauseSchedule {
        /// Its name.
        name: String,
    },
    /// `nmt schedule resume`.
    ResumeSchedule {
        /// Its name.
        name: String,
    },
    /// nmtd ran a schedule (its action's events are decided with it, in the same batch).
    RecordScheduleRun {
        /// The schedule.
        name: String,
        /// The time it was due.
        due: jiff::Timestamp,
        /// Run late.
        late: bool,
        /// The machines its action targeted.
        targets: Vec<Mac>,
        /// Machines whose one-shot from an earlier run is still pending.
        carried: Vec<Mac>,
        /// Why the action failed.
        error: Option<String>,
    },
    /// nmtd found times of a schedule that passed without a run, beyond its grace.
    RecordScheduleMissed {
        /// The schedule.
        name: String,
        /// The first time missed.
        first: jiff::Timestamp,
        /// The last.
        last: jiff::Timestamp,
        /// How many.
        count: u64,
    },
    /// nmtd checked a run's outcome.
    RecordScheduleCheck {
        /// The schedule.
        name: String,
        /// The run.
        run: u64,
        /// Each machine's outcome.
        outcomes: Vec<crate::MachineOutcome>,
    },
}

/// One row of a node table (`mac,name,ip,group`), as text, with its line number.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportRow {
    /// 1-based line number in the file, for messages.
    pub line: usize,
    /// The MAC, as written.
    pub mac: String,
    /// The name, or empty.
    pub name: String,
    /// The IPv4 address, or empty.
    pub ip: String,
    /// The group, or empty.
    pub group: String,
}

/// A naming pattern such as `node{001}`: prefix, a counter with a start and a zero-pad
/// width, and a suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePattern {
    prefix: String,
    start: u64,
    width: usize,
    suffix: String,
}

impl NamePattern {
    /// Parse `prefix{NNN}suffix`: the counter starts at NNN and is zero-padded to its width
    /// when NNN is written with a leading zero.
    pub fn parse(s: &str) -> Result<NamePattern, Refusal> {
        let bad = |why: &str| {
            Refusal::Invalid(format!(
                "{s:?} is not a naming pattern: {why}; write e.g. 'node{{001}}' for node001, \
                 node002, … or 'lab{{1}}' for lab1, lab2, …"
            ))
        };
        let open = s.find('{').ok_or_else(|| bad("it has no {counter}"))?;
        let close = s[open..]
            .find('}')
            .map(|c| c + open)
            .ok_or_else(|| bad("the '{' is not closed"))?;
        let digits = &s[open + 1..close];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 9 {
            return Err(bad("the counter must be 1-9 digits"));
        }
        let suffix = &s[close + 1..];
        if suffix.contains(['{', '}']) {
            return Err(bad("only one {counter} is allowed"));
        }
        let width = if digits.len() > 1 && digits.starts_with('0') {
            digits.len()
        } else {
            0
        };
        Ok(NamePattern {
            prefix: s[..open].to_string(),
            start: digits.parse().expect("digits"),
            width,
            suffix: suffix.to_string(),
        })
    }

    /// The `i`-th name (from 0).
    pub fn nth(&self, i: u64) -> String {
        format!(
            "{}{:0width$}{}",
            self.prefix,
            self.start + i,
            self.suffix,
            width = self.width
        )
    }
}

/// Why a command was refused. Every message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A malformed value.
    #[error("{0}")]
    Invalid(String),
    /// A bad name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A bad profile.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The group does not exist.
    #[error("no group named {group:?}; groups are: {known} ({})", create_group_hint(.group))]
    NoSuchGroup {
        /// The missing group.
        group: String,
        /// The existing groups, comma-separated.
        known: String,
    },
    /// The machine does not exist.
    #[error(
        "no machine {0} is known; add it with `nmt machine add {0}` (list them with `nmt machines`)"
    )]
    NoSuchMachine(Mac),
    /// The machine is already registered.
    #[error(
        "{mac} is already registered{as_name}; change it with `nmt name`, `nmt assign` or `nmt machine rm` first"
    )]
    AlreadyRegistered {
        /// The machine.
        mac: Mac,
        /// " as NAME", or empty.
        as_name: String,
    },
    /// The name belongs to another machine.
    #[error(
        "the name {name:?} already belongs to {owner}; pick another, or rename that machine first"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// Its owner.
        owner: Mac,
    },
    /// The address belongs to another machine.
    #[error(
        "the address {ip} is already fixed for {owner}; pick another, or change that machine first"
    )]
    IpTaken {
        /// The address.
        ip: Ipv4Addr,
        /// Its owner.
        owner: Mac,
    },
    /// The group exists already.
    #[error("a group named {0:?} already exists; set its policy with `nmt policy @{0} POLICY`")]
    GroupExists(String),
    /// A built-in group cannot be changed that way.
    #[error("{0}")]
    Builtin(String),
    /// A machine nmt does not know how to boot locally cannot join `localboot`.
    #[error(
        "{machine} has no install report and no root device, so it cannot join 'localboot'; \
         record one with `nmt installed {mac} DEVICE` or `nmt rootdev set {mac} DEVICE`, \
         or assign it to a named group with policy localboot"
    )]
    NotInstalled {
        /// The machine, by name or MAC.
        machine: String,
        /// Its MAC.
        mac: Mac,
    },
    /// A machine being added cannot join `localboot`.
    #[error(
        "a new machine cannot join 'localboot' before it is installed; add it to a named group \
         with policy localboot, or record its install with `nmt installed`"
    )]
    NewIntoLocalboot,
    /// A group's members cannot move into the group being removed.
    #[error(
        "the members of {0:?} cannot move into the group being removed; give another group \
         with --to"
    )]
    MoveIntoItself(String),
    /// The schedule does not exist.
    #[error("no schedule named {name:?}; schedules are: {known} (`nmt schedule list`)")]
    NoSuchSchedule {
        /// The missing schedule.
        name: String,
        /// The existing ones, comma-separated.
        known: String,
    },
    /// A schedule of that name exists.
    #[error(
        "a schedule named {0:?} exists; `nmt schedule add {0} --replace …` redefines it, or \
         choose another name"
    )]
    ScheduleExists(String),
    /// A one-boot policy needs a policy.
    #[error("--once needs a policy to use for one boot, not 'group'")]
    OnceWithoutPolicy,
    /// A one-boot policy for a group's members, and the group has none.
    #[error(
        "group {0:?} has no members; --once sets each member's next boot, so there is nothing to do"
    )]
    OnceNoMembers(String),
    /// Removing the group would send its members where they erase their disks.
    #[error(
        "moving the {count} member(s) of {group:?} to 'unknown' would make them {policy} at \
         their next boot ('unknown' has that policy); say where they go instead: `nmt group rm \
         {group} --to localboot` (boot their disks) or --to ANOTHER-GROUP"
    )]
    WouldErase {
        /// The group.
        group: String,
        /// How many members.
        count: usize,
        /// The disk-erasing policy they would get.
        policy: Policy,
    },
    /// The group still has members.
    #[error(
        "group {group:?} still has {count} member(s); say where they go: `nmt group rm {group} \
         --to OTHER` (e.g. --to localboot to boot their disks), or --force to move them to \
         'unknown'"
    )]
    GroupNotEmpty {
        /// The group.
        group: String,
        /// How many members.
        count: usize,
    },
    /// The policy names a profile that does not exist (or has another kind).
    #[error(
        "{policy} needs a {kind} profile named {name:?}, and there is none; {known} (define one with `nmt profile add {name} --kind {kind} …`)"
    )]
    NoSuchProfile {
        /// The policy.
        policy: String,
        /// The profile kind needed.
        kind: &'static str,
        /// The profile name.
        name: String,
        /// What exists.
        known: String,
    },
    /// The profile exists already.
    #[error("a profile named {0:?} already exists; pass --replace to redefine it")]
    ProfileExists(String),
    /// The profile is in use.
    #[error("profile {name:?} is in use by {users}; change their policies first")]
    ProfileInUse {
        /// The profile.
        name: String,
        /// Who uses it.
        users: String,
    },
    /// A removed machine cannot be restored (it is registered, was never removed, or what
    /// it had is taken).
    #[error("{0}")]
    NotRemoved(String),
    /// A node table has bad rows; nothing was imported.
    #[error(
        "nothing was imported; fix these rows and run the import again:\n{}",
        import_problems(.0)
    )]
    Import(Vec<ImportProblem>),
}

/// A row of a node table that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    /// Its line in the table.
    pub line: usize,
    /// What is wrong with it.
    pub what: RowProblem,
}

/// What is wrong with a row of a node table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowProblem {
    /// It names a group that does not exist.
    NoSuchGroup(String),
    /// Anything else, in words that hold for every front end.
    Said(String),
}

impl std::fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.what {
            RowProblem::NoSuchGroup(g) => write!(
                f,
                "  line {}: no group named {g:?} ({})",
                self.line,
                create_group_hint(g)
            ),
            RowProblem::Said(s) => write!(f, "  line {}: {s}", self.line),
        }
    }
}

fn import_problems(rows: &[ImportProblem]) -> String {
    problem_list(rows, ToString::to_string)
}

/// How many of a table's bad rows a refusal lists.
pub const LISTED_PROBLEMS: usize = 20;

/// A node table's bad rows, one a line, each said by `say`: the first
/// [`LISTED_PROBLEMS`], then how many more there are, so that a table that is wrong
/// throughout gives a page, not a flood.
pub fn problem_list(rows: &[ImportProblem], say: impl Fn(&ImportProblem) -> String) -> String {
    let mut out: Vec<String> = rows.iter().take(LISTED_PROBLEMS).map(say).collect();
    if rows.len() > LISTED_PROBLEMS {
        let rest = &rows[LISTED_PROBLEMS..];
        out.push(format!(
            "  and {} more bad rows, lines {} to {}",
            rest.len(),
            rest[0].line,
            rest[rest.len() - 1].line
        ));
    }
    out.join("\n")
}

fn known_groups(state: &State) -> String {
    state
        .groups()
        .map(|g| g.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn need_group<'a>(state: &'a State, group: &str) -> Result<&'a str, Refusal> {
    state
        .group(group)
        .map(|g| g.name.as_str())
        .ok_or_else(|| Refusal::NoSuchGroup {
            group: group.to_string(),
            known: known_groups(state),
        })
}

fn need_machine(state: &State, mac: &Mac) -> Result<(), Refusal> {
    if state.machine(mac).is_some() {
        Ok(())
    } else {
        Err(Refusal::NoSuchMachine(*mac))
    }
}

/// Check that the profile a policy boots exists with the right kind.
fn check_policy(state: &State, policy: &Policy) -> Result<(), Refusal> {
    let Some(name) = policy.profile_name() else {
        return Ok(());
    };
    let kind = match policy {
        Policy::Install { .. } => ProfileKind::Install,
        Policy::Ltsp => ProfileKind::Ltsp,
        Policy::SaveImage { .. } => ProfileKind::SaveImage,
        Policy::RestoreImage { .. } => ProfileKind::RestoreImage,
        Policy::NfsRoot { .. } => ProfileKind::NfsRoot,
        Policy::Custom { .. } => ProfileKind::Custom,
        Policy::LocalBoot => unreachable!("local boot has no profile"),
    };
    match state.profile(name) {
        Some(p) if p.kind == kind => Ok(()),
        _ => {
            let same: Vec<&str> = state
                .profiles()
                .filter(|p| p.kind == kind)
                .map(|p| p.name.as_str())
                .collect();
            Err(Refusal::NoSuchProfile {
                policy: policy.to_string(),
                kind: kind.as_str(),
                name: name.to_string(),
                known: if same.is_empty() {
                    format!("no {} profiles exist", kind.as_str())
                } else {
                    format!("{} profiles: {}", kind.as_str(), same.join(", "))
                },
            })
        }
    }
}

/// `localboot` holds machines nmt knows how to boot locally: installed or with a mapped disk.
fn check_localboot_member(state: &State, mac: &Mac) -> Result<(), Refusal> {
    let m = state.machine(mac).ok_or(Refusal::NoSuchMachine(*mac))?;
    if m.rootdev.is_some() || m.installed.is_some() {
        Ok(())
    } else {
        Err(Refusal::NotInstalled {
            machine: m.name.clone().unwrap_or_else(|| m.mac.to_string()),
            mac: m.mac,
        })
    }
}

/// Decide what a command means: the events to append, or why it is refused.
pub fn decide(state: &State, cmd: Command) -> Result<Vec<Event>, Refusal> {
    match cmd {
        Command::Init => {
            let mut out = vec![Event::StoreCreated {
                site_key: String::new(),
            }];
            out.extend(
                Profile::defaults()
                    .into_iter()
                    .map(|profile| Event::ProfileDefined { profile }),
            );
            Ok(out)
        }
        Command::AddMachine {
            mac,
            name,
            group,
            ip,
        } => {
            if let Some(why) = mac.not_a_machine() {
                return Err(Refusal::Invalid(why));
            }
            if let Some(m) = state.machine(&mac)
                && m.registered
            {
                return Err(Refusal::AlreadyRegistered {
                    mac,
                    as_name: m
                        .name
                        .as_ref()
                        .map(|n| format!(" as {n}"))
                        .unwrap_or_default(),
                });
            }
            let name = name.map(|n| names::machine_name(&n)).transpose()?;
            if let Some(n) = &name
                && let Some(owner) = state.machine_by_name(n)
                && owner.mac != mac
            {
                return Err(Refusal::NameTaken {
                    name: n.clone(),
                    owner: owner.mac,
                });
            }
            if let Some(a) = ip {
                check_ip(state, &mac, a)?;
            }
            let group = match group {
                Some(g) => {
                    let g = need_group(state, &g)?.to_string();
                    if g == LOCALBOOT {
                        return Err(Refusal::NewIntoLocalboot);
                    }
                    Some(g)
                }
                None => None,
            };
            Ok(vec![Event::MachineRegistered {
                mac,
                name,
                group,
                ip,
            }])
        }
        Command::Import { rows } => decide_import(state, rows),
        Command::RemoveMachines { macs } => {
            for m in &macs {
                need_machine(state, m)?;
            }
            Ok(macs
                .into_iter()
                .map(|mac| Event::MachineRemoved {
                    mac,
                    was: state.record(&mac),
                })
                .collect())
        }
        Command::RestoreMachine {
            mac,
            removal,
            group,
        } => decide_restore(state, mac, removal, group),
        Command::Name { mac, name } => {
            need_machine(state, &mac)?;
            let name = names::machine_name(&name)?;
            if let Some(owner) = state.machine_by_name(&name)
                && owner.mac != mac
            {
                return Err(Refusal::NameTaken {
                    name,
                    owner: owner.mac,
                });
            }
            Ok(vec![Event::MachineNamed {
                mac,
                name: Some(name),
            }])
        }
        Command::NamePattern { macs, pattern } => {
            let mut ms = Vec::with_capacity(macs.len());
            for mac in &macs {
                let m = state.machine(mac).ok_or(Refusal::NoSuchMachine(*mac))?;
                ms.push(m);
            }
            ms.sort_by_key(|m| (m.first_seq, m.mac));
            ms.dedup_by_key(|m| m.mac);
            let set: BTreeSet<Mac> = ms.iter().map(|m| m.mac).collect();
            let mut out = Vec::with_capacity(ms.len());
            for (i, m) in ms.iter().enumerate() {
                let name = names::machine_name(&pattern.nth(i as u64))?;
                if let Some(owner) = state.machine_by_name(&name)
                    && !set.contains(&owner.mac)
                {
                    return Err(Refusal::NameTaken {
                        name,
                        owner: owner.mac,
                    });
                }
                out.push(Event::MachineNamed {
                    mac: m.mac,
                    name: Some(name),
                });
            }
            Ok(out)
        }
        Command::AddGroup { group, policy } => {
            let group = names::word(&group, "group")?;
            if state.group(&group).is_some() {
                return Err(Refusal::GroupExists(group));
            }
            let policy = policy.unwrap_or(Policy::LocalBoot);
            check_policy(state, &policy)?;
            Ok(vec![Event::GroupCreated { group, policy }])
        }
        Command::RemoveGroup { group, force, to } => {
            let g = state.group(&group).ok_or_else(|| Refusal::NoSuchGroup {
                group: group.clone(),
                known: known_groups(state),
            })?;
            if g.builtin {
                return Err(Refusal::Builtin(format!(
                    "{group:?} is a built-in group and cannot be removed"
                )));
            }
            if !g.members.is_empty() && !force && to.is_none() {
                return Err(Refusal::GroupNotEmpty {
                    group,
                    count: g.members.len(),
                });
            }
            let target = match &to {
                Some(t) if *t == group => return Err(Refusal::MoveIntoItself(group)),
                Some(t) => need_group(state, t)?.to_string(),
                None => UNKNOWN.to_string(),
            };
            // Registered machines are not "never seen": they must not inherit a policy that
            // erases their disks by surprise, whether 'unknown' was asked for or implied.
            let unknown = state.group_policy(UNKNOWN);
            if target == UNKNOWN && !g.members.is_empty() && unknown.erases_disk() {
                return Err(Refusal::WouldErase {
                    group,
                    count: g.members.len(),
                    policy: unknown,
                });
            }
            let mut out: Vec<Event> = g
                .members
                .iter()
                .map(|mac| Event::MachineAssigned {
                    mac: *mac,
                    group: target.clone(),
                })
                .collect();
            out.push(Event::GroupRemoved { group });
            Ok(out)
        }
        Command::Assign {
            macs,
            group,
            address,
        } => {
            let group = need_group(state, &group)?.to_string();
            for m in &macs {
                need_machine(state, m)?;
                if group == LOCALBOOT {
                    check_localboot_member(state, m)?;
                }
            }
            if let Some(Some(ip)) = address {
                if macs.len() != 1 {
                    return Err(Refusal::Invalid(format!(
                        "--ip gives one machine a fixed address, and the range names {} \
                         machines; assign them one at a time, or use `nmt machine import` \
                         with a table of addresses",
                        macs.len()
                    )));
                }
                check_ip(state, &macs[0], ip)?;
            }
            let mut out = Vec::new();
            for mac in macs {
                out.push(Event::MachineAssigned {
                    mac,
                    group: group.clone(),
                });
                if let Some(ip) = address
                    && state.machine(&mac).is_some_and(|m| m.ip != ip)
                {
                    out.push(Event::MachineAddressSet { mac, ip });
                }
            }
            Ok(out)
        }
        Command::SetPolicy { macs, policy, once } => {
            if let Some(p) = &policy {
                check_policy(state, p)?;
            } else if once {
                return Err(Refusal::OnceWithoutPolicy);
            }
            for m in &macs {
                need_machine(state, m)?;
            }
            Ok(macs
                .into_iter()
                .map(|mac| Event::MachinePolicySet {
                    mac,
                    policy: policy.clone(),
                    once,
                })
                .collect())
        }
        Command::SetGroupPolicy {
            group,
            policy,
            once,
        } => {
            let g = state.group(&group).ok_or_else(|| Refusal::NoSuchGroup {
                group: group.clone(),
                known: known_groups(state),
            })?;
            if g.name == LOCALBOOT {
                return Err(Refusal::Builtin(
                    "the 'localboot' group always boots the local disk; to boot its machines \
                     differently, assign them to a named group or set a machine policy"
                        .into(),
                ));
            }
            check_policy(state, &policy)?;
            if once {
                if g.members.is_empty() {
                    return Err(Refusal::OnceNoMembers(group));
                }
                return Ok(g
                    .members
                    .iter()
                    .map(|mac| Event::MachinePolicySet {
                        mac: *mac,
                        policy: Some(policy.clone()),
                        once: true,
                    })
                    .collect());
            }
            Ok(vec![Event::GroupPolicySet { group, policy }])
        }
        Command::SetRootDevice { macs, device } => {
            let device = names::root_device(&device)?;
            for m in &macs {
                need_machine(state, m)?;
            }
            Ok(macs
                .into_iter()
                .map(|mac| Event::RootDeviceSet {
                    mac,
                    device: device.clone(),
                })
                .collect())
        }
        Command::RemoveRootDevice { macs } => {
            for m in &macs {
                need_machine(state, m)?;
            }
            Ok(macs
                .into_iter()
                .filter(|m| state.machine(m).is_some_and(|m| m.rootdev.is_some()))
                .map(|mac| Event::RootDeviceRemoved { mac })
                .collect())
        }
        Command::ReportInstall { mac, device, via } => {
            if let Some(why) = mac.not_a_machine() {
                return Err(Refusal::Invalid(why));
            }
            // An installer reports only for a machine nmt knows, that it sent to an installer
            // or an imager: a report is never how a machine comes into being.
            if via == ReportVia::Installer {
                let Some(m) = state.machine(&mac) else {
                    return Err(Refusal::NoSuchMachine(mac));
                };
                let installs = |p: &Policy| {
                    matches!(
                        p,
                        Policy::Install { .. }
                            | Policy::SaveImage { .. }
                            | Policy::RestoreImage { .. }
                    )
                };
                let (policy, _) = state.served_policy(m);
                // Its entry says install now, or the last entry it fetched did and no report
                // came since (the installer's own DHCP exchange ends a one-shot's boot).
                let booted_one = m.last_boot.as_ref().is_some_and(|b| {
                    installs(&b.policy) && m.installed.as_ref().is_none_or(|i| i.at < b.at)
                });
                if !installs(&policy) && !booted_one {
                    return Err(Refusal::Invalid(format!(
                        "{mac} was not sent to an installer or an imager (its boot entry is \
                         {policy}); an install report is accepted only while it boots one"
                    )));
                }
            }
            let device = names::root_device(&device)?;
            Ok(vec![Event::InstallReported { mac, device, via }])
        }
        Command::DefineProfile { profile, replace } => {
            profile.validate()?;
            if let Some(old) = state.profile(&profile.name) {
                if !replace {
                    return Err(Refusal::ProfileExists(profile.name));
                }
                if old.kind != profile.kind {
                    let users = profile_users(state, &profile.name);
                    if !users.is_empty() {
                        return Err(Refusal::ProfileInUse {
                            name: profile.name,
                            users,
                        });
                    }
                }
            }
            Ok(vec![Event::ProfileDefined { profile }])
        }
        cmd @ (Command::StartImageSave { .. }
        | Command::FinishImageSave { .. }
        | Command::StartImageRestore { .. }
        | Command::FinishImageRestore { .. }
        | Command::FailImage { .. }
        | Command::RemoveImage { .. }) => crate::image::decide(state, cmd),
        cmd @ (Command::DefineSchedule { .. }
        | Command::RemoveSchedule { .. }
        | Command::PauseSchedule { .. }
        | Command::ResumeSchedule { .. }
        | Command::RecordScheduleRun { .. }
        | Command::RecordScheduleMissed { .. }
        | Command::RecordScheduleCheck { .. }) => crate::schedule::decide(state, cmd),
        cmd
        @ (Command::SetBmc { .. } | Command::RemoveBmc { .. } | Command::RecordPower { .. }) => {
            crate::power::decide(state, cmd)
        }
        Command::SetInstallerPassword { crypted } => {
            let ok = crypted.starts_with("$6$")
                && crypted.len() < 256
                && crypted
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'$' | b'.' | b'/' | b'='));
            if !ok {
                return Err(Refusal::Invalid(
                    "an installer password must be given as a SHA-512 crypt hash ($6$…, as                      `mkpasswd -m sha-512` prints)"
                        .into(),
                ));
            }
            Ok(vec![Event::InstallerPasswordSet { crypted }])
        }
        Command::RemoveProfile { name } => {
            if state.profile(&name).is_none() {
                let known: Vec<&str> = state.profiles().map(|p| p.name.as_str()).collect();
                return Err(Refusal::Invalid(format!(
                    "no profile named {name:?}; profiles are: {}",
                    known.join(", ")
                )));
            }
            let users = profile_users(state, &name);
            if !users.is_empty() {
                return Err(Refusal::ProfileInUse { name, users });
            }
            Ok(vec![Event::ProfileRemoved { name }])
        }
    }
}

fn decide_restore(
    state: &State,
    mac: Mac,
    removal: Option<(u64, MachineRecord)>,
    group: Option<String>,
) -> Result<Vec<Event>, Refusal> {
    if let Some(m) = state.machine(&mac)
        && m.registered
    {
        return Err(Refusal::NotRemoved(format!(
            "{mac} is registered{}: there is nothing to restore (`nmt show {mac}` shows it)",
            m.name
                .as_ref()
                .map(|n| format!(" as {n}"))
                .unwrap_or_default()
        )));
    }
    let Some((removed, mut was)) = removal else {
        return Err(Refusal::NotRemoved(format!(
            "{mac} was never removed, so there is nothing to restore; register it with `nmt              machine add {mac}`"
        )));
    };
    if let Some(n) = &was.name
        && let Some(owner) = state.machine_by_name(n)
        && owner.mac != mac
    {
        return Err(Refusal::NotRemoved(format!(
            "{mac} was named {n}, and that name now belongs to {}; rename that machine first              (`nmt name {} OTHER`), then restore",
            owner.mac, owner.mac
        )));
    }
    if let Some(a) = was.ip {
        check_ip(state, &mac, a)?;
    }
    match group {
        Some(g) => {
            let g = need_group(state, &g)?.to_string();
            if g == LOCALBOOT && was.rootdev.is_none() {
                return Err(Refusal::Builtin(format!(
                    "{mac} has no root device, so it cannot join 'localboot'; give a named                      group with --group"
                )));
            }
            was.group = g;
        }
        None if state.group(&was.group).is_none() => {
            return Err(Refusal::NotRemoved(format!(
                "{mac} was in group {:?}, which no longer exists; restore it into another                  group with `nmt machine restore {mac} --group GROUP` (groups are: {})",
                was.group,
                known_groups(state)
            )));
        }
        None => {}
    }
    for p in was.policy.iter().chain(&was.previous) {
        check_policy(state, p)?;
    }
    Ok(vec![Event::MachineRestored { mac, removed, was }])
}

/// Why an address cannot be a machine's fixed address, or `None`.
///
/// nmt knows no netmask per machine, so the rule is fixed: never `0.0.0.0/8` ("this
/// network"), loopback `127/8`, link-local `169.254/16`, multicast `224/4` or reserved
/// `240/4` (which holds the broadcast `255.255.255.255`); and never an address ending in `.0`
/// or `.255`, the network and broadcast addresses of a /24 (on a wider subnet they are
/// hosts, but nmt keeps them free rather than hand a machine a /24's broadcast address).
fn fixed_ip_problem(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, d] = ip.octets();
    Some(if a == 0 {
        "in 0.0.0.0/8, which means \"this network\""
    } else if ip.is_loopback() {
        "a loopback address"
    } else if a == 169 && b == 254 {
        "a link-local address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if ip.is_broadcast() {
        "the broadcast address"
    } else if a >= 240 {
        "a reserved address (240.0.0.0/4)"
    } else if d == 0 {
        "a network address (it ends in .0; nmt knows no netmask and keeps .0 and .255 free)"
    } else if d == 255 {
        "a broadcast address (it ends in .255; nmt knows no netmask and keeps .0 and .255 free)"
    } else {
        return None;
    })
}

fn check_ip(state: &State, mac: &Mac, ip: Ipv4Addr) -> Result<(), Refusal> {
    if let Some(why) = fixed_ip_problem(ip) {
        return Err(Refusal::Invalid(format!(
            "{ip} is {why}, so it cannot be a machine's fixed address; give a unicast host \
             address such as 10.0.0.42"
        )));
    }
    if let Some(owner) = state.machine_by_ip(&ip)
        && owner.mac != *mac
    {
        return Err(Refusal::IpTaken {
            ip,
            owner: owner.mac,
        });
    }
    Ok(())
}

/// Who uses a profile, as words for a message ("group lab, 3 machines").
fn profile_users(state: &State, name: &str) -> String {
    let uses = |p: &Policy| p.profile_name() == Some(name);
    let mut users: Vec<String> = state
        .groups()
        .filter(|g| uses(&g.policy))
        .map(|g| format!("group {}", g.name))
        .collect();
    let machines = state
        .machines()
        .filter(|m| {
            m.policy
                .as_ref()
                .is_some_and(|o| uses(&o.policy) || o.previous.as_ref().is_some_and(uses))
        })
        .count();
    if machines > 0 {
        users.push(format!("{machines} machine override(s)"));
    }
    users.join(", ")
}

fn decide_import(state: &State, rows: Vec<ImportRow>) -> Result<Vec<Event>, Refusal> {
    let mut errors: Vec<ImportProblem> = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    let mut seen_mac: HashMap<Mac, usize> = HashMap::new();
    let mut seen_name: HashMap<String, usize> = HashMap::new();
    let mut seen_ip: HashMap<Ipv4Addr, usize> = HashMap::new();
    // What the table itself takes over: names and addresses that move between its machines.
    let mut in_table: BTreeMap<Mac, ()> = BTreeMap::new();
    let mut parsed = Vec::with_capacity(rows.len());
    for row in &rows {
        let line = row.line;
        let mut problem = |what: RowProblem| errors.push(ImportProblem { line, what });
        let mut err = |e: String| problem(RowProblem::Said(e));
        let Some(mac) = Mac::parse(&row.mac) else {
            err(format!(
                "{:?} is not a MAC address (want e.g. 52:54:00:12:34:56)",
                row.mac
            ));
            continue;
        };
        if let Some(why) = mac.not_a_machine() {
            err(why);
            continue;
        }
        if let Some(first) = seen_mac.insert(mac, line) {
            err(format!("{mac} is already on line {first}"));
            continue;
        }
        in_table.insert(mac, ());
        let name = if row.name.trim().is_empty() {
            None
        } else {
            match names::machine_name(row.name.trim()) {
                Ok(n) => {
                    if let Some(first) = seen_name.insert(n.clone(), line) {
                        err(format!("the name {n} is already on line {first}"));
                    }
                    Some(n)
                }
                Err(e) => {
                    err(e.to_string());
                    None
                }
            }
        };
        let ip = if row.ip.trim().is_empty() {
            None
        } else {
            match row.ip.trim().parse::<Ipv4Addr>() {
                Ok(a) => {
                    if let Some(first) = seen_ip.insert(a, line) {
                        err(format!("the address {a} is already on line {first}"));
                    }
                    Some(a)
                }
                Err(_) => {
                    err(format!("{:?} is not an IPv4 address", row.ip.trim()));
                    None
                }
            }
        };
        let group = if row.group.trim().is_empty() {
            None
        } else {
            let g = row.group.trim();
            match state.group(g) {
                Some(_) if g == LOCALBOOT => {
                    err("machines cannot be imported into 'localboot'; use a named group".into());
                    None
                }
                Some(_) => Some(g.to_string()),
                None => {
                    problem(RowProblem::NoSuchGroup(g.to_string()));
                    None
                }
            }
        };
        parsed.push((mac, name, ip, group));
    }
    // Names and addresses held by machines outside the table stay theirs.
    for (mac, name, ip, _) in &parsed {
        if let Some(n) = name
            && let Some(owner) = state.machine_by_name(n)
            && owner.mac != *mac
            && !in_table.contains_key(&owner.mac)
        {
            errors.push(ImportProblem {
                line: seen_mac[mac],
                what: RowProblem::Said(format!("the name {n} already belongs to {}", owner.mac)),
            });
        }
        if let Some(a) = ip
            && let Err(e) = check_ip(state, mac, *a)
            && !matches!(&e, Refusal::IpTaken { owner, .. } if in_table.contains_key(owner))
        {
            errors.push(ImportProblem {
                line: seen_mac[mac],
                what: RowProblem::Said(e.to_string()),
            });
        }
    }
    if !errors.is_empty() {
        return Err(Refusal::Import(errors));
    }
    for (mac, name, ip, group) in parsed {
        match state.machine(&mac) {
            Some(m) if m.registered => {
                // An existing machine: the table's values win, field by field.
                if name.is_some() && m.name != name {
                    out.push(Event::MachineNamed { mac, name });
                }
                if ip.is_some() && m.ip != ip {
                    out.push(Event::MachineAddressSet { mac, ip });
                }
                if let Some(g) = group
                    && m.group != g
                {
                    out.push(Event::MachineAssigned { mac, group: g });
                }
            }
            _ => out.push(Event::MachineRegistered {
                mac,
                name,
                group,
                ip,
            }),
        }
    }
    Ok(out)
}
/// How to make a missing group: a name written with its noderange `@` means the group
/// without it, and `nmt group add` takes the bare name.
fn create_group_hint(group: &str) -> String {
    match group.strip_prefix('@') {
        Some(bare) => format!(
            "a group's name is written without the @ here: `{bare}`; create it with `nmt group add {bare}` if it does not exist"
        ),
        None => format!("create it with `nmt group add {group}`"),
    }
}
