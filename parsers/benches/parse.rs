//! Parse-only throughput of `parse_line` on a 1,000,000-line mixed ISC
//! dhcpd / dnsmasq log, against `grep -c DHCP` over the same file.
//!
//! Run: `cargo bench -p nmt-parsers --bench parse` (release profile). The
//! file is generated in the temp directory and removed afterwards. Both
//! sides read a file already in the page cache: the parser's time excludes
//! reading (the file is loaded once), grep's includes its own `read`s and
//! process start. Each side is timed as the best of several rounds, in wall
//! time and in CPU time (the parser's thread from
//! `/proc/thread-self/schedstat`, grep's user + system time from bash's
//! `time`); on a loaded machine the CPU figures are the stable ones.

use std::fmt::Write as _;
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use nmt_parsers::parse_line;

const LINES: usize = 1_000_000;
const ROUNDS: usize = 11;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn generate() -> Vec<u8> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut out = String::with_capacity(LINES * 110);
    let months = ["Nov", "Dec"];
    for i in 0..LINES {
        let r = rng.next();
        let m = (r >> 8) as u32 & 0xffff;
        let mac = format!(
            "52:54:00:{:02x}:{:02x}:{:02x}",
            m >> 8,
            m & 0xff,
            (r >> 24) as u8
        );
        let ip = format!(
            "10.{}.{}.{}",
            (r >> 32) as u8 % 4,
            (r >> 40) as u8,
            (r >> 48) as u8 % 250 + 2
        );
        let xid = (r >> 16) as u32;
        let (sec, min, hour) = (i % 60, (i / 60) % 60, (i / 3600) % 24);
        let stamp = format!(
            "{} {:2} {hour:02}:{min:02}:{sec:02}",
            months[i & 1],
            1 + (i / 86_400) % 28
        );
        let host = format!("pc-{:03}", m % 300);
        let line = match r % 20 {
            0 => format!("{stamp} boot1 dhcpd[812]: DHCPDISCOVER from {mac} via eth0"),
            1 => format!("{stamp} boot1 dhcpd[812]: DHCPDISCOVER from {mac} ({host}) via 10.0.0.1"),
            2 => format!("{stamp} boot1 dhcpd[812]: DHCPOFFER on {ip} to {mac} ({host}) via eth0"),
            3 => format!(
                "{stamp} boot1 dhcpd[812]: DHCPREQUEST for {ip} (10.0.0.1) from {mac} ({host}) via eth0"
            ),
            4 => format!("{stamp} boot1 dhcpd[812]: DHCPACK on {ip} to {mac} ({host}) via eth0"),
            5 => format!(
                "{stamp} boot1 dhcpd[812]: DHCPREQUEST for {ip} from {mac} via eth0: wrong network."
            ),
            6 => format!(
                "{stamp} boot1 dhcpd[812]: DHCPRELEASE of {ip} from {mac} ({host}) via eth0 (found)"
            ),
            7 => format!(
                "{stamp} boot1 dhcpd[812]: DHCPDISCOVER from {mac} via eth0: network 10.0.0.0/22: no free leases"
            ),
            8 => format!(
                "{stamp} boot1 dhcpd[812]: DHCPACK on {ip} to {mac} ({host}) uid 01:{mac} via eth0"
            ),
            9 => format!("{stamp} dnsmasq-dhcp[999]: {xid} DHCPDISCOVER(br0) {mac} "),
            10 => format!("{stamp} dnsmasq-dhcp[999]: {xid} DHCPOFFER(br0) {ip} {mac} "),
            11 => format!("{stamp} dnsmasq-dhcp[999]: {xid} DHCPREQUEST(br0) {ip} {mac} "),
            12 => format!("{stamp} dnsmasq-dhcp[999]: {xid} DHCPACK(br0) {ip} {mac} {host}"),
            13 => format!(
                "{stamp} dnsmasq-dhcp[999]: {xid} vendor class: PXEClient:Arch:00007:UNDI:003016"
            ),
            14 => format!("{stamp} dnsmasq-dhcp[999]: {xid} tags: known, efi64, br0"),
            15 => format!("{stamp} dnsmasq-dhcp[999]: DHCPACK(br0) {ip} {mac} {host}"),
            16 => format!(
                "{stamp} dnsmasq-dhcp[999]: {xid} sent size: 11 option: 67 bootfile-name pxelinux.0"
            ),
            17 => format!(
                "{stamp} dnsmasq-tftp[999]: sent /srv/tftp/pxelinux.cfg/01-{} to {ip}",
                mac.replace(':', "-")
            ),
            18 => format!(
                "{stamp} dnsmasq-tftp[999]: file /srv/tftp/pxelinux.cfg/01-{} not found",
                mac.replace(':', "-")
            ),
            _ => format!(
                "{stamp} dnsmasq-dhcp[999]: {xid} requested options: 1:netmask, 3:router, 6:dns-server, 12:hostname"
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.into_bytes()
}

fn parse_all(data: &[u8]) -> (usize, usize) {
    let (mut ok, mut rejected) = (0, 0);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', data) {
        match parse_line(black_box(&data[start..end])) {
            Ok(l) => {
                black_box(l);
                ok += 1;
            }
            Err(_) => rejected += 1,
        }
        start = end + 1;
    }
    (ok, rejected)
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat`
/// (Linux): unlike wall time it does not count time spent waiting for a
/// core on a loaded machine.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Best wall time and best CPU time over `ROUNDS` runs.
fn best<T>(mut f: impl FnMut() -> T) -> (Duration, Option<Duration>, T) {
    let (mut wall, mut cpu, mut value) = (Duration::MAX, None::<Duration>, None);
    for _ in 0..ROUNDS {
        let (t, c) = (Instant::now(), thread_cpu());
        let v = f();
        wall = wall.min(t.elapsed());
        if let (Some(c0), Some(c1)) = (c, thread_cpu()) {
            cpu = Some(cpu.map_or(c1 - c0, |b| b.min(c1 - c0)));
        }
        value = Some(v);
    }
    (wall, cpu, value.unwrap())
}

/// `grep -c DHCP <path>`: (best wall time, best user+system CPU time, count).
fn grep(path: &std::path::Path) -> Option<(Duration, Option<Duration>, String)> {
    let (mut wall, mut cpu, mut count) = (Duration::MAX, None::<Duration>, String::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        // bash's `time` reports the child's user and system CPU time.
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#"TIMEFORMAT="%3U %3S"; time grep -c DHCP "$0""#)
            .arg(path)
            .output()
            .ok()?;
        let elapsed = t.elapsed();
        if !out.status.success() {
            return None;
        }
        wall = wall.min(elapsed);
        count = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let times = String::from_utf8_lossy(&out.stderr);
        let secs: Option<f64> = times
            .split_whitespace()
            .map(|t| t.parse::<f64>().ok())
            .sum();
        if let Some(secs) = secs {
            let c = Duration::from_secs_f64(secs);
            cpu = Some(cpu.map_or(c, |b| b.min(c)));
        }
    }
    Some((wall, cpu, count))
}

fn main() {
    let data = generate();
    let path = std::env::temp_dir().join(format!("nmt-parsers-bench-{}.log", std::process::id()));
    std::fs::write(&path, &data).expect("write the bench log");
    let mb = data.len() as f64 / 1e6;

    let (parse_wall, parse_cpu, (ok, rejected)) = best(|| parse_all(&data));
    assert_eq!(ok + rejected, LINES);
    assert_eq!(rejected, 0, "every generated line is one nmt reads");
    let grep = grep(&path);
    let _ = std::fs::remove_file(&path);

    let rate = |d: Duration| {
        let s = d.as_secs_f64();
        format!(
            "{:.1} ms, {:.2} M lines/s, {:.0} MB/s, {:.0} ns/line",
            s * 1e3,
            LINES as f64 / s / 1e6,
            mb / s,
            s * 1e9 / LINES as f64
        )
    };
    let mut report = String::new();
    writeln!(
        report,
        "input: {LINES} lines, {mb:.1} MB (mixed ISC dhcpd / dnsmasq, RFC 3164), best of {ROUNDS}"
    )
    .unwrap();
    writeln!(
        report,
        "parse_line wall: {} ({ok} parsed, {rejected} rejected)",
        rate(parse_wall)
    )
    .unwrap();
    if let Some(c) = parse_cpu {
        writeln!(report, "parse_line CPU:  {}", rate(c)).unwrap();
    }
    match grep {
        Some((wall, cpu, count)) => {
            let g = wall.as_secs_f64();
            writeln!(
                report,
                "grep -c DHCP wall: {:.1} ms, {:.0} MB/s (count {count})",
                g * 1e3,
                mb / g
            )
            .unwrap();
            if let Some(c) = cpu {
                writeln!(
                    report,
                    "grep -c DHCP CPU:  {:.1} ms, {:.0} MB/s",
                    c.as_secs_f64() * 1e3,
                    mb / c.as_secs_f64()
                )
                .unwrap();
            }
            writeln!(
                report,
                "ratio parse/grep, wall: {:.2}x (target: at most 2x)",
                parse_wall.as_secs_f64() / g
            )
            .unwrap();
            if let (Some(p), Some(c)) = (parse_cpu, cpu) {
                writeln!(
                    report,
                    "ratio parse/grep, CPU:  {:.2}x",
                    p.as_secs_f64() / c.as_secs_f64()
                )
                .unwrap();
            }
        }
        None => writeln!(report, "grep -c DHCP: not run (needs grep and bash)").unwrap(),
    }
    print!("{report}");
}
