//! End-to-end tests of the real binaries, one module per area.

// Helpers: run `nmt` in a temp state dir, read generated files, run `dhcpd -t`.
mod util;

// The specification's stories through the CLI: Kathrin, Reinhard, Andreas.
mod stories;

// Every command's edges: refusals append nothing, hostile input, bad MACs, concurrency,
// drift and stale files, help texts.
mod cli;

// The event schema: the journal written by the first release still decodes and folds.
mod journal;

// A model test: random commands; incremental files always equal a full render, and the
// store refolds to the live state.
mod model;

// nmtd for real: the CLI through its socket, installer reports with and without tokens.
mod daemon;

// Log ingest through nmtd: discovery within a second, rotation, and SIGKILL exactly-once.
mod ingest;

// A real DHCP exchange: dnsmasq and busybox udhcpc in network namespaces, nmtd following the log.
mod lab_dnsmasq;

// The real netboot lab: QEMU VMs PXE-boot from real dnsmasq / ISC dhcpd in network
// namespaces, nmtd decides what they boot, and their serial consoles are checked.
mod netboot;

// The past: journal export/import round trips, --at, `nmt boots`, `nmt verify`.
mod forensics;

// The web UI in a real headless Chromium: the Andreas and Kathrin stories by clicking, live
// discovery, hostile host names, screenshots; login and CSRF on a non-loopback listener.
mod web;
