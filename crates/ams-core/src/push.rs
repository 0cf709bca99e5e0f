//! Push subscriptions (contract §7): validation of `pushConfig` on create and
//! `:modifyPushConfig`, endpoint verification, the push-worker account, the
//! dead-letter extension, and [`PushGateway`], the hooks through which the
//! built-in pusher (crate `ams-push`) learns about changes and reports status.
//!
//! Delivery itself goes through the same domain operations as a REST client:
//! the pusher pulls and acknowledges with [`Ams::push_context`], so ACLs,
//! cursors and ack deadlines behave exactly as for pull.

use std::collections::BTreeMap;

use async_trait::async_trait;
use uuid::Uuid;

use ams_types::json::DecodeError;
use ams_types::wire;

use crate::Ams;
use crate::auth::{Caller, Context, Role};
use crate::error::{Body, Error, Result};
use crate::model::CursorRefusal;
use crate::model::{DeadLetter, Project, Push, PushKind, RetryPolicy, Subscription};
use crate::storage::{LogRef, NewMessage, WriteDurability};
use crate::users::new_token;

/// `retryPolicy.period` when absent or not positive (ms).
pub const DEFAULT_PERIOD_MS: u32 = 3000;
/// `exponential` defaults and bound (ms).
pub const DEFAULT_MIN_BACKOFF_MS: u32 = 1000;
/// Default longest back-off of `exponential` (ms).
pub const DEFAULT_MAX_BACKOFF_MS: u32 = 600_000;
/// Longest back-off `exponential` accepts (one day, the slowstart ceiling).
pub const MAX_BACKOFF_MS: u32 = 86_400_000;
/// Largest `maxDeliveryAttempts` of a dead-letter policy.
pub const MAX_DELIVERY_ATTEMPTS: i64 = 1000;

/// Why fetching an endpoint's verification hash failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFailure {
    /// No HTTP answer (connection, TLS, timeout); the client's error text.
    Transport(String),
    /// An answer other than 200.
    Status(u16),
}

/// What the domain needs from the pusher.
#[async_trait]
pub trait PushGateway: Send + Sync + 'static {
    /// `GET url` with the pusher's HTTP client; the body of a 200 answer.
    async fn fetch_verification(&self, url: &str) -> std::result::Result<Vec<u8>, VerifyFailure>;
    /// A subscription's push settings changed, or it was deleted: start,
    /// update or stop its delivery.
    fn changed(&self, project: Uuid, name: &str);
    /// The status line of an active push subscription (contract §7.5), e.g.
    /// `Subscription /projects/P/subscriptions/S is currently active`.
    fn status(&self, project: Uuid, name: &str, full_name: &str) -> String;
    /// Whether deliveries are running (`/v1/status`).
    fn serving(&self) -> bool;
}

/// Status of a push subscription whose pusher is not running.
pub const PUSH_UNAVAILABLE: &str = "Push server is currently unavailable";

/// `/projects/{p}/subscriptions/{s}`, as push payloads and statuses name it.
pub fn full_name(project: &str, subscription: &str) -> String {
    format!("/projects/{project}/subscriptions/{subscription}")
}

/// The active-status line of contract §7.5.
pub fn active_status(full_name: &str) -> String {
    format!("Subscription {full_name} is currently active")
}

/// Which of the two orders of contract §7.2 / §7.3 to check in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Create: type-specific checks, then the retry policy.
    Create,
    /// `:modifyPushConfig`: the retry policy, then the type.
    Modify,
}

/// A `pushConfig` that passed validation.
#[derive(Clone)]
struct Input {
    kind: PushKind,
    endpoint: String,
    max_messages: i64,
    /// Explicit `authorizationHeader.type`, if given.
    authorization: Option<String>,
    retry: RetryPolicy,
    mattermost_url: String,
    mattermost_username: String,
    mattermost_channel: String,
    base64_decode: bool,
}

impl Ams {
    /// The push switches of contract §7.2 steps 1-2: 409 when push is off, 500
    /// when the configured push worker user is missing. Returns the worker.
    async fn push_preconditions(&self) -> Result<Option<crate::model::User>> {
        if !self.settings().push_enabled {
            return Err(Error::PushDisabled);
        }
        self.push_worker().await
    }

    /// The configured push worker (contract §7.6): `None` when no
    /// `push_worker_token` is configured and the pusher acts as an internal
    /// principal; `PushUnavailable` when it is configured but has no user.
    pub async fn push_worker(&self) -> Result<Option<crate::model::User>> {
        match &self.settings().push_worker_token {
            None => Ok(None),
            Some(token) => self
                .user_by_token(token)
                .await?
                .map(Some)
                .ok_or(Error::PushUnavailable),
        }
    }

