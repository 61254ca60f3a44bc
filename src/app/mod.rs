//! The application layer: what nmt can be asked to do ([`Action`]), who may ask
//! ([`Action::right`]), doing it ([`perform`], [`read`], one function per action), and what it
//! answers, as typed data ([`Reply`], [`Failure`]). The command line, nmtd's control socket
//! and the web UI all come through here; each renders the replies its own way (tables or
//! JSON in the caller's time zone, HTML).

mod action;
mod input;
mod perform;
mod reply;

pub use action::{Action, Right};
pub use input::{machine_add, parse_node_table};
pub use perform::{
    boots, groups, history, mac_or_name, machines, one_machine, perform, read, rootdevs, show,
};
pub use reply::{
    Answer, CheckpointView, DaemonStatus, Failure, FileView, Files, GroupView, MachineView,
    Replayed, Reply, RootdevView, ShowView, SourceView, Status, Then, local_time,
};
