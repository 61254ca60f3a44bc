//! The installer password: generated at random when a store is created, shown once, and kept
//! only as its SHA-512 crypt hash (the form preseed, kickstart and autoinstall take).

use anyhow::{Result, anyhow};
use sha_crypt::{PasswordHasher, ShaCrypt};

/// Letters and digits that cannot be misread on a console (no 0/O, 1/l/I).
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const SALT_ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_from(alphabet: &[u8], n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n * 2];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(bytes
        .chunks(2)
        .map(|c| {
            let v = usize::from(u16::from_le_bytes([c[0], c[1]]));
            alphabet[v % alphabet.len()] as char
        })
        .collect())
}

/// A new random password, `xxxx-xxxx-xxxx-xxxx` (about 93 bits).
pub fn generate() -> Result<String> {
    let raw = random_from(ALPHABET, 16)?;
    Ok(raw
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ASCII"))
        .collect::<Vec<_>>()
        .join("-"))
}

/// The SHA-512 crypt hash of a password, with a random salt.
pub fn crypt(password: &str) -> Result<String> {
    let salt = random_from(SALT_ALPHABET, 16)?;
    let hash = ShaCrypt::default()
        .hash_password_with_salt(password.as_bytes(), salt.as_bytes())
        .map_err(|e| anyhow!("cannot hash the installer password: {e}"))?;
    Ok(hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_readable_and_hashes_are_sha512_crypt() {
        let p = generate().unwrap();
        assert_eq!(p.len(), 19);
        assert_ne!(p, generate().unwrap());
        let h = crypt(&p).unwrap();
        assert!(h.starts_with("$6$"), "{h}");
        assert_ne!(h, crypt(&p).unwrap(), "salted");
    }
}