    /// Validates a non-empty `pushConfig` in the order of `check`.
    fn push_input(&self, cfg: &wire::PushConfig, check: Check) -> Result<Input> {
        if check == Check::Modify {
            retry_policy(&cfg.retry_policy)?;
        }
        let kind = match cfg.kind.as_str() {
            "http_endpoint" => {
                if !self.endpoint_allowed(&cfg.push_endpoint) {
                    return Err(Error::InvalidPushEndpoint);
                }
                match cfg.authorization_header.kind.as_str() {
                    "" | "autogen" | "disabled" => {}
                    _ => return Err(Error::InvalidAuthorizationType),
                }
                PushKind::HttpEndpoint
            }
            "mattermost" => {
                if cfg.mattermost_url.is_empty() {
                    return Err(Error::MattermostUrlEmpty);
                }
                PushKind::Mattermost
            }
            _ => return Err(Error::InvalidPushType),
        };
        let retry = retry_policy(&cfg.retry_policy)?;
        Ok(Input {
            kind,
            endpoint: cfg.push_endpoint.clone(),
            max_messages: cfg.max_messages,
            authorization: Some(cfg.authorization_header.kind.clone()).filter(|k| !k.is_empty()),
            retry,
            mattermost_url: cfg.mattermost_url.clone(),
            mattermost_username: cfg.mattermost_username.clone(),
            mattermost_channel: cfg.mattermost_channel.clone(),
            base64_decode: cfg.base64_decode,
        })
    }

    /// An absolute `https://host[:port]/…` URL (or `http://` when allowed).
    fn endpoint_allowed(&self, endpoint: &str) -> bool {
        url::Url::parse(endpoint).is_ok_and(|u| {
            let scheme_ok =
                u.scheme() == "https" || (u.scheme() == "http" && self.settings().push_allow_http);
            scheme_ok && u.host_str().is_some_and(|h| !h.is_empty())
        })
    }

    /// The push settings and dead-letter policy of a create request, validated
    /// in the order of contract §7.2 (the dead-letter policy last).
    pub(crate) async fn push_of_create(
        &self,
        ctx: &Context,
        body: &wire::SubscriptionCreate,
        topic: &str,
    ) -> Result<(Option<Push>, Option<DeadLetter>)> {
        let push = match body.push_config.as_ref().filter(|p| !p.is_pull()) {
            None => None,
            Some(cfg) => {
                self.push_preconditions().await?;
                let input = self.push_input(cfg, Check::Create)?;
                Some(created_push(input))
            }
        };
        let dead_letter = self
            .dead_letter_of(ctx, body.dead_letter_policy.as_ref(), topic)
            .await?;
        Ok((push, dead_letter))
    }

    /// Validates a `deadLetterPolicy` (`None` or `{}`: no policy).
    async fn dead_letter_of(
        &self,
        ctx: &Context,
        policy: Option<&wire::DeadLetterPolicy>,
        subscription_topic: &str,
    ) -> Result<Option<DeadLetter>> {
        let Some(policy) = policy.filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let project = &ctx.project().name;
        let topic = match policy.dead_letter_topic.split('/').collect::<Vec<_>>()[..] {
            ["projects", p, "topics", t] if p == project => t,
            _ => {
                return Err(Error::InvalidDeadLetterPolicy(
                    "deadLetterTopic must be projects/<this project>/topics/<topic>",
                ));
            }
        };
        if topic == subscription_topic {
            return Err(Error::InvalidDeadLetterPolicy(
                "deadLetterTopic must differ from the subscription's topic",
            ));
        }
        if !(1..=MAX_DELIVERY_ATTEMPTS).contains(&policy.max_delivery_attempts) {
            return Err(Error::InvalidDeadLetterPolicy(
                "maxDeliveryAttempts must be between 1 and 1000",
            ));
        }
        self.topic(ctx, topic).await?;
        Ok(Some(DeadLetter {
            topic: topic.to_owned(),
            max_delivery_attempts: policy.max_delivery_attempts as u32,
        }))
    }

