//! Every limit of the system, in one place. Each has a reason; relations are checked at compile
//! time at the bottom. Kinesis limits follow shared/reference/kinesis-api.md §3.1.

/// Largest data blob of one record (Kinesis default `MaxRecordSizeInKiB` = 1024).
pub const RECORD_DATA_BYTES_MAX: usize = 1024 * 1024;
/// Partition keys are 1..=256 Unicode characters.
pub const PARTITION_KEY_CHARS_MIN: usize = 1;
pub const PARTITION_KEY_CHARS_MAX: usize = 256;
/// Records in one PutRecords call.
pub const PUT_RECORDS_COUNT_MAX: usize = 500;
/// Bytes (data plus partition keys) in one PutRecords call (the current API model's 10 MiB; it
/// was 5 MiB before records could exceed 1 MiB).
pub const PUT_RECORDS_BYTES_MAX: usize = 10 * 1024 * 1024;
/// The `MaxRecordSizeInKiB` a stream may have (CreateStream, UpdateMaxRecordSize), as Kinesis.
pub const MAX_RECORD_SIZE_KIB_MIN: u32 = 1024;
pub const MAX_RECORD_SIZE_KIB_MAX: u32 = 10 * 1024;
/// Records returned by one GetRecords call.
pub const GET_RECORDS_COUNT_MAX: u32 = 10_000;
/// Bytes returned by one GetRecords call.
pub const GET_RECORDS_BYTES_MAX: usize = 10 * 1024 * 1024;
/// A shard iterator is valid this long after it was issued (ExpiredIteratorException after).
pub const ITERATOR_TTL_MS: u64 = 5 * 60 * 1000;
/// ListShards / ListStreams `NextToken`s are valid this long after they were issued
/// (ExpiredNextTokenException after), as on Kinesis.
pub const NEXT_TOKEN_TTL_MS: u64 = 5 * 60 * 1000;
/// Shard iterators are opaque strings of at most 512 characters.
pub const ITERATOR_CHARS_MAX: usize = 512;
/// Stream names: 1..=128 of `[a-zA-Z0-9_.-]`.
pub const STREAM_NAME_CHARS_MAX: usize = 128;
/// Retention, in hours.
pub const RETENTION_HOURS_DEFAULT: u32 = 24;
pub const RETENTION_HOURS_MIN: u32 = 24;
pub const RETENTION_HOURS_MAX: u32 = 8760;
/// Shards in one stream, and in the whole cluster (bounded so that one node's memory and
/// heartbeat load stay predictable; see docs/perf/model.md).
pub const STREAM_SHARDS_MAX: u32 = 1024;
pub const CLUSTER_SHARDS_MAX: u32 = 4096;
/// Streams in the cluster.
pub const STREAMS_MAX: usize = 1024;
/// How often a client asks again which node leads each shard it puts to or reads.
pub const CLIENT_ROUTES_REFRESH_MS: u64 = 2_000;
/// How long one refresh of a client's routes may take (it runs in the background, once at a time
/// per stream).
pub const CLIENT_ROUTES_FETCH_MS_MAX: u64 = 2_000;
/// How often a client asks ClusterStatus which address each node answers on, at most.
pub const CLIENT_NODES_REFRESH_MS: u64 = 30_000;
/// ListShards / ListStreams page sizes.
pub const LIST_SHARDS_PAGE_MAX: u32 = 10_000;
pub const LIST_STREAMS_PAGE_MAX: u32 = 10_000;
/// Replicas per shard: one per zone.
pub const REPLICAS_PER_SHARD: usize = 3;
/// Records in one Raft entry. A leader merges concurrent PutRecord/PutRecords calls to a shard
/// into one entry (group commit), up to this many records and [`PUT_RECORDS_BYTES_MAX`] bytes.
/// The entry's sub-index in a sequence number is 16 bits wide.
pub const ENTRY_RECORDS_MAX: usize = 16_384;
/// Bytes of one encoded Raft entry on disk: a full PutRecords plus framing slack.
pub const ENTRY_BYTES_MAX: usize = PUT_RECORDS_BYTES_MAX + 512 * 1024;
/// Segment files are rolled when they reach this size.
pub const SEGMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Entries sent in one AppendEntries RPC. openraft bounds batches by count only, so this times
/// [`ENTRY_BYTES_MAX`] must fit in one gRPC message.
pub const RAFT_PAYLOAD_ENTRIES_MAX: u64 = 8;
/// HTTP/2 DATA frames a node or client accepts (the peer sends frames up to this size): a
/// 500 KiB PutRecords or AppendEntries goes in one frame instead of 32 of the default 16 KiB.
pub const GRPC_FRAME_BYTES_MAX: u32 = 1024 * 1024;
/// Largest gRPC message the nodes accept (a full PutRecords, or a batch of Raft entries).
pub const GRPC_MESSAGE_BYTES_MAX: usize = 96 * 1024 * 1024;
/// Write calls to one shard waiting to be proposed (the leader's bounded queue in front of the
/// Raft core; a full queue makes callers wait).
pub const SHARD_WRITES_QUEUED_MAX: usize = 1024;
/// How long a shard's proposer waits for openraft to answer an entry before it tells the
/// entry's callers that the outcome is unknown and frees the slot (an ex-leader's entry may stay
/// unanswered until it is applied or truncated).
pub const SHARD_WRITE_CONFIRM_MS_MAX: u64 = 10_000;
/// How long the control group gives one snapshot (the whole catalog, sent in one message) to
/// reach a lagging follower and be installed and flushed there.
pub const CONTROL_SNAPSHOT_MS_MAX: u64 = 10_000;
/// How long a shard's proposer waits for a quorum to answer the heartbeat that renews a lapsed
/// leader lease (a quiesced group sends none; openraft 0.10 refuses writes without a lease).
pub const SHARD_LEASE_RENEW_MS_MAX: u64 = 2_000;
/// Entries one shard's leader has in its Raft core at once. Writes that arrive while these are
/// in flight are merged into the next entry: one log frame, replication message and fsync per
/// replica for all of them (docs/perf/2026-11-26-group-commit.md).
pub const SHARD_PROPOSALS_IN_FLIGHT_MAX: usize = 2;
/// Raft messages up to this size are coalesced per peer into RaftBatch calls; larger ones
/// (appends carrying records) go alone.
pub const RAFT_BATCH_MESSAGE_BYTES_MAX: usize = 16 * 1024;
/// Messages and bytes in one RaftBatch call.
pub const RAFT_BATCH_MESSAGES_MAX: usize = 512;
pub const RAFT_BATCH_BYTES_MAX: usize = 1024 * 1024;
/// RaftBatch calls in flight per peer; while all are busy, new messages queue and coalesce.
pub const RAFT_BATCHES_IN_FLIGHT_MAX: usize = 8;
/// Heartbeats wait this long for others to the same peer before they are sent together.
/// Far below the heartbeat interval (the append-entries timeout), it bounds idle cost by the
/// number of peers rather than the number of shards. Kept short because openraft 0.9 sent a
/// group's next append only after its in-flight heartbeat returned (0.10 heartbeats from its own
/// worker): 5 ms put the single-put p99
/// at 7.5 ms, 1 ms at 3.4 ms (docs/perf/2026-11-26-quiet.md). The empty AppendEntries that
/// carries a new commit index right after each commit is not lingered (braid-raft's network
/// tells it from a heartbeat): it used to delay the group's next write by the linger.
pub const RAFT_HEARTBEAT_LINGER_MS: u64 = 1;
/// How long a group stops replicating to a peer after it was unreachable: doubling from the min
/// to the max (openraft's default is a constant 500 ms) until a call succeeds.
pub const RAFT_UNREACHABLE_BACKOFF_MS_MIN: u64 = 25;
pub const RAFT_UNREACHABLE_BACKOFF_MS_MAX: u64 = 500;
/// Raft calls to one peer that may time out in a row before the peer counts as unreachable
/// (and openraft backs off): a slow answer is retried at once, a silent peer is not hammered.
pub const RAFT_TIMEOUTS_BEFORE_UNREACHABLE: u32 = 3;
/// Small Raft messages waiting per peer (bounded queue; a full queue fails the message, which
/// openraft retries like a network error).
pub const RAFT_BATCH_QUEUE_MAX: usize = 8192;
/// GetRecords long poll (a Braid extension): the longest a read at the tip of a shard may wait
/// for records. Well below [`FORWARD_TIMEOUT_MS`], which bounds the forwarded read.
pub const GET_RECORDS_WAIT_MS_MAX: u32 = 1_000;
/// How long one forwarded call may take before the caller stops waiting (a dead or frozen
/// leader must not hold writes much past the election that replaces it).
pub const FORWARD_TIMEOUT_MS: u64 = 2_000;
/// How long a forwarded call keeps looking for a shard's leader before giving up.
pub const LEADER_WAIT_MS_MAX: u64 = 10_000;
/// How often each node looks for whole segments past their stream's retention.
pub const RETENTION_CHECK_INTERVAL_MS: u64 = 60_000;
/// Graceful shutdown: how long a stopping node spends handing its leaderships to other
/// replicas before it exits anyway (container runtimes allow 10 s by default before SIGKILL).
pub const HANDOVER_MS_MAX: u64 = 5_000;
/// Graceful shutdown, after the hand-over: how long the servers may take to answer the
/// requests in flight (new connections are refused meanwhile) before the node stops anyway.
pub const SHUTDOWN_DRAIN_MS_MAX: u64 = 5_000;
/// Leadership transfers run at once during a hand-over.
pub const HANDOVER_CONCURRENCY: usize = 64;
/// How long one leadership transfer may keep the group's writes waiting (for writes in flight
/// to finish and the target to hold every entry) before it gives up and reopens them.
pub const TRANSFER_GATE_MS_MAX: u64 = 1_000;
/// A shard group whose log has not grown for this many heartbeat intervals (and whose
/// followers hold every entry) stops its Raft timers until the next write (see the node's
/// `quiesce` module). The heartbeats in between tell followers the final commit index.
pub const QUIESCE_AFTER_HEARTBEATS: u64 = 4;
/// Quiesced groups listed in one message to a peer (more stay unlisted, so their followers
/// keep their own election timers: correct, only less frugal).
pub const QUIESCED_MESSAGE_GROUPS_MAX: usize = 100_000;
/// At start, how long a node waits for its control group to re-apply the catalog entries it
/// knew were committed before it serves anything (a restarted node must not answer "stream not
/// found" for a stream it merely has not replayed yet).
pub const CATALOG_REPLAY_WAIT_MS: u64 = 30_000;
/// Recently appended Raft entries kept in memory per node, so that replication and apply do not
/// read them back from the segment files; and the most one group may hold. An idle group's
/// cache is emptied when it quiesces.
pub const LOG_CACHE_NODE_BYTES_MAX: usize = 64 * 1024 * 1024;
pub const LOG_CACHE_GROUP_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The sled page cache per node.
pub const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// SigV4 (with access keys configured): how far a request's signing time (`X-Amz-Date`, or
/// `Date`) may be from the node's clock, either way, as on AWS. Presigned requests may be this
/// far in the future too; how long they stay valid is their own `X-Amz-Expires`.
pub const SIGV4_CLOCK_SKEW_SECS: u64 = 5 * 60;
/// SigV4 presigned requests: the allowed `X-Amz-Expires`, 1 second to 7 days (the signing key
/// is valid for seven days).
pub const SIGV4_PRESIGN_EXPIRES_MIN_SECS: u64 = 1;
pub const SIGV4_PRESIGN_EXPIRES_MAX_SECS: u64 = 7 * 24 * 60 * 60;

