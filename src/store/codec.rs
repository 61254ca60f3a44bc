//! How events are kept in a store: their JSON (the form `journal export` writes), compressed
//! with zstd against a dictionary of nmt's own event shapes.
//!
//! A stored value starts with its format:
//! - `{` is one event as plain JSON (every store written before events were compressed,
//!   still read as it is);
//! - [`ZSTD_V1`] is one event, a zstd frame made with `events-v1.zdict` (an event of about
//!   320 bytes of JSON in about 60 to 110);
//! - [`BLOCK_V1`] is a [`Block`]: up to [`BLOCK_EVENTS`] consecutive events, their JSON lines
//!   in one zstd frame made with the same dictionary, behind the number of events. Compressing
//!   32 events at once costs a quarter of compressing them one by one, and keeps them in about
//!   23 bytes each.
//!
//! A dictionary is never changed once released: a better one is a new format byte beside it,
//! and the old one stays to read what it wrote.
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

/// The format byte of a block of events (see [`Block`]).
pub const BLOCK_V1: u8 = 0x02;

/// The most events a block holds. Reading one event decompresses its whole block: measured
/// on 200,000 events of a mixed DHCP log, blocks of 32 decompress in 2.8 µs and keep an event
/// in 23 bytes, blocks of 64 in 4.8 µs and 18 bytes (one machine's history of 1,000 events
/// spread over as many blocks is what this weighs on).
pub const BLOCK_EVENTS: usize = 32;

/// A block is closed once its JSON reaches this size (a large event gets a block of its own).
pub const BLOCK_BYTES: usize = 64 << 10;

/// zstd's level: small frames gain next to nothing above it, and lose speed.
const LEVEL: i32 = 3;

/// zstd's level for blocks: measured on 200,000 events of a mixed DHCP log, level 1 is twice
/// as fast as 3 and keeps them no larger.
const BLOCK_LEVEL: i32 = 1;

/// The largest event a stored frame may claim to hold (a corrupt size is refused rather
/// than allocated).
const MAX_EVENT: u64 = 64 << 20;

static ENCODE_V1: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICT_V1, LEVEL));
static ENCODE_BLOCK_V1: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICT_V1, BLOCK_LEVEL));
static DECODE_V1: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICT_V1));

thread_local! {
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static BLOCK_COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

fn backend(e: std::io::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Compress with a thread's own compressor for `dict` (made once per thread): a frame without
/// the dictionary's id (the format byte names it) or a checksum (redb checksums its pages).
fn compress(
    slot: &'static std::thread::LocalKey<RefCell<Option<Compressor<'static>>>>,
    dict: &'static EncoderDictionary<'static>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    slot.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            let mut new = Compressor::with_prepared_dictionary(dict).map_err(backend)?;
            new.set_parameter(CParameter::DictIdFlag(false))
                .map_err(backend)?;
            new.set_parameter(CParameter::ChecksumFlag(false))
                .map_err(backend)?;
            *c = Some(new);
        }
        let c = c.as_mut().expect("just made");
        let frame = c.compress(data).map_err(backend)?;
        out.extend_from_slice(&frame);
        Ok(())
    })
}

/// Decompress a frame made with `events-v1.zdict` of at most `max` bytes.
fn decompress(frame: &[u8], max: u64) -> Result<Vec<u8>, String> {
    let size = match get_frame_content_size(frame) {
        Ok(Some(n)) if n <= max => n as usize,
        Ok(_) => return Err("its compressed frame has no sane size".into()),
        Err(_) => return Err("its compressed frame is damaged".into()),
    };
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(
                Decompressor::with_prepared_dictionary(&DECODE_V1).map_err(|e| e.to_string())?,
            );
        }
        d.as_mut()
            .expect("just made")
            .decompress(frame, size)
            .map_err(|e| format!("its compressed frame does not decompress: {e}"))
    })
}

/// The stored form of one event ([`ZSTD_V1`]).
pub fn encode(env: &Envelope) -> Result<Vec<u8>, StoreError> {
    let json = env.to_json();
    let mut out = Vec::with_capacity(json.len() / 3 + 16);
    out.push(ZSTD_V1);
    compress(&COMPRESSOR, &ENCODE_V1, &json, &mut out)?;
    Ok(out)
}

/// The stored form of consecutive events given as their JSON ([`BLOCK_V1`]): the format
/// byte, the number of events (u32, little-endian), then one zstd frame of their JSON lines.
pub fn encode_block<'a>(
    jsons: impl ExactSizeIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, StoreError> {
    let count = u32::try_from(jsons.len())
        .map_err(|_| backend(std::io::Error::other("block too large")))?;
    let jsons: Vec<&[u8]> = jsons.collect();
    let mut text = Vec::with_capacity(jsons.iter().map(|j| j.len() + 1).sum());
    for json in jsons {
        // Compact JSON has no raw line break (serde_json escapes them in strings).
        debug_assert!(!json.contains(&b'\n'));
        text.extend_from_slice(json);
        text.push(b'\n');
    }
    let mut out = Vec::with_capacity(text.len() / 8 + 16);
    out.push(BLOCK_V1);
    out.extend_from_slice(&count.to_le_bytes());
    compress(&BLOCK_COMPRESSOR, &ENCODE_BLOCK_V1, &text, &mut out)?;
    Ok(out)
}

