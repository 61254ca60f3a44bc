//! nmt's imager (`packaging/imager/`): the small Linux a machine boots to save or restore a
//! disk image through nmtd (docs/imaging.md).
//!
//! The build script runs once per test run (its result is cached between runs under
//! `target/tmp/nmt-cache`), and the initramfs is checked for each tool, each of which must run
//! in a chroot of it. Then the imager boots for real in QEMU (`-kernel`/`-initrd`, one vCPU,
//! software emulation here), with a virtio disk and user-mode networking: the guest reaches
//! the host's loopback at 10.0.2.2, where the test listens.
//!
//! What answers the imager there is **not nmtd**: it is this test's own stand-in for nmtd's
//! side of the protocol, a few dozen lines on `std::net` that speak docs/imaging.md to the
//! letter, keep the streams in an image directory laid out as the doc says, and record every
//! request. nmtd's real server side lives in `src/daemon/`; this harness only lets the
//! imager's side be proved on its own. The saved image is then checked with stock tools on
//! the host (partclone.chkimg, partclone.restore -W, debugfs), and restored by a second boot
//! onto a blank disk, which must end byte for byte equal to the source.
//!
//! Needs root (the build checks each tool with chroot), QEMU and what `tests/deps` installs;
//! it never skips.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::util::{TestDir, must, require_file, require_root, require_tool, run};

/// The machine the tests boot: its MAC (as QEMU takes it, and dashed as in nmtd's paths) and
/// its report token.
const MAC: &str = "52:54:00:1a:9e:01";
const MAC_DASHED: &str = "52-54-00-1a-9e-01";
const TOKEN: &str = "t0k3n-imager-test";
/// The test disk: 64 MiB, one ext4 partition from 1 MiB to the end.
const DISK_BYTES: u64 = 64 << 20;
const PART_START: u64 = 1 << 20;
const PART_SECTORS: u64 = (DISK_BYTES - PART_START) / 512;
/// A file on the source partition that must come back.
const MARKER: &str = "nmt imager test: this file was saved and restored\n";
/// How long one imager run may take before QEMU is stopped.
const VM_LIMIT: Duration = Duration::from_secs(150);
/// The multicast test's network namespace: its bridge, the server's address on it, the VM's
/// tap, and the udpcast session the manifest announces.
const BRIDGE: &str = "nmtimgbr0";
const LAB_SERVER: &str = "10.214.0.1";
const TAP: &str = "nmtimgtap0";
const MCAST_PORT: u16 = 9000;
const MCAST_ADDRESS: &str = "239.255.71.1";

/// The built imager: `vmlinuz`, `initrd.img`, `imager.txt`.
pub(crate) fn imager() -> &'static PathBuf {
    static IMAGER: OnceLock<PathBuf> = OnceLock::new();
    IMAGER.get_or_init(|| {
        require_root("the imager's build checks each tool with chroot");
        for (tool, package) in [
            ("qemu-system-x86_64", "qemu-system-x86"),
            ("zstd", "zstd"),
            ("cpio", "cpio"),
            ("sfdisk", "fdisk"),
            ("mke2fs", "e2fsprogs"),
            ("debugfs", "e2fsprogs"),
            ("partclone.chkimg", "partclone"),
            ("partclone.restore", "partclone"),
            ("depmod", "kmod"),
            ("timeout", "coreutils"),
        ] {
            require_tool(tool, package);
        }
        require_file("/usr/share/seabios/bios-256k.bin", "seabios");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("imager");
        let (text, took) = build_into(&out);
        eprintln!(
            "imager: built in {:.1} s: {}",
            took.as_secs_f64(),
            text.trim_end()
        );
        out
    })
}

/// Run packaging/imager/build into `out` (the cache under target/tmp); its output and time.
fn build_into(out: &Path) -> (String, Duration) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/imager/build");
    let start = Instant::now();
    let result = Command::new("bash")
        .arg(&script)
        .arg(out)
        .env(
            "NMT_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("nmt-cache"),
        )
        .output()
        .expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        result.status.success(),
        "{} failed (the imager's tests never skip):\n{text}",
        script.display()
    );
    (text, start.elapsed())
}

/// The version string a bzImage carries (at 0x200 + the offset stored at 0x20e).
fn kernel_version(path: &Path) -> String {
    let k = std::fs::read(path).unwrap();
    let off = u16::from_le_bytes([k[0x20e], k[0x20f]]) as usize + 0x200;
    let end = k[off..].iter().position(|&b| b == 0).unwrap() + off;
    String::from_utf8_lossy(&k[off..end]).into_owned()
}

