//! The installer password: generated at random when a store is created, and recorded only as
//! its SHA-512 crypt hash (the form preseed, kickstart and autoinstall take). Until an admin
//! acknowledges it (`nmt installer-password ack`), the plain password waits in
//! [`PENDING_FILE`] in the state directory (mode 0600, owned by whoever created the store):
//! it never enters the event log, and it is never lost because nobody saw it.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
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

/// The file in the state directory that holds a generated password until it is acknowledged.
pub const PENDING_FILE: &str = "installer-password";

/// Keep a generated password in the state directory until it is acknowledged (mode 0600,
/// synced before its hash is recorded).
pub fn keep_pending(state_dir: &Path, password: &str) -> Result<()> {
    crate::files::write_private(
        &state_dir.join(PENDING_FILE),
        format!("{password}\n").as_bytes(),
    )
}

/// The generated password waiting to be acknowledged, if one is.
pub fn pending(state_dir: &Path) -> Result<Option<String>> {
    let path = state_dir.join(PENDING_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s.trim().to_string()).filter(|p| !p.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("while reading {}", path.display())),
    }
}

/// Forget the waiting password (it was acknowledged, or replaced); whether there was one.
pub fn forget_pending(state_dir: &Path) -> Result<bool> {
    let path = state_dir.join(PENDING_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("while removing {}", path.display())),
    }
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
