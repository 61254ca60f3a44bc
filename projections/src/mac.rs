//! The MAC address, the key of every machine.
//!
//! Stored and printed lowercase with colons; accepted on input with `:`, `-` or `.` separators
//! (including Cisco's `aabb.ccdd.eeff`), in any case. Nothing else is accepted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 48-bit Ethernet address.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac([u8; 6]);

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a MAC address; write six hex pairs such as 52:54:00:12:34:56 \
     (52-54-00-12-34-56 and 5254.0012.3456 are accepted too)"
)]
pub struct MacError {
    /// The text that was refused.
    pub input: String,
}

impl Mac {
    /// The address from its six bytes.
    pub const fn new(bytes: [u8; 6]) -> Self {
        Mac(bytes)
    }

    /// The six bytes.
    pub const fn bytes(&self) -> [u8; 6] {
        self.0
    }

    /// The address as a number (for compact index keys).
    pub fn as_u64(&self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }

    /// The address from the low 48 bits of a number.
    pub fn from_u64(v: u64) -> Self {
        let b = v.to_be_bytes();
        Mac([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// `aa-bb-cc-dd-ee-ff`, as pxelinux and GRUB name per-machine files (after `01-`).
    pub fn dashed(&self) -> String {
        String::from_utf8(self.text(b'-').to_vec()).expect("hex is ASCII")
    }

    /// `aabbccddeeff`.
    pub fn bare(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Why this address cannot be a machine's, or `None` for a machine's own (unicast,
    /// not all zero). Admin input (`machine add`, node tables, noderanges) is refused with
    /// it; a DHCP log line naming such an address is ignored by discovery. Parsing itself
    /// accepts every address, so events written before this rule still decode.
    pub fn not_a_machine(&self) -> Option<String> {
        let why = if self.0 == [0xff; 6] {
            "the broadcast address"
        } else if self.0 == [0; 6] {
            "all zero"
        } else if self.0[0] & 1 == 1 {
            "a multicast address (the first octet's low bit is set)"
        } else {
            return None;
        };
        Some(format!(
            "{self} is {why}, which no network card has as its own; give the machine's MAC \
             as its label or `ip link` shows it, e.g. 52:54:00:12:34:56"
        ))
    }

    /// Parse any accepted spelling; `None` when it is not a MAC.
    pub fn parse(s: &str) -> Option<Mac> {
        let s = s.trim();
        let hex = |c: u8| -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            }
        };
        let b = s.as_bytes();
        let mut out = [0u8; 6];
        match b.len() {
            // aa:bb:cc:dd:ee:ff or aa-bb-... or aa.bb....: one separator used throughout
            17 => {
                let sep = b[2];
                if !matches!(sep, b':' | b'-' | b'.') {
                    return None;
                }
                for (i, o) in out.iter_mut().enumerate() {
                    let p = i * 3;
                    if i > 0 && b[p - 1] != sep {
                        return None;
                    }
                    *o = hex(b[p])? << 4 | hex(b[p + 1])?;
                }
                Some(Mac(out))
            }
            // aabb.ccdd.eeff
            14 => {
                if b[4] != b'.' || b[9] != b'.' {
                    return None;
                }
                let digits: Vec<u8> = b.iter().copied().filter(|c| *c != b'.').collect();
                if digits.len() != 12 {
                    return None;
                }
                for (i, o) in out.iter_mut().enumerate() {
                    *o = hex(digits[2 * i])? << 4 | hex(digits[2 * i + 1])?;
                }
                Some(Mac(out))
            }
            _ => None,
        }
    }
}

impl FromStr for Mac {
    type Err = MacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mac::parse(s).ok_or_else(|| MacError {
            input: s.to_string(),
        })
    }
}

impl Mac {
    /// The text form into a fixed buffer, without the formatting machinery (renderers print
    /// tens of thousands of these).
    fn text(&self, sep: u8) -> [u8; 17] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [sep; 17];
        for (i, b) in self.0.iter().enumerate() {
            out[i * 3] = HEX[usize::from(b >> 4)];
            out[i * 3 + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.text(b':');
        f.write_str(std::str::from_utf8(&t).expect("hex is ASCII"))
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let t = self.text(b':');
            s.serialize_str(std::str::from_utf8(&t).expect("hex is ASCII"))
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = crate::event::Text::deserialize(d)?;
            s.0.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(Mac(<[u8; 6]>::deserialize(d)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_spelling() {
        let want = "52:54:00:ab:cd:ef";
        for s in [
            "52:54:00:ab:cd:ef",
            "52:54:00:AB:CD:EF",
            "52-54-00-ab-cd-ef",
            "52.54.00.AB.CD.EF",
            "5254.00ab.cdef",
            " 52:54:00:ab:cd:ef ",
        ] {
            assert_eq!(s.parse::<Mac>().unwrap().to_string(), want, "{s}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for s in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:ef:00",
            "52:54-00:ab:cd:ef",
            "5254:00ab:cdef",
            "52:54:00:ab:cd:eg",
            "525400abcdef",
            "node01",
            "52:54:00:ab:cd:e",
        ] {
            let err = s.parse::<Mac>().unwrap_err();
            assert!(err.to_string().contains("is not a MAC"), "{s}");
        }
    }

    #[test]
    fn item_13_multicast_broadcast_and_zero_macs_are_not_a_machines() {
        for s in [
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
            "01:00:5e:00:00:01",
            "33:33:00:00:00:01",
        ] {
            let m: Mac = s.parse().unwrap();
            assert!(m.not_a_machine().is_some(), "{s}");
        }
        for s in [
            "52:54:00:12:34:56",
            "02:00:00:00:00:01",
            "00:00:00:00:00:01",
        ] {
            let m: Mac = s.parse().unwrap();
            assert_eq!(m.not_a_machine(), None, "{s}");
        }
    }

    #[test]
    fn forms_for_file_names() {
        let m: Mac = "52:54:00:0a:0b:0c".parse().unwrap();
        assert_eq!(m.dashed(), "52-54-00-0a-0b-0c");
        assert_eq!(m.bare(), "5254000a0b0c");
        assert_eq!(Mac::from_u64(m.as_u64()), m);
    }

    #[test]
    fn serde_is_a_string_for_humans() {
        let m: Mac = "52:54:00:0a:0b:0c".parse().unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"52:54:00:0a:0b:0c\"");
        let back: Mac = serde_json::from_str("\"52-54-00-0A-0B-0C\"").unwrap();
        assert_eq!(back, m);
    }
}
