//! The Kinesis API as the AWS SDK for Java v2 speaks it, against a real `braid dev` process
//! serving HTTPS (self-signed certificate for `localhost`, rcgen) and verifying SigV4 against
//! `--kinesis-access-key AKID:SECRET`. Maven Central is out of reach here, so the SDK itself
//! cannot run; this test reproduces its requests as it builds them:
//!
//! - transport, three ways, each over TLS: `KinesisAsyncClient` (Netty) speaks HTTP/2, offering
//!   ALPN `h2` alone since aws/aws-sdk-java-v2#5794 (2025-01) and, before that (2.29.0
//!   included), no ALPN at all and the HTTP/2 preface right after the handshake (prior
//!   knowledge). Either way Netty turns the signed `Host` header into `:authority` and sends no
//!   `host` header (`HttpConversionUtil`'s `HTTP_TO_HTTP2_HEADER_BLACKLIST` holds `HOST`; the
//!   SDK's `HttpToHttp2OutboundAdapter` applies it). `KinesisClient` (Apache) offers no ALPN
//!   and speaks HTTP/1.1 with `Host` and `Connection: Keep-Alive`.
//! - headers: `POST /`, `Content-Type: application/x-amz-cbor-1.1`,
//!   `X-Amz-Target: Kinesis_20131202.<Op>`, `amz-sdk-invocation-id` (a UUID kept across
//!   retries), `amz-sdk-request: attempt=N; max=4`, `User-Agent: aws-sdk-java/<version>
//!   md/io#async md/http#NettyNio ...` (or `md/io#sync md/http#Apache`), `X-Amz-Date`,
//!   `Content-Length`; no `Accept`.
//! - SigV4: every header but `connection`, `x-amzn-trace-id`, `user-agent` and `expect` is
//!   signed (`V4CanonicalRequest`), `host` being `localhost:<port>`. Two payload modes: the
//!   body's SHA-256 in the canonical request and no `x-amz-content-sha256` header (2.29-era
//!   signers, `PAYLOAD_SIGNING_ENABLED` defaulting to true), or, as current SDKs sign over HTTPS
//!   (`ChecksumUtil.isPayloadSigning`), `x-amz-content-sha256: UNSIGNED-PAYLOAD`, sent and
//!   signed.
//! - CBOR as Jackson's `CBORGenerator` writes it through the SDK's `SdkCborGenerator`:
//!   indefinite-length maps and arrays, definite-length text and byte strings (blobs), minimal
//!   integers, timestamps as tag 1 + epoch *milliseconds* (`writeNumber(instant.toEpochMilli())`,
//!   a 64-bit integer). Responses are read as the SDK reads them: payload timestamps are
//!   `UNIX_TIMESTAMP_MILLIS` for CBOR (`AwsCborProtocolFactory`), parsed with
//!   `Long.parseLong` (`DateUtils.parseUnixTimestampMillisInstant`), so they must be integers;
//!   integers (`MillisBehindLatest`, `FailedRecordCount`, ...) likewise; blobs must be byte
//!   strings; errors are a CBOR map with `__type` and `message`.
//!
//! The flow, over each transport (each on its own node and stream): ListStreams, CreateStream
//! (2 shards), DescribeStreamSummary until ACTIVE, PutRecord (all 256 byte values), PutRecords
//! (10 records, one with ExplicitHashKey), ListShards, GetShardIterator (TRIM_HORIZON and
//! AT_TIMESTAMP with a tag-1 timestamp), GetRecords, checked field by field; then a wrong
//! signature (InvalidSignatureException) and an unknown stream (ResourceNotFoundException).

mod common;

use common::tls::{test_cert, tls_connect, TestCert, TlsDev};

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ciborium::Value as C;
use futures::FutureExt;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};

const AKID: &str = "AKID";
const SECRET: &str = "SECRET";
const REGION: &str = "us-east-1";
const CBOR: &str = "application/x-amz-cbor-1.1";
const TARGET_PREFIX: &str = "Kinesis_20131202.";
/// The standard retry policy of SDK 2.29 (legacy mode): 3 retries, 4 attempts.
const MAX_ATTEMPTS: u32 = 4;
/// What the SDK signs for a Kinesis call (sorted; `user-agent` is never signed) when it signs
/// the payload: its SHA-256 goes into the canonical request, no `x-amz-content-sha256` is sent.
const SIGNED_HEADERS: &str =
    "amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date;x-amz-target";
/// ... and when it does not (current SDKs over HTTPS, see [`Flavor::unsigned_payload`]): the
/// `x-amz-content-sha256: UNSIGNED-PAYLOAD` header is sent and signed.
const SIGNED_HEADERS_UNSIGNED_PAYLOAD: &str = "amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// 2^128 - 1, the top of the hash key space.
const MAX_HASH_KEY: &str = "340282366920938463463374607431768211455";
const INVALID_SIGNATURE_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

// --- Java-shaped CBOR (Jackson's CBORGenerator under SdkCborGenerator) ---------------------

