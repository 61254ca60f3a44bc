//! Carrying out an [`Action`] on an engine and writing what it prints into an [`Output`]. The
//! same code serves `nmt` working on the store directly and `nmtd` serving the socket, so
//! both print the same and refuse the same.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use nmt_projections::render;
use nmt_projections::{Command, Mac, NamePattern, Origin, Policy, ReportVia, describe};
use serde_json::json;

use super::action::{Action, Output};
use super::output::{self, MachineView, local_time, or_dash};
use crate::{Engine, Executed};

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn one_machine(engine: &Engine, target: &str) -> Result<Mac> {
    let macs = engine.resolve(target)?;
    match macs.as_slice() {
        [m] => Ok(*m),
        _ => bail!(
            "{target:?} names {} machines; give exactly one (a MAC or a name)",
            macs.len()
        ),
    }
}

/// A MAC as written, or a machine's name.
fn mac_or_name(engine: &Engine, target: &str) -> Result<Mac> {
    match Mac::parse(target) {
        Some(m) => Ok(m),
        None => one_machine(engine, target),
    }
}

/// What a change prints: its summary and the files it touched, or JSON.
fn report(done: &Executed, summary: String, json: bool) -> String {
    if json {
        return output::json(&json!({
            "events": done.events,
            "files": {
                "written": done.files.written,
                "unchanged": done.files.unchanged,
                "removed": done.files.removed,
            },
        }));
    }
    let mut out = format!("{summary}\n");
    let f = &done.files;
    if !f.written.is_empty() || !f.removed.is_empty() {
        let _ = writeln!(
            out,
            "files: {} written, {} removed",
            f.written.len(),
            f.removed.len()
        );
    }
    out
}

