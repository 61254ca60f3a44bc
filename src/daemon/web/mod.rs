//! The point-and-click web UI `nmtd` serves with `--web ADDR:PORT`: server-rendered HTML
//! (maud templates compiled into the binary), a little hand-written JavaScript (live
//! updates, select-all), and forms that become [`crate::app::Action`]s, checked by the same
//! access rules and carried out by the same application layer as the CLI's.
//!
//! Who acts: nobody, until someone logs in. On a loopback listener the pages are shown to
//! anyone who reaches them, read-only; `nmt web-login` (asked through the control socket,
//! which knows its caller) gives a one-time link that logs the caller in as their Unix user.
//! On any other address every page asks for a login (`[web.users]`, argon2 hashes; a
//! `nmt web-login` link works there too). A logged-in user has exactly the rights `[access]`
//! gives them; events record the actor as `NAME via web`. Every answer forbids framing and
//! inline script, and names only hosts this listener answers to. Domain rules do not live
//! here; nor does the control socket.

mod actions;
mod assets;
mod auth;
mod live;
mod page;
mod power;
mod schedules;
mod timeline;
mod views;
mod words;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use super::Shared;
use crate::config::WebConfig;

pub use auth::hash_password;

/// How the web UI decides who acts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebAuth {
    /// A loopback listener: pages are read-only until someone logs in (`nmt web-login`).
    Local,
    /// Any other address: every page asks for a login.
    Login,
}

/// The web UI's settings, checked when its listener is bound.
pub struct Settings {
    auth: WebAuth,
    users: BTreeMap<String, String>,
    hosts: Vec<String>,
    new_password: Option<String>,
}

impl Settings {
    /// Who acts, or that users log in.
    pub fn auth(&self) -> WebAuth {
        self.auth.clone()
    }

    /// The installer password of a new store, to show once to the first admin who looks.
    pub fn show_once(&mut self, password: Option<String>) {
        self.new_password = password;
    }
}

/// What every handler shares.
pub(crate) struct Web {
    shared: Arc<Shared>,
    auth: WebAuth,
    users: BTreeMap<String, String>,
    /// The host names (besides its own address) the listener answers to.
    hosts: Vec<String>,
    sessions: auth::Sessions,
    /// Password checks: how many run at once, and who failed lately.
    logins: auth::Logins,
    /// The installer password of a new store, shown once to the first admin who looks.
    new_password: Mutex<Option<String>>,
}

/// Bind the web UI's listener and check its settings: a non-loopback address needs users
/// who can log in, and every configured hash must be an argon2 PHC string.
pub async fn bind(addr: &str, cfg: &WebConfig) -> Result<(TcpListener, Settings)> {
    for (user, hash) in &cfg.users {
        auth::check_hash(user, hash)?;
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("while binding the web UI listener {addr}"))?;
    let local: SocketAddr = listener.local_addr()?;
    if cfg.local_user.is_some() {
        tracing::warn!(
            "[web] local_user is no longer used: nobody acts on the loopback web UI without a \
             login; each user logs in as themselves with `nmt web-login`"
        );
    }
    let auth = if local.ip().is_loopback() {
        WebAuth::Local
    } else {
        if cfg.users.is_empty() {
            bail!(
                "the web UI would listen on {local}, which is not a loopback address, so users \
                 must log in there, but nmt.toml names none: add them under [web.users] as \
                 `name = \"HASH\"` (make a HASH with `nmtd --hash-password`), or listen on \
                 127.0.0.1"
            );
        }
        WebAuth::Login
    };
    // The listener's own address always names it; `[web] hosts` adds names.
    let mut hosts = vec![local.ip().to_string()];
    hosts.extend(cfg.hosts.iter().map(|h| h.trim().to_ascii_lowercase()));
    Ok((
        listener,
        Settings {
            auth,
            users: cfg.users.clone(),
            hosts,
            new_password: None,
        },
    ))
}

/// The web UI's router.
pub fn web_app(shared: Arc<Shared>, settings: Settings) -> Router {
    let web = Arc::new(Web {
        shared,
        auth: settings.auth,
        users: settings.users,
        hosts: settings.hosts,
        sessions: auth::Sessions::default(),
        logins: auth::Logins::default(),
        new_password: Mutex::new(settings.new_password),
    });
    Router::new()
        .route("/", get(views::home))
        .route("/machines", get(views::machines))
        .route("/machines/rows", get(views::machine_rows))
        .route("/machines/act", post(actions::machines))
        .route("/machines/add", post(actions::machine_add))
        .route("/machines/remove", post(views::remove_confirm))
        .route("/machines/power", post(actions::power))
        .route("/confirm", post(actions::confirm))
        .route(
            "/machines/import",
            get(views::import).post(actions::machine_import),
        )
        .route("/machine/{mac}", get(views::machine))
        .route("/machine/{mac}/live", get(views::machine_live))
        .route("/groups", get(views::groups))
        .route("/groups/add", post(actions::group_add))
        .route("/groups/rm", post(actions::group_rm))
        .route("/groups/policy", post(actions::group_policy))
        .route("/profiles", get(views::profiles))
        .route("/images", get(views::images))
        .route("/schedules", get(schedules::page))
        .route("/schedules/live", get(schedules::live))
        .route("/schedules/pause", post(actions::schedule_pause))
        .route("/schedules/resume", post(actions::schedule_resume))
        .route("/schedules/rm", post(actions::schedule_rm))
        .route("/profiles/edit", get(views::profile_edit))
        .route("/profiles/save", post(actions::profile_save))
        .route("/profiles/rm", post(actions::profile_rm))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/login/link/{token}", get(auth::login_link))
        .route("/logout", post(auth::logout))
        .route("/events", get(live::events))
        .route("/static/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            auth::guard,
        ))
        .with_state(web)
}
