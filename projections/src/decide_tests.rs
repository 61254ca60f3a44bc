//! Given/when/then tests of every admin action, every refusal and both automatic rules.

use std::net::Ipv4Addr;

use jiff::Timestamp;

use crate::{
    Command, Envelope, Event, ImportRow, LOCALBOOT, Mac, NamePattern, Origin, Policy, Profile,
    ProfileKind, Refusal, ReportVia, State, UNKNOWN, decide,
};

fn mac(n: u8) -> Mac {
    Mac::new([0x52, 0x54, 0, 0, 0, n])
}

fn pol(s: &str) -> Policy {
    s.parse().unwrap()
}

struct Scenario {
    state: State,
}

fn env(seq: u64, event: Event) -> Envelope {
    Envelope {
        seq,
        v: 1,
        recorded_at: Timestamp::UNIX_EPOCH,
        observed_at: Timestamp::from_second(seq as i64).unwrap(),
        actor: "test".into(),
        source: None,
        event,
    }
}

/// A store as `nmt` creates it (site key and default profiles), plus `events`.
fn given(events: Vec<Event>) -> Scenario {
    let mut s = Scenario {
        state: State::new(),
    };
    let init = decide(&s.state, Command::Init).unwrap();
    s.fold(init);
    s.fold(events);
    s
}

impl Scenario {
    fn fold(&mut self, events: Vec<Event>) {
        for e in events {
            let seq = self.state.last_seq() + 1;
            self.state.apply(&env(seq, e));
        }
    }

    /// This scenario, then `events`.
    fn and(&self, events: Vec<Event>) -> Scenario {
        let mut s = Scenario {
            state: self.state.clone(),
        };
        s.fold(events);
        s
    }

    fn when(&self, cmd: Command) -> Then<'_> {
        Then {
            scenario: self,
            result: decide(&self.state, cmd),
        }
    }
}

struct Then<'a> {
    scenario: &'a Scenario,
    result: Result<Vec<Event>, Refusal>,
}

impl Then<'_> {
    fn then_expect(self, want: Vec<Event>) -> State {
        let got = self.result.expect("the command should be accepted");
        assert_eq!(got, want);
        let mut s = Scenario {
            state: self.scenario.state.clone(),
        };
        s.fold(got);
        s.state
    }

    fn then_accepted(self) -> State {
        let got = self.result.expect("the command should be accepted");
        let mut s = Scenario {
            state: self.scenario.state.clone(),
        };
        s.fold(got);
        s.state
    }

    fn then_refused(self, needle: &str) {
        match self.result {
            Ok(ev) => panic!("expected a refusal containing {needle:?}, got {ev:?}"),
            Err(r) => {
                let msg = r.to_string();
                assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
            }
        }
    }
}

fn registered(n: u8) -> Event {
    Event::MachineRegistered {
        mac: mac(n),
        name: None,
        group: None,
        ip: None,
    }
}

fn group(name: &str, policy: &str) -> Event {
    Event::GroupCreated {
        group: name.into(),
        policy: pol(policy),
    }
}

// ---- machine add ----

#[test]
fn add_machine_with_everything() {
    let st = given(vec![group("physics", "localboot")])
        .when(Command::AddMachine {
            mac: mac(1),
            name: Some("Node001".into()),
            group: Some("physics".into()),
            ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        })
        .then_expect(vec![Event::MachineRegistered {
            mac: mac(1),
            name: Some("node001".into()),
            group: Some("physics".into()),
            ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        }]);
    let m = st.machine(&mac(1)).unwrap();
    assert_eq!(m.group, "physics");
    assert!(m.registered);
    assert_eq!(st.machine_by_name("node001").unwrap().mac, mac(1));
    assert!(st.group("physics").unwrap().members.contains(&mac(1)));
}

#[test]
fn add_machine_defaults_to_unknown() {
    let st = given(vec![]).when(add(1)).then_accepted();
    assert_eq!(st.machine(&mac(1)).unwrap().group, UNKNOWN);
}

fn add(n: u8) -> Command {
    Command::AddMachine {
        mac: mac(n),
        name: None,
        group: None,
        ip: None,
    }
}

#[test]
fn add_machine_refusals() {
    let s = given(vec![
        Event::MachineRegistered {
            mac: mac(1),
            name: Some("node001".into()),
            group: None,
            ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        },
        group("physics", "localboot"),
    ]);
    s.when(add(1)).then_refused("already registered as node001");
    s.when(Command::AddMachine {
        mac: mac(2),
        name: Some("node001".into()),
        group: None,
        ip: None,
    })
    .then_refused("already belongs to 52:54:00:00:00:01");
    s.when(Command::AddMachine {
        mac: mac(2),
        name: None,
        group: None,
        ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
    })
    .then_refused("10.0.0.1 is already fixed");
    s.when(Command::AddMachine {
        mac: mac(2),
        name: None,
        group: Some("chemistry".into()),
        ip: None,
    })
    .then_refused("no group named \"chemistry\"; groups are: localboot, physics, unknown");
    s.when(Command::AddMachine {
        mac: mac(2),
        name: None,
        group: Some(LOCALBOOT.into()),
        ip: None,
    })
    .then_refused("cannot join 'localboot' before it is installed");
    s.when(Command::AddMachine {
        mac: mac(2),
        name: Some("bad;name".into()),
        group: None,
        ip: None,
    })
    .then_refused("not a valid machine name");
    s.when(Command::AddMachine {
        mac: mac(2),
        name: None,
        group: None,
        ip: Some(Ipv4Addr::BROADCAST),
    })
    .then_refused("cannot be a machine's fixed address");
}

