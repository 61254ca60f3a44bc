//! Printing an action's [`Reply`] as `nmt` does: an aligned table or text for people, or
//! JSON for scripts (the shapes scripts depend on), with times in this process's zone — the
//! caller's, also when nmtd did the work.

use std::fmt::Write as _;

use nmt_projections::{Impact, Origin, describe, machine_list};
use serde_json::json;

use super::output::{self, local_time, or_dash};
use crate::app::{Files, Planned, Reply, ShowView, Then};

/// What a reply prints on standard output, and the exit status.
pub fn render(reply: &Reply, json: bool) -> (u8, String) {
    let text = if json { as_json(reply) } else { as_text(reply) };
    (reply.code(), text)
}

fn files_json(f: &Files) -> serde_json::Value {
    json!({
        "written": f.written,
        "unchanged": f.unchanged,
        "removed": f.removed,
    })
}

fn as_json(reply: &Reply) -> String {
    match reply {
        Reply::Changed {
            events,
            files,
            impact,
            ..
        } => output::json(&json!({
            "events": events,
            "files": files_json(files),
            "impact": impact,
        })),
        Reply::Planned(p) => output::json(&json!({
            "dry_run": true,
            "summary": p.summary,
            "events": p.events,
            "files": files_json(&p.files),
            "impact": p.impact,
            "needs_confirmation": p.needs_confirmation,
        })),
        Reply::Unconfirmed(p) => output::json(&json!({
            "done": false,
            "needs_confirmation": true,
            "impact": p.impact,
        })),
        // As a JSON value: its keys in order, as `group list --json` always printed them.
        Reply::Groups(groups) => output::json(&json!(groups)),
        Reply::Machines(views) => output::json(views),
        Reply::Rootdevs(rows) => output::json(rows),
        Reply::Profiles(profiles) => output::json(profiles),
        Reply::Images(images) => output::json(images),
        Reply::Schedules(s) => output::json(s),
        Reply::Bmcs(b) => output::json(b),
        Reply::Power { changed, results } => output::json(&json!({
            "changed": changed
                .as_deref()
                .map(|c| serde_json::from_str::<serde_json::Value>(&as_json(c)).unwrap_or_default()),
            "results": results,
            "failed": results.iter().filter(|r| !r.ok).count(),
        })),
        Reply::ScheduleRuns {
            one: true,
            schedules,
        } if schedules.len() == 1 => output::json(&schedules[0]),
        Reply::ScheduleRuns { schedules, .. } => output::json(schedules),
        Reply::Image(image) => output::json(image),
        Reply::ImagesChecked(checks) => output::json(checks),
        // Each event as exported; one that used up a one-shot policy says so in
        // `one_shot_spent` (`used`, `now`, `origin`, `group`).
        Reply::History { events, spent, .. } => output::json(
            &events
                .iter()
                .map(|e| {
                    let mut v = serde_json::to_value(e).unwrap_or_default();
                    if let (Some(s), Some(o)) =
                        (spent.iter().find(|s| s.seq == e.seq), v.as_object_mut())
                    {
                        o.insert(
                            "one_shot_spent".into(),
                            serde_json::to_value(s).unwrap_or_default(),
                        );
                    }
                    v
                })
                .collect::<Vec<_>>(),
        ),
        Reply::Boots { boots, .. } => output::json(boots),
        Reply::Show(show) => output::json(&json!({
            "machine": show.machine,
            "boot_entry": show.boot_entry,
            "files": show.files,
            "imaging": show.imaging,
        })),
        Reply::Verify { problems, .. } => {
            output::json(&json!({ "ok": problems.is_empty(), "problems": problems }))
        }
        Reply::Drift(drift) => output::json(&json!({ "drift": drift })),
        Reply::Rendered(files) => output::json(&files_json(files)),
        Reply::Replayed { summary, .. } => output::json(summary),
        Reply::LeasesReplayed(summary) => output::json(summary),
        Reply::Status(status) => match &status.daemon {
            None => output::json(&json!({ "daemon": false, "sources": [] })),
            Some(d) => output::json(&json!({
                "daemon": true,
                "pid": d.pid,
                "events": d.events,
                "files_current_to": d.files_current_to,
                "files_problem": d.files_problem,
                "new_machines_limited": d.new_machines_limited,
                "counters": d.counters,
                "sources": d.sources,
                "imaging": d.imaging,
            })),
        },
        Reply::Journal(_) => as_text(reply),
        Reply::InstallerPassword {
            password,
            rotated,
            events,
        } => output::json(&json!({
            "password": password,
            "rotated": rotated,
            "events": events,
        })),
        Reply::PasswordAcknowledged(was) => output::json(&json!({ "acknowledged": was })),
        Reply::WebLogin { url, expires_in } => {
            output::json(&json!({ "url": url, "expires_in": expires_in }))
        }
    }
}

