//! The imager's side of the machine-facing API (docs/imaging.md): what a machine booted into
//! nmt's imager asks for, sends and reports. Every path carries the machine's MAC and token;
//! a wrong token changes nothing. Answers are plain text, one record a line, for busybox sh.
//!
//! Streams are written to the image directory as they arrive, hashed on the way; a version
//! becomes visible only when its imager says it is done and every stream arrived whole.

// A refusal is the handler's whole answer: helpers return it as their `Err`.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures_util::StreamExt;
use nmt_projections::{
    Command, ImageAction, ImageRef, Mac, Policy, Source, StreamDigest, imaging_policy,
};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::Shared;
use super::machines::{token_ok, wrong_token};
use crate::images::{ImageStore, Inventory};

/// How long an image stream may pause (partclone scans a filesystem's bitmap before it
/// writes; a slow client is still a client).
pub const STREAM_IDLE: Duration = Duration::from_secs(120);

/// The imager's routes (no whole-request time limit: a stream takes as long as the disk).
pub fn image_routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/image/{mac}/{token}/job", get(job))
        .route("/v1/image/{mac}/{token}/save", post(save_start))
        .route(
            "/v1/image/{mac}/{token}/save/{version}/{stream}",
            put(save_stream).post(save_end),
        )
        .route("/v1/image/{mac}/{token}/restore", get(restore_start))
        .route(
            "/v1/image/{mac}/{token}/restore/{version}/{stream}",
            get(restore_stream).post(restore_end),
        )
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            STREAM_IDLE,
        ))
        .with_state(shared)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (status, body).into_response()
}

fn actor(st: &nmt_projections::State, mac: &Mac) -> String {
    match st.machine(mac).and_then(|m| m.name.as_deref()) {
        Some(n) => format!("imager@{n}"),
        None => format!("imager@{mac}"),
    }
}

fn source(endpoint: &str) -> Source {
    Source::Http {
        endpoint: endpoint.into(),
    }
}

/// The machine, if the MAC parses and the token is its own.
fn caller(shared: &Shared, mac: &str, token: &str, peer: SocketAddr) -> Result<Mac, Response> {
    let Some(mac) = Mac::parse(mac) else {
        return Err(text(StatusCode::BAD_REQUEST, "not a MAC address"));
    };
    if !token_ok(&shared.published().state, &mac, token) {
        shared.count(|c| c.reports_refused += 1);
        tracing::warn!(%mac, %peer, "imager request refused: wrong token");
        return Err(wrong_token());
    }
    Ok(mac)
}

fn store(shared: &Shared) -> ImageStore {
    ImageStore::new(shared.published().config.paths.images.clone())
}

/// Run a command as the machine's imager; a refusal is a 409 with its words.
async fn perform(
    shared: &Arc<Shared>,
    mac: Mac,
    cmd: Command,
    endpoint: &'static str,
) -> Result<Vec<nmt_projections::Envelope>, Response> {
    let done = shared
        .write(move |engine| {
            let who = actor(engine.state(), &mac);
            engine
                .execute_from(cmd, &who, source(endpoint))
                .map(|d| d.events)
        })
        .await
        .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    done.map_err(|e| text(StatusCode::CONFLICT, format!("{e:#}")))
}

async fn job(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token)): Path<(String, String)>,
) -> Response {
    let mac = match caller(&shared, &mac, &token, peer) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let published = shared.published();
    let st = &published.state;
    let Some(m) = st.machine(&mac) else {
        return wrong_token();
    };
    let mut out = String::new();
    match imaging_policy(st, m) {
        Some(Policy::SaveImage { image }) => {
            out += &format!("mode save\nimage {image}\n");
        }
        Some(Policy::RestoreImage { image }) => {
            let r = ImageRef::parse(&image).unwrap_or(ImageRef {
                name: image.clone(),
                version: None,
            });
            out += &format!("mode restore\nimage {}\n", r.name);
            if let Some(v) = st.image_version(&r) {
                out += &format!("version {}\n", v.version);
            }
        }
        _ => {
            return text(
                StatusCode::CONFLICT,
                format!("{mac} is not set to save or restore an image (see `nmt show {mac}`)"),
            );
        }
    }
    if let Some(d) = &m.rootdev {
        out += &format!("rootdev {d}\n");
    }
    text(StatusCode::OK, out)
}

