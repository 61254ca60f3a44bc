//! How an event is kept in a store: its JSON (the form `journal export` writes), compressed
//! with zstd against a dictionary of nmt's own event shapes. An event of about 320 bytes of
//! JSON is kept in about 60.
//!
//! A stored value starts with its format: `{` is plain JSON (every store written before
//! events were compressed, and still read as it is), and [`ZSTD_V1`] is a zstd frame made
//! with `events-v1.zdict`. A dictionary is never changed once released: a better one is a new
//! format byte beside it, and the old one stays to read what it wrote.
//!
//! `events-v1.zdict` was trained (`zstd --train --maxdict=32768`) on about 4,600 envelopes,
//! up to 600 of each event type, from the stores the test suite leaves (dnsmasq, ISC dhcpd,
//! Kea and tftpd lines, installer logs, admin commands, images, power, schedules). Events
//! holding anything like a key, a token or a password hash were left out of the samples.

use std::cell::RefCell;
use std::sync::LazyLock;

use nmt_projections::Envelope;
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::zstd_safe::{CParameter, get_frame_content_size};

use super::StoreError;

/// The format byte of a zstd frame made with `events-v1.zdict`.
pub const ZSTD_V1: u8 = 0x01;

const DICT_V1: &[u8] = include_bytes!("events-v1.zdict");

/// zstd's level: small frames gain next to nothing above it, and lose speed.
const LEVEL: i32 = 3;

/// The largest event a stored frame may claim to hold (a corrupt size is refused rather
/// than allocated).
const MAX_EVENT: u64 = 64 << 20;

static ENCODE_V1: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICT_V1, LEVEL));
static DECODE_V1: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICT_V1));

thread_local! {
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

fn backend(e: std::io::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// The stored form of an event.
pub fn encode(env: &Envelope) -> Result<Vec<u8>, StoreError> {
    let json = env.to_json();
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            let mut new = Compressor::with_prepared_dictionary(&ENCODE_V1).map_err(backend)?;
            // The format byte names the dictionary, and redb checksums its pages.
            new.set_parameter(CParameter::DictIdFlag(false))
                .map_err(backend)?;
            new.set_parameter(CParameter::ChecksumFlag(false))
                .map_err(backend)?;
            *c = Some(new);
        }
        let c = c.as_mut().expect("just made");
        let mut out = Vec::with_capacity(json.len() / 3 + 16);
        out.push(ZSTD_V1);
        let frame = c.compress(&json).map_err(backend)?;
        out.extend_from_slice(&frame);
        Ok(out)
    })
}

/// A stored event, which takes its sequence number from its key.
pub fn decode(seq: u64, bytes: &[u8]) -> Result<Envelope, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { seq, reason };
    let json;
    let text: &[u8] = match bytes.first() {
        Some(b'{') => bytes,
        Some(&ZSTD_V1) => {
            let frame = &bytes[1..];
            let size = match get_frame_content_size(frame) {
                Ok(Some(n)) if n <= MAX_EVENT => n as usize,
                Ok(_) => return Err(corrupt("its compressed frame has no sane size".into())),
                Err(_) => return Err(corrupt("its compressed frame is damaged".into())),
            };
            json = DECOMPRESSOR.with(|d| {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = Some(
                        Decompressor::with_prepared_dictionary(&DECODE_V1)
                            .map_err(|e| corrupt(e.to_string()))?,
                    );
                }
                d.as_mut()
                    .expect("just made")
                    .decompress(frame, size)
                    .map_err(|e| corrupt(format!("its compressed frame does not decompress: {e}")))
            })?;
            &json
        }
        Some(b) => {
            return Err(corrupt(format!(
                "its stored format {b:#04x} is unknown (written by a newer nmt?)"
            )));
        }
        None => return Err(corrupt("it is empty".into())),
    };
    let mut env = Envelope::from_json(text).map_err(|e| corrupt(e.to_string()))?;
    env.seq = seq;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::from_json(
            br#"{"seq":7,"v":1,"recorded_at":"2026-12-06T13:57:49.418707617Z","observed_at":"2026-12-06T13:57:49Z","actor":"dnsmasq@boot1","source":{"stream":"log","identity":170,"offset":4242},"event":{"type":"DhcpSeen","mac":"52:54:00:12:34:56","kind":"ack","ip":"10.1.2.3","arch":0,"server":"dnsmasq","via":"br0"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn an_event_round_trips_and_is_kept_in_a_fraction_of_its_json() {
        let env = sample();
        let stored = encode(&env).unwrap();
        assert_eq!(stored[0], ZSTD_V1);
        let json = env.to_json();
        assert!(
            stored.len() * 3 < json.len(),
            "{} bytes stored for {} of JSON",
            stored.len(),
            json.len()
        );
        assert_eq!(decode(7, &stored).unwrap(), env);
    }

    #[test]
    fn events_stored_as_plain_json_by_earlier_releases_still_read() {
        let env = sample();
        assert_eq!(decode(7, &env.to_json()).unwrap(), env);
    }

    #[test]
    fn a_damaged_or_unknown_value_is_corrupt_never_a_panic() {
        let stored = encode(&sample()).unwrap();
        for bad in [
            &stored[..stored.len() - 3],
            &stored[..1],
            &[][..],
            &[0x02, 1, 2, 3][..],
            &[ZSTD_V1, 0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff][..],
        ] {
            match decode(9, bad) {
                Err(StoreError::Corrupt { seq: 9, .. }) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let mut flipped = stored.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        // A flipped byte either fails to decompress or to parse, or (rarely) reads as other
        // valid JSON: never a panic.
        let _ = decode(9, &flipped);
    }
}
