//! Schedules run by the real nmtd, in real time: a run is made at its minute as its owner,
//! its outcome is checked from what the machines did, a one-shot still pending is not set
//! again, and a journal import or a log replay of the same store fires nothing.
//! (The time rules themselves, daylight-saving nights, grace and pause, are tested on a fake
//! clock in `projections/src/schedule.rs` and `src/app/schedule.rs`.)

use std::time::Duration;

use serde_json::Value;

use crate::util::{Daemon, Nmt, append, mac, wait_for};

/// Machine n booting in dnsmasq's words, now: DHCP, then its pxelinux entry over TFTP.
fn boot(n: u32) -> String {
    let stamp = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%:z");
    let m = mac(n);
    let ip = format!("10.0.9.{n}");
    format!(
        "{stamp} boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {m}\n\
         {stamp} boot1 dnsmasq-dhcp[812]: DHCPACK(br0) {ip} {m}\n\
         {stamp} boot1 dnsmasq-tftp[812]: sent /srv/tftp/pxelinux.cfg/01-{} to {ip}\n",
        m.replace(':', "-")
    )
}

/// Only DHCP: the machine asked for an address and went no further.
fn dhcp_only(n: u32) -> String {
    let stamp = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%:z");
    format!(
        "{stamp} boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {}\n",
        mac(n)
    )
}

fn runs(t: &Nmt) -> Value {
    t.json(&["schedule", "runs", "nightly"])
}

