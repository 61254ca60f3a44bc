//! Schedules: an admin's command carried out by nmtd at the times a cron pattern names, in a
//! time zone, and then checked: did every machine it targeted do what it was meant to?
//!
//! Everything here is pure. The time zone is handed in (the caller reads the zone database);
//! "now" is handed in (the live daemon passes the clock, tests pass any instant). Nothing in
//! this module fires anything: [`due`] says what is due, and only the live daemon acts on it.
//! Replay and journal import fold the events that record runs, and never make new ones.
//!
//! Time rules (those of Vixie cron, which `croner` follows):
//! - a fixed time that does not exist on the night clocks spring forward (02:30 in a gap
//!   from 02:00 to 03:00) runs once, at the first instant after the gap;
//! - a fixed time that happens twice when clocks fall back runs once, at the first;
//! - a run that nmtd could not make at its time (it was down) runs late if it is at most the
//!   schedule's grace behind, once, for the latest such time; older times are recorded as
//!   missed and not run;
//! - a paused schedule's times pass unrecorded; resuming starts from the moment of resuming.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use crate::{Command, Envelope, Event, Mac, Policy, Refusal, State};

/// How many runs of each schedule the state keeps (older ones stay in the log).
pub const RECENT_RUNS: usize = 60;

/// A run made more than this many seconds after its time is recorded as late.
pub const LATE_AFTER_SECS: i64 = 60;

/// How many missed times one record counts at most (a long outage of a frequent schedule).
const MAX_COUNTED: u64 = 1_000_000;

/// Parse a cron pattern as admins write it: five fields `MIN HOUR DOM MON DOW` (names like
/// `mon-fri` and `jan` allowed; day of month and day of week are either-or, as in Vixie
/// cron), or `@daily`, `@weekly` and the other nicknames.
pub fn parse_cron(pattern: &str) -> Result<Cron, String> {
    let pattern = pattern.trim();
    let fields = pattern.split_whitespace().count();
    if !pattern.starts_with('@') && fields != 5 {
        return Err(format!(
            "{pattern:?} is not a cron pattern of five fields (MIN HOUR DOM MON DOW), e.g. \
             '0 2 * * *' for 02:00 every day or '0 18 * * 1-5' for 18:00 on weekdays"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(pattern)
        .map_err(|e| {
            format!(
                "{pattern:?} is not a cron pattern: {e}; write MIN HOUR DOM MON DOW, e.g. \
                 '0 2 * * *' for 02:00 every day"
            )
        })
}

/// A schedule as the log made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Its name.
    pub name: String,
    /// Its cron pattern.
    pub cron: String,
    /// The IANA time zone its pattern is read in.
    pub tz: String,
    /// How long after a run its outcome is checked (seconds); none: not checked.
    pub expect: Option<u64>,
    /// How far behind its time a run may still be made (seconds).
    pub grace: u64,
    /// The command as the admin wrote it (`policy @lab restore-image:lab --once`).
    pub command: Vec<String>,
    /// The action to carry out, as the application layer encodes it (JSON).
    pub action: String,
    /// Who defined it: the runs act with their rights, as `schedule NAME (set by OWNER)`.
    pub owner: String,
    /// Paused: its times pass without a run.
    pub paused: bool,
    /// When it was defined (or last redefined).
    pub defined: Timestamp,
    /// Times after this one are still to be run or recorded missed: when it was defined or
    /// resumed, or the last time run or recorded missed.
    pub since: Timestamp,
    /// How many runs it made (the next is numbered one more).
    pub runs: u64,
    /// Its latest runs and misses, oldest first (at most [`RECENT_RUNS`]).
    pub recent: Vec<Run>,
}

impl Schedule {
    /// The actor its runs carry out their action as.
    pub fn actor(&self) -> String {
        format!("schedule {} (set by {})", self.name, self.owner)
    }

    /// A run by its number.
    pub fn run(&self, n: u64) -> Option<&Run> {
        self.recent.iter().find(|r| r.n == n && r.missed.is_none())
    }

    /// The latest run that was made (not missed).
    pub fn last_run(&self) -> Option<&Run> {
        self.recent.iter().rev().find(|r| r.missed.is_none())
    }
}

/// Times that passed without a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    /// The last of them (the first is the run's `due`).
    pub last: Timestamp,
    /// How many.
    pub count: u64,
}

/// One run of a schedule, or times it missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Its number (0 for missed times).
    pub n: u64,
    /// The time it was due (the first missed time).
    pub due: Timestamp,
    /// When it was made or recorded.
    pub at: Timestamp,
    /// The event that recorded it.
    pub seq: u64,
    /// Missed times, not run.
    pub missed: Option<Missed>,
    /// Made more than [`LATE_AFTER_SECS`] after its time (nmtd was down at that time).
    pub late: bool,
    /// The machines its action targeted.
    pub targets: Vec<Mac>,
    /// Machines whose one-shot policy from an earlier run was still pending: not set again.
    pub carried: Vec<Mac>,
    /// Why its action failed (nothing was changed).
    pub error: Option<String>,
    /// Its outcome check, once made.
    pub check: Option<Check>,
}

