//! Deployment configuration: where generated files go and what boot loaders and servers the
//! DHCP and boot files name.
//!
//! Configuration is not part of the event log: it says where a deployment puts things, not
//! what happened. By default every path lies under the state directory, so a first run writes
//! nothing outside it. `nmt.toml` in the state directory (or `--config FILE`) overrides.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nmt_projections::render::{RenderConfig, Target};
use serde::{Deserialize, Serialize};

/// The name of the configuration file looked for in the state directory.
pub const CONFIG_FILE: &str = "nmt.toml";

/// Where each generated file goes. Relative paths are taken under the state directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    /// The TFTP root: pxelinux.cfg/, grub/, ipxe/ are written under it.
    pub tftp_root: PathBuf,
    /// The ISC dhcpd include file of host blocks.
    pub dhcpd_include: PathBuf,
    /// The dnsmasq dhcp-hostsfile.
    pub dnsmasq_hosts: PathBuf,
    /// Kea's DHCPv4 host reservations (JSON: the value of a `"reservations"` list that
    /// kea-dhcp4.conf includes with `<?include "…"?>`).
    pub kea_reservations: PathBuf,
    /// The /etc/hosts fragment.
    pub etc_hosts: PathBuf,
    /// The directory of per-group node lists (for pdsh -w ^FILE and dsh -g).
    pub node_lists: PathBuf,
    /// The directory of saved disk images (`NAME@VERSION/`, see docs/imaging.md).
    pub images: PathBuf,
    /// The secrets file (BMC passwords; mode 0600, never in the log or an export).
    pub secrets: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            tftp_root: "tftp".into(),
            dhcpd_include: "dhcp/dhcpd-nmt.conf".into(),
            dnsmasq_hosts: "dhcp/dnsmasq-nmt.hosts".into(),
            kea_reservations: "dhcp/kea-nmt.json".into(),
            etc_hosts: "hosts/nmt.hosts".into(),
            node_lists: "nodes".into(),
            images: "images".into(),
            secrets: "secrets.toml".into(),
        }
    }
}

/// The `[access]` section of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Users (`alice`) and Unix groups (`@wheel`) who may do everything.
    pub admins: Vec<String>,
    /// Per nmt group: users and `@unixgroup`s who may set that group's policy.
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
}

/// The `[daemon]` section: where `nmtd` listens and what it tails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// The control socket the `nmt` CLI talks to (relative: under the state directory).
    pub socket: PathBuf,
    /// The socket's permissions, octal: who may connect at all ([access] then decides what
    /// each caller may do). `0660` lets the socket's group in.
    pub socket_mode: String,
    /// The socket's group (e.g. `nmt`), so its members can reach nmtd.
    pub socket_group: Option<String>,
    /// The machine-facing HTTP listener (installer reports, answer files), `ADDR:PORT`.
    pub http: String,
    /// DHCP/TFTP logs to tail, in addition to `--log`.
    pub logs: Vec<PathBuf>,
    /// The UDP syslog receiver installers log to (Roger's hung installs), `ADDR:PORT`;
    /// `render.log_host`/`render.log_port` tell installers where that is.
    pub syslog: Option<String>,
    /// systemd units whose journal to follow (ISC dhcpd on systems without a syslog file),
    /// e.g. `isc-dhcp-server.service`.
    pub journal_units: Vec<String>,
    /// Read journals from this directory instead of the system journal (a remote or copied
    /// journal, `journalctl --directory`).
    pub journal_dir: Option<PathBuf>,
    /// At most this many never-seen machines are recorded per minute of log (0: no limit):
    /// spoofed DHCP traffic from random MACs must not grow the store and the TFTP root
    /// without bound. Machines over the limit are counted (`nmt status`), and recorded when
    /// they ask again after the flood.
    pub new_machines_per_minute: u32,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            socket: "nmtd.sock".into(),
            socket_mode: "0660".into(),
            socket_group: None,
            http: "127.0.0.1:8017".into(),
            logs: Vec::new(),
            syslog: None,
            journal_units: Vec::new(),
            journal_dir: None,
            new_machines_per_minute: 600,
        }
    }
}

