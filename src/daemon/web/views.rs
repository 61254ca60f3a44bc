//! The pages: the machines table (filter, search, sort, select many, act once), a machine
//! with its boot entry and timeline, groups, and profiles. Each reads the state nmtd
//! published after its last commit (a machine's history alone needs the engine's lock) and
//! renders the application layer's typed replies. Changes are never made here (see
//! `actions`).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use jiff::Timestamp;
use maud::{Markup, html};
use nmt_projections::{BootRecord, Envelope, Mac, Origin, Profile, ProfileKind, UNKNOWN};
use serde::Deserialize;

use super::Web;
use super::auth::{Ctx, Form};
use super::page::{self, Nav, ago, group_picker, hidden, origin_badge, policy_picker, when};
use super::timeline::{self, Ask};
use crate::app::{self, Action, Failure, MachineView, Reply, ShowView};

/// `GET /`.
pub async fn home() -> Redirect {
    Redirect::to("/machines")
}

/// The machines table's filter, search, order and page.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    group: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    /// The page, from 1 (text: a bad number is page 1, not an error page).
    #[serde(default)]
    page: String,
    /// Rows a page, `PER_PAGE` unless asked (within `PER_PAGE_RANGE`).
    #[serde(default)]
    per: String,
    /// For live updates: the row digests (`data-h`) the page already shows, `.`-separated.
    /// Those rows come back as empty placeholders the page fills from what it has.
    #[serde(default)]
    have: String,
}

/// Rows a page of the machines table: a screenful or a few, so that 10,000 machines cost
/// no more to show (or to follow live) than 250.
const PER_PAGE: usize = 250;
const PER_PAGE_RANGE: std::ops::RangeInclusive<usize> = 10..=2000;

impl Filter {
    /// This filter with another order (and so its first page).
    fn query(&self, sort: &str, dir: &str) -> String {
        self.query_page(sort, dir, 1)
    }

    fn query_page(&self, sort: &str, dir: &str, page: usize) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !self.group.is_empty() {
            q.append_pair("group", &self.group);
        }
        if !self.q.is_empty() {
            q.append_pair("q", &self.q);
        }
        if !sort.is_empty() {
            q.append_pair("sort", sort);
        }
        if !dir.is_empty() {
            q.append_pair("dir", dir);
        }
        if self.per() != PER_PAGE {
            q.append_pair("per", &self.per().to_string());
        }
        if page > 1 {
            q.append_pair("page", &page.to_string());
        }
        let s = q.finish();
        if s.is_empty() { s } else { format!("?{s}") }
    }

    fn here(&self) -> String {
        format!(
            "/machines{}",
            self.query_page(&self.sort, &self.dir, self.page())
        )
    }

    fn page(&self) -> usize {
        self.page.trim().parse().unwrap_or(1).max(1)
    }

    fn per(&self) -> usize {
        self.per.trim().parse().map_or(PER_PAGE, |n: usize| {
            n.clamp(*PER_PAGE_RANGE.start(), *PER_PAGE_RANGE.end())
        })
    }
}

/// One machine, copied out of the state.
struct Row {
    mac: Mac,
    name: Option<String>,
    hostname: Option<String>,
    group: String,
    policy: String,
    origin: Origin,
    ip: Option<String>,
    last_ip: Option<String>,
    rootdev: Option<String>,
    last_seen: Option<Timestamp>,
}

struct Table {
    /// The rows of the page asked for.
    rows: Vec<Row>,
    /// Machines in the inventory.
    total: usize,
    /// Machines the filter matches, on every page.
    matching: usize,
    /// The page shown (from 1; a page past the last is the last) and the pages there are.
    page: usize,
    pages: usize,
    /// The index (from 0) of the page's first row among the matching machines.
    first: usize,
    unknown: usize,
    groups: Vec<String>,
}

/// The machines the filter matches, sorted, and the one page of them asked for, copied out
/// of the published state. Only the page's rows are copied: sorting 10,000 machines by
/// reference costs a few milliseconds.
fn table(web: &Web, f: &Filter) -> Table {
    let published = web.shared.published();
    let st = &published.state;
    let needle = f.q.trim().to_ascii_lowercase();
    let needle_mac = Mac::parse(needle.as_str()).map(|m| m.to_string());
    let mut matched: Vec<&nmt_projections::Machine> = st
        .machines()
        .filter(|m| f.group.is_empty() || m.group == f.group)
        .filter(|m| {
            needle.is_empty()
                || needle_mac.as_deref() == Some(m.mac.to_string().as_str())
                || m.mac.to_string().contains(&needle)
                || m.name.as_deref().is_some_and(|n| n.contains(&needle))
                || m.dhcp_hostname
                    .as_deref()
                    .is_some_and(|h| h.to_ascii_lowercase().contains(&needle))
        })
        .collect();
    let key = f.sort.as_str();
    if key == "policy" {
        matched.sort_by_cached_key(|m| (st.effective_policy(m).0.to_string(), m.first_seq));
    } else {
        matched.sort_by(|a, b| {
            let by = match key {
                "name" => (a.name.is_none(), &a.name).cmp(&(b.name.is_none(), &b.name)),
                "mac" => a.mac.cmp(&b.mac),
                "group" => a.group.cmp(&b.group),
                "ip" => a.ip.cmp(&b.ip),
                "rootdev" => a.rootdev.cmp(&b.rootdev),
                "seen" => b.last_seen.cmp(&a.last_seen),
                _ => std::cmp::Ordering::Equal,
            };
            by.then(a.first_seq.cmp(&b.first_seq))
        });
    }
    if f.dir == "desc" {
        matched.reverse();
    }
    let per = f.per();
    let matching = matched.len();
    let pages = matching.div_ceil(per).max(1);
    let page = f.page().min(pages);
    let first = (page - 1) * per;
    let rows = matched
        .iter()
        .skip(first)
        .take(per)
        .map(|m| {
            let (p, origin) = st.effective_policy(m);
            Row {
                mac: m.mac,
                name: m.name.clone(),
                hostname: m.dhcp_hostname.clone(),
                group: m.group.clone(),
                policy: p.to_string(),
                origin,
                ip: m.ip.map(|a| a.to_string()),
                last_ip: m.last_ip.map(|a| a.to_string()),
                rootdev: m.rootdev.clone(),
                last_seen: m.last_seen,
            }
        })
        .collect();
    Table {
        rows,
        total: st.machine_count(),
        matching,
        page,
        pages,
        first,
        unknown: st.group(UNKNOWN).map_or(0, |g| g.members.len()),
        groups: st.groups().map(|g| g.name.clone()).collect(),
    }
}