fn as_text(reply: &Reply) -> String {
    match reply {
        Reply::Changed {
            summary,
            files,
            impact,
            ..
        } => {
            let mut out = format!("{summary}\n");
            if !files.written.is_empty() || !files.removed.is_empty() {
                let _ = writeln!(
                    out,
                    "files: {} written, {} removed",
                    files.written.len(),
                    files.removed.len()
                );
            }
            out.push_str(&impact_text(impact, false));
            out
        }
        Reply::Planned(p) => planned_text(p),
        // The list goes to standard error with the question (or the refusal).
        Reply::Unconfirmed(_) => String::new(),
        Reply::Groups(groups) => output::table(
            &["GROUP", "POLICY", "MEMBERS", "KIND"],
            groups.iter().map(|g| {
                vec![
                    g.group.clone(),
                    g.policy.to_string(),
                    g.members.to_string(),
                    if g.builtin { "built-in" } else { "named" }.to_string(),
                ]
            }),
        ),
        Reply::Machines(views) => output::table(
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
                    or_dash(v.name.as_deref()),
                    v.group.clone(),
                    format!("{}{mark}", v.effective_policy),
                    or_dash(v.ip),
                    or_dash(v.rootdev.as_deref()),
                    or_dash(v.last_seen.map(local_time)),
                ]
            }),
        ),
        Reply::Rootdevs(rows) => output::table(
            &["MAC", "NAME", "ROOTDEV"],
            rows.iter().map(|m| {
                vec![
                    m.mac.to_string(),
                    or_dash(m.name.as_deref()),
                    or_dash(m.rootdev.as_deref()),
                ]
            }),
        ),
        Reply::Profiles(profiles) => output::table(
            &[
                "PROFILE", "KIND", "ANSWER", "KERNEL", "INITRD", "ARGS", "PRESEED",
            ],
            profiles.iter().map(|p| {
                let settings = p.preseed.as_ref().map(|o| o.summary().join("; "));
                vec![
                    p.name.clone(),
                    p.kind.as_str().to_string(),
                    or_dash(p.answer.map(|a| a.as_str())),
                    p.kernel.clone(),
                    p.initrd.join(","),
                    p.args.clone(),
                    or_dash(settings.as_deref().filter(|s| !s.is_empty())),
                ]
            }),
        ),
        Reply::History {
            machine,
            events,
            spent,
        } => output::table(
            &["TIME", "SEQ", "ACTOR", "EVENT"],
            events.iter().map(|e| {
                let mut what = match machine {
                    Some(m) => nmt_projections::describe_for(&e.event, m),
                    None => describe(&e.event),
                };
                if let Some(s) = spent.iter().find(|s| s.seq == e.seq) {
                    let _ = write!(what, "; {s}");
                }
                vec![
                    local_time(e.observed_at),
                    e.seq.to_string(),
                    e.actor.clone(),
                    what,
                ]
            }),
        ),
        Reply::Schedules(s) => schedules_text(s),
        Reply::Bmcs(b) => bmcs_text(b),
        Reply::Power { changed, results } => {
            let mut out = changed.as_deref().map(as_text).unwrap_or_default();
            out.push_str(&power_text(results));
            out
        }
        Reply::ScheduleRuns { one, schedules } => schedules
            .iter()
            .map(|s| {
                if *one {
                    runs_text(&s.schedule, &s.runs)
                } else {
                    format!("{}:\n{}", s.schedule, runs_text(&s.schedule, &s.runs))
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Reply::Images(images) if images.is_empty() => "no image is saved yet; set a machine \
            to `save-image:NAME --once` and boot it\n"
            .to_string(),
        Reply::Images(images) => output::table(
            &["IMAGE", "FROM", "SAVED", "PARTS", "STORED", "RESTORES"],
            images.iter().map(|i| {
                vec![
                    if i.newest {
                        format!("{}@{} (newest)", i.image, i.version)
                    } else {
                        format!("{}@{}", i.image, i.version)
                    },
                    i.from_name.clone().unwrap_or_else(|| i.from.to_string()),
                    local_time(i.saved_at),
                    i.partitions.to_string(),
                    mib(i.stored_bytes),
                    i.restores.to_string(),
                ]
            }),
        ),
        Reply::ImagesChecked(checks) if checks.is_empty() => "no image is saved yet\n".into(),
        Reply::ImagesChecked(checks) => checks
            .iter()
            .map(|c| {
                if c.problems.is_empty() {
                    format!(
                        "{}: sound (digests match; partclone.chkimg passes)\n",
                        c.image
                    )
                } else {
                    format!(
                        "{}: DAMAGED\n{}",
                        c.image,
                        c.problems
                            .iter()
                            .map(|p| format!("  {p}\n"))
                            .collect::<String>()
                    )
                }
            })
            .collect(),
        Reply::Image(d) => {
            let v = &d.view;
            let m = &d.manifest;
            let mut out = format!(
                "image {}@{}{}\nsaved from {} at {}\ndirectory {}\ndisk {} ({}, {} partition table)\n",
                v.image,
                v.version,
                if v.newest { " (newest)" } else { "" },
                v.from_name.clone().unwrap_or_else(|| v.from.to_string()),
                local_time(v.saved_at),
                v.path.display(),
                m.disk,
                mib(m.disk_size),
                m.label
            );
            out += &output::table(
                &[
                    "STREAM",
                    "FILESYSTEM",
                    "SIZE",
                    "USED",
                    "TOOL",
                    "STORED",
                    "SHA256",
                ],
                m.streams().into_iter().map(|(s, dg)| {
                    let part = m.parts.iter().find(|p| format!("p{}", p.number) == s);
                    vec![
                        s.clone(),
                        part.map_or("-".into(), |p| p.fstype.clone()),
                        part.map_or("-".into(), |p| mib(p.size)),
                        part.map_or("-".into(), |p| mib(p.used)),
                        part.map_or("-".into(), |p| p.tool.clone()),
                        mib(dg.bytes),
                        dg.sha256.clone(),
                    ]
                }),
            );
            if d.restored_onto.is_empty() {
                out += "never restored\n";
            } else {
                out += "restored onto:\n";
                for r in &d.restored_onto {
                    out += &format!(
                        "  {} at {}\n",
                        r.name.clone().unwrap_or_else(|| r.mac.to_string()),
                        local_time(r.at)
                    );
                }
            }
            out
        }
        Reply::Boots {
            machine,
            since,
            boots,
        } => {
            if boots.is_empty() {
                return format!(
                    "no boot of {machine} is in the log{} (a boot is a fetch of its entry seen in a TFTP log)\n",
                    since
                        .map(|s| format!(" since {}", local_time(s)))
                        .unwrap_or_default()
                );
            }
            output::table(
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
                        match &b.imaged {
                            Some(what) => format!("{}; {what}", b.booted),
                            None => b.booted.clone(),
                        },
                        match (&b.set_by, b.set_at) {
                            (Some(a), Some(t)) => format!("{a} at {}", local_time(t)),
                            _ => "-".into(),
                        },
                    ]
                }),
            )
        }
        Reply::Show(show) => show_text(show),
        Reply::Verify { events, problems } => {
            if problems.is_empty() {
                format!(
                    "verified: a fresh fold of all {events} events equals the live state, and every generated file matches it\n"
                )
            } else {
                problems.iter().map(|p| format!("{p}\n")).collect()
            }
        }
        Reply::Drift(drift) => {
            if drift.is_empty() {
                "every generated file is up to date\n".to_string()
            } else {
                drift.iter().map(|d| format!("{d}\n")).collect()
            }
        }
        Reply::Rendered(files) => format!(
            "{} written, {} unchanged, {} removed\n",
            files.written.len(),
            files.unchanged,
            files.removed.len()
        ),
        Reply::LeasesReplayed(s) => format!(
            "replayed {} leases: {} events appended, {} no newer than what nmt saw last, {} of \
             addresses no network card has\n",
            s.leases, s.events, s.already, s.not_machines
        ),
        Reply::Replayed { summary: s, .. } => {
            let mut out = format!(
                "replayed {} lines: {} events appended, {} already read before, {} detail lines, {} not recognised\n",
                s.lines, s.events, s.already, s.ignored, s.rejects
            );
            if s.untimed > 0 {
                let _ = writeln!(
                    out,
                    "{} lines had no time of their own: each was given the time of the line \
                     before it in its file (or the file's modification time), and kept its \
                     place",
                    s.untimed
                );
            }
            if reply.code() != 0 {
                out.push_str("--strict: some lines were not recognised (see above)\n");
            }
            out
        }
        Reply::Status(status) => status_text(status),
        Reply::InstallerPassword {
            password: Some(p),
            rotated: true,
            ..
        } => format!(
            "the installer password of installed machines and installer consoles is now {p}\n\
             it is shown only this once (the event log keeps only its hash): write it down\n"
        ),
        Reply::InstallerPassword {
            password: Some(p), ..
        } => format!(
            "the installer password of installed machines and installer consoles is {p}\n\
             write it down, then run `nmt installer-password ack`\n"
        ),
        Reply::InstallerPassword { password: None, .. } => {
            "no generated installer password waits to be acknowledged (the event log keeps \
             only its hash); `nmt installer-password rotate` makes a new one\n"
                .to_string()
        }
        Reply::PasswordAcknowledged(true) => format!(
            "acknowledged: the installer password is no longer kept in the state directory ({})\n",
            crate::password::PENDING_FILE
        ),
        Reply::WebLogin { url, expires_in } => format!(
            "{url}\nopen this link within {expires_in} s to log into nmt's web UI as yourself \
             (it works once; run `nmt web-login` again for another)\n"
        ),
        Reply::PasswordAcknowledged(false) => {
            "no generated installer password was waiting; nothing to acknowledge\n".to_string()
        }
        Reply::Journal(events) => {
            let mut text = String::new();
            for env in events {
                text.push_str(&String::from_utf8_lossy(&env.to_json()));
                text.push('\n');
            }
            text
        }
    }
}