impl Run {
    /// When its outcome is due to be checked, if it is checked at all.
    pub fn check_due(&self, expect: Option<u64>) -> Option<Timestamp> {
        if self.missed.is_some() || self.error.is_some() || self.check.is_some() {
            return None;
        }
        let secs = i64::try_from(expect?).ok()?;
        self.at
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .ok()
    }

    /// Every machine the run is about: its targets and those carried.
    pub fn machines(&self) -> impl Iterator<Item = &Mac> {
        self.targets.iter().chain(&self.carried)
    }
}

/// What a run's outcome check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// When it was made.
    pub at: Timestamp,
    /// Each machine's outcome.
    pub outcomes: Vec<MachineOutcome>,
}

impl Check {
    /// How many machines had this outcome.
    pub fn count(&self, kind: Outcome) -> usize {
        self.outcomes.iter().filter(|o| o.outcome == kind).count()
    }
}

/// What one machine did after a run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It booted the entry, and its install, restore or save reported success (for a policy
    /// with nothing to report, booting the entry is all).
    Done,
    /// It reported a failure.
    Failed,
    /// It booted (DHCP or a file fetch was seen) but never reported.
    NoReport,
    /// No DHCP exchange or boot file fetch was seen.
    NeverBooted,
}

impl Outcome {
    /// Every outcome, in the order they are listed.
    pub const ALL: [Outcome; 4] = [
        Outcome::Done,
        Outcome::Failed,
        Outcome::NoReport,
        Outcome::NeverBooted,
    ];

    /// How it is written: `done`, `failed`, `no-report`, `never-booted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::NoReport => "no-report",
            Outcome::NeverBooted => "never-booted",
        }
    }

    /// In words.
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::NoReport => "booted but never reported",
            Outcome::NeverBooted => "never booted",
        }
    }
}

/// One machine's outcome, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineOutcome {
    /// The machine.
    pub mac: Mac,
    /// Its outcome.
    pub outcome: Outcome,
    /// What was seen (untrusted text from a failure is kept as the imager said it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Its one-shot policy from the run is still pending (it will apply at its next boot).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once_pending: bool,
}

/// What a schedule's time rules say is to be done now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Run it for this time (late: nmtd was down at that time, but within the grace).
    Fire {
        /// The schedule.
        name: String,
        /// The time it was due.
        due: Timestamp,
        /// More than [`LATE_AFTER_SECS`] behind.
        late: bool,
    },
    /// These times passed without a run and are beyond the grace (or superseded by a later
    /// time that is run): record them, run nothing for them.
    Missed {
        /// The schedule.
        name: String,
        /// The first time missed.
        first: Timestamp,
        /// The last.
        last: Timestamp,
        /// How many.
        count: u64,
    },
    /// Check the outcome of this run.
    Check {
        /// The schedule.
        name: String,
        /// The run's number.
        run: u64,
    },
}

/// A zone database lookup: the caller's (the system's `zoneinfo`; tests may pass anything).
pub type Zones<'a> = &'a dyn Fn(&str) -> Option<TimeZone>;

/// The next time of `cron` in `tz` strictly after `after`.
pub fn next_after(cron: &Cron, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    let z = Zoned::new(after, tz.clone());
    cron.find_next_occurrence(&z, false)
        .ok()
        .map(|z| z.timestamp())
}

/// The last time of `cron` in `tz` at or before `at`.
fn last_at_or_before(cron: &Cron, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
    let z = Zoned::new(at, tz.clone());
    cron.find_previous_occurrence(&z, true)
        .ok()
        .map(|z| z.timestamp())
}

/// The times of `cron` in `tz` strictly after `after` and at or before `until`, oldest first
/// (counted up to a limit; the caller asks only for what it needs).
pub fn times_between(
    cron: &Cron,
    tz: &TimeZone,
    after: Timestamp,
    until: Timestamp,
    limit: usize,
) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let mut t = after;
    while out.len() < limit {
        match next_after(cron, tz, t) {
            Some(n) if n <= until => {
                out.push(n);
                t = n;
            }
            _ => break,
        }
    }
    out
}

/// The next time this schedule will run (none when paused or its zone or pattern is gone).
pub fn next_run(s: &Schedule, now: Timestamp, zones: Zones<'_>) -> Option<Timestamp> {
    if s.paused {
        return None;
    }
    let cron = parse_cron(&s.cron).ok()?;
    let tz = zones(&s.tz)?;
    next_after(&cron, &tz, s.since.max(now))
}

