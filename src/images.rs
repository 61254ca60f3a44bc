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

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &str =
        "disk vda 1073741824 dos\npart 1 /dev/vda1 ext4 1072693248 227000000 partclone.extfs\n";

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
    fn a_version_is_visible_only_once_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path());
        let inv = Inventory::parse(INV).unwrap();
        store.begin("lab", 1, &inv).unwrap();
        for s in inv.streams() {
            let (part, _) = store.upload_paths("lab", 1, &s).unwrap();
            fs::write(&part, s.as_bytes()).unwrap();
            let d = StreamDigest {
                sha256: "ab".into(),
                bytes: s.len() as u64,
            };
            assert!(!store.version_dir("lab", 1).exists());
            store.stream_done("lab", 1, &s, &d).unwrap();
        }
        let m = store.finish("lab", 1).unwrap();
        assert_eq!(m.parts[0].stream.bytes, 2);
        assert!(store.version_dir("lab", 1).join("manifest.json").exists());
        assert!(store.stored("lab", 1, "p1").unwrap().exists());
        assert!(!store.root().join(".partial/lab@1").exists());
        // A save missing a stream is never finished.
        store.begin("lab", 2, &inv).unwrap();
        assert!(store.finish("lab", 2).is_err());
        store.discard("lab", 2);
        assert!(!store.root().join(".partial/lab@2").exists());
    }
}
