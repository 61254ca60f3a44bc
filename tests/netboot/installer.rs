//! Debian's real installer in the lab: `debian-installer-12-netboot-amd64`'s kernel and
//! initrd, PXE-booted through nmt's entry, install Debian 12 unattended from the preseed nmtd
//! serves for the machine, from a local partial mirror (`build-mirror.sh`, cached), and
//! report the root device with the machine's token; nmt moves the machine to local boot, and
//! the next PXE boot chains to the installed disk, which comes up to a login prompt on the
//! serial console. On the way, the test SSHes into the installer's network console and
//! reads its syslog, and checks that the installer's syslog reached nmtd (`log_host`).
//!
//! An install costs minutes of CPU under TCG, so the story runs one VM, beside the light
//! tests rather than after them (its entry point sorts first in the test binary), and prints
//! the time of each phase, read from the installer's own syslog as nmtd recorded it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::stories::{events, machine};
use super::{Dhcp, Firmware, Lab, SERVER, tail};
use crate::util::require_tool;

/// The lab's HTTP server for the mirror and the installer's kernel and initrd.
const WEB_PORT: u16 = 8080;
/// nmtd's syslog receiver inside the lab.
const SYSLOG_PORT: u16 = 5514;
/// How long the install may take before the VM is stopped: 17 min on a quiet 2-core machine
/// under TCG, 36 min when other VMs shared the CPU.
const INSTALL_LIMIT: Duration = Duration::from_secs(75 * 60);
/// How long the installed system may take to reach `login:`.
const LOGIN_LIMIT: Duration = Duration::from_secs(8 * 60);
/// The installer's netboot files, from the Debian package.
const DI: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64";

/// The installer VM's CPUs: 1 unless `NMT_LAB_INSTALLER_CPUS` says more. Alone on a 2-core
/// machine 2 are faster (17 min against 19); beside the other tests, which run VMs of their
/// own, 1 leaves them a core.
fn installer_cpus() -> String {
    std::env::var("NMT_LAB_INSTALLER_CPUS")
        .ok()
        .filter(|n| n.parse::<u8>().is_ok_and(|n| n >= 1))
        .unwrap_or_else(|| "1".into())
}

