//! Power on the web UI: a machine's BMC (in words, whether a password is kept, never the
//! password) and its last power action on the machine's page, with On, Off…, Cycle…,
//! Reset… and Status buttons for who may use them; the same actions for the machines ticked
//! on the machines page; the question asked before off, cycle and reset (which machines,
//! through which BMC, what they boot next); and the results, one line per machine, on the
//! page the action leads back to. The forms go through `actions::power` like every other.
//! BMC settings, names and failure details are untrusted text: maud escapes them.

use std::sync::Arc;

use axum::response::Html;
use maud::{Markup, html};
use nmt_projections::{BmcProtocol, Mac, PowerOp};

use super::Web;
use super::auth::Ctx;
use super::page::{self, Nav, hidden, when};
use crate::app::Action;
use crate::app::power::{BmcView, PowerView};

/// A power action's results, kept in the session for the next page.
#[derive(Clone, Debug)]
pub struct Done {
    /// What was asked.
    pub op: PowerOp,
    /// One per machine.
    pub results: Vec<PowerView>,
}

/// Which power buttons this request's user gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    /// On, Off, Cycle, Reset (the access rules' right for a power action on machines).
    pub act: bool,
    /// Status: anyone logged in (it reads, and records what it read as them).
    pub status: bool,
}

impl Rights {
    /// Whether any button is shown.
    pub fn any(self) -> bool {
        self.act || self.status
    }
}

/// The power buttons this request's user may use.
pub async fn rights(web: &Arc<Web>, ctx: &Ctx) -> Rights {
    if ctx.user.is_none() {
        return Rights::default();
    }
    // Machines are named by MAC here: the right of a power action on machines.
    let right = Action::Power {
        op: PowerOp::On,
        range: "52:54:00:00:00:00".into(),
    }
    .right();
    Rights {
        act: super::actions::may(web, ctx, right).await,
        status: true,
    }
}

/// Whether an action is asked about first: it stops or restarts a running machine.
pub fn asks(op: PowerOp) -> bool {
    matches!(op, PowerOp::Off | PowerOp::Cycle | PowerOp::Reset)
}

/// The action as a verb phrase ("Power off").
pub fn verb(op: PowerOp) -> &'static str {
    match op {
        PowerOp::On => "Power on",
        PowerOp::Off => "Power off",
        PowerOp::Cycle => "Power-cycle",
        PowerOp::Reset => "Reset",
        PowerOp::Status => "Read the power state of",
    }
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 machine".into()
    } else {
        format!("{n} machines")
    }
}

/// The buttons, as a form's fields (in a form of their own on a machine's page, inside the
/// bulk form on the machines page, where `formaction` sends them here).
fn buttons(r: Rights, bulk: bool) -> Markup {
    let action = if bulk { Some("/machines/power") } else { None };
    html! {
        @if r.act {
            button.power-on type="submit" name="power" value="on" formaction=[action]
                title="switch on; its next boot goes to the network first" { "On" }
            button.danger.power-off type="submit" name="power" value="off" formaction=[action]
                title="a hard power off; asks first" { "Off…" }
            button.danger.power-cycle type="submit" name="power" value="cycle" formaction=[action]
                title="off and on again, hard; asks first" { "Cycle…" }
            button.danger.power-reset type="submit" name="power" value="reset" formaction=[action]
                title="a hard reset; asks first" { "Reset…" }
        }
        @if r.status {
            button.power-status type="submit" name="power" value="status" formaction=[action]
                title="read the power state from its BMC" { "Status" }
        }
    }
}

/// The power actions of the machines page's bulk form, for who may use them.
pub fn bulk(r: Rights) -> Markup {
    html! {
        @if r.any() {
            fieldset.power #bulk-power {
                legend { "Power" }
                (buttons(r, true))
            }
        }
    }
}

/// What a machine's page shows of its power: its BMC, and its last power action.
pub struct Section {
    /// `nmt bmc show` of it.
    pub view: Option<BmcView>,
    /// Its BMC can be used (none: it has none; an error: its group's setting does not fit
    /// it).
    pub usable: Option<Result<(), String>>,
    /// The buttons this user gets.
    pub rights: Rights,
}

