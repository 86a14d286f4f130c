//! `braid bench --kinesis-endpoint`: puts through the Kinesis Data Streams HTTP API.
//!
//! Requests are what the AWS SDKs send: `POST /` with `X-Amz-Target: Kinesis_20131202.PutRecords`
//! (or `.PutRecord`), `Content-Type: application/x-amz-json-1.1` and a JSON body whose `Data`
//! blobs are base64 strings. Each producer task holds one connection of its own (HTTP/1.1, or
//! HTTP/2 with prior knowledge — h2c — with `--http2`), the way an SDK client per thread would,
//! without the SDK: its request building would take the bench client's share of two cores.
//!
//! Requests carry a well-formed SigV4 `Authorization` header, which a node without configured
//! access keys accepts without checking. With `--kinesis-access-key` every request is signed for
//! real (SHA-256 of the body, HMAC chain), so that a node with keys verifies it.
//!
//! Errors follow the gRPC client's rule ([`braid_client::Client`]): transport errors and
//! retryable API errors (`ServiceUnavailable`, `InternalFailure`,
//! `ProvisionedThroughputExceededException`) are retried with exponential backoff, moving to
//! the next endpoint; others are returned.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use braid_client::{v1, ClientError};
use braid_types::ErrorCode;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::cmd::format_timestamp_ms;

type HmacSha256 = Hmac<Sha256>;

const TARGET_PREFIX: &str = "Kinesis_20131202.";
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const REGION: &str = "us-east-1";
const SERVICE: &str = "kinesis";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Signed headers, sorted, `;`-joined, as the SDKs sign a Kinesis call.
const SIGNED_HEADERS: &str = "content-type;host;x-amz-date;x-amz-target";
/// Base backoff between attempts (doubles each attempt, capped), as the gRPC client.
const BACKOFF_BASE_MS: u64 = 50;
const BACKOFF_CAP_MS: u64 = 1_000;
/// Per-record errors kept from one PutRecords answer.
const RECORD_ERRORS_KEPT: usize = 5;

/// One Kinesis HTTP endpoint: `http://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    /// `host:port`, for the TCP connection and the `Host` header.
    pub authority: String,
}

impl Endpoint {
    /// Parses `http://host:port` (or `host:port`). TLS is not supported.
    pub fn parse(s: &str) -> anyhow::Result<Endpoint> {
        let s = s.trim();
        let rest = match s.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => anyhow::bail!(
                "unsupported Kinesis endpoint {s}: scheme {scheme}; only http:// is supported"
            ),
            None => s,
        };
        let authority = rest.trim_end_matches('/');
        anyhow::ensure!(
            !authority.is_empty()
                && !authority.contains(['/', '?', '#'])
                && !authority.contains(char::is_whitespace)
                && authority
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| { !h.is_empty() && p.parse::<u16>().is_ok() }),
            "invalid Kinesis endpoint {s}: expected http://HOST:PORT"
        );
        Ok(Endpoint {
            url: format!("http://{authority}"),
            authority: authority.to_string(),
        })
    }
}

/// Where and how producers talk Kinesis.
#[derive(Clone, Debug)]
pub struct Target {
    /// Failover order; every producer starts with the first.
    pub endpoints: Vec<Endpoint>,
    pub http2: bool,
    /// `(access key id, secret)` to sign with; None sends an unverified placeholder signature.
    pub key: Option<(String, String)>,
    /// Retries after the first attempt of a call.
    pub retries: u32,
    /// Deadline of each attempt, connection included.
    pub timeout: Duration,
}

impl Target {
    /// The transport, for the summary: `Kinesis HTTP/1.1 http://...`.
    pub fn describe(&self) -> String {
        format!(
            "Kinesis {} {}{}",
            if self.http2 {
                "HTTP/2 (h2c)"
            } else {
                "HTTP/1.1"
            },
            self.endpoints
                .iter()
                .map(|e| e.url.as_str())
                .collect::<Vec<_>>()
                .join(","),
            if self.key.is_some() {
                ", SigV4-signed"
            } else {
                ""
            }
        )
    }
}

