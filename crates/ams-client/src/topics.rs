//! `/v1/projects/{project}/topics…` routes.

use ams_types::wire;
use reqwest::Method;
use serde::Serialize;

use crate::transport::{Retry, full_name, verb};
use crate::{Client, Result};

/// `:publish` body, borrowing the caller's messages.
#[derive(Serialize)]
struct PublishBody<'a> {
    messages: &'a [wire::PublishMessage],
}

impl Client {
    /// `GET …/topics`, following every page: all topics, newest first.
    pub async fn list_topics(&self, project: &str) -> Result<Vec<wire::Topic>> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.list_topics_page(project, None, &token).await?;
            all.extend(page.topics);
            if page.next_page_token.is_empty() || page.next_page_token == token {
                return Ok(all);
            }
            token = page.next_page_token;
        }
    }

    /// `GET …/topics?pageSize=&pageToken=`: one page (`page_token` `""` for
    /// the first; `page_size` `None` for the server's default, everything).
    pub async fn list_topics_page(
        &self,
        project: &str,
        page_size: Option<u32>,
        page_token: &str,
    ) -> Result<wire::TopicList> {
        let size = page_size.map(|n| n.to_string()).unwrap_or_default();
        let url = self.url_with(
            &["projects", project, "topics"],
            &[("pageSize", &size), ("pageToken", page_token)],
        );
        self.get(url).await
    }

    /// `GET …/topics/{topic}`.
    pub async fn get_topic(&self, project: &str, topic: &str) -> Result<wire::Topic> {
        self.get(self.url(&["projects", project, "topics", topic]))
            .await
    }

    /// `PUT …/topics/{topic}`, optionally linked to a schema (its name, or
    /// `projects/{p}/schemas/{s}`).
    pub async fn create_topic(
        &self,
        project: &str,
        topic: &str,
        schema: Option<&str>,
    ) -> Result<wire::Topic> {
        let body = wire::TopicCreate {
            schema: schema.map(|s| full_name(project, "schemas", s)),
        };
        let url = self.url(&["projects", project, "topics", topic]);
        self.json(Method::PUT, url, &body, Retry::Yes).await
    }

    /// `DELETE …/topics/{topic}`.
    pub async fn delete_topic(&self, project: &str, topic: &str) -> Result<()> {
        let url = self.url(&["projects", project, "topics", topic]);
        self.call::<()>(Method::DELETE, url, None, Retry::Yes).await
    }

    /// `POST …/topics/{topic}:publish` (never retried): the ids of the
    /// published messages, in order.
    pub async fn publish(
        &self,
        project: &str,
        topic: &str,
        messages: &[wire::PublishMessage],
    ) -> Result<Vec<String>> {
        let url = self.url(&["projects", project, "topics", &verb(topic, "publish")]);
        let answer: wire::PublishResponse = self
            .json(Method::POST, url, &PublishBody { messages }, Retry::No)
            .await?;
        Ok(answer.message_ids)
    }

    /// `GET …/topics/{topic}:acl`: the users allowed to publish.
    pub async fn topic_acl(&self, project: &str, topic: &str) -> Result<Vec<String>> {
        let url = self.url(&["projects", project, "topics", &verb(topic, "acl")]);
        let acl: wire::Acl = self.get(url).await?;
        Ok(acl.authorized_users)
    }

    /// `POST …/topics/{topic}:modifyAcl`: replaces the ACL.
    pub async fn modify_topic_acl(&self, project: &str, topic: &str, users: &[&str]) -> Result<()> {
        let url = self.url(&["projects", project, "topics", &verb(topic, "modifyAcl")]);
        let body = acl_body(users);
        self.call(Method::POST, url, Some(&body), Retry::No).await
    }

    /// `GET …/topics/{topic}:metrics`.
    pub async fn topic_metrics(&self, project: &str, topic: &str) -> Result<wire::MetricList> {
        self.get(self.url(&["projects", project, "topics", &verb(topic, "metrics")]))
            .await
    }

    /// `POST …/topics/{topic}:attachSchema`: links a schema (its name, or
    /// `projects/{p}/schemas/{s}`).
    pub async fn attach_schema(&self, project: &str, topic: &str, schema: &str) -> Result<()> {
        let url = self.url(&["projects", project, "topics", &verb(topic, "attachSchema")]);
        let body = wire::TopicCreate {
            schema: Some(full_name(project, "schemas", schema)),
        };
        self.call(Method::POST, url, Some(&body), Retry::No).await
    }

    /// `POST …/topics/{topic}:detachSchema`.
    pub async fn detach_schema(&self, project: &str, topic: &str) -> Result<()> {
        let url = self.url(&["projects", project, "topics", &verb(topic, "detachSchema")]);
        self.call::<()>(Method::POST, url, None, Retry::No).await
    }

    /// `GET …/topics/{topic}/subscriptions`: `/projects/{p}/subscriptions/{s}`
    /// names of the topic's subscriptions.
    pub async fn topic_subscriptions(&self, project: &str, topic: &str) -> Result<Vec<String>> {
        let url = self.url(&["projects", project, "topics", topic, "subscriptions"]);
        let list: wire::TopicSubscriptions = self.get(url).await?;
        Ok(list.subscriptions)
    }
}

/// A `:modifyAcl` body.
pub(crate) fn acl_body(users: &[&str]) -> wire::ModifyAcl {
    wire::ModifyAcl {
        authorized_users: Some(users.iter().map(|u| (*u).to_owned()).collect()),
    }
}
