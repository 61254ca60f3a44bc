//! Ingest benchmark: the real `nmtd` following a generated 1,000,000-line mixed ISC dhcpd /
//! dnsmasq log (10,000 machines), durably: parse, append, index, checkpoint.
//!
//! Prints lines/s beside `cat FILE > /dev/null` and `grep -c DHCP FILE` on the same file,
//! and the p50/p99 delay from a line being written to its machine being visible through the
//! control socket. Then, on the store that ingest made (about 950,000 events for a million
//! lines, 10,000 machines), the reads an admin waits for: `nmt boots` and `nmt history` of
//! one machine through nmtd and with the store opened directly, the web UI's machine page
//! and its machines page (first page, a sorted page, a live update), admin commands through
//! nmtd (one machine's policy; the 10,000-member group switched to install and back, beside
//! a plain program writing the same files), and nmtd's resident size.
//! Run: `cargo bench --bench ingest` (NMT_BENCH_LINES to change the size).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nmt::app::Action;

mod support;

fn mac(i: u32) -> String {
    format!(
        "52:54:00:{:02x}:{:02x}:{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

/// One boot's worth of lines for machine `i`, alternating servers.
fn boot(i: u32, out: &mut String) {
    let m = mac(i);
    let ip = format!("10.{}.{}.{}", 1 + (i >> 16), (i >> 8) & 0xff, i & 0xff);
    let dashed = m.replace(':', "-");
    if i.is_multiple_of(2) {
        out.push_str(&format!("Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: {i} vendor class: PXEClient:Arch:00000:UNDI:002001\n"));
        out.push_str(&format!(
            "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: {i} DHCPDISCOVER(br0) {m}\n"
        ));
        out.push_str(&format!(
            "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: {i} DHCPOFFER(br0) {ip} {m}\n"
        ));
        out.push_str(&format!(
            "Nov 21 02:05:12 boot1 dnsmasq-dhcp[812]: {i} DHCPREQUEST(br0) {ip} {m}\n"
        ));
        out.push_str(&format!(
            "Nov 21 02:05:12 boot1 dnsmasq-dhcp[812]: {i} DHCPACK(br0) {ip} {m} node{i}\n"
        ));
        out.push_str(&format!(
            "Nov 21 02:05:13 boot1 dnsmasq-tftp[812]: sent /srv/tftp/pxelinux.0 to {ip}\n"
        ));
        out.push_str(&format!("Nov 21 02:05:13 boot1 dnsmasq-tftp[812]: sent /srv/tftp/pxelinux.cfg/01-{dashed} to {ip}\n"));
        out.push_str(&format!("Nov 21 02:05:14 boot1 dnsmasq-tftp[812]: sent /srv/tftp/debian-installer/amd64/linux to {ip}\n"));
    } else {
        out.push_str(&format!(
            "Nov 21 02:05:11 gw dhcpd[77]: DHCPDISCOVER from {m} via eth0\n"
        ));
        out.push_str(&format!(
            "Nov 21 02:05:11 gw dhcpd[77]: DHCPOFFER on {ip} to {m} (node{i}) via eth0\n"
        ));
        out.push_str(&format!("Nov 21 02:05:12 gw dhcpd[77]: DHCPREQUEST for {ip} (10.0.0.1) from {m} (node{i}) via eth0\n"));
        out.push_str(&format!(
            "Nov 21 02:05:12 gw dhcpd[77]: DHCPACK on {ip} to {m} (node{i}) via eth0\n"
        ));
        out.push_str(&format!(
            "Nov 21 02:05:13 gw in.tftpd[90]: RRQ from {ip} filename pxelinux.0\n"
        ));
        out.push_str(&format!(
            "Nov 21 02:05:13 gw in.tftpd[90]: RRQ from {ip} filename pxelinux.cfg/01-{dashed}\n"
        ));
        out.push_str(&format!(
            "Nov 21 02:05:14 gw in.tftpd[90]: RRQ from {ip} filename debian-installer/amd64/linux\n"
        ));
        out.push_str("Nov 21 02:05:14 gw dhcpd[77]: not a line nmt knows\n");
    }
}

fn timed(cmd: &str, file: &Path) -> Duration {
    let t = Instant::now();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} '{}' | cat > /dev/null", file.display()))
        .status()
        .unwrap();
    assert!(st.success() || cmd.starts_with("grep"));
    t.elapsed()
}

/// The median time of `n` GETs of a web page, and its size.
fn page(url: &str, n: usize) -> (Duration, usize) {
    let mut size = 0;
    let mut runs: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let body = ureq::get(url)
                .call()
                .unwrap()
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_string()
                .unwrap();
            size = body.len();
            t.elapsed()
        })
        .collect();
    runs.sort();
    (runs[n / 2], size)
}

/// The files under `dir` changed since `since`: their paths (relative) and bytes.
fn files_since(dir: &Path, since: std::time::SystemTime) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            } else if meta.modified().unwrap() >= since {
                let rel = entry.path().strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    out
}

