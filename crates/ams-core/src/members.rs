//! Project members: project-scoped user management (contract §5.5). Service
//! admins see members in the privileged view; project admins see them limited
//! to this project, without tokens, except for the member they just created.

use ams_types::json::DecodeError;
use ams_types::wire;

use crate::Ams;
use crate::auth::{self, Context};
use crate::error::{Body, Error, Result};
use crate::model::{Membership, User};
use crate::paging;
use crate::storage::PageRequest;
use crate::users::{View, new_token};

impl Ams {
    /// `GET /v1/projects/{project}/members`.
    pub async fn list_members(
        &self,
        ctx: &Context,
        page_size: Option<&str>,
        page_token: Option<&str>,
        details: Option<&str>,
    ) -> Result<wire::UserList> {
        let page: PageRequest = paging::parse(page_size, page_token)?;
        self.user_page(
            Some(ctx.project().uuid),
            page,
            View::for_members(ctx),
            details == Some("true"),
        )
        .await
    }

    /// `GET /v1/projects/{project}/members/{user}`: 404 unless a member.
    pub async fn show_member(&self, ctx: &Context, name: &str) -> Result<wire::User> {
        let user = self.member(ctx, name).await?;
        self.user_view(&user, View::for_members(ctx)).await
    }

    /// `POST /v1/projects/{project}/members/{user}`: creates a user who is a member
    /// of this project. Only `email` and this project's `projects[]` entry count.
    /// Answers the privileged view, token included, whoever asks: that is how a
    /// project admin hands a new member its token.
    pub async fn create_member(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::UserBody, DecodeError>,
    ) -> Result<wire::User> {
        let body = body.map_err(|_| Error::InvalidBody(Body::User))?;
        if self.meta().user_by_name(name).await?.is_some() {
            return Err(Error::UserExists);
        }
        let project = ctx.project();
        let roles = this_projects_roles(&body, &project.name).unwrap_or_default();
        auth::validate_roles(&roles)?;
        let user = User {
            email: body.email.unwrap_or_default(),
            projects: vec![Membership {
                project: project.uuid,
                roles,
            }],
            ..User::new(name, new_token(), self.now(), ctx.caller.user)
        };
        let user = self.insert_user(user).await?;
        self.user_view(&user, View::Privileged).await
    }

    /// `PUT /v1/projects/{project}/members/{user}`: replaces this project's roles.
    pub async fn update_member(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::UserBody, DecodeError>,
    ) -> Result<wire::User> {
        let body = body.map_err(|_| Error::InvalidBody(Body::User))?;
        let mut user = self.user_named(name).await?;
        let project = ctx.project();
        let roles = this_projects_roles(&body, &project.name).ok_or(Error::NotAMember)?;
        let membership = user
            .projects
            .iter_mut()
            .find(|m| m.project == project.uuid)
            .ok_or(Error::NotAMember)?;
        auth::validate_roles(&roles)?;
        membership.roles = roles;
        user.modified_on = self.now();
        self.replace_user(&user).await?;
        self.user_view(&user, View::for_members(ctx)).await
    }

    /// `POST …/members/{user}:add`: makes an existing user a member.
    pub async fn add_member(
        &self,
        ctx: &Context,
        name: &str,
        body: Result<wire::MemberRoles, DecodeError>,
    ) -> Result<wire::User> {
        let mut user = self.user_named(name).await?;
        let body = body.map_err(|_| Error::InvalidBody(Body::Request))?;
        let project = ctx.project();
        if user.membership(project.uuid).is_some() {
            return Err(Error::AlreadyMember);
        }
        let roles = body.roles.unwrap_or_default();
        auth::validate_roles(&roles)?;
        user.projects.push(Membership {
            project: project.uuid,
            roles,
        });
        user.modified_on = self.now();
        self.replace_user(&user).await?;
        self.user_view(&user, View::for_members(ctx)).await
    }

    /// `POST …/members/{user}:remove`: ends a membership (the user stays).
    pub async fn remove_member(&self, ctx: &Context, name: &str) -> Result<()> {
        let mut user = self.user_named(name).await?;
        let project = ctx.project().uuid;
        if user.membership(project).is_none() {
            return Err(Error::NotAMember);
        }
        user.projects.retain(|m| m.project != project);
        user.modified_on = self.now();
        self.replace_user(&user).await
    }

    /// A user of this project by name; `User doesn't exist` if not a member.
    async fn member(&self, ctx: &Context, name: &str) -> Result<User> {
        let user = self.user_named(name).await?;
        if user.membership(ctx.project().uuid).is_none() {
            return Err(Error::UserNotFound);
        }
        Ok(user)
    }
}

/// The roles of the body's `projects[]` entry for `project`, if it has one.
fn this_projects_roles(body: &wire::UserBody, project: &str) -> Option<Vec<String>> {
    body.projects
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|e| e.project == project)
        .map(|e| e.roles.clone().unwrap_or_default())
}
