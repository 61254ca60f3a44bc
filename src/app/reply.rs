//! What an action answers: typed data ([`Reply`]) or why it failed ([`Failure`]). Both cross
//! nmtd's control socket as JSON; the CLI renders them as tables or JSON in the caller's time
//! zone, the web UI as HTML.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use jiff::Timestamp;
use nmt_projections::{
    BootRecord, Envelope, Impact, Installed, LastBoot, Mac, Machine, Origin, Policy, Profile, State,
};
use serde::{Deserialize, Serialize};

use super::action::Action;
use crate::files::WriteOutcome;

/// A performed action's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    /// A change was made.
    Changed {
        /// What it did, in words (`added 52:54:00:12:34:56`).
        summary: String,
        /// The events appended.
        events: Vec<Envelope>,
        /// The files written and removed.
        files: Files,
        /// What it did to the machines: those removed, and what each whose next boot
        /// changed boots now.
        #[serde(default)]
        impact: Impact,
    },
    /// `--dry-run`: what the command would do; nothing was done.
    Planned(Box<Planned>),
    /// Bulk destruction that the caller must confirm (see [`Confirm::Ask`]); nothing was
    /// done.
    Unconfirmed(Box<Planned>),
    /// `nmt group list`.
    Groups(Vec<GroupView>),
    /// `nmt machines`.
    Machines(Vec<MachineView>),
    /// `nmt rootdev`: the machines with a root device.
    Rootdevs(Vec<RootdevView>),
    /// `nmt profile list`.
    Profiles(Vec<Profile>),
    /// `nmt image list`.
    Images(Vec<ImageView>),
    /// `nmt image show`.
    Image(Box<ImageDetail>),
    /// `nmt image check`: each version checked, with what is wrong with it.
    ImagesChecked(Vec<ImageCheck>),
    /// `nmt history`: the events, oldest first.
    /// A machine's events, and the one-shot policies they used up (a revert is no event of
    /// its own: the boot that used the one-shot is).
    History {
        /// The machine (its outcome is picked out of a schedule run's check).
        #[serde(default)]
        machine: Option<Mac>,
        events: Vec<Envelope>,
        #[serde(default)]
        spent: Vec<nmt_projections::OneShotSpent>,
    },
    /// `nmt boots`.
    Boots {
        /// The machine as it was named.
        machine: String,
        /// Only boots since then were asked for.
        since: Option<Timestamp>,
        /// The boots, oldest first.
        boots: Vec<BootRecord>,
    },
    /// `nmt show`.
    Show(Box<ShowView>),
    /// `nmt verify`.
    Verify {
        /// How many events the fresh fold read.
        events: u64,
        /// What does not match (nothing: all is well).
        problems: Vec<String>,
    },
    /// `nmt render --check`: each generated file that is not what the state says.
    Drift(Vec<String>),
    /// `nmt render`.
    Rendered(Files),
    /// `nmt replay logs`.
    /// `nmt replay leases`.
    LeasesReplayed(crate::LeasesSummary),
    Replayed {
        /// What the replay read and appended.
        summary: Replayed,
        /// `--strict`: lines not recognised fail the command.
        strict: bool,
    },
    /// `nmt status`.
    Status(Status),
    /// `nmt journal export`: the events, in sequence order.
    Journal(Vec<Envelope>),
    /// `nmt installer-password show` and `rotate`.
    InstallerPassword {
        /// The password (none waits to be acknowledged, for `show`).
        password: Option<String>,
        /// It was just generated and recorded (`rotate`): shown this once.
        rotated: bool,
        /// The events appended (`rotate`).
        events: Vec<Envelope>,
    },
    /// `nmt installer-password ack`: whether a password was waiting.
    PasswordAcknowledged(bool),
    /// `nmt bmc show`.
    Bmcs(Vec<super::power::BmcView>),
    /// `nmt power`, and `nmt policy … --reboot` (its change first).
    Power {
        /// The policy change made before the machines were cycled.
        changed: Option<Box<Reply>>,
        /// One result per machine.
        results: Vec<super::power::PowerView>,
    },
    /// `nmt schedule list`.
    Schedules(Vec<super::schedule::ScheduleView>),
    /// `nmt schedule runs [NAME]`: each schedule's runs, newest first.
    ScheduleRuns {
        /// One schedule was asked for (its runs are answered alone).
        one: bool,
        /// The schedules asked for, with their runs.
        schedules: Vec<super::schedule::ScheduleRuns>,
    },
    /// `nmt web-login`: the one-time link that logs the caller into the web UI.
    WebLogin {
        /// The link (`http://ADDR:PORT/login/link/TOKEN`).
        url: String,
        /// For the user: the seconds it may wait to be opened.
        expires_in: u64,
    },
}

