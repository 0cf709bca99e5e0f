//! Push subscription management rules end to end (contract §7.1-§7.4, §3.4,
//! §5.7, §6.3, §12 items 27-34): the push switches, validation order and
//! messages, created shapes, `:modifyPushConfig` transitions, endpoint
//! verification, who may pull a push subscription, and deletion bodies.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::push::{create_sub, push_app, push_sub, verified_sub, verify, wait_offset};
use crate::receiver::Receiver;

const DISABLED: &str = "Push functionality is currently disabled";
const UNAVAILABLE: &str = "Push functionality is currently unavailable";
const BAD_ENDPOINT: &str = "Push endpoint should be addressed by a valid https url";
const BAD_AUTH: &str = "Authorization header type can only be of 'autogen' or 'disabled' type";
const NO_MATTERMOST_URL: &str = "Field mattermostUrl cannot be empty";
const BAD_TYPE: &str = "Push configuration type can only be of 'http_endpoint' or 'mattermost'";
const BAD_RETRY: &str = "Retry policy can only be of 'linear' or 'slowstart' type";
/// As on the wire: `<` is escaped like Go's encoder does.
const BAD_BACKOFF: &str = "Retry policy of type 'exponential' needs 0 \\u003c minBackoff \\u003c= maxBackoff \\u003c= 86400000 (milliseconds)";
const NO_SUB: &str = "Subscription doesn't exist";
const NOT_HTTP: &str = "Subscription is not in http push mode";
const MODIFY: &str = "/v1/projects/P/subscriptions/s:modifyPushConfig";
const VERIFY: &str = "/v1/projects/P/subscriptions/s:verifyPushEndpoint";
/// `createdOn` of everything created before the clock moves.
const CREATED: &str = "2024-01-01T10:00:00Z";

/// `PUT /v1/projects/P/subscriptions/{s}` on topic `t` with `push_config`.
async fn put_sub(app: &TestApp, s: &str, push_config: &Value) -> Resp {
    let body = json!({"topic": "projects/P/topics/t", "pushConfig": push_config});
    app.put(
        &format!("/v1/projects/P/subscriptions/{s}"),
        &body.to_string(),
    )
    .await
}

/// `:modifyPushConfig` of `P/s` with `push_config`.
async fn modify(app: &TestApp, push_config: &Value) -> Resp {
    app.post(MODIFY, &json!({ "pushConfig": push_config }).to_string())
        .await
}

/// The `pushConfig` of a pull subscription with `fields` overwritten (key
/// order of contract §3.4 is kept).
fn push_config(fields: Value) -> Value {
    let mut v = json!({
        "type": "",
        "pushEndpoint": "",
        "maxMessages": 0,
        "authorizationHeader": {},
        "retryPolicy": {},
        "verificationHash": "",
        "verified": false,
        "mattermostUrl": "",
        "mattermostUsername": "",
        "mattermostChannel": "",
        "base64Decode": false
    });
    for (k, x) in fields.as_object().unwrap() {
        assert!(v.get(k).is_some(), "unknown pushConfig key {k}");
        v[k] = x.clone();
    }
    v
}

/// A subscription `P/s` on `t` as rendered (3-space indentation), with
/// `extra` keys (`pushStatus`, `deadLetterPolicy`) before `createdOn`.
fn sub_body(s: &str, push_config: Value, extra: &[(&str, Value)]) -> String {
    let mut v = json!({
        "name": format!("/projects/P/subscriptions/{s}"),
        "topic": "/projects/P/topics/t",
        "pushConfig": push_config,
        "ackDeadlineSeconds": 10
    });
    for (k, x) in extra {
        v[*k] = x.clone();
    }
    v["createdOn"] = json!(CREATED);
    indent3(&v)
}

