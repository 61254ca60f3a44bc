//! `nmtd`: the daemon. See `nmtd --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nmt::daemon::{DaemonOptions, WebAuth, bind};

/// mimalloc: nmtd publishes a new state after every commit from several threads, and glibc's
/// per-thread arenas kept the freed states' memory (about twice the resident size at 10,000
/// machines); mimalloc gives it back.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LONG_ABOUT: &str = "\
nmtd owns nmt's event log. It serves the `nmt` command line on a Unix socket \
(STATE/nmtd.sock; callers are identified by their Unix user), discovers machines from the \
DHCP/TFTP logs given with --log (ISC dhcpd, dnsmasq, Kea, tftpd-hpa; plain, syslog or \
rsyslog files, followed through rotation), takes installers' reports of their root device \
and serves their answer files over HTTP, and keeps what installers send to --syslog as \
each machine's install log.

Run it as a non-root user that can read the logs and write the state directory, the TFTP \
root and the DHCP include named in STATE/nmt.toml (see `nmt config --default` and \
packaging/nmtd.service).";

const EXAMPLES: &str = "\
Examples:
  nmtd                                    # state in ./nmt-state, listeners printed
  nmtd --demo                             # plus six simulated machines booting
  nmtd --demo --web 127.0.0.1:8018        # and the web UI: open http://127.0.0.1:8018
  echo 'secret' | nmtd --hash-password    # a hash for [web.users] in nmt.toml
  nmtd --state /var/lib/nmt --log /var/log/syslog --http 10.0.0.1:8017 --syslog 10.0.0.1:5514

With ISC dhcpd: include nmt's host file from dhcpd.conf (`include \"/etc/dhcp/nmt-hosts.conf\";`)
and follow the log dhcpd writes to (syslog, or a local7 file). With dnsmasq: add
`dhcp-hostsfile=` nmt's hosts file and `log-dhcp`, and follow its log-facility file.";

/// The `nmtd` command line.
#[derive(Parser, Debug)]
#[command(name = "nmtd", version, about = "The nmt daemon: event log owner, CLI socket, log discovery, installer reports", long_about = LONG_ABOUT, after_help = EXAMPLES)]
struct Args {
    /// The state directory.
    #[arg(
        long,
        env = "NMT_STATE",
        default_value = "nmt-state",
        value_name = "DIR"
    )]
    state: PathBuf,
    /// A DHCP or TFTP log to follow (repeat for several).
    #[arg(long = "log", value_name = "PATH")]
    logs: Vec<PathBuf>,
    /// Follow the systemd journal of a unit, e.g. isc-dhcp-server.service (repeat for
    /// several); its cursor is the checkpoint.
    #[arg(long = "journal", value_name = "UNIT")]
    journal_units: Vec<String>,
    /// The machine-facing HTTP listener (installer reports and answer files).
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<String>,
    /// Receive installers' syslog on this UDP address (they are told `render.log_host` and
    /// `render.log_port` from nmt.toml).
    #[arg(long, value_name = "ADDR:PORT")]
    syslog: Option<String>,
    /// A configuration file (default: STATE/nmt.toml when present).
    #[arg(long, env = "NMT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve the web UI on this address, e.g. 127.0.0.1:8018 (overrides `[web] listen`). On
    /// loopback nobody logs in; on any other address users log in (`[web.users]` in
    /// nmt.toml, hashes from --hash-password).
    #[arg(long, value_name = "ADDR:PORT")]
    web: Option<String>,
    /// Read a password on standard input, print its argon2 hash for `[web.users]` in
    /// nmt.toml, and exit.
    #[arg(long)]
    hash_password: bool,
    /// Simulate a small pool of six machines booting (a dnsmasq log under STATE/demo/ that
    /// nmtd follows like a real one): watch them appear with `nmt machines`.
    #[arg(long)]
    demo: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.hash_password {
        return hash_password_from_stdin();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NMTD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    raise_file_limit();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nmtd: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    let opts = DaemonOptions {
        state_dir: args.state,
        config: args.config,
        logs: args.logs,
        http: args.http,
        syslog: args.syslog,
        demo: args.demo,
        journal_units: args.journal_units,
        web: args.web,
    };
    match rt.block_on(async move {
        let bound = bind(&opts).await?;
        if let Some(p) = &bound.render_problem {
            eprintln!(
                "nmtd: warning: the generated files are not up to date: {p}; fix the cause and \
                 run `nmt render`"
            );
        }
        let state = std::path::absolute(&opts.state_dir).unwrap_or(opts.state_dir.clone());
        if bound.created {
            eprintln!(
                "nmtd: there was no nmt state in {0}: started a new, empty one (events in \
                 {0}/nmt.redb)",
                state.display()
            );
        }
        println!("nmtd: state in {}", state.display());
        let socket = std::path::absolute(&bound.socket).unwrap_or(bound.socket.clone());
        println!(
            "nmtd: control socket {} (`nmt --state {}` finds it)",
            socket.display(),
            state.display()
        );
        println!("nmtd: machine-facing HTTP on http://{}", bound.http);
        if let Some((addr, auth)) = &bound.web_addr {
            match auth {
                WebAuth::Local => println!(
                    "nmtd: web UI on http://{addr} (loopback: read-only until you log in with \
                     `nmt web-login`)"
                ),
                WebAuth::Login => println!("nmtd: web UI on http://{addr} (login required)"),
            }
        }
        if opts.demo {
            println!(
                "nmtd: demo: six simulated machines boot in turn, every 3 s; try `nmt --state {} machines`",
                state.display()
            );
        }
        if let Some(a) = bound.syslog_addr {
            println!("nmtd: installer syslog on udp://{a}");
        }
        for unit in &bound.journal_units {
            println!("nmtd: following the journal of {unit}");
        }
        for log in &bound.logs {
            println!("nmtd: following {}", log.display());
        }
        if let Some(p) = &bound.new_password {
            println!(
                "nmtd: the installer password of installed machines and installer consoles is {p}"
            );
            println!(
                "nmtd: write it down, then run `nmt installer-password ack`: until then it is kept \
                 in {} (mode 0600) and shown at every start (the event log keeps only its hash)",
                state.join(nmt::password::PENDING_FILE).display()
            );
        }
        bound
            .serve(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("a SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            })
            .await
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nmtd: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `nmtd --hash-password`: one line from standard input, its argon2 hash on standard output.
fn hash_password_from_stdin() -> ExitCode {
    let mut line = String::new();
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("nmtd: type the password, then Enter (it is echoed)");
    }
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("nmtd: cannot read the password from standard input: {e}");
        return ExitCode::from(1);
    }
    let password = line.trim_end_matches(['\n', '\r']);
    match nmt::daemon::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nmtd: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Allow as many open files as the hard limit does (the soft limit is often 1024, or lower
/// under a service manager): clients, logs, the store and rendering all need descriptors.
fn raise_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("cannot raise the open-file limit from {soft} to {hard}: {e}");
    }
}
