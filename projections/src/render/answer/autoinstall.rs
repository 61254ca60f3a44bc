//! The Ubuntu autoinstall (Subiquity) user-data: a `#cloud-config` document whose
//! `autoinstall:` key (version 1) drives the install, served to the live installer's
//! cloud-init (`ds=nocloud-net;s=…`). Keys outside `autoinstall:` configure the live
//! installer session itself, which is where the network console's password goes.
//!
//! Every scalar is written as a JSON string, which YAML reads as a double-quoted scalar: no
//! value can start a comment, become a boolean or a number, or break its line.

use std::fmt::Write as _;

use crate::AnswerKind;

use super::{
    ADMIN_REALNAME, ADMIN_USER, Facts, clean, comment_lines, find_root_device, report_root_device,
};

/// Where Subiquity (curtin) mounts the system it installs.
const TARGET: &str = "/target";

/// A YAML double-quoted scalar.
fn q(s: &str) -> String {
    serde_json::to_string(&clean(s)).expect("a string serializes")
}

pub(super) fn render(f: &Facts) -> String {
    let mut out = String::from("#cloud-config\n");
    let mut notes = f.header(AnswerKind::Autoinstall);
    if f.password.is_none() {
        notes.push(
            "so identity is an interactive section: the installer asks for the host name, \
             user and password"
                .to_string(),
        );
    }
    if f.network_console {
        notes.push(
            "network console: the live installer always runs an SSH server; log in as user \
             installer"
                .to_string(),
        );
        notes.push(if f.password.is_some() {
            "with the crypted password set below (chpasswd, for the live session)".to_string()
        } else {
            "with the random password the installer shows on its console (no password is \
             configured)"
                .to_string()
        });
    }
    out.push_str(&comment_lines(&notes));
    let o = &mut out;
    let _ = writeln!(o, "autoinstall:");
    let _ = writeln!(o, "  version: 1");
    if f.password.is_none() {
        let _ = writeln!(o, "  interactive-sections:");
        let _ = writeln!(o, "    - {}", q("identity"));
    }
    let _ = writeln!(o, "  locale: {}", q("en_US.UTF-8"));
    let _ = writeln!(o, "  keyboard:");
    let _ = writeln!(o, "    layout: {}", q("us"));
    let _ = writeln!(o, "  timezone: {}", q("UTC"));
    if let Some(p) = &f.password {
        let _ = writeln!(o, "  identity:");
        let _ = writeln!(o, "    hostname: {}", q(&f.host));
        let _ = writeln!(o, "    realname: {}", q(ADMIN_REALNAME));
        let _ = writeln!(o, "    username: {}", q(ADMIN_USER));
        let _ = writeln!(o, "    password: {}", q(p));
    } else {
        let _ = writeln!(o, "  # identity is asked for: enter host name {}", f.host);
    }
    let _ = writeln!(o, "  ssh:");
    let _ = writeln!(o, "    install-server: true");
    let _ = writeln!(o, "    allow-pw: true");
    let _ = writeln!(o, "  storage:");
    let _ = writeln!(o, "    layout:");
    let _ = writeln!(o, "      name: {}", q("lvm"));
    if let Some((host, port)) = &f.log {
        // rsyslog's forwarding syntax: @host:port is UDP; IPv6 addresses in brackets.
        let dest = if host.contains(':') {
            format!("@[{host}]:{port}")
        } else {
            format!("@{host}:{port}")
        };
        // Setting reporting replaces Subiquity's default, so keep its console output too.
        let _ = writeln!(o, "  reporting:");
        let _ = writeln!(o, "    builtin:");
        let _ = writeln!(o, "      type: {}", q("print"));
        let _ = writeln!(o, "    nmt:");
        let _ = writeln!(o, "      type: {}", q("rsyslog"));
        let _ = writeln!(o, "      dest: {}", q(&dest));
    }
    let late = format!(
        "{}{}",
        find_root_device(TARGET, None),
        report_root_device(
            r#"curl -fsS -m 30 --retry 3 --data-urlencode "rootdev=$dev""#,
            &f.report_url
        )
    );
    let _ = writeln!(o, "  # Report the installed root device to nmtd.");
    let _ = writeln!(o, "  late-commands:");
    let _ = writeln!(o, "    - {}", q(&late));
    if let (true, Some(p)) = (f.network_console, &f.password) {
        // Outside autoinstall: the live installer session's own cloud-config.
        let _ = writeln!(o, "ssh_pwauth: true");
        let _ = writeln!(o, "chpasswd:");
        let _ = writeln!(o, "  expire: false");
        let _ = writeln!(o, "  users:");
        let _ = writeln!(o, "    - name: {}", q("installer"));
        let _ = writeln!(o, "      password: {}", q(p));
        let _ = writeln!(o, "      type: {}", q("hash"));
    }
    out
}
