//! One delivery: the request bodies of contract §7.5 and what counts as
//! success. The HTTP client is shared by every subscription (a bounded pool,
//! a per-request timeout, no redirects).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use ams_core::model::{Push, PushKind};
use ams_types::json::{self, Layout};
use ams_types::wire;

/// HTTP client settings of the pusher.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest a delivery or verification request may take.
    pub timeout: Duration,
    /// Idle connections kept per endpoint host.
    pub max_idle_per_host: usize,
    /// Extra trusted CA certificates (PEM), besides the system's.
    pub extra_roots_pem: Vec<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_idle_per_host: 8,
            extra_roots_pem: Vec::new(),
        }
    }
}

/// A pusher HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A CA file is not PEM.
    #[error("a trusted CA is not a valid PEM certificate: {0}")]
    BadCertificate(String),
    /// The TLS stack refused the settings.
    #[error("cannot build the push HTTP client: {0}")]
    Build(String),
}

/// Builds the shared client.
pub fn client(opts: &ClientOptions) -> Result<reqwest::Client, ClientError> {
    let mut roots = Vec::new();
    for pem in &opts.extra_roots_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
        roots.extend(certs);
    }
    reqwest::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .pool_max_idle_per_host(opts.max_idle_per_host)
        // A push endpoint must answer itself; a redirect is a failure.
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge(roots)
        .build()
        .map_err(|e| ClientError::Build(error_text(&e)))
}

/// `e` with its causes, on one line (reqwest's own text stops at the top).
pub fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Why a delivery failed (shown in the subscription's push status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The endpoint answered something other than success.
    #[error("endpoint responded with status {0}")]
    Status(u16),
    /// No answer: connection, TLS or timeout.
    #[error("{0}")]
    Transport(String),
    /// `base64Decode` is on and a message's data is not base64.
    #[error("message {0}: data is not valid base64 and base64Decode is set")]
    NotBase64(String),
}

/// Reads at most `limit` bytes of a response body (the rest is not read).
pub async fn read_at_most(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room {
            break;
        }
    }
    Ok(body)
}

/// Bytes of a delivery's answer read (and dropped) so that the connection can
/// be reused; a longer answer closes it instead.
const ANSWER_DRAIN_MAX: usize = 64 << 10;

/// Delivers one pulled batch to the subscription's endpoint or webhook, each
/// request bounded by `timeout`.
pub async fn deliver(
    client: &reqwest::Client,
    push: &Push,
    subscription: &str,
    received: &[wire::ReceivedMessage],
    timeout: Duration,
) -> Result<(), Failure> {
    let mut messages: Vec<wire::Message> = received.iter().map(|r| r.message.clone()).collect();
    if push.base64_decode {
        for m in &mut messages {
            let bytes = STANDARD
                .decode(m.data.as_bytes())
                .map_err(|_| Failure::NotBase64(m.message_id.clone()))?;
            m.data = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    match push.kind {
        PushKind::HttpEndpoint => {
            let body = if push.max_messages > 1 {
                json::to_vec(
                    &wire::PushedBatch {
                        messages: messages
                            .iter()
                            .map(|message| wire::PushedMessage {
                                message,
                                subscription,
                            })
                            .collect(),
                    },
                    Layout::Compact,
                )
            } else {
                let Some(message) = messages.first() else {
                    return Ok(());
                };
                json::to_vec(
                    &wire::PushedMessage {
                        message,
                        subscription,
                    },
                    Layout::Compact,
                )
            };
            let mut request = client
                .post(&push.endpoint)
                .timeout(timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            if !push.authorization_value.is_empty() {
                request = request.header(
                    reqwest::header::AUTHORIZATION,
                    push.authorization_value.as_str(),
                );
            }
            send(request, &[200, 201, 204, 102]).await
        }
        PushKind::Mattermost => {
            for m in &messages {
                let body = json::to_vec(
                    &wire::MattermostPost {
                        text: &m.data,
                        username: &push.mattermost_username,
                        channel: &push.mattermost_channel,
                    },
                    Layout::Compact,
                );
                let request = client
                    .post(&push.mattermost_url)
                    .timeout(timeout)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body);
                send(request, &[200]).await?;
            }
            Ok(())
        }
    }
}

async fn send(request: reqwest::RequestBuilder, success: &[u16]) -> Result<(), Failure> {
    let response = request
        .send()
        .await
        .map_err(|e| Failure::Transport(error_text(&e.without_url())))?;
    let status = response.status().as_u16();
    let _ = read_at_most(response, ANSWER_DRAIN_MAX).await;
    if success.contains(&status) {
        Ok(())
    } else {
        Err(Failure::Status(status))
    }
}
