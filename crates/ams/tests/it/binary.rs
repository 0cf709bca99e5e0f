//! The built binary: start-up errors, the generated service token, TLS.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::{http_client, spawn_with};

#[tokio::test]
async fn unknown_config_keys_and_bad_values_stop_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (json, key) in [
        (r#"{"prot": 8080}"#, "`prot`"),
        (r#"{"port": "x"}"#, "`port`"),
    ] {
        let file = dir.path().join("config.json");
        std::fs::write(&file, json).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ams"))
            .args(["serve", "--port", "0", "--config"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{stderr}");
    }
}

#[tokio::test]
async fn bad_flag_values_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_ams"))
        .args(["serve", "--durability", "sometimes"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--durability"));
}

/// Starts the binary without a token, reads stdout until the server listens,
/// then stops it with SIGTERM and returns what it printed on stdout.
async fn start_without_token(data: &std::path::Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ams"))
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(data)
        .env_remove("AMS_SERVICE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(line) = err.next_line().await.unwrap() {
        assert!(
            !line.contains(&read_token(data)),
            "the token is never logged"
        );
        if line.contains("listening on") {
            break;
        }
    }
    terminate(&child).await;
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "graceful shutdown on SIGTERM");
    String::from_utf8(out.stdout).unwrap()
}

/// Sends SIGTERM (graceful shutdown) to a started server.
async fn terminate(child: &tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

fn read_token(data: &std::path::Path) -> String {
    std::fs::read_to_string(data.join("service_token"))
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|_| "no token yet".into())
}

#[tokio::test]
async fn first_start_generates_a_private_token_and_later_starts_reuse_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = start_without_token(&data).await;
    assert!(first.contains("Generated a service token"), "{first}");
    let token = read_token(&data);
    assert_eq!(token.len(), 64);
    assert!(!first.contains(&token), "the token itself is not printed");
    let mode = std::fs::metadata(data.join("service_token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "the data directory holds tokens: owner only"
    );
    let second = start_without_token(&data).await;
    assert!(!second.contains("Generated"), "{second}");
    assert_eq!(read_token(&data), token);
}

#[tokio::test]
async fn serves_https_when_a_certificate_is_configured() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let app = spawn_with(|c| c.tls = Some((cert_path.clone(), key_path.clone()))).await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let _ = http_client(); // installs the crypto provider
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap()])
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://localhost:{port}/v1/projects"))
        .header("x-api-key", &app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "{}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = http_client()
        .get(format!("{}/v1/projects", app.base))
        .header("x-api-key", &app.token)
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

/// Starts the binary, returns the port from its "listening on" line, and kills it.
async fn listening_port(args: &[&str], env: &[(&str, &str)], config: &str) -> u16 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ams"));
    cmd.args(["serve", "--service-token", "S3CR3T", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(args)
        .env_remove("AMS_PORT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(line) = err.next_line().await.unwrap() {
        if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
            child.kill().await.unwrap();
            return rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    panic!("server exited without listening");
}

#[tokio::test]
async fn environment_overrides_the_file_and_flags_override_the_environment() {
    // The file asks for port 1; the environment's 0 (any free port) wins.
    let port = listening_port(&[], &[("AMS_PORT", "0")], r#"{"port": 1}"#).await;
    assert_ne!(port, 1);
    // The environment asks for port 1; the flag's 0 wins.
    let port = listening_port(&["--port", "0"], &[("AMS_PORT", "1")], "{}").await;
    assert_ne!(port, 1);
}

/// The access log: a line per request, never the token (not even one sent as
/// `?key=`), written by the flusher while the server runs (stderr is a pipe
/// here, so the lines are buffered) and at shutdown for the last requests.
#[tokio::test]
async fn every_request_gets_an_access_line_while_running_and_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ams"))
        .args([
            "serve",
            "--port",
            "0",
            "--service-token",
            "S3CR3T",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut port = None;
    while port.is_none() {
        let line = err.next_line().await.unwrap().expect("server exited");
        port = line
            .split("listening on http://127.0.0.1:")
            .nth(1)
            .map(|rest| rest.split_whitespace().next().unwrap().to_owned());
        seen.push(line);
    }
    let base = format!("http://127.0.0.1:{}", port.unwrap());
    let get = |id: &'static str| {
        http_client()
            .get(format!("{base}/v1/projects?key=S3CR3T"))
            .header("x-request-id", id)
            .send()
    };
    assert_eq!(get("while-running").await.unwrap().status(), 200);
    // The flusher writes the line with no further request or shutdown.
    let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(line) = err.next_line().await.unwrap() {
            seen.push(line);
            if seen.last().unwrap().contains("while-running") {
                return;
            }
        }
        panic!("server exited");
    })
    .await;
    assert!(found.is_ok(), "no access line within 10 s: {seen:#?}");
    assert_eq!(get("at-shutdown").await.unwrap().status(), 200);
    terminate(&child).await;
    while let Some(line) = err.next_line().await.unwrap() {
        seen.push(line);
    }
    assert!(child.wait().await.unwrap().success());
    let access: Vec<&String> = seen
        .iter()
        .filter(|l| l.contains("ams_http::access"))
        .collect();
    assert_eq!(access.len(), 2, "{seen:#?}");
    assert!(access[0].contains("while-running") && access[0].contains("status=200"));
    assert!(access[1].contains("at-shutdown"), "{seen:#?}");
    assert!(seen.iter().all(|l| !l.contains("S3CR3T")), "{seen:#?}");
}
