//! Request and response bodies of the AMS v1 API, field for field.
//!
//! Requests are decoded with [`crate::json::from_slice`] (Go's rules); every
//! field is optional with a zero default, as in Go, and type mismatches are
//! errors. Responses serialize in the key order and with the omission rules of
//! contract §3; render them with [`crate::json::to_vec`] and the route's layout.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod fast;

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

// ----------------------------------------------------------------- requests --

/// `POST /v1/projects/{p}` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ProjectCreate {
    /// Free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PUT /v1/projects/{p}` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ProjectUpdate {
    /// New name (not validated, as in the original).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PUT …/topics/{t}` (and `:attachSchema`) body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct TopicCreate {
    /// `projects/{p}/schemas/{s}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

/// `authorizationHeader` of a push configuration.
#[derive(Debug, Default, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct AuthorizationHeader {
    /// `autogen` or `disabled`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The header value (output only: input values are ignored).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// `retryPolicy` of a push configuration.
#[derive(Debug, Default, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RetryPolicy {
    /// `linear` or `slowstart`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Milliseconds between attempts (linear only).
    #[serde(skip_serializing_if = "is_zero")]
    pub period: i64,
    /// Extension, `exponential` only: first back-off after a failure (ms).
    #[serde(rename = "minBackoff", skip_serializing_if = "is_zero")]
    pub min_backoff: i64,
    /// Extension, `exponential` only: longest back-off (ms).
    #[serde(rename = "maxBackoff", skip_serializing_if = "is_zero")]
    pub max_backoff: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `pushConfig`, as received and as rendered (contract §3.4, §7.1). Every
/// subscription renders one; a pull subscription renders the zero value.
#[derive(Debug, Default, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PushConfig {
    /// `http_endpoint` or `mattermost`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Endpoint URL.
    #[serde(rename = "pushEndpoint")]
    pub push_endpoint: String,
    /// Messages per push request.
    #[serde(rename = "maxMessages")]
    pub max_messages: i64,
    /// Authorization header settings.
    #[serde(rename = "authorizationHeader")]
    pub authorization_header: AuthorizationHeader,
    /// Retry settings.
    #[serde(rename = "retryPolicy")]
    pub retry_policy: RetryPolicy,
    /// Endpoint ownership hash (output only).
    #[serde(rename = "verificationHash")]
    pub verification_hash: String,
    /// Whether the endpoint is verified (output only).
    pub verified: bool,
    /// Mattermost webhook.
    #[serde(rename = "mattermostUrl")]
    pub mattermost_url: String,
    /// Mattermost user name.
    #[serde(rename = "mattermostUsername")]
    pub mattermost_username: String,
    /// Mattermost channel.
    #[serde(rename = "mattermostChannel")]
    pub mattermost_channel: String,
    /// Decode `data` from base64 before delivery.
    #[serde(rename = "base64Decode")]
    pub base64_decode: bool,
}

impl PushConfig {
    /// A configuration whose input fields are all zero means "pull" (contract
    /// §7.1); output-only fields do not count.
    pub fn is_pull(&self) -> bool {
        self.kind.is_empty()
            && self.push_endpoint.is_empty()
            && self.max_messages == 0
            && self.authorization_header.kind.is_empty()
            && self.retry_policy.kind.is_empty()
            && self.retry_policy.period == 0
            && self.retry_policy.min_backoff == 0
            && self.retry_policy.max_backoff == 0
            && self.mattermost_url.is_empty()
            && self.mattermost_username.is_empty()
            && self.mattermost_channel.is_empty()
            && !self.base64_decode
    }
}

/// `PUT …/subscriptions/{s}` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SubscriptionCreate {
    /// `projects/{p}/topics/{t}` (no leading slash).
    pub topic: String,
    /// Ack deadline; absent or 0 means 10.
    #[serde(rename = "ackDeadlineSeconds", skip_serializing_if = "is_zero")]
    pub ack_deadline_seconds: i64,
    /// Push settings; absent or zero means pull.
    #[serde(rename = "pushConfig", skip_serializing_if = "Option::is_none")]
    pub push_config: Option<PushConfig>,
    /// Extension: where messages go after too many failed deliveries.
    #[serde(rename = "deadLetterPolicy", skip_serializing_if = "Option::is_none")]
    pub dead_letter_policy: Option<DeadLetterPolicy>,
}

