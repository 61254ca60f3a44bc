//! Model-based test of the tailer: a writer, logrotate and a crashing reader take random
//! steps (append lines, some split across two writes; rename rotation with or without
//! `create`; `copytruncate`, sometimes followed at once by a large write; delete and recreate;
//! polls with random budgets, some never committed; crashes that rebuild the tailer from the
//! last committed checkpoint). The model is simply every line written, in order: after a
//! final drain the committed lines must be exactly those, none lost, none repeated.
//!
//! What no reader can do is kept out of the steps rather than modelled: the copy and the
//! truncation of `copytruncate` happen with no poll between them and at a line boundary, and
//! a delete is seen by a poll before the new file is written to (inotify wakes the daemon).
//!
//! `NMT_TAIL_SEED=n cargo test -p nmt-replay model` reruns one seed.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use std::collections::BTreeMap;

use super::{Checkpoint, TailEvent, Tailer};

const RUNS: u64 = 200;
const STEPS: usize = 60;
/// Small, so that long lines are frequent and cheap.
const MAX_LINE: usize = 120;
/// `"000042 "`: the unique start of every line.
const SEQ_LEN: usize = 7;
const BUDGETS: [usize; 6] = [1, 5, 40, 200, 4096, usize::MAX];

/// splitmix64: small, seedable, good enough to pick steps.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// A line whose first part only was written so far.
struct Half {
    first: Vec<u8>,
    rest: Vec<u8>,
    /// Its place in `written`.
    index: usize,
}

/// A line as the tailer must hand it out: its first `MAX_LINE` bytes, and whether it was cut.
type Expected = (Vec<u8>, bool);

struct World {
    _tmp: tempfile::TempDir,
    log: PathBuf,
    rng: Rng,
    /// The writer's descriptor: on the file at the path, or on one renamed or deleted under it.
    writer: File,
    writer_on_path: bool,
    /// A line whose first part only was written.
    half: Option<Half>,
    seq: u64,
    /// How many numbered rotations (`log.1` … `log.N`) there are.
    rotated: u32,
    written: Vec<Expected>,
    tailer: Tailer,
    committed: Option<Checkpoint>,
    received: Vec<Expected>,
    steps: Vec<String>,
    /// How often each event and situation came up, to check that the steps reach them.
    seen: BTreeMap<&'static str, usize>,
}

