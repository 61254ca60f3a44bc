//! Power control, for real: a lab VM under its own BMC (OpenIPMI's `ipmi_sim`, on its own
//! address on the lab's bridge, switching the VM's QEMU on, off and through resets with
//! `bmc-chassis.sh` beside this file), and a VM woken by Wake-on-LAN (a listener in the
//! harness on the bridge checks nmt's magic packet and switches on the VM whose MAC it
//! carries). nmtd runs inside the lab's namespace, so its `ipmitool` and its magic packets
//! reach them there.

use std::io::{Read, Seek, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::stories::{events, installed, machine};
use super::{BOOT_LIMIT, BRIDGE, Boot, Dhcp, Firmware, Lab, Vm, tail};
use crate::util::{must, require_tool};

/// The chassis program ipmi_sim runs for a lab VM.
fn chassis_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netboot/bmc-chassis.sh")
}

/// Byte 0x18 of the lab's boot sector: its `out dx,al` to isa-debug-exit (`mbr.bin` in
/// build-assets.sh), which ends QEMU.
const DEBUG_EXIT_OUT: usize = 0x18;

/// Make a lab boot sector's system stay up after printing its message, as an installed
/// system does until it is switched off: its write to isa-debug-exit becomes a `nop`, so the
/// CPU halts (interrupts off) and QEMU runs on.
fn stays_on(sector: &mut [u8]) {
    assert_eq!(
        sector[DEBUG_EXIT_OUT], 0xee,
        "not the lab's boot sector (build-assets.sh's mbr.bin changed?)"
    );
    sector[DEBUG_EXIT_OUT] = 0x90;
}

/// Write a boot sector that prints `message` and stays up onto a VM's disk.
fn install_staying_on(vm: &Vm, message: &str) {
    let mut sector = super::boot_sector(message);
    stays_on(&mut sector);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&vm.disk)
        .unwrap();
    f.write_all(&sector).unwrap();
}

/// Make what is on a VM's disk (the lab installer's boot sector) stay up once booted.
fn keep_installed_system_on(vm: &Vm) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&vm.disk)
        .unwrap();
    let mut sector = [0u8; 512];
    f.read_exact(&mut sector).unwrap();
    stays_on(&mut sector);
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&sector).unwrap();
}

/// A place in a BMC VM's serial console, and the time it was taken.
#[derive(Clone, Copy)]
pub struct Mark {
    at: usize,
    when: Instant,
}

/// A lab VM under its own BMC: `ipmi_sim` listening on `addr`, port 623, whose chassis is
/// the VM's QEMU. The VM is off until someone switches it on through the BMC. Dropping it
/// stops its QEMU and the BMC (the lab's namespace going would, too).
pub struct BmcVm {
    pub vm: String,
    pub addr: String,
    /// The BMC's admin password, in a file only its owner reads (`--password-file`).
    pub password_file: PathBuf,
    dir: PathBuf,
    serial: PathBuf,
    sim: Child,
    /// This VM may run at any time while the BMC exists: it holds the lab's turn to run VMs.
    _turn: MutexGuard<'static, ()>,
}

