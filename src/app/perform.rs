//! Carrying out an [`Action`]: one function per action, each answering typed data (a
//! [`Reply`]). The same code serves `nmt` working on the store directly, `nmtd` serving the
//! socket and the web UI, so all of them refuse the same. Reads that need only the state
//! ([`read`]) work on any state, such as the one nmtd publishes after each commit.

use std::fmt::Write as _;

use anyhow::{Context as _, Result, anyhow, bail};
use jiff::Timestamp;
use nmt_projections::render;
use nmt_projections::{
    BootTracker, Command, Envelope, Mac, NamePattern, Policy, ReportVia, Source, State, describe,
};

use super::action::Action;
use super::reply::{
    Failure, FileView, GroupView, MachineView, Replayed, Reply, RootdevView, ShowView, Status, Then,
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

fn changed(done: Executed, summary: String) -> Reply {
    Reply::Changed {
        summary,
        events: done.events,
        files: done.files.into(),
    }
}

/// `nmt policy @a,@b POLICY`: each group's own policy, all checked before any is set.
fn group_policies(
    engine: &mut Engine,
    groups: &[&str],
    policy: &str,
    once: bool,
    actor: &str,
    source: Source,
) -> Result<Reply> {
    let policy: Policy = policy.parse()?;
    let cmds: Vec<Command> = groups
        .iter()
        .map(|g| Command::SetGroupPolicy {
            group: g.to_string(),
            policy: policy.clone(),
            once,
        })
        .collect();
    for cmd in &cmds {
        nmt_projections::decide(engine.state(), cmd.clone())?;
    }
    let mut all = Executed::default();
    for cmd in cmds {
        let done = engine.execute_from(cmd, actor, source.clone())?;
        all.events.extend(done.events);
        all.files.extend(done.files);
    }
    let text = describe_all(&all);
    Ok(changed(all, text))
}

fn describe_all(done: &Executed) -> String {
    done.events
        .iter()
        .map(|e| describe(&e.event))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Perform an action for `actor`, who came through `source` (the CLI, a web form).
pub fn perform(engine: &mut Engine, action: Action, actor: &str, source: Source) -> Result<Reply> {
    // What reads only the state is answered from it.
    if let Some(reply) = read(engine.state(), engine.config(), &action) {
        return reply;
    }
    let change = |engine: &mut Engine, cmd: Command, summary: &dyn Fn(&Executed) -> String| {
        let done = engine.execute_from(cmd, actor, source.clone())?;
        let text = summary(&done);
        Ok(changed(done, text))
    };
    match action {
        Action::MachineAdd {
            mac,
            name,
            group,
            ip,
        } => change(
            engine,
            Command::AddMachine {
                mac,
                name,
                group,
                ip,
            },
            &|_| format!("added {mac}"),
        ),
        Action::MachineImport { rows } => {
            let n = rows.len();
            change(engine, Command::Import { rows }, &|d| {
                format!("imported {} ({} events)", count(n, "row"), d.events.len())
            })
        }
        Action::MachineRm { range } => {
            let macs = engine.resolve(&range)?;
            let n = macs.len();
            change(engine, Command::RemoveMachines { macs }, &|_| {
                format!("removed {}", count(n, "machine"))
            })
        }
        Action::Name {
            target,
            name,
            pattern,
        } => {
            let cmd = match (name, pattern) {
                (_, Some(p)) => Command::NamePattern {
                    macs: engine.resolve(&target)?,
                    pattern: NamePattern::parse(&p)?,
                },
                (Some(name), None) => Command::Name {
                    mac: one_machine(engine.state(), &target)?,
                    name,
                },
                (None, None) => bail!("give a NAME, or --pattern 'node{{001}}'"),
            };
            change(engine, cmd, &describe_all)
        }
        Action::GroupAdd { group, policy } => {
            let policy = policy.map(|p| p.parse::<Policy>()).transpose()?;
            change(engine, Command::AddGroup { group, policy }, &describe_all)
        }
        Action::GroupRm { group, force, to } => {
            let target = to
                .clone()
                .unwrap_or_else(|| nmt_projections::UNKNOWN.to_string());
            change(
                engine,
                Command::RemoveGroup { group, force, to },
                &|d| match d.events.len().saturating_sub(1) {
                    0 => describe(&d.events[0].event),
                    n => format!(
                        "{} ({} moved to {target})",
                        describe(&d.events[n].event),
                        count(n, "machine")
                    ),
                },
            )
        }
        Action::Assign { range, group } => {
            let macs = engine.resolve(&range)?;
            let n = macs.len();
            let g = group.clone();
            change(engine, Command::Assign { macs, group }, &|_| {
                format!("assigned {} to {g}", count(n, "machine"))
            })
        }
        Action::Policy {
            range,
            policy,
            once,
            members,
        } => {
            let parsed = nmt_parsers::parse_noderange(&range)?;
            let clear = policy == "inherit";
            let groups = parsed.as_groups().filter(|_| !members);
            if clear && groups.is_some() {
                bail!(
                    "`inherit` drops machines' own policies; a group's policy is always set \
                     (e.g. localboot)"
                );
            }
            if let Some(groups) = groups.as_ref().filter(|g| g.len() > 1) {
                return group_policies(engine, groups, &policy, once, actor, source);
            }
            let cmd = match groups.as_deref() {
                Some([g]) => Command::SetGroupPolicy {
                    group: g.to_string(),
                    policy: policy.parse()?,
                    once,
                },
                _ => Command::SetPolicy {
                    macs: engine.resolve(&range)?,
                    policy: if clear { None } else { Some(policy.parse()?) },
                    once,
                },
            };
            change(engine, cmd, &|d| match d.events.as_slice() {
                [one] => describe(&one.event),
                many => format!(
                    "policy {} set on {}{}",
                    policy,
                    count(many.len(), "machine"),
                    if once { " (next boot only)" } else { "" }
                ),
            })
        }
        Action::Machines { range, at: Some(t) } => machines(&engine.state_at(t)?, range.as_deref()),
        Action::RootdevSet { range, device } => {
            let macs = engine.resolve(&range)?;
            let n = macs.len();
            let d = device.clone();
            change(engine, Command::SetRootDevice { macs, device }, &|_| {
                format!("root device {d} set on {}", count(n, "machine"))
            })
        }
        Action::RootdevRm { range } => {
            let macs = engine.resolve(&range)?;
            change(engine, Command::RemoveRootDevice { macs }, &|d| {
                format!(
                    "root device removed from {}",
                    count(d.events.len(), "machine")
                )
            })
        }
        Action::ProfileAdd { profile, replace } => change(
            engine,
            Command::DefineProfile { profile, replace },
            &describe_all,
        ),
        Action::ProfileRm { name } => {
            change(engine, Command::RemoveProfile { name }, &describe_all)
        }
        Action::Installed { machine, rootdev } => {
            installed(engine, &machine, rootdev, actor, source)
        }
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
        Action::InstallerPasswordSet { crypted } => {
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
        Action::JournalExport {
            since,
            until,
            machine,
        } => journal(engine, since, until, machine.as_deref()),
        Action::GroupList
        | Action::Machines { at: None, .. }
        | Action::RootdevList
        | Action::ProfileList
        | Action::Show { at: None, .. } => unreachable!("answered by `read` above"),
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
        Action::Show { machine, at: None } => {
            one_machine(state, machine).and_then(|mac| show(state, config, mac))
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
    let spent = BootTracker::fed(engine.state(), mac, &whole).spent;
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
    Ok(Reply::History { events, spent })
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
    let shared = render::group_files(st, &m.group, cfg)
        .into_iter()
        .filter(|f| match &f.target {
            render::Target::Tftp(p) => !p.starts_with("pxelinux.cfg/") || *p == own_pxe,
            _ => false,
        })
        .filter(|_| m.policy.is_none());
    let files = render::machine_files(st, &mac, cfg)
        .into_iter()
        .chain(shared)
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
    })))
}
