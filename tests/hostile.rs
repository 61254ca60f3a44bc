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