fn kinds(t: &Nmt, machine: &str, kind: &str) -> Vec<Value> {
    t.json(&["history", machine, "--kind", kind])
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn nmtd_runs_a_schedule_as_its_owner_checks_what_each_machine_did_and_never_stacks_a_one_shot() {
    let t = Nmt::new();
    let log = t.dir.path().join("dnsmasq.log");
    std::fs::write(&log, "").unwrap();
    let d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    t.ok(&["group", "add", "lab"]);
    for n in 1..=3 {
        t.ok(&[
            "machine",
            "add",
            &mac(n),
            "--name",
            &format!("lab0{n}"),
            "--group",
            "lab",
        ]);
    }
    let out = t.ok(&[
        "schedule",
        "add",
        "nightly",
        "--cron",
        "* * * * *",
        "--tz",
        "Europe/Berlin",
        "--expect",
        "20s",
        "--yes",
        "--",
        "policy",
        "@lab",
        "install",
        "--once",
    ]);
    assert!(out.contains("next run: "), "{out}");
    // Defining it changed no machine: nothing is set until it runs.
    assert!(kinds(&t, "lab01", "MachinePolicySet").is_empty());

    // Run 1, at the next minute.
    wait_for("the first run", Duration::from_secs(75), || {
        runs(&t)["runs"][0]["run"] == 1
    });
    let r = &runs(&t)["runs"][0];
    assert_eq!(r["targeted"], 3, "{r}");
    assert_eq!(r["late"], false, "{r}");
    assert!(r["error"].is_null(), "{r}");
    let owner = nmt::current_actor();
    let actor = format!("schedule nightly (set by {owner})");
    let set = kinds(&t, "lab01", "MachinePolicySet");
    assert_eq!(set.len(), 1, "{set:?}");
    assert_eq!(set[0]["actor"], actor.as_str());
    assert_eq!(set[0]["source"]["stream"], "schedule:nightly");
    let ran = kinds(&t, "lab03", "ScheduleRan");
    assert_eq!(ran.len(), 1, "{ran:?}");
    // The run and its action are one commit: the record directly follows the policies.
    assert_eq!(
        ran[0]["seq"].as_u64().unwrap(),
        set[0]["seq"].as_u64().unwrap() + 3
    );

    // lab01 boots its install entry and reports; lab02 only asks DHCP; lab03 stays off.
    append(&log, &(boot(1) + &dhcp_only(2)));
    wait_for(
        "lab01's boot and lab02's DHCP",
        Duration::from_secs(20),
        || {
            !kinds(&t, "lab01", "BootEntryUsed").is_empty()
                && !kinds(&t, "lab02", "DhcpSeen").is_empty()
        },
    );
    t.ok(&["installed", "lab01", "/dev/sda1"]);

    // The check, 20 s after the run.
    wait_for("the first run's check", Duration::from_secs(40), || {
        !runs(&t)["runs"][0]["checked"].is_null()
    });
    let r = &runs(&t)["runs"][0];
    assert_eq!(r["counts"]["done"], 1, "{r}");
    assert_eq!(r["counts"]["no-report"], 1, "{r}");
    assert_eq!(r["counts"]["never-booted"], 1, "{r}");
    assert_eq!(r["counts"]["failed"], 0, "{r}");
    let not_done: Vec<(&str, &str, bool)> = r["not_done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["outcome"].as_str().unwrap(),
                m["once_pending"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        not_done,
        [
            ("lab02", "no-report", true),
            ("lab03", "never-booted", true)
        ]
    );
    let text = t.ok(&["schedule", "runs", "nightly"]);
    assert!(
        text.contains("1 done, 1 booted but never reported, 1 never booted"),
        "{text}"
    );
    assert!(text.contains("never booted   lab03"), "{text}");
    assert!(text.contains("its one-shot is still pending"), "{text}");
    // Each machine's history has its outcome.
    let h = t.ok(&["history", "lab03"]);
    assert!(h.contains("never booted"), "{h}");
    let h = t.ok(&["history", "lab01"]);
    assert!(h.contains("lab01") || h.contains("done"), "{h}");

    // Run 2: lab01 gets its one-shot again (the first was spent by its boot); lab02 and
    // lab03 still have theirs pending, and are not set a second one.
    wait_for("the second run", Duration::from_secs(75), || {
        runs(&t)["runs"][0]["run"] == 2
    });
    let r = &runs(&t)["runs"][0];
    assert_eq!(r["targeted"], 3, "{r}");
    let carried: Vec<&str> = r["carried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(carried, ["lab02", "lab03"], "{r}");
    assert_eq!(kinds(&t, "lab03", "MachinePolicySet").len(), 1);
    assert_eq!(kinds(&t, "lab01", "MachinePolicySet").len(), 2);
    t.ok(&["schedule", "pause", "nightly"]);
    let list = t.json(&["schedule", "list"]);
    assert_eq!(list[0]["paused"], true, "{list}");
    assert!(list[0]["next"].is_null(), "{list}");
    drop(d);

    // A journal import of this store, then a replay of the same log: nothing fires, and the
    // runs recorded stay exactly as they were.
    t.ok(&["schedule", "resume", "nightly"]);
    let before = t.ok(&["schedule", "runs", "nightly", "--json"]);
    let export = t.dir.path().join("export.jsonl");
    std::fs::write(&export, t.ok(&["journal", "export"])).unwrap();
    let other = Nmt::bare();
    std::fs::create_dir_all(other.state()).unwrap();
    std::fs::copy(t.path("site-key"), other.path("site-key")).unwrap();
    other.ok(&["journal", "import", export.to_str().unwrap()]);
    let schedule_events = |n: &Nmt| {
        n.ok(&["journal", "export"])
            .lines()
            .filter(|l| l.contains(r#""type":"Schedule"#))
            .count()
    };
    let n = schedule_events(&other);
    assert_eq!(n, schedule_events(&t));
    assert_eq!(other.ok(&["schedule", "runs", "nightly", "--json"]), before);
    other.ok(&["replay", "logs", log.to_str().unwrap()]);
    assert_eq!(other.ok(&["schedule", "runs", "nightly", "--json"]), before);
    assert_eq!(schedule_events(&other), n);
}

#[test]
fn schedule_add_refuses_what_it_cannot_run_and_asks_before_erasing_disks() {
    let t = Nmt::new();
    t.ok(&["group", "add", "lab"]);
    for n in 1..=2 {
        t.ok(&["machine", "add", &mac(n), "--group", "lab"]);
    }
    let add = |extra: &[&str]| {
        let mut a = vec!["schedule", "add", "s1", "--cron", "0 2 * * *"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let fails = |extra: &[&str]| {
        let a = add(extra);
        t.fails(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let e = fails(&["--", "machines"]);
    assert!(e.contains("cannot be scheduled"), "{e}");
    let e = fails(&["--", "schedule", "list"]);
    assert!(e.contains("cannot run `nmt schedule`"), "{e}");
    let e = fails(&["--", "polcy", "@lab", "ltsp"]);
    assert!(e.contains("not an nmt command"), "{e}");
    let e = fails(&["--tz", "Mars/Olympus", "--", "policy", "@lab", "ltsp"]);
    assert!(e.contains("is not a time zone"), "{e}");
    let e = t.fails(&[
        "schedule", "add", "s1", "--cron", "0 2 * *", "--", "policy", "@lab", "ltsp",
    ]);
    assert!(e.contains("five fields"), "{e}");
    let e = fails(&["--expect", "soon", "--", "policy", "@lab", "ltsp"]);
    assert!(e.contains("not a duration"), "{e}");
    let e = fails(&["--", "policy", "@nosuch", "ltsp"]);
    assert!(e.contains("nosuch"), "{e}");
    // Erasing disks: the machines it would reach now are listed, and nothing is done
    // without --yes.
    let a = add(&["--", "policy", "@lab", "install", "--once"]);
    let out = t
        .cmd(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schedule s1 runs `nmt policy @lab install --once`; if it ran now")
            && err.contains("2 machines"),
        "{err}"
    );
    assert!(t.json(&["schedule", "list"]).as_array().unwrap().is_empty());
    // A name that exists needs --replace.
    t.ok(&[
        "schedule",
        "add",
        "s1",
        "--cron",
        "0 18 * * 1-5",
        "--",
        "policy",
        "@lab",
        "ltsp",
    ]);
    let e = t.fails(&[
        "schedule",
        "add",
        "s1",
        "--cron",
        "0 7 * * 1-5",
        "--",
        "policy",
        "@lab",
        "localboot",
    ]);
    assert!(e.contains("--replace"), "{e}");
    t.ok(&[
        "schedule",
        "add",
        "s1",
        "--cron",
        "0 7 * * 1-5",
        "--replace",
        "--",
        "policy",
        "@lab",
        "localboot",
    ]);
    let list = t.json(&["schedule", "list"]);
    assert_eq!(list[0]["cron"], "0 7 * * 1-5");
    assert_eq!(list[0]["tz"], "UTC", "the caller's zone (TZ=UTC in tests)");
    let h = t.ok(&["schedule", "rm", "s1"]);
    assert!(h.contains("schedule s1 removed"), "{h}");
    let e = t.fails(&["schedule", "rm", "s1"]);
    assert!(e.contains("no schedule named"), "{e}");
}
