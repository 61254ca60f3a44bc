//! The CLI's side of the control socket: send an action to `nmtd` and get its typed answer
//! (the CLI renders it).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::app::CliRequest;
use crate::app::{Action, Answer, Mode};

/// Perform `action` through the daemon at `socket`; `None` when no daemon answers there (the
/// caller then works on the store directly).
pub fn via_daemon(socket: &Path, action: &Action) -> Option<Result<Answer>> {
    via_daemon_with(socket, action, &Mode::default())
}

/// [`via_daemon`], performed as `mode` says (a dry run, what was confirmed).
pub fn via_daemon_with(socket: &Path, action: &Action, mode: &Mode) -> Option<Result<Answer>> {
    if !socket.exists() {
        return None;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let stream = match tokio::net::UnixStream::connect(socket).await {
            Ok(s) => s,
            // nmtd is there, but this user may not talk to it: working around it on the store
            // would only fail later with an error about the store.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Some(Err(anyhow!(
                    "nmtd's control socket {} refuses you (permission denied): run nmt as a \
                     user who may use it (root, or a member of the group that `[daemon] \
                     socket_group` in nmt.toml names; `ls -l {}` shows its owner and mode), \
                     or ask an admin to add you to that group",
                    socket.display(),
                    socket.display()
                )));
            }
            // No nmtd listens (a socket left by one that stopped): work on the store.
            Err(_) => return None,
        };
        Some(
            request(stream, action, mode)
                .await
                .with_context(|| format!("while talking to nmtd on {}", socket.display())),
        )
    })
}

async fn request(stream: tokio::net::UnixStream, action: &Action, mode: &Mode) -> Result<Answer> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let body = serde_json::to_vec(&CliRequest {
        action: action.clone(),
        mode: mode.clone(),
    })?;
    // `/v1/perform` takes the mode; an nmtd from before modes does not know it (and would
    // perform a dry run for real on `/v1/cli`, which ignores what it does not know).
    let req = hyper::Request::post("/v1/perform")
        .header("host", "nmtd")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    if status == hyper::StatusCode::NOT_FOUND {
        return Err(anyhow!(
            "this nmtd is older than this nmt (it knows no --dry-run or confirmations); \
             nothing was done: upgrade nmtd, or use the nmt of its release"
        ));
    }
    if !status.is_success() {
        return Err(anyhow!(
            "nmtd answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    Ok(serde_json::from_slice(&bytes)?)
}
