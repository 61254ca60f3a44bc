//! Bringing the generated files up to date: the files an append affected, or everything;
//! the DHCP servers' check and reload hooks; drift, stale files and `verify`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use nmt_projections::render::{self, File, MARKER, Target};
use nmt_projections::{Affected, State};

use super::Engine;
use crate::files::{self, Drift, WriteOutcome};

/// The marker recording up to which event the generated files are current.
pub(super) const RENDERED_FILE: &str = "rendered-seq";

impl Engine {
    /// Fold the whole log from scratch and compare it with the live projection and with the
    /// files on disk; the differences, as sentences.
    pub fn verify(&self) -> Result<Vec<String>> {
        let mut fresh = State::new();
        self.events(None, None, &mut |env| {
            fresh.apply(&env);
            Ok(true)
        })?;
        let fresh = self.keyed(fresh);
        let mut out = Vec::new();
        if fresh != self.state {
            out.push(format!(
                "the live projection differs from a fresh fold of the {} events in the log",
                fresh.last_seq()
            ));
            for m in fresh.machines() {
                if self.state.machine(&m.mac) != Some(m) {
                    out.push(format!("  machine {} differs", m.mac));
                }
            }
            for m in self.state.machines() {
                if fresh.machine(&m.mac).is_none() {
                    out.push(format!("  machine {} is not in the log", m.mac));
                }
            }
        }
        let files = render::all(&fresh, &self.config.render);
        out.extend(
            files::drift(
                files
                    .iter()
                    .map(|f| (self.config.path_of(&f.target), f.bytes.as_slice())),
            )
            .into_iter()
            .map(|d| d.to_string()),
        );
        out.extend(
            self.stale_files(&files)
                .into_iter()
                .map(|p| Drift::Stale(p).to_string()),
        );
        Ok(out)
    }

    /// The files a plan would write (new bytes, or new files) and remove (those that
    /// exist), compared with what is on disk now; nothing is written.
    pub fn planned_files(&self, plan: &super::Plan) -> WriteOutcome {
        let (files, removals) = self.files_for(&plan.after, &plan.affected);
        let mut out = WriteOutcome::default();
        let mut seen = HashSet::new();
        for f in files {
            let path = self.config.path_of(&f.target);
            if !seen.insert(path.clone()) {
                continue;
            }
            if std::fs::read(&path).ok().as_deref() == Some(f.bytes.as_slice()) {
                out.unchanged += 1;
            } else {
                out.written.push(path);
            }
        }
        for p in removals {
            if p.exists() && seen.insert(p.clone()) {
                out.removed.push(p);
            }
        }
        out
    }

