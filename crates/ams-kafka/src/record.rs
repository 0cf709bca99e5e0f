//! The record format: exactly the original's, so that its Kafka topics and ours
//! are interchangeable. The value is the message as compact Go JSON,
//! `{"attributes"?, "data", "publishTime"}` (the original also writes a
//! `messageId`, a guess it overwrites with the offset when reading; we leave
//! it out, as Go does for an empty id). The record timestamp is the publish
//! time in milliseconds, which is what ListOffsets-by-time searches.

use std::collections::BTreeMap;

use ams_core::storage::{NewMessage, StoredMessage};
use ams_types::Timestamp;
use ams_types::json::{self, Layout};
use rskafka::chrono::{DateTime, Utc};
use rskafka::record::{Record, RecordAndOffset};
use serde::{Deserialize, Serialize};

/// The value as written.
#[derive(Serialize)]
struct Outgoing<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<&'a str, &'a str>,
    data: &'a str,
    #[serde(rename = "publishTime")]
    publish_time: &'a str,
}

/// The value as read: the original's fields, all optional.
#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    attributes: Option<BTreeMap<String, String>>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default, rename = "publishTime")]
    publish_time: Option<String>,
}

/// Encodes one message published at `publish_time_ns`.
pub(crate) fn encode(message: &NewMessage, publish_time_ns: i64) -> Record {
    let publish_time = Timestamp::from_nanos(publish_time_ns).to_rfc3339_nanos();
    let value = json::to_vec(
        &Outgoing {
            attributes: message
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            data: &message.data,
            publish_time: &publish_time,
        },
        Layout::Compact,
    );
    Record {
        key: None,
        value: Some(value),
        headers: BTreeMap::new(),
        timestamp: DateTime::<Utc>::from_timestamp_nanos(publish_time_ns),
    }
}

/// Why a record could not be read as a message.
#[derive(Debug, thiserror::Error)]
#[error("record at offset {offset} is not an AMS message: {reason}")]
pub(crate) struct BadRecord {
    offset: i64,
    reason: String,
}

/// Decodes a record; the message id is its offset, the publish time the one
/// in the value (nanoseconds), else the record's timestamp.
pub(crate) fn decode(record: RecordAndOffset) -> Result<StoredMessage, BadRecord> {
    let bad = |reason: String| BadRecord {
        offset: record.offset,
        reason,
    };
    let value = record.record.value.as_deref().unwrap_or_default();
    let incoming: Incoming = serde_json::from_slice(value).map_err(|e| bad(e.to_string()))?;
    let publish_time_ns = match incoming.publish_time.as_deref() {
        Some(text) => {
            parse_rfc3339_nanos(text).ok_or_else(|| bad(format!("publishTime {text:?}")))?
        }
        None => record.record.timestamp.timestamp_nanos_opt().unwrap_or(0),
    };
    Ok(StoredMessage {
        offset: u64::try_from(record.offset).map_err(|_| bad("negative offset".into()))?,
        publish_time_ns,
        attributes: incoming
            .attributes
            .unwrap_or_default()
            .into_iter()
            .collect(),
        data: incoming.data.unwrap_or_default(),
    })
}

/// Parses an RFC 3339 time (the original writes UTC with up to nine
/// fractional digits) into nanoseconds since the epoch.
fn parse_rfc3339_nanos(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

/// The budget a message costs a read (payload plus a fixed share for the
/// envelope), as the embedded log charges it.
pub(crate) fn read_cost(message: &StoredMessage) -> usize {
    const MESSAGE_COST: usize = 192;
    message.data.len()
        + message
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + MESSAGE_COST
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: NewMessage, ns: i64) -> StoredMessage {
        let record = encode(&message, ns);
        decode(RecordAndOffset { record, offset: 7 }).unwrap()
    }

    #[test]
    fn the_value_is_the_originals_json() {
        let m = NewMessage {
            attributes: vec![("b".into(), "<2>".into()), ("a".into(), "1".into())],
            data: "aGVsbG8=".into(),
        };
        let record = encode(&m, 1_552_000_000_123_456_789);
        assert_eq!(
            String::from_utf8(record.value.unwrap()).unwrap(),
            r#"{"attributes":{"a":"1","b":"\u003c2\u003e"},"data":"aGVsbG8=","publishTime":"2019-03-07T23:06:40.123456789Z"}"#
        );
        assert_eq!(record.timestamp.timestamp_millis(), 1_552_000_000_123);
        let plain = encode(
            &NewMessage {
                attributes: vec![],
                data: String::new(),
            },
            1_000_000_000,
        );
        assert_eq!(
            plain.value.unwrap(),
            br#"{"data":"","publishTime":"1970-01-01T00:00:01Z"}"#
        );
    }

    #[test]
    fn decoding_keeps_everything() {
        let m = NewMessage {
            attributes: vec![("a".into(), "1".into())],
            data: "x".into(),
        };
        let got = round_trip(m.clone(), 1_552_000_000_000_000_001);
        assert_eq!(got.offset, 7);
        assert_eq!(got.publish_time_ns, 1_552_000_000_000_000_001);
        assert_eq!(got.attributes, m.attributes);
        assert_eq!(got.data, "x");
    }

    #[test]
    fn records_of_the_original_are_read() {
        // What argo-messaging writes: a messageId guess, which the offset overrides.
        let value = br#"{"messageId":"3","attributes":{"k":"v"},"data":"ZGF0YQ==","publishTime":"2020-01-02T03:04:05.06Z"}"#;
        let record = Record {
            key: None,
            value: Some(value.to_vec()),
            headers: BTreeMap::new(),
            timestamp: DateTime::<Utc>::from_timestamp_nanos(0),
        };
        let got = decode(RecordAndOffset { record, offset: 42 }).unwrap();
        assert_eq!(got.offset, 42);
        assert_eq!(got.data, "ZGF0YQ==");
        assert_eq!(got.attributes, vec![("k".to_owned(), "v".to_owned())]);
        assert_eq!(
            Timestamp::from_nanos(got.publish_time_ns).to_rfc3339_nanos(),
            "2020-01-02T03:04:05.06Z"
        );
    }

    #[test]
    fn a_foreign_record_is_an_error_not_a_panic() {
        let record = Record {
            key: None,
            value: Some(b"not json".to_vec()),
            headers: BTreeMap::new(),
            timestamp: DateTime::<Utc>::from_timestamp_nanos(0),
        };
        assert!(decode(RecordAndOffset { record, offset: 1 }).is_err());
    }
}
