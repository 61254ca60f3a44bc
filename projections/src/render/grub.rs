//! GRUB (UEFI) boot files, `grub/grub.cfg-01-<mac>`, `grub/grub.cfg` and a group's shared
//! `grub/nmt/<group>.cfg`: one menu entry, every argument quoted GRUB-style, URLs turned into
//! GRUB devices, and local boot as a chainload of the installed system's own EFI loader.
//! Nothing here knows pxelinux or iPXE.
//!
//! A machine that follows its group gets a file that sets `nmt_mac`, `nmt_name`, `nmt_token`,
//! `nmt_answer_url` and `nmt_report_url` and `source`s the group's file, which uses them in
//! double-quoted arguments: `source` runs a file in the same context, and a menu entry sees
//! the variables set outside it (only a submenu opens a new context).

use super::{Boot, MachineVar, Piece, Policy, clean, comments};

/// The EFI loaders a local boot tries, in order: shims first (Secure Boot), then GRUB, then
/// the removable-media fallback path.
const EFI_LOADERS: &[&str] = &[
    "/EFI/debian/shimx64.efi",
    "/EFI/ubuntu/shimx64.efi",
    "/EFI/redhat/shimx64.efi",
    "/EFI/rocky/shimx64.efi",
    "/EFI/fedora/shimx64.efi",
    "/EFI/debian/grubx64.efi",
    "/EFI/ubuntu/grubx64.efi",
    "/EFI/BOOT/BOOTX64.EFI",
];

/// A single-quoted GRUB word: nothing inside is special; a `'` is written `'\''`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in clean(s).chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A double-quoted GRUB word from text and variables: `$`, `\"` and `\\` in the text are
/// escaped with a backslash, and each variable is `${name}`, expanded as one word however it
/// reads.
fn dquote(pieces: &[Piece]) -> String {
    let mut out = String::from("\"");
    for p in pieces {
        match p {
            Piece::Lit(s) => {
                for c in clean(s).chars() {
                    if matches!(c, '$' | '"' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            Piece::Var(v) => {
                out.push_str("${");
                out.push_str(v.var());
                out.push('}');
            }
        }
    }
    out.push('"');
    out
}

/// A kernel argument: single-quoted as it is, or double-quoted when it holds variables.
fn arg(word: &[Piece]) -> String {
    let mut text = String::new();
    for p in word {
        match p {
            Piece::Lit(s) => text.push_str(s),
            Piece::Var(_) => return dquote(word),
        }
    }
    quote(&text)
}

/// A GRUB word, quoted only when it holds anything beyond plain path characters.
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'.' | b'_' | b'-' | b'+' | b'~' | b':' | b',' | b'(' | b')'
                )
        });
    if plain { s.to_string() } else { quote(s) }
}

/// A boot file's path as GRUB reads it: `/path` under the TFTP root, or `(http,host)/path`
/// for a URL. The second value is a note for a comment when the URL cannot work as written.
fn path(p: &str) -> (String, Option<String>) {
    for (scheme, dev, note) in [
        ("http://", "http", None),
        ("tftp://", "tftp", None),
        (
            "https://",
            "http",
            Some("GRUB has no HTTPS: this fetches over plain HTTP"),
        ),
    ] {
        if let Some(rest) = p.strip_prefix(scheme) {
            let (host, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, "/"),
            };
            return (
                word(&format!("({dev},{host}){path}")),
                note.map(|n| format!("{n}: {}", clean(p))),
            );
        }
    }
    let abs = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    };
    (word(&abs), None)
}

fn local_boot(s: &mut String, rootdev: Option<&str>) {
    match rootdev {
        Some(d) => s.push_str(&format!(
            "  # root device {}: boot the installed system's own EFI loader\n",
            clean(d)
        )),
        None => s.push_str("  # boot the installed system's own EFI loader\n"),
    }
    // A network-booted GRUB loads no partition map or file system module by itself:
    // without these, `search` sees only whole disks (found in the netboot lab under OVMF).
    s.push_str("  insmod part_gpt\n  insmod part_msdos\n  insmod fat\n  insmod chain\n");
    s.push_str(&format!("  for f in {}; do\n", EFI_LOADERS.join(" ")));
    // `root` itself, not another variable: GRUB's chainloader hands the loaded image the
    // device of `root`, and a network-booted GRUB's root is the network. Debian's
    // grubx64.efi, given the network's device path, looks for its config on a disk it cannot
    // name and stops at `grub rescue>` (found with Debian's real installer under OVMF).
    s.push_str("    if search --no-floppy --set=root --file $f; then\n");
    s.push_str("      chainloader $f\n      boot\n    fi\n  done\n");
    s.push_str("  # none found: fall back to the firmware's next boot option\n  exit 1\n");
}