/// What every schedule's time rules say is to be done at `now`, in the order to do it:
/// checks of earlier runs first (so a run's outcome never includes the next run's doing),
/// then missed records, then runs, oldest due first.
pub fn due(state: &State, now: Timestamp, zones: Zones<'_>) -> Vec<Due> {
    let mut missed = Vec::new();
    let mut fire = Vec::new();
    let mut checks = Vec::new();
    for s in state.schedules() {
        for r in &s.recent {
            if r.check_due(s.expect).is_some_and(|t| t <= now) {
                checks.push(Due::Check {
                    name: s.name.clone(),
                    run: r.n,
                });
            }
        }
        if s.paused {
            continue;
        }
        let (Ok(cron), Some(tz)) = (parse_cron(&s.cron), zones(&s.tz)) else {
            continue;
        };
        let Some(latest) = last_at_or_before(&cron, &tz, now).filter(|t| *t > s.since) else {
            continue;
        };
        let behind = now.duration_since(latest).as_secs();
        let in_grace = behind <= i64::try_from(s.grace).unwrap_or(i64::MAX);
        // What passed unrun: everything before the latest time, and the latest too when it
        // is beyond the grace.
        let first = next_after(&cron, &tz, s.since);
        let last_missed = if in_grace {
            last_at_or_before(
                &cron,
                &tz,
                latest
                    .checked_sub(jiff::SignedDuration::from_secs(1))
                    .unwrap_or(latest),
            )
            .filter(|t| *t > s.since)
        } else {
            Some(latest)
        };
        if let (Some(first), Some(last)) = (first, last_missed)
            && first <= last
        {
            let count = times_between(&cron, &tz, s.since, last, MAX_COUNTED as usize).len() as u64;
            missed.push((
                first,
                Due::Missed {
                    name: s.name.clone(),
                    first,
                    last,
                    count: count.max(1),
                },
            ));
        }
        if in_grace {
            fire.push((
                latest,
                Due::Fire {
                    name: s.name.clone(),
                    due: latest,
                    late: behind > LATE_AFTER_SECS,
                },
            ));
        }
    }
    missed.sort_by_key(|(t, _)| *t);
    fire.sort_by_key(|(t, _)| *t);
    checks
        .into_iter()
        .chain(missed.into_iter().chain(fire).map(|(_, d)| d))
        .collect()
}

/// When something is next due after `now`: a schedule's next time or a run's check (none:
/// nothing is scheduled).
pub fn next_wake(state: &State, now: Timestamp, zones: Zones<'_>) -> Option<Timestamp> {
    state
        .schedules()
        .flat_map(|s| {
            let checks = s.recent.iter().filter_map(|r| r.check_due(s.expect));
            next_run(s, now, zones).into_iter().chain(checks)
        })
        .min()
}

/// The policies whose machines report an outcome: what "done" waits for.
fn reports(policy: &Policy) -> Option<&'static str> {
    match policy {
        Policy::Install { .. } => Some("install"),
        Policy::SaveImage { .. } => Some("image save"),
        Policy::RestoreImage { .. } => Some("image restore"),
        _ => None,
    }
}

/// One machine's outcome after a run: `policy` is what the run left it to boot, `events` are
/// the machine's events after the run (oldest first), and `once_pending` says whether its
/// one-shot from the run is still waiting for a boot.
pub fn classify(
    mac: Mac,
    policy: &Policy,
    events: &[Envelope],
    once_pending: bool,
) -> MachineOutcome {
    let mut dhcp = false;
    let mut entry = false;
    let mut result: Option<(Outcome, String)> = None;
    for env in events {
        match &env.event {
            Event::DhcpSeen { .. } | Event::FileServed { .. } => dhcp = true,
            Event::BootEntryUsed { .. } => entry = true,
            Event::InstallReported { device, .. } if matches!(policy, Policy::Install { .. }) => {
                result = Some((Outcome::Done, format!("installed on {device}")));
            }
            Event::ImageSaved { image, version, .. }
                if matches!(policy, Policy::SaveImage { .. }) =>
            {
                result = Some((Outcome::Done, format!("saved {image}@{version}")));
            }
            Event::ImageRestored { image, version, .. }
                if matches!(policy, Policy::RestoreImage { .. }) =>
            {
                result = Some((Outcome::Done, format!("restored {image}@{version}")));
            }
            Event::ImageFailed {
                action,
                image,
                version,
                reason,
                ..
            } if reports(policy).is_some() => {
                result = Some((
                    Outcome::Failed,
                    format!("{action} of {image}@{version} failed: {reason}"),
                ));
            }
            _ => {}
        }
    }
    let (outcome, detail) = match (reports(policy), result) {
        (Some(_), Some(r)) => r,
        (Some(what), None) if entry => (
            Outcome::NoReport,
            format!("booted its entry; no {what} report came"),
        ),
        (Some(what), None) if dhcp => (
            Outcome::NoReport,
            format!("DHCP seen, its entry never fetched; no {what} report came"),
        ),
        (None, _) if entry => (Outcome::Done, format!("booted its {policy} entry")),
        (None, _) if dhcp => (
            Outcome::NoReport,
            "DHCP seen, its entry never fetched".to_string(),
        ),
        _ => (
            Outcome::NeverBooted,
            "no DHCP exchange or boot file fetch seen".to_string(),
        ),
    };
    MachineOutcome {
        mac,
        outcome,
        detail,
        once_pending,
    }
}

