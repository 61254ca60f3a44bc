//! The application layer: what nmt can be asked to do ([`Action`]), who may ask
//! ([`Action::right`]), doing it ([`perform`], [`read`], one function per action), and what it
//! answers, as typed data ([`Reply`], [`Failure`]). The command line, nmtd's control socket
//! and the web UI all come through here; each renders the replies its own way (tables or
//! JSON in the caller's time zone, HTML).

mod access;
mod action;
mod input;
mod perform;
pub mod power;
mod reply;
pub mod schedule;

pub use access::{AccessConfig, Caller};
pub use action::{Action, Right};
pub use input::{machine_add, parse_node_table};
pub use perform::{
    boots, groups, history, images, mac_or_name, machines, one_machine, perform, perform_with,
    read, rootdevs, show,
};
pub use reply::{
    Answer, CliRequest, Confirm, Counters, DaemonStatus, Failure, FileView, Files, GroupView,
    ImagingProgress, MachineView, Mode, Planned, Replayed, Reply, RootdevView, ShowView,
    SourceStats, Status, Then, UNCONFIRMED, local_time,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, OpenOptions};

    /// What crosses nmtd's socket comes back as it went: the CLI renders a reply from nmtd
    /// exactly as one it made itself.
    #[test]
    fn replies_cross_the_socket_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::open(&OpenOptions {
            state_dir: dir.path().join("state"),
            config: None,
            wait: std::time::Duration::from_secs(2),
            create: true,
        })
        .unwrap();
        let mac = "52:54:00:00:00:01";
        let actions = [
            Action::GroupAdd {
                group: "lab".into(),
                policy: Some("install".into()),
            },
            machine_add(mac, Some("n1".into()), Some("lab".into()), Some("10.0.0.1")).unwrap(),
            Action::Policy {
                range: "n1".into(),
                policy: "ltsp".into(),
                once: true,
                members: false,
                reboot: false,
            },
            Action::GroupList,
            Action::Machines {
                range: None,
                at: None,
            },
            Action::RootdevList,
            Action::ProfileList,
            Action::ImageList,
            Action::Show {
                machine: "n1".into(),
                at: None,
            },
            Action::History {
                machine: "n1".into(),
                since: None,
                until: None,
                kinds: Vec::new(),
            },
            Action::Boots {
                machine: "n1".into(),
                since: None,
            },
            Action::Verify,
            Action::Render { check: true },
            Action::Render { check: false },
            Action::Status,
            Action::JournalExport {
                since: None,
                until: None,
                machine: None,
            },
        ];
        for action in actions {
            let what = format!("{action:?}");
            let reply = perform(&mut engine, action, "root", nmt_projections::Source::Cli).unwrap();
            let wire: Answer = Ok(reply.clone());
            let back: Answer = serde_json::from_slice(&serde_json::to_vec(&wire).unwrap()).unwrap();
            let back = back.unwrap();
            for json in [false, true] {
                assert_eq!(
                    crate::cli::render(&back, json),
                    crate::cli::render(&reply, json),
                    "{what}"
                );
            }
        }
        let refused = perform(
            &mut engine,
            Action::Assign {
                range: "n1".into(),
                group: "nogroup".into(),
                ip: None,
                no_ip: false,
            },
            "root",
            nmt_projections::Source::Cli,
        )
        .unwrap_err();
        let f = Failure::of(&refused);
        assert!(f.message().starts_with("nmt: refused: "), "{f:?}");
        let back: Failure = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }

    /// A confirmed bulk destruction is done only if it still reaches the machines that were
    /// confirmed; asked without confirmation, it answers its plan and does nothing.
    #[test]
    fn what_was_confirmed_is_what_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::open(&OpenOptions {
            state_dir: dir.path().join("state"),
            config: None,
            wait: std::time::Duration::from_secs(2),
            create: true,
        })
        .unwrap();
        let src = || nmt_projections::Source::Cli;
        let add = |n: u8| {
            machine_add(
                &format!("52:54:00:00:00:0{n}"),
                None,
                Some("lab".into()),
                None,
            )
            .unwrap()
        };
        perform(
            &mut engine,
            Action::GroupAdd {
                group: "lab".into(),
                policy: None,
            },
            "root",
            src(),
        )
        .unwrap();
        for n in 1..=2 {
            perform(&mut engine, add(n), "root", src()).unwrap();
        }
        let rm = Action::MachineRm {
            range: "@lab".into(),
        };
        let ask = Mode {
            dry_run: false,
            confirm: Confirm::Ask,
        };
        let last = engine.state().last_seq();
        let Reply::Unconfirmed(plan) =
            perform_with(&mut engine, rm.clone(), &ask, "root", src()).unwrap()
        else {
            panic!("two machines removed needs confirmation")
        };
        assert_eq!(engine.state().last_seq(), last, "nothing appended");
        let confirmed = plan.impact.at_risk();
        assert_eq!(confirmed.len(), 2);
        // Meanwhile a third machine joins the group: the confirmation no longer holds.
        perform(&mut engine, add(3), "root", src()).unwrap();
        let last = engine.state().last_seq();
        let reaching = Mode {
            dry_run: false,
            confirm: Confirm::Reaching(confirmed),
        };
        let err = perform_with(&mut engine, rm.clone(), &reaching, "root", src()).unwrap_err();
        assert!(format!("{err:#}").contains("changed since"), "{err:#}");
        assert_eq!(engine.state().last_seq(), last, "nothing appended");
        assert_eq!(engine.state().machine_count(), 3);
        // Confirmed as it is now: done.
        let Reply::Unconfirmed(plan) =
            perform_with(&mut engine, rm.clone(), &ask, "root", src()).unwrap()
        else {
            panic!("needs confirmation")
        };
        let reaching = Mode {
            dry_run: false,
            confirm: Confirm::Reaching(plan.impact.at_risk()),
        };
        let Reply::Changed { impact, .. } =
            perform_with(&mut engine, rm, &reaching, "root", src()).unwrap()
        else {
            panic!("done")
        };
        assert_eq!(impact.removed.len(), 3);
        assert_eq!(engine.state().machine_count(), 0);
    }

    /// Who may do what is decided per action: reads for everyone, a group's own policy for
    /// its administrators, the rest for admins.
    #[test]
    fn every_action_needs_a_right() {
        let policy = |range: &str, members| Action::Policy {
            range: range.into(),
            policy: "ltsp".into(),
            once: false,
            members,
            reboot: false,
        };
        assert_eq!(
            policy("@physics", false).right(),
            Right::GroupPolicy(vec!["physics".into()])
        );
        assert_eq!(policy("@physics", true).right(), Right::Admin);
        assert_eq!(policy("node01", false).right(), Right::Admin);
        assert_eq!(Action::Render { check: true }.right(), Right::Read);
        assert_eq!(Action::Render { check: false }.right(), Right::Admin);
        assert_eq!(Action::Status.right(), Right::Read);
        // A web session acts with the caller's own rights: anyone who reaches the socket.
        assert_eq!(Action::WebLogin.right(), Right::Read);
    }
}
