//! `GET …/subscriptions/{s}:stream` and `GET …/topics/{t}:stream`: the
//! domain's live streams over a WebSocket (when the request asks for an
//! upgrade) or as Server-Sent Events (when it accepts `text/event-stream`).
//!
//! WebSocket frames are compact JSON: the server sends one frame per message
//! (`{"ackId","message"}` for subscriptions, the message itself for topics)
//! and `{"error":{…}}` envelopes; a client acknowledges with the body of
//! `:acknowledge` (`{"ackIds":[…]}`) and gets `{"acknowledged":[…]}` back.
//! Events carry the same JSON with `id:` = the message's offset, so a
//! browser's `EventSource` resumes a topic tail after a reconnect
//! (`Last-Event-ID`). A server shutdown closes WebSockets with 1001 and ends
//! event streams.

use std::convert::Infallible;
use std::time::Duration;

use ams_core::Error;
use ams_core::streams::{
    DEFAULT_WINDOW, Next, StreamOptions, SubscriptionStream, TailStart, TopicStream,
};
use ams_types::json::{Layout, to_vec};
use ams_types::wire;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::{Call, Handled};

/// How often an idle WebSocket is pinged (a vanished client shows up as a
/// failed write).
const PING_EVERY: Duration = Duration::from_secs(30);
/// Longest one frame may wait for a client that does not read.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// `GET …/subscriptions/{subscription}:stream`.
pub async fn subscription(mut call: Call) -> Handled {
    let options = StreamOptions {
        window: match call.query.get("window") {
            None | Some("") => DEFAULT_WINDOW,
            Some(w) => w
                .parse()
                .map_err(|_| Error::InvalidStreamParameter("window must be between 1 and 10000"))?,
        },
        auto_ack: flag(&call, "autoAck")?,
    };
    let transport = transport(&mut call)?;
    let stream = call
        .ams
        .subscription_stream(&call.ctx, call.params.var("subscription"), options)
        .await?;
    let stop = call.streams_stop.clone();
    Ok(match transport {
        Transport::WebSocket(upgrade) => upgrade
            .on_upgrade(move |ws| socket(ws, stream, stop))
            .into_response(),
        Transport::Events => events(stream, stop),
    })
}

/// `GET …/topics/{topic}:stream?from=|time=|last=[&max=]`.
pub async fn topic(mut call: Call) -> Handled {
    let number = |name: &str, rule: &'static str| -> Result<Option<u64>, Error> {
        match call.query.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Error::InvalidStreamParameter(rule)),
        }
    };
    let from = number("from", "from must be an offset")?;
    let last = number("last", "last must be a number of messages")?;
    let max = number("max", "max must be a number of messages")?;
    let time = match call.query.get("time") {
        None | Some("") => None,
        Some(t) => Some(parse_time(t).ok_or(Error::InvalidStreamParameter(
            "time must be an RFC 3339 time such as 2024-01-01T10:00:00Z",
        ))?),
    };
    // A reconnecting EventSource resumes after the last event it saw.
    let resume = call
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let start = match (from, time, last) {
        _ if resume.is_some() => TailStart::Offset(resume.unwrap_or_default().saturating_add(1)),
        (None, None, None) => TailStart::End,
        (Some(o), None, None) => TailStart::Offset(o),
        (None, Some(ms), None) => TailStart::Time(ms),
        (None, None, Some(n)) => TailStart::Last(n),
        _ => {
            return Err(Error::InvalidStreamParameter(
                "give at most one of from, time and last",
            ));
        }
    };
    let transport = transport(&mut call)?;
    let stream = call
        .ams
        .topic_stream(&call.ctx, call.params.var("topic"), start, max)
        .await?;
    let stop = call.streams_stop.clone();
    Ok(match transport {
        Transport::WebSocket(upgrade) => upgrade
            .on_upgrade(move |ws| socket(ws, stream, stop))
            .into_response(),
        Transport::Events => events(stream, stop),
    })
}

enum Transport {
    WebSocket(WebSocketUpgrade),
    Events,
}

/// A WebSocket upgrade, else an event stream if the client accepts one.
fn transport(call: &mut Call) -> Result<Transport, Error> {
    if let Some(upgrade) = call.upgrade.take() {
        return Ok(Transport::WebSocket(upgrade));
    }
    let accepts_events = call
        .headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if accepts_events {
        Ok(Transport::Events)
    } else {
        Err(Error::InvalidStreamParameter(
            "a stream needs a WebSocket upgrade or Accept: text/event-stream",
        ))
    }
}

fn flag(call: &Call, name: &str) -> Result<bool, Error> {
    match call.query.get(name) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(Error::InvalidStreamParameter(
            "autoAck must be true or false",
        )),
    }
}

/// RFC 3339 (`2024-01-01T10:00:00Z`, fractions and offsets allowed), as Unix ms.
fn parse_time(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

fn compact<T: serde::Serialize>(value: &T) -> String {
    String::from_utf8(to_vec(value, Layout::Compact)).unwrap_or_default()
}

fn error_json(e: &Error) -> String {
    let (code, message, status) = crate::error::describe(e);
    compact(&wire::ErrorEnvelope {
        error: wire::ErrorBody {
            code: code.as_u16(),
            message,
            status: status.to_owned(),
        },
    })
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;

/// Sends one frame, giving up on a client that does not read for too long.
async fn send(tx: &mut Sink, frame: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(frame)).await,
        Ok(Ok(()))
    )
}

async fn close(tx: &mut Sink, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = send(tx, Message::Close(Some(frame))).await;
}

/// One message to send: its offset (the event id) and its compact JSON.
struct Frame {
    id: String,
    json: String,
}

