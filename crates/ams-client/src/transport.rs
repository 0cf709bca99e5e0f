//! The request machinery: URLs, one attempt, the retry loop with back-off,
//! and the typed helpers the route methods use.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Client, Error, MAX_BACKOFF, Result};

/// Shared state of a [`Client`].
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// Normalized base: no `/v1`, no trailing slash.
    pub(crate) base: Url,
    pub(crate) token: Option<HeaderValue>,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    /// See [`crate::ClientBuilder::stream_idle`].
    pub(crate) stream_idle: Duration,
}

/// Extra time a long-polling `pull` may take beyond the timeout.
const LONG_POLL_ALLOWANCE: Duration = Duration::from_secs(60);

/// Whether a failed call may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Idempotent: retried after transient failures.
    Yes,
    /// Tried once.
    No,
}

/// Parses and normalizes a base URL: `http(s)://host[:port][/prefix][/v1][/]`.
pub(crate) fn base_url(text: &str) -> Result<Url> {
    let mut url = Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("invalid server URL {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(Error::Config(format!(
            "invalid server URL {text:?}: not an http or https URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "invalid server URL {text:?}: no query or fragment allowed"
        )));
    }
    let mut segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    if segments.last().is_some_and(|s| s == "v1") {
        segments.pop();
    }
    url.set_path("");
    if let Ok(mut path) = url.path_segments_mut() {
        path.clear().extend(&segments);
    }
    Ok(url)
}

/// `name:verb`, a path segment with its custom verb.
pub(crate) fn verb(name: &str, verb: &str) -> String {
    format!("{name}:{verb}")
}

/// `projects/{project}/{kind}/{name}` unless `name` is already a full name.
pub(crate) fn full_name(project: &str, kind: &str, name: &str) -> String {
    if name.contains('/') {
        name.trim_start_matches('/').to_owned()
    } else {
        format!("projects/{project}/{kind}/{name}")
    }
}

/// The wait after `previous`: doubled, at most [`MAX_BACKOFF`].
pub(crate) fn next_backoff(previous: Duration) -> Duration {
    previous.saturating_mul(2).min(MAX_BACKOFF)
}

