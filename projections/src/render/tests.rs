//! Tests across every renderer, and the fixture inventory the per-format tests share: every
//! policy kind, a one-shot override, a missing profile, unnamed and only-discovered machines,
//! and valid names that some formats would misread.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use jiff::Timestamp;

use super::*;
use crate::{Envelope, Event, Group, Profile, ProfileKind};

pub(crate) fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

pub(crate) fn text_of(f: &File) -> String {
    String::from_utf8(f.bytes.clone()).expect("generated files are UTF-8")
}

pub(crate) const SITE_KEY: &str = "00112233445566778899aabbccddeeff";

/// Folds events through `State::apply`, numbering them.
pub(crate) struct Given {
    pub state: State,
    pub seq: u64,
}

impl Given {
    pub fn new() -> Self {
        Given {
            state: State::new(),
            seq: 0,
        }
    }

    pub fn ev(&mut self, event: Event) -> &mut Self {
        self.seq += 1;
        self.state.apply(&Envelope {
            seq: self.seq,
            v: 1,
            recorded_at: Timestamp::UNIX_EPOCH,
            observed_at: Timestamp::UNIX_EPOCH,
            actor: "test".into(),
            source: None,
            event,
        });
        self
    }

    pub fn register(
        &mut self,
        m: &str,
        name: Option<&str>,
        group: Option<&str>,
        ip: Option<&str>,
    ) -> &mut Self {
        self.ev(Event::MachineRegistered {
            mac: mac(m),
            name: name.map(Into::into),
            group: group.map(Into::into),
            ip: ip.map(|s| s.parse::<Ipv4Addr>().unwrap()),
        })
    }

    pub fn policy(&mut self, m: &str, p: &str, once: bool) -> &mut Self {
        self.ev(Event::MachinePolicySet {
            mac: mac(m),
            policy: Some(p.parse().unwrap()),
            once,
        })
    }

    pub fn rootdev(&mut self, m: &str, d: &str) -> &mut Self {
        self.ev(Event::RootDeviceSet {
            mac: mac(m),
            device: d.into(),
        })
    }

    pub fn group(&mut self, g: &str, p: &str) -> &mut Self {
        self.ev(Event::GroupCreated {
            group: g.into(),
            policy: p.parse().unwrap(),
        })
    }
}

fn memtest() -> Profile {
    Profile {
        name: "memtest".into(),
        kind: ProfileKind::Custom,
        kernel: "http://10.9.0.1:8080/memtest/memtest.bin".into(),
        initrd: vec![
            "http://10.9.0.1:8080/memtest/a.img".into(),
            "memtest/b.img".into(),
        ],
        args: "nmt.name={name} ds=nocloud-net;s={server}/nocloud/{mac}/".into(),
        answer: None,
        network_console: false,
        preseed: None,
    }
}

/// A profile whose arguments use every placeholder.
fn allvars() -> Profile {
    Profile {
        name: "allvars".into(),
        kind: ProfileKind::Custom,
        kernel: "allvars/vmlinuz".into(),
        initrd: vec![],
        args: "m={mac} n={name} t={token} s={server} a={answer_url} r={report_url} i={image} \
               f={nfsroot} p={profile} x={tftp_server}"
            .into(),
        answer: None,
        network_console: false,
        preseed: None,
    }
}

/// The shared inventory (see the module doc) and a config with a next-server.
///
/// | MAC | name | group | policy |
/// |---|---|---|---|
/// | 01 | node01, 10.9.0.11, /dev/sda1 | lab | install:default (group) |
/// | 02 | node02, /dev/nvme0n1p2 | lab | localboot (machine) |
/// | 03 | – | unknown | save-image:lab-2026 (once, over localboot) |
/// | 04 | ws4, 10.9.0.4 | unknown | restore-image:golden |
/// | 05 | – (only discovered) | unknown | install:kickstart (group unknown) |
/// | 06 | thin6 | ltsp-lab | ltsp (group) |
/// | 07 | diskless7 | unknown | nfsroot:10.0.0.1:/srv/nfs/root |
/// | 08 | memtest8 | unknown | custom:memtest (http kernel) |
/// | 09 | gone9 | unknown | install:vanished (profile removed) |
/// | 0a | ubuntu10, 10.9.0.13 | unknown | install:ubuntu |
/// | 0b | 123, 10.9.0.12 | odd | localboot (group) |
/// | 0c | node12, LABEL=root | odd | localboot |
/// | 0d | ignore | odd | localboot |
/// | 0e | 10.9.0.99 | odd | localboot |
/// | 0f | plain15 | odd | localboot |
/// | 10 | vars16 | unknown | custom:allvars (every placeholder) |
/// | 11, 12, 13 | group, a 63-letter label + .example.org, host | odd | localboot |
pub(crate) fn fixture() -> (State, RenderConfig) {
    let mut g = Given::new();
    g.ev(Event::StoreCreated {
        site_key: SITE_KEY.into(),
    });
    for profile in Profile::defaults()
        .into_iter()
        .chain([memtest(), allvars()])
    {
        g.ev(Event::ProfileDefined { profile });
    }
    g.ev(Event::ProfileDefined {
        profile: Profile {
            name: "vanished".into(),
            ..Profile::defaults()[0].clone()
        },
    });
    g.ev(Event::GroupPolicySet {
        group: UNKNOWN.into(),
        policy: "install:kickstart".parse().unwrap(),
    });
    g.group("lab", "install:default")
        .group("ltsp-lab", "ltsp")
        .group("odd", "localboot")
        .group("empty", "localboot");
    g.register(
        "52:54:00:00:00:01",
        Some("node01"),
        Some("lab"),
        Some("10.9.0.11"),
    )
    .rootdev("52:54:00:00:00:01", "/dev/sda1");
    g.register("52:54:00:00:00:02", Some("node02"), Some("lab"), None)
        .rootdev("52:54:00:00:00:02", "/dev/nvme0n1p2")
        .policy("52:54:00:00:00:02", "localboot", false);
    g.register("52:54:00:00:00:03", None, None, None)
        .policy("52:54:00:00:00:03", "localboot", false)
        .policy("52:54:00:00:00:03", "save-image:lab-2026", true);
    g.register("52:54:00:00:00:04", Some("ws4"), None, Some("10.9.0.4"))
        .policy("52:54:00:00:00:04", "restore-image:golden", false);
    g.ev(Event::BootEntryUsed {
        mac: mac("52:54:00:00:00:05"),
        file: "pxelinux.cfg/default".into(),
        ip: None,
    });
    g.register("52:54:00:00:00:06", Some("thin6"), Some("ltsp-lab"), None);
    g.register("52:54:00:00:00:07", Some("diskless7"), None, None)
        .policy("52:54:00:00:00:07", "nfsroot:10.0.0.1:/srv/nfs/root", false);
    g.register("52:54:00:00:00:08", Some("memtest8"), None, None)
        .policy("52:54:00:00:00:08", "custom:memtest", false);
    g.register("52:54:00:00:00:09", Some("gone9"), None, None)
        .policy("52:54:00:00:00:09", "install:vanished", false);
    g.ev(Event::ProfileRemoved {
        name: "vanished".into(),
    });
    g.register(
        "52:54:00:00:00:0a",
        Some("ubuntu10"),
        None,
        Some("10.9.0.13"),
    )
    .policy("52:54:00:00:00:0a", "install:ubuntu", false);
    g.register(
        "52:54:00:00:00:0b",
        Some("123"),
        Some("odd"),
        Some("10.9.0.12"),
    );
    g.register("52:54:00:00:00:0c", Some("node12"), Some("odd"), None)
        .rootdev("52:54:00:00:00:0c", "LABEL=root");
    g.register("52:54:00:00:00:0d", Some("ignore"), Some("odd"), None);
    g.register("52:54:00:00:00:0e", Some("10.9.0.99"), Some("odd"), None);
    g.register("52:54:00:00:00:0f", Some("plain15"), Some("odd"), None);
    g.register("52:54:00:00:00:10", Some("vars16"), None, None)
        .policy("52:54:00:00:00:10", "custom:allvars", false);
    // Valid names that are keywords of dhcpd.conf, and the longest label.
    g.register("52:54:00:00:00:11", Some("group"), Some("odd"), None);
    let long = format!("{}.example.org", "a".repeat(63));
    g.register("52:54:00:00:00:12", Some(&long), Some("odd"), None);
    g.register("52:54:00:00:00:13", Some("host"), Some("odd"), None);
    // Every name passes the name check, except the all-digit ones: they are refused now,
    // and the renderers still handle them because an older journal may hold them.
    for m in g.state.machines() {
        if let Some(n) = &m.name {
            assert!(
                matches!(
                    crate::machine_name(n),
                    Ok(_) | Err(crate::NameError::Numeric(_))
                ),
                "the fixture's name {n} is valid"
            );
        }
    }
    let cfg = RenderConfig {
        next_server: Some(Ipv4Addr::new(10, 9, 0, 1)),
        ..RenderConfig::default()
    };
    (g.state, cfg)
}

