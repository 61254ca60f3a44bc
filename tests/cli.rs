//! Edges of the command line: refusals append nothing, hostile input, MAC spellings,
//! concurrency, drift, stale files, help.

use crate::util::{Nmt, TestDir, dhcpd_conf, mac, pxe, require_tool};

#[test]
fn mac_spellings_are_accepted_and_garbage_refused() {
    let t = Nmt::new();
    t.ok(&["machine", "add", "52-54-00-AB-CD-01"]);
    t.ok(&["machine", "add", "5254.00ab.cd02"]);
    let m = t.json(&["machines"]);
    assert_eq!(m[0]["mac"], "52:54:00:ab:cd:01");
    assert_eq!(m[1]["mac"], "52:54:00:ab:cd:02");
    for bad in [
        "52:54:00:zz:00:01",
        "52:54:00:00:01",
        "525400000001",
        "node1",
    ] {
        let err = t.fails(&["machine", "add", bad]);
        assert!(err.contains("is not a MAC address"), "{bad}: {err}");
    }
}

#[test]
fn a_refused_command_appends_nothing_and_says_what_to_do() {
    let t = Nmt::new();
    t.ok(&["group", "add", "lab"]);
    t.ok(&[
        "machine",
        "add",
        &mac(1),
        "--name",
        "node001",
        "--group",
        "lab",
    ]);
    let before = t.event_count();
    let files_before = t.file(&pxe(&mac(1)));
    let cases: &[(&[&str], &str)] = &[
        (
            &["assign", "node001", "nogroup"],
            "create it with `nmt group add nogroup`",
        ),
        (
            &["assign", "node002", "unknown"],
            "no machine named node002; the only named machine is node001",
        ),
        (
            &["machine", "add", &mac(1)],
            "already registered as node001",
        ),
        (
            &["machine", "add", &mac(2), "--name", "node001"],
            "already belongs to",
        ),
        (
            &["machine", "add", &mac(2), "--ip", "10.0.0.300"],
            "is not an IPv4 address",
        ),
        (
            &["policy", "node001", "install:nope"],
            "define one with `nmt profile add nope",
        ),
        (
            &["policy", "node001", "boot-windows"],
            "Policies are localboot",
        ),
        (
            &["policy", "@localboot", "ltsp"],
            "always boots the local disk",
        ),
        (&["group", "rm", "unknown"], "built-in group"),
        (&["group", "add", "a/b"], "not a valid group name"),
        (&["name", "node001", "x;reboot"], "not a valid machine name"),
        (
            &["rootdev", "set", "node001", "/dev/../etc/passwd"],
            "is not a root device",
        ),
        (&["installed", "node001", "sda1"], "is not a root device"),
        (&["assign", "node[1-", "unknown"], "column"),
    ];
    for (args, needle) in cases {
        let err = t.fails(args);
        assert!(err.contains(needle), "nmt {}: {err}", args.join(" "));
    }
    assert_eq!(t.event_count(), before, "refusals appended events");
    assert_eq!(t.file(&pxe(&mac(1))), files_before);
}

#[test]
fn group_rm_with_members_needs_force() {
    let t = Nmt::new();
    t.ok(&["group", "add", "lab", "--policy", "ltsp"]);
    t.ok(&["machine", "add", &mac(1), "--group", "lab"]);
    let err = t.fails(&["group", "rm", "lab"]);
    assert!(
        err.contains("still has 1 member(s)") && err.contains("--force"),
        "{err}"
    );
    let out = t.ok(&["group", "rm", "lab", "--force"]);
    assert!(out.contains("1 machine moved to unknown"), "{out}");
    assert_eq!(t.json(&["machines"])[0]["group"], "unknown");
    assert!(
        !t.path("nodes/lab").exists(),
        "the group's node list goes with it"
    );
    let groups = t.json(&["group", "list"]);
    let names: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["localboot", "unknown"]);
}

