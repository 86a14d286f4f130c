//! The client against in-process mock Braid servers: failover, producer retries, shard reader.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use braid_client::{v1, Client, ClientError, ClientOptions, Producer, ProducerConfig, ShardReader};
use braid_proto::v1::braid_server::{Braid, BraidServer};
use braid_types::ErrorCode;
use tonic::{Request, Response, Status};

fn api_status(code: ErrorCode, message: &str) -> Status {
    let mut s = Status::failed_precondition(message);
    s.metadata_mut().insert(
        braid_proto::ERROR_METADATA_KEY,
        code.kinesis_name().parse().unwrap(),
    );
    s
}

#[derive(Default)]
struct State {
    /// Stored records: (sequence number, partition key, data).
    records: Vec<(u64, String, Vec<u8>)>,
    /// PutRecords attempts seen per partition key.
    attempts: HashMap<String, u32>,
    put_records_calls: u32,
    /// Iterator requests seen: (type, starting sequence number).
    iterator_requests: Vec<(i32, String)>,
    /// The next GetRecords answers ExpiredIteratorException.
    expire_next: bool,
}

#[derive(Clone, Default)]
struct Mock {
    /// Every call answers ServiceUnavailable.
    down: bool,
    calls: Arc<AtomicU32>,
    state: Arc<Mutex<State>>,
}

impl Mock {
    fn check(&self) -> Result<(), Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down {
            return Err(api_status(ErrorCode::Unavailable, "no leader"));
        }
        Ok(())
    }
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in the mock"))
}

#[tonic::async_trait]
impl Braid for Mock {
    async fn create_stream(
        &self,
        _: Request<v1::CreateStreamRequest>,
    ) -> Result<Response<v1::CreateStreamResponse>, Status> {
        unimplemented()
    }
    async fn delete_stream(
        &self,
        _: Request<v1::DeleteStreamRequest>,
    ) -> Result<Response<v1::DeleteStreamResponse>, Status> {
        unimplemented()
    }
    async fn list_streams(
        &self,
        r: Request<v1::ListStreamsRequest>,
    ) -> Result<Response<v1::ListStreamsResponse>, Status> {
        self.check()?;
        // Three streams, served two per page.
        let all = ["a", "b", "c"];
        let start = r.into_inner().exclusive_start_stream_name;
        let rest: Vec<String> = all
            .iter()
            .filter(|n| **n > start.as_str())
            .map(|n| n.to_string())
            .collect();
        let page: Vec<String> = rest.iter().take(2).cloned().collect();
        Ok(Response::new(v1::ListStreamsResponse {
            has_more_streams: rest.len() > page.len(),
            stream_names: page,
            stream_summaries: vec![],
        }))
    }
    async fn describe_stream(
        &self,
        _: Request<v1::DescribeStreamRequest>,
    ) -> Result<Response<v1::DescribeStreamResponse>, Status> {
        unimplemented()
    }
    async fn describe_stream_summary(
        &self,
        _: Request<v1::DescribeStreamSummaryRequest>,
    ) -> Result<Response<v1::DescribeStreamSummaryResponse>, Status> {
        unimplemented()
    }
    async fn list_shards(
        &self,
        _: Request<v1::ListShardsRequest>,
    ) -> Result<Response<v1::ListShardsResponse>, Status> {
        unimplemented()
    }
    async fn put_record(
        &self,
        _: Request<v1::PutRecordRequest>,
    ) -> Result<Response<v1::PutRecordResponse>, Status> {
        unimplemented()
    }
    async fn put_records(
        &self,
        r: Request<v1::PutRecordsRequest>,
    ) -> Result<Response<v1::PutRecordsResponse>, Status> {
        self.check()?;
        let mut st = self.state.lock().unwrap();
        st.put_records_calls += 1;
        let mut results = Vec::new();
        let mut failed = 0;
        for e in r.into_inner().records {
            let attempt = {
                let a = st.attempts.entry(e.partition_key.clone()).or_default();
                *a += 1;
                *a
            };
            let fail = if e.partition_key.starts_with("bad") {
                Some(ErrorCode::InvalidArgument)
            } else if e.partition_key.starts_with("slow") && attempt < 3 {
                Some(ErrorCode::ProvisionedThroughputExceeded)
            } else {
                None
            };
            match fail {
                Some(code) => {
                    failed += 1;
                    results.push(v1::PutRecordsResultEntry {
                        error_code: code.kinesis_name().to_string(),
                        error_message: "mock failure".into(),
                        ..Default::default()
                    });
                }
                None => {
                    let seq = st.records.len() as u64 + 1;
                    st.records.push((seq, e.partition_key, e.data.to_vec()));
                    results.push(v1::PutRecordsResultEntry {
                        shard_id: "shardId-000000000000".into(),
                        sequence_number: seq.to_string(),
                        ..Default::default()
                    });
                }
            }
        }
        Ok(Response::new(v1::PutRecordsResponse {
            failed_record_count: failed,
            records: results,
        }))
    }
    async fn get_shard_iterator(
        &self,
        r: Request<v1::GetShardIteratorRequest>,
    ) -> Result<Response<v1::GetShardIteratorResponse>, Status> {
        self.check()?;
        let r = r.into_inner();
        let mut st = self.state.lock().unwrap();
        st.iterator_requests
            .push((r.shard_iterator_type, r.starting_sequence_number.clone()));
        let seq: u64 = r.starting_sequence_number.parse().unwrap_or(0);
        // The iterator names the index of the next record to read.
        let next = match v1::ShardIteratorType::try_from(r.shard_iterator_type).unwrap() {
            v1::ShardIteratorType::TrimHorizon => 0,
            v1::ShardIteratorType::Latest => st.records.len() as u64,
            v1::ShardIteratorType::AtSequenceNumber => seq - 1,
            v1::ShardIteratorType::AfterSequenceNumber => seq,
            _ => return Err(api_status(ErrorCode::InvalidArgument, "unsupported")),
        };
        Ok(Response::new(v1::GetShardIteratorResponse {
            shard_iterator: format!("it-{next}"),
        }))
    }
    async fn get_records(
        &self,
        r: Request<v1::GetRecordsRequest>,
    ) -> Result<Response<v1::GetRecordsResponse>, Status> {
        self.check()?;
        let r = r.into_inner();
        let mut st = self.state.lock().unwrap();
        if st.expire_next {
            st.expire_next = false;
            return Err(api_status(ErrorCode::ExpiredIterator, "Iterator expired"));
        }
        let next: usize = r
            .shard_iterator
            .strip_prefix("it-")
            .unwrap()
            .parse()
            .unwrap();
        let limit = if r.limit == 0 {
            10_000
        } else {
            r.limit as usize
        };
        let records: Vec<v1::Record> = st.records[next.min(st.records.len())..]
            .iter()
            .take(limit)
            .map(|(seq, key, data)| v1::Record {
                sequence_number: seq.to_string(),
                approximate_arrival_timestamp_ms: 0,
                data: data.clone().into(),
                partition_key: key.clone(),
            })
            .collect();
        let behind = (st.records.len() - next.min(st.records.len()) - records.len()) as i64;
        Ok(Response::new(v1::GetRecordsResponse {
            next_shard_iterator: format!("it-{}", next + records.len()),
            records,
            millis_behind_latest: behind,
            child_shards: vec![],
        }))
    }
    async fn increase_stream_retention_period(
        &self,
        _: Request<v1::ChangeRetentionRequest>,
    ) -> Result<Response<v1::ChangeRetentionResponse>, Status> {
        unimplemented()
    }
    async fn decrease_stream_retention_period(
        &self,
        _: Request<v1::ChangeRetentionRequest>,
    ) -> Result<Response<v1::ChangeRetentionResponse>, Status> {
        unimplemented()
    }
    async fn cluster_status(
        &self,
        _: Request<v1::ClusterStatusRequest>,
    ) -> Result<Response<v1::ClusterStatusResponse>, Status> {
        self.check()?;
        Ok(Response::new(v1::ClusterStatusResponse {
            cluster_id: "mock".into(),
            ..Default::default()
        }))
    }
}

