//! Forms into actions: every POST builds an [`Action`] and carries it out through the same
//! door as the control socket (the daemon's `[access]` rules for the web user, then the
//! application layer); what it did (or why it was refused) is shown on the next page.
//! Nothing here decides anything about the domain.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use nmt_projections::{AnswerKind, Profile, ProfileKind};

use super::auth::{Ctx, Flash, Form, NO_UID, Upload, Uploads};
use super::{Web, views};
use crate::app::{Action, Answer, Failure, Reply, machine_add as add_action, parse_node_table};
use crate::daemon::Caller;

/// Who acts for this request: the caller the access rules judge, and the actor events
/// record (`NAME via web`). Without a login nobody acts: `nobody`, who may only read.
pub fn caller(_web: &Web, ctx: &Ctx) -> (Caller, String) {
    let caller = match &ctx.user {
        Some(u) => u.caller(),
        None => Caller {
            uid: NO_UID,
            name: "nobody".into(),
        },
    };
    let actor = format!("{} via web", caller.name);
    (caller, actor)
}

/// Whether this request's user may change everything (sees the new installer password).
pub fn is_admin(web: &Web, ctx: &Ctx) -> bool {
    let (c, _) = caller(web, ctx);
    web.shared
        .published()
        .config
        .access
        .allows(&c, &crate::app::Right::Admin)
        .is_ok()
}

/// Whether this request's user has `right` (without a login: only to read). The access
/// rules may look up Unix groups, which can block: on a blocking thread.
pub async fn may(web: &Arc<Web>, ctx: &Ctx, right: crate::app::Right) -> bool {
    if right == crate::app::Right::Read {
        return true;
    }
    if ctx.user.is_none() {
        return false;
    }
    let (who, _) = caller(web, ctx);
    let config = web.shared.published().config.clone();
    tokio::task::spawn_blocking(move || config.access.allows(&who, &right).is_ok())
        .await
        .unwrap_or(false)
}

/// Check and carry out an action as the control socket does.
pub async fn run(web: &Arc<Web>, ctx: &Ctx, action: Action) -> Answer {
    run_with(web, ctx, action, &crate::app::Mode::default()).await
}

/// [`run`], performed as `mode` says (what the user confirmed).
pub async fn run_with(
    web: &Arc<Web>,
    ctx: &Ctx,
    action: Action,
    mode: &crate::app::Mode,
) -> Answer {
    if ctx.user.is_none() && action.right() != crate::app::Right::Read {
        return Err(Failure::Said(
            "nmt: refused: log in first (`nmt web-login`): without a login the web UI only \
             shows"
                .into(),
        ));
    }
    let (caller, actor) = caller(web, ctx);
    crate::daemon::control::act_with(
        &web.shared,
        &caller,
        actor,
        action,
        mode,
        nmt_projections::Source::Web,
    )
    .await
}

/// Perform, leave the outcome for the next page, and go back to `back`. An action that
/// would make more than one machine erase its disk, or remove several, is not performed:
/// its confirmation page lists them first (`POST /confirm` then performs it).
async fn act(web: &Arc<Web>, ctx: &Ctx, form: &Form, action: Action) -> Response {
    // A form sent from a confirmation page of its own (removing the ticked machines, a group
    // whose members would erase their disks) was confirmed there: it names its machines.
    let ask = crate::app::Mode {
        dry_run: false,
        confirm: if form.get("confirmed").is_some() {
            crate::app::Confirm::Unchecked
        } else {
            crate::app::Confirm::Ask
        },
    };
    let out = run_with(web, ctx, action.clone(), &ask).await;
    if let Ok(Reply::Unconfirmed(plan)) = &out {
        let back = back(form, "/machines");
        web.sessions.keep_pending(
            &ctx.sid,
            super::auth::Pending {
                action,
                at_risk: plan.impact.at_risk(),
                back: back.clone(),
            },
        );
        return views::bulk_confirm(web, ctx, &plan.impact, &back).into_response();
    }
    flash_output(web, ctx, &out);
    Redirect::to(&back(form, "/machines")).into_response()
}