impl Reply {
    /// The exit status: 1 when drift or problems were found, or `--strict` rejected lines;
    /// [`UNCONFIRMED`] (3) when a bulk destruction waits for confirmation; else 0.
    pub fn code(&self) -> u8 {
        match self {
            Reply::Verify { problems, .. } => u8::from(!problems.is_empty()),
            Reply::Drift(d) => u8::from(!d.is_empty()),
            Reply::ImagesChecked(c) => u8::from(c.iter().any(|c| !c.problems.is_empty())),
            Reply::Replayed { summary, strict } => u8::from(*strict && summary.rejects > 0),
            Reply::Unconfirmed(_) => UNCONFIRMED,
            Reply::Power { results, .. } => u8::from(results.iter().any(|r| !r.ok)),
            _ => 0,
        }
    }
}

/// The exit status of a bulk destruction that was not confirmed (nothing was done).
pub const UNCONFIRMED: u8 = 3;

/// Why an action failed, for the caller to print. Two failures are equal when they say the
/// same (a refusal that crossed the socket equals the one decided).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// The whole message, as printed (`nmt: …`).
    Said(String),
    /// A domain rule refused the change. `said` is the refusal in the command line's words
    /// (`nmt: refused: …`), which is what crosses the socket; `refusal` is what it was, for a
    /// front end in this process that says it in its own words (the web UI names its
    /// buttons and fields, not `--force` or `--to`).
    Refused {
        /// The message, as printed.
        said: String,
        /// The refusal itself (only in the process that decided).
        #[serde(skip)]
        refusal: Option<nmt_projections::Refusal>,
    },
    /// `nmt show MAC --at T` for a machine not known yet then (the time is the caller's to
    /// write in its zone).
    NotKnownYet {
        /// The machine as it was named.
        machine: String,
        /// The time asked for.
        at: Timestamp,
    },
}

impl Failure {
    /// An error as `nmt` says it: a refusal of the domain rules as `nmt: refused: …`,
    /// anything else as `nmt: …` with its causes.
    pub fn of(e: &anyhow::Error) -> Failure {
        if let Some(f) = e.downcast_ref::<Failure>() {
            return f.clone();
        }
        match e.downcast_ref::<nmt_projections::Refusal>() {
            Some(r) => Failure::Refused {
                said: format!("nmt: refused: {r}"),
                refusal: Some(r.clone()),
            },
            None => Failure::Said(format!("nmt: {e:#}")),
        }
    }

    /// Refused by the access rules.
    pub fn refused(why: &str) -> Failure {
        Failure::Said(format!("nmt: refused: {why}"))
    }

    /// The message, with times in this process's time zone.
    pub fn message(&self) -> String {
        match self {
            Failure::Said(s) | Failure::Refused { said: s, .. } => s.clone(),
            Failure::NotKnownYet { machine, at } => {
                format!("nmt: {machine} was not known yet at {}", local_time(*at))
            }
        }
    }
}

impl PartialEq for Failure {
    fn eq(&self, other: &Failure) -> bool {
        match (self, other) {
            (Failure::Refused { said: a, .. }, Failure::Refused { said: b, .. }) => a == b,
            (Failure::Said(a), Failure::Said(b)) => a == b,
            (
                Failure::NotKnownYet { machine, at },
                Failure::NotKnownYet {
                    machine: m2,
                    at: a2,
                },
            ) => machine == m2 && at == a2,
            _ => false,
        }
    }
}

impl Eq for Failure {}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // As an error inside `anyhow`, without the `nmt: ` that `message` adds.
        let m = self.message();
        f.write_str(m.strip_prefix("nmt: ").unwrap_or(&m))
    }
}

