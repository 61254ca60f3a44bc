//! Log ingest through the real `nmtd`: machines appear from DHCP lines within a second, and
//! every line becomes exactly one event through rotation, copytruncate, recreation and
//! SIGKILL at random moments.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{Daemon, Nmt, append, require_tool, wait_for};

/// A DHCP line for the nth machine, in dnsmasq's syslog format: eight new machines a second
/// of log (under the limit on new machines a minute).
fn dhcp_line(n: u32) -> String {
    let t = 7200 + n / 8;
    format!(
        "Nov 21 {:02}:{:02}:{:02} boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) 52:54:00:{:02x}:{:02x}:{:02x}\n",
        (t / 3600) % 24,
        (t / 60) % 60,
        t % 60,
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

/// Shift rotated files as logrotate does (`.1` → `.2`, …), making room for a new `.1`.
fn shift(log: &Path) {
    let numbered = |k: u32| {
        let mut p = log.as_os_str().to_owned();
        p.push(format!(".{k}"));
        std::path::PathBuf::from(p)
    };
    let mut top = 1;
    while numbered(top).exists() {
        top += 1;
    }
    for k in (1..top).rev() {
        std::fs::rename(numbered(k), numbered(k + 1)).unwrap();
    }
}

fn dot1(log: &Path) -> std::path::PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".1");
    std::path::PathBuf::from(p)
}

