//! Upkeep: what nmtd does by itself so that a passing failure does not need a restart. The
//! generated files fall behind the log when a render fails (a full TFTP root, a DHCP check
//! hook that rejects); they are rendered again, with back-off, until they are current, and
//! `nmt status` says why they are behind meanwhile. And once the log has been quiet for a
//! while, the store gives back the space its appends left unused.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;

/// The first retry comes this soon after a failure; each failure doubles it, up to `MAX`.
const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(30);
/// The store is compacted (when worth it) after this long without an append.
const QUIET: Duration = Duration::from_secs(10);

/// Start the retry loop.
pub fn start(shared: Arc<Shared>) {
    tokio::spawn(async move {
        let mut pause = FIRST;
        let mut said: Option<String> = None;
        loop {
            tokio::time::sleep(pause).await;
            let _ = shared.write(|engine| engine.compact_when_idle(QUIET)).await;
            let p = shared.published();
            if p.rendered >= p.state.last_seq() {
                pause = FIRST;
                continue;
            }
            let done = shared
                .write(|engine| engine.render_all().map(|_| ()))
                .await
                .and_then(|r| r);
            match done {
                Ok(()) => {
                    tracing::info!("the generated files are up to date again");
                    pause = FIRST;
                    said = None;
                }
                Err(e) => {
                    let why = format!("{e:#}");
                    // Said once per cause, not at every retry.
                    if said.as_ref() != Some(&why) {
                        tracing::warn!(
                            "the generated files are behind the log: {why}; retrying by itself"
                        );
                        said = Some(why);
                    }
                    pause = (pause * 2).min(MAX);
                }
            }
        }
    });
}