impl std::error::Error for Failure {}

/// What nmtd or `nmt` answers through the control socket.
pub type Answer = Result<Reply, Failure>;

/// A time in the local zone (of the process that prints it), to the second, with its UTC
/// offset: `2026-11-20 03:05:11 +01:00`. The same form is read back by `--since`, `--at`.
pub fn local_time(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// The files a change wrote, left alone and removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// Files whose bytes changed (or that were created).
    pub written: Vec<PathBuf>,
    /// Files that already had these bytes.
    pub unchanged: usize,
    /// Files removed.
    pub removed: Vec<PathBuf>,
}

impl From<WriteOutcome> for Files {
    fn from(w: WriteOutcome) -> Files {
        Files {
            written: w.written,
            unchanged: w.unchanged,
            removed: w.removed,
        }
    }
}

/// What a replay of log files did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    /// Lines read.
    pub lines: u64,
    /// Lines skipped because they were read before.
    pub already: u64,
    /// Events appended.
    pub events: u64,
    /// Lines recognised that made no event.
    pub ignored: u64,
    /// Lines not recognised.
    pub rejects: u64,
    /// Server lines with no time of their own (given the time of the line before them in
    /// their file, or the file's modification time).
    #[serde(default)]
    pub untimed: u64,
}

impl From<&crate::ReplaySummary> for Replayed {
    fn from(s: &crate::ReplaySummary) -> Replayed {
        Replayed {
            lines: s.lines,
            already: s.already,
            events: s.events,
            ignored: s.ignored,
            rejects: s.rejects,
            untimed: s.untimed,
        }
    }
}

/// One group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    /// Its name.
    pub group: String,
    /// Its policy.
    pub policy: Policy,
    /// `unknown` and `localboot`.
    pub builtin: bool,
    /// How many machines are in it.
    pub members: usize,
}

/// One saved image version, as `nmt image list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageView {
    /// The image's name.
    pub image: String,
    /// This version.
    pub version: u32,
    /// Whether it is the newest (what `NAME` alone restores).
    pub newest: bool,
    /// The machine it was saved from.
    pub from: Mac,
    /// That machine's name now.
    pub from_name: Option<String>,
    /// When the save completed.
    pub saved_at: Timestamp,
    /// Its partitions.
    pub partitions: usize,
    /// The bytes its streams take in the image directory.
    pub stored_bytes: u64,
    /// How many restores from it succeeded.
    pub restores: usize,
    /// Its directory.
    pub path: PathBuf,
}

impl ImageView {
    pub(crate) fn new(
        st: &State,
        store: &crate::images::ImageStore,
        v: &nmt_projections::ImageVersion,
        newest: bool,
    ) -> ImageView {
        ImageView {
            image: v.name.clone(),
            version: v.version,
            newest,
            from: v.from,
            from_name: st.machine(&v.from).and_then(|m| m.name.clone()),
            saved_at: v.at,
            partitions: v.manifest.parts.len(),
            stored_bytes: v.manifest.stored_bytes(),
            restores: v.restores.len(),
            path: store.version_dir(&v.name, v.version),
        }
    }
}

/// One version as `nmt image check` found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageCheck {
    /// `NAME@VERSION`.
    pub image: String,
    /// What is wrong (nothing: it is sound).
    pub problems: Vec<String>,
}

/// One restore, as `nmt image show` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreView {
    /// The machine.
    pub mac: Mac,
    /// Its name now.
    pub name: Option<String>,
    /// When it reported the restore verified.
    pub at: Timestamp,
}

/// `nmt image show NAME[@VERSION]`: the version, its manifest and its restores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageDetail {
    /// What `nmt image list` says of it.
    #[serde(flatten)]
    pub view: ImageView,
    /// The partition table, partitions and digests.
    pub manifest: nmt_projections::ImageManifest,
    /// Every machine restored from it, oldest first.
    pub restored_onto: Vec<RestoreView>,
}

/// One machine with a root device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootdevView {
    /// MAC.
    pub mac: Mac,
    /// Name.
    pub name: Option<String>,
    /// Root device.
    pub rootdev: Option<String>,
}