async fn save_start(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token)): Path<(String, String)>,
    body: String,
) -> Response {
    let mac = match caller(&shared, &mac, &token, peer) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let inv = match Inventory::parse(&body) {
        Ok(i) => i,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e:#}")),
    };
    let images = store(&shared);
    match images.free_bytes() {
        Ok(free) if free < inv.needed_bytes() => {
            return text(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "the image directory {} has {} MiB free, and this disk uses up to {} MiB; \
                     free space there (or set [paths] images elsewhere) and boot the machine again",
                    images.root().display(),
                    free >> 20,
                    inv.needed_bytes() >> 20
                ),
            );
        }
        Ok(_) => {}
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
    }
    let events = match perform(&shared, mac, Command::StartImageSave { mac }, "image-save").await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let Some((image, version)) = events.iter().find_map(|e| match &e.event {
        nmt_projections::Event::ImageSaveStarted { image, version, .. } => {
            Some((image.clone(), *version))
        }
        _ => None,
    }) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "no save was started");
    };
    // Saves cut off earlier (their machine booted again, or nmtd stopped) leave nothing.
    let saving: std::collections::BTreeSet<String> = shared
        .published()
        .state
        .machines()
        .filter_map(|m| m.imaging.as_ref())
        .filter(|j| j.action == ImageAction::Save)
        .map(|j| format!("{}@{}", j.image, j.version))
        .collect();
    for gone in images.clean_partials(&saving) {
        tracing::info!(path = %gone.display(), "removed a save that was cut off");
    }
    if let Err(e) = images.begin(&image, version, &inv) {
        let reason = format!("nmtd could not start the image: {e:#}");
        let _ = perform(
            &shared,
            mac,
            Command::FailImage {
                mac,
                version,
                reason: reason.clone(),
            },
            "image-save",
        )
        .await;
        return text(StatusCode::INTERNAL_SERVER_ERROR, reason);
    }
    shared.progress.start(
        mac,
        ImageAction::Save,
        format!("{image}@{version}"),
        inv.needed_bytes(),
    );
    tracing::info!(%mac, %peer, %image, version, "image save started");
    text(StatusCode::OK, format!("version {version}"))
}

/// The machine calling (its token checked) and the image of its `action` job at `version`,
/// from the published state; or the refusal to answer.
fn job_of(
    shared: &Shared,
    (mac, token, peer): (&str, &str, SocketAddr),
    action: ImageAction,
    version: u32,
) -> Result<(Mac, String), Response> {
    let mac = caller(shared, mac, token, peer)?;
    let published = shared.published();
    published
        .state
        .machine(&mac)
        .and_then(|m| m.imaging.as_ref())
        .filter(|j| j.action == action && j.version == version)
        .map(|j| (mac, j.image.clone()))
        .ok_or_else(|| {
            let doing = match action {
                ImageAction::Save => "saving",
                ImageAction::Restore => "restoring",
            };
            text(
                StatusCode::CONFLICT,
                format!("{mac} is not {doing} version {version} of an image"),
            )
        })
}

async fn save_stream(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token, version, stream)): Path<(String, String, u32, String)>,
    body: Body,
) -> Response {
    let (mac, image) = match job_of(&shared, (&mac, &token, peer), ImageAction::Save, version) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let images = store(&shared);
    let Some((part, _)) = images.upload_paths(&image, version, &stream) else {
        return text(StatusCode::NOT_FOUND, "not a stream of an image");
    };
    // A stream is never larger than its disk (partclone copies used blocks; zstd adds
    // little), which bounds what a token holder can write.
    let cap = std::fs::read_to_string(part.with_file_name("inventory"))
        .ok()
        .and_then(|t| Inventory::parse(&t).ok())
        .map_or(0, |i| i.disk_size + (16 << 20));
    match receive(body, &part, cap, |n| shared.progress.add(&mac, n)).await {
        Ok(digest) => match images.stream_done(&image, version, &stream, &digest) {
            Ok(()) => {
                tracing::info!(%mac, %image, version, %stream, bytes = digest.bytes, "image stream stored");
                text(
                    StatusCode::OK,
                    format!("{} {}", digest.sha256, digest.bytes),
                )
            }
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        },
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            tracing::warn!(%mac, %image, version, %stream, "image stream not stored: {e:#}");
            text(StatusCode::BAD_REQUEST, format!("{e:#}"))
        }
    }
}

