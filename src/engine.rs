//! The engine both binaries share: open the store, fold it into the state, decide and append
//! commands, and bring the generated files up to date.
//!
//! One `Engine` is one holder of the store (redb allows one writer process). The CLI opens it
//! for one command; `nmtd` keeps it open. Domain rules stay in `nmt-projections`; this module
//! only sequences them with I/O.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use nmt_parsers::{RangeItem, parse_noderange};
use nmt_projections::render::{self, File, MARKER, Target};
use nmt_projections::{Affected, Command, Envelope, Event, Mac, Source, State, decide};
use nmt_replay::Observed;

use crate::config::Config;
use crate::files::{self, Drift, WriteOutcome};
use crate::store::{Append, EventStore, RedbStore, Snapshot};

/// The database file's name in the state directory.
pub const DB_FILE: &str = "nmt.redb";
/// The marker recording up to which event the generated files are current.
const RENDERED_FILE: &str = "rendered-seq";
/// Write a snapshot of the state after this many events.
pub const SNAPSHOT_EVERY: u64 = 1000;
/// Bump the version whenever the shape of `State` changes (a release number alone is not
/// enough during development); an unreadable snapshot is ignored and the log refolded.
const SNAPSHOT_MAGIC: &[u8] = b"nmt-state-snapshot-v6\0";

/// How to open the engine.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// The state directory.
    pub state_dir: PathBuf,
    /// An explicit configuration file.
    pub config: Option<PathBuf>,
    /// How long to wait for another process holding the store.
    pub wait: Duration,
    /// Create the state directory and a new store if there is none (mutating commands).
    pub create: bool,
}

/// What a replay did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReplaySummary {
    /// Lines read.
    pub lines: u64,
    /// Lines skipped because they were read before (live or an earlier replay).
    pub already: u64,
    /// Events appended.
    pub events: u64,
    /// Lines recognised that made no event (detail lines, lines naming no machine).
    pub ignored: u64,
    /// Lines not recognised.
    pub rejects: u64,
}

/// Events being appended together.
struct Batch {
    recorded_at: Timestamp,
    envelopes: Vec<Envelope>,
    index: Vec<Vec<Mac>>,
    late: Vec<bool>,
    affected: Affected,
    /// Work out which files the batch affects (not for an import, which renders all).
    track_affected: bool,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            recorded_at: Timestamp::now(),
            envelopes: Vec::new(),
            index: Vec::new(),
            late: Vec::new(),
            affected: Affected::default(),
            track_affected: true,
        }
    }
}

/// What a command did.
#[derive(Debug, Default)]
pub struct Executed {
    /// The events appended.
    pub events: Vec<Envelope>,
    /// The files written and removed.
    pub files: WriteOutcome,
}

/// The engine.
pub struct Engine {
    store: RedbStore,
    state: State,
    config: Config,
    snapshot_seq: u64,
    created: bool,
    /// Up to which event the generated files are known to be current.
    rendered: u64,
    /// The installer password this open generated, to show once.
    new_password: Option<String>,
}

/// The snapshot layout: the release, and a number bumped whenever `State`'s fields change
/// within one.
const SNAPSHOT_LAYOUT: &str = concat!(env!("CARGO_PKG_VERSION"), "+2");

fn snapshot_encode(state: &State) -> Vec<u8> {
    let mut out = SNAPSHOT_MAGIC.to_vec();
    let v = SNAPSHOT_LAYOUT.as_bytes();
    out.push(v.len() as u8);
    out.extend_from_slice(v);
    postcard::to_extend(state, out).expect("the state always encodes")
}

/// Decode a snapshot written by this very release; anything else is ignored (the log is the
/// truth, a snapshot only a shortcut).
fn snapshot_decode(bytes: &[u8]) -> Option<State> {
    let rest = bytes.strip_prefix(SNAPSHOT_MAGIC)?;
    let (&n, rest) = rest.split_first()?;
    let (v, body) = rest.split_at_checked(n as usize)?;
    if v != SNAPSHOT_LAYOUT.as_bytes() {
        return None;
    }
    let mut s: State = postcard::from_bytes(body).ok()?;
    s.rebuild_indexes();
    Some(s)
}

