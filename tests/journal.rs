//! The journals in `fixtures/` must decode, fold and import for good: the schema only grows.
//! `journal-v1.jsonl` was written by the first release; `journal-v2.jsonl` holds every event
//! kind and every kind of event source.

use std::collections::BTreeSet;
use std::path::Path;

use nmt_projections::{Envelope, Event, Policy, State};

use crate::util::Nmt;

#[test]
fn the_first_release_journal_still_decodes_and_folds() {
    let text = include_str!("../fixtures/journal-v1.jsonl");
    let mut state = State::new();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let env =
            Envelope::from_json(line.as_bytes()).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        assert_eq!(env.seq, i as u64 + 1);
        state.apply(&env);
        n += 1;
    }
    assert!(n > 20, "the fixture covers every event kind");
    let lab07 = state.machine_by_name("lab07").expect("lab07");
    assert_eq!(lab07.group, "lab");
    assert!(
        lab07.policy.is_none(),
        "its one-shot re-image was spent by the boot"
    );
    assert_eq!(
        lab07.last_boot.as_ref().map(|b| b.policy.to_string()),
        Some("restore-image:lab".to_string())
    );
    assert_eq!(state.group_policy("lab"), Policy::LocalBoot);
    let installed = state
        .machines()
        .find(|m| m.installed.is_some())
        .expect("an installed machine");
    assert_eq!(installed.group, "localboot");
    assert_eq!(installed.rootdev.as_deref(), Some("/dev/sda1"));
}

/// Every journal in `fixtures/`: the first release's, and the one that holds every event
/// kind and every kind of source (`fixtures/README.md` says how each was made).
const FIXTURES: [(&str, &str); 6] = [
    (
        "journal-v1.jsonl",
        include_str!("../fixtures/journal-v1.jsonl"),
    ),
    (
        "journal-v2.jsonl",
        include_str!("../fixtures/journal-v2.jsonl"),
    ),
    (
        "journal-v3.jsonl",
        include_str!("../fixtures/journal-v3.jsonl"),
    ),
    (
        "journal-v4.jsonl",
        include_str!("../fixtures/journal-v4.jsonl"),
    ),
    (
        "journal-v5.jsonl",
        include_str!("../fixtures/journal-v5.jsonl"),
    ),
    (
        "journal-v6.jsonl",
        include_str!("../fixtures/journal-v6.jsonl"),
    ),
];

/// Every event kind there is, by name. A new kind must be added here, and to a fixture
/// written by the release that introduces it.
const KINDS: [&str; 37] = [
    "StoreCreated",
    "MachineRegistered",
    "MachineRemoved",
    "MachineRestored",
    "MachineNamed",
    "MachineAssigned",
    "MachineAddressSet",
    "GroupCreated",
    "GroupRemoved",
    "GroupPolicySet",
    "MachinePolicySet",
    "RootDeviceSet",
    "RootDeviceRemoved",
    "InstallReported",
    "BootEntryUsed",
    "ProfileDefined",
    "ProfileRemoved",
    "DhcpSeen",
    "FileServed",
    "InstallerLogged",
    "InstallerPasswordSet",
    "ImageSaveStarted",
    "ImageSaved",
    "ImageRestoreStarted",
    "ImageRestored",
    "ImageFailed",
    "ImageRemoved",
    "ScheduleDefined",
    "ScheduleRemoved",
    "SchedulePaused",
    "ScheduleResumed",
    "ScheduleRan",
    "ScheduleMissed",
    "ScheduleChecked",
    "BmcSet",
    "BmcRemoved",
    "PowerActed",
];

/// Every variant of `Event`, as its schema knows them. `Event` is `#[non_exhaustive]`, so
/// outside its crate no `match` can be exhaustive without a wildcard arm; serde's derive lists
/// all variants instead, in the error for a `type` that is none of them.
fn all_kinds() -> Vec<String> {
    let err = serde_json::from_str::<Event>(r#"{"type":"NoSuchKind"}"#)
        .expect_err("no such kind")
        .to_string();
    let (_, list) = err
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("serde's error no longer lists the variants: {err}"));
    let list = list.split(" at line ").next().unwrap();
    let mut kinds: Vec<String> = list
        .split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .collect();
    kinds.sort();
    kinds
}

