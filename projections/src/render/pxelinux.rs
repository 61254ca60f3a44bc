//! pxelinux (BIOS) boot files, `pxelinux.cfg/01-<mac>`, `pxelinux.cfg/default` and a group's
//! shared `pxelinux.cfg/nmt/<group>@<chain key>.cfg`, and the mapping of a root device to a
//! `chain.c32` argument. Paths stay relative to the TFTP root (pxelinux resolves them so, the
//! `INCLUDE` of a shared file too) and URLs pass as they are; nothing here knows GRUB or iPXE.
//!
//! pxelinux has no variables, so a shared file holds only entries without per-machine values:
//! a member's own file `INCLUDE`s it, and pxelinux reads it as if it stood in its place.

use super::{Boot, RenderConfig, clean, comments, serial, words_text};

/// The `chain.c32` argument that boots the disk holding a root device, when there is one:
/// `/dev/sdb2` → `hd1`, `/dev/nvme0n1p2` → `hd0`, an MBR `PARTUUID=xxxxxxxx-nn` →
/// `mbr:0xxxxxxxxx` (the disk by its signature). It chains to the disk's MBR, not to the
/// partition: Debian, Ubuntu and RHEL installers put the boot loader in the MBR and leave the
/// partition's boot sector empty, and chaining into an empty sector hangs. A GPT `PARTUUID=`
/// names only a partition, and `UUID=`, `LABEL=`, `/dev/mapper/…` and `/dev/disk/…` name no
/// BIOS disk, so they give `None` (the entry uses `LOCALBOOT 0`, the first disk).
pub(crate) fn chain_arg(dev: &str) -> Option<String> {
    if let Some(id) = dev.strip_prefix("PARTUUID=") {
        return partuuid(id);
    }
    let rest = dev.strip_prefix("/dev/")?;
    if let Some(nvme) = rest.strip_prefix("nvme") {
        // nvme<D>n1 or nvme<D>n1p<P>
        let (disk, after) = split_digits(nvme)?;
        let after = after.strip_prefix("n1")?;
        return match after {
            "" => Some(format!("hd{disk}")),
            _ => {
                let (part, tail) = split_digits(after.strip_prefix('p')?)?;
                (tail.is_empty() && part > 0).then(|| format!("hd{disk}"))
            }
        };
    }
    let letters = ["xvd", "sd", "vd", "hd"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))?;
    let n = letters.bytes().take_while(u8::is_ascii_lowercase).count();
    if n == 0 || n > 3 {
        return None;
    }
    // a=0 … z=25, aa=26 …, as the kernel names disks.
    let disk = letters[..n]
        .bytes()
        .fold(0u32, |acc, c| acc * 26 + u32::from(c - b'a') + 1)
        - 1;
    match &letters[n..] {
        "" => Some(format!("hd{disk}")),
        tail => {
            let (part, rest) = split_digits(tail)?;
            (rest.is_empty() && part > 0).then(|| format!("hd{disk}"))
        }
    }
}

/// Leading decimal digits as a number (no leading zeros but "0"), and the rest.
fn split_digits(s: &str) -> Option<(u32, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    let digits = &s[..n];
    if n == 0 || n > 6 || (n > 1 && digits.starts_with('0')) {
        return None;
    }
    Some((digits.parse().ok()?, &s[n..]))
}

fn partuuid(id: &str) -> Option<String> {
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = id.split('-').collect();
    match parts.as_slice() {
        // MBR: the disk signature and the partition number, both in hex; boot the disk.
        [sig, part] if hex(sig, 8) && hex(part, 2) => {
            u8::from_str_radix(part, 16).ok().filter(|n| *n > 0)?;
            Some(format!("mbr:0x{}", sig.to_ascii_lowercase()))
        }
        _ => None,
    }
}

/// `SERIAL port [baud]` for a `ttyS<N>[,<baud>…]` console.
fn serial_directive(console: &str) -> Option<String> {
    let rest = console.strip_prefix("ttyS")?;
    let (port, rest) = match rest.split_once(',') {
        Some((p, r)) => (p, Some(r)),
        None => (rest, None),
    };
    if port.is_empty() || port.len() > 2 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let baud: String = rest
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some(if baud.is_empty() {
        format!("SERIAL {port}")
    } else {
        format!("SERIAL {port} {baud}")
    })
}

