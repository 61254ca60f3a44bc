//! The nmt domain: the event schema, the pure fold of events into [`State`], the business
//! checks that turn admin commands into events ([`decide`]), and the renderers of every
//! generated file ([`render`]).
//!
//! Nothing here does I/O or reads a clock: the same events give the same state and the same
//! bytes, which is what makes replay, `nmt verify` and journal import exact.
//!
//! ```
//! use nmt_projections::{decide, Command, State, Envelope, Event};
//! let state = State::new();
//! let events = decide(&state, Command::AddGroup {
//!     group: "lab".into(),
//!     policy: Some("install".parse().unwrap()),
//! }).unwrap();
//! assert!(matches!(&events[0], Event::GroupCreated { group, .. } if group == "lab"));
//! ```

mod decide;
mod event;
mod mac;
mod names;
mod policy;
mod profile;
pub mod render;
mod state;
mod token;

pub use decide::{decide, Command, ImportRow, NamePattern, Refusal};
pub use event::{upcast, DecodeError, Envelope, Event, ReportVia, Source, SCHEMA_VERSION};
pub use mac::{Mac, MacError};
pub use names::{machine_name, root_device, word, NameError};
pub use policy::{Policy, PolicyError, DEFAULT_INSTALL_PROFILE};
pub use profile::{check_args, AnswerKind, Profile, ProfileError, ProfileKind, PLACEHOLDERS};
pub use state::{Group, Installed, LastBoot, Machine, Origin, Override, State, LOCALBOOT, UNKNOWN};
pub use token::{report_token, token_matches};
