//! What an install profile changes in the Debian installer's preseed that nmt writes: the
//! mirror, proxy, locale, keyboard, time zone, partitioning, packages, a late command and
//! more debconf lines; or a whole preseed template of the admin's own, into which nmt puts its
//! report command.
//!
//! Everything is checked here, when the profile is defined, so that no value can leave its
//! line in the preseed, and so that no secret is ever written into the event log (passwords
//! come only from the installer password, as a crypted hash, at render time).

use serde::{Deserialize, Serialize};

/// The d-i partitioning recipes an install may name (`partman-auto/choose_recipe`).
pub const RECIPES: [&str; 3] = ["atomic", "home", "multi"];

/// The `{{placeholders}}` a preseed template may use, and what each becomes.
pub const TEMPLATE_PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "late_command",
        "nmt's report command (one shell line): finds the root device of /target and POSTs it \
         with the machine's token; required",
    ),
    ("hostname", "the machine's host name (first label)"),
    (
        "domain",
        "the rest of its name after the first dot, or empty",
    ),
    ("mac", "the machine's MAC, aa:bb:cc:dd:ee:ff"),
    (
        "password_crypted",
        "the installer password, crypted ($6$…); empty when none is set",
    ),
    ("report_url", "the URL the report goes to"),
];

/// The largest preseed template nmt keeps (it is stored in the log with the profile).
pub const TEMPLATE_MAX: usize = 64 * 1024;

/// An install profile's preseed settings. Unset fields keep nmt's defaults: Debian's mirror
/// `http://deb.debian.org/debian`, no proxy, `en_US.UTF-8`, `us`, `UTC`, the first disk with
/// the `atomic` recipe, tasks `standard, ssh-server`, no extra packages.
// Every field is always written (no skip_serializing_if): snapshots use a non-self-describing
// encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreseedOptions {
    /// The package mirror, `http://HOST[:PORT]/DIRECTORY` (or `https://`).
    pub mirror: Option<String>,
    /// The suite to install (`bookworm`, `stable`, …); d-i's own when unset.
    pub suite: Option<String>,
    /// The URL of an extra archive key (a binary OpenPGP keyring, `.gpg`) that signs the
    /// mirror: a site's own mirror signed by its own key.
    pub mirror_key: Option<String>,
    /// The HTTP proxy, `http://HOST:PORT/`; empty: none.
    pub proxy: Option<String>,
    /// The locale, e.g. `de_DE.UTF-8`.
    pub locale: Option<String>,
    /// The keyboard layout (xkb keymap), e.g. `de`.
    pub keyboard: Option<String>,
    /// The time zone, e.g. `Europe/Berlin`.
    pub timezone: Option<String>,
    /// The disk to install onto (and put GRUB on), e.g. `/dev/sda`; unset: the first disk.
    pub disk: Option<String>,
    /// The partitioning recipe: one of [`RECIPES`].
    pub recipe: Option<String>,
    /// The tasksel tasks; `Some(empty)`: none (tasksel does not run).
    pub tasks: Option<Vec<String>>,
    /// Extra packages to install (`pkgsel/include`).
    pub packages: Vec<String>,
    /// The admin's own late command (one shell line, run in the installer before nmt's
    /// report; the report is sent only when it succeeds).
    pub late_command: Option<String>,
    /// More debconf lines, `OWNER QUESTION TYPE [VALUE]`, written after nmt's own (so they
    /// win).
    pub set: Vec<String>,
    /// A whole preseed of the admin's own; nmt fills in its `{{placeholders}}` and writes
    /// nothing else. Exclusive with every other field.
    pub template: Option<String>,
}

/// Why a preseed setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} refused: {why}")]
pub struct PreseedError {
    /// Which setting (its CLI flag).
    pub what: &'static str,
    /// The value, cut to 80 characters.
    pub value: String,
    /// What is wrong and what to do.
    pub why: String,
}

fn refuse(what: &'static str, value: &str, why: impl Into<String>) -> PreseedError {
    PreseedError {
        what,
        value: value.chars().take(80).collect(),
        why: why.into(),
    }
}

