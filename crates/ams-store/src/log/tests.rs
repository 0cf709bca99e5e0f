//! Tests of [`SegmentLog`].

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ams_core::storage::{LogBounds, LogRef, MessageLog, NewMessage, StoredMessage};
use uuid::Uuid;

use super::writer::{RUNWAY_GROUP_MAX, RUNWAY_LOW};
use super::{Durability, LogOptions, Retention, SegmentLog};

fn lref() -> LogRef {
    LogRef {
        id: Uuid::new_v4(),
        project: Uuid::new_v4(),
        topic: "t".into(),
    }
}

fn msg(data: &str) -> NewMessage {
    NewMessage {
        attributes: Vec::new(),
        data: data.into(),
    }
}

fn msg_attrs(data: &str, attrs: &[(&str, &str)]) -> NewMessage {
    NewMessage {
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        data: data.into(),
    }
}

fn opts(durability: Durability, segment_bytes: u64) -> LogOptions {
    LogOptions {
        durability,
        segment_bytes,
        retention: Retention::default(),
    }
}

fn open(dir: &Path, o: LogOptions) -> Arc<SegmentLog> {
    SegmentLog::open(dir, o).unwrap()
}

async fn read_all(log: &SegmentLog, r: &LogRef) -> Vec<StoredMessage> {
    log.read(r, 0, usize::MAX, usize::MAX).await.unwrap()
}

