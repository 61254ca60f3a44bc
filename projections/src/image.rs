//! Disk images: what a saved image holds (its [`ImageManifest`]), the versions of each named
//! image, and which machines were restored from them. The bytes live in nmtd's image
//! directory; the log holds what they are and what happened to them.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Command, Event, Mac, Machine, Policy, Refusal, State};

/// One stream of an image, as stored: its SHA-256 (lower-case hex) and its size in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDigest {
    /// SHA-256 of the stored bytes, lower-case hex.
    pub sha256: String,
    /// Size of the stored bytes.
    pub bytes: u64,
}

/// One partition of a saved disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePart {
    /// Its number on the disk (1 for `/dev/sda1`).
    pub number: u32,
    /// The device it was read from, as the imager named it.
    pub device: String,
    /// Its filesystem as `blkid` says (`ext4`, `vfat`, …), or `-` for none.
    pub fstype: String,
    /// Its size in bytes.
    pub size: u64,
    /// The bytes its filesystem uses (what partclone copies).
    pub used: u64,
    /// The program that captured it (`partclone.extfs`, …, `partclone.dd`).
    pub tool: String,
    /// The stored stream: partclone's image, zstd-compressed.
    pub stream: StreamDigest,
}

/// What a saved image holds: the disk it came from, its partition table, its first MiB and
/// one stream per partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    /// The disk's device name on the machine (`vda`, `sda`, `nvme0n1`).
    pub disk: String,
    /// The disk's size in bytes.
    pub disk_size: u64,
    /// The partition table's kind: `dos` or `gpt`.
    pub label: String,
    /// `sfdisk -d` of the disk.
    pub table: StreamDigest,
    /// The disk's first MiB.
    pub head: StreamDigest,
    /// The partitions, by number.
    pub parts: Vec<ImagePart>,
}

impl ImageManifest {
    /// Every stream by its name in the protocol (`table`, `head`, `p1`, …) with its digest.
    pub fn streams(&self) -> Vec<(String, &StreamDigest)> {
        let mut out = vec![
            ("table".to_string(), &self.table),
            ("head".to_string(), &self.head),
        ];
        out.extend(
            self.parts
                .iter()
                .map(|p| (format!("p{}", p.number), &p.stream)),
        );
        out
    }

    /// The stored bytes of every stream together.
    pub fn stored_bytes(&self) -> u64 {
        self.streams().iter().map(|(_, d)| d.bytes).sum()
    }
}

/// Saving or restoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageAction {
    /// A machine's disk saved as an image.
    Save,
    /// An image written to a machine's disk.
    Restore,
}

impl fmt::Display for ImageAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageAction::Save => "save",
            ImageAction::Restore => "restore",
        })
    }
}

/// An image name with an optional version: `lab` (the newest) or `lab@2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The image's name.
    pub name: String,
    /// The version, when one is named.
    pub version: Option<u32>,
}

impl ImageRef {
    /// Parse `NAME` or `NAME@VERSION`.
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        let (name, version) = match s.split_once('@') {
            Some((n, v)) => {
                let v: u32 =
                    v.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
                        format!("{s:?}: the version after '@' is a number from 1")
                    })?;
                (n, Some(v))
            }
            None => (s, None),
        };
        let name = crate::word(name, "image").map_err(|e| e.to_string())?;
        Ok(ImageRef { name, version })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One restore of an image version onto a machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    /// The machine.
    pub mac: Mac,
    /// When it reported success.
    pub at: Timestamp,
}

/// One saved version of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageVersion {
    /// The image's name.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// What it holds.
    pub manifest: ImageManifest,
    /// The machine it was saved from.
    pub from: Mac,
    /// When the save completed.
    pub at: Timestamp,
    /// Every successful restore from it, oldest first.
    pub restores: Vec<Restore>,
}

/// A named image: its versions, and the number the next save gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Complete versions, by number.
    pub versions: BTreeMap<u32, ImageVersion>,
    /// The highest version number ever started (a removed or failed one is never reused).
    pub last_started: u32,
}

impl Image {
    /// The newest complete version.
    pub fn newest(&self) -> Option<&ImageVersion> {
        self.versions.values().next_back()
    }
}

/// A save or restore in progress, from its start event to its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageJob {
    /// Saving or restoring.
    pub action: ImageAction,
    /// The image.
    pub image: String,
    /// The version being written or read.
    pub version: u32,
    /// When it started.
    pub at: Timestamp,
}