#[test]
fn the_imager_initramfs_holds_every_tool_and_each_runs_in_a_chroot() {
    let out = imager();
    // A second build with nothing changed comes from the cache.
    let (again, took) = build_into(out);
    assert!(
        again.contains("cached in"),
        "a second build rebuilt: {again}"
    );
    eprintln!("imager: cached build in {:.2} s", took.as_secs_f64());

    // The kernel is the Debian installer's ABI (the same kernel, in fact).
    let di =
        Path::new("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux");
    let abi = kernel_version(&out.join("vmlinuz"));
    let abi = abi.split_whitespace().next().unwrap().to_string();
    assert_eq!(
        abi,
        kernel_version(di).split_whitespace().next().unwrap(),
        "the imager's kernel is not the installer's ABI"
    );

    let dir = TestDir::new();
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let unpack = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | cpio -idm --quiet",
            out.join("initrd.img").display()
        ))
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(
        unpack.status.success(),
        "the initramfs does not unpack: {}",
        String::from_utf8_lossy(&unpack.stderr)
    );
    assert_eq!(
        std::fs::read(tree.join("init")).unwrap(),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/imager/init")).unwrap(),
        "/init is not packaging/imager/init"
    );
    // Each tool, run in a chroot of the initramfs: it finds every library it needs there.
    for cmd in [
        "/bin/busybox sh -c true",
        "/usr/sbin/partclone.extfs -v",
        "/usr/sbin/partclone.xfs -v",
        "/usr/sbin/partclone.btrfs -v",
        "/usr/sbin/partclone.fat -v",
        "/usr/sbin/partclone.ntfs -v",
        "/usr/sbin/partclone.dd -v",
        "/usr/sbin/partclone.restore -v",
        "/usr/bin/zstd --version",
        "/usr/bin/curl --version",
        "/usr/sbin/sfdisk --version",
        "/usr/sbin/sgdisk --version",
        "/usr/sbin/blkid --version",
        "/usr/sbin/e2fsck -V",
        "/usr/sbin/dumpe2fs -V",
        "/usr/bin/udp-receiver --license",
        "/bin/sha256sum /init",
        "/bin/udhcpc --help",
        "/bin/modprobe --help",
    ] {
        let mut args = vec!["chroot", tree.to_str().unwrap()];
        args.extend(cmd.split_whitespace());
        let r = run(&args);
        assert!(
            r.status.success(),
            "`{cmd}` fails in the imager's initramfs: {}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
    }
    // The drivers for common disks and network cards, with what they depend on.
    let deps =
        std::fs::read_to_string(tree.join(format!("lib/modules/{abi}/modules.dep"))).unwrap();
    for m in [
        "virtio_blk",
        "virtio_net",
        "virtio_pci",
        "ahci",
        "ata_piix",
        "nvme",
        "usb-storage",
        "uas",
        "xhci-pci",
        "ehci-pci",
        "sd_mod",
        "e1000",
        "e1000e",
        "igb",
        "ixgbe",
        "r8169",
        "tg3",
        "ext4",
        "vfat",
        "libata",
        "scsi_mod",
        "usbcore",
        "jbd2",
    ] {
        let needle = format!("/{m}.ko:");
        let line = deps
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("the initramfs has no {m}.ko in modules.dep"));
        for dep in line.split_whitespace().skip(1) {
            assert!(
                tree.join(format!("lib/modules/{abi}/{dep}")).exists(),
                "{m} needs {dep}, which is missing"
            );
        }
    }
    let sizes = format!(
        "vmlinuz {:.1} MB, initrd.img {:.1} MB",
        std::fs::metadata(out.join("vmlinuz")).unwrap().len() as f64 / 1e6,
        std::fs::metadata(out.join("initrd.img")).unwrap().len() as f64 / 1e6
    );
    eprintln!("imager: {sizes}");
}