fn describe_all(done: &Executed) -> String {
    done.events
        .iter()
        .map(|e| describe(&e.event))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Perform an action for `actor`, capturing what it prints.
pub fn perform(engine: &mut Engine, action: Action, actor: &str, json: bool) -> Output {
    match perform_inner(engine, action, actor, json) {
        Ok((code, stdout)) => Output {
            code,
            stdout,
            stderr: String::new(),
        },
        Err(e) => Output::error(&e),
    }
}

fn perform_inner(
    engine: &mut Engine,
    action: Action,
    actor: &str,
    json: bool,
) -> Result<(u8, String)> {
    let ok = |s: String| Ok((0, s));
    let change = |engine: &mut Engine, cmd: Command, summary: &dyn Fn(&Executed) -> String| {
        let done = engine.execute(cmd, actor)?;
        let text = summary(&done);
        ok(report(&done, text, json))
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
                    mac: one_machine(engine, &target)?,
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
        Action::GroupRm { group, force } => {
            change(engine, Command::RemoveGroup { group, force }, &|d| match d
                .events
                .len()
                .saturating_sub(1)
            {
                0 => describe(&d.events[0].event),
                n => format!(
                    "{} ({} moved to unknown)",
                    describe(&d.events[n].event),
                    count(n, "machine")
                ),
            })
        }
        Action::GroupList => {
            let st = engine.state();
            if json {
                let v: Vec<_> = st
                    .groups()
                    .map(|g| {
                        json!({
                            "group": g.name,
                            "policy": st.group_policy(&g.name),
                            "builtin": g.builtin,
                            "members": g.members.len(),
                        })
                    })
                    .collect();
                return ok(output::json(&v));
            }
            ok(output::table(
                &["GROUP", "POLICY", "MEMBERS", "KIND"],
                st.groups().map(|g| {
                    vec![
                        g.name.clone(),
                        st.group_policy(&g.name).to_string(),
                        g.members.len().to_string(),
                        if g.builtin { "built-in" } else { "named" }.to_string(),
                    ]
                }),
            ))
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
            let cmd = match parsed.as_single_group() {
                Some(g) if !members => {
                    if clear {
                        bail!(
                            "`inherit` drops machines' own policies; a group's policy is always \
                             set (e.g. localboot)"
                        );
                    }
                    Command::SetGroupPolicy {
                        group: g.to_string(),
                        policy: policy.parse()?,
                        once,
                    }
                }
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
        Action::Machines { range, at } => {
            let past;
            let st = match at {
                Some(t) => {
                    past = engine.state_at(t)?;
                    &past
                }
                None => engine.state(),
            };
            let macs: Vec<Mac> = match &range {
                Some(r) => crate::resolve(st, r)?,
                None => st.machines().map(|m| m.mac).collect(),
            };
            let views: Vec<MachineView<'_>> = macs
                .iter()
                .filter_map(|m| st.machine(m))
                .map(|m| MachineView::new(st, m))
                .collect();
            if json {
                return ok(output::json(&views));
            }
            ok(output::table(
                &[
                    "MAC",
                    "NAME",
                    "GROUP",
                    "POLICY",
                    "IP",
                    "ROOTDEV",
                    "LAST SEEN",
                ],
                views.iter().map(|v| {
                    let mark = match v.policy_origin {
                        Origin::Machine => " *",
                        Origin::MachineOnce => " *once",
                        Origin::Group => "",
                    };
                    vec![
                        v.mac.to_string(),
                        or_dash(v.name),
                        v.group.to_string(),
                        format!("{}{mark}", v.effective_policy),
                        or_dash(v.ip),
                        or_dash(v.rootdev),
                        or_dash(v.last_seen.map(local_time)),
                    ]
                }),
            ))
        }
        Action::RootdevList => {
            let st = engine.state();
            let rows: Vec<_> = st.machines().filter(|m| m.rootdev.is_some()).collect();
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|m| json!({"mac": m.mac, "name": m.name, "rootdev": m.rootdev}))
                    .collect();
                return ok(output::json(&v));
            }
            ok(output::table(
                &["MAC", "NAME", "ROOTDEV"],
                rows.iter().map(|m| {
                    vec![
                        m.mac.to_string(),
                        or_dash(m.name.as_deref()),
                        or_dash(m.rootdev.as_deref()),
                    ]
                }),
            ))
        }
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
        Action::ProfileList => {
            let st = engine.state();
            if json {
                return ok(output::json(&st.profiles().collect::<Vec<_>>()));
            }
            ok(output::table(
                &["PROFILE", "KIND", "ANSWER", "KERNEL", "INITRD", "ARGS"],
                st.profiles().map(|p| {
                    vec![
                        p.name.clone(),
                        p.kind.as_str().to_string(),
                        or_dash(p.answer.map(|a| a.as_str())),
                        p.kernel.clone(),
                        p.initrd.join(","),
                        p.args.clone(),
                    ]
                }),
            ))
        }
        Action::Installed { machine, rootdev } => {
            let mac = mac_or_name(engine, &machine)?;
            let before = engine.state().machine(&mac).map(|m| m.group.clone());
            let done = engine.execute(
                Command::ReportInstall {
                    mac,
                    device: rootdev,
                    via: ReportVia::Manual,
                },
                actor,
            )?;
            let after = engine.state().machine(&mac).map(|m| m.group.clone());
            let mut msg = describe(&done.events[0].event);
            if before != after {
                let _ = write!(
                    msg,
                    "; moved from {} to {}",
                    before.as_deref().unwrap_or("nowhere"),
                    or_dash(after)
                );
            }
            ok(report(&done, msg, json))
        }
        Action::History {
            machine,
            since,
            until,
            kinds,
        } => {
            let mac = mac_or_name(engine, &machine)?;
            let mut events = engine.history(&mac, since, until)?;
            if !kinds.is_empty() {
                events.retain(|e| kinds.iter().any(|k| k.eq_ignore_ascii_case(e.event.kind())));
            }
            if events.is_empty() && engine.state().machine(&mac).is_none() {
                bail!("no event mentions {mac}; list machines with `nmt machines`");
            }
            if json {
                return ok(output::json(&events));
            }
            ok(output::table(
                &["TIME", "SEQ", "ACTOR", "EVENT"],
                events.iter().map(|e| {
                    vec![
                        local_time(e.observed_at),
                        e.seq.to_string(),
                        e.actor.clone(),
                        describe(&e.event),
                    ]
                }),
            ))
        }
        Action::Show { machine, at } => match at {
            Some(t) => {
                let past = engine.state_at(t)?;
                let mac = match Mac::parse(&machine) {
                    Some(m) => m,
                    None => {
                        let macs = crate::resolve(&past, &machine)?;
                        *macs
                            .first()
                            .ok_or_else(|| anyhow!("{machine:?} names no machine"))?
                    }
                };
                if past.machine(&mac).is_none() {
                    bail!("{machine} was not known yet at {}", local_time(t));
                }
                ok(show(engine, &past, &mac, json))
            }
            None => {
                let mac = one_machine(engine, &machine)?;
                ok(show(engine, engine.state(), &mac, json))
            }
        },
        Action::Boots { machine, since } => {
            let mac = mac_or_name(engine, &machine)?;
            let mut tracker = nmt_projections::BootTracker::new(mac);
            engine.events(None, None, &mut |env| {
                tracker.feed(&env);
                Ok(true)
            })?;
            let boots: Vec<_> = tracker
                .boots
                .into_iter()
                .filter(|b| since.is_none_or(|s| b.at >= s))
                .collect();
            if json {
                return ok(output::json(&boots));
            }
            if boots.is_empty() {
                return ok(format!(
                    "no boot of {machine} is in the log{} (a boot is a fetch of its entry seen in a TFTP log)\n",
                    since
                        .map(|s| format!(" since {}", local_time(s)))
                        .unwrap_or_default()
                ));
            }
            ok(output::table(
                &["TIME", "IP", "ENTRY", "POLICY", "BOOTED", "SET BY"],
                boots.iter().map(|b| {
                    let origin = match b.origin {
                        Origin::Machine => " (own)",
                        Origin::MachineOnce => " (once)",
                        Origin::Group => "",
                    };
                    vec![
                        local_time(b.at),
                        or_dash(b.ip),
                        b.file.clone(),
                        format!("{}{origin}", b.policy),
                        b.booted.clone(),
                        match (&b.set_by, b.set_at) {
                            (Some(a), Some(t)) => format!("{a} at {}", local_time(t)),
                            _ => "-".into(),
                        },
                    ]
                }),
            ))
        }
        Action::Verify => {
            let problems = engine.verify()?;
            if json {
                return Ok((
                    u8::from(!problems.is_empty()),
                    output::json(&json!({ "ok": problems.is_empty(), "problems": problems })),
                ));
            }
            if problems.is_empty() {
                return ok(format!(
                    "verified: a fresh fold of all {} events equals the live state, and every generated file matches it\n",
                    engine.state().last_seq()
                ));
            }
            Ok((1, problems.iter().map(|p| format!("{p}\n")).collect()))
        }
        Action::Render { check: true } => {
            let drift = engine.drift();
            let text = if json {
                let v: Vec<String> = drift.iter().map(|d| d.to_string()).collect();
                output::json(&json!({ "drift": v }))
            } else if drift.is_empty() {
                "every generated file is up to date\n".to_string()
            } else {
                drift.iter().map(|d| format!("{d}\n")).collect()
            };
            Ok((u8::from(!drift.is_empty()), text))
        }
        Action::Render { check: false } => {
            let out = engine.render_all()?;
            if json {
                return ok(output::json(&json!({
                    "written": out.written, "unchanged": out.unchanged, "removed": out.removed,
                })));
            }
            ok(format!(
                "{} written, {} unchanged, {} removed\n",
                out.written.len(),
                out.unchanged,
                out.removed.len()
            ))
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
            Ok(replay_report(&s, strict, json))
        }
        Action::Status => {
            let text = "nmtd is not running on this state: no logs are being followed \
                        (start it with `nmtd --state DIR --log PATH`)\n";
            if json {
                return ok(output::json(&json!({ "daemon": false, "sources": [] })));
            }
            ok(text.to_string())
        }
        Action::JournalExport {
            since,
            until,
            machine,
        } => {
            let mut text = String::new();
            let mut push = |env: &nmt_projections::Envelope| -> Result<()> {
                text.push_str(
                    std::str::from_utf8(&env.to_json())
                        .map_err(|_| anyhow!("an event is not UTF-8"))?,
                );
                text.push('\n');
                Ok(())
            };
            match machine {
                Some(m) => {
                    let mac = mac_or_name(engine, &m)?;
                    for env in engine.history(&mac, since, until)? {
                        push(&env)?;
                    }
                }
                None => engine.events(since, until, &mut |env| {
                    push(&env)?;
                    Ok(true)
                })?,
            }
            ok(text)
        }
    }
}

fn show(engine: &Engine, st: &nmt_projections::State, mac: &Mac, as_json: bool) -> String {
    let m = st.machine(mac).expect("resolved machines exist");
    let cfg = &engine.config().render;
    let entry = render::boot_entry(st, mac, cfg);
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
    let files: Vec<(PathBuf, String)> = render::machine_files(st, mac, cfg)
        .into_iter()
        .chain(shared)
        .map(|f| {
            (
                engine.config().path_of(&f.target),
                String::from_utf8_lossy(&f.bytes).into_owned(),
            )
        })
        .collect();
    let view = MachineView::new(st, m);
    if as_json {
        let fv: Vec<_> = files
            .iter()
            .map(|(p, c)| json!({"path": p, "content": c}))
            .collect();
        return output::json(&json!({
            "machine": view,
            "boot_entry": entry,
            "files": fv,
        }));
    }
    let mut o = String::new();
    let _ = writeln!(o, "mac          {}", view.mac);
    let _ = writeln!(o, "name         {}", or_dash(view.name));
    let _ = writeln!(o, "group        {}", view.group);
    let origin = match view.policy_origin {
        Origin::Machine => "its own".to_string(),
        Origin::MachineOnce => "its own, next boot only".to_string(),
        Origin::Group => format!("from group {}", view.group),
    };
    let _ = writeln!(o, "policy       {} ({origin})", view.effective_policy);
    if let Some(ov) = &m.policy
        && ov.once
    {
        let then = ov
            .previous
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| format!("its group's policy ({})", st.group_policy(&m.group)));
        let _ = writeln!(o, "then         {then}");
    }
    let _ = writeln!(o, "ip           {}", or_dash(view.ip));
    let _ = writeln!(o, "rootdev      {}", or_dash(view.rootdev));
    let registered = if view.registered {
        "yes"
    } else {
        "no (seen in a log)"
    };
    let _ = writeln!(o, "registered   {registered}");
    let _ = writeln!(o, "first seen   {}", local_time(view.first_seen));
    let _ = writeln!(
        o,
        "last seen    {}",
        or_dash(view.last_seen.map(local_time))
    );
    let _ = writeln!(o, "last ip      {}", or_dash(view.last_ip));
    if let Some(h) = view.dhcp_hostname {
        let _ = writeln!(o, "dhcp name    {h:?} (as the client sent it)");
    }
    if let Some(a) = view.arch {
        let kind = match a {
            0 => "BIOS",
            6 => "x86 UEFI",
            7 | 9 => "x86-64 UEFI",
            10 | 11 => "ARM UEFI",
            16 => "x86-64 UEFI HTTP",
            _ => "other",
        };
        let _ = writeln!(o, "arch         {a} ({kind})");
    }
    if let Some(i) = view.installed {
        let _ = writeln!(o, "installed    {} at {}", i.device, local_time(i.at));
    }
    if let Some(b) = view.last_boot {
        let _ = writeln!(
            o,
            "last boot    {} ({}) at {}",
            b.file,
            b.policy,
            local_time(b.at)
        );
    }
    for (path, content) in files {
        let _ = write!(o, "\n# {}\n{content}", path.display());
    }
    o
}

/// What `nmt replay logs` prints, and its exit status.
pub fn replay_report(s: &crate::ReplaySummary, strict: bool, json: bool) -> (u8, String) {
    let code = u8::from(strict && s.rejects > 0);
    if json {
        return (code, output::json(s));
    }
    let mut out = format!(
        "replayed {} lines: {} events appended, {} already read before, {} detail lines, {} not recognised\n",
        s.lines, s.events, s.already, s.ignored, s.rejects
    );
    if code != 0 {
        out.push_str("--strict: some lines were not recognised (see above)\n");
    }
    (code, out)
}