/// `:modifyPushConfig` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ModifyPushConfig {
    /// The new settings; absent or zero turns the subscription into a pull one.
    #[serde(rename = "pushConfig")]
    pub push_config: PushConfig,
    /// Extension: absent keeps the stored policy, `{}` removes it.
    #[serde(rename = "deadLetterPolicy", skip_serializing_if = "Option::is_none")]
    pub dead_letter_policy: Option<DeadLetterPolicy>,
}

/// `deadLetterPolicy` (extension): after `maxDeliveryAttempts` failed
/// deliveries a message is published to `deadLetterTopic` and acknowledged.
#[derive(Debug, Default, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct DeadLetterPolicy {
    /// `projects/{p}/topics/{t}`, a topic of the subscription's project.
    #[serde(rename = "deadLetterTopic")]
    pub dead_letter_topic: String,
    /// Failed deliveries before a message is dead-lettered.
    #[serde(rename = "maxDeliveryAttempts")]
    pub max_delivery_attempts: i64,
}

impl DeadLetterPolicy {
    /// `{}`: no policy.
    pub fn is_empty(&self) -> bool {
        self.dead_letter_topic.is_empty() && self.max_delivery_attempts == 0
    }
}

/// `:modifyAckDeadline` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ModifyAckDeadline {
    /// New deadline, 0..=600.
    #[serde(rename = "ackDeadlineSeconds")]
    pub ack_deadline_seconds: i64,
}

/// `:modifyOffset` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ModifyOffset {
    /// New committed offset.
    pub offset: i64,
}

/// One message of a `:publish` body.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishMessage {
    /// Ignored if sent (the server assigns it), but must be a string.
    #[cfg_attr(feature = "openapi", schema(rename = "messageId"))]
    #[serde(skip_serializing_if = "Option::is_none", rename = "messageId")]
    pub message_id: Option<String>,
    /// String attributes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    /// Payload, opaque (base64 by convention).
    // Decoded by hand (`go_object!`): absent is empty, so not required.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub data: String,
    /// Ignored if sent, but must be a string.
    #[cfg_attr(feature = "openapi", schema(rename = "publishTime"))]
    #[serde(skip_serializing_if = "Option::is_none", rename = "publishTime")]
    pub publish_time: Option<String>,
}

/// `:publish` body.
///
/// Publish bodies are the big ones (up to the body limit, possibly millions of
/// messages), so they are decoded straight from the bytes with hand-written
/// Go-compatible rules (keys case-insensitive, last duplicate wins, `null` =
/// absent) instead of through an intermediate `serde_json::Value`, which costs
/// tens of times the body in memory.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Publish {
    /// The batch.
    // Absent or `null` is an empty batch (`go_object!`).
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub messages: Vec<PublishMessage>,
}

impl Publish {
    /// Decodes a publish body (see the type's docs). The shape clients send
    /// is read by a scanner (`wire/fast.rs`) that gives the same answer
    /// faster; anything else goes through the serde visitors.
    pub fn decode(body: &[u8]) -> Result<Self, crate::json::DecodeError> {
        if let Some(publish) = fast::decode(body) {
            return Ok(publish);
        }
        serde_json::from_slice(body).map_err(|e| crate::json::DecodeError::new(e.to_string()))
    }
}

