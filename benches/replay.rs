//! Replay and forensics benchmark, on a generated log of N events (default 10,000,000) for
//! 10,000 machines:
//! - `nmt journal import` throughput (events/s; target ≥ 500,000/s);
//! - `nmt replay logs` of a gzip archive set (MB/s of compressed input, beside
//!   `zcat | wc -l` on the same files; target within 3×);
//! - cold start of `nmtd` on that store (target < 1 s);
//! - `nmt history` of one machine, direct and through nmtd (target < 5 ms);
//! - `nmt show --at` a random time (target < 50 ms);
//! - the store's size on disk per event;
//! - nmtd's resident size on that store.
//!
//! Run: `cargo bench --bench replay` (NMT_BENCH_EVENTS, NMT_BENCH_GZ_MB to change sizes).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use nmt_projections::{Envelope, Event, Mac, Source};
use support::nmt;

mod support;

/// The baseline for `journal import`: a plain redb insert loop writing the journal's lines
/// as they are (seq → bytes), 100,000 a transaction, with no decoding, folding or index.
fn raw_redb(journal: &Path, db: &Path) -> Duration {
    const T: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
    let t = Instant::now();
    let db = redb::Database::create(db).unwrap();
    let lines = BufReader::new(std::fs::File::open(journal).unwrap()).split(b'\n');
    let mut tx = db.begin_write().unwrap();
    let mut table = tx.open_table(T).unwrap();
    for (k, line) in lines.enumerate() {
        let line = line.unwrap();
        table.insert(k as u64 + 1, line.as_slice()).unwrap();
        if k % 100_000 == 99_999 {
            drop(table);
            tx.commit().unwrap();
            tx = db.begin_write().unwrap();
            table = tx.open_table(T).unwrap();
        }
    }
    drop(table);
    tx.commit().unwrap();
    t.elapsed()
}

fn mac(i: u32) -> Mac {
    Mac::new([0x52, 0x54, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8])
}

