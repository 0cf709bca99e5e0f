//! CORS as the original's gorilla/handlers middleware does it (contract §0.1):
//! any origin; methods OPTIONS, POST, GET, PUT, DELETE, HEAD; extra request
//! headers X-Requested-With, Content-Type, x-api-key.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

const METHODS: [&str; 6] = ["OPTIONS", "POST", "GET", "PUT", "DELETE", "HEAD"];
const HEADERS: [&str; 3] = ["X-Requested-With", "Content-Type", "X-Api-Key"];
const SIMPLE_HEADERS: [&str; 4] = ["Accept", "Accept-Language", "Content-Language", "Origin"];

/// What the CORS layer decided before routing.
pub enum Decision {
    /// Answer with this response without routing.
    Answer(Response),
    /// Route the request; add `Access-Control-Allow-Origin: *` to the response if set.
    Route {
        /// Whether the request carried an `Origin`.
        cors: bool,
    },
}

/// Decides what to do with a request before it reaches the router.
pub fn decide(method: &Method, headers: &HeaderMap) -> Decision {
    let has_origin = headers.contains_key(header::ORIGIN);
    if !has_origin {
        if method == Method::OPTIONS {
            return Decision::Answer(StatusCode::OK.into_response());
        }
        return Decision::Route { cors: false };
    }
    if method != Method::OPTIONS {
        // gorilla/handlers routes every non-preflight request and adds the header.
        return Decision::Route { cors: true };
    }
    Decision::Answer(preflight(headers))
}

fn preflight(headers: &HeaderMap) -> Response {
    let Some(requested) = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
    else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if !METHODS.contains(&requested) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let mut accepted = Vec::new();
    let requested_headers = headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty());
    for h in requested_headers {
        let canonical = canonical_header(h);
        if SIMPLE_HEADERS.contains(&canonical.as_str()) {
            continue;
        }
        if !HEADERS.iter().any(|a| a.eq_ignore_ascii_case(&canonical)) {
            return StatusCode::FORBIDDEN.into_response();
        }
        accepted.push(canonical);
    }
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if !accepted.is_empty()
        && let Ok(v) = HeaderValue::from_str(&accepted.join(","))
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if !matches!(requested, "GET" | "HEAD" | "POST")
        && let Ok(v) = HeaderValue::from_str(requested)
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    resp
}

/// Go's `http.CanonicalHeaderKey`: `x-api-key` → `X-Api-Key`.
fn canonical_header(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    let mut upper = true;
    for c in h.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn answer(m: Method, h: HeaderMap) -> Response {
        match decide(&m, &h) {
            Decision::Answer(r) => r,
            Decision::Route { .. } => panic!("routed"),
        }
    }

    #[test]
    fn preflights() {
        assert_eq!(answer(Method::OPTIONS, hdrs(&[])).status(), 200);
        let o = ("origin", "http://x");
        assert_eq!(answer(Method::OPTIONS, hdrs(&[o])).status(), 400);
        assert_eq!(
            answer(
                Method::OPTIONS,
                hdrs(&[o, ("access-control-request-method", "PATCH")])
            )
            .status(),
            405
        );
        let r = answer(
            Method::OPTIONS,
            hdrs(&[
                o,
                ("access-control-request-method", "PUT"),
                (
                    "access-control-request-headers",
                    "x-api-key, content-type, accept",
                ),
            ]),
        );
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["access-control-allow-headers"],
            "X-Api-Key,Content-Type"
        );
        assert_eq!(r.headers()["access-control-allow-methods"], "PUT");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let r = answer(
            Method::OPTIONS,
            hdrs(&[
                o,
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-foo"),
            ]),
        );
        assert_eq!(r.status(), 403);
        assert!(matches!(
            decide(&Method::GET, &hdrs(&[o])),
            Decision::Route { cors: true }
        ));
        assert!(matches!(
            decide(&Method::GET, &hdrs(&[])),
            Decision::Route { cors: false }
        ));
    }
}
