//! Scenario tests of the tailer on real files in a temporary directory: one per rule in
//! `tailer.rs`, regressions named after the linemux failure they pin down. The random
//! sequences are in `model.rs`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Batch, Checkpoint, FileId, TailEvent, Tailer};

const ALL: usize = usize::MAX;

struct Dir {
    _tmp: tempfile::TempDir,
    log: PathBuf,
}

impl Dir {
    fn new() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("dhcpd.log");
        Dir { _tmp: tmp, log }
    }

    fn at(&self, name: &str) -> PathBuf {
        self.log.with_file_name(name)
    }

    /// A writer's descriptor on the log, as a daemon holds it (appending).
    fn writer(&self) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap()
    }

    fn id(&self, path: &Path) -> FileId {
        FileId::of(&fs::metadata(path).unwrap())
    }

    /// `copytruncate`: copy the log to `log.1`, then truncate it in place.
    fn copytruncate(&self) {
        fs::copy(&self.log, self.at("dhcpd.log.1")).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&self.log)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
}

fn write(file: &mut File, bytes: &str) {
    file.write_all(bytes.as_bytes()).unwrap();
}

fn texts(batch: &Batch) -> Vec<String> {
    batch
        .lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
        .collect()
}

fn offset(batch: &Batch) -> u64 {
    batch.checkpoint.as_ref().expect("a checkpoint").offset
}

#[test]
fn hands_out_complete_lines_only_and_the_partial_one_when_its_newline_arrives() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "one\ntwo\nthr");
    let mut t = Tailer::new(&d.log, None);
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["one", "two"]);
    assert_eq!(b.lines[1].offset, 4);
    assert_eq!(offset(&b), 8);
    assert_eq!(
        b.events,
        [TailEvent::Opened {
            file: d.id(&d.log),
            path: d.log.clone(),
            offset: 0
        }]
    );
    let b = t.poll(ALL).unwrap();
    assert!(b.lines.is_empty() && b.checkpoint.is_none() && b.events.is_empty());
    write(&mut w, "ee\n");
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["three"]);
    assert_eq!((b.lines[0].offset, offset(&b)), (8, 14));
}

#[test]
fn regression_linemux_tears_a_line_written_in_two_writes() {
    let d = Dir::new();
    let mut w = d.writer();
    let mut t = Tailer::new(&d.log, None);
    write(&mut w, "DHCPACK on 10.0.0.7 to 52:54:");
    assert!(t.poll(ALL).unwrap().lines.is_empty());
    write(&mut w, "00:12:34:56 via eth0\n");
    assert_eq!(
        texts(&t.poll(ALL).unwrap()),
        ["DHCPACK on 10.0.0.7 to 52:54:00:12:34:56 via eth0"]
    );
}

#[test]
fn regression_linemux_stops_on_invalid_utf8() {
    let d = Dir::new();
    fs::write(&d.log, b"host \xff\xfe name\nnext\n").unwrap();
    let b = Tailer::new(&d.log, None).poll(ALL).unwrap();
    assert_eq!(b.lines.len(), 2);
    assert_eq!(b.lines[0].bytes, b"host \xff\xfe name");
    assert_eq!(b.lines[1].bytes, b"next");
}

#[test]
fn a_line_longer_than_the_cap_is_cut_once_complete_and_memory_stays_bounded() {
    let d = Dir::new();
    let mut w = d.writer();
    let mut t = Tailer::new(&d.log, None).max_line(10);
    let long = "x".repeat(5000);
    write(&mut w, &long);
    assert!(t.poll(1000).unwrap().lines.is_empty());
    assert!(t.held() <= 10);
    assert!(t.poll(ALL).unwrap().lines.is_empty());
    write(&mut w, "\nshort\n0123456789\n");
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["xxxxxxxxxx", "short", "0123456789"]);
    assert_eq!(
        b.lines.iter().map(|l| l.truncated).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert_eq!(b.lines[1].offset, 5001);
    assert_eq!(offset(&b), 5018);
}

