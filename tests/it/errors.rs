//! The Kinesis error contract over gRPC, and the record-level semantics of the API: exact
//! round trip of a maximal record, ExplicitHashKey routing, and every shard iterator type.

use std::fmt::Debug;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use braid_client::v1::{self, ShardIteratorType as T};
use braid_client::{Client, ClientError};
use braid_tests::cluster::WAIT;
use braid_tests::verify::{hash_range, seq_cmp};
use braid_tests::Cluster;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const STREAM: &str = "kinesis";
const SHARDS: u32 = 3;
const MIB: usize = 1024 * 1024;
/// 2^128, one past the largest hash key.
const TWO_POW_128: &str = "340282366920938463463374607431768211456";
const HASH_KEY_MAX: &str = "340282366920938463463374607431768211455";

/// Asserts that `r` failed with the Kinesis exception `expected`.
fn expect_error<T: Debug>(what: &str, r: Result<T, ClientError>, expected: &str) {
    match r {
        Err(ClientError::Api(e)) => assert_eq!(
            e.code.kinesis_name(),
            expected,
            "{what}: expected {expected}, got {e}"
        ),
        Err(e) => panic!("{what}: expected {expected}, got {e}"),
        Ok(v) => {
            let mut shown = format!("{v:?}");
            shown.truncate(300);
            panic!("{what}: expected {expected}, but it succeeded: {shown}")
        }
    }
}

