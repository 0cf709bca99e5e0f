//! `GET /v1/openapi.json`: an OpenAPI 3.1 document generated from the route
//! table itself (utoipa's model), so it lists exactly the routes the router
//! serves: each with its method, path parameters, operation id (the AMS route
//! name), the roles allowed, the token sources, its request and response
//! bodies (the `ams_types::wire` types' schemas) and the error envelope.

use std::collections::BTreeMap;

use ams_core::auth::Route;
use ams_types::wire as w;
use utoipa::ToSchema;
use utoipa::openapi::content::{Content, ContentBuilder};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr,
    Required,
};

use crate::{Call, Handled, respond, routes};

/// `GET /v1/openapi.json`.
pub async fn show(_call: Call) -> Handled {
    Ok(respond::json(&document(), ams_types::json::Layout::Indent1))
}

/// The document for the served route table.
pub fn document() -> OpenApi {
    let mut schemas = Schemas::new();
    let error = schema::<w::ErrorEnvelope>(&mut schemas);
    let mut paths = PathsBuilder::new();
    for entry in routes::table() {
        let route = entry.route;
        let (request, response) = bodies(route);
        let mut op = OperationBuilder::new()
            .operation_id(Some(route.name()))
            .tag(tag(entry.pattern))
            .summary(Some(route.name()))
            .description(Some(if route.is_open() {
                "Open: checks any token itself.".to_owned()
            } else {
                let roles: Vec<&str> = route.roles().iter().map(|r| r.as_str()).collect();
                format!("Roles: {}.", roles.join(", "))
            }))
            .request_body(request.document(&mut schemas))
            .response("200", response.document(&mut schemas))
            .response(
                "default",
                ResponseBuilder::new()
                    .description("An AMS error")
                    .content("application/json", json(&error))
                    .build(),
            );
        for var in variables(entry.pattern) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(var)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some("^[a-zA-Z0-9_-]+$")),
                    ))
                    .build(),
            );
        }
        for (name, description) in query_parameters(route) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(*description))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            );
        }
        if !route.is_open() {
            op = op
                .security(SecurityRequirement::new("header", Vec::<String>::new()))
                .security(SecurityRequirement::new("query", Vec::<String>::new()));
        }
        let method = match entry.method.as_str() {
            "GET" => HttpMethod::Get,
            "PUT" => HttpMethod::Put,
            "POST" => HttpMethod::Post,
            _ => HttpMethod::Delete,
        };
        paths = paths.path(entry.pattern, PathItem::new(method, op.build()));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("AMS v1 (ams)")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The ARGO Messaging Service v1 API as served by ams. Route names are the \
                     operation ids; which roles may call a route is in its description.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(
            ComponentsBuilder::new()
                .schemas_from_iter(schemas)
                .security_scheme(
                    "header",
                    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
                )
                .security_scheme(
                    "query",
                    SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("key"))),
                )
                .build(),
        ))
        .build()
}

/// The components' schemas, by name.
type Schemas = BTreeMap<String, RefOr<Schema>>;

/// Registers a body type's schema and those it refers to; returns its name.
type Register = fn(&mut Schemas) -> String;

/// [`Register`] for `T`.
fn schema<T: ToSchema>(schemas: &mut Schemas) -> String {
    let name = T::name().into_owned();
    let mut all = vec![(name.clone(), T::schema())];
    T::schemas(&mut all);
    schemas.extend(all);
    name
}

/// `application/json` content that is the named component schema.
fn json(name: &str) -> Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(name)))
        .build()
}

/// What a route reads from the request body.
#[derive(Clone, Copy)]
enum RequestBody {
    /// Nothing: the body is ignored.
    None,
    /// A JSON body; empty is a decode error (contract §0.3: send at least `{}`).
    Json(Register),
    /// A JSON body, or none at all.
    OptionalJson(Register),
    /// Any JSON: the instance `schemas:validateMessage` checks.
    Instance,
}

