//! Power control against real BMCs, no VMs, through the real `nmt` and `nmtd`:
//!
//! - IPMI v2.0 over LAN: OpenIPMI's `ipmi_sim` on 127.0.0.1, its chassis driven by a script
//!   that keeps the power state and the boot device in files and logs every call, so on, off,
//!   cycle, reset and `bootdev pxe` are real for the simulator; `ipmitool` is nmt's client.
//! - Failures in one `nmt power status`: a closed port, a wrong password, a BMC that never
//!   answers, beside a good one.
//! - Redfish: sushy-tools' emulator (its fake driver, HTTPS with a certificate made here by
//!   `openssl`), the changes it makes sent to a listener in the test.
//!
//! The BMC passwords must never reach the event log, an export, the store, a log or any
//! process's arguments.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Daemon, Nmt, TestDir, mac, require, require_tool, wait_for};

/// The version of sushy-tools tests/deps installs (into the cache, in a venv of its own).
const SUSHY_TOOLS: &str = "2.2.0";

// ---------------------------------------------------------------------------------------
// Helpers

/// `nmt ARGS` with `extra_path` first on PATH (a wrapper `ipmitool`); the whole output.
fn nmt_with_path(t: &Nmt, args: &[&str], extra_path: Option<&Path>) -> Output {
    let mut cmd = t.cmd(args);
    if let Some(dir) = extra_path {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", dir.display()));
    }
    cmd.output().unwrap()
}

fn describe(args: &[&str], out: &Output) -> String {
    format!(
        "nmt {}\nstatus: {}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `nmt power OP RANGE --json`: the results, with the exit status it must have (0 when all
/// succeeded, else 1).
fn power(t: &Nmt, op: &str, range: &str, extra_path: Option<&Path>) -> (Vec<Value>, i32) {
    let args = ["power", op, range, "--json"];
    let out = nmt_with_path(t, &args, extra_path);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not JSON\n{}", describe(&args, &out)));
    let results = v["results"].as_array().cloned().unwrap_or_default();
    let failed = results.iter().filter(|r| r["ok"] != true).count();
    assert_eq!(v["failed"], failed, "{}", describe(&args, &out));
    let code = out.status.code().unwrap_or(-1);
    assert_eq!(
        code,
        i32::from(failed > 0),
        "exit status 1 exactly when a machine failed\n{}",
        describe(&args, &out)
    );
    (results, code)
}

/// One machine's power action, which must succeed: its state.
fn power_ok(t: &Nmt, op: &str, machine: &str, extra_path: Option<&Path>) -> Value {
    let (r, _) = power(t, op, machine, extra_path);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["ok"], true, "power {op} {machine}: {r:?}");
    assert_eq!(r[0]["op"], op, "{r:?}");
    if !machine.starts_with('@') {
        assert_eq!(r[0]["name"], machine, "{r:?}");
    }
    r[0].clone()
}

/// `nmt policy MACHINE POLICY --reboot --json`, which must succeed: the policy set, then the
/// machine's one power result.
fn policy_reboot(t: &Nmt, machine: &str, policy: &str) -> Value {
    let out = t.json(&["policy", machine, policy, "--reboot"]);
    assert!(out["changed"].is_object(), "{out}");
    assert_eq!(out["failed"], 0, "{out}");
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{out}");
    assert_eq!(results[0]["op"], "cycle", "{out}");
    assert_eq!(results[0]["ok"], true, "{out}");
    assert_eq!(
        t.json(&["show", machine])["boot_entry"]["policy"],
        policy,
        "the policy is set"
    );
    results[0].clone()
}

/// A password file, mode 0600 (nmt refuses one others can read).
fn password_file(dir: &Path, name: &str, password: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A UDP port on 127.0.0.1 that nothing holds (held a moment, then let go).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP port on 127.0.0.1 that nothing holds.
fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The PowerActed events of the log (`nmt journal export`), in order.
fn power_events(t: &Nmt) -> Vec<Value> {
    t.ok(&["journal", "export"])
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"]["type"] == "PowerActed")
        .collect()
}

/// The password appears in none of what nmt keeps or shows, except the 0600 secrets file:
/// not in the export, the store's bytes, `nmt bmc show`, nmtd's log; the secrets file is
/// mode 0600.
fn assert_password_kept_secret(t: &Nmt, password: &str, range: &str) {
    use std::os::unix::fs::PermissionsExt;
    let export = t.ok(&["journal", "export"]);
    assert!(
        !export.contains(password),
        "the password is in the journal export"
    );
    let store = std::fs::read(t.path(nmt::DB_FILE)).unwrap();
    assert!(
        !store
            .windows(password.len())
            .any(|w| w == password.as_bytes()),
        "the password is in the store's bytes"
    );
    let show = t.ok(&["bmc", "show", range, "--json"]);
    assert!(!show.contains(password), "the password is in bmc show");
    let shown: Value = serde_json::from_str(&show).unwrap();
    assert!(
        shown
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["password"] == true),
        "{shown}"
    );
    let log = std::fs::read_to_string(t.dir.join("nmtd.log")).unwrap_or_default();
    assert!(!log.contains(password), "the password is in nmtd's log");
    let secrets = t.path("secrets.toml");
    let mode = std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", secrets.display());
    assert!(
        std::fs::read_to_string(&secrets)
            .unwrap()
            .contains(password),
        "the secrets file keeps the password"
    );
}

/// While it runs, every process's command line is read from /proc, over and over: the
/// `ipmitool` ones seen, and any command line that holds the password. `ps` shows what
/// /proc/PID/cmdline holds.
struct ProcWatch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(usize, Vec<String>)>>,
}