fn chars_ok(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

/// A host, `HOST[:PORT]` (letters, digits, `.`, `-`, or a bracketed IPv6 address), not
/// starting with `-`.
fn host_port_ok(s: &str) -> bool {
    let host = match s.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => {
                return chars_ok(addr, b":.")
                    && (rest.is_empty()
                        || rest
                            .strip_prefix(':')
                            .is_some_and(|p| p.parse::<u16>().is_ok()));
            }
            None => return false,
        },
        None => s,
    };
    let (h, port) = match host.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    chars_ok(h, b".-") && !h.starts_with('-') && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// Split an `http://HOST[:PORT]/PATH` URL: (https, host with port, path starting with `/`).
pub fn split_url(url: &str) -> Option<(bool, &str, &str)> {
    let (https, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        (true, url.strip_prefix("https://")?)
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (host_port_ok(host)
        && path.len() <= 512
        && path
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-~+%".contains(&c))
        && !path.split('/').any(|s| s == ".."))
    .then_some((https, host, path))
}

/// One `OWNER QUESTION TYPE [VALUE]` debconf line: its parts, or why not.
pub fn debconf_line(line: &str) -> Result<(&str, &str, &str, &str), String> {
    if line.chars().any(|c| c.is_control()) {
        return Err("one line, with no control characters".into());
    }
    if line.trim_end().ends_with('\\') {
        return Err("a trailing '\\' would join the next line to it".into());
    }
    let mut parts = line.trim().splitn(4, [' ', '\t']);
    let (Some(owner), Some(question), Some(ty)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("write OWNER QUESTION TYPE [VALUE], e.g. 'd-i time/zone string UTC'".into());
    };
    let value = parts.next().unwrap_or("").trim();
    if !chars_ok(owner, b"-_.") || !chars_ok(question, b"-_./") {
        return Err("the owner and the question are words like d-i and time/zone".into());
    }
    const TYPES: [&str; 8] = [
        "string",
        "boolean",
        "select",
        "multiselect",
        "note",
        "text",
        "title",
        "error",
    ];
    if ty == "password" {
        return Err(
            "passwords are never stored in nmt's log: nmt writes the installer password \
             (`nmt installer-password set`), crypted, itself"
                .into(),
        );
    }
    if !TYPES.contains(&ty) {
        return Err(format!("the type is one of {}", TYPES.join(", ")));
    }
    if question.contains("password") {
        return Err(
            "passwords are never stored in nmt's log: nmt writes the installer \
                    password (`nmt installer-password set`), crypted, itself"
                .into(),
        );
    }
    Ok((owner, question, ty, value))
}

impl PreseedOptions {
    /// Nothing changed from nmt's defaults.
    pub fn is_default(&self) -> bool {
        self == &PreseedOptions::default()
    }

    /// Check every field; the error says which and what to do.
    pub fn validate(&self) -> Result<(), PreseedError> {
        if let Some(t) = &self.template {
            if let Some(other) = self.first_set_field() {
                return Err(refuse(
                    "--preseed-template",
                    "",
                    format!(
                        "a template is the whole preseed, so it cannot be combined with \
                         {other}: write that into the template"
                    ),
                ));
            }
            return check_template(t);
        }
        if let Some(m) = &self.mirror {
            split_url(m).ok_or_else(|| {
                refuse(
                    "--mirror",
                    m,
                    "write http://HOST[:PORT]/DIRECTORY, e.g. http://mirror.example.org/debian",
                )
            })?;
        }
        if let Some(s) = &self.suite
            && !chars_ok(s, b"-")
        {
            return Err(refuse(
                "--suite",
                s,
                "a suite is a word like bookworm or stable",
            ));
        }
        if let Some(k) = &self.mirror_key {
            split_url(k).ok_or_else(|| {
                refuse(
                    "--mirror-key",
                    k,
                    "write the http:// URL of the key (a binary .gpg keyring)",
                )
            })?;
        }
        if let Some(p) = &self.proxy
            && !p.is_empty()
        {
            if p.contains('@') {
                return Err(refuse(
                    "--proxy",
                    "(hidden)",
                    "a proxy URL with a user and password would store the password in nmt's \
                     log: allow the installers' addresses at the proxy instead",
                ));
            }
            split_url(p)
                .ok_or_else(|| refuse("--proxy", p, "write http://HOST:PORT/, or '' for none"))?;
        }
        if let Some(l) = &self.locale
            && !chars_ok(l, b"_.@-")
        {
            return Err(refuse(
                "--locale",
                l,
                "a locale is like en_US.UTF-8 or de_DE.UTF-8",
            ));
        }
        if let Some(k) = &self.keyboard
            && !chars_ok(k, b"_-()")
        {
            return Err(refuse(
                "--keyboard",
                k,
                "a keyboard layout is an xkb keymap like us, de or fr(latin9)",
            ));
        }
        if let Some(z) = &self.timezone
            && (!chars_ok(z, b"/_-+") || jiff::tz::db().get(z).is_err())
        {
            return Err(refuse(
                "--timezone",
                z,
                "not a time zone name; use one like UTC or Europe/Berlin (timedatectl \
                 list-timezones lists them)",
            ));
        }
        if let Some(d) = &self.disk
            && !(d.starts_with("/dev/")
                && chars_ok(&d[5..], b"/_.-")
                && !d.split('/').any(|s| s == ".."))
        {
            return Err(refuse(
                "--disk",
                d,
                "a disk is a device like /dev/sda or /dev/nvme0n1",
            ));
        }
        if let Some(r) = &self.recipe
            && !RECIPES.contains(&r.as_str())
        {
            return Err(refuse(
                "--recipe",
                r,
                format!(
                    "d-i's recipes are {} (use --set for an expert_recipe)",
                    RECIPES.join(", ")
                ),
            ));
        }
        for t in self.tasks.iter().flatten() {
            if !chars_ok(t, b"-") {
                return Err(refuse(
                    "--tasks",
                    t,
                    "tasks are words like standard or ssh-server, separated by commas",
                ));
            }
        }
        for p in &self.packages {
            if !chars_ok(p, b"+.-") {
                return Err(refuse(
                    "--packages",
                    p,
                    "package names are words like openssh-server, separated by commas or spaces",
                ));
            }
        }
        if let Some(c) = &self.late_command {
            one_line(c).map_err(|why| refuse("--late-command", c, why))?;
        }
        for l in &self.set {
            // A refused password line is not echoed back: it may hold a real password.
            let shown = if l.contains("password") {
                "(hidden: it names a password)"
            } else {
                l.as_str()
            };
            let (_, q, _, _) = debconf_line(l).map_err(|why| refuse("--set", shown, why))?;
            if matches!(
                q,
                "preseed/late_command" | "preseed/early_command" | "partman/early_command"
            ) {
                return Err(refuse(
                    "--set",
                    l,
                    "nmt writes this command itself: use --late-command, or a \
                     --preseed-template",
                ));
            }
        }
        Ok(())
    }

    /// The flag of the first field set besides the template.
    fn first_set_field(&self) -> Option<&'static str> {
        let PreseedOptions {
            mirror,
            suite,
            mirror_key,
            proxy,
            locale,
            keyboard,
            timezone,
            disk,
            recipe,
            tasks,
            packages,
            late_command,
            set,
            template: _,
        } = self;
        [
            (mirror.is_some(), "--mirror"),
            (suite.is_some(), "--suite"),
            (mirror_key.is_some(), "--mirror-key"),
            (proxy.is_some(), "--proxy"),
            (locale.is_some(), "--locale"),
            (keyboard.is_some(), "--keyboard"),
            (timezone.is_some(), "--timezone"),
            (disk.is_some(), "--disk"),
            (recipe.is_some(), "--recipe"),
            (tasks.is_some(), "--tasks"),
            (!packages.is_empty(), "--packages"),
            (late_command.is_some(), "--late-command"),
            (!set.is_empty(), "--set"),
        ]
        .into_iter()
        .find_map(|(on, flag)| on.then_some(flag))
    }

    /// One line per setting that differs from nmt's defaults, `flag value`, for `profile
    /// list` and the web UI (a template shows as its size).
    pub fn summary(&self) -> Vec<String> {
        let tasks = self.tasks.as_ref().map(|t| {
            if t.is_empty() {
                "none".to_string()
            } else {
                t.join(",")
            }
        });
        let packages = (!self.packages.is_empty()).then(|| self.packages.join(","));
        let mut out: Vec<String> = [
            ("--mirror", &self.mirror),
            ("--suite", &self.suite),
            ("--mirror-key", &self.mirror_key),
            ("--proxy", &self.proxy),
            ("--locale", &self.locale),
            ("--keyboard", &self.keyboard),
            ("--timezone", &self.timezone),
            ("--disk", &self.disk),
            ("--recipe", &self.recipe),
            ("--tasks", &tasks),
            ("--packages", &packages),
            ("--late-command", &self.late_command),
        ]
        .into_iter()
        .filter_map(|(flag, v)| v.as_ref().map(|v| format!("{flag} {v}")))
        .collect();
        for l in &self.set {
            out.push(format!("--set {l}"));
        }
        if let Some(t) = &self.template {
            out.push(format!("--preseed-template ({} bytes)", t.len()));
        }
        out
    }
}