impl Table {
    /// The numbers (from 1) of the first and last matching machines this page shows; (0, 0)
    /// when it shows none.
    fn shown(&self) -> (usize, usize) {
        if self.rows.is_empty() {
            (0, 0)
        } else {
            (self.first + 1, self.first + self.rows.len())
        }
    }
}

/// A row's digest, as the page keeps it in `data-h`: of what the row shows (its cells),
/// so a live update resends only the rows that would look different.
fn digest(cells: &str) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same cells give the same digest in every nmtd.
    let mut h = std::hash::DefaultHasher::new();
    cells.hash(&mut h);
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// The table's body: one row a machine of the page, each with its digest. A row whose
/// digest is in `have` is sent as an empty `tr data-same=DIGEST` for the page to fill from
/// the row it shows.
fn rows_html(t: &Table, ticked: &[String], have: &str) -> Markup {
    let have: std::collections::HashSet<&str> = have.split('.').filter(|h| !h.is_empty()).collect();
    let shown = t.shown();
    html! {
        tbody #rows data-count=(t.rows.len()) data-total=(t.total) data-unknown=(t.unknown)
            data-matching=(t.matching) data-page=(t.page) data-pages=(t.pages)
            data-from=(shown.0) data-to=(shown.1) {
            @if t.rows.is_empty() {
                tr.empty { td colspan="8" { "No machine matches. Machines appear here as soon as a DHCP log shows them." } }
            }
            @for r in &t.rows {
                @let plain = cells(r, false).into_string();
                @let h = digest(&plain);
                @if have.contains(h.as_str()) {
                    tr data-same=(h) {}
                } @else {
                    @let tick = ticked.iter().any(|m| Mac::parse(m) == Some(r.mac));
                    tr.unknown[r.group == UNKNOWN] data-mac=(r.mac) data-h=(h) {
                        @if tick { (cells(r, true)) } @else { (maud::PreEscaped(plain)) }
                    }
                }
            }
        }
    }
}

/// "Showing 251–500 of 3,750 · ‹ previous · next ›": where this page is among the
/// matching machines. The page's script keeps the counts true as machines come and go.
fn pager(t: &Table, f: &Filter) -> Markup {
    let (from, to) = t.shown();
    let link = |n: usize| format!("/machines{}", f.query_page(&f.sort, &f.dir, n));
    html! {
        nav.pager #pager aria-label="pages of machines" {
            span #shown {
                span #from { (from) } "–" span #to { (to) } " of " span #matching { (t.matching) }
            }
            " · page " (t.page) " of " span #pages { (t.pages) }
            " "
            a #prev rel="prev" href=(link(t.page.saturating_sub(1).max(1))) hidden[t.page <= 1] { "‹ previous" }
            " "
            a #next rel="next" href=(link(t.page + 1)) hidden[t.page >= t.pages] { "next ›" }
        }
    }
}

/// One machine's cells.
fn cells(r: &Row, checked: bool) -> Markup {
    let label = r.name.clone().unwrap_or_else(|| r.mac.to_string());
    html! {
        td.pick {
            input type="checkbox" name="mac" value=(r.mac) form="act" checked[checked]
                aria-label={ "select " (label) };
        }
        td.name {
            a href={ "/machine/" (r.mac) } {
                @match &r.name {
                    Some(n) => { (n) }
                    None => { span.muted { "unnamed" } }
                }
            }
            @if let Some(h) = &r.hostname {
                @if r.name.as_deref() != Some(h.as_str()) {
                    span.sent title="the host name its DHCP client sent" { (h) }
                }
            }
        }
        td.mono { (r.mac) }
        td {
            @if r.group == UNKNOWN {
                span.badge.unknown { "unknown" }
            } @else {
                (r.group)
            }
        }
        td.policy-cell { span.policy { (r.policy) } " " (origin_badge(&r.origin)) }
        td.mono {
            @match (&r.ip, &r.last_ip) {
                (Some(ip), _) => { (ip) }
                (None, Some(ip)) => { span.muted title="last address seen (not fixed)" { (ip) } }
                _ => { span.muted { "—" } }
            }
        }
        td.mono { @match &r.rootdev { Some(d) => { (d) } None => { span.muted { "—" } } } }
        td {
            @match r.last_seen {
                Some(t) => { time datetime=(t) title=(when(t)) { (ago(t)) } }
                None => { span.muted { "never" } }
            }
        }
    }
}

/// What the "Add machine" form held when it was refused, to fill it in again.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Draft {
    #[serde(default)]
    add: String,
    #[serde(default)]
    add_mac: String,
    #[serde(default)]
    add_name: String,
    #[serde(default)]
    add_group: String,
    #[serde(default)]
    add_ip: String,
}

