//! One conformance suite, run against every [`EventStore`] backend: the contract the engine
//! relies on, whatever holds the log.
//!
//! Each check gets an `open` function that opens the same store every time it is called
//! (the caller drops the previous handle first), so it can also check what a reopen sees.

use std::time::Duration;

use jiff::Timestamp;
use nmt_projections::{Envelope, Event, Mac, SCHEMA_VERSION, Source};

use super::{
    Append, EventStore, MemoryStore, RedbStore, SNAPSHOTS_MAX, SNAPSHOTS_RECENT, Snapshot,
    StoreError,
};

type Open<'a> = &'a mut dyn FnMut() -> Box<dyn EventStore>;

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + secs).unwrap()
}

pub(super) fn mac(n: u8) -> Mac {
    Mac::new([0x52, 0x54, 0, 0, 0, n])
}

fn env(seq: u64, observed: i64) -> Envelope {
    Envelope {
        seq,
        v: SCHEMA_VERSION,
        recorded_at: ts(10_000),
        observed_at: ts(observed),
        actor: format!("actor{seq}"),
        source: Some(Source::LogFile {
            identity: 0xfeed,
            offset: seq * 10,
        }),
        event: Event::MachineNamed {
            mac: mac(seq as u8),
            name: Some(format!("n{seq}")),
        },
    }
}

