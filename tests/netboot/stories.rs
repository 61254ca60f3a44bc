//! The specification's stories, booted for real. Each asserts on the serial console (what the
//! machine did), on `nmt machines --json`, and on `nmt history` / `nmt boots` (what nmt says
//! it did).

use serde_json::Value;

use super::{Boot, Dhcp, Firmware, Lab, Vm};

/// The events of a machine's history, by type.
pub(super) fn events<'a>(history: &'a Value, ty: &str) -> Vec<&'a Value> {
    history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] == ty)
        .collect()
}

/// A machine of `nmt machines --json`.
pub(super) fn machine(lab: &Lab, target: &str) -> Value {
    let all = lab.json(&["machines", target]);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all:#}");
    all[0].clone()
}

/// The installer's boot: it wrote the disk and nmt took its report.
pub(super) fn installed(boot: &Boot, vm: &Vm) {
    boot.shows(&format!("NMT-BOOTED role=install mac={}", vm.mac))
        .shows(&format!("NMT-INSTALLER-WROTE-DISK mac={}", vm.mac))
        .shows("NMT-INSTALLER-REPORTED {\"accepted\":true")
        .lacks("NMT-INSTALLER-FAILED")
        .exited(0);
}

/// A BIOS boot from the disk the installer wrote.
fn booted_disk(boot: &Boot, vm: &Vm) {
    boot.shows(&format!("NMT-DISK-BOOT installed-by-nmt mac={}", vm.mac))
        .lacks("NMT-BOOTED")
        .exited(33);
}

/// Andreas: `unknown` installs; a blank machine is discovered, installs, reports, and then
/// boots its disk. The lab and the machine, for more.
fn andreas(dhcp: Dhcp) -> (Lab, Vm) {
    let mut lab = Lab::start(dhcp);
    lab.nmt(&["policy", "@unknown", "install:lab"]);
    let vm = lab.vm("cafe1", "52:54:00:5e:00:01", Firmware::Bios);

    // First boot: unknown, so nmt discovers it from the DHCP log and writes its own
    // install entry (with its report token) before pxelinux asks for it.
    let first = lab.boot_one(&vm);
    installed(&first, &vm);
    let m = machine(&lab, &vm.mac);
    assert_eq!(m["group"], "localboot", "the report moved it: {m:#}");
    assert_eq!(m["rootdev"], "/dev/sda1", "{m:#}");
    assert_eq!(m["effective_policy"], "localboot", "{m:#}");
    assert_eq!(m["policy_origin"], "group", "{m:#}");
    assert_eq!(m["installed"]["device"], "/dev/sda1", "{m:#}");
    assert!(
        m["last_ip"].as_str().unwrap().starts_with("10.213.0."),
        "{m:#}"
    );
    let boots = lab.boots(&vm.mac, 1);
    assert_eq!(boots[0]["policy"], "install:lab", "{boots:#?}");
    assert_eq!(
        boots[0]["booted"], "kernel lab/vmlinuz initrd lab/initrd.gz",
        "{boots:#?}"
    );
    let history = lab.json(&["history", &vm.mac]);
    let reports = events(&history, "InstallReported");
    assert_eq!(reports.len(), 1, "{history:#}");
    assert_eq!(reports[0]["event"]["device"], "/dev/sda1");
    assert_eq!(
        reports[0]["actor"],
        format!("installer@{}", vm.mac).as_str(),
        "{history:#}"
    );
    let fetched = events(&history, "BootEntryUsed");
    assert!(
        fetched.iter().any(|e| e["event"]["file"]
            .as_str()
            .unwrap()
            .ends_with(&format!("01-{}", vm.mac.replace(':', "-")))),
        "pxelinux fetched the machine's own entry: {history:#}"
    );

    // Second boot: nmt now serves the local-boot entry, and the VM boots its disk.
    if dhcp == Dhcp::IscDhcpd {
        // As an admin would after nmt rewrote the include: the next DHCP answer comes from
        // nmt's host entry (iPXE's user class gets nmt's iPXE script).
        lab.restart_dhcpd();
    }
    let second = lab.boot_one(&vm);
    booted_disk(&second, &vm);
    let boots = lab.boots(&vm.mac, 2);
    assert_eq!(boots.len(), 2, "{boots:#?}");
    assert_eq!(boots[1]["policy"], "localboot", "{boots:#?}");
    assert_eq!(boots[1]["origin"], "group", "{boots:#?}");
    assert_eq!(
        boots[1]["set_by"],
        format!("installer@{}", vm.mac).as_str(),
        "{boots:#?}"
    );
    let dashed = vm.mac.replace(':', "-");
    let pxelinux = format!("pxelinux.cfg/01-{dashed}");
    let ipxe = format!("ipxe/01-{dashed}.ipxe");
    let (first_file, second_file) = match dhcp {
        // pxelinux both times (dnsmasq's dhcp-boot).
        Dhcp::Dnsmasq => (
            format!("pxelinux.cfg/01-{dashed}"),
            format!("pxelinux.cfg/01-{dashed}"),
        ),
        // The subnet's pxelinux.0 for the unknown machine, then nmt's host entry, whose
        // iPXE branch hands iPXE nmt's script.
        Dhcp::IscDhcpd => (pxelinux.clone(), ipxe.clone()),
        // The unknown machine gets pxelinux.0 from the BIOS class. The report put it in a
        // group, so nmt lists it and reloaded Kea: known now, iPXE gets nmt's boot.ipxe,
        // which chains to the machine's own script.
        Dhcp::Kea => (pxelinux.clone(), ipxe.clone()),
    };
    assert!(
        boots[0]["file"].as_str().unwrap().ends_with(&first_file),
        "{boots:#?}"
    );
    assert!(
        boots[1]["file"].as_str().unwrap().ends_with(&second_file),
        "{boots:#?}"
    );
    // The admin who made `unknown` install is named for the first boot.
    assert_eq!(
        boots[0]["set_by"],
        nmt::current_actor().as_str(),
        "{boots:#?}"
    );
    (lab, vm)
}