fn segment_files(dir: &Path, r: &LogRef, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join(r.id.to_string()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Where the batches in a segment file end (a zero-filled runway may follow).
fn data_end(path: &Path) -> u64 {
    let bytes = fs::read(path).unwrap();
    let mut pos = 0usize;
    while let Ok(h) = super::batch::parse_header(&bytes[pos..]) {
        pos += h.len as usize;
    }
    pos as u64
}

/// Appends `n` single-message batches `m0..` with times `t0 + i ms`.
async fn fill(log: &SegmentLog, r: &LogRef, n: usize, t0: i64) {
    for i in 0..n {
        let a = log
            .append(r, vec![msg(&format!("m{i}"))], t0 + i as i64 * 1_000_000)
            .await
            .unwrap();
        assert_eq!(a.first_offset, i as u64);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_with_attributes_and_empty_data() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), LogOptions::default());
    let r = lref();
    assert_eq!(log.bounds(&r).await.unwrap(), LogBounds { min: 0, max: 0 });
    assert!(read_all(&log, &r).await.is_empty());

    let a = log
        .append(
            &r,
            vec![msg_attrs("aGVsbG8=", &[("a", "1"), ("b", "ü")]), msg("")],
            1_000,
        )
        .await
        .unwrap();
    assert_eq!((a.first_offset, a.publish_time_ns), (0, 1_000));
    let b = log.append(&r, vec![msg("x")], 2_000).await.unwrap();
    assert_eq!((b.first_offset, b.publish_time_ns), (2, 2_000));
    // Publish times never go back.
    let c = log.append(&r, vec![msg("y")], 500).await.unwrap();
    assert_eq!((c.first_offset, c.publish_time_ns), (3, 2_000));
    // An empty append assigns nothing.
    let e = log.append(&r, vec![], 3_000).await.unwrap();
    assert_eq!(e.first_offset, 4);
    assert_eq!(log.bounds(&r).await.unwrap(), LogBounds { min: 0, max: 4 });

    let all = read_all(&log, &r).await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].offset, 0);
    assert_eq!(
        all[0].attributes,
        vec![("a".into(), "1".into()), ("b".into(), "ü".into())]
    );
    assert_eq!(all[0].data, "aGVsbG8=");
    assert_eq!((all[1].offset, all[1].data.as_str()), (1, ""));
    assert_eq!(all[1].publish_time_ns, 1_000);
    assert_eq!(all[3].publish_time_ns, 2_000);
    let from2 = log.read(&r, 2, 10, usize::MAX).await.unwrap();
    assert_eq!(from2.iter().map(|m| m.offset).collect::<Vec<_>>(), [2, 3]);
    assert!(log.read(&r, 4, 10, usize::MAX).await.unwrap().is_empty());
    assert!(log.read(&r, 0, 0, usize::MAX).await.unwrap().is_empty());
    // The directory exists only after the first append.
    assert_eq!(ids(&log).await, vec![r.id]);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_caps() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), opts(Durability::Write, 64 << 20));
    let r = lref();
    let big = "x".repeat(100);
    for _ in 0..10 {
        log.append(&r, vec![msg(&big), msg(&big)], 1).await.unwrap();
    }
    assert_eq!(log.read(&r, 0, 3, usize::MAX).await.unwrap().len(), 3);
    // Bytes: at least one message, then about max_bytes.
    let one = log.read(&r, 5, 100, 1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].offset, 5);
    // Each message costs its 100 payload bytes plus the fixed per-message cost.
    let cost = 100 + super::reader::MESSAGE_COST;
    let some = log.read(&r, 0, 100, 3 * cost + cost / 2).await.unwrap();
    assert_eq!(some.len(), 3);
    let all = log.read(&r, 0, 100, 20 * cost).await.unwrap();
    assert_eq!(all.len(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn small_reads_inside_large_batches_come_from_the_batch_cache_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), LogOptions::default());
    let (a, b) = (lref(), lref());
    // Two logs with large batches at the same positions: the cache must keep them apart.
    for (r, tag) in [(&a, "a"), (&b, "b")] {
        for batch in 0..2 {
            let msgs = (0..100)
                .map(|i| {
                    msg_attrs(
                        &format!("{tag}{}-{}", batch * 100 + i, "x".repeat(1000)),
                        &[("i", tag)],
                    )
                })
                .collect();
            log.append(r, msgs, 1_000_000 * (batch + 1)).await.unwrap();
        }
    }
    let whole_a = read_all(&log, &a).await;
    assert_eq!(whole_a.len(), 200);
    for from in 0..200u64 {
        let one = log.read(&a, from, 1, usize::MAX).await.unwrap();
        assert_eq!(one, whole_a[from as usize..from as usize + 1], "at {from}");
        let two = log.read(&b, from, 2, usize::MAX).await.unwrap();
        assert_eq!(two[0].offset, from);
        assert!(two[0].data.starts_with(&format!("b{from}-")));
        assert_eq!(two[0].attributes, [("i".to_string(), "b".to_string())]);
        assert_eq!(two.len(), if from == 199 { 1 } else { 2 });
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_across_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), opts(Durability::Fsync, 300));
    let r = lref();
    let mut expected = Vec::new();
    for i in 0..60 {
        let batch: Vec<NewMessage> = (0..(i % 3 + 1))
            .map(|k| msg(&format!("{i}-{k}-{}", "p".repeat(i * 3))))
            .collect();
        let a = log.append(&r, batch.clone(), i as i64).await.unwrap();
        assert_eq!(a.first_offset, expected.len() as u64);
        expected.extend(batch.into_iter().map(|m| m.data));
    }
    assert!(segment_files(tmp.path(), &r, "log").len() > 5);
    let all = read_all(&log, &r).await;
    assert_eq!(
        all.iter().map(|m| m.data.clone()).collect::<Vec<_>>(),
        expected
    );
    for from in 0..expected.len() {
        let got = log.read(&r, from as u64, 7, usize::MAX).await.unwrap();
        let want = &expected[from..(from + 7).min(expected.len())];
        assert_eq!(got.len(), want.len(), "from {from}");
        for (k, m) in got.iter().enumerate() {
            assert_eq!(m.offset, (from + k) as u64);
            assert_eq!(&m.data, &want[k]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appends_are_dense_and_contiguous() {
    concurrent_appends(Durability::Fsync, 16 << 10).await;
}

/// In tier write, small appends commit through the parked writer while
/// large ones start the writer task, which parks the writer again once
/// drained: the two paths interleave here.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appends_are_dense_and_contiguous_in_tier_write() {
    concurrent_appends(Durability::Write, 4 << 20).await;
}

/// The data of message `k` of caller `t`'s `j`th append: every seventh
/// append is larger than a commit on the spot takes.
fn concurrent_data(t: usize, j: usize, k: usize) -> String {
    let mut data = format!("{t}/{j}/{k}");
    if (t + j).is_multiple_of(7) {
        data.push_str(&"x".repeat(300 << 10));
    }
    data
}

async fn concurrent_appends(durability: Durability, segment_bytes: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), opts(durability, segment_bytes));
    let r = lref();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let log = log.clone();
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for j in 0..20 {
                let n = 1 + (t + j) % 3;
                let batch: Vec<NewMessage> =
                    (0..n).map(|k| msg(&concurrent_data(t, j, k))).collect();
                let a = log.append(&r, batch, 0).await.unwrap();
                out.push((j, n, a.first_offset));
            }
            (t, out)
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut results = Vec::new();
    for task in tasks {
        let (t, out) = task.await.unwrap();
        let mut prev = None;
        for &(j, n, first) in &out {
            assert!(
                prev.is_none_or(|p| p < first),
                "a caller's appends are ordered"
            );
            prev = Some(first);
            for k in 0..n {
                assert!(
                    seen.insert(first + k as u64),
                    "offset {} shared",
                    first + k as u64
                );
            }
            total += n as u64;
            results.push((t, j, n, first));
        }
    }
    assert_eq!(seen.len() as u64, total);
    assert!((0..total).all(|o| seen.contains(&o)), "offsets are dense");
    assert_eq!(log.bounds(&r).await.unwrap().max, total);
    let all = read_all(&log, &r).await;
    assert_eq!(all.len() as u64, total);
    for (t, j, n, first) in results {
        for k in 0..n {
            assert_eq!(
                all[(first + k as u64) as usize].data,
                concurrent_data(t, j, k)
            );
        }
    }
}