impl RequestBody {
    fn document(self, schemas: &mut Schemas) -> Option<utoipa::openapi::request_body::RequestBody> {
        let (content, required, description) = match self {
            RequestBody::None => return None,
            RequestBody::Json(register) => (json(&register(schemas)), Required::True, None),
            RequestBody::OptionalJson(register) => (
                json(&register(schemas)),
                Required::False,
                Some("Optional: an empty body is accepted."),
            ),
            RequestBody::Instance => (
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(SchemaType::AnyValue)))
                    .build(),
                Required::True,
                Some(
                    "A JSON schema validates the whole body; an AVRO schema the base64 `data` \
                     of a `{\"data\": …}` body.",
                ),
            ),
        };
        Some(
            RequestBodyBuilder::new()
                .description(description)
                .required(Some(required))
                .content("application/json", content)
                .build(),
        )
    }
}

/// What a route's 200 answers.
#[derive(Clone, Copy)]
enum ResponseBody {
    /// Zero bytes.
    Empty,
    /// The literal `{}`.
    EmptyObject,
    /// A JSON body.
    Json(Register),
    /// Zero bytes, or the JSON body when there is something to say
    /// (deleting an active push subscription).
    EmptyOrJson(Register),
    /// This document (an OpenAPI document: no schema here).
    Document,
    /// A live stream: Server-Sent Events, or a WebSocket after a 101 upgrade.
    Stream,
}

impl ResponseBody {
    fn document(self, schemas: &mut Schemas) -> Response {
        let response = ResponseBuilder::new();
        match self {
            ResponseBody::Empty => response.description("Success, with an empty body"),
            ResponseBody::EmptyObject => response.description("Success: `{}`").content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::Object)
                            .max_properties(Some(0)),
                    ))
                    .build(),
            ),
            ResponseBody::Json(register) => response
                .description("Success")
                .content("application/json", json(&register(schemas))),
            ResponseBody::EmptyOrJson(register) => response
                .description("Success: an empty body, or a message about what else happened")
                .content("application/json", json(&register(schemas))),
            ResponseBody::Document => response
                .description("This OpenAPI document")
                .content("application/json", ContentBuilder::new().build()),
            ResponseBody::Stream => response
                .description(
                    "Server-Sent Events (`Accept: text/event-stream`), or a WebSocket \
                     (101 Switching Protocols) when the request asks for an upgrade",
                )
                .content("text/event-stream", ContentBuilder::new().build()),
        }
        .build()
    }
}

