//! The specification's use cases, played through the real `nmt` binary.

use std::collections::BTreeMap;

use crate::util::{Nmt, dhcpd_check, grub, mac, mtime, pxe};

const DEPARTMENTS: [&str; 5] = ["physics", "chemistry", "biology", "maths", "cs"];

/// Kathrin's 300 nodes: imported from a MAC list, named in order, five department groups by
/// range, a group policy, one machine overridden once; history and files checked.
fn kathrin() -> Nmt {
    let t = Nmt::new();
    let me = nmt::current_actor();
    let list: String = (1..=300).map(|n| format!("{}\n", mac(n))).collect();
    let out = t.ok_stdin(&["machine", "import", "-"], &list);
    assert!(out.contains("imported 300 rows"), "{out}");
    t.ok(&["name", "@unknown", "--pattern", "node{001}"]);
    for (i, d) in DEPARTMENTS.iter().enumerate() {
        t.ok(&["group", "add", d]);
        let range = format!("node[{:03}-{:03}]", i * 60 + 1, i * 60 + 60);
        let out = t.ok(&["assign", &range, d]);
        assert!(out.contains("assigned 60 machines"), "{out}");
        t.ok(&["policy", &format!("@{d}"), "localboot"]);
    }
    let out = t.ok(&["policy", "node007", "install", "--once"]);
    assert!(out.contains("next boot only"), "{out}");

    // The inventory.
    let machines = t.json(&["machines"]);
    let machines = machines.as_array().unwrap();
    assert_eq!(machines.len(), 300);
    let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
    for m in machines {
        *per_group
            .entry(m["group"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for d in DEPARTMENTS {
        assert_eq!(per_group[d], 60, "{per_group:?}");
    }
    let n7 = machines
        .iter()
        .find(|m| m["name"] == "node007")
        .expect("node007");
    assert_eq!(n7["mac"], mac(7));
    assert_eq!(n7["group"], "physics");
    assert_eq!(n7["policy"], "install:default");
    assert_eq!(n7["effective_policy"], "install:default");
    assert_eq!(n7["once"], true);
    let n8 = machines.iter().find(|m| m["name"] == "node008").unwrap();
    assert_eq!(n8["policy"], serde_json::Value::Null);
    assert_eq!(n8["effective_policy"], "localboot");
    let n300 = machines.iter().find(|m| m["name"] == "node300").unwrap();
    assert_eq!(n300["group"], "cs");

    // History of node007: every step, oldest first, with its actor.
    let hist = t.json(&["history", "node007"]);
    let kinds: Vec<&str> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "MachineRegistered",
            "MachineNamed",
            "MachineAssigned",
            "GroupPolicySet",
            "MachinePolicySet"
        ]
    );
    for e in hist.as_array().unwrap() {
        assert_eq!(e["actor"], me.as_str(), "{e}");
    }
    let text = t.ok(&["history", "node007"]);
    assert!(text.contains("assigned to group physics"), "{text}");
    assert!(
        text.contains("policy set to install:default (next boot only)"),
        "{text}"
    );

    // Generated files.
    let f7 = t.file(&pxe(&mac(7)));
    assert!(f7.contains("KERNEL debian-installer/amd64/linux"), "{f7}");
    assert!(f7.contains("auto=true priority=critical"), "{f7}");
    assert!(f7.contains("node007"), "{f7}");
    // node008 follows its group: its entry points at the group's shared one.
    let f8 = t.file(&pxe(&mac(8)));
    assert!(
        f8.contains("INCLUDE pxelinux.cfg/nmt/physics@local.cfg"),
        "{f8}"
    );
    let shared = t.file("tftp/pxelinux.cfg/nmt/physics@local.cfg");
    assert!(shared.contains("LOCALBOOT 0"), "{shared}");
    assert!(!shared.contains("KERNEL"), "{shared}");
    let g8 = t.file(&grub(&mac(8)));
    assert!(g8.contains("source /grub/nmt/physics.cfg"), "{g8}");
    let g7 = t.file(&grub(&mac(7)));
    assert!(g7.contains("linux /debian-installer/amd64/linux"), "{g7}");
    assert!(
        t.path(&format!("tftp/ipxe/01-{}.ipxe", mac(7).replace(':', "-")))
            .exists()
    );
    let dhcp = t.file("dhcp/dhcpd-nmt.conf");
    assert_eq!(dhcp.matches("host nmt-").count(), 300, "{dhcp}");
    assert!(dhcp.contains(&format!("hardware ethernet {};", mac(300))));
    assert!(dhcp.contains("option host-name \"node300\";"));
    dhcpd_check(&t.path("dhcp/dhcpd-nmt.conf"));
    let physics = t.file("nodes/physics");
    let names: Vec<&str> = physics.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(names.len(), 60);
    assert_eq!(names[0], "node001");
    assert_eq!(names[59], "node060");
    let dns = t.file("dhcp/dnsmasq-nmt.hosts");
    assert!(dns.contains(&format!("{},node001", mac(1))), "{dns}");
    assert_eq!(
        t.ok(&["render", "--check"]).trim(),
        "every generated file is up to date"
    );
    t
}

#[test]
fn kathrin_installs_300_nodes_in_five_departments() {
    kathrin();
}

#[test]
fn reinhard_switches_his_group_to_ltsp_and_back() {
    let t = kathrin();
    let before_chem = t.file(&pxe(&mac(61)));
    let before_phys = t.file(&pxe(&mac(2)));
    let dhcp = t.path("dhcp/dhcpd-nmt.conf");
    let dhcp_mtime = mtime(&dhcp);
    let other_mtime = mtime(&t.path(&pxe(&mac(200))));
    let member_mtime = mtime(&t.path(&pxe(&mac(61))));
    std::thread::sleep(std::time::Duration::from_millis(20));

    let out = t.ok(&["policy", "@chemistry", "ltsp"]);
    assert!(out.contains("group chemistry policy set to ltsp"), "{out}");
    // Sixty members, and only the group's three shared entries are rewritten.
    assert!(out.contains("files: 3 written"), "{out}");
    assert_eq!(
        t.file(&pxe(&mac(61))),
        before_chem,
        "members point at the shared entry"
    );
    assert_eq!(mtime(&t.path(&pxe(&mac(61)))), member_mtime);
    let ltsp = t.file("tftp/pxelinux.cfg/nmt/chemistry@local.cfg");
    assert!(ltsp.contains("KERNEL ltsp/x86_64/vmlinuz"), "{ltsp}");
    assert!(
        ltsp.contains("INITRD ltsp/ltsp.img,ltsp/x86_64/initrd.img"),
        "{ltsp}"
    );
    let gltsp = t.file("tftp/grub/nmt/chemistry.cfg");
    assert!(gltsp.contains("linux /ltsp/x86_64/vmlinuz"), "{gltsp}");
    let shown = t.ok(&["show", "node061"]);
    assert!(
        shown.contains("KERNEL ltsp/x86_64/vmlinuz"),
        "show includes the shared entry\n{shown}"
    );
    assert_eq!(
        t.file(&pxe(&mac(2))),
        before_phys,
        "other groups keep their files"
    );
    assert_eq!(
        mtime(&t.path(&pxe(&mac(200)))),
        other_mtime,
        "and are not rewritten"
    );
    assert_eq!(
        mtime(&dhcp),
        dhcp_mtime,
        "a policy change leaves DHCP alone"
    );
    let m = t.json(&["machines", "@chemistry"]);
    assert!(
        m.as_array()
            .unwrap()
            .iter()
            .all(|m| m["effective_policy"] == "ltsp")
    );

    t.ok(&["policy", "@chemistry", "localboot"]);
    assert_eq!(
        t.file(&pxe(&mac(61))),
        before_chem,
        "back exactly as before"
    );
    assert!(
        t.file("tftp/pxelinux.cfg/nmt/chemistry@local.cfg")
            .contains("LOCALBOOT 0")
    );
    assert_eq!(mtime(&dhcp), dhcp_mtime);
    let hist = t.ok(&["history", "node061"]);
    assert!(
        hist.contains("group chemistry policy set to ltsp"),
        "{hist}"
    );
    assert!(
        hist.contains("group chemistry policy set to localboot"),
        "{hist}"
    );

    // Reinstalling the group writes each member's own entry, with its report token.
    let out = t.ok(&["policy", "@chemistry", "install", "--yes"]);
    assert!(
        out.contains("files: 62 written"),
        "60 members + GRUB and iPXE shared\n{out}"
    );
    let entry = t.file(&pxe(&mac(61)));
    assert!(
        entry.contains("KERNEL debian-installer/amd64/linux"),
        "{entry}"
    );
    assert!(entry.contains("nmt.token="), "{entry}");
    assert!(
        !t.path("tftp/pxelinux.cfg/nmt/chemistry@local.cfg").exists(),
        "no shared pxelinux entry for a per-machine policy"
    );
    t.ok(&["policy", "@chemistry", "localboot"]);
    assert_eq!(t.file(&pxe(&mac(61))), before_chem);
    assert_eq!(
        t.ok(&["render", "--check"]).trim(),
        "every generated file is up to date"
    );
}

#[test]
fn andreas_installs_unknown_machines_and_they_move_to_localboot() {
    let t = Nmt::new();
    let out = t.ok(&["policy", "@unknown", "install"]);
    assert!(
        out.contains("group unknown policy set to install:default"),
        "{out}"
    );
    let default = t.file("tftp/pxelinux.cfg/default");
    assert!(
        default.contains("KERNEL debian-installer/amd64/linux"),
        "{default}"
    );
    let gdefault = t.file("tftp/grub/grub.cfg");
    assert!(
        gdefault.contains("debian-installer/amd64/linux"),
        "{gdefault}"
    );

    let m = mac(1);
    t.ok(&["machine", "add", &m]);
    let entry = t.file(&pxe(&m));
    assert!(
        entry.contains("KERNEL debian-installer/amd64/linux"),
        "{entry}"
    );
    assert!(
        entry.contains("nmt.token="),
        "the entry carries the report token\n{entry}"
    );
    assert!(entry.contains("/v1/answer/52-54-00-00-00-01/"), "{entry}");

    let out = t.ok(&["installed", &m, "/dev/sda1"]);
    assert!(out.contains("moved from unknown to localboot"), "{out}");
    let after = t.json(&["machines", &m]);
    assert_eq!(after[0]["group"], "localboot");
    assert_eq!(after[0]["rootdev"], "/dev/sda1");
    assert_eq!(after[0]["effective_policy"], "localboot");
    let entry = t.file(&pxe(&m));
    assert!(
        entry.contains("INCLUDE pxelinux.cfg/nmt/localboot@hd0.cfg"),
        "{entry}"
    );
    let local = t.file("tftp/pxelinux.cfg/nmt/localboot@hd0.cfg");
    assert!(local.contains("COM32 chain.c32"), "{local}");
    assert!(local.contains("APPEND hd0"), "{local}");
    let g = t.file(&grub(&m));
    assert!(g.contains("source /grub/nmt/localboot.cfg"), "{g}");
    let g = t.file("tftp/grub/nmt/localboot.cfg");
    assert!(g.contains("chainloader"), "{g}");
    let roots = t.json(&["rootdev"]);
    assert_eq!(roots[0]["rootdev"], "/dev/sda1");
    // Trivially reinstall that one machine, once.
    t.ok(&["policy", &m, "install", "--once"]);
    assert!(t.file(&pxe(&m)).contains("KERNEL debian-installer"));
    let hist = t.ok(&["history", &m]);
    assert!(
        hist.contains("install recorded by hand on /dev/sda1"),
        "{hist}"
    );
}
