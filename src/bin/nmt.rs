//! `nmt`: the command line. See `nmt --help`.

fn main() -> std::process::ExitCode {
    nmt::cli::main()
}
