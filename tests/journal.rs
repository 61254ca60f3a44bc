//! The journal written by the first release (`fixtures/journal-v1.jsonl`) must decode and fold
//! for good: the schema only grows.

use nmt_projections::{Envelope, Policy, State};

#[test]
fn the_first_release_journal_still_decodes_and_folds() {
    let text = include_str!("../fixtures/journal-v1.jsonl");
    let mut state = State::new();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let env =
            Envelope::from_json(line.as_bytes()).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        assert_eq!(env.seq, i as u64 + 1);
        state.apply(&env);
        n += 1;
    }
    assert!(n > 20, "the fixture covers every event kind");
    let lab07 = state.machine_by_name("lab07").expect("lab07");
    assert_eq!(lab07.group, "lab");
    assert!(
        lab07.policy.is_none(),
        "its one-shot re-image was spent by the boot"
    );
    assert_eq!(
        lab07.last_boot.as_ref().map(|b| b.policy.to_string()),
        Some("restore-image:lab".to_string())
    );
    assert_eq!(state.group_policy("lab"), Policy::LocalBoot);
    let installed = state
        .machines()
        .find(|m| m.installed.is_some())
        .expect("an installed machine");
    assert_eq!(installed.group, "localboot");
    assert_eq!(installed.rootdev.as_deref(), Some("/dev/sda1"));
}