impl Client {
    /// `{base}/v1/{segments…}`, each segment percent-encoded as needed.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        url_of(&self.0.base, segments)
    }

    /// `url` with query pairs (empty values are left out).
    pub(crate) fn url_with(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.url(segments);
        let pairs: Vec<_> = query.iter().filter(|(_, v)| !v.is_empty()).collect();
        if !pairs.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// A request with the token (if any).
    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let req = self.0.http.request(method, url);
        match &self.0.token {
            Some(token) => req.header("x-api-key", token.clone()),
            None => req,
        }
    }

    /// A transport failure, naming the server (never the path: a
    /// `users:byToken` path holds a token).
    fn transport_error(&self, e: reqwest::Error) -> Error {
        match Error::from_reqwest(e) {
            Error::Connection(text) => Error::Connection(format!(
                "{}: {text}",
                self.0.base.origin().ascii_serialization()
            )),
            other => other,
        }
    }

    /// One attempt: the whole answer within `timeout`, non-2xx as an error.
    async fn attempt(
        &self,
        method: Method,
        url: Url,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let mut req = self.request(method, url).timeout(timeout);
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            Ok(bytes.to_vec())
        } else {
            Err(Error::from_answer(status.as_u16(), &bytes))
        }
    }

    /// Runs `attempt` once, or for [`Retry::Yes`] again after each transient
    /// failure, up to the configured retries, waiting the back-off between.
    pub(crate) async fn with_retries<T, F, Fut>(&self, retry: Retry, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut delay = self.0.backoff.min(MAX_BACKOFF);
        let mut retried = 0;
        loop {
            match attempt().await {
                Err(e) if retry == Retry::Yes && retried < self.0.retries && e.is_transient() => {
                    tokio::time::sleep(delay).await;
                    delay = next_backoff(delay);
                    retried += 1;
                }
                result => return result,
            }
        }
    }

    /// Sends a request (retried per `retry`) and returns the 2xx body.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        retry: Retry,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        self.with_retries(retry, || {
            self.attempt(method.clone(), url.clone(), body.as_deref(), timeout)
        })
        .await
    }

    /// The default per-request timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.0.timeout
    }

    /// The timeout of a long-polling pull.
    pub(crate) fn long_poll_timeout(&self) -> Duration {
        self.0.timeout.saturating_add(LONG_POLL_ALLOWANCE)
    }

    /// `GET` decoded as `T` (retried).
    pub(crate) async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T> {
        let body = self
            .send(Method::GET, url, None, Retry::Yes, self.timeout())
            .await?;
        decode(&body)
    }

    /// A request with a JSON body, the answer decoded as `T`.
    pub(crate) async fn json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: &B,
        retry: Retry,
    ) -> Result<T> {
        let answer = self
            .send(method, url, Some(encode(body)?), retry, self.timeout())
            .await?;
        decode(&answer)
    }

    /// A request whose answer is ignored (empty, `{}` or a message).
    pub(crate) async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
        retry: Retry,
    ) -> Result<()> {
        let body = body.map(encode).transpose()?;
        self.send(method, url, body, retry, self.timeout())
            .await
            .map(drop)
    }

    /// Opens an event stream: bounded by the timeout until the server
    /// answers, unbounded after; retried like a GET.
    pub(crate) async fn open_stream(&self, url: Url) -> Result<reqwest::Response> {
        let timeout = self.timeout();
        self.with_retries(Retry::Yes, || {
            let req = self
                .request(Method::GET, url.clone())
                .header(ACCEPT, "text/event-stream");
            async move {
                let resp = tokio::time::timeout(timeout, req.send())
                    .await
                    .map_err(|_| Error::Timeout)?
                    .map_err(|e| self.transport_error(e))?;
                let status = resp.status();
                if status.is_success() {
                    return Ok(resp);
                }
                let body = tokio::time::timeout(timeout, resp.bytes())
                    .await
                    .map_err(|_| Error::Timeout)?
                    .map_err(|e| self.transport_error(e))?;
                Err(Error::from_answer(status.as_u16(), &body))
            }
        })
        .await
    }
}

fn url_of(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().push("v1").extend(segments);
    }
    url
}

/// A body as JSON.
pub(crate) fn encode<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| Error::Config(format!("cannot encode the body: {e}")))
}