/// Whether the log's writer is parked (no writer task), or `None` while the
/// log has no handle or an append holds its slot.
fn parked(log: &SegmentLog, r: &LogRef) -> Option<bool> {
    let h = log.handle(r.id)?;
    let slot = h.slot.try_lock().ok()?;
    Some(matches!(*slot, super::Slot::Idle(_)))
}

/// Whether the log's writer is parked; no append may be under way.
fn writer_parked(log: &SegmentLog, r: &LogRef) -> bool {
    parked(log, r).expect("the log has a handle and no append is under way")
}

/// Yields until the writer task parked the writer (it does so once its
/// queue drained, just after answering).
async fn until_parked(log: &SegmentLog, r: &LogRef) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while parked(log, r) != Some(true) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the writer task parks the writer once drained");
}

/// Polls an append once: it must be done.
fn appended_at_first_poll(
    append: impl std::future::Future<
        Output = ams_core::storage::StoreResult<ams_core::storage::Appended>,
    >,
) -> ams_core::storage::Appended {
    let mut append = std::pin::pin!(append);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match append.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(done) => done.unwrap(),
        std::task::Poll::Pending => panic!("the append waited for something"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn tier_write_commits_small_appends_without_a_task_and_parks_after_large_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), opts(Durability::Write, 64 << 20));
    let r = lref();
    // The first append creates the segment: the writer task does that.
    assert_eq!(
        log.append(&r, vec![msg("a")], 1)
            .await
            .unwrap()
            .first_offset,
        0
    );
    until_parked(&log, &r).await;
    // Small appends commit on the spot: done at their first poll, with no
    // task to wait for, and the writer stays parked.
    for i in 1..=3u64 {
        let a = appended_at_first_poll(log.append(&r, vec![msg(&format!("s{i}"))], 1));
        assert_eq!(a.first_offset, i);
        assert!(writer_parked(&log, &r), "append {i} started a task");
    }
    // A large one goes through the task (and a blocking thread), which
    // parks the writer again.
    let big = "y".repeat(300 << 10);
    assert_eq!(
        log.append(&r, vec![msg(&big)], 1)
            .await
            .unwrap()
            .first_offset,
        4
    );
    until_parked(&log, &r).await;
    let after = appended_at_first_poll(log.append(&r, vec![msg("after")], 1));
    assert_eq!(after.first_offset, 5);
    assert!(writer_parked(&log, &r));
    let all: Vec<String> = read_all(&log, &r)
        .await
        .into_iter()
        .map(|m| m.data)
        .collect();
    assert_eq!(all, ["a", "s1", "s2", "s3", big.as_str(), "after"]);
    // What was committed on the spot is on disk like the rest.
    log.close().await;
    drop(log);
    let log = open(tmp.path(), opts(Durability::Write, 64 << 20));
    assert_eq!(read_all(&log, &r).await.len(), 6);
    assert_eq!(log.bounds(&r).await.unwrap().max, 6);
}