/// How many machines a sentence names before "and N more".
const LISTED: usize = 20;

/// What a change did (or would do) to the machines: those removed, and one line per new
/// next-boot policy ("3 machines will now install at next boot: lab01, lab02, lab03").
fn impact_text(impact: &Impact, would: bool) -> String {
    let mut out = String::new();
    if !impact.removed.is_empty() {
        let n = impact.removed.len();
        let _ = writeln!(
            out,
            "{} {} removed: {}{}",
            if n == 1 {
                "1 machine".to_string()
            } else {
                format!("{n} machines")
            },
            match (would, n) {
                (true, _) => "would be",
                (false, 1) => "was",
                (false, _) => "were",
            },
            machine_list(&impact.removed, LISTED),
            if would {
                ""
            } else {
                " (`nmt machine restore MAC` brings one back)"
            }
        );
    }
    for b in &impact.boot {
        let _ = writeln!(
            out,
            "{}",
            b.sentence(if would { "would" } else { "will now" }, LISTED)
        );
    }
    out
}

/// `--dry-run`: the events, the files, the machines.
fn planned_text(p: &Planned) -> String {
    let mut out = String::from("dry run: nothing was appended, written or reloaded\n");
    if !p.summary.is_empty() {
        let _ = writeln!(out, "{}", p.summary);
    }
    if p.events.is_empty() {
        out.push_str("would append no event\n");
    } else {
        let _ = writeln!(out, "would append {}:", plural(p.events.len(), "event"));
        for e in &p.events {
            let _ = writeln!(
                out,
                "  #{} {} {}",
                e.seq,
                e.event.kind(),
                serde_json::to_string(&e.event).unwrap_or_default()
            );
        }
    }
    for (verb, paths) in [("write", &p.files.written), ("remove", &p.files.removed)] {
        if !paths.is_empty() {
            let _ = writeln!(out, "would {verb} {}:", plural(paths.len(), "file"));
            for path in paths.iter() {
                let _ = writeln!(out, "  {}", path.display());
            }
        }
    }
    if p.files.written.is_empty() && p.files.removed.is_empty() {
        out.push_str("would change no file\n");
    }
    out.push_str(&impact_text(&p.impact, true));
    if p.needs_confirmation {
        out.push_str(
            "it needs confirmation: nmt asks on a terminal; in a script pass --yes once the \
             list is checked\n",
        );
    }
    out
}

