//! Validated names of path variables (contract §0.2): `^[a-zA-Z0-9_-]+$`.

/// Whether `s` is a valid AMS resource name (`^[a-zA-Z0-9_-]+$`).
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("topic-1_A"));
        for bad in ["", "t1:foo", "a b", "a/b", "ü", "a.b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