/// The baseline of a policy switch: a plain program writing the same files under `dir` as
/// durably as nmt does for many files: each to a temporary file, one `syncfs`, the renames,
/// then each directory synced.
fn plain_writer(files: &[(PathBuf, Vec<u8>)], dir: &Path) -> Duration {
    let t = Instant::now();
    let mut dirs = std::collections::BTreeSet::new();
    let mut renames = Vec::with_capacity(files.len());
    for (rel, bytes) in files {
        let path = dir.join(rel);
        let parent = path.parent().unwrap().to_path_buf();
        if dirs.insert(parent.clone()) {
            std::fs::create_dir_all(&parent).unwrap();
        }
        let tmp = parent.join(format!(
            ".{}.tmp",
            path.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&tmp, bytes).unwrap();
        renames.push((tmp, path));
    }
    nix::unistd::syncfs(std::fs::File::open(dir).unwrap()).unwrap();
    for (tmp, path) in renames {
        std::fs::rename(tmp, path).unwrap();
    }
    for d in dirs {
        std::fs::File::open(d).unwrap().sync_all().unwrap();
    }
    t.elapsed()
}

fn status(socket: &Path) -> serde_json::Value {
    let reply = nmt::client::via_daemon(socket, &Action::Status)
        .expect("nmtd answers")
        .unwrap()
        .unwrap();
    serde_json::from_str(&nmt::cli::render(&reply, true).1).unwrap()
}

fn main() {
    let lines: u32 = std::env::var("NMT_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::Builder::new()
        .prefix("nmt-ingest-")
        .tempdir()
        .unwrap();
    // NMT_BENCH_KEEP=1 keeps the log and the store, to look into them after.
    let (root, _cleanup) = if std::env::var_os("NMT_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        println!("kept in {}", kept.display());
        (kept, None)
    } else {
        (dir.path().to_path_buf(), Some(dir))
    };
    let log = root.join("dhcp.log");
    // 10,000 machines, booting over and over, 8 lines a boot.
    let mut text = String::with_capacity(lines as usize * 90);
    let mut i = 0u32;
    let mut n = 0u32;
    while n < lines {
        boot(i % 10_000, &mut text);
        i += 1;
        n += 8;
    }
    std::fs::write(&log, &text).unwrap();
    let mb = text.len() as f64 / 1e6;
    let total_lines = text.lines().count();
    drop(text);
    let cat = timed("cat", &log);
    let grep = timed("grep -c DHCP", &log);

    let state = root.join("state");
    // Raw ingest: 10,000 machines are discovered at once here, which the default limit on
    // new machines per minute (a guard against spoofed floods) would spread out.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("nmt.toml"),
        "[daemon]\nnew_machines_per_minute = 0\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nmtd"))
        .args(["--http", "127.0.0.1:0", "--web", "127.0.0.1:0", "--log"])
        .arg(&log)
        .env("NMT_STATE", &state)
        .env("NMTD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut web = String::new();
    for l in out.by_ref() {
        let l = l.unwrap();
        if let Some(rest) = l.strip_prefix("nmtd: web UI on ") {
            web = rest.split_whitespace().next().unwrap().to_string();
            break;
        }
    }
    std::thread::spawn(move || for _ in out {});
    let socket = state.join("nmtd.sock");
    loop {
        let s = status(&socket);
        if s["sources"][0]["lines"].as_u64() == Some(total_lines as u64)
            && s["sources"][0]["lag_bytes"] == 0
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ingest = started.elapsed();
    let s = status(&socket);

    // Latency: one new machine's line at a time, until the socket API shows it.
    let mut delays = Vec::new();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for k in 0..200u32 {
        let m = mac(0x80_0000 + k);
        let t = Instant::now();
        writeln!(
            f,
            "Nov 21 03:00:00 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {m}"
        )
        .unwrap();
        loop {
            let out = nmt::client::via_daemon(
                &socket,
                &Action::Machines {
                    range: Some(m.clone()),
                    at: None,
                },
            )
            .unwrap()
            .unwrap();
            if out.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        delays.push(t.elapsed());
    }
    delays.sort();
    let p = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];

    // The reads, on the store ingest made: one machine that booted many times.
    let one = mac(4242);
    let boots_via = support::median(&state, &["boots", &one, "--json"], 5);
    let history_via = support::median(&state, &["history", &one, "--json"], 5);
    let machine_page = page(&format!("{web}/machine/{one}"), 5);
    let machines_page = page(&format!("{web}/machines"), 5);
    let last_page = page(&format!("{web}/machines?sort=seen&page=40"), 5);
    // A live update of the first page when nothing on it changed: every row a placeholder.
    let rows = ureq::get(&format!("{web}/machines/rows"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let have: Vec<&str> = rows
        .split("data-h=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    let live_update = page(&format!("{web}/machines/rows?have={}", have.join(".")), 5);
    let rss = support::rss_mb(child.id());

    // Admin commands through nmtd, with 10,000 machines: one machine's policy, switched back
    // and forth, then the whole `unknown` group (all 10,000) from localboot to install (each
    // member's entry carries its own report token) and back.
    let mut singles: Vec<Duration> = (0..10)
        .map(|k| {
            let policy = if k % 2 == 0 { "ltsp" } else { "inherit" };
            support::nmt(&state, &["policy", &one, policy]).0
        })
        .collect();
    singles.sort();
    let admin_one = singles[singles.len() / 2];
    let switched_at = std::time::SystemTime::now();
    let (to_install, _) = support::nmt(&state, &["policy", "@unknown", "install", "--yes"]);
    let written = files_since(&state.join("tftp"), switched_at);
    let (to_local, _) = support::nmt(&state, &["policy", "@unknown", "localboot"]);
    // Its files replaced existing ones, as nmt's did: the first run makes them.
    plain_writer(&written, &root.join("plain"));
    let plain = plain_writer(&written, &root.join("plain"));
    // Stopped as systemd stops it: nmtd compacts the store as it closes it.
    let stopping = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    let stopped = stopping.elapsed();
    let boots_direct = support::median(&state, &["boots", &one, "--json"], 5);
    let history_direct = support::median(&state, &["history", &one, "--json"], 5);
    let db = std::fs::metadata(state.join("nmt.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    let events = s["events"].as_u64().unwrap_or(0);

    println!("nmtd ingest benchmark: {total_lines} lines ({mb:.1} MB), 10,000 machines");
    println!();
    println!("| measurement | figure |");
    println!("|---|---|");
    println!(
        "| `cat` to /dev/null | {:.3} s ({:.0} MB/s) |",
        cat.as_secs_f64(),
        mb / cat.as_secs_f64()
    );
    println!(
        "| `grep -c DHCP` | {:.3} s ({:.0} lines/s) |",
        grep.as_secs_f64(),
        total_lines as f64 / grep.as_secs_f64()
    );
    println!(
        "| nmtd durable ingest (parse, append, index, checkpoint, render) | {:.2} s: {:.0} lines/s, {:.1} MB/s (target ≥ 300,000 lines/s) |",
        ingest.as_secs_f64(),
        total_lines as f64 / ingest.as_secs_f64(),
        mb / ingest.as_secs_f64()
    );
    println!(
        "| events appended | {events} ({} rejects, {} detail lines) |",
        s["sources"][0]["rejects"], s["sources"][0]["ignored"]
    );
    println!(
        "| store size | {:.1} MB ({:.0} bytes/event) |",
        db as f64 / 1e6,
        db as f64 / events.max(1) as f64
    );
    println!(
        "| line written → machine visible through the socket | p50 {:.1} ms, p99 {:.1} ms (target p99 < 100 ms) |",
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3
    );
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!(
        "| `nmt boots` of one machine, through nmtd | median {} (target < 20 ms) |",
        ms(boots_via)
    );
    println!(
        "| `nmt boots` of one machine, store opened directly | median {} |",
        ms(boots_direct)
    );
    println!(
        "| `nmt history` of one machine, through nmtd | median {} (target < 5 ms) |",
        ms(history_via)
    );
    println!(
        "| `nmt history` of one machine, store opened directly | median {} (target < 5 ms) |",
        ms(history_direct)
    );
    println!(
        "| web machine page | median {}, {} kB (target < 50 ms) |",
        ms(machine_page.0),
        machine_page.1 / 1000
    );
    println!(
        "| web machines page, 10,000 machines, pages of 250 | first page median {}, {} kB; a page sorted by last seen {}; a live update of an unchanged page {}, {} kB (target < 100 ms) |",
        ms(machines_page.0),
        machines_page.1 / 1000,
        ms(last_page.0),
        ms(live_update.0),
        live_update.1 / 1000
    );
    println!(
        "| one admin command through nmtd (`nmt policy MACHINE …`), 10,000 machines | median {} (target < 10 ms) |",
        ms(admin_one)
    );
    let bytes: usize = written.iter().map(|(_, b)| b.len()).sum();
    println!(
        "| policy switch of the 10,000-member group to install | {} ({} files, {:.1} MB); a plain program writing the same files (temp files, syncfs, renames) {}: {:.2}× (target ≤ 1.2×) |",
        ms(to_install),
        written.len(),
        bytes as f64 / 1e6,
        ms(plain),
        to_install.as_secs_f64() / plain.as_secs_f64()
    );
    println!(
        "| policy switch of the group back to localboot | {} |",
        ms(to_local)
    );
    println!("| nmtd resident size after ingest | {rss:.0} MB (target < 200 MB) |");
    println!(
        "| nmtd stop (SIGTERM to exit, compacting the store) | {} |",
        ms(stopped)
    );
}