/// `POST /confirm`: the answer of a confirmation page. "Proceed" performs the waiting
/// action, only if it still reaches exactly the machines listed; anything else drops it.
pub async fn confirm(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let Some(p) = web.sessions.take_pending(&ctx.sid) else {
        return mistake(
            &web,
            &ctx,
            &form,
            "nothing is waiting for a confirmation (it was answered, or nmtd restarted); \
             nothing was done",
        );
    };
    if form.get("proceed").is_none() {
        web.sessions.flash(
            &ctx.sid,
            Flash {
                ok: true,
                text: "nothing was done".into(),
            },
        );
        return Redirect::to(&p.back).into_response();
    }
    let mode = crate::app::Mode {
        dry_run: false,
        confirm: crate::app::Confirm::Reaching(p.at_risk),
    };
    let out = run_with(&web, &ctx, p.action, &mode).await;
    flash_output(&web, &ctx, &out);
    Redirect::to(&p.back).into_response()
}

/// A mistake in the form itself, said like the CLI's usage errors.
pub fn mistake(web: &Web, ctx: &Ctx, form: &Form, text: &str) -> Response {
    web.sessions.flash(
        &ctx.sid,
        Flash {
            ok: false,
            text: crate::daemon::clip_words(&format!("nmt: {text}")),
        },
    );
    Redirect::to(&back(form, "/machines")).into_response()
}

/// Where to go after a form: its `back` field when that is a path of this site.
fn back(form: &Form, default: &str) -> String {
    match form.get("back") {
        Some(b) if b.starts_with('/') && !b.starts_with("//") && !b.contains('\\') => b.to_string(),
        _ => default.to_string(),
    }
}

/// The policy a form chose: the typed one if any, else the selected one.
fn policy_of(form: &Form) -> Option<String> {
    form.get("policy_other")
        .or_else(|| form.get("policy"))
        .map(str::to_string)
}

/// `POST /machines/act`: one action on the ticked machines (`mac=…` repeated) or on one.
pub async fn machines(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let macs = form.all("mac");
    let Some(op) = form.get("op") else {
        return mistake(&web, &ctx, &form, "choose what to do with the machines");
    };
    if macs.is_empty() {
        return mistake(
            &web,
            &ctx,
            &form,
            "tick at least one machine first (or the box in the header for all shown)",
        );
    }
    // The noderange syntax takes MACs as they are; a MAC has no commas.
    if let Some(bad) = macs
        .iter()
        .find(|m| nmt_projections::Mac::parse(m).is_none())
    {
        return mistake(&web, &ctx, &form, &format!("{bad:?} is not a MAC address"));
    }
    let range = macs.join(",");
    // The machines page after the action shows the same machines ticked, for the next
    // action on them.
    if back(&form, "/machines").starts_with("/machines") {
        web.sessions
            .keep_selection(&ctx.sid, macs.iter().map(|m| m.to_string()).collect());
    }
    let action = match op {
        "assign" => match form.get("group") {
            Some(g) => Action::Assign {
                range,
                group: g.to_string(),
                ip: None,
                no_ip: false,
            },
            None => return mistake(&web, &ctx, &form, "choose the group to move them into"),
        },
        "policy" => match policy_of(&form) {
            Some(policy) => Action::Policy {
                range,
                policy,
                once: form.get("once").is_some(),
                members: false,
                reboot: false,
            },
            None => return mistake(&web, &ctx, &form, "choose or type a policy"),
        },
        "name" => match form.get("pattern") {
            Some(p) => Action::Name {
                target: range,
                name: None,
                pattern: Some(p.to_string()),
            },
            None => {
                return mistake(
                    &web,
                    &ctx,
                    &form,
                    "give a pattern such as node{001} (numbers count up in the order the \
                     machines were first seen)",
                );
            }
        },
        "rename" => match form.get("name") {
            Some(n) => Action::Name {
                target: range,
                name: Some(n.to_string()),
                pattern: None,
            },
            None => return mistake(&web, &ctx, &form, "give the new name"),
        },
        "rootdev" => match form.get("device") {
            Some(d) => Action::RootdevSet {
                range,
                device: d.to_string(),
            },
            None => {
                return mistake(&web, &ctx, &form, "give the root device, e.g. /dev/sda1");
            }
        },
        "rootdev-rm" => Action::RootdevRm { range },
        // Only from the confirmation page (`POST /machines/remove` shows it).
        "remove" if form.get("confirmed").is_some() => Action::MachineRm { range },
        "remove" => {
            return mistake(
                &web,
                &ctx,
                &form,
                "removing machines needs its confirmation page: use the Remove… button",
            );
        }
        other => return mistake(&web, &ctx, &form, &format!("unknown action {other:?}")),
    };
    act(&web, &ctx, &form, action).await
}

