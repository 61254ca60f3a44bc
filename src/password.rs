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

/// The SHA-512 crypt hash of a password, with a random salt, as crypt(3) writes it.
///
/// `sha_crypt` writes the salt it is given Base64-encoded and hashes over that text, of which
/// SHA-crypt uses at most 16 characters. crypt(3) (glibc, libxcrypt: PAM, sshd, the
/// installers) writes back only those 16, and compares whole strings; so the salt here is 12
/// random bytes, whose encoding is exactly 16 characters.
pub fn crypt(password: &str) -> Result<String> {
    let mut salt = [0u8; 12];
    getrandom::fill(&mut salt).map_err(|e| anyhow!("no randomness: {e}"))?;
    let hash = ShaCrypt::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
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

    /// What a real crypt(3) makes of the password with the salt nmt wrote is exactly nmt's
    /// string: `openssl passwd -6` (the same SHA-crypt as glibc and libxcrypt).
    #[test]
    fn hashes_are_what_crypt3_writes() {
        for p in ["KW7f-naQX-dvjM-Nneu", "x", "pass word with spaces"] {
            let h = crypt(p).unwrap();
            let parts: Vec<&str> = h.split('$').collect();
            // "", "6", ["rounds=5000",] salt, hash
            let salt = parts[parts.len() - 2];
            assert_eq!(salt.len(), 16, "{h}");
            let out = std::process::Command::new("openssl")
                .args(["passwd", "-6", "-salt", salt, p])
                .output()
                .expect("openssl (apt-get install openssl)");
            assert!(out.status.success());
            let theirs = String::from_utf8(out.stdout).unwrap();
            let theirs = theirs.trim();
            assert_eq!(
                h.replace("$rounds=5000$", "$"),
                theirs,
                "crypt(3) must accept nmt's hash"
            );
        }
    }
}
