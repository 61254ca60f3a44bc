//! What each `nmt` command does: resolve its targets, open the engine, decide, print.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nmt_projections::render;
use nmt_projections::{
    AnswerKind, Command, ImportRow, Mac, NamePattern, Policy, Profile, ProfileKind, ReportVia,
    describe,
};
use serde_json::json;

use super::args::{Cli, Cmd, GroupCmd, JournalCmd, MachineCmd, ProfileCmd, RootdevCmd};
use super::output::{self, MachineView, local_time, or_dash};
use crate::{Config, DB_FILE, Engine, Executed, OpenOptions, current_actor, parse_time};

/// The state directory used when neither --state nor NMT_STATE is given.
pub const DEFAULT_STATE: &str = "nmt-state";

struct Ctx {
    cli_state: PathBuf,
    config: Option<PathBuf>,
    wait: Duration,
    json: bool,
}

impl Ctx {
    fn open(&self, create: bool) -> Result<Engine> {
        let engine = Engine::open(&OpenOptions {
            state_dir: self.cli_state.clone(),
            config: self.config.clone(),
            wait: self.wait,
            create,
        })?;
        if engine.created() {
            eprintln!(
                "nmt: started a new state in {} (events in {DB_FILE}; generated files as `nmt config` shows)",
                abs(&self.cli_state).display()
            );
        }
        Ok(engine)
    }

    /// Run a command that changes state and report what it did.
    fn change(&self, cmd: Command, summary: impl FnOnce(&Executed) -> String) -> Result<ExitCode> {
        let mut engine = self.open(true)?;
        let done = engine.execute(cmd, &current_actor())?;
        self.report(&done, summary(&done))
    }

    /// Run a command on the machines of a noderange.
    fn change_range(
        &self,
        range: &str,
        make: impl FnOnce(Vec<Mac>) -> Command,
        summary: impl FnOnce(usize, &Executed) -> String,
    ) -> Result<ExitCode> {
        let mut engine = self.open(false)?;
        let macs = engine.resolve(range)?;
        let n = macs.len();
        let done = engine.execute(make(macs), &current_actor())?;
        self.report(&done, summary(n, &done))
    }

