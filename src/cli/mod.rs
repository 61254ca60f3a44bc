//! The `nmt` command line: argument definitions (`args`), how replies are printed as tables
//! or JSON (`output`, `render`), and running it (`run`): the command becomes an
//! [`crate::app::Action`], performed here or by `nmtd`, whose typed reply this process
//! renders.

mod args;
mod output;
mod render;
mod run;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;
pub use output::json as json_string;
pub use render::{arch_kind, render};

/// Run `nmt` with the process's arguments; the exit status is 0 on success, 1 when a command
/// was refused or failed (or `render --check` found drift), 2 on a usage error, 3 when a bulk
/// destruction was not confirmed (nothing done; see `--yes`).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run::run(cli) {
        Ok(code) => code,
        // The reader of standard output is gone (`nmt journal export | head`): end quietly,
        // with the status of a process that SIGPIPE ended, as `cat` does.
        Err(e) if run::closed_stdout(&e) => ExitCode::from(141),
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
