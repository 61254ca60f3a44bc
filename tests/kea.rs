//! Kea for real: nmt's reservations file included from a kea-dhcp4.conf, checked with
//! `kea-dhcp4 -t`, and a running kea-dhcp4 reloaded through its control socket (never
//! restarted); a file Kea refuses is put back, and Kea keeps serving.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{Nmt, mac, require_tool, wait_for};

pub(crate) const KEA: &str = "/usr/sbin/kea-dhcp4";

/// The client classes a site adds to kea-dhcp4.conf for nmt (the README's): the boot file by
/// user class and client architecture, as nmt's dhcpd include chooses it.
pub const CLASSES: &str = r#"[
    { "name": "nmt-ipxe", "test": "member('KNOWN') and substring(option[77].hex,0,4) == 'iPXE'",
      "boot-file-name": "ipxe/boot.ipxe" },
    { "name": "nmt-uefi-http", "test": "option[93].hex == 0x0010 and not member('nmt-ipxe')",
      "boot-file-name": "http://10.9.0.1/tftp/grub/grubnetx64.efi",
      "option-data": [ { "name": "vendor-class-identifier", "data": "HTTPClient" } ] },
    { "name": "nmt-uefi", "test": "(option[93].hex == 0x0007 or option[93].hex == 0x0009) and not member('nmt-ipxe')",
      "boot-file-name": "grub/grubnetx64.efi" },
    { "name": "nmt-bios", "test": "option[93].hex == 0x0000 and not member('nmt-ipxe')",
      "boot-file-name": "pxelinux.0" }
  ]"#;

/// A site's kea-dhcp4.conf in `dir`: the README's classes, `subnet` (`10.9.0` for
/// 10.9.0.0/24, a pool from .100 to .150) on `interfaces`, nmt's `reservations` included at
/// the global level, and its control socket, lease file and log in `dir`. With no interfaces
/// the tests talk to Kea only through its control socket. `next_server` is the subnet's TFTP
/// server, for the machines nmt does not know yet.
pub(crate) fn kea_conf(
    dir: &Path,
    interfaces: &[&str],
    subnet: &str,
    reservations: &Path,
    next_server: Option<&str>,
) -> String {
    let interfaces: Vec<String> = interfaces.iter().map(|i| format!("\"{i}\"")).collect();
    let next_server = next_server
        .map(|n| format!("\"next-server\": \"{n}\",\n                 "))
        .unwrap_or_default();
    format!(
        r#"// the site's own kea-dhcp4.conf; nmt never edits it
{{ "Dhcp4": {{
  "interfaces-config": {{ "interfaces": [ {interfaces} ] }},
  "control-socket": {{ "socket-type": "unix", "socket-name": "{dir}/kea4-ctrl-socket" }},
  "lease-database": {{ "type": "memfile", "persist": true, "name": "{dir}/kea-leases4.csv" }},
  "authoritative": true,
  "reservations-global": true,
  "reservations-in-subnet": true,
  "client-classes": {CLASSES},
  "subnet4": [ {{ "id": 1, "subnet": "{subnet}.0/24",
                 {next_server}"pools": [ {{ "pool": "{subnet}.100 - {subnet}.150" }} ] }} ],
  "reservations": <?include "{res}"?>,
  "loggers": [ {{ "name": "kea-dhcp4", "severity": "INFO",
                 "output_options": [ {{ "output": "{dir}/kea-dhcp4.log" }} ] }} ]
}} }}
"#,
        interfaces = interfaces.join(", "),
        dir = dir.display(),
        res = reservations.display()
    )
}