/// A machine's file that includes its group's shared entry.
pub(super) fn pointer(head: &[String], include: &str) -> Vec<u8> {
    let mut s = comments(head);
    s.push_str(&format!("INCLUDE {}\n", clean(include)));
    s.into_bytes()
}

/// One whole entry: a machine's, the default, or a group's shared one (whose arguments have
/// no variables: only entries without per-machine values are shared).
pub(super) fn render(head: &[String], boot: &Boot, cfg: &RenderConfig) -> Vec<u8> {
    let mut s = comments(head);
    if let Some(console) = serial(cfg) {
        match serial_directive(&console) {
            // SERIAL must come before every other directive.
            Some(d) => s.push_str(&format!("{d}\n")),
            None => s.push_str(&format!(
                "# serial console {console} is not a ttyS port: no SERIAL directive\n"
            )),
        }
    }
    s.push_str("DEFAULT nmt\nPROMPT 0\nTIMEOUT 0\nLABEL nmt\n");
    match boot {
        Boot::Kernel {
            kernel,
            initrd,
            args,
            ..
        } => {
            let args = words_text(args);
            s.push_str(&format!("  KERNEL {}\n", clean(kernel)));
            if !initrd.is_empty() {
                s.push_str(&format!("  INITRD {}\n", clean(&initrd.join(","))));
            }
            if !args.is_empty() {
                s.push_str(&format!("  APPEND {}\n", clean(&args)));
            }
            s.push_str("  IPAPPEND 2\n");
        }
        Boot::Local {
            chain: Some(chain), ..
        } => {
            s.push_str(&format!("  COM32 chain.c32\n  APPEND {}\n", clean(chain)));
        }
        Boot::Local {
            rootdev: Some(dev),
            chain: None,
        } => {
            s.push_str(&format!(
                "  # root device {} names no BIOS disk for chain.c32: boot the first disk\n",
                clean(dev)
            ));
            s.push_str("  LOCALBOOT 0\n");
        }
        Boot::Local { .. } | Boot::MissingProfile { .. } => {
            s.push_str("  LOCALBOOT 0\n");
        }
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{fixture, mac, text_of};
    use crate::render::{BootKind, RenderConfig, machine_files};

    #[test]
    fn chain_derivation_table() {
        let table: &[(&str, Option<&str>)] = &[
            ("/dev/sda", Some("hd0")),
            ("/dev/sda1", Some("hd0")),
            ("/dev/sdb2", Some("hd1")),
            ("/dev/sdz3", Some("hd25")),
            ("/dev/sdaa1", Some("hd26")),
            ("/dev/sdab12", Some("hd27")),
            ("/dev/vda1", Some("hd0")),
            ("/dev/vdc5", Some("hd2")),
            ("/dev/hda1", Some("hd0")),
            ("/dev/xvdb1", Some("hd1")),
            ("/dev/nvme0n1p2", Some("hd0")),
            ("/dev/nvme1n1p1", Some("hd1")),
            ("/dev/nvme0n1", Some("hd0")),
            ("PARTUUID=0FC63DAF-8483-4772-8E79-3D69D8477DE4", None),
            ("PARTUUID=0b4b11e0-01", Some("mbr:0x0b4b11e0")),
            ("PARTUUID=0b4b11e0-0a", Some("mbr:0x0b4b11e0")),
            ("PARTUUID=0b4b11e0-00", None),
            ("PARTUUID=nonsense", None),
            ("UUID=0b4b-11", None),
            ("LABEL=root", None),
            ("/dev/mapper/vg-root", None),
            ("/dev/disk/by-uuid/1234", None),
            ("/dev/md0", None),
            ("/dev/sda0", None),
            ("/dev/sda01", None),
            ("/dev/sd1", None),
            ("/dev/sdA1", None),
            ("/dev/sda1x", None),
            ("/dev/nvme0n2p1", None),
            ("/dev/nvme0n1p", None),
            ("/dev/nvme0n1p0", None),
            ("/dev/nvmen1p1", None),
            ("/dev/sdaaaa1", None),
            ("sda1", None),
            ("", None),
        ];
        for (dev, want) in table {
            assert_eq!(chain_arg(dev).as_deref(), *want, "{dev}");
        }
    }

    #[test]
    fn serial_directives() {
        assert_eq!(serial_directive("ttyS0,115200").unwrap(), "SERIAL 0 115200");
        assert_eq!(serial_directive("ttyS1,9600n8").unwrap(), "SERIAL 1 9600");
        assert_eq!(serial_directive("ttyS2").unwrap(), "SERIAL 2");
        assert_eq!(serial_directive("ttyAMA0,115200"), None);
        assert_eq!(serial_directive("ttyS,115200"), None);
    }

    fn pxe(state: &crate::State, m: &str, cfg: &RenderConfig) -> String {
        let files = machine_files(state, &mac(m), cfg);
        text_of(&files[0])
    }

    #[test]
    fn kernel_entry() {
        let (state, cfg) = fixture();
        let s = pxe(&state, "52:54:00:00:00:01", &cfg);
        let e = crate::render::boot_entry(&state, &mac("52:54:00:00:00:01"), &cfg).unwrap();
        let BootKind::Kernel {
            kernel,
            initrd,
            args,
            ..
        } = &e.kind
        else {
            panic!("{e:?}")
        };
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            "# generated by nmt for machine 52:54:00:00:00:01 (node01)"
        );
        assert_eq!(lines[1], "# policy install:default (from group lab)");
        assert_eq!(lines[2], "# boots profile default");
        assert_eq!(lines[3], "# do not edit: use `nmt policy`");
        assert_eq!(
            &lines[4..],
            &[
                "DEFAULT nmt",
                "PROMPT 0",
                "TIMEOUT 0",
                "LABEL nmt",
                &format!("  KERNEL {kernel}"),
                &format!("  INITRD {}", initrd.join(",")),
                &format!("  APPEND {args}"),
                "  IPAPPEND 2",
            ]
        );
        assert!(args.contains("/v1/answer/52-54-00-00-00-01/"), "{args}");
        assert!(!s.contains("SERIAL"));
    }

    #[test]
    fn several_initrds_are_comma_joined_and_urls_pass_as_they_are() {
        let (state, cfg) = fixture();
        let s = pxe(&state, "52:54:00:00:00:08", &cfg);
        assert!(
            s.contains("\n  KERNEL http://10.9.0.1:8080/memtest/memtest.bin\n"),
            "{s}"
        );
        assert!(
            s.contains("\n  INITRD http://10.9.0.1:8080/memtest/a.img,memtest/b.img\n"),
            "{s}"
        );
        assert!(
            s.contains("\n  APPEND nmt.name=memtest8 ds=nocloud-net;s=http://127.0.0.1:8017/nocloud/52:54:00:00:00:08/\n"),
            "{s}"
        );
    }

    #[test]
    fn local_boot_chains_to_the_mapped_root_device() {
        let (state, _) = fixture();
        let s = pxe(&state, "52:54:00:00:00:02", &RenderConfig::default());
        assert!(
            s.contains("# policy localboot (from the machine's own policy)\n"),
            "{s}"
        );
        assert!(
            s.contains("# boots the local disk (root device /dev/nvme0n1p2)\n"),
            "{s}"
        );
        assert!(
            s.ends_with("LABEL nmt\n  COM32 chain.c32\n  APPEND hd0\n"),
            "{s}"
        );
    }

    #[test]
    fn local_boot_without_a_bios_disk_uses_localboot() {
        let (state, _) = fixture();
        // node12 maps LABEL=root, which chain.c32 cannot find; with its own policy its file
        // holds the whole entry and says why.
        let mut g = crate::render::tests::Given { state, seq: 1000 };
        g.policy("52:54:00:00:00:0c", "localboot", false);
        let s = pxe(&g.state, "52:54:00:00:00:0c", &RenderConfig::default());
        assert!(
            s.contains("  # root device LABEL=root names no BIOS disk"),
            "{s}"
        );
        assert!(s.ends_with("  LOCALBOOT 0\n"), "{s}");
        assert!(!s.contains("chain.c32\n"), "{s}");
        // No root device at all, with its own policy: plain LOCALBOOT.
        g.policy("52:54:00:00:00:0f", "localboot", false);
        let s = pxe(&g.state, "52:54:00:00:00:0f", &RenderConfig::default());
        assert!(s.ends_with("LABEL nmt\n  LOCALBOOT 0\n"), "{s}");
    }

    #[test]
    fn a_following_machine_includes_its_groups_entry_for_its_disk() {
        let (state, cfg) = fixture();
        // node12 (LABEL=root) and plain15 (no root device) follow group odd (localboot).
        for m in ["52:54:00:00:00:0c", "52:54:00:00:00:0f"] {
            let s = pxe(&state, m, &cfg);
            let lines: Vec<&str> = s.lines().collect();
            assert!(lines[0].starts_with(&format!("# generated by nmt for machine {m} (")));
            assert!(
                lines[0].ends_with("): do not edit, use `nmt policy`"),
                "{s}"
            );
            assert_eq!(
                &lines[1..],
                [
                    "# follows group odd; its entry is in pxelinux.cfg/nmt/odd@local.cfg",
                    "INCLUDE pxelinux.cfg/nmt/odd@local.cfg",
                ],
                "{s}"
            );
        }
        let files = crate::render::group_files(&state, "odd", &cfg);
        let shared = files
            .iter()
            .find(|f| {
                f.target == crate::render::Target::Tftp("pxelinux.cfg/nmt/odd@local.cfg".into())
            })
            .unwrap();
        let s = text_of(shared);
        assert_eq!(
            s,
            "# generated by nmt for group odd (policy localboot, no BIOS disk mapped): do not \
             edit, use `nmt policy`\n\
             # the entry of the group's members that follow its policy and have no root device \
             that chain.c32 can name: their own files include this one\n\
             # boots the first local disk (LOCALBOOT 0)\n\
             DEFAULT nmt\nPROMPT 0\nTIMEOUT 0\nLABEL nmt\n  LOCALBOOT 0\n"
        );
    }

    #[test]
    fn shared_entries_carry_the_serial_directive_first() {
        let (state, _) = fixture();
        let cfg = RenderConfig {
            serial_console: Some("ttyS0,115200".into()),
            ..RenderConfig::default()
        };
        // thin6 follows ltsp-lab: its own file only includes, the shared one has SERIAL.
        let s = pxe(&state, "52:54:00:00:00:06", &cfg);
        assert!(!s.contains("SERIAL"), "{s}");
        assert!(
            s.ends_with("\nINCLUDE pxelinux.cfg/nmt/ltsp-lab@local.cfg\n"),
            "{s}"
        );
        let files = crate::render::group_files(&state, "ltsp-lab", &cfg);
        let s = text_of(&files[2]);
        let first_directive = s.lines().find(|l| !l.starts_with('#')).unwrap();
        assert_eq!(first_directive, "SERIAL 0 115200", "{s}");
        assert!(
            s.contains("\n  APPEND ip=dhcp root=/dev/nfs nfsroot=/srv/ltsp "),
            "{s}"
        );
        assert!(
            s.ends_with(" console=tty0 console=ttyS0,115200\n  IPAPPEND 2\n"),
            "{s}"
        );
    }

    #[test]
    fn missing_profile_boots_locally_and_says_why() {
        let (state, _) = fixture();
        let s = pxe(&state, "52:54:00:00:00:09", &RenderConfig::default());
        assert!(s.contains("# policy install:vanished (from the machine's own policy)\n"));
        assert!(
            s.contains(
                "# profile vanished does not exist (any more): boots the local disk instead"
            ),
            "{s}"
        );
        assert!(s.ends_with("LABEL nmt\n  LOCALBOOT 0\n"), "{s}");
    }

    #[test]
    fn serial_console_adds_serial_and_console_args() {
        let (state, _) = fixture();
        let cfg = RenderConfig {
            serial_console: Some("ttyS0,115200".into()),
            ..RenderConfig::default()
        };
        let s = pxe(&state, "52:54:00:00:00:01", &cfg);
        let first_directive = s.lines().find(|l| !l.starts_with('#')).unwrap();
        assert_eq!(first_directive, "SERIAL 0 115200");
        let append = s.lines().find(|l| l.starts_with("  APPEND ")).unwrap();
        assert!(
            append.ends_with(" console=tty0 console=ttyS0,115200"),
            "{append}"
        );
        // Local boot has no kernel line, but still the SERIAL directive.
        let s = pxe(&state, "52:54:00:00:00:02", &cfg);
        assert!(s.contains("\nSERIAL 0 115200\nDEFAULT nmt\n"), "{s}");
    }
}