#[test]
fn andreas_installs_then_boots_local_dnsmasq() {
    andreas(Dhcp::Dnsmasq);
}

#[test]
fn andreas_installs_then_boots_local_isc_dhcpd() {
    andreas(Dhcp::IscDhcpd);
}

/// Andreas with Kea: discovered from Kea's log, installed, booted from its disk; then a fixed
/// address. nmt checks Kea's configuration and reloads it through its control socket (the
/// same process), and the machine's next DHCP gets the reserved address.
#[test]
fn andreas_installs_then_boots_local_kea_then_gets_a_fixed_address() {
    const RESERVED: &str = "10.213.0.20";
    let (mut lab, vm) = andreas(Dhcp::Kea);
    let pid = lab.kea_pid();
    // A discovery does not list a machine; the report that put it in a group did, and
    // reloaded Kea once.
    let reloads = crate::kea::reloads(&lab.dir);
    assert_eq!(
        reloads, 1,
        "one reload: the reservation made when the report grouped it"
    );
    let history = lab.json(&["history", &vm.mac]);
    assert!(
        crate::kea::acked_by_kea(&history),
        "discovered from Kea's log: {history:#}"
    );

    lab.nmt(&["assign", &vm.mac, "localboot", "--ip", RESERVED]);
    assert_eq!(crate::kea::reloads(&lab.dir), reloads + 1);
    assert_eq!(lab.kea_pid(), pid, "Kea was reloaded, not restarted");
    let res = std::fs::read_to_string(lab.t.state().join("dhcp/kea-nmt.json")).unwrap();
    assert!(
        res.lines()
            .any(|l| l.contains(&vm.mac) && l.contains(&format!("\"ip-address\": \"{RESERVED}\""))),
        "{res}"
    );

    let third = lab.boot_one(&vm);
    booted_disk(&third, &vm);
    let m = machine(&lab, &vm.mac);
    assert_eq!(m["last_ip"], RESERVED, "{m:#}");
    let boots = lab.boots(&vm.mac, 3);
    assert_eq!(boots[2]["policy"], "localboot", "{boots:#?}");
    // Kea's own lease file holds the reserved address for the machine.
    let leases = std::fs::read_to_string(lab.dir.join("kea-leases4.csv")).unwrap();
    assert!(
        leases
            .lines()
            .any(|l| l.starts_with(&format!("{RESERVED},{}", vm.mac))),
        "{leases}"
    );
    assert_eq!(lab.kea_pid(), pid);
}

/// A disk as the lab's installer leaves it, written before the VM first boots.
fn preinstall(vm: &Vm) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&vm.disk)
        .unwrap();
    f.write_all(&super::boot_sector(&format!(
        "NMT-DISK-BOOT installed-by-nmt mac={}",
        vm.mac
    )))
    .unwrap();
}

