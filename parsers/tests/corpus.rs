//! Lines real servers printed, in every envelope class nmt reads
//! (`fixtures/logs/corpus.tsv`), and look-alikes that must make no machine
//! (`fixtures/logs/lookalikes.tsv`). Where each line came from is in
//! `fixtures/logs/README.md`.

use nmt_parsers::{Record, Stamp, TftpKind, parse_line};

fn fixture(name: &str) -> String {
    let path = format!("{}/../fixtures/logs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rows(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A stamp as the corpus writes it: `-` for none, `--MM-DDTHH:MM:SS` when
/// the line gives no year, a fraction as nine digits, then the zone (`Z`,
/// `+08:00`, nothing for local time).
fn stamp(s: Option<Stamp>) -> String {
    let frac = |n: u32| {
        if n == 0 {
            String::new()
        } else {
            format!(".{n:09}")
        }
    };
    match s {
        None => "-".into(),
        Some(Stamp::NoYear {
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        }) => format!(
            "--{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{}",
            frac(nanos)
        ),
        Some(Stamp::Full {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset_seconds,
        }) => {
            let zone = match offset_seconds {
                None => String::new(),
                Some(0) => "Z".into(),
                Some(o) => {
                    let sign = if o < 0 { '-' } else { '+' };
                    format!("{sign}{:02}:{:02}", o.abs() / 3600, o.abs() % 3600 / 60)
                }
            };
            format!(
                "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{}{zone}",
                frac(nanos)
            )
        }
        Some(Stamp::UnixMicros(us)) => format!("@{us}"),
    }
}

/// What nmt makes of a record, as `(kind, who)`: a DHCP line with a MAC, or
/// a TFTP line naming a file it served, missed or was asked for. `None`
/// for a record that makes no observation (`replay::records` skips it).
fn observed(r: &Record<'_>) -> Option<(String, String)> {
    match r {
        Record::Dhcp(d) => {
            let kind = format!("{:?}", d.kind).to_lowercase();
            let kind = match kind.as_str() {
                "nofreeleases" => "no-free-leases".to_string(),
                _ => kind,
            };
            d.mac.map(|m| (kind, mac(m)))
        }
        Record::Tftp(t) => {
            let kind = match t.kind {
                TftpKind::Request => "tftp-request",
                TftpKind::Sent => "tftp-sent",
                TftpKind::NotFound => "tftp-notfound",
                _ => return None,
            };
            t.file
                .map(|f| (kind.to_string(), String::from_utf8_lossy(f).into_owned()))
        }
        Record::ClientInfo(_) => None,
    }
}

#[test]
fn every_corpus_line_gives_its_mac_time_and_kind() {
    let text = fixture("corpus.tsv");
    let mut n = 0;
    let mut sources = std::collections::BTreeSet::new();
    for row in rows(&text) {
        let f: Vec<&str> = row.splitn(5, '\t').collect();
        let [kind, who, time, source, line] = f[..] else {
            panic!("a corpus row has five columns: {row:?}");
        };
        let parsed =
            parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{source}: {line:?}: {e}"));
        assert_eq!(
            observed(&parsed.record),
            Some((kind.to_string(), who.to_string())),
            "{source}: {line:?}"
        );
        assert_eq!(stamp(parsed.stamp), time, "{source}: {line:?}");
        sources.insert(source.split('+').next().unwrap_or(source));
        n += 1;
    }
    assert!(n >= 45, "the corpus holds {n} lines");
    assert!(sources.len() >= 15, "{sources:?}");
    println!("corpus: {n} lines from {} sources", sources.len());
}

#[test]
fn no_look_alike_makes_a_machine() {
    let text = fixture("lookalikes.tsv");
    let mut n = 0;
    for row in rows(&text) {
        let (source, line) = row.split_once('\t').expect("source and line");
        if let Ok(parsed) = parse_line(line.as_bytes()) {
            assert_eq!(
                observed(&parsed.record),
                None,
                "{source}: {line:?} made {parsed:?}"
            );
        }
        n += 1;
    }
    assert!(n >= 30, "the look-alike corpus holds {n} lines");
}