/// Visits a JSON object whose keys match `fields` case-insensitively, calling
/// `field(index, map)` to read each known value; unknown keys are skipped. A
/// `null` document is the zero value, anything but an object an error.
macro_rules! go_object {
    ($ty:ty, $expecting:literal, [$($name:literal),*], |$out:ident, $idx:ident, $map:ident| $body:block) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_unit<E: serde::de::Error>(self) -> Result<$ty, E> {
                        Ok(<$ty>::default())
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut $map: A) -> Result<$ty, A::Error> {
                        const FIELDS: &[&str] = &[$($name),*];
                        let mut $out = <$ty>::default();
                        while let Some(key) = $map.next_key::<std::borrow::Cow<'de, str>>()? {
                            let found = FIELDS.iter().position(|f| *f == key)
                                .or_else(|| FIELDS.iter().position(|f| f.eq_ignore_ascii_case(&key)));
                            match found {
                                Some($idx) => $body,
                                None => {
                                    $map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok($out)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

go_object!(
    Publish,
    "a publish request object",
    ["messages"],
    |out, _i, map| {
        out.messages = map
            .next_value::<Option<Vec<PublishMessage>>>()?
            .unwrap_or_default();
    }
);

go_object!(
    PublishMessage,
    "a message object",
    ["messageId", "attributes", "data", "publishTime"],
    |out, i, map| {
        match i {
            0 => out.message_id = map.next_value()?,
            1 => out.attributes = map.next_value()?,
            2 => out.data = map.next_value::<Option<String>>()?.unwrap_or_default(),
            _ => out.publish_time = map.next_value()?,
        }
    }
);

/// `:pull` body (values are strings on the wire).
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Pull {
    /// Maximum number of messages, as a decimal string.
    #[serde(rename = "maxMessages", skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<String>,
    /// Only the exact string `"false"` asks for a long-poll.
    #[serde(rename = "returnImmediately", skip_serializing_if = "Option::is_none")]
    pub return_immediately: Option<String>,
}

/// `:acknowledge` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Acknowledge {
    /// `projects/{p}/subscriptions/{s}:{offset}` ids.
    #[serde(rename = "ackIds", skip_serializing_if = "Option::is_none")]
    pub ack_ids: Option<Vec<String>>,
}

/// One `projects[]` entry of a user create/update body.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ProjectRoles {
    /// Project name.
    pub project: String,
    /// Roles in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// `POST/PUT /v1/users/{user}` and member create/update bodies.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UserBody {
    /// New name (update only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Contact address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Profile field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Profile field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Profile field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Profile field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Memberships; present (even `[]`) replaces all on update.
    // Bare `default`: no default value in the schema (`serde(default)` would
    // make utoipa serialize `None` here, and `ProjectRoles` is input only).
    #[cfg_attr(feature = "openapi", schema(default))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projects: Option<Vec<ProjectRoles>>,
    /// Service-wide roles; present replaces on update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_roles: Option<Vec<String>>,
}

/// `:add` member body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct MemberRoles {
    /// Roles in the project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// `:modifyAcl` body; a missing key is an error.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ModifyAcl {
    /// User names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_users: Option<Vec<String>>,
}

/// `POST /v1/registrations` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RegistrationBody {
    /// Requested user name.
    pub name: String,
    /// Profile field.
    pub first_name: String,
    /// Profile field.
    pub last_name: String,
    /// Contact address.
    pub email: String,
    /// Profile field.
    pub organization: String,
    /// Profile field.
    pub description: String,
}

/// `:decline` body.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Decline {
    /// Why.
    pub comment: String,
}

// ---------------------------------------------------------------- responses --

/// A membership as shown in a user (contract §3.2).
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserProject {
    /// Project name.
    pub project: String,
    /// Roles in it.
    pub roles: Vec<String>,
    /// Topics of the project whose ACL names the user.
    pub topics: Vec<String>,
    /// Subscriptions of the project whose ACL names the user.
    pub subscriptions: Vec<String>,
}

/// A user (contract §3.2).
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// UUID.
    pub uuid: String,
    /// Memberships (omitted when none or not asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<UserProject>,
    /// Name.
    pub name: String,
    /// Profile field.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub first_name: String,
    /// Profile field.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub last_name: String,
    /// Profile field.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub organization: String,
    /// Profile field.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub description: String,
    /// Secret (privileged views only).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub token: String,
    /// Contact address.
    pub email: String,
    /// Service roles (`[]` in unprivileged views).
    pub service_roles: Vec<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub created_on: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub modified_on: String,
    /// Creator's current name (privileged views only).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub created_by: String,
}

