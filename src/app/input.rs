//! Input the CLI and the web UI both read into actions: a machine to add, a node table.

use std::net::Ipv4Addr;

use anyhow::{Context, Result, anyhow, bail};
use nmt_projections::ImportRow;

use super::Action;

fn parse_ip(s: &str) -> Result<Ipv4Addr> {
    s.parse()
        .map_err(|_| anyhow!("{s:?} is not an IPv4 address (want e.g. 10.0.0.42)"))
}

/// `nmt machine add MAC [--name N] [--group G] [--ip IP]` as an action; the web UI's form
/// builds it here too, so a bad MAC or address is refused in the same words.
pub fn machine_add(
    mac: &str,
    name: Option<String>,
    group: Option<String>,
    ip: Option<&str>,
) -> Result<Action> {
    Ok(Action::MachineAdd {
        mac: mac.parse()?,
        name,
        group,
        ip: ip.map(parse_ip).transpose()?,
    })
}

fn memchr_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count()
}

/// Parse a node table's text (`source` names it in errors): the rows of `nmt machine
/// import`, with the line each came from. The web UI's import parses uploads here too.
pub fn parse_node_table(text: &str, source: &str) -> Result<Vec<ImportRow>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut cols = [0usize, 1, 2, 3];
    let mut header_seen = false;
    let mut rows = Vec::new();
    // Line numbers from byte offsets: the CSV reader does not count comment lines. After a
    // CRLF a record's offset is that of its `\n`, so line ends are stepped over first.
    // Records come in order, so the count goes on from the previous one (linear time).
    let bytes = text.as_bytes();
    let (mut counted_to, mut newlines) = (0usize, 0usize);
    let mut line_of = |byte: u64| {
        let mut at = (byte as usize).min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        if at > counted_to {
            newlines += memchr_count(&bytes[counted_to..at]);
            counted_to = at;
        }
        newlines + 1
    };
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("while reading {source}"))?;
        let line = rec.position().map(|p| line_of(p.byte())).unwrap_or(i + 1);
        // A quote that never closes swallows the lines after it: refused, not guessed.
        if rec.iter().any(|f| f.contains(['\n', '\r'])) {
            bail!(
                "line {line}: a quoted field runs over the end of its line (a quote that never \
                 closes?); fix the quoting: each row is mac,name,ip,group on one line"
            );
        }
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
        bail!("{source} holds no rows; a node table row is mac,name,ip,group");
    }
    Ok(rows)
}
