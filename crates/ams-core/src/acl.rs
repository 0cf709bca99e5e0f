//! Per-resource access lists (contract §1.5, §3.7): `:acl` and `:modifyAcl` on
//! topics and subscriptions, and the checks that publish and pull make.

use ams_types::json::DecodeError;
use ams_types::wire;
use uuid::Uuid;

use crate::Ams;
use crate::auth::{Context, Role};
use crate::error::{Body, Error, Result};
use crate::storage::Conflict;

impl Ams {
    /// `GET …/topics/{topic}:acl`.
    pub async fn topic_acl(&self, ctx: &Context, name: &str) -> Result<wire::Acl> {
        let topic = self.topic(ctx, name).await?;
        self.acl_view(&topic.acl).await
    }

    /// `GET …/subscriptions/{subscription}:acl`.
    pub async fn subscription_acl(&self, ctx: &Context, name: &str) -> Result<wire::Acl> {
        let sub = self.subscription(ctx, name).await?;
        self.acl_view(&sub.acl).await
    }

    /// `POST …/topics/{topic}:modifyAcl`: replaces the ACL. Checks: body, that
    /// every name is a member of the project, the topic.
    pub async fn modify_topic_acl(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::ModifyAcl, DecodeError>,
    ) -> Result<()> {
        let acl = self.acl_members(ctx, body, Body::TopicAcl).await?;
        self.meta()
            .set_topic_acl(ctx.project().uuid, name, acl)
            .await?
            .map_err(|_: Conflict| Error::TopicNotFound)
    }

    /// `POST …/subscriptions/{subscription}:modifyAcl`.
    pub async fn modify_subscription_acl(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::ModifyAcl, DecodeError>,
    ) -> Result<()> {
        let acl = self.acl_members(ctx, body, Body::SubscriptionAcl).await?;
        self.meta()
            .set_subscription_acl(ctx.project().uuid, name, acl)
            .await?
            .map_err(|_: Conflict| Error::SubscriptionNotFound)
    }

    /// The UUIDs of the body's users, all of whom must be members of the
    /// project; else `User(s): a, b do not exist`.
    async fn acl_members(
        &self,
        ctx: &Context,
        body: Result<wire::ModifyAcl, DecodeError>,
        kind: Body,
    ) -> Result<Vec<Uuid>> {
        let names = body
            .ok()
            .and_then(|b| b.authorized_users)
            .ok_or(Error::InvalidBody(kind))?;
        let project = ctx.project().uuid;
        let mut acl = Vec::with_capacity(names.len());
        let mut missing = Vec::new();
        for name in names {
            match self.meta().user_by_name(&name).await? {
                Some(u) if u.membership(project).is_some() => {
                    if !acl.contains(&u.uuid) {
                        acl.push(u.uuid);
                    }
                }
                _ => missing.push(name),
            }
        }
        if missing.is_empty() {
            Ok(acl)
        } else {
            Err(Error::UsersMissing(missing))
        }
    }

    /// User names of an ACL, in order; users deleted since are skipped.
    async fn acl_view(&self, acl: &[Uuid]) -> Result<wire::Acl> {
        let mut authorized_users = Vec::with_capacity(acl.len());
        for uuid in acl {
            if let Some(user) = self.meta().user_by_uuid(*uuid).await? {
                authorized_users.push(user.name);
            }
        }
        Ok(wire::Acl { authorized_users })
    }

    /// With `per_resource_auth`, a caller holding `role` (publisher for topics,
    /// consumer for subscriptions), project admins included, must be in `acl`.
    /// The service token and callers without the role are never checked.
    pub(crate) fn check_acl(&self, ctx: &Context, role: Role, acl: &[Uuid]) -> Result<()> {
        if !self.settings().per_resource_auth || !ctx.caller.has(role) {
            return Ok(());
        }
        match ctx.caller.user {
            Some(user) if acl.contains(&user) => Ok(()),
            _ => Err(Error::Forbidden),
        }
    }
}