#[test]
fn max_bytes_bounds_each_poll_and_the_next_one_goes_on() {
    let d = Dir::new();
    let text: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
    fs::write(&d.log, &text).unwrap();
    let mut t = Tailer::new(&d.log, None);
    let mut got = Vec::new();
    for _ in 0..200 {
        let b = t.poll(25).unwrap();
        assert!(b.lines.len() <= 3);
        got.extend(texts(&b));
    }
    let want: Vec<_> = (0..100).map(|i| format!("line {i:03}")).collect();
    assert_eq!(got, want);
    // A line longer than the budget still comes through, over several polls.
    fs::write(&d.log, format!("{text}{}\n", "y".repeat(100))).unwrap();
    let lines: Vec<_> = (0..30).flat_map(|_| texts(&t.poll(7).unwrap())).collect();
    assert_eq!(lines, ["y".repeat(100)]);
}

#[test]
fn offsets_point_at_the_lines_in_the_file() {
    let d = Dir::new();
    fs::write(&d.log, "a\n\nbcd\n\u{e9}t\u{e9}\n").unwrap();
    let b = Tailer::new(&d.log, None).poll(ALL).unwrap();
    let bytes = fs::read(&d.log).unwrap();
    for line in &b.lines {
        let at = line.offset as usize;
        assert_eq!(&bytes[at..at + line.bytes.len()], &line.bytes[..]);
        assert_eq!(bytes[at + line.bytes.len()], b'\n');
    }
    assert_eq!(texts(&b), ["a", "", "bcd", "\u{e9}t\u{e9}"]);
}

#[test]
fn a_restart_from_a_checkpoint_goes_on_with_the_next_line() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "a\nb\n");
    let mut t = Tailer::new(&d.log, None);
    let committed = t.poll(ALL).unwrap().checkpoint;
    write(&mut w, "c\nd\n");
    // This batch is read but never committed: the crash comes first.
    assert_eq!(texts(&t.poll(ALL).unwrap()), ["c", "d"]);
    drop(t);
    let mut t = Tailer::new(&d.log, committed.clone());
    assert_eq!(t.checkpoint(), committed.as_ref());
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["c", "d"]);
    assert_eq!(
        b.events,
        [TailEvent::Opened {
            file: d.id(&d.log),
            path: d.log.clone(),
            offset: 4
        }]
    );
    assert_eq!(t.checkpoint(), b.checkpoint.as_ref());
}

#[test]
fn rename_rotation_drains_the_old_file_before_the_new_one() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "a\nb\n");
    let mut t = Tailer::new(&d.log, None);
    assert_eq!(texts(&t.poll(ALL).unwrap()), ["a", "b"]);
    let old = d.id(&d.log);
    // logrotate renames and creates; the server writes to the renamed file until its HUP.
    fs::rename(&d.log, d.at("dhcpd.log.1")).unwrap();
    File::create(&d.log).unwrap();
    write(&mut w, "c\nd-unterminated");
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["c"]);
    assert_eq!(b.checkpoint.as_ref().unwrap().file(), old);
    // The server reopens: the old file is finished, its last line too.
    let mut w = d.writer();
    write(&mut w, "e\n");
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["d-unterminated", "e"]);
    assert_eq!(b.lines[0].file, old);
    let new = d.id(&d.log);
    assert_eq!(
        b.events,
        [TailEvent::Rotated {
            from: old,
            to: new,
            path: d.log.clone()
        }]
    );
    let cp = b.checkpoint.unwrap();
    assert_eq!((cp.file(), cp.offset), (new, 2));
}

#[test]
fn a_renamed_file_is_read_on_while_the_path_is_missing() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "a\n");
    let mut t = Tailer::new(&d.log, None);
    t.poll(ALL).unwrap();
    fs::rename(&d.log, d.at("dhcpd.log.1")).unwrap();
    write(&mut w, "b\n");
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["b"]);
    assert_eq!(b.events, [TailEvent::Missing]);
    write(&mut w, "c\n");
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["c"]);
    assert!(b.events.is_empty(), "missing is reported once");
}