/// Each route's request body and 200 body. No wildcard: a new route does not
/// compile until it says what its bodies are.
fn bodies(route: Route) -> (RequestBody, ResponseBody) {
    use RequestBody as In;
    use ResponseBody as Out;
    match route {
        Route::AmsMetrics
        | Route::ProjectsMetrics
        | Route::TopicsMetrics
        | Route::SubscriptionsMetrics => (In::None, Out::Json(schema::<w::MetricList>)),
        Route::AmsHealthStatus => (In::None, Out::Json(schema::<w::HealthStatus>)),
        Route::AmsVaMetrics => (In::None, Out::Json(schema::<w::VaReport>)),
        Route::UsersUsageReport => (In::None, Out::Json(schema::<w::UsageReport>)),
        Route::VersionList => (In::None, Out::Json(schema::<w::Version>)),
        Route::ApiDocument => (In::None, Out::Document),

        Route::UsersByToken
        | Route::UsersByUuid
        | Route::UsersProfile
        | Route::UsersShow
        | Route::UsersRefreshToken
        | Route::RegistrationsAccept
        | Route::ProjectsShowUser => (In::None, Out::Json(schema::<w::User>)),
        Route::UsersList | Route::ProjectsListUsers => (In::None, Out::Json(schema::<w::UserList>)),
        Route::UsersCreate
        | Route::UsersUpdate
        | Route::ProjectsCreateUser
        | Route::ProjectsUpdateUser => (
            In::Json(schema::<w::UserBody>),
            Out::Json(schema::<w::User>),
        ),
        Route::ProjectsAddUser => (
            In::Json(schema::<w::MemberRoles>),
            Out::Json(schema::<w::User>),
        ),
        Route::ProjectsRemoveUser => (In::None, Out::EmptyObject),

        Route::RegistrationsNewUser => (
            In::Json(schema::<w::RegistrationBody>),
            Out::Json(schema::<w::Registration>),
        ),
        Route::RegistrationsDecline => (In::Json(schema::<w::Decline>), Out::EmptyObject),
        Route::RegistrationsShow => (In::None, Out::Json(schema::<w::Registration>)),
        Route::RegistrationsList => (In::None, Out::Json(schema::<w::RegistrationList>)),

        Route::ProjectsList => (In::None, Out::Json(schema::<w::ProjectList>)),
        Route::ProjectsShow => (In::None, Out::Json(schema::<w::Project>)),
        Route::ProjectsCreate => (
            In::Json(schema::<w::ProjectCreate>),
            Out::Json(schema::<w::Project>),
        ),
        Route::ProjectsUpdate => (
            In::Json(schema::<w::ProjectUpdate>),
            Out::Json(schema::<w::Project>),
        ),

        Route::TopicsList => (In::None, Out::Json(schema::<w::TopicList>)),
        Route::TopicsShow => (In::None, Out::Json(schema::<w::Topic>)),
        Route::TopicsCreate => (
            In::OptionalJson(schema::<w::TopicCreate>),
            Out::Json(schema::<w::Topic>),
        ),
        Route::TopicsAttachSchema => (In::OptionalJson(schema::<w::TopicCreate>), Out::Empty),
        Route::TopicsPublish => (
            In::Json(schema::<w::Publish>),
            Out::Json(schema::<w::PublishResponse>),
        ),
        Route::TopicsAcl | Route::SubscriptionsAcl => (In::None, Out::Json(schema::<w::Acl>)),
        Route::TopicsModifyAcl | Route::SubscriptionsModifyAcl => {
            (In::Json(schema::<w::ModifyAcl>), Out::Empty)
        }
        Route::SubscriptionsListByTopic => (In::None, Out::Json(schema::<w::TopicSubscriptions>)),

        Route::SubscriptionsList => (In::None, Out::Json(schema::<w::SubscriptionList>)),
        Route::SubscriptionsShow => (In::None, Out::Json(schema::<w::Subscription>)),
        Route::SubscriptionsCreate => (
            In::Json(schema::<w::SubscriptionCreate>),
            Out::Json(schema::<w::Subscription>),
        ),
        Route::SubscriptionsDelete => (In::None, Out::EmptyOrJson(schema::<w::MessageReply>)),
        Route::SubscriptionsOffsets => (In::None, Out::Json(schema::<w::Offsets>)),
        Route::SubscriptionsTimeToOffset => (In::None, Out::Json(schema::<w::TimeToOffset>)),
        Route::SubscriptionsPull => (
            In::Json(schema::<w::Pull>),
            Out::Json(schema::<w::PullResponse>),
        ),
        Route::SubscriptionsAcknowledge => (In::Json(schema::<w::Acknowledge>), Out::EmptyObject),
        Route::SubscriptionsModifyAckDeadline => {
            (In::Json(schema::<w::ModifyAckDeadline>), Out::Empty)
        }
        Route::SubscriptionsModifyPushConfig => {
            (In::Json(schema::<w::ModifyPushConfig>), Out::Empty)
        }
        Route::SubscriptionsModifyOffset => (In::Json(schema::<w::ModifyOffset>), Out::Empty),

        Route::SchemasValidateMessage => (In::Instance, Out::Json(schema::<w::MessageReply>)),
        Route::SchemasCreate | Route::SchemasUpdate => (
            In::Json(schema::<w::SchemaBody>),
            Out::Json(schema::<w::Schema>),
        ),
        Route::SchemasShow => (In::None, Out::Json(schema::<w::Schema>)),
        Route::SchemasList => (In::None, Out::Json(schema::<w::SchemaList>)),

        Route::UsersDelete
        | Route::RegistrationsDelete
        | Route::ProjectsDelete
        | Route::TopicsDelete
        | Route::TopicsDetachSchema
        | Route::SubscriptionsVerifyPushEndpoint
        | Route::SchemasDelete => (In::None, Out::Empty),

        Route::SubscriptionsStream | Route::TopicsStream => (In::None, Out::Stream),
    }
}