/// A page of users.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserList {
    /// Newest first.
    pub users: Vec<User>,
    /// Base64 cursor of the next page, or `""`.
    #[serde(rename = "nextPageToken")]
    pub next_page_token: String,
    /// Size of the whole listing.
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

/// A topic or subscription ACL (contract §3.7).
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Acl {
    /// User names, in ACL order.
    pub authorized_users: Vec<String>,
}

/// A user registration (contract §3.6).
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registration {
    /// UUID.
    pub uuid: String,
    /// Requested name.
    pub name: String,
    /// Profile field.
    pub first_name: String,
    /// Profile field.
    pub last_name: String,
    /// Profile field.
    pub organization: String,
    /// Profile field.
    pub description: String,
    /// Contact address.
    pub email: String,
    /// `pending`, `accepted` or `declined`.
    pub status: String,
    /// Why it was declined.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub decline_comment: String,
    /// Present while pending.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub activation_token: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub registered_at: String,
    /// Name of the admin who handled it.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub modified_by: String,
    /// When it was handled.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub modified_at: String,
}

/// `GET /v1/registrations`.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationList {
    /// Oldest first.
    pub user_registrations: Vec<Registration>,
}

/// A project (contract §3.1); every key omitted when empty.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    /// Name.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub name: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub created_on: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub modified_on: String,
    /// Creator's current user name.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub created_by: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub description: String,
}

/// `GET /v1/projects`: `{}` when there are none.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectList {
    /// The projects, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<Project>,
}

/// A topic (contract §3.3).
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Topic {
    /// `/projects/{p}/topics/{t}`.
    pub name: String,
    /// `projects/{p}/schemas/{s}`.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub schema: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub created_on: String,
}

/// A page of topics.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicList {
    /// Newest first.
    pub topics: Vec<Topic>,
    /// Base64 cursor of the next page, or `""`.
    #[serde(rename = "nextPageToken")]
    pub next_page_token: String,
    /// Size of the whole listing.
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

/// A subscription (contract §3.4).
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subscription {
    /// `/projects/{p}/subscriptions/{s}`.
    pub name: String,
    /// `/projects/{p}/topics/{t}`.
    pub topic: String,
    /// Always present; zero for pull subscriptions.
    #[serde(rename = "pushConfig")]
    pub push_config: PushConfig,
    /// Ack deadline in seconds.
    #[serde(rename = "ackDeadlineSeconds")]
    pub ack_deadline_seconds: i64,
    /// Push backend status (verified push subscriptions only).
    #[serde(default, rename = "pushStatus", skip_serializing_if = "is_empty")]
    pub push_status: String,
    /// Extension; omitted when the subscription has none.
    #[serde(rename = "deadLetterPolicy", skip_serializing_if = "Option::is_none")]
    // Omitted when `None`, never `null`.
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub dead_letter_policy: Option<DeadLetterPolicy>,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(rename = "createdOn")]
    pub created_on: String,
}

/// A page of subscriptions.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionList {
    /// Newest first.
    pub subscriptions: Vec<Subscription>,
    /// Base64 cursor of the next page, or `""`.
    #[serde(rename = "nextPageToken")]
    pub next_page_token: String,
    /// Size of the whole listing.
    #[serde(rename = "totalSize")]
    pub total_size: u64,
}

/// `GET …/topics/{t}/subscriptions` (compact).
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicSubscriptions {
    /// `/projects/{p}/subscriptions/{s}` names.
    pub subscriptions: Vec<String>,
}

/// `:publish` answer.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishResponse {
    /// Ids (offsets) of the published messages, in request order.
    #[serde(rename = "messageIds")]
    pub message_ids: Vec<String>,
}

