//! Hostile networks and hostile neighbours: nmtd stays up, keeps its secrets, and recovers by
//! itself. One test per item of the review, named after it.

use std::time::Duration;

use crate::util::{Daemon, Nmt, Tmpfs, append, mac, pxe, wait_for};

fn dhcp_line(n: u32) -> String {
    format!(
        "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {}\n",
        mac(n)
    )
}

fn status(t: &Nmt) -> serde_json::Value {
    t.json(&["status"])
}

#[test]
fn item_4_after_a_full_disk_nmtd_resumes_by_itself_and_loses_no_line() {
    let t = Nmt::bare();
    let small = Tmpfs::mount(t.dir.join("small"), "8m");
    std::os::unix::fs::symlink(&small.path, t.state()).unwrap();
    t.ok(&["init"]);
    // The log is on another filesystem, as /var/log is.
    let log = t.dir.join("dnsmasq.log");
    append(&log, &dhcp_line(1));
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    let machines = || t.json(&["machines"]).as_array().unwrap().len();
    wait_for("the first machine", Duration::from_secs(20), || {
        machines() == 1
    });

    small.fill();
    let lines: String = (2..=40).map(dhcp_line).collect();
    append(&log, &lines);
    // nmtd cannot record them: status says so, and shows the real lag.
    wait_for(
        "the store's error in status",
        Duration::from_secs(20),
        || {
            let s = status(&t);
            let src = &s["sources"][0];
            src["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("No space left"))
                && src["lag_bytes"].as_u64() == Some(lines.len() as u64)
        },
    );
    assert_eq!(machines(), 1);

    // Space comes back: nmtd resumes by itself, without a restart, and reads every line once.
    small.free();
    wait_for("all 40 machines", Duration::from_secs(60), || {
        machines() == 40
    });
    let s = status(&t);
    let src = &s["sources"][0];
    assert_eq!(src["lag_bytes"], 0, "{s}");
    assert!(src["last_error"].is_null(), "the error is over: {s}");
    assert_eq!(src["lines"], 40, "{s}");
    assert_eq!(src["events"], 40, "each line once: {s}");
    t.ok(&["verify"]);
}

#[test]
fn item_4_a_failed_render_is_retried_and_status_and_verify_show_it_meanwhile() {
    let t = Nmt::new();
    let tftp = Tmpfs::mount(t.dir.join("tftp"), "1m");
    std::fs::write(
        t.path("nmt.toml"),
        format!("[paths]\ntftp_root = \"{}\"\n", tftp.path.display()),
    )
    .unwrap();
    t.ok(&["render"]);
    let _d = Daemon::start(&t, &[]);
    tftp.fill();
    let err = t.fails(&["machine", "add", &mac(1), "--name", "n1"]);
    assert!(err.contains("the change is recorded"), "{err}");
    // Behind, and said so: in status (text and JSON) and by verify.
    let s = status(&t);
    assert!(s["files_current_to"].as_u64() < s["events"].as_u64(), "{s}");
    assert!(
        s["files_problem"]
            .as_str()
            .is_some_and(|p| p.contains("No space left")),
        "{s}"
    );
    let text = t.ok(&["status"]);
    assert!(
        text.contains("the generated files are behind the log by"),
        "{text}"
    );
    let out = t.cmd(&["verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "verify finds the missing entry");
    // The space comes back: with no new event, nmtd writes the files by itself.
    tftp.free();
    let entry = tftp.path.join(pxe(&mac(1)).trim_start_matches("tftp/"));
    wait_for(
        "the entry written by a retry",
        Duration::from_secs(30),
        || entry.exists(),
    );
    wait_for("status current", Duration::from_secs(10), || {
        let s = status(&t);
        s["files_current_to"] == s["events"] && s["files_problem"].is_null()
    });
    t.ok(&["verify"]);
    assert!(!t.ok(&["status"]).contains("behind the log"));
}

/// Open a connection from `from` (another loopback address than the test's own requests),
/// send one byte of a request, and keep it.
fn slow_client(from: std::net::Ipv4Addr, to: std::net::SocketAddr) -> Option<std::net::TcpStream> {
    use std::io::Write;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::empty(),
        None,
    )
    .ok()?;
    nix::sys::socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &nix::sys::socket::SockaddrIn::from(std::net::SocketAddrV4::new(from, 0)),
    )
    .ok()?;
    let std::net::SocketAddr::V4(to) = to else {
        return None;
    };
    nix::sys::socket::connect(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &nix::sys::socket::SockaddrIn::from(to),
    )
    .ok()?;
    let mut s = std::net::TcpStream::from(sock);
    s.write_all(b"G").ok()?;
    Some(s)
}

#[test]
fn item_3_slow_connections_are_cut_off_and_capped_and_nmtd_keeps_serving() {
    let t = Nmt::new();
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    // A small open-file limit, as the review had: 128.
    let d = Daemon::start_wrapped(
        &t,
        &["prlimit", "--nofile=128:128", "--"],
        "127.0.0.1:0",
        &[],
    );
    let addr: std::net::SocketAddr = d.http.parse().unwrap();
    let start = std::time::Instant::now();
    let mut slow = Vec::new();
    for i in 0..400u32 {
        let from = std::net::Ipv4Addr::new(127, 0, 1 + (i % 4) as u8, 2);
        if let Some(s) = slow_client(from, addr) {
            slow.push(s);
        }
    }
    // A body that never comes: its headers promise 100 bytes, one arrives.
    let mut slow_body = std::net::TcpStream::connect(addr).unwrap();
    {
        use std::io::Write;
        slow_body
            .write_all(
                format!(
                    "POST /v1/report/{}/{} HTTP/1.1\r\nHost: nmtd\r\nContent-Type: \
                     application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nr",
                    mac(1).replace(':', "-"),
                    "0".repeat(32)
                )
                .as_bytes(),
            )
            .unwrap();
    }
    slow.push(slow_body);
    // Meanwhile every part of nmtd serves: the machine API, the CLI socket, rendering.
    let token = token_in(&t, &mac(1));
    let (code, body) = d.get(&format!("/v1/answer/{}/{token}", mac(1).replace(':', "-")));
    assert_eq!(code, 200, "the machine API answers: {body}");
    t.ok(&["machine", "add", &mac(2), "--name", "n2"]);
    assert!(t.path(&pxe(&mac(2))).exists(), "rendering works");
    assert!(t.ok(&["status"]).contains("nmtd"));
    // The slow clients are cut off once the header timeout (10 s) has passed: each read
    // ends (end of file, a reset, or a 408) before 20 s, without us closing anything.
    let deadline = start + Duration::from_secs(20);
    let mut open = 0;
    for mut s in slow {
        use std::io::Read;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 256];
        if let Err(e) = s.read(&mut buf)
            && matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        {
            open += 1;
        }
    }
    assert_eq!(open, 0, "slow connections still open after 20 s");
    // And nmtd still serves.
    let (code, _) = d.get(&format!("/v1/answer/{}/{token}", mac(1).replace(':', "-")));
    assert_eq!(code, 200);
}