/// The `[hooks]` section: how to check and reload the DHCP server after nmt changed its
/// file. Each is a shell command; a check that fails keeps the previous file in place.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hooks {
    /// Checks the dhcpd configuration with the new include, e.g.
    /// `dhcpd -t -4 -cf /etc/dhcp/dhcpd.conf`.
    pub dhcpd_check: Option<String>,
    /// Makes dhcpd read it, e.g. `systemctl restart isc-dhcp-server`.
    pub dhcpd_reload: Option<String>,
    /// Checks dnsmasq's configuration, e.g. `dnsmasq --test`.
    pub dnsmasq_check: Option<String>,
    /// Makes dnsmasq reread its hosts file, e.g. `systemctl reload dnsmasq` (SIGHUP).
    pub dnsmasq_reload: Option<String>,
    /// Checks Kea's whole configuration with the new reservations, e.g.
    /// `kea-dhcp4 -t /etc/kea/kea-dhcp4.conf`.
    pub kea_check: Option<String>,
    /// Kea's control socket (kea-dhcp4.conf's `control-socket`, e.g.
    /// `/run/kea/kea4-ctrl-socket`): nmt sends `config-reload` through it and reads Kea's
    /// answer. A SIGHUP or `systemctl reload` reports success even when Kea rejects the file,
    /// so nmt does not use them; on a rejection it puts the previous file back.
    pub kea_socket: Option<PathBuf>,
}

/// The `[web]` section: the point-and-click web UI `nmtd` serves (off unless `listen` or
/// `nmtd --web` gives an address).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// `ADDR:PORT`, e.g. `127.0.0.1:8018`. On a loopback address pages are read-only until
    /// a user logs in with `nmt web-login`; on any other address every page asks for a login.
    pub listen: Option<String>,
    /// Host names the web UI answers to besides its own address (e.g. `nmt.example.org`
    /// behind a name); a request for any other `Host` is refused (no DNS rebinding). A
    /// loopback listener also answers to `localhost`.
    pub hosts: Vec<String>,
    /// Who may log in: user name → argon2 hash in PHC form (`nmtd --hash-password` makes
    /// one). `[access]` rules match these names as they match Unix users.
    pub users: std::collections::BTreeMap<String, String>,
    /// No longer used (it once made everyone who reached a loopback listener act as this
    /// user); kept so that old files still load. Users log in with `nmt web-login`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_user: Option<String>,
}

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Output paths.
    pub paths: Paths,
    /// What the generated files name (boot loaders, servers, console).
    pub render: RenderConfig,
    /// The daemon's listeners and log sources.
    pub daemon: DaemonConfig,
    /// Who may change what through the daemon.
    pub access: AccessConfig,
    /// DHCP server check and reload commands.
    pub hooks: Hooks,
    /// The web UI.
    pub web: WebConfig,
    /// Disk images: multicast restores.
    pub images: ImagesConfig,
    /// Power control.
    pub power: PowerConfig,
}

/// The `[power]` section: how power actions run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowerConfig {
    /// How many machines are acted on at once.
    pub parallel: usize,
    /// Seconds one machine's action may take before it is reported as timed out.
    pub timeout: u64,
    /// The IPMI cipher suite `ipmitool -C` uses (none: ipmitool's default, 17 in 1.8.19;
    /// older BMCs need 3).
    pub ipmi_cipher_suite: Option<u8>,
}

impl Default for PowerConfig {
    fn default() -> Self {
        PowerConfig {
            parallel: 16,
            timeout: 30,
            ipmi_cipher_suite: None,
        }
    }
}

/// The `[images]` section: restoring one image onto several machines at once through a
/// udpcast multicast session (docs/imaging.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// The provisioning interface `udp-sender` sends on; unset, every restore is unicast.
    pub multicast_interface: Option<String>,
    /// The multicast rendezvous address.
    pub multicast_address: String,
    /// The first UDP port of sessions (each takes two).
    pub multicast_portbase: u16,
    /// Seconds a session waits for the machines expected to join before it starts.
    pub multicast_wait: u64,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            multicast_interface: None,
            multicast_address: "239.255.71.1".into(),
            multicast_portbase: 9000,
            multicast_wait: 30,
        }
    }
}

