//! The control socket's API, for the `nmt` CLI: `POST /v1/cli` performs an action as the
//! caller (peer credentials) and returns what it printed; `GET /v1/ping` says who answers.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::connect_info::{self, ConnectInfo};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;

use super::{Caller, EngineGuard, Shared};
use crate::cli::{Action, Output, perform};

/// The peer credentials of a control-socket connection.
#[derive(Clone, Debug)]
pub struct PeerCred {
    /// The peer's uid, if the kernel told.
    pub uid: Option<u32>,
}

impl connect_info::Connected<axum::serve::IncomingStream<'_, UnixListener>> for PeerCred {
    fn connect_info(stream: axum::serve::IncomingStream<'_, UnixListener>) -> Self {
        PeerCred {
            uid: stream.io().peer_cred().ok().map(|c| c.uid()),
        }
    }
}

/// A CLI request.
#[derive(Debug, Serialize, Deserialize)]
pub struct CliRequest {
    /// What to do.
    pub action: Action,
    /// Print JSON.
    pub json: bool,
}

/// The control router.
pub fn control_app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/cli", post(cli))
        .route("/v1/ping", get(ping))
        .with_state(shared)
}

async fn ping() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "nmtd": env!("CARGO_PKG_VERSION"), "pid": std::process::id() }))
}

async fn cli(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<PeerCred>,
    Json(req): Json<CliRequest>,
) -> Json<Output> {
    let Some(uid) = peer.uid else {
        return Json(Output {
            code: 1,
            stdout: String::new(),
            stderr: "nmtd: refused: the caller's identity is unknown (no peer credentials)\n"
                .into(),
        });
    };
    let out = tokio::task::spawn_blocking(move || {
        let caller = Caller::from_uid(uid);
        let mut engine = match lock_for(&shared, &caller, &req.action, "cli") {
            Ok(e) => e,
            Err(refused) => return refused,
        };
        if matches!(req.action, Action::Status) {
            drop(engine);
            return status(&shared, req.json);
        }
        perform(&mut engine, req.action, &caller.name, req.json)
    })
    .await
    .unwrap_or_else(|e| Output::error(&anyhow::anyhow!("nmtd failed while performing: {e}")));
    Json(out)
}

/// The engine, locked for `caller` to carry out `action`; or, when the access rules refuse
/// it, the refusal as the CLI prints it (logged, and counted for `nmt status`). Every door
/// into the daemon (the CLI's socket, the web UI) goes through here.
pub(crate) fn lock_for<'a>(
    shared: &'a Shared,
    caller: &Caller,
    action: &Action,
    door: &str,
) -> Result<EngineGuard<'a>, Output> {
    let engine = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
    match engine.config().access.check(caller, action) {
        Ok(()) => Ok(engine),
        Err(why) => {
            drop(engine);
            tracing::warn!(caller = %caller.name, ?action, door, "refused: {why}");
            shared
                .counters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .access_refused += 1;
            Err(Output {
                code: 1,
                stdout: String::new(),
                stderr: format!("nmt: refused: {why}\n"),
            })
        }
    }
}

fn status(shared: &Shared, json: bool) -> Output {
    let sources = shared
        .sources
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let counters = shared
        .counters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let (events, rendered) = {
        let e = shared.engine.lock().unwrap_or_else(|p| p.into_inner());
        (e.state().last_seq(), e.rendered_seq())
    };
    if json {
        return Output {
            code: 0,
            stdout: crate::cli::json_string(&serde_json::json!({
                "daemon": true,
                "pid": std::process::id(),
                "events": events,
                "files_current_to": rendered,
                "counters": counters,
                "sources": sources,
            })),
            stderr: String::new(),
        };
    }
    let mut out = format!(
        "nmtd {} (pid {}): {events} events, files current to event {rendered}\n\
         install reports: {} accepted, {} refused; requests refused by access rules: {}; \
         installer syslog from unknown addresses: {}\n",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        counters.reports_accepted,
        counters.reports_refused,
        counters.access_refused,
        counters.syslog_unattributed,
    );
    if sources.is_empty() {
        out.push_str("no logs are followed (give nmtd --log PATH)\n");
    }
    for s in &sources {
        out.push_str(&format!(
            "\n{}\n  lines {}  events {}  ignored {}  rejects {}  lag {} bytes\n",
            s.path.display(),
            s.lines,
            s.events,
            s.ignored,
            s.rejects,
            s.lag_bytes
        ));
        match &s.checkpoint {
            Some(c) => out.push_str(&format!(
                "  position: offset {} of file {}:{}\n",
                c.offset, c.dev, c.ino
            )),
            None => out.push_str("  position: nothing read yet\n"),
        }
        if let Some(r) = &s.last_reject {
            out.push_str(&format!("  last rejected line: {r:?}\n"));
        }
        if let Some(e) = &s.last_event {
            out.push_str(&format!("  last reader event: {e}\n"));
        }
        if let Some(e) = &s.last_error {
            out.push_str(&format!("  last error: {e}\n"));
        }
    }
    Output {
        code: 0,
        stdout: out,
        stderr: String::new(),
    }
}