#[test]
fn copytruncate_is_noticed_by_size() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "first line\nsecond line\n");
    let mut t = Tailer::new(&d.log, None);
    assert_eq!(t.poll(ALL).unwrap().lines.len(), 2);
    d.copytruncate();
    write(&mut w, "third\n");
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["third"]);
    let id = d.id(&d.log);
    assert_eq!(
        b.events[0],
        TailEvent::Truncated {
            file: id,
            offset: 23,
            copy: Some(d.at("dhcpd.log.1"))
        }
    );
    assert_eq!(b.lines[0].file, id);
    assert_eq!(offset(&b), 6);
}

#[test]
fn regression_linemux_misses_a_copytruncate_followed_at_once_by_a_large_write() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "old 1\nold 2\n");
    let mut t = Tailer::new(&d.log, None);
    assert_eq!(texts(&t.poll(ALL).unwrap()), ["old 1", "old 2"]);
    write(&mut w, "old 3, not read before the rotation\n");
    d.copytruncate();
    let new: Vec<_> = (0..50).map(|i| format!("new {i}")).collect();
    write(
        &mut w,
        &new.iter().map(|l| format!("{l}\n")).collect::<String>(),
    );
    assert!(fs::metadata(&d.log).unwrap().len() > 12);
    let b = t.poll(ALL).unwrap();
    let mut want = vec!["old 3, not read before the rotation".to_owned()];
    want.extend(new);
    assert_eq!(texts(&b), want);
    assert!(matches!(
        &b.events[0],
        TailEvent::Truncated { copy: Some(_), .. }
    ));
    assert!(matches!(&b.events[1], TailEvent::Rotated { path, .. } if *path == d.log));
}

#[test]
fn a_truncation_without_a_copy_starts_the_file_over() {
    let d = Dir::new();
    fs::write(&d.log, "aaaa\nbbbb\n").unwrap();
    let mut t = Tailer::new(&d.log, None);
    t.poll(ALL).unwrap();
    fs::write(&d.log, "cccc\ndddd\neeee\n").unwrap();
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["cccc", "dddd", "eeee"]);
    assert_eq!(
        b.events,
        [TailEvent::Truncated {
            file: d.id(&d.log),
            offset: 10,
            copy: None
        }]
    );
}

#[test]
fn a_deleted_file_is_drained_then_the_recreated_one_is_read() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "a\n");
    let mut t = Tailer::new(&d.log, None);
    t.poll(ALL).unwrap();
    let old = d.id(&d.log);
    fs::remove_file(&d.log).unwrap();
    write(&mut w, "b\nc");
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["b"]);
    assert_eq!(b.events, [TailEvent::Missing]);
    let mut w2 = d.writer();
    assert!(
        t.poll(ALL).unwrap().lines.is_empty(),
        "an empty new file does not finish the old one"
    );
    write(&mut w2, "d\n");
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["c", "d"]);
    assert_eq!(
        b.events,
        [TailEvent::Recreated {
            from: old,
            to: d.id(&d.log)
        }]
    );
}

/// A tailer started on a missing path: it says so once; `meanwhile` makes what appears
/// beside it (and must not be read); then the log appears and is read from its start.
fn missing_then_appears(meanwhile: impl FnOnce(&Dir)) {
    let d = Dir::new();
    let mut t = Tailer::new(&d.log, None);
    assert_eq!(t.poll(ALL).unwrap().events, [TailEvent::Missing]);
    meanwhile(&d);
    let b = t.poll(ALL).unwrap();
    assert!(b.events.is_empty(), "{:?}", b.events);
    assert!(b.lines.is_empty());
    fs::write(&d.log, "hello\n").unwrap();
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["hello"]);
    assert_eq!(
        b.events,
        [TailEvent::Opened {
            file: d.id(&d.log),
            path: d.log.clone(),
            offset: 0
        }]
    );
}

#[test]
fn a_missing_path_is_reported_once_and_read_when_it_appears() {
    missing_then_appears(|_| {});
}

/// Kea's logger creates `kea-dhcp4.log.lock` before the log itself: the tailer waiting for
/// the log took the lock file for the log's rotated predecessor.
#[test]
fn regression_a_lock_file_beside_a_missing_log_is_not_read_as_its_rotation() {
    missing_then_appears(|d| fs::write(d.log.with_extension("log.lock"), "").unwrap());
}