fn entry(state: &State, m: &str, cfg: &RenderConfig) -> BootEntry {
    boot_entry(state, &mac(m), cfg).unwrap()
}

fn kernel_args(e: &BootEntry) -> &str {
    match &e.kind {
        BootKind::Kernel { args, .. } => args,
        other => panic!("not a kernel entry: {other:?}"),
    }
}

/// An independent oracle for placeholder expansion: plain `str::replace`, then one space
/// between words. `vars` gives the machine-specific values; the rest follow from `cfg`.
fn oracle(state: &State, profile: &str, m: Option<&str>, policy: &Policy) -> String {
    let server = "http://127.0.0.1:8017";
    let (mac_s, name, token, answer, report) = match m {
        Some(m) => {
            let mm = mac(m);
            let t = report_token(SITE_KEY, &mm, 0);
            let name = state
                .machine(&mm)
                .unwrap()
                .name
                .clone()
                .unwrap_or(m.to_string());
            let d = mm.dashed();
            (
                m.to_string(),
                name,
                t.clone(),
                format!("{server}/v1/answer/{d}/{t}"),
                format!("{server}/v1/report/{d}/{t}"),
            )
        }
        None => (
            String::new(),
            String::new(),
            String::new(),
            format!("{server}/v1/answer/default"),
            format!("{server}/v1/report"),
        ),
    };
    let nfsroot = match policy {
        Policy::NfsRoot { server, export } => format!("{server}:{export}"),
        _ => String::new(),
    };
    let mut out = state.profile(profile).unwrap().args.clone();
    for (k, v) in [
        ("mac", mac_s.as_str()),
        ("name", &name),
        ("token", &token),
        ("server", server),
        ("answer_url", &answer),
        ("report_url", &report),
        ("image", policy.image().unwrap_or("")),
        ("nfsroot", &nfsroot),
        ("profile", profile),
        ("tftp_server", "10.9.0.1"),
    ] {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn every_placeholder_is_expanded() {
    let (state, cfg) = fixture();
    let m = mac("52:54:00:00:00:10");
    let t = report_token(SITE_KEY, &m, 0);
    let e = entry(&state, "52:54:00:00:00:10", &cfg);
    assert_eq!(
        e.kind,
        BootKind::Kernel {
            profile: "allvars".into(),
            kernel: "allvars/vmlinuz".into(),
            initrd: vec![],
            args: format!(
                "m=52:54:00:00:00:10 n=vars16 t={t} s=http://127.0.0.1:8017 \
                 a=http://127.0.0.1:8017/v1/answer/52-54-00-00-00-10/{t} \
                 r=http://127.0.0.1:8017/v1/report/52-54-00-00-00-10/{t} i= f= p=allvars \
                 x=10.9.0.1"
            ),
        }
    );
    assert_eq!(
        kernel_args(&e),
        oracle(&state, "allvars", Some("52:54:00:00:00:10"), &e.policy)
    );
}

#[test]
fn install_entry() {
    let (state, cfg) = fixture();
    let e = entry(&state, "52:54:00:00:00:01", &cfg);
    assert_eq!(e.policy.to_string(), "install:default");
    assert_eq!(e.origin, Origin::Group);
    assert!(!e.once);
    let p = state.profile("default").unwrap();
    assert_eq!(
        e.kind,
        BootKind::Kernel {
            profile: "default".into(),
            kernel: p.kernel.clone(),
            initrd: p.initrd.clone(),
            args: oracle(&state, "default", Some("52:54:00:00:00:01"), &e.policy),
        }
    );
}

#[test]
fn each_policy_kind_resolves() {
    let (state, cfg) = fixture();
    let args_of = |m: &str| {
        let e = entry(&state, m, &cfg);
        let BootKind::Kernel { profile, .. } = &e.kind else {
            panic!("{m}: {:?}", e.kind)
        };
        let want = oracle(&state, profile, Some(m), &e.policy);
        assert_eq!(kernel_args(&e), want, "{m}");
        (e.policy.to_string(), profile.clone(), want)
    };

    let e = entry(&state, "52:54:00:00:00:02", &cfg);
    assert_eq!(e.origin, Origin::Machine);
    assert_eq!(
        e.kind,
        BootKind::Local {
            rootdev: Some("/dev/nvme0n1p2".into()),
            chain: Some("hd0".into())
        }
    );

    let e = entry(&state, "52:54:00:00:00:03", &cfg);
    assert_eq!(e.origin, Origin::MachineOnce);
    assert!(e.once);
    let (policy, profile, _) = args_of("52:54:00:00:00:03");
    assert_eq!(
        (policy.as_str(), profile.as_str()),
        ("save-image:lab-2026", "save-image")
    );

    let (policy, profile, _) = args_of("52:54:00:00:00:04");
    assert_eq!(
        (policy.as_str(), profile.as_str()),
        ("restore-image:golden", "restore-image")
    );

    // Only discovered: follows the unknown group.
    let e = entry(&state, "52:54:00:00:00:05", &cfg);
    assert_eq!(e.origin, Origin::Group);
    let (policy, _, _) = args_of("52:54:00:00:00:05");
    assert_eq!(policy, "install:kickstart");

    let (policy, profile, _) = args_of("52:54:00:00:00:06");
    assert_eq!((policy.as_str(), profile.as_str()), ("ltsp", "ltsp"));

    let (policy, profile, _) = args_of("52:54:00:00:00:07");
    assert_eq!(
        (policy.as_str(), profile.as_str()),
        ("nfsroot:10.0.0.1:/srv/nfs/root", "nfsroot")
    );

    let e = entry(&state, "52:54:00:00:00:08", &cfg);
    assert_eq!(
        e.kind,
        BootKind::Kernel {
            profile: "memtest".into(),
            kernel: "http://10.9.0.1:8080/memtest/memtest.bin".into(),
            initrd: vec![
                "http://10.9.0.1:8080/memtest/a.img".into(),
                "memtest/b.img".into()
            ],
            args: "nmt.name=memtest8 ds=nocloud-net;s=http://127.0.0.1:8017/nocloud/52:54:00:00:00:08/"
                .into(),
        }
    );

    let e = entry(&state, "52:54:00:00:00:09", &cfg);
    assert_eq!(
        e.kind,
        BootKind::MissingProfile {
            profile: "vanished".into()
        }
    );

    let (policy, profile, _) = args_of("52:54:00:00:00:0a");
    assert_eq!(
        (policy.as_str(), profile.as_str()),
        ("install:ubuntu", "ubuntu")
    );

    let e = entry(&state, "52:54:00:00:00:0c", &cfg);
    assert_eq!(
        e.kind,
        BootKind::Local {
            rootdev: Some("LABEL=root".into()),
            chain: None
        }
    );

    assert_eq!(boot_entry(&state, &mac("52:54:00:ff:ff:ff"), &cfg), None);
}

#[test]
fn placeholders() {
    let vars = Vars {
        mac: "m".into(),
        name: "n".into(),
        token: "t".into(),
        server: "s".into(),
        answer_url: "a".into(),
        report_url: "r".into(),
        image: "i".into(),
        nfsroot: "f".into(),
        profile: "p".into(),
        tftp_server: "x".into(),
    };
    let all: String = crate::PLACEHOLDERS
        .iter()
        .map(|(k, _)| format!("{{{k}}}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(expand(&all, &vars), "m n t s a r i f p x");
    assert_eq!(expand("  a   {mac}  b ", &vars), "a m b");
    assert_eq!(expand("x={image}{profile}", &vars), "x=ip");
    // Empty values leave no doubled spaces.
    let empty = Vars {
        image: String::new(),
        ..vars
    };
    assert_eq!(expand("a {image} b", &empty), "a b");
    // Unknown or unclosed braces stay as written; control characters never survive.
    assert_eq!(expand("{nope} {mac", &empty), "{nope} {mac");
    assert_eq!(expand("a\nb\r\tc", &empty), "a?b??c");
}

#[test]
fn unnamed_machine_name_is_its_mac_and_serial_console_is_appended() {
    let (mut state, mut cfg) = fixture();
    let mut g = Given { state, seq: 1000 };
    g.policy("52:54:00:00:00:03", "custom:memtest", false);
    state = g.state;
    cfg.serial_console = Some("ttyS1,9600".into());
    let e = entry(&state, "52:54:00:00:00:03", &cfg);
    assert_eq!(
        kernel_args(&e),
        "nmt.name=52:54:00:00:00:03 \
         ds=nocloud-net;s=http://127.0.0.1:8017/nocloud/52:54:00:00:00:03/ \
         console=tty0 console=ttyS1,9600"
    );
}

#[test]
fn no_site_key_gives_the_empty_key_token() {
    let mut g = Given::new();
    g.ev(Event::ProfileDefined { profile: allvars() });
    g.register("52:54:00:00:00:01", None, None, None).policy(
        "52:54:00:00:00:01",
        "custom:allvars",
        false,
    );
    let e = entry(&g.state, "52:54:00:00:00:01", &RenderConfig::default());
    // A store with no site key: a token no report matches, never one from an empty key.
    let token = "0".repeat(32);
    assert!(kernel_args(&e).contains(&format!(" t={token} ")), "{e:?}");
    // And no next-server: {tftp_server} is empty.
    assert!(kernel_args(&e).ends_with(" x="), "{e:?}");
}

#[test]
fn once_reverts_after_the_boot() {
    let (state, cfg) = fixture();
    let m = mac("52:54:00:00:00:03");
    let mut g = Given { state, seq: 1000 };
    let once = entry(&g.state, "52:54:00:00:00:03", &cfg);
    assert!(once.once);
    let before = machine_files(&g.state, &m, &cfg);
    let fetch = || Event::BootEntryUsed {
        mac: m,
        file: "pxelinux.cfg/01-52-54-00-00-00-03".into(),
        ip: None,
    };
    g.ev(fetch());
    // Spent: the next boot follows the machine's own policy again...
    let st = &g.state;
    assert_eq!(
        st.effective_policy(st.machine(&m).unwrap()),
        (Policy::LocalBoot, Origin::Machine)
    );
    // ...but the boot in progress may fetch its entry again (GRUB does), and gets the same.
    assert_eq!(machine_files(&g.state, &m, &cfg), before);
    assert_eq!(entry(&g.state, "52:54:00:00:00:03", &cfg), once);
    g.ev(fetch());
    assert_eq!(machine_files(&g.state, &m, &cfg), before);
    // Its next DHCP exchange starts the next boot.
    g.ev(Event::DhcpSeen {
        mac: m,
        kind: "discover".into(),
        ip: None,
        hostname: None,
        arch: None,
        vendor_class: None,
        server: "dnsmasq".into(),
        via: None,
        note: None,
    });
    let e = entry(&g.state, "52:54:00:00:00:03", &cfg);
    assert_eq!(e.policy, Policy::LocalBoot);
    assert_eq!(e.origin, Origin::Machine);
    assert!(!e.once);
    let files = machine_files(&g.state, &m, &cfg);
    assert!(text_of(&files[0]).contains("# policy localboot (from the machine's own policy)\n"));
}

#[test]
fn once_is_said_in_the_header() {
    let (state, cfg) = fixture();
    for f in machine_files(&state, &mac("52:54:00:00:00:03"), &cfg) {
        let s = text_of(&f);
        assert!(
            s.contains("# generated by nmt for machine 52:54:00:00:00:03 (no name)\n"),
            "{s}"
        );
        assert!(
            s.contains(
                "# policy save-image:lab-2026 (from the machine's own policy, for one boot only)\n"
            ),
            "{s}"
        );
    }
}

#[test]
fn default_files_carry_the_unknown_groups_policy() {
    let (state, cfg) = fixture();
    let e = default_entry(&state, &cfg);
    assert_eq!(e.policy.to_string(), "install:kickstart");
    assert_eq!(e.origin, Origin::Group);
    assert_eq!(
        kernel_args(&e),
        oracle(&state, "kickstart", None, &e.policy)
    );
    assert!(kernel_args(&e).contains("http://127.0.0.1:8017/v1/answer/default"));
    let files = default_files(&state, &cfg);
    let targets: Vec<&Target> = files.iter().map(|f| &f.target).collect();
    assert_eq!(
        targets,
        [
            &Target::Tftp("pxelinux.cfg/default".into()),
            &Target::Tftp("grub/grub.cfg".into()),
            &Target::Tftp("ipxe/default.ipxe".into()),
            &Target::Tftp("ipxe/boot.ipxe".into()),
        ]
    );
    for f in &files[..3] {
        let s = text_of(f);
        assert!(
            s.contains("# policy install:kickstart (from group unknown)\n"),
            "{s}"
        );
        assert!(s.contains("rhel/images/pxeboot/vmlinuz"), "{s}");
        assert!(
            s.contains("inst.ks=http://127.0.0.1:8017/v1/answer/default"),
            "{s}"
        );
    }
    assert!(text_of(&files[0]).contains("the default entry, for machines nmt has never seen"));

    // The unknown group back to local boot: the defaults boot the disk.
    let mut g = Given { state, seq: 1000 };
    g.ev(Event::GroupPolicySet {
        group: UNKNOWN.into(),
        policy: Policy::LocalBoot,
    });
    let files = default_files(&g.state, &cfg);
    assert!(text_of(&files[0]).ends_with("LABEL nmt\n  LOCALBOOT 0\n"));
    assert!(text_of(&files[1]).contains("chainloader $f"));
    assert!(text_of(&files[2]).contains("sanboot --no-describe --drive 0x80"));
}

#[test]
fn machine_targets_match_machine_files() {
    let (state, cfg) = fixture();
    let m = mac("52:54:00:00:00:01");
    let files = machine_files(&state, &m, &cfg);
    let targets: Vec<Target> = files.iter().map(|f| f.target.clone()).collect();
    assert_eq!(targets, machine_targets(&m));
    assert_eq!(
        targets,
        [
            Target::Tftp("pxelinux.cfg/01-52-54-00-00-00-01".into()),
            Target::Tftp("grub/grub.cfg-01-52-54-00-00-00-01".into()),
            Target::Tftp("ipxe/01-52-54-00-00-00-01.ipxe".into()),
        ]
    );
    assert!(machine_files(&state, &mac("52:54:00:ff:ff:ff"), &cfg).is_empty());
}

#[test]
fn all_has_every_target_exactly_once() {
    let (state, cfg) = fixture();
    let files = all(&state, &cfg);
    let targets: Vec<&Target> = files.iter().map(|f| &f.target).collect();
    let unique: BTreeSet<&Target> = targets.iter().copied().collect();
    assert_eq!(unique.len(), targets.len(), "a target appears twice");
    let groups: Vec<&Group> = state.groups().collect();
    // Every group has a GRUB and an iPXE file; ltsp-lab and odd (not per-machine) one
    // pxelinux file each, for their members' one chain key (`local`).
    let shared = 2 * groups.len() + 2;
    // The defaults (4), the shared entries, the DHCP files (dhcpd, dnsmasq, Kea), the
    // hosts fragment, and a node list per group.
    assert_eq!(
        targets.len(),
        3 * state.machine_count() + 4 + shared + 3 + 1 + groups.len()
    );
    assert!(unique.contains(&Target::KeaReservations));
    for m in state.machines() {
        for t in machine_targets(&m.mac) {
            assert!(unique.contains(&t), "{t:?}");
        }
    }
    for g in ["unknown", "localboot", "lab", "ltsp-lab", "odd", "empty"] {
        assert!(unique.contains(&Target::NodeList(g.into())), "{g}");
        for t in group_targets(g) {
            assert!(unique.contains(&t), "{t:?}");
        }
        for f in group_files(&state, g, &cfg) {
            assert!(unique.contains(&f.target), "{:?}", f.target);
        }
    }
    for t in [
        Target::DhcpdInclude,
        Target::DnsmasqHosts,
        Target::EtcHosts,
        Target::Tftp("pxelinux.cfg/default".into()),
        Target::Tftp("grub/grub.cfg".into()),
        Target::Tftp("ipxe/default.ipxe".into()),
        Target::Tftp("ipxe/boot.ipxe".into()),
        Target::Tftp("grub/nmt/lab.cfg".into()),
        Target::Tftp("ipxe/nmt/lab.ipxe".into()),
        Target::Tftp("pxelinux.cfg/nmt/odd@local.cfg".into()),
        Target::Tftp("pxelinux.cfg/nmt/ltsp-lab@local.cfg".into()),
    ] {
        assert!(unique.contains(&t), "{t:?}");
    }
    // Every INCLUDE, source and chain of a per-machine file names a file that is rendered.
    for f in &files {
        let s = text_of(f);
        for line in s.lines() {
            let shared = if let Some(p) = line.strip_prefix("INCLUDE ") {
                p.to_string()
            } else if let Some(p) = line.strip_prefix("source /") {
                p.to_string()
            } else if let Some(p) = line
                .strip_prefix("chain --autofree nmt/")
                .and_then(|p| p.strip_suffix(" || goto nmt_failed"))
            {
                format!("ipxe/nmt/{p}")
            } else {
                continue;
            };
            assert!(
                unique.contains(&Target::Tftp(shared.clone())),
                "{:?} points at {shared}, which is not rendered",
                f.target
            );
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    let (state, cfg) = fixture();
    let a = all(&state, &cfg);
    let b = all(&state, &cfg);
    assert_eq!(a, b);
    // A state folded again from the same events renders the same bytes.
    let (again, _) = fixture();
    assert_eq!(a, all(&again, &cfg));
    // And through a snapshot round trip.
    let mut thawed: State = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    thawed.rebuild_indexes();
    assert_eq!(a, all(&thawed, &cfg));
}

#[test]
fn every_file_is_marked_and_clean() {
    let (state, cfg) = fixture();
    for f in all(&state, &cfg) {
        let s = text_of(&f);
        let mut lines = s.lines();
        let mut first = lines.next().unwrap();
        if first == "#!ipxe" {
            first = lines.next().unwrap();
        }
        assert!(
            first.starts_with('#') && first.contains(MARKER),
            "{:?}: {first}",
            f.target
        );
        assert!(s.ends_with('\n'), "{:?}", f.target);
        assert!(
            s.bytes()
                .all(|b| b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b)),
            "{:?}",
            f.target
        );
        for (k, _) in crate::PLACEHOLDERS {
            assert!(
                !s.contains(&format!("{{{k}}}")),
                "{:?}: {{{k}}} left: {s}",
                f.target
            );
        }
    }
}

#[test]
fn boot_entry_serializes_for_show() {
    let (state, cfg) = fixture();
    let e = entry(&state, "52:54:00:00:00:02", &cfg);
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "policy": "localboot",
            "origin": "machine",
            "once": false,
            "kind": {"boot": "local", "rootdev": "/dev/nvme0n1p2", "chain": "hd0"}
        })
    );
    let e = entry(&state, "52:54:00:00:00:09", &cfg);
    assert_eq!(
        serde_json::to_value(&e).unwrap()["kind"],
        serde_json::json!({"boot": "missing-profile", "profile": "vanished"})
    );
}

#[test]
fn render_config_defaults_and_partial_toml_like_input() {
    let d = RenderConfig::default();
    assert_eq!(d.http_url, "http://127.0.0.1:8017");
    assert_eq!(d.bios_loader, "pxelinux.0");
    assert_eq!(d.uefi_loader, "grub/grubnetx64.efi");
    assert_eq!(d.ipxe_script, "ipxe/boot.ipxe");
    assert_eq!(d.next_server, None);
    assert_eq!(d.serial_console, None);
    let c: RenderConfig =
        serde_json::from_str(r#"{"next_server": "10.0.0.1", "http_url": "http://x:1/"}"#).unwrap();
    assert_eq!(c.next_server, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(c.bios_loader, "pxelinux.0");
    // A trailing '/' on the URL does not double up.
    assert_eq!(server_url(&c), "http://x:1");
}

/// Events folded without `decide`'s checks (as a corrupt or hand-made journal could hold):
/// nothing they carry may break out of its line or its word.
#[test]
fn unvalidated_state_cannot_inject_lines() {
    let mut g = Given::new();
    g.ev(Event::ProfileDefined {
        profile: Profile {
            name: "evil".into(),
            kind: ProfileKind::Custom,
            kernel: "k\nKERNEL evil".into(),
            initrd: vec!["i\nINITRD evil".into()],
            args: "a\nLABEL x ; reboot ${x} #c || b && c 'q' \"d\" {name}".into(),
            answer: None,
            network_console: false,
            preseed: None,
        },
    });
    g.register(
        "52:54:00:00:00:01",
        Some("evil\nDEFAULT pwned"),
        Some("bad\ngroup"),
        Some("10.9.0.5"),
    )
    .policy("52:54:00:00:00:01", "custom:evil", false)
    .rootdev("52:54:00:00:00:01", "/dev/sda1\nLOCALBOOT 9");
    g.register(
        "52:54:00:00:00:02",
        Some("ok\"name"),
        None,
        Some("10.9.0.6"),
    )
    .rootdev("52:54:00:00:00:02", "UUID=x\nCOM32 evil");
    let cfg = RenderConfig {
        serial_console: Some("ttyS0,115200 init=/bin/sh\n".into()),
        http_url: "http://x/\nKERNEL evil".into(),
        ..RenderConfig::default()
    };
    for f in all(&g.state, &cfg) {
        let s = text_of(&f);
        for line in s.lines() {
            let t = line.trim_start();
            for bad in [
                "DEFAULT pwned",
                "KERNEL evil",
                "INITRD evil",
                "LABEL x",
                "LOCALBOOT 9",
                "COM32 evil",
                "init=/bin/sh",
            ] {
                assert!(!t.starts_with(bad), "{:?}: {line:?}", f.target);
            }
            assert_ne!(t, "group", "{:?}", f.target);
            assert!(!line.contains("init=/bin/sh"), "{:?}: {line:?}", f.target);
        }
        assert!(
            s.bytes()
                .all(|b| b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b)),
            "{:?}",
            f.target
        );
        // Names that are not plain host names stay out of the name lists.
        if matches!(
            f.target,
            Target::DhcpdInclude | Target::DnsmasqHosts | Target::EtcHosts | Target::NodeList(_)
        ) {
            assert!(!s.contains("evil"), "{:?}: {s}", f.target);
            assert!(
                !s.contains("ok\"name") && !s.contains("ok\\\"name"),
                "{:?}: {s}",
                f.target
            );
        }
    }
    let files = machine_files(&g.state, &mac("52:54:00:00:00:01"), &cfg);
    // GRUB: every argument is one quoted word.
    let grub = text_of(&files[1]);
    let linux = grub.lines().find(|l| l.starts_with("  linux ")).unwrap();
    for w in linux.split(' ').skip(4) {
        assert!(w.starts_with('\'') && w.ends_with('\''), "{w:?} in {linux}");
    }
    // iPXE: no command separators, comments or expansions among the arguments.
    let ipxe = text_of(&files[2]);
    let kernel = ipxe.lines().find(|l| l.starts_with("kernel ")).unwrap();
    let body = kernel.strip_suffix(" || goto nmt_failed").unwrap();
    for w in body.split(' ') {
        assert!(
            !matches!(w, ";" | "||" | "&&") && !w.starts_with('#') && !w.contains("${"),
            "{w:?} in {kernel}"
        );
    }
    assert!(ipxe.contains("argument(s) left out"), "{ipxe}");
}

fn set_group_policy(g: &mut Given, group: &str, policy: &str) {
    g.ev(Event::GroupPolicySet {
        group: group.into(),
        policy: policy.parse().unwrap(),
    });
}

fn target_text(files: &[File], target: &str) -> String {
    text_of(
        files
            .iter()
            .find(|f| f.target == Target::Tftp(target.into()))
            .unwrap_or_else(|| panic!("no {target}")),
    )
}

#[test]
fn per_machine_policies() {
    let (state, _) = fixture();
    let p = |s: &str| -> Policy { s.parse().unwrap() };
    for (policy, want) in [
        ("localboot", false),
        ("ltsp", false),
        ("nfsroot:10.0.0.1:/srv/nfs", false),
        ("install:default", true),
        ("install:ubuntu", true),
        ("install:kickstart", true),
        ("save-image:x", true),
        ("restore-image:x", true),
        ("custom:memtest", true),
        ("custom:allvars", true),
        ("install:vanished", false),
        ("custom:nothing", false),
    ] {
        assert_eq!(per_machine(&state, &p(policy)), want, "{policy}");
    }
    // A custom profile with only group-level placeholders is not per-machine.
    let mut g = Given { state, seq: 1000 };
    g.ev(Event::ProfileDefined {
        profile: Profile {
            name: "plain".into(),
            kind: ProfileKind::Custom,
            kernel: "k".into(),
            initrd: vec![],
            args: "s={server} i={image} p={profile} x={tftp_server} f={nfsroot}".into(),
            answer: None,
            network_console: false,
            preseed: None,
        },
    });
    assert!(!per_machine(&g.state, &p("custom:plain")));
}

#[test]
fn chain_keys_and_paths() {
    assert_eq!(chain_key(Some("/dev/sda1")), "hd0");
    assert_eq!(chain_key(Some("/dev/sdb2")), "hd1");
    assert_eq!(chain_key(Some("/dev/nvme1n1p2")), "hd1");
    assert_eq!(chain_key(Some("PARTUUID=0b4b11e0-01")), "mbr-0x0b4b11e0");
    assert_eq!(chain_key(Some("LABEL=root")), "local");
    assert_eq!(chain_key(Some("/dev/sda1\nx")), "local");
    assert_eq!(chain_key(None), "local");
    assert_eq!(
        group_pxelinux_prefix("physics"),
        "pxelinux.cfg/nmt/physics@"
    );
    assert_eq!(
        group_targets("physics"),
        [
            Target::Tftp("grub/nmt/physics.cfg".into()),
            Target::Tftp("ipxe/nmt/physics.ipxe".into()),
        ]
    );
    // A corrupt group name never leaves its directory nor takes a valid group's name.
    for bad in ["../x", "a/b", "bad\ngroup", "", "a@b", "_x"] {
        let p = group_pxelinux_prefix(bad);
        let rest = p.strip_prefix("pxelinux.cfg/nmt/_").unwrap();
        assert_eq!(rest.len(), 33, "{bad:?}: {p}");
        assert!(
            rest[..32].bytes().all(|b| b.is_ascii_hexdigit()) && rest.ends_with('@'),
            "{p}"
        );
    }
    assert_ne!(group_pxelinux_prefix("a/b"), group_pxelinux_prefix("a?b"));
}

#[test]
fn following_machines_files_do_not_change_with_the_groups_policy() {
    let (state, cfg) = fixture();
    let mut g = Given { state, seq: 1000 };
    // plain15 follows odd (no root device); node12 too (LABEL=root).
    let m = mac("52:54:00:00:00:0f");
    let mut seen_group_files: Vec<Vec<File>> = Vec::new();
    let mut before: Option<Vec<File>> = None;
    for policy in ["localboot", "ltsp", "nfsroot:10.0.0.1:/srv/nfs/root"] {
        set_group_policy(&mut g, "odd", policy);
        let files = machine_files(&g.state, &m, &cfg);
        if let Some(b) = &before {
            assert_eq!(&files, b, "{policy}: the per-machine files changed");
        }
        before = Some(files);
        let shared = group_files(&g.state, "odd", &cfg);
        let targets: Vec<&Target> = shared.iter().map(|f| &f.target).collect();
        assert_eq!(
            targets,
            [
                &Target::Tftp("grub/nmt/odd.cfg".into()),
                &Target::Tftp("ipxe/nmt/odd.ipxe".into()),
                &Target::Tftp("pxelinux.cfg/nmt/odd@local.cfg".into()),
            ]
        );
        for earlier in &seen_group_files {
            for (a, b) in earlier.iter().zip(&shared) {
                assert_ne!(a.bytes, b.bytes, "{policy}: {:?} did not change", a.target);
            }
        }
        for f in &shared {
            assert!(
                text_of(f).contains(&format!("(policy {policy}")),
                "{policy}: {:?}",
                f.target
            );
        }
        seen_group_files.push(shared);
    }
    let before = before.unwrap();
    assert!(text_of(&before[0]).contains("\nINCLUDE pxelinux.cfg/nmt/odd@local.cfg\n"));

    // install carries the token: the pxelinux file becomes the whole entry with this
    // machine's token; the GRUB and iPXE files still do not change.
    set_group_policy(&mut g, "odd", "install:default");
    let after = machine_files(&g.state, &m, &cfg);
    assert_eq!(after[1], before[1]);
    assert_eq!(after[2], before[2]);
    let pxe = text_of(&after[0]);
    let token = report_token(SITE_KEY, &m, 0);
    assert!(
        pxe.contains("# policy install:default (from group odd)\n"),
        "{pxe}"
    );
    assert!(pxe.contains(&format!(" nmt.token={token}")), "{pxe}");
    assert!(!pxe.contains("INCLUDE"), "{pxe}");
    let shared = group_files(&g.state, "odd", &cfg);
    assert_eq!(
        shared.len(),
        2,
        "no shared pxelinux entry for a per-machine policy"
    );
    assert!(text_of(&shared[0]).contains("\"nmt.token=${nmt_token}\""));

    // Back to local boot: the pointer again, byte for byte.
    set_group_policy(&mut g, "odd", "localboot");
    assert_eq!(machine_files(&g.state, &m, &cfg), before);

    // A machine with its own policy keeps its whole entry whatever the group does.
    let own = mac("52:54:00:00:00:02");
    let mine = machine_files(&g.state, &own, &cfg);
    set_group_policy(&mut g, "lab", "ltsp");
    assert_eq!(machine_files(&g.state, &own, &cfg), mine);
    assert!(text_of(&mine[1]).contains("menuentry 'localboot' {"));
}

#[test]
fn shared_grub_entry_uses_variables_for_per_machine_values() {
    let (state, cfg) = fixture();
    let files = group_files(&state, "lab", &cfg);
    let s = target_text(&files, "grub/nmt/lab.cfg");
    let linux = s.lines().find(|l| l.starts_with("  linux ")).unwrap();
    assert_eq!(
        linux,
        "  linux /debian-installer/amd64/linux 'auto=true' 'priority=critical' \
         \"url=${nmt_answer_url}\" 'interface=auto' 'netcfg/dhcp_timeout=60' \
         \"nmt.report=${nmt_report_url}\" \"nmt.token=${nmt_token}\""
    );
    for m in state.group("lab").unwrap().members.iter() {
        let t = report_token(SITE_KEY, m, 0);
        assert!(!s.contains(&t), "{s}");
        assert!(!s.contains(&m.dashed()), "{s}");
    }
    // node01 follows lab: its own file sets the real token.
    let m = mac("52:54:00:00:00:01");
    let own = text_of(&machine_files(&state, &m, &cfg)[1]);
    assert!(
        own.contains(&format!(
            "\nset nmt_token='{}'\n",
            report_token(SITE_KEY, &m, 0)
        )),
        "{own}"
    );
    assert!(own.ends_with("\nsource /grub/nmt/lab.cfg\n"), "{own}");
}

/// The shared entry with a member's values put in is that member's own entry, for every
/// profile: the variables stand exactly where the values would.
#[test]
fn shared_entries_with_a_members_values_are_its_own_entry() {
    let (state, mut cfg) = fixture();
    cfg.serial_console = Some("ttyS0,115200".into());
    let mut g = Given { state, seq: 1000 };
    let policies: Vec<String> = g
        .state
        .profiles()
        .map(|p| match p.kind {
            ProfileKind::Install => format!("install:{}", p.name),
            ProfileKind::Custom => format!("custom:{}", p.name),
            ProfileKind::Ltsp => "ltsp".into(),
            ProfileKind::SaveImage => "save-image:img".into(),
            ProfileKind::RestoreImage => "restore-image:img".into(),
            ProfileKind::NfsRoot => "nfsroot:10.0.0.1:/srv/x".into(),
        })
        .collect();
    assert!(policies.len() >= 8, "{policies:?}");
    for policy in &policies {
        set_group_policy(&mut g, "odd", policy);
        let p: Policy = policy.parse().unwrap();
        let shared = resolve(
            &g.state,
            &cfg,
            &p,
            None,
            |profile| policy_vars(&p, &cfg, profile),
            true,
        );
        let Boot::Kernel { args, .. } = &shared else {
            panic!("{policy}: {shared:?}")
        };
        let has_vars = args.iter().flatten().any(|p| matches!(p, Piece::Var(_)));
        assert_eq!(has_vars, per_machine(&g.state, &p), "{policy}");
        for m in g.state.group("odd").unwrap().members.clone() {
            let machine = g.state.machine(&m).unwrap();
            let values = machine_values(&g.state, machine, &server_url(&cfg));
            let filled: Vec<String> = args
                .iter()
                .map(|w| {
                    w.iter()
                        .map(|p| match p {
                            Piece::Lit(s) => s.clone(),
                            Piece::Var(v) => {
                                let i = MachineVar::ALL.iter().position(|x| x == v).unwrap();
                                clean_word(&values[i])
                            }
                        })
                        .collect()
                })
                .collect();
            let own = boot_entry(&g.state, &m, &cfg).unwrap();
            assert_eq!(filled.join(" "), kernel_args(&own), "{policy} {m}");
        }
    }
}

#[test]
fn group_files_have_one_pxelinux_entry_per_chain_key() {
    let mut g = Given::new();
    g.ev(Event::StoreCreated {
        site_key: SITE_KEY.into(),
    });
    for profile in Profile::defaults() {
        g.ev(Event::ProfileDefined { profile });
    }
    g.group("disks", "localboot").group("empty", "ltsp");
    for (m, dev) in [
        ("52:54:00:00:01:01", Some("/dev/sda1")),
        ("52:54:00:00:01:02", Some("/dev/sda2")),
        ("52:54:00:00:01:03", Some("/dev/sdb1")),
        ("52:54:00:00:01:04", None),
        ("52:54:00:00:01:05", Some("UUID=1234")),
        ("52:54:00:00:01:06", Some("PARTUUID=0b4b11e0-01")),
    ] {
        g.register(m, None, Some("disks"), None);
        if let Some(d) = dev {
            g.rootdev(m, d);
        }
    }
    // A member with its own policy still counts: it may follow the group again any time.
    g.policy("52:54:00:00:01:06", "ltsp", false);
    let cfg = RenderConfig::default();
    let files = group_files(&g.state, "disks", &cfg);
    let targets: Vec<&Target> = files.iter().map(|f| &f.target).collect();
    assert_eq!(
        targets,
        [
            &Target::Tftp("grub/nmt/disks.cfg".into()),
            &Target::Tftp("ipxe/nmt/disks.ipxe".into()),
            &Target::Tftp("pxelinux.cfg/nmt/disks@hd0.cfg".into()),
            &Target::Tftp("pxelinux.cfg/nmt/disks@hd1.cfg".into()),
            &Target::Tftp("pxelinux.cfg/nmt/disks@local.cfg".into()),
            &Target::Tftp("pxelinux.cfg/nmt/disks@mbr-0x0b4b11e0.cfg".into()),
        ]
    );
    for f in &files[2..] {
        let Target::Tftp(t) = &f.target else {
            unreachable!()
        };
        assert!(t.starts_with(&group_pxelinux_prefix("disks")), "{t}");
    }
    assert!(text_of(&files[2]).ends_with("LABEL nmt\n  COM32 chain.c32\n  APPEND hd0\n"));
    assert!(text_of(&files[3]).ends_with("LABEL nmt\n  COM32 chain.c32\n  APPEND hd1\n"));
    assert!(text_of(&files[4]).ends_with("LABEL nmt\n  LOCALBOOT 0\n"));
    assert!(
        text_of(&files[5]).ends_with("LABEL nmt\n  COM32 chain.c32\n  APPEND mbr:0x0b4b11e0\n")
    );
    assert!(
        text_of(&files[2]).starts_with(
            "# generated by nmt for group disks (policy localboot, local disk hd0): do not edit"
        ),
        "{}",
        text_of(&files[2])
    );
    // Each follower includes the file of its own disk, with the same content its whole entry
    // had.
    for (m, key) in [
        ("52:54:00:00:01:01", "hd0"),
        ("52:54:00:00:01:02", "hd0"),
        ("52:54:00:00:01:03", "hd1"),
        ("52:54:00:00:01:04", "local"),
        ("52:54:00:00:01:05", "local"),
    ] {
        let s = text_of(&machine_files(&g.state, &mac(m), &cfg)[0]);
        let include = format!("pxelinux.cfg/nmt/disks@{key}.cfg");
        // What `nmt show` lists of the group for one member: the same files, of the
        // pxelinux entries only its own.
        let rootdev = g.state.machine(&mac(m)).unwrap().rootdev.clone();
        let own = member_group_files(&g.state, "disks", &cfg, rootdev.as_deref());
        let expected: Vec<&File> = files
            .iter()
            .filter(|f| match &f.target {
                Target::Tftp(t) => !t.starts_with("pxelinux.cfg/") || *t == include,
                _ => true,
            })
            .collect();
        assert_eq!(own.iter().collect::<Vec<_>>(), expected, "{m}");
        assert!(s.ends_with(&format!("\nINCLUDE {include}\n")), "{m}: {s}");
        let body = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .map(String::from)
                .collect()
        };
        let mut full = Given {
            state: g.state.clone(),
            seq: 1000,
        };
        full.policy(m, "localboot", false);
        let whole = text_of(&machine_files(&full.state, &mac(m), &cfg)[0]);
        assert_eq!(body(&whole), body(&target_text(&files, &include)), "{m}");
    }
    // The per-machine policy keeps its own whole pxelinux entries: no shared ones.
    set_group_policy(&mut g, "disks", "install:default");
    let files = group_files(&g.state, "disks", &cfg);
    assert_eq!(files.len(), 2);
    // An empty group has only its GRUB and iPXE files; an unknown group has none.
    assert_eq!(group_files(&g.state, "empty", &cfg).len(), 2);
    assert!(group_files(&g.state, "nope", &cfg).is_empty());
    // all() still has every target once.
    let files = all(&g.state, &cfg);
    let unique: BTreeSet<&Target> = files.iter().map(|f| &f.target).collect();
    assert_eq!(unique.len(), files.len());
}

/// GRUB's own parser accepts every kind of GRUB file nmt writes. Needs `grub-script-check`
/// (Debian package grub-common).
#[test]
fn grub_script_check_accepts_every_grub_file() {
    let check = std::process::Command::new("grub-script-check")
        .arg("--help")
        .output();
    assert!(
        check.is_ok(),
        "grub-script-check is missing: install it (apt-get install grub-common) to run this test"
    );
    let (state, mut cfg) = fixture();
    cfg.serial_console = Some("ttyS0,115200".into());
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut kinds = BTreeSet::new();
    // Every GRUB file of the fixture: per-machine pointers and whole entries, every group's
    // shared entry (lab's and unknown's with variables), and the default.
    for f in all(&state, &cfg) {
        let Target::Tftp(t) = &f.target else {
            continue;
        };
        if !t.starts_with("grub/") {
            continue;
        }
        let s = text_of(&f);
        kinds.insert(if s.contains("\nsource /grub/nmt/") {
            "pointer"
        } else if s.contains("${nmt_") {
            "variables"
        } else if t == "grub/grub.cfg" {
            "default"
        } else {
            "whole"
        });
        let path = dir.path().join(format!("{checked}.cfg"));
        std::fs::write(&path, &f.bytes).unwrap();
        let out = std::process::Command::new("grub-script-check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "grub-script-check refuses {t}: {}{}\n{s}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["default", "pointer", "variables", "whole"]
    );
    // And it does refuse a broken file, so the check means something.
    let path = dir.path().join("broken.cfg");
    std::fs::write(&path, "menuentry 'x' {\n  linux \"/a\n").unwrap();
    let out = std::process::Command::new("grub-script-check")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn every_per_machine_and_per_group_file_lies_in_a_listed_output_dir() {
    let mut g = Given::new();
    g.ev(Event::GroupCreated {
        group: "lab".into(),
        policy: "ltsp".parse().unwrap(),
    });
    g.register("52:54:00:00:00:01", Some("pc01"), Some("lab"), None)
        .rootdev("52:54:00:00:00:01", "/dev/sdb2")
        .register("52:54:00:00:00:02", None, None, None)
        .policy("52:54:00:00:00:02", "install", true);
    let dirs: BTreeSet<&str> = OUTPUT_DIRS
        .iter()
        .filter_map(|d| match d {
            OutputDir::Tftp(rel) => Some(*rel),
            OutputDir::NodeLists => None,
        })
        .collect();
    let files = all(&g.state, &RenderConfig::default());
    let mut checked = 0;
    for f in &files {
        if let Target::Tftp(rel) = &f.target
            && let Some((dir, _)) = rel.rsplit_once('/')
            && (rel.contains("01-") || rel.contains("/nmt/"))
        {
            assert!(dirs.contains(dir), "{rel} is in no output dir");
            checked += 1;
        }
    }
    assert!(checked >= 6, "{files:?}");
    assert!(OUTPUT_DIRS.contains(&OutputDir::NodeLists));
}
