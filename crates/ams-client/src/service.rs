//! Service-wide routes: `/v1/status`, `/v1/version`, `/v1/metrics`, the VA
//! report.

use ams_types::wire;

use crate::{Client, Result};

impl Client {
    /// `GET /v1/status`: the service's health.
    pub async fn status(&self) -> Result<wire::HealthStatus> {
        self.get(self.url(&["status"])).await
    }

    /// `GET /v1/version`: build information (`release` for admins only).
    pub async fn version(&self) -> Result<wire::Version> {
        self.get(self.url(&["version"])).await
    }

    /// `GET /v1/metrics`: every node's operational metrics (CPU, memory).
    pub async fn operational_metrics(&self) -> Result<wire::MetricList> {
        self.get(self.url(&["metrics"])).await
    }

    /// `GET /v1/metrics/va_metrics`: the VA report between `start` and `end`
    /// (`YYYY-MM-DD`, server defaults when `None`), of `projects` (all when
    /// empty).
    pub async fn va_report(
        &self,
        start: Option<&str>,
        end: Option<&str>,
        projects: &[&str],
    ) -> Result<wire::VaReport> {
        let projects = projects.join(",");
        let url = self.url_with(
            &["metrics", "va_metrics"],
            &report_query(start, end, &projects),
        );
        self.get(url).await
    }
}

/// `start_date`, `end_date` and `projects` of the report routes.
pub(crate) fn report_query<'a>(
    start: Option<&'a str>,
    end: Option<&'a str>,
    projects: &'a str,
) -> [(&'static str, &'a str); 3] {
    [
        ("start_date", start.unwrap_or_default()),
        ("end_date", end.unwrap_or_default()),
        ("projects", projects),
    ]
}
