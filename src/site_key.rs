//! The site key that report tokens derive from. It lives in `STATE/site-key` (mode 0600,
//! nmtd's user), never in the event log: a reader of the log, an export or a snapshot must
//! not be able to forge an install report. A store written before that carries its key in
//! its first event; it is copied into the file on first open, and used from there.

use std::path::Path;

use anyhow::{Context, Result, bail};
use nmt_projections::SiteKey;

/// The file in the state directory that holds the site key.
pub const SITE_KEY_FILE: &str = "site-key";

/// The state directory's site key: from its file; else the one `logged` in an old store's
/// first event, kept in the file from now on; else a new random one, when `new` allows
/// (`None` otherwise).
pub fn load(state_dir: &Path, logged: Option<&str>, new: bool) -> Result<Option<SiteKey>> {
    let path = state_dir.join(SITE_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match SiteKey::new(&text) {
            Some(k) => return Ok(Some(k)),
            None => bail!(
                "{} does not hold a site key (64 hex digits); restore it from a backup, or \
                 remove it to make a new one (machines installing now must then start again)",
                path.display()
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("while reading {}", path.display())),
    }
    let key = match logged.and_then(SiteKey::new) {
        Some(k) => k,
        None if new => generate()?,
        None => return Ok(None),
    };
    crate::files::write_private(&path, format!("{}\n", key.as_str()).as_bytes())?;
    Ok(Some(key))
}

/// 32 random bytes, hex.
fn generate() -> Result<SiteKey> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    Ok(SiteKey::new(&hex).expect("64 hex digits"))
}
