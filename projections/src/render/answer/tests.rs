//! Every answer file, across names, network console, log host and password, passes the real
//! validator of its format (`debconf-set-selections --checkonly`, `ksvalidator`,
//! `cloud-init schema`); its report command, run by a shell with stand-ins for `findmnt`,
//! `curl` and `wget`, POSTs the right device to the right URL. A missing validator fails the
//! test with what to install.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jiff::Timestamp;

use super::*;
use crate::{Envelope, Event, Profile, report_token};

const SITE_KEY: &str = "00112233445566778899aabbccddeeff";
const HTTP: &str = "http://10.0.0.1:8017";
/// `openssl passwd -6 -salt nmtSalt0 secret`
const CRYPT: &str = "$6$nmtSalt0$iHZszXr7dM/BNsKOk8CjShz08nQa75tfLJ/SRIauRTHg/dWFVUDiXzFodLXLL9eszkQvV.LqBndf3ynA3I2Y50";

const NAMED: &str = "52:54:00:00:00:01";
const UNNAMED: &str = "52:54:00:00:00:02";

/// Valid machine names that some format would misread if written bare: YAML 1.1 booleans,
/// null, numbers and dates, a double dash, a 63-letter label with a domain.
const HOSTILE_NAMES: &[&str] = &[
    "yes",
    "no",
    "on",
    "null",
    "true",
    "0x1f",
    "1e5",
    "nan",
    "2001-12-14",
    "a--b",
    "lab-7.example.org",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.example.org",
];

/// The install profiles: (name, answer kind, network console).
const PROFILES: &[(&str, AnswerKind, bool)] = &[
    ("deb", AnswerKind::Preseed, false),
    ("deb-nc", AnswerKind::Preseed, true),
    ("ks", AnswerKind::Kickstart, false),
    ("ks-nc", AnswerKind::Kickstart, true),
    ("ubu", AnswerKind::Autoinstall, false),
    ("ubu-nc", AnswerKind::Autoinstall, true),
];

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

struct Given {
    state: State,
    seq: u64,
}

impl Given {
    fn new() -> Self {
        Given {
            state: State::new(),
            seq: 0,
        }
    }

    fn ev(&mut self, event: Event) -> &mut Self {
        self.seq += 1;
        self.state.apply(&Envelope {
            seq: self.seq,
            v: 1,
            recorded_at: Timestamp::UNIX_EPOCH,
            observed_at: Timestamp::UNIX_EPOCH,
            actor: "test".into(),
            source: None,
            event,
        });
        self
    }

    fn machine(&mut self, m: &str, name: Option<&str>) -> &mut Self {
        self.ev(Event::MachineRegistered {
            mac: mac(m),
            name: name.map(Into::into),
            group: None,
            ip: None,
        })
    }

    fn policy(&mut self, m: &str, p: &str) -> &mut Self {
        self.ev(Event::MachinePolicySet {
            mac: mac(m),
            policy: Some(p.parse().unwrap()),
            once: false,
        })
    }
}

fn install_profile(name: &str, answer: AnswerKind, network_console: bool) -> Profile {
    Profile {
        name: name.into(),
        kind: ProfileKind::Install,
        kernel: "installer/linux".into(),
        initrd: vec!["installer/initrd.gz".into()],
        args: "url={answer_url}".into(),
        answer: Some(answer),
        network_console,
        preseed: None,
    }
}

/// The store with every install profile and two machines, one named.
fn base() -> Given {
    let mut g = Given::new();
    g.ev(Event::StoreCreated {
        site_key: SITE_KEY.into(),
    });
    for (name, kind, nc) in PROFILES {
        g.ev(Event::ProfileDefined {
            profile: install_profile(name, *kind, *nc),
        });
    }
    g.machine(NAMED, Some("node01")).machine(UNNAMED, None);
    g
}

fn cfg() -> RenderConfig {
    RenderConfig {
        http_url: format!("{HTTP}/"),
        ..RenderConfig::default()
    }
}

fn report_url(m: &str) -> String {
    let m = mac(m);
    format!(
        "{HTTP}/v1/report/{}/{}",
        m.dashed(),
        report_token(SITE_KEY, &m, 0)
    )
}

/// One rendered file and what it was made from.
struct Case {
    label: String,
    mac: &'static str,
    kind: AnswerKind,
    nc: bool,
    password: bool,
    log: bool,
    answer: Answer,
}

