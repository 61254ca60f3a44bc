//! Running the real `nmt` binary in a temporary state directory. On failure a test prints
//! the command, its stdout and stderr, and the directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

use tempfile::TempDir;

/// A temporary nmt state.
pub struct Nmt {
    pub dir: TempDir,
}

impl Nmt {
    pub fn new() -> Nmt {
        Nmt {
            dir: tempfile::Builder::new()
                .prefix("nmt-test-")
                .tempdir()
                .unwrap(),
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
        self.ok(&["journal", "export"]).lines().count()
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

/// Run the real `dhcpd -t` on a dhcpd.conf that includes `include`.
pub fn dhcpd_check(include: &Path) {
    let dhcpd = Path::new("/usr/sbin/dhcpd");
    assert!(
        dhcpd.exists(),
        "/usr/sbin/dhcpd is missing: install Debian's isc-dhcp-server (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("dhcpd.conf");
    std::fs::write(
        &conf,
        format!(
            "ddns-update-style none;\nsubnet 10.0.0.0 netmask 255.255.0.0 {{ range 10.0.200.1 10.0.200.250; }}\ninclude \"{}\";\n",
            include.display()
        ),
    )
    .unwrap();
    let out = Command::new(dhcpd)
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