impl World {
    fn new(seed: u64) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("dhcpd.log");
        let writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let tailer = Tailer::new(&log, None).max_line(MAX_LINE);
        World {
            _tmp: tmp,
            log,
            rng: Rng(seed),
            writer,
            writer_on_path: true,
            half: None,
            seq: 0,
            rotated: 0,
            written: Vec::new(),
            tailer,
            committed: None,
            received: Vec::new(),
            steps: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    fn numbered(&self, n: u32) -> PathBuf {
        self.log.with_file_name(format!("dhcpd.log.{n}"))
    }

    /// A new line, with its `\n`: a unique sequence number first (so that fingerprints tell
    /// contents apart, as timestamps do in real logs), then random bytes, invalid UTF-8 and
    /// all, sometimes longer than the cap.
    fn line(&mut self) -> Vec<u8> {
        self.seq += 1;
        let mut line = format!("{:06} ", self.seq).into_bytes();
        debug_assert_eq!(line.len(), SEQ_LEN);
        let filler = if self.rng.one_in(12) {
            100 + self.rng.below(300)
        } else {
            self.rng.below(60)
        };
        line.extend((0..filler).map(|_| match self.rng.below(256) as u8 {
            b'\n' => b'.',
            b => b,
        }));
        self.written.push(expected(&line));
        line.push(b'\n');
        line
    }

    fn flush_half(&mut self) {
        if let Some(half) = self.half.take() {
            self.writer.write_all(&half.rest).unwrap();
        }
    }

    /// Append `n` lines; some in two `write()`s, the last maybe leaving its second half for later.
    fn append(&mut self, n: usize, may_split: bool) {
        self.flush_half();
        for i in 0..n {
            let line = self.line();
            if may_split && self.rng.one_in(3) {
                // The first part keeps at least the sequence number, as a real line's first
                // write keeps its timestamp: a fingerprint of the few bytes seen of a first,
                // partial line must still tell two contents apart.
                let at = SEQ_LEN + self.rng.below(line.len() - SEQ_LEN);
                self.writer.write_all(&line[..at]).unwrap();
                if i + 1 == n && self.rng.one_in(2) {
                    let index = self.written.len() - 1;
                    self.half = Some(Half {
                        first: line[..at].to_vec(),
                        rest: line[at..].to_vec(),
                        index,
                    });
                } else {
                    self.writer.write_all(&line[at..]).unwrap();
                }
            } else {
                self.writer.write_all(&line).unwrap();
            }
        }
    }

    /// The writer reopens the path (after a HUP), finishing its line on the old file first;
    /// or, sometimes, leaving it unterminated there for good (it crashed mid-line and was
    /// restarted), when that file is not the one at the path.
    fn reopen(&mut self) {
        if !self.writer_on_path && self.half.is_some() && self.rng.one_in(3) {
            let half = self.half.take().expect("checked");
            self.written[half.index] = expected(&half.first);
            self.steps.push("(line left unterminated)".into());
            *self.seen.entry("line left unterminated").or_default() += 1;
        }
        self.flush_half();
        self.writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.writer_on_path = true;
    }

    /// `log.N` → `log.N+1` …, making room for a new `log.1`.
    fn shift(&mut self) {
        for n in (1..=self.rotated).rev() {
            fs::rename(self.numbered(n), self.numbered(n + 1)).unwrap();
        }
        self.rotated += 1;
    }

    fn rename_rotate(&mut self) {
        if !self.log.exists() {
            return self.append(1, true);
        }
        self.shift();
        fs::rename(&self.log, self.numbered(1)).unwrap();
        self.writer_on_path = false;
        if self.rng.one_in(2) {
            File::create(&self.log).unwrap();
        }
        if self.rng.one_in(3) {
            self.reopen();
        }
    }

    fn copytruncate(&mut self, big_write: bool) {
        if !self.writer_on_path {
            self.reopen();
        }
        self.flush_half();
        self.shift();
        let size = fs::metadata(&self.log).unwrap().len();
        fs::copy(&self.log, self.numbered(1)).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&self.log)
            .unwrap()
            .set_len(0)
            .unwrap();
        if big_write {
            while fs::metadata(&self.log).unwrap().len() < size + 50 {
                self.append(4, false);
            }
        }
    }

    fn delete_recreate(&mut self) {
        if !self.writer_on_path {
            self.reopen();
        }
        if fs::metadata(&self.log).unwrap().len() == 0 {
            self.append(1, false);
        }
        self.poll(usize::MAX, false);
        fs::remove_file(&self.log).unwrap();
        if self.rng.one_in(2) {
            let n = 1 + self.rng.below(3);
            self.append(n, true);
        }
        self.reopen();
        let n = 1 + self.rng.below(3);
        self.append(n, false);
        self.poll(usize::MAX, false);
    }

    fn crash(&mut self) {
        self.tailer = Tailer::new(&self.log, self.committed.clone()).max_line(MAX_LINE);
    }

    /// Poll and commit; unless `may_crash` picks a crash before the commit.
    fn poll(&mut self, budget: usize, may_crash: bool) {
        let batch = self.tailer.poll(budget).unwrap();
        if !batch.lines.is_empty() {
            assert!(batch.checkpoint.is_some(), "lines without a checkpoint");
        }
        for event in &batch.events {
            *self.seen.entry(kind(event)).or_default() += 1;
        }
        if batch.lines.iter().any(|l| l.truncated) {
            *self.seen.entry("line cut").or_default() += 1;
        }
        if may_crash && self.rng.one_in(10) {
            *self.seen.entry("crash before commit").or_default() += 1;
            self.steps.push(format!(
                "  (batch of {} lines not committed)",
                batch.lines.len()
            ));
            return self.crash();
        }
        self.received
            .extend(batch.lines.into_iter().map(|l| (l.bytes, l.truncated)));
        if batch.checkpoint.is_some() {
            self.committed = batch.checkpoint;
        }
    }