impl Frame {
    fn of<T: serde::Serialize>(id: &str, value: &T) -> Self {
        Self {
            id: id.to_owned(),
            json: compact(value),
        }
    }
}

/// What frames to send next, or how the stream ends: an error envelope to
/// send first, if any, and the WebSocket close code.
type Frames = Result<Vec<Frame>, (Option<String>, u16)>;

/// What a stream carries, whatever the transport: the domain stream behind it.
trait Feed: Send + 'static {
    /// What [`Feed::wait`] found.
    type Found: Send;
    /// Waits until there may be something to send. Cancellation-safe.
    fn wait(&mut self) -> impl Future<Output = Self::Found> + Send;
    /// Turns what was found into frames to send, or the end of the stream.
    /// Runs to completion.
    fn frames(&mut self, found: Self::Found) -> impl Future<Output = Frames> + Send;
    /// Answers a text frame from the client, if it expects an answer.
    fn text(&mut self, text: &str) -> impl Future<Output = Option<String>> + Send;
}

impl Feed for SubscriptionStream {
    type Found = Result<(), Error>;

    async fn wait(&mut self) -> Self::Found {
        self.ready().await
    }

    async fn frames(&mut self, found: Self::Found) -> Frames {
        if found.is_err() {
            return Err((None, 1011));
        }
        match self.next().await {
            Ok(Next::Idle) => Ok(Vec::new()),
            Ok(Next::Messages(ms)) => Ok(ms
                .iter()
                .map(|m| Frame::of(&m.message.message_id, m))
                .collect()),
            Ok(Next::End(e)) | Err(e) => Err((Some(error_json(&e)), 1000)),
        }
    }

    async fn text(&mut self, text: &str) -> Option<String> {
        let body = ams_types::json::from_slice::<wire::Acknowledge>(text.as_bytes());
        let ids = body.as_ref().ok().and_then(|b| b.ack_ids.clone());
        Some(match self.acknowledge(body).await {
            Ok(()) => compact(&serde_json::json!({ "acknowledged": ids })),
            Err(e) => error_json(&e),
        })
    }
}

impl Feed for TopicStream {
    type Found = Result<Option<Vec<wire::Message>>, Error>;

    async fn wait(&mut self) -> Self::Found {
        self.next().await
    }

    async fn frames(&mut self, found: Self::Found) -> Frames {
        match found {
            Ok(Some(ms)) => Ok(ms.iter().map(|m| Frame::of(&m.message_id, m)).collect()),
            Ok(None) => Err((None, 1000)),
            Err(e) => Err((Some(error_json(&e)), 1011)),
        }
    }

    // Tails take no frames.
    async fn text(&mut self, _text: &str) -> Option<String> {
        None
    }
}

/// Runs a WebSocket over a feed until either side ends it or the server
/// shuts down (close 1001). Idle sockets are pinged, so that a vanished
/// client shows up as a failed write.
async fn socket<F: Feed>(socket: WebSocket, mut feed: F, stop: CancellationToken) {
    let (mut tx, mut rx) = socket.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let outgoing = tokio::select! {
            () = stop.cancelled() => Err((None, 1001)),
            _ = ping.tick() => {
                if !send(&mut tx, Message::Ping(Default::default())).await {
                    return;
                }
                Ok(Vec::new())
            }
            frame = rx.next() => match frame {
                Some(Ok(Message::Text(text))) => Ok(feed
                    .text(&text)
                    .await
                    .map(|json| Frame { id: String::new(), json })
                    .into_iter()
                    .collect()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => Ok(Vec::new()),
            },
            found = feed.wait() => feed.frames(found).await,
        };
        match outgoing {
            Ok(frames) => {
                for f in frames {
                    if !send(&mut tx, Message::Text(f.json.into())).await {
                        return;
                    }
                }
            }
            Err((error, code)) => {
                if let Some(e) = error {
                    let _ = send(&mut tx, Message::Text(e.into())).await;
                }
                let reason = match code {
                    1000 => "stream ended",
                    1001 => "server shutting down",
                    _ => "internal error",
                };
                close(&mut tx, code, reason).await;
                return;
            }
        }
    }
}

/// Serves a feed as Server-Sent Events: `event: message` with `id:` = the
/// offset, and an `event: error` before the end when the stream fails. A
/// server shutdown ends it.
fn events<F: Feed>(feed: F, stop: CancellationToken) -> Response {
    let events = futures::stream::unfold(
        (feed, Vec::new().into_iter(), false),
        move |(mut feed, mut queued, done)| {
            let stop = stop.clone();
            async move {
                if let Some(event) = queued.next() {
                    return Some((Ok::<_, Infallible>(event), (feed, queued, done)));
                }
                // An ended stream is not asked again (a failing store would
                // answer with errors in a tight loop).
                if done {
                    return None;
                }
                loop {
                    let found = tokio::select! {
                        () = stop.cancelled() => return None,
                        found = feed.wait() => found,
                    };
                    let (events, done) = match feed.frames(found).await {
                        Ok(frames) if frames.is_empty() => continue,
                        Ok(frames) => (
                            frames
                                .into_iter()
                                .map(|f| Event::default().event("message").id(f.id).data(f.json))
                                .collect::<Vec<_>>(),
                            false,
                        ),
                        Err((Some(error), _)) => {
                            (vec![Event::default().event("error").data(error)], true)
                        }
                        Err((None, _)) => return None,
                    };
                    let mut queued = events.into_iter();
                    let first = queued.next()?;
                    return Some((Ok(first), (feed, queued, done)));
                }
            }
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
