//! Who is asking, and may they: sessions (a random id in an HttpOnly cookie), the login of
//! non-loopback listeners (argon2 hashes from `[web.users]`), and the guard every request
//! passes: a loopback listener answers only to local host names (no DNS rebinding), and
//! every POST carries its session's CSRF token and no foreign `Origin`.
//!
//! What a logged-in user may change is decided later, by the daemon's `[access]` rules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::{Web, WebAuth, page};

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

struct Session {
    user: Option<String>,
    csrf: String,
    flash: Option<Flash>,
    /// The machines ticked when the last action on them was sent, ticked again on the
    /// machines page it leads to.
    selected: Vec<String>,
    seen: Instant,
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
    /// The logged-in user (login listeners).
    pub user: Option<String>,
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

    fn create(&self, user: Option<String>) -> Ctx {
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

    /// The machines ticked before the last action, once.
    pub fn take_selection(&self, sid: &str) -> Vec<String> {
        self.lock()
            .get_mut(sid)
            .map(|s| std::mem::take(&mut s.selected))
            .unwrap_or_default()
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

fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
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

/// Whether a Host header names this machine itself (a loopback listener answers nothing
/// else, so a page elsewhere cannot rebind a DNS name to 127.0.0.1 and read it).
fn local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A refusal page (403 unless told otherwise).
pub fn refuse(status: StatusCode, why: &str) -> Response {
    let body = page::bare(
        "Refused",
        html! {
            main.narrow {
                h1 { "Refused" }
                p.flash.err role="alert" { (why) }
                p { a href="/machines" { "Back to the machines" } }
            }
        },
    );
    (status, body).into_response()
}

/// Every request passes here: host check, session, login, CSRF.
pub async fn guard(State(web): State<Arc<Web>>, req: Request, next: Next) -> Response {
    if matches!(web.auth, WebAuth::Local(_)) && !local_host(req.headers()) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "this web UI listens on loopback and answers only to localhost or 127.0.0.1",
        );
    }
    let path = req.uri().path().to_string();
    if path.starts_with("/static/") {
        return next.run(req).await;
    }
    let found = cookie(req.headers(), COOKIE).and_then(|sid| web.sessions.get(&sid));
    let new = found.is_none();
    let ctx = found.unwrap_or_else(|| web.sessions.create(None));
    let is_post = req.method() == Method::POST;
    if web.auth == WebAuth::Login && ctx.user.is_none() && path != "/login" {
        let mut resp = if is_post {
            refuse(
                StatusCode::FORBIDDEN,
                "log in first: this web UI listens on a network address, and changes need a \
                 user (/login)",
            )
        } else {
            Redirect::to("/login").into_response()
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
            "this form was sent from another site (Sec-Fetch-Site: {site}); nmtd accepts \
             forms only from its own pages"
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
            "this form was sent from {origin}, not from this web UI ({host}); nmtd accepts \
             forms only from its own pages"
        )
    })
}

/// `GET /login`.
pub async fn login_page(
    State(web): State<Arc<Web>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
) -> Response {
    if web.auth != WebAuth::Login || ctx.user.is_some() {
        return Redirect::to("/machines").into_response();
    }
    login_form(&ctx, None).into_response()
}

fn login_form(ctx: &Ctx, error: Option<&str>) -> axum::response::Html<String> {
    page::bare(
        "Log in",
        html! {
            main.narrow {
                h1 { "nmt" }
                p.muted { "Log in to manage the netboot pool." }
                @if let Some(e) = error {
                    p.flash.err role="alert" { (e) }
                }
                form.stack method="post" action="/login" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    label for="user" { "User" }
                    input #user type="text" name="user" autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button.primary type="submit" { "Log in" }
                }
            }
        },
    )
}

/// `POST /login`: a new session for the user (never the id the form came with).
pub async fn login(
    State(web): State<Arc<Web>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
    axum::Extension(form): axum::Extension<Form>,
) -> Response {
    if web.auth != WebAuth::Login {
        return Redirect::to("/machines").into_response();
    }
    let user = form.get("user").unwrap_or("").to_string();
    let password = form
        .0
        .iter()
        .find(|(k, _)| k == "password")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // An unknown user costs as much as a known one: no timing tells which names exist.
    let hash = web
        .users
        .get(&user)
        .or_else(|| web.users.values().next())
        .cloned()
        .unwrap_or_default();
    let known = web.users.contains_key(&user);
    let ok = tokio::task::spawn_blocking(move || verify(&hash, &password))
        .await
        .unwrap_or(false)
        && known;
    if !ok {
        tracing::warn!(user, "web: failed login");
        let mut resp = login_form(&ctx, Some("Wrong user name or password.")).into_response();
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        return resp;
    }
    tracing::info!(user, "web: logged in");
    web.sessions.remove(&ctx.sid);
    let fresh = web.sessions.create(Some(user));
    let mut resp = Redirect::to("/machines").into_response();
    set_cookie(&mut resp, &fresh.sid);
    resp
}

/// `POST /logout`.
pub async fn logout(
    State(web): State<Arc<Web>>,
    axum::Extension(ctx): axum::Extension<Ctx>,
) -> Response {
    web.sessions.remove(&ctx.sid);
    let mut resp = Redirect::to("/login").into_response();
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
    fn only_local_host_names_reach_a_loopback_listener() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, v.parse().unwrap());
            m
        };
        assert!(local_host(&h("127.0.0.1:8018")));
        assert!(local_host(&h("localhost:8018")));
        assert!(local_host(&h("[::1]:8018")));
        assert!(!local_host(&h("evil.example:8018")));
        assert!(!local_host(&h("10.0.0.1:8018")));
        assert!(!local_host(&HeaderMap::new()));
    }
}