impl Engine {
    /// Open the store in `opts.state_dir` and fold it.
    pub fn open(opts: &OpenOptions) -> Result<Engine> {
        let mut engine = Engine::open_bare(opts)?;
        if engine.state.last_seq() == 0 && opts.create {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let site_key = key.iter().map(|b| format!("{b:02x}")).collect();
            engine.execute(Command::Init { site_key }, "nmt")?;
            engine.created = true;
        }
        if opts.create && engine.state.installer_password().is_none() {
            let password = crate::password::generate()?;
            let crypted = crate::password::crypt(&password)?;
            engine.execute(Command::SetInstallerPassword { crypted }, "nmt")?;
            engine.new_password = Some(password);
        }
        Ok(engine)
    }

    /// Open without starting a new store's history (for `journal import`, which brings its
    /// own): the store is created if missing, and left as it is.
    pub fn open_bare(opts: &OpenOptions) -> Result<Engine> {
        let dir = &opts.state_dir;
        let db_path = dir.join(DB_FILE);
        if !db_path.exists() && !opts.create {
            bail!(
                "no nmt state in {} (no {DB_FILE} there); pass --state DIR or set NMT_STATE to \
                 the directory that holds it, or run a command that changes something (such as \
                 `nmt machine add`) to start a new one there",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating the state directory {}", dir.display()))?;
        let config = Config::load(dir, opts.config.as_deref())?;
        let store = RedbStore::open(&db_path, opts.wait)?;
        let mut engine = Engine {
            store,
            state: State::new(),
            config,
            snapshot_seq: 0,
            created: false,
            rendered: 0,
            new_password: None,
        };
        engine.load()?;
        engine.rendered = engine.read_rendered_marker();
        Ok(engine)
    }

    /// Rebuild an empty store from a journal's events, exactly as they were (same sequence
    /// numbers, times, actors and sources), then render every file. Refused when the store
    /// already holds events.
    pub fn import(&mut self, envelopes: Vec<Envelope>) -> Result<WriteOutcome> {
        if self.state.last_seq() != 0 {
            bail!(
                "{} already holds {} events; `journal import` rebuilds an empty state \
                 directory: give it a new --state DIR",
                self.config.state_dir.display(),
                self.state.last_seq()
            );
        }
        // How far each log file was read, from the events' sources (checkpoints are not in a
        // journal): replay after the import then skips what the journal already holds.
        let mut read_to: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for env in &envelopes {
            if let Some(Source {
                stream,
                offset: Some(o),
            }) = &env.source
                && stream.starts_with("file:")
            {
                let e = read_to.entry(stream.as_str()).or_insert(0);
                *e = (*e).max(o + 1);
            }
        }
        let cps: Vec<(String, [u8; 8])> = read_to
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_le_bytes()))
            .collect();
        let mut rest = envelopes.into_iter();
        loop {
            let mut batch = Batch::new();
            batch.track_affected = false;
            for env in rest.by_ref().take(50_000) {
                self.stage(&mut batch, env);
            }
            if batch.envelopes.is_empty() {
                break;
            }
            self.commit(batch, &[])?;
        }
        let refs: Vec<(&str, &[u8])> = cps.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
        self.commit(Batch::new(), &refs)?;
        self.render_all()
    }

    /// Every event in sequence order, filtered by observation time.
    pub fn events(
        &self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        visit: &mut dyn FnMut(Envelope) -> Result<bool>,
    ) -> Result<()> {
        let last = self.store.last_seq()?;
        if last == 0 {
            return Ok(());
        }
        self.store.scan(1..=last, &mut |env| {
            if since.is_some_and(|s| env.observed_at < s)
                || until.is_some_and(|u| env.observed_at > u)
            {
                return Ok(true);
            }
            visit(env)
        })
    }

    /// The state as it was at `at`: every event observed by then, folded in log order.
    /// Starts from the newest snapshot whose events were all observed by then.
    pub fn state_at(&self, at: Timestamp) -> Result<State> {
        let (mut st, from) = match self.store.snapshot_for_time(at)? {
            Some((seq, bytes)) => match snapshot_decode(&bytes) {
                Some(s) if s.last_seq() == seq => (s, seq + 1),
                _ => (State::new(), 1),
            },
            None => (State::new(), 1),
        };
        let last = self.store.last_seq()?;
        // In-order events only move forward in time: the first one past `at` ends the scan.
        // Events observed out of order (replayed archives) are indexed apart and picked up
        // after it.
        let mut running = st.max_observed();
        let mut stop = last;
        if from <= last {
            self.store.scan(from..=last, &mut |env| {
                let late = running.is_some_and(|m| env.observed_at < m);
                if !late {
                    if env.observed_at > at {
                        stop = env.seq;
                        return Ok(false);
                    }
                    running = Some(env.observed_at);
                }
                if env.observed_at <= at {
                    st.apply(&env);
                }
                Ok(true)
            })?;
        }
        for seq in self.store.late_after(stop, at)? {
            if seq > stop
                && let Some(env) = self.store.get(seq)?
            {
                st.apply(&env);
            }
        }
        Ok(st)
    }

