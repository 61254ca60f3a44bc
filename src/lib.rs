//! nmt: netboot management for a pool of PXE machines, event-sourced.
//!
//! This crate is the I/O side, in layers that depend downwards only: the front ends (`cli`,
//! `daemon` with its web UI) on the application layer (`app`: actions, who may do them,
//! typed replies), `app` on the engine (decide, append, render), and the engine on the event
//! store (`EventStore`: redb or in memory), the files and the configuration. The domain
//! (events, fold, rules, renderers) lives in `nmt-projections`; log and noderange parsing in
//! `nmt-parsers`; sources and the one ingest pipeline in `nmt-replay`. `docs/ARCHITECTURE.md`
//! is the map.
//!
//! ```no_run
//! use nmt::{Engine, OpenOptions};
//! use nmt_projections::Command;
//! let mut engine = Engine::open(&OpenOptions {
//!     state_dir: "nmt-state".into(),
//!     config: None,
//!     wait: std::time::Duration::from_secs(10),
//!     create: true,
//! })?;
//! engine.execute(Command::AddGroup { group: "lab".into(), policy: None }, "root")?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod app;
pub mod cli;
pub mod client;
mod config;
pub mod daemon;
mod engine;
mod files;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod identity;
pub mod images;
mod kea;
pub mod password;
pub mod power;
pub mod secrets;
mod site_key;
mod store;
mod time;

pub use config::{CONFIG_FILE, Config, DaemonConfig, FileConfig, Paths, PowerConfig, WebConfig};
pub use engine::{
    DB_FILE, Engine, Executed, LeasesSummary, OpenOptions, Plan, ReplaySummary, SNAPSHOT_EVERY,
    resolve,
};
pub use files::{Drift, WriteOutcome, write_batch};
pub use identity::current_actor;
pub use store::{
    Append, BackendError, EventStore, MemoryStore, OpenError, RedbStore, SNAPSHOT_SPACING,
    SNAPSHOTS_MAX, SNAPSHOTS_RECENT, Snapshot, StoreError,
};
pub use time::parse_time;
