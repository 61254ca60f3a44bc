//! A real DHCP exchange: dnsmasq serves DHCP in one network namespace, busybox `udhcpc` asks
//! from a second one over a veth pair, dnsmasq writes its log to a file, and `nmtd` follows
//! that file. The client's MAC must turn up through `nmt` with the address it leased, a
//! hostile client-supplied name must stay data, and once the MAC is named, nmt's dnsmasq
//! hosts file (reread through the reload hook) gives the client that name.
//!
//! Needs root (network namespaces) and Debian's `dnsmasq-base`, `busybox` (or
//! `busybox-static`) and `iproute2`. Without them the test fails; it never skips.
//! Only 10.213.7.0/24 inside the namespaces it creates is used; nothing on the host changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::util::{Daemon, Nmt, must, require_root, require_tool, run, wait_for};

/// The client's MAC, set on its end of the veth pair.
pub(crate) const CLIENT_MAC: &str = "52:54:00:d7:00:01";
/// What the client sends as its host name (option 12). dnsmasq drops a name whose first label
/// is not a host name, and keeps anything printable after the first dot: this one reaches the
/// log in `client provides name:` and `Ignoring domain …` lines.
const HOSTILE: &str = "pc.x\";{}<script>alert(1)</script>";
/// The host part of `HOSTILE`, which is all dnsmasq puts in its DHCPACK line.
const HOSTILE_HOST: &str = "pc";
/// The name given to the machine through nmt.
const NAME: &str = "lab07";
const SERVER_IP: &str = "10.213.7.1";

/// Two network namespaces joined by a veth pair, and the DHCP server in the server one
/// (dnsmasq here, Kea in `lab_kea.rs`). Dropping it kills the server and deletes both
/// namespaces (which takes the veth pair with them); when dropped during a panic after the
/// server started, it first prints the lab directory's logs, the clients' output and nmtd's
/// state.
pub(crate) struct Lab<'a> {
    pub(crate) t: &'a Nmt,
    pub(crate) server_ns: String,
    client_ns: String,
    /// The server's end of the veth pair (the DHCP server's interface).
    pub(crate) server_if: String,
    /// The client's end.
    client_if: String,
    pub(crate) dir: PathBuf,
    pub(crate) server: Option<Child>,
    /// What the clients printed, for the failure report.
    client_output: String,
}

/// What one DHCP exchange got: the address, and the boot file and server, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leased {
    pub(crate) ip: String,
    pub(crate) boot_file: String,
    pub(crate) siaddr: String,
}

impl<'a> Lab<'a> {
    /// The namespaces and the link; panics (after cleaning up) if they cannot be made.
    pub(crate) fn new(t: &'a Nmt) -> Lab<'a> {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "{}{}",
            std::process::id(),
            match RUN.fetch_add(1, Ordering::SeqCst) {
                0 => String::new(),
                n => format!("x{n}"),
            }
        );
        let dir = t.dir.path().join("lab");
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            t,
            server_ns: format!("nmt-lab-s{id}"),
            client_ns: format!("nmt-lab-c{id}"),
            server_if: format!("nmts{id}"),
            client_if: format!("nmtc{id}"),
            dir,
            server: None,
            client_output: String::new(),
        };
        assert!(
            lab.server_if.len() <= 15,
            "interface name too long: {}",
            lab.server_if
        );
        // The first namespace tells whether we may make them at all.
        let out = run(&["ip", "netns", "add", &lab.server_ns]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            lab.server_ns.clear();
            panic!(
                "this test runs a real DHCP exchange in network namespaces and needs root \
                 (CAP_SYS_ADMIN and CAP_NET_ADMIN); it does not skip. `ip netns add` failed: {err}"
            );
        }
        let out = run(&["ip", "netns", "add", &lab.client_ns]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            lab.client_ns.clear();
            panic!("ip netns add {}: {err}", lab.client_ns);
        }
        let (s, c) = (lab.server_ns.clone(), lab.client_ns.clone());
        let (sif, cif) = (lab.server_if.clone(), lab.client_if.clone());
        // Both ends are created inside the namespaces: the host never sees them.
        must(&[
            "ip", "-n", &s, "link", "add", &sif, "type", "veth", "peer", "name", &cif, "netns", &c,
        ]);
        must(&["ip", "-n", &c, "link", "set", &cif, "address", CLIENT_MAC]);
        must(&[
            "ip",
            "-n",
            &s,
            "addr",
            "add",
            &format!("{SERVER_IP}/24"),
            "dev",
            &sif,
        ]);
        for (ns, ifname) in [(&s, &sif), (&c, &cif)] {
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            must(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        }
        lab
    }

