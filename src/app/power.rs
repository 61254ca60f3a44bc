//! Power control in the application layer: BMC settings with their passwords (kept in the
//! secrets file, never in the log), and power actions on a noderange: each machine's BMC and
//! password are looked up, the actions run in parallel (`crate::power`), and each machine's
//! result is recorded as a `PowerActed` event with the caller as its actor.
//!
//! nmtd runs the actions outside the engine's lock ([`targets`], then `crate::power::run`,
//! then [`record`]); the command line without nmtd does all three in one go ([`perform`]).

use anyhow::{Context, Result, anyhow, bail};
use nmt_projections::{
    Bmc, BmcFor, BmcProtocol, Command, Mac, PowerOp, PowerResult, Source, State, describe_bmc,
};
use serde::{Deserialize, Serialize};

use super::perform::{changed, describe_all};
use super::reply::Reply;
use crate::power::{Limits, Target};
use crate::secrets::{Secret, Secrets};
use crate::{Config, Engine};

/// One machine's power result, as `nmt power` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerView {
    /// The machine.
    pub mac: Mac,
    /// Its name.
    pub name: Option<String>,
    /// What was asked.
    pub op: PowerOp,
    /// It worked.
    pub ok: bool,
    /// The power state read or reached.
    pub state: Option<String>,
    /// What happened.
    pub detail: String,
}

/// A machine's BMC, as `nmt bmc show` shows it (never its password: only whether one is
/// kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmcView {
    /// The machine.
    pub mac: Mac,
    /// Its name.
    pub name: Option<String>,
    /// Whose setting it uses (`52:54:…` or `@lab`); none: it has no BMC.
    pub from: Option<String>,
    /// The setting, for this machine (its placeholders filled in), or why it cannot be.
    pub bmc: Option<Bmc>,
    /// In words.
    pub described: String,
    /// A password is kept for it.
    pub password: bool,
    /// Its last power action: what, when, by whom, and what came of it.
    pub last: Option<nmt_projections::LastPower>,
}

/// The limits power actions run under.
pub fn limits(config: &Config) -> Limits {
    Limits {
        parallel: config.power.parallel,
        timeout: std::time::Duration::from_secs(config.power.timeout.max(1)),
        ipmi_cipher_suite: config.power.ipmi_cipher_suite,
    }
}

/// What to act on, for each machine: its BMC and the password kept for it (or why not).
pub fn targets(state: &State, config: &Config, macs: &[Mac]) -> Result<Vec<Target>> {
    let secrets = Secrets::new(&config.paths.secrets);
    let mut out = Vec::new();
    for mac in macs {
        let name = state
            .machine(mac)
            .and_then(|m| m.name.clone())
            .unwrap_or_else(|| mac.to_string());
        let (bmc, secret) = match state.machine_bmc(mac) {
            None => (
                Err(format!(
                    "{name} has no BMC; `nmt bmc set {name} --ipmi HOST --user U \
                     --password-file F` (or set its group's)"
                )),
                None,
            ),
            Some(Err(why)) => (Err(why), None),
            Some(Ok(mb)) => {
                let secret = if mb.secret {
                    secrets.bmc(&mb.from.secret_key())?
                } else {
                    None
                };
                (Ok(mb.bmc), secret)
            }
        };
        out.push(Target {
            mac: *mac,
            bmc,
            secret,
        });
    }
    Ok(out)
}

/// Record what each machine's power action did (one commit), and say it.
pub fn record(
    engine: &mut Engine,
    op: PowerOp,
    results: Vec<(Mac, PowerResult)>,
    actor: &str,
    source: Source,
) -> Result<Vec<PowerView>> {
    let cmds = results
        .iter()
        .filter(|(mac, _)| engine.state().machine(mac).is_some())
        .map(|(mac, result)| Command::RecordPower {
            mac: *mac,
            op,
            result: result.clone(),
        })
        .collect();
    engine.execute_all(cmds, actor, source, jiff::Timestamp::now())?;
    Ok(views(engine.state(), op, results))
}

/// The results as shown.
pub fn views(state: &State, op: PowerOp, results: Vec<(Mac, PowerResult)>) -> Vec<PowerView> {
    results
        .into_iter()
        .map(|(mac, r)| PowerView {
            mac,
            name: state.machine(&mac).and_then(|m| m.name.clone()),
            op,
            ok: r.ok,
            state: r.state,
            detail: r.detail,
        })
        .collect()
}

/// `nmt power OP RANGE` in this process: act on every machine, record, answer.
pub fn perform(
    engine: &mut Engine,
    op: PowerOp,
    range: &str,
    actor: &str,
    source: Source,
) -> Result<Vec<PowerView>> {
    let macs = engine.resolve(range)?;
    if macs.is_empty() {
        bail!("{range} names no machine");
    }
    let targets = targets(engine.state(), engine.config(), &macs)?;
    let limits = limits(engine.config());
    let results = crate::power::run(op, targets, &limits, &|_, _| {});
    record(engine, op, results, actor, source)
}

