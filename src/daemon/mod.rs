//! `nmtd`: the single writer of the event log. It owns the store, serves the `nmt` CLI on a
//! Unix socket (HTTP + JSON; the caller's identity comes from the socket's peer
//! credentials), and serves machines on TCP: installer reports and answer files.
//!
//! The engine sits behind one mutex: every change is decided, appended and rendered under
//! it, in the order requests arrive, on a blocking thread ([`Shared::write`]). After each
//! commit the new state is published ([`Shared::published`]): reads that need only the
//! state (listings, `show`, the web pages, answer files) never wait for a writer. Every
//! request goes through the application layer ([`crate::app`]). With `--web`, it also serves
//! the point-and-click web UI (`web`), whose forms run through the same path.

mod commits;
mod control;
mod demo;
mod imaging;
mod ingest;
mod journal;
mod links;
mod listen;
mod machines;
mod multicast;
mod schedules;
mod syslog;
mod throttle;
mod upkeep;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, UnixListener};

pub use crate::app::SourceStats;
pub use crate::app::{AccessConfig, Caller, CliRequest, Counters};
pub use commits::{EngineGuard, EngineLock, Published};
pub use control::control_app;
pub use machines::machine_app;
pub use web::{WebAuth, hash_password, web_app};

use crate::{Engine, OpenOptions};

/// How `nmtd` was asked to run.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// The state directory.
    pub state_dir: PathBuf,
    /// An explicit configuration file.
    pub config: Option<PathBuf>,
    /// Logs to tail (in addition to the configuration's).
    pub logs: Vec<PathBuf>,
    /// The machine-facing listener, overriding the configuration.
    pub http: Option<String>,
    /// The installers' syslog receiver (UDP), overriding the configuration.
    pub syslog: Option<String>,
    /// Simulate a small pool booting (a dnsmasq log nmtd follows).
    pub demo: bool,
    /// systemd units whose journal to follow.
    pub journal_units: Vec<String>,
    /// The web UI's listener, overriding the configuration's `[web] listen`.
    pub web: Option<String>,
}

/// What the handlers share.
pub struct Shared {
    /// The engine: the store, the state, the files (its guard announces commits).
    pub engine: EngineLock,
    /// Counters reported by `nmt status`.
    pub counters: Mutex<Counters>,
    /// Each followed log's progress, for `nmt status`.
    pub sources: Mutex<Vec<SourceStats>>,
    /// One-time web login links (`nmt web-login`), in memory only.
    pub links: links::LoginLinks,
    /// Multicast restore sessions gathering or sending.
    pub multicast: multicast::Sessions,
    /// Image saves and restores in flight (live progress, not events).
    pub progress: imaging::Progress,
}

impl Shared {
    /// The engine behind its lock, nothing counted yet; `web_url` is the web UI's address,
    /// which login links point to.
    pub(crate) fn new(engine: Engine, web_url: Option<String>) -> Shared {
        Shared {
            engine: EngineLock::new(engine),
            counters: Mutex::new(Counters::default()),
            sources: Mutex::new(Vec::new()),
            links: links::LoginLinks::new(web_url),
            multicast: multicast::Sessions::default(),
            progress: imaging::Progress::default(),
        }
    }

    /// Carry out `f` on the engine, from async code: on a blocking thread, under the
    /// engine's lock (no runtime thread waits for it). A commit `f` makes is published and
    /// announced as the lock is let go.
    pub async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Engine) -> T + Send + 'static,
    ) -> Result<T> {
        let shared = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut engine)
        })
        .await
        .map_err(|e| anyhow::anyhow!("nmtd failed while performing: {e}"))
    }

    /// The state as of the last commit and the configuration, for readers: never waits for
    /// the engine's lock.
    pub fn published(&self) -> Published {
        self.engine.published()
    }

    /// Count something.
    pub fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.counters.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The longest run of a client's input an answer quotes (a MAC, a name, a header).
pub(crate) const ECHO_MAX: usize = 80;

/// The longest refusal an answer carries.
const REFUSAL_MAX: usize = 8192;

/// `text` with every word longer than [`ECHO_MAX`] characters cut there (`…`), and the
/// whole cut at [`REFUSAL_MAX`]: refusals quote what a client sent, and must not hand a
/// megabyte of it back (into a page, a log, a JSON answer).
pub(crate) fn clip_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut run = 0usize;
    let mut cut = false;
    for (n, c) in text.chars().enumerate() {
        if n >= REFUSAL_MAX {
            out.push_str(" … (cut short)");
            break;
        }
        if c.is_whitespace() {
            run = 0;
            cut = false;
            out.push(c);
        } else if run < ECHO_MAX {
            run += 1;
            out.push(c);
        } else if !cut {
            cut = true;
            out.push('…');
        }
    }
    out
}