    fn log(&self) -> PathBuf {
        self.dir.join("dnsmasq.log")
    }

    fn log_text(&self) -> String {
        std::fs::read(self.log())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("dnsmasq.pid")
    }

    fn leases(&self) -> String {
        std::fs::read_to_string(self.dir.join("dnsmasq.leases")).unwrap_or_default()
    }

    /// Start dnsmasq (DHCP only, reading nmt's hosts file) and wait until it listens.
    fn start_dnsmasq(&mut self, hosts_file: &Path) {
        let arg = |k: &str, v: &Path| format!("--{k}={}", v.display());
        let stdio = std::fs::File::create(self.dir.join("dnsmasq.stdio")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.server_ns, "dnsmasq"])
            // In the foreground, but otherwise as a daemon: it writes its pid file.
            .arg("--keep-in-foreground")
            .arg("--conf-file=/dev/null")
            .arg("--port=0")
            .arg(format!("--interface={}", self.server_if))
            .arg("--bind-interfaces")
            .arg("--dhcp-range=10.213.7.100,10.213.7.150,12h")
            .arg("--log-dhcp")
            .arg(arg("log-facility", &self.log()))
            .arg(arg("dhcp-leasefile", &self.dir.join("dnsmasq.leases")))
            .arg(arg("pid-file", &self.pid_file()))
            .arg(arg("dhcp-hostsfile", hosts_file))
            .arg("--no-ping")
            // Stay root: the temp dir is 0700, and a SIGHUP rereads the hosts file in it.
            .arg("--user=root")
            .stdin(Stdio::null())
            .stdout(stdio.try_clone().unwrap())
            .stderr(stdio)
            .spawn()
            .expect("dnsmasq could not be started");
        // `ip netns exec` execs dnsmasq, so this is dnsmasq's pid.
        self.server = Some(child);
        let ns = self.server_ns.clone();
        let start = Instant::now();
        loop {
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                panic!("dnsmasq exited at start: {status}");
            }
            let last = must(&["ip", "netns", "exec", &ns, "ss", "-Hulpn", "sport", "= :67"]);
            if last.contains("dnsmasq") && self.pid_file().exists() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "dnsmasq does not listen on udp/67 after 5 s; ss says:\n{last}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One DHCP exchange from the client namespace, sending `hostname`; the leased address.
    fn exchange(&mut self, hostname: &str) -> String {
        let ip = self
            .exchange_with(&["-x", &format!("hostname:{hostname}")])
            .ip;
        let last: u8 = ip
            .strip_prefix("10.213.7.")
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("leased {ip}, outside the lab's range"));
        assert!(
            (100..=150).contains(&last),
            "leased {ip}, outside the range"
        );
        ip
    }

    /// One DHCP exchange from the client namespace, with more of udhcpc's options (`-x OPT:VAL`
    /// to send an option); what it leased.
    pub(crate) fn exchange_with(&mut self, options: &[&str]) -> Leased {
        // Do not configure the interface: the exchange is what counts. The script prints
        // what the server answered.
        let script = self.dir.join("udhcpc.script");
        if !script.exists() {
            std::fs::write(
                &script,
                "#!/bin/sh\n[ \"$1\" = bound ] && echo \"NMT-BOUND ip=$ip boot_file=$boot_file \
                 siaddr=$siaddr\"\nexit 0\n",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.client_ns, "busybox", "udhcpc"])
            // Foreground, quit once leased, fail if not; three tries a second apart.
            .args(["-f", "-q", "-n", "-t", "3", "-T", "1"])
            .args(["-i", &self.client_if])
            .args(options)
            .arg("-s")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("busybox udhcpc could not be started");
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.client_output
            .push_str(&format!("--- udhcpc ({})\n{text}", out.status));
        assert!(out.status.success(), "udhcpc got no lease:\n{text}");
        // "NMT-BOUND ip=10.213.7.112 boot_file=pxelinux.0 siaddr=10.213.7.1"
        let bound = text
            .lines()
            .find_map(|l| l.strip_prefix("NMT-BOUND "))
            .unwrap_or_else(|| panic!("no lease in udhcpc's output:\n{text}"));
        let field = |k: &str| {
            bound
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")[..]))
                .unwrap_or("")
                .to_string()
        };
        Leased {
            ip: field("ip"),
            boot_file: field("boot_file"),
            siaddr: field("siaddr"),
        }
    }

    /// How often dnsmasq has (re)read `path`.
    fn reads_of(&self, path: &Path) -> usize {
        let needle = format!(": read {}", path.display());
        self.log_text()
            .lines()
            .filter(|l| l.ends_with(&needle))
            .count()
    }

    /// The lab directory's logs, the clients' output and nmtd's state.
    fn report(&self) {
        let nmt = |args: &[&str]| {
            self.t
                .cmd(args)
                .output()
                .map(|o| {
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                })
                .unwrap_or_else(|e| e.to_string())
        };
        eprintln!("=== lab dir {}", self.dir.display());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files.iter().filter(|f| {
            f.extension().is_some_and(|e| {
                ["log", "stdio", "leases", "csv"].contains(&e.to_str().unwrap_or(""))
            })
        }) {
            eprintln!(
                "=== {}\n{}",
                f.display(),
                String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default())
            );
        }
        eprintln!("=== clients\n{}", self.client_output);
        eprintln!("=== nmt status\n{}", nmt(&["status"]));
        eprintln!("=== nmt journal export\n{}", nmt(&["journal", "export"]));
    }
}

