//! [`Client`]: the public API with retries and endpoint failover.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use braid_proto::v1::{self, braid_client::BraidClient};
use braid_types::{limits, ErrorCode};
use rand::Rng;
use tonic::transport::{Channel, Endpoint};

use crate::error::{status_to_error, ClientError};
use crate::routes::{node_endpoints, RouteCache, StreamRoutes};

/// Longest sleep between two attempts of one call.
const BACKOFF_CAP_MS: u64 = 1_000;
/// Pages followed by one listing call before it gives up (guards against a looping server).
const PAGES_MAX: usize = 10_000;
/// HTTP/2 keep-alive, so that a dead node is noticed on an idle connection.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Retry and timeout settings of a [`Client`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// Retries after the first attempt of a call (so at most `retries + 1` attempts).
    pub retries: u32,
    /// Base backoff between attempts; doubles each attempt, with jitter, capped at 1 s.
    pub retry_backoff_ms: u64,
    /// Deadline of each attempt (connection included).
    pub timeout_ms: u64,
    /// Send each put and shard read straight to its shard's leader, when the leader's node
    /// answers on one of the client's endpoints (see [`Client::put_records`]); otherwise the node
    /// called forwards it, one more hop.
    pub route_to_leaders: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            retries: 10,
            retry_backoff_ms: 50,
            timeout_ms: 10_000,
            route_to_leaders: true,
        }
    }
}

/// A handle on a Braid cluster. Cheap to clone; clones share connections and the preferred
/// endpoint.
///
/// Every call is retried (at most [`ClientOptions::retries`] times) on a transport error
/// (connection refused, timeout, HTTP/2 error) and on an API error whose code
/// [`is_retryable`](ErrorCode::is_retryable) (`ServiceUnavailable`, `InternalFailure`,
/// `ProvisionedThroughputExceededException`). Before each retry the client moves to the next
/// endpoint (round-robin) and sleeps an exponential backoff with jitter. All other API errors
/// are returned at once.
///
/// Retries are at-least-once: a write whose answer was lost (timeout, connection reset) may have
/// been applied, so a retried `PutRecord`/`PutRecords` can store a record twice, exactly as with
/// Kinesis. Likewise a retried `CreateStream` may answer `ResourceInUseException`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: Vec<String>,
    targets: Vec<Endpoint>,
    /// Created on first use, so that [`Client::new`] works outside a Tokio runtime.
    channels: Vec<OnceLock<Channel>>,
    /// Index (modulo the endpoint count) of the preferred endpoint.
    current: AtomicUsize,
    options: ClientOptions,
    /// Which endpoint leads each open shard of the streams written to (a hint).
    routes: RouteCache,
    /// The endpoint each node answers on, from ClusterStatus, and when it was asked; asked
    /// again only when a leader's node is missing from it, at most every
    /// `CLIENT_NODES_REFRESH_MS`.
    nodes: Mutex<(Option<Instant>, NodeEndpoints)>,
}

/// Node id → index of the client endpoint that node answers on.
type NodeEndpoints = Arc<HashMap<u64, usize>>;

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.endpoints)
            .field("options", &self.inner.options)
            .finish()
    }
}

/// Turns `127.0.0.1:7401` or `http://127.0.0.1:7401/` into `http://127.0.0.1:7401`.
pub fn normalize_endpoint(s: &str) -> Result<String, ClientError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(ClientError::api(
            ErrorCode::InvalidArgument,
            "empty endpoint",
        ));
    }
    let uri = if let Some(rest) = s.strip_prefix("http://") {
        format!("http://{}", rest.trim_end_matches('/'))
    } else if s.contains("://") {
        return Err(ClientError::api(
            ErrorCode::InvalidArgument,
            format!("unsupported endpoint {s}: only plain http:// (h2c) endpoints are supported"),
        ));
    } else {
        format!("http://{}", s.trim_end_matches('/'))
    };
    if uri == "http://" || uri.contains(char::is_whitespace) {
        return Err(ClientError::api(
            ErrorCode::InvalidArgument,
            format!("invalid endpoint {s}"),
        ));
    }
    Ok(uri)
}

