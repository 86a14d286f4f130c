//! [`ShardReader`]: follows one shard with `GetRecords`.

use std::fmt;
use std::str::FromStr;

use braid_proto::v1;
use braid_types::ErrorCode;

use crate::client::Client;
use crate::error::ClientError;

/// Where a [`ShardReader`] starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    AtSequenceNumber(String),
    AfterSequenceNumber(String),
    /// Milliseconds since the Unix epoch.
    AtTimestamp(i64),
}

impl StartingPosition {
    /// From an iterator type and, for `AT_`/`AFTER_SEQUENCE_NUMBER`, a sequence number.
    /// `AT_TIMESTAMP` needs a timestamp: use [`StartingPosition::AtTimestamp`].
    pub fn from_kind(
        kind: v1::ShardIteratorType,
        sequence_number: Option<String>,
    ) -> Result<StartingPosition, ClientError> {
        use v1::ShardIteratorType as T;
        let need_seq = |seq: Option<String>| {
            seq.filter(|s| !s.is_empty()).ok_or_else(|| {
                ClientError::api(
                    ErrorCode::InvalidArgument,
                    format!("{} needs a sequence number", kind.as_str_name()),
                )
            })
        };
        Ok(match kind {
            T::TrimHorizon => StartingPosition::TrimHorizon,
            T::Latest => StartingPosition::Latest,
            T::AtSequenceNumber => StartingPosition::AtSequenceNumber(need_seq(sequence_number)?),
            T::AfterSequenceNumber => {
                StartingPosition::AfterSequenceNumber(need_seq(sequence_number)?)
            }
            T::AtTimestamp | T::Unspecified => {
                return Err(ClientError::api(
                    ErrorCode::InvalidArgument,
                    format!(
                        "{} is not a starting position without more arguments",
                        kind.as_str_name()
                    ),
                ))
            }
        })
    }

    /// The `GetShardIterator` arguments: type, sequence number, timestamp.
    pub fn to_request_parts(&self) -> (v1::ShardIteratorType, Option<String>, Option<i64>) {
        use v1::ShardIteratorType as T;
        match self {
            StartingPosition::TrimHorizon => (T::TrimHorizon, None, None),
            StartingPosition::Latest => (T::Latest, None, None),
            StartingPosition::AtSequenceNumber(s) => (T::AtSequenceNumber, Some(s.clone()), None),
            StartingPosition::AfterSequenceNumber(s) => {
                (T::AfterSequenceNumber, Some(s.clone()), None)
            }
            StartingPosition::AtTimestamp(ms) => (T::AtTimestamp, None, Some(*ms)),
        }
    }
}

/// Parses `trim-horizon`, `latest`, `at:SEQ`, `after:SEQ` and `timestamp:MS`.
impl FromStr for StartingPosition {
    type Err = String;

    fn from_str(s: &str) -> Result<StartingPosition, String> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        let value = |prefix: &str| s[prefix.len()..].trim().to_string();
        let position = match lower.as_str() {
            "trim-horizon" | "trim_horizon" => StartingPosition::TrimHorizon,
            "latest" => StartingPosition::Latest,
            _ if lower.starts_with("at:") => StartingPosition::AtSequenceNumber(value("at:")),
            _ if lower.starts_with("after:") => StartingPosition::AfterSequenceNumber(value("after:")),
            _ if lower.starts_with("timestamp:") => {
                let v = value("timestamp:");
                StartingPosition::AtTimestamp(v.parse().map_err(|_| format!("invalid timestamp (milliseconds since the epoch): {v}"))?)
            }
            _ => return Err(format!("invalid position {s}: expected trim-horizon, latest, at:SEQ, after:SEQ or timestamp:MS")),
        };
        match &position {
            StartingPosition::AtSequenceNumber(v) | StartingPosition::AfterSequenceNumber(v)
                if v.is_empty() =>
            {
                Err(format!("invalid position {s}: missing sequence number"))
            }
            _ => Ok(position),
        }
    }
}

impl fmt::Display for StartingPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartingPosition::TrimHorizon => write!(f, "trim-horizon"),
            StartingPosition::Latest => write!(f, "latest"),
            StartingPosition::AtSequenceNumber(s) => write!(f, "at:{s}"),
            StartingPosition::AfterSequenceNumber(s) => write!(f, "after:{s}"),
            StartingPosition::AtTimestamp(ms) => write!(f, "timestamp:{ms}"),
        }
    }
}

/// Reads one shard in order, following `next_shard_iterator`.
///
/// When the iterator expires, the reader asks for a new one `AFTER_SEQUENCE_NUMBER` of the last
/// record it returned (or at its starting position when it returned none yet; for `LATEST` that
/// may skip records written in between).
#[derive(Debug)]
pub struct ShardReader {
    client: Client,
    stream: String,
    shard_id: String,
    start: StartingPosition,
    iterator: String,
    last_sequence_number: Option<String>,
    millis_behind_latest: i64,
    finished: bool,
    child_shards: Vec<v1::ChildShard>,
    /// Long poll: at the tip, the server waits this long for records (0: answer at once).
    wait_ms: u32,
}

impl ShardReader {
    /// Opens a reader at an iterator type (and sequence number for `AT_`/`AFTER_SEQUENCE_NUMBER`).
    pub async fn new(
        client: Client,
        stream: &str,
        shard_id: &str,
        kind: v1::ShardIteratorType,
        sequence_number: Option<String>,
    ) -> Result<ShardReader, ClientError> {
        ShardReader::open(
            client,
            stream,
            shard_id,
            StartingPosition::from_kind(kind, sequence_number)?,
        )
        .await
    }

