//! Who is asking, and may they: sessions (a random id in an HttpOnly cookie), logins
//! (a one-time link from `nmt web-login`, or a password from `[web.users]`, argon2 hashes
//! checked a few at a time with a back-off after failures), and the guard every request
//! passes: only known host names (no DNS rebinding), a login for every change (and for every
//! page off loopback), every POST with its session's CSRF token and no foreign `Origin`, and
//! headers that forbid framing, inline script and sniffing on every answer.
//!
//! What a logged-in user may change is decided later, by the daemon's `[access]` rules.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::{Web, WebAuth, page};
use crate::app::Caller;
use crate::daemon::links::LINK_PATH;

const COOKIE: &str = "nmt_session";
/// A session unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// The largest form body accepted (a node table of some ten thousand rows fits).
const MAX_FORM: usize = 8 * 1024 * 1024;

/// A message for the next page shown to a session: what an action did, or why not.
#[derive(Clone, Debug)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

/// Who a session is logged in as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebUser {
    /// The name `[access]` rules match and events record (`NAME via web`).
    pub name: String,
    /// The Unix uid of a `nmt web-login` user; [`NO_UID`] for a `[web.users]` login.
    pub uid: u32,
}

/// A uid no user has: `[web.users]` logins are matched by name only.
pub const NO_UID: u32 = u32::MAX;

impl WebUser {
    /// The caller the access rules judge.
    pub fn caller(&self) -> Caller {
        Caller {
            uid: self.uid,
            name: self.name.clone(),
        }
    }
}

struct Session {
    user: Option<WebUser>,
    csrf: String,
    flash: Option<Flash>,
    /// The machines ticked when the last action on them was sent, ticked again on the
    /// machines page it leads to.
    selected: Vec<String>,
    /// An action that makes machines erase their disks (or removes several), shown on a
    /// confirmation page and waiting for its answer.
    pending: Option<Pending>,
    /// The results of the last power action, for the next page.
    power: Option<super::power::Done>,
    seen: Instant,
}

/// An action waiting for its confirmation: what it is, the machines it was shown to reach
/// (it is performed only if it still reaches exactly them), and where to go after.
#[derive(Clone, Debug)]
pub struct Pending {
    pub action: crate::app::Action,
    pub at_risk: std::collections::BTreeSet<nmt_projections::Mac>,
    pub back: String,
}

/// The sessions of this run (a restart logs everyone out).
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// The request's session, as handlers see it.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The session id.
    pub sid: String,
    /// The token every form carries.
    pub csrf: String,
    /// The logged-in user, if any (without one, nothing can be changed).
    pub user: Option<WebUser>,
}

/// A POSTed form's fields, in order (a field may repeat: `mac=…&mac=…`).
#[derive(Clone, Debug, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of a field, trimmed; `None` when missing or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every value of a field.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// A file sent with a `multipart/form-data` form.
#[derive(Clone, Debug)]
pub struct Upload {
    /// The form field it came in.
    pub field: String,
    /// The name the browser gave (may be empty).
    pub filename: String,
    /// Its bytes, whole: a multipart body without its closing delimiter is refused.
    pub bytes: Vec<u8>,
}

/// The files a `multipart/form-data` form carried (empty for other forms).
#[derive(Clone, Debug, Default)]
pub struct Uploads(pub Vec<Upload>);

impl Uploads {
    /// The file sent in `field`, if one was chosen.
    pub fn get(&self, field: &str) -> Option<&Upload> {
        self.0
            .iter()
            .find(|u| u.field == field && !(u.filename.is_empty() && u.bytes.is_empty()))
    }
}

