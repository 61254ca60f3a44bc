//! The Schedules page: each schedule (its pattern and zone, the command it runs, its owner,
//! its next run or that it is paused) with its last runs, their outcome counts and the
//! machines that were not done, each linked to its timeline. Admins get Pause, Resume and
//! Remove (which asks first); the forms go through `actions` like every other. The list
//! follows commits (`GET /schedules/live`). Commands, errors and the details machines
//! reported are untrusted text: maud escapes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::Html;
use jiff::{SignedDuration, Timestamp};
use maud::{Markup, html};
use nmt_projections::{Outcome, duration_words};

use super::Web;
use super::auth::Ctx;
use super::page::{self, Nav, hidden, when};
use crate::app::Action;
use crate::app::schedule::{MachineOutcomeView, RunView, ScheduleView};

/// How many runs (and records of missed times) of each schedule the page shows.
pub const SHOWN_RUNS: usize = 5;

/// The command the page suggests when no schedule is defined (as `nmt schedule list` does).
const EXAMPLE: &str = "nmt schedule add lab-nightly --cron '0 2 * * *' --tz Europe/Berlin \
                       --expect 45m -- policy @lab restore-image:lab --once";

/// What the page shows, read from the published state.
struct Listed {
    schedules: Vec<ScheduleView>,
    /// Each schedule's runs and misses, newest first.
    runs: BTreeMap<String, Vec<RunView>>,
}

fn listed(web: &Web) -> Listed {
    let published = web.shared.published();
    let st = &published.state;
    let schedules = crate::app::schedule::views(st, Timestamp::now());
    let runs = crate::app::schedule::runs(st, None)
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.schedule, r.runs))
        .collect();
    Listed { schedules, runs }
}

/// Whether this request's user may pause, resume and remove schedules.
async fn may_change(web: &Arc<Web>, ctx: &Ctx) -> bool {
    let right = Action::SchedulePause {
        name: String::new(),
    }
    .right();
    super::actions::may(web, ctx, right).await
}

/// `GET /schedules`.
pub async fn page(State(web): State<Arc<Web>>, Extension(ctx): Extension<Ctx>) -> Html<String> {
    let admin = may_change(&web, &ctx).await;
    let list = render(&listed(&web), &ctx, admin);
    let body = html! {
        div.titlebar {
            h1 { "Schedules" }
            span.live #live aria-live="polite" title="this page follows new events without a reload" { "live" }
        }
        p.muted {
            "Commands nmtd runs at the times a cron pattern names, as the admin who defined "
            "them, with their rights; with an outcome check, what each machine did after a run."
        }
        (list)
    };
    page::layout(&web, &ctx, "Schedules", Nav::Schedules, body)
}

/// `GET /schedules/live`: the list alone, for the page's script to put in place.
pub async fn live(State(web): State<Arc<Web>>, Extension(ctx): Extension<Ctx>) -> Html<String> {
    let admin = may_change(&web, &ctx).await;
    Html(render(&listed(&web), &ctx, admin).into_string())
}

/// The list of schedules (`#schedules`, which the page's script replaces on commits).
fn render(l: &Listed, ctx: &Ctx, admin: bool) -> Markup {
    html! {
        div #schedules data-src="/schedules/live" {
            @if l.schedules.is_empty() {
                div.card.wide #no-schedules {
                    p { strong { "No schedule is defined." } }
                    p {
                        "A schedule runs an nmt command that changes machines or their policies "
                        "at the times a cron pattern names. Define one on the command line, e.g. "
                        "to restore the lab's machines every night at 02:00, and check after 45 "
                        "minutes that each of them did:"
                    }
                    pre.code { (EXAMPLE) }
                    p.muted {
                        "Then " code { "nmt schedule list" } " and this page show it; "
                        code { "nmt schedule add --help" } " tells the patterns and the rules."
                    }
                }
            }
            @for s in &l.schedules {
                (schedule(s, l.runs.get(&s.name).map_or(&[][..], Vec::as_slice), ctx, admin))
            }
        }
    }
}

