//! Projects: create, show, list, update/rename, delete with cascade (contract §5.4).

use ams_types::json::DecodeError;
use ams_types::wire;
use uuid::Uuid;

use crate::Ams;
use crate::auth::Context;
use crate::error::{Body, Error, Result};
use crate::model::Project;
use crate::storage::{Conflict, LogRef};

impl Ams {
    /// `POST /v1/projects/{project}`.
    pub async fn create_project(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::ProjectCreate, DecodeError>,
    ) -> Result<wire::Project> {
        let body = body.map_err(|_| Error::InvalidBody(Body::Project))?;
        let now = self.now();
        let project = Project {
            uuid: Uuid::new_v4(),
            name: name.to_owned(),
            description: body.description.unwrap_or_default(),
            created_on: now,
            modified_on: now,
            created_by: ctx.caller.user,
        };
        match self.meta().create_project(project.clone()).await? {
            Ok(()) => self.project_view(&project).await,
            Err(_) => Err(Error::ProjectExists),
        }
    }

    /// `GET /v1/projects/{project}`.
    pub async fn show_project(&self, ctx: &Context) -> Result<wire::Project> {
        self.project_view(ctx.project()).await
    }

    /// `GET /v1/projects`: oldest first; `{}` when there are none.
    pub async fn list_projects(&self, _ctx: &Context) -> Result<wire::ProjectList> {
        let mut projects = Vec::new();
        for p in self.meta().list_projects().await? {
            projects.push(self.project_view(&p).await?);
        }
        Ok(wire::ProjectList { projects })
    }

    /// `PUT /v1/projects/{project}`: empty fields stay as they are.
    pub async fn update_project(
        &self,
        ctx: &Context,
        body: Result<wire::ProjectUpdate, DecodeError>,
    ) -> Result<wire::Project> {
        let body = body.map_err(|_| Error::InvalidBody(Body::Request))?;
        let mut project = ctx.project().clone();
        if let Some(name) = body.name.filter(|n| !n.is_empty()) {
            project.name = name;
        }
        if let Some(description) = body.description.filter(|d| !d.is_empty()) {
            project.description = description;
        }
        project.modified_on = self.now();
        match self.meta().update_project(project.clone()).await? {
            Ok(()) => self.project_view(&project).await,
            Err(Conflict::AlreadyExists) => Err(Error::ProjectNameTaken),
            Err(Conflict::NotFound) => Err(Error::ProjectMissing),
        }
    }

    /// `DELETE /v1/projects/{project}`: the project, its topics (with their
    /// message logs) and its subscriptions go.
    pub async fn delete_project(&self, ctx: &Context) -> Result<()> {
        let project = ctx.project();
        let topics = self
            .meta()
            .delete_project(project.uuid)
            .await?
            .map_err(|_| Error::ProjectMissing)?;
        for topic in topics {
            self.log()
                .delete(&LogRef {
                    id: topic.log_id,
                    project: topic.project,
                    topic: topic.name,
                })
                .await?;
        }
        Ok(())
    }

    async fn project_view(&self, p: &Project) -> Result<wire::Project> {
        Ok(wire::Project {
            name: p.name.clone(),
            created_on: p.created_on.to_rfc3339_seconds(),
            modified_on: p.modified_on.to_rfc3339_seconds(),
            created_by: self.user_name(p.created_by).await?,
            description: p.description.clone(),
        })
    }
}
