//! `nmtd` for real: started on a temp state, the CLI goes through its socket, and installer
//! reports arrive over HTTP with and without the right token.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{Daemon, Nmt, mac, pxe, require_root};

pub(crate) fn token_of(t: &Nmt, m: &str) -> String {
    let f = t.file(&pxe(m));
    let at = f.find("nmt.token=").expect("the entry carries a token") + "nmt.token=".len();
    f[at..at + 32].to_string()
}

#[test]
fn the_cli_goes_through_the_daemon_socket() {
    let t = Nmt::new();
    let _d = Daemon::start(&t, &[]);
    assert!(t.state().join("nmtd.sock").exists());
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    // The store is held by nmtd: only the socket path could have done this.
    let hist = t.json(&["history", "n1"]);
    assert_eq!(hist[0]["actor"], nmt::current_actor().as_str());
    let err = t.fails(&["assign", "n1", "nogroup"]);
    assert!(err.contains("nmt group add nogroup"), "{err}");
    assert_eq!(t.json(&["machines"])[0]["group"], "unknown");
}

#[test]
fn times_are_written_in_the_callers_zone_not_nmtds() {
    let t = Nmt::new();
    // nmtd runs in UTC; this caller lives in Tokyo (UTC+9, no summer time).
    let _d = Daemon::start(&t, &[]);
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    let at: jiff::Timestamp = t.json(&["history", "n1"])[0]["observed_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let tokyo = |args: &[&str]| {
        let out = t.cmd(args).env("TZ", "Asia/Tokyo").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let local = (at + jiff::SignedDuration::from_hours(9))
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    let hist = tokyo(&["history", "n1"]);
    assert!(hist.contains(&local), "{local} in {hist}");
    let show = tokyo(&["show", "n1"]);
    assert!(show.contains(&format!("first seen   {local}")), "{show}");
    // A refusal that names a time names it in the caller's zone too.
    let out = t
        .cmd(&["show", &mac(1), "--at", "2001-01-01T00:00:00Z"])
        .env("TZ", "Asia/Tokyo")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("was not known yet at 2001-01-01 09:00:00"),
        "{err}"
    );
}