/// The Power part of a machine's page (`#m-power`, which follows commits).
pub fn section(s: &Section, ctx: &Ctx, mac: Mac) -> Markup {
    let here = format!("/machine/{mac}");
    let name = s
        .view
        .as_ref()
        .and_then(|v| v.name.clone())
        .unwrap_or_else(|| mac.to_string());
    let group = s.view.as_ref().and_then(|v| v.from.clone());
    html! {
        div #m-power data-live {
            @match (&s.usable, &s.view) {
                (Some(Ok(())), Some(v)) => {
                    dl.facts {
                        dt { "BMC" }
                        dd.bmc {
                            (v.described)
                            @if let Some(from) = group.as_deref().filter(|f| f.starts_with('@')) {
                                span.muted { " (group " (from.trim_start_matches('@')) "'s setting)" }
                            }
                        }
                        dt { "Password" }
                        dd.password {
                            @if matches!(v.bmc.as_ref().map(|b| &b.protocol), Some(BmcProtocol::Wol { .. })) {
                                span.muted { "none needed (Wake-on-LAN)" }
                            } @else if v.password {
                                "kept " span.muted { "(never shown)" }
                            } @else {
                                strong { "none kept" } span.muted { ": its actions fail until one is set" }
                            }
                        }
                        dt { "Last action" }
                        dd.last-power { (last(v)) }
                    }
                    @if matches!(v.bmc.as_ref().map(|b| &b.protocol), Some(BmcProtocol::Wol { .. })) {
                        p.muted.small.wol-note {
                            "Wake-on-LAN can only switch it on: Off, Cycle, Reset and Status need an "
                            "IPMI or Redfish BMC."
                        }
                    }
                    @if s.rights.any() {
                        form.inline.power method="post" action="/machines/power" {
                            (hidden(ctx, &here))
                            input type="hidden" name="mac" value=(mac);
                            (buttons(s.rights, false))
                        }
                    }
                }
                (Some(Err(why)), v) => {
                    p.no-bmc {
                        strong { "Its BMC cannot be used: " } span.why { (why) }
                    }
                    @if let Some(v) = v {
                        dl.facts { dt { "Last action" } dd.last-power { (last(v)) } }
                    }
                }
                (_, v) => {
                    p.no-bmc {
                        (name) " has no BMC: nmt cannot switch it on or off. Set one on the "
                        "command line, for this machine:"
                    }
                    pre.code.how { "nmt bmc set " (name) " --ipmi HOST --user USER --password-file FILE" }
                    p.muted.small {
                        "or " code { "--redfish https://HOST" } " instead of " code { "--ipmi HOST" }
                        ", or " code { "--wol" } " (Wake-on-LAN, on only); for all of its group: "
                        code { "nmt bmc set @GROUP --ipmi '{name}-bmc' …" } "."
                    }
                    @if let Some(v) = v.as_ref().filter(|v| v.last.is_some()) {
                        dl.facts { dt { "Last action" } dd.last-power { (last(v)) } }
                    }
                }
            }
        }
    }
}

/// A machine's last power action: what, its result, when, by whom.
fn last(v: &BmcView) -> Markup {
    html! {
        @match &v.last {
            None => { span.muted { "none yet" } }
            Some(l) => {
                (result_chip(l.result.ok)) " "
                strong.op { (l.op) }
                " " time datetime=(l.at) { (when(l.at)) }
                " by " span.by { (l.by) }
                @if let Some(st) = &l.result.state { " · state " strong.state { (st) } }
                @if !l.result.detail.is_empty() {
                    br;
                    span.detail { (l.result.detail) }
                }
            }
        }
    }
}

fn result_chip(ok: bool) -> Markup {
    html! {
        @if ok { span.chip.p-ok { "ok" } } @else { span.chip.p-failed { "failed" } }
    }
}

/// The machines an action is asked about: name, MAC, BMC in words, the policy of its next
/// boot.
pub struct Listed {
    pub mac: Mac,
    pub name: Option<String>,
    pub bmc: String,
    pub policy: String,
}

/// Read what the question lists about each machine.
pub fn listed(web: &Web, macs: &[Mac]) -> Vec<Listed> {
    let published = web.shared.published();
    let st = &published.state;
    macs.iter()
        .filter_map(|mac| st.machine(mac))
        .map(|m| Listed {
            mac: m.mac,
            name: m.name.clone(),
            bmc: match st.machine_bmc(&m.mac) {
                None => "no BMC".into(),
                Some(Err(why)) => why,
                Some(Ok(b)) => nmt_projections::describe_bmc(&b.bmc),
            },
            policy: st.effective_policy(m).0.to_string(),
        })
        .collect()
}