fn schedule(s: &ScheduleView, runs: &[RunView], ctx: &Ctx, admin: bool) -> Markup {
    let id = format!("s-{}", s.name);
    let zone = crate::app::schedule::zone(&s.tz);
    html! {
        section.card.schedule data-schedule=(s.name) aria-labelledby=(id) {
            div.schedhead {
                h2 id=(id) { (s.name) }
                @if s.paused {
                    span.badge.paused { "paused" }
                }
                @if admin {
                    div.schedacts {
                        @if s.paused {
                            form.inline method="post" action="/schedules/resume" {
                                (hidden(ctx, "/schedules"))
                                input type="hidden" name="name" value=(s.name);
                                button.primary type="submit" { "Resume" }
                            }
                        } @else {
                            form.inline method="post" action="/schedules/pause" {
                                (hidden(ctx, "/schedules"))
                                input type="hidden" name="name" value=(s.name);
                                button type="submit" title="its times pass without a run until it is resumed" { "Pause" }
                            }
                        }
                        form.inline method="post" action="/schedules/rm" {
                            (hidden(ctx, "/schedules"))
                            input type="hidden" name="name" value=(s.name);
                            button.danger type="submit" title="asks before it removes anything" { "Remove…" }
                        }
                    }
                }
            }
            dl.facts {
                dt { "When" }
                dd.when { code.cron { (s.cron) } " in " span.tz { (s.tz) } }
                dt { "Command" }
                dd { code.command { "nmt " (s.command.join(" ")) } }
                dt { "Owner" }
                dd.owner { (s.owner) span.muted { " (its runs act with their rights)" } }
                dt { "Next run" }
                dd.next {
                    @if s.paused {
                        span.paused { "paused" } span.muted { ": its times pass without a run until it is resumed" }
                    } @else {
                        @match s.next {
                            Some(t) => {
                                time datetime=(t) { (when(t)) }
                                @if let Some(z) = &zone {
                                    span.muted.zoned { " (" (t.to_zoned(z.clone()).strftime("%Y-%m-%d %H:%M %Z")) " in " (s.tz) ")" }
                                }
                            }
                            None => { span.muted { "none: the pattern names no time that comes" } }
                        }
                    }
                }
                dt { "Outcome check" }
                dd.expect {
                    @match s.expect {
                        Some(e) => { (duration_words(e)) " after each run" }
                        None => { span.muted { "none (defined without an expected duration)" } }
                    }
                }
                dt { "Grace" }
                dd.grace {
                    (duration_words(s.grace))
                    span.muted { ": a time nmtd was down for is run late up to this long after it, else recorded as missed" }
                }
            }
            h3 { "Last runs" }
            @if runs.is_empty() {
                p.muted.norun { "It has not run yet." }
            } @else {
                ol.runs {
                    @for r in runs.iter().take(SHOWN_RUNS) {
                        (run(r, s.expect))
                    }
                }
                @if runs.len() > SHOWN_RUNS {
                    p.muted.small {
                        "The " (SHOWN_RUNS) " latest of " (runs.len()) " shown; "
                        code { "nmt schedule runs " (s.name) } " lists them all."
                    }
                }
            }
        }
    }
}

fn machines(n: usize) -> String {
    if n == 1 {
        "1 machine".into()
    } else {
        format!("{n} machines")
    }
}