/// `POST /machines/power`: a power action (`power=on|off|cycle|reset|status`) on the ticked
/// machines (`mac=…` repeated) or on one (its page's buttons). Off, cycle and reset ask
/// first (`power::confirm`), and are performed when its form comes back `confirmed`. The
/// BMCs are asked outside the engine's lock (`control::act`), the results recorded as the
/// user's, and shown one line per machine on the page it goes back to. An action that takes
/// longer than a request may goes on by itself; its results wait for the next page.
pub async fn power(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let op: nmt_projections::PowerOp = match form.get("power").map(str::parse) {
        Some(Ok(op)) => op,
        Some(Err(why)) => return mistake(&web, &ctx, &form, &why),
        None => return mistake(&web, &ctx, &form, "choose a power action"),
    };
    let macs = form.all("mac");
    if macs.is_empty() {
        return mistake(
            &web,
            &ctx,
            &form,
            "tick at least one machine first (or the box in the header for all shown)",
        );
    }
    let Some(parsed) = macs
        .iter()
        .map(|m| nmt_projections::Mac::parse(m))
        .collect::<Option<Vec<_>>>()
    else {
        let bad = macs
            .iter()
            .find(|m| nmt_projections::Mac::parse(m).is_none())
            .unwrap_or(&"");
        return mistake(&web, &ctx, &form, &format!("{bad:?} is not a MAC address"));
    };
    let back = back(&form, "/machines");
    if ctx.user.is_none() {
        // Even a status read is recorded, as its reader's: nobody reads without a login.
        web.sessions.flash(
            &ctx.sid,
            Flash {
                ok: false,
                text: "nmt: refused: log in first (`nmt web-login`): without a login the web \
                       UI only shows"
                    .into(),
            },
        );
        return Redirect::to(&back).into_response();
    }
    if back.starts_with("/machines") {
        web.sessions
            .keep_selection(&ctx.sid, macs.iter().map(|m| m.to_string()).collect());
    }
    let action = Action::Power {
        op,
        range: macs.join(","),
    };
    // Who may not act is refused at once, in the usual words, without a question first.
    if super::power::asks(op)
        && form.get("confirmed").is_none()
        && may(&web, &ctx, action.right()).await
    {
        let rows = super::power::listed(&web, &parsed);
        return super::power::confirm(&web, &ctx, op, &rows, &back).into_response();
    }
    let n = parsed.len();
    let mut job = tokio::spawn({
        let (web, ctx) = (web.clone(), ctx.clone());
        async move { run(&web, &ctx, action).await }
    });
    match tokio::time::timeout(POWER_WAIT, &mut job).await {
        Ok(done) => {
            let out = done.unwrap_or_else(|e| Err(Failure::Said(format!("nmt: nmtd failed: {e}"))));
            power_output(&web, &ctx, op, &out);
        }
        Err(_) => {
            tracing::info!(machines = n, "web: a power {op} goes on after its request");
            tokio::spawn({
                let (web, ctx) = (web.clone(), ctx.clone());
                async move {
                    if let Ok(out) = job.await {
                        power_output(&web, &ctx, op, &out);
                    }
                }
            });
            web.sessions.flash(
                &ctx.sid,
                Flash {
                    ok: true,
                    text: format!(
                        "power {op} of {n} machine(s) is under way: their BMCs are slow to \
                         answer; the next page after it is done shows one result per machine"
                    ),
                },
            );
        }
    }
    Redirect::to(&back).into_response()
}

/// How long a power action's request waits for it (the listener's limit is 30 s; a BMC may
/// take `[power] timeout`, 30 s by default).
const POWER_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Leave a power action's results (or why it was refused) for the next page.
fn power_output(web: &Web, ctx: &Ctx, op: nmt_projections::PowerOp, out: &Answer) {
    match out {
        Ok(Reply::Power { results, .. }) => {
            let done = super::power::Done {
                op,
                results: results.clone(),
            };
            web.sessions.flash(
                &ctx.sid,
                Flash {
                    ok: results.iter().all(|r| r.ok),
                    text: super::power::summary(&done),
                },
            );
            web.sessions.keep_power(&ctx.sid, done);
        }
        other => flash_output(web, ctx, other),
    }
}

