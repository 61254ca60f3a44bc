//! iPXE scripts: `ipxe/01-<mac>.ipxe`, `ipxe/default.ipxe`, a group's shared
//! `ipxe/nmt/<group>.ipxe`, and `ipxe/boot.ipxe`, the script DHCP hands iPXE clients, which
//! chains to the machine's own script or else the default one. Paths are absolute from the
//! TFTP root, URLs pass as they are; nothing here knows GRUB.
//!
//! A machine that follows its group gets a script that sets `nmt_mac`, `nmt_name`,
//! `nmt_token`, `nmt_answer_url` and `nmt_report_url` and chains to the group's script (a
//! relative path, resolved against its own URL), which uses them as `${nmt_…}`: iPXE
//! settings are global, and a script's lines are expanded before they are split into words.

use super::{Boot, MachineVar, Piece, clean, clean_word, comments};

/// `ipxe/boot.ipxe`.
pub(super) fn boot_script() -> Vec<u8> {
    format!(
        "#!ipxe\n\
         # {}: the iPXE entry point; runs this machine's script, or else the default one\n\
         # do not edit: nmt rewrites it\n\
         chain --autofree 01-${{mac:hexhyp}}.ipxe || chain --autofree default.ipxe\n",
        super::MARKER
    )
    .into_bytes()
}

/// Whether iPXE reads a kernel argument as the word it is: it splits on white space, ends the
/// command at a `||`, `&&` or `;` token, starts a comment at a `#` token, and expands `${…}`.
fn token_ok(t: &str) -> bool {
    !matches!(t, "||" | "&&" | ";") && !t.starts_with('#') && !t.contains("${")
}

/// A kernel argument as iPXE should read it, or `None` when it would read it as script syntax.
/// Variables are `${nmt_…}`; text next to them may hold no `$` (it could join a variable).
fn arg(word: &[Piece]) -> Option<String> {
    let vars = word.iter().any(|p| matches!(p, Piece::Var(_)));
    let mut out = String::new();
    for p in word {
        match p {
            Piece::Lit(s) => {
                let s = clean(s);
                if vars && s.contains('$') {
                    return None;
                }
                out.push_str(&s);
            }
            Piece::Var(v) => {
                out.push_str("${");
                out.push_str(v.var());
                out.push('}');
            }
        }
    }
    let ok = if vars {
        !out.starts_with('#')
    } else {
        token_ok(&out)
    };
    ok.then_some(out)
}

/// A per-machine value as `set` stores it and a shared script expands it: one word that iPXE
/// reads as it is wherever it lands (no `$`, no leading `#`, not `||`, `&&` or `;`). The
/// values are MACs, host names, hex tokens and URLs, which need none of this; a corrupt one
/// gets `?` in place of what would be misread.
fn value(v: &str) -> String {
    let v = clean_word(v).replace('$', "?");
    if token_ok(&v) {
        v
    } else {
        v.replace(['#', '|', '&', ';'], "?")
    }
}

/// A machine's script that sets its values and chains to its group's shared script.
pub(super) fn pointer(head: &[String], values: &[(MachineVar, String)], chain: &str) -> Vec<u8> {
    let mut s = String::from("#!ipxe\n");
    s.push_str(&comments(head));
    for (v, val) in values {
        s.push_str(&format!("set {} {}\n", v.var(), value(val)));
    }
    s.push_str(&format!(
        "chain --autofree {} || goto nmt_failed\n",
        clean_word(chain)
    ));
    s.push_str(":nmt_failed\n");
    s.push_str(FAILED_MACHINE);
    s.into_bytes()
}

/// How a machine's (or its group's) script ends on failure.
const FAILED_MACHINE: &str =
    "# exit 0, not 1: boot.ipxe must not fall through to the default entry\nexit 0\n";

/// A boot file's path as iPXE fetches it: absolute from the TFTP root, or the URL.
fn path(p: &str) -> String {
    let p = clean_word(p);
    if p.contains("://") || p.starts_with('/') {
        p
    } else {
        format!("/{p}")
    }
}

