//! Model-based test of the engine: random command sequences, and after every step the
//! incrementally written files must equal a full render (no drift), and the state folded
//! from the store must equal the live one. A failure prints the seed and the step.
//!
//! Every check runs against each store backend: the redb file in the state directory and
//! the in-memory store (reopened over the same shared log).

use std::net::Ipv4Addr;
use std::time::Duration;

use nmt::{Engine, MemoryStore, OpenOptions};
use nmt_projections::{
    Command, Event, ImportRow, Mac, NamePattern, Profile, ProfileKind, ReportVia,
};

use crate::util::TestDir;

/// xorshift64*: a tiny deterministic generator, so a seed reproduces a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

const GROUPS: [&str; 4] = ["unknown", "a", "b", "localboot"];
const POLICIES: [&str; 8] = [
    "localboot",
    "install",
    "install:ubuntu",
    "ltsp",
    "save-image:img1",
    "restore-image:img1",
    "nfsroot:10.0.0.1:/srv/root",
    "custom:memtest",
];

/// Which store the engine runs over.
#[derive(Clone, Debug)]
enum Backend {
    /// `nmt.redb` in the state directory.
    Redb,
    /// One in-memory log: every open sees what earlier ones appended.
    Memory(MemoryStore),
}

impl Backend {
    fn all() -> [Backend; 2] {
        [Backend::Redb, Backend::Memory(MemoryStore::new())]
    }

    /// Open (or reopen) the engine over this backend's store.
    fn open(&self, dir: &std::path::Path) -> Engine {
        let opts = OpenOptions {
            state_dir: dir.to_path_buf(),
            config: None,
            wait: Duration::from_secs(5),
            create: true,
        };
        match self {
            Backend::Redb => Engine::open(&opts),
            Backend::Memory(store) => Engine::open_with_store(&opts, store.clone()),
        }
        .unwrap()
    }
}

fn random_command(r: &mut Rng, engine: &Engine) -> Command {
    let mac = |r: &mut Rng| Mac::new([0x52, 0x54, 0, 0, 0, r.below(24) as u8]);
    let known: Vec<Mac> = engine.state().machines().map(|m| m.mac).collect();
    let some = |r: &mut Rng| -> Vec<Mac> {
        if known.is_empty() {
            return vec![mac(r)];
        }
        let n = 1 + r.below(4) as usize;
        (0..n).map(|_| *r.pick(&known)).collect()
    };
    let name = |r: &mut Rng| format!("n{}", r.below(30));
    let ip = |r: &mut Rng| Ipv4Addr::new(10, 0, 0, 1 + r.below(30) as u8);
    match r.below(16) {
        0 | 1 => Command::AddMachine {
            mac: mac(r),
            name: (r.below(2) == 0).then(|| name(r)),
            group: (r.below(2) == 0).then(|| r.pick(&GROUPS[..3]).to_string()),
            ip: (r.below(3) == 0).then(|| ip(r)),
        },
        2 => Command::Name {
            mac: some(r)[0],
            name: name(r),
        },
        3 => Command::NamePattern {
            macs: some(r),
            pattern: NamePattern::parse(&format!("p{{0{}}}", r.below(9))).unwrap(),
        },
        4 => Command::Assign {
            macs: some(r),
            group: r.pick(&GROUPS).to_string(),
            // A fixed address now and then (refused for more than one machine, or one taken),
            // or none: a DHCP fact, so the DHCP files follow.
            address: match r.below(4) {
                0 => Some(Some(std::net::Ipv4Addr::new(
                    10,
                    9,
                    0,
                    10 + r.below(8) as u8,
                ))),
                1 => Some(None),
                _ => None,
            },
        },
        5 | 6 => Command::SetPolicy {
            macs: some(r),
            policy: (r.below(5) != 0).then(|| r.pick(&POLICIES).parse().unwrap()),
            once: r.below(2) == 0,
        },
        7 => Command::SetGroupPolicy {
            group: r.pick(&GROUPS).to_string(),
            policy: r.pick(&POLICIES).parse().unwrap(),
            once: r.below(4) == 0,
        },
        8 => Command::AddGroup {
            group: r.pick(&["a", "b"]).to_string(),
            policy: Some(r.pick(&POLICIES).parse().unwrap()),
        },
        9 => Command::RemoveGroup {
            group: r.pick(&["a", "b"]).to_string(),
            force: r.below(2) == 0,
            to: (r.below(3) == 0).then(|| r.pick(&["a", "b", "localboot"]).to_string()),
        },
        10 => Command::SetRootDevice {
            macs: some(r),
            device: r
                .pick(&["/dev/sda1", "/dev/sdb2", "/dev/nvme0n1p2", "LABEL=root"])
                .to_string(),
        },
        11 => Command::RemoveRootDevice { macs: some(r) },
        12 => Command::ReportInstall {
            mac: mac(r),
            device: "/dev/vda1".into(),
            via: ReportVia::Installer,
        },
        13 => Command::RemoveMachines {
            macs: vec![some(r)[0]],
        },
        14 => Command::DefineProfile {
            profile: Profile {
                name: r.pick(&["memtest", "ltsp"]).to_string(),
                kind: ProfileKind::Custom,
                kernel: format!("k{}", r.below(3)),
                initrd: vec![],
                args: format!("x={} {{name}}", r.below(3)),
                answer: None,
                network_console: false,
                preseed: None,
            },
            replace: true,
        },
        _ => Command::Import {
            rows: (0..1 + r.below(3))
                .map(|i| ImportRow {
                    line: i as usize + 1,
                    mac: mac(r).to_string(),
                    name: if r.below(2) == 0 {
                        name(r)
                    } else {
                        String::new()
                    },
                    ip: if r.below(3) == 0 {
                        ip(r).to_string()
                    } else {
                        String::new()
                    },
                    group: r.pick(&["", "a", "b"]).to_string(),
                })
                .collect(),
        },
    }
}

