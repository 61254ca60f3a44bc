//! Arbitrary bytes as the file of `nmt journal import --partial FILE`, through the code that
//! command runs (`nmt::fuzzing::journal_import`: the export read and checked whole, then
//! imported into a new store in a new state directory, redb as `nmt` uses it).
//!
//! It must refuse (and then have written nothing, when the export itself is refused) or
//! import the whole export: a new store holding exactly its events, never a part of them.

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nmt::{DB_FILE, Engine, OpenOptions};

static SCRATCH: LazyLock<PathBuf> = LazyLock::new(|| nmt_fuzz::scratch("journal_import"));
static RUN: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let state = SCRATCH.join(RUN.fetch_add(1, Ordering::Relaxed).to_string());
    // How many events the export holds, when it reads as one.
    let export = nmt_replay::read_export(data).ok().map(|j| j.events.len());
    let imported = nmt::fuzzing::journal_import(data, &state, true);
    let stored = stored(&state);
    match imported {
        Ok(n) => {
            assert_eq!(Some(n), export, "imported what the export does not hold");
            assert_eq!(stored, n, "imported {n} events, the store holds {stored}");
        }
        Err(e) => match export {
            // Refused before anything was written.
            None | Some(0) => assert!(
                !state.exists(),
                "a refused export made a state directory: {e:#}"
            ),
            // Refused while importing (a render failure comes after the commit): none or all.
            Some(n) => assert!(
                stored == 0 || stored == n,
                "half an import: {stored} of {n} events stored: {e:#}"
            ),
        },
    }
    let _ = std::fs::remove_dir_all(&state);
});

/// How many events the store in `state` holds (it is gap-free from 1), 0 without one.
fn stored(state: &std::path::Path) -> usize {
    if !state.join(DB_FILE).exists() {
        return 0;
    }
    let engine = Engine::open_bare(&OpenOptions {
        state_dir: state.to_path_buf(),
        config: None,
        wait: Duration::from_secs(10),
        create: false,
    })
    .unwrap_or_else(|e| panic!("the store an import left does not open: {e:#}"));
    let mut events = 0;
    engine
        .events(None, None, &mut |_| {
            events += 1;
            Ok(true)
        })
        .unwrap_or_else(|e| panic!("the store an import left does not read: {e:#}"));
    assert_eq!(events, engine.state().last_seq() as usize, "not gap-free");
    events
}