impl PublishResponse {
    /// The answer in the 3-space indented layout, exactly as
    /// [`crate::json::to_vec`] renders it. Written directly when every id is
    /// plain digits (always, for ids the server assigns): the general
    /// serializer's per-character escaping costs more than the rest of a
    /// small publish's answer.
    pub fn to_indented_json(&self) -> Vec<u8> {
        let plain = self
            .message_ids
            .iter()
            .all(|id| id.bytes().all(|b| b.is_ascii_digit()));
        if !plain {
            return crate::json::to_vec(self, crate::json::Layout::Indent3);
        }
        if self.message_ids.is_empty() {
            return b"{\n   \"messageIds\": []\n}".to_vec();
        }
        let digits: usize = self.message_ids.iter().map(String::len).sum();
        let mut out = Vec::with_capacity(32 + digits + 10 * self.message_ids.len());
        out.extend_from_slice(b"{\n   \"messageIds\": [");
        for (i, id) in self.message_ids.iter().enumerate() {
            out.extend_from_slice(if i == 0 {
                b"\n      \""
            } else {
                b",\n      \""
            });
            out.extend_from_slice(id.as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b"\n   ]\n}");
        out
    }
}

/// A message as pulled.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// Its offset, as a string.
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// Attributes, sorted by key; omitted when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Payload as published.
    pub data: String,
    /// RFC 3339 with trimmed nanoseconds.
    #[serde(rename = "publishTime")]
    pub publish_time: String,
}

/// One pulled message with its ack id.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceivedMessage {
    /// `projects/{p}/subscriptions/{s}:{offset}`.
    #[serde(rename = "ackId")]
    pub ack_id: String,
    /// The message.
    pub message: Message,
}

/// `:pull` answer.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullResponse {
    /// The messages, in offset order.
    #[serde(rename = "receivedMessages")]
    pub received_messages: Vec<ReceivedMessage>,
}

/// `:offsets` answer.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Offsets {
    /// Next offset to be written.
    pub max: i64,
    /// Oldest retained offset.
    pub min: i64,
    /// The subscription's committed offset.
    pub current: i64,
}

/// `:timeToOffset` answer (compact).
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeToOffset {
    /// The first offset at or after the requested time.
    pub offset: i64,
}

/// The error envelope (contract §2.1).
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// Schema create/update body (contract §8): any subset on update.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SchemaBody {
    /// Update only: `projects/{p}/schemas/{new name}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `json` or `avro`, any case.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The schema document (a JSON object).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
}

/// A schema (contract §3.5, 1-space indented).
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schema {
    /// Identity.
    pub uuid: String,
    /// `projects/{p}/schemas/{s}` (no leading slash).
    pub name: String,
    /// `json` or `avro`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The document, keys sorted at every level.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub schema: serde_json::Value,
}

/// `GET …/schemas`.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaList {
    /// Oldest first.
    pub schemas: Vec<Schema>,
}

/// `GET /v1/version` (1-space indented).
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Version {
    /// When the binary was built (UTC).
    pub build_time: String,
    /// The toolchain (`rustc x.y.z …`; the original reports its Go version here).
    pub golang: String,
    /// `rustc`.
    pub compiler: String,
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub architecture: String,
    /// The release; only for admin users.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub release: Option<String>,
    /// The host's distribution, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub distro: Option<String>,
    /// The configured `proxy_hostname`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub hostname: Option<String>,
}

/// `GET /v1/status` (1-space indented).
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthStatus {
    /// `ok`, or `warning` when the configured push worker user is missing.
    pub status: String,
    /// With push enabled: the pusher's health.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub push_servers: Option<Vec<PushServerStatus>>,
    /// With push disabled: `disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub push_functionality: Option<String>,
}

/// One `push_servers` entry.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushServerStatus {
    /// Where it runs (`built-in` for ours).
    pub endpoint: String,
    /// `SERVING`, `NOT_SERVING`, or why it is unavailable.
    pub status: String,
}

/// `{"message": …}`: the answer to deleting an active push subscription.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageReply {
    /// What happened.
    pub message: String,
}

