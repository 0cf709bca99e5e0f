//! Schemas (contract §8): create, show, list, update, delete, the
//! `:validate` endpoint, and the publish-time check of a topic's schema.
//!
//! JSON Schema goes through `jsonschema` built without its resolvers, so a
//! `$ref` can never make the server reach the network or the file system;
//! AVRO through `apache-avro`. Compiled schemas are cached by identity and
//! text, so a publish does not compile its topic's schema again.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use uuid::Uuid;

use ams_types::json::DecodeError;
use ams_types::wire;

use crate::Ams;
use crate::auth::Context;
use crate::error::{Body, Error, Result};
use crate::model::{Project, Schema, SchemaKind, Topic};

/// A compiled schema.
pub(crate) enum Compiled {
    Json(Box<jsonschema::Validator>),
    Avro(Box<apache_avro::Schema>),
}

/// Compiled schemas by identity, with the text they were compiled from.
#[derive(Default)]
pub(crate) struct SchemaCache(parking_lot::Mutex<HashMap<Uuid, (String, Arc<Compiled>)>>);

/// The primitive types of JSON Schema, as gojsonschema lists them.
const JSON_TYPES: &str = "[array boolean integer number null object string]";

impl Ams {
    /// `POST …/schemas/{schema}`: body, name clash, type, compilation.
    pub async fn create_schema(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::SchemaBody, DecodeError>,
    ) -> Result<wire::Schema> {
        let body = body.map_err(|_| Error::InvalidBody(Body::Schema))?;
        let doc = body
            .schema
            .filter(Value::is_object)
            .ok_or(Error::InvalidBody(Body::Schema))?;
        let project = ctx.project();
        if self.meta().schema(project.uuid, name).await?.is_some() {
            return Err(Error::SchemaExists);
        }
        let kind = body
            .kind
            .as_deref()
            .and_then(SchemaKind::parse)
            .ok_or(Error::InvalidSchemaType)?;
        compile(kind, &doc).map_err(Error::SchemaValidation)?;
        let schema = Schema {
            uuid: Uuid::new_v4(),
            project: project.uuid,
            name: name.to_owned(),
            kind,
            body: sorted(&doc).to_string(),
            seq: 0,
        };
        let schema = self
            .meta()
            .create_schema(schema)
            .await?
            .map_err(|_| Error::SchemaExists)?;
        Ok(schema_view(project, &schema))
    }

    /// `GET …/schemas/{schema}`.
    pub async fn show_schema(&self, ctx: &Context, name: &str) -> Result<wire::Schema> {
        Ok(schema_view(ctx.project(), &self.schema(ctx, name).await?))
    }

    /// `GET …/schemas`: oldest first.
    pub async fn list_schemas(&self, ctx: &Context) -> Result<wire::SchemaList> {
        let project = ctx.project();
        Ok(wire::SchemaList {
            schemas: self
                .meta()
                .list_schemas(project.uuid)
                .await?
                .iter()
                .map(|s| schema_view(project, s))
                .collect(),
        })
    }

    /// `PUT …/schemas/{schema}`: existence, body, new name, type, then the
    /// (new or stored) document against the (new or stored) type.
    pub async fn update_schema(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::SchemaBody, DecodeError>,
    ) -> Result<wire::Schema> {
        let mut schema = self.schema(ctx, name).await?;
        let body = body.map_err(|_| Error::InvalidBody(Body::Schema))?;
        let project = ctx.project();
        if let Some(reference) = body.name.as_deref().filter(|n| !n.is_empty()) {
            let new_name = reference_name(reference)?;
            if new_name != name && self.meta().schema(project.uuid, new_name).await?.is_some() {
                return Err(Error::SchemaExists);
            }
            schema.name = new_name.to_owned();
        }
        if let Some(kind) = body.kind.as_deref().filter(|k| !k.is_empty()) {
            schema.kind = SchemaKind::parse(kind).ok_or(Error::InvalidSchemaType)?;
        }
        let doc = match body.schema {
            Some(doc) if doc.is_object() => doc,
            Some(_) => return Err(Error::InvalidBody(Body::Schema)),
            None => serde_json::from_str(&schema.body).map_err(|_| Error::SchemaUnloadable)?,
        };
        compile(schema.kind, &doc).map_err(Error::SchemaValidation)?;
        schema.body = sorted(&doc).to_string();
        self.meta()
            .update_schema(project.uuid, name, schema.clone())
            .await?
            .map_err(|c| match c {
                crate::storage::Conflict::AlreadyExists => Error::SchemaExists,
                crate::storage::Conflict::NotFound => Error::SchemaNotFound,
            })?;
        Ok(schema_view(project, &schema))
    }