/// The LTSP stand-in booted.
fn booted_ltsp(boot: &Boot, vm: &Vm) {
    boot.shows(&format!("NMT-LTSP-CLIENT mac={}", vm.mac))
        .lacks("NMT-DISK-BOOT")
        .exited(0);
}

/// Kathrin: three machines in two groups with different policies; each boots what its group
/// says, and nmt's account of each boot says what it got and who decided.
#[test]
fn kathrin_groups_boot_what_their_group_says() {
    let mut lab = Lab::start(Dhcp::Dnsmasq);
    let me = nmt::current_actor();
    lab.nmt(&["group", "add", "physics", "--policy", "localboot"]);
    lab.nmt(&["group", "add", "chemistry", "--policy", "ltsp"]);
    let macs = [
        "52:54:00:4b:00:01",
        "52:54:00:4b:00:02",
        "52:54:00:4b:00:03",
    ];
    for (i, (mac, group)) in macs
        .iter()
        .zip(["physics", "physics", "chemistry"])
        .enumerate()
    {
        let name = format!("node0{}", i + 1);
        lab.nmt(&["machine", "add", mac, "--name", &name, "--group", group]);
    }
    // node01's installer reported its root device, so its entry chains to that disk's
    // boot sector; node02's is unknown, so its entry hands back to the BIOS (LOCALBOOT 0).
    lab.nmt(&["rootdev", "set", "node01", "/dev/sda1"]);
    let vms: Vec<Vm> = macs
        .iter()
        .enumerate()
        .map(|(i, mac)| lab.vm(&format!("node0{}", i + 1), mac, Firmware::Bios))
        .collect();
    preinstall(&vms[0]);
    preinstall(&vms[1]);
    let boots = lab.boot(&vms.iter().collect::<Vec<_>>());
    booted_disk(&boots[0], &vms[0]);
    booted_disk(&boots[1], &vms[1]);
    booted_ltsp(&boots[2], &vms[2]);

    let expect = [
        ("node01", "physics", "localboot", "local disk hd0"),
        ("node02", "physics", "localboot", "local disk"),
        (
            "node03",
            "chemistry",
            "ltsp",
            "kernel lab/vmlinuz initrd lab/initrd.gz",
        ),
    ];
    for (vm, (name, group, policy, booted)) in vms.iter().zip(expect) {
        let m = machine(&lab, name);
        assert_eq!(m["mac"], vm.mac.as_str(), "{m:#}");
        assert_eq!(m["group"], group, "{m:#}");
        assert_eq!(m["effective_policy"], policy, "{m:#}");
        assert_eq!(m["last_boot"]["policy"], policy, "{m:#}");
        assert!(
            m["last_ip"].as_str().unwrap().starts_with("10.213.0."),
            "{m:#}"
        );
        let boots = lab.boots(name, 1);
        assert_eq!(boots.len(), 1, "{name}: {boots:#?}");
        let b = &boots[0];
        assert_eq!(b["policy"], policy, "{name}: {b:#}");
        assert_eq!(b["origin"], "group", "{name}: {b:#}");
        assert_eq!(b["booted"], booted, "{name}: {b:#}");
        assert_eq!(b["set_by"], me.as_str(), "{name}: {b:#}");
        assert_eq!(b["ip"], m["last_ip"], "{name}: {b:#}");
        assert!(
            b["file"]
                .as_str()
                .unwrap()
                .ends_with(&format!("pxelinux.cfg/01-{}", vm.mac.replace(':', "-"))),
            "{name}: {b:#}"
        );
        // The history tells the DHCP exchange, the entry fetched, and the admin's changes.
        let history = lab.json(&["history", name]);
        let dhcp: Vec<&str> = events(&history, "DhcpSeen")
            .iter()
            .map(|e| e["event"]["kind"].as_str().unwrap())
            .collect();
        assert!(dhcp.contains(&"ack"), "{name}: {history:#}");
        assert_eq!(events(&history, "BootEntryUsed").len(), 1, "{history:#}");
        let assigned = events(&history, "MachineRegistered");
        assert_eq!(assigned[0]["actor"], me.as_str(), "{history:#}");
    }
    // The text view names the same.
    let text = lab.nmt(&["boots", "node03"]);
    assert!(
        text.contains("ltsp") && text.contains("lab/vmlinuz"),
        "{text}"
    );
}

