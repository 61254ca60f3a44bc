//! Arbitrary bytes as what a client sends on a connection to nmtd's machine-facing HTTP
//! service (install reports, answer files, NoCloud), served as nmtd's listener serves each
//! TCP connection (`nmt::fuzzing::serve_machine_connection`: hyper's HTTP/1.1, the same
//! router and timeouts), over an in-memory stream, to a client that then waits for nmtd to
//! close the connection (on a paused clock, so nmtd's timeouts pass at once). The state is
//! made once, as `nmt init` and a few commands make it: four machines, installing with a
//! preseed, an autoinstall (NoCloud) and a kickstart answer file, and one that boots its
//! disk.
//!
//! `TOKEN1` … `TOKEN4` in the input stand for the machines' report tokens, so that requests
//! with a valid token are fuzzed too. Without a valid token (as written or percent-encoded)
//! a request must change nothing (the event count, the reports accepted) and must not be
//! answered with an answer file (it carries the installer password's hash); a machine
//! changes only when its own token was sent. Whatever comes back is HTTP/1.x, and nmtd
//! closes every connection once its client is quiet. After a request that changed the
//! state, the next starts from the state as it was made again.

#![no_main]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nmt::app::{Action, perform};
use nmt::daemon::Shared;
use nmt::{Engine, OpenOptions};
use nmt_projections::{Mac, Source, report_token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MACS: [&str; 4] = [
    "52:54:00:00:00:01",
    "52:54:00:00:00:02",
    "52:54:00:00:00:03",
    "52:54:00:00:00:04",
];
const PLACEHOLDERS: [&[u8]; 4] = [b"TOKEN1", b"TOKEN2", b"TOKEN3", b"TOKEN4"];

static HTTP: LazyLock<Http> = LazyLock::new(Http::new);

struct Http {
    rt: tokio::runtime::Runtime,
    scratch: PathBuf,
    /// The state as made, copied for each new live one.
    template: PathBuf,
    live: Mutex<Live>,
}

struct Live {
    shared: Arc<Shared>,
    dir: PathBuf,
    generation: u64,
}

impl Http {
    fn new() -> Http {
        let scratch = nmt_fuzz::scratch("machine_http");
        let template = scratch.join("template");
        make_state(&template);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a tokio runtime");
        let live = Mutex::new(Live::copy(&scratch, &template, 0));
        let http = Http {
            rt,
            scratch,
            template,
            live,
        };
        http.check_itself();
        http
    }

    /// The checks mean something: with its token a machine gets its answer file (with the
    /// password's hash) and its report is taken (then the state is made again), without it
    /// a refusal.
    fn check_itself(&self) {
        let hash = {
            let live = self.live.lock().unwrap();
            let st = live.shared.published().state;
            st.installer_password()
                .expect("a password is set")
                .to_string()
        };
        let ok = self.request(b"GET /v1/answer/52-54-00-00-00-01/TOKEN1 HTTP/1.1\r\n\r\n");
        assert!(
            ok.starts_with(b"HTTP/1.1 200 "),
            "{}",
            String::from_utf8_lossy(&ok)
        );
        assert!(
            find(&ok, hash.as_bytes()),
            "the answer file carries the hash"
        );
        let refused = self.request(b"GET /v1/answer/52-54-00-00-00-01/TOKEN2 HTTP/1.1\r\n\r\n");
        assert!(refused.starts_with(b"HTTP/1.1 403 "));
        let report = b"POST /v1/report/52-54-00-00-00-01/TOKEN1 HTTP/1.1\r\n\
            Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 17\r\n\r\n\
            rootdev=/dev/sda1";
        let accepted = self.request(report);
        assert!(
            accepted.starts_with(b"HTTP/1.1 200 "),
            "{}",
            String::from_utf8_lossy(&accepted)
        );
        assert_eq!(
            self.live.lock().unwrap().generation,
            1,
            "made again after a change"
        );
    }

    /// Serve `data` as one connection's bytes and check what it did; what came back.
    fn request(&self, data: &[u8]) -> Vec<u8> {
        let mut live = self.live.lock().unwrap();
        let published = live.shared.published();
        let tokens = tokens(&published.state);
        let hash = published.state.installer_password().unwrap().to_string();
        let mut request = data.to_vec();
        for (placeholder, token) in PLACEHOLDERS.iter().zip(&tokens) {
            request = replace(&request, placeholder, token.as_bytes());
        }
        let decoded = percent_decoded(&request);
        // Which machines' tokens the request carries.
        let sent: Vec<bool> = tokens
            .iter()
            .map(|t| find(&request, t.as_bytes()) || find(&decoded, t.as_bytes()))
            .collect();
        let with_token = sent.contains(&true);
        let before = (published.state.last_seq(), accepted(&live.shared));

        let response = self.rt.block_on(exchange(live.shared.clone(), request));

        assert!(
            response.is_empty()
                || response.starts_with(b"HTTP/1.1 ")
                || response.starts_with(b"HTTP/1.0 "),
            "not an HTTP/1 answer: {:?}",
            String::from_utf8_lossy(&response[..response.len().min(64)])
        );
        let now = live.shared.published().state;
        let after = (now.last_seq(), accepted(&live.shared));
        for (m, sent) in MACS.iter().zip(&sent) {
            let mac = Mac::parse(m).unwrap();
            assert!(
                *sent || now.machine(&mac) == published.state.machine(&mac),
                "{m} changed by a request without its token"
            );
        }
        if !with_token {
            assert_eq!(
                after, before,
                "(events, reports accepted) changed without a token"
            );
            assert!(
                !find(&response, hash.as_bytes()),
                "an answer file was served without a token"
            );
        }
        if after.0 != before.0 {
            // The next request starts from the state as made.
            let generation = live.generation + 1;
            let new = Live::copy(&self.scratch, &self.template, generation);
            let old = std::mem::replace(&mut *live, new);
            drop(old.shared);
            let _ = std::fs::remove_dir_all(&old.dir);
        }
        response
    }
}

impl Live {
    fn copy(scratch: &Path, template: &Path, generation: u64) -> Live {
        let dir = scratch.join(format!("live-{generation}"));
        nmt_fuzz::copy_dir(template, &dir).expect("copying the state");
        let engine = Engine::open(&options(&dir, false)).expect("the copied state opens");
        Live {
            shared: nmt::fuzzing::machine_shared(engine),
            dir,
            generation,
        }
    }
}

fn options(dir: &Path, create: bool) -> OpenOptions {
    OpenOptions {
        state_dir: dir.to_path_buf(),
        config: None,
        wait: Duration::from_secs(10),
        create,
    }
}

/// `nmt init`, then the commands that give the four machines their policies.
fn make_state(dir: &Path) {
    let mut engine = Engine::open(&options(dir, true)).expect("nmt init");
    let policy = |range: &str, policy: &str| Action::Policy {
        range: range.into(),
        policy: policy.into(),
        once: false,
        members: false,
        reboot: false,
    };
    let add = |n: usize, group: Option<&str>| Action::MachineAdd {
        mac: Mac::parse(MACS[n - 1]).unwrap(),
        name: Some(format!("n{n}")),
        group: group.map(str::to_string),
        ip: None,
    };
    for action in [
        policy("@unknown", "install"),
        add(1, None),
        add(2, None),
        policy("n2", "install:ubuntu"),
        add(3, None),
        policy("n3", "install:kickstart"),
        Action::GroupAdd {
            group: "lab".into(),
            policy: None,
        },
        add(4, Some("lab")),
    ] {
        perform(&mut engine, action.clone(), "root", Source::Cli)
            .unwrap_or_else(|e| panic!("{action:?}: {e:#}"));
    }
}

/// Each machine's report token, as the state has it now.
fn tokens(st: &nmt_projections::State) -> Vec<String> {
    let key = st.site_key().expect("the state has a site key");
    MACS.iter()
        .map(|m| {
            let mac = Mac::parse(m).unwrap();
            let generation = st.machine(&mac).expect("made").install_generation();
            report_token(key, &mac, generation)
        })
        .collect()
}

/// Send `request` on a new connection and wait, as a client that keeps its connection open,
/// until nmtd closes it; what came back. The runtime's clock is paused and jumps ahead
/// whenever nothing is left to do but wait (never while a handler runs), so nmtd's timeouts
/// (10 s for headers and between requests, 10 s of a silent body, 30 s for a request) pass
/// at once.
async fn exchange(shared: Arc<Shared>, request: Vec<u8>) -> Vec<u8> {
    let peer: SocketAddr = "10.0.0.9:4242".parse().unwrap();
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let serve = nmt::fuzzing::serve_machine_connection(shared, server, peer);
    let talk = async move {
        let _ = client.write_all(&request).await;
        let mut response = Vec::new();
        let _ = client.read_to_end(&mut response).await;
        response
    };
    let both = async { tokio::join!(serve, talk).1 };
    tokio::time::timeout(Duration::from_secs(120), both)
        .await
        .expect("nmtd closes a connection whose client went quiet")
}

fuzz_target!(|data: &[u8]| {
    HTTP.request(data);
});

fn accepted(shared: &Shared) -> u64 {
    shared.counters.lock().unwrap().reports_accepted
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn replace(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// `%XX` decoded, as a path segment is before its handler sees it.
fn percent_decoded(text: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match (
            text.get(i + 1).and_then(|&c| hex(c)),
            text.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (Some(hi), Some(lo)) if text[i] == b'%' => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            _ => {
                out.push(text[i]);
                i += 1;
            }
        }
    }
    out
}
