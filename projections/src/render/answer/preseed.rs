//! The debian-installer preseed file (Debian, and Ubuntu's legacy installer), loaded with
//! `auto=true priority=critical url=…`: one `owner question type value` per line, as
//! `debconf-set-selections` reads it. Every value is one line; values that come from outside
//! are checked host names and crypt strings, and the URL lands single-quoted in the shell.

use std::fmt::Write as _;

use crate::AnswerKind;

use super::{
    ADMIN_REALNAME, ADMIN_USER, Facts, clean, comment_lines, find_root_device, report_root_device,
    sh_quote,
};

/// Where d-i mounts the system it installs.
const TARGET: &str = "/target";

pub(super) fn render(f: &Facts) -> String {
    let opts = &f.preseed;
    if let Some(t) = &opts.template {
        return template(f, t);
    }
    let mut notes = f.header(AnswerKind::Preseed);
    if let Some((host, port)) = &f.log {
        notes.push(format!(
            "remote logging: d-i's syslogd takes its log host only from the kernel command \
             line; nmt's boot entries pass log_host={host} log_port={port} (add them to \
             entries of your own)"
        ));
    }
    if f.network_console {
        notes.push(
            "network console: SSH into the installer as user installer while it runs \
             (Continue installation remotely using SSH); the install goes on without waiting \
             for a login"
                .to_string(),
        );
        notes.push(if f.password.is_some() {
            "network-console takes only a clear-text password, so it first gets the machine's \
             report token (already in this file), and partman/early_command then gives the \
             installer user the crypted installer password: log in with that one"
                .to_string()
        } else {
            "no password is configured: the installer asks for the network console password"
                .to_string()
        });
    }
    let settings = opts.summary();
    if !settings.is_empty() {
        notes.push(format!("the profile's settings: {}", settings.join("; ")));
    }
    let mut out = comment_lines(&notes);
    let o = &mut out;

    di(
        o,
        "debian-installer/locale",
        "string",
        opts.locale.as_deref().unwrap_or("en_US.UTF-8"),
    );
    di(
        o,
        "keyboard-configuration/xkb-keymap",
        "select",
        opts.keyboard.as_deref().unwrap_or("us"),
    );
    di(o, "netcfg/choose_interface", "select", "auto");
    di(o, "netcfg/get_hostname", "string", &f.host);
    di(o, "netcfg/get_domain", "string", &f.domain);
    di(o, "netcfg/hostname", "string", &f.host);
    di(o, "hw-detect/load_firmware", "boolean", "true");
    if f.network_console {
        di(o, "anna/choose_modules", "string", "network-console");
        if f.password.is_some() {
            // network-console asks for a clear-text password before it starts sshd, and
            // nmt keeps only the crypted one: a stand-in nobody without this file knows,
            // replaced by partman/early_command below.
            di(o, "network-console/password-disabled", "boolean", "false");
            di(o, "network-console/password", "password", &f.token);
            di(o, "network-console/password-again", "password", &f.token);
        }
        di(o, "network-console/start", "select", "Continue");
    }
    // The mirror: a URL checked when the profile was defined; d-i's own protocol names.
    let (https, host, dir) = opts
        .mirror
        .as_deref()
        .and_then(crate::preseed::split_url)
        .unwrap_or((false, "deb.debian.org", "/debian"));
    let proto = if https { "https" } else { "http" };
    di(o, "mirror/country", "string", "manual");
    di(o, "mirror/protocol", "string", proto);
    di(o, &format!("mirror/{proto}/hostname"), "string", host);
    di(o, &format!("mirror/{proto}/directory"), "string", dir);
    di(
        o,
        &format!("mirror/{proto}/proxy"),
        "string",
        opts.proxy.as_deref().unwrap_or(""),
    );
    if let Some(suite) = &opts.suite {
        di(o, "mirror/suite", "string", suite);
        di(o, "mirror/udeb/suite", "string", suite);
    }
    if let Some(key) = &opts.mirror_key {
        // d-i checks the mirror's Release with /usr/share/keyrings/archive.gpg (a link to
        // debian-archive-keyring.gpg), and apt in /target with its trusted.gpg.d; the
        // preseed has no question for another key of the main mirror. So the key is appended
        // to the installer's keyring, and a base-installer.d hook copies it into /target
        // before base-installer's first apt-get update.
        let early = format!(
            "wget -q -O /usr/share/keyrings/nmt-mirror.gpg {key} && cat \
             /usr/share/keyrings/nmt-mirror.gpg >>/usr/share/keyrings/debian-archive-keyring.gpg \
             && mkdir -p /usr/lib/base-installer.d && printf '%s\\n' '#!/bin/sh' 'mkdir -p \
             /target/etc/apt/trusted.gpg.d && cp /usr/share/keyrings/nmt-mirror.gpg \
             /target/etc/apt/trusted.gpg.d/nmt-mirror.gpg' \
             >/usr/lib/base-installer.d/05nmt-mirror-key && chmod 755 \
             /usr/lib/base-installer.d/05nmt-mirror-key",
            key = sh_quote(key)
        );
        di(o, "preseed/early_command", "string", &early);
    }
    di(o, "clock-setup/utc", "boolean", "true");
    di(
        o,
        "time/zone",
        "string",
        opts.timezone.as_deref().unwrap_or("UTC"),
    );
    di(o, "clock-setup/ntp", "boolean", "true");
    di(o, "passwd/root-login", "boolean", "false");
    di(o, "passwd/make-user", "boolean", "true");
    di(o, "passwd/user-fullname", "string", ADMIN_REALNAME);
    di(o, "passwd/username", "string", ADMIN_USER);
    if let Some(p) = &f.password {
        di(o, "passwd/user-password-crypted", "password", p);
    }
    // The disk: the profile's, else the first disk (GRUB goes there too: bootdev `default`).
    let mut early = match &opts.disk {
        Some(_) => String::new(),
        None => r#"debconf-set partman-auto/disk "$(list-devices disk | head -n 1)""#.to_string(),
    };
    if let (true, Some(p)) = (f.network_console, &f.password) {
        // The crypted password for the network console's installer user; and password
        // logins on, should network-console have turned them off.
        if !early.is_empty() {
            early.push_str("; ");
        }
        let _ = write!(
            early,
            "h={}; for f in /etc/passwd /etc/shadow; do [ -f $f ] && sed -i \
             \"s|^installer:[^:]*:|installer:$h:|\" $f; done; if grep -q \
             '^PasswordAuthentication no' /etc/ssh/sshd_config 2>/dev/null; then sed -i \
             's/^PasswordAuthentication no/PasswordAuthentication yes/' \
             /etc/ssh/sshd_config; kill -HUP $(cat /var/run/sshd.pid 2>/dev/null) \
             2>/dev/null; fi; true",
            sh_quote(p)
        );
    }
    if !early.is_empty() {
        di(o, "partman/early_command", "string", &early);
    }
    if let Some(disk) = &opts.disk {
        di(o, "partman-auto/disk", "string", disk);
    }
    di(o, "partman-auto/method", "string", "regular");
    di(
        o,
        "partman-auto/choose_recipe",
        "select",
        opts.recipe.as_deref().unwrap_or("atomic"),
    );
    di(o, "partman-lvm/device_remove_lvm", "boolean", "true");
    di(o, "partman-md/device_remove_md", "boolean", "true");
    di(o, "partman-lvm/confirm", "boolean", "true");
    di(o, "partman-lvm/confirm_nooverwrite", "boolean", "true");
    di(
        o,
        "partman-partitioning/confirm_write_new_label",
        "boolean",
        "true",
    );
    di(o, "partman/choose_partition", "select", "finish");
    di(o, "partman/confirm", "boolean", "true");
    di(o, "partman/confirm_nooverwrite", "boolean", "true");
    di(o, "partman-efi/non_efi_system", "boolean", "true");
    match opts.tasks.as_deref() {
        Some([]) => {
            di(o, "pkgsel/run_tasksel", "boolean", "false");
            set(o, "tasksel", "tasksel/first", "multiselect", "");
        }
        Some(tasks) => set(
            o,
            "tasksel",
            "tasksel/first",
            "multiselect",
            &tasks.join(", "),
        ),
        None => set(
            o,
            "tasksel",
            "tasksel/first",
            "multiselect",
            "standard, ssh-server",
        ),
    }
    if !opts.packages.is_empty() {
        di(o, "pkgsel/include", "string", &opts.packages.join(" "));
    }
    set(
        o,
        "popularity-contest",
        "popularity-contest/participate",
        "boolean",
        "false",
    );
    di(o, "grub-installer/only_debian", "boolean", "true");
    di(o, "grub-installer/with_other_os", "boolean", "true");
    di(
        o,
        "grub-installer/bootdev",
        "string",
        opts.disk.as_deref().unwrap_or("default"),
    );
    if let Some(serial) = &f.serial {
        // The installed system's kernel line gets the serial console the site boots with.
        di(
            o,
            "debian-installer/add-kernel-opts",
            "string",
            &format!("console=tty0 console={serial}"),
        );
    }
    di(o, "preseed/late_command", "string", &late_command(f));
    di(o, "finish-install/reboot_in_progress", "note", "");
    with_settings(out, &opts.set)
}