impl Drop for Lab<'_> {
    fn drop(&mut self) {
        // Nothing to report when the lab could not even be set up.
        if std::thread::panicking() && self.server.is_some() {
            self.report();
        }
        if let Some(mut d) = self.server.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in [&self.client_ns, &self.server_ns] {
            if !ns.is_empty() {
                let out = Command::new("ip").args(["netns", "del", ns]).output();
                if !matches!(&out, Ok(o) if o.status.success()) {
                    eprintln!("could not delete network namespace {ns}: {out:?}");
                }
            }
        }
    }
}

/// The DhcpSeen events of a machine (MAC or name), oldest first.
fn dhcp_seen(t: &Nmt, target: &str) -> Vec<serde_json::Value> {
    t.json(&["history", target])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] == "DhcpSeen")
        .cloned()
        .collect()
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"]["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Whether `want` occurs in `have` in order (other items may come between, e.g. a retried
/// DHCPDISCOVER).
fn in_order(have: &[String], want: &[&str]) -> bool {
    let mut it = have.iter();
    want.iter().all(|w| it.any(|h| h == w))
}

/// Every file nmt generated (everything under the state directory but the store and the
/// configuration), with its text.
fn generated_files(t: &Nmt) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    files_under(&t.state(), &mut files);
    files
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.starts_with("nmt.redb") && n != "nmt.toml"
        })
        .map(|p| {
            let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            (p, text)
        })
        .collect()
}

/// Require that no generated file carries any part of the client's own name.
fn no_client_name_in_files(t: &Nmt) {
    let files = generated_files(t);
    assert!(
        files
            .iter()
            .any(|(p, _)| p.ends_with("dhcp/dnsmasq-nmt.hosts")),
        "{:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for (p, text) in &files {
        for bad in ["<script", "alert(", "\";{}", "pc.x"] {
            assert!(
                !text.contains(bad),
                "{} carries the client's name ({bad}):\n{text}",
                p.display()
            );
        }
    }
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            files_under(&e.path(), out);
        } else if ty.is_file() {
            out.push(e.path());
        }
    }
}