/// One whole entry. A machine's own script (and its group's shared one, which it chains to)
/// ends a failure with `exit 0`, so that `boot.ipxe` does not go on to the default entry
/// (which may be an installer) when, say, the local disk or a kernel download fails; the
/// default script just fails.
pub(super) fn render(head: &[String], boot: &Boot, is_default: bool) -> Vec<u8> {
    let mut s = String::from("#!ipxe\n");
    s.push_str(&comments(head));
    match boot {
        Boot::Kernel {
            kernel,
            initrd,
            args,
            ..
        } => {
            let mut line = format!("kernel {}", path(kernel));
            for i in initrd {
                let p = path(i);
                let base = p.rsplit('/').next().unwrap_or(&p);
                line.push_str(&format!(" initrd={base}"));
            }
            let mut dropped = 0usize;
            for a in args {
                match arg(a) {
                    Some(t) => {
                        line.push(' ');
                        line.push_str(&t);
                    }
                    None => dropped += 1,
                }
            }
            if dropped > 0 {
                s.push_str(&format!(
                    "# {dropped} argument(s) left out: iPXE would read them as script syntax\n"
                ));
            }
            s.push_str(&format!("{line} || goto nmt_failed\n"));
            for i in initrd {
                s.push_str(&format!("initrd {} || goto nmt_failed\n", path(i)));
            }
            s.push_str("boot || goto nmt_failed\n");
        }
        Boot::Local { .. } | Boot::MissingProfile { .. } => {
            s.push_str("sanboot --no-describe --drive 0x80 || goto nmt_failed\n");
        }
    }
    s.push_str(":nmt_failed\n");
    if is_default {
        s.push_str("exit 1\n");
    } else {
        s.push_str(FAILED_MACHINE);
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{fixture, mac, text_of};
    use crate::render::{BootKind, RenderConfig, Target, default_files, machine_files};

    fn ipxe(state: &crate::State, m: &str) -> String {
        let cfg = RenderConfig {
            next_server: Some([10, 9, 0, 1].into()),
            ..RenderConfig::default()
        };
        let files = machine_files(state, &mac(m), &cfg);
        assert_eq!(
            files[2].target,
            Target::Tftp(format!("ipxe/01-{}.ipxe", mac(m).dashed()))
        );
        text_of(&files[2])
    }

    #[test]
    fn boot_script_chains_per_machine_then_default() {
        let (state, _) = fixture();
        let files = default_files(&state, &RenderConfig::default());
        let boot = files
            .iter()
            .find(|f| f.target == Target::Tftp("ipxe/boot.ipxe".into()))
            .unwrap();
        let s = text_of(boot);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "#!ipxe");
        assert!(lines[1].contains("generated by nmt"));
        assert_eq!(
            *lines.last().unwrap(),
            "chain --autofree 01-${mac:hexhyp}.ipxe || chain --autofree default.ipxe"
        );
    }

    #[test]
    fn kernel_entry() {
        let (state, cfg) = fixture();
        // thin6 follows ltsp-lab: the kernel lines are in the group's shared script.
        let files = crate::render::group_files(&state, "ltsp-lab", &cfg);
        assert_eq!(
            files[1].target,
            Target::Tftp("ipxe/nmt/ltsp-lab.ipxe".into())
        );
        let s = text_of(&files[1]);
        let e = crate::render::boot_entry(&state, &mac("52:54:00:00:00:06"), &cfg).unwrap();
        let BootKind::Kernel {
            kernel,
            initrd,
            args,
            ..
        } = &e.kind
        else {
            panic!("{e:?}")
        };
        assert!(initrd.len() >= 2, "{initrd:?}");
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "#!ipxe");
        assert_eq!(
            lines[1],
            "# generated by nmt for group ltsp-lab (policy ltsp): do not edit, use `nmt policy`"
        );
        let names: Vec<String> = initrd
            .iter()
            .map(|i| format!("initrd={}", i.rsplit('/').next().unwrap()))
            .collect();
        let mut want = vec![format!(
            "kernel /{kernel} {} {args} || goto nmt_failed",
            names.join(" ")
        )];
        want.extend(
            initrd
                .iter()
                .map(|i| format!("initrd /{i} || goto nmt_failed")),
        );
        want.extend(
            [
                "boot || goto nmt_failed",
                ":nmt_failed",
                "# exit 0, not 1: boot.ipxe must not fall through to the default entry",
                "exit 0",
            ]
            .map(String::from),
        );
        assert_eq!(&lines[lines.len() - want.len()..], want.as_slice(), "{s}");
    }

    #[test]
    fn a_following_machine_sets_its_values_and_chains_to_its_group() {
        let (state, _) = fixture();
        let s = ipxe(&state, "52:54:00:00:00:06");
        let t = crate::report_token(crate::render::tests::SITE_KEY, &mac("52:54:00:00:00:06"), 0);
        assert_eq!(
            s,
            format!(
                "#!ipxe\n\
                 # generated by nmt for machine 52:54:00:00:00:06 (thin6): do not edit, use `nmt policy`\n\
                 # follows group ltsp-lab; its entry is in ipxe/nmt/ltsp-lab.ipxe, which uses the values set here\n\
                 set nmt_mac 52:54:00:00:00:06\n\
                 set nmt_name thin6\n\
                 set nmt_token {t}\n\
                 set nmt_answer_url http://127.0.0.1:8017/v1/answer/52-54-00-00-00-06/{t}\n\
                 set nmt_report_url http://127.0.0.1:8017/v1/report/52-54-00-00-00-06/{t}\n\
                 chain --autofree nmt/ltsp-lab.ipxe || goto nmt_failed\n\
                 :nmt_failed\n\
                 # exit 0, not 1: boot.ipxe must not fall through to the default entry\n\
                 exit 0\n"
            )
        );
    }

    #[test]
    fn shared_scripts_use_the_per_machine_settings() {
        let (state, cfg) = fixture();
        // Group lab installs with the default profile, which uses the answer and report
        // URLs and the token.
        let files = crate::render::group_files(&state, "lab", &cfg);
        let s = text_of(&files[1]);
        let kernel = s.lines().find(|l| l.starts_with("kernel ")).unwrap();
        assert!(
            kernel.contains(
                " url=${nmt_answer_url} interface=auto netcfg/dhcp_timeout=60 \
                 nmt.report=${nmt_report_url} nmt.token=${nmt_token} || goto nmt_failed"
            ),
            "{kernel}"
        );
        assert!(!s.contains("/v1/answer/"), "{s}");
    }

    #[test]
    fn variables_and_values_stay_words() {
        use crate::render::{MachineVar, Piece};
        let w = |p: Vec<Piece>| arg(&p);
        assert_eq!(
            w(vec![Piece::Lit("a=".into()), Piece::Var(MachineVar::Mac)]).unwrap(),
            "a=${nmt_mac}"
        );
        assert_eq!(
            w(vec![Piece::Var(MachineVar::Name), Piece::Lit("/x".into())]).unwrap(),
            "${nmt_name}/x"
        );
        assert_eq!(
            w(vec![Piece::Lit("#a".into()), Piece::Var(MachineVar::Mac)]),
            None
        );
        assert_eq!(
            w(vec![Piece::Lit("a$".into()), Piece::Var(MachineVar::Mac)]),
            None
        );
        assert_eq!(w(vec![Piece::Lit("||".into())]), None);
        assert_eq!(value("node01"), "node01");
        assert_eq!(value("http://x/a#b"), "http://x/a#b");
        assert_eq!(value("a${b}"), "a?{b}");
        assert_eq!(value("#x"), "?x");
        assert_eq!(value("||"), "??");
        assert_eq!(value("a b\nc"), "a?b?c");
    }

    #[test]
    fn urls_pass_as_they_are() {
        let (state, _) = fixture();
        let s = ipxe(&state, "52:54:00:00:00:08");
        assert!(
            s.contains(
                "\nkernel http://10.9.0.1:8080/memtest/memtest.bin initrd=a.img initrd=b.img \
                 nmt.name=memtest8 ds=nocloud-net;s=http://127.0.0.1:8017/nocloud/52:54:00:00:00:08/ \
                 || goto nmt_failed\n"
            ),
            "{s}"
        );
        assert!(
            s.contains(
                "\ninitrd http://10.9.0.1:8080/memtest/a.img || goto nmt_failed\n\
                 initrd /memtest/b.img || goto nmt_failed\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn local_boot() {
        let (state, _) = fixture();
        let s = ipxe(&state, "52:54:00:00:00:02");
        assert!(
            s.contains("\nsanboot --no-describe --drive 0x80 || goto nmt_failed\n:nmt_failed\n"),
            "{s}"
        );
        let d = default_files(&state, &RenderConfig::default());
        let s = text_of(&d[2]);
        assert_eq!(d[2].target, Target::Tftp("ipxe/default.ipxe".into()));
        assert!(s.ends_with("\n:nmt_failed\nexit 1\n"), "{s}");
    }

    #[test]
    fn script_syntax_in_arguments_is_left_out() {
        assert!(token_ok("ds=nocloud-net;s=http://x/"));
        for bad in [";", "||", "&&", "#x", "a${net0/ip}"] {
            assert!(!token_ok(bad), "{bad}");
        }
    }
}