/// `GET /machines`.
pub async fn machines(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Query(f): Query<Filter>,
    Query(d): Query<Draft>,
) -> Html<String> {
    let t = table(&web, &f);
    let ticked = web.sessions.take_selection(&ctx.sid);
    let power = super::power::rights(&web, &ctx).await;
    let (policies, groups, add_groups) = {
        let published = web.shared.published();
        let st = &published.state;
        let add_group = if d.add_group.is_empty() {
            UNKNOWN
        } else {
            d.add_group.as_str()
        };
        (
            policy_picker(st, "bulk-policy", None, true),
            group_picker(st, "bulk-group", None),
            group_picker(st, "add-group", Some(add_group)),
        )
    };
    let head = |key: &str, label: &str| {
        let active = f.sort == key || (f.sort.is_empty() && key == "first");
        let dir = if active && f.dir != "desc" {
            "desc"
        } else {
            ""
        };
        let sort = if key == "first" { "" } else { key };
        let aria = match (active, f.dir == "desc") {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        };
        html! {
            th.name[key == "name"] scope="col" aria-sort=(aria) {
                a href={ "/machines" (f.query(sort, dir)) } { (label) }
            }
        }
    };
    let here = f.here();
    let body = html! {
        div.titlebar {
            h1 { "Machines" }
            p.muted #counts {
                span #total { (t.total) } (if t.total == 1 { " machine · " } else { " machines · " })
                a href="/machines?group=unknown" { span #unknowns { (t.unknown) } " unknown" }
            }
        }
        form.filters method="get" action="/machines" role="search" {
            label for="f-group" { "Group" }
            select #f-group name="group" data-autosubmit {
                option value="" { "all groups" }
                @for g in &t.groups {
                    option value=(g) selected[*g == f.group] { (g) }
                }
            }
            label for="f-q" { "Search" }
            input #f-q type="search" name="q" value=(f.q) placeholder="name, MAC or client name";
            @if !f.sort.is_empty() { input type="hidden" name="sort" value=(f.sort); }
            @if !f.dir.is_empty() { input type="hidden" name="dir" value=(f.dir); }
            @if f.per() != PER_PAGE { input type="hidden" name="per" value=(f.per()); }
            button type="submit" { "Filter" }
            @if !f.group.is_empty() || !f.q.is_empty() {
                a href="/machines" { "clear" }
            }
            span.live #live aria-live="polite" title="new machines appear without a reload" { "live" }
        }
        details.add #add open[!d.add.is_empty()] {
            summary { "Add machines" }
            div.addpanel {
                form.inline method="post" action="/machines/add" {
                    (hidden(&ctx, "/machines"))
                    label for="add-mac" { "MAC" }
                    input #add-mac.mono type="text" name="mac" required size="17" value=(d.add_mac)
                        placeholder="52:54:00:12:34:56" autocomplete="off" spellcheck="false";
                    label for="add-name" { "Name" }
                    input #add-name type="text" name="name" size="12" value=(d.add_name)
                        placeholder="optional" autocomplete="off";
                    (add_groups)
                    label for="add-ip" { "IP" }
                    input #add-ip.mono type="text" name="ip" size="13" value=(d.add_ip)
                        placeholder="optional" autocomplete="off";
                    button.primary type="submit" { "Add machine" }
                }
                p.muted {
                    "Many at once: " a href="/machines/import" { "import a node table (CSV)" } "."
                }
            }
        }
        form.bulk #act method="post" action="/machines/act" {
            (hidden(&ctx, &here))
            div.selected { span #nsel { "0" } " selected" }
            fieldset {
                legend { "Move" }
                (groups)
                button type="submit" name="op" value="assign" { "Assign" }
            }
            fieldset {
                legend { "Next boot" }
                (policies)
                label.check { input type="checkbox" name="once" value="1"; " next boot only" }
                button type="submit" name="op" value="policy" { "Set policy" }
            }
            fieldset {
                legend { "Name" }
                label for="bulk-pattern" { "Pattern" }
                input #bulk-pattern type="text" name="pattern" size="12" placeholder="node{001}"
                    title="numbered in the order the machines were first seen";
                button type="submit" name="op" value="name" { "Name" }
            }
            fieldset {
                legend { "Disk" }
                label for="bulk-device" { "Root device" }
                input #bulk-device type="text" name="device" size="10" placeholder="/dev/sda1";
                button type="submit" name="op" value="rootdev" { "Set" }
            }
            (super::power::bulk(power))
            fieldset.end {
                button.danger #bulk-remove type="submit" formaction="/machines/remove"
                    title="asks before it removes anything" { "Remove…" }
            }
        }
        (pager(&t, &f))
        div.tablewrap {
            table.machines {
                thead {
                    tr {
                        th.pick scope="col" {
                            input #all type="checkbox" aria-label="select all machines shown";
                        }
                        (head("name", "Name"))
                        (head("mac", "MAC"))
                        (head("group", "Group"))
                        (head("policy", "Policy"))
                        (head("ip", "IP"))
                        (head("rootdev", "Root device"))
                        (head("seen", "Last seen"))
                    }
                }
                (rows_html(&t, &ticked, ""))
            }
        }
        datalist #policy-words {
            option value="save-image:" {}
            option value="restore-image:" {}
            // The saved images: restore the newest of each, or one version.
            @for (name, image) in web.shared.published().state.images() {
                @if !image.versions.is_empty() {
                    option value={ "restore-image:" (name) } {}
                    @for v in image.versions.keys() {
                        option value={ "restore-image:" (name) "@" (v) } {}
                    }
                    option value={ "save-image:" (name) } {}
                }
            }
            option value="nfsroot:" {}
        }
    };
    page::layout(&web, &ctx, "Machines", Nav::Machines, body)
}

/// `POST /machines/remove`: the confirmation page of `nmt machine rm` for the ticked
/// machines (`mac=…` repeated). Nothing changes until its own form is sent.
pub async fn remove_confirm(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Extension(form): Extension<Form>,
) -> Response {
    let back = form
        .get("back")
        .filter(|b| b.starts_with("/machines") && !b.contains('\\'))
        .unwrap_or("/machines")
        .to_string();
    let cancel = form
        .get("back")
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or("/machines")
        .to_string();
    let macs: Vec<Mac> = form
        .all("mac")
        .iter()
        .filter_map(|m| Mac::parse(m))
        .collect();
    if macs.is_empty() {
        return super::actions::mistake(
            &web,
            &ctx,
            &form,
            "tick at least one machine first (or the box in the header for all shown)",
        );
    }
    let rows: Vec<(Mac, Option<String>, String, Option<String>)> = {
        let published = web.shared.published();
        let st = &published.state;
        macs.iter()
            .filter_map(|mac| st.machine(mac))
            .map(|m| {
                (
                    m.mac,
                    m.name.clone(),
                    m.group.clone(),
                    m.ip.map(|a| a.to_string()),
                )
            })
            .collect()
    };
    let n = rows.len();
    let what = if n == 1 {
        "1 machine".to_string()
    } else {
        format!("{n} machines")
    };
    let body = html! {
        div.titlebar { h1 { "Remove " (what) "?" } }
        div.card.wide.confirm {
            p {
                "Their boot entries, DHCP host entries, " code { "/etc/hosts" } " lines and node-list "
                "lines are deleted, as " code { "nmt machine rm" } " does. Their history stays in the "
                "journal; a machine that asks for DHCP again shows up as unknown."
            }
            @if n == 0 {
                p.flash.err role="alert" { "None of the ticked machines is in the inventory any more." }
            } @else {
                div.tablewrap {
                    table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "MAC" } th scope="col" { "Group" } th scope="col" { "IP" } } }
                        tbody #remove-list {
                            @for (mac, name, group, ip) in &rows {
                                tr {
                                    td { @match name { Some(n) => { (n) } None => { span.muted { "unnamed" } } } }
                                    td.mono { (mac) }
                                    td { (group) }
                                    td.mono { @match ip { Some(ip) => { (ip) } None => { span.muted { "—" } } } }
                                }
                            }
                        }
                    }
                }
                form.inline.confirm-row method="post" action="/machines/act" {
                    (hidden(&ctx, &back))
                    input type="hidden" name="confirmed" value="1";
                    @for (mac, ..) in &rows { input type="hidden" name="mac" value=(mac); }
                    button.danger.solid #confirm-remove type="submit" name="op" value="remove" { "Remove " (what) }
                    a.button #cancel-remove href=(cancel) { "Cancel" }
                }
            }
        }
    };
    page::layout(&web, &ctx, "Remove machines", Nav::Machines, body).into_response()
}

