//! The point-and-click web UI `nmtd` serves with `--web ADDR:PORT`: server-rendered HTML
//! (maud templates compiled into the binary), a little hand-written JavaScript (live
//! updates, select-all), and forms that become [`crate::app::Action`]s, checked by the same
//! access rules and carried out by the same application layer as the CLI's.
//!
//! Who acts: on a loopback listener nobody logs in and the configured local user acts; on
//! any other address users log in (`[web.users]`, argon2 hashes). Events record the actor as
//! `NAME via web`. Domain rules do not live here; nor does the control socket.

mod actions;
mod assets;
mod auth;
mod live;
mod page;
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
    /// A loopback listener: nobody logs in; this user acts.
    Local(String),
    /// Any other address: users log in.
    Login,
}

/// The web UI's settings, checked when its listener is bound.
pub struct Settings {
    auth: WebAuth,
    users: BTreeMap<String, String>,
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
    sessions: auth::Sessions,
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
    let auth =
        if local.ip().is_loopback() {
            WebAuth::Local(cfg.local_user.clone().unwrap_or_else(|| {
                crate::identity::user_name(nix::unistd::Uid::current().as_raw())
            }))
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
    Ok((
        listener,
        Settings {
            auth,
            users: cfg.users.clone(),
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
        sessions: auth::Sessions::default(),
        new_password: Mutex::new(settings.new_password),
    });
    Router::new()
        .route("/", get(views::home))
        .route("/machines", get(views::machines))
        .route("/machines/rows", get(views::machine_rows))
        .route("/machines/act", post(actions::machines))
        .route("/machines/add", post(actions::machine_add))
        .route("/machines/remove", post(views::remove_confirm))
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
        .route("/profiles/edit", get(views::profile_edit))
        .route("/profiles/save", post(actions::profile_save))
        .route("/profiles/rm", post(actions::profile_rm))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/events", get(live::events))
        .route("/static/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            auth::guard,
        ))
        .with_state(web)
}