fn random_id() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the system's random source works");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compare secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, sid: &str) -> Option<Ctx> {
        let mut map = self.lock();
        let s = map.get_mut(sid)?;
        if s.seen.elapsed() > IDLE {
            map.remove(sid);
            return None;
        }
        s.seen = Instant::now();
        Some(Ctx {
            sid: sid.to_string(),
            csrf: s.csrf.clone(),
            user: s.user.clone(),
        })
    }

    fn create(&self, user: Option<WebUser>) -> Ctx {
        let mut map = self.lock();
        if map.len() > 4096 {
            map.retain(|_, s| s.seen.elapsed() < IDLE);
        }
        if map.len() > 65536 {
            // Someone is minting sessions: forget the anonymous ones first.
            map.retain(|_, s| s.user.is_some());
        }
        let ctx = Ctx {
            sid: random_id(),
            csrf: random_id(),
            user,
        };
        map.insert(
            ctx.sid.clone(),
            Session {
                user: ctx.user.clone(),
                csrf: ctx.csrf.clone(),
                flash: None,
                selected: Vec::new(),
                pending: None,
                power: None,
                seen: Instant::now(),
            },
        );
        ctx
    }

    fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }

    /// Leave a message for the session's next page.
    pub fn flash(&self, sid: &str, flash: Flash) {
        if let Some(s) = self.lock().get_mut(sid) {
            s.flash = Some(flash);
        }
    }

    /// The message left for this page, once.
    pub fn take_flash(&self, sid: &str) -> Option<Flash> {
        self.lock().get_mut(sid).and_then(|s| s.flash.take())
    }

    /// Keep which machines were ticked for the session's next machines page.
    pub fn keep_selection(&self, sid: &str, macs: Vec<String>) {
        if let Some(s) = self.lock().get_mut(sid) {
            s.selected = macs;
        }
    }

    /// Keep an action for its confirmation page.
    pub fn keep_pending(&self, sid: &str, pending: Pending) {
        if let Some(s) = self.lock().get_mut(sid) {
            s.pending = Some(pending);
        }
    }

    /// The action waiting for confirmation, once.
    pub fn take_pending(&self, sid: &str) -> Option<Pending> {
        self.lock().get_mut(sid).and_then(|s| s.pending.take())
    }

    /// Keep a power action's results for the session's next page.
    pub fn keep_power(&self, sid: &str, done: super::power::Done) {
        if let Some(s) = self.lock().get_mut(sid) {
            s.power = Some(done);
        }
    }

    /// The results of the last power action, once.
    pub fn take_power(&self, sid: &str) -> Option<super::power::Done> {
        self.lock().get_mut(sid).and_then(|s| s.power.take())
    }

    /// The machines ticked before the last action, once.
    pub fn take_selection(&self, sid: &str) -> Vec<String> {
        self.lock()
            .get_mut(sid)
            .map(|s| std::mem::take(&mut s.selected))
            .unwrap_or_default()
    }
}

/// Password checks that may run at once: each takes argon2's 19 MiB for a moment, on a
/// blocking thread.
const CHECKS_AT_ONCE: usize = 2;
/// Password checks that may wait for their turn; more are refused (503) at once.
const CHECKS_WAITING: usize = 64;
/// Failed logins allowed (per address and per user name) before the back-off begins.
const FREE_FAILURES: u32 = 5;
/// The longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Entries kept about failed logins (a flood of names forgets the oldest first).
const MAX_TRACKED: usize = 10_000;

/// Who failed to log in lately, from one address or as one user name.
#[derive(Clone, Debug, Default)]
struct Failures {
    /// Failures in a row (a success forgets them).
    count: u32,
    /// Checks under way.
    pending: u32,
    /// Refused until then.
    until: Option<Instant>,
    last: Option<Instant>,
}

/// Password logins: how many are checked at once, and the back-off after failures.
pub struct Logins {
    checks: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    failures: Mutex<HashMap<String, Failures>>,
}

impl Default for Logins {
    fn default() -> Logins {
        Logins {
            checks: Arc::new(tokio::sync::Semaphore::new(CHECKS_AT_ONCE)),
            waiting: AtomicUsize::new(0),
            failures: Mutex::new(HashMap::new()),
        }
    }
}

/// How long a key is refused after its `count`th failure in a row: nothing for the first
/// [`FREE_FAILURES`] - 1, then 2 s, doubling up to [`MAX_BACKOFF`].
fn backoff(count: u32) -> Option<Duration> {
    (count >= FREE_FAILURES).then(|| {
        let doublings = (count - FREE_FAILURES).min(16);
        (Duration::from_secs(2) * 2u32.pow(doublings)).min(MAX_BACKOFF)
    })
}