/// The `{variables}` of a route pattern, in order.
/// The query parameters a route's handler reads (besides `key`, the token).
fn query_parameters(route: Route) -> &'static [(&'static str, &'static str)] {
    const PAGE: [(&str, &str); 2] = [
        ("pageSize", "Items per page (all when absent or 0)"),
        ("pageToken", "The nextPageToken of the previous page"),
    ];
    const REPORT: [(&str, &str); 3] = [
        ("start_date", "First day, YYYY-MM-DD (default 1970-01-01)"),
        ("end_date", "Last day, YYYY-MM-DD (default today)"),
        ("projects", "Comma-separated project names (default all)"),
    ];
    match route {
        Route::TopicsList | Route::SubscriptionsList => &PAGE,
        Route::UsersList => &[
            PAGE[0],
            PAGE[1],
            ("project", "Only members of this project"),
            ("details", "true: include memberships"),
        ],
        Route::ProjectsListUsers => &[PAGE[0], PAGE[1], ("details", "true: include memberships")],
        Route::RegistrationsList => &[
            ("status", "pending, accepted or declined"),
            ("name", "Requested user name"),
            ("email", "Contact address"),
            ("organization", "Organization"),
            ("activation_token", "Activation token"),
        ],
        Route::AmsHealthStatus => &[("details", "true: raw push server errors (admins)")],
        Route::SubscriptionsTimeToOffset => &[(
            "time",
            "RFC 3339 with milliseconds, e.g. 2019-09-02T13:39:11.100Z",
        )],
        Route::AmsVaMetrics | Route::UsersUsageReport => &REPORT,
        Route::SubscriptionsStream => &[
            (
                "window",
                "Most unacknowledged messages in flight (1-10000, default 100)",
            ),
            ("autoAck", "true: acknowledge each message as it is sent"),
        ],
        Route::TopicsStream => &[
            ("from", "Start at this offset"),
            (
                "time",
                "Start at the first message published at or after this RFC 3339 time",
            ),
            ("last", "Start at the last N messages"),
            ("max", "End after N messages"),
        ],
        _ => &[],
    }
}

fn variables(pattern: &str) -> Vec<&str> {
    pattern
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(v, _)| v))
        .collect()
}

/// The resource a route belongs to (the OpenAPI tag).
fn tag(pattern: &str) -> &'static str {
    const RESOURCES: [(&str, &str); 6] = [
        ("/schemas", "schemas"),
        ("/subscriptions", "subscriptions"),
        ("/topics", "topics"),
        ("/members", "members"),
        ("/registrations", "registrations"),
        ("/users", "users"),
    ];
    RESOURCES
        .iter()
        .find(|(part, _)| pattern.contains(part))
        .map_or(
            if pattern.starts_with("/v1/projects") {
                "projects"
            } else {
                "service"
            },
            |(_, t)| t,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_route_is_documented_once_with_its_parameters() {
        let doc = serde_json::to_value(document()).unwrap();
        let mut documented = 0;
        for entry in routes::table() {
            let op = &doc["paths"][entry.pattern][entry.method.as_str().to_lowercase()];
            assert_eq!(op["operationId"], entry.route.name(), "{}", entry.pattern);
            let params = |kind: &str| -> Vec<&str> {
                op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == kind)
                            .map(|p| p["name"].as_str().unwrap())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            assert_eq!(
                params("path"),
                variables(entry.pattern),
                "{}",
                entry.pattern
            );
            let query: Vec<&str> = query_parameters(entry.route)
                .iter()
                .map(|(n, _)| *n)
                .collect();
            assert_eq!(params("query"), query, "{}", entry.pattern);
            documented += 1;
        }
        let operations: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(
            operations, documented,
            "nothing documented that is not served"
        );
    }

    #[test]
    fn tags_and_variables() {
        assert_eq!(
            tag("/v1/projects/{project}/topics/{topic}:publish"),
            "topics"
        );
        assert_eq!(
            tag("/v1/projects/{project}/topics/{topic}/subscriptions"),
            "subscriptions"
        );
        assert_eq!(tag("/v1/projects/{project}"), "projects");
        assert_eq!(tag("/v1/status"), "service");
        assert_eq!(
            variables("/v1/projects/{project}/topics/{topic}:publish"),
            ["project", "topic"]
        );
    }
}
