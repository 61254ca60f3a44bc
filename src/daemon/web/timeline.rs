//! A machine's timeline on its page: one row per boot (what it booted, from which entry, by
//! whose policy) that opens to the DHCP and TFTP lines it was made of, the other events one
//! row each; filtered by kind, newest first, a page at a time; and a strip of its boots over
//! the last four weeks, one cell per day, coloured by what it booted.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::civil::Date;
use maud::{Markup, html};
use nmt_projections::{BootRecord, Envelope, Event, Policy, describe};

use super::page::when;

/// Rows on a page.
pub const PAGE: usize = 50;

/// Days in the boot strip.
pub const DAYS: i64 = 28;

/// The kinds of entry, as the filter and the chips name them.
pub const KINDS: [(&str, &str); 6] = [
    ("boot", "Boots"),
    ("dhcp", "DHCP"),
    ("file", "Files (TFTP)"),
    ("install", "Install reports"),
    ("log", "Installer logs"),
    ("admin", "Changes"),
];

/// How far before a boot its DHCP and TFTP lines may be, and TFTP lines after it.
const BOOT_SPAN_SECS: i64 = 600;

/// An event's kind (its chip's class) and label.
pub fn kind_of(ev: &Event) -> (&'static str, &'static str) {
    match ev {
        Event::DhcpSeen { .. } => ("dhcp", "DHCP"),
        Event::BootEntryUsed { .. } => ("boot", "Boot"),
        Event::FileServed { .. } => ("file", "File"),
        Event::InstallReported { .. } => ("install", "Install report"),
        Event::InstallerLogged { .. } => ("log", "Installer log"),
        _ => ("admin", "Change"),
    }
}

/// What a machine's page was asked for: a past state (`at`), which kinds of entry (`kind`,
/// repeated; none means all), and which page (`page`, from 0).
#[derive(Clone, Debug, Default)]
pub struct Ask {
    pub at: String,
    pub kinds: Vec<String>,
    pub page: usize,
}

impl Ask {
    /// Read a query string.
    pub fn parse(query: Option<&str>) -> Ask {
        let mut ask = Ask::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "at" => ask.at = v.into_owned(),
                "kind" if KINDS.iter().any(|(k, _)| *k == v) => ask.kinds.push(v.into_owned()),
                "page" => ask.page = v.parse().unwrap_or(0),
                _ => {}
            }
        }
        ask
    }

    /// Whether entries of this kind are shown.
    pub fn shows(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind)
    }

    /// The query string of this ask on another page (`?…`, or empty).
    pub fn query(&self, page: usize) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !self.at.is_empty() {
            q.append_pair("at", &self.at);
        }
        for k in &self.kinds {
            q.append_pair("kind", k);
        }
        if page > 0 {
            q.append_pair("page", &page.to_string());
        }
        let s = q.finish();
        if s.is_empty() { s } else { format!("?{s}") }
    }
}

/// A row of the timeline.
pub enum Row<'a> {
    /// A boot and the lines it was made of (oldest first, the entry's fetch among them).
    Boot {
        boot: &'a BootRecord,
        entry: &'a Envelope,
        lines: Vec<&'a Envelope>,
    },
    /// Any other event.
    One(&'a Envelope),
}

impl Row<'_> {
    fn seq(&self) -> u64 {
        match self {
            Row::Boot { entry, .. } => entry.seq,
            Row::One(e) => e.seq,
        }
    }
}

fn secs(a: Timestamp, b: Timestamp) -> i64 {
    a.as_second() - b.as_second()
}