/// The sleep before retry number `attempt + 1`: `base * 2^attempt` capped at 1 s, of which the
/// upper half is scaled by `jitter` (in `[0, 1]`).
pub(crate) fn backoff_delay(base_ms: u64, attempt: u32, jitter: f64) -> Duration {
    let full = base_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(BACKOFF_CAP_MS);
    let half = full / 2;
    let jittered = half + ((full - half) as f64 * jitter.clamp(0.0, 1.0)) as u64;
    Duration::from_millis(jittered)
}

pub(crate) fn random_backoff(base_ms: u64, attempt: u32) -> Duration {
    backoff_delay(base_ms, attempt, rand::thread_rng().gen_range(0.0..=1.0))
}

impl Client {
    /// A client for the given endpoints (`host:port` or `http://host:port`). Connections are
    /// opened lazily on first use; gRPC messages of up to 64 MiB are accepted both ways.
    pub fn new(endpoints: &[String], options: ClientOptions) -> Result<Client, ClientError> {
        let endpoints: Vec<String> = endpoints
            .iter()
            .flat_map(|e| e.split(','))
            .filter(|e| !e.trim().is_empty())
            .map(normalize_endpoint)
            .collect::<Result<_, _>>()?;
        if endpoints.is_empty() {
            return Err(ClientError::api(
                ErrorCode::InvalidArgument,
                "no endpoint given",
            ));
        }
        let timeout = Duration::from_millis(options.timeout_ms.max(1));
        let targets = endpoints
            .iter()
            .map(|uri| {
                Endpoint::from_shared(uri.clone())
                    .map(|e| {
                        e.connect_timeout(timeout)
                            .timeout(timeout)
                            .tcp_nodelay(true)
                            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
                            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
                            .max_frame_size(limits::GRPC_FRAME_BYTES_MAX)
                    })
                    .map_err(|e| {
                        ClientError::api(
                            ErrorCode::InvalidArgument,
                            format!("invalid endpoint {uri}: {e}"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let channels = endpoints.iter().map(|_| OnceLock::new()).collect();
        Ok(Client {
            inner: Arc::new(Inner {
                endpoints,
                targets,
                channels,
                current: AtomicUsize::new(0),
                options,
                routes: RouteCache::default(),
                nodes: Mutex::new((None, Arc::new(HashMap::new()))),
            }),
        })
    }

    /// The normalised endpoints, in failover order.
    pub fn endpoints(&self) -> &[String] {
        &self.inner.endpoints
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    fn grpc(&self, idx: usize) -> BraidClient<Channel> {
        let channel = self.inner.channels[idx]
            .get_or_init(|| self.inner.targets[idx].connect_lazy())
            .clone();
        BraidClient::new(channel)
            .max_decoding_message_size(limits::GRPC_MESSAGE_BYTES_MAX)
            .max_encoding_message_size(limits::GRPC_MESSAGE_BYTES_MAX)
    }

    /// Runs one RPC with the retry/failover rule of [`Client`].
    async fn call<Req, Resp, F, Fut>(
        &self,
        op: &'static str,
        req: Req,
        f: F,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(BraidClient<Channel>, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        self.call_at(op, None, req, f).await
    }

    /// [`call`](Self::call) whose first attempt goes to endpoint `first` (the leader of a shard
    /// of `stream`), when given; retries fail over as usual. A failed routed attempt makes the
    /// client forget the stream's routes (its leader may be down) until they are asked again.
    async fn call_at<Req, Resp, F, Fut>(
        &self,
        op: &'static str,
        first: Option<(usize, &str)>,
        req: Req,
        f: F,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(BraidClient<Channel>, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let inner = &self.inner;
        let n = inner.endpoints.len();
        let timeout = Duration::from_millis(inner.options.timeout_ms.max(1));
        let mut attempt = 0u32;
        loop {
            let position = inner.current.load(Ordering::Relaxed);
            let routed = match first {
                Some((i, stream)) if attempt == 0 && i < n => Some((i, stream)),
                _ => None,
            };
            let idx = routed.map_or(position % n, |(i, _)| i);
            let err = match tokio::time::timeout(timeout, f(self.grpc(idx), req.clone())).await {
                Ok(Ok(resp)) => return Ok(resp.into_inner()),
                Ok(Err(status)) => match status_to_error(&status) {
                    ClientError::Transport(m) => {
                        ClientError::Transport(format!("{}: {m}", inner.endpoints[idx]))
                    }
                    api => api,
                },
                Err(_) => ClientError::Transport(format!(
                    "{}: no answer within {} ms",
                    inner.endpoints[idx], inner.options.timeout_ms
                )),
            };
            if let (Some((_, stream)), true) = (routed, err.is_retryable()) {
                inner.routes.forget(stream);
            }
            if !err.is_retryable() || attempt >= inner.options.retries {
                return Err(err);
            }
            // Fail over, unless a concurrent call already moved the preferred endpoint on (or this
            // attempt went to a shard's leader rather than the preferred endpoint).
            if idx == position % n {
                let _ = inner.current.compare_exchange(
                    position,
                    position.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            let delay = random_backoff(inner.options.retry_backoff_ms, attempt);
            tracing::debug!(op, attempt, endpoint = %inner.endpoints[idx], error = %err, ?delay, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    pub async fn create_stream(&self, name: &str, shards: u32) -> Result<(), ClientError> {
        let req = v1::CreateStreamRequest {
            stream_name: name.to_string(),
            shard_count: shards,
        };
        self.call("CreateStream", req, |mut c, r| async move {
            c.create_stream(r).await
        })
        .await?;
        Ok(())
    }

    /// Polls `DescribeStreamSummary` until the stream is `ACTIVE`. A stream that is not (yet)
    /// found is polled again until `timeout`.
    pub async fn wait_active(&self, name: &str, timeout: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(20);
        loop {
            let status = match self.describe_stream_summary(name).await {
                Ok(d) => d.stream_status,
                Err(e) if e.code() == Some(ErrorCode::ResourceNotFound) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    String::from("(not found)")
                }
                Err(e) => return Err(e),
            };
            if status == "ACTIVE" {
                return Ok(());
            }
            if status == "DELETING" {
                return Err(ClientError::api(
                    ErrorCode::ResourceInUse,
                    format!("Stream {name} is being deleted."),
                ));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::api(
                    ErrorCode::Unavailable,
                    format!(
                        "Stream {name} did not become ACTIVE within {timeout:?} (status {status})."
                    ),
                ));
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    pub async fn delete_stream(&self, name: &str) -> Result<(), ClientError> {
        let req = v1::DeleteStreamRequest {
            stream_name: name.to_string(),
            ..Default::default()
        };
        self.call("DeleteStream", req, |mut c, r| async move {
            c.delete_stream(r).await
        })
        .await?;
        Ok(())
    }

    /// All stream names, following `has_more_streams`.
    pub async fn list_streams(&self) -> Result<Vec<String>, ClientError> {
        let mut names = Vec::new();
        let mut req = v1::ListStreamsRequest {
            limit: limits::LIST_STREAMS_PAGE_MAX,
            exclusive_start_stream_name: String::new(),
        };
        for _ in 0..PAGES_MAX {
            let resp = self
                .call("ListStreams", req.clone(), |mut c, r| async move {
                    c.list_streams(r).await
                })
                .await?;
            let last = resp.stream_names.last().cloned();
            names.extend(resp.stream_names);
            match last {
                Some(last) if resp.has_more_streams && last != req.exclusive_start_stream_name => {
                    req.exclusive_start_stream_name = last;
                }
                _ if resp.has_more_streams => return Err(no_progress("ListStreams")),
                _ => return Ok(names),
            }
        }
        Err(no_progress("ListStreams"))
    }

    /// The stream's summary (no shards).
    pub async fn describe_stream_summary(
        &self,
        name: &str,
    ) -> Result<v1::StreamDescription, ClientError> {
        let req = v1::DescribeStreamSummaryRequest {
            stream_name: name.to_string(),
            ..Default::default()
        };
        let resp = self
            .call("DescribeStreamSummary", req, |mut c, r| async move {
                c.describe_stream_summary(r).await
            })
            .await?;
        resp.stream_description_summary
            .ok_or_else(|| malformed("DescribeStreamSummary", "no description"))
    }

    /// The stream with all its shards, following `has_more_shards`.
    pub async fn describe_stream(&self, name: &str) -> Result<v1::StreamDescription, ClientError> {
        let mut req = v1::DescribeStreamRequest {
            stream_name: name.to_string(),
            limit: limits::LIST_SHARDS_PAGE_MAX,
            ..Default::default()
        };
        let mut description: Option<v1::StreamDescription> = None;
        for _ in 0..PAGES_MAX {
            let resp = self
                .call("DescribeStream", req.clone(), |mut c, r| async move {
                    c.describe_stream(r).await
                })
                .await?;
            let page = resp
                .stream_description
                .ok_or_else(|| malformed("DescribeStream", "no description"))?;
            let more = page.has_more_shards;
            let last = page.shards.last().map(|s| s.shard_id.clone());
            match description.as_mut() {
                None => description = Some(page),
                Some(d) => d.shards.extend(page.shards),
            }
            match last {
                Some(last) if more && last != req.exclusive_start_shard_id => {
                    req.exclusive_start_shard_id = last
                }
                _ if more => return Err(no_progress("DescribeStream")),
                _ => {
                    let mut d = description.unwrap_or_default();
                    d.has_more_shards = false;
                    return Ok(d);
                }
            }
        }
        Err(no_progress("DescribeStream"))
    }

    /// All shards of the stream (open and closed), following `next_token`.
    pub async fn list_shards(&self, name: &str) -> Result<Vec<v1::Shard>, ClientError> {
        let mut shards = Vec::new();
        let mut req = v1::ListShardsRequest {
            stream_name: name.to_string(),
            max_results: limits::LIST_SHARDS_PAGE_MAX,
            ..Default::default()
        };
        for _ in 0..PAGES_MAX {
            let resp = self
                .call("ListShards", req.clone(), |mut c, r| async move {
                    c.list_shards(r).await
                })
                .await?;
            shards.extend(resp.shards);
            if resp.next_token.is_empty() {
                return Ok(shards);
            }
            if resp.next_token == req.next_token {
                return Err(no_progress("ListShards"));
            }
            // As in Kinesis, a request with a NextToken names no stream.
            req = v1::ListShardsRequest {
                next_token: resp.next_token,
                max_results: limits::LIST_SHARDS_PAGE_MAX,
                ..Default::default()
            };
        }
        Err(no_progress("ListShards"))
    }

    /// Puts one record, sent to its shard's leader when the client knows it. A retry after a
    /// lost answer may store the record twice (see [`Client`]).
    pub async fn put_record(
        &self,
        stream: &str,
        key: &str,
        data: impl Into<bytes::Bytes>,
        explicit_hash_key: Option<String>,
    ) -> Result<v1::PutRecordResponse, ClientError> {
        let first = self
            .routes(stream)
            .and_then(|r| r.endpoint_of(key, explicit_hash_key.as_deref().unwrap_or("")));
        let req = v1::PutRecordRequest {
            stream_name: stream.to_string(),
            data: data.into(),
            partition_key: key.to_string(),
            explicit_hash_key: explicit_hash_key.unwrap_or_default(),
            ..Default::default()
        };
        let first = first.map(|i| (i, stream));
        self.call_at("PutRecord", first, req, |mut c, r| async move {
            c.put_record(r).await
        })
        .await
    }

    /// Puts a batch of records. Per-record failures are reported in the response entries
    /// (`error_code`), not as an error; the whole call is retried only when it failed as a whole.
    /// A retry after a lost answer may store records twice (see [`Client`]).
    ///
    /// With [`ClientOptions::route_to_leaders`], the records are sent to their shards' leaders: one
    /// `PutRecords` call per leading endpoint, at once, answered as one response in the order of
    /// `entries`. A call that fails as a whole after its retries with a retryable error fails
    /// only its own records (`InternalFailure`, or `ProvisionedThroughputExceededException`), as
    /// a shard's failure does on the server; the error itself is returned when every call failed
    /// or when one failed with an error retrying cannot fix (some records may then be stored, as
    /// after a lost answer). A batch the server would refuse as a whole (too many records or
    /// bytes, a record over 1 MiB, a bad key) is sent unsplit, so that the error is the
    /// server's.
    pub async fn put_records(
        &self,
        stream: &str,
        entries: Vec<v1::PutRecordsRequestEntry>,
    ) -> Result<v1::PutRecordsResponse, ClientError> {
        // Only a batch the server would accept whole is split (checked only when there are
        // routes to split by).
        let within_limits = || {
            (1..=limits::PUT_RECORDS_COUNT_MAX).contains(&entries.len())
                && entries
                    .iter()
                    .all(|e| e.data.len() <= limits::RECORD_DATA_BYTES_MAX)
                && entries
                    .iter()
                    .map(crate::batcher::entry_bytes)
                    .sum::<usize>()
                    <= limits::PUT_RECORDS_BYTES_MAX
        };
        let plan = self
            .routes(stream)
            .filter(|_| within_limits())
            .and_then(|r| {
                entries
                    .iter()
                    .map(|e| r.endpoint_of(&e.partition_key, &e.explicit_hash_key))
                    .collect::<Option<Vec<usize>>>()
            });
        let Some(plan) = plan else {
            return self.put_records_at(stream, None, entries).await;
        };
        let mut groups: Vec<(usize, Vec<usize>, Vec<v1::PutRecordsRequestEntry>)> = Vec::new();
        for (i, (e, idx)) in entries.into_iter().zip(plan).enumerate() {
            match groups.iter_mut().find(|g| g.0 == idx) {
                Some(g) => {
                    g.1.push(i);
                    g.2.push(e);
                }
                None => groups.push((idx, vec![i], vec![e])),
            }
        }
        if groups.len() == 1 {
            let (idx, _, entries) = groups.pop().expect("one group");
            return self.put_records_at(stream, Some(idx), entries).await;
        }
        let n: usize = groups.iter().map(|g| g.1.len()).sum();
        let calls = groups.into_iter().map(|(idx, places, entries)| async move {
            (
                places,
                self.put_records_at(stream, Some(idx), entries).await,
            )
        });
        let results = futures::future::join_all(calls).await;
        merge_put_records(n, results)
    }

    async fn put_records_at(
        &self,
        stream: &str,
        first: Option<usize>,
        entries: Vec<v1::PutRecordsRequestEntry>,
    ) -> Result<v1::PutRecordsResponse, ClientError> {
        let req = v1::PutRecordsRequest {
            stream_name: stream.to_string(),
            records: entries,
            ..Default::default()
        };
        let first = first.map(|i| (i, stream));
        self.call_at("PutRecords", first, req, |mut c, r| async move {
            c.put_records(r).await
        })
        .await
    }

    /// The stream's routes as known now (none with [`ClientOptions::route_to_leaders`] off).
    /// Starts a background refresh when they are due one; never waits for it.
    fn routes(&self, stream: &str) -> Option<Arc<StreamRoutes>> {
        // With one endpoint every call goes there anyway.
        if !self.inner.options.route_to_leaders || self.inner.endpoints.len() < 2 {
            return None;
        }
        let (routes, refresh) = self.inner.routes.get(stream);
        if refresh {
            let client = self.clone();
            let name = stream.to_string();
            let spawned = tokio::runtime::Handle::try_current().map(|rt| {
                rt.spawn(async move {
                    let stream = name;
                    let limit = Duration::from_millis(limits::CLIENT_ROUTES_FETCH_MS_MAX);
                    let routes =
                        match tokio::time::timeout(limit, client.fetch_routes(&stream)).await {
                            Ok(Ok(r)) => Some(r),
                            Ok(Err(e)) => {
                                tracing::debug!(stream, error = %e, "routes not refreshed");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(stream, "routes not refreshed in time");
                                None
                            }
                        };
                    client.inner.routes.set(&stream, routes);
                })
            });
            if spawned.is_err() {
                self.inner.routes.set(stream, None);
            }
        }
        routes
    }

    /// Asks the cluster where the stream's open shards and their leaders are.
    async fn fetch_routes(&self, stream: &str) -> Result<StreamRoutes, ClientError> {
        let description = self.describe_stream(stream).await?;
        let (asked, known) = self.inner.nodes.lock().expect("nodes lock").clone();
        let missing = description
            .shards
            .iter()
            .flat_map(|s| &s.replicas)
            .any(|r| r.leader && !known.contains_key(&r.node_id));
        let stale = asked
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(limits::CLIENT_NODES_REFRESH_MS));
        let nodes = if missing && stale {
            let status = self.cluster_status().await?;
            let nodes = Arc::new(node_endpoints(&status, &self.inner.endpoints));
            *self.inner.nodes.lock().expect("nodes lock") = (Some(Instant::now()), nodes.clone());
            nodes
        } else {
            known
        };
        Ok(StreamRoutes::from_description(&description, &nodes))
    }

    /// A shard iterator. `sequence_number` is used by `AT_SEQUENCE_NUMBER` and
    /// `AFTER_SEQUENCE_NUMBER`, `timestamp_ms` by `AT_TIMESTAMP`.
    pub async fn get_shard_iterator(
        &self,
        stream: &str,
        shard_id: &str,
        kind: v1::ShardIteratorType,
        sequence_number: Option<String>,
        timestamp_ms: Option<i64>,
    ) -> Result<String, ClientError> {
        // The iterator's position is resolved by the shard's leader.
        let first = self
            .routes(stream)
            .and_then(|r| r.endpoint_of_shard(shard_id));
        let req = v1::GetShardIteratorRequest {
            stream_name: stream.to_string(),
            shard_id: shard_id.to_string(),
            shard_iterator_type: kind as i32,
            starting_sequence_number: sequence_number.unwrap_or_default(),
            timestamp_ms: timestamp_ms.unwrap_or_default(),
            ..Default::default()
        };
        let resp = self
            .call_at(
                "GetShardIterator",
                first.map(|i| (i, stream)),
                req,
                |mut c, r| async move { c.get_shard_iterator(r).await },
            )
            .await?;
        Ok(resp.shard_iterator)
    }

    /// Reads records at `iterator`; `limit` 0 means the server's maximum (10,000). Each record's
    /// `data` is a slice of the response's buffer: keeping one record keeps the whole response
    /// (up to 10 MiB) in memory; copy it out (`to_vec`) to keep records long.
    pub async fn get_records(
        &self,
        iterator: &str,
        limit: u32,
    ) -> Result<v1::GetRecordsResponse, ClientError> {
        self.get_records_wait(iterator, limit, 0).await
    }

    /// GetRecords with Braid's long poll: at the tip of an open shard the server waits up to
    /// `wait_ms` (at most 1,000) for records before answering.
    pub async fn get_records_wait(
        &self,
        iterator: &str,
        limit: u32,
        wait_ms: u32,
    ) -> Result<v1::GetRecordsResponse, ClientError> {
        let req = v1::GetRecordsRequest {
            shard_iterator: iterator.to_string(),
            limit,
            wait_ms,
            ..Default::default()
        };
        self.call("GetRecords", req, |mut c, r| async move {
            c.get_records(r).await
        })
        .await
    }

    /// [`get_records_wait`](Self::get_records_wait) for an iterator of `stream`'s shard
    /// `shard_id`, sent to that shard's leader when the client knows it.
    pub async fn get_shard_records(
        &self,
        stream: &str,
        shard_id: &str,
        iterator: &str,
        limit: u32,
        wait_ms: u32,
    ) -> Result<v1::GetRecordsResponse, ClientError> {
        let first = self
            .routes(stream)
            .and_then(|r| r.endpoint_of_shard(shard_id));
        let req = v1::GetRecordsRequest {
            shard_iterator: iterator.to_string(),
            limit,
            wait_ms,
            ..Default::default()
        };
        let first = first.map(|i| (i, stream));
        self.call_at("GetRecords", first, req, |mut c, r| async move {
            c.get_records(r).await
        })
        .await
    }

    pub async fn cluster_status(&self) -> Result<v1::ClusterStatusResponse, ClientError> {
        self.call(
            "ClusterStatus",
            v1::ClusterStatusRequest {},
            |mut c, r| async move { c.cluster_status(r).await },
        )
        .await
    }
}

/// One `PutRecords` response of `n` records from the answers of calls that each carried the
/// records at `places`. A failed call fails its records; only when every call failed is its
/// error returned.
fn merge_put_records(
    n: usize,
    results: Vec<(Vec<usize>, Result<v1::PutRecordsResponse, ClientError>)>,
) -> Result<v1::PutRecordsResponse, ClientError> {
    let fatal = results
        .iter()
        .position(|(_, r)| r.as_ref().is_err_and(|e| !e.is_retryable()));
    if let Some(i) = fatal.or_else(|| results.iter().all(|(_, r)| r.is_err()).then_some(0)) {
        let (_, r) = results.into_iter().nth(i).expect("that call");
        return r;
    }
    let mut out = vec![v1::PutRecordsResultEntry::default(); n];
    let mut failed = 0u32;
    for (places, result) in results {
        match result {
            Ok(resp) if resp.records.len() == places.len() => {
                failed += resp.failed_record_count;
                for (i, r) in places.into_iter().zip(resp.records) {
                    out[i] = r;
                }
            }
            other => {
                let (code, message) = match other {
                    Ok(resp) => (
                        ErrorCode::InternalFailure,
                        format!(
                            "malformed PutRecords response: {} results for {} records",
                            resp.records.len(),
                            places.len()
                        ),
                    ),
                    Err(e) if e.code() == Some(ErrorCode::ProvisionedThroughputExceeded) => {
                        (ErrorCode::ProvisionedThroughputExceeded, e.to_string())
                    }
                    Err(e) => (ErrorCode::InternalFailure, e.to_string()),
                };
                failed += places.len() as u32;
                for i in places {
                    out[i] = v1::PutRecordsResultEntry {
                        error_code: code.kinesis_name().into(),
                        error_message: message.clone(),
                        ..Default::default()
                    };
                }
            }
        }
    }
    Ok(v1::PutRecordsResponse {
        failed_record_count: failed,
        records: out,
    })
}

fn malformed(op: &str, what: &str) -> ClientError {
    ClientError::api(
        ErrorCode::InternalFailure,
        format!("malformed {op} response: {what}"),
    )
}

fn no_progress(op: &str) -> ClientError {
    ClientError::api(
        ErrorCode::InternalFailure,
        format!("{op} pagination made no progress"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:7401").unwrap(),
            "http://127.0.0.1:7401"
        );
        assert_eq!(
            normalize_endpoint(" http://127.0.0.1:7401/ ").unwrap(),
            "http://127.0.0.1:7401"
        );
        assert_eq!(
            normalize_endpoint("localhost:1").unwrap(),
            "http://localhost:1"
        );
        assert!(normalize_endpoint("").is_err());
        assert!(normalize_endpoint("http://").is_err());
        assert!(normalize_endpoint("https://x:1").is_err());
        assert!(normalize_endpoint("a b:1").is_err());
    }

    #[test]
    fn new_splits_commas_and_rejects_empty() {
        let c = Client::new(
            &[
                "127.0.0.1:1, http://127.0.0.1:2".to_string(),
                "127.0.0.1:3".into(),
            ],
            ClientOptions::default(),
        )
        .unwrap();
        assert_eq!(
            c.endpoints(),
            [
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                "http://127.0.0.1:3"
            ]
        );
        assert!(Client::new(&[], ClientOptions::default()).is_err());
        assert!(Client::new(&[" , ".to_string()], ClientOptions::default()).is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_delay(50, 0, 1.0), Duration::from_millis(50));
        assert_eq!(backoff_delay(50, 0, 0.0), Duration::from_millis(25));
        assert_eq!(backoff_delay(50, 3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(50, 10, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff_delay(50, 60, 0.0), Duration::from_millis(500));
        for attempt in 0..40 {
            let d = random_backoff(50, attempt);
            assert!(d <= Duration::from_millis(BACKOFF_CAP_MS));
        }
    }

    fn ok(n: usize, seq0: u64) -> v1::PutRecordsResponse {
        v1::PutRecordsResponse {
            failed_record_count: 0,
            records: (0..n as u64)
                .map(|i| v1::PutRecordsResultEntry {
                    sequence_number: (seq0 + i).to_string(),
                    shard_id: "s".into(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn split_answers_merge_in_request_order_and_failures_stay_per_call() {
        let merged = merge_put_records(
            5,
            vec![(vec![0, 2, 4], Ok(ok(3, 10))), (vec![1, 3], Ok(ok(2, 20)))],
        )
        .unwrap();
        let seqs: Vec<&str> = merged
            .records
            .iter()
            .map(|r| r.sequence_number.as_str())
            .collect();
        assert_eq!(seqs, ["10", "20", "11", "21", "12"]);
        assert_eq!(merged.failed_record_count, 0);

        // One call failed as a whole: its records fail, the others stand.
        let busy = ClientError::api(ErrorCode::ProvisionedThroughputExceeded, "slow down");
        let merged = merge_put_records(
            4,
            vec![
                (vec![0, 3], Ok(ok(2, 10))),
                (vec![1], Err(busy)),
                (vec![2], Err(ClientError::Transport("reset".into()))),
            ],
        )
        .unwrap();
        assert_eq!(merged.failed_record_count, 2);
        let codes: Vec<&str> = merged
            .records
            .iter()
            .map(|r| r.error_code.as_str())
            .collect();
        assert_eq!(
            codes,
            [
                "",
                "ProvisionedThroughputExceededException",
                "InternalFailure",
                ""
            ]
        );
        assert_eq!(merged.records[3].sequence_number, "11");

        // A call answering the wrong number of records fails its records, not the others.
        let merged = merge_put_records(
            3,
            vec![(vec![0, 1], Ok(ok(1, 10))), (vec![2], Ok(ok(1, 20)))],
        )
        .unwrap();
        assert_eq!(merged.failed_record_count, 2);
        assert_eq!(merged.records[2].sequence_number, "20");

        // One call failed with an error retrying cannot fix: that error, as unsplit.
        let err = merge_put_records(
            2,
            vec![
                (vec![0], Ok(ok(1, 10))),
                (
                    vec![1],
                    Err(ClientError::api(ErrorCode::InvalidArgument, "too big")),
                ),
            ],
        )
        .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidArgument));

        // Every call failed: the error itself.
        let err = merge_put_records(
            2,
            vec![
                (
                    vec![0],
                    Err(ClientError::api(ErrorCode::ResourceNotFound, "gone")),
                ),
                (
                    vec![1],
                    Err(ClientError::api(ErrorCode::ResourceNotFound, "gone")),
                ),
            ],
        )
        .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::ResourceNotFound));
    }

    #[tokio::test]
    async fn unreachable_endpoints_fail_fast_with_transport_error() {
        let options = ClientOptions {
            retries: 2,
            retry_backoff_ms: 1,
            timeout_ms: 2_000,
            ..ClientOptions::default()
        };
        let c = Client::new(
            &["127.0.0.1:1".to_string(), "127.0.0.1:2".to_string()],
            options,
        )
        .unwrap();
        let started = Instant::now();
        let err = c.list_streams().await.unwrap_err();
        assert!(matches!(err, ClientError::Transport(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        // Three attempts (endpoints 1, 2, 1): the preferred endpoint moved after each failed one
        // that was followed by a retry.
        assert_eq!(c.inner.current.load(Ordering::Relaxed), 2);
    }
}