/// One shell line: no control characters, no trailing `\`, at most 4096 bytes.
fn one_line(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("empty".into());
    }
    if s.len() > 4096 {
        return Err("longer than 4096 bytes".into());
    }
    if s.chars().any(|c| c.is_control()) {
        return Err("one line, with no control characters (join commands with ';')".into());
    }
    if s.trim_end().ends_with('\\') {
        return Err("a trailing '\\' would join the next line to it".into());
    }
    Ok(())
}

/// The `{{name}}` placeholders in a template, in order (with their byte ranges), or the
/// first one that is not closed.
pub fn template_placeholders(t: &str) -> Result<Vec<(usize, usize, &str)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = t[at..].find("{{") {
        let start = at + open;
        let Some(close) = t[start + 2..].find("}}") else {
            return Err(format!("the '{{{{' at byte {start} has no '}}}}'"));
        };
        let end = start + 2 + close + 2;
        out.push((start, end, t[start + 2..end - 2].trim()));
        at = end;
    }
    Ok(out)
}

fn check_template(t: &str) -> Result<(), PreseedError> {
    let err = |why: String| refuse("--preseed-template", "", why);
    if t.len() > TEMPLATE_MAX {
        return Err(err(format!(
            "{} bytes; nmt keeps templates up to {TEMPLATE_MAX} bytes",
            t.len()
        )));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(err("it holds control characters; a preseed is text".into()));
    }
    let known: Vec<&str> = TEMPLATE_PLACEHOLDERS.iter().map(|(k, _)| *k).collect();
    let found = template_placeholders(t).map_err(err)?;
    for (_, _, name) in &found {
        if !known.contains(name) {
            return Err(err(format!(
                "unknown placeholder {{{{{name}}}}}; known: {}",
                known.join(", ")
            )));
        }
    }
    if !found.iter().any(|(_, _, n)| *n == "late_command") {
        return Err(err("nmt must put its report command in it: add the line \
             'd-i preseed/late_command string {{late_command}}' (or put {{late_command}} \
             after your own command and a ';')"
            .into()));
    }
    // A line that stores a password in the template would put it in nmt's log.
    for (i, line) in t.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let mut parts = l.split_whitespace();
        let (_, q, ty) = (parts.next(), parts.next(), parts.next());
        let value: String = parts.collect::<Vec<_>>().join(" ");
        let secretish = ty == Some("password") || q.is_some_and(|q| q.contains("password"));
        if secretish && !value.is_empty() && !value.contains("{{") {
            return Err(err(format!(
                "line {} sets a password; nmt's log must hold no password: write \
                 {{{{password_crypted}}}} (the installer password) instead",
                i + 1
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut PreseedOptions)) -> PreseedOptions {
        let mut o = PreseedOptions::default();
        f(&mut o);
        o
    }

    #[test]
    fn good_settings_pass() {
        let o = PreseedOptions {
            mirror: Some("http://10.0.0.1:8080/debian".into()),
            suite: Some("bookworm".into()),
            mirror_key: Some("http://10.0.0.1:8080/debian/site.gpg".into()),
            proxy: Some("http://proxy.example.org:3128/".into()),
            locale: Some("de_DE.UTF-8".into()),
            keyboard: Some("fr(latin9)".into()),
            timezone: Some("Europe/Berlin".into()),
            disk: Some("/dev/nvme0n1".into()),
            recipe: Some("home".into()),
            tasks: Some(vec!["standard".into(), "ssh-server".into()]),
            packages: vec!["htop".into(), "g++".into()],
            late_command: Some("in-target systemctl enable ssh; echo done".into()),
            set: vec![
                "d-i base-installer/initramfs-tools/driver-policy select dep".into(),
                "d-i apt-setup/services-select multiselect".into(),
            ],
            template: None,
        };
        o.validate().unwrap();
        assert!(
            o.summary()
                .contains(&"--tasks standard,ssh-server".to_string())
        );
        assert!(PreseedOptions::default().validate().is_ok());
        assert!(
            with(|o| o.mirror = Some("http://[fd00::1]:80/debian".into()))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn hostile_or_wrong_settings_say_what_to_do() {
        let cases: Vec<(PreseedOptions, &str)> = vec![
            (
                with(|o| o.mirror = Some("ftp://x/debian".into())),
                "http://HOST",
            ),
            (
                with(|o| o.mirror = Some("http://x/deb ian\nd-i x".into())),
                "--mirror",
            ),
            (
                with(|o| o.proxy = Some("http://bob:secret@proxy:3128/".into())),
                "password",
            ),
            (
                with(|o| o.timezone = Some("Mars/Olympus".into())),
                "time zone",
            ),
            (with(|o| o.disk = Some("/dev/../etc".into())), "/dev/sda"),
            (
                with(|o| o.recipe = Some("lvm".into())),
                "atomic, home, multi",
            ),
            (
                with(|o| o.late_command = Some("a\nd-i passwd/root-password string x".into())),
                "one line",
            ),
            (
                with(|o| o.set = vec!["d-i passwd/root-password password secret".into()]),
                "never stored",
            ),
            (
                with(|o| o.set = vec!["d-i passwd/root-password-crypted string $6$x".into()]),
                "never stored",
            ),
            (
                with(|o| o.set = vec!["d-i preseed/late_command string reboot".into()]),
                "--late-command",
            ),
            (with(|o| o.set = vec!["just-one".into()]), "OWNER QUESTION"),
            (with(|o| o.packages = vec!["a;b".into()]), "--packages"),
            (
                with(|o| {
                    o.template = Some("d-i preseed/late_command string {{late_command}}".into());
                    o.locale = Some("de_DE.UTF-8".into());
                }),
                "--locale",
            ),
            (
                with(|o| o.template = Some("d-i time/zone string UTC\n".into())),
                "{{late_command}}",
            ),
            (
                with(|o| o.template = Some("{{late_command}} {{nope}}".into())),
                "unknown placeholder {{nope}}",
            ),
            (
                with(|o| {
                    o.template =
                        Some("d-i passwd/root-password password hunter2\n{{late_command}}".into())
                }),
                "line 1 sets a password",
            ),
        ];
        for (o, needle) in cases {
            let e = o.validate().expect_err(&format!("{o:?}")).to_string();
            assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        }
    }

    #[test]
    fn a_template_with_its_placeholders_passes() {
        let t = "d-i netcfg/get_hostname string {{hostname}}\n\
                 d-i passwd/user-password-crypted password {{password_crypted}}\n\
                 d-i partman-auto/expert_recipe string root :: 1000 50 -1 ext4 \
                 $primary{ } method{ format } format{ } use_filesystem{ } filesystem{ ext4 } \
                 mountpoint{ / } .\n\
                 d-i preseed/late_command string in-target true; {{ late_command }}\n";
        with(|o| o.template = Some(t.into())).validate().unwrap();
        let p = template_placeholders(t).unwrap();
        assert_eq!(
            p.iter().map(|x| x.2).collect::<Vec<_>>(),
            ["hostname", "password_crypted", "late_command"]
        );
    }
}