async fn serve(mock: Mock) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(BraidServer::new(mock))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

fn options() -> ClientOptions {
    ClientOptions {
        retries: 5,
        retry_backoff_ms: 1,
        timeout_ms: 5_000,
        // The mock answers no DescribeStream.
        route_to_leaders: false,
    }
}

#[tokio::test]
async fn fails_over_to_a_healthy_endpoint_and_paginates() {
    let down = Mock {
        down: true,
        ..Default::default()
    };
    let up = Mock::default();
    let down_addr = serve(down.clone()).await;
    let up_addr = serve(up.clone()).await;
    let client = Client::new(
        &[down_addr.to_string(), format!("http://{up_addr}")],
        options(),
    )
    .unwrap();
    assert_eq!(client.list_streams().await.unwrap(), ["a", "b", "c"]);
    assert_eq!(down.calls.load(Ordering::SeqCst), 1);
    assert_eq!(up.calls.load(Ordering::SeqCst), 2); // two pages
                                                    // The healthy endpoint stays preferred.
    client.cluster_status().await.unwrap();
    assert_eq!(down.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retries_are_bounded_and_non_retryable_errors_return_at_once() {
    let down = Mock {
        down: true,
        ..Default::default()
    };
    let addr = serve(down.clone()).await;
    let client = Client::new(&[addr.to_string()], options()).unwrap();
    let err = client.cluster_status().await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Unavailable));
    assert_eq!(down.calls.load(Ordering::SeqCst), 6);

    let up = Mock::default();
    let addr = serve(up.clone()).await;
    let client = Client::new(&[addr.to_string()], options()).unwrap();
    let err = client.create_stream("s", 1).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotImplemented));
}

