//! Helpers shared by every test module, in one place:
//!
//! - running programs: [`run`], [`must`];
//! - temporary directories that a failing test keeps: [`TestDir`];
//! - the real `nmt` binary in a temporary state: [`Nmt`]; the real `nmtd`: [`Daemon`];
//! - waiting and files: [`wait_for`], [`append`], [`mtime`], [`pxe`], [`grub`], [`mac`];
//! - what a test needs from the host, said clearly when it is missing (no test skips):
//!   [`require`], [`require_root`], [`require_tool`], [`require_file`];
//! - ISC dhcpd's own check of nmt's include: [`dhcpd_conf`], [`dhcpd_check`].
//!
//! On failure a test prints the command, its stdout and stderr, and keeps its directory.

mod daemon;

pub use daemon::Daemon;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Run a program (`args[0]`) with arguments; panics if it cannot be started.
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", args.join(" ")))
}

/// Run and require success; the stdout.
pub fn must(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "`{}` failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What every "missing" message ends with.
const HOW: &str = "run the README's test command (`tests/deps && cargo test --workspace`) as root, which installs what is \
                   missing; no test skips";

/// Require something of the host: when `present` is false the test fails, saying that it
/// needs `what`.
pub fn require(what: &str, present: bool) {
    assert!(present, "this test needs {what}; {HOW}");
}

/// Require root, saying `why` the test needs it (e.g. "it creates network namespaces").
pub fn require_root(why: &str) {
    require(&format!("root ({why})"), nix::unistd::geteuid().is_root());
}

/// Require a program, by name on `PATH` or by absolute path, from a Debian `package`.
pub fn require_tool(tool: &str, package: &str) {
    let found = if tool.starts_with('/') {
        Path::new(tool).exists()
    } else {
        run(&["sh", "-c", &format!("command -v {tool}")])
            .status
            .success()
    };
    require(&format!("`{tool}` (Debian's {package})"), found);
}

/// Require a file from a Debian `package`.
pub fn require_file(path: &str, package: &str) {
    require(
        &format!("{path} (Debian's {package})"),
        Path::new(path).exists(),
    );
}

/// Poll `f` until it holds; fails after `limit`, naming `what`. How long it took.
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// Append text to a file, creating it (as a logging server would).
pub fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A temporary directory, removed when dropped, except when the test is failing: then it is
/// kept, and its path printed (`kept test dir: PATH`), to look at what the test left.
pub struct TestDir {
    dir: Option<TempDir>,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: Some(
                tempfile::Builder::new()
                    .prefix("nmt-test-")
                    .tempdir()
                    .expect("a temporary directory"),
            ),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the directory until dropped")
            .path()
    }

    /// A path inside it.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path().join(rel)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("kept test dir: {}", dir.keep().display());
        }
    }
}

/// A temporary nmt state.
pub struct Nmt {
    pub dir: TestDir,
}

impl Nmt {
    /// A new state, created by `nmt init` (its output is checked by the `init` tests).
    pub fn new() -> Nmt {
        let t = Nmt::bare();
        t.ok(&["init"]);
        t
    }

    /// A directory with no state yet (for `nmt init`, nmtd's first start, and what other
    /// commands say when there is none).
    pub fn bare() -> Nmt {
        Nmt {
            dir: TestDir::new(),
        }
    }

    /// The state directory.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A command for the real binary with this state.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nmt"));
        c.args(args)
            .env("NMT_STATE", self.state())
            .env_remove("NMT_CONFIG")
            .env("TZ", "UTC")
            .current_dir(self.dir.path());
        c
    }

    fn describe(&self, args: &[&str], out: &Output) -> String {
        format!(
            "command: nmt {}\nstatus: {}\ndir: {}\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            out.status,
            self.dir.path().display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Run and require success; the stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "expected success\n{}",
            self.describe(args, &out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run with standard input and require success.
    pub fn ok_stdin(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "expected success\n{}",
            self.describe(args, &out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run and require exit status 1; the stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "expected exit status 1\n{}",
            self.describe(args, &out)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Run with --json and parse the output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: not JSON:\n{out}"))
    }

    /// A generated file's text, by path relative to the state directory.
    pub fn file(&self, rel: &str) -> String {
        let p = self.state().join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The path of a file under the state directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.state().join(rel)
    }

    /// The number of events in the log.
    pub fn event_count(&self) -> usize {
        // Every line but the export's trailer.
        self.ok(&["journal", "export"]).lines().count() - 1
    }
}

/// The pxelinux file of a MAC, relative to the state directory.
pub fn pxe(mac: &str) -> String {
    format!("tftp/pxelinux.cfg/01-{}", mac.replace(':', "-"))
}

/// The GRUB file of a MAC, relative to the state directory.
pub fn grub(mac: &str) -> String {
    format!("tftp/grub/grub.cfg-01-{}", mac.replace(':', "-"))
}

/// The nth test MAC.
pub fn mac(n: u32) -> String {
    format!("52:54:00:00:{:02x}:{:02x}", n >> 8, n & 0xff)
}

/// A file's modification time, to tell whether it was rewritten.
pub fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

/// A minimal dhcpd.conf that includes `include` (nmt's generated part).
pub fn dhcpd_conf(include: &Path) -> String {
    format!(
        "ddns-update-style none;\nsubnet 10.0.0.0 netmask 255.255.0.0 {{ range 10.0.200.1 10.0.200.250; }}\ninclude \"{}\";\n",
        include.display()
    )
}

/// Run the real `dhcpd -t` on a dhcpd.conf that includes `include`.
pub fn dhcpd_check(include: &Path) {
    require_tool("/usr/sbin/dhcpd", "isc-dhcp-server");
    let dir = TestDir::new();
    let conf = dir.join("dhcpd.conf");
    std::fs::write(&conf, dhcpd_conf(include)).unwrap();
    let out = Command::new("/usr/sbin/dhcpd")
        .args(["-t", "-4", "-cf"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dhcpd -t refused {}:\n{}\n--- include:\n{}",
        include.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(include).unwrap_or_default()
    );
}

/// A small tmpfs mounted for a test (root only), unmounted when dropped: a disk that fills.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(at: PathBuf, size: &str) -> Tmpfs {
        require_root("to mount a small tmpfs");
        std::fs::create_dir_all(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs on {}", at.display());
        Tmpfs { path: at }
    }

    /// Fill it up (a file named `fill`).
    pub fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", self.path.join("fill").display()))
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// Free the space [`Tmpfs::fill`] took.
    pub fn free(&self) {
        std::fs::remove_file(self.path.join("fill")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
