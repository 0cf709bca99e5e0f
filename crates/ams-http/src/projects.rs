//! `/v1/projects[/{project}]` handlers.

use crate::{Call, Handled, respond};

/// `GET /v1/projects`.
pub async fn list(call: Call) -> Handled {
    Ok(respond::indented(&call.ams.list_projects(&call.ctx).await?))
}

/// `GET /v1/projects/{project}`.
pub async fn show(call: Call) -> Handled {
    Ok(respond::indented(&call.ams.show_project(&call.ctx).await?))
}

/// `POST /v1/projects/{project}`.
pub async fn create(call: Call) -> Handled {
    let project = call
        .ams
        .create_project(&call.ctx, call.params.var("project"), call.json())
        .await?;
    Ok(respond::indented(&project))
}

/// `PUT /v1/projects/{project}`.
pub async fn update(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.update_project(&call.ctx, call.json()).await?,
    ))
}

/// `DELETE /v1/projects/{project}`.
pub async fn delete(call: Call) -> Handled {
    call.ams.delete_project(&call.ctx).await?;
    Ok(respond::empty())
}

/// `GET /v1/projects/{project}:metrics`.
pub async fn metrics(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.project_metrics(&call.ctx).await?,
    ))
}