/// A request document as the SDK's marshaller walks it.
#[derive(Clone, Debug)]
enum J {
    /// Members in the model's order.
    Map(Vec<(&'static str, J)>),
    List(Vec<J>),
    Str(String),
    Blob(Vec<u8>),
    /// An `Integer` member (`writeNumber(int)`).
    Int(i32),
    /// An `Instant` member, as epoch milliseconds (`writeTag(1); writeNumber(long)`).
    Timestamp(i64),
}

fn s(v: &str) -> J {
    J::Str(v.to_string())
}

/// A major type and argument in the shortest form (Jackson's minimal ints and length markers).
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// `CBORGenerator.writeNumber(int)`: minimal.
fn int32(out: &mut Vec<u8>, i: i32) {
    if i >= 0 {
        head(out, 0, i as u64);
    } else {
        head(out, 1, (-1 - i as i64) as u64);
    }
}

/// `CBORGenerator.writeNumber(long)`: minimal when it fits an `int`, else always 8 bytes.
fn int64(out: &mut Vec<u8>, l: i64) {
    if let Ok(i) = i32::try_from(l) {
        int32(out, i);
    } else if l >= 0 {
        out.push(0x1b);
        out.extend_from_slice(&(l as u64).to_be_bytes());
    } else {
        out.push(0x3b);
        out.extend_from_slice(&((-1 - l) as u64).to_be_bytes());
    }
}

impl J {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            J::Map(members) => {
                out.push(0xbf);
                for (k, v) in members {
                    head(out, 3, k.len() as u64);
                    out.extend_from_slice(k.as_bytes());
                    v.write(out);
                }
                out.push(0xff);
            }
            J::List(items) => {
                out.push(0x9f);
                for v in items {
                    v.write(out);
                }
                out.push(0xff);
            }
            J::Str(t) => {
                head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
            J::Blob(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            J::Int(i) => int32(out, *i),
            J::Timestamp(ms) => {
                out.push(0xc1);
                int64(out, *ms);
            }
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

#[test]
fn java_cbor_encoding() {
    let create = J::Map(vec![("StreamName", s("s")), ("ShardCount", J::Int(2))]);
    let mut want = vec![0xbf, 0x6a];
    want.extend_from_slice(b"StreamName");
    want.extend_from_slice(&[0x61, b's', 0x6a]);
    want.extend_from_slice(b"ShardCount");
    want.extend_from_slice(&[0x02, 0xff]);
    assert_eq!(create.bytes(), want);
    assert_eq!(J::Map(vec![]).bytes(), [0xbf, 0xff]);
    // 2026-01-01T00:00:00.123Z: tag 1, then 8 bytes even though it would fit in fewer.
    let ts = J::Timestamp(1_767_225_600_123).bytes();
    assert_eq!(ts[..2], [0xc1, 0x1b]);
    assert_eq!(ts.len(), 10);
    let blob = J::Blob((0..=255u8).collect()).bytes();
    assert_eq!(blob[..3], [0x59, 0x01, 0x00]);
    assert_eq!(J::Int(-1).bytes(), [0x20]);
    assert_eq!(J::Int(500).bytes(), [0x19, 0x01, 0xf4]);
    // ciborium (the server's decoder) reads it back, tag included.
    let doc = J::Map(vec![
        ("T", J::Timestamp(1_767_225_600_123)),
        ("L", J::List(vec![J::Blob(vec![0, 255])])),
    ]);
    let v: C = ciborium::de::from_reader(&doc.bytes()[..]).unwrap();
    assert_eq!(
        v,
        C::Map(vec![
            (
                C::Text("T".into()),
                C::Tag(1, Box::new(C::Integer(1_767_225_600_123i64.into())))
            ),
            (C::Text("L".into()), C::Array(vec![C::Bytes(vec![0, 255])])),
        ])
    );
}

// --- reading responses as the SDK does --------------------------------------------------------

fn field<'a>(v: &'a C, key: &str) -> Option<&'a C> {
    match v {
        C::Map(m) => m
            .iter()
            .find(|(k, _)| matches!(k, C::Text(t) if t == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn req<'a>(v: &'a C, key: &str) -> &'a C {
    field(v, key).unwrap_or_else(|| panic!("no `{key}` in {v:?}"))
}

fn text<'a>(v: &'a C, key: &str) -> &'a str {
    match req(v, key) {
        C::Text(t) => t,
        other => panic!("`{key}` is not a CBOR text string but {other:?}, in {v:?}"),
    }
}

/// An integer member: a CBOR integer (the SDK parses its text with `Integer/Long.parseLong`).
fn int(v: &C, key: &str) -> i128 {
    match req(v, key) {
        C::Integer(i) => i128::from(*i),
        other => panic!("`{key}` is not a CBOR integer but {other:?}, in {v:?}"),
    }
}

fn boolean(v: &C, key: &str) -> bool {
    match req(v, key) {
        C::Bool(b) => *b,
        other => panic!("`{key}` is not a CBOR boolean but {other:?}, in {v:?}"),
    }
}

/// A blob member: a CBOR byte string (the SDK takes the embedded bytes as they are).
fn blob<'a>(v: &'a C, key: &str) -> &'a [u8] {
    match req(v, key) {
        C::Bytes(b) => b,
        other => panic!("`{key}` is not a CBOR byte string but {other:?}, in {v:?}"),
    }
}

/// A timestamp member: tag 1 wrapping an integer count of epoch milliseconds. Anything else
/// (a float, seconds, no tag with a float) fails `Long.parseLong` or means another instant.
fn timestamp_ms(v: &C, key: &str) -> i64 {
    match req(v, key) {
        C::Tag(1, inner) => match inner.as_ref() {
            C::Integer(i) => i64::try_from(i128::from(*i)).expect("timestamp in range"),
            other => panic!("`{key}` is tag 1 around {other:?}, not integer milliseconds"),
        },
        other => panic!("`{key}` is not tag 1 + integer epoch millis but {other:?}, in {v:?}"),
    }
}

fn list<'a>(v: &'a C, key: &str) -> &'a [C] {
    match req(v, key) {
        C::Array(a) => a,
        other => panic!("`{key}` is not a CBOR array but {other:?}, in {v:?}"),
    }
}