    /// `:modifyPushConfig` (contract §7.3): body, existence, then (for a
    /// non-empty config) push switches, retry policy and type; switching back
    /// to pull is always allowed. Activation and deactivation adjust the push
    /// worker's ACL entry and membership and tell the pusher.
    pub async fn modify_push_config(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::ModifyPushConfig, DecodeError>,
    ) -> Result<()> {
        let body = body.map_err(|_| Error::InvalidBody(Body::Subscription))?;
        let sub = self.subscription(ctx, name).await?;
        let (input, worker) = if body.push_config.is_pull() {
            (None, self.push_worker().await.ok().flatten())
        } else {
            let worker = self.push_preconditions().await?;
            (
                Some(self.push_input(&body.push_config, Check::Modify)?),
                worker,
            )
        };
        // `None`: leave the stored policy as it is at write time.
        let dead_letter = match &body.dead_letter_policy {
            None => None,
            Some(policy) => Some(self.dead_letter_of(ctx, Some(policy), &sub.topic).await?),
        };
        let worker_id = worker.as_ref().map(|w| w.uuid);
        let (updated, _) = self
            .meta()
            .update_subscription(ctx.project().uuid, name, &mut |s: &mut Subscription| {
                let was_active = s.push_active();
                s.push = input.clone().map(|i| modified_push(s.push.as_ref(), i));
                if let Some(policy) = &dead_letter {
                    s.dead_letter = policy.clone();
                }
                let active = s.push_active();
                if let Some(w) = worker_id {
                    adjust_acl(&mut s.acl, w, was_active, active);
                }
                true
            })
            .await?
            .map_err(|_| Error::SubscriptionNotFound)?;
        if let Some(worker) = worker.filter(|_| updated.push_active()) {
            self.add_push_worker_member(ctx.project(), worker).await?;
        }
        self.notify_push(ctx.project().uuid, name);
        Ok(())
    }

    /// `:verifyPushEndpoint` (contract §7.4).
    pub async fn verify_push_endpoint(&self, ctx: &Context, name: &str) -> Result<()> {
        let worker = self.push_preconditions().await?;
        let sub = self.subscription(ctx, name).await?;
        let push = match &sub.push {
            Some(p) if p.kind == PushKind::HttpEndpoint => p,
            _ => return Err(Error::NotHttpPush),
        };
        if push.verified {
            return Err(Error::AlreadyVerified);
        }
        let url = verification_url(&push.endpoint)
            .ok_or_else(|| Error::VerificationFailed("invalid endpoint".into()))?;
        let gateway = self
            .push_gateway()
            .ok_or_else(|| Error::VerificationFailed(PUSH_UNAVAILABLE.into()))?;
        let body = gateway
            .fetch_verification(&url)
            .await
            .map_err(|e| match e {
                VerifyFailure::Transport(text) => Error::VerificationFailed(text),
                VerifyFailure::Status(_) => {
                    Error::VerificationFailed("Wrong response status code".into())
                }
            })?;
        if body != push.verification_hash.as_bytes() {
            return Err(Error::VerificationFailed("Wrong verification hash".into()));
        }
        // Verified only if the endpoint is still the one that answered.
        let (endpoint, hash) = (push.endpoint.clone(), push.verification_hash.clone());
        let worker_id = worker.as_ref().map(|w| w.uuid);
        let (updated, changed) = self
            .meta()
            .update_subscription(ctx.project().uuid, name, &mut |s: &mut Subscription| {
                let Some(p) = s.push.as_mut().filter(|p| {
                    p.kind == PushKind::HttpEndpoint
                        && p.endpoint == endpoint
                        && p.verification_hash == hash
                        && !p.verified
                }) else {
                    return false;
                };
                p.verified = true;
                if let Some(w) = worker_id {
                    adjust_acl(&mut s.acl, w, false, true);
                }
                true
            })
            .await?
            .map_err(|_| Error::SubscriptionNotFound)?;
        if !changed {
            // A concurrent verification won, or the endpoint changed meanwhile.
            return Err(match &updated.push {
                Some(p) if p.verified && p.endpoint == endpoint => Error::AlreadyVerified,
                _ => Error::VerificationFailed(
                    "The push configuration changed during verification".into(),
                ),
            });
        }
        self.notify_push(ctx.project().uuid, name);
        if let Some(worker) = worker.filter(|_| updated.push_active()) {
            self.add_push_worker_member(ctx.project(), worker).await?;
        }
        Ok(())
    }

    /// Adds the push worker to the project as a role-less member (contract §7.6),
    /// atomically: a concurrent change of the user (a token refresh) is kept.
    async fn add_push_worker_member(
        &self,
        project: &Project,
        worker: crate::model::User,
    ) -> Result<()> {
        self.meta()
            .add_membership(worker.uuid, project.uuid)
            .await?
            .map_err(|_| Error::PushUnavailable)
    }