    /// [`Engine::state_at`] without snapshots: a fold of the whole log (for tests).
    pub fn state_at_by_full_fold(&self, at: Timestamp) -> Result<State> {
        let mut st = State::new();
        self.events(None, Some(at), &mut |env| {
            st.apply(&env);
            Ok(true)
        })?;
        Ok(st)
    }

    /// Fold the whole log from scratch and compare it with the live projection and with the
    /// files on disk; the differences, as sentences.
    pub fn verify(&self) -> Result<Vec<String>> {
        let mut fresh = State::new();
        self.events(None, None, &mut |env| {
            fresh.apply(&env);
            Ok(true)
        })?;
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

    /// The installer password generated by this open (a new store), to show once: after
    /// this, only its hash exists.
    pub fn take_new_password(&mut self) -> Option<String> {
        self.new_password.take()
    }

    /// Whether this open created a new store.
    pub fn created(&self) -> bool {
        self.created
    }

    fn load(&mut self) -> Result<()> {
        let last = self.store.last_seq()?;
        let (mut state, from) = match self.store.snapshot_at_or_before(last)? {
            Some((seq, bytes)) => match snapshot_decode(&bytes) {
                Some(s) if s.last_seq() == seq => {
                    self.snapshot_seq = seq;
                    (s, seq + 1)
                }
                _ => (State::new(), 1),
            },
            None => (State::new(), 1),
        };
        if from <= last {
            self.store.scan(from..=last, &mut |env| {
                state.apply(&env);
                Ok(true)
            })?;
        }
        self.state = state;
        // A missing or outdated snapshot (a new release, a crash): leave a fresh one, so the
        // next start does not fold the whole log again.
        if last - self.snapshot_seq >= SNAPSHOT_EVERY {
            let bytes = snapshot_encode(&self.state);
            self.store.append(
                &[],
                &[],
                Some(Snapshot {
                    seq: last,
                    bytes: &bytes,
                    max_observed: self.state.max_observed(),
                }),
            )?;
            self.snapshot_seq = last;
        }
        Ok(())
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &RedbStore {
        &self.store
    }

    /// Decide a command, append its events, and bring the affected files up to date.
    /// A refusal (a [`nmt_projections::Refusal`] inside the error) appends nothing.
    pub fn execute(&mut self, cmd: Command, actor: &str) -> Result<Executed> {
        let events = decide(&self.state, cmd)?;
        let now = Timestamp::now();
        let source = Source {
            stream: "cli".into(),
            offset: None,
        };
        let before = self.state.last_seq();
        let (envelopes, affected) = self.append(events, actor, now, Some(source))?;
        let files = self.render(&affected, before)?;
        Ok(Executed {
            events: envelopes,
            files,
        })
    }

    /// Append already-decided events (log lines, reports) with their envelope fields, fold
    /// them, and return them with the files they may affect. Files are not written.
    pub fn append(
        &mut self,
        events: Vec<Event>,
        actor: &str,
        observed_at: Timestamp,
        source: Option<Source>,
    ) -> Result<(Vec<Envelope>, Affected)> {
        let mut batch = Batch::new();
        for event in events {
            self.push(&mut batch, event, actor, observed_at, source.clone());
        }
        self.commit(batch, &[])
    }

    /// Append what log lines observed, each decided against the state its predecessors left
    /// (so a fetch is attributed through the acknowledgement just before it), together with
    /// the source's checkpoint, in one transaction: a crash loses or repeats no line.
    pub fn ingest(
        &mut self,
        observed: Vec<(Observed, Source)>,
        checkpoints: &[(&str, &[u8])],
    ) -> Result<(Vec<Envelope>, Affected)> {
        let mut batch = Batch::new();
        for (o, source) in observed {
            let event = nmt_projections::observe(&self.state, o.observation);
            self.push(&mut batch, event, &o.actor, o.at, Some(source));
        }
        self.commit(batch, checkpoints)
    }

    /// Replay archived DHCP/TFTP logs (plain, rotated, gzip; several formats and hosts),
    /// merged in time order, through the same parsers as live ingest. Lines already read —
    /// by live ingest or an earlier replay, recognised by file content and offset — are
    /// skipped, so replaying twice adds nothing.
    pub fn replay(
        &mut self,
        paths: &[PathBuf],
        years: nmt_replay::YearRule,
        progress: Option<Box<dyn FnMut(nmt_replay::Progress) + Send>>,
    ) -> Result<ReplaySummary> {
        use std::collections::HashMap;
        let mut archives = Vec::with_capacity(paths.len());
        for p in paths {
            archives.push(nmt_replay::Archive::open(p)?);
        }
        let mut merged = nmt_replay::merge(archives, years);
        if let Some(cb) = progress {
            merged = merged.on_progress(cb);
        }
        // Reads every file once first: a damaged archive is refused before anything is added.
        merged.prepare()?;
        let mut summary = ReplaySummary::default();
        let mut converters: HashMap<usize, nmt_replay::Converter> = HashMap::new();
        let mut done: HashMap<u64, u64> = HashMap::new();
        let mut batch: Vec<(Observed, Source)> = Vec::new();
        let mut ends: HashMap<u64, u64> = HashMap::new();
        let now = Timestamp::now();
        for line in merged {
            let l = line?;
            let key = crate::daemon::identity_key(l.identity);
            let read_to = match done.get(&l.identity) {
                Some(v) => *v,
                None => {
                    let v = self
                        .store
                        .checkpoint(&key)?
                        .and_then(|b| b.try_into().ok().map(u64::from_le_bytes))
                        .unwrap_or(0);
                    done.insert(l.identity, v);
                    v
                }
            };
            summary.lines += 1;
            if l.offset < read_to {
                summary.already += 1;
                continue;
            }
            let end = l.offset + l.bytes.len() as u64 + 1;
            let e = ends.entry(l.identity).or_insert(end);
            *e = (*e).max(end);
            match nmt_parsers::parse_line(&l.bytes) {
                Ok(ll) => match converters
                    .entry(l.path_index)
                    .or_default()
                    .convert(&ll, l.at.unwrap_or(now))
                {
                    Ok(o) => batch.push((
                        o,
                        Source {
                            stream: key,
                            offset: Some(l.offset),
                        },
                    )),
                    Err(_) => summary.ignored += 1,
                },
                Err(_) => summary.rejects += 1,
            }
            if batch.len() >= 20_000 {
                summary.events += self.replay_flush(&mut batch, &mut ends, &mut done)?;
            }
        }
        summary.events += self.replay_flush(&mut batch, &mut ends, &mut done)?;
        Ok(summary)
    }

    fn replay_flush(
        &mut self,
        batch: &mut Vec<(Observed, Source)>,
        ends: &mut std::collections::HashMap<u64, u64>,
        done: &mut std::collections::HashMap<u64, u64>,
    ) -> Result<u64> {
        if batch.is_empty() && ends.is_empty() {
            return Ok(0);
        }
        let keys: Vec<(String, [u8; 8])> = ends
            .iter()
            .map(|(id, end)| (crate::daemon::identity_key(*id), end.to_le_bytes()))
            .collect();
        let cps: Vec<(&str, &[u8])> = keys.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
        let n = batch.len() as u64;
        let before = self.state.last_seq();
        let (_, affected) = self.ingest(std::mem::take(batch), &cps)?;
        for (id, end) in ends.drain() {
            done.insert(id, end);
        }
        self.render(&affected, before)?;
        Ok(n)
    }

    /// A source's committed checkpoint.
    pub fn checkpoint(&self, source: &str) -> Result<Option<Vec<u8>>> {
        self.store.checkpoint(source)
    }

    fn push(
        &mut self,
        batch: &mut Batch,
        event: Event,
        actor: &str,
        observed_at: Timestamp,
        source: Option<Source>,
    ) {
        let env = Envelope {
            seq: self.state.last_seq() + 1,
            v: nmt_projections::SCHEMA_VERSION,
            recorded_at: batch.recorded_at,
            observed_at,
            actor: actor.to_string(),
            source,
            event,
        };
        self.stage(batch, env);
    }

    /// Index, fold and queue one envelope of a batch (new, or imported as it was).
    fn stage(&mut self, batch: &mut Batch, env: Envelope) {
        batch.index.push(self.state.history_macs(&env.event));
        batch.late.push(
            self.state
                .max_observed()
                .is_some_and(|m| env.observed_at < m),
        );
        if batch.track_affected {
            batch.affected.add(&self.state, &env.event);
        }
        self.state.apply(&env);
        batch.envelopes.push(env);
    }

    fn commit(
        &mut self,
        batch: Batch,
        checkpoints: &[(&str, &[u8])],
    ) -> Result<(Vec<Envelope>, Affected)> {
        if batch.envelopes.is_empty() && checkpoints.is_empty() {
            return Ok((Vec::new(), Affected::default()));
        }
        let last = self.state.last_seq();
        let snapshot =
            (last - self.snapshot_seq >= SNAPSHOT_EVERY).then(|| snapshot_encode(&self.state));
        let appends: Vec<Append<'_>> = batch
            .envelopes
            .iter()
            .zip(&batch.index)
            .zip(&batch.late)
            .map(|((envelope, machines), late)| Append {
                envelope,
                machines,
                late: *late,
            })
            .collect();
        let max_observed = self.state.max_observed();
        let snap = snapshot.as_deref().map(|bytes| Snapshot {
            seq: last,
            bytes,
            max_observed,
        });
        if let Err(e) = self.store.append(&appends, checkpoints, snap) {
            // The fold ran ahead of the store: go back to what the store holds.
            self.load()?;
            return Err(e);
        }
        if snapshot.is_some() {
            self.snapshot_seq = last;
        }
        Ok((batch.envelopes, batch.affected))
    }

    fn files_for(&self, affected: &Affected) -> (Vec<File>, Vec<PathBuf>) {
        let cfg = &self.config.render;
        let mut out = Vec::new();
        let mut removals = Vec::new();
        for mac in &affected.machines {
            if self.state.machine(mac).is_some() {
                out.extend(render::machine_files(&self.state, mac, cfg));
            } else {
                removals.extend(
                    render::machine_targets(mac)
                        .iter()
                        .map(|t| self.config.path_of(t)),
                );
            }
        }
        if affected.defaults {
            out.extend(render::default_files(&self.state, cfg));
        }
        if affected.dhcp {
            out.push(render::dhcpd_include(&self.state, cfg));
            out.push(render::dnsmasq_hosts(&self.state, cfg));
        }
        if affected.hosts {
            out.push(render::etc_hosts(&self.state, cfg));
        }
        for g in &affected.groups {
            let files = render::group_files(&self.state, g, cfg);
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
            match render::node_list(&self.state, g) {
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
        let (files, removals) = self.files_for(affected);
        let out = self.write_checked(&files, removals)?;
        self.mark_rendered();
        Ok(out)
    }

    /// Render everything, and remove generated files that no longer belong to anything.
    pub fn render_all(&mut self) -> Result<WriteOutcome> {
        let files = render::all(&self.state, &self.config.render);
        let stale = self.stale_files(&files);
        let out = self.write_checked(&files, stale)?;
        self.mark_rendered();
        Ok(out)
    }

    /// Write files; when a DHCP server's file changed, run its check (and put the previous
    /// file back if the check fails), then its reload.
    fn write_checked(&self, files: &[File], removals: Vec<PathBuf>) -> Result<WriteOutcome> {
        let hooks = &self.config.hooks;
        let watched = [
            (
                Target::DhcpdInclude,
                &hooks.dhcpd_check,
                &hooks.dhcpd_reload,
                "dhcpd",
            ),
            (
                Target::DnsmasqHosts,
                &hooks.dnsmasq_check,
                &hooks.dnsmasq_reload,
                "dnsmasq",
            ),
        ];
        // The previous bytes of DHCP files about to change, to put back if rejected.
        let mut previous = Vec::new();
        for (target, check, reload, _) in &watched {
            if check.is_none() && reload.is_none() {
                continue;
            }
            if let Some(f) = files.iter().find(|f| &f.target == target) {
                let path = self.config.path_of(target);
                let old = std::fs::read(&path).ok();
                if old.as_deref() != Some(f.bytes.as_slice()) {
                    previous.push((target.clone(), path, old));
                }
            }
        }
        let out = files::write_batch(
            files
                .iter()
                .map(|f| (self.config.path_of(&f.target), f.bytes.as_slice())),
            removals,
        )?;
        for (target, path, old) in previous {
            let (_, check, reload, server) = watched
                .iter()
                .find(|(t, ..)| *t == target)
                .expect("watched");
            if let Some(cmd) = check
                && let Err(why) = run_hook(cmd)
            {
                match &old {
                    Some(bytes) => {
                        files::write_batch([(path.clone(), bytes.as_slice())], [])?;
                    }
                    None => {
                        files::write_batch([], [path.clone()])?;
                    }
                }
                bail!(
                    "{server} rejected the new {} (`{cmd}`: {why}); the previous file stays in place and {server} was not reloaded. The change is recorded; fix the cause and run `nmt render`",
                    path.display()
                );
            }
            if let Some(cmd) = reload {
                run_hook(cmd)
                    .map_err(|why| anyhow::anyhow!("{server} was not reloaded: `{cmd}` {why}"))?;
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
        let tftp = &self.config.paths.tftp_root;
        let dirs = [
            tftp.join("pxelinux.cfg"),
            tftp.join("pxelinux.cfg/nmt"),
            tftp.join("grub"),
            tftp.join("grub/nmt"),
            tftp.join("ipxe"),
            tftp.join("ipxe/nmt"),
            self.config.paths.node_lists.clone(),
        ];
        let mut out = Vec::new();
        for d in dirs {
            let Ok(rd) = std::fs::read_dir(&d) else {
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

    fn read_rendered_marker(&self) -> u64 {
        std::fs::read_to_string(self.rendered_path())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn mark_rendered(&mut self) {
        // Not synced on purpose: the files it vouches for were synced before, and a lost
        // marker only costs one full render.
        if self.rendered != self.state.last_seq() {
            let _ = std::fs::write(self.rendered_path(), format!("{}\n", self.state.last_seq()));
            self.rendered = self.state.last_seq();
        }
    }

    /// Resolve a noderange (MACs, names, `name[1-10]`, `@group`, comma lists) to MACs, in
    /// the order written, without duplicates.
    pub fn resolve(&self, range: &str) -> Result<Vec<Mac>> {
        resolve(&self.state, range)
    }

    /// Every event that touched a machine, oldest first, optionally within a time window.
    pub fn history(
        &self,
        mac: &Mac,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<Envelope>> {
        let mut out = Vec::new();
        for seq in self.store.seqs_for_machine(mac)? {
            if let Some(env) = self.store.get(seq)? {
                if since.is_some_and(|s| env.observed_at < s)
                    || until.is_some_and(|u| env.observed_at > u)
                {
                    continue;
                }
                out.push(env);
            }
        }
        Ok(out)
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

/// Resolve a noderange against a state (see [`Engine::resolve`]).
pub fn resolve(state: &State, range: &str) -> Result<Vec<Mac>> {
    let parsed = parse_noderange(range)?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |m: Mac, out: &mut Vec<Mac>| {
        if seen.insert(m) {
            out.push(m);
        }
    };
    let word = |w: &str| -> Result<Mac> {
        if let Some(mac) = Mac::parse(w) {
            if state.machine(&mac).is_some() {
                return Ok(mac);
            }
            bail!(
                "no machine {mac} is known; add it with `nmt machine add {mac}` (list them with `nmt machines`)"
            );
        }
        let lower = w.to_ascii_lowercase();
        if let Some(m) = state.machine_by_name(&lower) {
            return Ok(m.mac);
        }
        bail!("no machine named {w}; {}", name_hint(state))
    };
    for item in &parsed.items {
        match item {
            RangeItem::Literal(w) => push(word(w)?, &mut out),
            RangeItem::Expanded { words, .. } => {
                for w in words {
                    push(word(w)?, &mut out);
                }
            }
            RangeItem::Group(g) => {
                let grp = state.group(g).ok_or_else(|| {
                    anyhow::anyhow!(
                        "no group named {g:?}; groups are: {} (list them with `nmt group list`)",
                        state
                            .groups()
                            .map(|g| g.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                for m in &grp.members {
                    push(*m, &mut out);
                }
            }
        }
    }
    if out.is_empty() {
        bail!("{range:?} matches no machines");
    }
    Ok(out)
}

/// "known names look like node001..node300 (`nmt machines`)".
fn name_hint(state: &State) -> String {
    let mut names: Vec<&str> = state.machines().filter_map(|m| m.name.as_deref()).collect();
    if names.is_empty() {
        return "no machine has a name yet (give one with `nmt name MAC NAME`)".into();
    }
    names.sort_unstable();
    if names.len() == 1 {
        format!("the only named machine is {} (`nmt machines`)", names[0])
    } else {
        format!(
            "known names look like {}..{} (`nmt machines`)",
            names[0],
            names[names.len() - 1]
        )
    }
}
