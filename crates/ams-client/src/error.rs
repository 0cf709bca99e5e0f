//! [`Error`]: what a call can fail with, and which failures are worth a retry.

use ams_types::wire;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an AMS error envelope (or a non-2xx status).
    #[error("{message} (HTTP {code} {status})")]
    Api {
        /// HTTP status code.
        code: u16,
        /// The AMS message (`Topic doesn't exist`), or for a body that is not
        /// an envelope, that body's text or the status's reason phrase.
        message: String,
        /// The AMS status word (`NOT_FOUND`), or for a body that is not an
        /// envelope, the reason phrase in capitals (`SERVICE_UNAVAILABLE`).
        status: String,
    },
    /// Could not reach the server, or the connection failed (after retries).
    #[error("connection failed: {0}")]
    Connection(String),
    /// The request timed out (after retries).
    #[error("the request timed out")]
    Timeout,
    /// A bad URL, CA file or argument.
    #[error("{0}")]
    Config(String),
    /// The answer was not what the API documents.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl Error {
    /// The HTTP status of an [`Error::Api`].
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether an idempotent call that failed this way is tried again:
    /// connection failures, timeouts and 408/502/503/504 (as
    /// argo-ams-library does).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connection(_) | Error::Timeout => true,
            Error::Api { code, .. } => matches!(code, 408 | 502 | 503 | 504),
            Error::Config(_) | Error::Decode(_) => false,
        }
    }

    /// The error of a non-2xx answer: the AMS envelope if the body is one,
    /// else the body's text (or the reason phrase) with the status.
    pub(crate) fn from_answer(code: u16, body: &[u8]) -> Error {
        if let Ok(envelope) = serde_json::from_slice::<wire::ErrorEnvelope>(body) {
            return Error::Api {
                code: envelope.error.code,
                message: envelope.error.message,
                status: envelope.error.status,
            };
        }
        let reason = reqwest::StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Unknown Status");
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() || text.len() > 1024 {
            reason.to_owned()
        } else {
            text.to_owned()
        };
        Error::Api {
            code,
            message,
            status: reason.to_ascii_uppercase().replace([' ', '-'], "_"),
        }
    }

    /// A transport failure, without the request's URL (a `users:byToken`
    /// path holds a token, and tokens are never shown).
    pub(crate) fn from_reqwest(e: reqwest::Error) -> Error {
        if e.is_timeout() {
            return Error::Timeout;
        }
        if e.is_builder() {
            return Error::Config(chain(&e.without_url()));
        }
        if e.is_decode() {
            return Error::Decode(chain(&e.without_url()));
        }
        Error::Connection(chain(&e.without_url()))
    }
}

/// `e` with its causes on one line (reqwest's own text stops at the top).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// The result of a call.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_and_plain_bodies() {
        let e = Error::from_answer(
            404,
            br#"{"error":{"code":404,"message":"Topic doesn't exist","status":"NOT_FOUND"}}"#,
        );
        assert!(matches!(
            &e,
            Error::Api { code: 404, message, status }
                if message == "Topic doesn't exist" && status == "NOT_FOUND"
        ));
        assert_eq!(e.code(), Some(404));
        assert_eq!(e.to_string(), "Topic doesn't exist (HTTP 404 NOT_FOUND)");

        let e = Error::from_answer(404, b"404 page not found\n");
        assert!(matches!(
            &e,
            Error::Api { code: 404, message, status }
                if message == "404 page not found" && status == "NOT_FOUND"
        ));
        let e = Error::from_answer(503, b"");
        assert!(matches!(
            &e,
            Error::Api { code: 503, message, status }
                if message == "Service Unavailable" && status == "SERVICE_UNAVAILABLE"
        ));
        assert_eq!(Error::Timeout.code(), None);
    }

    #[test]
    fn retry_classification() {
        let api = |code| Error::from_answer(code, b"");
        for code in [408, 502, 503, 504] {
            assert!(api(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 405, 409, 413, 500] {
            assert!(!api(code).is_transient(), "{code}");
        }
        assert!(Error::Timeout.is_transient());
        assert!(Error::Connection("refused".into()).is_transient());
        assert!(!Error::Decode("x".into()).is_transient());
        assert!(!Error::Config("x".into()).is_transient());
    }
}
