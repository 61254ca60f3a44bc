//! The daemon's engine behind its one mutex, with a signal of every commit: when a guard
//! that appended events is dropped (a CLI change, a log line, an installer report, a web
//! form), watchers see the new last sequence number. The web UI's live updates hang here.
//!
//! It deliberately knows nothing of what changed: watchers read the state again.

use std::ops::{Deref, DerefMut};
use std::sync::{LockResult, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::Engine;

/// The engine's mutex, announcing commits.
pub struct EngineLock {
    inner: Mutex<Engine>,
    seq: watch::Sender<u64>,
}

/// The engine, locked. Dropping it announces the new last sequence number if events were
/// appended while it was held.
pub struct EngineGuard<'a> {
    guard: MutexGuard<'a, Engine>,
    before: u64,
    seq: &'a watch::Sender<u64>,
}

impl EngineLock {
    /// Put the engine behind the lock.
    pub fn new(engine: Engine) -> EngineLock {
        let (seq, _) = watch::channel(engine.state().last_seq());
        EngineLock {
            inner: Mutex::new(engine),
            seq,
        }
    }

    /// Lock the engine, as `Mutex::lock` does (a poisoned lock still hands the guard over
    /// through the error's `into_inner`).
    pub fn lock(&self) -> LockResult<EngineGuard<'_>> {
        match self.inner.lock() {
            Ok(g) => Ok(self.wrap(g)),
            Err(p) => Err(PoisonError::new(self.wrap(p.into_inner()))),
        }
    }

    fn wrap<'a>(&'a self, guard: MutexGuard<'a, Engine>) -> EngineGuard<'a> {
        EngineGuard {
            before: guard.state().last_seq(),
            guard,
            seq: &self.seq,
        }
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
        if now != self.before {
            self.seq.send_replace(now);
        }
    }
}