/// Listeners bound and ready, before serving (so a caller can print them).
pub struct Bound {
    /// Whether this start created a new, empty state (there was none).
    pub created: bool,
    /// The installer password generated for a new store, to show once.
    pub new_password: Option<String>,
    /// Why the files of a new store could not be written (its events are recorded).
    pub render_problem: Option<String>,
    /// The control socket path.
    pub socket: PathBuf,
    /// The machine-facing address.
    pub http: SocketAddr,
    unix: UnixListener,
    tcp: TcpListener,
    shared: Arc<Shared>,
    /// The logs followed.
    pub logs: Vec<PathBuf>,
    demo: Option<PathBuf>,
    /// The systemd units whose journal is followed.
    pub journal_units: Vec<String>,
    journal_dir: Option<PathBuf>,
    syslog: Option<tokio::net::UdpSocket>,
    /// The syslog receiver's address, when one listens.
    pub syslog_addr: Option<SocketAddr>,
    web: Option<(TcpListener, web::Settings)>,
    /// The web UI's address, and whether it asks for a login, when it listens.
    pub web_addr: Option<(SocketAddr, WebAuth)>,
}

/// Bind every listener, then open the store (creating it if there is none): a start that
/// cannot serve makes no store.
pub async fn bind(opts: &DaemonOptions) -> Result<Bound> {
    // Every listener first: one that cannot be bound (a port taken, a web address without
    // users) is refused before a new store is made, and before anything is listening.
    let cfg = crate::Config::load(&opts.state_dir, opts.config.as_deref())?;
    let mut web = match opts.web.clone().or(cfg.web.listen.clone()) {
        Some(addr) => Some(web::bind(&addr, &cfg.web).await?),
        None => None,
    };
    let http = opts.http.clone().unwrap_or(cfg.daemon.http.clone());
    let tcp = TcpListener::bind(&http)
        .await
        .with_context(|| format!("while binding the machine-facing listener {http}"))?;
    let http = tcp.local_addr()?;
    let syslog = match opts.syslog.clone().or(cfg.daemon.syslog.clone()) {
        Some(addr) => Some(syslog::bind(&addr).await?),
        None => None,
    };
    let syslog_addr = syslog.as_ref().and_then(|s| s.local_addr().ok());
    let socket = cfg.daemon.socket.clone();
    if socket.exists() {
        // A live daemon answers; a stale socket from a crash does not.
        if tokio::net::UnixStream::connect(&socket).await.is_ok() {
            anyhow::bail!(
                "another nmtd already serves {}; stop it first",
                socket.display()
            );
        }
        std::fs::remove_file(&socket)
            .with_context(|| format!("while removing the stale socket {}", socket.display()))?;
    } else if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating the directory {}", dir.display()))?;
    }
    let unix = UnixListener::bind(&socket)
        .with_context(|| format!("while binding the control socket {}", socket.display()))?;
    let opened = set_socket_access(
        &socket,
        &cfg.daemon.socket_mode,
        cfg.daemon.socket_group.as_deref(),
    )
    .and_then(|()| {
        Engine::open(&OpenOptions {
            state_dir: opts.state_dir.clone(),
            config: opts.config.clone(),
            wait: Duration::from_secs(2),
            create: true,
        })
        .with_context(|| format!("while opening the store in {}", opts.state_dir.display()))
    });
    let mut engine = match opened {
        Ok(e) => e,
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return Err(e);
        }
    };
    let render_problem = engine.files_problem().map(str::to_string);
    let created = engine.created();
    // Generated by this open, or generated before and not acknowledged yet: shown at every
    // start until an admin runs `nmt installer-password ack`.
    let new_password = match engine.take_new_password() {
        Some(p) => Some(p),
        None => crate::password::pending(&opts.state_dir)?,
    };
    let cfg = engine.config().clone();
    if let Some((_, settings)) = &mut web {
        settings.show_once(new_password.clone());
    }
    let web_addr = web
        .as_ref()
        .and_then(|(l, s)| Some((l.local_addr().ok()?, s.auth())));
    let mut logs = cfg.daemon.logs.clone();
    logs.extend(opts.logs.iter().cloned());
    if opts.demo {
        logs.push(demo::log_path(&opts.state_dir));
    }
    logs.dedup();
    let bound = Bound {
        created,
        new_password,
        render_problem,
        socket,
        http,
        unix,
        tcp,
        shared: Arc::new(Shared::new(
            engine,
            web_addr.as_ref().map(|(a, _)| format!("http://{a}")),
        )),
        logs,
        demo: opts.demo.then(|| opts.state_dir.clone()),
        journal_units: {
            let mut u = cfg.daemon.journal_units.clone();
            u.extend(opts.journal_units.iter().cloned());
            u.dedup();
            u
        },
        journal_dir: cfg.daemon.journal_dir.clone(),
        syslog,
        syslog_addr,
        web,
        web_addr,
    };
    // Sources start now, before anyone is told the daemon is up: a line written after that
    // is read even if its file is rotated away before the first poll.
    if let Some(dir) = &bound.demo {
        demo::start(dir).context("while starting the demo pool")?;
    }
    ingest::start(bound.shared.clone(), bound.logs.clone())?;
    upkeep::start(bound.shared.clone());
    journal::start(
        bound.shared.clone(),
        bound.journal_units.clone(),
        bound.journal_dir.clone(),
    );
    Ok(bound)
}