/// Reinhard: his group goes to LTSP for a lesson and back to the disks, with nothing but
/// `nmt policy`: the DHCP server is never restarted.
#[test]
fn reinhard_switches_his_group_to_ltsp_and_back() {
    let mut lab = Lab::start(Dhcp::Dnsmasq);
    lab.nmt(&["group", "add", "room12", "--policy", "localboot"]);
    let macs = ["52:54:00:12:00:01", "52:54:00:12:00:02"];
    let vms: Vec<Vm> = macs
        .iter()
        .enumerate()
        .map(|(i, mac)| {
            let name = format!("pc{}", i + 1);
            lab.nmt(&["machine", "add", mac, "--name", &name, "--group", "room12"]);
            lab.vm(&name, mac, Firmware::Bios)
        })
        .collect();
    for vm in &vms {
        preinstall(vm);
    }
    let all: Vec<&Vm> = vms.iter().collect();
    let dnsmasq_pid = std::fs::read_to_string(lab.dir.join("dnsmasq.pid")).unwrap();

    lab.nmt(&["policy", "@room12", "ltsp"]);
    let boots = lab.boot(&all);
    for (b, vm) in boots.iter().zip(&vms) {
        booted_ltsp(b, vm);
    }
    lab.nmt(&["policy", "@room12", "localboot"]);
    let boots = lab.boot(&all);
    for (b, vm) in boots.iter().zip(&vms) {
        booted_disk(b, vm);
    }

    assert_eq!(
        std::fs::read_to_string(lab.dir.join("dnsmasq.pid")).unwrap(),
        dnsmasq_pid,
        "the DHCP server was not restarted"
    );
    assert_eq!(
        lab.server_log().matches("started, version").count(),
        1,
        "dnsmasq started once"
    );
    for vm in &vms {
        let boots = lab.boots(&vm.name, 2);
        assert_eq!(boots.len(), 2, "{boots:#?}");
        assert_eq!(boots[0]["policy"], "ltsp", "{boots:#?}");
        assert_eq!(
            boots[0]["booted"], "kernel lab/vmlinuz initrd lab/initrd.gz",
            "{boots:#?}"
        );
        assert!(
            boots[0]["set_how"]
                .as_str()
                .unwrap()
                .contains("group room12 policy set to ltsp"),
            "{boots:#?}"
        );
        assert_eq!(boots[1]["policy"], "localboot", "{boots:#?}");
        assert_eq!(boots[1]["booted"], "local disk", "{boots:#?}");
        assert!(
            boots[1]["set_how"]
                .as_str()
                .unwrap()
                .contains("group room12 policy set to localboot"),
            "{boots:#?}"
        );
        let m = machine(&lab, &vm.name);
        assert_eq!(m["effective_policy"], "localboot", "{m:#}");
    }
}

/// One-shot: `--once` installs on the next boot only; the boot after that is local without
/// anyone touching nmt.
#[test]
fn once_installs_one_time_then_boots_local() {
    let mut lab = Lab::start(Dhcp::Dnsmasq);
    let mac = "52:54:00:01:00:01";
    lab.nmt(&["group", "add", "lab", "--policy", "localboot"]);
    lab.nmt(&["machine", "add", mac, "--name", "vm1", "--group", "lab"]);
    lab.nmt(&["policy", "vm1", "install:lab", "--once"]);
    let m = machine(&lab, "vm1");
    assert_eq!(m["effective_policy"], "install:lab", "{m:#}");
    assert_eq!(m["once"], true, "{m:#}");
    let vm = lab.vm("vm1", mac, Firmware::Bios);

    let first = lab.boot_one(&vm);
    installed(&first, &vm);
    let m = machine(&lab, "vm1");
    assert_eq!(
        m["effective_policy"], "localboot",
        "the one-shot is spent: {m:#}"
    );
    assert_eq!(m["policy_origin"], "group", "{m:#}");
    assert_eq!(m["once"], false, "{m:#}");
    assert_eq!(
        m["group"], "lab",
        "a known machine stays in its group: {m:#}"
    );
    assert_eq!(m["rootdev"], "/dev/sda1", "{m:#}");

    let second = lab.boot_one(&vm);
    booted_disk(&second, &vm);
    let boots = lab.boots("vm1", 2);
    assert_eq!(boots.len(), 2, "{boots:#?}");
    assert_eq!(boots[0]["policy"], "install:lab", "{boots:#?}");
    assert_eq!(boots[0]["origin"], "machine-once", "{boots:#?}");
    assert!(
        boots[0]["set_how"]
            .as_str()
            .unwrap()
            .contains("(next boot only)"),
        "{boots:#?}"
    );
    assert_eq!(boots[1]["policy"], "localboot", "{boots:#?}");
    assert_eq!(boots[1]["origin"], "group", "{boots:#?}");
    assert_eq!(boots[1]["booted"], "local disk hd0", "{boots:#?}");
    // Nobody touched nmt between the two boots: every event after the one-shot was set came
    // from the DHCP/TFTP log or the installer.
    let history = lab.json(&["history", "vm1"]);
    let once_at = history
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["event"]["type"] == "MachinePolicySet")
        .unwrap();
    for e in &history.as_array().unwrap()[once_at + 1..] {
        let actor = e["actor"].as_str().unwrap();
        assert!(
            actor.starts_with("dnsmasq@") || actor.starts_with("installer@"),
            "{e:#}"
        );
    }
}