    fn report(&self, done: &Executed, summary: String) -> Result<ExitCode> {
        if self.json {
            output::json(&json!({
                "events": done.events,
                "files": {
                    "written": done.files.written,
                    "unchanged": done.files.unchanged,
                    "removed": done.files.removed,
                },
            }))?;
        } else {
            println!("{summary}");
            let f = &done.files;
            if !f.written.is_empty() || !f.removed.is_empty() {
                println!(
                    "files: {} written, {} removed",
                    f.written.len(),
                    f.removed.len()
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn parse_policy(s: &str) -> Result<Policy> {
    Ok(s.parse::<Policy>()?)
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

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    if !(cli.wait.is_finite() && cli.wait >= 0.0) {
        bail!("--wait must be a number of seconds, 0 or more");
    }
    let ctx = Ctx {
        cli_state: cli.state.clone().unwrap_or_else(|| DEFAULT_STATE.into()),
        config: cli.config.clone(),
        wait: Duration::from_secs_f64(cli.wait),
        json: cli.json,
    };
    match cli.command {
        Cmd::Machine(MachineCmd::Add {
            mac,
            name,
            group,
            ip,
        }) => {
            let mac: Mac = mac.parse()?;
            let ip = ip
                .map(|s| {
                    s.parse::<Ipv4Addr>()
                        .map_err(|_| anyhow!("{s:?} is not an IPv4 address (want e.g. 10.0.0.42)"))
                })
                .transpose()?;
            ctx.change(
                Command::AddMachine {
                    mac,
                    name,
                    group,
                    ip,
                },
                |_| format!("added {mac}"),
            )
        }
        Cmd::Machine(MachineCmd::Import { file }) => {
            let rows = read_node_table(&file)?;
            let n = rows.len();
            ctx.change(Command::Import { rows }, |d| {
                format!("imported {} ({} events)", count(n, "row"), d.events.len())
            })
        }
        Cmd::Machine(MachineCmd::Rm { range }) => ctx.change_range(
            &range,
            |macs| Command::RemoveMachines { macs },
            |n, _| format!("removed {}", count(n, "machine")),
        ),
        Cmd::Name {
            target,
            name,
            pattern,
        } => {
            let mut engine = ctx.open(false)?;
            let cmd = match (name, pattern) {
                (_, Some(p)) => Command::NamePattern {
                    macs: engine.resolve(&target)?,
                    pattern: NamePattern::parse(&p)?,
                },
                (Some(name), None) => Command::Name {
                    mac: one_machine(&engine, &target)?,
                    name,
                },
                (None, None) => bail!("give a NAME, or --pattern 'node{{001}}'"),
            };
            let done = engine.execute(cmd, &current_actor())?;
            let lines: Vec<String> = done.events.iter().map(|e| describe(&e.event)).collect();
            ctx.report(&done, lines.join("\n"))
        }
        Cmd::Group(GroupCmd::Add { group, policy }) => {
            let policy = policy.map(|p| parse_policy(&p)).transpose()?;
            ctx.change(Command::AddGroup { group, policy }, |d| {
                d.events
                    .iter()
                    .map(|e| describe(&e.event))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Cmd::Group(GroupCmd::Rm { group, force }) => {
            let mut engine = ctx.open(false)?;
            let done = engine.execute(Command::RemoveGroup { group, force }, &current_actor())?;
            let moved = done.events.len().saturating_sub(1);
            let msg = match moved {
                0 => describe(&done.events[0].event),
                n => format!(
                    "{} ({} moved to unknown)",
                    describe(&done.events[n].event),
                    count(n, "machine")
                ),
            };
            ctx.report(&done, msg)
        }
        Cmd::Group(GroupCmd::List) => {
            let engine = ctx.open(false)?;
            let st = engine.state();
            if ctx.json {
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
                output::json(&v)?;
            } else {
                output::table(
                    &["GROUP", "POLICY", "MEMBERS", "KIND"],
                    st.groups().map(|g| {
                        vec![
                            g.name.clone(),
                            st.group_policy(&g.name).to_string(),
                            g.members.len().to_string(),
                            if g.builtin { "built-in" } else { "named" }.to_string(),
                        ]
                    }),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Assign { range, group } => {
            let g = group.clone();
            ctx.change_range(
                &range,
                |macs| Command::Assign { macs, group },
                |n, _| format!("assigned {} to {g}", count(n, "machine")),
            )
        }
        Cmd::Policy {
            range,
            policy,
            once,
            members,
        } => {
            // `nmt policy @unknown install` is the first thing Andreas does on a new server.
            let mut engine = ctx.open(true)?;
            let parsed = nmt_parsers::parse_noderange(&range)?;
            let clear = policy == "inherit";
            let cmd = match parsed.as_single_group() {
                Some(g) if !members => {
                    if clear {
                        bail!(
                            "`inherit` drops machines' own policies; a group's policy is always set (e.g. localboot)"
                        );
                    }
                    Command::SetGroupPolicy {
                        group: g.to_string(),
                        policy: parse_policy(&policy)?,
                        once,
                    }
                }
                _ => Command::SetPolicy {
                    macs: engine.resolve(&range)?,
                    policy: if clear {
                        None
                    } else {
                        Some(parse_policy(&policy)?)
                    },
                    once,
                },
            };
            let done = engine.execute(cmd, &current_actor())?;
            let msg = match done.events.as_slice() {
                [one] => describe(&one.event),
                many => format!(
                    "policy {} set on {}{}",
                    policy,
                    count(many.len(), "machine"),
                    if once { " (next boot only)" } else { "" }
                ),
            };
            ctx.report(&done, msg)
        }
        Cmd::Machines { range } => {
            let engine = ctx.open(false)?;
            let st = engine.state();
            let macs: Vec<Mac> = match &range {
                Some(r) => engine.resolve(r)?,
                None => st.machines().map(|m| m.mac).collect(),
            };
            let views: Vec<MachineView<'_>> = macs
                .iter()
                .filter_map(|m| st.machine(m))
                .map(|m| MachineView::new(st, m))
                .collect();
            if ctx.json {
                output::json(&views)?;
            } else {
                output::table(
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
                            nmt_projections::Origin::Machine => " *",
                            nmt_projections::Origin::MachineOnce => " *once",
                            nmt_projections::Origin::Group => "",
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
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Rootdev { cmd } => match cmd.unwrap_or(RootdevCmd::List) {
            RootdevCmd::List => {
                let engine = ctx.open(false)?;
                let st = engine.state();
                let rows: Vec<_> = st.machines().filter(|m| m.rootdev.is_some()).collect();
                if ctx.json {
                    let v: Vec<_> = rows
                        .iter()
                        .map(|m| json!({"mac": m.mac, "name": m.name, "rootdev": m.rootdev}))
                        .collect();
                    output::json(&v)?;
                } else {
                    output::table(
                        &["MAC", "NAME", "ROOTDEV"],
                        rows.iter().map(|m| {
                            vec![
                                m.mac.to_string(),
                                or_dash(m.name.as_deref()),
                                or_dash(m.rootdev.as_deref()),
                            ]
                        }),
                    )?;
                }
                Ok(ExitCode::SUCCESS)
            }
            RootdevCmd::Set { range, device } => {
                let d = device.clone();
                ctx.change_range(
                    &range,
                    |macs| Command::SetRootDevice { macs, device },
                    |n, _| format!("root device {d} set on {}", count(n, "machine")),
                )
            }
            RootdevCmd::Rm { range } => ctx.change_range(
                &range,
                |macs| Command::RemoveRootDevice { macs },
                |_, done| {
                    format!(
                        "root device removed from {}",
                        count(done.events.len(), "machine")
                    )
                },
            ),
        },
        Cmd::Profile(ProfileCmd::Add {
            name,
            kind,
            kernel,
            initrd,
            args,
            answer,
            network_console,
            replace,
        }) => {
            let kind = ProfileKind::parse(&kind).ok_or_else(|| {
                anyhow!(
                    "{kind:?} is not a profile kind; kinds are install, ltsp, save-image, \
                     restore-image, nfsroot, custom"
                )
            })?;
            let answer = answer
                .map(|a| {
                    AnswerKind::parse(&a).ok_or_else(|| {
                        anyhow!("{a:?} is not an answer-file kind; use preseed, kickstart or autoinstall")
                    })
                })
                .transpose()?;
            let profile = Profile {
                name,
                kind,
                kernel,
                initrd,
                args,
                answer,
                network_console,
            };
            ctx.change(Command::DefineProfile { profile, replace }, |d| {
                describe(&d.events[0].event)
            })
        }
        Cmd::Profile(ProfileCmd::Rm { name }) => {
            let mut engine = ctx.open(false)?;
            let done = engine.execute(Command::RemoveProfile { name }, &current_actor())?;
            ctx.report(&done, describe(&done.events[0].event))
        }
        Cmd::Profile(ProfileCmd::List) => {
            let engine = ctx.open(false)?;
            let st = engine.state();
            if ctx.json {
                output::json(&st.profiles().collect::<Vec<_>>())?;
            } else {
                output::table(
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
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Installed { machine, rootdev } => {
            let mut engine = ctx.open(true)?;
            let mac = match Mac::parse(&machine) {
                Some(m) => m,
                None => one_machine(&engine, &machine)?,
            };
            let before = engine.state().machine(&mac).map(|m| m.group.clone());
            let done = engine.execute(
                Command::ReportInstall {
                    mac,
                    device: rootdev,
                    via: ReportVia::Manual,
                },
                &current_actor(),
            )?;
            let after = engine.state().machine(&mac).map(|m| m.group.clone());
            let mut msg = describe(&done.events[0].event);
            if before != after {
                msg += &format!(
                    "; moved from {} to {}",
                    before.as_deref().unwrap_or("nowhere"),
                    or_dash(after)
                );
            }
            ctx.report(&done, msg)
        }
        Cmd::History {
            machine,
            since,
            until,
        } => {
            let engine = ctx.open(false)?;
            let mac = match Mac::parse(&machine) {
                Some(m) => m,
                None => one_machine(&engine, &machine)?,
            };
            let since = since.map(|s| parse_time(&s)).transpose()?;
            let until = until.map(|s| parse_time(&s)).transpose()?;
            let events = engine.history(&mac, since, until)?;
            if events.is_empty() && engine.state().machine(&mac).is_none() {
                bail!("no event mentions {mac}; list machines with `nmt machines`");
            }
            if ctx.json {
                output::json(&events)?;
            } else {
                output::table(
                    &["TIME", "SEQ", "ACTOR", "EVENT"],
                    events.iter().map(|e| {
                        vec![
                            local_time(e.observed_at),
                            e.seq.to_string(),
                            e.actor.clone(),
                            describe(&e.event),
                        ]
                    }),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Show { machine } => {
            let engine = ctx.open(false)?;
            let mac = one_machine(&engine, &machine)?;
            show(&engine, &mac, ctx.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Render { check } => {
            if check {
                let engine = ctx.open(false)?;
                let drift = engine.drift();
                if ctx.json {
                    let v: Vec<String> = drift.iter().map(|d| d.to_string()).collect();
                    output::json(&json!({ "drift": v }))?;
                } else if drift.is_empty() {
                    println!("every generated file is up to date");
                } else {
                    for d in &drift {
                        println!("{d}");
                    }
                }
                return Ok(if drift.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let mut engine = ctx.open(true)?;
            let out = engine.render_all()?;
            if ctx.json {
                output::json(&json!({
                    "written": out.written, "unchanged": out.unchanged, "removed": out.removed,
                }))?;
            } else {
                println!(
                    "{} written, {} unchanged, {} removed",
                    out.written.len(),
                    out.unchanged,
                    out.removed.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Journal(JournalCmd::Export { file }) => {
            let engine = ctx.open(false)?;
            export(&engine, file.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Config { default } => {
            if default {
                print!("{}", Config::default_toml());
                return Ok(ExitCode::SUCCESS);
            }
            let cfg = Config::load(&ctx.cli_state, ctx.config.as_deref())?;
            let state = abs(&cfg.state_dir);
            if ctx.json {
                output::json(&json!({
                    "state_dir": state,
                    "config_file": cfg.source,
                    "paths": cfg.paths,
                    "render": cfg.render,
                }))?;
            } else {
                println!("state directory  {}", state.display());
                println!(
                    "configuration    {}",
                    cfg.source
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "built-in defaults (see `nmt config --default`)".into())
                );
                let p = &cfg.paths;
                println!("tftp root        {}", abs(&p.tftp_root).display());
                println!("dhcpd include    {}", abs(&p.dhcpd_include).display());
                println!("dnsmasq hosts    {}", abs(&p.dnsmasq_hosts).display());
                println!("hosts fragment   {}", abs(&p.etc_hosts).display());
                println!("node lists       {}", abs(&p.node_lists).display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn show(engine: &Engine, mac: &Mac, as_json: bool) -> Result<()> {
    let st = engine.state();
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
        output::json(&json!({
            "machine": view,
            "boot_entry": entry,
            "files": fv,
        }))?;
        return Ok(());
    }
    println!("mac          {}", view.mac);
    println!("name         {}", or_dash(view.name));
    println!("group        {}", view.group);
    let origin = match view.policy_origin {
        nmt_projections::Origin::Machine => "its own".to_string(),
        nmt_projections::Origin::MachineOnce => "its own, next boot only".to_string(),
        nmt_projections::Origin::Group => format!("from group {}", view.group),
    };
    println!("policy       {} ({origin})", view.effective_policy);
    if let Some(o) = &m.policy
        && o.once
    {
        println!(
            "then         {}",
            o.previous
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_else(|| format!("its group's policy ({})", st.group_policy(&m.group)))
        );
    }
    println!("ip           {}", or_dash(view.ip));
    println!("rootdev      {}", or_dash(view.rootdev));
    println!(
        "registered   {}",
        if view.registered {
            "yes"
        } else {
            "no (seen in a log)"
        }
    );
    println!("first seen   {}", local_time(view.first_seen));
    println!("last seen    {}", or_dash(view.last_seen.map(local_time)));
    println!("last ip      {}", or_dash(view.last_ip));
    if let Some(i) = view.installed {
        println!("installed    {} at {}", i.device, local_time(i.at));
    }
    if let Some(b) = view.last_boot {
        println!(
            "last boot    {} ({}) at {}",
            b.file,
            b.policy,
            local_time(b.at)
        );
    }
    for (path, content) in files {
        println!("\n# {}", path.display());
        print!("{content}");
    }
    Ok(())
}

/// Write the log as JSON lines, to a file (atomically) or standard output.
fn export(engine: &Engine, file: Option<&Path>) -> Result<()> {
    use crate::EventStore;
    use std::io::Write;
    let mut buf: Box<dyn Write> = match file {
        Some(p) if p != Path::new("-") => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("while creating {}", p.display()))?,
        )),
        _ => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let last = engine.store().last_seq()?;
    engine.store().scan(1..=last.max(1), &mut |env| {
        buf.write_all(&env.to_json())?;
        buf.write_all(b"\n")?;
        Ok(true)
    })?;
    buf.flush()?;
    Ok(())
}

/// Read a node table (CSV: mac,name,ip,group, optional header, # comments).
fn read_node_table(file: &Path) -> Result<Vec<ImportRow>> {
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("while reading the node table from standard input")?;
    } else {
        text = std::fs::read_to_string(file)
            .with_context(|| format!("while reading the node table {}", file.display()))?;
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut cols = [0usize, 1, 2, 3];
    let mut header_seen = false;
    let mut rows = Vec::new();
    // Line numbers from byte offsets: the CSV reader does not count comment lines.
    let line_of = |byte: u64| {
        text.as_bytes()[..byte as usize]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    };
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("while reading {}", file.display()))?;
        let line = rec.position().map(|p| line_of(p.byte())).unwrap_or(i + 1);
        if rec.iter().all(|f| f.is_empty()) || rec.get(0).is_some_and(|f| f.starts_with('#')) {
            continue;
        }
        if rows.is_empty() && !header_seen && rec.iter().any(|f| f.eq_ignore_ascii_case("mac")) {
            header_seen = true;
            let find = |name: &str| rec.iter().position(|f| f.eq_ignore_ascii_case(name));
            for (k, name) in ["mac", "name", "ip", "group"].iter().enumerate() {
                cols[k] = find(name).unwrap_or(usize::MAX);
            }
            for f in rec.iter() {
                if !["mac", "name", "ip", "group"]
                    .iter()
                    .any(|n| f.eq_ignore_ascii_case(n))
                {
                    bail!(
                        "line {line}: unknown column {f:?} in the header; columns are mac,name,ip,group"
                    );
                }
            }
            continue;
        }
        if rec.len() > 4 {
            bail!(
                "line {line}: {} fields; a node table row is mac,name,ip,group",
                rec.len()
            );
        }
        let get = |k: usize| rec.get(cols[k]).unwrap_or("").to_string();
        rows.push(ImportRow {
            line,
            mac: get(0),
            name: get(1),
            ip: get(2),
            group: get(3),
        });
    }
    if rows.is_empty() {
        bail!(
            "{} holds no rows; a node table row is mac,name,ip,group",
            file.display()
        );
    }
    Ok(rows)
}
