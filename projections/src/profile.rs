//! Boot profiles: what `install`, `ltsp`, `save-image`, `restore-image`, `nfsroot` and `custom`
//! policies boot into (kernel, initrds, kernel arguments, answer-file kind).
//!
//! Profiles are defined by admin commands and so are events; the defaults a new store starts
//! with are appended as ordinary `ProfileDefined` events. Every field is validated here so that
//! no profile text can break out of its line in any generated boot file.

use serde::{Deserialize, Serialize};

use crate::names;
use crate::preseed::{PreseedError, PreseedOptions};

/// What a profile is for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileKind {
    /// An unattended installer (`install:NAME`).
    Install,
    /// An LTSP thin client (`ltsp`).
    Ltsp,
    /// The imager that saves a disk (`save-image:IMAGE`).
    SaveImage,
    /// The imager that restores a disk (`restore-image:IMAGE`).
    RestoreImage,
    /// A diskless NFS root (`nfsroot:SERVER:/EXPORT`).
    NfsRoot,
    /// A custom entry (`custom:NAME`).
    Custom,
}

impl ProfileKind {
    /// All kinds, in display order.
    pub const ALL: [ProfileKind; 6] = [
        ProfileKind::Install,
        ProfileKind::Ltsp,
        ProfileKind::SaveImage,
        ProfileKind::RestoreImage,
        ProfileKind::NfsRoot,
        ProfileKind::Custom,
    ];

    /// The kind as the CLI spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProfileKind::Install => "install",
            ProfileKind::Ltsp => "ltsp",
            ProfileKind::SaveImage => "save-image",
            ProfileKind::RestoreImage => "restore-image",
            ProfileKind::NfsRoot => "nfsroot",
            ProfileKind::Custom => "custom",
        }
    }

    /// Parse the CLI spelling.
    pub fn parse(s: &str) -> Option<ProfileKind> {
        ProfileKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The answer-file format an install profile serves.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerKind {
    /// Debian/Ubuntu debian-installer preseed.
    Preseed,
    /// Red Hat family kickstart.
    Kickstart,
    /// Ubuntu autoinstall (cloud-init user-data).
    Autoinstall,
}

impl AnswerKind {
    /// The kind as the CLI spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            AnswerKind::Preseed => "preseed",
            AnswerKind::Kickstart => "kickstart",
            AnswerKind::Autoinstall => "autoinstall",
        }
    }

    /// Parse the CLI spelling.
    pub fn parse(s: &str) -> Option<AnswerKind> {
        [
            AnswerKind::Preseed,
            AnswerKind::Kickstart,
            AnswerKind::Autoinstall,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A boot profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Its name: what `install:NAME` or `custom:NAME` refers to; `ltsp`, `save-image`,
    /// `restore-image` and `nfsroot` for those policies.
    pub name: String,
    /// What it is for.
    pub kind: ProfileKind,
    /// The kernel, relative to the TFTP root or an `http://` URL.
    pub kernel: String,
    /// The initrds, in load order.
    #[serde(default)]
    pub initrd: Vec<String>,
    /// Kernel arguments; `{placeholders}` are filled in per machine (see [`PLACEHOLDERS`]).
    #[serde(default)]
    pub args: String,
    /// For install profiles: which answer file the installer fetches.
    // Always written (no skip_serializing_if): snapshots use a non-self-describing encoding.
    #[serde(default)]
    pub answer: Option<AnswerKind>,
    /// For install profiles: enable the installer's network console (SSH into a hung
    /// install), as Roger's remote machines need.
    #[serde(default)]
    pub network_console: bool,
    /// For preseed install profiles: what the preseed changes from nmt's defaults (mirror,
    /// locale, partitioning, packages, a late command, …) or a whole template; `None`: nmt's
    /// defaults.
    #[serde(default)]
    pub preseed: Option<Box<PreseedOptions>>,
}

/// The placeholders a profile's arguments may use, and what each becomes.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("mac", "the machine's MAC, aa:bb:cc:dd:ee:ff"),
    ("name", "the machine's name, or its MAC when it has none"),
    ("token", "the machine's report token"),
    (
        "server",
        "nmtd's machine-facing URL, e.g. http://10.0.0.1:8017",
    ),
    ("answer_url", "the URL of this machine's answer file"),
    (
        "report_url",
        "the URL the installer reports its root device to",
    ),
    ("image", "the image name of save-image/restore-image"),
    ("nfsroot", "SERVER:/EXPORT of an nfsroot policy"),
    ("profile", "the profile's name"),
    ("tftp_server", "the TFTP/next-server address"),
];

