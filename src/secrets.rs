//! nmtd's secrets file (`[paths] secrets`, `STATE/secrets.toml` by default): the BMC
//! passwords, by whose setting they are (`machine:MAC`, `group:NAME`). Mode 0600, replaced
//! whole and atomically (temp file, fsync, rename, directory fsync), never in the event log,
//! an export, a page or a reply. A password given on the command line never crosses a
//! process's arguments: the CLI reads it from a file and hands it over nmtd's socket.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// A secret: printed nowhere (its `Debug` is `[hidden]`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret itself, for the one place that hands it to a BMC.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[hidden]")
    }
}

#[derive(Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    bmc: BTreeMap<String, Secret>,
}

/// The secrets file.
pub struct Secrets {
    path: PathBuf,
}

impl Secrets {
    /// The secrets file at `path`.
    pub fn new(path: &Path) -> Secrets {
        Secrets {
            path: path.to_path_buf(),
        }
    }

    fn read(&self) -> Result<File> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let mode = std::fs::metadata(&self.path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    bail!(
                        "{} can be read by others (mode {:o}); `chmod 600 {}` it, and change \
                         the BMC passwords it holds",
                        self.path.display(),
                        mode & 0o777,
                        self.path.display()
                    );
                }
                toml::from_str(&text)
                    .with_context(|| format!("{} is not a secrets file", self.path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
            Err(e) => Err(e).with_context(|| format!("while reading {}", self.path.display())),
        }
    }

    /// The BMC password kept for `key`.
    pub fn bmc(&self, key: &str) -> Result<Option<Secret>> {
        Ok(self.read()?.bmc.get(key).cloned())
    }

    /// Keep `secret` for `key` (or forget it, with `None`).
    pub fn set_bmc(&self, key: &str, secret: Option<Secret>) -> Result<()> {
        let mut f = self.read()?;
        match secret {
            Some(s) => f.bmc.insert(key.to_string(), s),
            None => f.bmc.remove(key),
        };
        let text = toml::to_string(&f).context("while encoding the secrets file")?;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating {}", dir.display()))?;
        let tmp = dir.join(format!(
            ".{}.tmp{}",
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "secrets".into()),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            out.write_all(
                b"# nmt's BMC passwords (mode 0600). Written by nmt; never in the event log.\n",
            )?;
            out.write_all(text.as_bytes())?;
            out.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::Error::new(e).context(format!(
                "nothing was changed: {} could not be written",
                self.path.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_kept_0600_replaced_whole_and_never_debug_printed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::new(&dir.path().join("secrets.toml"));
        assert!(s.bmc("machine:x").unwrap().is_none());
        s.set_bmc("machine:x", Some(Secret::new("p4ss\"word".into())))
            .unwrap();
        s.set_bmc("group:lab", Some(Secret::new("other".into())))
            .unwrap();
        assert_eq!(s.bmc("machine:x").unwrap().unwrap().expose(), "p4ss\"word");
        let mode = std::fs::metadata(dir.path().join("secrets.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            format!("{:?}", s.bmc("group:lab").unwrap()),
            "Some([hidden])"
        );
        s.set_bmc("machine:x", None).unwrap();
        assert!(s.bmc("machine:x").unwrap().is_none());
        assert_eq!(s.bmc("group:lab").unwrap().unwrap().expose(), "other");
        // Readable by others: refused, with what to do.
        std::fs::set_permissions(
            dir.path().join("secrets.toml"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let e = s.bmc("group:lab").unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
