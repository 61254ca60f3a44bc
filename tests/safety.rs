//! Nothing lost, nothing wiped by surprise: regression tests named after the items of the
//! admin-safety review.

use crate::util::{Nmt, mac};

#[test]
fn item_7_a_list_of_groups_sets_each_groups_policy() {
    let t = Nmt::new();
    t.ok(&["group", "add", "physics", "--policy", "localboot"]);
    t.ok(&["group", "add", "lab", "--policy", "localboot"]);
    for i in 1..=4 {
        let g = if i <= 2 { "physics" } else { "lab" };
        t.ok(&[
            "machine",
            "add",
            &format!("52:54:00:00:00:0{i}"),
            "--group",
            g,
        ]);
    }
    let out = t.ok(&["policy", "@physics,@lab", "ltsp"]);
    assert!(out.contains("physics") && out.contains("lab"), "{out}");
    let groups = t.json(&["group", "list"]);
    for g in ["physics", "lab"] {
        let row = groups
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"] == g)
            .unwrap();
        assert_eq!(row["policy"], "ltsp", "{groups}");
    }
    // No machine got a policy of its own: a later group policy still reaches them all.
    for m in t.json(&["machines"]).as_array().unwrap() {
        assert_eq!(m["policy_origin"], "group", "{m}");
    }
    t.ok(&["policy", "@physics", "localboot"]);
    let physics = t.json(&["machines", "@physics"]);
    for m in physics.as_array().unwrap() {
        assert_eq!(m["effective_policy"], "localboot", "{m}");
    }
    // One unknown group refuses the whole list: nothing is set.
    let before = t.ok(&["journal", "export"]).lines().count();
    let no = t.fails(&["policy", "@lab,@nosuch", "install"]);
    assert!(no.contains("nosuch"), "{no}");
    assert_eq!(t.ok(&["journal", "export"]).lines().count(), before);
}