/// The rows of a history (oldest first) with its boots, newest first, as `ask` filters them.
/// With boots shown, each boot takes the DHCP and TFTP lines just before its entry's fetch
/// (and the files fetched after it, before the next DHCP exchange); without, every event is
/// a row of its own.
pub fn rows<'a>(history: &'a [Envelope], boots: &'a [BootRecord], ask: &Ask) -> Vec<Row<'a>> {
    let mut out: Vec<Row<'a>> = Vec::new();
    if !ask.shows("boot") {
        out.extend(
            history
                .iter()
                .filter(|e| ask.shows(kind_of(&e.event).0))
                .map(Row::One),
        );
        out.reverse();
        return out;
    }
    let by_seq: HashMap<u64, &BootRecord> = boots.iter().map(|b| (b.seq, b)).collect();
    let mut pending: Vec<&'a Envelope> = Vec::new();
    // The last boot row, while lines after it may still belong to it.
    let mut open: Option<usize> = None;
    for env in history {
        match &env.event {
            Event::BootEntryUsed { .. } => {
                if let Some(b) = by_seq.get(&env.seq) {
                    let (mine, stray): (Vec<_>, Vec<_>) = pending
                        .drain(..)
                        .partition(|e| secs(b.at, e.observed_at) <= BOOT_SPAN_SECS);
                    out.extend(stray.into_iter().map(Row::One));
                    let mut lines = mine;
                    lines.push(env);
                    out.push(Row::Boot {
                        boot: b,
                        entry: env,
                        lines,
                    });
                    open = Some(out.len() - 1);
                } else if let Some(Row::Boot { lines, .. }) = open.and_then(|i| out.get_mut(i)) {
                    // The same entry fetched again within the same boot.
                    lines.push(env);
                } else {
                    out.push(Row::One(env));
                }
            }
            Event::DhcpSeen { .. } => {
                open = None;
                pending.push(env);
            }
            Event::FileServed { .. } => match open.and_then(|i| out.get_mut(i)) {
                Some(Row::Boot { boot, lines, .. })
                    if secs(env.observed_at, boot.at) <= BOOT_SPAN_SECS =>
                {
                    lines.push(env)
                }
                _ => pending.push(env),
            },
            _ => out.push(Row::One(env)),
        }
    }
    out.extend(pending.into_iter().map(Row::One));
    out.retain(|r| match r {
        Row::Boot { .. } => true,
        Row::One(e) => ask.shows(kind_of(&e.event).0),
    });
    out.sort_by_key(|r| std::cmp::Reverse(r.seq()));
    out
}

/// The timeline's rows on the page asked for, and the links to the others.
pub fn render(
    rows: &[Row<'_>],
    ask: &Ask,
    here: &str,
    at: Option<Timestamp>,
    open_boots: bool,
) -> Markup {
    let total = rows.len();
    let pages = total.div_ceil(PAGE).max(1);
    let page = ask.page.min(pages - 1);
    let shown = &rows[(page * PAGE).min(total)..((page + 1) * PAGE).min(total)];
    let after = |t: Timestamp| at.is_some_and(|a| t > a);
    let line = |e: &Envelope| {
        let (class, label) = kind_of(&e.event);
        html! {
            li class={ (class) @if after(e.observed_at) { " after" } } {
                time datetime=(e.observed_at) { (when(e.observed_at)) }
                span class={ "chip " (class) } { (label) }
                span.what { (describe(&e.event)) }
                span.actor title="who or what recorded it" { (e.actor) }
            }
        }
    };
    html! {
        div #timeline data-live {
            @if total == 0 {
                p.muted.empty-timeline { "Nothing of these kinds happened to this machine." }
            }
            ol.timeline {
                @for r in shown {
                    @match r {
                        Row::Boot { boot, entry, lines } => {
                            li class={ "boot" @if after(entry.observed_at) { " after" } } data-seq=(entry.seq) {
                                time datetime=(boot.at) { (when(boot.at)) }
                                span.chip.boot { "Boot" }
                                details.boot data-seq=(entry.seq) open[open_boots] {
                                    summary {
                                        span class={ "kind k-" (boot_kind(&boot.policy)) } { (boot_kind(&boot.policy)) }
                                        " booted " strong.booted { (boot.booted) }
                                        @if let Some(what) = &boot.imaged { ": " strong.imaged { (what) } }
                                        " from " span.mono.entry { (boot.file) }
                                        ", policy " span.policy { (boot.policy) }
                                        @if let Some(by) = &boot.set_by { " set by " span.setby { (by) } }
                                        @if let Some(ip) = boot.ip { " · " span.mono { (ip) } }
                                        span.muted.count { " · " (lines.len()) (if lines.len() == 1 { " line" } else { " lines" }) }
                                    }
                                    ol.lines {
                                        @for e in lines { (line(e)) }
                                    }
                                }
                                span.actor title="who or what recorded it" { (entry.actor) }
                                a.asof href={ (here) "?at=" (entry.observed_at) } { "as of" }
                            }
                        }
                        Row::One(e) => {
                            @let (class, label) = kind_of(&e.event);
                            li class={ (class) @if after(e.observed_at) { " after" } } data-seq=(e.seq) {
                                time datetime=(e.observed_at) { (when(e.observed_at)) }
                                span class={ "chip " (class) } { (label) }
                                span.what { (describe(&e.event)) }
                                span.actor title="who or what recorded it" {
                                    @if class == "admin" { "by " strong { (e.actor) } } @else { (e.actor) }
                                }
                                a.asof href={ (here) "?at=" (e.observed_at) } { "as of" }
                            }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager aria-label="Timeline pages" {
                    @if page > 0 {
                        a #newer rel="prev" href={ (here) (ask.query(page - 1)) } { "← Newer" }
                    }
                    span.muted #page-of {
                        "entries " (page * PAGE + 1) "–" (page * PAGE + shown.len()) " of " (total)
                    }
                    @if page + 1 < pages {
                        a #older rel="next" href={ (here) (ask.query(page + 1)) } { "Older →" }
                    }
                }
            }
        }
    }
}

/// What a boot booted, as the strip colours it.
pub fn boot_kind(p: &Policy) -> &'static str {
    match p {
        Policy::SaveImage { .. } | Policy::RestoreImage { .. } => "image",
        p => p.kind(),
    }
}

/// The strip's kinds, in the legend's order.
pub const STRIP_KINDS: [&str; 6] = ["localboot", "install", "image", "ltsp", "nfsroot", "custom"];

fn day_of(t: Timestamp) -> Date {
    t.to_zoned(jiff::tz::TimeZone::system()).date()
}

/// The machine's boots on each of the `DAYS` days up to the day of `end` (in nmtd's zone),
/// one cell a day, its colours by what it booted, with a tooltip and a legend.
pub fn strip(boots: &[BootRecord], end: Timestamp) -> Markup {
    const CELL: i64 = 16;
    const GAP: i64 = 3;
    const HEIGHT: i64 = 28;
    let last = day_of(end);
    let first = last
        .checked_sub(jiff::Span::new().days(DAYS - 1))
        .unwrap_or(last);
    let mut days: Vec<(Date, Vec<&BootRecord>)> = (0..DAYS)
        .map(|i| {
            let d = first.checked_add(jiff::Span::new().days(i)).unwrap_or(last);
            (d, Vec::new())
        })
        .collect();
    for b in boots {
        let d = day_of(b.at);
        if d >= first && d <= last {
            let i = usize::try_from((d - first).get_days()).unwrap_or(0);
            if let Some((_, v)) = days.get_mut(i) {
                v.push(b);
            }
        }
    }
    let n: usize = days.iter().map(|(_, v)| v.len()).sum();
    let width = DAYS * (CELL + GAP) - GAP;
    html! {
        section.card.strip #boot-strip data-live aria-labelledby="strip-h" {
            h2 #strip-h { "Boots, last " (DAYS) " days" }
            svg #boot-cells role="img" width=(width) height=(HEIGHT) viewBox={ "0 0 " (width) " " (HEIGHT) }
                aria-label={ (n) (if n == 1 { " boot" } else { " boots" }) " in the last " (DAYS) " days" } {
                @for (i, (date, list)) in days.iter().enumerate() {
                    @let x = i64::try_from(i).unwrap_or(0) * (CELL + GAP);
                    @let counts = kind_counts(list);
                    g.day data-date=(date) data-boots=(list.len()) data-kinds=(counts.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(" ")) {
                        title { (day_title(*date, &counts, list.len())) }
                        rect.bg x=(x) y="0" width=(CELL) height=(HEIGHT) rx="2" {}
                        @for (k, y, h) in bars(&counts, HEIGHT) {
                            rect class={ "k-" (k) } x=(x) y=(y) width=(CELL) height=(h) {}
                        }
                    }
                }
            }
            div.strip-axis { span { (first.strftime("%b %-d")) } span { "today" } }
            ul.strip-legend {
                @for k in STRIP_KINDS {
                    li { span class={ "sw k-" (k) } {} (k) }
                }
                li { span.sw.none {} "no boot" }
            }
        }
    }
}

