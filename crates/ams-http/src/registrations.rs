//! `/v1/registrations…` handlers.

use ams_core::registrations::RegistrationFilter;

use crate::{Call, Handled, respond};

fn uuid(call: &Call) -> &str {
    call.params.var("uuid")
}

/// `POST /v1/registrations`.
pub async fn create(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.register(&call.ctx, call.json()).await?,
    ))
}

/// `POST /v1/registrations/{uuid}:accept`.
pub async fn accept(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.accept_registration(&call.ctx, uuid(&call)).await?,
    ))
}

/// `POST /v1/registrations/{uuid}:decline` (answers `{}`).
pub async fn decline(call: Call) -> Handled {
    call.ams
        .decline_registration(&call.ctx, uuid(&call), call.json())
        .await?;
    Ok(respond::empty_object())
}

/// `GET /v1/registrations/{uuid}`.
pub async fn show(call: Call) -> Handled {
    Ok(respond::indented(
        &call.ams.show_registration(&call.ctx, uuid(&call)).await?,
    ))
}

/// `GET /v1/registrations`.
pub async fn list(call: Call) -> Handled {
    let q = &call.query;
    let filter = RegistrationFilter {
        status: q.get("status"),
        name: q.get("name"),
        email: q.get("email"),
        organization: q.get("organization"),
        activation_token: q.get("activation_token"),
    };
    Ok(respond::indented(
        &call.ams.list_registrations(&call.ctx, filter).await?,
    ))
}

/// `DELETE /v1/registrations/{uuid}`.
pub async fn delete(call: Call) -> Handled {
    call.ams.delete_registration(&call.ctx, uuid(&call)).await?;
    Ok(respond::empty())
}