fn run(r: &RunView, expect: Option<u64>) -> Markup {
    if let Some(m) = &r.missed {
        return html! {
            li.run.missed data-run="missed" {
                div.runhead {
                    span.chip.o-missed { "missed" }
                    @if m.count == 1 {
                        " due " time datetime=(r.due) { (when(r.due)) }
                    } @else {
                        " " (m.count) " times, due " time datetime=(r.due) { (when(r.due)) }
                        " to " time datetime=(m.last) { (when(m.last)) }
                    }
                    span.muted { ": nmtd was down, and it was too late to run; not run" }
                }
            }
        };
    }
    let check_due = expect
        .and_then(|e| i64::try_from(e).ok())
        .and_then(|e| r.at.checked_add(SignedDuration::from_secs(e)).ok());
    html! {
        li.run.failed[r.error.is_some()] data-run=(r.run) {
            div.runhead {
                strong { "Run " (r.run) }
                " " time datetime=(r.at) { (when(r.at)) }
                @if r.late {
                    " " span.badge.late title="nmtd was down at its time; run within the grace" {
                        "late"
                    }
                    span.muted { " (due " time datetime=(r.due) { (when(r.due)) } ")" }
                }
                @if r.error.is_none() {
                    " · " span.targeted { (machines(r.targeted)) " targeted" }
                }
            }
            @if let Some(e) = &r.error {
                p.run-error { strong { "Failed, nothing changed: " } span.why { (e) } }
            } @else if r.checked.is_some() {
                ul.counts {
                    @for k in Outcome::ALL {
                        @let n = r.counts.get(k.as_str()).copied().unwrap_or(0);
                        @let class = format!("count o-{}{}", k.as_str(), if n == 0 { " zero" } else { "" });
                        li class=(class) data-outcome=(k.as_str()) {
                            strong.n { (n) } " " (k.words())
                        }
                    }
                }
                @if !r.not_done.is_empty() {
                    (not_done(&r.not_done, "Not done"))
                }
            } @else {
                p.unchecked.muted {
                    @match (check_due, r.targeted) {
                        (_, 0) => { "nothing to check: it targeted no machine" }
                        (Some(_), _) => { "not checked yet" }
                        (None, _) => { "not checked (no outcome check is set)" }
                    }
                    @if let (Some(t), true) = (check_due, r.targeted > 0) {
                        ": its outcome is checked at " time datetime=(t) { (when(t)) }
                    }
                }
                @if !r.carried.is_empty() {
                    (not_done(&r.carried, "Its one-shot from an earlier run still pending"))
                }
            }
        }
    }
}

/// The machines of a run that were not done (or were carried), each linked to its page.
fn not_done(list: &[MachineOutcomeView], title: &str) -> Markup {
    html! {
        div.tablewrap.notdone {
            table {
                caption.sr { (title) }
                thead { tr {
                    th scope="col" { "Machine" } th scope="col" { "MAC" }
                    th scope="col" { "Outcome" } th scope="col" { "What was seen" }
                } }
                tbody {
                    @for m in list {
                        tr data-mac=(m.mac) {
                            td.name {
                                a href={ "/machine/" (m.mac) } {
                                    @match &m.name {
                                        Some(n) => { (n) }
                                        None => { span.muted { "unnamed" } }
                                    }
                                }
                            }
                            td.mono { (m.mac) }
                            td {
                                @match m.outcome {
                                    Some(o) => { span class={ "chip o-" (o.as_str()) } { (o.words()) } }
                                    None => { span.chip.o-carried { "carried" } }
                                }
                            }
                            td.detail {
                                (m.detail)
                                @if m.once_pending && m.outcome.is_some() {
                                    " " span.badge.once title="its next boot still uses the run's policy" {
                                        "one-shot still pending"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The question `POST /schedules/rm` asks before it removes a schedule. Nothing changes
/// until its own form is sent.
pub fn rm_confirm(web: &Arc<Web>, ctx: &Ctx, name: &str) -> Html<String> {
    let command = {
        let published = web.shared.published();
        published
            .state
            .schedule(name)
            .map(|s| format!("nmt {}", s.command.join(" ")))
    };
    let body = html! {
        div.titlebar { h1 { "Remove schedule " (name) "?" } }
        div.card.wide.confirm {
            @match &command {
                Some(c) => {
                    p #rm-warning {
                        "nmtd will no longer run " code { (c) } " at its times. Its past runs "
                        "stay in the log and in each machine's history; what its runs already set "
                        "stays as it is (a one-shot policy still pending applies at that machine's "
                        "next boot)."
                    }
                    form.inline.confirm-row method="post" action="/schedules/rm" {
                        (hidden(ctx, "/schedules"))
                        input type="hidden" name="name" value=(name);
                        input type="hidden" name="confirmed" value="1";
                        button.danger.solid #confirm-schedule-rm type="submit" {
                            "Remove schedule " (name)
                        }
                        a.button #cancel-schedule-rm href="/schedules" { "Cancel" }
                    }
                }
                None => {
                    p.flash.err role="alert" { "There is no schedule of that name any more." }
                    a.button href="/schedules" { "Back to the schedules" }
                }
            }
        }
    };
    page::layout(web, ctx, "Remove schedule", Nav::Schedules, body)
}
