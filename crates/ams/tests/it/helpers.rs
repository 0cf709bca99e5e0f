//! `spawn_app`: the real server on 127.0.0.1:0 with a temp data dir and a
//! manual clock, and a small HTTP client that returns status, headers and body.

use std::sync::Arc;

use ams::{Application, Config};
use ams_core::ManualClock;
use ams_types::Timestamp;
use serde_json::Value;

/// A running server for one test.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The service token.
    pub token: String,
    /// The server's clock; move it instead of sleeping.
    pub clock: ManualClock,
    /// HTTP client.
    pub client: reqwest::Client,
    /// Data directory (kept alive for the test's duration).
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// A response, read completely.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body text.
    pub body: String,
}

impl Resp {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts an AMS error envelope with this status, message and status word,
    /// byte for byte (3-space indentation).
    #[track_caller]
    pub fn assert_error(&self, code: u16, message: &str, word: &str) {
        let expected = format!(
            "{{\n   \"error\": {{\n      \"code\": {code},\n      \"message\": \"{message}\",\n      \"status\": \"{word}\"\n   }}\n}}"
        );
        assert_eq!((self.status, self.body.as_str()), (code, expected.as_str()));
    }

    /// Asserts a 200 with exactly this body.
    #[track_caller]
    pub fn assert_ok(&self, body: &str) {
        assert_eq!((self.status, self.body.as_str()), (200, body));
    }

    /// The `content-type` header (`""` if absent).
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// A header's value, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `content-type` of JSON responses (successes and handler errors).
pub const JSON: &str = "application/json; charset=utf-8";
/// `content-type` of pipeline errors and the router's 404.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// A fixed, whole-second start time for the manual clock: 2024-01-01T10:00:00Z.
pub const START: i64 = 1_704_103_200;

/// Starts a server with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts a server after letting `tweak` change the configuration.
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_in(dir, tweak).await
}