/// A sequence number: decimal digits, no leading zero.
fn seq<'a>(v: &'a C, key: &str) -> &'a str {
    let t = text(v, key);
    assert!(
        !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && (t == "0" || !t.starts_with('0')),
        "`{key}` is not a sequence number: {t:?}"
    );
    t
}

/// Numeric order of two sequence numbers (decimal strings without leading zeros).
fn seq_lt(a: &str, b: &str) -> bool {
    (a.len(), a) < (b.len(), b)
}

// --- time, ids, SigV4 ------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The date of a day number since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYYMMDD'T'HHMMSS'Z'` of epoch milliseconds.
fn amz_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[test]
fn amz_dates() {
    assert_eq!(amz_date(0), "19700101T000000Z");
    assert_eq!(amz_date(1_767_225_600_123), "20260101T000000Z");
    assert_eq!(amz_date(1_709_210_096_000), "20240229T123456Z");
}

/// A version-4 UUID (`amz-sdk-invocation-id`).
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The `Authorization` header of `POST /` whose signed headers are `signed` (lowercase names,
/// sorted, canonical values) and whose payload hash is `payload_hash`, at `amz_date`, for
/// Kinesis.
fn authorization(
    secret: &str,
    amz_date: &str,
    signed: &[(&str, &str)],
    payload_hash: &str,
) -> String {
    let names: Vec<&str> = signed.iter().map(|(n, _)| *n).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "signed headers must be sorted");
    let signed_headers = names.join(";");
    let mut canonical = String::from("POST\n/\n\n");
    for (n, v) in signed {
        canonical.push_str(&format!("{n}:{v}\n"));
    }
    canonical.push_str(&format!("\n{signed_headers}\n{payload_hash}"));
    let date = &amz_date[..8];
    let scope = format!("{date}/{REGION}/kinesis/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date);
    for part in [REGION, "kinesis", "aws4_request"] {
        key = hmac(&key, part);
    }
    format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders={signed_headers}, Signature={}",
        hex(&hmac(&key, &to_sign))
    )
}

/// The signing-key chain against AWS's documented example (secret `wJalr...EXAMPLEKEY`,
/// 20150830, us-east-1, iam).
#[test]
fn signing_key_chain() {
    let mut key = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830");
    for part in ["us-east-1", "iam", "aws4_request"] {
        key = hmac(&key, part);
    }
    assert_eq!(
        hex(&key),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );
}

// --- the server ------------------------------------------------------------------------------

/// Starting the shared [`TlsDev`] with one access key and waiting until every node answers a
/// signed ListStreams (as the SDK's sync client sends it) with 200.
trait Start: Sized {
    async fn start(cert: &TestCert) -> Self;
    async fn start_once(bin: &Path, cert: &TestCert) -> Result<Self, String>;
}

impl Start for TlsDev {
    /// Starts `braid dev` and waits until every node answers a signed ListStreams (as the
    /// SDK's sync client sends it) with 200; retries on fresh ports if another process took
    /// them in between.
    async fn start(cert: &TestCert) -> TlsDev {
        let bin = common::braid_bin();
        let mut last = String::new();
        for _ in 0..3 {
            match TlsDev::start_once(&bin, cert).await {
                Ok(dev) => return dev,
                Err(e) => last = e,
            }
        }
        panic!("braid dev over TLS with an access key did not become ready:\n{last}");
    }

    async fn start_once(bin: &Path, cert: &TestCert) -> Result<TlsDev, String> {
        let mut dev = TlsDev::spawn(
            bin,
            cert,
            &["--kinesis-access-key".into(), format!("{AKID}:{SECRET}")],
        );
        let kinesis_base = dev.kinesis_base;
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut ready = [false; 3];
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = dev.child.try_wait() {
                return Err(format!("braid dev exited ({status}):\n{}", dev.log()));
            }
            for (i, r) in ready.iter_mut().enumerate() {
                if *r {
                    continue;
                }
                let port = kinesis_base + i as u16;
                match JavaClient::connect(Flavor::SyncApacheHttp1, port, &cert.pem).await {
                    Err(e) => last = format!("node {i}: connect: {e}"),
                    Ok(mut c) => {
                        let body = J::Map(vec![]).bytes();
                        match c
                            .send("ListStreams", &body, &uuid_v4(), 1, SECRET, false)
                            .await
                        {
                            Ok(a) if a.status == 200 => *r = true,
                            Ok(a) => {
                                last = format!(
                                    "node {i}: HTTP {} {:?}",
                                    a.status,
                                    ciborium::de::from_reader::<C, _>(&a.body[..])
                                )
                            }
                            Err(e) => last = format!("node {i}: {e}"),
                        }
                    }
                }
            }
            if ready.iter().all(|r| *r) {
                return Ok(dev);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("last answer: {last}\nlog:\n{}", dev.log()))
    }
}

