//! The netboot lab: QEMU virtual machines PXE-boot from a real DHCP server (dnsmasq, or ISC
//! dhcpd or kea-dhcp4 with dnsmasq as TFTP server beside it) inside a network namespace, and a real
//! `nmtd` follows the server's log, writes the boot entries they fetch, and takes their
//! installer's report. The tests check the VM's serial console (what really happened)
//! against `nmt machines`, `nmt history` and `nmt boots` (what nmt says happened).
//!
//! What the VMs boot is built by `build-assets.sh` beside this file from Debian's packages:
//! the installer kernel and a tiny busybox initramfs of nmt's own. Each lab has its own
//! namespace (a bridge with 10.213.0.1/24 and a tap per VM); nothing outside it is touched,
//! and dropping the lab removes it, also when a test fails. On failure the lab keeps its
//! directory and prints the serial logs, the DHCP server's log and nmtd's log.
//!
//! `power.rs` beside this file puts a VM under a BMC of its own (OpenIPMI's `ipmi_sim`, whose
//! chassis is the VM's QEMU) or wakes one with Wake-on-LAN, for `nmt power` and `nmt policy
//! … --reboot`.
//!
//! The lab needs root, QEMU and the packages `tests/deps` installs; it never skips. It runs
//! under KVM where the host has real KVM (`/sys/module/kvm_intel` or `kvm_amd`), else
//! under software emulation (TCG).

mod installer;
mod power;
mod stories;

pub use installer::{firmwares as installer_firmwares, story as installer_story};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::kea::KEA;
use crate::util::{Daemon, Nmt, must, require_file, require_root, require_tool, run, wait_for};

/// The lab's server address on its bridge (every lab has its own namespace).
pub const SERVER: &str = "10.213.0.1";
/// nmtd's machine-facing listener inside the lab.
pub const HTTP: &str = "10.213.0.1:8017";
/// The bridge inside the namespace.
pub const BRIDGE: &str = "nmtbr0";

/// How long one boot may take before the VM is stopped (TFTP under TCG can stall).
const BOOT_LIMIT: Duration = Duration::from_secs(180);

/// Fail loudly (never skip) when the lab cannot run here.
fn require_lab_host() {
    require_root("the netboot lab runs QEMU VMs in network namespaces");
    for (tool, package) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("dnsmasq", "dnsmasq-base"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
        ("timeout", "coreutils"),
        ("cpio", "cpio"),
        ("grub-mkimage", "grub-common"),
    ] {
        require_tool(tool, package);
    }
    for (file, package) in [
        ("/usr/lib/ipxe/qemu/efi-e1000.rom", "ipxe-qemu"),
        ("/usr/share/seabios/bios-256k.bin", "seabios"),
        ("/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf"),
        (
            "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux",
            "debian-installer-12-netboot-amd64",
        ),
        ("/bin/busybox", "busybox-static"),
        ("/usr/lib/PXELINUX/pxelinux.0", "pxelinux"),
        (
            "/usr/lib/syslinux/modules/bios/ldlinux.c32",
            "syslinux-common",
        ),
        ("/usr/lib/grub/x86_64-efi/normal.mod", "grub-efi-amd64-bin"),
    ] {
        require_file(file, package);
    }
}

/// QEMU's accelerator: KVM only where the host really has it.
pub fn accel() -> &'static str {
    if Path::new("/sys/module/kvm_intel").exists() || Path::new("/sys/module/kvm_amd").exists() {
        "kvm"
    } else {
        "tcg"
    }
}

/// The kernel, initramfs, boot sector and TFTP files, built once per test run.
pub struct Assets {
    pub dir: PathBuf,
}

pub fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        require_lab_host();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("netboot-assets");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netboot/build-assets.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{} failed; the netboot lab cannot run (it never skips):\n{}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "netboot lab: assets in {}, QEMU accelerator {}",
            dir.display(),
            accel()
        );
        Assets { dir }
    })
}

