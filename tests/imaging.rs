//! Disk images through nmtd's machine-facing API, as the imager drives it (docs/imaging.md):
//! saved streams, versions, verified restores, failures and removal. `curl` plays the
//! imager's HTTP client, as in the imager itself; the lab stories boot the real imager.

use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::daemon::token_of;
use crate::util::{Daemon, Nmt, Tmpfs, mac, require_tool};

const INVENTORY: &str =
    "disk vda 67108864 dos\npart 1 /dev/vda1 ext4 66060288 4000000 partclone.extfs\n";

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// curl as the imager runs it: `-T -` streams the body chunked from stdin.
fn curl(method: &str, url: &str, body: Option<&[u8]>, extra: &[&str]) -> (u16, Vec<u8>) {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
    c.args(extra);
    if body.is_some() {
        c.args(["-T", "-"]);
    }
    c.arg(url);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().expect("curl runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        if let Some(b) = body {
            stdin.write_all(b).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = out.stdout;
    let cut = text.iter().rposition(|b| *b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&text[cut + 1..]).parse().unwrap();
    (code, text[..cut].to_vec())
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Streams {
    table: Vec<u8>,
    head: Vec<u8>,
    p1: Vec<u8>,
}

/// A real partition stream: an ext4 filesystem holding a marker, through partclone and zstd
/// as the imager sends it.
fn streams() -> Streams {
    require_tool("partclone.extfs", "partclone");
    require_tool("zstd", "zstd");
    let dir = crate::util::TestDir::new();
    std::fs::create_dir(dir.join("root")).unwrap();
    std::fs::write(dir.join("root/marker"), "NMT-IMAGE-MARKER\n").unwrap();
    let fs = dir.join("p1.ext4");
    let root = dir.join("root");
    crate::util::must(&[
        "mke2fs",
        "-q",
        "-t",
        "ext4",
        "-d",
        root.to_str().unwrap(),
        fs.to_str().unwrap(),
        "8M",
    ]);
    let out = Command::new("bash")
        .args(["-c", "set -o pipefail; partclone.extfs -c -s \"$0\" -o - -L /dev/null 2>/dev/null | zstd -q -c"])
        .arg(&fs)
        .output()
        .unwrap();
    assert!(out.status.success());
    Streams {
        table: b"label: dos\nunit: sectors\n/dev/vda1 : start=2048, size=129024, type=83\n"
            .to_vec(),
        head: (0..1 << 20).map(|i| (i % 251) as u8).collect(),
        p1: out.stdout,
    }
}

#[test]
fn an_image_is_saved_in_versions_restored_with_verified_digests_and_removed() {
    require_tool("curl", "curl");
    let t = Nmt::new();
    let d = Daemon::start(&t, &[]);
    let base = format!("http://{}", d.http);
    t.ok(&["machine", "add", &mac(1), "--name", "golden"]);
    t.ok(&["machine", "add", &mac(2), "--name", "lab02"]);
    t.ok(&["policy", "golden", "save-image:lab", "--once"]);
    let tok = token_of(&t, &mac(1));
    let dashed = mac(1).replace(':', "-");
    let me = format!("{base}/v1/image/{dashed}/{tok}");

    // A wrong token changes nothing.
    let events = t.event_count();
    let (code, _) = curl(
        "POST",
        &format!("{base}/v1/image/{dashed}/{}/save", "0".repeat(32)),
        Some(INVENTORY.as_bytes()),
        &[],
    );
    assert_eq!(code, 403);
    assert_eq!(t.event_count(), events);

    let (code, job) = curl("GET", &format!("{me}/job"), None, &[]);
    assert_eq!(code, 200, "{}", s(&job));
    assert_eq!(s(&job), "mode save\nimage lab\n");

    // Save version 1; the image is not visible until done.
    let st = streams();
    let (code, v) = curl(
        "POST",
        &format!("{me}/save"),
        Some(INVENTORY.as_bytes()),
        &[],
    );
    assert_eq!((code, s(&v)), (200, "version 1\n".to_string()));
    for (name, bytes) in [("table", &st.table), ("head", &st.head), ("p1", &st.p1)] {
        let (code, out) = curl("PUT", &format!("{me}/save/1/{name}"), Some(bytes), &[]);
        assert_eq!(code, 200, "{name}: {}", s(&out));
        assert!(
            s(&out).starts_with(&hex(&Sha256::digest(bytes))),
            "{}",
            s(&out)
        );
        assert!(t.json(&["image", "list"]).as_array().unwrap().is_empty());
    }
    // Live progress in `nmt status`: every byte received, against the used bytes declared.
    let status = t.json(&["status"]);
    let p = &status["imaging"][0];
    assert_eq!(p["name"], "golden", "{status:#}");
    assert_eq!(p["action"], "save", "{status:#}");
    assert_eq!(p["image"], "lab@1", "{status:#}");
    assert_eq!(
        p["done"].as_u64().unwrap() as usize,
        st.table.len() + st.head.len() + st.p1.len(),
        "{status:#}"
    );
    assert!(t.ok(&["status"]).contains("imaging: golden saving lab@1:"));
    assert!(
        t.ok(&["show", "golden"])
            .contains("imaging      saving lab@1:")
    );
    assert_eq!(t.json(&["show", "golden"])["imaging"]["image"], "lab@1");
    let (code, out) = curl("POST", &format!("{me}/save/1/done"), Some(b""), &[]);
    assert_eq!(code, 200, "{}", s(&out));
    assert_eq!(t.json(&["status"])["imaging"], serde_json::json!([]));
    // nmtd checked it (digests, partclone.chkimg), and it reads back with stock tools.
    let restored = crate::util::TestDir::new();
    let raw = restored.join("p1.raw");
    let ok = Command::new("bash")
        .args(["-c", "set -o pipefail; zstd -dcq \"$0\" | partclone.restore -s - -O \"$1\" -W -L /dev/null >/dev/null 2>&1"])
        .arg(t.path("images/lab@1/p1.partclone.zst"))
        .arg(&raw)
        .status()
        .unwrap();
    assert!(ok.success());
    let cat = crate::util::must(&["debugfs", "-R", "cat /marker", raw.to_str().unwrap()]);
    assert!(cat.contains("NMT-IMAGE-MARKER"), "{cat}");
    assert!(t.ok(&["image", "check"]).contains("lab@1: sound"));
    let list = t.json(&["image", "list"]);
    assert_eq!(list[0]["image"], "lab");
    assert_eq!(list[0]["version"], 1);
    let shown = t.json(&["image", "show", "lab"]);
    assert_eq!(
        shown["manifest"]["parts"][0]["stream"]["sha256"],
        hex(&Sha256::digest(&st.p1))
    );
    assert_eq!(shown["manifest"]["parts"][0]["fstype"], "ext4");
    let dir = t.path("images/lab@1");
    assert_eq!(std::fs::read(dir.join("p1.partclone.zst")).unwrap(), st.p1);
    assert_eq!(std::fs::read(dir.join("table.sfdisk")).unwrap(), st.table);
    assert!(dir.join("manifest.json").exists());
    assert!(t.ok(&["image", "show", "lab"]).contains("p1"));
    let h = t.ok(&["history", "golden"]);
    assert!(h.contains("saved image lab@1"), "{h}");

    // Restore onto lab02: the manifest, a stream resumed with Range, then the digests.
    t.ok(&["policy", "lab02", "restore-image:lab", "--once"]);
    let tok2 = token_of(&t, &mac(2));
    let me2 = format!("{base}/v1/image/{}/{tok2}", mac(2).replace(':', "-"));
    let (code, manifest) = curl("GET", &format!("{me2}/restore"), None, &[]);
    assert_eq!(code, 200, "{}", s(&manifest));
    let manifest = s(&manifest);
    assert!(
        manifest.starts_with("image lab 1\nlabel dos\n"),
        "{manifest}"
    );
    assert!(
        manifest.contains(&format!(
            "part 1 ext4 66060288 partclone.extfs {} {}",
            hex(&Sha256::digest(&st.p1)),
            st.p1.len()
        )),
        "{manifest}"
    );
    let (code, tail) = curl(
        "GET",
        &format!("{me2}/restore/1/p1"),
        None,
        &["-H", "Range: bytes=100-"],
    );
    assert_eq!(code, 206);
    assert_eq!(tail, st.p1[100..]);
    let (_, headers) = curl(
        "GET",
        &format!("{me2}/restore/1/head"),
        None,
        &["-D", "-", "-o", "/dev/null"],
    );
    assert!(
        s(&headers).to_ascii_lowercase().contains(&format!(
            "x-nmt-stream: lab@1 head {}",
            hex(&Sha256::digest(&st.head))
        )),
        "{}",
        s(&headers)
    );
    // A wrong digest is a failure: recorded, and lab02 stays on its restore policy.
    let wrong = format!(
        "table {}\nhead {}\np1 {}\n",
        hex(&Sha256::digest(&st.table)),
        hex(&Sha256::digest(&st.head)),
        "ab".repeat(32)
    );
    let (code, out) = curl(
        "POST",
        &format!("{me2}/restore/1/done"),
        Some(wrong.as_bytes()),
        &[],
    );
    assert_eq!(code, 409, "{}", s(&out));
    assert!(s(&out).contains("stream p1"), "{}", s(&out));
    assert!(
        t.ok(&["history", "lab02"])
            .contains("failed to restore image lab@1")
    );
    assert_eq!(
        t.json(&["machines", "lab02"])[0]["policy"],
        "restore-image:lab"
    );
    // Again, whole.
    let (code, _) = curl("GET", &format!("{me2}/restore"), None, &[]);
    assert_eq!(code, 200);
    let right = format!(
        "table {}\nhead {}\np1 {}\n",
        hex(&Sha256::digest(&st.table)),
        hex(&Sha256::digest(&st.head)),
        hex(&Sha256::digest(&st.p1))
    );
    let (code, out) = curl(
        "POST",
        &format!("{me2}/restore/1/done"),
        Some(right.as_bytes()),
        &[],
    );
    assert_eq!(code, 200, "{}", s(&out));
    assert_eq!(
        t.json(&["image", "show", "lab@1"])["restored_onto"][0]["name"],
        "lab02"
    );

    // A second save makes version 2; `lab` names it, `lab@1` the first.
    t.ok(&["policy", "golden", "save-image:lab", "--once"]);
    let (_, v) = curl(
        "POST",
        &format!("{me}/save"),
        Some(INVENTORY.as_bytes()),
        &[],
    );
    assert_eq!(s(&v), "version 2\n");
    for (name, bytes) in [("table", &st.table), ("head", &st.head), ("p1", &st.p1)] {
        assert_eq!(
            curl("PUT", &format!("{me}/save/2/{name}"), Some(bytes), &[]).0,
            200
        );
    }
    assert_eq!(
        curl("POST", &format!("{me}/save/2/done"), Some(b""), &[]).0,
        200
    );
    assert_eq!(t.json(&["image", "show", "lab"])["version"], 2);
    assert_eq!(t.json(&["image", "show", "lab@1"])["version"], 1);

    // A stored stream damaged on disk is found without a machine (exit status 1).
    let p2 = t.path("images/lab@2/p1.partclone.zst");
    let mut bytes = std::fs::read(&p2).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&p2, &bytes).unwrap();
    let out = t.cmd(&["image", "check", "lab"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = s(&out.stdout);
    assert!(
        text.contains("lab@1: sound") && text.contains("lab@2: DAMAGED"),
        "{text}"
    );
    assert!(text.contains("p1:"), "{text}");

    // Removal is refused while a policy names the image, then takes the files.
    t.ok(&["policy", "lab02", "restore-image:lab"]);
    let err = t.fails(&["image", "rm", "lab@1"]);
    assert!(
        err.contains("named by the policy of golden, lab02"),
        "{err}"
    );
    t.ok(&["policy", "golden,lab02", "localboot"]);
    t.ok(&["image", "rm", "lab@1"]);
    assert!(!dir.exists());
    assert_eq!(t.json(&["image", "list"]).as_array().unwrap().len(), 1);
    t.ok(&["verify"]);
}

#[test]
fn a_broken_upload_leaves_no_image_and_a_save_that_cannot_fit_is_refused() {
    require_tool("curl", "curl");
    let t = Nmt::new();
    let small = Tmpfs::mount(t.dir.join("small"), "8m");
    std::fs::write(
        t.path("nmt.toml"),
        format!("[paths]\nimages = \"{}\"\n", small.path.display()),
    )
    .unwrap();
    let d = Daemon::start(&t, &[]);
    let base = format!("http://{}", d.http);
    t.ok(&["machine", "add", &mac(1), "--name", "golden"]);
    t.ok(&["policy", "golden", "save-image:lab", "--once"]);
    let me = format!(
        "{base}/v1/image/{}/{}",
        mac(1).replace(':', "-"),
        token_of(&t, &mac(1))
    );
    // 4 MB used fits in 8 MiB; 40 MB does not.
    let big = INVENTORY.replace("4000000", "40000000");
    let (code, out) = curl("POST", &format!("{me}/save"), Some(big.as_bytes()), &[]);
    assert_eq!(code, 507, "{}", s(&out));
    assert!(s(&out).contains("MiB free"), "{}", s(&out));
    let (code, _) = curl(
        "POST",
        &format!("{me}/save"),
        Some(INVENTORY.as_bytes()),
        &[],
    );
    assert_eq!(code, 200);
    // A stream cut short (its length promised more): not kept.
    {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&d.http).unwrap();
        let path = me.trim_start_matches(&base);
        write!(
            c,
            "PUT {path}/save/1/p1 HTTP/1.1\r\nHost: nmtd\r\nContent-Length: 100000\r\n\r\n"
        )
        .unwrap();
        c.write_all(&[7u8; 5000]).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut resp = String::new();
        let _ = c.read_to_string(&mut resp);
    }
    let (code, out) = curl("POST", &format!("{me}/save/1/done"), Some(b""), &[]);
    assert_eq!(code, 409, "{}", s(&out));
    assert!(s(&out).contains("never arrived whole"), "{}", s(&out));
    assert!(t.json(&["image", "list"]).as_array().unwrap().is_empty());
    let left: Vec<_> = walk(&small.path);
    assert!(left.is_empty(), "a failed save leaves nothing: {left:?}");
    assert!(
        t.ok(&["history", "golden"])
            .contains("failed to save image lab@1")
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn the_web_ui_lists_images_and_shows_a_save_in_flight_with_its_progress() {
    require_tool("curl", "curl");
    let t = Nmt::new();
    let d = Daemon::start(&t, &["--web", "127.0.0.1:0"]);
    let web = d
        .web
        .clone()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let base = format!("http://{}", d.http);
    t.ok(&["machine", "add", &mac(1), "--name", "golden"]);
    t.ok(&["policy", "golden", "save-image:lab", "--once"]);
    let me = format!(
        "{base}/v1/image/{}/{}",
        mac(1).replace(':', "-"),
        token_of(&t, &mac(1))
    );
    let (_, _, page) = crate::web::http(&web, "GET", "/images", &[], "");
    assert!(page.contains("No image is saved yet"), "{page}");

    let st = streams();
    assert_eq!(
        curl(
            "POST",
            &format!("{me}/save"),
            Some(INVENTORY.as_bytes()),
            &[]
        )
        .0,
        200
    );
    assert_eq!(
        curl("PUT", &format!("{me}/save/1/head"), Some(&st.head), &[]).0,
        200
    );
    let (s, _, page) = crate::web::http(&web, "GET", "/images", &[], "");
    assert_eq!(s, 200);
    assert!(page.contains("id=\"inflight\""), "{page}");
    assert!(page.contains("golden") && page.contains("saving"), "{page}");
    // 1 MiB of the 4 MB declared (plus the first MiB and the table).
    assert!(
        page.contains("<progress max=\"100\" value=\"20\">"),
        "{page}"
    );

    for (name, bytes) in [("table", &st.table), ("p1", &st.p1)] {
        assert_eq!(
            curl("PUT", &format!("{me}/save/1/{name}"), Some(bytes), &[]).0,
            200
        );
    }
    assert_eq!(
        curl("POST", &format!("{me}/save/1/done"), Some(b""), &[]).0,
        200
    );
    let (_, _, page) = crate::web::http(&web, "GET", "/images", &[], "");
    assert!(!page.contains("id=\"inflight\""), "{page}");
    assert!(page.contains("data-image=\"lab@1\""), "{page}");
    // The machines page offers the saved image as a policy.
    let (_, _, page) = crate::web::http(&web, "GET", "/machines", &[], "");
    assert!(page.contains("value=\"restore-image:lab@1\""), "{page}");
}
