//! The real `nmtd` on a test's state, stopped when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Nmt;

/// A running nmtd, stopped when dropped.
pub struct Daemon {
    child: Child,
    /// The machine-facing address.
    pub http: String,
    /// The installer syslog receiver's address, when asked for.
    pub syslog: Option<String>,
    /// The web UI's `http://ADDR:PORT`, when asked for.
    pub web: Option<String>,
}

impl Daemon {
    pub fn start(t: &Nmt, extra: &[&str]) -> Daemon {
        Daemon::start_in(t, None, "127.0.0.1:0", extra)
    }

    /// Start nmtd inside a network namespace (when given) with its machine-facing listener
    /// on `http`.
    pub fn start_in(t: &Nmt, netns: Option<&str>, http: &str, extra: &[&str]) -> Daemon {
        match netns {
            Some(ns) => Daemon::start_wrapped(t, &["ip", "netns", "exec", ns], http, extra),
            None => Daemon::start_wrapped(t, &[], http, extra),
        }
    }

    /// Start nmtd through a wrapper command (`ip netns exec NS`, `prlimit --nofile=N:N --`).
    pub fn start_wrapped(t: &Nmt, wrapper: &[&str], http: &str, extra: &[&str]) -> Daemon {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(env!("CARGO_BIN_EXE_nmtd"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_nmtd")),
        };
        let mut child = cmd
            .args(["--http", http])
            .args(extra)
            .env("NMT_STATE", t.state())
            .env("NMTD_LOG", "info")
            .env("TZ", "UTC")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(t.dir.path().join("nmtd.log"))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut http = None;
        let mut syslog = None;
        let mut web = None;
        let wants_syslog = extra.contains(&"--syslog");
        let wants_web = extra.contains(&"--web");
        while (http.is_none() || (wants_syslog && syslog.is_none()) || (wants_web && web.is_none()))
            && Instant::now() < deadline
        {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(a) = l.strip_prefix("nmtd: machine-facing HTTP on http://") {
                        http = Some(a.to_string());
                    }
                    if let Some(a) = l.strip_prefix("nmtd: installer syslog on udp://") {
                        syslog = Some(a.to_string());
                    }
                    if let Some(a) = l.strip_prefix("nmtd: web UI on ") {
                        web = a.split(' ').next().map(str::to_string);
                    }
                }
                _ => break,
            }
        }
        let (Some(http), true) = (http, web.is_some() || !wants_web) else {
            let _ = child.kill();
            let err = std::fs::read_to_string(t.dir.path().join("nmtd.log")).unwrap_or_default();
            panic!("nmtd did not start: {err}");
        };
        std::thread::spawn(move || for _ in lines {});
        Daemon {
            child,
            http,
            syslog,
            web,
        }
    }

    /// POST a form to the machine-facing listener; the status code and body.
    pub fn post(&self, path: &str, form: &str) -> (u16, String) {
        self.exchange(&format!(
            "POST {path} HTTP/1.1\r\nHost: nmtd\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ))
    }

    /// GET from the machine-facing listener; the status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.exchange(&format!(
            "GET {path} HTTP/1.1\r\nHost: nmtd\r\nConnection: close\r\n\r\n"
        ))
    }

    /// Send one HTTP/1.1 request to the machine-facing listener; the status code and body.
    fn exchange(&self, request: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.http).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let code = resp[9..12].parse().unwrap();
        let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (code, body)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop it with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
