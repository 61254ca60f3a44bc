//! The image directory (`[paths] images`, see docs/imaging.md): each saved version in
//! `NAME@VERSION/` with its `manifest.json`, `table.sfdisk`, `head.bin` and one
//! `pN.partclone.zst` per partition. A save in progress lives in `.partial/NAME@VERSION/`
//! and becomes visible by one rename once every stream arrived; a failed one is removed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nmt_projections::{ImageManifest, ImagePart, StreamDigest};

/// The directory of saved images.
#[derive(Clone, Debug)]
pub struct ImageStore {
    root: PathBuf,
}

/// What a machine's imager says of its disk when a save starts (the body of
/// `POST …/save`): `disk NAME SIZE LABEL`, then `part N DEVICE FSTYPE SIZE USED TOOL` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    /// The disk's device name (`vda`).
    pub disk: String,
    /// Its size in bytes.
    pub disk_size: u64,
    /// `dos` or `gpt`.
    pub label: String,
    /// Its partitions; their streams are not known yet.
    pub parts: Vec<ImagePart>,
}

/// The partclone programs an imager may name.
const TOOLS: &[&str] = &[
    "partclone.extfs",
    "partclone.xfs",
    "partclone.btrfs",
    "partclone.fat",
    "partclone.vfat",
    "partclone.ntfs",
    "partclone.dd",
];

fn plain_word(s: &str, what: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    if !ok {
        bail!("{what} {s:?} is not a plain word");
    }
    Ok(s.to_string())
}

impl Inventory {
    /// Read an imager's inventory; anything unexpected is refused with its line.
    pub fn parse(text: &str) -> Result<Inventory> {
        let mut disk = None;
        let mut parts: Vec<ImagePart> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let n = i + 1;
            let num = |s: &str| -> Result<u64> {
                s.parse()
                    .with_context(|| format!("line {n}: {s:?} is not a number"))
            };
            match f.as_slice() {
                [] => {}
                ["disk", name, size, label] => {
                    if !matches!(*label, "dos" | "gpt") {
                        bail!("line {n}: the partition table is {label:?}; nmt images dos and gpt");
                    }
                    disk = Some((plain_word(name, "disk")?, num(size)?, label.to_string()));
                }
                ["part", number, device, fstype, size, used, tool] => {
                    let number = num(number)?;
                    if number == 0 || number > 128 {
                        bail!("line {n}: partition number {number} is out of range");
                    }
                    if !TOOLS.contains(tool) {
                        bail!("line {n}: {tool:?} is not a partclone program nmt knows");
                    }
                    if parts.iter().any(|p| u64::from(p.number) == number) {
                        bail!("line {n}: partition {number} is listed twice");
                    }
                    parts.push(ImagePart {
                        number: number as u32,
                        device: plain_word(device, "device")?,
                        fstype: plain_word(fstype, "filesystem")?,
                        size: num(size)?,
                        used: num(used)?,
                        tool: tool.to_string(),
                        stream: StreamDigest {
                            sha256: String::new(),
                            bytes: 0,
                        },
                    });
                }
                _ => bail!(
                    "line {n}: expected `disk NAME SIZE LABEL` or `part N DEVICE FSTYPE SIZE USED TOOL`"
                ),
            }
        }
        let Some((disk, disk_size, label)) = disk else {
            bail!("no `disk NAME SIZE LABEL` line");
        };
        parts.sort_by_key(|p| p.number);
        Ok(Inventory {
            disk,
            disk_size,
            label,
            parts,
        })
    }

    /// As the imager sent it (what `.partial/…/inventory` holds).
    pub fn text(&self) -> String {
        let mut out = format!("disk {} {} {}\n", self.disk, self.disk_size, self.label);
        for p in &self.parts {
            out += &format!(
                "part {} {} {} {} {} {}\n",
                p.number, p.device, p.fstype, p.size, p.used, p.tool
            );
        }
        out
    }

    /// The bytes a save needs at most: what the filesystems use, the first MiB and the table
    /// (compression only makes it smaller).
    pub fn needed_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.used).sum::<u64>() + (1 << 20) + (64 << 10)
    }

    /// The stream names this save must send.
    pub fn streams(&self) -> Vec<String> {
        let mut out = vec!["table".to_string(), "head".to_string()];
        out.extend(self.parts.iter().map(|p| format!("p{}", p.number)));
        out
    }
}