fn run(backend: &Backend, seed: u64, steps: usize) {
    let dir = TestDir::new();
    let mut engine = backend.open(dir.path());
    let mut r = Rng(seed | 1);
    let mut accepted = 0;
    for step in 0..steps {
        // Now and then a machine boots its entry (as log ingest will record it).
        if r.below(6) == 0 && engine.state().machine_count() > 0 {
            let macs: Vec<Mac> = engine.state().machines().map(|m| m.mac).collect();
            let mac = *r.pick(&macs);
            let before = engine.state().last_seq();
            let (_, affected) = engine
                .append(
                    vec![Event::BootEntryUsed {
                        mac,
                        file: "pxelinux.cfg/x".into(),
                        ip: None,
                    }],
                    "dnsmasq@test",
                    jiff::Timestamp::now(),
                    None,
                )
                .unwrap();
            engine.render(&affected, before).unwrap();
        }
        // Now and then a machine starts a DHCP exchange: a one-shot boot in progress ends.
        if r.below(8) == 0 && engine.state().machine_count() > 0 {
            let macs: Vec<Mac> = engine.state().machines().map(|m| m.mac).collect();
            let mac = *r.pick(&macs);
            let before = engine.state().last_seq();
            let (_, affected) = engine
                .append(
                    vec![Event::DhcpSeen {
                        mac,
                        kind: "discover".into(),
                        ip: None,
                        hostname: None,
                        arch: None,
                        vendor_class: None,
                        server: "dnsmasq".into(),
                        via: None,
                        note: None,
                    }],
                    "dnsmasq@test",
                    jiff::Timestamp::now(),
                    None,
                )
                .unwrap();
            engine.render(&affected, before).unwrap();
        }
        let cmd = random_command(&mut r, &engine);
        let desc = format!("{cmd:?}");
        if engine.execute(cmd, "model").is_ok() {
            accepted += 1;
        }
        let drift = engine.drift();
        assert!(
            drift.is_empty(),
            "{backend:?} seed {seed} step {step}: incremental files drifted after {desc}: \
             {drift:?}"
        );
    }
    assert!(
        accepted > steps / 4,
        "{backend:?} seed {seed}: only {accepted} commands accepted"
    );
    // Refold from the store (without the snapshot's help and with it) and compare.
    let live = engine.state().clone();
    drop(engine);
    let reopened = backend.open(dir.path());
    assert_eq!(
        reopened.state(),
        &live,
        "{backend:?} seed {seed}: the refolded state differs"
    );
}