#[test]
fn a_discovered_machine_can_be_registered() {
    let st = given(vec![Event::BootEntryUsed {
        mac: mac(1),
        file: "pxelinux.cfg/default".into(),
        ip: None,
    }])
    .when(add(1))
    .then_accepted();
    assert!(st.machine(&mac(1)).unwrap().registered);
}

// ---- machine import ----

fn row(line: usize, mac: &str, name: &str, ip: &str, group: &str) -> ImportRow {
    ImportRow {
        line,
        mac: mac.into(),
        name: name.into(),
        ip: ip.into(),
        group: group.into(),
    }
}

#[test]
fn import_registers_and_updates() {
    let st = given(vec![
        group("physics", "localboot"),
        Event::MachineRegistered {
            mac: mac(1),
            name: Some("old".into()),
            group: None,
            ip: None,
        },
    ])
    .when(Command::Import {
        rows: vec![
            row(1, "52:54:00:00:00:01", "node001", "10.0.0.1", "physics"),
            row(2, "52-54-00-00-00-02", "node002", "", ""),
        ],
    })
    .then_expect(vec![
        Event::MachineNamed {
            mac: mac(1),
            name: Some("node001".into()),
        },
        Event::MachineAddressSet {
            mac: mac(1),
            ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        },
        Event::MachineAssigned {
            mac: mac(1),
            group: "physics".into(),
        },
        Event::MachineRegistered {
            mac: mac(2),
            name: Some("node002".into()),
            group: None,
            ip: None,
        },
    ]);
    assert_eq!(st.machine_count(), 2);
}

#[test]
fn import_is_all_or_nothing_and_lists_every_bad_row() {
    let s = given(vec![Event::MachineRegistered {
        mac: mac(9),
        name: Some("taken".into()),
        group: None,
        ip: None,
    }]);
    let r = decide(
        &s.state,
        Command::Import {
            rows: vec![
                row(1, "52:54:00:00:00:01", "node001", "", ""),
                row(2, "not-a-mac", "", "", ""),
                row(3, "52:54:00:00:00:01", "", "", ""),
                row(4, "52:54:00:00:00:03", "", "", "nogroup"),
                row(5, "52:54:00:00:00:04", "node001", "300.1.1.1", ""),
                row(6, "52:54:00:00:00:05", "taken", "", ""),
            ],
        },
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "nothing was imported",
        "line 2: \"not-a-mac\" is not a MAC",
        "line 3: 52:54:00:00:00:01 is already on line 1",
        "line 4: no group named \"nogroup\"",
        "line 5: the name node001 is already on line 1",
        "line 5: \"300.1.1.1\" is not an IPv4 address",
        "line 6: the name taken already belongs to 52:54:00:00:00:09",
    ] {
        assert!(r.contains(needle), "{r}\n--- lacks: {needle}");
    }
}

// ---- machine rm ----

#[test]
fn remove_machines() {
    let st = given(vec![
        Event::MachineRegistered {
            mac: mac(1),
            name: Some("a".into()),
            group: None,
            ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        },
        registered(2),
    ])
    .when(Command::RemoveMachines { macs: vec![mac(1)] })
    .then_expect(vec![Event::MachineRemoved {
        mac: mac(1),
        was: Some(crate::MachineRecord {
            name: Some("a".into()),
            group: UNKNOWN.into(),
            ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..Default::default()
        }),
    }]);
    assert!(st.machine(&mac(1)).is_none());
    assert!(st.machine_by_name("a").is_none());
    assert!(st.machine_by_ip(&Ipv4Addr::new(10, 0, 0, 1)).is_none());
    assert!(!st.group(UNKNOWN).unwrap().members.contains(&mac(1)));
    given(vec![])
        .when(Command::RemoveMachines { macs: vec![mac(1)] })
        .then_refused("no machine 52:54:00:00:00:01 is known");
}

// ---- machine restore ----

/// A machine with everything an admin can set, in group lab; then removed.
fn removed_lab_machine() -> (Scenario, u64) {
    let mut s = given(vec![
        group("lab", "localboot"),
        Event::MachineRegistered {
            mac: mac(1),
            name: Some("lab01".into()),
            group: Some("lab".into()),
            ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        },
        Event::RootDeviceSet {
            mac: mac(1),
            device: "/dev/sda1".into(),
        },
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("ltsp")),
            once: false,
        },
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("install")),
            once: true,
        },
    ]);
    let rm = decide(&s.state, Command::RemoveMachines { macs: vec![mac(1)] }).unwrap();
    s.fold(rm);
    let seq = s.state.last_seq();
    (s, seq)
}

/// The removal as the engine finds it in the log: its sequence number and what it kept.
fn removal_of(seq: u64) -> Option<(u64, crate::MachineRecord)> {
    Some((seq, lab01_record()))
}

fn lab01_record() -> crate::MachineRecord {
    crate::MachineRecord {
        name: Some("lab01".into()),
        group: "lab".into(),
        ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        rootdev: Some("/dev/sda1".into()),
        policy: Some(pol("install")),
        once: true,
        previous: Some(pol("ltsp")),
    }
}

