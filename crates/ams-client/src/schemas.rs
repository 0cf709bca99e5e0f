//! `/v1/projects/{project}/schemas…` routes.

use ams_types::wire;
use reqwest::Method;

use crate::transport::{Retry, encode, verb};
use crate::{Client, Result};

impl Client {
    /// `GET …/schemas`: the project's schemas, oldest first.
    pub async fn list_schemas(&self, project: &str) -> Result<Vec<wire::Schema>> {
        let list: wire::SchemaList = self
            .get(self.url(&["projects", project, "schemas"]))
            .await?;
        Ok(list.schemas)
    }

    /// `GET …/schemas/{schema}`.
    pub async fn get_schema(&self, project: &str, schema: &str) -> Result<wire::Schema> {
        self.get(self.url(&["projects", project, "schemas", schema]))
            .await
    }

    /// `POST …/schemas/{schema}` (not retried): a `json` or `avro` schema
    /// with the given document.
    pub async fn create_schema(
        &self,
        project: &str,
        schema: &str,
        kind: &str,
        document: &serde_json::Value,
    ) -> Result<wire::Schema> {
        let body = wire::SchemaBody {
            name: None,
            kind: Some(kind.to_owned()),
            schema: Some(document.clone()),
        };
        let url = self.url(&["projects", project, "schemas", schema]);
        self.json(Method::POST, url, &body, Retry::No).await
    }

    /// `PUT …/schemas/{schema}`: any subset of name
    /// (`projects/{p}/schemas/{new}`), type and document.
    pub async fn update_schema(
        &self,
        project: &str,
        schema: &str,
        body: &wire::SchemaBody,
    ) -> Result<wire::Schema> {
        let url = self.url(&["projects", project, "schemas", schema]);
        self.json(Method::PUT, url, body, Retry::Yes).await
    }

    /// `DELETE …/schemas/{schema}`; topics using it lose the link.
    pub async fn delete_schema(&self, project: &str, schema: &str) -> Result<()> {
        let url = self.url(&["projects", project, "schemas", schema]);
        self.call::<()>(Method::DELETE, url, None, Retry::Yes).await
    }

    /// `POST …/schemas/{schema}:validate`: checks `instance` against the
    /// schema (a JSON schema validates it as is; an AVRO schema expects
    /// `{"data": "<base64>"}`); answers the server's confirmation
    /// (`Message validated successfully`) or an [`crate::Error::Api`] saying
    /// why not.
    pub async fn validate_schema(
        &self,
        project: &str,
        schema: &str,
        instance: &serde_json::Value,
    ) -> Result<String> {
        let url = self.url(&["projects", project, "schemas", &verb(schema, "validate")]);
        let answer = self
            .send(
                Method::POST,
                url,
                Some(encode(instance)?),
                Retry::No,
                self.timeout(),
            )
            .await?;
        let reply: wire::MessageReply = crate::transport::decode(&answer)?;
        Ok(reply.message)
    }
}
