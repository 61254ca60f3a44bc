//! The installer answer files: a Debian/Ubuntu preseed, a kickstart or an Ubuntu autoinstall
//! user-data, whichever the install profile of a machine's effective policy names.
//!
//! Each is a pure function of the state, the [`RenderConfig`] and an [`AnswerContext`]: it
//! installs unattended onto the first disk, names the machine, and at the end of the install
//! POSTs the installed root device (`rootdev=/dev/sda1`, form-encoded) to the machine's report
//! URL, `<http_url>/v1/report/<mac-dashed>/<token>`, which is how nmtd learns the device to
//! boot and moves the machine to local boot.
//!
//! Everything that reaches a file is either a fixed word, a value checked here (host name,
//! crypted password, log host), or quoted for the place it lands in (shell, YAML).

use crate::{AnswerKind, Mac, Machine, Policy, PreseedOptions, Profile, ProfileKind, State};

use super::{MARKER, RenderConfig, clean, clean_word, machine_values, server_url};

mod autoinstall;
mod kickstart;
mod preseed;
#[cfg(test)]
mod tests;

/// What the answer file needs beyond the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnswerContext<'a> {
    /// The crypted (SHA-512 crypt, `$6$…`) password for the installed system's admin user and
    /// for the network console; `None`: the answer file leaves the password to be asked (and
    /// says so in a comment). A value that is not a crypt(3) string (`$id$salt$hash`, letters,
    /// digits, `.`, `/`, `$`, `=`) is treated as `None`, and the file says so.
    pub password_crypted: Option<&'a str>,
    /// Where the installer sends its syslog (nmtd's syslog receiver), e.g. `10.0.0.1`; `None`:
    /// no remote logging. A value that is not a host name or address is left out, and the file
    /// says so.
    pub log_host: Option<&'a str>,
    /// The syslog port on `log_host` (UDP), usually 514; 0 means 514.
    pub log_port: u16,
}

/// One rendered answer file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Its format.
    pub kind: AnswerKind,
    /// The HTTP `Content-Type` to serve it with.
    pub content_type: &'static str,
    /// Its whole text.
    pub body: String,
}

/// The answer file for a machine: from the install profile of the policy its boot entry
/// serves ([`State::served_policy`]), or of the install it last booted while that install
/// has not reported (a spent one-shot); the profile's [`answer`](crate::Profile::answer)
/// kind.
/// `None` when the machine is unknown, or its effective policy is not an install policy whose
/// profile exists, is an install profile and has an answer kind.
pub fn answer_for(
    state: &State,
    mac: &Mac,
    cfg: &RenderConfig,
    ctx: &AnswerContext,
) -> Option<Answer> {
    let m = state.machine(mac)?;
    // What its boot entry serves; else the install it last booted, while that install has
    // not reported: a one-shot is spent when its entry is fetched, and the installer's own
    // DHCP ends that boot before the installer asks for its answer file.
    let (served, _) = state.served_policy(m);
    let policy = match (&served, &m.last_boot) {
        (Policy::Install { .. }, _) => served.clone(),
        (_, Some(b))
            if matches!(b.policy, Policy::Install { .. })
                && m.installed.as_ref().is_none_or(|i| i.at < b.at) =>
        {
            b.policy.clone()
        }
        _ => return None,
    };
    let Policy::Install { profile } = &policy else {
        return None;
    };
    let profile = state.profile(profile)?;
    if profile.kind != ProfileKind::Install {
        return None;
    }
    let kind = profile.answer?;
    let facts = Facts::new(state, m, cfg, ctx, profile);
    let (content_type, body) = match kind {
        AnswerKind::Preseed => ("text/plain; charset=utf-8", preseed::render(&facts)),
        AnswerKind::Kickstart => ("text/plain; charset=utf-8", kickstart::render(&facts)),
        AnswerKind::Autoinstall => (
            "text/cloud-config; charset=utf-8",
            autoinstall::render(&facts),
        ),
    };
    Some(Answer {
        kind,
        content_type,
        body,
    })
}

