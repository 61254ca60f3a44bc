//! Carrying out an [`Action`]: one function per action, each answering typed data (a
//! [`Reply`]). The same code serves `nmt` working on the store directly, `nmtd` serving the
//! socket and the web UI, so all of them refuse the same. Reads that need only the state
//! ([`read`]) work on any state, such as the one nmtd publishes after each commit.

use std::fmt::Write as _;

use anyhow::{Context as _, Result, anyhow, bail};
use jiff::Timestamp;
use nmt_projections::render;
use nmt_projections::{
    BootTracker, Command, Envelope, Impact, Mac, NamePattern, Policy, ReportVia, Source, State,
    describe,
};

use super::action::Action;
use super::reply::{
    Confirm, Failure, FileView, Files, GroupView, ImageCheck, ImageDetail, ImageView, MachineView,
    Mode, Planned, Replayed, Reply, RestoreView, RootdevView, ShowView, Status, Then,
};
use crate::{Config, Engine, Executed};

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The one machine `target` names (a MAC, a name, a one-machine range).
pub fn one_machine(state: &State, target: &str) -> Result<Mac> {
    let macs = crate::resolve(state, target)?;
    match macs.as_slice() {
        [m] => Ok(*m),
        _ => bail!(
            "{target:?} names {} machines; give exactly one (a MAC or a name)",
            macs.len()
        ),
    }
}

/// A MAC as written (known or not), or a machine's name.
pub fn mac_or_name(state: &State, target: &str) -> Result<Mac> {
    match Mac::parse(target) {
        Some(m) => Ok(m),
        None => one_machine(state, target),
    }
}

pub(super) fn changed(done: Executed, summary: String) -> Reply {
    Reply::Changed {
        summary,
        events: done.events,
        files: done.files.into(),
        impact: Impact::default(),
    }
}

