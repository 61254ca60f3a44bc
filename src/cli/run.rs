//! Running `nmt`: turn the command line into an [`Action`], perform it — through `nmtd`'s
//! socket when a daemon answers there, else on the store directly — and print its output.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nmt_projections::{
    AnswerKind, Bmc, BmcProtocol, ImportRow, PowerOp, Profile, ProfileKind, Tls,
};
use serde_json::json;

use super::args::{
    BmcCmd, Cli, Cmd, GroupCmd, ImageCmd, InstallerPasswordCmd, JournalCmd, MachineCmd, PowerArg,
    ProfileCmd, ReplayCmd, RootdevCmd, ScheduleCmd,
};
use super::output;
use super::render::render;
use crate::app::{
    Action, Answer, Confirm, Failure, Mode, Replayed, Reply, machine_add, parse_node_table,
};
use crate::engine::{Imported, import_journal, whole_or_partial};
use crate::{Config, DB_FILE, Engine, OpenOptions, current_actor, parse_time};

/// The state directory used when neither --state nor NMT_STATE is given.
pub const DEFAULT_STATE: &str = "nmt-state";

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    if !(cli.wait.is_finite() && cli.wait >= 0.0) {
        bail!("--wait must be a number of seconds, 0 or more");
    }
    let state = cli.state.clone().unwrap_or_else(|| DEFAULT_STATE.into());
    let mut export_to: Option<PathBuf> = None;
    let mut export_filter: Option<nmt_replay::ExportFilter> = None;
    let action = match cli.command {
        Cmd::Config { default } => return config(&state, cli.config.as_deref(), default, cli.json),
        Cmd::Init => {
            return init(
                &state,
                cli.config.as_deref(),
                cli.wait,
                cli.json,
                cli.dry_run,
            );
        }
        Cmd::Journal(JournalCmd::Export {
            file,
            since,
            until,
            machine,
        }) => {
            export_to = file.filter(|f| f != Path::new("-"));
            if let Some(path) = &export_to {
                // Only the file is created, never its directory.
                let dir = abs(path).parent().map(Path::to_path_buf);
                if let Some(dir) = dir
                    && !dir.is_dir()
                {
                    bail!(
                        "the directory {} does not exist; nothing was exported (create it \
                         first, or export to another path)",
                        dir.display()
                    );
                }
            }
            let since = since.as_deref().map(parse_time).transpose()?;
            let until = until.as_deref().map(parse_time).transpose()?;
            export_filter = Some(nmt_replay::ExportFilter {
                since: since.map(|t| t.to_string()),
                until: until.map(|t| t.to_string()),
                machine: machine.clone(),
            });
            Action::JournalExport {
                since,
                until,
                machine,
            }
        }
        Cmd::Journal(JournalCmd::Import { file, partial }) => {
            return import(
                &state,
                cli.config.as_deref(),
                &file,
                partial,
                cli.json,
                cli.dry_run,
            );
        }
        Cmd::Replay(ReplayCmd::Logs {
            files,
            year,
            strict,
        }) => {
            let paths: Vec<PathBuf> = files.iter().map(|f| abs(f)).collect();
            let action = Action::ReplayLogs {
                paths: paths.clone(),
                year,
                strict,
            };
            let socket = Config::load(&state, cli.config.as_deref())?.daemon.socket;
            if cli.dry_run || crate::client::via_daemon(&socket, &Action::Status).is_some() {
                // nmtd owns the store: it reads the files itself (as its own user). A dry run
                // is planned like any other command.
                action
            } else {
                return replay_here(
                    &state,
                    cli.config.as_deref(),
                    &paths,
                    year,
                    strict,
                    cli.json,
                );
            }
        }
        other => action_of(other)?,
    };
    // A running nmtd owns the store: ask it. Otherwise work on the store directly.
    let socket = Config::load(&state, cli.config.as_deref())?.daemon.socket;
    let opts = OpenOptions {
        state_dir: state.clone(),
        config: cli.config.clone(),
        wait: Duration::from_secs_f64(cli.wait),
        // Only `nmt init` (and nmtd's first start) creates a state.
        create: false,
    };
    let mut mode = Mode {
        dry_run: cli.dry_run,
        confirm: if cli.yes {
            Confirm::Unchecked
        } else {
            Confirm::Ask
        },
    };
    let waiting = power_spinner(&action, cli.json || cli.dry_run);
    let (mut answer, mut notes) = perform(&socket, &opts, &action, &mode)?;
    if let Some(w) = waiting {
        w.finish_and_clear();
    }
    // Bulk destruction: the machines it reaches are listed, and it is done only once
    // confirmed, and only if it still reaches exactly them.
    if let Ok(Reply::Unconfirmed(plan)) = &answer {
        use std::io::IsTerminal;
        let mut list = super::render::confirmation_text(&plan.impact);
        if let Action::ScheduleAdd { name, command, .. } = &action {
            list = format!(
                "schedule {name} runs `nmt {}`; if it ran now, {list}",
                command.join(" ")
            );
        }
        let set = plan.impact.at_risk();
        if std::io::stdin().is_terminal() && !cli.json {
            eprint!("{notes}{list}Proceed? [y/N] ");
            notes.clear();
            if confirmed(&mut std::io::stdin().lock())? {
                mode.confirm = Confirm::Reaching(set);
                (answer, notes) = perform(&socket, &opts, &action, &mode)?;
            } else {
                eprintln!("nmt: nothing was done");
                return Ok(ExitCode::from(crate::app::UNCONFIRMED));
            }
        } else {
            notes.push_str(&format!(
                "{}nmt: not done: this needs confirmation, and standard input is not a \
                 terminal to ask on; check the list above (`--dry-run` shows every event and \
                 file), then run the command again with --yes. Nothing was changed.\n",
                list.lines()
                    .map(|l| format!("nmt: {l}\n"))
                    .collect::<String>()
            ));
        }
    }
    let (code, stdout, stderr) = match answer {
        Ok(reply) => {
            let (code, mut text) = render(&reply, cli.json);
            if let Some(filter) = export_filter
                && code == 0
            {
                // An export ends with its trailer: what it holds, checked by `journal import`.
                text.push_str(&nmt_replay::Trailer::of(text.as_bytes(), filter).to_line());
            }
            (code, text, notes)
        }
        Err(f) => (1, String::new(), format!("{notes}{}\n", f.message())),
    };
    if let Some(path) = export_to.as_ref().filter(|_| cli.dry_run && code == 0) {
        Stdout.write_all(
            format!(
                "dry run: would write {} ({} lines); nothing was written\n",
                abs(path).display(),
                stdout.lines().count()
            )
            .as_bytes(),
        )?;
    } else if let Some(path) = export_to
        && code == 0
    {
        write_atomically(&path, stdout.as_bytes())?;
    } else {
        Stdout.write_all(stdout.as_bytes())?;
    }
    std::io::stderr().write_all(stderr.as_bytes())?;
    Ok(ExitCode::from(code))
}

