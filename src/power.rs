//! Carrying out power actions on machines' BMCs: IPMI v2.0 over LAN through `ipmitool`
//! (the password in its environment, `-E`, never on a command line), Redfish over HTTPS
//! (`ureq`, certificates checked against the system's roots or pinned), and Wake-on-LAN
//! (a magic packet, broadcast on an interface or to a subnet).
//!
//! Machines are acted on in parallel, a bounded number at once, each within a time limit;
//! one machine's failure never stops the others. Before a boot nmt asks for (on, cycle,
//! reset), the machine's next boot is set to the network, as Ironic does: nmt decides what a
//! machine boots through its PXE entry.

use std::collections::VecDeque;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nmt_projections::{Bmc, BmcProtocol, Mac, PowerOp, PowerResult, Tls};

use crate::secrets::Secret;

mod tls;

/// How power actions run.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Machines acted on at once.
    pub parallel: usize,
    /// The time one machine's action may take.
    pub timeout: Duration,
    /// `ipmitool -C` (none: its default).
    pub ipmi_cipher_suite: Option<u8>,
}

/// One machine to act on: its BMC (or why it has none usable) and the password kept for it.
#[derive(Debug)]
pub struct Target {
    /// The machine.
    pub mac: Mac,
    /// Its BMC, its placeholders filled in, or why there is none.
    pub bmc: Result<Bmc, String>,
    /// The password kept for that BMC.
    pub secret: Option<Secret>,
}

/// Act on every target, `limits.parallel` at once; `progress(done, total)` is called as each
/// finishes. The results are in the targets' order.
pub fn run(
    op: PowerOp,
    targets: Vec<Target>,
    limits: &Limits,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<(Mac, PowerResult)> {
    let total = targets.len();
    let queue: Mutex<VecDeque<(usize, Target)>> =
        Mutex::new(targets.into_iter().enumerate().collect());
    let results: Mutex<Vec<(usize, Mac, PowerResult)>> = Mutex::new(Vec::new());
    let workers = limits.parallel.clamp(1, 256).min(total.max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                    let Some((i, t)) = next else { break };
                    let r = act(op, &t, limits);
                    let done = {
                        let mut all = results.lock().unwrap_or_else(|p| p.into_inner());
                        all.push((i, t.mac, r));
                        all.len()
                    };
                    progress(done, total);
                }
            });
        }
    });
    let mut all = results.into_inner().unwrap_or_else(|p| p.into_inner());
    all.sort_by_key(|(i, ..)| *i);
    all.into_iter().map(|(_, m, r)| (m, r)).collect()
}

fn failed(detail: impl Into<String>) -> PowerResult {
    PowerResult {
        ok: false,
        state: None,
        detail: clean(&detail.into()),
    }
}

fn done(state: Option<&str>, detail: impl Into<String>) -> PowerResult {
    PowerResult {
        ok: true,
        state: state.map(str::to_string),
        detail: clean(&detail.into()),
    }
}

/// A BMC's or a tool's words, made safe to keep and show: one line, printable, bounded.
fn clean(s: &str) -> String {
    let one: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    match one.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one,
    }
}

/// One machine's action.
pub fn act(op: PowerOp, t: &Target, limits: &Limits) -> PowerResult {
    let bmc = match &t.bmc {
        Ok(b) => b,
        Err(why) => return failed(why.clone()),
    };
    match &bmc.protocol {
        BmcProtocol::Ipmi { host, port } => {
            let Some(secret) = &t.secret else {
                return failed(
                    "no password is kept for its BMC; `nmt bmc set … --password-file F`",
                );
            };
            let ipmi = Ipmi {
                host,
                port: *port,
                user: bmc.user.as_deref().unwrap_or(""),
                secret,
                limits,
            };
            ipmi.act(op)
        }
        BmcProtocol::Redfish { url, tls } => {
            let Some(secret) = &t.secret else {
                return failed(
                    "no password is kept for its BMC; `nmt bmc set … --password-file F`",
                );
            };
            match Redfish::new(url, tls, bmc.user.as_deref().unwrap_or(""), secret, limits) {
                Ok(r) => r.act(op),
                Err(e) => failed(e),
            }
        }
        BmcProtocol::Wol {
            interface,
            broadcast,
        } => match op {
            PowerOp::On => match wake(&t.mac, interface.as_deref(), *broadcast) {
                Ok(to) => done(None, format!("magic packet sent to {to}")),
                Err(e) => failed(e),
            },
            PowerOp::Status => failed("Wake-on-LAN cannot read a power state"),
            _ => failed(format!(
                "Wake-on-LAN can only switch a machine on, not {}; give it an IPMI or Redfish \
                 BMC",
                match op {
                    PowerOp::Off => "switch it off",
                    PowerOp::Cycle => "power-cycle it",
                    _ => "reset it",
                }
            )),
        },
    }
}

