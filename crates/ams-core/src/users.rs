//! Users, service-wide (contract §5.2), and how a user is shown (§3.2).

use ams_types::json::DecodeError;
use ams_types::wire;
use rand::Rng;
use uuid::Uuid;

use crate::Ams;
use crate::auth::{self, Context};
use crate::error::{Body, Error, Result};
use crate::model::{Membership, User};
use crate::paging;
use crate::storage::{Conflict, PageRequest};

/// Which view of a user a caller gets (contract §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Token, service roles, creator and every membership.
    Privileged,
    /// No token or creator, `service_roles: []`, memberships limited to
    /// `project` when given.
    Unprivileged {
        /// The project whose membership alone is shown.
        project: Option<Uuid>,
    },
}

impl View {
    /// The view for member routes: privileged for service admins.
    pub fn for_members(ctx: &Context) -> View {
        if ctx.caller.is_service_admin() {
            View::Privileged
        } else {
            View::Unprivileged {
                project: Some(ctx.project().uuid),
            }
        }
    }
}

/// A new secret: 64 lowercase hex characters from the OS CSPRNG.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Ams {
    /// `GET /v1/users`: newest first, optionally members of `?project=` only;
    /// memberships shown with `details=true`.
    pub async fn list_users(
        &self,
        ctx: &Context,
        page_size: Option<&str>,
        page_token: Option<&str>,
        project: Option<&str>,
        details: Option<&str>,
    ) -> Result<wire::UserList> {
        let page = paging::parse(page_size, page_token)?;
        let project = match project.filter(|p| !p.is_empty()) {
            Some(name) => Some(
                self.meta()
                    .project_by_name(name)
                    .await?
                    .ok_or(Error::ProjectUuidMissing)?
                    .uuid,
            ),
            None => None,
        };
        let view = if ctx.caller.is_service_admin() {
            View::Privileged
        } else {
            View::Unprivileged { project: None }
        };
        self.user_page(project, page, view, details == Some("true"))
            .await
    }

    pub(crate) async fn user_page(
        &self,
        project: Option<Uuid>,
        page: PageRequest,
        view: View,
        details: bool,
    ) -> Result<wire::UserList> {
        let page = self.meta().list_users(project, page).await?;
        let mut users = Vec::with_capacity(page.items.len());
        for user in &page.items {
            let mut shown = self.user_view(user, view).await?;
            if !details {
                shown.projects.clear();
            }
            users.push(shown);
        }
        Ok(wire::UserList {
            users,
            next_page_token: paging::token(page.next),
            total_size: page.total,
        })
    }

    /// `GET /v1/users/{user}`.
    pub async fn show_user(&self, _ctx: &Context, name: &str) -> Result<wire::User> {
        let user = self.user_named(name).await?;
        self.user_view(&user, View::Privileged).await
    }

    /// `GET /v1/users:byToken/{token}`.
    pub async fn user_of_token(&self, _ctx: &Context, token: &str) -> Result<wire::User> {
        let user = self
            .user_by_token(token)
            .await?
            .ok_or(Error::UserNotFound)?;
        self.user_view(&user, View::Privileged).await
    }

    /// `GET /v1/users:byUUID/{uuid}`.
    pub async fn user_of_uuid(&self, _ctx: &Context, uuid: &str) -> Result<wire::User> {
        let uuid = Uuid::parse_str(uuid).map_err(|_| Error::UserNotFound)?;
        let user = self
            .meta()
            .user_by_uuid(uuid)
            .await?
            .ok_or(Error::UserNotFound)?;
        self.user_view(&user, View::Privileged).await
    }

    /// `GET /v1/users/profile` (open route): the caller's own record.
    pub async fn profile(&self, token: Option<&str>) -> Result<wire::User> {
        let token = token.filter(|t| !t.is_empty()).ok_or(Error::Unauthorized)?;
        let user = self
            .user_by_token(token)
            .await?
            .ok_or(Error::Unauthorized)?;
        self.user_view(&user, View::Privileged).await
    }

    /// `POST /v1/users/{user}`.
    pub async fn create_user(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::UserBody, DecodeError>,
    ) -> Result<wire::User> {
        let body = body.map_err(|_| Error::InvalidBody(Body::User))?;
        if self.meta().user_by_name(name).await?.is_some() {
            return Err(Error::UserExists);
        }
        let projects = self
            .memberships(body.projects.as_deref().unwrap_or_default())
            .await?;
        let service_roles = body.service_roles.unwrap_or_default();
        auth::validate_roles(&service_roles)?;
        let user = User {
            email: body.email.unwrap_or_default(),
            first_name: body.first_name.unwrap_or_default(),
            last_name: body.last_name.unwrap_or_default(),
            organization: body.organization.unwrap_or_default(),
            description: body.description.unwrap_or_default(),
            service_roles,
            projects,
            ..User::new(name, new_token(), self.now(), ctx.caller.user)
        };
        let user = self.insert_user(user).await?;
        self.user_view(&user, View::Privileged).await
    }

    /// `PUT /v1/users/{user}`: non-empty strings change; `projects` and
    /// `service_roles`, when present, replace.
    pub async fn update_user(
        &self,
        _ctx: &Context,
        name: &str,
        body: Result<wire::UserBody, DecodeError>,
    ) -> Result<wire::User> {
        let body = body.map_err(|_| Error::InvalidBody(Body::User))?;
        let mut user = self.user_named(name).await?;
        if let Some(entries) = &body.projects {
            user.projects = self.memberships(entries).await?;
        }
        if let Some(roles) = body.service_roles {
            auth::validate_roles(&roles)?;
            user.service_roles = roles;
        }
        let set = |field: &mut String, value: Option<String>| {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                *field = v;
            }
        };
        set(&mut user.name, body.name);
        set(&mut user.email, body.email);
        set(&mut user.first_name, body.first_name);
        set(&mut user.last_name, body.last_name);
        set(&mut user.organization, body.organization);
        set(&mut user.description, body.description);
        user.modified_on = self.now();
        self.replace_user(&user).await.map_err(|e| match e {
            Error::UserExists => Error::UserNameTaken,
            other => other,
        })?;
        self.user_view(&user, View::Privileged).await
    }

    /// `DELETE /v1/users/{user}`: the user goes, and with it every ACL entry.
    pub async fn delete_user(&self, _ctx: &Context, name: &str) -> Result<()> {
        let user = self.user_named(name).await?;
        self.meta()
            .delete_user(user.uuid)
            .await?
            .map_err(|_| Error::UserNotFound)?;
        Ok(())
    }

    /// `POST /v1/users/{user}:refreshToken`: the old token stops working at once.
    pub async fn refresh_token(&self, _ctx: &Context, name: &str) -> Result<wire::User> {
        let mut user = self.user_named(name).await?;
        user.token = new_token();
        user.modified_on = self.now();
        self.replace_user(&user).await?;
        self.user_view(&user, View::Privileged).await
    }

    /// Looks a user up by name, or `User doesn't exist`.
    pub(crate) async fn user_named(&self, name: &str) -> Result<User> {
        self.meta()
            .user_by_name(name)
            .await?
            .ok_or(Error::UserNotFound)
    }

    /// Stores a new user; `User already exists` on a name clash.
    pub(crate) async fn insert_user(&self, user: User) -> Result<User> {
        self.meta()
            .create_user(user)
            .await?
            .map_err(|_| Error::UserExists)
    }

    /// Replaces a user; a name clash is `UserExists`, a vanished user `UserNotFound`.
    pub(crate) async fn replace_user(&self, user: &User) -> Result<()> {
        self.meta()
            .update_user(user.clone())
            .await?
            .map_err(|c| match c {
                Conflict::AlreadyExists => Error::UserExists,
                Conflict::NotFound => Error::UserNotFound,
            })
    }

    /// Turns `projects[]` entries into memberships, in the contract's order of
    /// checks: entries without a project are skipped; a repeated project, an
    /// unknown project, then each unknown role is a 400.
    pub(crate) async fn memberships(
        &self,
        entries: &[wire::ProjectRoles],
    ) -> Result<Vec<Membership>> {
        let mut out: Vec<Membership> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for entry in entries.iter().filter(|e| !e.project.is_empty()) {
            if seen.contains(&entry.project.as_str()) {
                return Err(Error::DuplicateProject(entry.project.clone()));
            }
            seen.push(&entry.project);
            let project = self
                .meta()
                .project_by_name(&entry.project)
                .await?
                .ok_or_else(|| Error::InvalidProject(entry.project.clone()))?;
            let roles = entry.roles.clone().unwrap_or_default();
            auth::validate_roles(&roles)?;
            out.push(Membership {
                project: project.uuid,
                roles,
            });
        }
        Ok(out)
    }

    /// Renders a user in `view` (contract §3.2). Memberships of deleted projects
    /// are skipped; each shown membership lists the project's topics and
    /// subscriptions whose ACL names the user.
    pub(crate) async fn user_view(&self, user: &User, view: View) -> Result<wire::User> {
        let mut projects = Vec::new();
        for m in &user.projects {
            if let View::Unprivileged {
                project: Some(only),
            } = view
                && m.project != only
            {
                continue;
            }
            let Some(project) = self.meta().project_by_uuid(m.project).await? else {
                continue;
            };
            let mine = PageRequest {
                acl_member: Some(user.uuid),
                ..PageRequest::default()
            };
            let topics = self.meta().list_topics(project.uuid, mine).await?;
            let subs = self.meta().list_subscriptions(project.uuid, mine).await?;
            projects.push(wire::UserProject {
                project: project.name,
                roles: m.roles.clone(),
                topics: topics.items.into_iter().rev().map(|t| t.name).collect(),
                subscriptions: subs.items.into_iter().rev().map(|s| s.name).collect(),
            });
        }
        let privileged = view == View::Privileged;
        Ok(wire::User {
            uuid: user.uuid.to_string(),
            projects,
            name: user.name.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            organization: user.organization.clone(),
            description: user.description.clone(),
            token: if privileged {
                user.token.clone()
            } else {
                String::new()
            },
            email: user.email.clone(),
            service_roles: if privileged {
                user.service_roles.clone()
            } else {
                Vec::new()
            },
            created_on: user.created_on.to_rfc3339_seconds(),
            modified_on: user.modified_on.to_rfc3339_seconds(),
            created_by: if privileged {
                self.user_name(user.created_by).await?
            } else {
                String::new()
            },
        })
    }

    /// The current name of a user, `""` for none or a deleted one.
    pub(crate) async fn user_name(&self, uuid: Option<Uuid>) -> Result<String> {
        Ok(match uuid {
            Some(uuid) => self
                .meta()
                .user_by_uuid(uuid)
                .await?
                .map(|u| u.name)
                .unwrap_or_default(),
            None => String::new(),
        })
    }
}
