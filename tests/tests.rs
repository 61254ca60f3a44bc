//! End-to-end tests of the real binaries, one module per area.

// Debian's real installer in the netboot lab, from nmt's preseed and a local mirror, to the
// installed system's login prompt (netboot/installer.rs). It takes many minutes under TCG, so
// its module name sorts first: libtest starts tests in name order, and this one must start at
// once, beside the light tests, not after them.
mod a_real_installer {
    /// On BIOS (SeaBIOS, iPXE, pxelinux), or UEFI (OVMF, iPXE, GRUB) with
    /// `NMT_LAB_INSTALLER=uefi` or `both` (`netboot::installer_firmwares`).
    #[test]
    fn debian_installs_unattended_from_nmts_preseed_reports_and_boots_its_disk() {
        for firmware in crate::netboot::installer_firmwares() {
            crate::netboot::installer_story(firmware);
        }
    }
}

// Helpers shared by every module: `nmt` in a temp state dir (kept when a test fails), `nmtd`,
// waiting, what a test needs from the host (it fails saying so, never skips), `dhcpd -t`.
mod util;

// The specification's stories through the CLI: Kathrin, Reinhard, Andreas.
mod stories;

// Every command's edges: refusals append nothing, hostile input, bad MACs, concurrency,
// drift and stale files, help texts.
mod cli;

// The event schema: the fixture journals (the first release's, and one with every event kind
// and source) still decode, fold, import and export byte for byte.
mod journal;

// A model test: random commands; incremental files always equal a full render, and the
// store refolds to the live state.
mod model;

// Kea for real: the reservations file checked with `kea-dhcp4 -t`, a running kea-dhcp4
// reloaded through its control socket, a refused file put back.
mod kea;

// nmtd for real: the CLI through its socket, installer reports with and without tokens.
mod daemon;

// Log ingest through nmtd: discovery within a second, rotation, and SIGKILL exactly-once.
mod ingest;

// A real DHCP exchange: dnsmasq and busybox udhcpc in network namespaces, nmtd following the log.
mod lab_dnsmasq;

// The same with Kea: the README's classes, nmt's reservations, a reload through Kea's socket.
mod lab_kea;

// The real netboot lab: QEMU VMs PXE-boot from real dnsmasq / ISC dhcpd in network
// namespaces, nmtd decides what they boot, and their serial consoles are checked.
mod netboot;

// nmt's imager (packaging/imager): its initramfs holds every tool, and in QEMU it saves a
// disk to a stand-in for nmtd and restores it byte for byte onto a blank disk.
mod imager;

// The past: journal export/import round trips, --at, `nmt boots`, `nmt verify`.
mod forensics;

// The web UI in a real headless Chromium: the Andreas and Kathrin stories by clicking, live
// discovery, hostile host names, schedules, power, screenshots; login and CSRF on a
// non-loopback listener.
mod web;

// The modules of src/ depend one way: front ends → app → engine → store, files, config.
mod layers;

// Nothing lost, nothing wiped by surprise: one regression test per item of the safety review.
mod safety;

// Hostile networks and neighbours: nmtd stays up, keeps its secrets, recovers by itself.
mod hostile;

// Disk images through nmtd's machine-facing API.
mod imaging;

// Fuzzing: cargo-fuzz targets in fuzz/ (every parser, `journal import`, the machine-facing
// HTTP), built once and run for a bounded time each.
mod fuzz;

// Schedules run by the real nmtd in real time: runs as their owner, outcome checks, no
// stacked one-shots, and nothing fired by a journal import or a log replay.
mod schedules;

// Power control against real BMCs, no VMs: OpenIPMI's ipmi_sim (its chassis a script), the
// failures of one status over several machines, and sushy-tools' Redfish emulator over HTTPS.
mod power;
