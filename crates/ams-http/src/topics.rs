//! `/v1/projects/{project}/topics…` handlers.

use ams_types::json::Layout;

use crate::{Call, Handled, respond};

fn topic(call: &Call) -> &str {
    call.params.var("topic")
}

/// `GET …/topics`.
pub async fn list(call: Call) -> Handled {
    let q = &call.query;
    let list = call
        .ams
        .list_topics(&call.ctx, q.get("pageSize"), q.get("pageToken"))
        .await?;
    Ok(respond::indented(&list))
}

/// `GET …/topics/{topic}`.
pub async fn show(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.show_topic(&call.ctx, topic(&call)).await?,
    ))
}

/// `PUT …/topics/{topic}` (body optional).
pub async fn create(call: Call) -> Handled {
    let created = call
        .ams
        .create_topic(&call.ctx, topic(&call), call.optional_json())
        .await?;
    Ok(respond::indented(&created))
}

/// `DELETE …/topics/{topic}`.
pub async fn delete(call: Call) -> Handled {
    call.ams.delete_topic(&call.ctx, topic(&call)).await?;
    Ok(respond::empty())
}

/// `POST …/topics/{topic}:publish`.
pub async fn publish(call: Call) -> Handled {
    let body = ams_types::wire::Publish::decode(&call.body);
    let ids = call.ams.publish(&call.ctx, topic(&call), body).await?;
    Ok(respond::rendered(ids.to_indented_json()))
}

/// `GET …/topics/{topic}/subscriptions` (compact).
pub async fn subscriptions(call: Call) -> Handled {
    let subs = call
        .ams
        .topic_subscriptions(&call.ctx, topic(&call))
        .await?;
    Ok(respond::json(&subs, Layout::Compact))
}

/// `GET …/topics/{topic}:acl`.
pub async fn acl(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.topic_acl(&call.ctx, topic(&call)).await?,
    ))
}

/// `POST …/topics/{topic}:modifyAcl`.
pub async fn modify_acl(call: Call) -> Handled {
    call.ams
        .modify_topic_acl(&call.ctx, topic(&call), call.json())
        .await?;
    Ok(respond::empty())
}

/// `POST …/topics/{topic}:attachSchema` (body optional: none detaches).
pub async fn attach_schema(call: Call) -> Handled {
    call.ams
        .attach_schema(&call.ctx, topic(&call), call.optional_json())
        .await?;
    Ok(respond::empty())
}

/// `POST …/topics/{topic}:detachSchema`.
pub async fn detach_schema(call: Call) -> Handled {
    call.ams.detach_schema(&call.ctx, topic(&call)).await?;
    Ok(respond::empty())
}

/// `GET …/topics/{topic}:metrics`.
pub async fn metrics(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.topic_metrics(&call.ctx, topic(&call)).await?,
    ))
}