/// A day's column: each kind's share of its height, stacked from the bottom; the last reaches
/// the top.
fn bars(counts: &[(&'static str, usize)], height: i64) -> Vec<(&'static str, i64, i64)> {
    let total: usize = counts.iter().map(|(_, c)| c).sum();
    let total = i64::try_from(total).unwrap_or(1).max(1);
    let mut y = height;
    let mut out = Vec::new();
    for (i, (k, c)) in counts.iter().enumerate() {
        let h = if i + 1 == counts.len() {
            y
        } else {
            height * i64::try_from(*c).unwrap_or(0) / total
        };
        y -= h;
        out.push((*k, y, h));
    }
    out
}

fn kind_counts(list: &[&BootRecord]) -> Vec<(&'static str, usize)> {
    STRIP_KINDS
        .iter()
        .map(|k| {
            (
                *k,
                list.iter().filter(|b| boot_kind(&b.policy) == *k).count(),
            )
        })
        .filter(|(_, c)| *c > 0)
        .collect()
}

fn day_title(date: Date, counts: &[(&str, usize)], n: usize) -> String {
    let day = date.strftime("%a %Y-%m-%d");
    match n {
        0 => format!("{day}: no boot"),
        _ => format!(
            "{day}: {n} {}: {}",
            if n == 1 { "boot" } else { "boots" },
            counts
                .iter()
                .map(|(k, c)| format!("{k} ×{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