#[test]
fn a_disk_saved_by_the_imager_restores_byte_for_byte_onto_a_blank_disk() {
    let imager = imager();
    let dir = TestDir::new();
    let source = dir.join("source.raw");
    make_source_disk(&source, &dir.join("files"));

    // Save: the source disk read-only, as a machine booted with save-image:lab.
    let save = Stand::start(dir.join("images"), Job::Save);
    let vm = run_imager(
        imager,
        &source,
        true,
        "save",
        &save,
        &dir.join("serial-save.log"),
    );
    vm.shows("NMT-IMAGER-OK save lab@1");
    let rec = save.record();
    assert_eq!(
        rec.failed, None,
        "the save reported a failure; console:\n{}",
        vm.serial
    );
    let inventory = rec
        .inventory
        .clone()
        .expect("the imager posted no inventory");
    let lines: Vec<&str> = inventory.lines().collect();
    assert_eq!(
        lines[0],
        format!("disk vda {DISK_BYTES} dos"),
        "{inventory}"
    );
    let part: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(
        (part[0], part[1], part[2], part[3], part[6]),
        ("part", "1", "/dev/vda1", "ext4", "partclone.extfs"),
        "{inventory}"
    );
    assert_eq!(part[4], (PART_SECTORS * 512).to_string(), "{inventory}");
    let used: u64 = part[5].parse().unwrap();
    assert!(
        used > 2_000_000 && used < PART_SECTORS * 512,
        "used bytes {used}"
    );
    assert_eq!(lines.len(), 2, "{inventory}");
    assert!(rec.done, "the save was never posted done");

    // The image directory, as docs/imaging.md lays it out; the stand-in made it visible at
    // `done`.
    let image = dir.join("images/lab@1");
    let table = std::fs::read_to_string(image.join("table.sfdisk")).unwrap();
    assert!(table.contains("label: dos"), "{table}");
    assert!(
        table.contains(&format!(
            "/dev/vda1 : start=        2048, size=      {PART_SECTORS}, type=83"
        )),
        "{table}"
    );
    let src = std::fs::read(&source).unwrap();
    assert!(
        std::fs::read(image.join("head.bin")).unwrap() == src[..1 << 20],
        "head.bin is not the source's first MiB"
    );
    // Stock tools read the partition's image: its CRCs check, and the raw partition it
    // restores to is the source's, marker file and all.
    let p1 = image.join("p1.partclone.zst");
    sh(&format!(
        "zstd -dc '{}' | partclone.chkimg -s - -L '{}' >/dev/null 2>&1",
        p1.display(),
        dir.join("chkimg.log").display()
    ));
    let raw = dir.join("p1.raw");
    sh(&format!(
        "zstd -dc '{}' | partclone.restore -s - -W -O '{}' -L '{}' >/dev/null 2>&1",
        p1.display(),
        raw.display(),
        dir.join("restore-W.log").display()
    ));
    let cat = must(&["debugfs", "-R", "cat /marker", raw.to_str().unwrap()]);
    assert_eq!(cat, MARKER, "the saved partition's /marker");
    assert!(
        std::fs::read(&raw).unwrap() == src[PART_START as usize..],
        "the saved partition, restored on the host, differs from the source's"
    );

    // Restore onto a blank disk. The stand-in cuts the partition's first transfer a third of
    // the way through: the imager must resume it where it broke.
    let blank = dir.join("blank.raw");
    std::fs::File::create(&blank)
        .unwrap()
        .set_len(DISK_BYTES)
        .unwrap();
    let parts = vec![(
        1,
        "ext4".to_string(),
        PART_SECTORS * 512,
        "partclone.extfs".to_string(),
    )];
    let restore = Stand::start(
        dir.join("images"),
        Job::Restore {
            parts,
            cut: Some("p1".into()),
            wrong: None,
            multicast: None,
        },
    );
    let vm = run_imager(
        imager,
        &blank,
        false,
        "restore",
        &restore,
        &dir.join("serial-restore.log"),
    );
    vm.shows("NMT-IMAGER-OK restore lab@1");
    let rec = restore.record();
    assert_eq!(rec.failed, None, "console:\n{}", vm.serial);
    assert!(
        rec.requests
            .iter()
            .any(|r| r.starts_with("GET restore/1/p1 bytes=")),
        "the imager did not resume the cut transfer with a Range request: {:?}",
        rec.requests
    );
    // Its report: one line per stream with the SHA-256 it computed as it read.
    let expected: String = ["table", "head", "p1"]
        .iter()
        .map(|s| format!("{s} {}\n", sha256(&image.join(stream_file(s)))))
        .collect();
    assert_eq!(rec.done_body.as_deref(), Some(expected.as_str()));
    // The restored disk is the source, byte for byte: table, boot code and gap, partition.
    assert!(
        std::fs::read(&blank).unwrap() == src,
        "the restored disk differs from the source (cmp {} {})",
        source.display(),
        blank.display()
    );
}

