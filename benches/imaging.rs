//! Imaging benchmark: nmt's imager saving and restoring a disk through the real nmtd, in QEMU
//! (`-smp 1`, software emulation unless KVM is there), beside `dd | zstd` of the same disk on
//! the host, run at the same time.
//!
//! Prints:
//! - the save of a disk (its used bytes, the stored image's size, the wall time and the rate);
//! - the baseline: `dd if=DISK bs=4M | zstd -3 -T0 > /dev/null` on the host;
//! - the restore of that image onto one blank disk, and onto three at once (unicast: three
//!   imagers fetching from nmtd over HTTP at the same time).
//!
//! The multicast restore of three machines is measured by the netboot lab's story
//! (`rich_restores_three_machines_at_once_through_one_multicast_session` prints each VM's
//! time): it needs a bridge that QEMU's user networking does not give.
//!
//! Run as root (the imager's build checks its tools with chroot): `cargo bench --bench
//! imaging`. NMT_BENCH_USED_MB sets how much of the 1 GiB test disk is used (default 250).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DISK_BYTES: u64 = 1 << 30;

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let d = dir.path();
    let used_mb: u64 = std::env::var("NMT_BENCH_USED_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);

    // The imager, built (or taken from its cache).
    let imager = d.join("imager");
    let built = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/imager/build"))
        .arg(&imager)
        .env(
            "NMT_CACHE_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/nmt-cache"),
        )
        .status()
        .expect("bash");
    assert!(built.success(), "packaging/imager/build failed");

    // A 1 GiB disk: an MBR and one ext4 partition holding `used_mb` of incompressible and
    // compressible files (half each), as a lab machine's system would.
    let disk = d.join("source.raw");
    let root = d.join("root");
    std::fs::create_dir_all(root.join("data")).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..used_mb {
        let mut block = vec![0u8; 1 << 20];
        if i % 2 == 0 {
            for b in block.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
        } else {
            for (j, b) in block.iter_mut().enumerate() {
                *b = b"nmt imaging benchmark, a text that compresses well\n"[j % 51];
            }
        }
        std::fs::write(root.join(format!("data/f{i:04}")), &block).unwrap();
    }
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(DISK_BYTES)
        .unwrap();
    run(
        Command::new("sfdisk").arg("-q").arg(&disk),
        Some("label: dos\nstart=2048, type=83\n"),
    );
    run(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-E", "offset=1048576", "-d"])
            .arg(&root)
            .arg(&disk)
            .arg(format!("{}k", (DISK_BYTES - (1 << 20)) / 1024)),
        None,
    );

    // nmtd, on a state of its own, reachable from QEMU's user networking as 10.0.2.2.
    let state = d.join("state");
    let nmt = |args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_nmt"))
            .args(args)
            .env("NMT_STATE", &state)
            .output()
            .expect("nmt");
        assert!(
            out.status.success(),
            "nmt {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    nmt(&["init"]);
    let (mut nmtd, http) = start_nmtd(&state);
    let port = http.rsplit(':').next().unwrap().to_string();
    let server = format!("http://10.0.2.2:{port}");
    let macs: Vec<String> = (1..=4).map(|n| format!("52:54:00:be:00:{n:02x}")).collect();
    for (n, m) in macs.iter().enumerate() {
        nmt(&["machine", "add", m, "--name", &format!("bench{n}")]);
    }
    let token = |mac: &str| -> String {
        let f = std::fs::read_to_string(
            state.join(format!("tftp/pxelinux.cfg/01-{}", mac.replace(':', "-"))),
        )
        .unwrap();
        let at = f.find("nmt.token=").expect("a token") + "nmt.token=".len();
        f[at..at + 32].to_string()
    };

    // The save.
    nmt(&["policy", "bench0", "save-image:bench", "--once"]);
    let save = vm(
        &imager,
        &disk,
        "save",
        &server,
        &macs[0],
        &token(&macs[0]),
        &d.join("save.log"),
    );
    let save_time = save.wait();
    let shown: serde_json::Value =
        serde_json::from_str(&nmt(&["image", "show", "bench", "--json"])).unwrap();
    let stored = shown["stored_bytes"].as_u64().unwrap_or(0);
    let used = shown["manifest"]["parts"][0]["used"].as_u64().unwrap_or(0);

    // The baseline, on the host, right after.
    let started = Instant::now();
    run(
        Command::new("bash").args([
            "-c",
            &format!(
                "set -o pipefail; dd if={} bs=4M status=none | zstd -3 -T0 -q -c > /dev/null",
                disk.display()
            ),
        ]),
        None,
    );
    let baseline = started.elapsed();

    // One restore, then three at once (unicast).
    let blank = |name: &str| {
        let p = d.join(name);
        std::fs::File::create(&p)
            .unwrap()
            .set_len(DISK_BYTES)
            .unwrap();
        p
    };
    nmt(&["policy", "bench1", "restore-image:bench", "--once"]);
    let one = vm(
        &imager,
        &blank("r1.raw"),
        "restore",
        &server,
        &macs[1],
        &token(&macs[1]),
        &d.join("r1.log"),
    )
    .wait();
    nmt(&[
        "policy",
        "bench1,bench2,bench3",
        "restore-image:bench",
        "--once",
        "--yes",
    ]);
    let started = Instant::now();
    let three: Vec<Running> = (1..=3)
        .map(|n| {
            vm(
                &imager,
                &blank(&format!("r3-{n}.raw")),
                "restore",
                &server,
                &macs[n],
                &token(&macs[n]),
                &d.join(format!("r3-{n}.log")),
            )
        })
        .collect();
    let each: Vec<Duration> = three.into_iter().map(Running::wait).collect();
    let three_time = started.elapsed();
    let restored = nmt(&["image", "show", "bench"]);
    assert!(restored.contains("bench1"), "{restored}");
    let _ = nmtd.kill();
    let _ = nmtd.wait();

    let mbs = |bytes: u64, t: Duration| bytes as f64 / 1e6 / t.as_secs_f64();
    println!();
    println!("| measurement | time | rate | baseline |");
    println!("|---|---|---|---|");
    println!(
        "| save of a 1 GiB disk, {:.0} MB used, through nmtd (image {:.0} MB) | {:.1} s | {:.1} MB/s of used blocks | `dd \\| zstd -3` of the disk on the host: {:.1} s ({:.0} MB/s) |",
        used as f64 / 1e6,
        stored as f64 / 1e6,
        save_time.as_secs_f64(),
        mbs(used, save_time),
        baseline.as_secs_f64(),
        mbs(DISK_BYTES, baseline)
    );
    println!(
        "| restore onto 1 blank disk (unicast) | {:.1} s | {:.1} MB/s of used blocks | |",
        one.as_secs_f64(),
        mbs(used, one)
    );
    println!(
        "| restore onto 3 blank disks at once (unicast) | {:.1} s in all (each {}) | {:.1} MB/s of used blocks in all | |",
        three_time.as_secs_f64(),
        each.iter()
            .map(|t| format!("{:.1} s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        mbs(3 * used, three_time)
    );
    println!(
        "| accelerator | {} | | the guest's CPU is the limit under TCG |",
        accel()
    );
}

/// Run a command to success, with `input` on its standard input.
fn run(cmd: &mut Command, input: Option<&str>) {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("the command runs");
    if let Some(i) = input {
        child.stdin.take().unwrap().write_all(i.as_bytes()).unwrap();
    }
    assert!(child.wait().unwrap().success(), "{cmd:?} failed");
}

/// nmtd on 127.0.0.1, any port; and its machine-facing address.
fn start_nmtd(state: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nmtd"))
        .args(["--state"])
        .arg(state)
        .args(["--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nmtd");
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let http = loop {
        let line = lines.next().expect("nmtd names its listener").unwrap();
        if let Some(a) = line.strip_prefix("nmtd: machine-facing HTTP on http://") {
            break a.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, http)
}

/// A running imager VM.
struct Running {
    child: Child,
    started: Instant,
    log: PathBuf,
    mode: String,
}

impl Running {
    /// Wait for it to power off; its wall time. It must have succeeded.
    fn wait(mut self) -> Duration {
        let status = self.child.wait().unwrap();
        let took = self.started.elapsed();
        let serial = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            status.success() && serial.contains(&format!("NMT-IMAGER-OK {}", self.mode)),
            "the imager's {} failed ({status}); its console:\n{serial}",
            self.mode
        );
        took
    }
}

/// Boot the imager with `disk` to save or restore, as nmt's boot entry would.
fn vm(
    imager: &Path,
    disk: &Path,
    mode: &str,
    server: &str,
    mac: &str,
    token: &str,
    log: &Path,
) -> Running {
    let append = format!(
        "console=ttyS0,115200 quiet nmt.mode={mode} nmt.image=bench nmt.server={server} \
         nmt.mac={mac} nmt.token={token}"
    );
    let child = Command::new("timeout")
        .args([
            "--kill-after=5",
            "1800",
            "qemu-system-x86_64",
            "-accel",
            accel(),
        ])
        .args(["-smp", "1", "-m", "512", "-nographic", "-no-user-config"])
        .arg("-no-reboot")
        .arg("-kernel")
        .arg(imager.join("vmlinuz"))
        .arg("-initrd")
        .arg(imager.join("initrd.img"))
        .args(["-append", &append])
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=raw", disk.display()))
        .args(["-netdev", "user,id=n0", "-device"])
        .arg(format!("virtio-net-pci,netdev=n0,mac={mac}"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64");
    Running {
        child,
        started: Instant::now(),
        log: log.to_path_buf(),
        mode: mode.to_string(),
    }
}

/// KVM when its module is loaded (a `/dev/kvm` alone may be unusable), else TCG.
fn accel() -> &'static str {
    if Path::new("/sys/module/kvm_intel").exists() || Path::new("/sys/module/kvm_amd").exists() {
        "kvm"
    } else {
        "tcg"
    }
}