#[test]
fn machine_rm_keeps_what_restore_needs() {
    let before = given(vec![
        group("lab", "localboot"),
        Event::MachineRegistered {
            mac: mac(1),
            name: Some("lab01".into()),
            group: Some("lab".into()),
            ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        },
        Event::RootDeviceSet {
            mac: mac(1),
            device: "/dev/sda1".into(),
        },
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("ltsp")),
            once: false,
        },
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("install")),
            once: true,
        },
    ]);
    before
        .when(Command::RemoveMachines { macs: vec![mac(1)] })
        .then_expect(vec![Event::MachineRemoved {
            mac: mac(1),
            was: Some(lab01_record()),
        }]);
}

#[test]
fn machine_restore_brings_back_everything_it_had() {
    let (s, seq) = removed_lab_machine();
    let st = s
        .when(Command::RestoreMachine {
            mac: mac(1),
            removal: removal_of(seq),
            group: None,
        })
        .then_expect(vec![Event::MachineRestored {
            mac: mac(1),
            removed: seq,
            was: lab01_record(),
        }]);
    let m = st.machine(&mac(1)).expect("back");
    assert!(m.registered);
    assert_eq!(m.name.as_deref(), Some("lab01"));
    assert_eq!(m.group, "lab");
    assert!(st.group("lab").unwrap().members.contains(&mac(1)));
    assert_eq!(m.ip, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(st.machine_by_name("lab01").map(|m| m.mac), Some(mac(1)));
    assert_eq!(
        st.machine_by_ip(&Ipv4Addr::new(10, 0, 0, 1)).map(|m| m.mac),
        Some(mac(1))
    );
    assert_eq!(m.rootdev.as_deref(), Some("/dev/sda1"));
    let o = m.policy.as_ref().expect("its own policy");
    assert_eq!((o.policy.clone(), o.once), (pol("install"), true));
    assert_eq!(o.previous, Some(pol("ltsp")));
    // Into another group, with --group.
    let s2 = s.and(vec![group("other", "localboot")]);
    let st = s2
        .when(Command::RestoreMachine {
            mac: mac(1),
            removal: removal_of(seq),
            group: Some("other".into()),
        })
        .then_accepted();
    assert_eq!(st.machine(&mac(1)).unwrap().group, "other");
}

#[test]
fn machine_restore_refusals() {
    let (s, seq) = removed_lab_machine();
    let restore = |removal, group: Option<&str>| Command::RestoreMachine {
        mac: mac(1),
        removal,
        group: group.map(Into::into),
    };
    // Never removed.
    s.when(restore(None, None))
        .then_refused("was never removed");
    // Registered again since.
    let again = s.and(vec![registered(1)]);
    again
        .when(restore(removal_of(seq), None))
        .then_refused("is registered");
    // A log line about it since does not count as registered: it can be restored.
    let seen = s.and(vec![Event::BootEntryUsed {
        mac: mac(1),
        file: "pxelinux.0".into(),
        ip: None,
    }]);
    seen.when(restore(removal_of(seq), None)).then_accepted();
    // Its name is taken.
    let taken = s.and(vec![Event::MachineRegistered {
        mac: mac(2),
        name: Some("lab01".into()),
        group: None,
        ip: None,
    }]);
    taken
        .when(restore(removal_of(seq), None))
        .then_refused("that name now belongs to 52:54:00:00:00:02");
    // Its address is taken.
    let ip = s.and(vec![Event::MachineAddressSet {
        mac: mac(2),
        ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
    }]);
    ip.when(restore(removal_of(seq), None))
        .then_refused("10.0.0.1 is already fixed for 52:54:00:00:00:02");
    // Its group is gone: --group says where.
    let gone = s.and(vec![Event::GroupRemoved {
        group: "lab".into(),
    }]);
    gone.when(restore(removal_of(seq), None))
        .then_refused("--group GROUP");
    gone.when(restore(removal_of(seq), Some("nosuch")))
        .then_refused("no group named \"nosuch\"");
    gone.when(restore(removal_of(seq), Some("unknown")))
        .then_accepted();
}

// ---- what a change does to the machines ----

/// `Impact::between`, checked against the rule it computes faster: every machine after the
/// change whose next boot differs from before (or that is new), and every machine gone.
fn impact_of(before: &State, after: &State) -> crate::Impact {
    let fast = crate::Impact::between(before, after);
    let mut removed: Vec<Mac> = before
        .machines()
        .filter(|m| after.machine(&m.mac).is_none())
        .map(|m| m.mac)
        .collect();
    let mut boots: Vec<(Policy, Mac)> = after
        .machines()
        .filter(|m| {
            before.machine(&m.mac).map(|b| before.effective_policy(b).0)
                != Some(after.effective_policy(m).0)
        })
        .map(|m| (after.effective_policy(m).0, m.mac))
        .collect();
    let mut fast_removed: Vec<Mac> = fast.removed.iter().map(|m| m.mac).collect();
    let mut fast_boots: Vec<(Policy, Mac)> = fast
        .boot
        .iter()
        .flat_map(|b| b.machines.iter().map(|m| (b.policy.clone(), m.mac)))
        .collect();
    for v in [&mut removed, &mut fast_removed] {
        v.sort();
    }
    boots.sort();
    fast_boots.sort();
    assert_eq!((fast_removed, fast_boots), (removed, boots));
    fast
}

#[test]
fn impact_lists_removed_machines_and_new_boots_by_policy() {
    let before = given(vec![
        group("lab", "localboot"),
        Event::MachineRegistered {
            mac: mac(1),
            name: Some("lab01".into()),
            group: Some("lab".into()),
            ip: None,
        },
        Event::MachineRegistered {
            mac: mac(2),
            name: Some("lab02".into()),
            group: Some("lab".into()),
            ip: None,
        },
        Event::MachineRegistered {
            mac: mac(3),
            name: Some("lab03".into()),
            group: Some("lab".into()),
            ip: None,
        },
        // Already installing: its next boot does not change.
        Event::MachinePolicySet {
            mac: mac(3),
            policy: Some(pol("install")),
            once: false,
        },
        registered(4),
    ]);
    let group_install = before
        .when(Command::SetGroupPolicy {
            group: "lab".into(),
            policy: pol("install"),
            once: false,
        })
        .then_accepted();
    let impact = impact_of(&before.state, &group_install);
    assert!(impact.removed.is_empty());
    assert_eq!(impact.boot.len(), 1, "{impact:?}");
    let b = &impact.boot[0];
    assert!(b.erases_disk);
    let names: Vec<String> = b.machines.iter().map(|m| m.label()).collect();
    assert_eq!(names, ["lab01", "lab02"]);
    assert_eq!(
        b.sentence("will now", 10),
        "2 machines will now install at next boot: lab01, lab02"
    );
    assert!(impact.needs_confirmation());
    assert_eq!(impact.at_risk(), [mac(1), mac(2)].into_iter().collect());
    // One machine installing is not bulk.
    let one = before
        .when(Command::SetPolicy {
            macs: vec![mac(1)],
            policy: Some(pol("install")),
            once: true,
        })
        .then_accepted();
    let impact = impact_of(&before.state, &one);
    assert_eq!(impact.erasing().len(), 1);
    assert!(!impact.needs_confirmation());
    // LTSP on many erases nothing.
    let ltsp = before
        .when(Command::SetGroupPolicy {
            group: "lab".into(),
            policy: pol("ltsp"),
            once: false,
        })
        .then_accepted();
    let impact = impact_of(&before.state, &ltsp);
    assert!(!impact.needs_confirmation(), "{impact:?}");
    assert_eq!(impact.boot[0].machines.len(), 2);
    // Removing two machines is.
    let rm = before
        .when(Command::RemoveMachines {
            macs: vec![mac(1), mac(4)],
        })
        .then_accepted();
    let impact = impact_of(&before.state, &rm);
    assert_eq!(
        impact.removed.iter().map(|m| m.label()).collect::<Vec<_>>(),
        ["52:54:00:00:00:04", "lab01"]
    );
    assert!(impact.boot.is_empty());
    assert!(impact.needs_confirmation());
    assert_eq!(impact.at_risk(), [mac(1), mac(4)].into_iter().collect());
    // Moving machines into a group that installs makes them install: the same rule.
    let s = before.and(vec![group("wipe", "install")]);
    let moved = s
        .when(Command::Assign {
            macs: vec![mac(1), mac(2)],
            group: "wipe".into(),
            address: None,
        })
        .then_accepted();
    let impact = impact_of(&s.state, &moved);
    assert!(impact.needs_confirmation(), "{impact:?}");
    // A new machine boots something new: it is listed too.
    let added = before.when(add(9)).then_accepted();
    let impact = impact_of(&before.state, &added);
    assert_eq!(impact.boot[0].policy, pol("localboot"));
    // A one-shot on a machine that follows its group, and a machine moved to follow it.
    let once = before
        .when(Command::SetPolicy {
            macs: vec![mac(2), mac(3)],
            policy: Some(pol("ltsp")),
            once: true,
        })
        .then_accepted();
    assert_eq!(impact_of(&before.state, &once).boot[0].machines.len(), 2);
    let back = before
        .when(Command::SetPolicy {
            macs: vec![mac(3)],
            policy: None,
            once: false,
        })
        .then_accepted();
    let impact = impact_of(&before.state, &back);
    let listed: Vec<String> = impact.boot[0].machines.iter().map(|m| m.label()).collect();
    assert_eq!(listed, ["lab03"], "it follows its group again: {impact:?}");
}

// ---- name ----

#[test]
fn name_one_machine() {
    let st = given(vec![registered(1)])
        .when(Command::Name {
            mac: mac(1),
            name: "Lab07".into(),
        })
        .then_expect(vec![Event::MachineNamed {
            mac: mac(1),
            name: Some("lab07".into()),
        }]);
    assert_eq!(st.machine_by_name("lab07").unwrap().mac, mac(1));
    let s = given(vec![
        registered(1),
        Event::MachineRegistered {
            mac: mac(2),
            name: Some("lab07".into()),
            group: None,
            ip: None,
        },
    ]);
    s.when(Command::Name {
        mac: mac(1),
        name: "lab07".into(),
    })
    .then_refused("already belongs to 52:54:00:00:00:02");
    s.when(Command::Name {
        mac: mac(1),
        name: "52-54-00-00-00-09".into(),
    })
    .then_refused("looks like a MAC");
    s.when(Command::Name {
        mac: mac(1),
        name: "a\"b".into(),
    })
    .then_refused("not a valid machine name");
    s.when(Command::Name {
        mac: mac(5),
        name: "x".into(),
    })
    .then_refused("no machine 52:54:00:00:00:05");
}

#[test]
fn name_by_pattern_in_order_of_first_appearance() {
    // Seen in the order 3, 1, 2.
    let s = given(vec![registered(3), registered(1), registered(2)]);
    s.when(Command::NamePattern {
        macs: vec![mac(1), mac(2), mac(3)],
        pattern: NamePattern::parse("node{001}").unwrap(),
    })
    .then_expect(vec![
        Event::MachineNamed {
            mac: mac(3),
            name: Some("node001".into()),
        },
        Event::MachineNamed {
            mac: mac(1),
            name: Some("node002".into()),
        },
        Event::MachineNamed {
            mac: mac(2),
            name: Some("node003".into()),
        },
    ]);
    let p = NamePattern::parse("lab{9}.school").unwrap();
    assert_eq!(p.nth(0), "lab9.school");
    assert_eq!(p.nth(1), "lab10.school");
    for bad in ["node", "node{}", "node{x}", "n{1}{2}", "n{1"] {
        assert!(NamePattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn name_pattern_may_shuffle_names_inside_the_set_but_not_take_others() {
    let s = given(vec![
        Event::MachineRegistered {
            mac: mac(1),
            name: Some("node002".into()),
            group: None,
            ip: None,
        },
        Event::MachineRegistered {
            mac: mac(2),
            name: Some("node001".into()),
            group: None,
            ip: None,
        },
        Event::MachineRegistered {
            mac: mac(3),
            name: Some("node003".into()),
            group: None,
            ip: None,
        },
    ]);
    let st = s
        .when(Command::NamePattern {
            macs: vec![mac(1), mac(2)],
            pattern: NamePattern::parse("node{001}").unwrap(),
        })
        .then_accepted();
    assert_eq!(
        st.machine(&mac(1)).unwrap().name.as_deref(),
        Some("node001")
    );
    assert_eq!(
        st.machine(&mac(2)).unwrap().name.as_deref(),
        Some("node002")
    );
    s.when(Command::NamePattern {
        macs: vec![mac(1), mac(2)],
        pattern: NamePattern::parse("node{002}").unwrap(),
    })
    .then_refused("node003");
}

// ---- groups ----

#[test]
fn group_add_and_refusals() {
    let st = given(vec![])
        .when(Command::AddGroup {
            group: "physics".into(),
            policy: Some(pol("ltsp")),
        })
        .then_expect(vec![group("physics", "ltsp")]);
    assert_eq!(st.group_policy("physics"), Policy::Ltsp);
    let s = given(vec![group("physics", "localboot")]);
    s.when(Command::AddGroup {
        group: "physics".into(),
        policy: None,
    })
    .then_refused("already exists");
    s.when(Command::AddGroup {
        group: "unknown".into(),
        policy: None,
    })
    .then_refused("already exists");
    s.when(Command::AddGroup {
        group: "bad name".into(),
        policy: None,
    })
    .then_refused("not a valid group name");
    s.when(Command::AddGroup {
        group: "x".into(),
        policy: Some(pol("install:nope")),
    })
    .then_refused("needs a install profile named \"nope\"");
    s.when(Command::AddGroup {
        group: "x".into(),
        policy: Some(pol("custom:memtest")),
    })
    .then_refused("no custom profiles exist");
}

#[test]
fn group_rm_needs_force_when_it_has_members() {
    let s = given(vec![
        group("physics", "ltsp"),
        Event::MachineAssigned {
            mac: mac(1),
            group: "physics".into(),
        },
    ]);
    s.when(Command::RemoveGroup {
        group: "physics".into(),
        force: false,
        to: None,
    })
    .then_refused("still has 1 member(s)");
    let st = s
        .when(Command::RemoveGroup {
            group: "physics".into(),
            force: true,
            to: None,
        })
        .then_expect(vec![
            Event::MachineAssigned {
                mac: mac(1),
                group: UNKNOWN.into(),
            },
            Event::GroupRemoved {
                group: "physics".into(),
            },
        ]);
    assert!(st.group("physics").is_none());
    assert_eq!(st.machine(&mac(1)).unwrap().group, UNKNOWN);
    s.when(Command::RemoveGroup {
        group: UNKNOWN.into(),
        force: true,
        to: None,
    })
    .then_refused("built-in group");
    s.when(Command::RemoveGroup {
        group: "nope".into(),
        force: false,
        to: None,
    })
    .then_refused("no group named \"nope\"");
    given(vec![group("empty", "localboot")])
        .when(Command::RemoveGroup {
            group: "empty".into(),
            force: false,
            to: None,
        })
        .then_accepted();
}

// ---- assign ----

#[test]
fn assign_moves_between_groups() {
    let st = given(vec![registered(1), registered(2), group("physics", "ltsp")])
        .when(Command::Assign {
            macs: vec![mac(1), mac(2)],
            group: "physics".into(),
            address: None,
        })
        .then_accepted();
    assert_eq!(st.group("physics").unwrap().members.len(), 2);
    assert!(st.group(UNKNOWN).unwrap().members.is_empty());
    assert_eq!(
        st.effective_policy(st.machine(&mac(1)).unwrap()).0,
        Policy::Ltsp
    );
}

#[test]
fn assign_refusals() {
    let s = given(vec![registered(1)]);
    s.when(Command::Assign {
        macs: vec![mac(1)],
        group: "nope".into(),
        address: None,
    })
    .then_refused("no group named \"nope\"");
    s.when(Command::Assign {
        macs: vec![mac(1)],
        group: LOCALBOOT.into(),
        address: None,
    })
    .then_refused("has no install report and no root device");
    s.when(Command::Assign {
        macs: vec![mac(7)],
        group: UNKNOWN.into(),
        address: None,
    })
    .then_refused("no machine 52:54:00:00:00:07");
    let with_disk = given(vec![
        registered(1),
        Event::RootDeviceSet {
            mac: mac(1),
            device: "/dev/sda1".into(),
        },
    ]);
    let st = with_disk
        .when(Command::Assign {
            macs: vec![mac(1)],
            group: LOCALBOOT.into(),
            address: None,
        })
        .then_accepted();
    assert_eq!(st.machine(&mac(1)).unwrap().group, LOCALBOOT);
}

#[test]
fn assign_with_an_address_sets_it_for_one_machine() {
    let s = given(vec![registered(1), registered(2), group("physics", "ltsp")]);
    let ip: std::net::Ipv4Addr = "10.0.0.42".parse().unwrap();
    let st = s
        .when(Command::Assign {
            macs: vec![mac(1)],
            group: "physics".into(),
            address: Some(Some(ip)),
        })
        .then_accepted();
    let m = st.machine(&mac(1)).unwrap();
    assert_eq!((m.group.as_str(), m.ip), ("physics", Some(ip)));
    // One machine only; an address another machine holds is refused.
    s.when(Command::Assign {
        macs: vec![mac(1), mac(2)],
        group: "physics".into(),
        address: Some(Some(ip)),
    })
    .then_refused("--ip gives one machine a fixed address, and the range names 2 machines");
    given(vec![
        registered(1),
        registered(2),
        Event::MachineAddressSet {
            mac: mac(2),
            ip: Some(ip),
        },
    ])
    .when(Command::Assign {
        macs: vec![mac(1)],
        group: UNKNOWN.into(),
        address: Some(Some(ip)),
    })
    .then_refused("10.0.0.42 is already fixed for 52:54:00:00:00:02");
    // --no-ip takes the addresses away.
    let cleared = given(vec![
        registered(1),
        Event::MachineAddressSet {
            mac: mac(1),
            ip: Some(ip),
        },
    ])
    .when(Command::Assign {
        macs: vec![mac(1)],
        group: UNKNOWN.into(),
        address: Some(None),
    })
    .then_accepted();
    assert_eq!(cleared.machine(&mac(1)).unwrap().ip, None);
}

// ---- policy ----

#[test]
fn machine_policy_overrides_group_and_inherit_clears_it() {
    let s = given(vec![
        group("lab", "localboot"),
        Event::MachineAssigned {
            mac: mac(1),
            group: "lab".into(),
        },
    ]);
    let st = s
        .when(Command::SetPolicy {
            macs: vec![mac(1)],
            policy: Some(pol("install")),
            once: false,
        })
        .then_accepted();
    let m = st.machine(&mac(1)).unwrap();
    assert_eq!(
        st.effective_policy(m),
        (pol("install:default"), Origin::Machine)
    );
    let s2 = Scenario { state: st };
    let st = s2
        .when(Command::SetPolicy {
            macs: vec![mac(1)],
            policy: None,
            once: false,
        })
        .then_accepted();
    let m = st.machine(&mac(1)).unwrap();
    assert_eq!(st.effective_policy(m), (Policy::LocalBoot, Origin::Group));
}

#[test]
fn policy_refusals() {
    let s = given(vec![registered(1), group("lab", "localboot")]);
    s.when(Command::SetPolicy {
        macs: vec![mac(1)],
        policy: Some(pol("install:nope")),
        once: false,
    })
    .then_refused("install profiles: default, kickstart, ubuntu");
    s.when(Command::SetPolicy {
        macs: vec![mac(1)],
        policy: None,
        once: true,
    })
    .then_refused("--once needs a policy");
    s.when(Command::SetGroupPolicy {
        group: LOCALBOOT.into(),
        policy: pol("ltsp"),
        once: false,
    })
    .then_refused("always boots the local disk");
    s.when(Command::SetGroupPolicy {
        group: "nope".into(),
        policy: pol("ltsp"),
        once: false,
    })
    .then_refused("no group named \"nope\"");
    s.when(Command::SetGroupPolicy {
        group: "lab".into(),
        policy: pol("ltsp"),
        once: true,
    })
    .then_refused("has no members");
}

#[test]
fn group_policy_applies_to_members_and_unknown_sets_the_default() {
    let s = given(vec![registered(1)]);
    let st = s
        .when(Command::SetGroupPolicy {
            group: UNKNOWN.into(),
            policy: pol("install"),
            once: false,
        })
        .then_expect(vec![Event::GroupPolicySet {
            group: UNKNOWN.into(),
            policy: pol("install:default"),
        }]);
    assert_eq!(
        st.effective_policy(st.machine(&mac(1)).unwrap()),
        (pol("install:default"), Origin::Group)
    );
}

#[test]
fn group_once_becomes_a_one_shot_on_each_member() {
    let s = given(vec![
        group("lab", "localboot"),
        Event::MachineAssigned {
            mac: mac(1),
            group: "lab".into(),
        },
        Event::MachineAssigned {
            mac: mac(2),
            group: "lab".into(),
        },
    ]);
    s.when(Command::SetGroupPolicy {
        group: "lab".into(),
        policy: pol("restore-image:lab"),
        once: true,
    })
    .then_expect(vec![
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("restore-image:lab")),
            once: true,
        },
        Event::MachinePolicySet {
            mac: mac(2),
            policy: Some(pol("restore-image:lab")),
            once: true,
        },
    ]);
}

// ---- automatic rule 1: one-shot policies revert once used ----

#[test]
fn one_shot_reverts_to_the_group_after_the_boot_entry_is_used() {
    let mut s = given(vec![
        group("lab", "localboot"),
        Event::MachineAssigned {
            mac: mac(1),
            group: "lab".into(),
        },
    ]);
    s.fold(vec![Event::MachinePolicySet {
        mac: mac(1),
        policy: Some(pol("install")),
        once: true,
    }]);
    let m = s.state.machine(&mac(1)).unwrap();
    assert_eq!(
        s.state.effective_policy(m),
        (pol("install:default"), Origin::MachineOnce)
    );
    s.fold(vec![Event::BootEntryUsed {
        mac: mac(1),
        file: "pxelinux.cfg/01-52-54-00-00-00-01".into(),
        ip: Some(Ipv4Addr::new(10, 0, 0, 5)),
    }]);
    let m = s.state.machine(&mac(1)).unwrap();
    assert_eq!(
        s.state.effective_policy(m),
        (Policy::LocalBoot, Origin::Group)
    );
    let boot = m.last_boot.as_ref().unwrap();
    assert_eq!(
        boot.policy,
        pol("install:default"),
        "the boot records what it booted"
    );
    assert_eq!(m.last_ip, Some(Ipv4Addr::new(10, 0, 0, 5)));
}

#[test]
fn one_shot_reverts_to_the_previous_override_even_when_stacked() {
    let mut s = given(vec![registered(1)]);
    s.fold(vec![
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("ltsp")),
            once: false,
        },
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("install")),
            once: true,
        },
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("restore-image:x")),
            once: true,
        },
        Event::BootEntryUsed {
            mac: mac(1),
            file: "f".into(),
            ip: None,
        },
    ]);
    let m = s.state.machine(&mac(1)).unwrap();
    assert_eq!(s.state.effective_policy(m), (Policy::Ltsp, Origin::Machine));
    // A boot with no one-shot pending changes nothing.
    s.fold(vec![Event::BootEntryUsed {
        mac: mac(1),
        file: "f".into(),
        ip: None,
    }]);
    let m = s.state.machine(&mac(1)).unwrap();
    assert_eq!(s.state.effective_policy(m), (Policy::Ltsp, Origin::Machine));
}