/// The boot sector the lab's installer writes, with `message` in its message area.
pub fn boot_sector(message: &str) -> Vec<u8> {
    let mut s = std::fs::read(assets().dir.join("mbr.bin")).unwrap();
    let m = format!("{message}\r\n\0");
    assert!(m.len() <= 0x1b8 - 0x40);
    s[0x40..0x40 + m.len()].copy_from_slice(m.as_bytes());
    s
}

/// Which DHCP server the lab runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dhcp {
    /// dnsmasq for DHCP and TFTP.
    Dnsmasq,
    /// ISC dhcpd (with nmt's include), and dnsmasq beside it for TFTP only.
    IscDhcpd,
    /// kea-dhcp4 (the README's classes, nmt's reservations included, its control socket),
    /// and dnsmasq beside it for TFTP only.
    Kea,
}

/// How a VM starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, iPXE ROM, pxelinux.
    Bios,
    /// OVMF, iPXE's EFI driver, GRUB.
    Uefi,
}

/// One virtual machine of a lab: its NIC's MAC, its tap, its disk.
pub struct Vm {
    pub name: String,
    pub mac: String,
    pub firmware: Firmware,
    tap: String,
    pub disk: PathBuf,
    vars: Option<PathBuf>,
}

/// What one boot of a VM showed.
pub struct Boot {
    pub vm: String,
    /// QEMU's exit status: 0 after a poweroff, 33 from the marker boot sector, None when
    /// it had to be stopped.
    pub code: Option<i32>,
    /// The serial console.
    pub serial: String,
    pub log: PathBuf,
}

impl Boot {
    /// Require a marker on the serial console.
    pub fn shows(&self, marker: &str) -> &Self {
        assert!(
            self.serial.contains(marker),
            "{}: the serial console ({}) does not show {marker:?}; its end:\n{}",
            self.vm,
            self.log.display(),
            tail(&self.serial, 40)
        );
        self
    }

    /// Require that a marker is absent.
    pub fn lacks(&self, marker: &str) -> &Self {
        assert!(
            !self.serial.contains(marker),
            "{}: the serial console ({}) shows {marker:?}; its end:\n{}",
            self.vm,
            self.log.display(),
            tail(&self.serial, 40)
        );
        self
    }

    /// Require QEMU's exit status.
    pub fn exited(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "{}: QEMU's exit status (serial console {}); its end:\n{}",
            self.vm,
            self.log.display(),
            tail(&self.serial, 40)
        );
        self
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One lab: a namespace with a bridge, the DHCP/TFTP servers, nmtd, and VMs.
pub struct Lab {
    pub t: Nmt,
    ns: String,
    pub dir: PathBuf,
    servers: Vec<(String, Child)>,
    daemon: Option<Daemon>,
    vms: usize,
    /// Every serial log, for the failure report.
    serial_logs: Vec<PathBuf>,
    started: Instant,
}

impl Lab {
    /// A lab with its servers and nmtd running, and nothing booted yet.
    pub fn start(dhcp: Dhcp) -> Lab {
        Lab::start_with(dhcp, "")
    }

    /// [`Lab::start`], with more of nmt's configuration (TOML sections) for nmtd.
    pub fn start_with(dhcp: Dhcp, config: &str) -> Lab {
        Lab::start_full(dhcp, "", config)
    }