/// Append events `from..=to` (observed at their seq), each under machine `seq % 3`, late when
/// `late` says so, in one batch.
pub(super) fn append_range(
    store: &mut dyn EventStore,
    from: u64,
    to: u64,
    late: &dyn Fn(u64) -> bool,
    checkpoints: &[(&str, &[u8])],
    snapshots: &[Snapshot<'_>],
) -> Result<(), StoreError> {
    let envs: Vec<Envelope> = (from..=to).map(|s| env(s, s as i64)).collect();
    let macs: Vec<Vec<Mac>> = (from..=to).map(|s| vec![mac((s % 3) as u8)]).collect();
    let batch: Vec<Append<'_>> = envs
        .iter()
        .zip(&macs)
        .map(|(e, m)| Append {
            envelope: e,
            machines: m,
            late: late(e.seq),
            json: None,
        })
        .collect();
    store.append(&batch, checkpoints, snapshots)
}

pub(super) fn scan_all(store: &dyn EventStore) -> Vec<Envelope> {
    let mut out = Vec::new();
    let last = store.last_seq().unwrap();
    store
        .scan(1..=last.max(1), &mut |e| {
            out.push(e);
            true
        })
        .unwrap();
    out
}

pub(super) fn never(_: u64) -> bool {
    false
}

fn empty_store_is_empty(open: Open<'_>) {
    let store = open();
    assert_eq!(store.last_seq().unwrap(), 0);
    assert!(scan_all(store.as_ref()).is_empty());
    assert_eq!(store.get(1).unwrap(), None);
    assert!(store.seqs_for_machine(&mac(1)).unwrap().is_empty());
    assert!(store.snapshot_at_or_before(u64::MAX).unwrap().is_none());
    assert!(store.snapshot_for_time(ts(0)).unwrap().is_none());
    assert!(store.late_after(0, ts(1_000_000)).unwrap().is_empty());
    assert_eq!(store.checkpoint("x").unwrap(), None);
}

fn appended_events_read_back_and_survive_a_reopen(open: Open<'_>) {
    let mut store = open();
    append_range(store.as_mut(), 1, 3, &never, &[], &[]).unwrap();
    append_range(store.as_mut(), 4, 5, &never, &[], &[]).unwrap();
    // An empty append changes nothing.
    store.append(&[], &[], &[]).unwrap();
    let check = |store: &dyn EventStore| {
        assert_eq!(store.last_seq().unwrap(), 5);
        let all = scan_all(store);
        assert_eq!(all, (1..=5).map(|s| env(s, s as i64)).collect::<Vec<_>>());
        let mut mid = Vec::new();
        store
            .scan(2..=4, &mut |e| {
                mid.push(e.seq);
                true
            })
            .unwrap();
        assert_eq!(mid, [2, 3, 4]);
        // The visitor stops the scan.
        let mut first = Vec::new();
        store
            .scan(1..=5, &mut |e| {
                first.push(e.seq);
                e.seq < 2
            })
            .unwrap();
        assert_eq!(first, [1, 2]);
        // A range past the end, or backwards, visits nothing.
        let mut none = 0;
        #[allow(clippy::reversed_empty_ranges)]
        let ranges = [6..=9, 4..=2];
        for range in ranges {
            store
                .scan(range, &mut |_| {
                    none += 1;
                    true
                })
                .unwrap();
        }
        assert_eq!(none, 0);
        assert_eq!(store.get(3).unwrap(), Some(env(3, 3)));
        assert_eq!(store.get(6).unwrap(), None);
        assert_eq!(store.get(0).unwrap(), None);
    };
    check(store.as_ref());
    drop(store);
    check(open().as_ref());
}

fn a_gap_or_a_repeat_is_refused_and_writes_nothing(open: Open<'_>) {
    let mut store = open();
    append_range(store.as_mut(), 1, 2, &never, &[("src", b"one")], &[]).unwrap();
    // A gap.
    match append_range(store.as_mut(), 4, 4, &never, &[], &[]) {
        Err(StoreError::SequenceConflict {
            expected: 3,
            got: 4,
        }) => {}
        other => panic!("a gap was not refused: {other:?}"),
    }
    // A repeat.
    match append_range(store.as_mut(), 2, 3, &never, &[], &[]) {
        Err(StoreError::SequenceConflict {
            expected: 3,
            got: 2,
        }) => {}
        other => panic!("a repeat was not refused: {other:?}"),
    }
    // A batch that starts right but skips in the middle: none of it is written, nor its
    // checkpoints, late index entries or snapshot.
    let envs = [env(3, 3), env(5, 5)];
    let macs = [mac(7)];
    let batch: Vec<Append<'_>> = envs
        .iter()
        .map(|e| Append {
            envelope: e,
            machines: &macs,
            late: true,
            json: None,
        })
        .collect();
    let err = store
        .append(
            &batch,
            &[("src", b"two")],
            &[Snapshot {
                seq: 5,
                bytes: b"state",
                max_observed: Some(ts(5)),
            }],
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SequenceConflict {
                expected: 4,
                got: 5
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("gap-free"), "{err}");
    let check = |store: &dyn EventStore| {
        assert_eq!(store.last_seq().unwrap(), 2);
        assert_eq!(store.get(3).unwrap(), None);
        assert_eq!(
            store.checkpoint("src").unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert!(store.seqs_for_machine(&mac(7)).unwrap().is_empty());
        assert!(store.late_after(0, ts(100)).unwrap().is_empty());
        assert!(store.snapshot_at_or_before(10).unwrap().is_none());
    };
    check(store.as_ref());
    drop(store);
    let mut store = open();
    check(store.as_ref());
    // The log goes on where it was.
    append_range(store.as_mut(), 3, 3, &never, &[], &[]).unwrap();
    assert_eq!(store.last_seq().unwrap(), 3);
}

fn checkpoints_commit_with_their_events(open: Open<'_>) {
    let mut store = open();
    append_range(
        store.as_mut(),
        1,
        2,
        &never,
        &[("file:a", &7u64.to_le_bytes()), ("file:b", b"b1")],
        &[],
    )
    .unwrap();
    // Checkpoints alone (no events) are a valid append, and replace the earlier value.
    store.append(&[], &[("file:b", b"b2")], &[]).unwrap();
    drop(store);
    let store = open();
    assert_eq!(
        store.checkpoint("file:a").unwrap(),
        Some(7u64.to_le_bytes().to_vec())
    );
    assert_eq!(store.checkpoint("file:b").unwrap(), Some(b"b2".to_vec()));
    assert_eq!(store.checkpoint("file:c").unwrap(), None);
    assert_eq!(store.last_seq().unwrap(), 2);
}

fn the_machine_index_lists_a_machines_events_in_order(open: Open<'_>) {
    let mut store = open();
    append_range(store.as_mut(), 1, 7, &never, &[], &[]).unwrap();
    // One event under two machines, and a machine named twice for one event.
    let e = env(8, 8);
    let macs = [mac(1), mac(2), mac(2)];
    store
        .append(
            &[Append {
                envelope: &e,
                machines: &macs,
                late: false,
                json: None,
            }],
            &[],
            &[],
        )
        .unwrap();
    // An event under no machine.
    let e = env(9, 9);
    store
        .append(
            &[Append {
                envelope: &e,
                machines: &[],
                late: false,
                json: None,
            }],
            &[],
            &[],
        )
        .unwrap();
    drop(store);
    let store = open();
    assert_eq!(store.seqs_for_machine(&mac(0)).unwrap(), [3, 6]);
    assert_eq!(store.seqs_for_machine(&mac(1)).unwrap(), [1, 4, 7, 8]);
    assert_eq!(store.seqs_for_machine(&mac(2)).unwrap(), [2, 5, 8]);
    assert!(store.seqs_for_machine(&mac(9)).unwrap().is_empty());
}

/// Appends of every size (one large, many of one, odd-sized ones) over many blocks: every
/// event reads back in order, alone, in any range, and by machine.
fn appends_of_every_size_read_back_across_blocks(open: Open<'_>) {
    let mut store = open();
    append_range(store.as_mut(), 1, 150, &never, &[], &[]).unwrap();
    for seq in 151..=200 {
        append_range(store.as_mut(), seq, seq, &never, &[], &[]).unwrap();
    }
    let mut from = 201;
    while from <= 400 {
        let to = (from + 36).min(400);
        append_range(store.as_mut(), from, to, &never, &[], &[]).unwrap();
        from = to + 1;
    }
    drop(store);
    let store = open();
    assert_eq!(store.last_seq().unwrap(), 400);
    assert_eq!(
        scan_all(store.as_ref()),
        (1..=400).map(|s| env(s, s as i64)).collect::<Vec<_>>()
    );
    for (a, b) in [
        (31, 34),
        (63, 66),
        (127, 129),
        (150, 152),
        (199, 260),
        (400, 400),
    ] {
        let mut seen = Vec::new();
        store
            .scan(a..=b, &mut |e| {
                seen.push(e.seq);
                true
            })
            .unwrap();
        assert_eq!(seen, (a..=b).collect::<Vec<_>>(), "scan {a}..={b}");
    }
    for seq in [1, 32, 33, 64, 65, 150, 151, 173, 200, 201, 399, 400] {
        assert_eq!(
            store.get(seq).unwrap(),
            Some(env(seq, seq as i64)),
            "get {seq}"
        );
    }
    assert_eq!(store.get(401).unwrap(), None);
    let wanted = [2, 3, 32, 33, 64, 65, 190, 300, 400, 401, 500];
    let mut got = Vec::new();
    store
        .get_each(&wanted, &mut |e| {
            got.push(e.seq);
            true
        })
        .unwrap();
    assert_eq!(got, [2, 3, 32, 33, 64, 65, 190, 300, 400]);
    let mut first = Vec::new();
    store
        .get_each(&wanted, &mut |e| {
            first.push(e.seq);
            first.len() < 3
        })
        .unwrap();
    assert_eq!(first, [2, 3, 32]);
    for m in 0..3u8 {
        let want: Vec<u64> = (1..=400).filter(|s| s % 3 == u64::from(m)).collect();
        assert_eq!(
            store.seqs_for_machine(&mac(m)).unwrap(),
            want,
            "machine {m}"
        );
    }
}

fn the_late_index_holds_late_events_by_observation_time(open: Open<'_>) {
    let mut store = open();
    // Events 4 and 7 are late; they are observed at their seq like the others.
    append_range(store.as_mut(), 1, 5, &|s| s == 4, &[], &[]).unwrap();
    append_range(store.as_mut(), 6, 8, &|s| s == 7, &[], &[]).unwrap();
    drop(store);
    let store = open();
    assert_eq!(store.late_after(0, ts(100)).unwrap(), [4, 7]);
    assert_eq!(store.late_after(4, ts(100)).unwrap(), [7]);
    assert_eq!(store.late_after(3, ts(4)).unwrap(), [4]);
    assert!(store.late_after(0, ts(3)).unwrap().is_empty());
    assert!(store.late_after(7, ts(100)).unwrap().is_empty());
}

fn snapshots_are_found_by_seq_and_by_time(open: Open<'_>) {
    let mut store = open();
    append_range(store.as_mut(), 1, 3, &never, &[], &[]).unwrap();
    // A snapshot without an observation time qualifies for any time.
    store
        .append(
            &[],
            &[],
            &[Snapshot {
                seq: 3,
                bytes: b"s3",
                max_observed: None,
            }],
        )
        .unwrap();
    // A snapshot commits with its batch.
    append_range(
        store.as_mut(),
        4,
        6,
        &never,
        &[],
        &[Snapshot {
            seq: 6,
            bytes: b"s6",
            max_observed: Some(ts(6)),
        }],
    )
    .unwrap();
    append_range(
        store.as_mut(),
        7,
        9,
        &never,
        &[],
        &[Snapshot {
            seq: 9,
            bytes: b"s9",
            max_observed: Some(ts(9)),
        }],
    )
    .unwrap();
    drop(store);
    let store = open();
    let at = |seq| store.snapshot_at_or_before(seq).unwrap();
    assert_eq!(at(2), None);
    assert_eq!(at(3), Some((3, b"s3".to_vec())));
    assert_eq!(at(8), Some((6, b"s6".to_vec())));
    assert_eq!(at(u64::MAX), Some((9, b"s9".to_vec())));
    let time = |secs| store.snapshot_for_time(ts(secs)).unwrap().map(|(s, _)| s);
    assert_eq!(time(-100), Some(3));
    assert_eq!(time(5), Some(3));
    assert_eq!(time(6), Some(6));
    assert_eq!(time(8), Some(6));
    assert_eq!(time(1000), Some(9));
}

fn old_snapshots_are_thinned(open: Open<'_>) {
    let mut store = open();
    let n = SNAPSHOTS_MAX as u64 + 40;
    for seq in 1..=n {
        let bytes = format!("s{seq}");
        append_range(
            store.as_mut(),
            seq,
            seq,
            &never,
            &[],
            &[Snapshot {
                seq,
                bytes: bytes.as_bytes(),
                max_observed: Some(ts(seq as i64)),
            }],
        )
        .unwrap();
    }
    drop(store);
    let store = open();
    let mut kept = Vec::new();
    let mut seq = n;
    while let Some((s, bytes)) = store.snapshot_at_or_before(seq).unwrap() {
        assert_eq!(bytes, format!("s{s}").into_bytes());
        assert_eq!(store.snapshot_for_time(ts(s as i64)).unwrap().unwrap().0, s);
        kept.push(s);
        if s == 1 {
            break;
        }
        seq = s - 1;
    }
    kept.reverse();
    assert!(kept.len() <= SNAPSHOTS_MAX + 1, "{} kept", kept.len());
    // The newest ones all, the first one always, and no gap wider than a few thinnings.
    assert!(kept.ends_with(&(n - SNAPSHOTS_RECENT as u64 + 1..=n).collect::<Vec<_>>()));
    assert_eq!(kept[0], 1);
    assert!(kept.windows(2).all(|w| w[1] - w[0] <= 4), "{kept:?}");
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod redb {
            use super::*;
            $(
                #[test]
                fn $check() {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("t.redb");
                    super::$check(&mut || {
                        Box::new(RedbStore::open(&path, Duration::from_secs(5)).unwrap())
                    });
                }
            )*
        }
        mod memory {
            use super::*;
            $(
                #[test]
                fn $check() {
                    let store = MemoryStore::new();
                    super::$check(&mut || Box::new(store.clone()));
                }
            )*
        }
    };
}

conformance!(
    empty_store_is_empty,
    appended_events_read_back_and_survive_a_reopen,
    a_gap_or_a_repeat_is_refused_and_writes_nothing,
    checkpoints_commit_with_their_events,
    the_machine_index_lists_a_machines_events_in_order,
    appends_of_every_size_read_back_across_blocks,
    the_late_index_holds_late_events_by_observation_time,
    snapshots_are_found_by_seq_and_by_time,
    old_snapshots_are_thinned,
);

#[test]
fn a_held_redb_store_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let _held = RedbStore::open(&path, Duration::ZERO).unwrap();
    let err = match RedbStore::open(&path, Duration::from_millis(30)) {
        Err(e) => e,
        Ok(_) => panic!("a held store opened twice"),
    };
    assert!(matches!(err, StoreError::Busy { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("in use by another nmt process"), "{msg}");
    assert!(msg.contains("nmtd"), "{msg}");
    assert!(msg.contains("--wait"), "{msg}");
}

#[test]
fn an_event_that_does_not_decode_is_corrupt_with_its_seq() {
    fn check(store: &dyn EventStore) {
        let err = store.get(2).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { seq: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("event 2"), "{err}");
        let mut seen = Vec::new();
        let err = store
            .scan(1..=3, &mut |e| {
                seen.push(e.seq);
                true
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { seq: 2, .. }), "{err:?}");
        assert_eq!(seen, [1]);
    }

    // redb: damage the second event of the block behind the store's back.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let mut store = RedbStore::open(&path, Duration::ZERO).unwrap();
    append_range(&mut store, 1, 3, &never, &[], &[]).unwrap();
    drop(store);
    {
        use ::redb::{Database, ReadableTable, TableDefinition};
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx
                .open_table(TableDefinition::<u64, &[u8]>::new("event_blocks"))
                .unwrap();
            let block = super::codec::Block::decode(1, t.get(1).unwrap().unwrap().value()).unwrap();
            let lines = [block.json(1), b"{not json", block.json(3)];
            let damaged = super::codec::encode_block(lines.into_iter()).unwrap();
            t.insert(1, damaged.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    check(&RedbStore::open(&path, Duration::ZERO).unwrap());

    // Memory: the same through its internals.
    let mut store = MemoryStore::new();
    append_range(&mut store, 1, 3, &never, &[], &[]).unwrap();
    store.corrupt_for_test(2, b"{not json");
    check(&store);
}