/// `POST /machines/add`: `nmt machine add MAC [--name N] [--group G] [--ip IP]`. A refusal
/// goes back to the form with what was typed still in it.
pub async fn machine_add(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let typed = |k: &str| form.get(k).map(str::to_string);
    let draft = {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("add", "1");
        for k in ["mac", "name", "group", "ip"] {
            if let Some(v) = form.get(k) {
                q.append_pair(&format!("add_{k}"), v);
            }
        }
        format!("/machines?{}#add", q.finish())
    };
    let out = match form.get("mac") {
        None => Err(Failure::of(&anyhow::anyhow!(
            "give the MAC address of the machine to add, e.g. 52:54:00:12:34:56"
        ))),
        Some(mac) => match add_action(mac, typed("name"), typed("group"), form.get("ip")) {
            Ok(action) => run(&web, &ctx, action).await,
            Err(e) => Err(Failure::of(&e)),
        },
    };
    let ok = out.is_ok();
    flash_output(&web, &ctx, &out);
    if ok {
        Redirect::to(&back(&form, "/machines")).into_response()
    } else {
        Redirect::to(&draft).into_response()
    }
}

/// `POST /machines/import`: `nmt machine import FILE` from an uploaded file or a pasted
/// table, parsed by the CLI's own reader; all rows or none. A refusal shows the import page
/// again with the reason (and the pasted text), having appended nothing.
pub async fn machine_import(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
    Extension(uploads): Extension<Uploads>,
) -> Response {
    let pasted = form
        .0
        .iter()
        .find(|(k, _)| k == "table")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let refused = |why: String| {
        let mut resp = views::import_page(&web, &ctx, &pasted, Some(&why)).into_response();
        *resp.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        resp
    };
    // Who may import is checked first: nobody else's table is even read.
    let (who, _) = caller(&web, &ctx);
    let right = Action::MachineImport { rows: Vec::new() }.right();
    let access = web.shared.published().config.clone();
    let verdict = tokio::task::spawn_blocking(move || access.access.allows(&who, &right)).await;
    match verdict {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            tracing::warn!(user = ?ctx.user.as_ref().map(|u| &u.name), "web: import refused: {why}");
            return refused(super::words::failure(&Failure::refused(&why)));
        }
        Err(e) => return refused(format!("nmt: nmtd failed while checking access: {e}")),
    }
    let upload = uploads.get("file").cloned();
    if upload.is_none() && pasted.trim().is_empty() {
        return refused(
            "nmt: choose a CSV file or paste the table (rows of mac,name,ip,group)".into(),
        );
    }
    // A large table takes a moment to read: on a blocking thread, never on the threads that
    // serve every other request.
    let table = pasted.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let (text, source) = match &upload {
            Some(u) => (upload_text(u)?, upload_name(u).to_string()),
            None => (table, "the pasted table".to_string()),
        };
        if let Some(line) = open_quote(&text) {
            return Err(format!(
                "nmt: {source}: the quoted field that opens on line {line} is never closed, so \
                 the table looks cut short; nothing was imported"
            ));
        }
        parse_node_table(&text, &source).map_err(|e| super::words::failure(&Failure::of(&e)))
    })
    .await;
    let rows = match parsed {
        Ok(Ok(rows)) => rows,
        Ok(Err(why)) => return refused(why),
        Err(e) => return refused(format!("nmt: nmtd failed while reading the table: {e}")),
    };
    // A very large table may take longer to import (a boot file per machine) than a request
    // may last: the import goes on by itself, and its outcome waits for the next page.
    let count = rows.len();
    let mut import = tokio::spawn({
        let (web, ctx) = (web.clone(), ctx.clone());
        async move { run(&web, &ctx, Action::MachineImport { rows }).await }
    });
    let out = match tokio::time::timeout(IMPORT_WAIT, &mut import).await {
        Ok(done) => done.unwrap_or_else(|e| Err(Failure::Said(format!("nmt: nmtd failed: {e}")))),
        Err(_) => {
            tracing::info!(count, "web: a long import goes on after its request");
            tokio::spawn({
                let (web, ctx) = (web.clone(), ctx.clone());
                async move {
                    if let Ok(out) = import.await {
                        flash_output(&web, &ctx, &out);
                    }
                }
            });
            web.sessions.flash(
                &ctx.sid,
                Flash {
                    ok: true,
                    text: format!(
                        "importing {count} rows: this takes a while; the machines appear as \
                         soon as it is done, and the next page after that says how it went"
                    ),
                },
            );
            return Redirect::to("/machines").into_response();
        }
    };
    if let Err(f) = &out {
        return refused(super::words::failure(f));
    }
    flash_output(&web, &ctx, &out);
    Redirect::to("/machines").into_response()
}

