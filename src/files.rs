//! Writing generated files: atomically, durably, and only when their bytes change.
//!
//! A batch is written as temporary files beside their targets, made durable (one `fsync` each
//! for a few files, one `syncfs` per filesystem for many), renamed into place, and then the
//! directories are synced. A crash leaves every file either old or new, never half-written.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// From this many files in one directory, it is listed once instead of looking each file up.
const LIST_THRESHOLD: usize = 64;

/// Above this many files, one `syncfs` per filesystem is cheaper than an `fsync` per file.
const SYNCFS_THRESHOLD: usize = 16;

/// Below this many files, threads cost more than they save.
const PARALLEL_THRESHOLD: usize = 64;

/// What a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Files whose bytes changed (or that were created).
    pub written: Vec<PathBuf>,
    /// Files that already had these bytes.
    pub unchanged: usize,
    /// Files removed.
    pub removed: Vec<PathBuf>,
}

impl WriteOutcome {
    /// Merge another outcome in.
    pub fn extend(&mut self, other: WriteOutcome) {
        self.written.extend(other.written);
        self.unchanged += other.unchanged;
        self.removed.extend(other.removed);
    }
}

/// How a file on disk differs from what nmt would write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// It does not exist.
    Missing(PathBuf),
    /// Its bytes differ.
    Differs(PathBuf),
    /// nmt wrote it once, and it should no longer exist.
    Stale(PathBuf),
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Missing(p) => write!(f, "missing  {}", p.display()),
            Drift::Differs(p) => write!(f, "differs  {}", p.display()),
            Drift::Stale(p) => write!(f, "stale    {}", p.display()),
        }
    }
}

fn same_bytes(path: &Path, bytes: &[u8]) -> bool {
    match fs::metadata(path) {
        Ok(md) if md.len() == bytes.len() as u64 => fs::read(path).is_ok_and(|b| b == bytes),
        _ => false,
    }
}

fn tmp_name(path: &Path) -> PathBuf {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.nmt-tmp.{pid}"))
}

/// Compare files with the disk without writing anything.
pub fn drift<'a>(files: impl IntoIterator<Item = (PathBuf, &'a [u8])>) -> Vec<Drift> {
    let mut out = Vec::new();
    for (path, bytes) in files {
        if !path.exists() {
            out.push(Drift::Missing(path));
        } else if !same_bytes(&path, bytes) {
            out.push(Drift::Differs(path));
        }
    }
    out
}

/// Run `f` on each directory's share of the work, several directories at once: file
/// creation and rename serialize on a directory's lock, but not across directories.
fn per_dir<T: Send, R: Send>(
    groups: Vec<(PathBuf, Vec<T>)>,
    f: impl Fn(&Path, Vec<T>) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let items: usize = groups.iter().map(|(_, v)| v.len()).sum();
    if groups.len() <= 1 || items < PARALLEL_THRESHOLD {
        return groups.into_iter().map(|(d, items)| f(&d, items)).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|(d, items)| s.spawn(move || f(&d, items)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a file-writing thread panicked"))
            .collect()
    })
}

/// One directory's share: write temporaries for files whose bytes differ.
fn stage(dir: &Path, files: Vec<(PathBuf, &[u8])>, sync_each: bool) -> Result<Staged> {
    let mut staged = Staged::default();
    let mut made = false;
    // For many files, one listing of the directory says which exist: a new file needs no
    // comparison (one failed lookup each is a third of the cost of writing it).
    let present: Option<HashSet<OsString>> = (files.len() >= LIST_THRESHOLD).then(|| {
        fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    });
    for (path, bytes) in files {
        let may_exist = match (&present, path.file_name()) {
            (Some(names), Some(name)) => names.contains(name),
            _ => true,
        };
        if may_exist && same_bytes(&path, bytes) {
            staged.unchanged += 1;
            continue;
        }
        if !made {
            fs::create_dir_all(dir)
                .with_context(|| format!("while creating the directory {}", dir.display()))?;
            made = true;
        }
        let tmp = tmp_name(&path);
        let written = (|| -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&tmp)?;
            f.write_all(bytes)?;
            if sync_each {
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            staged.discard();
            return Err(e).with_context(|| format!("while writing {}", tmp.display()));
        }
        staged.pending.push((tmp, path));
    }
    Ok(staged)
}

#[derive(Default)]
struct Staged {
    pending: Vec<(PathBuf, PathBuf)>,
    unchanged: usize,
}