fn main() {
    let n: u64 = std::env::var("NMT_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let gz_mb: u64 = std::env::var("NMT_BENCH_GZ_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::Builder::new()
        .prefix("nmt-replay-")
        .tempdir()
        .unwrap();
    println!(
        "nmt replay benchmark: {n} events, 10,000 machines; state under {}",
        dir.path().display()
    );

    // 1. A journal: a real store's start, then n DHCP observations over a year.
    let seed = dir.path().join("seed");
    nmt(&seed, &["init"]);
    nmt(&seed, &["group", "add", "lab"]);
    let (_, head) = nmt(&seed, &["journal", "export"]);
    let journal = dir.path().join("journal.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&journal).unwrap());
    let start: Timestamp = "2025-11-21T00:00:00Z".parse().unwrap();
    // The store was created just before the history it holds.
    // Every line but the export's trailer.
    let head: String = head
        .lines()
        .filter(|l| !l.starts_with(r#"{"trailer":"#))
        .map(|l| format!("{l}\n"))
        .collect();
    for line in head.lines() {
        let mut env = Envelope::from_json(line.as_bytes()).unwrap();
        env.recorded_at = start - jiff::SignedDuration::from_hours(1);
        env.observed_at = env.recorded_at;
        w.write_all(&env.to_json()).unwrap();
        w.write_all(b"\n").unwrap();
    }
    let first = head.lines().count() as u64;
    let span_us: i64 = 365 * 24 * 3600 * 1_000_000;
    for k in 0..n {
        let i = (k % 10_000) as u32;
        let at =
            Timestamp::from_microsecond(start.as_microsecond() + (k as i64) * (span_us / n as i64))
                .unwrap();
        let env = Envelope {
            seq: first + 1 + k,
            v: 1,
            recorded_at: at,
            observed_at: at,
            actor: "dnsmasq@boot1".into(),
            source: Some(Source::LogFile {
                identity: 0xaa,
                offset: k * 90,
            }),
            event: Event::DhcpSeen {
                mac: mac(i),
                kind: ["discover", "offer", "request", "ack"][(k % 4) as usize].into(),
                ip: Some(std::net::Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8)),
                hostname: None,
                arch: Some(0),
                vendor_class: None,
                server: "dnsmasq".into(),
                via: Some("br0".into()),
                note: None,
            },
        };
        w.write_all(&env.to_json()).unwrap();
        w.write_all(b"\n").unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let total_events = first + n;

    let state = dir.path().join("state");
    // A journal written here, without an export's trailer: imported with --partial.
    let (import, _) = nmt(
        &state,
        &["journal", "import", "--partial", journal.to_str().unwrap()],
    );
    let db = std::fs::metadata(state.join("nmt.redb")).unwrap().len();
    let raw = raw_redb(&journal, &dir.path().join("raw.redb"));

    // 2. Cold start of nmtd.
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nmtd"))
        .args(["--http", "127.0.0.1:0"])
        .env("NMT_STATE", &state)
        .env("NMTD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for l in lines.by_ref() {
        if l.unwrap().starts_with("nmtd: machine-facing HTTP") {
            break;
        }
    }
    let cold = t.elapsed();
    std::thread::spawn(move || for _ in lines {});
    // 3. History of one machine, through nmtd and direct.
    let m = mac(4242).to_string();
    // The first query after the start reads the machine's blocks from disk (the import and
    // the raw loop before it went through the page cache): reported apart, as a cold query.
    let via_cold = nmt(&state, &["history", &m, "--json"]).0;
    let mut via = Vec::new();
    for _ in 0..5 {
        via.push(nmt(&state, &["history", &m, "--json"]).0);
    }
    via.sort();
    let rss = support::rss_mb(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let mut direct = Vec::new();
    for _ in 0..5 {
        direct.push(nmt(&state, &["history", &m, "--json"]).0);
    }
    direct.sort();
    // 4. show --at random times.
    let mut at = Vec::new();
    for k in 0..5u64 {
        let t = Timestamp::from_microsecond(
            start.as_microsecond() + ((k * 7919 + 13) % 100) as i64 * span_us / 100,
        )
        .unwrap();
        at.push(nmt(&state, &["show", &m, "--at", &t.to_string()]).0);
    }
    at.sort();

    // 5. replay logs of a gzip archive set, beside zcat | wc -l.
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut files = Vec::new();
    let mut written = 0u64;
    let mut k = 0u64;
    let mut part = 0;
    while written < gz_mb * 1_000_000 {
        part += 1;
        let plain = logs.join(format!("dnsmasq.log.{part}"));
        let mut w = std::io::BufWriter::new(std::fs::File::create(&plain).unwrap());
        for _ in 0..500_000 {
            let i = (k % 10_000) as u32;
            let m = mac(i);
            let day = 1 + (k / 2_000_000) % 28;
            // Each file its own pid: files are recognised by their content, and two files
            // that began alike would be taken for copies of one another.
            writeln!(
                w,
                "Oct {day:2} 02:05:{:02} boot1 dnsmasq-dhcp[{}]: DHCPACK(br0) 10.2.{}.{} {m} pc{i}",
                k % 60,
                800 + part,
                (i >> 8) & 255,
                i & 255
            )
            .unwrap();
            k += 1;
        }
        w.flush().unwrap();
        drop(w);
        assert!(Command::new("gzip").arg(&plain).status().unwrap().success());
        let gz = logs.join(format!("dnsmasq.log.{part}.gz"));
        written += std::fs::metadata(&gz).unwrap().len();
        files.push(gz);
    }
    let zcat = Instant::now();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zcat {} | wc -l > /dev/null",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let zcat = zcat.elapsed();
    let mut args: Vec<String> = vec![
        "replay".into(),
        "logs".into(),
        "--year".into(),
        "2026".into(),
    ];
    args.extend(files.iter().rev().map(|f| f.display().to_string()));
    let rstate = dir.path().join("replayed");
    nmt(&rstate, &["init"]);
    // Raw replay: the archive discovers 10,000 machines in its first minutes, which the
    // default limit on new machines per minute would spread out.
    std::fs::write(
        rstate.join("nmt.toml"),
        "[daemon]\nnew_machines_per_minute = 0\n",
    )
    .unwrap();
    nmt(&rstate, &["group", "add", "lab"]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (replay, out) = nmt(&rstate, &a);
    let mb = written as f64 / 1e6;
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);

    println!();
    println!("| measurement | figure | target |");
    println!("|---|---|---|");
    println!(
        "| `journal import` of {total_events} events | {:.1} s, {:.0} events/s; a raw redb insert loop of the same lines {:.1} s: {:.1}× | ≥ 500,000/s |",
        import.as_secs_f64(),
        total_events as f64 / import.as_secs_f64(),
        raw.as_secs_f64(),
        import.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "| store size | {:.0} MB, {:.0} bytes/event | |",
        db as f64 / 1e6,
        db as f64 / total_events as f64
    );
    println!(
        "| cold start of nmtd on it (to listening) | {} | < 1 s |",
        ms(cold)
    );
    println!(
        "| `nmt history` of one machine ({} events), through nmtd | median {} (the first, cold, {}) | < 5 ms |",
        n / 10_000,
        ms(via[2]),
        ms(via_cold)
    );
    println!("| nmtd resident size on it (after the history queries) | {rss:.0} MB | < 200 MB |");
    println!(
        "| `nmt history` of one machine, store opened directly | median {} | |",
        ms(direct[2])
    );
    println!(
        "| `nmt show --at` a random time | median {} | < 50 ms |",
        ms(at[2])
    );
    println!(
        "| `replay logs` of {mb:.0} MB of gzip ({k} lines) | {:.1} s, {:.1} MB/s; `zcat | wc -l` {:.1} s: {:.1}× | within 3× |",
        replay.as_secs_f64(),
        mb / replay.as_secs_f64(),
        zcat.as_secs_f64(),
        replay.as_secs_f64() / zcat.as_secs_f64()
    );
    println!("\nreplay said: {}", out.trim());
    // NMT_BENCH_KEEP=1 keeps the journal and the stores, to look into them after.
    if std::env::var_os("NMT_BENCH_KEEP").is_some() {
        println!("kept in {}", dir.keep().display());
    }
}
