//! `/v1/projects/{project}/members…` handlers.

use crate::{Call, Handled, respond};

fn user(call: &Call) -> &str {
    call.params.var("user")
}

/// `GET …/members`.
pub async fn list(call: Call) -> Handled {
    let q = &call.query;
    let list = call
        .ams
        .list_members(
            &call.ctx,
            q.get("pageSize"),
            q.get("pageToken"),
            q.get("details"),
        )
        .await?;
    Ok(respond::indented(&list))
}

/// `GET …/members/{user}`.
pub async fn show(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.show_member(&call.ctx, user(&call)).await?,
    ))
}

/// `POST …/members/{user}`.
pub async fn create(call: Call) -> Handled {
    let created = call
        .ams
        .create_member(&call.ctx, user(&call), call.json())
        .await?;
    Ok(respond::indented(&created))
}

/// `PUT …/members/{user}`.
pub async fn update(call: Call) -> Handled {
    let updated = call
        .ams
        .update_member(&call.ctx, user(&call), call.json())
        .await?;
    Ok(respond::indented(&updated))
}

/// `POST …/members/{user}:add`.
pub async fn add(call: Call) -> Handled {
    let added = call
        .ams
        .add_member(&call.ctx, user(&call), call.json())
        .await?;
    Ok(respond::indented(&added))
}

/// `POST …/members/{user}:remove` (answers `{}`).
pub async fn remove(call: Call) -> Handled {
    call.ams.remove_member(&call.ctx, user(&call)).await?;
    Ok(respond::empty_object())
}