/// A bulk destruction waiting for the admin's word: every machine it reaches.
pub fn confirmation_text(impact: &Impact) -> String {
    let mut out = String::new();
    if !impact.removed.is_empty() {
        let _ = writeln!(
            out,
            "this removes {}:",
            plural(impact.removed.len(), "machine")
        );
        for m in &impact.removed {
            let _ = writeln!(out, "  {m}");
        }
    }
    for b in impact.boot.iter().filter(|b| b.erases_disk) {
        let _ = writeln!(
            out,
            "this makes {} {} at their next boot, erasing their disks:",
            plural(b.machines.len(), "machine"),
            b.doing()
        );
        for m in &b.machines {
            let _ = writeln!(out, "  {m}");
        }
    }
    out
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn show_text(show: &ShowView) -> String {
    let view = &show.machine;
    let mut o = String::new();
    let _ = writeln!(o, "mac          {}", view.mac);
    let _ = writeln!(o, "name         {}", or_dash(view.name.as_deref()));
    let _ = writeln!(o, "group        {}", view.group);
    if let Some(p) = &show.imaging {
        let _ = writeln!(o, "imaging      {}", progress_text(p));
    }
    let origin = match view.policy_origin {
        Origin::Machine => "its own".to_string(),
        Origin::MachineOnce => "its own, next boot only".to_string(),
        Origin::Group => format!("from group {}", view.group),
    };
    let _ = writeln!(o, "policy       {} ({origin})", view.effective_policy);
    if let Some(then) = &show.then {
        let then = match then {
            Then::Own(p) => p.to_string(),
            Then::Group(p) => format!("its group's policy ({p})"),
        };
        let _ = writeln!(o, "then         {then}");
    }
    let _ = writeln!(o, "ip           {}", or_dash(view.ip));
    let _ = writeln!(o, "rootdev      {}", or_dash(view.rootdev.as_deref()));
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
    if let Some(h) = &view.dhcp_hostname {
        let _ = writeln!(o, "dhcp name    {h:?} (as the client sent it)");
    }
    if let Some(a) = view.arch {
        let _ = writeln!(o, "arch         {a} ({})", arch_kind(a));
    }
    if let Some(i) = &view.installed {
        let _ = writeln!(o, "installed    {} at {}", i.device, local_time(i.at));
    }
    if let Some(b) = &view.last_boot {
        let _ = writeln!(
            o,
            "last boot    {} ({}) at {}",
            b.file,
            b.policy,
            local_time(b.at)
        );
    }
    for f in &show.files {
        let _ = write!(o, "\n# {}\n{}", f.path.display(), f.content);
    }
    o
}

/// What a DHCP client architecture number means.
pub fn arch_kind(a: u16) -> &'static str {
    match a {
        0 => "BIOS",
        6 => "x86 UEFI",
        7 | 9 => "x86-64 UEFI",
        10 | 11 => "ARM UEFI",
        16 => "x86-64 UEFI HTTP",
        _ => "other",
    }
}

