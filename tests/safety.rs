//! Nothing lost, nothing wiped by surprise: regression tests named after the items of the
//! admin-safety review.

use crate::util::Nmt;

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

#[test]
fn item_11_a_user_without_socket_access_is_told_about_the_socket() {
    crate::util::require_root("to run nmt as another user (setpriv)");
    let t = Nmt::new();
    t.ok(&["machine", "add", "52:54:00:00:00:01", "--name", "n1"]);
    let _d = crate::util::Daemon::start(&t, &[]);
    // Anyone may read the state directory's configuration; the socket is 0660 root:root.
    let mut dir = t.state();
    while dir != std::path::Path::new("/") {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o005)).unwrap();
        if !dir.pop() || dir.starts_with("/tmp") && dir.components().count() <= 2 {
            break;
        }
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_nmt"))
        .args(["machines"])
        .env("NMT_STATE", t.state())
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("control socket") && err.contains("permission denied"),
        "the message names the socket: {err}"
    );
    assert!(err.contains("socket_group"), "and says what to do: {err}");
    assert!(!err.contains("nmt.redb"), "not a store error: {err}");
}

#[test]
fn item_12_a_once_revert_is_in_the_history() {
    let t = Nmt::new();
    let m = crate::util::mac(1);
    t.ok(&["group", "add", "lab", "--policy", "localboot"]);
    t.ok(&["machine", "add", &m, "--name", "n1", "--group", "lab"]);
    t.ok(&["policy", "n1", "ltsp", "--once"]);
    // It boots (dnsmasq's log, replayed): the one-shot is used.
    let log = t.dir.path().join("dnsmasq.log");
    std::fs::write(
        &log,
        format!(
            "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPACK(br0) 10.0.9.1 {m}\n\
             Nov 21 02:05:12 boot1 dnsmasq-tftp[812]: sent /srv/tftp/pxelinux.cfg/01-{} to 10.0.9.1\n",
            m.replace(':', "-")
        ),
    )
    .unwrap();
    t.ok(&["replay", "logs", log.to_str().unwrap(), "--year", "2099"]);
    let text = t.ok(&["history", "n1"]);
    let line = text
        .lines()
        .find(|l| l.contains("the one-shot policy"))
        .unwrap_or_else(|| panic!("the revert is in the history:\n{text}"));
    assert!(
        line.contains("pxelinux.cfg/01-"),
        "on the boot that used it: {line}"
    );
    assert!(
        line.contains(
            "the one-shot policy ltsp is used; next boots: localboot (group lab's policy)"
        ),
        "{line}"
    );
    let json = t.json(&["history", "n1"]);
    let spent: Vec<_> = json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.get("one_shot_spent"))
        .collect();
    assert_eq!(spent.len(), 1, "{json}");
    assert_eq!(spent[0]["used"], "ltsp");
    assert_eq!(spent[0]["now"], "localboot");
    assert_eq!(spent[0]["origin"], "group");

    // An install one-shot over a machine's own policy is used by the install report, and the
    // machine goes back to its own policy.
    t.ok(&["policy", "n1", "ltsp"]);
    t.ok(&["policy", "n1", "install", "--once"]);
    t.ok(&["installed", "n1", "/dev/sda1"]);
    let text = t.ok(&["history", "n1"]);
    assert!(
        text.lines().any(|l| l.contains("/dev/sda1")
            && l.contains(
                "the one-shot policy install:default is used; next boots: ltsp (its own policy)"
            )),
        "{text}"
    );
    // A one-shot replaced by the admin is not "used".
    t.ok(&["policy", "n1", "install", "--once"]);
    t.ok(&["policy", "n1", "localboot"]);
    let json = t.json(&["history", "n1"]);
    let n = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("one_shot_spent").is_some())
        .count();
    assert_eq!(n, 2, "{json}");
}

