//! Subscriptions: create, show, list, delete, ack deadline (contract §5.7).
//! Consuming (pull, acknowledge, offsets) lives in [`crate::messages`].

use ams_types::json::DecodeError;
use ams_types::wire;

use crate::Ams;
use crate::auth::{Context, Role};
use crate::error::{Body, Error, Result};
use crate::model::{Cursor, DEFAULT_ACK_DEADLINE, Project, Subscription};
use crate::paging;

/// Largest deadline `:modifyAckDeadline` accepts.
pub const MAX_ACK_DEADLINE: i64 = 600;

impl Ams {
    /// `PUT …/subscriptions/{subscription}`. Checks in the contract's order: body,
    /// topic reference, topic existence, push settings, name clash.
    pub async fn create_subscription(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::SubscriptionCreate, DecodeError>,
    ) -> Result<wire::Subscription> {
        let body = body.map_err(|_| Error::InvalidBody(Body::Subscription))?;
        let topic_name = topic_reference(&body.topic)?;
        let topic = self.topic(ctx, topic_name).await?;
        let (push, dead_letter) = self.push_of_create(ctx, &body, &topic.name).await?;
        let start = self.log().bounds(&topic.log_ref()).await?.max;
        let ack_deadline = match body.ack_deadline_seconds {
            0 => DEFAULT_ACK_DEADLINE,
            n => n,
        };
        let sub = Subscription {
            project: ctx.project().uuid,
            name: name.to_owned(),
            topic: topic.name,
            ack_deadline,
            created_on: self.now(),
            seq: 0,
            cursor: Cursor::at(start),
            acl: Vec::new(),
            push,
            dead_letter,
        };
        let sub = self
            .meta()
            .create_subscription(sub)
            .await?
            .map_err(|_| Error::SubscriptionExists)?;
        self.activate_created(ctx, &sub).await?;
        Ok(subscription_view(ctx.project(), &sub))
    }

    /// `GET …/subscriptions/{subscription}`.
    pub async fn show_subscription(&self, ctx: &Context, name: &str) -> Result<wire::Subscription> {
        let sub = self.subscription(ctx, name).await?;
        let mut view = subscription_view(ctx.project(), &sub);
        view.push_status = self.push_status(ctx.project(), &sub);
        Ok(view)
    }

    /// `GET …/subscriptions`: newest first, paginated.
    pub async fn list_subscriptions(
        &self,
        ctx: &Context,
        page_size: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<wire::SubscriptionList> {
        let mut page = paging::parse(page_size, page_token)?;
        page.acl_member = ctx.caller.listing_filter(Role::Consumer);
        let project = ctx.project();
        let page = self.meta().list_subscriptions(project.uuid, page).await?;
        Ok(wire::SubscriptionList {
            subscriptions: page
                .items
                .iter()
                .map(|s| subscription_view(project, s))
                .collect(),
            next_page_token: paging::token(page.next),
            total_size: page.total,
        })
    }

    /// `DELETE …/subscriptions/{subscription}`. Deleting an active push
    /// subscription stops its delivery and answers the deactivation message.
    pub async fn delete_subscription(&self, ctx: &Context, name: &str) -> Result<Option<String>> {
        let sub = self
            .meta()
            .delete_subscription(ctx.project().uuid, name)
            .await?
            .map_err(|_| Error::SubscriptionNotFound)?;
        if sub.push.is_some() {
            self.notify_push(sub.project, name);
        }
        // Its streams end now rather than at their next recheck.
        self.cursor_moved(sub.project, name);
        Ok(sub.push_active().then(|| {
            format!(
                "Subscription {} deactivated",
                crate::push::full_name(&ctx.project().name, name)
            )
        }))
    }

    /// `:modifyAckDeadline`: the body (0..=600) is checked before existence. The
    /// new deadline applies to a pull already pending too.
    pub async fn modify_ack_deadline(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::ModifyAckDeadline, DecodeError>,
    ) -> Result<()> {
        let seconds = body
            .ok()
            .map(|b| b.ack_deadline_seconds)
            .filter(|s| (0..=MAX_ACK_DEADLINE).contains(s))
            .ok_or(Error::InvalidBody(Body::AckDeadline))?;
        self.meta()
            .set_ack_deadline(ctx.project().uuid, name, seconds)
            .await?
            .map_err(|_| Error::SubscriptionNotFound)
    }

    /// Looks up a subscription of the context's project, or `Subscription doesn't exist`.
    pub(crate) async fn subscription(&self, ctx: &Context, name: &str) -> Result<Subscription> {
        self.meta()
            .subscription(ctx.project().uuid, name)
            .await?
            .ok_or(Error::SubscriptionNotFound)
    }
}

/// The topic name of a create request's `projects/{p}/topics/{t}`. Like the
/// original, only four segments are required and the reference is refused only
/// when both literal segments are wrong; the project segment is ignored (the
/// topic is looked up in the URL's project).
fn topic_reference(reference: &str) -> Result<&str> {
    match reference.split('/').collect::<Vec<_>>().as_slice() {
        [a, _, b, topic] if *a == "projects" || *b == "topics" => Ok(topic),
        _ => Err(Error::InvalidTopicReference),
    }
}

pub(crate) fn subscription_view(project: &Project, s: &Subscription) -> wire::Subscription {
    wire::Subscription {
        name: format!("/projects/{}/subscriptions/{}", project.name, s.name),
        topic: format!("/projects/{}/topics/{}", project.name, s.topic),
        push_config: crate::push::push_view(s.push.as_ref()),
        ack_deadline_seconds: s.ack_deadline,
        push_status: String::new(),
        dead_letter_policy: crate::push::dead_letter_view(&project.name, s.dead_letter.as_ref()),
        created_on: s.created_on.to_rfc3339_seconds(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_references() {
        assert_eq!(topic_reference("projects/P/topics/t").unwrap(), "t");
        assert_eq!(topic_reference("projects/P/other/t").unwrap(), "t");
        assert_eq!(topic_reference("other/P/topics/t").unwrap(), "t");
        for bad in [
            "/projects/P/topics/t",
            "projects/P/topics",
            "x/P/y/t",
            "",
            "t",
        ] {
            assert!(
                matches!(topic_reference(bad), Err(Error::InvalidTopicReference)),
                "{bad}"
            );
        }
    }
}