fn status_text(status: &crate::app::Status) -> String {
    let Some(d) = &status.daemon else {
        return "nmtd is not running on this state: no logs are being followed \
                (start it with `nmtd --state DIR --log PATH`)\n"
            .to_string();
    };
    let c = &d.counters;
    let mut out = format!(
        "nmtd {} (pid {}): {} events, files current to event {}\n\
         install reports: {} accepted, {} refused; requests refused by access rules: {}; \
         installer syslog from unknown addresses: {}\n",
        d.version,
        d.pid,
        d.events,
        d.files_current_to,
        c.reports_accepted,
        c.reports_refused,
        c.access_refused,
        c.syslog_unattributed,
    );
    for p in &d.imaging {
        let _ = writeln!(
            out,
            "imaging: {} {}, last bytes {}",
            p.name.clone().unwrap_or_else(|| p.mac.to_string()),
            progress_text(p),
            local_time(p.updated)
        );
    }
    if d.new_machines_limited > 0 {
        let _ = writeln!(
            out,
            "warning: {} never-seen machines were not recorded: more appeared in a minute than \
             [daemon] new_machines_per_minute allows (spoofed DHCP traffic?); they are recorded \
             when they ask again",
            d.new_machines_limited
        );
    }
    if d.files_current_to < d.events {
        let _ = writeln!(
            out,
            "warning: the generated files are behind the log by {} events: {}; nmtd renders \
             them again by itself (fix the cause, or run `nmt render`)",
            d.events - d.files_current_to,
            d.files_problem.as_deref().unwrap_or("a render is due")
        );
    }
    if d.sources.is_empty() {
        out.push_str("no logs are followed (give nmtd --log PATH)\n");
    }
    for s in &d.sources {
        let _ = write!(
            out,
            "\n{}\n  lines {}  events {}  ignored {}  rejects {}  lag {} bytes\n",
            s.path.display(),
            s.lines,
            s.events,
            s.ignored,
            s.rejects,
            s.lag_bytes
        );
        if let Some(w) = &s.warning {
            let _ = writeln!(out, "  warning: {w}");
        }
        match &s.checkpoint {
            Some(c) => {
                let _ = writeln!(
                    out,
                    "  position: offset {} of file {}:{}",
                    c.offset, c.dev, c.ino
                );
            }
            None => out.push_str("  position: nothing read yet\n"),
        }
        for (why, r) in &s.reject_reasons {
            let _ = writeln!(out, "  rejected, {why}: {}", r.count);
            for e in &r.examples {
                let _ = writeln!(out, "    e.g. {e:?}");
            }
        }
        if let Some(r) = &s.last_reject {
            let _ = writeln!(out, "  last rejected line: {r:?}");
        }
        if let Some(e) = &s.last_event {
            let _ = writeln!(out, "  last reader event: {e}");
        }
        if let Some(e) = &s.last_error {
            let _ = writeln!(out, "  last error: {e}");
        }
    }
    out
}

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// `saving lab@2: 45% (120.0 MiB of 260.0 MiB)`.
fn progress_text(p: &crate::app::ImagingProgress) -> String {
    format!(
        "{} {}: {}% ({} of {})",
        if p.action == "save" {
            "saving"
        } else {
            "restoring"
        },
        p.image,
        p.percent(),
        mib(p.done),
        mib(p.total)
    )
}

