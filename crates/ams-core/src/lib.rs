//! The AMS domain: every rule of the API that is not about HTTP.
//!
//! [`Ams`] is a cheap-to-clone handle over the two storage backends and a
//! clock. Each resource module adds its operations to it; transports call one
//! operation per request with the [`auth::Context`] the pipeline established.
//!
//! # Layout
//! * [`auth`]: route → roles table, [`auth::Caller`], token checks.
//! * [`projects`], [`topics`], [`subscriptions`]: resource management.
//! * [`users`], [`members`], [`registrations`]: identity administration.
//! * [`acl`]: per-topic/subscription access lists and their enforcement.
//! * [`messages`]: publish, pull, acknowledge, offsets and time seeks.
//! * [`streams`]: live subscription streams (window, acks) and topic tails.
//! * [`push`]: push configuration, verification, the push worker, dead
//!   letters, and the [`push::PushGateway`] the built-in pusher plugs into.
//! * [`schemas`]: JSON Schema / AVRO schemas and publish-time validation.
//! * [`status`], [`version`]: the `/v1/status` health report and `/v1/version`.
//! * [`usage`]: AMS resource metrics (`:metrics`, `/v1/metrics`, VA and
//!   usage reports) and their durable counters.
//! * [`metrics`]: Prometheus counters and scrape-time gauges.
//! * [`paging`]: newest-first pagination tokens.
//! * [`model`]: stored records and the cursor state machine.
//! * [`storage`]: the backend traits ([`MessageLog`], [`MetadataStore`]).
//! * [`clock`]: injected time.
//! * [`error`]: [`Error`], one variant per AMS outcome.
//! * `conformance` (feature `testing`): the suite every backend must pass.

use std::sync::Arc;
use std::time::Duration;

pub mod acl;
pub mod auth;
pub mod clock;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod error;
pub mod members;
pub mod messages;
pub mod metrics;
pub mod model;
pub mod paging;
pub mod projects;
pub mod push;
pub mod registrations;
pub mod schemas;
pub mod status;
pub mod storage;
pub mod streams;
pub mod subscriptions;
pub mod topics;
pub mod usage;
pub mod users;
pub mod version;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use storage::{MessageLog, MetadataStore};

use auth::{Caller, Context, Route};

/// Limits and switches of the domain.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configured service token (full access); `None` disables it.
    pub service_token: Option<String>,
    /// Largest accepted message (data plus attributes), in bytes.
    pub max_message_bytes: usize,
    /// Longest a `returnImmediately: "false"` pull waits for a first message.
    pub long_poll_max: Duration,
    /// Payload bytes a single pull returns at most (at least one message).
    pub max_pull_bytes: usize,
    /// Enforce topic/subscription ACLs on publishers and consumers (contract §1.5).
    pub per_resource_auth: bool,
    /// Push subscriptions may be created and are delivered (contract §7).
    pub push_enabled: bool,
    /// Accept `http://` push endpoints (local development); https only otherwise.
    pub push_allow_http: bool,
    /// Token of the user acting as push worker (contract §7.6); `None` makes
    /// the built-in pusher an internal principal.
    pub push_worker_token: Option<String>,
    /// Reported as `hostname` by `/v1/version` (config `proxy_hostname`).
    pub proxy_hostname: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            service_token: None,
            max_message_bytes: 1_500_000,
            long_poll_max: Duration::from_secs(5),
            max_pull_bytes: 32 << 20,
            per_resource_auth: true,
            push_enabled: false,
            push_allow_http: false,
            push_worker_token: None,
            proxy_hostname: String::new(),
        }
    }
}

struct Shared {
    meta: Arc<dyn MetadataStore>,
    log: Arc<dyn MessageLog>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    /// Weak: the pusher holds the domain, so a strong reference back would
    /// keep both (and the open store) alive after the server stops.
    push: std::sync::OnceLock<std::sync::Weak<dyn push::PushGateway>>,
    schemas: schemas::SchemaCache,
    metrics: metrics::Metrics,
    usage: usage::Pending,
    cursors: streams::CursorWatch,
}

/// The domain service handle.
#[derive(Clone)]
pub struct Ams(Arc<Shared>);