/// The file that holds a stream (`table`, `head`, `pN`); `None` for any other name.
pub fn stream_file(stream: &str) -> Option<String> {
    match stream {
        "table" => Some("table.sfdisk".into()),
        "head" => Some("head.bin".into()),
        _ => {
            let n: u32 = stream.strip_prefix('p')?.parse().ok()?;
            (stream == format!("p{n}") && (1..=128).contains(&n))
                .then(|| format!("p{n}.partclone.zst"))
        }
    }
}

impl ImageStore {
    /// The store at `root` (created when first written).
    pub fn new(root: impl Into<PathBuf>) -> ImageStore {
        ImageStore { root: root.into() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn partial(&self, name: &str, version: u32) -> PathBuf {
        self.root.join(".partial").join(format!("{name}@{version}"))
    }

    /// A complete version's directory.
    pub fn version_dir(&self, name: &str, version: u32) -> PathBuf {
        self.root.join(format!("{name}@{version}"))
    }

    /// Free bytes on the filesystem that holds the images.
    pub fn free_bytes(&self) -> Result<u64> {
        fs::create_dir_all(&self.root)
            .with_context(|| format!("while creating {}", self.root.display()))?;
        let st = nix::sys::statvfs::statvfs(&self.root)
            .with_context(|| format!("while reading the free space of {}", self.root.display()))?;
        Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
    }

    /// Start a save: its partial directory, holding the inventory.
    pub fn begin(&self, name: &str, version: u32, inv: &Inventory) -> Result<()> {
        let dir = self.partial(name, version);
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .with_context(|| format!("while clearing {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("while creating {}", dir.display()))?;
        fs::write(dir.join("inventory"), inv.text())
            .with_context(|| format!("while writing {}", dir.display()))?;
        Ok(())
    }

    /// Where a stream of a save in progress is written while it arrives, and where it goes
    /// once whole.
    pub fn upload_paths(
        &self,
        name: &str,
        version: u32,
        stream: &str,
    ) -> Option<(PathBuf, PathBuf)> {
        let file = stream_file(stream)?;
        let dir = self.partial(name, version);
        Some((dir.join(format!(".{file}.part")), dir.join(file)))
    }

    /// A whole stream arrived: move it into place and keep its digest beside it.
    pub fn stream_done(
        &self,
        name: &str,
        version: u32,
        stream: &str,
        digest: &StreamDigest,
    ) -> Result<()> {
        let (part, whole) = self
            .upload_paths(name, version, stream)
            .context("not a stream name")?;
        fs::rename(&part, &whole).with_context(|| format!("while moving {}", whole.display()))?;
        fs::write(
            self.partial(name, version).join(format!("{stream}.digest")),
            format!("{} {}\n", digest.sha256, digest.bytes),
        )?;
        Ok(())
    }

    /// Every stream arrived: write the manifest and make the version visible (one rename).
    pub fn finish(&self, name: &str, version: u32) -> Result<ImageManifest> {
        let dir = self.partial(name, version);
        let inv = Inventory::parse(
            &fs::read_to_string(dir.join("inventory"))
                .with_context(|| format!("no save of {name}@{version} is in progress"))?,
        )?;
        let digest = |stream: &str| -> Result<StreamDigest> {
            let text = fs::read_to_string(dir.join(format!("{stream}.digest")))
                .with_context(|| format!("stream {stream} never arrived whole"))?;
            let (sha, bytes) = text
                .trim()
                .split_once(' ')
                .context("a damaged digest file")?;
            Ok(StreamDigest {
                sha256: sha.to_string(),
                bytes: bytes.parse()?,
            })
        };
        let mut parts = inv.parts.clone();
        for p in &mut parts {
            p.stream = digest(&format!("p{}", p.number))?;
        }
        let manifest = ImageManifest {
            disk: inv.disk.clone(),
            disk_size: inv.disk_size,
            label: inv.label.clone(),
            table: digest("table")?,
            head: digest("head")?,
            parts,
        };
        let problems = self.check_in(&dir, &manifest);
        if !problems.is_empty() {
            bail!("the streams do not check out: {}", problems.join("; "));
        }
        let mut f = fs::File::create(dir.join("manifest.json"))?;
        f.write_all(&serde_json::to_vec_pretty(&manifest)?)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        for stream in inv.streams() {
            let _ = fs::remove_file(dir.join(format!("{stream}.digest")));
            if let Some(file) = stream_file(&stream) {
                fs::File::open(dir.join(file))?.sync_all()?;
            }
        }
        let _ = fs::remove_file(dir.join("inventory"));
        let target = self.version_dir(name, version);
        fs::rename(&dir, &target)
            .with_context(|| format!("while moving the image into {}", target.display()))?;
        fs::File::open(&self.root)?.sync_all()?;
        Ok(manifest)
    }

    /// Check a version's stored streams without a machine: each stream's size and SHA-256
    /// against the manifest, then each partition's partclone image with
    /// `zstd -dc | partclone.chkimg` (a `partclone.dd` stream with `zstd -t`). The problems
    /// found, one a line; empty when the image is sound.
    pub fn check(&self, name: &str, version: u32, manifest: &ImageManifest) -> Vec<String> {
        self.check_in(&self.version_dir(name, version), manifest)
    }

    fn check_in(&self, dir: &Path, manifest: &ImageManifest) -> Vec<String> {
        let mut problems = Vec::new();
        for (stream, want) in manifest.streams() {
            let Some(file) = stream_file(&stream) else {
                continue;
            };
            let path = dir.join(file);
            match digest_file(&path) {
                Ok(got) if got == *want => {}
                Ok(got) => problems.push(format!(
                    "{stream}: {} bytes with SHA-256 {}, but the manifest says {} bytes with {}",
                    got.bytes, got.sha256, want.bytes, want.sha256
                )),
                Err(e) => problems.push(format!("{stream}: {e:#}")),
            }
        }
        for p in &manifest.parts {
            let Some(file) = stream_file(&format!("p{}", p.number)) else {
                continue;
            };
            let path = dir.join(file);
            let script = if p.tool == "partclone.dd" {
                "zstd -tq \"$0\"".to_string()
            } else {
                "set -o pipefail; zstd -dcq \"$0\" | partclone.chkimg -s - -L /dev/null >/dev/null 2>&1"
                    .to_string()
            };
            let what = if p.tool == "partclone.dd" {
                "zstd -t"
            } else {
                "partclone.chkimg"
            };
            match std::process::Command::new("bash")
                .args(["-c", &script])
                .arg(&path)
                .status()
            {
                Ok(st) if st.success() => {}
                Ok(st) if st.code() == Some(127) => problems.push(format!(
                    "p{}: {what} or zstd is not installed on nmtd's host (Debian packages \
                     partclone and zstd), so the image cannot be checked",
                    p.number
                )),
                Ok(st) => problems.push(format!(
                    "p{}: {what} found the stream damaged (exit status {})",
                    p.number,
                    st.code().unwrap_or(-1)
                )),
                Err(e) => problems.push(format!("p{}: could not run {what}: {e}", p.number)),
            }
        }
        problems
    }

    /// Remove the partial saves no machine is saving any more (cut off, or nmtd stopped in
    /// the middle): `saving` holds the `NAME@VERSION`s still in progress. What was removed.
    pub fn clean_partials(&self, saving: &std::collections::BTreeSet<String>) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(self.root.join(".partial")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !saving.contains(&name) && fs::remove_dir_all(e.path()).is_ok() {
                    out.push(e.path());
                }
            }
        }
        out
    }

    /// Remove a save in progress (it failed, or was never finished).
    pub fn discard(&self, name: &str, version: u32) {
        let _ = fs::remove_dir_all(self.partial(name, version));
    }

    /// Remove a complete version.
    pub fn remove(&self, name: &str, version: u32) -> Result<()> {
        let dir = self.version_dir(name, version);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("while removing {}", dir.display()))
            }
            _ => Ok(()),
        }
    }

    /// A stored stream of a complete version.
    pub fn stored(&self, name: &str, version: u32, stream: &str) -> Option<PathBuf> {
        Some(self.version_dir(name, version).join(stream_file(stream)?))
    }
}

