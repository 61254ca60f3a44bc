//! Schedules in the application layer: defining one from a command line's action, running
//! one (its action performed as its owner, with the owner's rights, and the run recorded in
//! the same commit), recording missed times, and checking a run's outcome from the log.
//!
//! The time rules are the domain's ([`nmt_projections::schedules_due`]); this module only
//! carries out what they say is due. Only the live daemon calls [`tick`]: replay and journal
//! import fold the records of runs and never make one.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, bail};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use nmt_projections::{
    Command, Due, Mac, MachineOutcome, Outcome, Policy, Run, Schedule, Source, State, classify,
};
use serde::{Deserialize, Serialize};

use super::access::{AccessConfig, Caller};
use super::action::Action;
use crate::Engine;

/// How late a run may be made by default (`--grace`): half an hour.
pub const DEFAULT_GRACE_SECS: u64 = 30 * 60;

/// The zone database: the system's (`/usr/share/zoneinfo`).
pub fn zone(name: &str) -> Option<TimeZone> {
    jiff::tz::db().get(name).ok()
}

/// The caller's own time zone, as an IANA name (`UTC` when the system has none).
pub fn local_zone() -> String {
    TimeZone::system()
        .iana_name()
        .map(str::to_string)
        .unwrap_or_else(|| "UTC".to_string())
}

/// A duration as admins write it: `45m`, `2h`, `1h30m`, `90s`, `1d`, `2 hours`.
pub fn parse_duration(what: &str, s: &str) -> Result<u64> {
    let d: jiff::SignedDuration = s
        .trim()
        .parse()
        .or_else(|_| {
            s.trim()
                .parse::<jiff::Span>()
                .map_err(|e| anyhow!("{e}"))
                .and_then(|sp| {
                    sp.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                        .map_err(|e| anyhow!("{e}"))
                })
        })
        .map_err(|_| anyhow!("{what} {s:?} is not a duration; write e.g. 45m, 2h, 1h30m or 90s"))?;
    if d.is_negative() {
        bail!("{what} {s:?} is negative; give a duration such as 45m");
    }
    Ok(d.as_secs() as u64)
}

/// The right a schedule's runs need: its action's, judged for its owner when it runs.
pub fn owner_caller(owner: &str) -> Caller {
    let uid = nix::unistd::User::from_name(owner)
        .ok()
        .flatten()
        .map_or(u32::MAX, |u| u.uid.as_raw());
    Caller {
        uid,
        name: owner.to_string(),
    }
}

/// The command that defines a schedule (the caller has checked the action can be scheduled).
#[allow(clippy::too_many_arguments)]
pub(crate) fn define(
    name: String,
    cron: String,
    tz: Option<String>,
    expect: Option<&str>,
    grace: Option<&str>,
    command: Vec<String>,
    action: &Action,
    replace: bool,
) -> Result<Command> {
    if !action.schedulable() {
        bail!(
            "`nmt {}` cannot be scheduled: a schedule runs a command that changes machines or \
             their boot policies (policy, assign, rootdev, name, group, installed, …)",
            command.join(" ")
        );
    }
    let tz = tz.unwrap_or_else(local_zone);
    if zone(&tz).is_none() {
        bail!(
            "{tz:?} is not a time zone; {}",
            nmt_projections::zone_hint()
        );
    }
    Ok(Command::DefineSchedule {
        name,
        cron,
        tz,
        expect: expect.map(|e| parse_duration("--expect", e)).transpose()?,
        grace: grace
            .map(|g| parse_duration("--grace", g))
            .transpose()?
            .unwrap_or(DEFAULT_GRACE_SECS),
        command,
        action: serde_json::to_string(action).context("while encoding the action")?,
        replace,
    })
}

/// What [`tick`] did, for nmtd's log.
#[derive(Debug, Default)]
pub struct Ticked {
    /// One line per thing done.
    pub done: Vec<String>,
}