#[test]
fn one_shot_install_is_spent_by_the_install_report() {
    let mut s = given(vec![registered(1)]);
    s.fold(vec![
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("install")),
            once: true,
        },
        Event::InstallReported {
            mac: mac(1),
            device: "/dev/sda1".into(),
            via: ReportVia::Installer,
        },
    ]);
    let m = s.state.machine(&mac(1)).unwrap();
    assert!(m.policy.is_none());
    assert_eq!(m.group, LOCALBOOT);
}

// ---- automatic rule 2: an install report moves unknown → localboot ----

#[test]
fn install_report_moves_unknown_to_localboot_keeping_the_root_device() {
    let s = given(vec![unknown_installs(), registered(1)]);
    let st = s
        .when(Command::ReportInstall {
            mac: mac(1),
            device: "/dev/sda1".into(),
            via: ReportVia::Installer,
        })
        .then_expect(vec![Event::InstallReported {
            mac: mac(1),
            device: "/dev/sda1".into(),
            via: ReportVia::Installer,
        }]);
    let m = st.machine(&mac(1)).unwrap();
    assert_eq!(m.group, LOCALBOOT);
    assert_eq!(m.rootdev.as_deref(), Some("/dev/sda1"));
    assert_eq!(st.effective_policy(m).0, Policy::LocalBoot);
    assert!(st.group(LOCALBOOT).unwrap().members.contains(&mac(1)));
    assert!(!st.group(UNKNOWN).unwrap().members.contains(&mac(1)));
}