/// `pushConfig` of `P/s` as shown.
async fn shown(app: &TestApp, s: &str) -> Value {
    let r = app.get(&format!("/v1/projects/P/subscriptions/{s}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["pushConfig"].clone()
}

fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {v}"))
}

#[tokio::test]
async fn push_is_refused_while_disabled_but_switching_to_pull_is_allowed() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    for cfg in [
        json!({"type": "http_endpoint", "pushEndpoint": "https://example.com/push"}),
        json!({"type": "mattermost", "mattermostUrl": "https://mm.example.com/hooks/x"}),
        // Push being off is checked before the configuration itself.
        json!({"type": "nonsense", "retryPolicy": {"type": "fibonacci"}}),
        json!({"retryPolicy": {"type": "linear"}}),
    ] {
        put_sub(&app, "p", &cfg)
            .await
            .assert_error(409, DISABLED, "CONFLICT");
        modify(&app, &cfg)
            .await
            .assert_error(409, DISABLED, "CONFLICT");
    }
    app.get("/v1/projects/P/subscriptions/p")
        .await
        .assert_error(404, NO_SUB, "NOT_FOUND");
    // modifyPushConfig checks existence before the push switch.
    let cfg = json!({"pushConfig": {"type": "http_endpoint", "pushEndpoint": "https://example.com/push"}});
    app.post(
        "/v1/projects/P/subscriptions/nope:modifyPushConfig",
        &cfg.to_string(),
    )
    .await
    .assert_error(404, NO_SUB, "NOT_FOUND");

    // Switching to pull is always allowed.
    modify(&app, &json!({})).await.assert_ok("");
    app.post(MODIFY, "{}").await.assert_ok("");
    assert_eq!(shown(&app, "s").await, push_config(json!({})));

    // Verification: push off first, even before existence.
    app.post(VERIFY, "")
        .await
        .assert_error(409, DISABLED, "CONFLICT");
    app.post("/v1/projects/P/subscriptions/nope:verifyPushEndpoint", "")
        .await
        .assert_error(409, DISABLED, "CONFLICT");
}

#[tokio::test]
async fn a_configured_push_worker_that_does_not_exist_makes_push_unavailable() {
    let app = spawn_with(|c| {
        c.push.enabled = true;
        c.push.allow_http = true;
        c.push.worker_token = Some("nosuchtoken".into());
    })
    .await;
    app.setup("P", "t", "s").await;
    for cfg in [
        json!({"type": "http_endpoint", "pushEndpoint": "https://example.com/push"}),
        json!({"type": "mattermost", "mattermostUrl": "https://mm.example.com/hooks/x"}),
        // The worker is checked before the configuration.
        json!({"type": "bogus"}),
    ] {
        put_sub(&app, "p", &cfg)
            .await
            .assert_error(500, UNAVAILABLE, "INTERNAL_SERVER_ERROR");
        modify(&app, &cfg)
            .await
            .assert_error(500, UNAVAILABLE, "INTERNAL_SERVER_ERROR");
    }
    app.get("/v1/projects/P/subscriptions/p")
        .await
        .assert_error(404, NO_SUB, "NOT_FOUND");
    modify(&app, &json!({})).await.assert_ok("");
    app.post(VERIFY, "")
        .await
        .assert_error(500, UNAVAILABLE, "INTERNAL_SERVER_ERROR");
    app.post("/v1/projects/P/subscriptions/nope:verifyPushEndpoint", "")
        .await
        .assert_error(500, UNAVAILABLE, "INTERNAL_SERVER_ERROR");
}

