//! Validation of the names users give to databases, tables, columns, partitions, repositories
//! and snapshots.
//!
//! The engine never builds a path from a name (its files are named by numeric ids), but the
//! backup repository does, and names travel through logs and shells. So one rule holds
//! everywhere: a name is 1 to [`NAME_LENGTH_MAX`] characters, each a Unicode letter or digit, `_`,
//! `-` or `$`, and it does not start with `-`. That refuses `..`, `/`, `\`, NUL, control
//! characters, spaces and lookalike punctuation such as `／` (U+FF0F) in one place.

use crate::error::{Error, Result};

/// The longest name, in characters.
pub const NAME_LENGTH_MAX: usize = 128;

/// Checks a name; `what` says what it names (for the error message).
pub fn validate(what: &'static str, name: &str) -> Result<()> {
    let shown = || name.chars().take(64).collect::<String>();
    if name.is_empty() {
        return Err(Error::InvalidName {
            name: shown(),
            reason: empty_reason(what),
        });
    }
    if name.chars().count() > NAME_LENGTH_MAX {
        return Err(Error::InvalidName {
            name: shown(),
            reason: "longer than 128 characters",
        });
    }
    if name.starts_with('-') {
        return Err(Error::InvalidName {
            name: shown(),
            reason: "must not start with '-'",
        });
    }
    if let Some(_bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '$')))
    {
        return Err(Error::InvalidName {
            name: shown(),
            reason: "only letters, digits, '_', '-' and '$' are allowed",
        });
    }
    Ok(())
}

fn empty_reason(what: &'static str) -> &'static str {
    match what {
        "database" => "database name is empty",
        "table" => "table name is empty",
        "partition" => "partition name is empty",
        "column" => "column name is empty",
        "repository" => "Repository is empty",
        "snapshot" => "snapshot name is empty",
        _ => "name is empty",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused() {
        let long = "a".repeat(10_000);
        for bad in [
            "", "..", ".", "a/b", "a\\b", "a\0b", "a\nb", "a b", "-x", "／etc", "a.b", &long,
        ] {
            assert!(
                matches!(validate("table", bad), Err(Error::InvalidName { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn ordinary_names_pass() {
        for good in [
            "sales",
            "p20250101",
            "t_1",
            "日本",
            "x$y",
            "a-b",
            &"a".repeat(128),
        ] {
            validate("table", good).unwrap();
        }
    }
}