impl ProcWatch {
    fn start(password: &str) -> ProcWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let password = password.to_string();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let me = std::process::id().to_string();
                let mut seen = std::collections::BTreeSet::new();
                let mut leaks = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    for e in std::fs::read_dir("/proc").unwrap().flatten() {
                        let pid = e.file_name().to_string_lossy().into_owned();
                        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
                            continue;
                        }
                        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
                            continue;
                        };
                        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                        if line.contains(&password) {
                            leaks.push(format!("{pid}: {line}"));
                        }
                        if line.contains("ipmitool") && line.contains("lanplus") {
                            seen.insert(pid);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                (seen.len(), leaks)
            })
        };
        ProcWatch {
            stop,
            thread: Some(thread),
        }
    }

    /// How many ipmitool processes it saw; fails if any command line held the password.
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (seen, leaks) = self.thread.take().unwrap().join().unwrap();
        assert!(
            leaks.is_empty(),
            "the password was in a process's arguments: {leaks:?}"
        );
        seen
    }
}

// ---------------------------------------------------------------------------------------
// IPMI: OpenIPMI's ipmi_sim

/// The chassis of the simulated BMC: `ipmi_sim` runs it as `PROG get power boot` (it answers
/// `power:N` and `boot:DEV` lines) and `PROG set power 1|0`, `set reset 1`,
/// `set boot pxe|default`. It keeps the state in files beside it and logs every call.
/// A call is logged once its effect is in place (each file replaced whole), so a test that
/// sees the call in `calls` reads the state it left.
const CHASSIS: &str = r#"#!/bin/sh
d="$(dirname "$0")"
put() { echo "$2" > "$d/$1.new" && mv "$d/$1.new" "$d/$1"; }
call="$*"
op="$1"; shift
while [ $# -gt 0 ]; do
  case "$op $1" in
    "get power") echo "power:$(cat "$d/power")" ;;
    "get boot") echo "boot:$(cat "$d/boot")" ;;
    "set power") put power "$2"; shift ;;
    "set boot") put boot "$2"; shift ;;
    "set reset") put resets "$(($(cat "$d/resets") + 1))"; shift ;;
    "set "*) shift ;;
  esac
  shift
done
echo "$call" >> "$d/calls"
"#;

/// A running `ipmi_sim` on 127.0.0.1 (stopped when dropped) with one admin user.
struct IpmiSim {
    dir: TestDir,
    child: Child,
    port: u16,
}

