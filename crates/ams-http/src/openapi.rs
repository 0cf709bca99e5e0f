//! `GET /v1/openapi.json`: an OpenAPI 3.1 document generated from the route
//! table itself (utoipa's model), so it lists exactly the routes the router
//! serves: each with its method, path parameters, operation id (the AMS route
//! name), the roles allowed, the token sources, and the error envelope.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, PathsBuilder, Ref, Required,
};

use crate::{Call, Handled, respond, routes};

/// `GET /v1/openapi.json`.
pub async fn show(_call: Call) -> Handled {
    Ok(respond::json(&document(), ams_types::json::Layout::Indent1))
}

/// The document for the served route table.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for entry in routes::table() {
        let route = entry.route;
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
            .response("200", ResponseBuilder::new().description("Success").build())
            .response(
                "default",
                ResponseBuilder::new()
                    .description("An AMS error")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Error")))
                            .build(),
                    )
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
    let error = ObjectBuilder::new().property(
        "error",
        ObjectBuilder::new()
            .property("code", ObjectBuilder::new().schema_type(Type::Integer))
            .property("message", ObjectBuilder::new().schema_type(Type::String))
            .property("status", ObjectBuilder::new().schema_type(Type::String))
            .required("code")
            .required("message")
            .required("status"),
    );
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
                .schema("Error", error)
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

/// The `{variables}` of a route pattern, in order.
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
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().map(|p| p["name"].as_str().unwrap()).collect())
                .unwrap_or_default();
            assert_eq!(params, variables(entry.pattern), "{}", entry.pattern);
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