    /// [`Lab::start_with`], with more keys for nmt's `[render]` section too.
    pub fn start_full(dhcp: Dhcp, render: &str, config: &str) -> Lab {
        static N: AtomicU32 = AtomicU32::new(0);
        let assets = assets();
        remove_stale_namespaces();
        let t = Nmt::new();
        let dir = t.dir.path().join("lab");
        std::fs::create_dir_all(&dir).unwrap();
        let ns = format!(
            "nmt-nb-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut lab = Lab {
            t,
            ns: String::new(),
            dir,
            servers: Vec::new(),
            daemon: None,
            vms: 0,
            serial_logs: Vec::new(),
            started: Instant::now(),
        };
        // nmt's configuration: the lab's addresses, a serial console on every entry, and the
        // reload hook a dnsmasq site would use.
        let state = lab.t.state();
        std::fs::create_dir_all(&state).unwrap();
        let pid = lab.dir.join("dnsmasq.pid");
        // With Kea, nmt checks Kea's whole configuration and reloads it through its socket
        // (nmtd runs in the lab's namespace, where the interface Kea's check wants is).
        let kea = if dhcp == Dhcp::Kea {
            format!(
                "kea_check = \"{KEA} -t {c}\"\nkea_socket = \"{s}\"\n",
                c = lab.dir.join("kea-dhcp4.conf").display(),
                s = lab.dir.join("kea4-ctrl-socket").display()
            )
        } else {
            String::new()
        };
        std::fs::write(
            state.join("nmt.toml"),
            format!(
                "[render]\nnext_server = \"{SERVER}\"\nhttp_url = \"http://{HTTP}\"\n\
                 serial_console = \"ttyS0,115200\"\n{render}\n[hooks]\n\
                 dnsmasq_reload = \"test ! -e {p} || kill -HUP $(cat {p})\"\n{kea}\n{config}",
                p = pid.display()
            ),
        )
        .unwrap();
        // The TFTP root's static part, and what the lab's profiles boot.
        let tftp = state.join("tftp");
        copy_tree(&assets.dir.join("tftp"), &tftp);
        std::fs::create_dir_all(tftp.join("lab")).unwrap();
        for f in ["vmlinuz", "initrd.gz"] {
            std::fs::copy(assets.dir.join(f), tftp.join("lab").join(f)).unwrap();
        }

        let out = run(&["ip", "netns", "add", &ns]);
        assert!(
            out.status.success(),
            "the netboot lab needs network namespaces (root, CAP_NET_ADMIN); it does not skip. \
             `ip netns add` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab.ns = ns;
        lab.ip(&["link", "set", "lo", "up"]);
        lab.ip(&["link", "add", BRIDGE, "type", "bridge"]);
        lab.ip(&["addr", "add", &format!("{SERVER}/24"), "dev", BRIDGE]);
        lab.ip(&["addr", "add", "fd00:213::1/64", "dev", BRIDGE, "nodad"]);
        lab.ip(&["link", "set", BRIDGE, "up"]);
        // Multicast restores: the bridge forwards every group, and the server's side routes
        // them onto it.
        lab.ip(&[
            "link",
            "set",
            BRIDGE,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        lab.ip(&["route", "add", "224.0.0.0/4", "dev", BRIDGE]);

        // nmtd, inside the namespace so that the VMs reach its HTTP listener; the CLI
        // reaches it through its socket in the state directory.
        let log = lab.dir.join(match dhcp {
            Dhcp::Dnsmasq => "dnsmasq.log",
            Dhcp::IscDhcpd => "dhcpd.log",
            Dhcp::Kea => "kea-dhcp4.log",
        });
        let mut extra = vec!["--log".to_string(), log.display().to_string()];
        if dhcp != Dhcp::Dnsmasq {
            extra.push("--log".into());
            extra.push(lab.dir.join("dnsmasq.log").display().to_string());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        lab.daemon = Some(Daemon::start_in(&lab.t, Some(&lab.ns), HTTP, &extra));
        // The lab's own profiles: nmt's installer and LTSP stand-ins.
        lab.nmt(&[
            "profile",
            "add",
            "lab",
            "--kind",
            "install",
            "--answer",
            "preseed",
            "--kernel",
            "lab/vmlinuz",
            "--initrd",
            "lab/initrd.gz",
            "--args",
            "quiet nmt.role=install nmt.report={report_url}",
        ]);
        lab.nmt(&[
            "profile",
            "add",
            "ltsp",
            "--replace",
            "--kind",
            "ltsp",
            "--kernel",
            "lab/vmlinuz",
            "--initrd",
            "lab/initrd.gz",
            "--args",
            "quiet nmt.role=ltsp",
        ]);
        match dhcp {
            Dhcp::Dnsmasq => lab.start_dnsmasq(true),
            Dhcp::IscDhcpd => {
                lab.start_dnsmasq(false);
                lab.start_dhcpd();
            }
            Dhcp::Kea => {
                lab.start_dnsmasq(false);
                lab.start_kea();
            }
        }
        lab
    }

    /// `ip` inside the namespace.
    fn ip(&self, args: &[&str]) {
        let mut a = vec!["ip", "-n", &self.ns];
        a.extend_from_slice(args);
        must(&a);
    }

    /// Run nmt; require success; its stdout.
    pub fn nmt(&self, args: &[&str]) -> String {
        self.t.ok(args)
    }

    /// Run nmt with --json.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        self.t.json(args)
    }

    fn spawn_server(&mut self, name: &str, args: &[String]) {
        let stdio = std::fs::File::create(self.dir.join(format!("{name}.stdio"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdio.try_clone().unwrap())
            .stderr(stdio)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        self.servers.push((name.to_string(), child));
    }

    /// Wait until something listens on `proto`/`port` inside the namespace.
    fn wait_listening(&mut self, what: &str, proto: &str, port: u16) {
        let start = Instant::now();
        loop {
            for (name, child) in &mut self.servers {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "{name} exited at start ({status}):\n{}",
                        std::fs::read_to_string(self.dir.join(format!("{name}.stdio")))
                            .unwrap_or_default()
                    );
                }
            }
            let out = must(&[
                "ip",
                "netns",
                "exec",
                &self.ns,
                "ss",
                &format!("-Hln{proto}"),
                "sport",
                &format!("= :{port}"),
            ]);
            if !out.trim().is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{what} does not listen on {proto}/{port} after 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// dnsmasq for TFTP, and for DHCP too when `dhcp`. The options that cut iPXE's
    /// configuration from 16 s to 1 s: no-ping, a router advertisement, and iPXE's
    /// "no-pxedhcp" (option 175.176). DHCP names a name server, as a site's does: nothing
    /// answers there, but Debian's installer stops to ask for one when DHCP gives none.
    fn start_dnsmasq(&mut self, dhcp: bool) {
        let state = self.t.state();
        let mut conf = format!(
            "port=0\ninterface={BRIDGE}\nbind-interfaces\nenable-tftp\ntftp-root={tftp}\n\
             log-facility={log}\npid-file={pid}\nuser=root\n",
            tftp = state.join("tftp").display(),
            log = self.dir.join("dnsmasq.log").display(),
            pid = self.dir.join("dnsmasq.pid").display(),
        );
        if dhcp {
            write!(
                conf,
                "dhcp-range=10.213.0.100,10.213.0.199,1h\n\
                 dhcp-range=fd00:213::,ra-only,64\nenable-ra\nno-ping\nlog-dhcp\n\
                 dhcp-option=option:dns-server,{SERVER}\n\
                 dhcp-leasefile={leases}\ndhcp-hostsfile={hosts}\n\
                 dhcp-option=encap:175,176,1\n\
                 dhcp-match=set:efi64,option:client-arch,7\n\
                 dhcp-boot=tag:efi64,grub/x86_64-efi/core.efi\n\
                 dhcp-boot=tag:!efi64,pxelinux.0\n",
                leases = self.dir.join("dnsmasq.leases").display(),
                hosts = state.join("dhcp/dnsmasq-nmt.hosts").display(),
            )
            .unwrap();
        }
        let path = self.dir.join("dnsmasq.conf");
        std::fs::write(&path, conf).unwrap();
        self.spawn_server(
            "dnsmasq",
            &[
                "dnsmasq".into(),
                "--keep-in-foreground".into(),
                format!("--conf-file={}", path.display()),
            ],
        );
        self.wait_listening("dnsmasq", "u", 69);
        if dhcp {
            self.wait_listening("dnsmasq", "u", 67);
        }
    }

    /// ISC dhcpd with the admin's part of dhcpd.conf and nmt's include. In the foreground
    /// dhcpd writes its log to stderr without timestamps; the lab stamps each line the way
    /// syslog would and appends it to dhcpd.log, which nmtd follows.
    fn start_dhcpd(&mut self) {
        require_tool("/usr/sbin/dhcpd", "isc-dhcp-server");
        let state = self.t.state();
        let include = state.join("dhcp/dhcpd-nmt.conf");
        let conf = format!(
            "authoritative;\nddns-update-style none;\ndefault-lease-time 3600;\nping-check false;\n\
             option space ipxe;\noption ipxe-encap-opts code 175 = encapsulate ipxe;\n\
             option ipxe.no-pxedhcp code 176 = unsigned integer 8;\n\
             option arch code 93 = unsigned integer 16;\n\
             subnet 10.213.0.0 netmask 255.255.255.0 {{\n\
             \x20 range 10.213.0.100 10.213.0.199;\n\
             \x20 next-server {SERVER};\n\
             \x20 option ipxe.no-pxedhcp 1;\n\
             \x20 if option arch = 00:07 {{ filename \"grub/x86_64-efi/core.efi\"; }}\n\
             \x20 else {{ filename \"pxelinux.0\"; }}\n\
             }}\ninclude \"{}\";\n",
            include.display()
        );
        let path = self.dir.join("dhcpd.conf");
        std::fs::write(&path, conf).unwrap();
        let leases = self.dir.join("dhcpd.leases");
        if !leases.exists() {
            std::fs::write(&leases, "").unwrap();
        }
        let check = Command::new("/usr/sbin/dhcpd")
            .args(["-t", "-4", "-cf"])
            .arg(&path)
            .output()
            .expect("/usr/sbin/dhcpd runs");
        assert!(
            check.status.success(),
            "dhcpd -t refuses the lab's dhcpd.conf with nmt's include:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "/usr/sbin/dhcpd"])
            .args(["-4", "-d", "-f", "-cf"])
            .arg(&path)
            .arg("-lf")
            .arg(&leases)
            .arg("-pf")
            .arg(self.dir.join("dhcpd.pid"))
            .arg(BRIDGE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dhcpd");
        let stderr = child.stderr.take().unwrap();
        let log = self.dir.join("dhcpd.log");
        let pid = child.id();
        std::thread::spawn(move || stamp_syslog(stderr, &log, pid));
        self.servers.push(("dhcpd".into(), child));
        self.wait_listening("dhcpd", "u", 67);
    }

    /// kea-dhcp4 on the lab's bridge with the README's classes and nmt's reservations
    /// included, as its package runs it but with its pid and lock files in the lab. nmtd is
    /// started first, as on a site: Kea cannot start before the file it includes exists.
    fn start_kea(&mut self) {
        require_tool(KEA, "kea-dhcp4-server");
        let reservations = self.t.state().join("dhcp/kea-nmt.json");
        // The lab's UEFI boot file is the GRUB that grub-mknetdir made.
        let conf = crate::kea::kea_conf(
            &self.dir,
            &[BRIDGE],
            "10.213.0",
            &reservations,
            Some(SERVER),
        )
        .replace("grub/grubnetx64.efi", "grub/x86_64-efi/core.efi");
        let path = self.dir.join("kea-dhcp4.conf");
        std::fs::write(&path, conf).unwrap();
        wait_for(
            "nmtd's first render of the reservations file",
            Duration::from_secs(30),
            || reservations.exists(),
        );
        // Inside the namespace: Kea's check wants the interface to exist.
        let check = Command::new("ip")
            .args(["netns", "exec", &self.ns, KEA, "-t"])
            .arg(&path)
            .output()
            .expect("kea-dhcp4 runs");
        assert!(
            check.status.success(),
            "kea-dhcp4 -t refuses the lab's configuration with nmt's reservations:\n{}",
            String::from_utf8_lossy(&check.stdout)
        );
        let stdio = std::fs::File::create(self.dir.join("kea.stdio")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, KEA, "-c"])
            .arg(&path)
            .env("KEA_PIDFILE_DIR", &self.dir)
            .env("KEA_LOCKFILE_DIR", &self.dir)
            .stdin(Stdio::null())
            .stdout(stdio.try_clone().unwrap())
            .stderr(stdio)
            .spawn()
            .expect("kea-dhcp4");
        self.servers.push(("kea".into(), child));
        self.wait_listening("kea", "u", 67);
    }

    /// The pid of the running kea-dhcp4 (`ip netns exec` execs it), and whether it still runs.
    pub fn kea_pid(&mut self) -> u32 {
        let (_, kea) = self
            .servers
            .iter_mut()
            .find(|(n, _)| n == "kea")
            .expect("the lab runs Kea");
        assert!(
            kea.try_wait().unwrap().is_none(),
            "kea-dhcp4 exited; see {}",
            self.dir.join("kea.stdio").display()
        );
        kea.id()
    }

    /// Stop dhcpd and start it again, as an admin does after nmt rewrote its include (dhcpd
    /// has no reload).
    pub fn restart_dhcpd(&mut self) {
        if let Some(i) = self.servers.iter().position(|(n, _)| n == "dhcpd") {
            let (_, mut c) = self.servers.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
        self.start_dhcpd();
    }

    /// A VM with a blank 64 MiB disk (a USB stick: the installer kernel's own initrd has
    /// drivers for that, and SeaBIOS and OVMF boot from it).
    pub fn vm(&mut self, name: &str, mac: &str, firmware: Firmware) -> Vm {
        let tap = format!("nmttap{}", self.vms);
        self.vms += 1;
        self.ip(&["tuntap", "add", "dev", &tap, "mode", "tap"]);
        self.ip(&["link", "set", &tap, "master", BRIDGE]);
        self.ip(&["link", "set", &tap, "up"]);
        let disk = self.dir.join(format!("{name}.disk"));
        let f = std::fs::File::create(&disk).unwrap();
        f.set_len(64 << 20).unwrap();
        let vars = (firmware == Firmware::Uefi).then(|| {
            let v = self.dir.join(format!("{name}.vars"));
            std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &v).unwrap();
            v
        });
        Vm {
            name: name.into(),
            mac: mac.into(),
            firmware,
            tap,
            disk,
            vars,
        }
    }

    /// Boot VMs at the same time, each until it powers off or ends through its boot sector.
    ///
    /// One batch of VMs runs at a time in the whole test run: two cores emulating more VMs
    /// than that only makes every firmware's timeouts the thing under test.
    pub fn boot(&mut self, vms: &[&Vm]) -> Vec<Boot> {
        self.boot_cut(vms, None)
    }

    /// Boot one VM and cut its power (stop QEMU) as soon as its console shows `marker`: a
    /// machine switched off in the middle of something.
    pub fn boot_cut_at(&mut self, vm: &Vm, marker: &str) -> Boot {
        self.boot_cut(&[vm], Some(marker)).pop().unwrap()
    }

    /// QEMU's arguments for a VM: its NIC on its tap, its disk, the serial console on
    /// standard output, and `isa-debug-exit`. With `fixed_order` the NIC boots first and the
    /// disk second (`bootindex`); without, neither has a boot index and the caller gives
    /// `-boot order=…` (a BMC chooses it at each power-on). No `-no-reboot`: whoever wants a
    /// reset to end QEMU adds it.
    fn qemu_args(&self, vm: &Vm, fixed_order: bool) -> Vec<String> {
        let index = |i: u32| {
            if fixed_order {
                format!(",bootindex={i}")
            } else {
                String::new()
            }
        };
        let mut args: Vec<String> = vec![
            "-accel".into(),
            accel().into(),
            "-nographic".into(),
            "-no-user-config".into(),
            "-netdev".into(),
            format!("tap,id=n0,ifname={},script=no,downscript=no", vm.tap),
            "-device".into(),
            format!("e1000,netdev=n0,mac={}{}", vm.mac, index(1)),
            "-device".into(),
            "qemu-xhci,id=xhci".into(),
            "-drive".into(),
            format!("file={},if=none,id=d0,format=raw", vm.disk.display()),
            "-device".into(),
            format!("usb-storage,bus=xhci.0,drive=d0{}", index(2)),
            "-device".into(),
            "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
        ];
        match vm.firmware {
            Firmware::Bios => {
                args.extend(["-machine", "pc", "-m", "256"].map(String::from));
                if fixed_order {
                    args.extend(["-boot", "reboot-timeout=100"].map(String::from));
                }
            }
            Firmware::Uefi => {
                args.extend(["-m", "512"].map(String::from));
                args.extend(ovmf_args(vm));
            }
        }
        args
    }

    /// `ip netns exec NS timeout LIMIT qemu-system-x86_64 -no-reboot`: the start of every
    /// VM's command line (`timeout` passes a signal on to QEMU).
    fn qemu_command(&self, limit: Duration) -> Vec<String> {
        vec![
            "netns".into(),
            "exec".into(),
            self.ns.clone(),
            "timeout".into(),
            "--kill-after=5".into(),
            limit.as_secs().to_string(),
            "qemu-system-x86_64".into(),
            "-no-reboot".into(),
        ]
    }

    fn boot_cut(&mut self, vms: &[&Vm], cut_at: Option<&str>) -> Vec<Boot> {
        let _turn = one_batch();
        let mut running = Vec::new();
        for vm in vms {
            let n = self.serial_logs.len();
            let log = self.dir.join(format!("serial-{n:02}-{}.log", vm.name));
            self.serial_logs.push(log.clone());
            let mut args = self.qemu_command(BOOT_LIMIT);
            args.extend(self.qemu_args(vm, true));
            let out = std::fs::File::create(&log).unwrap();
            let child = Command::new("ip")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("qemu-system-x86_64");
            running.push((vm.name.clone(), child, log, Instant::now()));
        }
        running
            .into_iter()
            .map(|(vm, mut child, log, start)| {
                if let Some(marker) = cut_at {
                    while child.try_wait().unwrap().is_none() {
                        let seen = std::fs::read(&log).unwrap_or_default();
                        if String::from_utf8_lossy(&seen).contains(marker) {
                            // `timeout` passes the signal on to QEMU.
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(child.id() as i32),
                                nix::sys::signal::Signal::SIGTERM,
                            );
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                }
                let status = child.wait().unwrap();
                let took = start.elapsed();
                let serial =
                    String::from_utf8_lossy(&std::fs::read(&log).unwrap()).replace('\r', "");
                eprintln!(
                    "netboot lab: {vm} booted in {:.1} s, QEMU exit {status}",
                    took.as_secs_f64()
                );
                Boot {
                    vm,
                    code: status.code().filter(|&c| c != 124 && c != 137),
                    serial,
                    log,
                }
            })
            .collect()
    }

    /// Boot one VM.
    pub fn boot_one(&mut self, vm: &Vm) -> Boot {
        self.boot(&[vm]).pop().unwrap()
    }

    /// nmtd's own log.
    pub fn nmtd_log(&self) -> String {
        std::fs::read_to_string(self.t.dir.path().join("nmtd.log")).unwrap_or_default()
    }

    /// The DHCP server's and TFTP server's logs.
    pub fn server_log(&self) -> String {
        let mut s = String::new();
        for f in ["dhcpd.log", "dnsmasq.log"] {
            if let Ok(b) = std::fs::read(self.dir.join(f)) {
                s.push_str(&String::from_utf8_lossy(&b));
            }
        }
        s
    }

    /// Wait until nmt counts `n` boots of `machine`; its boots.
    pub fn boots(&self, machine: &str, n: usize) -> Vec<serde_json::Value> {
        let mut boots = Vec::new();
        let start = Instant::now();
        loop {
            if let Ok(out) = self.t.cmd(&["boots", machine, "--json"]).output()
                && out.status.success()
            {
                boots = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .clone();
                if boots.len() >= n {
                    return boots;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "nmt counts {} boot(s) of {machine}, not {n}: {boots:#?}",
                boots.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn report(&self) {
        eprintln!(
            "=== netboot lab failed after {:.0} s; kept in {}",
            self.started.elapsed().as_secs_f64(),
            self.t.dir.path().display()
        );
        for log in &self.serial_logs {
            let text =
                String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).replace('\r', "");
            eprintln!("=== serial console {}\n{}", log.display(), tail(&text, 80));
        }
        for f in ["dhcpd.log", "dnsmasq.log", "dnsmasq.stdio", "dhcpd.stdio"] {
            let p = self.dir.join(f);
            if let Ok(b) = std::fs::read(&p) {
                eprintln!(
                    "=== {}\n{}",
                    p.display(),
                    tail(&String::from_utf8_lossy(&b), 200)
                );
            }
        }
        let nmtd = self.t.dir.path().join("nmtd.log");
        eprintln!(
            "=== {}\n{}",
            nmtd.display(),
            tail(&std::fs::read_to_string(&nmtd).unwrap_or_default(), 100)
        );
        if let Ok(o) = self.t.cmd(&["machines"]).output() {
            eprintln!("=== nmt machines\n{}", String::from_utf8_lossy(&o.stdout));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.ns.is_empty() {
            // The test dir keeps itself (and says so) when dropped during a panic.
            self.report();
        }
        self.daemon.take();
        for (_, mut c) in self.servers.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !self.ns.is_empty() {
            delete_namespace(&self.ns);
        }
        eprintln!(
            "netboot lab: {:.1} s in all",
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// The q35 machine with OVMF's code (read-only) and the VM's own copy of its variables.
fn ovmf_args(vm: &Vm) -> Vec<String> {
    vec![
        "-machine".into(),
        "q35".into(),
        "-drive".into(),
        "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
        "-drive".into(),
        format!(
            "if=pflash,format=raw,unit=1,file={}",
            vm.vars.as_ref().unwrap().display()
        ),
    ]
}

/// Kill what still runs in a namespace, then delete it.
fn delete_namespace(ns: &str) {
    if let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).output();
        }
    }
    let out = Command::new("ip").args(["netns", "del", ns]).output();
    if !matches!(&out, Ok(o) if o.status.success()) {
        eprintln!("could not delete network namespace {ns}: {out:?}");
    }
}

/// Namespaces of lab runs whose test process is gone (killed before it could clean up).
fn remove_stale_namespaces() {
    let list = must(&["ip", "netns", "list"]);
    for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = ns.strip_prefix("nmt-nb-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            delete_namespace(ns);
        }
    }
}

/// The turn to run VMs: one batch of VMs runs at a time in the whole test run (two cores
/// emulating more VMs than that only makes every firmware's timeouts the thing under test).
fn one_batch() -> std::sync::MutexGuard<'static, ()> {
    static ONE_BATCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_BATCH.lock().unwrap_or_else(|p| p.into_inner())
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Stamp each line as rsyslog's traditional file format does and append it to `log`.
fn stamp_syslog(stderr: std::process::ChildStderr, log: &Path, pid: u32) {
    use std::io::{BufRead, Write};
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    for line in std::io::BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { break };
        let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
        let stamp = now.strftime("%b %e %H:%M:%S");
        let mut rec = format!("{stamp} nmtlab dhcpd[{pid}]: ").into_bytes();
        rec.extend_from_slice(&line);
        rec.push(b'\n');
        let _ = out.write_all(&rec);
    }
}