/// Every profile × password on/off × log host on/off, for the named and the unnamed machine;
/// then every hostile name with everything on.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let cfg = cfg();
    for (profile, kind, nc) in PROFILES {
        let mut g = base();
        g.policy(NAMED, &format!("install:{profile}"))
            .policy(UNNAMED, &format!("install:{profile}"));
        for m in [NAMED, UNNAMED] {
            for password in [false, true] {
                for log in [false, true] {
                    let ctx = AnswerContext {
                        password_crypted: password.then_some(CRYPT),
                        log_host: log.then_some("10.0.0.1"),
                        log_port: 514,
                    };
                    let answer = answer_for(&g.state, &mac(m), &cfg, &ctx)
                        .unwrap_or_else(|| panic!("no answer for {m} {profile}"));
                    out.push(Case {
                        label: format!("{profile} {m} password={password} log={log}"),
                        mac: m,
                        kind: *kind,
                        nc: *nc,
                        password,
                        log,
                        answer,
                    });
                }
            }
        }
        for name in HOSTILE_NAMES {
            let mut g = base();
            g.ev(Event::MachineNamed {
                mac: mac(NAMED),
                name: Some(crate::machine_name(name).expect("valid name")),
            })
            .policy(NAMED, &format!("install:{profile}"));
            let ctx = AnswerContext {
                password_crypted: Some(CRYPT),
                log_host: Some("logs.example.org"),
                log_port: 5514,
            };
            out.push(Case {
                label: format!("{profile} name {name}"),
                mac: NAMED,
                kind: *kind,
                nc: *nc,
                password: true,
                log: true,
                answer: answer_for(&g.state, &mac(NAMED), &cfg, &ctx).unwrap(),
            });
        }
    }
    out
}

fn cases_of(kind: AnswerKind) -> Vec<Case> {
    cases().into_iter().filter(|c| c.kind == kind).collect()
}

/// Run a validator; a missing one fails with what to install.
fn run(cmd: &str, args: &[&str], file: &Path, hint: &str) -> Output {
    run_env(cmd, args, file, &[], hint)
}

fn run_env(cmd: &str, args: &[&str], file: &Path, env: &[(&str, &Path)], hint: &str) -> Output {
    let mut c = Command::new(cmd);
    c.args(args).arg(file);
    for (k, v) in env {
        c.env(k, v);
    }
    match c.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{cmd} is not installed, and these tests need it: {hint}")
        }
        Err(e) => panic!("cannot run {cmd}: {e}"),
    }
}

