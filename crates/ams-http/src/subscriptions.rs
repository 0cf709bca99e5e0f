//! `/v1/projects/{project}/subscriptions…` handlers.

use ams_types::json::Layout;

use crate::{Call, Handled, respond};

fn sub(call: &Call) -> &str {
    call.params.var("subscription")
}

/// `GET …/subscriptions`.
pub async fn list(call: Call) -> Handled {
    let q = &call.query;
    let list = call
        .ams
        .list_subscriptions(&call.ctx, q.get("pageSize"), q.get("pageToken"))
        .await?;
    Ok(respond::indented(&list))
}

/// `GET …/subscriptions/{subscription}`.
pub async fn show(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.show_subscription(&call.ctx, sub(&call)).await?,
    ))
}

/// `PUT …/subscriptions/{subscription}`.
pub async fn create(call: Call) -> Handled {
    let created = call
        .ams
        .create_subscription(&call.ctx, sub(&call), call.json())
        .await?;
    Ok(respond::indented(&created))
}

/// `DELETE …/subscriptions/{subscription}`.
pub async fn delete(call: Call) -> Handled {
    match call.ams.delete_subscription(&call.ctx, sub(&call)).await? {
        // Deleting an active push subscription answers what deactivated it.
        Some(message) => Ok(respond::json(
            &ams_types::wire::MessageReply { message },
            Layout::Compact,
        )),
        None => Ok(respond::empty()),
    }
}

/// `POST …:modifyPushConfig`.
pub async fn modify_push_config(call: Call) -> Handled {
    call.ams
        .modify_push_config(&call.ctx, sub(&call), call.json())
        .await?;
    Ok(respond::empty())
}

/// `POST …:verifyPushEndpoint` (no body).
pub async fn verify_push_endpoint(call: Call) -> Handled {
    call.ams.verify_push_endpoint(&call.ctx, sub(&call)).await?;
    Ok(respond::empty())
}

/// `POST …:pull`.
pub async fn pull(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.pull(&call.ctx, sub(&call), call.json()).await?,
    ))
}

/// `POST …:acknowledge` (answers `{}`).
pub async fn acknowledge(call: Call) -> Handled {
    call.ams
        .acknowledge(&call.ctx, sub(&call), call.json())
        .await?;
    Ok(respond::empty_object())
}

/// `POST …:modifyAckDeadline`.
pub async fn modify_ack_deadline(call: Call) -> Handled {
    call.ams
        .modify_ack_deadline(&call.ctx, sub(&call), call.json())
        .await?;
    Ok(respond::empty())
}

/// `GET …:offsets`.
pub async fn offsets(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.offsets(&call.ctx, sub(&call)).await?,
    ))
}

/// `POST …:modifyOffset`.
pub async fn modify_offset(call: Call) -> Handled {
    call.ams
        .modify_offset(&call.ctx, sub(&call), call.json())
        .await?;
    Ok(respond::empty())
}

/// `GET …:timeToOffset?time=…` (compact).
pub async fn time_to_offset(call: Call) -> Handled {
    let offset = call
        .ams
        .time_to_offset(&call.ctx, sub(&call), call.query.get("time"))
        .await?;
    Ok(respond::json(&offset, Layout::Compact))
}

/// `GET …:acl`.
pub async fn acl(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.subscription_acl(&call.ctx, sub(&call)).await?,
    ))
}

/// `POST …:modifyAcl`.
pub async fn modify_acl(call: Call) -> Handled {
    call.ams
        .modify_subscription_acl(&call.ctx, sub(&call), call.json())
        .await?;
    Ok(respond::empty())
}

/// `GET …/subscriptions/{subscription}:metrics`.
pub async fn metrics(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.subscription_metrics(&call.ctx, sub(&call)).await?,
    ))
}
