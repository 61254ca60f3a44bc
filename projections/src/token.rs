//! Per-machine report tokens: HMAC-SHA256, under the site key, of the MAC and the machine's
//! install generation (when its last install report came), so a token stops working once
//! its install has reported: a token seen on the network (boot entries travel by TFTP) is
//! good for one install at most.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::Mac;

/// The site key: 32 random bytes, hex. Kept in a file beside the store, never in the log;
/// its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SiteKey(String);

impl SiteKey {
    /// A key from its hex text; `None` for an empty or non-hex one (never use a key anyone
    /// could guess).
    pub fn new(hex: &str) -> Option<SiteKey> {
        let hex = hex.trim();
        (hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| SiteKey(hex.to_ascii_lowercase()))
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteKey(…)")
    }
}

/// The token nmt puts in a machine's boot entry and expects back in its install report:
/// 32 lowercase hex characters. `generation` is [`crate::Machine::install_generation`].
pub fn report_token(site_key: &str, mac: &Mac, generation: i64) -> String {
    let mut h = <Hmac<Sha256>>::new_from_slice(site_key.as_bytes()).expect("any key length");
    h.update(b"nmt-report-token-v2:");
    h.update(&mac.bytes());
    h.update(&generation.to_be_bytes());
    let out = h.finalize().into_bytes();
    out[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Compare a presented token with the expected one in constant time. An empty key matches
/// nothing.
pub fn token_matches(site_key: &str, mac: &Mac, generation: i64, presented: &str) -> bool {
    if site_key.is_empty() {
        return false;
    }
    let want = report_token(site_key, mac, generation);
    want.len() == presented.len()
        && want
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_per_machine_per_site_and_per_install() {
        let a: Mac = "52:54:00:00:00:01".parse().unwrap();
        let b: Mac = "52:54:00:00:00:02".parse().unwrap();
        let t = report_token("k1", &a, 0);
        assert_eq!(t.len(), 32);
        assert_eq!(t, report_token("k1", &a, 0));
        assert_ne!(t, report_token("k1", &b, 0));
        assert_ne!(t, report_token("k2", &a, 0));
        assert_ne!(t, report_token("k1", &a, 1), "a new install, a new token");
        assert!(token_matches("k1", &a, 0, &t));
        assert!(!token_matches("k1", &a, 1, &t));
        assert!(!token_matches("k1", &b, 0, &t));
        assert!(!token_matches("k1", &a, 0, ""));
        let empty = report_token("", &a, 0);
        assert!(
            !token_matches("", &a, 0, &empty),
            "an empty key matches nothing"
        );
    }

    #[test]
    fn a_site_key_is_long_hex_and_never_shown() {
        assert!(SiteKey::new("").is_none());
        assert!(SiteKey::new("k").is_none());
        assert!(SiteKey::new(&"g".repeat(64)).is_none());
        let k = SiteKey::new(&"AB".repeat(32)).unwrap();
        assert_eq!(k.as_str(), "ab".repeat(32));
        assert_eq!(format!("{k:?}"), "SiteKey(…)");
    }
}
