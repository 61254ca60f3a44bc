//! Per-machine report tokens: HMAC-SHA256 of the MAC under the site key, so they are a pure
//! function of the journal (an imported journal renders the same boot entries).

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::Mac;

/// The token nmt puts in a machine's boot entry and expects back in its install report:
/// 32 lowercase hex characters.
pub fn report_token(site_key: &str, mac: &Mac) -> String {
    let mut h = <Hmac<Sha256>>::new_from_slice(site_key.as_bytes()).expect("any key length");
    h.update(b"nmt-report-token-v1:");
    h.update(&mac.bytes());
    let out = h.finalize().into_bytes();
    out[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Compare a presented token with the expected one in constant time.
pub fn token_matches(site_key: &str, mac: &Mac, presented: &str) -> bool {
    let want = report_token(site_key, mac);
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
    fn tokens_are_per_machine_and_per_site() {
        let a: Mac = "52:54:00:00:00:01".parse().unwrap();
        let b: Mac = "52:54:00:00:00:02".parse().unwrap();
        let t = report_token("k1", &a);
        assert_eq!(t.len(), 32);
        assert_eq!(t, report_token("k1", &a));
        assert_ne!(t, report_token("k1", &b));
        assert_ne!(t, report_token("k2", &a));
        assert!(token_matches("k1", &a, &t));
        assert!(!token_matches("k1", &b, &t));
        assert!(!token_matches("k1", &a, ""));
    }
}
