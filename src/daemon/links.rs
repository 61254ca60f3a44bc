//! One-time web login links (`nmt web-login`): the control socket, which knows its caller
//! from the peer credentials, hands out a random token; opening its link in a browser makes a
//! web session for that Unix user, with their `[access]` rights. Tokens live in memory only
//! (never in the event log), are used once, and expire after [`LINK_LIFE`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::app::Caller;

/// How long a login link may wait to be opened.
pub const LINK_LIFE: Duration = Duration::from_secs(60);
/// Links waiting at once (older ones are forgotten first).
const MAX_WAITING: usize = 256;
/// The path a link opens (`/login/link/TOKEN`).
pub const LINK_PATH: &str = "/login/link/";

/// The links handed out and not used yet.
pub struct LoginLinks {
    /// The web UI's `http://ADDR:PORT`, when it listens.
    url: Option<String>,
    waiting: Mutex<HashMap<String, (Caller, Instant)>>,
}

/// A random token (256 bits, hex).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the system's random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl LoginLinks {
    /// Links to the web UI at `url` (none: nmtd serves no web UI).
    pub fn new(url: Option<String>) -> LoginLinks {
        LoginLinks {
            url,
            waiting: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Caller, Instant)>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new link that logs `caller` in once, or why there is none.
    pub fn issue(&self, caller: &Caller) -> Result<String, String> {
        let Some(url) = &self.url else {
            return Err(
                "nmtd serves no web UI: start it with `nmtd --web 127.0.0.1:8018` (or set \
                 [web] listen in nmt.toml), then run `nmt web-login` again"
                    .into(),
            );
        };
        let token = random_token();
        let mut map = self.lock();
        map.retain(|_, (_, at)| at.elapsed() < LINK_LIFE);
        while map.len() >= MAX_WAITING {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(token.clone(), (caller.clone(), Instant::now()));
        Ok(format!("{url}{LINK_PATH}{token}"))
    }

    /// The user a link logs in, once: the token is gone afterwards, used or expired.
    pub fn redeem(&self, token: &str) -> Option<Caller> {
        let (caller, at) = self.lock().remove(token)?;
        (at.elapsed() < LINK_LIFE).then_some(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_once() {
        let links = LoginLinks::new(Some("http://127.0.0.1:1".into()));
        let who = Caller {
            uid: 1000,
            name: "andreas".into(),
        };
        let url = links.issue(&who).unwrap();
        let token = url.rsplit('/').next().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(links.redeem(token).unwrap().name, "andreas");
        assert!(links.redeem(token).is_none(), "used once");
        assert!(links.redeem("nope").is_none());
        assert!(LoginLinks::new(None).issue(&who).is_err());
    }
}