    /// Tells the pusher that a subscription's push state may have changed.
    pub(crate) fn notify_push(&self, project: Uuid, name: &str) {
        if let Some(gateway) = self.push_gateway() {
            gateway.changed(project, name);
        }
    }

    /// After creating a subscription: a mattermost one is active at once, so
    /// the worker joins its ACL and project, and the pusher starts it.
    pub(crate) async fn activate_created(&self, ctx: &Context, sub: &Subscription) -> Result<()> {
        if !sub.push_active() {
            return Ok(());
        }
        if let Some(worker) = self.push_worker().await? {
            let id = worker.uuid;
            self.meta()
                .update_subscription(sub.project, &sub.name, &mut |s: &mut Subscription| {
                    adjust_acl(&mut s.acl, id, false, true);
                    true
                })
                .await?
                .map_err(|_| Error::SubscriptionNotFound)?;
            self.add_push_worker_member(ctx.project(), worker).await?;
        }
        self.notify_push(sub.project, &sub.name);
        Ok(())
    }

    /// `pushStatus` of `subscriptions:show`: only for active push subscriptions.
    pub(crate) fn push_status(&self, project: &Project, sub: &Subscription) -> String {
        if !sub.push_active() {
            return String::new();
        }
        let full = full_name(&project.name, &sub.name);
        match self.push_gateway() {
            Some(g) if self.settings().push_enabled => g.status(project.uuid, &sub.name, &full),
            _ => PUSH_UNAVAILABLE.to_owned(),
        }
    }

    /// The contract §6.3 checks of pulling a push subscription: 409 for a push
    /// worker while push is off, 403 for anyone but a push worker or service admin.
    pub(crate) fn check_push_pull(&self, ctx: &Context, sub: &Subscription) -> Result<()> {
        if sub.push.is_none() {
            return Ok(());
        }
        if ctx.caller.has(Role::PushWorker) && !self.settings().push_enabled {
            return Err(Error::PushDisabled);
        }
        if !ctx.caller.has(Role::PushWorker) && !ctx.caller.has(Role::ServiceAdmin) {
            return Err(Error::Forbidden);
        }
        Ok(())
    }

    // ---- what the pusher uses ----

