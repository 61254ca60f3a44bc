//! The fuzz targets of `fuzz/` (cargo-fuzz: libFuzzer, coverage-guided), each for a bounded
//! time from a fixed seed, starting from the fixtures: the envelope scanner and every
//! parser of `nmt-parsers` (`parse_line`), `nmt journal import` (`journal_import`) and nmtd's
//! machine-facing HTTP (`machine_http`). Each test prints how many inputs ran. A panic, a
//! failed check of the target or a hang fails it, with the input libFuzzer kept (under
//! `fuzz/artifacts/TARGET/`) and the command that runs that input again.
//!
//! The targets are built once, by `cargo fuzz build` on the stable toolchain
//! (`RUSTC_BOOTSTRAP=1`: cargo-fuzz passes flags stable rustc otherwise refuses), into
//! `fuzz/target` (not the main build's directory, whose lock `cargo test` holds), without a
//! sanitizer (nmt forbids unsafe code; libFuzzer's checks and the targets' own are what
//! matter, at several times the speed), and run one after another. `NMT_FUZZ_SECONDS` sets
//! how long each runs (default 30). To fuzz longer by hand, see the README ("Tests").

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::util::{TestDir, require};

/// One target at a time: the fuzzer has the machine's cores to itself.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// The build, once for all three (`Err`: what cargo said).
static BUILT: OnceLock<Result<(), String>> = OnceLock::new();

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo fuzz`, in the repository, building into `fuzz/target` whatever the environment says.
fn cargo_fuzz() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.arg("fuzz")
        .current_dir(repo())
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    c
}

fn build() {
    let installed = cargo_fuzz()
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        "cargo-fuzz (`cargo install cargo-fuzz --locked`, which tests/deps runs)",
        installed,
    );
    let built = BUILT.get_or_init(|| {
        let start = Instant::now();
        let out = cargo_fuzz()
            .args(["build", "--sanitizer", "none"])
            .output()
            .map_err(|e| format!("could not run cargo fuzz: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        println!("fuzz build: {:.1} s", start.elapsed().as_secs_f64());
        Ok(())
    });
    if let Err(e) = built {
        panic!("`cargo fuzz build --sanitizer none` failed:\n{e}");
    }
}

/// Run `target` for `NMT_FUZZ_SECONDS` from `seed`, its corpus starting from `seeds`.
fn fuzz(target: &str, seed: u32, seeds: &[PathBuf], options: &[String]) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    build();
    let secs: u64 = std::env::var("NMT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = TestDir::new();
    let corpus = dir.join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    // The state directories the targets make: on /dev/shm, where fsyncs cost nothing.
    let shm = Path::new("/dev/shm");
    let scratch = tempfile::Builder::new()
        .prefix("nmt-fuzztest-")
        .tempdir_in(if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        })
        .unwrap();
    let start = Instant::now();
    let out = cargo_fuzz()
        .args(["run", "--sanitizer", "none", target])
        .arg(&corpus)
        .args(seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-seed={seed}"))
        .args(["-timeout=30", "-print_final_stats=1"])
        .args(options)
        .env("NMT_FUZZ_SCRATCH", scratch.path())
        .output()
        .unwrap();
    let took = start.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = executions(&text).map_or("an unknown number of".into(), |n| n.to_string());
    if !out.status.success() {
        let kept = text
            .lines()
            .find_map(|l| l.split("Test unit written to ").nth(1))
            .map(|p| p.trim().to_string());
        let why: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("panicked at") && !l.contains("ERROR: libFuzzer"))
            .take(3)
            .collect();
        let tail: Vec<String> = text
            .lines()
            .rev()
            .take(25)
            .map(|l| l.chars().take(300).collect())
            .collect();
        panic!(
            "fuzz target {target} failed after {runs} executions: {}\n\
             the input: {}\n\
             run it again: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none {target} {}\n\
             --- the end of its output ---\n{}",
            why.join("\n"),
            kept.as_deref().unwrap_or("(none kept)"),
            kept.as_deref().unwrap_or("INPUT"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let inputs = std::fs::read_dir(&corpus).unwrap().count();
    println!(
        "fuzz target {target}: {runs} executions without a failure in {took:.1} s \
         ({secs} s of fuzzing from seed {seed}; the corpus grew to {inputs} inputs)"
    );
}

/// How many inputs libFuzzer ran, as its final statistics say.
fn executions(output: &str) -> Option<u64> {
    let stat = output
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"));
    let done = || {
        output
            .lines()
            .find_map(|l| l.strip_prefix("Done ")?.split(' ').next())
    };
    stat.or_else(done)?.trim().parse().ok()
}

fn seeds_dir(dir: &TestDir) -> PathBuf {
    let seeds = dir.join("seeds");
    std::fs::create_dir_all(&seeds).unwrap();
    seeds
}

#[test]
fn fuzz_parse_line_every_parser_on_arbitrary_bytes() {
    // Every line of the log fixtures is a seed of its own (the rows' line column).
    let dir = TestDir::new();
    let seeds = seeds_dir(&dir);
    let logs = repo().join("fixtures/logs");
    let mut n = 0;
    for (file, columns_before) in [
        ("corpus.tsv", 4),
        ("lookalikes.tsv", 1),
        ("parsers-pxe-boot.log", 0),
    ] {
        let text = std::fs::read_to_string(logs.join(file)).unwrap();
        for row in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let line = row.splitn(columns_before + 1, '\t').last().unwrap();
            std::fs::write(seeds.join(n.to_string()), line).unwrap();
            n += 1;
        }
    }
    assert!(n > 100, "{n} seed lines");
    fuzz(
        "parse_line",
        1,
        &[seeds, repo().join("fuzz/seeds/parse_line")],
        &[],
    );
}

#[test]
fn fuzz_journal_import_refuses_or_imports_whole() {
    // Exports of every schema version (journal-v3.jsonl ends with its trailer line).
    let dir = TestDir::new();
    let seeds = seeds_dir(&dir);
    for v in 1..=3 {
        let name = format!("journal-v{v}.jsonl");
        std::fs::copy(repo().join("fixtures").join(&name), seeds.join(name)).unwrap();
    }
    fuzz("journal_import", 2, &[seeds], &[]);
}

#[test]
fn fuzz_machine_http_no_token_changes_nothing() {
    fuzz(
        "machine_http",
        3,
        &[repo().join("fuzz/seeds/machine_http")],
        &[format!(
            "-dict={}",
            repo().join("fuzz/dicts/machine_http.dict").display()
        )],
    );
}