    /// `DELETE …/schemas/{schema}`: topics using it lose the link.
    pub async fn delete_schema(&self, ctx: &Context, name: &str) -> Result<()> {
        let schema = self
            .meta()
            .delete_schema(ctx.project().uuid, name)
            .await?
            .map_err(|_| Error::SchemaNotFound)?;
        self.0.schemas.0.lock().remove(&schema.uuid);
        Ok(())
    }

    /// `POST …/schemas/{schema}:validate`: a JSON schema validates the raw
    /// body; an AVRO schema the base64 `data` of a `{"data": …}` body.
    pub async fn validate_with_schema(
        &self,
        ctx: &Context,
        name: &str,
        raw: &[u8],
    ) -> Result<wire::MessageReply> {
        let schema = self.schema(ctx, name).await?;
        let compiled = self.compiled(&schema)?;
        match compiled.as_ref() {
            Compiled::Json(_) => check(&compiled, 0, raw)?,
            Compiled::Avro(_) => {
                let body: HashMap<String, String> =
                    serde_json::from_slice(raw).map_err(|_| Error::InvalidBody(Body::Request))?;
                let data = body
                    .get("data")
                    .ok_or(Error::InvalidBody(Body::SchemaPayload))?;
                check(&compiled, 0, &decode_base64(0, data)?)?;
            }
        }
        Ok(wire::MessageReply {
            message: "Message validated successfully".into(),
        })
    }

    /// Publish-time validation: every message's base64 `data` against the
    /// topic's schema, before anything is stored.
    pub(crate) async fn check_against_topic_schema<'a>(
        &self,
        topic: &Topic,
        datas: impl Iterator<Item = &'a str>,
    ) -> Result<()> {
        let Some(id) = topic.schema else {
            return Ok(());
        };
        let schema = self
            .meta()
            .schema_by_uuid(topic.project, id)
            .await?
            .ok_or(Error::SchemaUnloadable)?;
        let compiled = self.compiled(&schema)?;
        for (i, data) in datas.enumerate() {
            check(&compiled, i, &decode_base64(i, data)?)?;
        }
        Ok(())
    }

    /// The compiled form of a stored schema, from the cache when its text is unchanged.
    fn compiled(&self, schema: &Schema) -> Result<Arc<Compiled>> {
        let cache = &self.0.schemas;
        if let Some((body, c)) = cache.0.lock().get(&schema.uuid)
            && *body == schema.body
        {
            return Ok(c.clone());
        }
        let doc: Value = serde_json::from_str(&schema.body).map_err(|_| Error::SchemaUnloadable)?;
        let c = Arc::new(compile(schema.kind, &doc).map_err(|_| Error::SchemaUnloadable)?);
        cache
            .0
            .lock()
            .insert(schema.uuid, (schema.body.clone(), c.clone()));
        Ok(c)
    }

    /// Looks a schema up in the context's project, or `Schema doesn't exist`.
    pub(crate) async fn schema(&self, ctx: &Context, name: &str) -> Result<Schema> {
        self.meta()
            .schema(ctx.project().uuid, name)
            .await?
            .ok_or(Error::SchemaNotFound)
    }

    /// Resolves a topic body's `projects/{any}/schemas/{name}` in the
    /// context's project (the project segment is ignored, as in the original).
    pub(crate) async fn schema_reference(&self, ctx: &Context, reference: &str) -> Result<Uuid> {
        let name = reference_name(reference)?;
        Ok(self.schema(ctx, name).await?.uuid)
    }

    /// `projects/{p}/schemas/{s}` of a topic's schema, if it has one.
    pub(crate) async fn schema_reference_of(
        &self,
        project: &Project,
        topic: &Topic,
    ) -> Result<String> {
        let Some(id) = topic.schema else {
            return Ok(String::new());
        };
        Ok(self
            .meta()
            .schema_by_uuid(project.uuid, id)
            .await?
            .map(|s| format!("projects/{}/schemas/{}", project.name, s.name))
            .unwrap_or_default())
    }
}