/// The confirmation page of an action that removes several machines or makes more than one
/// erase its disk at its next boot: how many, and which, before anything is done.
pub fn bulk_confirm(
    web: &Arc<Web>,
    ctx: &Ctx,
    impact: &nmt_projections::Impact,
    back: &str,
) -> Html<String> {
    let label = |m: &nmt_projections::MachineRef| (m.name.clone(), m.mac);
    // Each list's title, and its machines (name, MAC).
    type Listed = Vec<(Option<String>, Mac)>;
    let mut groups: Vec<(String, Listed)> = Vec::new();
    if !impact.removed.is_empty() {
        groups.push((
            format!("Remove {}", count(impact.removed.len())),
            impact.removed.iter().map(label).collect(),
        ));
    }
    for b in impact.boot.iter().filter(|b| b.erases_disk) {
        groups.push((
            format!(
                "{} will {} at their next boot, erasing their disks",
                count(b.machines.len()),
                b.doing()
            ),
            b.machines.iter().map(label).collect(),
        ));
    }
    let total = impact.at_risk().len();
    let body = html! {
        div.titlebar { h1 { "Erase or remove " (count(total)) "?" } }
        div.card.wide.confirm {
            @for (title, machines) in &groups {
                h2 { (title) }
                div.tablewrap {
                    table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "MAC" } } }
                        tbody.at-risk {
                            @for (name, mac) in machines {
                                tr {
                                    td { @match name { Some(n) => { (n) } None => { span.muted { "unnamed" } } } }
                                    td.mono { (mac) }
                                }
                            }
                        }
                    }
                }
            }
            p { "Nothing is done until you proceed. If the machines this reaches change meanwhile, it is refused." }
            form.inline.confirm-row method="post" action="/confirm" {
                (hidden(ctx, back))
                button.danger.solid #confirm-bulk type="submit" name="proceed" value="1" { "Proceed" }
                button #cancel-bulk type="submit" name="cancel" value="1" { "Cancel" }
            }
        }
    };
    page::layout(web, ctx, "Confirm", Nav::Machines, body)
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 machine".into()
    } else {
        format!("{n} machines")
    }
}

/// `GET /machines/import`.
pub async fn import(State(web): State<Arc<Web>>, Extension(ctx): Extension<Ctx>) -> Html<String> {
    import_page(&web, &ctx, "", None)
}

/// The import page: upload a node table or paste it; `error` is why the last try was
/// refused (nothing was imported), `pasted` what was pasted then.
pub fn import_page(web: &Arc<Web>, ctx: &Ctx, pasted: &str, error: Option<&str>) -> Html<String> {
    let body = html! {
        div.titlebar { h1 { "Import machines" } a href="/machines" { "All machines" } }
        @if let Some(e) = error {
            div.flash.err #import-error role="alert" {
                pre { (e) }
                @if !e.to_ascii_lowercase().contains("nothing was") { "Nothing was imported." }
            }
        }
        form.stack.card.wide method="post" action="/machines/import" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(ctx.csrf);
            p.muted {
                "A node table, as for " code { "nmt machine import" } ": one machine a line, "
                code { "mac[,name,ip,group]" } ", an optional header line naming the columns, "
                code { "#" } " comments. All rows are imported or none."
            }
            label for="import-file" { "CSV file" }
            input #import-file type="file" name="file" accept=".csv,.txt,text/csv,text/plain";
            label for="import-table" { "or paste the rows" }
            textarea #import-table.mono name="table" rows="10" spellcheck="false"
                placeholder="52:54:00:00:00:01,node001,10.0.0.1,physics" { (pasted) }
            div.row { button.primary type="submit" { "Import" } }
        }
    };
    page::layout(web, ctx, "Import machines", Nav::Machines, body)
}

/// `GET /machines/rows`: the table body alone, for live updates (with `have`, only the rows
/// that changed are sent in full).
pub async fn machine_rows(State(web): State<Arc<Web>>, Query(f): Query<Filter>) -> Html<String> {
    Html(rows_html(&table(&web, &f), &[], &f.have).into_string())
}

/// What a machine's page shows.
struct Loaded {
    /// `nmt show` (as of the time asked), or why not.
    show: Result<ShowView, Failure>,
    /// Its history, oldest first.
    history: Vec<Envelope>,
    /// Its boots, oldest first.
    boots: Vec<BootRecord>,
    policies: Markup,
    groups: Markup,
    exists: bool,
    /// Its BMC and last power action, and the power buttons this user gets.
    power: super::power::Section,
}

/// Why a machine's page cannot be shown: the status and the text of the refusal page.
type Refusal = (StatusCode, String);

/// The `{mac}` of a machine URL and its `?at=TIME`, or why not.
fn machine_query(mac: &str, q: &Ask) -> Result<(Mac, Option<Timestamp>), Refusal> {
    let Some(mac) = Mac::parse(mac) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("{mac:?} is not a MAC address"),
        ));
    };
    let at = match q.at.trim() {
        "" => None,
        s => match crate::parse_time(s) {
            Ok(t) => Some(t),
            Err(e) => {
                return Err((StatusCode::BAD_REQUEST, format!("{e:#}")));
            }
        },
    };
    Ok((mac, at))
}