#[test]
fn a_real_dnsmasq_exchange_is_discovered_and_named() {
    let started = Instant::now();
    let uid = must(&["id", "-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "this test runs a real DHCP exchange in network namespaces and needs root; it does not \
         skip (run it as root, as CI does)"
    );
    require_root("it runs a real DHCP exchange in network namespaces");
    require_tool("ip", "iproute2");
    require_tool("ss", "iproute2");
    require_tool("dnsmasq", "dnsmasq-base");
    require_tool("busybox", "busybox-static");

    let t = Nmt::new();
    let lab_dir = t.dir.path().join("lab");
    let pid_file = lab_dir.join("dnsmasq.pid");
    // nmt makes dnsmasq reread its hosts file whenever that changes, as a site would
    // (`systemctl reload dnsmasq`). Before dnsmasq runs there is nothing to reload.
    std::fs::create_dir_all(t.state()).unwrap();
    std::fs::write(
        t.state().join("nmt.toml"),
        format!(
            "[hooks]\ndnsmasq_reload = \"test ! -e {p} || kill -HUP $(cat {p})\"\n",
            p = pid_file.display()
        ),
    )
    .unwrap();
    let log = lab_dir.join("dnsmasq.log");
    // nmtd first: the log does not exist yet, and nmtd waits for it.
    let _d = Daemon::start(&t, &["--log", log.to_str().unwrap()]);
    let hosts_file = t.path("dhcp/dnsmasq-nmt.hosts");
    assert!(hosts_file.exists(), "nmtd renders the dnsmasq hosts file");

    let mut lab = Lab::new(&t);
    assert_eq!(lab.log(), log);
    lab.start_dnsmasq(&hosts_file);

    // The first exchange: an unknown machine with a hostile name.
    let ip = lab.exchange(HOSTILE);
    let mut machines = serde_json::Value::Null;
    wait_for(
        "the client's MAC in `nmt machines` with its lease",
        Duration::from_secs(5),
        || {
            machines = t.json(&["machines"]);
            machines
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["mac"] == CLIENT_MAC && m["last_ip"] == ip.as_str())
        },
    );
    let all = machines.as_array().unwrap();
    assert_eq!(all.len(), 1, "only the client was seen: {machines:#}");
    let m = &all[0];
    assert_eq!(m["group"], "unknown", "{m:#}");
    assert_eq!(m["name"], serde_json::Value::Null, "{m:#}");
    assert_eq!(m["registered"], false, "{m:#}");
    // dnsmasq's DHCPACK names only the host part; the whole name is in the earlier events.
    assert_eq!(m["dhcp_hostname"], HOSTILE_HOST, "{m:#}");

    let seen = dhcp_seen(&t, CLIENT_MAC);
    let k = kinds(&seen);
    assert!(
        in_order(&k, &["discover", "offer", "request", "ack"]),
        "kinds {k:?}"
    );
    assert!(
        k.iter()
            .all(|k| ["discover", "offer", "request", "ack"].contains(&k.as_str())),
        "kinds {k:?}"
    );
    for e in &seen {
        let actor = e["actor"].as_str().unwrap();
        assert!(actor.starts_with("dnsmasq@"), "actor {actor}");
        let ev = &e["event"];
        assert_eq!(ev["server"], "dnsmasq", "{e:#}");
        assert_eq!(ev["via"], lab.server_if.as_str(), "{e:#}");
        if ev["kind"] != "discover" {
            assert_eq!(ev["ip"], ip.as_str(), "{e:#}");
        }
        assert!(e["source"]["stream"].is_string(), "{e:#}");
    }
    let names: BTreeSet<&str> = seen
        .iter()
        .filter_map(|e| e["event"]["hostname"].as_str())
        .collect();
    assert!(
        names.contains(HOSTILE),
        "the client's own name is kept as data: {names:?}"
    );
    // ...and only as data: no generated file carries any of it.
    no_client_name_in_files(&t);

    // Name the machine: nmt writes its dnsmasq hosts file and the hook makes dnsmasq reread
    // it, so the next exchange hands out the name nmt gave, whatever the client asks for.
    let reads = lab.reads_of(&hosts_file);
    t.ok(&["name", CLIENT_MAC, NAME]);
    let hosts = t.file("dhcp/dnsmasq-nmt.hosts");
    assert!(
        hosts
            .lines()
            .any(|l| l == format!("{CLIENT_MAC},{NAME}").as_str()),
        "{hosts}"
    );
    wait_for(
        "dnsmasq rereads nmt's hosts file",
        Duration::from_secs(5),
        || lab.reads_of(&hosts_file) > reads,
    );
    let before = dhcp_seen(&t, CLIENT_MAC).len();
    let ip2 = lab.exchange(HOSTILE);
    assert_eq!(ip2, ip, "dnsmasq keeps the client's lease");
    wait_for("the second exchange in nmt", Duration::from_secs(5), || {
        let seen = dhcp_seen(&t, NAME);
        seen.len() > before && seen.last().unwrap()["event"]["kind"] == "ack"
    });
    let m = &t.json(&["machines", NAME])[0];
    assert_eq!(m["mac"], CLIENT_MAC, "{m:#}");
    assert_eq!(m["name"], NAME, "{m:#}");
    assert_eq!(m["last_ip"], ip.as_str(), "{m:#}");
    assert_eq!(
        m["dhcp_hostname"], NAME,
        "dnsmasq acked with nmt's name: {m:#}"
    );
    let seen = dhcp_seen(&t, NAME);
    let second = &seen[before..];
    let k = kinds(second);
    assert!(
        in_order(&k, &["discover", "offer", "request", "ack"]),
        "kinds {k:?}"
    );
    assert_eq!(second.last().unwrap()["event"]["hostname"], NAME);
    assert_eq!(second.last().unwrap()["event"]["ip"], ip.as_str());
    // dnsmasq's own lease carries the name too.
    assert!(
        lab.leases()
            .lines()
            .any(|l| l.contains(CLIENT_MAC) && l.contains(&format!(" {ip} {NAME} "))),
        "dnsmasq's leases:\n{}",
        lab.leases()
    );
    // Still nothing of the client's own name in any generated file.
    no_client_name_in_files(&t);
    eprintln!("lab_dnsmasq: {:?}", started.elapsed());
}
