//! The web UI for real: nmtd on a temp state serves it, a real headless Chromium (Debian's
//! `chromium` driven through `chromedriver`) clicks through the Andreas and Kathrin stories,
//! and every step is checked on the page and in the generated boot files. Screenshots of the
//! main pages go to `CARGO_TARGET_TMPDIR/web-screenshots/`. Machines are added, imported and
//! removed by form, a machine's page follows new events live, and an upload cut short
//! writes nothing. The Schedules page lists a schedule as it is defined, pauses, resumes
//! and removes it by its buttons, and shows imported runs with their outcomes. Power: a
//! machine's page shows its BMC and acts through its buttons (Wake-on-LAN really sends; an
//! IPMI BMC that never answers fails), off, cycle and reset ask first, and the ticked
//! machines of the machines page get one result each. A listener on a non-loopback address
//! (inside a network namespace) refuses changes without a login and a CSRF token.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::util::{
    Daemon, Nmt, TestDir, append, mac, pxe, require_file, require_root, require_tool,
};

/// One browser at a time: Chromium is heavy on a two-core machine.
static BROWSER: Mutex<()> = Mutex::new(());

/// nmtd with its web UI, stopped when dropped.
pub(crate) struct WebDaemon {
    _d: Daemon,
    /// `http://ADDR:PORT` of the web UI.
    pub(crate) url: String,
}

impl WebDaemon {
    pub(crate) fn start(t: &Nmt, extra: &[&str]) -> WebDaemon {
        let mut args = vec!["--web", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let d = Daemon::start(t, &args);
        let url = d.web.clone().expect("nmtd names its web UI");
        WebDaemon { _d: d, url }
    }
}

/// chromedriver on a free port, killed when dropped; Chromium runs with a fresh profile.
struct Driver {
    child: Child,
    port: u16,
    profile: TestDir,
}

impl Driver {
    fn start() -> Driver {
        require_file("/usr/bin/chromium", "chromium");
        require_file("/usr/bin/chromedriver", "chromium-driver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            port,
            profile: TestDir::new(),
        }
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a browser test: one browser at a time, on its own runtime.
pub(crate) fn with_browser<F, Fut>(f: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _one = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let driver = Driver::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = driver.browser().await;
        f(c.clone()).await;
        let _ = c.close().await;
    });
}

fn shots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub(crate) async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let p = shots_dir().join(format!("{name}.png"));
    std::fs::write(&p, png).unwrap();
    println!("screenshot: {}", p.display());
}

pub(crate) async fn css(c: &Client, sel: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(sel))
        .await
        .unwrap_or_else(|e| panic!("no element {sel} on the page: {e}"))
}

pub(crate) async fn text(c: &Client, sel: &str) -> String {
    css(c, sel).await.text().await.unwrap()
}

/// A one-time link from `nmt web-login`, for the test's own user.
pub(crate) fn login_link(t: &Nmt) -> String {
    let v = t.json(&["web-login"]);
    v["url"]
        .as_str()
        .expect("web-login --json names the link")
        .to_string()
}

/// Log the browser in as the test's user, as a user does: `nmt web-login`, then its link.
pub(crate) async fn log_in(c: &Client, t: &Nmt) {
    c.goto(&login_link(t)).await.unwrap();
    let who = text(c, "#who").await;
    assert_eq!(who, nmt::current_actor(), "logged in as the test's user");
}

/// A logged-in session for plain HTTP: its cookie (`nmt_session=…`), from a web-login link.
pub(crate) fn logged_in_cookie(t: &Nmt) -> String {
    let link = login_link(t);
    let rest = link.trim_start_matches("http://");
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let (s, h, body) = http(addr, "GET", path, &[], "");
    assert_eq!(s, 303, "{body}");
    session_cookie(&h).expect("the link starts a session")
}

/// The message the last action left (success or refusal).
pub(crate) async fn flash(c: &Client) -> String {
    text(c, "main .flash.ok, main .flash.err").await
}

