//! `/v1/registrations…` routes: account requests, accepted or declined by an
//! admin.

use ams_types::wire;
use reqwest::Method;

use crate::transport::{Retry, verb};
use crate::{Client, Result};

/// Exact-match filters of [`Client::list_registrations`]; `None` matches all.
#[derive(Debug, Default, Clone, Copy)]
pub struct RegistrationQuery<'a> {
    /// `pending`, `accepted` or `declined`.
    pub status: Option<&'a str>,
    /// Requested user name.
    pub name: Option<&'a str>,
    /// Contact address.
    pub email: Option<&'a str>,
    /// Organization.
    pub organization: Option<&'a str>,
    /// Activation token.
    pub activation_token: Option<&'a str>,
}

impl Client {
    /// `POST /v1/registrations` (not retried): requests an account.
    pub async fn register(&self, body: &wire::RegistrationBody) -> Result<wire::Registration> {
        self.json(Method::POST, self.url(&["registrations"]), body, Retry::No)
            .await
    }

    /// `GET /v1/registrations`: the matching registrations, oldest first.
    pub async fn list_registrations(
        &self,
        query: &RegistrationQuery<'_>,
    ) -> Result<Vec<wire::Registration>> {
        let url = self.url_with(
            &["registrations"],
            &[
                ("status", query.status.unwrap_or_default()),
                ("name", query.name.unwrap_or_default()),
                ("email", query.email.unwrap_or_default()),
                ("organization", query.organization.unwrap_or_default()),
                (
                    "activation_token",
                    query.activation_token.unwrap_or_default(),
                ),
            ],
        );
        let list: wire::RegistrationList = self.get(url).await?;
        Ok(list.user_registrations)
    }

    /// `GET /v1/registrations/{uuid}`.
    pub async fn get_registration(&self, uuid: &str) -> Result<wire::Registration> {
        self.get(self.url(&["registrations", uuid])).await
    }

    /// `POST /v1/registrations/{uuid}:accept` (not retried): creates the
    /// user and answers it.
    pub async fn accept_registration(&self, uuid: &str) -> Result<wire::User> {
        let url = self.url(&["registrations", &verb(uuid, "accept")]);
        let answer = self
            .send(Method::POST, url, None, Retry::No, self.timeout())
            .await?;
        crate::transport::decode(&answer)
    }

    /// `POST /v1/registrations/{uuid}:decline` (not retried), with an
    /// optional comment.
    pub async fn decline_registration(&self, uuid: &str, comment: Option<&str>) -> Result<()> {
        let url = self.url(&["registrations", &verb(uuid, "decline")]);
        let body = wire::Decline {
            comment: comment.unwrap_or_default().to_owned(),
        };
        self.call(Method::POST, url, Some(&body), Retry::No).await
    }

    /// `DELETE /v1/registrations/{uuid}`.
    pub async fn delete_registration(&self, uuid: &str) -> Result<()> {
        let url = self.url(&["registrations", uuid]);
        self.call::<()>(Method::DELETE, url, None, Retry::Yes).await
    }
}