/// While the BMCs of a power action are asked (it can take a while: each machine has up to
/// `[power] timeout`), a spinner on a terminal says so.
fn power_spinner(action: &Action, quiet: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    let what = match action {
        Action::Power { op, range } => format!("power {op} {range}"),
        Action::Policy {
            range,
            reboot: true,
            ..
        } => format!("policy, then power cycle {range}"),
        _ => return None,
    };
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .expect("a valid template"),
    );
    bar.set_message(format!("{what}: asking the BMCs…"));
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// Standard output, whose closing by its reader (`nmt … | head`) is told apart from every
/// other broken pipe (e.g. nmtd's socket): [`closed_stdout`] recognises it.
struct Stdout;

/// The reader of standard output is gone.
#[derive(Debug)]
struct ClosedStdout;

impl std::fmt::Display for ClosedStdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for ClosedStdout {}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout().write(buf).map_err(closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush().map_err(closed)
    }
}

fn closed(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::io::Error::new(e.kind(), ClosedStdout)
    } else {
        e
    }
}

/// Whether an error is a write to a standard output whose reader is gone.
pub fn closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<ClosedStdout>())
    })
}

/// Perform through nmtd when one answers on `socket`, else on the store directly: the
/// answer, and what to say first on standard error.
fn perform(
    socket: &Path,
    opts: &OpenOptions,
    action: &Action,
    mode: &Mode,
) -> Result<(Answer, String)> {
    Ok(match crate::client::via_daemon_with(socket, action, mode) {
        Some(answer) => (answer?, String::new()),
        None => perform_here(opts, action.clone(), mode),
    })
}