/// The image commands of [`crate::decide`].
pub(crate) fn decide(state: &State, cmd: Command) -> Result<Vec<Event>, Refusal> {
    match cmd {
        Command::StartImageSave { mac } => {
            let m = imaging_machine(state, &mac)?;
            let Policy::SaveImage { image } = booted_policy(state, m, ImageAction::Save)? else {
                unreachable!("booted_policy checks the kind")
            };
            let version = state.image(&image).map_or(0, |i| i.last_started) + 1;
            Ok(vec![Event::ImageSaveStarted {
                mac,
                image,
                version,
            }])
        }
        Command::FinishImageSave {
            mac,
            version,
            manifest,
        } => {
            let job = current_job(state, &mac, ImageAction::Save, version)?;
            Ok(vec![Event::ImageSaved {
                mac,
                image: job.image.clone(),
                version,
                manifest,
            }])
        }
        Command::StartImageRestore { mac } => {
            let m = imaging_machine(state, &mac)?;
            let Policy::RestoreImage { image } = booted_policy(state, m, ImageAction::Restore)?
            else {
                unreachable!("booted_policy checks the kind")
            };
            let r = ImageRef::parse(&image).map_err(Refusal::Invalid)?;
            let Some(v) = state.image_version(&r) else {
                return Err(Refusal::Invalid(format!(
                    "there is no saved image {r} to restore onto {mac}; save one first (`nmt \
                     policy MACHINE save-image:{} --once`), or see `nmt image list`",
                    r.name
                )));
            };
            Ok(vec![Event::ImageRestoreStarted {
                mac,
                image: v.name.clone(),
                version: v.version,
            }])
        }
        Command::FinishImageRestore {
            mac,
            version,
            digests,
        } => {
            let job = current_job(state, &mac, ImageAction::Restore, version)?;
            let image = job.image.clone();
            let Some(v) = state.image(&image).and_then(|i| i.versions.get(&version)) else {
                return Ok(vec![failed(
                    mac,
                    ImageAction::Restore,
                    &image,
                    version,
                    "the image version was removed during the restore".into(),
                )]);
            };
            let mut verified = Vec::new();
            for (stream, want) in v.manifest.streams() {
                match digests.get(&stream) {
                    Some(got) if got.eq_ignore_ascii_case(&want.sha256) => verified.push(stream),
                    Some(got) => {
                        let got = crate::observe::untrusted(got.as_bytes());
                        return Ok(vec![failed(
                            mac,
                            ImageAction::Restore,
                            &image,
                            version,
                            format!(
                                "stream {stream} read back as {got}, but the image holds {}",
                                want.sha256
                            ),
                        )]);
                    }
                    None => {
                        return Ok(vec![failed(
                            mac,
                            ImageAction::Restore,
                            &image,
                            version,
                            format!("the imager sent no digest for stream {stream}"),
                        )]);
                    }
                }
            }
            Ok(vec![Event::ImageRestored {
                mac,
                image,
                version,
                verified,
            }])
        }
        Command::FailImage {
            mac,
            version,
            reason,
        } => {
            let m = state.machine(&mac).ok_or(Refusal::NoSuchMachine(mac))?;
            let Some(job) = m.imaging.as_ref().filter(|j| j.version == version) else {
                return Err(Refusal::Invalid(format!(
                    "{mac} has no image save or restore of version {version} in progress"
                )));
            };
            let reason = crate::observe::untrusted(reason.trim().as_bytes());
            let reason = if reason.is_empty() {
                "no reason given".to_string()
            } else {
                reason
            };
            Ok(vec![failed(mac, job.action, &job.image, version, reason)])
        }
        Command::RemoveImage { image } => {
            let Some(i) = state.image(&image.name).filter(|i| !i.versions.is_empty()) else {
                return Err(Refusal::Invalid(format!(
                    "there is no image {:?}; `nmt image list` shows them",
                    image.name
                )));
            };
            let versions: Vec<u32> = match image.version {
                Some(v) if i.versions.contains_key(&v) => vec![v],
                Some(v) => {
                    return Err(Refusal::Invalid(format!(
                        "image {} has no version {v}; it has {}",
                        image.name,
                        i.versions
                            .keys()
                            .map(|v| format!("{}@{v}", image.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                None => i.versions.keys().copied().collect(),
            };
            let users = image_users(state, &image.name);
            if !users.is_empty() {
                return Err(Refusal::Invalid(format!(
                    "image {} is named by the policy of {}; change those policies first",
                    image.name,
                    users.join(", ")
                )));
            }
            if let Some(m) = state.machines().find(|m| {
                m.imaging
                    .as_ref()
                    .is_some_and(|j| j.image == image.name && versions.contains(&j.version))
            }) {
                return Err(Refusal::Invalid(format!(
                    "{} is saving or restoring image {} right now; wait for it to end",
                    m.mac, image.name
                )));
            }
            Ok(versions
                .into_iter()
                .map(|version| Event::ImageRemoved {
                    image: image.name.clone(),
                    version,
                })
                .collect())
        }
        other => unreachable!("not an image command: {other:?}"),
    }
}

fn failed(mac: Mac, action: ImageAction, image: &str, version: u32, reason: String) -> Event {
    Event::ImageFailed {
        mac,
        action,
        image: image.to_string(),
        version,
        reason,
    }
}

/// A machine an imager may speak for: known, and a real machine's MAC.
fn imaging_machine<'a>(state: &'a State, mac: &Mac) -> Result<&'a Machine, Refusal> {
    if let Some(why) = mac.not_a_machine() {
        return Err(Refusal::Invalid(why));
    }
    state.machine(mac).ok_or(Refusal::NoSuchMachine(*mac))
}

/// The save or restore policy a machine's imager acts on, if any: its entry says so now, or
/// the last entry it fetched did (the imager's own DHCP exchange ends a one-shot's boot).
pub fn imaging_policy(state: &State, m: &Machine) -> Option<Policy> {
    booted_policy(state, m, ImageAction::Save)
        .or_else(|_| booted_policy(state, m, ImageAction::Restore))
        .ok()
}

/// [`imaging_policy`] for one action, or why not.
fn booted_policy(state: &State, m: &Machine, action: ImageAction) -> Result<Policy, Refusal> {
    let wanted = |p: &Policy| match action {
        ImageAction::Save => matches!(p, Policy::SaveImage { .. }),
        ImageAction::Restore => matches!(p, Policy::RestoreImage { .. }),
    };
    let (policy, _) = state.served_policy(m);
    if wanted(&policy) {
        return Ok(policy);
    }
    if let Some(b) = m.last_boot.as_ref().filter(|b| wanted(&b.policy)) {
        return Ok(b.policy.clone());
    }
    Err(Refusal::Invalid(format!(
        "{} was not sent to the imager to {action} an image (its boot entry is {policy}); set \
         `nmt policy {} {}-image:NAME --once` first",
        m.mac, m.mac, action
    )))
}

/// The machine's job in progress, which must be `action` of `version`.
fn current_job<'a>(
    state: &'a State,
    mac: &Mac,
    action: ImageAction,
    version: u32,
) -> Result<&'a ImageJob, Refusal> {
    let m = imaging_machine(state, mac)?;
    m.imaging
        .as_ref()
        .filter(|j| j.action == action && j.version == version)
        .ok_or_else(|| {
            Refusal::Invalid(format!(
                "{mac} has no image {action} of version {version} in progress"
            ))
        })
}

/// Who names an image in a policy: machines (their own policy, a one-shot's fallback, a
/// one-shot booting now) and groups, as `MAC`/`NAME` and `@group`.
pub(crate) fn image_users(state: &State, name: &str) -> Vec<String> {
    let names = |p: &Policy| {
        p.image()
            .and_then(|i| ImageRef::parse(i).ok())
            .is_some_and(|r| r.name == name)
    };
    let mut out: Vec<String> = state
        .groups()
        .filter(|g| names(&g.policy))
        .map(|g| format!("@{}", g.name))
        .collect();
    for m in state.machines() {
        let own = m
            .policy
            .as_ref()
            .is_some_and(|o| names(&o.policy) || o.previous.as_ref().is_some_and(names));
        if own || m.booting.as_ref().is_some_and(names) {
            out.push(m.name.clone().unwrap_or_else(|| m.mac.to_string()));
        }
    }
    out
}

/// What a boot means for an image job still in progress: the machine was cut off (powered
/// off, reset, crashed) before its imager ended, so the job failed. `None` for any other
/// event. The ingest records it just before the boot itself.
pub fn interrupted(state: &State, event: &Event) -> Option<Event> {
    let Event::BootEntryUsed { mac, file, .. } = event else {
        return None;
    };
    let job = state.machine(mac)?.imaging.as_ref()?;
    Some(Event::ImageFailed {
        mac: *mac,
        action: job.action,
        image: job.image.clone(),
        version: job.version,
        reason: format!(
            "interrupted: the machine booted again (it fetched {}) before its {} ended",
            crate::observe::untrusted(file.as_bytes()),
            job.action
        ),
    })
}
