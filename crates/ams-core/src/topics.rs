//! Topics: create, show, list, delete, the subscriptions of a topic (contract §5.6).
//! Publishing lives in [`crate::messages`].

use ams_types::json::DecodeError;
use ams_types::wire;
use uuid::Uuid;

use crate::Ams;
use crate::auth::{Context, Role};
use crate::error::{Body, Error, Result};
use crate::model::{Project, Topic};
use crate::paging;
use crate::storage::LogRef;

impl Topic {
    /// The topic's message log.
    pub fn log_ref(&self) -> LogRef {
        LogRef {
            id: self.log_id,
            project: self.project,
            topic: self.name.clone(),
        }
    }
}

impl Ams {
    /// `PUT …/topics/{topic}`; `body` is `None` when the request had none.
    pub async fn create_topic(
        &self,
        ctx: &Context,
        name: &str,
        body: Option<Result<wire::TopicCreate, DecodeError>>,
    ) -> Result<wire::Topic> {
        let project = ctx.project();
        let body = body
            .transpose()
            .map_err(|_| Error::InvalidBody(Body::Request))?
            .unwrap_or_default();
        let schema = self.schema_of_body(ctx, body).await?;
        let topic = Topic {
            project: project.uuid,
            name: name.to_owned(),
            log_id: Uuid::new_v4(),
            created_on: self.now(),
            seq: 0,
            acl: Vec::new(),
            schema,
            published: Default::default(),
        };
        let topic = match self.meta().create_topic(topic).await? {
            Ok(topic) => topic,
            Err(_) => return Err(Error::TopicExists),
        };
        if let Err(e) = self.log().create(&topic.log_ref()).await {
            // No log, no topic: take the record back so that a retry can succeed.
            let _ = self.meta().delete_topic(project.uuid, name).await;
            return Err(e.into());
        }
        self.topic_view(project, &topic).await
    }

    /// `:attachSchema`: topic, then a body like create's; an empty body or no
    /// `schema` detaches.
    pub async fn attach_schema(
        &self,
        ctx: &Context,
        name: &str,
        body: Option<Result<wire::TopicCreate, DecodeError>>,
    ) -> Result<()> {
        self.topic(ctx, name).await?;
        let body = body
            .transpose()
            .map_err(|_| Error::InvalidBody(Body::Request))?
            .unwrap_or_default();
        let schema = self.schema_of_body(ctx, body).await?;
        self.set_topic_schema(ctx, name, schema).await
    }

    /// The schema a topic create/attach body names (none when absent or empty).
    async fn schema_of_body(&self, ctx: &Context, body: wire::TopicCreate) -> Result<Option<Uuid>> {
        match body.schema.filter(|s| !s.is_empty()) {
            Some(reference) => Ok(Some(self.schema_reference(ctx, &reference).await?)),
            None => Ok(None),
        }
    }

    /// `:detachSchema`.
    pub async fn detach_schema(&self, ctx: &Context, name: &str) -> Result<()> {
        self.topic(ctx, name).await?;
        self.set_topic_schema(ctx, name, None).await
    }

    async fn set_topic_schema(
        &self,
        ctx: &Context,
        name: &str,
        schema: Option<Uuid>,
    ) -> Result<()> {
        self.meta()
            .set_topic_schema(ctx.project().uuid, name, schema)
            .await?
            .map_err(|_| Error::TopicNotFound)
    }

    /// `GET …/topics/{topic}`.
    pub async fn show_topic(&self, ctx: &Context, name: &str) -> Result<wire::Topic> {
        let topic = self.topic(ctx, name).await?;
        self.topic_view(ctx.project(), &topic).await
    }

    /// `GET …/topics`: newest first, paginated.
    pub async fn list_topics(
        &self,
        ctx: &Context,
        page_size: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<wire::TopicList> {
        let mut page = paging::parse(page_size, page_token)?;
        page.acl_member = ctx.caller.listing_filter(Role::Publisher);
        let project = ctx.project();
        let page = self.meta().list_topics(project.uuid, page).await?;
        let mut topics = Vec::with_capacity(page.items.len());
        for t in &page.items {
            topics.push(self.topic_view(project, t).await?);
        }
        Ok(wire::TopicList {
            topics,
            next_page_token: paging::token(page.next),
            total_size: page.total,
        })
    }

    /// `DELETE …/topics/{topic}`: the topic and its log go; its subscriptions stay.
    pub async fn delete_topic(&self, ctx: &Context, name: &str) -> Result<()> {
        let topic = self
            .meta()
            .delete_topic(ctx.project().uuid, name)
            .await?
            .map_err(|_| Error::TopicNotFound)?;
        self.log().delete(&topic.log_ref()).await?;
        self.project_streams_check(ctx.project().uuid);
        Ok(())
    }

    /// `GET …/topics/{topic}/subscriptions`.
    pub async fn topic_subscriptions(
        &self,
        ctx: &Context,
        name: &str,
    ) -> Result<wire::TopicSubscriptions> {
        let topic = self.topic(ctx, name).await?;
        let project = ctx.project();
        let names = self
            .meta()
            .subscriptions_of_topic(project.uuid, &topic.name)
            .await?;
        Ok(wire::TopicSubscriptions {
            subscriptions: names
                .iter()
                .map(|s| format!("/projects/{}/subscriptions/{s}", project.name))
                .collect(),
        })
    }

    /// Looks up a topic of the context's project, or `Topic doesn't exist`.
    pub(crate) async fn topic(&self, ctx: &Context, name: &str) -> Result<Topic> {
        self.meta()
            .topic(ctx.project().uuid, name)
            .await?
            .ok_or(Error::TopicNotFound)
    }
}

impl Ams {
    /// A topic as rendered, with its schema reference (contract §3.3).
    pub(crate) async fn topic_view(&self, project: &Project, t: &Topic) -> Result<wire::Topic> {
        Ok(wire::Topic {
            name: format!("/projects/{}/topics/{}", project.name, t.name),
            schema: self.schema_reference_of(project, t).await?,
            created_on: t.created_on.to_rfc3339_seconds(),
        })
    }
}