/// Do what the schedules' time rules say is due at `now`: record missed times, run what is
/// due, check runs whose expected duration is up. Each is its own commit; a failure of one
/// is recorded (a run's) or reported, and the others go on.
pub fn tick(engine: &mut Engine, access: &AccessConfig, now: Timestamp) -> Ticked {
    let mut out = Ticked::default();
    for due in nmt_projections::schedules_due(engine.state(), now, &zone) {
        let line = match due {
            Due::Missed {
                name,
                first,
                last,
                count,
            } => engine
                .execute_all(
                    vec![Command::RecordScheduleMissed {
                        name: name.clone(),
                        first,
                        last,
                        count,
                    }],
                    "nmtd",
                    source(&name),
                    now,
                )
                .map(|_| format!("schedule {name}: {count} run(s) from {first} missed (not run)")),
            Due::Fire { name, due, late } => fire(engine, access, &name, due, late, now),
            Due::Check { name, run } => check(engine, &name, run, now),
        };
        out.done
            .push(line.unwrap_or_else(|e| format!("schedule: {e:#}")));
    }
    out
}

fn source(name: &str) -> Source {
    Source::Schedule {
        name: name.to_string(),
    }
}

/// Run schedule `name` for its time `due`: its action is performed as
/// `schedule NAME (set by OWNER)` with the owner's rights, and the run is recorded with it in
/// one commit. A refused or failed action is recorded as the run's error, nothing else.
pub fn fire(
    engine: &mut Engine,
    access: &AccessConfig,
    name: &str,
    due: Timestamp,
    late: bool,
    now: Timestamp,
) -> Result<String> {
    let s = engine
        .state()
        .schedule(name)
        .cloned()
        .with_context(|| format!("no schedule {name}"))?;
    let actor = s.actor();
    let record =
        |targets: Vec<Mac>, carried: Vec<Mac>, error: Option<String>| Command::RecordScheduleRun {
            name: name.to_string(),
            due,
            late,
            targets,
            carried,
            error,
        };
    let planned = plan_run(engine, access, &s);
    let (cmds, targets, carried) = match planned {
        Ok(p) => p,
        Err(e) => {
            let why = format!("{e:#}");
            engine.execute_all(
                vec![record(Vec::new(), Vec::new(), Some(why.clone()))],
                &actor,
                source(name),
                now,
            )?;
            return Ok(format!(
                "schedule {name}: run failed, nothing changed: {why}"
            ));
        }
    };
    let n = targets.len();
    let c = carried.len();
    // A power action: the run is recorded with its targets, then the machines' BMCs are
    // asked, and each result recorded as the run's.
    if let Ok(Action::Power { op, range }) = serde_json::from_str::<Action>(&s.action) {
        engine.execute_all(
            vec![record(targets, carried, None)],
            &actor,
            source(name),
            now,
        )?;
        let results = super::power::perform(engine, op, &range, &actor, source(name))?;
        let failed = results.iter().filter(|r| !r.ok).count();
        return Ok(format!(
            "schedule {name}: ran `nmt {}`{} ({n} targeted, {failed} failed)",
            s.command.join(" "),
            if late { " late" } else { "" },
        ));
    }
    let mut all = cmds;
    all.push(record(targets, carried, None));
    match engine.execute_all(all, &actor, source(name), now) {
        Ok(_) => Ok(format!(
            "schedule {name}: ran `nmt {}`{} ({n} targeted{})",
            s.command.join(" "),
            if late { " late" } else { "" },
            if c > 0 {
                format!(", {c} with its one-shot still pending")
            } else {
                String::new()
            }
        )),
        Err(e) if engine.state().schedule(name).is_none_or(|x| x.since < due) => {
            // Refused before anything was appended: record why.
            let why = format!("{e:#}");
            engine.execute_all(
                vec![record(Vec::new(), Vec::new(), Some(why.clone()))],
                &actor,
                source(name),
                now,
            )?;
            Ok(format!(
                "schedule {name}: run failed, nothing changed: {why}"
            ))
        }
        Err(e) => Err(e),
    }
}

