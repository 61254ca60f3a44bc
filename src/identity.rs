//! Who is acting: the Unix user behind a command, recorded as the actor of its events.

use nix::unistd::{Uid, User};

/// The caller's user name; under sudo, the user who ran sudo (`alice via sudo`).
pub fn current_actor() -> String {
    let uid = Uid::current();
    if uid.is_root()
        && let Ok(u) = std::env::var("SUDO_USER")
        && !u.is_empty()
        && u.bytes().all(|b| b.is_ascii_graphic())
    {
        return format!("{u} via sudo");
    }
    user_name(uid.as_raw())
}

/// The name of a uid, or `uid:N` when it has none.
pub fn user_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => format!("uid:{uid}"),
    }
}
