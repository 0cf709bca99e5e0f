//! `/v1/projects/{project}/schemas…` handlers (all 1-space indented).

use ams_types::json::Layout;

use crate::{Call, Handled, respond};

fn schema(call: &Call) -> &str {
    call.params.var("schema")
}

/// `POST …/schemas/{schema}:validate` (the raw body is the instance).
pub async fn validate(call: Call) -> Handled {
    let reply = call
        .ams
        .validate_with_schema(&call.ctx, schema(&call), &call.body)
        .await?;
    Ok(respond::json(&reply, Layout::Indent1))
}

/// `POST …/schemas/{schema}`.
pub async fn create(call: Call) -> Handled {
    let created = call
        .ams
        .create_schema(&call.ctx, schema(&call), call.json())
        .await?;
    Ok(respond::json(&created, Layout::Indent1))
}

/// `GET …/schemas/{schema}`.
pub async fn show(call: Call) -> Handled {
    let shown = call.ams.show_schema(&call.ctx, schema(&call)).await?;
    Ok(respond::json(&shown, Layout::Indent1))
}

/// `GET …/schemas`.
pub async fn list(call: Call) -> Handled {
    let list = call.ams.list_schemas(&call.ctx).await?;
    Ok(respond::json(&list, Layout::Indent1))
}

/// `PUT …/schemas/{schema}`.
pub async fn update(call: Call) -> Handled {
    let updated = call
        .ams
        .update_schema(&call.ctx, schema(&call), call.json())
        .await?;
    Ok(respond::json(&updated, Layout::Indent1))
}

/// `DELETE …/schemas/{schema}`.
pub async fn delete(call: Call) -> Handled {
    call.ams.delete_schema(&call.ctx, schema(&call)).await?;
    Ok(respond::empty())
}
