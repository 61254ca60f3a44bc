//! The daemon's engine behind its one mutex, with a signal of every commit: when a guard
//! that appended events is dropped (a CLI change, a log line, an installer report, a web
//! form), the new state is published ([`Published`], for readers that must not wait for the
//! writer) and then watchers see the new last sequence number. The web UI's live updates
//! hang here.
//!
//! It deliberately knows nothing of what changed: watchers read the state again.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, LockResult, Mutex, MutexGuard, PoisonError, RwLock};

use nmt_projections::State;
use tokio::sync::watch;

use crate::{Config, Engine};

/// The engine's mutex, announcing commits.
pub struct EngineLock {
    inner: Mutex<Engine>,
    seq: watch::Sender<u64>,
    published: RwLock<Published>,
}

/// The state as of the last commit, and the configuration: what readers read, without the
/// engine's lock. Cheap to clone.
#[derive(Clone)]
pub struct Published {
    /// The state after the last commit.
    pub state: Arc<State>,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Up to which event the generated files are current.
    pub rendered: u64,
    /// Why the last render failed, while the files are behind.
    pub files_problem: Option<Arc<str>>,
    /// Never-seen machines not recorded (over `new_machines_per_minute`).
    pub new_machines_limited: u64,
}

/// The engine, locked. Dropping it publishes the state and announces the new last sequence
/// number if events were appended while it was held.
pub struct EngineGuard<'a> {
    guard: MutexGuard<'a, Engine>,
    before: u64,
    rendered: u64,
    lock: &'a EngineLock,
}

impl EngineLock {
    /// Put the engine behind the lock.
    pub fn new(engine: Engine) -> EngineLock {
        let (seq, _) = watch::channel(engine.state().last_seq());
        let published = RwLock::new(Published {
            state: Arc::new(engine.state().clone()),
            config: Arc::new(engine.config().clone()),
            rendered: engine.rendered_seq(),
            files_problem: engine.files_problem().map(Arc::from),
            new_machines_limited: engine.discoveries_limited(),
        });
        EngineLock {
            inner: Mutex::new(engine),
            seq,
            published,
        }
    }

    /// Lock the engine, as `Mutex::lock` does (a poisoned lock still hands the guard over
    /// through the error's `into_inner`). Async code goes through
    /// [`super::Shared::write`] instead, which locks on a blocking thread.
    pub fn lock(&self) -> LockResult<EngineGuard<'_>> {
        match self.inner.lock() {
            Ok(g) => Ok(self.wrap(g)),
            Err(p) => Err(PoisonError::new(self.wrap(p.into_inner()))),
        }
    }

    fn wrap<'a>(&'a self, guard: MutexGuard<'a, Engine>) -> EngineGuard<'a> {
        EngineGuard {
            before: guard.state().last_seq(),
            rendered: guard.rendered_seq(),
            guard,
            lock: self,
        }
    }

    /// The state as of the last commit (never waits for the engine's lock).
    pub fn published(&self) -> Published {
        self.published
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Follow commits: the receiver holds the last sequence number committed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.seq.subscribe()
    }
}

impl Deref for EngineGuard<'_> {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.guard
    }
}

impl DerefMut for EngineGuard<'_> {
    fn deref_mut(&mut self) -> &mut Engine {
        &mut self.guard
    }
}

impl Drop for EngineGuard<'_> {
    fn drop(&mut self) {
        let now = self.guard.state().last_seq();
        let rendered = self.guard.rendered_seq();
        let problem = self.guard.files_problem();
        {
            // The render's outcome is published even when nothing else changed (a retry).
            let mut p = self
                .lock
                .published
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if p.files_problem.as_deref() != problem {
                p.files_problem = problem.map(Arc::from);
            }
            p.new_machines_limited = self.guard.discoveries_limited();
        }
        if now == self.before && rendered == self.rendered {
            return;
        }
        // Published before it is announced (and while the engine is still locked), so a
        // watcher woken by the announcement reads this state or a later one.
        {
            let mut p = self
                .lock
                .published
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if now != self.before {
                p.state = Arc::new(self.guard.state().clone());
            }
            p.rendered = rendered;
        }
        if now != self.before {
            self.lock.seq.send_replace(now);
        }
    }
}