/// A file's size and SHA-256.
pub fn digest_file(path: &Path) -> Result<StreamDigest> {
    use sha2::{Digest, Sha256};
    let mut f = fs::File::open(path).with_context(|| format!("{} is missing", path.display()))?;
    let mut hash = Sha256::new();
    let bytes = std::io::copy(&mut f, &mut hash)?;
    Ok(StreamDigest {
        sha256: hash.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &str =
        "disk vda 1073741824 dos\npart 1 /dev/vda1 ext4 1072693248 227000000 partclone.extfs\n";
    /// A partition saved raw, which `zstd -t` checks.
    const RAW: &str =
        "disk vda 1073741824 dos\npart 1 /dev/vda1 - 1072693248 1072693248 partclone.dd\n";

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        use std::process::{Command, Stdio};
        let mut c = Command::new("zstd")
            .args(["-q", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("zstd (Debian package zstd) runs");
        c.stdin.take().unwrap().write_all(bytes).unwrap();
        c.wait_with_output().unwrap().stdout
    }

    #[test]
    fn an_inventory_reads_back_as_sent_and_refuses_what_it_does_not_know() {
        let inv = Inventory::parse(INV).unwrap();
        assert_eq!(inv.text(), INV);
        assert_eq!(inv.streams(), ["table", "head", "p1"]);
        for bad in [
            "",
            "disk vda 10 hybrid\n",
            "disk vda 10 dos\npart 1 /dev/vda1 ext4 1 1 rm\n",
            "disk vda 10 dos\npart 0 /dev/vda1 ext4 1 1 partclone.dd\n",
            "disk vda 10 dos\npart 1 /dev/vda1;x ext4 1 1 partclone.dd\n",
            "disk vda 10 dos\npart 1 /dev/vda1 ext4 1 1 partclone.dd\npart 1 /dev/vda1 ext4 1 1 partclone.dd\n",
        ] {
            assert!(Inventory::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stream_names_map_to_files_and_nothing_else() {
        assert_eq!(stream_file("p2").as_deref(), Some("p2.partclone.zst"));
        for bad in ["p0", "p01", "p129", "../x", "manifest", "p1/../x", ""] {
            assert_eq!(stream_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_version_is_visible_only_once_finished_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path());
        let inv = Inventory::parse(RAW).unwrap();
        let save = |version: u32, p1: &[u8], claimed: Option<&str>| {
            store.begin("lab", version, &inv).unwrap();
            for s in inv.streams() {
                let (part, _) = store.upload_paths("lab", version, &s).unwrap();
                let bytes = if s == "p1" {
                    p1.to_vec()
                } else {
                    s.clone().into_bytes()
                };
                fs::write(&part, &bytes).unwrap();
                let mut d = digest_file(&part).unwrap();
                if let Some(c) = claimed.filter(|_| s == "table") {
                    d.sha256 = c.to_string();
                }
                assert!(!store.version_dir("lab", version).exists());
                store.stream_done("lab", version, &s, &d).unwrap();
            }
            store.finish("lab", version)
        };
        let p1 = zstd(&[7u8; 100_000]);
        let m = save(1, &p1, None).unwrap();
        assert_eq!(m.parts[0].stream.bytes, p1.len() as u64);
        assert!(store.check("lab", 1, &m).is_empty());
        assert!(store.version_dir("lab", 1).join("manifest.json").exists());
        assert!(store.stored("lab", 1, "p1").unwrap().exists());
        assert!(!store.root().join(".partial/lab@1").exists());
        // A stream that is not what it claims, or not zstd, is never made visible.
        let e = save(2, &p1, Some(&"0".repeat(64))).unwrap_err();
        assert!(format!("{e:#}").contains("table:"), "{e:#}");
        store.discard("lab", 2);
        let e = save(3, b"not zstd at all", None).unwrap_err();
        assert!(format!("{e:#}").contains("p1: zstd -t found"), "{e:#}");
        store.discard("lab", 3);
        assert!(!store.version_dir("lab", 3).exists());
        // A save missing a stream is never finished.
        store.begin("lab", 4, &inv).unwrap();
        assert!(store.finish("lab", 4).is_err());
        store.discard("lab", 4);
        assert!(!store.root().join(".partial/lab@4").exists());
        // A stored stream damaged later is found.
        fs::write(store.stored("lab", 1, "p1").unwrap(), b"x").unwrap();
        assert!(!store.check("lab", 1, &m).is_empty());
    }
}
