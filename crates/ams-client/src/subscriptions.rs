//! `/v1/projects/{project}/subscriptions…` routes.

use ams_types::wire;
use reqwest::Method;

use crate::topics::acl_body;
use crate::transport::{Retry, decode, encode, full_name, verb};
use crate::{Client, Result};

impl Client {
    /// `GET …/subscriptions`, following every page: all subscriptions,
    /// newest first.
    pub async fn list_subscriptions(&self, project: &str) -> Result<Vec<wire::Subscription>> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.list_subscriptions_page(project, None, &token).await?;
            all.extend(page.subscriptions);
            if page.next_page_token.is_empty() || page.next_page_token == token {
                return Ok(all);
            }
            token = page.next_page_token;
        }
    }

    /// `GET …/subscriptions?pageSize=&pageToken=`: one page (`page_token`
    /// `""` for the first; `page_size` `None` for the server's default,
    /// everything).
    pub async fn list_subscriptions_page(
        &self,
        project: &str,
        page_size: Option<u32>,
        page_token: &str,
    ) -> Result<wire::SubscriptionList> {
        let size = page_size.map(|n| n.to_string()).unwrap_or_default();
        let url = self.url_with(
            &["projects", project, "subscriptions"],
            &[("pageSize", &size), ("pageToken", page_token)],
        );
        self.get(url).await
    }

    /// `GET …/subscriptions/{sub}`.
    pub async fn get_subscription(&self, project: &str, sub: &str) -> Result<wire::Subscription> {
        self.get(self.url(&["projects", project, "subscriptions", sub]))
            .await
    }

    /// `PUT …/subscriptions/{sub}`: a pull subscription of `topic` (its name
    /// in `project`, or `projects/{p}/topics/{t}`), with the server's default
    /// ack deadline (10 s) when `ack_deadline` is `None`.
    pub async fn create_subscription(
        &self,
        project: &str,
        sub: &str,
        topic: &str,
        ack_deadline: Option<i64>,
    ) -> Result<wire::Subscription> {
        let body = wire::SubscriptionCreate {
            topic: full_name(project, "topics", topic),
            ack_deadline_seconds: ack_deadline.unwrap_or_default(),
            push_config: None,
            dead_letter_policy: None,
        };
        self.create_subscription_with(project, sub, &body).await
    }

    /// `PUT …/subscriptions/{sub}` with a full body (push configuration,
    /// dead-letter policy), sent as given.
    pub async fn create_subscription_with(
        &self,
        project: &str,
        sub: &str,
        body: &wire::SubscriptionCreate,
    ) -> Result<wire::Subscription> {
        let url = self.url(&["projects", project, "subscriptions", sub]);
        self.json(Method::PUT, url, body, Retry::Yes).await
    }

    /// `DELETE …/subscriptions/{sub}`.
    pub async fn delete_subscription(&self, project: &str, sub: &str) -> Result<()> {
        let url = self.url(&["projects", project, "subscriptions", sub]);
        self.call::<()>(Method::DELETE, url, None, Retry::Yes).await
    }

    /// `POST …/subscriptions/{sub}:pull`: up to `max_messages` messages.
    /// With `return_immediately` false the server waits (up to its long-poll
    /// limit) for a first message. Retried: a lost answer only means the
    /// messages are delivered again after the ack deadline.
    pub async fn pull(
        &self,
        project: &str,
        sub: &str,
        max_messages: u32,
        return_immediately: bool,
    ) -> Result<Vec<wire::ReceivedMessage>> {
        let url = self.url(&["projects", project, "subscriptions", &verb(sub, "pull")]);
        let body = wire::Pull {
            max_messages: Some(max_messages.to_string()),
            return_immediately: Some(return_immediately.to_string()),
        };
        let timeout = if return_immediately {
            self.timeout()
        } else {
            self.long_poll_timeout()
        };
        let answer = self
            .send(Method::POST, url, Some(encode(&body)?), Retry::Yes, timeout)
            .await?;
        let pulled: wire::PullResponse = decode(&answer)?;
        Ok(pulled.received_messages)
    }

    /// `POST …/subscriptions/{sub}:acknowledge` (never retried):
    /// acknowledges up to the highest of `ack_ids`.
    pub async fn acknowledge(&self, project: &str, sub: &str, ack_ids: &[String]) -> Result<()> {
        let url = self.url(&[
            "projects",
            project,
            "subscriptions",
            &verb(sub, "acknowledge"),
        ]);
        let body = wire::Acknowledge {
            ack_ids: Some(ack_ids.to_vec()),
        };
        self.call(Method::POST, url, Some(&body), Retry::No).await
    }

    /// `GET …/subscriptions/{sub}:offsets`: the topic's bounds and the
    /// subscription's position.
    pub async fn offsets(&self, project: &str, sub: &str) -> Result<wire::Offsets> {
        self.get(self.url(&["projects", project, "subscriptions", &verb(sub, "offsets")]))
            .await
    }

    /// `POST …/subscriptions/{sub}:modifyOffset`: moves the subscription to
    /// `offset`.
    pub async fn modify_offset(&self, project: &str, sub: &str, offset: i64) -> Result<()> {
        let url = self.url(&[
            "projects",
            project,
            "subscriptions",
            &verb(sub, "modifyOffset"),
        ]);
        let body = wire::ModifyOffset { offset };
        self.call(Method::POST, url, Some(&body), Retry::No).await
    }

    /// `GET …/subscriptions/{sub}:timeToOffset?time=`: the first offset
    /// published at or after `time` (as the API takes it,
    /// `2024-01-01T10:00:00.000Z`).
    pub async fn time_to_offset(&self, project: &str, sub: &str, time: &str) -> Result<i64> {
        let url = self.url_with(
            &[
                "projects",
                project,
                "subscriptions",
                &verb(sub, "timeToOffset"),
            ],
            &[("time", time)],
        );
        let answer: wire::TimeToOffset = self.get(url).await?;
        Ok(answer.offset)
    }

    /// `POST …/subscriptions/{sub}:modifyAckDeadline` (0..=600 seconds).
    pub async fn modify_ack_deadline(&self, project: &str, sub: &str, seconds: i64) -> Result<()> {
        let url = self.url(&[
            "projects",
            project,
            "subscriptions",
            &verb(sub, "modifyAckDeadline"),
        ]);
        let body = wire::ModifyAckDeadline {
            ack_deadline_seconds: seconds,
        };
        self.call(Method::POST, url, Some(&body), Retry::No).await
    }

    /// `POST …/subscriptions/{sub}:modifyPushConfig`: a zero `pushConfig`
    /// turns the subscription into a pull one.
    pub async fn modify_push_config(
        &self,
        project: &str,
        sub: &str,
        body: &wire::ModifyPushConfig,
    ) -> Result<()> {
        let url = self.url(&[
            "projects",
            project,
            "subscriptions",
            &verb(sub, "modifyPushConfig"),
        ]);
        self.call(Method::POST, url, Some(body), Retry::No).await
    }

    /// `POST …/subscriptions/{sub}:verifyPushEndpoint`: asks the server to
    /// verify the push endpoint's ownership.
    pub async fn verify_push_endpoint(&self, project: &str, sub: &str) -> Result<()> {
        let url = self.url(&[
            "projects",
            project,
            "subscriptions",
            &verb(sub, "verifyPushEndpoint"),
        ]);
        self.call::<()>(Method::POST, url, None, Retry::No).await
    }

    /// `GET …/subscriptions/{sub}:acl`: the users allowed to consume.
    pub async fn subscription_acl(&self, project: &str, sub: &str) -> Result<Vec<String>> {
        let url = self.url(&["projects", project, "subscriptions", &verb(sub, "acl")]);
        let acl: wire::Acl = self.get(url).await?;
        Ok(acl.authorized_users)
    }

    /// `POST …/subscriptions/{sub}:modifyAcl`: replaces the ACL.
    pub async fn modify_subscription_acl(
        &self,
        project: &str,
        sub: &str,
        users: &[&str],
    ) -> Result<()> {
        let url = self.url(&[
            "projects",
            project,
            "subscriptions",
            &verb(sub, "modifyAcl"),
        ]);
        self.call(Method::POST, url, Some(&acl_body(users)), Retry::No)
            .await
    }

    /// `GET …/subscriptions/{sub}:metrics`.
    pub async fn subscription_metrics(&self, project: &str, sub: &str) -> Result<wire::MetricList> {
        self.get(self.url(&["projects", project, "subscriptions", &verb(sub, "metrics")]))
            .await
    }
}