/// A machine's file that sets its values and sources its group's shared entry.
pub(super) fn pointer(head: &[String], values: &[(MachineVar, String)], source: &str) -> Vec<u8> {
    let mut s = comments(head);
    for (v, value) in values {
        s.push_str(&format!("set {}={}\n", v.var(), quote(value)));
    }
    s.push_str(&format!("source {}\n", word(source)));
    s.into_bytes()
}

/// One whole entry: a machine's, the default, or a group's shared one.
pub(super) fn render(head: &[String], policy: &Policy, boot: &Boot) -> Vec<u8> {
    let mut s = comments(head);
    s.push_str("set default=0\nset timeout=0\n");
    s.push_str(&format!("menuentry {} {{\n", quote(&policy.to_string())));
    match boot {
        Boot::Kernel {
            kernel,
            initrd,
            args,
            ..
        } => {
            let mut notes = Vec::new();
            let (k, note) = path(kernel);
            notes.extend(note);
            let mut linux = format!("  linux {k}");
            for a in args {
                linux.push(' ');
                linux.push_str(&arg(a));
            }
            let mut initrds = String::new();
            for i in initrd {
                let (p, note) = path(i);
                notes.extend(note);
                initrds.push(' ');
                initrds.push_str(&p);
            }
            for n in notes {
                s.push_str(&format!("  # {n}\n"));
            }
            s.push_str(&linux);
            s.push('\n');
            if !initrds.is_empty() {
                s.push_str(&format!("  initrd{initrds}\n"));
            }
        }
        Boot::Local { rootdev, .. } => local_boot(&mut s, rootdev.as_deref()),
        Boot::MissingProfile { profile } => {
            s.push_str(&format!(
                "  # profile {} does not exist: boot the local disk instead\n",
                clean(profile)
            ));
            local_boot(&mut s, None);
        }
    }
    s.push_str("}\n");
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{fixture, mac, text_of};
    use crate::render::{RenderConfig, machine_files};

    fn grub(state: &crate::State, m: &str) -> String {
        let files = machine_files(state, &mac(m), &RenderConfig::default());
        assert_eq!(
            files[1].target,
            crate::render::Target::Tftp(format!("grub/grub.cfg-01-{}", mac(m).dashed()))
        );
        text_of(&files[1])
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a"), "'a'");
        assert_eq!(quote("ds=nocloud-net;s=x"), "'ds=nocloud-net;s=x'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("a\nb"), "'a?b'");
        assert_eq!(word("/a/b.gz"), "/a/b.gz");
        assert_eq!(word("/a b"), "'/a b'");
        assert_eq!(word("/a;b"), "'/a;b'");
        assert_eq!(word("$x"), "'$x'");
    }

    #[test]
    fn double_quoted_words_with_variables() {
        use crate::render::{MachineVar, Piece};
        assert_eq!(
            arg(&[
                Piece::Lit("nmt.token=".into()),
                Piece::Var(MachineVar::Token)
            ]),
            "\"nmt.token=${nmt_token}\""
        );
        assert_eq!(
            arg(&[
                Piece::Var(MachineVar::AnswerUrl),
                Piece::Lit("/a$b\"c\\d'e".into()),
                Piece::Var(MachineVar::Name),
            ]),
            "\"${nmt_answer_url}/a\\$b\\\"c\\\\d'e${nmt_name}\""
        );
        assert_eq!(arg(&[Piece::Lit("a;b".into())]), "'a;b'");
        assert_eq!(
            arg(&[Piece::Lit("x\ny".into()), Piece::Var(MachineVar::Mac)]),
            "\"x?y${nmt_mac}\""
        );
    }

    #[test]
    fn a_following_machine_sets_its_values_and_sources_its_group() {
        let (state, _) = fixture();
        // node01 follows lab.
        let s = grub(&state, "52:54:00:00:00:01");
        let t = crate::report_token(crate::render::tests::SITE_KEY, &mac("52:54:00:00:00:01"), 0);
        assert_eq!(
            s,
            format!(
                "# generated by nmt for machine 52:54:00:00:00:01 (node01): do not edit, use `nmt policy`\n\
                 # follows group lab; its entry is in /grub/nmt/lab.cfg, which uses the values set here\n\
                 set nmt_mac='52:54:00:00:00:01'\n\
                 set nmt_name='node01'\n\
                 set nmt_token='{t}'\n\
                 set nmt_answer_url='http://127.0.0.1:8017/v1/answer/52-54-00-00-00-01/{t}'\n\
                 set nmt_report_url='http://127.0.0.1:8017/v1/report/52-54-00-00-00-01/{t}'\n\
                 source /grub/nmt/lab.cfg\n"
            )
        );
        // Unnamed: the name is the MAC.
        let s = grub(&state, "52:54:00:00:00:05");
        assert!(s.contains("\nset nmt_name='52:54:00:00:00:05'\n"), "{s}");
        assert!(s.ends_with("\nsource /grub/nmt/unknown.cfg\n"), "{s}");
    }

    #[test]
    fn shared_local_boot_is_the_efi_loop() {
        let (state, _) = fixture();
        let files = crate::render::group_files(&state, "odd", &RenderConfig::default());
        assert_eq!(
            files[0].target,
            crate::render::Target::Tftp("grub/nmt/odd.cfg".into())
        );
        let s = text_of(&files[0]);
        assert!(
            s.contains("menuentry 'localboot' {\n  # boot the installed system's own EFI loader\n"),
            "{s}"
        );
        assert!(
            s.contains("search --no-floppy --set=root --file $f; then\n      chainloader $f\n"),
            "{s}"
        );
        assert!(s.ends_with("  exit 1\n}\n"), "{s}");
    }

    #[test]
    fn urls_become_grub_devices() {
        assert_eq!(path("debian/linux").0, "/debian/linux");
        assert_eq!(path("/debian/linux").0, "/debian/linux");
        assert_eq!(
            path("http://10.0.0.1:8080/boot/vmlinuz"),
            ("(http,10.0.0.1:8080)/boot/vmlinuz".to_string(), None)
        );
        assert_eq!(path("tftp://10.0.0.2/vmlinuz").0, "(tftp,10.0.0.2)/vmlinuz");
        let (p, note) = path("https://boot.example.org/vmlinuz");
        assert_eq!(p, "(http,boot.example.org)/vmlinuz");
        assert!(note.unwrap().contains("GRUB has no HTTPS"));
    }

    #[test]
    fn kernel_entry_quotes_every_argument() {
        let (state, _) = fixture();
        let s = grub(&state, "52:54:00:00:00:0a");
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            "# generated by nmt for machine 52:54:00:00:00:0a (ubuntu10)"
        );
        assert!(
            s.contains("\nset default=0\nset timeout=0\nmenuentry 'install:ubuntu' {\n"),
            "{s}"
        );
        let p = state.profile("ubuntu").unwrap();
        let linux = lines.iter().find(|l| l.starts_with("  linux ")).unwrap();
        let mut words = linux.split(' ').skip(3);
        assert_eq!(words.next().unwrap(), format!("/{}", p.kernel));
        for w in words {
            assert!(
                w.len() > 2 && w.starts_with('\'') && w.ends_with('\''),
                "{w}"
            );
        }
        let initrds: Vec<String> = p.initrd.iter().map(|i| format!("/{i}")).collect();
        assert!(
            s.ends_with(&format!("\n  initrd {}\n}}\n", initrds.join(" "))),
            "{s}"
        );
    }

    #[test]
    fn http_kernels_several_initrds_and_semicolons() {
        let (state, _) = fixture();
        // memtest8 boots custom:memtest, whose kernel and first initrd are http:// URLs.
        let s = grub(&state, "52:54:00:00:00:08");
        assert!(
            s.contains(
                "\n  linux (http,10.9.0.1:8080)/memtest/memtest.bin 'nmt.name=memtest8' \
                 'ds=nocloud-net;s=http://127.0.0.1:8017/nocloud/52:54:00:00:00:08/'\n"
            ),
            "{s}"
        );
        assert!(
            s.contains("\n  initrd (http,10.9.0.1:8080)/memtest/a.img /memtest/b.img\n"),
            "{s}"
        );
    }

    #[test]
    fn local_boot_chainloads_the_installed_loader() {
        let (state, _) = fixture();
        let s = grub(&state, "52:54:00:00:00:02");
        assert!(s.contains("menuentry 'localboot' {\n  # root device /dev/nvme0n1p2: boot the installed system's own EFI loader\n"), "{s}");
        assert!(
            s.contains("  for f in /EFI/debian/shimx64.efi /EFI/ubuntu/shimx64.efi "),
            "{s}"
        );
        assert!(
            s.contains(
                "  insmod part_gpt\n  insmod part_msdos\n  insmod fat\n  insmod chain\n  for f in "
            ),
            "{s}"
        );
        assert!(s.contains(" /EFI/BOOT/BOOTX64.EFI; do\n    if search --no-floppy --set=root --file $f; then\n      chainloader $f\n      boot\n    fi\n  done\n"), "{s}");
        assert!(s.ends_with("  exit 1\n}\n"), "{s}");
    }

    #[test]
    fn missing_profile_boots_locally() {
        let (state, _) = fixture();
        let s = grub(&state, "52:54:00:00:00:09");
        assert!(s.contains("menuentry 'install:vanished' {\n  # profile vanished does not exist: boot the local disk instead\n"), "{s}");
        assert!(s.contains("chainloader $f"));
        assert!(!s.contains("  linux "));
    }
}