/// The schedule commands of [`crate::decide`].
pub(crate) fn decide(state: &State, cmd: Command) -> Result<Vec<Event>, Refusal> {
    let need = |name: &str| {
        state.schedule(name).ok_or_else(|| Refusal::NoSuchSchedule {
            name: name.to_string(),
            known: state
                .schedules()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    };
    match cmd {
        Command::DefineSchedule {
            name,
            cron,
            tz,
            expect,
            grace,
            command,
            action,
            replace,
        } => {
            let name = crate::word(&name, "schedule")?;
            parse_cron(&cron).map_err(Refusal::Invalid)?;
            if tz.is_empty() || command.is_empty() || action.is_empty() {
                return Err(Refusal::Invalid(
                    "a schedule needs a time zone and a command".into(),
                ));
            }
            if !replace && state.schedule(&name).is_some() {
                return Err(Refusal::ScheduleExists(name));
            }
            Ok(vec![Event::ScheduleDefined {
                name,
                cron: cron.trim().to_string(),
                tz,
                expect,
                grace,
                command,
                action,
            }])
        }
        Command::RemoveSchedule { name } => {
            need(&name)?;
            Ok(vec![Event::ScheduleRemoved { name }])
        }
        Command::PauseSchedule { name } => {
            if need(&name)?.paused {
                return Err(Refusal::Invalid(format!(
                    "schedule {name} is already paused; `nmt schedule resume {name}` resumes it"
                )));
            }
            Ok(vec![Event::SchedulePaused { name }])
        }
        Command::ResumeSchedule { name } => {
            if !need(&name)?.paused {
                return Err(Refusal::Invalid(format!("schedule {name} is not paused")));
            }
            Ok(vec![Event::ScheduleResumed { name }])
        }
        Command::RecordScheduleRun {
            name,
            due,
            late,
            targets,
            carried,
            error,
        } => {
            let s = need(&name)?;
            if due <= s.since {
                return Err(Refusal::Invalid(format!(
                    "schedule {name}'s time {due} was already run or recorded"
                )));
            }
            Ok(vec![Event::ScheduleRan {
                name,
                run: s.runs + 1,
                due,
                late,
                targets,
                carried,
                error,
            }])
        }
        Command::RecordScheduleMissed {
            name,
            first,
            last,
            count,
        } => {
            let s = need(&name)?;
            if first <= s.since || last < first {
                return Err(Refusal::Invalid(format!(
                    "schedule {name}'s missed times were already recorded"
                )));
            }
            Ok(vec![Event::ScheduleMissed {
                name,
                first,
                last,
                count,
            }])
        }
        Command::RecordScheduleCheck {
            name,
            run,
            outcomes,
        } => {
            let s = need(&name)?;
            match s.run(run) {
                Some(r) if r.check.is_none() => Ok(vec![Event::ScheduleChecked {
                    name,
                    run,
                    outcomes,
                }]),
                Some(_) => Err(Refusal::Invalid(format!(
                    "run {run} of schedule {name} was already checked"
                ))),
                None => Err(Refusal::Invalid(format!(
                    "schedule {name} has no run {run} to check"
                ))),
            }
        }
        _ => unreachable!("only schedule commands come here"),
    }
}

/// Fold a schedule event into the schedules (each behind an `Arc`, so that a clone of the
/// state, made at every commit, copies a pointer per schedule and not its runs).
pub(crate) fn fold(schedules: &mut BTreeMap<String, Arc<Schedule>>, env: &Envelope) {
    let at = env.observed_at;
    let push = |s: &mut Schedule, run: Run| {
        s.recent.push(run);
        if s.recent.len() > RECENT_RUNS {
            let extra = s.recent.len() - RECENT_RUNS;
            s.recent.drain(..extra);
        }
    };
    match &env.event {
        Event::ScheduleDefined {
            name,
            cron,
            tz,
            expect,
            grace,
            command,
            action,
        } => {
            let old = schedules.remove(name).map(Arc::unwrap_or_clone);
            schedules.insert(
                name.clone(),
                Arc::new(Schedule {
                    name: name.clone(),
                    cron: cron.clone(),
                    tz: tz.clone(),
                    expect: *expect,
                    grace: *grace,
                    command: command.clone(),
                    action: action.clone(),
                    owner: env.actor.clone(),
                    paused: old.as_ref().is_some_and(|o| o.paused),
                    defined: at,
                    since: at,
                    runs: old.as_ref().map_or(0, |o| o.runs),
                    recent: old.map(|o| o.recent).unwrap_or_default(),
                }),
            );
        }
        Event::ScheduleRemoved { name } => {
            schedules.remove(name);
        }
        Event::SchedulePaused { name } => {
            if let Some(s) = schedules.get_mut(name).map(Arc::make_mut) {
                s.paused = true;
            }
        }
        Event::ScheduleResumed { name } => {
            if let Some(s) = schedules.get_mut(name).map(Arc::make_mut) {
                s.paused = false;
                s.since = s.since.max(at);
            }
        }
        Event::ScheduleRan {
            name,
            run,
            due,
            late,
            targets,
            carried,
            error,
        } => {
            if let Some(s) = schedules.get_mut(name).map(Arc::make_mut) {
                s.runs = s.runs.max(*run);
                s.since = s.since.max(*due);
                push(
                    s,
                    Run {
                        n: *run,
                        due: *due,
                        at,
                        seq: env.seq,
                        missed: None,
                        late: *late,
                        targets: targets.clone(),
                        carried: carried.clone(),
                        error: error.clone(),
                        check: None,
                    },
                );
            }
        }
        Event::ScheduleMissed {
            name,
            first,
            last,
            count,
        } => {
            if let Some(s) = schedules.get_mut(name).map(Arc::make_mut) {
                s.since = s.since.max(*last);
                push(
                    s,
                    Run {
                        n: 0,
                        due: *first,
                        at,
                        seq: env.seq,
                        missed: Some(Missed {
                            last: *last,
                            count: *count,
                        }),
                        late: false,
                        targets: Vec::new(),
                        carried: Vec::new(),
                        error: None,
                        check: None,
                    },
                );
            }
        }
        Event::ScheduleChecked {
            name,
            run,
            outcomes,
        } => {
            if let Some(r) = schedules.get_mut(name).map(Arc::make_mut).and_then(|s| {
                s.recent
                    .iter_mut()
                    .find(|r| r.n == *run && r.missed.is_none())
            }) {
                r.check = Some(Check {
                    at,
                    outcomes: outcomes.clone(),
                });
            }
        }
        _ => {}
    }
}

/// The machines a schedule event is about, for their histories.
pub(crate) fn machines(ev: &Event) -> Option<Vec<Mac>> {
    match ev {
        Event::ScheduleRan {
            targets, carried, ..
        } => {
            let all: BTreeSet<Mac> = targets.iter().chain(carried).copied().collect();
            Some(all.into_iter().collect())
        }
        Event::ScheduleChecked { outcomes, .. } => Some(outcomes.iter().map(|o| o.mac).collect()),
        _ => None,
    }
}

/// Outcome counts in words: `2 done, 1 never booted` (`no machines` for none).
pub fn counts_words(outcomes: &[MachineOutcome]) -> String {
    let parts: Vec<String> = Outcome::ALL
        .iter()
        .filter_map(|k| {
            let n = outcomes.iter().filter(|o| o.outcome == *k).count();
            (n > 0).then(|| format!("{n} {}", k.words()))
        })
        .collect();
    if parts.is_empty() {
        "no machines".into()
    } else {
        parts.join(", ")
    }
}

/// One machine's outcome in words: `never booted (no DHCP …); its one-shot is still pending`.
pub fn outcome_words(o: &MachineOutcome) -> String {
    format!(
        "{}{}{}",
        o.outcome.words(),
        if o.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", o.detail)
        },
        if o.once_pending {
            "; its one-shot is still pending"
        } else {
            ""
        }
    )
}

/// A number of seconds as admins write durations: `90s`, `45m`, `2h`, `1h30m`, `2d`.
pub fn duration_words(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// Whether a time zone name is one the zone database knows (for a refusal's hint).
pub fn zone_hint() -> &'static str {
    "give an IANA time zone such as Europe/Berlin, America/New_York or UTC \
     (`timedatectl list-timezones` lists them)"
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                format!("{s:?} is not an outcome (done, failed, no-report, never-booted)")
            })
    }
}