fn schedules_text(list: &[crate::app::schedule::ScheduleView]) -> String {
    if list.is_empty() {
        return "no schedule is defined; e.g. `nmt schedule add lab-nightly --cron '0 2 * * *' \
                --expect 45m -- policy @lab restore-image:lab --once`\n"
            .to_string();
    }
    output::table(
        &[
            "SCHEDULE", "CRON", "ZONE", "NEXT", "COMMAND", "OWNER", "LAST RUN",
        ],
        list.iter().map(|s| {
            vec![
                s.name.clone(),
                s.cron.clone(),
                s.tz.clone(),
                match (s.paused, s.next) {
                    (true, _) => "paused".to_string(),
                    (false, Some(t)) => local_time(t),
                    (false, None) => "-".to_string(),
                },
                format!("nmt {}", s.command.join(" ")),
                s.owner.clone(),
                s.last.as_ref().map_or("-".to_string(), run_summary),
            ]
        }),
    )
}

/// A run in one line: when, and what came of it.
fn run_summary(r: &crate::app::schedule::RunView) -> String {
    if let Some(m) = &r.missed {
        return if m.count == 1 {
            format!("missed {} (nmtd was down; not run)", local_time(r.due))
        } else {
            format!(
                "missed {} runs {} to {} (nmtd was down; not run)",
                m.count,
                local_time(r.due),
                local_time(m.last)
            )
        };
    }
    let mut out = format!("#{} {}", r.run, local_time(r.at));
    if r.late {
        let _ = write!(out, " (late, due {})", local_time(r.due));
    }
    if let Some(e) = &r.error {
        let _ = write!(out, ": failed, nothing changed: {e}");
        return out;
    }
    let _ = write!(out, ": {} targeted", r.targeted);
    if r.checked.is_some() {
        let counts: Vec<String> = nmt_projections::Outcome::ALL
            .iter()
            .filter_map(|k| {
                let n = r.counts.get(k.as_str()).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} {}", k.words()))
            })
            .collect();
        let _ = write!(
            out,
            "; {}",
            if counts.is_empty() {
                "nothing to check".to_string()
            } else {
                counts.join(", ")
            }
        );
    } else if r.targeted > 0 {
        out.push_str("; not checked yet");
    }
    out
}