/// UEFI: OVMF, iPXE's EFI driver and GRUB from `grub-mknetdir`, which reads nmt's
/// `grub.cfg-01-<mac>`, here for a one-shot install. GRUB fetches that file twice in one
/// boot, so the one-shot spent by the first fetch must still be served to the second. The
/// installer writes an EFI system partition; the local-boot entry finds its loader and
/// chains to it.
#[test]
fn uefi_installs_once_through_grub_then_boots_the_efi_partition() {
    let mut lab = Lab::start(Dhcp::Dnsmasq);
    let mac = "52:54:00:ef:00:01";
    lab.nmt(&["group", "add", "lab", "--policy", "localboot"]);
    lab.nmt(&["machine", "add", mac, "--name", "efi1", "--group", "lab"]);
    lab.nmt(&["policy", "efi1", "install:lab", "--once"]);
    let vm = lab.vm("efi1", mac, Firmware::Uefi);
    let first = lab.boot_one(&vm);
    installed(&first, &vm);
    first.shows("firmware=efi");
    let m = machine(&lab, "efi1");
    assert_eq!(m["arch"], 7, "DHCP option 93 said x86-64 UEFI: {m:#}");
    assert_eq!(m["effective_policy"], "localboot", "{m:#}");
    assert_eq!(m["once"], false, "{m:#}");

    let second = lab.boot_one(&vm);
    second
        .shows("NMT-DISK-BOOT-EFI")
        .lacks("NMT-BOOTED")
        .exited(0);
    let boots = lab.boots("efi1", 2);
    assert_eq!(
        boots.len(),
        2,
        "two boots, whatever GRUB fetched: {boots:#?}"
    );
    let grub = format!("grub/grub.cfg-01-{}", mac.replace(':', "-"));
    for b in &boots {
        assert!(b["file"].as_str().unwrap().ends_with(&grub), "{boots:#?}");
    }
    assert_eq!(boots[0]["policy"], "install:lab", "{boots:#?}");
    assert_eq!(boots[0]["origin"], "machine-once", "{boots:#?}");
    assert_eq!(boots[1]["policy"], "localboot", "{boots:#?}");
    assert_eq!(boots[1]["origin"], "group", "{boots:#?}");
    let history = lab.json(&["history", "efi1"]);
    assert!(
        events(&history, "BootEntryUsed").len() >= 4,
        "GRUB fetched its file at least twice a boot: {history:#}"
    );
}

/// Put what a machine installed on a lab VM's disk: a boot sector that prints `message`, and
/// from 1 MiB an ext4 filesystem holding `/marker` with `message`.
fn installed_disk(lab: &Lab, vm: &Vm, message: &str) {
    use std::io::{Seek, Write};
    let root = lab.dir.join(format!("{}-root", vm.name));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("marker"), format!("{message}\n")).unwrap();
    crate::util::must(&[
        "mke2fs",
        "-q",
        "-F",
        "-t",
        "ext4",
        "-E",
        "offset=1048576",
        "-d",
        root.to_str().unwrap(),
        vm.disk.to_str().unwrap(),
        "64512k",
    ]);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&vm.disk)
        .unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&super::boot_sector(message)).unwrap();
}