/// Read what a machine's page shows: `nmt show` (as of `at`), its history and boots. Only
/// the history (and a past state) is read under the engine's lock; the rest comes from the
/// state published with it.
async fn load(
    web: &Arc<Web>,
    ctx: &Ctx,
    mac: Mac,
    at: Option<Timestamp>,
) -> Result<Loaded, Refusal> {
    let shared = web.shared.clone();
    let read = web
        .shared
        .write(move |engine| {
            let past = at.map(|t| {
                app::perform(
                    engine,
                    Action::Show {
                        machine: mac.to_string(),
                        at: Some(t),
                    },
                    "",
                    nmt_projections::Source::Web,
                )
            });
            // Under the lock, the published state is the engine's.
            let history = engine.history(&mac, None, None).unwrap_or_default();
            (shared.published(), history, past)
        })
        .await;
    let Ok((published, history, past)) = read else {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "nmtd failed reading".to_string(),
        ));
    };
    let st = &published.state;
    let exists = st.machine(&mac).is_some();
    if history.is_empty() && !exists {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no event mentions {mac}; it is not in the inventory"),
        ));
    }
    let show = past
        .or_else(|| {
            app::read(
                st,
                &published.config,
                &Action::Show {
                    machine: mac.to_string(),
                    at: None,
                },
            )
        })
        .expect("`show` is read from a state")
        .map_err(|e| Failure::of(&e))
        .and_then(|reply| match reply {
            Reply::Show(view) => Ok(*view),
            _ => Err(Failure::Said("nmt: `show` answered something else".into())),
        });
    let boots: Vec<BootRecord> = match app::boots(st, mac, mac.to_string(), None, &history) {
        Reply::Boots { boots, .. } => boots,
        _ => Vec::new(),
    };
    let policies = policy_picker(
        st,
        "m-policy",
        st.machine(&mac)
            .map(|m| st.effective_policy(m).0.to_string())
            .as_deref(),
        true,
    );
    let groups = group_picker(st, "m-group", st.machine(&mac).map(|m| m.group.as_str()));
    let power = super::power::Section {
        view: if exists {
            crate::app::power::show(st, &mac.to_string())
                .ok()
                .and_then(|v| v.into_iter().next())
        } else {
            None
        },
        usable: st.machine_bmc(&mac).map(|b| b.map(|_| ())),
        rights: super::power::rights(web, ctx).await,
    };
    // The site key and the report tokens of machines this user may not administer are not
    // shown (the entries and the installers' log lines carry tokens).
    let (caller, _) = super::actions::caller(web, ctx);
    let (access, state) = (published.config.clone(), published.state.clone());
    let secrets = tokio::task::spawn_blocking(move || {
        crate::daemon::control::hidden_from(&access.access, &caller, &state)
    })
    .await
    .map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "nmtd failed reading".to_string(),
        )
    })?;
    let hide = |e: serde_json::Error| Failure::Said(format!("nmt: {e}"));
    let show = show.and_then(|v| crate::daemon::control::redacted(v, &secrets).map_err(hide));
    let history = crate::daemon::control::redacted(history, &secrets).unwrap_or_default();
    Ok(Loaded {
        show,
        history,
        boots,
        policies,
        groups,
        exists,
        power,
    })
}

/// The parts of a machine's page that follow commits (`data-live`, replaced by id).
struct Parts {
    sub: Markup,
    strip: Markup,
    facts: Markup,
    change: Markup,
    power: Markup,
    timeline: Markup,
    files: Markup,
}

fn parts(l: &Loaded, ctx: &Ctx, mac: Mac, at: Option<Timestamp>, ask: &Ask) -> Parts {
    let here = format!("/machine/{mac}");
    let m = l.show.as_ref().ok().map(|s| &s.machine);
    // Its page's script leaves this form alone while someone is filling it in.
    let change = html! {
        div #m-change data-live data-keep-while-edited {
            @if l.exists {
                form.stack method="post" action="/machines/act" {
                    (hidden(ctx, &here))
                    input type="hidden" name="mac" value=(mac);
                    div.row {
                        label for="m-name" { "Name" }
                        input #m-name type="text" name="name" value=[m.and_then(|m| m.name.as_deref())];
                        button type="submit" name="op" value="rename" { "Rename" }
                    }
                    div.row {
                        (l.groups)
                        button type="submit" name="op" value="assign" { "Assign" }
                    }
                    div.row {
                        (l.policies)
                        label.check { input type="checkbox" name="once" value="1"; " next boot only" }
                        button type="submit" name="op" value="policy" { "Set" }
                    }
                    div.row {
                        label for="m-device" { "Root device" }
                        input #m-device type="text" name="device" value=[m.and_then(|m| m.rootdev.as_deref())] placeholder="/dev/sda1";
                        button type="submit" name="op" value="rootdev" { "Set" }
                        button type="submit" name="op" value="rootdev-rm" { "Remove" }
                    }
                    div.row.end {
                        button.danger type="submit" formaction="/machines/remove" { "Remove machine…" }
                    }
                }
            } @else {
                p.muted { "Not in the inventory: it was removed. It returns (in group unknown) when it asks for DHCP again." }
            }
        }
    };
    let sub = html! {
        p.muted #m-sub data-live {
            span.mono { (mac) }
            @if let Some(m) = m {
                " · group "
                a href={ "/machines?group=" (m.group) } { (m.group) }
                " · boots " span.policy { (m.effective_policy) }
            } @else if !l.exists {
                " · not in the inventory (removed)"
            }
        }
    };
    let facts = html! {
        div #m-facts data-live {
            @if let Some(m) = m { (facts(m)) }
        }
    };
    let rows = timeline::rows(&l.history, &l.boots, ask);
    let timeline = timeline::render(&rows, ask, &here, at, false);
    let strip = timeline::strip(&l.boots, at.unwrap_or_else(Timestamp::now));
    let files = html! {
        div #files data-live {
            @if let Ok(sh) = &l.show {
                @for (i, f) in sh.files.iter().enumerate() {
                    details.file open[i == 0] {
                        summary.mono { (f.path.display()) }
                        pre.code { (f.content) }
                    }
                }
            }
        }
    };
    let power = super::power::section(&l.power, ctx, mac);
    Parts {
        sub,
        strip,
        facts,
        change,
        power,
        timeline,
        files,
    }
}

