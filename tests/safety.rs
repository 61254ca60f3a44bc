//! Nothing lost, nothing wiped by surprise: regression tests named after the items of the
//! admin-safety review.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use crate::util::{Nmt, append, mac, wait_for};
use crate::web::{WebDaemon, css, flash, log_in, screenshot, submit, text, with_browser};

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
        step(&["machine", "restore", &mac(1)]),
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
    // A large change, written before the disk fills (on another filesystem).
    let big = t.dir.join("big.csv");
    let mut rows = String::from("group,mac,name\n");
    for i in 0..30_000u32 {
        rows.push_str(&format!(
            ",52:54:01:{:02x}:{:02x}:{:02x},bulk{i}\n",
            i >> 16,
            (i >> 8) & 0xff,
            i & 0xff
        ));
    }
    std::fs::write(&big, rows).unwrap();
    small.fill();
    // The store's file keeps some room of its own, enough for a few small changes (they
    // are compressed); a large one needs the disk, is refused whole, and says what to do.
    let before = t.event_count();
    let err = t.fails(&["machine", "import", big.to_str().unwrap()]);
    assert!(
        err.contains("nothing was recorded") && err.contains("free space"),
        "the full disk stopped the import and said what to do: {err}"
    );
    assert_eq!(t.event_count(), before);
    let outcomes = run_matrix(&t);
    check_outcomes(&outcomes);
    // With space again, nothing is damaged: the log refolds and the files come back.
    small.free();
    t.ok(&["render"]);
    t.ok(&["verify"]);
    t.ok(&["render", "--check"]);
}

/// Whether the checkbox (or any element) matched by `sel` is checked, in the browser.
async fn checked(c: &fantoccini::Client, sel: &str) -> bool {
    let v = c
        .execute(
            "const e = document.querySelector(arguments[0]); return !!(e && e.checked);",
            vec![serde_json::json!(sel)],
        )
        .await
        .unwrap();
    v == serde_json::json!(true)
}

