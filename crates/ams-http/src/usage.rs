//! The service-wide usage routes: `GET /v1/metrics` (per-node operational
//! metrics), `GET /v1/metrics/va_metrics` (the VA report) and
//! `GET /v1/users/usageReport` (open: the domain checks the token itself).

use ams_core::usage::ReportQuery;
use ams_types::json::Layout;

use crate::{Call, Handled, respond};

fn report_query(call: &Call) -> ReportQuery {
    let get = |name: &str| call.query.get(name).map(str::to_owned);
    ReportQuery {
        start_date: get("start_date"),
        end_date: get("end_date"),
        projects: get("projects"),
    }
}

/// `GET /v1/metrics`.
pub async fn operational(call: Call) -> Handled {
    Ok(respond::indented(&call.ams.operational_metrics().await?))
}

/// `GET /v1/metrics/va_metrics` (1-space indented).
pub async fn va_metrics(call: Call) -> Handled {
    let report = call.ams.va_report(&report_query(&call)).await?;
    Ok(respond::json(&report, Layout::Indent1))
}

/// `GET /v1/users/usageReport`.
pub async fn usage_report(call: Call) -> Handled {
    let report = call
        .ams
        .usage_report(call.token.as_deref(), &report_query(&call))
        .await?;
    Ok(respond::indented(&report))
}