#[test]
fn a_restart_finds_the_rotated_file_by_inode() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "a\n");
    let cp = Tailer::new(&d.log, None).poll(ALL).unwrap().checkpoint;
    write(&mut w, "b\nc\n");
    fs::rename(&d.log, d.at("dhcpd.log.1")).unwrap();
    fs::write(d.at("dhcpd.log.2.gz"), "not read").unwrap();
    fs::write(&d.log, "n\n").unwrap();
    let b = Tailer::new(&d.log, cp).poll(ALL).unwrap();
    assert_eq!(texts(&b), ["b", "c", "n"]);
    assert!(
        matches!(&b.events[0], TailEvent::Opened { path, offset: 2, .. } if *path == d.at("dhcpd.log.1"))
    );
    assert!(matches!(&b.events[1], TailEvent::Rotated { .. }));
}

#[test]
fn a_restart_finds_a_dated_rotation() {
    let d = Dir::new();
    fs::write(&d.log, "a\nb\n").unwrap();
    let mut t = Tailer::new(&d.log, None);
    let cp = t.poll(3).unwrap().checkpoint;
    drop(t);
    fs::rename(&d.log, d.at("dhcpd.log-20260102")).unwrap();
    let b = Tailer::new(&d.log, cp).poll(ALL).unwrap();
    assert_eq!(texts(&b), ["b"]);
    assert_eq!(b.events[1], TailEvent::Missing);
}

#[test]
fn a_restart_after_two_rotations_reads_the_file_in_between() {
    let d = Dir::new();
    fs::write(&d.log, "a1\na2\n").unwrap();
    let mut t = Tailer::new(&d.log, None);
    let cp = t.poll(3).unwrap().checkpoint;
    drop(t);
    fs::rename(&d.log, d.at("dhcpd.log.1")).unwrap();
    fs::write(&d.log, "b1\nb2\n").unwrap();
    fs::rename(d.at("dhcpd.log.1"), d.at("dhcpd.log.2")).unwrap();
    fs::rename(&d.log, d.at("dhcpd.log.1")).unwrap();
    fs::write(&d.log, "c1\n").unwrap();
    let b = Tailer::new(&d.log, cp).poll(ALL).unwrap();
    assert_eq!(texts(&b), ["a2", "b1", "b2", "c1"]);
}

#[test]
fn a_restart_from_a_file_that_is_gone_starts_over_and_reports_it() {
    let d = Dir::new();
    fs::write(&d.log, "a\nb\n").unwrap();
    let cp = Tailer::new(&d.log, None)
        .poll(ALL)
        .unwrap()
        .checkpoint
        .unwrap();
    // Moved out of sight rather than deleted, so that the new file cannot get its inode
    // number (that case is the next test's).
    fs::rename(&d.log, d.at("elsewhere")).unwrap();
    fs::write(&d.log, "c\n").unwrap();
    let b = Tailer::new(&d.log, Some(cp.clone())).poll(ALL).unwrap();
    assert_eq!(texts(&b), ["c"]);
    assert_eq!(b.events[0], TailEvent::Lost { checkpoint: cp });
    assert!(matches!(b.events[1], TailEvent::Opened { offset: 0, .. }));
}

#[test]
fn a_restart_notices_a_different_file_on_the_same_inode() {
    let d = Dir::new();
    fs::write(&d.log, "new file, same inode\n").unwrap();
    let id = d.id(&d.log);
    let cp = Checkpoint {
        dev: id.dev,
        ino: id.ino,
        offset: 5,
        fingerprint: super::fingerprint(b"old f"),
    };
    let b = Tailer::new(&d.log, Some(cp)).poll(ALL).unwrap();
    assert_eq!(texts(&b), ["new file, same inode"]);
    assert_eq!(
        b.events[0],
        TailEvent::Truncated {
            file: id,
            offset: 5,
            copy: None
        }
    );
}

#[test]
fn a_restart_after_copytruncate_reads_the_rest_from_the_copy() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "a\n");
    let cp = Tailer::new(&d.log, None).poll(ALL).unwrap().checkpoint;
    write(&mut w, "b\n");
    d.copytruncate();
    write(&mut w, "c, written right after the truncation\n");
    let b = Tailer::new(&d.log, cp).poll(ALL).unwrap();
    assert_eq!(texts(&b), ["b", "c, written right after the truncation"]);
    assert!(
        matches!(&b.events[0], TailEvent::Truncated { copy: Some(p), .. } if *p == d.at("dhcpd.log.1"))
    );
}