/// The width and height of what `sel` matches, as laid out.
async fn size(c: &fantoccini::Client, sel: &str) -> (f64, f64) {
    let v = c
        .execute(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect(); \
             return [r.width, r.height];",
            vec![serde_json::json!(sel)],
        )
        .await
        .unwrap();
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

/// The groups `nmt group list` shows.
fn group_names(t: &Nmt) -> Vec<String> {
    t.json(&["group", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn item_14_a_group_is_removed_in_the_web_by_saying_where_its_members_go() {
    let t = Nmt::new();
    let d = WebDaemon::start(&t, &[]);
    t.ok(&["group", "add", "physics"]);
    t.ok(&["group", "add", "lab"]);
    t.ok(&["group", "add", "wipe", "--policy", "install:default"]);
    t.ok(&["policy", "@unknown", "install:default"]);
    for n in 1..=3 {
        let g = if n <= 2 { "physics" } else { "lab" };
        t.ok(&["machine", "add", &mac(n), "--group", g]);
    }
    let url = d.url.clone();
    let t = &t;
    with_browser(|c| async move {
        log_in(&c, t).await;
        c.goto(&format!("{url}/groups")).await.unwrap();
        // Where the members go is a visible choice, not a control clipped to a pixel.
        let (w, h) = size(&c, "#rm-to-physics").await;
        assert!(w >= 8.0 && h >= 8.0, "the choice is {w}x{h} px");
        let label = text(&c, "label[for='rm-to-physics']").await;
        assert_eq!(label, "Move members to");
        screenshot(&c, "item-14-groups").await;

        // To unknown, whose policy installs: refused as the CLI refuses it, in the page's
        // words; nothing moves.
        let events = t.event_count();
        css(&c, "#rm-to-physics option[value=unknown]")
            .await
            .click()
            .await
            .unwrap();
        submit(&c, "tr[data-group='physics'] form.rm button.danger").await;
        let f = flash(&c).await;
        assert!(
            f.starts_with(
                "nmt: refused: moving the 2 members of \"physics\" to 'unknown' would make them \
                 install:default at their next boot"
            ),
            "{f}"
        );
        assert!(
            f.contains("Move members to") && !f.contains("--") && !f.contains("nmt group"),
            "{f}"
        );
        assert_eq!(t.event_count(), events, "a refusal appends nothing");
        assert!(group_names(t).contains(&"physics".to_string()));
        // The CLI refuses the same move, asked for with --force or with --to unknown.
        let cli = t.fails(&["group", "rm", "physics", "--force"]);
        assert!(cli.contains("would make them install:default"), "{cli}");
        let cli = t.fails(&["group", "rm", "physics", "--to", "unknown"]);
        assert!(cli.contains("would make them install:default"), "{cli}");

        // Into a group whose policy erases disks: asked first; cancelling changes nothing.
        css(&c, "#rm-to-physics option[value=wipe]")
            .await
            .click()
            .await
            .unwrap();
        submit(&c, "tr[data-group='physics'] form.rm button.danger").await;
        let warn = text(&c, "#rm-warning").await;
        assert!(
            warn.contains("install:default") && warn.contains("erase their disks"),
            "{warn}"
        );
        screenshot(&c, "item-14-group-rm-confirm").await;
        submit(&c, "#cancel-group-rm").await;
        assert_eq!(t.event_count(), events, "asking appends nothing");
        assert!(group_names(t).contains(&"physics".to_string()));

        // Into lab: removed, its members moved there.
        css(&c, "#rm-to-physics option[value=lab]")
            .await
            .click()
            .await
            .unwrap();
        submit(&c, "tr[data-group='physics'] form.rm button.danger").await;
        let f = flash(&c).await;
        assert!(f.contains("2 machines moved to lab"), "{f}");
        assert!(!group_names(t).contains(&"physics".to_string()));
        let lab = t.json(&["machines", "@lab"]);
        assert_eq!(lab.as_array().unwrap().len(), 3, "{lab}");

        // A bulk action keeps the machines ticked for the next one.
        c.goto(&format!("{url}/machines?sort=mac")).await.unwrap();
        for n in [1, 3] {
            css(&c, &format!("#rows input[value='{}']", mac(n)))
                .await
                .click()
                .await
                .unwrap();
        }
        css(&c, "#bulk-policy option[value=ltsp]")
            .await
            .click()
            .await
            .unwrap();
        submit(&c, "button[value=policy]").await;
        let f = flash(&c).await;
        assert!(f.contains("policy ltsp set on 2 machines"), "{f}");
        for n in [1, 3] {
            let sel = format!("#rows input[value='{}']", mac(n));
            assert!(checked(&c, &sel).await, "{} is still ticked", mac(n));
        }
        assert!(!checked(&c, &format!("#rows input[value='{}']", mac(2))).await);
        assert_eq!(text(&c, "#nsel").await, "2");
        // And the next action goes to the same two at once.
        css(&c, "#bulk-group option[value=wipe]")
            .await
            .click()
            .await
            .unwrap();
        submit(&c, "button[value=assign]").await;
        let f = flash(&c).await;
        assert!(f.contains("assigned 2 machines to wipe"), "{f}");
        assert_eq!(t.json(&["machines", "@wipe"]).as_array().unwrap().len(), 2);
    });
}

/// Visible controls (links, buttons, fields, summaries) smaller than 8×8 px on the page.
async fn tiny_controls(c: &fantoccini::Client) -> Vec<String> {
    let v = c
        .execute(
            "const out = []; \
             document.querySelectorAll('a[href], button, input, select, textarea, summary') \
               .forEach(e => { \
                 if (e.type === 'hidden' || e.classList.contains('skip')) return; \
                 const s = getComputedStyle(e); \
                 if (s.display === 'none' || s.visibility === 'hidden') return; \
                 if (e.getClientRects().length === 0) return; \
                 const r = e.getBoundingClientRect(); \
                 if (r.width < 8 || r.height < 8) \
                   out.push(e.outerHTML.slice(0, 120) + ' ' + r.width + 'x' + r.height); \
               }); \
             return out;",
            vec![],
        )
        .await
        .unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Whether the page itself overflows sideways, and where the machines table's last column
/// ends once its own frame is scrolled to the end, against that frame and the window.
async fn fits(c: &fantoccini::Client) -> serde_json::Value {
    c.execute(
        "const wrap = document.querySelector('table.machines').closest('.tablewrap'); \
         wrap.scrollLeft = wrap.scrollWidth; \
         const last = document.querySelector('table.machines thead th:last-child'); \
         const cell = document.querySelector('table.machines tbody tr[data-mac] td:last-child'); \
         const w = wrap.getBoundingClientRect(); \
         const l = last.getBoundingClientRect(); \
         const d = cell.getBoundingClientRect(); \
         const name = document.querySelector('table.machines tbody tr[data-mac] td.name a') \
           .getBoundingClientRect(); \
         return { page: document.documentElement.scrollWidth, inner: window.innerWidth, \
                  body: document.body.scrollWidth, \
                  wrapLeft: w.left, wrapRight: w.right, lastLeft: l.left, lastRight: l.right, \
                  cellRight: d.right, nameLeft: name.left, nameRight: name.right, \
                  overflow: getComputedStyle(wrap).overflowX };",
        vec![],
    )
    .await
    .unwrap()
}

#[test]
fn item_15_every_column_is_reachable_at_800_and_375_px_and_no_control_is_a_pixel() {
    let t = Nmt::new();
    let d = WebDaemon::start(&t, &[]);
    t.ok(&["group", "add", "physics-and-astronomy-lab"]);
    for n in 1..=6 {
        t.ok(&[
            "machine",
            "add",
            &mac(n),
            "--name",
            &format!("a-rather-long-machine-name-{n:02}"),
            "--group",
            "physics-and-astronomy-lab",
            "--ip",
            &format!("10.200.100.{}", 100 + n),
        ]);
    }
    t.ok(&[
        "rootdev",
        "set",
        "@physics-and-astronomy-lab",
        "PARTUUID=0123abcd-0123-4567-89ab-0123456789ab",
    ]);
    t.ok(&[
        "policy",
        &mac(1),
        "nfsroot:fileserver.example.org:/srv/nfs/roots/x86_64",
    ]);
    let url = d.url.clone();
    let t = &t;
    with_browser(|c| async move {
        log_in(&c, t).await;
        for width in [800u32, 375] {
            c.set_window_size(width, 900).await.unwrap();
            c.goto(&format!("{url}/machines")).await.unwrap();
            css(&c, "#rows tr[data-mac]").await;
            let f = fits(&c).await;
            let n = |k: &str| f[k].as_f64().unwrap();
            assert!(
                n("page") <= n("inner") && n("body") <= n("inner"),
                "at {width} px the page itself is cut off: {f}"
            );
            assert!(n("wrapRight") <= n("inner") + 0.5, "at {width} px: {f}");
            assert!(
                n("lastLeft") >= n("wrapLeft") - 0.5 && n("lastRight") <= n("wrapRight") + 0.5,
                "at {width} px the last column is not reachable in its frame: {f}"
            );
            assert!(n("cellRight") <= n("wrapRight") + 0.5, "at {width} px: {f}");
            // Scrolled to its last column, each row still says which machine it is.
            assert!(
                n("nameLeft") >= n("wrapLeft") - 0.5 && n("nameRight") <= n("wrapRight") + 0.5,
                "at {width} px, scrolled to the end, the machine's name is out of view: {f}"
            );
            screenshot(&c, &format!("item-15-machines-{width}")).await;
            for page in [
                "/machines".to_string(),
                "/groups".to_string(),
                "/profiles".to_string(),
                "/profiles/edit?name=ltsp".to_string(),
                "/machines/import".to_string(),
                format!("/machine/{}", mac(1)),
            ] {
                c.goto(&format!("{url}{page}")).await.unwrap();
                css(&c, "main").await;
                let tiny = tiny_controls(&c).await;
                assert!(tiny.is_empty(), "{page} at {width} px: {tiny:#?}");
                // What sticks out of the window (inside a frame that scrolls is fine).
                let out = c
                    .execute(
                        "const out = []; \
                         const inner = window.innerWidth; \
                         if (document.documentElement.scrollWidth > inner) { \
                           document.querySelectorAll('main *').forEach(e => { \
                             if (e.closest('.tablewrap, pre.code')) return; \
                             const r = e.getBoundingClientRect(); \
                             if (r.right > inner + 0.5) \
                               out.push(e.tagName + '.' + e.className + ' ' + r.right); \
                           }); \
                           if (out.length === 0) out.push('the page is wider than the window'); \
                         } \
                         return out;",
                        vec![],
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    out,
                    serde_json::json!([]),
                    "{page} is cut off at {width} px"
                );
            }
        }
    });
}

/// A boot of `m` at `at` in dnsmasq's words: the four DHCP messages, the loader and the
/// machine's pxelinux entry over TFTP.
fn dnsmasq_boot(m: &str, ip: &str, at: &jiff::Zoned) -> String {
    let stamp = at.strftime("%b %e %H:%M:%S");
    let entry = format!("01-{}", m.replace(':', "-"));
    format!(
        "{stamp} boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {m}\n\
         {stamp} boot1 dnsmasq-dhcp[812]: DHCPOFFER(br0) {ip} {m}\n\
         {stamp} boot1 dnsmasq-dhcp[812]: DHCPREQUEST(br0) {ip} {m}\n\
         {stamp} boot1 dnsmasq-dhcp[812]: DHCPACK(br0) {ip} {m} lab07\n\
         {stamp} boot1 dnsmasq-tftp[812]: sent /srv/tftp/pxelinux.0 to {ip}\n\
         {stamp} boot1 dnsmasq-tftp[812]: sent /srv/tftp/pxelinux.cfg/{entry} to {ip}\n"
    )
}

/// `days` days before today (in the local zone), at `hour`:`minute`.
fn days_ago(days: i64, hour: i8, minute: i8) -> jiff::Zoned {
    let tz = jiff::tz::TimeZone::system();
    let today = jiff::Timestamp::now().to_zoned(tz.clone()).date();
    let d = today.checked_sub(jiff::Span::new().days(days)).unwrap();
    d.at(hour, minute, 0, 0).to_zoned(tz).unwrap()
}

/// A JavaScript expression's value on the page.
async fn js(c: &fantoccini::Client, expr: &str) -> serde_json::Value {
    c.execute(&format!("return {expr};"), vec![]).await.unwrap()
}

#[test]
fn item_16_a_boot_is_one_row_with_its_lines_inside_filtered_paged_and_drawn_by_day() {
    let t = Nmt::new();
    let log = t.dir.path().join("dnsmasq.log");
    let d = WebDaemon::start(&t, &["--log", log.to_str().unwrap()]);
    let m = mac(7);
    t.ok(&["machine", "add", &m, "--name", "lab07"]);
    let boots = |t: &Nmt| t.json(&["boots", "lab07"]).as_array().unwrap().len();
    let feed = |lines: String, want: usize| {
        append(&log, &lines);
        wait_for("the boots to be ingested", Duration::from_secs(30), || {
            boots(&t) == want
        });
    };
    // Ten days of local boots, two days of installs, then five busy days of LTSP.
    feed(
        (16..=25)
            .map(|d| dnsmasq_boot(&m, "10.0.0.77", &days_ago(d, 8, 0)))
            .collect(),
        10,
    );
    t.ok(&["policy", "lab07", "install:default"]);
    feed(
        [12, 11]
            .iter()
            .map(|d| dnsmasq_boot(&m, "10.0.0.77", &days_ago(*d, 9, 0)))
            .collect(),
        12,
    );
    t.ok(&["policy", "lab07", "ltsp"]);
    let mut busy = String::new();
    for d in (1..=5).rev() {
        for h in 0..9 {
            busy += &dnsmasq_boot(&m, "10.0.0.77", &days_ago(d, 8 + h, 0));
        }
    }
    feed(busy, 57);
    let history = t.json(&["history", "lab07"]).as_array().unwrap().len();
    assert_eq!(history, 57 * 6 + 3, "six events a boot, and three changes");
    let url = d.url.clone();
    let (t, log, m) = (&t, &log, &m);
    with_browser(|c| async move {
        log_in(&c, t).await;
        let page = format!("{url}/machine/{m}");
        c.goto(&page).await.unwrap();
        css(&c, "#live.on").await;
        screenshot(&c, "item-16-machine").await;
        // One row a boot, newest first, fifty a page: no DHCP line stands alone.
        let top = "#timeline > ol.timeline > li";
        assert_eq!(
            js(&c, &format!("document.querySelectorAll('{top}').length")).await,
            json!(50)
        );
        assert_eq!(
            js(
                &c,
                &format!("document.querySelectorAll('{top}.dhcp, {top}.file').length")
            )
            .await,
            json!(0)
        );
        let first = text(&c, &format!("{top}:first-child summary")).await;
        assert!(
            first.contains("ltsp booted kernel")
                && first.contains(&format!("pxelinux.cfg/01-{}", m.replace(':', "-")))
                && first.contains("policy ltsp set by"),
            "{first}"
        );
        // The newest boot is near the top of the page, not under 300 rows.
        let y = js(
            &c,
            &format!(
                "document.querySelector('{top}.boot').getBoundingClientRect().top + window.scrollY"
            ),
        )
        .await;
        assert!(y.as_f64().unwrap() < 1400.0, "the first boot is at {y} px");
        // Its lines are inside, shown when it is opened.
        let inner = format!("{top}:first-child ol.lines li");
        assert_eq!(
            js(
                &c,
                &format!("document.querySelector('{inner}').checkVisibility()")
            )
            .await,
            json!(false),
            "closed at first"
        );
        css(&c, &format!("{top}:first-child summary"))
            .await
            .click()
            .await
            .unwrap();
        let lines = js(
            &c,
            &format!("Array.from(document.querySelectorAll('{inner}')).map(l => l.className)"),
        )
        .await;
        assert_eq!(
            lines,
            json!(["dhcp", "dhcp", "dhcp", "dhcp", "file", "boot"]),
            "DHCP, the loader over TFTP, then the entry"
        );
        assert!(text(&c, &inner).await.contains("DHCP"));

        // The strip: 28 days, each with a tooltip, coloured by what was booted.
        assert_eq!(
            js(&c, "document.querySelectorAll('#boot-cells g.day').length").await,
            json!(28)
        );
        let day = |n: i64| days_ago(n, 12, 0).date().to_string();
        let kinds = |n: i64| {
            let c = c.clone();
            let sel = format!("#boot-cells g.day[data-date='{}']", day(n));
            async move {
                let kinds = css(&c, &sel).await.attr("data-kinds").await.unwrap();
                let title = text(&c, &format!("{sel} title")).await;
                let title = if title.is_empty() {
                    js(
                        &c,
                        &format!("document.querySelector(\"{sel} title\").textContent"),
                    )
                    .await
                    .as_str()
                    .unwrap()
                    .to_string()
                } else {
                    title
                };
                (kinds.unwrap_or_default(), title)
            }
        };
        let (k, title) = kinds(20).await;
        assert_eq!(k, "localboot", "{title}");
        assert!(title.contains("1 boot: localboot ×1"), "{title}");
        let (k, _) = kinds(12).await;
        assert_eq!(k, "install");
        let (k, title) = kinds(3).await;
        assert_eq!(k, "ltsp");
        assert!(title.contains("9 boots: ltsp ×9"), "{title}");
        let (k, title) = kinds(14).await;
        assert_eq!(k, "");
        assert!(title.ends_with("no boot"), "{title}");
        let legend = text(&c, "ul.strip-legend").await;
        for k in ["localboot", "install", "image", "ltsp", "nfsroot", "custom"] {
            assert!(legend.contains(k), "{legend}");
        }
        let fill = js(
            &c,
            &format!(
                "getComputedStyle(document.querySelector(\"#boot-cells g.day[data-date='{}'] \
                 rect.k-ltsp\")).fill",
                day(3)
            ),
        )
        .await;
        assert_ne!(fill, json!("none"), "{fill}");

        // Older and newer pages.
        submit(&c, "#older").await;
        assert_eq!(text(&c, "#page-of").await, "entries 51–60 of 60");
        let rows = c.find_all(Locator::Css(top)).await.unwrap();
        assert_eq!(rows.len(), 10);
        let last = rows.last().unwrap().text().await.unwrap();
        assert!(last.contains("registered"), "{last}");
        submit(&c, "#newer").await;
        assert_eq!(text(&c, "#page-of").await, "entries 1–50 of 60");

        // Only changes: the form's kinds are query parameters.
        for k in ["boot", "dhcp", "file", "install", "log"] {
            css(&c, &format!("#kinds input[value={k}]"))
                .await
                .click()
                .await
                .unwrap();
        }
        submit(&c, "#kinds button[type=submit]").await;
        assert!(
            c.current_url()
                .await
                .unwrap()
                .as_str()
                .ends_with("?kind=admin")
        );
        let classes = js(
            &c,
            &format!("Array.from(document.querySelectorAll('{top}')).map(l => l.className)"),
        )
        .await;
        assert_eq!(classes, json!(["admin", "admin", "admin"]), "{classes}");
        // Only DHCP: every DHCP line on its own, fifty a page.
        c.goto(&format!("{page}?kind=dhcp")).await.unwrap();
        let classes = js(
            &c,
            &format!("Array.from(new Set(Array.from(document.querySelectorAll('{top}')).map(l => l.className)))"),
        )
        .await;
        assert_eq!(classes, json!(["dhcp"]));
        assert_eq!(
            text(&c, "#page-of").await,
            format!("entries 1–50 of {}", 57 * 4)
        );
        screenshot(&c, "item-16-dhcp-only").await;

        // The first page follows new boots live.
        c.goto(&page).await.unwrap();
        css(&c, "#live.on").await;
        let before = js(&c, &format!("document.querySelector('{top}').dataset.seq")).await;
        c.execute("window.__stayed = 16;", vec![]).await.unwrap();
        append(log, &dnsmasq_boot(m, "10.0.0.77", &jiff::Zoned::now()));
        c.wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(&format!("{top}.boot.new:first-child")))
            .await
            .expect("the new boot arrives without a reload");
        let after = js(&c, &format!("document.querySelector('{top}').dataset.seq")).await;
        assert_ne!(before, after);
        assert_eq!(js(&c, "window.__stayed").await, json!(16));
        let today = js(
            &c,
            &format!(
                "document.querySelector(\"#boot-cells g.day[data-date='{}']\").dataset.boots",
                days_ago(0, 12, 0).date()
            ),
        )
        .await;
        assert_eq!(today, json!("1"), "the strip follows too");
        assert_eq!(t.json(&["boots", "lab07"]).as_array().unwrap().len(), 58);
    });
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
    let fresh = Nmt::bare();
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

#[test]
fn item_6_the_web_ui_lists_the_machines_an_erasing_policy_reaches_before_it_acts() {
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
        ]);
    }
    let d = crate::util::Daemon::start(&t, &["--web", "127.0.0.1:0"]);
    let addr = d
        .web
        .clone()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let link = crate::web::login_link(&t);
    let rest = link.trim_start_matches("http://");
    let (_, h, _) = crate::web::http(&addr, "GET", &rest[rest.find('/').unwrap()..], &[], "");
    let cookie = crate::web::session_cookie(&h).unwrap();
    let get = |path: &str| crate::web::http(&addr, "GET", path, &[("Cookie", &cookie)], "");
    let post = |path: &str, body: &str| {
        crate::web::http(&addr, "POST", path, &[("Cookie", &cookie)], body)
    };
    let (_, _, page) = get("/groups");
    let csrf = crate::web::csrf_of(&page);
    let before = t.event_count();
    // The group's policy to install: three machines would erase their disks.
    let (s, _, body) = post(
        "/groups/policy",
        &format!("csrf={csrf}&back=%2Fgroups&group=lab&policy=install"),
    );
    assert_eq!(s, 200, "a confirmation page, not a redirect: {body}");
    assert!(body.contains("3 machines will"), "{body}");
    for i in 1..=3 {
        assert!(body.contains(&format!("lab0{i}")), "{body}");
    }
    assert_eq!(t.event_count(), before, "nothing done yet");
    // Cancel: nothing.
    let (s, _, _) = post("/confirm", &format!("csrf={csrf}&cancel=1"));
    assert_eq!(s, 303);
    assert_eq!(t.event_count(), before);
    // Again, and the set of machines changes meanwhile: refused.
    post(
        "/groups/policy",
        &format!("csrf={csrf}&back=%2Fgroups&group=lab&policy=install"),
    );
    t.ok(&[
        "machine",
        "add",
        &mac(4),
        "--name",
        "lab04",
        "--group",
        "lab",
    ]);
    let n = t.event_count();
    post("/confirm", &format!("csrf={csrf}&proceed=1"));
    assert_eq!(
        t.event_count(),
        n,
        "it reaches lab04 too now, which was not listed"
    );
    let (_, _, page) = get("/groups");
    assert!(
        page.contains("the machines this reaches changed since they were"),
        "and the page says so"
    );
    // Asked again, and confirmed: done.
    let (_, _, body) = post(
        "/groups/policy",
        &format!("csrf={csrf}&back=%2Fgroups&group=lab&policy=install"),
    );
    assert!(body.contains("4 machines will"), "{body}");
    post("/confirm", &format!("csrf={csrf}&proceed=1"));
    assert_eq!(
        t.json(&["machines", "lab01"])[0]["effective_policy"],
        "install:default"
    );
}
