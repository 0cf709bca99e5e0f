//! Property test: the pull / acknowledge / offset state machine of the domain,
//! run over the embedded store with a manual clock, against a simple model of
//! contract §6 written independently of `Cursor`.

use std::sync::Arc;

use ams_core::auth::Route;
use ams_core::{Ams, Error, ManualClock, Settings};
use ams_store::{Durability, EmbeddedMeta, LogOptions, SegmentLog};
use ams_types::{Timestamp, json};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Publish(u8),
    Pull(i8),
    /// Acknowledge the id at this position of a window around the pending range.
    Ack(i8),
    Seek(u8),
    Tick(u8),
    Deadline(u8),
    Offsets,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..4).prop_map(Op::Publish),
        4 => (-1i8..5).prop_map(Op::Pull),
        4 => (-2i8..6).prop_map(Op::Ack),
        1 => (0u8..12).prop_map(Op::Seek),
        2 => (0u8..8).prop_map(Op::Tick),
        1 => (0u8..6).prop_map(Op::Deadline),
        1 => Just(Op::Offsets),
    ]
}

/// What a subscriber can observe, modelled directly from the contract text.
#[derive(Debug, Default)]
struct Model {
    published: u64,
    committed: u64,
    /// The latest pull: (first offset, one past the last, second it happened);
    /// `None` when nothing is pending (an empty pull at offset 0 counts as none).
    pending: Option<(u64, u64, i64)>,
    deadline: i64,
    now: i64,
}

#[derive(Debug, PartialEq, Eq)]
enum AckOutcome {
    Ok,
    NoAckPending,
    WrongAck,
    Timeout,
    InvalidId,
}

impl Model {
    fn pull(&mut self, max: i8) -> Vec<u64> {
        let n = u64::try_from(max).unwrap_or(1).max(1);
        let end = (self.committed + n).min(self.published).max(self.committed);
        let start = self.committed;
        self.pending = if end == 0 {
            None
        } else {
            Some((start, end, self.now))
        };
        (start..end).collect()
    }

    fn ack(&mut self, id: i64) -> AckOutcome {
        if id < 0 {
            return AckOutcome::InvalidId;
        }
        let Some((_, end, at)) = self.pending else {
            return AckOutcome::NoAckPending;
        };
        let n = id as u64 + 1;
        if n <= self.committed || n > end {
            return AckOutcome::WrongAck;
        }
        if self.now - at > self.deadline {
            return AckOutcome::Timeout;
        }
        self.committed = n;
        self.pending = None;
        AckOutcome::Ok
    }
}

const START: i64 = 1_700_000_000;

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let meta = EmbeddedMeta::open(&dir.path().join("meta"), Durability::Write).unwrap();
    let log = SegmentLog::open(
        &dir.path().join("logs"),
        LogOptions {
            durability: Durability::Write,
            segment_bytes: 512,
            ..LogOptions::default()
        },
    )
    .unwrap();
    let clock = ManualClock::new(Timestamp::from_secs(START));
    let ams = Ams::new(
        Arc::new(meta),
        log,
        Arc::new(clock.clone()),
        Settings {
            service_token: Some("t".into()),
            ..Settings::default()
        },
    );
    let admin = ams
        .authorize(Route::ProjectsCreate, Some("t"), Some("p"))
        .await
        .unwrap();
    ams.create_project(&admin, "p", json::from_slice(b"{}"))
        .await
        .unwrap();
    let ctx = ams
        .authorize(Route::TopicsCreate, Some("t"), Some("p"))
        .await
        .unwrap();
    ams.create_topic(&ctx, "t", None).await.unwrap();
    ams.create_subscription(
        &ctx,
        "s",
        json::from_slice(br#"{"topic":"projects/p/topics/t"}"#),
    )
    .await
    .unwrap();

    let mut model = Model {
        deadline: 10,
        now: START,
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::Publish(n) => {
                let msgs: Vec<_> = (0..n)
                    .map(|i| format!(r#"{{"data":"m{}"}}"#, model.published + u64::from(i)))
                    .collect();
                let body = format!(r#"{{"messages":[{}]}}"#, msgs.join(","));
                let ids = ams
                    .publish(&ctx, "t", json::from_slice(body.as_bytes()))
                    .await
                    .unwrap();
                let expected: Vec<String> = (model.published..model.published + u64::from(n))
                    .map(|o| o.to_string())
                    .collect();
                assert_eq!(ids.message_ids, expected, "ids are dense");
                model.published += u64::from(n);
            }
            Op::Pull(max) => {
                let body = format!(r#"{{"maxMessages":"{max}"}}"#);
                let got = ams
                    .pull(&ctx, "s", json::from_slice(body.as_bytes()))
                    .await
                    .unwrap();
                let want = model.pull(max);
                let got_ids: Vec<u64> = got
                    .received_messages
                    .iter()
                    .map(|m| m.message.message_id.parse().unwrap())
                    .collect();
                assert_eq!(got_ids, want, "pull delivers from the committed offset");
                for m in &got.received_messages {
                    assert_eq!(m.message.data, format!("m{}", m.message.message_id));
                    assert_eq!(
                        m.ack_id,
                        format!("projects/p/subscriptions/s:{}", m.message.message_id)
                    );
                }
            }
            Op::Ack(pos) => {
                let base = model.pending.map_or(model.committed, |(s, _, _)| s) as i64;
                let id = base + i64::from(pos) - 1;
                let body = format!(r#"{{"ackIds":["projects/p/subscriptions/s:{id}"]}}"#);
                let got = match ams
                    .acknowledge(&ctx, "s", json::from_slice(body.as_bytes()))
                    .await
                {
                    Ok(()) => AckOutcome::Ok,
                    Err(Error::NoAckPending) => AckOutcome::NoAckPending,
                    Err(Error::WrongAck) => AckOutcome::WrongAck,
                    Err(Error::AckTimeout) => AckOutcome::Timeout,
                    Err(Error::InvalidAckId) => AckOutcome::InvalidId,
                    Err(e) => panic!("unexpected {e:?}"),
                };
                assert_eq!(got, model.ack(id), "ack of {id}");
            }
            Op::Seek(to) => {
                let body = format!(r#"{{"offset":{to}}}"#);
                let got = ams
                    .modify_offset(&ctx, "s", json::from_slice(body.as_bytes()))
                    .await;
                if u64::from(to) <= model.published {
                    got.unwrap();
                    model.committed = u64::from(to);
                    model.pending = None;
                } else {
                    assert!(matches!(got, Err(Error::OffsetOutOfBounds)));
                }
            }
            Op::Tick(secs) => {
                clock.advance_secs(i64::from(secs));
                model.now += i64::from(secs);
            }
            Op::Deadline(secs) => {
                let body = format!(r#"{{"ackDeadlineSeconds":{secs}}}"#);
                ams.modify_ack_deadline(&ctx, "s", json::from_slice(body.as_bytes()))
                    .await
                    .unwrap();
                model.deadline = i64::from(secs);
            }
            Op::Offsets => {
                let o = ams.offsets(&ctx, "s").await.unwrap();
                assert_eq!(
                    (o.min, o.max, o.current),
                    (0, model.published as i64, model.committed as i64)
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn domain_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(run(ops));
    }
}
