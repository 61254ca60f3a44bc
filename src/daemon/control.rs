//! The control socket's API, for the `nmt` CLI: `POST /v1/cli` performs an action as the
//! caller (peer credentials) and returns its typed answer (the CLI renders it); `GET
//! /v1/ping` says who answers.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::connect_info::{self, ConnectInfo};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::UnixListener;

use nmt_projections::{PowerOp, Source};

use super::{Caller, Published, Shared};

/// Refused requests are logged a few at a time (a flood would fill the log).
static REFUSED: super::throttle::Throttle =
    super::throttle::Throttle::new("requests refused by the access rules");
use crate::app::CliRequest;
use crate::app::{self, Action, Answer, DaemonStatus, Failure, Mode, Reply, Status};

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

/// The largest request the socket accepts.
const MAX_REQUEST: usize = 256 * 1024 * 1024;

/// The control router.
pub fn control_app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/cli", post(cli))
        .route("/v1/perform", post(cli))
        .route("/v1/ping", get(ping))
        // A node table of 100,000 rows is some 10 MB of JSON (axum's default is 2 MB); the
        // socket is local and its permissions say who may connect.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(shared)
}

async fn ping() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "nmtd": env!("CARGO_PKG_VERSION"), "pid": std::process::id() }))
}

async fn cli(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<PeerCred>,
    Json(req): Json<CliRequest>,
) -> Json<Answer> {
    let Some(uid) = peer.uid else {
        return Json(Err(Failure::Said(
            "nmtd: refused: the caller's identity is unknown (no peer credentials)".into(),
        )));
    };
    // The user's name may come from a directory service: not on a runtime thread.
    let caller = match tokio::task::spawn_blocking(move || Caller::from_uid(uid)).await {
        Ok(c) => c,
        Err(e) => return Json(Err(failed(e))),
    };
    let actor = caller.name.clone();
    Json(act_with(&shared, &caller, actor, req.action, &req.mode, Source::Cli).await)
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::of(&anyhow::anyhow!("nmtd failed while performing: {e}"))
}

/// Carry out `action` for `caller`, recording `actor` in its events, as `mode` says (a dry
/// run; what the caller confirmed): checked by the access rules (a refusal is logged and
/// counted for `nmt status`), then answered from the published state when it only reads
/// that, else performed on the engine. Every door into the daemon (the CLI's socket, the web
/// UI) goes through here.
pub(crate) async fn act_with(
    shared: &Arc<Shared>,
    caller: &Caller,
    actor: String,
    action: Action,
    mode: &Mode,
    door: Source,
) -> Answer {
    let right = action.right();
    let access = shared.published().config.clone();
    let who = caller.clone();
    // Unix group lookups may block.
    let verdict = tokio::task::spawn_blocking(move || access.access.allows(&who, &right))
        .await
        .map_err(failed)?;
    if let Err(why) = verdict {
        if REFUSED.allow() {
            tracing::warn!(caller = %caller.name, ?action, %door, "refused: {why}");
        }
        shared.count(|c| c.access_refused += 1);
        return Err(Failure::refused(&why));
    }
    let published = shared.published();
    // What only admins may read (the site key, other machines' report tokens) is hidden
    // from everyone else in what they are answered.
    let hides_secrets = matches!(
        action,
        Action::Show { .. } | Action::History { .. } | Action::JournalExport { .. }
    );
    let answer = act_on(shared, &published, caller, actor, action, mode, door).await;
    if !hides_secrets {
        return answer;
    }
    let reply = answer?;
    let access = published.config.clone();
    let who = caller.clone();
    let state = published.state.clone();
    tokio::task::spawn_blocking(move || {
        let secrets = hidden_from(&access.access, &who, &state);
        if secrets.is_empty() {
            return Ok(reply);
        }
        redact(reply, &secrets)
    })
    .await
    .map_err(failed)?
}

/// The secrets `caller` may not read: the site key unless an nmt admin; each machine's
/// report token unless an admin of its group.
pub(crate) fn hidden_from(
    access: &crate::config::AccessConfig,
    caller: &Caller,
    state: &nmt_projections::State,
) -> Vec<String> {
    use app::Right;
    if access.allows(caller, &Right::Admin).is_ok() {
        return Vec::new();
    }
    let mut out: Vec<String> = state
        .site_key()
        .into_iter()
        .chain(state.logged_site_key())
        .map(str::to_string)
        .collect();
    if let Some(key) = state.site_key() {
        let mut may: std::collections::HashMap<&str, bool> = std::collections::HashMap::new();
        for m in state.machines() {
            let allowed = *may.entry(m.group.as_str()).or_insert_with(|| {
                access
                    .allows(caller, &Right::GroupPolicy(vec![m.group.clone()]))
                    .is_ok()
            });
            if !allowed {
                out.push(nmt_projections::report_token(
                    key,
                    &m.mac,
                    m.install_generation(),
                ));
            }
        }
    }
    out
}

/// `reply` with every secret in it replaced by `(hidden)`.
fn redact(reply: Reply, secrets: &[String]) -> Answer {
    redacted(reply, secrets).map_err(failed)
}

