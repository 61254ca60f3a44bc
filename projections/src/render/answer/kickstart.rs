//! The kickstart file (Fedora, RHEL and rebuilds), loaded with `inst.ks=…`: a text-mode
//! install onto the whole first disk, and a `%post --nochroot` script that reports the root
//! device. Options take checked host names and crypt strings, which never hold a space or a
//! quote; the URL lands single-quoted in the script.

use crate::AnswerKind;

use super::{
    ADMIN_REALNAME, ADMIN_USER, Facts, comment_lines, find_root_device, report_root_device,
};

/// Where anaconda mounts the system it installs.
const TARGET: &str = "/mnt/sysimage";

pub(super) fn render(f: &Facts) -> String {
    let mut notes = f.header(AnswerKind::Kickstart);
    if f.network_console {
        notes.push(
            "network console: add inst.sshd to the kernel arguments; anaconda's SSH server \
             then lets root into the running installer"
                .to_string(),
        );
        if f.password.is_none() {
            notes.push(
                "no password is configured, so there is no sshpw line: the installer's root \
                 has an empty password"
                    .to_string(),
            );
        }
    }
    let mut out = comment_lines(&notes);
    let mut line = |l: &str| {
        out.push_str(l);
        out.push('\n');
    };
    line("text");
    line("lang en_US.UTF-8");
    line("keyboard --vckeymap=us --xlayouts=us");
    line("timezone Etc/UTC --utc");
    line(&format!(
        "network --bootproto=dhcp --device={} --hostname={} --activate",
        f.mac, f.fqdn
    ));
    match &f.password {
        Some(p) => {
            line(&format!("rootpw --iscrypted {p}"));
            line(&format!(
                "user --name={ADMIN_USER} --gecos=\"{ADMIN_REALNAME}\" --groups=wheel \
                 --iscrypted --password={p}"
            ));
            if f.network_console {
                line(&format!("sshpw --username=root --iscrypted {p}"));
            }
        }
        None => line("# rootpw left out: the installer asks for the root password"),
    }
    if let Some((host, port)) = &f.log {
        line(&format!("logging --host={host} --port={port}"));
    }
    line("zerombr");
    line("clearpart --all --initlabel");
    line("autopart");
    line("bootloader --location=mbr");
    line("reboot");
    line("");
    line("%packages");
    line("@core");
    line("%end");
    line("");
    line("# Report the installed root device to nmtd.");
    line(&format!(
        "%post --nochroot --log={TARGET}/root/nmt-report.log"
    ));
    line(find_root_device(TARGET, None).trim_end());
    line(&report_root_device(
        r#"curl -fsS -m 30 --retry 3 --data-urlencode "rootdev=$dev""#,
        &f.report_url,
    ));
    line("%end");
    out
}