#[cfg(test)]
mod tests {
    //! The time rules on a fake clock: every "now" is given, none is read.

    use super::*;
    use jiff::civil::date;

    fn zones(name: &str) -> Option<TimeZone> {
        TimeZone::get(name).ok()
    }

    fn at(tz: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        date(y, mo, d)
            .at(h, mi, 0, 0)
            .to_zoned(TimeZone::get(tz).unwrap())
            .unwrap()
            .timestamp()
    }

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn apply(state: &mut State, event: Event, when: Timestamp) {
        let env = Envelope {
            seq: state.last_seq() + 1,
            v: crate::SCHEMA_VERSION,
            recorded_at: when,
            observed_at: when,
            actor: "rich".into(),
            source: None,
            event,
        };
        state.apply(&env);
    }

    fn define(cron: &str, tz: &str, grace: u64, expect: Option<u64>, when: Timestamp) -> State {
        let mut state = State::default();
        let events = crate::decide(
            &state,
            Command::DefineSchedule {
                name: "nightly".into(),
                cron: cron.into(),
                tz: tz.into(),
                expect,
                grace,
                command: vec!["policy".into(), "@lab".into(), "localboot".into()],
                action: "{}".into(),
                replace: false,
            },
        )
        .unwrap();
        for e in events {
            apply(&mut state, e, when);
        }
        state
    }