struct Ipmi<'a> {
    host: &'a str,
    port: u16,
    user: &'a str,
    secret: &'a Secret,
    limits: &'a Limits,
}

impl Ipmi<'_> {
    /// Run `ipmitool … ARGS` within what is left of `deadline`: its output, or why not.
    fn run(&self, args: &[&str], deadline: Instant) -> Result<String, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out".into());
        }
        let mut cmd = Command::new("ipmitool");
        cmd.args(["-I", "lanplus", "-H", self.host, "-p"])
            .arg(self.port.to_string())
            // -v: ipmitool says why a session failed (a wrong password, an unknown user)
            // only when verbose; the rest of what it says then is left out (`reason`).
            .args(["-U", self.user, "-E", "-N", "2", "-R", "2", "-v"]);
        if let Some(c) = self.limits.ipmi_cipher_suite {
            cmd.arg("-C").arg(c.to_string());
        }
        // The password goes in the environment (readable by its owner only), never in the
        // arguments `ps` shows.
        cmd.args(args)
            .env("IPMI_PASSWORD", self.secret.expose())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "ipmitool is not installed (apt-get install ipmitool)".to_string()
            } else {
                format!("ipmitool could not start: {e}")
            }
        })?;
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let (mut o, mut e) = (String::new(), String::new());
            let _ = out.read_to_string(&mut o);
            let _ = err.read_to_string(&mut e);
            (o, e)
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "timed out after {}s (no answer from {}:{})",
                        self.limits.timeout.as_secs(),
                        self.host,
                        self.port
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("ipmitool: {e}")),
            }
        };
        let (o, e) = reader.join().unwrap_or_default();
        if status.success() {
            Ok(o)
        } else {
            Err(self.reason(&e, &o, status))
        }
    }

    /// Why ipmitool failed, from what it said: the BMC's refusal of the user or password
    /// and a missing privilege in words, else its first line that is not verbose chatter.
    fn reason(&self, stderr: &str, stdout: &str, status: std::process::ExitStatus) -> String {
        let lines: Vec<&str> = stderr
            .lines()
            .chain(stdout.lines())
            .map(|l| l.trim().trim_start_matches("> ").trim())
            .filter(|l| !l.is_empty())
            .collect();
        let has = |needles: &[&str]| {
            lines.iter().copied().find(|l| {
                let l = l.to_ascii_lowercase();
                needles.iter().any(|n| l.contains(n))
            })
        };
        if let Some(l) = has(&[
            "rakp 2 hmac is invalid",
            "rakp 4 message has invalid integrity check",
            "unauthorized name",
            "invalid user name",
        ]) {
            return format!(
                "the BMC refused the user or password (user {:?}; ipmitool: {l})",
                self.user
            );
        }
        if let Some(l) = has(&[
            "insufficient privilege",
            "requested privilege level exceeds limit",
        ]) {
            return format!(
                "the BMC user {:?} may not do this (ipmitool: {l})",
                self.user
            );
        }
        if let Some(l) = has(&[
            "get auth capabilities error",
            "no response from remote controller",
        ]) {
            return format!(
                "no answer from the BMC at {}:{} (ipmitool: {l})",
                self.host, self.port
            );
        }
        // Chatter of -v, and what ipmitool says while falling back (not why it failed).
        const CHATTER: &[&str] = &[
            "loading iana pen registry",
            "running get ",
            "discovered ipmb address",
            "invalid completion code received: invalid command",
            "unable to get channel cipher suites",
            "get hpm.x capabilities request failed",
        ];
        let said = lines
            .iter()
            .find(|l| {
                let l = l.to_ascii_lowercase();
                !CHATTER.iter().any(|c| l.contains(c))
            })
            .copied()
            .unwrap_or("");
        if said.contains("Unable to establish IPMI v2 / RMCP+ session") {
            return format!(
                "ipmitool failed ({status}): {said}: the BMC answered, but no session could be \
                 opened (its user, password or cipher suite: [power] ipmi_cipher_suite)"
            );
        }
        format!("ipmitool failed ({status}): {said}")
    }

    /// An RMCP presence ping (which every IPMI LAN BMC answers): a port nothing listens on
    /// (connection refused) or a host that cannot be reached fail at once, instead of after
    /// ipmitool's retries; no answer within a second is left to ipmitool and the deadline.
    fn ping(&self, deadline: Instant) -> Result<(), String> {
        use std::io::ErrorKind;
        use std::net::ToSocketAddrs;
        let at = format!("{}:{}", self.host, self.port);
        let addr = (self.host, self.port)
            .to_socket_addrs()
            .map_err(|e| format!("the BMC's address {} cannot be resolved: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("the BMC's address {} has no IP address", self.host))?;
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(1));
        let bind = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let Ok(sock) = UdpSocket::bind(bind) else {
            return Ok(());
        };
        if wait.is_zero() || sock.connect(addr).is_err() {
            return Ok(());
        }
        let _ = sock.set_read_timeout(Some(wait));
        // RMCP (version 6, no ack, class ASF), then ASF: IANA 4542, Presence Ping, tag 0.
        const PING: [u8; 12] = [6, 0, 0xff, 6, 0, 0, 0x11, 0xbe, 0x80, 0, 0, 0];
        let refused =
            || format!("no BMC answers at {at}: connection refused (nothing listens there)");
        let unreachable = |e: std::io::Error| format!("the BMC at {at} cannot be reached: {e}");
        if let Err(e) = sock.send(&PING) {
            return match e.kind() {
                ErrorKind::ConnectionRefused => Err(refused()),
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Err(unreachable(e)),
                _ => Ok(()),
            };
        }
        let mut buf = [0u8; 64];
        match sock.recv(&mut buf) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => Err(refused()),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable
                ) =>
            {
                Err(unreachable(e))
            }
            // A pong, something else, or nothing yet: ipmitool goes on.
            _ => Ok(()),
        }
    }

    fn state(&self, deadline: Instant) -> Result<&'static str, String> {
        let out = self.run(&["chassis", "power", "status"], deadline)?;
        if out.contains("is on") {
            Ok("on")
        } else if out.contains("is off") {
            Ok("off")
        } else {
            Err(format!("unexpected answer: {}", clean(&out)))
        }
    }

    fn act(&self, op: PowerOp) -> PowerResult {
        let deadline = Instant::now() + self.limits.timeout;
        let r = (|| -> Result<PowerResult, String> {
            self.ping(deadline)?;
            // Nothing to do: neither the power nor the next boot is touched (as Ironic does).
            if matches!(op, PowerOp::On | PowerOp::Off) {
                let now = self.state(deadline)?;
                if (op == PowerOp::On) == (now == "on") {
                    return Ok(done(Some(now), format!("already {now}")));
                }
            }
            let mut note = String::new();
            if op.boots() {
                // Next boot from the network (once), before a boot nmt asks for.
                if let Err(e) = self.run(&["chassis", "bootdev", "pxe"], deadline) {
                    note = format!("next boot not set to PXE ({e})");
                }
            }
            let state = match op {
                PowerOp::Status => return Ok(done(Some(self.state(deadline)?), "")),
                PowerOp::Off => {
                    self.run(&["chassis", "power", "off"], deadline)?;
                    "off"
                }
                PowerOp::On => {
                    self.run(&["chassis", "power", "on"], deadline)?;
                    "on"
                }
                PowerOp::Cycle | PowerOp::Reset => {
                    // A machine that is off is switched on (a cycle or reset of it fails).
                    let verb = if self.state(deadline)? == "off" {
                        "on"
                    } else if op == PowerOp::Cycle {
                        "cycle"
                    } else {
                        "reset"
                    };
                    if verb == "on" {
                        note = [note.as_str(), "it was off: switched on"]
                            .iter()
                            .filter(|s| !s.is_empty())
                            .copied()
                            .collect::<Vec<_>>()
                            .join("; ");
                    }
                    self.run(&["chassis", "power", verb], deadline)?;
                    "on"
                }
            };
            Ok(done(Some(state), note))
        })();
        r.unwrap_or_else(failed)
    }
}

