//! `nmt`: the command line. See `nmt --help`.

/// mimalloc, as in nmtd: `journal import` and `replay logs` allocate and free millions of
/// small values (decoded lines, events, their stored forms) across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    nmt::cli::main()
}