/// One message as pushed to an http endpoint (contract §7.5); with
/// `maxMessages` 1 this is the whole body.
#[derive(Debug, Serialize)]
pub struct PushedMessage<'a> {
    /// The message, with `data` decoded when the subscription asks for it.
    pub message: &'a Message,
    /// `/projects/{p}/subscriptions/{s}` (with a leading slash).
    pub subscription: &'a str,
}

/// The body of a push of `maxMessages` > 1.
#[derive(Debug, Serialize)]
pub struct PushedBatch<'a> {
    /// The messages, in offset order.
    pub messages: Vec<PushedMessage<'a>>,
}

/// The body posted to a Mattermost incoming webhook.
#[derive(Debug, Serialize)]
pub struct MattermostPost<'a> {
    /// The message's data.
    pub text: &'a str,
    /// Display name, if configured.
    #[serde(skip_serializing_if = "is_empty")]
    pub username: &'a str,
    /// Channel, if configured.
    #[serde(skip_serializing_if = "is_empty")]
    pub channel: &'a str,
}

/// A metric list (contract §3.8): the answer of every `:metrics` route and of
/// `GET /v1/metrics` (3-space indented).
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricList {
    /// The metrics, in the route's documented order.
    pub metrics: Vec<Metric>,
}

/// One metric with its time series.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metric {
    /// Name, e.g. `topic.number_of_messages`.
    pub metric: String,
    /// `counter`, `rate` or `percentage`.
    pub metric_type: String,
    /// `int64` or `float64`.
    pub value_type: String,
    /// `project`, `project.user`, `topic`, `subscription` or `ams_node`.
    pub resource_type: String,
    /// The resource's name (`project.user` for per-user project metrics).
    pub resource_name: String,
    /// The points: one for current values, up to 30 days for daily counters.
    pub timeseries: Vec<Timepoint>,
    /// The catalogue's description.
    pub description: String,
}

/// One point of a time series.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timepoint {
    /// `YYYY-MM-DDTHH:MM:SSZ`, or `YYYY-MM-DD` for daily counters.
    pub timestamp: String,
    /// The value.
    pub value: MetricValue,
}

/// A metric's value: an integer counter or a float rate/percentage.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum MetricValue {
    /// `int64` metrics.
    Int(i64),
    /// `float64` metrics (rendered the way Go renders floats).
    Float(f64),
}

/// `GET /v1/metrics/va_metrics` (1-space indented): the VA report.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VaReport {
    /// Per-project message counts and their totals.
    pub projects_metrics: ProjectsMetrics,
    /// Sum of the projects' `users_count`.
    pub total_users_count: i64,
    /// Sum of the projects' `topics_count`.
    pub total_topics_count: i64,
    /// Sum of the projects' `subscriptions_count`.
    pub total_subscriptions_count: i64,
}

/// `projects_metrics` of the VA report.
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectsMetrics {
    /// Projects with messages in the window.
    pub projects: Vec<ProjectMetrics>,
    /// Sum of the projects' message counts.
    pub total_message_count: i64,
    /// Sum of the projects' (rounded) daily averages.
    pub average_daily_messages: f64,
}

/// One project of the VA report.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectMetrics {
    /// Project name.
    pub project: String,
    /// Messages published in the window.
    pub message_count: i64,
    /// `message_count` per day of the window, rounded up to 2 decimals.
    pub average_daily_messages: f64,
    /// Topics created in the window.
    pub topics_count: i64,
    /// Subscriptions created in the window.
    pub subscriptions_count: i64,
    /// Members created in the window.
    pub users_count: i64,
}

/// `GET /v1/users/usageReport` (3-space indented).
#[derive(Debug, Default, Serialize, Deserialize, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReport {
    /// The VA report of the caller's projects.
    pub va_metrics: VaReport,
    /// The operational metrics of every node.
    pub operational_metrics: MetricList,
}