/// Why a profile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Bad profile name.
    #[error(transparent)]
    Name(#[from] names::NameError),
    /// Bad kernel or initrd path.
    #[error(
        "{0:?} is not a usable boot file path: use a path under the TFTP root (letters, digits, \
         '/', '.', '-', '_', '+', '~') or an http:// URL, with no '..'"
    )]
    Path(String),
    /// Bad kernel arguments.
    #[error("kernel arguments {args:?} refused: {why}")]
    Args {
        /// The arguments.
        args: String,
        /// What is wrong.
        why: String,
    },
    /// Answer kind on a non-install profile, or none on an install profile.
    #[error("{0}")]
    Answer(String),
    /// A preseed setting.
    #[error(transparent)]
    Preseed(#[from] PreseedError),
}

fn path_ok(p: &str) -> bool {
    let body = p
        .strip_prefix("http://")
        .or_else(|| p.strip_prefix("https://"))
        .or_else(|| p.strip_prefix("tftp://"))
        .unwrap_or(p);
    !body.is_empty()
        && p.len() <= 512
        && body.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'-' | b'_' | b'+' | b'~' | b':')
        })
        && !body.split('/').any(|s| s == "..")
}

/// Check kernel arguments: one line of printable ASCII with no quoting or shell characters,
/// and only known `{placeholders}`.
pub fn check_args(args: &str) -> Result<(), ProfileError> {
    let refuse = |why: String| ProfileError::Args {
        args: args.to_string(),
        why,
    };
    if args.len() > 2048 {
        return Err(refuse("longer than 2048 bytes".into()));
    }
    for (i, c) in args.char_indices() {
        let bad = !c.is_ascii()
            || c.is_ascii_control()
            || matches!(
                c,
                '"' | '\'' | '`' | '$' | '|' | '&' | '<' | '>' | '\\' | '#'
            );
        if bad {
            return Err(refuse(format!(
                "character {c:?} at byte {i} is not allowed (no quotes, '$', '|', '&', '<', \
                 '>', '\\', '#' or control characters)"
            )));
        }
    }
    let mut rest = args;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| refuse("a '{' has no matching '}'".into()))?;
        let key = &after[..close];
        if !PLACEHOLDERS.iter().any(|(k, _)| *k == key) {
            let known: Vec<&str> = PLACEHOLDERS.iter().map(|(k, _)| *k).collect();
            return Err(refuse(format!(
                "unknown placeholder {{{key}}}; known: {}",
                known.join(", ")
            )));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(refuse("a '}' has no matching '{'".into()));
    }
    Ok(())
}

impl Profile {
    /// Validate every field; the error says what to fix.
    pub fn validate(&self) -> Result<(), ProfileError> {
        names::word(&self.name, "profile")?;
        for p in std::iter::once(&self.kernel).chain(&self.initrd) {
            if !path_ok(p) {
                return Err(ProfileError::Path(p.clone()));
            }
        }
        check_args(&self.args)?;
        match (self.kind, self.answer) {
            (ProfileKind::Install, None) => Err(ProfileError::Answer(
                "an install profile needs --answer preseed, kickstart or autoinstall".into(),
            )),
            (ProfileKind::Install, Some(_)) | (_, None) => Ok(()),
            (_, Some(_)) => Err(ProfileError::Answer(
                "only install profiles take --answer".into(),
            )),
        }?;
        if self.network_console && self.kind != ProfileKind::Install {
            return Err(ProfileError::Answer(
                "only install profiles take --network-console".into(),
            ));
        }
        if let Some(p) = &self.preseed {
            if self.answer != Some(AnswerKind::Preseed) {
                return Err(ProfileError::Answer(
                    "only install profiles with --answer preseed take preseed settings                      (--mirror, --locale, --preseed-template, …)"
                        .into(),
                ));
            }
            p.validate()?;
        }
        Ok(())
    }