/// How many times Kea was asked to reload, from its log in `dir`.
pub(crate) fn reloads(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("kea-dhcp4.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("COMMAND_RECEIVED") && l.contains("config-reload"))
        .count()
}

/// Whether a machine's `nmt history` (JSON) holds an acknowledgement read from Kea's log.
pub(crate) fn acked_by_kea(history: &Value) -> bool {
    history
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"]["server"] == "kea" && e["event"]["kind"] == "ack")
}

/// `conf` made invalid (as an admin's edit could): Kea refuses to load it.
fn break_conf(conf: &Path) -> String {
    let good = std::fs::read_to_string(conf).unwrap();
    std::fs::write(
        conf,
        good.replace("\"authoritative\": true", "\"authoritative\": \"maybe\""),
    )
    .unwrap();
    good
}

/// A kea-dhcp4 started on a configuration file, stopped when dropped.
struct Kea {
    child: Child,
    dir: PathBuf,
}

impl Kea {
    fn start(dir: &Path, conf: &Path) -> Kea {
        let log = std::fs::File::create(dir.join("kea.stdio")).unwrap();
        let child = Command::new(KEA)
            .arg("-c")
            .arg(conf)
            // Its pid and lock files in the test's directory, not /run/kea.
            .env("KEA_PIDFILE_DIR", dir)
            .env("KEA_LOCKFILE_DIR", dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{KEA}: {e}"));
        let kea = Kea {
            child,
            dir: dir.to_path_buf(),
        };
        let socket = kea.socket();
        wait_for(
            "kea-dhcp4's control socket",
            Duration::from_secs(20),
            || UnixStream::connect(&socket).is_ok(),
        );
        kea
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("kea4-ctrl-socket")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process still runs.
    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// A command through the control socket; Kea's answer.
    fn command(&self, command: &str) -> Value {
        let mut s = UnixStream::connect(self.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(
            serde_json::json!({ "command": command })
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = s.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if serde_json::from_slice::<Value>(&buf).is_ok() {
                break;
            }
        }
        serde_json::from_slice(&buf).unwrap()
    }

    /// The global reservations of the configuration Kea runs on, by MAC: (address, name).
    fn reservations(&self) -> Vec<(String, Option<String>, Option<String>)> {
        let v = self.command("config-get");
        assert_eq!(v["result"], 0, "{v}");
        // config-get leaves an empty list out.
        let none = Vec::new();
        v["arguments"]["Dhcp4"]["reservations"]
            .as_array()
            .unwrap_or(&none)
            .iter()
            .map(|r| {
                (
                    r["hw-address"].as_str().unwrap_or("").to_string(),
                    r["ip-address"].as_str().map(str::to_string),
                    r["hostname"].as_str().map(str::to_string),
                )
            })
            .collect()
    }

    /// How many times Kea was asked to reload.
    fn reloads(&self) -> usize {
        reloads(&self.dir)
    }
}

impl Drop for Kea {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new state, then a configuration that points nmt at Kea: the reservations file under the
/// state, `kea-dhcp4 -t` as the check (when `check`), and the control socket. (A site sets
/// nmt up first: Kea cannot start before the file it includes exists.)
fn with_kea(check: bool) -> (Nmt, PathBuf, PathBuf) {
    require_tool(KEA, "kea-dhcp4-server");
    let t = Nmt::new();
    let dir = t.dir.path().join("kea");
    std::fs::create_dir_all(&dir).unwrap();
    let reservations = t.path("dhcp/kea-nmt.json");
    let conf = dir.join("kea-dhcp4.conf");
    std::fs::write(&conf, kea_conf(&dir, &[], "10.9.0", &reservations, None)).unwrap();
    let mut toml = format!(
        "[hooks]\nkea_socket = \"{}\"\n",
        dir.join("kea4-ctrl-socket").display()
    );
    if check {
        toml.push_str(&format!("kea_check = \"{KEA} -t {}\"\n", conf.display()));
    }
    std::fs::write(t.path("nmt.toml"), toml).unwrap();
    (t, dir, conf)
}

#[test]
fn kea_reloads_through_its_socket_only_when_the_reservations_change() {
    let (t, dir, conf) = with_kea(true);
    let first = t.file("dhcp/kea-nmt.json");
    assert!(first.contains("generated by nmt"), "{first}");
    let mut kea = Kea::start(&dir, &conf);
    let pid = kea.pid();
    assert_eq!(kea.reservations(), vec![]);

    t.ok(&[
        "machine",
        "add",
        &mac(1),
        "--name",
        "node01",
        "--ip",
        "10.9.0.11",
    ]);
    assert_eq!(kea.reloads(), 1, "a new host: one reload");
    assert_eq!(
        kea.reservations(),
        vec![(
            mac(1),
            Some("10.9.0.11".to_string()),
            Some("node01".to_string())
        )]
    );
    // Policies and groups are no DHCP facts: Kea is left alone.
    t.ok(&["group", "add", "lab"]);
    t.ok(&["assign", "node01", "lab"]);
    t.ok(&["policy", "node01", "ltsp"]);
    t.ok(&["policy", "@lab", "localboot"]);
    assert_eq!(
        kea.reloads(),
        1,
        "policy and group changes never reload Kea"
    );
    // A new name is, and so is a new fixed address given with `nmt assign`.
    t.ok(&["name", "node01", "node99"]);
    assert_eq!(kea.reloads(), 2);
    assert_eq!(kea.reservations()[0].2.as_deref(), Some("node99"));
    t.ok(&["assign", "node99", "lab", "--ip", "10.9.0.12"]);
    assert_eq!(kea.reloads(), 3);
    assert_eq!(kea.reservations()[0].1.as_deref(), Some("10.9.0.12"));
    t.ok(&["assign", "node99", "lab", "--no-ip"]);
    assert_eq!(kea.reloads(), 4);
    assert_eq!(kea.reservations()[0].1, None);
    // Never restarted.
    assert!(kea.running());
    assert_eq!(kea.pid(), pid);
}

#[test]
fn a_file_kea_rejects_is_put_back_and_kea_keeps_serving_on_the_old_one() {
    // No check first: only Kea's own answer to config-reload stands between the file and
    // the server.
    let (t, dir, conf) = with_kea(false);
    let mut kea = Kea::start(&dir, &conf);
    t.ok(&[
        "machine",
        "add",
        &mac(1),
        "--name",
        "node01",
        "--ip",
        "10.9.0.11",
    ]);
    let pid = kea.pid();
    let before = t.file("dhcp/kea-nmt.json");
    let served = kea.reservations();
    assert_eq!(served.len(), 1);

    // The site's configuration breaks after Kea started (an admin's edit, a package
    // upgrade): the next reload is refused, whatever nmt wrote.
    let good_conf = break_conf(&conf);
    let err = t.fails(&["machine", "add", &mac(2), "--name", "node02"]);
    assert!(err.contains("Kea rejected the new"), "{err}");
    assert!(err.contains("config-reload"), "{err}");
    // Kea's own reason, and where the fault is.
    assert!(err.contains("expecting boolean"), "{err}");
    assert!(err.contains("the previous file is back in place"), "{err}");
    assert!(err.contains("Kea keeps serving"), "{err}");
    assert!(
        err.contains("the fault is elsewhere in Kea's configuration"),
        "{err}"
    );
    assert_eq!(t.file("dhcp/kea-nmt.json"), before);
    // Kea still serves, the same process on the configuration it had.
    assert!(kea.running());
    assert_eq!(kea.pid(), pid);
    assert_eq!(kea.reservations(), served);
    // The change itself is recorded; once the cause is fixed, `nmt render` brings Kea up to
    // date through the same reload.
    assert_eq!(t.json(&["machines"]).as_array().unwrap().len(), 2);
    std::fs::write(&conf, &good_conf).unwrap();
    t.ok(&["render"]);
    assert_eq!(kea.reservations().len(), 2);
    assert_eq!(kea.pid(), pid);
}

#[test]
fn with_kea_check_a_refused_configuration_never_reaches_kea() {
    let (t, dir, conf) = with_kea(true);
    let kea = Kea::start(&dir, &conf);
    break_conf(&conf);
    let before = t.file("dhcp/kea-nmt.json");
    let err = t.fails(&["machine", "add", &mac(1), "--name", "node01"]);
    assert!(err.contains("Kea rejected the new"), "{err}");
    assert!(err.contains("kea-dhcp4 -t"), "{err}");
    assert!(err.contains("Kea was not reloaded"), "{err}");
    assert_eq!(t.file("dhcp/kea-nmt.json"), before);
    assert_eq!(kea.reloads(), 0);
}

#[test]
fn an_unreachable_kea_is_reported_and_the_new_file_stays_for_its_next_start() {
    let (t, _dir, _conf) = with_kea(false);
    let err = t.fails(&["machine", "add", &mac(1), "--name", "node01"]);
    assert!(err.contains("Kea was not reloaded"), "{err}");
    assert!(err.contains("is kea-dhcp4 running"), "{err}");
    assert!(t.file("dhcp/kea-nmt.json").contains(&mac(1)));
}

/// Kea's memfile lease file, as Kea 2.2 writes it: two leases, a renewal, a deletion.
const LEASES: &str = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
10.9.0.100,52:54:00:00:00:01,01:52:54:00:00:00:01,7200,1765087200,1,0,0,pc1,0,
10.9.0.101,52:54:00:00:00:02,,7200,1765087300,1,0,0,,0,
10.9.0.100,52:54:00:00:00:01,01:52:54:00:00:00:01,7200,1765090800,1,0,0,pc1,0,
10.9.0.101,52:54:00:00:00:02,,0,1765087400,1,0,0,,0,
";

#[test]
fn keas_lease_file_is_read_once_or_as_a_log() {
    let t = Nmt::new();
    let file = t.dir.path().join("kea-leases4.csv");
    std::fs::write(&file, LEASES).unwrap();
    // Once: the last lease of each address.
    t.ok(&["replay", "leases", file.to_str().unwrap()]);
    assert_eq!(t.json(&["machines"]).as_array().unwrap().len(), 2);
    for (n, ip, starts) in [
        (1, "10.9.0.100", "2025-12-07T05:00:00"),
        (2, "10.9.0.101", "2025-12-07T04:01:40"),
    ] {
        let h = t.json(&["history", &mac(n)]);
        let lease = h
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"]["kind"] == "lease")
            .unwrap_or_else(|| panic!("no lease event: {h:#}"));
        assert_eq!(lease["event"]["ip"], ip, "{h:#}");
        assert!(
            lease["observed_at"].as_str().unwrap().starts_with(starts),
            "{h:#}"
        );
    }
    let again = t.event_count();
    t.ok(&["replay", "leases", file.to_str().unwrap()]);
    assert_eq!(
        t.event_count(),
        again,
        "replaying a file again adds nothing"
    );

    // As a log: every line Kea appended is an event of its own, at the lease's start.
    let t = Nmt::new();
    t.ok(&["replay", "logs", file.to_str().unwrap()]);
    let history = t.json(&["history", &mac(1)]);
    let events: Vec<&Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] != "MachineDiscovered")
        .collect();
    assert!(
        events.iter().any(|e| e["observed_at"]
            .as_str()
            .unwrap()
            .starts_with("2025-12-07T04:00:00")),
        "the first lease starts at expire - valid_lifetime: {history:#}"
    );
    assert_eq!(t.json(&["machines"]).as_array().unwrap().len(), 2);
}
