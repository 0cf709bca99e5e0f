//! The `:stream` routes as Server-Sent Events: [`Client::stream_subscription`]
//! ([`SubscriptionStream`]) and [`Client::tail_topic`] ([`TopicTail`]).
//!
//! The server answers a request with `Accept: text/event-stream` with blocks
//! of `event: message`, `id: <offset>` and `data: <compact JSON>` lines ended
//! by a blank line, `event: error` blocks whose data is an AMS error envelope,
//! and `:` comment lines as keep-alives; the stream ends when the server
//! closes it. The per-request timeout bounds only the wait for the server's
//! answer, not the stream; a stream that receives nothing at all (not even
//! the keep-alives the server sends every 15 s) for [`STREAM_IDLE`] (or what
//! [`crate::ClientBuilder::stream_idle`] says) ends
//! with [`Error::Timeout`], so a silently dead connection cannot hang a
//! reader.

use std::collections::VecDeque;

use ams_types::wire;

use crate::transport::{decode, verb};
use crate::{Client, Error, Result};

/// Longest a stream may receive nothing before it is given up as dead, by
/// default.
pub const STREAM_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Where a topic tail starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailStart {
    /// With the next message published.
    End,
    /// With the last `n` messages already published.
    Last(u64),
    /// At this offset.
    Offset(u64),
    /// At the first message published at or after this RFC 3339 time
    /// (`2024-01-01T10:00:00Z`).
    Time(String),
}

impl Client {
    /// `GET …/subscriptions/{sub}:stream`: the subscription's messages as
    /// they arrive, at most `window` unacknowledged at a time (the server's
    /// default when `None`). Acknowledge with [`Client::acknowledge`], or let
    /// the server do it as it sends (`auto_ack`). Messages not acknowledged
    /// within the ack deadline are sent again.
    pub async fn stream_subscription(
        &self,
        project: &str,
        sub: &str,
        window: Option<u32>,
        auto_ack: bool,
    ) -> Result<SubscriptionStream> {
        let window = window.map(|w| w.to_string()).unwrap_or_default();
        let url = self.url_with(
            &["projects", project, "subscriptions", &verb(sub, "stream")],
            &[
                ("window", &window),
                ("autoAck", if auto_ack { "true" } else { "" }),
            ],
        );
        let events = Events::new(self.open_stream(url).await?, self.0.stream_idle);
        Ok(SubscriptionStream { events })
    }

    /// `GET …/topics/{topic}:stream`: the topic's messages from `start` on,
    /// without a subscription (nothing is acknowledged); ends after `max`
    /// messages when given.
    pub async fn tail_topic(
        &self,
        project: &str,
        topic: &str,
        start: TailStart,
        max: Option<u64>,
    ) -> Result<TopicTail> {
        let (key, value) = match &start {
            TailStart::End => ("", String::new()),
            TailStart::Last(n) => ("last", n.to_string()),
            TailStart::Offset(o) => ("from", o.to_string()),
            TailStart::Time(t) => ("time", t.clone()),
        };
        let max = max.map(|m| m.to_string()).unwrap_or_default();
        let url = self.url_with(
            &["projects", project, "topics", &verb(topic, "stream")],
            &[(key, &value), ("max", &max)],
        );
        let events = Events::new(self.open_stream(url).await?, self.0.stream_idle);
        Ok(TopicTail {
            events,
            last_id: None,
        })
    }
}

/// A live subscription stream (see [`Client::stream_subscription`]).
pub struct SubscriptionStream {
    events: Events,
}

impl SubscriptionStream {
    /// The next message; `Some(Err(Error::Api))` for an error the server
    /// sends, `Some(Err(Error::Connection))` if the connection breaks, `None`
    /// once the server has closed the stream.
    pub async fn next(&mut self) -> Option<Result<wire::ReceivedMessage>> {
        let event = self.events.next_message().await?;
        Some(event.and_then(|e| decode(e.data.as_bytes())))
    }
}

/// A live topic tail (see [`Client::tail_topic`]).
pub struct TopicTail {
    events: Events,
    last_id: Option<String>,
}

impl TopicTail {
    /// The next message; `Some(Err(Error::Api))` for an error the server
    /// sends, `Some(Err(Error::Connection))` if the connection breaks, `None`
    /// once the server has closed the stream (after `max` messages, or when
    /// the topic is deleted).
    pub async fn next(&mut self) -> Option<Result<wire::Message>> {
        let event = match self.events.next_message().await? {
            Ok(event) => event,
            Err(e) => return Some(Err(e)),
        };
        if event.id.is_some() {
            self.last_id = event.id;
        }
        Some(decode(event.data.as_bytes()))
    }

    /// The `id` (offset) of the last message received: resume with
    /// [`TailStart::Offset`] of the next one after a broken connection.
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }
}

/// The events of a streamed answer.
struct Events {
    response: Option<reqwest::Response>,
    idle: std::time::Duration,
    parser: SseParser,
    ready: VecDeque<Event>,
}