fn entry(key: &str, data: &[u8], ehk: &str) -> v1::PutRecordsRequestEntry {
    v1::PutRecordsRequestEntry {
        data: data.to_vec().into(),
        partition_key: key.to_string(),
        explicit_hash_key: ehk.to_string(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Reads `shard` from an iterator of the given kind until a GetRecords answers nothing more.
async fn read_from(
    c: &Client,
    shard: &str,
    kind: T,
    seq: Option<&str>,
    ts: Option<i64>,
) -> Vec<v1::Record> {
    let it = c
        .get_shard_iterator(STREAM, shard, kind, seq.map(String::from), ts)
        .await
        .unwrap_or_else(|e| panic!("GetShardIterator {kind:?} {seq:?} {ts:?} on {shard}: {e}"));
    drain(c, it).await.0
}

/// Follows `iterator` until a GetRecords answers no record and is not behind; returns the
/// records and the last next iterator.
async fn drain(c: &Client, mut iterator: String) -> (Vec<v1::Record>, String) {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "reading did not finish");
        let r = c.get_records(&iterator, 0).await.expect("GetRecords");
        let done = r.records.is_empty() && r.millis_behind_latest == 0;
        out.extend(r.records);
        if done || r.next_shard_iterator.is_empty() {
            return (out, r.next_shard_iterator);
        }
        iterator = r.next_shard_iterator;
    }
}

fn texts(records: &[v1::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect()
}

/// A hash key inside a shard's range (its midpoint).
fn mid(range: (u128, u128)) -> String {
    (range.0 + (range.1 - range.0) / 2).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kinesis_errors_over_grpc() {
    let test_started = Instant::now();
    let cluster = Cluster::start(3).await;
    let c = cluster.client();
    c.create_stream(STREAM, SHARDS).await.expect("CreateStream");
    c.wait_active(STREAM, WAIT).await.expect("stream ACTIVE");
    let shards = c.list_shards(STREAM).await.expect("ListShards");
    assert_eq!(shards.len(), SHARDS as usize);
    let s0 = shards[0].shard_id.clone();

    // --- errors ---
    expect_error(
        "PutRecord to an unknown stream",
        c.put_record("no-such-stream", "k", b"x".to_vec(), None)
            .await,
        "ResourceNotFoundException",
    );
    expect_error(
        "PutRecords to an unknown stream",
        c.put_records("no-such-stream", vec![entry("k", b"x", "")])
            .await,
        "ResourceNotFoundException",
    );
    expect_error(
        "GetShardIterator on an unknown stream",
        c.get_shard_iterator("no-such-stream", &s0, T::TrimHorizon, None, None)
            .await,
        "ResourceNotFoundException",
    );
    expect_error(
        "DescribeStream of an unknown stream",
        c.describe_stream("no-such-stream").await,
        "ResourceNotFoundException",
    );
    expect_error(
        "CreateStream of an existing stream",
        c.create_stream(STREAM, SHARDS).await,
        "ResourceInUseException",
    );
    expect_error(
        "PutRecord with an empty partition key",
        c.put_record(STREAM, "", b"x".to_vec(), None).await,
        "ValidationException",
    );
    expect_error(
        "PutRecord with a 257-character partition key",
        c.put_record(STREAM, &"k".repeat(257), b"x".to_vec(), None)
            .await,
        "ValidationException",
    );
    expect_error(
        "PutRecords with an empty partition key among valid entries",
        c.put_records(STREAM, vec![entry("ok", b"x", ""), entry("", b"y", "")])
            .await,
        "ValidationException",
    );
    expect_error(
        "PutRecords with a 257-character partition key",
        c.put_records(STREAM, vec![entry(&"é".repeat(257), b"x", "")])
            .await,
        "ValidationException",
    );
    expect_error(
        "PutRecord with 1 MiB + 1 byte of data",
        c.put_record(STREAM, "k", vec![7u8; MIB + 1], None).await,
        "ValidationException",
    );
    expect_error(
        "PutRecords with an entry of 1 MiB + 1 byte",
        c.put_records(STREAM, vec![entry("k", &vec![7u8; MIB + 1], "")])
            .await,
        "ValidationException",
    );
    let many: Vec<v1::PutRecordsRequestEntry> = (0..501)
        .map(|i| entry(&format!("k{i}"), b"x", ""))
        .collect();
    expect_error(
        "PutRecords of 501 records",
        c.put_records(STREAM, many).await,
        "ValidationException",
    );
    expect_error(
        "PutRecords of no record",
        c.put_records(STREAM, vec![]).await,
        "ValidationException",
    );
    for bad in [
        TWO_POW_128,
        "2^128",
        "-1",
        "12a",
        "99999999999999999999999999999999999999999",
    ] {
        expect_error(
            &format!("PutRecord with ExplicitHashKey {bad}"),
            c.put_record(STREAM, "k", b"x".to_vec(), Some(bad.to_string()))
                .await,
            "InvalidArgumentException",
        );
        expect_error(
            &format!("PutRecords with ExplicitHashKey {bad}"),
            c.put_records(STREAM, vec![entry("k", b"x", bad)]).await,
            "InvalidArgumentException",
        );
    }
    let it = c
        .get_shard_iterator(STREAM, &s0, T::TrimHorizon, None, None)
        .await
        .expect("GetShardIterator");
    c.get_records(&it, 1)
        .await
        .expect("the untampered iterator works");
    let mut tampered: Vec<char> = it.chars().collect();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    expect_error(
        "GetRecords with a tampered shard iterator",
        c.get_records(&tampered, 1).await,
        "InvalidArgumentException",
    );
    expect_error(
        "GetRecords with a made-up shard iterator",
        c.get_records("not-an-iterator", 1).await,
        "InvalidArgumentException",
    );
    for garbage in ["garbage", "12345", "", "-1"] {
        expect_error(
            &format!("GetShardIterator AT_SEQUENCE_NUMBER {garbage:?}"),
            c.get_shard_iterator(STREAM, &s0, T::AtSequenceNumber, Some(garbage.into()), None)
                .await,
            "InvalidArgumentException",
        );
    }

    // --- boundaries that must be accepted ---
    let r = c
        .put_record(STREAM, &"é".repeat(256), b"longest key".to_vec(), None)
        .await
        .expect("a 256-character (512-byte) partition key is valid");
    assert!(!r.sequence_number.is_empty());
    let full: Vec<v1::PutRecordsRequestEntry> = (0..500)
        .map(|i| entry(&format!("k{i}"), format!("bulk-{i}").as_bytes(), ""))
        .collect();
    let r = c
        .put_records(STREAM, full)
        .await
        .expect("PutRecords of 500 records");
    assert_eq!(r.records.len(), 500);
    assert_eq!(
        r.failed_record_count,
        0,
        "PutRecords of 500 records: {:?}",
        r.records.iter().find(|e| !e.error_code.is_empty())
    );

    // --- a 1 MiB record round-trips exactly ---
    let mut rng = StdRng::seed_from_u64(42);
    let big: Vec<u8> = (0..MIB).map(|_| rng.gen()).collect();
    let put = c
        .put_record(STREAM, "big", big.clone(), None)
        .await
        .expect("PutRecord of exactly 1 MiB");
    let it = c
        .get_shard_iterator(
            STREAM,
            &put.shard_id,
            T::AtSequenceNumber,
            Some(put.sequence_number.clone()),
            None,
        )
        .await
        .expect("GetShardIterator AT_SEQUENCE_NUMBER");
    let got = c.get_records(&it, 1).await.expect("GetRecords");
    assert_eq!(got.records.len(), 1, "GetRecords limit 1 at the big record");
    let rec = &got.records[0];
    assert_eq!(rec.sequence_number, put.sequence_number);
    assert_eq!(rec.partition_key, "big");
    assert_eq!(rec.data.len(), MIB, "length of the 1 MiB record read back");
    assert!(
        rec.data == big,
        "the 1 MiB record came back with other bytes"
    );

    // --- a sequence number of one shard is rejected on another ---
    let other = shards
        .iter()
        .find(|s| s.shard_id != put.shard_id)
        .expect("another shard");
    expect_error(
        "GetShardIterator AT_SEQUENCE_NUMBER with another shard's sequence number",
        c.get_shard_iterator(
            STREAM,
            &other.shard_id,
            T::AtSequenceNumber,
            Some(put.sequence_number.clone()),
            None,
        )
        .await,
        "InvalidArgumentException",
    );

    // --- ExplicitHashKey routes to the shard whose range holds it ---
    let mut routed = Vec::new();
    for s in &shards {
        let (lo, hi) = hash_range(s);
        for ehk in [lo.to_string(), mid((lo, hi)), hi.to_string()] {
            let data = format!("ehk-{ehk}");
            let r = c
                .put_record(
                    STREAM,
                    "same-key-everywhere",
                    data.clone().into_bytes(),
                    Some(ehk.clone()),
                )
                .await
                .unwrap_or_else(|e| panic!("PutRecord with ExplicitHashKey {ehk}: {e}"));
            assert_eq!(
                r.shard_id, s.shard_id,
                "ExplicitHashKey {ehk} went to {} instead of {} ({lo}..={hi})",
                r.shard_id, s.shard_id
            );
            routed.push((r.shard_id, r.sequence_number, data));
        }
    }
    let batch: Vec<v1::PutRecordsRequestEntry> = shards
        .iter()
        .rev()
        .map(|s| {
            let ehk = mid(hash_range(s));
            entry(
                "same-key-everywhere",
                format!("ehk-batch-{ehk}").as_bytes(),
                &ehk,
            )
        })
        .collect();
    let r = c
        .put_records(STREAM, batch)
        .await
        .expect("PutRecords with ExplicitHashKeys");
    for (e, s) in r.records.iter().zip(shards.iter().rev()) {
        assert_eq!(e.error_code, "", "{e:?}");
        assert_eq!(
            e.shard_id, s.shard_id,
            "PutRecords entry with ExplicitHashKey in {}",
            s.shard_id
        );
        routed.push((
            e.shard_id.clone(),
            e.sequence_number.clone(),
            format!("ehk-batch-{}", mid(hash_range(s))),
        ));
    }
    let r = c
        .put_record(STREAM, "k", b"max".to_vec(), Some(HASH_KEY_MAX.into()))
        .await
        .expect("ExplicitHashKey 2^128-1 is valid");
    assert_eq!(r.shard_id, shards.last().expect("shards").shard_id);
    for (shard, seq, data) in &routed {
        let got = read_from(&c, shard, T::AtSequenceNumber, Some(seq), None).await;
        let first = got
            .first()
            .unwrap_or_else(|| panic!("nothing read at {shard} seq {seq}"));
        assert_eq!(first.sequence_number, *seq);
        assert_eq!(
            String::from_utf8_lossy(&first.data),
            *data,
            "record at {shard} seq {seq}"
        );
    }

    // --- iterator types, on one shard addressed by ExplicitHashKey ---
    let s1 = shards[1].shard_id.clone();
    let ehk1 = mid(hash_range(&shards[1]));
    let put1 = |data: String| {
        let c = c.clone();
        let ehk = ehk1.clone();
        async move {
            c.put_record(STREAM, "iter", data.into_bytes(), Some(ehk))
                .await
                .expect("PutRecord")
        }
    };
    for i in 0..3 {
        put1(format!("before-{i}")).await;
    }
    let latest = c
        .get_shard_iterator(STREAM, &s1, T::Latest, None, None)
        .await
        .expect("GetShardIterator LATEST");
    let (seen, latest_next) = drain(&c, latest).await;
    assert!(
        seen.is_empty(),
        "a LATEST iterator taken after the puts returned earlier records: {:?}",
        texts(&seen)
    );
    let mut after_seqs = Vec::new();
    for i in 0..3 {
        after_seqs.push(put1(format!("after-{i}")).await.sequence_number);
    }
    let batch: Vec<v1::PutRecordsRequestEntry> = (0..5)
        .map(|i| entry("iter", format!("batch-{i}").as_bytes(), &ehk1))
        .collect();
    let r = c.put_records(STREAM, batch).await.expect("PutRecords");
    assert_eq!(r.failed_record_count, 0, "{r:?}");
    let batch_seqs: Vec<String> = r
        .records
        .iter()
        .map(|e| e.sequence_number.clone())
        .collect();
    for e in &r.records {
        assert_eq!(e.shard_id, s1);
    }
    let expected_after: Vec<String> = (0..3)
        .map(|i| format!("after-{i}"))
        .chain((0..5).map(|i| format!("batch-{i}")))
        .collect();
    let (seen, _) = drain(&c, latest_next).await;
    assert_eq!(
        texts(&seen),
        expected_after,
        "following the LATEST iterator must return exactly the later records, in order"
    );
    let all_seqs: Vec<&String> = after_seqs.iter().chain(batch_seqs.iter()).collect();
    for w in all_seqs.windows(2) {
        assert_eq!(
            seq_cmp(w[0], w[1]),
            std::cmp::Ordering::Less,
            "acknowledged sequence numbers of later puts must be larger"
        );
    }
    let seqs_read: Vec<&String> = seen.iter().map(|r| &r.sequence_number).collect();
    assert_eq!(
        seqs_read, all_seqs,
        "sequence numbers read differ from the acknowledged ones"
    );

    let got = read_from(&c, &s1, T::AtSequenceNumber, Some(&after_seqs[1]), None).await;
    assert_eq!(
        texts(&got),
        expected_after[1..],
        "AT_SEQUENCE_NUMBER after-1"
    );
    let got = read_from(&c, &s1, T::AfterSequenceNumber, Some(&after_seqs[1]), None).await;
    assert_eq!(
        texts(&got),
        expected_after[2..],
        "AFTER_SEQUENCE_NUMBER after-1"
    );
    let got = read_from(&c, &s1, T::AtSequenceNumber, Some(&batch_seqs[2]), None).await;
    assert_eq!(
        texts(&got),
        expected_after[5..],
        "AT_SEQUENCE_NUMBER batch-2"
    );
    let got = read_from(&c, &s1, T::AfterSequenceNumber, Some(&batch_seqs[2]), None).await;
    assert_eq!(
        texts(&got),
        expected_after[6..],
        "AFTER_SEQUENCE_NUMBER batch-2 (inside one PutRecords entry)"
    );
    let got = read_from(&c, &s1, T::AfterSequenceNumber, Some(&batch_seqs[4]), None).await;
    assert!(
        got.is_empty(),
        "AFTER_SEQUENCE_NUMBER of the last record: {:?}",
        texts(&got)
    );

    // AT_TIMESTAMP: the first record whose arrival time is at or after the timestamp.
    let s2 = shards[2].shard_id.clone();
    let ehk2 = mid(hash_range(&shards[2]));
    let put2 =
        |data: &str| c.put_record(STREAM, "ts", data.as_bytes().to_vec(), Some(ehk2.clone()));
    put2("ts-a").await.expect("PutRecord");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let between = now_ms();
    tokio::time::sleep(Duration::from_millis(30)).await;
    put2("ts-b").await.expect("PutRecord");
    put2("ts-c").await.expect("PutRecord");
    let got = read_from(&c, &s2, T::AtTimestamp, None, Some(between)).await;
    assert_eq!(
        texts(&got),
        ["ts-b", "ts-c"],
        "AT_TIMESTAMP between ts-a and ts-b"
    );
    let everything = read_from(&c, &s2, T::TrimHorizon, None, None).await;
    let arrival_a = everything
        .iter()
        .find(|r| r.data == b"ts-a"[..])
        .expect("ts-a in the shard")
        .approximate_arrival_timestamp_ms;
    for ts in [1, arrival_a, between, arrival_a + 1] {
        let first = everything
            .iter()
            .position(|r| r.approximate_arrival_timestamp_ms >= ts)
            .unwrap_or(everything.len());
        let got = read_from(&c, &s2, T::AtTimestamp, None, Some(ts)).await;
        assert_eq!(
            texts(&got),
            texts(&everything[first..]),
            "AT_TIMESTAMP {ts} must start at the first record that arrived at or after it"
        );
    }
    println!(
        "errors summary: every error case answered its Kinesis exception; {} routed records, \
         iterators checked; test_time={:.1}s",
        routed.len(),
        test_started.elapsed().as_secs_f64()
    );
}