impl Logins {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start an attempt for these keys (`ip:…`, `user:…`), or why not: a key that failed
    /// too often lately waits out its back-off, and attempts already under way count as
    /// failures until they are decided (a burst cannot outrun the count).
    /// On refusal, how long to wait.
    fn begin(&self, keys: Vec<String>) -> Result<Attempt<'_>, Duration> {
        let now = Instant::now();
        let mut map = self.lock();
        let mut wait = Duration::ZERO;
        for k in &keys {
            if let Some(f) = map.get(k) {
                if let Some(until) = f.until.filter(|u| *u > now) {
                    wait = wait.max(until - now);
                } else if f.pending > 0 && f.count + f.pending >= FREE_FAILURES {
                    // The checks under way may end the free tries (or a back-off's one).
                    wait = wait.max(Duration::from_secs(1));
                }
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        if map.len() >= MAX_TRACKED {
            map.retain(|_, f| f.pending > 0 || f.until.is_some_and(|u| u > now));
            if map.len() >= MAX_TRACKED {
                let mut old: Vec<(String, Option<Instant>)> =
                    map.iter().map(|(k, f)| (k.clone(), f.last)).collect();
                old.sort_by_key(|(_, last)| *last);
                for (k, _) in old.into_iter().take(MAX_TRACKED / 2) {
                    map.remove(&k);
                }
            }
        }
        for k in &keys {
            map.entry(k.clone()).or_default().pending += 1;
        }
        Ok(Attempt {
            logins: self,
            keys,
            decided: false,
        })
    }

    /// An attempt on these keys ended: decided (`Some(ok)`), or abandoned.
    fn end(&self, keys: &[String], ok: Option<bool>) {
        let now = Instant::now();
        let mut map = self.lock();
        for k in keys {
            let f = map.entry(k.clone()).or_default();
            f.pending = f.pending.saturating_sub(1);
            if ok.is_none() {
                // Abandoned (the client went away): neither a failure nor a success.
            } else if ok == Some(true) {
                f.count = 0;
                f.until = None;
            } else {
                f.count += 1;
                f.last = Some(now);
                f.until = backoff(f.count).map(|d| now + d);
            }
            if f.count == 0 && f.pending == 0 {
                map.remove(k);
            }
        }
    }
}

/// A login attempt under way; dropped undecided, it counts for nothing.
struct Attempt<'a> {
    logins: &'a Logins,
    keys: Vec<String>,
    decided: bool,
}

impl Attempt<'_> {
    fn decide(mut self, ok: bool) {
        self.decided = true;
        self.logins.end(&self.keys, Some(ok));
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.decided {
            self.logins.end(&self.keys, None);
        }
    }
}

impl Logins {
    /// Check `password` against `hash` off the async threads, at most [`CHECKS_AT_ONCE`] at
    /// a time; `None` when too many wait already.
    async fn check(&self, hash: String, password: String) -> Option<bool> {
        /// One check waiting for its turn, counted until dropped (also when its client
        /// goes away meanwhile).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= CHECKS_WAITING {
            return None;
        }
        let permit = self.checks.clone().acquire_owned().await;
        drop(waiting);
        let permit = permit.ok()?;
        // The permit goes with the check: it is given back when the check ends, even if its
        // client has gone away meanwhile.
        let ok = tokio::task::spawn_blocking(move || {
            let ok = verify(&hash, &password);
            drop(permit);
            ok
        })
        .await
        .unwrap_or(false);
        Some(ok)
    }
}

/// The argon2 hash of a password, in PHC form, for `[web.users]`.
pub fn hash_password(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(anyhow!("the password is empty; give one on standard input"));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow!("bad salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow!("cannot hash the password: {e}"))?
        .to_string())
}

/// Refuse a configured hash that is not an argon2 PHC string.
pub fn check_hash(user: &str, hash: &str) -> Result<()> {
    match PasswordHash::new(hash) {
        Ok(h) if h.algorithm.as_str().starts_with("argon2") => Ok(()),
        _ => Err(anyhow!(
            "[web.users] {user}: {hash:?} is not an argon2 hash ($argon2id$…); make one with \
             `nmtd --hash-password`"
        )),
    }
}

/// Argon2's working memory (19 MiB for the default hash), kept for the next check: at
/// most [`CHECKS_AT_ONCE`] of them exist, whichever thread checks. (Allocated afresh for
/// each check, the freed memory stayed in the allocator's per-thread arenas: a burst of
/// logins on many blocking threads kept hundreds of MiB.)
static MEMORY: Mutex<Vec<Vec<argon2::Block>>> = Mutex::new(Vec::new());

