//! `GET /v1/status` (contract §5.1), adapted to the built-in pusher: instead of
//! an external push server's gRPC health, the entry reports the pusher's own.

use ams_types::wire;

use crate::Ams;
use crate::auth::Role;
use crate::error::{Error, Result};

/// The `endpoint` shown for the built-in pusher.
pub const BUILT_IN_PUSHER: &str = "built-in";

impl Ams {
    /// The service's health. `details` needs the token of a user holding
    /// `service_admin` or `admin_viewer` (the service token does not count):
    /// an unknown or absent token is a 403 and any other user a 401, the
    /// original's inverted codes. Details change nothing else here: the built-in
    /// pusher has no transport errors to render.
    pub async fn health_status(
        &self,
        details: bool,
        token: Option<&str>,
    ) -> Result<wire::HealthStatus> {
        if details && !self.admin_viewer(token).await?.ok_or(Error::Forbidden)? {
            return Err(Error::Unauthorized);
        }
        if !self.settings().push_enabled {
            return Ok(wire::HealthStatus {
                status: "ok".into(),
                push_servers: None,
                push_functionality: Some("disabled".into()),
            });
        }
        let status = match self.push_worker().await {
            Ok(_) => "ok",
            Err(Error::PushUnavailable) => "warning",
            Err(e) => return Err(e),
        };
        let serving = match self.push_gateway() {
            Some(g) if g.serving() => "SERVING",
            Some(_) => "NOT_SERVING",
            None => crate::push::PUSH_UNAVAILABLE,
        };
        Ok(wire::HealthStatus {
            status: status.into(),
            push_servers: Some(vec![wire::PushServerStatus {
                endpoint: BUILT_IN_PUSHER.into(),
                status: serving.into(),
            }]),
            push_functionality: None,
        })
    }
}

impl Ams {
    /// Whether the user owning `token` holds `service_admin` or
    /// `admin_viewer` (what `/status?details` and `/version`'s release ask
    /// for); `None` when no user owns it (the service token included).
    pub(crate) async fn admin_viewer(&self, token: Option<&str>) -> Result<Option<bool>> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        Ok(self.user_by_token(token).await?.map(|user| {
            user.service_roles
                .iter()
                .any(|r| matches!(Role::parse(r), Some(Role::ServiceAdmin | Role::AdminViewer)))
        }))
    }
}