// --- the client ------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    /// `KinesisAsyncClient` on the Netty client since ALPN support (aws/aws-sdk-java-v2#5794,
    /// 2025-01): ALPN `h2` alone, no fallback; HTTP/2.
    AsyncNettyAlpnH2,
    /// `KinesisAsyncClient` on the Netty client before that (2.29.0 included): TLS without
    /// ALPN, then HTTP/2 with prior knowledge.
    AsyncNettyPriorKnowledgeH2,
    /// `KinesisClient` on the Apache client: TLS without ALPN, HTTP/1.1.
    SyncApacheHttp1,
}

impl Flavor {
    fn user_agent(self) -> &'static str {
        match self {
            Flavor::AsyncNettyAlpnH2 => "aws-sdk-java/2.31.0 md/io#async md/http#NettyNio ua/2.1 os/Linux#6.8.0 lang/java#17.0.12 md/OpenJDK_64-Bit_Server_VM#17.0.12+7-LTS md/vendor#Eclipse_Adoptium md/en_US m/D,N",
            Flavor::AsyncNettyPriorKnowledgeH2 => "aws-sdk-java/2.29.0 md/io#async md/http#NettyNio ua/2.1 os/Linux#6.8.0 lang/java#17.0.12 md/OpenJDK_64-Bit_Server_VM#17.0.12+7-LTS md/vendor#Eclipse_Adoptium md/en_US m/D,N",
            Flavor::SyncApacheHttp1 => "aws-sdk-java/2.29.0 md/io#sync md/http#Apache ua/2.1 os/Linux#6.8.0 lang/java#17.0.12 md/OpenJDK_64-Bit_Server_VM#17.0.12+7-LTS md/vendor#Eclipse_Adoptium md/en_US m/D,N",
        }
    }

    /// Whether the payload goes unsigned. The SRA signer of current SDKs
    /// (`ChecksumUtil.isPayloadSigning`: "For HTTPS, skip payload signing by default", no
    /// `PAYLOAD_SIGNING_ENABLED` property being set for Kinesis) signs `UNSIGNED-PAYLOAD` and
    /// sends it as `x-amz-content-sha256`; 2.29-era signers (`PAYLOAD_SIGNING_ENABLED`
    /// defaulting to true) sign the body's SHA-256 and send no such header.
    fn unsigned_payload(self) -> bool {
        self == Flavor::AsyncNettyAlpnH2
    }

    fn h2(self) -> bool {
        self != Flavor::SyncApacheHttp1
    }

    /// The ALPN protocols offered in the TLS handshake.
    fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            Flavor::AsyncNettyAlpnH2 => &[b"h2"],
            _ => &[],
        }
    }

    fn version(self) -> hyper::Version {
        if self.h2() {
            hyper::Version::HTTP_2
        } else {
            hyper::Version::HTTP_11
        }
    }
}

/// The SDK's own headers of a call (everything but `Host`/`:authority` and the HTTP client's
/// connection headers), in its order (a case-insensitive sorted map), signed with `secret` at
/// `date` for host `authority`.
#[allow(clippy::too_many_arguments)]
fn java_headers(
    flavor: Flavor,
    authority: &str,
    op: &str,
    body: &[u8],
    invocation_id: &str,
    attempt: u32,
    secret: &str,
    date: &str,
) -> Vec<(&'static str, String)> {
    let target = format!("{TARGET_PREFIX}{op}");
    let sdk_request = format!("attempt={attempt}; max={MAX_ATTEMPTS}");
    let length = body.len().to_string();
    let mut signed = vec![
        ("amz-sdk-invocation-id", invocation_id),
        ("amz-sdk-request", sdk_request.as_str()),
        ("content-length", length.as_str()),
        ("content-type", CBOR),
        ("host", authority),
    ];
    let body_hash = hex(&Sha256::digest(body));
    let payload_hash = if flavor.unsigned_payload() {
        signed.push(("x-amz-content-sha256", UNSIGNED_PAYLOAD));
        UNSIGNED_PAYLOAD
    } else {
        body_hash.as_str()
    };
    signed.push(("x-amz-date", date));
    signed.push(("x-amz-target", target.as_str()));
    let names: Vec<&str> = signed.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names.join(";"),
        if flavor.unsigned_payload() {
            SIGNED_HEADERS_UNSIGNED_PAYLOAD
        } else {
            SIGNED_HEADERS
        }
    );
    let auth = authorization(secret, date, &signed, payload_hash);
    let mut headers = vec![
        ("amz-sdk-invocation-id", invocation_id.to_string()),
        ("amz-sdk-request", sdk_request.clone()),
        ("Authorization", auth),
        ("Content-Length", length.clone()),
        ("Content-Type", CBOR.to_string()),
        ("User-Agent", flavor.user_agent().to_string()),
    ];
    if flavor.unsigned_payload() {
        headers.push(("x-amz-content-sha256", UNSIGNED_PAYLOAD.to_string()));
    }
    headers.push(("X-Amz-Date", date.to_string()));
    headers.push(("X-Amz-Target", target));
    headers
}

