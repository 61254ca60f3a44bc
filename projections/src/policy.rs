//! Next-boot policies: what a machine is told to boot when it PXE-boots next.
//!
//! A policy is written and stored as one short word (`install:default`, `nfsroot:10.0.0.1:/srv/root`),
//! which is also how it appears in exports, so the journal stays readable.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names;

/// The name of the install profile that a bare `install` means.
pub const DEFAULT_INSTALL_PROFILE: &str = "default";

/// A next-boot policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// Boot the local disk (chain to the mapped root device, or the first disk).
    LocalBoot,
    /// Run the unattended installer of a profile.
    Install {
        /// The install profile's name.
        profile: String,
    },
    /// Boot the imager to save the disk as an image of this name.
    SaveImage {
        /// The image's name.
        image: String,
    },
    /// Boot the imager to restore an image of this name onto the disk.
    RestoreImage {
        /// The image's name.
        image: String,
    },
    /// Boot as an LTSP thin client.
    Ltsp,
    /// Boot diskless from an NFS root.
    NfsRoot {
        /// The NFS server (IPv4 address or host name).
        server: String,
        /// The exported path.
        export: String,
    },
    /// Boot a custom entry defined with `nmt profile add --kind custom`.
    Custom {
        /// The custom entry's name.
        entry: String,
    },
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a policy: {why}. Policies are localboot, install[:PROFILE], \
     save-image:NAME, restore-image:NAME, ltsp, nfsroot:SERVER:/EXPORT and custom:ENTRY"
)]
pub struct PolicyError {
    /// The refused text.
    pub input: String,
    /// What is wrong with it.
    pub why: String,
}

impl Policy {
    /// Whether a machine booting it erases its disk (an install, an image restored).
    pub fn erases_disk(&self) -> bool {
        matches!(self, Policy::Install { .. } | Policy::RestoreImage { .. })
    }

    /// The policy's kind as one word (`install`, `nfsroot`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Policy::LocalBoot => "localboot",
            Policy::Install { .. } => "install",
            Policy::SaveImage { .. } => "save-image",
            Policy::RestoreImage { .. } => "restore-image",
            Policy::Ltsp => "ltsp",
            Policy::NfsRoot { .. } => "nfsroot",
            Policy::Custom { .. } => "custom",
        }
    }

    /// The name of the profile whose kernel, initrd and arguments this policy boots, if any.
    pub fn profile_name(&self) -> Option<&str> {
        match self {
            Policy::LocalBoot => None,
            Policy::Install { profile } => Some(profile),
            Policy::SaveImage { .. } => Some("save-image"),
            Policy::RestoreImage { .. } => Some("restore-image"),
            Policy::Ltsp => Some("ltsp"),
            Policy::NfsRoot { .. } => Some("nfsroot"),
            Policy::Custom { entry } => Some(entry),
        }
    }

    /// The image name, for the imaging policies.
    pub fn image(&self) -> Option<&str> {
        match self {
            Policy::SaveImage { image } | Policy::RestoreImage { image } => Some(image),
            _ => None,
        }
    }
}

fn nfs_server_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.'))
}

fn nfs_export_ok(s: &str) -> bool {
    s.starts_with('/')
        && s.len() <= 1024
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'-' | b'_' | b'.'))
        && !s.split('/').any(|p| p == "..")
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| PolicyError {
            input: input.to_string(),
            why: why.to_string(),
        };
        let (kind, arg) = match input.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (input, None),
        };
        let word = |a: Option<&str>, what: &'static str| -> Result<String, PolicyError> {
            let a = a.ok_or_else(|| err(&format!("{kind} needs a {what} name, as {kind}:NAME")))?;
            names::word(a, what).map_err(|e| err(&e.to_string()))
        };
        match kind {
            "localboot" | "local" if arg.is_none() => Ok(Policy::LocalBoot),
            "install" => Ok(Policy::Install {
                profile: match arg {
                    None => DEFAULT_INSTALL_PROFILE.to_string(),
                    Some(_) => word(arg, "profile")?,
                },
            }),
            "save-image" => Ok(Policy::SaveImage {
                image: word(arg, "image")?,
            }),
            // An image and, optionally, one of its versions: `lab` (the newest) or `lab@2`.
            "restore-image" => {
                let a = arg.ok_or_else(|| {
                    err("restore-image needs an image name, as restore-image:NAME or NAME@VERSION")
                })?;
                let r = crate::ImageRef::parse(a).map_err(|e| err(&e))?;
                Ok(Policy::RestoreImage {
                    image: r.to_string(),
                })
            }
            "ltsp" if arg.is_none() => Ok(Policy::Ltsp),
            "nfsroot" => {
                let a = arg.ok_or_else(|| err("nfsroot needs SERVER:/EXPORT"))?;
                let (server, export) = a
                    .split_once(':')
                    .ok_or_else(|| err("nfsroot needs SERVER:/EXPORT"))?;
                if !nfs_server_ok(server) {
                    return Err(err("the NFS server must be an IPv4 address or a host name"));
                }
                if !nfs_export_ok(export) {
                    return Err(err(
                        "the export must be an absolute path of letters, digits, '/', '-', '_' and '.'",
                    ));
                }
                Ok(Policy::NfsRoot {
                    server: server.to_string(),
                    export: export.to_string(),
                })
            }
            "custom" => Ok(Policy::Custom {
                entry: word(arg, "entry")?,
            }),
            "localboot" | "local" | "ltsp" => Err(err(&format!("{kind} takes no argument"))),
            _ => Err(err(&format!("unknown policy kind {kind:?}"))),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::LocalBoot => f.write_str("localboot"),
            Policy::Install { profile } => write!(f, "install:{profile}"),
            Policy::SaveImage { image } => write!(f, "save-image:{image}"),
            Policy::RestoreImage { image } => write!(f, "restore-image:{image}"),
            Policy::Ltsp => f.write_str("ltsp"),
            Policy::NfsRoot { server, export } => write!(f, "nfsroot:{server}:{export}"),
            Policy::Custom { entry } => write!(f, "custom:{entry}"),
        }
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "localboot",
            "install:default",
            "install:ubuntu-24.04",
            "save-image:lab",
            "restore-image:lab-2026",
            "ltsp",
            "nfsroot:10.0.0.1:/srv/nfsroot/bookworm",
            "custom:memtest",
        ] {
            let p: Policy = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(
            "install".parse::<Policy>().unwrap(),
            Policy::Install {
                profile: "default".into()
            }
        );
    }

    #[test]
    fn refusals_say_what_is_allowed() {
        for s in [
            "",
            "boot",
            "install:",
            "install:a b",
            "save-image",
            "restore-image:",
            "ltsp:x",
            "localboot:sda",
            "nfsroot:10.0.0.1",
            "nfsroot:10.0.0.1:srv",
            "nfsroot:10.0.0.1:/srv/../etc",
            "nfsroot:a;b:/srv",
            "custom:",
            "custom:x\ny",
        ] {
            let e = s.parse::<Policy>().unwrap_err().to_string();
            assert!(e.contains("Policies are localboot"), "{s:?}: {e}");
        }
    }
}