/// All generated files `nmt show` lists for a machine, concatenated.
fn boot_files(t: &Nmt, machine: &str) -> String {
    let v = t.json(&["show", machine]);
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["content"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn andreas_sets_unknown_to_install_and_watches_a_machine_appear_live() {
    let t = Nmt::new();
    let log = t.dir.path().join("dnsmasq.log");
    let d = WebDaemon::start(&t, &["--log", log.to_str().unwrap()]);
    let url = d.url.clone();
    let (t, log) = (&t, &log);
    with_browser(|c| async move {
        // Before a login the pages are read-only, and keep the new store's installer
        // password for an admin.
        c.goto(&format!("{url}/groups")).await.unwrap();
        assert_eq!(text(&c, "#who").await, "read-only: log in");
        assert!(c.find(Locator::Css(".flash.warn")).await.is_err());
        // The first page after the login shows it, once.
        log_in(&c, t).await;
        let warn = text(&c, ".flash.warn").await;
        assert!(warn.contains("nmt installer-password ack"), "{warn}");
        c.goto(&format!("{url}/groups")).await.unwrap();
        assert!(
            c.find(Locator::Css(".flash.warn")).await.is_err(),
            "the password is shown once"
        );

        // Set `unknown` to install.
        css(
            &c,
            "tr[data-group='unknown'] option[value='install:default']",
        )
        .await
        .click()
        .await
        .unwrap();
        css(&c, "tr[data-group='unknown'] form button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
        let f = flash(&c).await;
        assert!(
            f.contains("group unknown policy set to install:default"),
            "{f}"
        );
        let default = t.file("tftp/pxelinux.cfg/default");
        assert!(
            default.contains("KERNEL debian-installer/amd64/linux"),
            "{default}"
        );
        screenshot(&c, "groups").await;

        // A machine appears live when the DHCP log shows it: no reload.
        c.goto(&format!("{url}/machines")).await.unwrap();
        css(&c, "#live.on").await;
        c.execute("window.__stayed = 42;", vec![]).await.unwrap();
        let m = "52:54:00:12:34:56";
        append(
            log,
            &format!(
                "Nov 21 02:05:11 boot1 dnsmasq-dhcp[812]: 3342 DHCPDISCOVER(br0) {m}\n\
                 Nov 21 02:05:12 boot1 dnsmasq-dhcp[812]: 3342 DHCPACK(br0) 10.0.0.50 {m} andreas-pc3\n"
            ),
        );
        let row = css(&c, &format!("#rows tr[data-mac='{m}']")).await;
        let stayed = c.execute("return window.__stayed;", vec![]).await.unwrap();
        assert_eq!(stayed, json!(42), "the page was not reloaded");
        let row_text = row.text().await.unwrap();
        assert!(row_text.contains("unknown"), "{row_text}");
        assert!(row_text.contains("install:default"), "{row_text}");
        assert!(row_text.contains("andreas-pc3"), "{row_text}");
        let class = row.attr("class").await.unwrap().unwrap_or_default();
        assert!(
            class.contains("unknown"),
            "unknown machines stand out: {class}"
        );
        assert_eq!(text(&c, "#unknowns").await, "1");
        // Its boot entry runs the installer.
        let entry = t.file(&pxe(m));
        assert!(
            entry.contains("KERNEL debian-installer/amd64/linux"),
            "{entry}"
        );
        screenshot(&c, "machines-live").await;

        // The installer reports; the machine moves to localboot, live too.
        let out = t.ok(&["installed", m, "/dev/sda1"]);
        assert!(out.contains("moved from unknown to localboot"), "{out}");
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(&format!(
                "//tr[@data-mac='{m}']/td[4][normalize-space()='localboot']"
            )))
            .await
            .expect("the row shows localboot without a reload");
        let entry = t.file(&pxe(m));
        assert!(entry.contains("localboot@"), "{entry}");

        // Its page: the timeline tells DHCP, the report and changes apart.
        css(&c, &format!("#rows tr[data-mac='{m}'] td.name a"))
            .await
            .click()
            .await
            .unwrap();
        css(&c, "#timeline li.dhcp").await;
        let report = text(&c, "#timeline li.install").await;
        assert!(
            report.contains("install recorded by hand on /dev/sda1"),
            "{report}"
        );
        let facts = text(&c, "dl.facts").await;
        assert!(facts.contains("/dev/sda1"), "{facts}");
        assert!(facts.contains("andreas-pc3"), "{facts}");
        let files = text(&c, "details.file summary").await;
        assert!(files.contains("01-52-54-00-12-34-56"), "{files}");
        screenshot(&c, "machine").await;
    });
}

#[test]
fn a_dhcp_hostname_with_a_script_tag_is_shown_as_text() {
    let t = Nmt::new();
    let log = t.dir.path().join("dnsmasq.log");
    let d = WebDaemon::start(&t, &["--log", log.to_str().unwrap()]);
    let url = d.url.clone();
    let m = "52:54:00:66:66:66";
    append(
        &log,
        &format!(
            "Nov 21 02:05:12 boot1 dnsmasq-dhcp[812]: 3342 DHCPACK(br0) 10.0.0.66 {m} <script>alert(1)</script>\n"
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.json(&["machines"]).as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the machine was not discovered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = &t;
    with_browser(|c| async move {
        log_in(&c, t).await;
        for page in ["/machines".to_string(), format!("/machine/{m}")] {
            c.goto(&format!("{url}{page}")).await.unwrap();
            let sent = text(&c, ".sent").await;
            assert_eq!(sent, "<script>alert(1)</script>", "{page}");
            let scripts = c
                .execute(
                    "return document.querySelectorAll('main script').length;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(scripts, json!(0), "{page}: no script element was injected");
            assert!(
                c.get_alert_text().await.is_err(),
                "{page}: no alert is open"
            );
        }
        let timeline = text(&c, "#timeline li.dhcp").await;
        assert!(timeline.contains("<script>alert(1)</script>"), "{timeline}");
    });
    // And nothing generated carries it.
    for f in ["dhcp/dnsmasq-nmt.hosts", "dhcp/dhcpd-nmt.conf"] {
        assert!(!t.file(f).contains("script"), "{f}");
    }
}

#[test]
fn kathrin_names_ten_machines_moves_them_into_a_new_group_and_sets_its_policy() {
    let t = Nmt::new();
    let d = WebDaemon::start(&t, &[]);
    let me = nmt::current_actor();
    // Twelve machines registered from a list (through nmtd's socket).
    let list: String = (1..=12).map(|n| format!("{}\n", mac(n))).collect();
    t.ok_stdin(&["machine", "import", "-"], &list);
    let url = d.url.clone();
    let (t, me) = (&t, &me);
    with_browser(|c| async move {
        log_in(&c, t).await;
        // Name all twelve by a pattern, in the order they were first seen.
        c.goto(&format!("{url}/machines?group=unknown"))
            .await
            .unwrap();
        css(&c, "#all").await.click().await.unwrap();
        assert_eq!(text(&c, "#nsel").await, "12");
        css(&c, "#bulk-pattern")
            .await
            .send_keys("node{01}")
            .await
            .unwrap();
        css(&c, "button[value=name]").await.click().await.unwrap();
        let f = flash(&c).await;
        assert!(f.contains(&format!("{} named node01", mac(1))), "{f}");
        assert!(f.contains(&format!("{} named node12", mac(12))), "{f}");

        // A new group.
        c.goto(&format!("{url}/groups")).await.unwrap();
        css(&c, "#new-group")
            .await
            .send_keys("physics")
            .await
            .unwrap();
        css(&c, "form[action='/groups/add'] button")
            .await
            .click()
            .await
            .unwrap();
        let f = flash(&c).await;
        assert!(f.contains("group physics created"), "{f}");

        // Tick ten and move them.
        c.goto(&format!("{url}/machines?sort=name")).await.unwrap();
        for n in 1..=10 {
            css(&c, &format!("#rows input[value='{}']", mac(n)))
                .await
                .click()
                .await
                .unwrap();
        }
        assert_eq!(text(&c, "#nsel").await, "10");
        css(&c, "#bulk-group option[value=physics]")
            .await
            .click()
            .await
            .unwrap();
        css(&c, "button[value=assign]").await.click().await.unwrap();
        let f = flash(&c).await;
        assert!(f.contains("assigned 10 machines to physics"), "{f}");
        let nodes = t.file("nodes/physics");
        let listed: Vec<&str> = nodes.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(listed.len(), 10, "{nodes}");
        assert!(
            nodes.contains("node01") && nodes.contains("node10"),
            "{nodes}"
        );
        assert!(!nodes.contains("node11"), "{nodes}");

        // The group's policy.
        c.goto(&format!("{url}/groups")).await.unwrap();
        css(&c, "tr[data-group='physics'] option[value=ltsp]")
            .await
            .click()
            .await
            .unwrap();
        css(
            &c,
            "tr[data-group='physics'] form[action='/groups/policy'] button",
        )
        .await
        .click()
        .await
        .unwrap();
        let f = flash(&c).await;
        assert!(f.contains("group physics policy set to ltsp"), "{f}");
        let row = text(&c, "tr[data-group='physics']").await;
        assert!(row.contains("10"), "{row}");
        screenshot(&c, "groups-kathrin").await;
        assert!(boot_files(t, "node01").contains("ltsp/x86_64/vmlinuz"));
        assert!(!boot_files(t, "node11").contains("ltsp/x86_64/vmlinuz"));

        // One machine installs at its next boot only.
        c.goto(&format!("{url}/machines?group=physics&sort=name"))
            .await
            .unwrap();
        css(&c, &format!("#rows input[value='{}']", mac(3)))
            .await
            .click()
            .await
            .unwrap();
        css(&c, "#bulk-policy option[value='install:default']")
            .await
            .click()
            .await
            .unwrap();
        css(&c, "form#act input[name=once]")
            .await
            .click()
            .await
            .unwrap();
        css(&c, "button[value=policy]").await.click().await.unwrap();
        let f = flash(&c).await;
        assert!(
            f.contains("policy set to install:default (next boot only)"),
            "{f}"
        );
        let row = text(&c, &format!("#rows tr[data-mac='{}']", mac(3))).await;
        assert!(row.contains("next boot"), "{row}");
        assert!(
            t.file(&pxe(&mac(3)))
                .contains("KERNEL debian-installer/amd64/linux")
        );
        screenshot(&c, "machines").await;

        // A group with members is not removed before it is said where they go (the form
        // asks first; without it, nmtd refuses in the page's words).
        c.goto(&format!("{url}/groups")).await.unwrap();
        c.execute(
            "document.querySelector(\"tr[data-group='physics'] select[name=to]\")\
             .removeAttribute('required');",
            vec![],
        )
        .await
        .unwrap();
        css(&c, "tr[data-group='physics'] button.danger")
            .await
            .click()
            .await
            .unwrap();
        let f = flash(&c).await;
        assert!(
            f.starts_with("nmt: refused: group \"physics\" still has 10 members"),
            "{f}"
        );
        assert!(f.contains("Move members to") && !f.contains("--"), "{f}");

        // node01's timeline: who did what, and the state at a past moment.
        c.goto(&format!("{url}/machines?q=node01")).await.unwrap();
        css(&c, "#rows td.name a").await.click().await.unwrap();
        let changes = c
            .find_all(Locator::Css("#timeline li.admin"))
            .await
            .unwrap();
        let mut texts = Vec::new();
        for ch in &changes {
            texts.push(ch.text().await.unwrap());
        }
        let all = texts.join("\n");
        assert!(all.contains("assigned to group physics"), "{all}");
        assert!(all.contains("group physics policy set to ltsp"), "{all}");
        assert!(all.contains(&format!("by {me} via web")), "{all}");
        assert!(
            texts.iter().any(|x| x.contains("registered")
                && x.contains(&format!("by {me}"))
                && !x.contains("via web")),
            "the import through the CLI is told apart: {all}"
        );
        screenshot(&c, "timeline").await;
        // As of the naming (before the move), node01 was in unknown.
        css(&c, "#timeline li.admin:nth-last-child(2) a.asof")
            .await
            .click()
            .await
            .unwrap();
        let asof = text(&c, ".flash.asof").await;
        assert!(asof.contains("The state as of"), "{asof}");
        let facts = text(&c, "dl.facts").await;
        assert!(facts.contains("node01"), "{facts}");
        assert!(
            facts.contains("Group\nunknown") || facts.contains("Group unknown"),
            "{facts}"
        );

        // Profiles: edit the LTSP entry; machines using it get it at once.
        c.goto(&format!("{url}/profiles")).await.unwrap();
        screenshot(&c, "profiles").await;
        css(&c, "a[href='/profiles/edit?name=ltsp']")
            .await
            .click()
            .await
            .unwrap();
        let args = css(&c, "#p-args").await;
        args.send_keys(" quiet").await.unwrap();
        css(&c, "form[action='/profiles/save'] button.primary")
            .await
            .click()
            .await
            .unwrap();
        let f = flash(&c).await;
        assert!(f.contains("profile ltsp (ltsp) defined"), "{f}");
        assert!(boot_files(t, "node01").contains(" quiet"));
        screenshot(&c, "profile-edit").await;

        // On a tablet the table scrolls sideways inside its frame, the page does not.
        c.set_window_size(820, 1180).await.unwrap();
        c.goto(&format!("{url}/machines")).await.unwrap();
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, json!(false), "the page fits a tablet's width");
        screenshot(&c, "machines-tablet").await;
    });
    let hist = t.json(&["history", "node01"]);
    let actors: Vec<&str> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(
        actors.contains(&format!("{me} via web").as_str()),
        "{actors:?}"
    );
    drop(d);
}

/// The machines `nmt machines --json` lists, by MAC.
fn inventory(t: &Nmt) -> Vec<serde_json::Value> {
    t.json(&["machines"]).as_array().unwrap().clone()
}

/// Click what sends a form, and wait for the page it leads to (not the one it left).
pub(crate) async fn submit(c: &Client, sel: &str) {
    c.execute("document.documentElement.dataset.left = '1';", vec![])
        .await
        .unwrap();
    css(c, sel).await.click().await.unwrap();
    css(c, "html:not([data-left]) body").await;
}

/// The value of a form field on the page.
pub(crate) async fn value(c: &Client, sel: &str) -> String {
    css(c, sel)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

#[test]
fn a_machine_is_added_by_form_and_machines_are_removed_after_a_confirmation() {
    let t = Nmt::new();
    let d = WebDaemon::start(&t, &[]);
    let url = d.url.clone();
    let t = &t;
    with_browser(|c| async move {
        log_in(&c, t).await;
        // Add one: MAC, name, IP; the row appears and every file has it.
        c.goto(&format!("{url}/machines")).await.unwrap();
        css(&c, "#add summary").await.click().await.unwrap();
        let add = |m: String, name: &'static str, ip: &'static str| {
            let c = c.clone();
            async move {
                css(&c, "#add-mac").await.send_keys(&m).await.unwrap();
                css(&c, "#add-name").await.send_keys(name).await.unwrap();
                css(&c, "#add-ip").await.send_keys(ip).await.unwrap();
                screenshot(&c, "machine-add").await;
                submit(&c, "form[action='/machines/add'] button[type=submit]").await;
            }
        };
        add(mac(1), "node01", "10.0.0.11").await;
        let f = flash(&c).await;
        assert!(f.starts_with(&format!("added {}\nfiles: ", mac(1))), "{f}");
        let row = text(&c, &format!("#rows tr[data-mac='{}']", mac(1))).await;
        assert!(row.contains("node01") && row.contains("10.0.0.11"), "{row}");
        let inv = inventory(t);
        assert_eq!(inv.len(), 1, "{inv:?}");
        assert_eq!(inv[0]["name"], "node01");
        assert_eq!(inv[0]["ip"], "10.0.0.11");
        assert!(t.file("dhcp/dnsmasq-nmt.hosts").contains(&mac(1)));
        assert!(t.file("hosts/nmt.hosts").contains("10.0.0.11\tnode01"));
        assert!(t.file("dhcp/dhcpd-nmt.conf").contains(&mac(1)));

        // A bad MAC and a taken name are refused in the CLI's words; nothing is appended,
        // and the form keeps what was typed.
        let events = t.event_count();
        css(&c, "#add summary").await.click().await.unwrap();
        add("52:54:00:zz".into(), "node09", "").await;
        let f = flash(&c).await;
        assert_eq!(f, t.fails(&["machine", "add", "52:54:00:zz"]).trim());
        assert_eq!(value(&c, "#add-mac").await, "52:54:00:zz");
        assert_eq!(value(&c, "#add-name").await, "node09");
        css(&c, "#add-mac").await.clear().await.unwrap();
        css(&c, "#add-name").await.clear().await.unwrap();
        add(mac(2), "node01", "").await;
        let f = flash(&c).await;
        assert!(f.starts_with("nmt: refused: the name \"node01\""), "{f}");
        assert_eq!(
            f,
            t.fails(&["machine", "add", &mac(2), "--name", "node01"])
                .trim()
        );
        assert_eq!(t.event_count(), events, "a refused add appends nothing");
        assert_eq!(inventory(t).len(), 1);

        // Two more, then remove two of the three: the confirmation page first.
        t.ok(&["machine", "add", &mac(2), "--name", "node02"]);
        t.ok(&["machine", "add", &mac(3), "--name", "node03"]);
        c.goto(&format!("{url}/machines?sort=name")).await.unwrap();
        for n in [1, 2] {
            css(&c, &format!("#rows input[value='{}']", mac(n)))
                .await
                .click()
                .await
                .unwrap();
        }
        submit(&c, "#bulk-remove").await;
        let listed = text(&c, "#remove-list").await;
        assert!(
            listed.contains("node01") && listed.contains("node02") && !listed.contains("node03"),
            "{listed}"
        );
        assert_eq!(text(&c, "#confirm-remove").await, "Remove 2 machines");
        screenshot(&c, "machines-remove-confirm").await;
        assert_eq!(
            inventory(t).len(),
            3,
            "nothing is removed before confirming"
        );
        // Cancel goes back, having removed nothing.
        submit(&c, "#cancel-remove").await;
        css(&c, &format!("#rows tr[data-mac='{}']", mac(1))).await;
        assert_eq!(inventory(t).len(), 3);
        // Again, and confirm.
        for n in [1, 2] {
            css(&c, &format!("#rows input[value='{}']", mac(n)))
                .await
                .click()
                .await
                .unwrap();
        }
        submit(&c, "#bulk-remove").await;
        submit(&c, "#confirm-remove").await;
        let f = flash(&c).await;
        assert!(f.starts_with("removed 2 machines\nfiles: "), "{f}");
        assert_eq!(text(&c, "#total").await, "1");
        assert!(
            c.find(Locator::Css(&format!("#rows tr[data-mac='{}']", mac(1))))
                .await
                .is_err()
        );
        let inv = inventory(t);
        assert_eq!(inv.len(), 1, "{inv:?}");
        assert_eq!(inv[0]["name"], "node03");
        for n in [1, 2] {
            assert!(!t.path(&pxe(&mac(n))).exists(), "{}", pxe(&mac(n)));
            assert!(!t.file("dhcp/dhcpd-nmt.conf").contains(&mac(n)));
        }
        assert!(!t.file("hosts/nmt.hosts").contains("node01"));
        assert!(t.file("dhcp/dhcpd-nmt.conf").contains(&mac(3)));
        // Recorded as coming from the web UI, by its user.
        let last = t.ok(&["journal", "export"]);
        // The line before the export's trailer.
        let last: serde_json::Value =
            serde_json::from_str(last.lines().nth_back(1).unwrap()).unwrap();
        assert_eq!(last["event"]["type"], "MachineRemoved", "{last}");
        assert_eq!(last["source"]["stream"], "web", "{last}");
        assert!(
            last["actor"].as_str().unwrap().ends_with(" via web"),
            "{last}"
        );
    });
}

/// A node table of `n` machines in group physics, numbered from `from`.
fn node_table(from: u32, n: u32) -> String {
    let mut s = String::from("mac,name,ip,group\n");
    for i in from..from + n {
        s += &format!("{},node{i:02},10.0.1.{i},physics\n", mac(i));
    }
    s
}

#[test]
fn a_node_table_is_imported_by_upload_all_rows_or_none() {
    let t = Nmt::new();
    let d = WebDaemon::start(&t, &[]);
    t.ok(&["group", "add", "physics"]);
    let url = d.url.clone();
    let good = t.dir.path().join("nodes.csv");
    std::fs::write(&good, node_table(1, 10)).unwrap();
    // Row 5 of this one (line 6, after the header) is malformed.
    let bad = t.dir.path().join("broken.csv");
    std::fs::write(
        &bad,
        node_table(11, 10).replace(&format!("{},", mac(15)), "52:54:00:00:00:1g,"),
    )
    .unwrap();
    let (t, good, bad) = (&t, &good, &bad);
    with_browser(|c| async move {
        log_in(&c, t).await;
        let upload = |file: PathBuf| {
            let (c, url) = (c.clone(), url.clone());
            async move {
                c.goto(&format!("{url}/machines/import")).await.unwrap();
                css(&c, "#import-file")
                    .await
                    .send_keys(file.to_str().unwrap())
                    .await
                    .unwrap();
                submit(&c, "form[action='/machines/import'] button.primary").await;
            }
        };
        // The malformed table: its line's error, in the CLI's words, and nothing appended.
        let events = t.event_count();
        upload(bad.clone()).await;
        let e = text(&c, "#import-error").await;
        let cli = t.fails(&["machine", "import", bad.to_str().unwrap()]);
        assert!(e.contains("line 6"), "{e}");
        assert!(e.starts_with(cli.trim()), "web: {e}\ncli: {cli}");
        screenshot(&c, "machines-import-refused").await;
        assert_eq!(t.event_count(), events, "a refused import appends nothing");
        assert!(inventory(t).is_empty());

        // Pasted rows are read by the same reader: five fields on line 2 are refused, and
        // the text stays for fixing. (Browsers send a textarea's lines with CRLF, which once
        // made the reader blame line 1.)
        let pasted = format!("{},p1\n{},p2,10.0.1.99,physics,extra\n", mac(40), mac(41));
        // (Typed keys would press Enter for the newlines; set the text as a paste does.)
        c.execute(
            "document.getElementById('import-table').value = arguments[0];",
            vec![json!(pasted)],
        )
        .await
        .unwrap();
        submit(&c, "form[action='/machines/import'] button.primary").await;
        let e = text(&c, "#import-error").await;
        assert!(
            e.contains("line 2: 5 fields; a node table row is mac,name,ip,group"),
            "{e}"
        );
        assert_eq!(value(&c, "#import-table").await, pasted);
        assert_eq!(t.event_count(), events);

        // The good one: ten machines, in their group, with their files.
        upload(good.clone()).await;
        let f = flash(&c).await;
        assert!(f.starts_with("imported 10 rows"), "{f}");
        assert_eq!(text(&c, "#total").await, "10");
        let inv = inventory(t);
        assert_eq!(inv.len(), 10);
        assert!(inv.iter().all(|m| m["group"] == "physics"), "{inv:?}");
        let nodes = t.file("nodes/physics");
        assert_eq!(nodes.lines().filter(|l| !l.starts_with('#')).count(), 10);
        assert!(t.file("hosts/nmt.hosts").contains("10.0.1.10\tnode10"));
        screenshot(&c, "machines-imported").await;
    });
}

#[test]
fn a_machine_page_follows_new_events_live() {
    let t = Nmt::new();
    let log = t.dir.path().join("dnsmasq.log");
    let d = WebDaemon::start(&t, &["--log", log.to_str().unwrap()]);
    let m = mac(7);
    t.ok(&["machine", "add", &m, "--name", "lab07"]);
    let url = d.url.clone();
    let (t, log, m) = (&t, &log, &m);
    with_browser(|c| async move {
        log_in(&c, t).await;
        c.goto(&format!("{url}/machine/{m}")).await.unwrap();
        css(&c, "#live.on").await;
        assert!(c.find(Locator::Css("#timeline li.dhcp")).await.is_err());
        c.execute("window.__stayed = 7;", vec![]).await.unwrap();
        // A DHCP line: the timeline and the facts follow, without a reload.
        append(
            log,
            &format!(
                "Nov 21 02:05:12 boot1 dnsmasq-dhcp[812]: 3342 DHCPACK(br0) 10.0.0.77 {m} lab07\n"
            ),
        );
        let li = css(&c, "#timeline li.dhcp").await;
        let class = li.attr("class").await.unwrap().unwrap_or_default();
        assert!(class.contains("new"), "a new entry is marked: {class}");
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(
                "//dl[@class='facts']/dd[normalize-space()='10.0.0.77']",
            ))
            .await
            .expect("the last IP shows without a reload");
        // An install report: the summary moves to localboot and says where it installed.
        t.ok(&["installed", m, "/dev/sda1"]);
        let report = text(&c, "#timeline li.install").await;
        assert!(report.contains("/dev/sda1"), "{report}");
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(
                "//p[@id='m-sub']/span[@class='policy'][normalize-space()='localboot']",
            ))
            .await
            .expect("the summary shows localboot without a reload");
        let facts = text(&c, "dl.facts").await;
        assert!(facts.contains("Installed"), "{facts}");
        // The change form, untouched, follows too.
        assert_eq!(value(&c, "#m-group").await, "localboot");
        assert_eq!(value(&c, "#m-device").await, "/dev/sda1");
        let stayed = c.execute("return window.__stayed;", vec![]).await.unwrap();
        assert_eq!(stayed, json!(7), "the page was not reloaded");
        screenshot(&c, "machine-live").await;
    });
}

/// The digests (`data-h`) of the rows a machines table body shows, in order.
fn digests(body: &str) -> Vec<String> {
    body.split("data-h=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect()
}

#[test]
fn machines_are_paged_and_a_live_update_sends_only_the_rows_that_changed() {
    let t = Nmt::new();
    let log = t.dir.path().join("dnsmasq.log");
    let mut table = String::from("mac,name\n");
    for i in 1..=600 {
        table += &format!("{},pc{i:03}\n", mac(i));
    }
    t.ok_stdin(&["machine", "import", "-"], &table);
    let d = WebDaemon::start(&t, &["--log", log.to_str().unwrap()]);
    let addr = d.url.trim_start_matches("http://").to_string();
    let get = |path: &str| {
        let (status, _, body) = http(&addr, "GET", path, &[], "");
        assert_eq!(status, 200, "{path}: {body}");
        body
    };

    // 600 machines: pages of 250, in the order they were first seen.
    let first = get("/machines");
    assert_eq!(digests(&first).len(), 250);
    assert!(first.contains(r#"data-matching="600""#), "{first}");
    assert!(first.contains(r#"data-pages="3""#));
    assert!(first.contains(">pc001<") && first.contains(">pc250<"));
    assert!(!first.contains(">pc251<"));
    let second = get("/machines/rows?page=2");
    assert!(second.contains(">pc251<") && second.contains(">pc500<"));
    assert!(!second.contains(">pc250<") && !second.contains(">pc501<"));
    let third = get("/machines/rows?page=3");
    assert_eq!(digests(&third).len(), 100);
    assert_eq!(
        get("/machines/rows?page=99"),
        third,
        "past the last page is the last"
    );
    assert_eq!(digests(&get("/machines/rows?per=1000")).len(), 600);
    let named = get("/machines/rows?q=pc42");
    assert_eq!(digests(&named).len(), 10, "pc420 to pc429: {named}");

    // A DHCP line for pc300: the live update of page 2 sends its row alone, in its place.
    let have = digests(&second);
    append(
        &log,
        &format!(
            "Nov 21 02:05:12 boot1 dnsmasq-dhcp[812]: 3342 DHCPACK(br0) 10.0.0.77 {} pc300\n",
            mac(300)
        ),
    );
    let mut update = String::new();
    crate::util::wait_for(
        "pc300's DHCP line in the table",
        Duration::from_secs(10),
        || {
            update = get(&format!("/machines/rows?page=2&have={}", have.join(".")));
            update.contains("10.0.0.77")
        },
    );
    assert_eq!(update.matches("data-same=").count(), 249, "{update}");
    assert_eq!(digests(&update).len(), 1);
    let row = &update[update.find("data-h=").unwrap()..];
    assert!(row.contains(&mac(300)), "{update}");
    let pos = |body: &str, needle: &str| body.find(needle).unwrap();
    assert!(
        pos(&update, &format!("data-same=\"{}\"", have[48])) < pos(&update, "10.0.0.77")
            && pos(&update, "10.0.0.77") < pos(&update, &format!("data-same=\"{}\"", have[50])),
        "the changed row keeps its place"
    );
    assert!(
        update.len() * 10 < second.len(),
        "{} of {} bytes",
        update.len(),
        second.len()
    );

    let url = d.url.clone();
    let (t, log) = (&t, &log);
    with_browser(|c| async move {
        log_in(&c, t).await;
        c.goto(&format!("{url}/machines?page=2")).await.unwrap();
        css(&c, "#live.on").await;
        assert_eq!(text(&c, "#shown").await, "251–500 of 600");
        // Every row shown is marked; a live update keeps the rows that did not change.
        c.execute(
            "window.__stayed = 2; document.querySelectorAll('#rows tr').forEach(function (tr) { tr.__kept = true; });",
            vec![],
        )
        .await
        .unwrap();
        css(&c, &format!("#rows tr[data-mac='{}'] input", mac(260)))
            .await
            .click()
            .await
            .unwrap();
        append(
            log,
            &format!(
                "Nov 21 02:06:12 boot1 dnsmasq-dhcp[812]: 3343 DHCPACK(br0) 10.0.0.78 {} pc301\n",
                mac(301)
            ),
        );
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(&format!(
                "//tr[@data-mac='{}']/td[normalize-space()='10.0.0.78']",
                mac(301)
            )))
            .await
            .expect("pc301's row shows its address without a reload");
        let kept = c
            .execute(
                "var k = []; document.querySelectorAll('#rows tr').forEach(function (tr) { if (!tr.__kept) k.push(tr.getAttribute('data-mac')); }); return [k, document.querySelectorAll('#rows tr').length];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            kept,
            json!([[mac(301)], 250]),
            "only pc301's row was replaced"
        );
        assert_eq!(text(&c, "#nsel").await, "1", "the ticked row stays ticked");
        let stayed = c.execute("return window.__stayed;", vec![]).await.unwrap();
        assert_eq!(stayed, json!(2), "the page was not reloaded");

        // The last page: a new machine joins it live, and the counts follow.
        css(&c, "#next").await.click().await.unwrap();
        assert_eq!(text(&c, "#shown").await, "501–600 of 600");
        assert!(!css(&c, "#next").await.is_displayed().await.unwrap());
        css(&c, "#live.on").await;
        let new = "52:54:00:aa:bb:cc";
        append(
            log,
            &format!("Nov 21 02:07:00 boot1 dnsmasq-dhcp[812]: 3344 DHCPDISCOVER(br0) {new}\n"),
        );
        let row = css(&c, &format!("#rows tr[data-mac='{new}']")).await;
        let class = row.attr("class").await.unwrap().unwrap_or_default();
        assert!(class.contains("new"), "{class}");
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(
                "//span[@id='shown'][normalize-space()='501–601 of 601']",
            ))
            .await
            .expect("the counts follow");
        assert_eq!(text(&c, "#total").await, "601");
        screenshot(&c, "machines-paged").await;
    });
}

/// Send raw bytes to `addr`, closing the sending side after them when the request is `cut`
/// short (nmtd then reads the end of its body); the status and body of the answer.
fn exchange(addr: &str, raw: &[u8], cut: bool) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(raw).unwrap();
    if cut {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.len() > 12,
        "no answer to {}",
        String::from_utf8_lossy(raw)
    );
    let status = resp[9..12].parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[test]
fn an_upload_cut_short_is_refused_and_nothing_is_written() {
    let t = Nmt::new();
    let d = WebDaemon::start(&t, &[]);
    let addr = d.url.trim_start_matches("http://").to_string();
    let cookie = logged_in_cookie(&t);
    let (s, _, page) = http(&addr, "GET", "/machines/import", &[("Cookie", &cookie)], "");
    assert_eq!(s, 200);
    let csrf = csrf_of(&page);
    let events = t.event_count();
    let post = |kind: &str, length: usize, body: &[u8]| {
        let mut raw = format!(
            "POST /machines/import HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
             Content-Type: {kind}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        raw.extend_from_slice(body);
        exchange(&addr, &raw, length > body.len())
    };
    let form = "application/x-www-form-urlencoded";
    let multi = "multipart/form-data; boundary=nmtTEST";
    let part = |csv: &str| {
        format!(
            "--nmtTEST\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --nmtTEST\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{csv}"
        )
    };
    let rows = format!("{},a1\n{},a2,10.0.0.2\n", mac(1), mac(2));

    // A body shorter than its Content-Length.
    let body = format!("csrf={csrf}&table={}", rows.replace('\n', "%0A"));
    let (s, b) = post(form, body.len() + 100, body.as_bytes());
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("cut short"), "{b}");
    // A multipart body that stops before its closing boundary (its length says so).
    let body = part(&rows);
    let (s, b) = post(multi, body.len(), body.as_bytes());
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("ends before the closing boundary"), "{b}");
    // A whole upload of a file whose last line stops mid-field.
    let cut = &rows[..rows.len() - 6];
    let body = format!("{}\r\n--nmtTEST--\r\n", part(cut));
    let (s, b) = post(multi, body.len(), body.as_bytes());
    assert_eq!(s, 422, "{b}");
    assert!(
        b.contains("line 2"),
        "the row cut mid-address is refused: {b}"
    );
    // And a quoted field that never closes.
    let body = format!("{}\r\n--nmtTEST--\r\n", part(&format!("{},\"a1\n", mac(1))));
    let (s, b) = post(multi, body.len(), body.as_bytes());
    assert_eq!(s, 422, "{b}");
    assert!(b.contains("opens on line 1 is never closed"), "{b}");
    assert_eq!(t.event_count(), events, "nothing was appended");
    assert!(inventory(&t).is_empty());
    assert!(!t.file("dhcp/dnsmasq-nmt.hosts").contains(&mac(1)));

    // The same upload whole is imported (a file may lack its final newline).
    let body = format!("{}\r\n--nmtTEST--\r\n", part(rows.trim_end()));
    let (s, b) = post(multi, body.len(), body.as_bytes());
    assert_eq!(s, 303, "{b}");
    assert_eq!(inventory(&t).len(), 2);
    assert!(t.file("dhcp/dnsmasq-nmt.hosts").contains(&mac(2)));
}

/// A network namespace whose only non-loopback address is 10.213.99.1/24, removed when
/// dropped (with its interfaces).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        require_root("it listens on an address in a network namespace");
        require_tool("ip", "iproute2");
        let name = format!("nmtweb{}", std::process::id());
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
                panic!("`ip` (iproute2) is needed for the non-loopback test: {e}")
            });
            assert!(
                out.status.success(),
                "ip {}: {} (the test must run as root)",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        let n = ns.name.clone();
        ip(&["-n", &n, "link", "set", "lo", "up"]);
        // A veth pair inside the namespace (no dummy module on every kernel); one end holds
        // the address nmtd listens on.
        ip(&[
            "-n", &n, "link", "add", "w0", "type", "veth", "peer", "name", "w1",
        ]);
        ip(&["-n", &n, "addr", "add", "10.213.99.1/24", "dev", "w0"]);
        ip(&["-n", &n, "link", "set", "w0", "up"]);
        ip(&["-n", &n, "link", "set", "w1", "up"]);
        ns
    }

    /// Run `f` on a thread inside the namespace (sockets it opens live there).
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).unwrap();
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A plain HTTP/1.1 exchange: status, headers (lowercase names), body.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    if method == "POST" {
        req += &format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    req += "\r\n";
    req += body;
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let hs = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, hs, body.to_string())
}

pub(crate) fn session_cookie(headers: &[(String, String)]) -> Option<String> {
    headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .find_map(|(_, v)| {
            v.split(';')
                .next()
                .filter(|c| c.starts_with("nmt_session=") && c.len() > 13)
        })
        .map(str::to_string)
}

pub(crate) fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[at..at + 64].to_string()
}