/// An answer as `T`.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(base: &str, segments: &[&str]) -> String {
        url_of(&base_url(base).unwrap(), segments).to_string()
    }

    #[test]
    fn base_with_or_without_v1() {
        for base in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/v1",
            "http://127.0.0.1:8080/v1/",
            " http://127.0.0.1:8080/v1 ",
        ] {
            assert_eq!(
                built(
                    base,
                    &["projects", "ARGO", "topics", &verb("t1", "publish")]
                ),
                "http://127.0.0.1:8080/v1/projects/ARGO/topics/t1:publish",
                "{base}"
            );
        }
        assert_eq!(
            built("https://h.example/ams/v1", &["status"]),
            "https://h.example/ams/v1/status"
        );
        assert_eq!(
            built("https://h.example/ams", &["users:byToken", "abc_-9"]),
            "https://h.example/ams/v1/users:byToken/abc_-9"
        );
        assert_eq!(built("http://h:1", &[]), "http://h:1/v1");
    }

    #[test]
    fn names_needing_no_escaping_stay_as_they_are_others_are_escaped() {
        assert_eq!(
            built("http://h", &["projects", "A-b_9", "subscriptions", "s_1-x"]),
            "http://h/v1/projects/A-b_9/subscriptions/s_1-x"
        );
        // Nothing a caller passes can leave its segment.
        assert_eq!(
            built("http://h", &["projects", "a/b?c#d %"]),
            "http://h/v1/projects/a%2Fb%3Fc%23d%20%25"
        );
    }

    #[test]
    fn bad_bases_are_config_errors() {
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://h",
            "mailto:x@y",
            "http://h/?x=1",
        ] {
            assert!(matches!(base_url(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn query_pairs_are_encoded_and_empty_ones_dropped() {
        let client = crate::ClientBuilder::new("http://h:1/v1").build().unwrap();
        let url = client.url_with(
            &["projects", "p", "subscriptions", &verb("s", "timeToOffset")],
            &[("time", "2024-01-01T10:00:00.000Z"), ("x", "")],
        );
        assert_eq!(
            url.as_str(),
            "http://h:1/v1/projects/p/subscriptions/s:timeToOffset?time=2024-01-01T10%3A00%3A00.000Z"
        );
    }

    #[test]
    fn full_names() {
        assert_eq!(full_name("p", "topics", "t"), "projects/p/topics/t");
        assert_eq!(
            full_name("p", "topics", "projects/q/topics/t"),
            "projects/q/topics/t"
        );
        assert_eq!(
            full_name("p", "topics", "/projects/q/topics/t"),
            "projects/q/topics/t"
        );
    }

    /// How many attempts `with_retries` makes when every one fails with `e`.
    async fn attempts(retry: Retry, retries: u32, e: fn() -> Error) -> usize {
        let client = crate::ClientBuilder::new("http://h:1")
            .retries(retries)
            .backoff(Duration::from_millis(1))
            .build()
            .unwrap();
        let count = std::cell::Cell::new(0);
        let result: Result<()> = client
            .with_retries(retry, || {
                count.set(count.get() + 1);
                std::future::ready(Err(e()))
            })
            .await;
        assert!(result.is_err());
        count.get()
    }

    #[tokio::test]
    async fn only_transient_failures_of_idempotent_calls_are_retried() {
        let refused = || Error::Connection("connection refused".into());
        assert_eq!(attempts(Retry::Yes, 3, refused).await, 4);
        assert_eq!(attempts(Retry::Yes, 0, refused).await, 1);
        assert_eq!(attempts(Retry::No, 3, refused).await, 1);
        assert_eq!(attempts(Retry::Yes, 2, || Error::Timeout).await, 3);
        assert_eq!(
            attempts(Retry::Yes, 2, || Error::from_answer(503, b"")).await,
            3
        );
        assert_eq!(
            attempts(Retry::Yes, 2, || Error::from_answer(400, b"")).await,
            1
        );
        assert_eq!(
            attempts(Retry::Yes, 2, || Error::Decode("x".into())).await,
            1
        );
    }

    #[test]
    fn bodies_are_what_a_human_would_send() {
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        let publish = ams_types::wire::PublishMessage {
            data: "eA==".into(),
            ..Default::default()
        };
        assert_eq!(text(encode(&publish).unwrap()), r#"{"data":"eA=="}"#);
        let create = ams_types::wire::SubscriptionCreate {
            topic: full_name("P", "topics", "t"),
            ..Default::default()
        };
        assert_eq!(
            text(encode(&create).unwrap()),
            r#"{"topic":"projects/P/topics/t"}"#
        );
        let pull = ams_types::wire::Pull {
            max_messages: Some("5".into()),
            return_immediately: Some("true".into()),
        };
        assert_eq!(
            text(encode(&pull).unwrap()),
            r#"{"maxMessages":"5","returnImmediately":"true"}"#
        );
        let user = ams_types::wire::UserBody {
            email: Some("a@b".into()),
            ..Default::default()
        };
        assert_eq!(text(encode(&user).unwrap()), r#"{"email":"a@b"}"#);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut d = Duration::from_millis(200);
        let mut seen = vec![d];
        for _ in 0..6 {
            d = next_backoff(d);
            seen.push(d);
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