/// `value` with every secret in it replaced by `(hidden)` (through its JSON form, so that
/// no field of it is missed).
pub(crate) fn redacted<T: serde::Serialize + serde::de::DeserializeOwned>(
    value: T,
    secrets: &[String],
) -> Result<T, serde_json::Error> {
    if secrets.is_empty() {
        return Ok(value);
    }
    let mut text = serde_json::to_string(&value)?;
    for s in secrets {
        if text.contains(s.as_str()) {
            text = text.replace(s.as_str(), "(hidden)");
        }
    }
    serde_json::from_str(&text)
}

/// [`act_with`] once allowed: a read from the published state, or a change on the engine.
async fn act_on(
    shared: &Arc<Shared>,
    published: &Published,
    caller: &Caller,
    actor: String,
    action: Action,
    mode: &Mode,
    door: Source,
) -> Answer {
    let published = published.clone();
    match action {
        Action::Status => Ok(status(shared, &published)),
        Action::WebLogin => match shared.links.issue(caller) {
            Ok(url) => {
                tracing::info!(caller = %caller.name, %door, "web login link handed out");
                Ok(Reply::WebLogin {
                    url,
                    expires_in: super::links::LINK_LIFE.as_secs(),
                })
            }
            Err(why) => Err(Failure::Said(format!("nmt: {why}"))),
        },
        Action::Boots { machine, since } => boots(shared, &published, machine, since).await,
        // Power actions wait on BMCs: they run outside the engine's lock.
        Action::Power { op, range } if !mode.dry_run => {
            power(shared, actor, door, op, range, None).await
        }
        Action::Policy {
            range,
            policy,
            once,
            members,
            reboot: true,
        } if !mode.dry_run => {
            let first = Action::Policy {
                range: range.clone(),
                policy,
                once,
                members,
                reboot: false,
            };
            let reply = shared
                .write({
                    let (mode, actor, door) = (mode.clone(), actor.clone(), door.clone());
                    move |engine| app::perform_with(engine, first, &mode, &actor, door)
                })
                .await
                .and_then(|r| r)
                .map_err(|e| Failure::of(&e))?;
            match reply {
                Reply::Changed { .. } => {
                    power(shared, actor, door, PowerOp::Cycle, range, Some(reply)).await
                }
                other => Ok(other),
            }
        }
        action => match app::read(&published.state, &published.config, &action) {
            // `show` of a machine that is imaging says how far it got.
            Some(Ok(Reply::Show(mut view))) => {
                view.imaging = shared
                    .progress
                    .all(&published.state)
                    .into_iter()
                    .find(|p| p.mac == view.machine.mac);
                Ok(Reply::Show(view))
            }
            Some(reply) => reply.map_err(|e| Failure::of(&e)),
            None => shared
                .write({
                    let mode = mode.clone();
                    move |engine| app::perform_with(engine, action, &mode, &actor, door)
                })
                .await
                .and_then(|r| r)
                .map_err(|e| Failure::of(&e)),
        },
    }
}

/// `nmt power` (and the reboot of `nmt policy … --reboot`): the machines' BMCs are asked
/// outside the engine's lock, a bounded number at once; their results are recorded after.
async fn power(
    shared: &Arc<Shared>,
    actor: String,
    door: Source,
    op: PowerOp,
    range: String,
    changed: Option<Reply>,
) -> Answer {
    let published = shared.published();
    let state = published.state.clone();
    let config = published.config.clone();
    let (targets, limits) = tokio::task::spawn_blocking(move || {
        let macs = crate::resolve(&state, &range)?;
        if macs.is_empty() {
            anyhow::bail!("{range} names no machine");
        }
        Ok((
            app::power::targets(&state, &config, &macs)?,
            app::power::limits(&config),
        ))
    })
    .await
    .map_err(failed)?
    .map_err(|e| Failure::of(&e))?;
    let n = targets.len();
    tracing::info!(%actor, machines = n, "power {op}");
    let results =
        tokio::task::spawn_blocking(move || crate::power::run(op, targets, &limits, &|_, _| {}))
            .await
            .map_err(failed)?;
    let views = shared
        .write(move |engine| app::power::record(engine, op, results, &actor, door))
        .await
        .and_then(|r| r)
        .map_err(|e| Failure::of(&e))?;
    Ok(Reply::Power {
        changed: changed.map(Box::new),
        results: views,
    })
}

/// `nmt boots`: the machine's history is read under the engine's lock; its boots are worked
/// out from it after, with the state published with it.
async fn boots(
    shared: &Arc<Shared>,
    published: &Published,
    machine: String,
    since: Option<jiff::Timestamp>,
) -> Answer {
    let mac = app::mac_or_name(&published.state, &machine).map_err(|e| Failure::of(&e))?;
    let s = shared.clone();
    let (state, history) = shared
        .write(move |engine| {
            // Under the lock, the published state is the engine's.
            (s.published().state, engine.history(&mac, None, None))
        })
        .await
        .map_err(|e| Failure::of(&e))?;
    let history = history.map_err(|e| Failure::of(&e))?;
    Ok(app::boots(&state, mac, machine, since, &history))
}

fn status(shared: &Shared, published: &Published) -> Reply {
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
    Reply::Status(Status {
        daemon: Some(DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            events: published.state.last_seq(),
            files_current_to: published.rendered,
            files_problem: published.files_problem.as_deref().map(str::to_string),
            new_machines_limited: published.new_machines_limited,
            counters,
            sources,
            imaging: shared.progress.all(&published.state),
        }),
    })
}
