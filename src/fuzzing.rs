//! Entry points for the fuzz targets in `fuzz/` (run with cargo-fuzz): the code `nmt journal
//! import` and nmtd's machine-facing listener run, reachable from outside the crate. Not an
//! API; nothing else uses it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::daemon::Shared;
use crate::engine::import_journal;
use crate::{Engine, OpenOptions};

/// `nmt journal import [--partial] FILE --state STATE_DIR` with `export` as FILE's bytes:
/// streamed into a new store beside `state_dir`'s, which takes its place once the whole
/// export was checked. The number of events imported.
pub fn journal_import(export: &[u8], state_dir: &Path, partial: bool) -> Result<usize> {
    let opts = OpenOptions {
        state_dir: state_dir.to_path_buf(),
        config: None,
        wait: Duration::from_secs(10),
        create: true,
    };
    Ok(import_journal(&opts, export, Path::new("export"), partial)?.events as usize)
}

/// What nmtd's handlers share, around `engine` (no web UI, no sources).
pub fn machine_shared(engine: Engine) -> Arc<Shared> {
    Arc::new(Shared::new(engine, None))
}

/// Serve one connection from `peer` on nmtd's machine-facing HTTP service, as its listener
/// serves each TCP connection it accepts: the same router, timeouts and HTTP/1.1 settings.
pub async fn serve_machine_connection<S>(shared: Arc<Shared>, stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    crate::daemon::serve_machine_connection(shared, stream, peer).await;
}