/// Write each case to a file and check it with `check` (in parallel); every failure is
/// reported with the file.
fn validate_all(cases: &[Case], ext: &str, check: impl Fn(&Path) -> Result<(), String> + Sync) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(String, PathBuf, String)> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = dir.path().join(format!("{i}.{ext}"));
            std::fs::write(&p, &c.answer.body).unwrap();
            (c.label.clone(), p, c.answer.body.clone())
        })
        .collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(files.len().div_ceil(8))
            .map(|chunk| {
                let check = &check;
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(label, p, body)| {
                            check(p)
                                .err()
                                .map(|e| format!("{label}: {e}\n--- file:\n{body}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn outcome(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn preseeds_pass_debconf_set_selections() {
    let cases = cases_of(AnswerKind::Preseed);
    assert_eq!(cases.len(), 2 * (8 + HOSTILE_NAMES.len()));
    validate_all(&cases, "cfg", debconf_check);
}

#[test]
fn kickstarts_pass_ksvalidator() {
    let cases = cases_of(AnswerKind::Kickstart);
    let ksvalidator = |p: &Path, version: &str| {
        let o = run(
            "ksvalidator",
            &["-v", version],
            p,
            "pip install pykickstart (Debian has no python3-pykickstart)",
        );
        // It prints a "Checking kickstart file" banner on stdout; problems, warnings and
        // deprecations go to stderr.
        if o.status.success() && o.stderr.is_empty() {
            Ok(())
        } else {
            Err(format!("ksvalidator -v {version}: {}", outcome(&o)))
        }
    };
    // Every file for RHEL 9; each combination of options for RHEL 8 and Fedora too (the
    // names only change --hostname).
    validate_all(&cases, "ks", |p| ksvalidator(p, "RHEL9"));
    let combos: Vec<Case> = cases
        .into_iter()
        .filter(|c| c.mac == NAMED && !c.label.contains(" name "))
        .collect();
    assert_eq!(combos.len(), 8);
    validate_all(&combos, "ks", |p| {
        ksvalidator(p, "RHEL8")?;
        ksvalidator(p, "F40")
    });
}

#[test]
fn autoinstalls_pass_cloud_init_schema() {
    let cases = cases_of(AnswerKind::Autoinstall);
    validate_all(&cases, "yaml", |p| {
        let o = run(
            "cloud-init",
            &["schema", "-c"],
            p,
            "apt-get install cloud-init",
        );
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.success()
            && out.contains("Valid cloud-config")
            && !err.contains("rror")
            && !out.contains("eprecat")
            && !err.contains("eprecat")
        {
            Ok(())
        } else {
            Err(outcome(&o))
        }
    });
}

/// The YAML as PyYAML (which cloud-init and Subiquity use) reads it, as JSON.
fn yaml(body: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("user-data");
    std::fs::write(&p, body).unwrap();
    let script = "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)";
    for python in ["/usr/bin/python3", "python3"] {
        if let Ok(o) = Command::new(python).args(["-c", script]).arg(&p).output()
            && o.status.success()
        {
            return serde_json::from_slice(&o.stdout).unwrap();
        }
    }
    panic!(
        "no python3 with PyYAML to read the user-data: apt-get install python3-yaml \
         (cloud-init depends on it)"
    )
}

/// Subiquity's documented autoinstall keys (version 1).
const AUTOINSTALL_KEYS: &[&str] = &[
    "version",
    "interactive-sections",
    "early-commands",
    "locale",
    "refresh-installer",
    "keyboard",
    "source",
    "network",
    "proxy",
    "apt",
    "storage",
    "identity",
    "active-directory",
    "ubuntu-pro",
    "ssh",
    "codecs",
    "drivers",
    "oem",
    "snaps",
    "debconf-selections",
    "packages",
    "kernel",
    "kernel-crash-dumps",
    "timezone",
    "updates",
    "shutdown",
    "late-commands",
    "error-commands",
    "reporting",
    "user-data",
];

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not a mapping: {v}"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn autoinstall_structure_is_subiquitys() {
    use serde_json::json;
    for c in cases_of(AnswerKind::Autoinstall) {
        let body = &c.answer.body;
        assert!(body.starts_with("#cloud-config\n"), "{}", c.label);
        let doc = yaml(body);
        let top = keys(&doc);
        let allowed: BTreeSet<String> = ["autoinstall", "ssh_pwauth", "chpasswd"]
            .map(String::from)
            .into();
        assert!(top.is_subset(&allowed), "{}: {top:?}", c.label);
        let ai = &doc["autoinstall"];
        for k in keys(ai) {
            assert!(AUTOINSTALL_KEYS.contains(&k.as_str()), "{}: {k}", c.label);
        }
        assert_eq!(ai["version"], json!(1), "{}", c.label);
        assert_eq!(ai["keyboard"]["layout"], json!("us"));
        assert_eq!(ai["ssh"]["install-server"], json!(true));
        assert!(
            ["lvm", "direct"].contains(&ai["storage"]["layout"]["name"].as_str().unwrap()),
            "{}",
            c.label
        );
        let host = c
            .answer
            .body
            .lines()
            .find_map(|l| l.split_once(", host name ").map(|(_, h)| h.to_string()))
            .unwrap();
        let host = host.split('.').next().unwrap();
        if c.password {
            assert_eq!(
                keys(&ai["identity"]),
                ["hostname", "password", "realname", "username"]
                    .map(String::from)
                    .into(),
                "{}",
                c.label
            );
            // A string, whatever the name looks like to YAML.
            assert_eq!(ai["identity"]["hostname"], json!(host), "{}", c.label);
            assert_eq!(ai["identity"]["password"], json!(CRYPT));
            assert_eq!(ai["identity"]["username"], json!("nmt"));
            assert!(ai.get("interactive-sections").is_none());
        } else {
            assert!(ai.get("identity").is_none(), "{}", c.label);
            assert_eq!(ai["interactive-sections"], json!(["identity"]));
        }
        if c.log {
            let dest = ai["reporting"]["nmt"]["dest"].as_str().unwrap();
            assert_eq!(ai["reporting"]["nmt"]["type"], json!("rsyslog"));
            assert_eq!(ai["reporting"]["builtin"]["type"], json!("print"));
            assert!(
                dest == "@10.0.0.1:514" || dest == "@logs.example.org:5514",
                "{dest}"
            );
        } else {
            assert!(ai.get("reporting").is_none());
        }
        let late = ai["late-commands"].as_array().unwrap();
        assert_eq!(late.len(), 1);
        assert!(late[0].as_str().unwrap().contains(&report_url(c.mac)));
        if c.nc && c.password {
            assert_eq!(doc["ssh_pwauth"], json!(true));
            assert_eq!(
                doc["chpasswd"]["users"],
                json!([{"name": "installer", "password": CRYPT, "type": "hash"}])
            );
        } else {
            assert_eq!(top, ["autoinstall".to_string()].into(), "{}", c.label);
        }
    }
}

/// The `d-i` questions of a preseed, by name: (type, value).
fn preseed_questions(body: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for l in body.lines() {
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let mut parts = l.splitn(4, ' ');
        let (owner, q, ty) = (
            parts.next().unwrap(),
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        );
        let value = parts.next().unwrap_or("").to_string();
        assert!(
            ["d-i", "tasksel", "popularity-contest"].contains(&owner),
            "{l}"
        );
        assert!(out.insert(q.clone(), (ty, value)).is_none(), "{q} twice");
    }
    out
}

#[test]
fn preseed_structure() {
    for c in cases_of(AnswerKind::Preseed) {
        let q = preseed_questions(&c.answer.body);
        let get = |k: &str| q.get(k).map(|(_, v)| v.as_str());
        let host = get("netcfg/get_hostname").unwrap();
        assert_eq!(get("netcfg/hostname"), Some(host));
        if c.mac == UNNAMED {
            assert_eq!(host, "nmt-525400000002");
            assert_eq!(get("netcfg/get_domain"), Some(""));
        }
        if c.label.ends_with("lab-7.example.org") {
            assert_eq!(host, "lab-7");
            assert_eq!(get("netcfg/get_domain"), Some("example.org"));
        }
        assert_eq!(get("partman-auto/method"), Some("regular"));
        assert_eq!(get("partman-auto/choose_recipe"), Some("atomic"));
        assert_eq!(get("grub-installer/bootdev"), Some("default"));
        assert_eq!(get("tasksel/first"), Some("standard, ssh-server"));
        assert_eq!(get("mirror/http/hostname"), Some("deb.debian.org"));
        assert_eq!(
            q.get("finish-install/reboot_in_progress"),
            Some(&("note".to_string(), String::new()))
        );
        assert_eq!(
            get("passwd/user-password-crypted"),
            c.password.then_some(CRYPT),
            "{}",
            c.label
        );
        assert_eq!(
            get("anna/choose_modules"),
            c.nc.then_some("network-console")
        );
        assert_eq!(
            get("network-console/password-disabled"),
            (c.nc && c.password).then_some("false")
        );
        // network-console's stand-in password: the machine's token, replaced early.
        let token = report_url(c.mac).rsplit('/').next().unwrap().to_string();
        assert_eq!(
            get("network-console/password"),
            (c.nc && c.password).then_some(token.as_str()),
            "{}",
            c.label
        );
        let early = get("partman/early_command").unwrap();
        assert_eq!(early.contains(CRYPT), c.nc && c.password, "{}", c.label);
        let late = get("preseed/late_command").unwrap();
        assert!(late.contains(&format!("'{}'", report_url(c.mac))));
        let comments = c
            .answer
            .body
            .lines()
            .filter(|l| l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            comments.contains("log_host=10.0.0.1 log_port=514")
                || comments.contains("log_host=logs.example.org log_port=5514"),
            c.log,
            "{}",
            c.label
        );
        assert_eq!(
            comments.contains("the installer asks for the password"),
            !c.password
        );
    }
}

#[test]
fn kickstart_structure() {
    for c in cases_of(AnswerKind::Kickstart) {
        let body = &c.answer.body;
        let has = |l: &str| body.lines().any(|x| x == l);
        for l in [
            "text",
            "zerombr",
            "clearpart --all --initlabel",
            "autopart",
            "reboot",
            "%packages",
            "@core",
        ] {
            assert!(has(l), "{}: {l}", c.label);
        }
        assert!(body.contains(" --hostname="));
        if c.mac == UNNAMED {
            assert!(body.contains(" --hostname=nmt-525400000002 "));
        }
        assert_eq!(
            has(&format!("rootpw --iscrypted {CRYPT}")),
            c.password,
            "{}",
            c.label
        );
        assert_eq!(
            has(&format!("sshpw --username=root --iscrypted {CRYPT}")),
            c.password && c.nc
        );
        assert_eq!(body.contains("inst.sshd"), c.nc);
        assert_eq!(
            has("logging --host=10.0.0.1 --port=514")
                || has("logging --host=logs.example.org --port=5514"),
            c.log
        );
        assert!(body.contains(&format!("'{}'", report_url(c.mac))));
    }
}

#[test]
fn every_file_reports_to_its_machine_url_with_its_token() {
    for c in cases() {
        let url = report_url(c.mac);
        assert!(c.answer.body.contains(&url), "{}", c.label);
        // Never another machine's.
        let other = report_url(if c.mac == NAMED { UNNAMED } else { NAMED });
        assert!(!c.answer.body.contains(&other), "{}", c.label);
        assert!(
            !c.answer.body.contains("{report_url}") && !c.answer.body.contains("{token}"),
            "{}: placeholders left",
            c.label
        );
        assert!(c.answer.body.lines().count() > 10);
        assert!(
            c.answer
                .body
                .chars()
                .all(|ch| ch == '\n' || (ch.is_ascii() && !ch.is_ascii_control())),
            "{}",
            c.label
        );
        assert_eq!(
            c.answer.content_type,
            match c.kind {
                AnswerKind::Autoinstall => "text/cloud-config; charset=utf-8",
                _ => "text/plain; charset=utf-8",
            }
        );
    }
}

/// The report command of a file: d-i's late_command, the kickstart %post script, or the
/// autoinstall late command.
fn report_command(a: &Answer) -> String {
    match a.kind {
        AnswerKind::Preseed => a
            .body
            .lines()
            .find_map(|l| l.strip_prefix("d-i preseed/late_command string "))
            .unwrap()
            .to_string(),
        AnswerKind::Kickstart => {
            let mut lines = a.body.lines().skip_while(|l| !l.starts_with("%post"));
            lines.next();
            lines
                .take_while(|l| *l != "%end")
                .collect::<Vec<_>>()
                .join("\n")
        }
        AnswerKind::Autoinstall => {
            let mut lines = a.body.lines().skip_while(|l| *l != "  late-commands:");
            lines.next();
            let item = lines.next().unwrap().strip_prefix("    - ").unwrap();
            serde_json::from_str(item).unwrap()
        }
    }
}

/// Runs a report command with stand-ins for the tools it uses; returns the arguments the
/// HTTP client got (empty if it was not called) and the shell's stderr.
fn run_report(cmd: &str, findmnt: &str, chroot: &str) -> (Vec<String>, String, bool) {
    let (args, err, pwned, ok) = run_report_status(cmd, findmnt, chroot);
    assert!(ok, "{err}");
    (args, err, pwned)
}

/// [`run_report`], and whether the command succeeded.
fn run_report_status(cmd: &str, findmnt: &str, chroot: &str) -> (Vec<String>, String, bool, bool) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let posted = dir.path().join("posted");
    let pwned = dir.path().join("pwned");
    let script = |name: &str, text: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{text}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let record = format!("for a in \"$@\"; do printf '%s\\n' \"$a\"; done > {posted:?}");
    script("curl", &record);
    script("wget", &record);
    let print = |s: &str| {
        if s.is_empty() {
            "true".to_string()
        } else {
            format!("printf '%s\\n' {}", sh_quote(s))
        }
    };
    script("findmnt", &print(findmnt));
    script("chroot", &print(chroot));
    script("reboot", &format!("touch {pwned:?}"));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let o = Command::new("sh")
        .args(["-c", cmd])
        .env("PATH", path)
        .output()
        .unwrap();
    let args = std::fs::read_to_string(&posted)
        .map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default();
    (args, outcome(&o), pwned.exists(), o.status.success())
}

/// The debconf database of its own that `debconf-set-selections --checkonly` needs to run
/// beside other checks; the check's result.
fn debconf_check(p: &Path) -> Result<(), String> {
    let db = tempfile::tempdir().unwrap();
    let d = db.path().display();
    let conf = db.path().join("debconf.conf");
    std::fs::write(
        &conf,
        format!(
            "Config: configdb\nTemplates: templatedb\n\n\
             Name: configdb\nDriver: File\nFilename: {d}/config.dat\n\n\
             Name: templatedb\nDriver: File\nFilename: {d}/templates.dat\n"
        ),
    )
    .unwrap();
    let o = run_env(
        "debconf-set-selections",
        &["--checkonly"],
        p,
        &[("DEBCONF_SYSTEMRC", &conf)],
        "apt-get install debconf",
    );
    if o.status.success() && o.stderr.is_empty() && o.stdout.is_empty() {
        Ok(())
    } else {
        Err(outcome(&o))
    }
}

/// A store whose `site` profile has these preseed settings, the named machine on it.
fn with_preseed(opts: crate::PreseedOptions) -> Given {
    let mut g = base();
    let mut p = install_profile("site", AnswerKind::Preseed, true);
    p.preseed = Some(Box::new(opts));
    p.validate().unwrap();
    g.ev(Event::ProfileDefined { profile: p });
    g.policy(NAMED, "install:site");
    g
}

fn render_site(g: &Given) -> Answer {
    let cfg = RenderConfig {
        serial_console: Some("ttyS0,115200".into()),
        ..cfg()
    };
    let ctx = AnswerContext {
        password_crypted: Some(CRYPT),
        log_host: Some("10.0.0.1"),
        log_port: 5514,
    };
    answer_for(&g.state, &mac(NAMED), &cfg, &ctx).unwrap()
}

#[test]
fn preseed_settings_reach_their_questions_and_pass_debconf() {
    let g = with_preseed(crate::PreseedOptions {
        mirror: Some("https://mirror.example.org:8443/debian-local".into()),
        suite: Some("bookworm".into()),
        mirror_key: Some("http://mirror.example.org/site.gpg".into()),
        proxy: Some("http://proxy.example.org:3128/".into()),
        locale: Some("de_DE.UTF-8".into()),
        keyboard: Some("de".into()),
        timezone: Some("Europe/Berlin".into()),
        disk: Some("/dev/nvme0n1".into()),
        recipe: Some("home".into()),
        tasks: Some(vec![]),
        packages: vec!["htop".into(), "rsync".into()],
        late_command: Some("in-target touch /etc/site".into()),
        set: vec![
            "d-i clock-setup/ntp boolean false".into(),
            "d-i base-installer/initramfs-tools/driver-policy select dep".into(),
        ],
        template: None,
    });
    let a = render_site(&g);
    let q = preseed_questions(&a.body);
    let get = |k: &str| q.get(k).map(|(_, v)| v.as_str());
    assert_eq!(get("mirror/protocol"), Some("https"));
    assert_eq!(
        get("mirror/https/hostname"),
        Some("mirror.example.org:8443")
    );
    assert_eq!(get("mirror/https/directory"), Some("/debian-local"));
    assert_eq!(
        get("mirror/https/proxy"),
        Some("http://proxy.example.org:3128/")
    );
    assert_eq!(get("mirror/http/hostname"), None);
    assert_eq!(get("mirror/suite"), Some("bookworm"));
    assert_eq!(get("mirror/udeb/suite"), Some("bookworm"));
    assert_eq!(get("debian-installer/locale"), Some("de_DE.UTF-8"));
    assert_eq!(get("keyboard-configuration/xkb-keymap"), Some("de"));
    assert_eq!(get("time/zone"), Some("Europe/Berlin"));
    assert_eq!(get("partman-auto/disk"), Some("/dev/nvme0n1"));
    assert_eq!(get("grub-installer/bootdev"), Some("/dev/nvme0n1"));
    assert_eq!(get("partman-auto/choose_recipe"), Some("home"));
    assert_eq!(get("pkgsel/run_tasksel"), Some("false"));
    assert_eq!(get("tasksel/first"), Some(""));
    assert_eq!(get("pkgsel/include"), Some("htop rsync"));
    assert_eq!(
        get("debian-installer/add-kernel-opts"),
        Some("console=tty0 console=ttyS0,115200")
    );
    // A --set line answering nmt's question takes its place: one answer, the admin's.
    assert_eq!(get("clock-setup/ntp"), Some("false"));
    assert_eq!(
        get("base-installer/initramfs-tools/driver-policy"),
        Some("dep")
    );
    let early = get("preseed/early_command").unwrap();
    assert!(
        early.contains("'http://mirror.example.org/site.gpg'"),
        "{early}"
    );
    assert!(early.contains("/usr/lib/base-installer.d/"), "{early}");
    // The disk is given, so partman's early command only sets the console's password.
    let partman = get("partman/early_command").unwrap();
    assert!(!partman.contains("list-devices"), "{partman}");
    assert!(partman.contains(CRYPT), "{partman}");
    assert!(
        a.body.contains("--recipe home"),
        "the settings are named in a comment"
    );

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("site.cfg");
    std::fs::write(&f, &a.body).unwrap();
    debconf_check(&f).unwrap_or_else(|e| panic!("{e}\n{}", a.body));

    // The admin's late command runs first; the report follows only when it succeeded.
    let cmd = report_command(&a);
    assert!(
        cmd.starts_with("if ( in-target touch /etc/site ); then"),
        "{cmd}"
    );
    let ok = cmd.replace("in-target touch /etc/site", "true");
    let (args, _, _, status) = run_report_status(&ok, "/dev/nvme0n1p2", "");
    assert!(status);
    assert!(
        args.iter().any(|a| a == "rootdev=/dev/nvme0n1p2"),
        "{args:?}"
    );
    let failing = cmd.replace("in-target touch /etc/site", "false");
    let (args, err, _, status) = run_report_status(&failing, "/dev/nvme0n1p2", "");
    assert!(!status, "d-i must see the failure");
    assert!(
        args.is_empty(),
        "no report after a failed late command: {args:?}"
    );
    assert!(err.contains("late command failed"), "{err}");
}

#[test]
fn a_preseed_template_gets_nmts_report_and_values_and_nothing_else() {
    let template = "# the site's own preseed\n\
        d-i debian-installer/locale string fr_FR.UTF-8\n\
        d-i netcfg/get_hostname string {{hostname}}\n\
        d-i netcfg/get_domain string {{domain}}\n\
        d-i passwd/user-password-crypted password {{password_crypted}}\n\
        d-i partman-auto/expert_recipe string root :: 1000 50 -1 ext4 $primary{ } \
        $bootable{ } method{ format } format{ } use_filesystem{ } filesystem{ ext4 } \
        mountpoint{ / } .\n\
        d-i preseed/late_command string in-target true; {{ late_command }}\n";
    let g = with_preseed(crate::PreseedOptions {
        template: Some(template.into()),
        ..Default::default()
    });
    let a = render_site(&g);
    let body = &a.body;
    assert!(body.starts_with("# generated by nmt"), "{body}");
    assert!(!body.contains("{{"), "placeholders left: {body}");
    assert!(
        body.contains("d-i netcfg/get_hostname string node01\n"),
        "{body}"
    );
    assert!(body.contains(&format!(
        "d-i passwd/user-password-crypted password {CRYPT}\n"
    )));
    assert!(
        body.contains("$primary{ } $bootable{ }"),
        "the recipe's braces stay: {body}"
    );
    // Nothing of nmt's own preseed: only the template's lines and nmt's comments.
    let lines: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 6, "{body}");
    assert!(!body.contains("mirror/http/hostname"));
    let late = report_command(&a);
    assert!(late.starts_with("in-target true; "), "{late}");
    assert!(late.contains(&format!("'{}'", report_url(NAMED))), "{late}");
    let (args, _, _) = run_report(&late.replace("in-target true; ", ""), "/dev/sda2", "");
    assert!(args.iter().any(|a| a == "rootdev=/dev/sda2"), "{args:?}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tpl.cfg");
    std::fs::write(&f, body).unwrap();
    debconf_check(&f).unwrap_or_else(|e| panic!("{e}\n{body}"));
}

#[test]
fn report_commands_post_the_root_device_and_never_run_the_url() {
    // A base URL no installer should see, but that must still stay one quoted word.
    let hostile = "http://10.0.0.1:8017/x'$(reboot)`reboot`\";reboot;'";
    let cfg = RenderConfig {
        http_url: hostile.into(),
        ..RenderConfig::default()
    };
    let ctx = AnswerContext {
        password_crypted: Some(CRYPT),
        log_host: None,
        log_port: 514,
    };
    for (profile, kind, _) in PROFILES {
        let mut g = base();
        g.policy(NAMED, &format!("install:{profile}"));
        let a = answer_for(&g.state, &mac(NAMED), &cfg, &ctx).unwrap();
        assert_eq!(a.kind, *kind);
        let cmd = report_command(&a);
        let m = mac(NAMED);
        let url = format!(
            "{hostile}/v1/report/{}/{}",
            m.dashed(),
            report_token(SITE_KEY, &m, 0)
        );

        // findmnt finds a btrfs subvolume: the device without the subvolume.
        let (args, _, pwned) = run_report(&cmd, "/dev/vda3[/root]", "");
        assert!(!pwned, "{profile}: the URL ran a command");
        assert_eq!(args.last(), Some(&url), "{profile}: {args:?}");
        assert!(
            args.iter().any(|a| a == "rootdev=/dev/vda3"),
            "{profile}: {args:?}"
        );

        // Nothing mounted there: no report, a message, and the install goes on.
        let (args, err, _) = run_report(&cmd, "", "");
        assert!(args.is_empty(), "{profile}: {args:?}");
        assert!(err.contains("no root device"), "{profile}: {err}");

        // d-i: no findmnt in the installer, so findmnt inside the target.
        if *kind == AnswerKind::Preseed {
            let (args, _, _) = run_report(&cmd, "", "/dev/sda1");
            assert!(args.iter().any(|a| a == "rootdev=/dev/sda1"), "{args:?}");
        }
    }
}

#[test]
fn none_unless_an_install_policy_with_an_answer() {
    let mut g = base();
    g.ev(Event::ProfileDefined {
        profile: Profile {
            name: "memtest".into(),
            kind: ProfileKind::Custom,
            kernel: "memtest.bin".into(),
            initrd: vec![],
            args: String::new(),
            answer: None,
            network_console: false,
            preseed: None,
        },
    });
    g.machine("52:54:00:00:00:03", None)
        .machine("52:54:00:00:00:04", None)
        .machine("52:54:00:00:00:05", None)
        .policy(NAMED, "localboot")
        .policy("52:54:00:00:00:03", "install:nothere")
        .policy("52:54:00:00:00:04", "custom:memtest")
        .policy("52:54:00:00:00:05", "save-image:img");
    let ctx = AnswerContext::default();
    let cfg = cfg();
    for m in [
        NAMED,
        UNNAMED, // follows group unknown: local boot
        "52:54:00:00:00:03",
        "52:54:00:00:00:04",
        "52:54:00:00:00:05",
        "52:54:00:00:00:99", // unknown
    ] {
        assert_eq!(answer_for(&g.state, &mac(m), &cfg, &ctx), None, "{m}");
    }
    // From the group's policy too.
    g.ev(Event::GroupPolicySet {
        group: crate::UNKNOWN.into(),
        policy: "install:ks".parse().unwrap(),
    });
    let a = answer_for(&g.state, &mac(UNNAMED), &cfg, &ctx).unwrap();
    assert_eq!(a.kind, AnswerKind::Kickstart);
}

#[test]
fn bad_values_are_left_out_and_said_so() {
    let mut g = base();
    // A corrupt name (validation bypassed) is not used as a host name.
    g.ev(Event::MachineNamed {
        mac: mac(NAMED),
        name: Some("evil\nd-i passwd/root-login boolean true".into()),
    });
    let cfg = cfg();
    let ctx = AnswerContext {
        password_crypted: Some("secret\nd-i x string y"),
        log_host: Some("10.0.0.1; reboot"),
        log_port: 514,
    };
    for (profile, _, _) in PROFILES {
        g.policy(NAMED, &format!("install:{profile}"));
        let a = answer_for(&g.state, &mac(NAMED), &cfg, &ctx).unwrap();
        let b = &a.body;
        assert!(b.contains("nmt-525400000001"), "{profile}:\n{b}");
        assert!(!b.contains("secret"), "{profile}");
        assert!(!b.contains("; reboot"), "{profile}");
        assert!(!b.lines().any(|l| l.starts_with("d-i x")), "{profile}");
        assert!(
            !b.lines()
                .any(|l| l.starts_with("d-i passwd/root-login boolean true")),
            "{profile}"
        );
        assert!(b.contains("not a crypt(3) string"), "{profile}");
        assert!(b.contains("log host is not a host name"), "{profile}");
    }
}

/// A one-shot install is spent when the machine fetches its boot entry; the installer asks
/// for its answer file after that, and must still get it (Debian's real installer found
/// this: it got a 404 and went on without its preseed).
#[test]
fn a_one_shot_install_gets_its_answer_after_its_entry_was_fetched() {
    let mut g = base();
    g.ev(Event::MachinePolicySet {
        mac: mac(NAMED),
        policy: Some("install:deb".parse().unwrap()),
        once: true,
    });
    let ctx = AnswerContext::default();
    assert!(answer_for(&g.state, &mac(NAMED), &cfg(), &ctx).is_some());
    g.ev(Event::BootEntryUsed {
        mac: mac(NAMED),
        file: "/srv/tftp/pxelinux.cfg/01-52-54-00-00-00-01".into(),
        ip: None,
    });
    let m = g.state.machine(&mac(NAMED)).unwrap();
    assert!(m.booting.is_some(), "the one-shot is being booted: {m:?}");
    let a = answer_for(&g.state, &mac(NAMED), &cfg(), &ctx)
        .expect("the installer of a one-shot gets its answer file");
    assert!(a.body.contains("profile deb"), "{}", a.body);
    // The installer's own DHCP ends that boot; it asks for its answer file after that.
    g.ev(Event::DhcpSeen {
        mac: mac(NAMED),
        kind: "discover".into(),
        ip: None,
        hostname: None,
        arch: None,
        vendor_class: None,
        server: "dnsmasq".into(),
        via: None,
        note: None,
    });
    let m = g.state.machine(&mac(NAMED)).unwrap();
    assert!(m.booting.is_none(), "{m:?}");
    let a = answer_for(&g.state, &mac(NAMED), &cfg(), &ctx)
        .expect("the installer's own DHCP does not take its answer file away");
    assert!(a.body.contains("profile deb"), "{}", a.body);
    // Once the install reported, no answer file.
    g.ev(Event::InstallReported {
        mac: mac(NAMED),
        device: "/dev/sda1".into(),
        via: Default::default(),
    });
    assert_eq!(answer_for(&g.state, &mac(NAMED), &cfg(), &ctx), None);
}

#[test]
fn stored_hashes_get_the_salt_crypt3_writes() {
    // As nmt's store wrote them before: a 22-character salt, of which SHA-crypt used 16.
    let old = "$6$rounds=5000$3R3Rat0PK3nElpYAqEbOq.$jX0sjf9r5ZEXN1STcMMjIb0TQ6SA4vHSfNATriGy5QShmfnGJiJYjeMofY.37lwqAx4Yi0ZYkyIpFiJisPeh81";
    assert_eq!(
        crypt3_salt(old),
        "$6$rounds=5000$3R3Rat0PK3nElpYA$jX0sjf9r5ZEXN1STcMMjIb0TQ6SA4vHSfNATriGy5QShmfnGJiJYjeMofY.37lwqAx4Yi0ZYkyIpFiJisPeh81"
    );
    assert_eq!(crypt3_salt(CRYPT), CRYPT);
    assert_eq!(crypt3_salt("$y$j9T$abc$def"), "$y$j9T$abc$def");
}

#[test]
fn crypt_and_host_checks() {
    assert!(crypt_ok(CRYPT));
    assert!(crypt_ok("$6$rounds=5000$salt$hash"));
    assert!(crypt_ok("$y$j9T$salt$hash"));
    for bad in [
        "",
        "secret",
        "$6",
        "$6 $x$y",
        "$6$x$y'",
        "$6$x$y\n",
        "$6$x$y;reboot",
    ] {
        assert!(!crypt_ok(bad), "{bad:?}");
    }
    for ok in ["10.0.0.1", "logs.example.org", "fd00::1"] {
        assert!(host_ok(ok), "{ok}");
    }
    for bad in ["", "-x", "a b", "a;b", "a'b", "a\nb"] {
        assert!(!host_ok(bad), "{bad:?}");
    }
    assert_eq!(sh_quote("a'b"), r"'a'\''b'");
}

#[test]
fn ipv6_log_host_is_bracketed_for_rsyslog() {
    let mut g = base();
    g.policy(NAMED, "install:ubu");
    let ctx = AnswerContext {
        password_crypted: Some(CRYPT),
        log_host: Some("fd00::1"),
        log_port: 514,
    };
    let a = answer_for(&g.state, &mac(NAMED), &cfg(), &ctx).unwrap();
    assert!(a.body.contains(r#"dest: "@[fd00::1]:514""#), "{}", a.body);
}

/// The named machine's answer files, every variant with a password and a log host, are
/// there to look at: `cargo test -p nmt-projections answer::tests::dump -- --nocapture`.
#[test]
fn dump() {
    let mut shown = 0;
    for c in cases() {
        if c.mac == NAMED && c.password && c.log && !c.label.contains(" name ") {
            println!("===== {}\n{}", c.label, c.answer.body);
            shown += 1;
        }
    }
    assert!(shown >= 3, "only {shown} answer files to look at");
}