    fn files_for(&self, state: &State, affected: &Affected) -> (Vec<File>, Vec<PathBuf>) {
        let cfg = &self.config.render;
        let mut out = Vec::new();
        let mut removals = Vec::new();
        for mac in &affected.machines {
            let files = render::machine_files(state, mac, cfg);
            if !files.is_empty() {
                out.extend(files);
            } else {
                // A removed machine, or one the default entry serves now.
                removals.extend(
                    render::machine_targets(mac)
                        .iter()
                        .map(|t| self.config.path_of(t)),
                );
            }
        }
        if affected.defaults {
            out.extend(render::default_files(state, cfg));
        }
        if affected.dhcp {
            out.push(render::dhcpd_include(state, cfg));
            out.push(render::dnsmasq_hosts(state, cfg));
            out.push(render::kea_reservations(state, cfg));
        }
        if affected.hosts {
            out.push(render::etc_hosts(state, cfg));
        }
        for g in &affected.groups {
            let files = render::group_files(state, g, cfg);
            let keep: HashSet<PathBuf> = files
                .iter()
                .map(|f| self.config.path_of(&f.target))
                .collect();
            if files.is_empty() {
                removals.extend(
                    render::group_targets(g)
                        .iter()
                        .map(|t| self.config.path_of(t)),
                );
            }
            // Shared pxelinux entries for local disks no member has any more.
            let prefix = render::group_pxelinux_prefix(g);
            let (dir, stem) = prefix.rsplit_once('/').expect("the prefix has a directory");
            let dir = self.config.path_of(&Target::Tftp(dir.to_string()));
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if e.file_name().to_string_lossy().starts_with(stem) && !keep.contains(&p) {
                        removals.push(p);
                    }
                }
            }
            out.extend(files);
        }
        for g in &affected.node_lists {
            match render::node_list(state, g) {
                Some(f) => out.push(f),
                None => removals.push(self.config.path_of(&Target::NodeList(g.clone()))),
            }
        }
        (out, removals)
    }

    /// Bring the files an append affected up to date. `before` is the last event before the
    /// append: if the files were not current up to it (a crash between a commit and its
    /// files), everything is rendered instead.
    pub fn render(&mut self, affected: &Affected, before: u64) -> Result<WriteOutcome> {
        if self.rendered < before {
            return self.render_all();
        }
        if affected.is_empty() {
            self.mark_rendered();
            return Ok(WriteOutcome::default());
        }
        let (files, removals) = self.files_for(&self.state, affected);
        let out = self.noting(|e| e.write_checked(&files, removals))?;
        self.mark_rendered();
        Ok(out)
    }

    /// Run a write, and remember why it failed (for [`Engine::files_problem`]) or that the
    /// files are current again.
    fn noting(&mut self, f: impl FnOnce(&Self) -> Result<WriteOutcome>) -> Result<WriteOutcome> {
        let r = f(self);
        self.files_problem = r.as_ref().err().map(|e| format!("{e:#}"));
        r
    }

    /// Render everything, and remove generated files that no longer belong to anything.
    pub fn render_all(&mut self) -> Result<WriteOutcome> {
        let files = render::all(&self.state, &self.config.render);
        let stale = self.stale_files(&files);
        let out = self.noting(|e| e.write_checked(&files, stale))?;
        self.mark_rendered();
        Ok(out)
    }

    /// Write files; when a DHCP server's file changed, run its check (and put the previous
    /// file back if the check fails), then its reload. Kea is reloaded through its control
    /// socket, whose answer says whether it took the file; on a rejection the previous file
    /// is put back and Kea reloaded on it.
    fn write_checked(&self, files: &[File], removals: Vec<PathBuf>) -> Result<WriteOutcome> {
        let hooks = &self.config.hooks;
        let watched = [
            Watched {
                target: Target::DhcpdInclude,
                check: &hooks.dhcpd_check,
                reload: Reload::Shell(&hooks.dhcpd_reload),
                server: "dhcpd",
            },
            Watched {
                target: Target::DnsmasqHosts,
                check: &hooks.dnsmasq_check,
                reload: Reload::Shell(&hooks.dnsmasq_reload),
                server: "dnsmasq",
            },
            Watched {
                target: Target::KeaReservations,
                check: &hooks.kea_check,
                reload: Reload::Kea(&hooks.kea_socket),
                server: "Kea",
            },
        ];
        // The previous bytes of DHCP files about to change, to put back if rejected.
        let mut previous = Vec::new();
        for w in &watched {
            if !w.hooked() {
                continue;
            }
            if let Some(f) = files.iter().find(|f| f.target == w.target) {
                let path = self.config.path_of(&w.target);
                let old = std::fs::read(&path).ok();
                if old.as_deref() != Some(f.bytes.as_slice()) {
                    previous.push((w, path, old));
                }
            }
        }
        let out = files::write_batch(
            files
                .iter()
                .map(|f| (self.config.path_of(&f.target), f.bytes.as_slice())),
            removals,
        )?;
        for (w, path, old) in previous {
            let server = w.server;
            let put_back = |path: &Path| -> Result<()> {
                match &old {
                    Some(bytes) => {
                        files::write_batch([(path.to_path_buf(), bytes.as_slice())], [])?
                    }
                    None => files::write_batch([], [path.to_path_buf()])?,
                };
                Ok(())
            };
            if let Some(cmd) = w.check
                && let Err(why) = run_hook(cmd)
            {
                put_back(&path)?;
                bail!(
                    "{server} rejected the new {} (`{cmd}`: {why}); the previous file stays in place and {server} was not reloaded",
                    path.display()
                );
            }
            match w.reload {
                Reload::Shell(Some(cmd)) => {
                    run_hook(cmd).map_err(|why| {
                        anyhow::anyhow!("{server} was not reloaded: `{cmd}` {why}")
                    })?;
                }
                Reload::Kea(Some(socket)) => {
                    let answer = crate::kea::command(socket, "config-reload")
                        .map_err(|e| anyhow::anyhow!("Kea was not reloaded: {e:#}"))?;
                    if answer.result != 0 {
                        put_back(&path)?;
                        // Kea keeps running on the configuration it had; reloading the
                        // previous file makes sure what runs is what is on disk.
                        let again = match crate::kea::command(socket, "config-reload") {
                            Ok(a) if a.result == 0 => String::new(),
                            // The previous file fails the same way: the fault is elsewhere
                            // in Kea's configuration.
                            Ok(a) if a.text == answer.text => "; reloading the previous file \
                                 failed the same way, so the fault is elsewhere in Kea's \
                                 configuration"
                                .to_string(),
                            Ok(a) => {
                                format!("; reloading the previous file failed too: {}", a.text)
                            }
                            Err(e) => format!("; reloading the previous file failed too: {e:#}"),
                        };
                        bail!(
                            "Kea rejected the new {} (config-reload through {}: result {}, {}); the previous file is back in place, and Kea keeps serving on the configuration it had{again}",
                            path.display(),
                            socket.display(),
                            answer.result,
                            answer.text
                        );
                    }
                }
                Reload::Shell(None) | Reload::Kea(None) => {}
            }
        }
        Ok(out)
    }

    /// What `render_all` would change, without changing it.
    pub fn drift(&self) -> Vec<Drift> {
        let files = render::all(&self.state, &self.config.render);
        let mut out = files::drift(
            files
                .iter()
                .map(|f| (self.config.path_of(&f.target), f.bytes.as_slice())),
        );
        out.extend(self.stale_files(&files).into_iter().map(Drift::Stale));
        out
    }

    /// Files in nmt's output directories that carry nmt's marker but are not expected.
    fn stale_files(&self, expected: &[File]) -> Vec<PathBuf> {
        let want: HashSet<PathBuf> = expected
            .iter()
            .map(|f| self.config.path_of(&f.target))
            .collect();
        let mut out = Vec::new();
        for d in render::OUTPUT_DIRS {
            let Ok(rd) = std::fs::read_dir(self.config.dir_of(d)) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if want.contains(&p) || !e.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                if carries_marker(&p) {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    fn rendered_path(&self) -> PathBuf {
        self.config.state_dir.join(RENDERED_FILE)
    }

    /// Up to which event the generated files are known to be current.
    pub fn rendered_seq(&self) -> u64 {
        self.rendered
    }

    pub(super) fn read_rendered_marker(&self) -> u64 {
        std::fs::read_to_string(self.rendered_path())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn mark_rendered(&mut self) {
        self.files_problem = None;
        // Not synced on purpose: the files it vouches for were synced before, and a lost
        // marker only costs one full render.
        if self.rendered != self.state.last_seq() {
            let _ = std::fs::write(self.rendered_path(), format!("{}\n", self.state.last_seq()));
            self.rendered = self.state.last_seq();
        }
    }
}

/// A DHCP server's file, and how the server is checked and made to read it.
struct Watched<'a> {
    target: Target,
    check: &'a Option<String>,
    reload: Reload<'a>,
    server: &'static str,
}

/// How a DHCP server is made to read its changed file.
enum Reload<'a> {
    /// A shell command (`[hooks] dhcpd_reload`, `dnsmasq_reload`).
    Shell(&'a Option<String>),
    /// `config-reload` through Kea's control socket (`[hooks] kea_socket`).
    Kea(&'a Option<PathBuf>),
}

impl Watched<'_> {
    /// Whether anything is to be done when its file changes.
    fn hooked(&self) -> bool {
        self.check.is_some()
            || match self.reload {
                Reload::Shell(r) => r.is_some(),
                Reload::Kea(r) => r.is_some(),
            }
    }
}

/// Run a hook through the shell; the error carries its exit status and what it printed.
fn run_hook(cmd: &str) -> std::result::Result<(), String> {
    match std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let mut msg = String::from_utf8_lossy(&o.stderr).trim().to_string();
            if msg.is_empty() {
                msg = String::from_utf8_lossy(&o.stdout).trim().to_string();
            }
            Err(format!("failed ({}): {msg}", o.status))
        }
        Err(e) => Err(format!("could not run: {e}")),
    }
}

fn carries_marker(p: &Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let n = f.read(&mut buf).unwrap_or(0);
    let head = &buf[..n];
    head.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
}