    fn step(&mut self) {
        let roll = self.rng.below(100);
        let name = match roll {
            0..=29 => {
                let n = 1 + self.rng.below(8);
                self.append(n, true);
                format!("append {n}")
            }
            30..=54 => {
                let budget = BUDGETS[self.rng.below(BUDGETS.len())];
                self.poll(budget, true);
                format!("poll {budget}")
            }
            55..=64 => {
                self.rename_rotate();
                "rename rotation".into()
            }
            65..=69 => {
                self.reopen();
                "writer reopens".into()
            }
            70..=79 => {
                let big = self.rng.one_in(2);
                self.copytruncate(big);
                format!("copytruncate{}", if big { " + large write" } else { "" })
            }
            80..=84 => {
                self.delete_recreate();
                "delete + recreate".into()
            }
            _ => {
                self.crash();
                "crash".into()
            }
        };
        self.steps.push(name);
    }

    fn run(&mut self) -> Result<(), String> {
        let n = 1 + self.rng.below(4);
        self.append(n, false);
        self.poll(usize::MAX, false);
        self.steps.push(format!("append {n}, poll"));
        for _ in 0..STEPS {
            self.step();
        }
        // The writer logs one more line: a rotated file's unterminated last line is handed
        // out once a newer file has data, the sign that the writer is done with it.
        self.append(1, false);
        self.steps.push("append 1, final drain".into());
        for _ in 0..4 {
            self.poll(usize::MAX, false);
        }
        if self.received == self.written {
            return Ok(());
        }
        let first = self
            .received
            .iter()
            .zip(&self.written)
            .position(|(r, w)| r != w);
        let show = |l: Option<&Expected>| {
            l.map(|(b, _)| String::from_utf8_lossy(&b[..7.min(b.len())]).into_owned())
        };
        let at = first.unwrap_or(self.received.len().min(self.written.len()));
        Err(format!(
            "received {} lines, wrote {}; first difference at line {at}: got {:?}, wanted {:?}\nsteps: {}",
            self.received.len(),
            self.written.len(),
            show(self.received.get(at)),
            show(self.written.get(at)),
            self.steps.join("; "),
        ))
    }
}

fn expected(line: &[u8]) -> Expected {
    (
        line[..line.len().min(MAX_LINE)].to_vec(),
        line.len() > MAX_LINE,
    )
}

fn kind(event: &TailEvent) -> &'static str {
    match event {
        TailEvent::Opened { offset: 0, .. } => "opened",
        TailEvent::Opened { .. } => "resumed",
        TailEvent::Rotated { .. } => "rotated",
        TailEvent::Recreated { .. } => "recreated",
        TailEvent::Truncated { copy: Some(_), .. } => "truncated, copy found",
        TailEvent::Truncated { copy: None, .. } => "truncated, no copy",
        TailEvent::Missing => "missing",
        TailEvent::Lost { .. } => "lost",
    }
}

#[test]
fn every_line_once_across_random_rotations_truncations_and_crashes() {
    let seeds: Vec<u64> = match std::env::var("NMT_TAIL_SEED") {
        Ok(seed) => vec![seed.parse().expect("NMT_TAIL_SEED is a number")],
        Err(_) => (0..RUNS).collect(),
    };
    let all = seeds.len() > 1;
    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    for seed in seeds {
        let mut world = World::new(seed);
        if let Err(why) = world.run() {
            failures.push(format!("seed {seed} (rerun: NMT_TAIL_SEED={seed}): {why}"));
        }
        for (kind, n) in world.seen {
            *seen.entry(kind).or_insert(0) += n;
        }
    }
    assert!(
        failures.is_empty(),
        "{} seeds failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    println!("{seen:?}");
    if all {
        // The steps reach every situation the tailer handles; none of them loses a file.
        for kind in [
            "resumed",
            "rotated",
            "recreated",
            "truncated, copy found",
            "missing",
            "line cut",
            "line left unterminated",
            "crash before commit",
        ] {
            assert!(
                seen.get(kind).copied().unwrap_or(0) >= 5,
                "too few {kind:?}: {seen:?}"
            );
        }
        for kind in ["lost", "truncated, no copy"] {
            assert!(!seen.contains_key(kind), "{kind:?} came up: {seen:?}");
        }
    }
}