#[test]
fn item_6_a_flood_of_refused_requests_is_logged_a_few_lines_at_a_time() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    let d = Daemon::start(&t, &[]);
    let bad = format!("/v1/answer/{}/{}", mac(1).replace(':', "-"), "0".repeat(32));
    for _ in 0..300 {
        assert_eq!(d.get(&bad).0, 403);
    }
    // The next window's first refusal brings the summary of the last one.
    std::thread::sleep(Duration::from_millis(10_500));
    assert_eq!(d.get(&bad).0, 403);
    let log = std::fs::read_to_string(t.dir.path().join("nmtd.log")).unwrap();
    let one_by_one = log.matches("answer file refused").count();
    assert!(one_by_one <= 10, "{one_by_one} lines for 301 refusals");
    assert!(
        log.contains("295 more machine API requests refused"),
        "the rest are summarised:\n{log}"
    );
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn token_in(t: &Nmt, m: &str) -> String {
    crate::daemon::token_of(t, m)
}

#[test]
fn item_7_the_site_key_is_kept_out_of_the_log_in_a_private_file() {
    let t = Nmt::new();
    // The state directory, the store and the key: not for every local user.
    assert_eq!(mode(&t.state()), 0o750);
    assert_eq!(mode(&t.path("nmt.redb")), 0o640);
    let key_file = t.path("site-key");
    assert_eq!(mode(&key_file), 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    let key = key.trim();
    assert_eq!(key.len(), 64, "{key}");
    // The log, an export, holds no key.
    let export = t.ok(&["journal", "export"]);
    assert!(!export.contains(key), "the key is not in the log");
    assert!(!export.contains("site_key"), "{export}");
    let raw = std::fs::read(t.path("nmt.redb")).unwrap();
    assert!(
        !raw.windows(key.len()).any(|w| w == key.as_bytes()),
        "nor anywhere in the store's bytes (snapshots included)"
    );
    // Tokens derive from it all the same, and nmtd checks them with it.
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    let token = token_in(&t, &mac(1));
    let d = Daemon::start(&t, &[]);
    let url = format!("/v1/report/{}/{token}", mac(1).replace(':', "-"));
    let (code, body) = d.post(&url, "rootdev=%2Fdev%2Fsda1");
    assert_eq!(code, 200, "{body}");
    // Single use: that install has reported; its token no longer works, even when the
    // machine is sent to install again (its new entry carries a new token).
    t.ok(&["policy", "n1", "install", "--once"]);
    let (code, body) = d.post(&url, "rootdev=%2Fdev%2Fsda1");
    assert_eq!(code, 403, "a used token: {body}");
    let again = token_in(&t, &mac(1));
    assert_ne!(again, token);
    let (code, body) = d.post(
        &format!("/v1/report/{}/{again}", mac(1).replace(':', "-")),
        "rootdev=%2Fdev%2Fsda1",
    );
    assert_eq!(code, 200, "{body}");
}

#[test]
fn item_7_an_old_journal_that_carries_its_key_is_still_read_and_its_key_moves_out() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/journal-v1.jsonl");
    let logged = std::fs::read_to_string(fixture)
        .unwrap()
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["event"]["site_key"].as_str().map(str::to_string))
        .expect("the first release's journal carries its key");
    let t = Nmt::bare();
    t.ok(&["journal", "import", "--partial", fixture]);
    let kept = std::fs::read_to_string(t.path("site-key")).unwrap();
    assert_eq!(
        kept.trim(),
        logged,
        "the old key is kept, so its tokens stay valid"
    );
    assert_eq!(mode(&t.path("site-key")), 0o600);
    t.ok(&["verify"]);
    // The log still holds it (it is append-only): an admin's export shows it as written.
    assert!(t.ok(&["journal", "export"]).contains(&logged));
}

