//! `GET /metrics`: Prometheus (OpenMetrics) text, outside `/v1`, behind a
//! bearer token when one is configured.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::Inner;

/// Answers a scrape.
pub(crate) async fn scrape(inner: &Inner, headers: &HeaderMap) -> Response {
    if let Some(want) = &inner.settings.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| ams_core::auth::secrets_equal(g, want)) {
            return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        }
    }
    match inner.ams.prometheus_text().await {
        Ok(text) => {
            let mut resp = text.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics scrape failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
