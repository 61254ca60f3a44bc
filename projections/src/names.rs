//! Validated words that end up inside generated files: machine names, group names, profile
//! and image names, root devices.
//!
//! Each check keeps a value inside its place in every file format nmt writes (pxelinux, GRUB,
//! iPXE, dhcpd, dnsmasq, /etc/hosts), so the renderers never need to escape these.

use crate::Mac;

/// Why a word was refused; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Not a valid machine name.
    #[error(
        "{0:?} is not a valid machine name: use letters, digits and '-' (1-63 per label, \
         labels separated by '.', not starting or ending with '-'), such as node042 or lab07"
    )]
    Hostname(String),
    /// A name that reads as a MAC address would make ranges ambiguous.
    #[error(
        "{0:?} looks like a MAC address and cannot be a machine name; pick a word such as node042"
    )]
    LooksLikeMac(String),
    /// All digits, or a dotted quad: DHCP and hosts files would read it as a number or address.
    #[error(
        "{0:?} is all digits; DHCP and hosts files would read it as a number or an address, so start it with a letter, such as n{0}"
    )]
    Numeric(String),
    /// Not a valid group, profile or image name.
    #[error(
        "{0:?} is not a valid {1} name: use 1-64 letters, digits, '-', '_' or '.', starting \
         with a letter or digit"
    )]
    Word(String, &'static str),
    /// Not a root device nmt can hand to a boot loader.
    #[error(
        "{0:?} is not a root device: write a device path such as /dev/sda1, /dev/nvme0n1p2, \
         or UUID=…, PARTUUID=…, LABEL=…"
    )]
    RootDevice(String),
}

/// A machine name: an RFC 1123 host name, stored lowercase.
pub fn machine_name(s: &str) -> Result<String, NameError> {
    let lower = s.to_ascii_lowercase();
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if lower.is_empty() || lower.len() > 253 || !lower.split('.').all(ok_label) {
        return Err(NameError::Hostname(s.to_string()));
    }
    if Mac::parse(&lower).is_some() {
        return Err(NameError::LooksLikeMac(s.to_string()));
    }
    // All-digit names read as numbers (and dotted quads as addresses) in DHCP and hosts files.
    if lower
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(NameError::Numeric(s.to_string()));
    }
    Ok(lower)
}

/// A group, profile or image name (`kind` says which, for the message).
pub fn word(s: &str, kind: &'static str) -> Result<String, NameError> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(NameError::Word(s.to_string(), kind))
    }
}

/// A root device as an installer reports it: `/dev/…`, or `UUID=`, `PARTUUID=`, `LABEL=`.
pub fn root_device(s: &str) -> Result<String, NameError> {
    let s_trim = s.trim();
    let body_ok = |t: &str| {
        !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'-' | b'_' | b'.' | b':'))
    };
    let ok = if let Some(rest) = s_trim.strip_prefix("/dev/") {
        body_ok(rest) && !rest.split('/').any(|p| p == ".." || p.is_empty())
    } else if let Some((k, v)) = s_trim.split_once('=') {
        matches!(k, "UUID" | "PARTUUID" | "LABEL") && body_ok(v)
    } else {
        false
    };
    if ok {
        Ok(s_trim.to_string())
    } else {
        Err(NameError::RootDevice(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names() {
        assert_eq!(machine_name("Node042").unwrap(), "node042");
        assert_eq!(
            machine_name("lab-7.example.org").unwrap(),
            "lab-7.example.org"
        );
        for bad in [
            "", "-a", "a-", "a b", "a;b", "a\"b", "a{b}", "a\nb", "../x", "a..b", "é", "a_b",
        ] {
            assert!(machine_name(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            machine_name("52-54-00-00-00-01"),
            Err(NameError::LooksLikeMac(_))
        ));
        assert!(machine_name(&"a".repeat(64)).is_err());
        for numeric in ["123", "10.0.0.1", "1.2"] {
            assert!(
                matches!(machine_name(numeric), Err(NameError::Numeric(_))),
                "{numeric}"
            );
        }
        assert!(machine_name("1node").is_ok());
    }

    #[test]
    fn words() {
        assert!(word("dept-physics_2", "group").is_ok());
        for bad in ["", "-x", "a/b", "a b", "x;", "@g", "..", &"x".repeat(65)] {
            assert!(word(bad, "group").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn root_devices() {
        for ok in [
            "/dev/sda1",
            "/dev/nvme0n1p2",
            "/dev/mapper/vg-root",
            "/dev/disk/by-uuid/1234",
            "UUID=0b4b-11",
            "LABEL=root",
        ] {
            assert_eq!(root_device(ok).unwrap(), ok);
        }
        for bad in [
            "sda1",
            "/dev/",
            "/dev/../etc",
            "/dev/sda 1",
            "/dev/sda;reboot",
            "FOO=bar",
            "UUID=",
        ] {
            assert!(root_device(bad).is_err(), "{bad:?}");
        }
    }
}
