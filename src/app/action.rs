//! What a command asks for, in a form that crosses the daemon's socket: an [`Action`] goes
//! in, a [`super::Reply`] (or a [`super::Failure`]) comes back. The command line and the web
//! UI build the action (parsing what only the caller can: files, standard input, local
//! times, forms), and [`super::perform`] carries it out on an engine, in-process or inside
//! `nmtd`. [`Action::right`] says who may ask for it.

use std::net::Ipv4Addr;

use jiff::Timestamp;
use nmt_projections::{ImportRow, Mac, Profile};
use serde::{Deserialize, Serialize};

/// One command, ready to perform.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Action {
    MachineAdd {
        mac: Mac,
        name: Option<String>,
        group: Option<String>,
        ip: Option<Ipv4Addr>,
    },
    MachineImport {
        rows: Vec<ImportRow>,
    },
    MachineRm {
        range: String,
    },
    /// Bring a removed machine back as it was just before its last removal.
    MachineRestore {
        /// Its MAC, or the name it had (when only one removed machine had it).
        machine: String,
        /// Put it in this group instead of its old one.
        #[serde(default)]
        group: Option<String>,
    },
    Name {
        target: String,
        name: Option<String>,
        pattern: Option<String>,
    },
    GroupAdd {
        group: String,
        policy: Option<String>,
    },
    GroupRm {
        group: String,
        force: bool,
        /// Where its members go (instead of `unknown`).
        #[serde(default)]
        to: Option<String>,
    },
    GroupList,
    Assign {
        range: String,
        group: String,
        /// A fixed address for the one machine of the range.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ip: Option<std::net::Ipv4Addr>,
        /// Take the machines' fixed addresses away.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_ip: bool,
    },
    Policy {
        range: String,
        policy: String,
        once: bool,
        members: bool,
        /// Then power-cycle the machines it set (their next boot set to the network first).
        #[serde(default)]
        reboot: bool,
    },
    /// `nmt bmc set`: a machine's or a group's BMC, and its password (which goes to the
    /// secrets file only).
    BmcSet {
        range: String,
        bmc: nmt_projections::Bmc,
        #[serde(default)]
        password: Option<crate::secrets::Secret>,
    },
    /// `nmt bmc rm`.
    BmcRm {
        range: String,
    },
    /// `nmt bmc show`.
    BmcShow {
        range: String,
    },
    /// `nmt power OP RANGE`.
    Power {
        op: nmt_projections::PowerOp,
        range: String,
    },
    Machines {
        range: Option<String>,
        #[serde(default)]
        at: Option<Timestamp>,
    },
    RootdevList,
    RootdevSet {
        range: String,
        device: String,
    },
    RootdevRm {
        range: String,
    },
    ProfileAdd {
        profile: Profile,
        replace: bool,
    },
    ProfileRm {
        name: String,
    },
    ProfileList,
    /// `nmt image list`.
    ImageList,
    /// `nmt image show NAME[@VERSION]`.
    ImageShow {
        image: String,
    },
    /// `nmt image check [NAME[@VERSION]]`.
    ImageCheck {
        image: Option<String>,
    },
    /// `nmt image rm NAME[@VERSION]`.
    ImageRm {
        image: String,
    },
    Installed {
        machine: String,
        rootdev: String,
    },
    History {
        machine: String,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        #[serde(default)]
        kinds: Vec<String>,
    },
    Boots {
        machine: String,
        since: Option<Timestamp>,
    },
    Verify,
    Show {
        machine: String,
        #[serde(default)]
        at: Option<Timestamp>,
    },
    Render {
        check: bool,
    },
    JournalExport {
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        machine: Option<String>,
    },
    Status,
    /// The generated installer password waiting to be acknowledged.
    InstallerPasswordShow,
    /// Forget the waiting installer password (it was written down).
    InstallerPasswordAck,
    /// Set the installer password: its SHA-512 crypt hash (the plain password never leaves
    /// the caller).
    InstallerPasswordSet {
        crypted: String,
    },
    /// Generate a new installer password, record its hash, and answer it once.
    InstallerPasswordRotate,
    ReplayLogs {
        paths: Vec<std::path::PathBuf>,
        year: Option<i16>,
        strict: bool,
    },
    /// Append what DHCP servers' leases files tell (ISC dhcpd, dnsmasq).
    ReplayLeases {
        paths: Vec<std::path::PathBuf>,
    },
    /// `nmt schedule add`: run `action` at the times `cron` names in `tz`.
    ScheduleAdd {
        name: String,
        cron: String,
        /// The IANA time zone (none: the caller's).
        #[serde(default)]
        tz: Option<String>,
        /// Check each run's outcome after this long (`45m`).
        #[serde(default)]
        expect: Option<String>,
        /// Run at most this late when nmtd was down at the time (`30m` when none).
        #[serde(default)]
        grace: Option<String>,
        /// The command as written after `--`.
        command: Vec<String>,
        /// What it does.
        run: Box<Action>,
        /// Redefine a schedule of that name.
        #[serde(default)]
        replace: bool,
    },
    /// `nmt schedule list`.
    ScheduleList,
    /// `nmt schedule rm`.
    ScheduleRm {
        name: String,
    },
    /// `nmt schedule pause`.
    SchedulePause {
        name: String,
    },
    /// `nmt schedule resume`.
    ScheduleResume {
        name: String,
    },
    /// `nmt schedule runs [NAME]` (none: every schedule's).
    ScheduleRuns {
        name: Option<String>,
    },
    /// A one-time link that logs the caller into nmtd's web UI as themselves (with their own
    /// rights): only nmtd answers it, from the socket's peer credentials.
    WebLogin,
}

