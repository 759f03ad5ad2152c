//! The rules for names chosen by users: accounts, tags, log streams and
//! segment names (docs/FORMAT.md, "Snapshots" and "Log segments").

use crate::error::{Error, Result};

/// Check an account name: 1 to 128 characters from `A-Z a-z 0-9 . _ - @ +`,
/// not starting with `.` or `-`.
pub fn validate_account(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "account name",
            format!(
                "{name:?} must be 1-128 characters of A-Z a-z 0-9 . _ - @ +, not starting with . or -"
            ),
        ))
    }
}

/// Check a tag: 1 to 128 printable characters without commas or whitespace.
pub fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != ',');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "tag",
            format!("{tag:?} must be 1-128 printable characters without spaces or commas"),
        ))
    }
}

/// Check a stream name: the same alphabet as accounts.
pub fn validate_stream(stream: &str) -> Result<()> {
    validate_account(stream).map_err(|_| {
        Error::invalid(
            "stream name",
            format!("{stream:?} must be 1-128 characters of A-Z a-z 0-9 . _ - @ +, not starting with . or -"),
        )
    })
}

/// Check a segment name: one path component of printable characters.
pub fn validate_segment_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| !c.is_control() && c != '/' && c != '\\');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "segment name",
            format!("{name:?} must be one file name (no '/', at most 255 bytes)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        for ok in ["default", "mail.example.org", "user@example.org", "a_b-c+1"] {
            validate_account(ok).unwrap();
        }
        for bad in ["", ".hidden", "-x", "a b", "a/b", &"x".repeat(129)] {
            assert!(validate_account(bad).is_err(), "{bad}");
        }
        validate_tag("legal-hold").unwrap();
        assert!(validate_tag("a,b").is_err());
        assert!(validate_tag("").is_err());
        validate_stream("main").unwrap();
        assert!(validate_stream("a b").is_err());
        validate_segment_name("000000010000000000000003").unwrap();
        for bad in ["", ".", "..", "a/b", &"x".repeat(256)] {
            assert!(validate_segment_name(bad).is_err(), "{bad}");
        }
    }
}