/// One mutating command of the matrix: its arguments and its standard input.
struct Step {
    args: Vec<String>,
    stdin: Option<&'static str>,
}

fn step(args: &[&str]) -> Step {
    Step {
        args: args.iter().map(|a| a.to_string()).collect(),
        stdin: None,
    }
}

/// A state on which every command of [`every_mutating_command`] can succeed: group `lab`
/// (localboot), `n1` in it with an address, an unknown machine, an empty group `g2`, a profile
/// `p2`, a node table and a dnsmasq log to replay.
fn matrix_state(t: &Nmt) {
    use crate::util::mac;
    t.ok(&["group", "add", "lab", "--policy", "localboot"]);
    t.ok(&["group", "add", "g2"]);
    t.ok(&[
        "machine",
        "add",
        &mac(1),
        "--name",
        "n1",
        "--group",
        "lab",
        "--ip",
        "10.0.0.11",
    ]);
    t.ok(&["machine", "add", &mac(2)]);
    t.ok(&[
        "profile", "add", "p2", "--kind", "install", "--kernel", "k", "--initrd", "i", "--answer",
        "preseed",
    ]);
    std::fs::write(
        t.dir.join("table.csv"),
        format!("{},t4,,lab\n{},t5,,lab\n", mac(4), mac(5)),
    )
    .unwrap();
    std::fs::write(
        t.dir.join("dnsmasq.log"),
        format!(
            "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPACK(br0) 10.0.9.6 {}\n",
            mac(6)
        ),
    )
    .unwrap();
}

/// Every command that changes something, each valid on [`matrix_state`] whatever the others
/// did.
fn every_mutating_command(t: &Nmt) -> Vec<Step> {
    use crate::util::mac;
    let table = t.dir.join("table.csv");
    let log = t.dir.join("dnsmasq.log");
    vec![
        step(&["machine", "add", &mac(3), "--name", "n3"]),
        step(&["machine", "import", table.to_str().unwrap()]),
        step(&["name", &mac(2), "n2"]),
        step(&["name", "@unknown", "--pattern", "x{01}"]),
        step(&["assign", "n1", "g2"]),
        step(&["policy", "n1", "ltsp"]),
        step(&["policy", "n1", "install", "--once"]),
        step(&["policy", "@lab", "ltsp"]),
        step(&["policy", "@lab", "localboot", "--members"]),
        step(&["policy", "n1", "inherit"]),
        step(&["rootdev", "set", "n1", "/dev/sda"]),
        step(&["rootdev", "rm", &mac(1)]),
        step(&[
            "profile", "add", "p3", "--kind", "install", "--kernel", "k", "--initrd", "i",
            "--answer", "preseed",
        ]),
        step(&["profile", "rm", "p2"]),
        step(&["installed", &mac(1), "/dev/sda1"]),
        step(&["group", "add", "g3"]),
        step(&["group", "rm", "g2", "--to", "lab"]),
        step(&["machine", "rm", &mac(1)]),
        step(&["render"]),
        step(&["installer-password", "rotate"]),
        Step {
            stdin: Some("a new password\n"),
            ..step(&["installer-password", "set"])
        },
        step(&["installer-password", "ack"]),
        step(&["replay", "logs", log.to_str().unwrap(), "--year", "2099"]),
    ]
}

/// What one command did: its exit status, its messages, and the events it appended.
struct Outcome {
    command: String,
    code: Option<i32>,
    stderr: String,
    appended: usize,
}

