//! The engine both binaries share: open the store, fold it into the state, decide and append
//! commands, and bring the generated files up to date.
//!
//! One `Engine` is one holder of the store (redb allows one writer process). The CLI opens it
//! for one command; `nmtd` keeps it open. Domain rules stay in `nmt-projections`; this module
//! only sequences them with I/O.

mod ingest;
mod leases;
mod render;
mod replay;
mod resolve;
mod snapshot;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use nmt_projections::{
    Affected, Command, Envelope, Event, Mac, MachineRecord, Source, State, decide,
};

pub use leases::LeasesSummary;
pub use replay::{Imported, ReplaySummary, import_journal, whole_or_partial};
pub use resolve::resolve;
pub use snapshot::SNAPSHOT_EVERY;
use snapshot::{snapshot_decode, snapshot_encode};

use crate::config::Config;
use crate::files::WriteOutcome;
use crate::store::{Append, EventStore, RedbStore, Snapshot};

/// The database file's name in the state directory.
pub const DB_FILE: &str = "nmt.redb";

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

/// Create the state directory if there is none: the store, the site key and the installer
/// password live there, not for every local user to read.
fn create_state_dir(dir: &std::path::Path) -> Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating the state directory {}", dir.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
            .with_context(|| format!("while restricting {}", dir.display()))?;
    }
    Ok(())
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
    /// The events' JSON, one each, when it was made already (an import).
    json: Option<Vec<Vec<u8>>>,
}

impl Batch {
    fn new() -> Batch {
        Batch::with_capacity(0)
    }

    /// A batch with room for `n` events (growing a large one page by page costs more than
    /// the events).
    fn with_capacity(n: usize) -> Batch {
        Batch {
            recorded_at: Timestamp::now(),
            envelopes: Vec::with_capacity(n),
            index: Vec::with_capacity(n),
            late: Vec::with_capacity(n),
            affected: Affected::default(),
            track_affected: true,
            json: None,
        }
    }