/// A run's commands, the machines it targets, and those whose one-shot from an earlier run
/// is still pending (not set again).
fn plan_run(
    engine: &Engine,
    access: &AccessConfig,
    s: &Schedule,
) -> Result<(Vec<Command>, Vec<Mac>, Vec<Mac>)> {
    let action: Action = serde_json::from_str(&s.action).map_err(|e| {
        anyhow!(
            "this release cannot read the schedule's action ({e}); define it again with `nmt \
             schedule add {} --replace …`",
            s.name
        )
    })?;
    access
        .allows(&owner_caller(&s.owner), &action.right())
        .map_err(|why| anyhow!("{} may no longer do this: {why}", s.owner))?;
    let targets = match action.range() {
        Some(r) => engine.resolve(r)?,
        None => Vec::new(),
    };
    if let Action::Policy {
        policy, once: true, ..
    } = &action
    {
        // A one-shot still pending from an earlier run is not set again.
        let p: Policy = policy.parse()?;
        let st = engine.state();
        let (carried, fresh): (Vec<Mac>, Vec<Mac>) = targets.iter().partition(|mac| {
            st.machine(mac)
                .and_then(|m| m.policy.as_ref())
                .is_some_and(|o| o.once && o.policy == p)
        });
        let cmds = if fresh.is_empty() {
            Vec::new()
        } else {
            vec![Command::SetPolicy {
                macs: fresh.clone(),
                policy: Some(p),
                once: true,
            }]
        };
        return Ok((cmds, fresh, carried));
    }
    if let Action::Power { .. } = action {
        // Carried out by `fire` itself: the BMCs are asked after the run is recorded.
        return Ok((Vec::new(), targets, Vec::new()));
    }
    let cmds = super::perform::commands_of(engine, &action)?
        .ok_or_else(|| anyhow!("`nmt {}` cannot be scheduled", s.command.join(" ")))?;
    Ok((cmds, targets, Vec::new()))
}

/// Check run `run` of schedule `name`: for each machine it targeted, what it did since.
pub fn check(engine: &mut Engine, name: &str, run: u64, now: Timestamp) -> Result<String> {
    let s = engine
        .state()
        .schedule(name)
        .cloned()
        .with_context(|| format!("no schedule {name}"))?;
    let r = s
        .run(run)
        .cloned()
        .with_context(|| format!("schedule {name} has no run {run}"))?;
    let outcomes = outcomes(engine, &r)?;
    let counts = nmt_projections::counts_words(&outcomes);
    engine.execute_all(
        vec![Command::RecordScheduleCheck {
            name: name.to_string(),
            run,
            outcomes,
        }],
        "nmtd",
        source(name),
        now,
    )?;
    Ok(format!("schedule {name}: run {run} checked: {counts}"))
}

/// Each machine's outcome since run `r`: the policy the run left it, and its events after.
fn outcomes(engine: &Engine, r: &Run) -> Result<Vec<MachineOutcome>> {
    let after = engine.state_through(r.seq)?;
    let now = engine.state();
    let mut out = Vec::new();
    for mac in r.machines().copied().collect::<BTreeSet<Mac>>() {
        let policy = after
            .machine(&mac)
            .map(|m| after.effective_policy(m).0)
            .unwrap_or(Policy::LocalBoot);
        let events: Vec<_> = engine
            .history(&mac, None, None)?
            .into_iter()
            .filter(|e| e.seq > r.seq)
            .collect();
        let pending = once_pending(now, &mac, &after);
        out.push(classify(mac, &policy, &events, pending));
    }
    Ok(out)
}

/// Whether the one-shot a run set on `mac` (in `after`) is still waiting in `now`.
fn once_pending(now: &State, mac: &Mac, after: &State) -> bool {
    let set = after
        .machine(mac)
        .and_then(|m| m.policy.as_ref())
        .filter(|o| o.once);
    let still = now
        .machine(mac)
        .and_then(|m| m.policy.as_ref())
        .filter(|o| o.once);
    matches!((set, still), (Some(a), Some(b)) if a.policy == b.policy)
        && now.machine(mac).is_some_and(|m| m.booting.is_none())
}

/// "; next run …" for a schedule just defined, in its own zone.
pub(crate) fn next_words(done: &crate::Executed) -> String {
    let Some(nmt_projections::Event::ScheduleDefined { cron, tz, .. }) =
        done.events.last().map(|e| &e.event)
    else {
        return String::new();
    };
    let (Ok(c), Some(z)) = (nmt_projections::parse_cron(cron), zone(tz)) else {
        return String::new();
    };
    match nmt_projections::next_after(&c, &z, Timestamp::now()) {
        Some(t) => format!(
            "\nnext run: {}",
            t.to_zoned(z).strftime("%Y-%m-%d %H:%M %Z (%:z)")
        ),
        None => "\nit has no next run (the pattern names no time that comes)".into(),
    }
}

/// A schedule as `nmt schedule list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleView {
    /// Its name.
    pub name: String,
    /// Its cron pattern.
    pub cron: String,
    /// Its time zone.
    pub tz: String,
    /// The command it runs.
    pub command: Vec<String>,
    /// Who defined it.
    pub owner: String,
    /// Paused.
    pub paused: bool,
    /// Its next run (none when paused).
    pub next: Option<Timestamp>,
    /// The outcome check's delay (seconds).
    pub expect: Option<u64>,
    /// How late a run may be made (seconds).
    pub grace: u64,
    /// Its runs so far.
    pub runs: u64,
    /// Its latest run.
    pub last: Option<RunView>,
}