struct Redfish {
    agent: ureq::Agent,
    base: String,
    system: Option<String>,
    auth: String,
    /// Its certificate is pinned (else checked against the system's roots, or not at all).
    pinned: bool,
    timeout: Duration,
    /// The end of the machine's time: its requests together take no longer than the timeout.
    deadline: Instant,
}

impl Redfish {
    fn new(
        url: &str,
        tls: &Tls,
        user: &str,
        secret: &Secret,
        limits: &Limits,
    ) -> Result<Redfish, String> {
        use ureq::tls::{Certificate, TlsConfig};
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(limits.timeout))
            .http_status_as_error(false);
        let agent = match tls {
            Tls::Verify => ureq::Agent::new_with_config(config.build()),
            Tls::Insecure => ureq::Agent::new_with_config(
                config
                    .tls_config(TlsConfig::builder().disable_verification(true).build())
                    .build(),
            ),
            Tls::Pin { pem } => {
                let mut pins = Vec::new();
                for block in pem_blocks(pem) {
                    let cert = Certificate::from_pem(block.as_bytes())
                        .map_err(|e| format!("the pinned certificate is not PEM: {e}"))?;
                    pins.push(rustls::pki_types::CertificateDer::from(cert.der().to_vec()));
                }
                if pins.is_empty() {
                    return Err("the pinned certificate is not PEM".into());
                }
                ureq::Agent::with_parts(
                    config.build(),
                    tls::connector(pins),
                    ureq::unversioned::resolver::DefaultResolver::default(),
                )
            }
        };
        use base64::Engine as _;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", secret.expose()))
        );
        let url = url.trim_end_matches('/');
        let (base, system) = match url.find("/redfish/v1/Systems/") {
            Some(i) => (url[..i].to_string(), Some(url[i..].to_string())),
            None => (url.to_string(), None),
        };
        Ok(Redfish {
            agent,
            base,
            system,
            auth,
            pinned: matches!(tls, Tls::Pin { .. }),
            timeout: limits.timeout,
            deadline: Instant::now() + limits.timeout,
        })
    }

    /// Why a request to `url` got no answer, in words.
    fn said(&self, url: &str, e: ureq::Error) -> String {
        let tls = match &e {
            ureq::Error::Rustls(r) => Some(r),
            ureq::Error::Io(io) => io.get_ref().and_then(|x| x.downcast_ref::<rustls::Error>()),
            _ => None,
        };
        if let Some(rustls::Error::InvalidCertificate(c)) = tls {
            let why = match c {
                rustls::CertificateError::UnknownIssuer => "signed by an unknown CA".to_string(),
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. } => "expired".to_string(),
                rustls::CertificateError::NotValidYet
                | rustls::CertificateError::NotValidYetContext { .. } => {
                    "not valid yet".to_string()
                }
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "made for another name or address".to_string()
                }
                rustls::CertificateError::Other(o)
                    if format!("{o:?}").contains("CaUsedAsEndEntity") =>
                {
                    "self-signed".to_string()
                }
                other => format!("{other:?}"),
            };
            return if self.pinned {
                format!(
                    "{url}: the BMC's certificate is not the pinned one, nor signed by it ({why})"
                )
            } else {
                format!(
                    "{url}: the BMC's certificate is not trusted ({why}); pin it: `nmt bmc set … \
                     --cacert FILE` (its certificate, or its CA's)"
                )
            };
        }
        match e {
            ureq::Error::Timeout(_) => {
                format!("{url}: timed out after {}s", self.timeout.as_secs())
            }
            ureq::Error::HostNotFound => format!("{url}: host not found"),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                format!("{url}: connection refused (nothing listens there)")
            }
            e => format!("{url}: {e}"),
        }
    }

    /// What is left of the machine's time, for one request to `url`.
    fn left(&self, url: &str) -> Result<Duration, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{url}: timed out after {}s",
                self.timeout.as_secs()
            ));
        }
        Ok(left)
    }

    fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        let url = format!("{}{path}", self.base);
        let left = self.left(&url)?;
        let mut r = self
            .agent
            .get(&url)
            .config()
            .timeout_global(Some(left))
            .build()
            .header("Authorization", &self.auth)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| self.said(&url, e))?;
        let status = r.status();
        if status == 401 || status == 403 {
            return Err(format!(
                "{url}: the BMC refused the user and password ({status})"
            ));
        }
        if !status.is_success() {
            return Err(format!("{url}: {status}"));
        }
        r.body_mut()
            .read_json()
            .map_err(|e| format!("{url}: not Redfish JSON: {e}"))
    }

    fn send(&self, method: &str, path: &str, body: serde_json::Value) -> Result<(), String> {
        let url = format!("{}{path}", self.base);
        let left = self.left(&url)?;
        let req = match method {
            "PATCH" => self.agent.patch(&url),
            _ => self.agent.post(&url),
        };
        let r = req
            .config()
            .timeout_global(Some(left))
            .build()
            .header("Authorization", &self.auth)
            .send_json(body)
            .map_err(|e| self.said(&url, e))?;
        let status = r.status();
        if status == 401 || status == 403 {
            return Err(format!(
                "{url}: the BMC refused the user and password ({status})"
            ));
        }
        if !status.is_success() {
            let mut r = r;
            let said = r.body_mut().read_to_string().unwrap_or_default();
            return Err(format!("{url}: {status} {}", clean(&said)));
        }
        Ok(())
    }

    /// The system's path: the one given, else the service's first.
    fn system(&self) -> Result<String, String> {
        if let Some(s) = &self.system {
            return Ok(s.clone());
        }
        let systems = self.get("/redfish/v1/Systems")?;
        systems["Members"][0]["@odata.id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "the Redfish service lists no system".to_string())
    }

    fn act(&self, op: PowerOp) -> PowerResult {
        let r = (|| -> Result<PowerResult, String> {
            let path = self.system()?;
            let sys = self.get(&path)?;
            let power = match sys["PowerState"].as_str() {
                Some("On") | Some("PoweringOn") => "on",
                Some("Off") | Some("PoweringOff") => "off",
                other => return Err(format!("unexpected PowerState {other:?}")),
            };
            if op == PowerOp::Status {
                return Ok(done(Some(power), ""));
            }
            // Nothing to do (many BMCs refuse On when on, ForceOff when off), as Ironic does:
            // neither the power nor the next boot is touched.
            match (op, power) {
                (PowerOp::On, "on") => return Ok(done(Some("on"), "already on")),
                (PowerOp::Off, "off") => return Ok(done(Some("off"), "already off")),
                _ => {}
            }
            let mut note = String::new();
            if op.boots() {
                let boot = serde_json::json!({"Boot": {
                    "BootSourceOverrideTarget": "Pxe",
                    "BootSourceOverrideEnabled": "Once"
                }});
                if let Err(e) = self.send("PATCH", &path, boot) {
                    note = format!("next boot not set to PXE ({e})");
                }
            }
            let (reset, state) = match (op, power) {
                (PowerOp::Off, _) => ("ForceOff", "off"),
                (_, "off") => ("On", "on"),
                _ => ("ForceRestart", "on"),
            };
            let target = sys["Actions"]["#ComputerSystem.Reset"]["target"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{path}/Actions/ComputerSystem.Reset"));
            self.send("POST", &target, serde_json::json!({ "ResetType": reset }))?;
            if reset == "On" && op != PowerOp::On {
                note = [note.as_str(), "it was off: switched on"]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("; ");
            }
            Ok(done(Some(state), note))
        })();
        r.unwrap_or_else(failed)
    }
}

/// The PEM blocks of a text.
fn pem_blocks(pem: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN ") {
            cur = Some(String::new());
        }
        if let Some(c) = &mut cur {
            c.push_str(line);
            c.push('\n');
        }
        if line.starts_with("-----END ") {
            out.extend(cur.take());
        }
    }
    out
}

