//! Pagination of newest-first listings (contract §4): `pageSize` and
//! `pageToken` in, `nextPageToken` and `totalSize` out. Tokens are the standard
//! padded base64 of the next page's first item's creation sequence number.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};
use crate::storage::PageRequest;

/// Parses the query parameters of a paginated listing.
pub fn parse(page_size: Option<&str>, page_token: Option<&str>) -> Result<PageRequest> {
    let size = match page_size.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let n: i64 = s.parse().map_err(|_| Error::InvalidPageSize)?;
            // Zero or negative means "no limit".
            usize::try_from(n).ok().filter(|n| *n > 0)
        }
    };
    let from = match page_token.filter(|s| !s.is_empty()) {
        None => None,
        Some(token) => Some(decode_token(token).ok_or(Error::InvalidPageToken)?),
    };
    Ok(PageRequest {
        size,
        from,
        acl_member: None,
    })
}

fn decode_token(token: &str) -> Option<u64> {
    let bytes = STANDARD.decode(token).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The `nextPageToken` for a page whose successor starts at `next`.
pub fn token(next: Option<u64>) -> String {
    next.map(|seq| STANDARD.encode(seq.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tokens() {
        assert_eq!(parse(None, None).unwrap(), PageRequest::default());
        assert_eq!(parse(Some("0"), None).unwrap().size, None);
        assert_eq!(parse(Some("-3"), None).unwrap().size, None);
        assert_eq!(parse(Some("2"), None).unwrap().size, Some(2));
        assert!(matches!(
            parse(Some("x"), None),
            Err(Error::InvalidPageSize)
        ));
        assert!(matches!(
            parse(Some("1.5"), None),
            Err(Error::InvalidPageSize)
        ));
        assert_eq!(token(Some(1)), "MQ==");
        assert_eq!(parse(None, Some("MQ==")).unwrap().from, Some(1));
        for bad in ["MQ", "!!!", "eA==", "LTE="] {
            assert!(
                matches!(parse(None, Some(bad)), Err(Error::InvalidPageToken)),
                "{bad}"
            );
        }
        assert_eq!(token(None), "");
    }
}
