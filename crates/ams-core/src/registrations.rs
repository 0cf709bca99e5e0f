//! User registrations (contract §5.3): anyone with access submits, a service
//! admin accepts (creating the user) or declines.

use ams_types::json::DecodeError;
use ams_types::wire;
use uuid::Uuid;

use crate::Ams;
use crate::auth::Context;
use crate::error::{Body, Error, Result};
use crate::model::{Registration, RegistrationStatus, User};
use crate::users::{View, new_token};

/// Exact-match filters of `GET /v1/registrations`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RegistrationFilter<'a> {
    /// `pending`, `accepted` or `declined`.
    pub status: Option<&'a str>,
    /// Requested name.
    pub name: Option<&'a str>,
    /// Contact address.
    pub email: Option<&'a str>,
    /// Organization.
    pub organization: Option<&'a str>,
    /// Activation token.
    pub activation_token: Option<&'a str>,
}

impl Ams {
    /// `POST /v1/registrations`: 409 if a *user* has the name.
    pub async fn register(
        &self,
        _ctx: &Context,
        body: Result<wire::RegistrationBody, DecodeError>,
    ) -> Result<wire::Registration> {
        let body = body.map_err(|_| Error::InvalidBody(Body::User))?;
        if self.meta().user_by_name(&body.name).await?.is_some() {
            return Err(Error::UserExists);
        }
        let registration = Registration {
            uuid: Uuid::new_v4(),
            name: body.name,
            first_name: body.first_name,
            last_name: body.last_name,
            organization: body.organization,
            description: body.description,
            email: body.email,
            status: RegistrationStatus::Pending,
            decline_comment: String::new(),
            activation_token: new_token(),
            registered_at: self.now(),
            modified_by: None,
            modified_at: None,
            seq: 0,
        };
        let registration = self
            .meta()
            .create_registration(registration)
            .await?
            .map_err(|_| {
                Error::Backend(crate::storage::StoreError::new(
                    "registration",
                    "uuid clash",
                ))
            })?;
        self.registration_view(&registration).await
    }

    /// `POST /v1/registrations/{uuid}:accept`: creates the user (no memberships),
    /// then marks the registration accepted.
    pub async fn accept_registration(&self, ctx: &Context, uuid: &str) -> Result<wire::User> {
        let mut registration = self.pending_registration(uuid).await?;
        let user = User {
            email: registration.email.clone(),
            first_name: registration.first_name.clone(),
            last_name: registration.last_name.clone(),
            organization: registration.organization.clone(),
            description: registration.description.clone(),
            ..User::new(&registration.name, new_token(), self.now(), ctx.caller.user)
        };
        let user = self.insert_user(user).await?;
        registration.status = RegistrationStatus::Accepted;
        self.handled(ctx, &mut registration).await?;
        self.user_view(&user, View::Privileged).await
    }

    /// `POST /v1/registrations/{uuid}:decline`.
    pub async fn decline_registration(
        &self,
        ctx: &Context,
        uuid: &str,
        body: Result<wire::Decline, DecodeError>,
    ) -> Result<()> {
        let mut registration = self.pending_registration(uuid).await?;
        let body = body.map_err(|_| Error::InvalidBody(Body::Request))?;
        registration.status = RegistrationStatus::Declined;
        registration.decline_comment = body.comment;
        self.handled(ctx, &mut registration).await
    }

    /// `GET /v1/registrations/{uuid}` (any status).
    pub async fn show_registration(
        &self,
        _ctx: &Context,
        uuid: &str,
    ) -> Result<wire::Registration> {
        let registration = self.registration(uuid).await?;
        self.registration_view(&registration).await
    }

    /// `GET /v1/registrations`, oldest first, with exact-match filters.
    pub async fn list_registrations(
        &self,
        _ctx: &Context,
        filter: RegistrationFilter<'_>,
    ) -> Result<wire::RegistrationList> {
        let matches = |want: Option<&str>, have: &str| want.is_none_or(|w| w == have);
        let mut user_registrations = Vec::new();
        for r in self.meta().list_registrations().await? {
            if matches(filter.status, r.status.as_str())
                && matches(filter.name, &r.name)
                && matches(filter.email, &r.email)
                && matches(filter.organization, &r.organization)
                && matches(filter.activation_token, &r.activation_token)
            {
                user_registrations.push(self.registration_view(&r).await?);
            }
        }
        Ok(wire::RegistrationList { user_registrations })
    }

    /// `DELETE /v1/registrations/{uuid}`.
    pub async fn delete_registration(&self, _ctx: &Context, uuid: &str) -> Result<()> {
        let registration = self.registration(uuid).await?;
        self.meta()
            .delete_registration(registration.uuid)
            .await?
            .map_err(|_| Error::RegistrationNotFound)
    }

    async fn registration(&self, uuid: &str) -> Result<Registration> {
        let uuid = Uuid::parse_str(uuid).map_err(|_| Error::RegistrationNotFound)?;
        self.meta()
            .registration(uuid)
            .await?
            .ok_or(Error::RegistrationNotFound)
    }

    async fn pending_registration(&self, uuid: &str) -> Result<Registration> {
        let registration = self.registration(uuid).await?;
        if registration.status != RegistrationStatus::Pending {
            return Err(Error::RegistrationNotFound);
        }
        Ok(registration)
    }

    /// Records who handled a registration and when, and retires its token.
    async fn handled(&self, ctx: &Context, registration: &mut Registration) -> Result<()> {
        registration.modified_by = ctx.caller.user;
        registration.modified_at = Some(self.now());
        registration.activation_token.clear();
        self.meta()
            .update_registration(registration.clone())
            .await?
            .map_err(|_| Error::RegistrationNotFound)
    }

    async fn registration_view(&self, r: &Registration) -> Result<wire::Registration> {
        Ok(wire::Registration {
            uuid: r.uuid.to_string(),
            name: r.name.clone(),
            first_name: r.first_name.clone(),
            last_name: r.last_name.clone(),
            organization: r.organization.clone(),
            description: r.description.clone(),
            email: r.email.clone(),
            status: r.status.as_str().to_owned(),
            decline_comment: r.decline_comment.clone(),
            activation_token: r.activation_token.clone(),
            registered_at: r.registered_at.to_rfc3339_seconds(),
            modified_by: self.user_name(r.modified_by).await?,
            modified_at: r
                .modified_at
                .map(|t| t.to_rfc3339_seconds())
                .unwrap_or_default(),
        })
    }
}