#[test]
fn hostile_profile_text_cannot_reach_a_boot_file() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(1)]);
    for args in [
        "quiet\nLABEL evil",
        "x\" ; reboot",
        "$(reboot)",
        "a && chain http://evil/",
        "{nothere}",
    ] {
        let err = t.fails(&[
            "profile", "add", "evil", "--kind", "custom", "--kernel", "vmlinuz", "--args", args,
        ]);
        assert!(err.contains("refused"), "{args:?}: {err}");
    }
    let err = t.fails(&[
        "profile",
        "add",
        "evil",
        "--kind",
        "custom",
        "--kernel",
        "../../etc/shadow",
    ]);
    assert!(err.contains("not a usable boot file path"), "{err}");
    // A legitimate custom entry works end to end.
    t.ok(&[
        "profile",
        "add",
        "memtest",
        "--kind",
        "custom",
        "--kernel",
        "memtest86+.bin",
        "--args",
        "console=ttyS0,115200n8",
    ]);
    t.ok(&["policy", &mac(1), "custom:memtest"]);
    let f = t.file(&pxe(&mac(1)));
    assert!(f.contains("KERNEL memtest86+.bin"), "{f}");
    assert!(f.contains("console=ttyS0,115200n8"), "{f}");
    let err = t.fails(&["profile", "rm", "memtest"]);
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn hostile_names_are_refused_before_any_file() {
    let t = Nmt::new();
    for name in [
        "x\"; } host evil {",
        "../../etc/passwd",
        "a b",
        "node\n01",
        "<script>",
        "node{1}",
    ] {
        let err = t.fails(&["machine", "add", &mac(1), "--name", name]);
        assert!(err.contains("not a valid machine name"), "{name:?}: {err}");
    }
    let err = t.fails(&["group", "add", "x;y"]);
    assert!(err.contains("not a valid group name"), "{err}");
    assert!(!t.path(&pxe(&mac(1))).exists());
}

#[test]
fn item_11_only_init_creates_a_state_and_other_commands_say_how() {
    let t = Nmt::bare();
    let m = mac(1);
    for args in [
        vec!["machines"],
        vec!["machine", "add", &m],
        vec!["policy", "@unknown", "install"],
        vec!["group", "add", "lab"],
        vec!["render"],
    ] {
        let err = t.fails(&args);
        assert!(err.contains("no nmt state in"), "{args:?}: {err}");
        assert!(err.contains("nothing was changed"), "{args:?}: {err}");
        assert!(err.contains("nmt init --state"), "{args:?}: {err}");
        assert!(
            !t.state().join("nmt.redb").exists(),
            "{args:?} created a store"
        );
    }
    let out = t.ok(&["init", "--dry-run"]);
    assert!(out.contains("nothing was created"), "{out}");
    assert!(!t.state().exists(), "a dry run creates nothing");
    let out = t.ok(&["init"]);
    assert!(out.contains("created a new nmt state in"), "{out}");
    assert!(out.contains("installer password"), "{out}");
    let password = std::fs::read_to_string(t.state().join("installer-password")).unwrap();
    assert!(out.contains(password.trim()), "{out}");
    let events = || {
        t.ok(&["journal", "export"])
            .lines()
            .filter(|l| !l.contains("\"trailer\""))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["type"].clone())
            .collect::<Vec<_>>()
    };
    let first = events();
    assert_eq!(first[0], "StoreCreated", "{first:?}");
    assert!(
        first.iter().any(|k| k == "InstallerPasswordSet"),
        "{first:?}"
    );
    // Again: nothing changes, and it says so.
    let again = t.ok(&["init"]);
    assert!(again.contains("already holds an nmt state"), "{again}");
    assert_eq!(events(), first);
    let json = t.json(&["init"]);
    assert_eq!(json["created"], false);
    // Now commands work on it.
    t.ok(&["machine", "add", &m]);

    let u = Nmt::bare();
    let json = u.json(&["init"]);
    assert_eq!(json["created"], true, "{json}");
    assert!(
        json["installer_password"]
            .as_str()
            .is_some_and(|p| p.len() >= 8)
    );
}