#[test]
fn install_reports_need_the_machines_own_token() {
    let t = Nmt::new();
    let d = Daemon::start(&t, &[]);
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    t.ok(&["machine", "add", &mac(2), "--name", "n2"]);
    let tok1 = token_of(&t, &mac(1));
    let tok2 = token_of(&t, &mac(2));
    let url1 = format!("/v1/report/{}", mac(1).replace(':', "-"));
    let before = t.event_count();
    for (path, why) in [
        (format!("{url1}/{}", "0".repeat(32)), "a wrong token"),
        (format!("{url1}/{tok2}"), "another machine's token"),
        (format!("{url1}/"), "no token"),
    ] {
        let (code, body) = d.post(&path, "rootdev=/dev/sda1");
        assert!(code == 403 || code == 404, "{why}: {code} {body}");
    }
    let (code, body) = d.post(&format!("{url1}/{tok1}"), "rootdev=sda1;reboot");
    assert_eq!(code, 400, "a bad device is refused: {body}");
    assert_eq!(t.event_count(), before, "refused reports changed nothing");
    assert_eq!(t.json(&["machines", "n1"])[0]["group"], "unknown");

    let (code, body) = d.post(&format!("{url1}/{tok1}"), "rootdev=%2Fdev%2Fsda1");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"group\":\"localboot\""), "{body}");
    let m = t.json(&["machines", "n1"]);
    assert_eq!(m[0]["group"], "localboot");
    assert_eq!(m[0]["rootdev"], "/dev/sda1");
    let entry = t.file(&pxe(&mac(1)));
    assert!(
        entry.contains("INCLUDE pxelinux.cfg/nmt/localboot@hd0.cfg"),
        "{entry}"
    );
    let hist = t.ok(&["history", "n1"]);
    assert!(hist.contains("installer@n1"), "{hist}");
    assert!(
        hist.contains("installer reported root device /dev/sda1"),
        "{hist}"
    );
    // n2 still installs.
    assert_eq!(t.json(&["machines", "n2"])[0]["group"], "unknown");
    // Each event says which door it came through.
    let sources: Vec<(String, String)> = t
        .ok(&["journal", "export", "--machine", "n1"])
        .lines()
        .filter(|l| !l.starts_with(r#"{"trailer":"#))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["event"]["type"].as_str().unwrap().to_string(),
                v["source"]["stream"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        sources.contains(&("InstallReported".into(), "http:report".into())),
        "{sources:?}"
    );
    assert!(
        sources.contains(&("MachineRegistered".into(), "cli".into())),
        "{sources:?}"
    );
}

#[test]
fn a_second_daemon_on_the_same_state_refuses_to_start() {
    let t = Nmt::new();
    let _d = Daemon::start(&t, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_nmtd"))
        .args(["--http", "127.0.0.1:0"])
        .env("NMT_STATE", t.state())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another nmt") || err.contains("another nmtd"),
        "{err}"
    );
}

#[test]
fn answer_files_are_served_to_their_machine_only() {
    let t = Nmt::new();
    let d = Daemon::start(&t, &[]);
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    t.ok(&["machine", "add", &mac(2), "--name", "n2"]);
    let tok1 = token_of(&t, &mac(1));
    let tok2 = token_of(&t, &mac(2));
    let m1 = mac(1).replace(':', "-");
    let (code, body) = d.get(&format!("/v1/answer/{m1}/{tok1}"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("d-i preseed/late_command"), "{body}");
    assert!(body.contains(&format!("/v1/report/{m1}/{tok1}")), "{body}");
    assert!(
        body.contains("$6$"),
        "the installer password's hash is in it\n{body}"
    );
    let (code, _) = d.get(&format!("/v1/answer/{m1}/{tok2}"));
    assert_eq!(code, 403, "another machine's token");
    // A machine that follows a local-boot group has no answer file.
    t.ok(&["group", "add", "lab"]);
    t.ok(&["assign", "n1", "lab"]);
    let (code, body) = d.get(&format!("/v1/answer/{m1}/{tok1}"));
    assert_eq!(code, 404, "{body}");
}

#[test]
fn installer_syslog_lands_in_the_machines_history() {
    let t = Nmt::new();
    let log = t.dir.path().join("dhcp.log");
    let d = Daemon::start(
        &t,
        &["--syslog", "127.0.0.1:0", "--log", log.to_str().unwrap()],
    );
    // The machine got 127.0.0.1 from DHCP (so its datagrams come from there).
    std::fs::write(
        &log,
        "Nov 21 02:05:12 gw dhcpd[77]: DHCPACK on 127.0.0.1 to 52:54:00:00:00:07 (roger) via eth0\n",
    )
    .unwrap();
    let start = Instant::now();
    while t.json(&["machines"]).as_array().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "not discovered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = d.syslog.clone().unwrap();
    sock.send_to(
        b"<13>main-menu[312]: INFO: Menu item 'partman-auto' selected",
        &to,
    )
    .unwrap();
    sock.send_to(b"<11>partman: Error: hung waiting for /dev/sda", &to)
        .unwrap();
    let start = Instant::now();
    loop {
        let h = t.ok(&["history", "52:54:00:00:00:07"]);
        if h.contains("hung waiting for /dev/sda") {
            assert!(h.contains("installer log: main-menu[312]"), "{h}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{h}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_demo_pool_boots_through_the_normal_ingest_path() {
    let t = Nmt::new();
    let _d = Daemon::start(&t, &["--demo"]);
    let start = Instant::now();
    loop {
        let m = t.json(&["machines"]);
        if let Some(first) = m.as_array().unwrap().first() {
            assert_eq!(first["group"], "unknown");
            assert_eq!(first["last_ip"], "10.99.0.101");
            let h = t.ok(&["history", first["mac"].as_str().unwrap()]);
            assert!(h.contains("dnsmasq@demo"), "{h}");
            assert!(h.contains("fetched boot entry"), "{h}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no demo machine appeared"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(t.state().join("demo/dnsmasq.log").exists());
}

/// A real second Unix user, created for the test (root only, as in CI).
pub(crate) fn test_user(name: &str) {
    require_root("it creates a Unix user");
    let out = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ])
        .output()
        .unwrap();
    // 9: the user exists already.
    assert!(
        out.status.success() || out.status.code() == Some(9),
        "useradd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_group_administrator_may_switch_his_group_and_nothing_else() {
    use std::os::unix::fs::PermissionsExt;
    let user = "nmt-reinhard";
    test_user(user);
    let t = Nmt::new();
    std::fs::create_dir_all(t.state()).unwrap();
    for d in [t.dir.path(), &t.state()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        t.path("nmt.toml"),
        format!("[daemon]\nsocket_mode = \"0666\"\n\n[access.groups]\nphysics = [\"{user}\"]\n"),
    )
    .unwrap();
    let _d = Daemon::start(&t, &[]);
    t.ok(&["group", "add", "physics"]);
    t.ok(&["group", "add", "chemistry"]);
    t.ok(&[
        "machine",
        "add",
        &mac(1),
        "--name",
        "p1",
        "--group",
        "physics",
    ]);
    let as_user = |args: &[&str]| {
        Command::new("runuser")
            .args(["-u", user, "--", env!("CARGO_BIN_EXE_nmt"), "--state"])
            .arg(t.state())
            .args(args)
            .output()
            .unwrap()
    };
    let ok = as_user(&["policy", "@physics", "ltsp"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let no = as_user(&["policy", "@chemistry", "ltsp"]);
    assert_eq!(no.status.code(), Some(1));
    let err = String::from_utf8_lossy(&no.stderr);
    assert!(
        err.contains("may only set the policy of group(s) physics"),
        "{err}"
    );
    let no = as_user(&["machine", "add", &mac(2)]);
    assert_eq!(no.status.code(), Some(1));
    let read = as_user(&["machines", "--json"]);
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    // Who did it is recorded from the socket's peer credentials.
    let h = t.json(&["history", "p1"]);
    let last = h.as_array().unwrap().last().unwrap();
    assert_eq!(last["event"]["type"], "GroupPolicySet");
    assert_eq!(last["actor"], user);
    assert_eq!(
        t.json(&["group", "list"])[0]["policy"],
        "localboot",
        "chemistry unchanged"
    );
    let status = t.ok(&["status"]);
    assert!(
        status.contains("requests refused by access rules: 2"),
        "{status}"
    );
}

#[test]
fn item_1_nmtd_starts_on_a_new_store_whose_dhcpd_check_fails() {
    let t = Nmt::bare();
    std::fs::create_dir_all(t.state()).unwrap();
    std::fs::write(t.path("nmt.toml"), "[hooks]\ndhcpd_check = \"false\"\n").unwrap();
    let _d = Daemon::start(&t, &[]);
    let log = std::fs::read_to_string(t.dir.path().join("nmtd.log")).unwrap();
    assert!(!log.contains("another nmtd"), "{log}");
    assert!(
        log.contains("there was no nmt state in") && log.contains("started a new, empty one"),
        "nmtd's first start says it created the state\n{log}"
    );
    assert!(
        log.contains("dhcpd rejected the new"),
        "the render problem is reported\n{log}"
    );
    // A change through it is recorded, and says what failed.
    let err = t.fails(&["machine", "add", &mac(1), "--name", "n1"]);
    assert!(
        err.contains("is recorded") && err.contains("dhcpd rejected"),
        "{err}"
    );
    assert_eq!(t.json(&["machines"])[0]["name"], "n1");
}

/// Start nmtd on `t` with its machine-facing listener on `http`, and stop it once it serves:
/// the installer password it printed, if any; or, when it did not start, what it said.
fn nmtd_password(t: &Nmt, http: &str) -> Result<Option<String>, String> {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_nmtd"))
        .args(["--http", http])
        .env("NMT_STATE", t.state())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let mut password = None;
    let mut up = false;
    // What nmtd prints before serving comes at once; the password comes last.
    let mut wait = Duration::from_secs(20);
    while let Ok(line) = rx.recv_timeout(wait) {
        if line.starts_with("nmtd: machine-facing HTTP") {
            up = true;
            wait = Duration::from_secs(1);
        }
        if let Some(p) = line.split(" consoles is ").nth(1) {
            password = Some(p.to_string());
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    if !up {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(password)
}

#[test]
fn item_2_the_installer_password_survives_a_failed_first_start_until_acknowledged() {
    let t = Nmt::bare();
    // The first start fails: its machine-facing port is taken. It makes no store.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = nmtd_password(&t, &addr).unwrap_err();
    assert!(err.contains("machine-facing listener"), "{err}");
    assert!(
        !t.state().join("nmt.redb").exists(),
        "a start that cannot serve makes no store"
    );
    assert!(!t.state().join("nmtd.sock").exists());
    drop(taken);

    // The next start makes the store and shows the password; so does the one after, until it
    // is acknowledged.
    let first = nmtd_password(&t, "127.0.0.1:0").unwrap().expect("shown");
    let again = nmtd_password(&t, "127.0.0.1:0").unwrap();
    assert_eq!(
        again.as_deref(),
        Some(first.as_str()),
        "shown until acknowledged"
    );
    let kept = t.state().join("installer-password");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only nmtd's user reads it");
    }
    assert!(
        !t.ok(&["journal", "export"]).contains(&first),
        "the plain password never enters the event log"
    );

    // An admin sees it through nmtd, and acknowledges it.
    {
        let _d = Daemon::start(&t, &[]);
        assert!(t.ok(&["installer-password", "show"]).contains(&first));
        t.ok(&["installer-password", "ack"]);
        assert!(!kept.exists());
        assert!(
            t.ok(&["installer-password", "show"])
                .contains("no generated installer password")
        );
        let rotated = t.ok(&["installer-password", "rotate"]);
        let new = rotated
            .split(" is now ")
            .nth(1)
            .unwrap()
            .lines()
            .next()
            .unwrap();
        assert_ne!(new, first);
        assert!(!t.ok(&["journal", "export"]).contains(new));
    }
    assert_eq!(
        nmtd_password(&t, "127.0.0.1:0").unwrap(),
        None,
        "acknowledged"
    );

    // `set` records the hash of the password read from standard input.
    t.ok_stdin(&["installer-password", "set"], "correct horse battery\n");
    let journal = t.ok(&["journal", "export"]);
    assert!(!journal.contains("correct horse"));
    assert_eq!(
        journal.matches("InstallerPasswordSet").count(),
        3,
        "{journal}"
    );
    for a in [
        nmt::app::Action::InstallerPasswordShow,
        nmt::app::Action::InstallerPasswordAck,
        nmt::app::Action::InstallerPasswordRotate,
        nmt::app::Action::InstallerPasswordSet {
            crypted: "$6$x$y".into(),
        },
    ] {
        assert_eq!(a.right(), nmt::app::Right::Admin, "{a:?}");
    }
}

/// The README's production paths (its `[paths]` example) and the unit that runs nmtd:
/// `ProtectSystem=full` makes /etc read-only, so every directory nmt writes a file into must
/// be a `ReadWritePaths=` (or the state directory), and `systemd-analyze verify` accepts the
/// unit.
#[test]
fn item_17_the_systemd_unit_lets_nmtd_write_the_readmes_paths() {
    crate::util::require_tool("systemd-analyze", "systemd");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("packaging/nmtd.service")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let writable: Vec<String> = unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ReadWritePaths="))
        .flat_map(|v| v.split_whitespace())
        .map(|p| p.trim_start_matches(['-', '+']).to_string())
        .chain(["/var/lib/nmt".to_string()])
        .collect();
    assert!(unit.contains("StateDirectory=nmt"), "{unit}");
    let section = readme
        .split("[paths]\n")
        .nth(1)
        .expect("the README has a [paths] example");
    let mut checked = 0;
    for line in section.lines().take_while(|l| !l.trim().is_empty()) {
        let (key, value) = line.split_once('=').expect("key = value");
        let path = std::path::Path::new(value.trim().trim_matches('"'));
        // Files and directories alike get temporaries beside them, renamed into place.
        let dir = if key.trim() == "tftp_root" || key.trim() == "node_lists" {
            path
        } else {
            path.parent().unwrap()
        };
        assert!(
            writable.iter().any(|w| dir.starts_with(w)),
            "{key}: nmt writes into {} but packaging/nmtd.service has ProtectSystem=full and no \
             ReadWritePaths= for it (writable: {writable:?})",
            dir.display()
        );
        checked += 1;
    }
    assert_eq!(checked, 5, "the README's [paths] example has five keys");

    // systemd-analyze verify needs ExecStart's binary to exist: a copy runs the built nmtd.
    let dir = crate::util::TestDir::new();
    let copy = dir.path().join("nmtd.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/nmtd", env!("CARGO_BIN_EXE_nmtd")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("nmtd.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

#[test]
fn item_12_9_a_report_never_creates_a_machine_and_needs_an_install_in_progress() {
    let t = Nmt::new();
    let d = Daemon::start(&t, &[]);
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    t.ok(&["machine", "add", &mac(2), "--name", "n2"]);
    let tok1 = token_of(&t, &mac(1));
    let tok2 = token_of(&t, &mac(2));
    let url = |n: u32, tok: &str| format!("/v1/report/{}/{tok}", mac(n).replace(':', "-"));
    // n2 is removed: its token is still the right HMAC, but nmt no longer knows it.
    t.ok(&["machine", "rm", "n2"]);
    // n1 is sent to its disk: no installer runs there.
    t.ok(&["policy", "n1", "localboot"]);
    let before = t.event_count();
    let (code, body) = d.post(&url(2, &tok2), "rootdev=%2Fdev%2Fsda1");
    assert_eq!(
        code, 403,
        "no token belongs to a machine nmt does not know: {body}"
    );
    let (code, body) = d.post(&url(1, &tok1), "rootdev=%2Fdev%2Fsda1");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("was not sent to an installer"), "{body}");
    assert_eq!(t.event_count(), before, "refused reports changed nothing");
    assert_eq!(t.json(&["machines"]).as_array().unwrap().len(), 1);
    // Installing again: accepted.
    t.ok(&["policy", "n1", "install", "--once"]);
    let (code, body) = d.post(&url(1, &tok1), "rootdev=%2Fdev%2Fsda1");
    assert_eq!(code, 200, "{body}");
}

#[test]
fn item_12_10_nocloud_meta_data_needs_the_machines_token() {
    let t = Nmt::new();
    let d = Daemon::start(&t, &[]);
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    t.ok(&["machine", "add", &mac(2), "--name", "n2"]);
    let tok1 = token_of(&t, &mac(1));
    let tok2 = token_of(&t, &mac(2));
    let m1 = mac(1).replace(':', "-");
    for bad in ["0".repeat(32), tok2] {
        let (code, body) = d.get(&format!("/nocloud/{m1}/{bad}/meta-data"));
        assert_eq!(code, 403, "{body}");
        assert!(!body.contains("instance-id"), "{body}");
    }
    let (code, body) = d.get(&format!("/nocloud/{m1}/{tok1}/meta-data"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("instance-id: nmt-"), "{body}");
}

/// A copy-on-write view of this host's root (an overlay, writes kept apart), booted with
/// systemd as its init in a container with no network, stopped and removed when dropped.
struct Container {
    dir: crate::util::TestDir,
    root: std::path::PathBuf,
    nspawn: Option<std::process::Child>,
}

impl Container {
    fn new() -> Container {
        require_root("it mounts an overlay and boots a container");
        crate::util::require_tool("systemd-nspawn", "systemd-container");
        let dir = crate::util::TestDir::new();
        let (upper, work, root) = (dir.join("upper"), dir.join("work"), dir.join("root"));
        for d in [&upper, &work, &root] {
            std::fs::create_dir_all(d).unwrap();
        }
        let ok = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir=/,upperdir={},workdir={}",
                upper.display(),
                work.display()
            ))
            .arg(&root)
            .status()
            .unwrap();
        assert!(ok.success(), "mount an overlay of / on {}", root.display());
        Container {
            dir,
            root,
            nspawn: None,
        }
    }

    /// A path inside the container.
    fn path(&self, p: &str) -> std::path::PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// Run a command on the container's tree before it boots (`useradd --root`, …).
    fn prepare(&self, cmd: &[&str]) {
        let out = Command::new(cmd[0]).args(&cmd[1..]).output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {out:?}");
    }

    /// Boot it; its console goes to `console.log` beside it.
    fn boot(&mut self) {
        let console = std::fs::File::create(self.dir.join("console.log")).unwrap();
        self.nspawn = Some(
            Command::new("systemd-nspawn")
                .arg(format!("--directory={}", self.root.display()))
                .args([
                    "--boot",
                    "--machine=nmt-unit-test",
                    "--register=no",
                    "--keep-unit",
                    "--link-journal=no",
                    "--private-network",
                ])
                .stdin(std::process::Stdio::null())
                .stdout(console.try_clone().unwrap())
                .stderr(console)
                .spawn()
                .unwrap(),
        );
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut c) = self.nspawn.take() {
            // SIGTERM: nspawn asks the container's systemd to power off.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("umount").arg("-l").arg(&self.root).status();
    }
}

#[test]
fn item_17_nmtd_started_by_systemd_through_its_unit_writes_the_readmes_paths() {
    let mut c = Container::new();
    let root = c.root.to_str().unwrap().to_string();
    // nmtd where the unit runs it, the unit enabled, its user, and the README's production
    // configuration; the container's services that would only slow its boot are masked.
    std::fs::copy(env!("CARGO_BIN_EXE_nmtd"), c.path("/usr/local/bin/nmtd")).unwrap();
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/nmtd.service");
    std::fs::copy(unit, c.path("/etc/systemd/system/nmtd.service")).unwrap();
    let wants = c.path("/etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    let _ = std::fs::remove_file(wants.join("nmtd.service"));
    std::os::unix::fs::symlink(
        "/etc/systemd/system/nmtd.service",
        wants.join("nmtd.service"),
    )
    .unwrap();
    for masked in [
        "postgresql.service",
        "postgresql@15-main.service",
        "isc-dhcp-server.service",
        "dnsmasq.service",
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "man-db.timer",
    ] {
        let p = c.path(&format!("/etc/systemd/system/{masked}"));
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink("/dev/null", p).unwrap();
    }
    c.prepare(&["groupadd", "--root", &root, "--system", "-f", "nmt"]);
    let _ = Command::new("useradd")
        .args([
            "--root",
            &root,
            "--system",
            "--gid",
            "nmt",
            "--home",
            "/var/lib/nmt",
            "nmt",
        ])
        .status();
    let ids = |what: &str| {
        let out = Command::new("chroot")
            .args([&root, "id", what, "nmt"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let (uid, gid) = (ids("-u"), ids("-g"));
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let paths: String = readme
        .split("[paths]\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    // The directories the admin prepares, as the unit's comment says: writable by nmt.
    for d in ["/var/lib/nmt", "/srv/tftp", "/etc/dhcp", "/etc/nmt"] {
        std::fs::create_dir_all(c.path(d)).unwrap();
        nix::unistd::chown(
            &c.path(d),
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .unwrap();
    }
    std::fs::write(
        c.path("/var/lib/nmt/nmt.toml"),
        format!("[paths]\n{paths}\n[daemon]\nhttp = \"127.0.0.1:8017\"\n"),
    )
    .unwrap();
    c.boot();
    // nmtd's first start creates the state and writes every generated file where the
    // README's configuration says, through ProtectSystem=full.
    let wanted = [
        "/var/lib/nmt/nmt.redb",
        "/var/lib/nmt/site-key",
        "/etc/dhcp/nmt-hosts.conf",
        "/etc/nmt/dnsmasq-nmt.hosts",
        "/etc/nmt/hosts",
        "/srv/tftp/pxelinux.cfg/default",
    ];
    let deadline = Instant::now() + Duration::from_secs(150);
    while Instant::now() < deadline && !wanted.iter().all(|p| c.path(p).exists()) {
        std::thread::sleep(Duration::from_millis(500));
    }
    for p in wanted {
        assert!(
            c.path(p).exists(),
            "nmtd, run by systemd through packaging/nmtd.service, did not write {p}; the \
             container's console:\n{}",
            c.console()
        );
    }
    // Written by nmtd's user, as the unit runs it.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(c.path("/etc/dhcp/nmt-hosts.conf"))
            .unwrap()
            .uid(),
        uid
    );
    assert_eq!(
        std::fs::metadata(c.path("/var/lib/nmt/site-key"))
            .unwrap()
            .uid(),
        uid
    );
}
