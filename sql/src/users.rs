//! Users and the one privilege shale checks, ADMIN.
//!
//! A user is a manifest meta record `user/<name>` holding a small JSON [`UserRecord`], so users
//! commit, persist and snapshot with everything else. `root` always exists and always has ADMIN,
//! whether or not it has a record; it cannot be dropped or lose ADMIN.
//!
//! Passwords are accepted by `CREATE USER ... IDENTIFIED BY` for compatibility but shale is an
//! embedded store with no network listener: a session is opened by name, and only whether a
//! password was set is recorded.

use serde::{Deserialize, Serialize};
use shale_engine::{Engine, Snapshot};

use crate::error::{Result, SqlError};

/// The built-in administrator.
pub const ROOT: &str = "root";

/// The privilege the backup family and user management need.
pub const ADMIN: &str = "ADMIN";

/// What is stored for a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Holds the ADMIN privilege.
    pub admin: bool,
    /// `IDENTIFIED BY` was given.
    #[serde(default)]
    pub password_set: bool,
}

fn meta_key(name: &str) -> String {
    format!("user/{name}")
}

/// The user's record as of `snapshot`; `None` if there is no such user.
pub fn lookup(snapshot: &Snapshot, name: &str) -> Result<Option<UserRecord>> {
    match snapshot.meta.get(&meta_key(name)) {
        Some(json) => serde_json::from_str(json)
            .map(Some)
            .map_err(|e| SqlError::Invalid(format!("damaged record of user '{name}': {e}"))),
        None if name == ROOT => Ok(Some(UserRecord {
            admin: true,
            password_set: false,
        })),
        None => Ok(None),
    }
}

/// Whether `name` (an existing user) holds ADMIN now.
pub fn is_admin(engine: &Engine, name: &str) -> Result<bool> {
    if name == ROOT {
        return Ok(true);
    }
    Ok(lookup(&engine.snapshot(), name)?.is_some_and(|u| u.admin))
}

/// Every user, by name, with root first.
pub fn list(snapshot: &Snapshot) -> Result<Vec<(String, UserRecord)>> {
    let mut users = vec![(
        ROOT.to_string(),
        lookup(snapshot, ROOT)?.unwrap_or_default(),
    )];
    for key in snapshot.meta.keys() {
        if let Some(name) = key.strip_prefix("user/")
            && name != ROOT
            && let Some(record) = lookup(snapshot, name)?
        {
            users.push((name.to_string(), record));
        }
    }
    Ok(users)
}

/// Writes a user's record.
pub fn store(engine: &Engine, name: &str, record: &UserRecord) -> Result<()> {
    let json = serde_json::to_string(record)
        .map_err(|e| SqlError::Invalid(format!("cannot encode user '{name}': {e}")))?;
    engine.put_meta(&meta_key(name), Some(json))?;
    Ok(())
}

/// Removes a user's record.
pub fn remove(engine: &Engine, name: &str) -> Result<()> {
    engine.put_meta(&meta_key(name), None)?;
    Ok(())
}

/// Whether a role name granted or revoked means ADMIN. StarRocks' built-in `root`,
/// `db_admin`, `cluster_admin` and `user_admin` roles all map to it.
pub fn is_admin_role(role: &str) -> bool {
    ["admin", "root", "db_admin", "cluster_admin", "user_admin"]
        .iter()
        .any(|r| r.eq_ignore_ascii_case(role))
}