/// Whether `password` matches the argon2 PHC `hash`.
fn verify(hash: &str, password: &str) -> bool {
    let Ok(h) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        argon2::Algorithm::try_from(h.algorithm),
        argon2::Params::try_from(&h),
        h.salt,
        h.hash,
    ) else {
        return false;
    };
    let Ok(version) = h
        .version
        .map(argon2::Version::try_from)
        .transpose()
        .map(Option::unwrap_or_default)
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let mut memory = MEMORY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let done = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut memory[..],
    );
    let mut pool = MEMORY.lock().unwrap_or_else(|p| p.into_inner());
    if pool.len() < CHECKS_AT_ONCE {
        pool.push(memory);
    }
    drop(pool);
    done.is_ok()
        && out.len() == expected.as_bytes().len()
        && out
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(resp: &mut Response, sid: &str) {
    if let Ok(v) = format!("{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The host name a Host header names (without its port; an IPv6 address without brackets),
/// lowercase.
fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    Some(name.to_ascii_lowercase())
}

/// Whether a Host header names this listener: on loopback, this machine itself (localhost
/// or a loopback address); anywhere, the listener's own address or a name in `[web] hosts`.
/// A page elsewhere cannot rebind a DNS name of its own to this address and read it.
fn known_host(headers: &HeaderMap, loopback: bool, hosts: &[String]) -> bool {
    let Some(name) = host_name(headers) else {
        return false;
    };
    if name.is_empty() {
        return false;
    }
    let ip = name.parse::<IpAddr>().ok();
    (loopback && (name == "localhost" || ip.is_some_and(|ip| ip.is_loopback())))
        || hosts
            .iter()
            .any(|h| *h == name || ip.is_some_and(|ip| h.parse::<IpAddr>().is_ok_and(|h| h == ip)))
}

/// At most `max` characters of what a client sent, for quoting it in an answer.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}… ({} bytes in all)", &text[..at], text.len()),
    }
}

/// What every answer carries: no framing (clickjacking), no script but the UI's own file,
/// no referrer leaving the site (`same-origin`: browsers send `Origin: null` with forms under
/// `no-referrer`), no content sniffing.
fn secure(resp: &mut Response) {
    const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                       base-uri 'none'; frame-ancestors 'none'";
    let h = resp.headers_mut();
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
}

/// A refusal page (403 unless told otherwise).
pub fn refuse(status: StatusCode, why: &str) -> Response {
    let body = page::bare(
        "Refused",
        html! {
            main.narrow {
                h1 { "Refused" }
                p.flash.err role="alert" { (crate::daemon::clip_words(why)) }
                p { a href="/machines" { "Back to the machines" } }
            }
        },
    );
    (status, body).into_response()
}

/// Every request passes here: host check, session, login, CSRF; every answer leaves with
/// the headers [`secure`] sets.
pub async fn guard(State(web): State<Arc<Web>>, req: Request, next: Next) -> Response {
    let mut resp = checked(web, req, next).await;
    secure(&mut resp);
    resp
}