/// The marker file on a lab VM's disk, read with debugfs from a copy of its partition.
fn disk_marker(lab: &Lab, vm: &Vm) -> String {
    let disk = std::fs::read(&vm.disk).unwrap();
    let part = lab.dir.join(format!("{}-p1.img", vm.name));
    std::fs::write(&part, &disk[1 << 20..]).unwrap();
    crate::util::must(&["debugfs", "-R", "cat /marker", part.to_str().unwrap()])
}

/// The lab's TFTP root gets nmt's imager where the save-image and restore-image profiles
/// look for it.
fn with_imager(lab: &Lab) {
    let built = crate::imager::imager();
    let dir = lab.t.state().join("tftp/nmt/imager");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["vmlinuz", "initrd.img"] {
        std::fs::copy(built.join(f), dir.join(f)).unwrap();
    }
}

/// The golden machine `golden` (its disk installed with the marker `golden-lab-image`) saved
/// as the image `lab` through a real PXE boot into nmt's imager.
fn saved_golden(lab: &mut Lab, mac: &str) -> Vm {
    let golden = lab.vm("golden", mac, Firmware::Bios);
    installed_disk(lab, &golden, "NMT-DISK-BOOT golden-lab-image");
    lab.nmt(&["machine", "add", &golden.mac, "--name", "golden"]);
    lab.nmt(&["policy", "golden", "save-image:lab", "--once"]);
    lab.boot_one(&golden)
        .shows("NMT-IMAGER-OK save lab@1")
        .lacks("NMT-IMAGER-FAILED")
        .exited(0);
    golden
}

/// Rich: one installed lab machine is saved as the image `lab` through a real PXE boot into
/// nmt's imager, and boots its own disk again; then a blank machine restores it, verified,
/// and boots what the first one had.
#[test]
fn rich_saves_a_machine_as_an_image_and_restores_it_onto_a_blank_one() {
    let mut lab = Lab::start(Dhcp::Dnsmasq);
    with_imager(&lab);
    let golden = lab.vm("golden", "52:54:00:1c:00:01", Firmware::Bios);
    installed_disk(&lab, &golden, "NMT-DISK-BOOT golden-lab-image");
    lab.nmt(&["machine", "add", &golden.mac, "--name", "golden"]);
    lab.nmt(&["policy", "golden", "save-image:lab", "--once"]);

    // The save: the imager streams the disk to nmtd, which checks it and stores it.
    let save = lab.boot_one(&golden);
    save.shows("NMT-IMAGER-OK save lab@1")
        .lacks("NMT-IMAGER-FAILED")
        .exited(0);
    let shown = lab.json(&["image", "show", "lab"]);
    assert_eq!(shown["version"], 1, "{shown:#}");
    assert_eq!(shown["manifest"]["label"], "dos", "{shown:#}");
    assert_eq!(shown["manifest"]["parts"][0]["fstype"], "ext4", "{shown:#}");
    assert_eq!(
        shown["manifest"]["parts"][0]["tool"], "partclone.extfs",
        "{shown:#}"
    );
    assert!(lab.nmt(&["image", "check", "lab"]).contains("lab@1: sound"));
    let h = lab.nmt(&["history", "golden"]);
    assert!(h.contains("saved image lab@1"), "{h}");
    // The one-shot is spent: golden boots its own disk again.
    let again = lab.boot_one(&golden);
    again
        .shows("NMT-DISK-BOOT golden-lab-image")
        .lacks("NMT-IMAGER")
        .exited(33);

    // The restore onto a blank machine, then its own boot from what was restored.
    let blank = lab.vm("blank", "52:54:00:1c:00:02", Firmware::Bios);
    lab.nmt(&["machine", "add", &blank.mac, "--name", "lab02"]);
    lab.nmt(&["policy", "lab02", "restore-image:lab", "--once"]);
    let restore = lab.boot_one(&blank);
    restore
        .shows("NMT-IMAGER-OK restore lab@1")
        .lacks("NMT-IMAGER-FAILED")
        .exited(0);
    assert!(disk_marker(&lab, &blank).contains("NMT-DISK-BOOT golden-lab-image"));
    // Both disks started as zeros: the restored one is the saved one, byte for byte (boot
    // code, partition table, and every block of the filesystem).
    assert!(
        std::fs::read(&golden.disk).unwrap() == std::fs::read(&blank.disk).unwrap(),
        "the restored disk differs from the saved one"
    );
    let shown = lab.json(&["image", "show", "lab"]);
    assert_eq!(shown["restored_onto"][0]["name"], "lab02", "{shown:#}");
    let h = lab.nmt(&["history", "lab02"]);
    assert!(h.contains("restored image lab@1"), "{h}");
    // Which image, and which version, it was restored from.
    let boots = lab.boots("lab02", 1);
    assert_eq!(
        boots[0]["imaged"], "restored lab@1 (verified)",
        "{boots:#?}"
    );
    let booted = lab.boot_one(&blank);
    booted
        .shows("NMT-DISK-BOOT golden-lab-image")
        .lacks("NMT-IMAGER")
        .exited(33);
}

