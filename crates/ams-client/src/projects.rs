//! `/v1/projects[/{project}]` routes.

use ams_types::wire;
use reqwest::Method;

use crate::transport::{Retry, verb};
use crate::{Client, Result};

impl Client {
    /// `GET /v1/projects`: every project, oldest first.
    pub async fn list_projects(&self) -> Result<Vec<wire::Project>> {
        let list: wire::ProjectList = self.get(self.url(&["projects"])).await?;
        Ok(list.projects)
    }

    /// `GET /v1/projects/{project}`.
    pub async fn get_project(&self, project: &str) -> Result<wire::Project> {
        self.get(self.url(&["projects", project])).await
    }

    /// `POST /v1/projects/{project}` (not retried).
    pub async fn create_project(
        &self,
        project: &str,
        description: Option<&str>,
    ) -> Result<wire::Project> {
        let body = wire::ProjectCreate {
            description: description.map(str::to_owned),
        };
        self.json(
            Method::POST,
            self.url(&["projects", project]),
            &body,
            Retry::No,
        )
        .await
    }

    /// `PUT /v1/projects/{project}`: renames and/or describes it; `None`
    /// leaves a field as it is.
    pub async fn update_project(
        &self,
        project: &str,
        new_name: Option<&str>,
        description: Option<&str>,
    ) -> Result<wire::Project> {
        let body = wire::ProjectUpdate {
            name: new_name.map(str::to_owned),
            description: description.map(str::to_owned),
        };
        self.json(
            Method::PUT,
            self.url(&["projects", project]),
            &body,
            Retry::Yes,
        )
        .await
    }

    /// `DELETE /v1/projects/{project}`, with its topics and subscriptions.
    pub async fn delete_project(&self, project: &str) -> Result<()> {
        self.call::<()>(
            Method::DELETE,
            self.url(&["projects", project]),
            None,
            Retry::Yes,
        )
        .await
    }

    /// `GET /v1/projects/{project}:metrics`.
    pub async fn project_metrics(&self, project: &str) -> Result<wire::MetricList> {
        self.get(self.url(&["projects", &verb(project, "metrics")]))
            .await
    }
}
