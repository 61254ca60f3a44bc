//! Snapshots: a cache of the folded state every SNAPSHOT_EVERY events, so opening the store
//! and as-of queries do not refold the whole log. Only a shortcut: an unreadable snapshot is
//! ignored and the log refolded.

use nmt_projections::State;

/// Write a snapshot of the state after this many events.
pub const SNAPSHOT_EVERY: u64 = 1000;
/// Bump the version whenever the shape of `State` changes (a release number alone is not
/// enough during development); an unreadable snapshot is ignored and the log refolded.
pub(super) const SNAPSHOT_MAGIC: &[u8] = b"nmt-state-snapshot-v6\0";

/// The snapshot layout: the release, and a number bumped whenever `State`'s fields change
/// within one.
pub(super) const SNAPSHOT_LAYOUT: &str = concat!(env!("CARGO_PKG_VERSION"), "+6");

pub(super) fn snapshot_encode(state: &State) -> Vec<u8> {
    let mut out = SNAPSHOT_MAGIC.to_vec();
    let v = SNAPSHOT_LAYOUT.as_bytes();
    out.push(v.len() as u8);
    out.extend_from_slice(v);
    postcard::to_extend(state, out).expect("the state always encodes")
}

/// Decode a snapshot written by this very release; anything else is ignored (the log is the
/// truth, a snapshot only a shortcut).
pub(super) fn snapshot_decode(bytes: &[u8]) -> Option<State> {
    let rest = bytes.strip_prefix(SNAPSHOT_MAGIC)?;
    let (&n, rest) = rest.split_first()?;
    let (v, body) = rest.split_at_checked(n as usize)?;
    if v != SNAPSHOT_LAYOUT.as_bytes() {
        return None;
    }
    let mut s: State = postcard::from_bytes(body).ok()?;
    s.rebuild_indexes();
    Some(s)
}