/// The signer agrees with the gateway's verifier: a Java-shaped request with its `host`
/// header verifies against the configured key, and fails with another secret.
#[test]
fn java_signature_verifies_in_process() {
    use braid_gateway::kinesis::sigv4::{verify, KeyStore};
    let keys = KeyStore::new(&[braid_node::AccessKey {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
    }]);
    let body = J::Map(vec![("StreamName", s("s"))]).bytes();
    let date = amz_date(now_ms());
    for flavor in [Flavor::AsyncNettyAlpnH2, Flavor::SyncApacheHttp1] {
        let headers_with = |secret: &str| {
            let mut h = hyper::HeaderMap::new();
            h.insert("host", "localhost:4567".parse().unwrap());
            for (n, v) in java_headers(
                flavor,
                "localhost:4567",
                "DescribeStreamSummary",
                &body,
                &uuid_v4(),
                1,
                secret,
                &date,
            ) {
                h.insert(n, v.parse().unwrap());
            }
            h
        };
        assert_eq!(
            verify(&keys, "POST", "/", "", &headers_with(SECRET), &body),
            Ok(()),
            "{flavor:?}"
        );
        let e = verify(&keys, "POST", "/", "", &headers_with("other"), &body).unwrap_err();
        assert_eq!(e.type_name, "InvalidSignatureException", "{flavor:?}");
    }
}

enum Sender {
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
}

