//! The CLI's side of the control socket: send an action to `nmtd` and get its typed answer
//! (the CLI renders it).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::app::CliRequest;
use crate::app::{Action, Answer};

/// Perform `action` through the daemon at `socket`; `None` when no daemon answers there (the
/// caller then works on the store directly).
pub fn via_daemon(socket: &Path, action: &Action) -> Option<Result<Answer>> {
    if !socket.exists() {
        return None;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let stream = tokio::net::UnixStream::connect(socket).await.ok()?;
        Some(
            request(stream, action)
                .await
                .with_context(|| format!("while talking to nmtd on {}", socket.display())),
        )
    })
}

async fn request(stream: tokio::net::UnixStream, action: &Action) -> Result<Answer> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let body = serde_json::to_vec(&CliRequest {
        action: action.clone(),
    })?;
    let req = hyper::Request::post("/v1/cli")
        .header("host", "nmtd")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(anyhow!(
            "nmtd answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    Ok(serde_json::from_slice(&bytes)?)
}