/// `GET /machine/{mac}`, optionally `?at=TIME`: the state then.
pub async fn machine(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Path(mac): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Ask::parse(raw.as_deref());
    let (mac, at) = match machine_query(&mac, &q) {
        Ok(x) => x,
        Err((status, why)) => return super::auth::refuse(status, &why),
    };
    let l = match load(&web, &ctx, mac, at).await {
        Ok(l) => l,
        Err((status, why)) => return super::auth::refuse(status, &why),
    };
    let here = format!("/machine/{mac}");
    let title = l
        .show
        .as_ref()
        .ok()
        .and_then(|s| s.machine.name.clone())
        .unwrap_or_else(|| mac.to_string());
    // The live parts are fetched as this page asked for them (its time, kinds and page).
    let live_src = format!("{here}/live{}", q.query(q.page));
    let p = parts(&l, &ctx, mac, at, &q);
    let body = html! {
        div #machine data-src=(live_src) {
            div.titlebar {
                h1 { (title) }
                (p.sub)
                span.live #live aria-live="polite" title="this page follows new events without a reload" { "live" }
            }
            @if let Some(t) = at {
                div.flash.asof role="status" {
                    "The state as of " strong { (when(t)) } ". "
                    a href=(here) { "Back to now" }
                }
            }
            @if let Err(f) = &l.show {
                div.flash.err role="alert" { pre { (f.message()) } }
            }
            div.cols {
                section.card aria-labelledby="facts" {
                    h2 #facts { "Machine" }
                    (p.facts)
                    form.asof method="get" action=(here) {
                        label for="at" { "State at" }
                        input #at type="text" name="at" value=(q.at) placeholder="2026-11-20 02:00, 2h ago";
                        button type="submit" { "Show" }
                    }
                }
                @if at.is_none() {
                    div.colstack {
                        section.card aria-labelledby="change" {
                            h2 #change { "Change" }
                            (p.change)
                        }
                        @if l.exists {
                            section.card #power aria-labelledby="power-h" {
                                h2 #power-h { "Power" }
                                (p.power)
                            }
                        }
                    }
                }
            }
            (p.strip)
            section aria-labelledby="timeline-h" {
                h2 #timeline-h { "Timeline" }
                form.kinds #kinds method="get" action=(here) {
                    @if !q.at.is_empty() { input type="hidden" name="at" value=(q.at); }
                    span.muted { "Show" }
                    @for (k, label) in timeline::KINDS {
                        label.check.kind {
                            input type="checkbox" name="kind" value=(k) checked[q.shows(k)];
                            " " span class={ "chip " (k) } { (label) }
                        }
                    }
                    button type="submit" { "Filter" }
                    @if !q.kinds.is_empty() { a href=(format!("{here}{}", Ask { kinds: Vec::new(), page: 0, ..q.clone() }.query(0))) { "all" } }
                }
                p.legend.muted {
                    "Newest first; a boot opens to its DHCP and TFTP lines; “as of” shows the state right after an event."
                }
                (p.timeline)
            }
            section aria-labelledby="files-h" {
                h2 #files-h { "Generated boot entry" }
                (p.files)
            }
        }
    };
    page::layout(&web, &ctx, &title, Nav::Machines, body).into_response()
}

/// `GET /machine/{mac}/live`, optionally `?at=TIME`: the parts of the machine's page that
/// follow commits, for its script to put in place (it never takes the page's message).
pub async fn machine_live(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Path(mac): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Ask::parse(raw.as_deref());
    let (mac, at) = match machine_query(&mac, &q) {
        Ok(x) => x,
        Err((status, why)) => return super::auth::refuse(status, &why),
    };
    let l = match load(&web, &ctx, mac, at).await {
        Ok(l) => l,
        Err((status, why)) => return super::auth::refuse(status, &why),
    };
    let p = parts(&l, &ctx, mac, at, &q);
    let all =
        html! { div { (p.sub) (p.strip) (p.facts) (p.change) (p.power) (p.timeline) (p.files) } };
    Html(all.into_string()).into_response()
}

fn facts(m: &MachineView) -> Markup {
    let dash = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    let origin = match m.policy_origin {
        Origin::Machine => "its own".to_string(),
        Origin::MachineOnce => "its own, next boot only".to_string(),
        Origin::Group => format!("from group {}", m.group),
    };
    html! {
        dl.facts {
            dt { "MAC" } dd.mono { (m.mac) }
            dt { "Name" } dd { (dash(m.name.clone())) }
            dt { "Group" } dd { (m.group) }
            dt { "Policy" } dd { span.policy { (m.effective_policy) } " (" (origin) ")" }
            dt { "Fixed IP" } dd.mono { (dash(m.ip.map(|a| a.to_string()))) }
            dt { "Root device" } dd.mono { (dash(m.rootdev.clone())) }
            dt { "Registered" } dd { @if m.registered { "yes" } @else { "no (seen in a log)" } }
            dt { "First seen" } dd { (when(m.first_seen)) }
            dt { "Last seen" } dd { (dash(m.last_seen.map(when))) }
            dt { "Last IP" } dd.mono { (dash(m.last_ip.map(|a| a.to_string()))) }
            @if let Some(h) = &m.dhcp_hostname {
                dt { "Client name" } dd { span.sent title="as its DHCP client sent it (untrusted)" { (h) } }
            }
            @if let Some(a) = m.arch {
                dt { "Architecture" } dd {
                    (a) " (" (match a { 0 => "BIOS", 6 => "x86 UEFI", 7 | 9 => "x86-64 UEFI", 10 | 11 => "ARM UEFI", 16 => "x86-64 UEFI HTTP", _ => "other" }) ")"
                }
            }
            @if let Some(i) = &m.installed {
                dt { "Installed" } dd { span.mono { (i.device) } " at " (when(i.at)) }
            }
            @if let Some(b) = &m.last_boot {
                dt { "Last boot" } dd { span.mono { (b.file) } " (" (b.policy) ")" }
            }
        }
    }
}