/// The magic packet that wakes the card `mac`: 6 × 0xFF, then its MAC 16 times.
pub fn magic_packet(mac: &Mac) -> [u8; 102] {
    let mut p = [0xffu8; 102];
    for i in 0..16 {
        p[6 + i * 6..12 + i * 6].copy_from_slice(&mac.bytes());
    }
    p
}

/// Send `mac`'s magic packet: to UDP port 9 of `broadcast` (a subnet's directed broadcast),
/// or of 255.255.255.255 on `interface`. Where it went.
fn wake(mac: &Mac, interface: Option<&str>, broadcast: Option<Ipv4Addr>) -> Result<String, String> {
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("no UDP socket: {e}"))?;
    sock.set_broadcast(true)
        .map_err(|e| format!("no broadcast: {e}"))?;
    if let Some(ifname) = interface {
        let name = std::ffi::OsString::from(ifname);
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::BindToDevice, &name)
            .map_err(|e| format!("cannot send on interface {ifname}: {e}"))?;
    }
    let to = SocketAddrV4::new(broadcast.unwrap_or(Ipv4Addr::BROADCAST), 9);
    sock.send_to(&magic_packet(mac), to)
        .map_err(|e| format!("the magic packet could not be sent to {to}: {e}"))?;
    Ok(match interface {
        Some(i) => format!("{to} on {i}"),
        None => to.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_packet_is_six_ff_then_the_mac_sixteen_times() {
        let mac: Mac = "52:54:00:ab:cd:ef".parse().unwrap();
        let p = magic_packet(&mac);
        assert_eq!(&p[..6], &[0xff; 6]);
        for i in 0..16 {
            assert_eq!(
                &p[6 + 6 * i..12 + 6 * i],
                &[0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]
            );
        }
    }

    #[test]
    fn a_bmc_nobody_answers_times_out_and_the_others_go_on() {
        // A UDP port nothing answers on: ipmitool (when installed) retries, then is cut off.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let limits = Limits {
            parallel: 4,
            timeout: Duration::from_secs(2),
            ipmi_cipher_suite: None,
        };
        let mac = |n: u8| -> Mac { format!("52:54:00:00:00:{n:02x}").parse().unwrap() };
        let ipmi = Bmc {
            protocol: BmcProtocol::Ipmi {
                host: "127.0.0.1".into(),
                port,
            },
            user: Some("admin".into()),
        };
        let started = Instant::now();
        let out = run(
            PowerOp::Status,
            vec![
                Target {
                    mac: mac(1),
                    bmc: Ok(ipmi.clone()),
                    secret: Some(Secret::new("x".into())),
                },
                Target {
                    mac: mac(2),
                    bmc: Err("lab02 has no BMC; `nmt bmc set lab02 …`".into()),
                    secret: None,
                },
                Target {
                    mac: mac(3),
                    bmc: Ok(ipmi),
                    secret: None,
                },
            ],
            &limits,
            &|_, _| {},
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|(_, r)| !r.ok), "{out:?}");
        assert!(
            out[0].1.detail.contains("timed out") || out[0].1.detail.contains("ipmitool"),
            "{out:?}"
        );
        assert!(out[1].1.detail.contains("no BMC"), "{out:?}");
        assert!(out[2].1.detail.contains("no password"), "{out:?}");
    }
}