/// The right an action needs (the daemon's `[access]` rules give rights to callers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Right {
    /// It only reads: anyone who can reach nmtd may.
    Read,
    /// It sets these groups' own policies: administrators of all of them may, and nmt admins.
    GroupPolicy(Vec<String>),
    /// Anything else changes the inventory: nmt admins only.
    Admin,
}

impl Action {
    /// Who may carry out this action. Every action is classified here, with no default: a
    /// new action does not compile until someone decides who may do it.
    pub fn right(&self) -> Right {
        match self {
            Action::GroupList
            | Action::Machines { .. }
            | Action::RootdevList
            | Action::ProfileList
            | Action::ImageList
            | Action::ImageShow { .. }
            | Action::ImageCheck { .. }
            | Action::History { .. }
            | Action::Boots { .. }
            | Action::Verify
            | Action::Show { .. }
            | Action::Render { check: true }
            | Action::JournalExport { .. }
            | Action::Status
            | Action::ScheduleList
            | Action::ScheduleRuns { .. }
            | Action::BmcShow { .. }
            | Action::Power {
                op: nmt_projections::PowerOp::Status,
                ..
            }
            // Anyone who can reach the socket may have a web session, with their own rights
            // (the session acts as the caller, judged by `[access]` like the socket).
            | Action::WebLogin => Right::Read,
            Action::Policy {
                range,
                members: false,
                ..
            }
            | Action::Power { range, .. } => match nmt_parsers::parse_noderange(range).ok().and_then(|r| {
                r.as_groups()
                    .map(|g| g.iter().map(|g| g.to_string()).collect())
            }) {
                Some(groups) => Right::GroupPolicy(groups),
                None => Right::Admin,
            },
            Action::Policy { members: true, .. }
            | Action::MachineAdd { .. }
            | Action::MachineImport { .. }
            | Action::MachineRm { .. }
            | Action::MachineRestore { .. }
            | Action::Name { .. }
            | Action::GroupAdd { .. }
            | Action::GroupRm { .. }
            | Action::Assign { .. }
            | Action::RootdevSet { .. }
            | Action::RootdevRm { .. }
            | Action::ProfileAdd { .. }
            | Action::ProfileRm { .. }
            | Action::ImageRm { .. }
            | Action::Installed { .. }
            | Action::Render { check: false }
            | Action::ReplayLogs { .. }
            | Action::ReplayLeases { .. }
            | Action::InstallerPasswordShow
            | Action::InstallerPasswordAck
            | Action::InstallerPasswordSet { .. }
            | Action::InstallerPasswordRotate
            | Action::ScheduleRm { .. }
            | Action::SchedulePause { .. }
            | Action::ScheduleResume { .. }
            | Action::BmcSet { .. }
            | Action::BmcRm { .. } => Right::Admin,
            // Defining a schedule needs what its runs do: a group's administrators may
            // schedule their group's policy.
            Action::ScheduleAdd { run, .. } => match run.right() {
                Right::Read => Right::Admin,
                r => r,
            },
        }
    }

    /// Whether a schedule may run this action: one that changes machines, groups, profiles
    /// or boot policies through the domain's rules (no reads, no files of the caller's, no
    /// replays, no schedules of schedules).
    pub fn schedulable(&self) -> bool {
        match self {
            Action::MachineAdd { .. }
            | Action::MachineImport { .. }
            | Action::MachineRm { .. }
            | Action::MachineRestore { .. }
            | Action::Name { .. }
            | Action::GroupAdd { .. }
            | Action::GroupRm { .. }
            | Action::Assign { .. }
            | Action::Policy { .. }
            | Action::RootdevSet { .. }
            | Action::RootdevRm { .. }
            | Action::ProfileAdd { .. }
            | Action::ProfileRm { .. } => true,
            Action::Power { op, .. } => *op != nmt_projections::PowerOp::Status,
            Action::GroupList
            | Action::Machines { .. }
            | Action::RootdevList
            | Action::ProfileList
            | Action::ImageList
            | Action::ImageShow { .. }
            | Action::ImageCheck { .. }
            | Action::ImageRm { .. }
            | Action::Installed { .. }
            | Action::History { .. }
            | Action::Boots { .. }
            | Action::Verify
            | Action::Show { .. }
            | Action::Render { .. }
            | Action::JournalExport { .. }
            | Action::Status
            | Action::InstallerPasswordShow
            | Action::InstallerPasswordAck
            | Action::InstallerPasswordSet { .. }
            | Action::InstallerPasswordRotate
            | Action::ReplayLogs { .. }
            | Action::ReplayLeases { .. }
            | Action::ScheduleAdd { .. }
            | Action::ScheduleList
            | Action::ScheduleRm { .. }
            | Action::SchedulePause { .. }
            | Action::ScheduleResume { .. }
            | Action::ScheduleRuns { .. }
            | Action::BmcSet { .. }
            | Action::BmcRm { .. }
            | Action::BmcShow { .. }
            | Action::WebLogin => false,
        }
    }

    /// The noderange an action targets, when it targets machines.
    pub fn range(&self) -> Option<&str> {
        match self {
            Action::MachineRm { range }
            | Action::Assign { range, .. }
            | Action::Policy { range, .. }
            | Action::RootdevSet { range, .. }
            | Action::RootdevRm { range }
            | Action::Power { range, .. } => Some(range),
            Action::Name { target, .. } => Some(target),
            _ => None,
        }
    }
}