    /// The identity the pusher pulls and acknowledges with in `project`: the
    /// configured push worker, or an internal principal with the `push_worker`
    /// role when none is configured.
    pub async fn push_context(&self, project: Project) -> Result<Context> {
        let caller = match self.push_worker().await? {
            // The configured user acts with the roles it really has: without
            // `push_worker` its pulls are refused, as the original's would be.
            Some(user) => Caller {
                user: Some(user.uuid),
                roles: user
                    .membership(project.uuid)
                    .map(|m| m.roles.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .chain(&user.service_roles)
                    .filter_map(|r| Role::parse(r))
                    .collect(),
            },
            None => Caller {
                user: None,
                roles: vec![Role::PushWorker],
            },
        };
        Ok(Context {
            caller,
            project: Some(project),
        })
    }

    /// Every subscription the pusher should deliver, as (project, name).
    pub async fn active_push_subscriptions(&self) -> Result<Vec<(Uuid, String)>> {
        Ok(self
            .all_subscriptions()
            .await?
            .into_iter()
            .filter(|(_, s)| s.push_active())
            .map(|(p, s)| (p.uuid, s.name))
            .collect())
    }

    /// A subscription and its project, by project UUID (for the pusher).
    pub async fn subscription_by_uuid(
        &self,
        project: Uuid,
        name: &str,
    ) -> Result<Option<(Project, Subscription)>> {
        let Some(p) = self.meta().project_by_uuid(project).await? else {
            return Ok(None);
        };
        Ok(self
            .meta()
            .subscription(project, name)
            .await?
            .map(|s| (p, s)))
    }

    /// Waits up to `timeout` for a message at or beyond `offset` in the
    /// subscription's topic; returns at once if there is one or the topic is gone.
    pub async fn wait_for_messages(
        &self,
        sub: &Subscription,
        offset: u64,
        timeout: std::time::Duration,
    ) -> Result<()> {
        if let Some(topic) = self.meta().topic(sub.project, &sub.topic).await? {
            self.log()
                .wait_beyond(&topic.log_ref(), offset, timeout)
                .await?;
        }
        Ok(())
    }

    /// Takes or renews the lease `key` for `holder` for `ttl` from now.
    pub async fn acquire_lease(
        &self,
        key: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let now = self.now().nanos() / 1_000_000;
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        Ok(self.meta().acquire_lease(key, holder, now, until).await?)
    }

    /// Gives a lease up.
    pub async fn release_lease(&self, key: &str, holder: &str) -> Result<()> {
        Ok(self.meta().release_lease(key, holder).await?)
    }

    /// Publishes `messages` (as pulled from subscription `name`, starting at
    /// its committed offset) to the subscription's dead-letter topic, with
    /// attributes saying where they came from and why, then moves the
    /// committed offset past them. Returns `false` if the subscription has no
    /// dead-letter policy any more or its cursor moved. Publishing comes first,
    /// so a crash in between repeats a dead letter rather than losing it.
    pub async fn dead_letter(
        &self,
        ctx: &Context,
        name: &str,
        messages: &[wire::ReceivedMessage],
        attempts: u32,
        reason: &str,
    ) -> Result<bool> {
        let sub = self.subscription(ctx, name).await?;
        let offset = |r: &wire::ReceivedMessage| r.message.message_id.parse::<u64>().ok();
        let (Some(first), Some(last)) = (
            messages.first().and_then(offset),
            messages.last().and_then(offset),
        ) else {
            return Ok(false);
        };
        if sub.cursor.offset != first
            || !self
                .publish_dead_letters(ctx, &sub, messages, attempts, reason)
                .await?
        {
            return Ok(false);
        }
        self.skip_past(&sub, first, last + 1).await?;
        Ok(true)
    }

    /// The pull side of a dead-letter policy: a head message that pulls have
    /// returned `maxDeliveryAttempts` times without an acknowledgement goes to
    /// the dead-letter topic and the committed offset moves past it. Returns
    /// the subscription as it now is. A missing dead-letter topic leaves the
    /// message where it is (and is logged): a consumer never fails for it.
    pub(crate) async fn retire_exhausted_head(
        &self,
        ctx: &Context,
        sub: Subscription,
        topic: &crate::model::Topic,
    ) -> Result<Subscription> {
        let attempts = sub.cursor.deliveries;
        // Only once the latest delivery also went unacknowledged past its
        // deadline: consumers pulling side by side are not failures.
        let expired = sub
            .cursor
            .pending_since
            .is_none_or(|at| self.now().secs().saturating_sub(at) > sub.ack_deadline);
        if !expired
            || sub
                .dead_letter
                .as_ref()
                .is_none_or(|p| attempts < p.max_delivery_attempts)
        {
            return Ok(sub);
        }
        let offset = sub.cursor.offset;
        let head = self
            .log()
            .read(&topic.log_ref(), offset, 1, self.settings().max_pull_bytes)
            .await?
            .into_iter()
            .find(|m| m.offset == offset);
        if let Some(m) = head {
            let prefix = format!("projects/{}/subscriptions/{}", ctx.project().name, sub.name);
            let reason = format!("not acknowledged after {attempts} deliveries");
            let r = crate::messages::received(&prefix, m);
            match self
                .publish_dead_letters(ctx, &sub, &[r], attempts, &reason)
                .await
            {
                Ok(_) => {}
                Err(Error::TopicNotFound) => {
                    tracing::warn!(subscription = %sub.name, "dead-letter topic is missing; message kept");
                    return Ok(sub);
                }
                Err(e) => return Err(e),
            }
        }
        self.skip_past(&sub, offset, offset + 1).await?;
        self.subscription(ctx, &sub.name).await
    }

    /// Moves the committed offset from `from` to `to` unless it moved
    /// meanwhile (an acknowledgement or seek won: nothing to skip). Not
    /// subject to the ack deadline: dead-lettered messages leave the
    /// subscription however long their delivery took.
    async fn skip_past(&self, sub: &Subscription, from: u64, to: u64) -> Result<()> {
        self.meta()
            .update_cursor(sub.project, &sub.name, WriteDurability::Tier, &mut |c| {
                if c.offset == from {
                    c.seek(to);
                    Ok(())
                } else {
                    Err(CursorRefusal::Moved)
                }
            })
            .await?
            .map_err(|_| Error::SubscriptionNotFound)?
            .ok();
        self.cursor_moved(sub.project, &sub.name);
        Ok(())
    }

    /// Publishes `messages` of `sub` to its dead-letter topic; `false` if it
    /// has no policy.
    pub(crate) async fn publish_dead_letters(
        &self,
        ctx: &Context,
        sub: &Subscription,
        messages: &[wire::ReceivedMessage],
        attempts: u32,
        reason: &str,
    ) -> Result<bool> {
        let Some(policy) = sub.dead_letter.as_ref() else {
            return Ok(false);
        };
        let topic = self.topic(ctx, &policy.topic).await?;
        let source = full_name(&ctx.project().name, &sub.name);
        let batch: Vec<NewMessage> = messages
            .iter()
            .map(|r| {
                let mut attributes: BTreeMap<String, String> = r.message.attributes.clone();
                attributes.insert("deadLetterSourceSubscription".into(), source.clone());
                attributes.insert(
                    "deadLetterSourceMessageId".into(),
                    r.message.message_id.clone(),
                );
                attributes.insert(
                    "deadLetterSourcePublishTime".into(),
                    r.message.publish_time.clone(),
                );
                attributes.insert("deadLetterDeliveryAttempts".into(), attempts.to_string());
                attributes.insert("deadLetterReason".into(), reason.to_owned());
                NewMessage {
                    attributes: attributes.into_iter().collect(),
                    data: r.message.data.clone(),
                }
            })
            .collect();
        let log: LogRef = topic.log_ref();
        self.log().append(&log, batch, self.now().nanos()).await?;
        Ok(true)
    }
}

/// Adds or removes the push worker from an ACL on (de)activation.
fn adjust_acl(acl: &mut Vec<Uuid>, worker: Uuid, was_active: bool, active: bool) {
    if was_active && !active {
        acl.retain(|u| *u != worker);
    } else if active && !acl.contains(&worker) {
        acl.push(worker);
    }
}

/// Retry defaults and validation (contract §7.1, plus `exponential`).
fn retry_policy(p: &wire::RetryPolicy) -> Result<RetryPolicy> {
    let positive = |n: i64, default: u32| {
        if n <= 0 {
            Some(default)
        } else {
            u32::try_from(n).ok()
        }
    };
    match p.kind.as_str() {
        "" | "linear" => Ok(RetryPolicy::Linear {
            period_ms: positive(p.period, DEFAULT_PERIOD_MS).unwrap_or(u32::MAX),
        }),
        "slowstart" => Ok(RetryPolicy::Slowstart),
        "exponential" => {
            let min = positive(p.min_backoff, DEFAULT_MIN_BACKOFF_MS);
            let max = positive(p.max_backoff, DEFAULT_MAX_BACKOFF_MS.max(min.unwrap_or(0)));
            match (min, max) {
                (Some(min), Some(max)) if min <= max && max <= MAX_BACKOFF_MS => {
                    Ok(RetryPolicy::Exponential {
                        min_backoff_ms: min,
                        max_backoff_ms: max,
                    })
                }
                _ => Err(Error::InvalidBackoff),
            }
        }
        _ => Err(Error::InvalidRetryPolicy),
    }
}

/// The push settings of a create (contract §7.2).
fn created_push(i: Input) -> Push {
    match i.kind {
        PushKind::HttpEndpoint => {
            let disabled = i.authorization.as_deref() == Some("disabled");
            Push {
                kind: PushKind::HttpEndpoint,
                endpoint: i.endpoint,
                max_messages: i.max_messages.max(1),
                authorization_type: if disabled { "disabled" } else { "autogen" }.into(),
                authorization_value: if disabled { String::new() } else { new_token() },
                retry: i.retry,
                verification_hash: new_token(),
                verified: false,
                mattermost_url: String::new(),
                mattermost_username: String::new(),
                mattermost_channel: String::new(),
                base64_decode: i.base64_decode,
            }
        }
        PushKind::Mattermost => Push {
            kind: PushKind::Mattermost,
            endpoint: String::new(),
            max_messages: 1,
            authorization_type: String::new(),
            authorization_value: String::new(),
            retry: i.retry,
            verification_hash: String::new(),
            verified: true,
            mattermost_url: i.mattermost_url,
            mattermost_username: i.mattermost_username,
            mattermost_channel: i.mattermost_channel,
            base64_decode: i.base64_decode,
        },
    }
}

/// The push settings after `:modifyPushConfig` (contract §7.3 step 2).
fn modified_push(stored: Option<&Push>, i: Input) -> Push {
    match i.kind {
        PushKind::HttpEndpoint => {
            let same =
                stored.filter(|s| s.kind == PushKind::HttpEndpoint && s.endpoint == i.endpoint);
            let (verification_hash, verified) = match same {
                Some(s) => (s.verification_hash.clone(), s.verified),
                None => (new_token(), false),
            };
            let stored_auth =
                stored.map(|s| (s.authorization_type.as_str(), &s.authorization_value));
            let (authorization_type, authorization_value) = match i.authorization.as_deref() {
                Some("disabled") => ("disabled", String::new()),
                Some(_) => ("autogen", new_token()),
                None => match stored_auth {
                    None => ("autogen", new_token()),
                    // A stored autogen without a value (the mattermost quirk)
                    // gets one rather than delivering without a header.
                    Some(("autogen", v)) if !v.is_empty() => ("autogen", v.clone()),
                    Some(("autogen", _)) => ("autogen", new_token()),
                    Some(_) => ("disabled", String::new()),
                },
            };
            let max_messages = if i.max_messages > 0 {
                i.max_messages
            } else {
                stored.map_or(0, |s| s.max_messages).max(1)
            };
            Push {
                kind: PushKind::HttpEndpoint,
                endpoint: i.endpoint,
                max_messages,
                authorization_type: authorization_type.into(),
                authorization_value,
                retry: i.retry,
                verification_hash,
                verified,
                mattermost_url: String::new(),
                mattermost_username: String::new(),
                mattermost_channel: String::new(),
                base64_decode: i.base64_decode,
            }
        }
        PushKind::Mattermost => Push {
            // The original records `autogen` without a value here.
            authorization_type: "autogen".into(),
            ..created_push(i)
        },
    }
}

/// `<scheme>://<host[:port]>/ams_verification_hash` of an endpoint (its own
/// path dropped, contract §7.4).
pub fn verification_url(endpoint: &str) -> Option<String> {
    let u = url::Url::parse(endpoint).ok()?;
    let host = u.host_str()?;
    Some(match u.port() {
        Some(port) => format!("{}://{host}:{port}/ams_verification_hash", u.scheme()),
        None => format!("{}://{host}/ams_verification_hash", u.scheme()),
    })
}

/// `pushConfig` as rendered (contract §3.4).
pub fn push_view(push: Option<&Push>) -> wire::PushConfig {
    let Some(p) = push else {
        return wire::PushConfig::default();
    };
    let retry_policy = match p.retry {
        RetryPolicy::Linear { period_ms } => wire::RetryPolicy {
            kind: "linear".into(),
            period: period_ms.into(),
            ..Default::default()
        },
        RetryPolicy::Slowstart => wire::RetryPolicy {
            kind: "slowstart".into(),
            ..Default::default()
        },
        RetryPolicy::Exponential {
            min_backoff_ms,
            max_backoff_ms,
        } => wire::RetryPolicy {
            kind: "exponential".into(),
            min_backoff: min_backoff_ms.into(),
            max_backoff: max_backoff_ms.into(),
            ..Default::default()
        },
    };
    wire::PushConfig {
        kind: p.kind.as_str().into(),
        push_endpoint: p.endpoint.clone(),
        max_messages: p.max_messages.max(1),
        authorization_header: wire::AuthorizationHeader {
            kind: p.authorization_type.clone(),
            value: p.authorization_value.clone(),
        },
        retry_policy,
        verification_hash: p.verification_hash.clone(),
        verified: p.verified,
        mattermost_url: p.mattermost_url.clone(),
        mattermost_username: p.mattermost_username.clone(),
        mattermost_channel: p.mattermost_channel.clone(),
        base64_decode: p.base64_decode,
    }
}

/// `deadLetterPolicy` as rendered.
pub fn dead_letter_view(project: &str, d: Option<&DeadLetter>) -> Option<wire::DeadLetterPolicy> {
    d.map(|d| wire::DeadLetterPolicy {
        dead_letter_topic: format!("projects/{project}/topics/{}", d.topic),
        max_delivery_attempts: d.max_delivery_attempts.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(kind: &str, period: i64, min: i64, max: i64) -> Result<RetryPolicy> {
        retry_policy(&wire::RetryPolicy {
            kind: kind.into(),
            period,
            min_backoff: min,
            max_backoff: max,
        })
    }

    #[test]
    fn retry_defaults_and_refusals() {
        assert_eq!(
            retry("", 0, 0, 0).unwrap(),
            RetryPolicy::Linear { period_ms: 3000 }
        );
        assert_eq!(
            retry("linear", -5, 0, 0).unwrap(),
            RetryPolicy::Linear { period_ms: 3000 }
        );
        assert_eq!(
            retry("linear", 250, 0, 0).unwrap(),
            RetryPolicy::Linear { period_ms: 250 }
        );
        assert_eq!(retry("slowstart", 9, 0, 0).unwrap(), RetryPolicy::Slowstart);
        assert_eq!(
            retry("exponential", 0, 0, 0).unwrap(),
            RetryPolicy::Exponential {
                min_backoff_ms: 1000,
                max_backoff_ms: 600_000
            }
        );
        assert_eq!(
            retry("exponential", 0, 700_000, 0).unwrap(),
            RetryPolicy::Exponential {
                min_backoff_ms: 700_000,
                max_backoff_ms: 700_000
            }
        );
        assert!(matches!(
            retry("exponential", 0, 500, 100),
            Err(Error::InvalidBackoff)
        ));
        assert!(matches!(
            retry("exponential", 0, 1, 86_400_001),
            Err(Error::InvalidBackoff)
        ));
        assert!(matches!(
            retry("fibonacci", 0, 0, 0),
            Err(Error::InvalidRetryPolicy)
        ));
    }

    #[test]
    fn verification_url_drops_the_path_and_keeps_the_port() {
        assert_eq!(
            verification_url("https://example.com:8443/a/b?c=d").unwrap(),
            "https://example.com:8443/ams_verification_hash"
        );
        assert_eq!(
            verification_url("https://example.com/receive").unwrap(),
            "https://example.com/ams_verification_hash"
        );
        assert_eq!(
            verification_url("http://127.0.0.1:9/x").unwrap(),
            "http://127.0.0.1:9/ams_verification_hash"
        );
        assert!(verification_url("not a url").is_none());
    }

    fn input(kind: PushKind, endpoint: &str, auth: Option<&str>, max: i64) -> Input {
        Input {
            kind,
            endpoint: endpoint.into(),
            max_messages: max,
            authorization: auth.map(str::to_owned),
            retry: RetryPolicy::Slowstart,
            mattermost_url: "https://mm/hook".into(),
            mattermost_username: String::new(),
            mattermost_channel: String::new(),
            base64_decode: true,
        }
    }

    #[test]
    fn modify_keeps_verification_for_the_same_endpoint_and_rotates_explicit_autogen() {
        let mut stored = created_push(input(PushKind::HttpEndpoint, "https://a/x", None, 5));
        stored.verified = true;
        let same = modified_push(
            Some(&stored),
            input(PushKind::HttpEndpoint, "https://a/x", None, 0),
        );
        assert!(same.verified);
        assert_eq!(same.verification_hash, stored.verification_hash);
        assert_eq!(same.authorization_value, stored.authorization_value);
        assert_eq!(same.max_messages, 5);
        assert!(
            same.base64_decode,
            "base64Decode is kept (the original dropped it)"
        );

        let rotated = modified_push(
            Some(&stored),
            input(PushKind::HttpEndpoint, "https://a/x", Some("autogen"), 2),
        );
        assert_ne!(rotated.authorization_value, stored.authorization_value);
        assert_eq!(rotated.authorization_value.len(), 64);
        assert_eq!(rotated.max_messages, 2);

        let moved = modified_push(
            Some(&stored),
            input(PushKind::HttpEndpoint, "https://b/x", Some("disabled"), 0),
        );
        assert!(!moved.verified);
        assert_ne!(moved.verification_hash, stored.verification_hash);
        assert_eq!(moved.authorization_type, "disabled");
        assert!(moved.authorization_value.is_empty());

        let from_pull = modified_push(None, input(PushKind::HttpEndpoint, "https://a/x", None, 0));
        assert_eq!(from_pull.authorization_type, "autogen");
        assert_eq!(from_pull.max_messages, 1);
        assert!(!from_pull.verified);

        let mm = modified_push(Some(&stored), input(PushKind::Mattermost, "", None, 9));
        assert!(mm.verified);
        assert_eq!(mm.max_messages, 1);
        assert_eq!(mm.authorization_type, "autogen");
        assert!(mm.endpoint.is_empty() && mm.verification_hash.is_empty());
    }

    #[test]
    fn views_render_the_contract_shapes() {
        let p = created_push(input(PushKind::Mattermost, "", None, 0));
        let v = push_view(Some(&p));
        assert_eq!(v.kind, "mattermost");
        assert_eq!(v.max_messages, 1);
        assert!(v.authorization_header.kind.is_empty());
        assert_eq!(v.retry_policy.kind, "slowstart");
        assert_eq!(v.retry_policy.period, 0);
        assert!(v.verified);
        assert_eq!(push_view(None), wire::PushConfig::default());
    }
}