#[test]
fn checkpoints_round_trip_through_json() {
    let cp = Checkpoint {
        dev: 2049,
        ino: 131_077,
        offset: 1 << 40,
        fingerprint: u64::MAX - 3,
    };
    let json = serde_json::to_string(&cp).unwrap();
    assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), cp);
    assert_eq!(cp.fingerprint_len(), 256);
    assert_eq!(super::fingerprint(b""), super::fingerprint(&[]));
}

#[test]
fn two_copytruncates_between_polls_are_read_in_order() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "a1\n");
    let mut t = Tailer::new(&d.log, None);
    t.poll(ALL).unwrap();
    write(&mut w, "a2\n");
    d.copytruncate();
    write(&mut w, "b1\nb2\n");
    fs::rename(d.at("dhcpd.log.1"), d.at("dhcpd.log.2")).unwrap();
    d.copytruncate();
    write(&mut w, "c1\n");
    assert_eq!(texts(&t.poll(ALL).unwrap()), ["a2", "b1", "b2", "c1"]);
}

#[test]
fn a_file_truncated_then_renamed_is_read_from_its_copy_then_again_from_0() {
    let d = Dir::new();
    let mut w = d.writer();
    write(&mut w, "a1\n");
    let mut t = Tailer::new(&d.log, None);
    t.poll(ALL).unwrap();
    write(&mut w, "a2\n");
    d.copytruncate();
    write(&mut w, "b1\n");
    fs::rename(d.at("dhcpd.log.1"), d.at("dhcpd.log.2")).unwrap();
    fs::rename(&d.log, d.at("dhcpd.log.1")).unwrap();
    let mut w = d.writer();
    write(&mut w, "c1\n");
    assert_eq!(texts(&t.poll(ALL).unwrap()), ["a2", "b1", "c1"]);
}

#[test]
fn an_io_error_sends_the_tailer_back_to_its_last_checkpoint() {
    let d = Dir::new();
    fs::write(&d.log, "a\nb\n").unwrap();
    let mut t = Tailer::new(&d.log, None);
    assert_eq!(texts(&t.poll(3).unwrap()), ["a"]);
    // The next file at the path cannot be read: the poll fails after reading "b".
    fs::rename(&d.log, d.at("saved")).unwrap();
    fs::create_dir(&d.log).unwrap();
    assert!(t.poll(ALL).is_err());
    fs::remove_dir(&d.log).unwrap();
    fs::rename(d.at("saved"), &d.log).unwrap();
    let b = t.poll(ALL).unwrap();
    assert_eq!(texts(&b), ["b"]);
    assert!(matches!(b.events[0], TailEvent::Opened { offset: 2, .. }));
}

#[test]
fn regression_a_file_rotated_away_before_the_first_poll_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let mut t = Tailer::new(&path, None);
    // Before the tailer first looks: the file appears, gets lines, and is rotated away.
    std::fs::write(&path, b"a1\na2\n").unwrap();
    std::fs::rename(&path, dir.path().join("log.1")).unwrap();
    std::fs::write(&path, b"b1\n").unwrap();
    let b = t.poll(1 << 20).unwrap();
    let got: Vec<&[u8]> = b.lines.iter().map(|l| l.bytes.as_slice()).collect();
    assert_eq!(got, [&b"a1"[..], b"a2", b"b1"]);
}

#[test]
fn rotated_files_older_than_the_start_are_history_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    std::fs::write(dir.path().join("log.1"), b"old\n").unwrap();
    std::fs::write(&path, b"now\n").unwrap();
    let mut t = Tailer::new(&path, None)
        .since(std::time::SystemTime::now() + std::time::Duration::from_secs(10));
    let b = t.poll(1 << 20).unwrap();
    let got: Vec<&[u8]> = b.lines.iter().map(|l| l.bytes.as_slice()).collect();
    assert_eq!(got, [&b"now"[..]]);
}
