//! Admin-command benchmark: the real `nmt` binary on a 10,000-machine inventory.
//!
//! Prints, beside published figures of other tools:
//! - adding N machines one command at a time (median and p99 per command, and at the end of
//!   the run, when the inventory is largest);
//! - `nmt policy @big localboot` on an N-member group, including the file rewrite, and the
//!   number of files written;
//! - `nmt machine import` of N nodes with all their files, into an empty state, beside a
//!   plain file writer making as many files (creating files is most of an import's time).
//!
//! Run: `cargo bench --bench admin` (N=10000; set NMT_BENCH_N to change it).

use std::time::{Duration, Instant};

use support::nmt;

mod support;

fn mac(n: usize) -> String {
    format!(
        "52:54:{:02x}:{:02x}:{:02x}:{:02x}",
        (n >> 24) & 0xff,
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn files_written(out: &str) -> usize {
    out.lines()
        .find_map(|l| l.strip_prefix("files: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::var("NMT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::Builder::new()
        .prefix("nmt-bench-")
        .tempdir()
        .unwrap();
    println!(
        "nmt admin benchmark: N = {n} machines, state under {}",
        dir.path().display()
    );

    // 1. One command at a time.
    let state = dir.path().join("one-by-one");
    nmt(&state, &["init"]);
    nmt(&state, &["group", "add", "big"]);
    let mut each = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let name = format!("node{:05}", i + 1);
        let (d, _) = nmt(
            &state,
            &["machine", "add", &mac(i), "--name", &name, "--group", "big"],
        );
        each.push(d);
        if (i + 1) % 1000 == 0 {
            eprintln!("  {} added ({:.1} s)", i + 1, start.elapsed().as_secs_f64());
        }
    }
    let total_add = start.elapsed();
    let tail_len = (n / 10).max(1);
    let mut tail: Vec<Duration> = each[n - tail_len..].to_vec();
    let tail_median = pct(&mut tail, 0.5);
    let median = pct(&mut each, 0.5);
    let p99 = pct(&mut each, 0.99);

    // 2. Policy changes on the whole group, with the file rewrite. Between policies whose
    // entries are shared (localboot, ltsp) only the group's entries change; install entries
    // carry each machine's report token, so every member's pxelinux entry is written.
    let (ltsp_time, out) = nmt(&state, &["policy", "@big", "ltsp"]);
    let ltsp_files = files_written(&out);
    let (to_local_time, out) = nmt(&state, &["policy", "@big", "localboot"]);
    let to_local_files = files_written(&out);
    let (install_time, out) = nmt(&state, &["policy", "@big", "install"]);
    let install_files = files_written(&out);
    let (policy_time, out) = nmt(&state, &["policy", "@big", "localboot"]);
    let policy_files = files_written(&out);
    let (one_time, out1) = nmt(&state, &["policy", "node00042", "ltsp"]);
    let one_files = files_written(&out1);

    // 3. Import of N nodes into an empty state.
    let csv: String = (0..n)
        .map(|i| {
            format!(
                "{},node{:05},10.{}.{}.{},big\n",
                mac(i),
                i + 1,
                1 + i / (254 * 256),
                (i / 254) % 256,
                1 + i % 254
            )
        })
        .collect();
    let csv_path = dir.path().join("nodes.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let state2 = dir.path().join("import");
    nmt(&state2, &["init"]);
    nmt(&state2, &["group", "add", "big"]);
    let (import_time, out) = nmt(&state2, &["machine", "import", csv_path.to_str().unwrap()]);
    let import_files = files_written(&out);
    // The baseline: a plain file writer making as many small files the same way (a temporary
    // beside each, renamed into place), on the same filesystem, right after.
    let plain = dir.path().join("plain");
    let started = Instant::now();
    for d in ["a", "b", "c"] {
        std::fs::create_dir_all(plain.join(d)).unwrap();
    }
    for i in 0..import_files {
        let dir = plain.join(["a", "b", "c"][i % 3]);
        let tmp = dir.join(format!(".f{i}.tmp"));
        std::fs::write(&tmp, [b'x'; 200]).unwrap();
        std::fs::rename(&tmp, dir.join(format!("f{i}"))).unwrap();
    }
    let plain_time = started.elapsed();

    println!();
    println!("| measurement | nmt | target | published figure for comparison |");
    println!("|---|---|---|---|");
    println!(
        "| add one machine (median of {n} commands) | {} (p99 {}) | < 20 ms | Cobbler: 10-20 s per node once 500+ exist |",
        ms(median),
        ms(p99)
    );
    println!(
        "| add one machine with {}+ already known (median of last {tail_len}) | {} | < 20 ms | |",
        n - tail_len,
        ms(tail_median)
    );
    println!(
        "| add {n} machines one at a time, total | {:.1} s | | |",
        total_add.as_secs_f64()
    );
    println!(
        "| `nmt policy @big ltsp` (from localboot), {n} members, incl. files | {} ({ltsp_files} files written) | < 1 s | xCAT nodeset 2,500 nodes: 30,280 s; Cobbler sync ~1,200 systems: 145 s |",
        ms(ltsp_time)
    );
    println!(
        "| `nmt policy @big localboot` (from ltsp) | {} ({to_local_files} files written) | < 1 s | |",
        ms(to_local_time)
    );
    println!(
        "| `nmt policy @big install` (from localboot; per-machine tokens) | {} ({install_files} files written) | < 1 s | |",
        ms(install_time)
    );
    println!(
        "| `nmt policy @big localboot` (from install) | {} ({policy_files} files written) | < 1 s | |",
        ms(policy_time)
    );
    println!(
        "| `nmt policy node00042 ltsp` with {n} known | {} ({one_files} files written) | < 20 ms | |",
        ms(one_time)
    );
    println!(
        "| `nmt machine import` of {n} nodes with all files | {} ({import_files} files written) | < 2 s | xCAT 10,000-node import: 1,065 s |",
        ms(import_time)
    );
    println!(
        "| baseline: a plain file writer making {import_files} files (temporary + rename) | {} | | |",
        ms(plain_time)
    );
}