/// Decode every line of a fixture but an export's trailer; its envelopes, in order.
fn decode(name: &str, text: &str) -> Vec<Envelope> {
    text.lines()
        .filter(|l| !l.starts_with(r#"{"trailer":"#))
        .enumerate()
        .map(|(i, line)| {
            let env = Envelope::from_json(line.as_bytes())
                .unwrap_or_else(|e| panic!("{name} line {}: {e}", i + 1));
            assert_eq!(env.seq, i as u64 + 1, "{name} line {}", i + 1);
            env
        })
        .collect()
}

#[test]
fn the_list_of_kinds_is_every_kind_there_is() {
    let mut listed: Vec<String> = KINDS.iter().map(|k| k.to_string()).collect();
    listed.sort();
    assert_eq!(
        listed,
        all_kinds(),
        "KINDS must name every Event variant (add the new kind, and a fixture holding it)"
    );
    let mut known: Vec<String> = Event::KINDS.iter().map(|k| k.to_string()).collect();
    known.sort();
    assert_eq!(
        known,
        all_kinds(),
        "Event::KINDS (what `nmt history --kind` accepts) must name every Event variant"
    );
}

#[test]
fn every_event_kind_is_in_a_fixture_journal() {
    let mut seen = BTreeSet::new();
    for (name, text) in FIXTURES {
        for env in decode(name, text) {
            assert!(
                KINDS.contains(&env.event.kind()),
                "{name}: {} is not in KINDS",
                env.event.kind()
            );
            seen.insert(env.event.kind());
        }
    }
    for kind in KINDS {
        assert!(
            seen.contains(kind),
            "no fixture journal holds a {kind} event: write one with the current release \
             (see fixtures/README.md) and add it to FIXTURES"
        );
    }
}

/// The BMC password `journal-v2.sh` gives `nmt bmc set` (from a file) is kept in nmtd's
/// secrets file: the log records only that one was set.
#[test]
fn no_fixture_journal_holds_a_bmc_password() {
    let (name, text) = FIXTURES[5];
    assert!(
        text.contains(r#""secret":"set""#),
        "{name} sets a BMC password"
    );
    for (name, text) in FIXTURES {
        assert!(
            !text.contains("not-in-the-log"),
            "{name} holds the BMC password"
        );
    }
}

#[test]
fn the_fixture_journals_hold_every_kind_of_source() {
    use nmt_projections::Source;
    let mut sources: Vec<Source> = Vec::new();
    for (name, text) in FIXTURES {
        sources.extend(decode(name, text).into_iter().filter_map(|e| e.source));
    }
    let has = |what: &str, f: &dyn Fn(&Source) -> bool| {
        assert!(
            sources.iter().any(f),
            "no fixture event has a {what} source (typed as such)"
        );
    };
    has("cli", &|s| *s == Source::Cli);
    has(
        "log file with an offset",
        &|s| matches!(s, Source::LogFile { identity, .. } if *identity != 0),
    );
    // The first release named files by device and inode: kept as written.
    has(
        "file:DEV:INODE (the first release's)",
        &|s| matches!(s, Source::Other { stream, offset: Some(_) } if stream.starts_with("file:") && stream[5..].contains(':')),
    );
    has(
        "journal",
        &|s| matches!(s, Source::Journal { unit } if unit.ends_with(".service")),
    );
    has("syslog", &|s| matches!(s, Source::Syslog { .. }));
    has("schedule", &|s| matches!(s, Source::Schedule { .. }));
}

#[test]
fn every_fixture_journal_folds() {
    for (name, text) in FIXTURES {
        let folded = nmt_replay::fold_journal(text.as_bytes())
            .unwrap_or_else(|e| panic!("{name} does not fold: {e}"));
        let mut state = State::new();
        for env in decode(name, text) {
            state.apply(&env);
        }
        assert_eq!(
            folded, state,
            "{name}: fold_journal and apply one by one agree"
        );
    }
    // What the second fixture's story left: a one-shot spent by a boot, an installer's report.
    let v2 = nmt_replay::fold_journal(FIXTURES[1].1.as_bytes()).unwrap();
    let lab07 = v2.machine_by_name("lab07").expect("lab07");
    assert!(lab07.policy.is_none(), "the one-shot was spent by the boot");
    assert_eq!(
        lab07.last_boot.as_ref().map(|b| b.policy.to_string()),
        Some("restore-image:lab".to_string())
    );
    let inst06 = v2.machine_by_name("inst06").expect("inst06");
    assert_eq!(inst06.group, "localboot");
    assert_eq!(inst06.rootdev.as_deref(), Some("/dev/vda1"));
    // The third's: a machine removed, restored as it was, removed again; the removals keep
    // what it was.
    let v3 = decode(FIXTURES[2].0, FIXTURES[2].1);
    let restored = v3
        .iter()
        .find_map(|e| match &e.event {
            Event::MachineRestored { removed, was, .. } => Some((*removed, was.clone())),
            _ => None,
        })
        .expect("a restore");
    assert_eq!(restored.1.name.as_deref(), Some("gone"));
    assert!(matches!(
        &v3[restored.0 as usize - 1].event,
        Event::MachineRemoved { was: Some(w), .. } if *w == restored.1
    ));
}

#[test]
fn every_fixture_journal_imports_and_exports_byte_for_byte() {
    for (name, text) in FIXTURES {
        let t = Nmt::bare();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name);
        // journal-v1 and -v2 were written before exports had a trailer line: without one, an
        // import cannot tell a whole journal from one cut at a line boundary, so such a
        // journal is imported with --partial (the documented rule for them). A fixture
        // written since ends with its trailer and imports as it is.
        let (events, written_trailer) = match text.rsplit_once(r#"{"trailer":"#) {
            Some((events, _)) => (events, true),
            None => (text, false),
        };
        if !written_trailer {
            let err = t.fails(&["journal", "import", path.to_str().unwrap()]);
            assert!(err.contains("--partial"), "{name}: {err}");
        }
        let partial: &[&str] = if written_trailer { &[] } else { &["--partial"] };
        let mut args = vec!["journal", "import"];
        args.extend(partial);
        args.push(path.to_str().unwrap());
        let out = t.ok(&args);
        assert!(out.starts_with("imported"), "{name}: {out}");
        let with_trailer = t.ok(&["journal", "export"]);
        let (export, trailer) = with_trailer
            .rsplit_once(r#"{"trailer":"#)
            .unwrap_or_else(|| panic!("{name}: the export ends with a trailer"));
        let trailer: serde_json::Value =
            serde_json::from_str(&format!(r#"{{"trailer":{trailer}"#)).unwrap();
        assert_eq!(
            trailer["trailer"]["events"],
            events.lines().count(),
            "{name}: {trailer}"
        );
        assert!(
            decode(name, export) == decode(name, events),
            "{name}: the export of its import holds other events"
        );
        // An export (with its trailer) imports without --partial, and exports again byte
        // for byte.
        let again = Nmt::bare();
        let whole = t.dir.path().join("export.jsonl");
        std::fs::write(&whole, &with_trailer).unwrap();
        again.ok(&["journal", "import", whole.to_str().unwrap()]);
        assert!(
            again.ok(&["journal", "export"]) == with_trailer,
            "{name}: export, import, export differs byte for byte"
        );
        // The store keeps events in the current shape: the first release's lines come back
        // with the fields added since (e.g. a profile's `network_console: false`), so only
        // journals written in the current shape come back byte for byte.
        // Profiles gained `preseed` (null when a profile has no preseed settings) after
        // every fixture was written: the rest of each line is byte for byte (the trailer's
        // digest covers the lines, so it differs with them).
        if name != "journal-v1.jsonl" {
            assert!(
                export.replace(r#","preseed":null"#, "") == events,
                "{name}: the export of its import differs byte for byte"
            );
        }
        assert!(t.ok(&["verify"]).starts_with("verified:"), "{name}");
    }
}

/// An export longer than one commit of `journal import`: refused at its end (its trailer's
/// digest), it leaves nothing behind, however many events were already written; whole, it
/// imports every event.
/// An export of `t`'s log followed by 60,000 acknowledgements (more than one commit of an
/// import), without its trailer: the body, how many events came before, and how many after.
fn long_export(t: &Nmt) -> (String, u64, u64) {
    t.ok(&["group", "add", "lab"]);
    let export = t.ok(&["journal", "export"]);
    let mut body: String = export
        .lines()
        .filter(|l| !l.starts_with(r#"{"trailer":"#))
        .map(|l| format!("{l}\n"))
        .collect();
    let head = body.lines().count() as u64;
    let n = 60_000u64;
    for k in 0..n {
        let i = k % 5000;
        body.push_str(&format!(
            r#"{{"seq":{},"v":1,"recorded_at":"2026-11-21T00:00:00Z","observed_at":"2026-11-21T00:00:00Z","actor":"dnsmasq@boot1","source":{{"stream":"file:00000000000000aa","offset":{}}},"event":{{"type":"DhcpSeen","mac":"52:54:00:01:{:02x}:{:02x}","kind":"ack","ip":"10.1.{}.{}","server":"dnsmasq","via":"br0"}}}}"#,
            head + 1 + k,
            k * 90,
            i >> 8,
            i & 255,
            i >> 8,
            i & 255
        ));
        body.push('\n');
    }
    (body, head, n)
}

/// The import's full batches are written by a thread of their own while the next is folded:
/// when that write fails (here, a full disk), the import stops, says so, and leaves nothing.
#[test]
fn an_import_that_fills_the_disk_stops_and_leaves_nothing() {
    let t = Nmt::new();
    let (body, _, _) = long_export(&t);
    let trailer = nmt_replay::Trailer::of(body.as_bytes(), nmt_replay::ExportFilter::default());
    let file = t.dir.path().join("export.jsonl");
    std::fs::write(&file, format!("{body}{}", trailer.to_line())).unwrap();
    let fresh = Nmt::bare();
    let disk = crate::util::Tmpfs::mount(fresh.state(), "1m");
    let err = fresh.fails(&["journal", "import", file.to_str().unwrap()]);
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(err.contains("No space left"), "says why: {err}");
    assert!(err.contains("df -h"), "says what to do: {err}");
    let left: Vec<_> = std::fs::read_dir(&disk.path).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_long_export_refused_at_its_trailer_leaves_nothing_and_imports_whole() {
    let t = Nmt::new();
    let (body, head, n) = long_export(&t);
    let trailer = nmt_replay::Trailer::of(body.as_bytes(), nmt_replay::ExportFilter::default());
    let mut wrong = trailer.clone();
    wrong.sha256 = "0".repeat(64);

    let fresh = Nmt::bare();
    let bad = t.dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{body}{}", wrong.to_line())).unwrap();
    let err = fresh.fails(&["journal", "import", bad.to_str().unwrap()]);
    assert!(err.contains("digest"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        !fresh.state().exists(),
        "a refused import leaves no state directory"
    );

    // Into a state directory that exists, with an empty store: it stays as it was.
    std::fs::create_dir_all(fresh.state()).unwrap();
    let err = fresh.fails(&["journal", "import", bad.to_str().unwrap()]);
    assert!(err.contains("nothing was imported"), "{err}");
    let left: Vec<_> = std::fs::read_dir(fresh.state()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    let good = t.dir.path().join("good.jsonl");
    std::fs::write(&good, format!("{body}{}", trailer.to_line())).unwrap();
    let out = fresh.ok(&["journal", "import", good.to_str().unwrap()]);
    assert!(
        out.starts_with(&format!("imported {} events", head + n)),
        "{out}"
    );
    assert!(!fresh.path("nmt.redb.importing").exists());
    // Snapshots a spacing apart, not a batch: `show --at` folds no more events than that.
    {
        use nmt::EventStore;
        let store = nmt::RedbStore::open(
            &fresh.state().join(nmt::DB_FILE),
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        let mut kept = vec![0];
        let mut seq = head + n;
        while let Some((s, _)) = store.snapshot_at_or_before(seq).unwrap() {
            kept.push(s);
            seq = s - 1;
        }
        kept.sort();
        let chunk = nmt_replay::CHUNK_LINES as u64;
        assert!(
            kept.windows(2)
                .all(|w| w[1] - w[0] <= nmt::SNAPSHOT_SPACING + chunk),
            "{kept:?}"
        );
        assert_eq!(kept.last(), Some(&(head + n)), "{kept:?}");
    }
    let again = fresh.ok(&["journal", "export"]);
    assert_eq!(again, format!("{body}{}", trailer.to_line()));
    // A second import is refused: the store holds events now.
    let err = fresh.fails(&["journal", "import", good.to_str().unwrap()]);
    assert!(err.contains("already holds"), "{err}");
}