/// One machine as `nmt machines --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineView {
    /// MAC.
    pub mac: Mac,
    /// Name.
    pub name: Option<String>,
    /// Group.
    pub group: String,
    /// The machine's own policy (null when it follows its group).
    pub policy: Option<Policy>,
    /// What it boots next.
    pub effective_policy: Policy,
    /// Where the effective policy comes from.
    pub policy_origin: Origin,
    /// Whether its own policy is for the next boot only.
    pub once: bool,
    /// Fixed IPv4 address.
    pub ip: Option<Ipv4Addr>,
    /// Root device.
    pub rootdev: Option<String>,
    /// Last activity.
    pub last_seen: Option<Timestamp>,
    /// Last address seen.
    pub last_ip: Option<Ipv4Addr>,
    /// The host name its DHCP client sent (untrusted data).
    pub dhcp_hostname: Option<String>,
    /// Its client architecture (0 BIOS, 7/9 x86-64 UEFI), when a log said.
    pub arch: Option<u16>,
    /// First appearance.
    pub first_seen: Timestamp,
    /// Registered by an admin.
    pub registered: bool,
    /// Last install report.
    pub installed: Option<Installed>,
    /// Last boot entry fetched.
    pub last_boot: Option<LastBoot>,
}

impl MachineView {
    /// The view of one machine.
    pub fn new(state: &State, m: &Machine) -> Self {
        let (effective_policy, policy_origin) = state.effective_policy(m);
        MachineView {
            mac: m.mac,
            name: m.name.clone(),
            group: m.group.clone(),
            policy: m.policy.as_ref().map(|o| o.policy.clone()),
            effective_policy,
            policy_origin,
            once: m.policy.as_ref().is_some_and(|o| o.once),
            ip: m.ip,
            rootdev: m.rootdev.clone(),
            last_seen: m.last_seen,
            last_ip: m.last_ip,
            dhcp_hostname: m.dhcp_hostname.clone(),
            arch: m.arch,
            first_seen: m.first_seen,
            registered: m.registered,
            installed: m.installed.clone(),
            last_boot: m.last_boot.clone(),
        }
    }
}

/// What a one-shot policy reverts to once used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Then {
    /// The machine's own policy before it.
    Own(Policy),
    /// Its group's policy (this one, now).
    Group(Policy),
}

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileView {
    /// Where it is written.
    pub path: PathBuf,
    /// Its text.
    pub content: String,
}

/// `nmt show`: one machine, what it boots, and its files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShowView {
    /// The machine.
    pub machine: MachineView,
    /// What its one-shot policy reverts to, when it has one.
    pub then: Option<Then>,
    /// Its boot entry, fully resolved (as `nmt show --json` prints it).
    pub boot_entry: serde_json::Value,
    /// Its own files, then the shared ones of its group that they include.
    pub files: Vec<FileView>,
    /// An image save or restore in flight (from nmtd, which sees its bytes go by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imaging: Option<ImagingProgress>,
}

/// `nmt status`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// What nmtd says, when it runs on this state.
    pub daemon: Option<DaemonStatus>,
}

/// What a running nmtd reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// Its version.
    pub version: String,
    /// Its process id.
    pub pid: u32,
    /// Events in the log.
    pub events: u64,
    /// Up to which event the generated files are current.
    pub files_current_to: u64,
    /// Why they are behind, while they are (nmtd retries by itself).
    #[serde(default)]
    pub files_problem: Option<String>,
    /// Never-seen machines not recorded since nmtd started: more than
    /// `[daemon] new_machines_per_minute` appeared in a minute of log.
    #[serde(default)]
    pub new_machines_limited: u64,
    /// What it counted.
    pub counters: Counters,
    /// Each followed log.
    pub sources: Vec<SourceStats>,
    /// Image saves and restores in flight.
    #[serde(default)]
    pub imaging: Vec<ImagingProgress>,
}

