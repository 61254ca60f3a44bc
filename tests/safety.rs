//! Nothing lost, nothing wiped by surprise: regression tests named after the items of the
//! admin-safety review.

use crate::util::Nmt;

#[test]
fn item_7_a_list_of_groups_sets_each_groups_policy() {
    let t = Nmt::new();
    t.ok(&["group", "add", "physics", "--policy", "localboot"]);
    t.ok(&["group", "add", "lab", "--policy", "localboot"]);
    for i in 1..=4 {
        let g = if i <= 2 { "physics" } else { "lab" };
        t.ok(&[
            "machine",
            "add",
            &format!("52:54:00:00:00:0{i}"),
            "--group",
            g,
        ]);
    }
    let out = t.ok(&["policy", "@physics,@lab", "ltsp"]);
    assert!(out.contains("physics") && out.contains("lab"), "{out}");
    let groups = t.json(&["group", "list"]);
    for g in ["physics", "lab"] {
        let row = groups
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"] == g)
            .unwrap();
        assert_eq!(row["policy"], "ltsp", "{groups}");
    }
    // No machine got a policy of its own: a later group policy still reaches them all.
    for m in t.json(&["machines"]).as_array().unwrap() {
        assert_eq!(m["policy_origin"], "group", "{m}");
    }
    t.ok(&["policy", "@physics", "localboot"]);
    let physics = t.json(&["machines", "@physics"]);
    for m in physics.as_array().unwrap() {
        assert_eq!(m["effective_policy"], "localboot", "{m}");
    }
    // One unknown group refuses the whole list: nothing is set.
    let before = t.ok(&["journal", "export"]).lines().count();
    let no = t.fails(&["policy", "@lab,@nosuch", "install"]);
    assert!(no.contains("nosuch"), "{no}");
    assert_eq!(t.ok(&["journal", "export"]).lines().count(), before);
}