#[test]
fn the_imager_refuses_a_stream_that_is_not_the_one_it_asked_for() {
    let imager = imager();
    let dir = TestDir::new();
    // An image whose table stream nmtd (here, the stand-in) serves under another name: the
    // imager must not write a byte, and must report the failure.
    let image = dir.join("images/lab@1");
    std::fs::create_dir_all(&image).unwrap();
    std::fs::write(
        image.join("table.sfdisk"),
        "label: dos\n\nstart=2048, size=2048, type=83\n",
    )
    .unwrap();
    std::fs::write(image.join("head.bin"), vec![0u8; 1 << 20]).unwrap();
    std::fs::write(image.join("p1.partclone.zst"), b"not really").unwrap();
    let disk = dir.join("blank.raw");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(DISK_BYTES)
        .unwrap();
    let stand = Stand::start(
        dir.join("images"),
        Job::Restore {
            parts: vec![(1, "ext4".into(), 1 << 20, "partclone.extfs".into())],
            cut: None,
            wrong: Some("table".into()),
            multicast: None,
        },
    );
    let vm = run_imager(
        imager,
        &disk,
        false,
        "restore",
        &stand,
        &dir.join("serial.log"),
    );
    vm.shows("NMT-IMAGER-FAILED table: X-Nmt-Stream is");
    let rec = stand.record();
    let reason = rec.failed.clone().expect("no …/failed was posted");
    assert!(reason.contains("X-Nmt-Stream"), "{reason}");
    assert!(!rec.done, "a refused restore was posted done");
    assert!(
        !rec.requests
            .iter()
            .any(|r| r.contains("head") || r.contains("p1")),
        "it went on after the refusal: {:?}",
        rec.requests
    );
    assert!(
        std::fs::read(&disk).unwrap().iter().all(|&b| b == 0),
        "the disk was written"
    );
}

#[test]
fn the_imager_restores_a_partition_from_a_udpcast_session() {
    let imager = imager();
    require_tool("udp-sender", "udpcast");
    require_tool("dnsmasq", "dnsmasq-base");
    require_tool("ip", "iproute2");
    require_tool("partclone.extfs", "partclone");
    let dir = TestDir::new();
    let source = dir.join("source.raw");
    make_source_disk(&source, &dir.join("files"));
    // The image, made on the host with the same stock tools.
    let image = dir.join("images/lab@1");
    image_on_host(&source, &image, dir.path());

    // A network namespace with a bridge (no multicast snooping), dnsmasq for the imager's
    // DHCP, the stand-in on the bridge's address, and udp-sender: the session starts with
    // the line that names the stream, then the stream itself.
    let mut lab = MulticastLab::start(&dir.join("lab"));
    let p1 = image.join("p1.partclone.zst");
    let session = dir.join("p1.session");
    let mut bytes = format!("nmt-stream lab@1 p1 {}\n", sha256(&p1)).into_bytes();
    bytes.extend(std::fs::read(&p1).unwrap());
    std::fs::write(&session, bytes).unwrap();
    let stand = Stand::start_in(
        &lab,
        dir.join("images"),
        Job::Restore {
            parts: vec![(
                1,
                "ext4".into(),
                PART_SECTORS * 512,
                "partclone.extfs".into(),
            )],
            cut: None,
            wrong: None,
            multicast: Some((MCAST_PORT, MCAST_ADDRESS.into())),
        },
    );
    let port = MCAST_PORT.to_string();
    lab.spawn(
        "udp-sender",
        &[
            "timeout",
            "170",
            "udp-sender",
            "--file",
            session.to_str().unwrap(),
            "--interface",
            BRIDGE,
            "--portbase",
            &port,
            "--mcast-rdv-address",
            MCAST_ADDRESS,
            "--min-receivers",
            "1",
            "--max-wait",
            "150",
            "--nokbd",
            "--full-duplex",
        ],
    );
    let blank = dir.join("blank.raw");
    std::fs::File::create(&blank)
        .unwrap()
        .set_len(DISK_BYTES)
        .unwrap();
    let vm = run_imager(
        imager,
        &blank,
        false,
        "restore",
        &stand,
        &dir.join("serial.log"),
    );
    vm.shows("joining the multicast session")
        .shows("NMT-IMAGER-OK restore lab@1");
    let rec = stand.record();
    assert!(
        !rec.requests
            .iter()
            .any(|r| r.starts_with("GET restore/1/p1")),
        "the partition came over HTTP, not from the udpcast session: {:?}\n{}",
        rec.requests,
        vm.serial
    );
    let expected: String = ["table", "head", "p1"]
        .iter()
        .map(|s| format!("{s} {}\n", sha256(&image.join(stream_file(s)))))
        .collect();
    assert_eq!(rec.done_body.as_deref(), Some(expected.as_str()));
    assert!(
        std::fs::read(&blank).unwrap() == std::fs::read(&source).unwrap(),
        "the disk restored from multicast differs from the source"
    );
}

/// The image of `source` as the imager would save it, made on the host: `sfdisk -d` (with
/// the guest's device names), the first MiB, `partclone.extfs -c | zstd` of the partition.
fn image_on_host(source: &Path, image: &Path, work: &Path) {
    std::fs::create_dir_all(image).unwrap();
    let table = must(&["sfdisk", "-d", source.to_str().unwrap()])
        .replace(source.to_str().unwrap(), "/dev/vda");
    std::fs::write(image.join("table.sfdisk"), table).unwrap();
    let src = std::fs::read(source).unwrap();
    std::fs::write(image.join("head.bin"), &src[..1 << 20]).unwrap();
    let part = work.join("p1.source");
    std::fs::write(&part, &src[PART_START as usize..]).unwrap();
    sh(&format!(
        "partclone.extfs -c -s '{}' -o - -L '{}' 2>/dev/null | zstd -q -3 -c >'{}'",
        part.display(),
        work.join("partclone.log").display(),
        image.join("p1.partclone.zst").display()
    ));
}