const _: () = assert!(ENTRY_RECORDS_MAX < (1 << 16));
const _: () = assert!((GET_RECORDS_WAIT_MS_MAX as u64) * 2 <= FORWARD_TIMEOUT_MS);
const _: () = assert!(LOG_CACHE_GROUP_BYTES_MAX >= ENTRY_BYTES_MAX);
const _: () = assert!(LOG_CACHE_NODE_BYTES_MAX >= LOG_CACHE_GROUP_BYTES_MAX);
const _: () = assert!(ENTRY_RECORDS_MAX >= PUT_RECORDS_COUNT_MAX);
// A merged entry's encoding: keys and data, 16 bytes of length prefixes per record, a header.
const _: () = assert!(PUT_RECORDS_BYTES_MAX + ENTRY_RECORDS_MAX * 16 + 4096 <= ENTRY_BYTES_MAX);
const _: () = assert!(RAFT_BATCH_BYTES_MAX >= RAFT_BATCH_MESSAGE_BYTES_MAX * 8);
const _: () = assert!(RAFT_BATCH_BYTES_MAX <= GRPC_MESSAGE_BYTES_MAX);
const _: () = assert!(ENTRY_BYTES_MAX as u64 <= SEGMENT_BYTES_MAX);
const _: () =
    assert!(GRPC_MESSAGE_BYTES_MAX >= ENTRY_BYTES_MAX * (RAFT_PAYLOAD_ENTRIES_MAX as usize + 1));
const _: () = assert!(PUT_RECORDS_BYTES_MAX >= RECORD_DATA_BYTES_MAX + PARTITION_KEY_CHARS_MAX * 4);
const _: () = assert!(
    (MAX_RECORD_SIZE_KIB_MAX as usize) * 1024 + PARTITION_KEY_CHARS_MAX * 4
        <= PUT_RECORDS_BYTES_MAX + PARTITION_KEY_CHARS_MAX * 4
);
const _: () = assert!(RETENTION_HOURS_MIN <= RETENTION_HOURS_DEFAULT);
const _: () = assert!(RETENTION_HOURS_DEFAULT <= RETENTION_HOURS_MAX);