async fn checked(web: Arc<Web>, req: Request, next: Next) -> Response {
    let loopback = web.auth == WebAuth::Local;
    if !known_host(req.headers(), loopback, &web.hosts) {
        let why = if loopback {
            "this web UI listens on loopback and answers only to localhost, a loopback address \
             or a name in [web] hosts"
                .to_string()
        } else {
            format!(
                "this web UI answers only to its own address or a name in [web] hosts ({})",
                web.hosts.join(", ")
            )
        };
        return refuse(StatusCode::MISDIRECTED_REQUEST, &why);
    }
    let path = req.uri().path().to_string();
    if path.starts_with("/static/") || path.starts_with(LINK_PATH) {
        return next.run(req).await;
    }
    let found = cookie(req.headers(), COOKIE).and_then(|sid| web.sessions.get(&sid));
    let new = found.is_none();
    let ctx = found.unwrap_or_else(|| web.sessions.create(None));
    let is_post = req.method() == Method::POST;
    // Without a login: nothing changes anywhere, and off loopback nothing is shown.
    let open = matches!(path.as_str(), "/login" | "/logout");
    if ctx.user.is_none() && !open && (is_post || !loopback) {
        let mut resp = if !is_post {
            Redirect::to("/login").into_response()
        } else if loopback {
            refuse(
                StatusCode::FORBIDDEN,
                "log in first: changes need a user. Run `nmt web-login` on this machine and \
                 open the link it prints (you act with your own rights), or log in at /login",
            )
        } else {
            refuse(
                StatusCode::FORBIDDEN,
                "log in first: this web UI listens on a network address, and changes need a \
                 user (/login)",
            )
        };
        if new {
            set_cookie(&mut resp, &ctx.sid);
        }
        return resp;
    }
    let mut req = req;
    if is_post {
        if let Some(why) = foreign_origin(req.headers()) {
            return refuse(StatusCode::FORBIDDEN, &why);
        }
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
            Ok(b) => b,
            Err(e) if too_large(&e) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the form is larger than nmtd accepts (8 MiB); import a larger node table \
                     with `nmt machine import FILE`",
                );
            }
            Err(e) => {
                tracing::warn!(path, "web: a form's body was cut short: {e}");
                return refuse(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "the form arrived cut short ({e}); nothing was changed: send it again"
                    ),
                );
            }
        };
        let kind = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (form, uploads) = if kind
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/form-data")
        {
            match multipart(&bytes, kind) {
                Ok((fields, files)) => (Form(fields), Uploads(files)),
                Err(why) => {
                    tracing::warn!(path, "web: refused a multipart form: {why}");
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        &format!("{why}; nothing was changed: send it again"),
                    );
                }
            }
        } else {
            let fields = form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            (Form(fields), Uploads::default())
        };
        let token_ok = !new
            && form
                .0
                .iter()
                .find(|(k, _)| k == "csrf")
                .is_some_and(|(_, v)| same(v, &ctx.csrf));
        if !token_ok {
            tracing::warn!(path, "web: refused a form without its session's CSRF token");
            let mut resp = refuse(
                StatusCode::FORBIDDEN,
                "this form did not carry this session's CSRF token (was it sent from another \
                 page, or did nmtd restart?): reload the page and try again",
            );
            if new {
                set_cookie(&mut resp, &ctx.sid);
            }
            return resp;
        }
        req = Request::from_parts(parts, Body::from(bytes));
        req.extensions_mut().insert(form);
        req.extensions_mut().insert(uploads);
    }
    req.extensions_mut().insert(ctx.clone());
    let mut resp = next.run(req).await;
    if new {
        set_cookie(&mut resp, &ctx.sid);
    }
    resp
}

/// Whether reading a body failed because it was larger than the limit (rather than cut
/// short or broken off).
fn too_large(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        if x.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = x.source();
    }
    false
}

/// Where `needle` first occurs in `hay` at or after `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| hay[i] == needle[0] && hay[i..].starts_with(needle))
}

/// A header parameter (`boundary=…`, `name="…"`), quoted or not.
fn param(header: &str, key: &str) -> Option<String> {
    let mut rest = header;
    while let Some(semi) = rest.find(';') {
        rest = rest[semi + 1..].trim_start();
        let (k, v) = rest.split_once('=')?;
        let (value, after) = match v.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"')?;
                (q[..end].to_string(), &q[end + 1..])
            }
            None => {
                let end = v.find(';').unwrap_or(v.len());
                (v[..end].trim().to_string(), &v[end..])
            }
        };
        if k.trim().eq_ignore_ascii_case(key) {
            return Some(value);
        }
        rest = after;
    }
    None
}

/// A `multipart/form-data` body (RFC 7578) as its text fields and its files. A body that
/// stops before its closing delimiter was cut short and is refused whole.
fn multipart(body: &[u8], content_type: &str) -> Result<MultipartParts, String> {
    let boundary = param(content_type, "boundary")
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or("the form's Content-Type names no multipart boundary")?;
    let delim = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let cut = || {
        "the upload arrived cut short (its multipart body ends before the closing boundary)"
            .to_string()
    };
    let mut at = find(body, delim.as_bytes(), 0).ok_or_else(cut)? + delim.len();
    let (mut fields, mut files) = (Vec::new(), Vec::new());
    loop {
        match body.get(at..at + 2) {
            Some(b"--") => return Ok((fields, files)),
            Some(b"\r\n") => at += 2,
            _ => return Err(cut()),
        }
        let head_end = find(body, b"\r\n\r\n", at).ok_or_else(cut)?;
        let head = std::str::from_utf8(&body[at..head_end])
            .map_err(|_| "a part of the form has headers that are not UTF-8".to_string())?;
        let disposition = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
            .map(|(_, v)| v.trim().to_string())
            .ok_or("a part of the form has no Content-Disposition")?;
        let name = param(&disposition, "name").ok_or("a part of the form has no name")?;
        let start = head_end + 4;
        let end = find(body, next.as_bytes(), start).ok_or_else(cut)?;
        let content = body[start..end].to_vec();
        at = end + next.len();
        match param(&disposition, "filename") {
            Some(filename) => files.push(Upload {
                field: name,
                filename,
                bytes: content,
            }),
            None => fields.push((
                name,
                String::from_utf8(content)
                    .map_err(|_| "a field of the form is not UTF-8 text".to_string())?,
            )),
        }
    }
}