/// The configuration in force, with paths made absolute.
#[derive(Clone, Debug)]
pub struct Config {
    /// The state directory.
    pub state_dir: PathBuf,
    /// Where the configuration came from (`None`: embedded defaults).
    pub source: Option<PathBuf>,
    /// Output paths, absolute.
    pub paths: Paths,
    /// Renderer settings.
    pub render: RenderConfig,
    /// Daemon settings, socket path made absolute.
    pub daemon: DaemonConfig,
    /// Access rules.
    pub access: AccessConfig,
    /// DHCP server check and reload commands.
    pub hooks: Hooks,
    /// The web UI.
    pub web: WebConfig,
    /// Disk images.
    pub images: ImagesConfig,
    /// Power control.
    pub power: PowerConfig,
}

impl Config {
    /// Load: `explicit` if given (it must exist), else `STATE/nmt.toml` if present, else the
    /// embedded defaults.
    pub fn load(state_dir: &Path, explicit: Option<&Path>) -> Result<Config> {
        let candidate = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let p = state_dir.join(CONFIG_FILE);
                p.exists().then_some(p)
            }
        };
        let (file, source) = match candidate {
            Some(p) => {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("while reading the configuration {}", p.display()))?;
                let cfg: FileConfig = toml::from_str(&text)
                    .map_err(|e| {
                        let msg = e.to_string();
                        match did_you_mean(&msg) {
                            Some(hint) => anyhow::anyhow!("{msg}{hint}"),
                            None => anyhow::anyhow!("{msg}"),
                        }
                    })
                    .with_context(|| {
                        format!(
                            "while reading the configuration {} (see `nmt config --default` for every key)",
                            p.display()
                        )
                    })?;
                (cfg, Some(p))
            }
            None => (FileConfig::default(), None),
        };
        Ok(Config::from_file(state_dir, file, source))
    }

    /// Make a configuration from parsed file contents.
    pub fn from_file(state_dir: &Path, file: FileConfig, source: Option<PathBuf>) -> Config {
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                state_dir.join(p)
            }
        };
        let paths = Paths {
            tftp_root: abs(&file.paths.tftp_root),
            dhcpd_include: abs(&file.paths.dhcpd_include),
            dnsmasq_hosts: abs(&file.paths.dnsmasq_hosts),
            kea_reservations: abs(&file.paths.kea_reservations),
            etc_hosts: abs(&file.paths.etc_hosts),
            node_lists: abs(&file.paths.node_lists),
            images: abs(&file.paths.images),
            secrets: abs(&file.paths.secrets),
        };
        let daemon = DaemonConfig {
            socket: abs(&file.daemon.socket),
            ..file.daemon
        };
        Config {
            state_dir: state_dir.to_path_buf(),
            source,
            paths,
            render: file.render,
            daemon,
            access: file.access,
            hooks: file.hooks,
            web: file.web,
            images: file.images,
            power: file.power,
        }
    }

    /// The real path of a generated file.
    pub fn path_of(&self, target: &Target) -> PathBuf {
        match target {
            Target::Tftp(rel) => self.paths.tftp_root.join(rel),
            Target::DhcpdInclude => self.paths.dhcpd_include.clone(),
            Target::DnsmasqHosts => self.paths.dnsmasq_hosts.clone(),
            Target::KeaReservations => self.paths.kea_reservations.clone(),
            Target::EtcHosts => self.paths.etc_hosts.clone(),
            Target::NodeList(group) => self.paths.node_lists.join(group),
        }
    }

    /// Where an output directory of the renderers is.
    pub fn dir_of(&self, dir: &nmt_projections::render::OutputDir) -> PathBuf {
        match dir {
            nmt_projections::render::OutputDir::Tftp(rel) => self.paths.tftp_root.join(rel),
            nmt_projections::render::OutputDir::NodeLists => self.paths.node_lists.clone(),
        }
    }

    /// The embedded defaults as a commented TOML file, for `nmt config --default`: every key,
    /// those without a default commented out with an example value.
    pub fn default_toml() -> String {
        let pretty = toml::to_string_pretty(&FileConfig::default()).expect("defaults serialize");
        let body = with_examples(&pretty);
        format!(
            "# nmt configuration: put it in STATE/{CONFIG_FILE} or pass --config FILE.\n\
             # Relative paths are taken under the state directory. A production site points\n\
             # them at its real files, e.g. tftp_root = \"/srv/tftp\" and\n\
             # dhcpd_include = \"/etc/dhcp/nmt-hosts.conf\" (include it from dhcpd.conf).\n\
             # render.next_server is the TFTP server's IPv4 address; render.http_url is\n\
             # nmtd's machine-facing URL that installers report to.\n\n{body}"
        )
    }
}

