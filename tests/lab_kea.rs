//! A real DHCP exchange with Kea: kea-dhcp4 serves DHCP in one network namespace with the
//! README's client classes and nmt's reservations file included, busybox `udhcpc` asks from a
//! second one, and `nmtd` (in the server's namespace, as on a boot server) follows Kea's log.
//! The client is discovered from that log; once nmt gives it a name and a fixed address, nmt
//! checks Kea's configuration, reloads Kea through its control socket (the same process: it
//! is never restarted), and the client's next exchange gets the reserved address, nmt's next
//! server, and the boot file its class chooses. A policy change never reloads Kea.
//!
//! Needs root (network namespaces) and Debian's `kea-dhcp4-server`, `busybox` and
//! `iproute2`. Without them the test fails; it never skips. Only 10.213.7.0/24 inside the
//! namespaces it creates is used.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kea::{KEA, acked_by_kea, kea_conf, reloads};
use crate::lab_dnsmasq::{CLIENT_MAC, Lab, Leased};
use crate::util::{Daemon, Nmt, must, require_root, require_tool, wait_for};

const SERVER_IP: &str = "10.213.7.1";
/// The address nmt reserves for the client: outside the pool, inside the subnet.
const RESERVED: &str = "10.213.7.20";

/// What udhcpc sends to look like a PXE client: its architecture (option 93), and iPXE's user
/// class (option 77) when `ipxe`.
fn pxe(arch: &str, ipxe: bool) -> Vec<String> {
    let mut o = vec!["-x".to_string(), format!("0x5d:{arch}")];
    if ipxe {
        o.extend(["-x".to_string(), "0x4d:69505845".to_string()]);
    }
    o
}

fn exchange(lab: &mut Lab, arch: &str, ipxe: bool) -> Leased {
    let o = pxe(arch, ipxe);
    let o: Vec<&str> = o.iter().map(String::as_str).collect();
    lab.exchange_with(&o)
}

#[test]
fn kea_serves_nmts_reservations_and_reloads_without_a_restart() {
    let started = Instant::now();
    require_root("it runs a real DHCP exchange in network namespaces");
    require_tool(KEA, "kea-dhcp4-server");
    require_tool("busybox", "busybox-static");
    require_tool("ss", "iproute2");

    let t = Nmt::new();
    let mut lab = Lab::new(&t);
    let dir = lab.dir.clone();
    let conf = dir.join("kea-dhcp4.conf");
    let reservations = t.path("dhcp/kea-nmt.json");
    std::fs::write(
        &conf,
        kea_conf(
            &dir,
            &[lab.server_if.as_str()],
            "10.213.7",
            &reservations,
            None,
        ),
    )
    .unwrap();
    // nmt checks the whole configuration and reloads Kea through its socket; nmtd runs in the
    // server's namespace, where Kea's interface is (kea-dhcp4 -t checks it exists).
    std::fs::write(
        t.path("nmt.toml"),
        format!(
            "[render]\nnext_server = \"{SERVER_IP}\"\n\n[hooks]\nkea_check = \"{KEA} -t {c}\"\n\
             kea_socket = \"{s}\"\n",
            c = conf.display(),
            s = dir.join("kea4-ctrl-socket").display()
        ),
    )
    .unwrap();
    t.ok(&["render"]);
    let log = dir.join("kea-dhcp4.log");
    let _d = Daemon::start_in(
        &t,
        Some(&lab.server_ns),
        "127.0.0.1:0",
        &["--log", log.to_str().unwrap()],
    );

    // Kea, as its package runs it, but with its pid and lock files in the lab.
    let stdio = std::fs::File::create(dir.join("kea.stdio")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.server_ns, KEA, "-c"])
        .arg(&conf)
        .env("KEA_PIDFILE_DIR", &dir)
        .env("KEA_LOCKFILE_DIR", &dir)
        .stdin(Stdio::null())
        .stdout(stdio.try_clone().unwrap())
        .stderr(stdio)
        .spawn()
        .expect("kea-dhcp4 could not be started");
    // `ip netns exec` execs Kea: this is Kea's pid.
    let pid = child.id();
    lab.server = Some(child);
    let ns = lab.server_ns.clone();
    wait_for("Kea listening on udp/67", Duration::from_secs(20), || {
        must(&["ip", "netns", "exec", &ns, "ss", "-Hulpn", "sport", "= :67"]).contains("kea")
    });

    // An unknown machine: a pool address; the iPXE class is for machines nmt knows, so iPXE
    // gets pxelinux, which finds the entry nmt writes on discovery.
    let first = exchange(&mut lab, "0000", true);
    assert!(first.ip.starts_with("10.213.7.1"), "{first:?}");
    assert_eq!(first.boot_file, "pxelinux.0", "{first:?}");
    // Discovered from Kea's log.
    wait_for(
        "the client in `nmt machines`, from Kea's log",
        Duration::from_secs(10),
        || {
            t.json(&["machines"])
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["mac"] == CLIENT_MAC && m["last_ip"] == first.ip.as_str())
        },
    );
    let history = t.json(&["history", CLIENT_MAC]);
    assert!(acked_by_kea(&history), "{history:#}");
    assert_eq!(reloads(&dir), 0, "a discovery never reloads Kea");

    // Named, grouped, with a fixed address: Kea is checked and reloaded, not restarted.
    t.ok(&["group", "add", "lab"]);
    t.ok(&["name", CLIENT_MAC, "kea07"]);
    assert_eq!(reloads(&dir), 1);
    t.ok(&["assign", "kea07", "lab", "--ip", RESERVED]);
    assert_eq!(reloads(&dir), 2);
    assert!(lab.server.as_mut().unwrap().try_wait().unwrap().is_none());
    assert_eq!(lab.server.as_ref().unwrap().id(), pid);
    // A policy is no DHCP fact.
    t.ok(&["policy", "kea07", "ltsp"]);
    t.ok(&["policy", "@lab", "localboot"]);
    assert_eq!(reloads(&dir), 2, "policy changes never reload Kea");

    // The next exchanges: the reserved address, nmt's next server, and the boot file by class.
    let ipxe = exchange(&mut lab, "0000", true);
    assert_eq!(
        (
            ipxe.ip.as_str(),
            ipxe.boot_file.as_str(),
            ipxe.siaddr.as_str()
        ),
        (RESERVED, "ipxe/boot.ipxe", SERVER_IP)
    );
    let uefi = exchange(&mut lab, "0007", false);
    assert_eq!(
        (uefi.ip.as_str(), uefi.boot_file.as_str()),
        (RESERVED, "grub/grubnetx64.efi")
    );
    let bios = exchange(&mut lab, "0000", false);
    assert_eq!(
        (bios.ip.as_str(), bios.boot_file.as_str()),
        (RESERVED, "pxelinux.0")
    );
    wait_for(
        "the reserved address in nmt, from Kea's log",
        Duration::from_secs(10),
        || t.json(&["machines", "kea07"])[0]["last_ip"] == RESERVED,
    );
    assert_eq!(lab.server.as_ref().unwrap().id(), pid);
    eprintln!("lab_kea: {:?}", started.elapsed());
}
