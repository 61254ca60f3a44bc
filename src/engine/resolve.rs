//! Noderanges to machines: MACs, names, `name[1-10]`, `@group`, comma lists.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use nmt_parsers::{RangeItem, parse_noderange};
use nmt_projections::{Mac, State};

use super::Engine;

impl Engine {
    /// Resolve a noderange (MACs, names, `name[1-10]`, `@group`, comma lists) to MACs, in
    /// the order written, without duplicates.
    pub fn resolve(&self, range: &str) -> Result<Vec<Mac>> {
        resolve(&self.state, range)
    }
}

/// Resolve a noderange against a state (see [`Engine::resolve`]).
pub fn resolve(state: &State, range: &str) -> Result<Vec<Mac>> {
    let parsed = parse_noderange(range)?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |m: Mac, out: &mut Vec<Mac>| {
        if seen.insert(m) {
            out.push(m);
        }
    };
    let word = |w: &str| -> Result<Mac> {
        if let Some(mac) = Mac::parse(w) {
            if let Some(why) = mac.not_a_machine() {
                bail!("{why}");
            }
            if state.machine(&mac).is_some() {
                return Ok(mac);
            }
            bail!(
                "no machine {mac} is known; add it with `nmt machine add {mac}` (list them with `nmt machines`)"
            );
        }
        let lower = w.to_ascii_lowercase();
        if let Some(m) = state.machine_by_name(&lower) {
            return Ok(m.mac);
        }
        bail!("no machine named {w}; {}", name_hint(state))
    };
    for item in &parsed.items {
        match item {
            RangeItem::Literal(w) => push(word(w)?, &mut out),
            RangeItem::Expanded { words, .. } => {
                for w in words {
                    push(word(w)?, &mut out);
                }
            }
            RangeItem::Group(g) => {
                let grp = state.group(g).ok_or_else(|| {
                    anyhow::anyhow!(
                        "no group named {g:?}; groups are: {} (list them with `nmt group list`)",
                        state
                            .groups()
                            .map(|g| g.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                for m in &grp.members {
                    push(*m, &mut out);
                }
            }
        }
    }
    if out.is_empty() {
        bail!("{range:?} matches no machines");
    }
    Ok(out)
}

/// "known names look like node001..node300 (`nmt machines`)".
fn name_hint(state: &State) -> String {
    let mut names: Vec<&str> = state.machines().filter_map(|m| m.name.as_deref()).collect();
    if names.is_empty() {
        return "no machine has a name yet (give one with `nmt name MAC NAME`)".into();
    }
    names.sort_unstable();
    if names.len() == 1 {
        format!("the only named machine is {} (`nmt machines`)", names[0])
    } else {
        format!(
            "known names look like {}..{} (`nmt machines`)",
            names[0],
            names[names.len() - 1]
        )
    }
}