    /// The profiles a new store starts with: a Debian netboot installer tree laid out as
    /// Debian's `netboot.tar.gz` unpacks (`debian-installer/amd64/linux`), an Ubuntu
    /// autoinstall, a kickstart, LTSP, nmt's imager, and a generic NFS root.
    pub fn defaults() -> Vec<Profile> {
        let p = |name: &str,
                 kind,
                 kernel: &str,
                 initrd: &[&str],
                 args: &str,
                 answer: Option<AnswerKind>| Profile {
            name: name.into(),
            kind,
            kernel: kernel.into(),
            initrd: initrd.iter().map(|s| s.to_string()).collect(),
            args: args.into(),
            answer,
            network_console: false,
            preseed: None,
        };
        vec![
            p(
                "default",
                ProfileKind::Install,
                "debian-installer/amd64/linux",
                &["debian-installer/amd64/initrd.gz"],
                "auto=true priority=critical url={answer_url} interface=auto netcfg/dhcp_timeout=60 nmt.report={report_url} nmt.token={token}",
                Some(AnswerKind::Preseed),
            ),
            p(
                "ubuntu",
                ProfileKind::Install,
                "ubuntu/casper/vmlinuz",
                &["ubuntu/casper/initrd"],
                "ip=dhcp autoinstall ds=nocloud-net;s={server}/nocloud/{mac}/{token}/ cloud-config-url=/dev/null nmt.token={token}",
                Some(AnswerKind::Autoinstall),
            ),
            p(
                "kickstart",
                ProfileKind::Install,
                "rhel/images/pxeboot/vmlinuz",
                &["rhel/images/pxeboot/initrd.img"],
                "ip=dhcp inst.ks={answer_url} nmt.token={token}",
                Some(AnswerKind::Kickstart),
            ),
            p(
                "ltsp",
                ProfileKind::Ltsp,
                "ltsp/x86_64/vmlinuz",
                &["ltsp/ltsp.img", "ltsp/x86_64/initrd.img"],
                "ip=dhcp root=/dev/nfs nfsroot=/srv/ltsp ltsp.image=images/x86_64.img loop.max_part=9",
                None,
            ),
            p(
                "save-image",
                ProfileKind::SaveImage,
                "nmt/imager/vmlinuz",
                &["nmt/imager/initrd.img"],
                "nmt.mode=save nmt.image={image} nmt.server={server} nmt.mac={mac} nmt.token={token}",
                None,
            ),
            p(
                "restore-image",
                ProfileKind::RestoreImage,
                "nmt/imager/vmlinuz",
                &["nmt/imager/initrd.img"],
                "nmt.mode=restore nmt.image={image} nmt.server={server} nmt.mac={mac} nmt.token={token}",
                None,
            ),
            p(
                "nfsroot",
                ProfileKind::NfsRoot,
                "nfsroot/vmlinuz",
                &["nfsroot/initrd.img"],
                "root=/dev/nfs nfsroot={nfsroot} ip=dhcp rw",
                None,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        for p in Profile::defaults() {
            p.validate().unwrap_or_else(|e| panic!("{}: {e}", p.name));
        }
    }

    #[test]
    fn hostile_args_are_refused() {
        for bad in [
            "a\nb",
            "x\"y",
            "x'y",
            "$(reboot)",
            "a|b",
            "a && b",
            "a\\b",
            "{nope}",
            "{mac",
            "mac}",
            "é",
            "a # b",
        ] {
            assert!(check_args(bad).is_err(), "{bad:?}");
        }
        assert!(check_args("console=ttyS0,115200n8 url={answer_url} quiet").is_ok());
    }

    #[test]
    fn paths() {
        assert!(path_ok("debian-installer/amd64/linux"));
        assert!(path_ok("http://10.0.0.1:8080/vmlinuz"));
        for bad in [
            "",
            "../etc/passwd",
            "a/../../b",
            "a b",
            "a;b",
            "a\"b",
            "http://",
        ] {
            assert!(!path_ok(bad), "{bad:?}");
        }
    }
}
