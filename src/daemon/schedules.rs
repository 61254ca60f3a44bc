//! The schedules' clock: nmtd is the only place a schedule runs. This task sleeps until the
//! next time a schedule is due or a run's outcome is to be checked (or until a commit, which
//! may have added, paused or removed one), then carries out what the time rules say is due
//! ([`crate::app::schedule::tick`]), under the engine's lock like any other change.
//!
//! When nmtd starts, what came due while it was down is handled first: a run missed within
//! its schedule's grace is made late, older ones are recorded as missed.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use nmt_projections::{next_wake, schedules_due};
use tokio::sync::watch;

use super::Shared;
use crate::app::schedule::{tick, zone};

/// The longest sleep between looks at the clock (the wall clock may be set meanwhile).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// After a tick that changed nothing while work was due, wait this long before trying again.
const RETRY: Duration = Duration::from_secs(10);

/// Start the schedules' task; it ends when `stop` turns true.
pub(super) fn start(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut commits = shared.engine.subscribe();
        loop {
            let now = Timestamp::now();
            let published = shared.published();
            let mut sleep = match next_wake(&published.state, now, &zone) {
                Some(w) => Duration::try_from(w.duration_since(now))
                    .unwrap_or(Duration::ZERO)
                    .min(MAX_SLEEP),
                None => MAX_SLEEP,
            };
            if !schedules_due(&published.state, now, &zone).is_empty() {
                let before = published.state.last_seq();
                let access = published.config.access.clone();
                match shared
                    .write(move |engine| tick(engine, &access, Timestamp::now()))
                    .await
                {
                    Ok(t) => {
                        for line in t.done {
                            tracing::info!("{line}");
                        }
                    }
                    Err(e) => tracing::warn!("schedules: {e:#}"),
                }
                if shared.published().state.last_seq() != before {
                    continue;
                }
                sleep = RETRY;
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                r = commits.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    });
}