/// One image save or restore in flight, as nmtd sees its bytes go by (live, not events).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagingProgress {
    /// The machine.
    pub mac: Mac,
    /// Its name.
    pub name: Option<String>,
    /// `save` or `restore`.
    pub action: String,
    /// `NAME@VERSION`.
    pub image: String,
    /// Bytes received (a save) or sent (a restore) so far.
    pub done: u64,
    /// What it should come to: the used bytes declared (a save, an upper bound as the
    /// streams are compressed) or the stored bytes (a restore).
    pub total: u64,
    /// When bytes last went by.
    pub updated: Timestamp,
}

impl ImagingProgress {
    /// Done, in percent (at most 100).
    pub fn percent(&self) -> u64 {
        (self.done.saturating_mul(100) / self.total.max(1)).min(100)
    }
}

/// What `nmt status` shows for one source.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceStats {
    /// The configured path.
    pub path: PathBuf,
    /// Complete lines read.
    pub lines: u64,
    /// Events appended.
    pub events: u64,
    /// Lines recognised that made no event of their own (detail lines, lines naming no
    /// machine).
    pub ignored: u64,
    /// Lines not recognised.
    pub rejects: u64,
    /// The last rejected line (lossy, shortened).
    pub last_reject: Option<String>,
    /// Rejected lines by why, with a few examples of each.
    pub reject_reasons: std::collections::BTreeMap<String, nmt_replay::Rejected>,
    /// The committed position.
    pub checkpoint: Option<nmt_replay::Checkpoint>,
    /// Bytes in the file beyond the checkpoint.
    pub lag_bytes: u64,
    /// The last thing the reader reported (rotation, truncation, a missing file).
    pub last_event: Option<String>,
    /// The last error reading or committing.
    pub last_error: Option<String>,
    /// Something the admin should look at while it lasts (the path does not exist).
    pub warning: Option<String>,
}

impl SourceStats {
    /// Take the committed counts of the source's pipeline.
    pub fn fill(&mut self, c: &nmt_replay::Counts) {
        self.lines = c.lines;
        self.events = c.events;
        self.ignored = c.ignored;
        self.rejects = c.rejects;
        self.last_reject.clone_from(&c.last_reject);
        self.reject_reasons.clone_from(&c.reject_reasons);
    }
}

/// Counters of what the daemon refused or served.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Install reports accepted.
    pub reports_accepted: u64,
    /// Install reports refused (no token, a wrong one, a bad device).
    pub reports_refused: u64,
    /// Control requests refused by the access rules.
    pub access_refused: u64,
    /// Syslog datagrams from addresses no machine was given.
    pub syslog_unattributed: u64,
}

/// What a command would do, worked out without doing it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Planned {
    /// What it is, in words, when the events do not say it alone.
    #[serde(default)]
    pub summary: String,
    /// The events it would append, in the envelopes they would have.
    pub events: Vec<Envelope>,
    /// The files it would write (new, or with new bytes), leave alone, and remove.
    pub files: Files,
    /// What it would do to the machines.
    pub impact: Impact,
    /// Whether it is bulk destruction, performed only once confirmed (`--yes`).
    pub needs_confirmation: bool,
}

/// What the caller confirmed of a bulk destruction: more than one machine removed, or made
/// to erase its disk at its next boot (see [`nmt_projections::Impact::needs_confirmation`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confirm {
    /// Perform it whatever it reaches: `--yes`, the web UI (which asks on its own pages) and
    /// callers from before confirmations.
    #[default]
    Unchecked,
    /// Do not perform bulk destruction: answer [`Reply::Unconfirmed`] with its plan, for
    /// the caller to show and confirm.
    Ask,
    /// Perform it only if the machines at risk ([`nmt_projections::Impact::at_risk`]) are
    /// exactly these: what the caller was shown and confirmed. Otherwise refuse.
    Reaching(std::collections::BTreeSet<Mac>),
}

/// How to perform an action.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mode {
    /// Only say what it would do (events, files, machines); append and write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// What the caller confirmed.
    #[serde(default)]
    pub confirm: Confirm,
}

/// What the CLI sends over nmtd's control socket.
#[derive(Debug, Serialize, Deserialize)]
pub struct CliRequest {
    /// What to do.
    pub action: Action,
    /// How: for real or `--dry-run`, and what was confirmed (absent from older callers: for
    /// real, unchecked).
    #[serde(default)]
    pub mode: Mode,
}