/// A restore cut off in the middle (the machine switched off): nmt records the failure, the
/// machine stays on its restore policy, and its next boot restores for real.
#[test]
fn rich_a_restore_cut_off_fails_visibly_and_completes_at_the_next_boot() {
    let mut lab = Lab::start(Dhcp::Dnsmasq);
    with_imager(&lab);
    saved_golden(&mut lab, "52:54:00:1c:01:01");

    let vm = lab.vm("lab03", "52:54:00:1c:01:03", Firmware::Bios);
    lab.nmt(&["machine", "add", &vm.mac, "--name", "lab03"]);
    lab.nmt(&["policy", "lab03", "restore-image:lab", "--once"]);
    let cut = lab.boot_cut_at(&vm, "restoring lab@1 onto");
    cut.shows("restoring lab@1 onto").lacks("NMT-IMAGER-OK");
    // Until it boots again nmt cannot know; its entry already restores again.
    let m = machine(&lab, "lab03");
    assert_eq!(m["effective_policy"], "restore-image:lab", "{m:#}");

    let again = lab.boot_one(&vm);
    again
        .shows("NMT-IMAGER-OK restore lab@1")
        .lacks("NMT-IMAGER-FAILED")
        .exited(0);
    let h = lab.nmt(&["history", "lab03"]);
    assert!(
        h.contains("failed to restore image lab@1: interrupted: the machine booted again"),
        "{h}"
    );
    assert!(h.contains("restored image lab@1"), "{h}");
    let boots = lab.boots("lab03", 2);
    assert!(
        boots[0]["imaged"]
            .as_str()
            .is_some_and(|i| i.starts_with("failed to restore lab@1: interrupted")),
        "{boots:#?}"
    );
    assert_eq!(
        boots[1]["imaged"], "restored lab@1 (verified)",
        "{boots:#?}"
    );
    // Verified, the one-shot is spent: the next boot is the restored disk's.
    let m = machine(&lab, "lab03");
    assert_eq!(m["effective_policy"], "localboot", "{m:#}");
    lab.boot_one(&vm)
        .shows("NMT-DISK-BOOT golden-lab-image")
        .lacks("NMT-IMAGER")
        .exited(33);
}

/// Rich re-images his lab at once: three blank machines restore the image through one
/// udpcast session that nmtd runs, then each boots what was restored.
#[test]
fn rich_restores_three_machines_at_once_through_one_multicast_session() {
    let mut lab = Lab::start_with(
        Dhcp::Dnsmasq,
        &format!(
            "[images]\nmulticast_interface = \"{}\"\nmulticast_wait = 90\n",
            super::BRIDGE
        ),
    );
    with_imager(&lab);
    saved_golden(&mut lab, "52:54:00:1c:02:01");

    lab.nmt(&["group", "add", "lab"]);
    let vms: Vec<Vm> = (1..=3)
        .map(|n| {
            let vm = lab.vm(
                &format!("lab0{n}"),
                &format!("52:54:00:1c:02:1{n}"),
                Firmware::Bios,
            );
            lab.nmt(&[
                "machine", "add", &vm.mac, "--name", &vm.name, "--group", "lab",
            ]);
            vm
        })
        .collect();
    lab.nmt(&["policy", "@lab", "restore-image:lab", "--yes"]);
    let refs: Vec<&Vm> = vms.iter().collect();
    for boot in lab.boot(&refs) {
        boot.shows("joining the multicast session")
            .lacks("over HTTP instead")
            .shows("NMT-IMAGER-OK restore lab@1")
            .exited(0);
    }
    let log = lab.nmtd_log();
    let sending: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("multicast session sending"))
        .collect();
    assert_eq!(sending.len(), 1, "one session served them all:\n{log}");
    assert!(sending[0].contains("machines=3"), "{}", sending[0]);
    assert!(
        log.contains("multicast session sent a stream"),
        "the partition went by multicast:\n{log}"
    );
    let shown = lab.json(&["image", "show", "lab"]);
    assert_eq!(
        shown["restored_onto"].as_array().unwrap().len(),
        3,
        "{shown:#}"
    );
    // Each boots the restored disk once the group is back on local boot.
    lab.nmt(&["policy", "@lab", "localboot"]);
    for (boot, vm) in lab.boot(&refs).iter().zip(&vms) {
        boot.shows("NMT-DISK-BOOT golden-lab-image").exited(33);
        assert!(disk_marker(&lab, vm).contains("golden-lab-image"));
    }
}

