//! The page frame and the small pieces pages share: navigation, the message an action left,
//! the installer password shown once, policy and group pickers, times. maud escapes every
//! value it prints, so text from DHCP clients stays text.

use std::sync::Arc;

use axum::response::Html;
use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};
use nmt_projections::{Origin, ProfileKind, State};

use super::Web;
use super::auth::Ctx;

/// The navigation entries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Machines,
    Groups,
    Profiles,
    Images,
    Schedules,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · nmt" }
            link rel="stylesheet" href="/static/app.css";
            script src="/static/app.js" defer {}
        }
    }
}

/// A page without navigation (login, refusals).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body.bare { (body) }
            }
        }
        .into_string(),
    )
}

/// A full page: header, navigation, the pending message, the content.
pub fn layout(web: &Arc<Web>, ctx: &Ctx, title: &str, nav: Nav, body: Markup) -> Html<String> {
    let flash = web.sessions.take_flash(&ctx.sid);
    let power = web.sessions.take_power(&ctx.sid);
    let (caller, _) = super::actions::caller(web, ctx);
    let password = {
        let has = web
            .new_password
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if has && super::actions::is_admin(web, ctx) {
            web.new_password
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
        } else {
            None
        }
    };
    let item = |n: Nav, href: &str, label: &str| {
        html! {
            a href=(href) aria-current=[(n == nav).then_some("page")] { (label) }
        }
    };
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/machines" { "nmt" }
                        nav aria-label="Main" {
                            (item(Nav::Machines, "/machines", "Machines"))
                            (item(Nav::Groups, "/groups", "Groups"))
                            (item(Nav::Profiles, "/profiles", "Profiles"))
                            (item(Nav::Images, "/images", "Images"))
                            (item(Nav::Schedules, "/schedules", "Schedules"))
                        }
                        div.who {
                            @if ctx.user.is_some() {
                                span #who title="Changes you make are recorded with this name" {
                                    (caller.name)
                                }
                            } @else {
                                a #who.readonly href="/login"
                                    title="Run `nmt web-login` and open its link to make changes" {
                                    "read-only: log in"
                                }
                            }
                            @if ctx.user.is_some() {
                                form.inline method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(ctx.csrf);
                                    button.link type="submit" { "Log out" }
                                }
                            }
                        }
                    }
                    main #main {
                        @if let Some(p) = password {
                            div.flash.warn role="alert" {
                                strong { "Installer password: " }
                                code.secret { (p) }
                                " — the password of installed machines and installer consoles. \
                                 Write it down, then run `nmt installer-password ack`: until then \
                                 it is shown here once after each start of nmtd (the event log \
                                 keeps only its hash)."
                            }
                        }
                        @if let Some(f) = flash {
                            div.flash.ok[f.ok].err[!f.ok] role=(if f.ok { "status" } else { "alert" }) {
                                pre { (f.text) }
                            }
                        }
                        @if let Some(p) = &power {
                            (super::power::results(p))
                        }
                        (body)
                    }
                }
            }
        }
        .into_string(),
    )
}

/// The hidden fields every form carries: the CSRF token and where to come back to.
pub fn hidden(ctx: &Ctx, back: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(ctx.csrf);
        input type="hidden" name="back" value=(back);
    }
}

/// Every policy word the state offers, for pickers.
pub fn policy_words(st: &State, inherit: bool) -> Vec<(String, String)> {
    let mut out = vec![("localboot".to_string(), "localboot".to_string())];
    for p in st.profiles() {
        let word = match p.kind {
            ProfileKind::Install => format!("install:{}", p.name),
            ProfileKind::Ltsp => "ltsp".into(),
            ProfileKind::Custom => format!("custom:{}", p.name),
            _ => continue,
        };
        out.push((word.clone(), word));
    }
    if inherit {
        out.push(("inherit".into(), "inherit (follow the group)".into()));
    }
    out
}

/// A policy picker: a select of the usual words and a text field for the others
/// (`save-image:NAME`, `nfsroot:SERVER:/EXPORT`), which wins when filled in.
pub fn policy_picker(st: &State, id: &str, current: Option<&str>, inherit: bool) -> Markup {
    let other_id = format!("{id}-other");
    let mut words = policy_words(st, inherit);
    if let Some(c) = current
        && !words.iter().any(|(w, _)| w == c)
    {
        words.insert(0, (c.to_string(), c.to_string()));
    }
    html! {
        label for=(id) { "Policy" }
        select id=(id) name="policy" {
            @for (word, label) in words {
                option value=(word) selected[current == Some(word.as_str())] { (label) }
            }
        }
        label.sr for=(other_id) { "or type a policy" }
        input.other id=(other_id) name="policy_other" type="text" size="13"
            placeholder="or type one" list="policy-words"
            title="any policy: save-image:NAME, restore-image:NAME, nfsroot:SERVER:/EXPORT, custom:ENTRY";
    }
}

/// A group picker.
pub fn group_picker(st: &State, id: &str, current: Option<&str>) -> Markup {
    html! {
        label for=(id) { "Group" }
        select id=(id) name="group" {
            @for g in st.groups() {
                option value=(g.name) selected[current == Some(g.name.as_str())] { (g.name) }
            }
        }
    }
}

/// A time in nmtd's zone, to the second, with its UTC offset (as the CLI prints times).
pub fn when(t: Timestamp) -> String {
    crate::app::local_time(t)
}

/// "3 min ago", for the last-seen column.
pub fn ago(t: Timestamp) -> String {
    let s = Timestamp::now().as_second() - t.as_second();
    match s {
        ..=-1 => "in the future".into(),
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// The badge of where a policy comes from.
pub fn origin_badge(o: &Origin) -> Markup {
    match o {
        Origin::Machine => {
            html! { span.badge.own title="its own policy, overriding its group's" { "own" } }
        }
        Origin::MachineOnce => {
            html! { span.badge.once title="its own policy, for the next boot only" { "next boot" } }
        }
        Origin::Group => html! {},
    }
}