/// One run (or missed times) as `nmt schedule runs` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
    /// The run's number (0: missed times).
    pub run: u64,
    /// When it was due (the first missed time).
    pub due: Timestamp,
    /// When it was made or recorded.
    pub at: Timestamp,
    /// Missed: how many times, up to when; not run.
    pub missed: Option<nmt_projections::Missed>,
    /// Made late, within the grace.
    pub late: bool,
    /// Why its action failed.
    pub error: Option<String>,
    /// How many machines it targeted (with those carried).
    pub targeted: usize,
    /// Machines whose one-shot from an earlier run was still pending.
    pub carried: Vec<MachineOutcomeView>,
    /// Its check: when, how many of each outcome.
    pub checked: Option<Timestamp>,
    /// Outcome counts (`done`, `failed`, `no-report`, `never-booted`).
    pub counts: BTreeMap<String, usize>,
    /// The machines that were not done, with what was seen.
    pub not_done: Vec<MachineOutcomeView>,
}

/// A machine in a run's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineOutcomeView {
    /// The machine.
    pub mac: Mac,
    /// Its name.
    pub name: Option<String>,
    /// Its outcome (none for a carried machine before the check).
    pub outcome: Option<Outcome>,
    /// What was seen.
    pub detail: String,
    /// Its one-shot policy is still pending.
    pub once_pending: bool,
}

/// Schedules as `nmt schedule list` shows them.
pub fn views(st: &State, now: Timestamp) -> Vec<ScheduleView> {
    st.schedules()
        .map(|s| ScheduleView {
            name: s.name.clone(),
            cron: s.cron.clone(),
            tz: s.tz.clone(),
            command: s.command.clone(),
            owner: s.owner.clone(),
            paused: s.paused,
            next: nmt_projections::next_run(s, now, &zone),
            expect: s.expect,
            grace: s.grace,
            runs: s.runs,
            last: s.last_run().map(|r| run_view(st, r)),
        })
        .collect()
}

/// A run as shown.
pub fn run_view(st: &State, r: &Run) -> RunView {
    let name = |mac: &Mac| st.machine(mac).and_then(|m| m.name.clone());
    let mut counts = BTreeMap::new();
    let mut not_done = Vec::new();
    if let Some(c) = &r.check {
        for k in Outcome::ALL {
            counts.insert(k.as_str().to_string(), c.count(k));
        }
        for o in c.outcomes.iter().filter(|o| o.outcome != Outcome::Done) {
            not_done.push(MachineOutcomeView {
                mac: o.mac,
                name: name(&o.mac),
                outcome: Some(o.outcome),
                detail: o.detail.clone(),
                once_pending: o.once_pending,
            });
        }
        not_done.sort_by_key(|o| (o.outcome, o.name.clone(), o.mac));
    }
    RunView {
        run: r.n,
        due: r.due,
        at: r.at,
        missed: r.missed.clone(),
        late: r.late,
        error: r.error.clone(),
        targeted: r.targets.len() + r.carried.len(),
        carried: r
            .carried
            .iter()
            .map(|mac| MachineOutcomeView {
                mac: *mac,
                name: name(mac),
                outcome: None,
                detail: "its one-shot from an earlier run was still pending; not set again".into(),
                once_pending: true,
            })
            .collect(),
        checked: r.check.as_ref().map(|c| c.at),
        counts,
        not_done,
    }
}

/// One schedule's runs, as `nmt schedule runs` shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRuns {
    /// The schedule.
    pub schedule: String,
    /// Its runs and missed times, newest first.
    pub runs: Vec<RunView>,
}