/// How long an import's request waits for it (the listener's limit is 30 s).
const IMPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

fn upload_name(u: &Upload) -> &str {
    if u.filename.is_empty() {
        "the uploaded file"
    } else {
        &u.filename
    }
}

/// An uploaded node table's text. An upload cut short in transit is refused before this
/// (its body is shorter than its length, or has no closing boundary); a file cut short
/// before it was uploaded is refused by the row checks (a MAC, IP or quote cut mid-way).
fn upload_text(u: &Upload) -> Result<String, String> {
    let name = upload_name(u);
    let text = String::from_utf8(u.bytes.clone()).map_err(|e| {
        format!(
            "nmt: {name} is not UTF-8 text (bad byte at offset {}); save it as UTF-8 CSV",
            e.utf8_error().valid_up_to()
        )
    })?;
    if text.trim().is_empty() {
        return Err(format!(
            "nmt: {name} is empty; a node table row is mac,name,ip,group"
        ));
    }
    Ok(text)
}

/// The line where a quoted CSV field opens and never closes, if one does (comment lines
/// aside); the CSV reader would quietly take the rest of the file as that field.
fn open_quote(text: &str) -> Option<usize> {
    let (mut open, mut line, mut at_start) = (None, 1, true);
    let mut comment = false;
    for c in text.chars() {
        if at_start && open.is_none() {
            comment = c == '#';
        }
        at_start = false;
        match c {
            '"' if !comment => open = if open.is_some() { None } else { Some(line) },
            '\n' => {
                line += 1;
                at_start = true;
            }
            _ => {}
        }
    }
    open
}

/// Leave what an action did (or why it was refused) for the next page.
fn flash_output(web: &Web, ctx: &Ctx, out: &Answer) {
    let flash = match out {
        Ok(reply) => Flash {
            ok: true,
            text: done(reply),
        },
        Err(f) => Flash {
            ok: false,
            text: super::words::failure(f),
        },
    };
    web.sessions.flash(&ctx.sid, flash);
}

/// What a change did, in words: its summary, and the files it touched.
fn done(reply: &Reply) -> String {
    match reply {
        Reply::Changed { summary, files, .. } => {
            let mut text = summary.trim().to_string();
            if !files.written.is_empty() || !files.removed.is_empty() {
                text.push_str(&format!(
                    "\nfiles: {} written, {} removed",
                    files.written.len(),
                    files.removed.len()
                ));
            }
            text
        }
        _ => "done".to_string(),
    }
}

/// `POST /groups/add`.
pub async fn group_add(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let Some(group) = form.get("group") else {
        return mistake(&web, &ctx, &form, "give the new group a name");
    };
    let action = Action::GroupAdd {
        group: group.to_string(),
        policy: policy_of(&form),
    };
    act(&web, &ctx, &form, action).await
}

/// `POST /groups/rm`: `nmt group rm GROUP [--to GROUP | --force]`. Its members go to the
/// group chosen under "Move members to" (`to`); choosing `unknown` is `--force`, refused like
/// it when `unknown`'s policy would erase their disks. Moving them into another group whose
/// policy erases disks is asked first (`views::group_rm_confirm`).
pub async fn group_rm(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let Some(group) = form.get("group") else {
        return mistake(&web, &ctx, &form, "which group?");
    };
    let target = form.get("to");
    let (force, to) = match target {
        Some(nmt_projections::UNKNOWN) => (true, None),
        Some(t) => (false, Some(t.to_string())),
        None => (false, None),
    };
    if let Some(t) = &to
        && form.get("confirmed").is_none()
    {
        let ask = {
            let published = web.shared.published();
            let st = &published.state;
            let members = st.group(group).map_or(0, |g| g.members.len());
            let policy = st.group_policy(t);
            (members > 0 && st.group(t).is_some() && policy.erases_disk())
                .then(|| (members, policy.to_string()))
        };
        if let Some((members, policy)) = ask {
            return views::group_rm_confirm(&web, &ctx, group, t, members, &policy).into_response();
        }
    }
    let action = Action::GroupRm {
        group: group.to_string(),
        force,
        to,
    };
    act(&web, &ctx, &form, action).await
}

/// `POST /groups/policy`: the group's own policy (its members' overrides stay).
pub async fn group_policy(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let (Some(group), Some(policy)) = (form.get("group"), policy_of(&form)) else {
        return mistake(&web, &ctx, &form, "choose the group and a policy");
    };
    let action = Action::Policy {
        range: format!("@{group}"),
        policy,
        once: false,
        members: false,
        reboot: false,
    };
    act(&web, &ctx, &form, action).await
}