pub(crate) fn hash(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nmtd"))
        .arg("--hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let h = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(h.starts_with("$argon2id$"), "{h}");
    h
}

#[test]
fn a_non_loopback_listener_refuses_changes_without_a_login_and_a_csrf_token() {
    let t = Nmt::bare();
    let ns = Netns::new();
    std::fs::create_dir_all(t.state()).unwrap();
    let conf = t.state().join("nmt.toml");
    // Without users, nmtd refuses to serve a network address at all.
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(env!("CARGO_BIN_EXE_nmtd"))
        .args(["--http", "127.0.0.1:0", "--web", "10.213.99.1:0"])
        .env("NMT_STATE", t.state())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("[web.users]") && log.contains("--hash-password"),
        "{log}"
    );
    assert!(
        !t.state().join("nmt.redb").exists(),
        "a refused start makes no store (its installer password would go unseen)"
    );

    std::fs::write(
        &conf,
        format!(
            "[web.users]\nkathrin = \"{}\"\nreinhard = \"{}\"\n\n[access]\nadmins = [\"kathrin\"]\n[access.groups]\nphysics = [\"reinhard\"]\n",
            hash("kathrins secret"),
            hash("reinhards secret")
        ),
    )
    .unwrap();
    let nmtd = Daemon::start_in(
        &t,
        Some(&ns.name),
        "127.0.0.1:0",
        &["--web", "10.213.99.1:0"],
    );
    let url = nmtd.web.clone().expect("nmtd names its web UI");
    t.ok(&["group", "add", "physics"]);
    let addr = url.trim_start_matches("http://").to_string();
    assert!(addr.starts_with("10.213.99.1:"), "{addr}");

    let a = addr.clone();
    let steps = ns.run(move || {
        let mut log = Vec::new();
        // Only its own address names it: another Host (a rebound DNS name) is refused.
        let (s, body) = exchange(
            &a,
            b"GET /login HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            false,
        );
        assert_eq!(s, 421, "{body}");
        assert!(body.contains("[web] hosts"), "{body}");
        // Pages send a stranger to the login.
        let (s, h, _) = http(&a, "GET", "/machines", &[], "");
        assert_eq!(s, 303);
        assert!(
            h.iter().any(|(k, v)| k == "location" && v == "/login"),
            "{h:?}"
        );
        // An action without a login is refused.
        let (s, _, body) = http(&a, "POST", "/groups/add", &[], "group=evil");
        assert_eq!(s, 403, "{body}");
        assert!(body.contains("log in first"), "{body}");
        log.push("no login: refused");
        // The login form, its session and token.
        let (s, h, body) = http(&a, "GET", "/login", &[], "");
        assert_eq!(s, 200);
        let pre = session_cookie(&h).expect("a session cookie");
        let pre_csrf = csrf_of(&body);
        // A login without the token is refused, and so is a wrong password.
        let (s, _, _) = http(
            &a,
            "POST",
            "/login",
            &[("Cookie", &pre)],
            "user=kathrin&password=kathrins+secret",
        );
        assert_eq!(s, 403);
        let (s, h, _) = http(
            &a,
            "POST",
            "/login",
            &[("Cookie", &pre)],
            &format!("csrf={pre_csrf}&user=kathrin&password=wrong"),
        );
        assert_eq!(s, 401);
        assert!(session_cookie(&h).is_none());
        // The right password: a new session (never the one the form came with).
        let (s, h, _) = http(
            &a,
            "POST",
            "/login",
            &[("Cookie", &pre)],
            &format!("csrf={pre_csrf}&user=kathrin&password=kathrins+secret"),
        );
        assert_eq!(s, 303);
        let kathrin = session_cookie(&h).expect("a new session");
        assert_ne!(kathrin, pre);
        let (s, _, body) = http(&a, "GET", "/groups", &[("Cookie", &kathrin)], "");
        assert_eq!(s, 200);
        let token = csrf_of(&body);
        assert_ne!(token, pre_csrf);
        // Logged in, but without the token, with the old one, or from another site: refused.
        for (form, headers) in [
            ("group=evil".to_string(), vec![]),
            (format!("csrf={pre_csrf}&group=evil"), vec![]),
            (format!("csrf={}&group=evil", "0".repeat(64)), vec![]),
            (
                format!("csrf={token}&group=evil"),
                vec![("Origin", "http://evil.example")],
            ),
            (
                format!("csrf={token}&group=evil"),
                vec![("Sec-Fetch-Site", "cross-site")],
            ),
        ] {
            let mut hs = vec![("Cookie", kathrin.as_str())];
            hs.extend(headers);
            let (s, _, body) = http(&a, "POST", "/groups/add", &hs, &form);
            assert_eq!(s, 403, "{form}: {body}");
        }
        log.push("no token: refused");
        // With both: done, as kathrin.
        let (s, h, _) = http(
            &a,
            "POST",
            "/groups/add",
            &[("Cookie", &kathrin), ("Origin", &format!("http://{a}"))],
            &format!("csrf={token}&back=%2Fgroups&group=chemistry"),
        );
        assert_eq!(s, 303, "{h:?}");
        // Reinhard may switch his group, and nothing else: refused as the CLI refuses.
        let (_, h, body) = http(&a, "GET", "/login", &[], "");
        let pre = session_cookie(&h).unwrap();
        let (s, h, _) = http(
            &a,
            "POST",
            "/login",
            &[("Cookie", &pre)],
            &format!(
                "csrf={}&user=reinhard&password=reinhards+secret",
                csrf_of(&body)
            ),
        );
        assert_eq!(s, 303);
        let reinhard = session_cookie(&h).unwrap();
        let (_, _, body) = http(&a, "GET", "/groups", &[("Cookie", &reinhard)], "");
        let token = csrf_of(&body);
        let (s, _, _) = http(
            &a,
            "POST",
            "/groups/policy",
            &[("Cookie", &reinhard)],
            &format!("csrf={token}&back=%2Fgroups&group=physics&policy=ltsp"),
        );
        assert_eq!(s, 303);
        let (_, _, body) = http(&a, "GET", "/groups", &[("Cookie", &reinhard)], "");
        assert!(body.contains("group physics policy set to ltsp"), "{body}");
        http(
            &a,
            "POST",
            "/groups/policy",
            &[("Cookie", &reinhard)],
            &format!("csrf={token}&back=%2Fgroups&group=chemistry&policy=ltsp"),
        );
        let (_, _, body) = http(&a, "GET", "/groups", &[("Cookie", &reinhard)], "");
        assert!(
            body.contains("nmt: refused: reinhard may only set the policy of group(s) physics"),
            "{body}"
        );
        log
    });
    assert_eq!(steps.len(), 2);
    let groups = t.ok(&["group", "list"]);
    assert!(!groups.contains("evil"), "{groups}");
    assert!(groups.contains("chemistry"), "{groups}");
    let events: Vec<serde_json::Value> = t
        .ok(&["journal", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |ty: &str, group: &str| {
        events
            .iter()
            .find(|e| e["event"]["type"] == ty && e["event"]["group"] == group)
            .map(|e| e["actor"].as_str().unwrap().to_string())
    };
    assert_eq!(
        by("GroupCreated", "chemistry").as_deref(),
        Some("kathrin via web")
    );
    assert_eq!(
        by("GroupPolicySet", "physics").as_deref(),
        Some("reinhard via web")
    );
    assert_eq!(by("GroupPolicySet", "chemistry"), None);
}

/// `nmt schedule list --json`: the one schedule of that name.
fn schedule_json(t: &Nmt, name: &str) -> Option<serde_json::Value> {
    t.json(&["schedule", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

/// 02:00 in Europe/Berlin: the last time it struck at or before now, and the day's date then.
fn berlin_two_oclock() -> (jiff::Timestamp, jiff::civil::Date) {
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").expect("the zone database names Berlin");
    let now = jiff::Timestamp::now();
    let mut day = now.to_zoned(tz.clone()).date();
    if at_two(day) > now {
        day = day.yesterday().unwrap();
    }
    (at_two(day), day)
}

/// 02:00 of `day` in Europe/Berlin (on the night clocks spring forward, the first instant
/// after the gap, as the schedules' time rules say).
fn at_two(day: jiff::civil::Date) -> jiff::Timestamp {
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    day.at(2, 0, 0, 0).to_zoned(tz).unwrap().timestamp()
}

/// The `datetime` of a `time` element on the page.
async fn datetime(c: &Client, sel: &str) -> String {
    css(c, sel)
        .await
        .attr("datetime")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// The lab of the schedules tests: group `lab` with lab01..lab03 (MACs 1 to 3).
fn lab(t: &Nmt) {
    t.ok(&["group", "add", "lab"]);
    for n in 1..=3 {
        t.ok(&[
            "machine",
            "add",
            &mac(n),
            "--name",
            &format!("lab0{n}"),
            "--group",
            "lab",
        ]);
    }
}

const NIGHTLY: &[&str] = &[
    "schedule",
    "add",
    "lab-nightly",
    "--cron",
    "0 2 * * *",
    "--tz",
    "Europe/Berlin",
    "--expect",
    "45m",
    "--yes",
    "--",
    "policy",
    "@lab",
    "install",
    "--once",
];

#[test]
fn schedules_page_shows_a_schedule_live_and_pauses_resumes_and_removes_it_by_its_buttons() {
    let t = Nmt::new();
    let d = WebDaemon::start(&t, &[]);
    let url = d.url.clone();
    let t = &t;
    with_browser(|c| async move {
        // Nothing is defined yet: the page says how to define one.
        c.goto(&format!("{url}/schedules")).await.unwrap();
        let nav = text(&c, "header nav a[aria-current=page]").await;
        assert_eq!(nav, "Schedules");
        let empty = text(&c, "#no-schedules").await;
        assert!(
            empty.contains("nmt schedule add lab-nightly --cron '0 2 * * *'")
                && empty.contains("-- policy @lab restore-image:lab --once"),
            "{empty}"
        );

        // A schedule defined on the command line appears without a reload.
        log_in(&c, t).await;
        c.goto(&format!("{url}/schedules")).await.unwrap();
        css(&c, "#live.on").await;
        c.execute("window.__stayed = 42;", vec![]).await.unwrap();
        lab(t);
        let out = t.ok(NIGHTLY);
        assert!(out.contains("next run"), "{out}");
        let card = "section[data-schedule='lab-nightly']";
        css(&c, card).await;
        let stayed = c.execute("return window.__stayed;", vec![]).await.unwrap();
        assert_eq!(stayed, json!(42), "the page was not reloaded");
        assert!(c.find(Locator::Css("#no-schedules")).await.is_err());

        // What it runs, when, in which zone, as whom.
        let listed = schedule_json(t, "lab-nightly").expect("nmt schedule list lists it");
        let when = text(&c, &format!("{card} dd.when")).await;
        assert_eq!(when, "0 2 * * * in Europe/Berlin");
        let command = text(&c, &format!("{card} code.command")).await;
        assert_eq!(command, "nmt policy @lab install --once");
        let owner = text(&c, &format!("{card} dd.owner")).await;
        assert!(owner.starts_with(&nmt::current_actor()), "{owner}");
        assert!(text(&c, &format!("{card} dd.expect")).await.contains("45m"));
        assert!(
            text(&c, &format!("{card} dd.grace"))
                .await
                .starts_with("30m")
        );
        assert!(
            text(&c, &format!("{card} .norun"))
                .await
                .contains("not run yet")
        );
        // Its next run: the next 02:00 in Berlin, shown in nmtd's zone (UTC here) and in its own.
        let (last, day) = berlin_two_oclock();
        let next = at_two(day.tomorrow().unwrap());
        assert!(next > last);
        assert_eq!(listed["next"], next.to_string(), "{listed}");
        let at = datetime(&c, &format!("{card} dd.next time")).await;
        assert_eq!(at, next.to_string());
        let shown = text(&c, &format!("{card} dd.next")).await;
        let utc = next.strftime("%Y-%m-%d %H:%M:%S +00:00").to_string();
        assert!(shown.contains(&utc), "{shown} (want {utc})");
        assert!(
            shown.contains("02:00") && shown.contains("in Europe/Berlin"),
            "{shown}"
        );
        screenshot(&c, "schedules").await;

        // Pause: its times pass without a run.
        assert!(
            c.find(Locator::Css(&format!(
                "{card} form[action='/schedules/resume']"
            )))
            .await
            .is_err()
        );
        submit(
            &c,
            &format!("{card} form[action='/schedules/pause'] button"),
        )
        .await;
        let f = flash(&c).await;
        assert!(f.contains("schedule lab-nightly paused"), "{f}");
        assert_eq!(text(&c, &format!("{card} .badge.paused")).await, "paused");
        let shown = text(&c, &format!("{card} dd.next")).await;
        assert!(shown.starts_with("paused"), "{shown}");
        assert!(
            c.find(Locator::Css(&format!("{card} dd.next time")))
                .await
                .is_err(),
            "a paused schedule has no next run"
        );
        let listed = schedule_json(t, "lab-nightly").unwrap();
        assert_eq!(listed["paused"], json!(true), "{listed}");
        assert_eq!(listed["next"], json!(null), "{listed}");
        assert!(
            c.find(Locator::Css(&format!(
                "{card} form[action='/schedules/pause']"
            )))
            .await
            .is_err()
        );
        screenshot(&c, "schedules-paused").await;

        // Resume: from now on.
        submit(
            &c,
            &format!("{card} form[action='/schedules/resume'] button"),
        )
        .await;
        let f = flash(&c).await;
        assert!(f.contains("schedule lab-nightly resumed"), "{f}");
        assert!(
            c.find(Locator::Css(&format!("{card} .badge.paused")))
                .await
                .is_err()
        );
        assert_eq!(
            datetime(&c, &format!("{card} dd.next time")).await,
            next.to_string()
        );
        let listed = schedule_json(t, "lab-nightly").unwrap();
        assert_eq!(listed["paused"], json!(false), "{listed}");

        // Without a login the page shows it, and offers no button.
        submit(&c, "form[action='/logout'] button").await;
        c.goto(&format!("{url}/schedules")).await.unwrap();
        assert_eq!(text(&c, "#who").await, "read-only: log in");
        css(&c, card).await;
        let forms = c
            .execute(
                "return document.querySelectorAll('#schedules form, #schedules button').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(forms, json!(0), "no buttons for who may not use them");

        // Remove asks first; Cancel leaves it.
        log_in(&c, t).await;
        c.goto(&format!("{url}/schedules")).await.unwrap();
        submit(&c, &format!("{card} form[action='/schedules/rm'] button")).await;
        assert_eq!(text(&c, "h1").await, "Remove schedule lab-nightly?");
        let warning = text(&c, "#rm-warning").await;
        assert!(
            warning.contains("nmt policy @lab install --once"),
            "{warning}"
        );
        assert!(schedule_json(t, "lab-nightly").is_some(), "not removed yet");
        screenshot(&c, "schedule-rm-confirm").await;
        submit(&c, "#cancel-schedule-rm").await;
        css(&c, card).await;
        assert!(
            schedule_json(t, "lab-nightly").is_some(),
            "cancel removes nothing"
        );
        // Confirmed, it is gone, and the page says how to define one again.
        submit(&c, &format!("{card} form[action='/schedules/rm'] button")).await;
        submit(&c, "#confirm-schedule-rm").await;
        let f = flash(&c).await;
        assert!(f.contains("schedule lab-nightly removed"), "{f}");
        css(&c, "#no-schedules").await;
        assert!(t.json(&["schedule", "list"]).as_array().unwrap().is_empty());
    });
    drop(d);
}

/// One event line of a journal, at `at` for both its times.
fn event_line(
    seq: u64,
    at: jiff::Timestamp,
    actor: &str,
    stream: &str,
    event: serde_json::Value,
) -> String {
    json!({
        "seq": seq,
        "v": 1,
        "recorded_at": at.to_string(),
        "observed_at": at.to_string(),
        "actor": actor,
        "source": { "stream": stream },
        "event": event,
    })
    .to_string()
}

/// A store holding the lab, `lab-nightly` defined a week ago, and its runs since: three whose
/// machines all did their install, one checked with one machine done, one failed (with a
/// hostile detail) and one that never booted (its one-shot still pending), one whose action
/// failed (a hostile error), one time missed, and the latest run, late and not checked yet
/// (its check is due after the test). Built offline and imported, so no clock is waited for;
/// nmtd has nothing to run or check when it starts.
fn schedules_store() -> Nmt {
    let src = Nmt::new();
    lab(&src);
    src.ok(NIGHTLY);
    let export = src.ok(&["journal", "export"]);
    let (last, day) = berlin_two_oclock();
    let due = |days_ago: i64| at_two(day.checked_sub(jiff::Span::new().days(days_ago)).unwrap());
    let secs = jiff::SignedDuration::from_secs;
    // The events so far, told as if they happened before the first run.
    let defined = due(7) - secs(3600);
    let mut lines: Vec<String> = Vec::new();
    for (i, l) in export
        .lines()
        .filter(|l| !l.contains("\"trailer\""))
        .enumerate()
    {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        let at = (defined + secs(i as i64)).to_string();
        v["recorded_at"] = json!(at);
        v["observed_at"] = json!(at);
        lines.push(v.to_string());
    }
    let me = nmt::current_actor();
    let runner = format!("schedule lab-nightly (set by {me})");
    let stream = "schedule:lab-nightly";
    let macs: Vec<String> = (1..=3).map(mac).collect();
    let mut push = |at: jiff::Timestamp, actor: &str, event: serde_json::Value| {
        let seq = lines.len() as u64 + 1;
        lines.push(event_line(seq, at, actor, stream, event));
    };
    let ran = |run: u64, due: jiff::Timestamp| {
        json!({ "type": "ScheduleRan", "name": "lab-nightly", "run": run, "due": due.to_string(),
                "targets": macs })
    };
    let installed =
        |m: &str| json!({ "mac": m, "outcome": "done", "detail": "installed on /dev/sda1" });
    for run in 1..=3u64 {
        let d = due(7 - run as i64);
        push(d + secs(2), &runner, ran(run, d));
        push(
            d + secs(45 * 60 + 2),
            "nmtd",
            json!({ "type": "ScheduleChecked", "name": "lab-nightly", "run": run,
                    "outcomes": macs.iter().map(|m| installed(m)).collect::<Vec<_>>() }),
        );
    }
    let d = due(3);
    push(d + secs(2), &runner, ran(4, d));
    push(
        d + secs(45 * 60 + 2),
        "nmtd",
        json!({ "type": "ScheduleChecked", "name": "lab-nightly", "run": 4, "outcomes": [
            installed(&macs[0]),
            { "mac": macs[1], "outcome": "failed",
              "detail": "the installer said: <img src=x onerror=alert(1)>" },
            { "mac": macs[2], "outcome": "never-booted",
              "detail": "no DHCP exchange or boot file fetch seen", "once_pending": true },
        ] }),
    );
    let d = due(2);
    push(
        d + secs(2),
        &runner,
        json!({ "type": "ScheduleRan", "name": "lab-nightly", "run": 5, "due": d.to_string(),
                "error": "refused: <script>alert(2)</script> may no longer do this" }),
    );
    let d = due(1);
    push(
        d + secs(3 * 3600),
        "nmtd",
        json!({ "type": "ScheduleMissed", "name": "lab-nightly", "first": d.to_string(),
                "last": d.to_string(), "count": 1 }),
    );
    let now = jiff::Timestamp::now();
    push(
        now - secs(60),
        &runner,
        json!({ "type": "ScheduleRan", "name": "lab-nightly", "run": 6, "due": last.to_string(),
                "late": true, "targets": [macs[0], macs[1]], "carried": [macs[2]] }),
    );
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let trailer = nmt_replay::Trailer::of(body.as_bytes(), nmt_replay::ExportFilter::default());
    let file = src.dir.path().join("lab.jsonl");
    std::fs::write(&file, format!("{body}{}", trailer.to_line())).unwrap();
    let t = Nmt::bare();
    let out = t.ok(&["journal", "import", file.to_str().unwrap()]);
    assert!(out.starts_with("imported"), "{out}");
    t
}

#[test]
fn schedules_page_shows_the_last_runs_their_outcomes_and_links_the_machines_not_done() {
    let t = schedules_store();
    // What the CLI reports of the imported runs, to hold the page to.
    let runs = t.json(&["schedule", "runs", "lab-nightly"]);
    let runs = runs["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 7, "six runs and one missed time");
    assert_eq!(runs[3]["counts"]["failed"], json!(1), "{:?}", runs[3]);
    let d = WebDaemon::start(&t, &[]);
    let url = d.url.clone();
    let t = &t;
    with_browser(|c| async move {
        c.goto(&format!("{url}/schedules")).await.unwrap();
        let card = "section[data-schedule='lab-nightly']";
        css(&c, card).await;
        let forms = c
            .execute(
                "return document.querySelectorAll('#schedules form, #schedules button').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(forms, json!(0), "read-only: no buttons");
        log_in(&c, t).await;
        c.goto(&format!("{url}/schedules")).await.unwrap();
        css(
            &c,
            &format!("{card} form[action='/schedules/pause'] button"),
        )
        .await;

        // The five latest, newest first: runs 6, the missed time, 5, 4, 3.
        let order = c
            .execute(
                "return Array.from(document.querySelectorAll(\"section[data-schedule='lab-nightly'] li.run\"))\
                 .map(li => li.dataset.run);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(order, json!(["6", "missed", "5", "4", "3"]));
        let more = text(&c, &format!("{card} p.small")).await;
        assert!(more.contains("5 latest of 7"), "{more}");

        // Run 6: late, 3 targeted (one carried), not checked yet.
        let run6 = format!("{card} li.run[data-run='6']");
        let head = text(&c, &format!("{run6} .runhead")).await;
        assert!(head.contains("late"), "{head}");
        assert!(head.contains("3 machines targeted"), "{head}");
        let unchecked = text(&c, &format!("{run6} .unchecked")).await;
        assert!(unchecked.starts_with("not checked yet"), "{unchecked}");
        let carried = text(&c, &format!("{run6} tr[data-mac='{}']", mac(3))).await;
        assert!(
            carried.contains("lab03") && carried.contains("carried"),
            "{carried}"
        );

        // The missed time, and run 5's failure, told as text.
        let missed = text(&c, &format!("{card} li.run.missed")).await;
        assert!(
            missed.contains("missed") && missed.contains("not run"),
            "{missed}"
        );
        let failed = text(&c, &format!("{card} li.run[data-run='5'] .run-error")).await;
        assert_eq!(
            failed,
            "Failed, nothing changed: refused: <script>alert(2)</script> may no longer do this"
        );

        // Run 4: its counts, and the machines not done, each linked to its timeline.
        let run4 = format!("{card} li.run[data-run='4']");
        for (outcome, n) in [
            ("done", 1),
            ("failed", 1),
            ("no-report", 0),
            ("never-booted", 1),
        ] {
            let shown = text(&c, &format!("{run4} li[data-outcome='{outcome}'] .n")).await;
            assert_eq!(shown, n.to_string(), "{outcome}");
            assert_eq!(runs[3]["counts"][outcome], json!(n), "{outcome}");
        }
        let counts = text(&c, &format!("{run4} ul.counts")).await;
        assert!(
            counts.contains("booted but never reported") && counts.contains("never booted"),
            "{counts}"
        );
        let rows = c
            .find_all(Locator::Css(&format!("{run4} .notdone tr[data-mac]")))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2, "lab01 was done");
        let lab02 = text(&c, &format!("{run4} tr[data-mac='{}']", mac(2))).await;
        assert!(lab02.contains("failed"), "{lab02}");
        assert!(
            lab02.contains("the installer said: <img src=x onerror=alert(1)>"),
            "{lab02}"
        );
        assert!(!lab02.contains("one-shot"), "{lab02}");
        let lab03 = text(&c, &format!("{run4} tr[data-mac='{}']", mac(3))).await;
        assert!(lab03.contains("never booted"), "{lab03}");
        assert!(lab03.contains("one-shot still pending"), "{lab03}");
        let hostile = c
            .execute(
                "return document.querySelectorAll('main img, main script').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(hostile, json!(0), "no element was injected");
        assert!(c.get_alert_text().await.is_err(), "no alert is open");
        // Runs 3 and before: all done, nothing listed.
        let run3 = format!("{card} li.run[data-run='3']");
        assert_eq!(
            text(&c, &format!("{run3} li[data-outcome='done'] .n")).await,
            "3"
        );
        assert!(
            c.find(Locator::Css(&format!("{run3} .notdone")))
                .await
                .is_err()
        );
        screenshot(&c, "schedules-runs").await;

        let link = css(&c, &format!("{run4} tr[data-mac='{}'] td.name a", mac(2))).await;
        assert_eq!(
            link.attr("href").await.unwrap().as_deref(),
            Some(format!("/machine/{}", mac(2)).as_str())
        );
        assert_eq!(link.text().await.unwrap(), "lab02");
        link.click().await.unwrap();
        css(&c, "#machine").await;
        assert_eq!(text(&c, "h1").await, "lab02");
        let here = c.current_url().await.unwrap();
        assert_eq!(here.path(), format!("/machine/{}", mac(2)));
    });
    // nmtd ran nothing and checked nothing meanwhile: the page showed the imported runs.
    let after = t.json(&["schedule", "runs", "lab-nightly"]);
    assert_eq!(after["runs"].as_array().unwrap().len(), 7);
    drop(d);
}

/// The power lab: group `lab` with lab01 and lab02 on Wake-on-LAN (an "on" sends a real
/// magic packet to 127.255.255.255, so it works without hardware; off, cycle, reset and
/// status fail with Wake-on-LAN's reason), lab03 behind an IPMI BMC at a loopback port
/// nothing answers on (its user name is hostile markup), and lab04 without a BMC. Power
/// actions time out after 2 s.
fn power_lab(t: &Nmt) -> u16 {
    append(&t.path("nmt.toml"), "\n[power]\ntimeout = 2\n");
    lab(t);
    t.ok(&[
        "machine",
        "add",
        &mac(4),
        "--name",
        "lab04",
        "--group",
        "lab",
    ]);
    for n in ["lab01", "lab02"] {
        let out = t.ok(&["bmc", "set", n, "--wol", "--broadcast", "127.255.255.255"]);
        assert!(out.contains("Wake-on-LAN to 127.255.255.255"), "{out}");
    }
    // A UDP port nothing listens on: bound, then let go.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pw = t.dir.join("bmc-password");
    std::fs::write(&pw, "s3cret-BMC-pw\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    t.ok(&[
        "bmc",
        "set",
        "lab03",
        "--ipmi",
        &format!("127.0.0.1:{port}"),
        "--user",
        "<i>adm</i>",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    port
}

/// The `PowerActed` events of a machine, oldest first (`nmt history NAME --json`).
fn power_events(t: &Nmt, machine: &str) -> Vec<serde_json::Value> {
    t.json(&["history", machine])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["type"] == "PowerActed")
        .cloned()
        .collect()
}

/// How many elements match on the page.
async fn count(c: &Client, sel: &str) -> u64 {
    let n = c
        .execute(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(sel)],
        )
        .await
        .unwrap();
    n.as_u64().unwrap()
}

#[test]
fn power_on_a_machines_page_at_once_and_cycle_after_a_confirmation_with_its_result() {
    let t = Nmt::new();
    let port = power_lab(&t);
    let d = WebDaemon::start(&t, &[]);
    let url = d.url.clone();
    let t = &t;
    let web_actor = format!("{} via web", nmt::current_actor());
    with_browser(|c| async move {
        log_in(&c, t).await;
        // lab01: its BMC in words, no password needed, no action yet, and the buttons.
        c.goto(&format!("{url}/machine/{}", mac(1))).await.unwrap();
        assert_eq!(text(&c, "#power-h").await, "Power");
        assert_eq!(
            text(&c, "#m-power dd.bmc").await,
            "Wake-on-LAN to 127.255.255.255"
        );
        assert!(
            text(&c, "#m-power dd.password")
                .await
                .contains("none needed")
        );
        assert_eq!(text(&c, "#m-power dd.last-power").await, "none yet");
        for (op, label) in [
            ("on", "On"),
            ("off", "Off…"),
            ("cycle", "Cycle…"),
            ("reset", "Reset…"),
            ("status", "Status"),
        ] {
            let b = text(&c, &format!("#m-power button[name=power][value={op}]")).await;
            assert_eq!(b, label);
        }
        screenshot(&c, "power-machine").await;

        // On acts at once: a real magic packet; the result is shown, and recorded as the
        // web user's.
        submit(&c, "#m-power button[value=on]").await;
        assert_eq!(
            c.current_url().await.unwrap().path(),
            format!("/machine/{}", mac(1))
        );
        assert_eq!(flash(&c).await, "power on of 1 machine: 1 ok, 0 failed");
        let row = format!("#power-results tr[data-mac='{}']", mac(1));
        assert_eq!(text(&c, &format!("{row} td.result")).await, "ok");
        assert_eq!(
            text(&c, &format!("{row} td.detail")).await,
            "magic packet sent to 127.255.255.255:9"
        );
        let last = text(&c, "#m-power dd.last-power").await;
        assert!(
            last.starts_with("ok on ")
                && last.contains(&format!("by {web_actor}"))
                && last.contains("magic packet sent"),
            "{last}"
        );
        let ev = power_events(t, "lab01");
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0]["actor"], web_actor.as_str());
        assert_eq!(ev[0]["source"]["stream"], "web");
        assert_eq!(ev[0]["event"]["op"], "on");
        assert_eq!(ev[0]["event"]["result"]["ok"], json!(true));
        screenshot(&c, "power-machine-on").await;

        // lab03: IPMI, its hostile user name shown as text, its password kept and never
        // shown.
        c.goto(&format!("{url}/machine/{}", mac(3))).await.unwrap();
        let bmc = text(&c, "#m-power dd.bmc").await;
        assert_eq!(bmc, format!("IPMI lanplus 127.0.0.1:{port} as <i>adm</i>"));
        assert_eq!(count(&c, "#m-power dd.bmc i").await, 0, "markup stays text");
        assert!(text(&c, "#m-power dd.password").await.starts_with("kept"));
        let source = c.source().await.unwrap();
        assert!(
            !source.contains("s3cret"),
            "the password is never on a page"
        );

        // Cycle asks first, naming the machine; Cancel does nothing.
        submit(&c, "#m-power button[value=cycle]").await;
        assert_eq!(text(&c, "h1").await, "Power-cycle lab03?");
        let listed = text(&c, "#power-list").await;
        assert!(
            listed.contains("lab03") && listed.contains(&mac(3)),
            "{listed}"
        );
        assert!(listed.contains("<i>adm</i>"), "{listed}");
        assert_eq!(text(&c, "#confirm-power").await, "Power-cycle lab03");
        screenshot(&c, "power-cycle-confirm").await;
        assert!(
            power_events(t, "lab03").is_empty(),
            "nothing before confirming"
        );
        submit(&c, "#cancel-power").await;
        assert_eq!(text(&c, "h1").await, "lab03");
        assert!(power_events(t, "lab03").is_empty(), "Cancel does nothing");
        assert_eq!(count(&c, "#power-results").await, 0);

        // Confirmed, it is performed: the BMC does not answer, and the page says so.
        submit(&c, "#m-power button[value=cycle]").await;
        submit(&c, "#confirm-power").await;
        assert_eq!(
            c.current_url().await.unwrap().path(),
            format!("/machine/{}", mac(3))
        );
        assert_eq!(
            text(&c, "main .flash.err").await,
            "power cycle of 1 machine: 0 ok, 1 failed"
        );
        let row = format!("#power-results tr[data-mac='{}']", mac(3));
        assert_eq!(text(&c, &format!("{row} td.result")).await, "failed");
        let why = text(&c, &format!("{row} td.detail")).await;
        // Nothing listens at that port: nmt's presence ping says so at once.
        assert!(why.contains("no BMC answers at 127.0.0.1:"), "{why}");
        let last = text(&c, "#m-power dd.last-power").await;
        assert!(
            last.starts_with("failed cycle ") && last.contains(&why),
            "{last}"
        );
        let ev = power_events(t, "lab03");
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0]["actor"], web_actor.as_str());
        assert_eq!(ev[0]["event"]["op"], "cycle");
        assert_eq!(ev[0]["event"]["result"]["ok"], json!(false));
        assert_eq!(ev[0]["event"]["result"]["detail"], why.as_str());
        screenshot(&c, "power-cycle-failed").await;

        // The results are shown once: the next page has only the last action.
        c.goto(&format!("{url}/machine/{}", mac(3))).await.unwrap();
        css(&c, "#m-power dd.last-power").await;
        assert_eq!(count(&c, "#power-results").await, 0);

        // lab04 has no BMC: the page says so, and how to set one; no buttons.
        c.goto(&format!("{url}/machine/{}", mac(4))).await.unwrap();
        let none = text(&c, "#m-power p.no-bmc").await;
        assert!(none.starts_with("lab04 has no BMC"), "{none}");
        assert_eq!(
            text(&c, "#m-power pre.how").await,
            "nmt bmc set lab04 --ipmi HOST --user USER --password-file FILE"
        );
        assert_eq!(count(&c, "#m-power button").await, 0);

        // Logged out, the page shows the BMC and its last action, and no button.
        submit(&c, "form[action='/logout'] button").await;
        c.goto(&format!("{url}/machine/{}", mac(1))).await.unwrap();
        assert_eq!(text(&c, "#who").await, "read-only: log in");
        assert_eq!(
            text(&c, "#m-power dd.bmc").await,
            "Wake-on-LAN to 127.255.255.255"
        );
        assert!(
            text(&c, "#m-power dd.last-power")
                .await
                .starts_with("ok on")
        );
        assert_eq!(count(&c, "#m-power form, #m-power button").await, 0);
        c.goto(&format!("{url}/machines")).await.unwrap();
        css(&c, "#rows").await;
        assert_eq!(count(&c, "#bulk-power, button[name=power]").await, 0);
    });
    drop(d);
}

#[test]
fn power_for_the_ticked_machines_lists_them_first_and_shows_one_result_each() {
    let t = Nmt::new();
    power_lab(&t);
    let d = WebDaemon::start(&t, &[]);
    let url = d.url.clone();
    let t = &t;
    let web_actor = format!("{} via web", nmt::current_actor());
    with_browser(|c| async move {
        log_in(&c, t).await;
        c.goto(&format!("{url}/machines")).await.unwrap();
        let tick = |n: u32| {
            let c = c.clone();
            async move {
                css(&c, &format!("#rows input[value='{}']", mac(n)))
                    .await
                    .click()
                    .await
                    .unwrap();
            }
        };
        tick(1).await;
        tick(2).await;
        assert_eq!(text(&c, "#nsel").await, "2");
        let buttons = text(&c, "#bulk-power").await;
        assert!(
            buttons.contains("Cycle…") && buttons.contains("Status"),
            "{buttons}"
        );

        // Off asks first, listing both.
        submit(&c, "#bulk-power button[value=off]").await;
        assert_eq!(text(&c, "h1").await, "Power off 2 machines?");
        assert_eq!(count(&c, "#power-list tr").await, 2);
        for n in 1..=2 {
            let row = text(&c, &format!("#power-list tr[data-mac='{}']", mac(n))).await;
            assert!(
                row.contains(&format!("lab0{n}")) && row.contains("Wake-on-LAN"),
                "{row}"
            );
        }
        assert_eq!(text(&c, "#confirm-power").await, "Power off 2 machines");
        assert!(text(&c, "#power-warning").await.contains("hard power off"));
        screenshot(&c, "power-bulk-confirm").await;
        assert!(power_events(t, "lab01").is_empty() && power_events(t, "lab02").is_empty());

        // Confirmed: one result per machine; Wake-on-LAN cannot switch off.
        submit(&c, "#confirm-power").await;
        assert_eq!(c.current_url().await.unwrap().path(), "/machines");
        assert_eq!(
            text(&c, "main .flash.err").await,
            "power off of 2 machines: 0 ok, 2 failed"
        );
        assert_eq!(count(&c, "#power-results tbody tr").await, 2);
        for n in 1..=2 {
            let row = format!("#power-results tr[data-mac='{}']", mac(n));
            assert_eq!(
                text(&c, &format!("{row} td.name")).await,
                format!("lab0{n}")
            );
            assert_eq!(text(&c, &format!("{row} td.result")).await, "failed");
            assert_eq!(
                text(&c, &format!("{row} td.detail")).await,
                "Wake-on-LAN can only switch a machine on, not switch it off; give it an IPMI \
                 or Redfish BMC"
            );
            let ev = power_events(t, &format!("lab0{n}"));
            assert_eq!(ev.len(), 1, "{ev:?}");
            assert_eq!(ev[0]["actor"], web_actor.as_str());
            assert_eq!(ev[0]["event"]["op"], "off");
        }
        screenshot(&c, "power-bulk-results").await;

        // The same machines stay ticked; On for lab01 and lab04 (no BMC) acts at once.
        assert_eq!(text(&c, "#nsel").await, "2");
        tick(2).await;
        tick(4).await;
        submit(&c, "#bulk-power button[value=on]").await;
        assert_eq!(
            text(&c, "main .flash.err").await,
            "power on of 2 machines: 1 ok, 1 failed"
        );
        assert_eq!(count(&c, "#power-results tbody tr").await, 2);
        let ok = format!("#power-results tr[data-mac='{}']", mac(1));
        assert_eq!(text(&c, &format!("{ok} td.result")).await, "ok");
        let none = format!("#power-results tr[data-mac='{}']", mac(4));
        assert_eq!(text(&c, &format!("{none} td.result")).await, "failed");
        let why = text(&c, &format!("{none} td.detail")).await;
        assert!(why.starts_with("lab04 has no BMC"), "{why}");
        assert_eq!(power_events(t, "lab01").len(), 2);
        assert_eq!(power_events(t, "lab02").len(), 1, "lab02 was not ticked");
        let ev = power_events(t, "lab04");
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0]["actor"], web_actor.as_str());
        assert_eq!(ev[0]["event"]["result"]["ok"], json!(false));
    });
    drop(d);
}