/// The admin user every answer file creates (with sudo rights).
const ADMIN_USER: &str = "nmt";
/// Its full name.
const ADMIN_REALNAME: &str = "nmt admin";

/// The checked, cleaned values the renderers draw from.
struct Facts {
    mac: Mac,
    /// The machine's name as shown in comments (`no name` when it has none).
    shown_name: String,
    /// The full host name: the machine's name, or `nmt-<mac-bare>`.
    fqdn: String,
    /// Its first label.
    host: String,
    /// The rest after the first label (empty when the name has no dot).
    domain: String,
    /// The profile's name, one clean word.
    profile: String,
    /// Where the installer reports the root device.
    report_url: String,
    /// The machine's report token (hex; already in the report URL).
    token: String,
    /// The crypted password, when it is a crypt(3) string.
    password: Option<String>,
    /// A password was given but refused.
    password_refused: bool,
    /// The syslog host (checked) and port.
    log: Option<(String, u16)>,
    /// A log host was given but refused.
    log_refused: bool,
    /// Enable the installer's network console.
    network_console: bool,
    /// The profile's preseed settings (checked when it was defined).
    preseed: PreseedOptions,
    /// The serial console the site boots with, one safe word.
    serial: Option<String>,
}

impl Facts {
    fn new(
        state: &State,
        m: &Machine,
        cfg: &RenderConfig,
        ctx: &AnswerContext,
        profile: &Profile,
    ) -> Facts {
        let [_, _, token, _, report_url] = machine_values(state, m, &server_url(cfg));
        // Names are validated before they reach the state; one that is not a valid host
        // name (a corrupt journal) is not used.
        let fqdn = m
            .name
            .as_deref()
            .and_then(|n| crate::machine_name(n).ok())
            .unwrap_or_else(|| format!("nmt-{}", m.mac.bare()));
        let (host, domain) = match fqdn.split_once('.') {
            Some((h, d)) => (h.to_string(), d.to_string()),
            None => (fqdn.clone(), String::new()),
        };
        let password = ctx
            .password_crypted
            .filter(|p| crypt_ok(p))
            .map(crypt3_salt);
        let log_host = ctx.log_host.map(str::trim).filter(|h| !h.is_empty());
        let log = log_host.filter(|h| host_ok(h));
        Facts {
            mac: m.mac,
            shown_name: m
                .name
                .as_deref()
                .map(clean_word)
                .unwrap_or_else(|| "no name".into()),
            fqdn,
            host,
            domain,
            profile: clean_word(&profile.name),
            report_url: clean_word(&report_url),
            token: clean_word(&token),
            password_refused: ctx.password_crypted.is_some() && password.is_none(),
            password,
            log: log.map(|h| {
                (
                    h.to_string(),
                    if ctx.log_port == 0 { 514 } else { ctx.log_port },
                )
            }),
            log_refused: log_host.is_some() && log.is_none(),
            network_console: profile.network_console,
            preseed: profile.preseed.as_deref().cloned().unwrap_or_default(),
            serial: super::serial(cfg),
        }
    }

    /// The comment lines (without their comment sign) that open every answer file.
    fn header(&self, kind: AnswerKind) -> Vec<String> {
        let mut lines = vec![
            format!(
                "{MARKER} for machine {} ({}): do not edit, use `nmt policy`",
                self.mac, self.shown_name
            ),
            format!(
                "the {} answer file of install profile {}, host name {}",
                kind.as_str(),
                self.profile,
                self.fqdn
            ),
            format!(
                "at the end of the install it reports the installed root device to {}",
                self.report_url
            ),
        ];
        if self.password.is_none() {
            lines.push(if self.password_refused {
                "the configured password is not a crypt(3) string such as $6$salt$hash, so it \
                 is left out: the installer asks for the password"
                    .to_string()
            } else {
                "no password is configured: the installer asks for the password".to_string()
            });
        }
        if self.log_refused {
            lines.push(
                "the configured log host is not a host name or address, so remote logging is \
                 left out"
                    .to_string(),
            );
        }
        lines
    }
}

