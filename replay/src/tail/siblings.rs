//! Finding a followed file's rotated siblings (`log.1`, `log.0`, `log-20260102`…) in its
//! directory and ordering them from oldest to newest. Compressed ones are left out: the
//! tailer reads plain files only. Which sibling holds what is decided in `tailer.rs`.

use std::cmp::Reverse;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::types::FileId;

/// Suffixes of compressed rotations, skipped.
const COMPRESSED: &[&[u8]] = &[
    b".gz", b".bz2", b".xz", b".zst", b".lz4", b".lzma", b".Z", b".z",
];

/// Suffixes of files that sit beside a log and are no rotation of it: Kea's logger keeps
/// `kea-dhcp4.log.lock` next to its log, and editors and daemons leave the others.
const NOT_ROTATIONS: &[&[u8]] = &[b"lock", b"lck", b"pid", b"swp", b"tmp"];

/// Longest all-digit suffix that counts as a rotation number (`log.3`); longer ones are
/// dates or epoch seconds (`log-20260102`, `log.1767312000`) and sort as text.
const MAX_NUMBER_DIGITS: usize = 5;

/// A rotated sibling of the followed path, as found by one directory scan.
#[derive(Clone, Debug)]
pub(super) struct Sibling {
    pub path: PathBuf,
    pub id: FileId,
    pub size: u64,
    pub rank: Rank,
    /// When it was last written.
    pub modified: Option<std::time::SystemTime>,
}

/// Age of a sibling by its name, ordered oldest first: text suffixes (dates) in ascending
/// order, then numbered ones from the highest number (oldest) down to `.1` and `.0`, the
/// newest in both logrotate's and savelog's numbering. A directory mixing both schemes is
/// read with the numbered ones as the newer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Rank {
    Named(Vec<u8>),
    Numbered(Reverse<u64>),
}

impl Rank {
    fn of(suffix: &[u8]) -> Rank {
        let numeric = suffix.len() <= MAX_NUMBER_DIGITS && suffix.iter().all(u8::is_ascii_digit);
        match std::str::from_utf8(suffix)
            .ok()
            .filter(|_| numeric)
            .and_then(|s| s.parse().ok())
        {
            Some(n) => Rank::Numbered(Reverse(n)),
            None => Rank::Named(suffix.to_vec()),
        }
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The rotation suffix of `name` as a sibling of `base` (`"1"` for `log.1`), if it is one.
fn rotation_suffix<'a>(base: &[u8], name: &'a [u8]) -> Option<&'a [u8]> {
    let rest = name.strip_prefix(base)?;
    let suffix = rest
        .strip_prefix(b".")
        .or_else(|| rest.strip_prefix(b"-"))?;
    let compressed = COMPRESSED.iter().any(|ext| suffix.ends_with(ext));
    let other = NOT_ROTATIONS.contains(&suffix);
    (!suffix.is_empty() && !compressed && !other).then_some(suffix)
}

/// The plain regular files beside `path` named `path.*` or `path-*`, oldest first. A missing
/// directory has none; a sibling that vanishes during the scan is left out.
pub(super) fn rotated_siblings(path: &Path) -> io::Result<Vec<Sibling>> {
    // A directory read while logrotate shifts `x.1` → `x.2` … may miss an entry that moves
    // during it (readdir gives no guarantee then). Read until two reads agree.
    let mut last = scan_siblings(path)?;
    for _ in 0..8 {
        let again = scan_siblings(path)?;
        let same = again.len() == last.len()
            && again
                .iter()
                .zip(&last)
                .all(|(a, b)| a.id == b.id && a.path == b.path);
        if same {
            return Ok(again);
        }
        last = again;
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Ok(last)
}

fn scan_siblings(path: &Path) -> io::Result<Vec<Sibling>> {
    let Some(base) = path.file_name() else {
        return Ok(Vec::new());
    };
    let entries = match std::fs::read_dir(directory(path)) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(suffix) = rotation_suffix(base.as_bytes(), name.as_bytes()) else {
            continue;
        };
        let meta = match std::fs::metadata(entry.path()) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !meta.is_file() {
            continue;
        }
        found.push(Sibling {
            path: entry.path(),
            id: FileId::of(&meta),
            size: meta.len(),
            rank: Rank::of(suffix),
            modified: meta.modified().ok(),
        });
    }
    found.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.path.cmp(&b.path)));
    Ok(found)
}

/// Open `path` if the file there is still `id` (it may have been renamed since the scan).
pub(super) fn open_if(path: &Path, id: FileId) -> io::Result<Option<File>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok((FileId::of(&file.metadata()?) == id).then_some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_of_rotations_and_not_of_other_files() {
        assert_eq!(rotation_suffix(b"syslog", b"syslog.1"), Some(&b"1"[..]));
        assert_eq!(
            rotation_suffix(b"syslog", b"syslog-20260102"),
            Some(&b"20260102"[..])
        );
        assert_eq!(rotation_suffix(b"syslog", b"syslog.2.gz"), None);
        assert_eq!(rotation_suffix(b"syslog", b"syslog-20260102.xz"), None);
        assert_eq!(rotation_suffix(b"syslog", b"syslog"), None);
        assert_eq!(rotation_suffix(b"syslog", b"syslog."), None);
        assert_eq!(rotation_suffix(b"syslog", b"syslogd.1"), None);
        assert_eq!(rotation_suffix(b"syslog", b"messages.1"), None);
        assert_eq!(
            rotation_suffix(b"kea-dhcp4.log", b"kea-dhcp4.log.lock"),
            None
        );
        assert_eq!(rotation_suffix(b"dhcpd.log", b"dhcpd.log.pid"), None);
    }

    #[test]
    fn ranks_go_from_oldest_to_newest() {
        let mut names = [
            "log.0",
            "log.1",
            "log.10",
            "log-20260101",
            "log.2",
            "log-20251231",
        ];
        names.sort_by_key(|n| Rank::of(rotation_suffix(b"log", n.as_bytes()).unwrap()));
        assert_eq!(
            names,
            [
                "log-20251231",
                "log-20260101",
                "log.10",
                "log.2",
                "log.1",
                "log.0"
            ]
        );
    }

    #[test]
    fn scan_finds_plain_rotations_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "dhcpd.log",
            "dhcpd.log.1",
            "dhcpd.log.2.gz",
            "dhcpd.log.3",
            "other.log.1",
        ] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        std::fs::create_dir(dir.path().join("dhcpd.log.d")).unwrap();
        let found = rotated_siblings(&dir.path().join("dhcpd.log")).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|s| s.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["dhcpd.log.3", "dhcpd.log.1"]);
        assert_eq!(found[1].size, "dhcpd.log.1".len() as u64);
        assert!(
            rotated_siblings(&dir.path().join("nowhere/x.log"))
                .unwrap()
                .is_empty()
        );
    }
}