/// Rich's lab re-images itself on a schedule, and nmt says which machine did not: a schedule
/// a minute ahead sets the lab to restore the image once; at its time nmtd runs it, two
/// machines PXE-boot and restore, the third stays switched off. When the expected time is up,
/// `nmt schedule runs` shows 2 done and 1 never booted, naming it, with its one-shot still
/// pending for its next boot.
#[test]
fn rich_a_nightly_reimage_schedule_names_the_machine_that_never_booted() {
    let mut lab = Lab::start(Dhcp::Dnsmasq);
    with_imager(&lab);
    saved_golden(&mut lab, "52:54:00:1c:03:01");
    lab.nmt(&["group", "add", "lab"]);
    let vms: Vec<Vm> = (1..=3)
        .map(|n| {
            let vm = lab.vm(
                &format!("lab0{n}"),
                &format!("52:54:00:1c:03:1{n}"),
                Firmware::Bios,
            );
            lab.nmt(&[
                "machine", "add", &vm.mac, "--name", &vm.name, "--group", "lab",
            ]);
            vm
        })
        .collect();
    // A time a minute or two ahead (at least 20 s away, so it is defined before it comes).
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(80);
    let at = at.to_zoned(jiff::tz::TimeZone::UTC);
    let cron = format!("{} {} * * *", at.minute(), at.hour());
    let out = lab.nmt(&[
        "schedule",
        "add",
        "lab-nightly",
        "--cron",
        &cron,
        "--tz",
        "UTC",
        "--expect",
        "5m",
        "--yes",
        "--",
        "policy",
        "@lab",
        "restore-image:lab",
        "--once",
    ]);
    assert!(out.contains("next run: "), "{out}");
    let runs = |lab: &Lab| lab.json(&["schedule", "runs", "lab-nightly"]);
    crate::util::wait_for(
        "the schedule's run",
        std::time::Duration::from_secs(150),
        || runs(&lab)["runs"][0]["run"] == 1,
    );
    let run = &runs(&lab)["runs"][0];
    assert_eq!(run["targeted"], 3, "{run:#}");
    let m = machine(&lab, "lab03");
    assert_eq!(m["effective_policy"], "restore-image:lab", "{m:#}");

    // lab01 and lab02 are switched on; lab03 stays off.
    for boot in lab.boot(&[&vms[0], &vms[1]]) {
        boot.shows("NMT-IMAGER-OK restore lab@1")
            .lacks("NMT-IMAGER-FAILED")
            .exited(0);
    }
    crate::util::wait_for(
        "the run's check",
        std::time::Duration::from_secs(420),
        || !runs(&lab)["runs"][0]["checked"].is_null(),
    );
    let run = &runs(&lab)["runs"][0];
    assert_eq!(run["counts"]["done"], 2, "{run:#}");
    assert_eq!(run["counts"]["never-booted"], 1, "{run:#}");
    assert_eq!(run["not_done"].as_array().unwrap().len(), 1, "{run:#}");
    assert_eq!(run["not_done"][0]["name"], "lab03", "{run:#}");
    assert_eq!(run["not_done"][0]["once_pending"], true, "{run:#}");
    let text = lab.nmt(&["schedule", "runs", "lab-nightly"]);
    assert!(text.contains("2 done, 1 never booted"), "{text}");
    assert!(text.contains("never booted   lab03"), "{text}");
    let h = lab.nmt(&["history", "lab01"]);
    assert!(h.contains("restored image lab@1"), "{h}");
    assert!(h.contains("schedule lab-nightly run 1 checked"), "{h}");
    // lab03's one-shot still waits: when it is switched on, it restores.
    lab.boot_one(&vms[2])
        .shows("NMT-IMAGER-OK restore lab@1")
        .exited(0);
}