/// Parses `AKID:SECRET`.
pub fn parse_access_key(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once(':') {
        Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok((id.to_string(), secret.to_string()))
        }
        _ => anyhow::bail!("--kinesis-access-key wants ACCESS_KEY_ID:SECRET_ACCESS_KEY"),
    }
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Appends the standard (padded) base64 of `data`.
fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    let n = base64::encoded_len(data.len(), true).expect("record sizes are small");
    out.resize(start + n, 0);
    let written = STANDARD
        .encode_slice(data, &mut out[start..])
        .expect("buffer sized by encoded_len");
    debug_assert_eq!(written, n);
}

/// The AWS JSON 1.1 body of a PutRecords call.
pub fn put_records_body(stream: &str, records: &[v1::PutRecordsRequestEntry]) -> Bytes {
    let size: usize = records
        .iter()
        .map(|r| 4 * r.data.len().div_ceil(3) + r.partition_key.len() + 40)
        .sum();
    let mut b = Vec::with_capacity(size + stream.len() + 40);
    b.extend_from_slice(br#"{"StreamName":"#);
    push_json_str(&mut b, stream);
    b.extend_from_slice(br#","Records":["#);
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(br#"{"Data":""#);
        push_base64(&mut b, &r.data);
        b.extend_from_slice(br#"","PartitionKey":"#);
        push_json_str(&mut b, &r.partition_key);
        if !r.explicit_hash_key.is_empty() {
            b.extend_from_slice(br#","ExplicitHashKey":"#);
            push_json_str(&mut b, &r.explicit_hash_key);
        }
        b.push(b'}');
    }
    b.extend_from_slice(b"]}");
    Bytes::from(b)
}

/// The AWS JSON 1.1 body of a PutRecord call.
pub fn put_record_body(stream: &str, key: &str, data: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(4 * data.len().div_ceil(3) + key.len() + stream.len() + 60);
    b.extend_from_slice(br#"{"StreamName":"#);
    push_json_str(&mut b, stream);
    b.extend_from_slice(br#","Data":""#);
    push_base64(&mut b, data);
    b.extend_from_slice(br#"","PartitionKey":"#);
    push_json_str(&mut b, key);
    b.push(b'}');
    Bytes::from(b)
}

/// What a PutRecords answer said.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PutRecordsResult {
    pub failed: u64,
    /// `ErrorCode: ErrorMessage` of the first few failed records (distinct).
    pub errors: Vec<String>,
}

/// Reads `FailedRecordCount` and the per-record `ErrorCode`s of a PutRecords answer.
pub fn parse_put_records(v: &Value, sent: u64) -> Result<PutRecordsResult, ClientError> {
    let failed = v
        .get("FailedRecordCount")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            ClientError::Transport("PutRecords answer without FailedRecordCount".into())
        })?;
    let records = v.get("Records").and_then(Value::as_array);
    if records.map(Vec::len) != Some(sent as usize) {
        return Err(ClientError::Transport(format!(
            "PutRecords answer with {} records for {sent} sent",
            records.map(Vec::len).unwrap_or(0)
        )));
    }
    let mut errors = Vec::new();
    for r in records.into_iter().flatten() {
        if let Some(code) = r.get("ErrorCode").and_then(Value::as_str) {
            let e = format!(
                "{code}: {}",
                r.get("ErrorMessage").and_then(Value::as_str).unwrap_or("")
            );
            if errors.len() < RECORD_ERRORS_KEPT && !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    Ok(PutRecordsResult {
        failed: failed.min(sent),
        errors,
    })
}

/// The client error of a non-200 answer: the Braid code of its `__type` when there is one
/// (so retryability is the gRPC client's), else InternalFailure for 5xx (retried) and
/// InvalidArgument for other statuses (fatal: serialization or signature problems).
pub fn error_from_answer(status: u16, body: &[u8]) -> ClientError {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k).or_else(|| v.get(k.to_ascii_lowercase())))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    // AWS may qualify the type: `namespace#Name`.
    let type_name = field("__type").map(|t| t.rsplit('#').next().unwrap_or("").to_string());
    let message = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    match type_name.as_deref().and_then(ErrorCode::from_kinesis_name) {
        Some(code) => ClientError::api(code, message),
        None => {
            let what = format!(
                "{} (HTTP {status}): {message}",
                type_name.as_deref().unwrap_or("no __type")
            );
            if status >= 500 {
                ClientError::api(ErrorCode::InternalFailure, what)
            } else {
                ClientError::api(ErrorCode::InvalidArgument, what)
            }
        }
    }
}

/// `YYYYMMDDTHHMMSSZ` for now.
fn amz_date() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    // 2024-05-01T12:00:00.000Z
    let t = format_timestamp_ms(ms);
    let mut out = String::with_capacity(16);
    out.push_str(&t[0..4]);
    out.push_str(&t[5..7]);
    out.push_str(&t[8..10]);
    out.push('T');
    out.push_str(&t[11..13]);
    out.push_str(&t[14..16]);
    out.push_str(&t[17..19]);
    out.push('Z');
    out
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The SigV4 signature of `POST /` with the headers of [`headers`] (AWS's algorithm, as the
/// SDKs compute it: canonical request, string to sign, HMAC chain over the scope).
fn signature(secret: &str, timestamp: &str, authority: &str, target: &str, body: &[u8]) -> String {
    let canonical = format!(
        "POST\n/\n\ncontent-type:{JSON_CONTENT_TYPE}\nhost:{authority}\nx-amz-date:{timestamp}\nx-amz-target:{target}\n\n{SIGNED_HEADERS}\n{}",
        hex(&Sha256::digest(body))
    );
    let date = &timestamp[..8];
    let scope = format!("{date}/{REGION}/{SERVICE}/aws4_request");
    let to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date);
    for part in [REGION, SERVICE, "aws4_request"] {
        key = hmac(&key, part);
    }
    hex(&hmac(&key, &to_sign))
}

/// The headers of one call at `timestamp` (`YYYYMMDDTHHMMSSZ`), signed with `key` (SigV4) or
/// with a well-formed placeholder.
pub fn headers(
    authority: &str,
    op: &str,
    body: &[u8],
    key: Option<&(String, String)>,
    timestamp: &str,
) -> anyhow::Result<HeaderMap> {
    let target = format!("{TARGET_PREFIX}{op}");
    let date = &timestamp[..8];
    let (access_key_id, signature) = match key {
        None => ("BRAIDBENCH", "0".repeat(64)),
        Some((id, secret)) => (
            id.as_str(),
            signature(secret, timestamp, authority, &target, body),
        ),
    };
    let mut h = HeaderMap::new();
    h.insert(HOST, HeaderValue::from_str(authority)?);
    h.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    h.insert("x-amz-date", HeaderValue::from_str(timestamp)?);
    h.insert("x-amz-target", HeaderValue::from_str(&target)?);
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!(
            "{ALGORITHM} Credential={access_key_id}/{date}/{REGION}/{SERVICE}/aws4_request, SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
        ))?,
    );
    Ok(h)
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One producer's connection, reconnected (to the next endpoint) after a failure.
pub struct Conn {
    target: std::sync::Arc<Target>,
    /// Index (modulo the endpoint count) of the endpoint in use.
    current: usize,
    sender: Option<Sender>,
}

fn transport(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

impl Conn {
    pub fn new(target: std::sync::Arc<Target>) -> Conn {
        Conn {
            target,
            current: 0,
            sender: None,
        }
    }

    fn endpoint(&self) -> &Endpoint {
        &self.target.endpoints[self.current % self.target.endpoints.len()]
    }

    async fn connect(&self) -> Result<Sender, ClientError> {
        let tcp = TcpStream::connect(&self.endpoint().authority)
            .await
            .map_err(transport)?;
        let _ = tcp.set_nodelay(true);
        let io = TokioIo::new(tcp);
        if self.target.http2 {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await
                .map_err(transport)?;
            tokio::spawn(conn);
            Ok(Sender::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(io).await.map_err(transport)?;
            tokio::spawn(conn);
            Ok(Sender::H1(sender))
        }
    }

    /// One attempt: (re)connect if needed, send, read the whole answer.
    async fn attempt(&mut self, op: &str, body: &Bytes) -> Result<Value, ClientError> {
        if self.sender.is_none() {
            self.sender = Some(self.connect().await?);
        }
        let ep = self.endpoint();
        let headers = headers(
            &ep.authority,
            op,
            body,
            self.target.key.as_ref(),
            &amz_date(),
        )
        .map_err(|e| ClientError::api(ErrorCode::InvalidArgument, e.to_string()))?;
        // HTTP/2 takes :scheme and :authority from an absolute URI; HTTP/1.1 wants origin form.
        let uri: Uri = if self.target.http2 {
            format!("{}/", ep.url).parse().map_err(transport)?
        } else {
            Uri::from_static("/")
        };
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(Full::new(body.clone()))
            .map_err(transport)?;
        *req.headers_mut() = headers;
        let resp = match self.sender.as_mut().expect("connected above") {
            Sender::H1(s) => {
                s.ready().await.map_err(transport)?;
                s.send_request(req).await.map_err(transport)?
            }
            Sender::H2(s) => {
                s.ready().await.map_err(transport)?;
                s.send_request(req).await.map_err(transport)?
            }
        };
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        if status == 200 {
            serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Transport(format!("answer is not JSON: {e}")))
        } else {
            Err(error_from_answer(status, &bytes))
        }
    }

    /// Sends `X-Amz-Target: Kinesis_20131202.{op}` with `body` under the retry rule.
    pub async fn call(&mut self, op: &str, body: Bytes) -> Result<Value, ClientError> {
        let mut attempt = 0u32;
        loop {
            let result =
                match tokio::time::timeout(self.target.timeout, self.attempt(op, &body)).await {
                    Ok(r) => r,
                    Err(_) => Err(ClientError::Transport(format!(
                        "no answer within {} ms",
                        self.target.timeout.as_millis()
                    ))),
                };
            let err = match result {
                Ok(v) => return Ok(v),
                Err(ClientError::Transport(m)) => {
                    // The connection may be in any state: start over.
                    self.sender = None;
                    ClientError::Transport(format!("{}: {m}", self.endpoint().url))
                }
                Err(e) => e,
            };
            if !err.is_retryable() || attempt >= self.target.retries {
                return Err(err);
            }
            if self.target.endpoints.len() > 1 {
                self.current = self.current.wrapping_add(1);
                self.sender = None;
            }
            let full = BACKOFF_BASE_MS
                .saturating_mul(1u64 << attempt.min(20))
                .min(BACKOFF_CAP_MS);
            let delay = full / 2 + rand::thread_rng().gen_range(0..=full - full / 2);
            tracing::debug!(op, attempt, error = %err, delay_ms = delay, "retrying");
            tokio::time::sleep(Duration::from_millis(delay)).await;
            attempt += 1;
        }
    }

    /// PutRecords: the records that failed (by `FailedRecordCount`) and their errors.
    pub async fn put_records(
        &mut self,
        stream: &str,
        records: &[v1::PutRecordsRequestEntry],
    ) -> Result<PutRecordsResult, ClientError> {
        let v = self
            .call("PutRecords", put_records_body(stream, records))
            .await?;
        parse_put_records(&v, records.len() as u64)
    }

    /// PutRecord of one record.
    pub async fn put_record(
        &mut self,
        stream: &str,
        key: &str,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let v = self
            .call("PutRecord", put_record_body(stream, key, data))
            .await?;
        match v.get("SequenceNumber").and_then(Value::as_str) {
            Some(_) => Ok(()),
            None => Err(ClientError::Transport(
                "PutRecord answer without SequenceNumber".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:4567/").unwrap();
        assert_eq!(e.url, "http://127.0.0.1:4567");
        assert_eq!(e.authority, "127.0.0.1:4567");
        assert_eq!(
            Endpoint::parse("localhost:1").unwrap().url,
            "http://localhost:1"
        );
        for bad in ["", "https://x:1", "http://x", "http://x:1/path", "x:port"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_are_aws_json() {
        let records = vec![
            v1::PutRecordsRequestEntry {
                data: b"hello".to_vec().into(),
                partition_key: "k1".into(),
                explicit_hash_key: String::new(),
            },
            v1::PutRecordsRequestEntry {
                data: vec![0, 255, 7].into(),
                partition_key: "k\"2".into(),
                explicit_hash_key: "42".into(),
            },
        ];
        let body = put_records_body("s\\1", &records);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "StreamName": "s\\1",
                "Records": [
                    {"Data": "aGVsbG8=", "PartitionKey": "k1"},
                    {"Data": "AP8H", "PartitionKey": "k\"2", "ExplicitHashKey": "42"},
                ],
            })
        );
        let v: Value = serde_json::from_slice(&put_record_body("s", "k", b"ab")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"StreamName": "s", "Data": "YWI=", "PartitionKey": "k"})
        );
    }

    #[test]
    fn answers() {
        let v = serde_json::json!({
            "FailedRecordCount": 2,
            "Records": [
                {"SequenceNumber": "1", "ShardId": "shardId-000000000000"},
                {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"},
                {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"},
            ],
        });
        let r = parse_put_records(&v, 3).unwrap();
        assert_eq!(r.failed, 2);
        assert_eq!(
            r.errors,
            ["ProvisionedThroughputExceededException: slow down"]
        );
        assert!(parse_put_records(&v, 4).is_err());

        let e = error_from_answer(
            400,
            br#"{"__type":"ResourceNotFoundException","message":"Stream x not found."}"#,
        );
        assert_eq!(e.code(), Some(ErrorCode::ResourceNotFound));
        let e = error_from_answer(503, br#"{"__type":"ServiceUnavailable","message":"m"}"#);
        assert!(e.is_retryable());
        let e = error_from_answer(400, br#"{"__type":"SerializationException","message":"m"}"#);
        assert_eq!(e.code(), Some(ErrorCode::InvalidArgument));
        assert!(!e.is_retryable());
        assert!(error_from_answer(502, b"bad gateway").is_retryable());
    }

    #[test]
    fn signed_headers() {
        // Expected values computed independently (Python's hmac/hashlib, AWS's algorithm).
        let key = ("AKIDBENCH".to_string(), "s3cret".to_string());
        let body = put_record_body("s", "k", b"data");
        let h = headers(
            "127.0.0.1:4567",
            "PutRecord",
            &body,
            Some(&key),
            "20261126T120000Z",
        )
        .unwrap();
        assert_eq!(h["x-amz-target"], "Kinesis_20131202.PutRecord");
        assert_eq!(
            h[AUTHORIZATION].to_str().unwrap(),
            "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20261126/us-east-1/kinesis/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=7e2d1652515a68d1c734f4737e9f670e1c745e53c6397c3688ff9aa5940f7149"
        );
        let h = headers("h:1", "PutRecords", b"{}", None, "20261126T120000Z").unwrap();
        assert!(h[AUTHORIZATION]
            .to_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=BRAIDBENCH/20261126/us-east-1/kinesis/aws4_request, SignedHeaders="));
        let t = amz_date();
        assert!(
            t.len() == 16 && t.as_bytes()[8] == b'T' && t.ends_with('Z'),
            "{t}"
        );
    }
}