impl Ams {
    /// Assembles the domain over its backends.
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        log: Arc<dyn MessageLog>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self(Arc::new(Shared {
            meta,
            log,
            clock,
            settings,
            push: std::sync::OnceLock::new(),
            schemas: schemas::SchemaCache::default(),
            metrics: metrics::Metrics::default(),
            usage: usage::Pending::default(),
            cursors: streams::CursorWatch::default(),
        }))
    }

    pub(crate) fn meta(&self) -> &dyn MetadataStore {
        self.0.meta.as_ref()
    }

    pub(crate) fn log(&self) -> &dyn MessageLog {
        self.0.log.as_ref()
    }

    pub(crate) fn now(&self) -> ams_types::Timestamp {
        self.0.clock.now()
    }

    /// The clock the domain reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.0.clock
    }

    /// Connects the pusher; once per handle (later calls are ignored).
    /// The caller keeps the gateway alive; the domain holds it weakly.
    pub fn attach_push_gateway(&self, gateway: &Arc<dyn push::PushGateway>) {
        let _ = self.0.push.set(Arc::downgrade(gateway));
    }

    pub(crate) fn push_gateway(&self) -> Option<Arc<dyn push::PushGateway>> {
        self.0.push.get().and_then(std::sync::Weak::upgrade)
    }

    /// The domain's settings.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// Steps 2-6 of the request pipeline (contract §1.2), after the transport
    /// validated the path's names: token presence (401), the URL project's
    /// existence (404, before the token is checked), the service token, then the
    /// route's roles (403).
    pub async fn authorize(
        &self,
        route: Route,
        token: Option<&str>,
        project: Option<&str>,
    ) -> Result<Context> {
        let token = token.filter(|t| !t.is_empty()).ok_or(Error::Unauthorized)?;
        let found = match project {
            Some(name) => self.meta().project_by_name(name).await?,
            None => None,
        };
        if project.is_some() && found.is_none() && route != Route::ProjectsCreate {
            return Err(Error::ProjectMissing);
        }
        // Roles come from the URL's project even for `projects:create` (as in
        // the original): a member of an existing project gets a 403 there.
        let roles_in = found.as_ref().map(|p| p.uuid);
        let project = found.filter(|_| route != Route::ProjectsCreate);
        let caller = match &self.settings().service_token {
            Some(service) if auth::secrets_equal(service, token) => Caller::service(),
            _ => {
                let user = self
                    .user_by_token(token)
                    .await?
                    .ok_or(Error::Unauthorized)?;
                let project_roles = roles_in
                    .and_then(|p| user.membership(p))
                    .map(|m| m.roles.as_slice())
                    .unwrap_or_default();
                let roles: Vec<auth::Role> = project_roles
                    .iter()
                    .chain(&user.service_roles)
                    .filter_map(|r| auth::Role::parse(r))
                    .collect();
                // A known user without roles here is as unknown as a bad token.
                if roles.is_empty() {
                    return Err(Error::Unauthorized);
                }
                Caller {
                    user: Some(user.uuid),
                    roles,
                }
            }
        };
        if !caller.roles.iter().any(|r| route.roles().contains(r)) {
            return Err(Error::Forbidden);
        }
        Ok(Context { caller, project })
    }

    /// The user owning `token`. The store finds it by a keyed hash lookup (its
    /// timing reveals nothing about how much of a guess matched); the final
    /// comparison is constant-time.
    pub(crate) async fn user_by_token(&self, token: &str) -> Result<Option<model::User>> {
        Ok(self
            .meta()
            .user_by_token(token)
            .await?
            .filter(|u| auth::secrets_equal(&u.token, token)))
    }

    /// Every subscription of every project, with its project.
    pub(crate) async fn all_subscriptions(
        &self,
    ) -> Result<Vec<(model::Project, model::Subscription)>> {
        let mut out = Vec::new();
        for project in self.meta().list_projects().await? {
            let page = self
                .meta()
                .list_subscriptions(project.uuid, storage::PageRequest::default())
                .await?;
            out.extend(page.items.into_iter().map(|s| (project.clone(), s)));
        }
        Ok(out)
    }

    /// Message logs whose topic no longer exists (left behind by a crash
    /// between deleting a topic's record and its log). The logs are listed
    /// *before* the topics, and a log is only ever created after its topic's
    /// record, so a topic created meanwhile by another node is never mistaken
    /// for an orphan.
    pub async fn orphan_logs(&self) -> Result<Vec<storage::LogRef>> {
        let naming = self.log().naming();
        let logs = self.log().list().await?;
        let mut live = std::collections::HashSet::new();
        for project in self.meta().list_projects().await? {
            let page = self
                .meta()
                .list_topics(project.uuid, storage::PageRequest::default())
                .await?;
            live.extend(page.items.iter().map(|t| t.log_ref().key(naming)));
        }
        Ok(logs
            .into_iter()
            .filter(|log| !live.contains(&log.key(naming)))
            .collect())
    }

    /// Deletes the given logs (from [`Ams::orphan_logs`]).
    pub async fn remove_logs(&self, logs: &[storage::LogRef]) -> Result<()> {
        for log in logs {
            self.log().delete(log).await?;
        }
        Ok(())
    }
}