/// A multipart form's text fields and files.
type MultipartParts = (Vec<(String, String)>, Vec<Upload>);

/// Why a POST's `Origin` or `Sec-Fetch-Site` shows it came from another site, if it does.
fn foreign_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Some(format!(
            "this form was sent from another site (Sec-Fetch-Site: {}); nmtd accepts \
             forms only from its own pages",
            clip(site, 80)
        ));
    }
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("?");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let ok = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host));
    (!ok).then(|| {
        format!(
            "this form was sent from {}, not from this web UI ({}); nmtd accepts forms only \
             from its own pages",
            clip(origin, 80),
            clip(host, 80)
        )
    })
}

/// `GET /login`.
pub async fn login_page(
    State(web): State<Arc<Web>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
) -> Response {
    if ctx.user.is_some() {
        return Redirect::to("/machines").into_response();
    }
    login_form(&web, &ctx, None).into_response()
}

fn login_form(web: &Web, ctx: &Ctx, error: Option<&str>) -> axum::response::Html<String> {
    page::bare(
        "Log in",
        html! {
            main.narrow {
                h1 { "nmt" }
                p.muted { "Log in to manage the netboot pool." }
                @if let Some(e) = error {
                    p.flash.err role="alert" #login-error { (e) }
                }
                p #web-login {
                    "On the machine nmtd runs on, run " code { "nmt web-login" }
                    " and open the link it prints: you are logged in as your own user, with \
                     the rights nmt gives you."
                    @if web.auth == WebAuth::Local {
                        " Until then these pages are read-only."
                    }
                }
                @if !web.users.is_empty() {
                    form.stack method="post" action="/login" {
                        input type="hidden" name="csrf" value=(ctx.csrf);
                        label for="user" { "User" }
                        input #user type="text" name="user" autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        button.primary type="submit" { "Log in" }
                    }
                }
            }
        },
    )
}

/// Log `user` in: a new session (never the id the request came with), and on to the
/// machines.
fn logged_in(web: &Web, old: Option<&Ctx>, user: WebUser) -> Response {
    tracing::info!(user = user.name, "web: logged in");
    if let Some(old) = old {
        web.sessions.remove(&old.sid);
    }
    let fresh = web.sessions.create(Some(user));
    let mut resp = Redirect::to("/machines").into_response();
    set_cookie(&mut resp, &fresh.sid);
    resp
}

