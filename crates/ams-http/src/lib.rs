//! The AMS v1 REST API over axum.
//!
//! Every request goes through [`handle`]: CORS, path cleaning, the route table
//! ([`routes`]), the request pipeline of contract §1.2 (name validation, token,
//! [`ams_core::Ams::authorize`]), the body limit, then one thin handler per
//! route that calls one domain operation and renders its result. Errors become
//! the AMS envelope in exactly one place ([`error`]).
//!
//! # Layout
//! * [`routes`]: the route table and gorilla/mux-compatible matching.
//! * [`projects`], [`topics`], [`subscriptions`], [`users`], [`members`],
//!   [`registrations`], [`schemas`]: the handlers, one module per resource.
//! * [`streams`]: WebSocket / Server-Sent Events streams of subscriptions
//!   and topics.
//! * [`usage`]: `/v1/metrics`, the VA report and the usage report;
//!   [`status`]: health and version; [`metrics`]: Prometheus `/metrics`;
//!   [`openapi`]: the API description.
//! * [`error`]: domain error → status, message, envelope.
//! * [`respond`]: success bodies in the layout each route uses.
//! * [`cors`]: the original's CORS behaviour.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use ams_core::Ams;
use ams_core::auth::{Context, Route};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};

pub mod cors;
pub mod error;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod projects;
pub mod registrations;
pub mod respond;
pub mod routes;
pub mod schemas;
pub mod status;
pub mod streams;
pub mod subscriptions;
pub mod topics;
pub mod usage;
pub mod users;

use error::Stage;
use routes::{Match, Params};

/// The `tracing` target of the access log, one line per request (the binary
/// buffers these lines; a filter such as `ams_http::access=warn` drops them).
pub const ACCESS_LOG_TARGET: &str = "ams_http::access";

/// The fields of an access line (`message` is `request`); the binary writes
/// lines with exactly these fields by a shortcut, others the general way.
pub const ACCESS_LOG_FIELDS: [&str; 6] = [
    "message",
    "method",
    "route",
    "status",
    "latency_us",
    "request_id",
];

/// Where tokens are read from (contract §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthOption {
    /// `?key=` only.
    Key,
    /// `x-api-key` header only.
    Header,
    /// `x-api-key`, falling back to `?key=`.
    #[default]
    Both,
}

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Token source.
    pub auth_option: AuthOption,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Bearer token `GET /metrics` requires; `None` serves it openly.
    pub metrics_token: Option<String>,
    /// Cancelled at shutdown: open streams close (graceful shutdown would
    /// otherwise wait for them).
    pub streams_stop: tokio_util::sync::CancellationToken,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            auth_option: AuthOption::Both,
            max_body_bytes: 64 << 20,
            metrics_token: None,
            streams_stop: tokio_util::sync::CancellationToken::new(),
        }
    }
}

struct Inner {
    ams: Ams,
    router: routes::Router,
    settings: HttpSettings,
}

/// The HTTP application: a tower service that answers every request through
/// [`handle`]. Served to hyper directly rather than behind an `axum::Router`:
/// our own route table does all the routing, and the router's dispatch and
/// boxing cost about 2% of a small publish's CPU time.
#[derive(Clone)]
pub struct App(Arc<Inner>);

/// Builds the application.
pub fn app(ams: Ams, settings: HttpSettings) -> App {
    App(Arc::new(Inner {
        ams,
        router: routes::Router::new(),
        settings,
    }))
}

impl<B> tower::Service<http::Request<B>> for App
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { Ok(handle(&inner, req.map(axum::body::Body::new)).await) })
    }
}

/// The query string's parameters (first value wins, as Go's `Query().Get`).
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        Self(
            raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Everything a handler gets: the domain, the pipeline's context, the path
/// variables, the query and the body.
pub struct Call {
    /// The domain.
    pub ams: Ams,
    /// Caller and project (an empty caller on open routes).
    pub ctx: Context,
    /// The request's token, for open routes that check it themselves.
    pub token: Option<String>,
    /// Path variables.
    pub params: Params,
    /// Query parameters.
    pub query: Query,
    /// The request body (possibly empty).
    pub body: Bytes,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// A WebSocket upgrade, when the request asks for one (stream routes only).
    pub upgrade: Option<axum::extract::ws::WebSocketUpgrade>,
    /// Cancelled when the server shuts down.
    pub streams_stop: tokio_util::sync::CancellationToken,
}

impl Call {
    /// The body decoded with Go's rules.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ams_types::json::DecodeError> {
        ams_types::json::from_slice(&self.body)
    }

    /// The body decoded, or `None` when the request had none.
    pub fn optional_json<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Option<Result<T, ams_types::json::DecodeError>> {
        (!self.body.is_empty()).then(|| self.json())
    }
}

/// What a handler returns.
pub type Handled = Result<Response, ams_core::Error>;