#[tokio::test]
async fn create_and_modify_validate_in_their_own_orders() {
    // https only (push_allow_http off).
    let app = spawn_with(|c| c.push.enabled = true).await;
    app.setup("P", "t", "s").await;
    let ep = "https://example.com/push";
    let single = [
        (
            json!({"type": "http_endpoint", "pushEndpoint": "ftp://x"}),
            BAD_ENDPOINT,
        ),
        (
            json!({"type": "http_endpoint", "pushEndpoint": "not a url"}),
            BAD_ENDPOINT,
        ),
        (
            json!({"type": "http_endpoint", "pushEndpoint": "https://"}),
            BAD_ENDPOINT,
        ),
        (
            json!({"type": "http_endpoint", "pushEndpoint": "/relative/push"}),
            BAD_ENDPOINT,
        ),
        (json!({"type": "http_endpoint"}), BAD_ENDPOINT),
        (
            json!({"type": "http_endpoint", "pushEndpoint": "http://example.com/push"}),
            BAD_ENDPOINT,
        ),
        (
            json!({"type": "http_endpoint", "pushEndpoint": ep, "authorizationHeader": {"type": "bearer"}}),
            BAD_AUTH,
        ),
        (
            json!({"type": "http_endpoint", "pushEndpoint": ep, "authorizationHeader": {"type": "AUTOGEN"}}),
            BAD_AUTH,
        ),
        // The endpoint is checked before the authorization type.
        (
            json!({"type": "http_endpoint", "pushEndpoint": "ftp://x", "authorizationHeader": {"type": "bearer"}}),
            BAD_ENDPOINT,
        ),
        (json!({"type": "mattermost"}), NO_MATTERMOST_URL),
        (
            json!({"type": "mattermost", "mattermostUrl": "", "mattermostChannel": "c"}),
            NO_MATTERMOST_URL,
        ),
        (json!({"type": "webhook", "pushEndpoint": ep}), BAD_TYPE),
        (
            json!({"type": "HTTP_ENDPOINT", "pushEndpoint": ep}),
            BAD_TYPE,
        ),
        (json!({"pushEndpoint": ep}), BAD_TYPE),
        (json!({"maxMessages": 3}), BAD_TYPE),
        (
            json!({"type": "http_endpoint", "pushEndpoint": ep, "retryPolicy": {"type": "fibonacci"}}),
            BAD_RETRY,
        ),
        (
            json!({"type": "mattermost", "mattermostUrl": ep, "retryPolicy": {"type": "Linear"}}),
            BAD_RETRY,
        ),
        (
            json!({"type": "http_endpoint", "pushEndpoint": ep,
                   "retryPolicy": {"type": "exponential", "minBackoff": 2000, "maxBackoff": 1000}}),
            BAD_BACKOFF,
        ),
        (
            json!({"type": "http_endpoint", "pushEndpoint": ep,
                   "retryPolicy": {"type": "exponential", "minBackoff": 1, "maxBackoff": 86_400_001}}),
            BAD_BACKOFF,
        ),
    ];
    for (cfg, message) in &single {
        let r = put_sub(&app, "new", cfg).await;
        assert_eq!(r.status, 400, "create {cfg}: {}", r.body);
        r.assert_error(400, message, "INVALID_ARGUMENT");
        let r = modify(&app, cfg).await;
        assert_eq!(r.status, 400, "modify {cfg}: {}", r.body);
        r.assert_error(400, message, "INVALID_ARGUMENT");
    }

    // Create checks the type first, modifyPushConfig the retry policy first.
    let ordered = [
        (
            json!({"type": "bogus", "retryPolicy": {"type": "fibonacci"}}),
            BAD_TYPE,
            BAD_RETRY,
        ),
        (
            json!({"pushEndpoint": ep, "retryPolicy": {"type": "fibonacci"}}),
            BAD_TYPE,
            BAD_RETRY,
        ),
        (
            json!({"type": "http_endpoint", "pushEndpoint": "ftp://x", "retryPolicy": {"type": "fibonacci"}}),
            BAD_ENDPOINT,
            BAD_RETRY,
        ),
        (
            json!({"type": "http_endpoint", "pushEndpoint": ep, "authorizationHeader": {"type": "x"},
                   "retryPolicy": {"type": "fibonacci"}}),
            BAD_AUTH,
            BAD_RETRY,
        ),
        (
            json!({"type": "mattermost", "retryPolicy": {"type": "exponential", "minBackoff": 5, "maxBackoff": 1}}),
            NO_MATTERMOST_URL,
            BAD_BACKOFF,
        ),
    ];
    for (cfg, on_create, on_modify) in &ordered {
        put_sub(&app, "new", cfg)
            .await
            .assert_error(400, on_create, "INVALID_ARGUMENT");
        modify(&app, cfg)
            .await
            .assert_error(400, on_modify, "INVALID_ARGUMENT");
    }
    // Nothing was created or changed.
    app.get("/v1/projects/P/subscriptions/new")
        .await
        .assert_error(404, NO_SUB, "NOT_FOUND");
    assert_eq!(shown(&app, "s").await, push_config(json!({})));

    // The configuration is validated before the name clash.
    put_sub(&app, "s", &json!({"type": "bogus"}))
        .await
        .assert_error(400, BAD_TYPE, "INVALID_ARGUMENT");
    put_sub(
        &app,
        "s",
        &json!({"type": "http_endpoint", "pushEndpoint": ep}),
    )
    .await
    .assert_error(409, "Subscription already exists", "ALREADY_EXISTS");
    // The largest exponential back-off is accepted.
    let r = put_sub(
        &app,
        "day",
        &json!({"type": "http_endpoint", "pushEndpoint": ep,
                "retryPolicy": {"type": "exponential", "minBackoff": 86_400_000, "maxBackoff": 86_400_000}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // modifyPushConfig: undecodable body, then existence.
    for bad in ["", "not json", r#"{"pushConfig":"x"}"#] {
        app.post(MODIFY, bad).await.assert_error(
            400,
            "Invalid Subscription Arguments",
            "INVALID_ARGUMENT",
        );
    }
    app.post(
        "/v1/projects/P/subscriptions/nope:modifyPushConfig",
        &json!({"pushConfig": {"type": "bogus"}}).to_string(),
    )
    .await
    .assert_error(404, NO_SUB, "NOT_FOUND");
}

#[tokio::test]
async fn created_push_subscriptions_have_the_documented_shapes() {
    let app = push_app().await;
    app.setup("P", "t", "pull").await;
    let ep = "https://example.com/push";

    // http_endpoint with every default.
    let r = put_sub(
        &app,
        "s",
        &json!({"type": "http_endpoint", "pushEndpoint": ep}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let value = str_of(&v, "/pushConfig/authorizationHeader/value").to_owned();
    let hash = str_of(&v, "/pushConfig/verificationHash").to_owned();
    assert!(is_token(&value) && is_token(&hash) && value != hash, "{v}");
    let expected = sub_body(
        "s",
        push_config(json!({
            "type": "http_endpoint",
            "pushEndpoint": ep,
            "maxMessages": 1,
            "authorizationHeader": {"type": "autogen", "value": value},
            "retryPolicy": {"type": "linear", "period": 3000},
            "verificationHash": hash,
        })),
        &[],
    );
    r.assert_ok(&expected);
    // Unverified: no pushStatus on show either.
    app.get("/v1/projects/P/subscriptions/s")
        .await
        .assert_ok(&expected);

    // Input values of output-only fields and of the autogen value are ignored.
    let r = put_sub(
        &app,
        "given",
        &json!({"type": "http_endpoint", "pushEndpoint": ep, "maxMessages": 0,
                "authorizationHeader": {"type": "autogen", "value": "mine"},
                "retryPolicy": {"type": "linear", "period": -5},
                "verificationHash": "abc", "verified": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(is_token(str_of(
        &v,
        "/pushConfig/authorizationHeader/value"
    )));
    assert!(is_token(str_of(&v, "/pushConfig/verificationHash")));
    assert_eq!(v["pushConfig"]["verified"], false);
    assert_eq!(v["pushConfig"]["maxMessages"], 1);
    assert_eq!(
        v["pushConfig"]["retryPolicy"],
        json!({"type": "linear", "period": 3000})
    );

    // disabled authorization, slowstart (period dropped), base64Decode, maxMessages.
    let r = put_sub(
        &app,
        "slow",
        &json!({"type": "http_endpoint", "pushEndpoint": ep, "maxMessages": 5,
                "authorizationHeader": {"type": "disabled", "value": "ignored"},
                "retryPolicy": {"type": "slowstart", "period": 500}, "base64Decode": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let hash = str_of(&r.json(), "/pushConfig/verificationHash").to_owned();
    r.assert_ok(&sub_body(
        "slow",
        push_config(json!({
            "type": "http_endpoint",
            "pushEndpoint": ep,
            "maxMessages": 5,
            "authorizationHeader": {"type": "disabled"},
            "retryPolicy": {"type": "slowstart"},
            "verificationHash": hash,
            "base64Decode": true,
        })),
        &[],
    ));

    // A linear period is kept as given.
    let r = put_sub(
        &app,
        "lin",
        &json!({"type": "http_endpoint", "pushEndpoint": ep, "retryPolicy": {"type": "linear", "period": 250}}),
    )
    .await;
    assert_eq!(
        r.json()["pushConfig"]["retryPolicy"],
        json!({"type": "linear", "period": 250})
    );
    // Absent retry type with a period: linear with that period.
    let r = put_sub(
        &app,
        "lin2",
        &json!({"type": "http_endpoint", "pushEndpoint": ep, "retryPolicy": {"period": 700}}),
    )
    .await;
    assert_eq!(
        r.json()["pushConfig"]["retryPolicy"],
        json!({"type": "linear", "period": 700})
    );

    // Exponential (extension) shows its bounds, defaults included.
    let r = put_sub(
        &app,
        "exp",
        &json!({"type": "http_endpoint", "pushEndpoint": ep,
                "retryPolicy": {"type": "exponential", "minBackoff": 500, "maxBackoff": 2000}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(
            "\"retryPolicy\": {\n         \"type\": \"exponential\",\n         \"minBackoff\": 500,\n         \"maxBackoff\": 2000\n      },"
        ),
        "{}",
        r.body
    );
    let r = put_sub(
        &app,
        "exp2",
        &json!({"type": "http_endpoint", "pushEndpoint": ep, "retryPolicy": {"type": "exponential"}}),
    )
    .await;
    assert_eq!(
        r.json()["pushConfig"]["retryPolicy"],
        json!({"type": "exponential", "minBackoff": 1000, "maxBackoff": 600_000})
    );

    // Mattermost: http fields ignored, verified at once, active at once.
    let r = put_sub(
        &app,
        "mm",
        &json!({"type": "mattermost", "mattermostUrl": "https://mm.example.com/hooks/x",
                "mattermostUsername": "u", "mattermostChannel": "c",
                "pushEndpoint": "https://ignored.example.com/", "maxMessages": 7,
                "authorizationHeader": {"type": "disabled"}}),
    )
    .await;
    let mm = push_config(json!({
        "type": "mattermost",
        "maxMessages": 1,
        "retryPolicy": {"type": "linear", "period": 3000},
        "verified": true,
        "mattermostUrl": "https://mm.example.com/hooks/x",
        "mattermostUsername": "u",
        "mattermostChannel": "c",
    }));
    // The create response has no pushStatus; show has it.
    r.assert_ok(&sub_body("mm", mm.clone(), &[]));
    app.get("/v1/projects/P/subscriptions/mm")
        .await
        .assert_ok(&sub_body(
            "mm",
            mm,
            &[(
                "pushStatus",
                json!("Subscription /projects/P/subscriptions/mm is currently active"),
            )],
        ));

    // Lists never carry pushStatus.
    let r = app.get("/v1/projects/P/subscriptions").await;
    assert_eq!(r.status, 200);
    let list = r.json();
    let subs = list["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 9);
    assert!(!r.body.contains("pushStatus"), "{}", r.body);
    let mm_listed = subs
        .iter()
        .find(|s| s["name"] == "/projects/P/subscriptions/mm")
        .unwrap();
    assert_eq!(
        mm_listed.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "name",
            "topic",
            "pushConfig",
            "ackDeadlineSeconds",
            "createdOn"
        ]
    );
}

#[tokio::test]
async fn modify_push_config_transitions() {
    let app = push_app().await;
    let rx = Receiver::start(&app.clock).await;
    app.setup("P", "t", "s").await;
    let a = rx.url("/a");

    // pull → push: new hash, unverified, an autogen value, maxMessages given.
    modify(
        &app,
        &json!({"type": "http_endpoint", "pushEndpoint": a, "maxMessages": 4, "base64Decode": true}),
    )
    .await
    .assert_ok("");
    let c1 = shown(&app, "s").await;
    let hash = str_of(&c1, "/verificationHash").to_owned();
    let value = str_of(&c1, "/authorizationHeader/value").to_owned();
    assert!(is_token(&hash) && is_token(&value), "{c1}");
    assert_eq!(
        c1,
        push_config(json!({
            "type": "http_endpoint",
            "pushEndpoint": a,
            "maxMessages": 4,
            "authorizationHeader": {"type": "autogen", "value": value},
            "retryPolicy": {"type": "linear", "period": 3000},
            "verificationHash": hash,
            "base64Decode": true,
        }))
    );

    // Verification keeps base64Decode (the original dropped it).
    verify(&app, &rx, "s").await;
    let c2 = shown(&app, "s").await;
    assert_eq!(c2["verified"], true);
    assert_eq!(c2["base64Decode"], true, "{c2}");
    assert_eq!(c2["verificationHash"], hash.as_str());

    // Same endpoint, authorization and maxMessages omitted: hash, verified
    // flag, authorization value and maxMessages kept; base64Decode as given.
    modify(
        &app,
        &json!({"type": "http_endpoint", "pushEndpoint": a, "retryPolicy": {"type": "slowstart"}}),
    )
    .await
    .assert_ok("");
    assert_eq!(
        shown(&app, "s").await,
        push_config(json!({
            "type": "http_endpoint",
            "pushEndpoint": a,
            "maxMessages": 4,
            "authorizationHeader": {"type": "autogen", "value": value},
            "retryPolicy": {"type": "slowstart"},
            "verificationHash": hash,
            "verified": true,
        }))
    );
    // Still active: show has pushStatus.
    let v = app.get("/v1/projects/P/subscriptions/s").await.json();
    assert_eq!(
        v["pushStatus"],
        "Subscription /projects/P/subscriptions/s is currently active"
    );

    // base64Decode is persisted by modifyPushConfig.
    modify(
        &app,
        &json!({"type": "http_endpoint", "pushEndpoint": a, "base64Decode": true}),
    )
    .await
    .assert_ok("");
    let c = shown(&app, "s").await;
    assert_eq!(c["base64Decode"], true);
    assert_eq!(c["retryPolicy"], json!({"type": "linear", "period": 3000}));
    assert_eq!(c["authorizationHeader"]["value"], value.as_str());

    // Explicit autogen rotates the value on every call.
    let mut seen = vec![value.clone()];
    for _ in 0..2 {
        modify(
            &app,
            &json!({"type": "http_endpoint", "pushEndpoint": a, "authorizationHeader": {"type": "autogen"}}),
        )
        .await
        .assert_ok("");
        let c = shown(&app, "s").await;
        let v = str_of(&c, "/authorizationHeader/value").to_owned();
        assert!(is_token(&v) && !seen.contains(&v), "{c}");
        assert_eq!(c["verified"], true);
        assert_eq!(c["verificationHash"], hash.as_str());
        assert_eq!(c["maxMessages"], 4);
        seen.push(v);
    }

    // Explicit disabled clears it; omitted afterwards stays disabled.
    modify(
        &app,
        &json!({"type": "http_endpoint", "pushEndpoint": a, "authorizationHeader": {"type": "disabled"}}),
    )
    .await
    .assert_ok("");
    assert_eq!(
        shown(&app, "s").await["authorizationHeader"],
        json!({"type": "disabled"})
    );
    modify(
        &app,
        &json!({"type": "http_endpoint", "pushEndpoint": a, "maxMessages": 2}),
    )
    .await
    .assert_ok("");
    let c = shown(&app, "s").await;
    assert_eq!(c["authorizationHeader"], json!({"type": "disabled"}));
    assert_eq!(c["maxMessages"], 2);

    // A different endpoint (even on the same host) resets verification.
    let b = rx.url("/b");
    modify(&app, &json!({"type": "http_endpoint", "pushEndpoint": b}))
        .await
        .assert_ok("");
    let c = shown(&app, "s").await;
    let hash_b = str_of(&c, "/verificationHash").to_owned();
    assert!(is_token(&hash_b) && hash_b != hash, "{c}");
    assert_eq!(c["verified"], false);
    assert_eq!(c["pushEndpoint"], b.as_str());
    assert_eq!(c["authorizationHeader"], json!({"type": "disabled"}));
    assert_eq!(c["maxMessages"], 2);
    let v = app.get("/v1/projects/P/subscriptions/s").await.json();
    assert!(v.get("pushStatus").is_none(), "{v}");

    // push → mattermost: verified, endpoint and hash cleared, the original's
    // valueless autogen authorization recorded.
    modify(
        &app,
        &json!({"type": "mattermost", "mattermostUrl": "https://mm.example.com/hooks/x",
                "mattermostUsername": "u", "mattermostChannel": "c", "maxMessages": 9}),
    )
    .await
    .assert_ok("");
    assert_eq!(
        shown(&app, "s").await,
        push_config(json!({
            "type": "mattermost",
            "maxMessages": 1,
            "authorizationHeader": {"type": "autogen"},
            "retryPolicy": {"type": "linear", "period": 3000},
            "verified": true,
            "mattermostUrl": "https://mm.example.com/hooks/x",
            "mattermostUsername": "u",
            "mattermostChannel": "c",
        }))
    );

    // mattermost → http_endpoint: the mattermost fields are cleared.
    modify(&app, &json!({"type": "http_endpoint", "pushEndpoint": a}))
        .await
        .assert_ok("");
    let c = shown(&app, "s").await;
    assert_eq!(c["verified"], false);
    assert_eq!(c["mattermostUrl"], "");
    assert_eq!(c["mattermostUsername"], "");
    assert_eq!(c["mattermostChannel"], "");
    assert_eq!(c["maxMessages"], 1);
    assert_eq!(c["authorizationHeader"]["type"], "autogen");

    // {} → a pull subscription, every field zero, no pushStatus.
    modify(&app, &json!({})).await.assert_ok("");
    app.get("/v1/projects/P/subscriptions/s")
        .await
        .assert_ok(&sub_body("s", push_config(json!({})), &[]));
    // Other keys of the body are ignored; a missing pushConfig is pull too.
    app.post(MODIFY, r#"{"other":1}"#).await.assert_ok("");
    assert_eq!(shown(&app, "s").await, push_config(json!({})));
}

#[tokio::test]
async fn switching_to_pull_stops_delivery() {
    let app = push_app().await;
    let rx = Receiver::start(&app.clock).await;
    verified_sub(&app, &rx, "s", json!({})).await;
    app.publish("P", "t", &["MQ=="]).await;
    assert_eq!(rx.wait_for(1).await[0].json()["message"]["data"], "MQ==");
    wait_offset(&app, "s", 1).await;

    modify(&app, &json!({})).await.assert_ok("");
    app.publish("P", "t", &["Mg=="]).await;
    // The service token may pull it now; the pusher does not take it.
    let (ack_ids, datas) = app.pull("P", "s", 5).await;
    assert_eq!(datas, ["Mg=="]);
    app.ack("P", "s", &[&ack_ids[0]]).await.assert_ok("{}");
    assert_eq!(app.offsets("P", "s").await.2, 2);
    assert_eq!(rx.deliveries().len(), 1);
}

#[tokio::test]
async fn verify_push_endpoint_outcomes() {
    let app = push_app().await;
    let mut rx = Receiver::start(&app.clock).await;
    app.setup("P", "t", "pull").await;

    app.post(VERIFY, "")
        .await
        .assert_error(404, NO_SUB, "NOT_FOUND");
    app.post("/v1/projects/P/subscriptions/pull:verifyPushEndpoint", "")
        .await
        .assert_error(409, NOT_HTTP, "CONFLICT");
    create_sub(
        &app,
        "mm",
        json!({"type": "mattermost", "mattermostUrl": rx.url("/mm")}),
    )
    .await;
    app.post("/v1/projects/P/subscriptions/mm:verifyPushEndpoint", "")
        .await
        .assert_error(409, NOT_HTTP, "CONFLICT");

    // The endpoint has its own path and query; verification ignores them.
    let sub = create_sub(
        &app,
        "s",
        json!({"type": "http_endpoint", "pushEndpoint": rx.url("/some/path?x=1")}),
    )
    .await;
    let hash = str_of(&sub, "/pushConfig/verificationHash").to_owned();

    // The receiver answers 404 until told otherwise.
    let wrong_status = "Endpoint verification failed.Wrong response status code";
    let wrong_hash = "Endpoint verification failed.Wrong verification hash";
    app.post(VERIFY, "")
        .await
        .assert_error(401, wrong_status, "UNAUTHORIZED");
    rx.set_hash(500, &hash);
    app.post(VERIFY, "")
        .await
        .assert_error(401, wrong_status, "UNAUTHORIZED");
    rx.set_hash(201, &hash);
    app.post(VERIFY, "")
        .await
        .assert_error(401, wrong_status, "UNAUTHORIZED");
    for body in [
        "wrong".to_owned(),
        format!("{hash}\n"),
        format!(" {hash}"),
        hash.to_uppercase(),
        String::new(),
    ] {
        rx.set_hash(200, &body);
        app.post(VERIFY, "")
            .await
            .assert_error(401, wrong_hash, "UNAUTHORIZED");
    }

    // Connection refused: the client's error text follows the prefix.
    rx.stop().await;
    let r = app.post(VERIFY, "").await;
    assert_eq!(r.status, 401, "{}", r.body);
    let v = r.json();
    let message = str_of(&v, "/error/message");
    assert!(
        message.starts_with("Endpoint verification failed.")
            && message.len() > "Endpoint verification failed.".len(),
        "{message}"
    );
    assert_eq!(v["error"]["code"], 401);
    assert_eq!(v["error"]["status"], "UNAUTHORIZED");
    assert_eq!(shown(&app, "s").await["verified"], false);

    // Success: GET /ams_verification_hash answers exactly the hash.
    rx.restart().await;
    rx.set_hash(200, &hash);
    app.post(VERIFY, "").await.assert_ok("");
    assert_eq!(shown(&app, "s").await["verified"], true);
    app.post(VERIFY, "")
        .await
        .assert_error(409, "Push endpoint is already verified", "CONFLICT");
    // Deliveries go to the endpoint's own path.
    app.publish("P", "t", &["cGF0aA=="]).await;
    // Both `s` and the mattermost `mm` deliver it.
    let got = rx.wait_for(2).await;
    let d = got.iter().find(|d| d.path != "/mm").unwrap();
    assert_eq!(d.path, "/some/path");
    assert_eq!(d.json()["message"]["data"], "cGF0aA==");
    wait_offset(&app, "s", 1).await;
}

#[tokio::test]
async fn only_push_workers_and_service_admins_pull_push_subscriptions() {
    let app = push_app().await;
    app.setup("P", "t", "pull").await;
    create_sub(
        &app,
        "s",
        json!({"type": "http_endpoint", "pushEndpoint": "https://example.com/push"}),
    )
    .await;
    let admin = app.member_token("admin", "P", &["project_admin"]).await;
    let consumer = app
        .member_token("consumer", "P", &["consumer", "project_admin"])
        .await;
    let pure = app.member_token("pure", "P", &["consumer"]).await;
    let sa = app.service_user_token("sa", &["service_admin"]).await;
    let worker = app.service_user_token("worker", &["push_worker"]).await;
    app.set_acl("P", "subscriptions", "s", &["consumer", "pure"])
        .await;
    app.set_acl("P", "subscriptions", "pull", &["consumer", "pure"])
        .await;
    app.publish("P", "t", &["eA=="]).await;

    let pull_s = "/v1/projects/P/subscriptions/s:pull";
    let pull_p = "/v1/projects/P/subscriptions/pull:pull";
    for token in [&admin, &consumer, &pure] {
        assert_forbidden(&app.call_as("POST", pull_s, Some("{}"), Some(token)).await);
        // The same callers may pull the pull subscription.
        let r = app.call_as("POST", pull_p, Some("{}"), Some(token)).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Existence still comes first.
    let r = app
        .call_as(
            "POST",
            "/v1/projects/P/subscriptions/nope:pull",
            Some("{}"),
            Some(&admin),
        )
        .await;
    r.assert_error(404, NO_SUB, "NOT_FOUND");
    for token in [app.token.as_str(), &sa, &worker] {
        let r = app.call_as("POST", pull_s, Some("{}"), Some(token)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["receivedMessages"][0]["message"]["data"], "eA==");
    }
}

#[tokio::test]
async fn a_push_worker_pulling_while_push_is_disabled_gets_409_in_process() {
    let app = push_app().await;
    app.setup("P", "t", "pull").await;
    create_sub(
        &app,
        "s",
        json!({"type": "http_endpoint", "pushEndpoint": "https://example.com/push"}),
    )
    .await;
    let admin = app.member_token("admin", "P", &["project_admin"]).await;
    let worker = app.service_user_token("worker", &["push_worker"]).await;
    let dir = app.stop().await;
    let app = spawn_in(dir, |_| {}).await;
    let pull_s = "/v1/projects/P/subscriptions/s:pull";
    app.call_as("POST", pull_s, Some("{}"), Some(&worker))
        .await
        .assert_error(409, DISABLED, "CONFLICT");
    assert_forbidden(&app.call_as("POST", pull_s, Some("{}"), Some(&admin)).await);
    let r = app
        .call_as("POST", pull_s, Some("{}"), Some(&app.token))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn deleting_an_active_push_subscription_answers_its_deactivation() {
    let app = push_app().await;
    let rx = Receiver::start(&app.clock).await;
    verified_sub(&app, &rx, "s", json!({})).await;
    create_sub(
        &app,
        "mm",
        json!({"type": "mattermost", "mattermostUrl": rx.url("/mm")}),
    )
    .await;
    create_sub(
        &app,
        "unverified",
        json!({"type": "http_endpoint", "pushEndpoint": rx.url("/u")}),
    )
    .await;

    app.delete("/v1/projects/P/subscriptions/s")
        .await
        .assert_ok(r#"{"message":"Subscription /projects/P/subscriptions/s deactivated"}"#);
    app.delete("/v1/projects/P/subscriptions/mm")
        .await
        .assert_ok(r#"{"message":"Subscription /projects/P/subscriptions/mm deactivated"}"#);
    app.delete("/v1/projects/P/subscriptions/unverified")
        .await
        .assert_ok("");
    app.delete("/v1/projects/P/subscriptions/pull-only")
        .await
        .assert_ok("");
    app.delete("/v1/projects/P/subscriptions/s")
        .await
        .assert_error(404, NO_SUB, "NOT_FOUND");
}

#[tokio::test]
async fn plain_http_endpoints_are_accepted_when_allowed() {
    let app = push_app().await;
    let v = push_sub(
        &app,
        "s",
        json!({"type": "http_endpoint", "pushEndpoint": "http://127.0.0.1:9/x"}),
    )
    .await;
    assert_eq!(v["pushConfig"]["pushEndpoint"], "http://127.0.0.1:9/x");
}

/// A stopped push-enabled server releases its store (the domain holds the
/// pusher weakly), so it can be restarted in the same process.
#[tokio::test]
async fn a_push_enabled_server_releases_its_data_dir_on_stop() {
    let app = push_app().await;
    let dir = app.stop().await;
    let _app = spawn_in(dir, |_| {}).await;
}

#[tokio::test]
async fn a_huge_verification_answer_is_refused_without_reading_it_whole() {
    let app = push_app().await;
    let rx = Receiver::start(&app.clock).await;
    push_sub(
        &app,
        "s",
        json!({"type": "http_endpoint", "pushEndpoint": rx.url("/push")}),
    )
    .await;
    let hash =
        app.get("/v1/projects/P/subscriptions/s").await.json()["pushConfig"]["verificationHash"]
            .as_str()
            .unwrap()
            .to_owned();
    // The right hash followed by 8 MiB: read at most 1 KiB of it, still wrong.
    rx.set_hash(200, &format!("{hash}{}", "x".repeat(8 << 20)));
    app.post("/v1/projects/P/subscriptions/s:verifyPushEndpoint", "")
        .await
        .assert_error(
            401,
            "Endpoint verification failed.Wrong verification hash",
            "UNAUTHORIZED",
        );
}