/// Whether the admin answered yes (`y` or `yes`, any case) to "Proceed? [y/N]".
fn confirmed(input: &mut dyn std::io::BufRead) -> Result<bool> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("while reading the answer from standard input")?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Perform on the store directly: the answer, and what to say first on standard error (a
/// new state, its installer password).
fn perform_here(opts: &OpenOptions, action: Action, mode: &Mode) -> (Answer, String) {
    let mut engine = match Engine::open(opts) {
        Ok(e) => e,
        Err(e) => return (Err(Failure::of(&e)), String::new()),
    };
    let answer = crate::app::perform_with(
        &mut engine,
        action,
        mode,
        &current_actor(),
        nmt_projections::Source::Cli,
    )
    .map_err(|e| Failure::of(&e));
    let mut notes = String::new();
    if answer.is_ok()
        && let Some(problem) = engine.files_problem()
    {
        notes.push_str(&format!(
            "nmt: the generated files are not up to date: {problem}; fix the cause and run \
             `nmt render`\n"
        ));
    }
    engine.close_at_exit();
    (answer, notes)
}

/// `nmt init`: create a new, empty state (its first events: the site key and the installer
/// password's hash), or say that there already is one.
fn init(
    state: &Path,
    config: Option<&Path>,
    wait: f64,
    json: bool,
    dry_run: bool,
) -> Result<ExitCode> {
    let dir = abs(state);
    let db = dir.join(DB_FILE);
    if dry_run && !db.exists() {
        let text = if json {
            output::json(&json!({ "created": false, "would_create": true, "state": dir }))
        } else {
            format!(
                "dry run: would create a new nmt state in {} ({DB_FILE}, its site key and an \
                 installer password, and the generated files); nothing was created\n",
                dir.display()
            )
        };
        Stdout.write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    if db.exists() {
        let text = if json {
            output::json(&json!({ "created": false, "state": dir }))
        } else {
            format!(
                "{} already holds an nmt state ({DB_FILE}); nothing changed\n",
                dir.display()
            )
        };
        Stdout.write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut engine = Engine::open(&OpenOptions {
        state_dir: dir.clone(),
        config: config.map(Path::to_path_buf),
        wait: Duration::from_secs_f64(wait),
        create: true,
    })?;
    let password = engine.take_new_password();
    let problem = engine.files_problem().map(str::to_string);
    let events = engine.state().last_seq();
    let text = if json {
        output::json(&json!({
            "created": true,
            "state": dir,
            "events": events,
            "installer_password": password,
            "files_problem": problem,
        }))
    } else {
        let mut text = format!(
            "created a new nmt state in {} (events in {DB_FILE}; generated files where `nmt \
             config` says)\n",
            dir.display()
        );
        if let Some(p) = &password {
            text.push_str(&format!(
                "the installer password of installed machines and installer consoles is {p}\n\
                 write it down, then run `nmt installer-password ack`: until then `nmt \
                 installer-password show` shows it to an admin (the event log keeps only its \
                 hash)\n"
            ));
        }
        text.push_str(
            "next: `nmt config --default > nmt.toml` in that directory to choose where files \
             go, then `nmtd` to follow the DHCP server's log\n",
        );
        text
    };
    Stdout.write_all(text.as_bytes())?;
    if let Some(p) = problem {
        eprintln!(
            "nmt: the new state is recorded, but its generated files are not up to date: {p}; \
             fix the cause and run `nmt render`"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::write_batch([(abs(path), bytes)], [])
        .with_context(|| format!("while writing {}", path.display()))?;
    Ok(())
}

/// The action a command asks for; what only the caller can read (files, standard input,
/// local times) is read here.
/// The action a schedule runs: `argv` (what follows `--`) read as an `nmt` command line.
/// The preseed settings given on the command line; `None` when none is (nmt's defaults).
/// The template file is read here, by the caller, and stored with the profile.
fn preseed_options(
    a: Box<crate::cli::args::PreseedArgs>,
) -> Result<Option<Box<nmt_projections::PreseedOptions>>> {
    let list = |s: &str| -> Vec<String> {
        s.split([',', ' '])
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let template = match &a.preseed_template {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the preseed template {}", path.display()))?;
            Some(String::from_utf8(bytes).map_err(|_| {
                anyhow!("the preseed template {} is not UTF-8 text", path.display())
            })?)
        }
        None => None,
    };
    let o = nmt_projections::PreseedOptions {
        mirror: a.mirror,
        suite: a.suite,
        mirror_key: a.mirror_key,
        proxy: a.proxy,
        locale: a.locale,
        keyboard: a.keyboard,
        timezone: a.timezone,
        disk: a.disk,
        recipe: a.recipe,
        tasks: a.tasks.map(|t| {
            if t.trim() == "none" {
                Vec::new()
            } else {
                list(&t)
            }
        }),
        packages: a.packages.as_deref().map(list).unwrap_or_default(),
        late_command: a.late_command,
        set: a.set,
        template,
    };
    Ok((!o.is_default()).then(|| Box::new(o)))
}

fn scheduled_action(argv: &[String]) -> Result<Action> {
    use clap::Parser;
    let cli = Cli::try_parse_from(std::iter::once("nmt".to_string()).chain(argv.iter().cloned()))
        .map_err(|e| {
        let said = e.to_string();
        let first = said
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ");
        anyhow!(
            "the command after `--` is not an nmt command ({}): {first}; write it as you \
                 would run it, without `nmt` (e.g. -- policy @lab localboot)",
            argv.join(" "),
        )
    })?;
    // (Looked for in the words: NMT_STATE and NMT_CONFIG in the environment are the
    // caller's own.)
    let given = |flag: &str| {
        argv.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if given("--state") || given("--config") || cli.dry_run {
        bail!(
            "the command after `--` runs in nmtd, on its own state: leave out --state, --config \
             and --dry-run there (put --dry-run before `schedule`)"
        );
    }
    let action = match cli.command {
        Cmd::Schedule(_) => bail!("a schedule cannot run `nmt schedule`"),
        cmd @ (Cmd::Machine(_)
        | Cmd::Name { .. }
        | Cmd::Group(_)
        | Cmd::Assign { .. }
        | Cmd::Policy { .. }
        | Cmd::Power { .. }
        | Cmd::Rootdev { .. }
        | Cmd::Profile(_)) => action_of(cmd)?,
        _ => bail!(
            "`nmt {}` cannot be scheduled: a schedule runs a command that changes machines or \
             their boot policies (policy, assign, rootdev, name, group, machine, profile)",
            argv.join(" ")
        ),
    };
    if !action.schedulable() {
        bail!(
            "`nmt {}` cannot be scheduled: it only reads; a schedule runs a command that \
             changes machines or their boot policies",
            argv.join(" ")
        );
    }
    Ok(action)
}

fn action_of(cmd: Cmd) -> Result<Action> {
    Ok(match cmd {
        Cmd::Machine(MachineCmd::Add {
            mac,
            name,
            group,
            ip,
        }) => machine_add(&mac, name, group, ip.as_deref())?,
        Cmd::Machine(MachineCmd::Import { file }) => Action::MachineImport {
            rows: read_node_table(&file)?,
        },
        Cmd::Machine(MachineCmd::Rm { range }) => Action::MachineRm { range },
        Cmd::Machine(MachineCmd::Restore { machine, group }) => {
            Action::MachineRestore { machine, group }
        }
        Cmd::Name {
            target,
            name,
            pattern,
        } => Action::Name {
            target,
            name,
            pattern,
        },
        Cmd::Group(GroupCmd::Add { group, policy }) => Action::GroupAdd { group, policy },
        Cmd::Group(GroupCmd::Rm { group, force, to }) => Action::GroupRm { group, force, to },
        Cmd::Group(GroupCmd::List) => Action::GroupList,
        Cmd::Assign {
            range,
            group,
            ip,
            no_ip,
        } => Action::Assign {
            range,
            group,
            ip,
            no_ip,
        },
        Cmd::Policy {
            range,
            policy,
            once,
            members,
            reboot,
        } => Action::Policy {
            range,
            policy,
            once,
            members,
            reboot,
        },
        Cmd::Machines { range, at } => Action::Machines {
            range,
            at: at.as_deref().map(parse_time).transpose()?,
        },
        Cmd::Rootdev { cmd } => match cmd.unwrap_or(RootdevCmd::List) {
            RootdevCmd::List => Action::RootdevList,
            RootdevCmd::Set { range, device } => Action::RootdevSet { range, device },
            RootdevCmd::Rm { range } => Action::RootdevRm { range },
        },
        Cmd::Profile(ProfileCmd::Add {
            name,
            kind,
            kernel,
            initrd,
            args,
            answer,
            network_console,
            preseed,
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
                        anyhow!(
                            "{a:?} is not an answer-file kind; use preseed, kickstart or autoinstall"
                        )
                    })
                })
                .transpose()?;
            Action::ProfileAdd {
                profile: Profile {
                    name,
                    kind,
                    kernel,
                    initrd,
                    args,
                    answer,
                    network_console,
                    preseed: preseed_options(preseed)?,
                },
                replace,
            }
        }
        Cmd::Profile(ProfileCmd::Rm { name }) => Action::ProfileRm { name },
        Cmd::Profile(ProfileCmd::List) => Action::ProfileList,
        Cmd::Schedule(ScheduleCmd::Add {
            name,
            cron,
            tz,
            expect,
            grace,
            replace,
            action,
        }) => Action::ScheduleAdd {
            name,
            cron,
            tz: Some(tz.unwrap_or_else(crate::app::schedule::local_zone)),
            expect,
            grace,
            run: Box::new(scheduled_action(&action)?),
            command: action,
            replace,
        },
        Cmd::Schedule(ScheduleCmd::List) => Action::ScheduleList,
        Cmd::Power { op, range } => Action::Power {
            op: match op {
                PowerArg::On => PowerOp::On,
                PowerArg::Off => PowerOp::Off,
                PowerArg::Cycle => PowerOp::Cycle,
                PowerArg::Reset => PowerOp::Reset,
                PowerArg::Status => PowerOp::Status,
            },
            range,
        },
        Cmd::Bmc(BmcCmd::Show { range }) => Action::BmcShow { range },
        Cmd::Bmc(BmcCmd::Rm { range }) => Action::BmcRm { range },
        Cmd::Bmc(BmcCmd::Set {
            range,
            ipmi,
            redfish,
            wol,
            user,
            password_file,
            cacert,
            insecure,
            interface,
            broadcast,
        }) => {
            if redfish.is_none() && (cacert.is_some() || insecure) {
                bail!("--cacert and --insecure are for --redfish (IPMI has no certificates)");
            }
            if !wol && (interface.is_some() || broadcast.is_some()) {
                bail!("--interface and --broadcast are for --wol");
            }
            let protocol = match (ipmi, redfish, wol) {
                (Some(hp), None, false) => {
                    let (host, port) = ipmi_host_port(&hp)?;
                    BmcProtocol::Ipmi { host, port }
                }
                (None, Some(url), false) => BmcProtocol::Redfish {
                    url,
                    tls: match (cacert, insecure) {
                        (Some(f), _) => Tls::Pin {
                            pem: std::fs::read_to_string(&f).with_context(|| {
                                format!("while reading the certificate {}", f.display())
                            })?,
                        },
                        (None, true) => Tls::Insecure,
                        (None, false) => Tls::Verify,
                    },
                },
                (None, None, true) => BmcProtocol::Wol {
                    interface,
                    broadcast,
                },
                _ => bail!("give one of --ipmi HOST, --redfish URL or --wol"),
            };
            let is_wol = matches!(protocol, BmcProtocol::Wol { .. });
            if is_wol && (user.is_some() || password_file.is_some()) {
                bail!("Wake-on-LAN has no user or password; leave out --user and --password-file");
            }
            Action::BmcSet {
                range,
                bmc: Bmc { protocol, user },
                password: password_file
                    .as_deref()
                    .map(crate::app::power::read_password_file)
                    .transpose()?,
            }
        }
        Cmd::Schedule(ScheduleCmd::Rm { name }) => Action::ScheduleRm { name },
        Cmd::Schedule(ScheduleCmd::Pause { name }) => Action::SchedulePause { name },
        Cmd::Schedule(ScheduleCmd::Resume { name }) => Action::ScheduleResume { name },
        Cmd::Schedule(ScheduleCmd::Runs { name }) => Action::ScheduleRuns { name },
        Cmd::Image(ImageCmd::List) => Action::ImageList,
        Cmd::Image(ImageCmd::Show { image }) => Action::ImageShow { image },
        Cmd::Image(ImageCmd::Rm { image }) => Action::ImageRm { image },
        Cmd::Image(ImageCmd::Check { image }) => Action::ImageCheck { image },
        Cmd::Installed { machine, rootdev } => Action::Installed { machine, rootdev },
        Cmd::History {
            machine,
            since,
            until,
            kind,
        } => Action::History {
            machine,
            since: since.as_deref().map(parse_time).transpose()?,
            until: until.as_deref().map(parse_time).transpose()?,
            kinds: kind,
        },
        Cmd::Boots { machine, since } => Action::Boots {
            machine,
            since: since.as_deref().map(parse_time).transpose()?,
        },
        Cmd::Verify => Action::Verify,
        Cmd::Show { machine, at } => Action::Show {
            machine,
            at: at.as_deref().map(parse_time).transpose()?,
        },
        Cmd::Status => Action::Status,
        Cmd::WebLogin => Action::WebLogin,
        Cmd::Render { check } => Action::Render { check },
        Cmd::InstallerPassword(cmd) => match cmd {
            InstallerPasswordCmd::Show => Action::InstallerPasswordShow,
            InstallerPasswordCmd::Ack => Action::InstallerPasswordAck,
            InstallerPasswordCmd::Set => Action::InstallerPasswordSet {
                crypted: crate::password::crypt(&read_new_password()?)?,
            },
            InstallerPasswordCmd::Rotate => Action::InstallerPasswordRotate,
        },
        Cmd::Replay(ReplayCmd::Leases { files }) => Action::ReplayLeases {
            paths: files.iter().map(|f| abs(f)).collect(),
        },
        Cmd::Journal(_) | Cmd::Replay(ReplayCmd::Logs { .. }) | Cmd::Config { .. } | Cmd::Init => {
            unreachable!("handled by the caller")
        }
    })
}

/// `nmt replay logs` on the store directly, with progress on standard error.
fn replay_here(
    state: &Path,
    config: Option<&Path>,
    paths: &[PathBuf],
    year: Option<i16>,
    strict: bool,
    json: bool,
) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let mut engine = Engine::open(&OpenOptions {
        state_dir: state.to_path_buf(),
        config: config.map(Path::to_path_buf),
        wait: Duration::from_secs(10),
        create: false,
    })?;
    // Every file is read twice (a check, then the replay): progress is shown in the input's
    // own size, with the pass it is in.
    let input = |p: &nmt_replay::Progress| (p.read / 2, p.total / 2);
    let pass = |p: &nmt_replay::Progress| {
        if p.read * 2 < p.total {
            "checking"
        } else {
            "replaying"
        }
    };
    let progress: Box<dyn FnMut(nmt_replay::Progress) + Send> = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "replay: {msg:9} {bar:40} {bytes}/{total_bytes} ({eta})",
            )
            .expect("a valid template"),
        );
        Box::new(move |p: nmt_replay::Progress| {
            let (read, total) = input(&p);
            bar.set_length(total);
            bar.set_position(read);
            bar.set_message(pass(&p));
            if p.read >= p.total {
                bar.finish_and_clear();
            }
        })
    } else {
        let mut last = 0u64;
        Box::new(move |p: nmt_replay::Progress| {
            let pct = (p.read * 100).checked_div(p.total).unwrap_or(100);
            if pct >= last + 10 || (pct == 100 && last != 100) {
                last = pct;
                let (read, total) = input(&p);
                eprintln!(
                    "replay: {pct}% ({}; {read} of {total} bytes of input, each read twice)",
                    pass(&p)
                );
            }
        })
    };
    let years = match year {
        Some(y) => nmt_replay::YearRule::Fixed(y),
        None => nmt_replay::YearRule::Infer,
    };
    let summary = engine.replay(paths, years, Some(progress))?;
    let reply = Reply::Replayed {
        summary: Replayed::from(&summary),
        strict,
    };
    let (code, text) = render(&reply, json);
    Stdout.write_all(text.as_bytes())?;
    Ok(ExitCode::from(code))
}