/// `POST /profiles/save`: define a profile, or redefine it (`replace`).
pub async fn profile_save(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let (Some(name), Some(kind)) = (form.get("name"), form.get("kind")) else {
        return mistake(&web, &ctx, &form, "a profile needs a name and a kind");
    };
    let Some(kind) = ProfileKind::parse(kind) else {
        return mistake(
            &web,
            &ctx,
            &form,
            &format!("{kind:?} is not a profile kind"),
        );
    };
    let answer = match form.get("answer") {
        None | Some("none") => None,
        Some(a) => match AnswerKind::parse(a) {
            Some(a) => Some(a),
            None => {
                return mistake(
                    &web,
                    &ctx,
                    &form,
                    &format!("{a:?} is not an answer-file kind"),
                );
            }
        },
    };
    let profile = Profile {
        name: name.to_string(),
        kind,
        kernel: form.get("kernel").unwrap_or("").to_string(),
        initrd: form
            .get("initrd")
            .unwrap_or("")
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        args: form.get("args").unwrap_or("").to_string(),
        answer,
        network_console: form.get("network_console").is_some(),
        // The page does not edit preseed settings (`nmt profile add` does): a replaced
        // profile keeps the ones it had.
        preseed: web
            .shared
            .published()
            .state
            .profile(name)
            .and_then(|p| p.preseed.clone()),
    };
    let action = Action::ProfileAdd {
        profile,
        replace: form.get("replace").is_some(),
    };
    act(&web, &ctx, &form, action).await
}

/// `POST /profiles/rm`.
pub async fn profile_rm(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let Some(name) = form.get("name") else {
        return mistake(&web, &ctx, &form, "which profile?");
    };
    let action = Action::ProfileRm {
        name: name.to_string(),
    };
    act(&web, &ctx, &form, action).await
}

/// The schedule a form names.
fn schedule_name(form: &Form) -> Option<String> {
    form.get("name").map(str::to_string)
}

/// `POST /schedules/pause`: `nmt schedule pause NAME`.
pub async fn schedule_pause(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let Some(name) = schedule_name(&form) else {
        return mistake(&web, &ctx, &form, "which schedule?");
    };
    act(&web, &ctx, &form, Action::SchedulePause { name }).await
}

/// `POST /schedules/resume`: `nmt schedule resume NAME`.
pub async fn schedule_resume(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let Some(name) = schedule_name(&form) else {
        return mistake(&web, &ctx, &form, "which schedule?");
    };
    act(&web, &ctx, &form, Action::ScheduleResume { name }).await
}

/// `POST /schedules/rm`: `nmt schedule rm NAME`, once its confirmation page
/// (`schedules::rm_confirm`) was answered; before that, the page itself.
pub async fn schedule_rm(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let Some(name) = schedule_name(&form) else {
        return mistake(&web, &ctx, &form, "which schedule?");
    };
    if form.get("confirmed").is_none() {
        return super::schedules::rm_confirm(&web, &ctx, &name).into_response();
    }
    act(&web, &ctx, &form, Action::ScheduleRm { name }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclosed_quote_is_found_and_comments_are_skipped() {
        assert_eq!(open_quote("a,\"b\"\nc,d\n"), None);
        assert_eq!(open_quote("a,\"b \"\"x\"\" c\"\n"), None);
        assert_eq!(open_quote("# it's \"quoted\nz,w\n"), None);
        assert_eq!(open_quote("a,b\nc,\"d\ne,f\n"), Some(2));
    }

    #[test]
    fn an_upload_is_utf8_text_with_rows() {
        let up = |b: &str| Upload {
            field: "file".into(),
            filename: "n.csv".into(),
            bytes: b.as_bytes().to_vec(),
        };
        assert_eq!(upload_text(&up("a,b\r\n")).unwrap(), "a,b\r\n");
        // Many editors save without a final newline: that file is whole.
        assert_eq!(upload_text(&up("a,b\nc,d")).unwrap(), "a,b\nc,d");
        assert!(upload_text(&up("\n")).unwrap_err().contains("empty"));
        let bad = Upload {
            bytes: vec![b'a', 0xff, b'\n'],
            ..up("")
        };
        assert!(upload_text(&bad).unwrap_err().contains("not UTF-8"));
    }
}