/// How many events a stored block holds, read from its header (`seq` is its first event's,
/// for the error).
pub fn block_len(seq: u64, bytes: &[u8]) -> Result<u64, StoreError> {
    match bytes {
        [BLOCK_V1, a, b, c, d, ..] => Ok(u64::from(u32::from_le_bytes([*a, *b, *c, *d]))),
        _ => Err(StoreError::Corrupt {
            seq,
            reason: "its block has no header".into(),
        }),
    }
}

/// A decompressed block: consecutive events' JSON lines, the first one's sequence number
/// being the block's key.
pub struct Block {
    first: u64,
    text: Vec<u8>,
    /// Where each line starts, and one past the last line's break.
    starts: Vec<usize>,
}

impl Block {
    /// Decompress a stored block whose first event is `first`.
    pub fn decode(first: u64, bytes: &[u8]) -> Result<Block, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { seq: first, reason };
        let count = block_len(first, bytes)? as usize;
        // A block is closed at BLOCK_BYTES, or holds one larger event.
        let max = MAX_EVENT + (BLOCK_BYTES + BLOCK_EVENTS) as u64;
        let text = decompress(&bytes[5..], max).map_err(|e| corrupt(format!("its block: {e}")))?;
        let mut starts = Vec::with_capacity(count + 1);
        starts.push(0);
        starts.extend(memchr::memchr_iter(b'\n', &text).map(|i| i + 1));
        if starts.len() != count + 1 || starts.last() != Some(&text.len()) {
            return Err(corrupt(format!(
                "its block claims {count} events and holds {} lines",
                starts.len() - 1
            )));
        }
        Ok(Block {
            first,
            text,
            starts,
        })
    }

    /// The sequence numbers it holds.
    pub fn seqs(&self) -> std::ops::Range<u64> {
        self.first..self.first + (self.starts.len() as u64 - 1)
    }

    /// An event's JSON (`seq` within [`Block::seqs`]).
    pub fn json(&self, seq: u64) -> &[u8] {
        let i = (seq - self.first) as usize;
        &self.text[self.starts[i]..self.starts[i + 1] - 1]
    }

    /// An event (`seq` within [`Block::seqs`]).
    pub fn event(&self, seq: u64) -> Result<Envelope, StoreError> {
        from_json(seq, self.json(seq))
    }
}

fn from_json(seq: u64, json: &[u8]) -> Result<Envelope, StoreError> {
    let mut env = Envelope::from_json(json).map_err(|e| StoreError::Corrupt {
        seq,
        reason: e.to_string(),
    })?;
    env.seq = seq;
    Ok(env)
}

/// A stored event ([`ZSTD_V1`] or plain JSON), which takes its sequence number from its key.
pub fn decode(seq: u64, bytes: &[u8]) -> Result<Envelope, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { seq, reason };
    match bytes.first() {
        Some(b'{') => from_json(seq, bytes),
        Some(&ZSTD_V1) => from_json(seq, &decompress(&bytes[1..], MAX_EVENT).map_err(corrupt)?),
        Some(b) => Err(corrupt(format!(
            "its stored format {b:#04x} is unknown (written by a newer nmt?)"
        ))),
        None => Err(corrupt("it is empty".into())),
    }
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
    fn a_block_round_trips_and_a_damaged_one_is_corrupt() {
        let mut envs: Vec<Envelope> = (0..40).map(|_| sample()).collect();
        for (i, e) in envs.iter_mut().enumerate() {
            e.seq = 100 + i as u64;
        }
        let jsons: Vec<Vec<u8>> = envs.iter().map(Envelope::to_json).collect();
        let stored = encode_block(jsons.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(stored[0], BLOCK_V1);
        assert_eq!(block_len(100, &stored).unwrap(), 40);
        // Forty events in less than one compressed alone.
        assert!(stored.len() < 40 * encode(&envs[0]).unwrap().len() / 4);
        let block = Block::decode(100, &stored).unwrap();
        assert_eq!(block.seqs(), 100..140);
        for e in &envs {
            assert_eq!(&block.event(e.seq).unwrap(), e);
        }
        let mut wrong_count = stored.clone();
        wrong_count[1] = 41;
        for bad in [&stored[..3], &stored[..stored.len() - 2], &wrong_count[..]] {
            match Block::decode(100, bad) {
                Err(StoreError::Corrupt { seq: 100, .. }) => {}
                Err(other) => panic!("{other:?}"),
                Ok(_) => panic!("a damaged block decoded"),
            }
        }
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
