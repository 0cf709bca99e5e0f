//! `GET /v1/status` (open route: the domain checks the token for `details`).

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
