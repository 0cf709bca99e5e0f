//! `/v1/users…` (service-wide users) and `/v1/projects/{project}/members…`.

use ams_types::wire;
use reqwest::Method;

use crate::service::report_query;
use crate::transport::{Retry, verb};
use crate::{Client, Result};

impl Client {
    /// `GET /v1/users`, following every page: all users, newest first.
    pub async fn list_users(&self) -> Result<Vec<wire::User>> {
        all_users(|token| async move { self.list_users_page(None, &token, None, false).await })
            .await
    }

    /// `GET /v1/users?pageSize=&pageToken=&project=&details=`: one page
    /// (`page_token` `""` for the first), optionally only `project`'s
    /// members, with their memberships when `details`.
    pub async fn list_users_page(
        &self,
        page_size: Option<u32>,
        page_token: &str,
        project: Option<&str>,
        details: bool,
    ) -> Result<wire::UserList> {
        let size = page_size.map(|n| n.to_string()).unwrap_or_default();
        let url = self.url_with(
            &["users"],
            &[
                ("pageSize", &size),
                ("pageToken", page_token),
                ("project", project.unwrap_or_default()),
                ("details", if details { "true" } else { "" }),
            ],
        );
        self.get(url).await
    }

    /// `GET /v1/users/{name}`.
    pub async fn get_user(&self, name: &str) -> Result<wire::User> {
        self.get(self.url(&["users", name])).await
    }

    /// `POST /v1/users/{name}` (not retried): the new user, token included.
    pub async fn create_user(&self, name: &str, body: &wire::UserBody) -> Result<wire::User> {
        self.json(Method::POST, self.url(&["users", name]), body, Retry::No)
            .await
    }

    /// `PUT /v1/users/{name}`: `None` fields stay; `projects` and
    /// `service_roles`, when given, replace.
    pub async fn update_user(&self, name: &str, body: &wire::UserBody) -> Result<wire::User> {
        self.json(Method::PUT, self.url(&["users", name]), body, Retry::Yes)
            .await
    }

    /// `DELETE /v1/users/{name}`.
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        self.call::<()>(Method::DELETE, self.url(&["users", name]), None, Retry::Yes)
            .await
    }

    /// `POST /v1/users/{name}:refreshToken` (not retried): the user with a
    /// new token.
    pub async fn refresh_token(&self, name: &str) -> Result<wire::User> {
        let answer = self
            .send(
                Method::POST,
                self.url(&["users", &verb(name, "refreshToken")]),
                None,
                Retry::No,
                self.timeout(),
            )
            .await?;
        crate::transport::decode(&answer)
    }

    /// `GET /v1/users/profile`: the user of the client's token.
    pub async fn profile(&self) -> Result<wire::User> {
        self.get(self.url(&["users", "profile"])).await
    }

    /// `GET /v1/users:byToken/{token}`.
    pub async fn user_by_token(&self, token: &str) -> Result<wire::User> {
        self.get(self.url(&["users:byToken", token])).await
    }

    /// `GET /v1/users:byUUID/{uuid}`.
    pub async fn user_by_uuid(&self, uuid: &str) -> Result<wire::User> {
        self.get(self.url(&["users:byUUID", uuid])).await
    }

    /// `GET /v1/users/usageReport`: the VA report of the projects the
    /// token's user administers (optionally only `projects`) with the
    /// operational metrics; `start`/`end` as `YYYY-MM-DD`.
    pub async fn usage_report(
        &self,
        start: Option<&str>,
        end: Option<&str>,
        projects: &[&str],
    ) -> Result<wire::UsageReport> {
        let projects = projects.join(",");
        let url = self.url_with(
            &["users", "usageReport"],
            &report_query(start, end, &projects),
        );
        self.get(url).await
    }

    /// `GET /v1/projects/{project}/members`, following every page.
    pub async fn list_members(&self, project: &str) -> Result<Vec<wire::User>> {
        all_users(|token| async move { self.list_members_page(project, None, &token, false).await })
            .await
    }

    /// `GET /v1/projects/{project}/members?pageSize=&pageToken=&details=`:
    /// one page (`page_token` `""` for the first).
    pub async fn list_members_page(
        &self,
        project: &str,
        page_size: Option<u32>,
        page_token: &str,
        details: bool,
    ) -> Result<wire::UserList> {
        let size = page_size.map(|n| n.to_string()).unwrap_or_default();
        let url = self.url_with(
            &["projects", project, "members"],
            &[
                ("pageSize", &size),
                ("pageToken", page_token),
                ("details", if details { "true" } else { "" }),
            ],
        );
        self.get(url).await
    }

    /// `GET /v1/projects/{project}/members/{user}`.
    pub async fn get_member(&self, project: &str, user: &str) -> Result<wire::User> {
        self.get(self.url(&["projects", project, "members", user]))
            .await
    }

    /// `POST /v1/projects/{project}/members/{user}` (not retried): creates a
    /// new user who is a member with `roles`; the answer holds its token.
    pub async fn create_member(
        &self,
        project: &str,
        user: &str,
        roles: &[&str],
    ) -> Result<wire::User> {
        let url = self.url(&["projects", project, "members", user]);
        let body = member_body(project, roles);
        self.json(Method::POST, url, &body, Retry::No).await
    }

    /// `POST /v1/projects/{project}/members/{user}:add` (not retried): makes
    /// an existing user a member with `roles`.
    pub async fn add_member(
        &self,
        project: &str,
        user: &str,
        roles: &[&str],
    ) -> Result<wire::User> {
        let url = self.url(&["projects", project, "members", &verb(user, "add")]);
        let body = wire::MemberRoles {
            roles: Some(owned(roles)),
        };
        self.json(Method::POST, url, &body, Retry::No).await
    }

    /// `PUT /v1/projects/{project}/members/{user}`: replaces the member's
    /// roles in the project.
    pub async fn update_member(
        &self,
        project: &str,
        user: &str,
        roles: &[&str],
    ) -> Result<wire::User> {
        let url = self.url(&["projects", project, "members", user]);
        let body = member_body(project, roles);
        self.json(Method::PUT, url, &body, Retry::Yes).await
    }

    /// `POST /v1/projects/{project}/members/{user}:remove` (not retried):
    /// ends the membership; the user stays.
    pub async fn remove_member(&self, project: &str, user: &str) -> Result<()> {
        let url = self.url(&["projects", project, "members", &verb(user, "remove")]);
        self.call::<()>(Method::POST, url, None, Retry::No).await
    }
}

/// Every page of a user listing, `page(token)` fetching one.
async fn all_users<F, Fut>(mut page: F) -> Result<Vec<wire::User>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<wire::UserList>>,
{
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let list = page(token.clone()).await?;
        all.extend(list.users);
        if list.next_page_token.is_empty() || list.next_page_token == token {
            return Ok(all);
        }
        token = list.next_page_token;
    }
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A member create/update body: this project's roles.
fn member_body(project: &str, roles: &[&str]) -> wire::UserBody {
    wire::UserBody {
        projects: Some(vec![wire::ProjectRoles {
            project: project.to_owned(),
            roles: Some(owned(roles)),
        }]),
        ..Default::default()
    }
}
