//! The domain's errors. Each variant is one AMS outcome; the HTTP edge turns
//! them into status codes and the exact messages of contract §2.2 in one
//! exhaustive `match`, so no error can silently become the wrong status.

use crate::storage::StoreError;

/// Which body failed to decode; selects the `Invalid <Resource> Arguments` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `Invalid Message Arguments`.
    Message,
    /// `Invalid Pull Parameters Arguments`.
    PullParameters,
    /// `Invalid Subscription Arguments`.
    Subscription,
    /// `Invalid Offset Arguments`.
    Offset,
    /// `Invalid Project Arguments`.
    Project,
    /// `Invalid ackDeadlineSeconds(needs value between 0 and 600) Arguments`.
    AckDeadline,
    /// `Invalid User Arguments`.
    User,
    /// `Invalid Topic ACL Arguments`.
    TopicAcl,
    /// `Invalid Subscription ACL Arguments`.
    SubscriptionAcl,
    /// `Invalid Request Body` (status `BAD_REQUEST`).
    Request,
    /// `Invalid Schema Arguments`.
    Schema,
    /// `Invalid Schema Payload Arguments`.
    SchemaPayload,
}

/// An AMS error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path variable fails `^[a-zA-Z0-9_-]+$`; carries the variable's name.
    #[error("Invalid {0} name")]
    InvalidName(&'static str),
    /// No token, an unknown token, or no roles here.
    #[error("Unauthorized")]
    Unauthorized,
    /// Roles do not allow the route.
    #[error("Access to this resource is forbidden")]
    Forbidden,
    /// The URL's project does not exist (auth layer wording).
    #[error("project doesn't exist")]
    ProjectMissing,
    /// Topic not found.
    #[error("Topic doesn't exist")]
    TopicNotFound,
    /// Subscription not found.
    #[error("Subscription doesn't exist")]
    SubscriptionNotFound,
    /// Schema not found.
    #[error("Schema doesn't exist")]
    SchemaNotFound,
    /// User not found (or not a member, on member routes).
    #[error("User doesn't exist")]
    UserNotFound,
    /// Registration not found (or not pending, where it must be).
    #[error("User registration doesn't exist")]
    RegistrationNotFound,
    /// `?project=` names no project (handler-level wording).
    #[error("ProjectUUID doesn't exist")]
    ProjectUuidMissing,
    /// `:modifyAcl` names users that are not members of the project.
    #[error("User(s): {} do not exist", .0.join(", "))]
    UsersMissing(Vec<String>),
    /// Create clash.
    #[error("User already exists")]
    UserExists,
    /// A role name outside the accepted set.
    #[error("invalid role: {0}")]
    InvalidRole(String),
    /// A membership naming an unknown project.
    #[error("invalid project: {0}")]
    InvalidProject(String),
    /// A project named twice in one body.
    #[error("duplicate reference of project {0}")]
    DuplicateProject(String),
    /// User rename to a taken name.
    #[error("invalid user name change, name already exists")]
    UserNameTaken,
    /// Member update/remove of a user who is not a member.
    #[error("Access to this resource is forbidden. User is not a member of the project")]
    NotAMember,
    /// Member `:add` of a user who already is one.
    #[error("User is already a member of the project")]
    AlreadyMember,
    /// Create clash.
    #[error("Project already exists")]
    ProjectExists,
    /// Create clash.
    #[error("Topic already exists")]
    TopicExists,
    /// Create clash.
    #[error("Subscription already exists")]
    SubscriptionExists,
    /// A body did not decode.
    #[error("invalid body: {0:?}")]
    InvalidBody(Body),
    /// Acknowledge body did not decode.
    #[error("Invalid ack parameter")]
    InvalidAckParameter,
    /// Missing or malformed ack ids.
    #[error("Invalid ack id")]
    InvalidAckId,
    /// `pageSize` is not an integer.
    #[error("Invalid page size")]
    InvalidPageSize,
    /// `pageToken` is not a cursor.
    #[error("Invalid page token")]
    InvalidPageToken,
    /// `:modifyOffset` outside `[min, max]`.
    #[error("Offset out of bounds")]
    OffsetOutOfBounds,
    /// `:timeToOffset` time format.
    #[error("Time is not in valid Zulu format.")]
    InvalidZuluTime,
    /// Subscription create: `topic` is not `projects/{p}/topics/{t}`.
    #[error("Invalid Topic name")]
    InvalidTopicReference,
    /// Schema reference is not `projects/{p}/schemas/{s}`.
    #[error("wrong schema name declaration")]
    WrongSchemaName,
    /// Project rename to a taken name.
    #[error("invalid project name change, name already exists")]
    ProjectNameTaken,
    /// A message over the size limit.
    #[error("Message size is too large")]
    MessageTooLarge,
    /// A request body over the server's body limit.
    #[error("Request body is too large")]
    BodyTooLarge,
    /// Push operation while push is disabled.
    #[error("Push functionality is currently disabled")]
    PushDisabled,
    /// Push operation while the configured push worker user does not exist.
    #[error("Push functionality is currently unavailable")]
    PushUnavailable,
    /// `pushEndpoint` is not an absolute https (or, when allowed, http) URL.
    #[error("Push endpoint should be addressed by a valid https url")]
    InvalidPushEndpoint,
    /// Retry policy type outside `linear`, `slowstart` (and our `exponential`).
    #[error("Retry policy can only be of 'linear' or 'slowstart' type")]
    InvalidRetryPolicy,
    /// Extension: bad `minBackoff`/`maxBackoff` of an `exponential` policy.
    #[error(
        "Retry policy of type 'exponential' needs 0 < minBackoff <= maxBackoff <= 86400000 (milliseconds)"
    )]
    InvalidBackoff,
    /// Authorization type outside `autogen`, `disabled`.
    #[error("Authorization header type can only be of 'autogen' or 'disabled' type")]
    InvalidAuthorizationType,
    /// Push type outside `http_endpoint`, `mattermost`.
    #[error("Push configuration type can only be of 'http_endpoint' or 'mattermost'")]
    InvalidPushType,
    /// Mattermost push without a webhook.
    #[error("Field mattermostUrl cannot be empty")]
    MattermostUrlEmpty,
    /// Extension: a malformed `deadLetterPolicy`; carries the reason.
    #[error("Invalid deadLetterPolicy: {0}")]
    InvalidDeadLetterPolicy(&'static str),
    /// `:verifyPushEndpoint` failed; carries the reason (no space after the dot).
    #[error("Endpoint verification failed.{0}")]
    VerificationFailed(String),
    /// `:verifyPushEndpoint` of a pull or mattermost subscription.
    #[error("Subscription is not in http push mode")]
    NotHttpPush,
    /// `:verifyPushEndpoint` of a verified endpoint.
    #[error("Push endpoint is already verified")]
    AlreadyVerified,
    /// Create clash.
    #[error("Schema already exists")]
    SchemaExists,
    /// Schema type outside `json`, `avro`.
    #[error("Schema type can only be 'json' or 'avro'")]
    InvalidSchemaType,
    /// A schema that does not compile, or a message it refuses; carries the
    /// validator's text (with the message index where there is one).
    #[error("{0}")]
    SchemaValidation(String),
    /// A topic's stored schema cannot be loaded.
    #[error("Could not load schema for topic")]
    SchemaUnloadable,
    /// A report's `start_date` is not `YYYY-MM-DD`.
    #[error("Start date is not in valid format")]
    InvalidStartDate,
    /// A report's `end_date` is not `YYYY-MM-DD`.
    #[error("End date is not in valid format")]
    InvalidEndDate,
    /// A report window that ends before it starts.
    #[error("Start date cannot be after the end date")]
    StartAfterEnd,
    /// A report's `projects=` names an unknown project.
    #[error("Project {0} doesn't exist")]
    ReportProjectMissing(String),
    /// Extension: a stream parameter out of range; carries the rule.
    #[error("Invalid stream parameter: {0}")]
    InvalidStreamParameter(&'static str),
    /// Pull from a subscription whose topic was deleted.
    #[error("Subscription's topic doesn't exist")]
    SubscriptionTopicMissing,
    /// `:timeToOffset` past the newest message.
    #[error("Timestamp is out of bounds for the subscription's topic/partition")]
    TimestampOutOfBounds,
    /// Acknowledge with nothing pending (a 500 in AMS).
    #[error("no ack pending")]
    NoAckPending,
    /// Acknowledge of an id outside the pending range (a 500 in AMS).
    #[error("wrong ack")]
    WrongAck,
    /// Acknowledge after the deadline.
    #[error("ack timeout")]
    AckTimeout,
    /// The backend failed.
    #[error("backend: {0}")]
    Backend(#[from] StoreError),
}

/// Result of a domain operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
