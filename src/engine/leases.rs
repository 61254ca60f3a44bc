//! `nmt replay leases`: what a DHCP server's leases file tells about a pool that booted
//! before nmt was installed, appended as events like a replayed log's. Replaying a file again
//! adds nothing: a lease no newer than what nmt last saw of its machine is skipped.

use std::path::PathBuf;

use anyhow::{Context, Result};
use jiff::Timestamp;
use nmt_projections::{Affected, Envelope, Mac, Observation, Source, observe};

use super::{Batch, Engine, Plan};

/// What a leases replay did (or would do).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct LeasesSummary {
    /// Leases read (the last one of each address, for ISC dhcpd).
    pub leases: u64,
    /// Events appended.
    pub events: u64,
    /// Leases no newer than what nmt last saw of their machine.
    pub already: u64,
    /// Leases of an address no network card has (multicast, broadcast, zero).
    pub not_machines: u64,
}

impl Engine {
    /// What replaying the leases files at `paths` would append, against a copy of the state.
    pub fn leases_plan(&self, paths: &[PathBuf]) -> Result<(Plan, LeasesSummary)> {
        let mut plan = Plan {
            events: Vec::new(),
            after: self.state.clone(),
            affected: Affected::default(),
        };
        let mut summary = LeasesSummary::default();
        let recorded_at = Timestamp::now();
        for path in paths {
            let bytes =
                std::fs::read(path).with_context(|| format!("while reading {}", path.display()))?;
            let (server, mut leases) = nmt_parsers::parse_leases(&bytes)
                .with_context(|| format!("{} was not read", path.display()))?;
            // A lease is no newer than the file: dnsmasq's file does not say when each started.
            let written = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| Timestamp::try_from(t).ok())
                .unwrap_or(recorded_at);
            let at = |starts: Option<i64>| {
                starts
                    .and_then(|s| Timestamp::from_second(s).ok())
                    .map_or(written, |t| t.min(written))
            };
            leases.sort_by_key(|l| at(l.starts));
            let identity = nmt_replay::file_identity(&bytes);
            for l in leases {
                summary.leases += 1;
                let mac = Mac::new(l.mac);
                if mac.not_a_machine().is_some() {
                    summary.not_machines += 1;
                    continue;
                }
                let observed_at = at(l.starts);
                let after = &mut plan.after;
                if after
                    .machine(&mac)
                    .and_then(|m| m.last_seen)
                    .is_some_and(|seen| seen >= observed_at)
                {
                    summary.already += 1;
                    continue;
                }
                let Some(event) = observe(
                    after,
                    Observation::Dhcp {
                        mac,
                        kind: "lease".into(),
                        ip: Some(l.ip),
                        hostname: l.hostname.map(|h| String::from_utf8_lossy(&h).into_owned()),
                        arch: None,
                        vendor_class: None,
                        server: server.into(),
                        via: None,
                        note: Some(format!("from the leases file {}", path.display())),
                    },
                ) else {
                    continue;
                };
                plan.affected.add(after, &event);
                let env = Envelope {
                    seq: after.last_seq() + 1,
                    v: nmt_projections::SCHEMA_VERSION,
                    recorded_at,
                    observed_at,
                    actor: format!("{server}@leases"),
                    source: Some(Source::LogFile {
                        identity,
                        offset: l.offset,
                    }),
                    event,
                };
                after.apply(&env);
                plan.events.push(env);
                summary.events += 1;
            }
        }
        Ok((plan, summary))
    }

    /// Replay the leases files at `paths`: their events in one transaction, then the files.
    pub fn replay_leases(&mut self, paths: &[PathBuf]) -> Result<LeasesSummary> {
        let (plan, summary) = self.leases_plan(paths)?;
        let before = self.state.last_seq();
        let mut batch = Batch::new();
        for env in plan.events {
            self.push(
                &mut batch,
                env.event,
                &env.actor,
                env.observed_at,
                env.source,
            );
        }
        let (_, affected) = self.commit(batch, &[])?;
        self.render(&affected, before).with_context(|| {
            format!(
                "the leases are recorded ({} events), but the generated files are not up to \
                 date; fix the cause and run `nmt render`",
                summary.events
            )
        })?;
        Ok(summary)
    }
}
