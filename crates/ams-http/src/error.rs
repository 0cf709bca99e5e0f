//! The one place where domain errors become HTTP: status code, the exact AMS
//! message and status word (contract §2.2), in an exhaustive `match`.

use ams_core::Error;
use ams_core::error::Body;
use ams_types::json::{Layout, to_vec};
use ams_types::wire::{ErrorBody, ErrorEnvelope};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// Where an error was raised: the original writes pipeline errors (name
/// validation, authentication, authorization) without a JSON content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Name validation or auth (`text/plain; charset=utf-8`, sniffed by Go).
    Pipeline,
    /// Inside a route (`application/json; charset=utf-8`).
    Handler,
}

/// Status, message and status word of an error.
pub fn describe(err: &Error) -> (StatusCode, String, &'static str) {
    use StatusCode as S;
    let (code, word) = match err {
        Error::InvalidName(_)
        | Error::InvalidAckParameter
        | Error::InvalidAckId
        | Error::InvalidPageSize
        | Error::InvalidPageToken
        | Error::OffsetOutOfBounds
        | Error::InvalidZuluTime
        | Error::InvalidTopicReference
        | Error::WrongSchemaName
        | Error::ProjectNameTaken
        | Error::InvalidRole(_)
        | Error::InvalidProject(_)
        | Error::DuplicateProject(_)
        | Error::UserNameTaken
        | Error::InvalidPushEndpoint
        | Error::InvalidRetryPolicy
        | Error::InvalidBackoff
        | Error::InvalidAuthorizationType
        | Error::InvalidPushType
        | Error::MattermostUrlEmpty
        | Error::InvalidDeadLetterPolicy(_)
        | Error::InvalidSchemaType
        | Error::InvalidStartDate
        | Error::InvalidEndDate
        | Error::StartAfterEnd
        | Error::InvalidStreamParameter(_)
        | Error::SchemaValidation(_) => (S::BAD_REQUEST, "INVALID_ARGUMENT"),
        Error::InvalidBody(Body::Request) => (S::BAD_REQUEST, "BAD_REQUEST"),
        Error::InvalidBody(_) => (S::BAD_REQUEST, "INVALID_ARGUMENT"),
        Error::Unauthorized | Error::VerificationFailed(_) => (S::UNAUTHORIZED, "UNAUTHORIZED"),
        Error::Forbidden | Error::NotAMember => (S::FORBIDDEN, "FORBIDDEN"),
        Error::ProjectMissing
        | Error::TopicNotFound
        | Error::SubscriptionNotFound
        | Error::SchemaNotFound
        | Error::UserNotFound
        | Error::RegistrationNotFound
        | Error::ProjectUuidMissing
        | Error::ReportProjectMissing(_)
        | Error::UsersMissing(_) => (S::NOT_FOUND, "NOT_FOUND"),
        Error::AckTimeout => (S::REQUEST_TIMEOUT, "TIMEOUT"),
        Error::ProjectExists
        | Error::TopicExists
        | Error::SubscriptionExists
        | Error::UserExists
        | Error::SchemaExists => (S::CONFLICT, "ALREADY_EXISTS"),
        Error::PushDisabled
        | Error::SubscriptionTopicMissing
        | Error::TimestampOutOfBounds
        | Error::AlreadyMember
        | Error::NotHttpPush
        | Error::AlreadyVerified => (S::CONFLICT, "CONFLICT"),
        Error::MessageTooLarge | Error::BodyTooLarge => (S::PAYLOAD_TOO_LARGE, "INVALID_ARGUMENT"),
        Error::NoAckPending
        | Error::WrongAck
        | Error::PushUnavailable
        | Error::SchemaUnloadable
        | Error::Backend(_) => (S::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR"),
    };
    let message = match err {
        Error::InvalidBody(body) => match body {
            Body::Message => "Invalid Message Arguments",
            Body::PullParameters => "Invalid Pull Parameters Arguments",
            Body::Subscription => "Invalid Subscription Arguments",
            Body::Offset => "Invalid Offset Arguments",
            Body::Project => "Invalid Project Arguments",
            Body::User => "Invalid User Arguments",
            Body::TopicAcl => "Invalid Topic ACL Arguments",
            Body::SubscriptionAcl => "Invalid Subscription ACL Arguments",
            Body::AckDeadline => {
                "Invalid ackDeadlineSeconds(needs value between 0 and 600) Arguments"
            }
            Body::Request => "Invalid Request Body",
            Body::Schema => "Invalid Schema Arguments",
            Body::SchemaPayload => "Invalid Schema Payload Arguments",
        }
        .to_owned(),
        // Backend details go to the log, never to the client.
        Error::Backend(_) => "Backend Error".to_owned(),
        other => other.to_string(),
    };
    (code, message, word)
}

/// Renders the AMS error envelope.
pub fn response(err: &Error, stage: Stage) -> Response {
    let (code, message, word) = describe(err);
    if let Error::Backend(cause) = err {
        tracing::error!(error = %cause, "backend failure");
    }
    let body = to_vec(
        &ErrorEnvelope {
            error: ErrorBody {
                code: code.as_u16(),
                message,
                status: word.to_owned(),
            },
        },
        Layout::Indent3,
    );
    let content_type = match stage {
        Stage::Pipeline => "text/plain; charset=utf-8",
        Stage::Handler => "application/json; charset=utf-8",
    };
    let mut resp = (code, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_bytes() {
        let resp = response(&Error::TopicNotFound, Stage::Handler);
        assert_eq!(resp.status(), 404);
        let (code, msg, word) = describe(&Error::InvalidBody(Body::Request));
        assert_eq!(
            (code.as_u16(), msg.as_str(), word),
            (400, "Invalid Request Body", "BAD_REQUEST")
        );
        let (code, msg, word) = describe(&Error::MessageTooLarge);
        assert_eq!(
            (code.as_u16(), msg.as_str(), word),
            (413, "Message size is too large", "INVALID_ARGUMENT")
        );
        let (_, msg, _) = describe(&Error::InvalidName("subscription"));
        assert_eq!(msg, "Invalid subscription name");
    }
}