fn runs_text(schedule: &str, runs: &[crate::app::schedule::RunView]) -> String {
    if runs.is_empty() {
        return format!(
            "schedule {schedule} has not run yet (`nmt schedule list` shows its next run)\n"
        );
    }
    let mut out = String::new();
    for r in runs {
        let _ = writeln!(out, "{}", run_summary(r));
        let who = |m: &crate::app::schedule::MachineOutcomeView| {
            m.name.clone().unwrap_or_else(|| m.mac.to_string())
        };
        for m in &r.not_done {
            let _ = writeln!(
                out,
                "  {:<14} {}{}{}",
                m.outcome.map_or("", |o| o.words()),
                who(m),
                if m.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", m.detail)
                },
                if m.once_pending {
                    " (its one-shot is still pending)"
                } else {
                    ""
                }
            );
        }
        if r.checked.is_none() {
            for m in &r.carried {
                let _ = writeln!(out, "  {:<14} {}: {}", "carried", who(m), m.detail);
            }
        }
    }
    out
}

fn bmcs_text(list: &[crate::app::power::BmcView]) -> String {
    output::table(
        &["MACHINE", "BMC", "FROM", "PASSWORD", "LAST POWER ACTION"],
        list.iter().map(|b| {
            vec![
                b.name.clone().unwrap_or_else(|| b.mac.to_string()),
                b.described.clone(),
                or_dash(b.from.as_deref()),
                if b.bmc.is_none() {
                    "-".into()
                } else if b.password {
                    "kept".into()
                } else {
                    "none".into()
                },
                b.last.as_ref().map_or("-".to_string(), |l| {
                    format!(
                        "{} {} by {}: {}",
                        local_time(l.at),
                        l.op,
                        l.by,
                        if l.result.ok {
                            l.result.state.clone().unwrap_or_else(|| "ok".into())
                        } else {
                            format!("failed: {}", l.result.detail)
                        }
                    )
                }),
            ]
        }),
    )
}

fn power_text(results: &[crate::app::power::PowerView]) -> String {
    let mut out = output::table(
        &["MACHINE", "ACTION", "RESULT", "STATE", "DETAIL"],
        results.iter().map(|r| {
            vec![
                r.name.clone().unwrap_or_else(|| r.mac.to_string()),
                r.op.to_string(),
                if r.ok { "ok" } else { "FAILED" }.to_string(),
                or_dash(r.state.as_deref()),
                r.detail.clone(),
            ]
        }),
    );
    let failed = results.iter().filter(|r| !r.ok).count();
    let _ = writeln!(
        out,
        "{} machine(s): {} ok, {failed} failed",
        results.len(),
        results.len() - failed
    );
    out
}