impl Staged {
    fn discard(&mut self) {
        for (tmp, _) in self.pending.drain(..) {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Write `files` (path, bytes) whose bytes differ from the disk, and remove `removals`.
pub fn write_batch<'a>(
    files: impl IntoIterator<Item = (PathBuf, &'a [u8])>,
    removals: impl IntoIterator<Item = PathBuf>,
) -> Result<WriteOutcome> {
    let mut groups: BTreeMap<PathBuf, Vec<(PathBuf, &'a [u8])>> = BTreeMap::new();
    let mut total = 0;
    for (path, bytes) in files {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        groups.entry(dir).or_default().push((path, bytes));
        total += 1;
    }
    // Few files: fsync each. Many: one syncfs per filesystem before the renames.
    let sync_each = total <= SYNCFS_THRESHOLD;
    let dirs: Vec<PathBuf> = groups.keys().cloned().collect();
    let staged = per_dir(groups.into_iter().collect(), |d, f| stage(d, f, sync_each));
    let mut staged = match staged {
        Ok(s) => s,
        Err(e) => {
            // Other directories may have staged temporaries: find and drop them.
            for d in &dirs {
                if let Ok(rd) = fs::read_dir(d) {
                    let suffix = format!(".nmt-tmp.{}", std::process::id());
                    for e in rd.flatten() {
                        if e.file_name().to_string_lossy().ends_with(&suffix) {
                            let _ = fs::remove_file(e.path());
                        }
                    }
                }
            }
            return Err(e);
        }
    };
    let mut out = WriteOutcome {
        unchanged: staged.iter().map(|s| s.unchanged).sum(),
        ..WriteOutcome::default()
    };
    let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
    let result = (|| -> Result<()> {
        let any = staged.iter().any(|s| !s.pending.is_empty());
        if any && !sync_each {
            let mut devs = HashSet::new();
            for d in &dirs {
                let Ok(md) = fs::metadata(d) else { continue };
                if devs.insert(md.dev()) {
                    let f = fs::File::open(d)?;
                    nix::unistd::syncfs(&f).with_context(|| {
                        format!("while syncing the filesystem of {}", d.display())
                    })?;
                }
            }
        }
        let renames: Vec<(PathBuf, Vec<(PathBuf, PathBuf)>)> = staged
            .iter_mut()
            .filter(|s| !s.pending.is_empty())
            .map(|s| {
                let pending = std::mem::take(&mut s.pending);
                let dir = pending[0]
                    .1
                    .parent()
                    .unwrap_or(Path::new("."))
                    .to_path_buf();
                (dir, pending)
            })
            .collect();
        let moved = per_dir(renames, |_, pending| {
            let mut done = Vec::with_capacity(pending.len());
            let mut iter = pending.into_iter();
            for (tmp, path) in iter.by_ref() {
                if let Err(e) = fs::rename(&tmp, &path) {
                    let _ = fs::remove_file(&tmp);
                    for (t, _) in iter {
                        let _ = fs::remove_file(t);
                    }
                    return Err(e)
                        .with_context(|| format!("while moving {} into place", path.display()));
                }
                done.push(path);
            }
            Ok(done)
        })?;
        for paths in moved {
            if let Some(d) = paths.first().and_then(|p| p.parent()) {
                touched.insert(d.to_path_buf());
            }
            out.written.extend(paths);
        }
        for path in removals {
            match fs::remove_file(&path) {
                Ok(()) => {
                    if let Some(d) = path.parent() {
                        touched.insert(d.to_path_buf());
                    }
                    out.removed.push(path);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("while removing {}", path.display()));
                }
            }
        }
        for d in &touched {
            if let Ok(f) = fs::File::open(d) {
                f.sync_all()
                    .with_context(|| format!("while syncing the directory {}", d.display()))?;
            }
        }
        Ok(())
    })();
    if result.is_err() {
        for s in &mut staged {
            s.discard();
        }
    }
    result.map(|()| out)
}

/// Write a secret (mode 0600 from its creation), atomically: a temporary file, synced, renamed
/// over `path`, the directory synced. A failure leaves no temporary file behind.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tmp_name(path);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("while writing {}", path.display()));
    }
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_changed_files_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x/a");
        let b = dir.path().join("x/b");
        let o = write_batch([(a.clone(), &b"1"[..]), (b.clone(), &b"2"[..])], []).unwrap();
        assert_eq!(o.written.len(), 2);
        let o = write_batch([(a.clone(), &b"1"[..]), (b.clone(), &b"3"[..])], []).unwrap();
        assert_eq!(o.written, vec![b.clone()]);
        assert_eq!(o.unchanged, 1);
        assert_eq!(fs::read(&b).unwrap(), b"3");
        let o = write_batch([], [a.clone(), dir.path().join("nope")]).unwrap();
        assert_eq!(o.removed, vec![a.clone()]);
        let names: Vec<_> = fs::read_dir(dir.path().join("x"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b")]);
    }

    #[test]
    fn many_files_use_one_syncfs() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<(PathBuf, Vec<u8>)> = (0..100)
            .map(|i| {
                (
                    dir.path().join(format!("f{i}")),
                    format!("{i}").into_bytes(),
                )
            })
            .collect();
        let o = write_batch(files.iter().map(|(p, b)| (p.clone(), b.as_slice())), []).unwrap();
        assert_eq!(o.written.len(), 100);
        assert_eq!(fs::read(dir.path().join("f42")).unwrap(), b"42");
        assert!(drift(files.iter().map(|(p, b)| (p.clone(), b.as_slice()))).is_empty());
    }

    #[test]
    fn a_listed_directory_still_finds_unchanged_and_changed_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = |changed: bool| -> Vec<(PathBuf, Vec<u8>)> {
            (0..2 * LIST_THRESHOLD)
                .map(|i| {
                    let bytes = if changed && i % 2 == 0 { "new" } else { "old" };
                    (dir.path().join(format!("f{i}")), bytes.as_bytes().to_vec())
                })
                .collect()
        };
        let first = files(false);
        let o = write_batch(first.iter().map(|(p, b)| (p.clone(), b.as_slice())), []).unwrap();
        assert_eq!(o.written.len(), 2 * LIST_THRESHOLD);
        // Every other file changes; the rest are left alone.
        let second = files(true);
        let o = write_batch(second.iter().map(|(p, b)| (p.clone(), b.as_slice())), []).unwrap();
        assert_eq!(o.written.len(), LIST_THRESHOLD);
        assert_eq!(o.unchanged, LIST_THRESHOLD);
        assert_eq!(fs::read(dir.path().join("f2")).unwrap(), b"new");
        assert_eq!(fs::read(dir.path().join("f3")).unwrap(), b"old");
    }
}