    /// Empty, keeping its room (and its JSON's), to be filled again.
    fn clear(&mut self) {
        self.recorded_at = Timestamp::now();
        self.envelopes.clear();
        self.index.clear();
        self.late.clear();
        self.affected = Affected::default();
        if let Some(json) = &mut self.json {
            json.clear();
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

/// What commands would do, decided and folded on a copy of the state: nothing appended,
/// written or run (see [`Engine::plan`]).
#[derive(Debug)]
pub struct Plan {
    /// The events that would be appended, in the envelopes they would have.
    pub events: Vec<Envelope>,
    /// The state after them.
    pub after: State,
    /// The files they may change.
    affected: Affected,
}

/// The engine.
pub struct Engine {
    store: Box<dyn EventStore + Send>,
    state: State,
    config: Config,
    snapshot_seq: u64,
    created: bool,
    /// Up to which event the generated files are known to be current.
    rendered: u64,
    /// The installer password this open generated, to show once.
    new_password: Option<String>,
    /// Why the last render failed, while the files are behind the log (the events are
    /// committed all the same).
    files_problem: Option<String>,
    /// The site key (from `STATE/site-key`, never from or into the log).
    site_key: Option<nmt_projections::SiteKey>,
    /// Never-seen machines recorded per minute of log, and those that were not.
    discoveries: ingest::Discoveries,
}

impl Engine {
    /// Close at the end of a process: the store closes as always (compacted if it grew);
    /// the folded state is left to the exit, since freeing 10,000 machines one by one only
    /// delays it.
    pub fn close_at_exit(self) {
        let Engine { state, store, .. } = self;
        drop(store);
        std::mem::forget(state);
    }

    /// Open the store in `opts.state_dir` and fold it.
    pub fn open(opts: &OpenOptions) -> Result<Engine> {
        Engine::open_bare(opts)?.begin(opts)
    }

    /// [`Engine::open`] over a given store (such as a [`crate::MemoryStore`]) instead of the
    /// state directory's database; the directory still holds the configuration and the
    /// generated files.
    pub fn open_with_store(
        opts: &OpenOptions,
        store: impl EventStore + Send + 'static,
    ) -> Result<Engine> {
        Engine::open_bare_with_store(opts, store)?.begin(opts)
    }

    /// Start a new store's history (`opts.create`): its site key and installer password.
    /// Their events are committed before anything is rendered, and a render or hook failure
    /// after that does not fail the open (it is kept for [`Engine::files_problem`]): the
    /// caller's own command still runs, and a store is never started twice.
    fn begin(self, opts: &OpenOptions) -> Result<Engine> {
        let mut engine = self;
        let mut appended = false;
        if engine.state.last_seq() == 0 && opts.create {
            // The key file first: a store never exists without its key.
            engine.attach_site_key(true)?;
            engine.record(Command::Init)?;
            engine.created = true;
            appended = true;
        }
        if opts.create && engine.state.installer_password().is_none() {
            let password = crate::password::generate()?;
            let crypted = crate::password::crypt(&password)?;
            // Kept before its hash is recorded: shown until an admin acknowledges it.
            crate::password::keep_pending(&engine.config.state_dir, &password)?;
            engine.record(Command::SetInstallerPassword { crypted })?;
            engine.new_password = Some(password);
            appended = true;
        }
        if appended {
            // A failure is kept in `files_problem`: the open itself succeeds.
            let _ = engine.render_all();
        }
        Ok(engine)
    }

    /// Let the store give back unused space once nothing was appended for `quiet`.
    pub fn compact_when_idle(&mut self, quiet: std::time::Duration) {
        self.store.compact_when_idle(quiet);
    }

    /// Decide and append a command of nmt's own, without rendering.
    fn record(&mut self, cmd: Command) -> Result<()> {
        let events = decide(&self.state, cmd)?;
        self.append(events, "nmt", Timestamp::now(), Some(Source::Cli))?;
        Ok(())
    }

    /// Why the last render failed, if it did and none has succeeded since: the files are
    /// behind the log.
    pub fn files_problem(&self) -> Option<&str> {
        self.files_problem.as_deref()
    }

    /// Open without starting a new store's history (for `journal import`, which brings its
    /// own): the store is created if missing, and left as it is.
    pub fn open_bare(opts: &OpenOptions) -> Result<Engine> {
        let dir = &opts.state_dir;
        let db_path = dir.join(DB_FILE);
        if !db_path.exists() && !opts.create {
            bail!(
                "no nmt state in {} (no {DB_FILE} there); nothing was changed. Pass --state DIR \
                 or set NMT_STATE to the directory that holds it, or create a new one there \
                 with `nmt init --state {}`",
                dir.display(),
                dir.display()
            );
        }
        Engine::assemble(opts, || Ok(Box::new(RedbStore::open(&db_path, opts.wait)?)))
    }

    /// [`Engine::open_bare`] over a given store.
    pub fn open_bare_with_store(
        opts: &OpenOptions,
        store: impl EventStore + Send + 'static,
    ) -> Result<Engine> {
        Engine::assemble(opts, || Ok(Box::new(store)))
    }

    /// The state directory and its configuration first, then the store, folded.
    fn assemble(
        opts: &OpenOptions,
        store: impl FnOnce() -> Result<Box<dyn EventStore + Send>>,
    ) -> Result<Engine> {
        let dir = &opts.state_dir;
        create_state_dir(dir)?;
        let config = Config::load(dir, opts.config.as_deref())?;
        let mut engine = Engine {
            store: store()?,
            state: State::new(),
            config,
            snapshot_seq: 0,
            created: false,
            rendered: 0,
            new_password: None,
            files_problem: None,
            site_key: None,
            discoveries: ingest::Discoveries::default(),
        };
        engine.load()?;
        // An existing store has a key (an old one's is copied out of its first event).
        engine.attach_site_key(engine.state.last_seq() > 0)?;
        engine.rendered = engine.read_rendered_marker();
        Ok(engine)
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
        let mut failed = None;
        self.store.scan(1..=last, &mut |env| {
            if since.is_some_and(|s| env.observed_at < s)
                || until.is_some_and(|u| env.observed_at > u)
            {
                return true;
            }
            visit(env).unwrap_or_else(|e| {
                failed = Some(e);
                false
            })
        })?;
        failed.map_or(Ok(()), Err)
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
                        return false;
                    }
                    running = Some(env.observed_at);
                }
                if env.observed_at <= at {
                    st.apply(&env);
                }
                true
            })?;
        }
        let late: Vec<u64> = self
            .store
            .late_after(stop, at)?
            .into_iter()
            .filter(|&seq| seq > stop)
            .collect();
        self.store.get_each(&late, &mut |env| {
            st.apply(&env);
            true
        })?;
        Ok(self.keyed(st))
    }

    /// [`Engine::state_at`] without snapshots: a fold of the whole log (for tests).
    pub fn state_at_by_full_fold(&self, at: Timestamp) -> Result<State> {
        let mut st = State::new();
        self.events(None, Some(at), &mut |env| {
            st.apply(&env);
            Ok(true)
        })?;
        Ok(self.keyed(st))
    }

    /// The installer password generated by this open (a new store), to show once: after
    /// this, only its hash exists.
    pub fn take_new_password(&mut self) -> Option<String> {
        self.new_password.take()
    }

    /// Find the site key, or make one when `new` allows, and give it to the state.
    pub(crate) fn attach_site_key(&mut self, new: bool) -> Result<()> {
        if self.site_key.is_none() {
            let logged = self.state.logged_site_key().map(str::to_string);
            self.site_key = crate::site_key::load(&self.config.state_dir, logged.as_deref(), new)?;
        }
        if let Some(k) = &self.site_key {
            self.state.set_site_key(k.clone());
        }
        Ok(())
    }

    /// A state folded here, given the site key (which is never in the log).
    pub(crate) fn keyed(&self, mut st: State) -> State {
        if let Some(k) = &self.site_key {
            st.set_site_key(k.clone());
        }
        st
    }

    /// How many never-seen machines were not recorded because more than
    /// `[daemon] new_machines_per_minute` appeared in a minute of log.
    pub fn discoveries_limited(&self) -> u64 {
        self.discoveries.limited
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
                true
            })?;
        }
        self.state = self.keyed(state);
        // A missing or outdated snapshot (a new release, a crash): leave a fresh one, so the
        // next start does not fold the whole log again.
        if let Some(snap) = snapshot_due(&self.state, self.snapshot_seq, SNAPSHOT_EVERY) {
            append_batch(
                &mut *self.store,
                &Batch::new(),
                &[],
                std::slice::from_ref(&snap),
            )?;
            self.snapshot_seq = snap.seq;
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
    pub fn store(&self) -> &dyn EventStore {
        self.store.as_ref()
    }

    /// Decide a command, append its events, and bring the affected files up to date.
    /// A refusal (a [`nmt_projections::Refusal`] inside the error) appends nothing.
    /// Recorded as coming from the command line; see [`Engine::execute_from`].
    pub fn execute(&mut self, cmd: Command, actor: &str) -> Result<Executed> {
        self.execute_from(cmd, actor, Source::Cli)
    }

    /// [`Engine::execute`], recording where the command came from (the CLI, a web form, a
    /// machine's report).
    pub fn execute_from(&mut self, cmd: Command, actor: &str, source: Source) -> Result<Executed> {
        let events = decide(&self.state, cmd)?;
        let now = Timestamp::now();
        let before = self.state.last_seq();
        let (envelopes, affected) = self.append(events, actor, now, Some(source))?;
        // The events are committed: a failure from here on must say so, never hide it.
        let files = self.render(&affected, before).map_err(|e| {
            let what = match (envelopes.first(), envelopes.last()) {
                (Some(a), Some(b)) if a.seq != b.seq => {
                    format!("the change is recorded (events {} to {})", a.seq, b.seq)
                }
                (Some(a), _) => format!("the change is recorded (event {})", a.seq),
                _ => "nothing was recorded (nothing needed to change)".to_string(),
            };
            anyhow::anyhow!(
                "{what}, but the generated files are not up to date: {e:#}; fix the cause and \
                 run `nmt render`"
            )
        })?;
        Ok(Executed {
            events: envelopes,
            files,
        })
    }

    /// Decide `cmds` one after the other (each against the state the ones before it leave),
    /// append all their events in one commit as observed at `now`, and bring the affected
    /// files up to date. A refusal of any appends nothing.
    pub fn execute_all(
        &mut self,
        cmds: Vec<Command>,
        actor: &str,
        source: Source,
        now: Timestamp,
    ) -> Result<Executed> {
        let plan = self.plan(cmds, actor, &source)?;
        let before = self.state.last_seq();
        let events = plan.events.into_iter().map(|e| e.event).collect();
        let (envelopes, affected) = self.append(events, actor, now, Some(source))?;
        let files = self.render(&affected, before).map_err(|e| {
            anyhow::anyhow!(
                "the change is recorded, but the generated files are not up to date: {e:#}; \
                 fix the cause and run `nmt render`"
            )
        })?;
        Ok(Executed {
            events: envelopes,
            files,
        })
    }

    /// What `cmds`, performed one after the other, would do: each is decided against the
    /// state the ones before it leave, and folded into a copy of the state. Nothing is
    /// appended, written or run; a refusal is returned as [`Engine::execute_from`] returns
    /// it. [`Engine::planned_files`] says which files it would change.
    pub fn plan(&self, cmds: Vec<Command>, actor: &str, source: &Source) -> Result<Plan> {
        let mut after = self.state.clone();
        let mut affected = Affected::default();
        let mut events = Vec::new();
        let now = Timestamp::now();
        for cmd in cmds {
            for event in decide(&after, cmd)? {
                affected.add(&after, &event);
                let env = Envelope {
                    seq: after.last_seq() + 1,
                    v: nmt_projections::SCHEMA_VERSION,
                    recorded_at: now,
                    observed_at: now,
                    actor: actor.to_string(),
                    source: Some(source.clone()),
                    event,
                };
                after.apply(&env);
                events.push(env);
            }
        }
        Ok(Plan {
            events,
            after,
            affected,
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

    fn push(
        &mut self,
        batch: &mut Batch,
        event: Event,
        actor: &str,
        observed_at: Timestamp,
        source: Option<Source>,
    ) {
        push_into(
            &mut self.state,
            batch,
            event,
            actor.to_string(),
            observed_at,
            source,
        );
    }

    fn commit(
        &mut self,
        batch: Batch,
        checkpoints: &[(&str, &[u8])],
    ) -> Result<(Vec<Envelope>, Affected)> {
        self.commit_with(batch, checkpoints, Vec::new())
    }

    /// [`Engine::commit`], with the `snapshots` made while the batch was staged (a long
    /// import's, after some of its events) before the one now due.
    fn commit_with(
        &mut self,
        batch: Batch,
        checkpoints: &[(&str, &[u8])],
        mut snapshots: Vec<Snapped>,
    ) -> Result<(Vec<Envelope>, Affected)> {
        if batch.envelopes.is_empty() && checkpoints.is_empty() && snapshots.is_empty() {
            return Ok((Vec::new(), Affected::default()));
        }
        let since = snapshots.last().map_or(self.snapshot_seq, |s| s.seq);
        snapshots.extend(snapshot_due(&self.state, since, SNAPSHOT_EVERY));
        if let Err(e) = append_batch(&mut *self.store, &batch, checkpoints, &snapshots) {
            // The fold ran ahead of the store: go back to what the store holds.
            self.load()?;
            return Err(not_written(e, &self.config.state_dir));
        }
        if let Some(snap) = snapshots.last() {
            self.snapshot_seq = snap.seq;
        }
        Ok((batch.envelopes, batch.affected))
    }

    /// The state right after event `seq`: the newest snapshot at or before it, and the
    /// events after that snapshot up to `seq`.
    pub fn state_through(&self, seq: u64) -> Result<State> {
        let (mut st, from) = match self.store.snapshot_at_or_before(seq)? {
            Some((at, bytes)) => match snapshot_decode(&bytes) {
                Some(s) if s.last_seq() == at => (s, at + 1),
                _ => (State::new(), 1),
            },
            None => (State::new(), 1),
        };
        if from <= seq {
            self.store.scan(from..=seq, &mut |env| {
                st.apply(&env);
                true
            })?;
        }
        Ok(self.keyed(st))
    }

    /// A machine's last removal: its sequence number and what the machine was just before
    /// (kept by the event; for a removal written before events kept it, the state before
    /// it). `None` when it was never removed.
    pub fn last_removal(&self, mac: &Mac) -> Result<Option<(u64, MachineRecord)>> {
        let last = self
            .history(mac, None, None)?
            .into_iter()
            .rev()
            .find_map(|env| match env.event {
                Event::MachineRemoved { was, .. } => Some((env.seq, was)),
                _ => None,
            });
        Ok(match last {
            None => None,
            Some((seq, Some(was))) => Some((seq, was)),
            Some((seq, None)) => self
                .state_through(seq - 1)?
                .record(mac)
                .map(|was| (seq, was)),
        })
    }

    /// The machines, not registered now, whose last removal kept this name.
    pub fn removed_named(&self, name: &str) -> Result<Vec<Mac>> {
        let mut last: std::collections::BTreeMap<Mac, Option<String>> = Default::default();
        self.events(None, None, &mut |env| {
            if let Event::MachineRemoved { mac, was } = &env.event {
                last.insert(*mac, was.as_ref().and_then(|w| w.name.clone()));
            }
            Ok(true)
        })?;
        Ok(last
            .into_iter()
            .filter(|(mac, n)| {
                n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name))
                    && !self.state.machine(mac).is_some_and(|m| m.registered)
            })
            .map(|(mac, _)| mac)
            .collect())
    }

    /// Every event that touched a machine, oldest first, optionally within a time window.
    pub fn history(
        &self,
        mac: &Mac,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<Envelope>> {
        let mut out = Vec::new();
        let seqs = self.store.seqs_for_machine(mac)?;
        self.store.get_each(&seqs, &mut |env| {
            if !(since.is_some_and(|s| env.observed_at < s)
                || until.is_some_and(|u| env.observed_at > u))
            {
                out.push(env);
            }
            true
        })?;
        Ok(out)
    }
}

/// A snapshot of `state` as it is, when one is due: `every` events after the last one, at
/// `since` ([`SNAPSHOT_EVERY`] as the log grows).
fn snapshot_due(state: &State, since: u64, every: u64) -> Option<Snapped> {
    let last = state.last_seq();
    (last - since >= every).then(|| Snapped {
        seq: last,
        bytes: snapshot_encode(state),
        max_observed: state.max_observed(),
    })
}

/// A new event, the next after `state`'s last, folded into `state` and added to `batch`.
fn push_into(
    state: &mut State,
    batch: &mut Batch,
    event: Event,
    actor: String,
    observed_at: Timestamp,
    source: Option<Source>,
) {
    let env = Envelope {
        seq: state.last_seq() + 1,
        v: nmt_projections::SCHEMA_VERSION,
        recorded_at: batch.recorded_at,
        observed_at,
        actor,
        source,
        event,
    };
    stage_into(state, batch, env);
}

/// Fold `env` into `state` and add it to `batch`, with its machines and whether it came late.
fn stage_into(state: &mut State, batch: &mut Batch, env: Envelope) {
    batch.index.push(state.history_macs(&env.event));
    batch
        .late
        .push(state.max_observed().is_some_and(|m| env.observed_at < m));
    if batch.track_affected {
        batch.affected.add(state, &env.event);
    }
    state.apply(&env);
    batch.envelopes.push(env);
}

/// A store's failure to write a change, saying what to do when the disk is full.
fn not_written(e: crate::store::StoreError, state_dir: &std::path::Path) -> anyhow::Error {
    let hint = write_hint(&e, state_dir);
    anyhow::Error::new(e).context(format!(
        "nothing was recorded: the store could not write the change{hint}"
    ))
}

/// What to do about a store's failure to write: on a full disk, where to free space.
fn write_hint(e: &crate::store::StoreError, state_dir: &std::path::Path) -> String {
    let full = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.raw_os_error() == Some(28))
        || e.to_string().contains("os error 28");
    if full {
        format!(
            "; free space on the filesystem that holds {} (`df -h` there), then run the \
             command again",
            state_dir.display()
        )
    } else {
        String::new()
    }
}

/// A snapshot made to go with an append.
struct Snapped {
    seq: u64,
    bytes: Vec<u8>,
    max_observed: Option<Timestamp>,
}

/// Append a batch's events with the checkpoints and snapshots, in one transaction.
fn append_batch(
    store: &mut dyn EventStore,
    batch: &Batch,
    checkpoints: &[(&str, &[u8])],
    snapshots: &[Snapped],
) -> Result<(), crate::store::StoreError> {
    let appends: Vec<Append<'_>> = batch
        .envelopes
        .iter()
        .zip(&batch.index)
        .zip(&batch.late)
        .enumerate()
        .map(|(i, ((envelope, machines), late))| Append {
            envelope,
            machines,
            late: *late,
            json: batch.json.as_ref().map(|e| e[i].as_slice()),
        })
        .collect();
    let snaps: Vec<Snapshot<'_>> = snapshots
        .iter()
        .map(|s| Snapshot {
            seq: s.seq,
            bytes: &s.bytes,
            max_observed: s.max_observed,
        })
        .collect();
    store.append(&appends, checkpoints, &snaps)
}