#[test]
fn item_7_tokens_and_keys_are_hidden_from_who_may_not_use_them() {
    use std::os::unix::fs::PermissionsExt;
    let user = "nmt-reader";
    crate::daemon::test_user(user);
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/journal-v1.jsonl");
    let t = Nmt::bare();
    // An old store, whose log carries its key.
    t.ok(&["journal", "import", "--partial", fixture]);
    let key = std::fs::read_to_string(t.path("site-key")).unwrap();
    let key = key.trim().to_string();
    for d in [t.dir.path(), &t.state()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        t.path("nmt.toml"),
        format!("[daemon]\nsocket_mode = \"0666\"\n\n[access.groups]\nphysics = [\"{user}\"]\n"),
    )
    .unwrap();
    t.ok(&["group", "add", "physics", "--policy", "install"]);
    t.ok(&["group", "add", "chemistry", "--policy", "install"]);
    t.ok(&[
        "machine",
        "add",
        &mac(1),
        "--name",
        "p1",
        "--group",
        "physics",
    ]);
    t.ok(&[
        "machine",
        "add",
        &mac(2),
        "--name",
        "c1",
        "--group",
        "chemistry",
    ]);
    let (p1, c1) = (token_in(&t, &mac(1)), token_in(&t, &mac(2)));
    let _d = Daemon::start(&t, &[]);
    let as_user = |args: &[&str]| {
        let out = std::process::Command::new("runuser")
            .args(["-u", user, "--", env!("CARGO_BIN_EXE_nmt"), "--state"])
            .arg(t.state())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The physics admin sees his own machine's token, not chemistry's, nor the key.
    let own = as_user(&["show", "p1"]);
    assert!(own.contains(&p1), "{own}");
    let other = as_user(&["show", "c1"]);
    assert!(!other.contains(&c1), "{other}");
    assert!(other.contains("(hidden)"), "{other}");
    let export = as_user(&["journal", "export"]);
    assert!(!export.contains(&key), "the old key in the log is hidden");
    assert!(!export.contains(&c1));
    // An nmt admin (root) sees everything.
    assert!(t.ok(&["show", "c1"]).contains(&c1));
    assert!(t.ok(&["journal", "export"]).contains(&key));
}

/// A valid whole export of a small store.
fn an_export(t: &Nmt) -> String {
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    t.ok(&["machine", "add", &mac(2), "--name", "n2"]);
    t.ok(&["journal", "export"])
}

#[test]
fn item_11_import_refuses_unknown_versions_and_broken_invariants() {
    let t = Nmt::new();
    let export = an_export(&t);
    let lines: Vec<serde_json::Value> = export
        .lines()
        .filter(|l| !l.starts_with(r#"{"trailer":"#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let write = |name: &str, events: &[serde_json::Value]| {
        let p = t.dir.join(name);
        let text: String = events
            .iter()
            .map(|e| format!("{}\n", serde_json::to_string(e).unwrap()))
            .collect();
        std::fs::write(&p, text).unwrap();
        p
    };
    let renumber = |events: &mut Vec<serde_json::Value>| {
        for (i, e) in events.iter_mut().enumerate() {
            e["seq"] = serde_json::json!(i + 1);
        }
    };
    let mut cases: Vec<(&str, Vec<serde_json::Value>, &str)> = Vec::new();
    for (v, name) in [(serde_json::json!(2), "v2"), (serde_json::json!(0), "v0")] {
        let mut e = lines.clone();
        e[3]["v"] = v;
        cases.push((name, e, "schema version"));
    }
    let mut e = lines.clone();
    e[3].as_object_mut().unwrap().remove("v");
    cases.push(("no-v", e, "has no schema version"));
    let mut e = lines.clone();
    e.insert(3, lines[0].clone());
    renumber(&mut e);
    cases.push(("second", e, "creates the store a second time"));
    let mut e = lines[1..].to_vec();
    renumber(&mut e);
    cases.push(("none", e, "a log starts with the store's creation"));
    for (name, events, why) in cases {
        let p = write(name, &events);
        let fresh = Nmt::bare();
        // Even as a prefix on purpose.
        let err = fresh.fails(&["journal", "import", "--partial", p.to_str().unwrap()]);
        assert!(err.contains(why), "{name}: {err}");
        assert!(err.contains("nothing was imported"), "{name}: {err}");
        assert!(!fresh.path("nmt.redb").exists(), "{name}");
    }
    // A flipped byte in a MAC, an actor, anywhere: the trailer's digest refuses it.
    for (from, to) in [
        ("52:54:00:00:00:01", "52:54:00:00:00:11"),
        ("\"root\"", "\"toor\""),
    ] {
        let edited = export.replacen(from, to, 1);
        assert_ne!(edited, export, "{from} is in the export");
        let p = t.dir.join("edited.jsonl");
        std::fs::write(&p, edited).unwrap();
        let fresh = Nmt::bare();
        let err = fresh.fails(&["journal", "import", p.to_str().unwrap()]);
        assert!(err.contains("cut or edited"), "{from}: {err}");
    }
}

/// A small deterministic random source (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn fuzz_journal_import_refuses_every_damaged_export_and_never_half_imports() {
    let t = Nmt::new();
    let export = an_export(&t).into_bytes();
    let mut rng = Rng(0x6e6d_7421_2026);
    let path = t.dir.join("mutant.jsonl");
    for round in 0..150 {
        let mut m = export.clone();
        let what = match rng.below(5) {
            0 => {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
                "a flipped bit"
            }
            1 => {
                let i = rng.below(m.len());
                m.remove(i);
                "a dropped byte"
            }
            2 => {
                m.truncate(rng.below(m.len()));
                "a cut"
            }
            3 => {
                let i = rng.below(m.len());
                let b = m[rng.below(m.len())];
                m.insert(i, b);
                "an inserted byte"
            }
            _ => {
                let lines: Vec<&[u8]> = m.split(|b| *b == b'\n').collect();
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                let mut l = lines.clone();
                l.swap(a, b);
                m = l.join(&b'\n');
                "swapped lines"
            }
        };
        if m == export {
            continue;
        }
        std::fs::write(&path, &m).unwrap();
        let fresh = Nmt::bare();
        let out = fresh
            .cmd(&["journal", "import", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "round {round}, {what}: a damaged export is refused, never a crash: {err}"
        );
        assert!(err.contains("nothing was imported"), "round {round}: {err}");
        assert!(
            !fresh.path("nmt.redb").exists(),
            "round {round}, {what}: nothing half-imported"
        );
    }
}

#[test]
fn fuzz_machine_api_requests_change_nothing_and_never_bring_nmtd_down() {
    use std::io::{Read, Write};
    let t = Nmt::new();
    t.ok(&["policy", "@unknown", "install"]);
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    let token = token_in(&t, &mac(1));
    let d = Daemon::start(&t, &[]);
    let before = t.event_count();
    let mut rng = Rng(0x6675_7a7a_2026);
    // The right token, but for its last digit: a near miss is still wrong.
    let near = format!(
        "{}{}",
        &token[..31],
        if token.ends_with('0') { '1' } else { '0' }
    );
    let pieces = [
        "/v1/report/",
        "/v1/answer/",
        "/nocloud/",
        "/user-data",
        "/meta-data",
        "52-54-00-00-00-01",
        "52:54:00:00:00:01",
        "ff-ff-ff-ff-ff-ff",
        &near,
        "%2e%2e/",
        "../",
        "%00",
        "\u{e9}",
        "//",
        "?x=1",
        "0000000000000000000000000000000",
    ];
    for round in 0..300 {
        let method = ["GET", "POST", "PUT", "DELETE", "G\x01T", ""][rng.below(6)];
        let mut path = String::new();
        for _ in 0..rng.below(6) {
            path.push_str(pieces[rng.below(pieces.len())]);
        }
        let mut body: Vec<u8> = match rng.below(4) {
            0 => b"rootdev=%2Fdev%2Fsda1".to_vec(),
            1 => b"rootdev=".to_vec(),
            2 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            _ => Vec::new(),
        };
        let length = match rng.below(4) {
            0 => format!("Content-Length: {}\r\n", body.len() + rng.below(3)),
            1 => "Content-Length: -1\r\n".into(),
            2 => "Transfer-Encoding: chunked\r\n".into(),
            _ => format!("Content-Length: {}\r\n", body.len()),
        };
        let ctype = [
            "Content-Type: application/x-www-form-urlencoded\r\n",
            "Content-Type: multipart/form-data; boundary=x\r\n",
            "",
        ][rng.below(3)];
        let mut req = format!(
            "{method} /{path} HTTP/1.1\r\nHost: nmtd\r\n{ctype}{length}Connection: close\r\n\r\n"
        )
        .into_bytes();
        req.append(&mut body);
        if rng.below(5) == 0 {
            let i = rng.below(req.len());
            req[i] = rng.next() as u8;
        }
        let mut s = std::net::TcpStream::connect(&d.http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let _ = s.write_all(&req);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let head = String::from_utf8_lossy(&resp[..resp.len().min(12)]).into_owned();
        assert!(
            resp.is_empty() || head.starts_with("HTTP/1.1 "),
            "round {round}: {head:?}"
        );
        assert!(
            !head.starts_with("HTTP/1.1 200") || method == "GET",
            "round {round}: only a read may succeed: {}",
            String::from_utf8_lossy(&req)
        );
    }
    // Nothing changed, and nmtd serves on.
    assert_eq!(t.event_count(), before, "no request changed the log");
    let (code, _) = d.get(&format!("/v1/answer/{}/{token}", mac(1).replace(':', "-")));
    assert_eq!(code, 200);
}

#[test]
fn item_5_a_flood_of_spoofed_macs_is_capped_per_minute_and_counted() {
    let t = Nmt::new();
    std::fs::write(
        t.path("nmt.toml"),
        "[daemon]\nnew_machines_per_minute = 20\n",
    )
    .unwrap();
    t.ok(&["machine", "add", &mac(1), "--name", "n1"]);
    let log = t.dir.join("dnsmasq.log");
    append(&log, "");
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    // 500 never-seen MACs within one minute of log, then the known machine.
    let mut flood = String::new();
    for n in 0..500u32 {
        flood.push_str(&format!(
            "Nov 21 02:05:{:02} boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) 02:00:00:00:{:02x}:{:02x}\n",
            n % 60,
            n >> 8,
            n & 0xff
        ));
    }
    flood.push_str(&format!(
        "Nov 21 02:05:59 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {}\n",
        mac(1)
    ));
    // The next minute: room again.
    flood
        .push_str("Nov 21 02:06:01 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) 02:00:00:00:ff:ff\n");
    append(&log, &flood);
    wait_for("the log read", Duration::from_secs(30), || {
        status(&t)["sources"][0]["lines"] == 502
    });
    let machines = t.json(&["machines"]).as_array().unwrap().len();
    assert_eq!(
        machines,
        1 + 20 + 1,
        "n1, 20 in the flood's minute, 1 in the next"
    );
    let s = status(&t);
    assert_eq!(s["new_machines_limited"], 480, "{s}");
    assert!(
        t.ok(&["status"])
            .contains("480 never-seen machines were not recorded")
    );
    // A known machine is never limited: its line is in its history.
    let h = t.ok(&["history", "n1"]);
    assert!(h.contains("DHCPDISCOVER") || h.contains("discover"), "{h}");
    // The store and the TFTP root stay small: entries for 21 discovered machines at most.
    let entries = std::fs::read_dir(t.path("tftp/pxelinux.cfg"))
        .unwrap()
        .count();
    assert!(entries < 40, "{entries} entries");
}

/// A figure from /proc/PID/status, in kB (`VmRSS`, `VmHWM`).
fn proc_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn soak_nmtd_under_a_minute_of_hostile_traffic_ingests_every_line_once_and_answers() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const SECS: u64 = 60;
    const MACHINES: u32 = 50;
    let t = Nmt::new();
    let table: String = (1..=MACHINES)
        .map(|n| format!("{},m{n:03},,\n", mac(n)))
        .collect();
    t.ok_stdin(&["machine", "import", "-"], &table);
    let log = t.dir.join("dnsmasq.log");
    append(&log, "");
    let d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    let addr: std::net::SocketAddr = d.http.parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    // The log grows: one DHCP line of a known machine every 20 ms.
    let written = Arc::new(AtomicU64::new(0));
    {
        let (stop, written, log) = (stop.clone(), written.clone(), log.clone());
        threads.push(std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                append(
                    &log,
                    &format!(
                        "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: DHCPDISCOVER(br0) {}\n",
                        mac(1 + n % MACHINES)
                    ),
                );
                written.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }
    // A flood of bad reports.
    let bad = Arc::new(AtomicU64::new(0));
    {
        let (stop, bad) = (stop.clone(), bad.clone());
        let url = format!("/v1/report/{}/{}", mac(1).replace(':', "-"), "0".repeat(32));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                    let _ = s.write_all(
                        format!(
                            "POST {url} HTTP/1.1\r\nHost: nmtd\r\nContent-Type: \
                             application/x-www-form-urlencoded\r\nContent-Length: 20\r\n\
                             Connection: close\r\n\r\nrootdev=%2Fdev%2Fsda"
                        )
                        .as_bytes(),
                    );
                    let _ = std::io::Read::read_to_end(&mut s, &mut Vec::new());
                    bad.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Slow clients from four addresses, reconnecting as they are cut off.
    {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut held = Vec::new();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                held.retain(|s: &std::net::TcpStream| s.peek(&mut [0u8; 1]).is_err());
                while held.len() < 200 {
                    i += 1;
                    let from = std::net::Ipv4Addr::new(127, 0, 1 + (i % 4) as u8, 2);
                    match slow_client(from, addr) {
                        Some(s) => {
                            s.set_nonblocking(true).unwrap();
                            held.push(s);
                        }
                        None => break,
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }));
    }
    // Meanwhile, the CLI through the socket.
    let start = std::time::Instant::now();
    let mut latencies = Vec::new();
    let mut peak_kb = 0;
    while start.elapsed() < Duration::from_secs(SECS) {
        let t0 = std::time::Instant::now();
        let out = t.cmd(&["machines", "m001", "--json"]).output().unwrap();
        latencies.push(t0.elapsed());
        assert!(out.status.success(), "{out:?}");
        peak_kb = peak_kb.max(proc_kb(d.pid(), "VmRSS"));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().unwrap();
    }
    let lines = written.load(Ordering::Relaxed);
    wait_for("every line read", Duration::from_secs(30), || {
        status(&t)["sources"][0]["lines"] == lines
    });
    let s = status(&t);
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let hwm = proc_kb(d.pid(), "VmHWM");
    println!(
        "soak: {SECS} s; {lines} log lines, {} bad reports, 200 slow clients held; CLI \
         ({} calls, process start included): p50 {:?}, p99 {:?}, max {:?}; nmtd RSS peak {} MB \
         (high-water mark {} MB)",
        bad.load(Ordering::Relaxed),
        latencies.len(),
        p(0.5),
        p(0.99),
        latencies.last().unwrap(),
        peak_kb / 1024,
        hwm / 1024
    );
    assert_eq!(s["sources"][0]["events"], lines, "each line once: {s}");
    assert!(
        p(0.99) < Duration::from_millis(100),
        "CLI p99 {:?}",
        p(0.99)
    );
    assert!(hwm < 300 * 1024, "nmtd's memory: {} MB", hwm / 1024);
    assert!(bad.load(Ordering::Relaxed) > 100, "the flood ran");
    t.ok(&["verify"]);
}