/// `nmt power OP RANGE --dry-run`: what would be done to which machine, through which BMC.
pub fn plan(state: &State, config: &Config, op: PowerOp, range: &str) -> Result<String> {
    let macs = crate::resolve(state, range)?;
    let targets = targets(state, config, &macs)?;
    let mut out = format!(
        "would power {op} {} machine(s){}; nothing was done:",
        targets.len(),
        if op.boots() {
            ", each one's next boot set to the network first"
        } else {
            ""
        }
    );
    for t in &targets {
        let name = state
            .machine(&t.mac)
            .and_then(|m| m.name.clone())
            .unwrap_or_else(|| t.mac.to_string());
        let how = match &t.bmc {
            Ok(b) => describe_bmc(b),
            Err(why) => format!("cannot: {why}"),
        };
        out.push_str(&format!("\n  {name}: {how}"));
    }
    Ok(out)
}

/// `nmt bmc set RANGE …`: one group's setting (`@group`), or each machine's own; the
/// password, when given, is kept in the secrets file first, then the setting is recorded.
pub fn set(
    engine: &mut Engine,
    range: &str,
    bmc: Bmc,
    password: Option<Secret>,
    actor: &str,
    source: Source,
) -> Result<Reply> {
    let targets = bmc_targets(engine, range)?;
    if password.is_none()
        && !matches!(bmc.protocol, BmcProtocol::Wol { .. })
        && targets.iter().any(|t| {
            !engine
                .state()
                .power()
                .bmcs
                .get(&t.secret_key())
                .is_some_and(|e| e.secret)
        })
    {
        bail!(
            "an IPMI or Redfish BMC needs its password: --password-file FILE (a file only you \
             can read, holding the password on its first line)"
        );
    }
    let cmds: Vec<Command> = targets
        .iter()
        .map(|t| Command::SetBmc {
            target: t.clone(),
            bmc: bmc.clone(),
            secret: password.is_some(),
        })
        .collect();
    // Checked before the secrets file is touched.
    engine.plan(cmds.clone(), actor, &source)?;
    let secrets = Secrets::new(&engine.config().paths.secrets);
    let mut before = Vec::new();
    if let Some(p) = &password {
        for t in &targets {
            before.push((t.secret_key(), secrets.bmc(&t.secret_key())?));
            secrets.set_bmc(&t.secret_key(), Some(p.clone()))?;
        }
    }
    if matches!(bmc.protocol, BmcProtocol::Wol { .. }) {
        // Wake-on-LAN has no password: a kept one goes.
        for t in &targets {
            secrets.set_bmc(&t.secret_key(), None)?;
        }
    }
    match engine.execute_all(cmds, actor, source, jiff::Timestamp::now()) {
        Ok(done) => {
            let summary = describe_all(&done);
            Ok(changed(done, summary))
        }
        Err(e) => {
            // Nothing recorded: the passwords go back to what they were.
            for (key, old) in before {
                let _ = secrets.set_bmc(&key, old);
            }
            Err(e)
        }
    }
}

/// `nmt bmc rm RANGE`: the settings (and their passwords) go.
pub fn remove(engine: &mut Engine, range: &str, actor: &str, source: Source) -> Result<Reply> {
    let targets = bmc_targets(engine, range)?;
    let cmds: Vec<Command> = targets
        .iter()
        .map(|t| Command::RemoveBmc { target: t.clone() })
        .collect();
    let done = engine.execute_all(cmds, actor, source, jiff::Timestamp::now())?;
    let secrets = Secrets::new(&engine.config().paths.secrets);
    for t in &targets {
        secrets.set_bmc(&t.secret_key(), None)?;
    }
    let summary = describe_all(&done);
    Ok(changed(done, summary))
}

/// Whose settings a range means: exactly one `@group` is that group's; anything else is each
/// machine it names.
fn bmc_targets(engine: &Engine, range: &str) -> Result<Vec<BmcFor>> {
    let parsed = nmt_parsers::parse_noderange(range)?;
    if let Some(groups) = parsed.as_groups() {
        if groups.len() != 1 {
            bail!("give one @group at a time (its members without a BMC of their own use it)");
        }
        return Ok(vec![BmcFor::Group(groups[0].to_string())]);
    }
    let macs = engine.resolve(range)?;
    if macs.is_empty() {
        bail!("{range} names no machine");
    }
    Ok(macs.into_iter().map(BmcFor::Machine).collect())
}

/// `nmt bmc show RANGE`.
pub fn show(state: &State, range: &str) -> Result<Vec<BmcView>> {
    let macs = crate::resolve(state, range)?;
    Ok(macs
        .iter()
        .map(|mac| {
            let m = state.machine(mac);
            let (from, bmc, described, password) = match state.machine_bmc(mac) {
                None => (None, None, "no BMC".to_string(), false),
                Some(Err(why)) => (None, None, why, false),
                Some(Ok(mb)) => (
                    Some(mb.from.to_string()),
                    Some(mb.bmc.clone()),
                    describe_bmc(&mb.bmc),
                    mb.secret,
                ),
            };
            BmcView {
                mac: *mac,
                name: m.and_then(|m| m.name.clone()),
                from,
                bmc,
                described,
                password,
                last: m.and_then(|m| m.power.clone()),
            }
        })
        .collect())
}

/// Read a password file as the CLI does: its first line, which must not be empty; refused
/// when others may read the file.
pub fn read_password_file(path: &std::path::Path) -> Result<Secret> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("while reading the password file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} can be read by others (mode {:o}); `chmod 600 {}` first: it holds a password",
            path.display(),
            meta.permissions().mode() & 0o777,
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the password file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(anyhow!(
            "{} is empty; put the BMC password on its first line",
            path.display()
        ));
    }
    Ok(Secret::new(line.to_string()))
}
