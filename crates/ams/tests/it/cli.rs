//! The `ams` client commands end to end: the built binary against a spawned
//! server, with JSON output parsed by the test and exit codes checked.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::helpers::*;

/// Guards against a hang only.
const HANG: Duration = Duration::from_secs(30);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `ams ARGS` against `app` (service token, project P) with `stdin`.
async fn ams(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Run {
    ams_as(app, Some(&app.token), args, stdin).await
}

async fn ams_as(app: &TestApp, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ams"));
    cmd.args(args)
        .env("AMS_URL", &app.base)
        .env("AMS_PROJECT", "P")
        // No profile file of the machine's user may leak in.
        .env("AMS_PROFILES", app.dir.path().join("no-profiles.toml"))
        .env_remove("AMS_TOKEN")
        .env_remove("AMS_PROFILE")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(t) = token {
        cmd.env("AMS_TOKEN", t);
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out = tokio::time::timeout(HANG, child.wait_with_output())
        .await
        .expect("the command finished in time")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn decoded(data: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn pub_from_stdin_then_sub_with_count() {
    let app = spawn_app().await;
    ams(
        &app,
        &["projects", "create", "P", "--description", "demo"],
        None,
    )
    .await
    .ok();
    ams(&app, &["topics", "create", "t"], None).await.ok();
    ams(
        &app,
        &["subscriptions", "create", "s", "--topic", "t"],
        None,
    )
    .await
    .ok();

    let run = ams(
        &app,
        &["pub", "t", "-a", "k=v", "--json"],
        Some("one\ntwo\n\nthree\n"),
    )
    .await;
    assert_eq!(
        run.ok().json()["messageIds"],
        serde_json::json!(["0", "1", "2"])
    );
    let run = ams(&app, &["pub", "t", "four"], None).await;
    assert_eq!(run.ok().stdout, "published message 3\n");

    let run = ams(&app, &["sub", "s", "--count", "4", "--json"], None).await;
    run.ok();
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let texts: Vec<String> = lines
        .iter()
        .map(|m| decoded(&m["message"]["data"]))
        .collect();
    assert_eq!(texts, ["one", "two", "three", "four"]);
    assert_eq!(lines[0]["message"]["attributes"]["k"], "v");
    assert_eq!(lines[0]["ackId"], "projects/P/subscriptions/s:0");
    // `sub` acknowledged what it printed.
    assert_eq!(app.offsets("P", "s").await.2, 4);

    // Human output: the decoded text.
    app.publish("P", "t", &["aGVsbG8="]).await;
    let run = ams(&app, &["sub", "s", "-n", "1"], None).await;
    assert!(run.ok().stdout.ends_with(" hello\n"), "{}", run.stdout);
}

#[tokio::test]
async fn admin_commands_with_json_output() {
    let app = spawn_app().await;
    ams(&app, &["projects", "create", "P"], None).await.ok();
    ams(&app, &["topics", "create", "t1"], None).await.ok();
    ams(&app, &["topics", "create", "t2"], None).await.ok();
    let topics = ams(&app, &["topics", "list", "--json"], None).await;
    let names: Vec<String> = topics.ok().json()["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["/projects/P/topics/t2", "/projects/P/topics/t1"]);
    let table = ams(&app, &["topics", "list"], None).await;
    assert!(table.ok().stdout.contains("NAME"), "{}", table.stdout);
    assert!(table.stdout.contains("t1"));

    ams(
        &app,
        &[
            "subscriptions",
            "create",
            "s",
            "-t",
            "t1",
            "--ack-deadline",
            "30",
        ],
        None,
    )
    .await
    .ok();
    let sub = ams(&app, &["subscriptions", "show", "s", "--json"], None).await;
    assert_eq!(sub.ok().json()["ackDeadlineSeconds"], 30);

    let user = ams(
        &app,
        &[
            "users",
            "create",
            "alice",
            "--role",
            "publisher",
            "--role",
            "consumer",
            "--json",
        ],
        None,
    )
    .await;
    let user = user.ok().json();
    assert_eq!(user["projects"][0]["project"], "P");
    let alice = user["token"].as_str().unwrap().to_owned();
    ams(&app, &["acl", "set", "topic", "t1", "alice"], None)
        .await
        .ok();
    let acl = ams(&app, &["acl", "show", "topic", "t1", "--json"], None).await;
    assert_eq!(
        acl.ok().json()["authorized_users"],
        serde_json::json!(["alice"])
    );
    // alice publishes with her own token.
    let run = ams_as(&app, Some(&alice), &["pub", "t1", "hi", "--json"], None).await;
    assert_eq!(run.ok().json()["messageIds"], serde_json::json!(["0"]));

    let users = ams(&app, &["users", "list", "--json"], None).await;
    let names = listed_names(&users.ok().json(), "users");
    assert!(names.contains(&"alice".to_owned()), "{names:?}");
    ams(&app, &["subscriptions", "delete", "s"], None)
        .await
        .ok();
    ams(&app, &["topics", "delete", "t2"], None).await.ok();
    ams(&app, &["users", "delete", "alice"], None).await.ok();
    let project = ams(&app, &["projects", "show", "--json"], None).await;
    assert_eq!(project.ok().json()["name"], "P");
    ams(&app, &["projects", "delete", "P"], None).await.ok();
    let list = ams(&app, &["projects", "list", "--json"], None).await;
    assert_eq!(list.ok().json()["projects"], serde_json::json!([]));
}

#[tokio::test]
async fn pull_ack_seek_and_tail() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    app.publish("P", "t", &["YQ==", "Yg==", "Yw=="]).await;
    let run = ams(&app, &["pull", "s", "--max", "2", "--json"], None).await;
    let got = run.ok().json();
    assert_eq!(got["receivedMessages"].as_array().unwrap().len(), 2);
    // `--json` prints a JSON document here too (`{}`, as the API answers).
    let run = ams(&app, &["ack", "s", "1", "--json"], None).await;
    assert_eq!(run.ok().json(), serde_json::json!({}));
    assert_eq!(app.offsets("P", "s").await.2, 2);
    let run = ams(&app, &["offsets", "s", "--json"], None).await;
    assert_eq!(run.ok().json()["current"], 2);
    ams(&app, &["seek", "s", "--offset", "0"], None).await.ok();
    assert_eq!(app.offsets("P", "s").await.2, 0);
    let run = ams(&app, &["pull", "s", "--max", "10", "--ack"], None).await;
    assert_eq!(run.ok().stdout.lines().count(), 3, "{}", run.stdout);
    assert_eq!(app.offsets("P", "s").await.2, 3);

    let run = ams(
        &app,
        &["tail", "t", "--last", "2", "--count", "2", "--json"],
        None,
    )
    .await;
    let ids: Vec<String> = run
        .ok()
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["messageId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["1", "2"]);
}

#[tokio::test]
async fn exit_codes_tell_failures_apart() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let run = ams(&app, &["topics", "show", "nope"], None).await;
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("Topic doesn't exist (404)"),
        "{}",
        run.stderr
    );

    let run = ams_as(&app, Some("wrong"), &["topics", "list"], None).await;
    assert_eq!(run.code, 4);
    assert!(run.stderr.contains("AMS_TOKEN"), "{}", run.stderr);

    let run = ams(&app, &["topics", "create", "t"], None).await;
    assert_eq!(run.code, 6, "{}", run.stderr);

    let run = ams(&app, &["pub", "nope", "x"], None).await;
    assert_eq!(run.code, 5);

    // Nothing listens on port 9 of the loopback: unreachable.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ams"));
    let out = cmd
        .args([
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "x",
            "-p",
            "P",
            "topics",
            "list",
        ])
        .env("AMS_PROFILES", app.dir.path().join("none.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the server running?"));

    // No project anywhere: a usage error that says where to put one.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ams"))
        .args(["--url", &app.base, "--token", &app.token, "topics", "list"])
        .env_remove("AMS_PROJECT")
        .env("AMS_PROFILES", app.dir.path().join("none.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AMS_PROJECT"));
}

#[tokio::test]
async fn profiles_and_completions() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let file = app.dir.path().join("profiles.toml");
    std::fs::write(
        &file,
        format!(
            "[default]\nurl = \"http://127.0.0.1:9\"\n\n[local]\nurl = \"{}\"\ntoken = \"{}\"\nproject = \"P\"\n",
            app.base, app.token
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ams"))
        .args(["--profile", "local", "topics", "list", "--json"])
        .env("AMS_PROFILES", &file)
        .env_remove("AMS_URL")
        .env_remove("AMS_TOKEN")
        .env_remove("AMS_PROJECT")
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["topics"][0]["name"], "/projects/P/topics/t");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ams"))
        .args(["--profile", "staging", "topics", "list"])
        .env("AMS_PROFILES", &file)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("known: default, local"));

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ams"))
        .args(["completions", "bash"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("_ams()"), "{script}");
    assert!(script.contains("subscriptions"));
}

#[tokio::test]
async fn sub_stops_without_acknowledging_when_nobody_reads_its_output() {
    use tokio::io::AsyncBufReadExt;
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ams"))
        .args(["sub", "s", "--json"])
        .env("AMS_URL", &app.base)
        .env("AMS_PROJECT", "P")
        .env("AMS_TOKEN", &app.token)
        .env("AMS_PROFILES", app.dir.path().join("no-profiles.toml"))
        .env_remove("AMS_PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    app.publish("P", "t", &["YQ=="]).await;
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(HANG, stdout.read_line(&mut line))
        .await
        .expect("a line in time")
        .unwrap();
    assert!(line.contains("\"messageId\":\"0\""), "{line}");
    // The reader goes away (`ams sub s | head -n 1`): the next message
    // cannot be shown, so it must not be acknowledged, and `sub` ends.
    drop(stdout);
    app.publish("P", "t", &["Yg=="]).await;
    let out = tokio::time::timeout(HANG, child.wait_with_output())
        .await
        .expect("sub ended in time")
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write the output"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        app.offsets("P", "s").await.2,
        1,
        "only what was shown is acknowledged"
    );
}

#[tokio::test]
async fn a_closed_standard_output_ends_a_command_quietly() {
    let app = spawn_app().await;
    app.setup("P", "t", "s").await;
    // A pipe whose reading end is gone: every write fails (as after `| head`).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ams"))
        .args(["topics", "list"])
        .env("AMS_URL", &app.base)
        .env("AMS_TOKEN", &app.token)
        .env("AMS_PROJECT", "P")
        .env("AMS_PROFILES", app.dir.path().join("none.toml"))
        .stdout(writer)
        .stderr(Stdio::piped())
        // Not `output()`: it would capture standard output itself.
        .spawn()
        .unwrap()
        .wait_with_output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
