//! `/v1/users…` handlers.

use crate::{Call, Handled, respond};

fn user(call: &Call) -> &str {
    call.params.var("user")
}

/// `GET /v1/users`.
pub async fn list(call: Call) -> Handled {
    let q = &call.query;
    let list = call
        .ams
        .list_users(
            &call.ctx,
            q.get("pageSize"),
            q.get("pageToken"),
            q.get("project"),
            q.get("details"),
        )
        .await?;
    Ok(respond::indented(&list))
}

/// `GET /v1/users/{user}`.
pub async fn show(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.show_user(&call.ctx, user(&call)).await?,
    ))
}

/// `GET /v1/users:byToken/{token}`.
pub async fn by_token(call: Call) -> Handled {
    let token = call.params.var("token");
    Ok(respond::indented(
        &call.ams.user_of_token(&call.ctx, token).await?,
    ))
}

/// `GET /v1/users:byUUID/{uuid}`.
pub async fn by_uuid(call: Call) -> Handled {
    let uuid = call.params.var("uuid");
    Ok(respond::indented(
        &call.ams.user_of_uuid(&call.ctx, uuid).await?,
    ))
}

/// `GET /v1/users/profile` (open route: checks the token itself).
pub async fn profile(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.profile(call.token.as_deref()).await?,
    ))
}

/// `POST /v1/users/{user}`.
pub async fn create(call: Call) -> Handled {
    let created = call
        .ams
        .create_user(&call.ctx, user(&call), call.json())
        .await?;
    Ok(respond::indented(&created))
}

/// `PUT /v1/users/{user}`.
pub async fn update(call: Call) -> Handled {
    let updated = call
        .ams
        .update_user(&call.ctx, user(&call), call.json())
        .await?;
    Ok(respond::indented(&updated))
}

/// `DELETE /v1/users/{user}`.
pub async fn delete(call: Call) -> Handled {
    call.ams.delete_user(&call.ctx, user(&call)).await?;
    Ok(respond::empty())
}

/// `POST /v1/users/{user}:refreshToken`.
pub async fn refresh_token(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.refresh_token(&call.ctx, user(&call)).await?,
    ))
}