/// The `{name}` of `projects/{p}/schemas/{name}`, or `wrong schema name declaration`.
pub(crate) fn reference_name(reference: &str) -> Result<&str> {
    match reference.split('/').collect::<Vec<_>>().as_slice() {
        ["projects", _, "schemas", name] => Ok(name),
        _ => Err(Error::WrongSchemaName),
    }
}

fn schema_view(project: &Project, s: &Schema) -> wire::Schema {
    wire::Schema {
        uuid: s.uuid.to_string(),
        name: format!("projects/{}/schemas/{}", project.name, s.name),
        kind: s.kind.as_str().into(),
        schema: serde_json::from_str(&s.body).unwrap_or(Value::Null),
    }
}

/// `v` with object keys sorted at every level (arrays keep their order).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Compiles a schema document, with the original's wording where the
/// libraries' differs.
fn compile(kind: SchemaKind, doc: &Value) -> std::result::Result<Compiled, String> {
    match kind {
        SchemaKind::Json => {
            if let Some(bad) = invalid_primitive(doc) {
                return Err(format!(
                    "has a primitive type that is NOT VALID -- given: /{bad}/ Expected valid values are:{JSON_TYPES}"
                ));
            }
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .build(doc)
                .map(|v| Compiled::Json(Box::new(v)))
                .map_err(|e| e.to_string())
        }
        SchemaKind::Avro => apache_avro::Schema::parse(doc)
            .map(|s| Compiled::Avro(Box::new(s)))
            .map_err(|e| match e.details() {
                apache_avro::error::Details::ParsePrimitive(name) => {
                    format!("unknown type name: {name:?}")
                }
                _ => e.to_string(),
            }),
    }
}

/// A `type` keyword naming something other than a JSON Schema primitive.
fn invalid_primitive(v: &Value) -> Option<String> {
    const PRIMITIVES: [&str; 7] = [
        "array", "boolean", "integer", "number", "null", "object", "string",
    ];
    match v {
        Value::Object(map) => {
            let own = match map.get("type") {
                Some(Value::String(t)) if !PRIMITIVES.contains(&t.as_str()) => Some(t.clone()),
                Some(Value::Array(ts)) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|t| !PRIMITIVES.contains(t))
                    .map(str::to_owned),
                _ => None,
            };
            own.or_else(|| {
                map.iter()
                    // `properties` maps names to schemas: a property called
                    // "type" is not a type keyword, but its schema is searched.
                    .filter(|(k, _)| {
                        k.as_str() != "type" && k.as_str() != "enum" && k.as_str() != "const"
                    })
                    .find_map(|(_, v)| invalid_primitive(v))
            })
        }
        Value::Array(items) => items.iter().find_map(invalid_primitive),
        _ => None,
    }
}

/// Go's base64 decoding of message `i`'s data, with its error wording.
fn decode_base64(i: usize, data: &str) -> Result<Vec<u8>> {
    STANDARD.decode(data).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol { offset: at, .. } => at,
            base64::DecodeError::InvalidLength(len) => len / 4 * 4,
            base64::DecodeError::InvalidPadding => data.len().saturating_sub(1),
        };
        Error::SchemaValidation(format!(
            "Message {i} is not in valid base64 enocding,illegal base64 data at input byte {at}"
        ))
    })
}

/// Checks one decoded payload (message `i`) against a compiled schema.
fn check(compiled: &Compiled, i: usize, payload: &[u8]) -> Result<()> {
    match compiled {
        Compiled::Json(validator) => {
            let instance: Value = serde_json::from_slice(payload).map_err(|e| {
                let why = if e.is_eof() {
                    "unexpected EOF".to_owned()
                } else {
                    e.to_string()
                };
                Error::SchemaValidation(format!("Message {i} data is not valid JSON format,{why}"))
            })?;
            let violations: Vec<String> = validator
                .iter_errors(&instance)
                .map(|e| violation(&e))
                .collect();
            match violations.as_slice() {
                [] => Ok(()),
                [one] => Err(Error::SchemaValidation(format!(
                    "Message {i} data is not valid,{one}"
                ))),
                many => {
                    let mut text = format!("Message {i} data is not valid.");
                    for (n, v) in many.iter().enumerate() {
                        text.push_str(&format!("{})", n + 1));
                        text.push_str(v);
                        text.push('.');
                    }
                    Err(Error::SchemaValidation(text))
                }
            }
        }
        Compiled::Avro(schema) => apache_avro::from_avro_datum(schema, &mut &payload[..], None)
            .map(|_| ())
            .map_err(|e| Error::SchemaValidation(format!("Message {i} is not valid.{e}"))),
    }
}

