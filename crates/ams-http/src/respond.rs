//! Success responses: JSON in the layout each route uses (contract §0.4).

use ams_types::json::{Layout, to_vec};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// 200 with `value` rendered in `layout`.
pub fn json<T: Serialize>(value: &T, layout: Layout) -> Response {
    bytes(to_vec(value, layout))
}

/// 200 with 3-space indented JSON, the layout of most routes.
pub fn indented<T: Serialize>(value: &T) -> Response {
    json(value, Layout::Indent3)
}

/// 200 with a JSON body rendered by the caller.
pub fn rendered(body: Vec<u8>) -> Response {
    bytes(body)
}

/// 200 with an empty body.
pub fn empty() -> Response {
    bytes(Vec::new())
}

/// 200 with the literal `{}`.
pub fn empty_object() -> Response {
    bytes(b"{}".to_vec())
}

fn bytes(body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, JSON);
    resp
}