#[tokio::test]
async fn producer_retries_retryable_entries_and_reports_the_others() {
    let mock = Mock::default();
    let addr = serve(mock.clone()).await;
    let client = Client::new(&[addr.to_string()], options()).unwrap();
    let config = ProducerConfig {
        batch_records_max: 100,
        linger_ms: 2,
        in_flight_batches_max: 4,
        ..Default::default()
    };
    let producer = Arc::new(Producer::new(client, "s", config));

    let mut tasks = Vec::new();
    for i in 0..1_000 {
        let key = match i % 10 {
            0 => format!("slow-{i}"),
            7 if i < 100 => format!("bad-{i}"),
            _ => format!("ok-{i}"),
        };
        let p = producer.clone();
        tasks.push(tokio::spawn(async move {
            (key.clone(), p.send(key, vec![1; 10]).await)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (key, result) = t.await.unwrap();
        if key.starts_with("bad") {
            assert_eq!(result.unwrap_err().code(), Some(ErrorCode::InvalidArgument));
        } else {
            let outcome = result.unwrap();
            assert_eq!(outcome.shard_id, "shardId-000000000000");
            ok += 1;
        }
    }
    producer.close().await;
    assert_eq!(ok, 990);
    {
        let st = mock.state.lock().unwrap();
        assert_eq!(
            st.records.len(),
            990,
            "every good record stored exactly once"
        );
        assert_eq!(st.attempts["slow-0"], 3);
        assert_eq!(st.attempts["bad-7"], 1);
        assert_eq!(st.attempts["ok-1"], 1);
        assert!(st.put_records_calls >= 10);
    }
    assert!(matches!(
        producer.send("k".into(), vec![]).await,
        Err(ClientError::Api(_))
    ));
}

#[tokio::test]
async fn producer_flush_and_batches_respect_the_record_limit() {
    let mock = Mock::default();
    let addr = serve(mock.clone()).await;
    let client = Client::new(&[addr.to_string()], options()).unwrap();
    // A long linger: only a full batch or a flush sends anything.
    let config = ProducerConfig {
        batch_records_max: 50,
        linger_ms: 60_000,
        ..Default::default()
    };
    let producer = Producer::new(client, "s", config);
    let mut tickets = Vec::new();
    for i in 0..120 {
        tickets.push(
            producer
                .submit(format!("ok-{i}"), vec![0; 3])
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        mock.state.lock().unwrap().records.len(),
        100,
        "two full batches went out, 20 linger"
    );
    tokio::time::timeout(Duration::from_secs(5), producer.flush())
        .await
        .expect("flush returns");
    assert_eq!(mock.state.lock().unwrap().records.len(), 120);
    for t in tickets {
        t.await.unwrap();
    }
    assert_eq!(mock.state.lock().unwrap().put_records_calls, 3);
}

#[tokio::test]
async fn shard_reader_follows_iterators_and_renews_expired_ones() {
    let mock = Mock::default();
    let addr = serve(mock.clone()).await;
    let client = Client::new(&[addr.to_string()], options()).unwrap();
    let entries: Vec<v1::PutRecordsRequestEntry> = (0..25)
        .map(|i| v1::PutRecordsRequestEntry {
            data: vec![i].into(),
            partition_key: format!("ok-{i}"),
            explicit_hash_key: String::new(),
        })
        .collect();
    client.put_records("s", entries).await.unwrap();

    let mut reader = ShardReader::new(
        client.clone(),
        "s",
        "shardId-000000000000",
        v1::ShardIteratorType::TrimHorizon,
        None,
    )
    .await
    .unwrap();
    let first = reader.next_batch(10).await.unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(reader.millis_behind_latest(), 15);
    mock.state.lock().unwrap().expire_next = true;
    let second = reader.next_batch(10).await.unwrap();
    assert_eq!(
        second.first().unwrap().sequence_number,
        "11",
        "resumed after the last record seen"
    );
    let third = reader.next_batch(10).await.unwrap();
    assert_eq!(third.len(), 5);
    assert!(reader.next_batch(10).await.unwrap().is_empty());
    assert!(!reader.is_finished());
    assert_eq!(reader.last_sequence_number(), Some("25"));
    let requests = mock.state.lock().unwrap().iterator_requests.clone();
    assert_eq!(
        requests,
        [
            (v1::ShardIteratorType::TrimHorizon as i32, String::new()),
            (
                v1::ShardIteratorType::AfterSequenceNumber as i32,
                "10".to_string()
            )
        ]
    );

    let mut latest = ShardReader::new(
        client.clone(),
        "s",
        "shardId-000000000000",
        v1::ShardIteratorType::Latest,
        None,
    )
    .await
    .unwrap();
    assert!(latest.next_batch(0).await.unwrap().is_empty());
    client
        .put_records(
            "s",
            vec![v1::PutRecordsRequestEntry {
                data: b"new".to_vec().into(),
                partition_key: "ok-x".into(),
                explicit_hash_key: String::new(),
            }],
        )
        .await
        .unwrap();
    let got = latest.next_batch(0).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].data[..], b"new");
}
