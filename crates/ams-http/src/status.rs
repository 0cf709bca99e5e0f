//! `GET /v1/status` and `GET /v1/version` (open routes: the domain reads the
//! token for `details` and `release`).

use ams_types::json::Layout;

use crate::{Call, Handled, respond};

/// `GET /v1/status`.
pub async fn health(call: Call) -> Handled {
    let details = call.query.get("details") == Some("true");
    let status = call
        .ams
        .health_status(details, call.token.as_deref())
        .await?;
    Ok(respond::json(&status, Layout::Indent1))
}

/// `GET /v1/version`.
pub async fn version(call: Call) -> Handled {
    let version = call.ams.version(call.token.as_deref()).await?;
    Ok(respond::json(&version, Layout::Indent1))
}
