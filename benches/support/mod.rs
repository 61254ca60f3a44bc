//! What the benchmarks share: running the real `nmt` binary.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Run `nmt ARGS` on the state in `state`; require success. How long it took, and its
/// standard output.
pub fn nmt(state: &Path, args: &[&str]) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_nmt"))
        .args(args)
        .env("NMT_STATE", state)
        .output()
        .expect("run nmt");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "nmt {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    (d, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The median time of `n` runs of `nmt ARGS`.
#[allow(dead_code)] // not every benchmark takes medians
pub fn median(state: &Path, args: &[&str], n: usize) -> Duration {
    let mut runs: Vec<Duration> = (0..n).map(|_| nmt(state, args).0).collect();
    runs.sort();
    runs[n / 2]
}

/// A process's resident size, in MB.
#[allow(dead_code)] // not every benchmark runs nmtd
pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