/// `nmt journal import`: into an empty state, on the store directly (no daemon may own it).
/// An export without its trailer, or a filtered one, needs `partial`.
fn import(
    state: &Path,
    config: Option<&Path>,
    file: &Path,
    partial: bool,
    json: bool,
    dry_run: bool,
) -> Result<ExitCode> {
    let socket = Config::load(state, config)?.daemon.socket;
    if crate::client::via_daemon(&socket, &Action::Status).is_some() {
        bail!(
            "nmtd is running on {}; `journal import` rebuilds an empty state directory: import \
             into a new one, then start nmtd on it",
            state.display()
        );
    }
    let reader: Box<dyn std::io::BufRead + Send> = if file == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file)
                .with_context(|| format!("while opening the journal {}", file.display()))?,
        ))
    };
    if dry_run {
        // The whole export is read and checked, and nothing is written.
        let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
        let mut events = 0u64;
        let trailer = nmt_replay::read_export_chunks(reader, &mut |chunk| {
            events += chunk.events.len() as u64;
            for e in &chunk.events {
                *kinds.entry(e.event.kind()).or_default() += 1;
            }
            Ok(())
        })
        .with_context(|| format!("{} was refused; nothing was imported", file.display()))?;
        let prefix = whole_or_partial(events, trailer.as_ref(), file, partial)?;
        let text = if json {
            output::json(&json!({
                "dry_run": true,
                "events": events,
                "kinds": kinds,
                "partial": prefix.is_some(),
            }))
        } else {
            let mut t = format!(
                "dry run: nothing was imported or written\nwould import {events} events into {} \
                 (it must hold none), then write every generated file:\n",
                abs(state).display()
            );
            for (k, n) in kinds {
                t.push_str(&format!("  {n} {k}\n"));
            }
            t
        };
        Stdout.write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Imported {
        events: n,
        last,
        partial: prefix,
        written: out,
    } = import_journal(
        &OpenOptions {
            state_dir: state.to_path_buf(),
            config: config.map(Path::to_path_buf),
            wait: Duration::from_secs(10),
            create: true,
        },
        reader,
        file,
        partial,
    )?;
    let text = if json {
        output::json(&json!({
            "events": n,
            "files_written": out.written.len(),
            "partial": prefix.is_some(),
        }))
    } else {
        let mut text = format!(
            "imported {n} events into {}; {} files written\n",
            abs(state).display(),
            out.written.len()
        );
        if let Some(why) = prefix {
            text.push_str(&format!(
                "--partial: {why}; the state holds its {n} events, up to event {}, and \
                 nothing after\n",
                last
            ));
        }
        text
    };
    Stdout.write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn config(state: &Path, explicit: Option<&Path>, default: bool, json: bool) -> Result<ExitCode> {
    // A closed standard output is an error here, not a panic: `nmt` ends quietly on it.
    let mut out = Stdout;
    if default {
        out.write_all(Config::default_toml().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = Config::load(state, explicit)?;
    let p = &cfg.paths;
    if json {
        let text = output::json(&json!({
            "state_dir": abs(&cfg.state_dir),
            "config_file": cfg.source,
            "paths": cfg.paths,
            "render": cfg.render,
        }));
        out.write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "state directory  {}", abs(&cfg.state_dir).display())?;
    writeln!(
        out,
        "configuration    {}",
        cfg.source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "built-in defaults (see `nmt config --default`)".into())
    )?;
    writeln!(out, "tftp root        {}", abs(&p.tftp_root).display())?;
    writeln!(out, "dhcpd include    {}", abs(&p.dhcpd_include).display())?;
    writeln!(out, "dnsmasq hosts    {}", abs(&p.dnsmasq_hosts).display())?;
    writeln!(
        out,
        "kea reservations {}",
        abs(&p.kea_reservations).display()
    )?;
    writeln!(out, "hosts fragment   {}", abs(&p.etc_hosts).display())?;
    writeln!(out, "node lists       {}", abs(&p.node_lists).display())?;
    Ok(ExitCode::SUCCESS)
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
    parse_node_table(&text, &file.display().to_string())
}

/// A new installer password from standard input (one line), or typed at a prompt.
fn read_new_password() -> Result<String> {
    use std::io::IsTerminal;
    let mut line = String::new();
    if std::io::stdin().is_terminal() {
        eprint!("nmt: type the new installer password, then Enter (it is echoed): ");
    }
    std::io::stdin()
        .read_line(&mut line)
        .context("while reading the new installer password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password given on standard input; nothing was changed");
    }
    Ok(password.to_string())
}

/// `--ipmi HOST[:PORT]`: a name or IPv4 address with an optional port, an IPv6 address
/// bare (`fd00::42`) or in brackets with a port (`[fd00::42]:624`); the port is 623 unless
/// given.
fn ipmi_host_port(hp: &str) -> Result<(String, u16)> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| anyhow!("--ipmi {hp:?}: the port after ':' is not a number"))
    };
    if let Some(rest) = hp.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            bail!("--ipmi {hp:?}: no ']' after the IPv6 address");
        };
        return match after {
            "" => Ok((host.to_string(), 623)),
            a => match a.strip_prefix(':') {
                Some(p) => Ok((host.to_string(), port(p)?)),
                None => bail!("--ipmi {hp:?}: ':PORT' may follow ']', nothing else"),
            },
        };
    }
    match hp.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => Ok((h.to_string(), port(p)?)),
        _ => Ok((hp.to_string(), 623)),
    }
}