/// The question asked before off, cycle and reset: how many machines, which, through which
/// BMC. Nothing is done until its own form is sent; Cancel goes back.
pub fn confirm(
    web: &Arc<Web>,
    ctx: &Ctx,
    op: PowerOp,
    rows: &[Listed],
    back: &str,
) -> Html<String> {
    let what = match rows {
        [one] => one.name.clone().unwrap_or_else(|| one.mac.to_string()),
        _ => count(rows.len()),
    };
    let title = format!("{} {what}?", verb(op));
    let body = html! {
        div.titlebar { h1 { (title) } }
        div.card.wide.confirm {
            p #power-warning { (warning(op, rows.len())) }
            @if rows.is_empty() {
                p.flash.err role="alert" { "None of these machines is in the inventory any more." }
            } @else {
                div.tablewrap {
                    table {
                        thead { tr {
                            th scope="col" { "Name" } th scope="col" { "MAC" }
                            th scope="col" { "BMC" } th scope="col" { "Next boot" }
                        } }
                        tbody #power-list {
                            @for r in rows {
                                tr data-mac=(r.mac) {
                                    td { @match &r.name { Some(n) => { (n) } None => { span.muted { "unnamed" } } } }
                                    td.mono { (r.mac) }
                                    td.bmc { (r.bmc) }
                                    td { span.policy { (r.policy) } }
                                }
                            }
                        }
                    }
                }
                form.inline.confirm-row method="post" action="/machines/power" {
                    (hidden(ctx, back))
                    input type="hidden" name="confirmed" value="1";
                    @for r in rows { input type="hidden" name="mac" value=(r.mac); }
                    button.danger.solid #confirm-power type="submit" name="power" value=(op) {
                        (verb(op)) " " (what)
                    }
                    a.button #cancel-power href=(back) { "Cancel" }
                }
            }
        }
    };
    page::layout(web, ctx, &title, Nav::Machines, body)
}

/// What the action does, said for one machine or several.
fn warning(op: PowerOp, n: usize) -> String {
    let (its, systems, are, each) = if n == 1 {
        ("its", "operating system", "is", "Its")
    } else {
        ("their", "operating systems", "are", "Each one's")
    };
    match op {
        PowerOp::Off => format!(
            "A hard power off: like pulling the plug, {its} {systems} {are} not shut down \
             first, and what {} not saved is lost.",
            if n == 1 { "it had" } else { "they had" }
        ),
        PowerOp::Cycle => format!(
            "Off and on again, hard: {its} {systems} {are} not shut down first. {each} next \
             boot is set to the network first, so it boots what its policy says (below); {}.",
            if n == 1 {
                "if it is off, it is switched on"
            } else {
                "one that is off is switched on"
            }
        ),
        _ => format!(
            "A hard reset: {} at once, {its} {systems} not shut down first. {each} next boot \
             is set to the network first, so it boots what its policy says (below).",
            if n == 1 {
                "it restarts"
            } else {
                "they restart"
            }
        ),
    }
}

/// The summary of a power action's results, for the page's message.
pub fn summary(d: &Done) -> String {
    let ok = d.results.iter().filter(|r| r.ok).count();
    format!(
        "power {} of {}: {ok} ok, {} failed",
        d.op,
        count(d.results.len()),
        d.results.len() - ok
    )
}

/// A power action's results, one line per machine (shown once, on the page it led to).
pub fn results(d: &Done) -> Markup {
    html! {
        section.card.power-results #power-results aria-labelledby="power-results-h" {
            h2 #power-results-h { "Power " (d.op) ": results" }
            div.tablewrap {
                table {
                    thead { tr {
                        th scope="col" { "Machine" } th scope="col" { "MAC" } th scope="col" { "Result" }
                        th scope="col" { "State" } th scope="col" { "Detail" }
                    } }
                    tbody {
                        @for r in &d.results {
                            tr.power-result.ok[r.ok].failed[!r.ok] data-mac=(r.mac) {
                                td.name {
                                    a href={ "/machine/" (r.mac) } {
                                        @match &r.name { Some(n) => { (n) } None => { span.muted { "unnamed" } } }
                                    }
                                }
                                td.mono { (r.mac) }
                                td.result { (result_chip(r.ok)) }
                                td.state { @match &r.state { Some(s) => { (s) } None => { span.muted { "—" } } } }
                                td.detail { (r.detail) }
                            }
                        }
                    }
                }
            }
        }
    }
}