impl Events {
    fn new(response: reqwest::Response, idle: std::time::Duration) -> Self {
        Self {
            response: Some(response),
            idle,
            parser: SseParser::default(),
            ready: VecDeque::new(),
        }
    }

    /// The next event, reading more of the body as needed.
    async fn next_event(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            let response = self.response.as_mut()?;
            match tokio::time::timeout(self.idle, response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.parser.feed(&bytes, &mut self.ready),
                Ok(Ok(None)) => {
                    self.response = None;
                    return None;
                }
                Ok(Err(e)) => {
                    self.response = None;
                    return Some(Err(Error::from_reqwest(e)));
                }
                Err(_) => {
                    self.response = None;
                    return Some(Err(Error::Timeout));
                }
            }
        }
    }

    /// The next `message` event; an `error` event as its error; other
    /// event types are skipped.
    async fn next_message(&mut self) -> Option<Result<Event>> {
        loop {
            let event = match self.next_event().await? {
                Ok(event) => event,
                Err(e) => return Some(Err(e)),
            };
            match event.kind.as_str() {
                "message" => return Some(Ok(event)),
                "error" => return Some(Err(Error::from_answer(500, event.data.as_bytes()))),
                _ => {}
            }
        }
    }
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    /// `event:` (`message` when absent).
    kind: String,
    /// The `data:` lines, joined with `\n`.
    data: String,
    /// `id:`, if the event has one.
    id: Option<String>,
}

/// An incremental `text/event-stream` parser (the WHATWG rules for lines
/// ended by LF or CRLF): bytes in, complete events out, whatever the chunk
/// boundaries.
#[derive(Debug, Default)]
struct SseParser {
    /// Bytes of an unfinished line.
    line: Vec<u8>,
    kind: String,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl SseParser {
    /// Parses `chunk`, appending the events it completes to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut VecDeque<Event>) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.line.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(event) = self.line_done(&String::from_utf8_lossy(&line)) {
                out.push_back(event);
            }
        }
        self.line.extend_from_slice(rest);
    }

    fn line_done(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let kind = std::mem::take(&mut self.kind);
            let mut data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            return Some(Event {
                kind: if kind.is_empty() {
                    "message".to_owned()
                } else {
                    kind
                },
                data,
                id: self.id.clone(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.kind = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": keep-alive\n\nevent: message\nid: 7\ndata: {\"ackId\":\"projects/p/subscriptions/s:7\",\"message\":{\"messageId\":\"7\",\"data\":\"w6k=\",\"publishTime\":\"2024-01-01T10:00:00Z\"}}\n\nevent: error\r\ndata: {\"error\":{\"code\":404,\"message\":\"Subscription doesn't exist\",\"status\":\"NOT_FOUND\"}}\r\n\r\ndata: a\ndata:b\n\n";

    fn parse_in_chunks(bytes: &[u8], size: usize) -> Vec<Event> {
        let mut parser = SseParser::default();
        let mut out = VecDeque::new();
        for chunk in bytes.chunks(size) {
            parser.feed(chunk, &mut out);
        }
        out.into()
    }

    #[test]
    fn events_are_the_same_whatever_the_chunk_boundaries() {
        let whole = parse_in_chunks(STREAM.as_bytes(), STREAM.len());
        assert_eq!(whole.len(), 3);
        assert_eq!(
            (whole[0].kind.as_str(), whole[0].id.as_deref()),
            ("message", Some("7"))
        );
        let m: wire::ReceivedMessage = decode(whole[0].data.as_bytes()).unwrap();
        assert_eq!(m.message.message_id, "7");
        assert!(m.message.attributes.is_empty());
        assert_eq!(whole[1].kind, "error");
        assert!(whole[1].data.starts_with("{\"error\""));
        assert_eq!(
            (whole[2].kind.as_str(), whole[2].data.as_str()),
            ("message", "a\nb")
        );
        for size in 1..STREAM.len() {
            assert_eq!(parse_in_chunks(STREAM.as_bytes(), size), whole, "{size}");
        }
    }

    #[test]
    fn multibyte_text_split_across_chunks_survives() {
        let text = "data: é€\n\n".as_bytes();
        for size in 1..text.len() {
            let events = parse_in_chunks(text, size);
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].data, "é€");
        }
    }

    #[test]
    fn comments_and_events_without_data_dispatch_nothing() {
        assert!(parse_in_chunks(b":\n\n: ping\n\nevent: x\n\nid: 3\n\n", 4).is_empty());
        // An unfinished event at the end is not dispatched.
        assert!(parse_in_chunks(b"data: cut", 3).is_empty());
    }

    #[test]
    fn error_events_carry_the_ams_error() {
        let events = parse_in_chunks(STREAM.as_bytes(), 5);
        let e = Error::from_answer(500, events[1].data.as_bytes());
        assert!(matches!(
            e,
            Error::Api { code: 404, ref message, .. } if message == "Subscription doesn't exist"
        ));
    }
}