fn seeds() -> Vec<u64> {
    match std::env::var("NMT_MODEL_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => (1..=6)
            .map(|i| 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i))
            .collect(),
    }
}

#[test]
fn incremental_files_always_equal_a_full_render() {
    for seed in seeds() {
        run(&Backend::Redb, seed, 150);
    }
}

#[test]
fn incremental_files_always_equal_a_full_render_in_memory() {
    for seed in seeds() {
        run(&Backend::Memory(MemoryStore::new()), seed, 150);
    }
}

#[test]
fn the_stores_agree() {
    // The same run over both backends leaves the same log (but for the wall clock).
    let logs: Vec<Vec<String>> = Backend::all()
        .iter()
        .map(|backend| {
            let dir = TestDir::new();
            let mut engine = backend.open(dir.path());
            let mut r = Rng(0xA5A5_5A5A);
            for _ in 0..60 {
                let cmd = random_command(&mut r, &engine);
                let _ = engine.execute(cmd, "model");
            }
            let mut log = Vec::new();
            engine
                .events(None, None, &mut |env| {
                    // The site key and the installer password are random.
                    if !matches!(
                        env.event,
                        Event::StoreCreated { .. } | Event::InstallerPasswordSet { .. }
                    ) {
                        log.push(format!("{} {} {:?}", env.seq, env.actor, env.event));
                    }
                    Ok(true)
                })
                .unwrap();
            log
        })
        .collect();
    assert!(logs[0].len() > 20, "{} events", logs[0].len());
    assert_eq!(logs[0], logs[1]);
}

#[test]
fn as_of_answers_are_the_same_with_and_without_snapshots() {
    as_of_answers(&Backend::Redb);
}

#[test]
fn as_of_answers_are_the_same_with_and_without_snapshots_in_memory() {
    as_of_answers(&Backend::Memory(MemoryStore::new()));
}

fn as_of_answers(backend: &Backend) {
    let dir = TestDir::new();
    let mut engine = backend.open(dir.path());
    let mut r = Rng(0x005E_ED0F_A50F);
    let base = jiff::Timestamp::from_second(1_790_000_000).unwrap();
    engine
        .execute(
            Command::AddGroup {
                group: "a".into(),
                policy: None,
            },
            "model",
        )
        .unwrap();
    // 4,000 events observed mostly in order, some (log replays) far in the past.
    let mut t = 0i64;
    for i in 0..4000u32 {
        t += (r.below(20)) as i64;
        let observed = if r.below(10) == 0 {
            base + jiff::SignedDuration::from_secs(t - r.below(5000) as i64)
        } else {
            base + jiff::SignedDuration::from_secs(t)
        };
        let mac = Mac::new([0x52, 0x54, 0, 0, (i % 7) as u8, r.below(40) as u8]);
        let event = match r.below(4) {
            0 => Event::MachineAssigned {
                mac,
                group: r.pick(&["a", "unknown"]).to_string(),
            },
            1 => Event::GroupPolicySet {
                group: "a".into(),
                policy: r.pick(&POLICIES[..4]).parse().unwrap(),
            },
            2 => Event::MachinePolicySet {
                mac,
                policy: Some(r.pick(&POLICIES[..4]).parse().unwrap()),
                once: r.below(2) == 0,
            },
            _ => Event::BootEntryUsed {
                mac,
                file: "pxelinux.cfg/x".into(),
                ip: None,
            },
        };
        engine.append(vec![event], "model", observed, None).unwrap();
    }
    drop(engine);
    let engine = backend.open(dir.path());
    for _ in 0..40 {
        let at = base + jiff::SignedDuration::from_secs(r.below((t + 100) as u64) as i64 - 50);
        let fast = engine.state_at(at).unwrap();
        let full = engine.state_at_by_full_fold(at).unwrap();
        assert_eq!(fast, full, "{backend:?} as of {at}");
    }
}
