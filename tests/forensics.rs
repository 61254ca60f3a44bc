//! Questions about the past and rebuilding: journal export and import, `--at`, `nmt boots`,
//! `nmt verify`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::{Daemon, Nmt, TestDir, append, mac, require_tool, wait_for};

/// A boot of machine n in dnsmasq's words: DHCP, then its pxelinux entry over TFTP.
fn boot(n: u32, stamp: &str) -> String {
    let m = mac(n);
    let ip = format!("10.0.9.{n}");
    format!(
        "{stamp} boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {m}\n\
         {stamp} boot1 dnsmasq-dhcp[812]: DHCPACK(br0) {ip} {m}\n\
         {stamp} boot1 dnsmasq-tftp[812]: sent /srv/tftp/pxelinux.cfg/01-{} to {ip}\n",
        m.replace(':', "-")
    )
}

fn wait(what: &str, f: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(20), f);
}

/// Every generated file under a state directory, by relative path.
fn generated(state: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![state.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(state)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if ![
                "nmt.redb",
                "rendered-seq",
                "nmtd.sock",
                "nmt.toml",
                "installer-password",
                "site-key",
            ]
            .contains(&rel.as_str())
            {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A state built through commands and log lines, with nmtd stopped at the end.
fn scenario(t: &Nmt) {
    let log = t.dir.path().join("dnsmasq.log");
    let _d = Daemon::start(t, &["--log", log.to_str().unwrap()]);
    t.ok(&["group", "add", "physics"]);
    t.ok(&[
        "machine",
        "add",
        &mac(1),
        "--name",
        "lab07",
        "--group",
        "physics",
    ]);
    t.ok(&[
        "machine",
        "add",
        &mac(2),
        "--name",
        "lab08",
        "--group",
        "physics",
        "--ip",
        "10.0.0.8",
    ]);
    append(&log, &boot(1, "Nov 20 01:00:00"));
    append(&log, &boot(3, "Nov 20 01:00:05"));
    wait("boots ingested", || {
        t.json(&["machines"]).as_array().unwrap().len() == 3
    });
    t.ok(&["policy", "@physics", "restore-image:lab", "--once", "--yes"]);
    append(&log, &boot(1, "Nov 20 02:05:00"));
    wait("the re-image boot", || {
        t.json(&["boots", "lab07"]).as_array().unwrap().len() == 2
    });
    t.ok(&["policy", "@physics", "ltsp"]);
    t.ok(&["installed", &mac(3), "/dev/sda1"]);
    t.ok(&["rootdev", "set", "lab08", "/dev/sdb1"]);
    append(&log, &boot(1, "Nov 20 09:00:00"));
    wait("the ltsp boot", || {
        t.json(&["boots", "lab07"]).as_array().unwrap().len() == 3
    });
}

#[test]
fn which_image_did_lab07_boot_last_night() {
    let t = Nmt::new();
    scenario(&t);
    let boots = t.json(&["boots", "lab07"]);
    let b = boots.as_array().unwrap();
    assert_eq!(b[0]["policy"], "localboot");
    assert_eq!(b[1]["policy"], "restore-image:lab", "the nightly re-image");
    assert_eq!(b[1]["origin"], "machine-once");
    assert_eq!(b[1]["image"], "lab");
    assert_eq!(
        b[1]["booted"],
        "kernel nmt/imager/vmlinuz initrd nmt/imager/initrd.img"
    );
    assert_eq!(b[1]["ip"], "10.0.9.1");
    assert_eq!(b[1]["set_by"], nmt::current_actor().as_str());
    assert!(
        b[1]["set_how"]
            .as_str()
            .unwrap()
            .contains("(next boot only)"),
        "{}",
        b[1]
    );
    // The one-shot was spent by that boot: the next one followed the group again.
    assert_eq!(b[2]["policy"], "ltsp");
    assert_eq!(b[2]["origin"], "group");
    assert!(
        b[2]["set_how"]
            .as_str()
            .unwrap()
            .contains("group physics policy set to ltsp")
    );
    let text = t.ok(&["boots", "lab07"]);
    assert!(text.contains("restore-image:lab (once)"), "{text}");
    // --since
    let year = jiff::Zoned::now().year();
    let late = t.json(&["boots", "lab07", "--since", &format!("{year}-11-20 08:00")]);
    assert_eq!(late.as_array().unwrap().len(), 1);
    // history by kind
    let h = t.json(&["history", "lab07", "--kind", "BootEntryUsed"]);
    assert_eq!(h.as_array().unwrap().len(), 3);
    assert!(t.ok(&["verify"]).starts_with("verified:"));
}

#[test]
fn the_state_as_it_was_at_a_time() {
    let t = Nmt::new();
    t.ok(&["group", "add", "physics"]);
    t.ok(&["machine", "add", &mac(1), "--name", "lab07"]);
    std::thread::sleep(Duration::from_millis(1100));
    let before = jiff::Timestamp::now().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    t.ok(&["assign", "lab07", "physics"]);
    t.ok(&["policy", "@physics", "ltsp"]);
    t.ok(&["name", "lab07", "lab7"]);
    let then = t.json(&["machines", "--at", &before]);
    assert_eq!(then[0]["group"], "unknown");
    assert_eq!(then[0]["name"], "lab07");
    assert_eq!(then[0]["effective_policy"], "localboot");
    let now = t.json(&["machines"]);
    assert_eq!(now[0]["group"], "physics");
    assert_eq!(now[0]["effective_policy"], "ltsp");
    let shown = t.ok(&["show", "lab07", "--at", &before]);
    assert!(shown.contains("group        unknown"), "{shown}");
    let err = t.fails(&["show", "lab07", "--at", "2001-01-01 00:00"]);
    assert!(
        err.contains("no machine named lab07") || err.contains("not known yet"),
        "{err}"
    );
}

#[test]
fn export_then_import_rebuilds_everything_byte_for_byte() {
    let t = Nmt::new();
    scenario(&t);
    let export = t.dir.path().join("journal.jsonl");
    t.ok(&["journal", "export", export.to_str().unwrap()]);
    let other = Nmt::bare();
    // The site key is not in the log: a rebuild that keeps the machines' tokens restores
    // it from the backup of the state directory.
    std::fs::create_dir_all(other.state()).unwrap();
    std::fs::copy(t.path("site-key"), other.path("site-key")).unwrap();
    let out = other.ok(&["journal", "import", export.to_str().unwrap()]);
    assert!(out.starts_with("imported"), "{out}");
    assert_eq!(
        other.ok(&["machines", "--json"]),
        t.ok(&["machines", "--json"])
    );
    assert_eq!(
        other.ok(&["history", "lab07", "--json"]),
        t.ok(&["history", "lab07", "--json"])
    );
    assert_eq!(
        other.ok(&["boots", "lab07", "--json"]),
        t.ok(&["boots", "lab07", "--json"])
    );
    let (a, b) = (generated(&t.state()), generated(&other.state()));
    assert_eq!(
        a.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        b.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for ((p, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{p} differs after import");
    }
    assert!(other.ok(&["verify"]).starts_with("verified:"));
    // Importing again, into a state that is no longer empty, is refused.
    let err = other.fails(&["journal", "import", export.to_str().unwrap()]);
    assert!(err.contains("already holds"), "{err}");
    // Filters.
    // --machine: its own events, and its group's policy changes while it was a member.
    let only = t.ok(&["journal", "export", "--machine", "lab08"]);
    for l in event_lines(&only) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(
            v["event"]["mac"] == mac(2).as_str() || v["event"]["type"] == "GroupPolicySet",
            "{l}"
        );
    }
    assert!(event_lines(&only).len() >= 4, "{only}");
}

#[test]
fn a_truncated_or_corrupted_export_is_refused_with_its_line() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(1)]);
    let export = t.ok(&["journal", "export"]);
    // The events without their trailer (see item_3_… for the trailer's own checks).
    let full: String = event_lines(&export)
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = TestDir::new();
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, &full[..full.len() - 20]).unwrap();
    let other = Nmt::bare();
    let err = other.fails(&["journal", "import", cut.to_str().unwrap()]);
    let lines = full.lines().count();
    assert!(err.contains(&format!("line {lines}")), "{err}");
    // Cut inside the trailer: refused with the trailer's line.
    std::fs::write(&cut, &export[..export.len() - 20]).unwrap();
    let err = other.fails(&["journal", "import", cut.to_str().unwrap()]);
    assert!(
        err.contains(&format!("line {}: the export's trailer", lines + 1)),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        !other.state().join("nmt.redb").exists(),
        "the state is left untouched"
    );
    let gap = dir.path().join("gap.jsonl");
    let mut ls: Vec<&str> = full.lines().collect();
    ls.remove(3);
    std::fs::write(&gap, ls.join("\n")).unwrap();
    let err = other.fails(&["journal", "import", gap.to_str().unwrap()]);
    assert!(err.contains("line 4: event 5 follows event 3"), "{err}");
}

