//! The `nmt` command line: argument definitions (`args`), the wire form of a command
//! (`action`), what each command does on an engine (`perform`, shared with `nmtd`), how
//! results are printed as tables or JSON (`output`), and running it (`run`).

mod action;
mod args;
mod output;
mod perform;
mod run;

use std::process::ExitCode;

use clap::Parser;

pub use action::{Action, Output};
pub use args::Cli;
pub use output::json as json_string;
pub use perform::perform;
pub(crate) use run::{machine_add, parse_node_table};

/// Run `nmt` with the process's arguments; the exit status is 0 on success, 1 when a command
/// was refused or failed (or `render --check` found drift), 2 on a usage error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(r) = e.downcast_ref::<nmt_projections::Refusal>() {
                eprintln!("nmt: refused: {r}");
            } else {
                eprintln!("nmt: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}