fn run_matrix(t: &Nmt) -> Vec<Outcome> {
    use std::io::Write;
    let mut outcomes = Vec::new();
    for s in every_mutating_command(t) {
        let before = t.event_count();
        let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
        let mut child = t
            .cmd(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(s.stdin.unwrap_or("").as_bytes()).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let after = t.event_count();
        assert!(after >= before, "the log only grows");
        outcomes.push(Outcome {
            command: format!("nmt {}", s.args.join(" ")),
            code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            appended: after - before,
        });
    }
    outcomes
}

/// The journal holds exactly what each command said it recorded: a success or "the change is
/// recorded" appended its events; any other failure appended nothing and said so.
fn check_outcomes(outcomes: &[Outcome]) {
    for o in outcomes {
        let said_recorded = o.stderr.contains("is recorded") || o.stderr.contains("are recorded");
        let said_nothing = [
            "nothing was recorded",
            "nothing was changed",
            "refused",
            "render records nothing",
        ]
        .iter()
        .any(|p| o.stderr.contains(p));
        match o.code {
            Some(0) => assert!(
                !said_nothing,
                "{}: succeeded but says otherwise: {}",
                o.command, o.stderr
            ),
            Some(1) if said_recorded => assert!(
                o.appended > 0,
                "{}: says recorded, appended nothing: {}",
                o.command,
                o.stderr
            ),
            Some(1) => {
                assert_eq!(
                    o.appended, 0,
                    "{}: failed yet appended {} events: {}",
                    o.command, o.appended, o.stderr
                );
                assert!(
                    said_nothing,
                    "{}: failed without saying whether anything was recorded: {}",
                    o.command, o.stderr
                );
            }
            other => panic!("{}: exit {other:?}: {}", o.command, o.stderr),
        }
    }
}

#[test]
fn must_show_every_mutating_command_with_a_failing_hook_records_what_it_says() {
    failing_hook_matrix(false);
}

#[test]
fn must_show_every_mutating_command_through_nmtd_with_a_failing_hook_records_what_it_says() {
    failing_hook_matrix(true);
}

fn failing_hook_matrix(through_nmtd: bool) {
    let t = Nmt::new();
    matrix_state(&t);
    std::fs::write(
        t.path("nmt.toml"),
        "[hooks]\ndhcpd_check = \"false\"\ndnsmasq_check = \"false\"\n",
    )
    .unwrap();
    let daemon = through_nmtd.then(|| crate::util::Daemon::start(&t, &[]));
    let outcomes = run_matrix(&t);
    drop(daemon);
    check_outcomes(&outcomes);
    // A failing hook never undoes a change: every command but `render` and `ack` (which
    // record nothing) appended its events.
    for o in &outcomes {
        if !(o.command.ends_with("render") || o.command.ends_with("ack")) {
            assert!(o.appended > 0, "{}: {}", o.command, o.stderr);
        }
        if o.code == Some(1) {
            assert!(
                o.stderr.contains("rejected"),
                "{}: says what failed: {}",
                o.command,
                o.stderr
            );
        }
    }
    assert!(
        outcomes.iter().any(|o| o.code == Some(1)),
        "the hook failed somewhere"
    );
    // Once the cause is fixed, `nmt render` brings the files up to date, and the log refolds.
    std::fs::remove_file(t.path("nmt.toml")).unwrap();
    t.ok(&["render"]);
    t.ok(&["verify"]);
}

#[test]
fn must_show_every_mutating_command_on_a_full_disk_records_what_it_says() {
    let t = Nmt::bare();
    let small = crate::util::Tmpfs::mount(t.dir.join("small"), "8m");
    // The state lives on the small filesystem.
    std::os::unix::fs::symlink(&small.path, t.state()).unwrap();
    t.ok(&["init"]);
    matrix_state(&t);
    small.fill();
    let outcomes = run_matrix(&t);
    check_outcomes(&outcomes);
    assert!(
        outcomes
            .iter()
            .any(|o| o.stderr.contains("nothing was recorded") && o.stderr.contains("free space")),
        "the full disk stopped some command and said what to do: {:?}",
        outcomes.iter().map(|o| &o.stderr).collect::<Vec<_>>()
    );
    // With space again, nothing is damaged: the log refolds and the files come back.
    small.free();
    t.ok(&["render"]);
    t.ok(&["verify"]);
    t.ok(&["render", "--check"]);
}