async fn handle(inner: &Inner, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let request_id = request_id(req.headers());
    let (mut response, route) = if method == Method::GET && req.uri().path() == "/metrics" {
        (metrics::scrape(inner, req.headers()).await, None)
    } else {
        match cors::decide(&method, req.headers()) {
            cors::Decision::Answer(resp) => (resp, None),
            cors::Decision::Route { cors } => {
                let (mut resp, route) = route_request(inner, req).await;
                if cors {
                    resp.headers_mut().insert(
                        header::ACCESS_CONTROL_ALLOW_ORIGIN,
                        HeaderValue::from_static("*"),
                    );
                }
                (resp, route)
            }
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let route = route.map_or("-", Route::name);
    inner
        .ams
        .metrics()
        .request(route, method_label(&method), status, elapsed.as_secs_f64());
    // One line per request, formatted by a task of its own: that task runs
    // once this one yields (after hyper has written the response) or on an
    // idle worker, so the client does not wait for the formatting (about a
    // sixth of a small publish's instructions). The path is not logged:
    // `?key=` would leak tokens.
    if tracing::enabled!(target: ACCESS_LOG_TARGET, tracing::Level::INFO) {
        let latency_us = elapsed.as_micros() as u64;
        tokio::spawn(async move {
            tracing::info!(
                target: ACCESS_LOG_TARGET,
                method = %method,
                route,
                status,
                latency_us,
                request_id = %request_id,
                "request"
            );
        });
    }
    response
}

/// A method as a metric label (one of a fixed set, so that a client cannot
/// grow the label space).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The client's `x-request-id` when it is a short token, else a new one.
fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(new_request_id, str::to_owned)
}

/// 16 random hex digits (by hand: `format!` costs more than the rest of
/// the id's handling).
fn new_request_id() -> String {
    hex_id(rand::random::<u64>())
}

/// `v` as 16 hex digits.
fn hex_id(v: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 16];
    for (i, digit) in id.iter_mut().enumerate() {
        *digit = HEX[((v >> ((15 - i) * 4)) & 0xf) as usize];
    }
    String::from_utf8(id.to_vec()).expect("hex digits are ASCII")
}

async fn route_request(inner: &Inner, req: Request) -> (Response, Option<Route>) {
    // Borrowed from the request unless the path has escapes to decode (the
    // check alone is far cheaper than the decoder's pass).
    let raw = req.uri().path();
    let path = if raw.contains('%') {
        percent_encoding::percent_decode_str(raw).decode_utf8_lossy()
    } else {
        Cow::Borrowed(raw)
    };
    if let Cow::Owned(cleaned) = routes::clean_path(&path) {
        // Re-encode, as Go does: a decoded `%3F` must not turn into a query.
        let cleaned = percent_encoding::utf8_percent_encode(&cleaned, PATH_ENCODE).to_string();
        let location = match req.uri().query() {
            Some(q) => format!("{cleaned}?{q}"),
            None => cleaned,
        };
        let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return (resp, None);
    }
    let found = inner.router.find(req.method(), &path);
    drop(path);
    let (route, handler, params) = match found {
        Match::Found(route, handler, params) => (route, handler, params),
        Match::MethodNotAllowed => return (StatusCode::METHOD_NOT_ALLOWED.into_response(), None),
        Match::NotFound => return (not_found(), None),
    };
    if let Some(var) = params.first_invalid() {
        return (
            error::response(&ams_core::Error::InvalidName(var), Stage::Pipeline),
            Some(route),
        );
    }
    let query = Query::parse(req.uri().query());
    let streaming = matches!(route, Route::SubscriptionsStream | Route::TopicsStream);
    // Browsers cannot set headers on WebSockets or EventSources: streams
    // take `?key=` whatever `auth_option` says.
    let source = if streaming {
        AuthOption::Both
    } else {
        inner.settings.auth_option
    };
    let token = token(source, req.headers(), &query);
    let ctx = if route.is_open() {
        Context {
            caller: ams_core::auth::Caller {
                user: None,
                roles: Vec::new(),
            },
            project: None,
        }
    } else {
        match inner
            .ams
            .authorize(route, token.as_deref(), params.get("project"))
            .await
        {
            Ok(ctx) => ctx,
            Err(e) => return (error::response(&e, Stage::Pipeline), Some(route)),
        }
    };
    let (mut parts, body) = req.into_parts();
    let upgrade = if streaming {
        use axum::extract::FromRequestParts as _;
        axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .ok()
    } else {
        None
    };
    let body = match axum::body::to_bytes(body, inner.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) if is_length_limit(&e) => {
            let err = if route == Route::TopicsPublish {
                ams_core::Error::MessageTooLarge
            } else {
                ams_core::Error::BodyTooLarge
            };
            return (error::response(&err, Stage::Handler), Some(route));
        }
        // The client went away or sent a broken body: nobody to answer properly.
        Err(_) => return (StatusCode::BAD_REQUEST.into_response(), Some(route)),
    };
    let call = Call {
        ams: inner.ams.clone(),
        ctx,
        token,
        params,
        query,
        body,
        headers: parts.headers,
        upgrade,
        streams_stop: inner.settings.streams_stop.clone(),
    };
    let resp = handler(call)
        .await
        .unwrap_or_else(|e| error::response(&e, Stage::Handler));
    (resp, Some(route))
}

fn token(option: AuthOption, headers: &http::HeaderMap, query: &Query) -> Option<String> {
    let from_header = || {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let from_query = || {
        query
            .get("key")
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    match option {
        AuthOption::Key => from_query(),
        AuthOption::Header => from_header(),
        AuthOption::Both => from_header().or_else(from_query),
    }
}

/// Characters escaped when a cleaned path goes back into a `Location` header.
const PATH_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Whether reading a body failed because it exceeded the limit.
fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn not_found() -> Response {
    let mut resp = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Every (method, route) the API serves, in matching order.
pub fn served_routes() -> Vec<(Method, Route)> {
    routes::Router::new()
        .entries()
        .map(|(m, r)| (m.clone(), r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_is_its_number_in_hex_digits() {
        assert_eq!(hex_id(0x0123_4567_89ab_cdef), "0123456789abcdef");
        assert_eq!(hex_id(0), "0000000000000000");
        assert_eq!(hex_id(u64::MAX), "ffffffffffffffff");
        assert_eq!(new_request_id().len(), 16);
    }
}