    /// Do at `now` what is due, as nmtd would (a run targets nothing here), and say what.
    fn act(state: &mut State, now: Timestamp) -> Vec<Due> {
        let work = due(state, now, &zones);
        for d in &work {
            let cmd = match d.clone() {
                Due::Fire { name, due, late } => Command::RecordScheduleRun {
                    name,
                    due,
                    late,
                    targets: Vec::new(),
                    carried: Vec::new(),
                    error: None,
                },
                Due::Missed {
                    name,
                    first,
                    last,
                    count,
                } => Command::RecordScheduleMissed {
                    name,
                    first,
                    last,
                    count,
                },
                Due::Check { name, run } => Command::RecordScheduleCheck {
                    name,
                    run,
                    outcomes: Vec::new(),
                },
            };
            for e in crate::decide(state, cmd).unwrap() {
                apply(state, e, now);
            }
        }
        work
    }

    /// A daemon that never sleeps past a wake-up, from `from` to `to`: every run it makes.
    fn live(state: &mut State, from: Timestamp, to: Timestamp) -> Vec<Timestamp> {
        let mut fired = Vec::new();
        let mut now = from;
        while let Some(w) = next_wake(state, now, &zones).filter(|w| *w <= to) {
            now = w;
            for d in act(state, now) {
                match d {
                    Due::Fire { due, late, .. } => {
                        assert!(!late, "a live daemon is never late");
                        assert_eq!(due, now);
                        fired.push(due);
                    }
                    Due::Missed { .. } => panic!("a live daemon misses nothing"),
                    Due::Check { .. } => {}
                }
            }
        }
        fired
    }