impl Bound {
    /// What the handlers share.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serve until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        if let Some(sock) = self.syslog {
            syslog::start(self.shared.clone(), sock);
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        schedules::start(self.shared.clone(), rx.clone());
        let web = self.web.map(|(listener, settings)| {
            let app = listen::with_timeouts(
                web_app(self.shared.clone(), settings),
                listen::Limits::tcp(),
            );
            tokio::spawn(listen::serve(
                listener,
                app,
                listen::Limits::tcp(),
                rx.clone(),
            ))
        });
        let control = axum::serve(
            self.unix,
            control_app(self.shared.clone())
                .into_make_service_with_connect_info::<control::PeerCred>(),
        )
        .with_graceful_shutdown(wait_for(rx.clone()));
        let machines = listen::serve(
            self.tcp,
            machine_app(self.shared.clone()),
            listen::Limits::tcp(),
            rx,
        );
        let socket = self.socket.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        let (a, b) = tokio::join!(control, machines);
        let _ = std::fs::remove_file(&socket);
        a.context("the control socket failed")?;
        b.context("the machine-facing listener failed")?;
        if let Some(w) = web {
            // Open live-update streams end with the process.
            if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_millis(500), w).await {
                r.context("the web UI listener failed")?;
            }
        }
        Ok(())
    }
}

/// Serve one connection from `peer` on the machine-facing HTTP service, as
/// [`Bound::serve`]'s listener serves each one it accepts (for the fuzz targets).
pub(crate) async fn serve_machine_connection<S>(shared: Arc<Shared>, stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = listen::Limits::tcp();
    let app = machine_app(shared);
    listen::serve_connection(stream, app, peer, limits).await;
}

/// Apply the configured mode and group to the control socket.
fn set_socket_access(socket: &std::path::Path, mode: &str, group: Option<&str>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bits = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .with_context(|| {
            format!("daemon.socket_mode {mode:?} is not an octal mode such as \"0660\"")
        })?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(bits))
        .with_context(|| format!("while setting the mode of {}", socket.display()))?;
    if let Some(g) = group {
        let gid = nix::unistd::Group::from_name(g)
            .ok()
            .flatten()
            .with_context(|| format!("daemon.socket_group {g:?} is not a group on this system"))?
            .gid;
        nix::unistd::chown(socket, None, Some(gid))
            .with_context(|| format!("while giving {} to group {g}", socket.display()))?;
    }
    Ok(())
}

async fn wait_for(mut rx: tokio::sync::watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod clip_tests {
    #[test]
    fn refusals_quote_at_most_80_characters_of_a_word_and_8_kib_in_all() {
        assert_eq!(super::clip_words("a short refusal"), "a short refusal");
        let long = format!("no {:?} here", "x".repeat(5000));
        let cut = super::clip_words(&long);
        assert!(
            cut.starts_with(&format!("no \"{}…", "x".repeat(79))),
            "{cut}"
        );
        assert!(cut.ends_with(" here"), "{cut}");
        let many = "ab ".repeat(10_000);
        assert!(super::clip_words(&many).len() < 8300);
    }
}
