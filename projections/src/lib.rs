//! The nmt domain: the event schema, the pure fold of events into [`State`], the business
//! checks that turn admin commands into events ([`decide`]), and the renderers of every
//! generated file ([`render`]).
//!
//! Nothing here does I/O or reads a clock: the same events give the same state and the same
//! bytes, which is what makes replay, `nmt verify` and journal import exact.
//!
//! ```
//! use nmt_projections::{decide, Command, Envelope, Event, Policy, State};
//! let mut state = State::new();
//! let events = decide(&state, Command::AddGroup {
//!     group: "lab".into(),
//!     policy: Some("localboot".parse().unwrap()),
//! }).unwrap();
//! assert!(matches!(&events[0], Event::GroupCreated { group, .. } if group == "lab"));
//! for (i, event) in events.into_iter().enumerate() {
//!     state.apply(&Envelope {
//!         seq: i as u64 + 1,
//!         v: 1,
//!         recorded_at: jiff::Timestamp::UNIX_EPOCH,
//!         observed_at: jiff::Timestamp::UNIX_EPOCH,
//!         actor: "root".into(),
//!         source: None,
//!         event,
//!     });
//! }
//! assert_eq!(state.group_policy("lab"), Policy::LocalBoot);
//! ```

mod affected;
mod boots;
mod decide;
mod describe;
mod event;
mod image;
mod impact;
mod mac;
mod names;
mod observe;
mod policy;
mod power;
mod preseed;
mod profile;
pub mod render;
mod schedule;
mod state;
mod token;

#[cfg(test)]
mod decide_tests;

pub use affected::Affected;
pub use boots::{BootRecord, BootTracker, OneShotSpent};
pub use decide::{
    Command, ImportProblem, ImportRow, LISTED_PROBLEMS, NamePattern, Refusal, RowProblem, decide,
    problem_list,
};
pub use describe::{describe, describe_for};
pub use event::{
    DecodeError, Envelope, Event, MachineRecord, ReportVia, SCHEMA_VERSION, Source, upcast,
};
pub use image::{
    Image, ImageAction, ImageJob, ImageManifest, ImagePart, ImageRef, ImageVersion, Restore,
    StreamDigest, imaging_policy, interrupted,
};
pub use impact::{BootChange, Impact, MachineRef, list as machine_list};
pub use mac::{Mac, MacError};
pub use names::{NameError, machine_name, root_device, word};
pub use observe::{Observation, entry_mac, installer_actor, is_default_entry, observe, untrusted};
pub use policy::{DEFAULT_INSTALL_PROFILE, Policy, PolicyError};
pub use power::{
    Bmc, BmcEntry, BmcFor, BmcProtocol, LastPower, MachineBmc, Power, PowerOp, PowerResult,
    SecretChange, Tls, describe_bmc, expand as expand_bmc,
};
pub use preseed::{
    PreseedError, PreseedOptions, RECIPES, TEMPLATE_PLACEHOLDERS, debconf_line,
    template_placeholders,
};
pub use profile::{AnswerKind, PLACEHOLDERS, Profile, ProfileError, ProfileKind, check_args};
pub use schedule::{
    Check, Due, LATE_AFTER_SECS, MachineOutcome, Missed, Outcome, RECENT_RUNS, Run, Schedule,
    Zones, classify, counts_words, due as schedules_due, duration_words, next_after, next_run,
    next_wake, outcome_words, parse_cron, times_between, zone_hint,
};
pub use state::{Group, Installed, LOCALBOOT, LastBoot, Machine, Origin, Override, State, UNKNOWN};
pub use token::{SiteKey, report_token, token_matches};