    /// Opens a reader at any starting position (including a timestamp).
    pub async fn open(
        client: Client,
        stream: &str,
        shard_id: &str,
        start: StartingPosition,
    ) -> Result<ShardReader, ClientError> {
        let iterator = iterator_at(&client, stream, shard_id, &start).await?;
        Ok(ShardReader {
            client,
            stream: stream.to_string(),
            shard_id: shard_id.to_string(),
            start,
            iterator,
            last_sequence_number: None,
            millis_behind_latest: 0,
            finished: false,
            child_shards: Vec::new(),
            wait_ms: 0,
        })
    }

    /// Makes each read at the tip of the shard wait up to `wait_ms` (at most 1,000) on the
    /// server for new records (Braid's long poll), instead of answering empty at once.
    pub fn with_wait(mut self, wait_ms: u32) -> ShardReader {
        self.wait_ms = wait_ms;
        self
    }

    /// One GetRecords at the current iterator, sent to the shard's leader when known.
    async fn read(&self, limit: u32) -> Result<v1::GetRecordsResponse, ClientError> {
        self.client
            .get_shard_records(
                &self.stream,
                &self.shard_id,
                &self.iterator,
                limit,
                self.wait_ms,
            )
            .await
    }

    /// The next records (at most `limit`; 0 means the server's maximum). Empty when nothing new
    /// has arrived, or when the shard is finished.
    pub async fn next_batch(&mut self, limit: u32) -> Result<Vec<v1::Record>, ClientError> {
        if self.finished {
            return Ok(Vec::new());
        }
        let resp = match self.read(limit).await {
            Ok(resp) => resp,
            Err(e) if e.code() == Some(ErrorCode::ExpiredIterator) => {
                let position = match &self.last_sequence_number {
                    Some(seq) => StartingPosition::AfterSequenceNumber(seq.clone()),
                    None => self.start.clone(),
                };
                tracing::debug!(shard = %self.shard_id, %position, "shard iterator expired, renewing");
                self.iterator =
                    iterator_at(&self.client, &self.stream, &self.shard_id, &position).await?;
                self.read(limit).await?
            }
            Err(e) => return Err(e),
        };
        self.millis_behind_latest = resp.millis_behind_latest;
        if let Some(last) = resp.records.last() {
            self.last_sequence_number = Some(last.sequence_number.clone());
        }
        if resp.next_shard_iterator.is_empty() {
            self.finished = true;
            self.child_shards = resp.child_shards;
        } else {
            self.iterator = resp.next_shard_iterator;
        }
        Ok(resp.records)
    }

    /// How far the last batch was behind the tip of the shard.
    pub fn millis_behind_latest(&self) -> i64 {
        self.millis_behind_latest
    }

    /// The shard is closed and fully read (`next_shard_iterator` was empty).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn shard_id(&self) -> &str {
        &self.shard_id
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The sequence number of the last record returned.
    pub fn last_sequence_number(&self) -> Option<&str> {
        self.last_sequence_number.as_deref()
    }

    /// The children of a finished shard, as reported by the final `GetRecords`.
    pub fn child_shards(&self) -> &[v1::ChildShard] {
        &self.child_shards
    }
}

async fn iterator_at(
    client: &Client,
    stream: &str,
    shard_id: &str,
    position: &StartingPosition,
) -> Result<String, ClientError> {
    let (kind, seq, ts) = position.to_request_parts();
    client
        .get_shard_iterator(stream, shard_id, kind, seq, ts)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use v1::ShardIteratorType as T;

    #[test]
    fn parse_positions() {
        assert_eq!(
            "trim-horizon".parse::<StartingPosition>().unwrap(),
            StartingPosition::TrimHorizon
        );
        assert_eq!(
            "LATEST".parse::<StartingPosition>().unwrap(),
            StartingPosition::Latest
        );
        assert_eq!(
            "at:123".parse::<StartingPosition>().unwrap(),
            StartingPosition::AtSequenceNumber("123".into())
        );
        assert_eq!(
            "after:9".parse::<StartingPosition>().unwrap(),
            StartingPosition::AfterSequenceNumber("9".into())
        );
        assert_eq!(
            "timestamp:1700000000000"
                .parse::<StartingPosition>()
                .unwrap(),
            StartingPosition::AtTimestamp(1_700_000_000_000)
        );
        assert!("at:".parse::<StartingPosition>().is_err());
        assert!("timestamp:x".parse::<StartingPosition>().is_err());
        assert!("yesterday".parse::<StartingPosition>().is_err());
        for p in ["trim-horizon", "latest", "at:1", "after:2", "timestamp:3"] {
            assert_eq!(p.parse::<StartingPosition>().unwrap().to_string(), p);
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(
            StartingPosition::from_kind(T::TrimHorizon, None).unwrap(),
            StartingPosition::TrimHorizon
        );
        assert_eq!(
            StartingPosition::from_kind(T::AfterSequenceNumber, Some("5".into())).unwrap(),
            StartingPosition::AfterSequenceNumber("5".into())
        );
        assert!(StartingPosition::from_kind(T::AtSequenceNumber, None).is_err());
        assert!(StartingPosition::from_kind(T::AtTimestamp, None).is_err());
        assert_eq!(
            StartingPosition::AtTimestamp(7).to_request_parts(),
            (T::AtTimestamp, None, Some(7))
        );
        assert_eq!(
            StartingPosition::AtSequenceNumber("1".into()).to_request_parts(),
            (T::AtSequenceNumber, Some("1".into()), None)
        );
    }
}
