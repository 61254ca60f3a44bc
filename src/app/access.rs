//! Who may do what through the daemon: root, the daemon's own user and the configured nmt
//! admins may do everything; a group's administrators may only switch that group's policy;
//! everyone who can reach the socket may read. What each action needs is
//! [`Action::right`]'s decision, made once per action in the application layer.

use nix::unistd::{Group, Uid, User};

use crate::app::{Action, Right};
pub use crate::config::AccessConfig;

/// A caller, from the socket's peer credentials.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The caller's uid.
    pub uid: u32,
    /// Its user name (or `uid:N`).
    pub name: String,
}

impl Caller {
    /// The caller with this uid.
    pub fn from_uid(uid: u32) -> Caller {
        Caller {
            uid,
            name: crate::identity::user_name(uid),
        }
    }
}

fn member(entry: &str, caller: &Caller) -> bool {
    match entry.strip_prefix('@') {
        None => entry == caller.name,
        Some(group) => {
            let Ok(Some(g)) = Group::from_name(group) else {
                return false;
            };
            if g.mem.contains(&caller.name) {
                return true;
            }
            matches!(User::from_uid(Uid::from_raw(caller.uid)), Ok(Some(u)) if u.gid == g.gid)
        }
    }
}

impl AccessConfig {
    /// Whether `caller` may perform `action`; the refusal says why and what to do.
    pub fn check(&self, caller: &Caller, action: &Action) -> Result<(), String> {
        self.allows(caller, &action.right())
    }

    /// Whether `caller` has `right` (which may look up Unix groups: it can block).
    pub fn allows(&self, caller: &Caller, right: &Right) -> Result<(), String> {
        if caller.uid == 0
            || caller.uid == Uid::current().as_raw()
            || self.admins.iter().any(|e| member(e, caller))
            || *right == Right::Read
        {
            return Ok(());
        }
        let mine: Vec<&str> = self
            .groups
            .iter()
            .filter(|(_, who)| who.iter().any(|e| member(e, caller)))
            .map(|(g, _)| g.as_str())
            .collect();
        if let Right::GroupPolicy(groups) = right
            && groups.iter().all(|g| mine.contains(&g.as_str()))
        {
            return Ok(());
        }
        Err(if mine.is_empty() {
            format!(
                "{} may look but not change anything here; ask an nmt admin (root, or one \
                 listed under [access] admins in nmt.toml)",
                caller.name
            )
        } else {
            format!(
                "{} may only set the policy of group(s) {} (e.g. `nmt policy @{} ltsp`); ask an \
                 nmt admin for anything else",
                caller.name,
                mine.join(", "),
                mine[0]
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(name: &str) -> Caller {
        Caller {
            uid: 54321,
            name: name.into(),
        }
    }

    fn policy(range: &str) -> Action {
        Action::Policy {
            range: range.into(),
            policy: "ltsp".into(),
            once: false,
            members: false,
            reboot: false,
        }
    }

    #[test]
    fn reinhard_may_switch_his_group_and_nothing_else() {
        let access = AccessConfig {
            admins: vec!["kathrin".into()],
            groups: [("physics".to_string(), vec!["reinhard".to_string()])].into(),
        };
        let r = caller("reinhard");
        assert!(access.check(&r, &policy("@physics")).is_ok());
        let no = access.check(&r, &policy("@chemistry")).unwrap_err();
        assert!(
            no.contains("may only set the policy of group(s) physics"),
            "{no}"
        );
        assert!(access.check(&r, &policy("node001")).is_err());
        // A list of groups needs every one of them.
        assert!(access.check(&r, &policy("@physics,@chemistry")).is_err());
        assert!(access.check(&r, &policy("@physics,@physics")).is_ok());
        let members = Action::Policy {
            range: "@physics".into(),
            policy: "ltsp".into(),
            once: false,
            members: true,
            reboot: false,
        };
        assert!(access.check(&r, &members).is_err(), "--members is not his");
        assert!(
            access
                .check(
                    &r,
                    &Action::GroupRm {
                        group: "physics".into(),
                        force: true,
                        to: None,
                    }
                )
                .is_err()
        );
        assert!(
            access
                .check(
                    &r,
                    &Action::Machines {
                        range: None,
                        at: None
                    }
                )
                .is_ok()
        );
        assert!(
            access
                .check(&caller("kathrin"), &policy("@chemistry"))
                .is_ok()
        );
        let stranger = access
            .check(&caller("eve"), &policy("@physics"))
            .unwrap_err();
        assert!(stranger.contains("may look but not change"), "{stranger}");
        assert!(
            access
                .check(
                    &Caller {
                        uid: 0,
                        name: "root".into()
                    },
                    &policy("@x")
                )
                .is_ok()
        );
    }
}