/// Write a request body to `path`, hashing it as it arrives.
async fn receive(
    body: Body,
    path: &std::path::Path,
    cap: u64,
    progress: impl Fn(u64),
) -> anyhow::Result<StreamDigest> {
    let mut f = tokio::fs::File::create(path).await?;
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| anyhow::anyhow!("the stream broke off: {e}"))?;
        bytes += chunk.len() as u64;
        if bytes > cap {
            anyhow::bail!("the stream is larger than its disk");
        }
        hash.update(&chunk);
        f.write_all(&chunk).await?;
        progress(chunk.len() as u64);
    }
    f.sync_all().await?;
    Ok(StreamDigest {
        sha256: hex(&hash.finalize()),
        bytes,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST …/save/N/done` or `…/save/N/failed`.
async fn save_end(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token, version, end)): Path<(String, String, u32, String)>,
    body: String,
) -> Response {
    let (mac, image) = match job_of(&shared, (&mac, &token, peer), ImageAction::Save, version) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let images = store(&shared);
    shared.progress.end(&mac);
    let fail = |reason: String| Command::FailImage {
        mac,
        version,
        reason,
    };
    match end.as_str() {
        "done" => {
            let finished = {
                let images = images.clone();
                let image = image.clone();
                tokio::task::spawn_blocking(move || images.finish(&image, version)).await
            };
            match finished {
                Ok(Ok(manifest)) => {
                    let cmd = Command::FinishImageSave {
                        mac,
                        version,
                        manifest,
                    };
                    match perform(&shared, mac, cmd, "image-save").await {
                        Ok(_) => {
                            tracing::info!(%mac, %image, version, "image saved");
                            text(StatusCode::OK, format!("saved {image}@{version}"))
                        }
                        Err(r) => r,
                    }
                }
                Ok(Err(e)) => {
                    let reason = format!("the image is incomplete: {e:#}");
                    images.discard(&image, version);
                    let _ = perform(&shared, mac, fail(reason.clone()), "image-save").await;
                    text(StatusCode::CONFLICT, reason)
                }
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        "failed" => {
            images.discard(&image, version);
            match perform(&shared, mac, fail(body), "image-save").await {
                Ok(_) => text(StatusCode::OK, "recorded"),
                Err(r) => r,
            }
        }
        _ => text(StatusCode::NOT_FOUND, "expected done or failed"),
    }
}

async fn restore_start(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token)): Path<(String, String)>,
) -> Response {
    let mac = match caller(&shared, &mac, &token, peer) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let events = match perform(
        &shared,
        mac,
        Command::StartImageRestore { mac },
        "image-restore",
    )
    .await
    {
        Ok(e) => e,
        Err(r) => return r,
    };
    let Some((image, version)) = events.iter().find_map(|e| match &e.event {
        nmt_projections::Event::ImageRestoreStarted { image, version, .. } => {
            Some((image.clone(), *version))
        }
        _ => None,
    }) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "no restore was started");
    };
    let published = shared.published();
    let Some(v) = published
        .state
        .image(&image)
        .and_then(|i| i.versions.get(&version))
    else {
        return text(StatusCode::CONFLICT, "the image is gone");
    };
    let (multicast, session) = shared.multicast.join(
        &published.config.images,
        &store(&shared),
        &published.state,
        mac,
        v,
    );
    if let Some(job) = session {
        tokio::spawn(super::multicast::send(shared.clone(), job));
    }
    let m = &v.manifest;
    shared.progress.start(
        mac,
        ImageAction::Restore,
        format!("{image}@{version}"),
        m.stored_bytes(),
    );
    let mut out = format!("image {image} {version}\nlabel {}\n", m.label);
    out += &format!("stream table {} {}\n", m.table.sha256, m.table.bytes);
    out += &format!("stream head {} {}\n", m.head.sha256, m.head.bytes);
    for p in &m.parts {
        out += &format!(
            "part {} {} {} {} {} {}\n",
            p.number, p.fstype, p.size, p.tool, p.stream.sha256, p.stream.bytes
        );
    }
    if let Some(line) = &multicast {
        out += line;
        out.push('\n');
    }
    tracing::info!(%mac, %peer, %image, version, multicast = multicast.is_some(), "image restore started");
    text(StatusCode::OK, out)
}

async fn restore_stream(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token, version, stream)): Path<(String, String, u32, String)>,
    req: Request,
) -> Response {
    let (mac, image) = match job_of(&shared, (&mac, &token, peer), ImageAction::Restore, version) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let published = shared.published();
    let digest = published
        .state
        .image(&image)
        .and_then(|i| i.versions.get(&version))
        .and_then(|v| {
            v.manifest
                .streams()
                .into_iter()
                .find(|(s, _)| *s == stream)
                .map(|(_, d)| d.sha256.clone())
        });
    let (Some(digest), Some(path)) = (digest, store(&shared).stored(&image, version, &stream))
    else {
        return text(StatusCode::NOT_FOUND, "not a stream of this image");
    };
    // `Range` is honoured, so a broken transfer resumes where it stopped.
    let served = tower::ServiceExt::oneshot(tower_http::services::ServeFile::new(path), req).await;
    let mut resp = match served {
        Ok(r) => {
            let counted = shared.clone();
            r.map(|b| {
                Body::from_stream(Body::new(b).into_data_stream().inspect(move |c| {
                    if let Ok(c) = c {
                        counted.progress.add(&mac, c.len() as u64);
                    }
                }))
            })
        }
        Err(e) => match e {},
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{image}@{version} {stream} {digest}")) {
        resp.headers_mut().insert("x-nmt-stream", v);
    }
    resp
}

/// `POST …/restore/N/done` (one `STREAM SHA256` line per stream) or `…/restore/N/failed`.
async fn restore_end(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((mac, token, version, end)): Path<(String, String, u32, String)>,
    body: String,
) -> Response {
    let mac = match caller(&shared, &mac, &token, peer) {
        Ok(m) => m,
        Err(r) => return r,
    };
    shared.progress.end(&mac);
    let cmd = match end.as_str() {
        "done" => {
            let digests: BTreeMap<String, String> = body
                .lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(s, d)| (s.trim().to_string(), d.trim().to_string()))
                .take(256)
                .collect();
            Command::FinishImageRestore {
                mac,
                version,
                digests,
            }
        }
        "failed" => Command::FailImage {
            mac,
            version,
            reason: body,
        },
        _ => return text(StatusCode::NOT_FOUND, "expected done or failed"),
    };
    let events = match perform(&shared, mac, cmd, "image-restore").await {
        Ok(e) => e,
        Err(r) => return r,
    };
    match events.last().map(|e| &e.event) {
        Some(nmt_projections::Event::ImageRestored { image, version, .. }) => {
            tracing::info!(%mac, %peer, %image, version, "image restored and verified");
            text(StatusCode::OK, format!("restored {image}@{version}"))
        }
        Some(nmt_projections::Event::ImageFailed { reason, .. }) if end == "done" => {
            text(StatusCode::CONFLICT, format!("not verified: {reason}"))
        }
        _ => text(StatusCode::OK, "recorded"),
    }
}

/// Image saves and restores in flight: bytes so far against the expected total, by machine.
#[derive(Default)]
pub struct Progress {
    inner: std::sync::Mutex<std::collections::HashMap<Mac, crate::app::ImagingProgress>>,
}

impl Progress {
    /// Start following a machine's job.
    fn start(&self, mac: Mac, action: ImageAction, image: String, total: u64) {
        self.lock().insert(
            mac,
            crate::app::ImagingProgress {
                mac,
                name: None,
                action: action.to_string(),
                image,
                done: 0,
                total,
                updated: jiff::Timestamp::now(),
            },
        );
    }

    /// `n` more bytes went by.
    fn add(&self, mac: &Mac, n: u64) {
        if let Some(p) = self.lock().get_mut(mac) {
            p.done += n;
            p.updated = jiff::Timestamp::now();
        }
    }

    /// The job ended.
    fn end(&self, mac: &Mac) {
        self.lock().remove(mac);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Mac, crate::app::ImagingProgress>>
    {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every job in flight, named as the state names its machine; a job whose machine is
    /// no longer imaging (it booted again) is dropped.
    pub fn all(&self, st: &nmt_projections::State) -> Vec<crate::app::ImagingProgress> {
        let mut map = self.lock();
        map.retain(|mac, _| st.machine(mac).is_some_and(|m| m.imaging.is_some()));
        let mut out: Vec<_> = map
            .values()
            .cloned()
            .map(|mut p| {
                p.name = st.machine(&p.mac).and_then(|m| m.name.clone());
                p
            })
            .collect();
        out.sort_by_key(|p| p.mac);
        out
    }
}