#[tokio::test(flavor = "current_thread")]
async fn tier_fsync_keeps_its_writer_task() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), opts(Durability::Fsync, 64 << 20));
    let r = lref();
    for i in 0..3u64 {
        let a = log.append(&r, vec![msg("m")], 1).await.unwrap();
        assert_eq!(a.first_offset, i);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!writer_parked(&log, &r), "the fsync tier's task stays");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_reads_back_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let r = lref();
    let r2 = lref();
    let (before, bounds) = {
        let log = open(tmp.path(), opts(Durability::Fsync, 2000));
        for i in 0..200 {
            let data = format!("{i}{}", "d".repeat(i % 50));
            log.append(
                &r,
                vec![msg_attrs(&data, &[("i", &i.to_string())])],
                i as i64 * 7,
            )
            .await
            .unwrap();
        }
        log.append(&r2, vec![msg("other")], 5).await.unwrap();
        let before = read_all(&log, &r).await;
        let bounds = log.bounds(&r).await.unwrap();
        log.close().await;
        (before, bounds)
    };
    assert!(segment_files(tmp.path(), &r, "log").len() > 3);
    let log = open(tmp.path(), opts(Durability::Fsync, 2000));
    assert_eq!(log.bounds(&r).await.unwrap(), bounds);
    assert_eq!(read_all(&log, &r).await, before);
    assert_eq!(read_all(&log, &r2).await[0].data, "other");
    let mut listed = ids(&log).await;
    listed.sort();
    let mut want = vec![r.id, r2.id];
    want.sort();
    assert_eq!(listed, want);
    let a = log.append(&r, vec![msg("next")], 0).await.unwrap();
    assert_eq!(a.first_offset, 200);
    assert_eq!(a.publish_time_ns, 199 * 7, "publish time stays monotonic");
    assert_eq!(log.offset_at_time(&r, 0).await.unwrap(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_without_tail_index_or_with_broken_sealed_index() {
    let tmp = tempfile::tempdir().unwrap();
    let r = lref();
    let o = opts(Durability::Write, 4000);
    let before = {
        let log = open(tmp.path(), o);
        fill(&log, &r, 300, 1_000_000_000).await;
        read_all(&log, &r).await
    };
    let idx = segment_files(tmp.path(), &r, "idx");
    let tix = segment_files(tmp.path(), &r, "tix");
    assert!(idx.len() >= 3);
    // Tail index lost, a sealed .tix missing, a sealed .idx truncated.
    fs::remove_file(idx.last().unwrap()).unwrap();
    fs::remove_file(&tix[0]).unwrap();
    let f = OpenOptions::new().write(true).open(&idx[1]).unwrap();
    f.set_len(f.metadata().unwrap().len() - 3).unwrap();
    let log = open(tmp.path(), o);
    assert_eq!(read_all(&log, &r).await, before);
    for (i, m) in before.iter().enumerate().step_by(17) {
        let got = log.read(&r, i as u64, 1, usize::MAX).await.unwrap();
        assert_eq!(&got[0], m);
        let t = m.publish_time_ns / 1_000_000;
        assert_eq!(log.offset_at_time(&r, t).await.unwrap(), Some(i as u64));
    }
    assert_eq!(
        log.append(&r, vec![msg("z")], 0)
            .await
            .unwrap()
            .first_offset,
        300
    );
    // The rebuilt indexes are trusted at the next start.
    drop(log);
    let log = open(tmp.path(), o);
    assert_eq!(read_all(&log, &r).await.len(), 301);
}

/// Damage applied to the last batch on disk.
#[derive(Clone, Copy, Debug)]
enum Damage {
    Garbage,
    Truncate,
    FlipByte,
    ZeroTail,
}

async fn torn_tail(damage: Damage) {
    let tmp = tempfile::tempdir().unwrap();
    let r = lref();
    let o = opts(Durability::Fsync, 64 << 20);
    let last_len;
    {
        let log = open(tmp.path(), o);
        fill(&log, &r, 50, 1_000).await;
        let before = log.bounds(&r).await.unwrap();
        log.append(&r, vec![msg("last one"), msg("last two")], 2_000_000_000)
            .await
            .unwrap();
        last_len = 32 + 2 * 8 + 16;
        assert_eq!(log.bounds(&r).await.unwrap().max, before.max + 2);
    }
    let path = segment_files(tmp.path(), &r, "log").pop().unwrap();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // Tier fsync keeps a zero-filled runway past the data: damage the data.
    let len = data_end(&path);
    assert!(
        f.metadata().unwrap().len() > len,
        "a runway follows the data"
    );
    let survivors = match damage {
        Damage::Garbage => {
            f.write_all_at(&[0xA7, 1, 0, 0, 9, 9, 9, 9, 1, 2, 3], len)
                .unwrap();
            52
        }
        Damage::Truncate => {
            f.set_len(len - 5).unwrap();
            50
        }
        Damage::FlipByte => {
            let at = len - last_len as u64 / 2;
            let mut b = [0u8];
            f.read_exact_at(&mut b, at).unwrap();
            f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
            50
        }
        Damage::ZeroTail => {
            // A crash after the size grew but before the data landed: zeros
            // past the end of the file (the runway's are there already).
            let file_len = f.metadata().unwrap().len();
            f.write_all_at(&vec![0; 4096], file_len).unwrap();
            52
        }
    };
    drop(f);
    let log = open(tmp.path(), o);
    let all = read_all(&log, &r).await;
    assert_eq!(all.len(), survivors, "{damage:?}");
    assert!(all.iter().enumerate().all(|(i, m)| m.offset == i as u64));
    assert_eq!(log.bounds(&r).await.unwrap().max, survivors as u64);
    let a = log.append(&r, vec![msg("after")], 0).await.unwrap();
    assert_eq!(a.first_offset, survivors as u64);
    let all = read_all(&log, &r).await;
    assert_eq!(all.last().unwrap().data, "after");
    assert_eq!(all.len(), survivors + 1);
    // And again after another restart.
    drop(log);
    let log = open(tmp.path(), o);
    assert_eq!(read_all(&log, &r).await, all);
}

#[tokio::test(flavor = "multi_thread")]
async fn torn_tail_garbage() {
    torn_tail(Damage::Garbage).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn torn_tail_truncated() {
    torn_tail(Damage::Truncate).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn torn_tail_flipped_byte() {
    torn_tail(Damage::FlipByte).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn torn_tail_zeroes() {
    torn_tail(Damage::ZeroTail).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_sealed_segment_fails_the_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let r = lref();
    let o = opts(Durability::Write, 1000);
    {
        let log = open(tmp.path(), o);
        fill(&log, &r, 100, 0).await;
    }
    let first = segment_files(tmp.path(), &r, "log").remove(0);
    let f = OpenOptions::new().write(true).open(&first).unwrap();
    f.write_all_at(b"\xff\xff", 40).unwrap();
    drop(f);
    let log = open(tmp.path(), o);
    assert!(log.read(&r, 0, 10, usize::MAX).await.is_err());
    let tail = log.read(&r, 90, 100, usize::MAX).await.unwrap();
    assert_eq!(tail.len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn offset_at_time() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), opts(Durability::Write, 8 << 10));
    let r = lref();
    assert_eq!(log.offset_at_time(&r, 0).await.unwrap(), None);
    // 400 batches of 3 messages; batch i at (1000 + 2 i) ms plus some ns.
    let big = "b".repeat(40);
    for i in 0..400i64 {
        let t = (1000 + 2 * i) * 1_000_000 + 123;
        log.append(&r, vec![msg(&big), msg(&big), msg(&big)], t)
            .await
            .unwrap();
    }
    assert!(segment_files(tmp.path(), &r, "log").len() > 3);
    assert_eq!(log.offset_at_time(&r, i64::MIN).await.unwrap(), Some(0));
    assert_eq!(log.offset_at_time(&r, 1000).await.unwrap(), Some(0));
    for i in 0..400u64 {
        let exact = 1000 + 2 * i as i64;
        assert_eq!(
            log.offset_at_time(&r, exact).await.unwrap(),
            Some(3 * i),
            "exact {exact}"
        );
        // Between batch i - 1 and batch i.
        assert_eq!(
            log.offset_at_time(&r, exact - 1).await.unwrap(),
            Some(3 * i),
            "between {}",
            exact - 1
        );
    }
    assert_eq!(
        log.offset_at_time(&r, 1000 + 2 * 399 + 1).await.unwrap(),
        None
    );
    assert_eq!(log.offset_at_time(&r, i64::MAX).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_beyond_wakes_and_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), LogOptions::default());
    let r = lref();
    // Timeout on an empty (even nonexistent) log.
    let started = Instant::now();
    let b = log
        .wait_beyond(&r, 0, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(b, LogBounds { min: 0, max: 0 });
    assert!(started.elapsed() >= Duration::from_millis(45));
    // Already beyond: returns at once.
    log.append(&r, vec![msg("a")], 1).await.unwrap();
    let b = log
        .wait_beyond(&r, 0, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(b.max, 1);
    // Woken by an append.
    let waiter = {
        let log = log.clone();
        let r = r.clone();
        tokio::spawn(async move { log.wait_beyond(&r, 1, Duration::from_secs(3600)).await })
    };
    log.append(&r, vec![msg("b")], 2).await.unwrap();
    let b = waiter.await.unwrap().unwrap();
    assert_eq!(b, LogBounds { min: 0, max: 2 });
    // Woken by the first append of a log created by it.
    let r2 = lref();
    let waiter = {
        let log = log.clone();
        let r2 = r2.clone();
        tokio::spawn(async move { log.wait_beyond(&r2, 0, Duration::from_secs(3600)).await })
    };
    log.append(&r2, vec![msg("c")], 2).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap().max, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_by_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(Durability::Write, 1000);
    o.retention.max_bytes = Some(3000);
    let log = open(tmp.path(), o);
    let r = lref();
    fill(&log, &r, 200, 0).await;
    let segs_before = segment_files(tmp.path(), &r, "log").len();
    assert!(segs_before > 4);
    let dropped = log.enforce_retention(0).unwrap();
    assert!(dropped > 0);
    let segs = segment_files(tmp.path(), &r, "log");
    assert_eq!(segs.len(), segs_before - dropped);
    assert!(segment_files(tmp.path(), &r, "idx").len() == segs.len());
    let total: u64 = segs.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    assert!(total <= 3000 + 1000, "kept {total} bytes");
    let b = log.bounds(&r).await.unwrap();
    assert!(b.min > 0 && b.max == 200);
    let first_base: u64 = segs[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(b.min, first_base);
    let got = log.read(&r, 0, 1, usize::MAX).await.unwrap();
    assert_eq!(got[0].offset, b.min);
    assert_eq!(got[0].data, format!("m{}", b.min));
    assert_eq!(log.offset_at_time(&r, 0).await.unwrap(), Some(b.min));
    // Idempotent; survives a restart.
    assert_eq!(log.enforce_retention(0).unwrap(), 0);
    drop(log);
    let log = open(tmp.path(), o);
    assert_eq!(log.bounds(&r).await.unwrap(), b);
    assert_eq!(
        log.append(&r, vec![msg("n")], 0)
            .await
            .unwrap()
            .first_offset,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_by_age_never_drops_the_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(Durability::Write, 500);
    o.retention.max_age = Some(Duration::from_secs(60));
    let log = open(tmp.path(), o);
    let r = lref();
    let sec = 1_000_000_000i64;
    // Old messages at t = 1000 s, new ones at t = 2000 s.
    for i in 0..40 {
        log.append(&r, vec![msg(&format!("old{i}"))], 1000 * sec)
            .await
            .unwrap();
    }
    for i in 0..40 {
        log.append(&r, vec![msg(&format!("new{i}"))], 2000 * sec)
            .await
            .unwrap();
    }
    // Nothing is old yet.
    assert_eq!(log.enforce_retention(1000 * sec).unwrap(), 0);
    // The old segments go; the one holding both old and new stays.
    let dropped = log.enforce_retention(2000 * sec).unwrap();
    assert!(dropped > 0);
    let b = log.bounds(&r).await.unwrap();
    assert!(b.min > 0 && b.min <= 40, "{b:?}");
    let first = log.read(&r, 0, 1, usize::MAX).await.unwrap();
    assert_eq!(first[0].offset, b.min);
    // Much later everything but the tail segment goes.
    log.enforce_retention(5000 * sec).unwrap();
    let segs = segment_files(tmp.path(), &r, "log");
    assert_eq!(segs.len(), 1);
    let b = log.bounds(&r).await.unwrap();
    assert_eq!(b.max, 80);
    assert!(b.min < 80);
    assert_eq!(read_all(&log, &r).await.len() as u64, 80 - b.min);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_then_list() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), LogOptions::default());
    let (a, b) = (lref(), lref());
    log.append(&a, vec![msg("a")], 1).await.unwrap();
    log.append(&b, vec![msg("b")], 1).await.unwrap();
    log.delete(&a).await.unwrap();
    log.delete(&a).await.unwrap();
    log.delete(&lref()).await.unwrap();
    assert_eq!(ids(&log).await, vec![b.id]);
    assert_eq!(log.bounds(&a).await.unwrap(), LogBounds::default());
    assert!(read_all(&log, &a).await.is_empty());
    assert_eq!(log.offset_at_time(&a, 0).await.unwrap(), None);
    // A later append (a publish that raced its topic's deletion) is refused
    // instead of recreating an orphaned log.
    assert!(log.append(&a, vec![msg("again")], 1).await.is_err());
    assert_eq!(ids(&log).await, vec![b.id]);
    drop(log);
    let log = open(tmp.path(), LogOptions::default());
    assert_eq!(ids(&log).await, vec![b.id]);
    assert!(read_all(&log, &a).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_racing_a_delete_succeed_before_it_and_fail_after() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), opts(Durability::Write, 64 << 20));
    let r = lref();
    log.append(&r, vec![msg("first")], 1).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let log = log.clone();
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let mut refused = false;
            for j in 0..20 {
                match log.append(&r, vec![msg(&format!("{t}/{j}"))], 1).await {
                    Ok(_) => assert!(!refused, "an append succeeded after one was refused"),
                    Err(_) => refused = true,
                }
            }
        }));
    }
    log.delete(&r).await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    // Nothing survives the delete, and nothing recreated the log.
    assert!(read_all(&log, &r).await.is_empty());
    assert_eq!(log.bounds(&r).await.unwrap(), LogBounds::default());
    assert!(ids(&log).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_index_ahead_of_a_truncated_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let r = lref();
    let o = opts(Durability::Write, 64 << 20);
    {
        let log = open(tmp.path(), o);
        fill(&log, &r, 1000, 0).await;
        // Closing writes every index point (they are written in runs).
        log.close().await;
    }
    // The data loses its second half; the index still names batches there.
    let path = segment_files(tmp.path(), &r, "log").pop().unwrap();
    let len = fs::metadata(&path).unwrap().len();
    let idx_len = fs::metadata(path.with_extension("idx")).unwrap().len();
    assert!(idx_len >= 8 * 5, "several index points");
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let log = open(tmp.path(), o);
    let n = log.bounds(&r).await.unwrap().max;
    assert!(n > 400 && n < 600, "{n}");
    let all = read_all(&log, &r).await;
    assert_eq!(all.len() as u64, n);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, m)| m.data == format!("m{i}"))
    );
    assert!(fs::metadata(path.with_extension("idx")).unwrap().len() < idx_len);
    assert_eq!(
        log.offset_at_time(&r, n as i64 - 1).await.unwrap(),
        Some(n - 1)
    );
    assert_eq!(log.offset_at_time(&r, n as i64).await.unwrap(), None);
    assert_eq!(
        log.append(&r, vec![msg("x")], 0)
            .await
            .unwrap()
            .first_offset,
        n
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_right_after_a_roll_leaves_an_empty_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let r = lref();
    let o = opts(Durability::Fsync, 600);
    {
        let log = open(tmp.path(), o);
        fill(&log, &r, 40, 5_000_000_000).await;
        assert!(segment_files(tmp.path(), &r, "log").len() > 1);
    }
    // The next segment's file exists, nothing was written to it.
    let next = tmp
        .path()
        .join(r.id.to_string())
        .join(format!("{:020}.log", 40));
    fs::File::create(&next).unwrap();
    let log = open(tmp.path(), o);
    assert_eq!(log.bounds(&r).await.unwrap(), LogBounds { min: 0, max: 40 });
    assert_eq!(log.offset_at_time(&r, 5_039).await.unwrap(), Some(39));
    let a = log.append(&r, vec![msg("after")], 0).await.unwrap();
    assert_eq!(a.first_offset, 40);
    assert!(a.publish_time_ns >= 5_000_000_000 + 39_000_000);
    assert!(fs::metadata(&next).unwrap().len() > 0);
    let all = read_all(&log, &r).await;
    assert_eq!(all.len(), 41);
    assert_eq!(all[40].data, "after");
}