#[test]
fn install_report_leaves_named_groups_alone() {
    let mut s = given(vec![
        group("hpc", "install"),
        Event::MachineAssigned {
            mac: mac(1),
            group: "hpc".into(),
        },
    ]);
    s.fold(vec![Event::InstallReported {
        mac: mac(1),
        device: "/dev/nvme0n1p2".into(),
        via: ReportVia::Manual,
    }]);
    let m = s.state.machine(&mac(1)).unwrap();
    assert_eq!(m.group, "hpc");
    assert_eq!(m.rootdev.as_deref(), Some("/dev/nvme0n1p2"));
}

fn unknown_installs() -> Event {
    Event::GroupPolicySet {
        group: UNKNOWN.into(),
        policy: pol("install"),
    }
}

#[test]
fn item_12_9_an_installer_reports_only_for_a_known_machine_booting_an_installer_or_imager() {
    let report = |n: u8| Command::ReportInstall {
        mac: mac(n),
        device: "/dev/vda1".into(),
        via: ReportVia::Installer,
    };
    // Never seen, even with unknown machines installing: no machine comes from a report.
    given(vec![unknown_installs()])
        .when(report(4))
        .then_refused("no machine 52:54:00:00:00:04 is known");
    // Known, but sent to its disk or to LTSP: not installing.
    given(vec![registered(1)])
        .when(report(1))
        .then_refused("was not sent to an installer or an imager");
    given(vec![
        registered(1),
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("ltsp")),
            once: false,
        },
    ])
    .when(report(1))
    .then_refused("its boot entry is ltsp");
    // Installing, or imaging: accepted.
    given(vec![unknown_installs(), registered(1)])
        .when(report(1))
        .then_accepted();
    given(vec![
        registered(1),
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("restore-image:lab")),
            once: true,
        },
    ])
    .when(report(1))
    .then_accepted();
    // A one-shot install already fetched (the boot in progress) still counts.
    let s = given(vec![
        registered(1),
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("install")),
            once: true,
        },
        Event::BootEntryUsed {
            mac: mac(1),
            file: "pxelinux.cfg/01-52-54-00-00-00-01".into(),
            ip: None,
        },
    ]);
    s.when(report(1)).then_accepted();
    // The installer's own DHCP exchange ends the one-shot's boot: its report still counts,
    // once.
    let mut s = s;
    s.fold(vec![Event::DhcpSeen {
        mac: mac(1),
        kind: "ack".into(),
        ip: None,
        hostname: None,
        arch: None,
        vendor_class: None,
        server: "dnsmasq".into(),
        via: None,
        note: None,
    }]);
    let report_events = s.when(report(1)).then_accepted();
    let s = Scenario {
        state: report_events,
    };
    s.when(report(1))
        .then_refused("was not sent to an installer or an imager");
    // An admin may record one by hand for any machine; a bad device is refused either way.
    given(vec![])
        .when(Command::ReportInstall {
            mac: mac(4),
            device: "/dev/vda1".into(),
            via: ReportVia::Manual,
        })
        .then_accepted();
    given(vec![unknown_installs(), registered(1)])
        .when(Command::ReportInstall {
            mac: mac(1),
            device: "vda1; reboot".into(),
            via: ReportVia::Installer,
        })
        .then_refused("is not a root device");
}