/// The profile's `--set` lines: one that answers a question nmt answers takes the place of
/// nmt's line, the others follow nmt's lines; each question is answered once.
fn with_settings(nmt: String, settings: &[String]) -> String {
    let mut lines: Vec<String> = nmt.lines().map(str::to_string).collect();
    for line in settings {
        // Checked when the profile was defined; a broken one (a corrupt log) is left out.
        let Ok((owner, question, ty, value)) = crate::debconf_line(line) else {
            continue;
        };
        let mut own = String::new();
        set(&mut own, owner, question, ty, value);
        let own = own.trim_end().to_string();
        let same = |l: &String| {
            let mut p = l.split(' ');
            !l.starts_with('#') && p.next() == Some(owner) && p.next() == Some(question)
        };
        match lines.iter().position(same) {
            Some(i) => lines[i] = own,
            None => lines.push(own),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The late command: the profile's own (when it has one, the report is sent only if it
/// succeeded), then nmt's: on UEFI, the network boot entry put back first in the firmware's
/// boot order (grub-install made the new disk entry first, and nmt must keep seeing the
/// machine's boots), then the report of the root device.
fn late_command(f: &Facts) -> String {
    let nmt = format!(
        "{}{}{}",
        // BootCurrent is the entry the installer was booted from: the network.
        "if [ -d /sys/firmware/efi ]; then mount -t efivarfs efivarfs \
         /target/sys/firmware/efi/efivars 2>/dev/null; cur=$(chroot /target efibootmgr 2>/dev/null | \
         sed -n 's/^BootCurrent: //p'); ord=$(chroot /target efibootmgr 2>/dev/null | sed -n \
         's/^BootOrder: //p'); if [ -n \"$cur\" ] && [ -n \"$ord\" ]; then chroot /target \
         efibootmgr -q -o \"$cur,$(echo \"$ord\" | tr ',' '\\n' | grep -v \"^$cur$\" | tr \
         '\\n' ',' | sed 's/,$//')\" || true; fi; fi; ",
        find_root_device(
            TARGET,
            Some(r"chroot /target findmnt -n -o SOURCE / 2>/dev/null | sed 's/\[.*//'")
        ),
        report_root_device(
            r#"wget -q -O /dev/null --post-data "rootdev=$dev""#,
            &f.report_url
        )
    );
    match &f.preseed.late_command {
        Some(own) => format!(
            "if ( {own} ); then {nmt}; else echo \"nmt: the profile's late command failed, so \
             the install is not reported\" >&2; false; fi"
        ),
        None => nmt,
    }
}

/// A preseed template of the admin's own, its `{{placeholders}}` filled in; a header of
/// comments first.
fn template(f: &Facts, t: &str) -> String {
    let mut notes = f.header(AnswerKind::Preseed);
    notes.push(
        "from the profile's preseed template: nmt filled in its placeholders and wrote \
         these comments, nothing else"
            .to_string(),
    );
    let mut out = comment_lines(&notes);
    let value = |name: &str| -> String {
        match name {
            "late_command" => late_command(f),
            "hostname" => f.host.clone(),
            "domain" => f.domain.clone(),
            "mac" => f.mac.to_string(),
            "password_crypted" => f.password.clone().unwrap_or_default(),
            "report_url" => f.report_url.clone(),
            _ => String::new(),
        }
    };
    let mut at = 0;
    // The template was checked when the profile was defined; a broken one (a corrupt log)
    // renders with its placeholders empty.
    for (start, end, name) in crate::template_placeholders(t).unwrap_or_default() {
        out.push_str(&t[at..start]);
        out.push_str(&clean(&value(name)));
        at = end;
    }
    out.push_str(&t[at..]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// One `d-i` line.
fn di(out: &mut String, question: &str, ty: &str, value: &str) {
    set(out, "d-i", question, ty, value);
}

/// One `owner question type value` line; the value is kept on its line whatever reached it
/// (no control characters, and no trailing `\\`, which would join the next line to it).
fn set(out: &mut String, owner: &str, question: &str, ty: &str, value: &str) {
    let value = clean(value);
    let value = value.trim_end_matches('\\');
    let _ = if value.is_empty() {
        writeln!(out, "{owner} {question} {ty}")
    } else {
        writeln!(out, "{owner} {question} {ty} {value}")
    };
}