/// `nmt schedule runs [NAME]`: the runs and misses of one schedule or of all, newest first.
pub fn runs(st: &State, name: Option<&str>) -> Result<Vec<ScheduleRuns>> {
    let of = |s: &Schedule| ScheduleRuns {
        schedule: s.name.clone(),
        runs: s.recent.iter().rev().map(|r| run_view(st, r)).collect(),
    };
    match name {
        None => Ok(st.schedules().map(of).collect()),
        Some(name) => st.schedule(name).map(|s| vec![of(s)]).ok_or_else(|| {
            anyhow!(
                "no schedule named {name:?}; `nmt schedule list` lists them ({})",
                st.schedules()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Action, perform};
    use crate::{Engine, OpenOptions};

    fn engine(dir: &std::path::Path) -> Engine {
        let mut e = Engine::open(&OpenOptions {
            state_dir: dir.join("state"),
            config: None,
            wait: std::time::Duration::from_secs(2),
            create: true,
        })
        .unwrap();
        let admin = |e: &mut Engine, a: Action| {
            perform(e, a, "rich", Source::Cli).unwrap();
        };
        admin(
            &mut e,
            Action::GroupAdd {
                group: "lab".into(),
                policy: None,
            },
        );
        for i in 1..=3 {
            admin(
                &mut e,
                crate::app::machine_add(
                    &format!("52:54:00:00:00:0{i}"),
                    Some(format!("lab0{i}")),
                    Some("lab".into()),
                    None,
                )
                .unwrap(),
            );
        }
        e
    }

    fn add(e: &mut Engine, owner: &str, cron: &str, run: Action, command: &str) {
        perform(
            e,
            Action::ScheduleAdd {
                name: "nightly".into(),
                cron: cron.into(),
                tz: Some("Europe/Berlin".into()),
                expect: Some("45m".into()),
                grace: None,
                command: command.split(' ').map(str::to_string).collect(),
                run: Box::new(run),
                replace: false,
            },
            owner,
            Source::Cli,
        )
        .unwrap();
    }

    fn restore_once() -> Action {
        Action::Policy {
            range: "@lab".into(),
            policy: "install".into(),
            once: true,
            members: false,
            reboot: false,
        }
    }

    fn all(e: &Engine) -> Vec<nmt_projections::Envelope> {
        let mut out = Vec::new();
        e.events(None, None, &mut |env| {
            out.push(env);
            Ok(true)
        })
        .unwrap();
        out
    }

    fn kinds_by(e: &Engine, actor: &str) -> Vec<String> {
        all(e)
            .into_iter()
            .filter(|env| env.actor == actor)
            .map(|env| env.event.kind().to_string())
            .collect()
    }

    #[test]
    fn a_late_run_acts_as_its_owner_records_itself_with_its_events_and_never_stacks_one_shots() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        add(
            &mut e,
            "root",
            "0 2 * * *",
            restore_once(),
            "policy @lab install --once",
        );
        let access = AccessConfig::default();
        // nmtd comes back at 02:10 Berlin time, a day after: 02:00 runs late (in its grace).
        let due = nmt_projections::next_run(
            e.state().schedule("nightly").unwrap(),
            Timestamp::now(),
            &zone,
        )
        .unwrap();
        let now = due + jiff::SignedDuration::from_mins(10);
        let t = tick(&mut e, &access, now);
        assert_eq!(t.done.len(), 1, "{:?}", t.done);
        assert!(
            t.done[0].contains("ran `nmt policy @lab install --once` late (3 targeted)"),
            "{:?}",
            t.done
        );
        let actor = "schedule nightly (set by root)";
        assert_eq!(
            kinds_by(&e, actor),
            [
                "MachinePolicySet",
                "MachinePolicySet",
                "MachinePolicySet",
                "ScheduleRan"
            ]
        );
        let s = e.state().schedule("nightly").unwrap();
        let run = s.last_run().unwrap();
        assert!(run.late && run.error.is_none());
        assert_eq!((run.due, run.targets.len()), (due, 3));
        // Nothing is due again at the same moment.
        assert!(tick(&mut e, &access, now).done.is_empty());
        // The next night: nobody booted, each one-shot is still pending and is not set again.
        let next =
            nmt_projections::next_run(e.state().schedule("nightly").unwrap(), now, &zone).unwrap();
        let t = tick(&mut e, &access, next);
        // The first run's check came due first (45 minutes), then the second run.
        assert_eq!(t.done.len(), 2, "{:?}", t.done);
        assert!(
            t.done[0].contains("run 1 checked: 3 never booted"),
            "{:?}",
            t.done
        );
        assert!(
            t.done[1].contains("(0 targeted, 3 with its one-shot still pending)"),
            "{:?}",
            t.done
        );
        assert_eq!(
            kinds_by(&e, actor)
                .iter()
                .filter(|k| *k == "MachinePolicySet")
                .count(),
            3
        );
        let s = e.state().schedule("nightly").unwrap();
        let check = s.run(1).unwrap().check.as_ref().unwrap();
        assert!(
            check
                .outcomes
                .iter()
                .all(|o| o.outcome == Outcome::NeverBooted && o.once_pending)
        );
        assert_eq!(s.last_run().unwrap().carried.len(), 3);
    }

    #[test]
    fn a_run_the_owner_may_no_longer_do_is_recorded_failed_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        add(
            &mut e,
            "no-such-user-here",
            "* * * * *",
            restore_once(),
            "policy @lab install --once",
        );
        let before = e.state().last_seq();
        let now = Timestamp::now() + jiff::SignedDuration::from_mins(1);
        let t = tick(&mut e, &AccessConfig::default(), now);
        assert!(
            t.done[0]
                .contains("run failed, nothing changed: no-such-user-here may no longer do this"),
            "{:?}",
            t.done
        );
        let evs = all(&e);
        assert_eq!(evs.len() as u64, before + 1, "only the run's record");
        assert!(matches!(
            &evs.last().unwrap().event,
            nmt_projections::Event::ScheduleRan { error: Some(_), .. }
        ));
        // Given the right, the next run acts.
        let access = AccessConfig {
            admins: vec!["no-such-user-here".into()],
            ..AccessConfig::default()
        };
        let t = tick(&mut e, &access, now + jiff::SignedDuration::from_mins(1));
        assert!(t.done[0].contains("(3 targeted)"), "{:?}", t.done);
    }

    #[test]
    fn a_scheduled_power_action_is_recorded_as_the_run_with_each_machines_result() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        crate::app::power::set(
            &mut e,
            "@lab",
            nmt_projections::Bmc {
                protocol: nmt_projections::BmcProtocol::Wol {
                    interface: None,
                    broadcast: Some(std::net::Ipv4Addr::new(127, 255, 255, 255)),
                },
                user: None,
            },
            None,
            "root",
            Source::Cli,
        )
        .unwrap();
        add(
            &mut e,
            "root",
            "* * * * *",
            Action::Power {
                op: nmt_projections::PowerOp::On,
                range: "@lab".into(),
            },
            "power on @lab",
        );
        let t = tick(
            &mut e,
            &AccessConfig::default(),
            Timestamp::now() + jiff::SignedDuration::from_mins(1),
        );
        assert!(t.done[0].contains("(3 targeted, 0 failed)"), "{:?}", t.done);
        let actor = "schedule nightly (set by root)";
        assert_eq!(
            kinds_by(&e, actor),
            ["ScheduleRan", "PowerActed", "PowerActed", "PowerActed"]
        );
        let m = e.state().machine_by_name("lab02").unwrap();
        let last = m.power.as_ref().unwrap();
        assert!(last.result.ok && last.by == actor, "{last:?}");
    }

    #[test]
    fn a_run_whose_group_is_gone_is_recorded_with_the_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = engine(dir.path());
        perform(
            &mut e,
            Action::GroupAdd {
                group: "gone".into(),
                policy: None,
            },
            "root",
            Source::Cli,
        )
        .unwrap();
        add(
            &mut e,
            "root",
            "* * * * *",
            Action::Policy {
                range: "@gone".into(),
                policy: "ltsp".into(),
                once: false,
                members: false,
                reboot: false,
            },
            "policy @gone ltsp",
        );
        perform(
            &mut e,
            Action::GroupRm {
                group: "gone".into(),
                force: false,
                to: None,
            },
            "root",
            Source::Cli,
        )
        .unwrap();
        let t = tick(
            &mut e,
            &AccessConfig::default(),
            Timestamp::now() + jiff::SignedDuration::from_mins(1),
        );
        assert!(
            t.done[0].contains("run failed, nothing changed") && t.done[0].contains("gone"),
            "{:?}",
            t.done
        );
    }

    #[test]
    fn durations_are_read_as_admins_write_them() {
        assert_eq!(parse_duration("--expect", "45m").unwrap(), 2700);
        assert_eq!(parse_duration("--expect", "1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("--expect", "90s").unwrap(), 90);
        assert_eq!(parse_duration("--expect", "2 hours").unwrap(), 7200);
        assert_eq!(parse_duration("--expect", "1d").unwrap(), 86400);
        assert!(parse_duration("--expect", "soon").is_err());
        assert!(parse_duration("--expect", "-5m").is_err());
    }
}