/// `GET /groups`.
pub async fn groups(State(web): State<Arc<Web>>, Extension(ctx): Extension<Ctx>) -> Html<String> {
    struct G {
        name: String,
        policy: String,
        builtin: bool,
        members: Vec<String>,
        picker: Markup,
    }
    let (list, new_picker, targets) = {
        let published = web.shared.published();
        let st = &published.state;
        let list: Vec<G> = st
            .groups()
            .map(|g| {
                let policy = st.group_policy(&g.name).to_string();
                G {
                    picker: policy_picker(st, &format!("g-{}", g.name), Some(&policy), false),
                    policy,
                    name: g.name.clone(),
                    builtin: g.builtin,
                    members: g
                        .members
                        .iter()
                        .filter_map(|m| st.machine(m))
                        .map(|m| m.name.clone().unwrap_or_else(|| m.mac.to_string()))
                        .collect(),
                }
            })
            .collect();
        let targets: Vec<(String, String)> = st
            .groups()
            .map(|g| (g.name.clone(), st.group_policy(&g.name).to_string()))
            .collect();
        (list, policy_picker(st, "new-policy", None, false), targets)
    };
    let body = html! {
        div.titlebar { h1 { "Groups" } }
        form.bulk method="post" action="/groups/add" {
            (hidden(&ctx, "/groups"))
            fieldset {
                legend { "New group" }
                label for="new-group" { "Name" }
                input #new-group type="text" name="group" required size="14" placeholder="physics";
                (new_picker)
                button.primary type="submit" { "Create" }
            }
        }
        div.tablewrap {
            table.groups {
                thead { tr {
                    th scope="col" { "Group" } th scope="col" { "Members" } th scope="col" { "Policy" } th scope="col" { "" }
                } }
                tbody {
                    @for g in &list {
                        tr.unknown[g.name == UNKNOWN] data-group=(g.name) {
                            td.nowrap {
                                a href={ "/machines?group=" (g.name) } { strong { (g.name) } }
                                @if g.builtin { " " span.badge { "built-in" } }
                            }
                            td {
                                a href={ "/machines?group=" (g.name) } { (g.members.len()) }
                                @if !g.members.is_empty() {
                                    span.muted.members {
                                        " " (g.members.iter().take(6).cloned().collect::<Vec<_>>().join(", "))
                                        @if g.members.len() > 6 { ", …" }
                                    }
                                }
                            }
                            td.nowrap {
                                @if g.name == nmt_projections::LOCALBOOT {
                                    span.policy { (g.policy) } span.muted { " (always)" }
                                } @else {
                                    form.inline method="post" action="/groups/policy" {
                                        (hidden(&ctx, "/groups"))
                                        input type="hidden" name="group" value=(g.name);
                                        (g.picker)
                                        button type="submit" { "Set" }
                                    }
                                }
                            }
                            td.right.nowrap {
                                @if !g.builtin {
                                    form.inline.rm method="post" action="/groups/rm" {
                                        (hidden(&ctx, "/groups"))
                                        input type="hidden" name="group" value=(g.name);
                                        @if !g.members.is_empty() {
                                            @let id = format!("rm-to-{}", g.name);
                                            label for=(id) { "Move members to" }
                                            select id=(id) name="to" required {
                                                option value="" { "choose a group…" }
                                                @for (other, policy) in &targets {
                                                    @if *other != g.name {
                                                        option value=(other) {
                                                            (other) " (" (policy) ")"
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page::layout(&web, &ctx, "Groups", Nav::Groups, body)
}

/// The question `POST /groups/rm` asks before it moves a group's members into a group whose
/// policy erases disks. Nothing changes until its own form is sent.
pub fn group_rm_confirm(
    web: &Arc<Web>,
    ctx: &Ctx,
    group: &str,
    to: &str,
    members: usize,
    policy: &str,
) -> Html<String> {
    let who = if members == 1 {
        "its 1 member".to_string()
    } else {
        format!("its {members} members")
    };
    let body = html! {
        div.titlebar { h1 { "Remove group " (group) "?" } }
        div.card.wide.confirm {
            p #rm-warning {
                "Group " strong { (to) } " has the policy " span.policy { (policy) } ", which erases "
                "disks: " (who) " would " strong { "erase their disks" } " at their next boot."
            }
            form.inline.confirm-row method="post" action="/groups/rm" {
                (hidden(ctx, "/groups"))
                input type="hidden" name="group" value=(group);
                input type="hidden" name="to" value=(to);
                input type="hidden" name="confirmed" value="1";
                button.danger.solid #confirm-group-rm type="submit" {
                    "Move them to " (to) " and remove " (group)
                }
                a.button #cancel-group-rm href="/groups" { "Cancel" }
            }
        }
    };
    page::layout(web, ctx, "Remove group", Nav::Groups, body)
}

/// `GET /profiles`.
pub async fn profiles(State(web): State<Arc<Web>>, Extension(ctx): Extension<Ctx>) -> Html<String> {
    let list: Vec<Profile> = { web.shared.published().state.profiles().cloned().collect() };
    let body = html! {
        div.titlebar {
            h1 { "Profiles" }
            a.button href="/profiles/edit" { "New profile" }
        }
        p.muted { "What install, ltsp, imaging, nfsroot and custom policies boot. A change rewrites the entries of every machine that uses the profile." }
        div.tablewrap {
            table.profiles {
                thead { tr {
                    th scope="col" { "Profile" } th scope="col" { "Kind" } th scope="col" { "Answer file" }
                    th scope="col" { "Kernel" } th scope="col" { "Initrd" } th scope="col" { "Arguments" }
                } }
                tbody {
                    @for p in &list {
                        tr {
                            td { a href={ "/profiles/edit?name=" (p.name) } { strong { (p.name) } } }
                            td { (p.kind.as_str()) }
                            td { (p.answer.map(|a| a.as_str()).unwrap_or("—")) }
                            td.mono { (p.kernel) }
                            td.mono { (p.initrd.join(", ")) }
                            td.mono.args { (p.args) }
                        }
                    }
                }
            }
        }
    };
    page::layout(&web, &ctx, "Profiles", Nav::Profiles, body)
}

/// `GET /images`: the saved images, their versions and restores, and the saves and restores
/// in flight with their progress.
pub async fn images(State(web): State<Arc<Web>>, Extension(ctx): Extension<Ctx>) -> Html<String> {
    let published = web.shared.published();
    let st = &published.state;
    let list = crate::app::images(st, &published.config);
    let flight = web.shared.progress.all(st);
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64);
    let body = html! {
        div.titlebar { h1 { "Images" } }
        p.muted {
            "Disks saved by nmt's imager. Set a machine's policy to "
            code { "save-image:NAME" } " (for its next boot) to save it, and machines to "
            code { "restore-image:NAME" } " or " code { "restore-image:NAME@VERSION" }
            " to restore one: restoring erases their disks."
        }
        @if !flight.is_empty() {
            h2 { "In progress" }
            ul.inflight #inflight {
                @for p in &flight {
                    li {
                        a href={ "/machine/" (p.mac) } { (p.name.clone().unwrap_or_else(|| p.mac.to_string())) }
                        " " (if p.action == "save" { "saving" } else { "restoring" }) " "
                        strong { (p.image) } " "
                        progress max="100" value=(p.percent()) { (p.percent()) "%" }
                        " " (p.percent()) "% (" (mib(p.done)) " of " (mib(p.total)) ")"
                    }
                }
            }
        }
        @if list.is_empty() {
            p #no-images { "No image is saved yet." }
        } @else {
            div.tablewrap {
                table.images #images {
                    thead { tr {
                        th scope="col" { "Image" } th scope="col" { "Saved from" }
                        th scope="col" { "Saved" } th scope="col" { "Partitions" }
                        th scope="col" { "Stored" } th scope="col" { "Restores" }
                    } }
                    tbody {
                        @for i in &list {
                            tr data-image={ (i.image) "@" (i.version) } {
                                td { strong { (i.image) "@" (i.version) } @if i.newest { " " span.chip { "newest" } } }
                                td { a href={ "/machine/" (i.from) } { (i.from_name.clone().unwrap_or_else(|| i.from.to_string())) } }
                                td { time datetime=(i.saved_at) { (crate::app::local_time(i.saved_at)) } }
                                td { (i.partitions) }
                                td { (mib(i.stored_bytes)) }
                                td { (i.restores) }
                            }
                        }
                    }
                }
            }
        }
    };
    page::layout(&web, &ctx, "Images", Nav::Images, body)
}

#[derive(Deserialize)]
pub struct NameQuery {
    #[serde(default)]
    name: String,
}

/// `GET /profiles/edit?name=…`: edit one, or a new one without a name.
pub async fn profile_edit(
    State(web): State<Arc<Web>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<NameQuery>,
) -> Response {
    let existing = { web.shared.published().state.profile(&q.name).cloned() };
    if !q.name.is_empty() && existing.is_none() {
        return super::auth::refuse(
            StatusCode::NOT_FOUND,
            &format!("no profile named {:?}", q.name),
        );
    }
    let p = existing.clone().unwrap_or(Profile {
        name: String::new(),
        kind: ProfileKind::Install,
        kernel: String::new(),
        initrd: Vec::new(),
        args: String::new(),
        answer: None,
        network_console: false,
        preseed: None,
    });
    let back = if existing.is_some() {
        format!("/profiles/edit?name={}", p.name)
    } else {
        "/profiles".to_string()
    };
    let placeholders = nmt_projections::PLACEHOLDERS
        .iter()
        .map(|(k, _)| format!("{{{k}}}"))
        .collect::<Vec<_>>()
        .join(" ");
    let title = if existing.is_some() {
        format!("Profile {}", p.name)
    } else {
        "New profile".to_string()
    };
    let body = html! {
        div.titlebar { h1 { (title) } a href="/profiles" { "All profiles" } }
        form.stack.card.wide method="post" action="/profiles/save" {
            (hidden(&ctx, &back))
            @if existing.is_some() {
                input type="hidden" name="replace" value="1";
                input type="hidden" name="name" value=(p.name);
            } @else {
                label for="p-name" { "Name" }
                input #p-name type="text" name="name" required;
            }
            label for="p-kind" { "Kind" }
            select #p-kind name="kind" {
                @for k in ProfileKind::ALL {
                    option value=(k.as_str()) selected[k == p.kind] { (k.as_str()) }
                }
            }
            label for="p-kernel" { "Kernel" }
            input #p-kernel.mono type="text" name="kernel" value=(p.kernel) required
                placeholder="debian-installer/amd64/linux";
            label for="p-initrd" { "Initrds (comma-separated, in load order)" }
            input #p-initrd.mono type="text" name="initrd" value=(p.initrd.join(", "));
            label for="p-args" { "Kernel arguments" }
            textarea #p-args.mono name="args" rows="3" { (p.args) }
            p.muted.small { "Placeholders: " span.mono { (placeholders) } }
            label for="p-answer" { "Answer file" }
            select #p-answer name="answer" {
                option value="none" selected[p.answer.is_none()] { "none" }
                @for a in [nmt_projections::AnswerKind::Preseed, nmt_projections::AnswerKind::Kickstart, nmt_projections::AnswerKind::Autoinstall] {
                    option value=(a.as_str()) selected[p.answer == Some(a)] { (a.as_str()) }
                }
            }
            label.check { input type="checkbox" name="network_console" value="1" checked[p.network_console]; " network console (SSH into a hung install)" }
            @if let Some(settings) = p.preseed.as_ref().map(|o| o.summary()).filter(|s| !s.is_empty()) {
                p.muted.small { "Preseed settings (kept when you save; change them with " span.mono { "nmt profile add " (p.name) " --replace …" } "):" }
                ul.mono.small { @for s in &settings { li { (s) } } }
            }
            div.row { button.primary type="submit" { "Save" } }
        }
        @if existing.is_some() {
            form.inline method="post" action="/profiles/rm" {
                (hidden(&ctx, "/profiles"))
                input type="hidden" name="name" value=(p.name);
                button.danger type="submit" { "Remove profile " (p.name) }
            }
        }
    };
    page::layout(&web, &ctx, &title, Nav::Profiles, body).into_response()
}