/// Build (or reuse) the mirror, and lay out the lab's web root: `debian/` (the mirror) and
/// `d-i/` (the installer's kernel and initrd).
fn web_root(lab: &Lab) -> PathBuf {
    let www = lab.dir.join("www");
    std::fs::create_dir_all(www.join("d-i")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netboot/build-mirror.sh");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .arg(&www)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{} failed; the installer story cannot run (it never skips):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "installer story: mirror ready in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    for f in ["linux", "initrd.gz"] {
        std::fs::copy(Path::new(DI).join(f), www.join("d-i").join(f)).unwrap();
    }
    www
}

/// A running VM: QEMU with its serial console on stdout (a file) and stdin (a pipe, to log
/// in).
struct Running {
    child: Child,
    stdin: ChildStdin,
    log: PathBuf,
    started: Instant,
}

impl Running {
    fn serial(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).replace('\r', "")
    }

    /// Wait until the serial console shows `marker` (after byte `from`); its position.
    fn wait_for(&mut self, marker: &str, from: usize, limit: Duration) -> usize {
        let start = Instant::now();
        loop {
            let s = self.serial();
            if let Some(i) = s.get(from..).and_then(|t| t.find(marker)) {
                return from + i + marker.len();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "QEMU exited ({status}) before the serial console showed {marker:?}:\n{}",
                    tail(&s, 60)
                );
            }
            assert!(
                start.elapsed() < limit,
                "the serial console does not show {marker:?} after {} s:\n{}",
                limit.as_secs(),
                tail(&s, 60)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Wait until the serial console shows one of `markers` after byte `from`: which, and
    /// the position after it; `None` after `limit`.
    fn wait_any(
        &mut self,
        markers: &[&str],
        from: usize,
        limit: Duration,
    ) -> Option<(usize, usize)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            let s = self.serial();
            let found = markers
                .iter()
                .enumerate()
                .filter_map(|(i, m)| Some((s.get(from..)?.find(m)?, i, m.len())))
                .min();
            if let Some((at, i, len)) = found {
                return Some((i, from + at + len));
            }
            if self.child.try_wait().unwrap().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        None
    }

    /// Log in on the serial console from its `login:` prompt at `at`; the position after the
    /// shell's prompt. A few tries: a getty or login that flushes its input as it switches
    /// the terminal's mode can drop what was typed.
    fn log_in(&mut self, user: &str, password: &str, mut at: usize) -> usize {
        for _ in 0..4 {
            self.type_line(user);
            let Some((_, pw_at)) = self.wait_any(&["Password:"], at, Duration::from_secs(30))
            else {
                continue;
            };
            self.type_line(password);
            match self.wait_any(
                &["$ ", "Login incorrect", "login:"],
                pw_at,
                Duration::from_secs(90),
            ) {
                Some((0, after)) => return after,
                Some((_, after)) => at = after,
                None => at = pw_at,
            }
        }
        panic!(
            "could not log in as {user} on the serial console:\n{}",
            tail(&self.serial(), 40)
        );
    }

    /// Type a line on the serial console. It waits a moment first: login and getty flush
    /// their input when they switch the terminal's mode after a prompt (TCSAFLUSH), so what
    /// is typed at once can be lost.
    fn type_line(&mut self, line: &str) {
        std::thread::sleep(Duration::from_secs(2));
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\r").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Lab {
    /// Start a VM for a real install: 2 GiB, its disk `disk` on virtio (`cache=unsafe`: the
    /// guest's flushes cost nothing), no VGA (else d-i's finish-install adds the bochs DRM
    /// driver and builds the initramfs a second time), NIC first in the boot order.
    fn start_installer_vm(
        &mut self,
        vm: &super::Vm,
        disk: &Path,
        what: &str,
        limit: Duration,
    ) -> Running {
        let n = self.serial_logs.len();
        let log = self
            .dir
            .join(format!("serial-{n:02}-{}-{what}.log", vm.name));
        self.serial_logs.push(log.clone());
        let mut args = self.qemu_command(limit);
        let fixed = [
            "-no-user-config",
            "-accel",
            super::accel(),
            "-cpu",
            "max",
            "-m",
            "2048",
            "-display",
            "none",
            "-vga",
            "none",
            "-monitor",
            "none",
            "-serial",
            "stdio",
        ];
        args.extend(fixed.map(String::from));
        args.extend([
            "-smp".into(),
            installer_cpus(),
            "-netdev".into(),
            format!("tap,id=n0,ifname={},script=no,downscript=no", vm.tap),
            "-device".into(),
            format!("e1000,netdev=n0,mac={},bootindex=1", vm.mac),
            "-drive".into(),
            format!(
                "file={},if=none,id=d0,format=raw,cache=unsafe",
                disk.display()
            ),
            "-device".into(),
            "virtio-blk-pci,drive=d0,bootindex=2".into(),
        ]);
        match vm.firmware {
            Firmware::Bios => args.extend(["-machine", "pc"].map(String::from)),
            Firmware::Uefi => args.extend(super::ovmf_args(vm)),
        }
        let out = std::fs::File::create(&log).unwrap();
        let mut child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("qemu-system-x86_64");
        let stdin = child.stdin.take().unwrap();
        Running {
            child,
            stdin,
            log,
            started: Instant::now(),
        }
    }

    /// A command inside the lab's namespace; its output.
    fn in_ns(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

/// SSH into the installer's network console as `installer` with the installer password,
/// start a shell from its menu, and read the installer's syslog (`expect` drives the
/// terminal). The session's transcript.
fn network_console(lab: &Lab, ip: &str, password: &str) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netboot/network-console.exp");
    let transcript = lab.dir.join("network-console.log");
    let out = lab.in_ns(&[
        "timeout",
        "180",
        "expect",
        script.to_str().unwrap(),
        ip,
        password,
        transcript.to_str().unwrap(),
    ]);
    let text =
        String::from_utf8_lossy(&std::fs::read(&transcript).unwrap_or_default()).replace('\r', "");
    (
        out.status.success(),
        format!(
            "exit {}; stdout {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            text
        ),
    )
}

/// The preseed nmtd serves the machine, fetched as the installer does: from the `url=` of
/// the machine's pxelinux entry.
fn served_preseed(lab: &Lab, mac: &str) -> String {
    let entry = lab
        .t
        .state()
        .join("tftp/pxelinux.cfg")
        .join(format!("01-{}", mac.replace(':', "-")));
    let entry = std::fs::read_to_string(&entry).unwrap();
    let url = entry
        .split_whitespace()
        .find_map(|w| w.strip_prefix("url="))
        .unwrap_or_else(|| panic!("no url= in the entry:\n{entry}"));
    let out = lab.in_ns(&["curl", "-fsS", url]);
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The installer's syslog lines nmtd recorded for a machine, with their times.
fn installer_log(lab: &Lab, target: &str) -> Vec<(String, String)> {
    let history = lab.json(&["history", target]);
    events(&history, "InstallerLogged")
        .into_iter()
        .map(|e| {
            (
                e["observed_at"].as_str().unwrap_or("").to_string(),
                e["event"]["line"]
                    .as_str()
                    .or_else(|| e["event"]["message"].as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

/// Which firmware the story installs on: `NMT_LAB_INSTALLER` = `bios`, `uefi` or `both`.
/// Unset, one of the two, by the checked-out commit (the last hex digit of `git rev-parse
/// HEAD`, even: BIOS, odd: UEFI): an install is too long for both in every CI run, each
/// commit's run is reproducible, and the two alternate across commits. BIOS when there is
/// no git checkout.
pub fn firmwares() -> Vec<Firmware> {
    let chosen = std::env::var("NMT_LAB_INSTALLER").unwrap_or_default();
    let (list, why) = match chosen.as_str() {
        "bios" => (vec![Firmware::Bios], "NMT_LAB_INSTALLER".to_string()),
        "uefi" => (vec![Firmware::Uefi], "NMT_LAB_INSTALLER".to_string()),
        "both" => (
            vec![Firmware::Bios, Firmware::Uefi],
            "NMT_LAB_INSTALLER".to_string(),
        ),
        "" => {
            let head = Command::new("git")
                .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            match head.chars().last().and_then(|c| c.to_digit(16)) {
                Some(d) if d % 2 == 1 => (vec![Firmware::Uefi], format!("commit {head}")),
                Some(_) => (vec![Firmware::Bios], format!("commit {head}")),
                None => (vec![Firmware::Bios], "no git checkout".to_string()),
            }
        }
        other => panic!("NMT_LAB_INSTALLER={other:?}: use bios, uefi or both"),
    };
    eprintln!(
        "installer story: {list:?}, chosen by {why} (NMT_LAB_INSTALLER=bios, uefi or both \
         overrides)"
    );
    list
}

/// The whole story on one firmware.
pub fn story(firmware: Firmware) {
    require_tool("expect", "expect");
    require_tool("ssh", "openssh-client");
    let mut lab = Lab::start_full(
        Dhcp::Dnsmasq,
        &format!("log_host = \"{SERVER}\"\nlog_port = {SYSLOG_PORT}\n"),
        &format!("[daemon]\nsyslog = \"{SERVER}:{SYSLOG_PORT}\"\n"),
    );
    let www = web_root(&lab);
    lab.spawn_server(
        "web",
        &[
            "python3".into(),
            "-m".into(),
            "http.server".into(),
            WEB_PORT.to_string(),
            "--bind".into(),
            SERVER.into(),
            "--directory".into(),
            www.display().to_string(),
        ],
    );
    lab.wait_listening("the lab's web server", "t", WEB_PORT);
    let web = format!("http://{SERVER}:{WEB_PORT}");

    // The profile a site with its own signed mirror would write: the installer's kernel and
    // initrd over HTTP (the initrd is 40 MB: TFTP under TCG is slow), a lean install.
    let kernel = format!("{web}/d-i/linux");
    let initrd = format!("{web}/d-i/initrd.gz");
    let mirror = format!("{web}/debian");
    let key = format!("{web}/debian/nmt-lab-archive.gpg");
    lab.nmt(&[
        "profile",
        "add",
        "debian12",
        "--kind",
        "install",
        "--answer",
        "preseed",
        "--kernel",
        &kernel,
        "--initrd",
        &initrd,
        "--args",
        "auto=true priority=critical url={answer_url} interface=auto netcfg/dhcp_timeout=60 \
         locale=en_US.UTF-8 keymap=us hostname={name}",
        "--network-console",
        "--mirror",
        &mirror,
        "--suite",
        "bookworm",
        "--mirror-key",
        &key,
        "--timezone",
        "Europe/Berlin",
        "--disk",
        "/dev/vda",
        "--tasks",
        "none",
        "--late-command",
        "in-target sh -c 'echo installed-by-nmt-lab > /etc/nmt-lab'",
        "--set",
        "d-i base-installer/initramfs-tools/driver-policy select dep",
        "--set",
        "d-i base-installer/install-recommends boolean false",
        "--set",
        "d-i apt-setup/services-select multiselect",
        "--set",
        "d-i clock-setup/ntp boolean false",
        "--set",
        "d-i pkgsel/upgrade select none",
        // Lean and fast under TCG: debootstrap's minbase (the required set and apt) with an
        // init and the network tools, instead of the important priority (cron, nano,
        // nftables…); and the cloud kernel (a quarter of the generic one), enough for a VM.
        "--set",
        "d-i base-installer/debootstrap_variant string minbase",
        "--set",
        "d-i base-installer/includes string init ifupdown isc-dhcp-client",
        "--set",
        "d-i base-installer/kernel/image string linux-image-cloud-amd64",
    ]);
    let vm = lab.vm("di01", "52:54:00:d1:00:01", firmware);
    let disk = lab.dir.join("di01.vda");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(6 << 30)
        .unwrap();
    lab.nmt(&["machine", "add", &vm.mac, "--name", "di01"]);
    // Once: the report spends it, and the next boot is local (a lasting install policy of
    // the machine's own would install again at every boot).
    lab.nmt(&["policy", "di01", "install:debian12", "--once", "--yes"]);
    let preseed = served_preseed(&lab, &vm.mac);
    eprintln!("installer story: the preseed nmtd serves:\n{preseed}");
    assert!(
        preseed.contains("d-i mirror/http/hostname string 10.213.0.1:8080"),
        "{preseed}"
    );
    let password = std::fs::read_to_string(lab.t.state().join("installer-password"))
        .unwrap()
        .trim()
        .to_string();

    // The install.
    let vm_started = jiff::Timestamp::now();
    let mut run = lab.start_installer_vm(&vm, &disk, "install", INSTALL_LIMIT);
    let mut ssh: Option<(bool, String)> = None;
    let mut ssh_tries = 0;
    let mut last_try = None;
    loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            eprintln!(
                "installer story: the install ended after {:.0} s ({status})",
                run.started.elapsed().as_secs_f64()
            );
            break;
        }
        // Roger: once partman's early command ran (the network console is up, and the
        // installer user has its password), SSH in while the install goes on.
        if ssh.as_ref().is_none_or(|(ok, _)| !ok)
            && ssh_tries < 6
            && last_try.is_none_or(|t: Instant| t.elapsed() > Duration::from_secs(30))
        {
            let log = installer_log(&lab, "di01");
            if log
                .iter()
                .any(|(_, l)| l.contains("running preseed command partman/early_command"))
            {
                last_try = Some(Instant::now());
                let ip = machine(&lab, "di01")["last_ip"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                ssh_tries += 1;
                let r = network_console(&lab, &ip, &password);
                eprintln!(
                    "installer story: network console try {ssh_tries} at {:.0} s: {}",
                    run.started.elapsed().as_secs_f64(),
                    if r.0 { "ok" } else { "failed" }
                );
                ssh = Some(r);
            }
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    let serial = run.serial();
    let log = installer_log(&lab, "di01");
    phases(&log, vm_started);
    let (ssh_ok, transcript) = ssh.unwrap_or((false, "never tried: no partman line".into()));
    assert!(ssh_ok, "the network console: {transcript}");
    // The shell's own output (the markers are split in what expect typed).
    assert!(
        transcript.contains("NMT-SSH-42"),
        "a shell in the installer: {transcript}"
    );
    assert!(
        transcript
            .lines()
            .any(|l| l.contains("NMT-SYSLOG: ") && l.contains("partman")),
        "the installer's syslog read over SSH: {transcript}"
    );
    // What the serial console showed of the install.
    for marker in ["Installing the base system", "Installing GRUB"] {
        assert!(
            serial.contains(marker),
            "the serial console lacks {marker:?}:\n{}",
            tail(&serial, 60)
        );
    }
    // The installer's syslog reached nmtd, from debootstrap to the late command.
    for needle in ["debootstrap", "grub-installer", "late_command"] {
        assert!(
            log.iter().any(|(_, l)| l.contains(needle)),
            "nmt history lacks an installer line with {needle:?} ({} lines)",
            log.len()
        );
    }
    // d-i's atomic recipe: the root first on BIOS, after the EFI system partition on UEFI.
    let root = match firmware {
        Firmware::Bios => "/dev/vda1",
        Firmware::Uefi => "/dev/vda2",
    };
    let m = machine(&lab, "di01");
    assert_eq!(m["rootdev"], root, "{m:#}");
    assert_eq!(
        m["effective_policy"], "localboot",
        "the report moved it: {m:#}"
    );
    assert_eq!(m["installed"]["device"], root, "{m:#}");
    let history = lab.json(&["history", "di01"]);
    let reports = events(&history, "InstallReported");
    assert_eq!(reports.len(), 1, "{history:#}");
    assert_eq!(
        reports[0]["actor"], "installer@di01",
        "the installer's report, under the machine's name: {history:#}"
    );
    let boots = lab.boots("di01", 1);
    assert_eq!(boots[0]["policy"], "install:debian12", "{boots:#?}");

    // The installed system: PXE first, nmt's local-boot entry chains to the disk, GRUB, and
    // Debian's login prompt on the serial console; log in with the installer password.
    let mut run = lab.start_installer_vm(&vm, &disk, "installed", LOGIN_LIMIT);
    let at = run.wait_for("di01 login:", 0, LOGIN_LIMIT);
    eprintln!(
        "installer story: login prompt after {:.0} s",
        run.started.elapsed().as_secs_f64()
    );
    let at = run.log_in("nmt", &password, at);
    run.type_line(
        "echo NMT-LOGGED-IN-$((40+2)) $(hostname) $(cat /etc/nmt-lab) $(findmnt -n -o SOURCE /)",
    );
    run.wait_for(
        &format!("NMT-LOGGED-IN-42 di01 installed-by-nmt-lab {root}"),
        at,
        Duration::from_secs(60),
    );
    let _ = run.child.kill();
    let _ = run.child.wait();
    let boots = lab.boots("di01", 2);
    assert_eq!(boots[1]["policy"], "localboot", "{boots:#?}");
}

/// Print when each phase of the install began, in seconds from QEMU's start, from the
/// installer's syslog as nmtd recorded it: main-menu's steps, and a few lines within them.
fn phases(log: &[(String, String)], vm_started: jiff::Timestamp) {
    let marks: &[(&str, &str)] = &[
        (
            "Menu item 'network-preseed' selected",
            "preseed fetched (parsing it)",
        ),
        (
            "Menu item 'download-installer' selected",
            "installer components (anna)",
        ),
        ("Menu item 'network-console' selected", "network console"),
        ("Menu item 'partman-base' selected", "partitioning"),
        (
            "Menu item 'bootstrap-base' selected",
            "base system (debootstrap)",
        ),
        ("Installing the kernel", "kernel"),
        ("update-initramfs: Generating", "initramfs"),
        ("Menu item 'apt-setup-udeb' selected", "apt sources"),
        ("Menu item 'pkgsel' selected", "packages"),
        ("Menu item 'grub-installer' selected", "boot loader"),
        ("Menu item 'finish-install' selected", "finish"),
        (
            "running preseed command preseed/late_command",
            "late command and report",
        ),
    ];
    let mut found: Vec<(f64, &str)> = marks
        .iter()
        .filter_map(|(needle, phase)| {
            let (t, _) = log.iter().find(|(_, l)| l.contains(needle))?;
            let t = t.parse::<jiff::Timestamp>().ok()?;
            let ms = t.as_millisecond() - vm_started.as_millisecond();
            Some((ms as f64 / 1000.0, *phase))
        })
        .collect();
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (secs, phase) in found {
        eprintln!("installer story: {secs:>6.0} s {phase}");
    }
}
