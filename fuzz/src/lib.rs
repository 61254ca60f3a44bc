//! What the fuzz targets share: where they keep the state directories they make.

use std::path::{Path, PathBuf};

/// A directory of this process's own for the state directories a target makes: in
/// `$NMT_FUZZ_SCRATCH` when set, else on `/dev/shm` when there is one (where the store's
/// fsyncs cost nothing), else in the temporary directory. libFuzzer ends a run without
/// running destructors, so the directories of processes that are gone are removed here.
pub fn scratch(target: &str) -> PathBuf {
    let base = match std::env::var_os("NMT_FUZZ_SCRATCH") {
        Some(dir) => PathBuf::from(dir),
        None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    };
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("nmt-fuzz-") else {
                continue;
            };
            let pid = rest.rsplit('-').next().unwrap_or("");
            if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("nmt-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Copy the directory `from` (files and directories, with their permissions) to `to`.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}