impl Lab {
    /// Put `vm` under a BMC of its own on `addr` (a second address on the bridge, as a BMC
    /// has its own), with the user `admin` and `password`.
    pub fn bmc(&mut self, vm: &Vm, addr: &str, password: &str) -> BmcVm {
        require_tool("ipmi_sim", "openipmi");
        require_tool("ipmitool", "ipmitool");
        assert_eq!(
            vm.firmware,
            Firmware::Bios,
            "the lab's BMC chooses the boot device with SeaBIOS's boot order"
        );
        let turn = super::one_batch();
        self.ip(&["addr", "add", &format!("{addr}/24"), "dev", BRIDGE]);
        let dir = self.dir.join(format!("bmc-{}", vm.name));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        // QEMU as `boot_cut` runs it, without -no-reboot (a reset resets) and without a
        // fixed boot order (the BMC gives one at each power-on).
        let mut args = self.qemu_args(vm, false).join("\n");
        args.push('\n');
        std::fs::write(dir.join("qemu.args"), args).unwrap();
        let chassis = dir.join("chassis");
        std::fs::write(
            &chassis,
            format!(
                "#!/bin/sh\nexec sh {} {} \"$@\"\n",
                chassis_script().display(),
                dir.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&chassis, std::fs::Permissions::from_mode(0o755)).unwrap();
        // ipmi_sim's LAN interface (IPMI v2.0, the cipher suites ipmitool's -C 3 needs),
        // its chassis, and one admin user.
        let auths = "none md2 md5 straight";
        let conf = format!(
            "name \"{name}\"\nset_working_mc 0x20\n  startlan 1\n    addr {addr} 623\n    \
             priv_limit admin\n    allowed_auths_callback {auths}\n    \
             allowed_auths_user {auths}\n    allowed_auths_operator {auths}\n    \
             allowed_auths_admin {auths}\n    guid a123456789abcdefa123456789abcdef\n  endlan\n  \
             chassis_control \"{chassis}\"\n  \
             user 2 true \"admin\" \"{password}\" admin 10 {auths}\n",
            name = vm.name,
            chassis = chassis.display(),
        );
        std::fs::write(dir.join("lan.conf"), conf).unwrap();
        // The BMC itself: one management controller at 0x20.
        std::fs::write(
            dir.join("emu"),
            "mc_setbmc 0x20\n\
             mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
             mc_enable 0x20\n",
        )
        .unwrap();
        let password_file = dir.join("bmc-password");
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&password_file)
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let log = std::fs::File::create(dir.join("ipmi_sim.log")).unwrap();
        let mut sim = Command::new("ip")
            .args(["netns", "exec", &self.ns, "ipmi_sim", "-n", "-c"])
            .arg(dir.join("lan.conf"))
            .arg("-f")
            .arg(dir.join("emu"))
            .arg("-s")
            .arg(dir.join("state"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("ipmi_sim");
        let start = Instant::now();
        loop {
            if let Some(status) = sim.try_wait().unwrap() {
                panic!(
                    "ipmi_sim exited at start ({status}):\n{}",
                    std::fs::read_to_string(dir.join("ipmi_sim.log")).unwrap_or_default()
                );
            }
            let out = must(&[
                "ip",
                "netns",
                "exec",
                &self.ns,
                "ss",
                "-Hlnu",
                "src",
                &format!("{addr}:623"),
            ]);
            if !out.trim().is_empty() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "ipmi_sim does not listen on {addr}:623 after 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let serial = dir.join("serial.log");
        self.serial_logs.push(serial.clone());
        BmcVm {
            vm: vm.name.clone(),
            addr: addr.into(),
            password_file,
            dir,
            serial,
            sim,
            _turn: turn,
        }
    }
}

impl BmcVm {
    /// Where the serial console is now, and when: what comes after it is the next boot's.
    pub fn mark(&self) -> Mark {
        Mark {
            at: std::fs::metadata(&self.serial).map_or(0, |m| m.len() as usize),
            when: Instant::now(),
        }
    }

    /// The serial console since `mark` (with the BMC's own "=== nmt-lab BMC: …" lines).
    fn since(&self, mark: usize) -> String {
        let all = std::fs::read(&self.serial).unwrap_or_default();
        String::from_utf8_lossy(&all[mark.min(all.len())..]).replace('\r', "")
    }

    fn boot(&self, mark: Mark, code: Option<i32>) -> Boot {
        Boot {
            vm: self.vm.clone(),
            code,
            serial: self.since(mark.at),
            log: self.serial.clone(),
        }
    }

    /// The pid of the VM's QEMU while it runs (the machine is on).
    pub fn qemu(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(") ")?.1.chars().next()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let ours = String::from_utf8_lossy(&cmdline).contains(&*self.dir.to_string_lossy());
        (state != 'Z' && state != 'X' && ours).then_some(pid)
    }

    /// Wait until the serial console since `mark` shows `marker`; the boot so far.
    pub fn wait_for(&self, mark: Mark, marker: &str) -> Boot {
        loop {
            let seen = self.since(mark.at);
            if seen.contains(marker) {
                eprintln!(
                    "netboot lab: {} showed {marker:?} {:.1} s after the mark",
                    self.vm,
                    mark.when.elapsed().as_secs_f64()
                );
                return self.boot(mark, None);
            }
            assert!(
                mark.when.elapsed() < BOOT_LIMIT,
                "{}: the serial console ({}) does not show {marker:?} after {} s; its end:\n{}",
                self.vm,
                self.serial.display(),
                BOOT_LIMIT.as_secs(),
                tail(&seen, 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the machine switches itself off (its QEMU ends); the boot since `mark`,
    /// with QEMU's exit status.
    pub fn wait_off(&self, mark: Mark) -> Boot {
        while self.qemu().is_some() {
            assert!(
                mark.when.elapsed() < BOOT_LIMIT,
                "{}: still on after {} s; its serial console's end:\n{}",
                self.vm,
                BOOT_LIMIT.as_secs(),
                tail(&self.since(mark.at), 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The shell that waited for QEMU notes its exit status just after.
        let mut code = None;
        for _ in 0..50 {
            code = std::fs::read_to_string(self.dir.join("qemu.exit"))
                .ok()
                .and_then(|s| s.trim().parse().ok());
            if code.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "netboot lab: {} switched itself off {:.1} s after the mark, QEMU exit {code:?}",
            self.vm,
            mark.when.elapsed().as_secs_f64()
        );
        self.boot(mark, code)
    }

    /// What the BMC asked of the chassis so far, one request a line (`set boot pxe`,
    /// `set power 1`, `get power`, …).
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The chassis requests since `before` (a length of [`BmcVm::calls`]) that change
    /// something (`get` requests are left out).
    pub fn sets_since(&self, before: usize) -> Vec<String> {
        self.calls()
            .into_iter()
            .skip(before)
            .filter(|c| c.starts_with("set "))
            .collect()
    }
}

impl Drop for BmcVm {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "=== BMC of {} on {}: chassis requests ({})\n{}\n=== {}\n{}",
                self.vm,
                self.addr,
                self.dir.join("calls").display(),
                self.calls().join("\n"),
                self.dir.join("ipmi_sim.log").display(),
                std::fs::read_to_string(self.dir.join("ipmi_sim.log")).unwrap_or_default()
            );
        }
        if let Some(pid) = self.qemu() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

/// The MAC a Wake-on-LAN magic packet wakes, when it is one as nmt sends it: exactly 102
/// bytes, six 0xFF, then one MAC sixteen times.
pub fn magic_packet_mac(p: &[u8]) -> Option<[u8; 6]> {
    if p.len() != 102 || p[..6] != [0xff; 6] {
        return None;
    }
    let mac: [u8; 6] = p[6..12].try_into().unwrap();
    p[6..]
        .chunks(6)
        .all(|c| c == mac)
        .then_some(mac)
        .filter(|m| m != &[0xff; 6] && m != &[0; 6])
}

/// A MAC as `52:54:00:…`.
fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The magic packet for `mac`, built here from the MAC's text (not by nmt's code).
fn expected_magic(mac: &str) -> Vec<u8> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    assert_eq!(bytes.len(), 6);
    let mut p = vec![0xff; 6];
    for _ in 0..16 {
        p.extend_from_slice(&bytes);
    }
    p
}

/// A datagram the Wake-on-LAN listener heard.
#[derive(Debug)]
pub struct Heard {
    pub from: SocketAddr,
    pub packet: Vec<u8>,
    /// The MAC it wakes, when it is a sound magic packet.
    pub mac: Option<String>,
}

/// A Wake-on-LAN listener on the lab's bridge: UDP port 9, its socket made inside the lab's
/// namespace and bound to the bridge, as a sleeping card on that link would hear it.
pub struct Wol {
    heard: Receiver<Heard>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Lab {
    /// Listen for magic packets on the bridge.
    pub fn wol_listener(&self) -> Wol {
        let path = format!("/var/run/netns/{}", self.ns);
        let sock = std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let sock = UdpSocket::bind("0.0.0.0:9").expect("UDP port 9 in the lab");
            nix::sys::socket::setsockopt(
                &sock,
                nix::sys::socket::sockopt::BindToDevice,
                &std::ffi::OsString::from(BRIDGE),
            )
            .unwrap();
            sock
        })
        .join()
        .unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (tx, heard) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::SeqCst) {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let packet = buf[..n].to_vec();
                        let mac = magic_packet_mac(&packet).map(|m| mac_text(&m));
                        if tx.send(Heard { from, packet, mac }).is_err() {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => panic!("the Wake-on-LAN listener: {e}"),
                }
            }
        });
        Wol {
            heard,
            stop,
            thread: Some(thread),
        }
    }
}

impl Wol {
    /// The next datagram heard, within `limit`.
    pub fn next(&self, limit: Duration) -> Option<Heard> {
        match self.heard.recv_timeout(limit) {
            Ok(h) => Some(h),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("the Wake-on-LAN listener ended"),
        }
    }

    /// What a sleeping machine's card does: wait for a magic packet, check it byte for
    /// byte, and switch on the lab VM whose MAC it carries (booted as [`Lab::boot`] does).
    /// A datagram that is not a sound magic packet, or wakes no VM of the lab, starts
    /// nothing and fails the test.
    pub fn wake(&self, lab: &mut Lab, vms: &[&Vm]) -> Boot {
        let heard = self
            .next(Duration::from_secs(10))
            .expect("no datagram on UDP port 9 of the bridge within 10 s");
        let mac = heard.mac.clone().unwrap_or_else(|| {
            panic!(
                "not a magic packet, nothing switched on: {} bytes from {}: {:02x?}",
                heard.packet.len(),
                heard.from,
                heard.packet
            )
        });
        let vm = vms
            .iter()
            .find(|v| v.mac.eq_ignore_ascii_case(&mac))
            .unwrap_or_else(|| panic!("a magic packet for {mac}, which no lab VM has"));
        assert_eq!(
            heard.packet,
            expected_magic(&vm.mac),
            "the magic packet byte for byte"
        );
        lab.boot_one(vm)
    }
}

impl Drop for Wol {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `nmt power OP vm --json`, required to succeed: the machine's result.
fn power(lab: &Lab, op: &str, machine: &str) -> Value {
    let out = lab.json(&["power", op, machine]);
    let results = out["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{out:#}");
    let r = &results[0];
    assert_eq!(r["op"], op, "{out:#}");
    assert_eq!(r["ok"], true, "{out:#}");
    r.clone()
}

/// A machine's power state as nmt reads it from its BMC.
fn status(lab: &Lab, machine: &str) -> String {
    power(lab, "status", machine)["state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The IPMI story: a machine under a real BMC is switched on and boots its disk (nmt's PXE
/// entry chains to it); `nmt policy … install --once --reboot` power-cycles it through the
/// BMC, and it PXE-boots the installer; switched on again it boots what was installed, a
/// reset boots it again in the same QEMU, and `nmt power off` really stops it. nmt reads the
/// real power state throughout, and its history says who did each.
#[test]
fn ipmi_cycles_a_running_machine_into_its_install_and_switches_it_off() {
    let mut lab = Lab::start_with(Dhcp::Dnsmasq, "[power]\nipmi_cipher_suite = 3\n");
    let me = nmt::current_actor();
    let mac = "52:54:00:1b:00:01";
    lab.nmt(&["group", "add", "lab", "--policy", "localboot"]);
    lab.nmt(&["machine", "add", mac, "--name", "vm1", "--group", "lab"]);
    lab.nmt(&["rootdev", "set", "vm1", "/dev/sda1"]);
    let vm = lab.vm("vm1", mac, Firmware::Bios);
    // What it runs now: a system that stays up until switched off.
    install_staying_on(&vm, &format!("NMT-DISK-BOOT old-system mac={mac}"));
    let password = "lab-bmc-Pw7";
    let bmc = lab.bmc(&vm, "10.213.0.21", password);
    lab.nmt(&[
        "bmc",
        "set",
        "vm1",
        "--ipmi",
        &bmc.addr,
        "--user",
        "admin",
        "--password-file",
        bmc.password_file.to_str().unwrap(),
    ]);
    assert_eq!(status(&lab, "vm1"), "off", "nothing switched it on yet");

    // On: nmt first tells the BMC to boot from the network; the machine's PXE entry
    // (localboot, its root device known) chains to its disk.
    let calls = bmc.calls().len();
    let mark = bmc.mark();
    let on = power(&lab, "on", "vm1");
    assert_eq!(on["state"], "on", "{on:#}");
    assert_eq!(
        bmc.sets_since(calls),
        ["set boot pxe", "set power 1"],
        "the next boot set to the network, then on"
    );
    bmc.wait_for(mark, &format!("NMT-DISK-BOOT old-system mac={mac}"))
        .shows("=== nmt-lab BMC: power on, boot order nc")
        .lacks("NMT-BOOTED");
    let boots = lab.boots("vm1", 1);
    assert_eq!(boots[0]["policy"], "localboot", "{boots:#?}");
    assert_eq!(boots[0]["booted"], "local disk hd0", "{boots:#?}");
    let first = bmc.qemu().expect("the machine runs");
    assert_eq!(status(&lab, "vm1"), "on");

    // Reinstall: the policy, then a power cycle through the BMC; the machine PXE-boots the
    // installer, which writes its disk, reports, and switches the machine off.
    let calls = bmc.calls().len();
    let mark = bmc.mark();
    let out = lab.json(&["policy", "vm1", "install:lab", "--once", "--reboot"]);
    let r = &out["results"][0];
    assert_eq!(r["op"], "cycle", "{out:#}");
    assert_eq!(r["ok"], true, "{out:#}");
    assert_eq!(r["state"], "on", "{out:#}");
    assert!(
        !r["detail"].as_str().unwrap_or("").contains("was off"),
        "a running machine is cycled, not switched on: {out:#}"
    );
    assert!(
        !out["changed"].is_null(),
        "the policy was set first: {out:#}"
    );
    bmc.wait_for(mark, "NMT-BOOTED");
    let install = bmc.wait_off(mark);
    assert_eq!(
        bmc.sets_since(calls),
        ["set boot pxe", "set power 0", "set power 1"],
        "the next boot set to the network, then off and on"
    );
    installed(&install, &vm);
    install
        .shows("=== nmt-lab BMC: power off")
        .shows("=== nmt-lab BMC: power on, boot order nc")
        .lacks("NMT-DISK-BOOT");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{first}/cmdline")).ok(),
        None,
        "the cycle ended the first QEMU"
    );
    let m = machine(&lab, "vm1");
    assert_eq!(m["effective_policy"], "localboot", "{m:#}");
    assert_eq!(m["once"], false, "{m:#}");
    let boots = lab.boots("vm1", 2);
    assert_eq!(boots[1]["policy"], "install:lab", "{boots:#?}");
    assert_eq!(boots[1]["origin"], "machine-once", "{boots:#?}");
    assert_eq!(
        status(&lab, "vm1"),
        "off",
        "the installer switched it off, and nmt reads that from the BMC"
    );

    // On again: the installed system (made to stay up).
    keep_installed_system_on(&vm);
    let mark = bmc.mark();
    power(&lab, "on", "vm1");
    bmc.wait_for(mark, &format!("NMT-DISK-BOOT installed-by-nmt mac={mac}"))
        .lacks("NMT-BOOTED");
    let boots = lab.boots("vm1", 3);
    assert_eq!(boots[2]["policy"], "localboot", "{boots:#?}");
    let running = bmc.qemu().expect("the machine runs");
    assert_eq!(status(&lab, "vm1"), "on");

    // A reset: the same QEMU boots again, from the network first.
    let calls = bmc.calls().len();
    let mark = bmc.mark();
    let reset = power(&lab, "reset", "vm1");
    assert_eq!(reset["state"], "on", "{reset:#}");
    assert_eq!(bmc.sets_since(calls), ["set boot pxe", "set reset 1"]);
    bmc.wait_for(mark, &format!("NMT-DISK-BOOT installed-by-nmt mac={mac}"))
        .shows("=== nmt-lab BMC: reset, boot order nc")
        .shows("SeaBIOS")
        .lacks("=== nmt-lab BMC: power");
    assert_eq!(bmc.qemu(), Some(running), "a reset keeps the machine on");
    lab.boots("vm1", 4);

    // Off: the machine's QEMU is gone.
    let off = power(&lab, "off", "vm1");
    assert_eq!(off["state"], "off", "{off:#}");
    assert_eq!(bmc.qemu(), None, "switched off");
    assert!(
        !Path::new(&format!("/proc/{running}")).exists()
            || std::fs::read_to_string(format!("/proc/{running}/stat"))
                .is_ok_and(|s| s.contains(") Z")),
        "QEMU {running} is gone"
    );
    assert_eq!(status(&lab, "vm1"), "off");

    // nmt's history: each action, its result, and who asked.
    let history = lab.json(&["history", "vm1"]);
    let acted: Vec<(String, bool, String)> = events(&history, "PowerActed")
        .iter()
        .map(|e| {
            assert_eq!(e["actor"], me.as_str(), "{e:#}");
            let ev = &e["event"];
            (
                ev["op"].as_str().unwrap().to_string(),
                ev["result"]["ok"].as_bool().unwrap(),
                ev["result"]["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expect = [
        ("status", "off"),
        ("on", "on"),
        ("status", "on"),
        ("cycle", "on"),
        ("status", "off"),
        ("on", "on"),
        ("status", "on"),
        ("reset", "on"),
        ("off", "off"),
        ("status", "off"),
    ];
    assert_eq!(
        acted,
        expect
            .iter()
            .map(|(op, st)| (op.to_string(), true, st.to_string()))
            .collect::<Vec<_>>(),
        "{history:#}"
    );
    let text = lab.nmt(&["history", "vm1"]);
    assert!(text.contains("power cycle: ok, on"), "{text}");
    assert!(text.contains("power off: ok, off"), "{text}");
    assert!(
        !text.contains(password) && !history.to_string().contains(password),
        "the BMC password is never in the history"
    );
}

/// Wake-on-LAN: `nmt power on` sends the machine's magic packet on the lab's bridge; the
/// harness's listener checks it byte for byte and switches on the VM with that MAC, which
/// PXE-boots what its policy says. Wake-on-LAN cannot read or switch off a machine, and nmt
/// says so.
#[test]
fn wake_on_lan_switches_a_machine_on_and_it_pxe_boots() {
    let mut lab = Lab::start(Dhcp::Dnsmasq);
    let me = nmt::current_actor();
    let mac = "52:54:00:1b:00:02";
    lab.nmt(&["group", "add", "lab", "--policy", "localboot"]);
    lab.nmt(&["machine", "add", mac, "--name", "vm2", "--group", "lab"]);
    lab.nmt(&["rootdev", "set", "vm2", "/dev/sda1"]);
    let vm = lab.vm("vm2", mac, Firmware::Bios);
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&vm.disk)
            .unwrap();
        f.write_all(&super::boot_sector(&format!(
            "NMT-DISK-BOOT woken mac={mac}"
        )))
        .unwrap();
    }
    lab.nmt(&["bmc", "set", "vm2", "--wol", "--interface", BRIDGE]);
    let wol = lab.wol_listener();

    let on = power(&lab, "on", "vm2");
    assert!(
        on["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("255.255.255.255:9 on {BRIDGE}")),
        "{on:#}"
    );
    let boot = wol.wake(&mut lab, &[&vm]);
    // PXE first: pxelinux ran nmt's entry for it, which chained to its disk.
    boot.shows("PXELINUX")
        .shows(&format!("NMT-DISK-BOOT woken mac={mac}"))
        .exited(33);
    let boots = lab.boots("vm2", 1);
    assert_eq!(boots[0]["policy"], "localboot", "{boots:#?}");
    assert_eq!(boots[0]["booted"], "local disk hd0", "{boots:#?}");
    assert!(
        boots[0]["file"]
            .as_str()
            .unwrap()
            .ends_with(&format!("pxelinux.cfg/01-{}", mac.replace(':', "-"))),
        "{boots:#?}"
    );
    assert!(
        wol.next(Duration::from_millis(300)).is_none(),
        "one magic packet"
    );

    // Wake-on-LAN only switches on: nmt says so, and records it.
    for op in ["status", "off"] {
        let out = lab.t.cmd(&["power", op, "vm2", "--json"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["results"][0]["ok"], false, "{v:#}");
        assert!(
            v["results"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("Wake-on-LAN"),
            "{v:#}"
        );
    }
    assert!(
        wol.next(Duration::from_millis(300)).is_none(),
        "no packet for status or off"
    );
    let history = lab.json(&["history", "vm2"]);
    let acted = events(&history, "PowerActed");
    assert_eq!(acted.len(), 3, "{history:#}");
    assert_eq!(acted[0]["event"]["op"], "on", "{history:#}");
    assert_eq!(acted[0]["event"]["result"]["ok"], true, "{history:#}");
    assert_eq!(acted[0]["actor"], me.as_str(), "{history:#}");
}

/// The listener's check: only a sound magic packet wakes a machine, and only the one whose
/// MAC it carries.
#[test]
fn wake_on_lan_listener_rejects_what_is_not_a_magic_packet() {
    let mac = "52:54:00:1b:00:02";
    let good = expected_magic(mac);
    assert_eq!(good.len(), 102);
    assert_eq!(
        magic_packet_mac(&good).map(|m| mac_text(&m)).as_deref(),
        Some(mac)
    );
    let mut wrong = Vec::new();
    // One byte of one copy of the MAC differs.
    let mut p = good.clone();
    p[6 + 6 * 9 + 5] ^= 1;
    wrong.push(p);
    // The sync stream is short of one 0xFF.
    let mut p = good.clone();
    p[5] = 0xfe;
    wrong.push(p);
    // Fifteen copies, or seventeen.
    wrong.push(good[..96].to_vec());
    let mut p = good.clone();
    p.extend_from_slice(&good[6..12]);
    wrong.push(p);
    // Nothing, zeros, all 0xFF.
    wrong.push(Vec::new());
    wrong.push(vec![0; 102]);
    wrong.push(vec![0xff; 102]);
    // Another machine's packet is sound, but for that machine.
    let other = expected_magic("52:54:00:1b:00:03");
    assert_eq!(
        magic_packet_mac(&other).map(|m| mac_text(&m)).as_deref(),
        Some("52:54:00:1b:00:03")
    );
    for p in &wrong {
        assert_eq!(magic_packet_mac(p), None, "{p:02x?}");
    }
}
