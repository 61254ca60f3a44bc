//! Writing generated files: atomically, durably, and only when their bytes change.
//!
//! A batch is written as temporary files beside their targets, made durable (one `fsync` each
//! for a few files, one `syncfs` per filesystem for many), renamed into place, and then the
//! directories are synced. A crash leaves every file either old or new, never half-written.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Above this many files, one `syncfs` per filesystem is cheaper than an `fsync` per file.
const SYNCFS_THRESHOLD: usize = 16;

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
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.nmt-tmp.{}", std::process::id()))
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

/// Write `files` (path, bytes) whose bytes differ from the disk, and remove `removals`.
pub fn write_batch<'a>(
    files: impl IntoIterator<Item = (PathBuf, &'a [u8])>,
    removals: impl IntoIterator<Item = PathBuf>,
) -> Result<WriteOutcome> {
    let mut out = WriteOutcome::default();
    let mut pending: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut made_dirs: HashSet<PathBuf> = HashSet::new();
    let result = (|| -> Result<()> {
        for (path, bytes) in files {
            if same_bytes(&path, bytes) {
                out.unchanged += 1;
                continue;
            }
            let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            if !made_dirs.contains(&dir) {
                fs::create_dir_all(&dir)
                    .with_context(|| format!("while creating the directory {}", dir.display()))?;
                made_dirs.insert(dir.clone());
            }
            let tmp = tmp_name(&path);
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&tmp)
                .with_context(|| format!("while writing {}", tmp.display()))?;
            f.write_all(bytes)
                .with_context(|| format!("while writing {}", tmp.display()))?;
            if pending.len() < SYNCFS_THRESHOLD {
                f.sync_all()
                    .with_context(|| format!("while syncing {}", tmp.display()))?;
            }
            pending.push((tmp, path));
            dirs.insert(dir);
        }
        if pending.len() > SYNCFS_THRESHOLD {
            // The first files were fsynced one by one; the rest go with one syncfs per filesystem.
            let mut devs = HashSet::new();
            for d in &dirs {
                let md = fs::metadata(d)?;
                if devs.insert(md.dev()) {
                    let f = fs::File::open(d)?;
                    nix::unistd::syncfs(&f).with_context(|| {
                        format!("while syncing the filesystem of {}", d.display())
                    })?;
                }
            }
        }
        for (tmp, path) in &pending {
            fs::rename(tmp, path)
                .with_context(|| format!("while moving {} into place", path.display()))?;
            out.written.push(path.clone());
        }
        pending.clear();
        for path in removals {
            match fs::remove_file(&path) {
                Ok(()) => {
                    if let Some(d) = path.parent() {
                        dirs.insert(d.to_path_buf());
                    }
                    out.removed.push(path);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("while removing {}", path.display()));
                }
            }
        }
        for d in &dirs {
            if let Ok(f) = fs::File::open(d) {
                f.sync_all()
                    .with_context(|| format!("while syncing the directory {}", d.display()))?;
            }
        }
        Ok(())
    })();
    if result.is_err() {
        for (tmp, _) in &pending {
            let _ = fs::remove_file(tmp);
        }
    }
    result.map(|()| out)
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
}