/// Starts a server on an existing data directory.
pub async fn spawn_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::for_tests(dir.path());
    config.service_token = Some("S3CR3T".into());
    config.durability = ams_store::Durability::Write;
    tweak(&mut config);
    let clock = ManualClock::new(Timestamp::from_secs(START));
    let app = Application::build(config, Arc::new(clock.clone()))
        .await
        .expect("server starts");
    let base = format!("http://{}", app.local_addr());
    let token = app.service_token().secret().to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        base,
        token,
        clock,
        client: reqwest::Client::new(),
        dir,
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    /// Sends a request with the service token in `x-api-key`; `body` `None` sends none.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        self.call_as(method, path, body, Some(&self.token)).await
    }

    /// Sends a request with the given token (or none) in `x-api-key`.
    pub async fn call_as(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> Resp {
        match token {
            Some(t) => {
                self.call_with(method, path, body, &[("x-api-key", t)])
                    .await
            }
            None => self.call_with(method, path, body, &[]).await,
        }
    }

    /// Sends a request with extra headers (and no token unless given in them).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        let resp = req.send().await.expect("request sent");
        Resp {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    /// Acknowledges `ids` on `p/s`.
    pub async fn ack(&self, p: &str, s: &str, ids: &[&str]) -> Resp {
        let body = serde_json::json!({ "ackIds": ids }).to_string();
        self.post(
            &format!("/v1/projects/{p}/subscriptions/{s}:acknowledge"),
            &body,
        )
        .await
    }

    /// `(max, min, current)` of `p/s`.
    pub async fn offsets(&self, p: &str, s: &str) -> (i64, i64, i64) {
        let r = self
            .get(&format!("/v1/projects/{p}/subscriptions/{s}:offsets"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        (
            v["max"].as_i64().unwrap(),
            v["min"].as_i64().unwrap(),
            v["current"].as_i64().unwrap(),
        )
    }

    /// GET with the service token.
    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }

    /// POST with the service token.
    pub async fn post(&self, path: &str, body: &str) -> Resp {
        self.call("POST", path, Some(body)).await
    }

    /// PUT with the service token.
    pub async fn put(&self, path: &str, body: &str) -> Resp {
        self.call("PUT", path, Some(body)).await
    }

    /// DELETE with the service token.
    pub async fn delete(&self, path: &str) -> Resp {
        self.call("DELETE", path, None).await
    }

    /// Creates project `p`, topic `t` and pull subscription `s` on it; panics on failure.
    pub async fn setup(&self, p: &str, t: &str, s: &str) {
        assert_eq!(
            self.post(&format!("/v1/projects/{p}"), "{}").await.status,
            200
        );
        assert_eq!(
            self.put(&format!("/v1/projects/{p}/topics/{t}"), "")
                .await
                .status,
            200
        );
        let body = format!(r#"{{"topic":"projects/{p}/topics/{t}"}}"#);
        assert_eq!(
            self.put(&format!("/v1/projects/{p}/subscriptions/{s}"), &body)
                .await
                .status,
            200
        );
    }

    /// Publishes `data` strings to `p/t` and returns the ids.
    pub async fn publish(&self, p: &str, t: &str, data: &[&str]) -> Vec<String> {
        let msgs: Vec<Value> = data
            .iter()
            .map(|d| serde_json::json!({"data": d}))
            .collect();
        let body = serde_json::json!({ "messages": msgs }).to_string();
        let r = self
            .post(&format!("/v1/projects/{p}/topics/{t}:publish"), &body)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["messageIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// Pulls up to `max` messages from `p/s` and returns (ackIds, datas).
    pub async fn pull(&self, p: &str, s: &str, max: u32) -> (Vec<String>, Vec<String>) {
        let body = format!(r#"{{"maxMessages":"{max}"}}"#);
        let r = self
            .post(&format!("/v1/projects/{p}/subscriptions/{s}:pull"), &body)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        let msgs = v["receivedMessages"].as_array().unwrap();
        (
            msgs.iter()
                .map(|m| m["ackId"].as_str().unwrap().to_owned())
                .collect(),
            msgs.iter()
                .map(|m| m["message"]["data"].as_str().unwrap().to_owned())
                .collect(),
        )
    }

    /// Stops the server gracefully and returns its data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let (dir, _) = (
            std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()),
            (),
        );
        dir
    }
}

/// Go's `json.MarshalIndent(v, "", "   ")` of `v`, keys in the order written
/// (serde_json keeps insertion order here): the layout of user, registration,
/// ACL and list bodies, built independently of the server's encoder.
pub fn indent3(v: &Value) -> String {
    use serde::Serialize as _;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser).unwrap();
    String::from_utf8(out).unwrap()
}

/// Whether `s` is a generated token: 64 lowercase hex characters.
pub fn is_token(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `s` is a lowercase, hyphenated version-4 UUID.
pub fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    let hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => hex(c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// The pipeline's 401 (`text/plain`).
#[track_caller]
pub fn assert_unauthorized(r: &Resp) {
    r.assert_error(401, "Unauthorized", "UNAUTHORIZED");
}

/// The role check's 403.
#[track_caller]
pub fn assert_forbidden(r: &Resp) {
    r.assert_error(403, "Access to this resource is forbidden", "FORBIDDEN");
}

impl TestApp {
    /// Creates user `name` with the service token from a JSON body; returns the
    /// response body (which carries `uuid` and `token`).
    pub async fn create_user(&self, name: &str, body: Value) -> Value {
        let r = self
            .post(&format!("/v1/users/{name}"), &body.to_string())
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// Creates user `name` with `roles` in `project` and returns its token.
    pub async fn member_token(&self, name: &str, project: &str, roles: &[&str]) -> String {
        let v = self
            .create_user(
                name,
                serde_json::json!({"projects": [{"project": project, "roles": roles}]}),
            )
            .await;
        v["token"].as_str().unwrap().to_owned()
    }

    /// Creates user `name` holding service-wide `roles` and returns its token.
    pub async fn service_user_token(&self, name: &str, roles: &[&str]) -> String {
        let v = self
            .create_user(name, serde_json::json!({ "service_roles": roles }))
            .await;
        v["token"].as_str().unwrap().to_owned()
    }

    /// Sets the ACL of `p`'s `kind` (`topics` or `subscriptions`) `name` with the
    /// service token.
    pub async fn set_acl(&self, p: &str, kind: &str, name: &str, users: &[&str]) {
        let body = serde_json::json!({ "authorized_users": users }).to_string();
        let r = self
            .post(&format!("/v1/projects/{p}/{kind}/{name}:modifyAcl"), &body)
            .await;
        assert_eq!((r.status, r.body.as_str()), (200, ""));
    }
}

/// An HTTP client for tests that build their own (rustls needs its provider).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The last path segment of each item's `name` in the listing `v[key]`.
pub fn listed_names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap();
            name.rsplit('/').next().unwrap().to_owned()
        })
        .collect()
}