/// One answer, read whole.
struct Answer {
    version: hyper::Version,
    status: u16,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Answer {
    /// The checks every answer gets: the HTTP version asked for, `x-amzn-RequestId` (a UUID),
    /// `Content-Type: application/x-amz-cbor-1.1`, and a body that is exactly one CBOR map.
    fn cbor(&self, flavor: Flavor, what: &str) -> C {
        assert_eq!(self.version, flavor.version(), "{what}: HTTP version");
        let rid = self
            .headers
            .get("x-amzn-requestid")
            .unwrap_or_else(|| panic!("{what}: no x-amzn-RequestId in {:?}", self.headers))
            .to_str()
            .unwrap();
        assert!(
            rid.len() == 36 && [8, 13, 18, 23].iter().all(|&i| rid.as_bytes()[i] == b'-'),
            "{what}: x-amzn-RequestId {rid:?} is not a UUID"
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some(CBOR),
            "{what}: response Content-Type (body {:?})",
            String::from_utf8_lossy(&self.body)
        );
        let mut rest = &self.body[..];
        let v: C = ciborium::de::from_reader(&mut rest).unwrap_or_else(|e| {
            panic!(
                "{what}: the body is not CBOR ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        });
        assert!(rest.is_empty(), "{what}: bytes after the CBOR value");
        assert!(
            matches!(v, C::Map(_)),
            "{what}: the body is not a map: {v:?}"
        );
        v
    }
}

/// One connection as the Java SDK holds it.
struct JavaClient {
    flavor: Flavor,
    port: u16,
    sender: Sender,
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl JavaClient {
    async fn connect(flavor: Flavor, port: u16, cert_pem: &str) -> std::io::Result<JavaClient> {
        let tls = tls_connect(port, cert_pem, flavor.alpn()).await?;
        let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let expected: Option<&[u8]> = flavor.alpn().first().copied();
        assert_eq!(
            negotiated.as_deref(),
            expected,
            "{flavor:?}: ALPN offered {:?}",
            flavor.alpn()
        );
        let sender = if flavor.h2() {
            let (s, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .map_err(io_err)?;
            tokio::spawn(conn);
            Sender::H2(s)
        } else {
            let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(io_err)?;
            tokio::spawn(conn);
            Sender::H1(s)
        };
        Ok(JavaClient {
            flavor,
            port,
            sender,
        })
    }

    /// The request the SDK sends for `op` with CBOR `body`, signed with `secret`.
    /// `explicit_host` adds a `host` header over HTTP/2 (which Netty never does; diagnostics).
    fn request(
        &self,
        op: &str,
        body: &[u8],
        invocation_id: &str,
        attempt: u32,
        secret: &str,
        explicit_host: bool,
    ) -> hyper::Request<Full<Bytes>> {
        let authority = format!("localhost:{}", self.port);
        let headers = java_headers(
            self.flavor,
            &authority,
            op,
            body,
            invocation_id,
            attempt,
            secret,
            &amz_date(now_ms()),
        );
        let mut b = if self.flavor.h2() {
            // Netty: `:scheme https`, `:authority localhost:<port>`, `:path /`, no `host`.
            let b = hyper::Request::post(format!("https://{authority}/"));
            if explicit_host {
                b.header("host", &authority)
            } else {
                b
            }
        } else {
            // Apache: origin form, `Host`, and its connection-management header.
            hyper::Request::post("/")
                .header("Host", &authority)
                .header("Connection", "Keep-Alive")
        };
        for (name, value) in headers {
            b = b.header(name, value);
        }
        b.body(Full::new(Bytes::copy_from_slice(body))).unwrap()
    }

    async fn send(
        &mut self,
        op: &str,
        body: &[u8],
        invocation_id: &str,
        attempt: u32,
        secret: &str,
        explicit_host: bool,
    ) -> Result<Answer, String> {
        let req = self.request(op, body, invocation_id, attempt, secret, explicit_host);
        let exchange = async {
            let resp = match &mut self.sender {
                Sender::H2(s) => {
                    s.ready().await.map_err(|e| e.to_string())?;
                    s.send_request(req).await.map_err(|e| e.to_string())?
                }
                Sender::H1(s) => {
                    s.ready().await.map_err(|e| e.to_string())?;
                    s.send_request(req).await.map_err(|e| e.to_string())?
                }
            };
            let version = resp.version();
            let status = resp.status().as_u16();
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(Answer {
                version,
                status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .map_err(|_| format!("{op}: no answer within 30 s"))?
    }

    /// A call under the SDK's retry policy (5xx and throttling retried, same invocation id,
    /// `attempt=N`); the decoded 200 answer, or a panic saying what came back.
    async fn call(&mut self, op: &str, input: &J) -> C {
        let body = input.bytes();
        let id = uuid_v4();
        let what = format!("{:?} {op}", self.flavor);
        for attempt in 1..=MAX_ATTEMPTS {
            let a = self
                .send(op, &body, &id, attempt, SECRET, false)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let v = a.cbor(self.flavor, &what);
            if a.status == 200 {
                return v;
            }
            let ty = field(&v, "__type")
                .map(|t| format!("{t:?}"))
                .unwrap_or_default();
            let retryable = a.status >= 500
                || a.status == 429
                || ty.contains("Throttl")
                || ty.contains("ProvisionedThroughputExceeded")
                || ty.contains("LimitExceeded");
            if retryable && attempt < MAX_ATTEMPTS {
                eprintln!(
                    "{what}: attempt {attempt} got HTTP {} {v:?}; retrying",
                    a.status
                );
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                continue;
            }
            let mut msg = format!("{what}: HTTP {} {v:?}", a.status);
            if self.flavor.h2() && ty.contains("InvalidSignatureException") {
                // Is it the missing `host` header? Send the same request with one.
                let with_host = self
                    .send(op, &body, &uuid_v4(), 1, SECRET, true)
                    .await
                    .map(|b| {
                        format!(
                            "HTTP {} {:?}",
                            b.status,
                            ciborium::de::from_reader::<C, _>(&b.body[..])
                        )
                    });
                msg.push_str(&format!(
                    "\n  The request was signed as the Java SDK signs it, with `host:localhost:{}` among the signed headers, and sent over HTTP/2 the way Netty sends it: the host as `:authority`, no `host` header. The same request with an explicit `host` header (which Netty never sends over HTTP/2) gets: {with_host:?}",
                    self.port
                ));
            }
            panic!("{msg}");
        }
        unreachable!()
    }

    /// One attempt expected to fail: (status, decoded error body).
    async fn fail(&mut self, op: &str, input: &J, secret: &str) -> (u16, C) {
        let what = format!("{:?} {op} (expected error)", self.flavor);
        let a = self
            .send(op, &input.bytes(), &uuid_v4(), 1, secret, false)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let v = a.cbor(self.flavor, &what);
        (a.status, v)
    }
}

// --- the flow --------------------------------------------------------------------------------

/// One record put, as the put answers described it.
#[derive(Clone, Debug)]
struct Put {
    shard_id: String,
    sequence_number: String,
    data: Vec<u8>,
    partition_key: String,
}

/// One record read back.
#[derive(Clone, Debug)]
struct Got {
    sequence_number: String,
    data: Vec<u8>,
    partition_key: String,
    arrival_ms: i64,
}

fn stream_ref(stream: &str) -> (&'static str, J) {
    ("StreamName", s(stream))
}

/// GetRecords from `iterator` until `want` records came (or, for `want == 0`, one call),
/// checking every answer's shape.
async fn read_records(c: &mut JavaClient, mut iterator: String, want: usize) -> Vec<Got> {
    let mut got = Vec::new();
    for _ in 0..50 {
        let r = c
            .call(
                "GetRecords",
                &J::Map(vec![
                    ("ShardIterator", J::Str(iterator.clone())),
                    ("Limit", J::Int(10_000)),
                ]),
            )
            .await;
        let behind = int(&r, "MillisBehindLatest");
        assert!(behind >= 0, "MillisBehindLatest {behind}");
        let records = list(&r, "Records");
        for rec in records {
            got.push(Got {
                sequence_number: seq(rec, "SequenceNumber").to_string(),
                data: blob(rec, "Data").to_vec(),
                partition_key: text(rec, "PartitionKey").to_string(),
                arrival_ms: timestamp_ms(rec, "ApproximateArrivalTimestamp"),
            });
        }
        if got.len() >= want {
            return got;
        }
        iterator = text(&r, "NextShardIterator").to_string();
        if records.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!(
        "{:?}: GetRecords gave {} of {want} records: {got:?}",
        c.flavor,
        got.len()
    );
}

async fn shard_iterator(c: &mut JavaClient, stream: &str, shard: &str, kind: &str) -> String {
    let r = c
        .call(
            "GetShardIterator",
            &J::Map(vec![
                stream_ref(stream),
                ("ShardId", s(shard)),
                ("ShardIteratorType", s(kind)),
            ]),
        )
        .await;
    text(&r, "ShardIterator").to_string()
}

async fn at_timestamp_iterator(c: &mut JavaClient, stream: &str, shard: &str, ms: i64) -> String {
    let r = c
        .call(
            "GetShardIterator",
            &J::Map(vec![
                stream_ref(stream),
                ("ShardId", s(shard)),
                ("ShardIteratorType", s("AT_TIMESTAMP")),
                ("Timestamp", J::Timestamp(ms)),
            ]),
        )
        .await;
    text(&r, "ShardIterator").to_string()
}

fn check_read(what: &str, got: &[Got], want: &[&Put], t0: i64) {
    let now = now_ms();
    for g in got {
        assert!(
            g.arrival_ms >= t0 - 5_000 && g.arrival_ms <= now + 5_000,
            "{what}: ApproximateArrivalTimestamp {} ms is not between the puts ({t0}) and now ({now}): epoch milliseconds expected",
            g.arrival_ms
        );
    }
    for w in got.windows(2) {
        assert!(
            seq_lt(&w[0].sequence_number, &w[1].sequence_number),
            "{what}: sequence numbers do not increase: {} then {}",
            w[0].sequence_number,
            w[1].sequence_number
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: read {got:?}, put {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.sequence_number, w.sequence_number, "{what}");
        assert_eq!(g.data, w.data, "{what}: Data of {}", w.sequence_number);
        assert_eq!(g.partition_key, w.partition_key, "{what}");
    }
}

async fn java_flow(c: &mut JavaClient, stream: &str) {
    let flavor = c.flavor;

    // ListStreams with no members: the SDK sends an empty indefinite map (bf ff).
    let ls = c.call("ListStreams", &J::Map(vec![])).await;
    let names = list(&ls, "StreamNames");
    assert!(
        names.iter().all(|n| matches!(n, C::Text(_))),
        "StreamNames: {names:?}"
    );
    boolean(&ls, "HasMoreStreams");

    let created_at = now_ms();
    let created = c
        .call(
            "CreateStream",
            &J::Map(vec![stream_ref(stream), ("ShardCount", J::Int(2))]),
        )
        .await;
    assert_eq!(created, C::Map(vec![]), "CreateStream answer");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = c
            .call("DescribeStreamSummary", &J::Map(vec![stream_ref(stream)]))
            .await;
        let sum = req(&d, "StreamDescriptionSummary");
        assert_eq!(text(sum, "StreamName"), stream);
        assert!(text(sum, "StreamARN").starts_with("arn:aws:kinesis:"));
        let created_ms = timestamp_ms(sum, "StreamCreationTimestamp");
        assert!(
            (created_at - 60_000..=now_ms() + 60_000).contains(&created_ms),
            "StreamCreationTimestamp {created_ms} is not epoch milliseconds near {created_at}"
        );
        assert!(int(sum, "RetentionPeriodHours") >= 24);
        let status = text(sum, "StreamStatus");
        if status == "ACTIVE" {
            assert_eq!(int(sum, "OpenShardCount"), 2, "{sum:?}");
            break;
        }
        assert_eq!(status, "CREATING", "{sum:?}");
        assert!(Instant::now() < deadline, "{stream} never became ACTIVE");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let t0 = now_ms();
    let mut puts: Vec<Put> = Vec::new();

    // PutRecord: every byte value (model order: StreamName, Data, PartitionKey).
    let every_byte: Vec<u8> = (0..=255u8).collect();
    let r = c
        .call(
            "PutRecord",
            &J::Map(vec![
                stream_ref(stream),
                ("Data", J::Blob(every_byte.clone())),
                ("PartitionKey", s("java-pk-0")),
            ]),
        )
        .await;
    assert!(text(&r, "ShardId").starts_with("shardId-"), "{r:?}");
    puts.push(Put {
        shard_id: text(&r, "ShardId").to_string(),
        sequence_number: seq(&r, "SequenceNumber").to_string(),
        data: every_byte,
        partition_key: "java-pk-0".into(),
    });

    // PutRecords: 10 entries (model order: Data, ExplicitHashKey, PartitionKey), the eighth
    // routed to the top of the hash key space.
    let entries: Vec<(Vec<u8>, Option<&str>, String)> = (0..10u8)
        .map(|i| {
            let mut data = format!("java record {i} ").into_bytes();
            data.extend_from_slice(&[0x00, 0xff, 0x80, 0x7f, i, 0xc1, 0xbf]);
            let key = (i == 7).then_some(MAX_HASH_KEY);
            (data, key, format!("java-pk-{}", i + 1))
        })
        .collect();
    let records = entries
        .iter()
        .map(|(data, key, pk)| {
            let mut m = vec![("Data", J::Blob(data.clone()))];
            if let Some(k) = key {
                m.push(("ExplicitHashKey", s(k)));
            }
            m.push(("PartitionKey", J::Str(pk.clone())));
            J::Map(m)
        })
        .collect();
    let r = c
        .call(
            "PutRecords",
            &J::Map(vec![("Records", J::List(records)), stream_ref(stream)]),
        )
        .await;
    assert_eq!(int(&r, "FailedRecordCount"), 0, "{r:?}");
    let results = list(&r, "Records");
    assert_eq!(results.len(), entries.len(), "{r:?}");
    let mut explicit_shard = String::new();
    for (res, (data, key, pk)) in results.iter().zip(&entries) {
        assert!(field(res, "ErrorCode").is_none(), "{res:?}");
        let shard_id = text(res, "ShardId").to_string();
        if key.is_some() {
            explicit_shard = shard_id.clone();
        }
        puts.push(Put {
            shard_id,
            sequence_number: seq(res, "SequenceNumber").to_string(),
            data: data.clone(),
            partition_key: pk.clone(),
        });
    }

    // ListShards: two shards splitting the hash key space.
    let r = c
        .call("ListShards", &J::Map(vec![stream_ref(stream)]))
        .await;
    let shards = list(&r, "Shards");
    assert_eq!(shards.len(), 2, "{r:?}");
    let mut shard_ids = Vec::new();
    let mut top_shard = String::new();
    for sh in shards {
        let id = text(sh, "ShardId").to_string();
        assert!(id.starts_with("shardId-"), "{id}");
        let range = req(sh, "HashKeyRange");
        let (lo, hi) = (text(range, "StartingHashKey"), text(range, "EndingHashKey"));
        assert!(
            lo.bytes().chain(hi.bytes()).all(|b| b.is_ascii_digit()),
            "{range:?}"
        );
        if hi == MAX_HASH_KEY {
            top_shard = id.clone();
        }
        seq(req(sh, "SequenceNumberRange"), "StartingSequenceNumber");
        shard_ids.push(id);
    }
    assert_ne!(shard_ids[0], shard_ids[1]);
    assert_eq!(
        explicit_shard, top_shard,
        "the record with ExplicitHashKey 2^128-1 went to {explicit_shard}, not the shard ending at 2^128-1"
    );
    for p in &puts {
        assert!(
            shard_ids.contains(&p.shard_id),
            "{p:?} not in {shard_ids:?}"
        );
    }

    for shard in &shard_ids {
        let want: Vec<&Put> = puts.iter().filter(|p| &p.shard_id == shard).collect();
        for w in want.windows(2) {
            assert!(
                seq_lt(&w[0].sequence_number, &w[1].sequence_number),
                "put answers' sequence numbers do not increase in {shard}: {w:?}"
            );
        }

        let it = shard_iterator(c, stream, shard, "TRIM_HORIZON").await;
        let got = read_records(c, it, want.len()).await;
        check_read(&format!("{flavor:?} TRIM_HORIZON {shard}"), &got, &want, t0);

        // AT_TIMESTAMP one second before the first put: the whole shard. (Read as seconds,
        // this instant is 55,000 years ahead and nothing would come back.)
        let it = at_timestamp_iterator(c, stream, shard, t0 - 1_000).await;
        let again = read_records(c, it, want.len()).await;
        check_read(
            &format!("{flavor:?} AT_TIMESTAMP {shard}"),
            &again,
            &want,
            t0,
        );

        // AT_TIMESTAMP just after the last arrival: nothing.
        if let Some(last) = got.iter().map(|g| g.arrival_ms).max() {
            let it = at_timestamp_iterator(c, stream, shard, last + 1).await;
            let none = read_records(c, it, 0).await;
            assert!(
                none.is_empty(),
                "{flavor:?} AT_TIMESTAMP {} in {shard} gave records at or before it: {none:?}",
                last + 1
            );
        }
    }

    // A wrong signature: 400, CBOR {__type: InvalidSignatureException, message}.
    let (status, e) = c
        .fail(
            "DescribeStreamSummary",
            &J::Map(vec![stream_ref(stream)]),
            "NOT-THE-SECRET",
        )
        .await;
    assert_eq!(status, 400, "{e:?}");
    assert_eq!(text(&e, "__type"), "InvalidSignatureException", "{e:?}");
    assert_eq!(text(&e, "message"), INVALID_SIGNATURE_MESSAGE);

    // An unknown stream: 400, CBOR {__type: ResourceNotFoundException, message}.
    let missing = format!("{stream}-missing");
    let (status, e) = c
        .fail(
            "DescribeStream",
            &J::Map(vec![stream_ref(&missing)]),
            SECRET,
        )
        .await;
    assert_eq!(status, 400, "{e:?}");
    assert_eq!(text(&e, "__type"), "ResourceNotFoundException", "{e:?}");
    assert!(text(&e, "message").contains(&missing), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_sdk_v2_cbor_against_braid_dev() {
    let cert = test_cert();
    let dev = TlsDev::start(&cert).await;
    let mut failures = Vec::new();
    for (flavor, node, stream) in [
        (Flavor::AsyncNettyAlpnH2, 0u16, "java-async-alpn"),
        (
            Flavor::AsyncNettyPriorKnowledgeH2,
            1,
            "java-async-prior-knowledge",
        ),
        (Flavor::SyncApacheHttp1, 2, "java-sync"),
    ] {
        let port = dev.kinesis_base + node;
        let run = async {
            let mut c = JavaClient::connect(flavor, port, &cert.pem)
                .await
                .unwrap_or_else(|e| panic!("{flavor:?}: connect to node {node}: {e}"));
            java_flow(&mut c, stream).await;
        };
        if let Err(p) = AssertUnwindSafe(run).catch_unwind().await {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{flavor:?} (node {node}): {msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "the Java SDK v2 shapes failed:\n\n{}\n\nbraid dev log (tail):\n{}",
        failures.join("\n\n"),
        dev.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