/// Inside the error envelope.
#[derive(Debug, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// HTTP status.
    pub code: u16,
    /// Human-readable message (exact AMS text).
    pub message: String,
    /// Status word (`NOT_FOUND`, `INVALID_ARGUMENT`, ...).
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Layout, to_vec};

    #[test]
    fn publish_response_written_directly_is_the_serializers_layout() {
        for ids in [
            vec![],
            vec!["0"],
            vec!["7", "8", "1234567890123"],
            // Not digits: rendered by the serializer (escaping included).
            vec!["a<b", "\"q\""],
        ] {
            let r = PublishResponse {
                message_ids: ids.iter().map(|s| s.to_string()).collect(),
            };
            assert_eq!(
                String::from_utf8(r.to_indented_json()).unwrap(),
                String::from_utf8(to_vec(&r, Layout::Indent3)).unwrap(),
                "{ids:?}"
            );
        }
    }

    #[test]
    fn pull_subscription_renders_the_full_zero_push_config() {
        let s = Subscription {
            name: "/projects/ARGO/subscriptions/sub1".into(),
            topic: "/projects/ARGO/topics/topic1".into(),
            push_config: PushConfig::default(),
            ack_deadline_seconds: 10,
            push_status: String::new(),
            dead_letter_policy: None,
            created_on: "2020-11-19T00:00:00Z".into(),
        };
        let expected = r#"{
   "name": "/projects/ARGO/subscriptions/sub1",
   "topic": "/projects/ARGO/topics/topic1",
   "pushConfig": {
      "type": "",
      "pushEndpoint": "",
      "maxMessages": 0,
      "authorizationHeader": {},
      "retryPolicy": {},
      "verificationHash": "",
      "verified": false,
      "mattermostUrl": "",
      "mattermostUsername": "",
      "mattermostChannel": "",
      "base64Decode": false
   },
   "ackDeadlineSeconds": 10,
   "createdOn": "2020-11-19T00:00:00Z"
}"#;
        assert_eq!(
            String::from_utf8(to_vec(&s, Layout::Indent3)).unwrap(),
            expected
        );
    }

    #[test]
    fn publish_bodies_follow_go_rules_without_an_intermediate_value() {
        let p = Publish::decode(
            br#"{"MESSAGES":[{"DATA":"a","Attributes":{"K":"v"},"x":[1]},null,{"data":null}],"other":1}"#,
        )
        .unwrap();
        assert_eq!(p.messages.len(), 3);
        assert_eq!(p.messages[0].data, "a");
        assert_eq!(p.messages[0].attributes.as_ref().unwrap()["K"], "v");
        assert_eq!(
            (p.messages[1].data.as_str(), p.messages[2].data.as_str()),
            ("", "")
        );
        let last =
            Publish::decode(br#"{"messages":[{"data":"1"}],"Messages":[{"data":"2"}]}"#).unwrap();
        assert_eq!(last.messages[0].data, "2", "the last duplicate wins");
        assert!(Publish::decode(b"null").unwrap().messages.is_empty());
        assert!(
            Publish::decode(br#"{"messages":null}"#)
                .unwrap()
                .messages
                .is_empty()
        );
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            br#"{"messages":{}}"#,
            br#"{"messages":[{"data":5}]}"#,
            br#"{"messages":[{"attributes":{"a":1}}]}"#,
            br#"{"messages":[{"attributes":[{"key":"a","value":"b"}]}]}"#,
            br#"{"messages":[{"messageId":5}]}"#,
            br#"{"messages":[]} x"#,
        ] {
            assert!(
                Publish::decode(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn empty_project_list_is_an_empty_object() {
        let l = ProjectList { projects: vec![] };
        assert_eq!(to_vec(&l, Layout::Indent3), b"{}");
    }

    #[test]
    fn push_config_emptiness_ignores_output_fields() {
        let mut p: PushConfig = crate::json::from_slice(br#"{"retryPolicy":{}}"#).unwrap();
        assert!(p.is_pull());
        p.verified = true;
        p.verification_hash = "x".into();
        assert!(p.is_pull());
        let p: PushConfig = crate::json::from_slice(br#"{"type":"http_endpoint"}"#).unwrap();
        assert!(!p.is_pull());
    }
}