#[test]
fn verify_reports_drift_and_exits_1() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(1), "--name", "a"]);
    assert!(t.ok(&["verify"]).starts_with("verified:"));
    std::fs::write(t.path("hosts/nmt.hosts"), "tampered\n").unwrap();
    let out = t.cmd(&["verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hosts/nmt.hosts"));
}

fn gzip(path: &Path) -> std::path::PathBuf {
    require_tool("gzip", "gzip");
    let out = Command::new("gzip").arg("-k").arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(path).unwrap();
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    gz.into()
}

/// A stamp for today, as syslog writes it (the tests run with TZ=UTC).
fn today(hms: &str) -> String {
    jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .strftime(&format!("%b %e {hms}"))
        .to_string()
}

fn dhcp_count(t: &Nmt, m: &str) -> usize {
    t.json(&["history", m, "--kind", "DhcpSeen"])
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn the_disaster_story_journal_import_plus_log_replay_brings_everything_back() {
    let t = Nmt::new();
    let log = t.dir.path().join("dnsmasq.log");
    {
        let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
        t.ok(&["group", "add", "lab"]);
        t.ok(&[
            "machine",
            "add",
            &mac(1),
            "--name",
            "lab01",
            "--group",
            "lab",
        ]);
        append(&log, &boot(1, &today("00:01:00")));
        append(&log, &boot(2, &today("00:02:00")));
        wait("two machines", || {
            t.json(&["machines"]).as_array().unwrap().len() == 2
        });
        // Last week's backup.
        t.ok(&[
            "journal",
            "export",
            t.dir.path().join("backup.jsonl").to_str().unwrap(),
        ]);
        // After the backup: a new machine shows up, then the log rotates (and is
        // compressed), and another one shows up.
        append(&log, &boot(3, &today("00:03:00")));
        wait("three machines", || {
            t.json(&["machines"]).as_array().unwrap().len() == 3
        });
        std::fs::rename(&log, t.dir.path().join("dnsmasq.log.1")).unwrap();
        append(&log, &boot(4, &today("00:04:00")));
        wait("four machines", || {
            t.json(&["machines"]).as_array().unwrap().len() == 4
        });
    }
    let archived = gzip(&t.dir.path().join("dnsmasq.log.1"));
    let original = t.ok(&["machines", "--json"]);
    // Replaying what live ingest already read adds nothing.
    let live = t.ok(&[
        "replay",
        "logs",
        archived.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(live.contains(": 0 events appended"), "{live}");

    // The state disk dies. A new one, the backup, and the syslog archive.
    let r = Nmt::bare();
    r.ok(&[
        "journal",
        "import",
        t.dir.path().join("backup.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(r.json(&["machines"]).as_array().unwrap().len(), 2);
    let out = r.ok(&[
        "replay",
        "logs",
        archived.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(out.contains("already read before"), "{out}");
    assert_eq!(
        r.ok(&["machines", "--json"]),
        original,
        "everything is back"
    );
    assert_eq!(
        dhcp_count(&r, &mac(1)),
        dhcp_count(&t, &mac(1)),
        "no line counted twice"
    );
    assert_eq!(dhcp_count(&r, &mac(3)), 2);
    let boots = r.json(&["boots", &mac(4)]);
    assert_eq!(boots.as_array().unwrap().len(), 1);
    // Replaying again adds nothing.
    let before = r.ok(&["journal", "export"]).lines().count();
    let again = r.ok(&[
        "replay",
        "logs",
        archived.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert!(again.contains(": 0 events appended"), "{again}");
    assert_eq!(r.ok(&["journal", "export"]).lines().count(), before);
    assert!(r.ok(&["verify"]).starts_with("verified:"));
}

#[test]
fn replay_strict_fails_on_unrecognised_lines_and_damaged_archives_add_nothing() {
    let t = Nmt::new();
    t.ok(&["group", "add", "x"]);
    let dir = TestDir::new();
    let log = dir.path().join("mixed.log");
    std::fs::write(
        &log,
        format!("{}not a dhcp line\n", boot(5, &today("01:00:00"))),
    )
    .unwrap();
    let out = t
        .cmd(&["replay", "logs", log.to_str().unwrap(), "--strict"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 not recognised"));
    assert_eq!(
        t.json(&["machines"]).as_array().unwrap().len(),
        1,
        "the good lines count"
    );
    // A gzip cut in half is refused before anything is appended.
    let whole = dir.path().join("whole.log");
    let mut text = String::new();
    for n in 10..200 {
        text.push_str(&boot(n, &today("02:00:00")));
    }
    std::fs::write(&whole, text).unwrap();
    let gz = gzip(&whole);
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let before = t.ok(&["journal", "export"]).lines().count();
    let err = t.fails(&["replay", "logs", gz.to_str().unwrap()]);
    assert!(err.contains("whole.log.gz"), "{err}");
    assert_eq!(t.ok(&["journal", "export"]).lines().count(), before);
}

/// The lines of an export that are events (the last line is its trailer).
fn event_lines(export: &str) -> Vec<&str> {
    export
        .lines()
        .filter(|l| !l.starts_with(r#"{"trailer":"#))
        .collect()
}

#[test]
fn item_3_an_export_cut_at_a_line_boundary_is_refused() {
    let t = Nmt::new();
    scenario(&t);
    let full = t.ok(&["journal", "export"]);
    let events = event_lines(&full);
    assert!(events.len() > 6, "{full}");
    // `head -n 6`: whole lines, gap-free from 1, but not the whole log.
    let dir = TestDir::new();
    let cut = dir.path().join("cut.jsonl");
    let head: String = full.lines().take(6).map(|l| format!("{l}\n")).collect();
    std::fs::write(&cut, &head).unwrap();
    let other = Nmt::bare();
    let err = other.fails(&["journal", "import", cut.to_str().unwrap()]);
    assert!(err.contains("trailer"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(err.contains("--partial"), "says what to do: {err}");
    assert!(
        !other.state().join("nmt.redb").exists(),
        "the state is left untouched"
    );
    // --partial imports the prefix on purpose, and says so.
    let out = other.ok(&["journal", "import", "--partial", cut.to_str().unwrap()]);
    assert!(out.starts_with("imported 6 events"), "{out}");
    assert!(out.contains("--partial"), "{out}");
    assert_eq!(event_lines(&other.ok(&["journal", "export"])).len(), 6);
    // The trailer counts the events and names no filter; the whole export imports.
    let trailer: serde_json::Value = serde_json::from_str(full.lines().last().unwrap()).unwrap();
    assert_eq!(
        trailer["trailer"]["events"],
        events.len() as u64,
        "{trailer}"
    );
    assert_eq!(
        trailer["trailer"]["filter"],
        serde_json::json!({}),
        "{trailer}"
    );
    let whole = dir.path().join("whole.jsonl");
    std::fs::write(&whole, &full).unwrap();
    let again = Nmt::bare();
    let out = again.ok(&["journal", "import", whole.to_str().unwrap()]);
    assert!(!out.contains("--partial"), "{out}");
    assert_eq!(again.ok(&["journal", "export"]), full, "byte for byte");
}

#[test]
fn item_3_an_edited_export_is_refused_by_its_digest() {
    let t = Nmt::new();
    scenario(&t);
    let full = t.ok(&["journal", "export"]);
    let dir = TestDir::new();
    let edited = dir.path().join("edited.jsonl");
    std::fs::write(&edited, full.replacen("\"lab07\"", "\"lab77\"", 1)).unwrap();
    assert_ne!(std::fs::read_to_string(&edited).unwrap(), full);
    let other = Nmt::bare();
    for args in [vec![], vec!["--partial"]] {
        let mut a = vec!["journal", "import"];
        a.extend(args);
        a.push(edited.to_str().unwrap());
        let err = other.fails(&a);
        assert!(err.contains("digest"), "{err}");
        assert!(err.contains("nothing was imported"), "{err}");
    }
    // A line after the trailer is refused too.
    let extra = dir.path().join("extra.jsonl");
    let first = full.lines().next().unwrap();
    std::fs::write(&extra, format!("{full}{first}\n")).unwrap();
    let err = other.fails(&["journal", "import", extra.to_str().unwrap()]);
    assert!(err.contains("after the trailer"), "{err}");
    assert!(!other.state().join("nmt.redb").exists());
}

#[test]
fn item_3_a_filtered_export_says_its_filter_and_is_not_imported_as_whole() {
    let t = Nmt::new();
    scenario(&t);
    let only = t.ok(&["journal", "export", "--machine", "lab08"]);
    let trailer: serde_json::Value = serde_json::from_str(only.lines().last().unwrap()).unwrap();
    assert_eq!(
        trailer["trailer"]["filter"]["machine"], "lab08",
        "{trailer}"
    );
    assert_eq!(
        trailer["trailer"]["events"],
        event_lines(&only).len() as u64,
        "it counts what it holds"
    );
    let dir = TestDir::new();
    let path = dir.path().join("lab08.jsonl");
    std::fs::write(&path, &only).unwrap();
    let other = Nmt::bare();
    let err = other.fails(&["journal", "import", path.to_str().unwrap()]);
    assert!(err.contains("--machine lab08"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    // --until: a filtered export that is a prefix of the log imports with --partial.
    let until = t.ok(&["journal", "export", "--until", "2099-01-01T00:00:00Z"]);
    let trailer: serde_json::Value = serde_json::from_str(until.lines().last().unwrap()).unwrap();
    assert_eq!(
        trailer["trailer"]["filter"]["until"], "2099-01-01T00:00:00Z",
        "{trailer}"
    );
    let path = dir.path().join("until.jsonl");
    std::fs::write(&path, &until).unwrap();
    let err = other.fails(&["journal", "import", path.to_str().unwrap()]);
    assert!(err.contains("--until"), "{err}");
    let out = other.ok(&["journal", "import", "--partial", path.to_str().unwrap()]);
    assert!(out.contains("--partial"), "{out}");
}

#[test]
fn item_4_an_export_into_a_missing_directory_is_refused() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(1)]);
    let dir = TestDir::new();
    let missing = dir.path().join("no").join("such");
    let target = missing.join("x.jsonl");
    let err = t.fails(&["journal", "export", target.to_str().unwrap()]);
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!dir.path().join("no").exists(), "no directory was created");
    // A failed export leaves an existing file as it was, and no temporary beside it.
    let kept = dir.path().join("kept.jsonl");
    std::fs::write(&kept, "old\n").unwrap();
    t.fails(&[
        "journal",
        "export",
        "--machine",
        "nosuch",
        kept.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "old\n");
    t.ok(&["journal", "export", kept.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        t.ok(&["journal", "export"])
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["kept.jsonl".to_string()],
        "no temporary is left"
    );
}

#[test]
fn item_13_a_pool_that_booted_before_nmt_comes_in_from_leases_files() {
    let t = Nmt::new();
    let isc = t.dir.path().join("dhcpd.leases");
    std::fs::write(
        &isc,
        "# The format of this file is documented in the dhcpd.leases(5) manual page.\n\
         authoring-byte-order little-endian;\n\
         lease 10.0.0.50 {\n  starts 3 2025/03/05 07:15:09;\n  ends 3 2025/03/05 19:15:09;\n\
           binding state active;\n  hardware ethernet 52:54:00:00:00:01;\n\
           client-hostname \"pc-01\";\n}\n\
         lease 10.0.0.51 {\n  starts 3 2025/03/05 07:16:00;\n  binding state active;\n\
           hardware ethernet 52:54:00:00:00:02;\n}\n\
         lease 10.0.0.52 {\n  starts 3 2025/03/05 07:17:00;\n  binding state active;\n\
           hardware ethernet ff:ff:ff:ff:ff:ff;\n}\n\
         lease 10.0.0.50 {\n  starts 4 2025/03/06 08:00:00;\n  binding state active;\n\
           hardware ethernet 52:54:00:00:00:01;\n  client-hostname \"pc-01\";\n}\n",
    )
    .unwrap();
    let dnsmasq = t.dir.path().join("dnsmasq.leases");
    std::fs::write(&dnsmasq, format!("1741202109 {} 10.0.1.9 lab9 *\n", mac(9))).unwrap();
    // A dry run shows them and records nothing.
    let before = t.event_count();
    let dry = t.ok(&["replay", "leases", isc.to_str().unwrap(), "--dry-run"]);
    assert!(dry.contains("would replay 3 leases: 2 events"), "{dry}");
    assert_eq!(t.event_count(), before);
    let out = t.json(&[
        "replay",
        "leases",
        isc.to_str().unwrap(),
        dnsmasq.to_str().unwrap(),
    ]);
    assert_eq!(out["leases"], 4, "{out}");
    assert_eq!(out["events"], 3, "{out}");
    assert_eq!(out["not_machines"], 1, "{out}");
    let machines = t.json(&["machines"]);
    let by_mac = |m: &str| {
        machines
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["mac"] == m)
            .cloned()
            .unwrap_or_else(|| panic!("{m} in {machines}"))
    };
    assert_eq!(by_mac(&mac(1))["group"], "unknown");
    let h = t.json(&["history", &mac(1)]);
    assert_eq!(h[0]["event"]["kind"], "lease", "{h}");
    assert_eq!(h[0]["event"]["ip"], "10.0.0.50");
    assert_eq!(h[0]["event"]["hostname"], "pc-01");
    assert_eq!(h[0]["actor"], "dhcpd@leases");
    assert!(
        h[0]["observed_at"]
            .as_str()
            .unwrap()
            .starts_with("2025-03-06T08:00:00"),
        "the last block of an address wins, at its start: {h}"
    );
    assert_eq!(by_mac(&mac(9))["mac"], mac(9).as_str());
    // Again: nothing new, through nmtd too (it reads the files itself).
    let _d = Daemon::start(&t, &[]);
    let n = t.event_count();
    let again = t.ok(&[
        "replay",
        "leases",
        isc.to_str().unwrap(),
        dnsmasq.to_str().unwrap(),
    ]);
    assert!(again.contains("0 events appended, 3 no newer"), "{again}");
    assert_eq!(t.event_count(), n);
    // Not a leases file: refused, and says what it expected.
    let other = t.dir.path().join("notes.txt");
    std::fs::write(&other, "hello world\n").unwrap();
    let err = t.fails(&["replay", "leases", other.to_str().unwrap()]);
    assert!(err.contains("leases"), "{err}");
}

#[test]
fn item_13_replayed_lines_with_no_time_take_the_line_before_or_the_files_time() {
    let t = Nmt::new();
    // `dhcpd -d`/`docker logs` style: a timed line, then lines with no time at all.
    let mixed = t.dir.path().join("mixed.log");
    std::fs::write(
        &mixed,
        format!(
            "Mar  3 07:15:09 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {}\n\
             dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {}\n",
            mac(1),
            mac(2)
        ),
    )
    .unwrap();
    let bare = t.dir.path().join("bare.log");
    std::fs::write(
        &bare,
        format!("dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {}\n", mac(3)),
    )
    .unwrap();
    let mtime = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_741_000_000);
    std::fs::File::options()
        .write(true)
        .open(&bare)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = t.ok(&[
        "replay",
        "logs",
        "--year",
        "2025",
        mixed.to_str().unwrap(),
        bare.to_str().unwrap(),
    ]);
    assert!(out.contains("2 lines had no time of their own"), "{out}");
    let first_seen = |n: u32| {
        t.json(&["history", &mac(n)])[0]["observed_at"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        first_seen(1).starts_with("2025-03-03T07:15:09"),
        "{}",
        first_seen(1)
    );
    assert_eq!(first_seen(2), first_seen(1), "the line before it");
    assert!(
        first_seen(3).starts_with("2025-03-03T11:06:40"),
        "the file's modification time: {}",
        first_seen(3)
    );
    let json = t.json(&["replay", "logs", mixed.to_str().unwrap()]);
    assert_eq!(json["already"], 2, "{json}");
}
