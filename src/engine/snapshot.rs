//! Snapshots: a cache of the folded state every SNAPSHOT_EVERY events, so opening the store
//! and as-of queries do not refold the whole log. Only a shortcut: an unreadable snapshot is
//! ignored and the log refolded.

use nmt_projections::State;

/// Write a snapshot of the state after this many events.
pub const SNAPSHOT_EVERY: u64 = 1000;
/// Bump the version whenever the shape of `State` changes (a release number alone is not
/// enough during development); an unreadable snapshot is ignored and the log refolded.
/// v7 is v6 compressed with zstd: v6 snapshots are still read.
pub(super) const SNAPSHOT_MAGIC: &[u8] = b"nmt-state-snapshot-v7\0";
const SNAPSHOT_MAGIC_UNCOMPRESSED: &[u8] = b"nmt-state-snapshot-v6\0";

/// zstd's fastest level: a snapshot of 10,000 machines is about 1.3 MB of postcard, a few
/// hundred kB compressed, in a few milliseconds.
const SNAPSHOT_LEVEL: i32 = 1;

/// The snapshot layout: the release, and a number bumped whenever `State`'s fields change
/// within one.
pub(super) const SNAPSHOT_LAYOUT: &str = concat!(env!("CARGO_PKG_VERSION"), "+6");

pub(super) fn snapshot_encode(state: &State) -> Vec<u8> {
    let mut out = SNAPSHOT_MAGIC.to_vec();
    let v = SNAPSHOT_LAYOUT.as_bytes();
    out.push(v.len() as u8);
    out.extend_from_slice(v);
    let body = postcard::to_stdvec(state).expect("the state always encodes");
    let frame = zstd::bulk::compress(&body, SNAPSHOT_LEVEL).expect("zstd compresses in memory");
    out.extend_from_slice(&frame);
    out
}

/// Decode a snapshot written by this very release; anything else is ignored (the log is the
/// truth, a snapshot only a shortcut).
pub(super) fn snapshot_decode(bytes: &[u8]) -> Option<State> {
    let (rest, compressed) = match bytes.strip_prefix(SNAPSHOT_MAGIC) {
        Some(rest) => (rest, true),
        None => (bytes.strip_prefix(SNAPSHOT_MAGIC_UNCOMPRESSED)?, false),
    };
    let (&n, rest) = rest.split_first()?;
    let (v, body) = rest.split_at_checked(n as usize)?;
    if v != SNAPSHOT_LAYOUT.as_bytes() {
        return None;
    }
    let plain;
    let body = if compressed {
        let size = zstd::zstd_safe::get_frame_content_size(body).ok()??;
        plain = zstd::bulk::decompress(body, usize::try_from(size).ok()?).ok()?;
        &plain[..]
    } else {
        body
    };
    let mut s: State = postcard::from_bytes(body).ok()?;
    s.rebuild_indexes();
    Some(s)
}

#[cfg(test)]
mod tests {
    use nmt_projections::{Envelope, Event, Mac};

    use super::*;

    fn state() -> State {
        let mut st = State::default();
        for i in 0..500u32 {
            let env = Envelope {
                seq: u64::from(i) + 1,
                v: 1,
                recorded_at: jiff::Timestamp::UNIX_EPOCH,
                observed_at: jiff::Timestamp::UNIX_EPOCH,
                actor: "admin".into(),
                source: None,
                event: Event::MachineRegistered {
                    mac: Mac::new([0x52, 0x54, 0, 0, (i >> 8) as u8, i as u8]),
                    name: Some(format!("node{i:03}")),
                    ip: None,
                    group: None,
                },
            };
            st.apply(&env);
        }
        st
    }

    #[test]
    fn a_snapshot_round_trips_compressed() {
        let st = state();
        let bytes = snapshot_encode(&st);
        let plain = postcard::to_stdvec(&st).unwrap();
        assert!(
            bytes.len() * 2 < plain.len(),
            "{} of {}",
            bytes.len(),
            plain.len()
        );
        assert_eq!(snapshot_decode(&bytes).unwrap(), st);
    }

    #[test]
    fn an_uncompressed_snapshot_of_the_same_layout_still_reads() {
        let st = state();
        let mut old = SNAPSHOT_MAGIC_UNCOMPRESSED.to_vec();
        old.push(SNAPSHOT_LAYOUT.len() as u8);
        old.extend_from_slice(SNAPSHOT_LAYOUT.as_bytes());
        let old = postcard::to_extend(&st, old).unwrap();
        assert_eq!(snapshot_decode(&old).unwrap(), st);
        // A damaged one is ignored, never a panic.
        let mut bad = snapshot_encode(&st);
        bad.truncate(bad.len() - 10);
        assert!(snapshot_decode(&bad).is_none());
    }
}
