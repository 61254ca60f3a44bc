//! The machine-facing HTTP API: what installers and imagers running on the machines call.
//!
//! `POST /v1/report/{mac}/{token}` with `rootdev=/dev/sda1` (form-encoded) records an install
//! report. `GET /v1/answer/{mac}/{token}` serves the machine's answer file (preseed,
//! kickstart or autoinstall user-data, from its install profile). The token is the
//! per-machine one nmt put in that machine's boot entry; a request without it, or with
//! another machine's, changes nothing and is counted and logged.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use nmt_projections::render::answer::{AnswerContext, answer_for};
use nmt_projections::{Command, Mac, ReportVia, Source, installer_actor, token_matches};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::throttle::Throttle;

/// Refused requests are logged a few at a time (a flood would fill the log).
static REFUSED: Throttle = Throttle::new("machine API requests refused");

/// The machine-facing router.
pub fn machine_app(shared: Arc<Shared>) -> Router {
    let imager = super::imaging::image_routes(shared.clone());
    let routes = Router::new()
        .route("/v1/report/{mac}/{token}", post(report))
        .route("/v1/answer/{mac}/{token}", get(answer))
        // Ubuntu's NoCloud datasource (`ds=nocloud-net;s={server}/nocloud/{mac}/{token}/`)
        // fetches `user-data` (the autoinstall file) and `meta-data` below that prefix.
        .route("/nocloud/{mac}/{token}/user-data", get(answer))
        .route("/nocloud/{mac}/{token}/meta-data", get(nocloud_meta_data))
        .with_state(shared);
    super::listen::with_timeouts(routes, super::listen::Limits::tcp()).merge(imager)
}

/// The body of an install report.
#[derive(Debug, Deserialize)]
pub struct Report {
    /// The installed root device.
    pub rootdev: String,
}

fn refuse(shared: &Shared, status: StatusCode, why: String) -> (StatusCode, Json<Value>) {
    shared.count(|c| c.reports_refused += 1);
    // What it quotes of the request is cut short.
    let why = super::clip_words(&why);
    (status, Json(json!({ "accepted": false, "error": why })))
}

async fn report(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token)): Path<(String, String)>,
    Form(body): Form<Report>,
) -> (StatusCode, Json<Value>) {
    let Some(mac) = Mac::parse(&mac) else {
        return refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            format!("{mac:?} is not a MAC address"),
        );
    };
    let s2 = shared.clone();
    shared
        .write(move |engine| {
            if !token_ok(engine.state(), &mac, &token) {
                if REFUSED.allow() {
                    tracing::warn!(%mac, %peer, "install report refused: wrong or missing token");
                }
                return refuse(
                    &s2,
                    StatusCode::FORBIDDEN,
                    "the token does not belong to this machine".into(),
                );
            }
            let actor = installer_actor(engine.state(), &mac);
            let done = engine.execute_from(
                Command::ReportInstall {
                    mac,
                    device: body.rootdev,
                    via: ReportVia::Installer,
                },
                &actor,
                Source::Http {
                    endpoint: "report".into(),
                },
            );
            match done {
                Ok(_) => {
                    let group = engine
                        .state()
                        .machine(&mac)
                        .map(|m| m.group.clone())
                        .unwrap_or_default();
                    s2.count(|c| c.reports_accepted += 1);
                    tracing::info!(%mac, %peer, %group, "install report accepted");
                    (
                        StatusCode::OK,
                        Json(json!({ "accepted": true, "mac": mac, "group": group })),
                    )
                }
                Err(e) => refuse(&s2, StatusCode::BAD_REQUEST, format!("{e:#}")),
            }
        })
        .await
        .unwrap_or_else(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "accepted": false, "error": e.to_string() })),
            )
        })
}

/// An answer file, from the published state (never waiting for the engine's lock).
fn answer_response(shared: &Shared, mac: Mac, token: &str, peer: SocketAddr) -> Response {
    let published = shared.published();
    let st = &published.state;
    if !token_ok(st, &mac, token) {
        if REFUSED.allow() {
            tracing::warn!(%mac, %peer, "answer file refused: wrong token");
        }
        return wrong_token();
    }
    let cfg = &published.config;
    let ctx = AnswerContext {
        password_crypted: st.installer_password(),
        log_host: cfg.render.log_host.as_deref(),
        log_port: cfg.render.log_port,
    };
    match answer_for(st, &mac, &cfg.render, &ctx) {
        Some(a) => ([(header::CONTENT_TYPE, a.content_type)], a.body).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("{mac} has no install policy with an answer file (see `nmt show {mac}`)\n"),
        )
            .into_response(),
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token)): Path<(String, String)>,
) -> Response {
    let Some(mac) = Mac::parse(&mac) else {
        return (StatusCode::BAD_REQUEST, "not a MAC address\n").into_response();
    };
    answer_response(&shared, mac, &token, peer)
}

async fn nocloud_meta_data(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token)): Path<(String, String)>,
) -> Response {
    let Some(mac) = Mac::parse(&mac) else {
        return (StatusCode::BAD_REQUEST, "not a MAC address\n").into_response();
    };
    if !token_ok(&shared.published().state, &mac, &token) {
        if REFUSED.allow() {
            tracing::warn!(%mac, %peer, "meta-data refused: wrong token");
        }
        return wrong_token();
    }
    format!("instance-id: nmt-{}\n", mac.bare()).into_response()
}

/// Whether `token` is `mac`'s, for its current install: never for a machine nmt does not
/// know, nor with no site key (a key nobody set is one anyone knows).
pub(super) fn token_ok(st: &nmt_projections::State, mac: &Mac, token: &str) -> bool {
    let Some(m) = st.machine(mac) else {
        return false;
    };
    st.site_key()
        .is_some_and(|k| token_matches(k, mac, m.install_generation(), token))
}

pub(super) fn wrong_token() -> Response {
    (
        StatusCode::FORBIDDEN,
        "the token does not belong to this machine\n",
    )
        .into_response()
}