/// The keys that have no default, by section, as commented-out examples.
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "render",
        &[
            "next_server = \"10.0.0.1\"                 # the TFTP server handed to clients (default: dhcpd.conf's own)",
            "serial_console = \"ttyS0,115200\"          # console= on every kernel line, SERIAL in pxelinux",
            "log_host = \"10.0.0.1\"                    # installers send syslog here (d-i log_host=, inst.syslog=)",
        ],
    ),
    (
        "daemon",
        &[
            "socket_group = \"nmt\"                     # the control socket's group",
            "syslog = \"10.0.0.1:5514\"                 # the UDP syslog receiver for installers",
            "journal_dir = \"/var/log/journal/remote\"  # read journals from here, not the system journal",
        ],
    ),
    (
        "access.groups",
        &["physics = [\"reinhard\"]                   # may only switch group physics' policy"],
    ),
    (
        "hooks",
        &[
            "dhcpd_check = \"dhcpd -t -4 -cf /etc/dhcp/dhcpd.conf\"",
            "dhcpd_reload = \"sudo systemctl restart isc-dhcp-server\"",
            "dnsmasq_check = \"dnsmasq --test\"",
            "dnsmasq_reload = \"sudo systemctl reload dnsmasq\"",
            "kea_check = \"kea-dhcp4 -t /etc/kea/kea-dhcp4.conf\"",
            "kea_socket = \"/run/kea/kea4-ctrl-socket\"       # nmt asks Kea to config-reload through it",
        ],
    ),
    (
        "web",
        &[
            "listen = \"127.0.0.1:8018\"                # the web UI (off by default)",
            "hosts = [\"nmt.example.org\"]              # names it answers to (besides its address)",
        ],
    ),
    (
        "images",
        &[
            "multicast_interface = \"br0\"             # restore several machines at once by udpcast",
        ],
    ),
    (
        "power",
        &["ipmi_cipher_suite = 3                    # for BMCs that lack suite 17"],
    ),
    (
        "web.users",
        &["alice = \"$argon2id$v=19$...\"            # from `nmtd --hash-password`"],
    ),
];

/// `pretty` (a TOML file of sections) with each section's [`EXAMPLES`] appended to it,
/// commented out; a section `pretty` lacks is added.
fn with_examples(pretty: &str) -> String {
    let mut out = String::new();
    let mut section: Option<String> = None;
    let mut seen = Vec::new();
    let flush = |section: &Option<String>, out: &mut String| {
        if let Some(s) = section
            && let Some((_, ex)) = EXAMPLES.iter().find(|(name, _)| name == s)
        {
            while out.ends_with("\n\n") {
                out.pop();
            }
            for line in *ex {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
            out.push('\n');
        }
    };
    for line in pretty.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            flush(&section, &mut out);
            section = Some(name.to_string());
            seen.push(name.to_string());
        }
        out.push_str(line);
        out.push('\n');
    }
    flush(&section, &mut out);
    for (name, _) in EXAMPLES {
        if !seen.iter().any(|s| s == name) {
            out.push_str(&format!("[{name}]\n"));
            flush(&Some(name.to_string()), &mut out);
        }
    }
    out
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": " (did you mean `a`?)", the
/// known key nearest to the typo by edit distance.
fn did_you_mean(msg: &str) -> Option<String> {
    let rest = &msg[msg.find("unknown field `")? + "unknown field `".len()..];
    let typo = &rest[..rest.find('`')?];
    let expected = &rest[rest.find("expected")?..];
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let best = known
        .iter()
        .min_by_key(|k| edit_distance(&typo.to_lowercase(), k))?;
    if edit_distance(&typo.to_lowercase(), best) > (best.len() / 2).max(2) {
        return None;
    }
    Some(format!("; did you mean `{best}`?"))
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_10_a_typo_names_the_nearest_key() {
        let hint = did_you_mean(
            "unknown field `next_sever`, expected one of `next_server`, `http_url`, `log_port`",
        );
        assert_eq!(hint.as_deref(), Some("; did you mean `next_server`?"));
        assert_eq!(
            did_you_mean("unknown field `zzzzzzzzzz`, expected `a`"),
            None
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn item_10_the_default_file_parses_back() {
        let text = Config::default_toml();
        let back: FileConfig = toml::from_str(&text).expect("the default file parses");
        assert_eq!(back, FileConfig::default());
    }
}