pub(super) fn describe_all(done: &Executed) -> String {
    done.events
        .iter()
        .map(|e| describe(&e.event))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `nmt policy RANGE POLICY`: the commands (a group's own policy, each of a list of groups,
/// or machines' own policies).
fn policy_commands(
    engine: &Engine,
    range: &str,
    policy: &str,
    once: bool,
    members: bool,
) -> Result<Vec<Command>> {
    let parsed = nmt_parsers::parse_noderange(range)?;
    let clear = policy == "inherit";
    let groups = parsed.as_groups().filter(|_| !members);
    if clear && groups.is_some() {
        bail!(
            "`inherit` drops machines' own policies; a group's policy is always set \
             (e.g. localboot)"
        );
    }
    Ok(match groups {
        // Each group's own policy; all are decided before any is set.
        Some(groups) => {
            let policy: Policy = policy.parse()?;
            groups
                .iter()
                .map(|g| Command::SetGroupPolicy {
                    group: g.to_string(),
                    policy: policy.clone(),
                    once,
                })
                .collect()
        }
        None => vec![Command::SetPolicy {
            macs: engine.resolve(range)?,
            policy: if clear { None } else { Some(policy.parse()?) },
            once,
        }],
    })
}

/// The machine `nmt machine restore` means: a MAC, or the name a removed machine had.
fn removed_machine(engine: &Engine, target: &str) -> Result<Mac> {
    if let Some(mac) = Mac::parse(target) {
        return Ok(mac);
    }
    // A registered machine of that name: the refusal says it is there.
    if let Some(m) = engine.state().machine_by_name(&target.to_ascii_lowercase()) {
        return Ok(m.mac);
    }
    let macs = engine.removed_named(target)?;
    match macs.as_slice() {
        [mac] => Ok(*mac),
        [] => bail!(
            "no removed machine was named {target:?}; give its MAC (`nmt journal export | grep \
             MachineRemoved` lists removals)"
        ),
        many => bail!(
            "{} removed machines were named {target:?}: {}; give the MAC of the one to restore",
            many.len(),
            many.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The commands a changing action is made of (`None` for reads and for the actions that
/// are not commands of the domain: rendering, the installer password's file, replays).
/// They are decided one after the other; all are checked before any is appended.
fn commands(engine: &Engine, action: &Action) -> Result<Option<Vec<Command>>> {
    let cmd = match action.clone() {
        Action::MachineAdd {
            mac,
            name,
            group,
            ip,
        } => Command::AddMachine {
            mac,
            name,
            group,
            ip,
        },
        Action::MachineImport { rows } => Command::Import { rows },
        Action::MachineRm { range } => Command::RemoveMachines {
            macs: engine.resolve(&range)?,
        },
        Action::MachineRestore { machine, group } => {
            let mac = removed_machine(engine, &machine)?;
            Command::RestoreMachine {
                mac,
                removal: engine.last_removal(&mac)?,
                group,
            }
        }
        Action::Name {
            target,
            name,
            pattern,
        } => match (name, pattern) {
            (_, Some(p)) => Command::NamePattern {
                macs: engine.resolve(&target)?,
                pattern: NamePattern::parse(&p)?,
            },
            (Some(name), None) => Command::Name {
                mac: one_machine(engine.state(), &target)?,
                name,
            },
            (None, None) => bail!("give a NAME, or --pattern 'node{{001}}'"),
        },
        Action::GroupAdd { group, policy } => Command::AddGroup {
            group,
            policy: policy.map(|p| p.parse::<Policy>()).transpose()?,
        },
        Action::GroupRm { group, force, to } => Command::RemoveGroup { group, force, to },
        Action::Assign {
            range,
            group,
            ip,
            no_ip,
        } => Command::Assign {
            macs: engine.resolve(&range)?,
            group,
            address: match (ip, no_ip) {
                (Some(ip), _) => Some(Some(ip)),
                (None, true) => Some(None),
                (None, false) => None,
            },
        },
        Action::Policy {
            range,
            policy,
            once,
            members,
            ..
        } => return policy_commands(engine, &range, &policy, once, members).map(Some),
        Action::RootdevSet { range, device } => Command::SetRootDevice {
            macs: engine.resolve(&range)?,
            device,
        },
        Action::RootdevRm { range } => Command::RemoveRootDevice {
            macs: engine.resolve(&range)?,
        },
        Action::ProfileAdd { profile, replace } => Command::DefineProfile { profile, replace },
        Action::ProfileRm { name } => Command::RemoveProfile { name },
        Action::ImageRm { image } => Command::RemoveImage {
            image: nmt_projections::ImageRef::parse(&image).map_err(|e| anyhow!(e))?,
        },
        Action::Installed { machine, rootdev } => Command::ReportInstall {
            mac: mac_or_name(engine.state(), &machine)?,
            device: rootdev,
            via: ReportVia::Manual,
        },
        Action::InstallerPasswordSet { crypted } => Command::SetInstallerPassword { crypted },
        Action::ScheduleAdd {
            name,
            cron,
            tz,
            expect,
            grace,
            command,
            run,
            replace,
        } => super::schedule::define(
            name,
            cron,
            tz,
            expect.as_deref(),
            grace.as_deref(),
            command,
            &run,
            replace,
        )?,
        Action::ScheduleRm { name } => Command::RemoveSchedule { name },
        Action::SchedulePause { name } => Command::PauseSchedule { name },
        Action::ScheduleResume { name } => Command::ResumeSchedule { name },
        _ => return Ok(None),
    };
    Ok(Some(vec![cmd]))
}

/// The commands of an action a schedule runs (see [`commands`]).
pub(super) fn commands_of(engine: &Engine, action: &Action) -> Result<Option<Vec<Command>>> {
    commands(engine, action)
}

/// What a schedule's action would do to the machines if it ran now: what defining it asks
/// to confirm.
fn schedule_impact(
    engine: &Engine,
    action: &Action,
    actor: &str,
    source: &Source,
) -> Result<Impact> {
    let Some(cmds) = commands(engine, action)? else {
        return Ok(Impact::default());
    };
    let plan = engine.plan(cmds, actor, source)?;
    Ok(Impact::between(engine.state(), &plan.after))
}

/// What a performed change says it did, from its events.
fn summary(action: &Action, done: &Executed) -> String {
    let n = done.events.len();
    match action {
        Action::MachineAdd { mac, .. } => format!("added {mac}"),
        Action::ImageRm { .. } => format!("removed {}", count(n, "image version")),
        Action::MachineImport { rows } => {
            format!("imported {} ({n} events)", count(rows.len(), "row"))
        }
        Action::MachineRm { .. } => format!("removed {}", count(n, "machine")),
        Action::GroupRm { to, .. } => {
            let target = to.as_deref().unwrap_or(nmt_projections::UNKNOWN);
            match n.saturating_sub(1) {
                0 => describe_all(done),
                moved => format!(
                    "{} ({} moved to {target})",
                    describe(&done.events[moved].event),
                    count(moved, "machine")
                ),
            }
        }
        Action::Assign { group, .. } => {
            format!("assigned {} to {group}", count(n, "machine"))
        }
        Action::Policy {
            range,
            policy,
            once,
            members,
            ..
        } => {
            let groups = nmt_parsers::parse_noderange(range)
                .ok()
                .and_then(|r| r.as_groups().map(|g| g.len()))
                .filter(|_| !members);
            match (done.events.as_slice(), groups) {
                ([one], _) => describe(&one.event),
                (_, Some(g)) if g > 1 => describe_all(done),
                _ => format!(
                    "policy {policy} set on {}{}",
                    count(n, "machine"),
                    if *once { " (next boot only)" } else { "" }
                ),
            }
        }
        Action::RootdevSet { device, .. } => {
            format!("root device {device} set on {}", count(n, "machine"))
        }
        Action::ScheduleAdd { .. } => {
            let mut text = describe_all(done);
            text.push_str(&super::schedule::next_words(done));
            text
        }
        Action::RootdevRm { .. } => {
            format!("root device removed from {}", count(n, "machine"))
        }
        _ => describe_all(done),
    }
}

/// Perform an action for `actor`, who came through `source` (the CLI, a web form): for
/// real, with no confirmation asked (see [`perform_with`]).
pub fn perform(engine: &mut Engine, action: Action, actor: &str, source: Source) -> Result<Reply> {
    perform_with(engine, action, &Mode::default(), actor, source)
}

/// Perform an action as `mode` says: for real or as a dry run (what it would append,
/// write and do to the machines; nothing is done), and, for bulk destruction, only as the
/// caller confirmed it ([`Confirm`]). The plan is decided under the same hold of the engine
/// as the change it checks, so what was confirmed is what is done.
pub fn perform_with(
    engine: &mut Engine,
    action: Action,
    mode: &Mode,
    actor: &str,
    source: Source,
) -> Result<Reply> {
    // What reads only the state is answered from it.
    if let Some(reply) = read(engine.state(), engine.config(), &action) {
        return reply;
    }
    let Some(cmds) = commands(engine, &action)? else {
        return if mode.dry_run {
            dry_run(engine, action, actor, source)
        } else {
            perform_now(engine, action, actor, source)
        };
    };
    let plan = engine.plan(cmds, actor, &source)?;
    let impact = match &action {
        // A schedule changes no machine when it is defined; each of its runs will. What a
        // run would do now is what is shown and confirmed.
        Action::ScheduleAdd { run: inner, .. } => schedule_impact(engine, inner, actor, &source)?,
        _ => Impact::between(engine.state(), &plan.after),
    };
    let needs_confirmation = impact.needs_confirmation();
    let planned = |files: Files| Planned {
        summary: String::new(),
        events: plan.events.clone(),
        files,
        impact: impact.clone(),
        needs_confirmation,
    };
    if mode.dry_run {
        return Ok(Reply::Planned(Box::new(planned(
            engine.planned_files(&plan).into(),
        ))));
    }
    if needs_confirmation {
        match &mode.confirm {
            Confirm::Unchecked => {}
            Confirm::Ask => return Ok(Reply::Unconfirmed(Box::new(planned(Files::default())))),
            Confirm::Reaching(confirmed) if *confirmed == impact.at_risk() => {}
            Confirm::Reaching(confirmed) => bail!(
                "nothing was changed: the machines this reaches changed since they were \
                 listed ({} then, {} now: {}); run the command again and check the new list",
                confirmed.len(),
                impact.at_risk().len(),
                nmt_projections::machine_list(
                    &impact
                        .removed
                        .iter()
                        .chain(impact.erasing())
                        .cloned()
                        .collect::<Vec<_>>(),
                    20
                )
            ),
        }
    }
    let defines_schedule = matches!(action, Action::ScheduleAdd { .. });
    let mut reply = perform_now(engine, action, actor, source)?;
    if let Reply::Changed { impact: i, .. } = &mut reply
        && !defines_schedule
    {
        *i = impact;
    }
    Ok(reply)
}

/// `--dry-run` of an action that is not made of domain commands.
fn dry_run(engine: &mut Engine, action: Action, actor: &str, source: Source) -> Result<Reply> {
    let plan = |summary: String, files: Files| {
        Ok(Reply::Planned(Box::new(Planned {
            summary,
            files,
            ..Planned::default()
        })))
    };
    match action {
        Action::Render { check: false } => {
            let mut files = Files::default();
            for d in engine.drift() {
                match d {
                    crate::Drift::Missing(p) | crate::Drift::Differs(p) => files.written.push(p),
                    crate::Drift::Stale(p) => files.removed.push(p),
                }
            }
            plan("would bring every generated file up to date".into(), files)
        }
        Action::InstallerPasswordAck => {
            let dir = &engine.config().state_dir;
            let waiting = crate::password::pending(dir)?.is_some();
            let files = Files {
                removed: if waiting {
                    vec![dir.join(crate::password::PENDING_FILE)]
                } else {
                    Vec::new()
                },
                ..Files::default()
            };
            plan(
                if waiting {
                    "would forget the waiting installer password".into()
                } else {
                    "no generated installer password is waiting; nothing to forget".into()
                },
                files,
            )
        }
        Action::InstallerPasswordRotate => {
            // A password is made to show the event's shape; it is not kept.
            let crypted = crate::password::crypt(&crate::password::generate()?)?;
            let p = engine.plan(
                vec![Command::SetInstallerPassword { crypted }],
                actor,
                &source,
            )?;
            Ok(Reply::Planned(Box::new(Planned {
                summary: "would record the hash of a new random installer password (a \
                          different one when done for real)"
                    .into(),
                events: p.events.clone(),
                files: engine.planned_files(&p).into(),
                ..Planned::default()
            })))
        }
        Action::ReplayLogs { paths, year, .. } => {
            let years = match year {
                Some(y) => nmt_replay::YearRule::Fixed(y),
                None => nmt_replay::YearRule::Infer,
            };
            let (summary, events, files) = engine.replay_plan(&paths, years)?;
            Ok(Reply::Planned(Box::new(Planned {
                summary: format!(
                    "would replay {} lines: {} events, {} lines already read before, {} \
                     detail lines, {} not recognised",
                    summary.lines,
                    summary.events,
                    summary.already,
                    summary.ignored,
                    summary.rejects
                ),
                events,
                files: files.into(),
                ..Planned::default()
            })))
        }
        Action::ReplayLeases { paths } => {
            let (plan, s) = engine.leases_plan(&paths)?;
            Ok(Reply::Planned(Box::new(Planned {
                summary: format!(
                    "would replay {} leases: {} events, {} no newer than what nmt saw last, {} \
                     of addresses no network card has",
                    s.leases, s.events, s.already, s.not_machines
                ),
                files: engine.planned_files(&plan).into(),
                events: plan.events,
                ..Planned::default()
            })))
        }
        Action::Power { op, range } => Ok(Reply::Planned(Box::new(Planned {
            summary: super::power::plan(engine.state(), engine.config(), op, &range)?,
            ..Planned::default()
        }))),
        Action::BmcSet { .. } | Action::BmcRm { .. } => Ok(Reply::Planned(Box::new(Planned {
            summary: "would change BMC settings (and the secrets file); nothing was done".into(),
            ..Planned::default()
        }))),
        // Nothing else changes anything: it is answered as it is.
        action => perform_now(engine, action, actor, source),
    }
}

/// Perform an action for real.
fn perform_now(engine: &mut Engine, action: Action, actor: &str, source: Source) -> Result<Reply> {
    match action {
        Action::Installed { machine, rootdev } => {
            installed(engine, &machine, rootdev, actor, source)
        }
        Action::InstallerPasswordSet { .. } => password_set(engine, action, actor, source),
        action => match commands(engine, &action)? {
            Some(cmds) => {
                let mut done = Executed::default();
                for cmd in cmds {
                    let d = engine.execute_from(cmd, actor, source.clone())?;
                    done.events.extend(d.events);
                    done.files.extend(d.files);
                }
                // A removed image version's files go with it.
                let images = crate::images::ImageStore::new(&engine.config().paths.images);
                for e in &done.events {
                    if let nmt_projections::Event::ImageRemoved { image, version } = &e.event {
                        images.remove(image, *version)?;
                        done.files.removed.push(images.version_dir(image, *version));
                    }
                }
                let text = summary(&action, &done);
                let reply = changed(done, text);
                match &action {
                    // Then the machines it set reboot into it.
                    Action::Policy {
                        range,
                        reboot: true,
                        ..
                    } => {
                        let results = super::power::perform(
                            engine,
                            nmt_projections::PowerOp::Cycle,
                            range,
                            actor,
                            source,
                        )?;
                        Ok(Reply::Power {
                            changed: Some(Box::new(reply)),
                            results,
                        })
                    }
                    _ => Ok(reply),
                }
            }
            None => perform_other(engine, action, actor, source),
        },
    }
}

/// `nmt installer-password set`.
fn password_set(engine: &mut Engine, action: Action, actor: &str, source: Source) -> Result<Reply> {
    let Action::InstallerPasswordSet { crypted } = action else {
        unreachable!("only installer-password set")
    };
    let done = engine.execute_from(
        Command::SetInstallerPassword {
            crypted: crypted.clone(),
        },
        actor,
        source,
    );
    // A waiting generated password is no longer the one in force.
    if engine.state().installer_password() == Some(crypted.as_str()) {
        crate::password::forget_pending(&engine.config().state_dir)?;
    }
    Ok(changed(done?, "installer password set".to_string()))
}

/// The actions that are not domain commands.
fn perform_other(
    engine: &mut Engine,
    action: Action,
    actor: &str,
    source: Source,
) -> Result<Reply> {
    match action {
        Action::Machines { range, at: Some(t) } => machines(&engine.state_at(t)?, range.as_deref()),
        Action::History {
            machine,
            since,
            until,
            kinds,
        } => history(engine, &machine, since, until, &kinds),
        Action::Show {
            machine,
            at: Some(t),
        } => show_at(engine, &machine, t),
        Action::Boots { machine, since } => {
            let mac = mac_or_name(engine.state(), &machine)?;
            let history = engine.history(&mac, None, None)?;
            Ok(boots(engine.state(), mac, machine, since, &history))
        }
        Action::Verify => {
            let problems = engine.verify()?;
            Ok(Reply::Verify {
                events: engine.state().last_seq(),
                problems,
            })
        }
        Action::Render { check: true } => Ok(Reply::Drift(
            engine.drift().iter().map(|d| d.to_string()).collect(),
        )),
        Action::Render { check: false } => Ok(Reply::Rendered(
            engine
                .render_all()
                .context("the files are not all up to date (render records nothing)")?
                .into(),
        )),
        Action::InstallerPasswordShow => Ok(Reply::InstallerPassword {
            password: crate::password::pending(&engine.config().state_dir)?,
            rotated: false,
            events: Vec::new(),
        }),
        Action::InstallerPasswordAck => Ok(Reply::PasswordAcknowledged(
            crate::password::forget_pending(&engine.config().state_dir)?,
        )),
        Action::InstallerPasswordRotate => {
            let password = crate::password::generate()?;
            let crypted = crate::password::crypt(&password)?;
            // Kept until the answer is made: a failure after the commit (a hook) leaves it for
            // `installer-password show`, never lost.
            let dir = engine.config().state_dir.clone();
            crate::password::keep_pending(&dir, &password).context(
                "nothing was recorded: the new password must be kept until an admin has seen it",
            )?;
            let done = engine.execute_from(
                Command::SetInstallerPassword {
                    crypted: crypted.clone(),
                },
                actor,
                source,
            );
            let in_force = engine.state().installer_password() == Some(crypted.as_str());
            match done {
                Ok(done) => {
                    crate::password::forget_pending(&dir)?;
                    Ok(Reply::InstallerPassword {
                        password: Some(password),
                        rotated: true,
                        events: done.events,
                    })
                }
                Err(e) if in_force => Err(e.context(
                    "the new installer password is recorded; `nmt installer-password show` \
                     shows it",
                )),
                Err(e) => {
                    crate::password::forget_pending(&dir)?;
                    Err(e)
                }
            }
        }
        Action::ReplayLeases { paths } => Ok(Reply::LeasesReplayed(engine.replay_leases(&paths)?)),
        Action::ReplayLogs {
            paths,
            year,
            strict,
        } => {
            let years = match year {
                Some(y) => nmt_replay::YearRule::Fixed(y),
                None => nmt_replay::YearRule::Infer,
            };
            let s = engine.replay(&paths, years, None)?;
            Ok(Reply::Replayed {
                summary: Replayed::from(&s),
                strict,
            })
        }
        Action::Status => Ok(Reply::Status(Status { daemon: None })),
        Action::Power { op, range } => Ok(Reply::Power {
            changed: None,
            results: super::power::perform(engine, op, &range, actor, source)?,
        }),
        Action::BmcSet {
            range,
            bmc,
            password,
        } => super::power::set(engine, &range, bmc, password, actor, source),
        Action::BmcRm { range } => super::power::remove(engine, &range, actor, source),
        Action::WebLogin => bail!(
            "nmtd is not running (or does not answer on its socket), and the web UI is \
             nmtd's: start nmtd with --web 127.0.0.1:8018 (or [web] listen in nmt.toml), then \
             run `nmt web-login` again"
        ),
        Action::JournalExport {
            since,
            until,
            machine,
        } => journal(engine, since, until, machine.as_deref()),
        Action::GroupList
        | Action::Machines { at: None, .. }
        | Action::RootdevList
        | Action::ProfileList
        | Action::ImageList
        | Action::ImageShow { .. }
        | Action::ImageCheck { .. }
        | Action::Show { at: None, .. }
        | Action::ScheduleList
        | Action::ScheduleRuns { .. }
        | Action::BmcShow { .. } => unreachable!("answered by `read` above"),
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
        | Action::ProfileRm { .. }
        | Action::ImageRm { .. }
        | Action::Installed { .. }
        | Action::InstallerPasswordSet { .. }
        | Action::ScheduleAdd { .. }
        | Action::ScheduleRm { .. }
        | Action::SchedulePause { .. }
        | Action::ScheduleResume { .. } => unreachable!("domain commands, performed above"),
    }
}

/// Answer an action that reads nothing but the current state and configuration (`None`
/// for any other): nmtd answers these from the state it publishes, without the engine.
pub fn read(state: &State, config: &Config, action: &Action) -> Option<Result<Reply>> {
    Some(match action {
        Action::GroupList => Ok(groups(state)),
        Action::Machines { range, at: None } => machines(state, range.as_deref()),
        Action::RootdevList => Ok(rootdevs(state)),
        Action::ProfileList => Ok(Reply::Profiles(state.profiles().cloned().collect())),
        Action::ImageList => Ok(Reply::Images(images(state, config))),
        Action::ImageShow { image } => image_show(state, config, image),
        Action::ImageCheck { image } => image_check(state, config, image.as_deref()),
        Action::Show { machine, at: None } => {
            one_machine(state, machine).and_then(|mac| show(state, config, mac))
        }
        Action::BmcShow { range } => super::power::show(state, range).map(Reply::Bmcs),
        Action::ScheduleList => Ok(Reply::Schedules(super::schedule::views(
            state,
            Timestamp::now(),
        ))),
        Action::ScheduleRuns { name } => {
            super::schedule::runs(state, name.as_deref()).map(|schedules| Reply::ScheduleRuns {
                one: name.is_some(),
                schedules,
            })
        }
        _ => return None,
    })
}

/// `nmt group list`.
pub fn groups(st: &State) -> Reply {
    Reply::Groups(
        st.groups()
            .map(|g| GroupView {
                group: g.name.clone(),
                policy: st.group_policy(&g.name),
                builtin: g.builtin,
                members: g.members.len(),
            })
            .collect(),
    )
}

/// `nmt machines [RANGE]`, on `st`.
pub fn machines(st: &State, range: Option<&str>) -> Result<Reply> {
    let macs: Vec<Mac> = match range {
        // An empty group is a valid selection: it lists nothing.
        Some(r) if only_empty_groups(st, r) => Vec::new(),
        Some(r) => crate::resolve(st, r)?,
        None => st.machines().map(|m| m.mac).collect(),
    };
    Ok(Reply::Machines(
        macs.iter()
            .filter_map(|m| st.machine(m))
            .map(|m| MachineView::new(st, m))
            .collect(),
    ))
}

/// Whether a noderange names only groups, each of which exists and has no members.
fn only_empty_groups(st: &State, range: &str) -> bool {
    nmt_parsers::parse_noderange(range).is_ok_and(|p| {
        p.items.iter().all(|i| {
            matches!(i, nmt_parsers::RangeItem::Group(g)
                if st.group(g).is_some_and(|g| g.members.is_empty()))
        })
    })
}

/// `nmt rootdev`.
pub fn rootdevs(st: &State) -> Reply {
    Reply::Rootdevs(
        st.machines()
            .filter(|m| m.rootdev.is_some())
            .map(|m| RootdevView {
                mac: m.mac,
                name: m.name.clone(),
                rootdev: m.rootdev.clone(),
            })
            .collect(),
    )
}

/// `nmt installed MACHINE ROOTDEV`.
fn installed(
    engine: &mut Engine,
    machine: &str,
    rootdev: String,
    actor: &str,
    source: Source,
) -> Result<Reply> {
    let mac = mac_or_name(engine.state(), machine)?;
    let before = engine.state().machine(&mac).map(|m| m.group.clone());
    let done = engine.execute_from(
        Command::ReportInstall {
            mac,
            device: rootdev,
            via: ReportVia::Manual,
        },
        actor,
        source,
    )?;
    let after = engine.state().machine(&mac).map(|m| m.group.clone());
    let mut msg = describe(&done.events[0].event);
    if before != after {
        let _ = write!(
            msg,
            "; moved from {} to {}",
            before.as_deref().unwrap_or("nowhere"),
            after.as_deref().unwrap_or("-")
        );
    }
    Ok(changed(done, msg))
}

/// `nmt history MACHINE`.
pub fn history(
    engine: &Engine,
    machine: &str,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    kinds: &[String],
) -> Result<Reply> {
    if let Some(bad) = kinds.iter().find(|k| {
        !nmt_projections::Event::KINDS
            .iter()
            .any(|n| n.eq_ignore_ascii_case(k))
    }) {
        bail!(
            "no kind of event is named {bad:?}; the kinds are: {}",
            nmt_projections::Event::KINDS.join(", ")
        );
    }
    let mac = mac_or_name(engine.state(), machine)?;
    // The one-shots are found in the whole history: one set before `since` may be used after.
    let whole = engine.history(&mac, None, None)?;
    let spent = BootTracker::spent_one_shots(engine.state(), mac, &whole);
    let mut events: Vec<Envelope> = whole
        .into_iter()
        .filter(|e| {
            since.is_none_or(|s| e.observed_at >= s) && until.is_none_or(|u| e.observed_at <= u)
        })
        .collect();
    if !kinds.is_empty() {
        events.retain(|e| kinds.iter().any(|k| k.eq_ignore_ascii_case(e.event.kind())));
    }
    if events.is_empty() && engine.state().machine(&mac).is_none() {
        bail!("no event mentions {mac}; list machines with `nmt machines`");
    }
    let spent = spent
        .into_iter()
        .filter(|s| events.iter().any(|e| e.seq == s.seq))
        .collect();
    Ok(Reply::History {
        machine: Some(mac),
        events,
        spent,
    })
}

/// `nmt boots MACHINE`: its boots from its own `history` (all of it, oldest first) and what
/// `st` (the current state) knows of groups and profiles.
pub fn boots(
    st: &State,
    mac: Mac,
    machine: String,
    since: Option<Timestamp>,
    history: &[Envelope],
) -> Reply {
    let boots = BootTracker::from_history(st, mac, history)
        .into_iter()
        .filter(|b| since.is_none_or(|s| b.at >= s))
        .collect();
    Reply::Boots {
        machine,
        since,
        boots,
    }
}

/// `nmt journal export`.
fn journal(
    engine: &Engine,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    machine: Option<&str>,
) -> Result<Reply> {
    let events = match machine {
        Some(m) => {
            let mac = mac_or_name(engine.state(), m)?;
            engine.history(&mac, since, until)?
        }
        None => {
            let mut all = Vec::new();
            engine.events(since, until, &mut |env| {
                all.push(env);
                Ok(true)
            })?;
            all
        }
    };
    Ok(Reply::Journal(events))
}

/// `nmt show MACHINE --at T`.
fn show_at(engine: &Engine, machine: &str, t: Timestamp) -> Result<Reply> {
    let past = engine.state_at(t)?;
    // A name is the machine's name now (it may have had another then), else its name then.
    let mac = match Mac::parse(machine) {
        Some(m) => m,
        None => match one_machine(engine.state(), machine) {
            Ok(m) => m,
            Err(_) => *crate::resolve(&past, machine)?
                .first()
                .ok_or_else(|| anyhow!("{machine:?} names no machine"))?,
        },
    };
    if past.machine(&mac).is_none() {
        return Err(Failure::NotKnownYet {
            machine: machine.to_string(),
            at: t,
        }
        .into());
    }
    show(&past, engine.config(), mac)
}

/// `nmt show`: one machine of `st`, its boot entry and files.
pub fn show(st: &State, config: &Config, mac: Mac) -> Result<Reply> {
    let m = st
        .machine(&mac)
        .ok_or_else(|| anyhow!("{mac} is not in the inventory"))?;
    let cfg = &config.render;
    let entry = render::boot_entry(st, &mac, cfg);
    // The machine's own files, then the shared entries of its group that they include.
    let chain = render::chain_key(m.rootdev.as_deref());
    let own_pxe = format!("{}{chain}.cfg", render::group_pxelinux_prefix(&m.group));
    // A machine with a policy of its own includes none of them.
    let shared = match m.policy {
        None => render::member_group_files(st, &m.group, cfg, m.rootdev.as_deref()),
        Some(_) => Vec::new(),
    }
    .into_iter()
    .filter(|f| match &f.target {
        render::Target::Tftp(p) => !p.starts_with("pxelinux.cfg/") || *p == own_pxe,
        _ => false,
    });
    // The default entry serves a machine of `unknown` that has no files of its own.
    let files: Vec<render::File> = if render::served_by_default(st, m) {
        render::default_files(st, cfg)
            .into_iter()
            .filter(|f| f.target != render::Target::Tftp("ipxe/boot.ipxe".into()))
            .collect()
    } else {
        render::machine_files(st, &mac, cfg)
            .into_iter()
            .chain(shared)
            .collect()
    };
    let files = files
        .into_iter()
        .map(|f| FileView {
            path: config.path_of(&f.target),
            content: String::from_utf8_lossy(&f.bytes).into_owned(),
        })
        .collect();
    let then = m
        .policy
        .as_ref()
        .filter(|o| o.once)
        .map(|o| match &o.previous {
            Some(p) => Then::Own(p.clone()),
            None => Then::Group(st.group_policy(&m.group)),
        });
    Ok(Reply::Show(Box::new(ShowView {
        machine: MachineView::new(st, m),
        then,
        boot_entry: serde_json::to_value(&entry)?,
        files,
        imaging: None,
    })))
}

/// `nmt image list`: every saved version, newest first within each image.
pub fn images(st: &State, config: &Config) -> Vec<ImageView> {
    let store = crate::images::ImageStore::new(&config.paths.images);
    let mut out = Vec::new();
    for (_, image) in st.images() {
        let newest = image.newest().map(|v| v.version);
        for v in image.versions.values().rev() {
            out.push(ImageView::new(st, &store, v, newest == Some(v.version)));
        }
    }
    out
}

/// `nmt image show NAME[@VERSION]`.
fn image_show(st: &State, config: &Config, image: &str) -> Result<Reply> {
    let r = nmt_projections::ImageRef::parse(image).map_err(|e| anyhow!(e))?;
    let Some(v) = st.image_version(&r) else {
        bail!("there is no image {r}; `nmt image list` shows them");
    };
    let store = crate::images::ImageStore::new(&config.paths.images);
    let newest = st
        .image(&r.name)
        .and_then(|i| i.newest())
        .map(|n| n.version);
    Ok(Reply::Image(Box::new(ImageDetail {
        view: ImageView::new(st, &store, v, newest == Some(v.version)),
        manifest: v.manifest.clone(),
        restored_onto: v
            .restores
            .iter()
            .map(|r| RestoreView {
                mac: r.mac,
                name: st.machine(&r.mac).and_then(|m| m.name.clone()),
                at: r.at,
            })
            .collect(),
    })))
}

/// `nmt image check [NAME[@VERSION]]`: every stored stream against its manifest, and each
/// partition's image with partclone, without a machine.
fn image_check(st: &State, config: &Config, image: Option<&str>) -> Result<Reply> {
    let store = crate::images::ImageStore::new(&config.paths.images);
    let versions: Vec<&nmt_projections::ImageVersion> = match image {
        Some(i) => {
            let r = nmt_projections::ImageRef::parse(i).map_err(|e| anyhow!(e))?;
            match (r.version, st.image(&r.name)) {
                (Some(_), _) => vec![st.image_version(&r).ok_or_else(|| {
                    anyhow!("there is no image {r}; `nmt image list` shows them")
                })?],
                (None, Some(img)) if !img.versions.is_empty() => img.versions.values().collect(),
                _ => bail!("there is no image {r}; `nmt image list` shows them"),
            }
        }
        None => st.images().flat_map(|(_, i)| i.versions.values()).collect(),
    };
    Ok(Reply::ImagesChecked(
        versions
            .into_iter()
            .map(|v| ImageCheck {
                image: format!("{}@{}", v.name, v.version),
                problems: store.check(&v.name, v.version, &v.manifest),
            })
            .collect(),
    ))
}