impl IpmiSim {
    fn start(user: &str, password: &str) -> IpmiSim {
        require_tool("ipmi_sim", "openipmi");
        let dir = TestDir::new();
        let chassis = dir.join("chassis");
        std::fs::write(&chassis, CHASSIS).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&chassis, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("power"), "0\n").unwrap();
        std::fs::write(dir.join("boot"), "default\n").unwrap();
        std::fs::write(dir.join("resets"), "0\n").unwrap();
        std::fs::write(dir.join("calls"), "").unwrap();
        let port = free_udp_port();
        let auths = "none md2 md5 straight";
        std::fs::write(
            dir.join("lan.conf"),
            format!(
                "name \"nmt-test\"\n\
                 set_working_mc 0x20\n\
                 startlan 1\n\
                 \x20 addr 127.0.0.1 {port}\n\
                 \x20 priv_limit admin\n\
                 \x20 allowed_auths_callback {auths}\n\
                 \x20 allowed_auths_user {auths}\n\
                 \x20 allowed_auths_operator {auths}\n\
                 \x20 allowed_auths_admin {auths}\n\
                 \x20 guid a123456789abcdefa123456789abcdef\n\
                 endlan\n\
                 chassis_control \"{}\"\n\
                 user 2 true \"{user}\" \"{password}\" admin 10 {auths}\n",
                chassis.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("bmc.emu"),
            "mc_setbmc 0x20\n\
             mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
             mc_enable 0x20\n",
        )
        .unwrap();
        std::fs::create_dir(dir.join("state")).unwrap();
        let log = std::fs::File::create(dir.join("ipmi_sim.log")).unwrap();
        let child = Command::new("ipmi_sim")
            .arg("-c")
            .arg(dir.join("lan.conf"))
            .arg("-f")
            .arg(dir.join("bmc.emu"))
            .arg("-s")
            .arg(dir.join("state"))
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("ipmi_sim");
        let mut sim = IpmiSim { dir, child, port };
        // Up when it answers an RMCP presence ping (as every IPMI LAN BMC must).
        let start = Instant::now();
        while !rmcp_ping(port) {
            if let Ok(Some(status)) = sim.child.try_wait() {
                panic!(
                    "ipmi_sim exited ({status}): {}",
                    std::fs::read_to_string(sim.dir.join("ipmi_sim.log")).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "ipmi_sim does not answer on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sim
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Its power: "1" or "0".
    fn power(&self) -> String {
        self.read("power")
    }

    fn set_power(&self, on: bool) {
        std::fs::write(self.dir.join("power"), if on { "1\n" } else { "0\n" }).unwrap();
    }

    /// The chassis calls since [`IpmiSim::forget_calls`].
    fn calls(&self) -> Vec<String> {
        self.read("calls").lines().map(str::to_string).collect()
    }

    fn forget_calls(&self) {
        std::fs::write(self.dir.join("calls"), "").unwrap();
    }

    /// The position of a chassis call among the calls, failing when it was not made.
    fn call_at(&self, call: &str) -> usize {
        let calls = self.calls();
        calls
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("the chassis never saw `{call}`: {calls:?}"))
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RMCP (ASF) presence ping to 127.0.0.1:port: answered with a pong.
fn rmcp_ping(port: u16) -> bool {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ping = [6, 0, 0xff, 6, 0, 0, 0x11, 0xbe, 0x80, 1, 0, 0];
    if s.send_to(&ping, ("127.0.0.1", port)).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.recv_from(&mut buf), Ok((n, _)) if n >= 9 && buf[8] == 0x40)
}

/// An `ipmitool` that logs how it was called (its arguments, and whether the password came
/// in its environment, never the password), then runs the real one.
fn ipmitool_wrapper(dir: &Path) -> PathBuf {
    require_tool("ipmitool", "ipmitool");
    let real = crate::util::must(&["sh", "-c", "command -v ipmitool"]);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("ipmitool.calls");
    std::fs::write(
        bin.join("ipmitool"),
        format!(
            "#!/bin/sh\n\
             printf 'argv: %s\\n' \"$*\" >> '{log}'\n\
             if [ -n \"$IPMI_PASSWORD\" ]; then echo 'env: IPMI_PASSWORD' >> '{log}'; fi\n\
             exec '{real}' \"$@\"\n",
            log = log.display(),
            real = real.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("ipmitool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// A state with nmt.toml's `[power]` (ipmi_sim has no cipher suite 17, ipmitool's default:
/// suite 3, as for older BMCs).
fn nmt_for_power(timeout: u64) -> Nmt {
    let t = Nmt::new();
    std::fs::write(
        t.path("nmt.toml"),
        format!("[power]\ntimeout = {timeout}\nipmi_cipher_suite = 3\n"),
    )
    .unwrap();
    t
}

/// IPMI through the command line: the BMC set with a password file; status reads what the
/// chassis says; on, cycle and reset set the next boot to PXE first; off does not; each is a
/// PowerActed event by its caller; the password is in no process's arguments (only in
/// ipmitool's environment), nor in the export, the store or `bmc show`.
#[test]
fn ipmi_status_on_off_cycle_reset_against_ipmi_sim() {
    let started = Instant::now();
    let password = "Ipmi-pw-7Kq2x";
    let sim = IpmiSim::start("admin", password);
    let t = nmt_for_power(20);
    t.ok(&["machine", "add", &mac(1), "--name", "m1"]);
    let pwfile = password_file(t.dir.path(), "bmc-pass", password);
    let bmc = format!("127.0.0.1:{}", sim.port);
    let set = t.ok(&[
        "bmc",
        "set",
        "m1",
        "--ipmi",
        &bmc,
        "--user",
        "admin",
        "--password-file",
        pwfile.to_str().unwrap(),
    ]);
    assert!(set.contains("password set"), "{set}");
    let wrapper = ipmitool_wrapper(t.dir.path());
    let w = Some(wrapper.as_path());

    // Status: what the chassis says.
    assert_eq!(power_ok(&t, "status", "m1", w)["state"], "off");
    sim.set_power(true);
    assert_eq!(power_ok(&t, "status", "m1", w)["state"], "on");
    let text = nmt_with_path(&t, &["power", "status", "m1"], w);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("m1 ") && l.contains(" ok ") && l.contains(" on")),
        "{text}"
    );
    sim.set_power(false);

    // On: the next boot set to PXE, then the power switched on. The command lines of every
    // process are watched meanwhile.
    sim.forget_calls();
    let watch = ProcWatch::start(password);
    let on = power_ok(&t, "on", "m1", w);
    assert!(watch.finish() > 0, "no ipmitool process was seen running");
    assert_eq!(on["state"], "on");
    assert!(
        sim.call_at("set boot pxe") < sim.call_at("set power 1"),
        "{:?}",
        sim.calls()
    );
    assert_eq!(sim.power(), "1");
    assert_eq!(sim.read("boot"), "pxe");

    // On again: nothing to do, neither the power nor the next boot touched.
    sim.forget_calls();
    let again = power_ok(&t, "on", "m1", w);
    assert_eq!(again["state"], "on");
    assert_eq!(again["detail"], "already on");
    assert!(
        !sim.calls().iter().any(|c| c.starts_with("set ")),
        "{:?}",
        sim.calls()
    );

    // Cycle (it is on): PXE first, then off, and the simulator switches it back on.
    sim.forget_calls();
    assert_eq!(power_ok(&t, "cycle", "m1", w)["state"], "on");
    assert!(
        sim.call_at("set boot pxe") < sim.call_at("set power 0"),
        "{:?}",
        sim.calls()
    );
    wait_for(
        "ipmi_sim switching the machine back on after the cycle",
        Duration::from_secs(10),
        || sim.calls().iter().filter(|c| *c == "set power 1").count() == 1,
    );
    assert_eq!(sim.power(), "1");

    // Reset (it is on): PXE first, then the reset.
    sim.forget_calls();
    assert_eq!(power_ok(&t, "reset", "m1", w)["state"], "on");
    assert!(
        sim.call_at("set boot pxe") < sim.call_at("set reset 1"),
        "{:?}",
        sim.calls()
    );
    assert_eq!(sim.read("resets"), "1");

    // Off: no boot to set.
    sim.forget_calls();
    assert_eq!(power_ok(&t, "off", "m1", w)["state"], "off");
    sim.call_at("set power 0");
    assert!(
        !sim.calls().iter().any(|c| c.starts_with("set boot")),
        "{:?}",
        sim.calls()
    );
    assert_eq!(sim.power(), "0");
    sim.forget_calls();
    assert_eq!(power_ok(&t, "off", "m1", w)["detail"], "already off");
    assert!(
        !sim.calls().iter().any(|c| c.starts_with("set ")),
        "{:?}",
        sim.calls()
    );

    // A cycle of a machine that is off switches it on (and says so).
    sim.forget_calls();
    let cycled = power_ok(&t, "cycle", "m1", w);
    assert!(
        cycled["detail"].as_str().unwrap().contains("it was off"),
        "{cycled}"
    );
    assert!(sim.call_at("set boot pxe") < sim.call_at("set power 1"));
    assert_eq!(sim.power(), "1");

    // A policy, then a reboot into it (it is on: a cycle, PXE first).
    sim.forget_calls();
    let rebooted = policy_reboot(&t, "m1", "localboot");
    assert_eq!(rebooted["detail"], "", "{rebooted}");
    assert!(sim.call_at("set boot pxe") < sim.call_at("set power 0"));

    // Every action is in the machine's history, by its caller.
    let history = t.json(&["history", "m1"]);
    let acted: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] == "PowerActed")
        .collect();
    let ops: Vec<&str> = acted
        .iter()
        .map(|e| e["event"]["op"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "status", "status", "status", "on", "on", "cycle", "reset", "off", "off", "cycle",
            "cycle"
        ]
    );
    for e in &acted {
        assert_eq!(e["actor"], nmt::current_actor().as_str(), "{e}");
        assert_eq!(e["event"]["result"]["ok"], true, "{e}");
        assert_eq!(e["source"]["stream"], "cli", "{e}");
    }
    let text = t.ok(&["history", "m1"]);
    assert!(text.contains("power reset: ok, on"), "{text}");
    let show = t.json(&["bmc", "show", "m1"]);
    assert_eq!(show[0]["last"]["op"], "cycle", "{show}");

    // ipmitool always had the password in its environment (-E), never in its arguments.
    let calls = std::fs::read_to_string(t.dir.join("ipmitool.calls")).unwrap();
    let argv: Vec<&str> = calls.lines().filter(|l| l.starts_with("argv: ")).collect();
    assert!(argv.len() >= 10, "{calls}");
    assert_eq!(
        calls.lines().filter(|l| *l == "env: IPMI_PASSWORD").count(),
        argv.len(),
        "{calls}"
    );
    for a in &argv {
        let words: Vec<&str> = a.split_whitespace().collect();
        assert!(words.contains(&"-E") && !words.contains(&"-P"), "{a}");
        assert!(words.windows(2).any(|w| w == ["-C", "3"]), "{a}");
        assert!(!a.contains(password), "{a}");
    }
    assert_password_kept_secret(&t, password, "m1");
    eprintln!(
        "ipmi_status_on_off_cycle_reset_against_ipmi_sim: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The same through nmtd: nmt hands the password over the socket, nmtd keeps it and runs
/// ipmitool; the results are recorded by the caller, and the password is nowhere else.
#[test]
fn ipmi_through_nmtd_against_ipmi_sim() {
    let started = Instant::now();
    let password = "Nmtd-pw-3Zt8v";
    let sim = IpmiSim::start("operator1", password);
    let t = nmt_for_power(20);
    let _d = Daemon::start(&t, &[]);
    t.ok(&["group", "add", "rack1"]);
    t.ok(&[
        "machine",
        "add",
        &mac(2),
        "--name",
        "n2",
        "--group",
        "rack1",
    ]);
    let pwfile = password_file(t.dir.path(), "bmc-pass", password);
    // The group's BMC, which its member uses.
    t.ok(&[
        "bmc",
        "set",
        "@rack1",
        "--ipmi",
        &format!("127.0.0.1:{}", sim.port),
        "--user",
        "operator1",
        "--password-file",
        pwfile.to_str().unwrap(),
    ]);
    let show = t.json(&["bmc", "show", "n2"]);
    assert_eq!(show[0]["from"], "@rack1", "{show}");

    assert_eq!(power_ok(&t, "status", "n2", None)["state"], "off");
    sim.forget_calls();
    let watch = ProcWatch::start(password);
    assert_eq!(power_ok(&t, "on", "@rack1", None)["state"], "on");
    assert!(watch.finish() > 0, "no ipmitool process was seen running");
    assert!(sim.call_at("set boot pxe") < sim.call_at("set power 1"));
    assert_eq!(power_ok(&t, "status", "n2", None)["state"], "on");
    sim.forget_calls();
    assert_eq!(power_ok(&t, "off", "n2", None)["state"], "off");
    sim.call_at("set power 0");
    assert_eq!(sim.power(), "0");

    // A policy, then a reboot into it: the machine (off) is switched on, PXE first.
    sim.forget_calls();
    let rebooted = policy_reboot(&t, "n2", "localboot");
    assert!(
        rebooted["detail"].as_str().unwrap().contains("it was off"),
        "{rebooted}"
    );
    assert!(sim.call_at("set boot pxe") < sim.call_at("set power 1"));
    assert_eq!(sim.power(), "1");

    let history = t.json(&["history", "n2"]);
    let acted: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] == "PowerActed")
        .collect();
    assert_eq!(acted.len(), 5, "{history}");
    assert_eq!(acted[4]["event"]["op"], "cycle", "{history}");
    for e in &acted {
        assert_eq!(e["actor"], nmt::current_actor().as_str(), "{e}");
        assert_eq!(e["event"]["result"]["ok"], true, "{e}");
    }
    assert_password_kept_secret(&t, password, "n2");
    eprintln!(
        "ipmi_through_nmtd_against_ipmi_sim: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// One `nmt power status` over four machines: a closed port, a BMC that refuses the
/// password, one that never answers, and a good one. Each failure says why, for its machine;
/// the good one still succeeds; the exit status is 1; all four are PowerActed events; the
/// machines were asked in parallel (the whole took about one timeout).
#[test]
fn ipmi_failures_are_reported_per_machine() {
    let started = Instant::now();
    let good_pw = "Good-pw-5Rm1c";
    let good = IpmiSim::start("admin", good_pw);
    let other = IpmiSim::start("admin", "Other-pw-9Wd4e");
    let closed = free_udp_port();
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let timeout = 4;
    let t = nmt_for_power(timeout);
    t.ok(&["group", "add", "lab"]);
    let pwfile = password_file(t.dir.path(), "bmc-pass", good_pw);
    for (n, name, port) in [
        (11, "closed", closed),
        (12, "refused", other.port),
        (13, "silent", silent_port),
        (14, "good", good.port),
    ] {
        t.ok(&["machine", "add", &mac(n), "--name", name, "--group", "lab"]);
        t.ok(&[
            "bmc",
            "set",
            name,
            "--ipmi",
            &format!("127.0.0.1:{port}"),
            "--user",
            "admin",
            "--password-file",
            pwfile.to_str().unwrap(),
        ]);
    }
    let before = Instant::now();
    let (results, code) = power(&t, "status", "@lab", None);
    let took = before.elapsed();
    assert_eq!(code, 1);
    let by_name = |n: &str| -> &Value {
        results
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("no result for {n}: {results:?}"))
    };
    let detail = |n: &str| by_name(n)["detail"].as_str().unwrap_or("").to_string();
    assert_eq!(results.len(), 4, "{results:?}");
    assert_eq!(by_name("good")["ok"], true, "{results:?}");
    assert_eq!(by_name("good")["state"], "off", "{results:?}");
    for n in ["closed", "refused", "silent"] {
        assert_eq!(by_name(n)["ok"], false, "{results:?}");
        assert!(by_name(n)["state"].is_null(), "{results:?}");
    }
    let closed_port = format!("127.0.0.1:{closed}");
    assert!(
        detail("closed").contains("connection refused")
            && detail("closed").contains(&closed_port)
            && !detail("closed").contains("password"),
        "a closed port: {}",
        detail("closed")
    );
    assert!(
        detail("refused").contains("user or password"),
        "a wrong password: {}",
        detail("refused")
    );
    assert!(
        detail("silent").contains("timed out")
            && detail("silent").contains(&format!("{timeout}s"))
            && detail("silent").contains(&format!("127.0.0.1:{silent_port}")),
        "a BMC that never answers: {}",
        detail("silent")
    );
    // In parallel: about one timeout, not the sum of them.
    assert!(
        took < Duration::from_secs(timeout + 4),
        "four machines took {took:?} with a timeout of {timeout}s"
    );

    // The table says the same, one line each, and the exit status is 1.
    let out = t.cmd(&["power", "status", "@lab"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for (n, word) in [
        ("closed", "FAILED"),
        ("refused", "FAILED"),
        ("silent", "FAILED"),
        ("good", "ok"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{n} ")) && l.contains(word)),
            "{text}"
        );
    }
    assert!(text.contains("4 machine(s): 1 ok, 3 failed"), "{text}");
    eprintln!("{text}");

    // Each result is a PowerActed event, failures with their reason.
    let events = power_events(&t);
    assert_eq!(events.len(), 8, "{events:?}");
    for e in &events[..4] {
        let m = e["event"]["mac"].as_str().unwrap();
        let r = results.iter().find(|r| r["mac"] == m).unwrap();
        assert_eq!(e["event"]["op"], "status");
        assert_eq!(e["event"]["result"]["ok"], r["ok"], "{e}");
        if r["ok"] == false {
            assert_eq!(e["event"]["result"]["detail"], r["detail"], "{e}");
        }
        assert_eq!(e["actor"], nmt::current_actor().as_str(), "{e}");
    }
    // Not even in the failures' details.
    assert_password_kept_secret(&t, good_pw, "@lab");
    drop(silent);
    eprintln!(
        "ipmi_failures_are_reported_per_machine: {:.1} s (one status of 4 machines: {:.1} s)",
        started.elapsed().as_secs_f64(),
        took.as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// Redfish: sushy-tools

/// The venv tests/deps makes for sushy-tools.
fn sushy_venv() -> PathBuf {
    std::env::var_os("NMT_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nmt-cache"))
        .join(format!("sushy-tools-{SUSHY_TOOLS}"))
}

/// What sushy-tools' fake driver sent to its external notifier: each change to the system,
/// as the whole system's JSON.
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<Vec<Value>>>);

impl Notes {
    /// Listen for the notifier's PUTs on 127.0.0.1; the URL.
    fn listen(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        let notes = self.0.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let notes = notes.clone();
                std::thread::spawn(move || {
                    let _ = serve_note(conn, &notes);
                });
            }
        });
        url
    }

    fn all(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    fn forget(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// One HTTP/1.1 request (or several on one connection): its JSON body kept, 200 answered.
fn serve_note(conn: TcpStream, notes: &Mutex<Vec<Value>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        if let Ok(v) = serde_json::from_slice(&body) {
            notes.lock().unwrap().push(v);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
    }
}

/// A running sushy-emulator (fake driver, HTTPS, basic auth), stopped when dropped.
struct Sushy {
    dir: TestDir,
    child: Child,
    url: String,
    notes: Notes,
    uuid: String,
}

impl Sushy {
    fn start(user: &str, password: &str) -> Sushy {
        require_tool("openssl", "openssl");
        let venv = sushy_venv();
        require(
            &format!(
                "sushy-tools {SUSHY_TOOLS} in a venv at {} (tests/deps makes it)",
                venv.display()
            ),
            venv.join("bin/sushy-emulator").exists(),
        );
        let dir = TestDir::new();
        // A self-signed certificate for 127.0.0.1, as `openssl req -x509` makes one (so it
        // says it is a CA, as many BMCs' own certificates do).
        self_signed(dir.path(), "bmc", "127.0.0.1");
        // Its users, bcrypt as sushy-tools wants (with the venv's bcrypt).
        let hash = Command::new(venv.join("bin/python"))
            .args([
                "-c",
                "import bcrypt, sys; print(bcrypt.hashpw(sys.stdin.readline().strip().encode(), \
                 bcrypt.gensalt(4)).decode())",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(password.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(hash.status.success());
        std::fs::write(
            dir.join("htpasswd"),
            format!("{user}:{}", String::from_utf8_lossy(&hash.stdout)),
        )
        .unwrap();
        let notes = Notes::default();
        let notify = notes.listen();
        let port = free_tcp_port();
        let uuid = "27946b59-9e44-4fa7-8e91-f3527a1ef094".to_string();
        std::fs::create_dir(dir.join("state")).unwrap();
        let p = |f: &str| dir.join(f).display().to_string();
        std::fs::write(
            dir.join("emulator.conf"),
            format!(
                "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n\
                 SUSHY_EMULATOR_LISTEN_PORT = {port}\n\
                 SUSHY_EMULATOR_SSL_CERT = '{cert}'\n\
                 SUSHY_EMULATOR_SSL_KEY = '{key}'\n\
                 SUSHY_EMULATOR_AUTH_FILE = '{auth}'\n\
                 SUSHY_EMULATOR_FAKE_DRIVER = True\n\
                 SUSHY_EMULATOR_STATE_DIR = '{state}'\n\
                 EXTERNAL_NOTIFICATION_URL = '{notify}'\n\
                 SUSHY_EMULATOR_FAKE_SYSTEMS = [{{\n\
                 \x20   'uuid': '{uuid}', 'name': 'rf1', 'power_state': 'Off',\n\
                 \x20   'external_notifier': True,\n\
                 \x20   'nics': [{{'mac': '{mac}', 'ip': '127.0.0.2'}}],\n\
                 }}]\n",
                cert = p("bmc.pem"),
                key = p("bmc.key"),
                auth = p("htpasswd"),
                state = p("state"),
                mac = mac(21),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("sushy.log")).unwrap();
        let child = Command::new(venv.join("bin/sushy-emulator"))
            .env("SUSHY_EMULATOR_CONFIG", dir.join("emulator.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("sushy-emulator");
        let mut s = Sushy {
            url: format!("https://127.0.0.1:{port}"),
            dir,
            child,
            notes,
            uuid,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!(
                    "sushy-emulator exited ({status}): {}",
                    std::fs::read_to_string(s.dir.join("sushy.log")).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sushy-emulator does not listen on 127.0.0.1:{port}: {}",
                std::fs::read_to_string(s.dir.join("sushy.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl req -x509` for `ip`: DIR/NAME.pem and DIR/NAME.key.
fn self_signed(dir: &Path, name: &str, ip: &str) {
    crate::util::must(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={ip}"),
        "-addext",
        &format!("subjectAltName=IP:{ip}"),
        "-keyout",
        dir.join(format!("{name}.key")).to_str().unwrap(),
        "-out",
        dir.join(format!("{name}.pem")).to_str().unwrap(),
    ]);
}

/// The power state `nmt power status` reads, until it is `want` (the fake driver applies a
/// change 1 to 11 s after it was asked, when the system is next read).
fn wait_power(t: &Nmt, machine: &str, want: &str) {
    wait_for(
        &format!("{machine} reading {want}"),
        Duration::from_secs(20),
        || {
            std::thread::sleep(Duration::from_millis(500));
            power_ok(t, "status", machine, None)["state"] == want
        },
    );
}

/// Redfish against sushy-tools over HTTPS: the BMC's own certificate pinned (`--cacert`)
/// works; the system's roots (the default) and another certificate pinned fail with a
/// certificate error, as does a wrong password with the BMC's refusal; status, on, cycle and
/// off do what they say, with the boot override (PXE, once) PATCHed before each boot.
#[test]
fn redfish_against_sushy_tools() {
    let started = Instant::now();
    let password = "Redfish-pw-4Hs6y";
    let bmc = Sushy::start("root", password);
    let t = nmt_for_power(20);
    let pwfile = password_file(t.dir.path(), "bmc-pass", password);
    let wrong = password_file(t.dir.path(), "wrong-pass", "not-the-password");
    let pem = bmc.dir.join("bmc.pem");
    self_signed(t.dir.path(), "other", "127.0.0.1");
    let other_pem = t.dir.join("other.pem");
    let system_url = format!("{}/redfish/v1/Systems/{}", bmc.url, bmc.uuid);
    for (n, name) in [
        (21, "rf1"),
        (22, "rf-roots"),
        (23, "rf-other"),
        (24, "rf-wrong"),
    ] {
        t.ok(&["machine", "add", &mac(n), "--name", name]);
    }
    let set = |name: &str, url: &str, pw: &Path, tls: &[&str]| {
        let mut args = vec![
            "bmc",
            "set",
            name,
            "--redfish",
            url,
            "--user",
            "root",
            "--password-file",
            pw.to_str().unwrap(),
        ];
        args.extend_from_slice(tls);
        t.ok(&args);
    };
    // The service's URL (nmt finds its system), its certificate pinned.
    set(
        "rf1",
        &bmc.url,
        &pwfile,
        &["--cacert", pem.to_str().unwrap()],
    );
    set("rf-roots", &system_url, &pwfile, &[]);
    set(
        "rf-other",
        &system_url,
        &pwfile,
        &["--cacert", other_pem.to_str().unwrap()],
    );
    set(
        "rf-wrong",
        &system_url,
        &wrong,
        &["--cacert", pem.to_str().unwrap()],
    );

    let (results, code) = power(&t, "status", "rf1,rf-roots,rf-other,rf-wrong", None);
    assert_eq!(code, 1);
    for r in &results {
        eprintln!("{}: {} {}", r["name"], r["ok"], r["detail"]);
    }
    let r = |n: &str| results.iter().find(|r| r["name"] == n).unwrap().clone();
    assert_eq!(r("rf1")["ok"], true, "{results:?}");
    assert_eq!(r("rf1")["state"], "off", "{results:?}");
    for n in ["rf-roots", "rf-other"] {
        assert_eq!(r(n)["ok"], false, "{results:?}");
        let d = r(n)["detail"].as_str().unwrap().to_lowercase();
        assert!(d.contains("certificate"), "{n}: {d}");
    }
    assert_eq!(r("rf-wrong")["ok"], false, "{results:?}");
    let d = r("rf-wrong")["detail"].as_str().unwrap().to_string();
    assert!(d.contains("refused the user and password"), "{d}");

    // On: the boot override PATCHed (PXE), then On asked; the fake driver switches it on
    // within 11 s.
    bmc.notes.forget();
    assert_eq!(power_ok(&t, "on", "rf1", None)["state"], "on");
    let notes = bmc.notes.all();
    let boot_at = notes
        .iter()
        .position(|n| n["boot_device"] == "Pxe")
        .unwrap_or_else(|| panic!("no boot override arrived: {notes:?}"));
    let on_at = notes
        .iter()
        .position(|n| n["pending_power"]["power_state"] == "On")
        .unwrap_or_else(|| panic!("no power on arrived: {notes:?}"));
    assert!(boot_at < on_at, "{notes:?}");
    wait_power(&t, "rf1", "on");

    // On again: nothing asked of the BMC (many refuse On when on), the boot left alone.
    bmc.notes.forget();
    assert_eq!(power_ok(&t, "on", "rf1", None)["detail"], "already on");
    assert_eq!(bmc.notes.all(), Vec::<Value>::new());

    // Cycle (it is on): the boot override again, then a ForceRestart.
    bmc.notes.forget();
    assert_eq!(power_ok(&t, "cycle", "rf1", None)["state"], "on");
    let notes = bmc.notes.all();
    let boot_at = notes.iter().position(|n| n["boot_device"] == "Pxe");
    let restart_at = notes
        .iter()
        .position(|n| n["pending_power"]["power_state"] == "ForceRestart");
    assert!(
        matches!((boot_at, restart_at), (Some(b), Some(r)) if b < r),
        "{notes:?}"
    );
    wait_power(&t, "rf1", "on");

    // Off: no boot override, a ForceOff.
    bmc.notes.forget();
    assert_eq!(power_ok(&t, "off", "rf1", None)["state"], "off");
    let notes = bmc.notes.all();
    assert!(
        notes
            .iter()
            .any(|n| n["pending_power"]["power_state"] == "Off"),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .all(|n| n["pending_power"]["power_state"] != "On"),
        "{notes:?}"
    );
    wait_power(&t, "rf1", "off");
    bmc.notes.forget();
    assert_eq!(power_ok(&t, "off", "rf1", None)["detail"], "already off");
    assert_eq!(bmc.notes.all(), Vec::<Value>::new());

    // The system itself says its next boot is from the network.
    let boot = redfish_get(&bmc, &system_url, "root", password, &pem);
    assert_eq!(boot["Boot"]["BootSourceOverrideTarget"], "Pxe", "{boot}");

    let acted: Vec<Value> = power_events(&t)
        .into_iter()
        .filter(|e| e["event"]["mac"] == mac(21))
        .collect();
    assert!(acted.len() >= 5, "{acted:?}");
    assert!(acted.iter().all(|e| e["event"]["result"]["ok"] == true));
    assert_password_kept_secret(&t, password, "rf1");
    eprintln!(
        "redfish_against_sushy_tools: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// GET a Redfish resource with curl, trusting the BMC's certificate: its JSON.
fn redfish_get(bmc: &Sushy, url: &str, user: &str, password: &str, pem: &Path) -> Value {
    require_tool("curl", "curl");
    // The password goes to curl on its standard input (a config file), not its arguments.
    let mut child = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(pem)
        .args(["-K", "-", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("user = \"{user}:{password}\"\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "curl {url}: {}",
        std::fs::read_to_string(bmc.dir.join("sushy.log")).unwrap_or_default()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `openssl` making a CA (DIR/NAME-ca.pem) and a server certificate it signed for `ip`
/// (DIR/NAME.pem, DIR/NAME.key; not a CA).
fn ca_and_server(dir: &Path, name: &str, ip: &str) {
    let p = |f: &str| dir.join(f).display().to_string();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["openssl", "req", "-x509", "-nodes", "-days", "2"];
    ca.extend_from_slice(&ec);
    let (ca_key, ca_pem) = (p(&format!("{name}-ca.key")), p(&format!("{name}-ca.pem")));
    let subj = format!("/CN={name} CA");
    ca.extend_from_slice(&["-subj", &subj, "-keyout", &ca_key, "-out", &ca_pem]);
    crate::util::must(&ca);
    let (key, csr, pem) = (
        p(&format!("{name}.key")),
        p(&format!("{name}.csr")),
        p(&format!("{name}.pem")),
    );
    let mut req = vec!["openssl", "req", "-new", "-nodes"];
    req.extend_from_slice(&ec);
    let subj = format!("/CN={ip}");
    req.extend_from_slice(&["-subj", &subj, "-keyout", &key, "-out", &csr]);
    crate::util::must(&req);
    let ext = p(&format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!("basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:{ip}\n"),
    )
    .unwrap();
    crate::util::must(&[
        "openssl",
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_pem,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext,
        "-out",
        &pem,
    ]);
}

/// A pinned CA: the BMC's certificate, which it signed, is checked as usual (its chain and
/// its address), and TLS succeeds; another CA pinned fails with a certificate error. The
/// server is `openssl s_server`, which speaks TLS but not Redfish: getting as far as "not
/// Redfish JSON" is the TLS check passing.
#[test]
fn redfish_pinned_ca_checks_the_chain() {
    let started = Instant::now();
    require_tool("openssl", "openssl");
    let t = nmt_for_power(10);
    let dir = t.dir.path();
    ca_and_server(dir, "site", "127.0.0.1");
    ca_and_server(dir, "elsewhere", "127.0.0.1");
    let port = free_tcp_port();
    let log = std::fs::File::create(dir.join("s_server.log")).unwrap();
    let mut server = Command::new("openssl")
        .args(["s_server", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.join("site.pem"))
        .arg("-key")
        .arg(dir.join("site.key"))
        .args(["-www", "-quiet"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for(
        "openssl s_server listening",
        Duration::from_secs(10),
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    let pw = password_file(dir, "bmc-pass", "S-server-pw-1");
    let url = format!("https://127.0.0.1:{port}/redfish/v1/Systems/1");
    for (n, name, pin) in [
        (31, "by-ca", "site-ca.pem"),
        (32, "exact", "site.pem"),
        (33, "other-ca", "elsewhere-ca.pem"),
    ] {
        t.ok(&["machine", "add", &mac(n), "--name", name]);
        t.ok(&[
            "bmc",
            "set",
            name,
            "--redfish",
            &url,
            "--user",
            "root",
            "--password-file",
            pw.to_str().unwrap(),
            "--cacert",
            dir.join(pin).to_str().unwrap(),
        ]);
    }
    let (results, code) = power(&t, "status", "by-ca,exact,other-ca", None);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 1);
    let detail = |n: &str| {
        results.iter().find(|r| r["name"] == n).unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for n in ["by-ca", "exact"] {
        assert!(detail(n).contains("not Redfish JSON"), "{n}: {}", detail(n));
    }
    assert!(
        detail("other-ca").contains("not the pinned one, nor signed by it"),
        "{}",
        detail("other-ca")
    );
    eprintln!(
        "redfish_pinned_ca_checks_the_chain: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A Redfish service over plain HTTP in the test, with one system whose power is `power`: it
/// answers each request after `delay`, and logs each as "METHOD PATH". Its URL.
fn slow_redfish(delay: Duration, power: &'static str, log: Arc<Mutex<Vec<String>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let mut words = first.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                log.lock().unwrap().push(format!("{method} {path}"));
                std::thread::sleep(delay);
                let json = match (method, path) {
                    ("GET", "/redfish/v1/Systems") => serde_json::json!({
                        "Members": [{"@odata.id": "/redfish/v1/Systems/1"}]
                    })
                    .to_string(),
                    ("GET", "/redfish/v1/Systems/1") => serde_json::json!({
                        "PowerState": power,
                        "Actions": {"#ComputerSystem.Reset": {
                            "target": "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
                        }}
                    })
                    .to_string(),
                    _ => String::new(),
                };
                let status = if json.is_empty() {
                    "204 No Content"
                } else {
                    "200 OK"
                };
                let mut conn = conn;
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
                        json.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    url
}

/// A machine's Redfish requests share its one timeout: a BMC that takes 1.2 s per answer
/// cannot stretch a cycle (four requests) past a 3 s timeout.
#[test]
fn redfish_requests_share_the_machine_timeout() {
    let started = Instant::now();
    let log = Arc::new(Mutex::new(Vec::new()));
    let url = slow_redfish(Duration::from_millis(1200), "On", log.clone());
    let t = nmt_for_power(3);
    let pw = password_file(t.dir.path(), "bmc-pass", "Slow-pw-8");
    t.ok(&["machine", "add", &mac(41), "--name", "slow"]);
    t.ok(&[
        "bmc",
        "set",
        "slow",
        "--redfish",
        &url,
        "--user",
        "root",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let before = Instant::now();
    let (results, code) = power(&t, "cycle", "slow", None);
    let took = before.elapsed();
    assert_eq!(code, 1);
    let detail = results[0]["detail"].as_str().unwrap();
    assert!(detail.contains("timed out after 3s"), "{detail}");
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    assert!(
        !log.lock().unwrap().iter().any(|r| r.starts_with("POST")),
        "{:?}",
        log.lock().unwrap()
    );
    eprintln!(
        "redfish_requests_share_the_machine_timeout: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `nmt bmc set`'s addresses and options: an IPv6 BMC in brackets with its port, or bare;
/// options of another protocol refused (nothing recorded), with what they are for.
#[test]
fn bmc_set_reads_ipmi_addresses_and_refuses_other_protocols_options() {
    let t = Nmt::new();
    t.ok(&["machine", "add", &mac(51), "--name", "v6"]);
    let pw = password_file(t.dir.path(), "bmc-pass", "V6-pw-2");
    let pw = pw.to_str().unwrap();
    for (given, host, port) in [
        ("[fd00::42]:624", "fd00::42", 624),
        ("[fd00::42]", "fd00::42", 623),
        ("fd00::42", "fd00::42", 623),
        ("bmc-v6.lab:6230", "bmc-v6.lab", 6230),
        ("10.1.0.42", "10.1.0.42", 623),
    ] {
        t.ok(&[
            "bmc",
            "set",
            "v6",
            "--ipmi",
            given,
            "--user",
            "admin",
            "--password-file",
            pw,
        ]);
        let show = t.json(&["bmc", "show", "v6"]);
        assert_eq!(show[0]["bmc"]["host"], host, "{given}: {show}");
        assert_eq!(show[0]["bmc"]["port"], port, "{given}: {show}");
    }
    let events = t.event_count();
    for (args, says) in [
        (vec!["--ipmi", "[fd00::42]x"], "':PORT' may follow ']'"),
        (vec!["--ipmi", "[fd00::42"], "no ']'"),
        (vec!["--ipmi", "10.1.0.42:x"], "not a number"),
        (
            vec!["--ipmi", "10.1.0.42", "--cacert", "/dev/null"],
            "--cacert and --insecure are for --redfish",
        ),
        (
            vec!["--ipmi", "10.1.0.42", "--insecure"],
            "--cacert and --insecure are for --redfish",
        ),
        (
            vec!["--redfish", "https://bmc", "--interface", "br0"],
            "--interface and --broadcast are for --wol",
        ),
    ] {
        let mut a = vec!["bmc", "set", "v6"];
        a.extend_from_slice(&args);
        a.extend_from_slice(&["--user", "admin", "--password-file", pw]);
        let err = t.fails(&a);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(t.event_count(), events, "a refusal recorded nothing");
}
