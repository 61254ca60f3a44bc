//! What the web UI says when a change is refused. The domain's refusals tell a command-line
//! user what to type (`--to`, `--force`, `nmt group add …`); here each kind that does is
//! said in the page's own words (its buttons, fields and pages) instead. A refusal whose
//! words hold for every front end is shown as the CLI shows it.

use nmt_projections::{ImportProblem, Refusal, RowProblem};

use crate::app::Failure;

/// A failure as the web UI shows it (what it quotes of the input cut short).
pub fn failure(f: &Failure) -> String {
    crate::daemon::clip_words(&match f {
        Failure::Refused {
            refusal: Some(r), ..
        } => format!("nmt: refused: {}", refusal(r)),
        other => other.message(),
    })
}

fn members(count: usize) -> String {
    if count == 1 {
        "1 member".to_string()
    } else {
        format!("{count} members")
    }
}

/// A refusal in the web UI's words.
pub fn refusal(r: &Refusal) -> String {
    match r {
        Refusal::GroupNotEmpty { group, count } => format!(
            "group {group:?} still has {}; choose where they go under \"Move members to\" \
             beside its Remove button (localboot boots their disks), then remove it",
            members(*count)
        ),
        Refusal::WouldErase {
            group,
            count,
            policy,
        } => format!(
            "moving the {} of {group:?} to 'unknown' would make them {policy} at their next \
             boot ('unknown' has that policy); choose another group for them under \"Move \
             members to\" (localboot boots their disks)",
            members(*count)
        ),
        Refusal::MoveIntoItself(group) => format!(
            "the members of {group:?} cannot move into the group being removed; choose another \
             group for them under \"Move members to\""
        ),
        Refusal::NoSuchGroup { group, known } => {
            format!("no group named {group:?}; groups are: {known} (create it on the Groups page)")
        }
        Refusal::NoSuchMachine(mac) => {
            format!("no machine {mac} is known; add it under \"Add machines\" on the Machines page")
        }
        Refusal::AlreadyRegistered { mac, as_name } => format!(
            "{mac} is already registered{as_name}; rename it, move it or remove it on its own \
             page first"
        ),
        Refusal::GroupExists(group) => format!(
            "a group named {group:?} already exists; set its policy in its row of the Groups table"
        ),
        Refusal::NotInstalled { machine, .. } => format!(
            "{machine} has no install report and no root device, so it cannot join \
             'localboot'; set its root device on its page, or move it to a named group with \
             policy localboot"
        ),
        Refusal::NewIntoLocalboot => "a new machine cannot join 'localboot' before it is \
             installed; add it to a named group with policy localboot"
            .to_string(),
        Refusal::OnceWithoutPolicy => {
            "\"next boot only\" needs a policy to use for that boot, not inherit".to_string()
        }
        Refusal::OnceNoMembers(group) => format!(
            "group {group:?} has no members; \"next boot only\" sets each member's next boot, \
             so there is nothing to do"
        ),
        Refusal::NoSuchProfile {
            policy,
            kind,
            name,
            known,
        } => format!(
            "{policy} needs a {kind} profile named {name:?}, and there is none; {known} \
             (define one on the Profiles page: New profile, kind {kind})"
        ),
        Refusal::ProfileExists(name) => {
            format!("a profile named {name:?} already exists; edit it on the Profiles page")
        }
        Refusal::NoSuchSchedule { name, known } if known.is_empty() => {
            format!("no schedule named {name:?}: none is defined (the Schedules page lists them)")
        }
        Refusal::NoSuchSchedule { name, known } => format!(
            "no schedule named {name:?} (it may have been removed meanwhile); schedules are: \
             {known}"
        ),
        Refusal::ScheduleExists(name) => format!(
            "a schedule named {name:?} exists; remove it on the Schedules page first, or choose \
             another name"
        ),
        Refusal::Import(rows) => format!(
            "nothing was imported; fix these rows and run the import again:\n{}",
            nmt_projections::problem_list(rows, import_row)
        ),
        other => other.to_string(),
    }
}

fn import_row(p: &ImportProblem) -> String {
    match &p.what {
        RowProblem::NoSuchGroup(g) => format!(
            "  line {}: no group named {g:?} (create it on the Groups page first)",
            p.line
        ),
        _ => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nmt_projections::{Mac, Policy};

    /// No refusal the web UI words names a command-line flag or command.
    #[test]
    fn web_words_name_no_flags_or_commands() {
        let mac = Mac::parse("52:54:00:00:00:01").unwrap();
        let all = [
            Refusal::GroupNotEmpty {
                group: "physics".into(),
                count: 2,
            },
            Refusal::WouldErase {
                group: "physics".into(),
                count: 2,
                policy: "install:default".parse::<Policy>().unwrap(),
            },
            Refusal::MoveIntoItself("physics".into()),
            Refusal::NoSuchGroup {
                group: "@physics".into(),
                known: "unknown, localboot".into(),
            },
            Refusal::NoSuchMachine(mac),
            Refusal::AlreadyRegistered {
                mac,
                as_name: " as n1".into(),
            },
            Refusal::GroupExists("physics".into()),
            Refusal::NotInstalled {
                machine: "n1".into(),
                mac,
            },
            Refusal::NewIntoLocalboot,
            Refusal::OnceWithoutPolicy,
            Refusal::OnceNoMembers("physics".into()),
            Refusal::NoSuchProfile {
                policy: "install:x".into(),
                kind: "install",
                name: "x".into(),
                known: "profiles are: default".into(),
            },
            Refusal::ProfileExists("x".into()),
            Refusal::NoSuchSchedule {
                name: "nightly".into(),
                known: "lab-nightly".into(),
            },
            Refusal::NoSuchSchedule {
                name: "nightly".into(),
                known: String::new(),
            },
            Refusal::ScheduleExists("nightly".into()),
            Refusal::Import(vec![
                ImportProblem {
                    line: 2,
                    what: RowProblem::NoSuchGroup("physics".into()),
                },
                ImportProblem {
                    line: 3,
                    what: RowProblem::Said("\"x\" is not an IPv4 address".into()),
                },
            ]),
        ];
        for r in &all {
            let cli = r.to_string();
            let web = refusal(r);
            assert!(
                cli.contains("--") || cli.contains("`nmt "),
                "each of these says a flag or a command on the CLI: {cli}"
            );
            assert!(
                !web.contains("--") && !web.contains("nmt ") && !web.contains('`'),
                "{web}"
            );
        }
    }
}
