//! Live updates: `GET /events` is a server-sent event stream that says `commit` with the
//! last sequence number whenever events were appended (a DHCP line, a CLI change, a form).
//! Pages then fetch what they show again; the stream carries no data of its own.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;

use super::Web;

/// Bursts (a log replayed, a pool booting) become one update per quarter second.
const SETTLE: Duration = Duration::from_millis(250);

/// `GET /events`.
pub async fn events(
    State(web): State<Arc<Web>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = web.shared.engine.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        tokio::time::sleep(SETTLE).await;
        let seq = *rx.borrow_and_update();
        Some((
            Ok(Event::default().event("commit").data(seq.to_string())),
            rx,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