#[test]
fn two_commands_at_once_both_succeed() {
    let t = Nmt::new();
    t.ok(&["group", "add", "lab"]);
    let mut children = Vec::new();
    for n in 1..=12u32 {
        children.push(
            t.cmd(&["machine", "add", &mac(n), "--group", "lab"])
                .output(),
        );
    }
    // Launch them truly concurrently.
    let handles: Vec<_> = (1..=12u32)
        .map(|n| {
            t.cmd(&["machine", "add", &mac(100 + n), "--group", "lab"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for h in handles {
        let out = h.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for c in children {
        assert!(c.unwrap().status.success());
    }
    assert_eq!(t.json(&["machines", "@lab"]).as_array().unwrap().len(), 24);
    assert_eq!(
        t.file("nodes/lab")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count(),
        0
    );
}

#[test]
fn a_busy_store_times_out_with_a_reason() {
    let t = Nmt::new();
    t.ok(&["group", "add", "lab"]);
    // Hold the store open from this process.
    let _held = nmt::Engine::open(&nmt::OpenOptions {
        state_dir: t.state(),
        config: None,
        wait: std::time::Duration::from_secs(1),
        create: false,
    })
    .unwrap();
    let err = t.fails(&["--wait", "0.3", "machines"]);
    assert!(err.contains("in use by another nmt process"), "{err}");
    assert!(err.contains("--wait"), "{err}");
}

#[test]
fn render_check_reports_drift_and_render_repairs_it() {
    let t = Nmt::new();
    t.ok(&["group", "add", "lab"]);
    t.ok(&["machine", "add", &mac(1), "--name", "a", "--group", "lab"]);
    t.ok(&["machine", "add", &mac(2), "--name", "b", "--group", "lab"]);
    assert!(t.cmd(&["render", "--check"]).status().unwrap().success());
    std::fs::write(t.path(&pxe(&mac(1))), "tampered\n").unwrap();
    std::fs::remove_file(t.path("dhcp/dhcpd-nmt.conf")).unwrap();
    let stale = t.path("tftp/pxelinux.cfg/01-52-54-00-99-99-99");
    std::fs::write(&stale, "# generated by nmt for a machine long gone\n").unwrap();
    let mine = t.path("tftp/pxelinux.cfg/01-52-54-00-88-88-88");
    std::fs::write(&mine, "# the admin's own file\n").unwrap();
    let out = t.cmd(&["render", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("differs") && text.contains("01-52-54-00-00-00-01"),
        "{text}"
    );
    assert!(
        text.contains("missing") && text.contains("dhcpd-nmt.conf"),
        "{text}"
    );
    assert!(
        text.contains("stale") && text.contains("01-52-54-00-99-99-99"),
        "{text}"
    );
    assert!(
        !text.contains("88-88-88"),
        "files nmt did not write are left alone: {text}"
    );
    t.ok(&["render"]);
    assert!(t.cmd(&["render", "--check"]).status().unwrap().success());
    assert!(!stale.exists());
    assert!(mine.exists());
    assert!(t.file(&pxe(&mac(1))).contains("generated by nmt"));
}

#[test]
fn removing_a_machine_removes_its_files() {
    let t = Nmt::new();
    t.ok(&["group", "add", "lab"]);
    t.ok(&[
        "machine",
        "add",
        &mac(1),
        "--name",
        "gone",
        "--ip",
        "10.0.0.9",
        "--group",
        "lab",
    ]);
    assert!(t.path(&pxe(&mac(1))).exists());
    assert!(t.file("hosts/nmt.hosts").contains("10.0.0.9\tgone"));
    let out = t.ok(&["machine", "rm", "gone"]);
    assert!(out.contains("removed 1 machine"), "{out}");
    assert!(!t.path(&pxe(&mac(1))).exists());
    assert!(!t.file("hosts/nmt.hosts").contains("gone"));
    assert!(!t.file("dhcp/dhcpd-nmt.conf").contains(&mac(1)));
    // Its history survives.
    let h = t.ok(&["history", &mac(1)]);
    assert!(h.contains("removed"), "{h}");
}

#[test]
fn import_is_all_or_nothing() {
    let t = Nmt::new();
    t.ok(&["group", "add", "lab"]);
    let dir = TestDir::new();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "mac,name,ip,group\n{},n1,10.0.0.1,lab\n# a comment\nzz:zz,n2,,lab\n{},n3,,nolab\n",
            mac(1),
            mac(3)
        ),
    )
    .unwrap();
    let before = t.event_count();
    let err = t.fails(&["machine", "import", bad.to_str().unwrap()]);
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert_eq!(t.event_count(), before);
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        format!("group,mac,name\nlab,{},n1\n,{},n2\n", mac(1), mac(2)),
    )
    .unwrap();
    t.ok(&["machine", "import", good.to_str().unwrap()]);
    let m = t.json(&["machines"]);
    assert_eq!(m[0]["name"], "n1");
    assert_eq!(m[0]["group"], "lab");
    assert_eq!(m[1]["group"], "unknown");
}

#[test]
fn a_table_wrong_throughout_lists_twenty_bad_rows_and_counts_the_rest() {
    let t = Nmt::new();
    let dir = TestDir::new();
    let table = dir.path().join("bad.csv");
    let rows: String = (1..=500)
        .map(|n| format!("{},n{n},,nolab\n", mac(n)))
        .collect();
    std::fs::write(&table, rows).unwrap();
    let err = t.fails(&["machine", "import", table.to_str().unwrap()]);
    assert!(err.contains("line 20:"), "{err}");
    assert!(!err.contains("line 21:"), "{err}");
    assert!(
        err.contains("and 480 more bad rows, lines 21 to 500"),
        "{err}"
    );
    assert!(err.lines().count() < 30, "{err}");
}

#[test]
fn every_command_has_help_with_examples() {
    let t = Nmt::new();
    let top = t.ok(&["--help"]);
    assert!(top.contains("Examples:"), "{top}");
    for cmd in [
        vec!["machine", "add"],
        vec!["machine", "import"],
        vec!["name"],
        vec!["assign"],
        vec!["policy"],
        vec!["machines"],
        vec!["rootdev"],
        vec!["profile", "add"],
        vec!["installed"],
        vec!["history"],
        vec!["show"],
        vec!["render"],
        vec!["config"],
        vec!["machine", "rm"],
        vec!["machine", "restore"],
        vec!["group", "add"],
        vec!["group", "rm"],
        vec!["group", "list"],
        vec!["profile", "rm"],
        vec!["profile", "list"],
        vec!["journal", "export"],
        vec!["installer-password", "show"],
        vec!["installer-password", "ack"],
        vec!["installer-password", "set"],
        vec!["installer-password", "rotate"],
    ] {
        let mut a = cmd.clone();
        a.push("--help");
        let h = t.ok(&a);
        assert!(h.contains("Example"), "nmt {}: {h}", cmd.join(" "));
    }
}

#[test]
fn show_prints_the_machine_and_its_boot_entry() {
    let t = Nmt::new();
    t.ok(&[
        "machine",
        "add",
        &mac(1),
        "--name",
        "lab07",
        "--ip",
        "10.0.0.7",
    ]);
    t.ok(&["policy", "lab07", "ltsp"]);
    let s = t.ok(&["show", "lab07"]);
    assert!(s.contains("policy       ltsp (its own)"), "{s}");
    assert!(s.contains("KERNEL ltsp/x86_64/vmlinuz"), "{s}");
    let j = t.json(&["show", "lab07"]);
    assert_eq!(j["machine"]["ip"], "10.0.0.7");
    assert_eq!(j["boot_entry"]["policy"], "ltsp");
}

#[test]
fn dhcp_is_checked_and_reloaded_only_when_its_file_changes() {
    require_tool("/usr/sbin/dhcpd", "isc-dhcp-server");
    let t = Nmt::bare();
    std::fs::create_dir_all(t.state()).unwrap();
    let include = t.path("dhcp/dhcpd-nmt.conf");
    let conf = t.dir.path().join("dhcpd.conf");
    std::fs::write(&conf, dhcpd_conf(&include)).unwrap();
    let reloads = t.dir.path().join("reloads");
    let write_config = |check: &str| {
        std::fs::write(
            t.path("nmt.toml"),
            format!(
                "[hooks]\ndhcpd_check = \"{check}\"\ndhcpd_reload = \"echo reload >> {}\"\n",
                reloads.display()
            ),
        )
        .unwrap();
    };
    write_config(&format!("/usr/sbin/dhcpd -t -4 -cf {}", conf.display()));
    let count = || {
        std::fs::read_to_string(&reloads)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    t.ok(&["init"]);
    assert_eq!(count(), 1, "a new state writes its (empty) include once");
    t.ok(&["group", "add", "lab"]);
    assert_eq!(count(), 1, "a group leaves DHCP alone");
    t.ok(&["machine", "add", &mac(1), "--name", "a"]);
    assert_eq!(count(), 2, "a new host: checked and reloaded");
    t.ok(&["policy", "a", "ltsp"]);
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["assign", "a", "lab"]);
    assert_eq!(count(), 2, "policy and group changes leave DHCP alone");
    t.ok(&["name", "a", "b"]);
    assert_eq!(count(), 3, "a new host name is a DHCP fact");

    // A check that fails keeps the previous file, and nothing is reloaded.
    write_config("echo 'line 3: semicolon expected.' >&2; exit 1");
    let before = t.file("dhcp/dhcpd-nmt.conf");
    let err = t.fails(&["machine", "add", &mac(2), "--name", "c"]);
    assert!(err.contains("dhcpd rejected the new"), "{err}");
    assert!(err.contains("semicolon expected"), "{err}");
    assert!(err.contains("the previous file stays in place"), "{err}");
    assert_eq!(t.file("dhcp/dhcpd-nmt.conf"), before);
    assert_eq!(count(), 3);
    // The change itself is recorded, and `render --check` shows the file lags.
    assert_eq!(t.json(&["machines"]).as_array().unwrap().len(), 2);
    let out = t.cmd(&["render", "--check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn item_12_a_closed_stdout_ends_the_command_quietly() {
    use std::process::Stdio;
    let t = Nmt::new();
    t.ok(&["group", "add", "lab"]);
    for n in 1..=40 {
        t.ok(&["machine", "add", &mac(n), "--group", "lab"]);
    }
    for args in [
        vec!["journal", "export"],
        vec!["journal", "export", "--json"],
        vec!["machines"],
        vec!["machines", "--json"],
        vec!["history", &mac(1)],
        vec!["group", "list"],
        vec!["config"],
        vec!["config", "--default"],
        vec!["verify"],
    ] {
        let mut child = t
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -c 0`: the reader is gone before the command writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.is_empty(),
            "nmt {}: says nothing: {stderr}",
            args.join(" ")
        );
        assert!(
            matches!(out.status.code(), Some(0) | Some(141)),
            "nmt {}: {:?}",
            args.join(" "),
            out.status
        );
    }
}

#[test]
fn item_12_an_empty_group_is_a_valid_selection() {
    let t = Nmt::new();
    t.ok(&["group", "add", "empty"]);
    assert_eq!(t.json(&["machines", "@empty"]), serde_json::json!([]));
    t.ok(&["machines", "@empty"]);
    let err = t.fails(&["machines", "@nosuch"]);
    assert!(err.contains("no group named"), "{err}");
}

#[test]
fn item_12_history_refuses_an_unknown_kind() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(1), "--name", "node1"]);
    let err = t.fails(&["history", "node1", "--kind", "NoSuch"]);
    assert!(err.contains("NoSuch"), "{err}");
    for known in ["MachineRegistered", "DhcpSeen", "InstallReported"] {
        assert!(err.contains(known), "lists the known kinds: {err}");
    }
    // Known kinds, in any case, still filter.
    let h = t.json(&["history", "node1", "--kind", "machineregistered"]);
    assert_eq!(h.as_array().unwrap().len(), 1, "{h}");
}

#[test]
fn item_1_a_failing_dhcpd_check_hook_loses_no_command() {
    let t = Nmt::bare();
    std::fs::create_dir_all(t.state()).unwrap();
    std::fs::write(t.path("nmt.toml"), "[hooks]\ndhcpd_check = \"false\"\n").unwrap();
    // The new state is recorded, and its password shown, though its files could not be.
    let init = t.cmd(&["init"]).output().unwrap();
    assert_eq!(init.status.code(), Some(1));
    let (out, err) = (
        String::from_utf8_lossy(&init.stdout),
        String::from_utf8_lossy(&init.stderr),
    );
    assert!(
        out.contains("the installer password of installed machines"),
        "{out}"
    );
    assert!(err.contains("the new state is recorded"), "{err}");
    let mut errs = Vec::new();
    for i in 1..=3 {
        let name = format!("n{i}");
        let err = t.fails(&["machine", "add", &mac(i), "--name", &name]);
        assert!(err.contains("is recorded"), "{err}");
        assert!(err.contains("dhcpd rejected the new"), "what failed\n{err}");
        errs.push(err);
    }
    // Every command's own change is in the journal, and the store was created once.
    let names: Vec<String> = t
        .json(&["machines"])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    let kinds: Vec<String> = t
        .ok(&["journal", "export"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["type"].to_string())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.contains("StoreCreated") || k.contains("InstallerPasswordSet"))
            .count(),
        2,
        "{kinds:?}"
    );
    assert!(!errs[0].contains("the installer password of installed machines"));
}

#[test]
fn item_13_multicast_broadcast_and_zero_macs_are_refused() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(1), "--name", "node001"]);
    let before = t.event_count();
    for bad in [
        "ff:ff:ff:ff:ff:ff",
        "00:00:00:00:00:00",
        "01:00:5e:00:00:01",
        "33-33-00-00-00-01",
    ] {
        let err = t.fails(&["machine", "add", bad]);
        assert!(err.contains("which no network card has"), "{bad}: {err}");
        let err = t.fails(&["policy", bad, "localboot"]);
        assert!(err.contains("which no network card has"), "{bad}: {err}");
        let err = t.fails(&["installed", bad, "/dev/sda1"]);
        assert!(err.contains("which no network card has"), "{bad}: {err}");
        let err = t.fails(&["policy", &format!("node001,{bad}"), "localboot"]);
        assert!(err.contains("which no network card has"), "{bad}: {err}");
        let table = t.dir.join("nodes.csv");
        std::fs::write(&table, format!("{},node002\n{bad},node003\n", mac(2))).unwrap();
        let err = t.fails(&["machine", "import", table.to_str().unwrap()]);
        assert!(
            err.contains("line 2") && err.contains("which no network card has"),
            "{bad}: {err}"
        );
    }
    assert_eq!(t.event_count(), before, "refusals append nothing");
    // A unicast address with the locally administered bit is a machine's own.
    t.ok(&["machine", "add", "02:00:00:00:00:01"]);
}

#[test]
fn item_13_network_broadcast_and_special_addresses_are_refused_as_fixed_ips() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(9)]);
    let before = t.event_count();
    for bad in [
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "239.1.2.3",
        "127.0.0.1",
        "169.254.1.1",
        "240.0.0.1",
        "10.0.0.0",
        "10.0.0.255",
    ] {
        let err = t.fails(&["machine", "add", &mac(1), "--ip", bad]);
        assert!(
            err.contains(&format!("{bad} is "))
                && err.contains("cannot be a machine's fixed address"),
            "{bad}: {err}"
        );
        let table = t.dir.join("nodes.csv");
        std::fs::write(
            &table,
            format!("mac,ip\n{},10.0.0.1\n{},{bad}\n", mac(2), mac(3)),
        )
        .unwrap();
        let err = t.fails(&["machine", "import", table.to_str().unwrap()]);
        assert!(
            err.contains("line 3") && err.contains("cannot be a machine's fixed address"),
            "{bad}: {err}"
        );
    }
    assert_eq!(t.event_count(), before, "refusals append nothing");
    t.ok(&["machine", "add", &mac(1), "--ip", "10.0.1.254"]);
    t.ok(&["machine", "add", &mac(2), "--ip", "192.168.0.1"]);
}

#[test]
fn item_13_replay_logs_refuses_years_outside_1970_to_9999() {
    let t = Nmt::bare();
    let log = t.dir.join("dhcp.log");
    std::fs::write(
        &log,
        "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) 52:54:00:00:00:01\n",
    )
    .unwrap();
    for bad in ["1800", "1969", "10000", "0", "twenty"] {
        let out = t
            .cmd(&["replay", "logs", log.to_str().unwrap(), "--year", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains("between 1970 and 9999"), "{bad}: {err}");
    }
    assert!(!t.state().join("nmt.redb").exists(), "nothing was started");
    t.ok(&["init"]);
    t.ok(&["replay", "logs", log.to_str().unwrap(), "--year", "2025"]);
    assert_eq!(t.json(&["machines"]).as_array().unwrap().len(), 1);
}

#[test]
fn item_10_unknown_config_keys_are_an_error_naming_the_nearest_key() {
    let t = Nmt::new();
    let cfg = t.dir.join("nmt.toml");
    for (text, want) in [
        ("[render]\nnext_sever = \"10.0.0.1\"\n", "`next_server`"),
        ("[paths]\ntftp_rot = \"/srv/tftp\"\n", "`tftp_root`"),
        ("[rendr]\nhttp_url = \"http://10.0.0.1:8017\"\n", "`render`"),
        ("[daemon]\nlog = [\"/var/log/syslog\"]\n", "`logs`"),
        ("[hooks]\ndhcpd_chek = \"true\"\n", "`dhcpd_check`"),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let err = t.fails(&["--config", cfg.to_str().unwrap(), "config"]);
        assert!(
            err.contains("unknown field") && err.contains(&format!("did you mean {want}?")),
            "{text}: {err}"
        );
    }
}

#[test]
fn item_10_config_default_prints_every_key_the_readme_uses() {
    let t = Nmt::new();
    let out = t.ok(&["config", "--default"]);
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let mut keys = Vec::new();
    for block in readme.split("```toml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        let mut section = "";
        for line in block.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.split(']').next().unwrap();
                continue;
            }
            // Keys there are the site's own names (nmt groups, web users), not nmt's keys.
            if line.starts_with('#') || section == "[access.groups" || section == "[web.users" {
                continue;
            }
            if let Some((key, _)) = line.split_once('=') {
                keys.push(key.trim().to_string());
            }
        }
    }
    assert!(keys.len() > 20, "the README's TOML examples: {keys:?}");
    for key in &keys {
        let found = out.lines().any(|l| {
            let l = l.trim_start_matches("# ");
            l.starts_with(&format!("{key} =")) || l.starts_with(&format!("{key}="))
        });
        assert!(found, "`nmt config --default` lacks {key}:\n{out}");
    }
    // It parses back, as the defaults.
    let cfg = t.dir.join("default.toml");
    std::fs::write(&cfg, &out).unwrap();
    let mut shown = t.json(&["--config", cfg.to_str().unwrap(), "config"]);
    let mut builtin = t.json(&["config"]);
    shown["config_file"] = serde_json::Value::Null;
    builtin["config_file"] = serde_json::Value::Null;
    assert_eq!(shown, builtin);
}

/// The profile `site` as `nmt profile list --json` shows it.
fn site_profile(t: &Nmt) -> serde_json::Value {
    let list = t.json(&["profile", "list"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "site")
        .unwrap()
        .clone()
}

/// Preseed settings: stored with the profile and listed; wrong or secret-bearing ones are
/// refused with what to do, appending nothing; a template file is read by the CLI.
#[test]
fn preseed_settings_are_kept_listed_and_checked() {
    let t = Nmt::new();
    let base = [
        "profile",
        "add",
        "site",
        "--kind",
        "install",
        "--answer",
        "preseed",
        "--kernel",
        "d-i/linux",
        "--initrd",
        "d-i/initrd.gz",
        "--args",
        "url={answer_url}",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str], ok: bool| -> String {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if ok { t.ok(&args) } else { t.fails(&args) }
    };
    let before = t.event_count();
    for (extra, needle) in [
        (vec!["--mirror", "ftp://mirror/debian"], "http://HOST"),
        (
            vec!["--proxy", "http://bob:hunter2@proxy:3128/"],
            "password",
        ),
        (
            vec!["--set", "d-i passwd/root-password password hunter2"],
            "never stored",
        ),
        (
            vec!["--set", "d-i preseed/late_command string reboot"],
            "--late-command",
        ),
        (vec!["--timezone", "Mars/Olympus_Mons"], "time zone"),
        (vec!["--recipe", "lvm"], "atomic, home, multi"),
        (vec!["--late-command", "a\nb"], "one line"),
    ] {
        let err = run(&extra, false);
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(
            !err.contains("hunter2"),
            "a refusal echoes no secret: {err}"
        );
    }
    // Only preseed profiles take them.
    let err = t.fails(&[
        "profile",
        "add",
        "ks",
        "--kind",
        "install",
        "--answer",
        "kickstart",
        "--kernel",
        "k",
        "--locale",
        "de_DE.UTF-8",
    ]);
    assert!(err.contains("--answer preseed"), "{err}");
    assert_eq!(t.event_count(), before, "refusals append nothing");

    run(
        &[
            "--mirror",
            "http://10.0.0.1:8080/debian",
            "--locale",
            "de_DE.UTF-8",
            "--tasks",
            "none",
            "--packages",
            "htop, rsync",
            "--set",
            "d-i clock-setup/ntp boolean false",
        ],
        true,
    );
    let site = site_profile(&t);
    assert_eq!(site["preseed"]["mirror"], "http://10.0.0.1:8080/debian");
    assert_eq!(site["preseed"]["tasks"], serde_json::json!([]));
    assert_eq!(
        site["preseed"]["packages"],
        serde_json::json!(["htop", "rsync"])
    );
    let table = t.ok(&["profile", "list"]);
    assert!(table.contains("--tasks none"), "{table}");

    // A template: read from the file, stored whole, exclusive with the settings.
    let tpl = t.dir.path().join("site.preseed");
    std::fs::write(&tpl, "d-i preseed/late_command string {{late_command}}\n").unwrap();
    let tpl = tpl.to_str().unwrap();
    let err = run(
        &[
            "--replace",
            "--preseed-template",
            tpl,
            "--locale",
            "de_DE.UTF-8",
        ],
        false,
    );
    assert!(err.contains("cannot be combined with --locale"), "{err}");
    run(&["--replace", "--preseed-template", tpl], true);
    let site = site_profile(&t);
    assert_eq!(
        site["preseed"]["template"],
        "d-i preseed/late_command string {{late_command}}\n"
    );
    assert_eq!(site["preseed"]["locale"], serde_json::Value::Null);
    // --replace without settings: nmt's defaults again.
    run(&["--replace"], true);
    let site = site_profile(&t);
    assert_eq!(site["preseed"], serde_json::Value::Null);
    let err = t.fails(&[
        "profile",
        "add",
        "x",
        "--kind",
        "install",
        "--answer",
        "preseed",
        "--kernel",
        "k",
        "--preseed-template",
        "/nonexistent/file",
    ]);
    assert!(err.contains("cannot read the preseed template"), "{err}");
}