    #[test]
    fn berlin_spring_forward_runs_the_missing_0230_once_at_0300() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that night.
        let tz = "Europe/Berlin";
        let mut st = define("30 2 * * *", tz, 1800, None, at(tz, 2026, 3, 27, 12, 0));
        let fired = live(
            &mut st,
            at(tz, 2026, 3, 27, 12, 0),
            at(tz, 2026, 3, 31, 12, 0),
        );
        assert_eq!(
            fired,
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // 03:00 CEST, the first instant after the gap
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
                utc("2026-03-31T00:30:00Z"),
            ]
        );
    }

    #[test]
    fn berlin_fall_back_runs_the_twice_happening_0230_once() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens at 00:30Z and at 01:30Z.
        let tz = "Europe/Berlin";
        let mut st = define("30 2 * * *", tz, 1800, None, at(tz, 2026, 10, 24, 12, 0));
        let fired = live(
            &mut st,
            at(tz, 2026, 10, 24, 12, 0),
            at(tz, 2026, 10, 26, 12, 0),
        );
        assert_eq!(
            fired,
            vec![
                utc("2026-10-25T00:30:00Z"), // the first 02:30 (CEST)
                utc("2026-10-26T01:30:00Z"), // 02:30 CET the next night
            ]
        );
        // And not at 01:30Z on the 25th, the second 02:30.
        assert!(!fired.contains(&utc("2026-10-25T01:30:00Z")));
    }

    #[test]
    fn new_york_spring_forward_and_fall_back() {
        let tz = "America/New_York";
        // 2026-03-08: 02:00 EST becomes 03:00 EDT.
        let mut st = define("30 2 * * *", tz, 1800, None, at(tz, 2026, 3, 7, 12, 0));
        let fired = live(
            &mut st,
            at(tz, 2026, 3, 7, 12, 0),
            at(tz, 2026, 3, 9, 12, 0),
        );
        assert_eq!(
            fired,
            vec![
                utc("2026-03-08T07:00:00Z"), // 03:00 EDT, right after the gap
                utc("2026-03-09T06:30:00Z"), // 02:30 EDT
            ]
        );
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens at 05:30Z and 06:30Z.
        let mut st = define("30 1 * * *", tz, 1800, None, at(tz, 2026, 10, 31, 12, 0));
        let fired = live(
            &mut st,
            at(tz, 2026, 10, 31, 12, 0),
            at(tz, 2026, 11, 2, 12, 0),
        );
        assert_eq!(
            fired,
            vec![
                utc("2026-11-01T05:30:00Z"), // the first 01:30 (EDT), once
                utc("2026-11-02T06:30:00Z"), // 01:30 EST
            ]
        );
    }

    #[test]
    fn a_run_missed_within_the_grace_runs_late_once() {
        let tz = "Europe/Berlin";
        let mut st = define("0 2 * * *", tz, 1800, None, at(tz, 2026, 12, 1, 12, 0));
        // nmtd was down from 01:00 to 02:20.
        assert_eq!(
            live(
                &mut st,
                at(tz, 2026, 12, 1, 12, 0),
                at(tz, 2026, 12, 2, 1, 0)
            ),
            vec![]
        );
        let work = act(&mut st, at(tz, 2026, 12, 2, 2, 20));
        assert_eq!(
            work,
            vec![Due::Fire {
                name: "nightly".into(),
                due: at(tz, 2026, 12, 2, 2, 0),
                late: true,
            }]
        );
        // Once: the same moment again has nothing due.
        assert_eq!(act(&mut st, at(tz, 2026, 12, 2, 2, 21)), vec![]);
        let run = st.schedule("nightly").unwrap().last_run().unwrap();
        assert!(run.late);
        assert_eq!(run.n, 1);
        // The next night is on time again.
        assert_eq!(
            live(
                &mut st,
                at(tz, 2026, 12, 2, 2, 21),
                at(tz, 2026, 12, 3, 12, 0)
            ),
            vec![at(tz, 2026, 12, 3, 2, 0)]
        );
    }

    #[test]
    fn a_run_missed_beyond_the_grace_is_recorded_and_not_run() {
        let tz = "America/New_York";
        let mut st = define("0 2 * * *", tz, 1800, None, at(tz, 2026, 12, 1, 12, 0));
        // nmtd was down from 01:00 to 02:45: 45 minutes late is beyond 30.
        let work = act(&mut st, at(tz, 2026, 12, 2, 2, 45));
        assert_eq!(
            work,
            vec![Due::Missed {
                name: "nightly".into(),
                first: at(tz, 2026, 12, 2, 2, 0),
                last: at(tz, 2026, 12, 2, 2, 0),
                count: 1,
            }]
        );
        let s = st.schedule("nightly").unwrap();
        assert_eq!(s.runs, 0, "nothing was run");
        assert!(s.recent[0].missed.is_some());
        assert_eq!(act(&mut st, at(tz, 2026, 12, 2, 3, 0)), vec![]);
    }

    #[test]
    fn a_long_outage_records_the_older_runs_missed_and_runs_the_latest_within_the_grace() {
        let tz = "Europe/Berlin";
        let mut st = define("0 2 * * *", tz, 3600, None, at(tz, 2026, 12, 1, 12, 0));
        // Down from the 1st at noon to the 5th at 02:10: the 2nd, 3rd and 4th are missed,
        // the 5th runs late.
        let work = act(&mut st, at(tz, 2026, 12, 5, 2, 10));
        assert_eq!(
            work,
            vec![
                Due::Missed {
                    name: "nightly".into(),
                    first: at(tz, 2026, 12, 2, 2, 0),
                    last: at(tz, 2026, 12, 4, 2, 0),
                    count: 3,
                },
                Due::Fire {
                    name: "nightly".into(),
                    due: at(tz, 2026, 12, 5, 2, 0),
                    late: true,
                },
            ]
        );
        let s = st.schedule("nightly").unwrap();
        assert_eq!((s.runs, s.recent.len()), (1, 2));
    }

    #[test]
    fn a_paused_schedule_skips_its_times_and_resumes_from_the_moment_it_is_resumed() {
        let tz = "Europe/Berlin";
        let mut st = define("0 2 * * *", tz, 3600, None, at(tz, 2026, 12, 1, 12, 0));
        apply(
            &mut st,
            Event::SchedulePaused {
                name: "nightly".into(),
            },
            at(tz, 2026, 12, 1, 13, 0),
        );
        assert_eq!(next_wake(&st, at(tz, 2026, 12, 1, 13, 0), &zones), None);
        assert_eq!(act(&mut st, at(tz, 2026, 12, 2, 2, 10)), vec![]);
        // Resumed at 02:30, within what would have been the grace: 02:00 is not run, nor
        // recorded missed; it was paused then.
        apply(
            &mut st,
            Event::ScheduleResumed {
                name: "nightly".into(),
            },
            at(tz, 2026, 12, 2, 2, 30),
        );
        assert_eq!(act(&mut st, at(tz, 2026, 12, 2, 2, 31)), vec![]);
        assert_eq!(
            next_wake(&st, at(tz, 2026, 12, 2, 2, 31), &zones),
            Some(at(tz, 2026, 12, 3, 2, 0))
        );
        // Resumed before a time: that time runs.
        apply(
            &mut st,
            Event::SchedulePaused {
                name: "nightly".into(),
            },
            at(tz, 2026, 12, 2, 3, 0),
        );
        apply(
            &mut st,
            Event::ScheduleResumed {
                name: "nightly".into(),
            },
            at(tz, 2026, 12, 3, 1, 0),
        );
        assert_eq!(
            live(
                &mut st,
                at(tz, 2026, 12, 3, 1, 0),
                at(tz, 2026, 12, 3, 12, 0)
            ),
            vec![at(tz, 2026, 12, 3, 2, 0)]
        );
        assert!(
            crate::decide(
                &st,
                Command::ResumeSchedule {
                    name: "nightly".into()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn a_run_is_checked_once_its_expected_duration_is_up() {
        let tz = "UTC";
        let mut st = define(
            "0 2 * * *",
            tz,
            1800,
            Some(1800),
            at(tz, 2026, 12, 1, 12, 0),
        );
        assert_eq!(
            live(
                &mut st,
                at(tz, 2026, 12, 1, 12, 0),
                at(tz, 2026, 12, 2, 2, 0)
            ),
            vec![at(tz, 2026, 12, 2, 2, 0)]
        );
        assert_eq!(
            next_wake(&st, at(tz, 2026, 12, 2, 2, 0), &zones),
            Some(at(tz, 2026, 12, 2, 2, 30))
        );
        assert_eq!(act(&mut st, at(tz, 2026, 12, 2, 2, 29)), vec![]);
        assert_eq!(
            act(&mut st, at(tz, 2026, 12, 2, 2, 30)),
            vec![Due::Check {
                name: "nightly".into(),
                run: 1
            }]
        );
        assert!(st.schedule("nightly").unwrap().recent[0].check.is_some());
        assert_eq!(act(&mut st, at(tz, 2026, 12, 2, 2, 31)), vec![]);
    }

    #[test]
    fn cron_patterns_are_five_fields_or_a_nickname() {
        for good in [
            "0 2 * * *",
            "0 18 * * 1-5",
            "*/15 * * * mon-fri",
            "@daily",
            "0 7 1 jan *",
        ] {
            assert!(parse_cron(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "0 2 * *",
            "0 0 2 * * *",
            "61 * * * *",
            "0 2 * * * 2027",
            "x y z a b",
        ] {
            assert!(parse_cron(bad).is_err(), "{bad:?}");
        }
    }

    fn env(seq: u64, event: Event) -> Envelope {
        Envelope {
            seq,
            v: 1,
            recorded_at: Timestamp::UNIX_EPOCH,
            observed_at: Timestamp::UNIX_EPOCH,
            actor: "x".into(),
            source: None,
            event,
        }
    }

    #[test]
    fn outcomes_follow_what_the_machine_did() {
        let mac: Mac = "52:54:00:00:00:07".parse().unwrap();
        let restore = Policy::RestoreImage {
            image: "lab".into(),
        };
        let dhcp = env(
            1,
            Event::DhcpSeen {
                mac,
                kind: "ack".into(),
                ip: None,
                hostname: None,
                arch: None,
                vendor_class: None,
                server: "dnsmasq".into(),
                via: None,
                note: None,
            },
        );
        let entry = env(
            2,
            Event::BootEntryUsed {
                mac,
                file: "pxelinux.cfg/01-52-54-00-00-00-07".into(),
                ip: None,
            },
        );
        let restored = env(
            3,
            Event::ImageRestored {
                mac,
                image: "lab".into(),
                version: 2,
                verified: vec![],
            },
        );
        let failed = env(
            3,
            Event::ImageFailed {
                mac,
                action: crate::ImageAction::Restore,
                image: "lab".into(),
                version: 2,
                reason: "disk too small".into(),
            },
        );
        let o = |p: &Policy, evs: &[Envelope]| classify(mac, p, evs, false).outcome;
        assert_eq!(o(&restore, &[]), Outcome::NeverBooted);
        assert_eq!(o(&restore, std::slice::from_ref(&dhcp)), Outcome::NoReport);
        assert_eq!(
            o(&restore, &[dhcp.clone(), entry.clone()]),
            Outcome::NoReport
        );
        assert_eq!(
            o(&restore, &[dhcp.clone(), entry.clone(), restored.clone()]),
            Outcome::Done
        );
        assert_eq!(
            o(&restore, &[dhcp.clone(), entry.clone(), failed.clone()]),
            Outcome::Failed
        );
        // A failure then a success at the next boot: done.
        assert_eq!(
            o(&restore, &[failed.clone(), restored.clone()]),
            Outcome::Done
        );
        // An install waits for its report; ltsp only for its entry.
        let install = Policy::Install {
            profile: "debian".into(),
        };
        assert_eq!(o(&install, std::slice::from_ref(&entry)), Outcome::NoReport);
        assert_eq!(
            o(&Policy::Ltsp, std::slice::from_ref(&entry)),
            Outcome::Done
        );
        assert_eq!(o(&Policy::Ltsp, &[dhcp]), Outcome::NoReport);
        let d = classify(mac, &restore, &[failed], true);
        assert!(d.detail.contains("disk too small") && d.once_pending);
    }
}