/// How many DhcpSeen events the log holds per MAC.
fn seen_counts(t: &Nmt) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in t.ok(&["journal", "export"]).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["event"]["type"] == "DhcpSeen" {
            *out.entry(v["event"]["mac"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    out
}

#[test]
fn unknown_machines_appear_within_a_second_of_their_dhcp_line() {
    let t = Nmt::new();
    let log = t.dir.path().join("daemon.log");
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    // The log does not exist yet: the daemon waits for it.
    std::thread::sleep(Duration::from_millis(300));
    append(
        &log,
        "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: 3342 vendor class: PXEClient:Arch:00007:UNDI:003016\n\
         Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: 3342 DHCPDISCOVER(br0) 52:54:00:12:34:56\n\
         Nov 21 02:05:12 boot1 dnsmasq-dhcp[812]: 3342 DHCPACK(br0) 10.0.0.50 52:54:00:12:34:56 <script>alert(1)</script>\n\
         Nov 21 02:05:13 gw dhcpd[77]: DHCPACK on 10.0.0.51 to 52:54:00:ab:cd:ef (lab\"07; rm -rf /) via eth0\n\
         this is not a log line\n",
    );
    {
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"\xff\xfe\x00 binary garbage\n").unwrap();
        // A 100 KB line, then a good one after it.
        let mut long = b"Nov 21 02:05:14 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) ".to_vec();
        long.extend(std::iter::repeat_n(b'A', 100 * 1024));
        long.push(b'\n');
        f.write_all(&long).unwrap();
    }
    let took = wait_for("machines discovered", Duration::from_secs(10), || {
        t.json(&["machines"]).as_array().unwrap().len() == 2
    });
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let m = t.json(&["machines", "52:54:00:12:34:56"]);
    assert_eq!(m[0]["group"], "unknown");
    assert_eq!(m[0]["last_ip"], "10.0.0.50");
    assert_eq!(m[0]["arch"], 7);
    assert_eq!(m[0]["dhcp_hostname"], "<script>alert(1)</script>");
    assert_eq!(m[0]["registered"], false);
    // Hostile client names are data: the generated files never carry them.
    for f in [
        "dhcp/dhcpd-nmt.conf",
        "dhcp/dnsmasq-nmt.hosts",
        "hosts/nmt.hosts",
    ] {
        let text = t.file(f);
        assert!(
            !text.contains("script") && !text.contains("rm -rf"),
            "{f}: {text}"
        );
    }
    // The default entry serves them: no file of their own until they leave `unknown`.
    assert!(!t.path("tftp/pxelinux.cfg/01-52-54-00-ab-cd-ef").exists());
    t.ok(&["name", "52:54:00:ab:cd:ef", "lab07"]);
    t.ok(&["policy", "lab07", "ltsp"]);
    assert!(
        t.path("tftp/pxelinux.cfg/01-52-54-00-ab-cd-ef").exists(),
        "a machine with its own policy gets its entries"
    );
    let status = t.ok(&["status"]);
    assert!(status.contains("rejects 3"), "{status}");
    assert!(status.contains("last rejected line"), "{status}");
    let js = t.json(&["status"]);
    assert_eq!(js["sources"][0]["events"], 3);
    assert_eq!(js["sources"][0]["lag_bytes"], 0);
}

#[test]
fn rotation_copytruncate_and_recreation_lose_and_repeat_nothing() {
    let t = Nmt::new();
    let log = t.dir.path().join("dhcp.log");
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    let mut n = 0;
    let mut write = |k: u32| {
        let mut s = String::new();
        for _ in 0..k {
            n += 1;
            s.push_str(&dhcp_line(n));
        }
        append(&log, &s);
    };
    write(50);
    std::thread::sleep(Duration::from_millis(100));
    // Rename rotation, the writer still appending to the old file for a while.
    shift(&log);
    std::fs::rename(&log, dot1(&log)).unwrap();
    append(&dot1(&log), &dhcp_line(100_000));
    write(50);
    // Copytruncate, with a large write straight after.
    shift(&log);
    std::fs::copy(&log, dot1(&log)).unwrap();
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    write(300);
    // A file deleted before any reader opened it is lost to every reader: let nmtd reach it
    // first (on a busy machine its next poll can be more than a moment away).
    wait_for("the truncated file read", Duration::from_secs(30), || {
        seen_counts(&t).len() == 50 + 1 + 50 + 300
    });
    // Delete and recreate.
    std::fs::remove_file(&log).unwrap();
    write(40);
    let total = 50 + 1 + 50 + 300 + 40;
    let mut last = 0;
    wait_for("every line ingested", Duration::from_secs(30), || {
        last = seen_counts(&t).len();
        if last != total {
            eprintln!("{last} of {total}");
        }
        last == total
    });
    std::thread::sleep(Duration::from_millis(400));
    let counts = seen_counts(&t);
    assert_eq!(counts.len(), total);
    assert!(
        counts.values().all(|c| *c == 1),
        "a line was ingested twice"
    );
}

/// xorshift64*, so a seed reproduces a run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn kill_run(seed: u64) {
    let t = Nmt::new();
    let log = t.dir.path().join("dhcp.log");
    let mut r = Rng(seed | 1);
    let mut n = 0u32;
    let mut rotations = 0;
    for round in 0..8 {
        let d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
        // Write in bursts while the daemon ingests; sometimes rotate.
        let bursts = 1 + r.next() % 4;
        for _ in 0..bursts {
            let k = 1 + (r.next() % 200) as u32;
            let mut s = String::new();
            for _ in 0..k {
                n += 1;
                s.push_str(&dhcp_line(n));
            }
            append(&log, &s);
            if r.next().is_multiple_of(3) && log.exists() {
                rotations += 1;
                shift(&log);
                std::fs::rename(&log, dot1(&log)).unwrap();
            }
            std::thread::sleep(Duration::from_millis(r.next() % 40));
        }
        // SIGKILL at a random moment: mid-batch, mid-commit, or idle.
        std::thread::sleep(Duration::from_millis(r.next() % 60));
        let mut d = d;
        d.kill9();
        let _ = round;
    }
    // A last, calm run reads everything left.
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    let expect = n as usize;
    let start = Instant::now();
    loop {
        let got = seen_counts(&t).len();
        if got == expect {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            // Everything needed to see why, then fail.
            let mut files = String::new();
            for e in std::fs::read_dir(t.dir.path()).unwrap().flatten() {
                use std::os::unix::fs::MetadataExt;
                let md = e.metadata().unwrap();
                files += &format!("  {:?} ino {} size {}\n", e.file_name(), md.ino(), md.len());
            }
            panic!(
                "seed {seed}: {got} of {expect} lines ingested after {rotations} rotations\n\
                 status:\n{}\nfiles:\n{files}nmtd log:\n{}",
                t.ok(&["status"]),
                std::fs::read_to_string(t.dir.path().join("nmtd.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let counts = seen_counts(&t);
    let repeated: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        repeated.is_empty(),
        "seed {seed}: lines ingested more than once: {repeated:?}"
    );
    assert_eq!(counts.len(), expect, "seed {seed}: lines lost");
}

#[test]
fn sigkill_at_random_moments_loses_and_repeats_no_line() {
    let seeds: Vec<u64> = match std::env::var("NMT_KILL_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => (1..=4)
            .map(|i| 0xA076_1D64_78BD_642Fu64.wrapping_mul(i))
            .collect(),
    };
    for seed in seeds {
        eprintln!("kill run seed {seed} (rerun with NMT_KILL_SEED={seed})");
        kill_run(seed);
    }
}

/// Write journal entries into a journal directory with systemd's own tool, as a remote or
/// copied journal would arrive.
fn journal_write(dir: &Path, file: &str, entries: &[(u64, &str)]) {
    require_tool(
        "/lib/systemd/systemd-journal-remote",
        "systemd-journal-remote",
    );
    // nmtd reads the journal with journalctl.
    require_tool("journalctl", "systemd");
    let tool = Path::new("/lib/systemd/systemd-journal-remote");
    let mut export = String::new();
    for (usec, msg) in entries {
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={usec}\n_HOSTNAME=gw\nSYSLOG_IDENTIFIER=dhcpd\n_PID=77\n\
             _SYSTEMD_UNIT=isc-dhcp-server.service\nMESSAGE={msg}\n\n"
        ));
    }
    let input = dir.join(format!("{file}.export"));
    std::fs::write(&input, export).unwrap();
    let out = std::process::Command::new(tool)
        .arg(format!(
            "--output={}",
            dir.join(format!("{file}.journal")).display()
        ))
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(input).unwrap();
}

#[test]
fn a_units_journal_is_followed_from_its_cursor() {
    let t = Nmt::new();
    let jdir = t.dir.path().join("journal");
    std::fs::create_dir_all(&jdir).unwrap();
    std::fs::create_dir_all(t.state()).unwrap();
    std::fs::write(
        t.path("nmt.toml"),
        format!("[daemon]\njournal_dir = \"{}\"\n", jdir.display()),
    )
    .unwrap();
    journal_write(
        &jdir,
        "a",
        &[
            (
                1_763_700_000_000_000,
                "DHCPDISCOVER from 52:54:00:ab:cd:01 via eth0",
            ),
            (
                1_763_700_001_000_000,
                "DHCPACK on 10.0.0.51 to 52:54:00:ab:cd:01 (lab07) via eth0",
            ),
        ],
    );
    {
        let _d = Daemon::start(&t, &["--journal", "isc-dhcp-server.service"]);
        wait_for("the journal's machine", Duration::from_secs(10), || {
            t.json(&["machines"]).as_array().unwrap().len() == 1
        });
        let m = t.json(&["machines"]);
        assert_eq!(m[0]["last_ip"], "10.0.0.51");
        let h = t.json(&["history", "52:54:00:ab:cd:01"]);
        assert_eq!(
            h[0]["observed_at"], "2025-11-21T04:40:00Z",
            "the journal's own time"
        );
        assert_eq!(h[0]["actor"], "dhcpd@gw");
    }
    // nmtd stopped; more entries arrive; it resumes after its cursor.
    journal_write(
        &jdir,
        "b",
        &[(
            1_763_700_100_000_000,
            "DHCPDISCOVER from 52:54:00:ab:cd:02 via eth0",
        )],
    );
    let _d = Daemon::start(&t, &["--journal", "isc-dhcp-server.service"]);
    wait_for("the second machine", Duration::from_secs(10), || {
        t.json(&["machines"]).as_array().unwrap().len() == 2
    });
    std::thread::sleep(Duration::from_millis(300));
    let counts = seen_counts(&t);
    assert_eq!(
        counts["52:54:00:ab:cd:01"], 2,
        "discover + ack, not repeated"
    );
    assert_eq!(counts["52:54:00:ab:cd:02"], 1);
}

#[test]
fn a_read_mark_that_does_not_decode_stops_its_log_and_status_says_why() {
    use nmt::EventStore;
    let t = Nmt::new();
    let log = t.dir.path().join("dnsmasq.log");
    append(&log, &dhcp_line(1));
    t.ok(&["group", "add", "lab"]);
    {
        // A mark as a release this one does not know (or a damaged store) would leave it.
        let mut store =
            nmt::RedbStore::open(&t.state().join(nmt::DB_FILE), Duration::from_secs(5)).unwrap();
        let key = format!("log:{}", log.display());
        store
            .append(&[], &[(key.as_str(), b"{\"dev\":1,".as_slice())], &[])
            .unwrap();
    }
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    append(&log, &dhcp_line(2));
    std::thread::sleep(Duration::from_millis(800));
    let status = t.ok(&["status"]);
    assert!(status.contains("does not decode"), "{status}");
    assert!(status.contains("not followed"), "{status}");
    let js = t.json(&["status"]);
    assert!(
        js["sources"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("does not decode"),
        "{js}"
    );
    // Nothing was read from byte 0 instead.
    assert_eq!(t.json(&["machines"]).as_array().unwrap().len(), 0);
}

#[test]
fn item_10_a_missing_log_is_a_warning_until_it_appears() {
    let t = Nmt::new();
    let log = t.dir.path().join("not-yet.log");
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    wait_for("the warning", Duration::from_secs(10), || {
        t.json(&["status"])["sources"][0]["warning"].is_string()
    });
    let js = t.json(&["status"]);
    let w = js["sources"][0]["warning"].as_str().unwrap();
    assert!(w.contains("does not exist") && w.contains("--log"), "{w}");
    let status = t.ok(&["status"]);
    assert!(
        status.contains("warning: ") && status.contains("does not exist"),
        "{status}"
    );
    let daemon_log = std::fs::read_to_string(t.dir.path().join("nmtd.log")).unwrap();
    assert!(
        daemon_log.contains("WARN") && daemon_log.contains("does not exist"),
        "{daemon_log}"
    );
    append(&log, &dhcp_line(1));
    wait_for("the warning cleared", Duration::from_secs(10), || {
        t.json(&["status"])["sources"][0]["warning"].is_null()
    });
    assert!(!t.ok(&["status"]).contains("warning: "));
}

#[test]
fn item_13_dhcp_lines_naming_broadcast_multicast_or_zero_macs_are_ignored() {
    let t = Nmt::new();
    let log = t.dir.path().join("dhcp.log");
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    let mut text = String::new();
    for m in [
        "ff:ff:ff:ff:ff:ff",
        "00:00:00:00:00:00",
        "01:00:5e:00:00:01",
    ] {
        text.push_str(&format!(
            "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {m}\n"
        ));
    }
    text.push_str(&dhcp_line(7));
    append(&log, &text);
    wait_for("the unicast machine", Duration::from_secs(10), || {
        t.json(&["status"])["sources"][0]["lines"] == 4
    });
    let m = t.json(&["machines"]);
    let macs: Vec<&str> = m
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mac"].as_str().unwrap())
        .collect();
    assert_eq!(macs, ["52:54:00:00:00:07"]);
    let js = t.json(&["status"]);
    assert_eq!(js["sources"][0]["events"], 1, "{js}");
    assert!(js["sources"][0]["last_error"].is_null(), "{js}");
}

#[test]
fn item_13_status_breaks_rejects_down_by_reason_with_examples() {
    let t = Nmt::new();
    let log = t.dir.join("mixed.log");
    append(&log, "");
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    append(
        &log,
        "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) 52:54:00:00:00:01\n\
         Nov 21 02:05:12 boot1 dnsmasq-dhcp[812]: something dnsmasq never says\n\
         Nov 21 02:05:13 boot1 dnsmasq-dhcp[812]: something else it never says\n\
         Nov 21 02:05:14 boot1 sshd[99]: Accepted publickey for root from 10.0.0.9\n",
    );
    wait_for("four lines read", Duration::from_secs(20), || {
        t.json(&["status"])["sources"][0]["lines"] == 4
    });
    let s = t.json(&["status"]);
    let reasons = s["sources"][0]["reject_reasons"]
        .as_object()
        .unwrap()
        .clone();
    let total: u64 = reasons.values().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 3, "{reasons:?}");
    assert!(
        reasons.len() >= 2,
        "a line nmt does not know, and noise: {reasons:?}"
    );
    let examples: Vec<&str> = reasons
        .values()
        .flat_map(|r| r["examples"].as_array().unwrap())
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        examples.iter().any(|e| e.contains("never says")),
        "{examples:?}"
    );
    assert!(examples.iter().any(|e| e.contains("sshd")), "{examples:?}");
    let text = t.ok(&["status"]);
    assert!(
        text.contains("rejected, ") && text.contains("e.g. "),
        "{text}"
    );
}