#[test]
fn item_8_times_are_printed_in_the_callers_zone_with_the_offset() {
    let t = Nmt::new();
    t.ok(&["machine", "add", "52:54:00:00:00:01", "--name", "n1"]);
    let berlin = |args: &[&str]| {
        let out = t.cmd(args).env("TZ", "Europe/Berlin").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let hist = berlin(&["history", "n1"]);
    let row = hist.lines().nth(1).expect("a row");
    // `2026-12-06 12:24:28 +01:00` (or +02:00 in summer).
    let stamp: String = row.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    assert!(
        stamp.ends_with("+01:00") || stamp.ends_with("+02:00"),
        "{hist}"
    );
    // What is printed is read back as the same instant.
    let json = t.json(&["history", "n1"]);
    let at = json[0]["observed_at"].as_str().unwrap();
    assert!(at.ends_with('Z'), "JSON times are RFC 3339 in UTC: {at}");
    let since = berlin(&["history", "n1", "--since", &stamp]);
    assert!(since.contains("registered"), "{since}");
}

#[test]
fn item_9_a_quote_that_never_closes_is_refused_by_the_one_node_table_reader() {
    let t = Nmt::new();
    let table = t.dir.join("nodes.csv");
    std::fs::write(
        &table,
        "mac,name\n52:54:00:00:00:01,n1\n52:54:00:00:00:02,\"n2\n52:54:00:00:00:03,n3\n",
    )
    .unwrap();
    let no = t.fails(&["machine", "import", table.to_str().unwrap()]);
    assert!(no.contains("line 3") && no.contains("quote"), "{no}");
    // All rows or none.
    assert!(
        t.cmd(&["machines", "--json"])
            .output()
            .unwrap()
            .stdout
            .len()
            < 4
    );
    // Well-quoted fields (a comma inside quotes) still read, with their lines right.
    std::fs::write(
        &table,
        "mac,name\r\n# a comment\r\n52:54:00:00:00:01,\"n1\"\r\n\r\n52:54:00:00:00:02,bad name\r\n",
    )
    .unwrap();
    let no = t.fails(&["machine", "import", table.to_str().unwrap()]);
    assert!(no.contains("line 5"), "{no}");
}

#[test]
fn item_12_the_replay_progress_counts_the_input_once() {
    let t = Nmt::new();
    let log = t.dir.join("dnsmasq.log");
    let mut text = String::new();
    // A little over 1 MiB, so progress is reported on the way, not only at the end.
    for i in 0..14_000u32 {
        text.push_str(&format!(
            "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) 52:54:00:00:{:02x}:{:02x}\n",
            (i % 50) >> 8,
            i % 50
        ));
    }
    std::fs::write(&log, &text).unwrap();
    let out = t
        .cmd(&["replay", "logs", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    let last = err
        .lines()
        .rfind(|l| l.starts_with("replay: 100%"))
        .unwrap_or_else(|| panic!("no 100% line: {err}"));
    let size = text.len();
    assert!(
        last.contains(&format!("{size} of {size} bytes of input")),
        "{last} (the file has {size} bytes)"
    );
}

#[test]
fn item_12_status_json_says_what_the_reader_did_in_words() {
    use std::time::Duration;
    let t = Nmt::new();
    let log = t.dir.join("dnsmasq.log");
    crate::util::append(
        &log,
        "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) 52:54:00:00:00:01\n",
    );
    let _d = crate::util::Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    crate::util::wait_for("the line read", Duration::from_secs(10), || {
        t.json(&["machines"]).as_array().unwrap().len() == 1
    });
    let st = t.json(&["status"]);
    let ev = st["sources"][0]["last_event"].as_str().unwrap().to_string();
    assert!(ev.starts_with("opened "), "{ev}");
    assert!(!ev.contains('{') && !ev.contains("FileId"), "{ev}");
}

#[test]
fn item_11_show_at_finds_a_machine_by_its_name_now_when_it_had_another_then() {
    let t = Nmt::new();
    t.ok(&["machine", "add", "52:54:00:00:00:09", "--name", "old9"]);
    let added = t.json(&["history", "old9"])[0]["observed_at"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    t.ok(&["name", "old9", "p9"]);
    let then = t.ok(&["show", "p9", "--at", &added]);
    assert!(then.contains("old9"), "{then}");
    // Its name then still works too.
    let then = t.ok(&["show", "old9", "--at", &added]);
    assert!(then.contains("52:54:00:00:00:09"), "{then}");
}

#[test]
fn item_11_hints_name_commands_that_work() {
    let t = Nmt::new();
    t.ok(&["machine", "add", "52:54:00:00:00:01"]);
    // `@physics` where a group's name is wanted: the hint must not be `group add @physics`.
    let no = t.fails(&["assign", "52:54:00:00:00:01", "@physics"]);
    assert!(!no.contains("group add @"), "{no}");
    assert!(no.contains("nmt group add physics"), "{no}");
    t.ok(&["group", "add", "physics"]);
}

#[test]
fn item_5_removing_a_group_never_sends_its_members_to_a_disk_erasing_policy() {
    let t = Nmt::new();
    // The README's tour: unknown machines install.
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["group", "add", "g2", "--policy", "localboot"]);
    for i in 1..=3 {
        t.ok(&[
            "machine",
            "add",
            &format!("52:54:00:00:00:0{i}"),
            "--group",
            "g2",
        ]);
    }
    let before = t.event_count();
    let no = t.fails(&["group", "rm", "g2", "--force"]);
    assert!(no.contains("3 member(s)") && no.contains("install"), "{no}");
    assert!(no.contains("--to localboot"), "{no}");
    assert_eq!(t.event_count(), before, "refused: nothing appended");
    let out = t.ok(&["group", "rm", "g2", "--to", "localboot"]);
    assert!(out.contains("3 machines moved to localboot"), "{out}");
    for m in t.json(&["machines"]).as_array().unwrap() {
        assert_eq!(m["group"], "localboot", "{m}");
        assert_eq!(m["effective_policy"], "localboot", "{m}");
    }
    // With a harmless unknown policy, --force still moves them there.
    t.ok(&["policy", "@unknown", "localboot"]);
    t.ok(&["group", "add", "g3"]);
    t.ok(&["assign", "52:54:00:00:00:01", "g3"]);
    let out = t.ok(&["group", "rm", "g3", "--force"]);
    assert!(out.contains("1 machine moved to unknown"), "{out}");
}

/// A state with group lab (localboot) holding lab01, lab02, lab03 (MACs 1 to 3, addresses
/// 10.0.0.1 to .3).
fn lab() -> Nmt {
    let t = Nmt::new();
    t.ok(&["group", "add", "lab", "--policy", "localboot"]);
    for i in 1..=3 {
        t.ok(&[
            "machine",
            "add",
            &mac(i),
            "--name",
            &format!("lab0{i}"),
            "--group",
            "lab",
            "--ip",
            &format!("10.0.0.{i}"),
        ]);
    }
    t
}

/// Run with standard input closed (as a script under cron is): the exit status, stdout and
/// stderr.
fn scripted(t: &Nmt, args: &[&str]) -> (Option<i32>, String, String) {
    let out = t
        .cmd(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The kinds of the events in the log, in order.
fn kinds(t: &Nmt) -> Vec<String> {
    t.ok(&["journal", "export"])
        .lines()
        .filter(|l| !l.starts_with(r#"{"trailer":"#))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event"]["type"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn item_6_machine_rm_of_many_needs_yes_in_scripts_and_lists_them() {
    let t = lab();
    let before = t.ok(&["journal", "export"]);
    let (code, out, err) = scripted(&t, &["machine", "rm", "@lab"]);
    assert_eq!(code, Some(3), "not confirmed: exit status 3\n{out}\n{err}");
    for i in 1..=3 {
        assert!(
            err.contains(&format!("lab0{i} ({})", mac(i))),
            "every machine is listed: {err}"
        );
    }
    assert!(
        err.contains("removes 3 machines") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(
        t.ok(&["journal", "export"]),
        before,
        "refused: nothing appended"
    );
    assert!(
        t.path(&crate::util::pxe(&mac(1))).exists(),
        "no file removed"
    );
    // --json says so too, on standard output.
    let out = t
        .cmd(&["machine", "rm", "@lab", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["needs_confirmation"], true, "{v}");
    assert_eq!(v["impact"]["removed"].as_array().unwrap().len(), 3, "{v}");
    // One machine is no bulk destruction (and `machine restore` undoes it).
    let out = t.ok(&["machine", "rm", "lab03"]);
    assert!(out.contains("removed 1 machine"), "{out}");
    // --yes, after checking the list: done.
    let out = t.ok(&["machine", "rm", "@lab", "--yes"]);
    assert!(out.contains("removed 2 machines"), "{out}");
    assert!(
        out.contains("2 machines were removed: lab01, lab02"),
        "{out}"
    );
    assert_eq!(
        kinds(&t).iter().filter(|k| *k == "MachineRemoved").count(),
        3
    );
    assert!(!t.path(&crate::util::pxe(&mac(1))).exists());
}

#[test]
fn item_6_an_erasing_policy_on_many_machines_needs_yes_in_scripts() {
    let t = lab();
    t.ok(&["group", "add", "wipe", "--policy", "install"]);
    t.ok(&["group", "add", "thin", "--policy", "ltsp"]);
    let n = t.event_count();
    for args in [
        &["policy", "@lab", "install"][..],
        &["policy", "@lab", "restore-image:lab", "--once"],
        &["policy", "lab[01-02]", "install"],
        &["policy", "@lab", "install", "--members"],
        // Moving machines into a group that installs makes them install.
        &["assign", "lab01,lab02", "wipe"],
        &["group", "rm", "lab", "--to", "wipe"],
    ] {
        let (code, out, err) = scripted(&t, args);
        assert_eq!(code, Some(3), "{args:?}\n{out}\n{err}");
        assert!(err.contains("erasing their disks"), "{args:?}: {err}");
        assert!(err.contains("lab01") && err.contains("lab02"), "{err}");
        assert_eq!(t.event_count(), n, "{args:?}: nothing appended");
    }
    // What erases nothing, or one machine, needs no --yes.
    t.ok(&["policy", "@lab", "ltsp"]);
    t.ok(&["assign", "lab01,lab02", "thin"]);
    t.ok(&["policy", "lab03", "install", "--once"]);
    // A group's policy reaches its members: an empty group's reaches nobody.
    t.ok(&["group", "add", "empty"]);
    t.ok(&["policy", "@empty", "install"]);
    let out = t.ok(&["policy", "@thin", "install", "--yes"]);
    assert!(
        out.contains("2 machines will now install at next boot: lab01, lab02"),
        "{out}"
    );
    let machines = t.json(&["machines", "@thin"]);
    for m in machines.as_array().unwrap() {
        assert_eq!(m["effective_policy"], "install:default", "{m}");
    }
}

#[test]
fn item_6_confirmation_and_dry_run_go_through_nmtd() {
    let t = lab();
    let _d = crate::util::Daemon::start(&t, &[]);
    let n = t.event_count();
    let (code, _, err) = scripted(&t, &["machine", "rm", "@lab"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("lab02 (52:54:00:00:00:02)"), "{err}");
    let dry = t.json(&["machine", "rm", "@lab", "--dry-run"]);
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(dry["events"].as_array().unwrap().len(), 3, "{dry}");
    assert_eq!(dry["needs_confirmation"], true, "{dry}");
    assert_eq!(t.event_count(), n, "nothing appended");
    assert!(t.path(&crate::util::pxe(&mac(2))).exists());
    t.ok(&["machine", "rm", "@lab", "--yes"]);
    assert_eq!(t.event_count(), n + 3);
    let out = t.ok(&["machine", "restore", "lab02"]);
    assert!(out.contains("restored"), "{out}");
    assert!(t.path(&crate::util::pxe(&mac(2))).exists());
}

#[test]
fn item_6_machine_restore_brings_back_name_ip_and_group() {
    let t = lab();
    t.ok(&["group", "add", "other"]);
    t.ok(&["rootdev", "set", "lab02", "/dev/sda2"]);
    t.ok(&["policy", "lab02", "ltsp"]);
    let was = t.json(&["show", "lab02"])["machine"].clone();
    let pxe = t.file(&crate::util::pxe(&mac(2)));
    t.ok(&["machine", "rm", "lab02"]);
    assert!(!t.path(&crate::util::pxe(&mac(2))).exists());
    assert!(!t.file("nodes/lab").contains("lab02"));
    // By the name it had.
    let out = t.ok(&["machine", "restore", "lab02"]);
    assert!(out.contains("restored"), "{out}");
    let now = t.json(&["show", "lab02"])["machine"].clone();
    for field in [
        "mac",
        "name",
        "group",
        "ip",
        "policy",
        "effective_policy",
        "rootdev",
        "registered",
    ] {
        assert_eq!(now[field], was[field], "{field}: {now}");
    }
    assert_eq!(
        t.file(&crate::util::pxe(&mac(2))),
        pxe,
        "its boot entry is back"
    );
    assert!(t.file("nodes/lab").contains("lab02"));
    assert!(t.file("hosts/nmt.hosts").contains("10.0.0.2"));
    // The log says what happened: the removal kept it, a new event brought it back.
    let export = t.ok(&["journal", "export", "--machine", &mac(2)]);
    let restored = export
        .lines()
        .find(|l| l.contains(r#""type":"MachineRestored""#))
        .expect("a MachineRestored event");
    let removed = export
        .lines()
        .find(|l| l.contains(r#""type":"MachineRemoved""#))
        .expect("a MachineRemoved event");
    let removed: serde_json::Value = serde_json::from_str(removed).unwrap();
    let restored: serde_json::Value = serde_json::from_str(restored).unwrap();
    assert_eq!(restored["event"]["removed"], removed["seq"], "{restored}");
    assert_eq!(removed["event"]["was"]["name"], "lab02", "{removed}");
    assert_eq!(removed["event"]["was"]["group"], "lab", "{removed}");
    assert_eq!(removed["event"]["was"]["ip"], "10.0.0.2", "{removed}");
    let hist = t.ok(&["history", "lab02"]);
    assert!(hist.contains("restored as it was before event"), "{hist}");
    assert!(verify_ok(&t));

    // Refusals, each with what to do.
    let no = t.fails(&["machine", "restore", &mac(2)]);
    assert!(no.contains("is registered"), "{no}");
    let no = t.fails(&["machine", "restore", &mac(9)]);
    assert!(no.contains("never removed"), "{no}");
    let no = t.fails(&["machine", "restore", "nosuchname"]);
    assert!(no.contains("no removed machine was named"), "{no}");
    // Its old name went to another machine meanwhile.
    t.ok(&["machine", "rm", "lab01"]);
    t.ok(&["machine", "add", &mac(7), "--name", "lab01"]);
    let n = t.event_count();
    let no = t.fails(&["machine", "restore", &mac(1)]);
    assert!(no.contains("lab01") && no.contains(&mac(7)), "{no}");
    assert_eq!(t.event_count(), n, "refused: nothing appended");
    // Its old group is gone: --group says where it goes.
    t.ok(&["machine", "rm", "lab03"]);
    t.ok(&["group", "rm", "lab", "--to", "other"]);
    let no = t.fails(&["machine", "restore", "lab03"]);
    assert!(
        no.contains("no longer exists") && no.contains("--group"),
        "{no}"
    );
    t.ok(&["machine", "restore", "lab03", "--group", "other"]);
    let m = t.json(&["show", "lab03"])["machine"].clone();
    assert_eq!(m["group"], "other", "{m}");
    assert_eq!(m["ip"], "10.0.0.3", "{m}");
    assert!(verify_ok(&t));
}

fn verify_ok(t: &Nmt) -> bool {
    t.ok(&["verify"]).starts_with("verified:")
}

#[test]
fn item_5_every_change_prints_what_machines_will_boot() {
    let t = lab();
    t.ok(&["group", "add", "thin", "--policy", "ltsp"]);
    let out = t.ok(&["policy", "@lab", "install", "--yes"]);
    assert!(
        out.contains("3 machines will now install at next boot: lab01, lab02, lab03"),
        "{out}"
    );
    // The same in --json, structured.
    let v = t.json(&["assign", "lab01,lab03", "thin"]);
    let boot = v["impact"]["boot"].as_array().unwrap();
    assert_eq!(boot.len(), 1, "{v}");
    assert_eq!(boot[0]["policy"], "ltsp", "{v}");
    assert_eq!(boot[0]["erases_disk"], false, "{v}");
    let names: Vec<&str> = boot[0]["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lab01", "lab03"], "{v}");
    // A one-shot, a machine's own policy: the machines that change, only.
    let out = t.ok(&["policy", "lab02", "restore-image:lab", "--once"]);
    assert!(
        out.contains("1 machine will now restore image lab at next boot: lab02"),
        "{out}"
    );
    // Nothing changes for any machine: no such line.
    let out = t.ok(&["policy", "lab02", "restore-image:lab", "--once"]);
    assert!(!out.contains("at next boot"), "{out}");
    let out = t.ok(&["name", "lab01", "thin01"]);
    assert!(!out.contains("at next boot"), "{out}");
    // A group removed sends its members somewhere: what they boot there is said.
    t.ok(&["group", "add", "g2", "--policy", "ltsp"]);
    let out = t.ok(&["assign", "thin01", "g2"]);
    assert!(!out.contains("at next boot"), "ltsp there too: {out}");
    let out = t.ok(&["group", "rm", "g2", "--to", "localboot"]);
    assert!(
        out.contains("1 machine will now boot from the local disk at next boot: thin01"),
        "{out}"
    );
}

/// Every file under the state directory but the store and nmt's own bookkeeping, by path
/// relative to it, with its bytes.
fn files(t: &Nmt) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(&t.state(), &mut all);
    all.into_iter()
        .map(|p| {
            let rel = p.strip_prefix(t.state()).unwrap().display().to_string();
            (rel, std::fs::read(&p).unwrap())
        })
        .filter(|(rel, _)| {
            !["nmt.redb", "rendered-seq", "installer-password"].contains(&rel.as_str())
        })
        .collect()
}

/// Paths of a reply's JSON list, relative to the state directory.
fn rel_paths(t: &Nmt, list: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let state = t.state();
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|p| {
            std::path::Path::new(p.as_str().unwrap())
                .strip_prefix(&state)
                .unwrap_or_else(|_| panic!("{p} is not under {}", state.display()))
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn item_6_dry_run_appends_nothing_and_shows_events_and_files() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(50)]);
    let table = t.dir.join("nodes.csv");
    std::fs::write(
        &table,
        format!(
            "mac,name,ip,group\n{},,10.0.0.2,lab\n{},c3,,lab\n",
            mac(2),
            mac(3)
        ),
    )
    .unwrap();
    let log = t.dir.join("dnsmasq.log");
    std::fs::write(
        &log,
        "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) 52:54:00:00:00:61\n",
    )
    .unwrap();
    let (m1, m2, m3) = (mac(1), mac(2), mac(3));
    // Every command that changes something, in an order where each one does.
    let steps: Vec<(Vec<&str>, Option<&str>)> = vec![
        (vec!["group", "add", "lab", "--policy", "localboot"], None),
        (vec!["group", "add", "other"], None),
        (
            vec![
                "machine", "add", &m1, "--name", "a1", "--group", "lab", "--ip", "10.0.0.1",
            ],
            None,
        ),
        (vec!["machine", "import", table.to_str().unwrap()], None),
        (vec!["name", &m2, "b2"], None),
        (vec!["name", "@lab", "--pattern", "lab{01}"], None),
        (vec!["assign", &m3, "other"], None),
        (vec!["policy", &m1, "ltsp"], None),
        (vec!["policy", "@lab", "install"], None),
        (vec!["policy", "@lab", "restore-image:lab", "--once"], None),
        (vec!["rootdev", "set", &m1, "/dev/sda1"], None),
        (vec!["rootdev", "rm", &m1], None),
        (
            vec![
                "profile",
                "add",
                "memtest",
                "--kind",
                "custom",
                "--kernel",
                "memtest.bin",
            ],
            None,
        ),
        (vec!["profile", "rm", "memtest"], None),
        (vec!["installed", &m3, "/dev/sda1"], None),
        (vec!["machine", "rm", "@lab"], None),
        (vec!["machine", "restore", &m1], None),
        (vec!["group", "rm", "other", "--to", "lab"], None),
        (vec!["installer-password", "set"], Some("correct horse\n")),
        (vec!["installer-password", "rotate"], None),
        (vec!["installer-password", "ack"], None),
        (vec!["render"], None),
        (vec!["replay", "logs", log.to_str().unwrap()], None),
    ];
    for (args, stdin) in steps {
        let what = args.join(" ");
        if args == ["render"] {
            // Something for `render` to do.
            std::fs::remove_file(t.path("nodes/lab")).unwrap();
        }
        let run = |extra: &[&str]| {
            let mut a = args.clone();
            a.extend(extra);
            match stdin {
                Some(input) => t.ok_stdin(&a, input),
                None => t.ok(&a),
            }
        };
        let log_before = kinds(&t);
        let files_before = files(&t);
        let dry: serde_json::Value = serde_json::from_str(&run(&["--dry-run", "--json"])).unwrap();
        assert_eq!(dry["dry_run"], true, "{what}: {dry}");
        assert_eq!(kinds(&t), log_before, "{what}: a dry run appends nothing");
        assert!(
            files(&t) == files_before,
            "{what}: a dry run writes nothing"
        );
        // The same in words: the events with their JSON, the files.
        let text = run(&["--dry-run"]);
        assert!(
            text.starts_with("dry run: nothing was appended"),
            "{what}: {text}"
        );
        let planned: Vec<String> = dry["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"]["type"].as_str().unwrap().to_string())
            .collect();
        for (k, e) in planned.iter().zip(dry["events"].as_array().unwrap()) {
            let line = format!("#{} {k} {{\"type\":\"{k}\"", e["seq"]);
            assert!(text.contains(&line), "{what}: no {line:?} in\n{text}");
        }
        for p in rel_paths(&t, &dry["files"]["written"]) {
            assert!(text.contains(&p), "{what}: {p} not in\n{text}");
        }
        // Done for real: exactly the events and the files the dry run showed.
        run(&["--yes"]);
        let appended = kinds(&t)[log_before.len()..].to_vec();
        assert_eq!(appended, planned, "{what}: what was appended");
        // Every step changes something: events, or (these two) only files.
        match what.as_str() {
            "render" => assert!(!dry["files"]["written"].as_array().unwrap().is_empty()),
            "installer-password ack" => {}
            _ => assert!(!appended.is_empty(), "{what}: the step appends events"),
        }
        let files_after = files(&t);
        let written: std::collections::BTreeSet<String> = files_after
            .iter()
            .filter(|(p, b)| files_before.get(*p) != Some(*b))
            .map(|(p, _)| p.clone())
            .collect();
        let removed: std::collections::BTreeSet<String> = files_before
            .keys()
            .filter(|p| !files_after.contains_key(*p))
            .cloned()
            .collect();
        assert_eq!(
            written,
            rel_paths(&t, &dry["files"]["written"]),
            "{what}: the files written"
        );
        assert_eq!(
            removed,
            rel_paths(&t, &dry["files"]["removed"])
                .into_iter()
                .filter(|p| p != "installer-password")
                .collect(),
            "{what}: the files removed"
        );
    }
    assert!(verify_ok(&t));
    // A journal import too: it is checked, and nothing is imported.
    let export = t.dir.join("export.jsonl");
    t.ok(&["journal", "export", export.to_str().unwrap()]);
    let fresh = Nmt::new();
    let out = fresh.ok(&["journal", "import", export.to_str().unwrap(), "--dry-run"]);
    assert!(out.contains("would import"), "{out}");
    assert!(!fresh.state().join("nmt.redb").exists(), "{out}");
    // And an export to a file writes none.
    let other = t.dir.join("other.jsonl");
    t.ok(&["journal", "export", other.to_str().unwrap(), "--dry-run"]);
    assert!(!other.exists());
}

#[test]
fn item_6_on_a_terminal_it_lists_the_machines_and_asks() {
    crate::util::require_tool("script", "bsdutils");
    let t = lab();
    // `script` runs nmt on a pseudo-terminal, typing the answer.
    let on_a_terminal = |answer: &str| {
        let cmd = format!("{} machine rm @lab", env!("CARGO_BIN_EXE_nmt"));
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("NMT_STATE", t.state())
            .env("TZ", "UTC")
            .stdin({
                let typed = t.dir.join("typed");
                std::fs::write(&typed, answer).unwrap();
                std::fs::File::open(&typed).unwrap()
            })
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let n = t.event_count();
    let (code, out) = on_a_terminal("n\n");
    assert!(out.contains("Proceed? [y/N]"), "{out}");
    assert!(out.contains("lab03 (52:54:00:00:00:03)"), "{out}");
    assert!(out.contains("nothing was done"), "{out}");
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(t.event_count(), n);
    let (code, out) = on_a_terminal("y\n");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("removed 3 machines"), "{out}");
    assert_eq!(t.event_count(), n + 3);
}