/// `POST /login`: a `[web.users]` password, checked a few at a time off the async threads;
/// an address or user name that failed too often lately waits (429) before it may try
/// again.
pub async fn login(
    State(web): State<Arc<Web>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    axum::Extension(form): axum::Extension<Form>,
) -> Response {
    let user = form.get("user").unwrap_or("").to_string();
    let password = form
        .0
        .iter()
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let failed = |status: StatusCode, why: &str| {
        let mut resp = login_form(&web, &ctx, Some(why)).into_response();
        *resp.status_mut() = status;
        resp
    };
    if web.users.is_empty() {
        return failed(
            StatusCode::UNAUTHORIZED,
            "No user logs in with a password here: run `nmt web-login` on this machine.",
        );
    }
    let keys = vec![
        format!("ip:{}", peer.ip()),
        format!("user:{}", clip(&user, 64)),
    ];
    let attempt = match web.logins.begin(keys) {
        Ok(a) => a,
        Err(wait) => {
            tracing::warn!(user = clip(&user, 64), %peer, "web: login refused: too many failures");
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut resp = failed(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("too many failed logins; try again in {secs} s"),
            );
            if let Ok(v) = secs.to_string().parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
    };
    // An unknown user costs as much as a known one: no timing tells which names exist.
    let hash = web
        .users
        .get(&user)
        .or_else(|| web.users.values().next())
        .cloned()
        .unwrap_or_default();
    let known = web.users.contains_key(&user);
    let Some(matched) = web.logins.check(hash, password).await else {
        drop(attempt);
        let mut resp = failed(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many logins are being checked at once; try again in a moment",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return resp;
    };
    let ok = matched && known;
    attempt.decide(ok);
    if !ok {
        tracing::warn!(user = clip(&user, 64), %peer, "web: failed login");
        return failed(StatusCode::UNAUTHORIZED, "Wrong user name or password.");
    }
    logged_in(
        &web,
        Some(&ctx),
        WebUser {
            name: user,
            uid: NO_UID,
        },
    )
}

/// `GET /login/link/{token}`: a one-time link from `nmt web-login` logs its user in, as the
/// Unix user who asked for it.
pub async fn login_link(
    State(web): State<Arc<Web>>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    match web.shared.links.redeem(&token) {
        Some(Caller { uid, name }) => {
            let old = cookie(req.headers(), COOKIE).and_then(|sid| web.sessions.get(&sid));
            logged_in(&web, old.as_ref(), WebUser { name, uid })
        }
        None => {
            tracing::warn!("web: a login link that was used, expired or never given was opened");
            refuse(
                StatusCode::FORBIDDEN,
                "this login link was used already, has expired (a link lasts 60 s) or was \
                 never given: run `nmt web-login` again and open the new link",
            )
        }
    }
}

/// `POST /logout`.
pub async fn logout(
    State(web): State<Arc<Web>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
) -> Response {
    web.sessions.remove(&ctx.sid);
    let mut resp = Redirect::to(if web.auth == WebAuth::Local {
        "/machines"
    } else {
        "/login"
    })
    .into_response();
    if let Ok(v) = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0").parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_bad_hashes_are_refused() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2"), "{h}");
        assert!(verify(&h, "s3cret"));
        assert!(!verify(&h, "s3cre"));
        check_hash("kathrin", &h).unwrap();
        let e = check_hash("kathrin", "$6$salt$abc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nmtd --hash-password"), "{e}");
        assert!(hash_password("").is_err());
    }

    #[test]
    fn a_multipart_body_is_read_whole_or_refused_as_cut_short() {
        let kind = "multipart/form-data; boundary=\"b0\"";
        let body = "--b0\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n\
                    --b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a;b.csv\"\r\n\
                    Content-Type: text/csv\r\n\r\nx,y\r\nz\n\r\n--b0--\r\n";
        let (fields, files) = multipart(body.as_bytes(), kind).unwrap();
        assert_eq!(fields, vec![("csrf".to_string(), "tok".to_string())]);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].field, "file");
        assert_eq!(files[0].filename, "a;b.csv");
        assert_eq!(files[0].bytes, b"x,y\r\nz\n");
        // Any shorter body lacks its closing delimiter.
        let end = body.find("--b0--").unwrap();
        for cut in [end + 4, end, body.len() - 40, 20] {
            let e = multipart(&body.as_bytes()[..cut], kind).unwrap_err();
            assert!(e.contains("cut short"), "{cut}: {e}");
        }
        assert!(multipart(body.as_bytes(), "multipart/form-data").is_err());
    }

    #[test]
    fn only_known_host_names_reach_a_listener() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, v.parse().unwrap());
            m
        };
        let own = vec!["127.0.0.1".to_string()];
        assert!(known_host(&h("127.0.0.1:8018"), true, &own));
        assert!(known_host(&h("localhost:8018"), true, &own));
        assert!(known_host(&h("[::1]:8018"), true, &own));
        assert!(!known_host(&h("evil.example:8018"), true, &own));
        assert!(!known_host(&h("10.0.0.1:8018"), true, &own));
        assert!(!known_host(&HeaderMap::new(), true, &own));
        let net = vec!["10.0.0.1".to_string(), "nmt.example.org".to_string()];
        assert!(known_host(&h("10.0.0.1:8018"), false, &net));
        assert!(known_host(&h("NMT.example.org"), false, &net));
        assert!(!known_host(&h("localhost:8018"), false, &net));
        assert!(!known_host(&h("10.0.0.2:8018"), false, &net));
        assert!(!known_host(&h("evil.example"), false, &net));
    }

    #[test]
    fn the_back_off_doubles_after_five_failures() {
        assert_eq!(backoff(4), None);
        assert_eq!(backoff(5), Some(Duration::from_secs(2)));
        assert_eq!(backoff(6), Some(Duration::from_secs(4)));
        assert_eq!(backoff(40), Some(MAX_BACKOFF));
        assert_eq!(clip("abc", 80), "abc");
        assert!(clip(&"x".repeat(100), 80).starts_with(&"x".repeat(80)));
        assert!(clip(&"x".repeat(100), 80).len() < 110);
    }
}