// ---- root devices ----

#[test]
fn rootdev_set_and_rm() {
    let s = given(vec![registered(1), registered(2)]);
    let st = s
        .when(Command::SetRootDevice {
            macs: vec![mac(1), mac(2)],
            device: "/dev/sda1".into(),
        })
        .then_accepted();
    assert!(
        st.machines()
            .all(|m| m.rootdev.as_deref() == Some("/dev/sda1"))
    );
    let s = Scenario { state: st };
    let st = s
        .when(Command::RemoveRootDevice { macs: vec![mac(1)] })
        .then_expect(vec![Event::RootDeviceRemoved { mac: mac(1) }]);
    assert!(st.machine(&mac(1)).unwrap().rootdev.is_none());
    s.when(Command::SetRootDevice {
        macs: vec![mac(1)],
        device: "sda1".into(),
    })
    .then_refused("is not a root device");
}

// ---- profiles ----

fn memtest() -> Profile {
    Profile {
        name: "memtest".into(),
        kind: ProfileKind::Custom,
        kernel: "memtest86+.bin".into(),
        initrd: vec![],
        args: String::new(),
        answer: None,
        network_console: false,
        preseed: None,
    }
}

#[test]
fn profiles_define_replace_and_remove() {
    let s = given(vec![]);
    let st = s
        .when(Command::DefineProfile {
            profile: memtest(),
            replace: false,
        })
        .then_accepted();
    assert_eq!(st.profile("memtest").unwrap().kind, ProfileKind::Custom);
    let mut s = Scenario { state: st };
    s.when(Command::DefineProfile {
        profile: memtest(),
        replace: false,
    })
    .then_refused("--replace");
    s.fold(vec![
        registered(1),
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("custom:memtest")),
            once: false,
        },
    ]);
    s.when(Command::RemoveProfile {
        name: "memtest".into(),
    })
    .then_refused("in use by 1 machine override(s)");
    s.when(Command::DefineProfile {
        profile: Profile {
            kind: ProfileKind::Ltsp,
            ..memtest()
        },
        replace: true,
    })
    .then_refused("in use");
    s.when(Command::DefineProfile {
        profile: Profile {
            args: "x\ny".into(),
            ..memtest()
        },
        replace: true,
    })
    .then_refused("not allowed");
    s.when(Command::RemoveProfile {
        name: "nope".into(),
    })
    .then_refused("no profile named \"nope\"");
    s.when(Command::DefineProfile {
        profile: Profile {
            kind: ProfileKind::Install,
            name: "inst".into(),
            ..memtest()
        },
        replace: false,
    })
    .then_refused("needs --answer");
}

#[test]
fn init_records_the_default_profiles_and_no_site_key() {
    let s = given(vec![]);
    assert_eq!(s.state.site_key(), None, "the site key is never in the log");
    assert_eq!(
        decide(&State::new(), Command::Init).unwrap()[0],
        Event::StoreCreated {
            site_key: String::new()
        }
    );
    let names: Vec<&str> = s.state.profiles().map(|p| p.name.as_str()).collect();
    for n in ["default", "ltsp", "save-image", "restore-image", "nfsroot"] {
        assert!(names.contains(&n), "{names:?}");
    }
}

#[test]
fn replaying_the_same_events_gives_the_same_state() {
    let events = vec![
        group("lab", "ltsp"),
        registered(1),
        Event::MachineAssigned {
            mac: mac(1),
            group: "lab".into(),
        },
        Event::MachinePolicySet {
            mac: mac(1),
            policy: Some(pol("install")),
            once: true,
        },
        Event::BootEntryUsed {
            mac: mac(1),
            file: "x".into(),
            ip: None,
        },
    ];
    let a = given(events.clone()).state;
    let b = given(events).state;
    assert_eq!(a, b);
}
