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
    let mut notes = f.header(AnswerKind::Preseed);
    if let Some((host, port)) = &f.log {
        notes.push(format!(
            "remote logging: d-i's syslogd takes its log host only from the kernel command \
             line: add log_host={host} log_port={port} to the kernel arguments"
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
            "network-console takes only a clear-text password, so its password question is \
             switched off and partman/early_command gives the installer user the crypted one"
                .to_string()
        } else {
            "no password is configured: the installer asks for the network console password"
                .to_string()
        });
    }
    let mut out = comment_lines(&notes);
    let o = &mut out;

    di(o, "debian-installer/locale", "string", "en_US.UTF-8");
    di(o, "keyboard-configuration/xkb-keymap", "select", "us");
    di(o, "netcfg/choose_interface", "select", "auto");
    di(o, "netcfg/get_hostname", "string", &f.host);
    di(o, "netcfg/get_domain", "string", &f.domain);
    di(o, "netcfg/hostname", "string", &f.host);
    di(o, "hw-detect/load_firmware", "boolean", "true");
    if f.network_console {
        di(o, "anna/choose_modules", "string", "network-console");
        if f.password.is_some() {
            di(o, "network-console/password-disabled", "boolean", "true");
        }
        di(o, "network-console/start", "select", "Continue");
    }
    di(o, "mirror/country", "string", "manual");
    di(o, "mirror/protocol", "string", "http");
    di(o, "mirror/http/hostname", "string", "deb.debian.org");
    di(o, "mirror/http/directory", "string", "/debian");
    di(o, "mirror/http/proxy", "string", "");
    di(o, "clock-setup/utc", "boolean", "true");
    di(o, "time/zone", "string", "UTC");
    di(o, "clock-setup/ntp", "boolean", "true");
    di(o, "passwd/root-login", "boolean", "false");
    di(o, "passwd/make-user", "boolean", "true");
    di(o, "passwd/user-fullname", "string", ADMIN_REALNAME);
    di(o, "passwd/username", "string", ADMIN_USER);
    if let Some(p) = &f.password {
        di(o, "passwd/user-password-crypted", "password", p);
    }
    // Partition the first disk (GRUB goes there too: bootdev `default`).
    let mut early =
        r#"debconf-set partman-auto/disk "$(list-devices disk | head -n 1)""#.to_string();
    if let (true, Some(p)) = (f.network_console, &f.password) {
        // The crypted password for the network console's installer user; and password
        // logins on, should network-console have turned them off.
        let _ = write!(
            early,
            "; h={}; for f in /etc/passwd /etc/shadow; do [ -f $f ] && sed -i \
             \"s|^installer:[^:]*:|installer:$h:|\" $f; done; if grep -q \
             '^PasswordAuthentication no' /etc/ssh/sshd_config 2>/dev/null; then sed -i \
             's/^PasswordAuthentication no/PasswordAuthentication yes/' \
             /etc/ssh/sshd_config; kill -HUP $(cat /var/run/sshd.pid 2>/dev/null) \
             2>/dev/null; fi; true",
            sh_quote(p)
        );
    }
    di(o, "partman/early_command", "string", &early);
    di(o, "partman-auto/method", "string", "regular");
    di(o, "partman-auto/choose_recipe", "select", "atomic");
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
    set(
        o,
        "tasksel",
        "tasksel/first",
        "multiselect",
        "standard, ssh-server",
    );
    set(
        o,
        "popularity-contest",
        "popularity-contest/participate",
        "boolean",
        "false",
    );
    di(o, "grub-installer/only_debian", "boolean", "true");
    di(o, "grub-installer/with_other_os", "boolean", "true");
    di(o, "grub-installer/bootdev", "string", "default");
    // d-i's busybox has no findmnt: /proc/mounts, else findmnt inside the target.
    let late = format!(
        "{}{}",
        find_root_device(
            TARGET,
            Some(r"chroot /target findmnt -n -o SOURCE / 2>/dev/null | sed 's/\[.*//'")
        ),
        report_root_device(
            r#"wget -q -O /dev/null --post-data "rootdev=$dev""#,
            &f.report_url
        )
    );
    di(o, "preseed/late_command", "string", &late);
    di(o, "finish-install/reboot_in_progress", "note", "");
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