/// Comment lines, `# ` each, newline-terminated, [`clean`]ed, and never ending in `\\`
/// (which would continue the line for `debconf-set-selections`).
fn comment_lines(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("# {}\n", clean(l).trim_end_matches(['\\', ' '])))
        .collect()
}

/// A SHA-crypt string (`$5$`, `$6$`) as crypt(3) writes it: its salt cut to the 16
/// characters SHA-crypt uses. Stores made before nmt wrote it so hold 22-character salts, which
/// crypt(3) would hash the same but write back shorter, so that no login ever matched.
fn crypt3_salt(h: &str) -> String {
    let parts: Vec<&str> = h.split('$').collect();
    match parts.as_slice() {
        ["", id @ ("5" | "6"), rest @ ..] if rest.len() >= 2 => {
            let n = rest.len();
            let salt = rest[n - 2];
            let salt = &salt[..salt.len().min(16)];
            let mut out = format!("${id}$");
            for r in &rest[..n - 2] {
                out.push_str(r);
                out.push('$');
            }
            out.push_str(salt);
            out.push('$');
            out.push_str(rest[n - 1]);
            out
        }
        _ => h.to_string(),
    }
}

/// A crypt(3) string: `$id$…`, nothing but letters, digits, `.`, `/`, `$` and `=`, so it can
/// stand unquoted in a kickstart line, a debconf value and a shell word in single quotes.
fn crypt_ok(s: &str) -> bool {
    s.len() >= 4
        && s.len() <= 512
        && s.starts_with('$')
        && s[1..].contains('$')
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/' | b'$' | b'='))
}

/// A host name, an IPv4 address or an IPv6 address (letters, digits, `.`, `-`, `:`), not
/// starting with `-`.
fn host_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with('-')
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':'))
}

/// `s` as one single-quoted POSIX shell word, control characters replaced.
fn sh_quote(s: &str) -> String {
    format!("'{}'", clean(s).replace('\'', r"'\''"))
}

/// A shell snippet (one line, `;`-separated) that finds the device mounted at `mountpoint`
/// and leaves it in `$dev`: from `findmnt` (without a btrfs `[/subvolume]` suffix) or else
/// `/proc/mounts`, symlinks resolved; `fallback` (a command printing the device) when both
/// find nothing.
fn find_root_device(mountpoint: &str, fallback: Option<&str>) -> String {
    let mp = sh_quote(mountpoint);
    let mut s = format!(
        "dev=$(findmnt -n -o SOURCE {mp} 2>/dev/null | sed 's/\\[.*//' | head -n 1); \
         [ -n \"$dev\" ] || dev=$(awk -v mp={mp} '$2 == mp {{ d = $1 }} END {{ print d }}' \
         /proc/mounts); "
    );
    if let Some(f) = fallback {
        s.push_str(&format!("[ -n \"$dev\" ] || dev=$({f}); "));
    }
    s.push_str("[ -L \"$dev\" ] && dev=$(readlink -f \"$dev\"); ");
    s
}

/// A shell snippet (one line) that POSTs `rootdev=$dev` to the report URL with `post` (a
/// command taking the URL last, e.g. `curl … --data-urlencode "rootdev=$dev"`), or says why
/// not on stderr; it always succeeds, so a failed report never fails the install.
fn report_root_device(post: &str, report_url: &str) -> String {
    format!(
        "case \"$dev\" in /dev/*) {post} {url} || echo \"nmt: reporting $dev to nmtd failed\" >&2 ;; \
         *) echo \"nmt: no root device found to report\" >&2 ;; esac; true",
        url = sh_quote(report_url)
    )
}
