//! `nmtd --demo`: a small simulated pool booting, written as a dnsmasq log that nmtd follows
//! through its normal ingest path. A newcomer without a DHCP server sees machines appear in
//! `nmt machines`, can name and group them and set policies, and watches the next boots
//! fetch the entries nmt wrote (`nmt history`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Zoned;

/// The pool: six machines of a small lab, four BIOS and two UEFI.
const POOL: [(u8, u16); 6] = [(1, 0), (2, 0), (3, 7), (4, 0), (5, 7), (6, 0)];

/// Where the simulated log goes.
pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join("demo").join("dnsmasq.log")
}

fn boot_lines(n: u8, arch: u16, xid: u32, now: &Zoned) -> String {
    let stamp = now.strftime("%b %e %H:%M:%S");
    let mac = format!("52:54:00:de:00:{n:02x}");
    let dashed = mac.replace(':', "-");
    let ip = format!("10.99.0.{}", 100 + u32::from(n));
    let pre = format!("{stamp} demo dnsmasq-dhcp[4242]: {xid}");
    let tftp = format!("{stamp} demo dnsmasq-tftp[4242]:");
    let (loader, entry) = if arch == 0 {
        ("pxelinux.0", format!("pxelinux.cfg/01-{dashed}"))
    } else {
        ("grub/grubnetx64.efi", format!("grub/grub.cfg-01-{dashed}"))
    };
    format!(
        "{pre} vendor class: PXEClient:Arch:{arch:05}:UNDI:003016\n\
         {pre} DHCPDISCOVER(br0) {mac}\n\
         {pre} DHCPOFFER(br0) {ip} {mac}\n\
         {pre} DHCPREQUEST(br0) {ip} {mac}\n\
         {pre} DHCPACK(br0) {ip} {mac} lab-pc{n}\n\
         {tftp} sent /srv/tftp/{loader} to {ip}\n\
         {tftp} sent /srv/tftp/{entry} to {ip}\n"
    )
}

/// Write the pool's boots forever: each machine boots in turn, a few seconds apart.
pub fn start(state_dir: &Path) -> std::io::Result<PathBuf> {
    let path = log_path(state_dir);
    std::fs::create_dir_all(path.parent().expect("a parent"))?;
    let p = path.clone();
    tokio::spawn(async move {
        let mut xid = 1000u32;
        loop {
            for (n, arch) in POOL {
                tokio::time::sleep(Duration::from_secs(3)).await;
                xid += 1;
                let text = boot_lines(n, arch, xid, &Zoned::now());
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                {
                    let _ = f.write_all(text.as_bytes());
                }
            }
        }
    });
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_lines_parse_as_real_dnsmasq_lines() {
        let now: Zoned = "2026-11-21T09:05:07+00:00[UTC]".parse().unwrap();
        let text = boot_lines(3, 7, 1001, &now);
        for line in text.lines() {
            let l = nmt_parsers::parse_line(line.as_bytes())
                .unwrap_or_else(|e| panic!("{line}: {e:?}"));
            assert!(l.stamp.is_some(), "{line}");
        }
        assert!(text.starts_with("Nov 21 09:05:07 demo dnsmasq-dhcp[4242]: 1001 vendor class"));
    }
}