/// Group commit under load. Run with `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn group_commit_throughput() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path(), LogOptions::default());
    let r = lref();
    let data = "k".repeat(1024);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (log, r, data) = (log.clone(), r.clone(), data.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..300 {
                log.append(&r, vec![msg(&data)], 0).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    println!(
        "{} fsynced appends in {took:?}: {:.0}/s",
        64 * 300,
        (64 * 300) as f64 / took.as_secs_f64()
    );
    assert_eq!(log.bounds(&r).await.unwrap().max, 64 * 300);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cut_of_the_tail_recovers_the_whole_batches_before_it() {
    let src = tempfile::tempdir().unwrap();
    let r = lref();
    let o = opts(Durability::Write, 64 << 20);
    // (file length after the batch, messages so far)
    let mut ends = vec![(0u64, 0u64)];
    let path;
    {
        let log = open(src.path(), o);
        let mut n = 0u64;
        for i in 0..40usize {
            let batch: Vec<NewMessage> = (0..(i % 4 + 1))
                .map(|k| msg_attrs(&"z".repeat(i * 37 % 300), &[("k", &k.to_string())]))
                .collect();
            n += batch.len() as u64;
            log.append(&r, batch, i as i64).await.unwrap();
            let p = segment_files(src.path(), &r, "log").pop().unwrap();
            ends.push((fs::metadata(&p).unwrap().len(), n));
        }
        path = segment_files(src.path(), &r, "log").pop().unwrap();
    }
    let full = fs::read(&path).unwrap();
    let idx = fs::read(path.with_extension("idx")).unwrap();
    let tix = fs::read(path.with_extension("tix")).unwrap();
    let name = path.file_name().unwrap().to_owned();
    for cut in (0..=full.len()).step_by(23).chain([full.len() - 1]) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(r.id.to_string());
        fs::create_dir(&dir).unwrap();
        let p = dir.join(&name);
        fs::write(&p, &full[..cut]).unwrap();
        fs::write(p.with_extension("idx"), &idx).unwrap();
        fs::write(p.with_extension("tix"), &tix).unwrap();
        let want = ends
            .iter()
            .rev()
            .find(|(end, _)| *end <= cut as u64)
            .unwrap();
        let log = open(tmp.path(), o);
        assert_eq!(log.bounds(&r).await.unwrap().max, want.1, "cut at {cut}");
        assert_eq!(read_all(&log, &r).await.len() as u64, want.1);
        assert_eq!(
            fs::metadata(&p).unwrap().len(),
            want.0,
            "truncated to the last whole batch"
        );
        let a = log.append(&r, vec![msg("next")], 0).await.unwrap();
        assert_eq!(a.first_offset, want.1);
    }
}

/// A million 1 KiB messages (1 GiB on disk): restart time. Run with
/// `cargo test --release -p ams-store --lib log::tests::restart_time -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn restart_time_with_a_million_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let r = lref();
    let o = opts(Durability::Write, 64 << 20);
    let data = "k".repeat(1024);
    {
        let log = open(tmp.path(), o);
        let started = Instant::now();
        for i in 0..1000 {
            let batch: Vec<NewMessage> = (0..1000).map(|_| msg(&data)).collect();
            log.append(&r, batch, i).await.unwrap();
        }
        println!("append: {:?}", started.elapsed());
        log.close().await;
    }
    let started = Instant::now();
    let log = open(tmp.path(), o);
    let took = started.elapsed();
    println!("open: {took:?}");
    assert_eq!(log.bounds(&r).await.unwrap().max, 1_000_000);
    let started = Instant::now();
    let got = log.read(&r, 654_321, 100, usize::MAX).await.unwrap();
    println!("read: {:?}", started.elapsed());
    assert_eq!(got[0].offset, 654_321);
    assert!(took < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn index_points_written_in_runs_survive_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let r = lref();
    let o = opts(Durability::Write, 64 << 20);
    let body = "x".repeat(3000);
    {
        let log = open(tmp.path(), o);
        // ~3 KiB per publish: an index point every other publish, 50 in all.
        for i in 0..100i64 {
            log.append(&r, vec![msg(&format!("{i}{body}"))], i * 1_000_000)
                .await
                .unwrap();
        }
        // Dropped without close: the last run of points is not in the files.
    }
    let path = segment_files(tmp.path(), &r, "log").pop().unwrap();
    let points = |p: &PathBuf| fs::metadata(p.with_extension("idx")).unwrap().len() / 8;
    let before = points(&path);
    assert!(
        before > 0 && before % 32 == 0,
        "{before} points in whole runs"
    );
    let log = open(tmp.path(), o);
    assert!(
        points(&path) > before,
        "recovery rebuilt the missing points"
    );
    assert_eq!(log.bounds(&r).await.unwrap().max, 100);
    for i in [0u64, 37, 99] {
        let m = log.read(&r, i, 1, usize::MAX).await.unwrap();
        assert!(m[0].data.starts_with(&format!("{i}x")));
        assert_eq!(
            log.offset_at_time(&r, i as i64).await.unwrap(),
            Some(i),
            "time lookup of {i}"
        );
    }
}

/// The ids of the logs `log` lists.
async fn ids(log: &SegmentLog) -> Vec<Uuid> {
    log.list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect()
}

/// Tier fsync leaves a runway of zeros after the tail's data; recovery keeps
/// it; reopened (in `reopen`) with a smaller segment size, the next append
/// rolls that tail, and the roll must cut the runway before sealing it.
async fn runway_kept_then_cut(reopen: Durability) {
    let tmp = tempfile::tempdir().unwrap();
    let r = lref();
    let seg = 3u64 << 20;
    let o = opts(Durability::Fsync, seg);
    // Each append is a group small enough to extend the runway.
    let body = |i: usize| format!("{i:05}{}", "x".repeat(RUNWAY_GROUP_MAX / 2));
    let file_len = |p: &Path| fs::metadata(p).unwrap().len();
    {
        let log = open(tmp.path(), o);
        log.append(&r, vec![msg(&body(0))], 0).await.unwrap();
        // The runway is written after the first group's answer, before the
        // writer takes the second group.
        log.append(&r, vec![msg(&body(1))], 1).await.unwrap();
        let tail = segment_files(tmp.path(), &r, "log").pop().unwrap();
        assert!(
            file_len(&tail) >= data_end(&tail) + RUNWAY_LOW,
            "a small group leaves a runway"
        );
        for i in 2..500 {
            log.append(&r, vec![msg(&body(i))], i as i64).await.unwrap();
        }
        log.close().await;
    }
    let logs = segment_files(tmp.path(), &r, "log");
    assert!(logs.len() >= 2, "rolled: {logs:?}");
    let tail = logs.last().unwrap();
    for p in &logs {
        assert!(
            file_len(p) < seg + RUNWAY_GROUP_MAX as u64,
            "the runway stays inside the segment size"
        );
    }
    let (tail_len, tail_end) = (file_len(tail), data_end(tail));
    assert!(tail_len > tail_end);

    let log = open(tmp.path(), o);
    let all = read_all(&log, &r).await;
    assert_eq!(all.len(), 500);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, m)| m.offset == i as u64 && m.data == body(i))
    );
    assert_eq!(file_len(tail), tail_len, "recovery keeps the runway");
    let a = log.append(&r, vec![msg("after")], 0).await.unwrap();
    assert_eq!(a.first_offset, 500);
    log.close().await;
    assert!(
        data_end(tail) > tail_end,
        "the append landed after the data, in the runway"
    );
    assert!(file_len(tail) >= tail_len);
    drop(log);

    let small = opts(reopen, 512 << 10);
    let log = open(tmp.path(), small);
    assert_eq!(read_all(&log, &r).await.last().unwrap().data, "after");
    let a = log.append(&r, vec![msg("rolled")], 0).await.unwrap();
    assert_eq!(a.first_offset, 501);
    log.close().await;
    assert_eq!(
        file_len(tail),
        data_end(tail),
        "the sealed tail lost its runway"
    );
    drop(log);
    let log = open(tmp.path(), small);
    let all = read_all(&log, &r).await;
    assert_eq!(all.len(), 502);
    assert_eq!(all[500].data, "after");
    assert_eq!(all[501].data, "rolled");
}

#[tokio::test(flavor = "multi_thread")]
async fn runway_kept_by_recovery_and_cut_by_a_roll_in_tier_fsync() {
    runway_kept_then_cut(Durability::Fsync).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runway_kept_by_recovery_and_cut_by_a_roll_in_tier_write() {
    runway_kept_then_cut(Durability::Write).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_runway_for_large_groups_or_the_write_tier() {
    for (durability, data) in [
        (Durability::Fsync, "y".repeat(RUNWAY_GROUP_MAX * 2)),
        (Durability::Write, "small".to_string()),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let r = lref();
        let log = open(tmp.path(), opts(durability, 64 << 20));
        for i in 0..3 {
            log.append(&r, vec![msg(&data)], i).await.unwrap();
        }
        let tail = segment_files(tmp.path(), &r, "log").pop().unwrap();
        assert_eq!(
            fs::metadata(&tail).unwrap().len(),
            data_end(&tail),
            "{durability:?}"
        );
    }
}
