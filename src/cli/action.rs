//! What a command asks for, in a form that crosses the daemon's socket: an [`Action`] goes
//! in, an [`Output`] (exit status, stdout, stderr) comes back. The command line builds the
//! action (parsing what only the caller can: files, standard input, local times), and
//! [`super::perform`] carries it out on an engine, in-process or inside `nmtd`.

use std::net::Ipv4Addr;

use jiff::Timestamp;
use nmt_projections::{ImportRow, Mac, Profile};
use serde::{Deserialize, Serialize};

/// One command, ready to perform.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Action {
    MachineAdd {
        mac: Mac,
        name: Option<String>,
        group: Option<String>,
        ip: Option<Ipv4Addr>,
    },
    MachineImport {
        rows: Vec<ImportRow>,
    },
    MachineRm {
        range: String,
    },
    Name {
        target: String,
        name: Option<String>,
        pattern: Option<String>,
    },
    GroupAdd {
        group: String,
        policy: Option<String>,
    },
    GroupRm {
        group: String,
        force: bool,
    },
    GroupList,
    Assign {
        range: String,
        group: String,
    },
    Policy {
        range: String,
        policy: String,
        once: bool,
        members: bool,
    },
    Machines {
        range: Option<String>,
        #[serde(default)]
        at: Option<Timestamp>,
    },
    RootdevList,
    RootdevSet {
        range: String,
        device: String,
    },
    RootdevRm {
        range: String,
    },
    ProfileAdd {
        profile: Profile,
        replace: bool,
    },
    ProfileRm {
        name: String,
    },
    ProfileList,
    Installed {
        machine: String,
        rootdev: String,
    },
    History {
        machine: String,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        #[serde(default)]
        kinds: Vec<String>,
    },
    Boots {
        machine: String,
        since: Option<Timestamp>,
    },
    Verify,
    Show {
        machine: String,
        #[serde(default)]
        at: Option<Timestamp>,
    },
    Render {
        check: bool,
    },
    JournalExport {
        since: Option<Timestamp>,
        until: Option<Timestamp>,
        machine: Option<String>,
    },
    Status,
    ReplayLogs {
        paths: Vec<std::path::PathBuf>,
        year: Option<i16>,
        strict: bool,
    },
}

impl Action {
    /// Whether the action may start a new, empty state when there is none (it can succeed on
    /// one). Read-only actions and actions on existing machines never create a state.
    pub fn creates(&self) -> bool {
        matches!(
            self,
            Action::MachineAdd { .. }
                | Action::MachineImport { .. }
                | Action::GroupAdd { .. }
                | Action::Policy { .. }
                | Action::ProfileAdd { .. }
                | Action::Installed { .. }
                | Action::Render { check: false }
                | Action::ReplayLogs { .. }
        )
    }
}

/// What a performed action printed, and its exit status.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Output {
    /// 0 success; 1 refused, failed, or drift found.
    pub code: u8,
    /// What goes to standard output.
    pub stdout: String,
    /// What goes to standard error.
    pub stderr: String,
}

impl Output {
    /// A failure with its message, as `nmt: …` on standard error.
    pub fn error(e: &anyhow::Error) -> Output {
        let stderr = match e.downcast_ref::<nmt_projections::Refusal>() {
            Some(r) => format!("nmt: refused: {r}\n"),
            None => format!("nmt: {e:#}\n"),
        };
        Output {
            code: 1,
            stdout: String::new(),
            stderr,
        }
    }
}