/// A violation in gojsonschema's words: `<field>: <description>`, the field
/// dotted from the document root (`(root)` for the root itself).
fn violation(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::{TypeKind, ValidationErrorKind};
    let pointer = e.instance_path().as_str();
    let field = if pointer.is_empty() {
        "(root)".to_owned()
    } else {
        pointer.trim_start_matches('/').replace('/', ".")
    };
    let description = match e.kind() {
        ValidationErrorKind::Required { property } => {
            format!("{} is required", property.as_str().unwrap_or_default())
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
            };
            format!(
                "Invalid type. Expected: {expected}, given: {}",
                json_type(e.instance())
            )
        }
        _ => e.to_string(),
    };
    format!("{field}: {description}")
}

/// gojsonschema's name of a value's type.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_schema() -> Compiled {
        compile(
            SchemaKind::Json,
            &json!({"type":"object","required":["name","email"],
                    "properties":{"name":{"type":"string"},"email":{"type":"string"},
                                  "telephone":{"type":"string"}}}),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn message(e: Error) -> String {
        match e {
            Error::SchemaValidation(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_violations_read_like_gojsonschema() {
        let c = json_schema();
        assert!(check(&c, 0, br#"{"name":"a","email":"b"}"#).is_ok());
        assert_eq!(
            message(check(&c, 0, br#"{"name":"a"}"#).unwrap_err()),
            "Message 0 data is not valid,(root): email is required"
        );
        assert_eq!(
            message(check(&c, 2, br#"{"name":"a","telephone":7}"#).unwrap_err()),
            "Message 2 data is not valid.1)(root): email is required.2)telephone: Invalid type. Expected: string, given: integer."
        );
        assert_eq!(
            message(check(&c, 1, br#"{"name":"#).unwrap_err()),
            "Message 1 data is not valid JSON format,unexpected EOF"
        );
    }

    #[test]
    fn schema_compilation_errors() {
        assert_eq!(
            compile(SchemaKind::Json, &json!({"type":"unknown"}))
                .err()
                .unwrap(),
            "has a primitive type that is NOT VALID -- given: /unknown/ Expected valid values are:[array boolean integer number null object string]"
        );
        assert_eq!(
            compile(
                SchemaKind::Json,
                &json!({"properties":{"type":{"type":"string"},"x":{"type":["string","bogus"]}}})
            )
            .err()
            .unwrap(),
            "has a primitive type that is NOT VALID -- given: /bogus/ Expected valid values are:[array boolean integer number null object string]"
        );
        assert_eq!(
            compile(
                SchemaKind::Avro,
                &json!({"type":"record","name":"User","fields":[{"name":"a","type":"unknown"}]})
            )
            .err()
            .unwrap(),
            "unknown type name: \"unknown\""
        );
    }

    #[test]
    fn avro_binary_datums() {
        let c = compile(
            SchemaKind::Avro,
            &json!({"type":"record","name":"User","namespace":"user.avro",
                    "fields":[{"name":"username","type":"string"},{"name":"phone","type":"int"}]}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // "bob" (zigzag length 3 = 0x06), then 21 (zigzag 42 = 0x2a).
        assert!(check(&c, 0, &[0x06, b'b', b'o', b'b', 0x2a]).is_ok());
        let e = message(check(&c, 3, &[0x4f]).unwrap_err());
        assert!(e.starts_with("Message 3 is not valid."), "{e}");
    }

    #[test]
    fn base64_errors_name_the_byte() {
        assert_eq!(
            message(decode_base64(4, "aGVsbG8*").unwrap_err()),
            "Message 4 is not in valid base64 enocding,illegal base64 data at input byte 7"
        );
        assert_eq!(decode_base64(0, "aGVsbG8=").unwrap(), b"hello");
    }

    #[test]
    fn schemas_are_stored_with_sorted_keys() {
        let v = sorted(&json!({"b":1,"a":{"d":[{"z":1,"y":2}],"c":2}}));
        assert_eq!(v.to_string(), r#"{"a":{"c":2,"d":[{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn references() {
        assert_eq!(reference_name("projects/X/schemas/s").unwrap(), "s");
        for bad in [
            "projects/X/topics/s",
            "/projects/X/schemas/s",
            "s",
            "projects/X/schemas",
        ] {
            assert!(
                matches!(reference_name(bad), Err(Error::WrongSchemaName)),
                "{bad}"
            );
        }
    }
}