/// A network namespace with a bridge and the VM's tap, and dnsmasq for DHCP on it; removed,
/// with whatever still runs in it, when dropped.
struct MulticastLab {
    ns: String,
    dir: PathBuf,
    children: Vec<(String, std::process::Child)>,
}

impl MulticastLab {
    fn start(dir: &Path) -> MulticastLab {
        require_root("the multicast test runs its VM in a network namespace");
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        std::fs::create_dir_all(dir).unwrap();
        // The netboot lab's sweep removes namespaces of this prefix left by dead test runs.
        let ns = format!(
            "nmt-nb-{}-img{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        must(&["ip", "netns", "add", &ns]);
        let mut lab = MulticastLab {
            ns,
            dir: dir.to_path_buf(),
            children: Vec::new(),
        };
        let cidr = format!("{LAB_SERVER}/24");
        for args in [
            vec!["link", "set", "lo", "up"],
            vec![
                "link",
                "add",
                BRIDGE,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
            // `brd +`: without a broadcast address udpcast's rendezvous stays on the host.
            vec!["addr", "add", &cidr, "brd", "+", "dev", BRIDGE],
            vec!["link", "set", BRIDGE, "up"],
            vec!["route", "add", "224.0.0.0/4", "dev", BRIDGE],
            vec!["tuntap", "add", "dev", TAP, "mode", "tap"],
            vec!["link", "set", TAP, "master", BRIDGE],
            vec!["link", "set", TAP, "up"],
        ] {
            let mut a = vec!["ip", "-n", &lab.ns];
            a.extend(args);
            must(&a);
        }
        let d = lab.dir.clone();
        lab.spawn(
            "dnsmasq",
            &[
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                &format!("--interface={BRIDGE}"),
                "--bind-interfaces",
                "--dhcp-range=10.214.0.100,10.214.0.150,1h",
                "--no-ping",
                "--user=root",
                &format!("--dhcp-leasefile={}", d.join("leases").display()),
                &format!("--pid-file={}", d.join("dnsmasq.pid").display()),
                &format!("--log-facility={}", d.join("dnsmasq.log").display()),
            ],
        );
        let start = Instant::now();
        while must(&[
            "ip", "netns", "exec", &lab.ns, "ss", "-Hlnu", "sport", "= :67",
        ])
        .trim()
        .is_empty()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dnsmasq does not listen on udp/67: {}",
                std::fs::read_to_string(d.join("dnsmasq.stdio")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        lab
    }

    /// Run a program inside the namespace, its output in DIR/NAME.stdio.
    fn spawn(&mut self, name: &str, args: &[&str]) {
        let out = std::fs::File::create(self.dir.join(format!("{name}.stdio"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name}: {e}"));
        self.children.push((name.into(), child));
    }
}

impl Drop for MulticastLab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (name, _) in &self.children {
                let log = self.dir.join(format!("{name}.stdio"));
                eprintln!(
                    "=== {}\n{}",
                    log.display(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
        for (_, mut c) in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(o) = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
        {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).output();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// A 64 MiB disk: an MBR with one Linux partition from 1 MiB, an ext4 file system in it
/// (mke2fs -d, no loop device) with the marker and a few MB of incompressible data, bytes in
/// the boot code area and in the gap before the partition (which only the head carries).
fn make_source_disk(disk: &Path, files: &Path) {
    std::fs::create_dir_all(files.join("data")).unwrap();
    std::fs::write(files.join("marker"), MARKER).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..3_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(files.join("data/noise.bin"), noise).unwrap();
    for i in 0..50 {
        std::fs::write(
            files.join(format!("data/file{i:02}.txt")),
            format!("file {i}\n").repeat(100),
        )
        .unwrap();
    }
    std::fs::File::create(disk)
        .unwrap()
        .set_len(DISK_BYTES)
        .unwrap();
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q", disk.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    write!(
        sfdisk.stdin.take().unwrap(),
        "label: dos\nlabel-id: 0x6e6d7401\nstart=2048, size={PART_SECTORS}, type=83\n"
    )
    .unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk on the test disk");
    must(&[
        "mke2fs",
        "-q",
        "-F",
        "-t",
        "ext4",
        "-E",
        &format!("offset={PART_START}"),
        "-d",
        files.to_str().unwrap(),
        disk.to_str().unwrap(),
        &format!("{}k", PART_SECTORS / 2),
    ]);
    let mut f = std::fs::OpenOptions::new().write(true).open(disk).unwrap();
    use std::io::{Seek, SeekFrom};
    f.write_all(b"\xeb\x63NMT-BOOT-CODE").unwrap();
    f.seek(SeekFrom::Start(0x10000)).unwrap();
    f.write_all(b"NMT-MBR-GAP: only the head carries this")
        .unwrap();
}

fn sh(script: &str) {
    must(&["sh", "-c", script]);
}

fn sha256(path: &Path) -> String {
    must(&["sha256sum", path.to_str().unwrap()])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A stream's file in the image directory.
fn stream_file(stream: &str) -> String {
    match stream {
        "table" => "table.sfdisk".into(),
        "head" => "head.bin".into(),
        p => format!("{p}.partclone.zst"),
    }
}

/// What one imager run showed.
struct Boot {
    serial: String,
    log: PathBuf,
}

impl Boot {
    fn shows(&self, marker: &str) -> &Self {
        assert!(
            self.serial.contains(marker),
            "the imager's console ({}) does not show {marker:?}:\n{}",
            self.log.display(),
            self.serial
        );
        self
    }
}

/// Boot the imager on `disk` in QEMU, against the stand-in; wait until it powers off.
/// One imager VM runs at a time: two cores emulating two machines only makes both slower.
fn run_imager(
    imager: &Path,
    disk: &Path,
    readonly: bool,
    mode: &str,
    stand: &Stand,
    log: &Path,
) -> Boot {
    static ONE_VM: Mutex<()> = Mutex::new(());
    let _turn = ONE_VM.lock().unwrap_or_else(|p| p.into_inner());
    let append = format!(
        "console=ttyS0,115200 quiet nmt.mode={mode} nmt.image=lab \
         nmt.server=http://{server} nmt.mac={MAC} nmt.token={TOKEN}",
        server = stand.server
    );
    // User-mode networking (the guest reaches the host's loopback at 10.0.2.2), or a tap on
    // the bridge of the test's own network namespace.
    let (netdev, prefix): (String, Vec<&str>) = match &stand.ns {
        None => ("user,id=n0".into(), vec![]),
        Some(ns) => (
            format!("tap,id=n0,ifname={TAP},script=no,downscript=no"),
            vec!["ip", "netns", "exec", ns],
        ),
    };
    let drive = format!(
        "file={},if=virtio,format=raw{}",
        disk.display(),
        if readonly { ",readonly=on" } else { "" }
    );
    let start = Instant::now();
    let mut cmd = Command::new(prefix.first().copied().unwrap_or("timeout"));
    if !prefix.is_empty() {
        cmd.args(&prefix[1..]).arg("timeout");
    }
    let status = cmd
        .args(["--kill-after=5", &VM_LIMIT.as_secs().to_string()])
        .args(["qemu-system-x86_64", "-accel", crate::netboot::accel()])
        .args([
            "-smp",
            "1",
            "-m",
            "512",
            "-nographic",
            "-no-user-config",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(imager.join("vmlinuz"))
        .arg("-initrd")
        .arg(imager.join("initrd.img"))
        .args(["-append", &append, "-drive", &drive])
        .args(["-netdev", &netdev, "-device"])
        .arg(format!("virtio-net-pci,netdev=n0,mac={MAC}"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .status()
        .expect("qemu-system-x86_64");
    let took = start.elapsed();
    let serial = String::from_utf8_lossy(&std::fs::read(log).unwrap()).replace('\r', "");
    // The guest's own clock (seconds since its kernel started) on its progress lines.
    let at = |what: &str| {
        serial
            .lines()
            .filter_map(|l| l.split_once("nmt-imager: [")?.1.split_once(']'))
            .find(|(_, rest)| rest.contains(what))
            .map(|(t, _)| t.to_string())
            .unwrap_or_else(|| "-".into())
    };
    eprintln!(
        "imager: {mode} VM ran {:.1} s (QEMU {status}); in the guest: init {} s, network up {} s, \
         {} {} s",
        took.as_secs_f64(),
        at(""),
        at("network up"),
        mode,
        at("powering off"),
    );
    assert!(
        status.code().is_some_and(|c| c != 124 && c != 137),
        "the imager did not power off within {VM_LIMIT:?}; console ({}):\n{serial}",
        log.display()
    );
    Boot {
        serial,
        log: log.to_path_buf(),
    }
}

// ---- the test's stand-in for nmtd's side of docs/imaging.md ----------------------------------
//
// Only a harness: it answers one machine (MAC, TOKEN) for one image (lab, version 1), keeps
// what it receives under `images/` as the doc lays it out, and records every request. It is
// deliberately not nmtd's implementation (that is src/daemon/'s business).

/// What the stand-in is to tell the imager.
enum Job {
    Save,
    Restore {
        /// The manifest's partitions: number, file system, size in bytes, tool.
        parts: Vec<(u32, String, u64, String)>,
        /// Cut this stream's first transfer a third of the way through.
        cut: Option<String>,
        /// Serve this stream with another stream's X-Nmt-Stream header.
        wrong: Option<String>,
        /// The manifest's `multicast PORTBASE ADDRESS` line.
        multicast: Option<(u16, String)>,
    },
}

/// What the imager did.
#[derive(Default, Clone)]
struct Record {
    /// `METHOD path-after-BASE [range]`, in order.
    requests: Vec<String>,
    inventory: Option<String>,
    done: bool,
    done_body: Option<String>,
    failed: Option<String>,
}

struct Stand {
    /// HOST:PORT as the guest reaches it.
    server: String,
    /// The network namespace it listens in (None: the host's loopback).
    ns: Option<String>,
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
}

struct Ctx {
    images: PathBuf,
    job: Job,
    record: Arc<Mutex<Record>>,
    cut_done: AtomicBool,
}

impl Stand {
    /// Listen on the host's loopback, which QEMU's user-mode network reaches as 10.0.2.2.
    fn start(images: PathBuf, job: Job) -> Stand {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        Stand::serve_on(listener, format!("10.0.2.2:{port}"), None, images, job)
    }

    /// Listen on the bridge of a network namespace (the socket is made inside it).
    fn start_in(lab: &MulticastLab, images: PathBuf, job: Job) -> Stand {
        let path = format!("/var/run/netns/{}", lab.ns);
        let listener = std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            TcpListener::bind(format!("{LAB_SERVER}:0")).unwrap()
        })
        .join()
        .unwrap();
        let port = listener.local_addr().unwrap().port();
        Stand::serve_on(
            listener,
            format!("{LAB_SERVER}:{port}"),
            Some(lab.ns.clone()),
            images,
            job,
        )
    }

    fn serve_on(
        listener: TcpListener,
        server: String,
        ns: Option<String>,
        images: PathBuf,
        job: Job,
    ) -> Stand {
        std::fs::create_dir_all(images.join(".partial")).unwrap();
        listener.set_nonblocking(true).unwrap();
        let record = Arc::new(Mutex::new(Record::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = Arc::new(Ctx {
            images,
            job,
            record: record.clone(),
            cut_done: AtomicBool::new(false),
        });
        let stopping = stop.clone();
        std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let ctx = ctx.clone();
                        std::thread::spawn(move || {
                            if let Err(e) = serve(conn, &ctx) {
                                eprintln!("imager stand-in: {e}");
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Stand {
            server,
            ns,
            record,
            stop,
        }
    }

    fn record(&self) -> Record {
        self.record.lock().unwrap().clone()
    }
}

impl Drop for Stand {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn respond(
    w: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// A request's body (Content-Length or chunked, as `curl -T -` sends) into `sink`.
fn read_body(
    r: &mut impl BufRead,
    headers: &HashMap<String, String>,
    sink: &mut impl Write,
) -> std::io::Result<()> {
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            let n = u64::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {line:?}")))?;
            if n == 0 {
                // Trailers, then the blank line.
                loop {
                    line.clear();
                    r.read_line(&mut line)?;
                    if line.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            let copied = std::io::copy(&mut r.by_ref().take(n), sink)?;
            if copied != n {
                return Err(std::io::Error::other("a chunk cut short"));
            }
            line.clear();
            r.read_line(&mut line)?;
        }
    }
    let n: u64 = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    std::io::copy(&mut r.by_ref().take(n), sink)?;
    Ok(())
}

fn serve(conn: TcpStream, ctx: &Ctx) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    if headers
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    // BASE is /v1/image/{mac}/{token}: a wrong one is refused and changes nothing.
    let Some(rest) = path.strip_prefix("/v1/image/") else {
        return respond(&mut w, "404 Not Found", &[], b"no such path\n");
    };
    let mut it = rest.splitn(3, '/');
    let (mac, token, what) = (
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
    );
    let range = headers.get("range").cloned();
    ctx.record.lock().unwrap().requests.push(format!(
        "{method} {what}{}",
        range
            .as_deref()
            .map(|r| format!(" {r}"))
            .unwrap_or_default()
    ));
    if mac != MAC_DASHED || token != TOKEN {
        return respond(&mut w, "403 Forbidden", &[], b"wrong machine or token\n");
    }
    let partial = ctx.images.join(".partial/lab@1");
    let done_dir = ctx.images.join("lab@1");
    match (method.as_str(), what, &ctx.job) {
        ("GET", "job", Job::Save) => respond(
            &mut w,
            "200 OK",
            &[],
            b"mode save\nimage lab\nrootdev /dev/vda1\n",
        ),
        ("GET", "job", Job::Restore { .. }) => respond(
            &mut w,
            "200 OK",
            &[],
            b"mode restore\nimage lab\nversion 1\nrootdev /dev/vda1\n",
        ),
        ("POST", "save", Job::Save) => {
            let mut body = Vec::new();
            read_body(&mut r, &headers, &mut body)?;
            ctx.record.lock().unwrap().inventory =
                Some(String::from_utf8_lossy(&body).into_owned());
            std::fs::create_dir_all(&partial)?;
            respond(&mut w, "200 OK", &[], b"version 1\n")
        }
        ("PUT", s, Job::Save) if s.starts_with("save/1/") => {
            let stream = &s["save/1/".len()..];
            let mut f = std::fs::File::create(partial.join(stream_file(stream)))?;
            read_body(&mut r, &headers, &mut f)?;
            f.sync_all()?;
            respond(&mut w, "200 OK", &[], b"")
        }
        ("POST", "save/1/done", Job::Save) => {
            read_body(&mut r, &headers, &mut std::io::sink())?;
            for s in ["table", "head", "p1"] {
                if !partial.join(stream_file(s)).exists() {
                    return respond(
                        &mut w,
                        "409 Conflict",
                        &[],
                        format!("stream {s} never arrived\n").as_bytes(),
                    );
                }
            }
            std::fs::rename(&partial, &done_dir)?;
            ctx.record.lock().unwrap().done = true;
            respond(&mut w, "200 OK", &[], b"")
        }
        ("POST", s, _) if s.ends_with("/failed") => {
            let mut body = Vec::new();
            read_body(&mut r, &headers, &mut body)?;
            ctx.record.lock().unwrap().failed = Some(String::from_utf8_lossy(&body).into_owned());
            respond(&mut w, "200 OK", &[], b"")
        }
        (
            "GET",
            "restore",
            Job::Restore {
                parts, multicast, ..
            },
        ) => {
            let mut m = String::from("image lab 1\n");
            for s in ["table", "head"] {
                let f = done_dir.join(stream_file(s));
                m.push_str(&format!(
                    "stream {s} {} {}\n",
                    sha256(&f),
                    std::fs::metadata(&f)?.len()
                ));
            }
            for (n, fs, size, tool) in parts {
                let f = done_dir.join(stream_file(&format!("p{n}")));
                m.push_str(&format!(
                    "part {n} {fs} {size} {tool} {} {}\n",
                    sha256(&f),
                    std::fs::metadata(&f)?.len()
                ));
            }
            if let Some((port, address)) = multicast {
                m.push_str(&format!("multicast {port} {address}\n"));
            }
            respond(&mut w, "200 OK", &[], m.as_bytes())
        }
        ("GET", s, Job::Restore { cut, wrong, .. }) if s.starts_with("restore/1/") => {
            let stream = &s["restore/1/".len()..];
            let f = done_dir.join(stream_file(stream));
            let Ok(bytes) = std::fs::read(&f) else {
                return respond(&mut w, "404 Not Found", &[], b"no such stream\n");
            };
            let name = if wrong.as_deref() == Some(stream) {
                "head"
            } else {
                stream
            };
            let mut hdrs = vec![("X-Nmt-Stream", format!("lab@1 {name} {}", sha256(&f)))];
            if let Some(from) = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|r| r.parse::<usize>().ok())
                .filter(|&from| from < bytes.len())
            {
                hdrs.push((
                    "Content-Range",
                    format!("bytes {from}-{}/{}", bytes.len() - 1, bytes.len()),
                ));
                return respond(&mut w, "206 Partial Content", &hdrs, &bytes[from..]);
            }
            if cut.as_deref() == Some(stream) && !ctx.cut_done.swap(true, Ordering::SeqCst) {
                // Announce the whole stream, send a third, and hang up.
                let mut head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n",
                    bytes.len()
                );
                for (k, v) in &hdrs {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                w.write_all(head.as_bytes())?;
                w.write_all(&bytes[..bytes.len() / 3])?;
                w.flush()?;
                std::thread::sleep(Duration::from_millis(200));
                return w.shutdown(Shutdown::Both);
            }
            respond(&mut w, "200 OK", &hdrs, &bytes)
        }
        ("POST", "restore/1/done", Job::Restore { .. }) => {
            let mut body = Vec::new();
            read_body(&mut r, &headers, &mut body)?;
            let mut rec = ctx.record.lock().unwrap();
            rec.done = true;
            rec.done_body = Some(String::from_utf8_lossy(&body).into_owned());
            respond(&mut w, "200 OK", &[], b"")
        }
        _ => respond(&mut w, "404 Not Found", &[], b"not in this test's script\n"),
    }
}
